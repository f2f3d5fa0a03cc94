#include "keypos.h"

#include <errno.h>
#include <stdio.h>

#include <openssl/evp.h>

#include "buf.h"

int
keypos_of(const void *key, size_t len, struct keypos *out)
{
	unsigned int n = 0;
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
