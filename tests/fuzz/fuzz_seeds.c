/*
 * fuzz_seeds DIR — write a seed corpus for the fuzz targets into
 * DIR/wire, DIR/context, DIR/record, DIR/bloom, DIR/fsobj, DIR/hint,
 * DIR/view, DIR/reclist, DIR/leaflist, DIR/json and DIR/cred: valid inputs made with the
 * project's encoders and the targets' fixed key, so mutation starts from
 * messages that get through.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "blob.h"
#include "bloom.h"
#include "ca.h"
#include "cli.h"
#include "context.h"
#include "cred.h"
#include "fsobj.h"
#include "fuzz.h"
#include "leaflist.h"
#include "mem.h"
#include "merkle.h"
#include "reclist.h"
#include "ring.h"
#include "store.h"
#include "view.h"
#include "wire.h"

static int
write_seed(const char *dir, const char *sub, int n, const struct buf *b)
{
	char path[4096];
	FILE *f;
	int rc = 0;

	if (buf_err(b) != 0)
		return buf_err(b);
	snprintf(path, sizeof(path), "%s/%s", dir, sub);
	if (mkdir(path, 0755) != 0 && errno != EEXIST)
		return -errno;
	snprintf(path, sizeof(path), "%s/%s/seed-%02d", dir, sub, n);
	if ((f = fopen(path, "wb")) == NULL)
		return -errno;
	if (b->len > 0 && fwrite(b->data, 1, b->len, f) != b->len)
		rc = -EIO;
	if (fclose(f) != 0 && rc == 0)
		rc = -errno;
	return rc;
}

static int
wire_seeds(const char *dir, struct buf *b)
{
	static const uint8_t val[] = {0, 1, 2, 3, 0xff};
	int n = 0;
	int rc;

	wire_begin(b, WIRE_GET_REQ, 0, 1);
	wire_put(b, F_KEY, "a/key", 5);
	wire_put_u32(b, F_R, 2);
	wire_put_u32(b, F_FLAGS, WIRE_F_LOCAL);
	if ((rc = wire_seal(b, fuzz_keys())) ||
	    (rc = write_seed(dir, "wire", n++, b)))
		return rc;

	wire_begin(b, WIRE_PUT_REQ, 0, 2);
	wire_put(b, F_KEY, "a/key", 5);
	wire_put(b, F_CONTEXT, val, sizeof(val));
	wire_put(b, F_VALUE, val, sizeof(val));
	wire_put_u32(b, F_W, 2);
	if ((rc = wire_seal(b, fuzz_keys())) ||
	    (rc = write_seed(dir, "wire", n++, b)))
		return rc;

	wire_begin(b, WIRE_ERROR, 0, 3);
	wire_put_u32(b, F_STATUS, (uint32_t)-2);
	wire_put_str(b, F_ERRMSG, "no such key");
	if ((rc = wire_seal(b, fuzz_keys())) ||
	    (rc = write_seed(dir, "wire", n++, b)))
		return rc;

	wire_begin(b, WIRE_STATUS_RESP, 0, 4);
	wire_put_str(b, F_NAME, "node-a");
	wire_put_str(b, F_ADDR, "tcp://127.0.0.1:7000");
	wire_put_u64(b, F_UPTIME, 12345);
	wire_put_u64(b, F_KEYS, 99);
	wire_put_u64(b, F_DBSIZE, 1 << 20);
	wire_put_u64(b, F_ACTOR, 0x0123456789abcdefull);
	wire_put_str(b, F_STATS, "gets=1\nputs=2\n");
	if ((rc = wire_seal(b, fuzz_keys())) ||
	    (rc = write_seed(dir, "wire", n++, b)))
		return rc;

	wire_begin(b, WIRE_STATUS_REQ, 0, 5);
	if ((rc = wire_seal(b, fuzz_keys())) ||
	    (rc = write_seed(dir, "wire", n++, b)))
		return rc;

	/* A range read from a cursor, and a page of it. */
	static const uint8_t cur[] = {0xff, 0x00, 0x03, 'd', 'i', 'r', 'e'};
	wire_begin(b, WIRE_RANGE_REQ, 0, 6);
	wire_put(b, F_PART_KEY, "dir", 3);
	wire_put(b, F_START, cur, sizeof(cur));
	wire_put_u32(b, F_LIMIT, 100);
	wire_put_u32(b, F_LIMIT_BYTES, 1u << 20);
	wire_put_u32(b, F_FLAGS, WIRE_F_LOCAL);
	if ((rc = wire_seal(b, fuzz_keys())) ||
	    (rc = write_seed(dir, "wire", n++, b)))
		return rc;
	wire_begin(b, WIRE_RANGE_RESP, 0, 6);
	wire_put_u32(b, F_STATUS, 0);
	size_t at = wire_begin_field(b, F_RECORDS);
	reclist_encode(NULL, NULL, 0, b);
	wire_end_field(b, at);
	wire_put(b, F_START, cur, sizeof(cur));
	if ((rc = wire_seal(b, fuzz_keys())) ||
	    (rc = write_seed(dir, "wire", n++, b)))
		return rc;
	return 0;
}

