/*
 * Placement keys and the range read on 3 nodes (N=3, R=2, W=2, no
 * anti-entropy, so only the range read's own read repair fills a replica
 * in): a few hundred keys under one placement part, others under another
 * part and plain keys beside them, listed through many pages from each
 * node as coordinator (order, completeness, deleted keys gone); listed
 * with one replica killed; a replica whose data is wiped gets every key
 * back by the read repair of a list; dynamoctl list pages through a part
 * (and get, put and delete --part reach its keys);
 * malformed requests get errors; a fourth node pulls parts bigger than a
 * transfer batch whole.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "err.h"
#include "harness.h"
#include "keypos.h"
#include "mem.h"
#include "wire.h"

#define NKEYS 300

static struct harness h;
static const char *const extra[] = {"--ae-interval", "off", NULL};

/* The key of entry i of part: header | "e%05d". */
static size_t
pkey(const char *part, int i, uint8_t *out)
{
	size_t hl = keypos_placed_make(part, strlen(part), out);
	return hl + (size_t)sprintf((char *)out + hl, "e%05d", i);
}

static bool
deleted(int i)
{
	return i % 10 == 3;
}

static void
put_key(struct dyn_client *c, const uint8_t *k, size_t kl, int i)
{
	char v[32];
	int n = snprintf(v, sizeof(v), "value-%d", i);
	CHECK_RC(dyn_put(c, k, kl, NULL, 0, v, (size_t)n, NULL, NULL, NULL),
	    0);
}

static void
delete_key(struct dyn_client *c, const uint8_t *k, size_t kl)
{
	struct dyn_get_result r;
	CHECK_RC(dyn_get(c, k, kl, NULL, &r), 0);
	CHECK_RC(dyn_delete(c, k, kl, r.ctx, r.ctx_len, NULL), 0);
	dyn_get_result_fini(&r);
}

/* Done with page pg: its cursor replaces *cursor; false at the end. */
static bool
next_page(struct dyn_range_page *pg, uint8_t **cursor, size_t *clen)
{
	mem_free(*cursor);
	*cursor = pg->next;
	*clen = pg->next_len;
	bool more = pg->more;
	pg->next = NULL;
	dyn_range_page_fini(pg);
	return more;
}

/*
 * List part through c, limit keys a page, and check it holds exactly the
 * entries 0..n-1 that are not deleted, in order, each with its value.
 * Returns the number of pages.
 */
static int
check_list(struct dyn_client *c, const char *part, int n, uint32_t limit,
    const struct dyn_req_opts *o)
{
	uint8_t *cursor = NULL, want[64];
	size_t clen = 0;
	int next = 0, pages = 0;
	for (;;) {
		struct dyn_range_page pg;
		CHECK_RC(dyn_range(c, part, strlen(part), cursor, clen, limit, 0,
		             o, &pg), 0);
		pages++;
		CHECK(pg.n <= limit);
		for (uint32_t i = 0; i < pg.n; i++) {
			while (next < n && deleted(next))
				next++;
			CHECK(next < n);
			size_t wl = pkey(part, next, want);
			const struct dyn_range_entry *e = &pg.e[i];
			if (e->klen != wl || memcmp(e->key, want, wl) != 0) {
				fprintf(stderr, "page %d entry %u: wanted "
				    "%.*s, got %.*s\n", pages, i,
				    (int)(wl - 3 - strlen(part)),
				    want + 3 + strlen(part),
				    (int)(e->klen > 3 ? e->klen - 3 : 0),
				    e->key + 3);
				CHECK(!"the keys in order");
			}
			CHECK(vset_live(&e->versions) == 1);
			char v[32];
			int vl = snprintf(v, sizeof(v), "value-%d", next);
			const struct version *ver = &e->versions.v[0];
			for (uint32_t j = 0; ver->tombstone; j++)
				ver = &e->versions.v[j + 1];
			CHECK(ver->len == (size_t)vl &&
			    memcmp(ver->value, v, (size_t)vl) == 0);
			next++;
		}
		if (!next_page(&pg, &cursor, &clen))
			break;
		CHECK(pages < 10 * n + 10); /* it ends */
	}
	mem_free(cursor);
	while (next < n && deleted(next))
		next++;
	CHECK(next == n);
	return pages;
}

/* Live keys of part in node i's own store (a local list). */
static int
local_live(struct dyn_client *c, const char *part)
{
	struct dyn_req_opts lo = {.flags = WIRE_F_LOCAL};
	uint8_t *cursor = NULL;
	size_t clen = 0;
	int live = 0;
	for (;;) {
		struct dyn_range_page pg;
		CHECK_RC(dyn_range(c, part, strlen(part), cursor, clen, 1000, 0,
		             &lo, &pg), 0);
		for (uint32_t i = 0; i < pg.n; i++)
			live += vset_live(&pg.e[i].versions) > 0;
		if (!next_page(&pg, &cursor, &clen))
			break;
	}
	mem_free(cursor);
	return live;
}

