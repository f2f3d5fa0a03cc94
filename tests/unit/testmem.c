/*
 * testmem — see testmem.h.  One copy of the cmocka allocator plumbing that
 * every unit test used to carry.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "mem.h"
#include "testmem.h"

/* Allocations testmem_failing still lets through; < 0: no limit. */
static long fail_after;

void *
testmem_malloc(size_t n)
{
	return test_malloc(n);
}

void *
testmem_calloc(size_t nmemb, size_t n)
{
	return test_calloc(nmemb, n);
}

void *
testmem_realloc(void *p, size_t n)
{
	return test_realloc(p, n);
}

void
testmem_free(void *p)
{
	test_free(p);
}

const struct mem_allocator testmem_checked = {
    testmem_malloc,
    testmem_calloc,
    testmem_realloc,
    testmem_free,
};

void
testmem_fail_after(long n)
{
	fail_after = n;
}

/* Spends one unit of the budget; true once it is gone. */
static bool
fail_now(void)
{
	if (fail_after < 0)
		return false;
	if (fail_after == 0)
		return true;
	fail_after--;
	return false;
}

static void *
failing_malloc(size_t n)
{
	return fail_now() ? NULL : test_malloc(n);
}

static void *
failing_calloc(size_t nmemb, size_t n)
{
	return fail_now() ? NULL : test_calloc(nmemb, n);
}

static void *
failing_realloc(void *p, size_t n)
{
	return fail_now() ? NULL : test_realloc(p, n);
}

const struct mem_allocator testmem_failing = {
    failing_malloc,
    failing_calloc,
    failing_realloc,
    testmem_free,
};

int
testmem_setup(void **state)
{
	(void)state;
	mem_set_allocator(&testmem_checked);
	return 0;
}

int
testmem_teardown(void **state)
{
	(void)state;
	mem_set_allocator(NULL);
	return 0;
}
