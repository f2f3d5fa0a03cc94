/*
 * dynamo-bench — load generator for a cluster, through the client library.
 *
 * Threads: the main thread parses options, owns the client, starts one
 * worker thread per --clients and then only waits: it prints a progress
 * line every second, and it is the one thread that takes SIGINT/SIGTERM
 * (blocked everywhere else, collected with sigtimedwait), which sets the
 * stop flag.  Workers share the client (it is thread-safe) and nothing
 * else: each keeps its own latency histograms, error table, random state
 * and context cache, and publishes only relaxed atomic counters for the
 * progress line.  The histograms are merged after the workers are joined.
 *
 *   main: parse -> client -> [preload phase] -> run phase -> merge -> report
 *                                 |                 |
 *                            workers: get+put   workers: get or put
 *
 * Closed loop (default): each worker issues its next op when the previous
 * one returns, and latency is the op's own duration.  Open loop (--rate R):
 * op i of the whole run is due at start + i/R (worker w takes i = w, w+C,
 * w+2C, ...); a worker that is ahead sleeps until the op is due, one that
 * is behind issues it at once, and latency counts from the due time, so a
 * stall shows in the percentiles instead of being hidden by the stalled
 * clients sending less (coordinated omission).
 *
 * Latencies go into fixed log-linear histograms (64 linear steps per power
 * of two of microseconds, up to 60 s: at most 1.6% error, 10 KiB each), so
 * memory does not grow with the number of ops.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>

#include "auth.h"
#include "blob.h"
#include "cli.h"
#include "client.h"
#include "err.h"
#include "mem.h"
#include "mono.h"
#include "vset.h"
#include "wire.h"

#define NS_PER_MS  1000000ull
#define NS_PER_SEC 1000000000ull

#define MAX_CLIENTS    4096
#define MAX_PREFIX_LEN 1024
#define KEY_BUF_LEN    (MAX_PREFIX_LEN + 32)

/* Histogram of latencies in microseconds.  Values below HIST_SUB are exact;
 * above, each power of two [2^e, 2^(e+1)) is cut into HIST_SUB equal steps.
 * Everything from 2^HIST_TOP_BITS us (67 s) up lands in the last bucket
 * (max_us keeps the true maximum). */
#define HIST_SUB_BITS 6
#define HIST_SUB      (1u << HIST_SUB_BITS)
#define HIST_TOP_BITS 26
#define HIST_BUCKETS  (HIST_SUB + (HIST_TOP_BITS - HIST_SUB_BITS) * HIST_SUB)

struct hist {
	uint64_t n[HIST_BUCKETS];
	uint64_t count;
	uint64_t sum_us;
	uint64_t max_us;
};

/* The distinct errors a worker saw, for the summary; beyond ERRTAB_LEN
 * kinds the rest are counted under code 0 ("other"). */
#define ERRTAB_LEN 8

struct errtab {
	int code[ERRTAB_LEN];
	uint64_t count[ERRTAB_LEN];
	uint64_t other;
};

/* A small direct-mapped cache of the contexts this worker last got back for
 * a key (from a get, or from its own put), so the next put of that key
 * replaces what the worker saw instead of adding a blind sibling.  Bounded
 * by CTX_SLOTS whatever --keys is. */
#define CTX_SLOTS 1024

struct ctx_slot {
	uint64_t id1; /* key number + 1; 0: empty */
	uint8_t *ctx; /* mem_alloc'd */
	size_t len;
};

enum {
	C_GET,     /* gets that completed (hits and misses) */
	C_MISS,    /* of which -ENOENT */
	C_PUT,     /* puts that completed */
	C_GET_ERR, /* gets that failed */
	C_PUT_ERR, /* puts that failed */
	C_N,
};

struct bench_cfg {
	const char **nodes; /* into argv */
	size_t nnodes;
	const char *key_file;
	const char *cred_file; /* NULL: $DYNAMO_CRED_FILE, or plain tcp */
	int timeout_ms;
	unsigned clients;
	uint64_t duration_ms; /* 0: none (only with --ops) */
	uint64_t ops;         /* 0: no limit */
	double rate;          /* total ops/s; 0: closed loop */
	uint64_t keys;
	size_t value_size;
	double read_ratio;
	uint32_t r;
	uint32_t w;
	bool json;
	bool preload;
	bool no_routing;
	bool blob; /* blobs: content-addressed puts and gets */
	bool echo; /* echoes: the transport floor */
	bool quiet;
	const char *prefix;
	uint64_t seed;
};

enum phase { PHASE_PRELOAD, PHASE_RUN };

struct bench {
	const struct bench_cfg *cfg;
	struct dyn_client *client;
	struct dyn_req_opts ro_get;
	struct dyn_req_opts ro_put;
	enum phase phase;
	uint64_t t0_ns;       /* phase start */
	uint64_t deadline_ns; /* 0: none */
	atomic_bool stop;
	atomic_uint_fast64_t claimed; /* ops started, for --ops */
	atomic_uint done;             /* workers finished this phase */
};

struct worker {
	struct bench *b;
	unsigned id;
	pthread_t thr;
	uint64_t rng[4];
	uint8_t *value;
	char key[KEY_BUF_LEN];
	uint64_t end_ns;
	uint64_t unsent;    /* open loop: due, not sent (run phase) */
	struct hist lat[2]; /* [0] get, [1] put */
	struct errtab errs;
	struct ctx_slot cache[CTX_SLOTS];
	atomic_uint_fast64_t ctr[C_N];
};

static void
sleep_until_ns(uint64_t t)
{
	struct timespec ts = {
	    .tv_sec = (time_t)(t / NS_PER_SEC),
	    .tv_nsec = (long)(t % NS_PER_SEC),
	};

	while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) ==
	       EINTR)
		;
}

