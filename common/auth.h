/*
 * auth — the cluster key and HMAC-SHA256 tags (OpenSSL).
 *
 * Every process of a cluster holds the same 32-byte key, kept in a key file
 * as 64 hex digits (`dynamoctl keygen FILE` writes one, mode 0600).  Every
 * message between processes and every get->put context carries a tag under
 * it; a process without the key can neither read nor write.
 */
#ifndef DYN_AUTH_H
#define DYN_AUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define AUTH_KEY_LEN 32
#define AUTH_TAG_LEN 32

struct auth_key {
	uint8_t k[AUTH_KEY_LEN];
};

/* Fresh random key from OpenSSL's CSPRNG. */
int auth_key_generate(struct auth_key *out);
/* Write the key file (hex, newline, mode 0600); -EEXIST if it exists. */
int auth_key_write(const char *path, const struct auth_key *k);
/* Read a key file: 64 hex digits, surrounding white space allowed.
 * -ENOENT / -EACCES from the file system, -EINVAL for a malformed file. */
int auth_key_load(const char *path, struct auth_key *out);

/* tag = HMAC-SHA256(key, a || b); b may be NULL with blen 0.  Two parts so
 * callers can tag a domain prefix and a payload without copying. */
int auth_tag(const struct auth_key *k, const void *a, size_t alen,
    const void *b, size_t blen, uint8_t tag[AUTH_TAG_LEN]);
/* Constant-time check of a tag made by auth_tag. */
bool auth_check(const struct auth_key *k, const void *a, size_t alen,
    const void *b, size_t blen, const uint8_t tag[AUTH_TAG_LEN]);

#endif
