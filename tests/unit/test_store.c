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
#include <stdatomic.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>

#include <cmocka.h>
#include <lmdb.h>

#include "blob.h"
#include "buf.h"
#include "err.h"
#include "keypos.h"
#include "mem.h"
#include "mono.h"
#include "store.h"
#include "testmem.h"
#include "vset.h"

#define ACTOR 7

struct fixture {
	char dir[64];
	struct store *s;
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
	mem_set_allocator(&testmem_checked);
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

/* A set of two siblings (one a tombstone) with a non-empty past: an
 * entry and an exact dot. */
static void
make_set(struct vset *s)
{
	struct vclock ctx;
	vset_init(s);
	assert_int_equal(vset_put(s, NULL, 1, 100, "hello", 5, false, NULL),
	                 0);
	vclock_init(&ctx);
	vclock_raise(&ctx, 3, 4, 50);
	vclock_add_dot(&ctx, &(struct dot){3, 6}, 60);
	assert_int_equal(ctx.nd, 1);
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
	/* The gate's and two writes: a skipped update writes nothing. */
	assert_int_equal(st1.updates - st0.updates, 3);

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
	struct store_stats st0, st;

	/* From after open: it stamps the store's format (one commit). */
	assert_int_equal(store_stats(s, &st0), 0);
	run_workers(s);
	assert_int_equal(store_stats(s, &st), 0);
	assert_int_equal(st.updates - st0.updates, NTHREADS * NUPDATES);
	assert_int_equal(st.commits - st0.commits, st.updates - st0.updates);
}

/* --- asynchronous updates ---------------------------------------------- */

#define NASYNC 200

struct async_done {
	pthread_mutex_t mu;
	int calls;
	int rc[NASYNC + 1];
	bool writer_thread[NASYNC + 1];
	pthread_t caller;
};

struct async_one {
	struct async_done *d;
	int i;
};

static void
async_done_cb(void *arg, int rc)
{
	struct async_one *o = arg;
	pthread_mutex_lock(&o->d->mu);
	o->d->rc[o->i] = rc;
	o->d->writer_thread[o->i] = !pthread_equal(pthread_self(),
	    o->d->caller);
	o->d->calls++;
	pthread_mutex_unlock(&o->d->mu);
}

/* store_update_async: queued without a wait, committed in shared batches,
 * each callback called once from the writer with the apply's result; an
 * update that cannot be queued says so and gets no callback. */
static void
test_update_async(void **state)
{
	struct fixture *f = *state;
	struct store *s = open_store(f, true, 0, 0, 0);
	struct async_done d = {.caller = pthread_self()};
	pthread_mutex_init(&d.mu, NULL);
	static struct async_one ones[NASYNC + 1];
	static struct put_arg args[NASYNC];
	static char keys[NASYNC][16];
	static int vals[NASYNC];

	for (int i = 0; i < NASYNC; i++) {
		snprintf(keys[i], sizeof(keys[i]), "a%d", i);
		vals[i] = i;
		args[i] = (struct put_arg){&vals[i], sizeof(vals[i]), 0};
		ones[i] = (struct async_one){&d, i};
		assert_int_equal(store_update_async(s, keys[i], strlen(keys[i]),
		    apply_put, &args[i], async_done_cb, &ones[i]), 0);
	}
	ones[NASYNC] = (struct async_one){&d, NASYNC};
	assert_int_equal(store_update_async(s, "a0", 2, apply_skip, NULL,
	    async_done_cb, &ones[NASYNC]), 0);

	char *huge = calloc(1, KEY_MAX_LEN + 1);
	assert_non_null(huge);
	assert_int_equal(store_update_async(s, huge, KEY_MAX_LEN + 1, apply_put,
	    &args[0], async_done_cb, &ones[0]), DYN_ETOOBIG);
	free(huge);

	uint64_t deadline = mono_ms() + 10000;
	int calls = 0;
	while (mono_ms() < deadline) {
		pthread_mutex_lock(&d.mu);
		calls = d.calls;
		pthread_mutex_unlock(&d.mu);
		if (calls >= NASYNC + 1)
			break;
		struct timespec ts = {0, 1000000};
		nanosleep(&ts, NULL);
	}
	assert_int_equal(calls, NASYNC + 1);
	for (int i = 0; i < NASYNC; i++) {
		assert_int_equal(d.rc[i], 0);
		assert_true(d.writer_thread[i]);
		assert_int_equal(args[i].calls, 1);
		check_value(s, keys[i], strlen(keys[i]), &vals[i],
		    sizeof(vals[i]));
	}
	assert_int_equal(d.rc[NASYNC], STORE_SKIP);

	/* Queued at once, they shared commits. */
	struct store_stats st;
	assert_int_equal(store_stats(s, &st), 0);
	assert_int_equal(st.updates, NASYNC);
	print_message("async: %llu updates in %llu commits\n",
	    (unsigned long long)st.updates, (unsigned long long)st.commits);
	assert_true(st.commits * 4 < st.updates);

	/* A record the skip left alone, and one sync write after them. */
	check_value(s, "a0", 2, &vals[0], sizeof(vals[0]));
	assert_int_equal(put_str(s, "after", "x"), 0);
	check_str(s, "after", "x");
	close_store(f);
	pthread_mutex_destroy(&d.mu);
}

/* --- map growth and a full map ----------------------------------------- */

#define BIGVAL (64 * 1024)

static void
fill_value(uint8_t *v, int i)
{
	for (int j = 0; j < BIGVAL; j++)
		v[j] = (uint8_t)(i * 31 + j);
}

/* store_update_async_applied: the hook runs in the writer after its
 * update was made and before the commit, exactly once even when the
 * batch is redone as the map grows; never for an update whose apply
 * failed; and the done callback still reports a commit that failed after
 * the hook (the change went out but is not stored). */
#define NAPPLIED 24

struct applied_one {
	pthread_mutex_t *mu;
	int applied;      /* hook calls */
	int applied_at_done;
	int done;         /* done calls */
	int rc;
};

static void
applied_cb(void *arg)
{
	struct applied_one *o = arg;
	pthread_mutex_lock(o->mu);
	o->applied++;
	pthread_mutex_unlock(o->mu);
}

static void
applied_done_cb(void *arg, int rc)
{
	struct applied_one *o = arg;
	pthread_mutex_lock(o->mu);
	o->applied_at_done = o->applied;
	o->done++;
	o->rc = rc;
	pthread_mutex_unlock(o->mu);
}

static void
wait_done(pthread_mutex_t *mu, struct applied_one *o, int n)
{
	uint64_t deadline = mono_ms() + 20000;
	for (;;) {
		int done = 0;
		pthread_mutex_lock(mu);
		for (int i = 0; i < n; i++)
			done += o[i].done;
		pthread_mutex_unlock(mu);
		if (done >= n || mono_ms() > deadline)
			break;
		struct timespec ts = {0, 1000000};
		nanosleep(&ts, NULL);
	}
}

static void
test_update_applied(void **state)
{
	struct fixture *f = *state;
	/* A 1 MiB map and 24 x 64 KiB: the first batches grow it. */
	struct store *s = open_store(f, false, 0, 1 << 20, 0);
	pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
	static struct applied_one o[NAPPLIED + 1];
	static struct put_arg args[NAPPLIED];
	static char keys[NAPPLIED][16];
	uint8_t *v = malloc((size_t)NAPPLIED * BIGVAL);
	assert_non_null(v);
	for (int i = 0; i < NAPPLIED; i++) {
		fill_value(v + (size_t)i * BIGVAL, i);
		snprintf(keys[i], sizeof(keys[i]), "ap%d", i);
		args[i] = (struct put_arg){v + (size_t)i * BIGVAL, BIGVAL, 0};
		o[i] = (struct applied_one){.mu = &mu};
		assert_int_equal(store_update_async_applied(s, keys[i],
		    strlen(keys[i]), apply_put, &args[i], applied_cb,
		    applied_done_cb, &o[i]), 0);
	}
	o[NAPPLIED] = (struct applied_one){.mu = &mu};
	assert_int_equal(store_update_async_applied(s, "bad", 3, apply_fail,
	    NULL, applied_cb, applied_done_cb, &o[NAPPLIED]), 0);
	wait_done(&mu, o, NAPPLIED + 1);
	int redone = 0;
	for (int i = 0; i < NAPPLIED; i++) {
		assert_int_equal(o[i].done, 1);
		assert_int_equal(o[i].rc, 0);
		assert_int_equal(o[i].applied, 1);
		assert_int_equal(o[i].applied_at_done, 1); /* before done */
		redone += args[i].calls > 1;
		check_value(s, keys[i], strlen(keys[i]), v + (size_t)i * BIGVAL,
		    BIGVAL);
	}
	assert_true(redone > 0); /* the map grew under some of them */
	assert_int_equal(o[NAPPLIED].done, 1);
	assert_int_equal(o[NAPPLIED].rc, -EPERM);
	assert_int_equal(o[NAPPLIED].applied, 0);

	/* A commit that fails (the file may not grow): the hook ran, done
	 * says the commit failed, and nothing was stored. */
	struct stat st;
	char path[128];
	snprintf(path, sizeof(path), "%s/data.mdb", f->dir);
	assert_int_equal(stat(path, &st), 0);
	struct rlimit old, lim;
	signal(SIGXFSZ, SIG_IGN);
	assert_int_equal(getrlimit(RLIMIT_FSIZE, &old), 0);
	lim = old;
	lim.rlim_cur = (rlim_t)st.st_size;
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &lim), 0);
	struct applied_one late = {.mu = &mu};
	uint8_t *big = malloc(16 * BIGVAL);
	assert_non_null(big);
	fill_value(big, 99);
	struct put_arg la = {big, 16 * BIGVAL, 0};
	assert_int_equal(store_update_async_applied(s, "late", 4, apply_put,
	    &la, applied_cb, applied_done_cb, &late), 0);
	wait_done(&mu, &late, 1);
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &old), 0);
	signal(SIGXFSZ, SIG_DFL);
	assert_int_equal(late.done, 1);
	assert_true(late.rc < 0);
	assert_int_equal(late.applied, 1);
	struct vset got;
	vset_init(&got);
	assert_int_equal(store_get(s, "late", 4, &got), -ENOENT);
	free(big);
	free(v);
	close_store(f);
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

