/*
 * Unit tests for merkle: order independence, what a change of one key does
 * to the tree, the walk between two replicas (through real encodings), the
 * leaf ranges against ring_partition_range, incremental updates, every
 * decoder check and out-of-memory paths.  The timing of a 100,000-key tree
 * is printed so a slowdown shows up in the test log.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include <openssl/evp.h>

#include "buf.h"
#include "err.h"
#include "keypos.h"
#include "mem.h"
#include "merkle.h"
#include "mono.h"
#include "ring.h"
#include "testmem.h"

/* ---- Helpers ------------------------------------------------------- */

static uint64_t
rnd(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static unsigned
log2u(uint32_t q)
{
	unsigned b = 0;

	while (((uint32_t)1 << b) < q)
		b++;
	return b;
}

/* A stored key: a position in partition part of q, a name, a digest. */
struct item {
	struct keypos pos;
	char key[32];
	size_t klen;
	uint8_t digest[MERKLE_HASH_LEN];
};

static void
item_make(struct item *it, uint32_t q, uint32_t part, uint32_t i,
          uint32_t version, uint64_t *seed)
{
	unsigned qb = log2u(q);
	uint64_t top = rnd(seed);
	char val[48];
	int n;

	if (qb > 0)
		top = top >> qb | (uint64_t)part << (64 - qb);
	be_put_u64(it->pos.b, top);
	be_put_u64(it->pos.b + 8, rnd(seed));
	n = snprintf(it->key, sizeof(it->key), "key-%u", i);
	it->klen = (size_t)n;
	n = snprintf(val, sizeof(val), "value-%u-%u", i, version);
	assert_int_equal(merkle_digest(val, (size_t)n, it->digest), 0);
}

static struct item *
items_make(uint32_t n, uint32_t q, uint32_t part, uint64_t seed)
{
	struct item *v = test_calloc(n, sizeof(*v));

	for (uint32_t i = 0; i < n; i++)
		item_make(&v[i], q, part, i, 0, &seed);
	return v;
}

static void
add(struct merkle *t, const struct item *it)
{
	assert_int_equal(
	    merkle_add(t, &it->pos, it->key, it->klen, it->digest), 0);
}

static void
del(struct merkle *t, const struct item *it)
{
	assert_int_equal(
	    merkle_remove(t, &it->pos, it->key, it->klen, it->digest), 0);
}

static struct merkle *
tree(uint32_t q, uint32_t part, const struct merkle_shape *shape)
{
	struct merkle *t = NULL;

	assert_int_equal(merkle_new(q, part, shape, &t), 0);
	assert_non_null(t);
	return t;
}

static struct merkle *
tree_of(uint32_t q, uint32_t part, const struct merkle_shape *shape,
        const struct item *v, uint32_t n)
{
	struct merkle *t = tree(q, part, shape);

	for (uint32_t i = 0; i < n; i++)
		add(t, &v[i]);
	assert_int_equal(merkle_finish(t), 0);
	return t;
}

/* Every node of a and b equal? */
static bool
trees_equal(const struct merkle *a, const struct merkle *b)
{
	for (uint32_t l = 0; l <= merkle_depth(a); l++) {
		uint32_t w = 1;

		for (uint32_t k = 0; k < l; k++)
			w *= merkle_fanout(a);
		for (uint32_t i = 0; i < w; i++) {
			uint8_t ha[MERKLE_HASH_LEN], hb[MERKLE_HASH_LEN];
			uint64_t ca, cb;

			assert_int_equal(merkle_node(a, l, i, ha, &ca), 0);
			assert_int_equal(merkle_node(b, l, i, hb, &cb), 0);
			if (ca != cb || memcmp(ha, hb, MERKLE_HASH_LEN) != 0)
				return false;
		}
	}
	return true;
}

/* The leaves whose hash differs between a and b, by direct inspection:
 * out has room for merkle_leaves(a). */
static uint32_t
leaves_differing(const struct merkle *a, const struct merkle *b, uint32_t *out)
{
	uint32_t n = 0;

	for (uint32_t i = 0; i < merkle_leaves(a); i++) {
		uint8_t ha[MERKLE_HASH_LEN], hb[MERKLE_HASH_LEN];
		uint64_t ca, cb;

		assert_int_equal(merkle_node(a, merkle_depth(a), i, ha, &ca),
		                 0);
		assert_int_equal(merkle_node(b, merkle_depth(b), i, hb, &cb),
		                 0);
		if (ca != cb || memcmp(ha, hb, MERKLE_HASH_LEN) != 0)
			out[n++] = i;
	}
	return n;
}

/*
 * The whole comparison between a (which starts) and b, through encoded
 * messages: returns the differing leaves (test_free them), checks that both
 * sides end up with the same list and counts the messages.
 */
static uint32_t *
walk(const struct merkle *a, const struct merkle *b, uint32_t *nleaves,
     int *msgs)
{
	const struct merkle *side[2] = {a, b};
	struct buf m;
	int turn = 1;

	buf_init(&m);
	assert_int_equal(merkle_root_encode(a, &m), 0);
	*msgs = 1;
	for (;;) {
		struct merkle_level lv;
		struct merkle_leaves ll;
		struct buf out;
		struct rd in;
		uint32_t *lf = NULL;
		uint32_t nl = 0;
		int rc;

		rd_init(&in, m.data, m.len);
		assert_int_equal(merkle_level_decode(&in, &lv), 0);
		buf_init(&out);
		rc = merkle_step(side[turn], &lv, &out, &lf, &nl);
		buf_fini(&m);
		m = out;
		(*msgs)++;
		if (rc == MERKLE_STEP_MORE) {
			assert_null(lf);
			assert_int_equal(nl, 0);
			/* D + 1 level messages at most. */
			assert_true(*msgs <= (int)merkle_depth(a) + 1);
			turn ^= 1;
			continue;
		}
		assert_int_equal(rc, MERKLE_STEP_DONE);
		assert_true(nl == 0 || lf != NULL);
		rd_init(&in, m.data, m.len);
		assert_int_equal(merkle_leaves_decode(&in, &ll), 0);
		assert_true(merkle_id_match(side[turn ^ 1], &ll.id));
		assert_int_equal(ll.n, nl);
		for (uint32_t i = 0; i < nl; i++)
			assert_int_equal(merkle_leaves_get(&ll, i), lf[i]);
		buf_fini(&m);
		*nleaves = nl;
		return lf;
	}
}

/* Walk a against b and check the leaves found are exactly want[0..n). */
static void
walk_expect(const struct merkle *a, const struct merkle *b,
            const uint32_t *want, uint32_t n)
{
	uint32_t nl;
	int msgs;
	uint32_t *lf = walk(a, b, &nl, &msgs);

	assert_int_equal(nl, n);
	for (uint32_t i = 0; i < n; i++)
		assert_int_equal(lf[i], want[i]);
	/* Nothing differs: root and an empty list.  Otherwise the walk
	 * reaches the leaves: D + 1 level messages and the list. */
	assert_int_equal(msgs, n == 0 ? 2 : (int)merkle_depth(a) + 2);
	mem_free(lf);
}

static bool
pos_in(const struct keypos *p, const struct keypos *from,
       const struct keypos *to, bool to_end)
{
	return memcmp(p, from, KEYPOS_LEN) >= 0 &&
	       (to_end || memcmp(p, to, KEYPOS_LEN) < 0);
}

/* p - 1 as a 128-bit integer (p is never 0 here). */
static void
pos_dec(struct keypos *p)
{
	for (int i = KEYPOS_LEN - 1; i >= 0; i--)
		if (p->b[i]-- != 0)
			break;
}

static double
now_ms(void)
{
	return (double)mono_us() / 1e3;
}

/* ---- Tests --------------------------------------------------------- */

static void
test_new(void **state)
{
	const struct merkle_shape bad[] = {
	    {0, 4}, {3, 0}, {3, 9}, {5, 4}, {17, 1}, {2, 9},
	};
	const struct merkle_shape ok[] = {{1, 1}, {2, 8}, {16, 1}, {4, 4}};
	struct merkle *t = (struct merkle *)1;
	struct merkle_id id;
	uint8_t h[MERKLE_HASH_LEN];
	uint64_t c;

	(void)state;
	assert_int_equal(merkle_new(0, 0, NULL, &t), -EINVAL);
	assert_null(t);
	assert_int_equal(merkle_new(3, 0, NULL, &t), -EINVAL);
	assert_int_equal(merkle_new(64, 64, NULL, &t), -EINVAL);
	assert_int_equal(merkle_new(0xffffffffu, 0, NULL, &t), -EINVAL);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(merkle_new(64, 0, &bad[i], &t), -EINVAL);
	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		t = tree(64, 63, &ok[i]);
		assert_int_equal(merkle_depth(t), ok[i].depth);
		assert_int_equal(merkle_fanout(t), 1u << ok[i].fanout_bits);
		assert_int_equal(merkle_leaves(t),
		                 1u << (ok[i].depth * ok[i].fanout_bits));
		merkle_free(t);
	}

	/* The default shape, and Q at both ends. */
	t = tree(64, 7, NULL);
	assert_int_equal(merkle_depth(t), 3);
	assert_int_equal(merkle_fanout(t), 16);
	assert_int_equal(merkle_leaves(t), 4096);
	merkle_id_get(t, &id);
	assert_int_equal(id.q_bits, 6);
	assert_int_equal(id.part, 7);
	assert_true(merkle_id_match(t, &id));
	id.part = 8;
	assert_false(merkle_id_match(t, &id));
	/* A new tree is finished and empty. */
	assert_false(merkle_stale(t));
	assert_int_equal(merkle_root(t, h, &c), 0);
	assert_int_equal(c, 0);
	for (int i = 0; i < MERKLE_HASH_LEN; i++)
		assert_int_equal(h[i], 0);
	assert_int_equal(merkle_node(t, 4, 0, h, &c), -EINVAL);
	assert_int_equal(merkle_node(t, 1, 16, h, &c), -EINVAL);
	assert_int_equal(merkle_node(t, 3, 4095, h, &c), 0);
	merkle_free(t);
	merkle_free(tree(1, 0, NULL));
	merkle_free(tree(0x80000000u, 0x7fffffffu, NULL));
	merkle_free(NULL);
}

