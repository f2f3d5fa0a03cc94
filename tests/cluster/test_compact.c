/*
 * Compaction of a real node's data file.  96 MiB of values written and
 * 7/8 of them deleted leave the file at its peak; dyn_compact, under a
 * light write load, gives the space back and loses nothing: every acked
 * write and every kept value reads back byte-identical.  `dynamoctl
 * compact --json` answers the sizes; a restart with --compact-at-start
 * compacts before serving; --compact-check-interval compacts on its own.
 * The refills of those two phases run with --no-fsync, for speed.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/wait.h>

#include "err.h"
#include "harness.h"
#include "mem.h"

#define BIG    (1u << 20)
#define NBIG   96
#define KEEP   8
#define NJUNK  80

static struct harness h;

/* Deterministic bytes of value `seed`. */
static void
pattern(uint32_t seed, uint8_t *out, size_t len)
{
	uint32_t x = seed * 2654435761u + 1;
	for (size_t k = 0; k < len; k++) {
		x ^= x << 13;
		x ^= x >> 17;
		x ^= x << 5;
		out[k] = (uint8_t)x;
	}
}


/* Write prefix/0 .. prefix/(n-1), 1 MiB each, then delete all but every
 * keep-th (keep 0: all) with the context each put returned. */
static void
put_and_delete(struct dyn_client *c, const char *prefix, int n, int keep,
    uint8_t *buf)
{
	char key[32];
	uint8_t *ctx[NBIG];
	size_t ctx_len[NBIG];
	CHECK(n <= NBIG);
	for (int i = 0; i < n; i++) {
		int kl = snprintf(key, sizeof(key), "%s/%d", prefix, i);
		pattern((uint32_t)i, buf, BIG);
		CHECK_RC(dyn_put(c, key, (size_t)kl, NULL, 0, buf, BIG, NULL,
		             &ctx[i], &ctx_len[i]),
		    0);
	}
	for (int i = 0; i < n; i++) {
		if (!keep || i % keep != 0) {
			int kl = snprintf(key, sizeof(key), "%s/%d", prefix, i);
			CHECK_RC(dyn_delete(c, key, (size_t)kl, ctx[i],
			             ctx_len[i], NULL),
			    0);
		}
		mem_free(ctx[i]);
	}
}

static void
check_big(struct dyn_client *c, uint8_t *buf)
{
	char key[32];
	for (int i = 0; i < NBIG; i++) {
		int kl = snprintf(key, sizeof(key), "big/%d", i);
		struct dyn_get_result r;
		int rc = dyn_get(c, key, (size_t)kl, NULL, &r);
		if (i % KEEP) {
			CHECK_RC(rc, -ENOENT);
		} else {
			CHECK_RC(rc, 0);
			pattern((uint32_t)i, buf, BIG);
			CHECK(r.versions.n == 1 && r.versions.v[0].len == BIG);
			CHECK(memcmp(r.versions.v[0].value, buf, BIG) == 0);
		}
		dyn_get_result_fini(&r);
	}
}

/* The light load: one put every few ms, each acked one remembered. */
struct load {
	struct dyn_client *c;
	atomic_bool stop;
	atomic_int acked;
	long long max_ms; /* read after the join */
};

static size_t
load_value(int i, char *out, size_t cap)
{
	return (size_t)snprintf(out, cap, "load value %d %0*d", i, i % 300, 0);
}

static void *
load_main(void *arg)
{
	struct load *l = arg;
	char key[32], val[400];
	for (int i = 0; !atomic_load(&l->stop); i++) {
		int kl = snprintf(key, sizeof(key), "load/%d", i);
		size_t len = load_value(i, val, sizeof(val));
		long long t0 = harness_now_ms();
		CHECK_RC(dyn_put(l->c, key, (size_t)kl, NULL, 0, val, len, NULL,
		             NULL, NULL),
		    0);
		long long ms = harness_now_ms() - t0;
		if (ms > l->max_ms)
			l->max_ms = ms;
		atomic_store(&l->acked, i + 1);
		harness_pause_ms(3);
	}
	return NULL;
}

static void
check_load(struct dyn_client *c, int n)
{
	char key[32], val[400];
	for (int i = 0; i < n; i++) {
		int kl = snprintf(key, sizeof(key), "load/%d", i);
		size_t len = load_value(i, val, sizeof(val));
		struct dyn_get_result r;
		CHECK_RC(dyn_get(c, key, (size_t)kl, NULL, &r), 0);
		CHECK(r.versions.n == 1 && r.versions.v[0].len == len);
		CHECK(memcmp(r.versions.v[0].value, val, len) == 0);
		dyn_get_result_fini(&r);
	}
}

static void
restart(const char *const *args)
{
	int st = harness_stop(&h, 0, SIGTERM);
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	harness_start(&h, 0, args);
}

