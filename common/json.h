/*
 * json — JSON text for the machine forms the programs exchange: a strict
 * reader (dynamoctl reads the status a node writes, to judge the cluster)
 * and a string writer whose output is always valid JSON (the node's
 * member names and hint targets are arbitrary bytes).
 *
 * It is not a general JSON library: a document is small (a node's status
 * is a few KiB), parsed whole into one tree, read-only afterwards; numbers
 * keep their text and are read as whole numbers on request.  It does not
 * build documents (the writers print them with the fields they know).
 */
#ifndef DYN_JSON_H
#define DYN_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"

/* Containers nested deeper than this are refused (the parser recurses). */
#define JSON_DEPTH_MAX 64

enum json_type {
	JSON_NULL,
	JSON_FALSE,
	JSON_TRUE,
	JSON_NUMBER,
	JSON_STRING,
	JSON_ARRAY,
	JSON_OBJECT,
};

struct json;     /* a parsed document */
struct json_val; /* one value in it */

/*
 * Parse text[0..len) (RFC 8259: one value, white space around it; strings
 * valid UTF-8 without raw control characters, escapes checked, surrogates
 * paired; nesting at most JSON_DEPTH_MAX).  The text comes from the
 * network: anything else is DYN_EBADMSG; -ENOMEM.  On success the caller
 * owns *out (json_free); the text is not referenced afterwards.
 */
int json_parse(const void *text, size_t len, struct json **out);
/* Free a document and every value in it.  NULL is fine. */
void json_free(struct json *doc);

/*
 * Reading.  Values stay valid until their document is freed.  Every
 * function accepts NULL for a value (an absent one), so lookups chain:
 * json_get(json_get(root, "transfer"), "done") is NULL when either is
 * missing or of another kind.
 */
const struct json_val *json_root(const struct json *doc);
/* JSON_NULL for NULL too. */
enum json_type json_type(const struct json_val *v);
/* The value of the first member called key of object obj, or NULL. */
const struct json_val *json_get(const struct json_val *obj, const char *key);
/* The first element of an array or member value of an object, and the
 * next one after v in its container: NULL past the last (or for
 * anything but a container). */
const struct json_val *json_child(const struct json_val *v);
const struct json_val *json_next(const struct json_val *v);
/* The key of v when v is a member of an object (NUL-terminated; *len, if
 * not NULL, gets its length, which counts any \u0000), else NULL. */
const char *json_key(const struct json_val *v, size_t *len);
/* A string's bytes (NUL-terminated, decoded; *len as for json_key), or
 * NULL when v is not a string. */
const char *json_str(const struct json_val *v, size_t *len);
/* A number that is a whole number in [0, UINT64_MAX] written without
 * fraction or exponent: 0 and *out; else -EINVAL (*out untouched). */
int json_u64(const struct json_val *v, uint64_t *out);
/* The same for signed numbers, in [INT64_MIN, INT64_MAX]. */
int json_i64(const struct json_val *v, int64_t *out);
/* true or false: 0 and *out; else -EINVAL. */
int json_bool(const struct json_val *v, bool *out);

/*
 * Writing: p[0..len) as a JSON string, quotes included, appended to out
 * (errors sticky in out).  Valid UTF-8 passes through; '"', '\' and
 * control characters are escaped, and each byte that is not part of valid
 * UTF-8 becomes U+FFFD, so the result is always valid JSON.
 */
void json_put_str(struct buf *out, const void *p, size_t len);
/* The length of the valid UTF-8 sequence at p (left bytes there): 1 to 4,
 * or 0 when the bytes there are not one (overlong forms, surrogates and
 * code points past U+10FFFF are not). */
size_t json_utf8_len(const uint8_t *p, size_t left);

#endif
