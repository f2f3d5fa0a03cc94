/*
 * cli — helpers shared by the command-line front ends (dynamoctl,
 * dynamo-bench): base64 (OpenSSL), JSON string output, strict parsing of
 * numbers, sizes and durations, reading a whole file, and finding the
 * cluster key file.  Nothing here talks to the cluster (that is client.h),
 * and the node does not use this module.
 */
#ifndef DYN_CLI_H
#define DYN_CLI_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "auth.h"

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

/* Load the cluster key from path, or when path is NULL from the file named
 * by $DYNAMO_CLUSTER_KEY_FILE.  *used (if not NULL) gets the path that was
 * tried (argv or environment memory, not copied), or NULL.  -ENOKEY when
 * neither names a file; else auth_key_load's errors. */
int cli_key_load(const char *path, struct auth_key *k, const char **used);

#endif
