/*
 * fskv — the filesystem's objects in the store: reads and writes of file
 * objects and directory objects through the client library, the
 * short caches in front of them, and the lock stripes that order the
 * changes this mount makes.
 *
 * Directory objects are resolved on read: a get that returns several
 * versions picks the winner (fsobj_dir_cmp) and writes it back with the
 * merged context, so no caller ever sees a directory conflict.  File
 * objects are handed up with every version (siblings are the caller's
 * business).  A directory's children are listed a page at a time by a
 * range read of its part (fskv_list).
 *
 * Snapshots (struct fskv_file, struct fskv_dir) are immutable and reference
 * counted: the cache holds one reference, each caller that got one from a
 * *_get holds another and drops it with *_unref.  Calls are thread-safe.
 * Errors are negative errnos or DYN_E* codes (fskv_errno translates them
 * for FUSE).  Not here: open files and their dirty data (fsfile), the FUSE
 * operations (fsops).
 */
#ifndef DYN_FSKV_H
#define DYN_FSKV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "client.h"
#include "fsobj.h"

struct fskv;

struct fskv_opts {
	struct dyn_client *client; /* not owned; must outlive the fskv */
	const char *nodes;         /* node addresses, for user.dynamo.nodes */
	uint64_t attr_ttl_ms;      /* file object cache */
	uint64_t entry_ttl_ms;     /* directory cache */
	uint32_t chunk_size;       /* for new files */
	uint32_t inline_max;       /* largest file kept inline */
	size_t cache_size;         /* bytes of content cached (fscache) */
	uint64_t gc_grace_ms;      /* the nodes' collector grace (fsfile) */
	uint32_t root_uid, root_gid; /* owner of a root never written */
};

int fskv_new(const struct fskv_opts *o, struct fskv **out);
void fskv_free(struct fskv *kv);
const struct fskv_opts *fskv_opts(const struct fskv *kv);

/* Get flags. */
#define FSKV_FRESH 0x1 /* bypass the cache (close-to-open, checks) */

/* ---- file objects ---- */

struct fskv_file {
	struct vset vs;       /* every version; values dropped after decode;
	                         an undecodable version is marked a tombstone */
	struct fsobj_file *f; /* decoded, one per version (empty for
	                         tombstones) */
	struct dyn_ctx ctx;   /* merged context: covers every version */
	struct dyn_ctx *vctx; /* one per version */
	uint32_t nlive;
	int newest;     /* index of the newest live version, -1 when none */
	bool synthetic; /* built after our own put: no dots, no clock */
	/* private */
	int refs;
	uint64_t born_ms;
};

/* The object at path, every version.  0 even when no version is live
 * (nlive == 0; the context then covers the tombstones).  *out holds a
 * reference. */
int fskv_file_get(struct fskv *kv, const char *path, int flags,
                  struct fskv_file **out);
void fskv_file_unref(struct fskv_file *s);
/* A snapshot with no version and an empty context: a put under it is
 * blind (supersedes nothing). */
int fskv_file_empty(struct fskv_file **out);
/* Put f at path under the contexts ctxs (several: their union).  On
 * success, *out (if not NULL) gets a snapshot holding just the new version
 * (it is also cached). */
int fskv_file_put(struct fskv *kv, const char *path,
                  const struct dyn_ctx *ctxs, size_t nctx,
                  const struct fsobj_file *f, struct fskv_file **out);
/* A tombstone under ctxs; the cache forgets path. */
int fskv_file_delete(struct fskv *kv, const char *path,
                     const struct dyn_ctx *ctxs, size_t nctx);
void fskv_file_forget(struct fskv *kv, const char *path);

/* ---- directories ---- */

struct fskv_dir {
	struct fsobj_dir d;
	struct dyn_ctx ctx;
	bool exists; /* false: no live version (ctx covers tombstones) */
	struct vclock clock; /* of the versions read (empty after a put) */
	/* private */
	int refs;
	uint64_t born_ms;
};

/* The directory at path, merged.  -ENOENT when it does not exist (the
 * root always exists: when never written it reads as an empty directory
 * owned by root_uid/root_gid). */
int fskv_dir_get(struct fskv *kv, const char *path, int flags,
                 struct fskv_dir **out);
