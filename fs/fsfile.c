/*
 * fsfile — open files and every write of a file object.
 *
 * An open file's content is a chunk map (struct fmap): its pages, loaded
 * when first touched, and per chunk either a stored blob (shared with the
 * version it came from), a hole, or a buffer in memory.  Buffers are dirty
 * until stored: a chunk that fills up is handed to the cache's workers at
 * once (several puts in flight), and so are the others when a file holds
 * more than DIRTY_MAX in memory.  flush waits for the puts, writes the pages
 * that changed, then the object naming them:
 *
 *   write --> buffer --(full, or over budget)--> blob put (worker)
 *   flush: remaining buffers --> puts; changed pages --> 'R' blobs;
 *          file object (names the pages) --> put under the read context
 *
 * Nothing is ever deleted here: blobs are shared by every version that has
 * the same bytes, and the nodes' collector reclaims those no version names.
 * The one rule that keeps it safe: a file object names only blobs this
 * mount stored or saw named by a stored object less than half the
 * collector's grace period ago (see stale_refs).
 */
#include "fsfile.h"

#include <errno.h>
#include <pthread.h>
#include <string.h>
#include <sys/xattr.h>
#include <time.h>

#include <openssl/evp.h>

#include "err.h"
#include "fscache.h"
#include "log.h"
#include "mem.h"

#define NBUCKETS     256
#define DIRTY_MAX    (64u << 20) /* bytes of buffers per open file */
#define PUTS_MAX     32          /* puts in flight per open file */
#define AHEAD        16          /* chunks read ahead */
#define IO_THREADS   16          /* the cache's workers */
#define PC           FSOBJ_PAGE_CHUNKS

enum { CE_CLEAN, CE_DIRTY, CE_PUTTING };

/* One chunk of an open file. */
struct cent {
	struct fsobj_ref ref; /* stored content (none: a hole, zeros) */
	uint32_t rlen;        /* its length */
	uint8_t *buf;         /* in memory (chunk_size bytes), or NULL */
	uint32_t len;         /* bytes of buf that count; zeros past it */
	uint32_t fill;        /* bytes written in one run from the start:
	                         at chunk_size, a sequential writer is done */
	uint8_t st;           /* CE_*: buf differs from ref (DIRTY), or is
	                         being stored (PUTTING) */
};

struct fpage {
	struct fsobj_ref ref; /* the page as stored (none: all holes) */
	uint64_t stored;      /* bytes of its chunk blobs, as stored */
	struct cent *e;       /* PC entries once loaded, else NULL */
	bool dirty;           /* e differs from ref */
};

/* The chunk map of a file: chunk i is entry i % PC of page i / PC. */
struct fmap {
	uint32_t cs;
	uint32_t npages;
	struct fpage *pg;
	uint64_t ahead; /* read-ahead reached up to this chunk */
	uint64_t last;  /* last chunk read */
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
	pthread_cond_t cv;  /* a put ended */
	bool unlinked;
	struct fskv_file *base; /* versions read or last written */
	int src;                /* the version shown, -1: none */
	uint64_t seen_ms;       /* when base's blobs were last seen stored */
	struct fsobj_attr attr;
	uint64_t size;
	bool cdirty; /* content changed */
	bool adirty; /* attributes changed */
	struct fmap m;
	uint32_t nbuf;  /* buffers in memory */
	uint32_t nputs; /* puts in flight */
	int put_rc;     /* first failed put since the last flush */
	uint64_t first_put_ms; /* of the oldest chunk stored since the last
	                          flush (0: none) */
	/* One change at a time (a write, truncate, flush, attribute change):
	 * they let go of mu while they wait for the cluster, and a change
	 * slipping into a flush would be dropped by its rebase.  Held by
	 * busy_by, busy deep (a change may run another inside). */
	int busy;
	pthread_t busy_by;
};

struct fsfile_tab {
	struct fskv *kv;
	struct fscache *cache;
	uint64_t grace_ms; /* the collector's (the smallest the nodes said) */
	pthread_mutex_t mu;
	struct fsfile *b[NBUCKETS];
	/* The aging flusher (see age_main): */
	pthread_t ager;
	bool ager_started;
	bool stopping; /* under mu */
	pthread_cond_t stop;
};

