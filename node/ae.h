/*
 * ae — anti-entropy: replicas of a partition compare Merkle trees
 * (common/merkle.h, SHA-256) and exchange only the keys of the leaves that
 * differ, merging version sets both ways.
 *
 * The thread takes one of this node's partitions per interval (round
 * robin; the interval is the rate limit that keeps background work from
 * hurting foreground latency) and, with each other replica in turn: builds
 * its tree from a store snapshot, sends the leaf hashes (AE_REQ); the peer
 * builds its own, answers with the differing leaves and its records in
 * them; this node merges those and sends back its own records of the same
 * leaves (MERGE_REQ).  A wiped or long-partitioned replica is thus
 * refilled, and versions a replica missed (a write in flight when it
 * crashed) reach it.
 *
 * Tombstones are purged here too.  A delete leaves a tombstone so that an
 * older copy of the value, met later, loses to it; it may go once no older
 * copy can be met any more.  The first replica of a partition purges its
 * tombstones whose newest version is older than the grace period when, in
 * the same round:
 *   - every other replica of the partition answered with an equal tree
 *     (all N hold the very same sets, tombstones included);
 *   - every member of the ring answered a PURGE_CHECK: it holds the same
 *     ring, with no transfer pending, it keeps no stray records (below),
 *     and the oldest version in any of its hints is newer than the
 *     tombstone by more than the grace period (so no late hint can carry a
 *     version the tombstone deleted);
 * and then each replica deletes the record only if it still holds exactly
 * that set (a write since then keeps it).  The grace period covers clock
 * skew between nodes and messages still in flight.  Old versions can hide
 * nowhere else: replicas are all equal, hints are checked, transfers only
 * run between ring changes (no purge then), and copies on nodes that do not
 * replicate a partition are swept: every round, a node holding no hints
 * deletes its records of partitions it does not replicate (left by a
 * partition that moved away, or held as a stand-in).
 */
#ifndef DYN_AE_H
#define DYN_AE_H

#include <stdint.h>

#include "buf.h"
#include "wire.h"

struct node;
struct ae;

/* grace_ms < 0: never purge tombstones. */
int ae_start(struct node *n, int interval_ms, int64_t grace_ms,
    struct ae **out);
void ae_stop(struct ae *a);
/* AE_REQ: compare with the sender's leaf hashes. */
int ae_handle(struct node *n, const struct wire_msg *m, struct buf *out);
/* MERGE_REQ: merge the records carried. */
int ae_handle_merge(struct node *n, const struct wire_msg *m,
    struct buf *out);
/* PURGE_CHECK_REQ: may the sender purge? (epoch, hints, strays) */
int ae_handle_purge_check(struct node *n, const struct wire_msg *m,
    struct buf *out);
/* PURGE_REQ: delete the records carried where they are unchanged. */
int ae_handle_purge(struct node *n, const struct wire_msg *m,
    struct buf *out);

struct ae_stats {
	uint64_t rounds; /* rounds done */
	uint64_t merged; /* records merged in from peers */
	uint64_t purged; /* tombstones deleted (as purger or replica) */
	uint64_t swept;  /* stray records deleted */
	/* Partitions of this node that differed from a replica when last
	 * compared, even after that round's repair (a round that finds
	 * leaves differing repairs them, builds its tree again and compares
	 * roots once more); a partition counts as equal again once every
	 * other replica compared equal. */
	uint32_t differing;
	uint64_t diffs;           /* comparisons that found leaves differing */
	uint32_t last_diff_part;  /* the last of those: its partition, */
	uint32_t last_diff_leaves; /* its leaves differing (all replicas), */
	int64_t last_diff_age_ms; /* and how long ago; -1: none yet */
	uint64_t leaves_differ; /* Merkle leaves found differing, with every
	                           replica compared */
	uint64_t bytes;  /* bytes of the rounds' calls this node made:
	                    requests and replies */
};
/* Since start; all zero when a is NULL (anti-entropy off). */
void ae_stats(struct ae *a, struct ae_stats *out);

#endif
