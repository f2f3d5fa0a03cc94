/*
 * merkle — see merkle.h for the tree, the hashes and the walk.
 *
 * The nodes of all levels live in flat arrays in breadth-first order: level
 * l starts at off[l] and holds F^l nodes, so a node's parent and children
 * are found by shifting its index by fanout_bits.  A dirty flag per node
 * marks what merkle_finish must rehash.  Invariant: a dirty node's
 * ancestors are all dirty (add/remove mark whole paths, finish cleans
 * bottom-up), so marking a path stops at the first node already dirty.
 */
#include "merkle.h"

#include <errno.h>
#include <string.h>

#include <openssl/evp.h>

#include "err.h"
#include "mem.h"

/* Domain separation: an entry, a leaf and an inner node never hash the
 * same bytes. */
enum {
	TAG_ENTRY = 0x00,
	TAG_LEAF = 0x01,
	TAG_INNER = 0x02,
};

enum {
	KIND_LEVEL = 1,
	KIND_LEAVES = 2,
};

#define ID_LEN 9 /* format, kind, q_bits, part, depth, fanout_bits */

struct merkle {
	uint8_t q_bits;
	uint32_t part;
	uint8_t depth;
	uint8_t fb;        /* fanout bits */
	uint8_t leaf_bits; /* depth * fb */
	uint32_t nleaves;
	uint32_t nnodes;
	uint32_t off[MERKLE_LEAF_BITS_MAX + 2]; /* first node of each level */
	uint8_t (*hash)[MERKLE_HASH_LEN];       /* nnodes */
	uint64_t *count;                        /* nnodes */
	uint8_t (*sum)[MERKLE_HASH_LEN];        /* nleaves */
	uint8_t *dirty;                         /* nnodes */
	bool stale;
	EVP_MD *md;      /* SHA-256, fetched once: implicit fetches are slow */
	EVP_MD_CTX *ctx; /* reused for every hash */
};

static const uint8_t zero_hash[MERKLE_HASH_LEN];

static bool
is_zero(const uint8_t h[MERKLE_HASH_LEN])
{
	return memcmp(h, zero_hash, MERKLE_HASH_LEN) == 0;
}

static bool
shape_ok(const struct merkle_shape *s)
{
	return s->depth >= 1 && s->fanout_bits >= 1 &&
	       s->fanout_bits <= MERKLE_FANOUT_BITS_MAX &&
	       (unsigned)s->depth * s->fanout_bits <= MERKLE_LEAF_BITS_MAX;
}

/* Width of level l: F^l. */
static uint32_t
width(const struct merkle *t, uint32_t level)
{
	return (uint32_t)1 << (t->fb * level);
}

int
merkle_new(uint32_t q, uint32_t part, const struct merkle_shape *shape,
           struct merkle **out)
{
	static const struct merkle_shape def = {MERKLE_DEPTH_DEFAULT,
	                                        MERKLE_FANOUT_BITS_DEFAULT};
	struct merkle *t = NULL;
	unsigned q_bits = 0;
	int rc;

	*out = NULL;
	if (!shape)
		shape = &def;
	while (q_bits <= MERKLE_Q_BITS_MAX && ((uint32_t)1 << q_bits) < q)
		q_bits++;
	if (q == 0 || q_bits > MERKLE_Q_BITS_MAX ||
	    ((uint32_t)1 << q_bits) != q || part >= q || !shape_ok(shape))
		return -EINVAL;

	if (!(t = mem_calloc(1, sizeof(*t))))
		return -ENOMEM;
	t->q_bits = (uint8_t)q_bits;
	t->part = part;
	t->depth = shape->depth;
	t->fb = shape->fanout_bits;
	t->leaf_bits = (uint8_t)(t->depth * t->fb);
	t->nleaves = (uint32_t)1 << t->leaf_bits;
	for (uint32_t l = 0; l <= t->depth; l++)
		t->off[l + 1] = t->off[l] + width(t, l);
	t->nnodes = t->off[t->depth + 1];

