#include "bloom.h"

#include <errno.h>
#include <string.h>

#include "err.h"
#include "mem.h"

static const char BLOOM_MAGIC[4] = {'B', 'L', 'M', '1'};
#define BLOOM_K_MAX 32

struct bloom {
	uint64_t seed;
	uint64_t nbits; /* a multiple of 64 */
	uint32_t k;
	uint64_t items;
	uint8_t *bits; /* nbits / 8 bytes */
};

static uint64_t
splitmix64(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ull;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
	return x ^ (x >> 31);
}

/* The two hashes of name under seed: each a splitmix64 chain over the
 * name's four words, from different starting points.  h2 is odd, so the
 * probes of one name never collapse onto one bit. */
static void
hashes(uint64_t seed, const uint8_t *name, uint64_t *h1, uint64_t *h2)
{
	uint64_t a = splitmix64(seed), b = splitmix64(seed ^ 0x5bd1e995ull);
	for (int i = 0; i < BLOOM_NAME_LEN / 8; i++) {
		uint64_t w = be_get_u64(name + 8 * i);
		a = splitmix64(a ^ w);
		b = splitmix64(b + w);
	}
	*h1 = a;
	*h2 = b | 1;
}

static int
alloc(uint64_t seed, uint64_t nbits, uint32_t k, struct bloom **out)
{
	struct bloom *b = mem_calloc(1, sizeof(*b));
	if (!b)
		return -ENOMEM;
	b->bits = mem_calloc(1, (size_t)(nbits / 8));
	if (!b->bits) {
		mem_free(b);
		return -ENOMEM;
	}
	b->seed = seed;
	b->nbits = nbits;
	b->k = k;
	*out = b;
	return 0;
}

int
bloom_new(uint64_t n, uint64_t seed, struct bloom **out)
{
	const uint64_t max_bits = (uint64_t)BLOOM_MAX_BYTES * 8;
	uint64_t nbits = n > max_bits / BLOOM_BITS_ITEM ? max_bits
	                                                : n * BLOOM_BITS_ITEM;
	if (nbits < (uint64_t)BLOOM_MIN_BYTES * 8)
		nbits = (uint64_t)BLOOM_MIN_BYTES * 8;
	nbits = (nbits + 63) & ~(uint64_t)63;
	return alloc(seed, nbits, BLOOM_K, out);
}

void
bloom_free(struct bloom *b)
{
	if (!b)
		return;
	mem_free(b->bits);
	mem_free(b);
}

void
bloom_add(struct bloom *b, const uint8_t name[BLOOM_NAME_LEN])
{
	uint64_t h1, h2;
	hashes(b->seed, name, &h1, &h2);
	for (uint32_t i = 0; i < b->k; i++) {
		uint64_t bit = (h1 + (uint64_t)i * h2) % b->nbits;
		b->bits[bit >> 3] |= (uint8_t)(1u << (bit & 7));
	}
	b->items++;
}

bool
bloom_has(const struct bloom *b, const uint8_t name[BLOOM_NAME_LEN])
{
	uint64_t h1, h2;
	hashes(b->seed, name, &h1, &h2);
	for (uint32_t i = 0; i < b->k; i++) {
		uint64_t bit = (h1 + (uint64_t)i * h2) % b->nbits;
		if (!(b->bits[bit >> 3] & (1u << (bit & 7))))
			return false;
	}
	return true;
}

uint64_t
bloom_seed(const struct bloom *b)
{
	return b->seed;
}

uint64_t
bloom_bits(const struct bloom *b)
{
	return b->nbits;
}

uint64_t
bloom_items(const struct bloom *b)
{
	return b->items;
}

int
bloom_union(struct bloom *dst, const struct bloom *src)
{
	if (dst->seed != src->seed || dst->nbits != src->nbits ||
	    dst->k != src->k)
		return -EINVAL;
	for (uint64_t i = 0; i < dst->nbits / 8; i++)
		dst->bits[i] |= src->bits[i];
	dst->items += src->items;
	return 0;
}

void
bloom_encode(const struct bloom *b, struct buf *out)
{
	buf_put(out, BLOOM_MAGIC, sizeof(BLOOM_MAGIC));
	buf_put_u64(out, b->seed);
	buf_put_u32(out, b->k);
	buf_put_u64(out, b->nbits);
	buf_put_u64(out, b->items);
	buf_put(out, b->bits, (size_t)(b->nbits / 8));
}

int
bloom_decode(struct rd *r, struct bloom **out)
{
	const uint8_t *magic, *bits;
	uint64_t seed, nbits, items;
	uint32_t k;
	*out = NULL;
	if (rd_bytes(r, sizeof(BLOOM_MAGIC), &magic) || rd_u64(r, &seed) ||
	    rd_u32(r, &k) || rd_u64(r, &nbits) || rd_u64(r, &items))
		return DYN_EBADMSG;
	if (memcmp(magic, BLOOM_MAGIC, sizeof(BLOOM_MAGIC)) != 0 || k == 0 ||
	    k > BLOOM_K_MAX || nbits % 64 != 0 ||
	    nbits < (uint64_t)BLOOM_MIN_BYTES * 8 ||
	    nbits > (uint64_t)BLOOM_MAX_BYTES * 8 ||
	    rd_bytes(r, (size_t)(nbits / 8), &bits) != 0) {
		r->bad = true;
		return DYN_EBADMSG;
	}
	struct bloom *b;
	int rc = alloc(seed, nbits, k, &b);
	if (rc)
		return rc;
	memcpy(b->bits, bits, (size_t)(nbits / 8));
	b->items = items;
	*out = b;
	return 0;
}