static void
test_digest(void **state)
{
	static const uint8_t abc[MERKLE_HASH_LEN] = {
	    0xba, 0x78, 0x16, 0xbf, 0x8f, 0x01, 0xcf, 0xea, 0x41, 0x41, 0x40,
	    0xde, 0x5d, 0xae, 0x22, 0x23, 0xb0, 0x03, 0x61, 0xa3, 0x96, 0x17,
	    0x7a, 0x9c, 0xb4, 0x10, 0xff, 0x61, 0xf2, 0x00, 0x15, 0xad};
	uint8_t h[MERKLE_HASH_LEN];

	(void)state;
	assert_int_equal(merkle_digest("abc", 3, h), 0);
	assert_memory_equal(h, abc, MERKLE_HASH_LEN);
	assert_int_equal(merkle_digest("", 0, h), 0);
}

static void
sha(const void *a, size_t na, const void *b, size_t nb, const void *c,
    size_t nc, uint8_t out[MERKLE_HASH_LEN])
{
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	unsigned int len;

	assert_non_null(ctx);
	assert_int_equal(EVP_DigestInit_ex(ctx, EVP_sha256(), NULL), 1);
	assert_int_equal(EVP_DigestUpdate(ctx, a, na), 1);
	assert_int_equal(EVP_DigestUpdate(ctx, b, nb), 1);
	assert_int_equal(EVP_DigestUpdate(ctx, c, nc), 1);
	assert_int_equal(EVP_DigestFinal_ex(ctx, out, &len), 1);
	EVP_MD_CTX_free(ctx);
}

/* The hashes are the ones merkle.h specifies, recomputed here on their own:
 * replicas running other builds must agree byte for byte. */
static void
test_hash_definition(void **state)
{
	const struct merkle_shape shape = {1, 1}; /* two leaves */
	struct keypos pos;
	uint8_t digest[MERKLE_HASH_LEN], e[MERKLE_HASH_LEN];
	uint8_t leaf[MERKLE_HASH_LEN], root[MERKLE_HASH_LEN];
	uint8_t kids[2 * MERKLE_HASH_LEN], h[MERKLE_HASH_LEN];
	uint8_t hdr[9];
	uint32_t li;
	uint64_t c;
	struct merkle *t = tree(1, 0, &shape);

	(void)state;
	assert_int_equal(keypos_of("a", 1, &pos), 0);
	assert_int_equal(merkle_digest("record", 6, digest), 0);
	assert_int_equal(merkle_add(t, &pos, "a", 1, digest), 0);
	assert_true(merkle_stale(t));
	assert_int_equal(merkle_root(t, h, &c), -EINVAL);
	assert_int_equal(merkle_finish(t), 0);
	assert_int_equal(merkle_leaf_of(t, &pos, &li), 0);
	assert_int_equal(li, pos.b[0] >> 7);

	hdr[0] = 0x00;
	be_put_u32(hdr + 1, 1);
	sha(hdr, 5, "a", 1, digest, MERKLE_HASH_LEN, e);
	hdr[0] = 0x01;
	be_put_u64(hdr + 1, 1);
	sha(hdr, 9, e, MERKLE_HASH_LEN, "", 0, leaf);
	memset(kids, 0, sizeof(kids));
	memcpy(kids + li * MERKLE_HASH_LEN, leaf, MERKLE_HASH_LEN);
	sha("\x02", 1, kids, sizeof(kids), "", 0, root);

	assert_int_equal(merkle_node(t, 1, li, h, &c), 0);
	assert_int_equal(c, 1);
	assert_memory_equal(h, leaf, MERKLE_HASH_LEN);
	assert_int_equal(merkle_node(t, 1, li ^ 1, h, &c), 0);
	assert_int_equal(c, 0);
	assert_memory_equal(h, kids + (li ^ 1) * MERKLE_HASH_LEN,
	                    MERKLE_HASH_LEN);
	assert_int_equal(merkle_root(t, h, &c), 0);
	assert_int_equal(c, 1);
	assert_memory_equal(h, root, MERKLE_HASH_LEN);
	merkle_free(t);
}

