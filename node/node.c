/*
 * A request's path through a node:
 *
 *   nng rep ctx --> server.c worker: wire_decode (size, magic, HMAC)
 *                     |
 *                     v
 *                  node_handle: check fields, verify the context;
 *                     |         not a replica of the key? forward it
 *                     v         to one (gossip.c knows the ring)
 *                  coord.c: get / put --> store.c (LMDB, group commit)
 *                     |            \--> other replicas (rpc.c, in parallel)
 *                     v
 *                  reply built here, sealed, sent by the worker
 */
#include "node_i.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include <openssl/rand.h>

#include "ae.h"
#include "blob.h"
#include "context.h"
#include "coord.h"
#include "gc.h"
#include "gossip.h"
#include "handoff.h"
#include "httpd.h"
#include "json.h"
#include "mono.h"
#include "replica.h"
#include "rpc.h"
#include "xfer.h"
#include "err.h"
#include "keypos.h"
#include "log.h"
#include "mem.h"
#include "wire.h"

uint64_t
node_now_ms(void)
{
	return wire_clock_ms(); /* the clock messages are timed by, too */
}

uint64_t
node_reqid(struct node *n)
{
	return atomic_fetch_add(&n->next_reqid, 1);
}

void
node_req_begin_flags(struct node *n, struct buf *b, uint8_t type,
    uint16_t hflags)
{
	wire_begin(b, type, hflags, node_reqid(n));
	wire_put_str(b, F_FROM, n->name);
}

void
node_req_begin(struct node *n, struct buf *b, uint8_t type)
{
	node_req_begin_flags(n, b, type, 0);
}

/* Is the sender of m a node this one has been cut off from (a fault
 * injected by `dynamoctl fault drop`)? */
static bool
from_blocked(struct node *n, const struct wire_msg *m)
{
	char from[64];
	if (wire_get_str(m, F_FROM, from, sizeof(from)) != 0)
		return false;
	bool hit = false;
	pthread_mutex_lock(&n->fault_lock);
	for (size_t i = 0; i < n->nblocked && !hit; i++)
		hit = strcmp(n->blocked[i], from) == 0;
	pthread_mutex_unlock(&n->fault_lock);
	return hit;
}

/* FAULT_REQ: cut this node off from the named nodes, both ways, or heal
 * (WIRE_F_HEAL).  For tests: it behaves like a network partition, so a
 * node serves it only when started with --fault-injection. */
static int
handle_fault(struct node *n, const struct wire_msg *m, struct buf *out)
{
	if (!n->cfg.fault_injection) {
		/* From an admin or a node: trusted not to flood the log. */
		LOG_WARN("refused a fault injection request from a %s "
		    "credential: not started with --fault-injection",
		    auth_role_name(m->role));
		return -EPERM;
	}
	uint32_t flags = 0;
	wire_get_u32(m, F_FLAGS, &flags);
	pthread_mutex_lock(&n->fault_lock);
	if (flags & WIRE_F_HEAL) {
		n->nblocked = 0;
		rpc_unblock_all(n->pool);
	}
	for (uint32_t i = 0; i < m->nfields; i++) {
		const struct wire_field *f = &m->f[i];
		if (f->tag != F_NAME || f->len == 0 || f->len >= 64 ||
		    n->nblocked == 16)
			continue;
		memcpy(n->blocked[n->nblocked], f->data, f->len);
		n->blocked[n->nblocked][f->len] = '\0';
		char addr[128];
		if (gossip_member_addr(n->gossip, n->blocked[n->nblocked], addr,
		        sizeof(addr)) == 0)
			rpc_peer_block(n->pool, addr, true);
		LOG_INFO("fault: cut off from %s", n->blocked[n->nblocked]);
		n->nblocked++;
	}
	if (flags & WIRE_F_HEAL)
		LOG_INFO("fault: healed");
	pthread_mutex_unlock(&n->fault_lock);
	wire_begin(out, WIRE_FAULT_RESP, 0, m->reqid);
	wire_put_u32(out, F_STATUS, 0);
	return buf_err(out);
}

void
node_config_default(struct node_config *c)
{
	memset(c, 0, sizeof(*c));
	c->fsync = true;
	c->group_commit = true;
	c->workers = 64;
	c->max_value = WIRE_MAX_VALUE;
	c->partitions = RING_Q_DEFAULT;
	c->n = 3;
	c->r = 2;
	c->w = 2;
	c->timeout_ms = 2000;
	c->gossip_ms = 1000;
	c->ae_ms = 1000;
	c->tomb_grace_ms = 3600 * 1000;
	c->gc_ms = 60 * 1000;
	c->gc_grace_ms = 3600 * 1000;
	c->compact_check_ms = 60 * 1000;
	c->max_request = SERVER_MAX_REQUEST;
	c->max_conns = GUARD_MAX_CONNS;
	c->idle_ms = GUARD_IDLE_MS;
}

/* The key field every key-addressed request carries. */
static int
req_key(const struct wire_msg *m, struct coord_req *rq, struct keypos *pos)
{
	const struct wire_field *f = wire_find(m, F_KEY);
	if (!f)
		return DYN_EBADMSG;
	if (f->len > KEY_MAX_LEN)
		return DYN_ETOOBIG;
	rq->key = f->data;
	rq->klen = f->len;
	wire_get_u32(m, F_FLAGS, &rq->flags);
	wire_get_u32(m, F_R, &rq->r);
	wire_get_u32(m, F_W, &rq->w);
	int rc = keypos_of(f->data, f->len, pos);
	rq->pos = *pos;
	return rc;
}

/*
 * A key-addressed request this node should not coordinate (it is no replica
 * of the key) goes to the key's replicas in turn, marked forwarded so it
 * never hops twice; the first answer is relayed as it came (SERVER_SEALED).
 * Returns 1 when the request is ours to serve.
 */
