/*
 * gc — one round (gc.h says what and why):
 *
 *   GC thread of this node                  every other member (a worker)
 *   ----------------------                  -----------------------------
 *   ring stable? start, seed, members
 *   own filter: store_ref_scan
 *   GC_FILTER_REQ (seed) to all ---------->  store_ref_scan of a snapshot
 *                                            taken now, filter under seed
 *   all answered, same epoch, same  <------  GC_FILTER_RESP
 *   grace, no bad header?
 *   members, ring, time still fine?
 *   sweep: store_blob_scan (blob records and their marks)
 *     -> store_gc_apply: mark / unmark / delete if the mark is unchanged
 */
#include "gc.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/rand.h>

#include "bgthread.h"
#include "blob.h"
#include "bloom.h"
#include "err.h"
#include "gossip.h"
#include "log.h"
#include "mem.h"
#include "mono.h"
#include "node_i.h"
#include "ring.h"
#include "rpc.h"
#include "store.h"

/* Names collected before the filter is sized (32 MiB of them); past this
 * many the filter is made at its cap and the rest go straight in. */
#define GC_COLLECT_MAX (1u << 20)
/* F_GRACE of a node whose GC is off. */
#define GC_GRACE_OFF UINT64_MAX

struct gc {
	struct node *node;
	int interval_ms;
	uint64_t grace_ms;
	pthread_mutex_t lock; /* st */
	struct gc_stats st;
	bool failing; /* the last round was given up (GC thread only) */
	struct bgthread thread;
};

static uint64_t
grace_wire(int64_t grace_ms)
{
	return grace_ms < 0 ? GC_GRACE_OFF : (uint64_t)grace_ms;
}

/* This node's ring epoch, UINT64_MAX while a plan is pending. */
static int
ring_state(struct node *n, uint64_t *epoch)
{
	struct ring *r = gossip_ring_copy(n->gossip);
	if (!r)
		return DYN_EUNREACH;
	*epoch = ring_has_next(r) ? UINT64_MAX : ring_epoch(r);
	ring_free(r);
	return 0;
}

/* ---- filters ------------------------------------------------------- */

/* A filter being built from one store snapshot. */
struct refs {
	uint64_t seed;
	struct bloom *f;  /* NULL while names are collected */
	struct buf names; /* BLOB_NAME_LEN bytes each, until f is made */
	uint64_t bad;     /* values whose header is malformed */
	struct gc *g;     /* this node's GC (to notice a stop), or NULL */
	uint64_t seen;
};

/* Make the filter for n names and move the collected ones in. */
static int
refs_size(struct refs *rf, uint64_t n)
{
	int rc = bloom_new(n, rf->seed, &rf->f);
	if (rc)
		return rc;
	for (size_t i = 0; i + BLOB_NAME_LEN <= rf->names.len;
	     i += BLOB_NAME_LEN)
		bloom_add(rf->f, rf->names.data + i);
	buf_fini(&rf->names);
	buf_init(&rf->names);
	return 0;
}

static int
refs_add(struct refs *rf, const uint8_t *name)
{
	if (rf->f) {
		bloom_add(rf->f, name);
		return 0;
	}
	buf_put(&rf->names, name, BLOB_NAME_LEN);
	if (buf_err(&rf->names))
		return buf_err(&rf->names);
	if (rf->names.len / BLOB_NAME_LEN >= GC_COLLECT_MAX)
		return refs_size(rf, UINT64_MAX);
	return 0;
}

/* The key, printable, for a log line (keys are any bytes). */
static void
key_text(const uint8_t *key, size_t klen, char *out, size_t cap)
{
	size_t n = klen < cap - 1 ? klen : cap - 1;
	for (size_t i = 0; i < n; i++)
		out[i] = key[i] >= 0x20 && key[i] < 0x7f ? (char)key[i] : '?';
	out[n] = '\0';
}

