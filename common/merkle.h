/*
 * merkle — the hash trees of anti-entropy: the pure logic that lets the
 * replicas of one ring partition find, in a few messages, the key ranges
 * whose stored keys differ.  It owns the tree (its shape, per-leaf
 * accumulators, node hashes and key counts) and the encoding of what the
 * comparison sends.  It does no networking, threading, timing or storage:
 * scanning LMDB, scheduling and rate-limiting the exchange and moving the
 * keys of a differing range belong to node/.
 *
 * Shape.  A tree covers one partition (the positions whose top log2(Q)
 * bits are part; see ring_partition_range) and has depth D and fanout
 * F = 2^fanout_bits, so F^D leaves.  Leaf i covers the positions whose next
 * D * fanout_bits bits (just below the partition's) are i: leaves are equal
 * slices of the partition, in position order.  Node (level, index) has
 * children (level + 1, index * F .. index * F + F - 1); the root is (0, 0)
 * and the leaves are level D.  Replicas building a tree for the same
 * (Q, part, shape) get the same shape and compare node by node.
 *
 * Hashes (SHA-256, OpenSSL EVP):
 *   entry  H(0x00 | u32 key length | key | digest), digest = SHA-256 of
 *          the key's stored record (merkle_digest), so any change of the
 *          value or its clocks changes the entry;
 *   leaf   all zero when empty, else H(0x01 | u64 count | sum), sum = the
 *          entries' hashes added as 256-bit integers mod 2^256;
 *   inner  all zero when its subtree is empty, else H(0x02 | the F
 *          children's hashes).
 * The sum makes a leaf independent of insertion order and lets a single key
 * be added or removed without rescanning the leaf, so node/ can keep a tree
 * up to date as puts arrive instead of rebuilding it.  merkle_finish
 * rehashes only the nodes on the paths of leaves that changed.
 *
 * The comparison walks down the levels, each side in turn comparing the
 * other's hashes with its own and answering with its hashes of the
 * children of the nodes that differ:
 *
 *   A: merkle_root_encode           -> level 0 (root)
 *   B: merkle_step (root differs)   -> level 1, B's children of the root
 *   A: merkle_step                  -> level 2, A's children of the
 *                                      level-1 nodes that differ
 *   ...                                (alternating; D + 1 level messages)
 *   X: merkle_step at level D       -> leaf list: the leaves that differ
 *
 * merkle_step answers the level message it is given with the next level
 * message, or with the final leaf list (empty: the replicas agree) once it
 * reached the leaves or nothing differs.  The side that produced the leaf
 * list also has it in memory; the other side decodes it.  Both then
 * exchange the keys of those leaves' ranges (merkle_leaf_range).  With the
 * default shape (D = 3, F = 16, 4096 leaves) that is 5 messages, and a
 * level message holds at most 4096 * 44 bytes.  The root entry carries the
 * replica's key count, so node/ can skip the walk when one side is empty.
 *
 * Lifetimes: a struct merkle is a heap object owned by whoever received it
 * from merkle_new and freed with merkle_free.  It is a plain value: no
 * locking; readers in several threads are fine while nobody changes it.
 * Decoded messages (struct merkle_level, struct merkle_leaves) are views of
 * the decoded input: they own nothing and stay valid as long as the input.
 */
#ifndef DYN_MERKLE_H
#define DYN_MERKLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "keypos.h"

#define MERKLE_HASH_LEN            32
#define MERKLE_DEPTH_DEFAULT       3
#define MERKLE_FANOUT_BITS_DEFAULT 4  /* F = 16: 16^3 = 4096 leaves */
#define MERKLE_FANOUT_BITS_MAX     8  /* F <= 256 */
#define MERKLE_LEAF_BITS_MAX       16 /* D * fanout_bits: <= 65536 leaves */
#define MERKLE_Q_BITS_MAX          31 /* Q <= 2^31 */
#define MERKLE_FORMAT              1  /* first byte of every message */
#define MERKLE_NODE_LEN            44 /* u32 index, u64 count, hash */

struct merkle;

struct merkle_shape {
	uint8_t depth;       /* levels below the root, >= 1 */
	uint8_t fanout_bits; /* log2 F, 1..MERKLE_FANOUT_BITS_MAX */
};

/* Which tree a message belongs to: partition part of 2^q_bits, shape. */
struct merkle_id {
	uint8_t q_bits;
	uint32_t part;
	struct merkle_shape shape;
};

