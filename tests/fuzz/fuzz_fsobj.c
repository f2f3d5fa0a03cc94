/* libFuzzer target: the decoders of fs/fsobj.c, whose input comes from the
 * store (any node, any client can have written it).  The first byte picks
 * one: file objects (their attribute and time parsers, inline and chunked
 * layouts), chunk-list pages, directory objects, sibling names, the keys
 * of a directory's children.  What a
 * decoder accepts must be well formed and encode to bytes that decode to
 * the same object. */
#include <errno.h>
#include <string.h>
#include <sys/stat.h>

#include "err.h"
#include "fsobj.h"
#include "fuzz.h"

enum { SEL_FILE, SEL_PAGE, SEL_DIR, SEL_SIBLING, SEL_KEY, SEL_COUNT };

static void
check_attr(const struct fsobj_attr *a)
{
	size_t total = 0;

	FUZZ_REQUIRE(a->atime.tv_nsec >= 0 && a->atime.tv_nsec < 1000000000);
	FUZZ_REQUIRE(a->mtime.tv_nsec >= 0 && a->mtime.tv_nsec < 1000000000);
	FUZZ_REQUIRE(a->ctime.tv_nsec >= 0 && a->ctime.tv_nsec < 1000000000);
	FUZZ_REQUIRE(a->nxattr == 0 || a->xattr != NULL);
	for (uint32_t i = 0; i < a->nxattr; i++) {
		const struct fsobj_xattr *x = &a->xattr[i];
		size_t nl = strlen(x->name);
		FUZZ_REQUIRE(nl > 0 && nl <= FSOBJ_XNAME_MAX);
		FUZZ_REQUIRE(x->len <= FSOBJ_XVALUE_MAX);
		FUZZ_REQUIRE((x->len == 0) == (x->value == NULL));
		FUZZ_REQUIRE(i == 0 || strcmp(a->xattr[i - 1].name, x->name) < 0);
		FUZZ_REQUIRE(fsobj_xattr_find(a, x->name) == (int)i);
		total += nl + x->len;
	}
	FUZZ_REQUIRE(total <= FSOBJ_XATTRS_MAX);
	int need = fsobj_xattr_list(a, NULL, 0);
	FUZZ_REQUIRE(need >= 0);
}

static void
fuzz_file(const uint8_t *data, size_t size)
{
	struct fsobj_file f, g;
	struct buf e1, e2;

	fsobj_file_init(&f);
	fsobj_file_init(&g);
	buf_init(&e1);
	buf_init(&e2);
	int rc = fsobj_file_decode(data, size, &f);
	FUZZ_REQUIRE(rc == 0 || rc == DYN_EBADMSG || rc == DYN_EPROTO ||
	             rc == -ENOMEM);
	if (rc != 0) {
		FUZZ_REQUIRE(f.data == NULL && f.pages == NULL &&
		             f.npages == 0 && f.a.nxattr == 0);
		goto out;
	}
	check_attr(&f.a);
	FUZZ_REQUIRE(S_ISREG(f.a.mode) || S_ISLNK(f.a.mode));
	if (f.layout == FSOBJ_INLINE) {
		FUZZ_REQUIRE(f.size <= size);
		FUZZ_REQUIRE((f.size == 0) == (f.data == NULL));
		FUZZ_REQUIRE(f.npages == 0);
	} else {
		uint64_t total = 0;
		FUZZ_REQUIRE(f.layout == FSOBJ_CHUNKED);
		FUZZ_REQUIRE(S_ISREG(f.a.mode));
		FUZZ_REQUIRE(f.chunk_size >= FSOBJ_CHUNK_MIN &&
		             f.chunk_size <= FSOBJ_CHUNK_MAX);
		FUZZ_REQUIRE(f.size <= fsobj_file_max(f.chunk_size));
		FUZZ_REQUIRE(f.npages == fsobj_npages(f.size, f.chunk_size));
		FUZZ_REQUIRE(f.npages <= FSOBJ_PAGES_MAX);
		for (uint32_t i = 0; i < f.npages; i++) {
			FUZZ_REQUIRE(fsobj_ref_none(&f.pages[i]) ||
			             f.pages[i].key[0] == BLOB_REFS);
			total += f.pstored[i];
		}
		FUZZ_REQUIRE(total == f.stored);
	}
	/* decode(encode(f)) == f, compared by encoding; a copy too. */
	fsobj_file_encode(&f, &e1);
	FUZZ_REQUIRE(buf_err(&e1) == 0);
	FUZZ_REQUIRE(fsobj_file_decode(e1.data, e1.len, &g) == 0);
	fsobj_file_encode(&g, &e2);
	FUZZ_REQUIRE(buf_err(&e2) == 0);
	FUZZ_REQUIRE(e1.len == e2.len && memcmp(e1.data, e2.data, e1.len) == 0);
	if (fsobj_file_copy(&g, &f) == 0) {
		buf_reset(&e2);
		fsobj_file_encode(&g, &e2);
		FUZZ_REQUIRE(e1.len == e2.len &&
		             memcmp(e1.data, e2.data, e1.len) == 0);
	}
out:
	fsobj_file_fini(&f);
	fsobj_file_fini(&g);
	buf_fini(&e1);
	buf_fini(&e2);
}

