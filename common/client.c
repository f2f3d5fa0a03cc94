#include "client.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <time.h>
#include <string.h>

#include <openssl/rand.h>

#include "blob.h"
#include "buf.h"
#include "context.h"
#include "err.h"
#include "keypos.h"
#include "mem.h"
#include "mono.h"
#include "ring.h"
#include "rpc.h"
#include "wire.h"

/* How long a fetched ring is trusted before it is fetched again. */
#define RING_TTL_MS 5000

struct dyn_client {
	struct auth_keys keys;
	struct blob_key bkey;
	int timeout_ms;
	bool no_routing;
	size_t nnodes;
	char **nodes;
	struct rpc_pool *pool;
	atomic_uint_fast64_t next_reqid;
	atomic_size_t next_node; /* round robin start */

	pthread_mutex_t ring_lock;
	struct ring *ring; /* NULL: none yet, or the nodes have none */
	uint32_t n;        /* the cluster's N */
	long long ring_ms; /* when it was last fetched (or tried) */
};

int
dyn_client_new(const struct dyn_client_opts *o, struct dyn_client **out)
{
	int rc;
	if (o->nnodes == 0)
		return -EINVAL;
	struct dyn_client *c = mem_calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	c->keys = o->keys;
	memcpy(c->bkey.k, c->keys.blob.k, sizeof(c->bkey.k));
	c->timeout_ms = o->timeout_ms > 0 ? o->timeout_ms : 5000;
	c->no_routing = o->no_routing;
	pthread_mutex_init(&c->ring_lock, NULL);
	c->nodes = mem_calloc(o->nnodes, sizeof(*c->nodes));
	if (!c->nodes) {
		rc = -ENOMEM;
		goto fail;
	}
	c->nnodes = o->nnodes;
	for (size_t i = 0; i < o->nnodes; i++) {
		c->nodes[i] = mem_dup(o->nodes[i], strlen(o->nodes[i]) + 1);
		if (!c->nodes[i]) {
			rc = -ENOMEM;
			goto fail;
		}
	}
	if ((rc = rpc_pool_new(&c->keys, &c->pool)) != 0)
		goto fail;
	if (o->cred) {
		nng_tls_config *tls;
		if ((rc = cred_tls_config(o->cred, NNG_TLS_MODE_CLIENT,
		         &tls)) != 0)
			goto fail;
		rpc_pool_set_tls(c->pool, tls); /* holds its own reference */
		nng_tls_config_free(tls);
	}
	uint64_t r = 0;
	RAND_bytes((unsigned char *)&r, sizeof(r));
	atomic_store(&c->next_reqid, r);
	*out = c;
	return 0;
fail:
	dyn_client_free(c);
	return rc;
}

void
dyn_client_free(struct dyn_client *c)
{
	if (!c)
		return;
	rpc_pool_free(c->pool);
	for (size_t i = 0; c->nodes && i < c->nnodes; i++)
		mem_free(c->nodes[i]);
	mem_free(c->nodes);
	ring_free(c->ring);
	pthread_mutex_destroy(&c->ring_lock);
	mem_free(c);
}

/* Errors after which another node may do better.  A replay refusal is
 * one: nng's req socket sends a request again by itself when its
 * connection drops before the reply, and a node that had the first copy
 * refuses the second; the next try is sealed anew (call_addr). */
static bool
retryable(int rc)
{
	return rc == DYN_ETIMEDOUT || rc == DYN_EUNREACH ||
	    rc == DYN_ECLOSED || rc == DYN_EQUORUM || rc == DYN_EREPLAY;
}

/* One node's answer to req.  A first choice (`first`: a node that looked
 * healthy, with others to try after it) is given up as soon as it turns
 * suspect, a frozen node costing a few hundred ms instead of the timeout;
 * the last resorts are waited for. */
static int
call_addr(struct dyn_client *c, const char *addr, struct buf *req,
    uint8_t want, bool first, struct rpc_reply *r)
{
	rpc_reply_fini(r);
	int rc = first ? rpc_call_or_skip(c->pool, addr, req, c->timeout_ms, r)
	               : rpc_call(c->pool, addr, req, c->timeout_ms, r);
	if (rc == 0 && r->m.type != want)
		rc = r->rc = DYN_EBADMSG;
	/* Sealed anew for the next try (this node again, or another): the
	 * same bytes twice would be refused as a replay where the first
	 * copy arrived after all. */
	if (retryable(rc))
		wire_seal(req, &c->keys);
	return rc;
}

