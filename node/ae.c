#include "ae.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "bgthread.h"
#include "blob.h"
#include "err.h"
#include "gossip.h"
#include "leaflist.h"
#include "log.h"
#include "mem.h"
#include "merkle.h"
#include "mono.h"
#include "node_i.h"
#include "reclist.h"
#include "replica.h"
#include "ring.h"
#include "rpc.h"
#include "store.h"

/* Records per message, in bytes (the rest waits for the next round). */
#define AE_BATCH_BYTES (4u << 20)
/* Tombstones purged, or stray records swept, per round at most. */
#define AE_PURGE_MAX 1024
#define AE_SWEEP_MAX 1024

struct ae {
	struct node *node;
	int interval_ms;
	int64_t grace_ms; /* < 0: tombstones are kept for ever */
	pthread_mutex_t lock; /* st, last_diff_at, differ, nq */
	uint32_t next_part;
	struct ae_stats st;
	uint64_t last_diff_at; /* mono_ms of the last difference found */
	uint8_t *differ;    /* per partition: differed when last compared */
	uint32_t nq;        /* partitions in differ */
	struct bgthread thread;
};

static void
count(struct ae *a, uint64_t *field, uint64_t k)
{
	pthread_mutex_lock(&a->lock);
	*field += k;
	pthread_mutex_unlock(&a->lock);
}

/* ---- record lists -------------------------------------------------- */

/* Records picked from a scan, to delete if unchanged (purge, sweep). */
struct recs {
	uint32_t n, max;
	size_t bytes;
	struct buf *keys;
	struct vset *sets;
	uint64_t *ts; /* the newest version time of each set */
};

static void
recs_fini(struct recs *l)
{
	for (uint32_t i = 0; i < l->n; i++) {
		buf_fini(&l->keys[i]);
		vset_fini(&l->sets[i]);
	}
	mem_free(l->keys);
	mem_free(l->sets);
	mem_free(l->ts);
	memset(l, 0, sizeof(*l));
}

/* Append a copy of (key, set); 1 when the list is full (stops a scan). */
static int
recs_add(struct recs *l, const uint8_t *key, size_t klen,
    const struct vset *set, uint64_t ts)
{
	if (l->n >= l->max || l->bytes > AE_BATCH_BYTES)
		return 1;
	if (!l->keys) {
		l->keys = mem_calloc(l->max, sizeof(*l->keys));
		l->sets = mem_calloc(l->max, sizeof(*l->sets));
		l->ts = mem_calloc(l->max, sizeof(*l->ts));
		if (!l->keys || !l->sets || !l->ts)
			return -ENOMEM;
	}
	struct buf *k = &l->keys[l->n];
	buf_init(k);
	buf_put(k, key, klen);
	int rc = buf_err(k);
	if (rc == 0)
		rc = vset_copy(&l->sets[l->n], set);
	if (rc) {
		buf_fini(k);
		return rc;
	}
	l->ts[l->n++] = ts;
	l->bytes += klen;
	for (uint32_t i = 0; i < set->n; i++)
		l->bytes += set->v[i].len + 64;
	return 0;
}

/* Delete each record of l from the local store if it still holds exactly
 * the set listed; the number deleted. */
static uint32_t
recs_delete(struct node *n, const struct recs *l)
{
	struct store_update *ups = mem_calloc(l->n ? l->n : 1, sizeof(*ups));
	uint32_t done = 0;
	if (!ups)
		return 0;
	for (uint32_t i = 0; i < l->n; i++)
		ups[i] = (struct store_update){l->keys[i].data, l->keys[i].len,
		    store_apply_delete_exact, &l->sets[i], 0};
	if (store_update_many(n->store, ups, l->n) == 0)
		for (uint32_t i = 0; i < l->n; i++)
			done += ups[i].rc == 0;
	mem_free(ups);
	return done;
}

/* Append l as an F_RECORDS field. */
static void
recs_put(const struct recs *l, struct buf *out)
{
	size_t at = wire_begin_field(out, F_RECORDS);
	reclist_encode(l->keys, l->sets, l->n, out);
	wire_end_field(out, at);
}

