#include "server.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include <nng/nng.h>
#include <openssl/crypto.h>
#include <nng/protocol/reqrep0/rep.h>

#include "err.h"
#include "guard.h"
#include "log.h"
#include "mem.h"
#include "refusal.h"
#include "replay.h"
#include "rpc.h"

#define REPLAY_WINDOW_MS 120000 /* default: wider than NTP's worst skew */
#define REPLAY_SENDERS   65536  /* senders heard within one window */

/*
 * A worker waits for a request with no timeout: a receive with a timeout
 * is an entry in nng's expiry queue, and 64 workers polling every 200 ms
 * kept each node's expiry thread busy (13% of a core with nothing to do).
 * A stop closes the context of every worker that is waiting, which ends
 * its receive; a worker serving a request finishes it, sends the reply and
 * then sees the stop.  The lock orders the two.
 */
struct worker {
	struct server *srv;
	nng_ctx ctx;
	nng_aio *aio;
	pthread_t thread;
	bool started;
	bool ctx_open;
	pthread_mutex_t lock;
	bool busy; /* serving a request: its context stays open */
	struct buf reply; /* reused between requests */
};

struct server {
	nng_socket sock;
	nng_listener listener;
	bool sock_open;
	struct auth_keys keys;
	struct replay *replay;
	struct guard *guard; /* connection caps and timers (guard.h) */
	size_t max_request;
	server_handler_fn handler;
	void *arg;
	char addr[160];
	unsigned nworkers;
	struct worker *workers;
	atomic_bool stopping;
	atomic_uint_fast64_t requests;
	atomic_uint_fast64_t rejected;
	atomic_uint_fast64_t auth_failures;
	atomic_uint_fast64_t replays_refused;
	atomic_uint_fast64_t role_refused;
	atomic_uint_fast64_t rx_bytes;
	atomic_uint_fast64_t tx_bytes;
};

static void
send_reply(struct worker *w, nng_msg *msg)
{
	nng_aio_set_msg(w->aio, msg);
	nng_aio_set_timeout(w->aio, NNG_DURATION_DEFAULT);
	nng_ctx_send(w->ctx, w->aio);
	nng_aio_wait(w->aio);
	if (nng_aio_result(w->aio) != 0)
		nng_msg_free(msg);
}

static void
build_error(struct buf *b, uint64_t reqid, int err)
{
	buf_reset(b);
	wire_begin(b, WIRE_ERROR, 0, reqid);
	wire_put_u32(b, F_STATUS, (uint32_t)err);
	wire_put_str(b, F_ERRMSG, dyn_strerror(err));
}

/* May req be served?  0, or the error to answer with.  Its tag is good:
 * the asker holds the role's key, so the refusal is its to read. */
static int
admit(struct server *s, const struct wire_msg *req, nng_pipe pipe)
{
	char why[96];
	int rc = 0;
	if (!wire_role_may(req->role, req->type)) {
		atomic_fetch_add(&s->role_refused, 1);
		rc = DYN_EROLE;
	} else if ((rc = replay_check(s->replay, req->sender, req->seq,
	                req->time_ms, wire_clock_ms())) != 0) {
		atomic_fetch_add(&s->replays_refused, 1);
	}
	if (rc != 0) {
		snprintf(why, sizeof(why), "type %u from a %s credential: %s",
		    req->type, auth_role_name(req->role),
		    rc == -EBUSY ? "too many senders"
		    : rc == DYN_EROLE ? "not its role's" : dyn_strerror(rc));
		guard_log_refused(s->guard, pipe, why);
	}
	return rc;
}

/* A request whose tag does not check gets the unsigned refusal, so its
 * sender sees "wrong cluster key?" instead of a timeout; anything else
 * that does not decode is dropped unanswered. */
static void
reject(struct worker *w, nng_msg *msg, int rc)
{
	struct server *s = w->srv;
	atomic_fetch_add(&s->rejected, 1);
	if (rc != DYN_EAUTH) {
		LOG_DEBUG("dropped a message: %s", dyn_strerror(rc));
		nng_msg_free(msg);
		return;
	}
	atomic_fetch_add(&s->auth_failures, 1);
	guard_reject(s->guard, nng_msg_get_pipe(msg),
	    "bad tag: wrong cluster key?");
	uint8_t no[REFUSAL_LEN];
	refusal_encode(no);
	nng_msg_clear(msg);
	if (nng_msg_append(msg, no, sizeof(no)) != 0) {
		nng_msg_free(msg);
		return;
	}
	send_reply(w, msg);
}

