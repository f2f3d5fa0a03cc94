/*
 * The cluster's basics with real nodes: a put through one node reads back
 * through the others; concurrent blind puts become siblings and a put with
 * the merged context resolves them; with 5 nodes every node owns Q/S or
 * Q/S+1 partitions, preference lists hold N distinct nodes, and every key
 * is stored on exactly N nodes.
 */
#include <errno.h>
#include <string.h>

#include "err.h"
#include "harness.h"
#include "keypos.h"
#include "mem.h"
#include "ring.h"
#include "wire.h"

#define NREP 3

static struct harness h;

static void
put_str(struct dyn_client *c, const char *key, const char *val,
    const struct dyn_ctx *ctxs, size_t nctx)
{
	CHECK_RC(dyn_put_ctxs(c, key, strlen(key), ctxs, nctx, val,
	             strlen(val), NULL, NULL, NULL),
	    0);
}

/* The key's live values, sorted, joined by ','. */
static void
values_of(struct dyn_client *c, const char *key, char *out, size_t cap,
    struct dyn_get_result *keep)
{
	struct dyn_get_result r;
	int rc = dyn_get(c, key, strlen(key), NULL, &r);
	CHECK(rc == 0 || rc == -ENOENT);
	const char *vals[16];
	size_t lens[16], n = 0;
	for (uint32_t i = 0; i < r.versions.n && n < 16; i++) {
		if (r.versions.v[i].tombstone)
			continue;
		vals[n] = (const char *)r.versions.v[i].value;
		lens[n++] = r.versions.v[i].len;
	}
	for (size_t i = 1; i < n; i++)
		for (size_t j = i; j > 0; j--) {
			size_t m = lens[j] < lens[j - 1] ? lens[j] : lens[j - 1];
			int c0 = memcmp(vals[j], vals[j - 1], m);
			if (c0 > 0 || (c0 == 0 && lens[j] >= lens[j - 1]))
				break;
			const char *tv = vals[j];
			size_t tl = lens[j];
			vals[j] = vals[j - 1], lens[j] = lens[j - 1];
			vals[j - 1] = tv, lens[j - 1] = tl;
		}
	size_t o = 0;
	out[0] = '\0';
	for (size_t i = 0; i < n && o + lens[i] + 2 < cap; i++) {
		if (i)
			out[o++] = ',';
		memcpy(out + o, vals[i], lens[i]);
		o += lens[i];
		out[o] = '\0';
	}
	if (keep)
		*keep = r;
	else
		dyn_get_result_fini(&r);
}

/* On how many nodes is key stored (each asked for its own replica)? */
static int
copies(struct dyn_client **direct, int nodes, const char *key)
{
	int n = 0;
	struct dyn_req_opts lo = {.flags = WIRE_F_LOCAL};
	for (int i = 0; i < nodes; i++) {
		struct dyn_get_result r;
		int rc = dyn_get(direct[i], key, strlen(key), &lo, &r);
		CHECK(rc == 0 || rc == -ENOENT);
		n += rc == 0;
		dyn_get_result_fini(&r);
	}
	return n;
}