static int
ref_one(const uint8_t *key, size_t klen, const struct vset *set, bool hint,
    void *arg)
{
	struct refs *rf = arg;
	if (rf->g && (++rf->seen & 1023) == 0 &&
	    bgthread_stopping(&rf->g->thread))
		return DYN_ECLOSED;
	for (uint32_t i = 0; i < set->n; i++) {
		const struct version *v = &set->v[i];
		const uint8_t *refs;
		uint32_t nr;
		size_t hdr;
		if (v->tombstone || v->len == 0)
			continue;
		if (blob_refs_parse(v->value, v->len, &refs, &nr, &hdr) != 0) {
			/* Skipping it could drop a live reference: the round
			 * keeps every blob instead (the caller aborts). */
			char kt[64];
			key_text(key, klen, kt, sizeof(kt));
			LOG_WARN("gc: malformed reference header in the %s of "
			         "'%s' (a %zu-byte key): no blob is deleted this "
			         "round",
			    hint ? "hint" : "record", kt, klen);
			rf->bad++;
			return 1; /* stops the scan: the filter is moot */
		}
		for (uint32_t k = 0; k < nr; k++) {
			/* A reference is kind || name; the filter holds names,
			 * so 'B' x and 'R' x keep each other (only safer). */
			int rc = refs_add(rf, refs + (size_t)k * BLOB_REF_LEN + 1);
			if (rc)
				return rc;
		}
	}
	return 0;
}

/*
 * This node's filter under seed, from one snapshot of objects and hints
 * taken now.  *bad gets the number of malformed headers and unreadable
 * records (the filter is incomplete then).  *out is the caller's.
 */
static int
build_filter(struct node *n, uint64_t seed, struct gc *g, struct bloom **out,
    uint64_t *bad)
{
	struct refs rf = {.seed = seed, .g = g};
	uint64_t unreadable = 0;
	buf_init(&rf.names);
	int rc = store_ref_scan(n->store, ref_one, &rf, &unreadable);
	if (rc > 0)
		rc = 0; /* stopped at a bad header */
	if (unreadable)
		LOG_WARN("gc: %llu records could not be read: no blob is "
		         "deleted this round",
		    (unsigned long long)unreadable);
	if (rc == 0 && !rf.f)
		rc = refs_size(&rf, rf.names.len / BLOB_NAME_LEN);
	buf_fini(&rf.names);
	if (rc) {
		bloom_free(rf.f);
		return rc;
	}
	*out = rf.f;
	*bad = rf.bad + unreadable;
	return 0;
}

int
gc_handle_filter(struct node *n, const struct wire_msg *m, struct buf *out)
{
	uint64_t seed, epoch, bad = 0;
	struct bloom *f = NULL;
	int rc = wire_get_u64(m, F_SEED, &seed);
	if (rc)
		return DYN_EBADMSG;
	if ((rc = ring_state(n, &epoch)) != 0)
		return rc;
	if ((rc = build_filter(n, seed, NULL, &f, &bad)) != 0)
		return rc;
	wire_begin(out, WIRE_GC_FILTER_RESP, 0, m->reqid);
	wire_put_u32(out, F_STATUS, 0);
	wire_put_u64(out, F_EPOCH, epoch);
	wire_put_u64(out, F_GRACE, grace_wire(n->cfg.gc_grace_ms));
	wire_put_u64(out, F_BADREFS, bad);
	if (bad == 0) {
		size_t at = wire_begin_field(out, F_BLOOM);
		bloom_encode(f, out);
		wire_end_field(out, at);
	}
	bloom_free(f);
	return buf_err(out);
}

/* The filters of one round: those of the same geometry folded into one. */
struct filters {
	struct bloom *f[GOSSIP_MEMBERS_MAX + 1];
	size_t n;
};

