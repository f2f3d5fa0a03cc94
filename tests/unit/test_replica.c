/*
 * Unit tests of node/replica on a real store (LMDB in a mkdtemp()
 * directory) behind a node that holds nothing else: what the merge
 * writes, what it leaves (no write when a set adds nothing, an error
 * leaves the record as it was), batches of records merged and deleted.
 *
 * The merge was written twice before replica.c (xfer.c for replica
 * writes, store.c for hints), the same logic in two spellings; the hint
 * tests check that a hint and a record, given the same sets, end up the
 * same and are written at the same steps, through the one merge now.
 *
 * libc's allocator throughout: the store's writer thread allocates.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "err.h"
#include "node_i.h"
#include "reclist.h"
#include "replica.h"
#include "store.h"
#include "vset.h"
#include "wire.h"

#define TARGET "n9"

struct fixture {
	char dir[64];
	struct node n; /* only store and cfg.max_value: what replica.c reads
	                  for a merge */
};

static int
setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	if (!f)
		return -1;
	snprintf(f->dir, sizeof(f->dir), "/tmp/test_replica.XXXXXX");
	if (!mkdtemp(f->dir)) {
		free(f);
		return -1;
	}
	struct store_opts o;
	store_opts_default(&o);
	o.dir = f->dir;
	o.fsync = false;
	if (store_open(&o, &f->n.store) != 0) {
		free(f);
		return -1;
	}
	f->n.cfg.max_value = WIRE_MAX_VALUE;
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fixture *f = *state;
	char cmd[128];
	store_close(f->n.store);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
	assert_int_equal(system(cmd), 0);
	free(f);
	return 0;
}

/* Updates that wrote, since the store opened. */
static uint64_t
writes(struct store *s)
{
	struct store_stats st;
	assert_int_equal(store_stats(s, &st), 0);
	return st.updates;
}

static uint64_t
hints_added(struct store *s)
{
	struct store_stats st;
	assert_int_equal(store_stats(s, &st), 0);
	return st.hints_added;
}

/* A set of one version by actor, superseding ctx's (NULL: none). */
static void
one(struct vset *s, uint64_t actor, const struct vset *ctx, const char *val)
{
	struct vclock c;
	vset_init(s);
	if (ctx)
		vset_context(ctx, &c);
	assert_int_equal(vset_put(s, ctx ? &c : NULL, actor, 1000 + actor, val,
	                     strlen(val), false, NULL),
	    0);
}

static int
hint_copy(const char *target, const uint8_t *key, size_t klen,
    const struct vset *set, void *arg)
{
	(void)target, (void)key, (void)klen;
	struct vset *out = arg;
	vset_fini(out);
	return vset_copy(out, set);
}

/* The hint of (TARGET, key) into out (empty: none). */
static void
hint_get(struct store *s, struct vset *out)
{
	vset_init(out);
	assert_int_equal(store_hint_scan(s, TARGET, hint_copy, out), 0);
}

static void
assert_same(const struct vset *a, const struct vset *b)
{
	assert_int_equal(a->n, b->n);
	assert_true(vset_contains(a, b) && vset_contains(b, a));
}

/* Merge into the record and the hint; both written, or neither. */
static void
merge_both(struct fixture *f, const struct vset *in, bool wrote)
{
	struct store *s = f->n.store;
	uint64_t w = writes(s), h = hints_added(s);
	assert_int_equal(replica_merge(&f->n, "k", 1, in), 0);
	assert_int_equal(writes(s), w + wrote);
	assert_int_equal(store_hint_add(s, TARGET, "k", 1, in), 0);
	assert_int_equal(hints_added(s), h + wrote);
	assert_int_equal(writes(s), w + 2 * wrote);

	struct vset rec, hint;
	vset_init(&rec);
	assert_int_equal(store_get(s, "k", 1, &rec), 0);
	hint_get(s, &hint);
	assert_same(&rec, &hint);
	vset_fini(&rec);
	vset_fini(&hint);
}

static void
test_merge(void **state)
{
	struct fixture *f = *state;
	struct vset a, b, c, got;
	one(&a, 1, NULL, "a");
	one(&b, 2, NULL, "b");

	merge_both(f, &a, true);  /* new */
	merge_both(f, &a, false); /* held already: no write */
	merge_both(f, &b, true);  /* a sibling */

	vset_init(&got);
	assert_int_equal(store_get(f->n.store, "k", 1, &got), 0);
	assert_int_equal(got.n, 2);
	/* c supersedes both: they go, on a merge too. */
	one(&c, 3, &got, "c");
	merge_both(f, &c, true);
	vset_fini(&got);
	assert_int_equal(store_get(f->n.store, "k", 1, &got), 0);
	assert_same(&got, &c);
	merge_both(f, &a, false); /* obsolete now: no write */
	merge_both(f, &b, false);

	struct vset empty;
	vset_init(&empty);
	merge_both(f, &empty, false);
	vset_fini(&got);
	vset_fini(&a);
	vset_fini(&b);
	vset_fini(&c);
}

