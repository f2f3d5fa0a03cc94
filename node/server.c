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
 * A slot (struct server_call) is one nng context and its aio, driven by
 * callbacks on nng's task queue: receive, serve, send, receive again.
 * Where a request is served, server_opts.route says: a quick one right
 * there in the callback; an asynchronous one starts there (a store
 * commit) and is answered by whoever finishes it (server_call_done, from
 * the store's writer); any other is queued for the worker threads, which
 * may block (on peers, on the store's commit) and then hand the reply to
 * the slot's aio and take the next.  So a quick or asynchronous request
 * costs no thread switch of ours, and a blocking one a handoff each way,
 * as before.
 *
 * A slot's state moves under the server's lock: RECV (a receive pending)
 * -> SERVE (a request taken: the reply will go out) -> SEND -> RECV, or
 * -> DONE once the server stops.  A stop closes the contexts of the slots
 * in RECV only (CLOSING until their callback ran), so every request taken
 * is answered first; a receive with no timeout costs no entry in nng's
 * expiry queue.
 */
enum slot_state { SLOT_RECV, SLOT_SERVE, SLOT_SEND, SLOT_CLOSING, SLOT_DONE };

struct server_call {
	struct server *srv;
	nng_ctx ctx;
	nng_aio *aio;
	bool ctx_open;
	bool close_me;         /* the stop closes its context */
	enum slot_state state; /* under srv->lock */
	nng_msg *msg;          /* the request being served */
	nng_pipe pipe;
	struct wire_msg req;   /* decoded from msg */
	struct buf reply;      /* reused between requests */
	struct server_call *next; /* in the worker queue */
	void (*cont)(void *);  /* queued by server_call_continue: run this */
	void *cont_arg;
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
	server_route_fn route;
	server_later_fn later;
	void *arg;
	char addr[160];
	unsigned nslots;
	struct server_call *slots;
	unsigned nthreads;
	pthread_t *threads;
	unsigned started; /* threads running */

	pthread_mutex_t lock; /* slot states, the queue, the counts below */
	pthread_cond_t work_cv; /* the queue has a request, or quit */
	pthread_cond_t idle_cv; /* serving dropped to 0 */
	struct server_call *head, *tail; /* requests for the workers */
	unsigned serving; /* slots in SERVE */
	bool stopping;
	bool quit; /* workers: leave once the queue is empty */

	atomic_uint_fast64_t requests;
	atomic_uint_fast64_t rejected;
	atomic_uint_fast64_t auth_failures;
	atomic_uint_fast64_t replays_refused;
	atomic_uint_fast64_t role_refused;
	atomic_uint_fast64_t rx_bytes;
	atomic_uint_fast64_t tx_bytes;
};

static void
slot_recv(struct server_call *sl)
{
	nng_aio_set_timeout(sl->aio, NNG_DURATION_INFINITE);
	nng_ctx_recv(sl->ctx, sl->aio);
}

/* The request is answered (msg sent) or dropped (msg NULL): the slot
 * leaves SERVE. */
static void
slot_finish(struct server_call *sl, nng_msg *msg)
{
	struct server *s = sl->srv;
	sl->msg = NULL;
	pthread_mutex_lock(&s->lock);
	sl->state = msg ? SLOT_SEND : SLOT_RECV;
	bool stop = !msg && s->stopping;
	if (stop)
		sl->state = SLOT_DONE;
	if (--s->serving == 0)
		pthread_cond_broadcast(&s->idle_cv);
	pthread_mutex_unlock(&s->lock);
	if (msg) {
		nng_aio_set_msg(sl->aio, msg);
		nng_aio_set_timeout(sl->aio, NNG_DURATION_DEFAULT);
		nng_ctx_send(sl->ctx, sl->aio);
		return;
	}
	guard_pipe_done(s->guard, sl->pipe);
	if (!stop)
		slot_recv(sl);
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
reject(struct server_call *sl, int rc)
{
	struct server *s = sl->srv;
	nng_msg *msg = sl->msg;
	atomic_fetch_add(&s->rejected, 1);
	if (rc != DYN_EAUTH) {
		LOG_DEBUG("dropped a message: %s", dyn_strerror(rc));
		nng_msg_free(msg);
		slot_finish(sl, NULL);
		return;
	}
	atomic_fetch_add(&s->auth_failures, 1);
	guard_reject(s->guard, sl->pipe, "bad tag: wrong cluster key?");
	uint8_t no[REFUSAL_LEN];
	refusal_encode(no);
	nng_msg_clear(msg);
	if (nng_msg_append(msg, no, sizeof(no)) != 0) {
		nng_msg_free(msg);
		msg = NULL;
	}
	slot_finish(sl, msg);
}

/* Send the reply built in sl->reply (unless rc says it is not to be
 * sent), in the request's message. */
static void
reply(struct server_call *sl, int rc)
{
	struct server *s = sl->srv;
	nng_msg *msg = sl->msg;
	if (rc == SERVER_DROP)
		goto drop;
	if (rc != SERVER_SEALED) {
		if (rc < 0 && sl->reply.len == 0)
			build_error(&sl->reply, sl->req.reqid, rc);
		if (buf_err(&sl->reply) != 0)
			build_error(&sl->reply, sl->req.reqid,
			    buf_err(&sl->reply));
		if (wire_seal_as(&sl->reply, &s->keys, sl->req.role) != 0) {
			LOG_WARN("sealing a reply: %s",
			    dyn_strerror(buf_err(&sl->reply)));
			goto drop;
		}
	}
	nng_msg_clear(msg);
	if (nng_msg_append(msg, sl->reply.data, sl->reply.len) != 0)
		goto drop;
	atomic_fetch_add(&s->requests, 1);
	atomic_fetch_add(&s->tx_bytes, sl->reply.len);
	slot_finish(sl, msg);
	return;
drop:
	nng_msg_free(msg);
	slot_finish(sl, NULL);
}

void
server_call_done(struct server_call *call, int rc)
{
	reply(call, rc);
}

static void
serve(struct server_call *sl)
{
	struct server *s = sl->srv;
	if (sl->cont) {
		void (*fn)(void *) = sl->cont;
		sl->cont = NULL;
		fn(sl->cont_arg); /* it calls server_call_done */
		return;
	}
	reply(sl, s->handler(s->arg, &sl->req, &sl->reply));
}

/* For a worker. */
static void
enqueue(struct server *s, struct server_call *sl)
{
	pthread_mutex_lock(&s->lock);
	sl->next = NULL;
	if (s->tail)
		s->tail->next = sl;
	else
		s->head = sl;
	s->tail = sl;
	pthread_cond_signal(&s->work_cv);
	pthread_mutex_unlock(&s->lock);
}

void
server_call_continue(struct server_call *call, void (*fn)(void *), void *arg)
{
	call->cont = fn;
	call->cont_arg = arg;
	enqueue(call->srv, call);
}

/* A request arrived in sl->msg: checked here, then served here when it is
 * quick, else queued for a worker. */
static void
received(struct server_call *sl)
{
	struct server *s = sl->srv;
	nng_msg *msg = sl->msg;
	sl->pipe = nng_msg_get_pipe(msg);
	guard_pipe_busy(s->guard, sl->pipe);
	atomic_fetch_add(&s->rx_bytes, nng_msg_len(msg));
	int rc = wire_decode(&s->keys, nng_msg_body(msg), nng_msg_len(msg),
	    &sl->req);
	if (rc != 0) {
		reject(sl, rc);
		return;
	}
	guard_pipe_trust(s->guard, sl->pipe);
	buf_reset(&sl->reply);
	if ((rc = admit(s, &sl->req, sl->pipe)) != 0) {
		reply(sl, rc);
		return;
	}
	enum server_route route = s->route ? s->route(s->arg, &sl->req)
	                                   : SERVER_WORKER;
	if (route == SERVER_QUICK) {
		serve(sl);
		return;
	}
	if (route == SERVER_ASYNC && s->later) {
		rc = s->later(s->arg, &sl->req, &sl->reply, sl);
		if (rc == SERVER_LATER)
			return;
		if (rc != SERVER_DEFER) {
			reply(sl, rc);
			return;
		}
		buf_reset(&sl->reply);
	}
	enqueue(s, sl);
}

static void
slot_cb(void *arg)
{
	struct server_call *sl = arg;
	struct server *s = sl->srv;
	int rv = nng_aio_result(sl->aio);

	pthread_mutex_lock(&s->lock);
	enum slot_state st = sl->state;
	switch (st) {
	case SLOT_RECV:
		if (rv == 0) {
			sl->state = SLOT_SERVE;
			s->serving++;
		} else if (rv == NNG_ECLOSED || rv == NNG_ECANCELED ||
		           s->stopping) {
			sl->state = SLOT_DONE;
		}
		break;
	case SLOT_SEND:
		sl->state = s->stopping ? SLOT_DONE : SLOT_RECV;
		break;
	default: /* CLOSING: the stop closed the context */
		sl->state = SLOT_DONE;
		break;
	}
	enum slot_state now = sl->state;
	pthread_mutex_unlock(&s->lock);

	switch (st) {
	case SLOT_RECV:
		if (now == SLOT_SERVE) {
			sl->msg = nng_aio_get_msg(sl->aio);
			received(sl);
		} else if (now == SLOT_RECV) {
			LOG_WARN("receive: %s", nng_strerror(rv));
			slot_recv(sl);
		}
		break;
	case SLOT_SEND:
		if (rv != 0)
			nng_msg_free(nng_aio_get_msg(sl->aio));
		guard_pipe_done(s->guard, sl->pipe);
		if (now == SLOT_RECV)
			slot_recv(sl);
		break;
	default:
		if (rv == 0) /* a request taken just as the stop came */
			nng_msg_free(nng_aio_get_msg(sl->aio));
		break;
	}
}

static void *
worker_main(void *arg)
{
	struct server *s = arg;
	pthread_mutex_lock(&s->lock);
	for (;;) {
		while (!s->head && !s->quit)
			pthread_cond_wait(&s->work_cv, &s->lock);
		struct server_call *sl = s->head;
		if (!sl)
			break;
		if (!(s->head = sl->next))
			s->tail = NULL;
		pthread_mutex_unlock(&s->lock);
		serve(sl);
		pthread_mutex_lock(&s->lock);
	}
	pthread_mutex_unlock(&s->lock);
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
	s->route = o->route;
	s->later = o->later;
	s->arg = o->arg;
	s->nslots = o->workers ? o->workers : 64;
	s->nthreads = s->nslots;
	pthread_mutex_init(&s->lock, NULL);
	pthread_cond_init(&s->work_cv, NULL);
	pthread_cond_init(&s->idle_cv, NULL);
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
		.workers = s->nslots,
	};
	if ((rc = guard_new(s->sock, &go, &s->guard)) != 0)
		goto fail;

	s->slots = mem_calloc(s->nslots, sizeof(*s->slots));
	s->threads = mem_calloc(s->nthreads, sizeof(*s->threads));
	if (!s->slots || !s->threads) {
		rc = -ENOMEM;
		goto fail;
	}
	for (unsigned i = 0; i < s->nslots; i++) {
		struct server_call *sl = &s->slots[i];
		sl->srv = s;
		sl->state = SLOT_DONE; /* until its first receive */
		buf_init(&sl->reply);
		if ((rv = nng_ctx_open(&sl->ctx, s->sock)) != 0) {
			rc = err_from_nng(rv);
			goto fail;
		}
		sl->ctx_open = true;
		if ((rv = nng_aio_alloc(&sl->aio, slot_cb, sl)) != 0) {
			rc = err_from_nng(rv);
			goto fail;
		}
	}
	for (; s->started < s->nthreads; s->started++)
		if ((rc = -pthread_create(&s->threads[s->started], NULL,
		         worker_main, s)))
			goto fail;
	if ((rc = listen_on(s, o->listen, o->tls)) != 0)
		goto fail;
	for (unsigned i = 0; i < s->nslots; i++) {
		struct server_call *sl = &s->slots[i];
		sl->state = SLOT_RECV;
		slot_recv(sl);
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
	/* No new connections; requests already taken are answered first. */
	if (s->sock_open)
		nng_listener_close(s->listener);
	pthread_mutex_lock(&s->lock);
	s->stopping = true;
	for (unsigned i = 0; s->slots && i < s->nslots; i++)
		if ((s->slots[i].close_me = s->slots[i].state == SLOT_RECV))
			s->slots[i].state = SLOT_CLOSING;
	pthread_mutex_unlock(&s->lock);
	/* Closing a context ends its receive (the callback sees CLOSING). */
	for (unsigned i = 0; s->slots && i < s->nslots; i++) {
		struct server_call *sl = &s->slots[i];
		if (sl->close_me && sl->ctx_open) {
			nng_ctx_close(sl->ctx);
			sl->ctx_open = false;
		}
	}
	pthread_mutex_lock(&s->lock);
	while (s->serving > 0)
		pthread_cond_wait(&s->idle_cv, &s->lock);
	s->quit = true;
	pthread_cond_broadcast(&s->work_cv);
	pthread_mutex_unlock(&s->lock);
	for (unsigned i = 0; i < s->started; i++)
		pthread_join(s->threads[i], NULL);
	/* Replies still going out are cut short; no callback runs after. */
	for (unsigned i = 0; s->slots && i < s->nslots; i++)
		if (s->slots[i].aio)
			nng_aio_stop(s->slots[i].aio);

	guard_stopping(s->guard);
	bool closed = !s->sock_open || rpc_socket_close(s->sock, 500);
	if (!closed)
		LOG_WARN("closing the listening socket took over 500 ms: "
		    "left to the exit");
	/* nng may still call the guard's pipe notifications while the
	 * close goes on: then the guard is left to the exit too. */
	if (closed)
		guard_free(s->guard);
	for (unsigned i = 0; s->slots && i < s->nslots; i++) {
		struct server_call *sl = &s->slots[i];
		if (sl->aio)
			nng_aio_free(sl->aio);
		buf_fini(&sl->reply);
	}
	mem_free(s->slots);
	mem_free(s->threads);
	replay_free(s->replay);
	pthread_cond_destroy(&s->work_cv);
	pthread_cond_destroy(&s->idle_cv);
	pthread_mutex_destroy(&s->lock);
	OPENSSL_cleanse(&s->keys, sizeof(s->keys));
	mem_free(s);
}
