#include "gossip.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include <openssl/rand.h>

#include "bgthread.h"
#include "err.h"
#include "json.h"
#include "log.h"
#include "mem.h"
#include "mono.h"
#include "node_i.h"
#include "rpc.h"
#include "store.h"
#include "view.h"

#define MEMBERS_MAX GOSSIP_MEMBERS_MAX

struct gossip {
	struct node *node;
	int interval_ms;
	char **seeds;
	size_t nseeds;

	pthread_mutex_t lock; /* everything below */
	bool left;
	bool removed; /* left because an operator removed this node */
	struct cluster_settings settings;
	bool have_settings;
	struct ring *ring; /* NULL until joined */
	bool ring_dirty;   /* changed since last persisted */
	struct member members[MEMBERS_MAX];
	size_t nmembers; /* members[0] is this node */
	long long merged_ms; /* monotonic: a peer's view last merged (0:
	                        never) */
	struct bgthread thread;
};

static struct member *
self(struct gossip *g)
{
	return &g->members[0];
}

const char *
gossip_self(const struct gossip *g)
{
	return g->members[0].name;
}

static struct member *
find_member(struct gossip *g, const char *name)
{
	for (size_t i = 0; i < g->nmembers; i++)
		if (strcmp(g->members[i].name, name) == 0)
			return &g->members[i];
	return NULL;
}

/* This node's record changed: a newer version for everyone to take. */
static void
bump_locked(struct gossip *g)
{
	self(g)->version++;
}

/* ---- persistence --------------------------------------------------- */

/* The ring changed: persist it soon.  The write (an fsync'd meta put)
 * happens in persist_ring, outside the gossip lock, so request handlers
 * looking up replicas never wait on the disk. */
static void
ring_dirty_locked(struct gossip *g)
{
	g->ring_dirty = true;
}

static void
persist_ring(struct gossip *g)
{
	struct buf b;
	buf_init(&b);
	pthread_mutex_lock(&g->lock);
	bool dirty = g->ring_dirty && g->ring;
	if (dirty) {
		buf_put_u32(&b, g->settings.n);
		buf_put_u32(&b, g->settings.r);
		buf_put_u32(&b, g->settings.w);
		ring_encode(g->ring, &b);
		g->ring_dirty = false;
	}
	pthread_mutex_unlock(&g->lock);
	int rc = buf_err(&b);
	if (dirty && rc == 0)
		rc = store_meta_put(g->node->store, "ring", b.data, b.len);
	if (rc)
		LOG_WARN("saving the ring: %s", dyn_strerror(rc));
	buf_fini(&b);
}

static int
load_ring(struct gossip *g)
{
	size_t len = 0;
	int rc = store_meta_get(g->node->store, "ring", NULL, 0, &len);
	if (rc == -ENOENT)
		return 0;
	if (rc)
		return rc;
	uint8_t *p = mem_alloc(len);
	if (!p)
		return -ENOMEM;
	rc = store_meta_get(g->node->store, "ring", p, len, &len);
	struct rd r;
	rd_init(&r, p, len);
	if (rc == 0 && (rd_u32(&r, &g->settings.n) || rd_u32(&r, &g->settings.r) ||
	        rd_u32(&r, &g->settings.w)))
		rc = DYN_EBADMSG;
	if (rc == 0)
		rc = ring_decode(&r, &g->ring);
	if (rc == 0)
		g->have_settings = true;
	mem_free(p);
	return rc;
}

/* ---- the view ------------------------------------------------------ */

static void
encode_view_locked(struct gossip *g, struct buf *b)
{
	struct view v = {
	    .has_settings = g->have_settings,
	    .settings = g->settings,
	    .n = g->nmembers,
	    .members = g->members,
	    .ring = g->ring,
	};
	view_encode(&v, b);
}

static bool
newer_record(const struct member *a, const struct member *b)
{
	return a->incarnation > b->incarnation ||
	    (a->incarnation == b->incarnation && a->version > b->version);
}

