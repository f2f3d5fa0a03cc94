/*
 * Unit tests for json: a status-shaped document read back (lookups,
 * iteration, keys, numbers, booleans, absent values chained), strings and
 * their escapes (surrogate pairs, \u0000), what the strict reader refuses
 * (malformed text, bad UTF-8, lone surrogates, depth), whole numbers at
 * their limits, the writer's output parsed back for every byte, and out of
 * memory.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "err.h"
#include "json.h"
#include "mem.h"
#include "testmem.h"

static struct json *
parse_ok(const char *s)
{
	struct json *d = NULL;
	assert_int_equal(json_parse(s, strlen(s), &d), 0);
	assert_non_null(d);
	return d;
}

static void
parse_bad(const char *s)
{
	struct json *d = (struct json *)1;
	int rc = json_parse(s, strlen(s), &d);
	if (rc != DYN_EBADMSG)
		fail_msg("accepted or wrong error (%d) for: %s", rc, s);
	assert_null(d);
}

static void
test_status_shape(void **state)
{
	(void)state;
	struct json *d = parse_ok(
	    " {\"ring_epoch\": 7, \"transfer_pending\": false, \"members\": "
	    "[{\"name\": \"n0\", \"reachable\": true, \"partitions\": 22}, "
	    "{\"name\": \"n1\", \"reachable\": false, \"partitions\": 0}], "
	    "\"hints\": {\"n1\": 40, \"n2\": 3}, \"gc\": {\"grace_ms\": null},"
	    " \"empty\": {}, \"none\": []}\n");
	const struct json_val *r = json_root(d);
	uint64_t u;
	bool b;

	assert_int_equal(json_type(r), JSON_OBJECT);
	assert_int_equal(json_u64(json_get(r, "ring_epoch"), &u), 0);
	assert_int_equal(u, 7);
	assert_int_equal(json_bool(json_get(r, "transfer_pending"), &b), 0);
	assert_false(b);

	const struct json_val *m = json_child(json_get(r, "members"));
	assert_string_equal(json_str(json_get(m, "name"), NULL), "n0");
	assert_int_equal(json_bool(json_get(m, "reachable"), &b), 0);
	assert_true(b);
	m = json_next(m);
	assert_string_equal(json_str(json_get(m, "name"), NULL), "n1");
	assert_null(json_next(m));
	assert_null(json_key(m, NULL)); /* an element has no key */

	uint64_t sum = 0;
	int n = 0;
	for (const struct json_val *h = json_child(json_get(r, "hints")); h;
	     h = json_next(h), n++) {
		size_t kl;
		const char *k = json_key(h, &kl);
		assert_int_equal(kl, 2);
		assert_true(k[0] == 'n');
		assert_int_equal(json_u64(h, &u), 0);
		sum += u;
	}
	assert_int_equal(n, 2);
	assert_int_equal(sum, 43);

	assert_int_equal(json_type(json_get(json_get(r, "gc"), "grace_ms")),
	    JSON_NULL);
	assert_null(json_child(json_get(r, "empty")));
	assert_null(json_child(json_get(r, "none")));
	/* Absent values chain to NULL, and every reader takes them. */
	assert_null(json_get(json_get(r, "nothing"), "deeper"));
	assert_null(json_get(json_get(r, "ring_epoch"), "x"));
	assert_int_equal(json_type(NULL), JSON_NULL);
	assert_int_equal(json_u64(NULL, &u), -EINVAL);
	assert_int_equal(json_bool(json_get(r, "ring_epoch"), &b), -EINVAL);
	assert_null(json_str(json_get(r, "ring_epoch"), NULL));
	assert_null(json_child(json_get(r, "ring_epoch")));
	json_free(d);
	json_free(NULL);
}

static void
test_strings(void **state)
{
	(void)state;
	struct json *d = parse_ok("[\"a\\\"b\\\\c\\/d\\b\\f\\n\\r\\t\", "
	                          "\"\\u00e9\\u20ac\\ud83d\\ude00\", "
	                          "\"x\\u0000y\", \"\xc3\xa9\xe2\x82\xac\"]");
	const struct json_val *v = json_child(json_root(d));
	size_t len;
	assert_string_equal(json_str(v, NULL), "a\"b\\c/d\b\f\n\r\t");
	v = json_next(v);
	assert_string_equal(json_str(v, NULL),
	    "\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80");
	v = json_next(v);
	const char *s = json_str(v, &len);
	assert_int_equal(len, 3);
	assert_memory_equal(s, "x\0y", 3);
	v = json_next(v);
	assert_string_equal(json_str(v, NULL), "\xc3\xa9\xe2\x82\xac");
	json_free(d);

	d = parse_ok("{\"k\\u0041\": 1, \"k\": 2}");
	uint64_t u;
	assert_int_equal(json_u64(json_get(json_root(d), "kA"), &u), 0);
	assert_int_equal(u, 1);
	assert_int_equal(json_u64(json_get(json_root(d), "k"), &u), 0);
	assert_int_equal(u, 2);
	json_free(d);
}

