/*
 * fsops — the FUSE operations.
 *
 * A path /a/b/c names the directory object or the file object whose key
 * is "c" in the part of /a/b (fsobj.h): a lookup reads both keys in one
 * range read (fskv_lookup, cached for entry_timeout); a directory wins a
 * name both have.  A name that is neither but reads BASE.vK is the K-th
 * sibling of file BASE when BASE has at least K live versions (a real
 * entry of that name wins).  A directory is listed by range reads of its
 * part, a page at a time.
 *
 * Namespace changes take the lock stripe of the path they change (rename
 * takes them all), then write objects in an order that never loses data:
 * a new object before the old one goes, so nothing is destroyed before its
 * copy exists; then, with their own lock alone, the parents' mtimes.
 */
#include "fsops.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>

#include "client.h"
#include "keypos.h"
#include "err.h"
#include "fsdir.h"
#include "fsfile.h"
#include "fskv.h"
#include "fsobj.h"
#include "log.h"
#include "mem.h"

#define XA_PREFIX   "user."
#define XA_DYNAMO   "user.dynamo."
#define XA_SIBLINGS "user.dynamo.siblings"
#define XA_VCLOCK   "user.dynamo.vclock"
#define XA_NODES    "user.dynamo.nodes"
#define TOTAL_BYTES (1ull << 40) /* statfs: the node's default map cap */

/* What the kernel's page cache holds for a path: the content id of the
 * version it cached (fsfile_content_id), in a small direct-mapped table.
 * An open that finds the same id keeps the cache (keep_cache); any other
 * id, or a path that lost its slot, makes the kernel drop it. */
#define KC_SLOTS 4096
struct kc_slot {
	uint64_t path; /* hash of the path */
	uint64_t id;
};

struct fs {
	struct fsops_config *cfg;
	struct dyn_client *cl;
	struct fskv *kv;
	struct fsfile_tab *tab;
	pthread_mutex_t kc_mu;
	struct kc_slot kc[KC_SLOTS];
};

enum fh_kind { FH_FILE = 1, FH_VIEW = 2 };

struct fh {
	enum fh_kind kind;
	struct fsfile *f;
	struct fsview *v;
	uint64_t kid; /* content id the kernel caches for this open */
};

static struct fs *
fs_get(void)
{
	return fuse_get_context()->private_data;
}

static struct fh *
fh_of(const struct fuse_file_info *fi)
{
	return fi ? (struct fh *)(uintptr_t)fi->fh : NULL;
}

/* ---- paths ---- */

/* Split path into its parent (a new string) and last component (pointing
 * into path). */
static int
path_split(const char *path, char **parent, const char **name)
{
	const char *s = strrchr(path, '/');
	if (!s || s[1] == '\0')
		return -EINVAL;
	size_t n = s == path ? 1 : (size_t)(s - path);
	*parent = mem_alloc(n + 1);
	if (!*parent)
		return -ENOMEM;
	memcpy(*parent, path, n);
	(*parent)[n] = '\0';
	*name = s + 1;
	return 0;
}

/* ---- resolution ---- */

enum res_kind { R_DIR = 1, R_FILE, R_SIB };

struct res {
	enum res_kind kind;
	struct fskv_dir *dir; /* R_DIR */
	struct fsfile *f;     /* R_FILE, when open here */
	struct fskv_file *s;  /* R_FILE (not open) and R_SIB */
	int vi;               /* R_SIB: version index in s */
	uint32_t k;           /* R_SIB: sibling number */
	char *base;           /* R_SIB: path of the file */
};

static void
res_fini(struct res *r)
{
	fskv_dir_unref(r->dir);
	fsfile_put(r->f);
	fskv_file_unref(r->s);
	mem_free(r->base);
	memset(r, 0, sizeof(*r));
}

/* The sibling entry called name in the directory at parent, if any. */
static int
resolve_sibling(struct fs *fs, const char *parent, const char *name,
                int flags, struct res *r)
{
	size_t bl;
	uint32_t k;
	struct fskv_file *s = NULL;
	if (fsobj_sibling_parse(name, strlen(name), &bl, &k) != 0 ||
	    bl > FSOBJ_NAME_MAX)
		return -ENOENT;
	char *bp = fskv_path_join(parent, name, bl);
	if (!bp)
		return -ENOMEM;
	int rc = fskv_file_get(fs->kv, bp, flags, &s);
	if (rc == 0 && (s->nlive < 2 || k > s->nlive))
		rc = -ENOENT;
	if (rc != 0) {
		fskv_file_unref(s);
		mem_free(bp);
		return rc;
	}
	r->kind = R_SIB;
	r->s = s;
	r->k = k;
	r->vi = fsobj_live_nth(&s->vs, k);
	r->base = bp;
	return 0;
}

/* The object at path itself, not a sibling view: a directory (it wins a
 * name that is also a file's), or a file that is live or open here.
 * -ENOENT when neither. */
static int
resolve_obj(struct fs *fs, const char *path, int flags, struct res *r)
{
	struct fskv_file *s;
	int rc = fskv_lookup(fs->kv, path, flags, &r->dir, &s);
	if (rc != 0)
		return rc;
	if (r->dir) {
		r->kind = R_DIR;
		return 0;
	}
	r->kind = R_FILE;
	if ((r->f = fsfile_find(fs->tab, path)) != NULL) {
		fskv_file_unref(s);
		return 0;
	}
	r->s = s;
	return s->nlive > 0 ? 0 : -ENOENT;
}