/* --- hints --------------------------------------------------------------- */

/* A set of one blind version by actor. */
static void
one_version(struct vset *s, uint64_t actor, const char *val)
{
	vset_init(s);
	assert_int_equal(
	    vset_put(s, NULL, actor, 1000, val, strlen(val), false, NULL), 0);
}

struct hint_seen {
	char target[STORE_TARGET_MAX + 1];
	uint8_t *key; /* libc's */
	size_t klen;
	struct vset set;
};

#define HINTS_SEEN 128

struct hint_acc {
	struct hint_seen h[HINTS_SEEN];
	int n;
	int stop_after; /* 0: never */
	int overflow;
};

static int
hint_collect(const char *target, const uint8_t *key, size_t klen,
             const struct vset *set, void *arg)
{
	struct hint_acc *a = arg;
	struct hint_seen *h;

	if (a->n == HINTS_SEEN) {
		a->overflow++;
		return 0;
	}
	h = &a->h[a->n];
	snprintf(h->target, sizeof(h->target), "%s", target);
	h->key = malloc(klen ? klen : 1);
	if (!h->key)
		return -ENOMEM;
	if (klen)
		memcpy(h->key, key, klen);
	h->klen = klen;
	vset_init(&h->set);
	if (vset_copy(&h->set, set) != 0) {
		free(h->key);
		return -ENOMEM;
	}
	a->n++;
	if (a->stop_after && a->n == a->stop_after)
		return 42;
	return 0;
}

static void
hint_acc_fini(struct hint_acc *a)
{
	for (int i = 0; i < a->n; i++) {
		free(a->h[i].key);
		vset_fini(&a->h[i].set);
	}
	a->n = 0;
}

static int
hint_scan(struct store *s, const char *target, struct hint_acc *a)
{
	memset(a, 0, sizeof(*a));
	return store_hint_scan(s, target, hint_collect, a);
}

/* The hint of (target, key) in a, or NULL. */
static const struct hint_seen *
hint_find(const struct hint_acc *a, const char *target, const void *key,
          size_t klen)
{
	for (int i = 0; i < a->n; i++)
		if (strcmp(a->h[i].target, target) == 0 &&
		    a->h[i].klen == klen &&
		    (klen == 0 || memcmp(a->h[i].key, key, klen) == 0))
			return &a->h[i];
	return NULL;
}

struct count_acc {
	char target[8][STORE_TARGET_MAX + 1];
	uint64_t count[8];
	int n;
};

static int
count_cb(const char *target, uint64_t count, void *arg)
{
	struct count_acc *a = arg;
	if (a->n == 8)
		return -ENOSPC;
	snprintf(a->target[a->n], sizeof(a->target[0]), "%s", target);
	a->count[a->n++] = count;
	return 0;
}

/* count of target in a; -1 when it is not there. */
static int64_t
count_of(const struct count_acc *a, const char *target)
{
	for (int i = 0; i < a->n; i++)
		if (strcmp(a->target[i], target) == 0)
			return (int64_t)a->count[i];
	return -1;
}

static void
test_hint_add_scan_remove(void **state)
{
	struct fixture *f = *state;
	struct store *s = open_store(f, true, 0, 0, 0);
	struct store_stats st;
	struct hint_acc a;
	struct vset v1, got;
	char tlong[STORE_TARGET_MAX + 2];

	one_version(&v1, 11, "hinted");
	vset_init(&got);
	assert_int_equal(hint_scan(s, NULL, &a), 0);
	assert_int_equal(a.n, 0);

	assert_int_equal(store_hint_add(s, "n2", "k1", 2, &v1), 0);
	assert_int_equal(store_hint_add(s, "n2", "", 0, &v1), 0);
	/* A hint is not an object. */
	assert_int_equal(store_get(s, "k1", 2, &got), -ENOENT);
	assert_int_equal(store_stats(s, &st), 0);
	assert_int_equal(st.hints, 2);
	assert_int_equal(st.keys, 0);

	assert_int_equal(hint_scan(s, NULL, &a), 0);
	assert_int_equal(a.n, 2);
	const struct hint_seen *h = hint_find(&a, "n2", "k1", 2);
	assert_non_null(h);
	assert_int_equal(h->set.n, 1);
	assert_true(vset_contains(&h->set, &v1));
	assert_true(vset_contains(&v1, &h->set));
	assert_memory_equal(h->set.v[0].value, "hinted", 6);
	assert_non_null(hint_find(&a, "n2", "", 0));
	hint_acc_fini(&a);

	/* Delivered: removed; removing again (absent) is fine too. */
	assert_int_equal(store_hint_remove(s, "n2", "k1", 2, &v1), 0);
	assert_int_equal(store_hint_remove(s, "n2", "k1", 2, &v1), 0);
	assert_int_equal(store_hint_remove(s, "n3", "k1", 2, &v1), 0);
	assert_int_equal(hint_scan(s, NULL, &a), 0);
	assert_int_equal(a.n, 1);
	assert_int_equal(a.h[0].klen, 0);
	hint_acc_fini(&a);
	assert_int_equal(store_hint_remove(s, "n2", "", 0, &v1), 0);
	assert_int_equal(store_stats(s, &st), 0);
	assert_int_equal(st.hints, 0);

	/* Bad targets and keys are refused before anything is queued. */
	memset(tlong, 't', sizeof(tlong) - 1);
	tlong[sizeof(tlong) - 1] = '\0';
	assert_int_equal(store_hint_add(s, tlong, "k", 1, &v1), -EINVAL);
	assert_int_equal(store_hint_add(s, "", "k", 1, &v1), -EINVAL);
	assert_int_equal(store_hint_remove(s, "", "k", 1, &v1), -EINVAL);
	assert_int_equal(store_hint_scan(s, tlong, hint_collect, &a), -EINVAL);
	tlong[STORE_TARGET_MAX] = '\0'; /* the longest name is fine */
	assert_int_equal(store_hint_add(s, tlong, "k", 1, &v1), 0);
	assert_int_equal(hint_scan(s, tlong, &a), 0);
	assert_int_equal(a.n, 1);
	assert_string_equal(a.h[0].target, tlong);
	hint_acc_fini(&a);
	char *huge = calloc(1, KEY_MAX_LEN + 1);
	assert_non_null(huge);
	assert_int_equal(store_hint_add(s, "n2", huge, KEY_MAX_LEN + 1, &v1),
	                 DYN_ETOOBIG);
	free(huge);

	/* An empty set adds nothing and writes nothing. */
	vset_fini(&got);
	assert_int_equal(store_hint_add(s, "n2", "k9", 2, &got), 0);
	assert_int_equal(store_stats(s, &st), 0);
	assert_int_equal(st.hints, 1);

	/* A non-zero return stops the scan and is returned. */
	assert_int_equal(store_hint_add(s, "n2", "k2", 2, &v1), 0);
	memset(&a, 0, sizeof(a));
	a.stop_after = 1;
	assert_int_equal(store_hint_scan(s, NULL, hint_collect, &a), 42);
	assert_int_equal(a.n, 1);
	hint_acc_fini(&a);
	vset_fini(&v1);
	close_store(f);
}

static void
test_hint_targets(void **state)
{
	struct fixture *f = *state;
	struct store *s = open_store(f, false, 0, 0, 0);
	/* "n1" is a prefix of "n10": the length byte keeps them apart. */
	static const char *const targets[] = {"n1", "n10", "alpha", "b"};
	static const int nkeys[] = {5, 3, 7, 1};
	struct count_acc c;
	struct store_stats st;
	struct hint_acc a;
	struct vset v;
	char key[32];
	int total = 0;

	for (int t = 0; t < 4; t++) {
		for (int i = 0; i < nkeys[t]; i++) {
			snprintf(key, sizeof(key), "key-%d", i);
			one_version(&v, 100 + (uint64_t)t, targets[t]);
			assert_int_equal(store_hint_add(s, targets[t], key,
			                                strlen(key), &v),
			                 0);
			vset_fini(&v);
			total++;
		}
	}
	assert_int_equal(store_stats(s, &st), 0);
	assert_int_equal(st.hints, total);

	/* One target: its hints only, with its values, in position order. */
	for (int t = 0; t < 4; t++) {
		assert_int_equal(hint_scan(s, targets[t], &a), 0);
		assert_int_equal(a.n, nkeys[t]);
		for (int i = 0; i < a.n; i++) {
			struct keypos p0, p1;
			assert_string_equal(a.h[i].target, targets[t]);
			assert_int_equal(a.h[i].set.n, 1);
			assert_int_equal(a.h[i].set.v[0].len,
			                 strlen(targets[t]));
			assert_memory_equal(a.h[i].set.v[0].value, targets[t],
			                    strlen(targets[t]));
			if (i == 0)
				continue;
			keypos_of(a.h[i - 1].key, a.h[i - 1].klen, &p0);
			keypos_of(a.h[i].key, a.h[i].klen, &p1);
			assert_true(memcmp(p0.b, p1.b, KEYPOS_LEN) < 0);
		}
		hint_acc_fini(&a);
	}
	assert_int_equal(hint_scan(s, "n", &a), 0);
	assert_int_equal(a.n, 0);
	assert_int_equal(hint_scan(s, "n100", &a), 0);
	assert_int_equal(a.n, 0);

	/* All targets: each target's hints are contiguous. */
	assert_int_equal(hint_scan(s, NULL, &a), 0);
	assert_int_equal(a.n, total);
	int runs = 1;
	for (int i = 1; i < a.n; i++)
		runs += strcmp(a.h[i].target, a.h[i - 1].target) != 0;
	assert_int_equal(runs, 4);
	hint_acc_fini(&a);

	/* Counts, per target. */
	memset(&c, 0, sizeof(c));
	assert_int_equal(store_hint_counts(s, count_cb, &c), 0);
	assert_int_equal(c.n, 4);
	for (int t = 0; t < 4; t++)
		assert_int_equal(count_of(&c, targets[t]), nkeys[t]);

	/* Removing one target's hints leaves the others. */
	for (int i = 0; i < nkeys[0]; i++) {
		snprintf(key, sizeof(key), "key-%d", i);
		one_version(&v, 100, targets[0]);
		assert_int_equal(
		    store_hint_remove(s, "n1", key, strlen(key), &v), 0);
		vset_fini(&v);
	}
	memset(&c, 0, sizeof(c));
	assert_int_equal(store_hint_counts(s, count_cb, &c), 0);
	assert_int_equal(c.n, 3);
	assert_int_equal(count_of(&c, "n1"), -1);
	assert_int_equal(count_of(&c, "n10"), 3);
	assert_int_equal(hint_scan(s, "n10", &a), 0);
	assert_int_equal(a.n, 3);
	hint_acc_fini(&a);

	/* Nothing at all: no calls. */
	for (int t = 1; t < 4; t++) {
		for (int i = 0; i < nkeys[t]; i++) {
			snprintf(key, sizeof(key), "key-%d", i);
			one_version(&v, 100 + (uint64_t)t, targets[t]);
			assert_int_equal(store_hint_remove(s, targets[t], key,
			                                   strlen(key), &v),
			                 0);
			vset_fini(&v);
		}
	}
	memset(&c, 0, sizeof(c));
	assert_int_equal(store_hint_counts(s, count_cb, &c), 0);
	assert_int_equal(c.n, 0);
	close_store(f);
}

