/* Unit tests for common/cli's config files: lines to long options, the
 * command line overriding them, and every kind of bad line. */
#include <errno.h>
#include <getopt.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "cli.h"
#include "err.h"
#include "testmem.h"

enum { O_NAME = 256, O_LISTEN, O_SEED, O_NOFSYNC, O_LEVEL, O_CONFIG, O_HELP };

static const struct option opts[] = {
    {"name", required_argument, NULL, O_NAME},
    {"listen", required_argument, NULL, O_LISTEN},
    {"seed", required_argument, NULL, O_SEED},
    {"no-fsync", no_argument, NULL, O_NOFSYNC},
    {"level", optional_argument, NULL, O_LEVEL},
    {"config", required_argument, NULL, O_CONFIG},
    {"help", no_argument, NULL, O_HELP},
    {NULL, 0, NULL, 0},
};

/* A config file holding text; its path is static, valid until the next
 * call (the file is removed by the test). */
static const char *
config_file(const char *text)
{
	static char path[64];
	const char *dir = getenv("TMPDIR");
	snprintf(path, sizeof(path), "%s/test_cli.XXXXXX",
	         dir && strlen(dir) < 40 ? dir : "/tmp");
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	size_t len = strlen(text);
	assert_int_equal(write(fd, text, len), (ssize_t)len);
	close(fd);
	return path;
}

/* A writable argv (getopt permutes it) made of copies of the arguments,
 * which end with NULL. */
struct av {
	int argc;
	char *argv[16];
	char buf[1024];
};

static struct av *
av_make(struct av *v, ...)
{
	va_list ap;
	size_t used = 0;
	const char *s;

	v->argc = 0;
	va_start(ap, v);
	while ((s = va_arg(ap, const char *)) != NULL) {
		size_t l = strlen(s) + 1;
		assert_true(used + l <= sizeof(v->buf) && v->argc < 15);
		memcpy(v->buf + used, s, l);
		v->argv[v->argc++] = v->buf + used;
		used += l;
	}
	va_end(ap);
	v->argv[v->argc] = NULL;
	return v;
}

static int
init(struct cli_args *a, struct av *v, char *err, size_t errlen)
{
	return cli_args_init(a, v->argc, v->argv, "v", opts, O_CONFIG, err,
	                     errlen);
}

static void
assert_argv(const struct cli_args *a, const char *const *want)
{
	int i = 0;
	for (; want[i] != NULL; i++) {
		assert_true(i < a->argc);
		assert_string_equal(a->argv[i], want[i]);
	}
	assert_int_equal(a->argc, i);
	assert_null(a->argv[i]);
}

static void
test_no_config(void **state)
{
	(void)state;
	struct av v;
	struct cli_args a;
	char err[256];
	av_make(&v, "prog", "--name", "a", "-v", NULL);
	assert_int_equal(init(&a, &v, err, sizeof(err)), 0);
	assert_null(a.path);
	assert_int_equal(a.nfile, 0);
	assert_argv(&a,
	            (const char *const[]){"prog", "--name", "a", "-v", NULL});
	assert_int_equal(cli_args_line(&a, 1), 0);
	cli_args_fini(&a);
}

static void
test_lines_become_options(void **state)
{
	(void)state;
	const char *path =
	    config_file("# a comment\n"
	                "\n"
	                "   \t\n"
	                "name = a\n"
	                "  listen=tcp://0.0.0.0:7100  \r\n"
	                "  # indented comment\n"
	                "seed = tcp://x:1#not a comment\n"
	                "no-fsync = true\n"
	                "no-fsync = false\n"
	                "no-fsync\n"
	                "level\n"
	                "level = 3\n"
	                "name = x=y"); /* no newline at the end */
	char cfg[80];
	snprintf(cfg, sizeof(cfg), "--config=%s", path);
	struct av v;
	struct cli_args a;
	char err[256];
	av_make(&v, "prog", "--name", "b", cfg, NULL);
	assert_int_equal(init(&a, &v, err, sizeof(err)), 0);
	assert_string_equal(a.path, path);
	assert_argv(&a, (const char *const[]){
	                    "prog", "--name=a", "--listen=tcp://0.0.0.0:7100",
	                    "--seed=tcp://x:1#not a comment", "--no-fsync",
	                    "--no-fsync", "--level", "--level=3", "--name=x=y",
	                    "--name", "b", cfg, NULL});
	assert_int_equal(a.nfile, 8);
	static const unsigned lines[] = {4, 5, 7, 8, 10, 11, 12, 13};
	for (int i = 0; i < 8; i++)
		assert_int_equal(cli_args_line(&a, 1 + i), lines[i]);
	assert_int_equal(cli_args_line(&a, 9), 0); /* --name b */
	assert_int_equal(cli_args_line(&a, 0), 0);

	/* One getopt_long loop: the file first, the command line last. */
	const char *name = NULL;
	int c, nseed = 0, nfsync = 0;
	while ((c = getopt_long(a.argc, a.argv, "v", opts, NULL)) != -1) {
		assert_true(c != '?');
		if (c == O_NAME)
			name = optarg;
		nseed += c == O_SEED;
		nfsync += c == O_NOFSYNC;
	}
	assert_string_equal(name, "b");
	assert_int_equal(nseed, 1);
	assert_int_equal(nfsync, 2);
	assert_int_equal(optind, a.argc);
	cli_args_fini(&a);
	unlink(path);
}

