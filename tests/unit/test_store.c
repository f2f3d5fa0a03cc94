/*
 * Unit tests of node/store: LMDB in a mkdtemp() directory per test.
 *
 * Single-threaded tests run under cmocka's allocator (leak checks).  The
 * store's writer thread allocates too, but only while the one caller is
 * blocked waiting for it, so the two never allocate at the same time.  The
 * tests with many caller threads use libc's allocator: cmocka's is not
 * thread-safe.  Apply functions run in the writer thread, so they never
 * call cmocka's assertions; they record what they saw for the test thread.
 */
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <setjmp.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>

#include <cmocka.h>
#include <lmdb.h>

#include "buf.h"
#include "err.h"
#include "keypos.h"
#include "mem.h"
#include "store.h"
#include "vset.h"

#define ACTOR 7

struct fixture {
	char dir[64];
	struct store *s;
};

static void *
t_malloc(size_t n)
{
	return test_malloc(n);
}

static void *
t_calloc(size_t nmemb, size_t n)
{
	return test_calloc(nmemb, n);
}

static void *
t_realloc(void *p, size_t n)
{
	return test_realloc(p, n);
}

static void
t_free(void *p)
{
	test_free(p);
}

static const struct mem_allocator cmocka_alloc = {
    t_malloc,
    t_calloc,
    t_realloc,
    t_free,
};

static void
rm_rf(const char *dir)
{
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	assert_int_equal(system(cmd), 0);
}

static int
setup_dir(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	if (!f)
		return -1;
	snprintf(f->dir, sizeof(f->dir), "/tmp/test_store.XXXXXX");
	if (!mkdtemp(f->dir)) {
		free(f);
		return -1;
	}
	*state = f;
	return 0;
}

static int
teardown_dir(void **state)
{
	struct fixture *f = *state;
	store_close(f->s);
	rm_rf(f->dir);
	free(f);
	return 0;
}

/* cmocka's allocator for the test body; the fixture itself is libc's. */
static int
setup_leakcheck(void **state)
{
	if (setup_dir(state) != 0)
		return -1;
	mem_set_allocator(&cmocka_alloc);
	return 0;
}

static int
teardown_leakcheck(void **state)
{
	struct fixture *f = *state;
	store_close(f->s);
	f->s = NULL;
	mem_set_allocator(NULL);
	return teardown_dir(state);
}

static struct store *
open_store(struct fixture *f, bool fsync, uint32_t max_batch,
           uint64_t map_init, uint64_t map_max)
{
	struct store_opts o;
	store_opts_default(&o);
	o.dir = f->dir;
	o.fsync = fsync;
	if (max_batch)
		o.max_batch = max_batch;
	o.map_init = map_init;
	o.map_max = map_max;
	assert_int_equal(store_open(&o, &f->s), 0);
	assert_non_null(f->s);
	return f->s;
}

static void
close_store(struct fixture *f)
{
	store_close(f->s);
	f->s = NULL;
}

static void
reopen(struct fixture *f)
{
	close_store(f);
	open_store(f, false, 0, 0, 0);
}

/* The apply function of a plain put: replace whatever is there with one
 * version holding val (seen context = the whole current set). */
struct put_arg {
	const void *val;
	size_t len;
	int calls;
};

static int
apply_put(struct vset *cur, void *arg)
{
	struct put_arg *a = arg;
	struct vclock ctx;
	a->calls++;
	vset_context(cur, &ctx);
	return vset_put(cur, &ctx, ACTOR, 1000, a->val, a->len, false, NULL);
}

static int
put(struct store *s, const void *key, size_t klen, const void *val, size_t len)
{
	struct put_arg a = {val, len, 0};
	return store_update(s, key, klen, apply_put, &a);
}

static int
put_str(struct store *s, const char *key, const char *val)
{
	return put(s, key, strlen(key), val, strlen(val));
}

/* Assert key holds exactly one version with value val. */
static void
check_value(struct store *s, const void *key, size_t klen, const void *val,
            size_t len)
{
	struct vset got;
	vset_init(&got);
	assert_int_equal(store_get(s, key, klen, &got), 0);
	assert_int_equal(got.n, 1);
	assert_int_equal(got.v[0].len, len);
	if (len)
		assert_memory_equal(got.v[0].value, val, len);
	vset_fini(&got);
}

static void
check_str(struct store *s, const char *key, const char *val)
{
	check_value(s, key, strlen(key), val, strlen(val));
}

