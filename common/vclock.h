/*
 * vclock — version vectors: a bounded list of (actor, counter, timestamp).
 *
 * An actor is a 64-bit id a node draws at random when its data directory is
 * created, so a wiped node comes back as a new actor and can never reuse a
 * dot it issued before.  A clock holds at most VCLOCK_MAX entries (the
 * paper's bound of 10); when an operation would grow it past that, the entry
 * with the oldest timestamp is dropped.  Dropping can only make versions look
 * concurrent (an extra sibling), never lose one.
 *
 * Clocks are plain values (no heap), kept sorted by actor.
 */
#ifndef DYN_VCLOCK_H
#define DYN_VCLOCK_H

#include <stdbool.h>
#include <stdint.h>

#include "buf.h"

#define VCLOCK_MAX 10

struct vclock_entry {
	uint64_t actor;
	uint64_t counter;
	uint64_t ts_ms; /* wall-clock time this entry last advanced */
};

struct vclock {
	uint32_t n;
	struct vclock_entry e[VCLOCK_MAX];
};

/* A dot: one event, the counter-th write coordinated by actor. */
struct dot {
	uint64_t actor;
	uint64_t counter;
};

void vclock_init(struct vclock *c);
/* Counter of actor in c, 0 when absent. */
uint64_t vclock_get(const struct vclock *c, uint64_t actor);
/* Raise actor's entry to at least counter (adding it, truncating if full). */
void vclock_raise(struct vclock *c, uint64_t actor, uint64_t counter,
    uint64_t ts_ms);
/* Does c's history include the dot? (c[actor] >= counter) */
bool vclock_covers(const struct vclock *c, const struct dot *d);
/* a >= b pointwise (a descends from or equals b). */
bool vclock_descends(const struct vclock *a, const struct vclock *b);
/* dst = pointwise max(dst, src), then truncated to VCLOCK_MAX. */
void vclock_merge(struct vclock *dst, const struct vclock *src);
/* Same actors and counters (timestamps are not compared). */
bool vclock_equal(const struct vclock *a, const struct vclock *b);

/* u16 count then count * (actor u64, counter u64, ts u64). */
void vclock_encode(const struct vclock *c, struct buf *out);
/* DYN_EBADMSG on truncation, count > VCLOCK_MAX, unsorted or duplicate
 * actors, or a zero counter. */
int vclock_decode(struct rd *in, struct vclock *out);

#endif
