/*
 * reclist — lists of records as an F_RECORDS field carries them (xfer's
 * partition batches, anti-entropy's leaves and purges, range reads):
 *   u32 count | count * blob record (store_record_encode)
 * This module owns the encoding and its checks; what is done with the
 * records (merge, delete) is the caller's.
 */
#ifndef DYN_RECLIST_H
#define DYN_RECLIST_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "vset.h"

struct reclist {
	uint32_t n;
	struct buf *keys;  /* n user keys; owned */
	struct vset *sets; /* n version sets; owned */
};

void reclist_init(struct reclist *l);
/* Free the keys and sets; l becomes empty.  NULL is fine. */
void reclist_fini(struct reclist *l);

/* Append a copy of (key, set) to l, which holds at most cap records (its
 * arrays are allocated for cap at the first add, so cap must not change).
 * -ENOSPC when l already holds cap, -ENOMEM (l unchanged).  key and set
 * are only read. */
int reclist_add(struct reclist *l, uint32_t cap, const void *key,
    size_t klen, const struct vset *set);

/* Append the list of the n records (keys[i], sets[i]) to out (errors are
 * sticky in out).  Only reads keys and sets. */
void reclist_encode(const struct buf *keys, const struct vset *sets,
    uint32_t n, struct buf *out);
/*
 * Decode a list that fills p (len bytes) into out (must be initialised;
 * its old contents are freed).  Each record is checked by
 * store_record_decode against max_value; the count is checked against the
 * bytes there are before anything is allocated.  DYN_EBADMSG for anything
 * malformed (trailing bytes too), DYN_ETOOBIG for a value over max_value,
 * -ENOMEM; on error out is empty.  Keys and values are copied: p is only
 * read.
 */
int reclist_decode(const void *p, size_t len, size_t max_value,
    struct reclist *out);

#endif
