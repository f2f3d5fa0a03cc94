/*
 * history — the fault tests' checker of acknowledged writes.
 *
 * Every acknowledged put is recorded with its key, its (unique) value, the
 * context it was written with and the context the put returned (its own
 * version's: past plus dot).  After the faults heal and the cluster
 * converges, each one must be
 *   present     its value is one of the key's versions now, or
 *   superseded  a later acknowledged put of the key was written with a
 *               context that covers it (descends from its returned one);
 * anything else is lost.  Contexts are decoded with the cluster key, as a
 * node would.  Thread-safe.
 */
#ifndef DYN_HISTORY_H
#define DYN_HISTORY_H

#include <stddef.h>
#include <stdint.h>

#include "auth.h"
#include "client.h"

struct history;

struct history_counts {
	size_t acknowledged, present, superseded, lost;
};

struct history *history_new(const struct auth_key *key);
void history_free(struct history *h);
/* Record an acknowledged put. */
void history_put(struct history *h, const char *key, const char *value,
    const uint8_t *ctx, size_t ctx_len, const uint8_t *new_ctx,
    size_t new_ctx_len);
/* Check every recorded put against the cluster as c reads it now. */
struct history_counts history_check(struct history *h, struct dyn_client *c);

#endif
