/*
 * context — the opaque get->put context handed to clients.
 *
 *   u8 format (2) | vclock encoding | 32-byte HMAC-SHA256 tag
 *
 * The tag is over "dynamo-context-v2" || key position || the clock, under
 * the cluster key: a node accepts back only a context it (or a peer) issued
 * for that very key, so a forged, corrupted or misplaced context is refused
 * with DYN_ECONTEXT instead of silently dropping versions.  An empty context
 * (length 0) means "nothing seen": a blind put.
 */
#ifndef DYN_CONTEXT_H
#define DYN_CONTEXT_H

#include <stddef.h>
#include <stdint.h>

#include "auth.h"
#include "buf.h"
#include "keypos.h"
#include "vclock.h"

#define CONTEXT_MAX_LEN 512

/* Append the context bytes for clock c of the key at pos to out. */
void context_encode(const struct auth_key *k, const struct keypos *pos,
    const struct vclock *c, struct buf *out);
/* Verify and decode.  len 0 gives an empty clock.  DYN_ECONTEXT for a bad
 * tag, DYN_EBADMSG for a malformed context. */
int context_decode(const struct auth_key *k, const struct keypos *pos,
    const uint8_t *p, size_t len, struct vclock *out);

#endif