/* A tombstone: every version is a delete; *ts gets the newest one's time. */
static bool
is_tombstone(const struct vset *set, uint64_t *ts)
{
	*ts = 0;
	for (uint32_t i = 0; i < set->n; i++) {
		if (!set->v[i].tombstone)
			return false;
		if (set->v[i].ts_ms > *ts)
			*ts = set->v[i].ts_ms;
	}
	return set->n > 0;
}

/* ---- trees --------------------------------------------------------- */

struct build {
	struct merkle *t;
	struct buf enc;
	struct recs *cands; /* tombstones written before cutoff, or NULL */
	uint64_t cutoff;
};

static int
add_one(const struct keypos *pos, const uint8_t *key, size_t klen,
    const struct vset *set, void *arg)
{
	struct build *b = arg;
	uint8_t d[MERKLE_HASH_LEN];
	buf_reset(&b->enc);
	vset_encode(set, &b->enc);
	int rc = buf_err(&b->enc);
	if (rc == 0)
		rc = merkle_digest(b->enc.data, b->enc.len, d);
	if (rc == 0)
		rc = merkle_add(b->t, pos, key, klen, d);
	uint64_t ts;
	if (rc == 0 && b->cands && is_tombstone(set, &ts) && ts <= b->cutoff &&
	    recs_add(b->cands, key, klen, set, ts) < 0)
		rc = -ENOMEM;
	return rc;
}

/* This node's tree of partition part, from a store snapshot; with cands,
 * also the tombstones in it whose newest version is from cutoff or older. */
static int
build_tree(struct node *n, uint32_t q, uint32_t part, struct merkle **out,
    struct recs *cands, uint64_t cutoff)
{
	struct build b = {.cands = cands, .cutoff = cutoff};
	buf_init(&b.enc);
	int rc = merkle_new(q, part, NULL, &b.t);
	if (rc == 0) {
		struct keypos from, to;
		bool to_end;
		merkle_range(b.t, &from, &to, &to_end);
		rc = store_scan(n->store, &from, to_end ? NULL : &to, add_one,
		    &b);
	}
	if (rc == 0)
		rc = merkle_finish(b.t);
	buf_fini(&b.enc);
	if (rc) {
		merkle_free(b.t);
		return rc < 0 ? rc : -EIO;
	}
	*out = b.t;
	return 0;
}

/* ---- records of leaves --------------------------------------------- */

struct collect {
	struct store *s;
	struct buf *out;
	uint32_t count;
	bool full;
	struct buf rec;
};

static int
collect_one(const struct keypos *pos, const uint8_t *key, size_t klen,
    const struct vset *set, void *arg)
{
	(void)pos;
	struct collect *c = arg;
	struct store_mark mark;
	/* A condemned blob is not handed on (gc.h): a replica that deleted
	 * it would take it back and the two could trade it for ever. */
	if (blob_is_key(key, klen) &&
	    store_gc_mark_get(c->s, key, klen, &mark) == 0)
		return 0;
	buf_reset(&c->rec);
	store_record_encode(key, klen, set, &c->rec);
	if (buf_err(&c->rec))
		return buf_err(&c->rec);
	if (c->count > 0 && c->out->len + c->rec.len > AE_BATCH_BYTES) {
		c->full = true;
		return 1;
	}
	buf_put_blob(c->out, c->rec.data, c->rec.len);
	c->count++;
	return 0;
}

/* Append an F_RECORDS field with this node's records in the given leaves
 * (up to AE_BATCH_BYTES). */
