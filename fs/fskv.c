/*
 * fskv — objects through the client, with short caches.
 *
 *   fsops / fsfile
 *        |  fskv_file_get / _put / _delete      fskv_dir_get / _update
 *        v                                          |
 *   cache (path -> snapshot, TTL)     merge on read + write back
 *        |                                          |
 *        +------------------> dyn_get / dyn_put_ctxs (client.h)
 *
 * The caches only save round trips within their TTL (about a second, the
 * same as the kernel's attribute cache); every write carries the context of
 * what was read, so a stale cache can at worst create a sibling (which the
 * next read merges for directories, or shows for files), never lose data.
 * One mutex guards the tables; no call to the cluster is made under it.
 */
#include "fskv.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "err.h"
#include "keypos.h"
#include "log.h"
#include "mem.h"

#define NSTRIPES  64
#define CACHE_MAX 65536 /* entries per table before a sweep */

struct centry {
	struct centry *next;
	char *path;
	uint32_t hash;
	void *val;
};

/* A chained hash table from path to a value; free_val drops a value. */
struct ctable {
	struct centry **b;
	size_t nb;
	size_t n;
	void (*free_val)(void *);
};

struct fskv {
	struct fskv_opts o;
	char *nodes;
	pthread_mutex_t mu; /* the two tables */
	struct ctable files;
	struct ctable dirs;
	pthread_mutex_t stripes[NSTRIPES];
	uint64_t born_ms;
	struct timespec mounted; /* times of a root never written */
};

uint64_t
fskv_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static uint32_t
path_hash(const char *p)
{
	uint32_t h = 2166136261u;
	for (; *p; p++) {
		h ^= (uint8_t)*p;
		h *= 16777619u;
	}
	return h;
}

/* ---- tables ---- */

static int
ctable_init(struct ctable *t, void (*free_val)(void *))
{
	t->nb = 1024;
	t->n = 0;
	t->free_val = free_val;
	t->b = mem_calloc(t->nb, sizeof(*t->b));
	return t->b ? 0 : -ENOMEM;
}

static void
centry_free(struct ctable *t, struct centry *e)
{
	t->free_val(e->val);
	mem_free(e->path);
	mem_free(e);
}

static void
ctable_clear(struct ctable *t)
{
	for (size_t i = 0; t->b && i < t->nb; i++) {
		struct centry *e = t->b[i];
		while (e) {
			struct centry *n = e->next;
			centry_free(t, e);
			e = n;
		}
		t->b[i] = NULL;
	}
	t->n = 0;
}

static void
ctable_fini(struct ctable *t)
{
	ctable_clear(t);
	mem_free(t->b);
	t->b = NULL;
}

static struct centry **
ctable_slot(struct ctable *t, const char *path, uint32_t h)
{
	struct centry **pp = &t->b[h % t->nb];
	while (*pp && ((*pp)->hash != h || strcmp((*pp)->path, path) != 0))
		pp = &(*pp)->next;
	return pp;
}

static void *
ctable_get(struct ctable *t, const char *path)
{
	struct centry *e = *ctable_slot(t, path, path_hash(path));
	return e ? e->val : NULL;
}

static void
ctable_del(struct ctable *t, const char *path)
{
	struct centry **pp = ctable_slot(t, path, path_hash(path));
	struct centry *e = *pp;
	if (!e)
		return;
	*pp = e->next;
	centry_free(t, e);
	t->n--;
}

static void
ctable_grow(struct ctable *t)
{
	size_t nb = t->nb * 2;
	struct centry **b = mem_calloc(nb, sizeof(*b));
	if (!b)
		return; /* longer chains; still correct */
	for (size_t i = 0; i < t->nb; i++) {
		struct centry *e = t->b[i];
		while (e) {
			struct centry *n = e->next;
			e->next = b[e->hash % nb];
			b[e->hash % nb] = e;
			e = n;
		}
	}
	mem_free(t->b);
	t->b = b;
	t->nb = nb;
}

/* Set path -> val (the table owns val; on failure val is freed). */
static void
ctable_set(struct ctable *t, const char *path, void *val)
{
	uint32_t h = path_hash(path);
	struct centry **pp = ctable_slot(t, path, h);
	if (*pp) {
		t->free_val((*pp)->val);
		(*pp)->val = val;
		return;
	}
	struct centry *e = mem_calloc(1, sizeof(*e));
	char *p = mem_dup(path, strlen(path) + 1);
	if (!e || !p) {
		mem_free(e);
		mem_free(p);
		t->free_val(val);
		return;
	}
	e->path = p;
	e->hash = h;
	e->val = val;
	*pp = e;
	if (++t->n > t->nb)
		ctable_grow(t);
}

/* Drop the entries for which drop(val, arg) is true. */
static void
ctable_sweep(struct ctable *t, bool (*drop)(void *, const char *, void *),
             void *arg)
{
	for (size_t i = 0; i < t->nb; i++) {
		struct centry **pp = &t->b[i];
		while (*pp) {
			struct centry *e = *pp;
			if (drop(e->val, e->path, arg)) {
				*pp = e->next;
				centry_free(t, e);
				t->n--;
			} else {
				pp = &e->next;
			}
		}
	}
}

