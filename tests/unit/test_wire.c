/* Unit tests for common/wire: round trips and a paranoid decoder. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "blob.h"
#include "err.h"
#include "mem.h"
#include "testmem.h"
#include "wire.h"

static void *
fail_realloc(void *p, size_t n)
{
	(void)p;
	(void)n;
	return NULL;
}

/* Only realloc fails: a buffer can start but not grow. */
static const struct mem_allocator failing_alloc = {
    testmem_malloc,
    testmem_calloc,
    fail_realloc,
    testmem_free,
};

/* Header offsets (wire.h). */
#define OFF_VERSION 4
#define OFF_TYPE    5
#define OFF_BODYLEN 16
#define OFF_NFIELDS 20

struct fixture {
	struct auth_keys key; /* every role's; signs as a client */
	struct buf b;
	struct wire_msg m;
};

static int
setup(void **state)
{
	struct fixture *fx;

	mem_set_allocator(&testmem_checked);
	/* Plain calloc: cmocka checks for leaks after each fixture and
	 * test separately, so what lives across them cannot be its. */
	fx = calloc(1, sizeof(*fx));
	struct auth_key master;
	if (fx == NULL || auth_key_generate(&master) != 0 ||
	    auth_keys_from_master(&master, AUTH_CLIENT, &fx->key) != 0)
		return -1;
	buf_init(&fx->b);
	*state = fx;
	return 0;
}

static int
teardown(void **state)
{
	struct fixture *fx = *state;

	buf_fini(&fx->b);
	free(fx);
	mem_set_allocator(NULL);
	return 0;
}

/* Recompute the trailer of a message after the test changed it, so the
 * decoder's checks past the HMAC are reached. */
static void
retag(const struct auth_keys *ks, uint8_t *p, size_t len)
{
	const struct auth_key *k = auth_role_key(ks, 0, ks->self);
	assert_non_null(k);
	assert_true(len >= AUTH_TAG_LEN);
	assert_int_equal(auth_tag(k, p, len - AUTH_TAG_LEN, NULL, 0,
	                          p + len - AUTH_TAG_LEN),
	                 0);
}

/* A message with one field of every kind. */
static void
build_full(struct fixture *fx)
{
	static const uint8_t value[] = {0, 1, 2, 0xff, 0xfe};
	size_t at;

	wire_begin(&fx->b, WIRE_PUT_REQ, 0xa5c2, 0x1122334455667788ull);
	wire_put(&fx->b, F_KEY, "user/key", 8);
	wire_put(&fx->b, F_VALUE, value, sizeof(value));
	wire_put(&fx->b, F_CONTEXT, NULL, 0);
	wire_put_u32(&fx->b, F_W, 2);
	wire_put_u32(&fx->b, F_STATUS, (uint32_t)DYN_EQUORUM);
	wire_put_u64(&fx->b, F_ACTOR, 0xfedcba9876543210ull);
	wire_put_str(&fx->b, F_NAME, "node-a");
	at = wire_begin_field(&fx->b, F_VSET);
	buf_put_u32(&fx->b, 7);
	buf_put(&fx->b, "vset", 4);
	wire_end_field(&fx->b, at);
	wire_put(&fx->b, 999, "future", 6); /* a tag nobody knows */
	assert_int_equal(wire_seal(&fx->b, &fx->key), 0);
}

static void
test_round_trip(void **state)
{
	struct fixture *fx = *state;
	struct wire_msg *m = &fx->m;
	const struct wire_field *f;
	uint32_t u32;
	uint64_t u64;
	int32_t i32;
	char s[16];

	build_full(fx);
	assert_int_equal(fx->b.len, WIRE_HDR_LEN + 9 * 6 + 8 + 5 + 0 + 4 + 4 +
	                                8 + 6 + 8 + 6 + AUTH_TAG_LEN);
	assert_int_equal(wire_decode(&fx->key, fx->b.data, fx->b.len, m), 0);
	assert_int_equal(m->type, WIRE_PUT_REQ);
	assert_int_equal(m->flags, 0xa5c2);
	assert_true(m->reqid == 0x1122334455667788ull);
	assert_int_equal(m->nfields, 9);

	f = wire_find(m, F_KEY);
	assert_non_null(f);
	assert_int_equal(f->len, 8);
	assert_memory_equal(f->data, "user/key", 8);
	/* Fields point into the caller's buffer. */
	assert_true(f->data > fx->b.data);
	assert_true(f->data < fx->b.data + fx->b.len);

	f = wire_find(m, F_VALUE);
	assert_non_null(f);
	assert_int_equal(f->len, 5);
	assert_int_equal(f->data[3], 0xff);

	f = wire_find(m, F_CONTEXT);
	assert_non_null(f);
	assert_int_equal(f->len, 0);

	assert_int_equal(wire_get_u32(m, F_W, &u32), 0);
	assert_int_equal(u32, 2);
	assert_int_equal(wire_get_i32(m, F_STATUS, &i32), 0);
	assert_int_equal(i32, DYN_EQUORUM);
	assert_int_equal(wire_get_u64(m, F_ACTOR, &u64), 0);
	assert_true(u64 == 0xfedcba9876543210ull);
	assert_int_equal(wire_get_str(m, F_NAME, s, sizeof(s)), 0);
	assert_string_equal(s, "node-a");

	f = wire_find(m, F_VSET);
	assert_non_null(f);
	assert_int_equal(f->len, 8);
	assert_int_equal(be_get_u32(f->data), 7);
	assert_memory_equal(f->data + 4, "vset", 4);

	f = wire_find(m, 999);
	assert_non_null(f);
	assert_memory_equal(f->data, "future", 6);
	buf_fini(&fx->b);
}