static void
test_refused(void **state)
{
	(void)state;
	static const char *const bad[] = {
	    "", " ", "{", "}", "[", "[1,]", "[,1]", "{\"a\" 1}", "{\"a\":}",
	    "{1: 2}", "{\"a\": 1,}", "[1 2]", "1 2", "tru", "nul", "falsey",
	    "01", "-", "1.", ".5", "1e", "1e+", "+1", "0x10", "\"abc",
	    "\"a\\x\"", "\"\\u12\"", "\"\\u12g4\"", "\"\\ud800\"",
	    "\"\\ud800\\u0041\"", "\"\\udc00\"", "\"\x01\"", "\"\t\"",
	    "\"\xc0\xaf\"", "\"\xed\xa0\x80\"", "\"\xf4\x90\x80\x80\"",
	    "\"\xe2\x82\"", "\"\xff\"", "[1]]", "NaN", "{\"a\":1}x",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		parse_bad(bad[i]);

	/* Nesting: JSON_DEPTH_MAX containers deep is fine, one more not. */
	char deep[2 * JSON_DEPTH_MAX + 8];
	for (int extra = 0; extra < 2; extra++) {
		int n = JSON_DEPTH_MAX + extra;
		for (int i = 0; i < n; i++) {
			deep[i] = '[';
			deep[n + i] = ']';
		}
		deep[2 * n] = '\0';
		struct json *d = NULL;
		assert_int_equal(json_parse(deep, (size_t)(2 * n), &d),
		    extra ? DYN_EBADMSG : 0);
		json_free(d);
	}
}

static void
test_numbers(void **state)
{
	(void)state;
	struct json *d = parse_ok("[0, 18446744073709551615, "
	                          "18446744073709551616, -1, 1.5, 1e3, -0, "
	                          "-9223372036854775808, 9223372036854775807, "
	                          "9223372036854775808, -9223372036854775809, "
	                          "2E-2]");
	const struct json_val *v = json_child(json_root(d));
	uint64_t u = 99;
	int64_t s = 99;
	assert_int_equal(json_u64(v, &u), 0);
	assert_int_equal(u, 0);
	v = json_next(v);
	assert_int_equal(json_u64(v, &u), 0);
	assert_true(u == UINT64_MAX);
	assert_int_equal(json_i64(v, &s), -EINVAL);
	v = json_next(v);
	assert_int_equal(json_u64(v, &u), -EINVAL); /* 2^64 */
	v = json_next(v);
	assert_int_equal(json_u64(v, &u), -EINVAL);
	assert_int_equal(json_i64(v, &s), 0);
	assert_int_equal(s, -1);
	v = json_next(v);
	assert_int_equal(json_u64(v, &u), -EINVAL); /* 1.5 */
	assert_int_equal(json_type(v), JSON_NUMBER);
	v = json_next(v);
	assert_int_equal(json_u64(v, &u), -EINVAL); /* 1e3 */
	v = json_next(v);
	assert_int_equal(json_u64(v, &u), 0); /* -0 */
	assert_int_equal(u, 0);
	v = json_next(v);
	assert_int_equal(json_i64(v, &s), 0);
	assert_true(s == INT64_MIN);
	v = json_next(v);
	assert_int_equal(json_i64(v, &s), 0);
	assert_true(s == INT64_MAX);
	v = json_next(v);
	assert_int_equal(json_i64(v, &s), -EINVAL);
	v = json_next(v);
	assert_int_equal(json_i64(v, &s), -EINVAL);
	v = json_next(v);
	assert_int_equal(json_type(v), JSON_NUMBER);
	json_free(d);
}

/* Every single byte, and some sequences, written as a string and read
 * back: valid UTF-8 round-trips, anything else becomes U+FFFD. */
static void
test_writer(void **state)
{
	(void)state;
	for (int c = 0; c < 256; c++) {
		uint8_t in[3] = {'<', (uint8_t)c, '>'};
		struct buf b;
		buf_init(&b);
		json_put_str(&b, in, sizeof(in));
		assert_int_equal(buf_err(&b), 0);
		struct json *d = NULL;
		assert_int_equal(json_parse(b.data, b.len, &d), 0);
		size_t len;
		const char *s = json_str(json_root(d), &len);
		if (c < 0x80) {
			assert_int_equal(len, 3);
			assert_memory_equal(s, in, 3);
		} else {
			assert_int_equal(len, 5);
			assert_memory_equal(s, "<\xef\xbf\xbd>", 5);
		}
		json_free(d);
		buf_fini(&b);
	}
	static const char *const ok[] = {"\xc3\xa9", "\xe2\x82\xac",
	    "\xf0\x9f\x98\x80", "n\"1\\", ""};
	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		struct buf b;
		buf_init(&b);
		json_put_str(&b, ok[i], strlen(ok[i]));
		struct json *d = NULL;
		assert_int_equal(json_parse(b.data, b.len, &d), 0);
		assert_string_equal(json_str(json_root(d), NULL), ok[i]);
		json_free(d);
		buf_fini(&b);
	}
	assert_int_equal(json_utf8_len((const uint8_t *)"\xe2\x82", 2), 0);
	assert_int_equal(json_utf8_len((const uint8_t *)"\xe2\x82\xac", 3), 3);
}

static void
test_out_of_memory(void **state)
{
	(void)state;
	static const char text[] =
	    "{\"a\": [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, "
	    "17, 18, 19, 20], \"b\": {\"c\": \"d\"}}";
	mem_set_allocator(&testmem_failing);
	long ok_after = -1;
	for (long n = 0; n < 64 && ok_after < 0; n++) {
		testmem_fail_after(n);
		struct json *d = (struct json *)1;
		int rc = json_parse(text, strlen(text), &d);
		if (rc == 0) {
			ok_after = n;
			json_free(d);
		} else {
			assert_int_equal(rc, -ENOMEM);
			assert_null(d);
		}
	}
	testmem_fail_after(-1);
	mem_set_allocator(&testmem_checked);
	assert_true(ok_after > 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_status_shape),
	    cmocka_unit_test(test_strings),
	    cmocka_unit_test(test_refused),
	    cmocka_unit_test(test_numbers),
	    cmocka_unit_test(test_writer),
	    cmocka_unit_test(test_out_of_memory),
	};
	return cmocka_run_group_tests(tests, testmem_setup, testmem_teardown);
}