/* Merge a peer's view into ours.  Everything is decoded and checked
 * (view_decode) before anything is taken. */
static int
merge_view(struct gossip *g, const uint8_t *p, size_t len)
{
	struct view v;
	int rc = view_decode(p, len, &v);
	if (rc)
		return rc;
	const struct member *in = v.members;
	size_t n = v.n;

	pthread_mutex_lock(&g->lock);
	g->merged_ms = (long long)mono_ms();
	if (v.has_settings && !g->have_settings) {
		g->settings = v.settings;
		g->have_settings = true;
	}
	for (size_t i = 0; i < n; i++) {
		struct member *mine = find_member(g, in[i].name);
		if (mine == self(g)) {
			if (in[i].status == MEMBER_LEFT &&
			    mine->status != MEMBER_LEFT) {
				/* Removed by an operator while away. */
				LOG_ERROR("this node was removed from the "
				          "cluster: stopping (to join again, "
				          "wipe its data directory)");
				mine->status = MEMBER_LEFT;
				g->removed = true;
				bump_locked(g);
			} else if (newer_record(&in[i], mine)) {
				/* Someone holds a newer record of us (we
				 * restarted with a clock behind). */
				mine->incarnation = in[i].incarnation + 1;
			}
			continue;
		}
		/* Leaving is final for a name: a left record is never
		 * replaced by another status, and always wins over one. */
		bool left_in = in[i].status == MEMBER_LEFT;
		if (mine && mine->status == MEMBER_LEFT && !left_in)
			continue;
		if (!mine && g->nmembers < MEMBERS_MAX) {
			g->members[g->nmembers++] = in[i];
			LOG_INFO("member %s at %s", in[i].name, in[i].addr);
		} else if (mine && ((left_in && mine->status != MEMBER_LEFT) ||
		                       newer_record(&in[i], mine))) {
			if (mine->status != in[i].status)
				LOG_INFO("member %s is now %s", in[i].name,
				    in[i].status == MEMBER_UP        ? "up"
				        : in[i].status == MEMBER_LEAVING ? "leaving"
				                                         : "gone");
			*mine = in[i];
		}
	}
	if (v.ring && (!g->ring || ring_newer(v.ring, g->ring))) {
		LOG_INFO("ring epoch %llu%s",
		    (unsigned long long)ring_epoch(v.ring),
		    ring_has_next(v.ring) ? " (transfer pending)" : "");
		ring_free(g->ring);
		g->ring = v.ring;
		v.ring = NULL;
		self(g)->ring_seen = ring_epoch(g->ring);
		bump_locked(g);
		ring_dirty_locked(g);
	}
	pthread_mutex_unlock(&g->lock);
	view_fini(&v);
	return 0;
}

/* ---- the claimant -------------------------------------------------- */

