/*
 * fsfile — open files and every write of a file object.
 *
 * The content of an open file, byte by byte, comes from one of three
 * places, checked in this order for the chunk the byte falls in:
 *
 *   pc[i].buf        the chunk in memory (maybe dirty)
 *   pc[i].ctx        the chunk as stored under the pending generation
 *                    (written when it filled up, or evicted)
 *   src version      the version shown when the file was read, for bytes
 *                    below `keep` (a truncation lowers keep; bytes at or
 *                    over it, and over src's size, read as zeros)
 *
 * flush turns this into a new version: small files inline, others as the
 * pending generation's chunks (every chunk of the new version is written
 * under that generation, copied from src where unchanged), then the
 * manifest, then the chunks of the superseded versions are deleted.
 */
#include "fsfile.h"

#include <errno.h>
#include <pthread.h>
#include <string.h>
#include <sys/xattr.h>
#include <time.h>

#include "err.h"
#include "fsread.h"
#include "log.h"
#include "mem.h"

#define MAX_BUFS      8 /* chunks in memory per open file */
#define NBUCKETS      256
#define MAX_FILE_SIZE (1ull << 50)
#define MIN_BUF       4096
#define READ_THREADS  3 /* read-ahead workers per mount */

struct pchunk {
	uint8_t *buf; /* NULL: not in memory */
	uint32_t cap; /* bytes allocated (zeroed past len) */
	uint32_t len; /* past len, the chunk is zeros */
	bool dirty;   /* buf differs from what ctx (or src) holds */
	uint8_t *ctx; /* stored under the pending generation */
	uint32_t ctx_len;
	uint64_t used; /* for eviction */
};

struct fsfile {
	struct fsfile_tab *t;
	struct fsfile *next; /* table chain */
	char *path;
	int refs;    /* under t->mu */
	int handles; /* under t->mu */
	int closers; /* under t->mu: threads flushing after the last ref */
	bool in_table;
	pthread_mutex_t mu; /* everything below */
	bool unlinked;
	struct fskv_file *base; /* versions read or last written */
	int src;                /* the version shown, -1: none */
	struct fsread rd;       /* over base->f[src] */
	struct fsobj_attr attr;
	uint64_t size;
	uint64_t keep;
	bool cdirty; /* content changed */
	bool adirty; /* attributes changed */
	uint32_t cs;
	uint8_t gen[FSOBJ_GEN_LEN];
	struct pchunk *pc;
	uint32_t npc;
	uint32_t nbuf;
	uint64_t tick;
	struct fskv_file **defer; /* chunks to release when the last ref
	                             goes (unlinked while open) */
	uint32_t ndefer;
};

struct fsfile_tab {
	struct fskv *kv;
	struct fsread_pool *pool;
	pthread_mutex_t mu;
	struct fsfile *b[NBUCKETS];
};

struct fsview {
	pthread_mutex_t mu;
	struct fskv_file *s;
	struct fsread rd;
};

static struct timespec
now_ts(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return ts;
}

static uint64_t
min64(uint64_t a, uint64_t b)
{
	return a < b ? a : b;
}

/* ---- pending chunks ---- */

static int
pc_slot(struct fsfile *f, uint32_t idx)
{
	if (idx < f->npc)
		return 0;
	uint32_t n = f->npc ? f->npc : 4;
	while (n <= idx)
		n = n > UINT32_MAX / 2 ? idx + 1 : n * 2;
	struct pchunk *p = mem_realloc(f->pc, (size_t)n * sizeof(*p));
	if (!p)
		return -ENOMEM;
	memset(p + f->npc, 0, (size_t)(n - f->npc) * sizeof(*p));
	f->pc = p;
	f->npc = n;
	return 0;
}

/* Make room for need bytes in the chunk's buffer (zeroed past len). */
static int
pc_reserve(struct fsfile *f, struct pchunk *p, size_t need)
{
	if (need < MIN_BUF)
		need = MIN_BUF;
	if (need > f->cs)
		need = f->cs;
	if (p->buf && p->cap >= need)
		return 0;
	size_t cap = p->cap ? p->cap : MIN_BUF;
	while (cap < need)
		cap *= 2;
	if (cap > f->cs)
		cap = f->cs;
	uint8_t *b = mem_realloc(p->buf, cap);
	if (!b)
		return -ENOMEM;
	if (!p->buf)
		f->nbuf++;
	memset(b + p->cap, 0, cap - p->cap);
	p->buf = b;
	p->cap = (uint32_t)cap;
	return 0;
}

static void
pc_drop_buf(struct fsfile *f, struct pchunk *p)
{
	if (!p->buf)
		return;
	mem_free(p->buf);
	p->buf = NULL;
	p->cap = 0;
	p->len = 0;
	p->dirty = false;
	f->nbuf--;
}

/* Bytes of chunk idx that are part of the file. */
static size_t
pc_logical(const struct fsfile *f, uint32_t idx)
{
	uint64_t lo = (uint64_t)idx * f->cs;
	return lo >= f->size ? 0 : (size_t)min64(f->cs, f->size - lo);
}

/* Write chunk idx (in memory) under the pending generation. */
static int
pc_store(struct fsfile *f, uint32_t idx)
{
	struct pchunk *p = &f->pc[idx];
	size_t n = pc_logical(f, idx);
	uint8_t *nctx = NULL;
	uint32_t nlen = 0;
	int rc;

	if (n == 0)
		return 0;
	if ((rc = pc_reserve(f, p, n)) != 0)
		return rc;
	rc = fskv_chunk_put(f->t->kv, f->gen, idx, p->ctx, p->ctx_len, p->buf,
	                    n, &nctx, &nlen);
	if (rc != 0)
		return rc;
	mem_free(p->ctx);
	p->ctx = nctx;
	p->ctx_len = nlen;
	p->dirty = false;
	return 0;
}

