/*
 * Unit tests for vset: the dotted-version-vector rules (siblings from blind
 * puts, supersession by context), merge laws, the codec and its checks,
 * out-of-memory paths, and a randomized multi-replica history that checks
 * no concurrent write is ever lost.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "buf.h"
#include "err.h"
#include "mem.h"
#include "testmem.h"
#include "vclock.h"
#include "vset.h"

/* ---- helpers ---- */

static const struct version *
put(struct vset *s, const struct vclock *ctx, uint64_t actor, uint64_t now,
    const char *val)
{
	const struct version *nv = NULL;
	bool tomb = val == NULL;
	size_t len = tomb ? 0 : strlen(val);

	assert_int_equal(vset_put(s, ctx, actor, now, val, len, tomb, &nv), 0);
	assert_non_null(nv);
	assert_int_equal(nv->dot.actor, actor);
	assert_int_equal(nv->ts_ms, now);
	assert_int_equal(nv->tombstone, tomb);
	return nv;
}

static const struct version *
find(const struct vset *s, uint64_t actor, uint64_t counter)
{
	for (uint32_t i = 0; i < s->n; i++) {
		if (s->v[i].dot.actor == actor &&
		    s->v[i].dot.counter == counter)
			return &s->v[i];
	}
	return NULL;
}

static bool
has_value(const struct vset *s, const char *val)
{
	size_t len = strlen(val);

	for (uint32_t i = 0; i < s->n; i++) {
		if (!s->v[i].tombstone && s->v[i].len == len &&
		    memcmp(s->v[i].value, val, len) == 0)
			return true;
	}
	return false;
}

static void
assert_sorted(const struct vset *s)
{
	for (uint32_t i = 1; i < s->n; i++) {
		const struct dot *a = &s->v[i - 1].dot;
		const struct dot *b = &s->v[i].dot;
		assert_true(a->actor < b->actor ||
		            (a->actor == b->actor && a->counter < b->counter));
	}
}

/* The encodings of a and b are identical. */
static void
assert_same(const struct vset *a, const struct vset *b)
{
	struct buf x;
	struct buf y;

	buf_init(&x);
	buf_init(&y);
	vset_encode(a, &x);
	vset_encode(b, &y);
	assert_int_equal(buf_err(&x), 0);
	assert_int_equal(buf_err(&y), 0);
	assert_int_equal(x.len, y.len);
	assert_memory_equal(x.data, y.data, x.len);
	buf_fini(&x);
	buf_fini(&y);
}

/* ---- put semantics ---- */

static void
test_put_first(void **state)
{
	struct vset s;
	struct vclock ctx;
	const struct version *nv;

	(void)state;
	vset_init(&s);
	vset_context(&s, &ctx);
	assert_int_equal(ctx.n, 0);
	nv = put(&s, NULL, 7, 1000, "hello");
	assert_int_equal(s.n, 1);
	assert_int_equal(nv->dot.counter, 1);
	assert_int_equal(nv->past.n, 0);
	assert_int_equal(nv->len, 5);
	assert_memory_equal(nv->value, "hello", 5);

	vset_context(&s, &ctx);
	assert_int_equal(ctx.n, 1);
	assert_int_equal(vclock_get(&ctx, 7), 1);
	assert_int_equal(ctx.e[0].ts_ms, 1000);

	/* A put with the read's context replaces it. */
	nv = put(&s, &ctx, 7, 2000, "world");
	assert_int_equal(s.n, 1);
	assert_int_equal(nv->dot.counter, 2);
	assert_true(vclock_equal(&nv->past, &ctx));
	assert_true(has_value(&s, "world"));
	vset_fini(&s);
	vset_fini(&s); /* harmless twice */
}

static void
test_blind_puts_same_actor(void **state)
{
	struct vset s;

	(void)state;
	vset_init(&s);
	put(&s, NULL, 1, 10, "a");
	put(&s, NULL, 1, 20, "b");
	/* Plain vector clocks would let "b" replace "a". */
	assert_int_equal(s.n, 2);
	assert_non_null(find(&s, 1, 1));
	assert_non_null(find(&s, 1, 2));
	assert_true(has_value(&s, "a"));
	assert_true(has_value(&s, "b"));
	assert_int_equal(vset_live(&s), 2);
	assert_sorted(&s);
	vset_fini(&s);
}

static void
test_blind_puts_different_actors(void **state)
{
	struct vset a;
	struct vset b;
	struct vset s;

	(void)state;
	/* Through one set. */
	vset_init(&s);
	put(&s, NULL, 2, 10, "x");
	put(&s, NULL, 1, 20, "y");
	assert_int_equal(s.n, 2);
	assert_sorted(&s);
	assert_non_null(find(&s, 1, 1));
	assert_non_null(find(&s, 2, 1));

	/* On two replicas, then merged both ways. */
	vset_init(&a);
	vset_init(&b);
	put(&a, NULL, 1, 10, "x");
	put(&b, NULL, 2, 10, "y");
	assert_int_equal(vset_merge(&a, &b), 1);
	assert_int_equal(vset_merge(&b, &a), 1);
	assert_int_equal(a.n, 2);
	assert_true(has_value(&a, "x"));
	assert_true(has_value(&a, "y"));
	assert_same(&a, &b);
	vset_fini(&a);
	vset_fini(&b);
	vset_fini(&s);
}