static void
test_getters(void **state)
{
	struct fixture *fx = *state;
	struct wire_msg *m = &fx->m;
	uint32_t u32 = 42;
	uint64_t u64 = 42;
	int32_t i32 = 42;
	char s[4];

	build_full(fx);
	assert_int_equal(wire_decode(&fx->key, fx->b.data, fx->b.len, m), 0);

	/* Absent. */
	assert_null(wire_find(m, F_R));
	assert_int_equal(wire_get_u32(m, F_R, &u32), -ENOENT);
	assert_int_equal(wire_get_u64(m, F_R, &u64), -ENOENT);
	assert_int_equal(wire_get_i32(m, F_R, &i32), -ENOENT);
	assert_int_equal(wire_get_str(m, F_R, s, sizeof(s)), -ENOENT);
	/* Wrong size: a u64 read as u32 and the other way round. */
	assert_int_equal(wire_get_u32(m, F_ACTOR, &u32), DYN_EBADMSG);
	assert_int_equal(wire_get_i32(m, F_ACTOR, &i32), DYN_EBADMSG);
	assert_int_equal(wire_get_u64(m, F_W, &u64), DYN_EBADMSG);
	assert_int_equal(wire_get_u32(m, F_KEY, &u32), DYN_EBADMSG);
	assert_int_equal(wire_get_u32(m, F_CONTEXT, &u32), DYN_EBADMSG);
	assert_int_equal(u32, 42);
	assert_true(u64 == 42);
	assert_int_equal(i32, 42);
	/* Strings are truncated to the room there is. */
	assert_int_equal(wire_get_str(m, F_NAME, s, sizeof(s)), 0);
	assert_string_equal(s, "nod");
	assert_int_equal(wire_get_str(m, F_NAME, s, 1), 0);
	assert_string_equal(s, "");
	assert_int_equal(wire_get_str(m, F_CONTEXT, s, sizeof(s)), 0);
	assert_string_equal(s, "");
	assert_int_equal(wire_get_str(m, F_NAME, s, 0), -EINVAL);
	buf_fini(&fx->b);
}

static void
test_i32_range(void **state)
{
	static const int32_t vals[] = {0,         1,         -1,     INT32_MAX,
	                               INT32_MIN, DYN_EAUTH, -ENOENT};
	struct fixture *fx = *state;

	for (size_t i = 0; i < sizeof(vals) / sizeof(vals[0]); i++) {
		int32_t v;

		wire_begin(&fx->b, WIRE_ERROR, 0, i);
		wire_put_u32(&fx->b, F_STATUS, (uint32_t)vals[i]);
		assert_int_equal(wire_seal(&fx->b, &fx->key), 0);
		assert_int_equal(
		    wire_decode(&fx->key, fx->b.data, fx->b.len, &fx->m), 0);
		assert_int_equal(wire_get_i32(&fx->m, F_STATUS, &v), 0);
		assert_int_equal(v, vals[i]);
		assert_true(fx->m.reqid == i);
	}
	buf_fini(&fx->b);
}