static int
maybe_forward(struct node *n, const struct wire_msg *m,
    const struct coord_req *rq, struct buf *out)
{
	if (rq->flags & (WIRE_F_LOCAL | WIRE_F_FORWARDED))
		return 1;
	struct replicas rp;
	int rc = gossip_replicas(n->gossip, &rq->pos, &rp);
	if (rc)
		return rc;
	if (rp.self_in)
		return 1;

	struct buf b;
	buf_init(&b);
	wire_begin(&b, m->type, m->flags, m->reqid);
	wire_put_str(&b, F_FROM, n->name);
	for (uint32_t i = 0; i < m->nfields; i++)
		if (m->f[i].tag != F_FLAGS && m->f[i].tag != F_FROM)
			wire_put(&b, m->f[i].tag, m->f[i].data, m->f[i].len);
	wire_put_u32(&b, F_FLAGS, rq->flags | WIRE_F_FORWARDED);
	/* Under the asker's role: the replica serves what that role may, and
	 * seals its reply so the asker can check it as relayed. */
	if ((rc = wire_seal_as(&b, &n->cfg.keys, m->role)) != 0) {
		buf_fini(&b);
		return rc;
	}
	rc = DYN_EUNREACH;
	for (uint32_t i = 0; i < rp.read_count; i++) {
		if (!rpc_peer_usable(n->pool, rp.addr[i]))
			continue;
		struct rpc_reply r = {0};
		/* Another replica, or this node, can do it instead. */
		rc = rpc_call_or_skip(n->pool, rp.addr[i], &b, n->cfg.timeout_ms,
		    &r);
		if (rc == 0) {
			const uint8_t *p;
			size_t len;
			rpc_reply_bytes(&r, &p, &len);
			buf_reset(out);
			buf_put(out, p, len);
			rc = buf_err(out) ? buf_err(out) : SERVER_SEALED;
		}
		rpc_reply_fini(&r);
		if (rc != DYN_ETIMEDOUT && rc != DYN_EUNREACH)
			break;
	}
	buf_fini(&b);
	/* No replica answers (down, or cut off): this node coordinates
	 * itself, standing in for them (sloppy quorum). */
	if (rc == DYN_ETIMEDOUT || rc == DYN_EUNREACH)
		return 1;
	return rc;
}

/* The GET_RESP of a get that found set. */
static int
get_reply(struct node *n, const struct wire_msg *m,
    const struct coord_req *rq, const struct keypos *pos,
    const struct vset *set, struct buf *out)
{
	if (rq->flags & WIRE_F_BLOB) {
		/* Just the bytes: a blob has one version and needs no
		 * context. */
		int live = vset_live(set) > 0 ? 0 : -ENOENT;
		wire_begin(out, WIRE_GET_RESP, live == 0 ? WIRE_H_BLOB : 0,
		    m->reqid);
		wire_put_u32(out, F_STATUS, (uint32_t)live);
		if (live == 0) {
			wire_put(out, F_KEY, rq->key, rq->klen);
			wire_put(out, F_VALUE, set->v[0].value, set->v[0].len);
		}
		return buf_err(out);
	}
	struct vclock ctx;
	vset_context(set, &ctx);
	wire_begin(out, WIRE_GET_RESP, 0, m->reqid);
	wire_put_u32(out, F_STATUS, 0);
	size_t at = wire_begin_field(out, F_VSET);
	vset_encode(set, out);
	wire_end_field(out, at);
	at = wire_begin_field(out, F_CONTEXT);
	context_encode(node_ctx_key(n), pos, &ctx, out);
	wire_end_field(out, at);
	for (uint32_t i = 0; i < set->n; i++) {
		version_context(&set->v[i], &ctx);
		at = wire_begin_field(out, F_VCONTEXT);
		context_encode(node_ctx_key(n), pos, &ctx, out);
		wire_end_field(out, at);
	}
	return buf_err(out);
}

static int
handle_get(struct node *n, const struct wire_msg *m, struct buf *out)
{
	struct coord_req rq = {0};
	struct keypos pos;
	int rc = req_key(m, &rq, &pos);
	if (rc == 0)
		rc = maybe_forward(n, m, &rq, out);
	if (rc != 1)
		return rc;

	/* A local read of a blob's record as a version set is harmless (the
	 * tests check each node's copy that way). */
	if (((rq.flags & WIRE_F_BLOB) != 0) != blob_is_key(rq.key, rq.klen) &&
	    !(rq.flags & WIRE_F_LOCAL))
		return -EINVAL;
	struct vset set;
	vset_init(&set);
	rc = coord_get(n, &rq, &set);
	if (rc == 0)
		rc = get_reply(n, m, &rq, &pos, &set, out);
	vset_fini(&set);
	return rc;
}

/* An optional u32 field: def when absent, else 1..max (DYN_ETOOBIG over
 * it, -EINVAL for 0 or a field of the wrong size). */
static int
req_limit(const struct wire_msg *m, uint16_t tag, uint32_t def, uint32_t max,
    uint32_t *out)
{
	int rc = wire_get_u32(m, tag, out);
	if (rc == -ENOENT) {
		*out = def;
		return 0;
	}
	if (rc != 0 || *out == 0)
		return -EINVAL;
	return *out > max ? DYN_ETOOBIG : 0;
}

/* RANGE_REQ: a page of the keys of one placement part (coord_range). */
/* A range record's contexts, as a get gives them (put_get_reply): the
 * merged one, then one per version; every key of a part shares its
 * position, which the contexts are bound to. */
static void
range_contexts(struct node *n, const struct keypos *pos,
    const struct vset *set, struct buf *out)
{
	struct vclock c;
	struct buf t;
	buf_init(&t);
	for (uint32_t i = 0; i <= set->n; i++) {
		if (i == 0)
			vset_context(set, &c);
		else
			version_context(&set->v[i - 1], &c);
		buf_reset(&t);
		context_encode(node_ctx_key(n), pos, &c, &t);
		if (buf_err(&t) && !out->err)
			out->err = buf_err(&t);
		buf_put_blob(out, t.data, t.len);
	}
	buf_fini(&t);
}