/* ---- random numbers: xoshiro256**, seeded by splitmix64 ---- */

static uint64_t
splitmix64(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static uint64_t
rotl(uint64_t x, int k)
{
	return (x << k) | (x >> (64 - k));
}

static uint64_t
rng_next(uint64_t s[4])
{
	uint64_t r = rotl(s[1] * 5, 7) * 9;
	uint64_t t = s[1] << 17;

	s[2] ^= s[0];
	s[3] ^= s[1];
	s[1] ^= s[2];
	s[0] ^= s[3];
	s[2] ^= t;
	s[3] = rotl(s[3], 45);
	return r;
}

/* Uniform in [0, 1). */
static double
rng_unit(uint64_t s[4])
{
	return (double)(rng_next(s) >> 11) * 0x1.0p-53;
}

/* ---- histogram ---- */

static unsigned
hist_index(uint64_t us)
{
	if (us >= (1ull << HIST_TOP_BITS))
		us = (1ull << HIST_TOP_BITS) - 1;
	if (us < HIST_SUB)
		return (unsigned)us;
	unsigned e = 63u - (unsigned)__builtin_clzll(us);
	unsigned m = (unsigned)(us >> (e - HIST_SUB_BITS));
	return HIST_SUB + (e - HIST_SUB_BITS) * HIST_SUB + (m - HIST_SUB);
}

/* The largest value that falls in bucket i. */
static uint64_t
hist_upper(unsigned i)
{
	if (i < HIST_SUB)
		return i;
	unsigned e = (i - HIST_SUB) / HIST_SUB + HIST_SUB_BITS;
	uint64_t m = (i - HIST_SUB) % HIST_SUB + HIST_SUB;
	return ((m + 1) << (e - HIST_SUB_BITS)) - 1;
}

static void
hist_add(struct hist *h, uint64_t us)
{
	h->n[hist_index(us)]++;
	h->count++;
	h->sum_us += us;
	if (us > h->max_us)
		h->max_us = us;
}

static void
hist_merge(struct hist *dst, const struct hist *src)
{
	for (unsigned i = 0; i < HIST_BUCKETS; i++)
		dst->n[i] += src->n[i];
	dst->count += src->count;
	dst->sum_us += src->sum_us;
	if (src->max_us > dst->max_us)
		dst->max_us = src->max_us;
}

/* The value at quantile q (0 < q <= 1) in milliseconds, reported as the
 * top of its bucket (never below the truth) but not above the maximum. */
static double
hist_quantile_ms(const struct hist *h, double q)
{
	if (h->count == 0)
		return 0;
	uint64_t rank = (uint64_t)(q * (double)h->count + 0.999999);
	uint64_t seen = 0;

	if (rank == 0)
		rank = 1;
	for (unsigned i = 0; i < HIST_BUCKETS; i++) {
		seen += h->n[i];
		if (seen >= rank) {
			uint64_t v = hist_upper(i);
			return (double)(v < h->max_us ? v : h->max_us) / 1e3;
		}
	}
	return (double)h->max_us / 1e3;
}

static double
hist_mean_ms(const struct hist *h)
{
	return h->count ? (double)h->sum_us / (double)h->count / 1e3 : 0;
}

/* ---- errors ---- */

static void
errtab_add(struct errtab *t, int code, uint64_t n)
{
	for (unsigned i = 0; i < ERRTAB_LEN; i++) {
		if (t->count[i] != 0 && t->code[i] == code) {
			t->count[i] += n;
			return;
		}
		if (t->count[i] == 0) {
			t->code[i] = code;
			t->count[i] = n;
			return;
		}
	}
	t->other += n;
}

static void
errtab_merge(struct errtab *dst, const struct errtab *src)
{
	for (unsigned i = 0; i < ERRTAB_LEN && src->count[i] != 0; i++)
		errtab_add(dst, src->code[i], src->count[i]);
	dst->other += src->other;
}

/* ---- context cache ---- */

static struct ctx_slot *
cache_slot(struct worker *w, uint64_t id)
{
	return &w->cache[id % CTX_SLOTS];
}

/* Keep ctx (mem_alloc'd, ownership passes) as the context of key id. */
static void
cache_store(struct worker *w, uint64_t id, uint8_t *ctx, size_t len)
{
	struct ctx_slot *s = cache_slot(w, id);

	mem_free(s->ctx);
	s->id1 = ctx ? id + 1 : 0;
	s->ctx = ctx;
	s->len = len;
}

static void
cache_fini(struct worker *w)
{
	for (unsigned i = 0; i < CTX_SLOTS; i++) {
		mem_free(w->cache[i].ctx);
		w->cache[i].ctx = NULL;
	}
}

/* ---- operations ---- */

static size_t
key_name(struct worker *w, uint64_t id)
{
	int n = snprintf(w->key, sizeof(w->key), "%skey%" PRIu64,
	                 w->b->cfg->prefix, id);
	return (size_t)n;
}

/* Blob mode: key id's blob is value_size bytes of a pattern of id (so
 * its key can be computed again for a get); a put stores fresh bytes. */
static void
blob_value(struct worker *w, uint64_t id)
{
	uint64_t x = id * 0x9e3779b97f4a7c15ull + 1;
	for (size_t i = 0; i + 8 <= w->b->cfg->value_size; i += 8) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		memcpy(w->value + i, &x, 8);
	}
}

static int
op_blob_get(struct worker *w, uint64_t id)
{
	struct bench *b = w->b;
	uint8_t key[BLOB_KEY_LEN];
	size_t len;
	blob_value(w, id);
	dyn_blob_key_of(b->client, BLOB_DATA, w->value, b->cfg->value_size,
	                key);
	return dyn_blob_get(b->client, key, w->value, b->cfg->value_size,
	                    &len);
}