/* ---- Life cycle ---------------------------------------------------- */

/*
 * An empty tree for partition part of q (a power of two, as in ring.h)
 * with shape (NULL: the default, D = 3 and F = 16).
 * It is finished (merkle_finish need not be called before comparing an
 * empty tree).  -EINVAL when q is not a power of two <= 2^MERKLE_Q_BITS_MAX,
 * part >= q, or the shape is out of range; -ENOMEM, -EIO when OpenSSL has
 * no SHA-256.  On success the caller owns *out (freed with merkle_free);
 * on failure *out is NULL.
 *
 * Memory: about 80 bytes per leaf (hash, count, sum and dirty flag, and
 * the inner nodes above), 316 KiB with the default shape.
 */
int merkle_new(uint32_t q, uint32_t part, const struct merkle_shape *shape,
               struct merkle **out);
/* Free t.  NULL is fine. */
void merkle_free(struct merkle *t);
/* Forget every key: t becomes an empty, finished tree of the same shape
 * (for a rebuild from a fresh scan without reallocating). */
void merkle_reset(struct merkle *t);

/* SHA-256 of n bytes at p (n may be 0): the digest merkle_add wants for a
 * key's stored record.  0, or -EIO when OpenSSL fails. */
int merkle_digest(const void *p, size_t n, uint8_t out[MERKLE_HASH_LEN]);

/*
 * Add one stored key: pos its ring position (MD5 of key, not checked),
 * digest the SHA-256 of its stored record.  Keys may come in any order.
 * The caller adds each key once; adding it twice counts it twice.  The tree
 * is stale until merkle_finish.  -EINVAL when pos is outside the tree's
 * partition, DYN_ETOOBIG when klen > KEY_MAX_LEN, -EIO when OpenSSL fails;
 * t is unchanged on error.
 */
int merkle_add(struct merkle *t, const struct keypos *pos, const void *key,
               size_t klen, const uint8_t digest[MERKLE_HASH_LEN]);
/*
 * Take back a key added earlier with the same pos, key and digest (a put
 * replaces a record: remove the old digest, add the new one).  Removing
 * what was not added corrupts the leaf's sum and cannot be detected, except
 * that removing from an empty leaf is -ENOENT.  Other errors as merkle_add.
 */
int merkle_remove(struct merkle *t, const struct keypos *pos, const void *key,
                  size_t klen, const uint8_t digest[MERKLE_HASH_LEN]);
/* Recompute the hashes of the nodes changed since the last finish.  0, or
 * -EIO when OpenSSL fails (t stays stale; calling again finishes it). */
int merkle_finish(struct merkle *t);
/* Has t changed since the last merkle_finish?  Hashes of a stale tree are
 * not available (-EINVAL below). */
bool merkle_stale(const struct merkle *t);

/* ---- Shape and ranges ---------------------------------------------- */

/* t's id, as its messages carry it. */
void merkle_id_get(const struct merkle *t, struct merkle_id *id);
/* Is the message's id t's (same partition of the same Q, same shape)? */
bool merkle_id_match(const struct merkle *t, const struct merkle_id *id);
uint32_t merkle_depth(const struct merkle *t);
uint32_t merkle_fanout(const struct merkle *t);
/* Number of leaves, F^D. */
uint32_t merkle_leaves(const struct merkle *t);
/* The tree's partition as in ring_partition_range: first position in
 * *from, first position after it in *to, or *to_end true (and *to all
 * zero) for the last partition. */
void merkle_range(const struct merkle *t, struct keypos *from,
                  struct keypos *to, bool *to_end);
/* The same for one leaf.  The leaves tile the partition in order: leaf 0
 * starts at its from, leaf i ends where leaf i + 1 starts, the last ends
 * at its to.  -EINVAL when leaf >= merkle_leaves(t). */
int merkle_leaf_range(const struct merkle *t, uint32_t leaf,
                      struct keypos *from, struct keypos *to, bool *to_end);
/* The leaf holding pos, or -EINVAL when pos is outside the partition. */
int merkle_leaf_of(const struct merkle *t, const struct keypos *pos,
                   uint32_t *leaf);

/* ---- Reading the tree ---------------------------------------------- */

/* Hash and key count of node (level, index).  -EINVAL when t is stale,
 * level > D or index >= F^level. */
int merkle_node(const struct merkle *t, uint32_t level, uint32_t index,
                uint8_t hash[MERKLE_HASH_LEN], uint64_t *count);
