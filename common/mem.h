/*
 * mem — the one allocation hook.  All heap memory of common/, node/ and fs/
 * goes through these, so unit tests can plug in cmocka's test_malloc (leak
 * checks) or an allocator that fails on demand.  Out of memory is an error
 * return (-ENOMEM), never an abort.
 */
#ifndef DYN_MEM_H
#define DYN_MEM_H

#include <stddef.h>

struct mem_allocator {
	void *(*malloc)(size_t n);
	void *(*calloc)(size_t nmemb, size_t n);
	void *(*realloc)(void *p, size_t n);
	void (*free)(void *p);
};

/* Install an allocator (NULL restores libc's). Process configuration: call
 * before any thread starts. */
void mem_set_allocator(const struct mem_allocator *a);

void *mem_alloc(size_t n);
void *mem_calloc(size_t nmemb, size_t n);
void *mem_realloc(void *p, size_t n);
void mem_free(void *p);
/* Copy of n bytes (n may be 0: returns a valid 1-byte block). */
void *mem_dup(const void *p, size_t n);

/* Keep freed blocks of up to max bytes (MEM_KEEP_MAX, 32 MiB, for the
 * mount) in the heap for reuse instead of mapping and unmapping each one
 * (libc maps blocks over 128 KiB): chunks, directory objects and messages
 * are large and short-lived, and a fresh mapping costs a page fault per
 * 4 KiB touched (the nodes ran a stream of 128 KiB chunk puts at half
 * speed).  Blocks over max are mapped: their pages cost memory only once
 * written (dynamod relies on it, see its main).  Process configuration
 * for the daemons: call first thing in main. */
#define MEM_KEEP_MAX (32u << 20)
void mem_keep_freed_blocks(size_t max);

#endif