static int
resolve(struct fs *fs, const char *path, int flags, struct res *r)
{
	char *parent = NULL;
	const char *name;
	int rc;

	memset(r, 0, sizeof(*r));
	if (strcmp(path, "/") == 0) {
		if ((rc = fskv_dir_get(fs->kv, path, flags, &r->dir)) == 0)
			r->kind = R_DIR;
		return rc;
	}
	if ((rc = path_split(path, &parent, &name)) != 0)
		return rc;
	/* A name no entry can have (a sibling's may be longer). */
	rc = strlen(name) > FSOBJ_NAME_MAX ? -ENAMETOOLONG
	                                   : resolve_obj(fs, path, flags, r);
	if (rc == -ENOENT || rc == -ENAMETOOLONG) {
		res_fini(r);
		int src = resolve_sibling(fs, parent, name, flags, r);
		if (src != -ENOENT || rc == -ENOENT)
			rc = src;
	}
	if (rc != 0)
		res_fini(r);
	mem_free(parent);
	return rc;
}

static void
stat_res(const struct res *r, const char *path, struct stat *st)
{
	switch (r->kind) {
	case R_DIR:
		fsdir_stat(r->dir, st);
		return;
	case R_FILE:
		if (r->f)
			fsfile_stat(r->f, st);
		else
			fsfile_stat_version(r->s, r->s->newest, st);
		if (!r->f) /* stat_version clears write bits: restore */
			st->st_mode = r->s->f[r->s->newest].a.mode;
		break;
	case R_SIB:
		/* A sibling is a view of one version among others that
		 * share the file's number: its own is its path's. */
		fsfile_stat_version(r->s, r->vi, st);
		st->st_ino = fsdir_view_ino(path);
		break;
	}
}

/* ---- init and teardown ---- */

/*
 * The collector's grace period (the shortest any node reports): a version
 * may name only blobs seen stored less than half that ago (fsfile.c).  A
 * node that does not answer now is assumed to use the default; one that
 * collects nothing ("off") does not count.
 */
static uint64_t
cluster_grace_ms(struct dyn_client *cl, size_t nnodes)
{
	uint64_t grace = UINT64_MAX / 4;
	bool any = false;
	for (size_t i = 0; i < nnodes; i++) {
		struct dyn_status st;
		if (dyn_status(cl, i, &st) != 0)
			continue;
		const char *p = st.stats ? strstr(st.stats, "gc_grace_ms=") : NULL;
		if (p) {
			uint64_t g = strtoull(p + 12, NULL, 10);
			any = true;
			if (g > 0 && g < grace)
				grace = g;
		}
		dyn_status_fini(&st);
	}
	if (!any) {
		LOG_WARN("no node told its collector's grace period: "
		         "assuming %u s",
		         FSOPS_GRACE_DEFAULT_S);
		grace = (uint64_t)FSOPS_GRACE_DEFAULT_S * 1000;
	}
	return grace;
}

static void *
op_init(struct fuse_conn_info *conn, struct fuse_config *cfg)
{
	struct fs *fs = mem_calloc(1, sizeof(*fs));
	struct fsops_config *c = fuse_get_context()->private_data;
	int rc = -ENOMEM;

	cfg->use_ino = 1;
	cfg->readdir_ino = 1;
	cfg->hard_remove = 1;
	cfg->nullpath_ok = 0;
	if (conn->capable & FUSE_CAP_ATOMIC_O_TRUNC)
		conn->want |= FUSE_CAP_ATOMIC_O_TRUNC;
	/* Big requests (1 MiB): fewer round trips through the kernel. */
	conn->max_write = 1u << 20;
	conn->max_readahead = 1u << 20;
	if (!fs)
		goto fail;
	fs->cfg = c;
	pthread_mutex_init(&fs->kc_mu, NULL);
	struct dyn_client_opts co = {
	    .nodes = (const char *const *)c->nodes,
	    .nnodes = c->nnodes,
	    .keys = c->keys,
	    .cred = c->cred, /* the TLS setup is made here: after the fork */
	    .timeout_ms = c->timeout_ms,
	    .no_routing = c->no_routing,
	};
	if ((rc = dyn_client_new(&co, &fs->cl)) != 0)
		goto fail;
	struct fskv_opts ko = {
	    .client = fs->cl,
	    .nodes = c->nodes_text,
	    .attr_ttl_ms = (uint64_t)(cfg->attr_timeout * 1000),
	    .entry_ttl_ms = (uint64_t)(cfg->entry_timeout * 1000),
	    .chunk_size = c->chunk_size,
	    .inline_max = c->inline_max,
	    .cache_size = c->cache_size,
	    .gc_grace_ms = cluster_grace_ms(fs->cl, c->nnodes),
	    .root_uid = getuid(),
	    .root_gid = getgid(),
	};
	if ((rc = fskv_new(&ko, &fs->kv)) != 0 ||
	    (rc = fsfile_tab_new(fs->kv, &fs->tab)) != 0)
		goto fail;
	LOG_INFO("mounted: nodes %s, timeout %d ms, caches %.3g/%.3g s",
	         c->nodes_text, c->timeout_ms, cfg->attr_timeout,
	         cfg->entry_timeout);
	return fs;
fail:
	LOG_ERROR("cannot start: %s", dyn_strerror(rc));
	c->init_failed = 1;
	if (fs) {
		fskv_free(fs->kv);
		dyn_client_free(fs->cl);
		mem_free(fs);
	}
	fuse_exit(fuse_get_context()->fuse);
	return NULL;
}

static void
op_destroy(void *p)
{
	struct fs *fs = p;
	if (!fs)
		return;
	fsfile_tab_free(fs->tab);
	fskv_free(fs->kv);
	dyn_client_free(fs->cl);
	pthread_mutex_destroy(&fs->kc_mu);
	mem_free(fs);
}

/* ---- attributes ---- */

static int
op_getattr(const char *path, struct stat *st, struct fuse_file_info *fi)
{
	struct fs *fs = fs_get();
	struct fh *h = fh_of(fi);
	struct res r;

	if (h && h->kind == FH_FILE) {
		fsfile_stat(h->f, st);
		return 0;
	}
	int rc = resolve(fs, path, 0, &r);
	if (rc != 0)
		return fskv_errno(rc);
	stat_res(&r, path, st);
	res_fini(&r);
	return 0;
}