static int
context_seeds(const char *dir, struct buf *b)
{
	struct vclock c;
	int rc;

	vclock_init(&c);
	for (int n = 0; n < 4; n++) {
		buf_reset(b);
		context_encode(&fuzz_key, &fuzz_pos, &c, b);
		if ((rc = write_seed(dir, "context", n, b)) != 0)
			return rc;
		vclock_raise(&c, (uint64_t)(n + 1) * 0x1000, (uint64_t)n + 1,
		             1700000000000ull + (uint64_t)n);
	}
	/* With exact dots: a hole after an entry, and one with no entry. */
	vclock_add_dot(&c, &(struct dot){0x1000, 3}, 1700000000010ull);
	vclock_add_dot(&c, &(struct dot){0x9000, 4}, 1700000000011ull);
	buf_reset(b);
	context_encode(&fuzz_key, &fuzz_pos, &c, b);
	return write_seed(dir, "context", 4, b);
}

static int
record_seeds(const char *dir, struct buf *b)
{
	struct vset s;
	struct vclock ctx;
	const struct version *nv;
	int rc = 0;
	int n = 0;

	vset_init(&s);
	buf_reset(b);
	store_record_encode("k", 1, &s, b);
	if ((rc = write_seed(dir, "record", n++, b)) != 0)
		goto out;
	if ((rc = vset_put(&s, NULL, 7, 1000, "hello", 5, false, NULL)) < 0)
		goto out;
	buf_reset(b);
	store_record_encode("a/key", 5, &s, b);
	if ((rc = write_seed(dir, "record", n++, b)) != 0)
		goto out;
	/* A concurrent blind put from another node: two siblings. */
	if ((rc = vset_put(&s, NULL, 9, 1001, "world", 5, false, NULL)) < 0)
		goto out;
	buf_reset(b);
	store_record_encode("a/key", 5, &s, b);
	if ((rc = write_seed(dir, "record", n++, b)) != 0)
		goto out;
	/* A third sibling, blind through 7, then a put under the context
	 * that put returned: its past has the exact dot (7, 2). */
	if ((rc = vset_put(&s, NULL, 7, 1002, "again", 5, false, &nv)) < 0)
		goto out;
	version_context(nv, &ctx);
	if ((rc = vset_put(&s, &ctx, 9, 1003, "on top", 6, false, NULL)) < 0)
		goto out;
	buf_reset(b);
	store_record_encode("a/key", 5, &s, b);
	if ((rc = write_seed(dir, "record", n++, b)) != 0)
		goto out;
	/* A delete that saw all. */
	vset_context(&s, &ctx);
	if ((rc = vset_put(&s, &ctx, 7, 1004, NULL, 0, true, NULL)) < 0)
		goto out;
	buf_reset(b);
	store_record_encode("a/key", 5, &s, b);
	rc = write_seed(dir, "record", n++, b);
out:
	vset_fini(&s);
	return rc < 0 ? rc : 0;
}

static int
bloom_seeds(const char *dir, struct buf *b)
{
	struct bloom *f = NULL;
	uint8_t name[BLOOM_NAME_LEN] = {0};
	int rc = bloom_new(0, 0x0123456789abcdefull, &f);

	for (int i = 0; rc == 0 && i < 100; i++) {
		name[0] = (uint8_t)i;
		bloom_add(f, name);
	}
	if (rc == 0) {
		buf_reset(b);
		bloom_encode(f, b);
		rc = write_seed(dir, "bloom", 0, b);
	}
	bloom_free(f);
	return rc;
}

