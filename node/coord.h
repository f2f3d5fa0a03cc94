/*
 * coord — the coordinator: get and put of one key across its replicas.
 *
 * A put is coordinated by a replica of the key (node.c forwards it there
 * otherwise): the coordinator makes the new version in its own store first
 * (so its actor's counters for the key are always on its disk), sends it to
 * the other replicas in parallel (REPLICATE_REQ, merged there) and answers
 * after W acks, its own included.  A get reads the first N replicas, answers
 * after R, merges what they returned (every sibling, the merged context)
 * and writes the merge back to the replicas that were missing some of it
 * (read repair).  R and W never exceed the replicas there are, so a cluster
 * of one node works with the defaults.
 */
#ifndef DYN_COORD_H
#define DYN_COORD_H

#include <stddef.h>
#include <stdint.h>

#include "keypos.h"
#include "vclock.h"
#include "vset.h"

struct node;

struct coord_req {
	const void *key;
	size_t klen;
	struct keypos pos;
	uint32_t r, w;  /* 0: cluster default */
	uint32_t flags; /* WIRE_F_* */
};

/* Every version held for the key (empty set when none). out must be
 * initialised. */
int coord_get(struct node *n, const struct coord_req *rq, struct vset *out);

/* Write value (or a tombstone, by WIRE_F_TOMBSTONE) superseding what ctx
 * covers.  *newctx gets the context of the new version (its past plus its
 * dot), so a client may write again without a get. */
int coord_put(struct node *n, const struct coord_req *rq,
    const struct vclock *ctx, const void *value, size_t len,
    struct vclock *newctx);

#endif
