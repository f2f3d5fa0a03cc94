#include "coord.h"

#include <errno.h>

#include "node_i.h"
#include "wire.h"

int
coord_get(struct node *n, const struct coord_req *rq, struct vset *out)
{
	int rc = store_get(n->store, rq->key, rq->klen, out);
	if (rc == -ENOENT) {
		vset_fini(out);
		return 0;
	}
	return rc;
}

struct put_arg {
	const struct vclock *ctx;
	uint64_t actor;
	uint64_t now_ms;
	const void *value;
	size_t len;
	bool tombstone;
	struct vclock newctx; /* out */
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
	version_context(nv, &a->newctx);
	return 0;
}

int
coord_put(struct node *n, const struct coord_req *rq,
    const struct vclock *ctx, const void *value, size_t len,
    struct vclock *newctx)
{
	struct put_arg a = {
		.ctx = ctx,
		.actor = n->actor,
		.now_ms = node_now_ms(),
		.value = value,
		.len = len,
		.tombstone = (rq->flags & WIRE_F_TOMBSTONE) != 0,
	};
	int rc = store_update(n->store, rq->key, rq->klen, apply_put, &a);
	if (rc == 0)
		*newctx = a.newctx;
	return rc;
}
