/* Unit tests for common/context: tagged get->put contexts. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "context.h"
#include "err.h"
#include "mem.h"
#include "testmem.h"

/* What context.c tags and writes; format 1 (clocks without dots, domain
 * "dynamo-context-v1") is no longer read. */
static const char context_domain[] = "dynamo-context-v2";
#define FORMAT 2

/* Shortest context: format, empty clock (no entries, no dots), tag. */
#define MIN_LEN (1 + 2 + 2 + AUTH_TAG_LEN)

struct fixture {
	struct auth_key key;
	struct keypos pos;
	struct vclock clock;
	struct vclock out;
	struct buf b;
};

static int
setup(void **state)
{
	struct fixture *fx;

	mem_set_allocator(&testmem_checked);
	/* Plain calloc: cmocka checks for leaks after each fixture and
	 * test separately, so what lives across them cannot be its. */
	fx = calloc(1, sizeof(*fx));
	if (fx == NULL || auth_key_generate(&fx->key) != 0 ||
	    keypos_of("some/key", 8, &fx->pos) != 0)
		return -1;
	vclock_init(&fx->clock);
	vclock_raise(&fx->clock, 0x1111, 3, 1000);
	vclock_raise(&fx->clock, 0x2222, 1, 2000);
	vclock_raise(&fx->clock, 0xffffffffffffffffull, 7, 3000);
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

/* A context of the given format byte and tag domain with any clock bytes,
 * tagged properly: what only a holder of the cluster key could make. */
static void
forge_as(const struct fixture *fx, uint8_t format, const char *domain,
         const uint8_t *clock, size_t clen, struct buf *out)
{
	uint8_t prefix[64 + KEYPOS_LEN];
	size_t dlen = strlen(domain);
	uint8_t *t;

	assert_true(dlen <= 64);
	memcpy(prefix, domain, dlen);
	memcpy(prefix + dlen, fx->pos.b, KEYPOS_LEN);
	buf_reset(out);
	buf_put_u8(out, format);
	buf_put(out, clock, clen);
	t = buf_extend(out, AUTH_TAG_LEN);
	assert_non_null(t);
	assert_int_equal(
	    auth_tag(&fx->key, prefix, dlen + KEYPOS_LEN, clock, clen, t), 0);
}

/* The same in the current format. */
static void
forge(const struct fixture *fx, const uint8_t *clock, size_t clen,
      struct buf *out)
{
	forge_as(fx, FORMAT, context_domain, clock, clen, out);
}

static void
test_round_trip(void **state)
{
	struct fixture *fx = *state;

	context_encode(&fx->key, &fx->pos, &fx->clock, &fx->b);
	assert_int_equal(buf_err(&fx->b), 0);
	assert_int_equal(fx->b.len, 1 + 2 + 3 * 24 + 2 + AUTH_TAG_LEN);
	assert_true(fx->b.len <= CONTEXT_MAX_LEN);
	assert_int_equal(fx->b.data[0], FORMAT);
	assert_int_equal(context_decode(&fx->key, &fx->pos, fx->b.data,
	                                fx->b.len, &fx->out),
	                 0);
	assert_true(vclock_equal(&fx->out, &fx->clock));
	assert_int_equal(fx->out.n, 3);

	/* Appends to what is in the buf already. */
	buf_reset(&fx->b);
	buf_put(&fx->b, "xyz", 3);
	context_encode(&fx->key, &fx->pos, &fx->clock, &fx->b);
	assert_int_equal(buf_err(&fx->b), 0);
	assert_int_equal(context_decode(&fx->key, &fx->pos, fx->b.data + 3,
	                                fx->b.len - 3, &fx->out),
	                 0);
	assert_true(vclock_equal(&fx->out, &fx->clock));

	/* Exact dots come back as dots, not as ranges. */
	vclock_add_dot(&fx->clock, &(struct dot){0x1111, 5}, 4000);
	vclock_add_dot(&fx->clock, &(struct dot){0x3333, 2}, 5000);
	assert_int_equal(fx->clock.nd, 2);
	buf_reset(&fx->b);
	context_encode(&fx->key, &fx->pos, &fx->clock, &fx->b);
	assert_int_equal(buf_err(&fx->b), 0);
	assert_int_equal(fx->b.len,
	                 1 + 2 + 3 * 24 + 2 + 2 * 24 + AUTH_TAG_LEN);
	assert_int_equal(context_decode(&fx->key, &fx->pos, fx->b.data,
	                                fx->b.len, &fx->out),
	                 0);
	assert_true(vclock_equal(&fx->out, &fx->clock));
	assert_int_equal(fx->out.nd, 2);
	assert_true(vclock_covers(&fx->out, &(struct dot){0x1111, 5}));
	assert_false(vclock_covers(&fx->out, &(struct dot){0x1111, 4}));
	assert_false(vclock_covers(&fx->out, &(struct dot){0x3333, 1}));
	buf_fini(&fx->b);
}

static void
test_empty_clock(void **state)
{
	struct fixture *fx = *state;
	struct vclock empty;

	vclock_init(&empty);
	context_encode(&fx->key, &fx->pos, &empty, &fx->b);
	assert_int_equal(fx->b.len, MIN_LEN);
	fx->out = fx->clock;
	vclock_add_dot(&fx->out, &(struct dot){9, 9}, 1);
	assert_int_equal(context_decode(&fx->key, &fx->pos, fx->b.data,
	                                fx->b.len, &fx->out),
	                 0);
	assert_int_equal(fx->out.n, 0);
	assert_int_equal(fx->out.nd, 0);
	buf_fini(&fx->b);
}

static void
test_full_clock(void **state)
{
	struct fixture *fx = *state;
	struct vclock c;

	vclock_init(&c);
	for (uint64_t a = 1; a <= VCLOCK_MAX; a++)
		vclock_raise(&c, a * 1000, a, a);
	/* The largest clock: every entry and every dot. */
	for (uint64_t i = 0; i < VCLOCK_DOTS_MAX; i++)
		vclock_add_dot(&c, &(struct dot){(i + 1) * 1000, 20 + i}, 50);
	assert_int_equal(c.n, VCLOCK_MAX);
	assert_int_equal(c.nd, VCLOCK_DOTS_MAX);
	context_encode(&fx->key, &fx->pos, &c, &fx->b);
	assert_int_equal(buf_err(&fx->b), 0);
	assert_int_equal(fx->b.len, 1 + 2 + 24 * VCLOCK_MAX + 2 +
	                                24 * VCLOCK_DOTS_MAX + AUTH_TAG_LEN);
	assert_true(fx->b.len <= CONTEXT_MAX_LEN);
	assert_int_equal(context_decode(&fx->key, &fx->pos, fx->b.data,
	                                fx->b.len, &fx->out),
	                 0);
	assert_true(vclock_equal(&fx->out, &c));
	buf_fini(&fx->b);
}

static void
test_empty_context(void **state)
{
	struct fixture *fx = *state;

	/* Length 0 is a blind put: an empty clock, whatever the key. */
	fx->out = fx->clock;
	assert_int_equal(context_decode(&fx->key, &fx->pos, NULL, 0, &fx->out),
	                 0);
	assert_int_equal(fx->out.n, 0);
}

static void
test_bit_flips(void **state)
{
	struct fixture *fx = *state;
	uint8_t *p;
	size_t len;

	context_encode(&fx->key, &fx->pos, &fx->clock, &fx->b);
	p = fx->b.data;
	len = fx->b.len;
	for (size_t bit = 0; bit < len * 8; bit++) {
		int rc;

		p[bit / 8] ^= (uint8_t)(1u << (bit % 8));
		fx->out = fx->clock;
		rc = context_decode(&fx->key, &fx->pos, p, len, &fx->out);
		p[bit / 8] ^= (uint8_t)(1u << (bit % 8));
		assert_int_equal(rc, DYN_ECONTEXT);
		assert_int_equal(fx->out.n, 0);
	}
	assert_int_equal(context_decode(&fx->key, &fx->pos, p, len, &fx->out),
	                 0);
	buf_fini(&fx->b);
}

static void
test_other_key_position(void **state)
{
	struct fixture *fx = *state;
	struct keypos other;

	context_encode(&fx->key, &fx->pos, &fx->clock, &fx->b);
	assert_int_equal(keypos_of("some/kez", 8, &other), 0);
	assert_int_equal(
	    context_decode(&fx->key, &other, fx->b.data, fx->b.len, &fx->out),
	    DYN_ECONTEXT);
	/* Every bit of the position matters. */
	for (int bit = 0; bit < KEYPOS_LEN * 8; bit++) {
		other = fx->pos;
		other.b[bit / 8] ^= (uint8_t)(1u << (bit % 8));
		assert_int_equal(context_decode(&fx->key, &other, fx->b.data,
		                                fx->b.len, &fx->out),
		                 DYN_ECONTEXT);
	}
	buf_fini(&fx->b);
}

static void
test_wrong_cluster_key(void **state)
{
	struct fixture *fx = *state;
	struct auth_key other;

	context_encode(&fx->key, &fx->pos, &fx->clock, &fx->b);
	assert_int_equal(auth_key_generate(&other), 0);
	assert_int_equal(
	    context_decode(&other, &fx->pos, fx->b.data, fx->b.len, &fx->out),
	    DYN_ECONTEXT);
	buf_fini(&fx->b);
}

static void
test_truncated_and_trailing(void **state)
{
	struct fixture *fx = *state;
	uint8_t *copy;
	size_t len;

	context_encode(&fx->key, &fx->pos, &fx->clock, &fx->b);
	len = fx->b.len;
	/* Every prefix, in its own allocation so ASan sees any overread. */
	for (size_t n = 1; n < len; n++) {
		int rc;

		copy = test_malloc(n);
		memcpy(copy, fx->b.data, n);
		rc = context_decode(&fx->key, &fx->pos, copy, n, &fx->out);
		test_free(copy);
		if (n < MIN_LEN)
			assert_int_equal(rc, DYN_EBADMSG);
		else
			assert_int_equal(rc, DYN_ECONTEXT);
	}
	/* Garbage after the tag: the tag is no longer the last 32 bytes. */
	for (size_t extra = 1; extra <= 40; extra++) {
		buf_put_u8(&fx->b, (uint8_t)extra);
		assert_int_equal(context_decode(&fx->key, &fx->pos, fx->b.data,
		                                fx->b.len, &fx->out),
		                 DYN_ECONTEXT);
	}
	buf_fini(&fx->b);
}

static void
test_tagged_but_malformed(void **state)
{
	struct fixture *fx = *state;
	struct buf clock;
	size_t n;

	/* Garbage between the clock and the tag, correctly tagged. */
	buf_init(&clock);
	vclock_encode(&fx->clock, &clock);
	n = clock.len;
	buf_put_u8(&clock, 0);
	forge(fx, clock.data, clock.len, &fx->b);
	assert_int_equal(context_decode(&fx->key, &fx->pos, fx->b.data,
	                                fx->b.len, &fx->out),
	                 DYN_EBADMSG);
	assert_int_equal(fx->out.n, 0);

	/* The same without the garbage is accepted: forge() is right. */
	forge(fx, clock.data, n, &fx->b);
	assert_int_equal(context_decode(&fx->key, &fx->pos, fx->b.data,
	                                fx->b.len, &fx->out),
	                 0);
	assert_true(vclock_equal(&fx->out, &fx->clock));

	/* A clock that does not parse: count over VCLOCK_MAX (the dot
	 * count after it only makes the length the shortest allowed), and
	 * a truncated clock. */
	buf_reset(&clock);
	buf_put_u16(&clock, VCLOCK_MAX + 1);
	buf_put_u16(&clock, 0);
	forge(fx, clock.data, clock.len, &fx->b);
	assert_int_equal(fx->b.len, MIN_LEN);
	assert_int_equal(context_decode(&fx->key, &fx->pos, fx->b.data,
	                                fx->b.len, &fx->out),
	                 DYN_EBADMSG);
	buf_reset(&clock);
	buf_put_u16(&clock, 1);
	buf_put_u64(&clock, 1);
	forge(fx, clock.data, clock.len, &fx->b);
	assert_int_equal(context_decode(&fx->key, &fx->pos, fx->b.data,
	                                fx->b.len, &fx->out),
	                 DYN_EBADMSG);

	/* Dots: over VCLOCK_DOTS_MAX, and one next to its entry (not in
	 * normal form, so not what context_encode makes). */
	buf_reset(&clock);
	buf_put_u16(&clock, 0);
	buf_put_u16(&clock, VCLOCK_DOTS_MAX + 1);
	for (uint64_t i = 0; i <= VCLOCK_DOTS_MAX; i++) {
		buf_put_u64(&clock, 7);
		buf_put_u64(&clock, 2 + 2 * i);
		buf_put_u64(&clock, 1);
	}
	forge(fx, clock.data, clock.len, &fx->b);
	assert_int_equal(context_decode(&fx->key, &fx->pos, fx->b.data,
	                                fx->b.len, &fx->out),
	                 DYN_EBADMSG);
	buf_reset(&clock);
	buf_put_u16(&clock, 1);
	buf_put_u64(&clock, 7);
	buf_put_u64(&clock, 3);
	buf_put_u64(&clock, 1);
	buf_put_u16(&clock, 1);
	buf_put_u64(&clock, 7);
	buf_put_u64(&clock, 4);
	buf_put_u64(&clock, 1);
	forge(fx, clock.data, clock.len, &fx->b);
	assert_int_equal(context_decode(&fx->key, &fx->pos, fx->b.data,
	                                fx->b.len, &fx->out),
	                 DYN_EBADMSG);
	assert_int_equal(fx->out.n, 0);
	assert_int_equal(fx->out.nd, 0);
	/* With (7, 5) instead it is fine. */
	clock.data[clock.len - 9] = 5;
	forge(fx, clock.data, clock.len, &fx->b);
	assert_int_equal(context_decode(&fx->key, &fx->pos, fx->b.data,
	                                fx->b.len, &fx->out),
	                 0);
	assert_int_equal(fx->out.nd, 1);
	buf_fini(&clock);
	buf_fini(&fx->b);
}

static void
test_bad_sizes_and_format(void **state)
{
	struct fixture *fx = *state;
	uint8_t *big;

	/* Over the cap, whatever it holds. */
	big = test_calloc(1, CONTEXT_MAX_LEN + 1);
	big[0] = FORMAT;
	assert_int_equal(context_decode(&fx->key, &fx->pos, big,
	                                CONTEXT_MAX_LEN + 1, &fx->out),
	                 DYN_EBADMSG);
	test_free(big);

	/* Another format byte is not one this cluster issued. */
	context_encode(&fx->key, &fx->pos, &fx->clock, &fx->b);
	for (int f = 0; f < 256; f++) {
		if (f == FORMAT)
			continue;
		fx->b.data[0] = (uint8_t)f;
		assert_int_equal(context_decode(&fx->key, &fx->pos, fx->b.data,
		                                fx->b.len, &fx->out),
		                 DYN_ECONTEXT);
	}
	buf_fini(&fx->b);
}

/* A context issued before clocks had dots (format 1: its own tag domain,
 * entries only) is refused as not this cluster's, never misread. */
static void
test_old_format(void **state)
{
	struct fixture *fx = *state;
	struct buf clock;

	buf_init(&clock);
	buf_put_u16(&clock, 1);
	buf_put_u64(&clock, 0x1111);
	buf_put_u64(&clock, 3);
	buf_put_u64(&clock, 1000);
	forge_as(fx, 1, "dynamo-context-v1", clock.data, clock.len, &fx->b);
	assert_int_equal(context_decode(&fx->key, &fx->pos, fx->b.data,
	                                fx->b.len, &fx->out),
	                 DYN_ECONTEXT);
	assert_int_equal(fx->out.n, 0);
	/* Neither the old domain with the new format byte ... */
	buf_put_u16(&clock, 0);
	forge_as(fx, FORMAT, "dynamo-context-v1", clock.data, clock.len,
	         &fx->b);
	assert_int_equal(context_decode(&fx->key, &fx->pos, fx->b.data,
	                                fx->b.len, &fx->out),
	                 DYN_ECONTEXT);
	/* ... nor the new domain with the old byte. */
	forge_as(fx, 1, context_domain, clock.data, clock.len, &fx->b);
	assert_int_equal(context_decode(&fx->key, &fx->pos, fx->b.data,
	                                fx->b.len, &fx->out),
	                 DYN_ECONTEXT);
	/* Both new: accepted, so the two above failed for the right
	 * reason. */
	forge(fx, clock.data, clock.len, &fx->b);
	assert_int_equal(context_decode(&fx->key, &fx->pos, fx->b.data,
	                                fx->b.len, &fx->out),
	                 0);
	assert_int_equal(vclock_get(&fx->out, 0x1111), 3);
	buf_fini(&clock);
	buf_fini(&fx->b);
}

static void
test_broken_buf(void **state)
{
	struct fixture *fx = *state;

	/* A buf already in error stays so and gets nothing. */
	fx->b.err = -ENOMEM;
	context_encode(&fx->key, &fx->pos, &fx->clock, &fx->b);
	assert_int_equal(buf_err(&fx->b), -ENOMEM);
	assert_int_equal(fx->b.len, 0);
	buf_fini(&fx->b);
}

int
main(void)
{
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
	const struct CMUnitTest tests[] = {
	    T(test_round_trip),
	    T(test_empty_clock),
	    T(test_full_clock),
	    T(test_empty_context),
	    T(test_bit_flips),
	    T(test_other_key_position),
	    T(test_wrong_cluster_key),
	    T(test_truncated_and_trailing),
	    T(test_tagged_but_malformed),
	    T(test_bad_sizes_and_format),
	    T(test_old_format),
	    T(test_broken_buf),
	};
#undef T

	return cmocka_run_group_tests(tests, NULL, NULL);
}
