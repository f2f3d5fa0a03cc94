#include "keypos.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <openssl/evp.h>

#include "buf.h"
#include "err.h"

size_t
keypos_placed_hdr(const void *key, size_t len)
{
	const uint8_t *p = key;
	if (len < KEYPOS_PLACED_HDR || p[0] != KEYPOS_PLACED)
		return 0;
	size_t l = (size_t)p[1] << 8 | p[2];
	return l <= len - KEYPOS_PLACED_HDR ? KEYPOS_PLACED_HDR + l : 0;
}

size_t
keypos_placed_make(const void *part, size_t plen, uint8_t *out)
{
	if (plen > KEYPOS_PLACED_MAX - KEYPOS_PLACED_HDR)
		return 0;
	out[0] = KEYPOS_PLACED;
	out[1] = (uint8_t)(plen >> 8);
	out[2] = (uint8_t)plen;
	if (plen)
		memcpy(out + KEYPOS_PLACED_HDR, part, plen);
	return KEYPOS_PLACED_HDR + plen;
}

int
keypos_of(const void *key, size_t len, struct keypos *out)
{
	unsigned int n = 0;
	if (len > 0 && *(const uint8_t *)key == KEYPOS_PLACED) {
		size_t hdr = keypos_placed_hdr(key, len);
		if (hdr == 0)
			return -EINVAL;
		if (len > KEYPOS_PLACED_MAX)
			return DYN_ETOOBIG;
		len = hdr;
	}
	if (EVP_Digest(key, len, out->b, &n, EVP_md5(), NULL) != 1 ||
	    n != KEYPOS_LEN)
		return -EIO;
	return 0;
}

uint32_t
keypos_partition(const struct keypos *p, uint32_t q)
{
	if (q <= 1)
		return 0;
	unsigned bits = 0;
	while ((1u << bits) < q)
		bits++;
	return be_get_u32(p->b) >> (32 - bits);
}

void
keypos_hex(const struct keypos *p, char out[2 * KEYPOS_LEN + 1])
{
	for (int i = 0; i < KEYPOS_LEN; i++)
		snprintf(out + 2 * i, 3, "%02x", p->b[i]);
}
