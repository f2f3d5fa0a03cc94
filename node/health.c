/*
 * The verdict is built from facts every node already keeps (gossip's
 * members and reachability, the hints database, anti-entropy's last
 * comparisons, the transfer thread's pull), read from the status JSON;
 * a field an older node does not send simply counts as nothing behind.
 * The member list is the asked node's: a member it does not know yet (a
 * join that has not gossiped) is missing from the table until it does.
 */
#include "health.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "err.h"
#include "json.h"
#include "mem.h"
#include "mono.h"

void
health_fmt_bytes(uint64_t b, char *out, size_t cap)
{
	static const char *const units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
	double v = (double)b;
	size_t u = 0;

	while (v >= 1024 && u + 1 < sizeof(units) / sizeof(units[0])) {
		v /= 1024;
		u++;
	}
	if (u == 0)
		snprintf(out, cap, "%" PRIu64 " B", b);
	else
		snprintf(out, cap, "%.1f %s", v, units[u]);
}

void
health_fmt_secs(uint64_t s, char *out, size_t cap)
{
	uint64_t d = s / 86400, h = s / 3600 % 24, m = s / 60 % 60;

	if (d > 0)
		snprintf(out, cap, "%" PRIu64 "d%02" PRIu64 "h%02" PRIu64 "m",
		    d, h, m);
	else if (h > 0)
		snprintf(out, cap, "%" PRIu64 "h%02" PRIu64 "m%02" PRIu64 "s",
		    h, m, s % 60);
	else if (m > 0)
		snprintf(out, cap, "%" PRIu64 "m%02" PRIu64 "s", m, s % 60);
	else
		snprintf(out, cap, "%" PRIu64 "s", s);
}

/* ---- reading a status ---------------------------------------------- */

static uint64_t
num(const struct json_val *obj, const char *key)
{
	uint64_t v = 0;
	json_u64(json_get(obj, key), &v);
	return v;
}

static uint32_t
num32(const struct json_val *obj, const char *key)
{
	uint64_t v = num(obj, key);
	return v > UINT32_MAX ? UINT32_MAX : (uint32_t)v;
}

static bool
flag(const struct json_val *obj, const char *key)
{
	bool b = false;
	json_bool(json_get(obj, key), &b);
	return b;
}

static void
copy_str(char *dst, size_t cap, const struct json_val *v)
{
	size_t len = 0;
	const char *s = json_str(v, &len);
	snprintf(dst, cap, "%.*s", s ? (int)len : 0, s ? s : "");
}

static int
cmp_member(const void *a, const void *b)
{
	return strcmp(((const struct health_member *)a)->name,
	    ((const struct health_member *)b)->name);
}

/* The index of the member called name, or h->n. */
static size_t
find(const struct health *h, const char *name)
{
	size_t i = 0;
	while (i < h->n && strcmp(h->m[i].name, name) != 0)
		i++;
	return i;
}

const struct health_member *
health_member(const struct health *h, const char *name)
{
	size_t i = find(h, name);
	return i < h->n ? &h->m[i] : NULL;
}

static bool
is_left(const struct health_member *m)
{
	return strcmp(m->state, "left") == 0;
}

/* The members and ring of the asked node's view. */
static int
read_view(struct health *h, const struct dyn_status *st)
{
	struct json *doc = NULL;
	int rc = st->json ? json_parse(st->json, strlen(st->json), &doc)
	                  : DYN_EBADMSG;
	if (rc)
		return rc;
	const struct json_val *r = json_root(doc);
	const struct json_val *ms = json_get(r, "members");
	snprintf(h->asked_name, sizeof(h->asked_name), "%.*s",
	    (int)strnlen(st->name, sizeof(st->name)), st->name);
	h->epoch = num(r, "ring_epoch");
	h->q = num32(r, "partitions");
	h->pending = flag(r, "transfer_pending");
	h->nrw[0] = num32(r, "n");
	h->nrw[1] = num32(r, "r");
	h->nrw[2] = num32(r, "w");
	for (const struct json_val *v = json_child(ms); v; v = json_next(v))
		h->n++;
	h->m = mem_calloc(h->n ? h->n : 1, sizeof(*h->m));
	if (!h->m) {
		json_free(doc);
		return -ENOMEM;
	}
	size_t k = 0;
	for (const struct json_val *v = json_child(ms); v; v = json_next(v)) {
		struct health_member *m = &h->m[k++];
		copy_str(m->name, sizeof(m->name), json_get(v, "name"));
		copy_str(m->addr, sizeof(m->addr), json_get(v, "addr"));
		copy_str(m->state, sizeof(m->state), json_get(v, "state"));
		m->seen = flag(v, "reachable");
		m->parts = num32(v, "partitions");
		m->rc = DYN_EUNREACH; /* until it answers */
		m->ae_last_diff_age_ms = -1;
	}
	json_free(doc);
	qsort(h->m, h->n, sizeof(*h->m), cmp_member);
	return 0;
}

