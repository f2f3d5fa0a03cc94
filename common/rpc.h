/*
 * rpc — request/reply with other processes over nng, for the client library
 * and for nodes talking to nodes.
 *
 * A pool keeps one nng req socket per peer address, dialled in the
 * background and redialled when the peer comes back; a call opens its own
 * nng context on it, so any number of threads may call at once.  Every
 * reply is checked with wire_decode (tag, bounds) and must carry the
 * request's id; a WIRE_ERROR reply becomes its status code.
 */
#ifndef DYN_RPC_H
#define DYN_RPC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <nng/nng.h>
#include <nng/supplemental/tls/tls.h>

#include "auth.h"
#include "buf.h"
#include "wire.h"

struct rpc_pool;

/* nng_close(sock), waiting at most ms for it: nng 1.5's close can wait
 * forever on a pipe that does not finish (seen at a node's stop under
 * load).  A close that takes longer goes on in a thread of its own, which
 * the process exit ends; false then. */
bool rpc_socket_close(nng_socket sock, int ms);

/* A received reply: m points into msg, which the reply owns. */
struct rpc_reply {
	int rc;    /* 0, or why there is no usable reply */
	void *msg; /* nng_msg; freed by rpc_reply_fini */
	struct wire_msg m;
};

int rpc_pool_new(const struct auth_keys *keys, struct rpc_pool **out);
/* Waits for the calls that callers left running (each ends at its
 * timeout at the latest), then closes every socket.  NULL is fine. */
void rpc_pool_free(struct rpc_pool *p);
/* Stopping: every call in flight ends now with DYN_ECLOSED (instead of
 * at its timeout, which a frozen peer makes the full one), and every
 * later call fails at once the same way.  Any thread, once. */
void rpc_pool_cancel(struct rpc_pool *p);

/* Requests longer than bytes fail at once with DYN_ETOOBIG instead of
 * being sent: a node sets its own --max-request, which its peers share,
 * since a peer closes the connection of a message over it (server.h).
 * 0 (the default): only WIRE_MAX_MSG. */
void rpc_pool_set_max_request(struct rpc_pool *p, size_t bytes);

/* Send the sealed request to addr and wait for the reply (timeout per
 * call).  Returns out->rc; out must be released with rpc_reply_fini
 * whatever the result. */
int rpc_call(struct rpc_pool *p, const char *addr, const struct buf *req,
    int timeout_ms, struct rpc_reply *out);
/* The same for a caller with other peers to try: it stops waiting
 * (DYN_ETIMEDOUT) as soon as the peer is suspect (rpc_peer_health), a few
 * hundred ms for a frozen one, instead of at the timeout.  The peer may
 * still act on the request later. */
int rpc_call_or_skip(struct rpc_pool *p, const char *addr,
    const struct buf *req, int timeout_ms, struct rpc_reply *out);

/*
 * Send the same request to n peers in parallel.  Returns when `need` of them
 * replied without error (and then waits at most grace_ms longer for the
 * others), when all have finished, or at the timeout; calls still in
 * flight are then abandoned (the peers may still act on the request).
 * out[i] is peer i's result (rc DYN_ETIMEDOUT when abandoned).  Returns the
 * number of successful replies.
 */
size_t rpc_call_many(struct rpc_pool *p, const char *const *addrs, size_t n,
    const struct buf *req, size_t need, int timeout_ms, int grace_ms,
    struct rpc_reply *out);

/* The same with a request of its own for each peer (reqs[i] to addrs[i]),
 * and no grace. */
size_t rpc_call_each(struct rpc_pool *p, const char *const *addrs, size_t n,
    const struct buf *reqs, size_t need, int timeout_ms,
    struct rpc_reply *out);

/* rpc_call_each in two halves, so the caller can work while the calls
 * are out: start them (NULL when out of memory: nothing was sent), then
 * wait for need successes (timeout counted from the start) and take the
 * n replies into out; the group is gone after. */
