/*
 * coord — the coordinator: get and put of one key across its replicas,
 * and the range read of one placement part (below).
 *
 * A put is coordinated by a replica of the key (node.c forwards it there
 * otherwise): the coordinator makes the new version in its store's write
 * transaction (its counter follows what the store knows of the key), sends
 * it to the other replicas in parallel (REPLICATE_REQ, merged there) while
 * that transaction commits (a put deferred to a worker, coord_put, commits
 * first and sends after), and answers after W acks, its own commit
 * included.  A version can so reach other replicas and not this store (the
 * node is killed, or the commit fails): the node then takes a new actor id
 * (node.c load_actor, node_actor_lost), so it never issues that dot again.  A get reads the first N replicas, answers
 * after R, merges what they returned (every sibling, the merged context)
 * and writes the merge back to the replicas that were missing some of it
 * (read repair).  R and W never exceed the replicas there are, so a cluster
 * of one node works with the defaults.
 */
#ifndef DYN_COORD_H
#define DYN_COORD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "keypos.h"
#include "reclist.h"
#include "vclock.h"
#include "vset.h"

struct node;

struct coord_req {
	const void *key;
	size_t klen;
	struct keypos pos;
	uint32_t r, w;  /* 0: cluster default */
	uint32_t flags; /* WIRE_F_* */
};

/* Every version held for the key (empty set when none). out must be
 * initialised. */
int coord_get(struct node *n, const struct coord_req *rq, struct vset *out);

/* coord_get without a wait, for a caller in nng's callback: 0 when the
 * get is under way, and then done(arg, rc, set) is called once with its
 * result (set: the versions when rc is 0, valid during the call), from
 * one of nng's threads or before coord_get_start returns; any other
 * return means done is never called.  rq's key must stay valid until done.
 * Not for local or blob gets (-EINVAL); -EAGAIN when this node is no
 * replica of the key and the get was not forwarded to it (coord_get's
 * caller forwards it).  Read repair is started, not waited for (by
 * coord_get neither). */
typedef void (*coord_get_fn)(void *arg, int rc, const struct vset *set);
int coord_get_start(struct node *n, const struct coord_req *rq,
    coord_get_fn done, void *arg);

/* Write value (or a tombstone, by WIRE_F_TOMBSTONE) superseding what ctx
 * covers.  *newctx gets the context of the new version (its past plus its
 * dot), so a client may write again without a get. */
int coord_put(struct node *n, const struct coord_req *rq,
    const struct vclock *ctx, const void *value, size_t len,
    struct vclock *newctx);

/*
 * The range read: the keys of one placement part (common/keypos.h) in key
 * order, a page at a time.  The coordinator asks the replicas it would ask
 * for a get of the part's position for a page each (replica-local:
 * coord_range_local), waits for R, and merges them key by key as a get
 * merges one key.  A replica whose page was full (it had more) knows
 * nothing past its page's last key, so the answer ends at the smallest
 * such last key (the bound): every key up to it is one all answering
 * replicas have shown, or would have.  Replicas that answered with less
 * than the merge of a key get it (read repair, as a get).  Tombstone-only
 * keys are left out of the answer but are merged and repaired like the
 * rest, and count in a replica's page, so a page may show fewer keys than
 * the limit (none, even) and still have more after it.
 */
#define COORD_RANGE_LIMIT     100       /* keys per page by default */
#define COORD_RANGE_MAX       1000      /* and at most */
#define COORD_RANGE_BYTES     (1u << 20) /* record bytes by default */
#define COORD_RANGE_MAX_BYTES (4u << 20) /* and at most */

struct coord_range {
	const uint8_t *hdr; /* the part's placement header (3 + L bytes) */
	size_t hlen;
	struct keypos pos;  /* its position */
	const uint8_t *start; /* the cursor: keys after it (NULL: all) */
	size_t slen;
	uint32_t limit, limit_bytes; /* 1..COORD_RANGE_MAX, ..._MAX_BYTES */
	uint32_t r;     /* 0: cluster default */
	uint32_t flags; /* WIRE_F_LOCAL: this node's store only */
};

/* One page of the range: out (initialised, replaced) gets the records;
 * *more is true when there may be keys after the last one the answer
 * covers, whose key goes to next (reset; the cursor of the next page).
 * A local page (WIRE_F_LOCAL) has every record, tombstones too, and is
 * full (*more) when it stopped at a limit. */
int coord_range(struct node *n, const struct coord_range *rq,
    struct reclist *out, bool *more, struct buf *next);

/* coord_put without a wait, for a caller in nng's callback: 0 when the
 * put is under way, and then done(arg, rc, newctx) is called once (from
 * the store's writer, one of nng's threads, or a thread defer gave it).
 * When too few replicas acked, the put needs stand-ins, which may wait:
 * it calls defer(arg, fn, fn_arg), which must run fn(fn_arg) in a thread
 * that may block, and done comes from there.  -EAGAIN: this put is not
 * one to start here (this node is not a replica of the key, or must keep
 * hints for replicas down): serve it with coord_put in such a thread.
 * Any other return: done is never called.  rq's key and value must stay
 * valid until done (ctx is copied). */
typedef void (*coord_put_fn)(void *arg, int rc, const struct vclock *newctx);
typedef void (*coord_defer_fn)(void *arg, void (*fn)(void *), void *fn_arg);
int coord_put_start(struct node *n, const struct coord_req *rq,
    const struct vclock *ctx, const void *value, size_t len,
    coord_put_fn done, coord_defer_fn defer, void *arg);

#endif
