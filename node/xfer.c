#include "xfer.h"

#include <errno.h>
#include <pthread.h>
#include <string.h>

#include "bgthread.h"
#include "err.h"
#include "gossip.h"
#include "log.h"
#include "mem.h"
#include "mono.h"
#include "node_i.h"
#include "reclist.h"
#include "replica.h"
#include "ring.h"
#include "rpc.h"
#include "store.h"

#define XFER_BATCH_BYTES (1u << 20)
#define XFER_POLL_MS     200

struct xfer {
	struct node *node;
	pthread_mutex_t lock; /* pr */
	struct xfer_progress pr; /* ms: when the pull began, while active */
	struct bgthread thread;
};

/* ---- serving ------------------------------------------------------- */

struct scan_state {
	struct buf *out;
	uint32_t count;
	bool full;
	struct buf next; /* the cursor: position || key of the first record
	                    not sent (many keys may share a position) */
	struct buf rec;
};

static int
scan_one(const struct keypos *pos, const uint8_t *key, size_t klen,
    const struct vset *set, void *arg)
{
	struct scan_state *st = arg;
	buf_reset(&st->rec);
	store_record_encode(key, klen, set, &st->rec);
	if (buf_err(&st->rec))
		return buf_err(&st->rec);
	if (st->count > 0 &&
	    st->out->len + st->rec.len + 4 > XFER_BATCH_BYTES) {
		st->full = true;
		buf_reset(&st->next);
		buf_put(&st->next, pos->b, KEYPOS_LEN);
		buf_put(&st->next, key, klen);
		return buf_err(&st->next) ? buf_err(&st->next) : 1;
	}
	buf_put_blob(st->out, st->rec.data, st->rec.len);
	st->count++;
	return 0;
}

int
xfer_handle(struct node *n, const struct wire_msg *m, struct buf *out)
{
	uint32_t part;
	int rc = wire_get_u32(m, F_PART, &part);
	if (rc)
		return DYN_EBADMSG;
	struct ring *r = gossip_ring_copy(n->gossip);
	if (!r)
		return DYN_EUNREACH;
	struct keypos from, to;
	bool to_end;
	rc = ring_partition_range(r, part, &from, &to, &to_end);
	ring_free(r);
	if (rc)
		return DYN_EBADMSG;
	/* The cursor: a position (a node from before placement keys), or
	 * position || key, the first record to send. */
	const struct wire_field *cur = wire_find(m, F_CURSOR);
	const uint8_t *ckey = NULL;
	size_t cklen = 0;
	if (cur) {
		if (cur->len < KEYPOS_LEN ||
		    cur->len - KEYPOS_LEN > KEY_MAX_LEN)
			return DYN_EBADMSG;
		if (memcmp(cur->data, from.b, KEYPOS_LEN) > 0)
			memcpy(from.b, cur->data, KEYPOS_LEN);
		if (cur->len > KEYPOS_LEN) {
			struct keypos kp;
			ckey = cur->data + KEYPOS_LEN;
			cklen = cur->len - KEYPOS_LEN;
			if (keypos_of(ckey, cklen, &kp) != 0 ||
			    memcmp(kp.b, cur->data, KEYPOS_LEN) != 0 ||
			    memcmp(kp.b, from.b, KEYPOS_LEN) < 0)
				return DYN_EBADMSG;
		}
	}

	wire_begin(out, WIRE_XFER_RESP, 0, m->reqid);
	wire_put_u32(out, F_STATUS, 0);
	size_t at = wire_begin_field(out, F_RECORDS);
	size_t count_at = out->len;
	buf_put_u32(out, 0);
	struct scan_state st = {.out = out};
	buf_init(&st.rec);
	buf_init(&st.next);
	rc = ckey ? store_scan_from(n->store, ckey, cklen, false,
	                to_end ? NULL : &to, scan_one, &st)
	          : store_scan(n->store, &from, to_end ? NULL : &to, scan_one,
	                &st);
	buf_fini(&st.rec);
	if (rc >= 0) {
		if (buf_err(out) == 0)
			be_put_u32(out->data + count_at, st.count);
		wire_end_field(out, at);
		if (st.full)
			wire_put(out, F_CURSOR, st.next.data, st.next.len);
		rc = buf_err(out);
	}
	buf_fini(&st.next);
	return rc;
}

/* ---- pulling ------------------------------------------------------- */