static void
test_config_spellings(void **state)
{
	(void)state;
	const char *path = config_file("name = a\n");
	/* "--config FILE", after other options, and abbreviated. */
	struct av forms[3];
	av_make(&forms[0], "prog", "--config", path, NULL);
	av_make(&forms[1], "prog", "-v", "--name", "b", "--config", path,
	        NULL);
	av_make(&forms[2], "prog", "--conf", path, NULL);
	for (size_t i = 0; i < 3; i++) {
		struct cli_args a;
		char err[256];
		assert_int_equal(init(&a, &forms[i], err, sizeof(err)), 0);
		assert_string_equal(a.path, path);
		assert_int_equal(a.nfile, 1);
		assert_string_equal(a.argv[1], "--name=a");
		assert_int_equal(a.argc, forms[i].argc + 1);
		cli_args_fini(&a);
	}
	unlink(path);
}

static void
expect_error(const char *text, int want_rv, const char *want_err)
{
	const char *path = config_file(text);
	struct av v;
	struct cli_args a;
	char err[256], want[256];
	av_make(&v, "prog", "--config", path, NULL);
	assert_int_equal(init(&a, &v, err, sizeof(err)), want_rv);
	snprintf(want, sizeof(want), "%s:%s", path, want_err);
	assert_string_equal(err, want);
	cli_args_fini(&a);
	cli_args_fini(&a); /* twice is harmless */
	unlink(path);
}

static void
test_bad_lines(void **state)
{
	(void)state;
	expect_error("name = a\n\nlisen = x\n", -EINVAL,
	             "3: unknown option 'lisen'");
	expect_error("--name = a\n", -EINVAL, "1: unknown option '--name'");
	expect_error("= a\n", -EINVAL, "1: unknown option ''");
	expect_error("nam = a\n", -EINVAL, "1: unknown option 'nam'");
	expect_error("name\n", -EINVAL,
	             "1: name needs a value ('name = VALUE')");
	expect_error("name =  \n", -EINVAL,
	             "1: name needs a value ('name = VALUE')");
	expect_error("no-fsync = yes\n", -EINVAL,
	             "1: no-fsync is a switch: write 'no-fsync = true' or "
	             "'no-fsync = false', not 'yes'");
	expect_error("no-fsync =\n", -EINVAL,
	             "1: no-fsync is a switch: write 'no-fsync = true' or "
	             "'no-fsync = false', not ''");
	expect_error("config = /etc/x\n", -EINVAL,
	             "1: 'config' cannot be set in a config file");
	expect_error("# x\nhelp = true\n", -EINVAL,
	             "2: 'help' cannot be set in a config file");
}

static void
test_bad_files(void **state)
{
	(void)state;
	struct av v;
	struct cli_args a;
	char err[256];

	/* A NUL byte: config_file cannot write one, so do it here. */
	const char *path = config_file("name = a\n");
	FILE *f = fopen(path, "a");
	assert_non_null(f);
	fputs("name = b", f);
	fputc('\0', f);
	fputs("c\n", f);
	fclose(f);
	av_make(&v, "prog", "--config", path, NULL);
	assert_int_equal(init(&a, &v, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, ":2: a NUL byte"));
	cli_args_fini(&a);
	unlink(path);

	av_make(&v, "prog", "--config", "/nonexistent/x.conf", NULL);
	assert_int_equal(init(&a, &v, err, sizeof(err)), -ENOENT);
	assert_non_null(strstr(err, "/nonexistent/x.conf: "));
	cli_args_fini(&a);

	av_make(&v, "prog", "--config", "a", "--config=b", NULL);
	assert_int_equal(init(&a, &v, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "--config given twice");
	cli_args_fini(&a);

	/* Bad command-line options are the caller's loop's to report. */
	av_make(&v, "prog", "--bogus", "--config", NULL);
	assert_int_equal(init(&a, &v, err, sizeof(err)), 0);
	assert_null(a.path);
	assert_int_equal(a.argc, 3);
	cli_args_fini(&a);
}

static void
test_out_of_memory(void **state)
{
	(void)state;
	const char *path = config_file("name = a\nseed = b\nno-fsync\n");
	struct av v;
	struct cli_args a;
	char err[256];
	long n;

	mem_set_allocator(&testmem_failing);
	for (n = 0;; n++) {
		testmem_fail_after(n);
		av_make(&v, "prog", "--config", path, "-v", NULL);
		int rv = init(&a, &v, err, sizeof(err));
		cli_args_fini(&a);
		if (rv == 0)
			break;
		assert_int_equal(rv, -ENOMEM);
	}
	assert_true(n >= 5); /* the file, two arrays, three options */
	testmem_fail_after(-1);
	mem_set_allocator(&testmem_checked);
	unlink(path);
}

#define T(fn)                                                                 \
	cmocka_unit_test_setup_teardown(fn, testmem_setup, testmem_teardown)

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    T(test_no_config),        T(test_lines_become_options),
	    T(test_config_spellings), T(test_bad_lines),
	    T(test_bad_files),        T(test_out_of_memory),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
