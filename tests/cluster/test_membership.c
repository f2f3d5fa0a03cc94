/*
 * Membership changes under load, with real nodes:
 *   - a 4th node joins while a writer does 2,000 puts: every acknowledged
 *     put reads back afterwards, the new node owns Q/4 or Q/4+1 partitions
 *     and holds the keys of its partitions; every node reports the same
 *     ring within a bounded time (measured);
 *   - a node of four leaves, by `dynamoctl leave` (the real binary), while a
 *     reader and a writer run: it shows progress lines (partitions and
 *     bytes moved) and returns once the node is gone, no acknowledged key
 *     is lost, every key is on each of its replicas, the leaver exits 0;
 *   - the only member of a cluster cannot leave (refused, still serving).
 */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/wait.h>

#include "err.h"
#include "harness.h"
#include "ring.h"
#include "wire.h"

#define NPUTS 2000
#define NBIG  400           /* values of BIG bytes: a transfer that lasts */
#define BIG   (32 * 1024)
#define NLATE 100000        /* puts at most during the leave */

static struct harness h;
static atomic_bool acked[NPUTS];
static atomic_int put_errors;
static atomic_bool stop_reader;
static atomic_int read_ok, read_lost, read_errors;
static atomic_bool late_acked[NLATE];
static atomic_int late_next, late_errors;

static void
key_of(int i, char *key, size_t cap)
{
	snprintf(key, cap, "member/%d", i);
}

static void *
writer(void *arg)
{
	struct dyn_client *c = arg;
	char key[32];
	for (int i = 0; i < NPUTS; i++) {
		key_of(i, key, sizeof(key));
		int rc = dyn_put(c, key, strlen(key), NULL, 0, key, strlen(key),
		    NULL, NULL, NULL);
		if (rc == 0)
			acked[i] = true;
		else
			atomic_fetch_add(&put_errors, 1);
	}
	return NULL;
}

static void *
reader(void *arg)
{
	struct dyn_client *c = arg;
	char key[32];
	uint32_t x = 88172645u;
	while (!atomic_load(&stop_reader)) {
		x ^= x << 13, x ^= x >> 17, x ^= x << 5;
		int i = (int)(x % NPUTS);
		if (!acked[i])
			continue;
		key_of(i, key, sizeof(key));
		struct dyn_get_result r;
		int rc = dyn_get(c, key, strlen(key), NULL, &r);
		if (rc == 0)
			atomic_fetch_add(&read_ok, 1);
		else if (rc == -ENOENT)
			atomic_fetch_add(&read_lost, 1);
		else
			atomic_fetch_add(&read_errors, 1);
		dyn_get_result_fini(&r);
	}
	return NULL;
}

/* Puts of new keys until stop_reader, during the leave. */
static void *
late_writer(void *arg)
{
	struct dyn_client *c = arg;
	char key[32];
	while (!atomic_load(&stop_reader)) {
		int i = atomic_fetch_add(&late_next, 1);
		if (i >= NLATE)
			break;
		int kl = snprintf(key, sizeof(key), "late/%d", i);
		if (dyn_put(c, key, (size_t)kl, NULL, 0, key, (size_t)kl, NULL,
		        NULL, NULL) == 0)
			late_acked[i] = true;
		else
			atomic_fetch_add(&late_errors, 1);
	}
	return NULL;
}

/* Whether key is on each of its replicas under r (each read alone). */
static bool
on_replicas(struct dyn_client *const *direct, const struct ring *r,
    uint32_t nrep, const char *key)
{
	struct dyn_req_opts lo = {.flags = WIRE_F_LOCAL};
	uint32_t idx[8], n = harness_replicas(r, nrep, key, idx);
	bool ok = n == nrep;
	for (uint32_t k = 0; k < n && ok; k++) {
		int who = atoi(ring_member_name(r, idx[k]) + 1);
		struct dyn_get_result g;
		ok = direct[who] && dyn_get(direct[who], key, strlen(key), &lo,
		                        &g) == 0;
		if (direct[who])
			dyn_get_result_fini(&g);
	}
	return ok;
}

