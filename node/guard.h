/*
 * guard — the caps and timers of a node's listening socket, so that a
 * peer without the cluster key costs the node little: a cap on open
 * connections (one over it is closed as it arrives), an idle timeout (a
 * reaper thread closes a connection that has delivered no complete
 * request for that long, which is also how a connection stalled in the
 * middle of a message ends: it never delivered), and the rejected peers
 * logged, rate-limited, with their address and the reason.
 *
 * It owns a table of the socket's open pipes (nng's pipe notifications
 * fill it) and the reaper thread; it does not own the socket, and it does
 * not read messages: the server tells it when a pipe delivered a request
 * (guard_pipe_busy) and when its answer went out (guard_pipe_done).  The
 * cap on a message's size is nng's NNG_OPT_RECVMAXSZ (server.c sets it):
 * nng closes the pipe of a message declared over it before buffering any
 * of it, and the guard tells that close from others (guard.c).
 */
#ifndef DYN_GUARD_H
#define DYN_GUARD_H

#include <stdbool.h>
#include <stdint.h>

#include <nng/nng.h>

#define GUARD_MAX_CONNS 4096  /* --max-connections default */
#define GUARD_IDLE_MS   60000 /* --idle-timeout default */

struct guard_opts {
	unsigned max_conns; /* 0: GUARD_MAX_CONNS */
	int idle_ms;        /* 0: GUARD_IDLE_MS */
	unsigned workers;   /* the server's (0: no saturation check) */
};

struct guard_stats {
	uint64_t conns;         /* open now */
	uint64_t conns_total;   /* accepted since the start */
	uint64_t conns_refused; /* closed on arrival: over the cap */
	uint64_t idle_closed;   /* closed by the reaper */
	uint64_t oversize;      /* closed by nng: a message over the cap */
	uint64_t bad_tags;      /* guard_reject calls (refused requests) */
};

struct guard;

/* Watch sock's pipes (registers its pipe notifications: call before the
 * socket listens) and start the reaper.  *out until guard_free. */
int guard_new(nng_socket sock, const struct guard_opts *o,
    struct guard **out);
/* A complete request arrived on pipe (nng_msg_get_pipe) and is being
 * served: the pipe is not idle until guard_pipe_done.  A request nng has
 * read but no worker has taken yet is not seen, so while every worker is
 * busy (one may be waiting) the reaper spares the pipes that spoke with
 * the key: closing one under a waiting request would make the asker's nng
 * send it again, which the node refuses as a replay (and the client tries
 * again, sealed anew: a round trip lost). */
void guard_pipe_busy(struct guard *g, nng_pipe pipe);
void guard_pipe_done(struct guard *g, nng_pipe pipe);
/* A request from pipe authenticated: when it is closed idle, the line
 * goes to the debug level (a quiet peer is no news). */
void guard_pipe_trust(struct guard *g, nng_pipe pipe);
/* A request from pipe was refused (why: "bad tag: wrong cluster key?"):
 * counted, and logged with the peer's address.  Every rejection's line
 * (this, the cap, idle, over max-request) is written at most once per
 * address and reason per 10 s (log_limited), with a count of those held
 * back. */
void guard_reject(struct guard *g, nng_pipe pipe, const char *why);
/* The same line for a request that checked but was refused (its role's,
 * a replay: the server counts those itself), not counted here. */
void guard_log_refused(struct guard *g, nng_pipe pipe, const char *why);
void guard_stats(struct guard *g, struct guard_stats *out);
/* The socket is closing: pipe events from now on only forget pipes. */
void guard_stopping(struct guard *g);
/* Stop the reaper and free g, once the socket is closed (nng calls the
 * pipe notifications until then).  NULL is fine. */
void guard_free(struct guard *g);

#endif
