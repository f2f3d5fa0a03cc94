/*
 * A member restarted without --seed (as a systemd unit restarts it) finds
 * the others through its stored ring and never plans a ring without them:
 * before, it knew only itself, took every partition as the claimant of a
 * one-member ring, and the others' records were no longer theirs to keep.
 * 3 nodes, 300 keys; n2 stopped and restarted with no seed: for 3 s every
 * node's ring keeps 3 owners at one epoch, n2 learns both others again,
 * and every key is still on each of its 3 replicas.
 *
 * Its actor id: kept over the clean stop (SIGTERM), a new one after
 * SIGKILL (a put sends its version out while its own commit runs, so a
 * killed node may have sent dots it does not know of), and a put through
 * it after that, under an old context, still supersedes the old version.
 */
#include <signal.h>
#include <string.h>

#include "harness.h"
#include "mem.h"

#define NKEYS 300

static struct harness h;

static uint64_t
actor_of(int i)
{
	struct dyn_client *d = harness_client_direct(&h, i);
	struct dyn_status st;
	uint64_t actor = 0;
	long long t0 = harness_now_ms();
	while (actor == 0 && harness_now_ms() - t0 < 10000) {
		if (dyn_status(d, 0, &st) == 0) {
			actor = st.actor;
			dyn_status_fini(&st);
		}
		if (actor == 0)
			harness_pause_ms(50);
	}
	dyn_client_free(d);
	CHECK(actor != 0);
	return actor;
}

int
main(void)
{
	harness_init(&h);
	harness_start_cluster(&h, 3);
	struct dyn_client *c = harness_client(&h, 5000, 0, 1, 2, -1);
	char key[32];
	for (int k = 0; k < NKEYS; k++) {
		snprintf(key, sizeof(key), "r/%d", k);
		harness_put(c, key, "v");
	}
	uint64_t epoch = 0;
	CHECK(harness_rings_agree(&h, 3, &epoch));

	uint64_t actor = actor_of(2);
	harness_stop(&h, 2, SIGTERM);
	harness_start(&h, 2, NULL); /* no --seed */
	CHECK(actor_of(2) == actor);
	CHECK(!harness_log_has(&h, 2, "not clean"));
	printf("a clean stop keeps the actor id %016llx\n",
	    (unsigned long long)actor);
	long long t0 = harness_now_ms();
	while (harness_now_ms() - t0 < 3000) {
		CHECK(harness_rings_agree(&h, 3, &epoch));
		harness_pause_ms(50);
	}
	printf("3 s after the restart: every ring 3 owners at epoch %llu\n",
	    (unsigned long long)epoch);

	/* n2 gossips with the others again: its status names them. */
	struct dyn_client *d = harness_client_direct(&h, 2);
	bool knows = false;
	while (!knows && harness_now_ms() - t0 < 20000) {
		struct dyn_status st;
		if (dyn_status(d, 0, &st) == 0) {
			knows = st.json && strstr(st.json, "\"n0\"") &&
			    strstr(st.json, "\"n1\"");
			dyn_status_fini(&st);
		}
		if (!knows)
			harness_pause_ms(50);
	}
	dyn_client_free(d);
	CHECK(knows);
	printf("n2 knows n0 and n1 again after %lld ms\n",
	    harness_now_ms() - t0);

	uint64_t total = 0;
	for (int i = 0; i < 3; i++)
		total += harness_keys(&h, i);
	CHECK(total == 3 * NKEYS);
	printf("every key on its 3 replicas (%llu records)\n",
	    (unsigned long long)total);

	/* Killed: a new actor id, and the keys it coordinated stay
	 * writable under the contexts clients hold. */
	struct dyn_client *via2 = harness_client_direct(&h, 2);
	uint8_t *ctx = NULL;
	size_t clen = 0;
	CHECK(dyn_put(via2, "k/kill", 6, NULL, 0, "old", 3, NULL, &ctx,
	    &clen) == 0);
	harness_stop(&h, 2, SIGKILL);
	harness_start(&h, 2, NULL);
	CHECK(harness_wait_ring(&h, 3, 20000) >= 0);
	uint64_t fresh = actor_of(2);
	CHECK(fresh != actor);
	CHECK(harness_log_has(&h, 2, "not clean"));
	dyn_client_free(via2);
	via2 = harness_client_direct(&h, 2);
	int rc = -1;
	for (long long t1 = harness_now_ms();
	     rc != 0 && harness_now_ms() - t1 < 10000; harness_pause_ms(50))
		rc = dyn_put(via2, "k/kill", 6, ctx, clen, "new", 3, NULL, NULL,
		    NULL);
	CHECK(rc == 0);
	mem_free(ctx);
	struct dyn_get_result got;
	CHECK(dyn_get(c, "k/kill", 6, NULL, &got) == 0);
	const struct vset *vs = &got.versions;
	CHECK(vs->n == 1 && vs->v[0].len == 3 &&
	    memcmp(vs->v[0].value, "new", 3) == 0);
	dyn_get_result_fini(&got);
	printf("killed: new actor id %016llx; a put under the old context "
	    "supersedes the old version\n", (unsigned long long)fresh);
	dyn_client_free(via2);
	dyn_client_free(c);
	return 0;
}