static int
op_blob_put(struct worker *w, uint64_t id, bool fresh)
{
	struct bench *b = w->b;
	uint8_t key[BLOB_KEY_LEN];
	blob_value(w, id);
	if (fresh && b->cfg->value_size >= 16) /* bytes never stored yet */
		memcpy(w->value + 8, &w->rng[0], 8);
	return dyn_blob_put(b->client, BLOB_DATA, w->value,
	                    b->cfg->value_size, &b->ro_put, key);
}

/* Echo mode: value_size bytes through a node and back, the nodes of the
 * list taken in turn. */
static int
op_echo(struct worker *w, uint64_t i)
{
	struct bench *b = w->b;
	size_t node = (w->id + i) % b->cfg->nnodes;
	return dyn_echo(b->client, node, w->value, b->cfg->value_size);
}

static int
op_get(struct worker *w, uint64_t id)
{
	struct bench *b = w->b;
	struct dyn_get_result res;
	if (b->cfg->blob)
		return op_blob_get(w, id);
	size_t klen = key_name(w, id);

	memset(&res, 0, sizeof(res));
	int rv = dyn_get(b->client, w->key, klen, &b->ro_get, &res);
	if (rv == 0 || rv == -ENOENT) {
		cache_store(w, id, res.ctx, res.ctx_len);
		res.ctx = NULL;
		res.ctx_len = 0;
	}
	dyn_get_result_fini(&res);
	return rv;
}

static int
op_put(struct worker *w, uint64_t id)
{
	struct bench *b = w->b;
	struct ctx_slot *s = cache_slot(w, id);
	const uint8_t *ctx = s->id1 == id + 1 ? s->ctx : NULL;
	size_t ctx_len = ctx ? s->len : 0;
	uint8_t *nctx = NULL;
	size_t nlen = 0;
	size_t klen = key_name(w, id);

	if (b->cfg->blob)
		return op_blob_put(w, id, true);
	/* Make every value differ a little, so no layer can get away with
	 * deduplicating them. */
	if (b->cfg->value_size >= 8)
		memcpy(w->value, &w->rng[0], 8);
	int rv = dyn_put(b->client, w->key, klen, ctx, ctx_len, w->value,
	                 b->cfg->value_size, &b->ro_put, &nctx, &nlen);
	if (rv == 0)
		cache_store(w, id, nctx, nlen);
	else
		cache_store(w, id, NULL, 0);
	return rv;
}

static void
record(struct worker *w, bool is_get, int rv, uint64_t lat_ns)
{
	if (rv == 0 || (is_get && rv == -ENOENT)) {
		hist_add(&w->lat[is_get ? 0 : 1], lat_ns / 1000);
		if (rv == -ENOENT)
			atomic_fetch_add_explicit(&w->ctr[C_MISS], 1,
			                          memory_order_relaxed);
		atomic_fetch_add_explicit(&w->ctr[is_get ? C_GET : C_PUT], 1,
		                          memory_order_relaxed);
	} else {
		errtab_add(&w->errs, rv, 1);
		atomic_fetch_add_explicit(
		    &w->ctr[is_get ? C_GET_ERR : C_PUT_ERR], 1,
		    memory_order_relaxed);
	}
}

static bool
should_stop(struct bench *b)
{
	return atomic_load_explicit(&b->stop, memory_order_relaxed);
}

/* Claim one op under --ops; false when the budget is spent. */
static bool
claim_op(struct bench *b)
{
	uint64_t limit = b->cfg->ops;

	if (limit == 0)
		return true;
	return atomic_fetch_add_explicit(&b->claimed, 1,
	                                 memory_order_relaxed) < limit;
}

/* Wait until due, waking at least every 50 ms to notice the stop flag.
 * false if stopped meanwhile. */
static bool
wait_due(struct bench *b, uint64_t due)
{
	for (;;) {
		if (should_stop(b))
			return false;
		uint64_t now = mono_ns();
		if (now >= due)
			return true;
		uint64_t step = 50 * NS_PER_MS;
		sleep_until_ns(due - now > step ? now + step : due);
	}
}

/* The open loop ends on time even when it is behind: the ops of this
 * worker that were due before the deadline (slot i on) are counted as
 * unsent instead of being issued late, so an overloaded run cannot drag on
 * past --duration. */
static uint64_t
unsent_ops(const struct bench *b, const struct worker *w, uint64_t i,
           double period_ns)
{
	double slots = (double)(b->deadline_ns - b->t0_ns) / period_ns;
	double mine = (slots - (double)w->id) / (double)b->cfg->clients;
	uint64_t due = mine > 0 ? (uint64_t)mine : 0;

	if ((double)due < mine) /* ceil, without libm */
		due++;

	return due > i ? due - i : 1;
}

static void
worker_run(struct worker *w)
{
	struct bench *b = w->b;
	const struct bench_cfg *cfg = b->cfg;
	double period_ns = cfg->rate > 0 ? 1e9 / cfg->rate : 0;

	for (uint64_t i = 0;; i++) {
		uint64_t start;

		if (should_stop(b))
			break;
		if (period_ns > 0) {
			double slot =
			    (double)w->id + (double)i * (double)cfg->clients;
			start = b->t0_ns + (uint64_t)(slot * period_ns);
			if (b->deadline_ns && start >= b->deadline_ns)
				break;
			if (!wait_due(b, start))
				break;
			if (b->deadline_ns && mono_ns() >= b->deadline_ns) {
				w->unsent = unsent_ops(b, w, i, period_ns);
				break;
			}
		} else {
			start = mono_ns();
			if (b->deadline_ns && start >= b->deadline_ns)
				break;
		}
		if (!claim_op(b))
			break;

		uint64_t id = rng_next(w->rng) % cfg->keys;
		bool is_get = cfg->echo || rng_unit(w->rng) < cfg->read_ratio;
		int rv = cfg->echo ? op_echo(w, i)
		       : is_get    ? op_get(w, id)
		                   : op_put(w, id);
		record(w, is_get, rv, mono_ns() - start);
	}
}

