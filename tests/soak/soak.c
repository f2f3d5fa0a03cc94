/*
 * soak — a randomized fault schedule on a 5-node cluster under a
 * read-modify-write load, then the checks (not a CI test: tests/soak/run).
 *
 * For SOAK_SECONDS (default 600) four clients get and put keys soak/0..199
 * through every node (each acknowledged put goes to the history checker,
 * history.h), and a writer changes files on a dynamofs mount of the
 * cluster beside a model (files.h), while one fault at a time, chosen at
 * random (seed
 * SOAK_SEED), hits the cluster:
 *   kill     kill -9 of a node, restarted 2-6 s later;
 *   freeze   SIGSTOP of a node for 2-8 s, then SIGCONT;
 *   split    a random 2|3 or 1|4 partition (fault injection) for 3-10 s;
 *   wipe     a node stopped, its data directory removed, restarted (once);
 *   join     a sixth node joins (once), and later
 *   leave    a node leaves and exits (once, after the join).
 * Then everything heals and every node runs; the program waits until every
 * replica of every key holds the same versions and checks:
 *   - every acknowledged put is present or superseded (none lost);
 *   - every replica equal (measured: how long convergence took);
 *   - on a fresh mount, every file's versions are contents written to it,
 *     the last acknowledged one or a later one among them.
 * The nodes collect garbage blobs and purge tombstones with short grace
 * periods (30 s), so the collector runs under the faults too.
 * Puts and gets that fail during faults are counted, not errors: a client
 * on the minority side of a split cannot gather W.  Exit 0 when nothing
 * was lost and everything converged.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/wait.h>

#include "err.h"
#include "files.h"
#include "harness.h"
#include "history.h"
#include "mem.h"

#define NODES   5 /* n0..n4; n5 joins */
#define NKEYS   200
#define CLIENTS 4

/* Every node, also when it restarts: the collector and the purge with
 * short grace periods, so they run under the faults. */
static const char *const node_opts[] = {"--gc-interval", "5000",
    "--gc-grace", "30000", "--tombstone-grace", "30000", NULL};

static struct harness h;
static struct history *hist;
static atomic_bool stop;
static atomic_int acked, failed;
static uint32_t rng;

static uint32_t
rnd(uint32_t n)
{
	rng ^= rng << 13, rng ^= rng >> 17, rng ^= rng << 5;
	return rng % n;
}

static void *
client(void *arg)
{
	int id = (int)(intptr_t)arg;
	struct dyn_client *c = harness_client(&h, 2000, 0, 1, 2, 3, 4, -1);
	uint32_t x = 0x9e3779b9u * (uint32_t)(id + 1);
	char key[32], val[64];
	for (int seq = 0; !atomic_load(&stop); seq++) {
		x ^= x << 13, x ^= x >> 17, x ^= x << 5;
		snprintf(key, sizeof(key), "soak/%u", x % NKEYS);
		snprintf(val, sizeof(val), "c%d-%d", id, seq);
		struct dyn_get_result r;
		int rc = dyn_get(c, key, strlen(key), NULL, &r);
		if (rc != 0 && rc != -ENOENT) {
			atomic_fetch_add(&failed, 1);
			harness_pause_ms(50);
			continue;
		}
		uint8_t *nc = NULL;
		size_t ncl = 0;
		rc = dyn_put(c, key, strlen(key), r.ctx, r.ctx_len, val,
		    strlen(val), NULL, &nc, &ncl);
		if (rc == 0) {
			history_put(hist, key, val, r.ctx, r.ctx_len, nc, ncl);
			atomic_fetch_add(&acked, 1);
		} else {
			atomic_fetch_add(&failed, 1);
		}
		mem_free(nc);
		dyn_get_result_fini(&r);
	}
	dyn_client_free(c);
	return NULL;
}