/* Same, but 0 with exists == false instead of -ENOENT. */
int fskv_dir_get_any(struct fskv *kv, const char *path, int flags,
                     struct fskv_dir **out);
void fskv_dir_unref(struct fskv_dir *s);

/* Change the directory at path: fn edits a copy of it (from the cache unless
 * flags has FSKV_FRESH), then the copy is written under the snapshot's
 * context and cached.  fn's error is returned without writing; fn may
 * return 1 for "nothing to write".  The caller holds path's lock. */
typedef int (*fskv_dir_fn)(struct fsobj_dir *d, void *arg);
int fskv_dir_update(struct fskv *kv, const char *path, int flags,
                    fskv_dir_fn fn, void *arg);
/* Write d at path under ctx (e.g. a new directory over tombstones). */
int fskv_dir_put(struct fskv *kv, const char *path, const struct dyn_ctx *ctx,
                 const struct fsobj_dir *d);
int fskv_dir_delete(struct fskv *kv, const char *path,
                    const struct dyn_ctx *ctx);
void fskv_dir_forget(struct fskv *kv, const char *path);
/* Forget every cached object at or below the directory path. */
void fskv_forget_tree(struct fskv *kv, const char *path);

/* ---- listings ---- */

/* A child of a directory: its object, every version. */
struct fskv_ent {
	char *name; /* NUL-terminated, owned */
	size_t nlen;
	uint8_t kind;           /* FSOBJ_KEY_FILE or FSOBJ_KEY_DIR */
	struct fskv_file *file; /* kind file: nlive > 0 */
	struct fskv_dir *dir;   /* kind dir: exists */
};

struct fskv_list {
	uint32_t n;
	struct fskv_ent *e; /* in key order: by name, a directory before a
	                       file of the same name */
	bool more;          /* there may be entries after next */
	uint8_t *next;      /* the cursor of the next page */
	size_t next_len;
};

/* One page of the children of the directory at path with a live object,
 * after the cursor (after, alen; NULL: from the first), at most limit of
 * them (0: the node's default): a range read of the directory's part
 * (R-quorum merge and read repair, like a get).  Every object read is
 * cached, with its context, as a get would.  A page may be short, or
 * empty, and still have more.  out is freed with fskv_list_fini whatever
 * the result. */
int fskv_list(struct fskv *kv, const char *path, const uint8_t *after,
              size_t alen, uint32_t limit, struct fskv_list *out);
void fskv_list_fini(struct fskv_list *l);
/* What path names, in one round trip (a range read of its directory key
 * and its file key, neighbours in the parent's part) unless both are
 * cached: *dir when a directory is there (it wins the name), else *file,
 * the file object with every version (nlive 0: none).  Both are cached.
 * The root is always a directory. */
int fskv_lookup(struct fskv *kv, const char *path, int flags,
                struct fskv_dir **dir, struct fskv_file **file);
/* 0 when no child of the directory at path has a live object,
 * -ENOTEMPTY when one has, or the error of the read. */
int fskv_dir_empty(struct fskv *kv, const char *path);

/* ---- the rest ---- */

/* The preference list of the object at path ('F' file, 'D' directory) as
 * text: the node addresses the client routes its key to, comma separated,
 * or, before the client has a ring, the addresses the mount was given.
 * Like snprintf. */
int fskv_preflist(struct fskv *kv, char kind, const char *path, char *out,
                  size_t cap);

/* Lock stripes: lock the stripes of up to FSKV_LOCK_MAX paths (in a fixed
 * order, so two callers never deadlock); all: every stripe. */
#define FSKV_LOCK_MAX 4
struct fskv_lock {
	int n;
	int idx[FSKV_LOCK_MAX];
	bool all;
};
void fskv_lock(struct fskv *kv, struct fskv_lock *l, const char *const *paths,
               int n);
void fskv_lock_all(struct fskv *kv, struct fskv_lock *l);
void fskv_unlock(struct fskv *kv, struct fskv_lock *l);

/* dir "/" name (nlen bytes), a new string (NULL: out of memory). */
char *fskv_path_join(const char *dir, const char *name, size_t nlen);
/* A project error or -errno as the -errno FUSE wants. */
int fskv_errno(int rc);
uint64_t fskv_now_ms(void);

#endif
