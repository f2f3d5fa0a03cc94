#include "metrics.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "ae.h"
#include "err.h"
#include "gc.h"
#include "gossip.h"
#include "handoff.h"
#include "mem.h"
#include "mono.h"
#include "node_i.h"
#include "server.h"
#include "store.h"
#include "wire.h"
#include "xfer.h"

/* Request latency bounds, in microseconds: 0.25 ms to 10 s. */
static const uint64_t latency_bounds[] = {
	250, 500, 1000, 2500, 5000, 10000, 25000, 50000, 100000, 250000,
	500000, 1000000, 2500000, 5000000, 10000000,
};

void
metrics_init(struct metrics *m)
{
	for (int op = 0; op < METRICS_OPS; op++)
		for (int o = 0; o < METRICS_OUTCOMES; o++)
			hist_init(&m->latency[op][o], latency_bounds,
			    sizeof(latency_bounds) / sizeof(latency_bounds[0]));
	for (int e = 0; e < METRICS_EVENTS; e++)
		atomic_init(&m->events[e], 0);
}

enum metrics_op
metrics_op_of(uint8_t type, uint32_t flags)
{
	switch (type) {
	case WIRE_GET_REQ:
		return flags & WIRE_F_LOCAL ? METRICS_OP_READ : METRICS_OP_GET;
	case WIRE_PUT_REQ: return METRICS_OP_PUT;
	case WIRE_REPLICATE_REQ: return METRICS_OP_REPLICATE;
	case WIRE_GOSSIP_REQ: return METRICS_OP_GOSSIP;
	case WIRE_PING_REQ: return METRICS_OP_PING;
	case WIRE_STATUS_REQ: return METRICS_OP_STATUS;
	case WIRE_RING_REQ: return METRICS_OP_RING;
	case WIRE_XFER_REQ: return METRICS_OP_TRANSFER;
	case WIRE_AE_REQ:
	case WIRE_MERGE_REQ: return METRICS_OP_ANTI_ENTROPY;
	case WIRE_PURGE_CHECK_REQ:
	case WIRE_PURGE_REQ: return METRICS_OP_PURGE;
	case WIRE_GC_FILTER_REQ: return METRICS_OP_GC_FILTER;
	case WIRE_RANGE_REQ: return METRICS_OP_RANGE;
	case WIRE_FAULT_REQ:
	case WIRE_LEAVE_REQ:
	case WIRE_REMOVE_REQ:
	case WIRE_COMPACT_REQ: return METRICS_OP_ADMIN;
	default: return METRICS_OP_OTHER;
	}
}

enum metrics_outcome
metrics_outcome_of(int rc)
{
	switch (rc) {
	case 0: return METRICS_OK;
	case SERVER_DROP: return METRICS_DROPPED;
	case DYN_EBADMSG:
	case DYN_EAUTH:
	case DYN_ECONTEXT:
	case DYN_ETOOBIG:
	case DYN_EPROTO:
	case -EINVAL: return METRICS_BAD_REQUEST;
	case -ENOENT: return METRICS_NOT_FOUND;
	case DYN_EQUORUM: return METRICS_QUORUM;
	case DYN_ETIMEDOUT: return METRICS_TIMEOUT;
	case DYN_EUNREACH: return METRICS_UNREACHABLE;
	case -ENOSPC: return METRICS_NO_SPACE;
	case DYN_ECLOSED: return METRICS_CLOSED;
	default: return METRICS_ERROR;
	}
}

const char *
metrics_op_name(enum metrics_op op)
{
	static const char *const names[METRICS_OPS] = {
		[METRICS_OP_GET] = "get",
		[METRICS_OP_READ] = "read",
		[METRICS_OP_PUT] = "put",
		[METRICS_OP_REPLICATE] = "replicate",
		[METRICS_OP_GOSSIP] = "gossip",
		[METRICS_OP_PING] = "ping",
		[METRICS_OP_STATUS] = "status",
		[METRICS_OP_RING] = "ring",
		[METRICS_OP_TRANSFER] = "transfer",
		[METRICS_OP_ANTI_ENTROPY] = "anti_entropy",
		[METRICS_OP_PURGE] = "purge",
		[METRICS_OP_GC_FILTER] = "gc_filter",
		[METRICS_OP_RANGE] = "range",
		[METRICS_OP_ADMIN] = "admin",
		[METRICS_OP_OTHER] = "other",
	};
	return (unsigned)op < METRICS_OPS ? names[op] : "other";
}