static void
test_error_map(void **state)
{
	static const struct {
		int in, out;
	} tab[] = {
	    {0, 0},
	    {MDB_MAP_FULL, -ENOSPC},
	    {MDB_NOTFOUND, -ENOENT},
	    {MDB_KEYEXIST, -EEXIST},
	    {MDB_CORRUPTED, -EIO},
	    {MDB_PAGE_NOTFOUND, -EIO},
	    {MDB_PANIC, -EIO},
	    {MDB_INVALID, DYN_EBADMSG},
	    {MDB_READERS_FULL, -EAGAIN},
	    {MDB_MAP_RESIZED, -EAGAIN},
	    {MDB_VERSION_MISMATCH, DYN_EPROTO},
	    {MDB_TXN_FULL, -ENOSPC},
	    {MDB_DBS_FULL, -EMFILE},
	    {MDB_BAD_VALSIZE, DYN_ETOOBIG},
	    {MDB_BAD_TXN, -EINVAL},
	    {MDB_BAD_DBI, -EINVAL},
	    {MDB_INCOMPATIBLE, -EINVAL},
	    {MDB_CURSOR_FULL, -EIO},
	    {ENOSPC, -ENOSPC},
	    {EIO, -EIO},
	    {ENOMEM, -ENOMEM},
	    {EACCES, -EACCES},
	    {-31000, -EIO}, /* unknown LMDB-range code */
	};
	(void)state;
	for (size_t i = 0; i < sizeof(tab) / sizeof(tab[0]); i++)
		assert_int_equal(store_error_from_lmdb(tab[i].in), tab[i].out);
}

/* A set of two siblings (one a tombstone) with a non-empty past. */
static void
make_set(struct vset *s)
{
	struct vclock ctx;
	vset_init(s);
	assert_int_equal(vset_put(s, NULL, 1, 100, "hello", 5, false, NULL),
	                 0);
	vclock_init(&ctx);
	vclock_raise(&ctx, 3, 4, 50);
	assert_int_equal(vset_put(s, &ctx, 2, 200, NULL, 0, true, NULL), 0);
	assert_int_equal(s->n, 2);
}

static void
test_record_codec(void **state)
{
	struct vset set, got;
	struct buf enc, enc2, key;
	uint8_t *bad;
	(void)state;

	make_set(&set);
	buf_init(&enc);
	buf_init(&enc2);
	buf_init(&key);
	vset_init(&got);
	store_record_encode("the key", 7, &set, &enc);
	assert_int_equal(buf_err(&enc), 0);
	assert_int_equal(be_get_u32(enc.data), 7);

	assert_int_equal(
	    store_record_decode(enc.data, enc.len, 1024, &key, &got), 0);
	assert_int_equal(key.len, 7);
	assert_memory_equal(key.data, "the key", 7);
	store_record_encode(key.data, key.len, &got, &enc2);
	assert_int_equal(enc2.len, enc.len);
	assert_memory_equal(enc2.data, enc.data, enc.len);
	vset_fini(&got);

	/* Every truncation is refused and leaves out empty. */
	for (size_t n = 0; n < enc.len; n++) {
		bad = malloc(n ? n : 1);
		assert_non_null(bad);
		memcpy(bad, enc.data, n);
		assert_int_equal(store_record_decode(bad, n, 1024, &key, &got),
		                 DYN_EBADMSG);
		assert_int_equal(got.n, 0);
		free(bad);
	}

	/* A trailing byte. */
	bad = malloc(enc.len + 1);
	assert_non_null(bad);
	memcpy(bad, enc.data, enc.len);
	bad[enc.len] = 0;
	assert_int_equal(
	    store_record_decode(bad, enc.len + 1, 1024, &key, &got),
	    DYN_EBADMSG);
	free(bad);

	/* A key length over KEY_MAX_LEN, and one past the input. */
	buf_reset(&enc2);
	buf_put_u32(&enc2, KEY_MAX_LEN + 1);
	assert_non_null(buf_extend(&enc2, KEY_MAX_LEN + 1));
	vset_encode(&set, &enc2);
	assert_int_equal(
	    store_record_decode(enc2.data, enc2.len, 1024, &key, &got),
	    DYN_EBADMSG);
	be_put_u32(enc.data, 0xffffffffu);
	assert_int_equal(
	    store_record_decode(enc.data, enc.len, 1024, &key, &got),
	    DYN_EBADMSG);
	be_put_u32(enc.data, 7);

	/* A value over max_value. */
	assert_int_equal(store_record_decode(enc.data, enc.len, 4, &key, &got),
	                 DYN_EBADMSG);

	/* A key of exactly KEY_MAX_LEN is fine, an empty set too. */
	buf_reset(&enc2);
	uint8_t *big = calloc(1, KEY_MAX_LEN);
	assert_non_null(big);
	store_record_encode(big, KEY_MAX_LEN, &got, &enc2);
	assert_int_equal(
	    store_record_decode(enc2.data, enc2.len, 1024, &key, &got), 0);
	assert_int_equal(key.len, KEY_MAX_LEN);
	assert_int_equal(got.n, 0);
	free(big);

	buf_fini(&enc);
	buf_fini(&enc2);
	buf_fini(&key);
	vset_fini(&set);
	vset_fini(&got);
}