/* A call that no node answered: when the nodes refuse this client's TLS
 * handshake, say so instead of "timed out" (rpc_peer_tls_check; the first
 * two nodes never reached are asked, a second each at most). */
static int
explain_failure(struct dyn_client *c, int rc)
{
	if (rc != DYN_ETIMEDOUT && rc != DYN_EUNREACH)
		return rc;
	for (size_t i = 0; i < c->nnodes && i < 2; i++)
		if (rpc_peer_tls_check(c->pool, c->nodes[i], 1000) == DYN_ETLS)
			return DYN_ETLS;
	return rc;
}

/* Send req to node `only` of the list, or (only == SIZE_MAX) to each node
 * in turn, starting round robin, until one answers.  The reply must be
 * released with rpc_reply_fini whatever the result. */
static int
call(struct dyn_client *c, size_t only, struct buf *req, uint8_t want,
    struct rpc_reply *r)
{
	int rc = DYN_EUNREACH;
	size_t n = only == SIZE_MAX ? c->nnodes : 1;
	size_t start = only == SIZE_MAX
	    ? atomic_fetch_add(&c->next_node, 1) % c->nnodes
	    : only;
	for (int pass = 0; pass < 2; pass++) {
		for (size_t i = 0; i < n; i++) {
			const char *a = c->nodes[(start + i) % c->nnodes];
			if (n > 1 && rpc_peer_usable(c->pool, a) != (pass == 0))
				continue;
			rc = call_addr(c, a, req, want, n > 1 && pass == 0, r);
			if (!retryable(rc))
				return rc;
		}
		if (n == 1)
			break;
	}
	return explain_failure(c, rc);
}

static int fetch_ring(struct dyn_client *c);

/*
 * Client-driven routing (the paper's Table 2): send a key's request
 * straight to its coordinator, the first reachable node of its preference
 * list by the cached ring; only when none answers, fall back to the listed
 * nodes, which forward.
 */
static int
call_key(struct dyn_client *c, const void *key, size_t klen,
    struct buf *req, uint8_t want, struct rpc_reply *r)
{
	char addrs[16][128];
	size_t na = 0;
	memset(r, 0, sizeof(*r));
	if (!c->no_routing) {
		/* One caller refreshes a stale ring; the others go on with
		 * the one they have (or none). */
		pthread_mutex_lock(&c->ring_lock);
		bool stale = (long long)mono_ms() - c->ring_ms > RING_TTL_MS ||
		    c->ring_ms == 0;
		if (stale)
			c->ring_ms = (long long)mono_ms();
		pthread_mutex_unlock(&c->ring_lock);
		if (stale)
			fetch_ring(c);
		if (dyn_preflist(c, key, klen, addrs, 16, &na) != 0)
			na = 0;
	}
	/* Reachable nodes first (a crashed coordinator is known at once by
	 * its closed connection), the others after them. */
	int rc = DYN_EUNREACH;
	for (int pass = 0; pass < 2; pass++) {
		for (size_t i = 0; i < na; i++) {
			if (rpc_peer_usable(c->pool, addrs[i]) != (pass == 0))
				continue;
			rc = call_addr(c, addrs[i], req, want, pass == 0, r);
			if (!retryable(rc))
				return rc;
		}
	}
	return call(c, SIZE_MAX, req, want, r);
}

static void
begin_req(struct dyn_client *c, struct buf *b, uint8_t type, uint16_t hflags)
{
	uint64_t reqid = atomic_fetch_add(&c->next_reqid, 1);
	wire_begin(b, type, hflags, reqid);
}

static void
put_opts(struct buf *b, const struct dyn_req_opts *o, uint32_t extra_flags)
{
	if (o && o->r)
		wire_put_u32(b, F_R, o->r);
	if (o && o->w)
		wire_put_u32(b, F_W, o->w);
	uint32_t flags = (o ? o->flags : 0) | extra_flags;
	if (flags)
		wire_put_u32(b, F_FLAGS, flags);
}

static int
check_key(size_t klen)
{
	return klen > KEY_MAX_LEN ? DYN_ETOOBIG : 0;
}

