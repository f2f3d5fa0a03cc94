/*
 * fsobj — encodings and merge rules of the filesystem's objects.
 *
 *   attrs: u32 mode, u32 uid, u32 gid, u64 ino, [u64 rdev: character and
 *          block devices only], 3 x (u64 sec, u32 nsec)
 *          for atime, mtime, ctime, u32 nxattr, nxattr x (blob name,
 *          blob value)
 *   file:  [reference header: the pages] u8 'F', u8 3, attrs, u64 size,
 *          u8 layout,
 *          INLINE:  blob data (size bytes)
 *          CHUNKED: u32 chunk_size, u64 stored, u32 npages,
 *                   npages x (u32 header index or 0, u64 stored)
 *   page:  [reference header: the chunks] u8 'P', u8 2, u32 n,
 *          n x (u32 header index or 0, u32 length)
 *   dir:   u8 'D', u8 3, attrs
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

#include <openssl/evp.h>
#include <openssl/rand.h>

#include "err.h"
#include "keypos.h"
#include "mem.h"

#define FILE_MAGIC 'F'
#define PAGE_MAGIC 'P'
#define DIR_MAGIC  'D'
#define FMT_FILE   3 /* file objects: content in blobs, an inode number */
#define FMT_PAGE   2 /* chunk-list pages */
#define FMT_DIR    3 /* directory objects: attributes only */

/* Smallest wire size of one xattr: lets decoders refuse a huge count
 * before allocating for it. */
#define XATTR_MIN_WIRE (4 + 1 + 4)

/* ---- keys ---- */

void
fsobj_key_part(struct buf *out, const char *dir, size_t dlen)
{
	uint8_t part[FSOBJ_PART_LEN];
	unsigned int n = 0;
	part[0] = 'E';
	if (EVP_Digest(dir, dlen, part + 1, &n, EVP_sha256(), NULL) != 1 ||
	    n != FSOBJ_PART_LEN - 1) {
		if (!out->err)
			out->err = -EIO;
		return;
	}
	uint8_t *h = buf_extend(out, KEYPOS_PLACED_HDR + FSOBJ_PART_LEN);
	if (h)
		keypos_placed_make(part, sizeof(part), h);
}

/* The object at path: in its parent's part, name '\0' kind.  The root's
 * parent is "" and its name empty. */
static void
key_obj(struct buf *out, const char *path, uint8_t kind)
{
	const char *s = strrchr(path, '/');
	size_t len = strlen(path), plen = 0, at = len;
	if (s && s[1] != '\0') {
		plen = s == path ? 1 : (size_t)(s - path);
		at = (size_t)(s - path) + 1;
	}
	fsobj_key_part(out, path, plen);
	buf_put(out, path + at, len - at);
	buf_put_u8(out, 0);
	buf_put_u8(out, kind);
}

void
fsobj_key_file(struct buf *out, const char *path)
{
	key_obj(out, path, FSOBJ_KEY_FILE);
}

void
fsobj_key_dir(struct buf *out, const char *path)
{
	key_obj(out, path, FSOBJ_KEY_DIR);
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

int
fsobj_key_entry(const uint8_t *key, size_t klen, const char **name,
                size_t *nlen, uint8_t *kind)
{
	size_t h = KEYPOS_PLACED_HDR + FSOBJ_PART_LEN;
	if (klen < h + 3 || keypos_placed_hdr(key, klen) != h ||
	    key[KEYPOS_PLACED_HDR] != 'E' || key[klen - 2] != 0)
		return -EINVAL;
	uint8_t k = key[klen - 1];
	const char *n = (const char *)key + h;
	size_t nl = klen - h - 2;
	if ((k != FSOBJ_KEY_FILE && k != FSOBJ_KEY_DIR) || !name_ok(n, nl))
		return -EINVAL;
	*name = n;
	*nlen = nl;
	*kind = k;
	return 0;
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
	if (S_ISCHR(a->mode) || S_ISBLK(a->mode))
		buf_put_u64(out, a->rdev);
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
	    ((S_ISCHR(a->mode) || S_ISBLK(a->mode)) &&
	     (rc = rd_u64(in, &a->rdev)) != 0) ||
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
	       S_ISSOCK(mode) || S_ISCHR(mode) || S_ISBLK(mode);
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

void
fsobj_dir_fini(struct fsobj_dir *d)
{
	if (!d)
		return;
	fsobj_attr_fini(&d->a);
	fsobj_dir_init(d);
}

int
fsobj_dir_copy(struct fsobj_dir *dst, const struct fsobj_dir *src)
{
	if (dst == src)
		return 0;
	return fsobj_attr_copy(&dst->a, &src->a);
}

int
fsobj_bytes_cmp(const void *a, size_t al, const void *b, size_t bl)
{
	int c = memcmp(a, b, al < bl ? al : bl);
	if (c != 0)
		return c;
	return al < bl ? -1 : al > bl ? 1 : 0;
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
		c = fsobj_bytes_cmp(x.data, x.len, y.data, y.len);
	buf_fini(&x);
	buf_fini(&y);
	return c;
}

int
fsobj_dir_cmp(const struct fsobj_dir *a, const struct fsobj_dir *b)
{
	return attr_cmp(&a->a, &b->a);
}

void
fsobj_dir_encode(const struct fsobj_dir *d, struct buf *out)
{
	buf_put_u8(out, DIR_MAGIC);
	buf_put_u8(out, FMT_DIR);
	attr_encode(&d->a, out);
}

int
fsobj_dir_decode(const void *p, size_t len, struct fsobj_dir *out)
{
	struct rd in;
	int rc;

	fsobj_dir_fini(out);
	rd_init(&in, p, len);
	if ((rc = magic_check(&in, DIR_MAGIC, FMT_DIR)) != 0 ||
	    (rc = attr_decode(&in, &out->a)) != 0)
		goto out;
	rc = S_ISDIR(out->a.mode) && rd_left(&in) == 0 ? 0 : DYN_EBADMSG;
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