/* Apply fn to the directory at path's attributes. */
struct dattr_arg {
	int what; /* 0 chmod, 1 chown, 2 utimens, 3 setxattr, 4 removexattr */
	uint32_t mode, uid, gid;
	const struct timespec *tv;
	const char *name;
	const char *value;
	size_t len;
	int flags;
};

static int
dir_attr_fn(struct fsobj_dir *d, void *arg)
{
	struct dattr_arg *a = arg;
	struct timespec now = fsdir_now();
	int rc = 0;
	switch (a->what) {
	case 0:
		d->a.mode = (d->a.mode & S_IFMT) | (a->mode & 07777);
		break;
	case 1:
		if (a->uid != (uint32_t)-1)
			d->a.uid = a->uid;
		if (a->gid != (uint32_t)-1)
			d->a.gid = a->gid;
		break;
	case 2:
		for (int i = 0; i < 2; i++) {
			struct timespec *t = i ? &d->a.mtime : &d->a.atime;
			if (a->tv[i].tv_nsec == UTIME_OMIT)
				continue;
			*t = a->tv[i].tv_nsec == UTIME_NOW ? now : a->tv[i];
		}
		break;
	case 3:
		rc = fsobj_xattr_set(&d->a, a->name, a->value, a->len,
		                     a->flags);
		break;
	case 4:
		rc = fsobj_xattr_remove(&d->a, a->name);
		break;
	}
	if (rc == 0)
		d->a.ctime = now;
	return rc;
}

/* Change attributes: a directory through its object, a file through its
 * (maybe open) fsfile.  Changes by path are written at once unless the
 * file is open here, in which case its close writes them; changes through
 * a handle (fchmod, futimens, ...) go out at close. */
static int
set_attr(const char *path, struct fuse_file_info *fi, struct dattr_arg *a)
{
	struct fs *fs = fs_get();
	struct fh *h = fh_of(fi);
	struct fsfile *f = NULL;
	struct res r;
	struct fskv_lock l;
	int rc;

	if (h && h->kind == FH_VIEW)
		return -EROFS;
	if (h) {
		f = h->f;
	} else {
		if ((rc = resolve(fs, path, 0, &r)) != 0)
			return fskv_errno(rc);
		enum res_kind kind = r.kind;
		res_fini(&r);
		if (kind == R_SIB)
			return -EROFS;
		if (kind == R_DIR) {
			const char *p[1] = {path};
			fskv_lock(fs->kv, &l, p, 1);
			rc = fskv_dir_update(fs->kv, path, 0, dir_attr_fn, a);
			fskv_unlock(fs->kv, &l);
			return fskv_errno(rc);
		}
		if ((rc = fsfile_get(fs->tab, path, 0, &f)) != 0)
			return fskv_errno(rc);
	}
	rc = 0;
	switch (a->what) {
	case 0:
		fsfile_chmod(f, a->mode);
		break;
	case 1:
		fsfile_chown(f, a->uid, a->gid);
		break;
	case 2:
		fsfile_utimens(f, a->tv);
		break;
	case 3:
		rc = fsfile_setxattr(f, a->name, a->value, a->len, a->flags);
		break;
	case 4:
		rc = fsfile_removexattr(f, a->name);
		break;
	}
	if (!h) {
		if (rc == 0 && !fsfile_is_open(f))
			rc = fsfile_flush(f);
		fsfile_put(f);
	}
	return fskv_errno(rc);
}

static int
op_chmod(const char *path, mode_t mode, struct fuse_file_info *fi)
{
	struct dattr_arg a = {.what = 0, .mode = mode};
	return set_attr(path, fi, &a);
}

static int
op_chown(const char *path, uid_t uid, gid_t gid, struct fuse_file_info *fi)
{
	struct dattr_arg a = {.what = 1, .uid = uid, .gid = gid};
	return set_attr(path, fi, &a);
}

static int
op_utimens(const char *path, const struct timespec tv[2],
           struct fuse_file_info *fi)
{
	struct timespec now[2] = {{0, UTIME_NOW}, {0, UTIME_NOW}};
	struct dattr_arg a = {.what = 2, .tv = tv ? tv : now};
	return set_attr(path, fi, &a);
}

static int
op_truncate(const char *path, off_t size, struct fuse_file_info *fi)
{
	struct fs *fs = fs_get();
	struct fh *h = fh_of(fi);
	struct fsfile *f;
	struct res r;
	int rc;

	if (size < 0)
		return -EINVAL;
	if (h) {
		if (h->kind == FH_VIEW)
			return -EROFS;
		return fskv_errno(fsfile_truncate(h->f, (uint64_t)size));
	}
	if ((rc = resolve(fs, path, 0, &r)) != 0)
		return fskv_errno(rc);
	enum res_kind kind = r.kind;
	res_fini(&r);
	if (kind == R_SIB)
		return -EROFS;
	if (kind == R_DIR)
		return -EISDIR;
	if ((rc = fsfile_get(fs->tab, path, FSFILE_FRESH, &f)) != 0)
		return fskv_errno(rc);
	rc = fsfile_truncate(f, (uint64_t)size);
	if (rc == 0 && !fsfile_is_open(f))
		rc = fsfile_flush(f);
	fsfile_put(f);
	return fskv_errno(rc);
}

static int
op_readlink(const char *path, char *buf, size_t size)
{
	struct fs *fs = fs_get();
	struct res r;
	int rc = resolve(fs, path, 0, &r);
	if (rc != 0)
		return fskv_errno(rc);
	if (r.kind == R_DIR) {
		rc = -EINVAL;
	} else if (r.f) {
		rc = fsfile_readlink(r.f, buf, size);
	} else {
		const struct fsobj_file *v =
		    &r.s->f[r.kind == R_SIB ? r.vi : r.s->newest];
		if (!S_ISLNK(v->a.mode)) {
			rc = -EINVAL;
		} else if (size > 0) {
			size_t n =
			    v->size < size - 1 ? (size_t)v->size : size - 1;
			if (n > 0)
				memcpy(buf, v->data, n);
			buf[n] = '\0';
		}
	}
	res_fini(&r);
	return fskv_errno(rc);
}