int
main(void)
{
	char buf[256];
	harness_init(&h);
	harness_start_joined(&h, 0, -1, NULL);
	harness_start_joined(&h, 1, 0, NULL);
	harness_start_joined(&h, 2, 0, NULL);
	long long ms = harness_wait_ring(&h, 3, 30000);
	printf("3 nodes formed one ring in %lld ms\n", ms);

	struct dyn_client *d[5];
	for (int i = 0; i < 3; i++)
		d[i] = harness_client_direct(&h, i);

	/* A put through A reads back through B and C. */
	put_str(d[0], "hello", "world", NULL, 0);
	for (int i = 1; i < 3; i++) {
		values_of(d[i], "hello", buf, sizeof(buf), NULL);
		CHECK(strcmp(buf, "world") == 0);
	}
	long long dl0 = harness_now_ms() + 10000;
	while (copies(d, 3, "hello") < 3 && harness_now_ms() < dl0)
		harness_pause_ms(20);
	CHECK(copies(d, 3, "hello") == 3);

	/* Two blind puts through the same node: two siblings. */
	put_str(d[0], "same", "one", NULL, 0);
	put_str(d[0], "same", "two", NULL, 0);
	values_of(d[1], "same", buf, sizeof(buf), NULL);
	CHECK(strcmp(buf, "one,two") == 0);

	/* Through different nodes: two siblings. */
	put_str(d[0], "diff", "one", NULL, 0);
	put_str(d[2], "diff", "two", NULL, 0);
	struct dyn_get_result before;
	values_of(d[1], "diff", buf, sizeof(buf), &before);
	CHECK(strcmp(buf, "one,two") == 0);

	/* A put with a context from before both keeps both plus the new. */
	put_str(d[0], "stale", "base", NULL, 0);
	struct dyn_get_result old;
	values_of(d[0], "stale", buf, sizeof(buf), &old);
	CHECK(strcmp(buf, "base") == 0);
	put_str(d[1], "stale", "one", &(struct dyn_ctx){old.ctx, old.ctx_len},
	    1);
	put_str(d[2], "stale", "two", &(struct dyn_ctx){old.ctx, old.ctx_len},
	    1);
	put_str(d[0], "stale", "three",
	    &(struct dyn_ctx){old.ctx, old.ctx_len}, 1);
	values_of(d[1], "stale", buf, sizeof(buf), NULL);
	CHECK(strcmp(buf, "one,three,two") == 0);
	dyn_get_result_fini(&old);

	/* A put with the merged context resolves to one version. */
	put_str(d[1], "diff", "merged",
	    &(struct dyn_ctx){before.ctx, before.ctx_len}, 1);
	dyn_get_result_fini(&before);
	for (int i = 0; i < 3; i++) {
		values_of(d[i], "diff", buf, sizeof(buf), NULL);
		CHECK(strcmp(buf, "merged") == 0);
	}
	printf("siblings: blind puts kept, merged context resolves\n");

	/* Grow to 5 nodes. */
	harness_start_joined(&h, 3, 1, NULL);
	harness_start_joined(&h, 4, 2, NULL);
	ms = harness_wait_ring(&h, 5, 60000);
	printf("5 nodes settled in %lld ms\n", ms);
	for (int i = 3; i < 5; i++)
		d[i] = harness_client_direct(&h, i);

	struct ring *r;
	uint32_t nrw[3];
	CHECK_RC(dyn_ring(d[4], 0, &r, nrw), 0);
	CHECK(nrw[0] == NREP);
	uint32_t q = ring_q(r), cnt = ring_member_count(r);
	uint32_t own[16];
	CHECK(cnt == 5);
	ring_owned_counts(r, RING_CUR, own);
	for (uint32_t i = 0; i < cnt; i++) {
		printf("  %s owns %u of %u partitions\n",
		    ring_member_name(r, i), own[i], q);
		CHECK(own[i] == q / 5 || own[i] == q / 5 + 1);
	}
	uint32_t x = 2463534242u;
	for (int k = 0; k < 10000; k++) {
		uint8_t key[16];
		for (int b = 0; b < 16; b++) {
			x ^= x << 13, x ^= x >> 17, x ^= x << 5;
			key[b] = (uint8_t)x;
		}
		key[0] &= 0x7f; /* an ordinary key (0xFF: a placement key) */
		struct keypos pos;
		CHECK_RC(keypos_of(key, sizeof(key), &pos), 0);
		uint32_t idx[8], n = 0;
		CHECK_RC(ring_preflist_key(r, RING_CUR, &pos, NREP, idx, &n), 0);
		CHECK(n == NREP);
		CHECK(idx[0] != idx[1] && idx[1] != idx[2] && idx[0] != idx[2]);
	}
	ring_free(r);
	printf("10000 random keys: preference lists of %d distinct nodes\n",
	    NREP);

	/* Every key on exactly N of the 5 nodes (routed puts). */
	struct dyn_client *routed = harness_client(&h, 5000, 0, 1, 2, 3, 4,
	    -1);
	for (int k = 0; k < 200; k++) {
		char key[32];
		snprintf(key, sizeof(key), "spread/%d", k);
		put_str(routed, key, key, NULL, 0);
	}
	/* A put answers after W acks; the last replica may apply it a moment
	 * later, so poll (never more than N copies, N within the deadline). */
	long long dl = harness_now_ms() + 10000;
	for (int k = 0; k < 200; k++) {
		char key[32];
		snprintf(key, sizeof(key), "spread/%d", k);
		int cp;
		while ((cp = copies(d, 5, key)) < NREP &&
		    harness_now_ms() < dl)
			harness_pause_ms(20);
		CHECK(cp == NREP);
	}
	printf("200 keys, each stored on exactly %d of 5 nodes\n", NREP);

	dyn_client_free(routed);
	for (int i = 0; i < 5; i++)
		dyn_client_free(d[i]);
	return 0;
}
