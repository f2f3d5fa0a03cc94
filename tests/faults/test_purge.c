/*
 * Tombstones are purged once every replica has them, and only then
 * (grace period 1 s here, anti-entropy every 100 ms, 8 partitions):
 *   1. 3 nodes, 300 keys, 150 deleted: every node ends with the 150 live
 *      keys and no record of the deleted ones (measured);
 *   2. with a node killed, new tombstones stay (a member is down) past
 *      several grace periods; after its restart they go, and nothing
 *      deleted comes back;
 *   3. a late hint: n0 is cut off from n2 and writes v1 of a key (a hint
 *      for n2 stays on n0), then n1 deletes the key everywhere.  The
 *      tombstone stays while the hint is pending — purging it would let the
 *      hint bring v1 back — and goes after the heal, with v1 not back;
 *   4. a wiped node recovers without any purged key coming back.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "err.h"
#include "harness.h"
#include "wire.h"

#define NKEYS 300

static struct harness h;
static const char *const args[] = {"--tombstone-grace", "1000", NULL};
/* 8 partitions: anti-entropy goes round all of them in 0.8 s, so each
 * wait below spans several chances to purge. */
static const char *const founder[] = {"--tombstone-grace", "1000",
    "--partitions", "8", NULL};

/* Poll until every running node holds `want` records; the ms it took. */
static long long
wait_keys(uint64_t want, int deadline_ms)
{
	long long t0 = harness_now_ms();
	for (;;) {
		bool all = true;
		for (int i = 0; i < h.n; i++)
			if (h.nodes[i].pid && harness_keys(&h, i) != want)
				all = false;
		if (all)
			return harness_now_ms() - t0;
		if (harness_now_ms() - t0 > deadline_ms) {
			for (int i = 0; i < h.n; i++)
				fprintf(stderr, "n%d holds %llu records, not %llu\n",
				    i, (unsigned long long)harness_keys(&h, i),
				    (unsigned long long)want);
			harness_dump_logs(&h);
			exit(1);
		}
		harness_pause_ms(100);
	}
}

/* Versions of key in node i's own store (tombstones too): -1 if the node
 * holds a live value. */
static int
local_versions(int i, const char *key)
{
	struct dyn_client *d = harness_client_direct(&h, i);
	struct dyn_req_opts lo = {.flags = WIRE_F_LOCAL};
	struct dyn_get_result r;
	int rc = dyn_get(d, key, strlen(key), &lo, &r);
	int n = rc == 0 ? -1 : (int)r.versions.n;
	CHECK(rc == 0 || rc == -ENOENT);
	dyn_get_result_fini(&r);
	dyn_client_free(d);
	return n;
}

/* Every key of 0..NKEYS for which deleted(i) holds is gone for good and
 * every other one reads back. */
static void
check_keys(struct dyn_client *c, bool (*deleted)(int))
{
	char key[32], val[32];
	for (int i = 0; i < NKEYS; i++) {
		snprintf(key, sizeof(key), "purge/%d", i);
		snprintf(val, sizeof(val), "value-%d", i);
		struct dyn_get_result r;
		int rc = dyn_get(c, key, strlen(key), NULL, &r);
		if (deleted(i)) {
			CHECK_RC(rc, -ENOENT);
			CHECK(r.versions.n == 0);
		} else {
			CHECK_RC(rc, 0);
			CHECK(r.versions.n == 1 &&
			    r.versions.v[0].len == strlen(val) &&
			    memcmp(r.versions.v[0].value, val, strlen(val)) == 0);
		}
		dyn_get_result_fini(&r);
	}
}

static bool
deleted1(int i)
{
	return i % 2 == 0;
}

static bool
deleted2(int i)
{
	return i % 2 == 0 || i < 100;
}

