/*
 * Blob garbage collection on 3 nodes (a round every 200 ms, grace 1 s,
 * anti-entropy every 100 ms over 8 partitions).  Each blob is checked in
 * every node's own store (a local get):
 *   1. blobs B1, B2, B3 and a page R1 naming B2; a record F/x whose
 *      reference header names B1 and R1.  B3, named by nothing, goes from
 *      every node (measured); B1, R1 and B2 stay, for three grace periods;
 *   2. touch: a blob found unreferenced (condemned on every node) and put
 *      again half a grace period later outlives the deadline it had, then
 *      goes;
 *   3. with a member killed, nothing is deleted anywhere for four grace
 *      periods (rounds are given up); after its restart the garbage goes;
 *   4. a reference held only in a hint: n0, cut off from n2, writes F/h
 *      naming B6 and keeps a hint for n2; n1 then overwrites F/h (no
 *      reference) everywhere.  Only the hint still names B6: n1, which
 *      reaches everyone and keeps sweeping, keeps it for four grace
 *      periods; after the heal the hint is delivered and B6 goes;
 *   5. F/x overwritten to name nothing: B1 and R1 go, then B2;
 *   6. more than a round's worth (GC_SWEEP_MAX marks and deletes): 1,500
 *      garbage blobs among 600 that one record names; the garbage goes
 *      over several rounds (measured), the 600 stay;
 *   7. a record whose reference header is malformed keeps every blob
 *      (rounds are given up, saying why); once it is mended, garbage goes.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "blob.h"
#include "buf.h"
#include "err.h"
#include "harness.h"
#include "wire.h"

#define GRACE_MS 1000
#define NLIVE    600
#define NJUNK    1500
#define NPUTTERS 4

static struct harness h;
static struct dyn_client *cl;
static const char *const args[] = {"--gc-interval", "200", "--gc-grace",
    "1000", "--ae-interval", "100", NULL};
static const char *const founder[] = {"--gc-interval", "200",
    "--gc-grace", "1000", "--ae-interval", "100", "--partitions", "8",
    NULL};

/* Does node i hold a live copy of blob key in its own store? */
static bool
held(int i, const uint8_t *key)
{
	struct dyn_client *d = harness_client_direct(&h, i);
	struct dyn_req_opts lo = {.flags = WIRE_F_LOCAL};
	struct dyn_get_result r;
	int rc = dyn_get(d, key, BLOB_KEY_LEN, &lo, &r);
	dyn_get_result_fini(&r);
	dyn_client_free(d);
	if (rc != 0 && rc != -ENOENT) {
		fprintf(stderr, "local get on n%d: %s\n", i, dyn_strerror(rc));
		exit(1);
	}
	return rc == 0;
}


static void
put_blob(uint8_t kind, const char *text, uint8_t key[BLOB_KEY_LEN])
{
	CHECK_RC(dyn_blob_put(cl, kind, text, strlen(text), NULL, key), 0);
}

/* A value naming n blobs, then some opaque bytes. */
static void
refs_value(struct buf *b, uint8_t (*keys)[BLOB_KEY_LEN], uint32_t n)
{
	buf_reset(b);
	blob_refs_encode(b, n ? keys[0] : NULL, n);
	buf_put(b, "tail", 4);
	CHECK_RC(buf_err(b), 0);
}

/* Overwrite key (read, then put with the context) with value. */
static void
overwrite(struct dyn_client *c, const char *key, const void *val,
    size_t len)
{
	struct dyn_get_result r;
	CHECK_RC(dyn_get(c, key, strlen(key), NULL, &r), 0);
	CHECK_RC(dyn_put(c, key, strlen(key), r.ctx, r.ctx_len, val, len,
	             NULL, NULL, NULL),
	    0);
	dyn_get_result_fini(&r);
}

/* Poll until no running node holds key; the ms it took. */
static long long
wait_gone(const uint8_t *key, const char *what, int deadline_ms)
{
	long long t0 = harness_now_ms();
	for (;;) {
		int left = 0;
		for (int i = 0; i < h.n; i++)
			left += h.nodes[i].pid && held(i, key);
		if (left == 0)
			return harness_now_ms() - t0;
		if (harness_now_ms() - t0 > deadline_ms) {
			fprintf(stderr, "%s still on %d nodes after %d ms\n",
			    what, left, deadline_ms);
			for (int i = 0; i < h.n; i++)
				if (h.nodes[i].pid)
					fprintf(stderr, "n%d: gc_rounds=%llu "
					    "gc_aborted=%llu\n",
					    i, (unsigned long long)harness_stat(&h, i,
					        "gc_rounds"),
					    (unsigned long long)harness_stat(&h, i,
					        "gc_aborted"));
			exit(1);
		}
		harness_pause_ms(50);
	}
}

