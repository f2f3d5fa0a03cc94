/* Unit tests for fs/fsobj: file and directory encodings (round trips and
 * hostile input), xattrs, the observed-remove directory set and its merge,
 * and sibling naming and order. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>

#include <cmocka.h>

#include "err.h"
#include "fsobj.h"
#include "mem.h"
#include "testmem.h"

static void
sample_attr(struct fsobj_attr *a, uint32_t mode)
{
	fsobj_attr_init(a);
	a->mode = mode;
	a->uid = 1000;
	a->gid = 100;
	a->ino = 0x0123456789abcdefull;
	a->atime = (struct timespec){1, 2};
	a->mtime = (struct timespec){1700000000, 123456789};
	a->ctime = (struct timespec){-5, 999999999};
}

static void
test_keys(void **state)
{
	struct buf b;

	(void)state;
	buf_init(&b);
	fsobj_key_file(&b, "/a/b");
	assert_int_equal(b.len, 5);
	assert_memory_equal(b.data, "F/a/b", 5);
	buf_reset(&b);
	fsobj_key_dir(&b, "/");
	assert_memory_equal(b.data, "D/", 2);
	buf_fini(&b);
}

static void
test_xattrs(void **state)
{
	struct fsobj_attr a, c;
	char list[64];

	(void)state;
	sample_attr(&a, S_IFREG | 0644);
	assert_int_equal(fsobj_xattr_set(&a, "user.b", "2", 1, 0), 0);
	assert_int_equal(fsobj_xattr_set(&a, "user.a", "1", 1, 0), 0);
	assert_int_equal(fsobj_xattr_set(&a, "user.c", NULL, 0, 0), 0);
	assert_int_equal(a.nxattr, 3);
	assert_string_equal(a.xattr[0].name, "user.a");
	assert_int_equal(fsobj_xattr_set(&a, "user.a", "x", 1, XATTR_CREATE),
	                 -EEXIST);
	assert_int_equal(fsobj_xattr_set(&a, "user.z", "x", 1, XATTR_REPLACE),
	                 -ENODATA);
	assert_int_equal(
	    fsobj_xattr_set(&a, "user.a", "xyz", 3, XATTR_REPLACE), 0);
	assert_int_equal(a.xattr[0].len, 3);
	assert_int_equal(fsobj_xattr_find(&a, "user.c"), 2);
	assert_int_equal(fsobj_xattr_find(&a, "user.q"), -1);
	assert_int_equal(fsobj_xattr_list(&a, NULL, 0), 21);
	assert_int_equal(fsobj_xattr_list(&a, list, 5), -ERANGE);
	assert_int_equal(fsobj_xattr_list(&a, list, sizeof(list)), 21);
	assert_memory_equal(list, "user.a\0user.b\0user.c\0", 21);
	assert_int_equal(fsobj_xattr_remove(&a, "user.b"), 0);
	assert_int_equal(fsobj_xattr_remove(&a, "user.b"), -ENODATA);
	assert_int_equal(a.nxattr, 2);

	/* Caps. */
	char *big = test_calloc(1, FSOBJ_XVALUE_MAX + 1);
	assert_int_equal(
	    fsobj_xattr_set(&a, "user.big", big, FSOBJ_XVALUE_MAX + 1, 0),
	    -ERANGE);
	for (int i = 0; i < 3; i++) {
		char n[16];
		snprintf(n, sizeof(n), "user.big%d", i);
		assert_int_equal(
		    fsobj_xattr_set(&a, n, big, FSOBJ_XVALUE_MAX, 0), 0);
	}
	assert_int_equal(
	    fsobj_xattr_set(&a, "user.big9", big, FSOBJ_XVALUE_MAX, 0),
	    -ENOSPC);
	test_free(big);

	fsobj_attr_init(&c);
	assert_int_equal(fsobj_attr_copy(&c, &a), 0);
	assert_int_equal(c.nxattr, a.nxattr);
	assert_memory_equal(c.xattr[0].value, "xyz", 3);
	fsobj_attr_fini(&c);
	fsobj_attr_fini(&a);
}

