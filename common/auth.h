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

/*
 * Roles.  A cluster has one master key (the key file above, or a cluster
 * CA's `cluster.key`); every key that tags messages is derived from it, one
 * per role:
 *   node    gossip, replication, handoff, transfer, anti-entropy: all
 *   client  get, put, delete, list, ring, ping
 *   admin   what a client may, and membership (leave, remove), status,
 *           compaction, fault injection (where the node enables it)
 * A message says which role's key tagged it (wire.h), and a node serves
 * only what that role may ask.  Whoever holds the master key holds every
 * role; a credential (common/cred.h) holds the keys of its role only (a
 * node's also the client's and admin's keys, to check their requests: a
 * node credential is trusted with everything).  The blob key names blobs
 * (common/blob.h); every role holds it, and it never rotates, since it is
 * part of the stored data's names.
 *
 * Rotation: a process may hold two generations of role keys, each with an
 * id (derived from its master) that messages carry; it signs with the
 * first and accepts either.
 */
enum auth_role { AUTH_NODE, AUTH_CLIENT, AUTH_ADMIN, AUTH_NROLES };
/* blob key = HMAC(master, this): blob_key_derive and auth_keys_from_master
 * must agree, or blobs written by one would not check for the other. */
#define AUTH_BLOB_DOMAIN "dynamo-blob-v1"
#define AUTH_ROLE_BIT(r) (1u << (r))
#define AUTH_ALL_ROLES   ((1u << AUTH_NROLES) - 1)
#define AUTH_GENS        2

struct auth_gen {
	uint32_t id;   /* 0: this slot is empty */
	unsigned have; /* AUTH_ROLE_BIT mask of the keys held */
	struct auth_key role[AUTH_NROLES];
};

struct auth_keys {
	struct auth_gen gen[AUTH_GENS]; /* [0] signs */
	struct auth_key blob;
	enum auth_role self; /* the role this process's own requests use */
};

/*
 * A key file during a rotation (`dynamoctl ca rotate`): one key per line,
 * the first signs and the second is accepted too, and a line "blob HEX",
 * the blob key (blobs keep their names when the master key changes; when
 * the line is absent the blob key is derived from the first key).  A file
 * of one key is the key file above.
 */
struct auth_key_file {
	struct auth_key master[AUTH_GENS];
	unsigned n; /* 1 or 2 */
	bool have_blob;
	struct auth_key blob;
};

/* -ENOENT / -EACCES from the file system, -EINVAL for a malformed file. */
int auth_key_file_load(const char *path, struct auth_key_file *out);
/* Write f to path, replacing it atomically (a new file, then renamed). */
int auth_key_file_write(const char *path, const struct auth_key_file *f);
/* The role keys of every generation of f (gen[0] from master[0]), signing
 * as self. */
int auth_keys_from_file(const struct auth_key_file *f, enum auth_role self,
    struct auth_keys *out);

/* Every role's keys derived from master (one generation), signing as
 * self. */
int auth_keys_from_master(const struct auth_key *master, enum auth_role self,
    struct auth_keys *out);
/* The key id of a master's generation (never 0). */
uint32_t auth_key_id(const struct auth_key *master);
/* This generation's key for role, or NULL when the keys lack it: id 0 means
 * the signing generation. */
const struct auth_key *auth_role_key(const struct auth_keys *k, uint32_t id,
    enum auth_role role);
/* "node", "client", "admin"; and back (-EINVAL for another word). */
const char *auth_role_name(enum auth_role r);
int auth_role_parse(const char *s, enum auth_role *out);

#endif
