/*
 * vset — version sets with dotted version vectors.
 *
 * Every function that changes a set builds the new version array first and
 * swaps it in only once nothing can fail any more, so an error (-ENOMEM,
 * DYN_ETOOBIG) always leaves the caller's set as it was.
 *
 * The obsolescence rule is applied to the whole union of a merge, not to a
 * running result, so merging A into B and B into A keep the same versions;
 * with the array kept sorted by dot, they also encode to the same bytes.
 */
#include "vset.h"

#include <errno.h>
#include <string.h>

#include "err.h"
#include "mem.h"

/* Smallest encoding of one version: dot, ts, flags, empty past (no
 * entries, no dots), empty value.  Lets the decoder refuse a huge count
 * before allocating for it. */
#define VERSION_MIN_WIRE (8 + 8 + 8 + 1 + 2 + 2 + 4)

#define VERSION_F_TOMBSTONE 0x01u

static int
u64_cmp(uint64_t a, uint64_t b)
{
	return a < b ? -1 : a > b ? 1 : 0;
}

static int
entries_cmp(const struct vclock_entry *x, uint32_t nx,
    const struct vclock_entry *y, uint32_t ny)
{
	int c;

	if ((c = u64_cmp(nx, ny)) != 0)
		return c;
	for (uint32_t i = 0; i < nx; i++) {
		if ((c = u64_cmp(x[i].actor, y[i].actor)) != 0 ||
		    (c = u64_cmp(x[i].counter, y[i].counter)) != 0 ||
		    (c = u64_cmp(x[i].ts_ms, y[i].ts_ms)) != 0)
			return c;
	}
	return 0;
}

/*
 * A total order on everything but the dot.  Two versions with one dot are
 * the same write and should be identical; if a buggy or hostile peer sends a
 * different one, both replicas must still keep the same copy, so the greater
 * one in this order wins.
 */
static int
version_content_cmp(const struct version *a, const struct version *b)
{
	int c;

	if ((c = u64_cmp(a->ts_ms, b->ts_ms)) != 0)
		return c;
	if (a->tombstone != b->tombstone)
		return a->tombstone ? 1 : -1;
	if ((c = u64_cmp(a->len, b->len)) != 0)
		return c;
	if (a->len > 0 && (c = memcmp(a->value, b->value, a->len)) != 0)
		return c < 0 ? -1 : 1;
	if ((c = entries_cmp(a->past.e, a->past.n, b->past.e, b->past.n)) != 0)
		return c;
	return entries_cmp(a->past.d, a->past.nd, b->past.d, b->past.nd);
}

/* Free the values of v[0..n) and the array itself. */
static void
versions_free(struct version *v, uint32_t n)
{
	if (v == NULL)
		return;
	for (uint32_t i = 0; i < n; i++)
		version_fini(&v[i]);
	mem_free(v);
}

void
vset_init(struct vset *s)
{
	s->n = 0;
	s->v = NULL;
}

void
vset_fini(struct vset *s)
{
	if (s == NULL)
		return;
	versions_free(s->v, s->n);
	vset_init(s);
}

int
version_copy(struct version *dst, const struct version *src)
{
	*dst = *src;
	dst->value = NULL;
	if (src->len == 0)
		return 0;
	dst->value = mem_dup(src->value, src->len);
	if (dst->value == NULL) {
		dst->len = 0;
		return -ENOMEM;
	}
	return 0;
}

void
version_fini(struct version *v)
{
	if (v == NULL)
		return;
	mem_free(v->value);
	v->value = NULL;
	v->len = 0;
}

int
vset_copy(struct vset *dst, const struct vset *src)
{
	struct version *v = NULL;
	uint32_t done = 0;
	int rc = 0;

	if (dst == src)
		return 0;
	if (src->n > 0) {
		v = mem_calloc(src->n, sizeof(v[0]));
		if (v == NULL) {
			rc = -ENOMEM;
			goto out;
		}
	}
	for (; done < src->n; done++) {
		if ((rc = version_copy(&v[done], &src->v[done])) != 0)
			goto out;
	}
	vset_fini(dst);
	dst->v = v;
	dst->n = src->n;
	v = NULL;
out:
	versions_free(v, done);
	return rc;
}

