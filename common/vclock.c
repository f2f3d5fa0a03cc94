/*
 * vclock — bounded version vectors.
 *
 * Entries stay sorted by actor so that lookups are a binary search, merges
 * are a linear walk and two equal clocks encode to the same bytes.  Every
 * operation that can grow a clock ends in clock_truncate(), the one place
 * where the VCLOCK_MAX bound is enforced.
 */
#include "vclock.h"

#include <string.h>

#include "err.h"

/* Room for the union of two full clocks before truncation. */
#define VCLOCK_WORK (2 * VCLOCK_MAX)

/* Index of actor in e[0..n), or of the slot where it would be inserted. */
static uint32_t
entry_find(const struct vclock_entry *e, uint32_t n, uint64_t actor,
           bool *found)
{
	uint32_t lo = 0;
	uint32_t hi = n;

	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;
		if (e[mid].actor < actor)
			lo = mid + 1;
		else
			hi = mid;
	}
	*found = lo < n && e[lo].actor == actor;
	return lo;
}

/* Is a older than b for truncation: oldest ts first, then smallest actor. */
static bool
entry_older(const struct vclock_entry *a, const struct vclock_entry *b)
{
	if (a->ts_ms != b->ts_ms)
		return a->ts_ms < b->ts_ms;
	return a->actor < b->actor;
}

/*
 * Drop the oldest entries until at most VCLOCK_MAX remain.  Removing an
 * entry only forgets history, so versions may look concurrent that were not;
 * never the other way round.
 */
static void
clock_truncate(struct vclock_entry *e, uint32_t *n)
{
	while (*n > VCLOCK_MAX) {
		uint32_t old = 0;
		for (uint32_t i = 1; i < *n; i++) {
			if (entry_older(&e[i], &e[old]))
				old = i;
		}
		memmove(&e[old], &e[old + 1], (*n - old - 1) * sizeof(e[0]));
		(*n)--;
	}
}

/* The merge rule for one actor: larger counter wins, with its ts; on equal
 * counters the later ts is kept. */
static void
entry_join(struct vclock_entry *dst, const struct vclock_entry *src)
{
	if (src->counter > dst->counter) {
		dst->counter = src->counter;
		dst->ts_ms = src->ts_ms;
	} else if (src->counter == dst->counter && src->ts_ms > dst->ts_ms) {
		dst->ts_ms = src->ts_ms;
	}
}

void
vclock_init(struct vclock *c)
{
	memset(c, 0, sizeof(*c));
}

uint64_t
vclock_get(const struct vclock *c, uint64_t actor)
{
	bool found;
	uint32_t i;

	if (c == NULL)
		return 0;
	i = entry_find(c->e, c->n, actor, &found);
	return found ? c->e[i].counter : 0;
}

uint64_t
vclock_top(const struct vclock *c, uint64_t actor)
{
	uint64_t top = vclock_get(c, actor);

	for (uint32_t i = 0; c != NULL && i < c->nd; i++) {
		if (c->d[i].actor == actor && c->d[i].counter > top)
			top = c->d[i].counter;
	}
	return top;
}

int
dot_cmp(const struct dot *a, const struct dot *b)
{
	if (a->actor != b->actor)
		return a->actor < b->actor ? -1 : 1;
	if (a->counter != b->counter)
		return a->counter < b->counter ? -1 : 1;
	return 0;
}

/* Exact dots in dot order (their ts is not part of it). */
static int
dot_order(const struct vclock_entry *a, const struct vclock_entry *b)
{
	struct dot x = {a->actor, a->counter}, y = {b->actor, b->counter};
	return dot_cmp(&x, &y);
}

/* Raise (or add) actor's entry in e[0..*n), which has room for one more;
 * no truncation here. */
static void
entry_raise(struct vclock_entry *e, uint32_t *n, const struct vclock_entry *add)
{
	bool found;
	uint32_t i = entry_find(e, *n, add->actor, &found);

	if (found) {
		entry_join(&e[i], add);
		return;
	}
	memmove(&e[i + 1], &e[i], (*n - i) * sizeof(e[0]));
	e[i] = *add;
	(*n)++;
}

