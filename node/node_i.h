/*
 * node_i — the node's state, shared by the files of node/ only.
 */
#ifndef DYN_NODE_I_H
#define DYN_NODE_I_H

#include "node.h"
#include "server.h"
#include "store.h"

#include <pthread.h>
#include <stdatomic.h>

struct gossip;
struct rpc_pool;
struct xfer;

struct node {
	struct node_config cfg;
	char name[64];
	char addr[128]; /* as peers reach us */
	uint64_t actor; /* this incarnation's vclock actor id (meta "actor") */
	uint64_t start_ms;
	atomic_uint_fast64_t next_reqid;
	struct store *store;
	struct server *srv;
	struct rpc_pool *pool; /* to other nodes */
	struct gossip *gossip;
	struct xfer *xfer;
	pthread_mutex_t start_lock; /* held while the parts above start */
	atomic_bool ready;          /* all of them are up */
};

/* Wall-clock milliseconds (for version timestamps). */
uint64_t node_now_ms(void);
/* A fresh request id for a call to another node. */
uint64_t node_reqid(struct node *n);

#endif