/* Write every key once, each worker taking the keys id, id + C, ...  A get
 * comes first so that a key left by an earlier run is replaced, not given a
 * sibling.  Counted as puts (and errors) but not timed. */
static void
worker_preload(struct worker *w)
{
	struct bench *b = w->b;
	const struct bench_cfg *cfg = b->cfg;

	for (uint64_t id = w->id; id < cfg->keys; id += cfg->clients) {
		if (should_stop(b))
			break;
		int rv = cfg->blob ? op_blob_put(w, id, false) : op_get(w, id);
		if (!cfg->blob && (rv == 0 || rv == -ENOENT))
			rv = op_put(w, id);
		if (rv == 0) {
			atomic_fetch_add_explicit(&w->ctr[C_PUT], 1,
			                          memory_order_relaxed);
		} else {
			errtab_add(&w->errs, rv, 1);
			atomic_fetch_add_explicit(&w->ctr[C_PUT_ERR], 1,
			                          memory_order_relaxed);
		}
	}
}

static void *
worker_main(void *arg)
{
	struct worker *w = arg;
	struct bench *b = w->b;

	if (b->phase == PHASE_PRELOAD)
		worker_preload(w);
	else
		worker_run(w);
	w->end_ns = mono_ns();
	atomic_fetch_add_explicit(&b->done, 1, memory_order_release);
	return NULL;
}

static void
worker_reset(struct worker *w)
{
	memset(w->lat, 0, sizeof(w->lat));
	memset(&w->errs, 0, sizeof(w->errs));
	for (unsigned i = 0; i < C_N; i++)
		atomic_store_explicit(&w->ctr[i], 0, memory_order_relaxed);
	w->end_ns = 0;
	w->unsent = 0;
}

static void
worker_free(struct worker *w)
{
	if (w == NULL)
		return;
	cache_fini(w);
	mem_free(w->value);
	mem_free(w);
}

static int
worker_new(struct bench *b, unsigned id, uint64_t *seed, struct worker **out)
{
	struct worker *w = mem_calloc(1, sizeof(*w));

	*out = NULL;
	if (w == NULL)
		return -ENOMEM;
	w->b = b;
	w->id = id;
	for (unsigned i = 0; i < 4; i++)
		w->rng[i] = splitmix64(seed);
	w->value = mem_alloc(b->cfg->value_size);
	if (w->value == NULL) {
		worker_free(w);
		return -ENOMEM;
	}
	for (size_t i = 0; i < b->cfg->value_size; i += 8) {
		uint64_t r = rng_next(w->rng);
		size_t n =
		    b->cfg->value_size - i < 8 ? b->cfg->value_size - i : 8;
		memcpy(w->value + i, &r, n);
	}
	for (unsigned i = 0; i < C_N; i++)
		atomic_init(&w->ctr[i], 0);
	*out = w;
	return 0;
}

/* ---- the main thread ---- */

static void
sum_ctr(struct worker *const *ws, unsigned n, uint64_t out[C_N])
{
	memset(out, 0, C_N * sizeof(out[0]));
	for (unsigned i = 0; i < n; i++) {
		for (unsigned c = 0; c < C_N; c++)
			out[c] += atomic_load_explicit(&ws[i]->ctr[c],
			                               memory_order_relaxed);
	}
}

static void
progress(struct bench *b, struct worker *const *ws, uint64_t now,
         uint64_t prev[C_N], uint64_t prev_ns)
{
	uint64_t cur[C_N];
	double dt = (double)(now - prev_ns) / 1e9;
	double el = (double)(now - b->t0_ns) / 1e9;

	sum_ctr(ws, b->cfg->clients, cur);
	if (dt <= 0)
		dt = 1;
	uint64_t dg = cur[C_GET] - prev[C_GET], dp = cur[C_PUT] - prev[C_PUT];
	uint64_t errs = cur[C_GET_ERR] + cur[C_PUT_ERR];
	if (b->phase == PHASE_PRELOAD)
		fprintf(stderr,
		        "preload %6.1fs  %8.0f puts/s  %" PRIu64 "/%" PRIu64
		        " keys  errors %" PRIu64 "\n",
		        el, (double)dp / dt, cur[C_PUT] + cur[C_PUT_ERR],
		        b->cfg->keys, errs);
	else
		fprintf(stderr,
		        "%6.1fs  %8.0f ops/s  (get %.0f/s, put %.0f/s)  "
		        "errors %" PRIu64 "  total %" PRIu64 "\n",
		        el, (double)(dg + dp) / dt, (double)dg / dt,
		        (double)dp / dt, errs, cur[C_GET] + cur[C_PUT]);
	memcpy(prev, cur, C_N * sizeof(cur[0]));
}

/* Start the workers on b->phase, print progress each second and collect
 * signals until they are all done, then join them.  Returns 0, or the error
 * of a failed pthread_create (workers already running are stopped). */