static void
test_hint_merge(void **state)
{
	struct fixture *f = *state;
	struct store *s = open_store(f, false, 0, 0, 0);
	struct store_stats st0, st1;
	struct vset a1, b1, newer;
	struct vclock ctx;
	struct hint_acc a;

	/* Two blind writes by different coordinators: siblings. */
	one_version(&a1, 1, "from-1");
	one_version(&b1, 2, "from-2");
	assert_int_equal(store_hint_add(s, "n2", "doc", 3, &a1), 0);
	assert_int_equal(store_hint_add(s, "n2", "doc", 3, &b1), 0);
	assert_int_equal(hint_scan(s, "n2", &a), 0);
	assert_int_equal(a.n, 1);
	assert_int_equal(a.h[0].set.n, 2);
	assert_true(vset_contains(&a.h[0].set, &a1));
	assert_true(vset_contains(&a.h[0].set, &b1));
	hint_acc_fini(&a);

	/* Adding what is there already writes nothing. */
	assert_int_equal(store_stats(s, &st0), 0);
	assert_int_equal(store_hint_add(s, "n2", "doc", 3, &a1), 0);
	assert_int_equal(store_stats(s, &st1), 0);
	assert_int_equal(st1.hints, 1);

	/* A write that saw from-1 replaces it; from-2 stays. */
	vset_init(&newer);
	vset_context(&a1, &ctx);
	assert_int_equal(
	    vset_put(&newer, &ctx, 1, 2000, "newer", 5, false, NULL), 0);
	assert_int_equal(store_hint_add(s, "n2", "doc", 3, &newer), 0);
	assert_int_equal(hint_scan(s, "n2", &a), 0);
	assert_int_equal(a.h[0].set.n, 2);
	assert_true(vset_contains(&a.h[0].set, &newer));
	assert_true(vset_contains(&a.h[0].set, &b1));
	for (uint32_t i = 0; i < a.h[0].set.n; i++)
		assert_true(a.h[0].set.v[i].len != 6 ||
		            memcmp(a.h[0].set.v[i].value, "from-1", 6) != 0);
	hint_acc_fini(&a);
	vset_fini(&a1);
	vset_fini(&b1);
	vset_fini(&newer);
	close_store(f);
}

/* A hint that grew after it was read for delivery must stay. */
static void
test_hint_remove_grown(void **state)
{
	struct fixture *f = *state;
	struct store *s = open_store(f, false, 0, 0, 0);
	struct vset v1, v2, got;
	struct hint_acc a;

	one_version(&v1, 1, "first");
	one_version(&v2, 2, "second");
	assert_int_equal(store_hint_add(s, "n2", "k", 1, &v1), 0);
	assert_int_equal(hint_scan(s, "n2", &a), 0);
	assert_int_equal(a.n, 1);
	vset_init(&got);
	assert_int_equal(vset_copy(&got, &a.h[0].set), 0); /* "delivered" */
	hint_acc_fini(&a);

	/* Meanwhile another write lands in the hint. */
	assert_int_equal(store_hint_add(s, "n2", "k", 1, &v2), 0);
	assert_int_equal(store_hint_remove(s, "n2", "k", 1, &got), STORE_KEPT);
	assert_int_equal(hint_scan(s, "n2", &a), 0);
	assert_int_equal(a.n, 1);
	assert_int_equal(a.h[0].set.n, 2);
	hint_acc_fini(&a);

	/* Delivering more than the hint holds is fine. */
	assert_int_equal(vset_merge(&got, &v2), 1);
	struct vset v3;
	one_version(&v3, 3, "third");
	assert_int_equal(vset_merge(&got, &v3), 1);
	assert_int_equal(store_hint_remove(s, "n2", "k", 1, &got), 0);
	assert_int_equal(hint_scan(s, NULL, &a), 0);
	assert_int_equal(a.n, 0);
	vset_fini(&v1);
	vset_fini(&v2);
	vset_fini(&v3);
	vset_fini(&got);
	close_store(f);
}

static void
test_hint_persistence(void **state)
{
	struct fixture *f = *state;
	struct store *s = open_store(f, true, 0, 0, 0);
	struct store_stats st;
	struct count_acc c;
	struct hint_acc a;
	struct vset v;
	char key[32];

	for (int i = 0; i < 50; i++) {
		snprintf(key, sizeof(key), "p-%d", i);
		one_version(&v, 5, key);
		assert_int_equal(store_hint_add(s, i % 2 ? "odd" : "even", key,
		                                strlen(key), &v),
		                 0);
		vset_fini(&v);
	}
	assert_int_equal(put_str(s, "object", "too"), 0);
	reopen(f);
	s = f->s;
	assert_int_equal(store_stats(s, &st), 0);
	assert_int_equal(st.hints, 50);
	assert_int_equal(st.keys, 1);
	assert_int_equal(hint_scan(s, "odd", &a), 0);
	assert_int_equal(a.n, 25);
	for (int i = 0; i < 50; i++) {
		snprintf(key, sizeof(key), "p-%d", i);
		const struct hint_seen *h =
		    hint_find(&a, "odd", key, strlen(key));
		assert_true(i % 2 ? h != NULL : h == NULL);
		if (h) {
			assert_int_equal(h->set.n, 1);
			assert_int_equal(h->set.v[0].len, strlen(key));
			assert_memory_equal(h->set.v[0].value, key,
			                    strlen(key));
		}
	}
	hint_acc_fini(&a);
	memset(&c, 0, sizeof(c));
	assert_int_equal(store_hint_counts(s, count_cb, &c), 0);
	assert_int_equal(c.n, 2);
	assert_int_equal(count_of(&c, "odd"), 25);
	assert_int_equal(count_of(&c, "even"), 25);
	check_str(s, "object", "too");

	/* A removal is durable too. */
	one_version(&v, 5, "p-0");
	assert_int_equal(store_hint_remove(s, "even", "p-0", 3, &v), 0);
	vset_fini(&v);
	reopen(f);
	assert_int_equal(store_stats(f->s, &st), 0);
	assert_int_equal(st.hints, 49);
	close_store(f);
}

static void
test_hint_long_keys(void **state)
{
	struct fixture *f = *state;
	struct store *s = open_store(f, false, 0, 0, 0);
	/* The longest key kept whole and the shortest one hashed, for a
	 * 63-byte target (431, 432) and a 1-byte one (493, 494); and longer.
	 */
	static const size_t lens[] = {431, 432, 493, 494, 1000, 65536};
	const size_t nlens = sizeof(lens) / sizeof(lens[0]);
	char tmax[STORE_TARGET_MAX + 1];
	const char *targets[2] = {"x", tmax};
	struct store_stats st;
	struct hint_acc a;
	struct vset v;
	char *k, *k2;

	memset(tmax, 'T', STORE_TARGET_MAX);
	tmax[STORE_TARGET_MAX] = '\0';
	k = malloc(KEY_MAX_LEN);
	k2 = malloc(KEY_MAX_LEN);
	assert_non_null(k);
	assert_non_null(k2);
	one_version(&v, 9, "long");
	for (int t = 0; t < 2; t++) {
		for (size_t i = 0; i < nlens; i++) {
			memset(k, 'a' + (int)i, lens[i]);
			assert_int_equal(
			    store_hint_add(s, targets[t], k, lens[i], &v), 0);
		}
	}
	/* Two long keys equal in their first 999 bytes. */
	memset(k, 'z', 1000);
	memcpy(k2, k, 1000);
	k2[999] = 'y';
	assert_int_equal(store_hint_add(s, "x", k, 1000, &v), 0);
	assert_int_equal(store_hint_add(s, "x", k2, 1000, &v), 0);

	reopen(f);
	s = f->s;
	assert_int_equal(store_stats(s, &st), 0);
	assert_int_equal(st.hints, 2 * nlens + 2);
	for (int t = 0; t < 2; t++) {
		assert_int_equal(hint_scan(s, targets[t], &a), 0);
		assert_int_equal(a.n, (int)nlens + (t == 0 ? 2 : 0));
		for (size_t i = 0; i < nlens; i++) {
			memset(k, 'a' + (int)i, lens[i]);
			assert_non_null(hint_find(&a, targets[t], k, lens[i]));
		}
		hint_acc_fini(&a);
	}
	assert_int_equal(hint_scan(s, "x", &a), 0);
	memset(k, 'z', 1000);
	assert_non_null(hint_find(&a, "x", k, 1000));
	assert_non_null(hint_find(&a, "x", k2, 1000));
	hint_acc_fini(&a);

	/* Removal finds them again. */
	for (int t = 0; t < 2; t++) {
		for (size_t i = 0; i < nlens; i++) {
			memset(k, 'a' + (int)i, lens[i]);
			assert_int_equal(
			    store_hint_remove(s, targets[t], k, lens[i], &v),
			    0);
		}
	}
	assert_int_equal(store_hint_remove(s, "x", k2, 1000, &v), 0);
	assert_int_equal(hint_scan(s, NULL, &a), 0);
	assert_int_equal(a.n, 1);
	memset(k, 'z', 1000);
	assert_non_null(hint_find(&a, "x", k, 1000));
	hint_acc_fini(&a);
	vset_fini(&v);
	free(k);
	free(k2);
	close_store(f);
}