int
dyn_get(struct dyn_client *c, const void *key, size_t klen,
    const struct dyn_req_opts *o, struct dyn_get_result *out)
{
	memset(out, 0, sizeof(*out));
	vset_init(&out->versions);
	int rc = check_key(klen);
	if (rc)
		return rc;

	struct buf b;
	buf_init(&b);
	begin_req(c, &b, WIRE_GET_REQ, 0);
	wire_put(&b, F_KEY, key, klen);
	put_opts(&b, o, 0);
	struct rpc_reply reply = {0};
	if ((rc = wire_seal(&b, &c->keys)) == 0)
		rc = (o && (o->flags & WIRE_F_LOCAL))
		    ? call(c, 0, &b, WIRE_GET_RESP, &reply)
		    : call_key(c, key, klen, &b, WIRE_GET_RESP, &reply);
	buf_fini(&b);
	const struct wire_msg m = reply.m;
	if (rc)
		goto out;

	const struct wire_field *vs = wire_find(&m, F_VSET);
	const struct wire_field *cx = wire_find(&m, F_CONTEXT);
	if (!vs || !cx || cx->len > CONTEXT_MAX_LEN) {
		rc = DYN_EBADMSG;
		goto out;
	}
	struct rd r;
	rd_init(&r, vs->data, vs->len);
	if ((rc = vset_decode(&r, WIRE_MAX_VALUE, &out->versions)) != 0)
		goto out;
	if (rd_left(&r) != 0) {
		rc = DYN_EBADMSG;
		goto out;
	}
	out->ctx = mem_dup(cx->data, cx->len);
	out->ctx_len = cx->len;
	out->vctx = mem_calloc(out->versions.n, sizeof(*out->vctx));
	if (!out->ctx || !out->vctx) {
		rc = -ENOMEM;
		goto out;
	}
	uint32_t k = 0;
	for (uint32_t i = 0; i < m.nfields && rc == 0; i++) {
		const struct wire_field *f = &m.f[i];
		if (f->tag != F_VCONTEXT)
			continue;
		if (k == out->versions.n || f->len > CONTEXT_MAX_LEN) {
			rc = DYN_EBADMSG;
			break;
		}
		out->vctx[k].p = mem_dup(f->data, f->len);
		out->vctx[k].len = f->len;
		if (!out->vctx[k++].p)
			rc = -ENOMEM;
	}
	if (rc == 0 && k != out->versions.n)
		rc = DYN_EBADMSG;
	if (rc == 0 && vset_live(&out->versions) == 0)
		rc = -ENOENT;
out:
	rpc_reply_fini(&reply);
	if (rc != 0 && rc != -ENOENT)
		dyn_get_result_fini(out);
	return rc;
}

void
dyn_range_page_fini(struct dyn_range_page *p)
{
	for (uint32_t i = 0; p->e && i < p->n; i++) {
		struct dyn_range_entry *e = &p->e[i];
		for (uint32_t j = 0; e->vctx && j < e->versions.n; j++)
			mem_free(e->vctx[j].p);
		mem_free(e->vctx);
		mem_free(e->ctx.p);
		mem_free(e->key);
		vset_fini(&e->versions);
	}
	mem_free(p->e);
	mem_free(p->next);
	memset(p, 0, sizeof(*p));
}

/* An F_RECORDS field (node/reclist.h: u32 count, count * blob of u32 key
 * length | key | vset) into out's entries. */
static int
range_records(const struct wire_field *f, struct dyn_range_page *out)
{
	struct rd r;
	uint32_t cnt;
	rd_init(&r, f->data, f->len);
	int rc = rd_u32(&r, &cnt);
	if (rc)
		return rc;
	if (cnt > rd_left(&r) / 12) /* a record is at least 12 bytes */
		return DYN_EBADMSG;
	if (cnt && !(out->e = mem_calloc(cnt, sizeof(*out->e))))
		return -ENOMEM;
	for (uint32_t i = 0; i < cnt; i++) {
		const uint8_t *rec, *key;
		size_t rl;
		uint32_t klen;
		struct rd rr;
		if ((rc = rd_blob(&r, WIRE_MAX_MSG, &rec, &rl)) != 0)
			return rc;
		rd_init(&rr, rec, rl);
		if ((rc = rd_u32(&rr, &klen)) != 0 || klen > KEY_MAX_LEN ||
		    (rc = rd_bytes(&rr, klen, &key)) != 0)
			return rc ? rc : DYN_EBADMSG;
		struct dyn_range_entry *e = &out->e[i];
		vset_init(&e->versions);
		out->n = i + 1;
		if (!(e->key = mem_dup(key, klen ? klen : 1)))
			return -ENOMEM;
		e->klen = klen;
		if ((rc = vset_decode(&rr, WIRE_MAX_VALUE, &e->versions)) != 0)
			return rc;
		if (rd_left(&rr) != 0)
			return DYN_EBADMSG;
	}
	return rd_left(&r) == 0 ? 0 : DYN_EBADMSG;
}

