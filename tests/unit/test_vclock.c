/*
 * Unit tests for vclock: causal order, merge, the VCLOCK_MAX truncation rule
 * and the decoder's checks.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "buf.h"
#include "err.h"
#include "mem.h"
#include "testmem.h"
#include "vclock.h"

/* Build a clock from (actor, counter) pairs, ts = 100 * counter. */
static struct vclock
mk(size_t n, const uint64_t (*ac)[2])
{
	struct vclock c;

	vclock_init(&c);
	for (size_t i = 0; i < n; i++)
		vclock_raise(&c, ac[i][0], ac[i][1], 100 * ac[i][1]);
	return c;
}

static void
assert_sorted(const struct vclock *c)
{
	assert_true(c->n <= VCLOCK_MAX);
	for (uint32_t i = 1; i < c->n; i++)
		assert_true(c->e[i - 1].actor < c->e[i].actor);
}

static void
test_raise_get(void **state)
{
	struct vclock c;

	(void)state;
	vclock_init(&c);
	assert_int_equal(c.n, 0);
	assert_int_equal(vclock_get(&c, 7), 0);
	assert_int_equal(vclock_get(NULL, 7), 0);

	vclock_raise(&c, 30, 2, 5);
	vclock_raise(&c, 10, 1, 6);
	vclock_raise(&c, 20, 4, 7);
	assert_int_equal(c.n, 3);
	assert_sorted(&c);
	assert_int_equal(vclock_get(&c, 10), 1);
	assert_int_equal(vclock_get(&c, 20), 4);
	assert_int_equal(vclock_get(&c, 30), 2);
	assert_int_equal(vclock_get(&c, 25), 0);

	/* Lower counter: no change, not even the timestamp. */
	vclock_raise(&c, 20, 3, 99);
	assert_int_equal(vclock_get(&c, 20), 4);
	assert_int_equal(c.e[1].ts_ms, 7);
	/* Equal counter: the later timestamp is kept. */
	vclock_raise(&c, 20, 4, 50);
	assert_int_equal(c.e[1].ts_ms, 50);
	vclock_raise(&c, 20, 4, 1);
	assert_int_equal(c.e[1].ts_ms, 50);
	/* Higher counter: counter and timestamp advance. */
	vclock_raise(&c, 20, 9, 3);
	assert_int_equal(vclock_get(&c, 20), 9);
	assert_int_equal(c.e[1].ts_ms, 3);
	/* Zero counter is no event. */
	vclock_raise(&c, 40, 0, 1);
	assert_int_equal(c.n, 3);
}

static void
test_covers(void **state)
{
	static const uint64_t ac[][2] = {{1, 3}, {2, 1}};
	struct vclock c = mk(2, ac);
	struct dot d;

	(void)state;
	d = (struct dot){1, 3};
	assert_true(vclock_covers(&c, &d));
	d = (struct dot){1, 2};
	assert_true(vclock_covers(&c, &d));
	d = (struct dot){1, 4};
	assert_false(vclock_covers(&c, &d));
	d = (struct dot){2, 2};
	assert_false(vclock_covers(&c, &d));
	d = (struct dot){3, 1};
	assert_false(vclock_covers(&c, &d));
}

static void
test_order_descends(void **state)
{
	static const uint64_t lo[][2] = {{1, 1}, {2, 1}};
	static const uint64_t hi[][2] = {{1, 2}, {2, 1}, {3, 1}};
	struct vclock a = mk(2, lo);
	struct vclock b = mk(3, hi);
	struct vclock empty;

	(void)state;
	vclock_init(&empty);
	assert_true(vclock_descends(&b, &a));
	assert_false(vclock_descends(&a, &b));
	assert_false(vclock_equal(&a, &b));
	assert_true(vclock_descends(&a, &empty));
	assert_false(vclock_descends(&empty, &a));
	assert_true(vclock_descends(&empty, &empty));
}

static void
test_order_concurrent(void **state)
{
	static const uint64_t x[][2] = {{1, 2}, {2, 1}};
	static const uint64_t y[][2] = {{1, 1}, {2, 2}};
	static const uint64_t z[][2] = {{3, 1}};
	struct vclock a = mk(2, x);
	struct vclock b = mk(2, y);
	struct vclock c = mk(1, z);

	(void)state;
	assert_false(vclock_descends(&a, &b));
	assert_false(vclock_descends(&b, &a));
	assert_false(vclock_equal(&a, &b));
	/* Disjoint actors are concurrent too. */
	assert_false(vclock_descends(&a, &c));
	assert_false(vclock_descends(&c, &a));
}