static void
test_order_independent(void **state)
{
	const uint32_t n = 3000;
	struct item *v = items_make(n, 64, 5, 1);
	struct merkle *a, *b, *c, *d;
	uint64_t seed = 99;

	(void)state;
	a = tree_of(64, 5, NULL, v, n);
	/* Reversed. */
	b = tree(64, 5, NULL);
	for (uint32_t i = n; i-- > 0;)
		add(b, &v[i]);
	assert_int_equal(merkle_finish(b), 0);
	/* Shuffled, finished half way (an incremental rehash). */
	c = tree(64, 5, NULL);
	{
		uint32_t *perm = test_malloc(n * sizeof(*perm));

		for (uint32_t i = 0; i < n; i++)
			perm[i] = i;
		for (uint32_t i = n - 1; i > 0; i--) {
			uint32_t j = (uint32_t)(rnd(&seed) % (i + 1));
			uint32_t x = perm[i];
			perm[i] = perm[j];
			perm[j] = x;
		}
		for (uint32_t i = 0; i < n; i++) {
			add(c, &v[perm[i]]);
			if (i == n / 2)
				assert_int_equal(merkle_finish(c), 0);
		}
		test_free(perm);
	}
	assert_int_equal(merkle_finish(c), 0);
	/* Everything, then a third taken out and put back. */
	d = tree(64, 5, NULL);
	for (uint32_t i = 0; i < n; i++)
		add(d, &v[i]);
	assert_int_equal(merkle_finish(d), 0);
	for (uint32_t i = 0; i < n; i += 3)
		del(d, &v[i]);
	assert_int_equal(merkle_finish(d), 0);
	assert_false(trees_equal(a, d));
	for (uint32_t i = 0; i < n; i += 3)
		add(d, &v[i]);
	assert_int_equal(merkle_finish(d), 0);

	assert_true(trees_equal(a, b));
	assert_true(trees_equal(a, c));
	assert_true(trees_equal(a, d));
	walk_expect(a, c, NULL, 0);
	{
		uint8_t h[MERKLE_HASH_LEN];
		uint64_t cnt;

		assert_int_equal(merkle_root(a, h, &cnt), 0);
		assert_int_equal(cnt, n);
	}
	merkle_free(a);
	merkle_free(b);
	merkle_free(c);
	merkle_free(d);
	test_free(v);
}

static void
test_changed_digest(void **state)
{
	const uint32_t n = 5000, k = 1234;
	struct item *v = items_make(n, 256, 17, 2);
	struct merkle *a = tree_of(256, 17, NULL, v, n);
	struct merkle *b;
	uint32_t diff[4096], nd, leaf;
	uint8_t ha[MERKLE_HASH_LEN], hb[MERKLE_HASH_LEN];
	uint64_t ca, cb;
	struct keypos from, to;
	bool to_end;

	(void)state;
	v[k].digest[31] ^= 1; /* another version of one record */
	b = tree_of(256, 17, NULL, v, n);
	assert_int_equal(merkle_root(a, ha, &ca), 0);
	assert_int_equal(merkle_root(b, hb, &cb), 0);
	assert_int_equal(ca, cb);
	assert_memory_not_equal(ha, hb, MERKLE_HASH_LEN);

	assert_int_equal(merkle_leaf_of(a, &v[k].pos, &leaf), 0);
	nd = leaves_differing(a, b, diff);
	assert_int_equal(nd, 1);
	assert_int_equal(diff[0], leaf);
	walk_expect(a, b, &leaf, 1);
	walk_expect(b, a, &leaf, 1);

	assert_int_equal(merkle_leaf_range(a, leaf, &from, &to, &to_end), 0);
	assert_true(pos_in(&v[k].pos, &from, &to, to_end));

	/* Updating b in place (remove the new digest, add the old) brings
	 * it back to a. */
	del(b, &v[k]);
	v[k].digest[31] ^= 1;
	add(b, &v[k]);
	assert_int_equal(merkle_finish(b), 0);
	assert_true(trees_equal(a, b));
	walk_expect(a, b, NULL, 0);
	merkle_free(a);
	merkle_free(b);
	test_free(v);
}

static void
test_one_sided(void **state)
{
	const uint32_t n = 4000;
	struct item *v = items_make(n + 1, 64, 0, 3);
	struct merkle *a = tree_of(64, 0, NULL, v, n);
	struct merkle *b = tree_of(64, 0, NULL, v, n - 1);
	uint32_t want[2], la, lb;
	uint8_t h[MERKLE_HASH_LEN];
	uint64_t ca, cb;

	(void)state;
	/* a has key n-1 that b lacks. */
	assert_int_equal(merkle_root(a, h, &ca), 0);
	assert_int_equal(merkle_root(b, h, &cb), 0);
	assert_int_equal(ca, cb + 1);
	assert_int_equal(merkle_leaf_of(a, &v[n - 1].pos, &la), 0);
	walk_expect(a, b, &la, 1);
	walk_expect(b, a, &la, 1);

	/* And b has key n that a lacks. */
	add(b, &v[n]);
	assert_int_equal(merkle_finish(b), 0);
	assert_int_equal(merkle_leaf_of(b, &v[n].pos, &lb), 0);
	if (la == lb) {
		walk_expect(a, b, &la, 1);
	} else {
		want[0] = la < lb ? la : lb;
		want[1] = la < lb ? lb : la;
		walk_expect(a, b, want, 2);
	}
	merkle_free(a);
	merkle_free(b);
	test_free(v);
}

static void
test_empty(void **state)
{
	struct item *v = items_make(100, 1, 0, 4);
	struct merkle *a = tree(1, 0, NULL);
	struct merkle *b = tree(1, 0, NULL);
	uint32_t leaf;

	(void)state;
	assert_true(trees_equal(a, b));
	walk_expect(a, b, NULL, 0);

	add(b, &v[0]);
	assert_int_equal(merkle_finish(b), 0);
	assert_int_equal(merkle_leaf_of(b, &v[0].pos, &leaf), 0);
	walk_expect(a, b, &leaf, 1);
	walk_expect(b, a, &leaf, 1);
	/* Removing the only key empties the tree again. */
	del(b, &v[0]);
	assert_int_equal(merkle_finish(b), 0);
	assert_true(trees_equal(a, b));

	/* reset forgets everything. */
	for (uint32_t i = 0; i < 100; i++)
		add(b, &v[i]);
	assert_true(merkle_stale(b));
	merkle_reset(b);
	assert_false(merkle_stale(b));
	assert_true(trees_equal(a, b));
	walk_expect(a, b, NULL, 0);
	merkle_free(a);
	merkle_free(b);
	test_free(v);
}

/* Random differences: changed, deleted and added keys; the walk finds
 * exactly the leaves of the keys touched, for several shapes. */
