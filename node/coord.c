#include "coord.h"

#include <errno.h>
#include <pthread.h>
#include <string.h>

#include "blob.h"
#include "err.h"
#include "gossip.h"
#include "log.h"
#include "mem.h"
#include "node_i.h"
#include "quorum.h"
#include "rangeread.h"
#include "replica.h"
#include "rpc.h"
#include "wire.h"

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

/* One destination of a write: a replica, or a stand-in holding the write
 * for `hint` (the intended replica, which is down). */
struct dest {
	const char *addr;
	const char *name;
	const char *hint; /* NULL: a real replica */
	int rc;
};

/* REPLICATE_REQs of set to the destinations, sent in parallel: started,
 * then finished (wait for `need` acks; the number that acked; each
 * destination's result goes to its rc). */
struct replication {
	struct node *n;
	struct dest *d;
	size_t nd;
	struct buf b[REPLICAS_MAX];
	struct rpc_group *g;
};

/* The REPLICATE_REQ for each destination into b[i] (initialised here),
 * its address into addrs[i]; a request that could not be made is that
 * destination's rc.  A stand-in's request differs (F_HINT), so each gets
 * its own; the requests then go out together. */
static void
replicate_reqs(struct node *n, struct dest *d, size_t nd, const void *key,
    size_t klen, const struct vset *set, struct buf *b, const char **addrs)
{
	for (size_t i = 0; i < nd; i++) {
		buf_init(&b[i]);
		d[i].rc = replica_request(n, &b[i], key, klen, set, d[i].hint);
		addrs[i] = d[i].addr;
	}
}

static void
replicate_start(struct node *n, struct replication *r, struct dest *d,
    size_t nd, const void *key, size_t klen, const struct vset *set)
{
	const char *addrs[REPLICAS_MAX] = {0};
	r->n = n;
	r->d = d;
	r->nd = nd;
	replicate_reqs(n, d, nd, key, klen, set, r->b, addrs);
	r->g = nd > 0 ? rpc_start_each(n->pool, addrs, nd, r->b,
	                    n->cfg.timeout_ms)
	              : NULL;
}

static size_t
replicate_finish(struct replication *r, size_t need)
{
	struct rpc_reply rr[REPLICAS_MAX];
	size_t ok = 0;
	if (r->g) {
		ok = rpc_finish(r->g, need, rr);
	} else {
		for (size_t i = 0; i < r->nd; i++)
			rr[i] = (struct rpc_reply){.rc = -ENOMEM};
	}
	size_t standins = 0;
	for (size_t i = 0; i < r->nd; i++) {
		if (r->d[i].rc == 0)
			r->d[i].rc = rr[i].rc;
		standins += r->d[i].hint && r->d[i].rc == 0;
		rpc_reply_fini(&rr[i]);
		buf_fini(&r->b[i]);
	}
	metrics_count(&r->n->metrics, METRICS_STANDIN_WRITES, standins);
	return ok;
}

