/*
 * keypos — where a key lives: its ring position is MD5 of its placement
 * part, 128 bits, computed with OpenSSL's EVP interface.  Positions compare
 * as big-endian unsigned integers (memcmp order), so a partition is a
 * contiguous range.  It owns the placement-key encoding; what the store
 * does with positions is node/store.h's.
 *
 * Placement keys.  A key that begins with KEYPOS_PLACED (0xFF) says which
 * of its bytes place it:
 *
 *   0xFF | u16 L (big-endian) | L bytes: placement part | the rest
 *
 * and its position is MD5 of its header, the first 3 + L bytes (not of the
 * whole key).  Every key with the same header has the same position, so
 * lives on the same preference list and, in the store (position || key),
 * next to the others in key order: one range read lists them (like
 * Cassandra's partition and clustering keys).  Any other key is placed by
 * all its bytes, as before.  Because the encoding is in the key bytes,
 * every module that places a key (keypos_of) agrees on it without being
 * told.  MD5 of the header rather than of the part alone, so that the
 * header as a key on its own (an empty rest) is placed the same way read
 * either as an ordinary key or as a placement key.
 *
 * A placement key is at most KEYPOS_PLACED_MAX bytes: the store then keeps
 * it whole in its LMDB key (never the hashed long form, node/store.h),
 * which is what makes LMDB's order the key order a range read pages in.
 */
#ifndef DYN_KEYPOS_H
#define DYN_KEYPOS_H

#include <stddef.h>
#include <stdint.h>

#define KEYPOS_LEN 16
#define KEY_MAX_LEN (64 * 1024) /* keys are at most 64 KiB */

struct keypos {
	uint8_t b[KEYPOS_LEN];
};

#define KEYPOS_PLACED      0xFFu
#define KEYPOS_PLACED_HDR  3   /* the 0xFF byte and L */
#define KEYPOS_PLACED_MAX  432 /* = STORE_DKEY_MIN - KEYPOS_LEN */

/* The position of a key (len may be 0): MD5 of the key bytes, or of a
 * placement key's header.  Returns 0, -EINVAL for a key that begins with
 * KEYPOS_PLACED but is not a placement key (shorter than its header says),
 * DYN_ETOOBIG for a placement key over KEYPOS_PLACED_MAX, or -EIO if
 * OpenSSL fails. */
int keypos_of(const void *key, size_t len, struct keypos *out);
/* The length of key's placement header (3 + L) when it is a well-formed
 * placement key, else 0 (an ordinary key, or a malformed one). */
size_t keypos_placed_hdr(const void *key, size_t len);
/* Write the header of placement part (plen bytes) into out, which holds
 * KEYPOS_PLACED_HDR + plen bytes; returns its length, or 0 when plen is
 * too long for a placement key (plen + 3 > KEYPOS_PLACED_MAX). */
size_t keypos_placed_make(const void *part, size_t plen, uint8_t *out);
/* The partition (0..q-1) a position falls in, q a power of two <= 2^32:
 * the top log2(q) bits of the position. */
uint32_t keypos_partition(const struct keypos *p, uint32_t q);
/* Lower-case hex, 33 bytes with the NUL. */
void keypos_hex(const struct keypos *p, char out[2 * KEYPOS_LEN + 1]);

#endif