/* Keep at most MAX_BUFS chunks in memory: store and drop the least
 * recently used (never `except`). */
static int
pc_evict(struct fsfile *f, uint32_t except)
{
	while (f->nbuf > MAX_BUFS) {
		uint32_t best = UINT32_MAX;
		for (uint32_t i = 0; i < f->npc; i++) {
			if (!f->pc[i].buf || i == except)
				continue;
			if (best == UINT32_MAX ||
			    f->pc[i].used < f->pc[best].used)
				best = i;
		}
		if (best == UINT32_MAX)
			return 0;
		struct pchunk *p = &f->pc[best];
		if (p->dirty) {
			int rc = pc_store(f, best);
			if (rc != 0)
				return rc;
		}
		pc_drop_buf(f, p);
	}
	return 0;
}

/* Bring chunk idx into memory with its current content. */
static int
pc_load(struct fsfile *f, uint32_t idx)
{
	struct pchunk *p;
	int rc = pc_slot(f, idx);
	if (rc != 0)
		return rc;
	p = &f->pc[idx];
	p->used = ++f->tick;
	if (p->buf)
		return 0;
	if (p->ctx) {
		size_t len = 0;
		if ((rc = pc_reserve(f, p, f->cs)) != 0)
			return rc;
		rc = fskv_chunk_get(f->t->kv, f->gen, idx, p->buf, p->cap,
		                    &len);
		if (rc != 0) {
			pc_drop_buf(f, p);
			return rc;
		}
		p->len = (uint32_t)len;
	} else {
		uint64_t lo = (uint64_t)idx * f->cs;
		uint64_t hi = min64(lo + f->cs, f->keep);
		size_t n = hi > lo ? (size_t)(hi - lo) : 0;
		if ((rc = pc_reserve(f, p, n)) != 0)
			return rc;
		if (n > 0 && (rc = fsread_read(&f->rd, lo, p->buf, n)) != 0) {
			pc_drop_buf(f, p);
			return rc;
		}
		p->len = (uint32_t)n;
	}
	p->dirty = false;
	return pc_evict(f, idx);
}

/* Forget the pending generation: buffers, and (delete_stored) the chunks
 * stored under it that no manifest names. */
static void
pc_clear(struct fsfile *f, bool delete_stored)
{
	for (uint32_t i = 0; i < f->npc; i++) {
		struct pchunk *p = &f->pc[i];
		pc_drop_buf(f, p);
		if (p->ctx && delete_stored)
			fskv_chunk_delete(f->t->kv, f->gen, i, p->ctx,
			                  p->ctx_len);
		mem_free(p->ctx);
	}
	mem_free(f->pc);
	f->pc = NULL;
	f->npc = 0;
	f->nbuf = 0;
	fskv_gen_new(f->gen);
}

/* ---- reading and writing ---- */

static int
read_locked(struct fsfile *f, char *buf, size_t size, uint64_t off)
{
	size_t done = 0;
	if (off >= f->size)
		return 0;
	size = (size_t)min64(size, f->size - off);
	while (done < size) {
		uint64_t pos = off + done;
		uint32_t idx = (uint32_t)(pos / f->cs);
		size_t in = (size_t)(pos % f->cs);
		size_t n = (size_t)min64(size - done, f->cs - in);
		struct pchunk *p = idx < f->npc ? &f->pc[idx] : NULL;
		int rc;
		if (p && (p->buf || p->ctx)) {
			if ((rc = pc_load(f, idx)) != 0)
				return rc;
			size_t have = in < p->len ? p->len - in : 0;
			if (have > n)
				have = n;
			memcpy(buf + done, p->buf + in, have);
			memset(buf + done + have, 0, n - have);
		} else {
			size_t have = pos < f->keep
			                  ? (size_t)min64(n, f->keep - pos)
			                  : 0;
			if (have > 0 &&
			    (rc = fsread_read(&f->rd, pos,
			                      (uint8_t *)buf + done, have)) !=
			        0)
				return rc;
			memset(buf + done + have, 0, n - have);
		}
		done += n;
	}
	return (int)done;
}

int
fsfile_read(struct fsfile *f, char *buf, size_t size, uint64_t off)
{
	pthread_mutex_lock(&f->mu);
	int rc = read_locked(f, buf, size, off);
	pthread_mutex_unlock(&f->mu);
	return rc;
}

int
fsfile_write(struct fsfile *f, const char *buf, size_t size, uint64_t off)
{
	size_t done = 0;
	int rc = 0;

	if (off > MAX_FILE_SIZE || size > MAX_FILE_SIZE - off)
		return -EFBIG;
	pthread_mutex_lock(&f->mu);
	if (!S_ISREG(f->attr.mode)) {
		rc = -EINVAL;
		goto out;
	}
	while (done < size) {
		uint64_t pos = off + done;
		uint32_t idx = (uint32_t)(pos / f->cs);
		size_t in = (size_t)(pos % f->cs);
		size_t n = (size_t)min64(size - done, f->cs - in);
		if ((rc = pc_slot(f, idx)) != 0)
			break;
		struct pchunk *p = &f->pc[idx];
		if (!p->buf && !(in == 0 && n == f->cs) &&
		    (rc = pc_load(f, idx)) != 0)
			break;
		if ((rc = pc_reserve(f, p, in + n)) != 0)
			break;
		memcpy(p->buf + in, buf + done, n);
		if (p->len < in + n)
			p->len = (uint32_t)(in + n);
		p->dirty = true;
		p->used = ++f->tick;
		done += n;
		if (f->size < pos + n)
			f->size = pos + n;
		f->cdirty = true;
		/* A full chunk goes out now, so big files stream. */
		if (in + n == f->cs) {
			if ((rc = pc_store(f, idx)) != 0)
				break;
			pc_drop_buf(f, p);
		} else if ((rc = pc_evict(f, idx)) != 0) {
			break;
		}
	}
	if (done > 0) {
		f->attr.mtime = f->attr.ctime = now_ts();
		rc = (int)done;
	}
out:
	pthread_mutex_unlock(&f->mu);
	return rc;
}