static void
test_empty_and_duplicates(void **state)
{
	struct fixture *fx = *state;
	uint32_t v;

	wire_begin(&fx->b, WIRE_STATUS_REQ, 0, 0);
	assert_int_equal(wire_seal(&fx->b, &fx->key), 0);
	assert_int_equal(fx->b.len, WIRE_HDR_LEN + AUTH_TAG_LEN);
	assert_int_equal(wire_decode(&fx->key, fx->b.data, fx->b.len, &fx->m),
	                 0);
	assert_int_equal(fx->m.nfields, 0);
	assert_int_equal(fx->m.type, WIRE_STATUS_REQ);

	/* A repeated tag: wire_find gives the first. */
	wire_begin(&fx->b, WIRE_GET_REQ, 0, 0);
	wire_put_u32(&fx->b, F_R, 1);
	wire_put_u32(&fx->b, F_R, 2);
	assert_int_equal(wire_seal(&fx->b, &fx->key), 0);
	assert_int_equal(wire_decode(&fx->key, fx->b.data, fx->b.len, &fx->m),
	                 0);
	assert_int_equal(wire_get_u32(&fx->m, F_R, &v), 0);
	assert_int_equal(v, 1);
	buf_fini(&fx->b);
}

static void
test_every_type(void **state)
{
	struct fixture *fx = *state;
	int types[] = {0, WIRE_TYPE_END, WIRE_TYPE_END + 1, 255};

	for (int t = WIRE_ERROR; t < WIRE_TYPE_END; t++) {
		wire_begin(&fx->b, (uint8_t)t, 0, 1);
		assert_int_equal(wire_seal(&fx->b, &fx->key), 0);
		assert_int_equal(
		    wire_decode(&fx->key, fx->b.data, fx->b.len, &fx->m), 0);
		assert_int_equal(fx->m.type, t);
	}
	for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
		wire_begin(&fx->b, (uint8_t)types[i], 0, 1);
		assert_int_equal(wire_seal(&fx->b, &fx->key), 0);
		assert_int_equal(
		    wire_decode(&fx->key, fx->b.data, fx->b.len, &fx->m),
		    DYN_EBADMSG);
		assert_int_equal(fx->m.nfields, 0);
	}
	buf_fini(&fx->b);
}

static void
test_reused_buf(void **state)
{
	struct fixture *fx = *state;
	uint32_t v;

	/* wire_begin starts over, also after a failed message. */
	build_full(fx);
	wire_begin(&fx->b, WIRE_GET_REQ, 0, 5);
	wire_put(&fx->b, F_KEY, NULL, (size_t)WIRE_MAX_MSG + 1);
	assert_int_equal(wire_seal(&fx->b, &fx->key), DYN_ETOOBIG);
	wire_begin(&fx->b, WIRE_GET_REQ, 0, 6);
	wire_put_u32(&fx->b, F_R, 3);
	assert_int_equal(wire_seal(&fx->b, &fx->key), 0);
	assert_int_equal(fx->b.len, WIRE_HDR_LEN + 10 + AUTH_TAG_LEN);
	assert_int_equal(wire_decode(&fx->key, fx->b.data, fx->b.len, &fx->m),
	                 0);
	assert_int_equal(fx->m.nfields, 1);
	assert_int_equal(wire_get_u32(&fx->m, F_R, &v), 0);
	assert_int_equal(v, 3);
	assert_true(fx->m.reqid == 6);
	buf_fini(&fx->b);
}

static void
test_truncation(void **state)
{
	struct fixture *fx = *state;
	uint8_t *copy;

	build_full(fx);
	/* Every prefix, in its own allocation so ASan sees any overread. */
	for (size_t len = 0; len < fx->b.len; len++) {
		copy = test_malloc(len ? len : 1);
		memcpy(copy, fx->b.data, len);
		assert_int_equal(wire_decode(&fx->key, copy, len, &fx->m),
		                 DYN_EBADMSG);
		assert_int_equal(fx->m.nfields, 0);
		test_free(copy);
	}
	/* Every prefix of the body with the header fixed up and re-tagged:
	 * fields now run past the body (or the body ends between them with
	 * fields missing). */
	for (size_t body = 0; body < fx->b.len - WIRE_HDR_LEN - AUTH_TAG_LEN;
	     body++) {
		size_t len = WIRE_HDR_LEN + body + AUTH_TAG_LEN;

		copy = test_malloc(len);
		memcpy(copy, fx->b.data, WIRE_HDR_LEN + body);
		be_put_u32(copy + OFF_BODYLEN, (uint32_t)body);
		retag(&fx->key, copy, len);
		assert_int_equal(wire_decode(&fx->key, copy, len, &fx->m),
		                 DYN_EBADMSG);
		test_free(copy);
	}
	buf_fini(&fx->b);
}