/* ---- directories ---- */

/* A name this filesystem can hold (before touching anything). */
static int
name_check(const char *path)
{
	const char *name = strrchr(path, '/');
	name = name ? name + 1 : path;
	if (strlen(name) > FSOBJ_NAME_MAX)
		return -ENAMETOOLONG;
	if (strlen(path) + 1 > KEY_MAX_LEN)
		return -ENAMETOOLONG;
	return 0;
}

/* Is there a live object at path: *isdir says which kind (a directory
 * wins a name).  A file created here and not yet written counts. */
static int
obj_live(struct fs *fs, const char *path, int flags, bool *live, bool *isdir)
{
	struct res r;
	memset(&r, 0, sizeof(r));
	int rc = resolve_obj(fs, path, flags, &r);
	*live = rc == 0;
	*isdir = rc == 0 && r.kind == R_DIR;
	res_fini(&r);
	return rc == -ENOENT ? 0 : rc;
}

/*
 * The start of every create (mkdir, symlink, create, mknod): check the
 * name, split it, read the parent (it must exist), lock the path and tell
 * whether a live object already has the name (*live, *isdir).  On success
 * the lock and *parent are the caller's to release; on failure nothing is
 * held.  Creates of different names in one directory run side by side:
 * each writes its own key.
 */
static int
create_begin(struct fs *fs, const char *path, char **parent,
    const char **name, struct fskv_lock *l, bool *live, bool *isdir)
{
	struct fskv_dir *pd = NULL;
	int rc;
	if ((rc = name_check(path)) != 0 ||
	    (rc = path_split(path, parent, name)) != 0)
		return rc;
	if ((rc = fskv_dir_get(fs->kv, *parent, 0, &pd)) != 0) {
		mem_free(*parent);
		*parent = NULL;
		return rc;
	}
	fskv_dir_unref(pd);
	const char *lp[1] = {path};
	fskv_lock(fs->kv, l, lp, 1);
	if ((rc = obj_live(fs, path, 0, live, isdir)) != 0) {
		fskv_unlock(fs->kv, l);
		mem_free(*parent);
		*parent = NULL;
	}
	return rc;
}

static int
op_mkdir(const char *path, mode_t mode)
{
	struct fs *fs = fs_get();
	struct fuse_context *cx = fuse_get_context();
	char *parent = NULL;
	const char *name;
	struct fskv_lock l;
	bool live, isdir;
	int rc;

	if ((rc = create_begin(fs, path, &parent, &name, &l, &live, &isdir)))
		return fskv_errno(rc);
	rc = live ? -EEXIST : fsdir_make(fs->kv, path, mode, cx->uid, cx->gid);
	fskv_unlock(fs->kv, &l);
	if (rc == 0)
		fsdir_touch(fs->kv, parent);
	mem_free(parent);
	return fskv_errno(rc);
}

static int
op_rmdir(const char *path)
{
	struct fs *fs = fs_get();
	char *parent = NULL;
	const char *name;
	struct fskv_lock l;
	int rc;

	if (strcmp(path, "/") == 0)
		return -EBUSY;
	if ((rc = path_split(path, &parent, &name)) != 0)
		return rc;
	if (strlen(name) > FSOBJ_NAME_MAX) {
		mem_free(parent);
		return -ENAMETOOLONG;
	}
	const char *lp[1] = {path};
	fskv_lock(fs->kv, &l, lp, 1);
	rc = fsdir_remove(fs->kv, path);
	bool live, isdir;
	if (rc == -ENOENT && obj_live(fs, path, 0, &live, &isdir) == 0 && live)
		rc = -ENOTDIR;
	fskv_unlock(fs->kv, &l);
	if (rc == 0)
		fsdir_touch(fs->kv, parent);
	mem_free(parent);
	return fskv_errno(rc);
}

static int
op_opendir(const char *path, struct fuse_file_info *fi)
{
	struct fs *fs = fs_get();
	struct fskv_dir *d;
	struct fsdir_list *l;
	int rc = fskv_dir_get(fs->kv, path, 0, &d);
	if (rc != 0)
		return fskv_errno(rc);
	fskv_dir_unref(d);
	if ((rc = fsdir_list_open(fs->kv, fs->tab, path, &l)) != 0)
		return fskv_errno(rc);
	fi->fh = (uint64_t)(uintptr_t)l;
	return 0;
}

static int
op_releasedir(const char *path, struct fuse_file_info *fi)
{
	(void)path;
	fsdir_list_close((struct fsdir_list *)(uintptr_t)fi->fh);
	return 0;
}

/* Entries go out with offsets (an entry's position: "." 0, ".." 1, the
 * children from 2), so the kernel asks for a buffer's worth at a time and
 * the listing is read a page at a time (fsdir.h). */
static int
op_readdir(const char *path, void *buf, fuse_fill_dir_t filler, off_t off,
           struct fuse_file_info *fi, enum fuse_readdir_flags flags)
{
	struct fs *fs = fs_get();
	struct fsdir_list *l = (struct fsdir_list *)(uintptr_t)fi->fh;
	const struct fsdir_item *it;
	struct stat st;
	int rc = 0;
	(void)flags;

	if (off < 2) {
		struct fskv_dir *d;
		if ((rc = fskv_dir_get(fs->kv, path, 0, &d)) != 0)
			return fskv_errno(rc);
		fsdir_stat(d, &st);
		fskv_dir_unref(d);
		if (off == 0 && filler(buf, ".", &st, 1, FUSE_FILL_DIR_PLUS))
			return 0;
		if (filler(buf, "..", NULL, 2, 0))
			return 0;
		off = 2;
	}
	while ((rc = fsdir_list_at(l, off, &it)) == 0 && it &&
	       !filler(buf, it->name, &it->st, off + 1, FUSE_FILL_DIR_PLUS))
		off++;
	return fskv_errno(rc);
}