/* What member m said of itself; the hints it holds are counted for their
 * targets. */
static void
read_member(struct health *h, struct health_member *m,
    const struct dyn_status *st)
{
	struct json *doc = NULL;
	m->rc = 0;
	m->keys = st->keys;
	m->db_bytes = st->db_bytes;
	if (!st->json || json_parse(st->json, strlen(st->json), &doc) != 0)
		return; /* an old node, or a bad text: nothing behind known */
	const struct json_val *r = json_root(doc);
	const struct json_val *ae = json_get(r, "anti_entropy");
	const struct json_val *x = json_get(r, "transfer");
	int64_t age = -1;
	m->ae_rounds = num(ae, "rounds");
	m->ae_differing = num32(ae, "differing");
	if (json_i64(json_get(ae, "last_diff_age_ms"), &age) == 0)
		m->ae_last_diff_age_ms = age;
	m->ae_last_diff_leaves = num32(ae, "last_diff_leaves");
	m->plan_epoch = num(x, "plan_epoch");
	m->plan_parts = num32(x, "plan_partitions");
	m->xfer_epoch = num(x, "epoch");
	m->xfer_done = num32(x, "done");
	m->xfer_total = num32(x, "total");
	m->xfer_bytes = num(x, "bytes");
	m->xfer_active = flag(x, "active");
	for (const struct json_val *v = json_child(json_get(r, "hints")); v;
	     v = json_next(v)) {
		uint64_t cnt = 0;
		json_u64(v, &cnt);
		size_t t = find(h, json_key(v, NULL));
		if (t < h->n)
			h->m[t].hints_for += cnt;
		m->hints_held += cnt;
		h->hints += cnt;
	}
	json_free(doc);
}

/* ---- the verdict --------------------------------------------------- */

/* Start reason kind, "TITLE: " once, then items by item(). */
struct reason {
	struct health *h;
	struct buf *b; /* NULL until the first item */
	const char *title;
};

static struct buf *
item(struct reason *r)
{
	if (r->b) {
		buf_put(r->b, ", ", 2);
		return r->b;
	}
	if (r->h->nreasons == HEALTH_REASONS_MAX)
		return NULL;
	r->b = &r->h->reason[r->h->nreasons++];
	buf_printf(r->b, "%s", r->title);
	return r->b;
}

static void
reason_end(struct reason *r)
{
	if (r->b)
		buf_put_u8(r->b, '\0');
}

/* A NUL-terminated text built in b ("" when it ran out of memory). */
static const char *
text(const struct buf *b)
{
	return buf_err(b) == 0 && b->len > 0 ? (const char *)b->data : "";
}

static const char *
reason_text(const struct health *h, size_t i)
{
	return text(&h->reason[i]);
}