static void
serve_one(struct worker *w, nng_msg *msg)
{
	struct server *s = w->srv;
	struct wire_msg req;
	atomic_fetch_add(&s->rx_bytes, nng_msg_len(msg));
	int rc = wire_decode(&s->keys, nng_msg_body(msg), nng_msg_len(msg),
	    &req);
	if (rc != 0) {
		reject(w, msg, rc);
		return;
	}
	guard_pipe_trust(s->guard, nng_msg_get_pipe(msg));

	buf_reset(&w->reply);
	if ((rc = admit(s, &req, nng_msg_get_pipe(msg))) == 0)
		rc = s->handler(s->arg, &req, &w->reply);
	if (rc == SERVER_DROP) {
		nng_msg_free(msg);
		return;
	}
	if (rc != SERVER_SEALED) {
		if (rc < 0 && w->reply.len == 0)
			build_error(&w->reply, req.reqid, rc);
		if (buf_err(&w->reply) != 0)
			build_error(&w->reply, req.reqid, buf_err(&w->reply));
		if (wire_seal_as(&w->reply, &s->keys, req.role) != 0) {
			LOG_WARN("sealing a reply: %s",
			    dyn_strerror(buf_err(&w->reply)));
			nng_msg_free(msg);
			return;
		}
	}

	nng_msg_clear(msg);
	if (nng_msg_append(msg, w->reply.data, w->reply.len) != 0) {
		nng_msg_free(msg);
		return;
	}
	atomic_fetch_add(&s->requests, 1);
	atomic_fetch_add(&s->tx_bytes, w->reply.len);
	send_reply(w, msg);
}

static void *
worker_main(void *arg)
{
	struct worker *w = arg;
	struct server *s = w->srv;

	for (;;) {
		nng_aio_set_timeout(w->aio, NNG_DURATION_INFINITE);
		nng_ctx_recv(w->ctx, w->aio);
		nng_aio_wait(w->aio);
		int rv = nng_aio_result(w->aio);
		if (rv == NNG_ECLOSED)
			break;
		if (rv != 0) {
			LOG_WARN("receive: %s", nng_strerror(rv));
			continue;
		}
		pthread_mutex_lock(&w->lock);
		w->busy = true;
		pthread_mutex_unlock(&w->lock);
		nng_msg *msg = nng_aio_get_msg(w->aio);
		nng_pipe pipe = nng_msg_get_pipe(msg);
		guard_pipe_busy(s->guard, pipe);
		serve_one(w, msg);
		guard_pipe_done(s->guard, pipe);
		pthread_mutex_lock(&w->lock);
		w->busy = false;
		bool stop = atomic_load(&s->stopping);
		pthread_mutex_unlock(&w->lock);
		if (stop)
			break;
	}
	return NULL;
}

/* Listen on url, over TLS when tls is set (server_addr still reports
 * url: peers dial it as the TLS URL). */
static int
listen_on(struct server *s, const char *url, nng_tls_config *tls)
{
	char tu[sizeof(s->addr)];
	int rv = 0;
	if (tls && rpc_tls_url(url, tu, sizeof(tu)) != 0)
		rv = NNG_EADDRINVAL;
	if (rv == 0)
		rv = nng_listener_create(&s->listener, s->sock,
		    tls ? tu : url);
	if (rv == 0 && tls)
		rv = nng_listener_set_ptr(s->listener, NNG_OPT_TLS_CONFIG, tls);
	if (rv == 0)
		rv = nng_listener_set_size(s->listener, NNG_OPT_RECVMAXSZ,
		    s->max_request);
	if (rv == 0)
		rv = nng_listener_start(s->listener, 0);
	if (rv != 0) {
		LOG_ERROR("listen on %s: %s", url, nng_strerror(rv));
		return err_from_nng(rv);
	}

	/* Report the real port when the caller asked for port 0. */
	snprintf(s->addr, sizeof(s->addr), "%s", url);
	int port = 0;
	char *colon = strrchr(s->addr, ':');
	if (colon && nng_listener_get_int(s->listener, NNG_OPT_TCP_BOUND_PORT,
	                 &port) == 0)
		snprintf(colon + 1, sizeof(s->addr) - (size_t)(colon + 1 - s->addr),
		    "%d", port);
	return 0;
}