/* ---- files ---- */

static uint64_t
path_hash(const char *p)
{
	uint64_t h = 1469598103934665603ull;
	for (; *p; p++)
		h = (h ^ (uint8_t)*p) * 1099511628211ull;
	return h;
}

/* Does the kernel cache what id names for path?  It will from now on. */
static int
kc_check(struct fs *fs, const char *path, uint64_t id)
{
	uint64_t h = path_hash(path);
	struct kc_slot *k = &fs->kc[h % KC_SLOTS];
	pthread_mutex_lock(&fs->kc_mu);
	int keep = k->path == h && k->id == id;
	k->path = h;
	k->id = id;
	pthread_mutex_unlock(&fs->kc_mu);
	return keep;
}

/* This mount changed path from id old to id new: the kernel's cache saw
 * every write, so it holds the new content if it held the old one. */
static void
kc_update(struct fs *fs, const char *path, uint64_t old, uint64_t id)
{
	uint64_t h = path_hash(path);
	struct kc_slot *k = &fs->kc[h % KC_SLOTS];
	pthread_mutex_lock(&fs->kc_mu);
	if (k->path == h && k->id == old)
		k->id = id;
	pthread_mutex_unlock(&fs->kc_mu);
}

static int
fh_new(struct fuse_file_info *fi, struct fsfile *f, struct fsview *v)
{
	struct fh *h = mem_calloc(1, sizeof(*h));
	if (!h)
		return -ENOMEM;
	h->kind = f ? FH_FILE : FH_VIEW;
	h->f = f;
	h->v = v;
	fi->fh = (uint64_t)(uintptr_t)h;
	return 0;
}

static bool
wants_write(int flags)
{
	return (flags & O_ACCMODE) != O_RDONLY || (flags & O_TRUNC);
}

static int
op_create(const char *path, mode_t mode, struct fuse_file_info *fi)
{
	struct fs *fs = fs_get();
	struct fuse_context *cx = fuse_get_context();
	struct fsfile *f = NULL;
	char *parent = NULL;
	const char *name;
	struct fskv_lock l;
	bool live, isdir, made = false;
	int rc;

	if ((rc = create_begin(fs, path, &parent, &name, &l, &live, &isdir)))
		return fskv_errno(rc);
	if (live) {
		if (fi->flags & O_EXCL) {
			rc = -EEXIST;
			goto out;
		}
		if (isdir) {
			rc = -EISDIR;
			goto out;
		}
		/* An existing file: this is an open. */
		if ((rc = fsfile_get(fs->tab, path,
		                     FSFILE_FRESH | FSFILE_HANDLE, &f)) != 0)
			goto out;
		if (fi->flags & O_TRUNC) {
			rc = fsfile_truncate(f, 0);
			fsfile_replace(f);
		}
	} else {
		/* Written at once, empty: the object is the directory entry,
		 * so other mounts (and this one's listings) see the file
		 * while it is being written. */
		rc = fsfile_create(fs->tab, path, S_IFREG | (mode & 07777),
		                   cx->uid, cx->gid, &f);
		if (rc == 0 && (rc = fsfile_flush(f)) != 0)
			fsfile_unlink(fs->tab, path, FSKV_FRESH); /* drop it */
		made = rc == 0;
	}
	if (rc == 0)
		rc = fh_new(fi, f, NULL);
	if (rc == 0) {
		/* A new inode: the kernel caches nothing of it yet. */
		fh_of(fi)->kid = fsfile_content_id(f);
		kc_check(fs, path, fh_of(fi)->kid);
	}
	if (rc != 0 && f) {
		fsfile_close(f);
		f = NULL;
	}
out:
	fskv_unlock(fs->kv, &l);
	if (made)
		fsdir_touch(fs->kv, parent);
	mem_free(parent);
	return fskv_errno(rc);
}

static int make_inline(const char *path, uint32_t mode, const char *data,
                       uint64_t rdev);

static int
op_mknod(const char *path, mode_t mode, dev_t dev)
{
	if (S_ISFIFO(mode) || S_ISSOCK(mode) || S_ISCHR(mode) ||
	    S_ISBLK(mode))
		return make_inline(path, mode & (S_IFMT | 07777), "",
		                   S_ISCHR(mode) || S_ISBLK(mode) ? dev : 0);
	if (!S_ISREG(mode))
		return -EINVAL;
	struct fuse_file_info fi = {.flags = O_CREAT | O_EXCL | O_WRONLY};
	int rc = op_create(path, mode, &fi);
	if (rc != 0)
		return rc;
	struct fh *h = fh_of(&fi);
	fsfile_close(h->f); /* op_create wrote it */
	mem_free(h);
	return 0;
}

static int
op_open(const char *path, struct fuse_file_info *fi)
{
	struct fs *fs = fs_get();
	struct fsfile *f = NULL;
	struct fsview *v = NULL;
	struct res r;
	int rc = resolve(fs, path, 0, &r);
	if (rc != 0)
		return fskv_errno(rc);
	if (r.kind == R_DIR) {
		rc = -EISDIR;
	} else if (r.kind == R_SIB) {
		if (wants_write(fi->flags))
			rc = -EROFS;
		else
			rc = fsview_open(fs->tab, r.base, r.k, &v);
	} else {
		rc = fsfile_get(fs->tab, path, FSFILE_FRESH | FSFILE_HANDLE,
		                &f);
		if (rc == 0 && (fi->flags & O_TRUNC)) {
			rc = fsfile_truncate(f, 0);
			fsfile_replace(f);
		}
	}
	res_fini(&r);
	if (rc == 0)
		rc = fh_new(fi, f, v);
	if (rc == 0 && f) {
		fh_of(fi)->kid = fsfile_content_id(f);
		fi->keep_cache = kc_check(fs, path, fh_of(fi)->kid);
	}
	/* Another version than the kernel cached: its pages go (no
	 * keep_cache), and so must its attributes, or reads stop at the size
	 * it cached (another mount's longer file read short: close-to-open
	 * broken).  O_TRUNC needs nothing: the kernel sets the size 0. */
	if (rc == 0 && !fi->keep_cache && !(fi->flags & O_TRUNC))
		fuse_invalidate_path(fuse_get_context()->fuse, path);
	if (rc != 0) {
		fsfile_close(f);
		fsview_close(v);
	}
	return fskv_errno(rc);
}

