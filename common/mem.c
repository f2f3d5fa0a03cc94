#include "mem.h"

#include <malloc.h>
#include <stdlib.h>
#include <string.h>

static const struct mem_allocator libc_alloc = {malloc, calloc, realloc, free};
static const struct mem_allocator *cur = &libc_alloc;

void
mem_set_allocator(const struct mem_allocator *a)
{
	cur = a ? a : &libc_alloc;
}

void *
mem_alloc(size_t n)
{
	return cur->malloc(n ? n : 1);
}

void *
mem_calloc(size_t nmemb, size_t n)
{
	return cur->calloc(nmemb ? nmemb : 1, n ? n : 1);
}

void *
mem_realloc(void *p, size_t n)
{
	return cur->realloc(p, n ? n : 1);
}

void
mem_free(void *p)
{
	if (p)
		cur->free(p);
}

void *
mem_dup(const void *p, size_t n)
{
	void *q = mem_alloc(n);
	if (q && n)
		memcpy(q, p, n);
	return q;
}

void
mem_keep_freed_blocks(size_t max)
{
	mallopt(M_MMAP_THRESHOLD, (int)max);
	mallopt(M_TRIM_THRESHOLD, 64 << 20);
}
