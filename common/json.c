/*
 * The tree is one array of values linked by index (a container's first
 * child, each value's next sibling), so parsing appends and never moves a
 * value it still needs; the strings (decoded) and numbers (as written) sit
 * in one arena sized up front from the text's length, so the pointers
 * handed out never move either.
 */
#include "json.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "err.h"
#include "mem.h"

#define NONE SIZE_MAX

struct json_val {
	const struct json *doc;
	enum json_type type;
	uint32_t child; /* first element or member; 0: none (0 is the root) */
	uint32_t next;  /* next sibling; 0: none */
	size_t koff;    /* key in doc->str (NONE: not a member) */
	size_t klen;
	size_t soff; /* a string's bytes or a number's text in doc->str */
	size_t slen;
};

struct json {
	struct json_val *v;
	size_t nv, cap;
	char *str; /* every string and number, each NUL-terminated */
	size_t nstr, strcap;
};

struct parser {
	const uint8_t *p, *end;
	struct json *doc;
	int depth;
};

/* ---- reading the text ---------------------------------------------- */

static void
skip_ws(struct parser *ps)
{
	while (ps->p < ps->end && (*ps->p == ' ' || *ps->p == '\t' ||
	                              *ps->p == '\n' || *ps->p == '\r'))
		ps->p++;
}

static int
new_val(struct parser *ps, enum json_type t, uint32_t *idx)
{
	struct json *d = ps->doc;
	if (d->nv == d->cap) {
		size_t cap = d->cap ? d->cap * 2 : 16;
		if (cap > UINT32_MAX)
			return DYN_EBADMSG;
		struct json_val *v = mem_realloc(d->v, cap * sizeof(*v));
		if (!v)
			return -ENOMEM;
		d->v = v;
		d->cap = cap;
	}
	*idx = (uint32_t)d->nv;
	d->v[d->nv++] = (struct json_val){.doc = d, .type = t, .koff = NONE};
	return 0;
}

/* Where the next string goes in the arena (it always has room: see
 * json_parse). */
static char *
arena(struct parser *ps)
{
	return ps->doc->str + ps->doc->nstr;
}

static int
hex4(struct parser *ps, uint32_t *out)
{
	uint32_t v = 0;
	if (ps->end - ps->p < 4)
		return DYN_EBADMSG;
	for (int i = 0; i < 4; i++) {
		uint8_t c = *ps->p++;
		uint32_t d = c >= '0' && c <= '9'   ? (uint32_t)(c - '0')
		           : c >= 'a' && c <= 'f' ? (uint32_t)(c - 'a' + 10)
		           : c >= 'A' && c <= 'F' ? (uint32_t)(c - 'A' + 10)
		                                  : 16;
		if (d == 16)
			return DYN_EBADMSG;
		v = v * 16 + d;
	}
	*out = v;
	return 0;
}

static size_t
put_utf8(char *o, uint32_t cp)
{
	if (cp < 0x80) {
		o[0] = (char)cp;
		return 1;
	}
	if (cp < 0x800) {
		o[0] = (char)(0xc0 | cp >> 6);
		o[1] = (char)(0x80 | (cp & 0x3f));
		return 2;
	}
	if (cp < 0x10000) {
		o[0] = (char)(0xe0 | cp >> 12);
		o[1] = (char)(0x80 | (cp >> 6 & 0x3f));
		o[2] = (char)(0x80 | (cp & 0x3f));
		return 3;
	}
	o[0] = (char)(0xf0 | cp >> 18);
	o[1] = (char)(0x80 | (cp >> 12 & 0x3f));
	o[2] = (char)(0x80 | (cp >> 6 & 0x3f));
	o[3] = (char)(0x80 | (cp & 0x3f));
	return 4;
}