static int
handle_range(struct node *n, const struct wire_msg *m, struct buf *out)
{
	const struct wire_field *part = wire_find(m, F_PART_KEY);
	if (!part)
		return DYN_EBADMSG;
	uint8_t hdr[KEYPOS_PLACED_MAX];
	struct coord_range rq = {.hdr = hdr};
	if ((rq.hlen = keypos_placed_make(part->data, part->len, hdr)) == 0)
		return DYN_ETOOBIG;
	int rc = keypos_of(hdr, rq.hlen, &rq.pos);
	if (rc)
		return rc;
	const struct wire_field *start = wire_find(m, F_START);
	if (start) {
		/* A key of the part (it need not exist). */
		if (start->len > KEYPOS_PLACED_MAX)
			return DYN_ETOOBIG;
		if (start->len < rq.hlen || memcmp(start->data, hdr, rq.hlen))
			return -EINVAL;
		rq.start = start->data;
		rq.slen = start->len;
	}
	if ((rc = req_limit(m, F_LIMIT, COORD_RANGE_LIMIT, COORD_RANGE_MAX,
	         &rq.limit)) != 0 ||
	    (rc = req_limit(m, F_LIMIT_BYTES, COORD_RANGE_BYTES,
	         COORD_RANGE_MAX_BYTES, &rq.limit_bytes)) != 0)
		return rc;
	wire_get_u32(m, F_FLAGS, &rq.flags);
	wire_get_u32(m, F_R, &rq.r);
	struct coord_req fw = {.pos = rq.pos, .flags = rq.flags};
	if ((rc = maybe_forward(n, m, &fw, out)) != 1)
		return rc;

	struct reclist page;
	reclist_init(&page);
	struct buf next;
	buf_init(&next);
	bool more = false;
	rc = coord_range(n, &rq, &page, &more, &next);
	if (rc == 0) {
		wire_begin(out, WIRE_RANGE_RESP, 0, m->reqid);
		wire_put_u32(out, F_STATUS, 0);
		size_t at = wire_begin_field(out, F_RECORDS);
		reclist_encode(page.keys, page.sets, page.n, out);
		wire_end_field(out, at);
		at = wire_begin_field(out, F_RCONTEXTS);
		for (uint32_t i = 0; i < page.n; i++)
			range_contexts(n, &rq.pos, &page.sets[i], out);
		wire_end_field(out, at);
		if (more)
			wire_put(out, F_START, next.data, next.len);
		rc = buf_err(out);
	}
	buf_fini(&next);
	reclist_fini(&page);
	return rc;
}

/* The union of every context the put carries, each verified. */
static int
put_context(struct node *n, const struct wire_msg *m,
    const struct keypos *pos, struct vclock *out)
{
	vclock_init(out);
	for (uint32_t i = 0; i < m->nfields; i++) {
		const struct wire_field *f = &m->f[i];
		if (f->tag != F_CONTEXT)
			continue;
		struct vclock c;
		int rc = context_decode(node_ctx_key(n), pos, f->data, f->len, &c);
		if (rc)
			return rc;
		vclock_merge(out, &c);
	}
	return 0;
}

/* The value of a PUT_REQ (NULL for a delete), its fields checked. */
static int
put_fields(struct node *n, const struct wire_msg *m,
    const struct coord_req *rq, const struct wire_field **value)
{
	const struct wire_field *val = wire_find(m, F_VALUE);
	bool tomb = rq->flags & WIRE_F_TOMBSTONE;
	if (!val && !tomb)
		return DYN_EBADMSG;
	/* Blob keys take blob puts only, and those are never deletes. */
	bool blob = rq->flags & WIRE_F_BLOB;
	if (blob != blob_is_key(rq->key, rq->klen) || (blob && tomb))
		return -EINVAL;
	/* A blob's bytes must be the ones its key names: wire_decode checks
	 * that for a message whose tag skips them (WIRE_H_BLOB). */
	if (blob && !(m->flags & WIRE_H_BLOB))
		return DYN_EAUTH;
	if (val && val->len > n->cfg.max_value)
		return DYN_ETOOBIG;
	*value = tomb ? NULL : val;
	return 0;
}

static int
put_reply(struct node *n, const struct wire_msg *m, const struct keypos *pos,
    const struct vclock *newctx, struct buf *out)
{
	wire_begin(out, WIRE_PUT_RESP, 0, m->reqid);
	wire_put_u32(out, F_STATUS, 0);
	size_t at = wire_begin_field(out, F_CONTEXT);
	context_encode(node_ctx_key(n), pos, newctx, out);
	wire_end_field(out, at);
	return buf_err(out);
}

static int
handle_put(struct node *n, const struct wire_msg *m, struct buf *out)
{
	struct coord_req rq = {0};
	struct keypos pos;
	int rc = req_key(m, &rq, &pos);
	if (rc)
		return rc;
	if ((rc = maybe_forward(n, m, &rq, out)) != 1)
		return rc;
	const struct wire_field *val;
	if ((rc = put_fields(n, m, &rq, &val)) != 0)
		return rc;
	struct vclock ctx, newctx;
	if ((rc = put_context(n, m, &pos, &ctx)) != 0)
		return rc;
	rc = coord_put(n, &rq, &ctx, val ? val->data : NULL, val ? val->len : 0,
	    &newctx);
	return rc ? rc : put_reply(n, m, &pos, &newctx, out);
}

static int
hint_count_json(const char *target, uint64_t count, void *arg)
{
	char num[32];
	int n = snprintf(num, sizeof(num), ": %llu, ", (unsigned long long)count);
	json_put_str(arg, target, strlen(target));
	buf_put(arg, num, (size_t)n);
	return 0;
}

