/*
 * hist — fixed-bucket histograms that any thread adds to without a lock
 * (relaxed atomic increments: one bucket and the sum), read as cumulative
 * snapshots in the Prometheus manner.  It owns no clock, no unit and no
 * names: the caller picks the bounds (microseconds, records, ...) and
 * renders them (node/metrics.c).
 */
#ifndef DYN_HIST_H
#define DYN_HIST_H

#include <stdatomic.h>
#include <stdint.h>

#define HIST_BOUNDS_MAX 24

struct hist {
	const uint64_t *bounds; /* ascending upper bounds; not owned, must
	                           outlive h (a static table) */
	uint32_t nbounds;       /* <= HIST_BOUNDS_MAX */
	/* count[i]: values in (bounds[i-1], bounds[i]]; count[nbounds]:
	 * values over the last bound (the +Inf bucket's own part). */
	_Atomic uint64_t count[HIST_BOUNDS_MAX + 1];
	_Atomic uint64_t sum;
};

/* A cumulative copy: cum[i] values <= bounds[i], cum[nbounds] all of them
 * (== count).  Taken bucket by bucket while others may add, so it is one
 * consistent-enough view: cum is never decreasing and its last entry is
 * exactly count; sum may run a value or two apart. */
struct hist_snap {
	const uint64_t *bounds;
	uint32_t nbounds;
	uint64_t cum[HIST_BOUNDS_MAX + 1];
	uint64_t count;
	uint64_t sum;
};

/* Bounds past HIST_BOUNDS_MAX are ignored (the tables are static). */
void hist_init(struct hist *h, const uint64_t *bounds, uint32_t nbounds);
void hist_add(struct hist *h, uint64_t v);
void hist_read(const struct hist *h, struct hist_snap *out);

#endif
