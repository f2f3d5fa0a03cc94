/*
 * A node's data directory is wiped and the node restarted (it comes back
 * as a new actor, joined through a seed): anti-entropy restores every key
 * it replicates, and keys deleted before the wipe stay deleted (their
 * tombstones come back, not their values).  WIPE_KEYS keys (default
 * 30,000 to keep the suite short; the figure in the README is for
 * WIPE_KEYS=100000).
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "err.h"
#include "harness.h"
#include "wire.h"

#define NDELETE  100
#define NTHREADS 16

static struct harness h;
static struct dyn_client *cl;
static atomic_int next, failed;
static int nkeys = 30000;

static int
value_of(int i, char *out, size_t cap)
{
	return snprintf(out, cap, "value-%d-%08x", i, (unsigned)i * 2654435761u);
}

static void *
writer(void *arg)
{
	(void)arg;
	char key[32], val[64];
	for (int i; (i = atomic_fetch_add(&next, 1)) < nkeys;) {
		int kl = snprintf(key, sizeof(key), "wipe/%d", i);
		int vl = value_of(i, val, sizeof(val));
		if (dyn_put(cl, key, (size_t)kl, NULL, 0, val, (size_t)vl, NULL,
		        NULL, NULL) != 0)
			atomic_fetch_add(&failed, 1);
	}
	return NULL;
}

int
main(void)
{
	/* Durability is not what this test is about: no fsync keeps the
	 * 100,000 puts quick on one shared disk. */
	const char *const nofsync[] = {"--no-fsync", NULL};
	harness_init(&h);
	harness_start_joined(&h, 0, -1, nofsync);
	const char *nk = getenv("WIPE_KEYS");
	if (nk && atoi(nk) > 200)
		nkeys = atoi(nk);
	harness_start_joined(&h, 1, 0, nofsync);
	harness_start_joined(&h, 2, 0, nofsync);
	harness_wait_ring(&h, 3, 30000);
	cl = harness_client(&h, 10000, 0, 1, 2, -1);

	long long t0 = harness_now_ms();
	pthread_t th[NTHREADS];
	for (int t = 0; t < NTHREADS; t++)
		CHECK(pthread_create(&th[t], NULL, writer, NULL) == 0);
	for (int t = 0; t < NTHREADS; t++)
		pthread_join(th[t], NULL);
	CHECK(atomic_load(&failed) == 0);
	printf("%d keys written in %lld ms\n", nkeys, harness_now_ms() - t0);

	char key[32];
	for (int i = 0; i < NDELETE; i++) {
		int kl = snprintf(key, sizeof(key), "wipe/%d", i * (nkeys / NDELETE));
		struct dyn_get_result r;
		CHECK_RC(dyn_get(cl, key, (size_t)kl, NULL, &r), 0);
		CHECK_RC(dyn_delete(cl, key, (size_t)kl, r.ctx, r.ctx_len, NULL),
		    0);
		dyn_get_result_fini(&r);
	}
	/* Every node holds every key (N = 3 of 3) before the wipe. */
	long long dl = harness_now_ms() + 120000;
	while (harness_keys(&h, 2) < (uint64_t)nkeys && harness_now_ms() < dl)
		harness_pause_ms(200);
	CHECK(harness_keys(&h, 2) == (uint64_t)nkeys);

	harness_stop(&h, 2, SIGKILL);
	harness_wipe(&h, 2);
	long long t1 = harness_now_ms();
	harness_start_joined(&h, 2, 0, nofsync);
	uint64_t k = 0;
	while ((k = harness_keys(&h, 2)) < (uint64_t)nkeys &&
	    harness_now_ms() - t1 < 300000)
		harness_pause_ms(200);
	printf("wiped node holds %llu of %d keys again %lld ms after its "
	       "restart\n",
	    (unsigned long long)k, nkeys, harness_now_ms() - t1);
	CHECK(k == (uint64_t)nkeys);

	/* Its own copies: deleted keys are tombstones, a sample of the rest
	 * byte-identical. */
	struct dyn_client *d2 = harness_client_direct(&h, 2);
	struct dyn_req_opts lo = {.flags = WIRE_F_LOCAL};
	for (int i = 0; i < NDELETE; i++) {
		int kl = snprintf(key, sizeof(key), "wipe/%d", i * (nkeys / NDELETE));
		struct dyn_get_result r;
		CHECK_RC(dyn_get(d2, key, (size_t)kl, &lo, &r), -ENOENT);
		CHECK(r.versions.n >= 1);
		dyn_get_result_fini(&r);
	}
	char val[64];
	for (int i = 1; i < nkeys; i += 101) {
		if (i % (nkeys / NDELETE) == 0)
			continue;
		int kl = snprintf(key, sizeof(key), "wipe/%d", i);
		int vl = value_of(i, val, sizeof(val));
		struct dyn_get_result r;
		CHECK_RC(dyn_get(d2, key, (size_t)kl, &lo, &r), 0);
		CHECK(r.versions.n == 1 && r.versions.v[0].len == (size_t)vl &&
		    memcmp(r.versions.v[0].value, val, (size_t)vl) == 0);
		dyn_get_result_fini(&r);
	}
	printf("deleted keys stayed deleted; sampled values byte-identical\n");
	dyn_client_free(d2);
	dyn_client_free(cl);
	return 0;
}