/* ---- snapshots ---- */

static void
file_snap_free(struct fskv_file *s)
{
	for (uint32_t i = 0; s->f && i < s->vs.n; i++)
		fsobj_file_fini(&s->f[i]);
	mem_free(s->f);
	for (uint32_t i = 0; s->vctx && i < s->vs.n; i++)
		mem_free(s->vctx[i].p);
	mem_free(s->vctx);
	mem_free(s->ctx.p);
	vset_fini(&s->vs);
	mem_free(s);
}

void
fskv_file_unref(struct fskv_file *s)
{
	if (!s)
		return;
	if (atomic_fetch_sub((atomic_int *)&s->refs, 1) == 1)
		file_snap_free(s);
}

static struct fskv_file *
file_ref(struct fskv_file *s)
{
	atomic_fetch_add((atomic_int *)&s->refs, 1);
	return s;
}

static void
file_unref_v(void *p)
{
	fskv_file_unref(p);
}

static void
dir_snap_free(struct fskv_dir *s)
{
	fsobj_dir_fini(&s->d);
	mem_free(s->ctx.p);
	mem_free(s);
}

void
fskv_dir_unref(struct fskv_dir *s)
{
	if (!s)
		return;
	if (atomic_fetch_sub((atomic_int *)&s->refs, 1) == 1)
		dir_snap_free(s);
}

static struct fskv_dir *
dir_ref(struct fskv_dir *s)
{
	atomic_fetch_add((atomic_int *)&s->refs, 1);
	return s;
}

static void
dir_unref_v(void *p)
{
	fskv_dir_unref(p);
}

/* ---- setup ---- */

int
fskv_new(const struct fskv_opts *o, struct fskv **out)
{
	int rc = -ENOMEM;
	struct fskv *kv = mem_calloc(1, sizeof(*kv));
	if (!kv)
		return -ENOMEM;
	kv->o = *o;
	kv->nodes = mem_dup(o->nodes ? o->nodes : "",
	                    strlen(o->nodes ? o->nodes : "") + 1);
	if (!kv->nodes)
		goto fail;
	kv->o.nodes = kv->nodes;
	if (ctable_init(&kv->files, file_unref_v) != 0 ||
	    ctable_init(&kv->dirs, dir_unref_v) != 0)
		goto fail;
	pthread_mutex_init(&kv->mu, NULL);
	for (int i = 0; i < NSTRIPES; i++)
		pthread_mutex_init(&kv->stripes[i], NULL);
	kv->born_ms = fskv_now_ms();
	clock_gettime(CLOCK_REALTIME, &kv->mounted);
	*out = kv;
	return 0;
fail:
	ctable_fini(&kv->files);
	ctable_fini(&kv->dirs);
	mem_free(kv->nodes);
	mem_free(kv);
	return rc;
}

void
fskv_free(struct fskv *kv)
{
	if (!kv)
		return;
	ctable_fini(&kv->files);
	ctable_fini(&kv->dirs);
	pthread_mutex_destroy(&kv->mu);
	for (int i = 0; i < NSTRIPES; i++)
		pthread_mutex_destroy(&kv->stripes[i]);
	mem_free(kv->nodes);
	mem_free(kv);
}

const struct fskv_opts *
fskv_opts(const struct fskv *kv)
{
	return &kv->o;
}

static int
key_of(struct buf *k, char kind, const char *path)
{
	buf_init(k);
	if (kind == 'F')
		fsobj_key_file(k, path);
	else
		fsobj_key_dir(k, path);
	return buf_err(k);
}

/* ---- cache policy ---- */

static bool
expired(uint64_t born, uint64_t ttl)
{
	return fskv_now_ms() - born >= ttl;
}

static bool
drop_old_file(void *val, const char *path, void *arg)
{
	(void)path;
	return expired(((struct fskv_file *)val)->born_ms, *(uint64_t *)arg);
}

static bool
drop_old_dir(void *val, const char *path, void *arg)
{
	(void)path;
	return expired(((struct fskv_dir *)val)->born_ms, *(uint64_t *)arg);
}

/* Keep the tables bounded: sweep expired entries, and if that leaves
 * more than half, start over, so a sweep (O(n)) comes at most once per
 * CACHE_MAX / 2 entries added (a listing of a million entries caches each
 * one within the TTL: a table that stayed just under the cap swept at
 * every insert). */
static void
cache_trim_locked(struct fskv *kv)
{
	if (kv->files.n > CACHE_MAX) {
		ctable_sweep(&kv->files, drop_old_file, &kv->o.attr_ttl_ms);
		if (kv->files.n > CACHE_MAX / 2)
			ctable_clear(&kv->files);
	}
	if (kv->dirs.n > CACHE_MAX) {
		ctable_sweep(&kv->dirs, drop_old_dir, &kv->o.entry_ttl_ms);
		if (kv->dirs.n > CACHE_MAX / 2)
			ctable_clear(&kv->dirs);
	}
}

