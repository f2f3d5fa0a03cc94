/*
 * cli — helpers for the command-line programs.  See cli.h.
 *
 * Parsing is strict on purpose: a benchmark that silently read "10x" as 10
 * or a put that read "-1" as a huge quorum would mislead more than it helps,
 * so anything not fully consumed is -EINVAL.
 */
#include "cli.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "err.h"
#include "mem.h"

/* EVP_EncodeBlock/EVP_DecodeBlock take an int length. */
#define B64_MAX_IN (1u << 30)

int
cli_b64_encode(const void *p, size_t len, char **out)
{
	*out = NULL;
	if (len > B64_MAX_IN)
		return DYN_ETOOBIG;
	char *s = mem_alloc(4 * ((len + 2) / 3) + 1);
	if (s == NULL)
		return -ENOMEM;
	EVP_EncodeBlock((unsigned char *)s, p, (int)len);
	*out = s;
	return 0;
}

static bool
is_b64_char(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
	       (c >= '0' && c <= '9') || c == '+' || c == '/';
}

static bool
is_space(unsigned char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

int
cli_b64_decode(const char *s, uint8_t **out, size_t *len)
{
	*out = NULL;
	*len = 0;

	/* EVP_DecodeBlock accepts some sloppy input (inner '=', stray white
	 * space) and reports padding bytes as data, so check the shape here
	 * and let OpenSSL do only the arithmetic. */
	size_t n = strlen(s);
	while (n > 0 && is_space((unsigned char)*s)) {
		s++;
		n--;
	}
	while (n > 0 && is_space((unsigned char)s[n - 1]))
		n--;
	if (n % 4 != 0 || n > B64_MAX_IN)
		return -EINVAL;
	size_t pad = 0;
	while (pad < 2 && pad < n && s[n - 1 - pad] == '=')
		pad++;
	for (size_t i = 0; i < n - pad; i++) {
		if (!is_b64_char((unsigned char)s[i]))
			return -EINVAL;
	}

	uint8_t *p = mem_alloc(n / 4 * 3 + 1);
	if (p == NULL)
		return -ENOMEM;
	if (n > 0) {
		int m = EVP_DecodeBlock(p, (const unsigned char *)s, (int)n);
		if (m < 0 || (size_t)m < pad) {
			mem_free(p);
			return -EINVAL;
		}
		*len = (size_t)m - pad;
	}
	*out = p;
	return 0;
}

/* Length of the valid UTF-8 sequence at p (1..4), or 0 if p[0] does not
 * start one.  Follows RFC 3629: no overlongs, no surrogates, <= U+10FFFF. */
static size_t
utf8_seq_len(const uint8_t *p, size_t left)
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
cli_json_str(FILE *f, const void *data, size_t len)
{
	const uint8_t *p = data;

	putc('"', f);
	for (size_t i = 0; i < len;) {
		uint8_t c = p[i];
		size_t n = utf8_seq_len(p + i, len - i);

		if (n == 0) {
			fputs("\\ufffd", f);
			i++;
			continue;
		}
		if (n > 1) {
			fwrite(p + i, 1, n, f);
			i += n;
			continue;
		}
		switch (c) {
		case '"':
			fputs("\\\"", f);
			break;
		case '\\':
			fputs("\\\\", f);
			break;
		case '\n':
			fputs("\\n", f);
			break;
		case '\r':
			fputs("\\r", f);
			break;
		case '\t':
			fputs("\\t", f);
			break;
		default:
			if (c < 0x20 || c == 0x7f)
				fprintf(f, "\\u%04x", c);
			else
				putc(c, f);
			break;
		}
		i++;
	}
	putc('"', f);
}

int
cli_parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *out)
{
	/* strtoull skips white space and accepts a sign; we want neither. */
	if (s[0] < '0' || s[0] > '9')
		return -EINVAL;
	char *end;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	if (*end != '\0')
		return -EINVAL;
	if (errno == ERANGE || v < min || v > max)
		return -ERANGE;
	*out = (uint64_t)v;
	return 0;
}

