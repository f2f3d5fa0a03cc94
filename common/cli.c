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
#include <stdarg.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "buf.h"
#include "err.h"
#include "json.h"
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

void
cli_json_str(FILE *f, const void *data, size_t len)
{
	struct buf b;
	buf_init(&b);
	json_put_str(&b, data, len); /* the one escaper (common/json) */
	if (buf_err(&b) == 0)
		fwrite(b.data, 1, b.len, f);
	else
		fputs("\"\"", f);
	buf_fini(&b);
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
cli_keys_load(const char *path, enum auth_role self, struct auth_keys *k,
    const char **used)
{
	if (path == NULL || path[0] == '\0')
		path = getenv(CLI_KEY_ENV);
	if (path != NULL && path[0] == '\0')
		path = NULL;
	if (used != NULL)
		*used = path;
	if (path == NULL)
		return -ENOKEY;
	struct auth_key_file f;
	int rc = auth_key_file_load(path, &f);
	if (rc == 0)
		rc = auth_keys_from_file(&f, self, k);
	OPENSSL_cleanse(&f, sizeof(f));
	return rc;
}

static const char *
env_path(const char *name)
{
	const char *p = getenv(name);
	return p && p[0] ? p : NULL;
}

int
cli_auth_load(const char *key_path, const char *cred_path,
    enum auth_role self, struct auth_keys *keys, struct cred *cred,
    bool *have_cred, char *err, size_t errlen)
{
	char why[512];
	int rc;

	*have_cred = false;
	if (key_path && cred_path) {
		snprintf(err, errlen, "--cred and --cluster-key are "
		    "alternatives (a credential carries its role's keys): "
		    "give one");
		return -EINVAL;
	}
	/* A flag beats the environment; of the environment's two, the
	 * credential. */
	if (!key_path && !cred_path && !(cred_path = env_path(CRED_ENV)))
		key_path = env_path(CLI_KEY_ENV);
	if (cred_path) {
		if ((rc = cred_load(cred_path, cred, why, sizeof(why))) != 0) {
			snprintf(err, errlen, "credential %s", why);
			return rc;
		}
		*keys = cred->keys;
		*have_cred = true;
		return 0;
	}
	if (!key_path) {
		snprintf(err, errlen, "no credential or cluster key: give "
		    "--cred FILE or --cluster-key FILE, or set $" CRED_ENV
		    " or $" CLI_KEY_ENV);
		return -ENOKEY;
	}
	if ((rc = cli_keys_load(key_path, self, keys, NULL)) != 0)
		snprintf(err, errlen, "cluster key %s: %s", key_path,
		    dyn_strerror(rc));
	return rc;
}

/* Config files (cli.h): a file's lines become "--name=value" options in
 * front of the command line's, checked here against the option table. */

#define CONFIG_MAX (1u << 20)

/* s[0..*len) without the white space around it. */
static const char *
trim(const char *s, size_t *len)
{
	size_t n = *len;
	while (n > 0 && is_space((unsigned char)*s)) {
		s++;
		n--;
	}
	while (n > 0 && is_space((unsigned char)s[n - 1]))
		n--;
	*len = n;
	return s;
}

/* s[0..len) is word. */
static bool
is_word(const char *s, size_t len, const char *word)
{
	return s != NULL && strlen(word) == len && memcmp(s, word, len) == 0;
}

static const struct option *
find_long(const struct option *opts, const char *name, size_t len)
{
	for (const struct option *o = opts; o->name != NULL; o++)
		if (is_word(name, len, o->name))
			return o;
	return NULL;
}

/* "--name" or "--name=value", mem_alloc'd. */
static char *
long_arg(const char *name, const char *value, size_t vlen)
{
	size_t nlen = strlen(name);
	size_t total = 2 + nlen + (value ? 1 + vlen : 0) + 1;
	char *s = mem_alloc(total);
	if (s == NULL)
		return NULL;
	memcpy(s, "--", 2);
	memcpy(s + 2, name, nlen);
	if (value) {
		s[2 + nlen] = '=';
		memcpy(s + 3 + nlen, value, vlen);
	}
	s[total - 1] = '\0';
	return s;
}

/*
 * One line: 1 and *arg set (mem_alloc'd) for an option, 0 for a line that
 * adds none (blank, comment, a switch set to false), or an error with err
 * set.
 */
static int
config_line(const char *path, unsigned lineno, const char *p, size_t len,
            const struct option *opts, char **arg, char *err, size_t errlen)
{
	const char *eq, *name, *value = NULL;
	size_t nlen, vlen = 0;

	*arg = NULL;
	p = trim(p, &len);
	if (len == 0 || p[0] == '#')
		return 0;
	if (memchr(p, '\0', len) != NULL) {
		snprintf(err, errlen, "%s:%u: a NUL byte", path, lineno);
		return -EINVAL;
	}
	eq = memchr(p, '=', len);
	nlen = eq ? (size_t)(eq - p) : len;
	name = trim(p, &nlen);
	if (eq) {
		vlen = len - (size_t)(eq + 1 - p);
		value = trim(eq + 1, &vlen);
	}
	const struct option *o = find_long(opts, name, nlen);
	if (o == NULL) {
		snprintf(err, errlen, "%s:%u: unknown option '%.*s'", path,
		         lineno, (int)nlen, name);
		return -EINVAL;
	}
	if (strcmp(o->name, "config") == 0 || strcmp(o->name, "help") == 0) {
		snprintf(err, errlen,
		         "%s:%u: '%s' cannot be set in a config file", path,
		         lineno, o->name);
		return -EINVAL;
	}
	if (o->has_arg == no_argument) {
		if (is_word(value, vlen, "false"))
			return 0;
		if (value != NULL && !is_word(value, vlen, "true")) {
			snprintf(err, errlen,
			         "%s:%u: %s is a switch: write "
			         "'%s = true' or '%s = false', not '%.*s'",
			         path, lineno, o->name, o->name, o->name,
			         (int)vlen, value);
			return -EINVAL;
		}
		value = NULL;
	} else if (o->has_arg == required_argument &&
	           (value == NULL || vlen == 0)) {
		snprintf(err, errlen, "%s:%u: %s needs a value ('%s = VALUE')",
		         path, lineno, o->name, o->name);
		return -EINVAL;
	} else if (value != NULL && vlen == 0) {
		value = NULL; /* optional_argument left empty */
	}
	if ((*arg = long_arg(o->name, value, vlen)) == NULL) {
		snprintf(err, errlen, "%s: out of memory", path);
		return -ENOMEM;
	}
	return 1;
}

/* The value of --config in argv, or NULL; -EINVAL when given twice. */
static int
find_config(int argc, char **argv, const char *shortopts,
            const struct option *opts, int config_val, const char **path)
{
	int c, rv = 0, saved = opterr;

	*path = NULL;
	opterr = 0; /* the caller's own pass reports what is wrong */
	optind = 0;
	while ((c = getopt_long(argc, argv, shortopts, opts, NULL)) != -1) {
		if (c != config_val)
			continue;
		if (*path != NULL)
			rv = -EINVAL;
		*path = optarg;
	}
	opterr = saved;
	optind = 0;
	return rv;
}

int
cli_args_init(struct cli_args *a, int argc, char **argv, const char *shortopts,
              const struct option *opts, int config_val, char *err,
              size_t errlen)
{
	uint8_t *text = NULL;
	size_t len = 0, nlines = 1;
	int rv;

	memset(a, 0, sizeof(*a));
	err[0] = '\0';
	if ((rv = find_config(argc, argv, shortopts, opts, config_val,
	                      &a->path)) != 0) {
		snprintf(err, errlen, "--config given twice");
		return rv;
	}
	if (a->path != NULL) {
		if ((rv = cli_read_file(a->path, CONFIG_MAX, &text, &len)) !=
		    0) {
			snprintf(err, errlen, "%s: %s", a->path,
			         rv == DYN_ETOOBIG
			             ? "over 1 MiB, not a config file"
			             : dyn_strerror(rv));
			return rv;
		}
		for (size_t i = 0; i < len; i++)
			nlines += text[i] == '\n';
	}
	/* At most one option a line, plus the command line and the NULL. */
	a->argv = mem_calloc((size_t)argc + nlines + 1, sizeof(*a->argv));
	a->lines = mem_calloc(nlines, sizeof(*a->lines));
	if (a->argv == NULL || a->lines == NULL) {
		snprintf(err, errlen, "out of memory");
		rv = -ENOMEM;
		goto out;
	}
	a->argv[0] = argv[0];
	const char *p = (const char *)text, *end = p + len;
	for (unsigned lineno = 1; p != NULL && p < end; lineno++) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t l = nl ? (size_t)(nl - p) : (size_t)(end - p);
		char *arg;
		rv = config_line(a->path, lineno, p, l, opts, &arg, err,
		                 errlen);
		if (rv < 0)
			goto out;
		if (rv == 1) {
			a->lines[a->nfile] = lineno;
			a->argv[1 + a->nfile++] = arg;
		}
		p = nl ? nl + 1 : end;
	}
	rv = 0;
	for (int i = 1; i < argc; i++)
		a->argv[1 + a->nfile + i - 1] = argv[i];
	a->argc = 1 + a->nfile + (argc > 0 ? argc - 1 : 0);
out:
	mem_free(text);
	return rv;
}

void
cli_args_fini(struct cli_args *a)
{
	if (a == NULL)
		return;
	for (int i = 0; a->argv != NULL && i < a->nfile; i++)
		mem_free(a->argv[1 + i]);
	mem_free(a->argv);
	mem_free(a->lines);
	memset(a, 0, sizeof(*a));
}

unsigned
cli_args_line(const struct cli_args *a, int ind)
{
	return ind >= 1 && ind <= a->nfile ? a->lines[ind - 1] : 0;
}

void
cli_args_error(const struct cli_args *a, int ind, const char *prog,
               const char *fmt, ...)
{
	va_list ap;
	unsigned line = cli_args_line(a, ind);

	if (line != 0)
		fprintf(stderr, "%s: %s:%u: ", prog, a->path, line);
	else
		fprintf(stderr, "%s: ", prog);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}
