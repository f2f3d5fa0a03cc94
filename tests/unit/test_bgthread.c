/*
 * Unit tests for common/bgthread (and the clock it sleeps on, common/mono):
 * rounds come at the pace a round asks for, the first after first_ms; a
 * stop wakes a sleeping thread at once and waits for a round under way; a
 * round's -1 ends the thread; stop is fine on a thread never started and
 * twice.  Timing bounds are loose (a loaded 2-core CI machine).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "bgthread.h"
#include "mono.h"

struct counter {
	struct bgthread t;
	atomic_int rounds;
	int64_t sleep_ms;   /* what each round returns */
	int last;           /* the round that returns -1 (0: none) */
	int busy_ms;        /* each round takes this long */
	atomic_bool saw_stop; /* a round saw bgthread_stopping */
	uint64_t first_at;  /* mono_ms of the first round */
};

static void
pause_ms(int ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000};
	nanosleep(&ts, NULL);
}

static int64_t
count_round(void *arg)
{
	struct counter *c = arg;
	int n = atomic_fetch_add(&c->rounds, 1) + 1;
	if (n == 1)
		c->first_at = mono_ms();
	for (int i = 0; i < c->busy_ms / 10; i++) {
		pause_ms(10);
		if (bgthread_stopping(&c->t))
			atomic_store(&c->saw_stop, true);
	}
	return c->last && n >= c->last ? -1 : c->sleep_ms;
}

static void
test_mono(void **state)
{
	(void)state;
	uint64_t a = mono_ms(), ua = mono_us(), na = mono_ns();
	pause_ms(20);
	uint64_t b = mono_ms(), ub = mono_us(), nb = mono_ns();
	assert_true(b - a >= 19 && b - a < 2000);
	assert_true(ub - ua >= 19000);
	assert_true(nb - na >= 19000000);
	/* One clock: the units agree. */
	assert_true(mono_us() / 1000 >= b && mono_ns() / 1000000 >= b);

	struct timespec dl, now;
	mono_deadline(&dl, 1500);
	clock_gettime(CLOCK_MONOTONIC, &now);
	long long d = (long long)(dl.tv_sec - now.tv_sec) * 1000 +
	    (dl.tv_nsec - now.tv_nsec) / 1000000;
	assert_true(d > 1400 && d <= 1500);
	assert_true(dl.tv_nsec >= 0 && dl.tv_nsec < 1000000000);
}

static void
test_pace(void **state)
{
	(void)state;
	struct counter c = {.sleep_ms = 30};
	uint64_t t0 = mono_ms();
	assert_int_equal(bgthread_start(&c.t, 0, count_round, &c), 0);
	pause_ms(400);
	bgthread_stop(&c.t);
	int n = atomic_load(&c.rounds);
	/* About 400 / 30 rounds; the first at once. */
	assert_true(n >= 3 && n <= 15);
	assert_true(c.first_at - t0 < 200);
}

static void
test_first_delay(void **state)
{
	(void)state;
	struct counter c = {.sleep_ms = 10000};
	uint64_t t0 = mono_ms();
	assert_int_equal(bgthread_start(&c.t, 150, count_round, &c), 0);
	pause_ms(50);
	assert_int_equal(atomic_load(&c.rounds), 0);
	for (int i = 0; i < 200 && atomic_load(&c.rounds) == 0; i++)
		pause_ms(10);
	assert_int_equal(atomic_load(&c.rounds), 1);
	assert_true(c.first_at - t0 >= 149);
	bgthread_stop(&c.t);
}

/* A thread asleep for a minute stops at once. */
static void
test_stop_wakes(void **state)
{
	(void)state;
	struct counter c = {.sleep_ms = 60000};
	assert_int_equal(bgthread_start(&c.t, 0, count_round, &c), 0);
	for (int i = 0; i < 200 && atomic_load(&c.rounds) == 0; i++)
		pause_ms(10);
	pause_ms(20);
	uint64_t t0 = mono_ms();
	bgthread_stop(&c.t);
	assert_true(mono_ms() - t0 < 100);
	assert_int_equal(atomic_load(&c.rounds), 1);
	bgthread_stop(&c.t); /* twice: nothing */

	/* Asleep before its first round, too: no round at all. */
	struct counter d = {.sleep_ms = 10};
	assert_int_equal(bgthread_start(&d.t, 60000, count_round, &d), 0);
	t0 = mono_ms();
	bgthread_stop(&d.t);
	assert_true(mono_ms() - t0 < 100);
	assert_int_equal(atomic_load(&d.rounds), 0);
}

/* A round under way finishes, and can see the stop coming. */
static void
test_stop_waits_round(void **state)
{
	(void)state;
	struct counter c = {.sleep_ms = 0, .busy_ms = 200};
	assert_int_equal(bgthread_start(&c.t, 0, count_round, &c), 0);
	for (int i = 0; i < 200 && atomic_load(&c.rounds) == 0; i++)
		pause_ms(5);
	bgthread_stop(&c.t);
	assert_true(atomic_load(&c.saw_stop));
	assert_int_equal(atomic_load(&c.rounds), 1);
}

static void
test_round_ends(void **state)
{
	(void)state;
	struct counter c = {.sleep_ms = 5, .last = 3};
	assert_int_equal(bgthread_start(&c.t, 0, count_round, &c), 0);
	pause_ms(200);
	assert_int_equal(atomic_load(&c.rounds), 3);
	bgthread_stop(&c.t); /* joins the thread that ended */
	assert_int_equal(atomic_load(&c.rounds), 3);

	struct bgthread never;
	memset(&never, 0, sizeof(never));
	bgthread_stop(&never);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_mono),
		cmocka_unit_test(test_pace),
		cmocka_unit_test(test_first_delay),
		cmocka_unit_test(test_stop_wakes),
		cmocka_unit_test(test_stop_waits_round),
		cmocka_unit_test(test_round_ends),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