static int
put_records(struct node *n, const struct merkle *t, const uint32_t *leaves,
    uint32_t nl, struct buf *out)
{
	size_t at = wire_begin_field(out, F_RECORDS);
	size_t count_at = out->len;
	buf_put_u32(out, 0);
	struct collect c = {.s = n->store, .out = out};
	buf_init(&c.rec);
	int rc = 0;
	for (uint32_t i = 0; i < nl && !c.full && rc >= 0; i++) {
		struct keypos from, to;
		bool to_end;
		if ((rc = merkle_leaf_range(t, leaves[i], &from, &to,
		         &to_end)) != 0)
			break;
		rc = store_scan(n->store, &from, to_end ? NULL : &to,
		    collect_one, &c);
	}
	buf_fini(&c.rec);
	if (buf_err(out) == 0)
		be_put_u32(out->data + count_at, c.count);
	wire_end_field(out, at);
	return rc < 0 ? rc : 0;
}

/* ---- serving ------------------------------------------------------- */

static int
ring_q_now(struct node *n, uint32_t *q)
{
	struct ring *r = gossip_ring_copy(n->gossip);
	if (!r)
		return DYN_EUNREACH;
	*q = ring_q(r);
	ring_free(r);
	return 0;
}

int
ae_handle(struct node *n, const struct wire_msg *m, struct buf *out)
{
	uint32_t part, q;
	const struct wire_field *lf = wire_find(m, F_LEAFHASHES);
	const struct wire_field *root = wire_find(m, F_ROOT);
	int rc = wire_get_u32(m, F_PART, &part);
	if (rc || (!lf && (!root || root->len != MERKLE_HASH_LEN)))
		return DYN_EBADMSG;
	if ((rc = ring_q_now(n, &q)) != 0)
		return rc;
	if (part >= q)
		return DYN_EBADMSG;
	struct merkle *t;
	if ((rc = build_tree(n, q, part, &t, NULL, 0)) != 0)
		return rc;

	/* The first ask is the root alone: the same root, nothing differs
	 * (no leaves, no records); another, no F_LEAVES: ask with leaves. */
	if (!lf) {
		uint8_t mine[MERKLE_HASH_LEN];
		uint64_t cnt;
		merkle_root(t, mine, &cnt);
		bool same = memcmp(mine, root->data, MERKLE_HASH_LEN) == 0;
		merkle_free(t);
		wire_begin(out, WIRE_AE_RESP, 0, m->reqid);
		wire_put_u32(out, F_STATUS, 0);
		if (same) {
			size_t at = wire_begin_field(out, F_LEAVES);
			leaflist_encode(NULL, 0, out);
			wire_end_field(out, at);
		}
		return buf_err(out);
	}

	/* Which leaves differ from the sender's? */
	uint32_t nl = merkle_leaves(t);
	const uint8_t *theirs;
	uint32_t *diff = NULL, nd = 0;
	if ((rc = leaflist_hashes_decode(lf->data, lf->len, nl, &theirs)))
		goto out;
	diff = mem_calloc(nl, sizeof(*diff));
	if (!diff) {
		rc = -ENOMEM;
		goto out;
	}
	for (uint32_t i = 0; i < nl; i++) {
		uint8_t mine[MERKLE_HASH_LEN];
		uint64_t cnt;
		merkle_node(t, merkle_depth(t), i, mine, &cnt);
		if (memcmp(mine, theirs + (size_t)i * MERKLE_HASH_LEN,
		        MERKLE_HASH_LEN) != 0)
			diff[nd++] = i;
	}
	wire_begin(out, WIRE_AE_RESP, 0, m->reqid);
	wire_put_u32(out, F_STATUS, 0);
	size_t at = wire_begin_field(out, F_LEAVES);
	leaflist_encode(diff, nd, out);
	wire_end_field(out, at);
	if ((rc = put_records(n, t, diff, nd, out)) == 0)
		rc = buf_err(out);
out:
	mem_free(diff);
	merkle_free(t);
	return rc;
}

int
ae_handle_merge(struct node *n, const struct wire_msg *m, struct buf *out)
{
	const struct wire_field *f = wire_find(m, F_RECORDS);
	if (!f)
		return DYN_EBADMSG;
	uint32_t count = 0;
	int rc = replica_merge_records(n, f, &count);
	if (rc)
		return rc;
	wire_begin(out, WIRE_MERGE_RESP, 0, m->reqid);
	wire_put_u32(out, F_STATUS, 0);
	return buf_err(out);
}

