/* Unit tests for node/quorum: a get's read set, a put's destinations,
 * stand-ins and hints, for walks of given health. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "quorum.h"

enum { OK = RPC_PEER_OK, SUS = RPC_PEER_SUSPECT, GONE = RPC_PEER_GONE };

/* A walk of count replicas and ext stand-ins, n0 .. n(count+ext-1), this
 * node at index self (-1: not in the walk), with the health given. */
static void
walk_make(struct replicas *rp, struct walk *w, uint32_t count,
    uint32_t read_count, uint32_t ext, int self, const int *health)
{
	memset(rp, 0, sizeof(*rp));
	memset(w, 0, sizeof(*w));
	rp->count = count;
	rp->read_count = read_count;
	rp->ext_count = ext;
	rp->self_in = self >= 0 && (uint32_t)self < count;
	w->rp = rp;
	for (uint32_t i = 0; i < count + ext; i++) {
		snprintf(rp->name[i], sizeof(rp->name[i]), "n%u", i);
		snprintf(rp->addr[i], sizeof(rp->addr[i]), "tcp://h%u:1", i);
		w->self[i] = (int)i == self;
		w->health[i] = w->self[i] ? RPC_PEER_GONE
		                          : (enum rpc_health)health[i];
	}
}

/* The plan's destinations as "at" or "at>hint_for", space separated. */
static const char *
dests(const struct put_plan *p, char *out, size_t cap)
{
	size_t o = 0;
	out[0] = '\0';
	for (size_t i = 0; i < p->nd; i++) {
		if (p->d[i].hint_for >= 0)
			o += (size_t)snprintf(out + o, cap - o, "%s%u>%d",
			    i ? " " : "", p->d[i].at, p->d[i].hint_for);
		else
			o += (size_t)snprintf(out + o, cap - o, "%s%u",
			    i ? " " : "", p->d[i].at);
	}
	return out;
}

static const char *
list(const uint32_t *v, size_t n, char *out, size_t cap)
{
	size_t o = 0;
	out[0] = '\0';
	for (size_t i = 0; i < n; i++)
		o += (size_t)snprintf(out + o, cap - o, "%s%u", i ? " " : "",
		    v[i]);
	return out;
}

/* Plan a put on the walk; check destinations, hints kept here and the
 * coordinator's own stand-in. */
static void
expect_plan(const struct walk *w, const char *want_d, const char *want_h,
    int want_local, struct put_plan *p)
{
	char got[128];
	quorum_plan_put(w, p);
	assert_string_equal(dests(p, got, sizeof(got)), want_d);
	assert_string_equal(list(p->hints, p->nhints, got, sizeof(got)),
	    want_h);
	assert_int_equal(p->local_standin, want_local);
}

static void
expect_reads(const struct walk *w, const char *want, bool want_self)
{
	uint32_t idx[REPLICAS_MAX];
	bool self = !want_self;
	char got[128];
	size_t k = quorum_read_set(w, idx, &self);
	assert_string_equal(list(idx, k, got, sizeof(got)), want);
	assert_int_equal(self, want_self);
}

static void
test_all_healthy(void **state)
{
	(void)state;
	struct replicas rp;
	struct walk w;
	struct put_plan p;
	walk_make(&rp, &w, 3, 3, 2, 0, (const int[]){OK, OK, OK, OK, OK});
	expect_plan(&w, "1 2", "", -1, &p);
	expect_reads(&w, "1 2", true);
	/* A second try takes the stand-ins in walk order, then none. */
	assert_int_equal(quorum_standin_take(&w, &p, RPC_PEER_SUSPECT), 3);
	assert_int_equal(quorum_standin_take(&w, &p, RPC_PEER_SUSPECT), 4);
	assert_int_equal(quorum_standin_take(&w, &p, RPC_PEER_SUSPECT), -1);
}