/*
 * Store entries e[0..n) and dots d[0..nd) (sorted, maybe duplicated) in c
 * in normal form: a dot its entry covers is dropped, one that continues
 * its entry is folded into it (in order, so (X, 5) then (X, 6) both fold
 * onto X: 4), the rest stay; then both lists are truncated to their
 * bounds, oldest first.
 */
static void
clock_store(struct vclock *c, struct vclock_entry *e, uint32_t n,
    const struct vclock_entry *d, uint32_t nd)
{
	struct vclock_entry keep[2 * VCLOCK_DOTS_MAX + 1];
	uint32_t nk = 0;

	for (uint32_t i = 0; i < nd; i++) {
		uint64_t have = 0;
		bool found;
		uint32_t at = entry_find(e, n, d[i].actor, &found);
		if (found)
			have = e[at].counter;
		if (d[i].counter <= have)
			continue;
		if (d[i].counter == have + 1) {
			entry_raise(e, &n, &d[i]);
			continue;
		}
		if (nk > 0 && dot_order(&keep[nk - 1], &d[i]) == 0) {
			entry_join(&keep[nk - 1], &d[i]);
			continue;
		}
		keep[nk++] = d[i];
	}
	clock_truncate(e, &n);
	/* A dot whose entry was just dropped has counter >= 2 (a 1 would
	 * have been folded), so it is still in normal form. */
	while (nk > VCLOCK_DOTS_MAX) {
		uint32_t old = 0;
		for (uint32_t i = 1; i < nk; i++) {
			if (entry_older(&keep[i], &keep[old]))
				old = i;
		}
		memmove(&keep[old], &keep[old + 1],
		        (nk - old - 1) * sizeof(keep[0]));
		nk--;
	}
	memcpy(c->e, e, n * sizeof(e[0]));
	c->n = n;
	memcpy(c->d, keep, nk * sizeof(keep[0]));
	c->nd = nk;
}

void
vclock_raise(struct vclock *c, uint64_t actor, uint64_t counter,
             uint64_t ts_ms)
{
	/* Room for every entry plus every dot folded in, before truncation. */
	struct vclock_entry work[VCLOCK_MAX + VCLOCK_DOTS_MAX + 1];
	struct vclock_entry add = {actor, counter, ts_ms};
	struct vclock_entry d[VCLOCK_DOTS_MAX];
	uint32_t n = c->n;
	uint32_t nd = c->nd;

	/* A zero counter is "no event": nothing to record. */
	if (counter == 0)
		return;
	memcpy(work, c->e, n * sizeof(work[0]));
	memcpy(d, c->d, nd * sizeof(d[0]));
	entry_raise(work, &n, &add);
	clock_store(c, work, n, d, nd);
}

void
vclock_add_dot(struct vclock *c, const struct dot *dot, uint64_t ts_ms)
{
	struct vclock_entry work[VCLOCK_MAX + VCLOCK_DOTS_MAX + 1];
	struct vclock_entry d[VCLOCK_DOTS_MAX + 1];
	struct vclock_entry add = {dot->actor, dot->counter, ts_ms};
	uint32_t n = c->n;
	uint32_t nd = 0;
	bool placed = false;

	if (dot->counter == 0 || vclock_covers(c, dot))
		return;
	memcpy(work, c->e, n * sizeof(work[0]));
	for (uint32_t i = 0; i < c->nd; i++) {
		if (!placed && dot_order(&add, &c->d[i]) < 0) {
			d[nd++] = add;
			placed = true;
		}
		d[nd++] = c->d[i];
	}
	if (!placed)
		d[nd++] = add;
	clock_store(c, work, n, d, nd);
}

bool
vclock_covers(const struct vclock *c, const struct dot *d)
{
	if (vclock_get(c, d->actor) >= d->counter)
		return true;
	for (uint32_t i = 0; i < c->nd; i++) {
		if (c->d[i].actor == d->actor && c->d[i].counter == d->counter)
			return true;
	}
	return false;
}

bool
vclock_descends(const struct vclock *a, const struct vclock *b)
{
	/* In normal form a's events of an actor from 1 up are exactly its
	 * entry: no dot can fill a range. */
	for (uint32_t i = 0; i < b->n; i++) {
		if (vclock_get(a, b->e[i].actor) < b->e[i].counter)
			return false;
	}
	for (uint32_t i = 0; i < b->nd; i++) {
		struct dot d = {b->d[i].actor, b->d[i].counter};
		if (!vclock_covers(a, &d))
			return false;
	}
	return true;
}

