/*
 * node_i — the node's state, shared by the files of node/ only.
 */
#ifndef DYN_NODE_I_H
#define DYN_NODE_I_H

#include "node.h"
#include "server.h"
#include "store.h"

struct node {
	struct node_config cfg;
	char name[64];
	uint64_t actor; /* this incarnation's vclock actor id (meta "actor") */
	uint64_t start_ms;
	struct store *store;
	struct server *srv;
};

/* Wall-clock milliseconds (for version timestamps). */
uint64_t node_now_ms(void);

#endif