static void
judge(struct health *h)
{
	struct reason down = {h, NULL, "down: "};
	struct reason unseen = {h, NULL, ""};
	struct reason leaving = {h, NULL, "leaving: "};
	struct reason bare = {h, NULL, "owning no partitions yet: "};
	char title[RING_NAME_MAX + 32];
	snprintf(title, sizeof(title), "unreachable from %s: ", h->asked_name);
	unseen.title = title;
	struct buf *b;
	for (size_t i = 0; i < h->n; i++) {
		const struct health_member *m = &h->m[i];
		if (is_left(m))
			continue;
		if (m->rc != 0 && (b = item(&down)) != NULL)
			buf_printf(b, "%s (%s)", m->name, dyn_strerror(m->rc));
		else if (m->rc == 0 && !m->seen && (b = item(&unseen)) != NULL)
			buf_printf(b, "%s", m->name);
		if (strcmp(m->state, "leaving") == 0 &&
		    (b = item(&leaving)) != NULL)
			buf_printf(b, "%s", m->name);
		else if (m->parts == 0 && !h->pending && (b = item(&bare)))
			buf_printf(b, "%s", m->name);
	}
	reason_end(&down);
	reason_end(&unseen);
	reason_end(&leaving);
	reason_end(&bare);

	/* Fewer owners than N: keys have fewer replicas than the cluster
	 * was made for. */
	uint32_t owners = 0;
	for (size_t i = 0; i < h->n; i++)
		owners += h->m[i].parts > 0;
	if (owners < h->nrw[0] && h->nreasons < HEALTH_REASONS_MAX) {
		b = &h->reason[h->nreasons++];
		buf_printf(b, "only %" PRIu32 " replicas a key, N=%" PRIu32
		    " (members owning partitions: %" PRIu32 ")", owners,
		    h->nrw[0], owners);
		buf_put_u8(b, '\0');
	}

	bool active = false;
	for (size_t i = 0; i < h->n; i++)
		active = active || h->m[i].xfer_active;
	if ((h->pending || active) && h->nreasons < HEALTH_REASONS_MAX) {
		b = &h->reason[h->nreasons++];
		if (h->pending && !h->plan_known)
			buf_printf(b, "transfer running: the plan of ring epoch %"
			    PRIu64 " goes round the members", h->epoch);
		else
			buf_printf(b, "transfer running: %" PRIu32 " of %" PRIu32
			    " partitions moved (ring epoch %" PRIu64 ")",
			    h->moved, h->to_move, h->epoch);
		buf_put_u8(b, '\0');
	}

	char what[64];
	snprintf(what, sizeof(what), "%" PRIu64 " hints pending (for ",
	    h->hints);
	struct reason hints = {h, NULL, what};
	uint64_t named = 0;
	for (size_t i = 0; h->hints > 0 && i < h->n; i++) {
		const struct health_member *m = &h->m[i];
		named += m->hints_for;
		if (m->hints_for > 0 && (b = item(&hints)) != NULL)
			buf_printf(b, "%s: %" PRIu64, m->name, m->hints_for);
	}
	if (h->hints > named && (b = item(&hints)) != NULL)
		buf_printf(b, "others: %" PRIu64, h->hints - named);
	if (hints.b)
		buf_put_u8(hints.b, ')');
	reason_end(&hints);

	snprintf(what, sizeof(what),
	    "replicas differing in %" PRIu32 " partitions (seen by ",
	    h->differing);
	struct reason differ = {h, NULL, what};
	for (size_t i = 0; h->differing > 0 && i < h->n; i++) {
		const struct health_member *m = &h->m[i];
		if (m->ae_differing > 0 && (b = item(&differ)) != NULL)
			buf_printf(b, "%s: %" PRIu32, m->name, m->ae_differing);
	}
	if (differ.b)
		buf_put_u8(differ.b, ')');
	reason_end(&differ);
	h->healthy = h->nreasons == 0;
}

/* ---- gathering ----------------------------------------------------- */

