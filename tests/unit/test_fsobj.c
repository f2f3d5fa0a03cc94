/* Unit tests for fs/fsobj: keys (a directory's children in its part),
 * file and directory encodings (round trips and hostile input), xattrs,
 * the directory winner rule, and sibling naming and order. */
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
#include "keypos.h"
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

/* The key of the object at path: in its parent's part, name, 0, kind. */
static void
check_key(const char *path, const char *parent, const char *name, char kind)
{
	struct buf b, h;
	const char *n;
	size_t nl;
	uint8_t k;

	buf_init(&b);
	buf_init(&h);
	if (kind == FSOBJ_KEY_FILE)
		fsobj_key_file(&b, path);
	else
		fsobj_key_dir(&b, path);
	fsobj_key_part(&h, parent, strlen(parent));
	assert_int_equal(buf_err(&b), 0);
	assert_int_equal(h.len, KEYPOS_PLACED_HDR + FSOBJ_PART_LEN);
	assert_int_equal(b.len, h.len + strlen(name) + 2);
	assert_memory_equal(b.data, h.data, h.len);
	assert_int_equal(keypos_placed_hdr(b.data, b.len), h.len);
	assert_memory_equal(b.data + h.len, name, strlen(name));
	assert_int_equal(b.data[b.len - 2], 0);
	assert_int_equal(b.data[b.len - 1], kind);
	if (*name) {
		assert_int_equal(fsobj_key_entry(b.data, b.len, &n, &nl, &k),
		                 0);
		assert_int_equal(nl, strlen(name));
		assert_memory_equal(n, name, nl);
		assert_int_equal(k, kind);
	} else {
		assert_int_equal(fsobj_key_entry(b.data, b.len, &n, &nl, &k),
		                 -EINVAL);
	}
	buf_fini(&b);
	buf_fini(&h);
}

static void
test_keys(void **state)
{
	struct buf a, b;
	const char *n;
	size_t nl;
	uint8_t k;

	(void)state;
	check_key("/a/b", "/a", "b", FSOBJ_KEY_FILE);
	check_key("/a/b", "/a", "b", FSOBJ_KEY_DIR);
	check_key("/x", "/", "x", FSOBJ_KEY_FILE);
	check_key("/", "", "", FSOBJ_KEY_DIR);
	/* Other directories, other parts; one directory's file and
	 * directory of one name are neighbours, the directory first. */
	buf_init(&a);
	buf_init(&b);
	fsobj_key_part(&a, "/a", 2);
	fsobj_key_part(&b, "/b", 2);
	assert_memory_not_equal(a.data, b.data, a.len);
	buf_reset(&a);
	buf_reset(&b);
	fsobj_key_dir(&a, "/d/n");
	fsobj_key_file(&b, "/d/n");
	assert_true(memcmp(a.data, b.data, a.len) < 0);
	buf_reset(&b);
	fsobj_key_file(&b, "/d/n.v1"); /* after both kinds of n */
	assert_true(memcmp(a.data, b.data, a.len) < 0);
	/* Keys that name no entry. */
	buf_reset(&a);
	fsobj_key_dir(&a, "/d/n");
	a.data[a.len - 1] = 'X';
	assert_int_equal(fsobj_key_entry(a.data, a.len, &n, &nl, &k), -EINVAL);
	a.data[a.len - 1] = FSOBJ_KEY_DIR;
	a.data[a.len - 2] = 'y';
	assert_int_equal(fsobj_key_entry(a.data, a.len, &n, &nl, &k), -EINVAL);
	assert_int_equal(fsobj_key_entry(a.data, 10, &n, &nl, &k), -EINVAL);
	buf_reset(&a);
	fsobj_key_dir(&a, "/d/..");
	assert_int_equal(fsobj_key_entry(a.data, a.len, &n, &nl, &k), -EINVAL);
	buf_reset(&a);
	fsobj_key_dir(&a, "/d/a/b"); /* from another directory: fine */
	assert_int_equal(fsobj_key_entry(a.data, a.len, &n, &nl, &k), 0);
	assert_int_equal(nl, 1);
	buf_fini(&a);
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
/* A device node keeps its rdev; other objects have none on the wire. */
static void
test_file_device(void **state)
{
	struct fsobj_file f, g;
	struct buf b, r;

	(void)state;
	fsobj_file_init(&f);
	fsobj_file_init(&g);
	buf_init(&b);
	buf_init(&r);
	sample_attr(&f.a, S_IFCHR | 0600);
	f.a.rdev = 0x0103;
	f.layout = FSOBJ_INLINE;
	fsobj_file_encode(&f, &b);
	assert_int_equal(fsobj_file_decode(b.data, b.len, &g), 0);
	assert_int_equal(g.a.mode, S_IFCHR | 0600);
	assert_int_equal(g.a.rdev, 0x0103);
	f.a.mode = S_IFREG | 0600;
	fsobj_file_encode(&f, &r);
	assert_int_equal(r.len + 8, b.len); /* no rdev field */
	assert_int_equal(fsobj_file_decode(r.data, r.len, &g), 0);
	assert_int_equal(g.a.rdev, 0);
	buf_fini(&b);
	buf_fini(&r);
	fsobj_file_fini(&f);
	fsobj_file_fini(&g);
}

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
	fsobj_file_fini(&f);
	buf_fini(&b);
}