/* For ms (once when ms <= 0), every running node must hold every one of
 * the n keys: fail on the first reading that says otherwise. */
static void
hold_all(const uint8_t *const *keys, int n, int ms, const char *what)
{
	long long t0 = harness_now_ms();
	for (bool first = true; first || harness_now_ms() - t0 < ms;
	     first = false) {
		for (int i = 0; i < h.n; i++) {
			for (int k = 0; h.nodes[i].pid && k < n; k++) {
				if (!held(i, keys[k])) {
					fprintf(stderr, "%s: n%d lost blob %d "
					    "after %lld ms\n",
					    what, i, k, harness_now_ms() - t0);
					exit(1);
				}
			}
		}
		if (ms > 0)
			harness_pause_ms(50);
	}
}

/* The blobs F/big names (phase 6). */
static uint8_t many[NLIVE][BLOB_KEY_LEN];

/* Put junk blobs i = k, k + NPUTTERS, ... (and the live one of the same
 * number): one of NPUTTERS threads sharing the client. */
static void *
putter(void *arg)
{
	char text[64];
	uint8_t key[BLOB_KEY_LEN];
	for (int i = (int)(intptr_t)arg; i < NJUNK; i += NPUTTERS) {
		snprintf(text, sizeof(text), "junk blob %d", i);
		put_blob(BLOB_DATA, text, key);
		if (i < NLIVE) {
			snprintf(text, sizeof(text), "live blob %d", i);
			put_blob(BLOB_DATA, text, key);
			CHECK(memcmp(key, many[i], BLOB_KEY_LEN) == 0);
		}
	}
	return NULL;
}

