/*
 * server — a node's RPC front: one nng rep0 socket and a fixed pool of
 * worker threads, each owning one nng context, so up to `workers` requests
 * are in flight at once.  A worker receives a message, checks it with
 * wire_decode (a message that fails — garbage, a bad tag, another version —
 * is dropped without a reply and counted), runs the handler, and sends the
 * reply the handler built.  Handlers run in the worker thread and may block
 * (on the store's group commit, on peers).
 *
 * The server does not own the handler's state; it never frees it.
 */
#ifndef DYN_SERVER_H
#define DYN_SERVER_H

#include <stdint.h>

#include "auth.h"
#include "buf.h"
#include "wire.h"

/* Build the reply to req in reply (wire_begin and fields; the server
 * seals it).  A negative return with an empty reply sends a WIRE_ERROR
 * carrying it; SERVER_DROP sends nothing (as if the request was lost);
 * SERVER_SEALED sends the reply as it is (one relayed from another node,
 * sealed there under the request's role). */
#define SERVER_DROP   1
#define SERVER_SEALED 2
typedef int (*server_handler_fn)(void *arg, const struct wire_msg *req,
    struct buf *reply);

struct server_opts {
	const char *listen; /* tcp://HOST:PORT; port 0 picks a free one */
	const struct auth_keys *keys;
	uint64_t replay_window_ms; /* message time window (0: 120 s) */
	unsigned workers; /* 0: 64 */
	server_handler_fn handler;
	void *arg;
};

struct server_stats {
	uint64_t requests; /* answered */
	uint64_t rejected; /* dropped: malformed, bad tag, other version */
	uint64_t auth_failures; /* of which: bad or missing tag */
	uint64_t replays_refused; /* answered with DYN_EREPLAY / DYN_ESTALE */
	uint64_t role_refused;    /* answered with DYN_EROLE */
	uint64_t rx_bytes; /* request bytes received (all messages) */
	uint64_t tx_bytes; /* reply bytes sent */
};

struct server;

int server_start(const struct server_opts *o, struct server **out);
/* The address actually listened on (port 0 resolved); valid until
 * server_stop. */
const char *server_addr(const struct server *s);
void server_stats(const struct server *s, struct server_stats *out);
/* Stop taking requests, let the ones in flight finish and answer, close the
 * socket, free s.  NULL is fine. */
void server_stop(struct server *s);

#endif
