#include "rpc.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <nng/nng.h>
#include <nng/protocol/reqrep0/req.h>

#include "err.h"
#include "mem.h"
#include "mono.h"
#include "refusal.h"

/* What the pool knows of a peer's reachability. */
enum { PEER_UNKNOWN, PEER_UP, PEER_DOWN };

/*
 * The failure detector.  A peer that has had calls waiting SLOW_MS with
 * nothing at all heard from it meanwhile is unresponsive: new calls go
 * elsewhere, and a ping (the probe) asks whether it is alive.  A probe
 * unanswered in PROBE_MS, or a call that timed out, makes it suspect until
 * it answers again (the probe repeats every PROBE_EVERY_MS), and a caller
 * waiting on a suspect peer may stop waiting (rpc_call_or_skip).  So a
 * frozen peer costs about SLOW_MS + PROBE_MS once, not a timeout per
 * request.  Both waits grow with the peer's usual answer time, as TCP's
 * retransmission timeout does (srtt + 4 rttvar over its calls): a loaded
 * peer that answers slowly is not taken for a frozen one.
 */
#define SLOW_MS        100
#define PROBE_MS       150
#define PROBE_EVERY_MS 250
#define TICK_MS        25 /* how often a long wait looks at its peers */

enum { PROBE_SEND, PROBE_RECV };

struct peer {
	char *addr;
	nng_socket sock;
	atomic_int state;
	atomic_bool blocked;        /* fault injection */
	atomic_int inflight;        /* calls sent and not done */
	atomic_llong waiting_since; /* ms: when inflight last left 0 */
	atomic_llong heard_ms;      /* ms: the last reply from the peer */
	atomic_bool suspect;        /* until the peer answers again */
	atomic_int srtt_ms, rttvar_ms; /* answer time: smoothed, variation */
	atomic_bool probing;        /* the probe runs (probe_cb) */
	struct rpc_pool *pool;
	nng_aio *probe_aio;   /* the ping's send and receive */
	nng_aio *probe_sleep; /* the pause between pings: an aio of its own,
	                         since nng 1.5 reports an operation timing out
	                         on an aio that once slept as a success */
	nng_ctx probe_ctx;
	int probe_step;
	struct peer *left_next; /* on left_peers */
	struct slot *free; /* slots for the next calls (pool->lock) */
	size_t nfree;
};

/*
 * A request context of a peer's socket and its aio, kept for the next call
 * once a call on it got its answer: opening a context and reaping an aio
 * per call cost a wake-up of nng's reaper thread each.  Only a slot whose
 * call was answered is kept (after an error its context may be spent).
 */
struct slot {
	nng_ctx ctx;
	nng_aio *aio;
	struct call *c; /* the call it serves (call_cb's argument is the slot) */
	struct slot *next;
};
#define PEER_SLOTS_MAX 32

/* Peers whose socket close did not finish in time: nng may still call
 * pipe_event with them, so they are kept (reachable) until the exit. */
static pthread_mutex_t left_lock = PTHREAD_MUTEX_INITIALIZER;
static struct peer *left_peers;

struct call;

struct rpc_pool {
	struct auth_keys keys;
	pthread_mutex_t lock;
	struct peer **peers; /* each peer is its own allocation: pipe
	                        callbacks hold pointers to them */
	size_t n, cap;
	size_t detached;   /* calls left running by their caller */
	pthread_cond_t idle; /* detached went to 0 */
	struct call *active; /* every call started and not done */
	bool closed;         /* rpc_pool_cancel or _free ran: no new calls,
	                        no new pings */
	char from[64];       /* F_FROM of probes ("": none) */
	nng_tls_config *tls; /* NULL: plain tcp */
	atomic_size_t max_request; /* requests over it are not sent (0: any) */
	atomic_ullong probe_reqid;
	/* rpc_call_async's graces: the groups waiting out theirs, oldest
	 * first (all graces are alike, so also soonest first), and the one
	 * thread that ends them (started with the first). */
	pthread_mutex_t grace_lock;
	pthread_cond_t grace_cv;
	struct rpc_group *grace_head, *grace_tail;
	bool grace_thread, grace_stop;
	pthread_t grace_tid;
};

struct closer {
	nng_socket sock;
	pthread_mutex_t lock;
	pthread_cond_t cv;
	bool done, abandoned;
};

static void
closer_free(struct closer *c)
{
	pthread_cond_destroy(&c->cv);
	pthread_mutex_destroy(&c->lock);
	mem_free(c);
}

static void *
closer_main(void *arg)
{
	struct closer *c = arg;
	nng_close(c->sock);
	pthread_mutex_lock(&c->lock);
	c->done = true;
	bool abandoned = c->abandoned;
	pthread_cond_signal(&c->cv);
	pthread_mutex_unlock(&c->lock);
	if (abandoned)
		closer_free(c);
	return NULL;
}

bool
rpc_socket_close(nng_socket sock, int ms)
{
	struct closer *c = mem_calloc(1, sizeof(*c));
	pthread_t t;
	if (!c) {
		nng_close(sock);
		return true;
	}
	c->sock = sock;
	pthread_mutex_init(&c->lock, NULL);
	mono_cond_init(&c->cv);
	if (pthread_create(&t, NULL, closer_main, c) != 0) {
		closer_free(c);
		nng_close(sock);
		return true;
	}
	pthread_detach(t);
	struct timespec dl;
	mono_deadline(&dl, ms);
	pthread_mutex_lock(&c->lock);
	while (!c->done)
		if (pthread_cond_timedwait(&c->cv, &c->lock, &dl) == ETIMEDOUT)
			break;
	bool done = c->done;
	if (!done)
		c->abandoned = true; /* the closer frees it when it is done */
	pthread_mutex_unlock(&c->lock);
	if (done)
		closer_free(c);
	return done;
}

