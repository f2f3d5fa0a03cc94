#include "rpc.h"

#include <errno.h>
#include <pthread.h>
#include <string.h>
#include <time.h>

#include <nng/nng.h>
#include <nng/protocol/reqrep0/req.h>

#include "err.h"
#include "mem.h"

struct peer {
	char *addr;
	nng_socket sock;
};

struct rpc_pool {
	struct auth_key key;
	pthread_mutex_t lock;
	struct peer *peers;
	size_t n, cap;
};

int
rpc_pool_new(const struct auth_key *key, struct rpc_pool **out)
{
	struct rpc_pool *p = mem_calloc(1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	p->key = *key;
	pthread_mutex_init(&p->lock, NULL);
	*out = p;
	return 0;
}

void
rpc_pool_free(struct rpc_pool *p)
{
	if (!p)
		return;
	for (size_t i = 0; i < p->n; i++) {
		nng_close(p->peers[i].sock);
		mem_free(p->peers[i].addr);
	}
	mem_free(p->peers);
	pthread_mutex_destroy(&p->lock);
	mem_free(p);
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
	/* Non-blocking: a peer that is down now is dialled again in the
	 * background, and calls to it time out instead of failing here. */
	rv = nng_dial(pe->sock, addr, NULL, NNG_FLAG_NONBLOCK);
	if (rv != 0) {
		nng_close(pe->sock);
		return err_from_nng(rv);
	}
	return 0;
}

/* The socket for addr, opened on first use. */
static int
pool_sock(struct rpc_pool *p, const char *addr, nng_socket *out)
{
	int rc = 0;
	pthread_mutex_lock(&p->lock);
	for (size_t i = 0; i < p->n; i++) {
		if (strcmp(p->peers[i].addr, addr) == 0) {
			*out = p->peers[i].sock;
			goto out;
		}
	}
	if (p->n == p->cap) {
		size_t cap = p->cap ? 2 * p->cap : 8;
		struct peer *np = mem_realloc(p->peers, cap * sizeof(*np));
		if (!np) {
			rc = -ENOMEM;
			goto out;
		}
		p->peers = np;
		p->cap = cap;
	}
	struct peer *pe = &p->peers[p->n];
	pe->addr = mem_dup(addr, strlen(addr) + 1);
	if (!pe->addr) {
		rc = -ENOMEM;
		goto out;
	}
	if ((rc = peer_open(pe, addr)) != 0) {
		mem_free(pe->addr);
		goto out;
	}
	*out = pe->sock;
	p->n++;
out:
	pthread_mutex_unlock(&p->lock);
	return rc;
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
finish_reply(const struct auth_key *key, uint64_t reqid, nng_msg *msg,
    struct rpc_reply *out)
{
	struct wire_msg *m = &out->m;
	int rc = wire_decode(key, nng_msg_body(msg), nng_msg_len(msg), m);
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
struct group;
struct call {
	struct group *g;
	nng_ctx ctx;
	nng_aio *aio;
	bool ctx_open;
	bool sending;
	bool done;
	bool aio_done; /* finished while the caller waited: caller frees */
	struct rpc_reply res;
};

struct group {
	pthread_mutex_t lock;
	pthread_cond_t cv;
	struct auth_key key;
	uint64_t reqid;
	size_t pending, ok;
	size_t refs; /* the caller + every call not finished */
	bool detached;
	size_t n;
	struct call calls[];
};

static void
group_unref_locked(struct group *g, bool *free_it)
{
	*free_it = --g->refs == 0;
}

static void
group_free(struct group *g)
{
	pthread_mutex_unlock(&g->lock);
	pthread_cond_destroy(&g->cv);
	pthread_mutex_destroy(&g->lock);
	mem_free(g);
}

static void
call_done(struct call *c, int rc, nng_msg *msg)
{
	struct group *g = c->g;
	struct rpc_reply r = {.rc = rc};
	if (rc == 0)
		finish_reply(&g->key, g->reqid, msg, &r);
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
	if (!g->detached) {
		c->res = r;
		pthread_cond_broadcast(&g->cv);
		pthread_mutex_unlock(&g->lock);
		return;
	}
	/* Nobody waits for this answer any more: clean up after ourselves
	 * (reap, since an aio cannot be freed from its own callback). */
	rpc_reply_fini(&r);
	if (c->ctx_open)
		nng_ctx_close(c->ctx);
	nng_aio_reap(c->aio);
	bool free_it;
	group_unref_locked(g, &free_it);
	if (free_it)
		group_free(g);
	else
		pthread_mutex_unlock(&g->lock);
}

static void
call_cb(void *arg)
{
	struct call *c = arg;
	int rv = nng_aio_result(c->aio);
	if (c->sending) {
		if (rv != 0) {
			nng_msg_free(nng_aio_get_msg(c->aio));
			call_done(c, err_from_nng(rv), NULL);
			return;
		}
		c->sending = false;
		nng_ctx_recv(c->ctx, c->aio);
		return;
	}
	call_done(c, rv == 0 ? 0 : err_from_nng(rv),
	    rv == 0 ? nng_aio_get_msg(c->aio) : NULL);
}

static void
deadline_in(struct timespec *ts, int ms)
{
	clock_gettime(CLOCK_REALTIME, ts);
	ts->tv_sec += ms / 1000;
	ts->tv_nsec += (long)(ms % 1000) * 1000000;
	if (ts->tv_nsec >= 1000000000) {
		ts->tv_sec++;
		ts->tv_nsec -= 1000000000;
	}
}

/* Start call i of the group; false when it could not be started (its
 * result says why). */
static bool
call_start(struct rpc_pool *p, struct group *g, struct call *c,
    const char *addr, const struct buf *req, int timeout_ms)
{
	nng_socket sock;
	nng_msg *msg = NULL;
	int rv = 0;
	int rc = pool_sock(p, addr, &sock);
	if (rc == 0 && (rv = nng_ctx_open(&c->ctx, sock)) == 0)
		c->ctx_open = true;
	if (rc == 0 && rv == 0)
		rv = nng_aio_alloc(&c->aio, call_cb, c);
	if (rc == 0 && rv == 0 && (rv = nng_msg_alloc(&msg, 0)) == 0 &&
	    (rv = nng_msg_append(msg, req->data, req->len)) != 0)
		nng_msg_free(msg);
	if (rc == 0 && rv != 0)
		rc = err_from_nng(rv);
	if (rc != 0) {
		c->res.rc = rc;
		c->done = true;
		if (c->aio)
			nng_aio_free(c->aio);
		c->aio = NULL;
		if (c->ctx_open)
			nng_ctx_close(c->ctx);
		c->ctx_open = false;
		return false;
	}
	c->sending = true;
	pthread_mutex_lock(&g->lock);
	g->pending++;
	g->refs++;
	pthread_mutex_unlock(&g->lock);
	nng_aio_set_timeout(c->aio, timeout_ms);
	nng_aio_set_msg(c->aio, msg);
	nng_ctx_send(c->ctx, c->aio);
	return true;
}

size_t
rpc_call_many(struct rpc_pool *p, const char *const *addrs, size_t n,
    const struct buf *req, size_t need, int timeout_ms, int grace_ms,
    struct rpc_reply *out)
{
	for (size_t i = 0; i < n; i++) {
		memset(&out[i], 0, sizeof(out[i]));
		out[i].rc = -ENOMEM;
	}
	struct group *g = mem_calloc(1, sizeof(*g) + n * sizeof(g->calls[0]));
	if (!g)
		return 0;
	pthread_mutex_init(&g->lock, NULL);
	pthread_cond_init(&g->cv, NULL);
	g->key = p->key;
	g->reqid = be_get_u64(req->data + 8);
	g->refs = 1;
	g->n = n;
	for (size_t i = 0; i < n; i++) {
		g->calls[i].g = g;
		call_start(p, g, &g->calls[i], addrs[i], req, timeout_ms);
	}

	/* Wait for enough answers, then a little grace for the rest. */
	struct timespec dl;
	deadline_in(&dl, timeout_ms);
	pthread_mutex_lock(&g->lock);
	while (g->pending > 0 && g->ok < need)
		if (pthread_cond_timedwait(&g->cv, &g->lock, &dl) == ETIMEDOUT)
			break;
	if (g->pending > 0 && g->ok >= need && grace_ms > 0) {
		deadline_in(&dl, grace_ms);
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
			continue;
		}
		out[i] = c->res;
		ok += out[i].rc == 0;
		if (c->aio) {
			/* Finished: its callback has returned or is about
			 * to; free waits for it, outside our lock. */
			c->aio_done = true;
		}
	}
	pthread_mutex_unlock(&g->lock);
	for (size_t i = 0; i < n; i++) {
		struct call *c = &g->calls[i];
		if (c->aio_done) {
			nng_aio_free(c->aio);
			if (c->ctx_open)
				nng_ctx_close(c->ctx);
		}
	}
	pthread_mutex_lock(&g->lock);
	for (size_t i = 0; i < n; i++)
		if (g->calls[i].aio_done)
			g->refs--; /* those are ours to account for */
	bool free_it;
	group_unref_locked(g, &free_it);
	if (free_it)
		group_free(g);
	else
		pthread_mutex_unlock(&g->lock);
	return ok;
}

int
rpc_call(struct rpc_pool *p, const char *addr, const struct buf *req,
    int timeout_ms, struct rpc_reply *out)
{
	rpc_call_many(p, &addr, 1, req, 1, timeout_ms, 0, out);
	return out->rc;
}
