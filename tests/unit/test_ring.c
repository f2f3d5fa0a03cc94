/*
 * Unit tests for ring: balance and movement of plans, preference lists,
 * determinism, the decoder's checks and the order between rings.  The
 * movement and spread figures are printed so a change of the planner shows
 * up in the test log, not only as a pass or a fail.
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
#include "keypos.h"
#include "mem.h"
#include "ring.h"
#include "testmem.h"

#define MAXM 16

/* Member i is "n<i>" (two digits, so names sort like their numbers). */
static char names[MAXM][8];
static const char *name_ptrs[MAXM];

static void
names_init(void)
{
	for (int i = 0; i < MAXM; i++) {
		snprintf(names[i], sizeof(names[i]), "n%02d", i);
		name_ptrs[i] = names[i];
	}
}

static void
member_add(struct ring *r, int i)
{
	char addr[32];

	snprintf(addr, sizeof(addr), "tcp://10.0.0.%d:7000", i);
	assert_int_equal(ring_member_set(r, names[i], addr), 0);
}

/* A ring of q partitions knowing members 0..known-1, all owned by n00. */
static struct ring *
ring_known(uint32_t q, int known)
{
	struct ring *r;

	names_init();
	assert_int_equal(ring_new(q, names[0], "tcp://10.0.0.0:7000", &r), 0);
	for (int i = 1; i < known; i++)
		member_add(r, i);
	return r;
}

/* Listed members own Q/S or Q/S + 1, exactly Q mod S of them the +1; the
 * others nothing. */
static void
assert_balanced(const struct ring *r, enum ring_table t,
                const char *const *list, uint32_t n)
{
	uint32_t counts[MAXM];
	uint32_t q = ring_q(r);
	uint32_t plus = 0;
	uint32_t total = 0;
	bool listed[MAXM] = {false};

	ring_owned_counts(r, t, counts);
	for (uint32_t i = 0; i < n; i++) {
		int m = ring_member_find(r, list[i]);
		assert_true(m >= 0);
		listed[m] = true;
	}
	for (uint32_t m = 0; m < ring_member_count(r); m++) {
		total += counts[m];
		if (!listed[m]) {
			assert_int_equal(counts[m], 0);
			continue;
		}
		assert_true(counts[m] == q / n || counts[m] == q / n + 1);
		if (q % n != 0 && counts[m] == q / n + 1)
			plus++;
	}
	assert_int_equal(total, q);
	assert_int_equal(plus, q % n);
}

/* Plan to the listed members, check the plan's frame, commit it. */
static struct ring *
replan(struct ring *r, const char *const *list, uint32_t n, uint32_t *moves)
{
	struct ring *p;

	assert_int_equal(ring_plan(r, list, n, &p), 0);
	assert_int_equal(ring_epoch(p), ring_epoch(r) + 1);
	assert_true(ring_has_next(p));
	assert_int_equal(ring_member_count(p), ring_member_count(r));
	assert_balanced(p, RING_NEXT, list, n);
	/* cur is untouched by a plan. */
	for (uint32_t pt = 0; pt < ring_q(r); pt++)
		assert_int_equal(ring_owner(p, RING_CUR, pt),
		                 ring_owner(r, RING_CUR, pt));
	if (moves != NULL)
		*moves = ring_moves(p);
	ring_free(r);
	assert_int_equal(ring_commit(p), 0);
	assert_false(ring_has_next(p));
	return p;
}

/* Partitions walked until want distinct owners are found: worst and
 * total over all start partitions. */
static void
spread(const struct ring *r, uint32_t want, uint32_t *worst, uint32_t *total)
{
	uint32_t q = ring_q(r);

	*worst = 0;
	*total = 0;
	for (uint32_t p = 0; p < q; p++) {
		int seen[MAXM];
		uint32_t k = 0, steps = 0;

		while (k < want && steps < q) {
			int o = ring_owner(r, RING_CUR, (p + steps) % q);
			bool dup = false;

			for (uint32_t i = 0; i < k; i++)
				dup = dup || seen[i] == o;
			if (!dup)
				seen[k++] = o;
			steps++;
		}
		*total += steps;
		if (steps > *worst)
			*worst = steps;
	}
}

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static uint64_t
xorshift(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return rng_state;
}

static uint8_t *
encode(const struct ring *r, size_t *len)
{
	struct buf b;
	uint8_t *p;

	buf_init(&b);
	ring_encode(r, &b);
	assert_int_equal(buf_err(&b), 0);
	p = buf_take(&b, len);
	buf_fini(&b);
	return p;
}

/* ---- Construction and membership ----------------------------------- */