/* A blob reference of kind to the bytes of str. */
static struct fsobj_ref
seed_ref(uint8_t kind, const char *str)
{
	struct blob_key bk;
	uint8_t name[BLOB_NAME_LEN];
	struct fsobj_ref r;

	blob_key_derive(&fuzz_key, &bk);
	blob_name(&bk, str, strlen(str), name);
	blob_key(kind, name, r.key);
	return r;
}

static void
seed_attr(struct fsobj_attr *a, uint32_t mode)
{
	a->mode = mode;
	a->uid = 1000;
	a->gid = 100;
	a->atime = (struct timespec){1700000000, 1};
	a->mtime = (struct timespec){1700000001, 999999999};
	a->ctime = (struct timespec){1700000002, 500};
}

/* fuzz_fsobj's inputs: a selector byte (0 file, 1 page, 2 dir, 3 sibling
 * name, 4 a child's key), then the encoding. */
static int
fsobj_seeds(const char *dir, struct buf *b)
{
	struct fsobj_file f;
	struct fsobj_page pg;
	struct fsobj_dir d;
	int n = 0;
	int rc;

	fsobj_file_init(&f);
	fsobj_page_init(&pg);
	fsobj_dir_init(&d);
	/* A small inline file with xattrs. */
	seed_attr(&f.a, S_IFREG | 0644);
	if ((rc = fsobj_xattr_set(&f.a, "user.a", "1", 1, 0)) != 0 ||
	    (rc = fsobj_xattr_set(&f.a, "user.b", NULL, 0, 0)) != 0)
		goto out;
	f.layout = FSOBJ_INLINE;
	f.size = 5;
	if (!(f.data = mem_dup("hello", 5))) {
		rc = -ENOMEM;
		goto out;
	}
	buf_reset(b);
	buf_put_u8(b, 0);
	fsobj_file_encode(&f, b);
	if ((rc = write_seed(dir, "fsobj", n++, b)) != 0)
		goto out;
	/* A symlink. */
	fsobj_file_fini(&f);
	seed_attr(&f.a, S_IFLNK | 0777);
	f.layout = FSOBJ_INLINE;
	f.size = 7;
	if (!(f.data = mem_dup("../a/b/", 7))) {
		rc = -ENOMEM;
		goto out;
	}
	buf_reset(b);
	buf_put_u8(b, 0);
	fsobj_file_encode(&f, b);
	if ((rc = write_seed(dir, "fsobj", n++, b)) != 0)
		goto out;
	/* A chunked file of four pages: one shared by two, one all holes. */
	fsobj_file_fini(&f);
	seed_attr(&f.a, S_IFREG | 0600);
	f.layout = FSOBJ_CHUNKED;
	f.chunk_size = FSOBJ_CHUNK_MIN;
	f.size = 3ull * FSOBJ_PAGE_CHUNKS * FSOBJ_CHUNK_MIN + 100;
	f.npages = fsobj_npages(f.size, f.chunk_size);
	f.pages = mem_calloc(f.npages, sizeof(*f.pages));
	f.pstored = mem_calloc(f.npages, sizeof(*f.pstored));
	if (!f.pages || !f.pstored) {
		rc = -ENOMEM;
		goto out;
	}
	f.pages[0] = f.pages[2] = seed_ref(BLOB_REFS, "page 0");
	f.pages[3] = seed_ref(BLOB_REFS, "page 3");
	f.pstored[0] = f.pstored[2] = 8192;
	f.pstored[3] = 100;
	f.stored = 8192 + 8192 + 100;
	buf_reset(b);
	buf_put_u8(b, 0);
	fsobj_file_encode(&f, b);
	if ((rc = write_seed(dir, "fsobj", n++, b)) != 0)
		goto out;
	/* A page: two chunks of one blob, a hole, a short last chunk. */
	if ((rc = fsobj_page_alloc(&pg, 4)) != 0)
		goto out;
	pg.ref[0] = pg.ref[1] = seed_ref(BLOB_DATA, "chunk");
	pg.ref[3] = seed_ref(BLOB_DATA, "last");
	pg.len[0] = pg.len[1] = FSOBJ_CHUNK_MIN;
	pg.len[3] = 100;
	buf_reset(b);
	buf_put_u8(b, 1);
	fsobj_page_encode(&pg, b);
	if ((rc = write_seed(dir, "fsobj", n++, b)) != 0)
		goto out;
	/* A directory with an xattr. */
	seed_attr(&d.a, S_IFDIR | 0755);
	if ((rc = fsobj_xattr_set(&d.a, "user.dir", "x", 1, 0)) != 0)
		goto out;
	buf_reset(b);
	buf_put_u8(b, 2);
	fsobj_dir_encode(&d, b);
	if ((rc = write_seed(dir, "fsobj", n++, b)) != 0)
		goto out;
	/* Keys of a directory's children: a file, a directory. */
	static const char *const child[] = {"/d/file", "/x.v1"};
	for (size_t i = 0; i < 2; i++) {
		buf_reset(b);
		buf_put_u8(b, 4);
		if (i == 0)
			fsobj_key_file(b, child[i]);
		else
			fsobj_key_dir(b, child[i]);
		if ((rc = write_seed(dir, "fsobj", n++, b)) != 0)
			goto out;
	}
	/* Sibling names. */
	static const char *const base[] = {"file", "a.b.v2", "x"};
	static const uint32_t k[] = {1, 12, FSOBJ_SIBLINGS_MAX};
	for (size_t i = 0; i < sizeof(base) / sizeof(base[0]); i++) {
		char name[FSOBJ_NAME_MAX + 1];
		if ((rc = fsobj_sibling_name(base[i], strlen(base[i]), k[i],
		                             name, sizeof(name))) != 0)
			goto out;
		buf_reset(b);
		buf_put_u8(b, 3);
		buf_put(b, name, strlen(name));
		if ((rc = write_seed(dir, "fsobj", n++, b)) != 0)
			goto out;
	}
out:
	fsobj_file_fini(&f);
	fsobj_page_fini(&pg);
	fsobj_dir_fini(&d);
	return rc < 0 ? rc : 0;
}

