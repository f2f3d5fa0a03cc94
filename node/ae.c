#include "ae.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "err.h"
#include "gossip.h"
#include "log.h"
#include "mem.h"
#include "merkle.h"
#include "node_i.h"
#include "ring.h"
#include "rpc.h"
#include "store.h"
#include "xfer.h"

/* Records per message, in bytes (the rest waits for the next round). */
#define AE_BATCH_BYTES (4u << 20)

struct ae {
	struct node *node;
	int interval_ms;
	pthread_mutex_t lock;
	pthread_cond_t cv;
	bool stopping;
	uint32_t next_part;
	uint64_t rounds, merged;
	pthread_t thread;
	bool started;
};

/* ---- trees --------------------------------------------------------- */

struct build {
	struct merkle *t;
	struct buf enc;
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
	return rc;
}

/* This node's tree of partition part, from a store snapshot. */
static int
build_tree(struct node *n, uint32_t q, uint32_t part, struct merkle **out)
{
	struct build b = {0};
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

static void
put_leaf_hashes(const struct merkle *t, struct buf *out)
{
	uint32_t nl = merkle_leaves(t), lvl = merkle_depth(t);
	buf_put_u32(out, nl);
	for (uint32_t i = 0; i < nl; i++) {
		uint8_t h[MERKLE_HASH_LEN];
		uint64_t cnt;
		merkle_node(t, lvl, i, h, &cnt);
		buf_put(out, h, sizeof(h));
	}
}

/* ---- records of leaves --------------------------------------------- */

struct collect {
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
	struct collect c = {.out = out};
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
	int rc = wire_get_u32(m, F_PART, &part);
	if (rc || !lf)
		return DYN_EBADMSG;
	if ((rc = ring_q_now(n, &q)) != 0)
		return rc;
	if (part >= q)
		return DYN_EBADMSG;
	struct merkle *t;
	if ((rc = build_tree(n, q, part, &t)) != 0)
		return rc;

	/* Which leaves differ from the sender's? */
	struct rd r;
	uint32_t nl;
	rd_init(&r, lf->data, lf->len);
	uint32_t *diff = NULL, nd = 0;
	if (rd_u32(&r, &nl) || nl != merkle_leaves(t) ||
	    rd_left(&r) != (size_t)nl * MERKLE_HASH_LEN) {
		rc = DYN_EBADMSG;
		goto out;
	}
	diff = mem_calloc(nl, sizeof(*diff));
	if (!diff) {
		rc = -ENOMEM;
		goto out;
	}
	for (uint32_t i = 0; i < nl; i++) {
		const uint8_t *theirs;
		uint8_t mine[MERKLE_HASH_LEN];
		uint64_t cnt;
		rd_bytes(&r, MERKLE_HASH_LEN, &theirs);
		merkle_node(t, merkle_depth(t), i, mine, &cnt);
		if (memcmp(mine, theirs, MERKLE_HASH_LEN) != 0)
			diff[nd++] = i;
	}
	wire_begin(out, WIRE_AE_RESP, 0, m->reqid);
	wire_put_u32(out, F_STATUS, 0);
	size_t at = wire_begin_field(out, F_LEAVES);
	buf_put_u32(out, nd);
	for (uint32_t i = 0; i < nd; i++)
		buf_put_u32(out, diff[i]);
	wire_end_field(out, at);
	if ((rc = put_records(n, t, diff, nd, out)) == 0)
		rc = wire_seal(out, &n->cfg.key);
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
	int rc = xfer_apply_records(n, f, &count);
	if (rc)
		return rc;
	wire_begin(out, WIRE_MERGE_RESP, 0, m->reqid);
	wire_put_u32(out, F_STATUS, 0);
	return wire_seal(out, &n->cfg.key);
}

/* ---- rounds -------------------------------------------------------- */

/* Compare our tree t of partition part with the replica at addr and
 * repair both. */
static int
sync_with(struct ae *a, const struct merkle *t, uint32_t part,
    const char *addr)
{
	struct node *n = a->node;
	int rc;
	struct buf b;
	buf_init(&b);
	node_req_begin(n, &b, WIRE_AE_REQ);
	wire_put_u32(&b, F_PART, part);
	size_t at = wire_begin_field(&b, F_LEAFHASHES);
	put_leaf_hashes(t, &b);
	wire_end_field(&b, at);
	struct rpc_reply r = {0};
	if ((rc = wire_seal(&b, &n->cfg.key)) == 0)
		rc = rpc_call(n->pool, addr, &b, 30000, &r);
	const struct wire_field *lv = rc ? NULL : wire_find(&r.m, F_LEAVES);
	const struct wire_field *rec = rc ? NULL : wire_find(&r.m, F_RECORDS);
	if (rc == 0 && (!lv || !rec))
		rc = DYN_EBADMSG;
	uint32_t got = 0, nd = 0, *leaves = NULL;
	if (rc == 0)
		rc = xfer_apply_records(n, rec, &got);
	if (rc == 0) {
		struct rd rd;
		rd_init(&rd, lv->data, lv->len);
		if (rd_u32(&rd, &nd) || nd > merkle_leaves(t) ||
		    rd_left(&rd) != (size_t)nd * 4)
			rc = DYN_EBADMSG;
		else if (nd && !(leaves = mem_calloc(nd, sizeof(*leaves))))
			rc = -ENOMEM;
		for (uint32_t i = 0; rc == 0 && i < nd; i++) {
			rd_u32(&rd, &leaves[i]);
			if (leaves[i] >= merkle_leaves(t))
				rc = DYN_EBADMSG;
		}
	}
	rpc_reply_fini(&r);

	/* Our side of the differing leaves goes to the peer. */
	if (rc == 0 && nd > 0) {
		node_req_begin(n, &b, WIRE_MERGE_REQ);
		if ((rc = put_records(n, t, leaves, nd, &b)) == 0 &&
		    (rc = wire_seal(&b, &n->cfg.key)) == 0)
			rc = rpc_call(n->pool, addr, &b, 30000, &r);
		rpc_reply_fini(&r);
	}
	if (nd > 0)
		LOG_DEBUG("anti-entropy partition %u with %s: %u leaves differ, "
		          "%u records in",
		    part, addr, nd, got);
	pthread_mutex_lock(&a->lock);
	a->merged += got;
	pthread_mutex_unlock(&a->lock);
	mem_free(leaves);
	buf_fini(&b);
	return rc;
}

/* One round: the next partition this node replicates, with every other
 * replica of it that is reachable. */
static void
round_once(struct ae *a)
{
	struct node *n = a->node;
	struct ring *r = gossip_ring_copy(n->gossip);
	if (!r)
		return;
	uint32_t q = ring_q(r), nrep = gossip_settings(n->gossip).n;
	int me = ring_member_find(r, n->name);
	for (uint32_t k = 0; k < q && me >= 0; k++) {
		uint32_t part = a->next_part++ % q;
		uint32_t idx[16], cnt = 0;
		if (ring_preflist(r, RING_CUR, part, nrep < 16 ? nrep : 16, idx,
		        &cnt) != 0)
			break;
		bool mine = false;
		for (uint32_t i = 0; i < cnt; i++)
			mine |= (int)idx[i] == me;
		if (!mine)
			continue;
		/* One tree, built once, against every other replica (what
		 * the first one sends us is in our store by the second, and
		 * reaches it the next time round). */
		struct merkle *t = NULL;
		int rc = build_tree(n, q, part, &t);
		for (uint32_t i = 0; rc == 0 && i < cnt; i++) {
			const char *addr = ring_member_addr(r, idx[i]);
			if ((int)idx[i] == me || !rpc_peer_usable(n->pool, addr))
				continue;
			int src = sync_with(a, t, part, addr);
			if (src)
				LOG_DEBUG("anti-entropy with %s: %s", addr,
				    dyn_strerror(src));
		}
		merkle_free(t);
		break;
	}
	ring_free(r);
	pthread_mutex_lock(&a->lock);
	a->rounds++;
	pthread_mutex_unlock(&a->lock);
}

static void *
ae_main(void *arg)
{
	struct ae *a = arg;
	pthread_mutex_lock(&a->lock);
	while (!a->stopping) {
		pthread_mutex_unlock(&a->lock);
		round_once(a);
		pthread_mutex_lock(&a->lock);
		struct timespec dl;
		clock_gettime(CLOCK_REALTIME, &dl);
		dl.tv_sec += a->interval_ms / 1000;
		dl.tv_nsec += (long)(a->interval_ms % 1000) * 1000000L;
		if (dl.tv_nsec >= 1000000000) {
			dl.tv_sec++;
			dl.tv_nsec -= 1000000000;
		}
		if (!a->stopping)
			pthread_cond_timedwait(&a->cv, &a->lock, &dl);
	}
	pthread_mutex_unlock(&a->lock);
	return NULL;
}

int
ae_start(struct node *n, int interval_ms, struct ae **out)
{
	struct ae *a = mem_calloc(1, sizeof(*a));
	if (!a)
		return -ENOMEM;
	a->node = n;
	a->interval_ms = interval_ms > 0 ? interval_ms : 1000;
	pthread_mutex_init(&a->lock, NULL);
	pthread_cond_init(&a->cv, NULL);
	int rc = -pthread_create(&a->thread, NULL, ae_main, a);
	if (rc) {
		ae_stop(a);
		return rc;
	}
	a->started = true;
	*out = a;
	return 0;
}

void
ae_stop(struct ae *a)
{
	if (!a)
		return;
	pthread_mutex_lock(&a->lock);
	a->stopping = true;
	pthread_cond_broadcast(&a->cv);
	pthread_mutex_unlock(&a->lock);
	if (a->started)
		pthread_join(a->thread, NULL);
	pthread_cond_destroy(&a->cv);
	pthread_mutex_destroy(&a->lock);
	mem_free(a);
}

void
ae_stats(struct ae *a, uint64_t *rounds, uint64_t *merged)
{
	pthread_mutex_lock(&a->lock);
	*rounds = a->rounds;
	*merged = a->merged;
	pthread_mutex_unlock(&a->lock);
}
