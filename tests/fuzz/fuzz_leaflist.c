/* libFuzzer target: the leaf lists of anti-entropy (leaflist.h).  Input:
 * u8 which (even: leaf hashes, odd: leaf indices), u32 the tree's number
 * of leaves, then the list.  What a decoder accepts must be within the tree
 * and encode back to the same bytes. */
#include <errno.h>
#include <string.h>

#include "err.h"
#include "fuzz.h"
#include "leaflist.h"
#include "mem.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct buf again;
	int rc;

	if (size < 5)
		return 0;
	uint32_t nleaves = be_get_u32(data + 1);
	const uint8_t *p = data + 5;
	size_t len = size - 5;
	buf_init(&again);
	if (data[0] % 2 == 0) {
		const uint8_t *h = NULL;
		rc = leaflist_hashes_decode(p, len, nleaves, &h);
		FUZZ_REQUIRE(rc == 0 || rc == DYN_EBADMSG);
		if (rc == 0) {
			FUZZ_REQUIRE(len == 4 + (size_t)nleaves *
			                            MERKLE_HASH_LEN);
			FUZZ_REQUIRE(h == p + 4);
			buf_put_u32(&again, nleaves);
			buf_put(&again, h, (size_t)nleaves * MERKLE_HASH_LEN);
		}
	} else {
		uint32_t *leaves = NULL, n = 0;
		rc = leaflist_decode(p, len, nleaves, &leaves, &n);
		FUZZ_REQUIRE(rc == 0 || rc == DYN_EBADMSG || rc == -ENOMEM);
		FUZZ_REQUIRE(rc == 0 || (leaves == NULL && n == 0));
		if (rc == 0) {
			FUZZ_REQUIRE(n <= nleaves && (n == 0) == !leaves);
			for (uint32_t i = 0; i < n; i++)
				FUZZ_REQUIRE(leaves[i] < nleaves);
			leaflist_encode(leaves, n, &again);
		}
		mem_free(leaves);
	}
	if (rc == 0) {
		FUZZ_REQUIRE(buf_err(&again) == 0);
		FUZZ_REQUIRE(again.len == len &&
		             memcmp(again.data, p, len) == 0);
	}
	buf_fini(&again);
	return 0;
}
