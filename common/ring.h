/*
 * ring — who owns which part of the key space: the pure placement logic
 * shared by the node (gossip, coordinator, transfers) and the client library.
 * It owns the ring value (epoch, Q, member table, ownership tables), the
 * planner that rebalances it, preference lists and the ring's encoding.  It
 * does no networking, threading or timing: gossiping rings, streaming a
 * moved partition and deciding when to commit belong to node/.
 *
 * The 2^128 MD5 space is cut into Q equal partitions (Q a power of two,
 * fixed at cluster creation; the paper's strategy 3).  Partition p holds the
 * positions whose top log2(Q) bits are p (keypos_partition) and has exactly
 * one owner.  A ring holds two ownership tables:
 *   cur   who owns each partition now;
 *   next  (optional) the target of a rebalance whose data is still being
 *         transferred; absent when the ring is stable.
 * Owners are indices into the member table, which is kept sorted by name so
 * that equal rings have equal encodings.  A member may own nothing (it is
 * known, with its address, but not yet or no longer placed).
 *
 * Every change produces a higher epoch; between two rings the one with the
 * higher epoch wins and, at the same epoch (two admins changing the ring at
 * once), the one whose encoding is larger, so all nodes pick the same ring.
 *
 * Lifetimes: a struct ring is a heap object owned by whoever received it
 * from ring_new, ring_dup, ring_plan or ring_decode, and freed with
 * ring_free.  Strings returned by the accessors point into the ring and stay
 * valid until the ring is freed or changed (ring_member_set,
 * ring_member_remove, ring_commit).  A ring is a plain value: no locking;
 * readers in several threads are fine while nobody changes it.
 */
#ifndef DYN_RING_H
#define DYN_RING_H

#include <stdbool.h>
#include <stdint.h>

#include "buf.h"
#include "keypos.h"

#define RING_Q_MIN       1
#define RING_Q_MAX       4096
#define RING_Q_DEFAULT   64
#define RING_NAME_MAX    63   /* bytes, without the NUL */
#define RING_ADDR_MAX    127  /* bytes, without the NUL: tcp://HOST:PORT */
#define RING_MEMBERS_MAX 1024 /* entries of the member table */
#define RING_FORMAT      1    /* first byte of the encoding */

struct ring;

/* Which ownership table to read.  RING_NEXT on a stable ring (no pending
 * plan) reads cur: a stable ring's target is itself. */
enum ring_table {
	RING_CUR,
	RING_NEXT,
};

/* ---- Life cycle ---------------------------------------------------- */

/* A new ring at epoch 1 whose only member, name at addr, owns all q
 * partitions.  -EINVAL when q is not a power of two in [RING_Q_MIN,
 * RING_Q_MAX] or name/addr are empty or too long; -ENOMEM.  On success the
 * caller owns *out. */
int ring_new(uint32_t q, const char *name, const char *addr,
             struct ring **out);
/* A deep copy of r (same epoch); the caller owns *out.  -ENOMEM. */
int ring_dup(const struct ring *r, struct ring **out);
/* Free r and everything it holds.  NULL is fine. */
void ring_free(struct ring *r);

/* ---- Membership ---------------------------------------------------- */

/* Add member name at addr, or change a known member's address; the epoch
 * goes up by one when anything changed (setting the same address again is a
 * no-op).  Ownership is untouched: ring_plan places members.  -EINVAL for an
 * empty or too long name or address, -ENOSPC when the table is full,
 * -ENOMEM (r unchanged on any error). */
int ring_member_set(struct ring *r, const char *name, const char *addr);
/* Drop a member that owns nothing in cur nor in next (epoch + 1).
 * -ENOENT when unknown, -EBUSY while it still owns partitions. */
int ring_member_remove(struct ring *r, const char *name);

/* ---- Rebalancing --------------------------------------------------- */

/*
 * Plan the move to a ring where exactly the n named members own partitions
 * (any order; each must already be in r's member table).  The plan starts
 * from r's cur table and moves as little as possible:
 *   - partitions of members not in the list are freed;
 *   - each listed member's target is floor(Q/n) or ceil(Q/n) partitions; the
 *     Q mod n larger targets go to those holding most now, then by name;
 *   - members above target give away their most crowded partitions (those
 *     with the same owner closest on the ring), spread out around the ring;
 *   - freed partitions go, in partition order, to members below target,
 *     preferring one that owns none of the neighbouring partitions, so
 *     preference lists find distinct nodes in few steps.
 * A join or a leave therefore moves about Q/n partitions.  The result is a
 * pure function of r's cur table, member table and the set of names: every
 * node computes the same plan.
 *
 * *out is a new ring (the caller owns it; r is not changed) with r's
 * members and cur table, next = the plan (even when it moves nothing; a
 * pending next of r is replaced) and epoch r's + 1.  -EINVAL when n is 0 or
 * a name is listed twice, -ENOENT when a name is not a member, -ENOMEM.
 */