int
health_gather(struct dyn_client *c, const char *const *ask, size_t nask,
    int timeout_ms, struct health *out)
{
	struct dyn_status view;
	int rc = DYN_EUNREACH;
	memset(out, 0, sizeof(*out));
	memset(&view, 0, sizeof(view));
	for (size_t i = 0; i < nask && rc != 0; i++) {
		dyn_status_fini(&view);
		dyn_status_each(c, &ask[i], 1, timeout_ms, &view, &rc);
		if (rc == 0) {
			snprintf(out->asked, sizeof(out->asked), "%s", ask[i]);
			if ((rc = read_view(out, &view)) != 0)
				health_fini(out);
		}
	}
	if (rc) {
		dyn_status_fini(&view);
		return rc;
	}

	/* Every other member that has not left, in parallel; the asked one
	 * has answered already. */
	const char **addrs = mem_calloc(out->n ? out->n : 1, sizeof(*addrs));
	struct dyn_status *st = mem_calloc(out->n ? out->n : 1, sizeof(*st));
	int *rcs = mem_calloc(out->n ? out->n : 1, sizeof(*rcs));
	size_t *who = mem_calloc(out->n ? out->n : 1, sizeof(*who));
	size_t na = 0;
	if (!addrs || !st || !rcs || !who) {
		rc = -ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < out->n; i++) {
		struct health_member *m = &out->m[i];
		if (strcmp(m->name, out->asked_name) == 0)
			read_member(out, m, &view);
		else if (!is_left(m)) {
			who[na] = i;
			addrs[na++] = m->addr;
		}
	}
	dyn_status_each(c, addrs, na, timeout_ms, st, rcs);
	for (size_t k = 0; k < na; k++) {
		struct health_member *m = &out->m[who[k]];
		if (rcs[k] == 0)
			read_member(out, m, &st[k]);
		else
			m->rc = rcs[k];
		dyn_status_fini(&st[k]);
	}

	/* The pending plan's transfer, over the members that answered. */
	out->plan_known = out->pending;
	for (size_t i = 0; out->pending && i < out->n; i++) {
		const struct health_member *m = &out->m[i];
		if (m->plan_epoch != out->epoch) {
			out->plan_known = out->plan_known && is_left(m);
			continue;
		}
		out->to_move += m->plan_parts;
		if (m->xfer_epoch == out->epoch) {
			out->moved += m->xfer_done;
			out->moved_bytes += m->xfer_bytes;
		}
	}
	for (size_t i = 0; i < out->n; i++)
		out->differing += is_left(&out->m[i]) ? 0
		                                      : out->m[i].ae_differing;
	judge(out);
out:
	dyn_status_fini(&view);
	mem_free(addrs);
	mem_free(st);
	mem_free(rcs);
	mem_free(who);
	if (rc)
		health_fini(out);
	return rc;
}

void
health_fini(struct health *h)
{
	for (size_t i = 0; i < h->nreasons; i++)
		buf_fini(&h->reason[i]);
	mem_free(h->m);
	memset(h, 0, sizeof(*h));
}

/* ---- printing ------------------------------------------------------ */

enum {
	COL_NAME,
	COL_ADDR,
	COL_STATE,
	COL_REACH,
	COL_PARTS,
	COL_KEYS,
	COL_DATA,
	COL_HINTS,
	COL_AE,
	COL_DIFF,
	COL_XFER,
	NCOLS,
};

#define CELL (RING_ADDR_MAX + 33)

static const char *const col_title[NCOLS] = {"NAME", "ADDRESS", "STATE",
    "REACHABLE", "PARTITIONS", "KEYS", "DATA", "HINTS", "AE ROUNDS",
    "LAST DIFFERENCE", "TRANSFER"};
/* Numbers line up on the right. */
static const bool col_right[NCOLS] = {[COL_KEYS] = true, [COL_DATA] = true,
    [COL_HINTS] = true, [COL_AE] = true};

static void
row_cells(const struct health *h, const struct health_member *m,
    char (*cell)[CELL])
{
	bool up = m->rc == 0;
	char t[32];
	snprintf(cell[COL_NAME], CELL, "%s", m->name);
	snprintf(cell[COL_ADDR], CELL, "%s", m->addr);
	snprintf(cell[COL_STATE], CELL, "%s", m->state);
	if (!up)
		snprintf(cell[COL_REACH], CELL, "no");
	else if (!m->seen)
		snprintf(cell[COL_REACH], CELL, "not from %s", h->asked_name);
	else
		snprintf(cell[COL_REACH], CELL, "yes");
	snprintf(cell[COL_PARTS], CELL, "%" PRIu32 " (%" PRIu32 "%%)",
	    m->parts, h->q ? (m->parts * 100 + h->q / 2) / h->q : 0);
	snprintf(cell[COL_KEYS], CELL, up ? "%" PRIu64 : "-", m->keys);
	health_fmt_bytes(m->db_bytes, cell[COL_DATA], CELL);
	if (!up)
		snprintf(cell[COL_DATA], CELL, "-");
	snprintf(cell[COL_HINTS], CELL, "%" PRIu64, m->hints_for);
	snprintf(cell[COL_AE], CELL, up ? "%" PRIu64 : "-", m->ae_rounds);
	if (!up || m->ae_last_diff_age_ms < 0) {
		snprintf(cell[COL_DIFF], CELL, m->ae_differing ? "?" : "-");
	} else {
		health_fmt_secs((uint64_t)m->ae_last_diff_age_ms / 1000, t,
		    sizeof(t));
		if (m->ae_differing)
			snprintf(cell[COL_DIFF], CELL,
			    "%s ago, %" PRIu32 " partitions differ", t,
			    m->ae_differing);
		else
			snprintf(cell[COL_DIFF], CELL,
			    "%s ago (%" PRIu32 " %s)", t,
			    m->ae_last_diff_leaves,
			    m->ae_last_diff_leaves == 1 ? "leaf" : "leaves");
	}
	if (up && h->pending && m->plan_epoch == h->epoch &&
	    m->plan_parts > 0) {
		uint32_t done = m->xfer_epoch == h->epoch ? m->xfer_done : 0;
		health_fmt_bytes(m->xfer_epoch == h->epoch ? m->xfer_bytes : 0,
		    t, sizeof(t));
		snprintf(cell[COL_XFER], CELL, "%" PRIu32 "/%" PRIu32 ", %s",
		    done, m->plan_parts, t);
	} else {
		snprintf(cell[COL_XFER], CELL, "-");
	}
}