static void
test_bit_flips(void **state)
{
	struct fixture *fx = *state;
	uint8_t *p;
	size_t len;

	build_full(fx);
	p = fx->b.data;
	len = fx->b.len;
	for (size_t bit = 0; bit < len * 8; bit++) {
		int rc;

		p[bit / 8] ^= (uint8_t)(1u << (bit % 8));
		rc = wire_decode(&fx->key, p, len, &fx->m);
		p[bit / 8] ^= (uint8_t)(1u << (bit % 8));
		assert_int_not_equal(rc, 0);
		if (bit / 8 >= WIRE_HDR_LEN)
			assert_int_equal(rc, DYN_EAUTH);
	}
	assert_int_equal(wire_decode(&fx->key, p, len, &fx->m), 0);
	buf_fini(&fx->b);
}

static void
test_wrong_magic_and_version(void **state)
{
	struct fixture *fx = *state;
	uint8_t *p;
	size_t len;

	build_full(fx);
	p = fx->b.data;
	len = fx->b.len;

	p[0] = 'X';
	retag(&fx->key, p, len);
	assert_int_equal(wire_decode(&fx->key, p, len, &fx->m), DYN_EBADMSG);
	be_put_u32(p, WIRE_MAGIC);

	for (int v = 0; v < 256; v++) {
		if (v == WIRE_VERSION)
			continue;
		p[OFF_VERSION] = (uint8_t)v;
		retag(&fx->key, p, len);
		assert_int_equal(wire_decode(&fx->key, p, len, &fx->m),
		                 DYN_EPROTO);
	}
	p[OFF_VERSION] = WIRE_VERSION;
	retag(&fx->key, p, len);
	assert_int_equal(wire_decode(&fx->key, p, len, &fx->m), 0);
	buf_fini(&fx->b);
}

static void
test_wrong_key(void **state)
{
	struct fixture *fx = *state;
	struct auth_keys other = fx->key;

	build_full(fx);
	other.gen[0].role[AUTH_CLIENT].k[0] ^= 0x80;
	assert_int_equal(wire_decode(&other, fx->b.data, fx->b.len, &fx->m),
	                 DYN_EAUTH);
	assert_int_equal(fx->m.nfields, 0);
	/* A zero tag is no better. */
	memset(fx->b.data + fx->b.len - AUTH_TAG_LEN, 0, AUTH_TAG_LEN);
	assert_int_equal(wire_decode(&fx->key, fx->b.data, fx->b.len, &fx->m),
	                 DYN_EAUTH);
	buf_fini(&fx->b);
}

static void
test_huge_lengths(void **state)
{
	static const uint32_t bodylens[] = {
	    0, 1, UINT32_MAX, UINT32_MAX - 1, 0x80000000u, WIRE_MAX_MSG};
	struct fixture *fx = *state;
	uint8_t *p;
	size_t len, first;
	uint32_t orig;

	build_full(fx);
	p = fx->b.data;
	len = fx->b.len;
	orig = be_get_u32(p + OFF_BODYLEN);

	/* Body length disagreeing with the buffer, tag fixed or not. */
	for (size_t i = 0; i < sizeof(bodylens) / sizeof(bodylens[0]); i++) {
		be_put_u32(p + OFF_BODYLEN, bodylens[i]);
		retag(&fx->key, p, len);
		assert_int_equal(wire_decode(&fx->key, p, len, &fx->m),
		                 DYN_EBADMSG);
	}
	be_put_u32(p + OFF_BODYLEN, orig);

	/* The first field's length: huge, one past the body, all the body. */
	first = WIRE_HDR_LEN + 2;
	{
		const uint32_t flens[] = {UINT32_MAX,
		                          UINT32_MAX - 5,
		                          0x80000000u,
		                          orig - 6 + 1,
		                          orig - 6,
		                          9,
		                          7};

		for (size_t i = 0; i < sizeof(flens) / sizeof(flens[0]); i++) {
			be_put_u32(p + first, flens[i]);
			retag(&fx->key, p, len);
			assert_int_equal(wire_decode(&fx->key, p, len, &fx->m),
			                 DYN_EBADMSG);
		}
	}
	be_put_u32(p + first, 8);
	retag(&fx->key, p, len);
	assert_int_equal(wire_decode(&fx->key, p, len, &fx->m), 0);

	/* A length that claims more than the message may be. */
	{
		size_t big = (size_t)WIRE_MAX_MSG + 1;
		uint8_t *q = calloc(1, big);

		assert_non_null(q);
		memcpy(q, p, WIRE_HDR_LEN);
		be_put_u32(q + OFF_BODYLEN,
		           (uint32_t)(big - WIRE_HDR_LEN - AUTH_TAG_LEN));
		be_put_u32(q + OFF_NFIELDS, 0);
		assert_int_equal(wire_decode(&fx->key, q, big, &fx->m),
		                 DYN_ETOOBIG);
		assert_int_equal(wire_decode(&fx->key, q, SIZE_MAX, &fx->m),
		                 DYN_ETOOBIG);
		free(q);
	}
	buf_fini(&fx->b);
}

