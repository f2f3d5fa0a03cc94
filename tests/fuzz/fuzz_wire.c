/* libFuzzer target: wire_decode, then every getter on what it accepted. */
#include <errno.h>
#include <string.h>

#include "err.h"
#include "fuzz.h"
#include "keypos.h"
#include "wire.h"

static void
check_msg(const struct wire_msg *m, const uint8_t *buf, size_t len)
{
	uint32_t sum = 0;

	FUZZ_REQUIRE(m->nfields <= WIRE_MAX_FIELDS);
	FUZZ_REQUIRE(m->type > 0 && m->type < WIRE_TYPE_END);
	for (uint32_t i = 0; i < m->nfields; i++) {
		const struct wire_field *f = &m->f[i];

		/* Every field lies inside the body (ASan checks the reads). */
		FUZZ_REQUIRE(f->data >= buf + WIRE_HDR_LEN);
		FUZZ_REQUIRE(f->len <= len - WIRE_HDR_LEN - AUTH_TAG_LEN);
		FUZZ_REQUIRE(f->data + f->len <= buf + len - AUTH_TAG_LEN);
		for (uint32_t j = 0; j < f->len; j++)
			sum += f->data[j];
	}
	(void)sum;
}

static void
get_all(const struct wire_msg *m, uint16_t tag)
{
	const struct wire_field *f = wire_find(m, tag);
	uint32_t u32;
	uint64_t u64;
	int32_t i32;
	char s[64];
	int rc;

	rc = wire_get_u32(m, tag, &u32);
	FUZZ_REQUIRE(f ? (rc == 0) == (f->len == 4) : rc == -ENOENT);
	FUZZ_REQUIRE(rc == 0 || rc == -ENOENT || rc == DYN_EBADMSG);
	rc = wire_get_i32(m, tag, &i32);
	FUZZ_REQUIRE(f ? (rc == 0) == (f->len == 4) : rc == -ENOENT);
	if (rc == 0)
		FUZZ_REQUIRE((uint32_t)i32 == u32);
	rc = wire_get_u64(m, tag, &u64);
	FUZZ_REQUIRE(f ? (rc == 0) == (f->len == 8) : rc == -ENOENT);
	rc = wire_get_str(m, tag, s, sizeof(s));
	FUZZ_REQUIRE(f ? rc == 0 : rc == -ENOENT);
	if (rc == 0)
		FUZZ_REQUIRE(strlen(s) < sizeof(s));
	rc = wire_get_str(m, tag, s, 1);
	FUZZ_REQUIRE(rc != 0 || s[0] == '\0');
}

static void
decode(const uint8_t *buf, size_t len)
{
	struct wire_msg m;

	if (wire_decode(fuzz_keys(), buf, len, &m) != 0) {
		FUZZ_REQUIRE(m.nfields == 0);
		return;
	}
	check_msg(&m, buf, len);
	for (uint16_t tag = 0; tag <= F_LIMIT_BYTES + 1; tag++)
		get_all(&m, tag);
	/* Keys and cursors place (placement keys) or are refused cleanly. */
	for (uint32_t i = 0; i < m.nfields; i++) {
		const struct wire_field *f = &m.f[i];
		struct keypos pos;
		if (f->tag != F_KEY && f->tag != F_START)
			continue;
		int rc = keypos_of(f->data, f->len, &pos);
		FUZZ_REQUIRE(rc == 0 || rc == -EINVAL || rc == DYN_ETOOBIG);
		size_t hdr = keypos_placed_hdr(f->data, f->len);
		FUZZ_REQUIRE(hdr <= f->len);
		FUZZ_REQUIRE(hdr == 0 || f->data[0] == KEYPOS_PLACED);
	}
	for (uint32_t i = 0; i < m.nfields; i++)
		get_all(&m, m.f[i].tag);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t *copy;

	decode(data, size);

	/* Again with a valid tag, to get past the HMAC. */
	if (size < AUTH_TAG_LEN)
		return 0;
	if ((copy = malloc(size)) == NULL)
		return 0;
	memcpy(copy, data, size);
	/* Under the key of the role the header names (a node's when it
	 * names none), of the generation the keys hold. */
	const struct auth_keys *ks = fuzz_keys();
	const struct auth_key *k = auth_role_key(ks, 0, AUTH_NODE);
	if (size >= WIRE_HDR_LEN + AUTH_TAG_LEN) {
		if (copy[24] < AUTH_NROLES)
			k = auth_role_key(ks, 0, (enum auth_role)copy[24]);
		be_put_u32(copy + 28, ks->gen[0].id);
	}
	if (auth_tag(k, copy, size - AUTH_TAG_LEN, NULL, 0,
	             copy + size - AUTH_TAG_LEN) == 0)
		decode(copy, size);
	free(copy);
	return 0;
}