/* ---- files ---- */

/* Build a snapshot from a get, taking over its memory. */
static int
file_snap_from(const char *path, struct dyn_get_result *g,
               struct fskv_file **out)
{
	struct fskv_file *s = mem_calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->vs = g->versions;
	s->ctx.p = g->ctx;
	s->ctx.len = g->ctx_len;
	s->vctx = g->vctx;
	vset_init(&g->versions);
	g->ctx = NULL;
	g->ctx_len = 0;
	g->vctx = NULL;
	s->refs = 1;
	s->born_ms = fskv_now_ms();
	if (s->vs.n > 0 && !(s->f = mem_calloc(s->vs.n, sizeof(*s->f)))) {
		file_snap_free(s);
		return -ENOMEM;
	}
	for (uint32_t i = 0; i < s->vs.n; i++) {
		struct version *v = &s->vs.v[i];
		fsobj_file_init(&s->f[i]);
		if (!v->tombstone) {
			int rc = fsobj_file_decode(v->value, v->len, &s->f[i]);
			if (rc == -ENOMEM) {
				file_snap_free(s);
				return rc;
			}
			if (rc != 0) {
				/* Not ours to show; a write still covers it.
				 */
				LOG_WARN("%s: version %u undecodable: %s",
				         path, i, dyn_strerror(rc));
				v->tombstone = true;
			}
		}
		mem_free(v->value);
		v->value = NULL;
		v->len = 0;
	}
	s->nlive = vset_live(&s->vs);
	s->newest = fsobj_live_newest(&s->vs);
	*out = s;
	return 0;
}

int
fskv_file_get(struct fskv *kv, const char *path, int flags,
              struct fskv_file **out)
{
	struct dyn_get_result g;
	struct fskv_file *s = NULL;
	struct buf k;
	int rc;

	if (!(flags & FSKV_FRESH)) {
		pthread_mutex_lock(&kv->mu);
		s = ctable_get(&kv->files, path);
		if (s && !expired(s->born_ms, kv->o.attr_ttl_ms))
			s = file_ref(s);
		else
			s = NULL;
		pthread_mutex_unlock(&kv->mu);
		if (s) {
			*out = s;
			return 0;
		}
	}
	if ((rc = key_of(&k, 'F', path)) != 0)
		goto out;
	rc = dyn_get(kv->o.client, k.data, k.len, NULL, &g);
	if (rc != 0 && rc != -ENOENT)
		goto out;
	rc = file_snap_from(path, &g, &s);
	dyn_get_result_fini(&g);
	if (rc != 0)
		goto out;
	pthread_mutex_lock(&kv->mu);
	ctable_set(&kv->files, path, file_ref(s));
	cache_trim_locked(kv);
	pthread_mutex_unlock(&kv->mu);
	*out = s;
out:
	buf_fini(&k);
	return rc;
}

int
fskv_file_empty(struct fskv_file **out)
{
	struct fskv_file *s = mem_calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->refs = 1;
	s->newest = -1;
	s->born_ms = fskv_now_ms();
	*out = s;
	return 0;
}

int
fskv_file_put(struct fskv *kv, const char *path, const struct dyn_ctx *ctxs,
              size_t nctx, const struct fsobj_file *f, struct fskv_file **out)
{
	struct buf k, v;
	uint8_t *nctx_p = NULL;
	size_t nctx_len = 0;
	struct fskv_file *s = NULL;
	int rc;

	buf_init(&v);
	if ((rc = key_of(&k, 'F', path)) != 0)
		goto out;
	fsobj_file_encode(f, &v);
	if ((rc = buf_err(&v)) != 0)
		goto out;
	rc = dyn_put_ctxs(kv->o.client, k.data, k.len, ctxs, nctx, v.data,
	                  v.len, NULL, &nctx_p, &nctx_len);
	if (rc != 0) {
		fskv_file_forget(kv, path);
		goto out;
	}
	/* A snapshot of what we just wrote, so a stat right after needs no
	 * round trip. */
	rc = -ENOMEM;
	if (!(s = mem_calloc(1, sizeof(*s))))
		goto out;
	s->refs = 1;
	s->born_ms = fskv_now_ms();
	s->synthetic = true;
	s->vs.v = mem_calloc(1, sizeof(*s->vs.v));
	s->f = mem_calloc(1, sizeof(*s->f));
	s->vctx = mem_calloc(1, sizeof(*s->vctx));
	if (!s->vs.v || !s->f || !s->vctx)
		goto out;
	s->vs.n = 1;
	s->vs.v[0].ts_ms = (uint64_t)time(NULL) * 1000;
	fsobj_file_init(&s->f[0]);
	if (fsobj_file_copy(&s->f[0], f) != 0)
		goto out;
	s->ctx.p = nctx_p;
	s->ctx.len = nctx_len;
	nctx_p = NULL;
	s->vctx[0].p = mem_dup(s->ctx.p, s->ctx.len);
	s->vctx[0].len = s->ctx.len;
	if (!s->vctx[0].p)
		goto out;
	s->nlive = 1;
	s->newest = 0;
	rc = 0;
	pthread_mutex_lock(&kv->mu);
	ctable_set(&kv->files, path, file_ref(s));
	cache_trim_locked(kv);
	pthread_mutex_unlock(&kv->mu);
	if (out) {
		*out = s;
		s = NULL;
	}
out:
	if (rc == -ENOMEM && s)
		fskv_file_forget(kv, path); /* the put itself succeeded */
	if (s)
		fskv_file_unref(s);
	mem_free(nctx_p);
	buf_fini(&k);
	buf_fini(&v);
	return rc;
}