static int
truncate_locked(struct fsfile *f, uint64_t size)
{
	int rc;
	if (size > MAX_FILE_SIZE)
		return -EFBIG;
	if (size < f->size) {
		uint32_t first = fsobj_nchunks(size, f->cs);
		for (uint32_t i = first; i < f->npc; i++) {
			struct pchunk *p = &f->pc[i];
			pc_drop_buf(f, p);
			if (p->ctx)
				fskv_chunk_delete(f->t->kv, f->gen, i, p->ctx,
				                  p->ctx_len);
			mem_free(p->ctx);
			p->ctx = NULL;
			p->ctx_len = 0;
		}
		uint32_t idx = (uint32_t)(size / f->cs);
		size_t in = (size_t)(size % f->cs);
		if (in > 0 && idx < f->npc &&
		    (f->pc[idx].buf || f->pc[idx].ctx)) {
			if ((rc = pc_load(f, idx)) != 0)
				return rc;
			struct pchunk *p = &f->pc[idx];
			if (p->len > in) {
				memset(p->buf + in, 0, p->len - in);
				p->len = (uint32_t)in;
			}
			p->dirty = true;
		}
		if (f->keep > size)
			f->keep = size;
	}
	if (size != f->size)
		f->cdirty = true;
	f->size = size;
	f->attr.mtime = f->attr.ctime = now_ts();
	return 0;
}

int
fsfile_truncate(struct fsfile *f, uint64_t size)
{
	pthread_mutex_lock(&f->mu);
	int rc = S_ISREG(f->attr.mode) ? truncate_locked(f, size) : -EINVAL;
	pthread_mutex_unlock(&f->mu);
	return rc;
}

void
fsfile_replace(struct fsfile *f)
{
	pthread_mutex_lock(&f->mu);
	f->cdirty = true;
	pthread_mutex_unlock(&f->mu);
}

/* ---- flush ---- */

/* Every chunk of the new version under the pending generation; ctxs are
 * copied into nf->chunks. */
static int
store_chunks(struct fsfile *f, struct fsobj_file *nf)
{
	uint32_t n = fsobj_nchunks(f->size, f->cs);
	int rc;

	nf->layout = FSOBJ_CHUNKED;
	nf->chunk_size = f->cs;
	memcpy(nf->gen, f->gen, FSOBJ_GEN_LEN);
	if (n > 0 && !(nf->chunks = mem_calloc(n, sizeof(*nf->chunks))))
		return -ENOMEM;
	nf->nchunks = n;
	for (uint32_t i = 0; i < n; i++) {
		struct pchunk *p = i < f->npc ? &f->pc[i] : NULL;
		bool base = (uint64_t)i * f->cs < f->keep;
		if ((!p || (!p->buf && !p->ctx)) && !base)
			continue; /* a hole */
		if ((!p || !p->ctx) && (rc = pc_load(f, i)) != 0)
			return rc;
		p = &f->pc[i];
		if (p->buf && !p->ctx && p->len == 0)
			continue; /* nothing but zeros */
		if (p->buf && (p->dirty || !p->ctx)) {
			if ((rc = pc_store(f, i)) != 0)
				return rc;
			pc_drop_buf(f, p);
		}
		if (!(nf->chunks[i].ctx = mem_dup(p->ctx, p->ctx_len)))
			return -ENOMEM;
		nf->chunks[i].ctx_len = p->ctx_len;
	}
	return 0;
}

static void
rebase(struct fsfile *f, struct fskv_file *s)
{
	fskv_file_unref(f->base);
	f->base = s;
	f->src = s->newest;
	fsread_set(&f->rd, f->src >= 0 ? &s->f[f->src] : NULL);
	if (f->src >= 0) {
		const struct fsobj_file *v = &s->f[f->src];
		if (fsobj_attr_copy(&f->attr, &v->a) != 0)
			LOG_WARN("%s: out of memory copying attributes",
			         f->path);
		f->size = v->size;
	} else {
		f->size = 0;
	}
	f->keep = f->size;
}

static void
release_versions(struct fskv *kv, const struct fskv_file *s, int only)
{
	for (uint32_t i = 0; i < s->vs.n; i++)
		if (only < 0 || (uint32_t)only == i)
			fskv_chunks_release(kv, &s->f[i]);
}

struct keep {
	const struct fsobj_file *v;
	bool copy; /* its chunks belong to a read version: copy them */
};

static int keep_list(struct fsfile *f, int drop, struct keep **out, int *n);
static int rewrite_locked(struct fsfile *f, const struct keep *k, int n);