/* Take f into fs (ownership passes). */
static void
filters_add(struct filters *fs, struct bloom *f)
{
	for (size_t i = 0; i < fs->n; i++) {
		if (bloom_union(fs->f[i], f) == 0) {
			bloom_free(f);
			return;
		}
	}
	fs->f[fs->n++] = f;
}

static bool
filters_have(const struct filters *fs, const uint8_t *name)
{
	for (size_t i = 0; i < fs->n; i++)
		if (bloom_has(fs->f[i], name))
			return true;
	return false;
}

static void
filters_fini(struct filters *fs)
{
	for (size_t i = 0; i < fs->n; i++)
		bloom_free(fs->f[i]);
	fs->n = 0;
}

/* ---- the round ------------------------------------------------------- */

/* The other members that have not left, sorted (to compare two reads). */
struct members {
	char (*addr)[RING_ADDR_MAX + 1];
	size_t n;
};

static int
cmp_addr(const void *a, const void *b)
{
	return strcmp(a, b);
}

static int
members_read(struct node *n, struct members *ms)
{
	ms->addr = mem_calloc(GOSSIP_MEMBERS_MAX, sizeof(*ms->addr));
	if (!ms->addr)
		return -ENOMEM;
	ms->n = gossip_peers(n->gossip, ms->addr, GOSSIP_MEMBERS_MAX);
	qsort(ms->addr, ms->n, sizeof(*ms->addr), cmp_addr);
	return 0;
}

static bool
members_equal(const struct members *a, const struct members *b)
{
	if (a->n != b->n)
		return false;
	for (size_t i = 0; i < a->n; i++)
		if (strcmp(a->addr[i], b->addr[i]) != 0)
			return false;
	return true;
}

/* Ask every member of ms for its filter under seed; each goes to fs.
 * false with the reason in why when one fails. */
static bool
ask_members(struct gc *g, const struct members *ms, uint64_t seed,
    uint64_t epoch, int timeout_ms, struct filters *fs, char *why,
    size_t cap)
{
	struct node *n = g->node;
	const char **addrs = mem_calloc(ms->n ? ms->n : 1, sizeof(*addrs));
	struct rpc_reply *rr = mem_calloc(ms->n ? ms->n : 1, sizeof(*rr));
	struct buf b;
	bool ok = addrs && rr;
	buf_init(&b);
	if (!ok)
		snprintf(why, cap, "out of memory");
	for (size_t i = 0; ok && i < ms->n; i++)
		addrs[i] = ms->addr[i];
	node_req_begin(n, &b, WIRE_GC_FILTER_REQ);
	wire_put_u64(&b, F_SEED, seed);
	if (ok && wire_seal(&b, &n->cfg.keys) != 0) {
		snprintf(why, cap, "out of memory");
		ok = false;
	}
	if (ok)
		rpc_call_many(n->pool, addrs, ms->n, &b, ms->n, timeout_ms, 0,
		    rr);
	for (size_t i = 0; ok && i < ms->n; i++) {
		uint64_t e = 0, gr = 0, bad = 1;
		const struct wire_field *bf = NULL;
		struct bloom *f = NULL;
		struct rd rd;
		if (rr[i].rc != 0) {
			snprintf(why, cap, "%s did not answer: %s", addrs[i],
			    dyn_strerror(rr[i].rc));
			ok = false;
		} else if (wire_get_u64(&rr[i].m, F_EPOCH, &e) != 0 ||
		    wire_get_u64(&rr[i].m, F_GRACE, &gr) != 0 ||
		    wire_get_u64(&rr[i].m, F_BADREFS, &bad) != 0) {
			snprintf(why, cap, "%s: bad answer", addrs[i]);
			ok = false;
		} else if (e != epoch) {
			snprintf(why, cap, "%s holds another ring", addrs[i]);
			ok = false;
		} else if (gr != g->grace_ms) {
			snprintf(why, cap, "%s runs another grace period",
			    addrs[i]);
			ok = false;
		} else if (bad != 0) {
			snprintf(why, cap,
			    "%s found a malformed reference header", addrs[i]);
			ok = false;
		} else if (!(bf = wire_find(&rr[i].m, F_BLOOM))) {
			snprintf(why, cap, "%s: no filter", addrs[i]);
			ok = false;
		} else {
			rd_init(&rd, bf->data, bf->len);
			int rc = bloom_decode(&rd, &f);
			if (rc == 0 &&
			    (rd_left(&rd) != 0 || bloom_seed(f) != seed))
				rc = DYN_EBADMSG;
			if (rc == 0) {
				filters_add(fs, f);
			} else {
				bloom_free(f);
				snprintf(why, cap, "%s: bad filter: %s",
				    addrs[i], dyn_strerror(rc));
				ok = false;
			}
		}
	}
	for (size_t i = 0; rr && i < ms->n; i++)
		rpc_reply_fini(&rr[i]);
	buf_fini(&b);
	mem_free(addrs);
	mem_free(rr);
	return ok;
}

