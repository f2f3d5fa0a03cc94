/*
 * ring — partition ownership, the planner and the ring's encoding.
 *
 * The planner works on one scratch table w[Q] of member indices (-1 for a
 * free partition) in three passes, each a pure function of its inputs and
 * broken ties by partition index or member index (= name order, as the
 * member table is sorted), so that every node derives the same plan:
 *
 *   cur --free departed--> w --release excess--> w --hand out free--> next
 *
 * Balance and minimal movement are fixed by the targets alone (every member
 * ends at its target and only excess or departed partitions move); the
 * choice of *which* partitions move is where preference lists are made
 * good: the planner scores a (partition, member) pair by how close on the
 * ring the member already owns partitions ("crowding") and releases the
 * most crowded, hands out to the least crowded.
 */
#include "ring.h"

#include <errno.h>
#include <string.h>

#include "err.h"
#include "mem.h"

/*
 * Crowding looks RING_SPREAD partitions either way: enough for preference
 * lists of N = 3 and 4 to find distinct nodes in N steps.  A same-owner
 * neighbour at distance d weighs 4^(RING_SPREAD - d), so one at distance 1
 * outweighs any number (at most two per distance) farther away.
 */
#define RING_SPREAD 3

struct ring_member {
	char name[RING_NAME_MAX + 1];
	char addr[RING_ADDR_MAX + 1];
};

struct ring {
	uint64_t epoch;
	uint32_t q;
	uint32_t nm;           /* members, >= 1 */
	struct ring_member *m; /* nm, sorted by name (strcmp) */
	uint16_t *cur;         /* q owners */
	uint16_t *next;        /* q owners or NULL when stable */
};

static bool
q_valid(uint32_t q)
{
	return q >= RING_Q_MIN && q <= RING_Q_MAX && (q & (q - 1)) == 0;
}

/* A name or address: 1..max bytes before the NUL. */
static bool
str_valid(const char *s, size_t max)
{
	size_t len;

	if (s == NULL)
		return false;
	len = strnlen(s, max + 1);
	return len >= 1 && len <= max;
}

static const uint16_t *
table(const struct ring *r, enum ring_table t)
{
	return t == RING_NEXT && r->next != NULL ? r->next : r->cur;
}