static void
test_file_inline(void **state)
{
	struct fsobj_file f, g;
	struct buf b;

	(void)state;
	fsobj_file_init(&f);
	fsobj_file_init(&g);
	sample_attr(&f.a, S_IFREG | 0600);
	assert_int_equal(fsobj_xattr_set(&f.a, "user.k", "v", 1, 0), 0);
	f.size = 5;
	f.layout = FSOBJ_INLINE;
	f.data = mem_dup("hello", 5);
	buf_init(&b);
	fsobj_file_encode(&f, &b);
	assert_int_equal(buf_err(&b), 0);
	assert_int_equal(fsobj_file_decode(b.data, b.len, &g), 0);
	assert_int_equal(g.a.mode, S_IFREG | 0600);
	assert_int_equal(g.a.uid, 1000);
	assert_int_equal(g.a.ino, 0x0123456789abcdefull);
	assert_int_equal(g.a.mtime.tv_sec, 1700000000);
	assert_int_equal(g.a.mtime.tv_nsec, 123456789);
	assert_int_equal(g.a.ctime.tv_sec, -5);
	assert_int_equal(g.size, 5);
	assert_memory_equal(g.data, "hello", 5);
	assert_int_equal(g.a.nxattr, 1);

	/* Every truncation of the encoding is refused, never read past. */
	for (size_t n = 0; n < b.len; n++) {
		uint8_t *cut = test_malloc(n ? n : 1);
		memcpy(cut, b.data, n);
		assert_int_equal(fsobj_file_decode(cut, n, &g), DYN_EBADMSG);
		assert_int_equal(g.size, 0);
		test_free(cut);
	}
	/* Trailing garbage, a wrong magic, a directory mode. */
	buf_put_u8(&b, 0);
	assert_int_equal(fsobj_file_decode(b.data, b.len, &g), DYN_EBADMSG);
	b.len--;
	b.data[0] = 'X';
	assert_int_equal(fsobj_file_decode(b.data, b.len, &g), DYN_EBADMSG);
	b.data[0] = 'F';
	f.a.mode = S_IFDIR | 0755;
	buf_reset(&b);
	fsobj_file_encode(&f, &b);
	assert_int_equal(fsobj_file_decode(b.data, b.len, &g), DYN_EBADMSG);

	/* Copy. */
	f.a.mode = S_IFLNK | 0777;
	assert_int_equal(fsobj_file_copy(&g, &f), 0);
	assert_memory_equal(g.data, "hello", 5);
	fsobj_file_fini(&g);
	fsobj_file_fini(&f);
	buf_fini(&b);
}

static void
ref_fill(struct fsobj_ref *r, uint8_t kind, uint8_t v)
{
	memset(r->key, v, sizeof(r->key));
	r->key[0] = kind;
}

static void
test_file_chunked(void **state)
{
	struct fsobj_file f, g;
	struct buf b;

	(void)state;
	fsobj_file_init(&f);
	fsobj_file_init(&g);
	sample_attr(&f.a, S_IFREG | 0644);
	f.layout = FSOBJ_CHUNKED;
	f.chunk_size = 4096;
	/* Three pages and a bit: page 1 all holes, pages 0 and 3 the same
	 * blob (named once in the header). */
	f.size = 3ull * FSOBJ_PAGE_CHUNKS * 4096 + 1;
	assert_int_equal(fsobj_nchunks(f.size, 4096),
	                 3 * FSOBJ_PAGE_CHUNKS + 1);
	assert_int_equal(fsobj_nchunks(0, 4096), 0);
	assert_int_equal(fsobj_npages(f.size, 4096), 4);
	assert_int_equal(fsobj_npages(4096, 4096), 1);
	f.npages = 4;
	f.pages = test_calloc(4, sizeof(*f.pages));
	f.pstored = test_calloc(4, sizeof(*f.pstored));
	ref_fill(&f.pages[0], BLOB_REFS, 1);
	ref_fill(&f.pages[2], BLOB_REFS, 2);
	ref_fill(&f.pages[3], BLOB_REFS, 1);
	f.pstored[0] = 100;
	f.pstored[2] = 7;
	f.pstored[3] = 100;
	f.stored = 207;
	buf_init(&b);
	fsobj_file_encode(&f, &b);
	assert_int_equal(buf_err(&b), 0);
	/* The header names the two distinct pages. */
	const uint8_t *refs;
	uint32_t n;
	size_t hdr;
	assert_int_equal(blob_refs_parse(b.data, b.len, &refs, &n, &hdr), 0);
	assert_int_equal(n, 2);
	assert_int_equal(fsobj_file_decode(b.data, b.len, &g), 0);
	assert_int_equal(g.layout, FSOBJ_CHUNKED);
	assert_int_equal(g.npages, 4);
	assert_int_equal(g.stored, 207);
	assert_true(fsobj_ref_none(&g.pages[1]));
	assert_memory_equal(g.pages[3].key, f.pages[0].key, BLOB_KEY_LEN);
	assert_memory_equal(g.pages[2].key, f.pages[2].key, BLOB_KEY_LEN);
	for (size_t k = 0; k < b.len; k++)
		assert_int_not_equal(fsobj_file_decode(b.data, k, &g), 0);

	/* Stored bytes that disagree with the pages', a page count that
	 * disagrees with the size, a page that is a data blob. */
	f.stored = 1;
	buf_reset(&b);
	fsobj_file_encode(&f, &b);
	assert_int_equal(fsobj_file_decode(b.data, b.len, &g), DYN_EBADMSG);
	f.stored = 207;
	f.size = 100ull << 20;
	buf_reset(&b);
	fsobj_file_encode(&f, &b);
	assert_int_equal(fsobj_file_decode(b.data, b.len, &g), DYN_EBADMSG);
	f.size = 3ull * FSOBJ_PAGE_CHUNKS * 4096 + 1;
	f.pages[2].key[0] = BLOB_DATA;
	buf_reset(&b);
	fsobj_file_encode(&f, &b);
	assert_int_equal(fsobj_file_decode(b.data, b.len, &g), DYN_EBADMSG);
	f.pages[2].key[0] = BLOB_REFS;
	/* A chunk size out of range; a size past the largest file. */
	f.chunk_size = 1024;
	buf_reset(&b);
	fsobj_file_encode(&f, &b);
	assert_int_equal(fsobj_file_decode(b.data, b.len, &g), DYN_EBADMSG);
	assert_true(fsobj_file_max(4096) < FSOBJ_FILE_MAX);
	assert_int_equal(fsobj_file_max(1u << 20), FSOBJ_FILE_MAX);
	fsobj_file_fini(&g);
	fsobj_file_fini(&f);
	buf_fini(&b);
}