/* A merge that would hold more siblings than a set may fails alone, and
 * leaves the record (and the hint) as it was. */
static void
test_merge_too_many(void **state)
{
	struct fixture *f = *state;
	struct store *s = f->n.store;
	struct vset full, more, got;
	vset_init(&full);
	for (uint64_t i = 1; i <= VSET_MAX_VERSIONS; i++)
		assert_int_equal(
		    vset_put(&full, NULL, i, i, "x", 1, false, NULL), 0);
	assert_int_equal(full.n, VSET_MAX_VERSIONS);
	merge_both(f, &full, true);
	one(&more, VSET_MAX_VERSIONS + 1, NULL, "y");

	uint64_t w = writes(s), h = hints_added(s);
	assert_int_equal(replica_merge(&f->n, "k", 1, &more), DYN_ETOOBIG);
	assert_int_equal(store_hint_add(s, TARGET, "k", 1, &more),
	    DYN_ETOOBIG);
	assert_int_equal(writes(s), w);
	assert_int_equal(hints_added(s), h);
	vset_init(&got);
	assert_int_equal(store_get(s, "k", 1, &got), 0);
	assert_same(&got, &full);
	vset_fini(&got);
	hint_get(s, &got);
	assert_same(&got, &full);
	vset_fini(&got);
	vset_fini(&full);
	vset_fini(&more);
}

/* An F_RECORDS field of three records into b; f points into b. */
static void
records(struct buf *b, struct wire_field *fl, struct buf *keys,
    struct vset *sets)
{
	for (int i = 0; i < 3; i++) {
		char k[8];
		snprintf(k, sizeof(k), "r%d", i);
		buf_init(&keys[i]);
		buf_put(&keys[i], k, strlen(k));
		one(&sets[i], 1 + (uint64_t)i, NULL, k);
	}
	buf_init(b);
	reclist_encode(keys, sets, 3, b);
	assert_int_equal(buf_err(b), 0);
	*fl = (struct wire_field){F_RECORDS, (uint32_t)b->len, b->data};
}

static void
test_records(void **state)
{
	struct fixture *f = *state;
	struct store *s = f->n.store;
	struct buf b, keys[3];
	struct vset sets[3], got;
	struct wire_field fl;
	records(&b, &fl, keys, sets);

	uint32_t count = 0, changed = 0;
	uint64_t w = writes(s);
	assert_int_equal(replica_merge_records(&f->n, &fl, &count), 0);
	assert_int_equal(count, 3);
	assert_int_equal(writes(s), w + 3);
	for (int i = 0; i < 3; i++) {
		vset_init(&got);
		assert_int_equal(store_get(s, keys[i].data, keys[i].len, &got),
		    0);
		assert_same(&got, &sets[i]);
		vset_fini(&got);
	}
	/* Again: counted, nothing written. */
	assert_int_equal(replica_merge_records(&f->n, &fl, &count), 0);
	assert_int_equal(count, 6);
	assert_int_equal(writes(s), w + 3);

	/* A list that does not decode: nothing applied, nothing counted. */
	struct wire_field bad = fl;
	bad.len--;
	assert_int_equal(replica_merge_records(&f->n, &bad, &count),
	    DYN_EBADMSG);
	assert_int_equal(count, 6);

	/* The purge's deletes: each record goes where it is unchanged. */
	struct vset newer;
	one(&newer, 9, &sets[1], "newer");
	assert_int_equal(replica_merge(&f->n, keys[1].data, keys[1].len,
	                     &newer),
	    0);
	count = 0;
	assert_int_equal(replica_apply_records(&f->n, &fl,
	                     store_apply_delete_exact, &count, &changed),
	    0);
	assert_int_equal(count, 3);
	assert_int_equal(changed, 2);
	vset_init(&got);
	assert_int_equal(store_get(s, keys[0].data, keys[0].len, &got),
	    -ENOENT);
	assert_int_equal(store_get(s, keys[1].data, keys[1].len, &got), 0);
	assert_same(&got, &newer);
	vset_fini(&got);

	vset_fini(&newer);
	for (int i = 0; i < 3; i++) {
		buf_fini(&keys[i]);
		vset_fini(&sets[i]);
	}
	buf_fini(&b);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_merge, setup, teardown),
		cmocka_unit_test_setup_teardown(test_merge_too_many, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_records, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
