/* libFuzzer target: credentials (cred.h).  Input: u8 which, then for an
 * even which a role keys block of the credential role (u8 role) % 3
 * (what decodes must encode back to the same bytes), for an odd one a
 * credential's text (cred_parse: the PEM blocks, X.509, the key). */
#include <errno.h>
#include <string.h>

#include "cred.h"
#include "err.h"
#include "fuzz.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char err[256];
	if (size < 2)
		return 0;
	if (data[0] % 2 == 0) {
		enum auth_role role = (enum auth_role)(data[1] % AUTH_NROLES);
		struct auth_keys k;
		int rc = cred_keys_decode(data + 2, size - 2, role, &k, err,
		    sizeof(err));
		FUZZ_REQUIRE(rc == 0 || rc == -EINVAL || rc == DYN_EPROTO);
		if (rc == 0) {
			FUZZ_REQUIRE(k.self == role && k.gen[0].id != 0);
			struct buf again;
			buf_init(&again);
			cred_keys_encode(&k, role, &again);
			FUZZ_REQUIRE(buf_err(&again) == 0);
			FUZZ_REQUIRE(again.len == size - 2 &&
			             memcmp(again.data, data + 2, again.len) == 0);
			buf_fini(&again);
		}
		return 0;
	}
	struct cred c;
	int rc = cred_parse((const char *)data + 1, size - 1, &c, err,
	    sizeof(err));
	FUZZ_REQUIRE(rc == 0 || rc == -EINVAL || rc == DYN_EPROTO ||
	             rc == -ENOMEM);
	FUZZ_REQUIRE(rc == 0 || err[0] != '\0');
	if (rc == 0) {
		FUZZ_REQUIRE(c.cert_pem && c.key_pem && c.ca_pem);
		FUZZ_REQUIRE(c.nca >= 1 && c.nca <= CRED_MAX_CAS);
		FUZZ_REQUIRE(c.keys.self == c.role);
		cred_fini(&c);
	}
	return 0;
}
