/*
 * Unit tests for vclock: causal order, merge, the VCLOCK_MAX truncation rule
 * and the decoder's checks; exact dots (folding, covers, descends, merge,
 * the VCLOCK_DOTS_MAX truncation, normal form on the wire), and a random
 * run checked against plain sets of events.
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
	assert_int_equal(b.len, 2 + 2); /* no entries, no dots */
	rd_init(&r, b.data, b.len);
	assert_int_equal(vclock_decode(&r, &d), 0);
	assert_int_equal(d.n, 0);
	assert_int_equal(d.nd, 0);
	assert_int_equal(rd_left(&r), 0);

	for (uint64_t a = 1; a <= VCLOCK_MAX; a++)
		vclock_raise(&c, a * 0x0101010101010101ull, a * 3, a << 40);
	buf_reset(&b);
	vclock_encode(&c, &b);
	assert_int_equal(buf_err(&b), 0);
	assert_int_equal(b.len, 2 + 24 * VCLOCK_MAX + 2);
	rd_init(&r, b.data, b.len);
	assert_int_equal(vclock_decode(&r, &d), 0);
	assert_int_equal(rd_left(&r), 0);
	assert_memory_equal(&c, &d, sizeof(c));
	buf_fini(&b);
}

static void
put_raw(struct buf *b, uint16_t count, uint16_t nent,
        const struct vclock_entry *e)
{
	buf_put_u16(b, count);
	for (uint16_t i = 0; i < nent; i++) {
		buf_put_u64(b, e[i].actor);
		buf_put_u64(b, e[i].counter);
		buf_put_u64(b, e[i].ts_ms);
	}
}

/* Encode counts and raw entries and dots, bypassing the invariants of
 * vclock_raise and vclock_add_dot.  A count may claim more than the
 * entries (dots) written. */
static int
decode_raw_dots(uint16_t count, uint16_t nent, const struct vclock_entry *e,
                uint16_t dcount, uint16_t ndot, const struct vclock_entry *d)
{
	struct vclock c;
	struct buf b;
	struct rd r;
	int rc;

	buf_init(&b);
	put_raw(&b, count, nent, e);
	put_raw(&b, dcount, ndot, d);
	assert_int_equal(buf_err(&b), 0);
	rd_init(&r, b.data, b.len);
	memset(&c, 0xa5, sizeof(c));
	rc = vclock_decode(&r, &c);
	if (rc != 0) {
		/* Left empty, and the reader is spent. */
		assert_int_equal(c.n, 0);
		assert_int_equal(c.nd, 0);
		assert_true(r.bad);
	} else {
		assert_int_equal(c.n, count);
		assert_int_equal(c.nd, dcount);
		assert_int_equal(rd_left(&r), 0);
	}
	buf_fini(&b);
	return rc;
}