int ring_plan(const struct ring *r, const char *const *members, uint32_t n,
              struct ring **out);
/* The transfer is done: next becomes cur, next is cleared, epoch + 1.
 * -EINVAL when r has no pending plan. */
int ring_commit(struct ring *r);
/* Partitions whose owner differs between cur and next (0 when stable). */
uint32_t ring_moves(const struct ring *r);

/* ---- Placement ----------------------------------------------------- */

uint64_t ring_epoch(const struct ring *r);
uint32_t ring_q(const struct ring *r);
bool ring_has_next(const struct ring *r);
/* The partition a key position falls in. */
uint32_t ring_partition_of(const struct ring *r, const struct keypos *pos);
/* First position of partition part in *from and, unless it is the last
 * partition (*to_end set true: the range runs to the end of the ring), the
 * first position after it in *to.  -EINVAL when part >= Q. */
int ring_partition_range(const struct ring *r, uint32_t part,
                         struct keypos *from, struct keypos *to, bool *to_end);
/* Member index owning part in table t, or -EINVAL when part >= Q. */
int ring_owner(const struct ring *r, enum ring_table t, uint32_t part);

/*
 * Preference list of partition part in table t: the first n distinct owners
 * met walking clockwise from part (part, part + 1, ..., wrapping), as member
 * indices in out[0..*count), coordinator first.  *count < n when fewer
 * members own partitions.  out has room for n.  -EINVAL when part >= Q.
 */
int ring_preflist(const struct ring *r, enum ring_table t, uint32_t part,
                  uint32_t n, uint32_t *out, uint32_t *count);
/* The same for the partition of a key position. */
int ring_preflist_key(const struct ring *r, enum ring_table t,
                      const struct keypos *pos, uint32_t n, uint32_t *out,
                      uint32_t *count);
/*
 * Replicas of part during a transfer: the cur preference list, then the
 * members of the next one not already in it, so that a write reaches both
 * the old and the new owners.  On a stable ring, the cur list.  out has room
 * for 2 * n.  -EINVAL when part >= Q.
 */
int ring_replicas_union(const struct ring *r, uint32_t part, uint32_t n,
                        uint32_t *out, uint32_t *count);

/*
 * The partitions member idx gains under r's plan: those whose next
 * preference list (n long) holds it and whose cur one does not, which it
 * pulls before the plan can commit.  Their number and, when out is not
 * NULL (room for Q), the partitions in increasing order.  0 on a stable
 * ring or for an index out of range.  Lists longer than RING_GAINS_N_MAX
 * are cut to it.
 */
#define RING_GAINS_N_MAX 32
uint32_t ring_gains(const struct ring *r, uint32_t n, uint32_t idx,
                    uint32_t *out);

/* ---- Members ------------------------------------------------------- */

uint32_t ring_member_count(const struct ring *r);
/* Index of the member called name, or -ENOENT. */
int ring_member_find(const struct ring *r, const char *name);
/* Name and address of member idx (NULL when idx is out of range).  Valid
 * until r is freed or changed. */
const char *ring_member_name(const struct ring *r, uint32_t idx);
const char *ring_member_addr(const struct ring *r, uint32_t idx);
/* Partitions owned per member in table t: counts[i] for member i, counts
 * has room for ring_member_count(r) entries. */
void ring_owned_counts(const struct ring *r, enum ring_table t,
                       uint32_t *counts);

/* ---- Comparison ---------------------------------------------------- */

/* A total order: <0, 0 or >0 as a's encoding sorts before, equals or after
 * b's (epoch first, then the rest of the bytes); no allocation. */
int ring_cmp(const struct ring *a, const struct ring *b);
/* Same epoch, Q, members and tables. */
bool ring_equal(const struct ring *a, const struct ring *b);
/* Should a replace b?  Higher epoch, or same epoch and larger encoding. */
bool ring_newer(const struct ring *a, const struct ring *b);

/* ---- Encoding ------------------------------------------------------ */

/*
 *   u8  RING_FORMAT | u64 epoch | u32 Q | u16 member count (>= 1)
 *   count * (u8 name length, name | u8 address length, address),
 *       names strictly increasing in byte order
 *   Q * u16 cur owner | u8 has next (0 or 1) | [Q * u16 next owner]
 * Errors of out are reported by buf_err(out).
 */
void ring_encode(const struct ring *r, struct buf *out);
/*
 * Decode a ring that fills the rest of in (embed it in a blob to carry it
 * with other fields).  The input comes from the network: every field is
 * checked and anything wrong is DYN_EBADMSG (unknown format, Q not a power
 * of two in range, empty/too long/NUL-carrying names or addresses, names not
 * strictly sorted, owner index out of range, truncation, trailing bytes);
 * -ENOMEM.  On success the caller owns *out; on failure *out is NULL and in
 * is marked bad.
 */
int ring_decode(struct rd *in, struct ring **out);

#endif