static void
test_new(void **state)
{
	struct ring *r = (struct ring *)1;
	char longname[RING_NAME_MAX + 2];
	uint32_t counts[1];

	(void)state;
	memset(longname, 'x', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = '\0';
	assert_int_equal(ring_new(0, "a", "tcp://h:1", &r), -EINVAL);
	assert_null(r);
	assert_int_equal(ring_new(48, "a", "tcp://h:1", &r), -EINVAL);
	assert_int_equal(ring_new(8192, "a", "tcp://h:1", &r), -EINVAL);
	assert_int_equal(ring_new(64, "", "tcp://h:1", &r), -EINVAL);
	assert_int_equal(ring_new(64, longname, "tcp://h:1", &r), -EINVAL);
	assert_int_equal(ring_new(64, "a", "", &r), -EINVAL);
	longname[RING_NAME_MAX] = '\0'; /* exactly the maximum */
	assert_int_equal(ring_new(RING_Q_DEFAULT, longname, "tcp://h:1", &r),
	                 0);
	assert_int_equal(ring_q(r), 64);
	assert_int_equal(ring_epoch(r), 1);
	assert_false(ring_has_next(r));
	assert_int_equal(ring_moves(r), 0);
	assert_int_equal(ring_member_count(r), 1);
	assert_string_equal(ring_member_name(r, 0), longname);
	assert_string_equal(ring_member_addr(r, 0), "tcp://h:1");
	assert_null(ring_member_name(r, 1));
	assert_null(ring_member_addr(r, 1));
	ring_owned_counts(r, RING_NEXT, counts);
	assert_int_equal(counts[0], 64);
	assert_int_equal(ring_owner(r, RING_CUR, 63), 0);
	assert_int_equal(ring_owner(r, RING_CUR, 64), -EINVAL);
	assert_int_equal(ring_commit(r), -EINVAL);
	ring_free(r);
	ring_free(NULL);

	for (uint32_t q = 1; q <= RING_Q_MAX; q *= 2) {
		assert_int_equal(ring_new(q, "a", "tcp://h:1", &r), 0);
		ring_free(r);
	}
}

static void
test_members(void **state)
{
	struct ring *r;

	(void)state;
	assert_int_equal(ring_new(8, "m", "tcp://m:1", &r), 0);
	/* Inserted out of order, the table stays sorted and the owner
	 * indices follow their member. */
	assert_int_equal(ring_member_set(r, "z", "tcp://z:1"), 0);
	assert_int_equal(ring_member_set(r, "a", "tcp://a:1"), 0);
	assert_int_equal(ring_epoch(r), 3);
	assert_int_equal(ring_member_count(r), 3);
	assert_string_equal(ring_member_name(r, 0), "a");
	assert_string_equal(ring_member_name(r, 1), "m");
	assert_string_equal(ring_member_name(r, 2), "z");
	assert_int_equal(ring_member_find(r, "m"), 1);
	assert_int_equal(ring_member_find(r, "q"), -ENOENT);
	assert_int_equal(ring_member_find(r, NULL), -ENOENT);
	assert_int_equal(ring_owner(r, RING_CUR, 0), 1);

	/* Same address: no change; a new one: epoch + 1. */
	assert_int_equal(ring_member_set(r, "z", "tcp://z:1"), 0);
	assert_int_equal(ring_epoch(r), 3);
	assert_int_equal(ring_member_set(r, "z", "tcp://z:2"), 0);
	assert_int_equal(ring_epoch(r), 4);
	assert_string_equal(ring_member_addr(r, 2), "tcp://z:2");
	assert_int_equal(ring_member_set(r, "", "tcp://z:2"), -EINVAL);
	assert_int_equal(ring_member_set(r, "y", ""), -EINVAL);
	assert_int_equal(ring_member_set(r, NULL, "tcp://z:2"), -EINVAL);

	/* Owners cannot leave the table; others can. */
	assert_int_equal(ring_member_remove(r, "m"), -EBUSY);
	assert_int_equal(ring_member_remove(r, "q"), -ENOENT);
	assert_int_equal(ring_member_remove(r, "a"), 0);
	assert_int_equal(ring_epoch(r), 5);
	assert_int_equal(ring_member_count(r), 2);
	assert_int_equal(ring_owner(r, RING_CUR, 7), 0);
	assert_string_equal(ring_member_name(r, 0), "m");

	/* A member that only the pending plan places is busy too. */
	{
		const char *to[] = {"z"};
		struct ring *p;

		assert_int_equal(ring_plan(r, to, 1, &p), 0);
		assert_int_equal(ring_member_remove(p, "z"), -EBUSY);
		assert_int_equal(ring_member_remove(p, "m"), -EBUSY);
		assert_int_equal(ring_commit(p), 0);
		assert_int_equal(ring_member_remove(p, "m"), 0);
		assert_int_equal(ring_member_count(p), 1);
		assert_int_equal(ring_owner(p, RING_CUR, 3), 0);
		ring_free(p);
	}
	ring_free(r);
}

static void
test_members_full(void **state)
{
	struct ring *r;
	char name[16];

	(void)state;
	assert_int_equal(ring_new(1, "a", "tcp://a:1", &r), 0);
	for (int i = 1; i < RING_MEMBERS_MAX; i++) {
		snprintf(name, sizeof(name), "m%04d", i);
		assert_int_equal(ring_member_set(r, name, "tcp://m:1"), 0);
	}
	assert_int_equal(ring_member_set(r, "zz", "tcp://m:1"), -ENOSPC);
	assert_int_equal(ring_member_count(r), RING_MEMBERS_MAX);
	ring_free(r);
}

/* ---- Plans ----------------------------------------------------------- */

static void
test_plan_errors(void **state)
{
	struct ring *r = ring_known(64, 3);
	struct ring *p = (struct ring *)1;
	const char *dup[] = {"n01", "n00", "n01"};
	const char *unknown[] = {"n00", "n09"};
	const char *null[] = {NULL};

	(void)state;
	assert_int_equal(ring_plan(r, name_ptrs, 0, &p), -EINVAL);
	assert_null(p);
	assert_int_equal(ring_plan(r, dup, 3, &p), -EINVAL);
	assert_int_equal(ring_plan(r, unknown, 2, &p), -ENOENT);
	assert_int_equal(ring_plan(r, null, 1, &p), -ENOENT);
	assert_null(p);
	ring_free(r);
}

static void
test_balance(void **state)
{
	(void)state;
	/* From one owner straight to S, and growing one at a time. */
	for (uint32_t s = 1; s <= 10; s++) {
		struct ring *r = ring_known(64, 10);
		r = replan(r, name_ptrs, s, NULL);
		assert_balanced(r, RING_CUR, name_ptrs, s);
		ring_free(r);
	}
	{
		struct ring *r = ring_known(64, 10);
		for (uint32_t s = 1; s <= 10; s++) {
			r = replan(r, name_ptrs, s, NULL);
			assert_balanced(r, RING_CUR, name_ptrs, s);
		}
		ring_free(r);
	}
	/* More members than partitions: one each, the rest none. */
	{
		struct ring *r = ring_known(8, 10);
		r = replan(r, name_ptrs, 10, NULL);
		assert_balanced(r, RING_CUR, name_ptrs, 10);
		ring_free(r);
	}
	/* A plan that moves nothing still has a (trivial) next. */
	{
		struct ring *r = ring_known(64, 1);
		struct ring *p;
		assert_int_equal(ring_plan(r, name_ptrs, 1, &p), 0);
		assert_true(ring_has_next(p));
		assert_int_equal(ring_moves(p), 0);
		ring_free(p);
		ring_free(r);
	}
}

/* Joins S -> S + 1 at a given Q; prints the moves. */
static void
joins(uint32_t q)
{
	struct ring *r = ring_known(q, 10);

	printf("  Q=%u join moves (S->S+1: moved / ceil(Q/(S+1))):", q);
	for (uint32_t s = 1; s < 10; s++) {
		uint32_t moves, bound = (q + s) / (s + 1);
		uint32_t after[MAXM];

		r = replan(r, name_ptrs, s, NULL);
		{
			struct ring *p;
			assert_int_equal(ring_plan(r, name_ptrs, s + 1, &p),
			                 0);
			moves = ring_moves(p);
			ring_owned_counts(p, RING_NEXT, after);
			/* Every move goes to the newcomer: no churn among
			 * the others. */
			assert_int_equal(after[s], moves);
			for (uint32_t pt = 0; pt < q; pt++) {
				int c = ring_owner(p, RING_CUR, pt);
				int n = ring_owner(p, RING_NEXT, pt);
				assert_true(c == n || n == (int)s);
			}
			ring_free(p);
		}
		printf(" %u->%u:%u/%u", s, s + 1, moves, bound);
		assert_true(moves <= bound + 1);
	}
	printf("\n");
	ring_free(r);
}

static void
test_join_moves(void **state)
{
	(void)state;
	joins(64);
	joins(256);
	joins(4096);
}

/* Each of S members leaves a balanced ring of S; prints the moves. */
static void
leaves(uint32_t q)
{
	printf("  Q=%u leave moves (S->S-1: worst moved / leaver held):", q);
	for (uint32_t s = 2; s <= 10; s++) {
		struct ring *r = ring_known(q, 10);
		uint32_t worst = 0, worst_held = 0;

		r = replan(r, name_ptrs, s, NULL);
		for (uint32_t gone = 0; gone < s; gone++) {
			const char *list[MAXM];
			uint32_t k = 0, held[MAXM];
			struct ring *p;

			for (uint32_t i = 0; i < s; i++)
				if (i != gone)
					list[k++] = names[i];
			ring_owned_counts(r, RING_CUR, held);
			assert_int_equal(ring_plan(r, list, k, &p), 0);
			assert_balanced(p, RING_NEXT, list, k);
			/* All of the leaver's partitions move. */
			for (uint32_t pt = 0; pt < q; pt++)
				if (ring_owner(p, RING_CUR, pt) == (int)gone)
					assert_int_not_equal(
					    ring_owner(p, RING_NEXT, pt),
					    (int)gone);
			assert_true(ring_moves(p) <= held[gone] + 1);
			if (ring_moves(p) > worst) {
				worst = ring_moves(p);
				worst_held = held[gone];
			}
			ring_free(p);
		}
		printf(" %u->%u:%u/%u", s, s - 1, worst, worst_held);
		ring_free(r);
	}
	printf("\n");
}

static void
test_leave_moves(void **state)
{
	(void)state;
	leaves(64);
	leaves(256);
}

static void
test_replace_member(void **state)
{
	/* One node swapped for another: only the leaver's partitions move,
	 * to the newcomer but for the odd one that rebalances the +1s. */
	struct ring *r = ring_known(64, 6);
	const char *before[] = {"n00", "n01", "n02", "n03", "n04"};
	const char *after[] = {"n00", "n01", "n05", "n03", "n04"};
	uint32_t held[MAXM], to_new = 0;
	struct ring *p;

	(void)state;
	r = replan(r, before, 5, NULL);
	ring_owned_counts(r, RING_CUR, held);
	assert_int_equal(ring_plan(r, after, 5, &p), 0);
	assert_int_equal(ring_moves(p), held[2]);
	for (uint32_t pt = 0; pt < 64; pt++) {
		if (ring_owner(p, RING_CUR, pt) != 2)
			continue;
		assert_int_not_equal(ring_owner(p, RING_NEXT, pt), 2);
		to_new += ring_owner(p, RING_NEXT, pt) == 5;
	}
	assert_true(to_new + 1 >= held[2]);
	ring_free(p);
	ring_free(r);
}

/* The fewest moves any balanced plan can make from r to the listed set:
 * the departed members' partitions plus, with the Q mod S larger targets
 * given to the largest holders, what the others hold above target. */
static uint32_t
min_moves(const struct ring *r, const bool *listed, uint32_t s)
{
	uint32_t held[MAXM], sorted[MAXM], k = 0, moves = 0;
	uint32_t q = ring_q(r);

	ring_owned_counts(r, RING_CUR, held);
	for (uint32_t m = 0; m < ring_member_count(r); m++) {
		uint32_t j;

		if (!listed[m]) {
			moves += held[m];
			continue;
		}
		for (j = k; j > 0 && sorted[j - 1] < held[m]; j--)
			sorted[j] = sorted[j - 1];
		sorted[j] = held[m];
		k++;
	}
	for (uint32_t i = 0; i < s; i++) {
		uint32_t target = q / s + (i < q % s);
		if (sorted[i] > target)
			moves += sorted[i] - target;
	}
	return moves;
}

static void
test_random_churn(void **state)
{
	(void)state;
	/* Random member sets, one after another: always balanced, always
	 * the fewest moves, and the same plan whatever the list order. */
	for (uint32_t q = 1; q <= RING_Q_MAX; q *= 4) {
		struct ring *r = ring_known(q, 12);
		/* Fewer steps on the big rings: a plan there is ~10 ms. */
		int steps = q >= 1024 ? 15 : 60;

		for (int step = 0; step < steps; step++) {
			const char *list[MAXM], *rev[MAXM];
			bool listed[MAXM] = {false};
			uint32_t s = 0;
			struct ring *a, *b;

			while (s == 0)
				for (uint32_t m = 0; m < 12; m++)
					if (xorshift() % 3 == 0) {
						listed[m] = true;
						list[s++] = names[m];
					}
			for (uint32_t i = 0; i < s; i++)
				rev[i] = list[s - 1 - i];
			assert_int_equal(ring_plan(r, list, s, &a), 0);
			assert_int_equal(ring_plan(r, rev, s, &b), 0);
			assert_true(ring_equal(a, b));
			assert_balanced(a, RING_NEXT, list, s);
			assert_int_equal(ring_moves(a),
			                 min_moves(r, listed, s));
			ring_free(b);
			ring_free(r);
			assert_int_equal(ring_commit(a), 0);
			r = a;
		}
		ring_free(r);
	}
}

static void
test_large(void **state)
{
	/* The biggest ring: Q = 4096 spread over 1000 members at once,
	 * then one leaves. */
	struct ring *r, *p;
	const char **list = test_malloc(1000 * sizeof(*list));
	char(*nm)[8] = test_malloc(1000 * sizeof(*nm));
	uint32_t *counts = test_malloc(RING_MEMBERS_MAX * sizeof(*counts));

	(void)state;
	assert_int_equal(ring_new(RING_Q_MAX, "m000", "tcp://h:1", &r), 0);
	for (int i = 0; i < 1000; i++) {
		snprintf(nm[i], sizeof(nm[i]), "m%03d", i);
		list[i] = nm[i];
		assert_int_equal(ring_member_set(r, nm[i], "tcp://h:1"), 0);
	}
	assert_int_equal(ring_plan(r, list, 1000, &p), 0);
	ring_free(r);
	assert_int_equal(ring_commit(p), 0);
	ring_owned_counts(p, RING_CUR, counts);
	for (int i = 0; i < 1000; i++)
		assert_true(counts[i] == 4 || counts[i] == 5);
	r = p;
	assert_int_equal(ring_plan(r, list + 1, 999, &p), 0);
	assert_int_equal(ring_moves(p), counts[0]);
	ring_free(p);
	ring_free(r);
	test_free(counts);
	test_free(nm);
	test_free(list);
}

static void
test_determinism(void **state)
{
	const char *fwd[] = {"n00", "n01", "n02", "n03", "n04", "n05"};
	const char *rev[] = {"n05", "n03", "n04", "n01", "n02", "n00"};
	struct ring *a = ring_known(256, 6);
	struct ring *b;
	struct ring *pa, *pb;
	uint8_t *ea, *eb;
	size_t la, lb;

	(void)state;
	/* b learns the members in another order: same ring. */
	assert_int_equal(ring_new(256, "n00", "tcp://10.0.0.0:7000", &b), 0);
	for (int i = 5; i >= 1; i--)
		member_add(b, i);
	assert_true(ring_equal(a, b));

	a = replan(a, fwd, 3, NULL);
	b = replan(b, rev + 3, 3, NULL);
	assert_true(ring_equal(a, b));
	assert_int_equal(ring_plan(a, fwd, 6, &pa), 0);
	assert_int_equal(ring_plan(b, rev, 6, &pb), 0);
	ea = encode(pa, &la);
	eb = encode(pb, &lb);
	assert_int_equal(la, lb);
	assert_memory_equal(ea, eb, la);
	/* And again from the same inputs. */
	ring_free(pb);
	mem_free(eb);
	assert_int_equal(ring_plan(a, fwd, 6, &pb), 0);
	eb = encode(pb, &lb);
	assert_int_equal(la, lb);
	assert_memory_equal(ea, eb, la);
	mem_free(ea);
	mem_free(eb);
	ring_free(pa);
	ring_free(pb);
	ring_free(a);
	ring_free(b);
}

/* ---- Preference lists ---------------------------------------------- */

static void
test_preflist_keys(void **state)
{
	struct ring *r = ring_known(64, 5);
	uint32_t worst, total;

	(void)state;
	r = replan(r, name_ptrs, 5, NULL);
	spread(r, 3, &worst, &total);
	printf("  Q=64 S=5: partitions walked for 3 distinct nodes: worst %u,"
	       " mean %.2f\n",
	       worst, (double)total / 64);
	assert_true(worst <= 4);

	for (int i = 0; i < 10000; i++) {
		uint64_t bytes[2] = {xorshift(), xorshift()};
		struct keypos pos;
		uint32_t pl[3], count;

		/* An ordinary key (0xFF would begin a placement key). */
		((uint8_t *)bytes)[0] &= 0x7f;
		assert_int_equal(keypos_of(bytes, sizeof(bytes), &pos), 0);
		assert_int_equal(
		    ring_preflist_key(r, RING_CUR, &pos, 3, pl, &count), 0);
		assert_int_equal(count, 3);
		assert_true(pl[0] < 5 && pl[1] < 5 && pl[2] < 5);
		assert_true(pl[0] != pl[1] && pl[0] != pl[2] &&
		            pl[1] != pl[2]);
		/* The coordinator owns the key's partition. */
		assert_int_equal(
		    (int)pl[0],
		    ring_owner(r, RING_CUR, ring_partition_of(r, &pos)));
	}
	ring_free(r);
}

static void
test_spread(void **state)
{
	(void)state;
	/* Growing one member at a time, then shrinking: how far a
	 * preference list of 3 has to walk. */
	for (uint32_t q = 64; q <= 1024; q *= 4) {
		struct ring *r = ring_known(q, 10);

		printf("  Q=%u worst/mean walk for 3 distinct, S=3..10..3:",
		       q);
		for (uint32_t i = 1; i <= 17; i++) {
			uint32_t s = i <= 10 ? i : 20 - i;
			uint32_t worst, total;

			r = replan(r, name_ptrs, s, NULL);
			if (s < 3)
				continue;
			spread(r, 3, &worst, &total);
			printf(" %u/%.1f", worst, (double)total / q);
		}
		printf("\n");
		ring_free(r);
	}
}

static void
test_preflist_edges(void **state)
{
	struct ring *r = ring_known(16, 3);
	uint32_t out[8], count = 99;
	const char *two[] = {"n00", "n02"};

	(void)state;
	assert_int_equal(ring_preflist(r, RING_CUR, 5, 3, out, &count), 0);
	assert_int_equal(count, 1);
	assert_int_equal(out[0], 0);
	assert_int_equal(ring_preflist(r, RING_CUR, 16, 3, out, &count),
	                 -EINVAL);
	assert_int_equal(count, 0);
	r = replan(r, two, 2, NULL);
	assert_int_equal(ring_preflist(r, RING_CUR, 15, 5, out, &count), 0);
	assert_int_equal(count, 2);
	assert_true(out[0] != out[1] && out[0] != 1 && out[1] != 1);
	assert_int_equal(ring_preflist(r, RING_CUR, 15, 0, out, &count), 0);
	assert_int_equal(count, 0);
	r = replan(r, name_ptrs, 3, NULL);
	assert_int_equal(ring_preflist(r, RING_NEXT, 0, 8, out, &count), 0);
	assert_int_equal(count, 3);
	ring_free(r);
}

static void
test_replicas_union(void **state)
{
	struct ring *r = ring_known(64, 6);
	struct ring *p;
	uint32_t out[6], cur[3], next[3], count, nc, nn;
	uint32_t moved = 0;

	(void)state;
	r = replan(r, name_ptrs, 3, NULL);
	/* Stable: the cur list. */
	assert_int_equal(ring_replicas_union(r, 7, 3, out, &count), 0);
	assert_int_equal(ring_preflist(r, RING_CUR, 7, 3, cur, &nc), 0);
	assert_int_equal(count, nc);
	assert_memory_equal(out, cur, nc * sizeof(*cur));
	assert_int_equal(ring_replicas_union(r, 64, 3, out, &count), -EINVAL);

	assert_int_equal(ring_plan(r, name_ptrs + 3, 3, &p), 0);
	for (uint32_t pt = 0; pt < 64; pt++) {
		assert_int_equal(ring_replicas_union(p, pt, 3, out, &count),
		                 0);
		ring_preflist(p, RING_CUR, pt, 3, cur, &nc);
		ring_preflist(p, RING_NEXT, pt, 3, next, &nn);
		/* cur first, then next's members not already there. */
		assert_memory_equal(out, cur, nc * sizeof(*cur));
		for (uint32_t i = 0; i < nn; i++) {
			bool found = false;
			for (uint32_t j = 0; j < count; j++)
				found = found || out[j] == next[i];
			assert_true(found);
		}
		for (uint32_t i = 0; i < count; i++)
			for (uint32_t j = i + 1; j < count; j++)
				assert_int_not_equal(out[i], out[j]);
		/* Disjoint owner sets: all six. */
		assert_int_equal(count, 6);
		moved += ring_owner(p, RING_CUR, pt) !=
		         ring_owner(p, RING_NEXT, pt);
	}
	assert_int_equal(moved, 64);
	assert_int_equal(ring_moves(p), 64);
	ring_free(p);
	ring_free(r);
}

/* What each member pulls under a plan: together, every member a next
 * list adds to its cur one (the union's extra), each for a partition where
 * it is new; nothing on a stable ring or for a member going away. */
static void
test_gains(void **state)
{
	struct ring *r = ring_known(64, 5);
	struct ring *p;
	uint32_t parts[64], out[6], cur[3], next[3], count, nc, nn;

	(void)state;
	r = replan(r, name_ptrs, 3, NULL);
	for (uint32_t m = 0; m < 5; m++)
		assert_int_equal(ring_gains(r, 3, m, parts), 0);
	/* n03 and n04 join, n00 leaves. */
	assert_int_equal(ring_plan(r, name_ptrs + 1, 4, &p), 0);
	uint32_t want = 0, got = 0;
	for (uint32_t pt = 0; pt < 64; pt++) {
		ring_replicas_union(p, pt, 3, out, &count);
		ring_preflist(p, RING_CUR, pt, 3, cur, &nc);
		want += count - nc;
	}
	for (uint32_t m = 0; m < 5; m++) {
		uint32_t g = ring_gains(p, 3, m, parts);
		assert_int_equal(ring_gains(p, 3, m, NULL), g);
		for (uint32_t i = 0; i < g; i++) {
			if (i > 0)
				assert_true(parts[i] > parts[i - 1]);
			ring_preflist(p, RING_CUR, parts[i], 3, cur, &nc);
			ring_preflist(p, RING_NEXT, parts[i], 3, next, &nn);
			bool in_cur = false, in_next = false;
			for (uint32_t k = 0; k < nc; k++)
				in_cur = in_cur || cur[k] == m;
			for (uint32_t k = 0; k < nn; k++)
				in_next = in_next || next[k] == m;
			assert_true(in_next && !in_cur);
		}
		if (m == 0)
			assert_int_equal(g, 0); /* leaving: gains nothing */
		if (m >= 3)
			assert_true(g > 0); /* new: pulls its share */
		got += g;
	}
	assert_int_equal(got, want);
	assert_int_equal(ring_gains(p, 3, 5, parts), 0); /* no such member */
	ring_free(p);
	ring_free(r);
}

static void
test_partition_range(void **state)
{
	struct ring *r;
	struct keypos from, to;
	bool to_end;

	(void)state;
	assert_int_equal(ring_new(64, "a", "tcp://a:1", &r), 0);
	for (uint32_t p = 0; p < 64; p++) {
		assert_int_equal(
		    ring_partition_range(r, p, &from, &to, &to_end), 0);
		assert_int_equal(ring_partition_of(r, &from), p);
		assert_int_equal(to_end, p == 63);
		if (!to_end)
			assert_int_equal(ring_partition_of(r, &to), p + 1);
	}
	assert_int_equal(ring_partition_range(r, 64, &from, &to, &to_end),
	                 -EINVAL);
	ring_free(r);

	assert_int_equal(ring_new(1, "a", "tcp://a:1", &r), 0);
	assert_int_equal(ring_partition_range(r, 0, &from, &to, &to_end), 0);
	assert_true(to_end);
	for (int i = 0; i < KEYPOS_LEN; i++)
		assert_int_equal(from.b[i], 0);
	ring_free(r);

	assert_int_equal(ring_new(4096, "a", "tcp://a:1", &r), 0);
	assert_int_equal(ring_partition_range(r, 4094, &from, &to, &to_end),
	                 0);
	assert_int_equal(from.b[0], 0xff);
	assert_int_equal(from.b[1], 0xe0);
	assert_int_equal(to.b[1], 0xf0);
	ring_free(r);
}

/* ---- Encoding ------------------------------------------------------ */

static void
roundtrip(const struct ring *r)
{
	uint8_t *e, *e2;
	size_t len, len2;
	struct ring *d;
	struct rd in;

	e = encode(r, &len);
	rd_init(&in, e, len);
	assert_int_equal(ring_decode(&in, &d), 0);
	assert_true(ring_equal(r, d));
	e2 = encode(d, &len2);
	assert_int_equal(len, len2);
	assert_memory_equal(e, e2, len);
	ring_free(d);
	mem_free(e2);
	mem_free(e);
}

static void
test_codec_roundtrip(void **state)
{
	struct ring *r = ring_known(64, 4);
	struct ring *p;

	(void)state;
	roundtrip(r);
	r = replan(r, name_ptrs, 3, NULL);
	roundtrip(r);
	assert_int_equal(ring_plan(r, name_ptrs + 1, 3, &p), 0);
	roundtrip(p);
	ring_free(p);
	ring_free(r);
}

static void
test_codec_truncated(void **state)
{
	struct ring *r = ring_known(16, 3);
	struct ring *p, *d;
	uint8_t *e, *longer;
	size_t len;
	struct rd in;

	(void)state;
	r = replan(r, name_ptrs, 2, NULL);
	assert_int_equal(ring_plan(r, name_ptrs, 3, &p), 0);
	e = encode(p, &len);
	for (size_t n = 0; n < len; n++) {
		d = (struct ring *)1;
		rd_init(&in, e, n);
		assert_int_equal(ring_decode(&in, &d), DYN_EBADMSG);
		assert_null(d);
		assert_true(in.bad);
	}
	/* Trailing bytes. */
	longer = test_malloc(len + 1);
	memcpy(longer, e, len);
	longer[len] = 0;
	rd_init(&in, longer, len + 1);
	assert_int_equal(ring_decode(&in, &d), DYN_EBADMSG);
	assert_null(d);
	test_free(longer);
	mem_free(e);
	ring_free(p);
	ring_free(r);
}

/* Hand-built encodings: a valid base, then one field wrong at a time. */
struct enc {
	uint8_t format;
	uint32_t q;
	uint16_t nm;
	const char *name[3];
	const char *addr[3];
	size_t name_len[3]; /* 0: strlen(name) */
	uint8_t len_field0; /* != 0: write this length for name[0] */
	uint16_t owner;     /* owner of partition 1 in cur */
	uint8_t has_next;
	uint16_t next_owner; /* owner of partition 0 in next */
};

static int
decode_enc(const struct enc *c)
{
	struct buf b;
	struct ring *r;
	struct rd in;
	int rc;

	buf_init(&b);
	buf_put_u8(&b, c->format);
	buf_put_u64(&b, 9);
	buf_put_u32(&b, c->q);
	buf_put_u16(&b, c->nm);
	for (int i = 0; i < 3 && c->name[i] != NULL; i++) {
		size_t ln =
		    c->name_len[i] ? c->name_len[i] : strlen(c->name[i]);

		buf_put_u8(&b, i == 0 && c->len_field0 ? c->len_field0
		                                       : (uint8_t)ln);
		buf_put(&b, c->name[i], ln);
		buf_put_u8(&b, (uint8_t)strlen(c->addr[i]));
		buf_put(&b, c->addr[i], strlen(c->addr[i]));
	}
	for (uint32_t p = 0; p < c->q && p < 4096; p++)
		buf_put_u16(&b, p == 1 ? c->owner : (uint16_t)(p % 2));
	buf_put_u8(&b, c->has_next);
	if (c->has_next)
		for (uint32_t p = 0; p < c->q && p < 4096; p++)
			buf_put_u16(&b, p == 0 ? c->next_owner : 0);
	assert_int_equal(buf_err(&b), 0);
	rd_init(&in, b.data, b.len);
	rc = ring_decode(&in, &r);
	if (rc == 0) {
		assert_int_equal(ring_epoch(r), 9);
		ring_free(r);
	} else {
		assert_null(r);
	}
	buf_fini(&b);
	return rc;
}

static void
test_codec_corrupt(void **state)
{
	const struct enc good = {
	    .format = RING_FORMAT,
	    .q = 8,
	    .nm = 2,
	    .name = {"a", "b", NULL},
	    .addr = {"tcp://a:1", "tcp://b:1", NULL},
	    .owner = 1,
	    .has_next = 1,
	    .next_owner = 1,
	};
	char big[200];
	struct enc c;

	(void)state;
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	assert_int_equal(decode_enc(&good), 0);

	c = good, c.has_next = 0;
	assert_int_equal(decode_enc(&c), 0);
	c = good, c.format = 2;
	assert_int_equal(decode_enc(&c), DYN_EBADMSG);
	c = good, c.q = 0;
	assert_int_equal(decode_enc(&c), DYN_EBADMSG);
	c = good, c.q = 6;
	assert_int_equal(decode_enc(&c), DYN_EBADMSG);
	c = good, c.q = 8192;
	assert_int_equal(decode_enc(&c), DYN_EBADMSG);
	c = good, c.nm = 0;
	assert_int_equal(decode_enc(&c), DYN_EBADMSG);
	c = good, c.nm = 3; /* says 3, carries 2 */
	assert_int_equal(decode_enc(&c), DYN_EBADMSG);
	c = good, c.nm = RING_MEMBERS_MAX + 1;
	assert_int_equal(decode_enc(&c), DYN_EBADMSG);
	c = good, c.nm = 1; /* the second member is garbage then */
	assert_int_equal(decode_enc(&c), DYN_EBADMSG);
	c = good, c.name[0] = "";
	assert_int_equal(decode_enc(&c), DYN_EBADMSG);
	c = good, c.name[1] = "b\0c", c.name_len[1] = 3; /* NUL inside */
	assert_int_equal(decode_enc(&c), DYN_EBADMSG);
	c = good, big[RING_NAME_MAX + 1] = '\0', c.name[1] = big;
	assert_int_equal(decode_enc(&c), DYN_EBADMSG);
	big[RING_NAME_MAX + 1] = 'x';
	c = good, big[RING_NAME_MAX] = '\0', c.name[1] = big;
	assert_int_equal(decode_enc(&c), 0); /* the maximum is fine */
	big[RING_NAME_MAX] = 'x';
	c = good, c.name[0] = "b"; /* duplicate */
	assert_int_equal(decode_enc(&c), DYN_EBADMSG);
	c = good, c.name[0] = "c"; /* unsorted */
	assert_int_equal(decode_enc(&c), DYN_EBADMSG);
	c = good, c.len_field0 = 200; /* longer than the input */
	assert_int_equal(decode_enc(&c), DYN_EBADMSG);
	c = good, c.addr[0] = "";
	assert_int_equal(decode_enc(&c), DYN_EBADMSG);
	c = good, big[RING_ADDR_MAX + 1] = '\0', c.addr[1] = big;
	assert_int_equal(decode_enc(&c), DYN_EBADMSG);
	big[RING_ADDR_MAX + 1] = 'x';
	c = good, big[RING_ADDR_MAX] = '\0', c.addr[1] = big;
	assert_int_equal(decode_enc(&c), 0);
	big[RING_ADDR_MAX] = 'x';
	c = good, c.owner = 2;
	assert_int_equal(decode_enc(&c), DYN_EBADMSG);
	c = good, c.owner = 0xffff;
	assert_int_equal(decode_enc(&c), DYN_EBADMSG);
	c = good, c.has_next = 2;
	assert_int_equal(decode_enc(&c), DYN_EBADMSG);
	c = good, c.next_owner = 2;
	assert_int_equal(decode_enc(&c), DYN_EBADMSG);
}

/* Every single-byte change of a valid encoding either decodes to a ring
 * that re-encodes to the same bytes or is rejected: nothing in between. */
static void
test_codec_bitflips(void **state)
{
	struct ring *r = ring_known(8, 3);
	struct ring *p, *d;
	uint8_t *e, *e2;
	size_t len, len2;
	uint32_t ok = 0, bad = 0;

	(void)state;
	r = replan(r, name_ptrs, 2, NULL);
	assert_int_equal(ring_plan(r, name_ptrs, 3, &p), 0);
	e = encode(p, &len);
	for (size_t i = 0; i < len; i++) {
		for (int bit = 0; bit < 8; bit++) {
			struct rd in;
			int rc;

			e[i] ^= (uint8_t)(1u << bit);
			rd_init(&in, e, len);
			rc = ring_decode(&in, &d);
			if (rc == 0) {
				e2 = encode(d, &len2);
				assert_int_equal(len, len2);
				assert_memory_equal(e, e2, len);
				mem_free(e2);
				ring_free(d);
				ok++;
			} else {
				assert_int_equal(rc, DYN_EBADMSG);
				bad++;
			}
			e[i] ^= (uint8_t)(1u << bit);
		}
	}
	printf("  bit flips: %u decoded (epoch, addresses, owners), %u "
	       "rejected\n",
	       ok, bad);
	mem_free(e);
	ring_free(p);
	ring_free(r);
}

/* ---- Order between rings ------------------------------------------- */

static int
enc_cmp(const struct ring *a, const struct ring *b)
{
	uint8_t *ea, *eb;
	size_t la, lb;
	int c;

	ea = encode(a, &la);
	eb = encode(b, &lb);
	c = memcmp(ea, eb, la < lb ? la : lb);
	if (c == 0)
		c = la < lb ? -1 : la > lb ? 1 : 0;
	mem_free(ea);
	mem_free(eb);
	return c < 0 ? -1 : c > 0 ? 1 : 0;
}

static void
test_newer(void **state)
{
	struct ring *rings[8];
	struct ring *t;
	const char *other[] = {"n01", "n02"};
	int n = 0;

	(void)state;
	rings[n++] = ring_known(64, 3); /* epoch 3 */
	rings[n++] = replan(ring_known(64, 3), name_ptrs, 2, NULL);
	rings[n++] = replan(ring_known(64, 3), other, 2, NULL);
	assert_int_equal(ring_plan(rings[1], name_ptrs, 3, &rings[n]), 0);
	n++;
	assert_int_equal(ring_plan(rings[1], other, 2, &rings[n]), 0);
	n++;
	assert_int_equal(ring_dup(rings[1], &rings[n]), 0);
	n++;
	/* Same epoch as rings[1], another address: a concurrent change. */
	assert_int_equal(ring_dup(rings[1], &t), 0);
	assert_int_equal(ring_member_set(t, "n02", "tcp://x:1"), 0);
	rings[n++] = t;
	assert_int_equal(ring_new(64, "zz", "tcp://z:1", &rings[n]), 0);
	n++;

	assert_true(ring_equal(rings[1], rings[5]));
	assert_false(ring_newer(rings[1], rings[5]));
	assert_true(ring_newer(rings[1], rings[0])); /* higher epoch */
	assert_true(ring_newer(rings[3], rings[1]));
	assert_false(ring_newer(rings[0], rings[0]));
	for (int i = 0; i < n; i++) {
		for (int j = 0; j < n; j++) {
			int c = ring_cmp(rings[i], rings[j]);
			/* The order is the byte order of the encodings,
			 * epoch first. */
			assert_int_equal(c, enc_cmp(rings[i], rings[j]));
			assert_int_equal(-c, ring_cmp(rings[j], rings[i]));
			assert_int_equal(ring_newer(rings[i], rings[j]),
			                 c > 0);
			if (ring_epoch(rings[i]) > ring_epoch(rings[j]))
				assert_true(ring_newer(rings[i], rings[j]));
			/* Only the copy is equal to another. */
			if (i != j && !(i + j == 6 && (i == 1 || j == 1)))
				assert_int_not_equal(c, 0);
		}
	}
	for (int i = 0; i < n; i++)
		ring_free(rings[i]);
}

/* ---- Out of memory ------------------------------------------------- */

static void
test_out_of_memory(void **state)
{
	struct ring *r = ring_known(64, 5);
	uint8_t *e;
	size_t len;
	int rc, steps = 0;

	(void)state;
	r = replan(r, name_ptrs, 4, NULL);
	{
		struct ring *p;
		assert_int_equal(ring_plan(r, name_ptrs, 5, &p), 0);
		ring_free(r);
		r = p;
	}
	e = encode(r, &len);
	/* Each call fails cleanly (nothing leaks: cmocka checks) at every
	 * allocation until it has all it needs. */
	for (rc = -ENOMEM; rc == -ENOMEM; steps++) {
		struct ring *p = (struct ring *)1;
		testmem_fail_after(steps);
		mem_set_allocator(&testmem_failing);
		rc = ring_plan(r, name_ptrs, 3, &p);
		mem_set_allocator(&testmem_checked);
		if (rc == -ENOMEM)
			assert_null(p);
		ring_free(p == (struct ring *)1 ? NULL : p);
	}
	assert_int_equal(rc, 0);
	for (rc = -ENOMEM, steps = 0; rc == -ENOMEM; steps++) {
		struct ring *d;
		struct rd in;
		rd_init(&in, e, len);
		testmem_fail_after(steps);
		mem_set_allocator(&testmem_failing);
		rc = ring_decode(&in, &d);
		mem_set_allocator(&testmem_checked);
		ring_free(d);
	}
	assert_int_equal(rc, 0);
	for (rc = -ENOMEM, steps = 0; rc == -ENOMEM; steps++) {
		struct ring *d;
		testmem_fail_after(steps);
		mem_set_allocator(&testmem_failing);
		rc = ring_dup(r, &d);
		mem_set_allocator(&testmem_checked);
		ring_free(d);
	}
	assert_int_equal(rc, 0);
	/* A failed member_set leaves the ring as it was. */
	{
		uint64_t epoch = ring_epoch(r);
		testmem_fail_after(0);
		mem_set_allocator(&testmem_failing);
		rc = ring_member_set(r, "new", "tcp://new:1");
		mem_set_allocator(&testmem_checked);
		assert_int_equal(rc, -ENOMEM);
		assert_int_equal(ring_epoch(r), epoch);
		assert_int_equal(ring_member_find(r, "new"), -ENOENT);
	}
	mem_free(e);
	ring_free(r);
}

/* Each test under cmocka's leak-checked allocator. */
#define T(fn)                                                                 \
	cmocka_unit_test_setup_teardown(fn, testmem_setup, testmem_teardown)

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    T(test_new),
	    T(test_members),
	    T(test_members_full),
	    T(test_plan_errors),
	    T(test_balance),
	    T(test_join_moves),
	    T(test_leave_moves),
	    T(test_replace_member),
	    T(test_random_churn),
	    T(test_large),
	    T(test_determinism),
	    T(test_preflist_keys),
	    T(test_spread),
	    T(test_preflist_edges),
	    T(test_replicas_union),
	    T(test_gains),
	    T(test_partition_range),
	    T(test_codec_roundtrip),
	    T(test_codec_truncated),
	    T(test_codec_corrupt),
	    T(test_codec_bitflips),
	    T(test_newer),
	    T(test_out_of_memory),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
