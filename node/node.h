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
#include "cred.h"

struct node_config {
	const char *name;   /* unique in the cluster */
	const char *listen; /* tcp://HOST:PORT */
	const char *data;   /* data directory */
	struct auth_keys keys; /* the cluster's role keys; signs as node */
	bool fault_injection; /* serve FAULT_REQ (tests only) */
	uint64_t replay_window_ms; /* message time window (0: 120 s) */
	const struct cred *cred; /* TLS with this credential, listening and
	                            dialling (NULL: plain tcp, warned of);
	                            the caller's, read during node_start */
	bool fsync;         /* default true */
	bool group_commit;  /* default true */
	unsigned workers;   /* concurrent requests (0: 64) */
	size_t max_request; /* longest request accepted (0: server.h's) */
	unsigned max_conns; /* open connections (0: guard.h's) */
	int idle_ms;        /* a connection with no complete request for
	                       this long is closed (0: guard.h's) */
	size_t max_value;   /* bytes (0: WIRE_MAX_VALUE) */
	uint64_t map_max;   /* LMDB map limit (0: store default) */
	const char *advertise; /* address peers use (default: listen's) */
	const char *const *seeds; /* members to join through */
	size_t nseeds;
	uint32_t partitions;  /* Q, when founding a cluster */
	uint32_t n, r, w;     /* replication, when founding a cluster */
	int timeout_ms;       /* node-to-node calls (0: 2000) */
	int gossip_ms;        /* gossip round (0: 1000) */
	int ae_ms;            /* a partition per this many ms (-1: off) */
	int64_t tomb_grace_ms; /* tombstones purged after (-1: never) */
	int gc_ms;            /* a blob GC round every this many ms */
	int64_t gc_grace_ms;  /* blobs deleted this long after condemned
	                         (-1: no blob GC) */
	bool compact_at_start; /* compact the data file before serving */
	int64_t compact_check_ms; /* automatic compaction check (-1: off) */
	const char *http;     /* serve /metrics and a status page here,
	                         tcp://HOST:PORT or http://HOST:PORT (NULL:
	                         off; port 0: any free port) */
};

struct node;

void node_config_default(struct node_config *c);
int node_start(const struct node_config *c, struct node **out);
/* The address the node listens on (port 0 resolved). */
const char *node_addr(const struct node *n);
/* The URL of its HTTP front, http://HOST:PORT (port 0 resolved), or NULL
 * without one; valid until node_stop. */
const char *node_http_url(const struct node *n);
/* True once `dynamoctl leave` has handed every partition over: the
 * process should stop. */
bool node_left(struct node *n);
/* True when the node stopped because an operator removed it (`dynamoctl
 * remove` while it was down); node_left() is then true as well. */
bool node_removed(struct node *n);
/* Finish in-flight requests, close the store, free n. NULL is fine. */
void node_stop(struct node *n);

#endif