static void
test_many_diffs(void **state)
{
	const struct merkle_shape shapes[] = {
	    {3, 4}, {2, 8}, {4, 2}, {16, 1}, {1, 1}};
	const uint32_t n = 20000, nchg = 300;

	(void)state;
	for (size_t s = 0; s < sizeof(shapes) / sizeof(shapes[0]); s++) {
		const struct merkle_shape *sh = &shapes[s];
		struct item *v = items_make(n + nchg, 64, 33, 5 + s);
		struct merkle *a = tree_of(64, 33, sh, v, n);
		struct merkle *b = tree_of(64, 33, sh, v, n);
		uint32_t nl = merkle_leaves(a);
		uint8_t *touched = test_calloc(nl, 1);
		uint32_t *want = test_malloc(2 * nl * sizeof(*want));
		uint32_t *got, nw = 0, ng, nd, leaf;
		uint64_t seed = 1000 + s;
		int msgs;

		for (uint32_t i = 0; i < nchg; i++) {
			/* Distinct keys: one change per key. */
			uint32_t k = i * (n / nchg) +
			             (uint32_t)(rnd(&seed) % (n / nchg));
			struct item *it = &v[k];

			switch (i % 3) {
			case 0: /* a newer version on b */
				del(b, it);
				it->digest[0] ^= 0x80;
				add(b, it);
				it->digest[0] ^= 0x80;
				break;
			case 1: /* a key only a has */
				add(a, &v[n + i]);
				it = &v[n + i];
				break;
			default: /* a key only b has */
				add(b, &v[n + i]);
				it = &v[n + i];
				break;
			}
			assert_int_equal(merkle_leaf_of(a, &it->pos, &leaf),
			                 0);
			touched[leaf] = 1;
		}
		assert_int_equal(merkle_finish(a), 0);
		assert_int_equal(merkle_finish(b), 0);
		for (uint32_t i = 0; i < nl; i++)
			if (touched[i])
				want[nw++] = i;
		/* Changing a key twice in one leaf could cancel out only
		 * through a hash collision: every touched leaf differs. */
		nd = leaves_differing(a, b, want + nw);
		assert_int_equal(nd, nw);
		assert_memory_equal(want, want + nw, nw * sizeof(*want));
		got = walk(a, b, &ng, &msgs);
		assert_int_equal(ng, nw);
		assert_memory_equal(got, want, nw * sizeof(*want));
		assert_int_equal(msgs, sh->depth + 2);
		printf("shape %ux%u (%u leaves): %u of them differ, %d "
		       "messages\n",
		       sh->depth, 1u << sh->fanout_bits, nl, nw, msgs);
		mem_free(got);
		test_free(touched);
		test_free(want);
		merkle_free(a);
		merkle_free(b);
		test_free(v);
	}
}

/* The leaves tile the partition exactly, and merkle_range is
 * ring_partition_range. */
static void
check_tiling(uint32_t q, uint32_t part, const struct merkle_shape *sh)
{
	struct merkle *t = tree(q, part, sh);
	struct ring *r = NULL;
	struct keypos pf, pt, mf, mt, from, to, prev_to, p;
	bool pend, mend, to_end = false;
	uint32_t leaf;

	assert_int_equal(ring_new(q, "a", "tcp://a:1", &r), 0);
	assert_int_equal(ring_partition_range(r, part, &pf, &pt, &pend), 0);
	merkle_range(t, &mf, &mt, &mend);
	assert_memory_equal(&mf, &pf, KEYPOS_LEN);
	assert_int_equal(mend, pend);
	assert_int_equal(pend, part == q - 1);
	if (!pend)
		assert_memory_equal(&mt, &pt, KEYPOS_LEN);

	for (uint32_t i = 0; i < merkle_leaves(t); i++) {
		assert_int_equal(merkle_leaf_range(t, i, &from, &to, &to_end),
		                 0);
		if (i == 0)
			assert_memory_equal(&from, &pf, KEYPOS_LEN);
		else
			assert_memory_equal(&from, &prev_to, KEYPOS_LEN);
		assert_int_equal(to_end, pend && i == merkle_leaves(t) - 1);
		if (!to_end)
			assert_true(memcmp(&from, &to, KEYPOS_LEN) < 0);
		/* First and last position of the leaf map to it. */
		assert_int_equal(merkle_leaf_of(t, &from, &leaf), 0);
		assert_int_equal(leaf, i);
		if (to_end)
			memset(&p, 0xff, sizeof(p));
		else {
			p = to;
			pos_dec(&p);
		}
		assert_int_equal(merkle_leaf_of(t, &p, &leaf), 0);
		assert_int_equal(leaf, i);
		prev_to = to;
	}
	if (!pend) {
		assert_false(to_end);
		assert_memory_equal(&prev_to, &pt, KEYPOS_LEN);
		/* The first position after the partition is not its. */
		assert_int_equal(merkle_leaf_of(t, &pt, &leaf), -EINVAL);
	}
	if (part > 0) {
		p = pf;
		pos_dec(&p);
		assert_int_equal(merkle_leaf_of(t, &p, &leaf), -EINVAL);
	}
	assert_int_equal(
	    merkle_leaf_range(t, merkle_leaves(t), &from, &to, &to_end),
	    -EINVAL);
	ring_free(r);
	merkle_free(t);
}

static void
test_leaf_ranges(void **state)
{
	const uint32_t qs[] = {1, 2, 64, 4096};
	const struct merkle_shape shapes[] = {{3, 4}, {2, 8}, {16, 1}};

	(void)state;
	for (size_t s = 0; s < sizeof(shapes) / sizeof(shapes[0]); s++) {
		for (size_t i = 0; i < sizeof(qs) / sizeof(qs[0]); i++) {
			uint32_t q = qs[i];
			uint32_t parts[] = {0, 1, q / 2, q - 2, q - 1};

			for (size_t j = 0; j < 5; j++)
				if (parts[j] < q)
					check_tiling(q, parts[j], &shapes[s]);
		}
	}
}