/* fuzz_hint's inputs: u8 key limit - STORE_DKEY_MIN, u16 data key length,
 * the data key, the record. */
static int
hint_seeds(const char *dir, struct buf *b)
{
	uint8_t dk[STORE_DKEY_MAX];
	char longkey[500];
	struct vset s;
	size_t dklen;
	int n = 0;
	int rc;

	memset(longkey, 'k', sizeof(longkey));
	vset_init(&s);
	if ((rc = vset_put(&s, NULL, 7, 1000, "hello", 5, false, NULL)) < 0)
		goto out;
	for (int i = 0; i < 4; i++) {
		size_t maxkey = i % 2 ? STORE_DKEY_MAX : STORE_DKEY_MIN;
		const char *key = i < 2 ? "a/key" : longkey;
		size_t klen = i < 2 ? 5 : sizeof(longkey);
		if ((rc = store_hint_key(maxkey, "node-b", key, klen, dk,
		                         &dklen)) != 0)
			goto out;
		buf_reset(b);
		buf_put_u8(b, (uint8_t)(maxkey - STORE_DKEY_MIN));
		buf_put_u16(b, (uint16_t)dklen);
		buf_put(b, dk, dklen);
		store_record_encode(key, klen, &s, b);
		if ((rc = write_seed(dir, "hint", n++, b)) != 0)
			goto out;
	}
out:
	vset_fini(&s);
	return rc < 0 ? rc : 0;
}

