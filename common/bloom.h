/*
 * bloom — a Bloom filter over 32-byte blob names (common/blob.h), for the
 * nodes' blob garbage collector (node/gc.h): each node sends the names its
 * values reference as one of these instead of the names themselves.
 *
 * It owns the bit array and the hashing; it knows nothing of blobs or
 * rounds.  A filter answers "maybe present" for every name added (never a
 * false negative) and for about 1% of the others: sized at BLOOM_BITS_ITEM
 * bits per expected item with BLOOM_K probes, between BLOOM_MIN_BYTES and
 * BLOOM_MAX_BYTES.  A filter at the cap, or holding more names than it was
 * sized for, answers "maybe" more often; for the collector that only keeps
 * more garbage one round longer, never loses a blob.
 *
 * Probes are double hashing (Kirsch–Mitzenmacher) of two 64-bit hashes:
 * splitmix64 chained over the name's four words, started from the
 * filter's 64-bit seed.  A fresh seed per round makes the false positives
 * of one round independent of the next, so a garbage blob is not kept for
 * ever by an unlucky name.
 *
 * Encoding (network byte order; decoded from peers, so bounds-checked):
 *   "BLM1" | u64 seed | u32 k | u64 nbits | u64 items | nbits/8 bytes
 */
#ifndef DYN_BLOOM_H
#define DYN_BLOOM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"

#define BLOOM_NAME_LEN  32
#define BLOOM_K         7
#define BLOOM_BITS_ITEM 10
#define BLOOM_MIN_BYTES (4u << 10)
#define BLOOM_MAX_BYTES (8u << 20) /* an eighth of WIRE_MAX_MSG */

struct bloom;

/* A filter sized for n names, empty, with seed; -ENOMEM.  The caller
 * frees *out with bloom_free. */
int bloom_new(uint64_t n, uint64_t seed, struct bloom **out);
/* NULL is fine. */
void bloom_free(struct bloom *b);
void bloom_add(struct bloom *b, const uint8_t name[BLOOM_NAME_LEN]);
/* false: name was never added.  true: it was, or a false positive. */
bool bloom_has(const struct bloom *b, const uint8_t name[BLOOM_NAME_LEN]);
uint64_t bloom_seed(const struct bloom *b);
uint64_t bloom_bits(const struct bloom *b);
/* Names added (counting repeats; after a union, the sum). */
uint64_t bloom_items(const struct bloom *b);

/* Add every name of src to dst: both must have the same seed, size and k
 * (-EINVAL otherwise, dst unchanged). */
int bloom_union(struct bloom *dst, const struct bloom *src);

/* Append the encoding to out (errors sticky in out). */
void bloom_encode(const struct bloom *b, struct buf *out);
/* Decode one filter from r (the rest of r is left for the caller).
 * DYN_EBADMSG when truncated, the magic is wrong, k is not 1..32, or the
 * size is not a multiple of 64 bits within [MIN, MAX] bytes; -ENOMEM.
 * *out is the caller's (bloom_free). */
int bloom_decode(struct rd *r, struct bloom **out);

#endif