/* An object of another format version is refused, never misread; the
 * inode number goes through. */
static void
test_file_version(void **state)
{
	struct fsobj_file f, g;
	struct buf b;

	(void)state;
	fsobj_file_init(&f);
	fsobj_file_init(&g);
	sample_attr(&f.a, S_IFREG | 0644);
	buf_init(&b);
	fsobj_file_encode(&f, &b);
	assert_int_equal(fsobj_file_decode(b.data, b.len, &g), 0);
	b.data[1] = 1; /* format 1: chunks under generations */
	assert_int_equal(fsobj_file_decode(b.data, b.len, &g), DYN_EPROTO);
	b.data[1] = 2; /* format 2: no inode number */
	assert_int_equal(fsobj_file_decode(b.data, b.len, &g), DYN_EPROTO);
	fsobj_file_fini(&g);
	fsobj_file_fini(&f);

	struct fsobj_dir d, e;
	fsobj_dir_init(&d);
	fsobj_dir_init(&e);
	sample_attr(&d.a, S_IFDIR | 0755);
	buf_reset(&b);
	fsobj_dir_encode(&d, &b);
	assert_int_equal(fsobj_dir_decode(b.data, b.len, &e), 0);
	assert_int_equal(e.a.ino, 0x0123456789abcdefull);
	b.data[1] = 1; /* format 1: no inode number */
	assert_int_equal(fsobj_dir_decode(b.data, b.len, &e), DYN_EPROTO);
	fsobj_dir_fini(&d);
	fsobj_dir_fini(&e);
	buf_fini(&b);
}

static void
test_page(void **state)
{
	struct fsobj_page p, q;
	struct buf b;

	(void)state;
	fsobj_page_init(&p);
	fsobj_page_init(&q);
	assert_int_equal(fsobj_page_alloc(&p, FSOBJ_PAGE_CHUNKS + 1), -EINVAL);
	assert_int_equal(fsobj_page_alloc(&p, 5), 0);
	ref_fill(&p.ref[0], BLOB_DATA, 9);
	p.len[0] = 4096;
	ref_fill(&p.ref[2], BLOB_DATA, 8);
	p.len[2] = 10;
	ref_fill(&p.ref[4], BLOB_DATA, 9); /* the same as 0 */
	p.len[4] = 4096;
	buf_init(&b);
	fsobj_page_encode(&p, &b);
	assert_int_equal(fsobj_page_decode(b.data, b.len, &q), 0);
	assert_int_equal(q.n, 5);
	assert_true(fsobj_ref_none(&q.ref[1]) && q.len[1] == 0);
	assert_true(fsobj_ref_none(&q.ref[3]));
	assert_memory_equal(q.ref[4].key, p.ref[0].key, BLOB_KEY_LEN);
	assert_int_equal(q.len[2], 10);
	for (size_t k = 0; k < b.len; k++)
		assert_int_not_equal(fsobj_page_decode(b.data, k, &q), 0);
	/* A page's chunk cannot be a page. */
	p.ref[2].key[0] = BLOB_REFS;
	buf_reset(&b);
	fsobj_page_encode(&p, &b);
	assert_int_equal(fsobj_page_decode(b.data, b.len, &q), DYN_EBADMSG);
	fsobj_page_fini(&p);
	fsobj_page_fini(&q);
	buf_fini(&b);
}

