/*
 * fsdir — directories: their objects (made, removed, the mtime a child's
 * change moves), their listings a page at a time with the sibling views of
 * conflicted files, and the move of a tree.  A directory's entries are its
 * children's objects, keys of its part (fsobj.h); fskv reads and writes
 * them, fsops calls in here from the FUSE operations.
 */
#include "fsdir.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "err.h"
#include "log.h"
#include "mem.h"

struct timespec
fsdir_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return ts;
}

uint64_t
fsdir_view_ino(const char *path)
{
	if (path[0] == '/' && path[1] == '\0')
		return 1;
	uint64_t h = 1469598103934665603ull;
	for (const char *p = path; *p; p++) {
		h ^= (uint8_t)*p;
		h *= 1099511628211ull;
	}
	return h < 2 ? h + 2 : h;
}

void
fsdir_stat(const struct fskv_dir *d, struct stat *st)
{
	memset(st, 0, sizeof(*st));
	st->st_ino = d->d.a.ino;
	st->st_mode = d->d.a.mode;
	st->st_nlink = 1;
	st->st_uid = d->d.a.uid;
	st->st_gid = d->d.a.gid;
	st->st_size = 4096;
	st->st_blocks = 8;
	st->st_blksize = 4096;
	st->st_atim = d->d.a.atime;
	st->st_mtim = d->d.a.mtime;
	st->st_ctim = d->d.a.ctime;
}

/* ---- the directory object ---- */

int
fsdir_make(struct fskv *kv, const char *path, uint32_t mode, uint32_t uid,
           uint32_t gid)
{
	struct fskv_dir *old = NULL;
	struct fsobj_dir nd;
	int rc;

	fsobj_dir_init(&nd);
	if ((rc = fskv_dir_get_any(kv, path, FSKV_FRESH, &old)) != 0)
		goto out;
	struct timespec now = fsdir_now();
	nd.a.mode = S_IFDIR | (mode & 07777);
	nd.a.ino = fsobj_ino_new();
	nd.a.uid = uid;
	nd.a.gid = gid;
	nd.a.atime = nd.a.mtime = nd.a.ctime = now;
	rc = fskv_dir_put(kv, path, &old->ctx, &nd);
out:
	fsobj_dir_fini(&nd);
	fskv_dir_unref(old);
	return rc;
}

int
fsdir_remove(struct fskv *kv, const char *path)
{
	struct fskv_dir *d = NULL;
	int rc;
	if ((rc = fskv_dir_get(kv, path, FSKV_FRESH, &d)) == 0 &&
	    (rc = fskv_dir_empty(kv, path)) == 0)
		rc = fskv_dir_delete(kv, path, &d->ctx);
	fskv_dir_unref(d);
	return rc;
}

#define TOUCH_NS 1000000000ll /* a directory's mtime: at most one write a second */

static long long
ts_ns(struct timespec t)
{
	return (long long)t.tv_sec * 1000000000ll + t.tv_nsec;
}

static int
touch_fn(struct fsobj_dir *d, void *arg)
{
	(void)arg;
	struct timespec now = fsdir_now();
	long long age = ts_ns(now) - ts_ns(d->a.mtime);
	if (age >= 0 && age < TOUCH_NS)
		return 1; /* changed less than a second ago: keep that time */
	d->a.mtime = d->a.ctime = now;
	return 0;
}

void
fsdir_touch(struct fskv *kv, const char *dir)
{
	struct fskv_lock l;
	const char *p[1] = {dir};
	fskv_lock(kv, &l, p, 1);
	int rc = fskv_dir_update(kv, dir, 0, touch_fn, NULL);
	fskv_unlock(kv, &l);
	if (rc != 0 && rc != -ENOENT)
		LOG_WARN("%s: mtime not updated: %s", dir, dyn_strerror(rc));
}

/* ---- listings ---- */

#define LIST_PAGE 256

struct fsdir_list {
	struct fskv *kv;
	struct fsfile_tab *tab;
	char *path;
	uint8_t *cur; /* cursor of the next page (NULL: the first) */
	size_t clen;
	bool started; /* a page was read: cur NULL now means the end */
	bool end;
	off_t base;   /* offset of items[0] */
	uint32_t n;
	struct fsdir_item *items;
	char lastdir[FSOBJ_NAME_MAX + 1]; /* the last directory listed */
};

