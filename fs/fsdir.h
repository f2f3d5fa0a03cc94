/*
 * fsdir — directories: the directory objects, listings and tree moves.
 *
 * A directory's object holds its attributes; its entries are its
 * children's objects, keys of its part (fsobj.h), so changing one entry
 * never reads or writes the others, and a listing is a range read of the
 * part, a page at a time (fskv_list).  Errors are negative errnos or DYN_E*
 * codes, as fskv's.
 */
#ifndef DYN_FSDIR_H
#define DYN_FSDIR_H

#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <time.h>

#include "fsfile.h"
#include "fskv.h"

/* The wall clock, as objects record it. */
struct timespec fsdir_now(void);
/* The inode number of a sibling view name.vK: its path's (siblings of one
 * file share the file's number, which they would show as hard links). */
uint64_t fsdir_view_ino(const char *path);
/* A directory's stat: st_nlink 1 (subdirectories are not counted: that
 * would take a listing; 1 is what find and others read as "unknown", as
 * on btrfs). */
void fsdir_stat(const struct fskv_dir *d, struct stat *st);

/* Make the directory object at path, over what the store holds there
 * (tombstones), with a new inode number.  The caller holds path's lock and
 * checked that nothing live has the name. */
int fsdir_make(struct fskv *kv, const char *path, uint32_t mode, uint32_t uid,
               uint32_t gid);
/* Remove the directory at path: -ENOENT when there is none, -ENOTEMPTY
 * when a child is live (one short page of the listing says).  The caller
 * holds path's lock. */
int fsdir_remove(struct fskv *kv, const char *path);
/* A child of the directory at dir was made, removed or renamed: its mtime
 * and ctime move, unless they moved less than a second ago (one put a
 * second at most, not one per create in a busy directory: the mtime is
 * then up to a second early).  Under the directory's lock alone, taken
 * here: callers must have dropped theirs (locks are never nested).  A
 * failure is logged, not returned: the change itself is done. */
void fsdir_touch(struct fskv *kv, const char *dir);

/*
 * An open directory's listing.  Items are numbered from 2 ("." and ".."
 * are the caller's 0 and 1): the children in key order (by name; a
 * directory hides a file of its name), each conflicted file followed by
 * its name.vK views unless a real entry has that name.  The listing keeps
 * one page of the range read and its cursor, so a directory of a million
 * entries is never held whole; asking for an item before the page lists
 * again from the start (a seekdir back).
 */
struct fsdir_item {
	char *name;
	struct stat st;
};
struct fsdir_list;

int fsdir_list_open(struct fskv *kv, struct fsfile_tab *tab, const char *path,
                    struct fsdir_list **out);
/* The item at offset off (>= 2) in *out, valid until the next call, or
 * NULL past the end. */
int fsdir_list_at(struct fsdir_list *l, off_t off,
                  const struct fsdir_item **out);
void fsdir_list_close(struct fsdir_list *l);

/* Move the directory tree at from to to (whose object, if any, is an
 * empty directory): the directory object is copied first (its inode
 * number with it), then every child, a page of the listing at a time,
 * then from's object is deleted.  On failure part of the tree may have
 * moved; nothing is lost (each object lives at one of the two paths).
 * The caller holds every lock. */
int fsdir_move_tree(struct fskv *kv, struct fsfile_tab *tab, const char *from,
                    const char *to);

#endif