static void
test_replica_down(void **state)
{
	(void)state;
	struct replicas rp;
	struct walk w;
	struct put_plan p;
	/* n2 gone: n3 stands in for it, and is read in its place. */
	walk_make(&rp, &w, 3, 3, 2, 0, (const int[]){OK, OK, GONE, OK, OK});
	expect_plan(&w, "1 3>2", "", -1, &p);
	expect_reads(&w, "1 3", true);
	/* The retry does not take n3 again. */
	assert_int_equal(quorum_standin_take(&w, &p, RPC_PEER_OK), 4);
}

static void
test_suspect_replica(void **state)
{
	(void)state;
	struct replicas rp;
	struct walk w;
	struct put_plan p;
	/* A suspect replica with a healthy stand-in: the stand-in, and
	 * reads go to healthy nodes first. */
	walk_make(&rp, &w, 3, 3, 2, 0, (const int[]){OK, OK, SUS, OK, GONE});
	expect_plan(&w, "1 3>2", "", -1, &p);
	expect_reads(&w, "1 3", true);
	/* No healthy stand-in: the suspect replica itself, and a hint
	 * here; reads ask it last. */
	walk_make(&rp, &w, 3, 3, 2, 0, (const int[]){OK, OK, SUS, GONE, GONE});
	expect_plan(&w, "1 2", "2", -1, &p);
	expect_reads(&w, "1 2", true);
	/* Healthy ones first, then suspects, until count are read. */
	walk_make(&rp, &w, 3, 3, 2, 0, (const int[]){OK, SUS, SUS, OK, GONE});
	expect_reads(&w, "3 1", true);
}

static void
test_nobody_to_stand_in(void **state)
{
	(void)state;
	struct replicas rp;
	struct walk w;
	struct put_plan p;
	/* Everyone else gone: the hints stay here. */
	walk_make(&rp, &w, 3, 3, 2, 0,
	    (const int[]){OK, GONE, GONE, GONE, GONE});
	expect_plan(&w, "", "1 2", -1, &p);
	expect_reads(&w, "", true);
	/* A suspect stand-in beats none, for a gone replica. */
	walk_make(&rp, &w, 3, 3, 2, 0,
	    (const int[]){OK, GONE, GONE, SUS, GONE});
	expect_plan(&w, "3>1", "2", -1, &p);
}

static void
test_coordinator_outside(void **state)
{
	(void)state;
	struct replicas rp;
	struct walk w;
	struct put_plan p;
	/* This node is stand-in 3 of the walk: it stands in itself for the
	 * first replica that is not healthy, and never twice. */
	walk_make(&rp, &w, 3, 3, 2, 3, (const int[]){GONE, OK, OK, OK, OK});
	expect_plan(&w, "1 2", "", 0, &p);
	expect_reads(&w, "1 2", true);
	walk_make(&rp, &w, 3, 3, 2, 3, (const int[]){GONE, GONE, OK, OK, OK});
	expect_plan(&w, "2 4>1", "", 0, &p);
	/* All healthy: no stand-in, and this node does not read. */
	walk_make(&rp, &w, 3, 3, 2, 3, (const int[]){OK, OK, OK, OK, OK});
	expect_plan(&w, "0 1 2", "", -1, &p);
	expect_reads(&w, "0 1 2", false);
}

static void
test_transfer(void **state)
{
	(void)state;
	struct replicas rp;
	struct walk w;
	struct put_plan p;
	/* During a transfer the new replica (index 3) is written and read
	 * like the others; a stand-in comes after it. */
	walk_make(&rp, &w, 4, 3, 1, 0, (const int[]){OK, OK, OK, OK, OK});
	expect_plan(&w, "1 2 3", "", -1, &p);
	expect_reads(&w, "1 2 3", true);
	walk_make(&rp, &w, 4, 3, 1, 0, (const int[]){OK, OK, OK, GONE, OK});
	expect_plan(&w, "1 2 4>3", "", -1, &p);
	expect_reads(&w, "1 2 4", true);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_all_healthy),
	    cmocka_unit_test(test_replica_down),
	    cmocka_unit_test(test_suspect_replica),
	    cmocka_unit_test(test_nobody_to_stand_in),
	    cmocka_unit_test(test_coordinator_outside),
	    cmocka_unit_test(test_transfer),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