static int
ctx_dup(struct rd *r, struct dyn_ctx *out)
{
	const uint8_t *p;
	size_t n;
	int rc = rd_blob(r, CONTEXT_MAX_LEN, &p, &n);
	if (rc)
		return rc;
	if (!(out->p = mem_dup(p, n ? n : 1)))
		return -ENOMEM;
	out->len = n;
	return 0;
}

/* An F_RCONTEXTS field: per record, its context and one per version. */
static int
range_contexts(const struct wire_field *f, struct dyn_range_page *out)
{
	struct rd r;
	int rc = 0;
	rd_init(&r, f->data, f->len);
	for (uint32_t i = 0; i < out->n && rc == 0; i++) {
		struct dyn_range_entry *e = &out->e[i];
		if (e->versions.n &&
		    !(e->vctx = mem_calloc(e->versions.n, sizeof(*e->vctx))))
			return -ENOMEM;
		rc = ctx_dup(&r, &e->ctx);
		for (uint32_t j = 0; j < e->versions.n && rc == 0; j++)
			rc = ctx_dup(&r, &e->vctx[j]);
	}
	if (rc == 0 && rd_left(&r) != 0)
		rc = DYN_EBADMSG;
	return rc;
}

int
dyn_range(struct dyn_client *c, const void *part, size_t plen,
    const void *after, size_t alen, uint32_t limit, uint32_t limit_bytes,
    const struct dyn_req_opts *o, struct dyn_range_page *out)
{
	memset(out, 0, sizeof(*out));
	uint8_t hdr[KEYPOS_PLACED_MAX];
	size_t hlen = keypos_placed_make(part, plen, hdr);
	if (hlen == 0)
		return DYN_ETOOBIG;
	if (after && alen > KEYPOS_PLACED_MAX)
		return DYN_ETOOBIG;

	struct buf b;
	buf_init(&b);
	begin_req(c, &b, WIRE_RANGE_REQ, 0);
	wire_put(&b, F_PART_KEY, part, plen);
	if (after)
		wire_put(&b, F_START, after, alen);
	if (limit)
		wire_put_u32(&b, F_LIMIT, limit);
	if (limit_bytes)
		wire_put_u32(&b, F_LIMIT_BYTES, limit_bytes);
	put_opts(&b, o, 0);
	struct rpc_reply reply = {0};
	int rc = wire_seal(&b, &c->keys);
	/* Routed as any key of the part: by its header's position. */
	if (rc == 0)
		rc = (o && (o->flags & WIRE_F_LOCAL))
		    ? call(c, 0, &b, WIRE_RANGE_RESP, &reply)
		    : call_key(c, hdr, hlen, &b, WIRE_RANGE_RESP, &reply);
	buf_fini(&b);
	if (rc)
		goto out;
	const struct wire_field *recs = wire_find(&reply.m, F_RECORDS);
	const struct wire_field *next = wire_find(&reply.m, F_START);
	const struct wire_field *ctxs = wire_find(&reply.m, F_RCONTEXTS);
	if (!recs || !ctxs) {
		rc = DYN_EBADMSG;
		goto out;
	}
	if ((rc = range_records(recs, out)) != 0 ||
	    (rc = range_contexts(ctxs, out)) != 0)
		goto out;
	if (next) {
		out->more = true;
		out->next_len = next->len;
		if (!(out->next = mem_dup(next->data, next->len ? next->len : 1)))
			rc = -ENOMEM;
	}
out:
	rpc_reply_fini(&reply);
	if (rc)
		dyn_range_page_fini(out);
	return rc;
}

