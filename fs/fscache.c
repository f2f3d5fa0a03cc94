#include "fscache.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <string.h>

#include "err.h"
#include "log.h"
#include "mem.h"

#define NBUCKETS  (1u << 16)
#define QUEUE_MAX 4096 /* jobs waiting; more prefetches are dropped */

enum { B_READY, B_FETCHING, B_FAILED };

enum { J_FETCH, J_PUT };

struct job {
	struct job *next;
	int type;
	uint8_t key[BLOB_KEY_LEN]; /* J_FETCH */
	size_t maxlen;
	uint8_t kind; /* J_PUT */
	bool keep;
	const void *data;
	size_t len;
	fscache_done_fn done;
	void *arg;
};

struct fscache {
	struct dyn_client *cl;
	size_t cap;
	pthread_mutex_t mu;
	pthread_cond_t fetched; /* some fetch ended */
	pthread_cond_t work;    /* a job was queued, or stopping */
	struct fsblob *b[NBUCKETS];
	struct fsblob lru; /* sentinel: lru.next is the most recently used */
	size_t bytes;
	struct job *head, *tail;
	size_t queued;
	bool stopping;
	int nthreads;
	pthread_t *threads;
	struct fscache_stats st;
};

static uint32_t
bucket_of(const uint8_t *key)
{
	/* The name is MAC output: any of its bytes are uniform. */
	return (((uint32_t)key[1] << 8 | key[2]) ^ key[0]) & (NBUCKETS - 1);
}

static struct fsblob *
lookup_locked(struct fscache *c, const uint8_t *key)
{
	struct fsblob *b = c->b[bucket_of(key)];
	while (b && memcmp(b->key, key, BLOB_KEY_LEN) != 0)
		b = b->hnext;
	return b;
}

static void
lru_unlink(struct fsblob *b)
{
	if (b->prev) {
		b->prev->next = b->next;
		b->next->prev = b->prev;
		b->prev = b->next = NULL;
	}
}

static void
lru_front(struct fscache *c, struct fsblob *b)
{
	lru_unlink(b);
	b->next = c->lru.next;
	b->prev = &c->lru;
	c->lru.next->prev = b;
	c->lru.next = b;
}

static void
remove_locked(struct fscache *c, struct fsblob *b)
{
	struct fsblob **pp = &c->b[bucket_of(b->key)];
	while (*pp && *pp != b)
		pp = &(*pp)->hnext;
	if (*pp)
		*pp = b->hnext;
	lru_unlink(b);
	c->bytes -= b->len;
}

static void
blob_free(struct fsblob *b)
{
	if (b->raw.msg)
		dyn_bytes_release(&b->raw);
	else
		mem_free((void *)b->data);
	mem_free(b);
}

/* Drop unreferenced blobs from the cold end until under the budget. */
static void
evict_locked(struct fscache *c)
{
	struct fsblob *b = c->lru.prev;
	while (c->bytes > c->cap && b != &c->lru) {
		struct fsblob *prev = b->prev;
		if (b->refs == 0 && b->state == B_READY) {
			remove_locked(c, b);
			blob_free(b);
			c->st.evictions++;
		}
		b = prev;
	}
}

/* A new entry for key, referenced once, not in the LRU until ready. */
static struct fsblob *
insert_locked(struct fscache *c, const uint8_t *key, int state)
{
	struct fsblob *b = mem_calloc(1, sizeof(*b));
	if (!b)
		return NULL;
	memcpy(b->key, key, BLOB_KEY_LEN);
	b->state = state;
	b->refs = 1;
	uint32_t h = bucket_of(key);
	b->hnext = c->b[h];
	c->b[h] = b;
	return b;
}

/* The blob as received, no copy: a fetched blob stays in its reply. */
static int
fetch(struct fscache *c, const uint8_t *key, size_t maxlen,
    struct dyn_bytes *out)
{
	int rc = dyn_blob_fetch(c->cl, key, maxlen, out);
	return rc == -ENOENT ? -ESTALE : rc;
}

/* Fetch into b (state B_FETCHING, referenced by the caller), then wake the
 * waiters. */
