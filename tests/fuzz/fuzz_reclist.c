/* libFuzzer target: reclist_decode, the records of F_RECORDS (partition
 * transfers, anti-entropy, purges).  What it accepts must be within its
 * caps and encode back to the same bytes. */
#include <errno.h>
#include <string.h>

#include "err.h"
#include "fuzz.h"
#include "reclist.h"
#include "store.h"

/* Small, so the value cap is reachable. */
#define FUZZ_MAX_VALUE 4096

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct reclist l;
	struct buf again;
	int rc;

	reclist_init(&l);
	buf_init(&again);
	rc = reclist_decode(data, size, FUZZ_MAX_VALUE, &l);
	FUZZ_REQUIRE(rc == 0 || rc == DYN_EBADMSG || rc == DYN_ETOOBIG ||
	             rc == -ENOMEM);
	if (rc != 0) {
		FUZZ_REQUIRE(l.n == 0 && l.keys == NULL && l.sets == NULL);
		goto out;
	}
	FUZZ_REQUIRE((size_t)l.n * 12 <= size);
	for (uint32_t i = 0; i < l.n; i++) {
		FUZZ_REQUIRE(l.keys[i].len <= KEY_MAX_LEN);
		FUZZ_REQUIRE(l.sets[i].n <= VSET_MAX_VERSIONS);
		for (uint32_t k = 0; k < l.sets[i].n; k++)
			FUZZ_REQUIRE(l.sets[i].v[k].len <= FUZZ_MAX_VALUE);
	}
	reclist_encode(l.keys, l.sets, l.n, &again);
	FUZZ_REQUIRE(buf_err(&again) == 0);
	FUZZ_REQUIRE(again.len == size &&
	             memcmp(again.data, data, size) == 0);
out:
	reclist_fini(&l);
	buf_fini(&again);
	return 0;
}
