/*
 * vclock — version vectors: a bounded list of (actor, counter, timestamp),
 * plus a few exact dots beyond it.
 *
 * An actor is a 64-bit id a node draws at random when its data directory is
 * created, so a wiped node comes back as a new actor and can never reuse a
 * dot it issued before.  Entry (X, 5) covers X's events 1..5.  An exact dot
 * (X, 7) covers that one event and no other: a context that saw a version
 * with dot (X, 7) but not the sibling (X, 6) must not claim (X, 6), or a
 * put under it would delete the sibling unseen (dotted version vector
 * sets).  A dot that continues its actor's entry is folded into it, so the
 * dots only name the holes.
 *
 * A clock holds at most VCLOCK_MAX entries (the paper's bound of 10) and
 * VCLOCK_DOTS_MAX dots; when an operation would grow it past that, the
 * entry or dot with the oldest timestamp is dropped.  Dropping makes
 * versions look concurrent (an extra sibling).  Known limit: a
 * coordinator derives its next counter from what
 * the object records of it, so if truncation drops every trace of one of
 * its dots (more than 8 holes, or 10 actors, in one history at once) it
 * can issue that dot again, and a stale replica's merge may then drop the
 * new write; a per-node counter kept by the node would close this.
 *
 * Clocks are plain values (no heap), kept sorted (entries by actor, dots by
 * actor then counter) and normalised, so equal clocks encode the same.
 */
#ifndef DYN_VCLOCK_H
#define DYN_VCLOCK_H

#include <stdbool.h>
#include <stdint.h>

#include "buf.h"

#define VCLOCK_MAX 10
#define VCLOCK_DOTS_MAX 8

struct vclock_entry {
	uint64_t actor;
	uint64_t counter;
	uint64_t ts_ms; /* wall-clock time this entry last advanced */
};

struct vclock {
	uint32_t n;
	struct vclock_entry e[VCLOCK_MAX];
	uint32_t nd; /* exact dots, none covered by or next to an entry */
	struct vclock_entry d[VCLOCK_DOTS_MAX];
};

/* A dot: one event, the counter-th write coordinated by actor. */
struct dot {
	uint64_t actor;
	uint64_t counter;
};

/* Dots in order: by actor, then counter (-1, 0, 1). */
int dot_cmp(const struct dot *a, const struct dot *b);

void vclock_init(struct vclock *c);
/* Counter of actor's entry in c (its events 1..counter), 0 when absent. */
uint64_t vclock_get(const struct vclock *c, uint64_t actor);
/* The largest counter of actor that c names, entry or exact dot. */
uint64_t vclock_top(const struct vclock *c, uint64_t actor);
/* Raise actor's entry to at least counter (adding it, truncating if full):
 * c then covers all of actor's events up to counter. */
void vclock_raise(struct vclock *c, uint64_t actor, uint64_t counter,
    uint64_t ts_ms);
/* Add the one event (actor, counter): folded into the entry when it
 * continues it, else kept as an exact dot. */
void vclock_add_dot(struct vclock *c, const struct dot *d, uint64_t ts_ms);
/* Does c's history include the dot? (c[actor] >= counter, or the dot) */
bool vclock_covers(const struct vclock *c, const struct dot *d);
/* Does a's history include all of b's? */
bool vclock_descends(const struct vclock *a, const struct vclock *b);
/* dst = the union of both histories (pointwise max and every dot), then
 * truncated. */
void vclock_merge(struct vclock *dst, const struct vclock *src);
/* Same history (timestamps are not compared). */
bool vclock_equal(const struct vclock *a, const struct vclock *b);

/* u16 count then count * (actor u64, counter u64, ts u64); then the dots
 * the same way. */
void vclock_encode(const struct vclock *c, struct buf *out);
/* DYN_EBADMSG on truncation, counts over the bounds, unsorted or duplicate
 * entries or dots, a zero counter, or a dot not in normal form (covered
 * by or next to its entry). */
int vclock_decode(struct rd *in, struct vclock *out);

#endif