/* A huge count in a short message is refused before any allocation. */
static void
test_file_hostile_counts(void **state)
{
	struct fsobj_file f, g;
	struct fsobj_dir d, e;
	struct buf b;

	(void)state;
	fsobj_file_init(&f);
	fsobj_file_init(&g);
	sample_attr(&f.a, S_IFREG | 0644);
	buf_init(&b);
	fsobj_file_encode(&f, &b);
	/* nxattr sits after magic, version, mode, uid, gid, ino, 3 times. */
	size_t at = 2 + 12 + 8 + 36; /* inline: no reference header */
	be_put_u32(b.data + at, 0xffffffffu);
	testmem_fail_after(0);
	mem_set_allocator(&testmem_failing);
	assert_int_equal(fsobj_file_decode(b.data, b.len, &g), DYN_EBADMSG);
	mem_set_allocator(&testmem_checked);

	fsobj_dir_init(&d);
	fsobj_dir_init(&e);
	sample_attr(&d.a, S_IFDIR | 0755);
	buf_reset(&b);
	fsobj_dir_encode(&d, &b);
	be_put_u32(b.data + at + 4, 0x7fffffffu); /* nent */
	mem_set_allocator(&testmem_failing);
	assert_int_equal(fsobj_dir_decode(b.data, b.len, &e), DYN_EBADMSG);
	mem_set_allocator(&testmem_checked);
	fsobj_dir_fini(&d);
	fsobj_file_fini(&f);
	buf_fini(&b);
}

static uint8_t
find_type(const struct fsobj_dir *d, const char *name)
{
	uint8_t t = 0;
	if (fsobj_dir_find(d, name, strlen(name), &t) != 0)
		return 0;
	return t;
}

static int
add(struct fsobj_dir *d, const char *name, uint8_t type, uint64_t actor,
    uint64_t counter)
{
	return fsobj_dir_add(d, name, strlen(name), type, actor, counter);
}

static void
test_dir_basic(void **state)
{
	struct fsobj_dir d, e;
	struct buf b;
	uint32_t i = 0;
	const char *name;
	size_t nl;
	uint8_t t;

	(void)state;
	fsobj_dir_init(&d);
	fsobj_dir_init(&e);
	sample_attr(&d.a, S_IFDIR | 0755);
	assert_int_equal(add(&d, "b", FSOBJ_T_REG, 1, 1), 0);
	assert_int_equal(add(&d, "a", FSOBJ_T_DIR, 1, 2), 0);
	assert_int_equal(add(&d, "c", FSOBJ_T_LNK, 1, 3), 0);
	assert_int_equal(add(&d, "c", FSOBJ_T_LNK, 1, 3), -EINVAL);
	assert_int_equal(add(&d, "x/y", FSOBJ_T_REG, 1, 9), -EINVAL);
	assert_int_equal(add(&d, "..", FSOBJ_T_REG, 1, 9), -EINVAL);
	assert_int_equal(add(&d, "", FSOBJ_T_REG, 1, 9), -EINVAL);
	assert_int_equal(add(&d, "q", 9, 1, 9), -EINVAL);
	assert_int_equal(add(&d, "q", FSOBJ_T_REG, 1, 0), -EINVAL);
	assert_int_equal(find_type(&d, "a"), FSOBJ_T_DIR);
	assert_int_equal(find_type(&d, "b"), FSOBJ_T_REG);
	assert_int_equal(find_type(&d, "zz"), 0);
	assert_int_equal(fsobj_dir_nsubdirs(&d), 1);

	/* Re-adding a name replaces its add: the old tag is removed. */
	assert_int_equal(add(&d, "b", FSOBJ_T_REG, 1, 4), 0);
	assert_int_equal(d.nent, 3);
	assert_int_equal(d.nrm, 1);
	assert_int_equal(add(&d, "zz", FSOBJ_T_REG, 1, 1), -EINVAL);

	/* Removes of consecutive tags coalesce into one range. */
	assert_int_equal(fsobj_dir_remove(&d, "a", 1), 0);
	assert_int_equal(fsobj_dir_remove(&d, "c", 1), 0);
	assert_int_equal(fsobj_dir_remove(&d, "c", 1), -ENOENT);
	assert_int_equal(d.nrm, 1);
	assert_int_equal(d.rm[0].lo, 1);
	assert_int_equal(d.rm[0].hi, 3);
	assert_int_equal(fsobj_dir_top(&d, 1), 4);
	assert_int_equal(fsobj_dir_top(&d, 2), 0);

	assert_true(fsobj_dir_next(&d, &i, &name, &nl, &t));
	assert_int_equal(nl, 1);
	assert_memory_equal(name, "b", 1);
	assert_false(fsobj_dir_next(&d, &i, &name, &nl, &t));

	buf_init(&b);
	fsobj_dir_encode(&d, &b);
	assert_int_equal(fsobj_dir_decode(b.data, b.len, &e), 0);
	assert_int_equal(e.nent, 1);
	assert_int_equal(e.nrm, 1);
	assert_int_equal(find_type(&e, "b"), FSOBJ_T_REG);
	for (size_t n = 0; n < b.len; n++)
		assert_int_equal(fsobj_dir_decode(b.data, n, &e), DYN_EBADMSG);
	fsobj_dir_fini(&e);
	fsobj_dir_fini(&d);
	buf_fini(&b);
}