/* ---- purge and sweep ------------------------------------------------ */

/* Whether member me is among the first nrep of part's preference list
 * (which goes to idx, *cnt). */
static bool
replicates(const struct ring *r, uint32_t part, uint32_t nrep, int me,
    uint32_t *idx, uint32_t *cnt)
{
	*cnt = 0;
	if (ring_preflist(r, RING_CUR, part, nrep < 16 ? nrep : 16, idx,
	        cnt) != 0)
		return false;
	for (uint32_t i = 0; i < *cnt; i++)
		if ((int)idx[i] == me)
			return true;
	return false;
}

struct stray_scan {
	struct recs *l; /* NULL: only tell whether there is one */
	uint64_t count;
};

static int
stray_one(const struct keypos *pos, const uint8_t *key, size_t klen,
    const struct vset *set, void *arg)
{
	(void)pos;
	struct stray_scan *st = arg;
	if (!st->l) {
		st->count = 1;
		return 1;
	}
	int rc = recs_add(st->l, key, klen, set, 0);
	st->count += rc == 0;
	return rc;
}

/* This node's records in partitions it does not replicate under the
 * stable ring r: copied into l (up to its max) or, with l NULL, counted
 * up to one.  Their number. */
static uint64_t
strays(struct node *n, const struct ring *r, struct recs *l)
{
	int me = ring_member_find(r, n->name);
	uint32_t q = ring_q(r), nrep = gossip_settings(n->gossip).n;
	struct stray_scan st = {l, 0};
	for (uint32_t p = 0; p < q && me >= 0; p++) {
		uint32_t idx[16], cnt;
		struct keypos from, to;
		bool to_end;
		if (replicates(r, p, nrep, me, idx, &cnt) ||
		    ring_partition_range(r, p, &from, &to, &to_end) != 0)
			continue;
		if (store_scan(n->store, &from, to_end ? NULL : &to, stray_one,
		        &st) != 0)
			break; /* full, or an error: what was found stands */
	}
	return st.count;
}

static int
hint_min_one(const char *target, const uint8_t *key, size_t klen,
    const struct vset *set, void *arg)
{
	(void)target, (void)key, (void)klen;
	uint64_t *min = arg;
	for (uint32_t i = 0; i < set->n; i++)
		if (set->v[i].ts_ms < *min)
			*min = set->v[i].ts_ms;
	return 0;
}

/* What a node tells a purger (PURGE_CHECK). */
struct check {
	uint64_t epoch;   /* of its ring; UINT64_MAX while a plan is pending */
	uint64_t hintmin; /* the oldest version in its hints (or UINT64_MAX) */
	uint64_t strays;  /* 0, or 1 when it holds records it should not */
};

static int
local_check(struct node *n, struct check *c)
{
	struct ring *r = gossip_ring_copy(n->gossip);
	if (!r)
		return DYN_EUNREACH;
	bool stable = !ring_has_next(r);
	c->epoch = stable ? ring_epoch(r) : UINT64_MAX;
	c->hintmin = UINT64_MAX;
	int rc = store_hint_scan(n->store, NULL, hint_min_one, &c->hintmin);
	c->strays = rc == 0 && stable ? strays(n, r, NULL) : 0;
	ring_free(r);
	return rc;
}

int
ae_handle_purge_check(struct node *n, const struct wire_msg *m,
    struct buf *out)
{
	struct check c;
	int rc = local_check(n, &c);
	if (rc)
		return rc;
	wire_begin(out, WIRE_PURGE_CHECK_RESP, 0, m->reqid);
	wire_put_u32(out, F_STATUS, 0);
	wire_put_u64(out, F_EPOCH, c.epoch);
	wire_put_u64(out, F_HINTMIN, c.hintmin);
	wire_put_u64(out, F_STRAYS, c.strays);
	return buf_err(out);
}

