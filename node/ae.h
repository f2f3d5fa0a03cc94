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
 */
#ifndef DYN_AE_H
#define DYN_AE_H

#include <stdint.h>

#include "buf.h"
#include "wire.h"

struct node;
struct ae;

int ae_start(struct node *n, int interval_ms, struct ae **out);
void ae_stop(struct ae *a);
/* AE_REQ: compare with the sender's leaf hashes. */
int ae_handle(struct node *n, const struct wire_msg *m, struct buf *out);
/* MERGE_REQ: merge the records carried. */
int ae_handle_merge(struct node *n, const struct wire_msg *m,
    struct buf *out);
/* Rounds done and records merged in, since start. */
void ae_stats(struct ae *a, uint64_t *rounds, uint64_t *merged);

#endif