int
vset_put(struct vset *s, const struct vclock *ctx, uint64_t actor,
         uint64_t now_ms, const void *value, size_t len, bool tombstone,
         const struct version **newv)
{
	struct version nv = {.dot.actor = actor, .ts_ms = now_ms};
	struct version *v = NULL;
	uint64_t top = vclock_top(ctx, actor);
	uint32_t keep = 0;
	uint32_t j = 0;
	uint32_t at = 0;
	bool placed = false;
	int rc = 0;

	if (len > 0 && value == NULL)
		return -EINVAL;
	/* The new counter must be above every event of actor this object
	 * knows of, so the dot is fresh even when ctx is stale or absent. */
	for (uint32_t i = 0; i < s->n; i++) {
		const struct version *o = &s->v[i];
		uint64_t p = vclock_top(&o->past, actor);
		if (o->dot.actor == actor && o->dot.counter > top)
			top = o->dot.counter;
		if (p > top)
			top = p;
		if (ctx == NULL || !vclock_covers(ctx, &o->dot))
			keep++;
	}
	if (top == UINT64_MAX)
		return -EOVERFLOW;
	if (keep + 1 > VSET_MAX_VERSIONS)
		return DYN_ETOOBIG;
	nv.dot.counter = top + 1;
	if (ctx != NULL)
		nv.past = *ctx;
	else
		vclock_init(&nv.past);
	nv.tombstone = tombstone;
	if (len > 0) {
		nv.value = mem_dup(value, len);
		if (nv.value == NULL) {
			rc = -ENOMEM;
			goto out;
		}
		nv.len = len;
	}
	v = mem_calloc(keep + 1, sizeof(v[0]));
	if (v == NULL) {
		rc = -ENOMEM;
		goto out;
	}

	/* Nothing can fail from here: move the survivors, drop the rest. */
	for (uint32_t i = 0; i < s->n; i++) {
		struct version *o = &s->v[i];
		if (ctx != NULL && vclock_covers(ctx, &o->dot)) {
			version_fini(o);
			continue;
		}
		if (!placed && dot_cmp(&nv.dot, &o->dot) < 0) {
			at = j++;
			placed = true;
		}
		v[j++] = *o;
	}
	if (!placed)
		at = j;
	v[at] = nv;
	nv.value = NULL;
	mem_free(s->v);
	s->v = v;
	s->n = keep + 1;
	if (newv != NULL)
		*newv = &s->v[at];
out:
	mem_free(nv.value);
	return rc;
}

/*
 * One member of a merge's union: the version kept for a dot, and dst's
 * version of that dot if it has one (to move or free once nothing can fail).
 */
struct member {
	const struct version *v;
	struct version *dstv;
	bool dead;
};

int
vset_merge(struct vset *dst, const struct vset *src)
{
	struct member *u = NULL;
	struct version *v = NULL;
	uint32_t nu = 0;
	uint32_t nres = 0;
	bool changed = false;
	int rc = 0;

	if (dst == src || src->n == 0)
		return 0;
	u = mem_calloc((size_t)dst->n + src->n, sizeof(u[0]));
	if (u == NULL)
		return -ENOMEM;

	/* Union by dot: both arrays are sorted, so walk them together. */
	for (uint32_t i = 0, j = 0; i < dst->n || j < src->n;) {
		int c;
		if (j == src->n)
			c = -1;
		else if (i == dst->n)
			c = 1;
		else
			c = dot_cmp(&dst->v[i].dot, &src->v[j].dot);
		if (c < 0) {
			u[nu].v = u[nu].dstv = &dst->v[i++];
		} else if (c > 0) {
			u[nu].v = &src->v[j++];
		} else {
			/* Same dot, same write: keep dst's unless src's
			 * differs and wins the tie-break. */
			u[nu].dstv = &dst->v[i];
			if (version_content_cmp(&src->v[j], &dst->v[i]) > 0)
				u[nu].v = &src->v[j];
			else
				u[nu].v = &dst->v[i];
			i++;
			j++;
		}
		nu++;
	}

	/* Obsolete: another member of the union has seen the dot.  The
	 * survivors from dst keep dst's order, so if all survivors are dst's
	 * own versions and there are as many as before, nothing changed. */
	for (uint32_t i = 0; i < nu; i++) {
		for (uint32_t k = 0; k < nu && !u[i].dead; k++) {
			if (k != i &&
			    vclock_covers(&u[k].v->past, &u[i].v->dot))
				u[i].dead = true;
		}
		if (!u[i].dead) {
			nres++;
			if (u[i].v != u[i].dstv)
				changed = true;
		}
	}
	if (nres != dst->n)
		changed = true;
	if (!changed)
		goto out;
	if (nres > VSET_MAX_VERSIONS) {
		rc = DYN_ETOOBIG;
		goto out;
	}

	/* Copy what comes from src; the slots for dst's survivors stay zero
	 * (value NULL) so that a failure can free every slot. */
	v = mem_calloc(nres, sizeof(v[0]));
	if (v == NULL) {
		rc = -ENOMEM;
		goto out;
	}
	for (uint32_t i = 0, k = 0; i < nu; i++) {
		if (u[i].dead)
			continue;
		if (u[i].v != u[i].dstv &&
		    (rc = version_copy(&v[k], u[i].v)) != 0)
			goto out;
		k++;
	}

	/* Nothing can fail from here: move dst's survivors, free the rest. */
	for (uint32_t i = 0, k = 0; i < nu; i++) {
		bool keep = !u[i].dead && u[i].v == u[i].dstv;
		if (keep)
			v[k] = *u[i].dstv;
		else if (u[i].dstv != NULL)
			version_fini(u[i].dstv);
		if (!u[i].dead)
			k++;
	}
	mem_free(dst->v);
	dst->v = v;
	dst->n = nres;
	v = NULL;
	rc = 1;
out:
	versions_free(v, nres);
	mem_free(u);
	return rc;
}

