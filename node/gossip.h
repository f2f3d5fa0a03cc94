/*
 * gossip — membership and the ring, as this node sees them.
 *
 * Each node keeps a record per member (name, address, incarnation, a
 * version its owner bumps on every change and every round as a heartbeat,
 * status, the ring epoch it holds and the epoch whose transfers it has
 * finished) and the ring.  About once a second it sends its view to a
 * random peer and merges the answer (push-pull): a member's record with the
 * higher (incarnation, version) wins, the newer ring wins (ring_newer), so
 * every node converges on the same view.
 *
 * Ring changes are decided by one member, the claimant (the UP member with
 * the smallest name): when the set of UP members differs from the ring's
 * owners it plans a new ring (ring_plan: about Q/S partitions move) and
 * gossips it with the plan pending.  When every member holds that ring, each
 * pulls the partitions it gains (xfer.c) and reports ready; when all are
 * ready the claimant commits the plan.  Writes during a transfer go to the
 * old and the new replicas alike, so nothing acknowledged is lost.
 *
 * Threads: one gossip thread (rounds, claimant, leave); the transfer thread
 * of xfer.c; request handlers call the lookup functions, which copy what
 * they need under the gossip lock.
 */
#ifndef DYN_GOSSIP_H
#define DYN_GOSSIP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "keypos.h"
#include "ring.h"
#include "wire.h"

struct node;
struct gossip;

enum member_status {
	MEMBER_UP = 1,      /* owns (or is to own) partitions */
	MEMBER_LEAVING = 2, /* handing its partitions over */
	MEMBER_LEFT = 3,    /* gone for good */
};

/* Cluster-wide settings, fixed when the first node creates the cluster. */
struct cluster_settings {
	uint32_t n, r, w;
};

struct gossip_opts {
	const char *const *seeds; /* addresses of members to join through */
	size_t nseeds;
	uint32_t q; /* partitions, when this node creates the cluster */
	struct cluster_settings settings; /* likewise */
	int interval_ms;                  /* gossip round (0: 1000) */
};

/* Members a view holds at most (the cluster's size limit). */
#define GOSSIP_MEMBERS_MAX 256

/* The replicas of one key as this node sees them, copied out. */
#define REPLICAS_MAX 32
struct replicas {
	uint32_t count;      /* nodes to write to (cur list + next's extra) */
	uint32_t read_count; /* the first read_count of them: cur list */
	uint32_t ext_count;  /* after them: the rest of the clockwise walk,
	                        stand-ins when some are down (sloppy quorum) */
	bool self_in;        /* this node is one of the first count */
	struct cluster_settings s;
	char name[REPLICAS_MAX][RING_NAME_MAX + 1];
	char addr[REPLICAS_MAX][RING_ADDR_MAX + 1];
};

int gossip_start(struct node *n, const struct gossip_opts *o,
    struct gossip **out);
void gossip_stop(struct gossip *g);

/* GOSSIP_REQ: merge the sender's view, answer with ours. */
int gossip_handle(struct gossip *g, const struct wire_msg *m,
    struct buf *reply);

/* Replicas of the key at pos.  DYN_EUNREACH while this node has no ring
 * yet (joining). */
int gossip_replicas(struct gossip *g, const struct keypos *pos,
    struct replicas *out);
/* Append the ring's encoding and the settings (RING_RESP). */
int gossip_ring_reply(struct gossip *g, uint64_t reqid, struct buf *out);
/* Start leaving: hand every partition over, then gossip_left() is true. */
int gossip_leave(struct gossip *g);
bool gossip_left(struct gossip *g);
/* Mark member name, which must be unreachable from here, as left for good
 * (`dynamoctl remove`): the claimant plans a ring without it, transfers
 * skip it, hints for it go to the keys' replicas.  -ENOENT, -EINVAL (this
 * node), -EBUSY (it is reachable). */
int gossip_remove(struct gossip *g, const char *name);
/* This node learnt it was removed (gossip_left() is then true too). */
bool gossip_removed(struct gossip *g);
/* Whether member name has left or was removed. */
bool gossip_is_left(struct gossip *g, const char *name);
/* The members and the ring as JSON (for status --json), appended (the
 * buffer breaks, -ENOMEM, when no view could be copied). */
void gossip_status_json(struct gossip *g, struct buf *out);

/* This node's view, copied out (gossip_view): what status shows. */
struct gossip_member {
	char name[RING_NAME_MAX + 1];
	char addr[RING_ADDR_MAX + 1];
	enum member_status status;
	bool reachable;      /* this node, or one the pool can call now */
	uint32_t partitions; /* owned under the current ring */
	uint64_t ring_seen;  /* the ring epoch it holds */
	uint64_t ready;      /* the epoch its transfers are done for */
};
struct gossip_view {
	uint64_t ring_epoch;   /* 0: no ring yet */
	uint32_t partitions;   /* Q */
	bool transfer_pending;
	struct cluster_settings settings;
	int64_t merged_age_ms; /* since a peer's view was last merged here
	                          (-1: never, e.g. a lone node) */
	size_t nmembers;       /* members[0] is this node */
	struct gossip_member members[GOSSIP_MEMBERS_MAX];
};
/* A copy of the view in *out (the caller mem_frees it): 0 or -ENOMEM. */
int gossip_view(struct gossip *g, struct gossip_view **out);
const char *gossip_status_name(enum member_status s);

/* For xfer.c: the current transfer target (ring with a pending plan, every
 * member holding it) — a copy the caller frees, or NULL. */
struct ring *gossip_transfer_target(struct gossip *g);
/* For xfer.c: this node finished pulling for the ring of that epoch. */
void gossip_set_ready(struct gossip *g, uint64_t epoch);
const char *gossip_self(const struct gossip *g);
/* The address of the member called name (copied); -ENOENT. */
int gossip_member_addr(struct gossip *g, const char *name, char *out,
    size_t cap);
/* The addresses of the other members that have not left (up to max;
 * GOSSIP_MEMBERS_MAX is always enough); their number. */
size_t gossip_peers(struct gossip *g, char (*addrs)[RING_ADDR_MAX + 1],
    size_t max);
/* A copy of the ring (the caller frees it), or NULL before joining. */
struct ring *gossip_ring_copy(struct gossip *g);
struct cluster_settings gossip_settings(struct gossip *g);

#endif