int
main(void)
{
	harness_init(&h);
	harness_start_joined(&h, 0, -1, founder);
	harness_start_joined(&h, 1, 0, args);
	harness_start_joined(&h, 2, 0, args);
	harness_wait_ring(&h, 3, 30000);
	cl = harness_client(&h, 5000, 0, 1, 2, -1);
	struct buf val;
	buf_init(&val);
	for (int i = 0; i < 3; i++) {
		struct dyn_client *d = harness_client_direct(&h, i);
		struct dyn_status st;
		CHECK_RC(dyn_status(d, 0, &st), 0);
		CHECK(strstr(st.stats, "\ngc_grace_ms=1000\n") != NULL);
		CHECK(st.json && strstr(st.json, "\"gc\": {") != NULL);
		dyn_status_fini(&st);
		dyn_client_free(d);
	}

	/* 1. Referenced blobs stay, directly and through a page; the
	 * others go. */
	uint8_t live[3][BLOB_KEY_LEN]; /* B1, R1, B2 */
	uint8_t b3[BLOB_KEY_LEN], b4[1][BLOB_KEY_LEN], b5[BLOB_KEY_LEN];
	uint8_t b6[1][BLOB_KEY_LEN];
	const uint8_t *const keep[] = {live[0], live[1], live[2]};
	const uint8_t *const keep4[] = {b4[0], live[0], live[1], live[2]};
	const uint8_t *const keep5[] = {b5, live[0], live[1], live[2]};
	const uint8_t *const keep6[] = {b6[0], live[0], live[1], live[2]};
	put_blob(BLOB_DATA, "blob one: named by F/x", live[0]);
	put_blob(BLOB_DATA, "blob two: named by page R1", live[2]);
	refs_value(&val, &live[2], 1);
	CHECK_RC(dyn_blob_put(cl, BLOB_REFS, val.data, val.len, NULL,
	             live[1]),
	    0);
	put_blob(BLOB_DATA, "blob three: named by nothing", b3);
	refs_value(&val, live, 2);
	CHECK_RC(dyn_put(cl, "F/x", 3, NULL, 0, val.data, val.len, NULL, NULL,
	             NULL),
	    0);
	printf("an unreferenced blob was gone from all 3 nodes %lld ms after "
	       "its put\n",
	    wait_gone(b3, "B3", 20000));
	hold_all(keep, 3, 3 * GRACE_MS, "referenced");
	printf("the blobs named by F/x, directly and through a page, stayed "
	       "3 grace periods\n");

	/* 2. Touch.  B4 is found unreferenced by every node (marked), and
	 * put again half a grace later: it lives at least a grace after the
	 * put, past the deadline of the first mark, then goes. */
	put_blob(BLOB_DATA, "blob four: put again while condemned", b4[0]);
	long long t0 = harness_now_ms();
	for (;;) {
		int marked = 0;
		for (int i = 0; i < 3; i++)
			marked += harness_stat(&h, i, "gc_condemned") >= 1;
		if (marked == 3)
			break;
		CHECK(harness_now_ms() - t0 < 20000);
		harness_pause_ms(20);
	}
	hold_all(keep4, 4, GRACE_MS / 2, "condemned");
	long long tput = harness_now_ms();
	put_blob(BLOB_DATA, "blob four: put again while condemned", b4[0]);
	hold_all(keep4, 4, (int)(tput + GRACE_MS * 9 / 10 - harness_now_ms()),
	    "touched");
	wait_gone(b4[0], "B4", 20000);
	printf("a blob put again while condemned outlived its first "
	       "deadline; gone %lld ms after the second put\n",
	    harness_now_ms() - tput);

	/* 3. A member down: nothing is deleted, then deletion resumes. */
	put_blob(BLOB_DATA, "blob five: garbage while n2 is down", b5);
	harness_stop(&h, 2, SIGKILL);
	uint64_t del0 = harness_stat(&h, 0, "gc_deleted"), del1 = harness_stat(&h, 1,
	    "gc_deleted"), ab0 = harness_stat(&h, 0, "gc_aborted");
	hold_all(keep5, 4, 4 * GRACE_MS, "member down");
	CHECK(harness_stat(&h, 0, "gc_deleted") == del0 &&
	    harness_stat(&h, 1, "gc_deleted") == del1);
	CHECK(harness_stat(&h, 0, "gc_aborted") > ab0 + 5);
	harness_start_joined(&h, 2, 0, args);
	printf("with n2 down 4 grace periods nothing was deleted; the garbage "
	       "went %lld ms after its restart\n",
	    wait_gone(b5, "B5", 30000));

	/* 4. A reference only in a hint. */
	put_blob(BLOB_DATA, "blob six: named only by a hint", b6[0]);
	for (int i = 0; i < 3; i++) {
		long long t1 = harness_now_ms();
		while (!held(i, b6[0])) {
			CHECK(harness_now_ms() - t1 < 10000);
			harness_pause_ms(20);
		}
	}
	struct dyn_client *d0 = harness_client_direct(&h, 0);
	struct dyn_client *d1 = harness_client_direct(&h, 1);
	const char *const n2[] = {"n2"};
	CHECK_RC(dyn_fault(d0, 0, n2, 1), 0);
	refs_value(&val, b6, 1);
	CHECK_RC(dyn_put(d0, "F/h", 3, NULL, 0, val.data, val.len, NULL, NULL,
	             NULL),
	    0);
	overwrite(d1, "F/h", "no references", 13);
	uint64_t r1 = harness_stat(&h, 1, "gc_rounds");
	hold_all(keep6, 4, 4 * GRACE_MS, "hinted");
	CHECK(harness_stat(&h, 1, "gc_rounds") > r1 + 5); /* n1 swept meanwhile */
	CHECK_RC(dyn_fault(d0, 0, NULL, 0), 0);
	printf("a blob named only by a pending hint stayed 4 grace periods; "
	       "gone %lld ms after the heal\n",
	    wait_gone(b6[0], "B6", 30000));

	/* 5. F/x names nothing now: its blobs go, the page's child too. */
	overwrite(cl, "F/x", "no references", 13);
	t0 = harness_now_ms();
	wait_gone(live[0], "B1", 20000);
	wait_gone(live[1], "R1", 20000);
	long long tpage = harness_now_ms() - t0;
	long long tchild = wait_gone(live[2], "B2", 20000) + tpage;
	printf("after F/x was overwritten: its blob and page gone in %lld "
	       "ms, the page's child in %lld ms\n",
	    tpage, tchild);

	uint64_t deleted = 0;
	for (int i = 0; i < 3; i++) {
		deleted += harness_stat(&h, i, "gc_deleted");
		CHECK(harness_stat(&h, i, "gc_rounds") > 0);
	}
	printf("%llu blob copies deleted in all\n",
	    (unsigned long long)deleted);
	/* 7 blobs on n0 and n1; n2 counts since its restart (B5 may have
	 * missed it). */
	CHECK(deleted >= 7 + 7 + 4);

	/* 6. Many: F/big names NLIVE blobs (names made here, before the
	 * blobs are put, so none is ever condemned), NJUNK others are
	 * garbage. */
	struct blob_key bk;
	blob_key_derive(&h.key, &bk);
	char text[64];
	for (int i = 0; i < NLIVE; i++) {
		uint8_t name[BLOB_NAME_LEN];
		snprintf(text, sizeof(text), "live blob %d", i);
		blob_name(&bk, text, strlen(text), name);
		blob_key(BLOB_DATA, name, many[i]);
	}
	refs_value(&val, many, NLIVE);
	CHECK_RC(dyn_put(cl, "F/big", 5, NULL, 0, val.data, val.len, NULL,
	             NULL, NULL),
	    0);
	uint64_t del[3];
	for (int i = 0; i < 3; i++)
		del[i] = harness_stat(&h, i, "gc_deleted");
	long long tm = harness_now_ms();
	pthread_t th[NPUTTERS];
	for (intptr_t k = 0; k < NPUTTERS; k++)
		CHECK(pthread_create(&th[k], NULL, putter, (void *)k) == 0);
	for (int k = 0; k < NPUTTERS; k++)
		pthread_join(th[k], NULL);
	long long tput_ms = harness_now_ms() - tm;
	for (;;) {
		int done = 0;
		for (int i = 0; i < 3; i++)
			done += harness_stat(&h, i, "gc_blobs") == NLIVE &&
			    harness_stat(&h, i, "gc_referenced") == NLIVE &&
			    harness_stat(&h, i, "gc_condemned") == 0;
		if (done == 3)
			break;
		if (harness_now_ms() - tm > 60000) {
			for (int i = 0; i < 3; i++)
				fprintf(stderr, "n%d: %llu blobs, %llu "
				    "referenced, %llu condemned\n",
				    i, (unsigned long long)harness_stat(&h, i,
				        "gc_blobs"),
				    (unsigned long long)harness_stat(&h, i,
				        "gc_referenced"),
				    (unsigned long long)harness_stat(&h, i,
				        "gc_condemned"));
			exit(1);
		}
		harness_pause_ms(50);
	}
	uint64_t junk = 0;
	for (int i = 0; i < 3; i++)
		junk += harness_stat(&h, i, "gc_deleted") - del[i];
	printf("%d garbage blobs among %d live ones: put in %lld ms, all "
	       "gone %lld ms after the first put (%llu copies)\n",
	    NJUNK, NLIVE, tput_ms, harness_now_ms() - tm,
	    (unsigned long long)junk);
	CHECK(junk >= 2 * NJUNK);
	const uint8_t *sample[8];
	for (int i = 0; i < 8; i++)
		sample[i] = many[i * (NLIVE / 8)];
	t0 = harness_now_ms();
	while (harness_now_ms() - t0 < 2 * GRACE_MS) {
		for (int i = 0; i < 3; i++)
			CHECK(harness_stat(&h, i, "gc_blobs") == NLIVE);
		hold_all(sample, 8, 0, "many");
		harness_pause_ms(100);
	}

	/* 7. A malformed header: "DREF", 5 references promised, 2 bytes. */
	uint8_t b7[BLOB_KEY_LEN];
	const uint8_t *const keep7[] = {b7};
	put_blob(BLOB_DATA, "blob seven: garbage behind a bad header", b7);
	static const char bad[] = "DREF\0\0\0\5xx";
	CHECK_RC(dyn_put(cl, "F/bad", 5, NULL, 0, bad, sizeof(bad) - 1, NULL,
	             NULL, NULL),
	    0);
	hold_all(keep7, 1, 3 * GRACE_MS, "malformed header");
	struct dyn_status ds;
	CHECK_RC(dyn_status(cl, 0, &ds), 0);
	CHECK(strstr(ds.stats, "malformed reference header") != NULL);
	dyn_status_fini(&ds);
	overwrite(cl, "F/bad", "mended", 6);
	printf("a malformed reference header kept every blob 3 grace periods; "
	       "garbage gone %lld ms after it was mended\n",
	    wait_gone(b7, "B7", 20000));
	buf_fini(&val);
	dyn_client_free(d0);
	dyn_client_free(d1);
	dyn_client_free(cl);
	return 0;
}
