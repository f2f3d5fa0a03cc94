/*
 * Five nodes split 3|2 for 20 s while clients on both sides write
 * overlapping keys (read-modify-write) and side A deletes keys:
 *   - every put on both sides is accepted (sloppy quorum);
 *   - after the heal every replica of every key converges (measured);
 *   - keys written on both sides show siblings;
 *   - the history checker finds no acknowledged write lost;
 *   - deleted keys stay deleted, also when their hints arrive late.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>

#include "err.h"
#include "harness.h"
#include "history.h"
#include "mem.h"
#include "wire.h"

#define NKEYS    100
#define SPLIT_MS 20000

static struct harness h;
static struct history *hist;
static atomic_bool stop;
static atomic_int puts_ok, puts_failed;
static bool written[2][NKEYS];

struct side {
	int id; /* 0: A, 1: B */
	struct dyn_client *c;
};

static void *
writer(void *arg)
{
	struct side *sd = arg;
	uint32_t x = 12345u + (uint32_t)sd->id * 7919u;
	char key[32], val[64];
	for (int seq = 0; !atomic_load(&stop); seq++) {
		x ^= x << 13, x ^= x >> 17, x ^= x << 5;
		int k = (int)(x % NKEYS);
		snprintf(key, sizeof(key), "part/%d", k);
		snprintf(val, sizeof(val), "%c-%d-%d", 'A' + sd->id, k, seq);
		struct dyn_get_result r;
		int rc = dyn_get(sd->c, key, strlen(key), NULL, &r);
		if (rc != 0 && rc != -ENOENT) {
			atomic_fetch_add(&puts_failed, 1);
			fprintf(stderr, "get %s: %s\n", key, dyn_strerror(rc));
			continue;
		}
		uint8_t *nc = NULL;
		size_t ncl = 0;
		rc = dyn_put(sd->c, key, strlen(key), r.ctx, r.ctx_len, val,
		    strlen(val), NULL, &nc, &ncl);
		if (rc == 0) {
			history_put(hist, key, val, r.ctx, r.ctx_len, nc, ncl);
			atomic_fetch_add(&puts_ok, 1);
			written[sd->id][k] = true;
		} else {
			atomic_fetch_add(&puts_failed, 1);
			fprintf(stderr, "put %s: %s\n", key, dyn_strerror(rc));
		}
		mem_free(nc);
		dyn_get_result_fini(&r);
	}
	return NULL;
}

static void
cut(int node, const char *const *others, size_t n)
{
	struct dyn_client *d = harness_client_direct(&h, node);
	CHECK_RC(dyn_fault(d, 0, others, n), 0);
	dyn_client_free(d);
}

