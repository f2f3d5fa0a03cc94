/* libFuzzer target: ring_decode (rings arrive by gossip and RING_RESP);
 * what it accepts must encode back to the same bytes and answer
 * preference-list queries within bounds. */
#include <errno.h>
#include <string.h>

#include "err.h"
#include "fuzz.h"
#include "ring.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct rd in;
	struct ring *r = NULL;
	rd_init(&in, data, size);
	int rc = ring_decode(&in, &r);
	FUZZ_REQUIRE(rc == 0 || rc == DYN_EBADMSG || rc == -ENOMEM);
	if (rc != 0) {
		FUZZ_REQUIRE(r == NULL);
		return 0;
	}
	struct buf b;
	buf_init(&b);
	ring_encode(r, &b);
	FUZZ_REQUIRE(buf_err(&b) == 0);
	FUZZ_REQUIRE(b.len == size && memcmp(b.data, data, size) == 0);
	buf_fini(&b);

	uint32_t idx[16], n = 0, cnt = ring_member_count(r);
	uint32_t q = ring_q(r);
	for (uint32_t p = 0; p < q && p < 64; p++) {
		FUZZ_REQUIRE(ring_preflist(r, RING_CUR, p, 3, idx, &n) == 0);
		FUZZ_REQUIRE(n <= 3);
		for (uint32_t k = 0; k < n; k++)
			FUZZ_REQUIRE(idx[k] < cnt);
		FUZZ_REQUIRE(ring_replicas_union(r, p, 3, idx, &n) == 0);
		FUZZ_REQUIRE(n <= 6);
	}
	ring_free(r);
	return 0;
}