int
main(void)
{
	static const char *const off[] = {"--compact-check-interval", "off",
	                                  NULL};
	harness_init(&h);
	harness_start(&h, 0, off);
	struct dyn_client *cl = harness_client(&h, 60000, 0, -1);
	uint8_t *buf = mem_alloc(BIG);
	CHECK(buf != NULL);

	long long t0 = harness_now_ms();
	put_and_delete(cl, "big", NBIG, KEEP, buf);
	uint64_t file0 = harness_stat(&h, 0, "file_bytes"),
	         used0 = harness_stat(&h, 0, "used_bytes"),
	         free0 = harness_stat(&h, 0, "free_bytes");
	printf("%d MiB written, 7/8 deleted in %lld ms: file %llu, used "
	       "%llu, free %llu bytes\n",
	    NBIG, harness_now_ms() - t0, (unsigned long long)file0,
	    (unsigned long long)used0, (unsigned long long)free0);
	CHECK(file0 >= (uint64_t)NBIG * BIG);
	CHECK(free0 >= (uint64_t)(NBIG - NBIG / KEEP - 4) * BIG);
	CHECK(harness_stat(&h, 0, "compactions") == 0);

	/* Compact under a light write load. */
	struct load l = {.c = harness_client(&h, 10000, 0, -1)};
	pthread_t th;
	CHECK(pthread_create(&th, NULL, load_main, &l) == 0);
	while (atomic_load(&l.acked) < 20)
		harness_pause_ms(5);
	struct dyn_compaction r;
	CHECK_RC(dyn_compact(cl, 0, &r), 0);
	int at = atomic_load(&l.acked);
	while (atomic_load(&l.acked) < at + 20)
		harness_pause_ms(5);
	atomic_store(&l.stop, true);
	pthread_join(th, NULL);
	printf("compacted %llu -> %llu bytes in %llu ms; %d puts acked "
	       "around it, the slowest took %lld ms\n",
	    (unsigned long long)r.before, (unsigned long long)r.after,
	    (unsigned long long)r.ms, atomic_load(&l.acked), l.max_ms);
	CHECK(r.before >= file0);
	CHECK(r.after < r.before / 4);
	CHECK(r.after <= used0 + (2u << 20));
	t0 = harness_now_ms();
	check_load(cl, atomic_load(&l.acked));
	check_big(cl, buf);
	printf("all read back in %lld ms\n", harness_now_ms() - t0);
	CHECK(harness_stat(&h, 0, "compactions") == 1);
	CHECK(harness_stat(&h, 0, "compact_last_after") == r.after);
	CHECK(harness_stat(&h, 0, "file_bytes") < r.before / 4);
	dyn_client_free(l.c);

	/* The command line: one JSON object with the sizes. */
	const char *ctl = getenv("DYNAMOCTL");
	CHECK(ctl != NULL);
	char cmd[2048], out[512] = "";
	snprintf(cmd, sizeof(cmd), "'%s' --node %s --cluster-key '%s' "
	    "compact --json", ctl, h.nodes[0].addr, h.keyfile);
	FILE *p = popen(cmd, "r");
	CHECK(p != NULL);
	CHECK(fgets(out, sizeof(out), p) != NULL);
	CHECK(pclose(p) == 0);
	printf("dynamoctl compact --json: %s", out);
	CHECK(strstr(out, "\"before_bytes\": ") && strstr(out, "\"after_bytes\": "));
	CHECK(harness_stat(&h, 0, "compactions") == 2);

	/* Garbage again, then a restart that compacts before serving. */
	static const char *const fast[] = {"--compact-check-interval", "off",
	                                   "--no-fsync", NULL};
	restart(fast);
	t0 = harness_now_ms();
	put_and_delete(cl, "junk", NJUNK, 0, buf);
	uint64_t file1 = harness_stat(&h, 0, "file_bytes");
	/* Unsynced commits are in the copy too (it reads the map). */
	static const char *const at_start[] = {"--compact-at-start",
	    "--compact-check-interval", "off", "--no-fsync", NULL};
	restart(at_start);
	CHECK(harness_stat(&h, 0, "compactions") == 1);
	uint64_t file2 = harness_stat(&h, 0, "file_bytes");
	printf("--compact-at-start: %llu -> %llu bytes (%lld ms with the "
	       "refill)\n",
	    (unsigned long long)file1, (unsigned long long)file2,
	    harness_now_ms() - t0);
	CHECK(file2 < file1 / 4);
	check_big(cl, buf);

	/* And once more, collected by the automatic check. */
	restart(fast);
	t0 = harness_now_ms();
	put_and_delete(cl, "junk", NJUNK, 0, buf);
	static const char *const check[] = {"--compact-check-interval", "200",
	                                    "--no-fsync", NULL};
	restart(check);
	long long deadline = harness_now_ms() + 20000;
	while (harness_stat(&h, 0, "compactions") == 0 && harness_now_ms() < deadline)
		harness_pause_ms(50);
	CHECK(harness_stat(&h, 0, "compactions") == 1);
	printf("--compact-check-interval 200: %llu -> %llu bytes (%lld ms "
	       "with the refill)\n",
	    (unsigned long long)harness_stat(&h, 0, "compact_last_before"),
	    (unsigned long long)harness_stat(&h, 0, "compact_last_after"),
	    harness_now_ms() - t0);
	CHECK(harness_stat(&h, 0, "file_bytes") < file1 / 4);
	check_big(cl, buf);

	int st = harness_stop(&h, 0, SIGTERM);
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	mem_free(buf);
	dyn_client_free(cl);
	printf("compact: ok\n");
	return 0;
}
