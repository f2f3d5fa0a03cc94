/*
 * fuzz_seeds DIR — write a seed corpus for the fuzz targets into
 * DIR/wire, DIR/context, DIR/record and DIR/bloom: valid inputs made with
 * the targets' fixed key, so mutation starts from messages that get
 * through.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "bloom.h"
#include "context.h"
#include "fuzz.h"
#include "store.h"
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
	if ((rc = wire_seal(b, &fuzz_key)) ||
	    (rc = write_seed(dir, "wire", n++, b)))
		return rc;

	wire_begin(b, WIRE_PUT_REQ, 0, 2);
	wire_put(b, F_KEY, "a/key", 5);
	wire_put(b, F_CONTEXT, val, sizeof(val));
	wire_put(b, F_VALUE, val, sizeof(val));
	wire_put_u32(b, F_W, 2);
	if ((rc = wire_seal(b, &fuzz_key)) ||
	    (rc = write_seed(dir, "wire", n++, b)))
		return rc;

	wire_begin(b, WIRE_ERROR, 0, 3);
	wire_put_u32(b, F_STATUS, (uint32_t)-2);
	wire_put_str(b, F_ERRMSG, "no such key");
	if ((rc = wire_seal(b, &fuzz_key)) ||
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
	if ((rc = wire_seal(b, &fuzz_key)) ||
	    (rc = write_seed(dir, "wire", n++, b)))
		return rc;

	wire_begin(b, WIRE_STATUS_REQ, 0, 5);
	if ((rc = wire_seal(b, &fuzz_key)) ||
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
	    (rc = record_seeds(argv[1], &b)) == 0)
		rc = bloom_seeds(argv[1], &b);
	buf_fini(&b);
	if (rc != 0) {
		fprintf(stderr, "fuzz_seeds: %s\n", strerror(-rc));
		return 1;
	}
	return 0;
}