static int
flush_locked(struct fsfile *f)
{
	struct fskv *kv = f->t->kv;
	const struct fskv_opts *o = fskv_opts(kv);
	struct fsobj_file nf;
	struct fskv_file *ns = NULL;
	int rc;

	if (f->unlinked) {
		f->cdirty = f->adirty = false;
		return 0;
	}
	if (!f->cdirty && !f->adirty)
		return 0;
	/* Content written: resolve every version read.  Attributes only, on
	 * a file with siblings: change the shown sibling, keep the others. */
	bool all = f->cdirty || f->base->nlive <= 1 || f->src < 0;
	fsobj_file_init(&nf);
	if ((rc = fsobj_attr_copy(&nf.a, &f->attr)) != 0)
		goto out;
	nf.size = f->size;
	if (S_ISLNK(f->attr.mode) || f->size <= o->inline_max) {
		nf.layout = FSOBJ_INLINE;
		if (f->size > 0) {
			rc = -ENOMEM;
			if (!(nf.data = mem_alloc((size_t)f->size)))
				goto out;
			rc = read_locked(f, (char *)nf.data, (size_t)f->size,
			                 0);
			if (rc < 0)
				goto out;
		}
	} else if ((rc = store_chunks(f, &nf)) != 0) {
		goto out;
	}
	if (all) {
		rc = fskv_file_put(kv, f->path, &f->base->ctx, 1, &nf, &ns);
		if (rc != 0)
			goto out;
		release_versions(kv, f->base, -1);
		pc_clear(f, nf.layout == FSOBJ_INLINE);
		rebase(f, ns);
		ns = NULL;
	} else {
		/* Every sibling again, the shown one (last) changed. */
		struct keep *k = NULL;
		int n = 0;
		if ((rc = keep_list(f, -1, &k, &n)) != 0)
			goto out;
		k[n - 1].v = &nf;
		k[n - 1].copy = false;
		rc = rewrite_locked(f, k, n);
		mem_free(k);
		if (rc != 0)
			goto out;
	}
	f->cdirty = f->adirty = false;
out:
	fskv_file_unref(ns);
	fsobj_file_fini(&nf);
	if (rc > 0)
		rc = 0;
	if (rc != 0)
		LOG_WARN("%s: flush: %s", f->path, dyn_strerror(rc));
	return rc;
}

int
fsfile_flush(struct fsfile *f)
{
	pthread_mutex_lock(&f->mu);
	int rc = flush_locked(f);
	pthread_mutex_unlock(&f->mu);
	return rc;
}

/* ---- the table ---- */

static uint32_t
bucket_of(const char *p)
{
	uint32_t h = 2166136261u;
	for (; *p; p++) {
		h ^= (uint8_t)*p;
		h *= 16777619u;
	}
	return h % NBUCKETS;
}

static struct fsfile *
tab_lookup_locked(struct fsfile_tab *t, const char *path)
{
	struct fsfile *f = t->b[bucket_of(path)];
	while (f && strcmp(f->path, path) != 0)
		f = f->next;
	return f;
}

static void
tab_insert_locked(struct fsfile_tab *t, struct fsfile *f)
{
	uint32_t b = bucket_of(f->path);
	f->next = t->b[b];
	t->b[b] = f;
	f->in_table = true;
}

static void
tab_remove_locked(struct fsfile_tab *t, struct fsfile *f)
{
	if (!f->in_table)
		return;
	struct fsfile **pp = &t->b[bucket_of(f->path)];
	while (*pp && *pp != f)
		pp = &(*pp)->next;
	if (*pp)
		*pp = f->next;
	f->next = NULL;
	f->in_table = false;
}

int
fsfile_tab_new(struct fskv *kv, struct fsfile_tab **out)
{
	struct fsfile_tab *t = mem_calloc(1, sizeof(*t));
	if (!t)
		return -ENOMEM;
	t->kv = kv;
	int rc = fsread_pool_new(kv, READ_THREADS, &t->pool);
	if (rc != 0) {
		mem_free(t);
		return rc;
	}
	pthread_mutex_init(&t->mu, NULL);
	*out = t;
	return 0;
}

static void
file_free(struct fsfile *f)
{
	struct fskv *kv = f->t->kv;
	if (f->unlinked) {
		for (uint32_t i = 0; i < f->ndefer; i++)
			release_versions(kv, f->defer[i], -1);
		pc_clear(f, true);
	} else {
		pc_clear(f, false);
	}
	for (uint32_t i = 0; i < f->ndefer; i++)
		fskv_file_unref(f->defer[i]);
	mem_free(f->defer);
	fsread_fini(&f->rd);
	fskv_file_unref(f->base);
	fsobj_attr_fini(&f->attr);
	pthread_mutex_destroy(&f->mu);
	mem_free(f->path);
	mem_free(f);
}

void
fsfile_tab_free(struct fsfile_tab *t)
{
	if (!t)
		return;
	for (int b = 0; b < NBUCKETS; b++) {
		struct fsfile *f = t->b[b];
		while (f) {
			struct fsfile *n = f->next;
			if (flush_locked(f) != 0)
				LOG_ERROR("%s: unwritten changes lost at "
				          "unmount",
				          f->path);
			file_free(f);
			f = n;
		}
	}
	fsread_pool_free(t->pool);
	pthread_mutex_destroy(&t->mu);
	mem_free(t);
}

static struct fsfile *
file_new(struct fsfile_tab *t, const char *path, struct fskv_file *s)
{
	struct fsfile *f = mem_calloc(1, sizeof(*f));
	if (!f)
		return NULL;
	if (!(f->path = mem_dup(path, strlen(path) + 1))) {
		mem_free(f);
		return NULL;
	}
	f->t = t;
	f->refs = 1;
	pthread_mutex_init(&f->mu, NULL);
	fsobj_attr_init(&f->attr);
	fsread_init(&f->rd, t->pool);
	f->cs = fskv_opts(t->kv)->chunk_size;
	fskv_gen_new(f->gen);
	rebase(f, s);
	return f;
}

int
fsfile_get(struct fsfile_tab *t, const char *path, int flags,
           struct fsfile **out)
{
	struct fskv_file *s = NULL;
	struct fsfile *f;
	int rc;

