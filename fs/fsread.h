/*
 * fsread — reading the content of one stored version (inline bytes, or its
 * chunks from the store) with read-ahead: a reader that sees sequential
 * access asks a small pool of worker threads for the next chunks while the
 * caller works on the current one, since the store answers several gets
 * at once much faster than one after another.
 *
 * Not here: dirty data of open files (fsfile).  A reader is used by one
 * caller at a time (the caller's lock); the pool's workers touch only a
 * reader's slots, under the pool's mutex.  Chunks of a stored version never
 * change, so a chunk read ahead is never stale.
 */
#ifndef DYN_FSREAD_H
#define DYN_FSREAD_H

#include <stddef.h>
#include <stdint.h>

#include "fskv.h"
#include "fsobj.h"

#define FSREAD_SLOTS 4 /* chunks cached per reader */
#define FSREAD_AHEAD 2 /* chunks read ahead */

struct fsread_pool;

/* nthreads workers (0: no read-ahead). */
int fsread_pool_new(struct fskv *kv, int nthreads, struct fsread_pool **out);
/* The pool must have no reader left. */
void fsread_pool_free(struct fsread_pool *p);

struct fsread_slot {
	int64_t idx; /* chunk index, -1: empty */
	int state;   /* private */
	int rc;
	uint8_t *buf;
	size_t cap;
	size_t len;
	uint64_t used;
};

struct fsread {
	struct fsread_pool *pool;
	const struct fsobj_file *v; /* not owned: the caller keeps it alive */
	struct fsread_slot s[FSREAD_SLOTS];
	uint64_t tick;
	int64_t last; /* last chunk read, for the sequential check */
};

void fsread_init(struct fsread *r, struct fsread_pool *p);
/* Read v from now on (NULL: nothing, reads give zeros).  Waits for
 * fetches in flight for the previous version. */
void fsread_set(struct fsread *r, const struct fsobj_file *v);
void fsread_fini(struct fsread *r);
/* Bytes [off, off + len) of the version, zeros past its end.  0 or an
 * error (-ESTALE when a chunk is gone). */
int fsread_read(struct fsread *r, uint64_t off, uint8_t *out, size_t len);

#endif