static int
handle_status(struct node *n, const struct wire_msg *m, struct buf *out)
{
	struct store_stats st;
	struct server_stats ss;
	int rc = store_stats(n->store, &st);
	if (rc)
		return rc;
	server_stats(n->srv, &ss);

	char stats[2048];
	int sl = snprintf(stats, sizeof(stats),
	    "requests=%llu\nrejected=%llu\nauth_failures=%llu\n"
	    "replays_refused=%llu\nrole_refused=%llu\n"
	    "commits=%llu\nupdates=%llu\ncommit_batch_avg=%.1f\n"
	    "commit_ms_avg=%.2f\nmap_bytes=%llu\n"
	    "rx_bytes=%llu\ntx_bytes=%llu\n",
	    (unsigned long long)ss.requests, (unsigned long long)ss.rejected,
	    (unsigned long long)ss.auth_failures,
	    (unsigned long long)ss.replays_refused,
	    (unsigned long long)ss.role_refused,
	    (unsigned long long)st.commits, (unsigned long long)st.updates,
	    /* group commit: requests per commit, and what a commit takes */
	    st.batches.count ? (double)st.batches.sum / st.batches.count : 0.0,
	    st.commit_us.count
	        ? (double)st.commit_us.sum / st.commit_us.count / 1000.0
	        : 0.0,
	    (unsigned long long)st.map_bytes,
	    (unsigned long long)ss.rx_bytes, (unsigned long long)ss.tx_bytes);
	/* The listener's guard (guard.h): connections open, refused over
	 * the cap, closed idle, closed for a message over max-request. */
	sl += snprintf(stats + sl, sizeof(stats) - (size_t)sl,
	    "conns=%llu\nconns_total=%llu\nconns_refused=%llu\n"
	    "idle_closed=%llu\noversize_closed=%llu\n",
	    (unsigned long long)ss.guard.conns,
	    (unsigned long long)ss.guard.conns_total,
	    (unsigned long long)ss.guard.conns_refused,
	    (unsigned long long)ss.guard.idle_closed,
	    (unsigned long long)ss.guard.oversize);
	/* The data file: its size, the part in use, what compaction would
	 * give back, and the compactions done. */
	char ccheck[24] = "off";
	if (n->cfg.compact_check_ms > 0)
		snprintf(ccheck, sizeof(ccheck), "%lld",
		    (long long)n->cfg.compact_check_ms);
	sl += snprintf(stats + sl, sizeof(stats) - (size_t)sl,
	    "file_bytes=%llu\nused_bytes=%llu\nfree_bytes=%llu\n"
	    "compactions=%llu\ncompact_skipped=%llu\ncompacting=%d\n"
	    "compact_last_before=%llu\ncompact_last_after=%llu\n"
	    "compact_last_ms=%llu\ncompact_check_ms=%s\n",
	    (unsigned long long)st.file_bytes,
	    (unsigned long long)st.used_bytes,
	    (unsigned long long)st.free_bytes,
	    (unsigned long long)st.compactions,
	    (unsigned long long)st.compact_skipped, st.compacting ? 1 : 0,
	    (unsigned long long)st.last.before,
	    (unsigned long long)st.last.after,
	    (unsigned long long)st.last.ms, ccheck);
	/* The blob GC's counters; the mount reads gc_grace_ms (a number of
	 * ms, or off) to know how long it may hold a reference. */
	struct gc_stats gs;
	gc_stats(n->gc, &gs);
	for (char *c = gs.last_abort; *c; c++)
		if (*c < 0x20 || *c == '"' || *c == '\\' || *c == 0x7f)
			*c = '?'; /* one line of text, one JSON string */
	char grace[24] = "off";
	if (n->cfg.gc_grace_ms >= 0)
		snprintf(grace, sizeof(grace), "%lld",
		    (long long)n->cfg.gc_grace_ms);
	sl += snprintf(stats + sl, sizeof(stats) - (size_t)sl,
	    "gc_rounds=%llu\ngc_aborted=%llu\ngc_last_abort=%s\n"
	    "gc_blobs=%llu\ngc_referenced=%llu\ngc_condemned=%llu\n"
	    "gc_condemned_bytes=%llu\ngc_deleted=%llu\n"
	    "gc_deleted_bytes=%llu\ngc_grace_ms=%s\n",
	    (unsigned long long)gs.rounds, (unsigned long long)gs.aborted,
	    gs.last_abort, (unsigned long long)gs.blobs,
	    (unsigned long long)gs.referenced,
	    (unsigned long long)gs.condemned,
	    (unsigned long long)gs.condemned_bytes,
	    (unsigned long long)gs.deleted,
	    (unsigned long long)gs.deleted_bytes, grace);
	/* What is behind: hints held, replicas that differ, the transfer
	 * (dynamoctl status judges the cluster by them; the JSON has more). */
	struct xfer_progress xp;
	xfer_progress(n->xfer, &xp);
	/* What this node is to pull under its ring's pending plan (before
	 * the pull begins, too: xp is of the last one it worked on). */
	uint64_t plan_epoch = 0;
	uint32_t plan_parts = 0;
	struct ring *ring = gossip_ring_copy(n->gossip);
	if (ring && ring_has_next(ring)) {
		int me = ring_member_find(ring, n->name);
		plan_epoch = ring_epoch(ring);
		plan_parts = me < 0 ? 0 : ring_gains(ring,
		    gossip_settings(n->gossip).n, (uint32_t)me, NULL);
	}
	ring_free(ring);
	struct ae_stats as;
	ae_stats(n->ae, &as);
	uint64_t delivered = handoff_delivered(n->handoff);
	snprintf(stats + sl, sizeof(stats) - (size_t)sl,
	    "hints=%llu\nhints_delivered=%llu\nae_rounds=%llu\n"
	    "ae_differing=%u\nxfer_epoch=%llu\nxfer_done=%u\n"
	    "xfer_total=%u\nxfer_bytes=%llu\n",
	    (unsigned long long)st.hints, (unsigned long long)delivered,
	    (unsigned long long)as.rounds, as.differing,
	    (unsigned long long)xp.epoch, xp.done, xp.total,
	    (unsigned long long)xp.bytes);

	wire_begin(out, WIRE_STATUS_RESP, 0, m->reqid);
	wire_put_u32(out, F_STATUS, 0);
	wire_put_str(out, F_NAME, n->name);
	wire_put_str(out, F_ADDR, server_addr(n->srv));
	wire_put_u64(out, F_UPTIME, (mono_ms() - n->start_ms) / 1000);
	wire_put_u64(out, F_KEYS, st.keys);
	wire_put_u64(out, F_DBSIZE, st.db_bytes);
	wire_put_u64(out, F_ACTOR, n->actor);
	wire_put_str(out, F_STATS, stats);
	struct buf js;
	buf_init(&js);
	gossip_status_json(n->gossip, &js);
	char diff_age[24] = "null";
	if (as.last_diff_age_ms >= 0)
		snprintf(diff_age, sizeof(diff_age), "%lld",
		    (long long)as.last_diff_age_ms);
	/* The status page's and /metrics' URL: no quote or backslash in it
	 * (httpd builds it from a parsed host name and a port). */
	char http[RING_ADDR_MAX + 24] = "null";
	if (n->httpd)
		snprintf(http, sizeof(http), "\"%s\"", httpd_url(n->httpd));
	char tail[2048];
	int tl = snprintf(tail, sizeof(tail),
	    ", \"storage\": {\"file_bytes\": %llu, \"used_bytes\": %llu, "
	    "\"free_bytes\": %llu, \"compactions\": %llu, "
	    "\"compact_skipped\": %llu, \"compacting\": %s, "
	    "\"last_compaction\": {\"before\": %llu, \"after\": %llu, "
	    "\"ms\": %llu}, \"compact_check_ms\": %s}"
	    ", \"transfer\": {\"done\": %u, \"total\": %u, \"epoch\": "
	    "%llu, \"bytes\": %llu, \"records\": %llu, \"active\": %s, "
	    "\"ms\": %llu, \"plan_epoch\": %llu, \"plan_partitions\": %u}, "
	    "\"anti_entropy\": {\"rounds\": %llu, \"merged\": %llu, "
	    "\"purged\": %llu, \"swept\": %llu, \"differing\": %u, "
	    "\"diffs\": %llu, \"last_diff_age_ms\": %s, "
	    "\"last_diff_part\": %u, \"last_diff_leaves\": %u, "
	    "\"leaves_differ\": %llu, \"bytes\": %llu}, "
	    "\"gc\": {\"rounds\": %llu, \"aborted\": %llu, "
	    "\"last_abort\": \"%s\", \"blobs\": %llu, \"referenced\": %llu, "
	    "\"condemned\": %llu, \"condemned_bytes\": %llu, "
	    "\"deleted\": %llu, \"deleted_bytes\": %llu, "
	    "\"grace_ms\": %s}, \"http\": %s, \"hints_delivered\": %llu, "
	    "\"hints\": {",
	    (unsigned long long)st.file_bytes,
	    (unsigned long long)st.used_bytes,
	    (unsigned long long)st.free_bytes,
	    (unsigned long long)st.compactions,
	    (unsigned long long)st.compact_skipped,
	    st.compacting ? "true" : "false",
	    (unsigned long long)st.last.before,
	    (unsigned long long)st.last.after,
	    (unsigned long long)st.last.ms,
	    n->cfg.compact_check_ms > 0 ? ccheck : "null",
	    xp.done, xp.total, (unsigned long long)xp.epoch,
	    (unsigned long long)xp.bytes, (unsigned long long)xp.records,
	    xp.active ? "true" : "false", (unsigned long long)xp.ms,
	    (unsigned long long)plan_epoch, plan_parts,
	    (unsigned long long)as.rounds,
	    (unsigned long long)as.merged, (unsigned long long)as.purged,
	    (unsigned long long)as.swept, as.differing,
	    (unsigned long long)as.diffs, diff_age, as.last_diff_part,
	    as.last_diff_leaves, (unsigned long long)as.leaves_differ,
	    (unsigned long long)as.bytes, (unsigned long long)gs.rounds,
	    (unsigned long long)gs.aborted, gs.last_abort,
	    (unsigned long long)gs.blobs, (unsigned long long)gs.referenced,
	    (unsigned long long)gs.condemned,
	    (unsigned long long)gs.condemned_bytes,
	    (unsigned long long)gs.deleted,
	    (unsigned long long)gs.deleted_bytes,
	    n->cfg.gc_grace_ms >= 0 ? grace : "null", http,
	    (unsigned long long)delivered);
	/* Splice transfers and the hint backlog into gossip's object. */
	if (buf_err(&js) == 0 && js.len > 0) {
		js.len--; /* the closing brace */
		buf_put(&js, tail, (size_t)tl);
		size_t before = js.len;
		store_hint_counts(n->store, hint_count_json, &js);
		if (js.len > before)
			js.len -= 2; /* the last ", " */
		buf_put(&js, "}}", 2);
	}
	wire_put(out, F_STATUSJSON, js.data, js.len);
	buf_fini(&js);
	return buf_err(out);
}

