/*
 * gc — the blob garbage collector: mark and sweep across the cluster with
 * Bloom filters (common/bloom.h) and a grace period.
 *
 * Blobs (common/blob.h) are shared by every version that holds the same
 * bytes, so no writer may delete one when a version is superseded.  Each
 * node's GC thread runs a round every interval:
 *
 *   1. Skip it while a ring change or transfer is pending.  Note start (wall
 *      clock), a fresh random seed, the ring epoch and the members that have
 *      not left.
 *   2. Build this node's filter and ask every other such member for its
 *      own (GC_FILTER_REQ, answered from a store snapshot taken after the
 *      request arrived).  A node's filter holds the name of every blob
 *      referenced by any version of any record in its objects and hints
 *      databases, read from the value's reference header; data blobs ('B')
 *      are never parsed, reference blobs ('R') are, like any record (so a
 *      garbage page keeps its children one round longer).
 *   3. Abort, deleting and marking nothing, when a member did not answer or
 *      is unreachable, a member set or ring epoch changed, a member runs
 *      another grace period (or none), any node found a reference header it
 *      could not parse or a record it could not read (that could hide a
 *      reference: keep everything), or the round took longer than grace/4.
 *   4. Sweep this node's own blob records in objects (hints are handed off
 *      and removed, never swept): one in some filter is referenced and
 *      loses its condemn mark; one in none is marked condemned_at = now,
 *      or, already marked with start >= condemned_at + grace, deleted by
 *      the store's conditional delete (only if the mark is still the one
 *      read).  At most GC_SWEEP_MAX marks and deletes a round (the rest
 *      waits for the next); unmarks are never held back, so a round that
 *      finds a blob referenced always clears its mark.
 *
 * Marks live in the store (store.h, database gc) and every write of a blob
 * in objects deletes its mark in the same transaction (the touch).
 *
 * Why it is safe.  A blob is deleted only if it was unreferenced in every
 * member's snapshot, each taken after the round's start, in a round that
 * started at least grace after the blob was condemned, and no write of the
 * blob happened since it was condemned; every complete round in between saw
 * it unreferenced too (else the mark would have gone).  A writer (the mount)
 * that stores a value referencing a blob has, less than grace/2 earlier,
 * either put the blob or read a stored value referencing it.  If it put it
 * after the mark was made, the touch removed the mark; if before, or if it
 * read the reference before the condemning round's mark, its value was
 * stored before condemned_at + grace/2, so before the deleting round
 * started, and that round's snapshots hold it unless it was superseded
 * (then the reference is dead, unless someone read it: the same argument
 * again for that reader).  So any live reference is in some snapshot of the
 * deleting round.  Assumptions, stated: one wall clock (the sweeping
 * node's) measures both ends of the grace period, so a clock stepped
 * forward by more than grace/2 shortens it; a reference carried from read
 * to write (the second case) is covered when a complete round falls within
 * each stored link's life, which frequent rounds (interval well under
 * grace) make so; a writer that holds a reference longer than grace/2
 * before storing it must put the blob again (the put touches it).
 *
 * Anti-entropy does not send condemned blobs (ae.c): otherwise a replica
 * that deleted a blob would get it back from one that had not yet, and
 * the two could hand it back and forth for ever.
 *
 * Threads: one GC thread (rounds); GC_FILTER_REQ is served by the worker
 * that receives it, also when this node's own GC is off.
 */
#ifndef DYN_GC_H
#define DYN_GC_H

#include <stdint.h>

#include "buf.h"
#include "wire.h"

struct node;
struct gc;

#define GC_SWEEP_MAX 1024 /* marks and deletes per round */

/* grace_ms < 0: no GC (no thread; *out stays NULL). */
int gc_start(struct node *n, int interval_ms, int64_t grace_ms,
    struct gc **out);
/* Stops the thread (a round in progress ends at its next step or call
 * timeout); NULL is fine. */
void gc_stop(struct gc *g);
/* GC_FILTER_REQ: this node's filter under the sender's seed. */
int gc_handle_filter(struct node *n, const struct wire_msg *m,
    struct buf *out);

struct gc_stats {
	uint64_t rounds;         /* rounds that swept */
	uint64_t aborted;        /* rounds given up (no deletion) */
	char last_abort[96];     /* why the last one was given up */
	uint64_t blobs;          /* blob records seen by the last sweep */
	uint64_t referenced;     /* of them, in some filter */
	uint64_t condemned;      /* of them, marked after the sweep */
	uint64_t condemned_bytes; /* their size: what is reclaimable */
	uint64_t deleted;        /* blobs deleted since start */
	uint64_t deleted_bytes;
};
/* Since start; all zero when g is NULL (GC off). */
void gc_stats(struct gc *g, struct gc_stats *out);

#endif