static void
test_put_get(void **state)
{
	struct fixture *f = *state;
	struct store *s = open_store(f, true, 0, 0, 0);
	struct vset got;

	assert_int_equal(put_str(s, "alpha", "one"), 0);
	assert_int_equal(put_str(s, "beta", "two"), 0);
	assert_int_equal(put(s, "", 0, "empty key", 9), 0);
	check_str(s, "alpha", "one");
	check_str(s, "beta", "two");
	check_value(s, "", 0, "empty key", 9);
	assert_int_equal(put_str(s, "alpha", "uno"), 0);
	check_str(s, "alpha", "uno");

	/* Absent: -ENOENT and out emptied. */
	make_set(&got);
	assert_int_equal(store_get(s, "gamma", 5, &got), -ENOENT);
	assert_int_equal(got.n, 0);
	vset_fini(&got);

	/* Keys over 64 KiB are refused up front. */
	char *huge = calloc(1, KEY_MAX_LEN + 1);
	assert_non_null(huge);
	assert_int_equal(put(s, huge, KEY_MAX_LEN + 1, "x", 1), DYN_ETOOBIG);
	assert_int_equal(store_get(s, huge, KEY_MAX_LEN + 1, &got),
	                 DYN_ETOOBIG);
	free(huge);

	/* A value over max_value is refused, the old record stays. */
	store_close(f->s);
	struct store_opts o;
	store_opts_default(&o);
	o.dir = f->dir;
	o.max_value = 8;
	assert_int_equal(store_open(&o, &f->s), 0);
	s = f->s;
	assert_int_equal(put_str(s, "beta", "way too long"), DYN_ETOOBIG);
	check_str(s, "beta", "two");
	close_store(f);
}

static void
test_persistence(void **state)
{
	struct fixture *f = *state;
	struct store *s = open_store(f, true, 0, 0, 0);
	char key[32], val[32];

	for (int i = 0; i < 100; i++) {
		snprintf(key, sizeof(key), "key-%d", i);
		snprintf(val, sizeof(val), "value-%d", i * i);
		assert_int_equal(put_str(s, key, val), 0);
	}
	reopen(f);
	for (int i = 0; i < 100; i++) {
		snprintf(key, sizeof(key), "key-%d", i);
		snprintf(val, sizeof(val), "value-%d", i * i);
		check_str(f->s, key, val);
	}
	close_store(f);
}

static int
apply_clear(struct vset *cur, void *arg)
{
	(void)arg;
	vset_fini(cur);
	return 0;
}

static void
test_delete_on_empty(void **state)
{
	struct fixture *f = *state;
	struct store *s = open_store(f, false, 0, 0, 0);
	struct vset got;
	struct store_stats st;

	vset_init(&got);
	assert_int_equal(put_str(s, "doomed", "x"), 0);
	assert_int_equal(store_stats(s, &st), 0);
	assert_int_equal(st.keys, 1);
	assert_int_equal(store_update(s, "doomed", 6, apply_clear, NULL), 0);
	assert_int_equal(store_get(s, "doomed", 6, &got), -ENOENT);
	/* Clearing an absent key is fine too. */
	assert_int_equal(store_update(s, "never", 5, apply_clear, NULL), 0);
	assert_int_equal(store_stats(s, &st), 0);
	assert_int_equal(st.keys, 0);
	close_store(f);
}

static void
test_long_keys(void **state)
{
	struct fixture *f = *state;
	struct store *s = open_store(f, false, 0, 0, 0);
	static const size_t lens[] = {495, 496, 511, 1000, 65536};
	char *a, *b;

	a = malloc(KEY_MAX_LEN);
	b = malloc(KEY_MAX_LEN);
	assert_non_null(a);
	assert_non_null(b);
	for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
		memset(a, 'a' + (int)i, lens[i]);
		assert_int_equal(put(s, a, lens[i], &lens[i], sizeof(lens[i])),
		                 0);
	}
	/* Two long keys equal in their first 400 (indeed 999) bytes. */
	memset(a, 'z', 1000);
	memcpy(b, a, 1000);
	b[999] = 'y';
	assert_int_equal(put(s, a, 1000, "first", 5), 0);
	assert_int_equal(put(s, b, 1000, "second", 6), 0);

	reopen(f);
	s = f->s;
	for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
		memset(a, 'a' + (int)i, lens[i]);
		check_value(s, a, lens[i], &lens[i], sizeof(lens[i]));
	}
	memset(a, 'z', 1000);
	check_value(s, a, 1000, "first", 5);
	check_value(s, b, 1000, "second", 6);
	free(a);
	free(b);
	close_store(f);
}

/* --- one batch, mixed outcomes ----------------------------------------- */

struct gate {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool entered; /* the writer is inside apply_block */
	int queued;   /* callers about to call store_update */
	int want;
};

static int
apply_block(struct vset *cur, void *arg)
{
	struct gate *g = arg;
	/* Hold the writer in batch 1 until the others are queued behind it;
	 * the sleep lets the last one get from the counter into the queue. */
	pthread_mutex_lock(&g->mu);
	g->entered = true;
	pthread_cond_broadcast(&g->cv);
	while (g->queued < g->want)
		pthread_cond_wait(&g->cv, &g->mu);
	pthread_mutex_unlock(&g->mu);
	usleep(200 * 1000);
	return vset_put(cur, NULL, ACTOR, 1, "gate", 4, false, NULL);
}

static int
apply_blind(struct vset *cur, void *arg)
{
	(void)arg;
	return vset_put(cur, NULL, ACTOR, 2, "blind", 5, false, NULL);
}