struct fsview {
	pthread_mutex_t mu;
	struct fsfile_tab *t;
	struct fskv_file *s;
	const struct fsobj_file *v;
	struct fmap m;
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

/* ---- the chunk map ---- */

static void
fmap_init(struct fmap *m, uint32_t cs)
{
	memset(m, 0, sizeof(*m));
	m->cs = cs;
	m->last = UINT64_MAX;
}

static void
page_drop(struct fpage *p)
{
	for (uint32_t i = 0; p->e && i < PC; i++)
		mem_free(p->e[i].buf);
	mem_free(p->e);
	memset(p, 0, sizeof(*p));
}

/* Pages past npages go (their puts must have ended); new ones are
 * holes. */
static int
fmap_resize(struct fmap *m, uint32_t npages)
{
	for (uint32_t i = npages; i < m->npages; i++)
		page_drop(&m->pg[i]);
	if (npages > m->npages) {
		struct fpage *pg = mem_realloc(m->pg, npages * sizeof(*pg));
		if (!pg)
			return -ENOMEM;
		memset(pg + m->npages, 0,
		       (npages - m->npages) * sizeof(*pg));
		m->pg = pg;
	}
	m->npages = npages;
	if (npages == 0) {
		mem_free(m->pg);
		m->pg = NULL;
	}
	return 0;
}

static void
fmap_fini(struct fmap *m)
{
	fmap_resize(m, 0);
	fmap_init(m, m->cs);
}

/* The map of a stored version: its pages, not loaded.  An inline version
 * is chunk 0 in memory (dirty: it is no blob yet). */
static int
fmap_from(struct fmap *m, const struct fsobj_file *v, uint32_t cs)
{
	fmap_fini(m);
	m->cs = v && v->layout == FSOBJ_CHUNKED ? v->chunk_size : cs;
	if (!v)
		return 0;
	int rc = fmap_resize(m, fsobj_npages(v->size, m->cs));
	if (rc != 0 || v->layout == FSOBJ_CHUNKED) {
		for (uint32_t i = 0; rc == 0 && i < m->npages; i++) {
			m->pg[i].ref = v->pages[i];
			m->pg[i].stored = v->pstored[i];
		}
		return rc;
	}
	if (v->size == 0)
		return 0;
	struct fpage *p = &m->pg[0];
	if (!(p->e = mem_calloc(PC, sizeof(*p->e))) ||
	    !(p->e[0].buf = mem_alloc(m->cs))) {
		fmap_fini(m);
		return -ENOMEM;
	}
	memcpy(p->e[0].buf, v->data, (size_t)v->size);
	memset(p->e[0].buf + v->size, 0, m->cs - (size_t)v->size);
	p->e[0].len = (uint32_t)v->size;
	p->e[0].st = CE_DIRTY;
	p->dirty = true;
	return 0;
}

/* Load page i (mu held; released while fetching). */
static int
fmap_load(struct fmap *m, struct fscache *c, pthread_mutex_t *mu, uint32_t i)
{
	struct fsobj_page pg;
	struct fsblob *b = NULL;
	struct cent *e;
	int rc = 0;

	fsobj_page_init(&pg);
	while (i < m->npages && !m->pg[i].e) {
		struct fsobj_ref ref = m->pg[i].ref;
		if (!fsobj_ref_none(&ref)) {
			pthread_mutex_unlock(mu);
			rc = fscache_get(c, ref.key, FSOBJ_PAGE_MAX, &b);
			if (rc == 0)
				rc = fsobj_page_decode(b->data, b->len, &pg);
			fsblob_unref(c, b);
			pthread_mutex_lock(mu);
			if (rc != 0)
				break;
			if (i >= m->npages || m->pg[i].e ||
			    memcmp(&m->pg[i].ref, &ref, sizeof(ref)) != 0) {
				fsobj_page_fini(&pg);
				continue; /* changed meanwhile: look again */
			}
		}
		if (!(e = mem_calloc(PC, sizeof(*e)))) {
			rc = -ENOMEM;
			break;
		}
		for (uint32_t k = 0; k < pg.n; k++) {
			e[k].ref = pg.ref[k];
			e[k].rlen = pg.len[k];
		}
		m->pg[i].e = e;
	}
	fsobj_page_fini(&pg);
	if (rc != 0)
		LOG_WARN("loading a chunk list page: %s", dyn_strerror(rc));
	return rc;
}

/* Entry idx, its page loaded (mu held; released while fetching). */
static int
fmap_entry(struct fmap *m, struct fscache *c, pthread_mutex_t *mu,
           uint64_t idx, struct cent **out)
{
	uint32_t p = (uint32_t)(idx / PC);
	if (p >= m->npages)
		return -EINVAL;
	int rc = fmap_load(m, c, mu, p);
	if (rc == 0)
		*out = &m->pg[p].e[idx % PC];
	return rc;
}

/* Start fetching the chunks after idx that a sequential reader wants
 * next (only in pages already loaded: no waiting here).  True when the
 * reader is sequential. */
static bool
fmap_ahead(struct fmap *m, struct fscache *c, uint64_t idx, uint64_t nchunks)
{
	bool seq = m->last != UINT64_MAX && (idx == m->last || idx == m->last + 1);
	m->last = idx;
	if (!seq)
		return false;
	uint64_t from = m->ahead > idx ? m->ahead : idx + 1;
	uint64_t to = min64(idx + AHEAD, nchunks);
	for (uint64_t j = from; j < to; j++) {
		struct fpage *p = &m->pg[j / PC];
		if (!p->e)
			break;
		struct cent *e = &p->e[j % PC];
		if (!e->buf && !fsobj_ref_none(&e->ref))
			fscache_prefetch(c, e->ref.key, m->cs);
		m->ahead = j + 1;
	}
	return true;
}

/*
 * Bytes [off, off + len) of a file of size bytes (the caller clipped len)
 * into out.  mu is held; it is released while a chunk is fetched, and the
 * entry is looked at again after, since a writer may have changed it.
 */
static int
fmap_read(struct fmap *m, struct fscache *c, pthread_mutex_t *mu,
          uint64_t size, uint64_t off, uint8_t *out, size_t len)
{
	uint64_t nchunks = fsobj_nchunks(size, m->cs);
	size_t done = 0;
	while (done < len) {
		uint64_t pos = off + done;
		uint64_t idx = pos / m->cs;
		size_t in = (size_t)(pos % m->cs);
		size_t n = (size_t)min64(len - done, m->cs - in);
		struct cent *e;
		int rc = fmap_entry(m, c, mu, idx, &e);
		if (rc != 0)
			return rc;
		bool seq = fmap_ahead(m, c, idx, nchunks);
		const uint8_t *src = e->buf;
		size_t have = e->len;
		struct fsblob *b = NULL;
		if (!src && !fsobj_ref_none(&e->ref)) {
			struct fsobj_ref ref = e->ref;
			pthread_mutex_unlock(mu);
			rc = fscache_get(c, ref.key, m->cs, &b);
			pthread_mutex_lock(mu);
			if (rc != 0)
				return rc;
			if ((rc = fmap_entry(m, c, mu, idx, &e)) != 0 ||
			    e->buf || memcmp(&e->ref, &ref, sizeof(ref)) != 0) {
				fsblob_unref(c, b);
				if (rc != 0)
					return rc;
				continue; /* written meanwhile: again */
			}
			src = b->data;
			have = b->len;
		}
		have = in < have ? min64(have - in, n) : 0;
		if (have > 0)
			memcpy(out + done, src + in, have);
		memset(out + done + have, 0, n - have);
		/* A sequential reader that read a chunk to its end is done
		 * with it (and the kernel's page cache has it): the cache lets
		 * it go now, so a stream recycles a little memory instead of
		 * filling the cache with new pages, each a page fault. */
		if (b && seq && (in + n == m->cs || pos + n >= size))
			fscache_done(c, b);
		else
			fsblob_unref(c, b);
		done += n;
	}
	return 0;
}

/* ---- buffers and puts ---- */

struct put_job {
	struct fsfile *f;
	struct cent *e;
};

static void
put_done(void *arg, int rc, const uint8_t key[BLOB_KEY_LEN])
{
	struct put_job *j = arg;
	struct fsfile *f = j->f;
	struct cent *e = j->e;
	mem_free(j);
	pthread_mutex_lock(&f->mu);
	if (rc == 0) {
		memcpy(e->ref.key, key, BLOB_KEY_LEN);
		e->rlen = e->len;
		mem_free(e->buf);
		e->buf = NULL;
		e->len = 0;
		e->st = CE_CLEAN;
		f->nbuf--;
	} else {
		e->st = CE_DIRTY;
		if (f->put_rc == 0)
			f->put_rc = rc;
	}
	f->nputs--;
	pthread_cond_broadcast(&f->cv);
	pthread_mutex_unlock(&f->mu);
}

static bool
all_zero(const uint8_t *p, size_t n)
{
	return n == 0 || (p[0] == 0 && memcmp(p, p + 1, n - 1) == 0);
}

/* Hand chunk idx's dirty buffer to the workers (f->mu held; waits while
 * too many are in flight, so it looks the entry up again after).  A
 * buffer of zeros becomes a hole at once: sparse files stay sparse.
 * keep: the content cache keeps a copy (fscache_put_async). */
static int
cent_store(struct fsfile *f, uint64_t idx, bool keep)
{
	struct cent *e;
	for (;;) {
		uint32_t p = (uint32_t)(idx / PC);
		if (p >= f->m.npages || !f->m.pg[p].e)
			return 0;
		e = &f->m.pg[p].e[idx % PC];
		if (e->st != CE_DIRTY)
			return 0;
		if (all_zero(e->buf, e->len)) {
			memset(&e->ref, 0, sizeof(e->ref));
			e->rlen = 0;
			mem_free(e->buf);
			e->buf = NULL;
			e->len = 0;
			e->st = CE_CLEAN;
			f->nbuf--;
			return 0;
		}
		if (f->nputs < PUTS_MAX)
			break;
		pthread_cond_wait(&f->cv, &f->mu);
	}
	struct put_job *j = mem_alloc(sizeof(*j));
	if (!j)
		return -ENOMEM;
	*j = (struct put_job){f, e};
	e->st = CE_PUTTING;
	f->nputs++;
	if (f->first_put_ms == 0) /* read by age_collect, unlocked */
		__atomic_store_n(&f->first_put_ms, fskv_now_ms(),
		                 __ATOMIC_RELAXED);
	int rc = fscache_put_async(f->t->cache, BLOB_DATA, e->buf, e->len,
	                           keep, put_done, j);
	if (rc != 0) {
		mem_free(j);
		e->st = CE_DIRTY;
		f->nputs--;
	}
	return rc;
}

/* Wait until no put is in flight. */
static void
puts_idle(struct fsfile *f)
{
	while (f->nputs > 0)
		pthread_cond_wait(&f->cv, &f->mu);
}

/* The same; the first failure since the last call. */
static int
puts_wait(struct fsfile *f)
{
	puts_idle(f);
	int rc = f->put_rc;
	f->put_rc = 0;
	return rc;
}

/* Hand every dirty buffer to the workers. */
static int
store_all(struct fsfile *f)
{
	for (uint32_t p = 0; p < f->m.npages; p++) {
		for (uint32_t i = 0; f->m.pg[p].e && i < PC; i++) {
			int rc = cent_store(f, (uint64_t)p * PC + i, true);
			if (rc != 0)
				return rc;
			if (p >= f->m.npages)
				return 0; /* cut meanwhile */
		}
	}
	return 0;
}

/* Entry idx in memory, ready to change (f->mu held). */
static int
cent_load(struct fsfile *f, uint64_t idx, bool whole, struct cent **out)
{
	struct fscache *c = f->t->cache;
	struct cent *e;
	int rc;
again:
	if ((rc = fmap_entry(&f->m, c, &f->mu, idx, &e)) != 0)
		return rc;
	if (e->st == CE_PUTTING) {
		pthread_cond_wait(&f->cv, &f->mu);
		goto again;
	}
	if (!e->buf) {
		uint8_t *buf = mem_alloc(f->m.cs);
		struct fsblob *b = NULL;
		struct fsobj_ref ref = e->ref;
		if (!buf)
			return -ENOMEM;
		if (!whole && !fsobj_ref_none(&ref)) {
			pthread_mutex_unlock(&f->mu);
			rc = fscache_get(c, ref.key, f->m.cs, &b);
			pthread_mutex_lock(&f->mu);
			if (rc != 0) {
				mem_free(buf);
				return rc;
			}
		}
		/* Look again: another thread may have loaded it. */
		if ((rc = fmap_entry(&f->m, c, &f->mu, idx, &e)) != 0 ||
		    e->buf || e->st != CE_CLEAN ||
		    memcmp(&e->ref, &ref, sizeof(ref)) != 0) {
			fsblob_unref(c, b);
			mem_free(buf);
			if (rc != 0)
				return rc;
			goto again;
		}
		size_t have = b ? b->len : 0;
		if (have)
			memcpy(buf, b->data, have);
		memset(buf + have, 0, f->m.cs - have);
		fsblob_unref(c, b);
		e->buf = buf;
		e->len = (uint32_t)have;
		e->fill = 0;
		f->nbuf++;
	}
	*out = e;
	return 0;
}

/* Begin and end a change of the open state (f->mu held). */
static void
change_begin(struct fsfile *f)
{
	while (f->busy > 0 && !pthread_equal(f->busy_by, pthread_self()))
		pthread_cond_wait(&f->cv, &f->mu);
	f->busy_by = pthread_self();
	f->busy++;
}

static void
change_end(struct fsfile *f)
{
	if (--f->busy == 0)
		pthread_cond_broadcast(&f->cv);
}

/* Mark e (of chunk idx) changed. */
static void
cent_dirty(struct fsfile *f, uint64_t idx, struct cent *e)
{
	e->st = CE_DIRTY;
	f->m.pg[idx / PC].dirty = true;
	f->cdirty = true;
}

/* ---- reading and writing ---- */

static int
read_locked(struct fsfile *f, char *buf, size_t size, uint64_t off)
{
	if (off >= f->size)
		return 0;
	size = (size_t)min64(size, f->size - off);
	int rc = fmap_read(&f->m, f->t->cache, &f->mu, f->size, off,
	                   (uint8_t *)buf, size);
	return rc != 0 ? rc : (int)size;
}

int
fsfile_read(struct fsfile *f, char *buf, size_t size, uint64_t off)
{
	pthread_mutex_lock(&f->mu);
	int rc = read_locked(f, buf, size, off);
	pthread_mutex_unlock(&f->mu);
	return rc;
}

/* Grow the map for a file of size bytes. */
static int
grow_locked(struct fsfile *f, uint64_t size)
{
	if (size > fsobj_file_max(f->m.cs))
		return -EFBIG;
	uint32_t np = fsobj_npages(size, f->m.cs);
	return np > f->m.npages ? fmap_resize(&f->m, np) : 0;
}

static int
do_write(struct fsfile *f, const char *buf, size_t size, uint64_t off)
{
	size_t done = 0;
	int rc = 0;
	uint32_t cs = f->m.cs;

	if (!S_ISREG(f->attr.mode))
		return -EINVAL;
	if (off > FSOBJ_FILE_MAX || size > FSOBJ_FILE_MAX - off ||
	    (rc = grow_locked(f, off + size)) != 0)
		return rc ? rc : -EFBIG;
	while (done < size) {
		uint64_t pos = off + done;
		uint64_t idx = pos / cs;
		size_t in = (size_t)(pos % cs);
		size_t n = (size_t)min64(size - done, cs - in);
		/* A write that covers the chunk up to its end or the file's
		 * end needs none of the old bytes. */
		bool whole = in == 0 && (n == cs || pos + n >= f->size);
		struct cent *e;
		if ((rc = cent_load(f, idx, whole, &e)) != 0)
			break;
		memcpy(e->buf + in, buf + done, n);
		if (in == e->fill)
			e->fill = (uint32_t)(in + n);
		if (whole && e->len > n)
			memset(e->buf + n, 0, e->len - n);
		if (whole || e->len < in + n)
			e->len = (uint32_t)(in + n);
		cent_dirty(f, idx, e);
		done += n;
		if (f->size < pos + n)
			f->size = pos + n;
		/* A chunk written through goes out now, so big files
		 * stream. */
		if ((e->fill == cs && (rc = cent_store(f, idx, false)) != 0) ||
		    ((uint64_t)f->nbuf * cs > DIRTY_MAX &&
		     (rc = store_all(f)) != 0))
			break;
	}
	if (done > 0) {
		f->attr.mtime = f->attr.ctime = now_ts();
		rc = (int)done;
	}
	return rc;
}

static int
write_locked(struct fsfile *f, const char *buf, size_t size, uint64_t off)
{
	change_begin(f);
	int rc = do_write(f, buf, size, off);
	change_end(f);
	return rc;
}

int
fsfile_write(struct fsfile *f, const char *buf, size_t size, uint64_t off)
{
	pthread_mutex_lock(&f->mu);
	int rc = write_locked(f, buf, size, off);
	pthread_mutex_unlock(&f->mu);
	return rc;
}

static int
do_truncate(struct fsfile *f, uint64_t size)
{
	uint32_t cs = f->m.cs;
	int rc;
	if (size > fsobj_file_max(cs))
		return -EFBIG;
	if (size < f->size) {
		/* Chunks past the end become holes, the last one is cut. */
		puts_idle(f);
		uint64_t nc = fsobj_nchunks(size, cs);
		uint32_t np = fsobj_npages(size, cs);
		for (uint32_t p = np; p < f->m.npages; p++) {
			struct fpage *pg = &f->m.pg[p];
			for (uint32_t i = 0; pg->e && i < PC; i++)
				f->nbuf -= pg->e[i].buf != NULL;
		}
		if ((rc = fmap_resize(&f->m, np)) != 0)
			return rc;
		if (np > 0 && nc % PC != 0) {
			struct cent *e;
			uint32_t p = np - 1;
			if ((rc = fmap_load(&f->m, f->t->cache, &f->mu, p)) != 0)
				return rc;
			for (uint32_t i = (uint32_t)(nc % PC); i < PC; i++) {
				e = &f->m.pg[p].e[i];
				if (!e->buf && fsobj_ref_none(&e->ref))
					continue;
				f->nbuf -= e->buf != NULL;
				mem_free(e->buf);
				memset(e, 0, sizeof(*e));
				f->m.pg[p].dirty = true;
			}
		}
		size_t in = (size_t)(size % cs);
		if (in > 0) {
			struct cent *e;
			uint64_t idx = size / cs;
			if ((rc = fmap_entry(&f->m, f->t->cache, &f->mu, idx,
			                     &e)) != 0)
				return rc;
			if ((e->buf && e->len > in) ||
			    (!e->buf && e->rlen > in)) {
				if ((rc = cent_load(f, idx, false, &e)) != 0)
					return rc;
				memset(e->buf + in, 0, e->len - in);
				e->len = (uint32_t)in;
				cent_dirty(f, idx, e);
			}
		}
	} else if ((rc = grow_locked(f, size)) != 0) {
		return rc;
	}
	if (size != f->size)
		f->cdirty = true;
	f->size = size;
	f->attr.mtime = f->attr.ctime = now_ts();
	return 0;
}

static int
truncate_locked(struct fsfile *f, uint64_t size)
{
	change_begin(f);
	int rc = do_truncate(f, size);
	change_end(f);
	return rc;
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
	change_begin(f);
	f->cdirty = true;
	change_end(f);
	pthread_mutex_unlock(&f->mu);
}

/* ---- copying ---- */

#define COPY_MAX (1u << 30)

/* What chunk idx of f holds, when it can be shared: stored (or a hole),
 * not in memory, and seen recently enough to be named again. */
static bool
share_of(struct fsfile *f, uint64_t idx, struct fsobj_ref *ref,
         uint32_t *rlen)
{
	struct cent *e;
	if (fskv_now_ms() - f->seen_ms >= f->t->grace_ms / 2 ||
	    fmap_entry(&f->m, f->t->cache, &f->mu, idx, &e) != 0 || e->buf)
		return false;
	*ref = e->ref;
	*rlen = e->rlen;
	return true;
}

/* Chunk idx of f becomes ref (n bytes of the file from there), if the
 * chunk's bytes past n are past f's end (so zeros either way). */
static int
do_share(struct fsfile *f, uint64_t idx, const struct fsobj_ref *ref,
         uint32_t rlen, uint64_t n)
{
	uint64_t pos = idx * f->m.cs;
	struct cent *e;
	int rc;
	if (n < f->m.cs && f->size > pos + n)
		return 1;
	if ((rc = grow_locked(f, pos + n)) != 0)
		return rc;
again:
	if ((rc = fmap_entry(&f->m, f->t->cache, &f->mu, idx, &e)) != 0)
		return rc;
	if (e->st == CE_PUTTING) {
		pthread_cond_wait(&f->cv, &f->mu);
		goto again;
	}
	if (e->buf) {
		mem_free(e->buf);
		e->buf = NULL;
		e->len = 0;
		f->nbuf--;
	}
	e->ref = *ref;
	e->rlen = rlen;
	e->st = CE_CLEAN;
	f->m.pg[idx / PC].dirty = true;
	f->cdirty = true;
	if (f->size < pos + n)
		f->size = pos + n;
	f->attr.mtime = f->attr.ctime = now_ts();
	return 0;
}

static int
share_into(struct fsfile *f, uint64_t idx, const struct fsobj_ref *ref,
           uint32_t rlen, uint64_t n)
{
	change_begin(f);
	int rc = do_share(f, idx, ref, rlen, n);
	change_end(f);
	return rc;
}

int
fsfile_copy_range(struct fsfile *src, uint64_t soff, struct fsfile *dst,
                  uint64_t doff, size_t len)
{
	uint8_t *tmp = NULL;
	size_t done = 0;
	int rc = 0;

	if (!S_ISREG(dst->attr.mode))
		return -EINVAL;
	if (len > COPY_MAX)
		len = COPY_MAX;
	/* Overlapping ranges of one file are not allowed (as for the
	 * syscall): the copy goes forward chunk by chunk. */
	if (src == dst && soff < doff + len && doff < soff + len)
		return -EINVAL;
	while (done < len && rc >= 0) {
		uint64_t ps = soff + done, pd = doff + done;
		uint32_t cs = src->m.cs;
		struct fsobj_ref ref;
		uint32_t rlen;
		pthread_mutex_lock(&src->mu);
		uint64_t ssize = src->size;
		size_t n = ps < ssize ? (size_t)min64(len - done, ssize - ps) : 0;
		n = (size_t)min64(n, cs - ps % cs);
		bool share = n > 0 && ps % cs == 0 && pd % dst->m.cs == 0 &&
		             cs == dst->m.cs && (n == cs || ps + n == ssize) &&
		             share_of(src, ps / cs, &ref, &rlen);
		if (n > 0 && !share) {
			if (!tmp && !(tmp = mem_alloc(cs)))
				rc = -ENOMEM;
			else
				rc = read_locked(src, (char *)tmp, n, ps);
		}
		pthread_mutex_unlock(&src->mu);
		if (n == 0 || rc < 0)
			break;
		pthread_mutex_lock(&dst->mu);
		rc = share ? share_into(dst, pd / cs, &ref, rlen, n) : 1;
		if (rc == 1 && share) {
			/* Cannot share after all: copy the bytes. */
			pthread_mutex_unlock(&dst->mu);
			pthread_mutex_lock(&src->mu);
			if (!tmp && !(tmp = mem_alloc(cs)))
				rc = -ENOMEM;
			else
				rc = read_locked(src, (char *)tmp, n, ps);
			pthread_mutex_unlock(&src->mu);
			pthread_mutex_lock(&dst->mu);
			share = false;
			rc = rc < 0 ? rc : 1;
		}
		if (rc == 1)
			rc = write_locked(dst, (const char *)tmp, n, pd);
		pthread_mutex_unlock(&dst->mu);
		if (rc >= 0)
			done += n;
	}
	mem_free(tmp);
	return done > 0 ? (int)done : rc < 0 ? rc : 0;
}

uint64_t
fsfile_content_id(struct fsfile *f)
{
	uint8_t md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	EVP_MD_CTX *x = EVP_MD_CTX_new();
	uint64_t id = 0;
	pthread_mutex_lock(&f->mu);
	if (x && EVP_DigestInit_ex(x, EVP_sha256(), NULL) == 1) {
		EVP_DigestUpdate(x, &f->size, sizeof(f->size));
		EVP_DigestUpdate(x, &f->m.cs, sizeof(f->m.cs));
		for (uint32_t p = 0; p < f->m.npages; p++) {
			const struct fpage *pg = &f->m.pg[p];
			if (pg->dirty && pg->e) {
				/* Changed here, not stored yet: by entry. */
				for (uint32_t i = 0; i < PC; i++) {
					const struct cent *e = &pg->e[i];
					if (e->buf)
						EVP_DigestUpdate(x, e->buf,
						                 e->len);
					else
						EVP_DigestUpdate(x, e->ref.key,
						                 BLOB_KEY_LEN);
				}
			} else {
				EVP_DigestUpdate(x, pg->ref.key, BLOB_KEY_LEN);
			}
		}
		if (EVP_DigestFinal_ex(x, md, &mdlen) == 1 && mdlen >= 8)
			memcpy(&id, md, sizeof(id));
	}
	pthread_mutex_unlock(&f->mu);
	EVP_MD_CTX_free(x);
	return id;
}

/* Bytes stored for the content (st_blocks): blobs, and buffers not yet
 * stored. */
static uint64_t
stored_locked(const struct fsfile *f)
{
	uint64_t total = 0;
	for (uint32_t p = 0; p < f->m.npages; p++) {
		const struct fpage *pg = &f->m.pg[p];
		if (!pg->e || !pg->dirty) {
			total += pg->stored;
			continue;
		}
		for (uint32_t i = 0; i < PC; i++)
			total += pg->e[i].buf ? pg->e[i].len : pg->e[i].rlen;
	}
	return total;
}

/* ---- flush ---- */

/* Store every changed page (its chunks are stored: puts_wait) and name the
 * pages in nf. */
static int
store_pages(struct fsfile *f, struct fsobj_file *nf)
{
	uint64_t nc = fsobj_nchunks(f->size, f->m.cs);
	struct fsobj_page pg;
	struct buf b;
	int rc = 0;

	nf->layout = FSOBJ_CHUNKED;
	nf->chunk_size = f->m.cs;
	nf->npages = f->m.npages;
	if (nf->npages > 0 &&
	    (!(nf->pages = mem_calloc(nf->npages, sizeof(*nf->pages))) ||
	     !(nf->pstored = mem_calloc(nf->npages, sizeof(*nf->pstored)))))
		return -ENOMEM;
	fsobj_page_init(&pg);
	buf_init(&b);
	for (uint32_t p = 0; p < f->m.npages && rc == 0; p++) {
		struct fpage *fp = &f->m.pg[p];
		if (fp->dirty) {
			uint32_t n = (uint32_t)min64(PC, nc - (uint64_t)p * PC);
			uint64_t stored = 0;
			bool any = false;
			if ((rc = fsobj_page_alloc(&pg, n)) != 0)
				break;
			for (uint32_t i = 0; i < n; i++) {
				pg.ref[i] = fp->e[i].ref;
				pg.len[i] = fp->e[i].rlen;
				stored += fp->e[i].rlen;
				any |= !fsobj_ref_none(&fp->e[i].ref);
			}
			memset(&fp->ref, 0, sizeof(fp->ref));
			if (any) {
				buf_reset(&b);
				fsobj_page_encode(&pg, &b);
				if ((rc = buf_err(&b)) != 0 ||
				    (rc = fscache_put(f->t->cache, BLOB_REFS,
				                      b.data, b.len,
				                      fp->ref.key)) != 0)
					break;
			}
			fp->stored = stored;
			fp->dirty = false;
		}
		nf->pages[p] = fp->ref;
		nf->pstored[p] = fp->stored;
		nf->stored += fp->stored;
	}
	fsobj_page_fini(&pg);
	buf_fini(&b);
	return rc;
}

/*
 * The collector may reclaim a blob once nothing stored names it for its
 * grace period, so a version may name only blobs this mount stored, or saw
 * named by a stored object, less than half that ago.  Blobs this file
 * stored since are fresh; those it shares with base were seen when base
 * was read.  When that is too long ago, read the object again: if it
 * still holds base's versions, they were seen now.  If not, store again
 * (a put of the same bytes renews a blob) every chunk and page kept from
 * base.
 */
static int
stale_refs(struct fsfile *f)
{
	struct fskv_file *s = NULL;
	uint64_t now = fskv_now_ms();
	if (f->src < 0 || now - f->seen_ms < f->t->grace_ms / 2)
		return 0;
	int rc = fskv_file_get(f->t->kv, f->path, FSKV_FRESH, &s);
	if (rc != 0)
		return rc;
	bool same = s->ctx.len == f->base->ctx.len &&
	            memcmp(s->ctx.p, f->base->ctx.p, s->ctx.len) == 0;
	fskv_file_unref(s);
	if (same) {
		f->seen_ms = now;
		return 0;
	}
	LOG_INFO("%s: open for long and superseded meanwhile: storing its "
	         "kept content again",
	         f->path);
	for (uint32_t p = 0; p < f->m.npages && rc == 0; p++) {
		struct fpage *pg = &f->m.pg[p];
		if ((rc = fmap_load(&f->m, f->t->cache, &f->mu, p)) != 0)
			break;
		for (uint32_t i = 0; i < PC && rc == 0; i++) {
			struct cent *e = &pg->e[i];
			if (e->buf || fsobj_ref_none(&e->ref))
				continue;
			/* Back in memory and dirty: stored again (now, when
			 * too much is in memory, else by the flush). */
			if ((rc = cent_load(f, (uint64_t)p * PC + i, false,
			                    &e)) == 0)
				cent_dirty(f, (uint64_t)p * PC + i, e);
			if (rc == 0 && (uint64_t)f->nbuf * f->m.cs > DIRTY_MAX)
				rc = store_all(f);
			pg = &f->m.pg[p];
		}
		pg->dirty = true;
	}
	if (rc == 0)
		f->seen_ms = now;
	return rc;
}

static void
rebase(struct fsfile *f, struct fskv_file *s, bool keep_map)
{
	fskv_file_unref(f->base);
	f->base = s;
	f->src = s->newest;
	f->seen_ms = fskv_now_ms();
	const struct fsobj_file *v = f->src >= 0 ? &s->f[f->src] : NULL;
	if (v) {
		if (fsobj_attr_copy(&f->attr, &v->a) != 0)
			LOG_WARN("%s: out of memory copying attributes",
			         f->path);
		f->size = v->size;
	} else {
		f->size = 0;
	}
	if (keep_map)
		return;
	if (fmap_from(&f->m, v, fskv_opts(f->t->kv)->chunk_size) != 0)
		LOG_WARN("%s: out of memory reading the chunk list", f->path);
	f->nbuf = v && v->layout == FSOBJ_INLINE && v->size > 0;
}

static void refresh_locked(struct fsfile *f);
static int retire_locked(struct fsfile *f, int vi, bool only);

static int
do_flush(struct fsfile *f)
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
	bool inl = S_ISLNK(f->attr.mode) || f->size <= o->inline_max;
	fsobj_file_init(&nf);
	if ((rc = fsobj_attr_copy(&nf.a, &f->attr)) != 0)
		goto out;
	nf.size = f->size;
	if (inl) {
		puts_idle(f);
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
	} else if ((rc = stale_refs(f)) != 0 || (rc = store_all(f)) != 0 ||
	           (rc = puts_wait(f)) != 0 ||
	           (rc = store_pages(f, &nf)) != 0) {
		goto out;
	}
	if (all) {
		rc = fskv_file_put(kv, f->path, &f->base->ctx, 1, &nf, &ns);
		if (rc != 0)
			goto out;
		/* A chunked map is the new version now; an inline one is
		 * made again from it. */
		rebase(f, ns, !inl);
		ns = NULL;
	} else {
		/* The shown sibling changed: put under its own context, which
		 * names it alone (common/vclock.h), so the others stay. */
		const struct fskv_file *b = f->base;
		rc = fskv_file_put(kv, f->path, &b->vctx[b->newest], 1, &nf,
		                   NULL);
		if (rc != 0) {
			fskv_file_forget(kv, f->path);
			goto out;
		}
		refresh_locked(f);
	}
	f->cdirty = f->adirty = false;
	__atomic_store_n(&f->first_put_ms, 0, __ATOMIC_RELAXED);
out:
	fskv_file_unref(ns);
	fsobj_file_fini(&nf);
	if (rc > 0)
		rc = 0;
	if (rc != 0)
		LOG_WARN("%s: flush: %s", f->path, dyn_strerror(rc));
	return rc;
}