static int
op_read(const char *path, char *buf, size_t size, off_t off,
        struct fuse_file_info *fi)
{
	struct fh *h = fh_of(fi);
	(void)path;
	if (off < 0)
		return -EINVAL;
	int rc = h->kind == FH_FILE
	             ? fsfile_read(h->f, buf, size, (uint64_t)off)
	             : fsview_read(h->v, buf, size, (uint64_t)off);
	return fskv_errno(rc);
}

static int
op_write(const char *path, const char *buf, size_t size, off_t off,
         struct fuse_file_info *fi)
{
	struct fh *h = fh_of(fi);
	(void)path;
	if (h->kind != FH_FILE)
		return -EBADF;
	if (off < 0)
		return -EINVAL;
	return fskv_errno(fsfile_write(h->f, buf, size, (uint64_t)off));
}

static int
op_flush(const char *path, struct fuse_file_info *fi)
{
	struct fh *h = fh_of(fi);
	if (h->kind != FH_FILE)
		return 0;
	int rc = fsfile_flush(h->f);
	if (rc == 0 && path) { /* NULL: unlinked while open */
		uint64_t id = fsfile_content_id(h->f);
		kc_update(fs_get(), path, h->kid, id);
		h->kid = id;
	}
	return fskv_errno(rc);
}

static int
op_fsync(const char *path, int datasync, struct fuse_file_info *fi)
{
	(void)datasync;
	return op_flush(path, fi);
}

/* Whole chunks are shared by reference (cp writes no content); the rest
 * is copied. */
static ssize_t
op_copy_file_range(const char *path_in, struct fuse_file_info *fi_in,
                   off_t off_in, const char *path_out,
                   struct fuse_file_info *fi_out, off_t off_out, size_t len,
                   int flags)
{
	struct fh *hi = fh_of(fi_in), *ho = fh_of(fi_out);
	(void)path_in;
	(void)path_out;
	if (flags != 0 || off_in < 0 || off_out < 0)
		return -EINVAL;
	if (ho->kind != FH_FILE)
		return -EBADF;
	if (hi->kind != FH_FILE)
		return -EOPNOTSUPP; /* the kernel falls back to read/write */
	return fskv_errno(fsfile_copy_range(hi->f, (uint64_t)off_in, ho->f,
	                                    (uint64_t)off_out, len));
}

static int
op_release(const char *path, struct fuse_file_info *fi)
{
	struct fh *h = fh_of(fi);
	(void)path;
	if (h->kind == FH_FILE)
		fsfile_close(h->f);
	else
		fsview_close(h->v);
	mem_free(h);
	return 0;
}

/* ---- namespace ---- */

static int
op_unlink(const char *path)
{
	struct fs *fs = fs_get();
	char *parent = NULL;
	const char *name;
	struct fskv_lock l;
	struct res r;
	int rc;

	memset(&r, 0, sizeof(r));
	if ((rc = path_split(path, &parent, &name)) != 0)
		return rc;
	const char *lp[2] = {path, NULL};
	int nl = 1;
	/* rm name.vK locks the file it drops a version of. */
	size_t bl;
	uint32_t k;
	char *base = NULL;
	if (fsobj_sibling_parse(name, strlen(name), &bl, &k) == 0 &&
	    bl <= FSOBJ_NAME_MAX) {
		if (!(base = fskv_path_join(parent, name, bl))) {
			mem_free(parent);
			return -ENOMEM;
		}
		lp[nl++] = base;
	}
	fskv_lock(fs->kv, &l, lp, nl);
	rc = strlen(name) > FSOBJ_NAME_MAX ? -ENAMETOOLONG
	                                   : resolve_obj(fs, path, 0, &r);
	if (rc == 0) {
		if (r.kind == R_DIR) {
			rc = -EISDIR;
			goto out;
		}
		res_fini(&r);
		if ((rc = fsfile_unlink(fs->tab, path, 0)) == 0)
			goto out;
	}
	if (rc != -ENOENT && rc != -ENAMETOOLONG)
		goto out;
	/* rm name.vK: drop that sibling. */
	res_fini(&r);
	int src = resolve_sibling(fs, parent, name, FSKV_FRESH, &r);
	if (src == -ENOENT && rc == -ENAMETOOLONG)
		goto out;
	if ((rc = src) != 0)
		goto out;
	struct fsfile *f;
	if ((rc = fsfile_get(fs->tab, r.base, FSFILE_FRESH, &f)) != 0)
		goto out;
	rc = fsfile_sibling_drop(f, r.k);
	fsfile_put(f);
out:
	fskv_unlock(fs->kv, &l);
	if (rc == 0)
		fsdir_touch(fs->kv, parent);
	res_fini(&r);
	mem_free(base);
	mem_free(parent);
	return fskv_errno(rc);
}

/* Make an object that is only its inline bytes, no content: a symlink (its
 * target), a FIFO, a socket or a device node (nothing but its rdev; the
 * kernel serves them locally). */
