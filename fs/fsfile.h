/*
 * fsfile — open files: the state one mount shares among all handles of one
 * path (the versions read at open and their context, the attributes, the
 * dirty chunks), and every write of a file object, which goes through it.
 *
 * Close-to-open: open reads the object and keeps its context; reads and
 * writes work on the open state; flush (close, fsync) writes the object
 * under that context.  Content is cut in chunks of chunk_size, each stored
 * as a blob named by its bytes (fsobj.h); a chunk that fills up is stored
 * at once, so a large file never sits whole in memory, and the object
 * naming the chunks (through pages) is written last.  Unchanged chunks are
 * shared with the version they came from; nothing is deleted here (the
 * nodes collect blobs no version names).
 *
 * Writing content resolves siblings (the put carries the merged context);
 * a change of attributes only (chmod, utimens, xattrs) rewrites the newest
 * sibling alone.  Sibling entries name.vK are read through views.
 *
 * Thread safety: every call may come from any thread; each file has its own
 * mutex.  Lock order: fskv stripes, then a file's mutex, then the table's.
 * Errors are negative errnos or DYN_E* codes (see fskv_errno).
 */
#ifndef DYN_FSFILE_H
#define DYN_FSFILE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>

#include "fskv.h"

struct fsfile;
struct fsfile_tab;
struct fsview;

int fsfile_tab_new(struct fskv *kv, struct fsfile_tab **out);
/* Flushes what is still dirty (best effort), then frees everything. */
void fsfile_tab_free(struct fsfile_tab *t);

/* Get flags. */
#define FSFILE_FRESH  0x1 /* re-read the object (open), unless dirty */
#define FSFILE_HANDLE 0x2 /* counts as an open handle (fsfile_close) */

/* The file at path: the open one, or one read from the store (through the
 * cache unless FSFILE_FRESH).  -ENOENT when no version is live.  Release
 * with fsfile_put (or fsfile_close for FSFILE_HANDLE). */
int fsfile_get(struct fsfile_tab *t, const char *path, int flags,
               struct fsfile **out);
/* A new empty file at path with mode (type and permissions) and owner,
 * written (blind) at its first flush.  Counts as a handle. */
int fsfile_create(struct fsfile_tab *t, const char *path, uint32_t mode,
                  uint32_t uid, uint32_t gid, struct fsfile **out);
/* The open file at path, or NULL (a reference: fsfile_put). */
struct fsfile *fsfile_find(struct fsfile_tab *t, const char *path);
void fsfile_put(struct fsfile *f);
void fsfile_close(struct fsfile *f);
/* Has open handles. */
bool fsfile_is_open(struct fsfile *f);

int fsfile_read(struct fsfile *f, char *buf, size_t size, uint64_t off);
int fsfile_write(struct fsfile *f, const char *buf, size_t size, uint64_t off);
int fsfile_flush(struct fsfile *f);
int fsfile_truncate(struct fsfile *f, uint64_t size);
/* Mark the content as replaced even if no byte changes (O_TRUNC). */
void fsfile_replace(struct fsfile *f);
/* copy_file_range: up to len bytes of src from soff into dst at doff (src
 * and dst may be the same file).  Whole chunks are shared by reference
 * (no content moves); the rest is copied.  Returns the bytes copied (at
 * most 1 GiB a call; 0 at src's end) or an error. */
int fsfile_copy_range(struct fsfile *src, uint64_t soff, struct fsfile *dst,
                      uint64_t doff, size_t len);
/* An id of the content as this mount sees it: equal ids, equal bytes (a
 * hash of the chunk list or of the inline bytes, and the size).  For the
 * kernel's page cache: kept across opens while the id stays. */
uint64_t fsfile_content_id(struct fsfile *f);

/* Attributes (st_ino and st_dev are the caller's). */
void fsfile_stat(struct fsfile *f, struct stat *st);
void fsfile_chmod(struct fsfile *f, uint32_t mode);
void fsfile_chown(struct fsfile *f, uint32_t uid, uint32_t gid);
void fsfile_utimens(struct fsfile *f, const struct timespec tv[2]);
/* Copy the symlink target (NUL-terminated, truncated to cap). */
int fsfile_readlink(struct fsfile *f, char *buf, size_t cap);
/* Stored user xattrs; getxattr/listxattr return sizes like the syscalls. */
int fsfile_getxattr(struct fsfile *f, const char *name, char *buf, size_t n);
int fsfile_setxattr(struct fsfile *f, const char *name, const char *val,
                    size_t n, int flags);
int fsfile_removexattr(struct fsfile *f, const char *name);
int fsfile_listxattr(struct fsfile *f, char *buf, size_t n);
/* Number of live versions, and their merged clock as text (a fresh read). */
uint32_t fsfile_siblings(struct fsfile *f);
int fsfile_clock_text(struct fsfile *f, char *buf, size_t n);

/* ---- siblings (f got with FSFILE_FRESH; -EBUSY when f is dirty) ---- */

/* rm name.vK: drop the k-th live version (a tombstone under its context
 * alone); the others stay. */
int fsfile_sibling_drop(struct fsfile *f, uint32_t k);
/* mv name.vK name: keep the k-th live version, drop all others. */
int fsfile_sibling_pick(struct fsfile *f, uint32_t k);
/* mv name.vK other: copy the k-th live version to path to (superseding
 * what is there), then drop it from f. */
int fsfile_sibling_move(struct fsfile *f, uint32_t k, const char *to);

/* ---- namespace ---- */

/* Delete every version at path that a read of it shows (flags: 0, the
 * cached read if there is one, as for a stat: a version another mount
 * wrote since survives, as a write concurrent with the delete; FSKV_FRESH
 * reads the store).  Handles still open keep reading what they had; what
 * they write is dropped.  -ENOENT when nothing is live. */
int fsfile_unlink(struct fsfile_tab *t, const char *path, int flags);
/* Move the object at from to path to: every live version is copied (with
 * its chunks) over what to held, then from is deleted.  Open handles of
 * from follow it to its new path.  Several live versions stay siblings. */
int fsfile_move(struct fsfile_tab *t, const char *from, const char *to);

/* ---- views: read-only handles on one sibling ---- */

/* The k-th live version of path (from a fresh read); -ENOENT when path
 * has fewer than two live versions or fewer than k. */
int fsview_open(struct fsfile_tab *t, const char *path, uint32_t k,
                struct fsview **out);
int fsview_read(struct fsview *v, char *buf, size_t size, uint64_t off);
void fsview_close(struct fsview *v);

/* Attributes of the k-th live version of a snapshot, write bits cleared. */
void fsfile_stat_version(const struct fskv_file *s, int i, struct stat *st);

#endif
