/* libFuzzer target: store_record_decode, the bytes a node reads back from
 * its disk; what it accepts must encode back to the same bytes. */
#include <errno.h>
#include <string.h>

#include "err.h"
#include "fuzz.h"
#include "store.h"

/* Small, so the value cap is reachable. */
#define FUZZ_MAX_VALUE 4096

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct buf key, again;
	struct vset s;
	int rc;

	buf_init(&key);
	buf_init(&again);
	vset_init(&s);
	rc = store_record_decode(data, size, FUZZ_MAX_VALUE, &key, &s);
	FUZZ_REQUIRE(rc == 0 || rc == DYN_EBADMSG || rc == DYN_ETOOBIG ||
	             rc == -ENOMEM);
	if (rc != 0) {
		FUZZ_REQUIRE(s.n == 0);
		goto out;
	}
	FUZZ_REQUIRE(s.n <= VSET_MAX_VERSIONS);
	FUZZ_REQUIRE(key.len <= KEY_MAX_LEN);
	for (uint32_t i = 0; i < s.n; i++) {
		FUZZ_REQUIRE(s.v[i].len <= FUZZ_MAX_VALUE);
		FUZZ_REQUIRE(s.v[i].past.n <= VCLOCK_MAX);
		FUZZ_REQUIRE(s.v[i].past.nd <= VCLOCK_DOTS_MAX);
		FUZZ_REQUIRE(!vclock_covers(&s.v[i].past, &s.v[i].dot));
	}
	(void)vset_live(&s);
	store_record_encode(key.data, key.len, &s, &again);
	FUZZ_REQUIRE(buf_err(&again) == 0);
	FUZZ_REQUIRE(again.len == size);
	FUZZ_REQUIRE(memcmp(again.data, data, size) == 0);
out:
	vset_fini(&s);
	buf_fini(&key);
	buf_fini(&again);
	return 0;
}
