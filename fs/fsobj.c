/*
 * fsobj — encodings and merge rules of the filesystem's objects.
 *
 *   attrs: u32 mode, u32 uid, u32 gid, u64 ino, 3 x (u64 sec, u32 nsec)
 *          for atime, mtime, ctime, u32 nxattr, nxattr x (blob name,
 *          blob value)
 *   file:  [reference header: the pages] u8 'F', u8 3, attrs, u64 size,
 *          u8 layout,
 *          INLINE:  blob data (size bytes)
 *          CHUNKED: u32 chunk_size, u64 stored, u32 npages,
 *                   npages x (u32 header index or 0, u64 stored)
 *   page:  [reference header: the chunks] u8 'P', u8 2, u32 n,
 *          n x (u32 header index or 0, u32 length)
 *   dir:   u8 'D', u8 2, attrs, u32 nent, nent x (blob name, u8 type,
 *          u64 actor, u64 counter), u32 nrm, nrm x (u64 actor, lo, hi)
 *
 * Functions that change an object build the new arrays first and swap them
 * in when nothing can fail any more, so errors leave the object as it was.
 */
#include "fsobj.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>

#include <openssl/rand.h>

#include "err.h"
#include "mem.h"

#define FILE_MAGIC 'F'
#define PAGE_MAGIC 'P'
#define DIR_MAGIC  'D'
#define FMT_FILE   3 /* file objects: content in blobs, an inode number */
#define FMT_PAGE   2 /* chunk-list pages */
#define FMT_DIR    2 /* directory objects: an inode number */

/* Smallest wire size of one xattr, dir entry, range: lets decoders
 * refuse a huge count before allocating for it. */
#define XATTR_MIN_WIRE (4 + 1 + 4)
#define DENT_MIN_WIRE  (4 + 1 + 1 + 8 + 8)
#define RANGE_WIRE     24

/* ---- keys ---- */

void
fsobj_key_file(struct buf *out, const char *path)
{
	buf_put_u8(out, 'F');
	buf_put(out, path, strlen(path));
}

void
fsobj_key_dir(struct buf *out, const char *path)
{
	buf_put_u8(out, 'D');
	buf_put(out, path, strlen(path));
}


/* ---- attributes ---- */

void
fsobj_attr_init(struct fsobj_attr *a)
{
	memset(a, 0, sizeof(*a));
}

static void
xattrs_free(struct fsobj_xattr *x, uint32_t n)
{
	for (uint32_t i = 0; x && i < n; i++) {
		mem_free(x[i].name);
		mem_free(x[i].value);
	}
	mem_free(x);
}

uint64_t
fsobj_ino_new(void)
{
	uint64_t ino = 0;
	while (ino < 2 && RAND_bytes((unsigned char *)&ino, sizeof(ino)) == 1)
		;
	return ino < 2 ? ino + 2 : ino; /* no randomness: still a file's */
}

void
fsobj_attr_fini(struct fsobj_attr *a)
{
	if (!a)
		return;
	xattrs_free(a->xattr, a->nxattr);
	fsobj_attr_init(a);
}

int
fsobj_attr_copy(struct fsobj_attr *dst, const struct fsobj_attr *src)
{
	struct fsobj_xattr *x = NULL;
	uint32_t done = 0;
	int rc = 0;

	if (dst == src)
		return 0;
	if (src->nxattr > 0) {
		x = mem_calloc(src->nxattr, sizeof(*x));
		if (!x)
			return -ENOMEM;
	}
	for (; done < src->nxattr; done++) {
		const struct fsobj_xattr *s = &src->xattr[done];
		x[done].name = mem_dup(s->name, strlen(s->name) + 1);
		x[done].value = s->len ? mem_dup(s->value, s->len) : NULL;
		x[done].len = s->len;
		if (!x[done].name || (s->len && !x[done].value)) {
			done++;
			rc = -ENOMEM;
			goto out;
		}
	}
	xattrs_free(dst->xattr, dst->nxattr);
	*dst = *src;
	dst->xattr = x;
	x = NULL;
out:
	xattrs_free(x, done);
	return rc;
}

