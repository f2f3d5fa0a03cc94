#include "hist.h"

#include <string.h>

void
hist_init(struct hist *h, const uint64_t *bounds, uint32_t nbounds)
{
	h->bounds = bounds;
	h->nbounds = nbounds > HIST_BOUNDS_MAX ? HIST_BOUNDS_MAX : nbounds;
	for (uint32_t i = 0; i <= HIST_BOUNDS_MAX; i++)
		atomic_init(&h->count[i], 0);
	atomic_init(&h->sum, 0);
}

void
hist_add(struct hist *h, uint64_t v)
{
	/* A dozen or two bounds: a linear scan beats a binary search's
	 * branches, and most values fall in the first few. */
	uint32_t i = 0;
	while (i < h->nbounds && v > h->bounds[i])
		i++;
	atomic_fetch_add_explicit(&h->count[i], 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&h->sum, v, memory_order_relaxed);
}

void
hist_read(const struct hist *h, struct hist_snap *out)
{
	memset(out, 0, sizeof(*out));
	out->bounds = h->bounds;
	out->nbounds = h->nbounds;
	uint64_t total = 0;
	for (uint32_t i = 0; i <= h->nbounds; i++) {
		total += atomic_load_explicit(&h->count[i],
		    memory_order_relaxed);
		out->cum[i] = total;
	}
	out->count = total;
	out->sum = atomic_load_explicit(&h->sum, memory_order_relaxed);
}
