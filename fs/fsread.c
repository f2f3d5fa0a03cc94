/*
 * fsread — version content with read-ahead.
 *
 *   caller (holds its file's lock)          pool workers
 *   fsread_read -> slot of chunk i?         wait for a job
 *     LOADING: wait on `done`               fskv_chunk_get into the slot
 *     missing: fetch it now                 slot READY, broadcast `done`
 *     sequential: queue i+1, i+2 --------->
 *
 * A slot's state changes only under the pool mutex; its buffer is written
 * by exactly one party at a time (the worker while LOADING, else the
 * caller).  fsread_set and fsread_fini wait until no slot is LOADING, so a
 * worker never writes into a reader that is gone.
 */
#include "fsread.h"

#include <errno.h>
#include <pthread.h>
#include <string.h>

#include "mem.h"

enum { S_EMPTY = 0, S_LOADING, S_READY };

#define MAX_THREADS 8

struct job {
	struct job *next;
	struct fsread_slot *slot;
	uint8_t gen[FSOBJ_GEN_LEN];
	uint32_t idx;
};

struct fsread_pool {
	struct fskv *kv;
	pthread_mutex_t mu;
	pthread_cond_t work;
	pthread_cond_t done;
	struct job *head, *tail;
	bool stop;
	int n;
	pthread_t th[MAX_THREADS];
};

static void *
worker(void *arg)
{
	struct fsread_pool *p = arg;
	pthread_mutex_lock(&p->mu);
	for (;;) {
		while (!p->head && !p->stop)
			pthread_cond_wait(&p->work, &p->mu);
		if (!p->head)
			break;
		struct job *j = p->head;
		p->head = j->next;
		if (!p->head)
			p->tail = NULL;
		pthread_mutex_unlock(&p->mu);
		size_t len = 0;
		int rc = fskv_chunk_get(p->kv, j->gen, j->idx, j->slot->buf,
		                        j->slot->cap, &len);
		pthread_mutex_lock(&p->mu);
		j->slot->len = len;
		j->slot->rc = rc;
		j->slot->state = S_READY;
		pthread_cond_broadcast(&p->done);
		mem_free(j);
	}
	pthread_mutex_unlock(&p->mu);
	return NULL;
}

