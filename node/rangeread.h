/*
 * rangeread — the pure part of a range read (coord.h): checking a
 * replica's page of one placement part, where the answer may end, and the
 * merge of the pages by key with what each replica lacked.  It owns no
 * networking and no storage: asking the replicas, scanning LMDB and
 * sending the repairs are coord.c's.
 */
#ifndef DYN_RANGEREAD_H
#define DYN_RANGEREAD_H

#include <stdbool.h>
#include <stddef.h>

#include "buf.h"
#include "reclist.h"

/* Keys in LMDB's order for one position: memcmp, then the shorter first. */
int rangeread_key_cmp(const struct buf *a, const struct buf *b);

/* Is page p fit to merge: every key begins with the part's header
 * (hdr, hlen bytes), the keys ascend strictly, all after start (slen
 * bytes; NULL: no cursor), and a full page is not empty?  A page from a
 * peer that is not is left out. */
bool rangeread_page_sane(const uint8_t *hdr, size_t hlen,
    const uint8_t *start, size_t slen, const struct reclist *p, bool full);

/* Where the answer ends: the smallest last key of the answered (ok[i])
 * full (full[i]) pages, the keys the other replicas have not shown past
 * (it points into pages); NULL when no page was full: the answer is the
 * whole rest of the part. */
const struct buf *rangeread_bound(const struct reclist *pages,
    const bool *ok, const bool *full, size_t np);

/* Merge the answered pages (pages[i] with ok[i], np of them) key by key,
 * up to bound (included; NULL: every key), each key's sets as vset_merge
 * merges them.  out gets the keys whose merge has a live version, fix[i]
 * what page i showed less of than the merge (the key, with the merge:
 * its read repair), both in key order; out and fix[0..np) must be
 * initialised and empty.  0, or -ENOMEM / vset_merge's error (out and fix
 * then hold anything: fini them).  pages are only read. */
int rangeread_merge(const struct reclist *pages, const bool *ok, size_t np,
    const struct buf *bound, struct reclist *out, struct reclist *fix);

#endif