int
cli_parse_double(const char *s, double min, double max, double *out)
{
	if (!((s[0] >= '0' && s[0] <= '9') || s[0] == '.' || s[0] == '-'))
		return -EINVAL;
	char *end;
	errno = 0;
	double v = strtod(s, &end);
	if (end == s || *end != '\0' || !isfinite(v))
		return -EINVAL;
	if (errno == ERANGE || v < min || v > max)
		return -ERANGE;
	*out = v;
	return 0;
}

int
cli_parse_size(const char *s, uint64_t *out)
{
	static const struct {
		const char *name;
		unsigned shift;
	} units[] = {
	    {"", 0},     {"b", 0},   {"k", 10},   {"kb", 10},
	    {"kib", 10}, {"m", 20},  {"mb", 20},  {"mib", 20},
	    {"g", 30},   {"gb", 30}, {"gib", 30},
	};

	if (s[0] < '0' || s[0] > '9')
		return -EINVAL;
	char *end;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno == ERANGE)
		return -ERANGE;
	for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
		if (strcasecmp(end, units[i].name) != 0)
			continue;
		if (v > (UINT64_MAX >> units[i].shift))
			return -ERANGE;
		*out = (uint64_t)v << units[i].shift;
		return 0;
	}
	return -EINVAL;
}

int
cli_parse_duration_ms(const char *s, uint64_t unit_ms, uint64_t *out)
{
	static const struct {
		const char *name;
		double ms;
	} units[] = {
	    {"ms", 1}, {"s", 1e3}, {"m", 60e3}, {"min", 60e3}, {"h", 3600e3},
	};

	if (!((s[0] >= '0' && s[0] <= '9') || s[0] == '.'))
		return -EINVAL;
	char *end;
	errno = 0;
	double v = strtod(s, &end);
	if (end == s || !isfinite(v))
		return -EINVAL;
	double mult = -1;
	if (*end == '\0') {
		mult = (double)unit_ms;
	} else {
		for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
			if (strcmp(end, units[i].name) == 0)
				mult = units[i].ms;
		}
	}
	if (mult < 0)
		return -EINVAL;
	v *= mult;
	/* Well inside uint64_t and exactly representable as a double. */
	if (errno == ERANGE || v > 9e15)
		return -ERANGE;
	*out = (uint64_t)(v + 0.5);
	return 0;
}

int
cli_read_file(const char *path, size_t max, uint8_t **out, size_t *len)
{
	int fd = STDIN_FILENO;
	uint8_t *p = NULL;
	size_t n = 0, cap = 0;
	int rv = 0;

	*out = NULL;
	*len = 0;
	if (path != NULL && strcmp(path, "-") != 0) {
		fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			return -errno;
	}
	for (;;) {
		if (n == cap) {
			/* Grow to one byte past max at most: enough to tell
			 * "exactly max" from "too big". */
			size_t ncap = cap ? cap * 2 : 64 * 1024;
			if (ncap > max + 1)
				ncap = max + 1;
			if (ncap <= cap) {
				rv = DYN_ETOOBIG;
				goto out;
			}
			uint8_t *q = mem_realloc(p, ncap);
			if (q == NULL) {
				rv = -ENOMEM;
				goto out;
			}
			p = q;
			cap = ncap;
		}
		ssize_t r = read(fd, p + n, cap - n);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			rv = -errno;
			goto out;
		}
		if (r == 0)
			break;
		n += (size_t)r;
		if (n > max) {
			rv = DYN_ETOOBIG;
			goto out;
		}
	}
	if (p == NULL && (p = mem_alloc(1)) == NULL) {
		rv = -ENOMEM;
		goto out;
	}
	*out = p;
	*len = n;
	p = NULL;
out:
	mem_free(p);
	if (fd != STDIN_FILENO)
		close(fd);
	return rv;
}

int
cli_key_load(const char *path, struct auth_key *k, const char **used)
{
	if (path == NULL || path[0] == '\0')
		path = getenv(CLI_KEY_ENV);
	if (path != NULL && path[0] == '\0')
		path = NULL;
	if (used != NULL)
		*used = path;
	if (path == NULL)
		return -ENOKEY;
	return auth_key_load(path, k);
}