int
server_start(const struct server_opts *o, struct server **out)
{
	int rc;
	struct server *s = mem_calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->keys = *o->keys;
	s->handler = o->handler;
	s->arg = o->arg;
	s->nworkers = o->workers ? o->workers : 64;
	if ((rc = replay_new(o->replay_window_ms ? o->replay_window_ms
	                                         : REPLAY_WINDOW_MS,
	         REPLAY_SENDERS, &s->replay)) != 0)
		goto fail;
	s->max_request = o->max_request ? o->max_request : SERVER_MAX_REQUEST;

	int rv = nng_rep0_open(&s->sock);
	if (rv != 0) {
		rc = err_from_nng(rv);
		goto fail;
	}
	s->sock_open = true;
	/* nng closes the connection of a message declared over this as
	 * soon as its length arrives, before buffering any of it. */
	nng_socket_set_size(s->sock, NNG_OPT_RECVMAXSZ, s->max_request);
	struct guard_opts go = {
		.max_conns = o->max_conns,
		.idle_ms = o->idle_ms,
		.workers = s->nworkers,
	};
	if ((rc = guard_new(s->sock, &go, &s->guard)) != 0)
		goto fail;

	s->workers = mem_calloc(s->nworkers, sizeof(*s->workers));
	if (!s->workers) {
		rc = -ENOMEM;
		goto fail;
	}
	for (unsigned i = 0; i < s->nworkers; i++) {
		struct worker *w = &s->workers[i];
		w->srv = s;
		buf_init(&w->reply);
		pthread_mutex_init(&w->lock, NULL);
		if ((rv = nng_ctx_open(&w->ctx, s->sock)) != 0) {
			rc = err_from_nng(rv);
			goto fail;
		}
		w->ctx_open = true;
		if ((rv = nng_aio_alloc(&w->aio, NULL, NULL)) != 0) {
			rc = err_from_nng(rv);
			goto fail;
		}
	}
	if ((rc = listen_on(s, o->listen, o->tls)) != 0)
		goto fail;
	for (unsigned i = 0; i < s->nworkers; i++) {
		struct worker *w = &s->workers[i];
		if ((rc = -pthread_create(&w->thread, NULL, worker_main, w)))
			goto fail;
		w->started = true;
	}
	*out = s;
	return 0;
fail:
	server_stop(s);
	return rc;
}

const char *
server_addr(const struct server *s)
{
	return s->addr;
}

void
server_stats(const struct server *s, struct server_stats *out)
{
	out->requests = atomic_load(&s->requests);
	out->rejected = atomic_load(&s->rejected);
	out->auth_failures = atomic_load(&s->auth_failures);
	out->replays_refused = atomic_load(&s->replays_refused);
	out->role_refused = atomic_load(&s->role_refused);
	out->rx_bytes = atomic_load(&s->rx_bytes);
	out->tx_bytes = atomic_load(&s->tx_bytes);
	guard_stats(s->guard, &out->guard);
}

void
server_stop(struct server *s)
{
	if (!s)
		return;
	/* No new connections; requests already received finish below. */
	if (s->sock_open)
		nng_listener_close(s->listener);
	/* A worker reads the flag under its lock when it is done serving,
	 * so either it sees the stop there, or it is back waiting when we
	 * take the lock and its context is closed here. */
	atomic_store(&s->stopping, true);
	for (unsigned i = 0; s->workers && i < s->nworkers; i++) {
		struct worker *w = &s->workers[i];
		pthread_mutex_lock(&w->lock);
		if (!w->busy && w->ctx_open) {
			nng_ctx_close(w->ctx); /* ends the receive */
			w->ctx_open = false;
		}
		pthread_mutex_unlock(&w->lock);
	}
	for (unsigned i = 0; s->workers && i < s->nworkers; i++) {
		struct worker *w = &s->workers[i];
		if (w->started)
			pthread_join(w->thread, NULL);
	}
	guard_stopping(s->guard);
	bool closed = !s->sock_open || rpc_socket_close(s->sock, 500);
	if (!closed)
		LOG_WARN("closing the listening socket took over 500 ms: "
		    "left to the exit");
	/* nng may still call the guard's pipe notifications while the
	 * close goes on: then the guard is left to the exit too. */
	if (closed)
		guard_free(s->guard);
	for (unsigned i = 0; s->workers && i < s->nworkers; i++) {
		struct worker *w = &s->workers[i];
		nng_aio_free(w->aio);
		buf_fini(&w->reply);
		pthread_mutex_destroy(&w->lock);
	}
	mem_free(s->workers);
	replay_free(s->replay);
	OPENSSL_cleanse(&s->keys, sizeof(s->keys));
	mem_free(s);
}