static void
dh_items_free(struct fsdir_list *h)
{
	for (uint32_t i = 0; i < h->n; i++)
		mem_free(h->items[i].name);
	mem_free(h->items);
	h->items = NULL;
	h->base += h->n;
	h->n = 0;
}

static void
dh_reset(struct fsdir_list *h)
{
	dh_items_free(h);
	mem_free(h->cur);
	h->cur = NULL;
	h->clen = 0;
	h->started = h->end = false;
	h->base = 2;
	h->lastdir[0] = '\0';
}

static int
item_add(struct fsdir_item *it, uint32_t *n, const char *name, size_t nl,
         const struct stat *st)
{
	struct fsdir_item *t = &it[*n];
	if (!(t->name = mem_alloc(nl + 1)))
		return -ENOMEM;
	memcpy(t->name, name, nl);
	t->name[nl] = '\0';
	t->st = *st;
	(*n)++;
	return 0;
}

/* Is there a real object called name in dir (it wins a sibling's name)? */
static bool
real_entry(struct fsdir_list *h, const char *name)
{
	struct fskv_dir *d = NULL;
	struct fskv_file *s = NULL;
	bool live = false;
	char *p = fskv_path_join(h->path, name, strlen(name));
	if (p && fskv_lookup(h->kv, p, 0, &d, &s) == 0) {
		struct fsfile *f = d ? NULL : fsfile_find(h->tab, p);
		live = d || f || s->nlive > 0;
		fsfile_put(f);
	}
	fskv_dir_unref(d);
	fskv_file_unref(s);
	mem_free(p);
	return live;
}

/* The items of one entry: itself and, for a file with siblings, its
 * name.vK views (from the store's versions even if the file is open). */
static int
entry_items(struct fsdir_list *h, const struct fskv_ent *e,
            struct fsdir_item *it, uint32_t *n)
{
	struct stat st;
	if (e->kind == FSOBJ_KEY_DIR) {
		snprintf(h->lastdir, sizeof(h->lastdir), "%s", e->name);
		fsdir_stat(e->dir, &st);
		return item_add(it, n, e->name, e->nlen, &st);
	}
	if (strcmp(h->lastdir, e->name) == 0)
		return 0; /* a directory has the name */
	char *cp = fskv_path_join(h->path, e->name, e->nlen);
	if (!cp)
		return -ENOMEM;
	struct fsfile *f = fsfile_find(h->tab, cp);
	struct fskv_file *s = e->file;
	if (f)
		fsfile_stat(f, &st);
	else
		fsfile_stat_version(s, s->newest, &st);
	if (!f) /* stat_version clears write bits: restore */
		st.st_mode = s->f[s->newest].a.mode;
	fsfile_put(f);
	int rc = item_add(it, n, e->name, e->nlen, &st);
	for (uint32_t k = 1; rc == 0 && s->nlive > 1 && k <= s->nlive; k++) {
		char sn[FSOBJ_NAME_MAX + 8];
		if (fsobj_sibling_name(e->name, e->nlen, k, sn, sizeof(sn)))
			break;
		if (real_entry(h, sn))
			continue; /* a real entry of that name wins */
		char *sp = fskv_path_join(h->path, sn, strlen(sn));
		if (!sp) {
			rc = -ENOMEM;
			break;
		}
		fsfile_stat_version(s, fsobj_live_nth(&s->vs, k), &st);
		st.st_ino = fsdir_view_ino(sp);
		mem_free(sp);
		rc = item_add(it, n, sn, strlen(sn), &st);
	}
	mem_free(cp);
	return rc;
}

