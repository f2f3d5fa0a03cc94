/*
 * xfer — moving partitions between nodes.  Serves XFER_REQ (the records of
 * one partition, from a cursor, in batches of about 1 MiB, read from a
 * store snapshot) and runs the transfer thread, which pulls every partition
 * this node gains under a pending ring plan from the partition's current
 * replicas, merges each record into the local store, and then reports ready
 * (gossip_set_ready) so the claimant can commit the plan.  Pulling is
 * idempotent: a merge of a record already held changes nothing, so an
 * interrupted transfer is simply redone.
 */
#ifndef DYN_XFER_H
#define DYN_XFER_H

#include <stdbool.h>
#include <stdint.h>

#include "buf.h"
#include "wire.h"

struct node;
struct xfer;

int xfer_start(struct node *n, struct xfer **out);
void xfer_stop(struct xfer *x);
/* XFER_REQ */
int xfer_handle(struct node *n, const struct wire_msg *m, struct buf *out);
/* The transfer thread's pull for the last plan it worked on (what
 * `dynamoctl status` shows, and leave/remove follow).  A pull that failed
 * is started again: done goes back to 0, bytes and records go on. */
struct xfer_progress {
	uint64_t epoch;   /* the plan's ring epoch; 0: none since start */
	uint32_t done;    /* partitions pulled */
	uint32_t total;   /* partitions to pull (ring_gains) */
	uint64_t bytes;   /* record bytes received for it */
	uint64_t records; /* records received (merged, or held already) */
	bool active;      /* still pulling */
	uint64_t ms;      /* since the pull began, or what it took */
};
void xfer_progress(struct xfer *x, struct xfer_progress *out);

#endif