static int
apply_skip(struct vset *cur, void *arg)
{
	(void)arg;
	/* Changes made before STORE_SKIP must not be written. */
	vset_put(cur, NULL, ACTOR, 3, "skipped", 7, false, NULL);
	return STORE_SKIP;
}

static int
apply_fail(struct vset *cur, void *arg)
{
	(void)arg;
	vset_put(cur, NULL, ACTOR, 4, "failed", 6, false, NULL);
	return -EPERM;
}

struct job {
	struct store *s;
	struct gate *g;
	const char *key;
	store_apply_fn fn;
	void *arg;
	int rc;
	pthread_t t;
};

static void *
job_main(void *p)
{
	struct job *j = p;
	if (j->g) {
		pthread_mutex_lock(&j->g->mu);
		j->g->queued++;
		pthread_cond_broadcast(&j->g->cv);
		pthread_mutex_unlock(&j->g->mu);
	}
	j->rc = store_update(j->s, j->key, strlen(j->key), j->fn, j->arg);
	return NULL;
}

static void
test_batch_outcomes(void **state)
{
	struct fixture *f = *state;
	struct store *s = open_store(f, false, 0, 0, 0);
	struct store_stats st0, st1;
	struct vset got;
	struct gate g = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER,
	                 false, 0, 5};
	struct job blocker = {s, NULL, "gate", apply_block, &g, 0, 0};
	struct job jobs[5] = {
	    {s, &g, "new", apply_blind, NULL, 0, 0},
	    {s, &g, "new", apply_blind, NULL, 0, 0},
	    {s, &g, "skip", apply_skip, NULL, 0, 0},
	    {s, &g, "fail", apply_fail, NULL, 0, 0},
	    {s, &g, "missing", apply_fail, NULL, 0, 0},
	};

	assert_int_equal(put_str(s, "skip", "kept"), 0);
	assert_int_equal(put_str(s, "fail", "kept too"), 0);
	assert_int_equal(store_stats(s, &st0), 0);

	assert_int_equal(pthread_create(&blocker.t, NULL, job_main, &blocker),
	                 0);
	pthread_mutex_lock(&g.mu);
	while (!g.entered)
		pthread_cond_wait(&g.cv, &g.mu);
	pthread_mutex_unlock(&g.mu);
	for (int i = 0; i < 5; i++)
		assert_int_equal(
		    pthread_create(&jobs[i].t, NULL, job_main, &jobs[i]), 0);
	pthread_join(blocker.t, NULL);
	for (int i = 0; i < 5; i++)
		pthread_join(jobs[i].t, NULL);

	assert_int_equal(blocker.rc, 0);
	assert_int_equal(jobs[0].rc, 0);
	assert_int_equal(jobs[1].rc, 0);
	assert_int_equal(jobs[2].rc, STORE_SKIP);
	assert_int_equal(jobs[3].rc, -EPERM);
	assert_int_equal(jobs[4].rc, -EPERM);

	/* The five queued updates went in one transaction after the gate's. */
	assert_int_equal(store_stats(s, &st1), 0);
	assert_int_equal(st1.commits - st0.commits, 2);
	assert_int_equal(st1.updates - st0.updates, 4);

	check_str(s, "gate", "gate");
	check_str(s, "skip", "kept");
	check_str(s, "fail", "kept too");
	vset_init(&got);
	assert_int_equal(store_get(s, "missing", 7, &got), -ENOENT);
	/* The second blind put saw the first one's version inside the same
	 * transaction, so both stay as siblings. */
	assert_int_equal(store_get(s, "new", 3, &got), 0);
	assert_int_equal(got.n, 2);
	vset_fini(&got);
}

/* --- many threads ------------------------------------------------------ */

#define NTHREADS 16
#define NUPDATES 500

struct counter_arg {
	uint64_t seen;
};

/* Add one to the u64 counter held in key's single version. */
static int
apply_incr(struct vset *cur, void *arg)
{
	struct counter_arg *a = arg;
	struct vclock ctx;
	uint8_t b[8];
	uint64_t n = 0;

	if (cur->n == 1 && cur->v[0].len == 8)
		n = be_get_u64(cur->v[0].value);
	else if (cur->n != 0)
		return -EINVAL;
	a->seen = n;
	be_put_u64(b, n + 1);
	vset_context(cur, &ctx);
	return vset_put(cur, &ctx, ACTOR, 1, b, sizeof(b), false, NULL);
}

struct worker {
	struct store *s;
	int id;
	int errors;
	pthread_t t;
};

static void *
worker_main(void *p)
{
	struct worker *w = p;
	char key[32];
	for (int i = 0; i < NUPDATES; i++) {
		struct counter_arg a = {0};
		int rc;
		if (i % 2) {
			rc = store_update(w->s, "counter", 7, apply_incr, &a);
		} else {
			snprintf(key, sizeof(key), "w%d-%d", w->id, i);
			rc = put(w->s, key, strlen(key), &i, sizeof(i));
		}
		if (rc != 0)
			w->errors++;
	}
	return NULL;
}