/* Many creates and removes by one writer leave one range, not a list. */
static void
test_dir_compact(void **state)
{
	struct fsobj_dir d;
	char n[16];

	(void)state;
	fsobj_dir_init(&d);
	sample_attr(&d.a, S_IFDIR | 0755);
	for (uint64_t c = 1; c <= 1000; c++) {
		snprintf(n, sizeof(n), "f%llu", (unsigned long long)c);
		assert_int_equal(add(&d, n, FSOBJ_T_REG, 42, c), 0);
	}
	assert_int_equal(d.nent, 1000);
	/* Remove in an unfriendly order: evens, then odds backwards. */
	for (uint64_t c = 2; c <= 1000; c += 2) {
		snprintf(n, sizeof(n), "f%llu", (unsigned long long)c);
		assert_int_equal(fsobj_dir_remove(&d, n, strlen(n)), 0);
	}
	assert_int_equal(d.nrm, 500);
	for (uint64_t c = 999; c >= 3; c -= 2) {
		snprintf(n, sizeof(n), "f%llu", (unsigned long long)c);
		assert_int_equal(fsobj_dir_remove(&d, n, strlen(n)), 0);
	}
	assert_int_equal(d.nent, 1);
	assert_int_equal(d.nrm, 1);
	assert_int_equal(d.rm[0].lo, 2);
	assert_int_equal(d.rm[0].hi, 1000);
	fsobj_dir_fini(&d);
}

/* Two mounts from one stale state: one adds x, the other removes y and adds
 * z.  The merge has x and z, not y; merging either way round gives the same
 * bytes; merging again changes nothing; an old copy does not bring y back. */