static void
test_order_equal(void **state)
{
	static const uint64_t x[][2] = {{1, 2}, {5, 1}};
	struct vclock a = mk(2, x);
	struct vclock b = mk(2, x);

	(void)state;
	assert_true(vclock_equal(&a, &b));
	assert_true(vclock_descends(&a, &b));
	assert_true(vclock_descends(&b, &a));
	/* Timestamps are not part of causality. */
	b.e[0].ts_ms = 12345;
	assert_true(vclock_equal(&a, &b));
	/* Insertion order does not matter. */
	vclock_init(&b);
	vclock_raise(&b, 5, 1, 100);
	vclock_raise(&b, 1, 2, 200);
	assert_true(vclock_equal(&a, &b));
	assert_memory_equal(&a, &b, sizeof(a));
}

static void
test_merge(void **state)
{
	struct vclock a;
	struct vclock b;
	struct vclock m;

	(void)state;
	vclock_init(&a);
	vclock_init(&b);
	vclock_raise(&a, 1, 5, 10);
	vclock_raise(&a, 2, 1, 11);
	vclock_raise(&a, 4, 3, 12);
	vclock_raise(&b, 2, 4, 20);
	vclock_raise(&b, 3, 1, 21);
	vclock_raise(&b, 4, 3, 30);

	m = a;
	vclock_merge(&m, &b);
	assert_sorted(&m);
	assert_int_equal(m.n, 4);
	assert_int_equal(vclock_get(&m, 1), 5);
	assert_int_equal(vclock_get(&m, 2), 4);
	assert_int_equal(vclock_get(&m, 3), 1);
	assert_int_equal(vclock_get(&m, 4), 3);
	assert_int_equal(m.e[0].ts_ms, 10); /* only in a */
	assert_int_equal(m.e[1].ts_ms, 20); /* b's counter is larger */
	assert_int_equal(m.e[2].ts_ms, 21); /* only in b */
	assert_int_equal(m.e[3].ts_ms, 30); /* equal counters: max ts */
	assert_true(vclock_descends(&m, &a));
	assert_true(vclock_descends(&m, &b));

	/* Commutative and idempotent, timestamps included. */
	struct vclock m2 = b;
	vclock_merge(&m2, &a);
	assert_memory_equal(&m, &m2, sizeof(m));
	vclock_merge(&m2, &a);
	vclock_merge(&m2, &m);
	assert_memory_equal(&m, &m2, sizeof(m));
}

static void
test_truncate_raise(void **state)
{
	struct vclock c;

	(void)state;
	vclock_init(&c);
	/* Actor 5 is the oldest. */
	for (uint64_t a = 1; a <= VCLOCK_MAX; a++)
		vclock_raise(&c, a, 1, a == 5 ? 1 : 100 + a);
	assert_int_equal(c.n, VCLOCK_MAX);
	vclock_raise(&c, 99, 1, 500);
	assert_int_equal(c.n, VCLOCK_MAX);
	assert_sorted(&c);
	assert_int_equal(vclock_get(&c, 5), 0);
	assert_int_equal(vclock_get(&c, 99), 1);
	for (uint64_t a = 1; a <= VCLOCK_MAX; a++) {
		if (a != 5)
			assert_int_equal(vclock_get(&c, a), 1);
	}

	/* Advancing an existing entry never drops anything. */
	vclock_raise(&c, 1, 7, 0);
	assert_int_equal(c.n, VCLOCK_MAX);
	assert_int_equal(vclock_get(&c, 1), 7);

	/* Ties on ts: the smallest actor goes. */
	vclock_init(&c);
	for (uint64_t a = 1; a <= VCLOCK_MAX; a++)
		vclock_raise(&c, a * 10, 1, 7);
	vclock_raise(&c, 5, 1, 7);
	assert_int_equal(c.n, VCLOCK_MAX);
	assert_int_equal(vclock_get(&c, 5), 0);
	assert_int_equal(vclock_get(&c, 10), 1);

	/* A new entry older than all others is the one dropped. */
	vclock_init(&c);
	for (uint64_t a = 1; a <= VCLOCK_MAX; a++)
		vclock_raise(&c, a, 1, 100);
	vclock_raise(&c, 1000, 1, 1);
	assert_int_equal(vclock_get(&c, 1000), 0);
	assert_int_equal(c.n, VCLOCK_MAX);
}

static void
test_truncate_merge(void **state)
{
	struct vclock a;
	struct vclock b;

	(void)state;
	vclock_init(&a);
	vclock_init(&b);
	/* a: even actors, b: odd actors; 16 together, the 6 oldest go. */
	for (uint64_t i = 0; i < 8; i++) {
		vclock_raise(&a, 2 * i, 1, 1000 - 2 * i);
		vclock_raise(&b, 2 * i + 1, 1, 1000 - (2 * i + 1));
	}
	struct vclock m = a;
	vclock_merge(&m, &b);
	assert_int_equal(m.n, VCLOCK_MAX);
	assert_sorted(&m);
	/* ts = 1000 - actor: actors 0..9 are the newest. */
	for (uint64_t i = 0; i < 16; i++)
		assert_int_equal(vclock_get(&m, i), i < VCLOCK_MAX ? 1 : 0);

	struct vclock m2 = b;
	vclock_merge(&m2, &a);
	assert_memory_equal(&m, &m2, sizeof(m));
}