int
main(void)
{
	harness_init(&h);
	harness_start_cluster(&h, 5);
	hist = history_new(auth_role_key(&h.keys, 0, AUTH_NODE));
	struct dyn_client *all = harness_client(&h, 5000, 0, 1, 2, 3, 4, -1);

	/* Keys side A will delete during the split. */
	char key[32];
	for (int k = 0; k < 10; k++) {
		snprintf(key, sizeof(key), "gone/%d", k);
		harness_put(all, key, "doomed");
	}

	/* A node cut off from all others cannot gather W = 2: the put fails
	 * with a clear error, never silently. */
	const char *others4[] = {"n0", "n1", "n2", "n3"}, *n4[] = {"n4"};
	cut(4, others4, 4);
	for (int i = 0; i < 4; i++)
		cut(i, n4, 1);
	struct dyn_client *lone = harness_client_direct(&h, 4);
	CHECK_RC(dyn_put(lone, "alone", 5, NULL, 0, "x", 1, NULL, NULL, NULL),
	    DYN_EQUORUM);
	dyn_client_free(lone);
	for (int i = 0; i < 5; i++)
		cut(i, NULL, 0);
	printf("a node alone: put refused with \"%s\"\n",
	    dyn_strerror(DYN_EQUORUM));

	const char *a_names[] = {"n0", "n1", "n2"}, *b_names[] = {"n3", "n4"};
	for (int i = 0; i < 3; i++)
		cut(i, b_names, 2);
	for (int i = 3; i < 5; i++)
		cut(i, a_names, 3);
	printf("split: n0 n1 n2 | n3 n4\n");

	struct side sa = {0, harness_client_direct(&h, 0)};
	struct side sb = {1, harness_client_direct(&h, 3)};
	/* Clients stay on their side of the split: no routing by the ring
	 * (which would reach across), only their side's nodes. */
	const char *aa[] = {h.nodes[0].addr, h.nodes[1].addr, h.nodes[2].addr};
	const char *ba[] = {h.nodes[3].addr, h.nodes[4].addr};
	struct dyn_client_opts ao = {.nodes = aa, .nnodes = 3, .keys = h.keys,
	    .timeout_ms = 5000, .no_routing = true};
	struct dyn_client_opts bo = {.nodes = ba, .nnodes = 2, .keys = h.keys,
	    .timeout_ms = 5000, .no_routing = true};
	struct dyn_client *a_all, *b_all;
	CHECK_RC(dyn_client_new(&ao, &a_all), 0);
	CHECK_RC(dyn_client_new(&bo, &b_all), 0);
	dyn_client_free(sa.c);
	dyn_client_free(sb.c);
	sa.c = a_all;
	sb.c = b_all;

	pthread_t ta, tb;
	CHECK(pthread_create(&ta, NULL, writer, &sa) == 0);
	CHECK(pthread_create(&tb, NULL, writer, &sb) == 0);

	/* Side A deletes the gone keys, writes then deletes the late ones (as
	 * hints for the replicas across the split). */
	for (int k = 0; k < 10; k++) {
		snprintf(key, sizeof(key), "gone/%d", k);
		harness_delete_seen(a_all, key);
		snprintf(key, sizeof(key), "late/%d", k);
		harness_put(a_all, key, "short-lived");
		harness_delete_seen(a_all, key);
	}

	long long t0 = harness_now_ms();
	while (harness_now_ms() - t0 < SPLIT_MS)
		harness_pause_ms(100);
	atomic_store(&stop, true);
	pthread_join(ta, NULL);
	pthread_join(tb, NULL);
	printf("during the split: %d puts acknowledged, %d failed\n",
	    atomic_load(&puts_ok), atomic_load(&puts_failed));
	CHECK(atomic_load(&puts_failed) == 0);

	for (int i = 0; i < 5; i++)
		cut(i, NULL, 0);
	long long t1 = harness_now_ms();
	printf("healed\n");

	int pending = NKEYS;
	while (harness_now_ms() - t1 < 180000) {
		pending = 0;
		for (int k = 0; k < NKEYS; k++) {
			snprintf(key, sizeof(key), "part/%d", k);
			pending += !harness_converged(&h, all, key);
		}
		for (int k = 0; k < 10; k++) {
			snprintf(key, sizeof(key), "gone/%d", k);
			pending += !harness_converged(&h, all, key);
			snprintf(key, sizeof(key), "late/%d", k);
			pending += !harness_converged(&h, all, key);
		}
		if (pending == 0)
			break;
		harness_pause_ms(200);
	}
	printf("every replica of every key converged %lld ms after the heal "
	       "(%d not yet)\n",
	    harness_now_ms() - t1, pending);
	CHECK(pending == 0);

	int both = 0, with_siblings = 0;
	for (int k = 0; k < NKEYS; k++) {
		if (!written[0][k] || !written[1][k])
			continue;
		both++;
		snprintf(key, sizeof(key), "part/%d", k);
		struct dyn_get_result r;
		CHECK_RC(dyn_get(all, key, strlen(key), NULL, &r), 0);
		with_siblings += vset_live(&r.versions) >= 2;
		dyn_get_result_fini(&r);
	}
	printf("%d keys written on both sides, %d of them with siblings\n",
	    both, with_siblings);
	CHECK(both > 0 && with_siblings == both);

	struct history_counts hc = history_check(hist, all);
	printf("history: %zu acknowledged, %zu present, %zu superseded, %zu "
	       "lost\n",
	    hc.acknowledged, hc.present, hc.superseded, hc.lost);
	CHECK(hc.lost == 0 && hc.acknowledged > 0);

	for (int k = 0; k < 10; k++) {
		struct dyn_get_result r;
		snprintf(key, sizeof(key), "gone/%d", k);
		CHECK_RC(dyn_get(all, key, strlen(key), NULL, &r), -ENOENT);
		dyn_get_result_fini(&r);
		snprintf(key, sizeof(key), "late/%d", k);
		CHECK_RC(dyn_get(all, key, strlen(key), NULL, &r), -ENOENT);
		dyn_get_result_fini(&r);
	}
	printf("deleted keys stay deleted after the heal and late hints\n");

	history_free(hist);
	dyn_client_free(a_all);
	dyn_client_free(b_all);
	dyn_client_free(all);
	return 0;
}