static int
run_phase(struct bench *b, struct worker *const *ws, const sigset_t *sigs,
          bool *interrupted)
{
	const struct bench_cfg *cfg = b->cfg;
	uint64_t prev[C_N] = {0};
	int rv = 0;
	unsigned started = 0;

	for (unsigned i = 0; i < cfg->clients; i++)
		worker_reset(ws[i]);
	atomic_store(&b->stop, false);
	atomic_store(&b->done, 0);
	atomic_store(&b->claimed, 0);
	b->t0_ns = mono_ns();
	b->deadline_ns = b->phase == PHASE_RUN && cfg->duration_ms
	                     ? b->t0_ns + cfg->duration_ms * NS_PER_MS
	                     : 0;

	for (; started < cfg->clients; started++) {
		int e = pthread_create(&ws[started]->thr, NULL, worker_main,
		                       ws[started]);
		if (e != 0) {
			rv = -e;
			atomic_store(&b->stop, true);
			break;
		}
	}

	uint64_t prev_ns = b->t0_ns, tick = b->t0_ns + NS_PER_SEC;
	while (atomic_load_explicit(&b->done, memory_order_acquire) <
	       started) {
		/* 20 ms steps: short enough to notice the end promptly. */
		struct timespec ts = {.tv_sec = 0, .tv_nsec = 20 * 1000000L};
		int sig = sigtimedwait(sigs, NULL, &ts);
		if (sig > 0 && !atomic_load(&b->stop)) {
			*interrupted = true;
			atomic_store(&b->stop, true);
			if (!cfg->quiet)
				fputs("dynamo-bench: interrupted, finishing "
				      "ops in flight\n",
				      stderr);
		}
		uint64_t now = mono_ns();
		if (now >= tick) {
			if (!cfg->quiet)
				progress(b, ws, now, prev, prev_ns);
			prev_ns = now;
			tick += NS_PER_SEC;
			if (tick <= now)
				tick = now + NS_PER_SEC;
		}
	}
	for (unsigned i = 0; i < started; i++)
		pthread_join(ws[i]->thr, NULL);
	return rv;
}

struct op_sum {
	struct hist lat;
	uint64_t count;
	uint64_t misses;
	uint64_t errors;
};

struct summary {
	double elapsed_s;
	struct op_sum op[2]; /* get, put */
	struct errtab errs;
	uint64_t unsent;
	bool interrupted;
};

static void
summarise(const struct bench *b, struct worker *const *ws, struct summary *s)
{
	uint64_t end = b->t0_ns, ctr[C_N];

	sum_ctr(ws, b->cfg->clients, ctr);
	for (unsigned i = 0; i < b->cfg->clients; i++) {
		hist_merge(&s->op[0].lat, &ws[i]->lat[0]);
		hist_merge(&s->op[1].lat, &ws[i]->lat[1]);
		errtab_merge(&s->errs, &ws[i]->errs);
		s->unsent += ws[i]->unsent;
		if (ws[i]->end_ns > end)
			end = ws[i]->end_ns;
	}
	s->elapsed_s = (double)(end - b->t0_ns) / 1e9;
	s->op[0].count = ctr[C_GET];
	s->op[0].misses = ctr[C_MISS];
	s->op[0].errors = ctr[C_GET_ERR];
	s->op[1].count = ctr[C_PUT];
	s->op[1].errors = ctr[C_PUT_ERR];
}

static double
per_s(uint64_t n, double s)
{
	return s > 0 ? (double)n / s : 0;
}

static void
print_text(const struct bench_cfg *cfg, const struct summary *s)
{
	const char *const names[] = {cfg->echo ? "echo" : "get", "put"};
	char mode[64];

	if (cfg->rate > 0)
		snprintf(mode, sizeof(mode), "open loop at %.0f ops/s",
		         cfg->rate);
	else
		snprintf(mode, sizeof(mode), "closed loop");
	printf("%u clients, %s, %.2f s%s, %" PRIu64 " keys, %zu-byte values, "
	       "read ratio %.2f\n",
	       cfg->clients, mode, s->elapsed_s,
	       s->interrupted ? " (interrupted)" : "", cfg->keys,
	       cfg->value_size, cfg->read_ratio);
	printf("%-5s %10s %8s %8s %10s %9s %9s %9s %9s %9s\n", "op", "count",
	       "misses", "errors", "ops/s", "mean ms", "p50 ms", "p99 ms",
	       "p99.9 ms", "max ms");
	for (unsigned i = 0; i < (cfg->echo ? 1u : 2u); i++) {
		const struct op_sum *o = &s->op[i];
		printf("%-5s %10" PRIu64 " %8" PRIu64 " %8" PRIu64
		       " %10.1f %9.3f %9.3f %9.3f %9.3f %9.3f\n",
		       names[i], o->count, o->misses, o->errors,
		       per_s(o->count, s->elapsed_s), hist_mean_ms(&o->lat),
		       hist_quantile_ms(&o->lat, 0.5),
		       hist_quantile_ms(&o->lat, 0.99),
		       hist_quantile_ms(&o->lat, 0.999),
		       (double)o->lat.max_us / 1e3);
	}
	uint64_t total = s->op[0].count + s->op[1].count;
	uint64_t errs = s->op[0].errors + s->op[1].errors;
	printf("%-5s %10" PRIu64 " %8s %8" PRIu64 " %10.1f\n", "all", total,
	       "", errs, per_s(total, s->elapsed_s));
	for (unsigned i = 0; i < ERRTAB_LEN && s->errs.count[i]; i++)
		printf("error: %" PRIu64 " x %s\n", s->errs.count[i],
		       dyn_strerror(s->errs.code[i]));
	if (s->errs.other)
		printf("error: %" PRIu64 " x other kinds\n", s->errs.other);
	if (s->unsent)
		printf("behind schedule: %" PRIu64 " ops due before the end "
		       "were never sent (raise --clients or lower --rate)\n",
		       s->unsent);
}

