/*
 * Durability of one node: 10,000 puts acknowledged, kill -9, restart, and
 * every key reads back byte-identical.  Then a clean SIGTERM exits 0.
 */
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <sys/wait.h>

#include "err.h"
#include "harness.h"
#include "mem.h"

#define NKEYS    10000
#define NTHREADS 16

static struct harness h;
static struct dyn_client *cl;

/* Deterministic value of key i: 0..3000 bytes of a per-key pattern. */
static size_t
value_of(int i, uint8_t *out)
{
	size_t len = ((size_t)i * 7919u) % 3001u;
	uint32_t x = (uint32_t)i * 2654435761u + 1;
	for (size_t k = 0; k < len; k++) {
		x ^= x << 13;
		x ^= x >> 17;
		x ^= x << 5;
		out[k] = (uint8_t)x;
	}
	return len;
}

static void *
writer(void *arg)
{
	int t = (int)(intptr_t)arg;
	uint8_t val[3001];
	char key[32];
	for (int i = t; i < NKEYS; i += NTHREADS) {
		int kl = snprintf(key, sizeof(key), "persist/%d", i);
		size_t len = value_of(i, val);
		CHECK_RC(dyn_put(cl, key, (size_t)kl, NULL, 0, val, len, NULL,
		             NULL, NULL),
		    0);
	}
	return NULL;
}

int
main(void)
{
	harness_init(&h);
	harness_start(&h, 0, NULL);
	cl = harness_client(&h, 10000, 0, -1);

	long long t0 = harness_now_ms();
	pthread_t th[NTHREADS];
	for (int t = 0; t < NTHREADS; t++)
		CHECK(pthread_create(&th[t], NULL, writer, (void *)(intptr_t)t) ==
		    0);
	for (int t = 0; t < NTHREADS; t++)
		pthread_join(th[t], NULL);
	printf("%d puts acknowledged in %lld ms\n", NKEYS,
	    harness_now_ms() - t0);

	int st = harness_stop(&h, 0, SIGKILL);
	CHECK(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
	harness_start(&h, 0, NULL);

	uint8_t val[3001];
	char key[32];
	for (int i = 0; i < NKEYS; i++) {
		int kl = snprintf(key, sizeof(key), "persist/%d", i);
		size_t len = value_of(i, val);
		struct dyn_get_result r;
		CHECK_RC(dyn_get(cl, key, (size_t)kl, NULL, &r), 0);
		CHECK(r.versions.n == 1);
		CHECK(r.versions.v[0].len == len);
		CHECK(len == 0 || memcmp(r.versions.v[0].value, val, len) == 0);
		dyn_get_result_fini(&r);
	}
	printf("all %d keys read back byte-identical after kill -9\n", NKEYS);

	struct dyn_status s;
	CHECK_RC(dyn_status(cl, 0, &s), 0);
	CHECK(s.keys == NKEYS);
	dyn_status_fini(&s);

	st = harness_stop(&h, 0, SIGTERM);
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	dyn_client_free(cl);
	printf("clean exit on SIGTERM\n");
	return 0;
}