static void
print_row(FILE *f, char (*cell)[CELL], const size_t *w)
{
	for (int c = 0; c < NCOLS; c++) {
		int wid = (int)w[c];
		if (c == NCOLS - 1)
			fprintf(f, "%s\n", cell[c]);
		else if (col_right[c])
			fprintf(f, "%*s  ", wid, cell[c]);
		else
			fprintf(f, "%-*s  ", wid, cell[c]);
	}
}

void
health_print_table(const struct health *h, FILE *f)
{
	char (*cells)[NCOLS][CELL] = mem_calloc(h->n + 1, sizeof(*cells));
	size_t w[NCOLS], rows = 1;
	if (!cells) {
		fputs("dynamoctl: out of memory\n", stderr);
		return;
	}
	for (int c = 0; c < NCOLS; c++) {
		snprintf(cells[0][c], CELL, "%s", col_title[c]);
		w[c] = strlen(col_title[c]);
	}
	for (size_t i = 0; i < h->n; i++) {
		if (is_left(&h->m[i]))
			continue;
		row_cells(h, &h->m[i], cells[rows]);
		for (int c = 0; c < NCOLS; c++)
			if (strlen(cells[rows][c]) > w[c])
				w[c] = strlen(cells[rows][c]);
		rows++;
	}
	fprintf(f, "cluster as %s (%s) sees it: ring epoch %" PRIu64
	    ", %" PRIu32 " partitions, N=%" PRIu32 " R=%" PRIu32 " W=%" PRIu32
	    "%s\n", h->asked_name, h->asked, h->epoch, h->q, h->nrw[0],
	    h->nrw[1], h->nrw[2], h->pending ? ", transfer pending" : "");
	for (size_t r = 0; r < rows; r++)
		print_row(f, cells[r], w);
	if (h->healthy) {
		fputs("healthy\n", f);
	} else {
		fputs("degraded: ", f);
		for (size_t i = 0; i < h->nreasons; i++)
			fprintf(f, "%s%s", i ? "; " : "",
			    reason_text(h, i));
		fputc('\n', f);
	}
	mem_free(cells);
}

static void
json_str_out(FILE *f, const char *s)
{
	cli_json_str(f, s, strlen(s));
}