int
main(void)
{
	harness_init(&h);
	harness_start_joined(&h, 0, -1, founder);
	harness_start_joined(&h, 1, 0, args);
	harness_start_joined(&h, 2, 0, args);
	harness_wait_ring(&h, 3, 30000);
	struct dyn_client *c = harness_client(&h, 5000, 0, 1, 2, -1);
	char key[32], val[32];

	/* 1. Deleted keys are purged everywhere. */
	for (int i = 0; i < NKEYS; i++) {
		snprintf(key, sizeof(key), "purge/%d", i);
		snprintf(val, sizeof(val), "value-%d", i);
		harness_put(c, key, val);
	}
	for (int i = 0; i < NKEYS; i += 2) {
		snprintf(key, sizeof(key), "purge/%d", i);
		harness_delete_seen(c, key);
	}
	printf("150 tombstones purged on all 3 nodes %lld ms after the "
	       "deletes\n",
	    wait_keys(NKEYS / 2, 60000));
	for (int i = 0; i < NKEYS; i += 2) {
		snprintf(key, sizeof(key), "purge/%d", i);
		for (int n = 0; n < 3; n++)
			CHECK(local_versions(n, key) == 0);
	}
	check_keys(c, deleted1);

	/* 2. A member down: tombstones stay, then go after its return. */
	harness_stop(&h, 2, SIGKILL);
	for (int i = 1; i < 100; i += 2) {
		snprintf(key, sizeof(key), "purge/%d", i);
		harness_delete_seen(c, key);
	}
	long long t0 = harness_now_ms();
	while (harness_now_ms() - t0 < 4000) { /* four grace periods */
		CHECK(harness_keys(&h, 0) == NKEYS / 2 &&
		    harness_keys(&h, 1) == NKEYS / 2);
		harness_pause_ms(200);
	}
	harness_start_joined(&h, 2, 0, args);
	printf("with n2 down 4 s the 50 new tombstones stayed; purged %lld ms "
	       "after its restart\n",
	    wait_keys(100, 60000));
	check_keys(c, deleted2);

	/* 3. A late hint holds a tombstone back.  The key's first replica
	 * (the purger) is n1, which reaches everyone. */
	char n1addr[128];
	snprintf(n1addr, sizeof(n1addr), "%s", h.nodes[1].addr);
	char late[32];
	for (int i = 0;; i++) {
		snprintf(late, sizeof(late), "late/%d", i);
		char pl[3][128];
		size_t np = 0;
		CHECK_RC(dyn_preflist(c, late, strlen(late), pl, 3, &np), 0);
		if (np == 3 && strcmp(pl[0], n1addr) == 0)
			break;
		CHECK(i < 10000);
	}
	struct dyn_client *d0 = harness_client_direct(&h, 0);
	struct dyn_client *d1 = harness_client_direct(&h, 1);
	const char *const n2[] = {"n2"};
	CHECK_RC(dyn_fault(d0, 0, n2, 1), 0);
	/* n0 and n1 get v1, and n0 keeps a hint for n2; then n1, which
	 * reaches all three, leaves a tombstone on each. */
	harness_put(d0, late, "v1");
	harness_delete_seen(d1, late);
	/* The delete's W=2 acks may come before the third replica has the
	 * tombstone: wait until each has it, then see that they keep it. */
	t0 = harness_now_ms();
	for (;;) {
		int have = 0;
		for (int n = 0; n < 3; n++)
			have += local_versions(n, late) >= 1;
		if (have == 3)
			break;
		CHECK(harness_now_ms() - t0 < 10000);
		harness_pause_ms(20);
	}
	t0 = harness_now_ms();
	while (harness_now_ms() - t0 < 4000) {
		for (int n = 0; n < 3; n++)
			CHECK(local_versions(n, late) >= 1);
		harness_pause_ms(200);
	}
	CHECK_RC(dyn_fault(d0, 0, NULL, 0), 0);
	t0 = harness_now_ms();
	for (;;) {
		int gone = 0;
		for (int n = 0; n < 3; n++) {
			int v = local_versions(n, late);
			CHECK(v >= 0); /* v1 never comes back */
			gone += v == 0;
		}
		if (gone == 3)
			break;
		CHECK(harness_now_ms() - t0 < 60000);
		harness_pause_ms(100);
	}
	printf("the tombstone behind a pending hint stayed 4 s; purged %lld ms "
	       "after the heal, v1 not back\n",
	    harness_now_ms() - t0);
	struct dyn_get_result r;
	CHECK_RC(dyn_get(c, late, strlen(late), NULL, &r), -ENOENT);
	CHECK(r.versions.n == 0);
	dyn_get_result_fini(&r);

	/* 4. A wiped node refills with the live keys only. */
	harness_stop(&h, 2, SIGKILL);
	harness_wipe(&h, 2);
	harness_start_joined(&h, 2, 0, args);
	printf("wiped n2 refilled in %lld ms\n", wait_keys(100, 60000));
	check_keys(c, deleted2);
	CHECK(local_versions(2, late) == 0);

	dyn_client_free(d0);
	dyn_client_free(d1);
	dyn_client_free(c);
	return 0;
}