int
fsread_pool_new(struct fskv *kv, int nthreads, struct fsread_pool **out)
{
	struct fsread_pool *p = mem_calloc(1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	p->kv = kv;
	pthread_mutex_init(&p->mu, NULL);
	pthread_cond_init(&p->work, NULL);
	pthread_cond_init(&p->done, NULL);
	if (nthreads > MAX_THREADS)
		nthreads = MAX_THREADS;
	for (; p->n < nthreads; p->n++)
		if (pthread_create(&p->th[p->n], NULL, worker, p) != 0)
			break; /* fewer workers; still correct */
	*out = p;
	return 0;
}

void
fsread_pool_free(struct fsread_pool *p)
{
	if (!p)
		return;
	pthread_mutex_lock(&p->mu);
	p->stop = true;
	pthread_cond_broadcast(&p->work);
	pthread_mutex_unlock(&p->mu);
	for (int i = 0; i < p->n; i++)
		pthread_join(p->th[i], NULL);
	pthread_cond_destroy(&p->work);
	pthread_cond_destroy(&p->done);
	pthread_mutex_destroy(&p->mu);
	mem_free(p);
}

void
fsread_init(struct fsread *r, struct fsread_pool *p)
{
	memset(r, 0, sizeof(*r));
	r->pool = p;
	r->last = -2;
	for (int i = 0; i < FSREAD_SLOTS; i++)
		r->s[i].idx = -1;
}

/* Wait until no fetch for r is in flight.  Pool mutex held. */
static void
quiesce_locked(struct fsread *r)
{
	for (;;) {
		bool busy = false;
		for (int i = 0; i < FSREAD_SLOTS; i++)
			busy |= r->s[i].state == S_LOADING;
		if (!busy)
			return;
		pthread_cond_wait(&r->pool->done, &r->pool->mu);
	}
}

void
fsread_set(struct fsread *r, const struct fsobj_file *v)
{
	pthread_mutex_lock(&r->pool->mu);
	quiesce_locked(r);
	for (int i = 0; i < FSREAD_SLOTS; i++) {
		r->s[i].idx = -1;
		r->s[i].state = S_EMPTY;
	}
	pthread_mutex_unlock(&r->pool->mu);
	r->v = v;
	r->last = -2;
}

void
fsread_fini(struct fsread *r)
{
	if (!r->pool)
		return;
	fsread_set(r, NULL);
	for (int i = 0; i < FSREAD_SLOTS; i++) {
		mem_free(r->s[i].buf);
		r->s[i].buf = NULL;
		r->s[i].cap = 0;
	}
}

static int
slot_of_locked(struct fsread *r, uint32_t idx)
{
	for (int i = 0; i < FSREAD_SLOTS; i++)
		if (r->s[i].state != S_EMPTY && r->s[i].idx == (int64_t)idx)
			return i;
	return -1;
}

/* A slot to reuse: empty, or the least recently used ready one that is
 * not `keep`.  -1 when all are loading. */
static int
victim_locked(struct fsread *r, int keep)
{
	int best = -1;
	for (int i = 0; i < FSREAD_SLOTS; i++) {
		if (i == keep || r->s[i].state == S_LOADING)
			continue;
		if (r->s[i].state == S_EMPTY)
			return i;
		if (best < 0 || r->s[i].used < r->s[best].used)
			best = i;
	}
	return best;
}

static int
slot_buf(struct fsread_slot *s, size_t cap)
{
	if (s->cap >= cap)
		return 0;
	mem_free(s->buf);
	s->cap = 0;
	if (!(s->buf = mem_alloc(cap)))
		return -ENOMEM;
	s->cap = cap;
	return 0;
}

/* Queue fetches of the chunks after idx.  Pool mutex held. */
static void
read_ahead_locked(struct fsread *r, uint32_t idx, int cur)
{
	struct fsread_pool *p = r->pool;
	const struct fsobj_file *v = r->v;
	for (uint32_t k = 1; k <= FSREAD_AHEAD && p->n > 0; k++) {
		uint64_t n = (uint64_t)idx + k;
		if (n >= v->nchunks || !v->chunks[n].ctx ||
		    slot_of_locked(r, (uint32_t)n) >= 0)
			continue;
		int i = victim_locked(r, cur);
		if (i < 0)
			return;
		struct fsread_slot *s = &r->s[i];
		struct job *j = mem_calloc(1, sizeof(*j));
		if (!j || slot_buf(s, v->chunk_size) != 0) {
			mem_free(j);
			return;
		}
		s->idx = (int64_t)n;
		s->state = S_LOADING;
		s->used = ++r->tick;
		j->slot = s;
		memcpy(j->gen, v->gen, FSOBJ_GEN_LEN);
		j->idx = (uint32_t)n;
		if (p->tail)
			p->tail->next = j;
		else
			p->head = j;
		p->tail = j;
		pthread_cond_signal(&p->work);
	}
}

static int
get_chunk(struct fsread *r, uint32_t idx, const uint8_t **data, size_t *len)
{
	struct fsread_pool *p = r->pool;
	const struct fsobj_file *v = r->v;
	int rc = 0;

	pthread_mutex_lock(&p->mu);
	int i = slot_of_locked(r, idx);
	while (i >= 0 && r->s[i].state == S_LOADING) {
		pthread_cond_wait(&p->done, &p->mu);
		i = slot_of_locked(r, idx);
	}
	if (i >= 0 && r->s[i].rc != 0) {
		/* A failed read-ahead: try again ourselves. */
		r->s[i].state = S_EMPTY;
		r->s[i].idx = -1;
		i = -1;
	}
	if (i < 0) {
		i = victim_locked(r, -1);
		while (i < 0) { /* every slot loading: wait for one */
			pthread_cond_wait(&p->done, &p->mu);
			i = victim_locked(r, -1);
		}
		struct fsread_slot *s = &r->s[i];
		if ((rc = slot_buf(s, v->chunk_size)) != 0)
			goto out;
		s->idx = idx;
		s->state = S_LOADING;
		pthread_mutex_unlock(&p->mu);
		size_t n = 0;
		rc = fskv_chunk_get(p->kv, v->gen, idx, s->buf, s->cap, &n);
		pthread_mutex_lock(&p->mu);
		s->len = n;
		s->rc = rc;
		s->state = rc == 0 ? S_READY : S_EMPTY;
		if (rc != 0)
			s->idx = -1;
		pthread_cond_broadcast(&p->done);
		if (rc != 0)
			goto out;
	}
	r->s[i].used = ++r->tick;
	*data = r->s[i].buf;
	*len = r->s[i].len;
	/* Sequential (or the start): fetch what comes next. */
	if ((int64_t)idx == r->last + 1 || idx == 0)
		read_ahead_locked(r, idx, i);
	r->last = idx;
out:
	pthread_mutex_unlock(&p->mu);
	return rc;
}

int
fsread_read(struct fsread *r, uint64_t off, uint8_t *out, size_t len)
{
	const struct fsobj_file *v = r->v;
	size_t done = 0;

	while (done < len) {
		uint64_t pos = off + done;
		size_t n = len - done;
		if (!v || pos >= v->size) {
			memset(out + done, 0, n);
			break;
		}
		if (n > v->size - pos)
			n = (size_t)(v->size - pos);
		if (v->layout == FSOBJ_INLINE) {
			memcpy(out + done, v->data + pos, n);
			done += n;
			continue;
		}
		uint32_t idx = (uint32_t)(pos / v->chunk_size);
		size_t in = (size_t)(pos % v->chunk_size);
		if (n > v->chunk_size - in)
			n = v->chunk_size - in;
		if (!v->chunks[idx].ctx) {
			memset(out + done, 0, n);
		} else {
			const uint8_t *d;
			size_t dl;
			int rc = get_chunk(r, idx, &d, &dl);
			if (rc != 0)
				return rc;
			size_t have = in < dl ? dl - in : 0;
			if (have > n)
				have = n;
			memcpy(out + done, d + in, have);
			memset(out + done + have, 0, n - have);
		}
		done += n;
	}
	return 0;
}
