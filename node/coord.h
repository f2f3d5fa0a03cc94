/*
 * coord — the coordinator: the logic of get and put for one key, from the
 * node that serves the request.  With one node it reads and writes the
 * local store; the cluster extends it to the key's preference list
 * (replicate to N, answer after R/W).
 */
#ifndef DYN_COORD_H
#define DYN_COORD_H

#include <stddef.h>
#include <stdint.h>

#include "vclock.h"
#include "vset.h"

struct node;

struct coord_req {
	const void *key;
	size_t klen;
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
