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

#define NKEYS 300

static struct harness h;

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

	harness_stop(&h, 2, SIGTERM);
	harness_start(&h, 2, NULL); /* no --seed */
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
	dyn_client_free(c);
	return 0;
}