/* Cut node i off from the names given (NULL, 0: heal). */
static void
cut(int i, const char *const *names, size_t n)
{
	struct dyn_client *d = harness_client_direct(&h, i);
	int rc = dyn_fault(d, 0, names, n);
	if (rc != 0)
		fprintf(stderr, "soak: fault on n%d: %s\n", i, dyn_strerror(rc));
	dyn_client_free(d);
}

static bool
running(int i)
{
	return i < h.n && h.nodes[i].pid > 0;
}

static int
env_int(const char *name, int dflt)
{
	const char *v = getenv(name);
	return v && *v ? atoi(v) : dflt;
}

/* Node 0 is the seed the others restart through: never killed or wiped
 * (a restart needs a running seed), but frozen and cut off like any. */
static int
victim(void)
{
	for (;;) {
		int i = 1 + (int)rnd(NODES);
		if (running(i))
			return i;
	}
}

int
main(void)
{
	setvbuf(stdout, NULL, _IOLBF, 0); /* the schedule as it runs */
	int seconds = env_int("SOAK_SECONDS", 600);
	rng = (uint32_t)env_int("SOAK_SEED", 20261202) | 1u;
	const char *dynamofs = getenv("DYNAMOFS");
	if (!dynamofs) {
		fprintf(stderr, "soak: set DYNAMOFS to the dynamofs binary\n");
		return 2;
	}
	harness_init(&h);
	harness_start_joined(&h, 0, -1, node_opts);
	for (int i = 1; i < NODES; i++)
		harness_start_joined(&h, i, 0, node_opts);
	harness_wait_ring(&h, NODES, 60000);
	hist = history_new(auth_role_key(&h.keys, 0, AUTH_NODE));
	printf("soak: %d nodes, %d s, seed %u\n", NODES, seconds, rng);
	files_start(&h, NODES, dynamofs, rng);

	pthread_t t[CLIENTS];
	for (int i = 0; i < CLIENTS; i++)
		CHECK(pthread_create(&t[i], NULL, client, (void *)(intptr_t)i) ==
		    0);

	int counts[6] = {0};
	static const char *const what[] = {"kill", "freeze", "split", "wipe",
	    "join", "leave"};
	bool wiped = false, joined = false, left = false;
	long long t0 = harness_now_ms();
	while (harness_now_ms() - t0 < seconds * 1000LL) {
		harness_pause_ms(1000 + (int)rnd(4000));
		int f = (int)rnd(6);
		if ((f == 3 && wiped) || (f == 4 && joined) ||
		    (f == 5 && (left || !joined)))
			f = (int)rnd(3);
		long long at = (harness_now_ms() - t0) / 1000;
		int v = victim();
		if (f == 0) {
			harness_stop(&h, v, SIGKILL);
			harness_pause_ms(2000 + (int)rnd(4000));
			harness_start_joined(&h, v, 0, node_opts);
			printf("%4llds kill -9 n%d, restarted\n", at, v);
		} else if (f == 1) {
			int ms = 2000 + (int)rnd(6000);
			kill(h.nodes[v].pid, SIGSTOP);
			harness_pause_ms(ms);
			kill(h.nodes[v].pid, SIGCONT);
			printf("%4llds froze n%d for %d ms\n", at, v, ms);
		} else if (f == 2) {
			/* Side 1: 1 or 2 random running nodes; 0: the rest. */
			bool in_a[HARNESS_MAX_NODES] = {false};
			int na = 1 + (int)rnd(2);
			for (int k = 0; k < na; k++)
				in_a[victim()] = true;
			const char *side[2][HARNESS_MAX_NODES];
			size_t ns[2] = {0, 0};
			for (int i = 0; i < h.n; i++)
				if (running(i))
					side[in_a[i]][ns[in_a[i]]++] = h.nodes[i].name;
			for (int i = 0; i < h.n; i++)
				if (running(i))
					cut(i, side[!in_a[i]], ns[!in_a[i]]);
			int ms = 3000 + (int)rnd(7000);
			harness_pause_ms(ms);
			for (int i = 0; i < h.n; i++)
				if (running(i))
					cut(i, NULL, 0);
			printf("%4llds split %zu|%zu for %d ms\n", at, ns[1], ns[0],
			    ms);
		} else if (f == 3) {
			harness_stop(&h, v, SIGTERM);
			harness_wipe(&h, v);
			harness_start_joined(&h, v, 0, node_opts);
			wiped = true;
			printf("%4llds wiped n%d, restarted empty\n", at, v);
		} else if (f == 4) {
			harness_start_joined(&h, NODES, 0, node_opts);
			joined = true;
			printf("%4llds n%d joined\n", at, NODES);
		} else {
			struct dyn_client *d = harness_client_direct(&h, v);
			int rc = dyn_leave(d, 0);
			dyn_client_free(d);
			if (rc == 0) {
				int st = harness_stop(&h, v, 0);
				printf("%4llds n%d left (exit %d)\n", at, v,
				    WIFEXITED(st) ? WEXITSTATUS(st) : -1);
				left = true;
			} else {
				printf("%4llds leave of n%d refused: %s\n", at, v,
				    dyn_strerror(rc));
			}
		}
		counts[f]++;
	}
	atomic_store(&stop, true);
	for (int i = 0; i < CLIENTS; i++)
		pthread_join(t[i], NULL);
	files_stop();
	printf("faults:");
	for (int f = 0; f < 6; f++)
		printf(" %s %d", what[f], counts[f]);
	printf("\nload: %d puts acknowledged, %d gets/puts failed during "
	       "faults\n", atomic_load(&acked), atomic_load(&failed));

	/* Heal: every node up and connected, the ring settled. */
	int owners = 0;
	for (int i = 0; i < h.n; i++) {
		if (running(i)) {
			kill(h.nodes[i].pid, SIGCONT);
			cut(i, NULL, 0);
			owners++;
		}
	}
	harness_wait_ring(&h, owners, 120000);
	/* A routing client: harness_converged reads its ring (fetched by the
	 * first get) for each key's owners. */
	struct dyn_client *all = harness_client(&h, 5000, 0, -1);
	struct dyn_get_result g;
	dyn_get(all, "soak/0", 6, NULL, &g);
	dyn_get_result_fini(&g);
	long long t1 = harness_now_ms();
	int pending = NKEYS;
	char key[32];
	while (pending > 0 && harness_now_ms() - t1 < 120000) {
		pending = 0;
		for (int k = 0; k < NKEYS; k++) {
			snprintf(key, sizeof(key), "soak/%d", k);
			pending += !harness_converged(&h, all, key);
		}
		if (pending > 0)
			harness_pause_ms(500);
	}
	printf("converged: every replica of %d keys equal %lld ms after the "
	       "heal (%d not)\n",
	    NKEYS, harness_now_ms() - t1, pending);
	struct history_counts hc = history_check(hist, all);
	printf("history: %zu acknowledged, %zu present, %zu superseded, %zu "
	       "lost\n",
	    hc.acknowledged, hc.present, hc.superseded, hc.lost);
	dyn_client_free(all);
	history_free(hist);
	struct files_counts fc;
	bool files_ok = files_check(&fc);
	printf("files: %zu steps, %zu acknowledged, %zu failed during faults, "
	       "%zu stale reads, %zu siblings seen, %zu uncertain\n",
	    fc.steps, fc.acked, fc.failed, fc.stale, fc.siblings_seen,
	    fc.uncertain);
	printf("files on a fresh mount: %zu files, %zu versions, %zu lost, "
	       "%zu never written\n", fc.files, fc.versions, fc.lost,
	    fc.foreign);
	bool ok = hc.lost == 0 && pending == 0 && hc.acknowledged > 0 &&
	    files_ok;
	printf("soak: %s\n", ok ? "ok" : "FAILED");
	return ok ? 0 : 1;
}