static int
handle_remove(struct node *n, const struct wire_msg *m, struct buf *out)
{
	char name[RING_NAME_MAX + 1];
	if (wire_get_str(m, F_NAME, name, sizeof(name)) != 0)
		return DYN_EBADMSG;
	int rc = gossip_remove(n->gossip, name);
	if (rc)
		return rc;
	wire_begin(out, WIRE_REMOVE_RESP, 0, m->reqid);
	wire_put_u32(out, F_STATUS, 0);
	return buf_err(out);
}

/* COMPACT_REQ: compact the data file now; the worker waits for it. */
static int
handle_compact(struct node *n, const struct wire_msg *m, struct buf *out)
{
	struct store_compaction res;
	int rc = store_compact(n->store, &res);
	if (rc)
		return rc;
	wire_begin(out, WIRE_COMPACT_RESP, 0, m->reqid);
	wire_put_u32(out, F_STATUS, 0);
	wire_put_u64(out, F_BEFORE, res.before);
	wire_put_u64(out, F_AFTER, res.after);
	wire_put_u64(out, F_DURATION, res.ms);
	return buf_err(out);
}

static int
handle_leave(struct node *n, const struct wire_msg *m, struct buf *out)
{
	int rc = gossip_leave(n->gossip);
	if (rc)
		return rc;
	wire_begin(out, WIRE_LEAVE_RESP, 0, m->reqid);
	wire_put_u32(out, F_STATUS, 0);
	return buf_err(out);
}

static int
dispatch(struct node *n, const struct wire_msg *m, struct buf *out)
{
	if (!atomic_load(&n->ready)) {
		/* A request that came in while the node was starting. */
		pthread_mutex_lock(&n->start_lock);
		pthread_mutex_unlock(&n->start_lock);
		if (!atomic_load(&n->ready))
			return DYN_ECLOSED;
	}
	if (from_blocked(n, m))
		return SERVER_DROP;
	switch (m->type) {
	case WIRE_PING_REQ: { /* a peer's probe, or an echo (a payload) */
		const struct wire_field *f = wire_find(m, F_VALUE);
		wire_begin(out, WIRE_PING_RESP, 0, m->reqid);
		if (f)
			wire_put(out, F_VALUE, f->data, f->len);
		return buf_err(out);
	}
	case WIRE_FAULT_REQ:
		return handle_fault(n, m, out);
	case WIRE_GET_REQ:
		return handle_get(n, m, out);
	case WIRE_PUT_REQ:
		return handle_put(n, m, out);
	case WIRE_RANGE_REQ:
		return handle_range(n, m, out);
	case WIRE_STATUS_REQ:
		return handle_status(n, m, out);
	case WIRE_GOSSIP_REQ:
		return gossip_handle(n->gossip, m, out);
	case WIRE_RING_REQ:
		return gossip_ring_reply(n->gossip, m->reqid, out);
	case WIRE_REPLICATE_REQ:
		return replica_handle(n, m, out);
	case WIRE_XFER_REQ:
		return xfer_handle(n, m, out);
	case WIRE_LEAVE_REQ:
		return handle_leave(n, m, out);
	case WIRE_REMOVE_REQ:
		return handle_remove(n, m, out);
	case WIRE_AE_REQ:
		return ae_handle(n, m, out);
	case WIRE_MERGE_REQ:
		return ae_handle_merge(n, m, out);
	case WIRE_PURGE_CHECK_REQ:
		return ae_handle_purge_check(n, m, out);
	case WIRE_PURGE_REQ:
		return ae_handle_purge(n, m, out);
	case WIRE_GC_FILTER_REQ:
		return gc_handle_filter(n, m, out);
	case WIRE_COMPACT_REQ:
		return handle_compact(n, m, out);
	default:
		return DYN_EBADMSG;
	}
}