void
vset_context(const struct vset *s, struct vclock *out)
{
	vclock_init(out);
	for (uint32_t i = 0; i < s->n; i++) {
		struct vclock c;
		version_context(&s->v[i], &c);
		vclock_merge(out, &c);
	}
}

/* The version's own dot is added exactly: the context names this version,
 * not its coordinator's other writes (a sibling (X, 6) next to this (X, 7)
 * stays unseen, so a put under this context keeps it). */
void
version_context(const struct version *v, struct vclock *out)
{
	/* The dot goes in as the newest, whatever the clocks of the nodes
	 * that made the past's dots said: when the past is full, another dot
	 * is dropped, never this one (the context must cover its version). */
	uint64_t ts = v->ts_ms;
	for (uint32_t i = 0; i < v->past.nd; i++) {
		if (v->past.d[i].ts_ms > ts)
			ts = v->past.d[i].ts_ms;
	}
	*out = v->past;
	vclock_add_dot(out, &v->dot, ts);
}

uint32_t
vset_live(const struct vset *s)
{
	uint32_t live = 0;

	for (uint32_t i = 0; i < s->n; i++) {
		if (!s->v[i].tombstone)
			live++;
	}
	return live;
}

/* Is dot d one of s's versions?  s is sorted, so binary search. */
static bool
vset_has_dot(const struct vset *s, const struct dot *d)
{
	uint32_t lo = 0;
	uint32_t hi = s->n;

	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;
		int c = dot_cmp(&s->v[mid].dot, d);
		if (c == 0)
			return true;
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return false;
}

bool
vset_contains(const struct vset *a, const struct vset *b)
{
	for (uint32_t i = 0; i < b->n; i++) {
		const struct dot *d = &b->v[i].dot;
		bool seen = vset_has_dot(a, d);
		for (uint32_t k = 0; k < a->n && !seen; k++)
			seen = vclock_covers(&a->v[k].past, d);
		if (!seen)
			return false;
	}
	return true;
}

void
vset_encode(const struct vset *s, struct buf *out)
{
	buf_put_u32(out, s->n);
	for (uint32_t i = 0; i < s->n; i++) {
		const struct version *v = &s->v[i];
		buf_put_u64(out, v->dot.actor);
		buf_put_u64(out, v->dot.counter);
		buf_put_u64(out, v->ts_ms);
		buf_put_u8(out, v->tombstone ? VERSION_F_TOMBSTONE : 0);
		vclock_encode(&v->past, out);
		buf_put_blob(out, v->value, v->len);
	}
}

int
vset_decode(struct rd *in, size_t max_value, struct vset *out)
{
	struct version *v = NULL;
	uint32_t n = 0;
	uint32_t done = 0;
	int rc;

	vset_init(out);
	if ((rc = rd_u32(in, &n)) != 0)
		goto out;
	if (n > VSET_MAX_VERSIONS ||
	    (size_t)n * VERSION_MIN_WIRE > rd_left(in)) {
		rc = DYN_EBADMSG;
		goto out;
	}
	if (n == 0)
		goto out;
	v = mem_calloc(n, sizeof(v[0]));
	if (v == NULL) {
		rc = -ENOMEM;
		goto out;
	}
	for (; done < n; done++) {
		struct version *x = &v[done];
		const uint8_t *p;
		uint8_t flags;

		if ((rc = rd_u64(in, &x->dot.actor)) != 0 ||
		    (rc = rd_u64(in, &x->dot.counter)) != 0 ||
		    (rc = rd_u64(in, &x->ts_ms)) != 0 ||
		    (rc = rd_u8(in, &flags)) != 0 ||
		    (rc = vclock_decode(in, &x->past)) != 0 ||
		    (rc = rd_blob(in, max_value, &p, &x->len)) != 0)
			goto out;
		/* A zero counter is no event; a version whose own past
		 * covers its dot would be its own ancestor. */
		if ((flags & ~VERSION_F_TOMBSTONE) != 0 ||
		    x->dot.counter == 0 || vclock_covers(&x->past, &x->dot) ||
		    (done > 0 && dot_cmp(&v[done - 1].dot, &x->dot) >= 0)) {
			x->len = 0;
			rc = DYN_EBADMSG;
			goto out;
		}
		x->tombstone = (flags & VERSION_F_TOMBSTONE) != 0;
		if (x->len > 0) {
			x->value = mem_dup(p, x->len);
			if (x->value == NULL) {
				x->len = 0;
				rc = -ENOMEM;
				goto out;
			}
		}
	}
	out->v = v;
	out->n = n;
	v = NULL;
out:
	if (rc == DYN_EBADMSG)
		in->bad = true;
	/* Entries past done are zeroed by calloc, so freeing all is safe. */
	versions_free(v, n);
	return rc;
}