void
vclock_merge(struct vclock *dst, const struct vclock *src)
{
	struct vclock_entry work[VCLOCK_WORK + 2 * VCLOCK_DOTS_MAX];
	struct vclock_entry d[2 * VCLOCK_DOTS_MAX];
	uint32_t i = 0;
	uint32_t j = 0;
	uint32_t n = 0;
	uint32_t nd = 0;

	while (i < dst->n || j < src->n) {
		if (j == src->n ||
		    (i < dst->n && dst->e[i].actor < src->e[j].actor)) {
			work[n++] = dst->e[i++];
		} else if (i == dst->n || src->e[j].actor < dst->e[i].actor) {
			work[n++] = src->e[j++];
		} else {
			work[n] = dst->e[i++];
			entry_join(&work[n++], &src->e[j++]);
		}
	}
	i = j = 0;
	while (i < dst->nd || j < src->nd) {
		if (j == src->nd ||
		    (i < dst->nd && dot_order(&dst->d[i], &src->d[j]) <= 0))
			d[nd++] = dst->d[i++];
		else
			d[nd++] = src->d[j++];
	}
	clock_store(dst, work, n, d, nd);
}

bool
vclock_equal(const struct vclock *a, const struct vclock *b)
{
	if (a->n != b->n || a->nd != b->nd)
		return false;
	for (uint32_t i = 0; i < a->n; i++) {
		if (a->e[i].actor != b->e[i].actor ||
		    a->e[i].counter != b->e[i].counter)
			return false;
	}
	for (uint32_t i = 0; i < a->nd; i++) {
		if (dot_order(&a->d[i], &b->d[i]) != 0)
			return false;
	}
	return true;
}

static void
entries_encode(const struct vclock_entry *e, uint32_t n, struct buf *out)
{
	buf_put_u16(out, (uint16_t)n);
	for (uint32_t i = 0; i < n; i++) {
		buf_put_u64(out, e[i].actor);
		buf_put_u64(out, e[i].counter);
		buf_put_u64(out, e[i].ts_ms);
	}
}

void
vclock_encode(const struct vclock *c, struct buf *out)
{
	entries_encode(c->e, c->n, out);
	entries_encode(c->d, c->nd, out);
}

/* u16 count (<= max) then the entries, each with a non-zero counter. */
static int
entries_decode(struct rd *in, uint32_t max, struct vclock_entry *e,
    uint32_t *n)
{
	uint16_t cnt;
	int rc;

	if ((rc = rd_u16(in, &cnt)) != 0)
		return rc;
	if (cnt > max)
		return DYN_EBADMSG;
	for (uint32_t i = 0; i < cnt; i++) {
		if ((rc = rd_u64(in, &e[i].actor)) != 0 ||
		    (rc = rd_u64(in, &e[i].counter)) != 0 ||
		    (rc = rd_u64(in, &e[i].ts_ms)) != 0)
			return rc;
		if (e[i].counter == 0)
			return DYN_EBADMSG;
	}
	*n = cnt;
	return 0;
}

int
vclock_decode(struct rd *in, struct vclock *out)
{
	int rc;

	vclock_init(out);
	if ((rc = entries_decode(in, VCLOCK_MAX, out->e, &out->n)) != 0 ||
	    (rc = entries_decode(in, VCLOCK_DOTS_MAX, out->d, &out->nd)) != 0)
		goto out;
	for (uint32_t i = 1; i < out->n && rc == 0; i++) {
		if (out->e[i].actor <= out->e[i - 1].actor)
			rc = DYN_EBADMSG;
	}
	for (uint32_t i = 0; i < out->nd && rc == 0; i++) {
		/* Sorted, unique, and neither covered by nor next to the
		 * entry: one history has one encoding.  counter - 1 (it is
		 * not 0) rather than entry + 1, which wraps at UINT64_MAX. */
		if ((i > 0 && dot_order(&out->d[i - 1], &out->d[i]) >= 0) ||
		    out->d[i].counter - 1 <= vclock_get(out, out->d[i].actor))
			rc = DYN_EBADMSG;
	}
out:
	if (rc != 0) {
		/* Later reads of this input must fail too. */
		in->bad = true;
		vclock_init(out);
	}
	return rc;
}