int
ae_handle_purge(struct node *n, const struct wire_msg *m, struct buf *out)
{
	const struct wire_field *f = wire_find(m, F_RECORDS);
	if (!f)
		return DYN_EBADMSG;
	uint32_t cnt = 0, gone = 0;
	int rc = replica_apply_records(n, f, store_apply_delete_exact, &cnt,
	    &gone);
	if (rc)
		return rc;
	if (n->ae)
		count(n->ae, &n->ae->st.purged, gone);
	wire_begin(out, WIRE_PURGE_RESP, 0, m->reqid);
	wire_put_u32(out, F_STATUS, 0);
	wire_put_u64(out, F_KEYS, gone);
	return buf_err(out);
}

/* Send the sealed request b to every address and wait for all; true when
 * every one answered without error (replies in rr, to be finished). */
static bool
ask_all(struct node *n, const char *const *addrs, size_t na,
    const struct buf *b, int timeout_ms, struct rpc_reply *rr)
{
	size_t ok = na ? rpc_call_many(n->pool, addrs, na, b, na, timeout_ms,
	                     0, rr)
	               : 0;
	return ok == na;
}

/*
 * Ask every member that has not left, this node too, whether tombstones
 * may go: every one must answer, hold the stable ring r, and keep no stray
 * records.  *hintmin gets the oldest version held in a hint anywhere.
 */
static bool
cluster_check(struct ae *a, const struct ring *r, uint64_t *hintmin)
{
	struct node *n = a->node;
	struct check c;
	uint64_t epoch = ring_epoch(r);
	if (local_check(n, &c) != 0 || c.epoch != epoch || c.strays)
		return false;
	*hintmin = c.hintmin;

	size_t max = GOSSIP_MEMBERS_MAX;
	char(*peers)[RING_ADDR_MAX + 1] = mem_calloc(max, sizeof(*peers));
	const char **addrs = mem_calloc(max, sizeof(*addrs));
	struct rpc_reply *rr = mem_calloc(max, sizeof(*rr));
	bool ok = peers && addrs && rr;
	size_t na = ok ? gossip_peers(n->gossip, peers, max) : 0;
	for (size_t i = 0; ok && i < na; i++) {
		addrs[i] = peers[i];
		ok = rpc_peer_usable(n->pool, addrs[i]); /* one is down: wait */
	}
	struct buf b;
	buf_init(&b);
	node_req_begin(n, &b, WIRE_PURGE_CHECK_REQ);
	ok = ok && wire_seal(&b, &n->cfg.keys) == 0 &&
	     ask_all(n, addrs, na, &b, node_bulk_timeout_ms(n), rr);
	for (size_t i = 0; rr && i < na; i++) {
		uint64_t e = 0, h = 0, st = 1;
		if (ok && (wire_get_u64(&rr[i].m, F_EPOCH, &e) != 0 ||
		              wire_get_u64(&rr[i].m, F_HINTMIN, &h) != 0 ||
		              wire_get_u64(&rr[i].m, F_STRAYS, &st) != 0 ||
		              e != epoch || st != 0))
			ok = false;
		if (ok && h < *hintmin)
			*hintmin = h;
		rpc_reply_fini(&rr[i]);
	}
	buf_fini(&b);
	mem_free(peers);
	mem_free(addrs);
	mem_free(rr);
	return ok;
}

/*
 * Purge the tombstones in c, which every replica of the partition holds
 * alike (their trees all agreed just now; idx[0..cnt) are the replicas,
 * this node first).  See ae.h for the conditions and why they suffice.
 */