static void
test_dir_merge(void **state)
{
	struct fsobj_dir base, a, b, ab, ba;
	struct buf x, y;

	(void)state;
	fsobj_dir_init(&base);
	fsobj_dir_init(&a);
	fsobj_dir_init(&b);
	fsobj_dir_init(&ab);
	fsobj_dir_init(&ba);
	sample_attr(&base.a, S_IFDIR | 0755);
	assert_int_equal(add(&base, "y", FSOBJ_T_REG, 7, 1), 0);
	assert_int_equal(fsobj_dir_copy(&a, &base), 0);
	assert_int_equal(fsobj_dir_copy(&b, &base), 0);
	assert_int_equal(add(&a, "x", FSOBJ_T_REG, 100, 1), 0);
	a.a.ctime.tv_sec = 10;
	assert_int_equal(fsobj_dir_remove(&b, "y", 1), 0);
	assert_int_equal(add(&b, "z", FSOBJ_T_DIR, 200, 1), 0);
	b.a.ctime.tv_sec = 20;
	b.a.mode = S_IFDIR | 0700;

	assert_int_equal(fsobj_dir_copy(&ab, &a), 0);
	assert_int_equal(fsobj_dir_merge(&ab, &b), 0);
	assert_int_equal(fsobj_dir_copy(&ba, &b), 0);
	assert_int_equal(fsobj_dir_merge(&ba, &a), 0);
	assert_int_equal(find_type(&ab, "x"), FSOBJ_T_REG);
	assert_int_equal(find_type(&ab, "z"), FSOBJ_T_DIR);
	assert_int_equal(find_type(&ab, "y"), 0);
	assert_int_equal(ab.a.mode, S_IFDIR | 0700); /* newer ctime wins */

	buf_init(&x);
	buf_init(&y);
	fsobj_dir_encode(&ab, &x);
	fsobj_dir_encode(&ba, &y);
	assert_int_equal(x.len, y.len);
	assert_memory_equal(x.data, y.data, x.len);

	assert_int_equal(fsobj_dir_merge(&ab, &ab), 0);
	assert_int_equal(fsobj_dir_merge(&ab, &base), 0);
	assert_int_equal(find_type(&ab, "y"), 0);
	buf_reset(&y);
	fsobj_dir_encode(&ab, &y);
	assert_int_equal(x.len, y.len);
	assert_memory_equal(x.data, y.data, x.len);

	/* Concurrent add of one name by both: add wins over the other's
	 * remove of the old add; both adds stay, one name shows. */
	assert_int_equal(add(&a, "y", FSOBJ_T_REG, 100, 2), 0);
	assert_int_equal(fsobj_dir_merge(&a, &b), 0);
	assert_int_equal(find_type(&a, "y"), FSOBJ_T_REG);

	/* File and directory of one name: the directory wins. */
	assert_int_equal(add(&b, "w", FSOBJ_T_REG, 200, 2), 0);
	assert_int_equal(add(&base, "w", FSOBJ_T_DIR, 7, 2), 0);
	assert_int_equal(fsobj_dir_merge(&b, &base), 0);
	assert_int_equal(find_type(&b, "w"), FSOBJ_T_DIR);
	uint32_t i = 0, names = 0;
	const char *nm;
	size_t nl;
	uint8_t t;
	while (fsobj_dir_next(&b, &i, &nm, &nl, &t))
		names++;
	assert_int_equal(names, 2); /* w and z; y was removed by b */

	buf_fini(&x);
	buf_fini(&y);
	fsobj_dir_fini(&base);
	fsobj_dir_fini(&a);
	fsobj_dir_fini(&b);
	fsobj_dir_fini(&ab);
	fsobj_dir_fini(&ba);
}

/* Ranges from two actors interleave and merge correctly. */
static void
test_dir_ranges(void **state)
{
	struct fsobj_dir a, b;
	char n[16];

	(void)state;
	fsobj_dir_init(&a);
	fsobj_dir_init(&b);
	sample_attr(&a.a, S_IFDIR | 0755);
	sample_attr(&b.a, S_IFDIR | 0755);
	for (uint64_t c = 1; c <= 10; c++) {
		snprintf(n, sizeof(n), "a%llu", (unsigned long long)c);
		assert_int_equal(add(&a, n, FSOBJ_T_REG, 5, c), 0);
		snprintf(n, sizeof(n), "b%llu", (unsigned long long)c);
		assert_int_equal(add(&b, n, FSOBJ_T_REG, 3, c), 0);
	}
	assert_int_equal(fsobj_dir_merge(&a, &b), 0);
	assert_int_equal(fsobj_dir_copy(&b, &a), 0);
	/* a removes 1..5 of both, b removes 4..10 of actor 5. */
	for (uint64_t c = 1; c <= 5; c++) {
		snprintf(n, sizeof(n), "a%llu", (unsigned long long)c);
		assert_int_equal(fsobj_dir_remove(&a, n, strlen(n)), 0);
		snprintf(n, sizeof(n), "b%llu", (unsigned long long)c);
		assert_int_equal(fsobj_dir_remove(&a, n, strlen(n)), 0);
	}
	for (uint64_t c = 4; c <= 10; c++) {
		snprintf(n, sizeof(n), "a%llu", (unsigned long long)c);
		assert_int_equal(fsobj_dir_remove(&b, n, strlen(n)), 0);
	}
	assert_int_equal(fsobj_dir_merge(&a, &b), 0);
	assert_int_equal(a.nrm, 2);
	assert_int_equal(a.rm[0].actor, 3);
	assert_int_equal(a.rm[0].hi, 5);
	assert_int_equal(a.rm[1].actor, 5);
	assert_int_equal(a.rm[1].lo, 1);
	assert_int_equal(a.rm[1].hi, 10);
	assert_int_equal(a.nent, 5); /* b6..b10 */
	assert_int_equal(find_type(&a, "b6"), FSOBJ_T_REG);
	assert_int_equal(find_type(&a, "a6"), 0);
	fsobj_dir_fini(&a);
	fsobj_dir_fini(&b);
}