void
dyn_get_result_fini(struct dyn_get_result *r)
{
	for (uint32_t i = 0; r->vctx && i < r->versions.n; i++)
		mem_free(r->vctx[i].p);
	mem_free(r->vctx);
	r->vctx = NULL;
	vset_fini(&r->versions);
	mem_free(r->ctx);
	r->ctx = NULL;
	r->ctx_len = 0;
}

static int
do_put(struct dyn_client *c, const void *key, size_t klen,
    const struct dyn_ctx *ctxs, size_t nctx, const void *value, size_t len,
    const struct dyn_req_opts *o, uint32_t flags, uint8_t **new_ctx,
    size_t *new_ctx_len)
{
	int rc = check_key(klen);
	if (rc)
		return rc;
	if (len > WIRE_MAX_VALUE)
		return DYN_ETOOBIG;

	struct buf b;
	buf_init(&b);
	begin_req(c, &b, WIRE_PUT_REQ,
	    flags & WIRE_F_BLOB ? WIRE_H_BLOB : 0);
	buf_reserve(&b, len + WIRE_SLACK);
	wire_put(&b, F_KEY, key, klen);
	if (nctx > WIRE_MAX_FIELDS - 8) {
		buf_fini(&b);
		return DYN_ETOOBIG;
	}
	for (size_t i = 0; i < nctx; i++)
		if (ctxs[i].len)
			wire_put(&b, F_CONTEXT, ctxs[i].p, ctxs[i].len);
	if (!(flags & WIRE_F_TOMBSTONE))
		wire_put(&b, F_VALUE, value, len);
	put_opts(&b, o, flags);
	struct rpc_reply reply = {0};
	if ((rc = wire_seal(&b, &c->keys)) == 0)
		rc = call_key(c, key, klen, &b, WIRE_PUT_RESP, &reply);
	buf_fini(&b);
	if (rc == 0 && new_ctx) {
		const struct wire_field *cx = wire_find(&reply.m, F_CONTEXT);
		*new_ctx = cx ? mem_dup(cx->data, cx->len) : NULL;
		*new_ctx_len = cx ? cx->len : 0;
		if (!cx)
			rc = DYN_EBADMSG;
		else if (!*new_ctx)
			rc = -ENOMEM;
	}
	rpc_reply_fini(&reply);
	return rc;
}

void
dyn_blob_key_of(struct dyn_client *c, uint8_t kind, const void *data,
    size_t len, uint8_t key[BLOB_KEY_LEN])
{
	uint8_t name[BLOB_NAME_LEN];
	blob_name(&c->bkey, data, len, name);
	blob_key(kind, name, key);
}

int
dyn_blob_put(struct dyn_client *c, uint8_t kind, const void *data,
    size_t len, const struct dyn_req_opts *o, uint8_t key[BLOB_KEY_LEN])
{
	uint8_t name[BLOB_NAME_LEN];
	if (kind != BLOB_DATA && kind != BLOB_REFS)
		return -EINVAL;
	blob_name(&c->bkey, data, len, name);
	blob_key(kind, name, key);
	return do_put(c, key, BLOB_KEY_LEN, NULL, 0, data, len, o,
	    WIRE_F_BLOB, NULL, NULL);
}

int
dyn_blob_fetch(struct dyn_client *c, const uint8_t key[BLOB_KEY_LEN],
    size_t cap, struct dyn_bytes *out)
{
	memset(out, 0, sizeof(*out));
	if (!blob_is_key(key, BLOB_KEY_LEN))
		return -EINVAL;
	struct buf b;
	buf_init(&b);
	begin_req(c, &b, WIRE_GET_REQ, 0);
	wire_put(&b, F_KEY, key, BLOB_KEY_LEN);
	wire_put_u32(&b, F_FLAGS, WIRE_F_BLOB);
	struct rpc_reply reply = {0};
	int rc = wire_seal(&b, &c->keys);
	if (rc == 0)
		rc = call_key(c, key, BLOB_KEY_LEN, &b, WIRE_GET_RESP, &reply);
	buf_fini(&b);
	int32_t st = 0;
	const struct wire_field *v = NULL;
	if (rc == 0 && (rc = wire_get_i32(&reply.m, F_STATUS, &st)) == 0)
		rc = st;
	if (rc == 0 && !(v = wire_find(&reply.m, F_VALUE)))
		rc = DYN_EBADMSG;
	if (rc == 0 && v->len > cap)
		rc = DYN_ETOOBIG;
	/* The reply's tag skips the bytes, which wire_decode checked against
	 * the key's name instead: a replica's bad disk (or anyone) cannot
	 * hand back other bytes unnoticed.  It must be this key's. */
	const struct wire_field *k = rc == 0 ? wire_find(&reply.m, F_KEY) : NULL;
	if (rc == 0 && (!(reply.m.flags & WIRE_H_BLOB) || !k ||
	    k->len != BLOB_KEY_LEN || memcmp(k->data, key, BLOB_KEY_LEN) != 0))
		rc = DYN_EBADMSG;
	if (rc == 0) {
		out->data = v->data;
		out->len = v->len;
		out->msg = reply.msg; /* the bytes live in it */
		reply.msg = NULL;
	}
	rpc_reply_fini(&reply);
	return rc;
}