	rc = -ENOMEM;
	if (!(t->hash = mem_calloc(t->nnodes, MERKLE_HASH_LEN)) ||
	    !(t->count = mem_calloc(t->nnodes, sizeof(*t->count))) ||
	    !(t->sum = mem_calloc(t->nleaves, MERKLE_HASH_LEN)) ||
	    !(t->dirty = mem_calloc(t->nnodes, 1)))
		goto out;
	rc = -EIO;
	if (!(t->md = EVP_MD_fetch(NULL, "SHA256", NULL)) ||
	    !(t->ctx = EVP_MD_CTX_new()))
		goto out;
	*out = t;
	t = NULL;
	rc = 0;
out:
	merkle_free(t);
	return rc;
}

void
merkle_free(struct merkle *t)
{
	if (!t)
		return;
	EVP_MD_CTX_free(t->ctx);
	EVP_MD_free(t->md);
	mem_free(t->hash);
	mem_free(t->count);
	mem_free(t->sum);
	mem_free(t->dirty);
	mem_free(t);
}

void
merkle_reset(struct merkle *t)
{
	memset(t->hash, 0, (size_t)t->nnodes * MERKLE_HASH_LEN);
	memset(t->count, 0, (size_t)t->nnodes * sizeof(*t->count));
	memset(t->sum, 0, (size_t)t->nleaves * MERKLE_HASH_LEN);
	memset(t->dirty, 0, t->nnodes);
	t->stale = false;
}

int
merkle_digest(const void *p, size_t n, uint8_t out[MERKLE_HASH_LEN])
{
	unsigned int len = 0;

	if (EVP_Digest(p, n, out, &len, EVP_sha256(), NULL) != 1 ||
	    len != MERKLE_HASH_LEN)
		return -EIO;
	return 0;
}

/* SHA-256 of the concatenation of up to three pieces, with t's context. */
static int
hash3(struct merkle *t, const void *a, size_t na, const void *b, size_t nb,
      const void *c, size_t nc, uint8_t out[MERKLE_HASH_LEN])
{
	unsigned int len = 0;

	if (EVP_DigestInit_ex2(t->ctx, t->md, NULL) != 1 ||
	    EVP_DigestUpdate(t->ctx, a, na) != 1 ||
	    (nb && EVP_DigestUpdate(t->ctx, b, nb) != 1) ||
	    (nc && EVP_DigestUpdate(t->ctx, c, nc) != 1) ||
	    EVP_DigestFinal_ex(t->ctx, out, &len) != 1 ||
	    len != MERKLE_HASH_LEN)
		return -EIO;
	return 0;
}

/* acc += v (sum_add) or acc -= v (sum_sub), as 256-bit big-endian
 * integers mod 2^256. */
static void
sum_add(uint8_t acc[MERKLE_HASH_LEN], const uint8_t v[MERKLE_HASH_LEN])
{
	unsigned carry = 0;

	for (int i = MERKLE_HASH_LEN - 1; i >= 0; i--) {
		carry += (unsigned)acc[i] + v[i];
		acc[i] = (uint8_t)carry;
		carry >>= 8;
	}
}

static void
sum_sub(uint8_t acc[MERKLE_HASH_LEN], const uint8_t v[MERKLE_HASH_LEN])
{
	unsigned borrow = 0;

	for (int i = MERKLE_HASH_LEN - 1; i >= 0; i--) {
		unsigned d = (unsigned)acc[i] - v[i] - borrow;
		acc[i] = (uint8_t)d;
		borrow = (d >> 8) & 1;
	}
}

/* The top 64 bits of a position: q_bits + leaf_bits <= 47 fit. */
static uint64_t
top64(const struct keypos *pos)
{
	return be_get_u64(pos->b);
}