/* Every request, timed and counted by operation and outcome. */
static int
node_handle(void *arg, const struct wire_msg *m, struct buf *out)
{
	struct node *n = arg;
	uint32_t flags = 0;
	wire_get_u32(m, F_FLAGS, &flags);
	uint64_t t0 = mono_us();
	int rc = dispatch(n, m, out);
	metrics_request(&n->metrics, metrics_op_of(m->type, flags), rc,
	    mono_us() - t0);
	return rc;
}

/*
 * Where a request is served (server_route_fn).  In nng's callback, those
 * that never block: an echo or probe, the ring, a replica's local read (a
 * read transaction, which never waits for the writer but while a
 * compaction swaps the file), a replica write, whose commit answers it
 * from the store's writer, and a get this node coordinates, answered
 * from the callback of its replicas' answers (node_later; a get to
 * forward, or a blob this node lacks, goes on to a worker).  Everything
 * else may call peers or wait, in a worker.  A node still starting serves nothing in
 * the callback: dispatch waits for it.
 */
static enum server_route
node_route(void *arg, const struct wire_msg *m)
{
	struct node *n = arg;
	if (!atomic_load(&n->ready))
		return SERVER_WORKER;
	uint32_t flags = 0;
	switch (m->type) {
	case WIRE_PING_REQ:
	case WIRE_RING_REQ:
		return SERVER_QUICK;
	case WIRE_GET_REQ:
		wire_get_u32(m, F_FLAGS, &flags);
		return flags & WIRE_F_LOCAL ? SERVER_QUICK : SERVER_ASYNC;
	case WIRE_PUT_REQ:
		return SERVER_ASYNC;
	case WIRE_REPLICATE_REQ: /* a stand-in's two writes: a worker's */
		return wire_find(m, F_HINT) ? SERVER_WORKER : SERVER_ASYNC;
	default:
		return SERVER_WORKER;
	}
}

/* A request answered when its commit is done (node_later). */
struct later {
	struct node *n;
	struct server_call *call;
	enum metrics_op op;
	uint64_t t0;
};

static void
later_done(void *arg, int rc)
{
	struct later *l = arg;
	metrics_request(&l->n->metrics, l->op, rc, mono_us() - l->t0);
	server_call_done(l->call, rc);
	mem_free(l);
}

/* A get or put coordinated here, while its parts are out. */
struct coord_later {
	struct later l; /* first: later_done frees the whole */
	const struct wire_msg *m;
	struct buf *out;
	struct coord_req rq;
	struct keypos pos;
	struct vclock ctx; /* a put's */
};

static void
get_later_done(void *arg, int rc, const struct vset *set)
{
	struct coord_later *g = arg;
	if (rc == 0)
		rc = get_reply(g->l.n, g->m, &g->rq, &g->pos, set, g->out);
	later_done(&g->l, rc);
}

/* A blob this node holds is answered from its copy at once; anything
 * else that would wait (a forward, a blob fetched from the others) goes
 * to a worker. */
static int
get_start(struct node *n, const struct wire_msg *m, struct buf *out,
    struct coord_later *g)
{
	int rc = req_key(m, &g->rq, &g->pos);
	if (rc)
		return rc;
	if (((g->rq.flags & WIRE_F_BLOB) != 0) !=
	    blob_is_key(g->rq.key, g->rq.klen))
		return -EINVAL;
	if (g->rq.flags & WIRE_F_BLOB) { /* the same on every node holding it */
		struct vset set;
		vset_init(&set);
		rc = store_get(n->store, g->rq.key, g->rq.klen, &set);
		if (rc == 0 && vset_live(&set) > 0)
			rc = get_reply(n, m, &g->rq, &g->pos, &set, out);
		else if (rc == 0 || rc == -ENOENT)
			rc = SERVER_DEFER;
		vset_fini(&set);
		return rc;
	}
	g->m = m;
	g->out = out;
	rc = coord_get_start(n, &g->rq, get_later_done, g);
	if (rc == -EAGAIN)
		return SERVER_DEFER;
	return rc == 0 ? SERVER_LATER : rc;
}

static void
put_later_done(void *arg, int rc, const struct vclock *newctx)
{
	struct coord_later *p = arg;
	if (rc == 0)
		rc = put_reply(p->l.n, p->m, &p->pos, newctx, p->out);
	later_done(&p->l, rc);
}

static void
put_later_defer(void *arg, void (*fn)(void *), void *fn_arg)
{
	struct coord_later *p = arg;
	server_call_continue(p->l.call, fn, fn_arg);
}

/* A put of a key this node replicates, with no hint to keep, runs in
 * callbacks (coord_put_start); any other goes to a worker. */
static int
put_start(struct node *n, const struct wire_msg *m, struct buf *out,
    struct coord_later *p)
{
	int rc = req_key(m, &p->rq, &p->pos);
	const struct wire_field *val = NULL;
	if (rc == 0)
		rc = put_fields(n, m, &p->rq, &val);
	if (rc == 0)
		rc = put_context(n, m, &p->pos, &p->ctx);
	if (rc)
		return rc;
	p->m = m;
	p->out = out;
	rc = coord_put_start(n, &p->rq, &p->ctx, val ? val->data : NULL,
	    val ? val->len : 0, put_later_done, put_later_defer, p);
	if (rc == -EAGAIN)
		return SERVER_DEFER;
	return rc == 0 ? SERVER_LATER : rc;
}