const char *
metrics_outcome_name(enum metrics_outcome o)
{
	static const char *const names[METRICS_OUTCOMES] = {
		[METRICS_OK] = "ok",
		[METRICS_BAD_REQUEST] = "bad_request",
		[METRICS_NOT_FOUND] = "not_found",
		[METRICS_QUORUM] = "quorum",
		[METRICS_TIMEOUT] = "timeout",
		[METRICS_UNREACHABLE] = "unreachable",
		[METRICS_NO_SPACE] = "no_space",
		[METRICS_CLOSED] = "closed",
		[METRICS_DROPPED] = "dropped",
		[METRICS_ERROR] = "error",
	};
	return (unsigned)o < METRICS_OUTCOMES ? names[o] : "error";
}

void
metrics_request(struct metrics *m, enum metrics_op op, int rc, uint64_t us)
{
	if ((unsigned)op >= METRICS_OPS)
		op = METRICS_OP_OTHER;
	hist_add(&m->latency[op][metrics_outcome_of(rc)], us);
}

void
metrics_count(struct metrics *m, enum metrics_event e, uint64_t k)
{
	if ((unsigned)e < METRICS_EVENTS && k > 0)
		atomic_fetch_add_explicit(&m->events[e], k,
		    memory_order_relaxed);
}

static uint64_t
event(struct metrics *m, enum metrics_event e)
{
	return atomic_load_explicit(&m->events[e], memory_order_relaxed);
}

/* ---- exposition ------------------------------------------------------ */

