/*
 * A node dies for good and an operator removes it (dynamoctl remove):
 *   - remove is refused for a member that is reachable (-EBUSY), unknown
 *     (-ENOENT) or the node asked (-EINVAL);
 *   - 4 nodes, 1,000 keys, n3 killed, 500 more keys (hints for n3 pile up
 *     on the others), n3 removed by `dynamoctl remove` (the real binary,
 *     which waits until it is done, showing progress; the hints for n3
 *     are redirected by then): the other three form a ring without it
 *     (measured), the hints for n3 go to the keys' new replicas and drain
 *     to 0 (measured), and every one of the 1,500 keys is on each of its 3
 *     replicas (--local);
 *   - n3 restarted on its old data stops by itself (exit 3) and does not
 *     come back into the ring.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>

#include "err.h"
#include "harness.h"
#include "ring.h"
#include "wire.h"

#define NKEYS 1500

static struct harness h;

/* The hints node i holds for target (from status --json). */
static uint64_t
hints_for(int i, const char *target)
{
	struct dyn_client *d = harness_client_direct(&h, i);
	struct dyn_status st;
	uint64_t n = 0;
	CHECK_RC(dyn_status(d, 0, &st), 0);
	const char *hs = st.json ? strstr(st.json, "\"hints\": {") : NULL;
	char pat[80];
	snprintf(pat, sizeof(pat), "\"%s\": ", target);
	const char *p = hs ? strstr(hs, pat) : NULL;
	if (p)
		n = strtoull(p + strlen(pat), NULL, 10);
	dyn_status_fini(&st);
	dyn_client_free(d);
	return n;
}

static uint64_t
hints_total(const char *target)
{
	uint64_t n = 0;
	for (int i = 0; i < 3; i++)
		n += hints_for(i, target);
	return n;
}

/* Whether every key is on each of its replicas under node 0's ring. */
static bool
all_placed(struct dyn_client *const *direct)
{
	struct ring *r;
	uint32_t nrw[3];
	CHECK_RC(dyn_ring(direct[0], 0, &r, nrw), 0);
	struct dyn_req_opts lo = {.flags = WIRE_F_LOCAL};
	bool ok = true;
	for (int i = 0; i < NKEYS && ok; i++) {
		char key[32];
		snprintf(key, sizeof(key), "rm/%d", i);
		uint32_t idx[8], n = harness_replicas(r, nrw[0], key, idx);
		ok = n == 3;
		for (uint32_t k = 0; k < n && ok; k++) {
			int who = atoi(ring_member_name(r, idx[k]) + 1);
			CHECK(who >= 0 && who < 3); /* never n3 */
			struct dyn_get_result g;
			ok = dyn_get(direct[who], key, strlen(key), &lo, &g) == 0;
			dyn_get_result_fini(&g);
		}
	}
	ring_free(r);
	return ok;
}

int
main(void)
{
	harness_init(&h);
	harness_start_cluster(&h, 4);
	struct dyn_client *c = harness_client(&h, 5000, 0, 1, 2, 3, -1);
	struct dyn_client *direct[3];
	for (int i = 0; i < 3; i++)
		direct[i] = harness_client_direct(&h, i);

	char key[32], val[32];
	for (int i = 0; i < 1000; i++) {
		snprintf(key, sizeof(key), "rm/%d", i);
		snprintf(val, sizeof(val), "value-%d", i);
		harness_put(c, key, val);
	}
	CHECK_RC(dyn_remove(direct[0], 0, "n3"), -EBUSY); /* n3 is up */
	CHECK_RC(dyn_remove(direct[0], 0, "nobody"), -ENOENT);
	CHECK_RC(dyn_remove(direct[0], 0, "n0"), -EINVAL);

	harness_stop(&h, 3, SIGKILL);
	struct dyn_client *c3 = harness_client(&h, 5000, 0, 1, 2, -1);
	for (int i = 1000; i < NKEYS; i++) {
		snprintf(key, sizeof(key), "rm/%d", i);
		snprintf(val, sizeof(val), "value-%d", i);
		harness_put(c3, key, val);
	}
	uint64_t held = hints_total("n3");
	printf("hints held for the dead n3: %llu\n", (unsigned long long)held);
	CHECK(held > 0);

	/* By dynamoctl, which follows it: it returns once the partitions
	 * are copied and the hints for n3 are with the keys' replicas. */
	long long t0 = harness_now_ms();
	static char out[16384];
	static const char *const remove[] = {"remove", "n3", NULL};
	int ex = harness_ctl(&h, 0, out, sizeof(out), remove);
	printf("dynamoctl remove n3 (exit %d, %lld ms):\n%s", ex,
	    harness_now_ms() - t0, out);
	CHECK(ex == 0 && strstr(out, "] done in "));
	CHECK(hints_total("n3") == 0);
	harness_wait_ring(&h, 3, 60000);
	printf("n3 removed: 3 nodes hold a ring without it %lld ms later\n",
	    harness_now_ms() - t0);
	while (hints_total("n3") > 0) {
		CHECK(harness_now_ms() - t0 < 60000);
		harness_pause_ms(100);
	}
	printf("hints for n3 redirected to the keys' replicas: none left "
	       "%lld ms after the remove\n",
	    harness_now_ms() - t0);
	while (!all_placed(direct)) {
		CHECK(harness_now_ms() - t0 < 90000);
		harness_pause_ms(200);
	}
	printf("all %d keys on each of their 3 replicas %lld ms after the "
	       "remove\n",
	    NKEYS, harness_now_ms() - t0);
	for (int i = 0; i < NKEYS; i++) {
		snprintf(key, sizeof(key), "rm/%d", i);
		snprintf(val, sizeof(val), "value-%d", i);
		struct dyn_get_result g;
		CHECK_RC(dyn_get(c3, key, strlen(key), NULL, &g), 0);
		CHECK(g.versions.n == 1 && g.versions.v[0].len == strlen(val) &&
		    memcmp(g.versions.v[0].value, val, strlen(val)) == 0);
		dyn_get_result_fini(&g);
	}

	/* n3 comes back on its old data: it learns it was removed and
	 * stops, and the ring stays without it. */
	harness_start_joined(&h, 3, 0, NULL);
	int st = harness_stop(&h, 3, 0); /* signal 0: wait for its exit */
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 3);
	printf("n3 restarted on its old data stopped by itself (exit 3)\n");
	harness_wait_ring(&h, 3, 30000);
	CHECK(all_placed(direct));

	for (int i = 0; i < 3; i++)
		dyn_client_free(direct[i]);
	dyn_client_free(c3);
	dyn_client_free(c);
	return 0;
}