/* Write raw bytes into hints under the data key dk, with LMDB itself. */
static void
poke_hint_dkey(const char *dir, const void *dk, size_t dklen, const void *val,
               size_t len)
{
	MDB_env *env;
	MDB_txn *txn;
	MDB_dbi dbi;
	MDB_val k = {dklen, (void *)dk}, v = {len, (void *)val};

	assert_int_equal(mdb_env_create(&env), 0);
	assert_int_equal(mdb_env_set_maxdbs(env, 4), 0);
	assert_int_equal(mdb_env_open(env, dir, 0, 0600), 0);
	assert_int_equal(mdb_txn_begin(env, NULL, 0, &txn), 0);
	assert_int_equal(mdb_dbi_open(txn, "hints", 0, &dbi), 0);
	assert_int_equal(mdb_put(txn, dbi, &k, &v, 0), 0);
	assert_int_equal(mdb_txn_commit(txn), 0);
	mdb_env_close(env);
}

/* ... under u8 length || target || position(key) || key. */
static void
poke_hint_raw(const char *dir, const char *target, const char *key,
              const void *val, size_t len)
{
	uint8_t dk[1 + 64 + KEYPOS_LEN + 64];
	size_t tlen = strlen(target), klen = strlen(key);

	assert_true(tlen <= 64 && klen <= 64);
	dk[0] = (uint8_t)tlen;
	memcpy(dk + 1, target, tlen);
	assert_int_equal(
	    keypos_of(key, klen, (struct keypos *)(dk + 1 + tlen)), 0);
	memcpy(dk + 1 + tlen + KEYPOS_LEN, key, klen);
	poke_hint_dkey(dir, dk, 1 + tlen + KEYPOS_LEN + klen, val, len);
}

static void
test_hint_corrupt(void **state)
{
	struct fixture *f = *state;
	struct store *s = open_store(f, false, 0, 0, 0);
	struct store_stats st;
	struct count_acc c;
	struct hint_acc a;
	struct vset v;
	struct buf rec;
	uint8_t dk[64];

	one_version(&v, 4, "ok");
	assert_int_equal(store_hint_add(s, "n2", "good", 4, &v), 0);
	close_store(f);
	poke_hint_raw(f->dir, "n2", "bad", "\0\0\0\3badgarbage", 14);
	/* A well-formed record filed under another key. */
	buf_init(&rec);
	store_record_encode("other", 5, &v, &rec);
	poke_hint_raw(f->dir, "n2", "wrong", rec.data, rec.len);
	/* Right target and key, wrong position. */
	buf_reset(&rec);
	store_record_encode("good", 4, &v, &rec);
	memset(dk, 0, sizeof(dk));
	memcpy(dk, "\2n3", 3);
	memcpy(dk + 3 + KEYPOS_LEN, "good", 4);
	poke_hint_dkey(f->dir, dk, 3 + KEYPOS_LEN + 4, rec.data, rec.len);
	/* Headers that do not parse: a target over the cap, a key too short
	 * for its header, a NUL in the target. */
	memset(dk, 'h', sizeof(dk));
	dk[0] = STORE_TARGET_MAX + 1;
	poke_hint_dkey(f->dir, dk, sizeof(dk), rec.data, rec.len);
	dk[0] = 5;
	poke_hint_dkey(f->dir, dk, 1 + 5 + KEYPOS_LEN - 1, rec.data, rec.len);
	dk[2] = '\0';
	poke_hint_dkey(f->dir, dk, sizeof(dk), rec.data, rec.len);
	buf_fini(&rec);
	s = open_store(f, false, 0, 0, 0);

	/* Scans skip them all, and go on past them. */
	assert_int_equal(hint_scan(s, NULL, &a), 0);
	assert_int_equal(a.n, 1);
	assert_non_null(hint_find(&a, "n2", "good", 4));
	hint_acc_fini(&a);
	assert_int_equal(hint_scan(s, "n2", &a), 0);
	assert_int_equal(a.n, 1);
	hint_acc_fini(&a);
	assert_int_equal(hint_scan(s, "n3", &a), 0);
	assert_int_equal(a.n, 0);
	/* The backlog counts every record under a readable target. */
	assert_int_equal(store_stats(s, &st), 0);
	assert_int_equal(st.hints, 7);
	memset(&c, 0, sizeof(c));
	assert_int_equal(store_hint_counts(s, count_cb, &c), 0);
	assert_int_equal(c.n, 2);
	assert_int_equal(count_of(&c, "n2"), 3);
	assert_int_equal(count_of(&c, "n3"), 1);
	/* An undecodable hint is left as it is. */
	assert_int_equal(store_hint_add(s, "n2", "bad", 3, &v), DYN_EBADMSG);
	assert_int_equal(store_hint_remove(s, "n2", "bad", 3, &v),
	                 DYN_EBADMSG);
	assert_int_equal(store_stats(s, &st), 0);
	assert_int_equal(st.hints, 7);
	vset_fini(&v);
	close_store(f);
}

/* Hint writes from a scan callback would wait on the writer, which may be
 * waiting for this very scan: refused. */
static int
hint_nested_cb(const char *target, const uint8_t *key, size_t klen,
               const struct vset *set, void *arg)
{
	struct store *s = arg;
	struct vset got;
	int rc;
	vset_init(&got);
	rc = store_get(s, key, klen, &got);
	vset_fini(&got);
	if (rc != -ENOENT)
		return -1;
	if (store_hint_remove(s, target, key, klen, set) != -EDEADLK ||
	    store_hint_add(s, target, key, klen, set) != -EDEADLK ||
	    store_delete_if(s, key, klen, set) != -EDEADLK)
		return -1;
	return 0;
}

static void
test_hint_nested(void **state)
{
	struct fixture *f = *state;
	struct store *s = open_store(f, false, 0, 0, 0);
	struct store_stats st;
	struct vset v;

	one_version(&v, 4, "x");
	assert_int_equal(store_hint_add(s, "n2", "k", 1, &v), 0);
	assert_int_equal(store_hint_scan(s, NULL, hint_nested_cb, s), 0);
	assert_int_equal(store_stats(s, &st), 0);
	assert_int_equal(st.hints, 1);
	vset_fini(&v);
	close_store(f);
}

/* --- many threads adding hints ------------------------------------------ */

#define HINT_THREADS 16
#define HINT_ADDS    200
#define HINT_PAIRS   100 /* 4 targets x 25 keys */

struct hinter {
	struct store *s;
	int id;
	int errors;
	pthread_t t;
};

static void
hint_pair(int i, char *target, char *key)
{
	snprintf(target, 16, "node-%d", i % 4);
	snprintf(key, 16, "hk-%d", i % 25);
}

/* Thread id writes version (actor id+1, counter i+1), which has seen its
 * own earlier ones: the second visit of a pair replaces the first. */
static void *
hinter_main(void *p)
{
	struct hinter *h = p;
	uint64_t actor = (uint64_t)h->id + 1;
	char target[16], key[16];

	for (int i = 0; i < HINT_ADDS; i++) {
		struct vclock ctx;
		struct vset v;
		hint_pair(i, target, key);
		vclock_init(&ctx);
		if (i)
			vclock_raise(&ctx, actor, (uint64_t)i, 1);
		vset_init(&v);
		if (vset_put(&v, &ctx, actor, 1000, key, strlen(key), false,
		             NULL) != 0 ||
		    store_hint_add(h->s, target, key, strlen(key), &v) != 0)
			h->errors++;
		vset_fini(&v);
	}
	return NULL;
}

static void
test_hint_concurrent(void **state)
{
	struct fixture *f = *state;
	struct store *s = open_store(f, true, 0, 0, 0);
	struct hinter h[HINT_THREADS];
	struct store_stats st;
	struct count_acc c;
	struct hint_acc *a = calloc(1, sizeof(*a));
	char target[16], key[16];

	assert_non_null(a);
	for (int i = 0; i < HINT_THREADS; i++) {
		h[i] = (struct hinter){s, i, 0, 0};
		assert_int_equal(
		    pthread_create(&h[i].t, NULL, hinter_main, &h[i]), 0);
	}
	for (int i = 0; i < HINT_THREADS; i++) {
		pthread_join(h[i].t, NULL);
		assert_int_equal(h[i].errors, 0);
	}
	assert_int_equal(store_stats(s, &st), 0);
	assert_int_equal(st.hints, HINT_PAIRS);
	print_message("hints: %llu adds in %llu commits\n",
	              (unsigned long long)st.updates,
	              (unsigned long long)st.commits);
	assert_int_equal(st.updates, HINT_THREADS * HINT_ADDS);
	assert_true(st.commits * 4 < st.updates);

	memset(&c, 0, sizeof(c));
	assert_int_equal(store_hint_counts(s, count_cb, &c), 0);
	assert_int_equal(c.n, 4);
	for (int t = 0; t < 4; t++) {
		snprintf(target, sizeof(target), "node-%d", t);
		assert_int_equal(count_of(&c, target), 25);
	}
	assert_int_equal(store_hint_scan(s, NULL, hint_collect, a), 0);
	assert_int_equal(a->n, HINT_PAIRS);
	for (int i = 0; i < HINT_PAIRS; i++) {
		hint_pair(i, target, key);
		const struct hint_seen *hs =
		    hint_find(a, target, key, strlen(key));
		assert_non_null(hs);
		/* One version per thread: its last write of the pair. */
		assert_int_equal(hs->set.n, HINT_THREADS);
		for (uint32_t j = 0; j < hs->set.n; j++)
			assert_int_equal(hs->set.v[j].dot.counter,
			                 i + HINT_PAIRS + 1);
	}
	hint_acc_fini(a);
	free(a);
}