int
fskv_file_delete(struct fskv *kv, const char *path, const struct dyn_ctx *ctxs,
                 size_t nctx)
{
	struct buf k;
	int rc = key_of(&k, 'F', path);
	if (rc == 0)
		rc = dyn_delete_ctxs(kv->o.client, k.data, k.len, ctxs, nctx,
		                     NULL);
	fskv_file_forget(kv, path);
	buf_fini(&k);
	return rc;
}

void
fskv_file_forget(struct fskv *kv, const char *path)
{
	pthread_mutex_lock(&kv->mu);
	ctable_del(&kv->files, path);
	pthread_mutex_unlock(&kv->mu);
}

/* ---- directories ---- */

static int
dir_encode_put(struct fskv *kv, const char *path, const struct dyn_ctx *ctx,
               size_t nctx, const struct fsobj_dir *d,
               struct dyn_ctx *nctx_out)
{
	struct buf k, v;
	int rc;

	buf_init(&v);
	if ((rc = key_of(&k, 'D', path)) != 0)
		goto out;
	fsobj_dir_encode(d, &v);
	if ((rc = buf_err(&v)) != 0)
		goto out;
	rc = dyn_put_ctxs(kv->o.client, k.data, k.len, ctx, nctx, v.data,
	                  v.len, NULL, &nctx_out->p, &nctx_out->len);
out:
	buf_fini(&k);
	buf_fini(&v);
	return rc;
}

static bool
is_root(const char *path)
{
	return path[0] == '/' && path[1] == '\0';
}

static void
root_default(struct fskv *kv, struct fsobj_dir *d)
{
	fsobj_dir_init(d);
	d->a.mode = S_IFDIR | 0755;
	d->a.ino = 1;
	d->a.uid = kv->o.root_uid;
	d->a.gid = kv->o.root_gid;
	d->a.atime = d->a.mtime = d->a.ctime = kv->mounted;
}

/*
 * A snapshot of the directory at path from its versions (taking over
 * ctx): the live version that wins (fsobj_dir_cmp).  When
 * write_back and there was more than one version, the winner is written
 * back under the merged context, so the losers are gone for every reader.
 */
static int
dir_snap_build(struct fskv *kv, const char *path, struct vset *versions,
               struct dyn_ctx *ctx, bool write_back, struct fskv_dir **out)
{
	struct fskv_dir *s = mem_calloc(1, sizeof(*s));
	int rc = 0;
	if (!s)
		return -ENOMEM;
	s->refs = 1;
	s->born_ms = fskv_now_ms();
	fsobj_dir_init(&s->d);
	vset_context(versions, &s->clock);
	uint32_t live = 0;
	for (uint32_t i = 0; i < versions->n && rc == 0; i++) {
		const struct version *v = &versions->v[i];
		struct fsobj_dir one;
		if (v->tombstone)
			continue;
		fsobj_dir_init(&one);
		int drc = fsobj_dir_decode(v->value, v->len, &one);
		if (drc == -ENOMEM) {
			rc = drc;
		} else if (drc != 0) {
			LOG_WARN("directory %s: version %u undecodable: %s",
			         path, i, dyn_strerror(drc));
		} else if (live++ == 0 || fsobj_dir_cmp(&one, &s->d) > 0) {
			fsobj_dir_fini(&s->d);
			s->d = one;
			fsobj_dir_init(&one);
		}
		fsobj_dir_fini(&one);
	}
	if (rc != 0) {
		dir_snap_free(s);
		return rc;
	}
	s->exists = live > 0;
	if (!s->exists && is_root(path)) {
		root_default(kv, &s->d);
		s->exists = true;
	}
	if (write_back && live > 0 && versions->n > 1) {
		struct dyn_ctx n = {0};
		int wrc = dir_encode_put(kv, path, ctx, 1, &s->d, &n);
		if (wrc == 0) {
			LOG_DEBUG("directory %s: %u versions resolved", path,
			          versions->n);
			s->ctx = n;
			s->clock.n = 0;
		} else {
			LOG_WARN("directory %s: write-back of the winner: %s",
			         path, dyn_strerror(wrc));
		}
	}
	if (!s->ctx.p) {
		s->ctx = *ctx;
		ctx->p = NULL;
		ctx->len = 0;
	}
	*out = s;
	return 0;
}