void
dyn_bytes_release(struct dyn_bytes *b)
{
	struct rpc_reply r = {.msg = b->msg};
	rpc_reply_fini(&r);
	memset(b, 0, sizeof(*b));
}

int
dyn_blob_get(struct dyn_client *c, const uint8_t key[BLOB_KEY_LEN],
    void *buf, size_t cap, size_t *len)
{
	struct dyn_bytes bytes;
	int rc = dyn_blob_fetch(c, key, cap, &bytes);
	if (rc == 0) {
		memcpy(buf, bytes.data, bytes.len);
		*len = bytes.len;
	}
	dyn_bytes_release(&bytes);
	return rc;
}

int
dyn_put(struct dyn_client *c, const void *key, size_t klen,
    const uint8_t *ctx, size_t ctx_len, const void *value, size_t len,
    const struct dyn_req_opts *o, uint8_t **new_ctx, size_t *new_ctx_len)
{
	struct dyn_ctx one = {(uint8_t *)ctx, ctx_len};
	return do_put(c, key, klen, &one, 1, value, len, o, 0, new_ctx,
	    new_ctx_len);
}

int
dyn_put_ctxs(struct dyn_client *c, const void *key, size_t klen,
    const struct dyn_ctx *ctxs, size_t nctx, const void *value, size_t len,
    const struct dyn_req_opts *o, uint8_t **new_ctx, size_t *new_ctx_len)
{
	return do_put(c, key, klen, ctxs, nctx, value, len, o, 0, new_ctx,
	    new_ctx_len);
}

int
dyn_delete(struct dyn_client *c, const void *key, size_t klen,
    const uint8_t *ctx, size_t ctx_len, const struct dyn_req_opts *o)
{
	struct dyn_ctx one = {(uint8_t *)ctx, ctx_len};
	return do_put(c, key, klen, &one, 1, NULL, 0, o, WIRE_F_TOMBSTONE,
	    NULL, NULL);
}

int
dyn_delete_ctxs(struct dyn_client *c, const void *key, size_t klen,
    const struct dyn_ctx *ctxs, size_t nctx, const struct dyn_req_opts *o)
{
	return do_put(c, key, klen, ctxs, nctx, NULL, 0, o, WIRE_F_TOMBSTONE,
	    NULL, NULL);
}

/* A copy of field f of m as a NUL-terminated string (NULL when absent or
 * out of memory: the status then lacks that part). */
static char *
field_str(const struct wire_msg *m, uint8_t tag)
{
	const struct wire_field *f = wire_find(m, tag);
	char *s = f ? mem_alloc(f->len + 1) : NULL;
	if (s) {
		memcpy(s, f->data, f->len);
		s[f->len] = '\0';
	}
	return s;
}

static void
status_decode(const struct wire_msg *m, struct dyn_status *out)
{
	wire_get_str(m, F_NAME, out->name, sizeof(out->name));
	wire_get_str(m, F_ADDR, out->addr, sizeof(out->addr));
	wire_get_u64(m, F_UPTIME, &out->uptime_s);
	wire_get_u64(m, F_KEYS, &out->keys);
	wire_get_u64(m, F_DBSIZE, &out->db_bytes);
	wire_get_u64(m, F_ACTOR, &out->actor);
	out->json = field_str(m, F_STATUSJSON);
	out->stats = field_str(m, F_STATS);
}