static void
fill(struct fscache *c, struct fsblob *b, size_t maxlen)
{
	struct dyn_bytes raw;
	int rc = fetch(c, b->key, maxlen, &raw);
	pthread_mutex_lock(&c->mu);
	c->st.fetches++;
	if (rc == 0) {
		b->raw = raw;
		b->data = raw.data;
		b->len = raw.len;
		b->state = B_READY;
		c->bytes += raw.len;
		lru_front(c, b);
		evict_locked(c);
	} else {
		b->state = B_FAILED;
		b->rc = rc;
		remove_locked(c, b); /* the next get tries again */
	}
	pthread_cond_broadcast(&c->fetched);
	pthread_mutex_unlock(&c->mu);
}

int
fscache_get(struct fscache *c, const uint8_t key[BLOB_KEY_LEN],
    size_t maxlen, struct fsblob **out)
{
	pthread_mutex_lock(&c->mu);
	struct fsblob *b = lookup_locked(c, key);
	if (b) {
		b->refs++;
		if (b->state == B_READY)
			c->st.hits++;
		while (b->state == B_FETCHING)
			pthread_cond_wait(&c->fetched, &c->mu);
		if (b->state == B_READY)
			lru_front(c, b);
		pthread_mutex_unlock(&c->mu);
	} else {
		c->st.misses++;
		b = insert_locked(c, key, B_FETCHING);
		pthread_mutex_unlock(&c->mu);
		if (!b)
			return -ENOMEM;
		fill(c, b, maxlen);
	}
	if (b->state == B_FAILED) {
		int rc = b->rc;
		fsblob_unref(c, b);
		return rc;
	}
	*out = b;
	return 0;
}

void
fsblob_unref(struct fscache *c, struct fsblob *b)
{
	if (!b)
		return;
	pthread_mutex_lock(&c->mu);
	bool gone = --b->refs == 0 && b->state == B_FAILED;
	if (b->refs == 0 && b->state == B_READY)
		evict_locked(c);
	pthread_mutex_unlock(&c->mu);
	if (gone)
		blob_free(b);
}

void
fscache_done(struct fscache *c, struct fsblob *b)
{
	if (!b)
		return;
	pthread_mutex_lock(&c->mu);
	bool gone = --b->refs == 0;
	if (gone && b->state == B_READY) {
		remove_locked(c, b);
		c->st.used_once++;
	}
	pthread_mutex_unlock(&c->mu);
	if (gone)
		blob_free(b);
}

/* Cache a copy of bytes the mount just stored under key. */
static void
cache_copy(struct fscache *c, const uint8_t *key, const void *data,
    size_t len)
{
	uint8_t *copy = mem_dup(data, len ? len : 1);
	if (!copy)
		return;
	pthread_mutex_lock(&c->mu);
	struct fsblob *b = lookup_locked(c, key);
	if (b || !(b = insert_locked(c, key, B_READY))) {
		pthread_mutex_unlock(&c->mu);
		mem_free(copy);
		return;
	}
	b->refs = 0;
	b->data = copy;
	b->len = len;
	c->bytes += len;
	lru_front(c, b);
	evict_locked(c);
	pthread_mutex_unlock(&c->mu);
}

static int
put_blob(struct fscache *c, uint8_t kind, const void *data, size_t len,
    bool keep, uint8_t key[BLOB_KEY_LEN])
{
	int rc = dyn_blob_put(c->cl, kind, data, len, NULL, key);
	pthread_mutex_lock(&c->mu);
	c->st.puts++;
	pthread_mutex_unlock(&c->mu);
	if (rc == 0 && keep)
		cache_copy(c, key, data, len);
	return rc;
}

int
fscache_put(struct fscache *c, uint8_t kind, const void *data, size_t len,
    uint8_t key[BLOB_KEY_LEN])
{
	return put_blob(c, kind, data, len, true, key);
}

/* ---- workers ---- */

static int
enqueue(struct fscache *c, struct job *j, bool droppable)
{
	pthread_mutex_lock(&c->mu);
	if (c->stopping || (droppable && c->queued >= QUEUE_MAX)) {
		pthread_mutex_unlock(&c->mu);
		mem_free(j);
		return droppable ? 0 : DYN_ECLOSED;
	}
	if (c->tail)
		c->tail->next = j;
	else
		c->head = j;
	c->tail = j;
	c->queued++;
	pthread_cond_signal(&c->work);
	pthread_mutex_unlock(&c->mu);
	return 0;
}