static void
test_put_merged_context(void **state)
{
	struct vset s;
	struct vclock ctx;
	const struct version *nv;

	(void)state;
	vset_init(&s);
	put(&s, NULL, 1, 10, "a");
	put(&s, NULL, 1, 20, "b");
	put(&s, NULL, 2, 30, "c");
	assert_int_equal(s.n, 3);
	vset_context(&s, &ctx);
	assert_int_equal(vclock_get(&ctx, 1), 2);
	assert_int_equal(vclock_get(&ctx, 2), 1);
	/* Through an actor that has not written yet. */
	nv = put(&s, &ctx, 3, 40, "merged");
	assert_int_equal(s.n, 1);
	assert_int_equal(nv->dot.actor, 3);
	assert_int_equal(nv->dot.counter, 1);
	assert_true(has_value(&s, "merged"));
	vset_fini(&s);
}

static void
test_put_old_context(void **state)
{
	struct vset r1;
	struct vset r2;
	struct vclock old;
	const struct version *nv;

	(void)state;
	vset_init(&r1);
	put(&r1, NULL, 1, 10, "base");
	vset_context(&r1, &old);
	vset_init(&r2);
	assert_int_equal(vset_copy(&r2, &r1), 0);

	/* Two writers who both read "base" write concurrently. */
	put(&r1, &old, 1, 20, "left");
	put(&r2, &old, 2, 20, "right");
	assert_int_equal(vset_merge(&r1, &r2), 1);
	assert_int_equal(r1.n, 2);
	assert_false(has_value(&r1, "base"));

	/* A third writer with the same old context sees neither. */
	nv = put(&r1, &old, 1, 30, "third");
	assert_int_equal(nv->dot.counter, 3);
	assert_int_equal(r1.n, 3);
	assert_true(has_value(&r1, "left"));
	assert_true(has_value(&r1, "right"));
	assert_true(has_value(&r1, "third"));

	/* Same through the other actor. */
	nv = put(&r2, &old, 2, 30, "fourth");
	assert_int_equal(nv->dot.counter, 2);
	assert_int_equal(r2.n, 2);
	assert_int_equal(vset_merge(&r1, &r2), 1);
	assert_int_equal(r1.n, 4);
	vset_fini(&r1);
	vset_fini(&r2);
}

/*
 * The context a put hands back (version_context of the new version) names
 * that version, not all of its coordinator's writes.  Writers 1 and 2 both
 * read v0 and put through the same actor X: (X, k) and (X, k+1), siblings.
 * Writer 2 then puts again under its own version's context; a context that
 * claimed X's events up to k+1 would delete writer 1's version unseen.
 * prior: how many writes X coordinated before v0 (all seen by v0).
 */
static void
own_context_case(unsigned prior)
{
	enum { A = 0xa, X = 0x58 };
	struct vset s;
	struct vclock c0;
	struct vclock c2;
	struct vclock all;
	const struct version *nv;
	struct dot w1;
	struct dot w2;

	vset_init(&s);
	for (unsigned i = 0; i < prior; i++) {
		vset_context(&s, &c0);
		put(&s, &c0, X, 1 + i, "early");
	}
	vset_context(&s, &c0);
	nv = put(&s, &c0, A, 10, "v0");
	assert_int_equal(nv->dot.counter, 1);
	assert_int_equal(s.n, 1);
	vset_context(&s, &c0);

	nv = put(&s, &c0, X, 20, "w1");
	w1 = nv->dot;
	assert_int_equal(w1.counter, prior + 1);
	assert_int_equal(s.n, 1); /* v0 is gone, w1 saw it */
	nv = put(&s, &c0, X, 30, "w2");
	w2 = nv->dot;
	assert_int_equal(w2.counter, w1.counter + 1);
	assert_int_equal(s.n, 2); /* w2 did not see w1 */

	/* Writer 2's context: its version and what it had read. */
	version_context(nv, &c2);
	assert_true(vclock_covers(&c2, &w2));
	assert_false(vclock_covers(&c2, &w1));
	assert_true(vclock_covers(&c2, &(struct dot){A, 1}));
	assert_true(vclock_descends(&c2, &c0));

	nv = put(&s, &c2, X, 40, "w2-again");
	assert_int_equal(nv->dot.counter, w2.counter + 1);
	assert_int_equal(s.n, 2);
	assert_int_equal(vset_live(&s), 2);
	assert_non_null(find(&s, X, w1.counter));
	assert_null(find(&s, X, w2.counter));
	assert_true(has_value(&s, "w1"));
	assert_true(has_value(&s, "w2-again"));
	assert_false(has_value(&s, "w2"));
	assert_sorted(&s);

	/* A read of both may replace both; its context folds to X's
	 * entry again. */
	vset_context(&s, &all);
	assert_int_equal(vclock_get(&all, X), w2.counter + 1);
	assert_int_equal(all.nd, 0);
	put(&s, &all, X, 50, "resolved");
	assert_int_equal(s.n, 1);
	assert_true(has_value(&s, "resolved"));
	vset_fini(&s);
}

static void
test_put_own_context(void **state)
{
	(void)state;
	own_context_case(0);
	own_context_case(3);
}

/* Remove the version with dot (actor, counter), as from a replica that
 * never got it. */
static void
drop_version(struct vset *s, uint64_t actor, uint64_t counter)
{
	for (uint32_t i = 0; i < s->n; i++) {
		if (s->v[i].dot.actor == actor &&
		    s->v[i].dot.counter == counter) {
			version_fini(&s->v[i]);
			memmove(&s->v[i], &s->v[i + 1],
			        (s->n - i - 1) * sizeof(s->v[0]));
			s->n--;
			return;
		}
	}
	fail();
}

/*
 * Three concurrent puts under one context through X give (X, 1), (X, 2)
 * and (X, 3); replica r got (X, 1) and (X, 3) but not (X, 2).  r's read
 * context must not cover (X, 2): a put under it keeps that sibling.
 */
