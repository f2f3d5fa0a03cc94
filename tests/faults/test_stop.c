/*
 * Stopping is bounded, whatever the peers do:
 *   A. three nodes under a put/get load get SIGTERM at once: each exits 0
 *      within 2 s (STOP_CYCLES cycles, default 5 to keep CI short; the
 *      issue's 20 with STOP_CYCLES=20);
 *   B. one node under load whose two peers are frozen (SIGSTOP), so its
 *      calls to them are in flight, gets SIGTERM: it exits 0 within 2 s
 *      (FROZEN_CYCLES cycles, default 2); the peers go on after SIGCONT.
 * Each exit is timed from the signal to the reaped process; the slowest
 * is printed.  Not in faults-quick (so not under ASan): a sanitized node
 * is slower than the 2 s bound on this 2-core machine, and LSan reports an
 * nng aio of a call in flight at the stop (seen with and without the
 * cancel at stop; a leak at exit, noted in the session note).
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/wait.h>

#include "err.h"
#include "harness.h"

#define STOP_LIMIT_MS 2000

static struct harness h;
static atomic_bool stop_load;
static atomic_int load_ops;

struct load {
	struct dyn_client *c;
	int id;
};

static void *
loader(void *arg)
{
	struct load *l = arg;
	char key[48];
	for (int i = 0; !atomic_load(&stop_load); i++) {
		int kl = snprintf(key, sizeof(key), "stop/%d/%d", l->id, i % 500);
		/* Errors are expected while nodes go away: only the timing of
		 * the stop is under test here. */
		if (i % 2 == 0) {
			dyn_put(l->c, key, (size_t)kl, NULL, 0, key, (size_t)kl,
			    NULL, NULL, NULL);
		} else {
			struct dyn_get_result r;
			dyn_get(l->c, key, (size_t)kl, NULL, &r);
			dyn_get_result_fini(&r);
		}
		atomic_fetch_add(&load_ops, 1);
	}
	return NULL;
}

#define LOADERS 4

/* Loaders on node `only`, or on all three (only < 0). */
static void
load_start(pthread_t *t, struct load *l, int only)
{
	atomic_store(&stop_load, false);
	for (int i = 0; i < LOADERS; i++) {
		/* Short timeouts: a frozen peer must not stall the loaders
		 * past the test's own waits. */
		l[i].c = only >= 0 ? harness_client(&h, 1000, only, -1)
		                   : harness_client(&h, 1000, 0, 1, 2, -1);
		l[i].id = i;
		CHECK(pthread_create(&t[i], NULL, loader, &l[i]) == 0);
	}
}

static void
load_stop(pthread_t *t, struct load *l)
{
	atomic_store(&stop_load, true);
	for (int i = 0; i < LOADERS; i++) {
		pthread_join(t[i], NULL);
		dyn_client_free(l[i].c);
	}
}

/* Wait until the load made n more operations (or 10 s passed). */
static void
load_for(int n)
{
	int from = atomic_load(&load_ops);
	long long dl = harness_now_ms() + 10000;
	while (atomic_load(&load_ops) - from < n && harness_now_ms() < dl)
		harness_pause_ms(10);
}

/* Reap node i, which was sent SIGTERM at t0: its exit status, and the
 * milliseconds since t0 in *ms. */
static int
reap(int i, long long t0, long long *ms)
{
	int st = harness_stop(&h, i, SIGTERM);
	*ms = harness_now_ms() - t0;
	return st;
}

static int
env_int(const char *name, int dflt)
{
	const char *v = getenv(name);
	return v && *v ? atoi(v) : dflt;
}

int
main(void)
{
	int cycles = env_int("STOP_CYCLES", 5);
	int frozen = env_int("FROZEN_CYCLES", 2);
	pthread_t t[LOADERS];
	struct load l[LOADERS];
	long long worst = 0;

	harness_init(&h);
	harness_start_cluster(&h, 3);

	for (int c = 0; c < cycles; c++) {
		if (c > 0) {
			for (int i = 0; i < 3; i++)
				harness_start_joined(&h, i, i ? 0 : 1, NULL);
		}
		load_start(t, l, -1);
		load_for(200);
		long long t0 = harness_now_ms();
		for (int i = 0; i < 3; i++)
			kill(h.nodes[i].pid, SIGTERM);
		for (int i = 0; i < 3; i++) {
			long long ms;
			int st = reap(i, t0, &ms);
			if (ms > worst)
				worst = ms;
			if (!WIFEXITED(st) || WEXITSTATUS(st) != 0 ||
			    ms > STOP_LIMIT_MS) {
				fprintf(stderr, "cycle %d: n%d exit status %d "
				    "after %lld ms\n", c, i, st, ms);
				harness_dump_logs(&h);
				exit(1);
			}
		}
		load_stop(t, l);
	}
	printf("A: %d cycles of 3 nodes under load stopped at once: every "
	       "node exited 0, the slowest in %lld ms\n", cycles, worst);

	worst = 0;
	for (int i = 0; i < 3; i++)
		harness_start_joined(&h, i, i ? 0 : 1, NULL);
	for (int c = 0; c < frozen; c++) {
		if (c > 0)
			harness_start_joined(&h, 0, 1, NULL);
		load_start(t, l, 0);
		load_for(100);
		kill(h.nodes[1].pid, SIGSTOP);
		kill(h.nodes[2].pid, SIGSTOP);
		/* Not a wait for a state: time for the loaders' requests to
		 * put n0's calls to the frozen peers in flight (each waits
		 * --timeout, 2 s, unless the stop cancels it). */
		harness_pause_ms(300);
		long long t0 = harness_now_ms();
		long long ms;
		int st = reap(0, t0, &ms);
		kill(h.nodes[1].pid, SIGCONT);
		kill(h.nodes[2].pid, SIGCONT);
		load_stop(t, l);
		if (ms > worst)
			worst = ms;
		if (!WIFEXITED(st) || WEXITSTATUS(st) != 0 ||
		    ms > STOP_LIMIT_MS) {
			fprintf(stderr, "frozen cycle %d: n0 exit status %d after "
			    "%lld ms\n", c, st, ms);
			harness_dump_logs(&h);
			exit(1);
		}
	}
	printf("B: %d cycles of a node under load stopped with its two peers "
	       "frozen: it exited 0, the slowest in %lld ms\n", frozen, worst);
	for (int i = 1; i < 3; i++)
		CHECK(harness_stop(&h, i, SIGTERM) == 0);
	return 0;
}