/* Binary search: index of name, or -(insertion point) - 1. */
static int
xattr_search(const struct fsobj_attr *a, const char *name)
{
	int lo = 0;
	int hi = (int)a->nxattr;

	while (lo < hi) {
		int mid = lo + (hi - lo) / 2;
		int c = strcmp(a->xattr[mid].name, name);
		if (c == 0)
			return mid;
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return -lo - 1;
}

int
fsobj_xattr_find(const struct fsobj_attr *a, const char *name)
{
	int i = xattr_search(a, name);
	return i >= 0 ? i : -1;
}

static size_t
xattrs_bytes(const struct fsobj_attr *a)
{
	size_t n = 0;
	for (uint32_t i = 0; i < a->nxattr; i++)
		n += strlen(a->xattr[i].name) + a->xattr[i].len;
	return n;
}

int
fsobj_xattr_set(struct fsobj_attr *a, const char *name, const void *value,
                size_t len, int flags)
{
	size_t nl = strlen(name);
	int i = xattr_search(a, name);
	uint8_t *v = NULL;

	if (nl == 0 || nl > FSOBJ_XNAME_MAX || len > FSOBJ_XVALUE_MAX)
		return -ERANGE;
	if (i >= 0 && (flags & XATTR_CREATE))
		return -EEXIST;
	if (i < 0 && (flags & XATTR_REPLACE))
		return -ENODATA;
	size_t total = xattrs_bytes(a) + len + (i < 0 ? nl : 0) -
	               (i >= 0 ? a->xattr[i].len : 0);
	if (total > FSOBJ_XATTRS_MAX)
		return -ENOSPC;
	if (len > 0 && !(v = mem_dup(value, len)))
		return -ENOMEM;
	if (i >= 0) {
		mem_free(a->xattr[i].value);
		a->xattr[i].value = v;
		a->xattr[i].len = (uint32_t)len;
		return 0;
	}
	char *n = mem_dup(name, nl + 1);
	struct fsobj_xattr *x =
	    n ? mem_realloc(a->xattr, (a->nxattr + 1) * sizeof(*x)) : NULL;
	if (!x) {
		mem_free(n);
		mem_free(v);
		return -ENOMEM;
	}
	a->xattr = x;
	size_t at = (size_t)(-i - 1);
	memmove(&x[at + 1], &x[at], (a->nxattr - at) * sizeof(*x));
	x[at].name = n;
	x[at].value = v;
	x[at].len = (uint32_t)len;
	a->nxattr++;
	return 0;
}

int
fsobj_xattr_remove(struct fsobj_attr *a, const char *name)
{
	int i = xattr_search(a, name);
	if (i < 0)
		return -ENODATA;
	mem_free(a->xattr[i].name);
	mem_free(a->xattr[i].value);
	memmove(&a->xattr[i], &a->xattr[i + 1],
	        (a->nxattr - (uint32_t)i - 1) * sizeof(a->xattr[0]));
	a->nxattr--;
	return 0;
}

int
fsobj_xattr_list(const struct fsobj_attr *a, char *out, size_t cap)
{
	size_t need = 0;
	for (uint32_t i = 0; i < a->nxattr; i++)
		need += strlen(a->xattr[i].name) + 1;
	if (cap == 0)
		return (int)need;
	if (need > cap)
		return -ERANGE;
	size_t at = 0;
	for (uint32_t i = 0; i < a->nxattr; i++) {
		size_t n = strlen(a->xattr[i].name) + 1;
		memcpy(out + at, a->xattr[i].name, n);
		at += n;
	}
	return (int)need;
}

static void
time_encode(struct buf *out, const struct timespec *t)
{
	buf_put_u64(out, (uint64_t)(int64_t)t->tv_sec);
	buf_put_u32(out, (uint32_t)t->tv_nsec);
}

static int
time_decode(struct rd *in, struct timespec *t)
{
	uint64_t s;
	uint32_t ns;
	int rc;

	if ((rc = rd_u64(in, &s)) != 0 || (rc = rd_u32(in, &ns)) != 0)
		return rc;
	if (ns >= 1000000000u)
		return DYN_EBADMSG;
	t->tv_sec = (time_t)(int64_t)s;
	t->tv_nsec = (long)ns;
	return 0;
}

static void
attr_encode(const struct fsobj_attr *a, struct buf *out)
{
	buf_put_u32(out, a->mode);
	buf_put_u32(out, a->uid);
	buf_put_u32(out, a->gid);
	buf_put_u64(out, a->ino);
	time_encode(out, &a->atime);
	time_encode(out, &a->mtime);
	time_encode(out, &a->ctime);
	buf_put_u32(out, a->nxattr);
	for (uint32_t i = 0; i < a->nxattr; i++) {
		buf_put_blob(out, a->xattr[i].name, strlen(a->xattr[i].name));
		buf_put_blob(out, a->xattr[i].value, a->xattr[i].len);
	}
}

/* a must be initialised; on error it may hold part of the xattrs (the
 * caller finis it). */
static int
attr_decode(struct rd *in, struct fsobj_attr *a)
{
	uint32_t n;
	size_t total = 0;
	int rc;

	if ((rc = rd_u32(in, &a->mode)) != 0 ||
	    (rc = rd_u32(in, &a->uid)) != 0 ||
	    (rc = rd_u32(in, &a->gid)) != 0 ||
	    (rc = rd_u64(in, &a->ino)) != 0 ||
	    (rc = time_decode(in, &a->atime)) != 0 ||
	    (rc = time_decode(in, &a->mtime)) != 0 ||
	    (rc = time_decode(in, &a->ctime)) != 0 ||
	    (rc = rd_u32(in, &n)) != 0)
		return rc ? rc : DYN_EBADMSG;
	if ((size_t)n * XATTR_MIN_WIRE > rd_left(in))
		return DYN_EBADMSG;
	if (n == 0)
		return 0;
	a->xattr = mem_calloc(n, sizeof(*a->xattr));
	if (!a->xattr)
		return -ENOMEM;
	for (uint32_t i = 0; i < n; i++) {
		const uint8_t *np, *vp;
		size_t nl, vl;
		if ((rc = rd_blob(in, FSOBJ_XNAME_MAX, &np, &nl)) != 0 ||
		    (rc = rd_blob(in, FSOBJ_XVALUE_MAX, &vp, &vl)) != 0)
			return rc;
		total += nl + vl;
		if (nl == 0 || memchr(np, '\0', nl) ||
		    total > FSOBJ_XATTRS_MAX)
			return DYN_EBADMSG;
		struct fsobj_xattr *x = &a->xattr[i];
		x->name = mem_alloc(nl + 1);
		x->value = vl ? mem_dup(vp, vl) : NULL;
		a->nxattr = i + 1;
		if (!x->name || (vl && !x->value))
			return -ENOMEM;
		memcpy(x->name, np, nl);
		x->name[nl] = '\0';
		x->len = (uint32_t)vl;
		if (i > 0 && strcmp(a->xattr[i - 1].name, x->name) >= 0)
			return DYN_EBADMSG;
	}
	return 0;
}

/* ---- files ---- */

void
fsobj_file_init(struct fsobj_file *f)
{
	memset(f, 0, sizeof(*f));
	fsobj_attr_init(&f->a);
}

void
fsobj_file_fini(struct fsobj_file *f)
{
	if (!f)
		return;
	fsobj_attr_fini(&f->a);
	mem_free(f->data);
	mem_free(f->pages);
	mem_free(f->pstored);
	fsobj_file_init(f);
}

int
fsobj_file_copy(struct fsobj_file *dst, const struct fsobj_file *src)
{
	struct fsobj_file t;
	int rc;

	if (dst == src)
		return 0;
	fsobj_file_init(&t);
	if ((rc = fsobj_attr_copy(&t.a, &src->a)) != 0)
		goto out;
	rc = -ENOMEM;
	t.size = src->size;
	t.layout = src->layout;
	t.chunk_size = src->chunk_size;
	t.stored = src->stored;
	if (src->layout == FSOBJ_INLINE && src->size > 0 &&
	    !(t.data = mem_dup(src->data, (size_t)src->size)))
		goto out;
	if (src->npages > 0) {
		t.pages = mem_dup(src->pages, src->npages * sizeof(*t.pages));
		t.pstored =
		    mem_dup(src->pstored, src->npages * sizeof(*t.pstored));
		if (!t.pages || !t.pstored)
			goto out;
		t.npages = src->npages;
	}
	fsobj_file_fini(dst);
	*dst = t;
	return 0;
out:
	fsobj_file_fini(&t);
	return rc;
}

uint64_t
fsobj_nchunks(uint64_t size, uint32_t chunk_size)
{
	if (chunk_size == 0)
		return 0;
	return size / chunk_size + (size % chunk_size != 0);
}

uint32_t
fsobj_npages(uint64_t size, uint32_t chunk_size)
{
	uint64_t n = fsobj_nchunks(size, chunk_size);
	n = n / FSOBJ_PAGE_CHUNKS + (n % FSOBJ_PAGE_CHUNKS != 0);
	return n > UINT32_MAX ? UINT32_MAX : (uint32_t)n;
}

uint64_t
fsobj_file_max(uint32_t chunk_size)
{
	uint64_t max = (uint64_t)chunk_size * FSOBJ_PAGE_CHUNKS * FSOBJ_PAGES_MAX;
	return max < FSOBJ_FILE_MAX ? max : FSOBJ_FILE_MAX;
}

/*
 * The distinct references among refs[0..n) (none skipped), in order of
 * first appearance, into uniq; idx[i] gets 1 + the position of refs[i] in
 * uniq, or 0 for none.  A small open-addressing table keyed by the name's
 * first bytes (uniform: they are MAC output).
 */
static int
refs_index(const struct fsobj_ref *refs, uint32_t n, struct fsobj_ref *uniq,
           uint32_t *nuniq, uint32_t *idx)
{
	uint32_t cap = 16;
	while (cap < 2 * n)
		cap *= 2;
	uint32_t *tab = mem_calloc(cap, sizeof(*tab));
	if (!tab)
		return -ENOMEM;
	*nuniq = 0;
	for (uint32_t i = 0; i < n; i++) {
		if (fsobj_ref_none(&refs[i])) {
			idx[i] = 0;
			continue;
		}
		uint32_t h = be_get_u32(refs[i].key + 1) & (cap - 1);
		for (;; h = (h + 1) & (cap - 1)) {
			uint32_t u = tab[h];
			if (u == 0) {
				uniq[*nuniq] = refs[i];
				tab[h] = idx[i] = ++*nuniq;
				break;
			}
			if (memcmp(uniq[u - 1].key, refs[i].key,
			           BLOB_KEY_LEN) == 0) {
				idx[i] = u;
				break;
			}
		}
	}
	mem_free(tab);
	return 0;
}

/* Header and per-entry indices for refs[0..n): the header goes to out,
 * the indices to *idx (mem_alloc'd). */
static int
refs_header(const struct fsobj_ref *refs, uint32_t n, struct buf *out,
            uint32_t **idx)
{
	struct fsobj_ref *uniq = mem_alloc((n ? n : 1) * sizeof(*uniq));
	uint32_t nu = 0;
	*idx = mem_alloc((n ? n : 1) * sizeof(**idx));
	int rc = uniq && *idx ? refs_index(refs, n, uniq, &nu, *idx) : -ENOMEM;
	if (rc == 0)
		blob_refs_encode(out, uniq->key, nu);
	mem_free(uniq);
	if (rc != 0) {
		mem_free(*idx);
		*idx = NULL;
		if (!out->err)
			out->err = rc;
	}
	return rc;
}

/* The reference header at the start of p: its references and the rest. */
static int
refs_split(const void *p, size_t len, const uint8_t **refs, uint32_t *n,
           struct rd *rest)
{
	size_t hdr;
	int rc = blob_refs_parse(p, len, refs, n, &hdr);
	if (rc == 0)
		rd_init(rest, (const uint8_t *)p + hdr, len - hdr);
	return rc;
}

/* Reference index i of a header with n references into r. */
static int
ref_at(const uint8_t *refs, uint32_t n, uint32_t i, uint8_t kind,
       struct fsobj_ref *r)
{
	memset(r, 0, sizeof(*r));
	if (i == 0)
		return 0;
	if (i > n || refs[(size_t)(i - 1) * BLOB_REF_LEN] != kind)
		return DYN_EBADMSG;
	memcpy(r->key, refs + (size_t)(i - 1) * BLOB_REF_LEN, BLOB_KEY_LEN);
	return 0;
}

void
fsobj_file_encode(const struct fsobj_file *f, struct buf *out)
{
	uint32_t *idx = NULL;
	if (f->layout == FSOBJ_CHUNKED &&
	    refs_header(f->pages, f->npages, out, &idx) != 0)
		return;
	buf_put_u8(out, FILE_MAGIC);
	buf_put_u8(out, FMT_FILE);
	attr_encode(&f->a, out);
	buf_put_u64(out, f->size);
	buf_put_u8(out, f->layout);
	if (f->layout == FSOBJ_INLINE) {
		buf_put_blob(out, f->data, (size_t)f->size);
		return;
	}
	buf_put_u32(out, f->chunk_size);
	buf_put_u64(out, f->stored);
	buf_put_u32(out, f->npages);
	for (uint32_t i = 0; i < f->npages; i++) {
		buf_put_u32(out, idx[i]);
		buf_put_u64(out, f->pstored[i]);
	}
	mem_free(idx);
}

static bool
mode_is_file(uint32_t mode)
{
	return S_ISREG(mode) || S_ISLNK(mode) || S_ISFIFO(mode) ||
	       S_ISSOCK(mode);
}

/* The magic and format version every object starts with. */
static int
magic_check(struct rd *in, uint8_t want, uint8_t fmt)
{
	uint8_t magic, ver;
	int rc;
	if ((rc = rd_u8(in, &magic)) != 0 || (rc = rd_u8(in, &ver)) != 0)
		return rc;
	if (magic != want)
		return DYN_EBADMSG;
	return ver == fmt ? 0 : DYN_EPROTO;
}

int
fsobj_file_decode(const void *p, size_t len, struct fsobj_file *out)
{
	struct rd in;
	const uint8_t *b, *refs;
	uint32_t nrefs;
	size_t n;
	int rc;

	fsobj_file_fini(out);
	if ((rc = refs_split(p, len, &refs, &nrefs, &in)) != 0 ||
	    (rc = magic_check(&in, FILE_MAGIC, FMT_FILE)) != 0)
		goto out;
	if ((rc = attr_decode(&in, &out->a)) != 0 ||
	    (rc = rd_u64(&in, &out->size)) != 0 ||
	    (rc = rd_u8(&in, &out->layout)) != 0)
		goto out;
	rc = DYN_EBADMSG;
	if (!mode_is_file(out->a.mode))
		goto out;
	if (out->layout == FSOBJ_INLINE) {
		if (nrefs != 0 || (rc = rd_blob(&in, len, &b, &n)) != 0)
			goto out;
		rc = DYN_EBADMSG;
		if (n != out->size)
			goto out;
		if (n > 0 && !(out->data = mem_dup(b, n))) {
			rc = -ENOMEM;
			goto out;
		}
	} else if (out->layout == FSOBJ_CHUNKED) {
		uint32_t np;
		if ((rc = rd_u32(&in, &out->chunk_size)) != 0 ||
		    (rc = rd_u64(&in, &out->stored)) != 0 ||
		    (rc = rd_u32(&in, &np)) != 0)
			goto out;
		rc = DYN_EBADMSG;
		if (out->chunk_size < FSOBJ_CHUNK_MIN ||
		    out->chunk_size > FSOBJ_CHUNK_MAX ||
		    out->size > fsobj_file_max(out->chunk_size) ||
		    np != fsobj_npages(out->size, out->chunk_size) ||
		    (size_t)np * 12 != rd_left(&in) || S_ISLNK(out->a.mode))
			goto out;
		if (np > 0) {
			out->pages = mem_calloc(np, sizeof(*out->pages));
			out->pstored = mem_calloc(np, sizeof(*out->pstored));
			if (!out->pages || !out->pstored) {
				rc = -ENOMEM;
				goto out;
			}
		}
		out->npages = np;
		uint64_t total = 0;
		for (uint32_t i = 0; i < np; i++) {
			uint32_t ri;
			if ((rc = rd_u32(&in, &ri)) != 0 ||
			    (rc = rd_u64(&in, &out->pstored[i])) != 0 ||
			    (rc = ref_at(refs, nrefs, ri, BLOB_REFS,
			                 &out->pages[i])) != 0)
				goto out;
			total += out->pstored[i];
		}
		rc = DYN_EBADMSG;
		if (total != out->stored)
			goto out;
	} else {
		goto out;
	}
	rc = rd_left(&in) == 0 ? 0 : DYN_EBADMSG;
out:
	if (rc != 0)
		fsobj_file_fini(out);
	return rc;
}

/* ---- pages ---- */

void
fsobj_page_init(struct fsobj_page *pg)
{
	memset(pg, 0, sizeof(*pg));
}

void
fsobj_page_fini(struct fsobj_page *pg)
{
	if (!pg)
		return;
	mem_free(pg->ref);
	mem_free(pg->len);
	fsobj_page_init(pg);
}

int
fsobj_page_alloc(struct fsobj_page *pg, uint32_t n)
{
	fsobj_page_fini(pg);
	if (n > FSOBJ_PAGE_CHUNKS)
		return -EINVAL;
	pg->ref = mem_calloc(n ? n : 1, sizeof(*pg->ref));
	pg->len = mem_calloc(n ? n : 1, sizeof(*pg->len));
	if (!pg->ref || !pg->len) {
		fsobj_page_fini(pg);
		return -ENOMEM;
	}
	pg->n = n;
	return 0;
}

void
fsobj_page_encode(const struct fsobj_page *pg, struct buf *out)
{
	uint32_t *idx = NULL;
	if (refs_header(pg->ref, pg->n, out, &idx) != 0)
		return;
	buf_put_u8(out, PAGE_MAGIC);
	buf_put_u8(out, FMT_PAGE);
	buf_put_u32(out, pg->n);
	for (uint32_t i = 0; i < pg->n; i++) {
		buf_put_u32(out, idx[i]);
		buf_put_u32(out, idx[i] ? pg->len[i] : 0);
	}
	mem_free(idx);
}

int
fsobj_page_decode(const void *p, size_t len, struct fsobj_page *out)
{
	struct rd in;
	const uint8_t *refs;
	uint32_t nrefs, n;
	int rc;

	fsobj_page_fini(out);
	if ((rc = refs_split(p, len, &refs, &nrefs, &in)) != 0 ||
	    (rc = magic_check(&in, PAGE_MAGIC, FMT_PAGE)) != 0 ||
	    (rc = rd_u32(&in, &n)) != 0)
		goto out;
	rc = DYN_EBADMSG;
	if (n > FSOBJ_PAGE_CHUNKS || (size_t)n * 8 != rd_left(&in))
		goto out;
	if ((rc = fsobj_page_alloc(out, n)) != 0)
		goto out;
	for (uint32_t i = 0; i < n; i++) {
		uint32_t ri;
		if ((rc = rd_u32(&in, &ri)) != 0 ||
		    (rc = rd_u32(&in, &out->len[i])) != 0 ||
		    (rc = ref_at(refs, nrefs, ri, BLOB_DATA, &out->ref[i])) != 0)
			goto out;
		rc = DYN_EBADMSG;
		if ((ri == 0 && out->len[i] != 0) ||
		    out->len[i] > FSOBJ_CHUNK_MAX)
			goto out;
		rc = 0;
	}
out:
	if (rc != 0)
		fsobj_page_fini(out);
	return rc;
}

/* ---- directories ---- */

void
fsobj_dir_init(struct fsobj_dir *d)
{
	memset(d, 0, sizeof(*d));
}

static void
dents_free(struct fsobj_dent *e, uint32_t n)
{
	for (uint32_t i = 0; e && i < n; i++)
		mem_free(e[i].name);
	mem_free(e);
}

void
fsobj_dir_fini(struct fsobj_dir *d)
{
	if (!d)
		return;
	fsobj_attr_fini(&d->a);
	dents_free(d->ent, d->nent);
	mem_free(d->rm);
	fsobj_dir_init(d);
}

static int
dent_dup(struct fsobj_dent *dst, const struct fsobj_dent *src)
{
	*dst = *src;
	dst->name = mem_dup(src->name, (size_t)src->nlen + 1);
	return dst->name ? 0 : -ENOMEM;
}

int
fsobj_dir_copy(struct fsobj_dir *dst, const struct fsobj_dir *src)
{
	struct fsobj_dir t;
	int rc = -ENOMEM;

	if (dst == src)
		return 0;
	fsobj_dir_init(&t);
	if ((rc = fsobj_attr_copy(&t.a, &src->a)) != 0)
		goto out;
	rc = -ENOMEM;
	if (src->nent) {
		t.ent = mem_calloc(src->nent, sizeof(*t.ent));
		if (!t.ent)
			goto out;
		for (; t.nent < src->nent; t.nent++)
			if (dent_dup(&t.ent[t.nent], &src->ent[t.nent]) != 0)
				goto out;
	}
	if (src->nrm) {
		t.rm = mem_dup(src->rm, src->nrm * sizeof(*t.rm));
		if (!t.rm)
			goto out;
		t.nrm = src->nrm;
	}
	fsobj_dir_fini(dst);
	*dst = t;
	return 0;
out:
	fsobj_dir_fini(&t);
	return rc;
}

static int
name_cmp(const char *a, size_t al, const char *b, size_t bl)
{
	int c = memcmp(a, b, al < bl ? al : bl);
	if (c != 0)
		return c;
	return al < bl ? -1 : al > bl ? 1 : 0;
}

static int
dent_cmp(const struct fsobj_dent *a, const struct fsobj_dent *b)
{
	int c = name_cmp(a->name, a->nlen, b->name, b->nlen);
	if (c != 0)
		return c;
	if (a->actor != b->actor)
		return a->actor < b->actor ? -1 : 1;
	if (a->counter != b->counter)
		return a->counter < b->counter ? -1 : 1;
	return 0;
}

/* First index whose name is >= name. */
static uint32_t
dent_lower(const struct fsobj_dir *d, const char *name, size_t nlen)
{
	uint32_t lo = 0, hi = d->nent;
	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;
		const struct fsobj_dent *e = &d->ent[mid];
		if (name_cmp(e->name, e->nlen, name, nlen) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static bool
name_ok(const char *name, size_t nlen)
{
	if (nlen == 0 || nlen > FSOBJ_NAME_MAX)
		return false;
	if (memchr(name, '/', nlen) || memchr(name, '\0', nlen))
		return false;
	if ((nlen == 1 && name[0] == '.') ||
	    (nlen == 2 && name[0] == '.' && name[1] == '.'))
		return false;
	return true;
}

static bool
type_ok(uint8_t t)
{
	return t == FSOBJ_T_REG || t == FSOBJ_T_DIR || t == FSOBJ_T_LNK;
}

int
fsobj_dir_find(const struct fsobj_dir *d, const char *name, size_t nlen,
               uint8_t *type)
{
	uint32_t i = dent_lower(d, name, nlen);
	bool found = false;
	uint8_t t = 0;

	for (; i < d->nent; i++) {
		const struct fsobj_dent *e = &d->ent[i];
		if (name_cmp(e->name, e->nlen, name, nlen) != 0)
			break;
		if (!found || e->type == FSOBJ_T_DIR)
			t = e->type;
		found = true;
	}
	if (!found)
		return -ENOENT;
	if (type)
		*type = t;
	return 0;
}

/* Range of actor that covers counter c, or -1. */
static int
rm_find(const struct fsobj_range *rm, uint32_t n, uint64_t actor, uint64_t c)
{
	uint32_t lo = 0, hi = n;
	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;
		const struct fsobj_range *r = &rm[mid];
		if (r->actor < actor || (r->actor == actor && r->hi < c))
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo < n && rm[lo].actor == actor && rm[lo].lo <= c &&
	    c <= rm[lo].hi)
		return (int)lo;
	return -1;
}

static bool
rm_covers(const struct fsobj_dir *d, uint64_t actor, uint64_t c)
{
	return rm_find(d->rm, d->nrm, actor, c) >= 0;
}

/*
 * Insert [lo, hi] of actor into the sorted, disjoint, non-adjacent range
 * list *rm (n entries), coalescing.  The list is reallocated; on -ENOMEM it
 * is unchanged.
 */
static int
rm_insert(struct fsobj_range **rmp, uint32_t *np, uint64_t actor, uint64_t lo,
          uint64_t hi)
{
	struct fsobj_range *rm = *rmp;
	uint32_t n = *np;
	uint32_t a = 0;

	/* First range of actor that ends at or after lo - 1. */
	while (a < n && (rm[a].actor < actor ||
	                 (rm[a].actor == actor && rm[a].hi + 1 < lo &&
	                  rm[a].hi != UINT64_MAX)))
		a++;
	uint32_t b = a;
	uint64_t nlo = lo, nhi = hi;
	while (b < n && rm[b].actor == actor &&
	       (hi == UINT64_MAX || rm[b].lo <= hi + 1)) {
		if (rm[b].lo < nlo)
			nlo = rm[b].lo;
		if (rm[b].hi > nhi)
			nhi = rm[b].hi;
		b++;
	}
	/* rm[a..b) merge into one range. */
	if (b == a) {
		struct fsobj_range *x = mem_realloc(rm, (n + 1) * sizeof(*x));
		if (!x)
			return -ENOMEM;
		memmove(&x[a + 1], &x[a], (n - a) * sizeof(*x));
		x[a] = (struct fsobj_range){actor, nlo, nhi};
		*rmp = x;
		*np = n + 1;
		return 0;
	}
	rm[a] = (struct fsobj_range){actor, nlo, nhi};
	memmove(&rm[a + 1], &rm[b], (n - b) * sizeof(*rm));
	*np = n - (b - a - 1);
	return 0;
}

/* Drop the adds the removed ranges cover. */
static void
dir_prune(struct fsobj_dir *d)
{
	uint32_t k = 0;
	for (uint32_t i = 0; i < d->nent; i++) {
		struct fsobj_dent *e = &d->ent[i];
		if (rm_covers(d, e->actor, e->counter)) {
			mem_free(e->name);
			continue;
		}
		d->ent[k++] = *e;
	}
	d->nent = k;
}

static bool
tag_used(const struct fsobj_dir *d, uint64_t actor, uint64_t counter)
{
	if (rm_covers(d, actor, counter))
		return true;
	for (uint32_t i = 0; i < d->nent; i++)
		if (d->ent[i].actor == actor && d->ent[i].counter == counter)
			return true;
	return false;
}

/* Record the tags of every add of name as removed.  On -ENOMEM nothing
 * changed.  Returns the number of adds removed. */
static int
dir_remove_name(struct fsobj_dir *d, const char *name, size_t nlen)
{
	uint32_t i = dent_lower(d, name, nlen);
	uint32_t j = i;
	while (j < d->nent &&
	       name_cmp(d->ent[j].name, d->ent[j].nlen, name, nlen) == 0)
		j++;
	if (j == i)
		return 0;
	/* Build the new range list aside so failure changes nothing. */
	struct fsobj_range *rm = NULL;
	uint32_t nrm = d->nrm;
	if (nrm && !(rm = mem_dup(d->rm, nrm * sizeof(*rm))))
		return -ENOMEM;
	for (uint32_t k = i; k < j; k++) {
		uint64_t c = d->ent[k].counter;
		if (rm_insert(&rm, &nrm, d->ent[k].actor, c, c) != 0) {
			mem_free(rm);
			return -ENOMEM;
		}
	}
	mem_free(d->rm);
	d->rm = rm;
	d->nrm = nrm;
	for (uint32_t k = i; k < j; k++)
		mem_free(d->ent[k].name);
	memmove(&d->ent[i], &d->ent[j], (d->nent - j) * sizeof(*d->ent));
	d->nent -= j - i;
	return (int)(j - i);
}

int
fsobj_dir_add(struct fsobj_dir *d, const char *name, size_t nlen, uint8_t type,
              uint64_t actor, uint64_t counter)
{
	if (!name_ok(name, nlen) || !type_ok(type) || counter == 0 ||
	    tag_used(d, actor, counter))
		return -EINVAL;
	struct fsobj_dent e = {
	    .nlen = (uint16_t)nlen,
	    .type = type,
	    .actor = actor,
	    .counter = counter,
	};
	e.name = mem_alloc(nlen + 1);
	struct fsobj_dent *x =
	    e.name ? mem_realloc(d->ent, (d->nent + 1) * sizeof(*x)) : NULL;
	if (!x) {
		mem_free(e.name);
		return -ENOMEM;
	}
	d->ent = x;
	memcpy(e.name, name, nlen);
	e.name[nlen] = '\0';
	int rc = dir_remove_name(d, name, nlen);
	if (rc < 0) {
		mem_free(e.name);
		return rc;
	}
	uint32_t at = dent_lower(d, name, nlen);
	memmove(&d->ent[at + 1], &d->ent[at], (d->nent - at) * sizeof(e));
	d->ent[at] = e;
	d->nent++;
	return 0;
}

int
fsobj_dir_remove(struct fsobj_dir *d, const char *name, size_t nlen)
{
	int rc = dir_remove_name(d, name, nlen);
	if (rc < 0)
		return rc;
	return rc == 0 ? -ENOENT : 0;
}

/* Deterministic last-writer-wins order on attributes: ctime, mtime, then
 * the encodings.  > 0 when a wins. */
static int
attr_cmp(const struct fsobj_attr *a, const struct fsobj_attr *b)
{
	if (a->ctime.tv_sec != b->ctime.tv_sec)
		return a->ctime.tv_sec > b->ctime.tv_sec ? 1 : -1;
	if (a->ctime.tv_nsec != b->ctime.tv_nsec)
		return a->ctime.tv_nsec > b->ctime.tv_nsec ? 1 : -1;
	if (a->mtime.tv_sec != b->mtime.tv_sec)
		return a->mtime.tv_sec > b->mtime.tv_sec ? 1 : -1;
	if (a->mtime.tv_nsec != b->mtime.tv_nsec)
		return a->mtime.tv_nsec > b->mtime.tv_nsec ? 1 : -1;
	struct buf x, y;
	buf_init(&x);
	buf_init(&y);
	attr_encode(a, &x);
	attr_encode(b, &y);
	int c = 0;
	if (!buf_err(&x) && !buf_err(&y))
		c = name_cmp((const char *)x.data, x.len, (const char *)y.data,
		             y.len);
	buf_fini(&x);
	buf_fini(&y);
	return c;
}

int
fsobj_dir_merge(struct fsobj_dir *dst, const struct fsobj_dir *src)
{
	struct fsobj_dir t;
	int rc = -ENOMEM;
	uint32_t i = 0, j = 0;

	fsobj_dir_init(&t);
	const struct fsobj_attr *wa =
	    attr_cmp(&src->a, &dst->a) > 0 ? &src->a : &dst->a;
	if ((rc = fsobj_attr_copy(&t.a, wa)) != 0)
		goto out;
	rc = -ENOMEM;
	/* Removed ranges: the union. */
	if (dst->nrm && !(t.rm = mem_dup(dst->rm, dst->nrm * sizeof(*t.rm))))
		goto out;
	t.nrm = dst->nrm;
	for (uint32_t k = 0; k < src->nrm; k++)
		if (rm_insert(&t.rm, &t.nrm, src->rm[k].actor, src->rm[k].lo,
		              src->rm[k].hi) != 0)
			goto out;
	/* Adds: the union of two sorted lists, minus the removed. */
	if (dst->nent + src->nent > 0 &&
	    !(t.ent = mem_calloc(dst->nent + src->nent, sizeof(*t.ent))))
		goto out;
	while (i < dst->nent || j < src->nent) {
		const struct fsobj_dent *e;
		if (j == src->nent) {
			e = &dst->ent[i++];
		} else if (i == dst->nent) {
			e = &src->ent[j++];
		} else {
			int c = dent_cmp(&dst->ent[i], &src->ent[j]);
			e = c <= 0 ? &dst->ent[i++] : &src->ent[j++];
			if (c == 0)
				j++;
		}
		if (rm_covers(&t, e->actor, e->counter))
			continue;
		if (dent_dup(&t.ent[t.nent], e) != 0)
			goto out;
		t.nent++;
	}
	fsobj_dir_fini(dst);
	*dst = t;
	return 0;
out:
	fsobj_dir_fini(&t);
	return rc;
}

uint64_t
fsobj_dir_top(const struct fsobj_dir *d, uint64_t actor)
{
	uint64_t top = 0;
	for (uint32_t i = 0; i < d->nent; i++)
		if (d->ent[i].actor == actor && d->ent[i].counter > top)
			top = d->ent[i].counter;
	for (uint32_t i = 0; i < d->nrm; i++)
		if (d->rm[i].actor == actor && d->rm[i].hi > top)
			top = d->rm[i].hi;
	return top;
}

bool
fsobj_dir_next(const struct fsobj_dir *d, uint32_t *i, const char **name,
               size_t *nlen, uint8_t *type)
{
	if (*i >= d->nent)
		return false;
	const struct fsobj_dent *e = &d->ent[*i];
	uint8_t t = e->type;
	uint32_t k = *i + 1;
	while (k < d->nent && name_cmp(d->ent[k].name, d->ent[k].nlen, e->name,
	                               e->nlen) == 0) {
		if (d->ent[k].type == FSOBJ_T_DIR)
			t = FSOBJ_T_DIR;
		k++;
	}
	*i = k;
	*name = e->name;
	*nlen = e->nlen;
	*type = t;
	return true;
}

uint32_t
fsobj_dir_nsubdirs(const struct fsobj_dir *d)
{
	uint32_t i = 0, n = 0;
	const char *name;
	size_t nl;
	uint8_t t;
	while (fsobj_dir_next(d, &i, &name, &nl, &t))
		if (t == FSOBJ_T_DIR)
			n++;
	return n;
}

void
fsobj_dir_encode(const struct fsobj_dir *d, struct buf *out)
{
	buf_put_u8(out, DIR_MAGIC);
	buf_put_u8(out, FMT_DIR);
	attr_encode(&d->a, out);
	buf_put_u32(out, d->nent);
	for (uint32_t i = 0; i < d->nent; i++) {
		const struct fsobj_dent *e = &d->ent[i];
		buf_put_blob(out, e->name, e->nlen);
		buf_put_u8(out, e->type);
		buf_put_u64(out, e->actor);
		buf_put_u64(out, e->counter);
	}
	buf_put_u32(out, d->nrm);
	for (uint32_t i = 0; i < d->nrm; i++) {
		buf_put_u64(out, d->rm[i].actor);
		buf_put_u64(out, d->rm[i].lo);
		buf_put_u64(out, d->rm[i].hi);
	}
}

int
fsobj_dir_decode(const void *p, size_t len, struct fsobj_dir *out)
{
	struct rd in;
	uint32_t n;
	int rc;

	fsobj_dir_fini(out);
	rd_init(&in, p, len);
	if ((rc = magic_check(&in, DIR_MAGIC, FMT_DIR)) != 0 ||
	    (rc = attr_decode(&in, &out->a)) != 0 ||
	    (rc = rd_u32(&in, &n)) != 0)
		goto out;
	rc = DYN_EBADMSG;
	if (!S_ISDIR(out->a.mode) || (size_t)n * DENT_MIN_WIRE > rd_left(&in))
		goto out;
	if (n && !(out->ent = mem_calloc(n, sizeof(*out->ent)))) {
		rc = -ENOMEM;
		goto out;
	}
	for (uint32_t i = 0; i < n; i++) {
		struct fsobj_dent *e = &out->ent[i];
		const uint8_t *np;
		size_t nl;
		if ((rc = rd_blob(&in, FSOBJ_NAME_MAX, &np, &nl)) != 0 ||
		    (rc = rd_u8(&in, &e->type)) != 0 ||
		    (rc = rd_u64(&in, &e->actor)) != 0 ||
		    (rc = rd_u64(&in, &e->counter)) != 0)
			goto out;
		rc = DYN_EBADMSG;
		if (!name_ok((const char *)np, nl) || !type_ok(e->type) ||
		    e->counter == 0)
			goto out;
		if (!(e->name = mem_alloc(nl + 1))) {
			rc = -ENOMEM;
			goto out;
		}
		out->nent = i + 1;
		memcpy(e->name, np, nl);
		e->name[nl] = '\0';
		e->nlen = (uint16_t)nl;
		if (i > 0 && dent_cmp(&out->ent[i - 1], e) >= 0)
			goto out;
	}
	if ((rc = rd_u32(&in, &n)) != 0)
		goto out;
	rc = DYN_EBADMSG;
	if ((size_t)n * RANGE_WIRE > rd_left(&in))
		goto out;
	if (n && !(out->rm = mem_calloc(n, sizeof(*out->rm)))) {
		rc = -ENOMEM;
		goto out;
	}
	for (uint32_t i = 0; i < n; i++) {
		struct fsobj_range *r = &out->rm[i];
		if ((rc = rd_u64(&in, &r->actor)) != 0 ||
		    (rc = rd_u64(&in, &r->lo)) != 0 ||
		    (rc = rd_u64(&in, &r->hi)) != 0)
			goto out;
		rc = DYN_EBADMSG;
		out->nrm = i + 1;
		if (r->lo == 0 || r->lo > r->hi)
			goto out;
		/* Sorted, disjoint and not adjacent (coalesced).  Not
		 * q->hi + 1, which wraps for a range up to UINT64_MAX. */
		if (i > 0) {
			const struct fsobj_range *q = &out->rm[i - 1];
			if (q->actor > r->actor ||
			    (q->actor == r->actor && q->hi >= r->lo - 1))
				goto out;
		}
	}
	rc = rd_left(&in) == 0 ? 0 : DYN_EBADMSG;
	/* A removed add should have been pruned; drop it if not. */
	if (rc == 0)
		dir_prune(out);
out:
	if (rc != 0)
		fsobj_dir_fini(out);
	return rc;
}

/* ---- siblings ---- */

int
fsobj_sibling_parse(const char *name, size_t nlen, size_t *baselen,
                    uint32_t *k)
{
	size_t i = nlen;
	uint32_t v = 0, mul = 1;

	while (i > 0 && name[i - 1] >= '0' && name[i - 1] <= '9')
		i--;
	size_t digits = nlen - i;
	if (digits == 0 || digits > 4 || name[i] == '0')
		return -EINVAL;
	if (i < 3 || name[i - 1] != 'v' || name[i - 2] != '.')
		return -EINVAL;
	for (size_t d = nlen; d > i; d--) {
		v += (uint32_t)(name[d - 1] - '0') * mul;
		mul *= 10;
	}
	if (v < 1 || v > FSOBJ_SIBLINGS_MAX)
		return -EINVAL;
	*baselen = i - 2;
	*k = v;
	return 0;
}

int
fsobj_sibling_name(const char *base, size_t blen, uint32_t k, char *out,
                   size_t cap)
{
	char suf[16];
	int sl = snprintf(suf, sizeof(suf), ".v%" PRIu32, k);
	if (sl < 0 || blen + (size_t)sl > FSOBJ_NAME_MAX ||
	    blen + (size_t)sl + 1 > cap)
		return -ENAMETOOLONG;
	memcpy(out, base, blen);
	memcpy(out + blen, suf, (size_t)sl + 1);
	return 0;
}

int
fsobj_live_nth(const struct vset *s, uint32_t k)
{
	uint32_t seen = 0;
	for (uint32_t i = 0; i < s->n; i++) {
		if (s->v[i].tombstone)
			continue;
		if (++seen == k)
			return (int)i;
	}
	return -1;
}

int
fsobj_live_newest(const struct vset *s)
{
	int best = -1;
	for (uint32_t i = 0; i < s->n; i++) {
		if (s->v[i].tombstone)
			continue;
		if (best < 0 || s->v[i].ts_ms >= s->v[best].ts_ms)
			best = (int)i;
	}
	return best;
}

int
fsobj_clock_text(const struct vclock *c, char *out, size_t cap)
{
	size_t at = 0;
	for (uint32_t i = 0; i < c->n + c->nd; i++) {
		/* An entry covers the actor's events up to its counter, an
		 * exact dot ("@") that one event only. */
		const struct vclock_entry *e = i < c->n ? &c->e[i]
		                                        : &c->d[i - c->n];
		char one[64];
		int n = snprintf(one, sizeof(one), "%s%016" PRIx64 "%c%" PRIu64,
		                 i ? " " : "", e->actor, i < c->n ? ':' : '@',
		                 e->counter);
		if (n < 0)
			return -EINVAL;
		if (at + (size_t)n < cap)
			memcpy(out + at, one, (size_t)n + 1);
		at += (size_t)n;
	}
	if (c->n + c->nd == 0 && cap > 0)
		out[0] = '\0';
	return (int)at;
}