/* Removed ranges that overlap a range up to UINT64_MAX are refused (the
 * check of order once wrapped at hi + 1 and let them in). */
static void
test_dir_ranges_wrap(void **state)
{
	struct fsobj_dir d, e;
	struct buf b;

	(void)state;
	fsobj_dir_init(&d);
	fsobj_dir_init(&e);
	buf_init(&b);
	sample_attr(&d.a, S_IFDIR | 0755);
	d.rm = mem_calloc(2, sizeof(*d.rm));
	assert_non_null(d.rm);
	d.rm[0] = (struct fsobj_range){5, 1, UINT64_MAX};
	d.rm[1] = (struct fsobj_range){5, 3, 4};
	d.nrm = 1;
	fsobj_dir_encode(&d, &b);
	assert_int_equal(fsobj_dir_decode(b.data, b.len, &e), 0);
	assert_int_equal(e.nrm, 1);
	assert_true(e.rm[0].hi == UINT64_MAX);
	d.nrm = 2;
	buf_reset(&b);
	fsobj_dir_encode(&d, &b);
	assert_int_equal(fsobj_dir_decode(b.data, b.len, &e), DYN_EBADMSG);
	assert_int_equal(e.nrm, 0);
	fsobj_dir_fini(&d);
	fsobj_dir_fini(&e);
	buf_fini(&b);
}

/* Out of memory at every step leaves the directory as it was. */
static void
test_dir_oom(void **state)
{
	struct fsobj_dir d, o, c;
	struct buf before, after;

	(void)state;
	fsobj_dir_init(&d);
	fsobj_dir_init(&o);
	fsobj_dir_init(&c);
	sample_attr(&d.a, S_IFDIR | 0755);
	assert_int_equal(add(&d, "a", FSOBJ_T_REG, 1, 1), 0);
	assert_int_equal(add(&d, "b", FSOBJ_T_REG, 1, 3), 0);
	assert_int_equal(add(&o, "c", FSOBJ_T_REG, 2, 1), 0);
	sample_attr(&o.a, S_IFDIR | 0700);
	buf_init(&before);
	buf_init(&after);
	fsobj_dir_encode(&d, &before);
	for (int n = 0; n < 40; n++) {
		assert_int_equal(fsobj_dir_copy(&c, &d), 0);
		testmem_fail_after(n);
		mem_set_allocator(&testmem_failing);
		int r1 = fsobj_dir_merge(&c, &o);
		mem_set_allocator(&testmem_checked);
		if (r1 != 0) {
			assert_int_equal(r1, -ENOMEM);
			buf_reset(&after);
			fsobj_dir_encode(&c, &after);
			assert_int_equal(after.len, before.len);
			assert_memory_equal(after.data, before.data,
			                    after.len);
		}
		assert_int_equal(fsobj_dir_copy(&c, &d), 0);
		testmem_fail_after(n);
		mem_set_allocator(&testmem_failing);
		int r2 = fsobj_dir_remove(&c, "a", 1);
		mem_set_allocator(&testmem_checked);
		if (r2 != 0) {
			assert_int_equal(r2, -ENOMEM);
			assert_int_equal(find_type(&c, "a"), FSOBJ_T_REG);
		}
		testmem_fail_after(n);
		mem_set_allocator(&testmem_failing);
		int r3 = add(&c, "z", FSOBJ_T_REG, 9, 1);
		mem_set_allocator(&testmem_checked);
		assert_true(r3 == 0 || r3 == -ENOMEM);
		if (r3 != 0)
			assert_int_equal(find_type(&c, "z"), 0);
	}
	buf_fini(&before);
	buf_fini(&after);
	fsobj_dir_fini(&d);
	fsobj_dir_fini(&o);
	fsobj_dir_fini(&c);
}