/* --- conditional delete -------------------------------------------------- */

static int
apply_tombstone(struct vset *cur, void *arg)
{
	(void)arg;
	return vset_put(cur, NULL, ACTOR, 5, NULL, 0, true, NULL);
}

static void
test_delete_if(void **state)
{
	struct fixture *f = *state;
	struct store *s = open_store(f, false, 0, 0, 0);
	struct vset cur, more, less, got;
	struct store_stats st;

	vset_init(&got);
	/* Absent: nothing to do. */
	make_set(&cur);
	assert_int_equal(store_delete_if(s, "gone", 4, &cur), 0);

	/* A tombstone that got a sibling since it was read stays. */
	assert_int_equal(store_update(s, "t", 1, apply_tombstone, NULL), 0);
	assert_int_equal(store_get(s, "t", 1, &got), 0);
	assert_int_equal(got.n, 1);
	assert_true(got.v[0].tombstone);
	vset_init(&less);
	assert_int_equal(vset_copy(&less, &got), 0);
	assert_int_equal(store_update(s, "t", 1, apply_blind, NULL), 0);
	assert_int_equal(store_delete_if(s, "t", 1, &less), STORE_KEPT);
	assert_int_equal(store_get(s, "t", 1, &got), 0);
	assert_int_equal(got.n, 2);

	/* Expected holds a version the record lacks: it may still be on
	 * its way here, so the record stays. */
	vset_init(&more);
	assert_int_equal(vset_copy(&more, &got), 0);
	assert_int_equal(vset_put(&more, NULL, 99, 5, "extra", 5, false, NULL),
	                 0);
	assert_int_equal(store_delete_if(s, "t", 1, &more), STORE_KEPT);
	assert_int_equal(store_stats(s, &st), 0);
	assert_int_equal(st.keys, 1);

	/* Exactly what is there: deleted. */
	assert_int_equal(store_delete_if(s, "t", 1, &got), 0);
	assert_int_equal(store_get(s, "t", 1, &got), -ENOENT);
	assert_int_equal(store_stats(s, &st), 0);
	assert_int_equal(st.keys, 0);
	assert_int_equal(st.hints, 0);

	/* A hint under the same key is another record. */
	assert_int_equal(store_hint_add(s, "n2", "h", 1, &cur), 0);
	assert_int_equal(store_update(s, "h", 1, apply_blind, NULL), 0);
	assert_int_equal(store_get(s, "h", 1, &got), 0);
	assert_int_equal(store_delete_if(s, "h", 1, &got), 0);
	assert_int_equal(store_stats(s, &st), 0);
	assert_int_equal(st.hints, 1);
	assert_int_equal(store_delete_if(s, "h", 1, &cur), 0); /* absent */

	/* Keys over the cap are refused. */
	char *huge = calloc(1, KEY_MAX_LEN + 1);
	assert_non_null(huge);
	assert_int_equal(store_delete_if(s, huge, KEY_MAX_LEN + 1, &cur),
	                 DYN_ETOOBIG);
	free(huge);
	vset_fini(&cur);
	vset_fini(&more);
	vset_fini(&less);
	vset_fini(&got);
	close_store(f);
}

/* --- blob garbage collection: condemn marks ----------------------------- */

static void
blob_key_of(uint8_t kind, uint8_t fill, uint8_t key[BLOB_KEY_LEN])
{
	uint8_t name[BLOB_NAME_LEN];
	memset(name, fill, sizeof(name));
	blob_key(kind, name, key);
}

static int
gc_one(struct store *s, enum store_gc_kind kind, const uint8_t *key,
       uint64_t at)
{
	struct store_gc_op op = {kind, key, BLOB_KEY_LEN, at, 0};
	int rc = store_gc_apply(s, &op, 1);
	return rc ? rc : op.rc;
}

static uint64_t
mark_of(struct store *s, const uint8_t *key)
{
	struct store_mark m;
	int rc = store_gc_mark_get(s, key, BLOB_KEY_LEN, &m);
	if (rc == -ENOENT)
		return 0;
	assert_int_equal(rc, 0);
	assert_true(m.bytes > 0);
	return m.condemned_at;
}

struct blob_seen {
	int n;
	uint8_t key[4][BLOB_KEY_LEN];
	uint64_t at[4], bytes[4];
};

static int
blob_count(const uint8_t *key, size_t klen, uint64_t bytes,
           const struct store_mark *mark, void *arg)
{
	struct blob_seen *b = arg;
	assert_int_equal(klen, BLOB_KEY_LEN);
	assert_true(b->n < 4);
	memcpy(b->key[b->n], key, klen);
	b->at[b->n] = mark ? mark->condemned_at : 0;
	b->bytes[b->n++] = bytes;
	return 0;
}

static void
test_gc_marks(void **state)
{
	struct fixture *f = *state;
	struct store *s = open_store(f, false, 0, 0, 0);
	uint8_t k[BLOB_KEY_LEN], r[BLOB_KEY_LEN], none[BLOB_KEY_LEN];
	struct store_stats st;
	struct vset got;

	vset_init(&got);
	blob_key_of(BLOB_DATA, 0x11, k);
	blob_key_of(BLOB_REFS, 0x22, r);
	blob_key_of(BLOB_DATA, 0x33, none);
	assert_int_equal(store_update(s, k, sizeof(k), apply_blind, NULL), 0);
	assert_int_equal(store_update(s, r, sizeof(r), apply_blind, NULL), 0);
	assert_int_equal(put_str(s, "plain", "v"), 0);

	/* Marking: once (the older mark stands), never for a blob that is
	 * not stored, never for another key. */
	assert_int_equal(gc_one(s, STORE_GC_MARK, k, 1000), 0);
	assert_int_equal(mark_of(s, k), 1000);
	assert_int_equal(gc_one(s, STORE_GC_MARK, k, 2000), STORE_KEPT);
	assert_int_equal(mark_of(s, k), 1000);
	assert_int_equal(gc_one(s, STORE_GC_MARK, none, 1000), STORE_SKIP);
	assert_int_equal(mark_of(s, none), 0);
	struct store_gc_op bad = {STORE_GC_MARK, "plain", 5, 1, 0};
	assert_int_equal(store_gc_apply(s, &bad, 1), 0);
	assert_int_equal(bad.rc, -EINVAL);
	struct store_mark m;
	assert_int_equal(store_gc_mark_get(s, "plain", 5, &m), -ENOENT);

	/* The blob scan sees both blobs (not the plain key) and the mark. */
	struct blob_seen b = {0};
	assert_int_equal(store_blob_scan(s, NULL, blob_count, &b), 0);
	assert_int_equal(b.n, 2);
	for (int i = 0; i < 2; i++) {
		bool is_k = memcmp(b.key[i], k, sizeof(k)) == 0;
		assert_true(is_k || memcmp(b.key[i], r, sizeof(r)) == 0);
		assert_int_equal(b.at[i], is_k ? 1000 : 0);
		assert_true(b.bytes[i] > BLOB_KEY_LEN);
	}
	/* Resumed after the first: the second only; after the last (or a
	 * blob that is not stored, between them): what follows. */
	struct blob_seen b2 = {0};
	assert_int_equal(store_blob_scan(s, b.key[0], blob_count, &b2), 0);
	assert_int_equal(b2.n, 1);
	assert_memory_equal(b2.key[0], b.key[1], BLOB_KEY_LEN);
	memset(&b2, 0, sizeof(b2));
	assert_int_equal(store_blob_scan(s, b.key[1], blob_count, &b2), 0);
	assert_int_equal(b2.n, 0);
	uint8_t plain[BLOB_KEY_LEN] = {'p'};
	assert_int_equal(store_blob_scan(s, plain, blob_count, &b2), -EINVAL);

	/* Marks survive a reopen. */
	reopen(f);
	s = f->s;
	assert_int_equal(mark_of(s, k), 1000);
	assert_int_equal(mark_of(s, r), 0);

	/* Unmark: gone, and again is fine. */
	assert_int_equal(gc_one(s, STORE_GC_MARK, r, 1500), 0);
	assert_int_equal(gc_one(s, STORE_GC_UNMARK, r, 0), 0);
	assert_int_equal(mark_of(s, r), 0);
	assert_int_equal(gc_one(s, STORE_GC_UNMARK, r, 0), 0);
	assert_int_equal(gc_one(s, STORE_GC_DELETE, r, 0), STORE_KEPT);
	assert_int_equal(store_get(s, r, sizeof(r), &got), 0);

	/* Delete: only with the mark's own time; record and mark go. */
	assert_int_equal(gc_one(s, STORE_GC_DELETE, k, 999), STORE_KEPT);
	assert_int_equal(store_get(s, k, sizeof(k), &got), 0);
	assert_int_equal(gc_one(s, STORE_GC_DELETE, k, 1000), 0);
	assert_int_equal(store_get(s, k, sizeof(k), &got), -ENOENT);
	assert_int_equal(mark_of(s, k), 0);
	assert_int_equal(gc_one(s, STORE_GC_DELETE, k, 1000), STORE_KEPT);
	assert_int_equal(store_stats(s, &st), 0);
	assert_int_equal(st.keys, 2);
	vset_fini(&got);
	close_store(f);
}

