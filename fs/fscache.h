/*
 * fscache — the mount's content cache and the workers that move blobs
 * (common/blob.h) to and from the cluster.
 *
 * Content lives in immutable blobs named by their bytes, so a cached blob
 * can never be stale: one cache serves every open file of the mount, and a
 * chunk read once (or written by this mount) is served from memory until
 * the cache's byte budget evicts it (least recently used first).  A fetch
 * that another thread already has in flight is waited for, not repeated.
 *
 * Workers (a fixed pool) run read-ahead fetches and the puts of chunks that
 * open files hand over, so several are in flight at once: the cluster
 * answers many requests in parallel far faster than one after another.
 *
 * Thread safety: every call may come from any thread.  The cache's mutex is
 * a leaf: never held across a call to the cluster or a callback.
 */
#ifndef DYN_FSCACHE_H
#define DYN_FSCACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "blob.h"
#include "client.h"

struct fscache;

/* A cached blob: data[0..len) stays valid until fsblob_unref. */
struct fsblob {
	uint8_t key[BLOB_KEY_LEN];
	const uint8_t *data;
	size_t len;
	/* private */
	struct dyn_bytes raw; /* a fetched blob: the reply it came in */
	struct fsblob *hnext, *prev, *next;
	int refs;
	int state;
	int rc;
};

struct fscache_stats {
	uint64_t hits, misses, fetches, puts, evictions;
	uint64_t used_once; /* dropped after a sequential read (fscache_done) */
	uint64_t bytes; /* cached now */
};

/* cap bytes of cached content, nthreads workers.  cl is not owned. */
int fscache_new(struct dyn_client *cl, size_t cap, int nthreads,
    struct fscache **out);
/* Waits for the workers' jobs to finish. */
void fscache_free(struct fscache *c);

/* The blob key (its bytes are at most maxlen): from the cache or fetched.
 * *out holds a reference.  -ENOENT when no replica has it, -ESTALE (the
 * cluster collected it), or the client's errors. */
int fscache_get(struct fscache *c, const uint8_t key[BLOB_KEY_LEN],
    size_t maxlen, struct fsblob **out);
void fsblob_unref(struct fscache *c, struct fsblob *b);
/* fsblob_unref for a blob a sequential reader read through: unless someone
 * else holds it, it leaves the cache now (use once). */
void fscache_done(struct fscache *c, struct fsblob *b);
/* Fetch key in the background, unless cached or in flight. */
void fscache_prefetch(struct fscache *c, const uint8_t key[BLOB_KEY_LEN],
    size_t maxlen);

/* Store data as a blob of kind (BLOB_DATA or BLOB_REFS) and cache it;
 * key gets its key. */
int fscache_put(struct fscache *c, uint8_t kind, const void *data,
    size_t len, uint8_t key[BLOB_KEY_LEN]);
/* The same by a worker: data[0..len) must stay untouched until done(arg,
 * rc, key) runs (in a worker thread).  keep: cache a copy (a chunk written
 * in place, likely read again); a chunk a sequential writer streamed out is
 * not kept, so a long write does not fill the cache with new pages. */
typedef void (*fscache_done_fn)(void *arg, int rc,
    const uint8_t key[BLOB_KEY_LEN]);
int fscache_put_async(struct fscache *c, uint8_t kind, const void *data,
    size_t len, bool keep, fscache_done_fn done, void *arg);

void fscache_stats(struct fscache *c, struct fscache_stats *out);

#endif
