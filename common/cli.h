/*
 * cli — helpers shared by the command-line programs (dynamoctl,
 * dynamo-bench, and dynamod for its --config file): base64 (OpenSSL), JSON
 * string output, strict parsing of numbers, sizes and durations, reading a
 * whole file, finding the cluster key file, and config files of long
 * options.  Nothing here talks to the cluster (that is client.h).
 */
#ifndef DYN_CLI_H
#define DYN_CLI_H

#include <getopt.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "auth.h"
#include "cred.h"

/* Environment variable naming the key file when --cluster-key is absent. */
#define CLI_KEY_ENV "DYNAMO_CLUSTER_KEY_FILE"

/* Standard base64 with padding, NUL-terminated.  *out is mem_alloc'd (the
 * caller mem_frees it).  -ENOMEM, or DYN_ETOOBIG past 1 GiB. */
int cli_b64_encode(const void *p, size_t len, char **out);
/* Decode standard base64 (padding required; white space around the text
 * is ignored).  "" decodes to 0 bytes.  *out is mem_alloc'd even then (the
 * caller mem_frees it).  -EINVAL for malformed text, -ENOMEM. */
int cli_b64_decode(const char *s, uint8_t **out, size_t *len);

/* Write p[0..len) to f as a JSON string, quotes included.  Valid UTF-8
 * passes through; control characters, '"' and '\' are escaped, and each
 * byte that is not part of valid UTF-8 becomes U+FFFD, so the output is
 * always valid JSON (base64 is the lossless form). */
void cli_json_str(FILE *f, const void *p, size_t len);

/* Whole decimal number in [min, max]; -EINVAL if malformed, -ERANGE if out
 * of range. */
int cli_parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *out);
/* A finite decimal number in [min, max]; -EINVAL / -ERANGE. */
int cli_parse_double(const char *s, double min, double max, double *out);
/* Byte count with an optional binary suffix: 512, 4k, 4KiB, 1M, 2g (case
 * does not matter).  -EINVAL / -ERANGE. */
int cli_parse_size(const char *s, uint64_t *out);
/* Duration in milliseconds: a number with a unit (ms, s, m, h), or a bare
 * number counted in unit_ms (1000 reads "10" as seconds).  Fractions are
 * allowed ("1.5s").  -EINVAL / -ERANGE. */
int cli_parse_duration_ms(const char *s, uint64_t unit_ms, uint64_t *out);

/* Read all of a file (path NULL or "-": stdin) into *out, mem_alloc'd (the
 * caller mem_frees it).  DYN_ETOOBIG if it holds more than max bytes;
 * -errno from the file system. */
int cli_read_file(const char *path, size_t max, uint8_t **out, size_t *len);

/* Load the cluster's role keys, signing as self, from the key file at
 * path (auth.h: one key, or a rotation's two), or when path is NULL from
 * the file named by $DYNAMO_CLUSTER_KEY_FILE.  *used (if not NULL) gets
 * the path that was tried (argv or environment memory, not copied), or
 * NULL.  -ENOKEY when neither names a file; else the loader's errors. */
int cli_keys_load(const char *path, enum auth_role self, struct auth_keys *k,
    const char **used);

/*
 * A program's keys, from a credential or from the cluster key file, which
 * are alternatives: the credential cred_path (--cred) or key_path
 * (--cluster-key), whichever was given (both: -EINVAL); else the one named
 * by $DYNAMO_CRED_FILE or, without it, $DYNAMO_CLUSTER_KEY_FILE.  From a
 * credential: its role keys (signing as its role) and *cred, which the
 * caller frees with cred_fini when *have_cred; from a key file: the keys
 * derived from it, signing as self.  0, or an error with a message in err
 * ("credential FILE: ..."): -ENOKEY when nothing names either.
 */
int cli_auth_load(const char *key_path, const char *cred_path,
    enum auth_role self, struct auth_keys *keys, struct cred *cred,
    bool *have_cred, char *err, size_t errlen);

/*
 * Config files of long options, for a program that takes --config FILE.
 * One option a line, "name = value", name a long option of the program's
 * getopt_long table without its dashes ("listen = tcp://0.0.0.0:7100");
 * white space around name and value is dropped; blank lines and lines
 * whose first non-blank character is '#' are skipped (a '#' after a value
 * is part of it).  An option that takes no argument (a switch) is written
 * "name = true", or just "name"; "name = false" leaves it out.  "config"
 * and "help" cannot be set in a file.
 *
 * The file becomes options in front of the command line's:
 *
 *   argv:   prog --name b --config f.conf       f.conf:  name = a
 *   a.argv: prog --name=a --name b --config f.conf
 *
 * so one getopt_long loop over a.argv parses both, and a flag on the
 * command line overrides the file's (the last one wins; a repeatable
 * option collects both).  Names are matched exactly (getopt_long's
 * abbreviations are for the command line only) and every line is checked
 * here, so getopt_long never rejects what came from the file; values are
 * the program's to check, and cli_args_error says which line held one.
 */
struct cli_args {
	int argc;
	char **argv;      /* argv[argc] == NULL */
	const char *path; /* the config file (caller's argv), or NULL */
	int nfile;        /* a.argv[1..nfile] came from the file */
	unsigned *lines;  /* lines[i]: the file's line of a.argv[1 + i] */
};

/* Find --config FILE in argv (the option of opts whose val is config_val,
 * by getopt_long with shortopts; given twice is an error) and build
 * a->argv: argv[0], the file's options, argv[1..].  a->argv and the
 * file's strings are mem_alloc'd and owned by a; the command line's
 * strings are argv's (they must outlive a).  Leaves getopt reset
 * (optind = 0) for the caller's loop over a->argv.  0, or an error with a
 * message in err ("FILE:LINE: unknown option 'x'"): -EINVAL for a bad
 * line, -errno or DYN_ETOOBIG (over 1 MiB) reading the file, -ENOMEM.
 * cli_args_fini(a) is needed either way. */
int cli_args_init(struct cli_args *a, int argc, char **argv,
                  const char *shortopts, const struct option *opts,
                  int config_val, char *err, size_t errlen);
/* Free what a owns; a zeroed or half-built a is fine. */
void cli_args_fini(struct cli_args *a);
/* The config file line a->argv[ind] came from; 0: the command line. */
unsigned cli_args_line(const struct cli_args *a, int ind);
/* Print "prog: FILE:LINE: message" to stderr when a->argv[ind] came from
 * the config file, "prog: message" otherwise (after getopt_long returned
 * an option, ind is optind - 1). */
void cli_args_error(const struct cli_args *a, int ind, const char *prog,
                    const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

#endif