int
merkle_leaf_of(const struct merkle *t, const struct keypos *pos,
               uint32_t *leaf)
{
	uint64_t top = top64(pos);

	if (t->q_bits > 0 && (top >> (64 - t->q_bits)) != t->part)
		return -EINVAL;
	*leaf = (uint32_t)(top >> (64 - t->q_bits - t->leaf_bits)) &
	        (t->nleaves - 1);
	return 0;
}

static void
mark_path(struct merkle *t, uint32_t leaf)
{
	uint32_t i = leaf;

	for (int l = t->depth; l >= 0; l--) {
		uint8_t *d = &t->dirty[t->off[l] + i];
		if (*d)
			break;
		*d = 1;
		i >>= t->fb;
	}
	t->stale = true;
}

static int
change(struct merkle *t, const struct keypos *pos, const void *key,
       size_t klen, const uint8_t digest[MERKLE_HASH_LEN], bool add)
{
	uint8_t hdr[5];
	uint8_t h[MERKLE_HASH_LEN];
	uint32_t leaf;
	uint64_t *cnt;
	int rc;

	if ((rc = merkle_leaf_of(t, pos, &leaf)) != 0)
		return rc;
	if (klen > KEY_MAX_LEN)
		return DYN_ETOOBIG;
	cnt = &t->count[t->off[t->depth] + leaf];
	if (!add && *cnt == 0)
		return -ENOENT;
	hdr[0] = TAG_ENTRY;
	be_put_u32(hdr + 1, (uint32_t)klen);
	if ((rc = hash3(t, hdr, sizeof(hdr), key, klen, digest,
	                MERKLE_HASH_LEN, h)) != 0)
		return rc;
	if (add) {
		sum_add(t->sum[leaf], h);
		(*cnt)++;
	} else {
		sum_sub(t->sum[leaf], h);
		(*cnt)--;
	}
	mark_path(t, leaf);
	return 0;
}

int
merkle_add(struct merkle *t, const struct keypos *pos, const void *key,
           size_t klen, const uint8_t digest[MERKLE_HASH_LEN])
{
	return change(t, pos, key, klen, digest, true);
}

int
merkle_remove(struct merkle *t, const struct keypos *pos, const void *key,
              size_t klen, const uint8_t digest[MERKLE_HASH_LEN])
{
	return change(t, pos, key, klen, digest, false);
}

/* Rehash dirty node i of level l (its children, if any, are clean). */
static int
rehash(struct merkle *t, uint32_t l, uint32_t i)
{
	uint32_t n = t->off[l] + i;
	int rc = 0;

	if (l == t->depth) {
		uint8_t hdr[9];

		if (t->count[n] == 0) {
			/* Only a caller's bad remove leaves a sum behind;
			 * the leaf is empty all the same. */
			memset(t->sum[i], 0, MERKLE_HASH_LEN);
			memset(t->hash[n], 0, MERKLE_HASH_LEN);
			return 0;
		}
		hdr[0] = TAG_LEAF;
		be_put_u64(hdr + 1, t->count[n]);
		return hash3(t, hdr, sizeof(hdr), t->sum[i], MERKLE_HASH_LEN,
		             NULL, 0, t->hash[n]);
	}

	uint32_t fan = width(t, 1);
	uint32_t c = t->off[l + 1] + (i << t->fb);
	uint64_t total = 0;
	uint8_t tag = TAG_INNER;

	for (uint32_t k = 0; k < fan; k++)
		total += t->count[c + k];
	if (total == 0)
		memset(t->hash[n], 0, MERKLE_HASH_LEN);
	else
		rc = hash3(t, &tag, 1, t->hash[c],
		           (size_t)fan * MERKLE_HASH_LEN, NULL, 0, t->hash[n]);
	if (rc == 0)
		t->count[n] = total;
	return rc;
}