int
dyn_status(struct dyn_client *c, size_t i, struct dyn_status *out)
{
	memset(out, 0, sizeof(*out));
	if (i >= c->nnodes)
		return -EINVAL;
	struct buf b;
	buf_init(&b);
	begin_req(c, &b, WIRE_STATUS_REQ, 0);
	struct rpc_reply reply = {0};
	int rc = wire_seal(&b, &c->keys);
	if (rc == 0)
		rc = call(c, i, &b, WIRE_STATUS_RESP, &reply);
	buf_fini(&b);
	if (rc == 0)
		status_decode(&reply.m, out);
	rpc_reply_fini(&reply);
	return rc;
}

size_t
dyn_status_each(struct dyn_client *c, const char *const *addrs, size_t n,
    int timeout_ms, struct dyn_status *out, int *rc)
{
	struct rpc_reply *rr = mem_calloc(n ? n : 1, sizeof(*rr));
	struct buf b;
	size_t ok = 0;
	buf_init(&b);
	begin_req(c, &b, WIRE_STATUS_REQ, 0);
	int src = rr ? wire_seal(&b, &c->keys) : -ENOMEM;
	if (src == 0 && n > 0)
		rpc_call_many(c->pool, addrs, n, &b, n,
		    timeout_ms > 0 ? timeout_ms : c->timeout_ms, 0, rr);
	for (size_t i = 0; i < n; i++) {
		memset(&out[i], 0, sizeof(out[i]));
		rc[i] = src ? src : rr[i].rc;
		if (rc[i] == 0 && rr[i].m.type != WIRE_STATUS_RESP)
			rc[i] = DYN_EBADMSG;
		if (rc[i] == 0) {
			status_decode(&rr[i].m, &out[i]);
			ok++;
		}
		if (rr)
			rpc_reply_fini(&rr[i]);
	}
	buf_fini(&b);
	mem_free(rr);
	return ok;
}

void
dyn_status_fini(struct dyn_status *s)
{
	mem_free(s->stats);
	mem_free(s->json);
	s->stats = NULL;
	s->json = NULL;
}

/* The ring from node `only`, or (SIZE_MAX) from any node, as call(). */
static int
ring_from(struct dyn_client *c, size_t only, struct ring **out,
    uint32_t nrw[3])
{
	*out = NULL;
	struct buf b;
	buf_init(&b);
	begin_req(c, &b, WIRE_RING_REQ, 0);
	struct rpc_reply reply = {0};
	int rc = wire_seal(&b, &c->keys);
	if (rc == 0)
		rc = call(c, only, &b, WIRE_RING_RESP, &reply);
	buf_fini(&b);
	const struct wire_field *f = rc ? NULL : wire_find(&reply.m, F_RING);
	if (rc == 0 && (!f || wire_get_u32(&reply.m, F_N, &nrw[0]) ||
	                   wire_get_u32(&reply.m, F_R, &nrw[1]) ||
	                   wire_get_u32(&reply.m, F_W, &nrw[2])))
		rc = DYN_EBADMSG;
	if (rc == 0) {
		struct rd r;
		rd_init(&r, f->data, f->len);
		rc = ring_decode(&r, out);
	}
	rpc_reply_fini(&reply);
	return rc;
}

int
dyn_ring(struct dyn_client *c, size_t i, struct ring **out, uint32_t nrw[3])
{
	*out = NULL;
	return i < c->nnodes ? ring_from(c, i, out, nrw) : -EINVAL;
}

/* Refresh the cached ring from any listed node (healthy ones first, a
 * frozen one given up quickly: call()). */
static int
fetch_ring(struct dyn_client *c)
{
	struct ring *r;
	uint32_t nrw[3];
	int rc = ring_from(c, SIZE_MAX, &r, nrw);
	if (rc != 0)
		return rc; /* asked again after RING_TTL_MS (call_key) */
	pthread_mutex_lock(&c->ring_lock);
	if (!c->ring || !ring_newer(c->ring, r)) {
		ring_free(c->ring);
		c->ring = r;
		r = NULL;
	}
	c->n = nrw[0];
	pthread_mutex_unlock(&c->ring_lock);
	ring_free(r);
	return 0;
}

