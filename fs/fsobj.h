/*
 * fsobj — the filesystem's objects as bytes in the store, and the pure rules
 * over them: key names, file objects (attributes, user xattrs, and either the
 * bytes inline or a list of chunks), directory objects (attributes), and
 * the naming and order of sibling entries.
 *
 * No I/O and no locking here: fskv moves these objects through the client.
 * Every decoder reads through a struct rd and checks every length, since the
 * bytes come from the network.
 *
 * Keys.  Every file, symlink and directory object is a placement key
 * (common/keypos.h) in the part of its parent directory, so the objects of
 * one directory live on one preference list, next to each other in key
 * order, and a range read of the part lists the directory:
 *
 *   part = 'E' SHA-256(parent path)       ("" is the root's parent)
 *   key  = 0xFF u16 33 part | name '\0' kind    kind 'F' file, 'D' dir
 *
 * The name is last-but-two so a file and a directory of one name (made
 * concurrently) are neighbours in a listing, the directory first.  Content
 * lives in 'B' / 'R' name[32] keys: chunk blobs and chunk-list pages
 * (common/blob.h), shared by every version that has the same bytes and
 * reclaimed by the nodes' collector once nothing references them.
 */
#ifndef DYN_FSOBJ_H
#define DYN_FSOBJ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "blob.h"
#include "buf.h"
#include "vclock.h"
#include "vset.h"

#define FSOBJ_NAME_MAX     255          /* one path component */
#define FSOBJ_XNAME_MAX    255          /* xattr name */
#define FSOBJ_XVALUE_MAX   (64u << 10)  /* one xattr value */
#define FSOBJ_XATTRS_MAX   (256u << 10) /* all xattrs of one object */
#define FSOBJ_CHUNK_MIN    4096u
#define FSOBJ_CHUNK_MAX    (8u << 20)
#define FSOBJ_SIBLINGS_MAX VSET_MAX_VERSIONS

enum fsobj_layout {
	FSOBJ_INLINE = 0,  /* size bytes in data */
	FSOBJ_CHUNKED = 1, /* chunks of chunk_size in pages of blobs */
};

/* ---- keys ---- */

#define FSOBJ_PART_LEN 33  /* 'E' and a SHA-256 */
#define FSOBJ_KEY_FILE 'F'
#define FSOBJ_KEY_DIR  'D'

/* Append the key of a file object or directory object to out (errors are
 * sticky in out, see buf_err).  Content is in blobs (blob.h). */
void fsobj_key_file(struct buf *out, const char *path);
void fsobj_key_dir(struct buf *out, const char *path);
/* Append the placement header of the directory dir's part (its children's
 * keys start with it). */
void fsobj_key_part(struct buf *out, const char *dir, size_t dlen);
/* The child a key of a directory's part names: 0 and its name (pointing
 * into key, not NUL-terminated), length and kind; -EINVAL for anything
 * else. */
int fsobj_key_entry(const uint8_t *key, size_t klen, const char **name,
                    size_t *nlen, uint8_t *kind);
/* memcmp order of two byte strings of any lengths (the store's key
 * order): < 0, 0, > 0. */
int fsobj_bytes_cmp(const void *a, size_t al, const void *b, size_t bl);

/* ---- attributes (shared by files and directories) ---- */

struct fsobj_xattr {
	char *name;     /* NUL-terminated, owned */
	uint8_t *value; /* owned; NULL when len == 0 */
	uint32_t len;
};

struct fsobj_attr {
	uint32_t mode; /* st_mode: type and permission bits */
	uint32_t uid;
	uint32_t gid;
	/* st_ino: drawn when the file or directory is made (1 is the root),
	 * kept by every version, rename and move, new for a copy. */
	uint64_t ino;
	uint64_t rdev; /* st_rdev of a character or block device, else 0 */
	struct timespec atime;
	struct timespec mtime;
	struct timespec ctime;
	uint32_t nxattr;
	struct fsobj_xattr *xattr; /* owned, sorted by name */
};