	pthread_mutex_lock(&t->mu);
	f = tab_lookup_locked(t, path);
	if (f) {
		f->refs++;
		if (flags & FSFILE_HANDLE)
			f->handles++;
	}
	pthread_mutex_unlock(&t->mu);
	if (f) {
		if (!(flags & FSFILE_FRESH))
			goto found;
		pthread_mutex_lock(&f->mu);
		rc = 0;
		if (!f->cdirty && !f->adirty &&
		    (rc = fskv_file_get(t->kv, path, FSKV_FRESH, &s)) == 0) {
			if (s->nlive == 0) {
				fskv_file_unref(s);
				rc = -ENOENT;
			} else {
				pc_clear(f, false);
				rebase(f, s);
			}
		}
		pthread_mutex_unlock(&f->mu);
		if (rc != 0) {
			if (flags & FSFILE_HANDLE)
				fsfile_close(f);
			else
				fsfile_put(f);
			return rc;
		}
		goto found;
	}
	rc = fskv_file_get(t->kv, path, flags & FSFILE_FRESH ? FSKV_FRESH : 0,
	                   &s);
	if (rc != 0)
		return rc;
	if (s->nlive == 0) {
		fskv_file_unref(s);
		return -ENOENT;
	}
	if (!(f = file_new(t, path, s))) {
		fskv_file_unref(s);
		return -ENOMEM;
	}
	pthread_mutex_lock(&t->mu);
	struct fsfile *other = tab_lookup_locked(t, path);
	if (other) {
		/* Another thread opened it meanwhile: use that one. */
		other->refs++;
		if (flags & FSFILE_HANDLE)
			other->handles++;
		pthread_mutex_unlock(&t->mu);
		file_free(f);
		f = other;
		goto found;
	}
	if (flags & FSFILE_HANDLE)
		f->handles++;
	tab_insert_locked(t, f);
	pthread_mutex_unlock(&t->mu);
found:
	*out = f;
	return 0;
}

int
fsfile_create(struct fsfile_tab *t, const char *path, uint32_t mode,
              uint32_t uid, uint32_t gid, struct fsfile **out)
{
	struct fskv_file *s;
	struct fsfile *f;
	/* The first put is blind: no read of what the store holds at path.
	 * A tombstone there stays a (harmless) sibling until the next write
	 * with a read context; a live version nobody knew of shows as a
	 * sibling instead of being overwritten unseen. */
	int rc = fskv_file_empty(&s);
	if (rc != 0)
		return rc;

	pthread_mutex_lock(&t->mu);
	f = tab_lookup_locked(t, path);
	if (f) {
		f->refs++;
		f->handles++;
	}
	pthread_mutex_unlock(&t->mu);
	if (f) {
		fskv_file_unref(s);
	} else {
		if (!(f = file_new(t, path, s))) {
			fskv_file_unref(s);
			return -ENOMEM;
		}
		f->handles = 1;
		pthread_mutex_lock(&t->mu);
		tab_insert_locked(t, f);
		pthread_mutex_unlock(&t->mu);
	}
	pthread_mutex_lock(&f->mu);
	struct timespec now = now_ts();
	fsobj_attr_fini(&f->attr);
	f->attr.mode = mode;
	f->attr.uid = uid;
	f->attr.gid = gid;
	f->attr.atime = f->attr.mtime = f->attr.ctime = now;
	if ((rc = truncate_locked(f, 0)) == 0)
		f->cdirty = true;
	pthread_mutex_unlock(&f->mu);
	if (rc != 0) {
		fsfile_close(f);
		return rc;
	}
	*out = f;
	return 0;
}

struct fsfile *
fsfile_find(struct fsfile_tab *t, const char *path)
{
	pthread_mutex_lock(&t->mu);
	struct fsfile *f = tab_lookup_locked(t, path);
	if (f)
		f->refs++;
	pthread_mutex_unlock(&t->mu);
	return f;
}

/*
 * Dropping the last reference flushes while the file is still in the table,
 * so a rename or open that comes meanwhile finds it (and waits on its
 * mutex) instead of reading the store before the flush landed: the kernel
 * sends RELEASE after close() returned.  Someone may take a new reference
 * during that flush; the last of the closers frees.
 */
static void
file_unref(struct fsfile *f, bool handle)
{
	struct fsfile_tab *t = f->t;
	pthread_mutex_lock(&t->mu);
	if (handle)
		f->handles--;
	bool last = --f->refs == 0;
	if (last)
		f->closers++;
	pthread_mutex_unlock(&t->mu);
	if (!last)
		return;
	pthread_mutex_lock(&f->mu);
	if (flush_locked(f) != 0)
		LOG_ERROR("%s: changes lost: the last flush failed", f->path);
	pthread_mutex_unlock(&f->mu);
	pthread_mutex_lock(&t->mu);
	bool done = --f->closers == 0 && f->refs == 0;
	if (done)
		tab_remove_locked(t, f);
	pthread_mutex_unlock(&t->mu);
	if (done)
		file_free(f);
}

void
fsfile_put(struct fsfile *f)
{
	if (f)
		file_unref(f, false);
}

void
fsfile_close(struct fsfile *f)
{
	if (f)
		file_unref(f, true);
}

bool
fsfile_is_open(struct fsfile *f)
{
	pthread_mutex_lock(&f->t->mu);
	bool open = f->handles > 0;
	pthread_mutex_unlock(&f->t->mu);
	return open;
}

/* ---- attributes ---- */