/* \uXXXX after the backslash and the u, a surrogate pair as one. */
static int
escape_u(struct parser *ps, uint32_t *cp)
{
	int rc = hex4(ps, cp);
	if (rc)
		return rc;
	if (*cp >= 0xdc00 && *cp <= 0xdfff)
		return DYN_EBADMSG; /* a low half alone */
	if (*cp < 0xd800 || *cp > 0xdbff)
		return 0;
	uint32_t lo;
	if (ps->end - ps->p < 2 || ps->p[0] != '\\' || ps->p[1] != 'u')
		return DYN_EBADMSG;
	ps->p += 2;
	if ((rc = hex4(ps, &lo)) != 0)
		return rc;
	if (lo < 0xdc00 || lo > 0xdfff)
		return DYN_EBADMSG;
	*cp = 0x10000 + ((*cp - 0xd800) << 10) + (lo - 0xdc00);
	return 0;
}

/* A string at ps->p (its opening quote), decoded into the arena. */
static int
parse_string(struct parser *ps, size_t *off, size_t *len)
{
	char *o = arena(ps), *start = o;
	ps->p++;
	for (;;) {
		if (ps->p == ps->end)
			return DYN_EBADMSG;
		uint8_t c = *ps->p;
		if (c == '"') {
			ps->p++;
			break;
		}
		if (c < 0x20)
			return DYN_EBADMSG;
		if (c != '\\') {
			size_t n = json_utf8_len(ps->p, (size_t)(ps->end - ps->p));
			if (n == 0)
				return DYN_EBADMSG;
			memcpy(o, ps->p, n);
			o += n;
			ps->p += n;
			continue;
		}
		if (++ps->p == ps->end)
			return DYN_EBADMSG;
		static const char from[] = "\"\\/bfnrt", to[] = "\"\\/\b\f\n\r\t";
		const char *k = memchr(from, *ps->p, sizeof(from) - 1);
		if (k) {
			*o++ = to[k - from];
			ps->p++;
			continue;
		}
		if (*ps->p++ != 'u')
			return DYN_EBADMSG;
		uint32_t cp;
		int rc = escape_u(ps, &cp);
		if (rc)
			return rc;
		o += put_utf8(o, cp);
	}
	*o++ = '\0';
	*off = ps->doc->nstr;
	*len = (size_t)(o - start) - 1;
	ps->doc->nstr += (size_t)(o - start);
	return 0;
}

static size_t
digits(struct parser *ps)
{
	size_t n = 0;
	while (ps->p < ps->end && *ps->p >= '0' && *ps->p <= '9')
		ps->p++, n++;
	return n;
}

/* -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)?, its text kept. */
static int
parse_number(struct parser *ps, uint32_t idx)
{
	const uint8_t *s = ps->p;
	if (ps->p < ps->end && *ps->p == '-')
		ps->p++;
	if (ps->p < ps->end && *ps->p == '0')
		ps->p++;
	else if (digits(ps) == 0)
		return DYN_EBADMSG;
	if (ps->p < ps->end && *ps->p == '.') {
		ps->p++;
		if (digits(ps) == 0)
			return DYN_EBADMSG;
	}
	if (ps->p < ps->end && (*ps->p == 'e' || *ps->p == 'E')) {
		ps->p++;
		if (ps->p < ps->end && (*ps->p == '+' || *ps->p == '-'))
			ps->p++;
		if (digits(ps) == 0)
			return DYN_EBADMSG;
	}
	size_t n = (size_t)(ps->p - s);
	char *o = arena(ps);
	memcpy(o, s, n);
	o[n] = '\0';
	ps->doc->v[idx].soff = ps->doc->nstr;
	ps->doc->v[idx].slen = n;
	ps->doc->nstr += n + 1;
	return 0;
}

static int
parse_literal(struct parser *ps, const char *word)
{
	size_t n = strlen(word);
	if ((size_t)(ps->end - ps->p) < n || memcmp(ps->p, word, n) != 0)
		return DYN_EBADMSG;
	ps->p += n;
	return 0;
}

static int parse_value(struct parser *ps, uint32_t *idx);

/* The elements of an array or the members of an object, after its
 * opening bracket, linked under idx. */
