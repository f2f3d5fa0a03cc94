#include "client.h"

#include <errno.h>
#include <stdatomic.h>
#include <string.h>

#include <openssl/rand.h>

#include "buf.h"
#include "context.h"
#include "err.h"
#include "keypos.h"
#include "mem.h"
#include "rpc.h"
#include "wire.h"

struct dyn_client {
	struct auth_key key;
	int timeout_ms;
	size_t nnodes;
	char **nodes;
	struct rpc_pool *pool;
	atomic_uint_fast64_t next_reqid;
	atomic_size_t next_node; /* round robin start */
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
	c->key = o->key;
	c->timeout_ms = o->timeout_ms > 0 ? o->timeout_ms : 5000;
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
	if ((rc = rpc_pool_new(&c->key, &c->pool)) != 0)
		goto fail;
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
	mem_free(c);
}

/* Errors after which another node may do better. */
static bool
retryable(int rc)
{
	return rc == DYN_ETIMEDOUT || rc == DYN_EUNREACH ||
	    rc == DYN_ECLOSED || rc == DYN_EQUORUM;
}

/* Send req to node `only` (or, with only == SIZE_MAX, to each node in
 * turn until one answers) and check the reply's type.  The reply must be
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
	memset(r, 0, sizeof(*r));
	for (size_t i = 0; i < n; i++) {
		rpc_reply_fini(r);
		rc = rpc_call(c->pool, c->nodes[(start + i) % c->nnodes], req,
		    c->timeout_ms, r);
		if (rc == 0 && r->m.type != want)
			rc = r->rc = DYN_EBADMSG;
		if (!retryable(rc))
			break;
	}
	return rc;
}

static void
begin_req(struct dyn_client *c, struct buf *b, uint8_t type)
{
	uint64_t reqid = atomic_fetch_add(&c->next_reqid, 1);
	wire_begin(b, type, 0, reqid);
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
	begin_req(c, &b, WIRE_GET_REQ);
	wire_put(&b, F_KEY, key, klen);
	put_opts(&b, o, 0);
	struct rpc_reply reply = {0};
	if ((rc = wire_seal(&b, &c->key)) == 0)
		rc = call(c, SIZE_MAX, &b, WIRE_GET_RESP, &reply);
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
	begin_req(c, &b, WIRE_PUT_REQ);
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
	if ((rc = wire_seal(&b, &c->key)) == 0)
		rc = call(c, SIZE_MAX, &b, WIRE_PUT_RESP, &reply);
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

int
dyn_status(struct dyn_client *c, size_t i, struct dyn_status *out)
{
	memset(out, 0, sizeof(*out));
	if (i >= c->nnodes)
		return -EINVAL;
	struct buf b;
	buf_init(&b);
	begin_req(c, &b, WIRE_STATUS_REQ);
	struct rpc_reply reply = {0};
	int rc = wire_seal(&b, &c->key);
	if (rc == 0)
		rc = call(c, i, &b, WIRE_STATUS_RESP, &reply);
	buf_fini(&b);
	const struct wire_msg *m = &reply.m;
	if (rc) {
		rpc_reply_fini(&reply);
		return rc;
	}
	wire_get_str(m, F_NAME, out->name, sizeof(out->name));
	wire_get_str(m, F_ADDR, out->addr, sizeof(out->addr));
	wire_get_u64(m, F_UPTIME, &out->uptime_s);
	wire_get_u64(m, F_KEYS, &out->keys);
	wire_get_u64(m, F_DBSIZE, &out->db_bytes);
	wire_get_u64(m, F_ACTOR, &out->actor);
	const struct wire_field *st = wire_find(m, F_STATS);
	if (st) {
		out->stats = mem_alloc(st->len + 1);
		if (out->stats) {
			memcpy(out->stats, st->data, st->len);
			out->stats[st->len] = '\0';
		}
	}
	rpc_reply_fini(&reply);
	return 0;
}

void
dyn_status_fini(struct dyn_status *s)
{
	mem_free(s->stats);
	s->stats = NULL;
}
