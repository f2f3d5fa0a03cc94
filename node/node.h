/*
 * node — one storage node: its configuration, its store, its RPC server,
 * and the dispatch of requests to the coordinator (coord.c).  dynamod is a
 * thin main around node_start / node_stop.
 */
#ifndef DYN_NODE_H
#define DYN_NODE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "auth.h"

struct node_config {
	const char *name;   /* unique in the cluster */
	const char *listen; /* tcp://HOST:PORT */
	const char *data;   /* data directory */
	struct auth_key key;
	bool fsync;         /* default true */
	bool group_commit;  /* default true */
	unsigned workers;   /* concurrent requests (0: 64) */
	size_t max_value;   /* bytes (0: WIRE_MAX_VALUE) */
	uint64_t map_max;   /* LMDB map limit (0: store default) */
};

struct node;

void node_config_default(struct node_config *c);
int node_start(const struct node_config *c, struct node **out);
/* The address the node listens on (port 0 resolved). */
const char *node_addr(const struct node *n);
/* Finish in-flight requests, close the store, free n. NULL is fine. */
void node_stop(struct node *n);

#endif