/* A directory object is its attributes: round trip, every bad byte
 * refused, the old format (2: entries inside) refused as such. */
static void
test_dir(void **state)
{
	struct fsobj_dir d, e;
	struct buf b;

	(void)state;
	fsobj_dir_init(&d);
	fsobj_dir_init(&e);
	sample_attr(&d.a, S_IFDIR | 0755);
	assert_int_equal(fsobj_xattr_set(&d.a, "user.k", "v", 1, 0), 0);
	buf_init(&b);
	fsobj_dir_encode(&d, &b);
	assert_int_equal(buf_err(&b), 0);
	assert_int_equal(b.data[0], 'D');
	assert_int_equal(b.data[1], 3);
	assert_int_equal(fsobj_dir_decode(b.data, b.len, &e), 0);
	assert_int_equal(e.a.mode, S_IFDIR | 0755);
	assert_int_equal(e.a.ino, d.a.ino);
	assert_int_equal(e.a.nxattr, 1);
	assert_int_equal(fsobj_dir_cmp(&d, &e), 0);
	for (size_t n = 0; n < b.len; n++)
		assert_int_not_equal(fsobj_dir_decode(b.data, n, &e), 0);
	buf_put_u8(&b, 0); /* trailing bytes */
	assert_int_equal(fsobj_dir_decode(b.data, b.len, &e), DYN_EBADMSG);
	b.len--;
	b.data[1] = 2;
	assert_int_equal(fsobj_dir_decode(b.data, b.len, &e), DYN_EPROTO);
	b.data[1] = 3;
	/* Not a directory's mode. */
	d.a.mode = S_IFREG | 0644;
	buf_reset(&b);
	fsobj_dir_encode(&d, &b);
	assert_int_equal(fsobj_dir_decode(b.data, b.len, &e), DYN_EBADMSG);
	buf_fini(&b);
	fsobj_dir_fini(&d);
	fsobj_dir_fini(&e);
}

/* Concurrent versions: the later ctime wins, then mtime, then the bytes,
 * the same whichever way round they are compared. */
static void
test_dir_cmp(void **state)
{
	struct fsobj_dir a, b;

	(void)state;
	fsobj_dir_init(&a);
	fsobj_dir_init(&b);
	sample_attr(&a.a, S_IFDIR | 0755);
	sample_attr(&b.a, S_IFDIR | 0755);
	b.a.ctime.tv_nsec++;
	assert_true(fsobj_dir_cmp(&b, &a) > 0);
	assert_true(fsobj_dir_cmp(&a, &b) < 0);
	b.a.ctime = a.a.ctime;
	b.a.mtime.tv_sec++;
	assert_true(fsobj_dir_cmp(&b, &a) > 0);
	b.a.mtime = a.a.mtime;
	b.a.mode = S_IFDIR | 0700;
	int c = fsobj_dir_cmp(&a, &b);
	assert_int_not_equal(c, 0);
	assert_int_equal(fsobj_dir_cmp(&b, &a), -c);
	assert_int_equal(fsobj_dir_copy(&a, &b), 0);
	assert_int_equal(fsobj_dir_cmp(&a, &b), 0);
	fsobj_dir_fini(&a);
	fsobj_dir_fini(&b);
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
	    T(test_file_device),
	    T(test_file_version),
	    T(test_page),
	    T(test_file_hostile_counts),
	    T(test_dir),
	    T(test_dir_cmp),
	    T(test_sibling_names),
	    T(test_sibling_order),
	    T(test_clock_text),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
