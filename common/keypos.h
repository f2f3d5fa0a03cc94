/*
 * keypos — where a key lives: its ring position is MD5(key), 128 bits,
 * computed with OpenSSL's EVP interface.  Positions compare as big-endian
 * unsigned integers (memcmp order), so a partition is a contiguous range.
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

/* MD5 of the key bytes (len may be 0). Returns 0 or -EIO if OpenSSL fails. */
int keypos_of(const void *key, size_t len, struct keypos *out);
/* The partition (0..q-1) a position falls in, q a power of two <= 2^32:
 * the top log2(q) bits of the position. */
uint32_t keypos_partition(const struct keypos *p, uint32_t q);
/* Lower-case hex, 33 bytes with the NUL. */
void keypos_hex(const struct keypos *p, char out[2 * KEYPOS_LEN + 1]);

#endif