/*
 * The sweep of this node's blob records against the round's filters, in
 * chunks of GC_SWEEP_MAX operations: the scan stops when the chunk is full,
 * the chunk is applied, and the scan resumes after the last blob seen.
 * Marks and deletes stop at GC_SWEEP_MAX a round (the rate limit; the rest
 * waits), unmarks do not: a blob that a round found referenced always
 * loses its mark in that round.
 */
struct sweep {
	const struct filters *fs;
	uint64_t start, now, grace;
	struct store_gc_op ops[GC_SWEEP_MAX];
	uint8_t keys[GC_SWEEP_MAX][BLOB_KEY_LEN];
	uint64_t bytes[GC_SWEEP_MAX];
	size_t nops;
	size_t budget; /* marks and deletes left this round */
	uint8_t last[BLOB_KEY_LEN]; /* where a full chunk stopped the scan */
	uint64_t blobs, referenced, condemned, condemned_bytes;
	uint64_t gone, gone_bytes, marked;
};

static int
sweep_one(const uint8_t *key, size_t klen, uint64_t bytes,
    const struct store_mark *mark, void *arg)
{
	struct sweep *sw = arg;
	enum store_gc_kind kind;
	uint64_t at = 0;
	(void)klen;
	sw->blobs++;
	if (filters_have(sw->fs, key + 1)) {
		sw->referenced++;
		if (!mark)
			return 0;
		kind = STORE_GC_UNMARK;
	} else {
		sw->condemned++;
		sw->condemned_bytes += bytes;
		if (!mark) {
			kind = STORE_GC_MARK;
			at = sw->now;
		} else if (sw->start >= mark->condemned_at &&
		    sw->start - mark->condemned_at >= sw->grace) {
			kind = STORE_GC_DELETE;
			at = mark->condemned_at;
		} else {
			return 0; /* condemned, not due yet */
		}
	}
	if (kind != STORE_GC_UNMARK) {
		if (sw->budget == 0)
			return 0; /* the rate limit: it waits a round */
		sw->budget--;
	}
	memcpy(sw->keys[sw->nops], key, BLOB_KEY_LEN);
	sw->ops[sw->nops] = (struct store_gc_op){kind, sw->keys[sw->nops],
	    BLOB_KEY_LEN, at, 0};
	sw->bytes[sw->nops++] = bytes;
	if (sw->nops < GC_SWEEP_MAX)
		return 0;
	memcpy(sw->last, key, BLOB_KEY_LEN);
	return 1; /* a full chunk: apply it, then go on after this blob */
}