static int
make_inline(const char *path, uint32_t mode, const char *data, uint64_t rdev)
{
	struct fs *fs = fs_get();
	struct fuse_context *cx = fuse_get_context();
	struct fskv_file *s = NULL;
	struct fsobj_file nf;
	char *parent = NULL;
	const char *name;
	struct fskv_lock l;
	bool live, isdir;
	int rc;

	fsobj_file_init(&nf);
	if ((rc = create_begin(fs, path, &parent, &name, &l, &live, &isdir)))
		return fskv_errno(rc);
	if (live) {
		rc = -EEXIST;
		goto out;
	}
	if ((rc = fskv_file_get(fs->kv, path, FSKV_FRESH, &s)) != 0)
		goto out;
	struct timespec now = fsdir_now();
	nf.a.mode = mode;
	nf.a.ino = fsobj_ino_new();
	nf.a.rdev = rdev;
	nf.a.uid = cx->uid;
	nf.a.gid = cx->gid;
	nf.a.atime = nf.a.mtime = nf.a.ctime = now;
	nf.layout = FSOBJ_INLINE;
	nf.size = strlen(data);
	if (nf.size && !(nf.data = mem_dup(data, (size_t)nf.size))) {
		rc = -ENOMEM;
		goto out;
	}
	rc = fskv_file_put(fs->kv, path, &s->ctx, 1, &nf, NULL);
out:
	fskv_unlock(fs->kv, &l);
	if (rc == 0)
		fsdir_touch(fs->kv, parent);
	fsobj_file_fini(&nf);
	fskv_file_unref(s);
	mem_free(parent);
	return fskv_errno(rc);
}

static int
op_symlink(const char *target, const char *path)
{
	return make_inline(path, S_IFLNK | 0777, target, 0);
}

static int
op_link(const char *from, const char *to)
{
	(void)from;
	(void)to;
	return -EPERM; /* no hard links: one path, one object */
}

/* Is `to` a descendant of `from` (or from itself)? */
static bool
is_below(const char *to, const char *from)
{
	size_t n = strlen(from);
	return strncmp(to, from, n) == 0 && (to[n] == '\0' || to[n] == '/');
}

static int
op_rename(const char *from, const char *to, unsigned int flags)
{
	struct fs *fs = fs_get();
	char *fparent = NULL, *tparent = NULL;
	const char *fname, *tname;
	struct fskv_lock l;
	struct res rf;
	bool texists = false, tisdir = false;
	int rc;

	memset(&rf, 0, sizeof(rf));
	if (flags & RENAME_EXCHANGE)
		return -EINVAL;
	if (strcmp(from, to) == 0)
		return 0;
	if ((rc = name_check(to)) != 0 ||
	    (rc = path_split(from, &fparent, &fname)) != 0 ||
	    (rc = path_split(to, &tparent, &tname)) != 0)
		goto out_free;
	fskv_lock_all(fs->kv, &l);
	struct fskv_dir *td = NULL;
	if ((rc = resolve(fs, from, FSKV_FRESH, &rf)) != 0 ||
	    (rc = fskv_dir_get(fs->kv, tparent, 0, &td)) != 0 ||
	    (rc = obj_live(fs, to, FSKV_FRESH, &texists, &tisdir)) != 0)
		goto out;
	if (texists && (flags & RENAME_NOREPLACE)) {
		rc = -EEXIST;
		goto out;
	}

	if (rf.kind == R_SIB) {
		struct fsfile *f;
		if (texists && tisdir) {
			rc = -EISDIR;
			goto out;
		}
		if ((rc = fsfile_get(fs->tab, rf.base, FSFILE_FRESH, &f)) != 0)
			goto out;
		if (strcmp(rf.base, to) == 0)
			rc = fsfile_sibling_pick(f, rf.k); /* mv name.vK name */
		else
			rc = fsfile_sibling_move(f, rf.k, to);
		fsfile_put(f);
	} else if (rf.kind == R_FILE) {
		if (texists && tisdir) {
			rc = -EISDIR;
			goto out;
		}
		rc = fsfile_move(fs->tab, from, to);
	} else {
		if (strcmp(from, "/") == 0 || is_below(to, from)) {
			rc = -EINVAL;
			goto out;
		}
		if (texists && !tisdir) {
			rc = -ENOTDIR;
			goto out;
		}
		if (texists && (rc = fskv_dir_empty(fs->kv, to)) != 0)
			goto out;
		rc = fsdir_move_tree(fs->kv, fs->tab, from, to);
		fskv_forget_tree(fs->kv, from);
		fskv_forget_tree(fs->kv, to);
	}
out:
	fskv_dir_unref(td);
	fskv_unlock(fs->kv, &l);
	if (rc == 0) {
		fsdir_touch(fs->kv, fparent);
		if (strcmp(fparent, tparent) != 0)
			fsdir_touch(fs->kv, tparent);
	}
out_free:
	res_fini(&rf);
	mem_free(fparent);
	mem_free(tparent);
	return fskv_errno(rc);
}

static int
op_statfs(const char *path, struct statvfs *sv)
{
	struct fs *fs = fs_get();
	struct dyn_status st;
	uint64_t used = 0;
	(void)path;
	if (dyn_status(fs->cl, 0, &st) == 0) {
		used = st.db_bytes;
		dyn_status_fini(&st);
	}
	memset(sv, 0, sizeof(*sv));
	sv->f_bsize = 4096;
	sv->f_frsize = 4096;
	sv->f_blocks = TOTAL_BYTES / 4096;
	uint64_t usedb = (used + 4095) / 4096;
	sv->f_bfree = sv->f_blocks > usedb ? sv->f_blocks - usedb : 0;
	sv->f_bavail = sv->f_bfree;
	sv->f_files = 1ull << 32;
	sv->f_ffree = 1ull << 32;
	sv->f_favail = 1ull << 32;
	sv->f_namemax = FSOBJ_NAME_MAX;
	return 0;
}

/* ---- xattrs ---- */

static int
copy_out(const char *text, size_t len, char *buf, size_t size)
{
	if (size == 0)
		return (int)len;
	if (size < len)
		return -ERANGE;
	if (len > 0)
		memcpy(buf, text, len);
	return (int)len;
}