static int
parse_container(struct parser *ps, uint32_t idx, bool object)
{
	uint8_t close = object ? '}' : ']';
	uint32_t prev = 0;
	if (++ps->depth > JSON_DEPTH_MAX)
		return DYN_EBADMSG;
	skip_ws(ps);
	if (ps->p < ps->end && *ps->p == close) {
		ps->p++;
		ps->depth--;
		return 0;
	}
	for (;;) {
		size_t koff = NONE, klen = 0;
		uint32_t c;
		int rc;
		skip_ws(ps);
		if (object) {
			if (ps->p == ps->end || *ps->p != '"')
				return DYN_EBADMSG;
			if ((rc = parse_string(ps, &koff, &klen)) != 0)
				return rc;
			skip_ws(ps);
			if (ps->p == ps->end || *ps->p++ != ':')
				return DYN_EBADMSG;
		}
		if ((rc = parse_value(ps, &c)) != 0)
			return rc;
		ps->doc->v[c].koff = koff;
		ps->doc->v[c].klen = klen;
		if (prev == 0)
			ps->doc->v[idx].child = c;
		else
			ps->doc->v[prev].next = c;
		prev = c;
		skip_ws(ps);
		if (ps->p == ps->end)
			return DYN_EBADMSG;
		uint8_t sep = *ps->p++;
		if (sep == close)
			break;
		if (sep != ',')
			return DYN_EBADMSG;
	}
	ps->depth--;
	return 0;
}

static int
parse_value(struct parser *ps, uint32_t *idx)
{
	skip_ws(ps);
	if (ps->p == ps->end)
		return DYN_EBADMSG;
	uint8_t c = *ps->p;
	enum json_type t = c == '{' ? JSON_OBJECT
	                 : c == '[' ? JSON_ARRAY
	                 : c == '"' ? JSON_STRING
	                 : c == 't' ? JSON_TRUE
	                 : c == 'f' ? JSON_FALSE
	                 : c == 'n' ? JSON_NULL
	                            : JSON_NUMBER;
	int rc = new_val(ps, t, idx);
	if (rc)
		return rc;
	switch (t) {
	case JSON_OBJECT:
	case JSON_ARRAY:
		ps->p++;
		return parse_container(ps, *idx, t == JSON_OBJECT);
	case JSON_STRING:
		return parse_string(ps, &ps->doc->v[*idx].soff,
		    &ps->doc->v[*idx].slen);
	case JSON_TRUE:
		return parse_literal(ps, "true");
	case JSON_FALSE:
		return parse_literal(ps, "false");
	case JSON_NULL:
		return parse_literal(ps, "null");
	default:
		return parse_number(ps, *idx);
	}
}

int
json_parse(const void *text, size_t len, struct json **out)
{
	*out = NULL;
	if (len > SIZE_MAX / 2 - 1)
		return DYN_EBADMSG;
	struct json *d = mem_calloc(1, sizeof(*d));
	if (!d)
		return -ENOMEM;
	/* A decoded string with its NUL is never longer than its quoted
	 * text, and a number's text with its NUL at most twice as long. */
	d->strcap = 2 * len + 1;
	d->str = mem_alloc(d->strcap);
	struct parser ps = {.p = text, .end = (const uint8_t *)text + len,
	    .doc = d};
	uint32_t root;
	int rc = d->str ? parse_value(&ps, &root) : -ENOMEM;
	skip_ws(&ps);
	if (rc == 0 && ps.p != ps.end)
		rc = DYN_EBADMSG;
	if (rc) {
		json_free(d);
		return rc;
	}
	*out = d;
	return 0;
}

void
json_free(struct json *doc)
{
	if (!doc)
		return;
	mem_free(doc->v);
	mem_free(doc->str);
	mem_free(doc);
}

/* ---- the tree ------------------------------------------------------ */

const struct json_val *
json_root(const struct json *doc)
{
	return doc && doc->nv ? &doc->v[0] : NULL;
}

enum json_type
json_type(const struct json_val *v)
{
	return v ? v->type : JSON_NULL;
}

const struct json_val *
json_child(const struct json_val *v)
{
	if (!v || (v->type != JSON_ARRAY && v->type != JSON_OBJECT) ||
	    v->child == 0)
		return NULL;
	return &v->doc->v[v->child];
}

const struct json_val *
json_next(const struct json_val *v)
{
	return v && v->next ? &v->doc->v[v->next] : NULL;
}

const char *
json_key(const struct json_val *v, size_t *len)
{
	if (!v || v->koff == NONE)
		return NULL;
	if (len)
		*len = v->klen;
	return v->doc->str + v->koff;
}