static void
test_context_missing_sibling(void **state)
{
	enum { A = 0xa, B = 0xb, X = 0x58 };
	struct vset s;
	struct vset r;
	struct vclock c0;
	struct vclock full;
	struct vclock ctx;
	struct dot x1 = {X, 1};
	struct dot x2 = {X, 2};
	struct dot x3 = {X, 3};

	(void)state;
	vset_init(&s);
	vset_init(&r);
	put(&s, NULL, A, 10, "v0");
	vset_context(&s, &c0);
	put(&s, &c0, X, 20, "x1");
	put(&s, &c0, X, 30, "x2");
	put(&s, &c0, X, 40, "x3");
	assert_int_equal(s.n, 3);
	/* With all three seen, the holes fold away. */
	vset_context(&s, &full);
	assert_int_equal(vclock_get(&full, X), 3);
	assert_int_equal(full.nd, 0);

	assert_int_equal(vset_copy(&r, &s), 0);
	drop_version(&r, X, 2);
	assert_int_equal(r.n, 2);
	vset_context(&r, &ctx);
	assert_true(vclock_covers(&ctx, &x1));
	assert_false(vclock_covers(&ctx, &x2));
	assert_true(vclock_covers(&ctx, &x3));
	assert_true(vclock_covers(&ctx, &(struct dot){A, 1}));
	assert_int_equal(vclock_get(&ctx, X), 1);
	assert_int_equal(vclock_top(&ctx, X), 3);
	assert_int_equal(ctx.nd, 1);
	assert_true(vclock_descends(&full, &ctx));
	assert_false(vclock_descends(&ctx, &full));

	/* On the replica that has (X, 2), a put under r's context keeps it
	 * and takes a fresh counter. */
	const struct version *nv = put(&s, &ctx, X, 50, "over-r");
	assert_int_equal(nv->dot.counter, 4);
	assert_int_equal(s.n, 2);
	assert_non_null(find(&s, X, 2));
	assert_true(has_value(&s, "x2"));
	/* On r, through another actor; then the replicas sync. */
	put(&r, &ctx, B, 60, "on-r");
	assert_int_equal(r.n, 1);
	assert_int_equal(vset_merge(&r, &s), 1);
	assert_int_equal(r.n, 3);
	assert_true(has_value(&r, "x2"));
	assert_true(has_value(&r, "over-r"));
	assert_true(has_value(&r, "on-r"));
	assert_int_equal(vset_merge(&s, &r), 1);
	assert_same(&s, &r);
	vset_fini(&s);
	vset_fini(&r);
}

static void
test_put_counter(void **state)
{
	struct vset s;
	struct vclock ctx;
	const struct version *nv;

	(void)state;
	vset_init(&s);
	/* The context knows more of actor 1 than the set does. */
	vclock_init(&ctx);
	vclock_raise(&ctx, 1, 5, 1);
	nv = put(&s, &ctx, 1, 10, "a");
	assert_int_equal(nv->dot.counter, 6);
	/* A version's past knows more than its dots. */
	nv = put(&s, NULL, 2, 20, "b");
	assert_int_equal(nv->dot.counter, 1);
	nv = put(&s, NULL, 3, 20, "c");
	vclock_init(&ctx);
	vclock_raise(&ctx, 2, 9, 1);
	nv = put(&s, &ctx, 3, 30, "d"); /* past {2:9} removes (2,1) */
	assert_int_equal(nv->dot.counter, 2);
	nv = put(&s, NULL, 2, 40, "e");
	assert_int_equal(nv->dot.counter, 10);
	vset_fini(&s);
}

static void
test_tombstones(void **state)
{
	struct vset s;
	struct vclock ctx;
	const struct version *nv;

	(void)state;
	vset_init(&s);
	put(&s, NULL, 1, 10, "a");
	vset_context(&s, &ctx);
	nv = put(&s, &ctx, 1, 20, NULL);
	assert_true(nv->tombstone);
	assert_null(nv->value);
	assert_int_equal(nv->len, 0);
	assert_int_equal(s.n, 1);
	assert_int_equal(vset_live(&s), 0);
	/* Still has a context. */
	vset_context(&s, &ctx);
	assert_int_equal(vclock_get(&ctx, 1), 2);

	/* A concurrent write survives the delete. */
	put(&s, NULL, 2, 30, "b");
	assert_int_equal(s.n, 2);
	assert_int_equal(vset_live(&s), 1);

	/* A put with the context resurrects the key. */
	vset_context(&s, &ctx);
	put(&s, &ctx, 1, 40, "c");
	assert_int_equal(s.n, 1);
	assert_int_equal(vset_live(&s), 1);
	vset_fini(&s);
}

static void
test_put_too_many(void **state)
{
	struct vset s;
	char val[16];

	(void)state;
	vset_init(&s);
	for (uint32_t i = 0; i < VSET_MAX_VERSIONS; i++) {
		snprintf(val, sizeof(val), "%u", i);
		assert_int_equal(vset_put(&s, NULL, i % 3, i, val, strlen(val),
		                          false, NULL),
		                 0);
	}
	assert_int_equal(s.n, VSET_MAX_VERSIONS);
	assert_int_equal(vset_put(&s, NULL, 1, 1, "x", 1, false, NULL),
	                 DYN_ETOOBIG);
	assert_int_equal(s.n, VSET_MAX_VERSIONS);
	/* A put that replaces some is fine. */
	struct vclock ctx;
	vset_context(&s, &ctx);
	assert_int_equal(vset_put(&s, &ctx, 1, 1, "x", 1, false, NULL), 0);
	assert_int_equal(s.n, 1);
	assert_int_equal(vset_put(&s, NULL, 1, 1, NULL, 3, false, NULL),
	                 -EINVAL);
	vset_fini(&s);
}

/* ---- merge ---- */