/* Apply the chunk in sw->ops and count what it did. */
static int
sweep_apply(struct gc *g, struct sweep *sw)
{
	int rc = store_gc_apply(g->node->store, sw->ops, sw->nops);
	for (size_t i = 0; rc == 0 && i < sw->nops; i++) {
		struct store_gc_op *op = &sw->ops[i];
		if (op->rc < 0) {
			LOG_WARN("gc: %s", dyn_strerror(op->rc));
		} else if (op->kind == STORE_GC_DELETE && op->rc == 0) {
			sw->gone++;
			sw->gone_bytes += sw->bytes[i];
			sw->condemned--;
			sw->condemned_bytes -= sw->bytes[i];
		} else if (op->kind == STORE_GC_MARK && op->rc == STORE_SKIP) {
			sw->condemned--; /* deleted meanwhile (a stray sweep) */
			sw->condemned_bytes -= sw->bytes[i];
		} else if (op->kind == STORE_GC_MARK && op->rc == 0) {
			sw->marked++;
		}
	}
	sw->nops = 0;
	return rc;
}

static int
sweep(struct gc *g, const struct filters *fs, uint64_t start)
{
	struct node *n = g->node;
	struct sweep *sw = mem_calloc(1, sizeof(*sw));
	if (!sw)
		return -ENOMEM;
	sw->fs = fs;
	sw->start = start;
	sw->now = node_now_ms();
	sw->grace = g->grace_ms;
	sw->budget = GC_SWEEP_MAX;
	int rc;
	bool resume = false;
	do {
		rc = store_blob_scan(n->store, resume ? sw->last : NULL,
		    sweep_one, sw);
		resume = rc == 1;
		if (rc >= 0 && sw->nops > 0)
			rc = sweep_apply(g, sw);
		if (rc == 0 && resume && bgthread_stopping(&g->thread))
			rc = DYN_ECLOSED;
	} while (rc == 0 && resume);
	if (rc == 0) {
		pthread_mutex_lock(&g->lock);
		g->st.rounds++;
		g->st.blobs = sw->blobs;
		g->st.referenced = sw->referenced;
		g->st.condemned = sw->condemned;
		g->st.condemned_bytes = sw->condemned_bytes;
		g->st.deleted += sw->gone;
		g->st.deleted_bytes += sw->gone_bytes;
		pthread_mutex_unlock(&g->lock);
		if (sw->gone > 0)
			LOG_INFO("gc: deleted %llu blobs (%llu bytes); %llu "
			         "condemned, %llu referenced",
			    (unsigned long long)sw->gone,
			    (unsigned long long)sw->gone_bytes,
			    (unsigned long long)sw->condemned,
			    (unsigned long long)sw->referenced);
		LOG_DEBUG("gc: %llu blobs, %llu referenced, %llu newly "
		          "condemned, %llu deleted",
		    (unsigned long long)sw->blobs,
		    (unsigned long long)sw->referenced,
		    (unsigned long long)sw->marked,
		    (unsigned long long)sw->gone);
	}
	mem_free(sw);
	return rc;
}

/*
 * One round; false, with the reason in why, when it was given up before
 * the sweep (nothing was marked or deleted).
 */
