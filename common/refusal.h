/*
 * refusal — the node's unsigned "no" to a request whose tag did not check
 * (wrong cluster key, corrupted in transit).  Eight fixed bytes, which no
 * wire message can be (a wire message is at least a header and a tag),
 * so a client tells it apart before decoding.
 *
 * Anyone can forge a refusal: it is trusted for nothing but turning what
 * would be a timeout into a clear error (DYN_EREFUSED).  It carries no
 * request id and no status; a client never retries, fails over or
 * changes state because of it beyond ending that one call.
 */
#ifndef DYN_REFUSAL_H
#define DYN_REFUSAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define REFUSAL_LEN 8

/* The refusal's bytes. */
void refusal_encode(uint8_t out[REFUSAL_LEN]);
/* Is buf[0..len) a refusal? */
bool refusal_is(const void *buf, size_t len);

#endif
