/* Unit tests for common/log's limiter (log_limited) and common/refusal. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "buf.h"
#include "log.h"
#include "refusal.h"
#include "wire.h"

static void
pause_ms(int ms)
{
	struct timespec ts = {.tv_sec = 0, .tv_nsec = (long)ms * 1000000};
	nanosleep(&ts, NULL);
}

static void
test_one_line_per_key(void **state)
{
	(void)state;
	struct log_limit l;
	log_limit_init(&l, 60000);
	assert_true(log_limited(&l, "a", LOG_LVL_WARN, "first from %s", "a"));
	assert_false(log_limited(&l, "a", LOG_LVL_WARN, "again"));
	assert_false(log_limited(&l, "a", LOG_LVL_WARN, "again"));
	/* Another key has a line of its own. */
	assert_true(log_limited(&l, "b", LOG_LVL_WARN, "first from b"));
	assert_int_equal(l.slot[0].held + l.slot[1].held, 2);
	log_limit_fini(&l);
}

static void
test_interval_ends(void **state)
{
	(void)state;
	struct log_limit l;
	log_limit_init(&l, 20);
	assert_true(log_limited(&l, "a", LOG_LVL_WARN, "one"));
	assert_false(log_limited(&l, "a", LOG_LVL_WARN, "held"));
	pause_ms(40);
	/* The next line passes and owes the held one (says so). */
	assert_true(log_limited(&l, "a", LOG_LVL_WARN, "two"));
	for (unsigned i = 0; i < LOG_LIMIT_KEYS; i++)
		assert_int_equal(l.slot[i].held, 0);
	log_limit_fini(&l);
}

static void
test_many_keys_are_bounded(void **state)
{
	(void)state;
	struct log_limit l;
	log_limit_init(&l, 60000);
	unsigned written = 0;
	char key[32];
	for (unsigned i = 0; i < 10 * LOG_LIMIT_KEYS; i++) {
		snprintf(key, sizeof(key), "10.0.%u.%u", i / 256, i % 256);
		written += log_limited(&l, key, LOG_LVL_WARN, "from %s", key);
	}
	/* A flood from many addresses costs one line per slot. */
	assert_int_equal(written, LOG_LIMIT_KEYS);
	assert_int_equal(l.held_other, 9 * LOG_LIMIT_KEYS);
	log_limit_fini(&l);
}

static void
test_below_level(void **state)
{
	(void)state;
	struct log_limit l;
	log_limit_init(&l, 0);
	assert_int_equal(l.interval_ms, LOG_LIMIT_MS);
	assert_false(log_limited(&l, "a", LOG_LVL_DEBUG, "not shown"));
	assert_true(log_limited(&l, "a", LOG_LVL_WARN, "shown"));
	log_limit_fini(&l);
}

static void
test_refusal(void **state)
{
	(void)state;
	uint8_t no[REFUSAL_LEN];
	refusal_encode(no);
	assert_true(refusal_is(no, sizeof(no)));
	assert_false(refusal_is(no, sizeof(no) - 1));
	no[4] ^= 1;
	assert_false(refusal_is(no, sizeof(no)));

	/* No wire message is one: they are longer and start otherwise. */
	struct buf b;
	struct auth_key master;
	struct auth_keys k;
	memset(&master, 7, sizeof(master));
	assert_int_equal(auth_keys_from_master(&master, AUTH_NODE, &k), 0);
	buf_init(&b);
	wire_begin(&b, WIRE_ERROR, 0, 1);
	assert_int_equal(wire_seal(&b, &k), 0);
	assert_true(b.len > REFUSAL_LEN);
	assert_false(refusal_is(b.data, b.len));
	assert_false(refusal_is(b.data, REFUSAL_LEN));
	buf_fini(&b);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_one_line_per_key),
	    cmocka_unit_test(test_interval_ends),
	    cmocka_unit_test(test_many_keys_are_bounded),
	    cmocka_unit_test(test_below_level),
	    cmocka_unit_test(test_refusal),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