static void
stat_of(const struct fsobj_attr *a, uint64_t size, uint32_t blksize,
        struct stat *st)
{
	memset(st, 0, sizeof(*st));
	st->st_mode = a->mode;
	st->st_nlink = 1;
	st->st_uid = a->uid;
	st->st_gid = a->gid;
	st->st_size = (off_t)size;
	st->st_blocks = (blkcnt_t)((size + 511) / 512);
	st->st_blksize = (blksize_t)blksize;
	st->st_atim = a->atime;
	st->st_mtim = a->mtime;
	st->st_ctim = a->ctime;
}

void
fsfile_stat(struct fsfile *f, struct stat *st)
{
	pthread_mutex_lock(&f->mu);
	stat_of(&f->attr, f->size, f->cs, st);
	pthread_mutex_unlock(&f->mu);
}

void
fsfile_stat_version(const struct fskv_file *s, int i, struct stat *st)
{
	const struct fsobj_file *v = &s->f[i];
	stat_of(&v->a, v->size,
	        v->layout == FSOBJ_CHUNKED ? v->chunk_size : 4096, st);
	st->st_mode &= ~(mode_t)0222;
}

void
fsfile_chmod(struct fsfile *f, uint32_t mode)
{
	pthread_mutex_lock(&f->mu);
	f->attr.mode = (f->attr.mode & S_IFMT) | (mode & 07777);
	f->attr.ctime = now_ts();
	f->adirty = true;
	pthread_mutex_unlock(&f->mu);
}

void
fsfile_chown(struct fsfile *f, uint32_t uid, uint32_t gid)
{
	pthread_mutex_lock(&f->mu);
	if (uid != (uint32_t)-1)
		f->attr.uid = uid;
	if (gid != (uint32_t)-1)
		f->attr.gid = gid;
	f->attr.ctime = now_ts();
	f->adirty = true;
	pthread_mutex_unlock(&f->mu);
}

void
fsfile_utimens(struct fsfile *f, const struct timespec tv[2])
{
	struct timespec now = now_ts();
	pthread_mutex_lock(&f->mu);
	for (int i = 0; i < 2; i++) {
		struct timespec *dst =
		    i == 0 ? &f->attr.atime : &f->attr.mtime;
		if (tv[i].tv_nsec == UTIME_OMIT)
			continue;
		*dst = tv[i].tv_nsec == UTIME_NOW ? now : tv[i];
	}
	f->attr.ctime = now;
	f->adirty = true;
	pthread_mutex_unlock(&f->mu);
}

int
fsfile_readlink(struct fsfile *f, char *buf, size_t cap)
{
	int rc = 0;
	pthread_mutex_lock(&f->mu);
	if (!S_ISLNK(f->attr.mode)) {
		rc = -EINVAL;
	} else if (cap > 0) {
		size_t n = (size_t)min64(f->size, cap - 1);
		rc = read_locked(f, buf, n, 0);
		if (rc >= 0) {
			buf[rc] = '\0';
			rc = 0;
		}
	}
	pthread_mutex_unlock(&f->mu);
	return rc;
}

int
fsfile_getxattr(struct fsfile *f, const char *name, char *buf, size_t n)
{
	int rc;
	pthread_mutex_lock(&f->mu);
	int i = fsobj_xattr_find(&f->attr, name);
	if (i < 0) {
		rc = -ENODATA;
	} else {
		const struct fsobj_xattr *x = &f->attr.xattr[i];
		rc = (int)x->len;
		if (n > 0 && n < x->len)
			rc = -ERANGE;
		else if (n > 0 && x->len > 0)
			memcpy(buf, x->value, x->len);
	}
	pthread_mutex_unlock(&f->mu);
	return rc;
}

int
fsfile_setxattr(struct fsfile *f, const char *name, const char *val, size_t n,
                int flags)
{
	pthread_mutex_lock(&f->mu);
	int rc = fsobj_xattr_set(&f->attr, name, val, n, flags);
	if (rc == 0) {
		f->attr.ctime = now_ts();
		f->adirty = true;
	}
	pthread_mutex_unlock(&f->mu);
	return rc;
}

int
fsfile_removexattr(struct fsfile *f, const char *name)
{
	pthread_mutex_lock(&f->mu);
	int rc = fsobj_xattr_remove(&f->attr, name);
	if (rc == 0) {
		f->attr.ctime = now_ts();
		f->adirty = true;
	}
	pthread_mutex_unlock(&f->mu);
	return rc;
}

int
fsfile_listxattr(struct fsfile *f, char *buf, size_t n)
{
	pthread_mutex_lock(&f->mu);
	int rc = fsobj_xattr_list(&f->attr, buf, n);
	pthread_mutex_unlock(&f->mu);
	return rc;
}

uint32_t
fsfile_siblings(struct fsfile *f)
{
	pthread_mutex_lock(&f->mu);
	uint32_t n = f->base->nlive;
	pthread_mutex_unlock(&f->mu);
	return n;
}

int
fsfile_clock_text(struct fsfile *f, char *buf, size_t n)
{
	struct fskv_file *s;
	struct vclock c;
	int rc = fskv_file_get(f->t->kv, f->path, FSKV_FRESH, &s);
	if (rc != 0)
		return rc;
	vset_context(&s->vs, &c);
	fskv_file_unref(s);
	return fsobj_clock_text(&c, buf, n);
}

/* ---- siblings ---- */

/* Copy version v to path to under ctx: its chunks go to a new generation
 * (a chunk belongs to one version only). */