static void
purge(struct ae *a, const struct ring *r, const uint32_t *idx, uint32_t cnt,
    uint32_t part, struct recs *c)
{
	struct node *n = a->node;
	uint64_t hintmin;
	if (!cluster_check(a, r, &hintmin))
		return;
	/* Only tombstones older by the grace period than every hinted
	 * version: no hint can hold a version one of them deleted. */
	uint32_t k = 0;
	for (uint32_t i = 0; i < c->n; i++) {
		if (c->ts[i] + (uint64_t)a->grace_ms < hintmin) {
			c->keys[k] = c->keys[i];
			c->sets[k] = c->sets[i];
			c->ts[k++] = c->ts[i];
		} else {
			buf_fini(&c->keys[i]);
			vset_fini(&c->sets[i]);
		}
	}
	c->n = k;
	if (k == 0)
		return;

	/* The other replicas first: if one fails, this node keeps its
	 * tombstones and anti-entropy puts them back where they went. */
	const char *addrs[16];
	struct rpc_reply rr[16];
	size_t na = 0;
	for (uint32_t i = 1; i < cnt; i++)
		addrs[na++] = ring_member_addr(r, idx[i]);
	struct buf b;
	buf_init(&b);
	node_req_begin(n, &b, WIRE_PURGE_REQ);
	recs_put(c, &b);
	bool ok = wire_seal(&b, &n->cfg.keys) == 0 &&
	          ask_all(n, addrs, na, &b, node_bulk_timeout_ms(n), rr);
	for (size_t i = 0; i < na; i++)
		rpc_reply_fini(&rr[i]);
	buf_fini(&b);
	if (!ok)
		return;
	uint32_t gone = recs_delete(n, c);
	count(a, &a->st.purged, gone);
	LOG_DEBUG("purged %u tombstones of partition %u", gone, part);
}

/* Drop copies of records this node does not replicate (left behind by a
 * partition that moved, or held as a stand-in) once it holds no hints. */
static void
sweep(struct ae *a, const struct ring *r)
{
	struct node *n = a->node;
	struct store_stats st;
	if (store_stats(n->store, &st) != 0 || st.hints > 0)
		return;
	struct recs l = {.max = AE_SWEEP_MAX};
	if (strays(n, r, &l) > 0) {
		uint32_t gone = recs_delete(n, &l);
		count(a, &a->st.swept, gone);
		LOG_DEBUG("swept %u records of partitions not replicated here",
		    gone);
	}
	recs_fini(&l);
}

/* ---- rounds -------------------------------------------------------- */

/* One call of a round to the replica at addr; its request's and reply's
 * bytes are counted (ae_stats.bytes). */
static int
round_call(struct ae *a, const char *addr, const struct buf *b,
    struct rpc_reply *r)
{
	struct node *n = a->node;
	int rc = rpc_call(n->pool, addr, b, node_bulk_timeout_ms(n), r);
	uint64_t bytes = b->len;
	if (rc == 0) {
		const uint8_t *p;
		size_t len;
		rpc_reply_bytes(r, &p, &len);
		bytes += len;
	}
	count(a, &a->st.bytes, bytes);
	return rc;
}

/* Does the replica at addr hold a tree of part with t's root?  (*same;
 * 32 bytes each way.) */
static int
root_same(struct ae *a, const struct merkle *t, uint32_t part,
    const char *addr, bool *same)
{
	struct node *n = a->node;
	uint8_t root[MERKLE_HASH_LEN];
	uint64_t cnt;
	struct buf b;
	struct rpc_reply r = {0};
	buf_init(&b);
	merkle_root(t, root, &cnt);
	node_req_begin(n, &b, WIRE_AE_REQ);
	wire_put_u32(&b, F_PART, part);
	wire_put(&b, F_ROOT, root, sizeof(root));
	int rc = wire_seal(&b, &n->cfg.keys);
	if (rc == 0)
		rc = round_call(a, addr, &b, &r);
	*same = rc == 0 && wire_find(&r.m, F_LEAVES) != NULL;
	rpc_reply_fini(&r);
	buf_fini(&b);
	return rc;
}

/* Compare our tree t of partition part with the replica at addr and
 * repair both; *ndiff gets the number of leaves that differed. */
