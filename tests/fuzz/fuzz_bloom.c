/* libFuzzer target: bloom_decode (a peer's filter arrives in GC_FILTER_RESP
 * during blob garbage collection).  What it accepts must encode back to the
 * bytes it consumed and answer queries; and since a valid filter is bigger
 * than most inputs, the input is also spread over a well-formed header of
 * the smallest size (seed, k and bits from the input), which must decode
 * and never give a false negative for a name added. */
#include <errno.h>
#include <string.h>

#include "bloom.h"
#include "err.h"
#include "fuzz.h"

static void
probe(struct bloom *b, const uint8_t *data, size_t size)
{
	uint8_t name[BLOOM_NAME_LEN] = {0};
	memcpy(name, data, size < sizeof(name) ? size : sizeof(name));
	(void)bloom_has(b, name);
	bloom_add(b, name);
	FUZZ_REQUIRE(bloom_has(b, name));
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct rd in;
	struct bloom *b = NULL;
	rd_init(&in, data, size);
	int rc = bloom_decode(&in, &b);
	FUZZ_REQUIRE(rc == 0 || rc == DYN_EBADMSG || rc == -ENOMEM);
	if (rc == 0) {
		struct buf out;
		buf_init(&out);
		bloom_encode(b, &out);
		FUZZ_REQUIRE(buf_err(&out) == 0);
		FUZZ_REQUIRE(out.len == in.off &&
		    memcmp(out.data, data, out.len) == 0);
		buf_fini(&out);
		FUZZ_REQUIRE(bloom_union(b, b) == 0);
		probe(b, data, size);
		bloom_free(b);
	} else {
		FUZZ_REQUIRE(b == NULL);
	}

	if (size < 13)
		return 0;
	struct buf w;
	buf_init(&w);
	buf_put(&w, "BLM1", 4);
	buf_put(&w, data, 8);                         /* seed */
	buf_put_u32(&w, 1 + data[8] % 32);            /* k */
	buf_put_u64(&w, (uint64_t)BLOOM_MIN_BYTES * 8); /* nbits */
	buf_put_u64(&w, 0);
	for (size_t i = 0; i < BLOOM_MIN_BYTES; i++)
		buf_put_u8(&w, data[9 + i % (size - 9)]);
	FUZZ_REQUIRE(buf_err(&w) == 0);
	rd_init(&in, w.data, w.len);
	rc = bloom_decode(&in, &b);
	FUZZ_REQUIRE(rc == 0 || rc == -ENOMEM);
	if (rc == 0) {
		FUZZ_REQUIRE(rd_left(&in) == 0);
		probe(b, data + 9, size - 9);
		bloom_free(b);
	}
	buf_fini(&w);
	return 0;
}