struct rpc_group;
struct rpc_group *rpc_start_each(struct rpc_pool *p,
    const char *const *addrs, size_t n, const struct buf *reqs,
    int timeout_ms);
size_t rpc_finish(struct rpc_group *g, size_t need, struct rpc_reply *out);

/*
 * The same calls without a wait, for a caller that must not block (nng's
 * callbacks): reqs[i * step] goes to addrs[i] (step 0: reqs[0] to all),
 * and enough(arg, out, n, ok) is called once: when need calls succeeded
 * and the others finished too or grace_ms passed (0: no grace), or when
 * every call finished (at timeout_ms at the latest).  out[i] is call i's
 * result as rpc_call_each gives it (DYN_ETIMEDOUT: still out, and left
 * running); enough only reads the replies, which stay the group's.  It
 * runs in one of nng's threads (or the grace's), or before rpc_call_async
 * returns when no call could be started or need is 0; never before every
 * call is out, so it may free addrs and reqs.  -ENOMEM: nothing was sent,
 * and enough is never called.  rpc_pool_free waits for every such group.
 */
typedef void (*rpc_done_fn)(void *arg, struct rpc_reply *out, size_t n,
    size_t ok);
int rpc_call_async(struct rpc_pool *p, const char *const *addrs, size_t n,
    const struct buf *reqs, size_t step, size_t need, int timeout_ms,
    int grace_ms, rpc_done_fn enough, void *arg);

void rpc_reply_fini(struct rpc_reply *r);

/*
 * Reachability, as the pool sees it.  A peer is gone while its connection
 * is down (nng's pipe events: a crashed process is noticed at once) or
 * while a test blocks it; suspect while calls to it wait with nothing
 * heard from it for a moment (a frozen or overloaded process: a ping then
 * asks), and after a call or ping to it timed out, until it answers again;
 * else OK.  A peer never contacted is OK.  Calls to a blocked peer fail at
 * once with DYN_EUNREACH; other calls are attempted whatever the state, so
 * a caller decides whom to skip (rpc_call_or_skip stops waiting for a
 * peer once it is suspect).
 */
enum rpc_health { RPC_PEER_OK, RPC_PEER_SUSPECT, RPC_PEER_GONE };
enum rpc_health rpc_peer_health(struct rpc_pool *p, const char *addr);
/* rpc_peer_health(...) == RPC_PEER_OK */
bool rpc_peer_usable(struct rpc_pool *p, const char *addr);
/* The name sent with this pool's pings (a node's: a peer cut off from it
 * by fault injection drops them, as its other requests). */
void rpc_pool_set_name(struct rpc_pool *p, const char *name);
/* Dial with TLS: every peer opened from now on is dialled at
 * rpc_tls_url(addr) with cfg (a client-mode config, cred.h's
 * cred_tls_config); the pool holds its own reference.  Call before the
 * first call. */
void rpc_pool_set_tls(struct rpc_pool *p, nng_tls_config *cfg);
/* The URL that carries addr over TLS: tcp://H:P becomes tls+tcp://H:P;
 * other URLs are copied.  -ENAMETOOLONG if it does not fit cap. */
int rpc_tls_url(const char *addr, char *out, size_t cap);
/* Why calls to addr get no answer, when TLS is the reason: with a pool
 * that dials over TLS and a peer it never connected to, one handshake
 * with addr (a stream of its own, nothing sent, within timeout_ms) that
 * fails on the certificates gives DYN_ETLS; anything else gives 0 (no
 * TLS, connected once, not reached, a handshake that worked).  nng's req
 * socket reports no failed dial: its calls only time out. */
int rpc_peer_tls_check(struct rpc_pool *p, const char *addr, int timeout_ms);
/* Fault injection: cut this process off from addr (or heal it). */
void rpc_peer_block(struct rpc_pool *p, const char *addr, bool blocked);
void rpc_unblock_all(struct rpc_pool *p);
/* The reply's raw bytes (to relay it as it came); valid until fini. */
void rpc_reply_bytes(const struct rpc_reply *r, const uint8_t **p,
    size_t *len);

#endif