static void
print_json_op(const struct op_sum *o, double el)
{
	printf("{\"count\": %" PRIu64 ", \"misses\": %" PRIu64
	       ", \"errors\": %" PRIu64 ", \"ops_per_s\": %.1f, "
	       "\"latency_ms\": {\"mean\": %.3f, \"p50\": %.3f, "
	       "\"p99\": %.3f, \"p999\": %.3f, \"max\": %.3f}}",
	       o->count, o->misses, o->errors, per_s(o->count, el),
	       hist_mean_ms(&o->lat), hist_quantile_ms(&o->lat, 0.5),
	       hist_quantile_ms(&o->lat, 0.99),
	       hist_quantile_ms(&o->lat, 0.999), (double)o->lat.max_us / 1e3);
}

static void
print_json(const struct bench_cfg *cfg, const struct summary *s)
{
	uint64_t total = s->op[0].count + s->op[1].count;
	uint64_t errs = s->op[0].errors + s->op[1].errors;

	printf("{\"config\": {\"clients\": %u, \"mode\": \"%s\", "
	       "\"rate\": %.1f, \"duration_s\": %.3f, \"ops_limit\": %" PRIu64
	       ", \"keys\": %" PRIu64 ", \"value_size\": %zu, "
	       "\"read_ratio\": %.3f, \"r\": %" PRIu32 ", \"w\": %" PRIu32
	       ", \"prefix\": ",
	       cfg->clients, cfg->rate > 0 ? "open" : "closed", cfg->rate,
	       (double)cfg->duration_ms / 1e3, cfg->ops, cfg->keys,
	       cfg->value_size, cfg->read_ratio, cfg->r, cfg->w);
	cli_json_str(stdout, cfg->prefix, strlen(cfg->prefix));
	printf("}, \"interrupted\": %s, \"elapsed_s\": %.3f, \"ops\": %" PRIu64
	       ", \"ops_per_s\": %.1f, \"errors\": %" PRIu64
	       ", \"unsent\": %" PRIu64 ", \"get\": ",
	       s->interrupted ? "true" : "false", s->elapsed_s, total,
	       per_s(total, s->elapsed_s), errs, s->unsent);
	print_json_op(&s->op[0], s->elapsed_s);
	fputs(", \"put\": ", stdout);
	print_json_op(&s->op[1], s->elapsed_s);
	fputs(", \"error_kinds\": [", stdout);
	for (unsigned i = 0; i < ERRTAB_LEN && s->errs.count[i]; i++) {
		const char *m = dyn_strerror(s->errs.code[i]);
		printf("%s{\"error\": ", i ? ", " : "");
		cli_json_str(stdout, m, strlen(m));
		printf(", \"code\": %d, \"count\": %" PRIu64 "}",
		       s->errs.code[i], s->errs.count[i]);
	}
	if (s->errs.other)
		printf("%s{\"error\": \"other\", \"count\": %" PRIu64 "}",
		       s->errs.count[0] ? ", " : "", s->errs.other);
	fputs("]}\n", stdout);
}

/* ---- options ---- */

static const char help_text[] =
    "usage: dynamo-bench --node ADDR [--node ...] --cluster-key FILE\n"
    "                    [OPTIONS]\n"
    "\n"
    "Load a cluster with gets and puts and report throughput and latency.\n"
    "Each client is a thread; all share one client library handle.\n"
    "\n"
    "  -n, --node ADDR        a node, tcp://HOST:PORT (repeat for more;\n"
    "                         requests are spread over them)\n"
    "      --cred FILE        credential: its role keys, and mutual TLS to\n"
    "                         the nodes (default: $" CRED_ENV ")\n"
    "  -k, --cluster-key FILE instead, the cluster key file: plain tcp\n"
    "                         (default: $" CLI_KEY_ENV ")\n"
    "  -t, --timeout MS       per-node request timeout (default 5000)\n"
    "  -c, --clients N        concurrent clients (default 16)\n"
    "  -d, --duration TIME    run this long (default 10s; units ms, s, m,\n"
    "                         h; a bare number is seconds)\n"
    "  -o, --ops N            stop after N ops in all; alone, it lifts the\n"
    "                         default time limit, with --duration whichever\n"
    "                         comes first ends the run\n"
    "      --rate R           open loop: R ops/s in all, each op timed from\n"
    "                         when it was due, not when it was sent (no\n"
    "                         coordinated omission); give enough --clients\n"
    "                         to keep up (ops still due at the end are\n"
    "                         reported as unsent, not sent late).\n"
    "                         Default: closed loop, each client sends its\n"
    "                         next op when the last one returns\n"
    "  -K, --keys N           keys are PREFIXkey0 .. PREFIXkey(N-1), chosen\n"
    "                         uniformly (default 10000)\n"
    "  -s, --value-size SIZE  bytes per put (default 1024; 4k, 1M work)\n"
    "  -R, --read-ratio F     fraction of ops that are gets (default 0.5)\n"
    "      --r N, --w N       read and write quorums (default: cluster's)\n"
    "  -p, --prefix STR       key prefix (default \"bench-\")\n"
    "      --preload          first write every key once (a get, then a\n"
    "                         put with its context; not timed)\n"
    "      --seed N           random seed (default: from the clock)\n"
    "      --no-routing       send every request to the --node list in\n"
    "                         turn (the node forwards it to a replica)\n"
    "                         instead of to the key's coordinator by the\n"
    "                         ring (client-driven routing, the default)\n"
    "      --blob             blobs instead of keys: a put stores new\n"
    "                         content-addressed bytes, a get reads the\n"
    "                         blob of a key id (--preload stores them)\n"
    "      --echo             the transport floor: each op sends\n"
    "                         --value-size bytes to a node of the list\n"
    "                         (in turn), which checks the message and\n"
    "                         sends them back; no key, no store\n"
    "  -j, --json             summary as one JSON object on stdout\n"
    "  -q, --quiet            no progress lines on stderr\n"
    "  -h, --help             this text\n"
    "\n"
    "Puts carry the context of the client's last get or put of that key\n"
    "(each client caches the contexts of up to 1024 keys), so they replace\n"
    "what the client saw; without one (first touch, evicted) they are\n"
    "blind.  A get of a missing key is a miss, not an error.  Latencies\n"
    "count ops that completed (hits, misses, puts); failed ops are counted\n"
    "as errors, by kind.  Progress goes to stderr every second; the\n"
    "summary (get and put: count, misses, errors, ops/s, mean, p50, p99,\n"
    "p99.9, max latency) to stdout.  SIGINT ends the run early, with a\n"
    "summary.  Exit status: 0, or 1 on bad usage, a setup failure, or if\n"
    "no op succeeded.\n";

