/* Unit tests for common/replay: the anti-replay window and its bounds. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "err.h"
#include "mem.h"
#include "replay.h"
#include "testmem.h"

#define WIN 1000 /* ms */
#define NOW 1000000

/* Each test makes its own table: cmocka checks a test's allocations on
 * their own, so one made in a setup would count as a leak. */
static struct replay *
table(void)
{
	struct replay *r;
	mem_set_allocator(&testmem_checked);
	assert_int_equal(replay_new(WIN, 4, &r), 0);
	return r;
}

static void
test_once(void **state)
{
	struct replay *r = table();
	(void)state;
	assert_int_equal(replay_check(r, 7, 1, NOW, NOW), 0);
	assert_int_equal(replay_check(r, 7, 1, NOW, NOW), DYN_EREPLAY);
	assert_int_equal(replay_check(r, 7, 2, NOW, NOW), 0);
	/* Another sender's sequence numbers are its own. */
	assert_int_equal(replay_check(r, 8, 1, NOW, NOW), 0);
	assert_int_equal(replay_check(r, 8, 2, NOW, NOW), 0);
	assert_int_equal(replay_check(r, 8, 2, NOW, NOW), DYN_EREPLAY);
	assert_int_equal(replay_senders(r), 2);
	replay_free(r);
}

/* Messages arrive out of order (threads seal, then send): any order
 * within the window is fine, each once. */
static void
test_reorder(void **state)
{
	struct replay *r = table();
	(void)state;
	const uint64_t start = 5000;
	assert_int_equal(replay_check(r, 7, start, NOW, NOW), 0);
	for (uint64_t s = start - 1; s > start - REPLAY_BITS; s--)
		assert_int_equal(replay_check(r, 7, s, NOW, NOW), 0);
	for (uint64_t s = start - 1; s > start - REPLAY_BITS; s--)
		assert_int_equal(replay_check(r, 7, s, NOW, NOW), DYN_EREPLAY);
	assert_int_equal(replay_check(r, 7, start - REPLAY_BITS, NOW, NOW),
	    DYN_EREPLAY); /* too far behind */
	/* A jump ahead forgets the bits it passes, but what it leaves
	 * behind the window is refused. */
	uint64_t top = start + 3 * REPLAY_BITS;
	assert_int_equal(replay_check(r, 7, top, NOW, NOW), 0);
	assert_int_equal(replay_check(r, 7, start, NOW, NOW), DYN_EREPLAY);
	assert_int_equal(replay_check(r, 7, top - REPLAY_BITS, NOW, NOW),
	    DYN_EREPLAY);
	assert_int_equal(replay_check(r, 7, top - REPLAY_BITS + 1, NOW, NOW),
	    0);
	/* A step of one clears exactly the bit it reuses. */
	assert_int_equal(replay_check(r, 7, top + 1, NOW, NOW), 0);
	assert_int_equal(replay_check(r, 7, top - 1, NOW, NOW), 0);
	assert_int_equal(replay_check(r, 7, top - 1, NOW, NOW), DYN_EREPLAY);
	replay_free(r);
}

static void
test_time_window(void **state)
{
	struct replay *r = table();
	(void)state;
	assert_int_equal(replay_check(r, 7, 1, NOW - WIN - 1, NOW),
	    DYN_ESTALE);
	assert_int_equal(replay_check(r, 7, 2, NOW + WIN + 1, NOW),
	    DYN_ESTALE);
	assert_int_equal(replay_check(r, 7, 3, NOW - WIN, NOW), 0);
	assert_int_equal(replay_check(r, 7, 4, NOW + WIN, NOW), 0);
	/* A stale message is not recorded: the sequence stays free. */
	assert_int_equal(replay_check(r, 7, 1, NOW, NOW), 0);
	replay_free(r);
}

/* A sender is forgotten once its newest message is out of the window,
 * and a replay of its messages is then stale; the table is bounded. */
static void
test_forget_and_bound(void **state)
{
	struct replay *r = table();
	(void)state;
	for (uint64_t id = 1; id <= 4; id++)
		assert_int_equal(replay_check(r, id, 1, NOW, NOW), 0);
	assert_int_equal(replay_senders(r), 4);
	assert_int_equal(replay_check(r, 5, 1, NOW, NOW), -EBUSY);
	/* Sender 1 goes on; the others fall silent. */
	assert_int_equal(replay_check(r, 1, 2, NOW + WIN, NOW + WIN), 0);
	uint64_t later = NOW + WIN + 1;
	assert_int_equal(replay_check(r, 5, 1, later, later), 0);
	assert_int_equal(replay_senders(r), 2);
	/* A replay of a forgotten sender's message: stale by its time. */
	assert_int_equal(replay_check(r, 2, 1, NOW, later), DYN_ESTALE);
	assert_int_equal(replay_check(r, 1, 2, NOW + WIN, later),
	    DYN_EREPLAY);
	replay_free(r);
}

int
main(void)
{
#define T(name) cmocka_unit_test(name)
	const struct CMUnitTest tests[] = {
	    T(test_once),
	    T(test_reorder),
	    T(test_time_window),
	    T(test_forget_and_bound),
	};
#undef T
	return cmocka_run_group_tests(tests, NULL, NULL);
}