const struct json_val *
json_get(const struct json_val *obj, const char *key)
{
	if (json_type(obj) != JSON_OBJECT)
		return NULL;
	size_t n = strlen(key);
	for (const struct json_val *c = json_child(obj); c; c = json_next(c))
		if (c->klen == n && memcmp(json_key(c, NULL), key, n) == 0)
			return c;
	return NULL;
}

const char *
json_str(const struct json_val *v, size_t *len)
{
	if (json_type(v) != JSON_STRING)
		return NULL;
	if (len)
		*len = v->slen;
	return v->doc->str + v->soff;
}

/* The magnitude of a whole number's text (optional '-' then digits
 * only); -EINVAL for a fraction, an exponent or more than 64 bits. */
static int
whole(const struct json_val *v, bool *neg, uint64_t *mag)
{
	if (json_type(v) != JSON_NUMBER)
		return -EINVAL;
	const char *s = v->doc->str + v->soff;
	*neg = *s == '-';
	s += *neg;
	uint64_t m = 0;
	for (; *s; s++) {
		if (*s < '0' || *s > '9')
			return -EINVAL;
		uint64_t d = (uint64_t)(*s - '0');
		if (m > (UINT64_MAX - d) / 10)
			return -EINVAL;
		m = m * 10 + d;
	}
	*mag = m;
	return 0;
}

int
json_u64(const struct json_val *v, uint64_t *out)
{
	bool neg;
	uint64_t m;
	if (whole(v, &neg, &m) != 0 || (neg && m != 0))
		return -EINVAL;
	*out = m;
	return 0;
}

int
json_i64(const struct json_val *v, int64_t *out)
{
	bool neg;
	uint64_t m;
	if (whole(v, &neg, &m) != 0 ||
	    m > (neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX))
		return -EINVAL;
	*out = neg ? (int64_t)(0 - m) : (int64_t)m;
	return 0;
}

int
json_bool(const struct json_val *v, bool *out)
{
	enum json_type t = json_type(v);
	if (t != JSON_TRUE && t != JSON_FALSE)
		return -EINVAL;
	*out = t == JSON_TRUE;
	return 0;
}

/* ---- writing ------------------------------------------------------- */

size_t
json_utf8_len(const uint8_t *p, size_t left)
{
	uint8_t c = p[0];
	size_t n;
	uint8_t lo = 0x80, hi = 0xbf; /* bounds of the second byte */

	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf) {
		n = 2;
	} else if (c >= 0xe0 && c <= 0xef) {
		n = 3;
		if (c == 0xe0)
			lo = 0xa0;
		else if (c == 0xed)
			hi = 0x9f;
	} else if (c >= 0xf0 && c <= 0xf4) {
		n = 4;
		if (c == 0xf0)
			lo = 0x90;
		else if (c == 0xf4)
			hi = 0x8f;
	} else {
		return 0;
	}
	if (left < n || p[1] < lo || p[1] > hi)
		return 0;
	for (size_t i = 2; i < n; i++) {
		if (p[i] < 0x80 || p[i] > 0xbf)
			return 0;
	}
	return n;
}

void
json_put_str(struct buf *out, const void *data, size_t len)
{
	static const char esc_from[] = "\"\\\n\r\t";
	static const char *const esc_to[] = {"\\\"", "\\\\", "\\n", "\\r",
	    "\\t"};
	const uint8_t *p = data;

	buf_put_u8(out, '"');
	for (size_t i = 0; i < len;) {
		size_t n = json_utf8_len(p + i, len - i);
		const char *e = n == 1
		    ? memchr(esc_from, p[i], sizeof(esc_from) - 1)
		    : NULL;
		char u[8];
		if (n == 0) {
			buf_put(out, "\\ufffd", 6);
			n = 1;
		} else if (e) {
			const char *s = esc_to[e - esc_from];
			buf_put(out, s, strlen(s));
		} else if (n == 1 && (p[i] < 0x20 || p[i] == 0x7f)) {
			snprintf(u, sizeof(u), "\\u%04x", p[i]);
			buf_put(out, u, 6);
		} else {
			buf_put(out, p + i, n);
		}
		i += n;
	}
	buf_put_u8(out, '"');
}