/* Read the directory at path (dir_snap_build, writing back). */
static int
dir_fetch(struct fskv *kv, const char *path, struct fskv_dir **out)
{
	struct dyn_get_result g;
	struct buf k;
	int rc;

	if ((rc = key_of(&k, 'D', path)) != 0) {
		buf_fini(&k);
		return rc;
	}
	rc = dyn_get(kv->o.client, k.data, k.len, NULL, &g);
	buf_fini(&k);
	if (rc != 0 && rc != -ENOENT)
		return rc;
	struct dyn_ctx c = {g.ctx, g.ctx_len};
	g.ctx = NULL;
	rc = dir_snap_build(kv, path, &g.versions, &c, true, out);
	mem_free(c.p);
	dyn_get_result_fini(&g);
	return rc;
}

int
fskv_dir_get_any(struct fskv *kv, const char *path, int flags,
                 struct fskv_dir **out)
{
	struct fskv_dir *s = NULL;
	int rc;

	if (!(flags & FSKV_FRESH)) {
		pthread_mutex_lock(&kv->mu);
		s = ctable_get(&kv->dirs, path);
		if (s && !expired(s->born_ms, kv->o.entry_ttl_ms))
			s = dir_ref(s);
		else
			s = NULL;
		pthread_mutex_unlock(&kv->mu);
		if (s) {
			*out = s;
			return 0;
		}
	}
	if ((rc = dir_fetch(kv, path, &s)) != 0)
		return rc;
	pthread_mutex_lock(&kv->mu);
	ctable_set(&kv->dirs, path, dir_ref(s));
	cache_trim_locked(kv);
	pthread_mutex_unlock(&kv->mu);
	*out = s;
	return 0;
}

int
fskv_dir_get(struct fskv *kv, const char *path, int flags,
             struct fskv_dir **out)
{
	struct fskv_dir *s;
	int rc = fskv_dir_get_any(kv, path, flags, &s);
	if (rc != 0)
		return rc;
	if (!s->exists) {
		fskv_dir_unref(s);
		return -ENOENT;
	}
	*out = s;
	return 0;
}

/* A snapshot taking over d (left empty) and ctx. */
static struct fskv_dir *
dir_snap_new(struct fsobj_dir *d, struct dyn_ctx *ctx, uint64_t born)
{
	struct fskv_dir *s = mem_calloc(1, sizeof(*s));
	if (!s)
		return NULL;
	s->d = *d;
	fsobj_dir_init(d);
	s->ctx = *ctx;
	ctx->p = NULL;
	ctx->len = 0;
	s->exists = true;
	s->refs = 1;
	s->born_ms = born;
	return s;
}

/* Cache what we just wrote (taking over d and ctx); when that fails,
 * forget the old entry so the next read goes to the store. */
static void
dir_cache_written(struct fskv *kv, const char *path, struct fsobj_dir *d,
                  struct dyn_ctx *ctx, uint64_t born)
{
	struct fskv_dir *s = dir_snap_new(d, ctx, born);
	pthread_mutex_lock(&kv->mu);
	if (s)
		ctable_set(&kv->dirs, path, s);
	else
		ctable_del(&kv->dirs, path);
	pthread_mutex_unlock(&kv->mu);
}

int
fskv_dir_update(struct fskv *kv, const char *path, int flags, fskv_dir_fn fn,
                void *arg)
{
	struct fskv_dir *s;
	struct fsobj_dir d;
	struct dyn_ctx n = {0};
	int rc = fskv_dir_get(kv, path, flags, &s);
	if (rc != 0)
		return rc;
	fsobj_dir_init(&d);
	if ((rc = fsobj_dir_copy(&d, &s->d)) != 0)
		goto out;
	if ((rc = fn(&d, arg)) != 0) {
		if (rc == 1)
			rc = 0;
		goto out;
	}
	if ((rc = dir_encode_put(kv, path, &s->ctx, 1, &d, &n)) != 0) {
		fskv_dir_forget(kv, path);
		goto out;
	}
	dir_cache_written(kv, path, &d, &n, s->born_ms);
out:
	mem_free(n.p);
	fsobj_dir_fini(&d);
	fskv_dir_unref(s);
	return rc;
}

int
fskv_dir_put(struct fskv *kv, const char *path, const struct dyn_ctx *ctx,
             const struct fsobj_dir *d)
{
	struct dyn_ctx n = {0};
	struct fsobj_dir c;
	int rc = dir_encode_put(kv, path, ctx, 1, d, &n);
	fsobj_dir_init(&c);
	if (rc == 0 && fsobj_dir_copy(&c, d) == 0)
		dir_cache_written(kv, path, &c, &n, fskv_now_ms());
	else
		fskv_dir_forget(kv, path);
	fsobj_dir_fini(&c);
	mem_free(n.p);
	return rc;
}

int
fskv_dir_delete(struct fskv *kv, const char *path, const struct dyn_ctx *ctx)
{
	struct buf k;
	int rc = key_of(&k, 'D', path);
	if (rc == 0)
		rc =
		    dyn_delete_ctxs(kv->o.client, k.data, k.len, ctx, 1, NULL);
	buf_fini(&k);
	fskv_dir_forget(kv, path);
	return rc;
}

