/*
 * metrics — what a node counts for monitoring, and its Prometheus text
 * exposition (GET /metrics, node/httpd.h).
 *
 * It owns the counters no other module keeps: requests by operation and
 * outcome with their latency (a histogram each), quorum failures, stand-in
 * writes, read repairs and siblings created.  Everything else is read, when
 * rendered, from the module that counts it (server_stats, store_stats,
 * ae_stats, gc_stats, handoff_delivered, gossip_view, xfer_progress), so no
 * event is counted in two places.
 *
 * Lock-free: counting is a relaxed atomic increment from any thread, and
 * rendering reads while others count, so one exposition is a view taken
 * over a few microseconds rather than at one instant (each histogram's
 * buckets still add up to its _count).
 */
#ifndef DYN_METRICS_H
#define DYN_METRICS_H

#include <stdatomic.h>
#include <stdint.h>

#include "buf.h"
#include "hist.h"

struct node;

/* Requests, by what they ask (the wire type, folded). */
enum metrics_op {
	METRICS_OP_GET,  /* a get to coordinate (or forward) */
	METRICS_OP_READ, /* a replica's read of its own copy (a get with
	                    WIRE_F_LOCAL: a coordinator's, get --local) */
	METRICS_OP_PUT,
	METRICS_OP_REPLICATE,
	METRICS_OP_GOSSIP,
	METRICS_OP_PING,
	METRICS_OP_STATUS,
	METRICS_OP_RING,
	METRICS_OP_TRANSFER,
	METRICS_OP_ANTI_ENTROPY, /* AE and MERGE */
	METRICS_OP_PURGE,        /* PURGE_CHECK and PURGE */
	METRICS_OP_GC_FILTER,
	METRICS_OP_RANGE, /* a range read (coordinated, or a replica's page) */
	METRICS_OP_ADMIN, /* fault, leave, remove, compact */
	METRICS_OP_OTHER, /* a type this node does not serve */
	METRICS_OPS,
};

/* A request's outcome: its handler's result, folded (metrics_outcome_of). */
enum metrics_outcome {
	METRICS_OK,
	METRICS_BAD_REQUEST, /* malformed, too big, bad context, ... */
	METRICS_NOT_FOUND,
	METRICS_QUORUM,      /* fewer than R / W replicas */
	METRICS_TIMEOUT,
	METRICS_UNREACHABLE,
	METRICS_NO_SPACE,
	METRICS_CLOSED,      /* starting or stopping */
	METRICS_DROPPED,     /* from a node this one is cut off from */
	METRICS_ERROR,       /* anything else */
	METRICS_OUTCOMES,
};

/* Events counted where they happen (coord.c). */
enum metrics_event {
	METRICS_QUORUM_FAIL_GET, /* a coordinated get short of R answers */
	METRICS_QUORUM_FAIL_PUT, /* a coordinated put short of W acks */
	METRICS_STANDIN_WRITES,  /* versions a stand-in took for a replica */
	METRICS_READ_REPAIRS,    /* stale replicas a get sent its merge to */
	METRICS_SIBLINGS,        /* puts leaving more than one live version */
	METRICS_EVENTS,
};

/* Embedded in struct node. */
struct metrics {
	struct hist latency[METRICS_OPS][METRICS_OUTCOMES]; /* microseconds */
	_Atomic uint64_t events[METRICS_EVENTS];
};

void metrics_init(struct metrics *m);
/* A request answered with handler result rc (0, a negative code,
 * SERVER_DROP) after us microseconds. */
void metrics_request(struct metrics *m, enum metrics_op op, int rc,
    uint64_t us);
void metrics_count(struct metrics *m, enum metrics_event e, uint64_t k);

/* What a request of wire type `type` with F_FLAGS `flags` asks. */
enum metrics_op metrics_op_of(uint8_t type, uint32_t flags);
enum metrics_outcome metrics_outcome_of(int rc);
/* Label values: lower-case identifiers, static strings. */
const char *metrics_op_name(enum metrics_op op);
const char *metrics_outcome_name(enum metrics_outcome o);

/* Append node n's metrics to out in the Prometheus text format 0.0.4
 * (families prefixed dynamo_, no node label: the scrape target names the
 * node).  Reads the store and the gossip view: call it where a short wait
 * is fine (httpd's thread), not from a request handler.  Errors are the
 * buffer's (buf_err). */
void metrics_render(struct node *n, struct buf *out);

#endif
