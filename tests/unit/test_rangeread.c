/* Unit tests for node/rangeread: page checks, the bound, the merge by key
 * with read repair, under cmocka's allocator (leak checks). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "keypos.h"
#include "mem.h"
#include "rangeread.h"
#include "reclist.h"
#include "testmem.h"
#include "vset.h"

/* Versions: a1 (actor 1), b2 superseding it (actor 2), t a tombstone of
 * actor 3 alone. */
struct sets {
	struct vset a1, b2, t;
};

static void
sets_init(struct sets *s)
{
	const struct version *nv;
	vset_init(&s->a1);
	vset_init(&s->b2);
	vset_init(&s->t);
	assert_int_equal(vset_put(&s->a1, NULL, 1, 1000, "1", 1, false, &nv),
	    0);
	struct vclock ctx;
	vset_context(&s->a1, &ctx);
	assert_int_equal(vset_copy(&s->b2, &s->a1), 0);
	assert_int_equal(vset_put(&s->b2, &ctx, 2, 2000, "2", 1, false, &nv),
	    0);
	assert_int_equal(s->b2.n, 1);
	assert_int_equal(vset_put(&s->t, NULL, 3, 3000, NULL, 0, true, &nv), 0);
}

static void
sets_fini(struct sets *s)
{
	vset_fini(&s->a1);
	vset_fini(&s->b2);
	vset_fini(&s->t);
}

static uint8_t hdr[8];
static size_t hlen;

/* Add key hdr|rest with set to l. */
static void
add(struct reclist *l, const char *rest, const struct vset *set)
{
	uint8_t k[32];
	memcpy(k, hdr, hlen);
	memcpy(k + hlen, rest, strlen(rest));
	assert_int_equal(reclist_add(l, 16, k, hlen + strlen(rest), set), 0);
}

static bool
key_is(const struct buf *k, const char *rest)
{
	return k->len == hlen + strlen(rest) && memcmp(k->data, hdr, hlen) == 0 &&
	    memcmp(k->data + hlen, rest, strlen(rest)) == 0;
}

static int
setup(void **state)
{
	(void)state;
	hlen = keypos_placed_make("d", 1, hdr);
	mem_set_allocator(&testmem_checked);
	return 0;
}

static int
teardown(void **state)
{
	(void)state;
	mem_set_allocator(NULL);
	return 0;
}

static void
test_bound(void **state)
{
	struct sets s;
	struct reclist p[3];
	(void)state;
	sets_init(&s);
	for (int i = 0; i < 3; i++)
		reclist_init(&p[i]);
	add(&p[0], "a", &s.a1);
	add(&p[0], "c", &s.a1);
	add(&p[1], "b", &s.a1);
	add(&p[2], "a", &s.a1);
	bool ok[3] = {true, true, true}, full[3] = {true, true, false};
	const struct buf *b = rangeread_bound(p, ok, full, 3);
	assert_non_null(b);
	assert_true(key_is(b, "b"));
	/* A page not answered does not bound; none full: no bound. */
	ok[1] = false;
	assert_true(key_is(rangeread_bound(p, ok, full, 3), "c"));
	full[0] = false;
	assert_null(rangeread_bound(p, ok, full, 3));
	for (int i = 0; i < 3; i++)
		reclist_fini(&p[i]);
	sets_fini(&s);
}