void
fskv_dir_forget(struct fskv *kv, const char *path)
{
	pthread_mutex_lock(&kv->mu);
	ctable_del(&kv->dirs, path);
	pthread_mutex_unlock(&kv->mu);
}

static bool
under(void *val, const char *path, void *arg)
{
	(void)val;
	const char *top = arg;
	size_t n = strlen(top);
	if (strncmp(path, top, n) != 0)
		return false;
	return path[n] == '\0' || path[n] == '/' || (n == 1 && top[0] == '/');
}

void
fskv_forget_tree(struct fskv *kv, const char *path)
{
	pthread_mutex_lock(&kv->mu);
	ctable_sweep(&kv->files, under, (void *)path);
	ctable_sweep(&kv->dirs, under, (void *)path);
	pthread_mutex_unlock(&kv->mu);
}


/* ---- listings ---- */

void
fskv_list_fini(struct fskv_list *l)
{
	for (uint32_t i = 0; l->e && i < l->n; i++) {
		mem_free(l->e[i].name);
		fskv_file_unref(l->e[i].file);
		fskv_dir_unref(l->e[i].dir);
	}
	mem_free(l->e);
	mem_free(l->next);
	memset(l, 0, sizeof(*l));
}

char *
fskv_path_join(const char *dir, const char *name, size_t nlen)
{
	size_t dl = strlen(dir);
	bool root = is_root(dir);
	char *p = mem_alloc(dl + nlen + 2);
	if (!p)
		return NULL;
	memcpy(p, dir, dl);
	size_t at = root ? dl : dl + 1;
	p[dl] = '/';
	memcpy(p + at, name, nlen);
	p[at + nlen] = '\0';
	return p;
}

/* Snapshots from a range record e (taking over its versions and
 * contexts), or, with e NULL, of nothing stored there (no version, an
 * empty context). */
static int
file_snap_entry(const char *path, struct dyn_range_entry *e,
                struct fskv_file **out)
{
	struct dyn_get_result g;
	memset(&g, 0, sizeof(g));
	vset_init(&g.versions);
	if (e) {
		g.versions = e->versions;
		g.ctx = e->ctx.p;
		g.ctx_len = e->ctx.len;
		g.vctx = e->vctx;
		vset_init(&e->versions);
		e->ctx.p = NULL;
		e->vctx = NULL;
	}
	int rc = file_snap_from(path, &g, out);
	dyn_get_result_fini(&g);
	return rc;
}

static int
dir_snap_entry(struct fskv *kv, const char *path, struct dyn_range_entry *e,
               bool write_back, struct fskv_dir **out)
{
	if (e)
		return dir_snap_build(kv, path, &e->versions, &e->ctx,
		                      write_back, out);
	struct vset none;
	struct dyn_ctx c = {0};
	vset_init(&none);
	return dir_snap_build(kv, path, &none, &c, false, out);
}

/* One record of a page as an entry of out (a snapshot, cached); a record
 * that is not a child's object, or has no live version we can read, is
 * skipped. */
static int
list_add(struct fskv *kv, const char *dir, struct dyn_range_entry *e,
         char *lastdir, struct fskv_list *out)
{
	const char *name;
	size_t nlen;
	uint8_t kind;
	if (fsobj_key_entry(e->key, e->klen, &name, &nlen, &kind) != 0) {
		LOG_WARN("directory %s: a key that names no entry", dir);
		return 0;
	}
	struct fskv_ent *t = &out->e[out->n];
	memset(t, 0, sizeof(*t));
	char *cp = fskv_path_join(dir, name, nlen);
	if (!cp || !(t->name = mem_dup(name, nlen + 1))) {
		mem_free(cp);
		return -ENOMEM;
	}
	t->name[nlen] = '\0';
	t->nlen = nlen;
	t->kind = kind;
	int rc;
	bool live;
	if (kind == FSOBJ_KEY_DIR) {
		rc = dir_snap_entry(kv, cp, e, false, &t->dir);
		live = rc == 0 && t->dir->exists;
	} else {
		rc = file_snap_entry(cp, e, &t->file);
		live = rc == 0 && t->file->nlive > 0;
	}
	/* A file listed without a directory of its name before it: no
	 * directory is there, which a lookup of it need not ask again. */
	struct fskv_dir *none = NULL;
	if (rc == 0 && !t->dir && !(*lastdir && !strcmp(lastdir, t->name)))
		rc = dir_snap_entry(kv, cp, NULL, false, &none);
	if (rc == 0) {
		pthread_mutex_lock(&kv->mu);
		if (t->dir)
			ctable_set(&kv->dirs, cp, dir_ref(t->dir));
		else
			ctable_set(&kv->files, cp, file_ref(t->file));
		if (none)
			ctable_set(&kv->dirs, cp, none);
		cache_trim_locked(kv);
		pthread_mutex_unlock(&kv->mu);
	}
	if (kind == FSOBJ_KEY_DIR)
		snprintf(lastdir, FSOBJ_NAME_MAX + 1, "%s", t->name);
	mem_free(cp);
	if (rc == 0 && live) {
		out->n++;
		return 0;
	}
	mem_free(t->name);
	fskv_file_unref(t->file);
	fskv_dir_unref(t->dir);
	return rc;
}

