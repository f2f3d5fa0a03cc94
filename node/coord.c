#include "coord.h"

#include <errno.h>
#include <string.h>

#include "err.h"
#include "gossip.h"
#include "log.h"
#include "mem.h"
#include "node_i.h"
#include "rpc.h"
#include "wire.h"
#include "xfer.h"

/* How long a get waits, after R answers, for the other replicas (so read
 * repair sees them too). */
#define READ_GRACE_MS 20

static uint32_t
clamp(uint32_t want, uint32_t dflt, uint32_t have)
{
	uint32_t v = want ? want : dflt;
	if (v > have)
		v = have;
	return v ? v : 1;
}

/* Send set to the given replicas (REPLICATE_REQ); the number that acked. */
static size_t
replicate_to(struct node *n, const char *const *addrs, size_t na,
    const void *key, size_t klen, const struct vset *set, size_t need,
    int *err)
{
	struct buf b;
	buf_init(&b);
	wire_begin(&b, WIRE_REPLICATE_REQ, 0, node_reqid(n));
	wire_put(&b, F_KEY, key, klen);
	size_t at = wire_begin_field(&b, F_VSET);
	vset_encode(set, &b);
	wire_end_field(&b, at);
	size_t ok = 0;
	*err = wire_seal(&b, &n->cfg.key);
	if (*err == 0 && na > 0) {
		struct rpc_reply rr[REPLICAS_MAX];
		ok = rpc_call_many(n->pool, addrs, na, &b, need,
		    n->cfg.timeout_ms, 0, rr);
		for (size_t i = 0; i < na; i++) {
			if (rr[i].rc && ok < need)
				*err = rr[i].rc;
			rpc_reply_fini(&rr[i]);
		}
	}
	buf_fini(&b);
	return ok;
}

int
coord_replicate(struct node *n, const void *key, size_t klen,
    const struct vset *set)
{
	int rc = store_update(n->store, key, klen, xfer_apply_merge,
	    (void *)set);
	return rc == STORE_SKIP ? 0 : rc;
}

static int
local_get(struct node *n, const struct coord_req *rq, struct vset *out)
{
	int rc = store_get(n->store, rq->key, rq->klen, out);
	if (rc == -ENOENT) {
		vset_fini(out);
		return 0;
	}
	return rc;
}

/* The other replicas' addresses among the first `count` of rp. */
static size_t
others(const struct node *n, const struct replicas *rp, uint32_t count,
    const char **addrs)
{
	size_t k = 0;
	for (uint32_t i = 0; i < count; i++)
		if (strcmp(rp->name[i], n->name) != 0)
			addrs[k++] = rp->addr[i];
	return k;
}