static void
test_gc_touch(void **state)
{
	struct fixture *f = *state;
	struct store *s = open_store(f, false, 0, 0, 0);
	uint8_t k[BLOB_KEY_LEN], other[BLOB_KEY_LEN];
	struct vset got, cur;

	vset_init(&got);
	blob_key_of(BLOB_DATA, 0x44, k);
	blob_key_of(BLOB_REFS, 0x55, other);
	assert_int_equal(store_update(s, k, sizeof(k), apply_blind, NULL), 0);
	assert_int_equal(store_update(s, other, sizeof(other), apply_blind,
	                              NULL),
	                 0);
	assert_int_equal(gc_one(s, STORE_GC_MARK, other, 5), 0);

	/* A re-put that changes nothing still touches: the sweep's delete
	 * is then refused and the blob stays. */
	assert_int_equal(gc_one(s, STORE_GC_MARK, k, 1000), 0);
	assert_int_equal(store_update(s, k, sizeof(k), apply_skip, NULL),
	                 STORE_SKIP);
	assert_int_equal(mark_of(s, k), 0);
	assert_int_equal(gc_one(s, STORE_GC_DELETE, k, 1000), STORE_KEPT);
	assert_int_equal(store_get(s, k, sizeof(k), &got), 0);

	/* A write (a merge, a transfer...) touches. */
	assert_int_equal(gc_one(s, STORE_GC_MARK, k, 2000), 0);
	assert_int_equal(store_update(s, k, sizeof(k), apply_blind, NULL), 0);
	assert_int_equal(mark_of(s, k), 0);

	/* So do batched updates and a conditional delete that keeps it. */
	assert_int_equal(gc_one(s, STORE_GC_MARK, k, 3000), 0);
	struct store_update up = {k, sizeof(k), apply_skip, NULL, 0};
	assert_int_equal(store_update_many(s, &up, 1), 0);
	assert_int_equal(up.rc, STORE_SKIP);
	assert_int_equal(mark_of(s, k), 0);
	assert_int_equal(gc_one(s, STORE_GC_MARK, k, 3500), 0);
	make_set(&cur);
	assert_int_equal(store_delete_if(s, k, sizeof(k), &cur), STORE_KEPT);
	assert_int_equal(mark_of(s, k), 0);

	/* A failed update wrote nothing: the mark stays.  A hint is not the
	 * stored blob: it leaves the mark too. */
	assert_int_equal(gc_one(s, STORE_GC_MARK, k, 4000), 0);
	assert_int_equal(store_update(s, k, sizeof(k), apply_fail, NULL),
	                 -EPERM);
	assert_int_equal(store_hint_add(s, "n2", k, sizeof(k), &cur), 0);
	assert_int_equal(mark_of(s, k), 4000);

	/* Other keys' updates leave it, and its mark outlives the others'
	 * deletes. */
	assert_int_equal(put_str(s, "plain", "v"), 0);
	assert_int_equal(mark_of(s, other), 5);
	assert_int_equal(gc_one(s, STORE_GC_DELETE, other, 5), 0);
	assert_int_equal(mark_of(s, k), 4000);
	assert_int_equal(gc_one(s, STORE_GC_DELETE, k, 4000), 0);
	assert_int_equal(store_get(s, k, sizeof(k), &got), -ENOENT);
	vset_fini(&cur);
	vset_fini(&got);
	close_store(f);
}

struct ref_seen {
	int objects, hints;
	bool saw_data;
};

static int
ref_count(const uint8_t *key, size_t klen, const struct vset *set, bool hint,
          void *arg)
{
	struct ref_seen *r = arg;
	(void)set;
	if (klen == BLOB_KEY_LEN && key[0] == BLOB_DATA)
		r->saw_data = true;
	if (hint)
		r->hints++;
	else
		r->objects++;
	return 0;
}

static void
test_gc_ref_scan(void **state)
{
	struct fixture *f = *state;
	struct store *s = open_store(f, false, 0, 0, 0);
	uint8_t d[BLOB_KEY_LEN], r[BLOB_KEY_LEN];
	struct vset set;
	uint64_t bad = 7;

	blob_key_of(BLOB_DATA, 0x66, d);
	blob_key_of(BLOB_REFS, 0x77, r);
	make_set(&set);
	assert_int_equal(put_str(s, "F/x", "v"), 0);
	assert_int_equal(store_update(s, d, sizeof(d), apply_blind, NULL), 0);
	assert_int_equal(store_update(s, r, sizeof(r), apply_blind, NULL), 0);
	assert_int_equal(store_hint_add(s, "n2", "F/y", 3, &set), 0);
	assert_int_equal(store_hint_add(s, "n2", d, sizeof(d), &set), 0);
	assert_int_equal(store_hint_add(s, "n3", r, sizeof(r), &set), 0);

	/* Data blobs are never read, in objects or in hints. */
	struct ref_seen seen = {0};
	assert_int_equal(store_ref_scan(s, ref_count, &seen, &bad), 0);
	assert_int_equal(bad, 0);
	assert_int_equal(seen.objects, 2);
	assert_int_equal(seen.hints, 2);
	assert_false(seen.saw_data);

	/* A record that does not decode is counted, not hidden. */
	close_store(f);
	poke_raw(f->dir, "bad", "\0\0\0\3badgarbage", 14);
	s = open_store(f, false, 0, 0, 0);
	memset(&seen, 0, sizeof(seen));
	assert_int_equal(store_ref_scan(s, ref_count, &seen, &bad), 0);
	assert_int_equal(bad, 1);
	assert_int_equal(seen.objects, 2);
	vset_fini(&set);
	close_store(f);
}

/* --- compaction ---------------------------------------------------------- */

#define NBIG  1024 /* x BIGVAL: 64 MiB */
#define KEEP  8    /* every KEEP-th big value stays */
#define NLOAD 4    /* writer threads during a compaction */
#define NREAD 2    /* reader threads during a compaction */

static struct store *
open_opts(struct fixture *f, struct store_opts *o)
{
	o->dir = f->dir;
	assert_int_equal(store_open(o, &f->s), 0);
	assert_non_null(f->s);
	return f->s;
}

static uint64_t
file_size(const struct fixture *f, const char *name)
{
	char path[128];
	struct stat st;

	snprintf(path, sizeof(path), "%s/%s", f->dir, name);
	if (stat(path, &st) != 0)
		return UINT64_MAX; /* absent */
	return (uint64_t)st.st_size;
}

/* Write big-0 .. big-(n-1), then delete all but every keep-th. */
static void
fill_and_thin(struct store *s, int n, int keep)
{
	uint8_t *v = malloc(BIGVAL);
	char key[32];

	assert_non_null(v);
	for (int i = 0; i < n; i++) {
		snprintf(key, sizeof(key), "big-%d", i);
		fill_value(v, i);
		assert_int_equal(put(s, key, strlen(key), v, BIGVAL), 0);
	}
	for (int i = 0; i < n; i++) {
		if (i % keep == 0)
			continue;
		snprintf(key, sizeof(key), "big-%d", i);
		assert_int_equal(
		    store_update(s, key, strlen(key), apply_clear, NULL), 0);
	}
	free(v);
}

/* Every kept value reads back byte-identical, the others are gone. */
static void
check_thinned(struct store *s, int n, int keep)
{
	uint8_t *v = malloc(BIGVAL);
	struct vset got;
	char key[32];

	assert_non_null(v);
	vset_init(&got);
	for (int i = 0; i < n; i++) {
		snprintf(key, sizeof(key), "big-%d", i);
		if (i % keep) {
			assert_int_equal(store_get(s, key, strlen(key), &got),
			                 -ENOENT);
			continue;
		}
		fill_value(v, i);
		check_value(s, key, strlen(key), v, BIGVAL);
	}
	free(v);
}

/* A load thread: small puts, one after the other, until told to stop. */
struct loader {
	struct store *s;
	int id;
	_Atomic int done; /* puts acknowledged */
	int errors;
	uint64_t max_ms; /* the longest put */
	_Atomic bool *stop;
	pthread_t t;
};

static size_t
load_value(int id, int i, char *out, size_t cap)
{
	return (size_t)snprintf(out, cap, "load %d/%d %0*d", id, i, i % 200,
	                        0);
}

static void *
loader_main(void *p)
{
	struct loader *l = p;
	char key[32], val[256];

	for (int i = 0; !atomic_load(l->stop); i++) {
		snprintf(key, sizeof(key), "load-%d-%d", l->id, i);
		size_t len = load_value(l->id, i, val, sizeof(val));
		uint64_t t0 = mono_ms();
		if (put(l->s, key, strlen(key), val, len) != 0)
			l->errors++;
		uint64_t ms = mono_ms() - t0;
		if (ms > l->max_ms)
			l->max_ms = ms;
		atomic_fetch_add(&l->done, 1);
	}
	return NULL;
}

static void
check_loaded(struct store *s, struct loader *l)
{
	char key[32], val[256];

	for (int i = 0; i < atomic_load(&l->done); i++) {
		snprintf(key, sizeof(key), "load-%d-%d", l->id, i);
		size_t len = load_value(l->id, i, val, sizeof(val));
		check_value(s, key, strlen(key), val, len);
	}
}

/* A reader thread: kept values, read back and compared, until stopped. */
struct reader {
	struct store *s;
	int reads, bad;
	_Atomic bool *stop;
	pthread_t t;
};

static void *
reader_main(void *p)
{
	struct reader *r = p;
	uint8_t *v = malloc(BIGVAL);
	struct vset got;
	char key[32];

	vset_init(&got);
	for (int i = 0; v && !atomic_load(r->stop); i = (i + KEEP) % NBIG) {
		snprintf(key, sizeof(key), "big-%d", i);
		fill_value(v, i);
		if (store_get(r->s, key, strlen(key), &got) != 0 ||
		    got.n != 1 || got.v[0].len != BIGVAL ||
		    memcmp(got.v[0].value, v, BIGVAL) != 0)
			r->bad++;
		vset_fini(&got);
		r->reads++;
	}
	free(v);
	return NULL;
}