int
merkle_finish(struct merkle *t)
{
	int rc;

	if (!t->stale)
		return 0;
	for (int l = t->depth; l >= 0; l--) {
		uint32_t w = width(t, (uint32_t)l);

		for (uint32_t i = 0; i < w; i++) {
			uint8_t *d = &t->dirty[t->off[l] + i];

			if (!*d)
				continue;
			if ((rc = rehash(t, (uint32_t)l, i)) != 0)
				return rc;
			*d = 0;
		}
	}
	t->stale = false;
	return 0;
}

bool
merkle_stale(const struct merkle *t)
{
	return t->stale;
}

void
merkle_id_get(const struct merkle *t, struct merkle_id *id)
{
	memset(id, 0, sizeof(*id));
	id->q_bits = t->q_bits;
	id->part = t->part;
	id->shape.depth = t->depth;
	id->shape.fanout_bits = t->fb;
}

bool
merkle_id_match(const struct merkle *t, const struct merkle_id *id)
{
	return id->q_bits == t->q_bits && id->part == t->part &&
	       id->shape.depth == t->depth && id->shape.fanout_bits == t->fb;
}

uint32_t
merkle_depth(const struct merkle *t)
{
	return t->depth;
}

uint32_t
merkle_fanout(const struct merkle *t)
{
	return width(t, 1);
}

uint32_t
merkle_leaves(const struct merkle *t)
{
	return t->nleaves;
}

/* The range of the positions whose top `bits` bits are prefix (bits in
 * 0..63). */
static void
prefix_range(uint64_t prefix, unsigned bits, struct keypos *from,
             struct keypos *to, bool *to_end)
{
	memset(from, 0, sizeof(*from));
	memset(to, 0, sizeof(*to));
	if (bits == 0) {
		*to_end = true;
		return;
	}
	be_put_u64(from->b, prefix << (64 - bits));
	*to_end = prefix + 1 == (uint64_t)1 << bits;
	if (!*to_end)
		be_put_u64(to->b, (prefix + 1) << (64 - bits));
}

void
merkle_range(const struct merkle *t, struct keypos *from, struct keypos *to,
             bool *to_end)
{
	prefix_range(t->part, t->q_bits, from, to, to_end);
}

int
merkle_leaf_range(const struct merkle *t, uint32_t leaf, struct keypos *from,
                  struct keypos *to, bool *to_end)
{
	if (leaf >= t->nleaves)
		return -EINVAL;
	prefix_range((uint64_t)t->part << t->leaf_bits | leaf,
	             (unsigned)t->q_bits + t->leaf_bits, from, to, to_end);
	return 0;
}

int
merkle_node(const struct merkle *t, uint32_t level, uint32_t index,
            uint8_t hash[MERKLE_HASH_LEN], uint64_t *count)
{
	if (t->stale || level > t->depth || index >= width(t, level))
		return -EINVAL;
	memcpy(hash, t->hash[t->off[level] + index], MERKLE_HASH_LEN);
	*count = t->count[t->off[level] + index];
	return 0;
}

int
merkle_root(const struct merkle *t, uint8_t hash[MERKLE_HASH_LEN],
            uint64_t *count)
{
	return merkle_node(t, 0, 0, hash, count);
}

/* ---- Encoding ------------------------------------------------------ */

static void
put_id(const struct merkle *t, uint8_t kind, struct buf *out)
{
	buf_put_u8(out, MERKLE_FORMAT);
	buf_put_u8(out, kind);
	buf_put_u8(out, t->q_bits);
	buf_put_u32(out, t->part);
	buf_put_u8(out, t->depth);
	buf_put_u8(out, t->fb);
}

static void
put_node(const struct merkle *t, uint32_t level, uint32_t i, struct buf *out)
{
	uint32_t n = t->off[level] + i;

	buf_put_u32(out, i);
	buf_put_u64(out, t->count[n]);
	buf_put(out, t->hash[n], MERKLE_HASH_LEN);
}

