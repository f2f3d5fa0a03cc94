/* Unit tests for common/buf: encoder round trips, reader bounds, caps and
 * sticky errors. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "buf.h"
#include "err.h"
#include "mem.h"
#include "testmem.h"

static void
test_round_trip(void **state)
{
	static const uint8_t blob[] = {1, 2, 3, 4, 5};
	struct buf b;
	struct rd r;
	uint8_t u8;
	uint16_t u16;
	uint32_t u32;
	uint64_t u64;
	const uint8_t *p;
	size_t n;

	(void)state;
	buf_init(&b);
	buf_put_u8(&b, 0xab);
	buf_put_u16(&b, 0xbeef);
	buf_put_u32(&b, 0xdeadbeefu);
	buf_put_u64(&b, 0x0123456789abcdefull);
	buf_put_blob(&b, blob, sizeof(blob));
	buf_put_blob(&b, NULL, 0);
	buf_put(&b, "xy", 2);
	assert_int_equal(buf_err(&b), 0);
	assert_int_equal(b.len, 1 + 2 + 4 + 8 + 4 + 5 + 4 + 2);

	/* Network byte order on the wire. */
	assert_int_equal(b.data[1], 0xbe);
	assert_int_equal(b.data[2], 0xef);
	assert_int_equal(b.data[3], 0xde);
	assert_int_equal(b.data[7], 0x01);
	assert_int_equal(b.data[14], 0xef);

	rd_init(&r, b.data, b.len);
	assert_int_equal(rd_u8(&r, &u8), 0);
	assert_int_equal(u8, 0xab);
	assert_int_equal(rd_u16(&r, &u16), 0);
	assert_int_equal(u16, 0xbeef);
	assert_int_equal(rd_u32(&r, &u32), 0);
	assert_int_equal(u32, 0xdeadbeefu);
	assert_int_equal(rd_u64(&r, &u64), 0);
	assert_true(u64 == 0x0123456789abcdefull);
	assert_int_equal(rd_blob(&r, 5, &p, &n), 0);
	assert_int_equal(n, 5);
	assert_memory_equal(p, blob, 5);
	assert_int_equal(rd_blob(&r, 0, &p, &n), 0);
	assert_int_equal(n, 0);
	assert_int_equal(rd_left(&r), 2);
	assert_int_equal(rd_bytes(&r, 2, &p), 0);
	assert_memory_equal(p, "xy", 2);
	assert_int_equal(rd_left(&r), 0);
	assert_false(r.bad);
	buf_fini(&b);
}

static void
test_growth(void **state)
{
	struct buf b;
	struct rd r;

	(void)state;
	buf_init(&b);
	for (uint32_t i = 0; i < 10000; i++)
		buf_put_u32(&b, i);
	assert_int_equal(buf_err(&b), 0);
	assert_int_equal(b.len, 40000);
	assert_true(b.cap >= b.len);
	rd_init(&r, b.data, b.len);
	for (uint32_t i = 0; i < 10000; i++) {
		uint32_t v;
		assert_int_equal(rd_u32(&r, &v), 0);
		assert_int_equal(v, i);
	}
	assert_int_equal(rd_left(&r), 0);
	buf_fini(&b);
}

static void
test_be_helpers(void **state)
{
	uint8_t d[8];

	(void)state;
	be_put_u32(d, 0x01020304u);
	assert_int_equal(d[0], 1);
	assert_int_equal(d[3], 4);
	assert_int_equal(be_get_u32(d), 0x01020304u);
	be_put_u64(d, 0xfffefdfcfbfaf9f8ull);
	assert_int_equal(d[0], 0xff);
	assert_int_equal(d[7], 0xf8);
	assert_true(be_get_u64(d) == 0xfffefdfcfbfaf9f8ull);
}