/* 64 MiB written, 7/8 deleted, compacted while 4 threads write and 2 read:
 * the file shrinks to about the live data, every record stays
 * byte-identical, and the writes that queued during the compaction are
 * all committed after it. */
static void
test_compact(void **state)
{
	struct fixture *f = *state;
	struct store *s = open_store(f, false, 0, 0, 0);
	struct loader l[NLOAD];
	struct reader r[NREAD];
	struct store_stats st, st2;
	struct store_compaction res;
	_Atomic bool stop = false;
	uint64_t waited = 0;

	fill_and_thin(s, NBIG, KEEP);
	assert_int_equal(store_stats(s, &st), 0);
	print_message("before: file %llu, used %llu, free %llu bytes\n",
	              (unsigned long long)st.file_bytes,
	              (unsigned long long)st.used_bytes,
	              (unsigned long long)st.free_bytes);
	assert_true(st.file_bytes >= (uint64_t)NBIG * BIGVAL);
	assert_int_equal(st.file_bytes, file_size(f, "data.mdb"));
	assert_true(st.used_bytes >= (uint64_t)NBIG / KEEP * BIGVAL);
	assert_true(st.used_bytes <= (uint64_t)NBIG / KEEP * BIGVAL * 5 / 4);
	assert_int_equal(st.free_bytes, st.file_bytes - st.used_bytes);
	assert_int_equal(st.compactions, 0);
	assert_int_equal(st.last.before, 0);

	for (int i = 0; i < NLOAD; i++) {
		l[i] = (struct loader){.s = s, .id = i, .stop = &stop};
		assert_int_equal(
		    pthread_create(&l[i].t, NULL, loader_main, &l[i]), 0);
	}
	for (int i = 0; i < NREAD; i++) {
		r[i] = (struct reader){.s = s, .stop = &stop};
		assert_int_equal(
		    pthread_create(&r[i].t, NULL, reader_main, &r[i]), 0);
	}
	/* The load is under way before the compaction is asked for. */
	for (uint64_t end = mono_ms() + 10000;
	     atomic_load(&l[NLOAD - 1].done) < 50 && mono_ms() < end;)
		usleep(1000);
	assert_int_equal(store_compact(s, &res), 0);
	int at_end = atomic_load(&l[0].done);
	/* ... and goes on after it. */
	for (uint64_t end = mono_ms() + 10000;
	     atomic_load(&l[0].done) < at_end + 50 && mono_ms() < end;)
		usleep(1000);
	atomic_store(&stop, true);
	for (int i = 0; i < NLOAD; i++) {
		pthread_join(l[i].t, NULL);
		assert_int_equal(l[i].errors, 0);
		if (l[i].max_ms > waited)
			waited = l[i].max_ms;
	}
	for (int i = 0; i < NREAD; i++) {
		pthread_join(r[i].t, NULL);
		assert_int_equal(r[i].bad, 0);
		assert_true(r[i].reads > 0);
	}
	print_message("compacted %llu -> %llu bytes in %llu ms; the longest "
	              "put waited %llu ms; %d reads meanwhile\n",
	              (unsigned long long)res.before,
	              (unsigned long long)res.after,
	              (unsigned long long)res.ms,
	              (unsigned long long)waited, r[0].reads + r[1].reads);

	assert_true(res.before >= st.file_bytes);
	assert_true(res.after < res.before / 4);
	/* The live data and the load's small records, little else. */
	assert_true(res.after <= st.used_bytes + (2u << 20));
	/* Puts queued while the writer copied waited for it. */
	assert_true(waited * 2 >= res.ms);
	assert_int_equal(store_stats(s, &st2), 0);
	assert_int_equal(st2.compactions, 1);
	assert_int_equal(st2.compact_skipped, 0);
	assert_false(st2.compacting);
	assert_memory_equal(&st2.last, &res, sizeof(res));
	assert_true(st2.file_bytes >= res.after);
	assert_true(st2.file_bytes < res.before / 4);
	assert_int_equal(file_size(f, "data.mdb.compact"), UINT64_MAX);

	check_thinned(s, NBIG, KEEP);
	for (int i = 0; i < NLOAD; i++)
		check_loaded(s, &l[i]);
	reopen(f);
	check_thinned(f->s, NBIG, KEEP);
	for (int i = 0; i < NLOAD; i++) {
		l[i].s = f->s;
		check_loaded(f->s, &l[i]);
	}
	assert_int_equal(store_stats(f->s, &st2), 0);
	assert_int_equal(st2.compactions, 0); /* counted per open */
	close_store(f);
}

/* A data.mdb.compact left by a crash before its rename is removed at open
 * and data.mdb, whole, is used; compacting afterwards works. */
static void
test_compact_leftover(void **state)
{
	struct fixture *f = *state;
	struct store *s = open_store(f, true, 0, 0, 0);
	struct store_compaction res;
	char path[128];
	FILE *fp;

	assert_int_equal(put_str(s, "k1", "v1"), 0);
	assert_int_equal(put_str(s, "k2", "v2"), 0);
	close_store(f);
	snprintf(path, sizeof(path), "%s/data.mdb.compact", f->dir);
	fp = fopen(path, "w");
	assert_non_null(fp);
	fputs("half a copy", fp);
	fclose(fp);

	s = open_store(f, true, 0, 0, 0);
	assert_int_equal(file_size(f, "data.mdb.compact"), UINT64_MAX);
	check_str(s, "k1", "v1");
	check_str(s, "k2", "v2");
	assert_int_equal(store_compact(s, &res), 0);
	assert_true(res.after > 0 && res.after <= res.before);
	check_str(s, "k1", "v1");
	assert_int_equal(put_str(s, "k3", "v3"), 0);
	reopen(f);
	check_str(f->s, "k1", "v1");
	check_str(f->s, "k3", "v3");
	close_store(f);
}

/* No room on disk for the copy (a reserve no disk has): refused, logged,
 * counted, and nothing changes. */
static void
test_compact_refused(void **state)
{
	struct fixture *f = *state;
	struct store_compaction res;
	struct store_stats st;
	struct store_opts o;
	struct store *s;
	uint64_t before;

	store_opts_default(&o);
	o.fsync = false;
	o.compact_reserve = UINT64_MAX / 2;
	s = open_opts(f, &o);
	fill_and_thin(s, 32, 4);
	before = file_size(f, "data.mdb");
	assert_int_equal(store_compact(s, &res), -ENOSPC);
	assert_int_equal(res.after, 0);
	assert_int_equal(file_size(f, "data.mdb"), before);
	assert_int_equal(file_size(f, "data.mdb.compact"), UINT64_MAX);
	assert_int_equal(store_stats(s, &st), 0);
	assert_int_equal(st.compact_skipped, 1);
	assert_int_equal(st.compactions, 0);
	check_thinned(s, 32, 4);
	assert_int_equal(put_str(s, "after", "fine"), 0);
	check_str(s, "after", "fine");
	close_store(f);
}

/* The copy fails half-way (a file size limit standing in for a disk
 * error): the partial copy is removed and the store goes on as it was. */
static void
test_compact_copy_fails(void **state)
{
	struct fixture *f = *state;
	struct store *s = open_store(f, false, 0, 0, 0);
	struct store_compaction res;
	struct store_stats st;
	struct rlimit old, lim;
	uint64_t before;
	int rc;

	fill_and_thin(s, 128, 2); /* 4 MiB live */
	before = file_size(f, "data.mdb");
	signal(SIGXFSZ, SIG_IGN);
	assert_int_equal(getrlimit(RLIMIT_FSIZE, &old), 0);
	lim = old;
	lim.rlim_cur = 1 << 20;
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &lim), 0);
	rc = store_compact(s, &res);
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &old), 0);
	signal(SIGXFSZ, SIG_DFL);
	assert_int_equal(rc, -EFBIG);
	assert_int_equal(file_size(f, "data.mdb.compact"), UINT64_MAX);
	assert_int_equal(file_size(f, "data.mdb"), before);
	assert_int_equal(store_stats(s, &st), 0);
	assert_int_equal(st.compactions, 0);
	check_thinned(s, 128, 2);
	assert_int_equal(put_str(s, "after", "fine"), 0);

	assert_int_equal(store_compact(s, &res), 0);
	assert_true(res.after < before);
	check_thinned(s, 128, 2);
	check_str(s, "after", "fine");
	close_store(f);
}

/* Delete big-i for every i < n that del(i) picks, in one transaction (so
 * the automatic check never sees half of it). */
static void
delete_at_once(struct store *s, int n, bool (*del)(int))
{
	struct store_update ups[128];
	char keys[128][32];
	size_t k = 0;

	assert_true(n <= 128);
	for (int i = 0; i < n; i++) {
		if (!del(i))
			continue;
		snprintf(keys[k], sizeof(keys[k]), "big-%d", i);
		ups[k] = (struct store_update){keys[k], strlen(keys[k]),
		                               apply_clear, NULL, 0};
		k++;
	}
	assert_int_equal(store_update_many(s, ups, k), 0);
	for (size_t i = 0; i < k; i++)
		assert_int_equal(ups[i].rc, 0);
}

static bool
third(int i)
{
	return i % 3 == 0;
}

static bool
kept_eighth(int i)
{
	return i % 8 != 1;
}

/* Polls stats until compactions reaches n or the deadline passes. */
static uint64_t
wait_compactions(struct store *s, uint64_t n, int ms)
{
	struct store_stats st;
	uint64_t end = mono_ms() + (uint64_t)ms;

	for (;;) {
		assert_int_equal(store_stats(s, &st), 0);
		if (st.compactions >= n || mono_ms() >= end)
			return st.compactions;
		usleep(10 * 1000);
	}
}