enum {
	OPT_RATE = 256,
	OPT_CRED,
	OPT_R,
	OPT_W,
	OPT_PRELOAD,
	OPT_SEED,
	OPT_NOROUTE,
	OPT_BLOB,
	OPT_ECHO,
};

static void bad_usage(const char *fmt, ...)
    __attribute__((format(printf, 1, 2)));

static void
bad_usage(const char *fmt, ...)
{
	va_list ap;

	if (fmt != NULL) {
		fputs("dynamo-bench: ", stderr);
		va_start(ap, fmt);
		vfprintf(stderr, fmt, ap);
		va_end(ap);
		fputc('\n', stderr);
	}
	fputs("usage: dynamo-bench --node ADDR --cluster-key FILE "
	      "[OPTIONS]; see --help\n",
	      stderr);
}

/* 0, 1 for --help, or -EINVAL after a message. */
static int
parse_args(int argc, char **argv, struct bench_cfg *cfg)
{
	static const struct option longopts[] = {
	    {"node", required_argument, NULL, 'n'},
	    {"cluster-key", required_argument, NULL, 'k'},
	    {"cred", required_argument, NULL, OPT_CRED},
	    {"timeout", required_argument, NULL, 't'},
	    {"clients", required_argument, NULL, 'c'},
	    {"duration", required_argument, NULL, 'd'},
	    {"ops", required_argument, NULL, 'o'},
	    {"rate", required_argument, NULL, OPT_RATE},
	    {"keys", required_argument, NULL, 'K'},
	    {"value-size", required_argument, NULL, 's'},
	    {"read-ratio", required_argument, NULL, 'R'},
	    {"r", required_argument, NULL, OPT_R},
	    {"w", required_argument, NULL, OPT_W},
	    {"prefix", required_argument, NULL, 'p'},
	    {"preload", no_argument, NULL, OPT_PRELOAD},
	    {"seed", required_argument, NULL, OPT_SEED},
	    {"no-routing", no_argument, NULL, OPT_NOROUTE},
	    {"blob", no_argument, NULL, OPT_BLOB},
	    {"echo", no_argument, NULL, OPT_ECHO},
	    {"json", no_argument, NULL, 'j'},
	    {"quiet", no_argument, NULL, 'q'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	bool have_duration = false, have_seed = false;
	uint64_t v;
	int opt;

	cfg->clients = 16;
	cfg->duration_ms = 10000;
	cfg->keys = 10000;
	cfg->value_size = 1024;
	cfg->read_ratio = 0.5;
	cfg->prefix = "bench-";
	cfg->nodes = mem_calloc((size_t)argc, sizeof(*cfg->nodes));
	if (cfg->nodes == NULL) {
		fprintf(stderr, "dynamo-bench: %s\n", dyn_strerror(-ENOMEM));
		return -ENOMEM;
	}

	while ((opt = getopt_long(argc, argv, "n:k:t:c:d:o:K:s:R:p:jqh",
	                          longopts, NULL)) != -1) {
		int rv = 0;
		switch (opt) {
		case 'n':
			cfg->nodes[cfg->nnodes++] = optarg;
			break;
		case 'k':
			cfg->key_file = optarg;
			break;
		case OPT_CRED:
			cfg->cred_file = optarg;
			break;
		case 't':
			rv = cli_parse_duration_ms(optarg, 1, &v);
			if (rv == 0 && (v == 0 || v > INT_MAX))
				rv = -ERANGE;
			cfg->timeout_ms = (int)v;
			break;
		case 'c':
			rv = cli_parse_u64(optarg, 1, MAX_CLIENTS, &v);
			cfg->clients = (unsigned)v;
			break;
		case 'd':
			rv = cli_parse_duration_ms(optarg, 1000,
			                           &cfg->duration_ms);
			if (rv == 0 && cfg->duration_ms == 0)
				rv = -ERANGE;
			have_duration = true;
			break;
		case 'o':
			rv = cli_parse_u64(optarg, 1, UINT64_MAX, &cfg->ops);
			break;
		case OPT_RATE:
			rv = cli_parse_double(optarg, 1e-3, 1e9, &cfg->rate);
			if (rv == 0 && cfg->rate <= 0)
				rv = -ERANGE;
			break;
		case 'K':
			rv = cli_parse_u64(optarg, 1, 1ull << 48, &cfg->keys);
			break;
		case 's':
			rv = cli_parse_size(optarg, &v);
			if (rv == 0 && v > WIRE_MAX_VALUE)
				rv = -ERANGE;
			cfg->value_size = (size_t)v;
			break;
		case 'R':
			rv = cli_parse_double(optarg, 0, 1, &cfg->read_ratio);
			break;
		case OPT_R:
			rv = cli_parse_u64(optarg, 1, UINT32_MAX, &v);
			cfg->r = (uint32_t)v;
			break;
		case OPT_W:
			rv = cli_parse_u64(optarg, 1, UINT32_MAX, &v);
			cfg->w = (uint32_t)v;
			break;
		case 'p':
			cfg->prefix = optarg;
			if (strlen(optarg) > MAX_PREFIX_LEN)
				rv = -ERANGE;
			break;
		case OPT_PRELOAD:
			cfg->preload = true;
			break;
		case OPT_NOROUTE:
			cfg->no_routing = true;
			break;
		case OPT_BLOB:
			cfg->blob = true;
			break;
		case OPT_ECHO:
			cfg->echo = true;
			cfg->read_ratio = 1;
			break;
		case OPT_SEED:
			rv = cli_parse_u64(optarg, 0, UINT64_MAX, &cfg->seed);
			have_seed = true;
			break;
		case 'j':
			cfg->json = true;
			break;
		case 'q':
			cfg->quiet = true;
			break;
		case 'h':
			return 1;
		default:
			bad_usage(NULL);
			return -EINVAL;
		}
		if (rv != 0) {
			const char *name = "?";
			for (const struct option *lo = longopts; lo->name;
			     lo++) {
				if (lo->val == opt)
					name = lo->name;
			}
			bad_usage("--%s: %s value '%s'", name,
			          rv == -ERANGE ? "out of range" : "malformed",
			          optarg);
			return -EINVAL;
		}
	}
	if (optind < argc) {
		bad_usage("unexpected argument '%s'", argv[optind]);
		return -EINVAL;
	}
	if (cfg->nnodes == 0) {
		bad_usage("no --node given");
		return -EINVAL;
	}
	if (cfg->ops != 0 && !have_duration)
		cfg->duration_ms = 0;
	if (!have_seed) {
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		cfg->seed =
		    (uint64_t)ts.tv_sec * NS_PER_SEC + (uint64_t)ts.tv_nsec;
	}
	return 0;
}

static int
connect_cluster(const struct bench_cfg *cfg, struct dyn_client **c)
{
	struct dyn_client_opts o;
	struct cred cred;
	bool have_cred;
	char why[600];
	int rv;

	memset(&o, 0, sizeof(o));
	rv = cli_auth_load(cfg->key_file, cfg->cred_file, AUTH_CLIENT, &o.keys,
	    &cred, &have_cred, why, sizeof(why));
	if (rv == -ENOKEY || rv == -EINVAL) {
		bad_usage("%s", why);
		goto out;
	}
	if (rv != 0) {
		fprintf(stderr, "dynamo-bench: %s\n", why);
		goto out;
	}
	if (have_cred)
		o.cred = &cred;
	o.nodes = cfg->nodes;
	o.nnodes = cfg->nnodes;
	o.timeout_ms = cfg->timeout_ms;
	o.no_routing = cfg->no_routing;
	rv = dyn_client_new(&o, c);
	if (rv != 0)
		fprintf(stderr, "dynamo-bench: client: %s\n",
		        dyn_strerror(rv));
	if (o.cred)
		cred_fini(&cred);
out:
	OPENSSL_cleanse(&o.keys, sizeof(o.keys));
	return rv;
}

int
main(int argc, char **argv)
{
	struct bench_cfg cfg;
	struct bench b;
	struct worker **ws = NULL;
	struct summary *sum = NULL;
	sigset_t sigs;
	bool interrupted = false;
	uint64_t seed;
	int ex = 1;
	int rv;

	memset(&cfg, 0, sizeof(cfg));
	memset(&b, 0, sizeof(b));
	b.cfg = &cfg;
	rv = parse_args(argc, argv, &cfg);
	if (rv == 1) {
		fputs(help_text, stdout);
		ex = fflush(stdout) == 0 ? 0 : 1;
		goto out;
	}
	if (rv != 0)
		goto out;
	b.ro_get.r = cfg.r;
	b.ro_put.w = cfg.w;

	/* Block the signals before any thread exists (the library's
	 * included), so they are delivered only to sigtimedwait here. */
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);

	if (connect_cluster(&cfg, &b.client) != 0)
		goto out;

	ws = mem_calloc(cfg.clients, sizeof(*ws));
	sum = mem_calloc(1, sizeof(*sum));
	if (ws == NULL || sum == NULL) {
		rv = -ENOMEM;
		goto fail;
	}
	seed = cfg.seed;
	for (unsigned i = 0; i < cfg.clients; i++) {
		rv = worker_new(&b, i, &seed, &ws[i]);
		if (rv != 0)
			goto fail;
	}

	if (cfg.preload && !cfg.echo) {
		b.phase = PHASE_PRELOAD;
		rv = run_phase(&b, ws, &sigs, &interrupted);
		if (rv != 0)
			goto fail;
		summarise(&b, ws, sum);
		if (!cfg.quiet || interrupted)
			fprintf(stderr,
			        "preload: %" PRIu64
			        " keys written in %.2f s, %" PRIu64
			        " errors%s\n",
			        sum->op[1].count, sum->elapsed_s,
			        sum->op[1].errors,
			        interrupted ? " (interrupted)" : "");
		if (interrupted)
			goto out;
		memset(sum, 0, sizeof(*sum));
	}
	b.phase = PHASE_RUN;
	rv = run_phase(&b, ws, &sigs, &interrupted);
	if (rv != 0)
		goto fail;
	summarise(&b, ws, sum);
	sum->interrupted = interrupted;
	if (cfg.json)
		print_json(&cfg, sum);
	else
		print_text(&cfg, sum);
	if (fflush(stdout) != 0) {
		rv = -(errno ? errno : EIO);
		goto fail;
	}
	ex = sum->op[0].count + sum->op[1].count > 0 ? 0 : 1;
	goto out;
fail:
	fprintf(stderr, "dynamo-bench: %s\n", dyn_strerror(rv));
out:
	for (unsigned i = 0; ws != NULL && i < cfg.clients; i++)
		worker_free(ws[i]);
	mem_free(ws);
	mem_free(sum);
	dyn_client_free(b.client);
	mem_free(cfg.nodes);
	return ex;
}
