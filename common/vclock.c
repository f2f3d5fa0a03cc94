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

void
vclock_raise(struct vclock *c, uint64_t actor, uint64_t counter,
             uint64_t ts_ms)
{
	struct vclock_entry work[VCLOCK_MAX + 1];
	struct vclock_entry add = {actor, counter, ts_ms};
	uint32_t n = c->n;
	bool found;
	uint32_t i;

	/* A zero counter is "no event": nothing to record. */
	if (counter == 0)
		return;
	i = entry_find(c->e, c->n, actor, &found);
	if (found) {
		entry_join(&c->e[i], &add);
		return;
	}
	memcpy(work, c->e, i * sizeof(work[0]));
	work[i] = add;
	memcpy(&work[i + 1], &c->e[i], (n - i) * sizeof(work[0]));
	n++;
	clock_truncate(work, &n);
	memcpy(c->e, work, n * sizeof(work[0]));
	c->n = n;
}

bool
vclock_covers(const struct vclock *c, const struct dot *d)
{
	return vclock_get(c, d->actor) >= d->counter;
}

bool
vclock_descends(const struct vclock *a, const struct vclock *b)
{
	for (uint32_t i = 0; i < b->n; i++) {
		if (vclock_get(a, b->e[i].actor) < b->e[i].counter)
			return false;
	}
	return true;
}

void
vclock_merge(struct vclock *dst, const struct vclock *src)
{
	struct vclock_entry work[VCLOCK_WORK];
	uint32_t i = 0;
	uint32_t j = 0;
	uint32_t n = 0;

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
	clock_truncate(work, &n);
	memcpy(dst->e, work, n * sizeof(work[0]));
	dst->n = n;
}

bool
vclock_equal(const struct vclock *a, const struct vclock *b)
{
	if (a->n != b->n)
		return false;
	for (uint32_t i = 0; i < a->n; i++) {
		if (a->e[i].actor != b->e[i].actor ||
		    a->e[i].counter != b->e[i].counter)
			return false;
	}
	return true;
}

void
vclock_encode(const struct vclock *c, struct buf *out)
{
	buf_put_u16(out, (uint16_t)c->n);
	for (uint32_t i = 0; i < c->n; i++) {
		buf_put_u64(out, c->e[i].actor);
		buf_put_u64(out, c->e[i].counter);
		buf_put_u64(out, c->e[i].ts_ms);
	}
}

int
vclock_decode(struct rd *in, struct vclock *out)
{
	uint16_t n;
	int rc;

	vclock_init(out);
	if ((rc = rd_u16(in, &n)) != 0)
		goto out;
	if (n > VCLOCK_MAX) {
		rc = DYN_EBADMSG;
		goto out;
	}
	for (uint32_t i = 0; i < n; i++) {
		struct vclock_entry *e = &out->e[i];
		if ((rc = rd_u64(in, &e->actor)) != 0 ||
		    (rc = rd_u64(in, &e->counter)) != 0 ||
		    (rc = rd_u64(in, &e->ts_ms)) != 0)
			goto out;
		if (e->counter == 0 ||
		    (i > 0 && e->actor <= out->e[i - 1].actor)) {
			rc = DYN_EBADMSG;
			goto out;
		}
	}
	out->n = n;
out:
	if (rc != 0) {
		/* Later reads of this input must fail too. */
		in->bad = true;
		vclock_init(out);
	}
	return rc;
}
