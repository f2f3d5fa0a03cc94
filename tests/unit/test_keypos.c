/* Unit tests for common/keypos: MD5 positions, partitions, hex. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "err.h"
#include "keypos.h"

/* RFC 1321 appendix A.5 plus two more. */
static const struct {
	const char *in;
	const char *md5;
	uint32_t part64; /* top 6 bits */
} vectors[] = {
    {"", "d41d8cd98f00b204e9800998ecf8427e", 53},
    {"a", "0cc175b9c0f1b6a831c399e269772661", 3},
    {"abc", "900150983cd24fb0d6963f7d28e17f72", 36},
    {"message digest", "f96b697d7cb7938d525a2f31aaf161d0", 62},
    {"abcdefghijklmnopqrstuvwxyz", "c3fcd3d76192e4007dfb496cca67e13b", 48},
    {"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789",
     "d174ab98d277d9f5a5611c2c9f419d9f", 52},
    {"1234567890123456789012345678901234567890"
     "1234567890123456789012345678901234567890",
     "57edf4a22be3c955ac49da2e2107b67a", 21},
    {"hello", "5d41402abc4b2a76b9719d911017c592", 23},
};

static void
test_md5_vectors(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(vectors) / sizeof(vectors[0]); i++) {
		struct keypos p;
		char hex[2 * KEYPOS_LEN + 1];

		assert_int_equal(
		    keypos_of(vectors[i].in, strlen(vectors[i].in), &p), 0);
		keypos_hex(&p, hex);
		assert_string_equal(hex, vectors[i].md5);
		assert_int_equal(keypos_partition(&p, 64), vectors[i].part64);
	}
}

static void
test_empty_key_null(void **state)
{
	struct keypos a, b;

	(void)state;
	assert_int_equal(keypos_of("", 0, &a), 0);
	assert_int_equal(keypos_of(NULL, 0, &b), 0);
	assert_memory_equal(a.b, b.b, KEYPOS_LEN);
}

static void
test_binary_key(void **state)
{
	/* Keys are bytes, not strings: a NUL inside counts. */
	static const uint8_t k1[] = {'a', 0, 'b'};
	static const uint8_t k2[] = {'a', 0, 'c'};
	struct keypos a, b;

	(void)state;
	assert_int_equal(keypos_of(k1, sizeof(k1), &a), 0);
	assert_int_equal(keypos_of(k2, sizeof(k2), &b), 0);
	assert_memory_not_equal(a.b, b.b, KEYPOS_LEN);
}

static void
set_pos(struct keypos *p, uint8_t first, uint8_t fill)
{
	memset(p->b, fill, KEYPOS_LEN);
	p->b[0] = first;
}

static void
test_partition_q64(void **state)
{
	struct keypos p;

	(void)state;
	set_pos(&p, 0x00, 0x00);
	assert_int_equal(keypos_partition(&p, 64), 0);
	set_pos(&p, 0x03, 0xff); /* last position of partition 0 */
	assert_int_equal(keypos_partition(&p, 64), 0);
	set_pos(&p, 0x04, 0x00); /* first of partition 1 */
	assert_int_equal(keypos_partition(&p, 64), 1);
	set_pos(&p, 0x80, 0x00);
	assert_int_equal(keypos_partition(&p, 64), 32);
	set_pos(&p, 0x7f, 0xff);
	assert_int_equal(keypos_partition(&p, 64), 31);
	set_pos(&p, 0xfb, 0xff);
	assert_int_equal(keypos_partition(&p, 64), 62);
	set_pos(&p, 0xfc, 0x00);
	assert_int_equal(keypos_partition(&p, 64), 63);
	set_pos(&p, 0xff, 0xff);
	assert_int_equal(keypos_partition(&p, 64), 63);
}

static void
test_partition_other_q(void **state)
{
	struct keypos p;

	(void)state;
	set_pos(&p, 0xff, 0xff);
	assert_int_equal(keypos_partition(&p, 0), 0);
	assert_int_equal(keypos_partition(&p, 1), 0);
	assert_int_equal(keypos_partition(&p, 2), 1);
	assert_int_equal(keypos_partition(&p, 1024), 1023);
	assert_int_equal(keypos_partition(&p, 1u << 31), (1u << 31) - 1);
	set_pos(&p, 0x80, 0x00);
	assert_int_equal(keypos_partition(&p, 2), 1);
	assert_int_equal(keypos_partition(&p, 1u << 31), 1u << 30);
	p.b[1] = 0x40; /* 0x8040...: 10000000 01 */
	assert_int_equal(keypos_partition(&p, 1024), 513);
}

static void
test_partitions_even(void **state)
{
	/* MD5 spreads keys: with q = 64 and 64k keys every partition gets
	 * roughly 1024; far off would mean the wrong bits are used. */
	uint32_t count[64] = {0};

	(void)state;
	for (uint32_t i = 0; i < 65536; i++) {
		struct keypos p;
		uint8_t k[4];

		memcpy(k, &i, sizeof(k));
		k[0] &= 0x7f; /* an ordinary key, not a placement key */
		assert_int_equal(keypos_of(k, sizeof(k), &p), 0);
		count[keypos_partition(&p, 64)]++;
	}
	for (int i = 0; i < 64; i++) {
		assert_true(count[i] > 850);
		assert_true(count[i] < 1200);
	}
}