static void
test_merge_and_repair(void **state)
{
	struct sets s;
	struct reclist p[3], out, fix[3];
	(void)state;
	sets_init(&s);
	for (int i = 0; i < 3; i++) {
		reclist_init(&p[i]);
		reclist_init(&fix[i]);
	}
	reclist_init(&out);
	add(&p[0], "a", &s.a1);
	add(&p[0], "b", &s.b2);
	add(&p[0], "t", &s.t);
	add(&p[1], "a", &s.b2);
	add(&p[1], "c", &s.a1);
	add(&p[2], "x", &s.a1); /* did not answer in time */
	bool ok[3] = {true, true, false};

	assert_int_equal(rangeread_merge(p, ok, 3, NULL, &out, fix), 0);
	/* Live keys in order, each merged; the tombstone-only key hidden. */
	assert_int_equal(out.n, 3);
	assert_true(key_is(&out.keys[0], "a"));
	assert_true(vset_contains(&out.sets[0], &s.b2) &&
	    vset_contains(&s.b2, &out.sets[0]));
	assert_true(key_is(&out.keys[1], "b"));
	assert_true(key_is(&out.keys[2], "c"));
	/* Page 0 had an older a and no c; page 1 no b and no tombstone. */
	assert_int_equal(fix[0].n, 2);
	assert_true(key_is(&fix[0].keys[0], "a"));
	assert_true(vset_contains(&fix[0].sets[0], &s.b2));
	assert_true(key_is(&fix[0].keys[1], "c"));
	assert_int_equal(fix[1].n, 2);
	assert_true(key_is(&fix[1].keys[0], "b"));
	assert_true(key_is(&fix[1].keys[1], "t"));
	assert_true(fix[1].sets[1].n == 1 && fix[1].sets[1].v[0].tombstone);
	assert_int_equal(fix[2].n, 0);
	reclist_fini(&out);
	for (int i = 0; i < 3; i++)
		reclist_fini(&fix[i]);

	/* Up to a bound only: what lies past it is neither shown nor
	 * repaired (not every replica has shown it). */
	struct buf bound;
	buf_init(&bound);
	buf_put(&bound, hdr, hlen);
	buf_put(&bound, "b", 1);
	assert_int_equal(rangeread_merge(p, ok, 3, &bound, &out, fix), 0);
	assert_int_equal(out.n, 2);
	assert_true(key_is(&out.keys[1], "b"));
	assert_int_equal(fix[0].n, 1);
	assert_int_equal(fix[1].n, 1);
	assert_true(key_is(&fix[1].keys[0], "b"));
	buf_fini(&bound);
	reclist_fini(&out);
	for (int i = 0; i < 3; i++) {
		reclist_fini(&fix[i]);
		reclist_fini(&p[i]);
	}

	/* Nothing answered: nothing shown. */
	assert_int_equal(rangeread_merge(p, ok, 3, NULL, &out, fix), 0);
	assert_int_equal(out.n, 0);
	sets_fini(&s);
}

static void
test_page_sane(void **state)
{
	struct sets s;
	struct reclist p;
	(void)state;
	sets_init(&s);
	reclist_init(&p);
	assert_true(rangeread_page_sane(hdr, hlen, NULL, 0, &p, false));
	assert_false(rangeread_page_sane(hdr, hlen, NULL, 0, &p, true));
	add(&p, "b", &s.a1);
	add(&p, "c", &s.a1);
	assert_true(rangeread_page_sane(hdr, hlen, NULL, 0, &p, true));
	/* After the cursor only. */
	uint8_t cur[16];
	memcpy(cur, hdr, hlen);
	cur[hlen] = 'a';
	assert_true(rangeread_page_sane(hdr, hlen, cur, hlen + 1, &p, false));
	cur[hlen] = 'b';
	assert_false(rangeread_page_sane(hdr, hlen, cur, hlen + 1, &p, false));
	/* Out of order, or of another part. */
	add(&p, "bz", &s.a1);
	assert_false(rangeread_page_sane(hdr, hlen, NULL, 0, &p, false));
	reclist_fini(&p);
	uint8_t other[8];
	size_t ol = keypos_placed_make("e", 1, other);
	assert_int_equal(reclist_add(&p, 4, other, ol, &s.a1), 0);
	assert_false(rangeread_page_sane(hdr, hlen, NULL, 0, &p, false));
	/* A shorter key sorts first. */
	struct buf x = {.data = hdr, .len = hlen}, y = {.data = cur,
	    .len = hlen + 1};
	assert_true(rangeread_key_cmp(&x, &y) < 0);
	assert_true(rangeread_key_cmp(&y, &x) > 0);
	assert_int_equal(rangeread_key_cmp(&x, &x), 0);
	reclist_fini(&p);
	sets_fini(&s);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_bound, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_merge_and_repair, setup,
	        teardown),
	    cmocka_unit_test_setup_teardown(test_page_sane, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