static int
copy_version(struct fskv *kv, const struct fsobj_file *v, const char *to,
             const struct dyn_ctx *ctx)
{
	struct fsobj_file nf;
	uint8_t *buf = NULL;
	uint32_t done = 0;
	int rc;

	fsobj_file_init(&nf);
	if ((rc = fsobj_file_copy(&nf, v)) != 0)
		goto out;
	if (nf.layout == FSOBJ_CHUNKED) {
		fskv_gen_new(nf.gen);
		rc = -ENOMEM;
		if (!(buf = mem_alloc(v->chunk_size)))
			goto out;
		for (; done < nf.nchunks; done++) {
			struct fsobj_chunk *c = &nf.chunks[done];
			size_t len = 0;
			if (!c->ctx)
				continue;
			mem_free(c->ctx);
			c->ctx = NULL;
			c->ctx_len = 0;
			if ((rc = fskv_chunk_get(kv, v->gen, done, buf,
			                         v->chunk_size, &len)) != 0 ||
			    (rc = fskv_chunk_put(kv, nf.gen, done, NULL, 0,
			                         buf, len, &c->ctx,
			                         &c->ctx_len)) != 0)
				goto out;
		}
	}
	rc = fskv_file_put(kv, to, ctx, ctx ? 1 : 0, &nf, NULL);
out:
	if (rc != 0 && nf.layout == FSOBJ_CHUNKED) {
		nf.nchunks = done; /* release what this copy wrote */
		fskv_chunks_release(kv, &nf);
		nf.nchunks = fsobj_nchunks(nf.size, nf.chunk_size);
	}
	mem_free(buf);
	fsobj_file_fini(&nf);
	return rc;
}

/* Re-read f after a change to its versions. */
static void
refresh_locked(struct fsfile *f)
{
	struct fskv_file *s;
	if (fskv_file_get(f->t->kv, f->path, FSKV_FRESH, &s) == 0) {
		pc_clear(f, false);
		rebase(f, s);
	}
}

static int
sibling_index(struct fsfile *f, uint32_t k, int *vi)
{
	if (f->cdirty || f->adirty)
		return -EBUSY;
	if (f->base->nlive < 2)
		return -ENOENT;
	*vi = fsobj_live_nth(&f->base->vs, k);
	return *vi < 0 ? -ENOENT : 0;
}

/* The live versions of f's base but drop, in dot order, except that the
 * newest of them comes last (it is put last, so it stays the newest). */
static int
keep_list(struct fsfile *f, int drop, struct keep **out, int *n)
{
	const struct fskv_file *b = f->base;
	struct keep *k = mem_calloc(b->vs.n ? b->vs.n : 1, sizeof(*k));
	int newest = -1;
	if (!k)
		return -ENOMEM;
	*n = 0;
	for (uint32_t i = 0; i < b->vs.n; i++) {
		if (b->vs.v[i].tombstone || (int)i == drop)
			continue;
		if (newest < 0 || b->vs.v[i].ts_ms >= b->vs.v[newest].ts_ms)
			newest = (int)i;
	}
	for (uint32_t i = 0; i < b->vs.n; i++) {
		if (b->vs.v[i].tombstone || (int)i == drop || (int)i == newest)
			continue;
		k[(*n)++] = (struct keep){&b->f[i], true};
	}
	if (newest >= 0)
		k[(*n)++] = (struct keep){&b->f[newest], true};
	*out = k;
	return 0;
}

/*
 * Replace the versions f read by k[0..n), in that order.  Each is put
 * blind (no context: it supersedes nothing, so they stay siblings of each
 * other and of what was read), then one tombstone under the merged context
 * of what was read removes the old ones.  (A context of one version cannot
 * do this: it is a clock, and the clock of a later sibling from the same
 * coordinator covers the earlier ones too.)  If a step fails, what was read
 * is still there; at worst a duplicate sibling shows.
 */
static int
rewrite_locked(struct fsfile *f, const struct keep *k, int n)
{
	struct fskv *kv = f->t->kv;
	int rc = 0;
	for (int i = 0; i < n && rc == 0; i++)
		rc = k[i].copy
		         ? copy_version(kv, k[i].v, f->path, NULL)
		         : fskv_file_put(kv, f->path, NULL, 0, k[i].v, NULL);
	if (rc == 0)
		rc = fskv_file_delete(kv, f->path, &f->base->ctx, 1);
	if (rc != 0) {
		fskv_file_forget(kv, f->path);
		return rc;
	}
	release_versions(kv, f->base, -1);
	refresh_locked(f);
	return 0;
}

int
fsfile_sibling_drop(struct fsfile *f, uint32_t k)
{
	struct keep *keep = NULL;
	int vi, n = 0;
	pthread_mutex_lock(&f->mu);
	int rc = sibling_index(f, k, &vi);
	if (rc == 0)
		rc = keep_list(f, vi, &keep, &n);
	if (rc == 0)
		rc = rewrite_locked(f, keep, n);
	mem_free(keep);
	pthread_mutex_unlock(&f->mu);
	return rc;
}

int
fsfile_sibling_pick(struct fsfile *f, uint32_t k)
{
	int vi;
	pthread_mutex_lock(&f->mu);
	int rc = sibling_index(f, k, &vi);
	if (rc == 0) {
		struct keep one = {&f->base->f[vi], true};
		rc = rewrite_locked(f, &one, 1);
	}
	pthread_mutex_unlock(&f->mu);
	return rc;
}

/* What path to holds is about to be superseded: release its chunks, or
 * hand them to its open handles (which keep reading it) for later. */
static void
supersede(struct fsfile_tab *t, const char *path, struct fskv_file *old,
          struct fsfile *except)
{
	struct fsfile *f = fsfile_find(t, path);
	if (f && f != except) {
		pthread_mutex_lock(&f->mu);
		struct fskv_file **d =
		    mem_realloc(f->defer, (f->ndefer + 1) * sizeof(*d));
		if (d) {
			f->defer = d;
			f->defer[f->ndefer++] = old;
			old = NULL;
		}
		f->unlinked = true;
		pthread_mutex_unlock(&f->mu);
		pthread_mutex_lock(&t->mu);
		tab_remove_locked(t, f);
		pthread_mutex_unlock(&t->mu);
	}
	if (f)
		fsfile_put(f);
	if (old) {
		release_versions(t->kv, old, -1);
		fskv_file_unref(old);
	}
}