static int
live_count(int n)
{
	int c = 0;
	for (int i = 0; i < n; i++)
		c += !deleted(i);
	return c;
}

/* Wipe node w and restart it, then list through node c at R=3 until w
 * holds every live key again (read repair alone). */
static void
refill(int w, int c, struct dyn_client **one)
{
	CHECK_RC(harness_stop(&h, w, SIGTERM), 0);
	harness_wipe(&h, w);
	harness_start_joined(&h, w, w == 0 ? 1 : 0, extra);
	harness_wait_ring(&h, 3, 30000);
	dyn_client_free(one[w]);
	one[w] = harness_client_direct(&h, w);
	CHECK(local_live(one[w], "dirA") == 0);
	struct dyn_req_opts r3 = {.r = 3};
	struct dyn_range_page pg;
	long long deadline = harness_now_ms() + 20000;
	int have = 0;
	while ((have = local_live(one[w], "dirA")) < live_count(NKEYS) &&
	    harness_now_ms() < deadline) {
		/* R=3 needs the coordinator to see the others healthy. */
		int rc = dyn_range(one[c], "dirA", 4, NULL, 0, 1, 0, &r3, &pg);
		dyn_range_page_fini(&pg);
		if (rc == 0)
			check_list(one[c], "dirA", NKEYS, 64, &r3);
		else
			CHECK_RC(rc, DYN_EQUORUM);
		harness_pause_ms(50);
	}
	if (have != live_count(NKEYS)) {
		fprintf(stderr, "n%d: repaired %d of %d\n", w, have,
		    live_count(NKEYS));
		harness_dump_logs(&h);
	}
	CHECK(have == live_count(NKEYS));
	check_list(one[w], "dirA", NKEYS, 100, NULL);
}