/* Two replicas with a shared past and concurrent edits on both. */
static void
build_pair(struct vset *a, struct vset *b)
{
	struct vclock ctx;

	vset_init(a);
	vset_init(b);
	put(a, NULL, 1, 10, "v1");
	put(a, NULL, 1, 11, "v2");
	assert_int_equal(vset_copy(b, a), 0);
	vset_context(a, &ctx);
	put(a, &ctx, 1, 20, "a-new");
	put(a, NULL, 3, 21, NULL);
	put(b, &ctx, 2, 22, "b-new");
	put(b, NULL, 2, 23, "b-blind");
}

static void
test_merge_laws(void **state)
{
	struct vset a;
	struct vset b;
	struct vset ab;
	struct vset ba;
	struct vset empty;

	(void)state;
	build_pair(&a, &b);
	vset_init(&ab);
	vset_init(&ba);
	vset_init(&empty);
	assert_int_equal(vset_copy(&ab, &a), 0);
	assert_int_equal(vset_copy(&ba, &b), 0);

	/* Commutative. */
	assert_int_equal(vset_merge(&ab, &b), 1);
	assert_int_equal(vset_merge(&ba, &a), 1);
	assert_same(&ab, &ba);
	assert_sorted(&ab);
	assert_int_equal(ab.n, 4);
	assert_false(has_value(&ab, "v1"));
	assert_false(has_value(&ab, "v2"));
	assert_true(has_value(&ab, "a-new"));
	assert_true(has_value(&ab, "b-new"));
	assert_true(has_value(&ab, "b-blind"));
	assert_int_equal(vset_live(&ab), 3);

	/* Idempotent, and merging what it already holds changes nothing. */
	assert_int_equal(vset_merge(&ab, &ba), 0);
	assert_int_equal(vset_merge(&ab, &ab), 0);
	assert_int_equal(vset_merge(&ab, &a), 0);
	assert_int_equal(vset_merge(&ab, &b), 0);
	assert_int_equal(vset_merge(&ab, &empty), 0);
	assert_same(&ab, &ba);

	/* Merging into an empty set copies. */
	assert_int_equal(vset_merge(&empty, &ab), 1);
	assert_same(&empty, &ab);

	/* contains */
	assert_true(vset_contains(&ab, &a));
	assert_true(vset_contains(&ab, &b));
	assert_true(vset_contains(&ab, &ab));
	assert_false(vset_contains(&a, &b));
	assert_false(vset_contains(&b, &a));
	assert_false(vset_contains(&a, &ab));

	vset_fini(&a);
	vset_fini(&b);
	vset_fini(&ab);
	vset_fini(&ba);
	vset_fini(&empty);
}

static void
test_merge_obsolete(void **state)
{
	struct vset old;
	struct vset cur;
	struct vclock ctx;

	(void)state;
	vset_init(&old);
	put(&old, NULL, 1, 10, "a");
	put(&old, NULL, 2, 10, "b");
	vset_init(&cur);
	assert_int_equal(vset_copy(&cur, &old), 0);
	vset_context(&cur, &ctx);
	put(&cur, &ctx, 3, 20, "c");

	/* Old versions are obsolete: nothing to add. */
	assert_true(vset_contains(&cur, &old));
	assert_int_equal(vset_merge(&cur, &old), 0);
	assert_int_equal(cur.n, 1);
	/* The other way, old is replaced entirely. */
	assert_int_equal(vset_merge(&old, &cur), 1);
	assert_same(&old, &cur);
	vset_fini(&old);
	vset_fini(&cur);
}

static void
test_merge_same_dot(void **state)
{
	struct vset a;
	struct vset b;
	struct vset ab;

	(void)state;
	/* A forged or corrupt copy of one dot: both sides keep the same. */
	vset_init(&a);
	vset_init(&b);
	vset_init(&ab);
	put(&a, NULL, 1, 10, "one");
	put(&b, NULL, 1, 10, "two");
	assert_int_equal(vset_copy(&ab, &a), 0);
	assert_int_equal(vset_merge(&ab, &b), 1);
	assert_int_equal(vset_merge(&b, &a), 0);
	assert_int_equal(ab.n, 1);
	assert_same(&ab, &b);
	vset_fini(&a);
	vset_fini(&b);
	vset_fini(&ab);
}

static void
test_context(void **state)
{
	struct vset s;
	struct vclock ctx;
	struct vclock want;

	(void)state;
	vset_init(&s);
	put(&s, NULL, 1, 10, "a");
	vset_context(&s, &ctx);
	put(&s, &ctx, 2, 20, "b");
	put(&s, NULL, 3, 30, "c");
	vset_context(&s, &ctx);
	vclock_init(&want);
	vclock_raise(&want, 1, 1, 10);
	vclock_raise(&want, 2, 1, 20);
	vclock_raise(&want, 3, 1, 30);
	assert_true(vclock_equal(&ctx, &want));
	assert_memory_equal(&ctx, &want, sizeof(ctx));
	vset_fini(&s);
}

static void
test_copy(void **state)
{
	struct vset a;
	struct vset b;
	struct vset c;

	(void)state;
	build_pair(&a, &b);
	/* dst's old contents are freed. */
	assert_int_equal(vset_copy(&b, &a), 0);
	assert_same(&a, &b);
	assert_ptr_not_equal(a.v, b.v);
	assert_int_equal(vset_copy(&b, &b), 0);
	vset_init(&c);
	assert_int_equal(vset_copy(&b, &c), 0);
	assert_int_equal(b.n, 0);

	struct version v;
	assert_int_equal(version_copy(&v, &a.v[0]), 0);
	assert_ptr_not_equal(v.value, a.v[0].value);
	version_fini(&v);
	version_fini(&v);
	version_fini(NULL);
	vset_fini(NULL);
	vset_fini(&a);
	vset_fini(&b);
}

