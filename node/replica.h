/*
 * replica — applying versions to this node's replica.  Every version set
 * that comes from elsewhere, or that this node hands to itself, is merged
 * into the stored record here (store_apply_merge: the union of both sets
 * minus every version another makes obsolete; a set that adds nothing is
 * no write), whoever brings it:
 *
 *   coordinator (coord.c)   REPLICATE_REQ to the other replicas
 *                           (replica_request) and its read repair of
 *                           its own copy (replica_merge)
 *   a replica, a stand-in   REPLICATE_REQ served (replica_handle); a
 *                           stand-in also files the hint
 *   hinted handoff          hints delivered (replica_request) and, for a
 *                           removed member, this node's share
 *                           (replica_merge)
 *   transfer, anti-entropy  batches of records (replica_merge_records);
 *                           the purge deletes with another apply function
 *                           (replica_apply_records)
 *
 * Not here: the coordinator's new versions (coord.c's apply functions make
 * them in the store's writer), the hints it files (store_hint_add), reads.
 * The merge itself is the store's (store.h), which its hints use too.
 */
#ifndef DYN_REPLICA_H
#define DYN_REPLICA_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "reclist.h"
#include "store.h"
#include "vset.h"
#include "wire.h"

struct node;

/* Merge set into the local record of key and wait for the commit: 0 (also
 * when set added nothing), or the error of store_update.  set is only
 * read. */
int replica_merge(struct node *n, const void *key, size_t klen,
    const struct vset *set);

/* Merge every record of an F_RECORDS field (reclist.h) into the local
 * store, in one store_update_many; *count += the records. */
int replica_merge_records(struct node *n, const struct wire_field *f,
    uint32_t *count);
/* The same with any apply function (its arg: the record's set); *count +=
 * the records, *changed (if not NULL) += those fn wrote (returned 0).  A
 * negative result of fn is the error returned.  f is only read; DYN_EBADMSG
 * when it does not decode (nothing applied). */
int replica_apply_records(struct node *n, const struct wire_field *f,
    store_apply_fn fn, uint32_t *count, uint32_t *changed);
/* The same for a decoded list (only read): one store_update_many. */
int replica_apply_list(struct node *n, const struct reclist *l,
    store_apply_fn fn, uint32_t *count, uint32_t *changed);

/* The one version of a blob (common/blob.h) holding value[0..len); v
 * points at value, it does not own it (no version_fini). */
void replica_blob_version(struct version *v, const void *value, size_t len);

/* A sealed REPLICATE_REQ of set under key into b (initialised), with
 * F_HINT when hint is not NULL (the receiver stands in for that node).  A
 * blob's one version goes as its bytes (WIRE_H_BLOB). */
int replica_request(struct node *n, struct buf *b, const void *key,
    size_t klen, const struct vset *set, const char *hint);
/* REPLICATE_REQ: the hint filed when there is one, then the set merged
 * into the local store; the reply in out (not sealed). */
int replica_handle(struct node *n, const struct wire_msg *m,
    struct buf *out);
/* replica_handle without the wait, for a REPLICATE_REQ with no hint
 * (-EINVAL for one with a hint: replica_handle makes its two writes): 0
 * when the merge is queued, and then, once it is committed, the store's
 * writer thread builds the reply in out and calls done(arg, rc) (rc as
 * replica_handle returns it); any other return is replica_handle's and
 * done is never called.  m and out must stay valid until done. */
typedef void (*replica_done_fn)(void *arg, int rc);
int replica_start(struct node *n, const struct wire_msg *m, struct buf *out,
    replica_done_fn done, void *arg);

#endif
