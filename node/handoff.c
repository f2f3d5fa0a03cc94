#include "handoff.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "bgthread.h"
#include "err.h"
#include "gossip.h"
#include "log.h"
#include "mem.h"
#include "node_i.h"
#include "replica.h"
#include "rpc.h"
#include "store.h"
#include "wire.h"

#define HANDOFF_POLL_MS 500
#define HANDOFF_BATCH   32 /* hints in flight to one replica at once */

struct handoff {
	struct node *node;
	pthread_mutex_t lock; /* delivered */
	uint64_t delivered;
	struct batch *batch; /* the thread's */
	struct bgthread thread;
};

/* One hint taken out of the store for delivery. */
struct hint {
	struct buf key;
	struct vset set;
};

struct batch {
	char target[64];
	struct hint h[HANDOFF_BATCH];
	size_t n;
};

/* Collect up to a batch of one target's hints: the first target found
 * fixes the batch's target. */
static int
collect(const char *target, const uint8_t *key, size_t klen,
    const struct vset *set, void *arg)
{
	struct batch *b = arg;
	if (b->n == 0)
		snprintf(b->target, sizeof(b->target), "%s", target);
	else if (strcmp(b->target, target) != 0)
		return 0;
	struct hint *h = &b->h[b->n];
	buf_init(&h->key);
	buf_put(&h->key, key, klen);
	vset_init(&h->set);
	if (buf_err(&h->key) || vset_copy(&h->set, set) != 0) {
		buf_fini(&h->key);
		vset_fini(&h->set);
		return -ENOMEM;
	}
	return ++b->n == HANDOFF_BATCH ? 1 : 0;
}

static void
batch_fini(struct batch *b)
{
	for (size_t i = 0; i < b->n; i++) {
		buf_fini(&b->h[i].key);
		vset_fini(&b->h[i].set);
	}
	b->n = 0;
}

/* Deliver one batch; the number delivered (0 when the target is away). */
static size_t
deliver(struct handoff *ho, struct batch *b)
{
	struct node *n = ho->node;
	char addr[128];
	if (gossip_member_addr(n->gossip, b->target, addr, sizeof(addr)) != 0 ||
	    !rpc_peer_usable(n->pool, addr))
		return 0;

	struct buf req[HANDOFF_BATCH];
	const char *addrs[HANDOFF_BATCH];
	struct rpc_reply rr[HANDOFF_BATCH];
	for (size_t i = 0; i < b->n; i++) {
		buf_init(&req[i]);
		replica_request(n, &req[i], b->h[i].key.data,
		    b->h[i].key.len, &b->h[i].set, NULL);
		addrs[i] = addr;
	}
	rpc_call_each(n->pool, addrs, b->n, req, b->n, n->cfg.timeout_ms, rr);
	size_t done = 0;
	for (size_t i = 0; i < b->n; i++) {
		if (rr[i].rc == 0 &&
		    store_hint_remove(n->store, b->target, b->h[i].key.data,
		        b->h[i].key.len, &b->h[i].set) == 0)
			done++;
		rpc_reply_fini(&rr[i]);
		buf_fini(&req[i]);
	}
	return done;
}

/* Hints for a member that was removed go to the replicas their keys have
 * now (this node merges its own share); a hint is done when every one of
 * them has it.  The number done. */
static size_t
reroute(struct handoff *ho, struct batch *b)
{
	struct node *n = ho->node;
	size_t done = 0;
	for (size_t i = 0; i < b->n; i++) {
		const struct hint *h = &b->h[i];
		struct keypos pos;
		struct replicas rp;
		if (keypos_of(h->key.data, h->key.len, &pos) != 0 ||
		    gossip_replicas(n->gossip, &pos, &rp) != 0)
			continue;
		const char *addrs[REPLICAS_MAX];
		size_t na = 0;
		bool ok = true;
		for (uint32_t k = 0; k < rp.count; k++) {
			if (strcmp(rp.name[k], n->name) == 0)
				ok = ok && replica_merge(n, h->key.data,
				               h->key.len, &h->set) == 0;
			else if (rpc_peer_usable(n->pool, rp.addr[k]))
				addrs[na++] = rp.addr[k];
			else
				ok = false; /* a replica is away: next time */
		}
		struct buf req;
		buf_init(&req);
		struct rpc_reply rr[REPLICAS_MAX];
		ok = ok && replica_request(n, &req, h->key.data, h->key.len,
		               &h->set, NULL) == 0;
		if (ok && na > 0) {
			ok = rpc_call_many(n->pool, addrs, na, &req, na,
			         n->cfg.timeout_ms, 0, rr) == na;
			for (size_t k = 0; k < na; k++)
				rpc_reply_fini(&rr[k]);
		}
		buf_fini(&req);
		if (ok && store_hint_remove(n->store, b->target, h->key.data,
		              h->key.len, &h->set) == 0)
			done++;
	}
	return done;
}

struct targets {
	char name[64][64];
	size_t n;
};

static int
list_target(const char *target, uint64_t count, void *arg)
{
	(void)count;
	struct targets *ts = arg;
	if (ts->n == 64)
		return 1;
	snprintf(ts->name[ts->n++], sizeof(ts->name[0]), "%s", target);
	return 0;
}

static int64_t
handoff_round(void *arg)
{
	struct handoff *ho = arg;
	struct batch *b = ho->batch;
	/* Target by target (one that is away must not hold up the others),
	 * batch by batch while deliveries succeed. */
	struct targets ts = {0};
	store_hint_counts(ho->node->store, list_target, &ts);
	for (size_t t = 0; t < ts.n; t++) {
		for (;;) {
			store_hint_scan(ho->node->store, ts.name[t], collect,
			    b);
			if (b->n == 0)
				break;
			bool left = gossip_is_left(ho->node->gossip, b->target);
			size_t done = left ? reroute(ho, b) : deliver(ho, b);
			batch_fini(b);
			if (done == 0)
				break;
			pthread_mutex_lock(&ho->lock);
			ho->delivered += done;
			pthread_mutex_unlock(&ho->lock);
			if (bgthread_stopping(&ho->thread))
				break;
		}
	}
	return HANDOFF_POLL_MS;
}

int
handoff_start(struct node *n, struct handoff **out)
{
	struct handoff *ho = mem_calloc(1, sizeof(*ho));
	if (!ho)
		return -ENOMEM;
	ho->node = n;
	pthread_mutex_init(&ho->lock, NULL);
	ho->batch = mem_calloc(1, sizeof(*ho->batch));
	int rc = ho->batch ? bgthread_start(&ho->thread, 0, handoff_round, ho)
	                   : -ENOMEM;
	if (rc) {
		handoff_stop(ho);
		return rc;
	}
	*out = ho;
	return 0;
}

void
handoff_stop(struct handoff *ho)
{
	if (!ho)
		return;
	bgthread_stop(&ho->thread);
	pthread_mutex_destroy(&ho->lock);
	mem_free(ho->batch);
	mem_free(ho);
}

uint64_t
handoff_delivered(struct handoff *ho)
{
	pthread_mutex_lock(&ho->lock);
	uint64_t d = ho->delivered;
	pthread_mutex_unlock(&ho->lock);
	return d;
}