void
health_print_json(const struct health *h, FILE *f)
{
	fprintf(f, "{\"healthy\": %s, \"reasons\": [",
	    h->healthy ? "true" : "false");
	for (size_t i = 0; i < h->nreasons; i++) {
		fputs(i ? ", " : "", f);
		json_str_out(f, reason_text(h, i));
	}
	fputs("], \"view\": ", f);
	json_str_out(f, h->asked_name);
	fprintf(f, ", \"ring_epoch\": %" PRIu64 ", \"transfer\": {\"pending\": "
	    "%s, \"partitions\": %" PRIu32 ", \"moved\": %" PRIu32
	    ", \"bytes\": %" PRIu64 "}, \"hints\": %" PRIu64
	    ", \"differing\": %" PRIu32 ", \"members\": [",
	    h->epoch, h->pending ? "true" : "false", h->to_move, h->moved,
	    h->moved_bytes, h->hints, h->differing);
	for (size_t i = 0; i < h->n; i++) {
		const struct health_member *m = &h->m[i];
		fputs(i ? ", {\"name\": " : "{\"name\": ", f);
		json_str_out(f, m->name);
		fputs(", \"addr\": ", f);
		json_str_out(f, m->addr);
		fputs(", \"state\": ", f);
		json_str_out(f, m->state);
		fprintf(f, ", \"reachable\": %s, \"answered\": %s",
		    m->seen ? "true" : "false", m->rc == 0 ? "true" : "false");
		if (m->rc != 0) {
			fputs(", \"error\": ", f);
			json_str_out(f, dyn_strerror(m->rc));
		}
		fprintf(f, ", \"partitions\": %" PRIu32 ", \"keys\": %" PRIu64
		    ", \"db_bytes\": %" PRIu64 ", \"hints_for\": %" PRIu64
		    ", \"hints_held\": %" PRIu64 ", \"ae_rounds\": %" PRIu64
		    ", \"ae_differing\": %" PRIu32 ", \"ae_last_diff_age_ms\": ",
		    m->parts, m->keys, m->db_bytes, m->hints_for, m->hints_held,
		    m->ae_rounds, m->ae_differing);
		if (m->ae_last_diff_age_ms < 0)
			fputs("null", f);
		else
			fprintf(f, "%" PRId64, m->ae_last_diff_age_ms);
		fprintf(f, ", \"plan_partitions\": %" PRIu32 ", \"moved\": %"
		    PRIu32 ", \"moved_bytes\": %" PRIu64 "}",
		    m->plan_epoch == h->epoch ? m->plan_parts : 0,
		    m->xfer_epoch == h->epoch ? m->xfer_done : 0,
		    m->xfer_epoch == h->epoch ? m->xfer_bytes : 0);
	}
	fputs("]}", f);
}

/* ---- waiting ------------------------------------------------------- */

/* Where the progress of one plan started, to give a rate and an ETA. */
struct pace {
	uint64_t epoch;  /* the plan followed (0: none seen yet) */
	long long t0;    /* when it was first seen */
	uint32_t moved0; /* partitions moved then */
	uint64_t bytes0;
	uint32_t total;  /* the most partitions to move seen */
	uint32_t moved;  /* the last seen */
	uint64_t bytes;
};

static void
pace_update(struct pace *p, const struct health *h, long long now)
{
	if (!h->pending) {
		/* The plan committed: what the members pulled for it stays
		 * in their status (xfer_epoch), so the totals are final. */
		uint32_t moved = 0;
		uint64_t bytes = 0;
		for (size_t i = 0; p->epoch && i < h->n; i++) {
			if (h->m[i].xfer_epoch == p->epoch) {
				moved += h->m[i].xfer_done;
				bytes += h->m[i].xfer_bytes;
			}
		}
		if (moved > p->moved)
			p->moved = moved;
		if (bytes > p->bytes)
			p->bytes = bytes;
		return;
	}
	if (!h->plan_known)
		return; /* the totals are not all in yet */
	if (h->epoch != p->epoch) {
		*p = (struct pace){.epoch = h->epoch, .t0 = now,
		    .moved0 = h->moved, .bytes0 = h->moved_bytes};
	}
	if (h->to_move > p->total)
		p->total = h->to_move;
	p->moved = h->moved;
	p->bytes = h->moved_bytes;
}

/* "12 of 48 partitions (25%), 3.1 MiB, 1.2 MiB/s, about 9s left". */
static void
pace_line(const struct pace *p, long long now, struct buf *b)
{
	char by[32], rate[32], left[32];
	double s = (double)(now - p->t0) / 1000;
	if (p->total == 0) {
		buf_printf(b, "none to pull");
		return;
	}
	health_fmt_bytes(p->bytes, by, sizeof(by));
	buf_printf(b, "%" PRIu32 " of %" PRIu32 " partitions (%" PRIu32 "%%), %s",
	    p->moved, p->total,
	    p->total ? (uint32_t)((uint64_t)p->moved * 100 / p->total) : 0,
	    by);
	if (s >= 0.5) {
		health_fmt_bytes((uint64_t)((double)(p->bytes - p->bytes0) / s),
		    rate, sizeof(rate));
		buf_printf(b, ", %s/s", rate);
	}
	if (p->moved > p->moved0 && p->total > p->moved) {
		double eta = s * (p->total - p->moved) / (p->moved - p->moved0);
		health_fmt_secs((uint64_t)(eta + 0.999), left, sizeof(left));
		buf_printf(b, ", about %s left", left);
	}
}