static void
family(struct buf *b, const char *name, const char *type, const char *help)
{
	buf_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* A family of one sample without labels. */
static void
one(struct buf *b, const char *name, const char *type, const char *help,
    uint64_t v)
{
	family(b, name, type, help);
	buf_printf(b, "%s %" PRIu64 "\n", name, v);
}

#define COUNTER(b, name, help, v) one(b, name, "counter", help, v)
#define GAUGE(b, name, help, v)   one(b, name, "gauge", help, v)

/*
 * The samples of one histogram series: labels ("" or `a="x",b="y"`), the
 * bounds and sum scaled by unit (1e-6: microseconds to seconds; 1: counts,
 * printed as integers).
 */
static void
hist_series(struct buf *b, const char *name, const char *labels,
    const struct hist_snap *s, double unit)
{
	const char *sep = labels[0] ? "," : "";
	for (uint32_t i = 0; i < s->nbounds; i++)
		buf_printf(b, "%s_bucket{%s%sle=\"%g\"} %" PRIu64 "\n", name,
		    labels, sep, (double)s->bounds[i] * unit, s->cum[i]);
	buf_printf(b, "%s_bucket{%s%sle=\"+Inf\"} %" PRIu64 "\n", name,
	    labels, sep, s->count);
	const char *lb = labels[0] ? "{" : "", *rb = labels[0] ? "}" : "";
	if (unit == 1)
		buf_printf(b, "%s_sum%s%s%s %" PRIu64 "\n", name, lb, labels, rb,
		    s->sum);
	else
		buf_printf(b, "%s_sum%s%s%s %.6f\n", name, lb, labels, rb,
		    (double)s->sum * unit);
	buf_printf(b, "%s_count%s%s%s %" PRIu64 "\n", name, lb, labels, rb,
	    s->count);
}

static void
render_requests(struct metrics *m, struct buf *b)
{
	const char *name = "dynamo_request_duration_seconds";
	family(b, name, "histogram",
	    "Requests served, by operation and outcome, and the time from "
	    "their dispatch to their reply (a forwarded request is counted by "
	    "the node that forwarded it and by the one that served it).");
	for (int op = 0; op < METRICS_OPS; op++) {
		for (int o = 0; o < METRICS_OUTCOMES; o++) {
			struct hist_snap s;
			hist_read(&m->latency[op][o], &s);
			if (s.count == 0)
				continue; /* a series appears once it has one */
			char labels[64];
			snprintf(labels, sizeof(labels),
			    "op=\"%s\",outcome=\"%s\"", metrics_op_name(op),
			    metrics_outcome_name(o));
			hist_series(b, name, labels, &s, 1e-6);
		}
	}
}

static void
render_events(struct metrics *m, struct buf *b)
{
	family(b, "dynamo_quorum_failures_total", "counter",
	    "Gets and puts this node coordinated that fell short of R "
	    "answers or W acks.");
	buf_printf(b, "dynamo_quorum_failures_total{op=\"get\"} %" PRIu64 "\n",
	    event(m, METRICS_QUORUM_FAIL_GET));
	buf_printf(b, "dynamo_quorum_failures_total{op=\"put\"} %" PRIu64 "\n",
	    event(m, METRICS_QUORUM_FAIL_PUT));
	COUNTER(b, "dynamo_standin_writes_total",
	    "Versions of puts coordinated here that a node outside the "
	    "preference list took for a replica that was down, with a hint "
	    "(sloppy quorum).",
	    event(m, METRICS_STANDIN_WRITES));
	COUNTER(b, "dynamo_read_repairs_total",
	    "Replicas that a get coordinated here found behind and brought up "
	    "to date (this node's own copy included).",
	    event(m, METRICS_READ_REPAIRS));
	COUNTER(b, "dynamo_siblings_created_total",
	    "Puts coordinated here that left their key with more than one "
	    "live version.",
	    event(m, METRICS_SIBLINGS));
}

static void
render_server(struct node *n, struct buf *b)
{
	struct server_stats ss;
	server_stats(n->srv, &ss);
	COUNTER(b, "dynamo_messages_rejected_total",
	    "Messages not served: malformed, a bad or missing tag (answered "
	    "with a refusal), another protocol version.",
	    ss.rejected);
	COUNTER(b, "dynamo_auth_failures_total",
	    "Of the rejected messages, those with a bad or missing tag.",
	    ss.auth_failures);
	COUNTER(b, "dynamo_replays_refused_total",
	    "Requests refused as seen before (replayed) or timed outside the "
	    "window.",
	    ss.replays_refused);
	COUNTER(b, "dynamo_role_refused_total",
	    "Requests refused because the role of their key may not ask them.",
	    ss.role_refused);
	COUNTER(b, "dynamo_received_bytes_total",
	    "Bytes of the messages received.", ss.rx_bytes);
	COUNTER(b, "dynamo_sent_bytes_total", "Bytes of the replies sent.",
	    ss.tx_bytes);
	GAUGE(b, "dynamo_connections", "Connections open to the node.",
	    ss.guard.conns);
	COUNTER(b, "dynamo_connections_refused_total",
	    "Connections closed on arrival: over --max-connections.",
	    ss.guard.conns_refused);
	COUNTER(b, "dynamo_connections_idle_closed_total",
	    "Connections closed after --idle-timeout with no complete "
	    "request (idle, or stalled in a message).",
	    ss.guard.idle_closed);
	COUNTER(b, "dynamo_connections_oversize_closed_total",
	    "Connections closed for a message declared over --max-request.",
	    ss.guard.oversize);
}

/* Counters of the hint backlog: held (store), stored (store), delivered
 * (handoff). */
static void
render_store(struct node *n, struct buf *b)
{
	struct store_stats st;
	if (store_stats(n->store, &st) != 0)
		return; /* the families are left out of this scrape */
	GAUGE(b, "dynamo_keys", "Records in this node's store.", st.keys);
	GAUGE(b, "dynamo_hints",
	    "Hinted versions held here for replicas that were down.",
	    st.hints);
	COUNTER(b, "dynamo_hints_stored_total",
	    "Hints written here (as a stand-in, or for a replica a put "
	    "could not reach) that added a version.",
	    st.hints_added);
	COUNTER(b, "dynamo_hints_delivered_total",
	    "Hints delivered to their replica (or, for a removed member, to "
	    "the key's new replicas) and deleted here.",
	    handoff_delivered(n->handoff));
	GAUGE(b, "dynamo_store_file_bytes", "Size of the data file on disk.",
	    st.file_bytes);
	GAUGE(b, "dynamo_store_used_bytes", "Of the data file, pages in use.",
	    st.used_bytes);
	GAUGE(b, "dynamo_store_free_bytes",
	    "Of the data file, free pages: what a compaction gives back.",
	    st.free_bytes);
	GAUGE(b, "dynamo_store_map_bytes", "Size of the LMDB map.",
	    st.map_bytes);
	COUNTER(b, "dynamo_store_updates_total",
	    "Updates written (not skipped) by the store's writer.",
	    st.updates);
	family(b, "dynamo_store_commit_batch_size", "histogram",
	    "Requests applied per committed write transaction (group "
	    "commit); the count is the commits.");
	hist_series(b, "dynamo_store_commit_batch_size", "", &st.batches, 1);
	family(b, "dynamo_store_commit_duration_seconds", "histogram",
	    "Time of each committed write transaction, from its batch's "
	    "first begin to the durable commit (the fsync included).");
	hist_series(b, "dynamo_store_commit_duration_seconds", "",
	    &st.commit_us, 1e-6);
	COUNTER(b, "dynamo_compactions_total", "Compactions done.",
	    st.compactions);
	COUNTER(b, "dynamo_compactions_skipped_total",
	    "Compactions refused for want of disk space.", st.compact_skipped);
	GAUGE(b, "dynamo_compacting", "1 while a compaction runs.",
	    st.compacting ? 1 : 0);
}

static void
render_ae(struct node *n, struct buf *b)
{
	struct ae_stats as;
	ae_stats(n->ae, &as);
	COUNTER(b, "dynamo_ae_rounds_total",
	    "Anti-entropy rounds (one partition against its other replicas).",
	    as.rounds);
	COUNTER(b, "dynamo_ae_leaves_differ_total",
	    "Merkle leaves found differing from another replica's.",
	    as.leaves_differ);
	COUNTER(b, "dynamo_ae_records_merged_total",
	    "Records merged in from other replicas by anti-entropy.",
	    as.merged);
	COUNTER(b, "dynamo_ae_bytes_total",
	    "Bytes of this node's anti-entropy calls, requests and replies.",
	    as.bytes);
	COUNTER(b, "dynamo_tombstones_purged_total",
	    "Tombstones deleted once every replica held them (as purger or "
	    "replica).",
	    as.purged);
	COUNTER(b, "dynamo_ae_strays_swept_total",
	    "Records of partitions this node does not replicate, deleted.",
	    as.swept);
}

static void
render_gc(struct node *n, struct buf *b)
{
	struct gc_stats gs;
	gc_stats(n->gc, &gs);
	COUNTER(b, "dynamo_gc_rounds_total", "Blob collection rounds that "
	    "swept.", gs.rounds);
	COUNTER(b, "dynamo_gc_rounds_aborted_total",
	    "Blob collection rounds given up (nothing deleted).", gs.aborted);
	COUNTER(b, "dynamo_gc_deleted_blobs_total", "Blobs deleted.",
	    gs.deleted);
	COUNTER(b, "dynamo_gc_deleted_bytes_total", "Bytes of blobs deleted.",
	    gs.deleted_bytes);
	GAUGE(b, "dynamo_gc_blobs", "Blob records seen by the last sweep.",
	    gs.blobs);
	GAUGE(b, "dynamo_gc_condemned_blobs",
	    "Blobs marked unreferenced after the last sweep.", gs.condemned);
	GAUGE(b, "dynamo_gc_condemned_bytes",
	    "Their size: what the collector will reclaim.",
	    gs.condemned_bytes);
}

static void
render_cluster(struct node *n, struct buf *b)
{
	struct gossip_view *v;
	if (gossip_view(n->gossip, &v) == 0) {
		family(b, "dynamo_gossip_view_age_seconds", "gauge",
		    "Time since this node last merged a peer's gossip view "
		    "(absent until it has).");
		if (v->merged_age_ms >= 0)
			buf_printf(b, "dynamo_gossip_view_age_seconds %.3f\n",
			    (double)v->merged_age_ms / 1000);
		GAUGE(b, "dynamo_ring_epoch", "Epoch of the ring this node holds.",
		    v->ring_epoch);
		GAUGE(b, "dynamo_ring_partitions_owned",
		    "Partitions this node owns under the current ring.",
		    v->nmembers ? v->members[0].partitions : 0);
		uint64_t by[3] = {0}, unreachable = 0;
		for (size_t i = 0; i < v->nmembers; i++) {
			const struct gossip_member *m = &v->members[i];
			if (m->status >= MEMBER_UP && m->status <= MEMBER_LEFT)
				by[m->status - MEMBER_UP]++;
			unreachable += m->status != MEMBER_LEFT && !m->reachable;
		}
		family(b, "dynamo_members", "gauge",
		    "Members in this node's view, by state.");
		for (int s = MEMBER_UP; s <= MEMBER_LEFT; s++)
			buf_printf(b, "dynamo_members{state=\"%s\"} %" PRIu64
			    "\n", gossip_status_name(s), by[s - MEMBER_UP]);
		GAUGE(b, "dynamo_members_unreachable",
		    "Members that have not left and that this node cannot "
		    "call now.",
		    unreachable);
		mem_free(v);
	}
	struct xfer_progress xp;
	xfer_progress(n->xfer, &xp);
	GAUGE(b, "dynamo_transfer_partitions_planned",
	    "Partitions this node is to pull under the pending ring change.",
	    xp.total);
	GAUGE(b, "dynamo_transfer_partitions_pulled",
	    "Of them, those pulled so far.", xp.done);
}

void
metrics_render(struct node *n, struct buf *out)
{
	render_requests(&n->metrics, out);
	render_events(&n->metrics, out);
	render_server(n, out);
	render_store(n, out);
	render_ae(n, out);
	render_gc(n, out);
	render_cluster(n, out);
	family(out, "dynamo_uptime_seconds", "gauge",
	    "Time since this node started.");
	buf_printf(out, "dynamo_uptime_seconds %.3f\n",
	    (double)(mono_ms() - n->start_ms) / 1000);
}