static void
test_reader_past_end(void **state)
{
	static const uint8_t in[3] = {1, 2, 3};
	struct rd r;
	uint32_t u32 = 77;
	uint8_t u8;
	uint16_t u16;
	uint64_t u64;
	const uint8_t *p;

	(void)state;
	rd_init(&r, in, sizeof(in));
	assert_int_equal(rd_u32(&r, &u32), DYN_EBADMSG);
	assert_int_equal(u32, 77); /* untouched on failure */
	assert_true(r.bad);
	/* Sticky: even a read that would fit now fails. */
	assert_int_equal(rd_u8(&r, &u8), DYN_EBADMSG);
	assert_int_equal(rd_left(&r), 0);

	rd_init(&r, in, sizeof(in));
	assert_int_equal(rd_u16(&r, &u16), 0);
	assert_int_equal(rd_u16(&r, &u16), DYN_EBADMSG);
	rd_init(&r, in, sizeof(in));
	assert_int_equal(rd_u64(&r, &u64), DYN_EBADMSG);
	rd_init(&r, in, sizeof(in));
	assert_int_equal(rd_bytes(&r, 4, &p), DYN_EBADMSG);
	rd_init(&r, in, sizeof(in));
	assert_int_equal(rd_bytes(&r, SIZE_MAX, &p), DYN_EBADMSG);
	rd_init(&r, in, sizeof(in));
	assert_int_equal(rd_bytes(&r, 3, &p), 0);
	assert_int_equal(rd_bytes(&r, 0, &p), 0);
	assert_int_equal(rd_u8(&r, &u8), DYN_EBADMSG);

	/* Empty input. */
	rd_init(&r, NULL, 0);
	assert_int_equal(rd_left(&r), 0);
	assert_int_equal(rd_u8(&r, &u8), DYN_EBADMSG);
}

static void
test_blob_caps(void **state)
{
	struct buf b;
	struct rd r;
	const uint8_t *p;
	size_t n;
	uint8_t x[8] = {0};

	(void)state;
	buf_init(&b);
	buf_put_blob(&b, x, 8);
	assert_int_equal(buf_err(&b), 0);

	/* Over the cap. */
	rd_init(&r, b.data, b.len);
	assert_int_equal(rd_blob(&r, 7, &p, &n), DYN_EBADMSG);
	assert_true(r.bad);
	/* At the cap. */
	rd_init(&r, b.data, b.len);
	assert_int_equal(rd_blob(&r, 8, &p, &n), 0);
	assert_int_equal(n, 8);
	/* Length says more than there is. */
	rd_init(&r, b.data, b.len - 1);
	assert_int_equal(rd_blob(&r, 100, &p, &n), DYN_EBADMSG);
	/* Huge length prefix. */
	buf_reset(&b);
	buf_put_u32(&b, UINT32_MAX);
	rd_init(&r, b.data, b.len);
	assert_int_equal(rd_blob(&r, SIZE_MAX, &p, &n), DYN_EBADMSG);
	/* Truncated length prefix. */
	rd_init(&r, b.data, 3);
	assert_int_equal(rd_blob(&r, SIZE_MAX, &p, &n), DYN_EBADMSG);

	/* Encoder side: a blob whose length does not fit a u32.  The
	 * pointer is never read (the length is refused first). */
	buf_reset(&b);
	buf_put_blob(&b, x, (size_t)UINT32_MAX + 1);
	assert_int_equal(buf_err(&b), DYN_ETOOBIG);
	assert_int_equal(b.len, 0);
	buf_fini(&b);
}

static void
test_sticky_oom(void **state)
{
	struct buf b;

	(void)state;
	buf_init(&b);
	testmem_fail_after(0);
	mem_set_allocator(&testmem_failing);
	buf_put_u32(&b, 1);
	assert_int_equal(buf_err(&b), -ENOMEM);
	assert_int_equal(b.len, 0);
	mem_set_allocator(&testmem_checked);
	/* Later writes are no-ops even though memory is back. */
	buf_put_u32(&b, 2);
	assert_int_equal(buf_err(&b), -ENOMEM);
	assert_int_equal(b.len, 0);
	assert_null(buf_extend(&b, 1));
	/* reset clears the error. */
	buf_reset(&b);
	assert_int_equal(buf_err(&b), 0);
	buf_put_u32(&b, 3);
	assert_int_equal(buf_err(&b), 0);
	assert_int_equal(b.len, 4);
	buf_fini(&b);
}

static void
test_sticky_oom_on_growth(void **state)
{
	struct buf b;
	size_t len;

	(void)state;
	buf_init(&b);
	buf_put_u32(&b, 1);
	len = b.len;
	testmem_fail_after(0);
	mem_set_allocator(&testmem_failing);
	/* Past the first block: needs a realloc, which fails. */
	for (int i = 0; i < 1000; i++)
		buf_put_u32(&b, 2);
	mem_set_allocator(&testmem_checked);
	assert_int_equal(buf_err(&b), -ENOMEM);
	assert_true(b.len < 1000 * 4 + len);
	assert_int_equal(be_get_u32(b.data), 1); /* old bytes intact */
	buf_fini(&b);
}