static void
run_workers(struct store *s)
{
	struct worker w[NTHREADS];
	char key[32];
	uint8_t b[8];

	for (int i = 0; i < NTHREADS; i++) {
		w[i] = (struct worker){s, i, 0, 0};
		assert_int_equal(
		    pthread_create(&w[i].t, NULL, worker_main, &w[i]), 0);
	}
	for (int i = 0; i < NTHREADS; i++) {
		pthread_join(w[i].t, NULL);
		assert_int_equal(w[i].errors, 0);
	}
	be_put_u64(b, NTHREADS * NUPDATES / 2);
	check_value(s, "counter", 7, b, 8);
	for (int t = 0; t < NTHREADS; t++) {
		for (int i = 0; i < NUPDATES; i += 2) {
			snprintf(key, sizeof(key), "w%d-%d", t, i);
			check_value(s, key, strlen(key), &i, sizeof(i));
		}
	}
}

static void
test_group_commit(void **state)
{
	struct fixture *f = *state;
	struct store *s = open_store(f, true, 0, 0, 0);
	struct store_stats st;

	run_workers(s);
	assert_int_equal(store_stats(s, &st), 0);
	assert_int_equal(st.updates, NTHREADS * NUPDATES);
	assert_int_equal(st.keys, 1 + NTHREADS * NUPDATES / 2);
	print_message("group commit: %llu updates in %llu commits\n",
	              (unsigned long long)st.updates,
	              (unsigned long long)st.commits);
	assert_true(st.commits * 4 < st.updates);
}

static void
test_no_group_commit(void **state)
{
	struct fixture *f = *state;
	struct store *s = open_store(f, false, 1, 0, 0);
	struct store_stats st;

	run_workers(s);
	assert_int_equal(store_stats(s, &st), 0);
	assert_int_equal(st.updates, NTHREADS * NUPDATES);
	assert_int_equal(st.commits, st.updates);
}

/* --- map growth and a full map ----------------------------------------- */

#define BIGVAL (64 * 1024)

static void
fill_value(uint8_t *v, int i)
{
	for (int j = 0; j < BIGVAL; j++)
		v[j] = (uint8_t)(i * 31 + j);
}

struct grower {
	struct store *s;
	int id, n, errors;
	pthread_t t;
};

static void *
grower_main(void *p)
{
	struct grower *g = p;
	uint8_t *v = malloc(BIGVAL);
	char key[32];
	for (int i = 0; v && i < g->n; i++) {
		int k = g->id * 1000 + i;
		snprintf(key, sizeof(key), "big-%d", k);
		fill_value(v, k);
		if (put(g->s, key, strlen(key), v, BIGVAL) != 0)
			g->errors++;
	}
	free(v);
	return NULL;
}

static void
test_map_growth(void **state)
{
	struct fixture *f = *state;
	struct store *s = open_store(f, false, 0, 1 << 20, 0);
	struct grower g[8];
	struct store_stats st;
	uint8_t *v = malloc(BIGVAL);
	char key[32];

	assert_non_null(v);
	assert_int_equal(store_stats(s, &st), 0);
	assert_int_equal(st.map_bytes, 1 << 20);
	/* 8 threads x 40 x 64 KiB = 20 MiB, batches retried as it grows. */
	for (int i = 0; i < 8; i++) {
		g[i] = (struct grower){s, i, 40, 0, 0};
		assert_int_equal(
		    pthread_create(&g[i].t, NULL, grower_main, &g[i]), 0);
	}
	for (int i = 0; i < 8; i++) {
		pthread_join(g[i].t, NULL);
		assert_int_equal(g[i].errors, 0);
	}
	assert_int_equal(store_stats(s, &st), 0);
	assert_int_equal(st.keys, 320);
	assert_true(st.map_bytes >= (20u << 20));
	assert_true(st.db_bytes >= (20u << 20));
	assert_true(st.db_bytes <= st.map_bytes);
	for (int t = 0; t < 8; t++) {
		for (int i = 0; i < 40; i++) {
			int k = t * 1000 + i;
			snprintf(key, sizeof(key), "big-%d", k);
			fill_value(v, k);
			check_value(s, key, strlen(key), v, BIGVAL);
		}
	}
	free(v);
}

static void
test_map_full(void **state)
{
	struct fixture *f = *state;
	struct store *s = open_store(f, false, 0, 1 << 20, 2 << 20);
	struct store_stats st;
	uint8_t *v = malloc(BIGVAL);
	char key[32];
	int n, rc = 0;

	assert_non_null(v);
	for (n = 0; n < 100; n++) {
		snprintf(key, sizeof(key), "big-%d", n);
		fill_value(v, n);
		if ((rc = put(s, key, strlen(key), v, BIGVAL)) != 0)
			break;
	}
	assert_int_equal(rc, -ENOSPC);
	assert_true(n > 10);
	assert_int_equal(store_stats(s, &st), 0);
	assert_int_equal(st.map_bytes, 2 << 20);
	assert_int_equal(st.keys, n);

	/* Overwriting an old key with a big value fails and keeps it. */
	fill_value(v, 12345);
	assert_int_equal(put(s, "big-0", 5, v, BIGVAL), -ENOSPC);

	/* Everything acknowledged is intact; reads and small writes go on. */
	for (int i = 0; i < n; i++) {
		snprintf(key, sizeof(key), "big-%d", i);
		fill_value(v, i);
		check_value(s, key, strlen(key), v, BIGVAL);
	}
	assert_int_equal(store_update(s, "big-1", 5, apply_clear, NULL), 0);
	assert_int_equal(put_str(s, "small", "still writable"), 0);
	check_str(s, "small", "still writable");

	reopen(f);
	for (int i = 0; i < n; i++) {
		if (i == 1)
			continue;
		snprintf(key, sizeof(key), "big-%d", i);
		fill_value(v, i);
		check_value(f->s, key, strlen(key), v, BIGVAL);
	}
	check_str(f->s, "small", "still writable");
	free(v);
	close_store(f);
}

