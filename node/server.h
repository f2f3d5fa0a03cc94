/*
 * server — a node's RPC front: one nng rep0 socket with `workers` contexts,
 * so up to that many requests are in flight at once, each driven by its
 * aio's callbacks on nng's task queue.  A request received is checked
 * there with wire_decode (a message that fails is counted: one with a bad
 * tag gets the unsigned refusal of common/refusal.h and is logged,
 * rate-limited; garbage or another version is dropped without a reply)
 * and admitted (role, replay); then a quick one (server_opts.quick says
 * so: it never blocks) is served in that callback, and any other is
 * queued for a pool of `workers` threads, whose handlers may block (on
 * the store's group commit, on peers).  The reply the handler built is
 * sealed and sent.  The connections themselves are capped and timed by
 * the guard (guard.h).
 *
 * The server does not own the handler's state; it never frees it.
 */
#ifndef DYN_SERVER_H
#define DYN_SERVER_H

#include <stdbool.h>
#include <stdint.h>

#include <nng/nng.h>
#include <nng/supplemental/tls/tls.h>

#include "auth.h"
#include "buf.h"
#include "guard.h"
#include "wire.h"

/*
 * --max-request default: the longest request a node accepts (nng closes
 * the connection of a longer one before buffering it).  The longest a
 * client sends is a put of one value (WIRE_MAX_VALUE, 8 MiB) with its key
 * and contexts, well under 9 MiB; the mount's chunks are values too
 * (FSOBJ_CHUNK_MAX, 8 MiB).  Node to node, a replicate or a hint carries
 * a key's whole record, which holds one live version, or a few while
 * concurrent writes are siblings; anti-entropy's merges (AE_BATCH_BYTES,
 * 4 MiB) and transfers (XFER_BATCH_BYTES, 1 MiB, and transfer records
 * come in replies) are batched smaller, with one larger record alone.  So
 * three full-size versions and a MiB for keys, clocks and headers: a
 * record of four 8 MiB siblings is refused (DYN_ETOOBIG at the sender,
 * rpc_pool_set_max_request) rather than sent.  Replies are not capped by
 * this (a get may answer every sibling).
 */
#define SERVER_MAX_REQUEST (3 * (size_t)WIRE_MAX_VALUE + (1u << 20))

/* Build the reply to req in reply (wire_begin and fields; the server
 * seals it).  A negative return with an empty reply sends a WIRE_ERROR
 * carrying it; SERVER_DROP sends nothing (as if the request was lost);
 * SERVER_SEALED sends the reply as it is (one relayed from another node,
 * sealed there under the request's role). */
#define SERVER_DROP   1
#define SERVER_SEALED 2
typedef int (*server_handler_fn)(void *arg, const struct wire_msg *req,
    struct buf *reply);

/*
 * Where req is served (server_route_fn):
 *   SERVER_WORKER  by the handler, in a worker thread (it may block);
 *   SERVER_QUICK   by the handler, in nng's callback: only for a handler
 *                  that never blocks (no peer call, no wait for a commit);
 *   SERVER_ASYNC   by `later`, in nng's callback: it must not block
 *                  either, and it may return SERVER_LATER, having started
 *                  something (a store commit) that calls server_call_done
 *                  when the reply is built, or SERVER_DEFER, when it
 *                  finds the request may block after all: then a worker
 *                  serves it with the handler; any other return is as
 *                  the handler's.
 */
enum server_route { SERVER_WORKER, SERVER_QUICK, SERVER_ASYNC };
typedef enum server_route (*server_route_fn)(void *arg,
    const struct wire_msg *req);
#define SERVER_LATER 3
#define SERVER_DEFER 4
struct server_call; /* a request being served, until server_call_done */
typedef int (*server_later_fn)(void *arg, const struct wire_msg *req,
    struct buf *reply, struct server_call *call);
/* Answer call's request with the reply built in the buf `later` was given
 * (rc as a handler's return).  From any thread; once per SERVER_LATER; req
 * and that buf stay valid until it. */
void server_call_done(struct server_call *call, int rc);
/* Instead, go on in a worker: fn(arg) runs there (it may block) and
 * calls server_call_done.  From any thread, once per SERVER_LATER. */
void server_call_continue(struct server_call *call, void (*fn)(void *),
    void *arg);

struct server_opts {
	const char *listen; /* tcp://HOST:PORT; port 0 picks a free one */
	nng_tls_config *tls; /* server mode: listen on tls+tcp:// at the
	                        same address (rpc_tls_url); NULL: plain */
	const struct auth_keys *keys;
	uint64_t replay_window_ms; /* message time window (0: 120 s) */
	unsigned workers; /* 0: 64 */
	size_t max_request; /* bytes (0: SERVER_MAX_REQUEST) */
	unsigned max_conns; /* open connections (0: GUARD_MAX_CONNS) */
	int idle_ms;        /* idle timeout (0: GUARD_IDLE_MS) */
	server_handler_fn handler;
	server_route_fn route; /* NULL: every request goes to a worker */
	server_later_fn later; /* for SERVER_ASYNC */
	void *arg;
};

struct server_stats {
	uint64_t requests; /* answered */
	uint64_t rejected; /* not served: malformed, bad tag, other version */
	uint64_t auth_failures; /* of which: bad or missing tag (refused) */
	uint64_t replays_refused; /* answered with DYN_EREPLAY / DYN_ESTALE */
	uint64_t role_refused;    /* answered with DYN_EROLE */
	uint64_t rx_bytes; /* request bytes received (all messages) */
	uint64_t tx_bytes; /* reply bytes sent */
	struct guard_stats guard; /* connections */
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