static int
sync_with(struct ae *a, const struct merkle *t, uint32_t part,
    const char *addr, uint32_t *ndiff)
{
	struct node *n = a->node;
	struct rpc_reply r = {0};
	bool same;

	/* The root first: replicas that agree (nearly always) exchange 32
	 * bytes, not every leaf's hash (128 KiB a round). */
	*ndiff = 0;
	int rc = root_same(a, t, part, addr, &same);
	if (rc != 0 || same)
		return rc;

	struct buf b;
	buf_init(&b);
	node_req_begin(n, &b, WIRE_AE_REQ);
	wire_put_u32(&b, F_PART, part);
	size_t at = wire_begin_field(&b, F_LEAFHASHES);
	leaflist_hashes_encode(t, &b);
	wire_end_field(&b, at);
	if ((rc = wire_seal(&b, &n->cfg.keys)) == 0)
		rc = round_call(a, addr, &b, &r);
	const struct wire_field *lv = rc ? NULL : wire_find(&r.m, F_LEAVES);
	const struct wire_field *rec = rc ? NULL : wire_find(&r.m, F_RECORDS);
	if (rc == 0 && (!lv || !rec))
		rc = DYN_EBADMSG;
	uint32_t got = 0, nd = 0, *leaves = NULL;
	if (rc == 0)
		rc = replica_merge_records(n, rec, &got);
	if (rc == 0)
		rc = leaflist_decode(lv->data, lv->len, merkle_leaves(t),
		    &leaves, &nd);
	rpc_reply_fini(&r);

	/* Our side of the differing leaves goes to the peer. */
	if (rc == 0 && nd > 0) {
		node_req_begin(n, &b, WIRE_MERGE_REQ);
		if ((rc = put_records(n, t, leaves, nd, &b)) == 0 &&
		    (rc = wire_seal(&b, &n->cfg.keys)) == 0)
			rc = round_call(a, addr, &b, &r);
		rpc_reply_fini(&r);
	}
	if (nd > 0)
		LOG_DEBUG("anti-entropy partition %u with %s: %u leaves differ, "
		          "%u records in",
		    part, addr, nd, got);
	count(a, &a->st.merged, got);
	count(a, &a->st.leaves_differ, nd);
	*ndiff = nd;
	mem_free(leaves);
	buf_fini(&b);
	return rc;
}

/* Partition part differed from a replica when last compared (still after
 * the round's repair) or did not: the count in the stats follows. */
static void
set_differing(struct ae *a, uint32_t q, uint32_t part, bool differs)
{
	pthread_mutex_lock(&a->lock);
	if (a->nq != q) {
		uint8_t *d = mem_calloc(q, 1);
		if (!d) {
			pthread_mutex_unlock(&a->lock);
			return; /* the count waits for memory */
		}
		mem_free(a->differ);
		a->differ = d;
		a->nq = q;
		a->st.differing = 0;
	}
	a->st.differing += (uint32_t)differs - a->differ[part];
	a->differ[part] = differs;
	pthread_mutex_unlock(&a->lock);
}

/* The round found nd leaves of part differing (and repaired them). */
static void
note_diff(struct ae *a, uint32_t part, uint32_t nd)
{
	pthread_mutex_lock(&a->lock);
	a->st.diffs++;
	a->st.last_diff_part = part;
	a->st.last_diff_leaves = nd;
	a->last_diff_at = mono_ms();
	pthread_mutex_unlock(&a->lock);
}

/*
 * After a round repaired differences of part with the replicas in
 * differed[0..nd): do they hold the same tree now?  A fresh tree, its root
 * against theirs.  False also when one cannot be asked: not known equal.
 */
static bool
repaired(struct ae *a, const struct ring *r, uint32_t part,
    const uint32_t *differed, uint32_t nd)
{
	struct merkle *t = NULL;
	bool all = build_tree(a->node, ring_q(r), part, &t, NULL, 0) == 0;
	for (uint32_t i = 0; all && i < nd; i++) {
		bool same;
		all = root_same(a, t, part, ring_member_addr(r, differed[i]),
		          &same) == 0 && same;
	}
	merkle_free(t);
	return all;
}

/* One round: strays swept, then the next partition this node replicates,
 * with every other replica of it that is reachable, and its old
 * tombstones purged when this node is its first replica and all agree.
 * The partition counts as differing (ae_stats) while a replica's tree
 * differed from ours after the round's repair; as equal once every other
 * replica compared equal; a replica out of reach changes neither. */