static void
test_order_is_memcmp(void **state)
{
	/* A partition is a contiguous range in memcmp order. */
	struct keypos a, b;

	(void)state;
	set_pos(&a, 0x10, 0xff);
	set_pos(&b, 0x11, 0x00);
	assert_true(memcmp(a.b, b.b, KEYPOS_LEN) < 0);
	assert_true(keypos_partition(&a, 256) < keypos_partition(&b, 256));
}

/* A placement key: 0xFF, u16 length, the part, the rest; placed by the
 * header alone. */
static size_t
placed(const char *part, const char *rest, uint8_t *out)
{
	size_t h = keypos_placed_make(part, strlen(part), out);
	memcpy(out + h, rest, strlen(rest));
	return h + strlen(rest);
}

static void
test_placed_same_part(void **state)
{
	uint8_t k1[64], k2[64], k3[64];
	struct keypos a, b, c, hdr;

	(void)state;
	size_t l1 = placed("dir", "alpha", k1);
	size_t l2 = placed("dir", "beta-longer", k2);
	size_t l3 = placed("dis", "alpha", k3);
	assert_int_equal(keypos_placed_hdr(k1, l1), 6);
	assert_int_equal(keypos_of(k1, l1, &a), 0);
	assert_int_equal(keypos_of(k2, l2, &b), 0);
	assert_int_equal(keypos_of(k3, l3, &c), 0);
	assert_memory_equal(a.b, b.b, KEYPOS_LEN);
	assert_memory_not_equal(a.b, c.b, KEYPOS_LEN);
	/* MD5 of the header: the header as a key on its own agrees. */
	assert_int_equal(keypos_of(k1, 6, &hdr), 0);
	assert_memory_equal(a.b, hdr.b, KEYPOS_LEN);
	/* An empty part is a part too. */
	uint8_t e[8];
	size_t el = placed("", "x", e);
	assert_int_equal(el, 4);
	assert_int_equal(keypos_of(e, el, &a), 0);
	assert_int_equal(keypos_of(e, 3, &b), 0);
	assert_memory_equal(a.b, b.b, KEYPOS_LEN);
}

static void
test_placed_malformed(void **state)
{
	static const uint8_t shorter[] = {0xff, 0x00, 0x05, 'a', 'b'};
	static const uint8_t one[] = {0xff};
	static const uint8_t two[] = {0xff, 0x00};
	static const uint8_t big[] = {0xff, 0xff, 0xff, 'a'};
	struct keypos p;

	(void)state;
	assert_int_equal(keypos_of(shorter, sizeof(shorter), &p), -EINVAL);
	assert_int_equal(keypos_of(one, sizeof(one), &p), -EINVAL);
	assert_int_equal(keypos_of(two, sizeof(two), &p), -EINVAL);
	assert_int_equal(keypos_of(big, sizeof(big), &p), -EINVAL);
	assert_int_equal(keypos_placed_hdr(shorter, sizeof(shorter)), 0);
	/* A key beginning with another byte is ordinary. */
	static const uint8_t fe[] = {0xfe, 0x00, 0x05};
	assert_int_equal(keypos_of(fe, sizeof(fe), &p), 0);
	assert_int_equal(keypos_placed_hdr(fe, sizeof(fe)), 0);
}

static void
test_placed_limits(void **state)
{
	static uint8_t k[KEYPOS_PLACED_MAX + 2];
	struct keypos p;

	(void)state;
	memset(k, 'x', sizeof(k));
	uint8_t ten[10];
	memset(ten, 't', sizeof(ten));
	assert_int_equal(keypos_placed_make(ten, sizeof(ten), k), 13);
	assert_int_equal(keypos_of(k, KEYPOS_PLACED_MAX, &p), 0);
	assert_int_equal(keypos_of(k, KEYPOS_PLACED_MAX + 1, &p), DYN_ETOOBIG);
	/* The longest part leaves no room for more. */
	uint8_t part[KEYPOS_PLACED_MAX];
	memset(part, 'p', sizeof(part));
	assert_int_equal(keypos_placed_make(part,
	    KEYPOS_PLACED_MAX - KEYPOS_PLACED_HDR, k), KEYPOS_PLACED_MAX);
	assert_int_equal(keypos_placed_make(part,
	    KEYPOS_PLACED_MAX - KEYPOS_PLACED_HDR + 1, k), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_md5_vectors),
	    cmocka_unit_test(test_empty_key_null),
	    cmocka_unit_test(test_binary_key),
	    cmocka_unit_test(test_partition_q64),
	    cmocka_unit_test(test_partition_other_q),
	    cmocka_unit_test(test_partitions_even),
	    cmocka_unit_test(test_order_is_memcmp),
	    cmocka_unit_test(test_placed_same_part),
	    cmocka_unit_test(test_placed_malformed),
	    cmocka_unit_test(test_placed_limits),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
