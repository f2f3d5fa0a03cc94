/*
 * leaflist — the lists of Merkle leaves that anti-entropy (ae.c) sends:
 *   hashes (F_LEAFHASHES): u32 count | count * hash[MERKLE_HASH_LEN],
 *                          every leaf of a tree, in order
 *   leaves (F_LEAVES):     u32 count | count * u32 leaf index
 * This module owns the encodings and their checks; which leaves differ,
 * and what is done about it, is ae.c's.
 */
#ifndef DYN_LEAFLIST_H
#define DYN_LEAFLIST_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "merkle.h"

/* Append the hashes of t's leaves (t finished; errors sticky in out). */
void leaflist_hashes_encode(const struct merkle *t, struct buf *out);
/* Check the hashes of a tree with nleaves leaves in p (len bytes, all of
 * them): 0 and *hashes pointing at nleaves * MERKLE_HASH_LEN bytes inside p
 * (valid as long as p), or DYN_EBADMSG when the count is not nleaves or
 * the length does not match. */
int leaflist_hashes_decode(const void *p, size_t len, uint32_t nleaves,
    const uint8_t **hashes);

/* Append the n leaf indices in leaves (errors sticky in out). */
void leaflist_encode(const uint32_t *leaves, uint32_t n, struct buf *out);
/* Decode a list of leaves of a tree with nleaves leaves from p (len bytes,
 * all of them): at most nleaves of them, each < nleaves.  0 with *leaves
 * (mem_alloc'd, the caller mem_frees it; NULL when *n is 0) and *n, or
 * DYN_EBADMSG, -ENOMEM (then *leaves is NULL and *n 0). */
int leaflist_decode(const void *p, size_t len, uint32_t nleaves,
    uint32_t **leaves, uint32_t *n);

#endif
