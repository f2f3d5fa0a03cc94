/*
 * health — what dynamoctl says about a whole cluster: every member's
 * status, gathered in parallel, judged healthy or degraded (and why),
 * printed as a table or as JSON; and the wait for a long operation (a
 * leave, a removal, a join's transfer, a repair) with its progress.
 *
 * Part of dynamoctl only.  It reads the status JSON the nodes write
 * (node.c handle_status, gossip.c gossip_status_json) with common/json.h
 * and talks to the cluster only through the client library.
 *
 *   ask[0] --status--> its gossip view: members, ring
 *      |
 *      +--status, in parallel--> every other member: keys, hints held,
 *                                anti-entropy, transfer
 *   --> struct health: one row a member, the verdict, its reasons
 */
#ifndef DYN_HEALTH_H
#define DYN_HEALTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "buf.h"
#include "client.h"
#include "ring.h"

/* One member as the asked node's gossip knows it, and what it said of
 * itself (when it answered). */
struct health_member {
	char name[RING_NAME_MAX + 1];
	char addr[RING_ADDR_MAX + 1];
	char state[16];  /* up, leaving or left (gossip's words) */
	bool seen;       /* the asked node reaches it */
	int rc;          /* its own status call: 0, or why it did not answer */
	uint32_t parts;  /* partitions it owns (the asked node's ring) */
	uint64_t keys;   /* its records, */
	uint64_t db_bytes; /* and their size (rc 0 only) */
	uint64_t hints_for;  /* hints the answering members hold for it */
	uint64_t hints_held; /* hints it holds, for any member */
	uint64_t ae_rounds;
	uint32_t ae_differing;        /* its partitions differing */
	int64_t ae_last_diff_age_ms;  /* -1: never */
	uint32_t ae_last_diff_leaves;
	/* Its pull under the pending plan (plan_epoch 0: none). */
	uint64_t plan_epoch;
	uint32_t plan_parts;
	/* Its transfer thread's last pull. */
	uint64_t xfer_epoch;
	uint32_t xfer_done, xfer_total;
	uint64_t xfer_bytes;
	bool xfer_active;
};

#define HEALTH_REASONS_MAX 8

struct health {
	char asked[RING_ADDR_MAX + 1];      /* whose view this is */
	char asked_name[RING_NAME_MAX + 1];
	uint64_t epoch;   /* of its ring */
	uint32_t q;       /* partitions */
	uint32_t nrw[3];  /* N, R, W */
	bool pending;     /* its ring has a plan pending (a transfer) */
	bool plan_known;  /* every member answered holding that plan, so
	                     to_move is the whole of it */
	size_t n;         /* members, sorted by name; left ones too */
	struct health_member *m;
	/* The transfer under the pending plan, over the members answering. */
	uint32_t to_move;    /* partitions to pull */
	uint32_t moved;      /* pulled */
	uint64_t moved_bytes;
	uint64_t hints;      /* held anywhere, for anyone */
	uint32_t differing;  /* partitions differing, summed over members */
	/* The verdict. */
	bool healthy;
	size_t nreasons;
	struct buf reason[HEALTH_REASONS_MAX]; /* NUL-terminated text */
};

/*
 * Judge the cluster: ask the nodes at ask[0..nask), in order, for their
 * view until one answers, then every other member it knows for its own
 * status, in parallel; each call waits timeout_ms at most.  On success
 * the caller owns *out (health_fini); else the error of the last node
 * asked (out holds nothing).
 */
int health_gather(struct dyn_client *c, const char *const *ask, size_t nask,
    int timeout_ms, struct health *out);
/* Free what h holds; h becomes empty.  An empty h is fine. */
void health_fini(struct health *h);
/* The member called name, or NULL. */
const struct health_member *health_member(const struct health *h,
    const char *name);

/* The table: a line about the view, a row per member that has not left,
 * then "healthy" or "degraded: REASON; REASON...". */
void health_print_table(const struct health *h, FILE *f);
/* The same as one JSON object: {"healthy": BOOL, "reasons": [...],
 * "view": NAME, "ring_epoch": N, "members": [{...}, ...]}. */
void health_print_json(const struct health *h, FILE *f);

/* What health_wait waits for. */
enum health_goal {
	HEALTH_GOAL_HEALTHY, /* the cluster healthy */
	HEALTH_GOAL_LEFT,    /* member `name` left: its handover is over */
	HEALTH_GOAL_REMOVED, /* member `name` removed: its partitions and
	                        the hints held for it are elsewhere */
};

struct health_wait {
	enum health_goal goal;
	const char *name;     /* the member leaving or removed */
	long long deadline_ms; /* a mono_ms() value; 0: none */
	int timeout_ms;        /* per status call */
	FILE *out;             /* progress: the phase, partitions and bytes
	                          moved, rate and time left */
	bool tty;              /* one line redrawn (\r) instead of a line
	                          every couple of seconds */
};

/*
 * Poll the cluster (health_gather over ask and, as they become known, the
 * other members, the one leaving or removed last) until the goal is met,
 * showing progress on w->out; a final line says what was moved and how
 * long it took.  0 when met, DYN_ETIMEDOUT at the deadline, -ENOMEM.
 * *last (not NULL) gets the last round's view, the caller's to
 * health_fini (empty when no node answered in that round).
 */
int health_wait(struct dyn_client *c, const char *const *ask, size_t nask,
    const struct health_wait *w, struct health *last);

/* "1.5 MiB", "512 B". */
void health_fmt_bytes(uint64_t b, char *out, size_t cap);
/* "3d04h05m", "2h05m06s", "5m06s", "6s": trimmed to the largest unit. */
void health_fmt_secs(uint64_t s, char *out, size_t cap);

#endif