int
fskv_list(struct fskv *kv, const char *dir, const uint8_t *after,
          size_t alen, uint32_t limit, struct fskv_list *out)
{
	struct dyn_range_page pg;
	struct buf part;
	int rc;

	memset(out, 0, sizeof(*out));
	buf_init(&part);
	fsobj_key_part(&part, dir, strlen(dir));
	if ((rc = buf_err(&part)) != 0)
		goto out;
	rc = dyn_range(kv->o.client, part.data + KEYPOS_PLACED_HDR,
	               part.len - KEYPOS_PLACED_HDR, after, alen, limit, 0, NULL,
	               &pg);
	if (rc != 0)
		goto out;
	if (pg.n && !(out->e = mem_calloc(pg.n, sizeof(*out->e))))
		rc = -ENOMEM;
	/* The cursor may be the key of a directory whose file of the same
	 * name opens this page. */
	char lastdir[FSOBJ_NAME_MAX + 1] = "";
	const char *an;
	size_t anl;
	uint8_t ak;
	if (after && fsobj_key_entry(after, alen, &an, &anl, &ak) == 0 &&
	    ak == FSOBJ_KEY_DIR)
		snprintf(lastdir, sizeof(lastdir), "%.*s", (int)anl, an);
	for (uint32_t i = 0; i < pg.n && rc == 0; i++)
		rc = list_add(kv, dir, &pg.e[i], lastdir, out);
	if (rc == 0 && pg.more) {
		out->more = true;
		out->next = pg.next;
		out->next_len = pg.next_len;
		pg.next = NULL;
	}
	dyn_range_page_fini(&pg);
out:
	buf_fini(&part);
	if (rc != 0)
		fskv_list_fini(out);
	return rc;
}

/* Cache a lookup's two snapshots (taking the references given). */
static void
lookup_cache(struct fskv *kv, const char *path, struct fskv_dir *d,
             struct fskv_file *f)
{
	pthread_mutex_lock(&kv->mu);
	ctable_set(&kv->dirs, path, d);
	ctable_set(&kv->files, path, f);
	cache_trim_locked(kv);
	pthread_mutex_unlock(&kv->mu);
}

int
fskv_lookup(struct fskv *kv, const char *path, int flags,
            struct fskv_dir **dir, struct fskv_file **file)
{
	struct fskv_dir *d = NULL;
	struct fskv_file *f = NULL;
	struct buf kd, kf;
	uint8_t *cur = NULL;
	size_t clen = 0;
	int rc;

	*dir = NULL;
	*file = NULL;
	if (is_root(path))
		return fskv_dir_get(kv, path, flags, dir);
	if (!(flags & FSKV_FRESH)) {
		pthread_mutex_lock(&kv->mu);
		d = ctable_get(&kv->dirs, path);
		d = d && !expired(d->born_ms, kv->o.entry_ttl_ms) ? dir_ref(d)
		                                                  : NULL;
		f = ctable_get(&kv->files, path);
		f = f && !expired(f->born_ms, kv->o.attr_ttl_ms) ? file_ref(f)
		                                                 : NULL;
		pthread_mutex_unlock(&kv->mu);
		if (d && (d->exists || f)) {
			if (d->exists) {
				fskv_file_unref(f);
				f = NULL;
			} else {
				fskv_dir_unref(d);
				d = NULL;
			}
			*dir = d;
			*file = f;
			return 0;
		}
		fskv_dir_unref(d);
		fskv_file_unref(f);
		d = NULL;
		f = NULL;
	}
	/* Both keys in one range read: path's directory key and file key
	 * are neighbours (name 0 'D', name 0 'F'); the cursor is just
	 * before the first. */
	if ((rc = key_of(&kd, 'D', path)) != 0 ||
	    (rc = key_of(&kf, 'F', path)) != 0)
		goto out;
	struct dyn_range_entry *ed = NULL, *ef = NULL;
	struct dyn_range_page pages[2];
	int np = 0;
	if (!(cur = mem_dup(kd.data, kd.len))) {
		rc = -ENOMEM;
		goto out;
	}
	clen = kd.len;
	cur[clen - 1]--;
	bool done = false;
	while (!done && np < 2) {
		rc = dyn_range(kv->o.client, kd.data + KEYPOS_PLACED_HDR,
		               FSOBJ_PART_LEN, cur, clen, 2, 0, NULL, &pages[np]);
		if (rc != 0)
			break;
		const struct dyn_range_page *pg = &pages[np++];
		for (uint32_t i = 0; i < pg->n; i++) {
			struct dyn_range_entry *e = &pg->e[i];
			if (!fsobj_bytes_cmp(e->key, e->klen, kd.data, kd.len))
				ed = e;
			else if (!fsobj_bytes_cmp(e->key, e->klen, kf.data, kf.len))
				ef = e;
			else if (fsobj_bytes_cmp(e->key, e->klen, kf.data, kf.len) > 0)
				done = true;
		}
		done = done || !pg->more || ef ||
		       fsobj_bytes_cmp(pg->next, pg->next_len, kf.data, kf.len) >= 0;
		if (!done) {
			mem_free(cur);
			if (!(cur = mem_dup(pg->next, pg->next_len))) {
				rc = -ENOMEM;
				break;
			}
			clen = pg->next_len;
		}
	}
	if (rc == 0 && !done)
		rc = DYN_EBADMSG; /* two pages that did not get past it */
	if (rc == 0)
		rc = dir_snap_entry(kv, path, ed, true, &d);
	if (rc == 0)
		rc = file_snap_entry(path, ef, &f);
	for (int i = 0; i < np; i++)
		dyn_range_page_fini(&pages[i]);
	if (rc != 0)
		goto out;
	lookup_cache(kv, path, dir_ref(d), file_ref(f));
	if (d->exists) {
		*dir = d;
		fskv_file_unref(f);
	} else {
		*file = f;
		fskv_dir_unref(d);
	}
	d = NULL;
	f = NULL;
out:
	fskv_dir_unref(d);
	fskv_file_unref(f);
	mem_free(cur);
	buf_fini(&kd);
	buf_fini(&kf);
	return rc;
}