static void
round_once(struct ae *a)
{
	struct node *n = a->node;
	struct ring *r = gossip_ring_copy(n->gossip);
	if (!r)
		return;
	uint32_t q = ring_q(r), nrep = gossip_settings(n->gossip).n;
	int me = ring_member_find(r, n->name);
	bool stable = !ring_has_next(r);
	if (me >= 0 && stable)
		sweep(a, r);
	for (uint32_t k = 0; k < q && me >= 0; k++) {
		uint32_t part = a->next_part++ % q;
		uint32_t idx[16], cnt = 0;
		if (!replicates(r, part, nrep, me, idx, &cnt)) {
			set_differing(a, q, part, false);
			continue;
		}
		struct recs cands = {.max = AE_PURGE_MAX};
		bool purger = a->grace_ms >= 0 && stable && (int)idx[0] == me;
		uint64_t now = node_now_ms(), g = (uint64_t)a->grace_ms;
		/* One tree, built once, against every other replica (what
		 * the first one sends us is in our store by the second, and
		 * reaches it the next time round). */
		struct merkle *t = NULL;
		int rc = build_tree(n, q, part, &t, purger ? &cands : NULL,
		    now > g ? now - g : 0);
		bool equal = rc == 0;
		uint32_t differed[16], ndiffered = 0, leaves = 0;
		for (uint32_t i = 0; rc == 0 && i < cnt; i++) {
			const char *addr = ring_member_addr(r, idx[i]);
			if ((int)idx[i] == me)
				continue;
			if (!rpc_peer_usable(n->pool, addr)) {
				equal = false;
				continue;
			}
			uint32_t nd = 0;
			int src = sync_with(a, t, part, addr, &nd);
			if (src)
				LOG_DEBUG("anti-entropy with %s: %s", addr,
				    dyn_strerror(src));
			equal = equal && src == 0 && nd == 0;
			if (src == 0 && nd > 0) {
				differed[ndiffered++] = idx[i];
				leaves += nd;
			}
		}
		merkle_free(t);
		if (ndiffered > 0) {
			note_diff(a, part, leaves);
			set_differing(a, q, part,
			    !repaired(a, r, part, differed, ndiffered));
		} else if (equal) {
			set_differing(a, q, part, false);
		}
		if (purger && equal && cands.n > 0)
			purge(a, r, idx, cnt, part, &cands);
		recs_fini(&cands);
		break;
	}
	ring_free(r);
	count(a, &a->st.rounds, 1);
}

static int64_t
ae_round(void *arg)
{
	struct ae *a = arg;
	round_once(a);
	return a->interval_ms;
}

int
ae_start(struct node *n, int interval_ms, int64_t grace_ms, struct ae **out)
{
	struct ae *a = mem_calloc(1, sizeof(*a));
	if (!a)
		return -ENOMEM;
	a->node = n;
	a->interval_ms = interval_ms > 0 ? interval_ms : 1000;
	a->grace_ms = grace_ms;
	pthread_mutex_init(&a->lock, NULL);
	int rc = bgthread_start(&a->thread, 0, ae_round, a);
	if (rc) {
		ae_stop(a);
		return rc;
	}
	*out = a;
	return 0;
}

void
ae_stop(struct ae *a)
{
	if (!a)
		return;
	bgthread_stop(&a->thread);
	pthread_mutex_destroy(&a->lock);
	mem_free(a->differ);
	mem_free(a);
}

void
ae_stats(struct ae *a, struct ae_stats *out)
{
	memset(out, 0, sizeof(*out));
	out->last_diff_age_ms = -1;
	if (!a)
		return;
	pthread_mutex_lock(&a->lock);
	*out = a->st;
	out->last_diff_age_ms = out->diffs == 0
	    ? -1
	    : (int64_t)(mono_ms() - a->last_diff_at);
	pthread_mutex_unlock(&a->lock);
}