static void
test_extend_overflow(void **state)
{
	struct buf b;

	(void)state;
	buf_init(&b);
	buf_put_u8(&b, 1);
	assert_null(buf_extend(&b, SIZE_MAX));
	assert_int_equal(buf_err(&b), -ENOMEM);
	buf_fini(&b);
}

/* A reserve allocates exactly what was asked for (a 128 KiB value and its
 * header stay one 128 KiB block, not a doubled 256 KiB one), the bytes go
 * in without moving it, and an impossible size breaks the buf. */
static void
test_reserve(void **state)
{
	static uint8_t big[131072];
	struct buf b;

	(void)state;
	buf_init(&b);
	buf_put_u32(&b, 7);
	buf_reserve(&b, sizeof(big) + 100);
	assert_int_equal(b.cap, 4 + sizeof(big) + 100);
	uint8_t *d = b.data;
	buf_put(&b, big, sizeof(big));
	buf_put(&b, big, 100);
	assert_ptr_equal(b.data, d);
	assert_int_equal(b.len, b.cap);
	buf_reserve(&b, 0); /* room enough: nothing changes */
	assert_ptr_equal(b.data, d);
	buf_reserve(&b, SIZE_MAX);
	assert_int_equal(buf_err(&b), -ENOMEM);
	buf_fini(&b);

	buf_init(&b); /* on an empty buf, at least the usual first block */
	buf_reserve(&b, 1);
	assert_int_equal(b.cap, 256);
	buf_fini(&b);
}

static void
test_take_and_fini(void **state)
{
	struct buf b;
	uint8_t *d;
	size_t len;

	(void)state;
	buf_init(&b);
	buf_put(&b, "hello", 5);
	d = buf_take(&b, &len);
	assert_non_null(d);
	assert_int_equal(len, 5);
	assert_memory_equal(d, "hello", 5);
	assert_int_equal(b.len, 0);
	assert_null(b.data);
	mem_free(d);
	/* The emptied buf is usable and fini'able; fini takes NULL. */
	buf_put_u8(&b, 9);
	assert_int_equal(b.len, 1);
	buf_fini(&b);
	buf_fini(&b);
	buf_fini(NULL);
}

static void
test_reset_keeps_memory(void **state)
{
	struct buf b;
	uint8_t *d;

	(void)state;
	buf_init(&b);
	buf_put_u64(&b, 1);
	d = b.data;
	buf_reset(&b);
	assert_int_equal(b.len, 0);
	assert_ptr_equal(b.data, d);
	buf_put_u64(&b, 2);
	assert_ptr_equal(b.data, d);
	assert_true(be_get_u64(b.data) == 2);
	buf_fini(&b);
}

static void
test_printf(void **state)
{
	struct buf b;
	char big[1000];

	(void)state;
	buf_init(&b);
	buf_printf(&b, "%s=%d;", "a", 42);
	assert_int_equal(b.len, 5);
	assert_memory_equal(b.data, "a=42;", 5);
	/* Past the stack copy: formatted straight into the buffer. */
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	buf_printf(&b, "[%s]", big);
	assert_int_equal(buf_err(&b), 0);
	assert_int_equal(b.len, 5 + sizeof(big) + 1);
	assert_int_equal(b.data[5], '[');
	assert_int_equal(b.data[b.len - 1], ']');
	assert_int_equal(b.data[b.len - 2], 'x');
	buf_printf(&b, "%s", "");
	assert_int_equal(b.len, 5 + sizeof(big) + 1);
	buf_fini(&b);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_round_trip),
	    cmocka_unit_test(test_growth),
	    cmocka_unit_test(test_be_helpers),
	    cmocka_unit_test(test_reader_past_end),
	    cmocka_unit_test(test_blob_caps),
	    cmocka_unit_test(test_sticky_oom),
	    cmocka_unit_test(test_sticky_oom_on_growth),
	    cmocka_unit_test(test_extend_overflow),
	    cmocka_unit_test(test_reserve),
	    cmocka_unit_test(test_take_and_fini),
	    cmocka_unit_test(test_reset_keeps_memory),
	    cmocka_unit_test(test_printf),
	};

	return cmocka_run_group_tests(tests, testmem_setup, testmem_teardown);
}