static int
node_later(void *arg, const struct wire_msg *m, struct buf *out,
    struct server_call *call)
{
	struct node *n = arg;
	uint32_t flags = 0;
	wire_get_u32(m, F_FLAGS, &flags);
	if (from_blocked(n, m))
		return SERVER_DROP;
	bool coord = m->type == WIRE_GET_REQ || m->type == WIRE_PUT_REQ;
	struct later *l = mem_calloc(1, coord ? sizeof(struct coord_later)
	                                      : sizeof(struct later));
	if (!l)
		return -ENOMEM;
	*l = (struct later){n, call, metrics_op_of(m->type, flags), mono_us()};
	int rc;
	if (m->type == WIRE_GET_REQ) {
		rc = get_start(n, m, out, (struct coord_later *)l);
	} else if (m->type == WIRE_PUT_REQ) {
		rc = put_start(n, m, out, (struct coord_later *)l);
	} else {
		rc = replica_start(n, m, out, later_done, l);
		rc = rc == 0 ? SERVER_LATER : rc;
	}
	if (rc == SERVER_LATER)
		return rc; /* l is later_done's now */
	if (rc != SERVER_DEFER) /* else the worker counts it */
		metrics_request(&n->metrics, l->op, rc, mono_us() - l->t0);
	mem_free(l);
	return rc;
}

/*
 * The format of the records in the data directory.  2: clocks carry exact
 * dots (common/vclock.h).  A directory of another format is refused with a
 * clear message, never read wrongly; one without a format but with an
 * actor id was written before formats were recorded (format 1).
 */
#define DATA_FORMAT 2

static int
check_format(struct node *n)
{
	size_t len = 0;
	uint8_t b[4];
	uint32_t have = 1;
	int rc = store_meta_get(n->store, "format", b, sizeof(b), &len);
	if (rc == 0 && len == sizeof(b)) {
		have = be_get_u32(b);
	} else if (rc == -ENOENT) {
		rc = store_meta_get(n->store, "actor", NULL, 0, &len);
		if (rc == -ENOENT) {
			be_put_u32(b, DATA_FORMAT);
			return store_meta_put(n->store, "format", b, sizeof(b));
		}
		if (rc != 0)
			return rc;
	} else {
		return rc ? rc : -EIO;
	}
	if (have == DATA_FORMAT)
		return 0;
	LOG_ERROR("%s holds data of format %" PRIu32 "; this dynamod reads "
	    "format %d only: move it aside and start the node on an empty "
	    "directory (its replicas fill it again)", n->cfg.data, have,
	    DATA_FORMAT);
	return DYN_EPROTO;
}

int
node_bulk_timeout_ms(const struct node *n)
{
	int t = n->cfg.timeout_ms > 0 ? n->cfg.timeout_ms : 2000;
	return t > INT_MAX / NODE_BULK_FACTOR ? INT_MAX : t * NODE_BULK_FACTOR;
}

/* A fresh actor id (never 0) into *out. */
static int
draw_actor(uint64_t *out)
{
	uint8_t b[8];
	do {
		if (RAND_bytes(b, sizeof(b)) != 1)
			return -EIO;
		*out = be_get_u64(b);
	} while (*out == 0);
	return 0;
}

/*
 * The actor id is drawn once per data directory, so a wiped node comes
 * back as a new actor and never reissues an old dot, and again after a
 * stop that was not clean (meta "clean" is 0 while the node runs): a put
 * sends its version to the other replicas while its own commit runs
 * (coord.c), so a node killed then may have sent dots its store does not
 * know and would issue again from what it knows.  A clean stop (node_stop)
 * has every put's commit done first.
 */
static int
load_actor(struct node *n)
{
	size_t len = 0, clen = 0;
	uint8_t b[8], clean = 0;
	uint64_t actor = 0;
	int rc = store_meta_get(n->store, "actor", b, sizeof(b), &len);
	if (rc != 0 && rc != -ENOENT)
		return rc;
	bool have = rc == 0 && len == sizeof(b);
	if (rc == 0 && !have)
		return -EIO;
	rc = store_meta_get(n->store, "clean", &clean, 1, &clen);
	if (rc != 0 && rc != -ENOENT)
		return rc;
	if (have && rc == 0 && clen == 1 && clean == 1) {
		actor = be_get_u64(b);
	} else {
		if ((rc = draw_actor(&actor)) != 0)
			return rc;
		if (have)
			LOG_WARN("the last stop was not clean (killed, or a "
			    "commit failed): new actor id %016llx, so no dot "
			    "sent out but not stored is issued again",
			    (unsigned long long)actor);
		be_put_u64(b, actor);
		if ((rc = store_meta_put(n->store, "actor", b, sizeof(b))) != 0)
			return rc;
	}
	n->actor = actor;
	clean = 0;
	return store_meta_put(n->store, "clean", &clean, 1);
}

void
node_actor_lost(struct node *n, uint64_t actor)
{
	uint64_t fresh;
	atomic_store(&n->dots_lost, true);
	if (draw_actor(&fresh) != 0)
		fresh = actor + 1; /* no randomness: still not actor */
	if (atomic_compare_exchange_strong(&n->actor, &actor, fresh))
		LOG_WARN("a put's commit failed after its version went to the "
		    "other replicas: new actor id %016llx",
		    (unsigned long long)fresh);
}