int
merkle_root_encode(const struct merkle *t, struct buf *out)
{
	if (t->stale)
		return -EINVAL;
	put_id(t, KIND_LEVEL, out);
	buf_put_u8(out, 0);
	buf_put_u32(out, 1);
	put_node(t, 0, 0, out);
	return buf_err(out);
}

/* idx[0..n) strictly increasing and < w. */
static bool
sorted_below(const uint32_t *idx, uint32_t n, uint32_t w)
{
	for (uint32_t i = 0; i < n; i++)
		if (idx[i] >= w || (i > 0 && idx[i] <= idx[i - 1]))
			return false;
	return true;
}

int
merkle_children_encode(const struct merkle *t, uint32_t level,
                       const uint32_t *idx, uint32_t n, struct buf *out)
{
	uint32_t fan = width(t, 1);

	if (t->stale || level >= t->depth || n == 0 ||
	    !sorted_below(idx, n, width(t, level)))
		return -EINVAL;
	put_id(t, KIND_LEVEL, out);
	buf_put_u8(out, (uint8_t)(level + 1));
	buf_put_u32(out, n * fan);
	for (uint32_t i = 0; i < n; i++)
		for (uint32_t k = 0; k < fan; k++)
			put_node(t, level + 1, (idx[i] << t->fb) + k, out);
	return buf_err(out);
}

int
merkle_leaves_encode(const struct merkle *t, const uint32_t *leaves,
                     uint32_t n, struct buf *out)
{
	if (!sorted_below(leaves, n, t->nleaves))
		return -EINVAL;
	put_id(t, KIND_LEAVES, out);
	buf_put_u32(out, n);
	for (uint32_t i = 0; i < n; i++)
		buf_put_u32(out, leaves[i]);
	return buf_err(out);
}

/* ---- Decoding ------------------------------------------------------ */

static int
bad(struct rd *in)
{
	in->bad = true;
	return DYN_EBADMSG;
}

static int
get_id(struct rd *in, uint8_t kind, struct merkle_id *id)
{
	uint8_t fmt, k;

	memset(id, 0, sizeof(*id));
	if (rd_u8(in, &fmt) || rd_u8(in, &k) || rd_u8(in, &id->q_bits) ||
	    rd_u32(in, &id->part) || rd_u8(in, &id->shape.depth) ||
	    rd_u8(in, &id->shape.fanout_bits))
		return DYN_EBADMSG;
	if (fmt != MERKLE_FORMAT || k != kind ||
	    id->q_bits > MERKLE_Q_BITS_MAX ||
	    (uint64_t)id->part >> id->q_bits != 0 || !shape_ok(&id->shape))
		return bad(in);
	return 0;
}

int
merkle_level_decode(struct rd *in, struct merkle_level *out)
{
	uint8_t level;
	uint32_t n, w, prev = 0;
	const uint8_t *p;
	int rc;

	memset(out, 0, sizeof(*out));
	if ((rc = get_id(in, KIND_LEVEL, &out->id)) != 0 ||
	    (rc = rd_u8(in, &level)) != 0 || (rc = rd_u32(in, &n)) != 0)
		return rc;
	if (level > out->id.shape.depth)
		return bad(in);
	w = (uint32_t)1 << (out->id.shape.fanout_bits * level);
	/* The size check comes first, so a huge n costs nothing. */
	if (n == 0 || n > w || rd_left(in) != (size_t)n * MERKLE_NODE_LEN)
		return bad(in);
	if ((rc = rd_bytes(in, (size_t)n * MERKLE_NODE_LEN, &p)) != 0)
		return rc;
	for (uint32_t i = 0; i < n; i++) {
		const uint8_t *e = p + (size_t)i * MERKLE_NODE_LEN;
		uint32_t idx = be_get_u32(e);

		if (idx >= w || (i > 0 && idx <= prev) ||
		    (be_get_u64(e + 4) == 0) != is_zero(e + 12))
			return bad(in);
		prev = idx;
	}
	out->level = level;
	out->n = n;
	out->nodes = p;
	return 0;
}