/* The automatic check compacts once the file is 2x the data in use and
 * more than compact_min_free is free, and not again when it is compact. */
static void
test_compact_auto(void **state)
{
	struct fixture *f = *state;
	struct store_stats st;
	struct store_opts o;
	struct store *s;
	uint8_t *v = malloc(BIGVAL);
	char key[32];

	assert_non_null(v);
	store_opts_default(&o);
	o.fsync = false;
	o.compact_check_ms = 20;
	o.compact_min_free = 2 << 20;
	s = open_opts(f, &o);
	for (int i = 0; i < 128; i++) {
		snprintf(key, sizeof(key), "big-%d", i);
		fill_value(v, i);
		assert_int_equal(put(s, key, strlen(key), v, BIGVAL), 0);
	}
	/* Nothing free yet: 10 checks, no compaction (a wait for something
	 * that must not happen). */
	assert_int_equal(wait_compactions(s, 1, 200), 0);

	/* A third deleted: over 2 MiB free, but the file is < 2x in use. */
	delete_at_once(s, 128, third);
	assert_int_equal(store_stats(s, &st), 0);
	assert_true(st.free_bytes > o.compact_min_free);
	assert_true(st.file_bytes < 2 * st.used_bytes);
	assert_int_equal(wait_compactions(s, 1, 200), 0);

	/* 7 of 8 deleted: compacted. */
	delete_at_once(s, 128, kept_eighth);
	assert_int_equal(wait_compactions(s, 1, 10000), 1);
	assert_int_equal(store_stats(s, &st), 0);
	print_message("auto: %llu -> %llu bytes in %llu ms\n",
	              (unsigned long long)st.last.before,
	              (unsigned long long)st.last.after,
	              (unsigned long long)st.last.ms);
	assert_true(st.last.after < st.last.before / 4);
	/* Compact now: the checks find nothing to do. */
	assert_int_equal(wait_compactions(s, 2, 200), 1);
	for (int i = 0; i < 128; i++) {
		snprintf(key, sizeof(key), "big-%d", i);
		if (third(i) || kept_eighth(i)) {
			struct vset got;
			vset_init(&got);
			assert_int_equal(store_get(s, key, strlen(key), &got),
			                 -ENOENT);
			continue;
		}
		fill_value(v, i);
		check_value(s, key, strlen(key), v, BIGVAL);
	}
	free(v);
	close_store(f);
}

struct scan_compact_arg {
	struct store *s;
	int rc;
};

static int
scan_compact(const struct keypos *pos, const uint8_t *key, size_t klen,
             const struct vset *set, void *arg)
{
	struct scan_compact_arg *a = arg;

	(void)pos;
	(void)key;
	(void)klen;
	(void)set;
	a->rc = store_compact(a->s, NULL);
	return 1;
}

/* An empty store compacts; a scan callback may not ask (the writer would
 * wait for that very scan to end before the swap). */
static void
test_compact_edges(void **state)
{
	struct fixture *f = *state;
	struct store *s = open_store(f, true, 0, 0, 0);
	struct scan_compact_arg a = {s, 0};
	struct store_compaction res;

	assert_int_equal(store_compact(s, &res), 0);
	assert_true(res.after > 0 && res.after <= res.before);
	assert_int_equal(store_compact(s, NULL), 0);
	assert_int_equal(put_str(s, "k", "v"), 0);
	assert_int_equal(store_scan(s, NULL, NULL, scan_compact, &a), 1);
	assert_int_equal(a.rc, -EDEADLK);
	check_str(s, "k", "v");
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

/* --- placement keys ---------------------------------------------------- */

struct part_acc {
	struct buf keys[64];
	int n;
	const uint8_t *hdr;
	size_t hlen;
};

/* Collect the keys of one part; stop at the first key past it. */
static int
part_cb(const struct keypos *pos, const uint8_t *key, size_t klen,
        const struct vset *set, void *arg)
{
	struct part_acc *a = arg;
	(void)pos;
	(void)set;
	if (klen < a->hlen || memcmp(key, a->hdr, a->hlen) != 0 || a->n == 64)
		return 1;
	buf_init(&a->keys[a->n]);
	buf_put(&a->keys[a->n], key, klen);
	a->n++;
	return 0;
}

static void
part_acc_fini(struct part_acc *a)
{
	for (int i = 0; i < a->n; i++)
		buf_fini(&a->keys[i]);
	a->n = 0;
}

static size_t
placed_key(const char *part, int i, uint8_t *out)
{
	size_t h = keypos_placed_make(part, strlen(part), out);
	return h + (size_t)sprintf((char *)out + h, "e%03d", i);
}

/* All keys of one placement part are next to each other, in key order, and
 * store_scan_from pages through them from any key, in or after it. */
static void
test_scan_from_placed(void **state)
{
	struct fixture *f = *state;
	struct store *s = open_store(f, false, 0, 0, 0);
	uint8_t k[64], hdr[16];
	size_t hlen = keypos_placed_make("dir", 3, hdr);

	/* Written out of order, with other parts and plain keys between. */
	for (int i = 39; i >= 0; i--) {
		size_t kl = placed_key("dir", i, k);
		assert_int_equal(put(s, k, kl, "v", 1), 0);
		kl = placed_key("other", i, k);
		assert_int_equal(put(s, k, kl, "w", 1), 0);
		char plain[16];
		snprintf(plain, sizeof(plain), "dir/e%03d", i);
		assert_int_equal(put_str(s, plain, "p"), 0);
	}
	struct part_acc a = {.hdr = hdr, .hlen = hlen};
	assert_int_equal(store_scan_from(s, hdr, hlen, false, NULL, part_cb,
	                     &a), 1);
	assert_int_equal(a.n, 40);
	for (int i = 0; i < 40; i++) {
		size_t kl = placed_key("dir", i, k);
		assert_int_equal(a.keys[i].len, kl);
		assert_memory_equal(a.keys[i].data, k, kl);
	}
	part_acc_fini(&a);

	/* From a stored key: after excludes it, else it comes first. */
	size_t kl = placed_key("dir", 9, k);
	assert_int_equal(store_scan_from(s, k, kl, true, NULL, part_cb, &a),
	                 1);
	assert_int_equal(a.n, 30);
	assert_int_equal(a.keys[0].data[hlen + 3], '0' + 0);
	assert_int_equal(a.keys[0].data[hlen + 2], '1');
	part_acc_fini(&a);
	assert_int_equal(store_scan_from(s, k, kl, false, NULL, part_cb, &a),
	                 1);
	assert_int_equal(a.n, 31);
	assert_memory_equal(a.keys[0].data, k, kl);
	part_acc_fini(&a);
	/* From a key that is not stored: the next one. */
	memcpy(k + hlen, "e0095", 5);
	assert_int_equal(store_scan_from(s, k, hlen + 5, true, NULL, part_cb,
	                     &a), 1);
	assert_int_equal(a.n, 30);
	part_acc_fini(&a);
	/* Past the last one: nothing of the part. */
	kl = placed_key("dir", 39, k);
	int rc = store_scan_from(s, k, kl, true, NULL, part_cb, &a);
	assert_true(rc == 0 || rc == 1); /* the end, or another key */
	assert_int_equal(a.n, 0);

	/* A malformed placement key is refused, not scanned. */
	static const uint8_t bad[] = {0xff, 0x00, 0x09, 'd'};
	assert_int_equal(store_scan_from(s, bad, sizeof(bad), false, NULL,
	                     part_cb, &a), -EINVAL);
	assert_int_equal(put(s, bad, sizeof(bad), "x", 1), -EINVAL);
	close_store(f);
}

/* The store records its format and refuses another one. */
static void
test_store_format(void **state)
{
	struct fixture *f = *state;
	struct store *s = open_store(f, false, 0, 0, 0);
	uint8_t v[4];
	size_t len = 0;
	assert_int_equal(store_meta_get(s, STORE_FORMAT_META, v, sizeof(v),
	                     &len), 0);
	assert_int_equal(len, 4);
	assert_int_equal(be_get_u32(v), STORE_FORMAT);
	be_put_u32(v, STORE_FORMAT + 1);
	assert_int_equal(store_meta_put(s, STORE_FORMAT_META, v, sizeof(v)), 0);
	close_store(f);

	struct store_opts o;
	store_opts_default(&o);
	o.dir = f->dir;
	o.fsync = false;
	assert_int_equal(store_open(&o, &f->s), DYN_EPROTO);
	assert_null(f->s);
}

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
	    T_LEAK(test_scan_from_placed),
	    T_LEAK(test_store_format),
	    T_LEAK(test_meta),
	    T_LEAK(test_corrupt_record),
	    T_LEAK(test_commit_io_error),
	    T_LEAK(test_open_errors),
	    T_LEAK(test_hint_add_scan_remove),
	    T_MT(test_update_async),
	    T_MT(test_update_applied),
	    T_LEAK(test_hint_targets),
	    T_LEAK(test_hint_merge),
	    T_LEAK(test_hint_remove_grown),
	    T_LEAK(test_hint_persistence),
	    T_LEAK(test_hint_long_keys),
	    T_LEAK(test_hint_corrupt),
	    T_LEAK(test_hint_nested),
	    T_LEAK(test_delete_if),
	    T_LEAK(test_gc_marks),
	    T_LEAK(test_gc_touch),
	    T_LEAK(test_gc_ref_scan),
	    T_LEAK(test_compact_leftover),
	    T_LEAK(test_compact_refused),
	    T_LEAK(test_compact_copy_fails),
	    T_LEAK(test_compact_edges),
	    T_MT(test_batch_outcomes),
	    T_MT(test_group_commit),
	    T_MT(test_no_group_commit),
	    T_MT(test_map_growth),
	    T_MT(test_hint_concurrent),
	    T_MT(test_compact),
	    T_MT(test_compact_auto),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