int
coord_get(struct node *n, const struct coord_req *rq, struct vset *out)
{
	if (rq->flags & WIRE_F_LOCAL)
		return local_get(n, rq, out);

	struct replicas rp;
	int rc = gossip_replicas(n->gossip, &rq->pos, &rp);
	if (rc)
		return rc;
	uint32_t r = clamp(rq->r, rp.s.r, rp.read_count);
	bool self_reads = false;
	for (uint32_t i = 0; i < rp.read_count; i++)
		self_reads |= strcmp(rp.name[i], n->name) == 0;

	const char *addrs[REPLICAS_MAX];
	size_t na = others(n, &rp, rp.read_count, addrs);
	struct vset mine;
	vset_init(&mine);
	size_t got = 0;
	if (self_reads) {
		if ((rc = local_get(n, rq, &mine)) != 0)
			return rc;
		got = 1;
	}

	struct buf b;
	buf_init(&b);
	wire_begin(&b, WIRE_GET_REQ, 0, node_reqid(n));
	wire_put(&b, F_KEY, rq->key, rq->klen);
	wire_put_u32(&b, F_FLAGS, WIRE_F_LOCAL);
	struct rpc_reply rr[REPLICAS_MAX];
	size_t need = r > got ? r - got : 0;
	if ((rc = wire_seal(&b, &n->cfg.key)) != 0)
		goto out;
	rpc_call_many(n->pool, addrs, na, &b, need, n->cfg.timeout_ms,
	    READ_GRACE_MS, rr);

	/* Merge every answer; remember each one's set for read repair. */
	struct vset theirs[REPLICAS_MAX];
	bool answered[REPLICAS_MAX] = {false};
	if ((rc = vset_copy(out, &mine)) != 0)
		goto out_replies;
	for (size_t i = 0; i < na; i++) {
		vset_init(&theirs[i]);
		const struct wire_field *f =
		    rr[i].rc ? NULL : wire_find(&rr[i].m, F_VSET);
		if (!f)
			continue;
		struct rd rd;
		rd_init(&rd, f->data, f->len);
		if (vset_decode(&rd, n->cfg.max_value, &theirs[i]) != 0 ||
		    rd_left(&rd) != 0) {
			vset_fini(&theirs[i]);
			continue;
		}
		answered[i] = true;
		got++;
		if ((rc = vset_merge(out, &theirs[i])) < 0)
			break;
		rc = 0;
	}
	if (rc == 0 && got < r)
		rc = DYN_EQUORUM;

	/* Read repair: whoever answered with less than the merge gets it. */
	if (rc == 0) {
		const char *stale[REPLICAS_MAX];
		size_t ns = 0;
		for (size_t i = 0; i < na; i++)
			if (answered[i] && !vset_contains(&theirs[i], out))
				stale[ns++] = addrs[i];
		if (self_reads && !vset_contains(&mine, out))
			coord_replicate(n, rq->key, rq->klen, out);
		if (ns > 0) {
			int err;
			replicate_to(n, stale, ns, rq->key, rq->klen, out, ns,
			    &err);
			LOG_DEBUG("read repair of %zu replicas", ns);
		}
	}
	for (size_t i = 0; i < na; i++)
		vset_fini(&theirs[i]);
out_replies:
	for (size_t i = 0; i < na; i++)
		rpc_reply_fini(&rr[i]);
out:
	buf_fini(&b);
	vset_fini(&mine);
	if (rc)
		vset_fini(out);
	return rc;
}

struct put_arg {
	const struct vclock *ctx;
	uint64_t actor;
	uint64_t now_ms;
	const void *value;
	size_t len;
	bool tombstone;
	struct version nv; /* out: a copy of the new version */
};

static int
apply_put(struct vset *cur, void *arg)
{
	struct put_arg *a = arg;
	const struct version *nv;
	int rc = vset_put(cur, a->ctx, a->actor, a->now_ms, a->value, a->len,
	    a->tombstone, &nv);
	if (rc != 0)
		return rc;
	/* Called again when the batch is retried: start over. */
	version_fini(&a->nv);
	return version_copy(&a->nv, nv);
}

int
coord_put(struct node *n, const struct coord_req *rq,
    const struct vclock *ctx, const void *value, size_t len,
    struct vclock *newctx)
{
	struct replicas rp;
	int rc = gossip_replicas(n->gossip, &rq->pos, &rp);
	if (rc)
		return rc;
	uint32_t w = clamp(rq->w, rp.s.w, rp.count);

	struct put_arg a = {
		.ctx = ctx,
		.actor = n->actor,
		.now_ms = node_now_ms(),
		.value = value,
		.len = len,
		.tombstone = (rq->flags & WIRE_F_TOMBSTONE) != 0,
	};
	if ((rc = store_update(n->store, rq->key, rq->klen, apply_put, &a)))
		goto out;
	version_context(&a.nv, newctx);

	const char *addrs[REPLICAS_MAX];
	size_t na = others(n, &rp, rp.count, addrs);
	size_t acks = rp.self_in ? 1 : 0;
	size_t need = w > acks ? w - acks : 0;
	if (na > 0) {
		struct vset one = {.n = 1, .v = &a.nv};
		int err = 0;
		acks += replicate_to(n, addrs, na, rq->key, rq->klen, &one,
		    need, &err);
		if (acks < w) {
			LOG_DEBUG("put: %zu of %u acks: %s", acks, w,
			    dyn_strerror(err));
			rc = DYN_EQUORUM;
		}
	}
out:
	version_fini(&a.nv);
	return rc;
}
