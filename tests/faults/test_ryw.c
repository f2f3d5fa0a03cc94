/*
 * Read-your-writes while the ring changes (N=3, R=2, W=2): four nodes are
 * started together and the load begins at once, before their ring has
 * settled; then a fifth joins and n1 leaves, under the same load.  Each
 * put goes to one node (which coordinates or forwards) and, once acked,
 * is read back at once through another node: every read must see it
 * (coord.c: W + P acks and R + P answers during a transfer).
 * Prints the puts, the misses and the errors; passes with 0 misses.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/wait.h>

#include "err.h"
#include "harness.h"
#include "ring.h"

#define LOADERS 4

static struct harness h;
static atomic_bool stop, n4_up;
static atomic_int acked, misses, errors;

/* The nodes the load uses: never n1, which leaves. */
static const int users[] = {0, 2, 3, 4};

/* "epoch E" or "epoch E, transfer pending" of the client's node (for a
 * miss: whose ring was where); a static buffer per thread. */
static const char *
ring_state(struct dyn_client *c)
{
	static _Thread_local char out[2][48];
	static _Thread_local int k;
	char *o = out[k++ % 2];
	struct ring *r;
	uint32_t nrw[3];
	if (dyn_ring(c, 0, &r, nrw) != 0)
		return "no ring";
	snprintf(o, 48, "epoch %llu%s", (unsigned long long)ring_epoch(r),
	    ring_has_next(r) ? ", transfer pending" : "");
	ring_free(r);
	return o;
}

static void *
loader(void *arg)
{
	int id = (int)(intptr_t)arg;
	struct dyn_client *c[5] = {0};
	for (size_t i = 0; i < 3; i++)
		c[users[i]] = harness_client_direct(&h, users[i]);
	char key[48], val[64];
	for (int i = 0; !atomic_load(&stop); i++) {
		/* n4 once it is up (a client made on first use). */
		size_t nu = atomic_load(&n4_up) ? 4 : 3;
		int w = users[(size_t)(i + id) % nu];
		int r = users[(size_t)(i + id + 1) % nu];
		for (int k = 0; k < 2; k++) {
			int x = k ? r : w;
			if (!c[x])
				c[x] = harness_client_direct(&h, x);
		}
		int kl = snprintf(key, sizeof(key), "ryw/%d/%d", id, i);
		int vl = snprintf(val, sizeof(val), "v-%d-%d", id, i);
		int rc = dyn_put(c[w], key, (size_t)kl, NULL, 0, val, (size_t)vl,
		    NULL, NULL, NULL);
		if (rc != 0) {
			atomic_fetch_add(&errors, 1);
			fprintf(stderr, "put %s via n%d: %s\n", key, w,
			    dyn_strerror(rc));
			continue;
		}
		atomic_fetch_add(&acked, 1);
		struct dyn_get_result g;
		rc = dyn_get(c[r], key, (size_t)kl, NULL, &g);
		bool seen = false;
		for (size_t v = 0; rc == 0 && v < g.versions.n; v++)
			seen |= !g.versions.v[v].tombstone &&
			    g.versions.v[v].len == (size_t)vl &&
			    memcmp(g.versions.v[v].value, val, (size_t)vl) == 0;
		if (rc != 0 && rc != -ENOENT) {
			atomic_fetch_add(&errors, 1);
			fprintf(stderr, "get %s via n%d: %s\n", key, r,
			    dyn_strerror(rc));
		} else if (!seen) {
			atomic_fetch_add(&misses, 1);
			fprintf(stderr, "miss: %s put via n%d (%s), read via n%d "
			    "(%s): %s\n", key, w, ring_state(c[w]), r,
			    ring_state(c[r]), rc ? "not found" : "other value");
		}
		dyn_get_result_fini(&g);
	}
	for (int i = 0; i < 5; i++)
		dyn_client_free(c[i]);
	return NULL;
}

/* Wait until node i has a ring (not a settled one): a node with none yet
 * refuses requests ("unreachable"), which a client would take elsewhere;
 * this one has nowhere else to go. */
static void
wait_for_a_ring(int i)
{
	struct dyn_client *d = harness_client_direct(&h, i);
	long long dl = harness_now_ms() + 30000;
	struct ring *r = NULL;
	uint32_t nrw[3];
	while (dyn_ring(d, 0, &r, nrw) != 0 && harness_now_ms() < dl)
		harness_pause_ms(20);
	CHECK(r != NULL);
	ring_free(r);
	dyn_client_free(d);
}

int
main(void)
{
	harness_init(&h);
	/* Together: no wait for the ring before the load. */
	harness_start_joined(&h, 0, -1, NULL);
	for (int i = 1; i < 4; i++)
		harness_start_joined(&h, i, 0, NULL);
	for (int i = 0; i < 4; i++)
		wait_for_a_ring(i);
	pthread_t t[LOADERS];
	for (int i = 0; i < LOADERS; i++)
		CHECK(pthread_create(&t[i], NULL, loader, (void *)(intptr_t)i) ==
		    0);
	long long ms = harness_wait_ring(&h, 4, 60000);
	printf("4 nodes settled under load after %lld ms (%d puts)\n", ms,
	    atomic_load(&acked));

	harness_start_joined(&h, 4, 0, NULL);
	wait_for_a_ring(4);
	atomic_store(&n4_up, true);
	ms = harness_wait_ring(&h, 5, 60000);
	printf("n4 joined in %lld ms (%d puts)\n", ms, atomic_load(&acked));

	struct dyn_client *d1 = harness_client_direct(&h, 1);
	CHECK_RC(dyn_leave(d1, 0), 0);
	dyn_client_free(d1);
	int st = harness_stop(&h, 1, 0); /* signal 0: wait for its exit */
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	ms = harness_wait_ring(&h, 4, 60000);
	printf("n1 left (%d puts)\n", atomic_load(&acked));

	atomic_store(&stop, true);
	for (int i = 0; i < LOADERS; i++)
		pthread_join(t[i], NULL);
	printf("%d puts acked, each read back at once through another node: "
	       "%d misses, %d errors\n",
	    atomic_load(&acked), atomic_load(&misses), atomic_load(&errors));
	CHECK(atomic_load(&acked) > 0);
	CHECK(atomic_load(&misses) == 0);
	CHECK(atomic_load(&errors) == 0);
	for (int i = 0; i < 5; i++)
		if (i != 1)
			CHECK(harness_stop(&h, i, SIGTERM) == 0);
	return 0;
}