/* The root's: merkle_node(t, 0, 0, ...). */
int merkle_root(const struct merkle *t, uint8_t hash[MERKLE_HASH_LEN],
                uint64_t *count);

/* ---- The comparison ------------------------------------------------ */

/*
 * Messages, network byte order; every one starts with the id:
 *   u8 MERKLE_FORMAT | u8 kind (1 level, 2 leaf list) | u8 q_bits |
 *   u32 part (< 2^q_bits) | u8 depth | u8 fanout_bits
 * level:  u8 level (<= depth) | u32 n (1 <= n <= F^level) |
 *         n * (u32 index | u64 count | hash[32]), indices strictly
 *         increasing and < F^level, count 0 exactly when the hash is zero
 * leaves: u32 n (<= F^depth) | n * u32 leaf, strictly increasing, < F^depth
 * A message fills the rest of its input (embed it in a blob to carry it
 * with other fields).
 *
 * Encoders append to out; they return 0, -EINVAL when t is stale or the
 * arguments are out of range, or out's error (buf_err) when it broke.
 */
struct merkle_level {
	struct merkle_id id;
	uint32_t level;
	uint32_t n;
	const uint8_t *nodes; /* n * MERKLE_NODE_LEN bytes in the input */
};

struct merkle_leaves {
	struct merkle_id id;
	uint32_t n;
	const uint8_t *leaves; /* n * 4 bytes in the input */
};

/* The first message of a comparison: level 0, the root. */
int merkle_root_encode(const struct merkle *t, struct buf *out);
/* t's hashes of all children of nodes idx[0..n) of level (< D), idx
 * strictly increasing: a level message for level + 1.  n >= 1. */
int merkle_children_encode(const struct merkle *t, uint32_t level,
                           const uint32_t *idx, uint32_t n, struct buf *out);
/* A leaf list of leaves[0..n) (strictly increasing, n may be 0). */
int merkle_leaves_encode(const struct merkle *t, const uint32_t *leaves,
                         uint32_t n, struct buf *out);

/*
 * Decode a level message / a leaf list that fills the rest of in.  The
 * input comes from a peer: anything outside the format above is
 * DYN_EBADMSG (unknown format or kind, a shape or q_bits out of range, part
 * or level too large, counts out of bounds, indices unsorted or out of
 * range, a count that contradicts its hash, truncation, trailing bytes) and
 * marks in bad.  No allocation: *out points into in's bytes.  Whether the
 * message is for a given tree is merkle_id_match's question.
 */
int merkle_level_decode(struct rd *in, struct merkle_level *out);
int merkle_leaves_decode(struct rd *in, struct merkle_leaves *out);
/* Entry i (< m->n) of a decoded level message; hash points into the
 * input. */
void merkle_level_get(const struct merkle_level *m, uint32_t i,
                      uint32_t *index, uint64_t *count, const uint8_t **hash);
/* Leaf i (< l->n) of a decoded leaf list. */
uint32_t merkle_leaves_get(const struct merkle_leaves *l, uint32_t i);

/*
 * The nodes of m whose hash or count differs from t's, as indices of
 * m->level in increasing order: *idx (mem_alloc'd, the caller mem_frees
 * it; NULL when *n is 0).  DYN_EBADMSG when m is not for t (merkle_id_match)
 * or holds an index out of range; -EINVAL when t is stale; -ENOMEM.
 */
int merkle_diff(const struct merkle *t, const struct merkle_level *m,
                uint32_t **idx, uint32_t *n);

#define MERKLE_STEP_DONE 0
#define MERKLE_STEP_MORE 1
/*
 * One step of the comparison: answer the peer's level message m.
 *   MERKLE_STEP_MORE  some nodes of m differ and are not leaves: out holds
 *                     t's level message for their children; send it.
 *   MERKLE_STEP_DONE  out holds the final leaf list; send it.  *leaves
 *                     (mem_alloc'd, the caller mem_frees it; NULL when
 *                     *nleaves is 0) are the leaves that differ, none when
 *                     the replicas agree.
 * Errors as merkle_diff, plus out's; *leaves is NULL on error.  Stateless:
 * node/ bounds the walk (levels go up by one per message, D + 1 level
 * messages at most).
 */
int merkle_step(const struct merkle *t, const struct merkle_level *m,
                struct buf *out, uint32_t **leaves, uint32_t *nleaves);

#endif