int
node_start(const struct node_config *c, struct node **out)
{
	int rc;
	struct node *n = mem_calloc(1, sizeof(*n));
	if (!n)
		return -ENOMEM;
	n->cfg = *c;
	pthread_mutex_init(&n->start_lock, NULL);
	pthread_mutex_init(&n->fault_lock, NULL);
	snprintf(n->name, sizeof(n->name), "%s", c->name);
	n->cfg.name = n->name;
	n->start_ms = mono_ms();
	metrics_init(&n->metrics);

	struct store_opts so;
	store_opts_default(&so);
	so.dir = c->data;
	so.fsync = c->fsync;
	so.max_batch = c->group_commit ? so.max_batch : 1;
	so.max_value = c->max_value;
	if (c->map_max)
		so.map_max = c->map_max;
	so.compact_check_ms = c->compact_check_ms > 0 ? c->compact_check_ms : 0;
	if ((rc = store_open(&so, &n->store)) != 0) {
		LOG_ERROR("open store in %s: %s", c->data, dyn_strerror(rc));
		goto fail;
	}
	if ((rc = check_format(n)) != 0) {
		if (rc != DYN_EPROTO)
			LOG_ERROR("data format: %s", dyn_strerror(rc));
		goto fail;
	}
	if ((rc = load_actor(n)) != 0) {
		LOG_ERROR("actor id: %s", dyn_strerror(rc));
		goto fail;
	}
	/* Before serving; a compaction that fails or is refused leaves the
	 * store as it was (the store logs why), so the node serves anyway. */
	if (c->compact_at_start && (rc = store_compact(n->store, NULL)) != 0)
		LOG_WARN("compaction at start: %s; serving the data file as "
		    "it is", dyn_strerror(rc));

	uint64_t seed = 0;
	RAND_bytes((unsigned char *)&seed, sizeof(seed));
	atomic_store(&n->next_reqid, seed);
	if ((rc = rpc_pool_new(&n->cfg.keys, &n->pool)) != 0)
		goto fail;
	rpc_pool_set_name(n->pool, n->name);
	nng_tls_config *tls_srv = NULL, *tls_cli = NULL;
	if (c->cred) {
		if ((rc = cred_tls_config(c->cred, NNG_TLS_MODE_SERVER,
		         &tls_srv)) != 0 ||
		    (rc = cred_tls_config(c->cred, NNG_TLS_MODE_CLIENT,
		         &tls_cli)) != 0) {
			LOG_ERROR("TLS configuration: %s", dyn_strerror(rc));
			if (tls_srv)
				nng_tls_config_free(tls_srv);
			goto fail;
		}
		/* The pool and the listener hold references of their own. */
		rpc_pool_set_tls(n->pool, tls_cli);
		nng_tls_config_free(tls_cli);
		LOG_INFO("TLS: certificate %s (%s), %u CA certificate(s)",
		    c->cred->name, auth_role_name(c->cred->role),
		    c->cred->nca);
	} else {
		LOG_WARN("no credential (--cred): node-to-node and client "
		    "traffic is plain tcp, unencrypted; keep it on a "
		    "private network");
	}
	/* Peers run with the same cap: a request over it would only get
	 * its connection closed. */
	rpc_pool_set_max_request(n->pool,
	    c->max_request ? c->max_request : SERVER_MAX_REQUEST);

	/* Serve first (gossip handlers check n->gossip), then join. */
	struct server_opts sv = {
		.listen = c->listen,
		.tls = tls_srv,
		.keys = &n->cfg.keys,
		.replay_window_ms = c->replay_window_ms,
		.workers = c->workers,
		.max_request = c->max_request,
		.max_conns = c->max_conns,
		.idle_ms = c->idle_ms,
		.handler = node_handle,
		.route = node_route,
		.later = node_later,
		.arg = n,
	};
	pthread_mutex_lock(&n->start_lock);
	rc = server_start(&sv, &n->srv);
	if (tls_srv)
		nng_tls_config_free(tls_srv);
	if (rc != 0) {
		pthread_mutex_unlock(&n->start_lock);
		goto fail;
	}
	const char *adv = c->advertise ? c->advertise : server_addr(n->srv);
	if (strlen(adv) >= sizeof(n->addr)) {
		pthread_mutex_unlock(&n->start_lock);
		LOG_ERROR("address too long: %s", adv);
		rc = -EINVAL;
		goto fail;
	}
	memcpy(n->addr, adv, strlen(adv) + 1);
	/* Bound before joining, so a port in use stops the start before the
	 * cluster hears of this node; its pages answer 503 until ready. */
	if (c->http && (rc = httpd_start(n, c->http, &n->httpd)) != 0) {
		pthread_mutex_unlock(&n->start_lock);
		goto fail;
	}
	struct gossip_opts go = {
		.seeds = c->seeds,
		.nseeds = c->nseeds,
		.q = c->partitions,
		.settings = {c->n, c->r, c->w},
		.interval_ms = c->gossip_ms,
	};
	rc = gossip_start(n, &go, &n->gossip);
	if (rc == 0)
		rc = xfer_start(n, &n->xfer);
	if (rc == 0)
		rc = handoff_start(n, &n->handoff);
	if (rc == 0 && c->ae_ms >= 0)
		rc = ae_start(n, c->ae_ms, c->tomb_grace_ms, &n->ae);
	if (rc == 0)
		rc = gc_start(n, c->gc_ms, c->gc_grace_ms, &n->gc);
	atomic_store(&n->ready, rc == 0);
	pthread_mutex_unlock(&n->start_lock);
	if (rc)
		goto fail;
	LOG_INFO("node %s (actor %016llx) serving %s, data in %s", n->name,
	    (unsigned long long)n->actor, n->addr, c->data);
	if (n->httpd)
		LOG_INFO("status page and metrics at %s (/metrics)",
		    httpd_url(n->httpd));
	*out = n;
	return 0;
fail:
	node_stop(n);
	return rc;
}

const char *
node_addr(const struct node *n)
{
	return n->addr;
}

const char *
node_http_url(const struct node *n)
{
	return n->httpd ? httpd_url(n->httpd) : NULL;
}

bool
node_left(struct node *n)
{
	return gossip_left(n->gossip);
}

bool
node_removed(struct node *n)
{
	return gossip_removed(n->gossip);
}

void
node_stop(struct node *n)
{
	if (!n)
		return;
	/* First: its pages read every part below (n->ready stays true). */
	httpd_stop(n->httpd);
	/* Calls to peers end now, not at their timeouts (a frozen peer
	 * makes those the full ones): requests being served and background
	 * rounds fail fast and their threads see the stop. */
	rpc_pool_cancel(n->pool);
	server_stop(n->srv);
	/* Every put has ended, its commit here with it: the stop is clean
	 * unless a commit failed after its version went out (load_actor). */
	uint8_t clean = 1;
	if (n->store && atomic_load(&n->actor) != 0 &&
	    !atomic_load(&n->dots_lost) &&
	    store_meta_put(n->store, "clean", &clean, 1) != 0)
		LOG_WARN("could not mark the stop clean: the next start takes "
		    "a new actor id");
	gc_stop(n->gc);
	ae_stop(n->ae);
	handoff_stop(n->handoff);
	xfer_stop(n->xfer);
	gossip_stop(n->gossip);
	rpc_pool_free(n->pool);
	store_close(n->store);
	pthread_mutex_destroy(&n->start_lock);
	pthread_mutex_destroy(&n->fault_lock);
	mem_free(n);
}
