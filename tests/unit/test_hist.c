/*
 * Unit tests of node/hist: bucket edges, the cumulative snapshot, values
 * past the last bound, and adds from many threads at once (hist takes no
 * lock and allocates nothing).
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "hist.h"

static const uint64_t bounds[] = {1, 10, 100};

static void
test_edges(void **state)
{
	struct hist h;
	struct hist_snap s;

	(void)state;
	hist_init(&h, bounds, 3);
	hist_read(&h, &s);
	assert_int_equal(s.count, 0);
	assert_int_equal(s.cum[3], 0);
	/* A value on a bound falls in that bound's bucket (le: <=). */
	hist_add(&h, 0);
	hist_add(&h, 1);
	hist_add(&h, 2);
	hist_add(&h, 10);
	hist_add(&h, 100);
	hist_add(&h, 101); /* over the last bound: +Inf only */
	hist_add(&h, UINT32_MAX);
	hist_read(&h, &s);
	assert_int_equal(s.nbounds, 3);
	assert_ptr_equal(s.bounds, bounds);
	assert_int_equal(s.cum[0], 2); /* <= 1 */
	assert_int_equal(s.cum[1], 4); /* <= 10 */
	assert_int_equal(s.cum[2], 5); /* <= 100 */
	assert_int_equal(s.cum[3], 7); /* +Inf */
	assert_int_equal(s.count, 7);
	assert_int_equal(s.sum, (uint64_t)UINT32_MAX + 0 + 1 + 2 + 10 + 100 + 101);
}

static void
test_no_bounds(void **state)
{
	struct hist h;
	struct hist_snap s;

	(void)state;
	hist_init(&h, bounds, 0);
	hist_add(&h, 5);
	hist_read(&h, &s);
	assert_int_equal(s.count, 1);
	assert_int_equal(s.cum[0], 1);
	/* More bounds than fit: cut to HIST_BOUNDS_MAX. */
	static const uint64_t many[HIST_BOUNDS_MAX + 3] = {0};
	hist_init(&h, many, HIST_BOUNDS_MAX + 3);
	assert_int_equal(h.nbounds, HIST_BOUNDS_MAX);
}

#define THREADS 4
#define ADDS    100000

static void *
adder(void *arg)
{
	struct hist *h = arg;
	for (uint64_t i = 0; i < ADDS; i++)
		hist_add(h, i % 200);
	return NULL;
}

static void
test_threads(void **state)
{
	struct hist h;
	struct hist_snap s;
	pthread_t t[THREADS];

	(void)state;
	hist_init(&h, bounds, 3);
	for (int i = 0; i < THREADS; i++)
		assert_int_equal(pthread_create(&t[i], NULL, adder, &h), 0);
	/* Snapshots taken meanwhile are cumulative all the same. */
	for (int k = 0; k < 100; k++) {
		hist_read(&h, &s);
		for (uint32_t i = 1; i <= s.nbounds; i++)
			assert_true(s.cum[i] >= s.cum[i - 1]);
		assert_int_equal(s.cum[s.nbounds], s.count);
	}
	for (int i = 0; i < THREADS; i++)
		pthread_join(t[i], NULL);
	hist_read(&h, &s);
	assert_int_equal(s.count, (uint64_t)THREADS * ADDS);
	/* Per thread: 0..199 500 times: 2 <= 1, 11 <= 10, 101 <= 100. */
	assert_int_equal(s.cum[0], (uint64_t)THREADS * ADDS / 200 * 2);
	assert_int_equal(s.cum[1], (uint64_t)THREADS * ADDS / 200 * 11);
	assert_int_equal(s.cum[2], (uint64_t)THREADS * ADDS / 200 * 101);
	assert_int_equal(s.sum, (uint64_t)THREADS * ADDS / 200 * 19900);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_edges),
	    cmocka_unit_test(test_no_bounds),
	    cmocka_unit_test(test_threads),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
