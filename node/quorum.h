/*
 * quorum — whom a get asks and where a put goes, decided from a key's walk
 * (gossip_replicas: the preference list, a transfer's new replicas, then
 * the stand-ins) and the health of each node of it as the request starts.
 * Pure functions: coord.c gives them the health it read from the rpc pool
 * (rpc_peer_health), the unit test gives them any.
 *
 * Health: OK, SUSPECT (silent lately: slow or frozen, maybe) or GONE
 * (unreachable).  A get reads `count` nodes of the walk, healthy ones
 * first, suspect ones only when too few are healthy.  A put sends to every
 * healthy replica; each replica that is not healthy is stood in for by the
 * next healthy stand-in of the walk, which keeps the write as a hint for
 * it (sloppy quorum, hinted handoff).  When no healthy stand-in is left, a
 * suspect replica gets the write itself (with a hint kept here too, in
 * case it never answers); failing that a suspect stand-in; failing that
 * the hint stays on this node.
 */
#ifndef DYN_QUORUM_H
#define DYN_QUORUM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "gossip.h"
#include "rpc.h"

/* The walk's nodes as a request starts: health[i] of node i (anything for
 * this node), self[i] when node i is this one. */
struct walk {
	const struct replicas *rp;
	enum rpc_health health[REPLICAS_MAX];
	bool self[REPLICAS_MAX];
};

/* The nodes a get asks (indices into the walk, this node left out) into
 * idx; their number.  *self_reads: this node is one of the `count` read. */
size_t quorum_read_set(const struct walk *w, uint32_t *idx, bool *self_reads);

/* One destination of a write: node `at` of the walk, a stand-in for node
 * `hint_for` when that is >= 0 (F_HINT), else a replica itself. */
struct quorum_dest {
	uint32_t at;
	int hint_for;
};

struct put_plan {
	struct quorum_dest d[REPLICAS_MAX];
	size_t nd;
	/* Replicas (walk indices) this node keeps a hint for. */
	uint32_t hints[REPLICAS_MAX];
	size_t nhints;
	/* A coordinator outside the preference list stands in itself for
	 * the first replica not healthy: its index, or -1.  Its hint counts
	 * as an ack. */
	int local_standin;
	bool taken[REPLICAS_MAX]; /* stand-ins used so far */
};

/* Where a put goes first. */
void quorum_plan_put(const struct walk *w, struct put_plan *p);

/* The next stand-in not taken yet: a healthy one, or when `worst` is
 * RPC_PEER_SUSPECT a suspect one after the healthy ones; its walk index,
 * or -1 when none is left.  For a second try after failed sends. */
int quorum_standin_take(const struct walk *w, struct put_plan *p,
    enum rpc_health worst);

#endif
