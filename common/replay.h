/*
 * replay — the messages a receiver has seen, to refuse one sent again.
 *
 * A message carries its sender (a random id per process), a sequence
 * number (a counter of all the sender's messages) and the sender's wall
 * clock (wire.h).  A receiver keeps, per sender, the highest sequence seen
 * and a bitmap of the REPLAY_BITS sequences below it (the anti-replay
 * window of IPsec, RFC 4303 3.4.3): a sequence already marked, or older
 * than the bitmap reaches, is a replay.  A message whose time is more
 * than the time window away from the receiver's clock is stale, whatever
 * its sequence.  A sender is forgotten once its newest message is older
 * than the window: a replay of any of its messages is then stale.  So
 * memory is bounded by the senders heard within one window; past
 * max_senders new senders are refused (-EBUSY) until some are forgotten.
 *
 * Thread-safe (one lock; a check is a hash lookup and a bit).
 */
#ifndef DYN_REPLAY_H
#define DYN_REPLAY_H

#include <stddef.h>
#include <stdint.h>

#define REPLAY_BITS 2048 /* sequences a message may arrive late by */

struct replay;

int replay_new(uint64_t window_ms, size_t max_senders, struct replay **out);
void replay_free(struct replay *r); /* NULL is fine */

/* Record a message of sender: 0 when it is fresh, DYN_EREPLAY when seen
 * before or too far behind, DYN_ESTALE when its time is outside the
 * window around now_ms, -EBUSY when it is a new sender and the table is
 * full, -ENOMEM. */
int replay_check(struct replay *r, uint64_t sender, uint64_t seq,
    uint64_t time_ms, uint64_t now_ms);

/* Senders remembered now. */
size_t replay_senders(struct replay *r);

#endif