static bool
round_run(struct gc *g, char *why, size_t cap)
{
	struct node *n = g->node;
	struct members ms = {0}, ms2 = {0};
	struct filters *fs = mem_calloc(1, sizeof(*fs));
	struct bloom *own = NULL;
	uint64_t epoch, epoch2, seed, bad = 0, start, t0, spent;
	uint64_t budget = g->grace_ms / 4;
	bool ok = false;
	int rc, timeout;

	if (!fs) {
		snprintf(why, cap, "out of memory");
		return false;
	}
	if (ring_state(n, &epoch) != 0) {
		snprintf(why, cap, "no ring yet");
		goto out;
	}
	if (epoch == UINT64_MAX) {
		snprintf(why, cap, "a ring change is pending");
		goto out;
	}
	start = node_now_ms();
	t0 = mono_ms();
	if (RAND_bytes((unsigned char *)&seed, sizeof(seed)) != 1 ||
	    members_read(n, &ms) != 0) {
		snprintf(why, cap, "no seed or no memory");
		goto out;
	}
	for (size_t i = 0; i < ms.n; i++) {
		if (!rpc_peer_usable(n->pool, ms.addr[i])) {
			snprintf(why, cap, "%s is unreachable", ms.addr[i]);
			goto out;
		}
	}

	if ((rc = build_filter(n, seed, g, &own, &bad)) != 0) {
		snprintf(why, cap, "own filter: %s", dyn_strerror(rc));
		goto out;
	}
	filters_add(fs, own);
	if (bad) {
		snprintf(why, cap, "a malformed reference header here");
		goto out;
	}
	if ((spent = mono_ms() - t0) >= budget) {
		snprintf(why, cap, "took over grace/4");
		goto out;
	}
	int bulk = node_bulk_timeout_ms(g->node);
	timeout = budget - spent > (uint64_t)bulk ? bulk : (int)(budget - spent);
	if (bgthread_stopping(&g->thread)) {
		snprintf(why, cap, "stopping");
		goto out;
	}
	if (ms.n > 0 &&
	    !ask_members(g, &ms, seed, epoch, timeout, fs, why, cap))
		goto out;

	/* The world must not have moved under the round. */
	if (ring_state(n, &epoch2) != 0 || epoch2 != epoch) {
		snprintf(why, cap, "the ring changed");
		goto out;
	}
	if (members_read(n, &ms2) != 0 || !members_equal(&ms, &ms2)) {
		snprintf(why, cap, "the members changed");
		goto out;
	}
	if (mono_ms() - t0 > budget) {
		snprintf(why, cap, "took over grace/4");
		goto out;
	}
	if (bgthread_stopping(&g->thread)) {
		snprintf(why, cap, "stopping");
		goto out;
	}
	if ((rc = sweep(g, fs, start)) != 0) {
		snprintf(why, cap, "sweep: %s", dyn_strerror(rc));
		goto out;
	}
	ok = true;
out:
	filters_fini(fs);
	mem_free(fs);
	mem_free(ms.addr);
	mem_free(ms2.addr);
	return ok;
}

static void
round_once(struct gc *g)
{
	char why[sizeof(g->st.last_abort)] = "";
	bool ok = round_run(g, why, sizeof(why));
	pthread_mutex_lock(&g->lock);
	bool again = !ok && g->failing && strcmp(why, g->st.last_abort) == 0;
	g->failing = !ok;
	if (!ok) {
		g->st.aborted++;
		memcpy(g->st.last_abort, why, sizeof(why));
	}
	pthread_mutex_unlock(&g->lock);
	/* A member down for an hour would log every round: once is enough. */
	if (!ok && !again)
		LOG_INFO("gc: round given up: %s", why);
}

/* A round every interval, the first an interval after the start. */
static int64_t
gc_round(void *arg)
{
	struct gc *g = arg;
	round_once(g);
	return g->interval_ms;
}

int
gc_start(struct node *n, int interval_ms, int64_t grace_ms, struct gc **out)
{
	*out = NULL;
	if (grace_ms < 0)
		return 0;
	struct gc *g = mem_calloc(1, sizeof(*g));
	if (!g)
		return -ENOMEM;
	g->node = n;
	g->interval_ms = interval_ms > 0 ? interval_ms : 60000;
	g->grace_ms = (uint64_t)grace_ms;
	pthread_mutex_init(&g->lock, NULL);
	int rc = bgthread_start(&g->thread, g->interval_ms, gc_round, g);
	if (rc) {
		gc_stop(g);
		return rc;
	}
	*out = g;
	return 0;
}

void
gc_stop(struct gc *g)
{
	if (!g)
		return;
	bgthread_stop(&g->thread);
	pthread_mutex_destroy(&g->lock);
	mem_free(g);
}

void
gc_stats(struct gc *g, struct gc_stats *out)
{
	memset(out, 0, sizeof(*out));
	if (!g)
		return;
	pthread_mutex_lock(&g->lock);
	*out = g->st;
	pthread_mutex_unlock(&g->lock);
}