/* ---- out of memory: every failure leaves the set as it was ---- */

static void
test_enomem(void **state)
{
	struct vset a;
	struct vset b;
	struct vset w;
	struct vset ref;
	struct vclock ctx;
	struct buf enc;
	int rc;

	(void)state;
	build_pair(&a, &b);
	vset_init(&w);
	vset_init(&ref);
	vset_context(&a, &ctx);

	/* put */
	for (long k = 0;; k++) {
		assert_int_equal(vset_copy(&w, &a), 0);
		testmem_fail_after(k);
		mem_set_allocator(&testmem_failing);
		rc = vset_put(&w, &ctx, 1, 99, "new", 3, false, NULL);
		mem_set_allocator(&testmem_checked);
		if (rc == 0)
			break;
		assert_int_equal(rc, -ENOMEM);
		assert_same(&w, &a);
	}
	assert_int_equal(w.n, 1);

	/* merge */
	assert_int_equal(vset_copy(&ref, &a), 0);
	assert_int_equal(vset_merge(&ref, &b), 1);
	for (long k = 0;; k++) {
		assert_int_equal(vset_copy(&w, &a), 0);
		testmem_fail_after(k);
		mem_set_allocator(&testmem_failing);
		rc = vset_merge(&w, &b);
		mem_set_allocator(&testmem_checked);
		if (rc == 1)
			break;
		assert_int_equal(rc, -ENOMEM);
		assert_same(&w, &a);
	}
	assert_same(&w, &ref);

	/* copy */
	for (long k = 0;; k++) {
		assert_int_equal(vset_copy(&w, &b), 0);
		testmem_fail_after(k);
		mem_set_allocator(&testmem_failing);
		rc = vset_copy(&w, &a);
		mem_set_allocator(&testmem_checked);
		if (rc == 0)
			break;
		assert_int_equal(rc, -ENOMEM);
		assert_same(&w, &b);
	}
	assert_same(&w, &a);

	/* decode (into a set it overwrites) */
	vset_fini(&w);
	buf_init(&enc);
	vset_encode(&ref, &enc);
	for (long k = 0;; k++) {
		struct rd r;
		rd_init(&r, enc.data, enc.len);
		testmem_fail_after(k);
		mem_set_allocator(&testmem_failing);
		rc = vset_decode(&r, 100, &w);
		mem_set_allocator(&testmem_checked);
		if (rc == 0)
			break;
		assert_int_equal(rc, -ENOMEM);
		assert_int_equal(w.n, 0);
		assert_null(w.v);
	}
	assert_same(&w, &ref);

	buf_fini(&enc);
	vset_fini(&a);
	vset_fini(&b);
	vset_fini(&w);
	vset_fini(&ref);
}

/* ---- codec ---- */

static void
test_codec_roundtrip(void **state)
{
	struct vset a;
	struct vset b;
	struct vset d;
	struct buf enc;
	struct rd r;

	(void)state;
	build_pair(&a, &b);
	assert_int_equal(vset_merge(&a, &b), 1);
	buf_init(&enc);
	vset_encode(&a, &enc);
	assert_int_equal(buf_err(&enc), 0);
	rd_init(&r, enc.data, enc.len);
	assert_int_equal(vset_decode(&r, 100, &d), 0);
	assert_int_equal(rd_left(&r), 0);
	assert_same(&a, &d);
	assert_int_equal(d.n, a.n);
	for (uint32_t i = 0; i < a.n; i++) {
		assert_int_equal(d.v[i].tombstone, a.v[i].tombstone);
		assert_int_equal(d.v[i].ts_ms, a.v[i].ts_ms);
		assert_true(vclock_equal(&d.v[i].past, &a.v[i].past));
		assert_int_equal(d.v[i].len, a.v[i].len);
		if (a.v[i].len == 0)
			assert_null(d.v[i].value);
		else
			assert_memory_equal(d.v[i].value, a.v[i].value,
			                    a.v[i].len);
	}
	/* Values are copies: the input can go away. */
	memset(enc.data, 0, enc.len);
	assert_true(has_value(&d, "a-new"));
	vset_fini(&d);

	/* Empty set. */
	buf_reset(&enc);
	vset_encode(&d, &enc);
	assert_int_equal(enc.len, 4);
	rd_init(&r, enc.data, enc.len);
	assert_int_equal(vset_decode(&r, 0, &d), 0);
	assert_int_equal(d.n, 0);

	buf_fini(&enc);
	vset_fini(&a);
	vset_fini(&b);
}

static void
test_decode_truncated(void **state)
{
	struct vset a;
	struct vset b;
	struct vset d;
	struct buf enc;
	struct rd r;

	(void)state;
	build_pair(&a, &b);
	assert_int_equal(vset_merge(&a, &b), 1);
	buf_init(&enc);
	vset_encode(&a, &enc);
	for (size_t len = 0; len < enc.len; len++) {
		rd_init(&r, enc.data, len);
		assert_int_equal(vset_decode(&r, 100, &d), DYN_EBADMSG);
		assert_int_equal(d.n, 0);
		assert_null(d.v);
		assert_true(r.bad);
	}
	rd_init(&r, enc.data, enc.len);
	assert_int_equal(vset_decode(&r, 100, &d), 0);
	vset_fini(&d);
	buf_fini(&enc);
	vset_fini(&a);
	vset_fini(&b);
}

/* Encode one version by hand, with a past of np entries {actor 100+i: 1}
 * and the nd exact dots pd. */