static void
test_codec_roundtrip(void **state)
{
	struct vclock c;
	struct vclock d;
	struct buf b;
	struct rd r;

	(void)state;
	buf_init(&b);
	vclock_init(&c);
	vclock_encode(&c, &b);
	assert_int_equal(b.len, 2);
	rd_init(&r, b.data, b.len);
	assert_int_equal(vclock_decode(&r, &d), 0);
	assert_int_equal(d.n, 0);
	assert_int_equal(rd_left(&r), 0);

	for (uint64_t a = 1; a <= VCLOCK_MAX; a++)
		vclock_raise(&c, a * 0x0101010101010101ull, a * 3, a << 40);
	buf_reset(&b);
	vclock_encode(&c, &b);
	assert_int_equal(buf_err(&b), 0);
	assert_int_equal(b.len, 2 + 24 * VCLOCK_MAX);
	rd_init(&r, b.data, b.len);
	assert_int_equal(vclock_decode(&r, &d), 0);
	assert_int_equal(rd_left(&r), 0);
	assert_memory_equal(&c, &d, sizeof(c));
	buf_fini(&b);
}

/* Encode a count and raw entries, bypassing vclock_raise's invariants.
 * count may claim more than the nent entries written. */
static int
decode_raw(uint16_t count, uint16_t nent, const struct vclock_entry *e)
{
	struct vclock c;
	struct buf b;
	struct rd r;
	int rc;

	buf_init(&b);
	buf_put_u16(&b, count);
	for (uint16_t i = 0; i < nent; i++) {
		buf_put_u64(&b, e[i].actor);
		buf_put_u64(&b, e[i].counter);
		buf_put_u64(&b, e[i].ts_ms);
	}
	assert_int_equal(buf_err(&b), 0);
	rd_init(&r, b.data, b.len);
	memset(&c, 0xa5, sizeof(c));
	rc = vclock_decode(&r, &c);
	if (rc != 0) {
		/* Left empty, and the reader is spent. */
		assert_int_equal(c.n, 0);
		assert_true(r.bad);
	} else {
		assert_int_equal(c.n, count);
		assert_int_equal(rd_left(&r), 0);
	}
	buf_fini(&b);
	return rc;
}

static void
test_decode_reject(void **state)
{
	struct vclock_entry e[VCLOCK_MAX + 1];

	(void)state;
	for (uint64_t i = 0; i <= VCLOCK_MAX; i++)
		e[i] = (struct vclock_entry){i + 1, 1, 0};
	assert_int_equal(decode_raw(VCLOCK_MAX, VCLOCK_MAX, e), 0);
	assert_int_equal(decode_raw(VCLOCK_MAX + 1, VCLOCK_MAX + 1, e),
	                 DYN_EBADMSG);
	assert_int_equal(decode_raw(UINT16_MAX, VCLOCK_MAX + 1, e),
	                 DYN_EBADMSG);

	/* Unsorted. */
	e[3].actor = 2;
	e[1].actor = 4;
	assert_int_equal(decode_raw(4, 4, e), DYN_EBADMSG);
	/* Duplicate. */
	e[1].actor = 2;
	e[2].actor = 2;
	assert_int_equal(decode_raw(3, 3, e), DYN_EBADMSG);
	e[2].actor = 3;
	e[3].actor = 4;
	assert_int_equal(decode_raw(4, 4, e), 0);
	/* Zero counter. */
	e[2].counter = 0;
	assert_int_equal(decode_raw(4, 4, e), DYN_EBADMSG);
}

static void
test_decode_truncated(void **state)
{
	struct vclock c;
	struct vclock d;
	struct buf b;
	struct rd r;

	(void)state;
	vclock_init(&c);
	for (uint64_t a = 1; a <= 4; a++)
		vclock_raise(&c, a, a, a);
	buf_init(&b);
	vclock_encode(&c, &b);
	for (size_t len = 0; len < b.len; len++) {
		rd_init(&r, b.data, len);
		assert_int_equal(vclock_decode(&r, &d), DYN_EBADMSG);
		assert_int_equal(d.n, 0);
	}
	rd_init(&r, b.data, b.len);
	assert_int_equal(vclock_decode(&r, &d), 0);
	buf_fini(&b);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_raise_get),
	    cmocka_unit_test(test_covers),
	    cmocka_unit_test(test_order_descends),
	    cmocka_unit_test(test_order_concurrent),
	    cmocka_unit_test(test_order_equal),
	    cmocka_unit_test(test_merge),
	    cmocka_unit_test(test_truncate_raise),
	    cmocka_unit_test(test_truncate_merge),
	    cmocka_unit_test(test_codec_roundtrip),
	    cmocka_unit_test(test_decode_reject),
	    cmocka_unit_test(test_decode_truncated),
	};

	return cmocka_run_group_tests(tests, testmem_setup, testmem_teardown);
}