/* A plan is pending: partitions move once every member holds it. */
static void
plan_phase(const struct health *h, const char *verb, struct buf *phase)
{
	if (h->plan_known)
		buf_printf(phase, "%s partitions: ", verb);
	else
		buf_printf(phase, "the ring plan goes round the members");
}

/* A leave's or a removal's phase while the ring still places member m
 * (true), or false once it no longer does. */
static bool
ring_phase(const struct health *h, const struct health_member *m,
    const char *verb, struct buf *phase)
{
	if (h->pending)
		plan_phase(h, verb, phase);
	else if (m && m->parts > 0)
		buf_printf(phase, "waiting for the ring plan");
	else
		return false;
	return true;
}

/* Is the goal met, and what is the phase (for the progress line)? */
static bool
goal_met(const struct health_wait *w, const struct health *h,
    struct buf *phase)
{
	const struct health_member *m = w->name ? health_member(h, w->name)
	                                        : NULL;
	uint64_t for_it = m ? m->hints_for : 0;
	switch (w->goal) {
	case HEALTH_GOAL_LEFT:
		if (strcmp(h->asked_name, w->name) != 0 && (!m || is_left(m)) &&
		    !h->pending)
			return true;
		if (!ring_phase(h, m, "moving", phase))
			buf_printf(phase, "new ring in place; waiting for %s to "
			    "go (it holds %" PRIu64 " hints)", w->name,
			    m ? m->hints_held : 0);
		return false;
	case HEALTH_GOAL_REMOVED:
		if (m && is_left(m) && !h->pending && m->parts == 0 &&
		    for_it == 0)
			return true;
		if (!ring_phase(h, m, "copying", phase))
			buf_printf(phase, "redirecting the hints held for %s (%"
			    PRIu64 " left)", w->name, for_it);
		return false;
	default:
		if (h->healthy)
			return true;
		if (h->pending) {
			plan_phase(h, "moving", phase);
			return false;
		}
		buf_printf(phase, "degraded: ");
		for (size_t i = 0; i < h->nreasons; i++)
			buf_printf(phase, "%s%s", i ? "; " : "",
			    reason_text(h, i));
		return false;
	}
}

/* Addresses to ask for a view: the given ones, then every member seen,
 * the one leaving or removed last (once it is gone, asking it first
 * would cost a timeout a round, and a leaver's own view is not the one
 * that says it has left). */
#define ASK_MORE 256

struct asklist {
	char (*a)[RING_ADDR_MAX + 1];
	const char **p;
	size_t n, cap;
};

static void
ask_add(struct asklist *l, const char *addr)
{
	for (size_t i = 0; i < l->n; i++)
		if (strcmp(l->a[i], addr) == 0)
			return;
	if (l->n == l->cap)
		return;
	snprintf(l->a[l->n], sizeof(l->a[0]), "%s", addr);
	l->p[l->n] = l->a[l->n];
	l->n++;
}

/* Move addr (when listed) to the end. */
static void
ask_last(struct asklist *l, const char *addr)
{
	for (size_t i = 0; i + 1 < l->n; i++) {
		if (strcmp(l->a[i], addr) != 0)
			continue;
		char keep[RING_ADDR_MAX + 1];
		snprintf(keep, sizeof(keep), "%s", l->a[i]);
		memmove(&l->a[i], &l->a[i + 1], (l->n - i - 1) * sizeof(l->a[0]));
		snprintf(l->a[l->n - 1], sizeof(l->a[0]), "%s", keep);
		return;
	}
}

/* One progress line: on a terminal the same line redrawn; else a line
 * with the seconds since the start, when the phase changes or every
 * PLAIN_EVERY_MS. */