static void
raw_version_dots(struct buf *b, uint64_t actor, uint64_t counter,
                 uint8_t flags, uint16_t np, uint16_t nd, const struct dot *pd,
                 const char *val)
{
	buf_put_u64(b, actor);
	buf_put_u64(b, counter);
	buf_put_u64(b, 1234);
	buf_put_u8(b, flags);
	buf_put_u16(b, np);
	for (uint16_t i = 0; i < np; i++) {
		buf_put_u64(b, 100 + i);
		buf_put_u64(b, 1);
		buf_put_u64(b, 5);
	}
	buf_put_u16(b, nd);
	for (uint16_t i = 0; i < nd; i++) {
		buf_put_u64(b, pd[i].actor);
		buf_put_u64(b, pd[i].counter);
		buf_put_u64(b, 6);
	}
	buf_put_blob(b, val, strlen(val));
}

/* The same with no dots in the past. */
static void
raw_version(struct buf *b, uint64_t actor, uint64_t counter, uint8_t flags,
            uint16_t np, const char *val)
{
	raw_version_dots(b, actor, counter, flags, np, 0, NULL, val);
}

static int
decode_buf(const struct buf *b, size_t max_value)
{
	struct vset d;
	struct rd r;
	int rc;

	rd_init(&r, b->data, b->len);
	memset(&d, 0xa5, sizeof(d));
	rc = vset_decode(&r, max_value, &d);
	if (rc != 0) {
		assert_int_equal(d.n, 0);
		assert_null(d.v);
	}
	vset_fini(&d);
	return rc;
}

static void
test_decode_reject(void **state)
{
	struct buf b;

	(void)state;
	buf_init(&b);

	/* Baseline: well-formed. */
	buf_put_u32(&b, 2);
	raw_version(&b, 1, 1, 0, 1, "x");
	raw_version(&b, 1, 2, 1, 0, "");
	assert_int_equal(decode_buf(&b, 10), 0);

	/* Unsorted dots. */
	buf_reset(&b);
	buf_put_u32(&b, 2);
	raw_version(&b, 2, 1, 0, 0, "x");
	raw_version(&b, 1, 1, 0, 0, "y");
	assert_int_equal(decode_buf(&b, 10), DYN_EBADMSG);
	buf_reset(&b);
	buf_put_u32(&b, 2);
	raw_version(&b, 1, 2, 0, 0, "x");
	raw_version(&b, 1, 1, 0, 0, "y");
	assert_int_equal(decode_buf(&b, 10), DYN_EBADMSG);

	/* Duplicate dots. */
	buf_reset(&b);
	buf_put_u32(&b, 2);
	raw_version(&b, 1, 1, 0, 0, "x");
	raw_version(&b, 1, 1, 0, 0, "x");
	assert_int_equal(decode_buf(&b, 10), DYN_EBADMSG);

	/* Unknown flags. */
	for (unsigned f = 2; f < 256; f <<= 1) {
		buf_reset(&b);
		buf_put_u32(&b, 1);
		raw_version(&b, 1, 1, (uint8_t)(f | 1), 0, "x");
		assert_int_equal(decode_buf(&b, 10), DYN_EBADMSG);
	}

	/* Value over max_value (and exactly at it). */
	buf_reset(&b);
	buf_put_u32(&b, 1);
	raw_version(&b, 1, 1, 0, 0, "0123456789");
	assert_int_equal(decode_buf(&b, 10), 0);
	assert_int_equal(decode_buf(&b, 9), DYN_EBADMSG);
	/* ... in a later version, after values were already copied. */
	buf_reset(&b);
	buf_put_u32(&b, 2);
	raw_version(&b, 1, 1, 0, 0, "short");
	raw_version(&b, 2, 1, 0, 0, "0123456789");
	assert_int_equal(decode_buf(&b, 9), DYN_EBADMSG);

	/* Zero counter, and a version that is its own ancestor. */
	buf_reset(&b);
	buf_put_u32(&b, 1);
	raw_version(&b, 1, 0, 0, 0, "x");
	assert_int_equal(decode_buf(&b, 10), DYN_EBADMSG);
	buf_reset(&b);
	buf_put_u32(&b, 1);
	raw_version(&b, 100, 1, 0, 1, "x");
	assert_int_equal(decode_buf(&b, 10), DYN_EBADMSG);

	/* A bad past is caught by vclock_decode. */
	buf_reset(&b);
	buf_put_u32(&b, 1);
	raw_version(&b, 1, 1, 0, VCLOCK_MAX + 1, "x");
	assert_int_equal(decode_buf(&b, 10), DYN_EBADMSG);

	/* Exact dots in the past: fine in normal form, a bad past when
	 * not (here (100, 2) continues the entry 100: 1), and the version's
	 * own dot among them makes it its own ancestor. */
	static const struct dot pd[] = {{1, 3}, {100, 2}, {100, 3}};
	buf_reset(&b);
	buf_put_u32(&b, 2);
	raw_version_dots(&b, 1, 2, 0, 1, 1, &pd[0], "x");
	raw_version_dots(&b, 2, 1, 0, 1, 1, &pd[2], "y");
	assert_int_equal(decode_buf(&b, 10), 0);
	buf_reset(&b);
	buf_put_u32(&b, 1);
	raw_version_dots(&b, 2, 1, 0, 1, 1, &pd[1], "x");
	assert_int_equal(decode_buf(&b, 10), DYN_EBADMSG);
	buf_reset(&b);
	buf_put_u32(&b, 1);
	raw_version_dots(&b, 1, 3, 0, 1, 1, &pd[0], "x");
	assert_int_equal(decode_buf(&b, 10), DYN_EBADMSG);
	/* As many dots as a clock holds, and one more. */
	struct dot many[VCLOCK_DOTS_MAX + 1];
	for (uint16_t i = 0; i <= VCLOCK_DOTS_MAX; i++)
		many[i] = (struct dot){200, 3 + 2 * (uint64_t)i};
	buf_reset(&b);
	buf_put_u32(&b, 1);
	raw_version_dots(&b, 1, 4, 0, 1, VCLOCK_DOTS_MAX, many, "x");
	assert_int_equal(decode_buf(&b, 10), 0);
	buf_reset(&b);
	buf_put_u32(&b, 1);
	raw_version_dots(&b, 1, 4, 0, 1, VCLOCK_DOTS_MAX + 1, many, "x");
	assert_int_equal(decode_buf(&b, 10), DYN_EBADMSG);
	/* A version of the old format (no dot count) does not parse. */
	buf_reset(&b);
	buf_put_u32(&b, 1);
	buf_put_u64(&b, 1);
	buf_put_u64(&b, 1);
	buf_put_u64(&b, 1234);
	buf_put_u8(&b, 0);
	buf_put_u16(&b, 0);
	buf_put_blob(&b, "x", 1);
	assert_int_equal(decode_buf(&b, 10), DYN_EBADMSG);

	/* Counts: at the cap, over it, and over what the input holds. */
	buf_reset(&b);
	buf_put_u32(&b, VSET_MAX_VERSIONS);
	for (uint32_t i = 0; i < VSET_MAX_VERSIONS; i++)
		raw_version(&b, 1, i + 1, 0, 0, "");
	assert_int_equal(decode_buf(&b, 10), 0);
	buf_reset(&b);
	buf_put_u32(&b, VSET_MAX_VERSIONS + 1);
	for (uint32_t i = 0; i < VSET_MAX_VERSIONS + 1; i++)
		raw_version(&b, 1, i + 1, 0, 0, "");
	assert_int_equal(decode_buf(&b, 10), DYN_EBADMSG);
	buf_reset(&b);
	buf_put_u32(&b, UINT32_MAX);
	raw_version(&b, 1, 1, 0, 0, "");
	assert_int_equal(decode_buf(&b, 10), DYN_EBADMSG);
	buf_reset(&b);
	buf_put_u32(&b, 3);
	raw_version(&b, 1, 1, 0, 0, "");
	raw_version(&b, 1, 2, 0, 0, "");
	assert_int_equal(decode_buf(&b, 10), DYN_EBADMSG);

	buf_fini(&b);
}