void fsobj_attr_init(struct fsobj_attr *a);
/* A new inode number: random, never 0 or 1. */
uint64_t fsobj_ino_new(void);
void fsobj_attr_fini(struct fsobj_attr *a);
/* Deep copy; dst must be initialised (its old contents are freed).  On
 * error dst is unchanged. */
int fsobj_attr_copy(struct fsobj_attr *dst, const struct fsobj_attr *src);

/* Index of xattr name, or -1. */
int fsobj_xattr_find(const struct fsobj_attr *a, const char *name);
/* Set (flags: 0, XATTR_CREATE -> -EEXIST if present, XATTR_REPLACE ->
 * -ENODATA if absent).  -ERANGE when name or value is over its cap, -ENOSPC
 * when the object's xattrs would exceed FSOBJ_XATTRS_MAX. */
int fsobj_xattr_set(struct fsobj_attr *a, const char *name, const void *value,
                    size_t len, int flags);
/* -ENODATA when absent. */
int fsobj_xattr_remove(struct fsobj_attr *a, const char *name);
/* listxattr's format: the names, each NUL-terminated.  With cap 0 returns
 * the size needed; -ERANGE when cap is too small. */
int fsobj_xattr_list(const struct fsobj_attr *a, char *out, size_t cap);

/* ---- file objects ---- */

/*
 * A chunked file's content is a list of chunks, each a data blob
 * (common/blob.h) named by its bytes, or a hole (no blob: zeros).  The list
 * is cut in pages of FSOBJ_PAGE_CHUNKS entries; each page is a reference
 * blob (or none, when all its chunks are holes), and the file object names
 * its pages.  So a version that changes one chunk writes that chunk, one
 * page and the object; every unchanged chunk and page is shared, by name,
 * with the versions, siblings and copies that have the same bytes.  A chunk
 * blob holds at most chunk_size bytes; bytes past its length read as zeros
 * (the last chunk of a file is short).
 */
#define FSOBJ_PAGE_CHUNKS 4096
/* The largest encoded page: its header (a reference per chunk) and an
 * index and length per chunk, with room for the small fixed parts. */
#define FSOBJ_PAGE_MAX (FSOBJ_PAGE_CHUNKS * (BLOB_REF_LEN + 8) + 64)
#define FSOBJ_PAGES_MAX   65536 /* pages of one file */
#define FSOBJ_FILE_MAX    (16ull << 40) /* like ext4 with 4 KiB blocks */

/* A blob's key, or all zeros for none. */
struct fsobj_ref {
	uint8_t key[BLOB_KEY_LEN];
};

static inline bool
fsobj_ref_none(const struct fsobj_ref *r)
{
	return r->key[0] == 0;
}

struct fsobj_file {
	struct fsobj_attr a; /* a.mode says regular file or symlink */
	uint64_t size;
	uint8_t layout;
	uint8_t *data; /* INLINE: size bytes (symlink: the target); owned */
	uint32_t chunk_size; /* CHUNKED: */
	uint64_t stored;     /* bytes in the chunk blobs (st_blocks) */
	uint32_t npages;     /* fsobj_npages(size, chunk_size) */
	struct fsobj_ref *pages; /* one per page (none: all holes) */
	uint64_t *pstored;   /* stored bytes of each page's chunks */
};

/* One page of a chunk list: n entries (at most FSOBJ_PAGE_CHUNKS), each a
 * chunk blob (or none) and its length. */
struct fsobj_page {
	uint32_t n;
	struct fsobj_ref *ref;
	uint32_t *len;
};

void fsobj_file_init(struct fsobj_file *f);
void fsobj_file_fini(struct fsobj_file *f);
/* Deep copy; dst must be initialised.  On error dst is unchanged. */
int fsobj_file_copy(struct fsobj_file *dst, const struct fsobj_file *src);