int
fsfile_sibling_move(struct fsfile *f, uint32_t k, const char *to)
{
	struct fskv *kv = f->t->kv;
	struct fskv_file *st = NULL;
	int vi;
	pthread_mutex_lock(&f->mu);
	int rc = sibling_index(f, k, &vi);
	if (rc == 0)
		rc = fskv_file_get(kv, to, FSKV_FRESH, &st);
	if (rc == 0)
		rc = copy_version(kv, &f->base->f[vi], to, &st->ctx);
	if (rc == 0) {
		struct keep *keep = NULL;
		int n = 0;
		if ((rc = keep_list(f, vi, &keep, &n)) == 0)
			rc = rewrite_locked(f, keep, n);
		mem_free(keep);
	}
	pthread_mutex_unlock(&f->mu);
	if (rc == 0) {
		supersede(f->t, to, st, f);
		st = NULL;
	}
	fskv_file_unref(st);
	return rc;
}

/* ---- namespace ---- */

int
fsfile_unlink(struct fsfile_tab *t, const char *path)
{
	struct fskv_file *s;
	int rc = fskv_file_get(t->kv, path, FSKV_FRESH, &s);
	if (rc != 0)
		return rc;
	if (s->nlive == 0) {
		/* Maybe created here and not written yet. */
		struct fsfile *f = fsfile_find(t, path);
		if (!f) {
			fskv_file_unref(s);
			return -ENOENT;
		}
		fsfile_put(f);
	}
	if (s->vs.n > 0 &&
	    (rc = fskv_file_delete(t->kv, path, &s->ctx, 1)) != 0) {
		fskv_file_unref(s);
		return rc;
	}
	supersede(t, path, s, NULL);
	return 0;
}

int
fsfile_move(struct fsfile_tab *t, const char *from, const char *to)
{
	struct fskv *kv = t->kv;
	struct fskv_file *sf = NULL, *st = NULL;
	struct fsfile *ff = fsfile_find(t, from);
	int rc = 0;

	if (ff) {
		pthread_mutex_lock(&ff->mu);
		rc = flush_locked(ff);
	}
	if (rc == 0)
		rc = fskv_file_get(kv, from, FSKV_FRESH, &sf);
	if (rc == 0 && sf->nlive == 0)
		rc = -ENOENT;
	if (rc == 0)
		rc = fskv_file_get(kv, to, FSKV_FRESH, &st);
	/* Every live version, in order, each over what `to` held: they stay
	 * siblings of each other. */
	for (uint32_t i = 0; rc == 0 && i < sf->vs.n; i++)
		if (!sf->vs.v[i].tombstone)
			rc = copy_version(kv, &sf->f[i], to, &st->ctx);
	if (rc == 0)
		rc = fskv_file_delete(kv, from, &sf->ctx, 1);
	if (rc == 0)
		release_versions(kv, sf, -1);
	bool moved = false;
	if (ff) {
		if (rc == 0) {
			/* The open file follows the move. */
			char *np = mem_dup(to, strlen(to) + 1);
			pthread_mutex_lock(&t->mu);
			tab_remove_locked(t, ff);
			if (np) {
				mem_free(ff->path);
				ff->path = np;
				moved = true;
			}
			pthread_mutex_unlock(&t->mu);
			if (moved)
				refresh_locked(ff);
			else
				ff->unlinked = true;
		}
		pthread_mutex_unlock(&ff->mu);
	}
	if (rc == 0) {
		supersede(t, to, st, ff);
		st = NULL;
		if (moved) {
			pthread_mutex_lock(&t->mu);
			if (!tab_lookup_locked(t, to))
				tab_insert_locked(t, ff);
			pthread_mutex_unlock(&t->mu);
		}
	}
	fsfile_put(ff);
	fskv_file_unref(sf);
	fskv_file_unref(st);
	return rc;
}

/* ---- views ---- */

int
fsview_open(struct fsfile_tab *t, const char *path, uint32_t k,
            struct fsview **out)
{
	struct fskv_file *s;
	int rc = fskv_file_get(t->kv, path, FSKV_FRESH, &s);
	if (rc != 0)
		return rc;
	int vi = s->nlive >= 2 ? fsobj_live_nth(&s->vs, k) : -1;
	struct fsview *v = vi >= 0 ? mem_calloc(1, sizeof(*v)) : NULL;
	if (!v) {
		fskv_file_unref(s);
		return vi < 0 ? -ENOENT : -ENOMEM;
	}
	pthread_mutex_init(&v->mu, NULL);
	v->s = s;
	fsread_init(&v->rd, t->pool);
	fsread_set(&v->rd, &s->f[vi]);
	*out = v;
	return 0;
}

int
fsview_read(struct fsview *v, char *buf, size_t size, uint64_t off)
{
	pthread_mutex_lock(&v->mu);
	uint64_t fsize = v->rd.v->size;
	int rc = 0;
	if (off < fsize) {
		size = (size_t)min64(size, fsize - off);
		rc = fsread_read(&v->rd, off, (uint8_t *)buf, size);
		if (rc == 0)
			rc = (int)size;
	}
	pthread_mutex_unlock(&v->mu);
	return rc;
}

void
fsview_close(struct fsview *v)
{
	if (!v)
		return;
	fsread_fini(&v->rd);
	fskv_file_unref(v->s);
	pthread_mutex_destroy(&v->mu);
	mem_free(v);
}