/* Entries only (an empty dot list). */
static int
decode_raw(uint16_t count, uint16_t nent, const struct vclock_entry *e)
{
	return decode_raw_dots(count, nent, e, 0, 0, NULL);
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

/* ---- exact dots ---- */

static void
add(struct vclock *c, uint64_t actor, uint64_t counter, uint64_t ts)
{
	struct dot d = {actor, counter};

	vclock_add_dot(c, &d, ts);
}

static bool
covers(const struct vclock *c, uint64_t actor, uint64_t counter)
{
	struct dot d = {actor, counter};

	return vclock_covers(c, &d);
}

/* Dot i of c is (actor, counter). */
static void
assert_dot(const struct vclock *c, uint32_t i, uint64_t actor,
           uint64_t counter)
{
	assert_true(i < c->nd);
	assert_int_equal(c->d[i].actor, actor);
	assert_int_equal(c->d[i].counter, counter);
}

/* c is in normal form, which is what the decoder accepts, and its
 * encoding decodes to the same clock, timestamps included. */
static void
assert_normal(const struct vclock *c)
{
	struct vclock back;
	struct buf b;
	struct rd r;

	assert_sorted(c);
	assert_true(c->nd <= VCLOCK_DOTS_MAX);
	for (uint32_t i = 0; i < c->n; i++)
		assert_true(c->e[i].counter > 0);
	for (uint32_t i = 0; i < c->nd; i++) {
		const struct vclock_entry *d = &c->d[i];
		if (i > 0)
			assert_true(c->d[i - 1].actor < d->actor ||
			            (c->d[i - 1].actor == d->actor &&
			             c->d[i - 1].counter < d->counter));
		/* Neither covered by nor next to its actor's entry. */
		assert_true(d->counter > vclock_get(c, d->actor) + 1);
	}
	buf_init(&b);
	vclock_encode(c, &b);
	assert_int_equal(buf_err(&b), 0);
	assert_int_equal(b.len, 2 + 24 * c->n + 2 + 24 * c->nd);
	rd_init(&r, b.data, b.len);
	assert_int_equal(vclock_decode(&r, &back), 0);
	assert_int_equal(rd_left(&r), 0);
	assert_true(vclock_equal(&back, c));
	assert_int_equal(back.n, c->n);
	assert_int_equal(back.nd, c->nd);
	assert_memory_equal(back.e, c->e, c->n * sizeof(c->e[0]));
	assert_memory_equal(back.d, c->d, c->nd * sizeof(c->d[0]));
	buf_fini(&b);
}

static void
test_add_dot_fold(void **state)
{
	struct vclock c;
	struct vclock before;

	(void)state;
	vclock_init(&c);
	/* An actor's first event is its entry, not a dot. */
	add(&c, 1, 1, 10);
	assert_int_equal(c.n, 1);
	assert_int_equal(c.nd, 0);
	assert_int_equal(vclock_get(&c, 1), 1);
	assert_int_equal(c.e[0].ts_ms, 10);
	/* The next one continues it. */
	add(&c, 1, 2, 20);
	assert_int_equal(c.n, 1);
	assert_int_equal(c.nd, 0);
	assert_int_equal(vclock_get(&c, 1), 2);
	assert_int_equal(c.e[0].ts_ms, 20);
	assert_normal(&c);

	/* Holes at 3 and 5: 4 and 6 stay exact, whatever the order. */
	add(&c, 1, 6, 60);
	add(&c, 1, 4, 40);
	assert_int_equal(vclock_get(&c, 1), 2);
	assert_int_equal(vclock_top(&c, 1), 6);
	assert_int_equal(c.nd, 2);
	assert_dot(&c, 0, 1, 4);
	assert_dot(&c, 1, 1, 6);
	assert_int_equal(c.d[0].ts_ms, 40);
	assert_int_equal(c.d[1].ts_ms, 60);
	assert_normal(&c);
	/* 3 fills the first hole: 3 and then 4 fold, 6 stays. */
	add(&c, 1, 3, 30);
	assert_int_equal(vclock_get(&c, 1), 4);
	assert_int_equal(c.nd, 1);
	assert_dot(&c, 0, 1, 6);
	assert_normal(&c);
	/* 5 fills the last one. */
	add(&c, 1, 5, 50);
	assert_int_equal(vclock_get(&c, 1), 6);
	assert_int_equal(vclock_top(&c, 1), 6);
	assert_int_equal(c.nd, 0);
	assert_normal(&c);

	/* A chain with no entry folds whole when its first event comes. */
	for (uint64_t k = 5; k >= 2; k--)
		add(&c, 2, k, 100 + k);
	assert_int_equal(vclock_get(&c, 2), 0);
	assert_int_equal(vclock_top(&c, 2), 5);
	assert_int_equal(c.nd, 4);
	assert_normal(&c);
	add(&c, 2, 1, 101);
	assert_int_equal(c.n, 2);
	assert_int_equal(c.nd, 0);
	assert_int_equal(vclock_get(&c, 2), 5);
	assert_int_equal(vclock_get(&c, 1), 6);
	assert_normal(&c);

	/* Nothing new: covered by an entry, an existing dot, no event. */
	add(&c, 3, 9, 90);
	before = c;
	add(&c, 1, 3, 999);
	add(&c, 1, 6, 999);
	add(&c, 3, 9, 999);
	add(&c, 4, 0, 999);
	assert_true(vclock_equal(&c, &before));
	assert_memory_equal(c.e, before.e, sizeof(c.e));
	assert_memory_equal(c.d, before.d, sizeof(c.d));
	assert_int_equal(c.nd, 1);

	/* Dots of several actors sort by actor, then counter. */
	vclock_init(&c);
	add(&c, 9, 3, 1);
	add(&c, 2, 7, 1);
	add(&c, 9, 2, 1);
	add(&c, 5, 4, 1);
	add(&c, 2, 3, 1);
	assert_int_equal(c.n, 0);
	assert_int_equal(c.nd, 5);
	assert_dot(&c, 0, 2, 3);
	assert_dot(&c, 1, 2, 7);
	assert_dot(&c, 2, 5, 4);
	assert_dot(&c, 3, 9, 2);
	assert_dot(&c, 4, 9, 3);
	assert_normal(&c);
	/* (9, 1) folds both of 9's dots; (2, 1) only reaches 2's first. */
	add(&c, 9, 1, 1);
	add(&c, 2, 1, 1);
	add(&c, 2, 2, 1);
	assert_int_equal(vclock_get(&c, 9), 3);
	assert_int_equal(vclock_get(&c, 2), 3);
	assert_int_equal(c.nd, 2);
	assert_dot(&c, 0, 2, 7);
	assert_dot(&c, 1, 5, 4);
	assert_normal(&c);
}

static void
test_raise_dots(void **state)
{
	struct vclock c;

	(void)state;
	vclock_init(&c);
	vclock_raise(&c, 1, 2, 1);
	add(&c, 1, 4, 2);
	add(&c, 1, 7, 3);
	add(&c, 1, 9, 4);
	add(&c, 2, 5, 5);
	assert_int_equal(c.nd, 4);
	/* Raising to just below a dot folds it. */
	vclock_raise(&c, 1, 3, 6);
	assert_int_equal(vclock_get(&c, 1), 4);
	assert_int_equal(c.nd, 3);
	assert_dot(&c, 0, 1, 7);
	assert_normal(&c);
	/* Raising short of the next hole leaves the dots be. */
	vclock_raise(&c, 1, 5, 7);
	assert_int_equal(vclock_get(&c, 1), 5);
	assert_int_equal(c.nd, 3);
	assert_normal(&c);
	/* Raising over a dot drops it; the one after it then folds. */
	vclock_raise(&c, 1, 8, 8);
	assert_int_equal(vclock_get(&c, 1), 9);
	assert_int_equal(c.nd, 1);
	assert_dot(&c, 0, 2, 5);
	assert_normal(&c);
	/* A raise of another actor never touches these. */
	vclock_raise(&c, 2, 3, 9);
	assert_int_equal(vclock_get(&c, 2), 3);
	assert_int_equal(c.nd, 1);
	vclock_raise(&c, 2, 4, 9);
	assert_int_equal(vclock_get(&c, 2), 5);
	assert_int_equal(c.nd, 0);
	assert_normal(&c);
}

static void
test_covers_dots(void **state)
{
	struct vclock c;

	(void)state;
	vclock_init(&c);
	vclock_raise(&c, 1, 2, 1);
	add(&c, 1, 5, 1);
	add(&c, 2, 3, 1);
	assert_normal(&c);
	/* The entry covers its range, a dot only itself. */
	assert_true(covers(&c, 1, 1));
	assert_true(covers(&c, 1, 2));
	assert_false(covers(&c, 1, 3));
	assert_false(covers(&c, 1, 4));
	assert_true(covers(&c, 1, 5));
	assert_false(covers(&c, 1, 6));
	assert_false(covers(&c, 1, UINT64_MAX));
	/* A dot without an entry: not its predecessors. */
	assert_false(covers(&c, 2, 1));
	assert_false(covers(&c, 2, 2));
	assert_true(covers(&c, 2, 3));
	assert_false(covers(&c, 2, 4));
	/* Same counter, other actor. */
	assert_false(covers(&c, 3, 5));
	assert_false(covers(&c, 3, 3));

	assert_int_equal(vclock_get(&c, 1), 2);
	assert_int_equal(vclock_get(&c, 2), 0);
	assert_int_equal(vclock_top(&c, 1), 5);
	assert_int_equal(vclock_top(&c, 2), 3);
	assert_int_equal(vclock_top(&c, 3), 0);
	assert_int_equal(vclock_top(NULL, 1), 0);
}

static void
test_descends_dots(void **state)
{
	struct vclock a;  /* 1:2, (1,4) */
	struct vclock e2; /* 1:2 */
	struct vclock e4; /* 1:4 */
	struct vclock d4; /* (1,4) */
	struct vclock d5; /* 1:2, (1,5) */
	struct vclock x;

	(void)state;
	vclock_init(&a);
	vclock_raise(&a, 1, 2, 1);
	add(&a, 1, 4, 1);
	vclock_init(&e2);
	vclock_raise(&e2, 1, 2, 1);
	vclock_init(&e4);
	vclock_raise(&e4, 1, 4, 1);
	vclock_init(&d4);
	add(&d4, 1, 4, 1);
	vclock_init(&d5);
	vclock_raise(&d5, 1, 2, 1);
	add(&d5, 1, 5, 1);

	assert_true(vclock_descends(&a, &e2));
	assert_false(vclock_descends(&e2, &a));
	/* An entry covers the dots below it; a dot is no range. */
	assert_true(vclock_descends(&e4, &a));
	assert_false(vclock_descends(&a, &e4));
	assert_true(vclock_descends(&a, &d4));
	assert_false(vclock_descends(&d4, &a));
	assert_true(vclock_descends(&e4, &d4));
	assert_false(vclock_descends(&d4, &e4));
	assert_false(vclock_descends(&d4, &e2));
	assert_false(vclock_descends(&e2, &d4));
	/* Different holes filled: concurrent. */
	assert_false(vclock_descends(&a, &d5));
	assert_false(vclock_descends(&d5, &a));
	assert_false(vclock_equal(&a, &d5));
	/* Dots count in equality; the order they came in does not. */
	assert_false(vclock_equal(&a, &e2));
	assert_false(vclock_equal(&a, &e4));
	vclock_init(&x);
	add(&x, 1, 4, 9);
	add(&x, 1, 2, 9);
	add(&x, 1, 1, 9);
	assert_true(vclock_equal(&x, &a));
	assert_true(vclock_descends(&x, &a));
	assert_true(vclock_descends(&a, &x));
	assert_true(vclock_descends(&a, &a));
	/* Dots of an actor a has no entry or dot for. */
	add(&x, 7, 3, 9);
	assert_true(vclock_descends(&x, &a));
	assert_false(vclock_descends(&a, &x));
}

static void
test_merge_dots(void **state)
{
	struct vclock a;
	struct vclock b;
	struct vclock m;
	struct vclock m2;

	(void)state;
	/* Union: both sides' dots, sorted. */
	vclock_init(&a);
	vclock_raise(&a, 1, 2, 1);
	add(&a, 1, 5, 10);
	vclock_init(&b);
	vclock_raise(&b, 1, 2, 1);
	add(&b, 1, 7, 20);
	add(&b, 2, 3, 30);
	m = a;
	vclock_merge(&m, &b);
	assert_normal(&m);
	assert_int_equal(m.n, 1);
	assert_int_equal(m.nd, 3);
	assert_dot(&m, 0, 1, 5);
	assert_dot(&m, 1, 1, 7);
	assert_dot(&m, 2, 2, 3);
	assert_true(vclock_descends(&m, &a));
	assert_true(vclock_descends(&m, &b));
	assert_false(covers(&m, 1, 3));
	assert_false(covers(&m, 1, 6));
	m2 = b;
	vclock_merge(&m2, &a);
	assert_true(vclock_equal(&m, &m2));
	assert_memory_equal(m.d, m2.d, m.nd * sizeof(m.d[0]));

	/* One side's dots continue the other's entry: they fold, in a
	 * chain, and stop at the next hole. */
	vclock_init(&a);
	vclock_raise(&a, 1, 4, 1);
	vclock_init(&b);
	add(&b, 1, 5, 2);
	add(&b, 1, 6, 3);
	add(&b, 1, 8, 4);
	m = a;
	vclock_merge(&m, &b);
	assert_normal(&m);
	assert_int_equal(vclock_get(&m, 1), 6);
	assert_int_equal(m.nd, 1);
	assert_dot(&m, 0, 1, 8);
	m2 = b;
	vclock_merge(&m2, &a);
	assert_true(vclock_equal(&m, &m2));
	/* ... the dot from a, the entry from b. */
	vclock_init(&a);
	vclock_raise(&a, 1, 2, 1);
	add(&a, 1, 4, 2);
	vclock_init(&b);
	vclock_raise(&b, 1, 3, 3);
	m = a;
	vclock_merge(&m, &b);
	assert_normal(&m);
	assert_int_equal(vclock_get(&m, 1), 4);
	assert_int_equal(m.nd, 0);
	/* Dots the other side's entry covers go. */
	vclock_init(&b);
	vclock_raise(&b, 1, 9, 3);
	m = a;
	vclock_merge(&m, &b);
	assert_normal(&m);
	assert_int_equal(vclock_get(&m, 1), 9);
	assert_int_equal(m.nd, 0);
	assert_true(vclock_equal(&m, &b));

	/* The same dot on both sides is kept once, with the later ts. */
	vclock_init(&a);
	add(&a, 1, 5, 10);
	add(&a, 3, 2, 10);
	vclock_init(&b);
	add(&b, 1, 5, 40);
	add(&b, 2, 2, 10);
	m = a;
	vclock_merge(&m, &b);
	assert_normal(&m);
	assert_int_equal(m.nd, 3);
	assert_dot(&m, 0, 1, 5);
	assert_int_equal(m.d[0].ts_ms, 40);
	assert_dot(&m, 1, 2, 2);
	assert_dot(&m, 2, 3, 2);
	m2 = b;
	vclock_merge(&m2, &a);
	assert_memory_equal(m.d, m2.d, m.nd * sizeof(m.d[0]));
	/* Idempotent. */
	m2 = m;
	vclock_merge(&m2, &m);
	vclock_merge(&m2, &a);
	assert_int_equal(m2.nd, m.nd);
	assert_memory_equal(m.d, m2.d, m.nd * sizeof(m.d[0]));
}

/* Does m cover only what a or b covers (actors 1..na, counters
 * 1..nc)? */
static void
assert_no_more(const struct vclock *m, const struct vclock *a,
               const struct vclock *b, uint64_t na, uint64_t nc)
{
	for (uint64_t x = 1; x <= na; x++) {
		for (uint64_t k = 1; k <= nc; k++) {
			if (covers(m, x, k))
				assert_true(covers(a, x, k) ||
				            covers(b, x, k));
		}
	}
}

static void
test_truncate_dots(void **state)
{
	struct vclock c;
	struct vclock before;
	struct vclock a;
	struct vclock b;
	struct vclock m;
	struct vclock m2;

	(void)state;
	/* Eight holes after 1:1, at 3, 5, ..., 17; (1, 9) is the oldest. */
	vclock_init(&c);
	vclock_raise(&c, 1, 1, 1000);
	for (uint64_t k = 3; k <= 17; k += 2)
		add(&c, 1, k, k == 9 ? 5 : 1000 + k);
	assert_int_equal(c.nd, VCLOCK_DOTS_MAX);
	assert_normal(&c);
	/* A ninth dot: the oldest goes. */
	add(&c, 1, 19, 2000);
	assert_int_equal(c.nd, VCLOCK_DOTS_MAX);
	assert_normal(&c);
	assert_false(covers(&c, 1, 9));
	for (uint64_t k = 3; k <= 19; k += 2)
		assert_int_equal(covers(&c, 1, k), k != 9);
	assert_int_equal(vclock_get(&c, 1), 1);
	/* A new dot older than all others is the one dropped. */
	before = c;
	add(&c, 1, 21, 1);
	assert_false(covers(&c, 1, 21));
	assert_true(vclock_equal(&c, &before));
	assert_memory_equal(c.d, before.d, sizeof(c.d));
	/* Filling a hole frees a slot; the dropped dot stays forgotten. */
	add(&c, 1, 2, 3000);
	assert_int_equal(vclock_get(&c, 1), 3);
	assert_int_equal(c.nd, VCLOCK_DOTS_MAX - 1);
	assert_false(covers(&c, 1, 9));
	assert_normal(&c);

	/* Ties on ts: the first in order (smallest actor) goes. */
	vclock_init(&c);
	for (uint64_t x = 1; x <= VCLOCK_DOTS_MAX; x++)
		add(&c, 10 * x, 5, 7);
	add(&c, 5, 5, 7);
	assert_int_equal(c.nd, VCLOCK_DOTS_MAX);
	assert_false(covers(&c, 5, 5));
	assert_true(covers(&c, 10, 5));
	assert_normal(&c);

	/* Merge: 16 dots together, the 8 newest stay; ts = 1000 - counter
	 * on a, one less on b. */
	vclock_init(&a);
	vclock_init(&b);
	for (uint64_t k = 2; k <= 16; k += 2) {
		add(&a, 1, k, 1000 - k);
		add(&b, 2, k, 1000 - k - 1);
	}
	vclock_raise(&a, 3, 2, 1);
	vclock_raise(&b, 3, 5, 1);
	m = a;
	vclock_merge(&m, &b);
	assert_normal(&m);
	assert_int_equal(m.nd, VCLOCK_DOTS_MAX);
	for (uint64_t k = 2; k <= 16; k += 2) {
		assert_int_equal(covers(&m, 1, k), k <= 8);
		assert_int_equal(covers(&m, 2, k), k <= 8);
	}
	assert_int_equal(vclock_get(&m, 3), 5);
	assert_no_more(&m, &a, &b, 4, 20);
	m2 = b;
	vclock_merge(&m2, &a);
	assert_true(vclock_equal(&m, &m2));
	assert_memory_equal(m.d, m2.d, sizeof(m.d));

	/* A full entry list drops the oldest entry, and that actor's dots
	 * stay (still in normal form without the entry). */
	vclock_init(&c);
	for (uint64_t x = 1; x <= VCLOCK_MAX; x++)
		vclock_raise(&c, x, 3, x == 5 ? 1 : 100 + x);
	add(&c, 5, 7, 200);
	add(&c, 4, 9, 200);
	before = c;
	vclock_raise(&c, 99, 1, 500);
	assert_int_equal(c.n, VCLOCK_MAX);
	assert_int_equal(c.nd, 2);
	assert_int_equal(vclock_get(&c, 5), 0);
	assert_int_equal(vclock_top(&c, 5), 7);
	assert_true(covers(&c, 5, 7));
	assert_false(covers(&c, 5, 3));
	assert_false(covers(&c, 5, 1));
	assert_true(covers(&c, 4, 9));
	assert_true(covers(&c, 99, 1));
	assert_normal(&c);
	vclock_init(&m);
	vclock_raise(&m, 99, 1, 500);
	assert_no_more(&c, &before, &m, 100, 12);
	/* A dot folded into a new entry can be the entry dropped. */
	before = c;
	add(&c, 50, 1, 2);
	assert_int_equal(vclock_get(&c, 50), 0);
	assert_false(covers(&c, 50, 1));
	assert_true(vclock_equal(&c, &before));
	assert_normal(&c);
}

static void
test_codec_dots(void **state)
{
	struct vclock c;
	struct vclock d;
	struct buf b;
	struct rd r;

	(void)state;
	buf_init(&b);
	/* Entries and dots, both lists full: the largest clock. */
	vclock_init(&c);
	for (uint64_t a = 1; a <= VCLOCK_MAX; a++)
		vclock_raise(&c, a * 0x0101010101010101ull, a * 3, a << 40);
	for (uint64_t i = 0; i < VCLOCK_DOTS_MAX; i++)
		add(&c, (i % 3 + 1) * 0x0101010101010101ull, 10 + 2 * i,
		    (i + 1) << 41);
	assert_int_equal(c.n, VCLOCK_MAX);
	assert_int_equal(c.nd, VCLOCK_DOTS_MAX);
	vclock_encode(&c, &b);
	assert_int_equal(buf_err(&b), 0);
	assert_int_equal(b.len,
	                 2 + 24 * VCLOCK_MAX + 2 + 24 * VCLOCK_DOTS_MAX);
	rd_init(&r, b.data, b.len);
	assert_int_equal(vclock_decode(&r, &d), 0);
	assert_int_equal(rd_left(&r), 0);
	assert_true(vclock_equal(&c, &d));
	assert_memory_equal(c.e, d.e, sizeof(c.e));
	assert_memory_equal(c.d, d.d, sizeof(c.d));
	/* Every prefix is refused, the dots' part too. */
	for (size_t len = 0; len < b.len; len++) {
		rd_init(&r, b.data, len);
		assert_int_equal(vclock_decode(&r, &d), DYN_EBADMSG);
		assert_int_equal(d.n, 0);
		assert_int_equal(d.nd, 0);
	}

	/* Dots only, the layout spelled out: no entries, then one dot. */
	vclock_init(&c);
	add(&c, 0x42, 3, 0x77);
	buf_reset(&b);
	vclock_encode(&c, &b);
	static const uint8_t want[] = {
	    0, 0,                                              /* entries */
	    0, 1,                                              /* dots */
	    0, 0, 0, 0, 0, 0, 0, 0x42, 0, 0, 0, 0, 0, 0, 0, 3, /* (0x42, 3) */
	    0, 0, 0, 0, 0, 0, 0, 0x77,                         /* ts */
	};
	assert_int_equal(b.len, sizeof(want));
	assert_memory_equal(b.data, want, sizeof(want));
	rd_init(&r, b.data, b.len);
	assert_int_equal(vclock_decode(&r, &d), 0);
	assert_int_equal(d.n, 0);
	assert_int_equal(d.nd, 1);
	assert_true(covers(&d, 0x42, 3));
	assert_false(covers(&d, 0x42, 2));
	buf_fini(&b);
}

/* The entries the dots of test_decode_reject_dots go with: 1:4 and 3:2,
 * none for actor 2. */
static const struct vclock_entry reject_e[] = {{1, 4, 0}, {3, 2, 0}};

static int
decode_dots(const struct vclock_entry *d, size_t nd)
{
	return decode_raw_dots(2, 2, reject_e, (uint16_t)nd, (uint16_t)nd, d);
}

/* Decode reject_e and the dots given as {actor, counter, ts}, ... */
#define DOTS(...)                                                             \
	decode_dots((const struct vclock_entry[]){__VA_ARGS__},               \
	            sizeof((const struct vclock_entry[]){__VA_ARGS__}) /      \
	                sizeof(struct vclock_entry))

static void
test_decode_reject_dots(void **state)
{
	const struct vclock_entry *e = reject_e;
	struct vclock_entry d[VCLOCK_DOTS_MAX + 1];
	struct buf b;
	struct rd r;
	struct vclock c;

	(void)state;

	/* In normal form: accepted. */
	assert_int_equal(DOTS({1, 6, 0}, {1, 9, 0}, {2, 2, 0}, {3, 4, 0}), 0);
	assert_int_equal(DOTS({2, 2, 5}), 0);
	assert_int_equal(DOTS({7, 1000, 5}), 0);
	assert_int_equal(DOTS({1, UINT64_MAX, 5}), 0);
	/* Covered by its entry. */
	assert_int_equal(DOTS({1, 3, 0}), DYN_EBADMSG);
	assert_int_equal(DOTS({1, 4, 0}), DYN_EBADMSG);
	assert_int_equal(DOTS({3, 1, 0}), DYN_EBADMSG);
	/* Next to its entry (would have been folded), also the implicit
	 * entry 0 of an actor without one. */
	assert_int_equal(DOTS({1, 5, 0}), DYN_EBADMSG);
	assert_int_equal(DOTS({3, 3, 0}), DYN_EBADMSG);
	assert_int_equal(DOTS({2, 1, 0}), DYN_EBADMSG);
	assert_int_equal(DOTS({1, 6, 0}, {3, 3, 0}), DYN_EBADMSG);
	/* Covered by an entry at the largest counter (no wrap-around in
	 * "next to the entry"). */
	static const struct vclock_entry top[] = {{1, UINT64_MAX, 0}};
	static const struct vclock_entry dtop[] = {{1, 5, 0},
	                                           {1, UINT64_MAX, 0}};
	assert_int_equal(decode_raw_dots(1, 1, top, 0, 0, NULL), 0);
	assert_int_equal(decode_raw_dots(1, 1, top, 1, 1, &dtop[0]),
	                 DYN_EBADMSG);
	assert_int_equal(decode_raw_dots(1, 1, top, 1, 1, &dtop[1]),
	                 DYN_EBADMSG);
	/* Unsorted: by counter, by actor. */
	assert_int_equal(DOTS({1, 9, 0}, {1, 6, 0}), DYN_EBADMSG);
	assert_int_equal(DOTS({2, 2, 0}, {1, 6, 0}), DYN_EBADMSG);
	assert_int_equal(DOTS({1, 6, 0}, {2, 3, 0}, {2, 2, 0}), DYN_EBADMSG);
	/* Duplicate, even with different timestamps. */
	assert_int_equal(DOTS({1, 6, 0}, {1, 6, 0}), DYN_EBADMSG);
	assert_int_equal(DOTS({1, 6, 1}, {1, 6, 2}), DYN_EBADMSG);
	assert_int_equal(DOTS({2, 2, 0}, {2, 3, 0}, {2, 3, 0}), DYN_EBADMSG);
	/* Zero counter. */
	assert_int_equal(DOTS({7, 0, 0}), DYN_EBADMSG);
	assert_int_equal(DOTS({1, 6, 0}, {7, 0, 0}), DYN_EBADMSG);

	/* Counts: at the bound, over it, far over it, over what follows. */
	for (uint64_t i = 0; i <= VCLOCK_DOTS_MAX; i++)
		d[i] = (struct vclock_entry){1, 6 + 2 * i, 0};
	assert_int_equal(
	    decode_raw_dots(2, 2, e, VCLOCK_DOTS_MAX, VCLOCK_DOTS_MAX, d), 0);
	assert_int_equal(decode_raw_dots(2, 2, e, VCLOCK_DOTS_MAX + 1,
	                                 VCLOCK_DOTS_MAX + 1, d),
	                 DYN_EBADMSG);
	assert_int_equal(
	    decode_raw_dots(2, 2, e, UINT16_MAX, VCLOCK_DOTS_MAX + 1, d),
	    DYN_EBADMSG);
	assert_int_equal(decode_raw_dots(2, 2, e, 3, 2, d), DYN_EBADMSG);
	/* A bad entry list is refused, good dots or not. */
	static const struct vclock_entry unsorted[] = {{3, 2, 0}, {1, 4, 0}};
	assert_int_equal(decode_raw_dots(2, 2, unsorted, 1, 1, d),
	                 DYN_EBADMSG);
	assert_int_equal(decode_raw_dots(2, 2, unsorted, 0, 0, d),
	                 DYN_EBADMSG);

	/* The old encoding (entries only, no dot count) is truncated. */
	buf_init(&b);
	put_raw(&b, 2, 2, e);
	rd_init(&r, b.data, b.len);
	assert_int_equal(vclock_decode(&r, &c), DYN_EBADMSG);
	assert_int_equal(c.n, 0);
	assert_true(r.bad);
	buf_fini(&b);
}

/*
 * Random raises, dots and merges on a few clocks, each checked against the
 * set of events it should hold: exactly that set while it fits the bounds,
 * a subset once something had to be dropped (never an event it was not
 * given).  descends, equal and top must agree with the sets.
 */
#define RND_CLOCKS   6
#define RND_ACTORS   12 /* more than VCLOCK_MAX: entries get dropped too */
#define RND_COUNTERS 40

struct rnd_set {
	uint64_t ev[RND_ACTORS + 1]; /* bit k: event (actor, k) */
};

static uint64_t
rnd_next(uint64_t *s)
{
	/* xorshift64* */
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return *s * 0x2545F4914F6CDD1Dull;
}

static void
rnd_cov(const struct vclock *c, struct rnd_set *out)
{
	memset(out, 0, sizeof(*out));
	for (uint64_t x = 1; x <= RND_ACTORS; x++) {
		for (uint64_t k = 1; k <= RND_COUNTERS; k++) {
			if (covers(c, x, k))
				out->ev[x] |= 1ull << k;
		}
		/* Nothing past the counters handed out. */
		assert_true(vclock_top(c, x) <= RND_COUNTERS);
	}
}

/* Entries and dots the normal form of s needs. */
static void
rnd_size(const struct rnd_set *s, uint32_t *n, uint32_t *nd)
{
	*n = *nd = 0;
	for (uint64_t x = 1; x <= RND_ACTORS; x++) {
		uint64_t k = 1;
		while (k <= RND_COUNTERS && (s->ev[x] >> k & 1))
			k++;
		if (k > 1)
			(*n)++;
		for (; k <= RND_COUNTERS; k++)
			*nd += (s->ev[x] >> k) & 1;
	}
}

static bool
rnd_subset(const struct rnd_set *a, const struct rnd_set *b)
{
	for (uint64_t x = 1; x <= RND_ACTORS; x++) {
		if ((a->ev[x] & ~b->ev[x]) != 0)
			return false;
	}
	return true;
}

static void
rnd_check(const struct vclock *c, const struct rnd_set *want)
{
	struct rnd_set got;
	uint32_t n;
	uint32_t nd;

	assert_normal(c);
	rnd_cov(c, &got);
	assert_true(rnd_subset(&got, want));
	rnd_size(want, &n, &nd);
	if (n <= VCLOCK_MAX && nd <= VCLOCK_DOTS_MAX)
		assert_memory_equal(&got, want, sizeof(got));
	for (uint64_t x = 1; x <= RND_ACTORS; x++) {
		uint64_t top = 0;
		for (uint64_t k = 1; k <= RND_COUNTERS; k++) {
			if (got.ev[x] >> k & 1)
				top = k;
		}
		assert_int_equal(vclock_top(c, x), top);
	}
}

static void
test_random_dots(void **state)
{
	struct vclock c[RND_CLOCKS];
	uint64_t rng = 0x9E3779B97F4A7C15ull;
	uint64_t now = 1000;

	(void)state;
	for (int i = 0; i < RND_CLOCKS; i++)
		vclock_init(&c[i]);
	for (int step = 0; step < 20000; step++) {
		uint32_t i = (uint32_t)(rnd_next(&rng) % RND_CLOCKS);
		uint32_t op = (uint32_t)(rnd_next(&rng) % 10);
		uint64_t x = 1 + rnd_next(&rng) % RND_ACTORS;
		uint64_t k = 1 + rnd_next(&rng) % RND_COUNTERS;
		/* Mostly advancing time, sometimes a skewed clock. */
		uint64_t ts =
		    rnd_next(&rng) % 8 == 0 ? rnd_next(&rng) % now : now++;
		struct rnd_set want;
		struct rnd_set other;

		/* Now and then start a clock over, so most stay in bounds. */
		if (rnd_next(&rng) % 64 == 0)
			vclock_init(&c[i]);
		rnd_cov(&c[i], &want);
		if (op < 2) {
			k = 1 + k / 4;
			vclock_raise(&c[i], x, k, ts);
			want.ev[x] |= (2ull << k) - 2; /* bits 1..k */
		} else if (op < 7) {
			add(&c[i], x, k, ts);
			want.ev[x] |= 1ull << k;
		} else {
			uint32_t j = (uint32_t)(rnd_next(&rng) % RND_CLOCKS);
			struct vclock m2 = c[j];
			rnd_cov(&c[j], &other);
			for (uint64_t y = 1; y <= RND_ACTORS; y++)
				want.ev[y] |= other.ev[y];
			/* Both orders keep the same history. */
			vclock_merge(&m2, &c[i]);
			vclock_merge(&c[i], &c[j]);
			assert_true(vclock_equal(&c[i], &m2));
			assert_memory_equal(c[i].d, m2.d,
			                    c[i].nd * sizeof(m2.d[0]));
		}
		rnd_check(&c[i], &want);

		/* descends and equal against the sets. */
		uint32_t j = (uint32_t)(rnd_next(&rng) % RND_CLOCKS);
		struct rnd_set si;
		struct rnd_set sj;
		rnd_cov(&c[i], &si);
		rnd_cov(&c[j], &sj);
		assert_int_equal(vclock_descends(&c[i], &c[j]),
		                 rnd_subset(&sj, &si));
		assert_int_equal(vclock_descends(&c[j], &c[i]),
		                 rnd_subset(&si, &sj));
		assert_int_equal(vclock_equal(&c[i], &c[j]),
		                 rnd_subset(&si, &sj) && rnd_subset(&sj, &si));
	}
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
	    cmocka_unit_test(test_add_dot_fold),
	    cmocka_unit_test(test_raise_dots),
	    cmocka_unit_test(test_covers_dots),
	    cmocka_unit_test(test_descends_dots),
	    cmocka_unit_test(test_merge_dots),
	    cmocka_unit_test(test_truncate_dots),
	    cmocka_unit_test(test_codec_dots),
	    cmocka_unit_test(test_decode_reject_dots),
	    cmocka_unit_test(test_random_dots),
	};

	return cmocka_run_group_tests(tests, testmem_setup, testmem_teardown);
}
