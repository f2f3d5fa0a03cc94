/*
 * blob — content-addressed, immutable values ("blobs"), and the references
 * to them that other values carry.
 *
 * A blob's name is HMAC-SHA256(blob key, content); the blob key is derived
 * from the cluster key.  The same bytes always get the same name, so every
 * version, sibling and copy that holds them shares one stored blob, while a
 * name tells nothing about the content to anyone without the key (a plain
 * content hash would let an observer confirm a guess).
 *
 * Keys (exactly BLOB_KEY_LEN bytes; such keys are reserved for blobs):
 *   'B' name[32]   a data blob: opaque bytes
 *   'R' name[32]   a reference blob: its value starts with a reference
 *                  header (below), e.g. one page of a big file's chunk list
 *
 * A blob is stored as a version set holding one version with the fixed dot
 * (BLOB_ACTOR, 1), no past and time 0: every put of the same blob makes the
 * same version, replica merges dedupe it, and a second put changes nothing.
 * Blobs are never overwritten and never tombstoned: the nodes' garbage
 * collector (node/gc.c) deletes the ones no live value references.
 *
 * Reference header: any value (a blob's or another record's) that names
 * blobs starts with
 *   "DREF" u32 count  count * (kind u8, name[32])
 * followed by the rest of the value, opaque to the node.  The collector
 * reads these headers, never what follows.  A data blob ('B') is never
 * parsed, so user content cannot keep blobs alive by accident.
 */
#ifndef DYN_BLOB_H
#define DYN_BLOB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "auth.h"
#include "buf.h"

#define BLOB_NAME_LEN 32
#define BLOB_KEY_LEN  (1 + BLOB_NAME_LEN)
#define BLOB_DATA     'B'
#define BLOB_REFS     'R'
#define BLOB_ACTOR    0 /* the dot's actor (node actors are never 0) */
#define BLOB_REF_LEN  BLOB_KEY_LEN
#define BLOB_REFS_MAX (1u << 20) /* references in one header */

/* The key names are made with, derived from the cluster key. */
struct blob_key {
	uint8_t k[32];
};

void blob_key_derive(const struct auth_key *cluster, struct blob_key *out);
/* name = HMAC-SHA256(k, data). */
void blob_name(const struct blob_key *k, const void *data, size_t len,
    uint8_t name[BLOB_NAME_LEN]);
/* key = kind || name. */
void blob_key(uint8_t kind, const uint8_t name[BLOB_NAME_LEN],
    uint8_t key[BLOB_KEY_LEN]);
/* Is key a blob's key (BLOB_KEY_LEN bytes, 'B' or 'R' first)? */
bool blob_is_key(const void *key, size_t klen);

/* Append the header for n references (each BLOB_REF_LEN bytes: a blob's
 * key) to out (errors sticky in out). */
void blob_refs_encode(struct buf *out, const uint8_t *refs, uint32_t n);
/* The header at the start of value: *refs points at n references inside
 * value (n = 0 and *hdr = 0 when value has no header), *hdr gets the
 * header's length.  DYN_EBADMSG when a header is there but truncated, over
 * BLOB_REFS_MAX, or names a key that is not a blob's. */
int blob_refs_parse(const void *value, size_t len, const uint8_t **refs,
    uint32_t *n, size_t *hdr);

#endif