static void
fuzz_page(const uint8_t *data, size_t size)
{
	struct fsobj_page pg, again;
	struct buf e1, e2;

	fsobj_page_init(&pg);
	fsobj_page_init(&again);
	buf_init(&e1);
	buf_init(&e2);
	int rc = fsobj_page_decode(data, size, &pg);
	FUZZ_REQUIRE(rc == 0 || rc == DYN_EBADMSG || rc == DYN_EPROTO ||
	             rc == -ENOMEM);
	if (rc != 0) {
		FUZZ_REQUIRE(pg.n == 0 && pg.ref == NULL && pg.len == NULL);
		goto out;
	}
	FUZZ_REQUIRE(pg.n <= FSOBJ_PAGE_CHUNKS);
	for (uint32_t i = 0; i < pg.n; i++) {
		FUZZ_REQUIRE(pg.len[i] <= FSOBJ_CHUNK_MAX);
		if (fsobj_ref_none(&pg.ref[i]))
			FUZZ_REQUIRE(pg.len[i] == 0);
		else
			FUZZ_REQUIRE(pg.ref[i].key[0] == BLOB_DATA);
	}
	fsobj_page_encode(&pg, &e1);
	FUZZ_REQUIRE(buf_err(&e1) == 0);
	FUZZ_REQUIRE(fsobj_page_decode(e1.data, e1.len, &again) == 0);
	FUZZ_REQUIRE(again.n == pg.n);
	for (uint32_t i = 0; i < pg.n; i++) {
		FUZZ_REQUIRE(memcmp(&again.ref[i], &pg.ref[i],
		                    sizeof(pg.ref[i])) == 0);
		FUZZ_REQUIRE(again.len[i] == pg.len[i]);
	}
	fsobj_page_encode(&again, &e2);
	FUZZ_REQUIRE(e1.len == e2.len && memcmp(e1.data, e2.data, e1.len) == 0);
out:
	fsobj_page_fini(&pg);
	fsobj_page_fini(&again);
	buf_fini(&e1);
	buf_fini(&e2);
}

static void
fuzz_dir(const uint8_t *data, size_t size)
{
	struct fsobj_dir d, g;
	struct buf e1, e2;

	fsobj_dir_init(&d);
	fsobj_dir_init(&g);
	buf_init(&e1);
	buf_init(&e2);
	int rc = fsobj_dir_decode(data, size, &d);
	FUZZ_REQUIRE(rc == 0 || rc == DYN_EBADMSG || rc == DYN_EPROTO ||
	             rc == -ENOMEM);
	if (rc != 0) {
		FUZZ_REQUIRE(d.a.nxattr == 0 && d.a.xattr == NULL);
		goto out;
	}
	check_attr(&d.a);
	FUZZ_REQUIRE(S_ISDIR(d.a.mode));
	/* decode(encode(d)) == d, and it ties with itself. */
	fsobj_dir_encode(&d, &e1);
	FUZZ_REQUIRE(buf_err(&e1) == 0);
	FUZZ_REQUIRE(fsobj_dir_decode(e1.data, e1.len, &g) == 0);
	fsobj_dir_encode(&g, &e2);
	FUZZ_REQUIRE(e1.len == e2.len && memcmp(e1.data, e2.data, e1.len) == 0);
	FUZZ_REQUIRE(fsobj_dir_cmp(&d, &g) == 0);
out:
	fsobj_dir_fini(&d);
	fsobj_dir_fini(&g);
	buf_fini(&e1);
	buf_fini(&e2);
}

/* A key from a range read: what it names must make the same key again. */
static void
fuzz_child_key(const uint8_t *data, size_t size)
{
	const char *name;
	size_t nl;
	uint8_t kind;
	if (fsobj_key_entry(data, size, &name, &nl, &kind) != 0)
		return;
	FUZZ_REQUIRE(nl >= 1 && nl <= FSOBJ_NAME_MAX);
	FUZZ_REQUIRE(memchr(name, '/', nl) == NULL &&
	             memchr(name, 0, nl) == NULL);
	FUZZ_REQUIRE(kind == FSOBJ_KEY_FILE || kind == FSOBJ_KEY_DIR);
	FUZZ_REQUIRE(name + nl + 2 == (const char *)data + size);
}

static void
fuzz_sibling(const uint8_t *data, size_t size)
{
	const char *name = (const char *)data;
	char again[FSOBJ_NAME_MAX + 1];
	size_t baselen;
	uint32_t k;

	if (fsobj_sibling_parse(name, size, &baselen, &k) != 0)
		return;
	FUZZ_REQUIRE(baselen >= 1 && baselen + 3 <= size);
	FUZZ_REQUIRE(k >= 1 && k <= FSOBJ_SIBLINGS_MAX);
	/* The parsed name is the one fsobj_sibling_name makes. */
	int rc = fsobj_sibling_name(name, baselen, k, again, sizeof(again));
	if (size > FSOBJ_NAME_MAX) {
		FUZZ_REQUIRE(rc == -ENAMETOOLONG);
		return;
	}
	FUZZ_REQUIRE(rc == 0);
	FUZZ_REQUIRE(memcmp(again, name, size) == 0 && again[size] == '\0');
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	switch (data[0] % SEL_COUNT) {
	case SEL_FILE:
		fuzz_file(data + 1, size - 1);
		break;
	case SEL_PAGE:
		fuzz_page(data + 1, size - 1);
		break;
	case SEL_DIR:
		fuzz_dir(data + 1, size - 1);
		break;
	case SEL_KEY:
		fuzz_child_key(data + 1, size - 1);
		break;
	default:
		fuzz_sibling(data + 1, size - 1);
		break;
	}
	return 0;
}
