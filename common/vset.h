/*
 * vset — a stored object: a set of concurrent versions (siblings) kept with
 * dotted version vectors, so that no concurrent write is ever lost.
 *
 * Each version carries the dot that created it and the clock of the context
 * its writer had seen (its causal past).  Version w makes version v obsolete
 * when v's dot is in w's history: w.past covers v.dot, or w.dot == v.dot.
 * A put with context C creates a new dot for the coordinating actor and
 * removes exactly the versions C covers; anything C did not see (a blind put
 * through the same node, say) stays as a sibling.  Plain per-node vector
 * clocks would wrongly let the second blind put supersede the first.
 *
 * A deletion is a version whose value is a tombstone.  A set whose versions
 * are all tombstones reads as "not found" but still has a context.
 *
 * Memory: a vset owns its versions and their values (mem_alloc'd);
 * vset_fini frees them.  Versions are kept sorted by dot, so two replicas
 * holding the same versions encode them to the same bytes.
 */
#ifndef DYN_VSET_H
#define DYN_VSET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "vclock.h"

#define VSET_MAX_VERSIONS 1024 /* decoder cap on siblings */

struct version {
	struct dot dot;
	struct vclock past; /* the context the writer had seen */
	uint64_t ts_ms;     /* wall-clock write time */
	bool tombstone;
	uint8_t *value; /* owned; NULL when len == 0 */
	size_t len;
};

struct vset {
	uint32_t n;
	struct version *v; /* owned array of n versions */
};

void vset_init(struct vset *s);
void vset_fini(struct vset *s);
/* Deep copy; dst must be initialised (its old contents are freed). */
int vset_copy(struct vset *dst, const struct vset *src);
int version_copy(struct version *dst, const struct version *src);
void version_fini(struct version *v);

/*
 * The coordinator's write: actor makes a new version with value (or a
 * tombstone) and context ctx (NULL: a blind put, nothing seen).  Versions
 * ctx covers are removed; the new dot's counter is one more than the largest
 * counter of actor anywhere in s or ctx.  *newv (if not NULL) points at the
 * new version inside s, valid until s is next changed.  On error s is
 * unchanged: -ENOMEM, DYN_ETOOBIG when the result would hold more than
 * VSET_MAX_VERSIONS versions (it could not be decoded again).
 */
int vset_put(struct vset *s, const struct vclock *ctx, uint64_t actor,
    uint64_t now_ms, const void *value, size_t len, bool tombstone,
    const struct version **newv);

/*
 * Replica merge (sync): dst becomes the union of both sets minus every
 * version made obsolete by another.  Returns 1 when dst changed, 0 when src
 * added nothing, or a negative error (dst unchanged): -ENOMEM, or
 * DYN_ETOOBIG when the result would exceed VSET_MAX_VERSIONS.
 */
int vset_merge(struct vset *dst, const struct vset *src);

/* The context of a read: every version's past plus its dot, merged. */
void vset_context(const struct vset *s, struct vclock *out);
/* The context of one version: its past plus its dot. */
void version_context(const struct version *v, struct vclock *out);
/* Number of versions that are not tombstones. */
uint32_t vset_live(const struct vset *s);
/* Does a hold every version b holds (so b has nothing new for a)? */
bool vset_contains(const struct vset *a, const struct vset *b);

/* Encoding: u32 count, then per version: dot (actor u64, counter u64),
 * ts u64, flags u8 (bit 0 tombstone), past (vclock encoding), value blob. */
void vset_encode(const struct vset *s, struct buf *out);
/* DYN_EBADMSG on any inconsistency (truncation, count over the cap, values
 * over max_value, unsorted or duplicate dots, unknown flags); out is left
 * empty on error.  Values are copied out of the input.  out need not be
 * initialised: it is overwritten, not freed. */
int vset_decode(struct rd *in, size_t max_value, struct vset *out);

#endif
