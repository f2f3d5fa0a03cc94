/* libFuzzer target: context_decode; what it accepts is in normal form and
 * encodes back to the same bytes (a clock has one encoding). */
#include <string.h>

#include "context.h"
#include "err.h"
#include "fuzz.h"

static void
decode(const uint8_t *p, size_t len)
{
	struct vclock c;
	struct vclock again;
	struct buf b;
	int rc;

	rc = context_decode(&fuzz_key, &fuzz_pos, p, len, &c);
	FUZZ_REQUIRE(rc == 0 || rc == DYN_EBADMSG || rc == DYN_ECONTEXT);
	if (rc != 0) {
		FUZZ_REQUIRE(c.n == 0 && c.nd == 0);
		return;
	}
	FUZZ_REQUIRE(c.n <= VCLOCK_MAX && c.nd <= VCLOCK_DOTS_MAX);
	if (len == 0) {
		FUZZ_REQUIRE(c.n == 0 && c.nd == 0);
		return;
	}
	/* Normal form: normalising again (a merge into an empty clock)
	 * changes nothing; every dot is one the clock covers. */
	vclock_init(&again);
	vclock_merge(&again, &c);
	FUZZ_REQUIRE(vclock_equal(&again, &c));
	for (uint32_t i = 0; i < c.nd; i++) {
		struct dot d = {c.d[i].actor, c.d[i].counter};
		FUZZ_REQUIRE(vclock_covers(&c, &d));
		FUZZ_REQUIRE(d.counter - 1 > vclock_get(&c, d.actor));
	}
	buf_init(&b);
	context_encode(&fuzz_key, &fuzz_pos, &c, &b);
	FUZZ_REQUIRE(buf_err(&b) == 0);
	FUZZ_REQUIRE(b.len == len && memcmp(b.data, p, len) == 0);
	buf_fini(&b);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char domain[] = "dynamo-context-v2";
	uint8_t prefix[sizeof(domain) - 1 + KEYPOS_LEN];
	uint8_t *copy;
	size_t clen;

	decode(data, size);

	/* Again with the right tag: format | clock | tag. */
	if (size < 1 + AUTH_TAG_LEN)
		return 0;
	if ((copy = malloc(size)) == NULL)
		return 0;
	memcpy(copy, data, size);
	memcpy(prefix, domain, sizeof(domain) - 1);
	memcpy(prefix + sizeof(domain) - 1, fuzz_pos.b, KEYPOS_LEN);
	clen = size - 1 - AUTH_TAG_LEN;
	if (auth_tag(&fuzz_key, prefix, sizeof(prefix), copy + 1, clen,
	             copy + 1 + clen) == 0)
		decode(copy, size);
	free(copy);
	return 0;
}