/* ---- randomized replicas ---- */

#define SIM_REPLICAS 4
#define SIM_PUTS     160
#define SIM_WORDS    ((SIM_PUTS + 63) / 64)
#define SIM_CTXS     64

/* What a reader actually saw: its clock and the set of puts behind it. */
struct seen {
	struct vclock ctx;
	uint64_t puts[SIM_WORDS];
};

struct sim {
	uint64_t rng;
	struct vset rep[SIM_REPLICAS];
	uint32_t nputs;
	struct dot dot[SIM_PUTS];
	struct vclock used[SIM_PUTS]; /* context each put was made with */
	uint64_t hist[SIM_PUTS][SIM_WORDS]; /* puts each put really saw */
	struct seen ctxs[SIM_CTXS];
	uint32_t nctxs;
};

static uint32_t
sim_rand(struct sim *m, uint32_t n)
{
	/* xorshift64* */
	m->rng ^= m->rng >> 12;
	m->rng ^= m->rng << 25;
	m->rng ^= m->rng >> 27;
	return (uint32_t)((m->rng * 0x2545F4914F6CDD1Dull) >> 33) % n;
}

/* The put a version came from: its value is the put's index. */
static uint32_t
sim_index(const struct version *v)
{
	uint32_t idx;

	assert_int_equal(v->len, sizeof(idx));
	memcpy(&idx, v->value, sizeof(idx));
	assert_true(idx < SIM_PUTS);
	return idx;
}

static void
sim_read(const struct sim *m, const struct vset *s, struct seen *out)
{
	memset(out, 0, sizeof(*out));
	vset_context(s, &out->ctx);
	for (uint32_t i = 0; i < s->n; i++) {
		uint32_t idx = sim_index(&s->v[i]);
		out->puts[idx / 64] |= 1ull << (idx % 64);
		for (uint32_t w = 0; w < SIM_WORDS; w++)
			out->puts[w] |= m->hist[idx][w];
	}
}

static void
sim_put(struct sim *m, uint64_t now)
{
	uint32_t r = sim_rand(m, SIM_REPLICAS);
	uint32_t idx = m->nputs++;
	uint32_t how = sim_rand(m, 10);
	struct seen fresh;
	const struct seen *sn = NULL;
	const struct version *nv;
	bool tomb = sim_rand(m, 8) == 0;

	if (how < 4) {
		sim_read(m, &m->rep[r], &fresh);
		sn = &fresh;
	} else if (how < 8 && m->nctxs > 0) {
		sn = &m->ctxs[sim_rand(m, m->nctxs)];
	}
	/* Tombstones keep the index too, so every version can be traced. */
	assert_int_equal(vset_put(&m->rep[r], sn ? &sn->ctx : NULL, r + 1, now,
	                          &idx, sizeof(idx), tomb, &nv),
	                 0);
	m->dot[idx] = nv->dot;
	vclock_init(&m->used[idx]);
	memset(m->hist[idx], 0, sizeof(m->hist[idx]));
	if (sn != NULL) {
		m->used[idx] = sn->ctx;
		memcpy(m->hist[idx], sn->puts, sizeof(m->hist[idx]));
	}
	/* Dots are never reissued. */
	for (uint32_t i = 0; i < idx; i++) {
		assert_false(m->dot[i].actor == nv->dot.actor &&
		             m->dot[i].counter == nv->dot.counter);
	}
	/* Sometimes the writer keeps the context its put returned: the new
	 * version and what its writer had seen, nothing else. */
	if (sim_rand(m, 3) == 0) {
		uint32_t slot =
		    m->nctxs < SIM_CTXS ? m->nctxs++ : sim_rand(m, SIM_CTXS);
		struct seen *out = &m->ctxs[slot];
		version_context(nv, &out->ctx);
		memcpy(out->puts, m->hist[idx], sizeof(out->puts));
		out->puts[idx / 64] |= 1ull << (idx % 64);
	}
	assert_sorted(&m->rep[r]);
}

