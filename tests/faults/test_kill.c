/*
 * One node of three killed with -9 during a put load: no put fails; after
 * it restarts, the hints kept for it drain to 0 and every key is on all of
 * its N owners.  Hints survive a restart of the node that holds them.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/wait.h>

#include "err.h"
#include "harness.h"
#include "wire.h"

#define WRITERS  4
#define LOAD_MS  18000
#define MAX_KEYS 200000

static struct harness h;
static struct dyn_client *cl;
static atomic_int nkeys, failed;
static atomic_bool stop;

static void *
writer(void *arg)
{
	(void)arg;
	char key[32];
	while (!atomic_load(&stop)) {
		int i = atomic_fetch_add(&nkeys, 1);
		if (i >= MAX_KEYS)
			break;
		int kl = snprintf(key, sizeof(key), "kill/%d", i);
		int rc = dyn_put(cl, key, (size_t)kl, NULL, 0, key, (size_t)kl,
		    NULL, NULL, NULL);
		if (rc != 0) {
			fprintf(stderr, "put %s: %s\n", key, dyn_strerror(rc));
			atomic_fetch_add(&failed, 1);
		}
	}
	return NULL;
}

/* Total hints every running node holds (from status JSON). */
static long
hint_backlog(void)
{
	long total = 0;
	for (int i = 0; i < h.n; i++) {
		if (h.nodes[i].pid <= 0)
			continue;
		struct dyn_client *d = harness_client_direct(&h, i);
		struct dyn_status st;
		CHECK_RC(dyn_status(d, 0, &st), 0);
		const char *p = st.json ? strstr(st.json, "\"hints\": {") : NULL;
		CHECK(p != NULL);
		p += strlen("\"hints\": {");
		while (*p && *p != '}') {
			const char *colon = strchr(p, ':');
			CHECK(colon != NULL);
			total += strtol(colon + 1, (char **)&p, 10);
			if (*p == ',')
				p += 2;
		}
		dyn_status_fini(&st);
		dyn_client_free(d);
	}
	return total;
}

/* Keys missing from node i's own store. */
static int
missing_on(int i, int n)
{
	struct dyn_client *d = harness_client_direct(&h, i);
	struct dyn_req_opts lo = {.flags = WIRE_F_LOCAL};
	int miss = 0;
	char key[32];
	for (int k = 0; k < n; k++) {
		int kl = snprintf(key, sizeof(key), "kill/%d", k);
		struct dyn_get_result r;
		int rc = dyn_get(d, key, (size_t)kl, &lo, &r);
		CHECK(rc == 0 || rc == -ENOENT);
		miss += rc == -ENOENT;
		dyn_get_result_fini(&r);
	}
	dyn_client_free(d);
	return miss;
}

int
main(void)
{
	harness_init(&h);
	harness_start_cluster(&h, 3);
	cl = harness_client(&h, 5000, 0, 1, 2, -1);

	pthread_t th[WRITERS];
	for (int t = 0; t < WRITERS; t++)
		CHECK(pthread_create(&th[t], NULL, writer, NULL) == 0);
	long long t0 = harness_now_ms();
	while (harness_now_ms() - t0 < LOAD_MS / 3)
		harness_pause_ms(50);
	harness_stop(&h, 2, SIGKILL);
	printf("n2 killed at %lld ms, %d puts so far\n", harness_now_ms() - t0,
	    atomic_load(&nkeys));
	while (harness_now_ms() - t0 < LOAD_MS)
		harness_pause_ms(50);
	atomic_store(&stop, true);
	for (int t = 0; t < WRITERS; t++)
		pthread_join(th[t], NULL);
	int n = atomic_load(&nkeys);
	if (n > MAX_KEYS)
		n = MAX_KEYS;
	printf("%d puts in %d s, %d failed\n", n, LOAD_MS / 1000,
	    atomic_load(&failed));
	CHECK(atomic_load(&failed) == 0);

	long backlog = hint_backlog();
	printf("hint backlog while n2 is down: %ld\n", backlog);
	CHECK(backlog > 0);

	/* The hint holders restart: their hints must survive. */
	harness_stop(&h, 0, SIGTERM);
	harness_start(&h, 0, (const char *const[]){"--gossip-interval", "250",
	                          "--ae-interval", "100", NULL});
	long after = hint_backlog();
	printf("hint backlog after restarting n0: %ld\n", after);
	CHECK(after == backlog);

	long long t1 = harness_now_ms();
	harness_start(&h, 2, (const char *const[]){"--gossip-interval", "250",
	                          "--ae-interval", "100", NULL});
	while ((backlog = hint_backlog()) > 0 && harness_now_ms() - t1 < 120000)
		harness_pause_ms(200);
	printf("hint backlog drained to %ld in %lld ms after the restart\n",
	    backlog, harness_now_ms() - t1);
	CHECK(backlog == 0);

	int miss = -1;
	while (harness_now_ms() - t1 < 180000 &&
	    (miss = missing_on(0, n) + missing_on(1, n) + missing_on(2, n)) > 0)
		harness_pause_ms(1000);
	printf("keys missing from an owner: %d (%lld ms after the restart)\n",
	    miss, harness_now_ms() - t1);
	CHECK(miss == 0);
	dyn_client_free(cl);
	return 0;
}