int
rpc_pool_new(const struct auth_keys *keys, struct rpc_pool **out)
{
	struct rpc_pool *p = mem_calloc(1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	p->keys = *keys;
	pthread_mutex_init(&p->lock, NULL);
	pthread_cond_init(&p->idle, NULL);
	pthread_mutex_init(&p->grace_lock, NULL);
	mono_cond_init(&p->grace_cv);
	*out = p;
	return 0;
}

void
rpc_pool_free(struct rpc_pool *p)
{
	if (!p)
		return;
	/* Calls still running touch their peer and socket until their aio
	 * finishes (at its timeout at the latest): closing the sockets under
	 * them races nng's own teardown.  Wait for them. */
	pthread_mutex_lock(&p->lock);
	while (p->detached > 0)
		pthread_cond_wait(&p->idle, &p->lock);
	p->closed = true; /* no probe starts again */
	pthread_mutex_unlock(&p->lock);
	/* Every async group is gone, so its grace list is empty. */
	pthread_mutex_lock(&p->grace_lock);
	p->grace_stop = true;
	pthread_cond_signal(&p->grace_cv);
	bool joined = p->grace_thread;
	pthread_mutex_unlock(&p->grace_lock);
	if (joined)
		pthread_join(p->grace_tid, NULL);
	for (size_t i = 0; i < p->n; i++) {
		struct peer *pe = p->peers[i];
		for (struct slot *sl = pe->free, *next; sl; sl = next) {
			next = sl->next;
			nng_aio_free(sl->aio); /* waits for its callback's end */
			nng_ctx_close(sl->ctx);
			mem_free(sl);
		}
		pe->free = NULL;
		pe->nfree = 0;
		nng_aio_stop(p->peers[i]->probe_sleep);
		nng_aio_stop(p->peers[i]->probe_aio);
		nng_aio_free(p->peers[i]->probe_sleep);
		nng_aio_free(p->peers[i]->probe_aio);
		nng_ctx_close(p->peers[i]->probe_ctx);
	}
	for (size_t i = 0; i < p->n; i++) {
		/* A close left running still calls pipe_event with the peer:
		 * then the peer is left to the exit too. */
		if (!rpc_socket_close(p->peers[i]->sock, 200)) {
			pthread_mutex_lock(&left_lock);
			p->peers[i]->left_next = left_peers;
			left_peers = p->peers[i];
			pthread_mutex_unlock(&left_lock);
			continue;
		}
		mem_free(p->peers[i]->addr);
		mem_free(p->peers[i]);
	}
	mem_free(p->peers);
	if (p->tls)
		nng_tls_config_free(p->tls);
	pthread_cond_destroy(&p->idle);
	pthread_mutex_destroy(&p->lock);
	pthread_cond_destroy(&p->grace_cv);
	pthread_mutex_destroy(&p->grace_lock);
	mem_free(p);
}

/* nng tells us when the connection to a peer comes and goes: the fastest
 * failure detector there is for a crashed process or a closed port. */
static void
pipe_event(nng_pipe pipe, nng_pipe_ev ev, void *arg)
{
	(void)pipe;
	struct peer *pe = arg;
	if (ev == NNG_PIPE_EV_ADD_POST) {
		atomic_store(&pe->state, PEER_UP);
		atomic_store(&pe->suspect, false);
	} else if (ev == NNG_PIPE_EV_REM_POST) {
		atomic_store(&pe->state, PEER_DOWN);
	}
}

static void probe_cb(void *arg);
static void probe_wake(void *arg);

int
rpc_tls_url(const char *addr, char *out, size_t cap)
{
	int n = strncmp(addr, "tcp://", 6) == 0
	            ? snprintf(out, cap, "tls+%s", addr)
	            : snprintf(out, cap, "%s", addr);
	return n < 0 || (size_t)n >= cap ? -ENAMETOOLONG : 0;
}

/* Start dialling addr in the background, over TLS when tls is set. */
static int
dial(nng_socket sock, const char *addr, nng_tls_config *tls)
{
	if (!tls)
		return nng_dial(sock, addr, NULL, NNG_FLAG_NONBLOCK);
	char url[512];
	if (rpc_tls_url(addr, url, sizeof(url)) != 0)
		return NNG_EADDRINVAL;
	nng_dialer d;
	int rv = nng_dialer_create(&d, sock, url);
	if (rv != 0)
		return rv;
	if ((rv = nng_dialer_set_ptr(d, NNG_OPT_TLS_CONFIG, tls)) == 0 &&
	    (rv = nng_dialer_set_size(d, NNG_OPT_RECVMAXSZ,
	         WIRE_MAX_MSG + 4096)) == 0 &&
	    (rv = nng_dialer_start(d, NNG_FLAG_NONBLOCK)) == 0)
		return 0;
	nng_dialer_close(d);
	return rv;
}

static int
peer_open(struct peer *pe, const char *addr)
{
	int rv = nng_req0_open(&pe->sock);
	if (rv != 0)
		return err_from_nng(rv);
	nng_socket_set_size(pe->sock, NNG_OPT_RECVMAXSZ, WIRE_MAX_MSG + 4096);
	nng_socket_set_ms(pe->sock, NNG_OPT_RECONNMINT, 50);
	nng_socket_set_ms(pe->sock, NNG_OPT_RECONNMAXT, 1000);
	/* Retries are the caller's (another node, a clear error). */
	nng_socket_set_ms(pe->sock, NNG_OPT_REQ_RESENDTIME,
	    NNG_DURATION_INFINITE);
	nng_pipe_notify(pe->sock, NNG_PIPE_EV_ADD_POST, pipe_event, pe);
	nng_pipe_notify(pe->sock, NNG_PIPE_EV_REM_POST, pipe_event, pe);
	/* Non-blocking: a peer that is down now is dialled again in the
	 * background, and calls to it time out instead of failing here. */
	rv = dial(pe->sock, addr, pe->pool->tls);
	if (rv == 0 && (rv = nng_ctx_open(&pe->probe_ctx, pe->sock)) == 0) {
		if ((rv = nng_aio_alloc(&pe->probe_aio, probe_cb, pe)) == 0 &&
		    (rv = nng_aio_alloc(&pe->probe_sleep, probe_wake, pe)) != 0)
			nng_aio_free(pe->probe_aio);
		if (rv != 0)
			nng_ctx_close(pe->probe_ctx);
	}
	if (rv != 0) {
		nng_close(pe->sock);
		return err_from_nng(rv);
	}
	return 0;
}

/* The peer for addr, opened on first use. */
static int
pool_peer(struct rpc_pool *p, const char *addr, struct peer **out)
{
	int rc = 0;
	pthread_mutex_lock(&p->lock);
	for (size_t i = 0; i < p->n; i++) {
		if (strcmp(p->peers[i]->addr, addr) == 0) {
			*out = p->peers[i];
			goto out;
		}
	}
	if (p->n == p->cap) {
		size_t cap = p->cap ? 2 * p->cap : 8;
		struct peer **np = mem_realloc(p->peers, cap * sizeof(*np));
		if (!np) {
			rc = -ENOMEM;
			goto out;
		}
		p->peers = np;
		p->cap = cap;
	}
	struct peer *pe = mem_calloc(1, sizeof(*pe));
	if (!pe || !(pe->addr = mem_dup(addr, strlen(addr) + 1))) {
		mem_free(pe);
		rc = -ENOMEM;
		goto out;
	}
	pe->pool = p;
	if ((rc = peer_open(pe, addr)) != 0) {
		mem_free(pe->addr);
		mem_free(pe);
		goto out;
	}
	p->peers[p->n++] = pe;
	*out = pe;
out:
	pthread_mutex_unlock(&p->lock);
	return rc;
}

void
rpc_pool_set_name(struct rpc_pool *p, const char *name)
{
	snprintf(p->from, sizeof(p->from), "%s", name);
}

void
rpc_pool_set_tls(struct rpc_pool *p, nng_tls_config *cfg)
{
	nng_tls_config_hold(cfg);
	pthread_mutex_lock(&p->lock);
	nng_tls_config *old = p->tls;
	p->tls = cfg;
	pthread_mutex_unlock(&p->lock);
	if (old)
		nng_tls_config_free(old);
}

void
rpc_pool_set_max_request(struct rpc_pool *p, size_t bytes)
{
	atomic_store(&p->max_request, bytes);
}

static bool
pool_closed(struct rpc_pool *p)
{
	pthread_mutex_lock(&p->lock);
	bool closed = p->closed;
	pthread_mutex_unlock(&p->lock);
	return closed;
}

static void call_check_closed(struct rpc_pool *p, nng_aio *aio);

/* floor, or the peer's usual answer time with its variation if longer. */
static int
peer_wait_ms(struct peer *pe, int floor)
{
	int rto = atomic_load(&pe->srtt_ms) + 4 * atomic_load(&pe->rttvar_ms);
	return rto > floor ? rto : floor;
}

/* A call answered after ms: fold it into the peer's answer time (RFC 6298
 * gains; concurrent updates may lose a sample, which is fine). */
static void
peer_rtt_sample(struct peer *pe, int ms)
{
	int srtt = atomic_load(&pe->srtt_ms), var = atomic_load(&pe->rttvar_ms);
	int d = ms > srtt ? ms - srtt : srtt - ms;
	atomic_store(&pe->rttvar_ms, var + (d - var) / 4);
	atomic_store(&pe->srtt_ms, srtt + (ms - srtt) / 8);
}

/* Send the probe's ping (probe_cb goes on from there). */
static void
probe_send(struct peer *pe)
{
	struct rpc_pool *p = pe->pool;
	struct buf b;
	buf_init(&b);
	wire_begin(&b, WIRE_PING_REQ, 0, atomic_fetch_add(&p->probe_reqid, 1));
	if (p->from[0])
		wire_put_str(&b, F_FROM, p->from);
	nng_msg *msg = NULL;
	int rv = wire_seal(&b, &p->keys) != 0 ? NNG_ENOMEM
	                                     : nng_msg_alloc(&msg, 0);
	if (rv == 0 && (rv = nng_msg_append(msg, b.data, b.len)) != 0)
		nng_msg_free(msg);
	buf_fini(&b);
	if (rv != 0) {
		atomic_store(&pe->probing, false);
		return;
	}
	pe->probe_step = PROBE_SEND;
	nng_aio_set_timeout(pe->probe_aio, peer_wait_ms(pe, PROBE_MS));
	nng_aio_set_msg(pe->probe_aio, msg);
	nng_ctx_send(pe->probe_ctx, pe->probe_aio);
	call_check_closed(p, pe->probe_aio);
}

static void
probe_start(struct peer *pe)
{
	if (!atomic_exchange(&pe->probing, true))
		probe_send(pe);
}

static void
probe_cb(void *arg)
{
	struct peer *pe = arg;
	struct rpc_pool *p = pe->pool;
	nng_aio *aio = pe->probe_aio;
	int rv = nng_aio_result(aio);
	if (pe->probe_step == PROBE_SEND && rv == 0) {
		pe->probe_step = PROBE_RECV;
		nng_ctx_recv(pe->probe_ctx, aio);
		call_check_closed(p, aio);
		return;
	}
	nng_msg *msg = nng_aio_get_msg(aio);
	if (msg)
		nng_msg_free(msg);
	if (pe->probe_step == PROBE_RECV && rv == 0 && msg) {
		/* Any answer will do: the peer is there. */
		atomic_store(&pe->heard_ms, (long long)mono_ms());
		atomic_store(&pe->suspect, false);
		atomic_store(&pe->probing, false);
		return;
	}
	/* A peer that is gone is noticed coming back by its pipe (and the
	 * ping found no connection to go out on: no verdict on the peer). */
	if (pool_closed(p) || atomic_load(&pe->blocked) ||
	    atomic_load(&pe->state) == PEER_DOWN) {
		atomic_store(&pe->probing, false);
		return;
	}
	atomic_store(&pe->suspect, true);
	nng_sleep_aio(PROBE_EVERY_MS, pe->probe_sleep);
	call_check_closed(p, pe->probe_sleep);
}

/* The pause between pings is over: ping again, unless a call's answer
 * cleared the suspicion meanwhile (or the pool is closing). */
static void
probe_wake(void *arg)
{
	struct peer *pe = arg;
	if (nng_aio_result(pe->probe_sleep) == 0 && atomic_load(&pe->suspect))
		probe_send(pe);
	else
		atomic_store(&pe->probing, false);
}

static enum rpc_health
peer_health(struct peer *pe)
{
	if (atomic_load(&pe->blocked) || atomic_load(&pe->state) == PEER_DOWN)
		return RPC_PEER_GONE;
	if (atomic_load(&pe->suspect))
		return RPC_PEER_SUSPECT;
	if (atomic_load(&pe->inflight) > 0) {
		long long since = atomic_load(&pe->waiting_since);
		long long heard = atomic_load(&pe->heard_ms);
		if (heard > since)
			since = heard;
		if ((long long)mono_ms() - since > peer_wait_ms(pe, SLOW_MS)) {
			probe_start(pe);
			return RPC_PEER_SUSPECT;
		}
	}
	return RPC_PEER_OK;
}

enum rpc_health
rpc_peer_health(struct rpc_pool *p, const char *addr)
{
	struct peer *pe;
	return pool_peer(p, addr, &pe) != 0 ? RPC_PEER_GONE : peer_health(pe);
}

bool
rpc_peer_usable(struct rpc_pool *p, const char *addr)
{
	return rpc_peer_health(p, addr) == RPC_PEER_OK;
}

int
rpc_peer_tls_check(struct rpc_pool *p, const char *addr, int timeout_ms)
{
	struct peer *pe;
	char url[192];
	nng_stream_dialer *d = NULL;
	nng_stream *s = NULL;
	nng_aio *aio = NULL;
	uint8_t hdr[8];
	nng_iov iov = {.iov_buf = hdr, .iov_len = sizeof(hdr)};
	int rv;

	if (!p->tls || pool_peer(p, addr, &pe) != 0 ||
	    atomic_load(&pe->state) != PEER_UNKNOWN ||
	    rpc_tls_url(addr, url, sizeof(url)) != 0)
		return 0;
	if ((rv = nng_stream_dialer_alloc(&d, url)) != 0 ||
	    (rv = nng_stream_dialer_set_ptr(d, NNG_OPT_TLS_CONFIG,
	         p->tls)) != 0 ||
	    (rv = nng_aio_alloc(&aio, NULL, NULL)) != 0)
		goto out;
	nng_aio_set_timeout(aio, timeout_ms);
	nng_stream_dialer_dial(d, aio);
	nng_aio_wait(aio);
	if ((rv = nng_aio_result(aio)) != 0)
		goto out;
	s = nng_aio_get_output(aio, 0);
	/* A receive makes the handshake; the node's SP header is the first
	 * thing after it.  Nothing is sent, so the node never takes this
	 * for a connection of its own (its negotiation times out). */
	nng_aio_set_iov(aio, 1, &iov);
	nng_aio_set_timeout(aio, timeout_ms);
	nng_stream_recv(s, aio);
	nng_aio_wait(aio);
	rv = nng_aio_result(aio);
out:
	if (s) {
		nng_stream_close(s);
		nng_stream_free(s);
	}
	nng_aio_free(aio);
	nng_stream_dialer_free(d);
	return rv == NNG_ECRYPTO || rv == NNG_EPEERAUTH ? DYN_ETLS : 0;
}

void
rpc_peer_block(struct rpc_pool *p, const char *addr, bool blocked)
{
	struct peer *pe;
	if (pool_peer(p, addr, &pe) == 0)
		atomic_store(&pe->blocked, blocked);
}

void
rpc_unblock_all(struct rpc_pool *p)
{
	pthread_mutex_lock(&p->lock);
	for (size_t i = 0; i < p->n; i++)
		atomic_store(&p->peers[i]->blocked, false);
	pthread_mutex_unlock(&p->lock);
}

void
rpc_reply_fini(struct rpc_reply *r)
{
	if (r->msg)
		nng_msg_free(r->msg);
	r->msg = NULL;
}

void
rpc_reply_bytes(const struct rpc_reply *r, const uint8_t **p, size_t *len)
{
	*p = r->msg ? nng_msg_body(r->msg) : NULL;
	*len = r->msg ? nng_msg_len(r->msg) : 0;
}

/* Check a received message against the request and turn it into a reply. */
static void
finish_reply(const struct auth_keys *keys, uint64_t reqid, nng_msg *msg,
    struct rpc_reply *out)
{
	struct wire_msg *m = &out->m;
	int rc = wire_decode(keys, nng_msg_body(msg), nng_msg_len(msg), m);
	if (rc != 0 && refusal_is(nng_msg_body(msg), nng_msg_len(msg)))
		rc = DYN_EREFUSED; /* unsigned: it only names the failure */
	if (rc == 0 && m->reqid != reqid)
		rc = DYN_EBADMSG;
	if (rc == 0 && m->type == WIRE_ERROR) {
		int32_t st = DYN_EBADMSG;
		wire_get_i32(m, F_STATUS, &st);
		rc = st < 0 ? st : DYN_EBADMSG;
	}
	if (rc != 0) {
		nng_msg_free(msg);
		msg = NULL;
	}
	out->rc = rc;
	out->msg = msg;
}

/*
 * A group of parallel calls.  Each call is a state machine driven by nng's
 * aio callbacks (send, then receive, then report).  The caller waits for
 * enough of them and returns; calls still running are not cancelled — a
 * put must still reach every replica — but detached: they finish on their
 * own, and the last one out frees the group.
 */
struct rpc_group;
struct call {
	struct rpc_group *g;
	struct slot *slot; /* its context and aio while it has them */
	bool sending;
	bool done;
	bool aio_done; /* finished while the caller waited: caller frees */
	struct peer *peer;
	uint64_t reqid;
	long long sent_ms;
	struct rpc_reply res;
	struct call *anext, *aprev; /* the pool's active list (p->lock) */
	bool listed;
};

struct rpc_group {
	pthread_mutex_t lock;
	pthread_cond_t cv;
	struct rpc_pool *pool;
	struct auth_keys keys;
	size_t pending, ok;
	size_t refs; /* the caller + every call not finished */
	bool detached;
	bool skip_suspects; /* stop waiting for calls to suspect peers */
	struct timespec deadline; /* of every call, from the start */
	/* rpc_call_async: nobody waits; enough gets the results. */
	rpc_done_fn enough;
	void *done_arg;
	size_t need;
	int grace_ms;
	uint64_t grace_end;   /* mono ms */
	bool grace_started;   /* it was put on the pool's grace list */
	bool grace_listed;    /* it is on it now (p->grace_lock) */
	bool grace_over;
	struct rpc_group *grace_next, *grace_prev;
	bool starting;  /* calls still being started: no callback yet */
	bool fired;     /* enough was called: out is its, no call's now */
	struct rpc_reply *out; /* each call's result, the group's */
	size_t n;
	struct call calls[];
};

static void
group_unref_locked(struct rpc_group *g, bool *free_it)
{
	*free_it = --g->refs == 0;
}

/* A call or group nobody waited for is done (rpc_pool_free waits for
 * them all). */
static void
pool_undetach(struct rpc_pool *p)
{
	pthread_mutex_lock(&p->lock);
	if (--p->detached == 0)
		pthread_cond_broadcast(&p->idle);
	pthread_mutex_unlock(&p->lock);
}

static void
group_free(struct rpc_group *g)
{
	struct rpc_pool *p = g->pool;
	bool async = g->enough != NULL;
	pthread_mutex_unlock(&g->lock);
	pthread_cond_destroy(&g->cv);
	pthread_mutex_destroy(&g->lock);
	if (g->out)
		for (size_t i = 0; i < g->n; i++)
			rpc_reply_fini(&g->out[i]);
	mem_free(g->out);
	mem_free(g);
	if (async) /* its calls are done, and so is its callback */
		pool_undetach(p);
}

/* Drop one of g's refs (g->lock held, released here): the last frees g. */
static void
group_release(struct rpc_group *g)
{
	bool free_it;
	group_unref_locked(g, &free_it);
	if (free_it)
		group_free(g);
	else
		pthread_mutex_unlock(&g->lock);
}

static void
call_unlist(struct rpc_pool *p, struct call *c)
{
	pthread_mutex_lock(&p->lock);
	if (c->listed) {
		if (c->aprev)
			c->aprev->anext = c->anext;
		else
			p->active = c->anext;
		if (c->anext)
			c->anext->aprev = c->aprev;
		c->listed = false;
	}
	pthread_mutex_unlock(&p->lock);
}

/* After starting an operation on aio: if the pool was cancelled
 * meanwhile, its sweep may have come before the start; cancel it here.
 * (The call may be done and its group freed by now: only p and aio, which
 * outlive a running callback of aio, are looked at.) */
static void
call_check_closed(struct rpc_pool *p, nng_aio *aio)
{
	if (pool_closed(p))
		nng_aio_cancel(aio);
}

void
rpc_pool_cancel(struct rpc_pool *p)
{
	if (!p)
		return;
	/* nng completes a cancelled aio from its own threads (the callback
	 * never runs in here), so holding the lock that keeps the listed
	 * calls alive is safe. */
	pthread_mutex_lock(&p->lock);
	p->closed = true;
	for (struct call *c = p->active; c; c = c->anext)
		nng_aio_cancel(c->slot->aio);
	pthread_mutex_unlock(&p->lock);
}

static void async_run(struct rpc_group *g);
static void slot_end(struct rpc_pool *p, struct call *c, bool keep,
    bool in_cb);
static void call_cb(void *arg);

/* The grace thread: ends each listed group's grace when it is over. */
static void *
grace_main(void *arg)
{
	struct rpc_pool *p = arg;
	pthread_mutex_lock(&p->grace_lock);
	while (!p->grace_stop) {
		struct rpc_group *g = p->grace_head;
		if (!g) {
			pthread_cond_wait(&p->grace_cv, &p->grace_lock);
			continue;
		}
		uint64_t now = mono_ms();
		if (g->grace_end > now) {
			struct timespec dl;
			mono_deadline(&dl, (int64_t)(g->grace_end - now));
			pthread_cond_timedwait(&p->grace_cv, &p->grace_lock, &dl);
			continue;
		}
		p->grace_head = g->grace_next;
		if (p->grace_head)
			p->grace_head->grace_prev = NULL;
		else
			p->grace_tail = NULL;
		g->grace_listed = false;
		pthread_mutex_unlock(&p->grace_lock);
		pthread_mutex_lock(&g->lock);
		g->grace_over = true;
		async_run(g); /* takes the list's ref */
		pthread_mutex_lock(&p->grace_lock);
	}
	pthread_mutex_unlock(&p->grace_lock);
	return NULL;
}

/* Put g on its pool's grace list (g->lock held); it holds a ref there
 * until the grace thread takes it off, or grace_unlist. */
static void
grace_list(struct rpc_group *g)
{
	struct rpc_pool *p = g->pool;
	g->grace_started = true;
	g->grace_end = mono_ms() + (uint64_t)g->grace_ms;
	pthread_mutex_lock(&p->grace_lock);
	if (!p->grace_thread && !p->grace_stop &&
	    pthread_create(&p->grace_tid, NULL, grace_main, p) == 0)
		p->grace_thread = true;
	if (!p->grace_thread) { /* no thread: no grace */
		pthread_mutex_unlock(&p->grace_lock);
		g->grace_over = true;
		return;
	}
	g->refs++;
	g->grace_listed = true;
	g->grace_next = NULL;
	g->grace_prev = p->grace_tail;
	if (p->grace_tail)
		p->grace_tail->grace_next = g;
	else
		p->grace_head = g;
	p->grace_tail = g;
	if (p->grace_head == g)
		pthread_cond_signal(&p->grace_cv);
	pthread_mutex_unlock(&p->grace_lock);
}

/* Every call is done before the grace is over: off the list (g->lock
 * held; the list's ref is dropped, never the last: the caller has one). */
static void
grace_unlist(struct rpc_group *g)
{
	struct rpc_pool *p = g->pool;
	pthread_mutex_lock(&p->grace_lock);
	if (g->grace_listed) {
		if (g->grace_prev)
			g->grace_prev->grace_next = g->grace_next;
		else
			p->grace_head = g->grace_next;
		if (g->grace_next)
			g->grace_next->grace_prev = g->grace_prev;
		else
			p->grace_tail = g->grace_prev;
		g->grace_listed = false;
		g->refs--;
	}
	pthread_mutex_unlock(&p->grace_lock);
}

/*
 * Call enough if it is due (g->lock held, and one of g's refs: both
 * released here): once need calls succeeded and the others finished or
 * the grace is over, or once every call finished; never while the calls
 * are being started.
 */
static void
async_run(struct rpc_group *g)
{
	if (g->grace_started && g->pending == 0)
		grace_unlist(g); /* (it checks whether g is still listed) */
	bool enough = g->ok >= g->need, fire = false;
	if (!g->starting && !g->fired) {
		fire = g->pending == 0 ||
		    (enough && (g->grace_ms <= 0 || g->grace_over));
		if (!fire && enough && !g->grace_started)
			grace_list(g);
	}
	if (fire) {
		g->fired = true;
		size_t ok = g->ok;
		pthread_mutex_unlock(&g->lock);
		g->enough(g->done_arg, g->out, g->n, ok);
		pthread_mutex_lock(&g->lock);
	}
	group_release(g);
}

/* A call of an rpc_call_async group ended (g->lock held, released here):
 * its result goes to out (after enough was called, nowhere: out is the
 * callback's), and the call cleans up after itself, as a detached one
 * does. */
static void
async_done(struct rpc_group *g, struct call *c, struct rpc_reply *r)
{
	bool answered = r->rc == 0;
	if (!g->fired)
		g->out[c - g->calls] = *r;
	else
		rpc_reply_fini(r);
	slot_end(g->pool, c, answered, true);
	async_run(g);
}

/* A slot for call c on its peer: a kept one, or a new one. */
static int
slot_take(struct rpc_pool *p, struct call *c)
{
	struct peer *pe = c->peer;
	pthread_mutex_lock(&p->lock);
	struct slot *sl = pe->free;
	if (sl) {
		pe->free = sl->next;
		pe->nfree--;
	}
	pthread_mutex_unlock(&p->lock);
	int rv = 0;
	if (!sl) {
		if (!(sl = mem_calloc(1, sizeof(*sl))))
			return -ENOMEM;
		if ((rv = nng_ctx_open(&sl->ctx, pe->sock)) != 0) {
			mem_free(sl);
			return err_from_nng(rv);
		}
		if ((rv = nng_aio_alloc(&sl->aio, call_cb, sl)) != 0) {
			nng_ctx_close(sl->ctx);
			mem_free(sl);
			return err_from_nng(rv);
		}
	}
	sl->c = c;
	c->slot = sl;
	return 0;
}

/* Call c is done with its slot: kept for its peer's next call (keep, and
 * room), or closed; from the slot's own callback (in_cb) its aio is
 * reaped, since it cannot be freed there.  Neither c's aio nor the slot
 * may be touched after. */
static void
slot_end(struct rpc_pool *p, struct call *c, bool keep, bool in_cb)
{
	struct slot *sl = c->slot;
	struct peer *pe = c->peer;
	c->slot = NULL;
	pthread_mutex_lock(&p->lock);
	if (keep && !p->closed && pe->nfree < PEER_SLOTS_MAX) {
		sl->c = NULL;
		sl->next = pe->free;
		pe->free = sl;
		pe->nfree++;
		pthread_mutex_unlock(&p->lock);
		return;
	}
	pthread_mutex_unlock(&p->lock);
	nng_ctx_close(sl->ctx);
	if (in_cb)
		nng_aio_reap(sl->aio);
	else
		nng_aio_free(sl->aio);
	mem_free(sl);
}

static void
call_done(struct call *c, int rc, nng_msg *msg)
{
	struct rpc_group *g = c->g;
	struct rpc_reply r = {.rc = rc};
	call_unlist(g->pool, c);
	if (rc == 0)
		finish_reply(&g->keys, c->reqid, msg, &r);
	atomic_fetch_sub(&c->peer->inflight, 1);
	if (rc == DYN_ETIMEDOUT) {
		atomic_store(&c->peer->suspect, true);
		probe_start(c->peer);
	}
	pthread_mutex_lock(&g->lock);
	if (c->done) {
		/* A second callback of a stopped aio: already reported. */
		pthread_mutex_unlock(&g->lock);
		rpc_reply_fini(&r);
		return;
	}
	c->done = true;
	g->pending--;
	if (r.rc == 0)
		g->ok++;
	if (g->enough) {
		async_done(g, c, &r);
		return;
	}
	if (!g->detached) {
		c->res = r;
		pthread_cond_broadcast(&g->cv);
		pthread_mutex_unlock(&g->lock);
		return;
	}
	/* Nobody waits for this answer any more: clean up after ourselves
	 * (reap, since an aio cannot be freed from its own callback). */
	bool answered = r.rc == 0;
	rpc_reply_fini(&r);
	struct rpc_pool *p = g->pool;
	slot_end(p, c, answered, true);
	pool_undetach(p);
	group_release(g);
}

static void
call_cb(void *arg)
{
	struct slot *sl = arg;
	struct call *c = sl->c;
	nng_aio *aio = sl->aio;
	int rv = nng_aio_result(aio);
	if (c->sending) {
		if (rv != 0) {
			nng_msg_free(nng_aio_get_msg(aio));
			if (rv == NNG_ECANCELED)
				rv = NNG_ECLOSED;
			call_done(c, err_from_nng(rv), NULL);
			return;
		}
		struct rpc_pool *p = c->g->pool;
		c->sending = false;
		nng_ctx_recv(sl->ctx, aio);
		call_check_closed(p, aio);
		return;
	}
	if (rv == NNG_ECANCELED)
		rv = NNG_ECLOSED; /* only rpc_pool_cancel cancels */
	if (rv == 0) {
		long long now = (long long)mono_ms();
		atomic_store(&c->peer->heard_ms, now);
		atomic_store(&c->peer->suspect, false);
		peer_rtt_sample(c->peer, (int)(now - c->sent_ms));
	}
	call_done(c, rv == 0 ? 0 : err_from_nng(rv),
	    rv == 0 ? nng_aio_get_msg(aio) : NULL);
}


/* Start call i of the group; false when it could not be started (its
 * result says why). */
static bool
call_start(struct rpc_pool *p, struct rpc_group *g, struct call *c,
    const char *addr, const struct buf *req, int timeout_ms)
{
	struct peer *pe = NULL;
	nng_msg *msg = NULL;
	int rv = 0;
	int rc = pool_peer(p, addr, &pe);
	if (rc == 0 && atomic_load(&pe->blocked))
		rc = DYN_EUNREACH; /* an injected fault: as if cut off */
	size_t cap = atomic_load(&p->max_request);
	if (rc == 0 && cap && req->len > cap)
		rc = DYN_ETOOBIG; /* the peer would close the connection */
	c->peer = pe;
	if (rc == 0)
		rc = slot_take(p, c);
	if (rc == 0 && (rv = nng_msg_alloc(&msg, 0)) == 0 &&
	    (rv = nng_msg_append(msg, req->data, req->len)) != 0)
		nng_msg_free(msg);
	if (rc == 0 && rv != 0)
		rc = err_from_nng(rv);
	if (rc != 0) {
		c->res.rc = rc;
		c->done = true;
		if (c->slot)
			slot_end(p, c, true, false); /* it was not used */
		return false;
	}
	pthread_mutex_lock(&p->lock);
	if (p->closed) {
		pthread_mutex_unlock(&p->lock);
		nng_msg_free(msg);
		slot_end(p, c, false, false);
		c->res.rc = DYN_ECLOSED;
		c->done = true;
		return false;
	}
	c->anext = p->active;
	c->aprev = NULL;
	if (p->active)
		p->active->aprev = c;
	p->active = c;
	c->listed = true;
	pthread_mutex_unlock(&p->lock);
	c->sending = true;
	c->reqid = be_get_u64(req->data + 8);
	c->sent_ms = (long long)mono_ms();
	if (atomic_fetch_add(&pe->inflight, 1) == 0)
		atomic_store(&pe->waiting_since, c->sent_ms);
	pthread_mutex_lock(&g->lock);
	g->pending++;
	g->refs++;
	pthread_mutex_unlock(&g->lock);
	/* The call may be over (its slot kept for another) by the check. */
	struct slot *sl = c->slot;
	nng_aio_set_timeout(sl->aio, timeout_ms);
	nng_aio_set_msg(sl->aio, msg);
	nng_ctx_send(sl->ctx, sl->aio);
	call_check_closed(p, sl->aio);
	return true;
}

static size_t call_group(struct rpc_pool *p, const char *const *addrs,
    size_t n, const struct buf *reqs, size_t step, size_t need,
    int timeout_ms, int grace_ms, bool skip, struct rpc_reply *out);

size_t
rpc_call_many(struct rpc_pool *p, const char *const *addrs, size_t n,
    const struct buf *req, size_t need, int timeout_ms, int grace_ms,
    struct rpc_reply *out)
{
	return call_group(p, addrs, n, req, 0, need, timeout_ms, grace_ms,
	    false, out);
}

size_t
rpc_call_each(struct rpc_pool *p, const char *const *addrs, size_t n,
    const struct buf *reqs, size_t need, int timeout_ms,
    struct rpc_reply *out)
{
	return call_group(p, addrs, n, reqs, 1, need, timeout_ms, 0, false,
	    out);
}

static struct rpc_group *
group_new(struct rpc_pool *p, size_t n)
{
	struct rpc_group *g = mem_calloc(1, sizeof(*g) + n * sizeof(g->calls[0]));
	if (!g)
		return NULL;
	pthread_mutex_init(&g->lock, NULL);
	mono_cond_init(&g->cv);
	g->pool = p;
	g->keys = p->keys;
	g->refs = 1;
	g->n = n;
	return g;
}

/* reqs[i * step] is the request for addrs[i]. */
static struct rpc_group *
group_start(struct rpc_pool *p, const char *const *addrs, size_t n,
    const struct buf *reqs, size_t step, int timeout_ms, bool skip)
{
	struct rpc_group *g = group_new(p, n);
	if (!g)
		return NULL;
	g->skip_suspects = skip;
	for (size_t i = 0; i < n; i++) {
		g->calls[i].g = g;
		call_start(p, g, &g->calls[i], addrs[i], &reqs[i * step],
		    timeout_ms);
	}
	mono_deadline(&g->deadline, timeout_ms);
	return g;
}

static bool
ts_before(const struct timespec *a, const struct timespec *b)
{
	return a->tv_sec < b->tv_sec ||
	    (a->tv_sec == b->tv_sec && a->tv_nsec < b->tv_nsec);
}

/* Calls of g still out to peers that may yet answer (g->lock held): not
 * to one suspect after a timeout.  A peer merely slow to answer is probed
 * (peer_health) and waited for until the probe says; a call to a peer
 * whose connection is down goes out when it is back. */
static size_t
pending_hopeful(struct rpc_group *g)
{
	size_t n = 0;
	for (size_t i = 0; i < g->n; i++) {
		struct call *c = &g->calls[i];
		if (!c->done) {
			peer_health(c->peer);
			n += !atomic_load(&c->peer->suspect);
		}
	}
	return n;
}

static size_t
group_finish(struct rpc_group *g, size_t need, int grace_ms,
    struct rpc_reply *out)
{
	struct rpc_pool *p = g->pool;
	size_t n = g->n;
	for (size_t i = 0; i < n; i++) {
		memset(&out[i], 0, sizeof(out[i]));
		out[i].rc = -ENOMEM;
	}

	/* Wait for enough answers (or until the peers still out cannot make
	 * them up: suspects do not count), then a little grace for the rest. */
	struct timespec dl = g->deadline, tick;
	pthread_mutex_lock(&g->lock);
	if (g->skip_suspects)
		mono_deadline(&tick, SLOW_MS); /* the first look at the peers */
	while (g->pending > 0 && g->ok < need) {
		bool last = !g->skip_suspects || ts_before(&dl, &tick);
		if (pthread_cond_timedwait(&g->cv, &g->lock, last ? &dl : &tick) !=
		    ETIMEDOUT)
			continue;
		if (last || g->ok + pending_hopeful(g) < need)
			break;
		mono_deadline(&tick, TICK_MS);
	}
	if (g->pending > 0 && g->ok >= need && grace_ms > 0) {
		mono_deadline(&dl, grace_ms);
		while (g->pending > 0)
			if (pthread_cond_timedwait(&g->cv, &g->lock, &dl) ==
			    ETIMEDOUT)
				break;
	}

	/* Take what came; detach the rest. */
	size_t ok = 0;
	g->detached = true;
	for (size_t i = 0; i < n; i++) {
		struct call *c = &g->calls[i];
		if (!c->done) {
			out[i].rc = DYN_ETIMEDOUT;
			pthread_mutex_lock(&p->lock);
			p->detached++;
			pthread_mutex_unlock(&p->lock);
			continue;
		}
		out[i] = c->res;
		ok += out[i].rc == 0;
		if (c->slot) {
			/* Finished: its callback has returned or is about
			 * to; free waits for it, outside our lock. */
			c->aio_done = true;
		}
	}
	pthread_mutex_unlock(&g->lock);
	for (size_t i = 0; i < n; i++) {
		struct call *c = &g->calls[i];
		if (c->aio_done)
			slot_end(p, c, c->res.rc == 0, false);
	}
	pthread_mutex_lock(&g->lock);
	for (size_t i = 0; i < n; i++)
		if (g->calls[i].aio_done)
			g->refs--; /* those are ours to account for */
	group_release(g);
	return ok;
}

static size_t
call_group(struct rpc_pool *p, const char *const *addrs, size_t n,
    const struct buf *reqs, size_t step, size_t need, int timeout_ms,
    int grace_ms, bool skip, struct rpc_reply *out)
{
	struct rpc_group *g =
	    group_start(p, addrs, n, reqs, step, timeout_ms, skip);
	if (!g) {
		for (size_t i = 0; i < n; i++) {
			memset(&out[i], 0, sizeof(out[i]));
			out[i].rc = -ENOMEM;
		}
		return 0;
	}
	return group_finish(g, need, grace_ms, out);
}

struct rpc_group *
rpc_start_each(struct rpc_pool *p, const char *const *addrs, size_t n,
    const struct buf *reqs, int timeout_ms)
{
	return group_start(p, addrs, n, reqs, 1, timeout_ms, false);
}

size_t
rpc_finish(struct rpc_group *g, size_t need, struct rpc_reply *out)
{
	return group_finish(g, need, 0, out);
}

int
rpc_call(struct rpc_pool *p, const char *addr, const struct buf *req,
    int timeout_ms, struct rpc_reply *out)
{
	call_group(p, &addr, 1, req, 0, 1, timeout_ms, 0, false, out);
	return out->rc;
}

int
rpc_call_or_skip(struct rpc_pool *p, const char *addr, const struct buf *req,
    int timeout_ms, struct rpc_reply *out)
{
	call_group(p, &addr, 1, req, 0, 1, timeout_ms, 0, true, out);
	return out->rc;
}

int
rpc_call_async(struct rpc_pool *p, const char *const *addrs, size_t n,
    const struct buf *reqs, size_t step, size_t need, int timeout_ms,
    int grace_ms, rpc_done_fn enough, void *arg)
{
	struct rpc_group *g = group_new(p, n);
	struct rpc_reply *out = mem_calloc(n ? n : 1, sizeof(*out));
	if (!g || !out) {
		mem_free(g);
		mem_free(out);
		return -ENOMEM;
	}
	for (size_t i = 0; i < n; i++)
		out[i].rc = DYN_ETIMEDOUT; /* still out when enough runs */
	pthread_mutex_lock(&p->lock);
	p->detached++; /* nobody waits for it: rpc_pool_free does */
	pthread_mutex_unlock(&p->lock);
	g->out = out;
	g->enough = enough;
	g->done_arg = arg;
	g->need = need;
	g->grace_ms = grace_ms;
	/* No callback until every call is out: they may free what the
	 * starts read (addrs, reqs). */
	g->starting = true;
	for (size_t i = 0; i < n; i++) {
		struct call *c = &g->calls[i];
		c->g = g;
		if (!call_start(p, g, c, addrs[i], &reqs[i * step], timeout_ms)) {
			pthread_mutex_lock(&g->lock);
			out[i] = c->res; /* why it never went out */
			pthread_mutex_unlock(&g->lock);
		}
	}
	pthread_mutex_lock(&g->lock);
	g->starting = false;
	async_run(g); /* drops the starter's ref */
	return 0;
}