int
fskv_dir_empty(struct fskv *kv, const char *path)
{
	struct fskv_list l;
	uint8_t *cur = NULL;
	size_t clen = 0;
	int rc;
	do {
		rc = fskv_list(kv, path, cur, clen, 16, &l);
		mem_free(cur);
		cur = NULL;
		if (rc != 0)
			return rc;
		if (l.n > 0)
			rc = -ENOTEMPTY;
		if (l.more) {
			cur = l.next;
			clen = l.next_len;
			l.next = NULL;
		}
		fskv_list_fini(&l);
	} while (rc == 0 && cur);
	mem_free(cur);
	return rc;
}

/* ---- the rest ---- */

int
fskv_preflist(struct fskv *kv, char kind, const char *path, char *out,
              size_t cap)
{
	char addrs[16][128];
	size_t n = 0;
	struct buf k;
	int rc = key_of(&k, kind, path);
	if (rc == 0)
		rc = dyn_preflist(kv->o.client, k.data, k.len, addrs, 16, &n);
	buf_fini(&k);
	if (rc != 0 || n == 0)
		return snprintf(out, cap, "%s", kv->nodes);
	size_t at = 0;
	for (size_t i = 0; i < n; i++) {
		int w = snprintf(at < cap ? out + at : NULL,
		                 at < cap ? cap - at : 0, "%s%s", i ? "," : "",
		                 addrs[i]);
		if (w < 0)
			return -EINVAL;
		at += (size_t)w;
	}
	return (int)at;
}

static int
stripe_of(const char *path)
{
	return (int)(path_hash(path) % NSTRIPES);
}

static int
int_cmp(const void *a, const void *b)
{
	return *(const int *)a - *(const int *)b;
}

void
fskv_lock(struct fskv *kv, struct fskv_lock *l, const char *const *paths,
          int n)
{
	l->all = false;
	l->n = 0;
	for (int i = 0; i < n && i < FSKV_LOCK_MAX; i++)
		l->idx[l->n++] = stripe_of(paths[i]);
	qsort(l->idx, (size_t)l->n, sizeof(int), int_cmp);
	int k = 0;
	for (int i = 0; i < l->n; i++)
		if (k == 0 || l->idx[k - 1] != l->idx[i])
			l->idx[k++] = l->idx[i];
	l->n = k;
	for (int i = 0; i < l->n; i++)
		pthread_mutex_lock(&kv->stripes[l->idx[i]]);
}

void
fskv_lock_all(struct fskv *kv, struct fskv_lock *l)
{
	l->all = true;
	l->n = 0;
	for (int i = 0; i < NSTRIPES; i++)
		pthread_mutex_lock(&kv->stripes[i]);
}

void
fskv_unlock(struct fskv *kv, struct fskv_lock *l)
{
	if (l->all) {
		for (int i = NSTRIPES - 1; i >= 0; i--)
			pthread_mutex_unlock(&kv->stripes[i]);
		return;
	}
	for (int i = l->n - 1; i >= 0; i--)
		pthread_mutex_unlock(&kv->stripes[l->idx[i]]);
}

int
fskv_errno(int rc)
{
	if (rc >= 0)
		return rc;
	if (rc < DYN_ERR_BASE || rc >= DYN_ERR_END)
		return rc; /* already a -errno */
	switch (rc) {
	case DYN_ETIMEDOUT:
		return -ETIMEDOUT;
	case DYN_ETOOBIG:
		return -EFBIG;
	default:
		return -EIO;
	}
}