static int
view_seeds(const char *dir, struct buf *b)
{
	struct member m[3] = {
	    {"node-a", "tcp://127.0.0.1:7000", 1700000000000ull, 42,
	     MEMBER_UP, 3, 3},
	    {"node-b", "tcp://127.0.0.1:7001", 1700000000001ull, 7,
	     MEMBER_LEAVING, 3, 2},
	    {"node-c", "tcp://127.0.0.1:7002", 1, 1, MEMBER_LEFT, 0, 0},
	};
	struct view v = {0};
	struct ring *r = NULL;
	int rc;

	/* A node that has not joined: no settings, no ring. */
	v.n = 1;
	v.members = m;
	buf_reset(b);
	view_encode(&v, b);
	if ((rc = write_seed(dir, "view", 0, b)) != 0)
		return rc;
	if ((rc = ring_new(8, "node-a", "tcp://127.0.0.1:7000", &r)) != 0 ||
	    (rc = ring_member_set(r, "node-b", "tcp://127.0.0.1:7001")) != 0)
		goto out;
	v.has_settings = true;
	v.settings = (struct cluster_settings){3, 2, 2};
	v.n = 3;
	v.ring = r;
	buf_reset(b);
	view_encode(&v, b);
	rc = write_seed(dir, "view", 1, b);
out:
	ring_free(r);
	return rc;
}

static int
reclist_seeds(const char *dir, struct buf *b)
{
	struct buf keys[3];
	struct vset sets[3];
	static const char *const k[3] = {"a", "b/c", ""};
	int rc = 0;

	for (int i = 0; i < 3; i++) {
		buf_init(&keys[i]);
		buf_put(&keys[i], k[i], strlen(k[i]));
		vset_init(&sets[i]);
	}
	if ((rc = vset_put(&sets[0], NULL, 7, 1000, "v", 1, false, NULL)) < 0 ||
	    (rc = vset_put(&sets[1], NULL, 7, 1001, "w", 1, false, NULL)) < 0 ||
	    (rc = vset_put(&sets[1], NULL, 9, 1002, "x", 1, false, NULL)) < 0 ||
	    (rc = vset_put(&sets[2], NULL, 9, 1003, NULL, 0, true, NULL)) < 0)
		goto out;
	for (uint32_t n = 0; n <= 3; n++) {
		buf_reset(b);
		reclist_encode(keys, sets, n, b);
		if ((rc = write_seed(dir, "reclist", (int)n, b)) != 0)
			goto out;
	}
out:
	for (int i = 0; i < 3; i++) {
		buf_fini(&keys[i]);
		vset_fini(&sets[i]);
	}
	return rc < 0 ? rc : 0;
}

/* fuzz_leaflist's inputs: u8 which (0 hashes, 1 indices), u32 leaves,
 * the list; from a small tree with one key. */
static int
leaflist_seeds(const char *dir, struct buf *b)
{
	static const struct merkle_shape shape = {1, 4};
	static const uint32_t diff[] = {0, 5, 15};
	struct merkle *t = NULL;
	uint8_t d[MERKLE_HASH_LEN];
	struct keypos pos;
	int rc;

	if ((rc = merkle_new(1, 0, &shape, &t)) != 0 ||
	    (rc = keypos_of("k", 1, &pos)) != 0 ||
	    (rc = merkle_digest("v", 1, d)) != 0 ||
	    (rc = merkle_add(t, &pos, "k", 1, d)) != 0 ||
	    (rc = merkle_finish(t)) != 0)
		goto out;
	buf_reset(b);
	buf_put_u8(b, 0);
	buf_put_u32(b, merkle_leaves(t));
	leaflist_hashes_encode(t, b);
	if ((rc = write_seed(dir, "leaflist", 0, b)) != 0)
		goto out;
	buf_reset(b);
	buf_put_u8(b, 1);
	buf_put_u32(b, merkle_leaves(t));
	leaflist_encode(diff, 3, b);
	rc = write_seed(dir, "leaflist", 1, b);
out:
	merkle_free(t);
	return rc;
}

/* A node's status, shaped as node.c writes it (the parts dynamoctl
 * reads), with a name that needs escapes. */
static int
json_seeds(const char *dir, struct buf *b)
{
	static const char status[] =
	    "{\"ring_epoch\": 9, \"partitions\": 64, \"transfer_pending\": "
	    "true, \"members\": [{\"name\": \"n\\\"0\", \"addr\": "
	    "\"tcp://127.0.0.1:7101\", \"state\": \"up\", \"reachable\": "
	    "false, \"partitions\": 21}], \"transfer\": {\"done\": 3, "
	    "\"total\": 16, \"bytes\": 1048576, \"active\": true}, "
	    "\"anti_entropy\": {\"rounds\": 12, \"last_diff_age_ms\": null},"
	    " \"hints\": {\"n\\u00e9\": 40}, \"x\": [-1.5e3, false]}";

	buf_reset(b);
	buf_put(b, status, sizeof(status) - 1);
	return write_seed(dir, "json", 0, b);
}