static void
test_sibling_names(void **state)
{
	size_t bl;
	uint32_t k;
	char out[300];

	(void)state;
	assert_int_equal(fsobj_sibling_parse("f.v1", 4, &bl, &k), 0);
	assert_int_equal(bl, 1);
	assert_int_equal(k, 1);
	assert_int_equal(fsobj_sibling_parse("todo.txt.v12", 12, &bl, &k), 0);
	assert_int_equal(bl, 8);
	assert_int_equal(k, 12);
	assert_int_equal(fsobj_sibling_parse(".v1", 3, &bl, &k), -EINVAL);
	assert_int_equal(fsobj_sibling_parse("f.v0", 4, &bl, &k), -EINVAL);
	assert_int_equal(fsobj_sibling_parse("f.v01", 5, &bl, &k), -EINVAL);
	assert_int_equal(fsobj_sibling_parse("f.v", 3, &bl, &k), -EINVAL);
	assert_int_equal(fsobj_sibling_parse("f.x1", 4, &bl, &k), -EINVAL);
	assert_int_equal(fsobj_sibling_parse("fv1", 3, &bl, &k), -EINVAL);
	assert_int_equal(fsobj_sibling_parse("f.v1025", 7, &bl, &k), -EINVAL);
	assert_int_equal(fsobj_sibling_parse("f.v99999", 8, &bl, &k), -EINVAL);
	assert_int_equal(fsobj_sibling_name("a.b", 3, 7, out, sizeof(out)), 0);
	assert_string_equal(out, "a.b.v7");
	assert_int_equal(fsobj_sibling_name("a.b", 3, 7, out, 6),
	                 -ENAMETOOLONG);
	char longname[255];
	memset(longname, 'x', sizeof(longname));
	assert_int_equal(
	    fsobj_sibling_name(longname, 254, 1, out, sizeof(out)),
	    -ENAMETOOLONG);
}

static void
test_sibling_order(void **state)
{
	struct vset s;
	struct version v[4];

	(void)state;
	memset(v, 0, sizeof(v));
	for (int i = 0; i < 4; i++) {
		v[i].dot.actor = 1;
		v[i].dot.counter = (uint64_t)i + 1;
	}
	v[0].ts_ms = 300;
	v[1].ts_ms = 500;
	v[1].tombstone = true;
	v[2].ts_ms = 400;
	v[3].ts_ms = 400;
	s.n = 4;
	s.v = v;
	assert_int_equal(fsobj_live_nth(&s, 1), 0);
	assert_int_equal(fsobj_live_nth(&s, 2), 2);
	assert_int_equal(fsobj_live_nth(&s, 3), 3);
	assert_int_equal(fsobj_live_nth(&s, 4), -1);
	assert_int_equal(fsobj_live_nth(&s, 0), -1);
	/* The tombstone is newest but not live; of the two at 400 the later
	 * dot wins. */
	assert_int_equal(fsobj_live_newest(&s), 3);
	for (int i = 0; i < 4; i++)
		v[i].tombstone = true;
	assert_int_equal(fsobj_live_newest(&s), -1);
}

static void
test_clock_text(void **state)
{
	struct vclock c;
	char out[128];

	(void)state;
	vclock_init(&c);
	assert_int_equal(fsobj_clock_text(&c, out, sizeof(out)), 0);
	assert_string_equal(out, "");
	vclock_raise(&c, 0xabc, 3, 1);
	vclock_raise(&c, 0x1, 12, 1);
	int n = fsobj_clock_text(&c, out, sizeof(out));
	assert_string_equal(out, "0000000000000001:12 0000000000000abc:3");
	assert_int_equal(n, (int)strlen(out));
	assert_int_equal(fsobj_clock_text(&c, out, 4), n);
	/* Exact dots after the entries, with "@": one event, not a range. */
	vclock_add_dot(&c, &(struct dot){0xabc, 5}, 1);
	vclock_add_dot(&c, &(struct dot){0x2, 7}, 1);
	n = fsobj_clock_text(&c, out, sizeof(out));
	assert_string_equal(out, "0000000000000001:12 0000000000000abc:3 "
	                         "0000000000000002@7 0000000000000abc@5");
	assert_int_equal(n, (int)strlen(out));
	assert_int_equal(fsobj_clock_text(&c, out, 4), n);
	/* A dot that continues its entry is folded: no "@" for it. */
	vclock_add_dot(&c, &(struct dot){0xabc, 4}, 1);
	n = fsobj_clock_text(&c, out, sizeof(out));
	assert_int_equal(n, (int)strlen(out));
	assert_string_equal(out, "0000000000000001:12 0000000000000abc:5 "
	                         "0000000000000002@7");
}

/* Each test under cmocka's leak-checked allocator. */
#define T(fn)                                                                 \
	cmocka_unit_test_setup_teardown(fn, testmem_setup, testmem_teardown)

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    T(test_keys),
	    T(test_xattrs),
	    T(test_file_inline),
	    T(test_file_chunked),
	    T(test_file_version),
	    T(test_page),
	    T(test_file_hostile_counts),
	    T(test_dir_basic),
	    T(test_dir_compact),
	    T(test_dir_merge),
	    T(test_dir_ranges),
	    T(test_dir_ranges_wrap),
	    T(test_dir_oom),
	    T(test_sibling_names),
	    T(test_sibling_order),
	    T(test_clock_text),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