int
merkle_leaves_decode(struct rd *in, struct merkle_leaves *out)
{
	uint32_t n, w, prev = 0;
	const uint8_t *p;
	int rc;

	memset(out, 0, sizeof(*out));
	if ((rc = get_id(in, KIND_LEAVES, &out->id)) != 0 ||
	    (rc = rd_u32(in, &n)) != 0)
		return rc;
	w = (uint32_t)1 << (out->id.shape.fanout_bits * out->id.shape.depth);
	if (n > w || rd_left(in) != (size_t)n * 4)
		return bad(in);
	if ((rc = rd_bytes(in, (size_t)n * 4, &p)) != 0)
		return rc;
	for (uint32_t i = 0; i < n; i++) {
		uint32_t leaf = be_get_u32(p + (size_t)i * 4);

		if (leaf >= w || (i > 0 && leaf <= prev))
			return bad(in);
		prev = leaf;
	}
	out->n = n;
	out->leaves = n ? p : NULL;
	return 0;
}

void
merkle_level_get(const struct merkle_level *m, uint32_t i, uint32_t *index,
                 uint64_t *count, const uint8_t **hash)
{
	const uint8_t *e = m->nodes + (size_t)i * MERKLE_NODE_LEN;

	*index = be_get_u32(e);
	*count = be_get_u64(e + 4);
	*hash = e + 12;
}

uint32_t
merkle_leaves_get(const struct merkle_leaves *l, uint32_t i)
{
	return be_get_u32(l->leaves + (size_t)i * 4);
}

/* ---- The walk ------------------------------------------------------ */

int
merkle_diff(const struct merkle *t, const struct merkle_level *m,
            uint32_t **idx, uint32_t *n)
{
	uint32_t *d = NULL;
	uint32_t nd = 0, w;
	int rc;

	*idx = NULL;
	*n = 0;
	if (t->stale)
		return -EINVAL;
	/* m may be built by hand, not decoded: check what we index by. */
	if (!merkle_id_match(t, &m->id) || m->level > t->depth)
		return DYN_EBADMSG;
	w = width(t, m->level);
	if (m->n > w)
		return DYN_EBADMSG;
	if (m->n > 0 && !(d = mem_alloc((size_t)m->n * sizeof(*d))))
		return -ENOMEM;
	for (uint32_t i = 0; i < m->n; i++) {
		uint32_t index, node;
		uint64_t count;
		const uint8_t *hash;

		merkle_level_get(m, i, &index, &count, &hash);
		rc = DYN_EBADMSG;
		if (index >= w)
			goto out;
		node = t->off[m->level] + index;
		if (count != t->count[node] ||
		    memcmp(hash, t->hash[node], MERKLE_HASH_LEN) != 0)
			d[nd++] = index;
	}
	if (nd > 0) {
		*idx = d;
		*n = nd;
		d = NULL;
	}
	rc = 0;
out:
	mem_free(d);
	return rc;
}

int
merkle_step(const struct merkle *t, const struct merkle_level *m,
            struct buf *out, uint32_t **leaves, uint32_t *nleaves)
{
	uint32_t *d = NULL;
	uint32_t nd = 0;
	int rc;

	*leaves = NULL;
	*nleaves = 0;
	if ((rc = merkle_diff(t, m, &d, &nd)) != 0)
		goto out;
	if (nd > 0 && m->level < t->depth) {
		/* merkle_diff returns sorted indices below the width. */
		rc = merkle_children_encode(t, m->level, d, nd, out);
		if (rc == 0)
			rc = MERKLE_STEP_MORE;
		goto out;
	}
	if ((rc = merkle_leaves_encode(t, d, nd, out)) != 0)
		goto out;
	if (nd > 0) {
		*leaves = d;
		*nleaves = nd;
		d = NULL;
	}
	rc = MERKLE_STEP_DONE;
out:
	mem_free(d);
	return rc;
}