/* fuzz_cred's inputs: u8 0, u8 role, a role keys block (each role, and
 * two generations for a node); u8 1 and a credential issued by a CA made
 * in a temporary directory. */
static int
cred_seeds(const char *dir, struct buf *b)
{
	struct auth_keys k, k2;
	char tmp[] = "/tmp/fuzz_seeds.XXXXXX", ca[64], pem[96], err[512];
	int rc, n = 0;

	for (int r = 0; r < AUTH_NROLES; r++) {
		if ((rc = auth_keys_from_master(&fuzz_key, (enum auth_role)r,
		         &k)) != 0)
			return rc;
		if (r == AUTH_NODE) {
			struct auth_key m2 = fuzz_key;
			m2.k[0] ^= 1;
			if ((rc = auth_keys_from_master(&m2, AUTH_NODE, &k2)) != 0)
				return rc;
		}
		for (int two = 0; two < (r == AUTH_NODE ? 2 : 1); two++) {
			if (two)
				k.gen[1] = k2.gen[0];
			buf_reset(b);
			buf_put_u8(b, 0);
			buf_put_u8(b, (uint8_t)r);
			cred_keys_encode(&k, (enum auth_role)r, b);
			if ((rc = write_seed(dir, "cred", n++, b)) != 0)
				return rc;
		}
	}
	if (!mkdtemp(tmp))
		return -errno;
	snprintf(ca, sizeof(ca), "%s/ca", tmp);
	snprintf(pem, sizeof(pem), "%s/n1.pem", ca);
	const char *hosts[] = {"127.0.0.1"};
	struct ca_issue_opts o = {.name = "n1", .role = AUTH_NODE,
	    .hosts = hosts, .nhosts = 1};
	uint8_t *text = NULL;
	size_t len = 0;
	if ((rc = ca_init(ca, err, sizeof(err))) == 0 &&
	    (rc = ca_issue(ca, &o, pem, err, sizeof(err))) == 0 &&
	    (rc = cli_read_file(pem, 1 << 20, &text, &len)) == 0) {
		buf_reset(b);
		buf_put_u8(b, 1);
		buf_put(b, text, len);
		rc = write_seed(dir, "cred", n++, b);
	} else {
		fprintf(stderr, "fuzz_seeds: cred: %s\n", err);
	}
	mem_free(text);
	static const char *const names[] = {"n1.pem", "ca.pem", "ca.key",
	    "cluster.key"};
	for (size_t i = 0; i < 4; i++) {
		snprintf(pem, sizeof(pem), "%s/%s", ca, names[i]);
		unlink(pem);
	}
	rmdir(ca);
	rmdir(tmp);
	return rc;
}

int
main(int argc, char **argv)
{
	struct buf b;
	int rc;

	if (argc != 2) {
		fprintf(stderr, "usage: %s DIR\n", argv[0]);
		return 2;
	}
	if (mkdir(argv[1], 0755) != 0 && errno != EEXIST) {
		perror(argv[1]);
		return 1;
	}
	buf_init(&b);
	if ((rc = wire_seeds(argv[1], &b)) == 0 &&
	    (rc = context_seeds(argv[1], &b)) == 0 &&
	    (rc = record_seeds(argv[1], &b)) == 0 &&
	    (rc = bloom_seeds(argv[1], &b)) == 0 &&
	    (rc = fsobj_seeds(argv[1], &b)) == 0 &&
	    (rc = hint_seeds(argv[1], &b)) == 0 &&
	    (rc = view_seeds(argv[1], &b)) == 0 &&
	    (rc = reclist_seeds(argv[1], &b)) == 0 &&
	    (rc = leaflist_seeds(argv[1], &b)) == 0 &&
	    (rc = json_seeds(argv[1], &b)) == 0)
		rc = cred_seeds(argv[1], &b);
	buf_fini(&b);
	if (rc != 0) {
		fprintf(stderr, "fuzz_seeds: %s\n", strerror(-rc));
		return 1;
	}
	return 0;
}
