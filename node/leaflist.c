#include "leaflist.h"

#include <errno.h>

#include "err.h"
#include "mem.h"

void
leaflist_hashes_encode(const struct merkle *t, struct buf *out)
{
	uint32_t nl = merkle_leaves(t), lvl = merkle_depth(t);
	buf_put_u32(out, nl);
	for (uint32_t i = 0; i < nl; i++) {
		uint8_t h[MERKLE_HASH_LEN];
		uint64_t cnt;
		merkle_node(t, lvl, i, h, &cnt);
		buf_put(out, h, sizeof(h));
	}
}

int
leaflist_hashes_decode(const void *p, size_t len, uint32_t nleaves,
    const uint8_t **hashes)
{
	struct rd r;
	uint32_t nl;

	rd_init(&r, p, len);
	if (rd_u32(&r, &nl) || nl != nleaves ||
	    rd_left(&r) != (size_t)nl * MERKLE_HASH_LEN)
		return DYN_EBADMSG;
	return rd_bytes(&r, (size_t)nl * MERKLE_HASH_LEN, hashes);
}

void
leaflist_encode(const uint32_t *leaves, uint32_t n, struct buf *out)
{
	buf_put_u32(out, n);
	for (uint32_t i = 0; i < n; i++)
		buf_put_u32(out, leaves[i]);
}

int
leaflist_decode(const void *p, size_t len, uint32_t nleaves,
    uint32_t **leaves, uint32_t *n)
{
	struct rd r;
	uint32_t nd, *l = NULL;
	int rc = 0;

	*leaves = NULL;
	*n = 0;
	rd_init(&r, p, len);
	if (rd_u32(&r, &nd) || nd > nleaves ||
	    rd_left(&r) != (size_t)nd * 4)
		return DYN_EBADMSG;
	if (nd == 0)
		return 0;
	if (!(l = mem_calloc(nd, sizeof(*l))))
		return -ENOMEM;
	for (uint32_t i = 0; rc == 0 && i < nd; i++) {
		if ((rc = rd_u32(&r, &l[i])) == 0 && l[i] >= nleaves)
			rc = DYN_EBADMSG;
	}
	if (rc != 0) {
		mem_free(l);
		return rc;
	}
	*leaves = l;
	*n = nd;
	return 0;
}