static void
run_job(struct fscache *c, struct job *j)
{
	if (j->type == J_PUT) {
		uint8_t key[BLOB_KEY_LEN];
		int rc = put_blob(c, j->kind, j->data, j->len, j->keep, key);
		j->done(j->arg, rc, key);
		return;
	}
	pthread_mutex_lock(&c->mu);
	struct fsblob *b = lookup_locked(c, j->key);
	if (b) {
		pthread_mutex_unlock(&c->mu);
		return; /* cached or in flight meanwhile */
	}
	b = insert_locked(c, j->key, B_FETCHING);
	pthread_mutex_unlock(&c->mu);
	if (!b)
		return;
	fill(c, b, j->maxlen);
	fsblob_unref(c, b);
}

static void *
worker_main(void *arg)
{
	struct fscache *c = arg;
	pthread_mutex_lock(&c->mu);
	for (;;) {
		while (!c->head && !c->stopping)
			pthread_cond_wait(&c->work, &c->mu);
		struct job *j = c->head;
		if (!j)
			break; /* stopping, and nothing left */
		c->head = j->next;
		if (!c->head)
			c->tail = NULL;
		c->queued--;
		pthread_mutex_unlock(&c->mu);
		run_job(c, j);
		mem_free(j);
		pthread_mutex_lock(&c->mu);
	}
	pthread_mutex_unlock(&c->mu);
	return NULL;
}

void
fscache_prefetch(struct fscache *c, const uint8_t key[BLOB_KEY_LEN],
    size_t maxlen)
{
	pthread_mutex_lock(&c->mu);
	bool known = lookup_locked(c, key) != NULL;
	pthread_mutex_unlock(&c->mu);
	struct job *j = known ? NULL : mem_calloc(1, sizeof(*j));
	if (!j)
		return;
	j->type = J_FETCH;
	memcpy(j->key, key, BLOB_KEY_LEN);
	j->maxlen = maxlen;
	enqueue(c, j, true);
}

int
fscache_put_async(struct fscache *c, uint8_t kind, const void *data,
    size_t len, bool keep, fscache_done_fn done, void *arg)
{
	struct job *j = mem_calloc(1, sizeof(*j));
	if (!j)
		return -ENOMEM;
	j->type = J_PUT;
	j->kind = kind;
	j->keep = keep;
	j->data = data;
	j->len = len;
	j->done = done;
	j->arg = arg;
	return enqueue(c, j, false);
}

void
fscache_stats(struct fscache *c, struct fscache_stats *out)
{
	pthread_mutex_lock(&c->mu);
	*out = c->st;
	out->bytes = c->bytes;
	pthread_mutex_unlock(&c->mu);
}

int
fscache_new(struct dyn_client *cl, size_t cap, int nthreads,
    struct fscache **out)
{
	struct fscache *c = mem_calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	c->cl = cl;
	c->cap = cap;
	c->lru.next = c->lru.prev = &c->lru;
	pthread_mutex_init(&c->mu, NULL);
	pthread_cond_init(&c->fetched, NULL);
	pthread_cond_init(&c->work, NULL);
	c->threads = mem_calloc(nthreads > 0 ? (size_t)nthreads : 1,
	    sizeof(*c->threads));
	if (!c->threads) {
		fscache_free(c);
		return -ENOMEM;
	}
	for (int i = 0; i < nthreads; i++) {
		if (pthread_create(&c->threads[i], NULL, worker_main, c) != 0) {
			fscache_free(c);
			return -EAGAIN;
		}
		c->nthreads++;
	}
	*out = c;
	return 0;
}

void
fscache_free(struct fscache *c)
{
	if (!c)
		return;
	pthread_mutex_lock(&c->mu);
	c->stopping = true;
	pthread_cond_broadcast(&c->work);
	pthread_mutex_unlock(&c->mu);
	for (int i = 0; i < c->nthreads; i++)
		pthread_join(c->threads[i], NULL);
	mem_free(c->threads);
	for (uint32_t h = 0; h < NBUCKETS; h++) {
		struct fsblob *b = c->b[h];
		while (b) {
			struct fsblob *n = b->hnext;
			blob_free(b);
			b = n;
		}
	}
	pthread_cond_destroy(&c->fetched);
	pthread_cond_destroy(&c->work);
	pthread_mutex_destroy(&c->mu);
	mem_free(c);
}