static void
sim_merge(struct sim *m)
{
	uint32_t i = sim_rand(m, SIM_REPLICAS);
	uint32_t j = sim_rand(m, SIM_REPLICAS);
	struct vset x;
	struct vset y;

	vset_init(&x);
	vset_init(&y);
	/* Commutativity on the way. */
	assert_int_equal(vset_copy(&x, &m->rep[i]), 0);
	assert_int_equal(vset_copy(&y, &m->rep[j]), 0);
	assert_true(vset_merge(&x, &m->rep[j]) >= 0);
	assert_true(vset_merge(&y, &m->rep[i]) >= 0);
	assert_same(&x, &y);
	assert_int_equal(vset_merge(&x, &m->rep[j]), 0);
	assert_true(vset_contains(&x, &m->rep[j]));

	bool had = vset_contains(&m->rep[i], &m->rep[j]);
	int rc = vset_merge(&m->rep[i], &m->rep[j]);
	assert_true(rc == 0 || rc == 1);
	/* "Nothing new" and "no change" agree. */
	assert_int_equal(rc == 0, had);
	assert_same(&m->rep[i], &x);
	assert_sorted(&m->rep[i]);
	/* Sometimes the sync goes both ways. */
	if (sim_rand(m, 2) == 0)
		assert_true(vset_merge(&m->rep[j], &m->rep[i]) >= 0);
	vset_fini(&x);
	vset_fini(&y);
}

static void
sim_run(uint64_t seed)
{
	struct sim *m = test_calloc(1, sizeof(*m));
	uint64_t now = 1000;

	m->rng = seed * 0x9E3779B97F4A7C15ull + 1;
	for (uint32_t i = 0; i < SIM_REPLICAS; i++)
		vset_init(&m->rep[i]);
	while (m->nputs < SIM_PUTS) {
		uint32_t op = sim_rand(m, 10);
		now += 1 + sim_rand(m, 5);
		if (op < 4) {
			sim_put(m, now);
		} else if (op < 6) {
			uint32_t r = sim_rand(m, SIM_REPLICAS);
			uint32_t slot = m->nctxs < SIM_CTXS
			                    ? m->nctxs++
			                    : sim_rand(m, SIM_CTXS);
			sim_read(m, &m->rep[r], &m->ctxs[slot]);
		} else {
			sim_merge(m);
		}
	}

	/* Anti-entropy to the end: everything into 0, 0 into everyone. */
	for (uint32_t i = 1; i < SIM_REPLICAS; i++)
		assert_true(vset_merge(&m->rep[0], &m->rep[i]) >= 0);
	for (uint32_t i = 1; i < SIM_REPLICAS; i++) {
		assert_true(vset_merge(&m->rep[i], &m->rep[0]) >= 0);
		assert_same(&m->rep[i], &m->rep[0]);
	}
	for (uint32_t i = 0; i < SIM_REPLICAS; i++) {
		for (uint32_t j = 0; j < SIM_REPLICAS; j++)
			assert_int_equal(vset_merge(&m->rep[i], &m->rep[j]),
			                 0);
	}

	const struct vset *fin = &m->rep[0];
	for (uint32_t p = 0; p < SIM_PUTS; p++) {
		const struct version *v =
		    find(fin, m->dot[p].actor, m->dot[p].counter);
		bool covered = false;
		bool saw = false;
		for (uint32_t q = p + 1; q < SIM_PUTS; q++) {
			covered |= vclock_covers(&m->used[q], &m->dot[p]);
			saw |= (m->hist[q][p / 64] >> (p % 64)) & 1;
		}
		/* Never covered by a later context: must have survived. */
		if (!covered)
			assert_non_null(v);
		/* Gone only if some writer really saw it. */
		if (v == NULL)
			assert_true(saw);
		else
			assert_int_equal(sim_index(v), p);
	}
	for (uint32_t i = 0; i < SIM_REPLICAS; i++)
		vset_fini(&m->rep[i]);
	test_free(m);
}

static void
test_random_replicas(void **state)
{
	(void)state;
	for (uint64_t seed = 1; seed <= 200; seed++)
		sim_run(seed);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_put_first),
	    cmocka_unit_test(test_blind_puts_same_actor),
	    cmocka_unit_test(test_blind_puts_different_actors),
	    cmocka_unit_test(test_put_merged_context),
	    cmocka_unit_test(test_put_old_context),
	    cmocka_unit_test(test_put_own_context),
	    cmocka_unit_test(test_context_missing_sibling),
	    cmocka_unit_test(test_put_counter),
	    cmocka_unit_test(test_tombstones),
	    cmocka_unit_test(test_put_too_many),
	    cmocka_unit_test(test_merge_laws),
	    cmocka_unit_test(test_merge_obsolete),
	    cmocka_unit_test(test_merge_same_dot),
	    cmocka_unit_test(test_context),
	    cmocka_unit_test(test_copy),
	    cmocka_unit_test(test_enomem),
	    cmocka_unit_test(test_codec_roundtrip),
	    cmocka_unit_test(test_decode_truncated),
	    cmocka_unit_test(test_decode_reject),
	    cmocka_unit_test(test_random_replicas),
	};

	return cmocka_run_group_tests(tests, testmem_setup, testmem_teardown);
}
