/*
 * A member restarted without --seed (as a systemd unit restarts it) finds
 * the others through its stored ring and never plans a ring without them:
 * before, it knew only itself, took every partition as the claimant of a
 * one-member ring, and the others' records were no longer theirs to keep.
 * 3 nodes, 300 keys; n2 stopped and restarted with no seed: for 3 s every
 * node's ring keeps 3 owners at one epoch, n2 learns both others again,
 * and every key is still on each of its 3 replicas.
 */
#include <signal.h>
#include <string.h>

#include "harness.h"
#include "ring.h"

#define NKEYS 300

static struct harness h;

/* Every running node's ring: 3 owners, no plan, the epoch given (0: any,
 * and it is set). */
static bool
rings_whole(uint64_t *epoch)
{
	for (int i = 0; i < h.n; i++) {
		struct dyn_client *c = harness_client_direct(&h, i);
		struct ring *r;
		uint32_t nrw[3];
		int rc = dyn_ring(c, 0, &r, nrw);
		dyn_client_free(c);
		if (rc != 0)
			return false;
		uint32_t own[RING_MEMBERS_MAX], owners = 0;
		ring_owned_counts(r, RING_CUR, own);
		for (uint32_t k = 0; k < ring_member_count(r); k++)
			owners += own[k] > 0;
		bool ok = owners == 3 && !ring_has_next(r) &&
		    (*epoch == 0 || ring_epoch(r) == *epoch);
		uint64_t e = ring_epoch(r);
		ring_free(r);
		if (!ok) {
			fprintf(stderr, "n%d: %u owners, epoch %llu\n", i, owners,
			    (unsigned long long)e);
			return false;
		}
		if (*epoch == 0)
			*epoch = e;
	}
	return true;
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
	CHECK(rings_whole(&epoch));

	harness_stop(&h, 2, SIGTERM);
	harness_start(&h, 2, NULL); /* no --seed */
	long long t0 = harness_now_ms();
	while (harness_now_ms() - t0 < 3000) {
		CHECK(rings_whole(&epoch));
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
	dyn_client_free(c);
	return 0;
}