/* Partition 0 and the last partition, at their extreme positions. */
static void
test_partition_edges(void **state)
{
	struct merkle *first = tree(64, 0, NULL);
	struct merkle *last = tree(64, 63, NULL);
	struct item it;
	struct keypos from, to;
	bool to_end;
	uint32_t leaf;
	uint8_t h[MERKLE_HASH_LEN];
	uint64_t c;

	(void)state;
	memset(&it, 0, sizeof(it));
	it.klen = 3;
	memcpy(it.key, "abc", 3);
	assert_int_equal(merkle_digest("x", 1, it.digest), 0);

	/* Position 0: the first leaf of partition 0. */
	add(first, &it);
	assert_int_equal(merkle_leaf_of(first, &it.pos, &leaf), 0);
	assert_int_equal(leaf, 0);
	/* The last position of partition 0: its last leaf. */
	memset(it.pos.b, 0xff, KEYPOS_LEN);
	it.pos.b[0] = 0x03;
	add(first, &it);
	assert_int_equal(merkle_leaf_of(first, &it.pos, &leaf), 0);
	assert_int_equal(leaf, 4095);
	/* The first position of partition 1 is not partition 0's. */
	memset(it.pos.b, 0, KEYPOS_LEN);
	it.pos.b[0] = 0x04;
	assert_int_equal(
	    merkle_add(first, &it.pos, it.key, it.klen, it.digest), -EINVAL);
	assert_int_equal(merkle_finish(first), 0);
	assert_int_equal(merkle_root(first, h, &c), 0);
	assert_int_equal(c, 2);
	/* Nothing changes on a refused add. */
	assert_int_equal(
	    merkle_add(first, &it.pos, it.key, it.klen, it.digest), -EINVAL);
	assert_false(merkle_stale(first));

	/* The end of the ring: the last leaf of the last partition. */
	memset(it.pos.b, 0xff, KEYPOS_LEN);
	add(last, &it);
	assert_int_equal(merkle_leaf_of(last, &it.pos, &leaf), 0);
	assert_int_equal(leaf, 4095);
	assert_int_equal(merkle_leaf_range(last, 4095, &from, &to, &to_end),
	                 0);
	assert_true(to_end);
	assert_true(pos_in(&it.pos, &from, &to, to_end));
	/* Partition 62's last position is not partition 63's. */
	memset(it.pos.b, 0xff, KEYPOS_LEN);
	it.pos.b[0] = 0xfb;
	assert_int_equal(merkle_add(last, &it.pos, it.key, it.klen, it.digest),
	                 -EINVAL);
	it.pos.b[0] = 0xfc;
	memset(it.pos.b + 1, 0, KEYPOS_LEN - 1);
	add(last, &it);
	assert_int_equal(merkle_leaf_of(last, &it.pos, &leaf), 0);
	assert_int_equal(leaf, 0);
	assert_int_equal(merkle_finish(last), 0);
	/* Trees of different partitions do not compare. */
	{
		struct buf m;
		struct rd in;
		struct merkle_level lv;
		uint32_t *d = (uint32_t *)1, nd = 7;

		buf_init(&m);
		assert_int_equal(merkle_root_encode(first, &m), 0);
		rd_init(&in, m.data, m.len);
		assert_int_equal(merkle_level_decode(&in, &lv), 0);
		assert_false(merkle_id_match(last, &lv.id));
		assert_int_equal(merkle_diff(last, &lv, &d, &nd), DYN_EBADMSG);
		assert_null(d);
		assert_int_equal(nd, 0);
		buf_fini(&m);
	}
	merkle_free(first);
	merkle_free(last);
}

/* Stale trees, bad removes, oversized keys. */
static void
test_updates(void **state)
{
	struct item *v = items_make(10, 64, 1, 6);
	struct merkle *t = tree(64, 1, NULL);
	struct merkle *u = tree_of(64, 1, NULL, v, 10);
	struct merkle_level lv;
	struct buf m;
	struct rd in;
	uint8_t h[MERKLE_HASH_LEN];
	uint64_t c;
	uint32_t *d, nd, zero = 0;
	static uint8_t big[KEY_MAX_LEN + 1];

	(void)state;
	buf_init(&m);
	assert_int_equal(merkle_root_encode(u, &m), 0);
	rd_init(&in, m.data, m.len);
	assert_int_equal(merkle_level_decode(&in, &lv), 0);

	assert_int_equal(
	    merkle_remove(t, &v[0].pos, v[0].key, v[0].klen, v[0].digest),
	    -ENOENT);
	assert_false(merkle_stale(t));
	assert_int_equal(
	    merkle_add(t, &v[0].pos, big, sizeof(big), v[0].digest),
	    DYN_ETOOBIG);
	assert_int_equal(
	    merkle_add(t, &v[0].pos, big, KEY_MAX_LEN, v[0].digest), 0);
	/* Stale: nothing reads hashes. */
	assert_true(merkle_stale(t));
	assert_int_equal(merkle_root(t, h, &c), -EINVAL);
	assert_int_equal(merkle_node(t, 3, 0, h, &c), -EINVAL);
	assert_int_equal(merkle_root_encode(t, &m), -EINVAL);
	assert_int_equal(merkle_children_encode(t, 0, &zero, 1, &m), -EINVAL);
	assert_int_equal(merkle_diff(t, &lv, &d, &nd), -EINVAL);
	assert_int_equal(merkle_step(t, &lv, &m, &d, &nd), -EINVAL);
	assert_null(d);
	assert_int_equal(merkle_finish(t), 0);
	assert_int_equal(merkle_finish(t), 0); /* nothing to do */
	assert_int_equal(merkle_root(t, h, &c), 0);
	assert_int_equal(c, 1);
	buf_fini(&m);
	merkle_free(t);
	merkle_free(u);
	test_free(v);
}

static void
test_codec_roundtrip(void **state)
{
	const uint32_t n = 2000;
	struct item *v = items_make(n, 4096, 4095, 7);
	struct merkle *t = tree_of(4096, 4095, NULL, v, n);
	const uint32_t parents[] = {0, 5, 15};
	const uint32_t lv2[] = {3, 17, 255};
	const uint32_t leaves[] = {0, 9, 4095};
	struct merkle_level lv;
	struct merkle_leaves ll;
	struct buf m;
	struct rd in;
	uint8_t h[MERKLE_HASH_LEN];
	uint64_t c;

	(void)state;
	buf_init(&m);
	assert_int_equal(merkle_root_encode(t, &m), 0);
	assert_int_equal(m.len, 9 + 1 + 4 + MERKLE_NODE_LEN);
	rd_init(&in, m.data, m.len);
	assert_int_equal(merkle_level_decode(&in, &lv), 0);
	assert_int_equal(lv.id.q_bits, 12);
	assert_int_equal(lv.id.part, 4095);
	assert_int_equal(lv.id.shape.depth, 3);
	assert_int_equal(lv.id.shape.fanout_bits, 4);
	assert_int_equal(lv.level, 0);
	assert_int_equal(lv.n, 1);
	{
		uint32_t idx;
		uint64_t cnt;
		const uint8_t *hash;

		merkle_level_get(&lv, 0, &idx, &cnt, &hash);
		assert_int_equal(merkle_root(t, h, &c), 0);
		assert_int_equal(idx, 0);
		assert_int_equal(cnt, n);
		assert_memory_equal(hash, h, MERKLE_HASH_LEN);
	}

	/* Children of three level-1 nodes: 48 level-2 nodes. */
	buf_reset(&m);
	assert_int_equal(merkle_children_encode(t, 1, parents, 3, &m), 0);
	rd_init(&in, m.data, m.len);
	assert_int_equal(merkle_level_decode(&in, &lv), 0);
	assert_int_equal(lv.level, 2);
	assert_int_equal(lv.n, 48);
	for (uint32_t i = 0; i < lv.n; i++) {
		uint32_t idx;
		uint64_t cnt;
		const uint8_t *hash;

		merkle_level_get(&lv, i, &idx, &cnt, &hash);
		assert_int_equal(idx, parents[i / 16] * 16 + i % 16);
		assert_int_equal(merkle_node(t, 2, idx, h, &c), 0);
		assert_int_equal(cnt, c);
		assert_memory_equal(hash, h, MERKLE_HASH_LEN);
	}
	/* Our own hashes never differ from ours. */
	{
		uint32_t *d = (uint32_t *)1, nd = 9;

		assert_int_equal(merkle_diff(t, &lv, &d, &nd), 0);
		assert_null(d);
		assert_int_equal(nd, 0);
	}
	/* Leaves. */
	buf_reset(&m);
	assert_int_equal(merkle_children_encode(t, 2, lv2, 3, &m), 0);
	rd_init(&in, m.data, m.len);
	assert_int_equal(merkle_level_decode(&in, &lv), 0);
	assert_int_equal(lv.level, 3);
	assert_int_equal(lv.n, 48);

	buf_reset(&m);
	assert_int_equal(merkle_leaves_encode(t, leaves, 3, &m), 0);
	rd_init(&in, m.data, m.len);
	assert_int_equal(merkle_leaves_decode(&in, &ll), 0);
	assert_true(merkle_id_match(t, &ll.id));
	assert_int_equal(ll.n, 3);
	for (uint32_t i = 0; i < 3; i++)
		assert_int_equal(merkle_leaves_get(&ll, i), leaves[i]);
	buf_reset(&m);
	assert_int_equal(merkle_leaves_encode(t, NULL, 0, &m), 0);
	rd_init(&in, m.data, m.len);
	assert_int_equal(merkle_leaves_decode(&in, &ll), 0);
	assert_int_equal(ll.n, 0);

	/* Encoders refuse what the decoders would. */
	{
		const uint32_t unsorted[] = {5, 5};
		const uint32_t big[] = {16};
		const uint32_t leaf_big[] = {4096};

		assert_int_equal(merkle_children_encode(t, 3, parents, 1, &m),
		                 -EINVAL);
		assert_int_equal(merkle_children_encode(t, 0, parents, 0, &m),
		                 -EINVAL);
		assert_int_equal(merkle_children_encode(t, 1, unsorted, 2, &m),
		                 -EINVAL);
		assert_int_equal(merkle_children_encode(t, 1, big, 1, &m),
		                 -EINVAL);
		assert_int_equal(merkle_leaves_encode(t, unsorted, 2, &m),
		                 -EINVAL);
		assert_int_equal(merkle_leaves_encode(t, leaf_big, 1, &m),
		                 -EINVAL);
	}
	buf_fini(&m);
	merkle_free(t);
	test_free(v);
}