/* --- scans -------------------------------------------------------------- */

#define NSCAN 200

struct scan_item {
	struct keypos pos;
	char key[16];
};

static int
pos_cmp(const void *a, const void *b)
{
	return memcmp(((const struct scan_item *)a)->pos.b,
	              ((const struct scan_item *)b)->pos.b, KEYPOS_LEN);
}

static void
pos_incr(struct keypos *p)
{
	for (int i = KEYPOS_LEN - 1; i >= 0 && ++p->b[i] == 0; i--)
		;
}

struct scan_acc {
	struct scan_item *items;
	int n;
	int stop_after; /* 0: never */
	int bad;
};

static int
scan_cb(const struct keypos *pos, const uint8_t *key, size_t klen,
        const struct vset *set, void *arg)
{
	struct scan_acc *a = arg;
	struct keypos want;
	const struct scan_item *it = &a->items[a->n];

	if (keypos_of(key, klen, &want) != 0 ||
	    memcmp(want.b, pos->b, KEYPOS_LEN) != 0 ||
	    klen != strlen(it->key) || memcmp(key, it->key, klen) != 0 ||
	    set->n != 1 || set->v[0].len != klen ||
	    memcmp(set->v[0].value, key, klen) != 0)
		a->bad++;
	a->n++;
	if (a->stop_after && a->n == a->stop_after)
		return 42;
	return 0;
}

static void
test_scan(void **state)
{
	struct fixture *f = *state;
	struct store *s = open_store(f, false, 0, 0, 0);
	struct scan_item it[NSCAN];
	struct scan_acc a;

	for (int i = 0; i < NSCAN; i++) {
		snprintf(it[i].key, sizeof(it[i].key), "scan-%d", i);
		assert_int_equal(
		    keypos_of(it[i].key, strlen(it[i].key), &it[i].pos), 0);
		assert_int_equal(put_str(s, it[i].key, it[i].key), 0);
	}
	qsort(it, NSCAN, sizeof(it[0]), pos_cmp);

	/* The whole ring, from NULL and from zero. */
	a = (struct scan_acc){it, 0, 0, 0};
	assert_int_equal(store_scan(s, NULL, NULL, scan_cb, &a), 0);
	assert_int_equal(a.n, NSCAN);
	assert_int_equal(a.bad, 0);
	struct keypos zero = {{0}};
	a = (struct scan_acc){it, 0, 0, 0};
	assert_int_equal(store_scan(s, &zero, NULL, scan_cb, &a), 0);
	assert_int_equal(a.n, NSCAN);

	/* [pos 50, pos 150): from inclusive, to exclusive. */
	a = (struct scan_acc){it + 50, 0, 0, 0};
	assert_int_equal(store_scan(s, &it[50].pos, &it[150].pos, scan_cb, &a),
	                 0);
	assert_int_equal(a.n, 100);
	assert_int_equal(a.bad, 0);

	/* One past a key's position excludes it from "from", includes it as
	 * the last before "to". */
	struct keypos p50 = it[50].pos, p150 = it[150].pos;
	pos_incr(&p50);
	pos_incr(&p150);
	a = (struct scan_acc){it + 51, 0, 0, 0};
	assert_int_equal(store_scan(s, &p50, &p150, scan_cb, &a), 0);
	assert_int_equal(a.n, 100);
	assert_int_equal(a.bad, 0);

	/* to == NULL: to the end of the ring. */
	a = (struct scan_acc){it + 120, 0, 0, 0};
	assert_int_equal(store_scan(s, &it[120].pos, NULL, scan_cb, &a), 0);
	assert_int_equal(a.n, NSCAN - 120);
	assert_int_equal(a.bad, 0);

	/* Empty range. */
	a = (struct scan_acc){it, 0, 0, 0};
	assert_int_equal(store_scan(s, &it[7].pos, &it[7].pos, scan_cb, &a),
	                 0);
	assert_int_equal(a.n, 0);

	/* A non-zero return stops the scan and is returned. */
	a = (struct scan_acc){it, 0, 10, 0};
	assert_int_equal(store_scan(s, NULL, NULL, scan_cb, &a), 42);
	assert_int_equal(a.n, 10);
	close_store(f);
}

/* Reads may nest inside a scan; a write there would wait on a writer that
 * may be waiting on this very scan, so it is refused. */
