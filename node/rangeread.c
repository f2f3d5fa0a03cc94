/*
 * rangeread — merging the replicas' pages of a range read.
 *
 *   pages (each sorted) --refs, qsort by (key, page)--> groups of one key
 *        each group: merge --> out (live) ; page lacking it --> fix[page]
 *
 * The pages are small (a few thousand records at most), so one sort of
 * references is simpler than a k-way merge and as fast.
 */
#include "rangeread.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "mem.h"

int
rangeread_key_cmp(const struct buf *a, const struct buf *b)
{
	size_t n = a->len < b->len ? a->len : b->len;
	int c = n ? memcmp(a->data, b->data, n) : 0;
	if (c != 0)
		return c;
	return (a->len > b->len) - (a->len < b->len);
}

bool
rangeread_page_sane(const uint8_t *hdr, size_t hlen, const uint8_t *start,
    size_t slen, const struct reclist *p, bool full)
{
	if (full && p->n == 0)
		return false;
	struct buf from = {.data = (uint8_t *)start, .len = slen};
	for (uint32_t i = 0; i < p->n; i++) {
		const struct buf *k = &p->keys[i];
		if (k->len < hlen || memcmp(k->data, hdr, hlen) != 0)
			return false;
		if (i > 0 ? rangeread_key_cmp(&p->keys[i - 1], k) >= 0
		          : start && rangeread_key_cmp(&from, k) >= 0)
			return false;
	}
	return true;
}

const struct buf *
rangeread_bound(const struct reclist *pages, const bool *ok,
    const bool *full, size_t np)
{
	const struct buf *bound = NULL;
	for (size_t i = 0; i < np; i++) {
		if (!ok[i] || !full[i] || pages[i].n == 0)
			continue;
		const struct buf *last = &pages[i].keys[pages[i].n - 1];
		if (!bound || rangeread_key_cmp(last, bound) < 0)
			bound = last;
	}
	return bound;
}

/* One record of one page. */
struct page_ref {
	const struct buf *key;
	const struct vset *set;
	size_t src;
};

static int
ref_cmp(const void *a, const void *b)
{
	const struct page_ref *x = a, *y = b;
	int c = rangeread_key_cmp(x->key, y->key);
	if (c != 0)
		return c;
	return (x->src > y->src) - (x->src < y->src);
}

int
rangeread_merge(const struct reclist *pages, const bool *ok, size_t np,
    const struct buf *bound, struct reclist *out, struct reclist *fix)
{
	size_t total = 0;
	for (size_t i = 0; i < np; i++)
		total += ok[i] ? pages[i].n : 0;
	if (total == 0)
		return 0;
	struct page_ref *refs = mem_calloc(total, sizeof(*refs));
	if (!refs)
		return -ENOMEM;
	size_t nr = 0;
	for (size_t i = 0; i < np; i++)
		for (uint32_t j = 0; ok[i] && j < pages[i].n; j++)
			refs[nr++] = (struct page_ref){&pages[i].keys[j],
			    &pages[i].sets[j], i};
	/* Within a group the pages come in order: the walk over them below
	 * relies on it (a sane page has a key once). */
	qsort(refs, nr, sizeof(*refs), ref_cmp);
	struct vset merged, none;
	vset_init(&merged);
	vset_init(&none);
	int rc = 0;
	for (size_t g = 0; g < nr && rc == 0;) {
		const struct buf *key = refs[g].key;
		if (bound && rangeread_key_cmp(key, bound) > 0)
			break;
		size_t e = g;
		while (e < nr && rangeread_key_cmp(refs[e].key, key) == 0)
			e++;
		if ((rc = vset_copy(&merged, refs[g].set)) != 0)
			break;
		for (size_t i = g + 1; i < e && rc == 0; i++) {
			int m = vset_merge(&merged, refs[i].set);
			rc = m < 0 ? m : 0;
		}
		/* Who showed less than the merge (or nothing) gets it. */
		size_t at = g;
		for (size_t s = 0; s < np && rc == 0; s++) {
			if (!ok[s])
				continue;
			const struct vset *theirs = &none;
			if (at < e && refs[at].src == s)
				theirs = refs[at++].set;
			if (!vset_contains(theirs, &merged))
				rc = reclist_add(&fix[s], (uint32_t)total,
				    key->data, key->len, &merged);
		}
		if (rc == 0 && vset_live(&merged) > 0)
			rc = reclist_add(out, (uint32_t)total, key->data,
			    key->len, &merged);
		g = e;
	}
	vset_fini(&merged);
	mem_free(refs);
	return rc;
}