/* Pull every record of part from addr, counted in x's progress. */
static int
pull_from(struct xfer *x, uint32_t part, const char *addr)
{
	struct node *n = x->node;
	struct buf cursor; /* as the serving node sent it */
	bool have_cursor = false;
	struct buf b;
	buf_init(&b);
	buf_init(&cursor);
	int rc;
	for (;;) {
		node_req_begin(n, &b, WIRE_XFER_REQ);
		wire_put_u32(&b, F_PART, part);
		if (have_cursor)
			wire_put(&b, F_CURSOR, cursor.data, cursor.len);
		struct rpc_reply r = {0};
		if ((rc = wire_seal(&b, &n->cfg.keys)) == 0)
			rc = rpc_call(n->pool, addr, &b, node_bulk_timeout_ms(n), &r);
		const struct wire_field *recs = rc ? NULL
		                                   : wire_find(&r.m, F_RECORDS);
		if (rc == 0 && !recs)
			rc = DYN_EBADMSG;
		uint32_t count = 0;
		if (rc == 0)
			rc = replica_merge_records(n, recs, &count);
		if (rc == 0) {
			pthread_mutex_lock(&x->lock);
			x->pr.bytes += recs->len;
			x->pr.records += count;
			pthread_mutex_unlock(&x->lock);
		}
		const struct wire_field *cur = rc ? NULL
		                                  : wire_find(&r.m, F_CURSOR);
		if (cur) {
			buf_reset(&cursor);
			buf_put(&cursor, cur->data, cur->len);
			rc = buf_err(&cursor);
			have_cursor = true;
		}
		rpc_reply_fini(&r);
		if (rc || !cur)
			break;
	}
	buf_fini(&cursor);
	buf_fini(&b);
	return rc;
}

/* Pull what this node gains under r's plan; 0 when all of it is in. */
static int
pull_plan(struct xfer *x, const struct ring *r)
{
	struct node *n = x->node;
	uint32_t nrep = gossip_settings(n->gossip).n;
	int me = ring_member_find(r, n->name);
	uint32_t q = ring_q(r);
	uint32_t *todo = mem_calloc(q, sizeof(*todo));
	if (!todo)
		return -ENOMEM;
	uint32_t ntodo = me >= 0 ? ring_gains(r, nrep, (uint32_t)me, todo) : 0;
	pthread_mutex_lock(&x->lock);
	if (x->pr.epoch != ring_epoch(r))
		x->pr = (struct xfer_progress){.epoch = ring_epoch(r)};
	x->pr.done = 0;
	x->pr.total = ntodo;
	x->pr.active = true;
	x->pr.ms = mono_ms();
	pthread_mutex_unlock(&x->lock);
	if (ntodo)
		LOG_INFO("transfer for ring epoch %llu: pulling %u partitions",
		    (unsigned long long)ring_epoch(r), ntodo);

	int rc = 0;
	for (uint32_t i = 0; i < ntodo; i++) {
		uint32_t cur[REPLICAS_MAX], cc = 0;
		ring_preflist(r, RING_CUR, todo[i], nrep, cur, &cc);
		rc = DYN_EUNREACH;
		/* Every current replica may hold writes the others lack. */
		uint32_t pulled = 0, asked = 0;
		for (uint32_t k = 0; k < cc; k++) {
			if ((int)cur[k] == me ||
			    gossip_is_left(n->gossip, ring_member_name(r, cur[k])))
				continue; /* removed: its data is gone */
			asked++;
			int prc = pull_from(x, todo[i],
			    ring_member_addr(r, cur[k]));
			if (prc == 0)
				pulled++;
			else
				LOG_WARN("pull partition %u from %s: %s",
				    todo[i], ring_member_name(r, cur[k]),
				    dyn_strerror(prc));
		}
		if (pulled == 0 && asked > 0)
			break;
		rc = 0;
		pthread_mutex_lock(&x->lock);
		x->pr.done++;
		pthread_mutex_unlock(&x->lock);
		if (bgthread_stopping(&x->thread)) {
			rc = DYN_ECLOSED;
			break;
		}
	}
	pthread_mutex_lock(&x->lock);
	x->pr.active = false;
	x->pr.ms = mono_ms() - x->pr.ms;
	struct xfer_progress pr = x->pr;
	pthread_mutex_unlock(&x->lock);
	if (rc == 0 && ntodo)
		LOG_INFO("transfer done: %u partitions, %llu records, %llu "
		    "bytes in %llu ms", ntodo, (unsigned long long)pr.records,
		    (unsigned long long)pr.bytes, (unsigned long long)pr.ms);
	mem_free(todo);
	return rc;
}

static int64_t
xfer_round(void *arg)
{
	struct xfer *x = arg;
	struct ring *r = gossip_transfer_target(x->node->gossip);
	if (r && pull_plan(x, r) == 0)
		gossip_set_ready(x->node->gossip, ring_epoch(r));
	ring_free(r);
	return XFER_POLL_MS;
}

int
xfer_start(struct node *n, struct xfer **out)
{
	struct xfer *x = mem_calloc(1, sizeof(*x));
	if (!x)
		return -ENOMEM;
	x->node = n;
	pthread_mutex_init(&x->lock, NULL);
	int rc = bgthread_start(&x->thread, 0, xfer_round, x);
	if (rc) {
		xfer_stop(x);
		return rc;
	}
	*out = x;
	return 0;
}

void
xfer_stop(struct xfer *x)
{
	if (!x)
		return;
	bgthread_stop(&x->thread);
	pthread_mutex_destroy(&x->lock);
	mem_free(x);
}

void
xfer_progress(struct xfer *x, struct xfer_progress *out)
{
	pthread_mutex_lock(&x->lock);
	*out = x->pr;
	if (out->active)
		out->ms = mono_ms() - out->ms;
	pthread_mutex_unlock(&x->lock);
}
