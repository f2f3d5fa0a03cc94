/*
 * A frozen replica is routed around: three nodes serve a paced load of
 * FROZEN_OPS ops/s (default 200: puts and gets of keys every node
 * replicates, through one client that routes by the ring); after a steady
 * spell one node is frozen (SIGSTOP) for FREEZE_MS (default 10 s to keep
 * CI short; the 20 s with FREEZE_MS=20000), then thawed.  Over
 * the whole run:
 *   - no operation fails;
 *   - no second completes fewer than half the steady ops/s;
 *   - p99 latency is at most 300 ms (the timeout may be paid once per
 *     peer, not once per request).
 * Latency is measured from each op's scheduled start, so a stalled loader
 * counts its backlog (no coordinated omission).  Timing-bound: suite
 * faults only, not under ASan.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/wait.h>

#include "err.h"
#include "harness.h"

#define LOADERS  8
#define WARM_MS  5000
#define AFTER_MS 5000
#define P99_MS   300

static struct harness h;
static struct dyn_client *cl;
static long long t_start, t_end;
static int period_ms; /* per loader */
static atomic_int errors;

/* Each op's completion second and latency. */
#define MAX_OPS 100000
static struct op {
	int sec;
	float ms;
} ops[MAX_OPS];
static atomic_int nops;

static void
record(long long sched, long long done)
{
	int i = atomic_fetch_add(&nops, 1);
	if (i < MAX_OPS)
		ops[i] = (struct op){(int)((done - t_start) / 1000),
		    (float)(done - sched)};
}

static void *
loader(void *arg)
{
	int id = (int)(intptr_t)arg;
	char key[48];
	long long sched = t_start + id * period_ms / LOADERS;
	for (int i = 0; sched < t_end; i++, sched += period_ms) {
		long long now = harness_now_ms();
		if (now < sched)
			harness_pause_ms((int)(sched - now));
		int kl = snprintf(key, sizeof(key), "frozen/%d/%d", id, i % 50);
		int rc;
		if (i % 2 == 0) {
			rc = dyn_put(cl, key, (size_t)kl, NULL, 0, key,
			    (size_t)kl, NULL, NULL, NULL);
		} else {
			struct dyn_get_result r;
			rc = dyn_get(cl, key, (size_t)kl, NULL, &r);
			dyn_get_result_fini(&r);
			if (rc == -ENOENT)
				rc = 0;
		}
		if (rc != 0) {
			atomic_fetch_add(&errors, 1);
			fprintf(stderr, "%s %s: %s\n", i % 2 ? "get" : "put",
			    key, dyn_strerror(rc));
		}
		long long done = harness_now_ms();
		if (done - sched > 1000)
			fprintf(stderr, "slow %s %s: %lld ms (rc %d) at %lld\n",
			    i % 2 ? "get" : "put", key, done - sched, rc,
			    done - t_start);
		record(sched, done);
	}
	return NULL;
}

static int
env_int(const char *name, int dflt)
{
	const char *v = getenv(name);
	return v && *v ? atoi(v) : dflt;
}

static int
cmp_float(const void *a, const void *b)
{
	float x = *(const float *)a, y = *(const float *)b;
	return (x > y) - (x < y);
}

int
main(void)
{
	int rate = env_int("FROZEN_OPS", 200);
	int freeze_ms = env_int("FREEZE_MS", 10000);
	period_ms = 1000 * LOADERS / rate;

	harness_init(&h);
	harness_start_cluster(&h, 3);
	/* The mount's timeout (fs/dynamofs.c): what a user waits at most. */
	cl = harness_client(&h, 5000, 0, 1, 2, -1);

	t_start = harness_now_ms() + 100;
	t_end = t_start + WARM_MS + freeze_ms + AFTER_MS;
	pthread_t t[LOADERS];
	for (int i = 0; i < LOADERS; i++)
		CHECK(pthread_create(&t[i], NULL, loader, (void *)(intptr_t)i) ==
		    0);
	while (harness_now_ms() < t_start + WARM_MS)
		harness_pause_ms(10);
	kill(h.nodes[1].pid, SIGSTOP);
	printf("n1 frozen at %d ms\n", WARM_MS);
	while (harness_now_ms() < t_start + WARM_MS + freeze_ms)
		harness_pause_ms(10);
	kill(h.nodes[1].pid, SIGCONT);
	printf("n1 thawed at %d ms\n", WARM_MS + freeze_ms);
	for (int i = 0; i < LOADERS; i++)
		pthread_join(t[i], NULL);

	int n = atomic_load(&nops);
	CHECK(n <= MAX_OPS);
	int secs = (int)((t_end - t_start) / 1000);
	int per[128] = {0};
	static float lat[MAX_OPS];
	for (int i = 0; i < n; i++) {
		if (ops[i].sec < secs && ops[i].sec < 128)
			per[ops[i].sec]++;
		lat[i] = ops[i].ms;
	}
	qsort(lat, (size_t)n, sizeof(lat[0]), cmp_float);
	int steady = 0;
	for (int s = 1; s < WARM_MS / 1000; s++)
		steady += per[s];
	steady /= WARM_MS / 1000 - 1;
	int worst = 1; /* second 0 holds the connections' set-up */
	for (int s = 2; s < secs; s++)
		if (per[s] < per[worst])
			worst = s;
	float p50 = lat[n / 2], p99 = lat[(size_t)(n * 99 + 99) / 100 - 1],
	      max = lat[n - 1];
	printf("%d ops, %d errors; steady %d ops/s, slowest second %d: %d "
	       "ops\nlatency p50 %.1f ms, p99 %.1f ms, max %.1f ms\n",
	    n, atomic_load(&errors), steady, worst, per[worst], p50, p99, max);
	printf("ops per second:");
	for (int s = 0; s < secs; s++)
		printf(" %d", per[s]);
	printf("\n");
	CHECK(atomic_load(&errors) == 0);
	CHECK(per[worst] * 2 >= steady);
	CHECK(p99 <= P99_MS);
	dyn_client_free(cl);
	for (int i = 0; i < 3; i++) {
		int st = harness_stop(&h, i, SIGTERM);
		if (st != 0) /* say how it ended, for the log */
			fprintf(stderr, "n%d stopped: %s %d\n", i,
			    WIFSIGNALED(st) ? "signal" : "exit",
			    WIFSIGNALED(st) ? WTERMSIG(st) : WEXITSTATUS(st));
		CHECK(st == 0);
	}
	return 0;
}
