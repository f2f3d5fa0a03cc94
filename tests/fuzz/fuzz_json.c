/* libFuzzer target: the JSON reader (json.h), which dynamoctl points at
 * the status text nodes send.  Input: the text.  What the reader accepts
 * is printed back (strings through json_put_str) and must parse again to
 * a tree that prints the same; what it refuses is DYN_EBADMSG. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "err.h"
#include "fuzz.h"
#include "json.h"

static void
print(const struct json_val *v, struct buf *out)
{
	size_t len;
	const char *s;
	bool b;
	switch (json_type(v)) {
	case JSON_NULL:
		buf_put(out, "null", 4);
		break;
	case JSON_FALSE:
	case JSON_TRUE:
		FUZZ_REQUIRE(json_bool(v, &b) == 0);
		buf_put(out, b ? "true" : "false", b ? 4 : 5);
		break;
	case JSON_STRING:
		s = json_str(v, &len);
		FUZZ_REQUIRE(s != NULL && s[len] == '\0');
		json_put_str(out, s, len);
		break;
	case JSON_NUMBER: {
		uint64_t u;
		int64_t i;
		char t[32];
		/* Whole numbers only as integers; others as a marker. */
		if (json_u64(v, &u) == 0)
			snprintf(t, sizeof(t), "%llu", (unsigned long long)u);
		else if (json_i64(v, &i) == 0)
			snprintf(t, sizeof(t), "%lld", (long long)i);
		else
			snprintf(t, sizeof(t), "0.5");
		buf_put(out, t, strlen(t));
		break;
	}
	case JSON_ARRAY:
	case JSON_OBJECT: {
		bool obj = json_type(v) == JSON_OBJECT;
		buf_put_u8(out, obj ? '{' : '[');
		for (const struct json_val *c = json_child(v); c;
		     c = json_next(c)) {
			if (c != json_child(v))
				buf_put_u8(out, ',');
			const char *k = json_key(c, &len);
			FUZZ_REQUIRE((k != NULL) == obj);
			if (obj) {
				FUZZ_REQUIRE(k[len] == '\0');
				json_put_str(out, k, len);
				buf_put_u8(out, ':');
				FUZZ_REQUIRE(json_get(v, k) != NULL ||
				             strlen(k) != len);
			}
			print(c, out);
		}
		buf_put_u8(out, obj ? '}' : ']');
		break;
	}
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct json *d = NULL, *again = NULL;
	int rc = json_parse(data, size, &d);
	FUZZ_REQUIRE(rc == 0 || rc == DYN_EBADMSG || rc == -ENOMEM);
	if (rc != 0) {
		FUZZ_REQUIRE(d == NULL);
		return 0;
	}
	struct buf one, two;
	buf_init(&one);
	buf_init(&two);
	print(json_root(d), &one);
	FUZZ_REQUIRE(buf_err(&one) == 0);
	FUZZ_REQUIRE(json_parse(one.data, one.len, &again) == 0);
	print(json_root(again), &two);
	FUZZ_REQUIRE(two.len == one.len &&
	             memcmp(two.data, one.data, one.len) == 0);
	buf_fini(&one);
	buf_fini(&two);
	json_free(again);
	json_free(d);
	return 0;
}