static size_t
replicate_to(struct node *n, struct dest *d, size_t nd, const void *key,
    size_t klen, const struct vset *set, size_t need)
{
	struct replication r;
	replicate_start(n, &r, d, nd, key, klen, set);
	return replicate_finish(&r, need);
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

static bool
is_self(const struct node *n, const char *name)
{
	return strcmp(name, n->name) == 0;
}

static enum rpc_health
health(struct node *n, const char *addr)
{
	return rpc_peer_health(n->pool, addr);
}

/* The walk's health as a request starts (quorum.h). */
static void
walk_of(struct node *n, const struct replicas *rp, struct walk *w)
{
	w->rp = rp;
	for (uint32_t i = 0; i < rp->count + rp->ext_count; i++) {
		w->self[i] = is_self(n, rp->name[i]);
		w->health[i] = w->self[i] ? RPC_PEER_GONE : health(n, rp->addr[i]);
	}
}

/* Whom a get asks (quorum_read_set), by address; *self: this node reads
 * too. */
static size_t
read_set(struct node *n, const struct replicas *rp, const char **addrs,
    bool *self)
{
	struct walk w;
	walk_of(n, rp, &w);
	uint32_t idx[REPLICAS_MAX];
	size_t k = quorum_read_set(&w, idx, self);
	for (size_t i = 0; i < k; i++)
		addrs[i] = rp->addr[idx[i]];
	return k;
}

/* A read of pos (a get, a range read): whom it asks (read_set: addrs,
 * *na, and *self when this node reads too) and the answers it needs (*r):
 * R (want, 0: the cluster's), plus one per new replica during a transfer
 * (as a put waits for one more ack: coord_put), whatever ring the writer
 * had. */
static int
read_plan(struct node *n, const struct keypos *pos, uint32_t want,
    struct replicas *rp, const char **addrs, size_t *na, bool *self,
    uint32_t *r)
{
	int rc = gossip_replicas(n->gossip, pos, rp);
	if (rc)
		return rc;
	*r = clamp(want, rp->s.r, rp->read_count) +
	    (rp->count - rp->read_count);
	*self = false;
	*na = read_set(n, rp, addrs, self);
	return 0;
}

/*
 * A blob is the same on every replica that has it, so one copy answers:
 * this node's own when it has one, else the first replica that does.  No
 * read repair (anti-entropy fills in a replica that lacks it).
 */
static int
blob_get(struct node *n, const struct coord_req *rq, struct vset *out)
{
	int rc = local_get(n, rq, out);
	if (rc != 0 || vset_live(out) > 0)
		return rc;
	struct replicas rp;
	if ((rc = gossip_replicas(n->gossip, &rq->pos, &rp)) != 0)
		return rc;
	bool self;
	const char *addrs[REPLICAS_MAX];
	size_t na = read_set(n, &rp, addrs, &self);
	if (na == 0)
		return 0;
	struct buf b;
	buf_init(&b);
	node_req_begin(n, &b, WIRE_GET_REQ);
	wire_put(&b, F_KEY, rq->key, rq->klen);
	wire_put_u32(&b, F_FLAGS, WIRE_F_LOCAL);
	if ((rc = wire_seal(&b, &n->cfg.keys)) != 0) {
		buf_fini(&b);
		return rc;
	}
	struct rpc_reply rr[REPLICAS_MAX];
	rpc_call_many(n->pool, addrs, na, &b, na, n->cfg.timeout_ms, 0, rr);
	for (size_t i = 0; i < na; i++) {
		const struct wire_field *f =
		    rr[i].rc ? NULL : wire_find(&rr[i].m, F_VSET);
		if (f && vset_live(out) == 0) {
			struct rd rd;
			rd_init(&rd, f->data, f->len);
			vset_fini(out);
			if (vset_decode(&rd, n->cfg.max_value, out) != 0)
				vset_fini(out);
		}
		rpc_reply_fini(&rr[i]);
	}
	buf_fini(&b);
	return 0;
}

/* A get under way: whom it asks and what it has so far. */
struct get_plan {
	struct replicas rp;
	uint32_t r;      /* answers needed, this node's included */
	bool self_reads; /* this node is one of the replicas read */
	const char *addrs[REPLICAS_MAX]; /* the others asked (into rp) */
	size_t na;
	size_t need;     /* of them */
	struct vset mine; /* this node's copy */
	struct buf b;    /* the request to the others */
};

static void
get_plan_fini(struct get_plan *gp)
{
	vset_fini(&gp->mine);
	buf_fini(&gp->b);
}

/* Whom to ask, this node's own copy, the request for the others. */
static int
get_begin(struct node *n, const struct coord_req *rq, struct get_plan *gp)
{
	vset_init(&gp->mine);
	buf_init(&gp->b);
	int rc = read_plan(n, &rq->pos, rq->r, &gp->rp, gp->addrs, &gp->na,
	    &gp->self_reads, &gp->r);
	if (rc)
		return rc;
	size_t got = 0;
	if (gp->self_reads) {
		if ((rc = local_get(n, rq, &gp->mine)) != 0)
			return rc;
		got = 1;
	}
	gp->need = gp->r > got ? gp->r - got : 0;
	if (gp->na == 0) /* a one-node cluster asks nobody */
		return 0;
	node_req_begin(n, &gp->b, WIRE_GET_REQ);
	wire_put(&gp->b, F_KEY, rq->key, rq->klen);
	wire_put_u32(&gp->b, F_FLAGS, WIRE_F_LOCAL);
	return wire_seal(&gp->b, &n->cfg.keys);
}

/* Read repair without a wait: the merge queued to the local store and
 * sent to the stale replicas; nobody waits for either.  The local one
 * outlives the get (and its request, which held the key): a copy of
 * both. */
struct repair {
	struct vset set;
	uint8_t key[];
};

static void
repair_local_done(void *arg, int rc)
{
	(void)rc;
	struct repair *rp = arg;
	vset_fini(&rp->set);
	mem_free(rp);
}

static void
repair_sent(void *arg, struct rpc_reply *out, size_t n, size_t ok)
{
	(void)arg;
	(void)out;
	(void)n;
	(void)ok;
}

static size_t
repair_start(struct node *n, const struct coord_req *rq, bool self,
    const char *const *stale, size_t ns, const struct vset *set)
{
	size_t started = 0;
	if (self) {
		struct repair *rp = mem_calloc(1, sizeof(*rp) + rq->klen);
		int rc = rp ? vset_copy(&rp->set, set) : -ENOMEM;
		if (rc == 0) {
			memcpy(rp->key, rq->key, rq->klen);
			rc = store_update_async(n->store, rp->key, rq->klen,
			    store_apply_merge, &rp->set, repair_local_done, rp);
		}
		if (rc == 0)
			started++;
		else if (rp)
			repair_local_done(rp, rc);
	}
	if (ns > 0) {
		struct buf b;
		buf_init(&b);
		if (replica_request(n, &b, rq->key, rq->klen, set, NULL) == 0 &&
		    rpc_call_async(n->pool, stale, ns, &b, 0, ns,
		        n->cfg.timeout_ms, 0, repair_sent, NULL) == 0)
			started += ns;
		buf_fini(&b);
	}
	return started;
}

/* The answers of a get: each replica's set, merged into out. */
struct get_answers {
	struct vset theirs[REPLICAS_MAX];
	bool answered[REPLICAS_MAX];
	size_t got; /* this node's copy included */
};

static void
get_answers_fini(struct get_answers *ga, size_t na)
{
	for (size_t i = 0; i < na; i++)
		vset_fini(&ga->theirs[i]);
}

/* Merge this node's copy and every answer in rr into out (initialised);
 * ans gets each answer's set (get_answers_fini). */
static int
get_merge(struct node *n, struct get_plan *gp, const struct rpc_reply *rr,
    struct get_answers *ans, struct vset *out)
{
	ans->got = gp->self_reads ? 1 : 0;
	for (size_t i = 0; i < gp->na; i++) {
		vset_init(&ans->theirs[i]);
		ans->answered[i] = false;
	}
	int rc = vset_copy(out, &gp->mine);
	for (size_t i = 0; i < gp->na && rc == 0; i++) {
		const struct wire_field *f =
		    rr[i].rc ? NULL : wire_find(&rr[i].m, F_VSET);
		if (!f)
			continue;
		struct rd rd;
		rd_init(&rd, f->data, f->len);
		if (vset_decode(&rd, n->cfg.max_value, &ans->theirs[i]) != 0 ||
		    rd_left(&rd) != 0) {
			vset_fini(&ans->theirs[i]);
			continue;
		}
		ans->answered[i] = true;
		ans->got++;
		rc = vset_merge(out, &ans->theirs[i]);
		rc = rc < 0 ? rc : 0;
	}
	return rc;
}

/* DYN_EQUORUM (counted) when fewer than R replicas answered. */
static int
get_quorum(struct node *n, const struct get_plan *gp,
    const struct get_answers *ans)
{
	if (ans->got >= gp->r)
		return 0;
	metrics_count(&n->metrics, METRICS_QUORUM_FAIL_GET, 1);
	return DYN_EQUORUM;
}

/* Read repair: whoever answered with less than the merge gets it, and
 * this node's copy too (repair_start: not waited for). */
static void
get_repair(struct node *n, const struct coord_req *rq, struct get_plan *gp,
    const struct get_answers *ans, const struct vset *merged)
{
	const char *stale[REPLICAS_MAX];
	size_t ns = 0;
	for (size_t i = 0; i < gp->na; i++)
		if (ans->answered[i] && !vset_contains(&ans->theirs[i], merged))
			stale[ns++] = gp->addrs[i];
	bool self = gp->self_reads && !vset_contains(&gp->mine, merged);
	size_t repaired = repair_start(n, rq, self, stale, ns, merged);
	if (ns > 0)
		LOG_DEBUG("read repair of %zu replicas", ns);
	metrics_count(&n->metrics, METRICS_READ_REPAIRS, repaired);
}

int
coord_get(struct node *n, const struct coord_req *rq, struct vset *out)
{
	if (rq->flags & WIRE_F_LOCAL)
		return local_get(n, rq, out);
	if (rq->flags & WIRE_F_BLOB)
		return blob_get(n, rq, out);

	struct get_plan gp;
	int rc = get_begin(n, rq, &gp);
	struct rpc_reply rr[REPLICAS_MAX];
	if (rc == 0 && gp.na > 0)
		rpc_call_many(n->pool, gp.addrs, gp.na, &gp.b, gp.need,
		    n->cfg.timeout_ms, READ_GRACE_MS, rr);
	if (rc == 0) {
		struct get_answers ans;
		rc = get_merge(n, &gp, rr, &ans, out);
		if (rc == 0)
			rc = get_quorum(n, &gp, &ans);
		if (rc == 0)
			get_repair(n, rq, &gp, &ans, out);
		get_answers_fini(&ans, gp.na);
		for (size_t i = 0; i < gp.na; i++)
			rpc_reply_fini(&rr[i]);
	}
	get_plan_fini(&gp);
	if (rc)
		vset_fini(out);
	return rc;
}

/*
 * coord_get_start's get, while the answers are out: answered, and its
 * read repair sent, once R replicas have answered and the others did
 * too or the grace ran out (rpc_call_async's enough), as coord_get.  The
 * repair goes out before the answer, so it lands long before a delete
 * the asker makes next could have its tombstone purged: a repair sent
 * later, when a slow replica finally answered, could bring back a value
 * deleted meanwhile.
 */
struct get_async {
	struct node *n;
	struct coord_req rq;
	struct get_plan gp;
	coord_get_fn done;
	void *arg;
};

static void
get_answered(void *arg, struct rpc_reply *rr, size_t n, size_t ok)
{
	(void)n;
	(void)ok;
	struct get_async *ga = arg;
	struct get_answers ans;
	struct vset out;
	vset_init(&out);
	int rc = get_merge(ga->n, &ga->gp, rr, &ans, &out);
	if (rc == 0)
		rc = get_quorum(ga->n, &ga->gp, &ans);
	if (rc == 0)
		get_repair(ga->n, &ga->rq, &ga->gp, &ans, &out);
	get_answers_fini(&ans, ga->gp.na);
	ga->done(ga->arg, rc, &out);
	vset_fini(&out);
	get_plan_fini(&ga->gp);
	mem_free(ga);
}

int
coord_get_start(struct node *n, const struct coord_req *rq,
    coord_get_fn done, void *arg)
{
	if (rq->flags & (WIRE_F_LOCAL | WIRE_F_BLOB))
		return -EINVAL;
	struct get_async *ga = mem_calloc(1, sizeof(*ga));
	if (!ga)
		return -ENOMEM;
	ga->n = n;
	ga->rq = *rq;
	ga->done = done;
	ga->arg = arg;
	int rc = get_begin(n, rq, &ga->gp);
	if (rc == 0 && !ga->gp.rp.self_in && !(rq->flags & WIRE_F_FORWARDED))
		rc = -EAGAIN; /* to forward: coord_get's caller does */
	if (rc == 0 && ga->gp.na == 0) { /* a one-node cluster */
		get_answered(ga, NULL, 0, 0);
		return 0;
	}
	/* The group reads the plan only while it starts the calls. */
	if (rc == 0)
		rc = rpc_call_async(n->pool, ga->gp.addrs, ga->gp.na, &ga->gp.b,
		    0, ga->gp.need, n->cfg.timeout_ms, READ_GRACE_MS,
		    get_answered, ga);
	if (rc != 0) {
		get_plan_fini(&ga->gp);
		mem_free(ga);
	}
	return rc;
}

struct put_arg {
	const struct vclock *ctx;
	_Atomic uint64_t *actor; /* the node's: read when the version is made */
	uint64_t now_ms;
	const void *value;
	size_t len;
	bool tombstone;
	struct version nv; /* out: a copy of the new version */
	uint32_t live;     /* out: live versions the put left */
};

/* A blob's one version (blob.h): the same from every writer, so a blob
 * already stored is left as it is. */
static int
apply_blob(struct vset *cur, void *arg)
{
	struct put_arg *a = arg;
	struct version v;
	replica_blob_version(&v, a->value, a->len);
	version_fini(&a->nv);
	int rc = version_copy(&a->nv, &v);
	if (rc != 0)
		return rc;
	struct vset one = {.n = 1, .v = &v};
	return store_apply_merge(cur, &one);
}

static int
apply_put(struct vset *cur, void *arg)
{
	struct put_arg *a = arg;
	const struct version *nv;
	int rc = vset_put(cur, a->ctx, atomic_load(a->actor), a->now_ms,
	    a->value, a->len, a->tombstone, &nv);
	if (rc != 0)
		return rc;
	/* Called again when the batch is retried: start over. */
	a->live = vset_live(cur);
	version_fini(&a->nv);
	return version_copy(&a->nv, nv);
}

/*
 * The acks a put waits for.  During a transfer (count > read_count: P new
 * replicas beside the current ones) a put waits for W + P acks and a get
 * for R + P answers: any W + P (R + P) of the N + P nodes include W (R)
 * of the current list and of the next, so a write is read back whichever
 * ring each side has, the old, the pending or the committed one
 * (Cassandra's rule for pending ranges, on reads too).
 */
static uint32_t
put_acks(const struct coord_req *rq, const struct replicas *rp)
{
	return clamp(rq->w, rp->s.w, rp->read_count) +
	    (rp->count - rp->read_count);
}

/* The plan's destinations into d; their number. */
static size_t
put_dests(const struct replicas *rp, const struct put_plan *plan,
    struct dest *d)
{
	size_t nd = 0;
	for (size_t i = 0; i < plan->nd; i++) {
		const struct quorum_dest *q = &plan->d[i];
		d[nd++] = (struct dest){rp->addr[q->at], rp->name[q->at],
		    q->hint_for >= 0 ? rp->name[q->hint_for] : NULL, 0};
	}
	return nd;
}

/* After the first sends, with acks of w: the destinations that failed
 * get stand-ins, once (a hint here when none is left); DYN_EQUORUM when
 * that still makes too few.  Waits for the stand-ins. */
static int
put_standins(struct node *n, const struct coord_req *rq, struct walk *wk,
    struct put_plan *plan, const struct dest *d, size_t nd,
    const struct vset *one, uint32_t w, size_t acks)
{
	const struct replicas *rp = wk->rp;
	if (acks < w) {
		struct dest d2[REPLICAS_MAX];
		size_t nd2 = 0;
		for (size_t i = 0; i < nd; i++) {
			if (d[i].rc == 0 || d[i].rc == DYN_ETIMEDOUT)
				continue; /* acked, or maybe still landing */
			const char *intended = d[i].hint ? d[i].hint : d[i].name;
			int s = quorum_standin_take(wk, plan, RPC_PEER_SUSPECT);
			if (s < 0) {
				store_hint_add(n->store, intended, rq->key,
				    rq->klen, one);
				continue;
			}
			d2[nd2++] = (struct dest){rp->addr[s], rp->name[s],
			    intended, 0};
		}
		if (nd2 > 0)
			acks += replicate_to(n, d2, nd2, rq->key, rq->klen,
			    one, w - acks);
	}
	if (acks < w) {
		LOG_DEBUG("put: %zu of %u acks", acks, w);
		metrics_count(&n->metrics, METRICS_QUORUM_FAIL_PUT, 1);
		return DYN_EQUORUM;
	}
	return 0;
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
	uint32_t w = put_acks(rq, &rp);

	struct put_arg a = {
		.ctx = ctx,
		.actor = &n->actor,
		.now_ms = node_now_ms(),
		.value = value,
		.len = len,
		.tombstone = (rq->flags & WIRE_F_TOMBSTONE) != 0,
	};
	struct vset one = {.n = 1, .v = &a.nv}; /* what replicas get */

	/* Every healthy replica gets the version, each other one a stand-in
	 * (quorum.h). */
	struct walk wk;
	walk_of(n, &rp, &wk);
	struct put_plan plan;
	quorum_plan_put(&wk, &plan);
	struct dest d[REPLICAS_MAX];
	size_t nd = put_dests(&rp, &plan, d);
	size_t acks = rp.self_in ? 1 : 0;

	/* A blob's version is known before it is stored (blob.h), so the
	 * replicas get it while this node stores it: one commit's wait, not
	 * two in a row.  Any other version is made by the local store. */
	bool blob = rq->flags & WIRE_F_BLOB;
	struct replication r = {0};
	if (blob) {
		struct version bv;
		replica_blob_version(&bv, value, len);
		struct vset bset = {.n = 1, .v = &bv};
		replicate_start(n, &r, d, nd, rq->key, rq->klen, &bset);
	}
	rc = store_update(n->store, rq->key, rq->klen,
	    blob ? apply_blob : apply_put, &a);
	if (rc == STORE_SKIP)
		rc = 0;
	if (rc) {
		if (blob)
			replicate_finish(&r, 0);
		goto out;
	}
	version_context(&a.nv, newctx);
	metrics_count(&n->metrics, METRICS_SIBLINGS, a.live > 1);
	if (plan.local_standin >= 0) {
		/* This node is the stand-in. */
		bool held = store_hint_add(n->store,
		    rp.name[plan.local_standin], rq->key, rq->klen, &one) == 0;
		metrics_count(&n->metrics, METRICS_STANDIN_WRITES, held);
		acks += held;
	}
	for (size_t m = 0; m < plan.nhints; m++)
		store_hint_add(n->store, rp.name[plan.hints[m]], rq->key,
		    rq->klen, &one);

	size_t need = w > acks ? w - acks : 0;
	if (blob)
		acks += replicate_finish(&r, need);
	else if (nd > 0)
		acks += replicate_to(n, d, nd, rq->key, rq->klen, &one, need);

	rc = put_standins(n, rq, &wk, &plan, d, nd, &one, w, acks);
out:
	version_fini(&a.nv);
	return rc;
}

/*
 * coord_put_start's put, while its parts are out: the local commit (the
 * store's writer calls back) and the replicas' writes (rpc_call_async),
 * sent as soon as the writer has made the version (put_applied), while
 * the commit's fsync runs, or for a blob at once; the last part to end
 * answers.  Too few acks: the stand-ins are a worker's (coord_defer_fn),
 * as they may wait.
 */
struct put_async {
	struct node *n;
	struct coord_req rq;
	struct vclock ctx;
	struct put_arg a;
	struct version bv; /* a blob's version (its bytes: the request's) */
	struct vset one;   /* what replicas get: a.nv, or bv */
	struct replicas rp;
	struct walk wk;
	struct put_plan plan;
	struct dest d[REPLICAS_MAX];
	size_t nd;
	uint32_t w;
	size_t acks;
	bool blob;
	bool sent; /* the replication is out (in the writer: put_applied) */
	pthread_mutex_t lock;
	int parts; /* still out: the commit, the replication */
	int rc;    /* the commit's */
	struct vclock newctx;
	coord_put_fn done;
	coord_defer_fn defer;
	void *arg;
};

static void
put_async_end(struct put_async *pa, int rc)
{
	pa->done(pa->arg, rc, &pa->newctx);
	version_fini(&pa->a.nv);
	pthread_mutex_destroy(&pa->lock);
	mem_free(pa);
}

/* In a worker: the stand-ins for the replicas that failed. */
static void
put_async_standins(void *arg)
{
	struct put_async *pa = arg;
	put_async_end(pa, put_standins(pa->n, &pa->rq, &pa->wk, &pa->plan,
	    pa->d, pa->nd, &pa->one, pa->w, pa->acks));
}

/* A part is done: the last one answers, or hands the stand-ins to a
 * worker. */
static void
put_async_part(struct put_async *pa)
{
	pthread_mutex_lock(&pa->lock);
	bool last = --pa->parts == 0;
	pthread_mutex_unlock(&pa->lock);
	if (!last)
		return;
	if (pa->rc != 0)
		put_async_end(pa, pa->rc);
	else if (pa->acks < pa->w)
		pa->defer(pa->arg, put_async_standins, pa);
	else
		put_async_end(pa, 0);
}

static void
put_replicated(void *arg, struct rpc_reply *out, size_t n, size_t ok)
{
	struct put_async *pa = arg;
	size_t standins = 0;
	for (size_t i = 0; i < n; i++) {
		pa->d[i].rc = out[i].rc;
		standins += pa->d[i].hint && out[i].rc == 0;
	}
	metrics_count(&pa->n->metrics, METRICS_STANDIN_WRITES, standins);
	pthread_mutex_lock(&pa->lock);
	pa->acks += ok;
	pthread_mutex_unlock(&pa->lock);
	put_async_part(pa);
}

/* The replicas' acks the put still needs. */
static size_t
put_need(const struct put_async *pa)
{
	return pa->w > pa->acks ? pa->w - pa->acks : 0;
}

/* Send set to the destinations (need acks asked for). */
static void
put_replicate(struct put_async *pa, size_t need)
{
	struct node *n = pa->n;
	struct buf b[REPLICAS_MAX];
	const char *addrs[REPLICAS_MAX] = {0};
	size_t nd = pa->nd; /* pa may be gone once the calls are out */
	memset(b, 0, sizeof(b));
	replicate_reqs(n, pa->d, nd, pa->rq.key, pa->rq.klen, &pa->one, b,
	    addrs);
	int rc = 0;
	for (size_t i = 0; i < nd && rc == 0; i++)
		rc = pa->d[i].rc;
	if (rc == 0)
		rc = rpc_call_async(n->pool, addrs, nd, b, 1, need,
		    n->cfg.timeout_ms, 0, put_replicated, pa);
	for (size_t i = 0; i < nd; i++)
		buf_fini(&b[i]);
	if (rc != 0) { /* none went out: the stand-ins may do better */
		for (size_t i = 0; i < nd; i++)
			pa->d[i].rc = rc;
		put_async_part(pa);
	}
}

/* The writer has made the version, not committed it yet: the replicas
 * get it now, so their commits run beside this one. */
static void
put_applied(void *arg)
{
	struct put_async *pa = arg;
	pa->sent = true;
	put_replicate(pa, put_need(pa));
}

/* The local commit is done (in the store's writer). */
static void
put_committed(void *arg, int rc)
{
	struct put_async *pa = arg;
	if (rc == STORE_SKIP)
		rc = 0;
	pa->rc = rc;
	if (rc == 0) {
		version_context(&pa->a.nv, &pa->newctx);
		metrics_count(&pa->n->metrics, METRICS_SIBLINGS, pa->a.live > 1);
	} else if (pa->sent) {
		/* Other replicas may store a dot this store does not know. */
		node_actor_lost(pa->n, pa->a.nv.dot.actor);
	}
	if (pa->blob || pa->sent) {
		put_async_part(pa);
	} else {
		put_async_end(pa, rc); /* nothing was sent: no other part */
	}
}

int
coord_put_start(struct node *n, const struct coord_req *rq,
    const struct vclock *ctx, const void *value, size_t len,
    coord_put_fn done, coord_defer_fn defer, void *arg)
{
	struct put_async *pa = mem_calloc(1, sizeof(*pa));
	if (!pa)
		return -ENOMEM;
	int rc = gossip_replicas(n->gossip, &rq->pos, &pa->rp);
	if (rc == 0 && !pa->rp.self_in)
		rc = -EAGAIN; /* a stand-in coordinator: coord_put */
	if (rc == 0) {
		walk_of(n, &pa->rp, &pa->wk);
		quorum_plan_put(&pa->wk, &pa->plan);
		if (pa->plan.local_standin >= 0 || pa->plan.nhints > 0)
			rc = -EAGAIN; /* hints to file here: coord_put */
	}
	if (rc != 0) {
		mem_free(pa);
		return rc;
	}
	pa->n = n;
	pa->rq = *rq;
	pa->ctx = *ctx;
	pa->w = put_acks(rq, &pa->rp);
	pa->a = (struct put_arg){
		.ctx = &pa->ctx,
		.actor = &n->actor,
		.now_ms = node_now_ms(),
		.value = value,
		.len = len,
		.tombstone = (rq->flags & WIRE_F_TOMBSTONE) != 0,
	};
	pa->one = (struct vset){.n = 1, .v = &pa->a.nv};
	pa->nd = put_dests(&pa->rp, &pa->plan, pa->d);
	pa->acks = 1; /* this node's commit, once done */
	pa->blob = rq->flags & WIRE_F_BLOB;
	pa->parts = 2; /* the commit and the replication */
	pa->done = done;
	pa->defer = defer;
	pa->arg = arg;
	pthread_mutex_init(&pa->lock, NULL);
	vclock_init(&pa->newctx);
	if (pa->blob) {
		/* Its version is known before it is stored (blob.h): the
		 * replicas get it while this node stores it. */
		replica_blob_version(&pa->bv, value, len);
		pa->one = (struct vset){.n = 1, .v = &pa->bv};
		put_replicate(pa, put_need(pa));
	}
	rc = store_update_async_applied(n->store, pa->rq.key, pa->rq.klen,
	    pa->blob ? apply_blob : apply_put, &pa->a,
	    pa->blob ? NULL : put_applied, put_committed, pa);
	if (rc != 0 && pa->blob) {
		put_committed(pa, rc); /* the replication is out: its end */
		return 0;              /* answers */
	}
	if (rc != 0) {
		pthread_mutex_destroy(&pa->lock);
		mem_free(pa);
	}
	return rc;
}

/* ---- the range read ------------------------------------------------ */

/* What a record costs a page: its key and values, and some for the
 * clocks. */
static size_t
record_bytes(size_t klen, const struct vset *set)
{
	size_t b = klen + 16;
	for (uint32_t i = 0; i < set->n; i++)
		b += set->v[i].len + 64;
	return b;
}

struct page_scan {
	const struct coord_range *rq;
	struct reclist *out;
	size_t bytes;
	bool full;
};

static int
page_one(const struct keypos *pos, const uint8_t *key, size_t klen,
    const struct vset *set, void *arg)
{
	struct page_scan *ps = arg;
	const struct coord_range *rq = ps->rq;
	if (memcmp(pos->b, rq->pos.b, KEYPOS_LEN) != 0 || klen < rq->hlen ||
	    memcmp(key, rq->hdr, rq->hlen) != 0)
		return 1; /* past the part */
	size_t sz = record_bytes(klen, set);
	if (ps->out->n >= rq->limit ||
	    (ps->out->n > 0 && ps->bytes + sz > rq->limit_bytes)) {
		ps->full = true;
		return 1;
	}
	ps->bytes += sz;
	return reclist_add(ps->out, rq->limit, key, klen, set);
}

/* This node's page: its records after the cursor (from the header, the
 * part's first possible key, without one). */
static int
local_page(struct node *n, const struct coord_range *rq, struct reclist *out,
    bool *full)
{
	struct page_scan ps = {.rq = rq, .out = out};
	int rc = rq->start
	    ? store_scan_from(n->store, rq->start, rq->slen, true, NULL,
	          page_one, &ps)
	    : store_scan_from(n->store, rq->hdr, rq->hlen, false, NULL,
	          page_one, &ps);
	*full = ps.full;
	if (rc < 0) {
		reclist_fini(out);
		return rc;
	}
	return 0;
}

/* Send each stale replica what it lacked, one MERGE_REQ each (as
 * anti-entropy does), in parallel; the count repaired. */
static size_t
range_repair(struct node *n, const char *const *addrs,
    const struct reclist *fix, size_t na)
{
	const char *to[REPLICAS_MAX];
	struct buf b[REPLICAS_MAX];
	struct rpc_reply rr[REPLICAS_MAX];
	size_t k = 0;
	for (size_t i = 0; i < na; i++) {
		if (fix[i].n == 0)
			continue;
		buf_init(&b[k]);
		node_req_begin(n, &b[k], WIRE_MERGE_REQ);
		size_t at = wire_begin_field(&b[k], F_RECORDS);
		reclist_encode(fix[i].keys, fix[i].sets, fix[i].n, &b[k]);
		wire_end_field(&b[k], at);
		if (wire_seal(&b[k], &n->cfg.keys) != 0) {
			buf_fini(&b[k]);
			continue;
		}
		to[k++] = addrs[i];
	}
	size_t ok = k > 0 ? rpc_call_each(n->pool, to, k, b, k,
	                        n->cfg.timeout_ms, rr)
	                  : 0;
	for (size_t i = 0; i < k; i++) {
		rpc_reply_fini(&rr[i]);
		buf_fini(&b[i]);
	}
	return ok;
}

/* The RANGE_REQ of a replica's page. */
static int
range_request(struct node *n, const struct coord_range *rq, struct buf *b)
{
	node_req_begin(n, b, WIRE_RANGE_REQ);
	wire_put(b, F_PART_KEY, rq->hdr + KEYPOS_PLACED_HDR,
	    rq->hlen - KEYPOS_PLACED_HDR);
	if (rq->start)
		wire_put(b, F_START, rq->start, rq->slen);
	wire_put_u32(b, F_LIMIT, rq->limit);
	wire_put_u32(b, F_LIMIT_BYTES, rq->limit_bytes);
	wire_put_u32(b, F_FLAGS, WIRE_F_LOCAL);
	return wire_seal(b, &n->cfg.keys);
}

int
coord_range(struct node *n, const struct coord_range *rq,
    struct reclist *out, bool *more, struct buf *next)
{
	reclist_fini(out);
	buf_reset(next);
	*more = false;
	if (rq->flags & WIRE_F_LOCAL) {
		int rc = local_page(n, rq, out, more);
		if (rc == 0 && *more)
			buf_put(next, out->keys[out->n - 1].data,
			    out->keys[out->n - 1].len);
		return rc ? rc : buf_err(next);
	}

	struct replicas rp;
	const char *addrs[REPLICAS_MAX];
	size_t na;
	bool self_reads;
	uint32_t r;
	int rc = read_plan(n, &rq->pos, rq->r, &rp, addrs, &na, &self_reads, &r);
	if (rc)
		return rc;
	/* pages[0..na): the replicas asked; pages[na]: this node's. */
	struct reclist pages[REPLICAS_MAX + 1], fix[REPLICAS_MAX + 1];
	bool ok[REPLICAS_MAX + 1] = {false}, full[REPLICAS_MAX + 1] = {false};
	for (size_t i = 0; i <= na; i++) {
		reclist_init(&pages[i]);
		reclist_init(&fix[i]);
	}
	size_t got = 0;
	if (self_reads) {
		if ((rc = local_page(n, rq, &pages[na], &full[na])) != 0)
			goto out;
		ok[na] = true;
		got = 1;
	}
	struct buf b;
	buf_init(&b);
	struct rpc_reply rr[REPLICAS_MAX];
	size_t need = r > got ? r - got : 0;
	if (na > 0) {
		if ((rc = range_request(n, rq, &b)) != 0) {
			buf_fini(&b);
			goto out;
		}
		rpc_call_many(n->pool, addrs, na, &b, need, n->cfg.timeout_ms,
		    READ_GRACE_MS, rr);
	}
	for (size_t i = 0; i < na; i++) {
		const struct wire_field *f =
		    rr[i].rc ? NULL : wire_find(&rr[i].m, F_RECORDS);
		full[i] = f && wire_find(&rr[i].m, F_START) != NULL;
		if (f && reclist_decode(f->data, f->len, n->cfg.max_value,
		             &pages[i]) == 0 &&
		    rangeread_page_sane(rq->hdr, rq->hlen, rq->start, rq->slen,
		        &pages[i], full[i])) {
			ok[i] = true;
			got++;
		} else if (f) {
			LOG_WARN("range read: a malformed page from %s", addrs[i]);
			reclist_fini(&pages[i]);
		}
		rpc_reply_fini(&rr[i]);
	}
	buf_fini(&b);
	if (got < r) {
		metrics_count(&n->metrics, METRICS_QUORUM_FAIL_GET, 1);
		rc = DYN_EQUORUM;
		goto out;
	}

	const struct buf *bound = rangeread_bound(pages, ok, full, na + 1);
	if ((rc = rangeread_merge(pages, ok, na + 1, bound, out, fix)) != 0)
		goto out;
	if (bound) {
		*more = true;
		buf_put(next, bound->data, bound->len);
		if ((rc = buf_err(next)) != 0)
			goto out;
	}
	/* Counted by replica repaired, as a get counts (one key each). */
	size_t repaired = range_repair(n, addrs, fix, na);
	uint32_t mine = 0;
	if (fix[na].n > 0 && replica_apply_list(n, &fix[na], store_apply_merge,
	                         &mine, NULL) == 0)
		repaired++;
	if (repaired > 0)
		LOG_DEBUG("range read: repaired %zu replicas", repaired);
	metrics_count(&n->metrics, METRICS_READ_REPAIRS, repaired);
out:
	for (size_t i = 0; i <= na; i++) {
		reclist_fini(&pages[i]);
		reclist_fini(&fix[i]);
	}
	if (rc)
		reclist_fini(out);
	return rc;
}