/* Three valid messages to break: a level-2 message, a leaf list and an
 * empty leaf list. */
struct msgs {
	struct buf level, leaves, empty;
};

static void
msgs_make(struct msgs *ms, struct merkle **tp, struct item **vp)
{
	const uint32_t parents[] = {1, 7};
	const uint32_t leaves[] = {2, 300, 4000};

	*vp = items_make(500, 64, 9, 8);
	*tp = tree_of(64, 9, NULL, *vp, 500);
	buf_init(&ms->level);
	buf_init(&ms->leaves);
	buf_init(&ms->empty);
	assert_int_equal(
	    merkle_children_encode(*tp, 1, parents, 2, &ms->level), 0);
	assert_int_equal(merkle_leaves_encode(*tp, leaves, 3, &ms->leaves), 0);
	assert_int_equal(merkle_leaves_encode(*tp, NULL, 0, &ms->empty), 0);
}

static void
msgs_free(struct msgs *ms, struct merkle *t, struct item *v)
{
	buf_fini(&ms->level);
	buf_fini(&ms->leaves);
	buf_fini(&ms->empty);
	merkle_free(t);
	test_free(v);
}

static int
dec_level(const uint8_t *p, size_t len)
{
	struct merkle_level lv;
	struct rd in;
	int rc;

	rd_init(&in, p, len);
	rc = merkle_level_decode(&in, &lv);
	assert_true(rc == 0 || (rc == DYN_EBADMSG && in.bad));
	return rc;
}

static int
dec_leaves(const uint8_t *p, size_t len)
{
	struct merkle_leaves ll;
	struct rd in;
	int rc;

	rd_init(&in, p, len);
	rc = merkle_leaves_decode(&in, &ll);
	assert_true(rc == 0 || (rc == DYN_EBADMSG && in.bad));
	return rc;
}

static void
test_codec_truncated(void **state)
{
	struct msgs ms;
	struct merkle *t;
	struct item *v;
	uint8_t *p;

	(void)state;
	msgs_make(&ms, &t, &v);
	assert_int_equal(dec_level(ms.level.data, ms.level.len), 0);
	assert_int_equal(dec_leaves(ms.leaves.data, ms.leaves.len), 0);
	assert_int_equal(dec_leaves(ms.empty.data, ms.empty.len), 0);
	for (size_t i = 0; i < ms.level.len; i++)
		assert_int_equal(dec_level(ms.level.data, i), DYN_EBADMSG);
	for (size_t i = 0; i < ms.leaves.len; i++)
		assert_int_equal(dec_leaves(ms.leaves.data, i), DYN_EBADMSG);
	for (size_t i = 0; i < ms.empty.len; i++)
		assert_int_equal(dec_leaves(ms.empty.data, i), DYN_EBADMSG);

	/* A trailing byte is as bad as a missing one. */
	p = test_malloc(ms.level.len + 1);
	memcpy(p, ms.level.data, ms.level.len);
	p[ms.level.len] = 0;
	assert_int_equal(dec_level(p, ms.level.len + 1), DYN_EBADMSG);
	test_free(p);
	p = test_malloc(ms.leaves.len + 1);
	memcpy(p, ms.leaves.data, ms.leaves.len);
	p[ms.leaves.len] = 0;
	assert_int_equal(dec_leaves(p, ms.leaves.len + 1), DYN_EBADMSG);
	test_free(p);
	/* Each decoder refuses the other's message. */
	assert_int_equal(dec_level(ms.leaves.data, ms.leaves.len),
	                 DYN_EBADMSG);
	assert_int_equal(dec_leaves(ms.level.data, ms.level.len), DYN_EBADMSG);
	msgs_free(&ms, t, v);
}

/* Offsets in a level message. */
enum {
	O_FMT = 0,
	O_KIND = 1,
	O_QBITS = 2,
	O_PART = 3,
	O_DEPTH = 7,
	O_FB = 8,
	O_LEVEL = 9,
	O_N = 10,
	O_NODES = 14,
	O_LEAVES = 13, /* in a leaf list */
};

/* Patch a copy of a level message and decode it. */
static int
level_patched(const struct buf *b, size_t off, const void *bytes, size_t n)
{
	uint8_t *p = test_malloc(b->len);
	int rc;

	memcpy(p, b->data, b->len);
	memcpy(p + off, bytes, n);
	rc = dec_level(p, b->len);
	test_free(p);
	return rc;
}

static int
leaves_patched(const struct buf *b, size_t off, const void *bytes, size_t n)
{
	uint8_t *p = test_malloc(b->len);
	int rc;

	memcpy(p, b->data, b->len);
	memcpy(p + off, bytes, n);
	rc = dec_leaves(p, b->len);
	test_free(p);
	return rc;
}