#define PLAIN_EVERY_MS 1000

struct shown {
	long long t0, last;
	char phase[256];
};

static void
show(const struct health_wait *w, struct shown *s, const char *line,
    const char *phase, long long now, bool final)
{
	if (!w->out)
		return;
	if (w->tty) {
		fprintf(w->out, "\r%s\033[K%s", line, final ? "\n" : "");
	} else {
		/* The phase is its words; its numbers change all along. */
		size_t words = strcspn(phase, "0123456789");
		if (!final && words == strlen(s->phase) &&
		    strncmp(phase, s->phase, words) == 0 &&
		    now - s->last < PLAIN_EVERY_MS)
			return;
		fprintf(w->out, "[%5.1f s] %s\n", (double)(now - s->t0) / 1000,
		    line);
	}
	fflush(w->out);
	s->last = now;
	snprintf(s->phase, sizeof(s->phase), "%.*s",
	    (int)strcspn(phase, "0123456789"), phase);
}

int
health_wait(struct dyn_client *c, const char *const *ask, size_t nask,
    const struct health_wait *w, struct health *last)
{
	struct asklist l = {.cap = nask + ASK_MORE};
	struct health h;
	struct pace pace = {0};
	struct shown sh = {.t0 = (long long)mono_ms()};
	struct buf line, phase;
	int rc = DYN_ETIMEDOUT;
	memset(&h, 0, sizeof(h));
	buf_init(&line);
	buf_init(&phase);
	l.a = mem_calloc(l.cap, sizeof(*l.a));
	l.p = mem_calloc(l.cap, sizeof(*l.p));
	if (!l.a || !l.p) {
		rc = -ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < nask; i++)
		ask_add(&l, ask[i]);
	for (;;) {
		long long now = (long long)mono_ms();
		health_fini(&h);
		buf_reset(&line);
		buf_reset(&phase);
		int grc = health_gather(c, l.p, l.n, w->timeout_ms, &h);
		bool met = false;
		if (grc == 0) {
			for (size_t i = 0; i < h.n; i++)
				if (!is_left(&h.m[i]))
					ask_add(&l, h.m[i].addr);
			const struct health_member *away =
			    w->name ? health_member(&h, w->name) : NULL;
			if (away)
				ask_last(&l, away->addr);
			pace_update(&pace, &h, now);
			met = goal_met(w, &h, &phase);
		} else {
			buf_printf(&phase, "no member answers (%s)",
			    dyn_strerror(grc));
		}
		buf_put_u8(&phase, '\0');
		buf_printf(&line, "%s", text(&phase));
		if (grc == 0 && h.plan_known)
			pace_line(&pace, now, &line);
		buf_put_u8(&line, '\0');
		if (met) {
			rc = 0;
			break;
		}
		show(w, &sh, text(&line),
		    text(&phase), now, false);
		if (w->deadline_ms && now >= w->deadline_ms)
			break;
		/* A gather that waited on a member down took its time. */
		long long tick = w->tty ? 250 : 500;
		long long spent = (long long)mono_ms() - now;
		if (spent < tick) {
			struct timespec ts = {0, (long)(tick - spent) * 1000000L};
			nanosleep(&ts, NULL);
		}
	}

	/* The final line: what was moved, in how long. */
	long long now = (long long)mono_ms();
	char by[32], took[32];
	buf_reset(&line);
	health_fmt_secs((uint64_t)((now - sh.t0 + 500) / 1000), took,
	    sizeof(took));
	buf_printf(&line, rc == 0 ? "done in %s" : "gave up waiting after %s",
	    took);
	if (pace.epoch && pace.total == 0) {
		buf_printf(&line, ": no partition had to move");
	} else if (pace.epoch) {
		health_fmt_bytes(pace.bytes, by, sizeof(by));
		buf_printf(&line, ": %" PRIu32 " of %" PRIu32 " partitions, %s "
		    "moved", pace.moved, pace.total, by);
	}
	buf_put_u8(&line, '\0');
	show(w, &sh, text(&line), "", now, true);
out:
	if (last)
		*last = h;
	else
		health_fini(&h);
	buf_fini(&line);
	buf_fini(&phase);
	mem_free(l.a);
	mem_free(l.p);
	return rc;
}