/* Number of chunks of size bytes, and of pages of their list. */
uint64_t fsobj_nchunks(uint64_t size, uint32_t chunk_size);
uint32_t fsobj_npages(uint64_t size, uint32_t chunk_size);
/* The largest file with this chunk size (FSOBJ_FILE_MAX, or less for small
 * chunks: the object may name FSOBJ_PAGES_MAX pages). */
uint64_t fsobj_file_max(uint32_t chunk_size);

/* Encoding (format 3): a reference header naming the pages (blob.h), then
 * 'F' 3 attrs size layout, then the inline bytes or (chunk_size stored
 * npages, per page: u32 index in the header (0: none) and u64 stored). */
void fsobj_file_encode(const struct fsobj_file *f, struct buf *out);
/* DYN_EBADMSG on anything inconsistent, DYN_EPROTO for another format
 * version; out must be initialised and is left initialised (empty) on
 * error.  Values are copied. */
int fsobj_file_decode(const void *p, size_t len, struct fsobj_file *out);

void fsobj_page_init(struct fsobj_page *pg);
void fsobj_page_fini(struct fsobj_page *pg);
/* n entries, all holes. */
int fsobj_page_alloc(struct fsobj_page *pg, uint32_t n);
/* A reference header naming its chunks, then 'P' 2 u32 n, per entry u32
 * index in the header (0: hole) and u32 length. */
void fsobj_page_encode(const struct fsobj_page *pg, struct buf *out);
int fsobj_page_decode(const void *p, size_t len, struct fsobj_page *out);

/* ---- directory objects ---- */

/*
 * A directory object holds the directory's attributes only; its entries
 * are the objects in its part (keys above).  Concurrent versions resolve
 * last-writer-wins by ctime (ties by content), so every reader picks the
 * same one.
 */
struct fsobj_dir {
	struct fsobj_attr a;
};

void fsobj_dir_init(struct fsobj_dir *d);
void fsobj_dir_fini(struct fsobj_dir *d);
/* Deep copy; dst must be initialised.  On error dst is unchanged. */
int fsobj_dir_copy(struct fsobj_dir *dst, const struct fsobj_dir *src);
/* > 0 when a wins over b, < 0 when b wins, 0 when they are the same. */
int fsobj_dir_cmp(const struct fsobj_dir *a, const struct fsobj_dir *b);

/* 'D' 3 attrs.  Decode: DYN_EBADMSG for anything inconsistent, DYN_EPROTO
 * for another format version (2: the entries inside the object). */
void fsobj_dir_encode(const struct fsobj_dir *d, struct buf *out);
int fsobj_dir_decode(const void *p, size_t len, struct fsobj_dir *out);

/* ---- siblings ---- */

/*
 * A file with k > 1 live versions shows name (its newest live version by
 * write time) and name.v1 ... name.vk, numbered in the vset's order (by
 * dot), which every reader of the same versions agrees on.  A real entry
 * called name.vK wins over the sibling entry of the same name (fsops hides
 * that sibling entry).
 */

/* Is name of the form BASE.vK, K a decimal in 1..FSOBJ_SIBLINGS_MAX
 * without leading zeros, BASE not empty?  0 with *baselen and *k, or
 * -EINVAL. */
int fsobj_sibling_parse(const char *name, size_t nlen, size_t *baselen,
                        uint32_t *k);
/* BASE.vK into out (NUL-terminated).  -ENAMETOOLONG when it would not fit
 * cap or be over FSOBJ_NAME_MAX. */
int fsobj_sibling_name(const char *base, size_t blen, uint32_t k, char *out,
                       size_t cap);
/* Index in s of the k-th (from 1) live version, or -1. */
int fsobj_live_nth(const struct vset *s, uint32_t k);
/* Index of the newest live version by ts_ms (ties: the later in dot
 * order), or -1 when none is live. */
int fsobj_live_newest(const struct vset *s);
/* "actor:counter" entries, then "actor@counter" exact dots (actor in hex),
 * space separated, into out.
 * Returns the length it needs (like snprintf). */
int fsobj_clock_text(const struct vclock *c, char *out, size_t cap);

#endif