/* Replace the items with the next page's (maybe none: h->end tells). */
static int
dh_next_page(struct fsdir_list *h)
{
	struct fskv_list l;
	dh_items_free(h);
	if (h->started && !h->cur) {
		h->end = true;
		return 0;
	}
	int rc = fskv_list(h->kv, h->path, h->cur, h->clen, LIST_PAGE, &l);
	if (rc != 0)
		return rc;
	h->started = true;
	mem_free(h->cur);
	h->cur = l.more ? l.next : NULL;
	h->clen = l.more ? l.next_len : 0;
	l.next = NULL;
	uint32_t cap = 0;
	for (uint32_t i = 0; i < l.n; i++)
		cap += l.e[i].kind == FSOBJ_KEY_FILE && l.e[i].file->nlive > 1
		           ? 1 + l.e[i].file->nlive
		           : 1;
	if (cap && !(h->items = mem_calloc(cap, sizeof(*h->items))))
		rc = -ENOMEM;
	for (uint32_t i = 0; i < l.n && rc == 0; i++)
		rc = entry_items(h, &l.e[i], h->items, &h->n);
	fskv_list_fini(&l);
	return rc;
}

int
fsdir_list_open(struct fskv *kv, struct fsfile_tab *tab, const char *path,
                struct fsdir_list **out)
{
	struct fsdir_list *h = mem_calloc(1, sizeof(*h));
	if (!h || !(h->path = mem_dup(path, strlen(path) + 1))) {
		mem_free(h);
		return -ENOMEM;
	}
	h->kv = kv;
	h->tab = tab;
	dh_reset(h);
	*out = h;
	return 0;
}

void
fsdir_list_close(struct fsdir_list *h)
{
	if (!h)
		return;
	dh_reset(h);
	mem_free(h->path);
	mem_free(h);
}

int
fsdir_list_at(struct fsdir_list *h, off_t off, const struct fsdir_item **out)
{
	int rc = 0;
	*out = NULL;
	if (off < h->base)
		dh_reset(h); /* a seek back: list again */
	while (rc == 0 && off >= h->base + (off_t)h->n) {
		if (h->end)
			return 0;
		rc = dh_next_page(h);
	}
	if (rc == 0)
		*out = &h->items[off - h->base];
	return rc;
}

/* ---- moves ---- */

int
fsdir_move_tree(struct fskv *kv, struct fsfile_tab *tab, const char *from,
                const char *to)
{
	struct fskv_dir *d = NULL, *dt = NULL;
	struct fsobj_dir nd;
	uint8_t *cur = NULL;
	size_t clen = 0;
	int rc;

	fsobj_dir_init(&nd);
	if ((rc = fskv_dir_get(kv, from, FSKV_FRESH, &d)) != 0 ||
	    (rc = fskv_dir_get_any(kv, to, FSKV_FRESH, &dt)) != 0 ||
	    (rc = fsobj_dir_copy(&nd, &d->d)) != 0)
		goto out;
	nd.a.ctime = fsdir_now();
	if ((rc = fskv_dir_put(kv, to, &dt->ctx, &nd)) != 0)
		goto out;
	do {
		struct fskv_list l;
		rc = fskv_list(kv, from, cur, clen, LIST_PAGE, &l);
		mem_free(cur);
		cur = NULL;
		for (uint32_t i = 0; rc == 0 && i < l.n; i++) {
			const struct fskv_ent *e = &l.e[i];
			char *cf = fskv_path_join(from, e->name, e->nlen);
			char *ct = fskv_path_join(to, e->name, e->nlen);
			if (!cf || !ct)
				rc = -ENOMEM;
			else if (e->kind == FSOBJ_KEY_DIR)
				rc = fsdir_move_tree(kv, tab, cf, ct);
			else
				rc = fsfile_move(tab, cf, ct);
			if (rc == -ENOENT)
				rc = 0; /* gone meanwhile */
			mem_free(cf);
			mem_free(ct);
		}
		if (rc == 0 && l.more) {
			cur = l.next;
			clen = l.next_len;
			l.next = NULL;
		}
		fskv_list_fini(&l);
	} while (rc == 0 && cur);
	if (rc == 0)
		rc = fskv_dir_delete(kv, from, &d->ctx);
out:
	mem_free(cur);
	fsobj_dir_fini(&nd);
	fskv_dir_unref(d);
	fskv_dir_unref(dt);
	return rc;
}