/* Every acknowledged key reads back with its value. */
static void
check_all(struct dyn_client *c)
{
	char key[32];
	int n = 0;
	for (int i = 0; i < NPUTS; i++) {
		if (!acked[i])
			continue;
		key_of(i, key, sizeof(key));
		struct dyn_get_result r;
		CHECK_RC(dyn_get(c, key, strlen(key), NULL, &r), 0);
		CHECK(r.versions.n == 1 && r.versions.v[0].len == strlen(key) &&
		    memcmp(r.versions.v[0].value, key, strlen(key)) == 0);
		dyn_get_result_fini(&r);
		n++;
	}
	printf("all %d acknowledged keys read back\n", n);
}

int
main(void)
{
	harness_init(&h);
	harness_start_joined(&h, 0, -1, NULL);
	/* The only member cannot leave (its data would have nowhere to go):
	 * refused at once, and it stays up. */
	struct dyn_client *c0 = harness_client(&h, 5000, 0, -1);
	CHECK_RC(dyn_leave(c0, 0), -EINVAL);
	struct dyn_get_result g0;
	CHECK_RC(dyn_get(c0, "solo", 4, NULL, &g0), -ENOENT);
	dyn_get_result_fini(&g0);
	dyn_client_free(c0);
	printf("leave of the only member refused; it still serves\n");
	harness_start_joined(&h, 1, 0, NULL);
	harness_start_joined(&h, 2, 0, NULL);
	harness_wait_ring(&h, 3, 30000);

	/* Join under writes. */
	struct dyn_client *wc = harness_client(&h, 5000, 0, 1, 2, -1);
	pthread_t wt;
	CHECK(pthread_create(&wt, NULL, writer, wc) == 0);
	long long dl = harness_now_ms() + 60000;
	while (!atomic_load(&acked[NPUTS / 4]) && harness_now_ms() < dl)
		sched_yield();
	CHECK(atomic_load(&acked[NPUTS / 4]));
	long long t0 = harness_now_ms();
	harness_start_joined(&h, 3, 1, NULL);
	long long settle = harness_wait_ring(&h, 4, 60000);
	printf("4th node joined: every node holds the same stable ring %lld ms "
	       "after its start (%lld ms of waiting)\n",
	    harness_now_ms() - t0, settle);
	pthread_join(wt, NULL);
	printf("writer: %d puts acknowledged of %d\n",
	    NPUTS - atomic_load(&put_errors), NPUTS);
	CHECK(atomic_load(&put_errors) == 0);

	struct dyn_client *all = harness_client(&h, 5000, 0, 1, 2, 3, -1);
	check_all(all);

	/* The new node owns its share and holds its partitions' keys. */
	struct dyn_client *d3 = harness_client_direct(&h, 3);
	struct ring *r;
	uint32_t nrw[3];
	CHECK_RC(dyn_ring(d3, 0, &r, nrw), 0);
	int me = ring_member_find(r, "n3");
	CHECK(me >= 0);
	uint32_t own[8];
	ring_owned_counts(r, RING_CUR, own);
	uint32_t q = ring_q(r);
	printf("n3 owns %u of %u partitions\n", own[me], q);
	CHECK(own[me] == q / 4 || own[me] == q / 4 + 1);
	int held = 0;
	struct dyn_req_opts lo = {.flags = WIRE_F_LOCAL};
	for (int i = 0; i < NPUTS; i++) {
		char key[32];
		key_of(i, key, sizeof(key));
		uint32_t idx[8], n = harness_replicas(r, nrw[0], key, idx);
		bool mine = false;
		for (uint32_t k = 0; k < n; k++)
			mine |= (int)idx[k] == me;
		if (!mine)
			continue;
		struct dyn_get_result g;
		CHECK_RC(dyn_get(d3, key, strlen(key), &lo, &g), 0);
		dyn_get_result_fini(&g);
		held++;
	}
	printf("n3 holds all %d keys of its partitions\n", held);
	CHECK(held > 0);

	/* And the old nodes sweep what they no longer replicate: each one
	 * ends up holding exactly the keys of its partitions. */
	uint64_t want[4] = {0};
	for (int i = 0; i < NPUTS; i++) {
		char key[32];
		key_of(i, key, sizeof(key));
		uint32_t idx[8], n = harness_replicas(r, nrw[0], key, idx);
		for (uint32_t k = 0; k < n; k++)
			want[atoi(ring_member_name(r, idx[k]) + 1)]++;
	}
	t0 = harness_now_ms();
	for (int i = 0; i < 4; i++) {
		uint64_t got;
		while ((got = harness_keys(&h, i)) != want[i] &&
		    harness_now_ms() - t0 < 30000)
			harness_pause_ms(100);
		printf("n%d holds %llu records, the keys it replicates: %llu\n",
		    i, (unsigned long long)got, (unsigned long long)want[i]);
		CHECK(got == want[i]);
	}
	ring_free(r);

	/* Some bulk, so the leave's transfer lasts long enough to be seen. */
	char *big = malloc(BIG);
	CHECK(big != NULL);
	memset(big, 'b', BIG);
	for (int i = 0; i < NBIG; i++) {
		char key[32];
		snprintf(key, sizeof(key), "big/%d", i);
		CHECK_RC(dyn_put(all, key, strlen(key), NULL, 0, big, BIG, NULL,
		             NULL, NULL),
		    0);
	}
	free(big);

	/* Leave under reads and writes, with dynamoctl: progress lines, and
	 * it returns once n1 is gone. */
	pthread_t rt, lt;
	struct dyn_client *lc = harness_client(&h, 5000, 0, 2, 3, -1);
	CHECK(pthread_create(&rt, NULL, reader, all) == 0);
	CHECK(pthread_create(&lt, NULL, late_writer, lc) == 0);
	struct dyn_client *d1 = harness_client_direct(&h, 1);
	static char out[65536];
	static const char *const leave[] = {"leave", NULL};
	t0 = harness_now_ms();
	int ex = harness_ctl(&h, 1, out, sizeof(out), leave);
	printf("dynamoctl leave (exit %d, %lld ms):\n%s", ex,
	    harness_now_ms() - t0, out);
	CHECK(ex == 0);
	CHECK(strstr(out, "moving partitions: ") && strstr(out, " partitions ("));
	CHECK(strstr(out, "] done in "));
	int st = harness_stop(&h, 1, 0); /* signal 0: just wait for it */
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	printf("n1 left and exited 0 after %lld ms\n", harness_now_ms() - t0);
	harness_wait_ring(&h, 3, 30000);
	atomic_store(&stop_reader, true);
	pthread_join(rt, NULL);
	pthread_join(lt, NULL);
	printf("reader during the leave: %d ok, %d not found, %d errors\n",
	    atomic_load(&read_ok), atomic_load(&read_lost),
	    atomic_load(&read_errors));
	CHECK(atomic_load(&read_lost) == 0);
	int late = atomic_load(&late_next);
	late = late > NLATE ? NLATE : late;
	printf("writer during the leave: %d puts, %d failed\n", late,
	    atomic_load(&late_errors));
	CHECK(atomic_load(&late_errors) == 0);
	check_all(all);

	/* Every key, old and new, on each of its 3 replicas. */
	struct dyn_client *direct[4] = {harness_client_direct(&h, 0), NULL,
	    harness_client_direct(&h, 2), harness_client_direct(&h, 3)};
	CHECK_RC(dyn_ring(direct[0], 0, &r, nrw), 0);
	uint32_t owned[8] = {0};
	int i1 = ring_member_find(r, "n1");
	CHECK(ring_member_count(r) <= 8);
	ring_owned_counts(r, RING_CUR, owned);
	CHECK(!ring_has_next(r) && (i1 < 0 || owned[i1] == 0));
	int missing = 0, keys = 0;
	t0 = harness_now_ms();
	do {
		missing = keys = 0;
		char key[32];
		for (int i = 0; i < NPUTS + NBIG + late; i++) {
			if (i < NPUTS)
				snprintf(key, sizeof(key), "member/%d", i);
			else if (i < NPUTS + NBIG)
				snprintf(key, sizeof(key), "big/%d", i - NPUTS);
			else if (late_acked[i - NPUTS - NBIG])
				snprintf(key, sizeof(key), "late/%d",
				    i - NPUTS - NBIG);
			else
				continue;
			keys++;
			missing += !on_replicas(direct, r, nrw[0], key);
		}
		if (missing)
			harness_pause_ms(500);
	} while (missing && harness_now_ms() - t0 < 20000);
	printf("after the leave: %d of %d keys on each of their replicas "
	       "(%lld ms)\n", keys - missing, keys, harness_now_ms() - t0);
	CHECK(missing == 0);
	ring_free(r);
	for (int i = 0; i < 4; i++)
		dyn_client_free(direct[i]);
	dyn_client_free(lc);

	dyn_client_free(d1);
	dyn_client_free(d3);
	dyn_client_free(all);
	dyn_client_free(wc);
	return 0;
}