static void
test_codec_corrupt(void **state)
{
	struct msgs ms;
	struct merkle *t;
	struct item *v;
	uint8_t u32[4];
	uint8_t u8;
	const struct buf *lb;

	(void)state;
	msgs_make(&ms, &t, &v);
	lb = &ms.level;
	/* The message is level 2, 32 nodes (children of level-1 1 and 7). */
	assert_int_equal(lb->data[O_LEVEL], 2);
	assert_int_equal(be_get_u32(lb->data + O_N), 32);

#define LEVEL_U8(off, val)                                                    \
	do {                                                                  \
		u8 = (val);                                                   \
		assert_int_equal(level_patched(lb, (off), &u8, 1),            \
		                 DYN_EBADMSG);                                \
	} while (0)
#define LEVEL_U32(off, val)                                                   \
	do {                                                                  \
		be_put_u32(u32, (val));                                       \
		assert_int_equal(level_patched(lb, (off), u32, 4),            \
		                 DYN_EBADMSG);                                \
	} while (0)

	LEVEL_U8(O_FMT, 0);
	LEVEL_U8(O_FMT, 2);
	LEVEL_U8(O_KIND, 0);
	LEVEL_U8(O_KIND, 2);
	LEVEL_U8(O_KIND, 3);
	LEVEL_U8(O_QBITS, 32);
	LEVEL_U8(O_QBITS, 255);
	LEVEL_U8(O_QBITS, 3);  /* part 9 >= 2^3 */
	LEVEL_U32(O_PART, 64); /* q_bits 6 */
	LEVEL_U32(O_PART, 0xffffffffu);
	LEVEL_U8(O_DEPTH, 0);
	LEVEL_U8(O_DEPTH, 5); /* 5 * 4 bits > 16 */
	LEVEL_U8(O_DEPTH, 1); /* level 2 > depth 1 */
	LEVEL_U8(O_FB, 0);
	LEVEL_U8(O_FB, 9);
	LEVEL_U8(O_FB, 1);    /* index >= 2^(1*2) */
	LEVEL_U8(O_LEVEL, 4); /* > depth */
	LEVEL_U8(O_LEVEL, 0); /* 32 nodes at the root's level */
	LEVEL_U8(O_LEVEL, 1); /* 32 nodes > 16 */
	LEVEL_U32(O_N, 0);
	LEVEL_U32(O_N, 31); /* body longer than n says */
	LEVEL_U32(O_N, 33);
	LEVEL_U32(O_N, 257); /* more than the level holds */
	LEVEL_U32(O_N, 0xffffffffu);
	/* Indices: duplicate, decreasing, out of range. */
	LEVEL_U32(O_NODES + MERKLE_NODE_LEN, be_get_u32(lb->data + O_NODES));
	LEVEL_U32(O_NODES, be_get_u32(lb->data + O_NODES + MERKLE_NODE_LEN));
	LEVEL_U32(O_NODES + 31 * MERKLE_NODE_LEN, 256);
	LEVEL_U32(O_NODES + 31 * MERKLE_NODE_LEN, 0xffffffffu);
	/* A count that contradicts its hash. */
	{
		uint8_t zero[MERKLE_HASH_LEN + 8] = {0};
		uint8_t one[8] = {0, 0, 0, 0, 0, 0, 0, 1};
		size_t nonempty = 0, empty = 0;
		bool have_nonempty = false, have_empty = false;

		for (uint32_t i = 0; i < 32; i++) {
			size_t e = O_NODES + (size_t)i * MERKLE_NODE_LEN;
			if (be_get_u64(lb->data + e + 4) != 0) {
				nonempty = e;
				have_nonempty = true;
			} else {
				empty = e;
				have_empty = true;
			}
		}
		assert_true(have_nonempty);
		/* count 0, non-zero hash */
		assert_int_equal(level_patched(lb, nonempty + 4, zero, 8),
		                 DYN_EBADMSG);
		/* non-zero count, zero hash */
		assert_int_equal(
		    level_patched(lb, nonempty + 12, zero, MERKLE_HASH_LEN),
		    DYN_EBADMSG);
		if (have_empty)
			assert_int_equal(level_patched(lb, empty + 4, one, 8),
			                 DYN_EBADMSG);
		/* Consistent changes pass: a node may be empty. */
		assert_int_equal(
		    level_patched(lb, nonempty + 4, zero, sizeof(zero)), 0);
	}
#undef LEVEL_U8
#undef LEVEL_U32

	/* Leaf list: n over the leaves, n against the body, order. */
	lb = &ms.leaves;
	be_put_u32(u32, 4097);
	assert_int_equal(leaves_patched(lb, O_LEAVES - 4, u32, 4),
	                 DYN_EBADMSG);
	be_put_u32(u32, 2);
	assert_int_equal(leaves_patched(lb, O_LEAVES - 4, u32, 4),
	                 DYN_EBADMSG);
	be_put_u32(u32, 0xffffffffu);
	assert_int_equal(leaves_patched(lb, O_LEAVES - 4, u32, 4),
	                 DYN_EBADMSG);
	be_put_u32(u32, 2);
	assert_int_equal(leaves_patched(lb, O_LEAVES + 4, u32, 4),
	                 DYN_EBADMSG);
	be_put_u32(u32, 300);
	assert_int_equal(leaves_patched(lb, O_LEAVES + 8, u32, 4),
	                 DYN_EBADMSG);
	be_put_u32(u32, 4096);
	assert_int_equal(leaves_patched(lb, O_LEAVES + 8, u32, 4),
	                 DYN_EBADMSG);
	u8 = 2;
	assert_int_equal(leaves_patched(lb, O_DEPTH, &u8, 1), DYN_EBADMSG);
	u8 = 1;
	assert_int_equal(leaves_patched(lb, O_KIND, &u8, 1), DYN_EBADMSG);
	msgs_free(&ms, t, v);
}

/* Flip every bit of valid messages: each decode fails cleanly or gives a
 * message that merkle_diff/merkle_step take without harm. */
static void
test_codec_bitflips(void **state)
{
	struct msgs ms;
	struct merkle *t;
	struct item *v;
	struct buf *bufs[] = {&ms.level, &ms.leaves};
	uint32_t accepted = 0, refused = 0;

	(void)state;
	msgs_make(&ms, &t, &v);
	for (size_t b = 0; b < 2; b++) {
		const struct buf *src = bufs[b];
		uint8_t *p = test_malloc(src->len);

		for (size_t bit = 0; bit < src->len * 8; bit++) {
			struct merkle_level lv;
			struct merkle_leaves ll;
			struct rd in;
			int rc;

			memcpy(p, src->data, src->len);
			p[bit / 8] ^= (uint8_t)(1u << (bit % 8));
			rd_init(&in, p, src->len);
			rc = b == 0 ? merkle_level_decode(&in, &lv)
			            : merkle_leaves_decode(&in, &ll);
			assert_true(rc == 0 || rc == DYN_EBADMSG);
			if (rc != 0) {
				refused++;
				continue;
			}
			accepted++;
			if (b == 0) {
				uint32_t *d, nd;
				struct buf out;

				rc = merkle_diff(t, &lv, &d, &nd);
				assert_true(rc == 0 || rc == DYN_EBADMSG);
				assert_int_equal(rc != 0,
				                 !merkle_id_match(t, &lv.id));
				mem_free(d);
				buf_init(&out);
				rc = merkle_step(t, &lv, &out, &d, &nd);
				assert_true(rc >= 0 || rc == DYN_EBADMSG);
				mem_free(d);
				buf_fini(&out);
			}
		}
		test_free(p);
	}
	printf("bit flips: %u accepted, %u refused\n", accepted, refused);
	msgs_free(&ms, t, v);
}

