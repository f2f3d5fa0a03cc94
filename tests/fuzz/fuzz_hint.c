/* libFuzzer target: store_hint_decode, a hint read back from the disk.
 * Input: u8 key limit (STORE_DKEY_MIN + the byte, up to STORE_DKEY_MAX),
 * u16 data key length, the data key, then the value.  What it accepts must
 * be filed under the data key store_hint_key makes, and its record must
 * encode back to the same bytes. */
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
	char name[STORE_TARGET_MAX + 1];
	uint8_t dk[STORE_DKEY_MAX];
	struct buf key, again;
	struct vset s;
	size_t dklen, wlen;
	int rc;

	if (size < 3)
		return 0;
	size_t maxkey = STORE_DKEY_MIN +
	                data[0] % (STORE_DKEY_MAX - STORE_DKEY_MIN + 1);
	dklen = (size_t)data[1] << 8 | data[2];
	if (dklen > size - 3)
		return 0;
	buf_init(&key);
	buf_init(&again);
	vset_init(&s);
	rc = store_hint_decode(maxkey, FUZZ_MAX_VALUE, data + 3, dklen,
	                       data + 3 + dklen, size - 3 - dklen, name, &key,
	                       &s);
	FUZZ_REQUIRE(rc == 0 || rc == DYN_EBADMSG || rc == DYN_ETOOBIG ||
	             rc == -ENOMEM);
	if (rc != 0) {
		FUZZ_REQUIRE(s.n == 0);
		goto out;
	}
	size_t tlen = strlen(name);
	FUZZ_REQUIRE(tlen >= 1 && tlen <= STORE_TARGET_MAX);
	FUZZ_REQUIRE(tlen == data[3] && memcmp(name, data + 4, tlen) == 0);
	FUZZ_REQUIRE(key.len <= KEY_MAX_LEN);
	FUZZ_REQUIRE(s.n <= VSET_MAX_VERSIONS);
	/* Filed where the encoder files it, and the record is canonical. */
	FUZZ_REQUIRE(store_hint_key(maxkey, name, key.data, key.len, dk,
	                            &wlen) == 0);
	FUZZ_REQUIRE(wlen == dklen && wlen <= maxkey &&
	             memcmp(dk, data + 3, dklen) == 0);
	store_record_encode(key.data, key.len, &s, &again);
	FUZZ_REQUIRE(buf_err(&again) == 0);
	FUZZ_REQUIRE(again.len == size - 3 - dklen &&
	             memcmp(again.data, data + 3 + dklen, again.len) == 0);
out:
	vset_fini(&s);
	buf_fini(&key);
	buf_fini(&again);
	return 0;
}