static int
flush_locked(struct fsfile *f)
{
	change_begin(f);
	int rc = do_flush(f);
	change_end(f);
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

/*
 * Chunks a writer stored are named by no object until its flush, and the
 * nodes may collect a blob nothing names once its grace period is over.
 * So a file that holds chunks stored more than a quarter of the grace
 * period ago is flushed here (as if the program had called fsync): a log
 * appended for hours without a close, or a slow copy of a huge file, never
 * loses its first chunks.  The flush makes a version other mounts can see,
 * as a local file system's writeback would.
 */
#define AGE_CANDIDATES 64

static int
age_collect(struct fsfile_tab *t, uint64_t now, struct fsfile **c)
{
	int n = 0;
	pthread_mutex_lock(&t->mu);
	for (int b = 0; b < NBUCKETS && n < AGE_CANDIDATES; b++) {
		for (struct fsfile *f = t->b[b]; f && n < AGE_CANDIDATES;
		     f = f->next) {
			uint64_t first = __atomic_load_n(&f->first_put_ms,
			                                 __ATOMIC_RELAXED);
			if (first != 0 && now - first >= t->grace_ms / 4) {
				f->refs++;
				c[n++] = f;
			}
		}
	}
	pthread_mutex_unlock(&t->mu);
	return n;
}

static void *
age_main(void *arg)
{
	struct fsfile_tab *t = arg;
	uint64_t step = t->grace_ms / 8;
	if (step > 60000)
		step = 60000;
	if (step < 100)
		step = 100;
	pthread_mutex_lock(&t->mu);
	while (!t->stopping) {
		struct timespec dl;
		clock_gettime(CLOCK_REALTIME, &dl);
		dl.tv_sec += (time_t)(step / 1000);
		dl.tv_nsec += (long)(step % 1000) * 1000000;
		if (dl.tv_nsec >= 1000000000) {
			dl.tv_sec++;
			dl.tv_nsec -= 1000000000;
		}
		pthread_cond_timedwait(&t->stop, &t->mu, &dl);
		if (t->stopping)
			break;
		pthread_mutex_unlock(&t->mu);
		struct fsfile *c[AGE_CANDIDATES];
		int n = age_collect(t, fskv_now_ms(), c);
		for (int i = 0; i < n; i++) {
			pthread_mutex_lock(&c[i]->mu);
			if (c[i]->first_put_ms != 0) {
				LOG_INFO("%s: flushed: its first chunks are "
				         "aging unnamed",
				         c[i]->path);
				flush_locked(c[i]);
			}
			pthread_mutex_unlock(&c[i]->mu);
			fsfile_put(c[i]);
		}
		pthread_mutex_lock(&t->mu);
	}
	pthread_mutex_unlock(&t->mu);
	return NULL;
}

int
fsfile_tab_new(struct fskv *kv, struct fsfile_tab **out)
{
	struct fsfile_tab *t = mem_calloc(1, sizeof(*t));
	if (!t)
		return -ENOMEM;
	t->kv = kv;
	t->grace_ms = fskv_opts(kv)->gc_grace_ms;
	int rc = fscache_new(fskv_opts(kv)->client, fskv_opts(kv)->cache_size,
	                     IO_THREADS, &t->cache);
	if (rc != 0) {
		mem_free(t);
		return rc;
	}
	pthread_mutex_init(&t->mu, NULL);
	pthread_cond_init(&t->stop, NULL);
	if (pthread_create(&t->ager, NULL, age_main, t) != 0) {
		fsfile_tab_free(t);
		return -EAGAIN;
	}
	t->ager_started = true;
	*out = t;
	return 0;
}

static void
file_free(struct fsfile *f)
{
	pthread_mutex_lock(&f->mu);
	puts_idle(f);
	pthread_mutex_unlock(&f->mu);
	fmap_fini(&f->m);
	pthread_cond_destroy(&f->cv);
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
	pthread_mutex_lock(&t->mu);
	t->stopping = true;
	pthread_cond_broadcast(&t->stop);
	pthread_mutex_unlock(&t->mu);
	if (t->ager_started)
		pthread_join(t->ager, NULL);
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
	struct fscache_stats cs;
	fscache_stats(t->cache, &cs);
	LOG_INFO("content cache: %llu hits, %llu misses, %llu fetches, %llu "
	         "puts, %llu evictions, %llu used once",
	         (unsigned long long)cs.hits, (unsigned long long)cs.misses,
	         (unsigned long long)cs.fetches, (unsigned long long)cs.puts,
	         (unsigned long long)cs.evictions,
	         (unsigned long long)cs.used_once);
	fscache_free(t->cache);
	pthread_cond_destroy(&t->stop);
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
	pthread_cond_init(&f->cv, NULL);
	fsobj_attr_init(&f->attr);
	fmap_init(&f->m, fskv_opts(t->kv)->chunk_size);
	rebase(f, s, false);
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
				rebase(f, s, false);
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
	f->attr.ino = fsobj_ino_new();
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
stat_of(const struct fsobj_attr *a, uint64_t size, uint64_t stored,
        uint32_t blksize, struct stat *st)
{
	memset(st, 0, sizeof(*st));
	st->st_mode = a->mode;
	st->st_nlink = 1;
	st->st_uid = a->uid;
	st->st_gid = a->gid;
	st->st_ino = a->ino;
	st->st_rdev = (dev_t)a->rdev;
	st->st_size = (off_t)size;
	st->st_blocks = (blkcnt_t)((stored + 511) / 512);
	st->st_blksize = (blksize_t)blksize;
	st->st_atim = a->atime;
	st->st_mtim = a->mtime;
	st->st_ctim = a->ctime;
}

void
fsfile_stat(struct fsfile *f, struct stat *st)
{
	pthread_mutex_lock(&f->mu);
	stat_of(&f->attr, f->size, stored_locked(f), f->m.cs, st);
	pthread_mutex_unlock(&f->mu);
}

void
fsfile_stat_version(const struct fskv_file *s, int i, struct stat *st)
{
	const struct fsobj_file *v = &s->f[i];
	bool ch = v->layout == FSOBJ_CHUNKED;
	stat_of(&v->a, v->size, ch ? v->stored : v->size,
	        ch ? v->chunk_size : 4096, st);
	st->st_mode &= ~(mode_t)0222;
}

void
fsfile_chmod(struct fsfile *f, uint32_t mode)
{
	pthread_mutex_lock(&f->mu);
	change_begin(f);
	f->attr.mode = (f->attr.mode & S_IFMT) | (mode & 07777);
	f->attr.ctime = now_ts();
	f->adirty = true;
	change_end(f);
	pthread_mutex_unlock(&f->mu);
}

void
fsfile_chown(struct fsfile *f, uint32_t uid, uint32_t gid)
{
	pthread_mutex_lock(&f->mu);
	change_begin(f);
	if (uid != (uint32_t)-1)
		f->attr.uid = uid;
	if (gid != (uint32_t)-1)
		f->attr.gid = gid;
	f->attr.ctime = now_ts();
	f->adirty = true;
	change_end(f);
	pthread_mutex_unlock(&f->mu);
}

void
fsfile_utimens(struct fsfile *f, const struct timespec tv[2])
{
	struct timespec now = now_ts();
	pthread_mutex_lock(&f->mu);
	change_begin(f);
	for (int i = 0; i < 2; i++) {
		struct timespec *dst =
		    i == 0 ? &f->attr.atime : &f->attr.mtime;
		if (tv[i].tv_nsec == UTIME_OMIT)
			continue;
		*dst = tv[i].tv_nsec == UTIME_NOW ? now : tv[i];
	}
	f->attr.ctime = now;
	f->adirty = true;
	change_end(f);
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
	change_begin(f);
	int rc = fsobj_xattr_set(&f->attr, name, val, n, flags);
	if (rc == 0) {
		f->attr.ctime = now_ts();
		f->adirty = true;
	}
	change_end(f);
	pthread_mutex_unlock(&f->mu);
	return rc;
}

int
fsfile_removexattr(struct fsfile *f, const char *name)
{
	pthread_mutex_lock(&f->mu);
	change_begin(f);
	int rc = fsobj_xattr_remove(&f->attr, name);
	if (rc == 0) {
		f->attr.ctime = now_ts();
		f->adirty = true;
	}
	change_end(f);
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

/* Copy version v to path to under ctx: the copy names the same blobs, so
 * no content moves.  v was read moments ago (a fresh get), so its blobs
 * were seen stored (see stale_refs). */
static int
copy_version(struct fskv *kv, const struct fsobj_file *v, const char *to,
             const struct dyn_ctx *ctx)
{
	return fskv_file_put(kv, to, ctx, ctx ? 1 : 0, v, NULL);
}

/* Re-read f after a change to its versions. */
static void
refresh_locked(struct fsfile *f)
{
	struct fskv_file *s;
	if (fskv_file_get(f->t->kv, f->path, FSKV_FRESH, &s) == 0)
		rebase(f, s, false);
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

/*
 * Retire versions of f's base in one put: a tombstone under the contexts
 * of exactly those versions.  A version's context names it and what its
 * writer had read, never a sibling (common/vclock.h), so every other
 * version stays; so does anything written meanwhile.  only: retire version
 * vi; else every version but vi.  Tombstone versions read are retired
 * too.  If the put fails, what was read is still there.
 */
static int
retire_locked(struct fsfile *f, int vi, bool only)
{
	const struct fskv_file *b = f->base;
	struct fskv *kv = f->t->kv;
	struct dyn_ctx *ctxs = mem_calloc(b->vs.n ? b->vs.n : 1, sizeof(*ctxs));
	size_t n = 0;
	if (!ctxs)
		return -ENOMEM;
	for (uint32_t i = 0; i < b->vs.n; i++) {
		if (b->vs.v[i].tombstone || (((int)i == vi) == only))
			ctxs[n++] = b->vctx[i];
	}
	int rc = fskv_file_delete(kv, f->path, ctxs, n);
	mem_free(ctxs);
	if (rc != 0) {
		fskv_file_forget(kv, f->path);
		return rc;
	}
	refresh_locked(f);
	return 0;
}

int
fsfile_sibling_drop(struct fsfile *f, uint32_t k)
{
	int vi;
	pthread_mutex_lock(&f->mu);
	int rc = sibling_index(f, k, &vi);
	if (rc == 0)
		rc = retire_locked(f, vi, true);
	pthread_mutex_unlock(&f->mu);
	return rc;
}

int
fsfile_sibling_pick(struct fsfile *f, uint32_t k)
{
	int vi;
	pthread_mutex_lock(&f->mu);
	int rc = sibling_index(f, k, &vi);
	if (rc == 0)
		rc = retire_locked(f, vi, false);
	pthread_mutex_unlock(&f->mu);
	return rc;
}

/* What path holds was superseded: an open file of that path (but except)
 * keeps reading what it had, and its writes are dropped. */
static void
supersede(struct fsfile_tab *t, const char *path, struct fsfile *except)
{
	struct fsfile *f = fsfile_find(t, path);
	if (f && f != except) {
		pthread_mutex_lock(&f->mu);
		f->unlinked = true;
		pthread_mutex_unlock(&f->mu);
		pthread_mutex_lock(&t->mu);
		tab_remove_locked(t, f);
		pthread_mutex_unlock(&t->mu);
	}
	fsfile_put(f);
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
	if (rc == 0) {
		/* Another file now: the versions left behind keep the
		 * number.  A shallow copy, only read by the put. */
		struct fsobj_file v = f->base->f[vi];
		v.a.ino = fsobj_ino_new();
		rc = copy_version(kv, &v, to, &st->ctx);
	}
	if (rc == 0)
		rc = retire_locked(f, vi, true);
	pthread_mutex_unlock(&f->mu);
	if (rc == 0)
		supersede(f->t, to, f);
	fskv_file_unref(st);
	return rc;
}

/* ---- namespace ---- */

int
fsfile_unlink(struct fsfile_tab *t, const char *path, int flags)
{
	struct fskv_file *s;
	int rc = fskv_file_get(t->kv, path, flags, &s);
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
	supersede(t, path, NULL);
	fskv_file_unref(s);
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
		supersede(t, to, ff);
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
	v->t = t;
	v->s = s;
	v->v = &s->f[vi];
	fmap_init(&v->m, fskv_opts(t->kv)->chunk_size);
	if ((rc = fmap_from(&v->m, v->v, v->m.cs)) != 0) {
		fsview_close(v);
		return rc;
	}
	*out = v;
	return 0;
}

int
fsview_read(struct fsview *v, char *buf, size_t size, uint64_t off)
{
	pthread_mutex_lock(&v->mu);
	uint64_t fsize = v->v->size;
	int rc = 0;
	if (off < fsize) {
		size = (size_t)min64(size, fsize - off);
		rc = fmap_read(&v->m, v->t->cache, &v->mu, fsize, off,
		               (uint8_t *)buf, size);
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
	fmap_fini(&v->m);
	fskv_file_unref(v->s);
	pthread_mutex_destroy(&v->mu);
	mem_free(v);
}