static void
test_field_count(void **state)
{
	static const uint32_t counts[] = {WIRE_MAX_FIELDS + 1, 0x10000,
	                                  UINT32_MAX};
	struct fixture *fx = *state;
	uint8_t *p;
	size_t len;

	/* Exactly the maximum is fine. */
	wire_begin(&fx->b, WIRE_GET_REQ, 0, 0);
	for (int i = 0; i < WIRE_MAX_FIELDS; i++)
		wire_put_u32(&fx->b, (uint16_t)(100 + i), (uint32_t)i);
	assert_int_equal(wire_seal(&fx->b, &fx->key), 0);
	assert_int_equal(wire_decode(&fx->key, fx->b.data, fx->b.len, &fx->m),
	                 0);
	assert_int_equal(fx->m.nfields, WIRE_MAX_FIELDS);
	for (int i = 0; i < WIRE_MAX_FIELDS; i++) {
		uint32_t v;
		assert_int_equal(wire_get_u32(&fx->m, (uint16_t)(100 + i), &v),
		                 0);
		assert_int_equal(v, i);
	}

	/* The encoder refuses one more, by put or by begin_field. */
	wire_begin(&fx->b, WIRE_GET_REQ, 0, 0);
	for (int i = 0; i <= WIRE_MAX_FIELDS; i++)
		wire_put_u32(&fx->b, F_R, 1);
	assert_int_equal(wire_seal(&fx->b, &fx->key), DYN_ETOOBIG);
	wire_begin(&fx->b, WIRE_GET_REQ, 0, 0);
	for (int i = 0; i < WIRE_MAX_FIELDS; i++)
		wire_put_u32(&fx->b, F_R, 1);
	wire_end_field(&fx->b, wire_begin_field(&fx->b, F_VSET));
	assert_int_equal(wire_seal(&fx->b, &fx->key), DYN_ETOOBIG);

	/* A decoder given 65 real fields. */
	wire_begin(&fx->b, WIRE_GET_REQ, 0, 0);
	for (int i = 0; i < WIRE_MAX_FIELDS; i++)
		wire_put_u32(&fx->b, F_R, 1);
	assert_int_equal(buf_err(&fx->b), 0);
	buf_put_u16(&fx->b, F_W);
	buf_put_u32(&fx->b, 4);
	buf_put_u32(&fx->b, 1);
	be_put_u32(fx->b.data + OFF_NFIELDS, WIRE_MAX_FIELDS + 1);
	assert_int_equal(wire_seal(&fx->b, &fx->key), 0);
	assert_int_equal(wire_decode(&fx->key, fx->b.data, fx->b.len, &fx->m),
	                 DYN_EBADMSG);

	/* Counts that lie about a valid body. */
	build_full(fx);
	p = fx->b.data;
	len = fx->b.len;
	for (size_t i = 0; i < sizeof(counts) / sizeof(counts[0]); i++) {
		be_put_u32(p + OFF_NFIELDS, counts[i]);
		retag(&fx->key, p, len);
		assert_int_equal(wire_decode(&fx->key, p, len, &fx->m),
		                 DYN_EBADMSG);
	}
	/* Fewer fields than the body holds: bytes left over. */
	for (uint32_t n = 0; n < 9; n++) {
		be_put_u32(p + OFF_NFIELDS, n);
		retag(&fx->key, p, len);
		assert_int_equal(wire_decode(&fx->key, p, len, &fx->m),
		                 DYN_EBADMSG);
	}
	/* One more than there is: the last field runs past the body. */
	be_put_u32(p + OFF_NFIELDS, 10);
	retag(&fx->key, p, len);
	assert_int_equal(wire_decode(&fx->key, p, len, &fx->m), DYN_EBADMSG);
	buf_fini(&fx->b);
}