static int
cmp_str(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Adopt a ring this node made: it replaces ours and goes out by gossip. */
static void
adopt_locked(struct gossip *g, struct ring *r)
{
	ring_free(g->ring);
	g->ring = r;
	self(g)->ring_seen = ring_epoch(r);
	bump_locked(g);
	ring_dirty_locked(g);
}

/* Does every member that takes part in the ring hold epoch e (and, with
 * ready, has it finished its transfers for it)? */
static bool
all_at_locked(struct gossip *g, uint64_t e, bool ready)
{
	for (size_t i = 0; i < g->nmembers; i++) {
		const struct member *m = &g->members[i];
		if (m->status == MEMBER_LEFT)
			continue;
		if ((ready ? m->ready : m->ring_seen) < e)
			return false;
	}
	return true;
}

static void
claimant_locked(struct gossip *g)
{
	if (!g->ring)
		return;
	const char *up[MEMBERS_MAX];
	uint32_t nup = 0;
	for (size_t i = 0; i < g->nmembers; i++)
		if (g->members[i].status == MEMBER_UP)
			up[nup++] = g->members[i].name;
	if (nup == 0)
		return;
	qsort(up, nup, sizeof(up[0]), cmp_str);
	if (strcmp(up[0], self(g)->name) != 0)
		return; /* not the claimant */

	uint64_t e = ring_epoch(g->ring);
	if (ring_has_next(g->ring)) {
		if (!all_at_locked(g, e, true))
			return;
		struct ring *r;
		if (ring_dup(g->ring, &r) != 0)
			return;
		if (ring_commit(r) != 0) {
			ring_free(r);
			return;
		}
		LOG_INFO("transfers done: ring epoch %llu committed",
		    (unsigned long long)ring_epoch(r));
		adopt_locked(g, r);
		return;
	}

	/* Stable ring: does it place exactly the UP members, at the
	 * addresses they announce? */
	struct ring *r = NULL;
	if (ring_dup(g->ring, &r) != 0)
		return;
	for (uint32_t i = 0; i < nup; i++) {
		const struct member *m = find_member(g, up[i]);
		if (ring_member_set(r, m->name, m->addr) != 0)
			goto out;
	}
	uint32_t cnt = ring_member_count(r);
	uint32_t *owned = mem_calloc(cnt, sizeof(*owned));
	if (!owned)
		goto out;
	ring_owned_counts(r, RING_CUR, owned);
	bool same = true, unknown = false;
	uint32_t owners = 0;
	for (uint32_t i = 0; i < cnt; i++) {
		if (owned[i] == 0)
			continue;
		owners++;
		const char *nm = ring_member_name(r, i);
		const struct member *m = find_member(g, nm);
		if (!m)
			unknown = true;
		else if (m->status != MEMBER_UP)
			same = false;
	}
	mem_free(owned);
	/* An owner this node has not heard of yet (it restarted, and gossip
	 * has not brought the others' records): no plan without it, or a
	 * lone restarted node would take every partition for itself. */
	if (unknown)
		goto out;
	if (owners != nup)
		same = false;
	if (same) {
		if (ring_epoch(r) != e) /* only addresses changed */
			adopt_locked(g, r), r = NULL;
		goto out;
	}
	struct ring *plan;
	if (ring_plan(r, up, nup, &plan) != 0)
		goto out;
	LOG_INFO("claimant: ring epoch %llu plans %u members, %u partitions "
	         "move",
	    (unsigned long long)ring_epoch(plan), nup, ring_moves(plan));
	adopt_locked(g, plan);
out:
	ring_free(r);
}

/* A leaving node is done once a committed ring that every member holds
 * gives it nothing and it holds no hints (they would go with it). */
static void
check_left_locked(struct gossip *g, bool hints)
{
	struct member *me = self(g);
	if (me->status != MEMBER_LEAVING || !g->ring ||
	    ring_has_next(g->ring) || hints)
		return;
	int idx = ring_member_find(g->ring, me->name);
	if (idx >= 0) {
		uint32_t cnt = ring_member_count(g->ring);
		uint32_t *owned = mem_calloc(cnt, sizeof(*owned));
		if (!owned)
			return;
		ring_owned_counts(g->ring, RING_CUR, owned);
		uint32_t mine = owned[idx];
		mem_free(owned);
		if (mine)
			return;
	}
	for (size_t i = 1; i < g->nmembers; i++) {
		const struct member *m = &g->members[i];
		if (m->status == MEMBER_UP && m->ring_seen < ring_epoch(g->ring))
			return;
	}
	me->status = MEMBER_LEFT;
	bump_locked(g);
	LOG_INFO("left the ring");
}

/* ---- rounds -------------------------------------------------------- */

static uint32_t
rand_u32(void)
{
	uint32_t v = 0;
	RAND_bytes((unsigned char *)&v, sizeof(v));
	return v;
}

/* The addresses of the other members that have not left (up to max). */
static size_t
peers_locked(struct gossip *g, char (*addrs)[RING_ADDR_MAX + 1], size_t max)
{
	size_t k = 0;
	for (size_t i = 1; i < g->nmembers && k < max; i++)
		if (g->members[i].status != MEMBER_LEFT)
			snprintf(addrs[k++], RING_ADDR_MAX + 1, "%s",
			    g->members[i].addr);
	return k;
}

/* A random peer to talk to: a live member, or a seed while we know none. */
static bool
pick_peer_locked(struct gossip *g, char *addr, size_t cap)
{
	size_t cand[MEMBERS_MAX], nc = 0;
	for (size_t i = 1; i < g->nmembers; i++)
		if (g->members[i].status != MEMBER_LEFT)
			cand[nc++] = i;
	if (nc > 0 && (g->nseeds == 0 || g->ring)) {
		snprintf(addr, cap, "%s", g->members[cand[rand_u32() % nc]].addr);
		return true;
	}
	if (g->nseeds > 0) {
		snprintf(addr, cap, "%s", g->seeds[rand_u32() % g->nseeds]);
		return true;
	}
	return false;
}

static int
exchange(struct gossip *g, const char *addr, int timeout_ms)
{
	struct node *n = g->node;
	struct buf b;
	buf_init(&b);
	node_req_begin(n, &b, WIRE_GOSSIP_REQ);
	size_t at = wire_begin_field(&b, F_GOSSIP);
	pthread_mutex_lock(&g->lock);
	encode_view_locked(g, &b);
	pthread_mutex_unlock(&g->lock);
	wire_end_field(&b, at);
	int rc = wire_seal(&b, &n->cfg.keys);
	struct rpc_reply r = {0};
	if (rc == 0)
		rc = rpc_call(n->pool, addr, &b, timeout_ms, &r);
	if (rc == 0) {
		const struct wire_field *f = wire_find(&r.m, F_GOSSIP);
		rc = f ? merge_view(g, f->data, f->len) : DYN_EBADMSG;
	}
	rpc_reply_fini(&r);
	buf_fini(&b);
	return rc;
}

/* Talk to every member this node cannot reach, so it notices as soon as
 * one is back (nng redials on its own; a timed-out one needs a call). */
static void
probe_down(struct gossip *g)
{
	char addrs[MEMBERS_MAX][RING_ADDR_MAX + 1];
	size_t na = 0;
	pthread_mutex_lock(&g->lock);
	for (size_t i = 1; i < g->nmembers; i++) {
		const struct member *m = &g->members[i];
		if (m->status != MEMBER_LEFT &&
		    !rpc_peer_usable(g->node->pool, m->addr))
			snprintf(addrs[na++], sizeof(addrs[0]), "%s", m->addr);
	}
	pthread_mutex_unlock(&g->lock);
	for (size_t i = 0; i < na; i++)
		exchange(g, addrs[i], g->interval_ms / 2 > 0 ? g->interval_ms / 2
		                                            : 1);
}

/* A round; after the one that finds this node left, no more (-1). */
static int64_t
gossip_round(void *arg)
{
	struct gossip *g = arg;
	char addr[RING_ADDR_MAX + 1];
	pthread_mutex_lock(&g->lock);
	bump_locked(g); /* heartbeat */
	bool have = pick_peer_locked(g, addr, sizeof(addr));
	pthread_mutex_unlock(&g->lock);
	if (have) {
		int rc = exchange(g, addr, g->interval_ms);
		if (rc)
			LOG_DEBUG("gossip with %s: %s", addr, dyn_strerror(rc));
	}
	probe_down(g);
	struct store_stats st;
	bool hints = store_stats(g->node->store, &st) != 0 || st.hints > 0;
	pthread_mutex_lock(&g->lock);
	claimant_locked(g);
	check_left_locked(g, hints);
	if (g->ring_dirty) {
		pthread_mutex_unlock(&g->lock);
		persist_ring(g);
		pthread_mutex_lock(&g->lock);
	}
	if (self(g)->status == MEMBER_LEFT) {
		/* Tell everyone before going. */
		char addrs[MEMBERS_MAX][RING_ADDR_MAX + 1];
		size_t na = peers_locked(g, addrs, MEMBERS_MAX);
		pthread_mutex_unlock(&g->lock);
		for (size_t i = 0; i < na; i++)
			exchange(g, addrs[i], 1000);
		pthread_mutex_lock(&g->lock);
		g->left = true;
		pthread_mutex_unlock(&g->lock);
		return -1;
	}
	pthread_mutex_unlock(&g->lock);
	/* Sleep a round, jittered so peers do not march in step. */
	return g->interval_ms / 2 + (int64_t)(rand_u32() %
	    (uint32_t)(g->interval_ms > 1 ? g->interval_ms : 2));
}

/* ---- requests ------------------------------------------------------ */

int
gossip_handle(struct gossip *g, const struct wire_msg *m, struct buf *out)
{
	const struct wire_field *f = wire_find(m, F_GOSSIP);
	if (!f)
		return DYN_EBADMSG;
	int rc = merge_view(g, f->data, f->len);
	if (rc)
		return rc;
	wire_begin(out, WIRE_GOSSIP_RESP, 0, m->reqid);
	wire_put_u32(out, F_STATUS, 0);
	size_t at = wire_begin_field(out, F_GOSSIP);
	pthread_mutex_lock(&g->lock);
	encode_view_locked(g, out);
	pthread_mutex_unlock(&g->lock);
	wire_end_field(out, at);
	return buf_err(out);
}

int
gossip_replicas(struct gossip *g, const struct keypos *pos,
    struct replicas *out)
{
	int rc = 0;
	pthread_mutex_lock(&g->lock);
	if (!g->ring || !g->have_settings) {
		rc = DYN_EUNREACH;
		goto out;
	}
	out->s = g->settings;
	out->ext_count = 0;
	uint32_t part = ring_partition_of(g->ring, pos);
	uint32_t idx[REPLICAS_MAX], cnt = 0, rcnt = 0;
	uint32_t n = g->settings.n;
	if ((rc = ring_preflist(g->ring, RING_CUR, part, n, idx, &rcnt)) ||
	    (rc = ring_replicas_union(g->ring, part, n, idx, &cnt)))
		goto out;
	/* The walk past the preference list: stand-ins. */
	uint32_t walk[REPLICAS_MAX], wn = 0;
	if ((rc = ring_preflist(g->ring, RING_CUR, part, REPLICAS_MAX, walk,
	         &wn)))
		goto out;
	for (uint32_t i = 0; i < wn && cnt + out->ext_count < REPLICAS_MAX;
	     i++) {
		bool have = false;
		for (uint32_t k = 0; k < cnt; k++)
			have |= idx[k] == walk[i];
		if (!have)
			idx[cnt + out->ext_count++] = walk[i];
	}
	out->count = cnt;
	out->read_count = rcnt;
	out->self_in = false;
	for (uint32_t i = 0; i < cnt + out->ext_count; i++) {
		snprintf(out->name[i], sizeof(out->name[i]), "%s",
		    ring_member_name(g->ring, idx[i]));
		snprintf(out->addr[i], sizeof(out->addr[i]), "%s",
		    ring_member_addr(g->ring, idx[i]));
		if (i < cnt && strcmp(out->name[i], self(g)->name) == 0)
			out->self_in = true;
	}
out:
	pthread_mutex_unlock(&g->lock);
	return rc;
}

int
gossip_ring_reply(struct gossip *g, uint64_t reqid, struct buf *out)
{
	pthread_mutex_lock(&g->lock);
	if (!g->ring) {
		pthread_mutex_unlock(&g->lock);
		return DYN_EUNREACH;
	}
	wire_begin(out, WIRE_RING_RESP, 0, reqid);
	wire_put_u32(out, F_STATUS, 0);
	wire_put_u32(out, F_N, g->settings.n);
	wire_put_u32(out, F_R, g->settings.r);
	wire_put_u32(out, F_W, g->settings.w);
	size_t at = wire_begin_field(out, F_RING);
	ring_encode(g->ring, out);
	wire_end_field(out, at);
	pthread_mutex_unlock(&g->lock);
	return buf_err(out);
}

int
gossip_leave(struct gossip *g)
{
	pthread_mutex_lock(&g->lock);
	/* The data must go somewhere: a node that is the only member up
	 * would hand its partitions over to nobody and never leave. */
	size_t others = 0;
	for (size_t i = 1; i < g->nmembers; i++)
		others += g->members[i].status == MEMBER_UP;
	if (others == 0 && self(g)->status == MEMBER_UP) {
		pthread_mutex_unlock(&g->lock);
		return -EINVAL;
	}
	if (self(g)->status == MEMBER_UP) {
		self(g)->status = MEMBER_LEAVING;
		bump_locked(g);
		LOG_INFO("leaving: handing partitions over");
	}
	pthread_mutex_unlock(&g->lock);
	return 0;
}

int
gossip_remove(struct gossip *g, const char *name)
{
	char addr[RING_ADDR_MAX + 1];
	pthread_mutex_lock(&g->lock);
	struct member *m = find_member(g, name);
	int rc = !m ? -ENOENT : m == self(g) ? -EINVAL : 0;
	if (rc == 0)
		snprintf(addr, sizeof(addr), "%s", m->addr);
	pthread_mutex_unlock(&g->lock);
	if (rc)
		return rc;
	/* Only a member that is down: a live one hands its data over by
	 * leaving.  (Unlocked: the check may block on the pool.) */
	if (rpc_peer_usable(g->node->pool, addr))
		return -EBUSY;
	pthread_mutex_lock(&g->lock);
	if ((m = find_member(g, name)) != NULL && m->status != MEMBER_LEFT) {
		m->status = MEMBER_LEFT;
		m->version++;
		bump_locked(g);
		LOG_INFO("member %s removed by an operator", name);
	}
	pthread_mutex_unlock(&g->lock);
	return 0;
}

bool
gossip_removed(struct gossip *g)
{
	pthread_mutex_lock(&g->lock);
	bool removed = g->removed;
	pthread_mutex_unlock(&g->lock);
	return removed;
}

bool
gossip_is_left(struct gossip *g, const char *name)
{
	pthread_mutex_lock(&g->lock);
	const struct member *m = find_member(g, name);
	bool left = m && m->status == MEMBER_LEFT;
	pthread_mutex_unlock(&g->lock);
	return left;
}

bool
gossip_left(struct gossip *g)
{
	pthread_mutex_lock(&g->lock);
	bool left = g->left;
	pthread_mutex_unlock(&g->lock);
	return left;
}

struct ring *
gossip_transfer_target(struct gossip *g)
{
	struct ring *r = NULL;
	pthread_mutex_lock(&g->lock);
	if (g->ring && ring_has_next(g->ring) &&
	    self(g)->ready < ring_epoch(g->ring) &&
	    all_at_locked(g, ring_epoch(g->ring), false))
		ring_dup(g->ring, &r);
	pthread_mutex_unlock(&g->lock);
	return r;
}

int
gossip_member_addr(struct gossip *g, const char *name, char *out, size_t cap)
{
	int rc = -ENOENT;
	pthread_mutex_lock(&g->lock);
	const struct member *m = find_member(g, name);
	if (m) {
		snprintf(out, cap, "%s", m->addr);
		rc = 0;
	}
	pthread_mutex_unlock(&g->lock);
	return rc;
}

size_t
gossip_peers(struct gossip *g, char (*addrs)[RING_ADDR_MAX + 1], size_t max)
{
	pthread_mutex_lock(&g->lock);
	size_t k = peers_locked(g, addrs, max);
	pthread_mutex_unlock(&g->lock);
	return k;
}

struct ring *
gossip_ring_copy(struct gossip *g)
{
	struct ring *r = NULL;
	pthread_mutex_lock(&g->lock);
	if (g->ring)
		ring_dup(g->ring, &r);
	pthread_mutex_unlock(&g->lock);
	return r;
}

void
gossip_set_ready(struct gossip *g, uint64_t epoch)
{
	pthread_mutex_lock(&g->lock);
	if (self(g)->ready < epoch) {
		self(g)->ready = epoch;
		bump_locked(g);
	}
	pthread_mutex_unlock(&g->lock);
}

struct cluster_settings
gossip_settings(struct gossip *g)
{
	pthread_mutex_lock(&g->lock);
	struct cluster_settings s = g->settings;
	pthread_mutex_unlock(&g->lock);
	return s;
}

const char *
gossip_status_name(enum member_status s)
{
	return s == MEMBER_UP ? "up" : s == MEMBER_LEAVING ? "leaving" : "left";
}

int
gossip_view(struct gossip *g, struct gossip_view **out)
{
	struct gossip_view *v = mem_calloc(1, sizeof(*v));
	if (!v)
		return -ENOMEM;
	pthread_mutex_lock(&g->lock);
	uint32_t cnt = g->ring ? ring_member_count(g->ring) : 0;
	uint32_t *owned = mem_calloc(cnt ? cnt : 1, sizeof(*owned));
	if (!owned) {
		pthread_mutex_unlock(&g->lock);
		mem_free(v);
		return -ENOMEM;
	}
	if (g->ring) {
		ring_owned_counts(g->ring, RING_CUR, owned);
		v->ring_epoch = ring_epoch(g->ring);
		v->partitions = ring_q(g->ring);
		v->transfer_pending = ring_has_next(g->ring);
	}
	v->settings = g->settings;
	v->merged_age_ms = g->merged_ms
	    ? (long long)mono_ms() - g->merged_ms : -1;
	v->nmembers = g->nmembers;
	for (size_t i = 0; i < g->nmembers; i++) {
		const struct member *m = &g->members[i];
		struct gossip_member *o = &v->members[i];
		int idx = g->ring ? ring_member_find(g->ring, m->name) : -1;
		snprintf(o->name, sizeof(o->name), "%s", m->name);
		snprintf(o->addr, sizeof(o->addr), "%s", m->addr);
		o->status = (enum member_status)m->status;
		o->partitions = idx >= 0 ? owned[idx] : 0;
		o->ring_seen = m->ring_seen;
		o->ready = m->ready;
	}
	pthread_mutex_unlock(&g->lock);
	mem_free(owned);
	/* Asked outside the gossip lock: the pool has locks of its own. */
	for (size_t i = 0; i < v->nmembers; i++)
		v->members[i].reachable = i == 0 ||
		    rpc_peer_usable(g->node->pool, v->members[i].addr);
	*out = v;
	return 0;
}

void
gossip_status_json(struct gossip *g, struct buf *out)
{
	struct gossip_view *v;
	if (gossip_view(g, &v) != 0) {
		if (!out->err)
			out->err = -ENOMEM;
		return;
	}
	buf_printf(out,
	    "{\"ring_epoch\": %llu, \"partitions\": %u, \"transfer_pending\": "
	    "%s, \"n\": %u, \"r\": %u, \"w\": %u, \"members\": [",
	    (unsigned long long)v->ring_epoch, v->partitions,
	    v->transfer_pending ? "true" : "false", v->settings.n,
	    v->settings.r, v->settings.w);
	for (size_t i = 0; i < v->nmembers; i++) {
		const struct gossip_member *m = &v->members[i];
		/* Names and addresses are any bytes but NUL: escaped. */
		buf_put(out, i ? ", {\"name\": " : "{\"name\": ", i ? 11 : 9);
		json_put_str(out, m->name, strlen(m->name));
		buf_put(out, ", \"addr\": ", 10);
		json_put_str(out, m->addr, strlen(m->addr));
		buf_printf(out,
		    ", \"state\": \"%s\", \"reachable\": %s, \"partitions\": "
		    "%u, \"ring_epoch\": %llu, \"ready_epoch\": %llu}",
		    gossip_status_name(m->status),
		    m->reachable ? "true" : "false", m->partitions,
		    (unsigned long long)m->ring_seen,
		    (unsigned long long)m->ready);
	}
	buf_put(out, "]}", 2);
	mem_free(v);
}

/* ---- life cycle ---------------------------------------------------- */

/* Add the stored ring's other members' addresses to the seeds. */
static int
seeds_from_ring(struct gossip *g)
{
	uint32_t cnt = ring_member_count(g->ring);
	char **s = mem_realloc(g->seeds, (g->nseeds + cnt) * sizeof(*s));
	if (!s)
		return -ENOMEM;
	g->seeds = s;
	for (uint32_t i = 0; i < cnt; i++) {
		const char *a = ring_member_addr(g->ring, i);
		if (strcmp(ring_member_name(g->ring, i), self(g)->name) == 0 ||
		    !a[0])
			continue;
		if (!(g->seeds[g->nseeds] = mem_dup(a, strlen(a) + 1)))
			return -ENOMEM;
		g->nseeds++;
	}
	return 0;
}

int
gossip_start(struct node *n, const struct gossip_opts *o, struct gossip **out)
{
	int rc;
	struct gossip *g = mem_calloc(1, sizeof(*g));
	if (!g)
		return -ENOMEM;
	g->node = n;
	g->interval_ms = o->interval_ms > 0 ? o->interval_ms : 1000;
	pthread_mutex_init(&g->lock, NULL);

	struct member *me = &g->members[0];
	g->nmembers = 1;
	snprintf(me->name, sizeof(me->name), "%s", n->name);
	snprintf(me->addr, sizeof(me->addr), "%s", n->addr);
	me->incarnation = node_now_ms();
	me->status = MEMBER_UP;

	if (o->nseeds) {
		g->seeds = mem_calloc(o->nseeds, sizeof(*g->seeds));
		if (!g->seeds) {
			rc = -ENOMEM;
			goto fail;
		}
		g->nseeds = o->nseeds;
		for (size_t i = 0; i < o->nseeds; i++)
			if (!(g->seeds[i] = mem_dup(o->seeds[i],
			          strlen(o->seeds[i]) + 1))) {
				rc = -ENOMEM;
				goto fail;
			}
	}

	if ((rc = load_ring(g)) != 0) {
		LOG_ERROR("stored ring: %s", dyn_strerror(rc));
		goto fail;
	}
	if (g->ring) {
		/* Restarted: the ring's other members are whom to gossip with
		 * first, --seed or not. */
		if ((rc = seeds_from_ring(g)) != 0)
			goto fail;
		me->ring_seen = ring_epoch(g->ring);
		/* A restarted member has finished its transfers of old. */
		me->ready = ring_has_next(g->ring) ? 0 : me->ring_seen;
	} else if (o->nseeds == 0) {
		/* No ring and nobody to ask: this node founds the cluster. */
		if ((rc = ring_new(o->q, me->name, me->addr, &g->ring)) != 0)
			goto fail;
		g->settings = o->settings;
		g->have_settings = true;
		me->ring_seen = me->ready = ring_epoch(g->ring);
		ring_dirty_locked(g);
		persist_ring(g);
		LOG_INFO("new cluster: %u partitions, N=%u R=%u W=%u",
		    ring_q(g->ring), g->settings.n, g->settings.r,
		    g->settings.w);
	}
	if ((rc = bgthread_start(&g->thread, 0, gossip_round, g)) != 0)
		goto fail;
	*out = g;
	return 0;
fail:
	gossip_stop(g);
	return rc;
}

void
gossip_stop(struct gossip *g)
{
	if (!g)
		return;
	bgthread_stop(&g->thread);
	persist_ring(g);
	for (size_t i = 0; i < g->nseeds; i++)
		mem_free(g->seeds[i]);
	mem_free(g->seeds);
	ring_free(g->ring);
	pthread_mutex_destroy(&g->lock);
	mem_free(g);
}