int
main(void)
{
	harness_init(&h);
	harness_start(&h, 0, extra);
	harness_start_joined(&h, 1, 0, extra);
	harness_start_joined(&h, 2, 0, extra);
	harness_wait_ring(&h, 3, 30000);
	struct dyn_client *cl = harness_client(&h, 5000, 0, 1, 2, -1);
	struct dyn_client *one[3];
	for (int i = 0; i < 3; i++)
		one[i] = harness_client_direct(&h, i);

	/* Out of order, with another part and plain keys between. */
	uint8_t k[64];
	for (int j = 0; j < NKEYS; j++) {
		int i = (j * 7) % NKEYS; /* 7 is prime to 300 */
		put_key(cl, k, pkey("dirA", i, k), i);
		if (i < 40)
			put_key(cl, k, pkey("dirB", i, k), i);
		if (i < 20) {
			int n = snprintf((char *)k, sizeof(k), "dirA/e%05d", i);
			put_key(cl, k, (size_t)n, i);
		}
	}
	for (int i = 0; i < NKEYS; i++) {
		if (!deleted(i))
			continue;
		delete_key(cl, k, pkey("dirA", i, k));
		if (i < 40)
			delete_key(cl, k, pkey("dirB", i, k));
	}

	/* Every node coordinates; pages of 37 keys and of one. */
	for (int i = 0; i < 3; i++) {
		int pages = check_list(one[i], "dirA", NKEYS, 37, NULL);
		CHECK(pages >= live_count(NKEYS) / 37);
		check_list(one[i], "dirB", 40, 1000, NULL);
	}
	check_list(cl, "dirB", 40, 1, NULL);
	/* A part nobody wrote: one empty page, the end. */
	struct dyn_range_page pg;
	CHECK_RC(dyn_range(cl, "none", 4, NULL, 0, 0, 0, NULL, &pg), 0);
	CHECK(pg.n == 0 && !pg.more);
	dyn_range_page_fini(&pg);

	/* Malformed requests: an error each, and the node goes on. */
	CHECK_RC(dyn_range(cl, "dirA", 4, "x", 1, 0, 0, NULL, &pg), -EINVAL);
	dyn_range_page_fini(&pg);
	size_t bl = pkey("dirB", 1, k);
	CHECK_RC(dyn_range(cl, "dirA", 4, k, bl, 0, 0, NULL, &pg), -EINVAL);
	dyn_range_page_fini(&pg);
	CHECK_RC(dyn_range(cl, "dirA", 4, NULL, 0, 5000, 0, NULL, &pg),
	    DYN_ETOOBIG);
	dyn_range_page_fini(&pg);
	static uint8_t big[KEYPOS_PLACED_MAX + 8];
	memset(big, 'p', sizeof(big));
	CHECK_RC(dyn_range(cl, big, sizeof(big), NULL, 0, 0, 0, NULL, &pg),
	    DYN_ETOOBIG);
	dyn_range_page_fini(&pg);
	static const uint8_t bad[] = {0xff, 0x00, 0x09, 'd'};
	CHECK_RC(dyn_put(cl, bad, sizeof(bad), NULL, 0, "x", 1, NULL, NULL,
	             NULL),
	    -EINVAL);
	memset(big, 0, sizeof(big));
	size_t hl = keypos_placed_make("dirA", 4, big);
	CHECK_RC(dyn_put(cl, big, hl + KEYPOS_PLACED_MAX, NULL, 0, "x", 1,
	             NULL, NULL, NULL),
	    DYN_ETOOBIG);
	check_list(one[0], "dirB", 40, 7, NULL);

	/* dynamoctl list: every key's rest, one a line, through pages. */
	static char out[65536];
	const char *const args[] = {"list", "dirB", NULL};
	CHECK_RC(harness_ctl(&h, 0, out, sizeof(out), args), 0);
	int lines = 0;
	for (char *p = out; *p; p++)
		lines += *p == '\n';
	CHECK(lines == live_count(40));
	CHECK(strncmp(out, "e00000\ne00001\ne00002\ne00004\n", 28) == 0);
	/* Its keys through get, put and delete --part. */
	char vfile[600];
	snprintf(vfile, sizeof(vfile), "%s/value", h.tmp);
	FILE *vf = fopen(vfile, "w");
	CHECK(vf && fputs("by ctl", vf) >= 0 && fclose(vf) == 0);
	const char *const put_args[] = {"put", "--part", "dirB", "e00003x",
	    vfile, NULL};
	CHECK_RC(harness_ctl(&h, 1, out, sizeof(out), put_args), 0);
	const char *const get_args[] = {"get", "--part", "dirB", "e00003x",
	    NULL};
	CHECK_RC(harness_ctl(&h, 2, out, sizeof(out), get_args), 0);
	CHECK(strcmp(out, "by ctl") == 0);
	CHECK_RC(harness_ctl(&h, 0, out, sizeof(out), args), 0);
	CHECK(strstr(out, "\ne00002\ne00003x\ne00004\n") != NULL);
	const char *const del_args[] = {"delete", "--part", "dirB", "e00003x",
	    NULL};
	CHECK_RC(harness_ctl(&h, 0, out, sizeof(out), del_args), 0);
	CHECK_RC(harness_ctl(&h, 0, out, sizeof(out), args), 0);
	CHECK(strstr(out, "e00003x") == NULL);
	CHECK_RC(harness_ctl(&h, 0, out, sizeof(out), get_args), 2);

	/* One replica killed: R=2 of N=3 still lists every acked key. */
	harness_stop(&h, 1, SIGKILL);
	check_list(one[0], "dirA", NKEYS, 50, NULL);
	check_list(one[2], "dirA", NKEYS, 50, NULL);
	harness_start_joined(&h, 1, 0, extra);
	harness_wait_ring(&h, 3, 30000);

	/* A replica that lost everything: a list at R=3 repairs it (no
	 * hints for it, anti-entropy off: only the read repair can), when
	 * it coordinates the list (its own page) and when another does. */
	refill(2, 2, one);
	refill(1, 0, one);

	/* A transfer of parts bigger than one transfer batch (1 MiB): many
	 * keys at one position, so a pull must resume inside a position.
	 * Every replica of each part under the new ring has all of it, read
	 * alone (before any list could repair it). */
	static char val[4096];
	memset(val, 'v', sizeof(val));
	static const char *const big_parts[] = {"big0", "big1", "big2"};
	for (int p = 0; p < 3; p++)
		for (int i = 0; i < 300; i++)
			CHECK_RC(dyn_put(cl, k, pkey(big_parts[p], i, k), NULL, 0,
			             val, sizeof(val), NULL, NULL, NULL),
			    0);
	harness_start_joined(&h, 3, 0, extra);
	harness_wait_ring(&h, 4, 60000);
	struct dyn_client *c4 = harness_client(&h, 5000, 0, 1, 2, 3, -1);
	struct dyn_get_result gr;
	CHECK_RC(dyn_get(c4, "ring", 4, NULL, &gr), -ENOENT); /* its ring */
	dyn_get_result_fini(&gr);
	int on_new = 0;
	for (int p = 0; p < 3; p++) {
		char addrs[16][128];
		size_t na = 0;
		uint8_t hdr[16];
		size_t hlen = keypos_placed_make(big_parts[p], 4, hdr);
		CHECK_RC(dyn_preflist(c4, hdr, hlen, addrs, 16, &na), 0);
		CHECK(na >= 3);
		for (size_t j = 0; j < 3; j++) {
			int i = 0;
			while (i < 4 && strcmp(h.nodes[i].addr, addrs[j]) != 0)
				i++;
			CHECK(i < 4);
			on_new += i == 3;
			struct dyn_client *d = harness_client_direct(&h, i);
			CHECK(local_live(d, big_parts[p]) == 300);
			dyn_client_free(d);
		}
	}
	printf("range: %d of 3 big parts moved to the new node\n", on_new);
	dyn_client_free(c4);

	for (int i = 0; i < 3; i++)
		dyn_client_free(one[i]);
	dyn_client_free(cl);
	printf("range: ok\n");
	return 0;
}