static void
test_trailing_bytes(void **state)
{
	struct fixture *fx = *state;
	size_t body;

	/* Bytes after the last field, covered by body length and tag. */
	wire_begin(&fx->b, WIRE_GET_REQ, 0, 0);
	wire_put(&fx->b, F_KEY, "k", 1);
	buf_put_u8(&fx->b, 0);
	assert_int_equal(wire_seal(&fx->b, &fx->key), 0);
	assert_int_equal(wire_decode(&fx->key, fx->b.data, fx->b.len, &fx->m),
	                 DYN_EBADMSG);

	/* Bytes after the trailer. */
	wire_begin(&fx->b, WIRE_GET_REQ, 0, 0);
	wire_put(&fx->b, F_KEY, "k", 1);
	assert_int_equal(wire_seal(&fx->b, &fx->key), 0);
	body = fx->b.len;
	buf_put_u8(&fx->b, 0);
	assert_int_equal(wire_decode(&fx->key, fx->b.data, fx->b.len, &fx->m),
	                 DYN_EBADMSG);
	assert_int_equal(wire_decode(&fx->key, fx->b.data, body, &fx->m), 0);
	buf_fini(&fx->b);
}

static void
test_encoder_errors(void **state)
{
	struct fixture *fx = *state;
	struct buf b;

	/* Fields without wire_begin. */
	buf_init(&b);
	wire_put_u32(&b, F_R, 1);
	assert_int_equal(wire_seal(&b, &fx->key), -EINVAL);
	buf_fini(&b);
	buf_init(&b);
	assert_int_equal(wire_seal(&b, &fx->key), -EINVAL);
	buf_fini(&b);

	/* A field longer than any message; the pointer is never read. */
	wire_begin(&fx->b, WIRE_PUT_REQ, 0, 0);
	wire_put(&fx->b, F_VALUE, "", (size_t)WIRE_MAX_MSG + 1);
	assert_int_equal(wire_seal(&fx->b, &fx->key), DYN_ETOOBIG);

	/* A bad offset to wire_end_field. */
	wire_begin(&fx->b, WIRE_PUT_REQ, 0, 0);
	wire_end_field(&fx->b, 3);
	assert_int_equal(wire_seal(&fx->b, &fx->key), -EINVAL);
	wire_begin(&fx->b, WIRE_PUT_REQ, 0, 0);
	wire_end_field(&fx->b, fx->b.len + 1);
	assert_int_equal(wire_seal(&fx->b, &fx->key), -EINVAL);

	/* Out of memory while growing: sticky, reported by seal. */
	wire_begin(&fx->b, WIRE_PUT_REQ, 0, 0);
	mem_set_allocator(&failing_alloc);
	{
		static uint8_t big[1 << 16];
		wire_put(&fx->b, F_VALUE, big, sizeof(big));
	}
	mem_set_allocator(&testmem_checked);
	wire_put_u32(&fx->b, F_W, 1);
	assert_int_equal(wire_seal(&fx->b, &fx->key), -ENOMEM);
	buf_fini(&fx->b);
}

static void
test_big_value(void **state)
{
	struct fixture *fx = *state;
	const struct wire_field *f;
	uint8_t *v;
	size_t at;

	/* A maximum-size value, written in place through begin_field. */
	wire_begin(&fx->b, WIRE_PUT_REQ, 0, 0);
	wire_put(&fx->b, F_KEY, "k", 1);
	at = wire_begin_field(&fx->b, F_VALUE);
	v = buf_extend(&fx->b, WIRE_MAX_VALUE);
	assert_non_null(v);
	memset(v, 0x77, WIRE_MAX_VALUE);
	v[WIRE_MAX_VALUE - 1] = 0x78;
	wire_end_field(&fx->b, at);
	assert_int_equal(wire_seal(&fx->b, &fx->key), 0);
	assert_int_equal(wire_decode(&fx->key, fx->b.data, fx->b.len, &fx->m),
	                 0);
	f = wire_find(&fx->m, F_VALUE);
	assert_non_null(f);
	assert_int_equal(f->len, WIRE_MAX_VALUE);
	assert_int_equal(f->data[WIRE_MAX_VALUE - 1], 0x78);
	buf_fini(&fx->b);
}

/* A blob's message (WIRE_H_BLOB): the tag skips the value, which must be
 * the blob the key names. */
static void
build_blob(struct fixture *fx, uint8_t *key, const uint8_t *val, size_t n)
{
	wire_begin(&fx->b, WIRE_PUT_REQ, WIRE_H_BLOB, 7);
	wire_put(&fx->b, F_KEY, key, BLOB_KEY_LEN);
	wire_put(&fx->b, F_VALUE, val, n);
	wire_put_u32(&fx->b, F_FLAGS, WIRE_F_BLOB);
	assert_int_equal(wire_seal(&fx->b, &fx->key), 0);
}