/* Binary search by name: the index, or where it would be inserted. */
static uint32_t
member_slot(const struct ring *r, const char *name, bool *found)
{
	uint32_t lo = 0;
	uint32_t hi = r->nm;

	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;
		if (strcmp(r->m[mid].name, name) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	*found = lo < r->nm && strcmp(r->m[lo].name, name) == 0;
	return lo;
}

/* A ring with room for nm members and a cur table, no next. */
static int
ring_alloc(uint32_t q, uint32_t nm, struct ring **out)
{
	struct ring *r;
	int rc = -ENOMEM;

	*out = NULL;
	if ((r = mem_calloc(1, sizeof(*r))) == NULL)
		goto out;
	r->q = q;
	r->nm = nm;
	if ((r->m = mem_calloc(nm, sizeof(*r->m))) == NULL ||
	    (r->cur = mem_calloc(q, sizeof(*r->cur))) == NULL)
		goto out;
	*out = r;
	r = NULL;
	rc = 0;
out:
	ring_free(r);
	return rc;
}

int
ring_new(uint32_t q, const char *name, const char *addr, struct ring **out)
{
	int rc;

	*out = NULL;
	if (!q_valid(q) || !str_valid(name, RING_NAME_MAX) ||
	    !str_valid(addr, RING_ADDR_MAX))
		return -EINVAL;
	if ((rc = ring_alloc(q, 1, out)) != 0)
		return rc;
	(*out)->epoch = 1;
	strcpy((*out)->m[0].name, name);
	strcpy((*out)->m[0].addr, addr);
	return 0;
}

int
ring_dup(const struct ring *r, struct ring **out)
{
	struct ring *d = NULL;
	int rc;

	*out = NULL;
	if ((rc = ring_alloc(r->q, r->nm, &d)) != 0)
		goto out;
	d->epoch = r->epoch;
	memcpy(d->m, r->m, r->nm * sizeof(*r->m));
	memcpy(d->cur, r->cur, r->q * sizeof(*r->cur));
	if (r->next != NULL) {
		if ((d->next = mem_dup(r->next, r->q * sizeof(*r->next))) ==
		    NULL) {
			rc = -ENOMEM;
			goto out;
		}
	}
	*out = d;
	d = NULL;
out:
	ring_free(d);
	return rc;
}

void
ring_free(struct ring *r)
{
	if (r == NULL)
		return;
	mem_free(r->m);
	mem_free(r->cur);
	mem_free(r->next);
	mem_free(r);
}

/* Shift owner indices >= from by delta (member inserted or removed). */
static void
owners_shift(struct ring *r, uint32_t from, int delta)
{
	for (uint32_t p = 0; p < r->q; p++) {
		if (r->cur[p] >= from)
			r->cur[p] = (uint16_t)(r->cur[p] + delta);
		if (r->next != NULL && r->next[p] >= from)
			r->next[p] = (uint16_t)(r->next[p] + delta);
	}
}

int
ring_member_set(struct ring *r, const char *name, const char *addr)
{
	struct ring_member *m;
	uint32_t i;
	bool found;

	if (!str_valid(name, RING_NAME_MAX) || !str_valid(addr, RING_ADDR_MAX))
		return -EINVAL;
	i = member_slot(r, name, &found);
	if (found) {
		if (strcmp(r->m[i].addr, addr) == 0)
			return 0;
		strcpy(r->m[i].addr, addr);
		r->epoch++;
		return 0;
	}
	if (r->nm >= RING_MEMBERS_MAX)
		return -ENOSPC;
	if ((m = mem_realloc(r->m, (r->nm + 1) * sizeof(*m))) == NULL)
		return -ENOMEM;
	r->m = m;
	memmove(&m[i + 1], &m[i], (r->nm - i) * sizeof(*m));
	memset(&m[i], 0, sizeof(*m));
	strcpy(m[i].name, name);
	strcpy(m[i].addr, addr);
	r->nm++;
	owners_shift(r, i, 1);
	r->epoch++;
	return 0;
}

int
ring_member_remove(struct ring *r, const char *name)
{
	uint32_t i;
	bool found;

	if (name == NULL)
		return -ENOENT;
	i = member_slot(r, name, &found);
	if (!found)
		return -ENOENT;
	for (uint32_t p = 0; p < r->q; p++)
		if (r->cur[p] == i || (r->next != NULL && r->next[p] == i))
			return -EBUSY;
	/* The table does not shrink: the slack is one entry per removal. */
	memmove(&r->m[i], &r->m[i + 1], (r->nm - i - 1) * sizeof(*r->m));
	r->nm--;
	owners_shift(r, i + 1, -1);
	r->epoch++;
	return 0;
}

/* ---- The planner --------------------------------------------------- */

/* How crowded partition p would be with owner m in scratch table w: the
 * weighted count of partitions within RING_SPREAD that m owns. */
static uint32_t
crowding(const int32_t *w, uint32_t q, uint32_t p, int32_t m)
{
	uint32_t score = 0;

	for (uint32_t d = 1; d <= RING_SPREAD; d++) {
		uint32_t weight = 1u << (2 * (RING_SPREAD - d));
		uint32_t before = (p + q - d % q) % q;
		uint32_t after = (p + d) % q;

		/* On a tiny ring the walk meets p itself: not a neighbour. */
		if (before != p && w[before] == m)
			score += weight;
		if (after != p && w[after] == m)
			score += weight;
	}
	return score;
}

struct plan {
	uint32_t q;
	uint32_t nm;
	int32_t *w;       /* q: owner or -1 (free) */
	uint32_t *held;   /* nm: partitions each member holds in w */
	uint32_t *target; /* nm: 0 for members not in the list */
	bool *listed;     /* nm */
	uint32_t *order;  /* nm: scratch list of member indices */
	uint32_t *crowd;  /* q: crowding of each owned partition */
	uint32_t *dist;   /* q: distance to the nearest free partition */
};

static void
plan_fini(struct plan *pl)
{
	mem_free(pl->w);
	mem_free(pl->held);
	mem_free(pl->target);
	mem_free(pl->listed);
	mem_free(pl->order);
	mem_free(pl->crowd);
	mem_free(pl->dist);
}

/* Mark the listed members.  -ENOENT unknown, -EINVAL twice or empty. */
static int
plan_list(struct plan *pl, const struct ring *r, const char *const *names,
          uint32_t n)
{
	if (n == 0)
		return -EINVAL;
	for (uint32_t i = 0; i < n; i++) {
		bool found;
		uint32_t m;

		if (names[i] == NULL)
			return -ENOENT;
		m = member_slot(r, names[i], &found);
		if (!found)
			return -ENOENT;
		if (pl->listed[m])
			return -EINVAL;
		pl->listed[m] = true;
	}
	return 0;
}

/*
 * Targets: floor(Q/S) each, and the Q mod S extra partitions to the listed
 * members holding most now (then by name), which is what keeps the number
 * of partitions above target, hence the movement, minimal.
 */
static void
plan_targets(struct plan *pl, uint32_t s)
{
	uint32_t k = 0;

	for (uint32_t m = 0; m < pl->nm; m++) {
		uint32_t j;

		if (!pl->listed[m])
			continue;
		/* Insertion sort by held desc, index asc: S <= 1024, and a
		 * stable, obviously deterministic order matters more. */
		for (j = k; j > 0 && pl->held[pl->order[j - 1]] < pl->held[m];
		     j--)
			pl->order[j] = pl->order[j - 1];
		pl->order[j] = m;
		k++;
	}
	for (uint32_t i = 0; i < s; i++)
		pl->target[pl->order[i]] = pl->q / s + (i < pl->q % s ? 1 : 0);
}

/* A partition was freed: lower the distance to the nearest free partition
 * of the positions around it, walking out while that improves anything
 * (the field is exact, so past the first non-improvement nothing can). */
static void
plan_dist_free(struct plan *pl, uint32_t f)
{
	uint32_t q = pl->q;

	pl->dist[f] = 0;
	for (uint32_t d = 1; d < q && pl->dist[(f + d) % q] > d; d++)
		pl->dist[(f + d) % q] = d;
	for (uint32_t d = 1; d < q && pl->dist[(f + q - d) % q] > d; d++)
		pl->dist[(f + q - d) % q] = d;
}

/*
 * Members above target give away partitions, one at a time, across all of
 * them: the most crowded first; among equally crowded, the one farthest
 * from any free partition, so that what is freed (and will go to the
 * members below target) is spread around the ring rather than bunched at
 * low partition numbers; then the lowest partition.
 */
static void
plan_release(struct plan *pl)
{
	uint32_t q = pl->q;
	uint32_t excess = 0;

	for (uint32_t m = 0; m < pl->nm; m++)
		if (pl->held[m] > pl->target[m])
			excess += pl->held[m] - pl->target[m];
	for (uint32_t p = 0; p < q; p++) {
		pl->dist[p] = q;
		if (pl->w[p] != -1)
			pl->crowd[p] = crowding(pl->w, q, p, pl->w[p]);
	}
	for (uint32_t p = 0; p < q; p++)
		if (pl->w[p] == -1)
			plan_dist_free(pl, p);

	for (; excess > 0; excess--) {
		uint32_t best = q;

		for (uint32_t p = 0; p < q; p++) {
			int32_t m = pl->w[p];

			if (m == -1 || pl->held[m] <= pl->target[m])
				continue;
			if (best == q || pl->crowd[p] > pl->crowd[best] ||
			    (pl->crowd[p] == pl->crowd[best] &&
			     pl->dist[p] > pl->dist[best]))
				best = p;
		}
		/* best < q: the excess is held by someone. */
		pl->held[pl->w[best]]--;
		pl->w[best] = -1;
		plan_dist_free(pl, best);
		for (uint32_t d = 1; d <= RING_SPREAD; d++) {
			uint32_t a = (best + d) % q;
			uint32_t b = (best + q - d % q) % q;

			if (pl->w[a] != -1)
				pl->crowd[a] = crowding(pl->w, q, a, pl->w[a]);
			if (pl->w[b] != -1)
				pl->crowd[b] = crowding(pl->w, q, b, pl->w[b]);
		}
	}
}

/* Hand each free partition, in order, to the member below target that
 * would be least crowded there; ties to the one furthest below target,
 * then by name. */
static void
plan_assign(struct plan *pl)
{
	uint32_t k = 0;

	for (uint32_t m = 0; m < pl->nm; m++)
		if (pl->held[m] < pl->target[m])
			pl->order[k++] = m;
	for (uint32_t p = 0; p < pl->q; p++) {
		uint32_t best = 0;
		uint32_t best_score = 0;
		uint32_t best_need = 0;

		if (pl->w[p] != -1)
			continue;
		for (uint32_t i = 0; i < k; i++) {
			uint32_t m = pl->order[i];
			uint32_t need = pl->target[m] - pl->held[m];
			uint32_t score = crowding(pl->w, pl->q, p, (int32_t)m);

			if (i == 0 || score < best_score ||
			    (score == best_score && need > best_need)) {
				best = i;
				best_score = score;
				best_need = need;
			}
		}
		/* k > 0 here: free partitions == total shortfall. */
		pl->w[p] = (int32_t)pl->order[best];
		if (++pl->held[pl->order[best]] == pl->target[pl->order[best]])
			memmove(&pl->order[best], &pl->order[best + 1],
			        (--k - best) * sizeof(*pl->order));
	}
}

int
ring_plan(const struct ring *r, const char *const *members, uint32_t n,
          struct ring **out)
{
	struct plan pl = {.q = r->q, .nm = r->nm};
	struct ring *d = NULL;
	int rc = -ENOMEM;

	*out = NULL;
	if ((pl.w = mem_calloc(r->q, sizeof(*pl.w))) == NULL ||
	    (pl.held = mem_calloc(r->nm, sizeof(*pl.held))) == NULL ||
	    (pl.target = mem_calloc(r->nm, sizeof(*pl.target))) == NULL ||
	    (pl.listed = mem_calloc(r->nm, sizeof(*pl.listed))) == NULL ||
	    (pl.order = mem_calloc(r->nm, sizeof(*pl.order))) == NULL ||
	    (pl.crowd = mem_calloc(r->q, sizeof(*pl.crowd))) == NULL ||
	    (pl.dist = mem_calloc(r->q, sizeof(*pl.dist))) == NULL)
		goto out;
	if ((rc = plan_list(&pl, r, members, n)) != 0)
		goto out;

	for (uint32_t p = 0; p < r->q; p++) {
		uint16_t o = r->cur[p];
		if (pl.listed[o]) {
			pl.w[p] = o;
			pl.held[o]++;
		} else {
			pl.w[p] = -1;
		}
	}
	plan_targets(&pl, n);
	plan_release(&pl);
	plan_assign(&pl);

	if ((rc = ring_dup(r, &d)) != 0)
		goto out;
	if (d->next == NULL &&
	    (d->next = mem_calloc(r->q, sizeof(*d->next))) == NULL) {
		rc = -ENOMEM;
		goto out;
	}
	for (uint32_t p = 0; p < r->q; p++)
		d->next[p] = (uint16_t)pl.w[p];
	d->epoch = r->epoch + 1;
	*out = d;
	d = NULL;
out:
	ring_free(d);
	plan_fini(&pl);
	return rc;
}

int
ring_commit(struct ring *r)
{
	if (r->next == NULL)
		return -EINVAL;
	mem_free(r->cur);
	r->cur = r->next;
	r->next = NULL;
	r->epoch++;
	return 0;
}

uint32_t
ring_moves(const struct ring *r)
{
	uint32_t n = 0;

	if (r->next == NULL)
		return 0;
	for (uint32_t p = 0; p < r->q; p++)
		n += r->cur[p] != r->next[p];
	return n;
}

/* ---- Placement ----------------------------------------------------- */

uint64_t
ring_epoch(const struct ring *r)
{
	return r->epoch;
}

uint32_t
ring_q(const struct ring *r)
{
	return r->q;
}

bool
ring_has_next(const struct ring *r)
{
	return r->next != NULL;
}

uint32_t
ring_partition_of(const struct ring *r, const struct keypos *pos)
{
	return keypos_partition(pos, r->q);
}

int
ring_partition_range(const struct ring *r, uint32_t part, struct keypos *from,
                     struct keypos *to, bool *to_end)
{
	unsigned bits = 0;

	if (part >= r->q)
		return -EINVAL;
	while ((1u << bits) < r->q)
		bits++;
	memset(from, 0, sizeof(*from));
	/* Q <= 4096: the partition number fits the first u32, and with
	 * bits == 0 there is only partition 0, which runs to the end. */
	if (bits > 0)
		be_put_u32(from->b, part << (32 - bits));
	*to_end = part == r->q - 1;
	if (!*to_end) {
		memset(to, 0, sizeof(*to));
		be_put_u32(to->b, (part + 1) << (32 - bits));
	}
	return 0;
}

int
ring_owner(const struct ring *r, enum ring_table t, uint32_t part)
{
	if (part >= r->q)
		return -EINVAL;
	return table(r, t)[part];
}

static bool
in_list(const uint32_t *list, uint32_t n, uint32_t v)
{
	for (uint32_t i = 0; i < n; i++)
		if (list[i] == v)
			return true;
	return false;
}

int
ring_preflist(const struct ring *r, enum ring_table t, uint32_t part,
              uint32_t n, uint32_t *out, uint32_t *count)
{
	const uint16_t *tab = table(r, t);
	uint32_t k = 0;

	*count = 0;
	if (part >= r->q)
		return -EINVAL;
	for (uint32_t i = 0; i < r->q && k < n; i++) {
		uint32_t o = tab[(part + i) & (r->q - 1)];
		if (!in_list(out, k, o))
			out[k++] = o;
	}
	*count = k;
	return 0;
}

int
ring_preflist_key(const struct ring *r, enum ring_table t,
                  const struct keypos *pos, uint32_t n, uint32_t *out,
                  uint32_t *count)
{
	return ring_preflist(r, t, ring_partition_of(r, pos), n, out, count);
}

int
ring_replicas_union(const struct ring *r, uint32_t part, uint32_t n,
                    uint32_t *out, uint32_t *count)
{
	uint32_t k, kn;
	int rc;

	if ((rc = ring_preflist(r, RING_CUR, part, n, out, &k)) != 0 ||
	    r->next == NULL) {
		*count = rc == 0 ? k : 0;
		return rc;
	}
	/* The next list lands behind the cur one (out has 2n >= k + n) and
	 * is compacted in place: the write index never passes the read. */
	(void)ring_preflist(r, RING_NEXT, part, n, out + k, &kn);
	*count = k;
	for (uint32_t i = 0; i < kn; i++)
		if (!in_list(out, k, out[k + i]))
			out[(*count)++] = out[k + i];
	return 0;
}

uint32_t
ring_gains(const struct ring *r, uint32_t n, uint32_t idx, uint32_t *out)
{
	uint32_t cur[RING_GAINS_N_MAX], next[RING_GAINS_N_MAX], nc, nn;
	uint32_t count = 0;

	if (r->next == NULL || idx >= r->nm)
		return 0;
	if (n > RING_GAINS_N_MAX)
		n = RING_GAINS_N_MAX;
	for (uint32_t p = 0; p < r->q; p++) {
		(void)ring_preflist(r, RING_CUR, p, n, cur, &nc);
		(void)ring_preflist(r, RING_NEXT, p, n, next, &nn);
		if (in_list(next, nn, idx) && !in_list(cur, nc, idx)) {
			if (out != NULL)
				out[count] = p;
			count++;
		}
	}
	return count;
}

/* ---- Members ------------------------------------------------------- */

uint32_t
ring_member_count(const struct ring *r)
{
	return r->nm;
}

int
ring_member_find(const struct ring *r, const char *name)
{
	uint32_t i;
	bool found;

	if (name == NULL)
		return -ENOENT;
	i = member_slot(r, name, &found);
	return found ? (int)i : -ENOENT;
}

const char *
ring_member_name(const struct ring *r, uint32_t idx)
{
	return idx < r->nm ? r->m[idx].name : NULL;
}

const char *
ring_member_addr(const struct ring *r, uint32_t idx)
{
	return idx < r->nm ? r->m[idx].addr : NULL;
}

void
ring_owned_counts(const struct ring *r, enum ring_table t, uint32_t *counts)
{
	const uint16_t *tab = table(r, t);

	memset(counts, 0, r->nm * sizeof(*counts));
	for (uint32_t p = 0; p < r->q; p++)
		counts[tab[p]]++;
}

/* ---- Comparison ---------------------------------------------------- */

#define CMP(a, b) ((a) < (b) ? -1 : (a) > (b) ? 1 : 0)

/* A length-prefixed string as its encoding sorts: length, then bytes. */
static int
str_cmp(const char *a, const char *b)
{
	size_t la = strlen(a);
	size_t lb = strlen(b);

	if (la != lb)
		return CMP(la, lb);
	return memcmp(a, b, la);
}

static int
owners_cmp(const uint16_t *a, const uint16_t *b, uint32_t q)
{
	for (uint32_t p = 0; p < q; p++)
		if (a[p] != b[p])
			return CMP(a[p], b[p]);
	return 0;
}

/* Field by field in encoding order; every field's byte order is its
 * numeric order (big-endian) or its ordering as a length-prefixed string,
 * so this is the byte order of the two encodings. */
int
ring_cmp(const struct ring *a, const struct ring *b)
{
	int c;

	if (a->epoch != b->epoch)
		return CMP(a->epoch, b->epoch);
	if (a->q != b->q)
		return CMP(a->q, b->q);
	if (a->nm != b->nm)
		return CMP(a->nm, b->nm);
	for (uint32_t i = 0; i < a->nm; i++) {
		if ((c = str_cmp(a->m[i].name, b->m[i].name)) != 0 ||
		    (c = str_cmp(a->m[i].addr, b->m[i].addr)) != 0)
			return c < 0 ? -1 : 1;
	}
	if ((c = owners_cmp(a->cur, b->cur, a->q)) != 0)
		return c;
	if ((a->next != NULL) != (b->next != NULL))
		return a->next != NULL ? 1 : -1;
	return a->next != NULL ? owners_cmp(a->next, b->next, a->q) : 0;
}

bool
ring_equal(const struct ring *a, const struct ring *b)
{
	return ring_cmp(a, b) == 0;
}

bool
ring_newer(const struct ring *a, const struct ring *b)
{
	return ring_cmp(a, b) > 0;
}

/* ---- Encoding ------------------------------------------------------ */

static void
owners_encode(const uint16_t *o, uint32_t q, struct buf *out)
{
	for (uint32_t p = 0; p < q; p++)
		buf_put_u16(out, o[p]);
}

void
ring_encode(const struct ring *r, struct buf *out)
{
	buf_put_u8(out, RING_FORMAT);
	buf_put_u64(out, r->epoch);
	buf_put_u32(out, r->q);
	buf_put_u16(out, (uint16_t)r->nm);
	for (uint32_t i = 0; i < r->nm; i++) {
		size_t ln = strlen(r->m[i].name);
		size_t la = strlen(r->m[i].addr);

		buf_put_u8(out, (uint8_t)ln);
		buf_put(out, r->m[i].name, ln);
		buf_put_u8(out, (uint8_t)la);
		buf_put(out, r->m[i].addr, la);
	}
	owners_encode(r->cur, r->q, out);
	buf_put_u8(out, r->next != NULL);
	if (r->next != NULL)
		owners_encode(r->next, r->q, out);
}

/* A length-prefixed string of 1..max bytes without NUL, copied into dst
 * (which has max + 1 bytes). */
static int
str_decode(struct rd *in, size_t max, char *dst)
{
	const uint8_t *p;
	uint8_t len;
	int rc;

	if ((rc = rd_u8(in, &len)) != 0 || (rc = rd_bytes(in, len, &p)) != 0)
		return rc;
	if (len == 0 || len > max || memchr(p, 0, len) != NULL)
		return DYN_EBADMSG;
	memcpy(dst, p, len);
	dst[len] = '\0';
	return 0;
}

static int
owners_decode(struct rd *in, uint32_t q, uint32_t nm, uint16_t *o)
{
	int rc;

	for (uint32_t p = 0; p < q; p++) {
		if ((rc = rd_u16(in, &o[p])) != 0)
			return rc;
		if (o[p] >= nm)
			return DYN_EBADMSG;
	}
	return 0;
}

int
ring_decode(struct rd *in, struct ring **out)
{
	struct ring *r = NULL;
	uint64_t epoch;
	uint32_t q;
	uint16_t nm;
	uint8_t u8;
	int rc;

	*out = NULL;
	if ((rc = rd_u8(in, &u8)) != 0 || (rc = rd_u64(in, &epoch)) != 0 ||
	    (rc = rd_u32(in, &q)) != 0 || (rc = rd_u16(in, &nm)) != 0)
		goto out;
	/* Check the sizes against what is left before allocating: each
	 * member takes at least 4 bytes, each owner 2, plus the next flag. */
	if (u8 != RING_FORMAT || !q_valid(q) || nm == 0 ||
	    nm > RING_MEMBERS_MAX ||
	    rd_left(in) < (size_t)nm * 4 + (size_t)q * 2 + 1) {
		rc = DYN_EBADMSG;
		goto out;
	}
	if ((rc = ring_alloc(q, nm, &r)) != 0)
		goto out;
	r->epoch = epoch;
	for (uint32_t i = 0; i < nm; i++) {
		if ((rc = str_decode(in, RING_NAME_MAX, r->m[i].name)) != 0 ||
		    (rc = str_decode(in, RING_ADDR_MAX, r->m[i].addr)) != 0)
			goto out;
		if (i > 0 && strcmp(r->m[i - 1].name, r->m[i].name) >= 0) {
			rc = DYN_EBADMSG;
			goto out;
		}
	}
	if ((rc = owners_decode(in, q, nm, r->cur)) != 0 ||
	    (rc = rd_u8(in, &u8)) != 0)
		goto out;
	if (u8 > 1) {
		rc = DYN_EBADMSG;
		goto out;
	}
	if (u8 == 1) {
		if ((r->next = mem_calloc(q, sizeof(*r->next))) == NULL) {
			rc = -ENOMEM;
			goto out;
		}
		if ((rc = owners_decode(in, q, nm, r->next)) != 0)
			goto out;
	}
	if (rd_left(in) != 0) {
		rc = DYN_EBADMSG;
		goto out;
	}
	*out = r;
	r = NULL;
out:
	if (rc != 0)
		in->bad = true;
	ring_free(r);
	return rc;
}