int
dyn_preflist(struct dyn_client *c, const void *key, size_t klen,
    char (*addrs)[128], size_t max, size_t *n)
{
	struct keypos pos;
	int rc = keypos_of(key, klen, &pos);
	if (rc)
		return rc;
	*n = 0;
	pthread_mutex_lock(&c->ring_lock);
	if (!c->ring) {
		rc = -ENOENT;
		goto out;
	}
	uint32_t idx[32], cnt = 0;
	uint32_t nrep = c->n < 16 ? c->n : 16;
	rc = ring_replicas_union(c->ring, ring_partition_of(c->ring, &pos),
	    nrep, idx, &cnt);
	for (uint32_t i = 0; rc == 0 && i < cnt && *n < max; i++)
		snprintf(addrs[(*n)++], 128, "%s",
		    ring_member_addr(c->ring, idx[i]));
out:
	pthread_mutex_unlock(&c->ring_lock);
	return rc;
}

int
dyn_leave(struct dyn_client *c, size_t i)
{
	if (i >= c->nnodes)
		return -EINVAL;
	struct buf b;
	buf_init(&b);
	begin_req(c, &b, WIRE_LEAVE_REQ, 0);
	struct rpc_reply reply = {0};
	int rc = wire_seal(&b, &c->keys);
	if (rc == 0)
		rc = call(c, i, &b, WIRE_LEAVE_RESP, &reply);
	buf_fini(&b);
	rpc_reply_fini(&reply);
	return rc;
}

int
dyn_remove(struct dyn_client *c, size_t i, const char *name)
{
	if (i >= c->nnodes)
		return -EINVAL;
	struct buf b;
	buf_init(&b);
	begin_req(c, &b, WIRE_REMOVE_REQ, 0);
	wire_put_str(&b, F_NAME, name);
	struct rpc_reply reply = {0};
	int rc = wire_seal(&b, &c->keys);
	if (rc == 0)
		rc = call(c, i, &b, WIRE_REMOVE_RESP, &reply);
	buf_fini(&b);
	rpc_reply_fini(&reply);
	return rc;
}

int
dyn_compact(struct dyn_client *c, size_t i, struct dyn_compaction *out)
{
	memset(out, 0, sizeof(*out));
	if (i >= c->nnodes)
		return -EINVAL;
	struct buf b;
	buf_init(&b);
	begin_req(c, &b, WIRE_COMPACT_REQ, 0);
	struct rpc_reply reply = {0};
	int rc = wire_seal(&b, &c->keys);
	if (rc == 0)
		rc = call(c, i, &b, WIRE_COMPACT_RESP, &reply);
	buf_fini(&b);
	if (rc == 0 && (wire_get_u64(&reply.m, F_BEFORE, &out->before) ||
	                   wire_get_u64(&reply.m, F_AFTER, &out->after) ||
	                   wire_get_u64(&reply.m, F_DURATION, &out->ms)))
		rc = DYN_EBADMSG;
	rpc_reply_fini(&reply);
	return rc;
}

int
dyn_fault(struct dyn_client *c, size_t i, const char *const *names, size_t n)
{
	if (i >= c->nnodes || n > 16)
		return -EINVAL;
	struct buf b;
	buf_init(&b);
	begin_req(c, &b, WIRE_FAULT_REQ, 0);
	for (size_t k = 0; k < n; k++)
		wire_put_str(&b, F_NAME, names[k]);
	if (n == 0)
		wire_put_u32(&b, F_FLAGS, WIRE_F_HEAL);
	struct rpc_reply reply = {0};
	int rc = wire_seal(&b, &c->keys);
	if (rc == 0)
		rc = call(c, i, &b, WIRE_FAULT_RESP, &reply);
	buf_fini(&b);
	rpc_reply_fini(&reply);
	return rc;
}

int
dyn_echo(struct dyn_client *c, size_t i, const void *data, size_t len)
{
	if (i >= c->nnodes || len > WIRE_MAX_VALUE)
		return -EINVAL;
	struct buf b;
	buf_init(&b);
	begin_req(c, &b, WIRE_PING_REQ, 0);
	if (len)
		wire_put(&b, F_VALUE, data, len);
	struct rpc_reply reply = {0};
	int rc = wire_seal(&b, &c->keys);
	if (rc == 0)
		rc = call(c, i, &b, WIRE_PING_RESP, &reply);
	buf_fini(&b);
	if (rc == 0 && len) {
		const struct wire_field *f = wire_find(&reply.m, F_VALUE);
		if (!f || f->len != len || memcmp(f->data, data, len) != 0)
			rc = DYN_EBADMSG;
	}
	rpc_reply_fini(&reply);
	return rc;
}
