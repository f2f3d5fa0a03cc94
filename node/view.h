/*
 * view — a gossip view as it travels in F_GOSSIP: the cluster settings, one
 * record per member and the ring.  This module owns the encoding and the
 * checks of what a peer sends; what a view means (which record wins, when
 * a ring is taken) is gossip.c's.
 */
#ifndef DYN_VIEW_H
#define DYN_VIEW_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "gossip.h"
#include "ring.h"

/* One member as a view holds it (gossip.h says what the fields mean). */
struct member {
	char name[RING_NAME_MAX + 1];
	char addr[RING_ADDR_MAX + 1];
	uint64_t incarnation;
	uint64_t version;
	uint8_t status; /* enum member_status */
	uint64_t ring_seen;
	uint64_t ready;
};

struct view {
	bool has_settings;
	struct cluster_settings settings; /* meaningful with has_settings */
	size_t n;                         /* members, <= GOSSIP_MEMBERS_MAX */
	struct member *members;
	struct ring *ring; /* NULL: none (the sender has not joined) */
};

/*
 *   u8 has settings | u32 n | u32 r | u32 w | u16 member count
 *   count * (blob name | blob address | u64 incarnation | u64 version |
 *            u8 status | u64 ring seen | u64 ready)
 *   u8 has ring | [blob ring (ring_encode)]
 * v is only read (the caller may point it at its own members and ring);
 * errors are sticky in out.
 */
void view_encode(const struct view *v, struct buf *out);
/*
 * Decode a peer's view from p (len bytes, all of them).  Everything is
 * checked: names and addresses not empty, within their caps and without
 * NUL, a known status, at most GOSSIP_MEMBERS_MAX members, settings in range
 * when present, the ring (ring_decode), no trailing bytes.  DYN_EBADMSG for
 * anything wrong, -ENOMEM.  On success the caller owns out's members and
 * ring (view_fini); on error out holds nothing.  p is only read.
 */
int view_decode(const void *p, size_t len, struct view *out);
/* Free a decoded view's members and ring; v becomes empty.  NULL is fine. */
void view_fini(struct view *v);

#endif