/* A hand-built message (not decoded) is still checked. */
static void
test_diff_checks(void **state)
{
	struct merkle *t = tree(64, 3, NULL);
	struct merkle *other = tree(64, 3, &(struct merkle_shape){2, 4});
	uint8_t node[MERKLE_NODE_LEN] = {0};
	struct merkle_level lv;
	uint32_t *d, nd;
	struct buf out;

	(void)state;
	buf_init(&out);
	memset(&lv, 0, sizeof(lv));
	merkle_id_get(t, &lv.id);
	lv.level = 1;
	lv.n = 1;
	lv.nodes = node;
	be_put_u32(node, 15);
	assert_int_equal(merkle_diff(t, &lv, &d, &nd), 0);
	assert_int_equal(nd, 0);
	be_put_u32(node, 16);
	assert_int_equal(merkle_diff(t, &lv, &d, &nd), DYN_EBADMSG);
	assert_null(d);
	lv.n = 17;
	assert_int_equal(merkle_diff(t, &lv, &d, &nd), DYN_EBADMSG);
	lv.n = 1;
	lv.level = 4;
	assert_int_equal(merkle_diff(t, &lv, &d, &nd), DYN_EBADMSG);
	assert_int_equal(merkle_step(t, &lv, &out, &d, &nd), DYN_EBADMSG);
	/* Another shape is another tree. */
	lv.level = 1;
	be_put_u32(node, 0);
	merkle_id_get(other, &lv.id);
	assert_int_equal(merkle_diff(t, &lv, &d, &nd), DYN_EBADMSG);
	assert_int_equal(merkle_step(t, &lv, &out, &d, &nd), DYN_EBADMSG);
	assert_int_equal(merkle_diff(other, &lv, &d, &nd), 0);
	assert_int_equal(out.len, 0);
	buf_fini(&out);
	merkle_free(t);
	merkle_free(other);
}

static void
test_out_of_memory(void **state)
{
	struct item *v = items_make(200, 64, 2, 9);
	struct merkle *a = tree_of(64, 2, NULL, v, 200);
	struct merkle *b = tree_of(64, 2, NULL, v, 199);
	struct merkle *t = NULL;
	struct merkle_level lv;
	struct buf m, out;
	struct rd in;
	uint32_t *d, nd;
	int rc, i;

	(void)state;
	/* merkle_new fails cleanly at every allocation. */
	for (i = 0;; i++) {
		testmem_fail_after(i);
		mem_set_allocator(&testmem_failing);
		rc = merkle_new(64, 2, NULL, &t);
		mem_set_allocator(&testmem_checked);
		if (rc == 0)
			break;
		assert_int_equal(rc, -ENOMEM);
		assert_null(t);
	}
	assert_true(i > 0);
	merkle_free(t);

	/* merkle_diff and merkle_step. */
	buf_init(&m);
	assert_int_equal(merkle_root_encode(a, &m), 0);
	rd_init(&in, m.data, m.len);
	assert_int_equal(merkle_level_decode(&in, &lv), 0);
	testmem_fail_after(0);
	mem_set_allocator(&testmem_failing);
	rc = merkle_diff(b, &lv, &d, &nd);
	mem_set_allocator(&testmem_checked);
	assert_int_equal(rc, -ENOMEM);
	assert_null(d);
	for (i = 0;; i++) {
		buf_init(&out);
		testmem_fail_after(i);
		mem_set_allocator(&testmem_failing);
		rc = merkle_step(b, &lv, &out, &d, &nd);
		mem_set_allocator(&testmem_checked);
		buf_fini(&out);
		if (rc >= 0)
			break;
		assert_int_equal(rc, -ENOMEM);
		assert_null(d);
	}
	assert_int_equal(rc, MERKLE_STEP_MORE);
	assert_true(i > 0);
	/* A broken output buffer. */
	buf_init(&out);
	testmem_fail_after(0);
	mem_set_allocator(&testmem_failing);
	assert_int_equal(merkle_root_encode(a, &out), -ENOMEM);
	assert_int_equal(merkle_leaves_encode(a, NULL, 0, &out), -ENOMEM);
	mem_set_allocator(&testmem_checked);
	buf_fini(&out);
	buf_fini(&m);
	merkle_free(a);
	merkle_free(b);
	test_free(v);
}

/* 100,000 real keys (MD5 positions) in one tree, timed. */
static void
test_large(void **state)
{
	const uint32_t n = 100000;
	struct item *v = test_calloc(n, sizeof(*v));
	struct merkle *a = tree(1, 0, NULL);
	struct merkle *b = tree(1, 0, NULL);
	struct merkle *e = tree(1, 0, NULL);
	double t0, t1, t2, t3, t4, t5;
	uint32_t *lf, nl;
	int msgs;

	(void)state;
	t0 = now_ms();
	for (uint32_t i = 0; i < n; i++) {
		char val[32];
		int k;

		k = snprintf(v[i].key, sizeof(v[i].key), "/home/u/f%u", i);
		v[i].klen = (size_t)k;
		assert_int_equal(keypos_of(v[i].key, v[i].klen, &v[i].pos), 0);
		k = snprintf(val, sizeof(val), "record %u", i);
		assert_int_equal(merkle_digest(val, (size_t)k, v[i].digest),
		                 0);
	}
	t1 = now_ms();
	for (uint32_t i = 0; i < n; i++)
		add(a, &v[i]);
	t2 = now_ms();
	assert_int_equal(merkle_finish(a), 0);
	t3 = now_ms();
	for (uint32_t i = n; i-- > 0;)
		add(b, &v[i]);
	del(b, &v[n / 2]);
	v[n / 2].digest[5] ^= 1;
	add(b, &v[n / 2]);
	assert_int_equal(merkle_finish(b), 0);
	t4 = now_ms();
	lf = walk(a, b, &nl, &msgs);
	t5 = now_ms();
	assert_int_equal(nl, 1);
	mem_free(lf);
	printf("%u keys: MD5 + record digests %.1f ms, merkle_add %.1f ms "
	       "(%.2f us/key), merkle_finish %.2f ms, walk (1 leaf, %d "
	       "messages) %.2f ms\n",
	       n, t1 - t0, t2 - t1, (t2 - t1) * 1e3 / n, t3 - t2, msgs,
	       t5 - t4);
	/* Against an empty replica every leaf differs. */
	t4 = now_ms();
	lf = walk(e, a, &nl, &msgs);
	t5 = now_ms();
	printf("against an empty replica: %u leaves differ, walk %.2f ms\n",
	       nl, t5 - t4);
	assert_true(nl > 4000); /* ~24 keys a leaf: hardly any is empty */
	mem_free(lf);
	merkle_free(a);
	merkle_free(b);
	merkle_free(e);
	test_free(v);
}

/* Each test under cmocka's leak-checked allocator. */
#define T(fn)                                                                 \
	cmocka_unit_test_setup_teardown(fn, testmem_setup, testmem_teardown)

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    T(test_new),
	    T(test_digest),
	    T(test_hash_definition),
	    T(test_order_independent),
	    T(test_changed_digest),
	    T(test_one_sided),
	    T(test_empty),
	    T(test_many_diffs),
	    T(test_leaf_ranges),
	    T(test_partition_edges),
	    T(test_updates),
	    T(test_codec_roundtrip),
	    T(test_codec_truncated),
	    T(test_codec_corrupt),
	    T(test_codec_bitflips),
	    T(test_diff_checks),
	    T(test_out_of_memory),
	    T(test_large),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