static void
test_blob_tag(void **state)
{
	struct fixture *fx = *state;
	struct blob_key bk;
	uint8_t val[300], name[BLOB_NAME_LEN], key[BLOB_KEY_LEN];

	for (size_t i = 0; i < sizeof(val); i++)
		val[i] = (uint8_t)(i * 7);
	memcpy(bk.k, fx->key.blob.k, sizeof(bk.k));
	blob_name(&bk, val, sizeof(val), name);
	blob_key(BLOB_DATA, name, key);
	build_blob(fx, key, val, sizeof(val));
	assert_int_equal(wire_decode(&fx->key, fx->b.data, fx->b.len, &fx->m),
	                 0);
	assert_int_equal(fx->m.flags, WIRE_H_BLOB);
	/* Any byte changed fails: of the value (name check), of the rest
	 * (tag), of the key (both). */
	for (size_t i = 0; i < fx->b.len; i++) {
		fx->b.data[i] ^= 0x40;
		assert_int_not_equal(
		    wire_decode(&fx->key, fx->b.data, fx->b.len, &fx->m), 0);
		fx->b.data[i] ^= 0x40;
	}
	/* Another cluster's key. */
	struct auth_key master;
	struct auth_keys other;
	assert_int_equal(auth_key_generate(&master), 0);
	assert_int_equal(auth_keys_from_master(&master, AUTH_CLIENT, &other), 0);
	assert_int_equal(wire_decode(&other, fx->b.data, fx->b.len, &fx->m),
	                 DYN_EAUTH);
	/* The same keys but another blob key: the name check fails. */
	other = fx->key;
	other.blob.k[0] ^= 1;
	assert_int_equal(wire_decode(&other, fx->b.data, fx->b.len, &fx->m),
	                 DYN_EAUTH);
	/* A key that is no blob's, no key, two values. */
	uint8_t plain[BLOB_KEY_LEN];
	memcpy(plain, key, sizeof(plain));
	plain[0] = 'F';
	build_blob(fx, plain, val, sizeof(val));
	assert_int_equal(wire_decode(&fx->key, fx->b.data, fx->b.len, &fx->m),
	                 DYN_EBADMSG);
	wire_begin(&fx->b, WIRE_GET_RESP, WIRE_H_BLOB, 7);
	wire_put(&fx->b, F_VALUE, val, sizeof(val));
	assert_int_equal(wire_seal(&fx->b, &fx->key), 0);
	assert_int_equal(wire_decode(&fx->key, fx->b.data, fx->b.len, &fx->m),
	                 DYN_EBADMSG);
	wire_begin(&fx->b, WIRE_GET_RESP, WIRE_H_BLOB, 7);
	wire_put(&fx->b, F_KEY, key, BLOB_KEY_LEN);
	wire_put(&fx->b, F_VALUE, val, sizeof(val));
	wire_put(&fx->b, F_VALUE, val, sizeof(val));
	assert_int_equal(wire_seal(&fx->b, &fx->key), -EINVAL);
	/* No value to skip: the sealer refuses. */
	wire_begin(&fx->b, WIRE_GET_RESP, WIRE_H_BLOB, 7);
	wire_put(&fx->b, F_KEY, key, BLOB_KEY_LEN);
	assert_int_equal(wire_seal(&fx->b, &fx->key), -EINVAL);
	buf_fini(&fx->b);
}

/* The header says who sealed it: role, key generation, sender, a fresh
 * sequence number and the time; a seal again (a forward) renews them. */
static void
test_header_fields(void **state)
{
	struct fixture *fx = *state;

	wire_begin(&fx->b, WIRE_PUT_REQ, 0, 42);
	wire_put_str(&fx->b, F_KEY, "k");
	uint64_t before = wire_clock_ms();
	assert_int_equal(wire_seal(&fx->b, &fx->key), 0);
	size_t len = fx->b.len;
	assert_int_equal(wire_decode(&fx->key, fx->b.data, len, &fx->m), 0);
	struct wire_msg first = fx->m;
	assert_int_equal(first.role, AUTH_CLIENT);
	assert_int_equal(first.keyid, fx->key.gen[0].id);
	assert_true(first.sender == wire_sender() && first.sender != 0);
	assert_true(first.seq > 0);
	assert_true(first.time_ms >= before &&
	            first.time_ms <= wire_clock_ms());

	assert_int_equal(wire_seal_as(&fx->b, &fx->key, AUTH_ADMIN), 0);
	assert_int_equal(fx->b.len, len); /* the old tag replaced */
	assert_int_equal(wire_decode(&fx->key, fx->b.data, len, &fx->m), 0);
	assert_int_equal(fx->m.role, AUTH_ADMIN);
	assert_true(fx->m.seq > first.seq);
	assert_int_equal(fx->m.nfields, 1);
	buf_fini(&fx->b);
}