static int
dynamo_xattr(struct fs *fs, const char *path, const struct res *r,
             const char *name, char *buf, size_t size)
{
	char text[1024];
	int n;

	if (strcmp(name, XA_NODES) == 0) {
		n = fskv_preflist(fs->kv, r->kind == R_DIR ? 'D' : 'F',
		                  r->base ? r->base : path, text,
		                  sizeof(text));
		if (n < 0)
			return n;
		return copy_out(text, strlen(text), buf, size);
	}
	if (strcmp(name, XA_SIBLINGS) == 0) {
		uint32_t k = 1;
		if (r->kind != R_DIR) {
			const char *p = r->kind == R_SIB ? r->base : path;
			struct fskv_file *s;
			int rc = fskv_file_get(fs->kv, p, FSKV_FRESH, &s);
			if (rc != 0)
				return rc;
			k = s->nlive;
			fskv_file_unref(s);
		}
		n = snprintf(text, sizeof(text), "%" PRIu32, k);
		return copy_out(text, (size_t)n, buf, size);
	}
	if (strcmp(name, XA_VCLOCK) == 0) {
		struct vclock c;
		if (r->kind == R_DIR) {
			struct fskv_dir *d;
			int rc = fskv_dir_get(fs->kv, path, FSKV_FRESH, &d);
			if (rc != 0)
				return rc;
			c = d->clock;
			fskv_dir_unref(d);
		} else {
			const char *p = r->kind == R_SIB ? r->base : path;
			struct fskv_file *s;
			int rc = fskv_file_get(fs->kv, p, FSKV_FRESH, &s);
			if (rc != 0)
				return rc;
			int vi = r->kind == R_SIB
			             ? fsobj_live_nth(&s->vs, r->k)
			             : -1;
			if (vi >= 0)
				version_context(&s->vs.v[vi], &c);
			else
				vset_context(&s->vs, &c);
			fskv_file_unref(s);
		}
		n = fsobj_clock_text(&c, text, sizeof(text));
		if (n < 0 || (size_t)n >= sizeof(text))
			return -ERANGE;
		return copy_out(text, (size_t)n, buf, size);
	}
	return -ENODATA;
}

static int
op_getxattr(const char *path, const char *name, char *buf, size_t size)
{
	struct fs *fs = fs_get();
	struct res r;
	int rc;

	/* The kernel asks for security.* on every write: answer at once. */
	if (strncmp(name, XA_PREFIX, strlen(XA_PREFIX)) != 0)
		return -ENODATA;
	if ((rc = resolve(fs, path, 0, &r)) != 0)
		return fskv_errno(rc);
	if (strncmp(name, XA_DYNAMO, strlen(XA_DYNAMO)) == 0) {
		rc = dynamo_xattr(fs, path, &r, name, buf, size);
	} else if (r.kind == R_FILE && r.f) {
		rc = fsfile_getxattr(r.f, name, buf, size);
	} else {
		const struct fsobj_attr *a =
		    r.kind == R_DIR
		        ? &r.dir->d.a
		        : &r.s->f[r.kind == R_SIB ? r.vi : r.s->newest].a;
		int i = fsobj_xattr_find(a, name);
		rc = i < 0 ? -ENODATA
		           : copy_out((const char *)a->xattr[i].value,
		                      a->xattr[i].len, buf, size);
	}
	res_fini(&r);
	return fskv_errno(rc);
}

static int
op_listxattr(const char *path, char *buf, size_t size)
{
	struct fs *fs = fs_get();
	struct res r;
	int rc = resolve(fs, path, 0, &r);
	if (rc != 0)
		return fskv_errno(rc);
	if (r.kind == R_FILE && r.f) {
		rc = fsfile_listxattr(r.f, buf, size);
	} else {
		const struct fsobj_attr *a =
		    r.kind == R_DIR
		        ? &r.dir->d.a
		        : &r.s->f[r.kind == R_SIB ? r.vi : r.s->newest].a;
		rc = fsobj_xattr_list(a, buf, size);
	}
	res_fini(&r);
	return fskv_errno(rc);
}

static int
op_setxattr(const char *path, const char *name, const char *value, size_t size,
            int flags)
{
	if (strncmp(name, XA_PREFIX, strlen(XA_PREFIX)) != 0)
		return -ENOTSUP;
	if (strncmp(name, XA_DYNAMO, strlen(XA_DYNAMO)) == 0)
		return -EPERM; /* read-only, computed */
	struct dattr_arg a = {.what = 3,
	                      .name = name,
	                      .value = value,
	                      .len = size,
	                      .flags = flags};
	return set_attr(path, NULL, &a);
}

static int
op_removexattr(const char *path, const char *name)
{
	if (strncmp(name, XA_PREFIX, strlen(XA_PREFIX)) != 0)
		return -ENODATA;
	if (strncmp(name, XA_DYNAMO, strlen(XA_DYNAMO)) == 0)
		return -EPERM;
	struct dattr_arg a = {.what = 4, .name = name};
	return set_attr(path, NULL, &a);
}

static const struct fuse_operations ops = {
    .init = op_init,
    .destroy = op_destroy,
    .getattr = op_getattr,
    .readlink = op_readlink,
    .mknod = op_mknod,
    .mkdir = op_mkdir,
    .unlink = op_unlink,
    .rmdir = op_rmdir,
    .symlink = op_symlink,
    .rename = op_rename,
    .link = op_link,
    .chmod = op_chmod,
    .chown = op_chown,
    .truncate = op_truncate,
    .open = op_open,
    .read = op_read,
    .write = op_write,
    .statfs = op_statfs,
    .flush = op_flush,
    .release = op_release,
    .copy_file_range = op_copy_file_range,
    .fsync = op_fsync,
    .setxattr = op_setxattr,
    .getxattr = op_getxattr,
    .listxattr = op_listxattr,
    .removexattr = op_removexattr,
    .opendir = op_opendir,
    .readdir = op_readdir,
    .releasedir = op_releasedir,
    .create = op_create,
    .utimens = op_utimens,
};

const struct fuse_operations *
fsops_operations(void)
{
	return &ops;
}
