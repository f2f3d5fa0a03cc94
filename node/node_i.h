/*
 * node_i — the node's state, shared by the files of node/ only.
 */
#ifndef DYN_NODE_I_H
#define DYN_NODE_I_H

#include "metrics.h"
#include "mono.h"
#include "node.h"
#include "server.h"
#include "store.h"

#include <pthread.h>
#include <stdatomic.h>

struct gossip;
struct rpc_pool;
struct xfer;
struct handoff;
struct ae;
struct gc;
struct httpd;

struct node {
	struct node_config cfg;
	char name[64];
	char addr[128]; /* as peers reach us */
	/* The vclock actor id (meta "actor"): a new one after a stop that was
	 * not clean, or at once when a put's commit fails (node_actor_lost). */
	_Atomic uint64_t actor;
	atomic_bool dots_lost; /* an actor was dropped: this stop is not clean */
	uint64_t start_ms; /* mono_ms() at the start */
	atomic_uint_fast64_t next_reqid;
	struct store *store;
	struct server *srv;
	struct rpc_pool *pool; /* to other nodes */
	struct gossip *gossip;
	struct xfer *xfer;
	struct handoff *handoff;
	struct ae *ae;
	struct gc *gc; /* NULL: blob GC off */
	struct httpd *httpd; /* NULL: no --http */
	struct metrics metrics;
	pthread_mutex_t fault_lock; /* the injected faults below */
	char blocked[16][64];       /* nodes this one is cut off from */
	size_t nblocked;
	pthread_mutex_t start_lock; /* held while the parts above start */
	atomic_bool ready;          /* all of them are up */
};

/* The key contexts are tagged under: the node role's (a client carries
 * contexts back but cannot make one). */
static inline const struct auth_key *
node_ctx_key(const struct node *n)
{
	return auth_role_key(&n->cfg.keys, 0, AUTH_NODE);
}

/* Wall-clock milliseconds (for version timestamps). */
uint64_t node_now_ms(void);
/* A put of actor's was sent to other replicas but its commit here failed:
 * the store may not know that dot, so actor could issue it again.  The
 * node takes a new actor id (once for actor, however many puts lost) and
 * does not mark its stop clean. */
void node_actor_lost(struct node *n, uint64_t actor);
/* A fresh request id for a call to another node. */
uint64_t node_reqid(struct node *n);
/* Begin a request to another node: header and F_FROM (so a peer that
 * injects faults knows whom to ignore). */
void node_req_begin(struct node *n, struct buf *b, uint8_t type);
/* The same with header flags (WIRE_H_*). */
void node_req_begin_flags(struct node *n, struct buf *b, uint8_t type,
    uint16_t hflags);
/* The timeout of a call that carries a partition's worth of records
 * (transfer, anti-entropy, the collector's filters): NODE_BULK_FACTOR
 * times --timeout, so no background call has a fixed long timeout of its
 * own (a stop cancels them all anyway: rpc_pool_cancel). */
#define NODE_BULK_FACTOR 10
int node_bulk_timeout_ms(const struct node *n);

#endif