/* Keys of one role check only that role's messages; a role the keys lack
 * cannot seal; another key generation's id is not found. */
static void
test_roles(void **state)
{
	struct fixture *fx = *state;
	struct auth_keys client = fx->key;
	client.gen[0].have = AUTH_ROLE_BIT(AUTH_CLIENT);

	wire_begin(&fx->b, WIRE_LEAVE_REQ, 0, 1);
	assert_int_equal(wire_seal_as(&fx->b, &client, AUTH_NODE), -EPERM);
	wire_begin(&fx->b, WIRE_LEAVE_REQ, 0, 1);
	assert_int_equal(wire_seal_as(&fx->b, &fx->key, AUTH_ADMIN), 0);
	assert_int_equal(wire_decode(&client, fx->b.data, fx->b.len, &fx->m),
	                 DYN_EAUTH);
	assert_int_equal(wire_decode(&fx->key, fx->b.data, fx->b.len, &fx->m),
	                 0);
	/* The header's role changed to one whose key the tag is not under. */
	fx->b.data[24] = AUTH_NODE;
	assert_int_equal(wire_decode(&fx->key, fx->b.data, fx->b.len, &fx->m),
	                 DYN_EAUTH);
	fx->b.data[24] = AUTH_NROLES; /* no role */
	retag(&fx->key, fx->b.data, fx->b.len);
	assert_int_equal(wire_decode(&fx->key, fx->b.data, fx->b.len, &fx->m),
	                 DYN_EBADMSG);
	/* Another generation: the receiver holds no key of that id. */
	struct auth_keys next = fx->key;
	next.gen[0].id ^= 0x5a5a;
	wire_begin(&fx->b, WIRE_GET_REQ, 0, 1);
	assert_int_equal(wire_seal(&fx->b, &next), 0);
	assert_int_equal(wire_decode(&fx->key, fx->b.data, fx->b.len, &fx->m),
	                 DYN_EAUTH);
	/* ... until it holds both (a rotation in progress). */
	struct auth_keys both = fx->key;
	both.gen[1] = next.gen[0];
	assert_int_equal(wire_decode(&both, fx->b.data, fx->b.len, &fx->m), 0);
	buf_fini(&fx->b);
}

static void
test_role_policy(void **state)
{
	(void)state;
	for (uint8_t t = 1; t < WIRE_TYPE_END; t++)
		assert_true(wire_role_may(AUTH_NODE, t));
	assert_true(wire_role_may(AUTH_CLIENT, WIRE_GET_REQ));
	assert_true(wire_role_may(AUTH_CLIENT, WIRE_PUT_REQ));
	assert_true(wire_role_may(AUTH_CLIENT, WIRE_STATUS_REQ));
	static const uint8_t admin_only[] = {WIRE_LEAVE_REQ, WIRE_REMOVE_REQ,
	    WIRE_FAULT_REQ, WIRE_COMPACT_REQ};
	for (size_t i = 0; i < sizeof(admin_only); i++) {
		assert_false(wire_role_may(AUTH_CLIENT, admin_only[i]));
		assert_true(wire_role_may(AUTH_ADMIN, admin_only[i]));
	}
	static const uint8_t node_only[] = {WIRE_GOSSIP_REQ,
	    WIRE_REPLICATE_REQ, WIRE_XFER_REQ, WIRE_AE_REQ, WIRE_MERGE_REQ,
	    WIRE_PURGE_REQ, WIRE_PURGE_CHECK_REQ, WIRE_GC_FILTER_REQ};
	for (size_t i = 0; i < sizeof(node_only); i++) {
		assert_false(wire_role_may(AUTH_CLIENT, node_only[i]));
		assert_false(wire_role_may(AUTH_ADMIN, node_only[i]));
	}
}

int
main(void)
{
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
	const struct CMUnitTest tests[] = {
	    T(test_round_trip),
	    T(test_getters),
	    T(test_i32_range),
	    T(test_empty_and_duplicates),
	    T(test_every_type),
	    T(test_reused_buf),
	    T(test_truncation),
	    T(test_bit_flips),
	    T(test_wrong_magic_and_version),
	    T(test_wrong_key),
	    T(test_huge_lengths),
	    T(test_field_count),
	    T(test_trailing_bytes),
	    T(test_encoder_errors),
	    T(test_big_value),
	    T(test_blob_tag),
	    T(test_header_fields),
	    T(test_roles),
	    T(test_role_policy),
	};
#undef T

	return cmocka_run_group_tests(tests, NULL, NULL);
}