static int
scan_nested_cb(const struct keypos *pos, const uint8_t *key, size_t klen,
               const struct vset *set, void *arg)
{
	struct store *s = arg;
	struct vset got;
	int rc;
	(void)pos;
	(void)set;
	vset_init(&got);
	rc = store_get(s, key, klen, &got);
	vset_fini(&got);
	if (rc != 0)
		return rc;
	if (put(s, key, klen, "x", 1) != -EDEADLK)
		return -1;
	return 0;
}

static void
test_scan_nested(void **state)
{
	struct fixture *f = *state;
	struct store *s = open_store(f, false, 0, 0, 0);

	assert_int_equal(put_str(s, "a", "1"), 0);
	assert_int_equal(put_str(s, "b", "2"), 0);
	assert_int_equal(store_scan(s, NULL, NULL, scan_nested_cb, s), 0);
	check_str(s, "a", "1");
	close_store(f);
}

/* --- meta --------------------------------------------------------------- */

static void
test_meta(void **state)
{
	struct fixture *f = *state;
	struct store *s = open_store(f, false, 0, 0, 0);
	uint8_t b[16], big[4097];
	size_t len = 0;
	char name[66];

	assert_int_equal(store_meta_get(s, "actor", b, sizeof(b), &len),
	                 -ENOENT);
	assert_int_equal(store_meta_put(s, "actor", "12345678", 8), 0);
	assert_int_equal(store_meta_get(s, "actor", b, sizeof(b), &len), 0);
	assert_int_equal(len, 8);
	assert_memory_equal(b, "12345678", 8);

	/* Short buffer: the full length, a truncated copy. */
	memset(b, 0, sizeof(b));
	assert_int_equal(store_meta_get(s, "actor", b, 4, &len), 0);
	assert_int_equal(len, 8);
	assert_memory_equal(b, "1234\0", 5);
	assert_int_equal(store_meta_get(s, "actor", NULL, 0, &len), 0);
	assert_int_equal(len, 8);

	/* Overwrite; persistence even with fsync off (meta is durable). */
	assert_int_equal(store_meta_put(s, "actor", "abc", 3), 0);
	memset(big, 'm', sizeof(big));
	assert_int_equal(store_meta_put(s, "big", big, 4096), 0);
	assert_int_equal(store_meta_put(s, "big", big, 4097), DYN_ETOOBIG);
	memset(name, 'n', 65);
	name[65] = '\0';
	assert_int_equal(store_meta_put(s, name, "x", 1), -EINVAL);
	name[64] = '\0';
	assert_int_equal(store_meta_put(s, name, "x", 1), 0);
	assert_int_equal(store_meta_put(s, "", "x", 1), -EINVAL);

	/* Meta names are not objects. */
	struct store_stats st;
	assert_int_equal(store_stats(s, &st), 0);
	assert_int_equal(st.keys, 0);

	reopen(f);
	s = f->s;
	assert_int_equal(store_meta_get(s, "actor", b, sizeof(b), &len), 0);
	assert_int_equal(len, 3);
	assert_memory_equal(b, "abc", 3);
	uint8_t got[4096];
	assert_int_equal(store_meta_get(s, "big", got, sizeof(got), &len), 0);
	assert_int_equal(len, 4096);
	assert_memory_equal(got, big, 4096);
	assert_int_equal(store_meta_get(s, name, b, sizeof(b), &len), 0);
	assert_int_equal(len, 1);
	close_store(f);
}

/* --- a corrupt record --------------------------------------------------- */

static int
apply_count(struct vset *cur, void *arg)
{
	(void)cur;
	(*(int *)arg)++;
	return 0;
}

static int
scan_count(const struct keypos *pos, const uint8_t *key, size_t klen,
           const struct vset *set, void *arg)
{
	(void)pos;
	(void)key;
	(void)klen;
	(void)set;
	(*(int *)arg)++;
	return 0;
}

/* Write raw bytes under key's data key with LMDB itself. */
static void
poke_raw(const char *dir, const char *key, const void *val, size_t len)
{
	MDB_env *env;
	MDB_txn *txn;
	MDB_dbi dbi;
	uint8_t dk[KEYPOS_LEN + 64];
	size_t klen = strlen(key);
	MDB_val k = {KEYPOS_LEN + klen, dk}, v = {len, (void *)val};

	assert_true(klen <= 64);
	assert_int_equal(keypos_of(key, klen, (struct keypos *)dk), 0);
	memcpy(dk + KEYPOS_LEN, key, klen);
	assert_int_equal(mdb_env_create(&env), 0);
	assert_int_equal(mdb_env_set_maxdbs(env, 4), 0);
	assert_int_equal(mdb_env_open(env, dir, 0, 0600), 0);
	assert_int_equal(mdb_txn_begin(env, NULL, 0, &txn), 0);
	assert_int_equal(mdb_dbi_open(txn, "objects", 0, &dbi), 0);
	assert_int_equal(mdb_put(txn, dbi, &k, &v, 0), 0);
	assert_int_equal(mdb_txn_commit(txn), 0);
	mdb_env_close(env);
}

