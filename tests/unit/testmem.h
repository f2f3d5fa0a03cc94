/*
 * testmem — the allocators the unit tests plug into common/mem: cmocka's
 * leak-checked test_malloc & co, and a variant that fails on demand.  It
 * does not own anything a test allocates; cmocka's leak check does.  Single
 * threaded: only the test thread may allocate while these are installed.
 */
#ifndef DYN_TESTMEM_H
#define DYN_TESTMEM_H

#include <stddef.h>

#include "mem.h"

/* cmocka's test_malloc, test_calloc, test_realloc and test_free, as
 * functions (cmocka's are macros), for tests that build their own
 * allocator around a special failure. */
void *testmem_malloc(size_t n);
void *testmem_calloc(size_t nmemb, size_t n);
void *testmem_realloc(void *p, size_t n);
void testmem_free(void *p);

/* cmocka's leak-checked allocator. */
extern const struct mem_allocator testmem_checked;

/* Like testmem_checked, but once the budget set by testmem_fail_after() is
 * spent every malloc, calloc and realloc returns NULL.  Frees always go
 * through test_free, so leak checks still hold. */
extern const struct mem_allocator testmem_failing;

/* Let the next n allocations through testmem_failing succeed and fail all
 * after them; n == 0 fails at once, n < 0 never fails.  Starts at 0. */
void testmem_fail_after(long n);

/* cmocka setup/teardown (per test or per group): install testmem_checked /
 * restore libc's allocator.  state is unused. */
int testmem_setup(void **state);
int testmem_teardown(void **state);

#endif