static void
test_corrupt_record(void **state)
{
	struct fixture *f = *state;
	struct store *s = open_store(f, false, 0, 0, 0);
	struct vset got;
	int calls = 0, seen = 0;
	struct buf rec;

	assert_int_equal(put_str(s, "good", "fine"), 0);
	store_close(f->s);
	f->s = NULL;
	poke_raw(f->dir, "bad", "\0\0\0\3badgarbage", 14);
	/* A well-formed record filed under the wrong key. */
	buf_init(&rec);
	make_set(&got);
	store_record_encode("other", 5, &got, &rec);
	vset_fini(&got);
	poke_raw(f->dir, "wrong", rec.data, rec.len);
	buf_fini(&rec);
	s = open_store(f, false, 0, 0, 0);

	assert_int_equal(store_get(s, "bad", 3, &got), DYN_EBADMSG);
	assert_int_equal(got.n, 0);
	assert_int_equal(store_get(s, "wrong", 5, &got), DYN_EBADMSG);
	assert_int_equal(store_update(s, "bad", 3, apply_count, &calls),
	                 DYN_EBADMSG);
	assert_int_equal(calls, 0);
	assert_int_equal(put_str(s, "bad", "overwrite?"), DYN_EBADMSG);
	assert_int_equal(store_get(s, "bad", 3, &got), DYN_EBADMSG);
	check_str(s, "good", "fine");
	/* A scan logs and skips both. */
	assert_int_equal(store_scan(s, NULL, NULL, scan_count, &seen), 0);
	assert_int_equal(seen, 1);
	close_store(f);
}

/* A write error from the OS at commit (EFBIG here, standing in for
 * ENOSPC or EIO) fails the batch and leaves the data as it was. */
static void
test_commit_io_error(void **state)
{
	struct fixture *f = *state;
	struct store *s = open_store(f, true, 0, 0, 0);
	uint8_t *v = malloc(BIGVAL);
	struct rlimit old, lim;
	struct stat st;
	struct vset got;
	char path[128];
	int rc;

	assert_non_null(v);
	vset_init(&got);
	assert_int_equal(put_str(s, "before", "safe"), 0);
	snprintf(path, sizeof(path), "%s/data.mdb", f->dir);
	assert_int_equal(stat(path, &st), 0);

	signal(SIGXFSZ, SIG_IGN);
	assert_int_equal(getrlimit(RLIMIT_FSIZE, &old), 0);
	lim = old;
	lim.rlim_cur = (rlim_t)st.st_size;
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &lim), 0);
	fill_value(v, 1);
	rc = put(s, "after", 5, v, BIGVAL);
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &old), 0);
	signal(SIGXFSZ, SIG_DFL);
	assert_int_equal(rc, -EFBIG);

	assert_int_equal(store_get(s, "after", 5, &got), -ENOENT);
	check_str(s, "before", "safe");
	assert_int_equal(put(s, "after", 5, v, BIGVAL), 0);
	reopen(f);
	check_str(f->s, "before", "safe");
	check_value(f->s, "after", 5, v, BIGVAL);
	free(v);
	close_store(f);
}

/* --- open and close ----------------------------------------------------- */

static void
test_open_errors(void **state)
{
	struct fixture *f = *state;
	struct store_opts o;
	struct store *s = (struct store *)&o;
	char path[128];
	FILE *fp;

	store_close(NULL);
	store_opts_default(&o);
	assert_true(o.fsync);
	assert_true(o.max_batch >= 1024);
	assert_int_equal(o.map_init, 64u << 20);

	assert_int_equal(store_open(&o, &s), -EINVAL); /* no dir */
	assert_null(s);

	/* A file where the directory should be: fails half-way, no leak. */
	snprintf(path, sizeof(path), "%s/file", f->dir);
	fp = fopen(path, "w");
	assert_non_null(fp);
	fclose(fp);
	o.dir = path;
	assert_int_not_equal(store_open(&o, &s), 0);
	assert_null(s);
	snprintf(path, sizeof(path), "%s/file/sub", f->dir);
	assert_int_equal(store_open(&o, &s), -ENOTDIR);

	/* Nested directories are created. */
	snprintf(path, sizeof(path), "%s/a/b/c/", f->dir);
	assert_int_equal(store_open(&o, &s), 0);
	assert_int_equal(put_str(s, "k", "v"), 0);
	store_close(s);
}

#define T_LEAK(fn)                                                            \
	cmocka_unit_test_setup_teardown(fn, setup_leakcheck,                  \
	                                teardown_leakcheck)
#define T_MT(fn) cmocka_unit_test_setup_teardown(fn, setup_dir, teardown_dir)

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_error_map),
	    T_LEAK(test_record_codec),
	    T_LEAK(test_put_get),
	    T_LEAK(test_persistence),
	    T_LEAK(test_delete_on_empty),
	    T_LEAK(test_long_keys),
	    T_LEAK(test_map_full),
	    T_LEAK(test_scan),
	    T_LEAK(test_scan_nested),
	    T_LEAK(test_meta),
	    T_LEAK(test_corrupt_record),
	    T_LEAK(test_commit_io_error),
	    T_LEAK(test_open_errors),
	    T_MT(test_batch_outcomes),
	    T_MT(test_group_commit),
	    T_MT(test_no_group_commit),
	    T_MT(test_map_growth),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
