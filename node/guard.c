#include "guard.h"

#include <arpa/inet.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "bgthread.h"
#include "log.h"
#include "mem.h"
#include "mono.h"
#include "node_i.h"

/*
 *   nng poller --ADD_PRE--> pipe_event: over the cap? close it : table
 *              --REM_POST-> pipe_event: forget it (why did it end?)
 *   worker     --busy/done-> the pipe's last activity
 *   reaper     --every tick-> close pipes idle for idle_ms
 *
 * Callbacks run on nng's threads and only take the table's lock; every
 * nng_pipe_close is made outside it (nng may run a pipe's notifications
 * from the closing thread).
 */
#define GUARD_BUCKETS 1024
#define REAP_BATCH    256 /* pipes closed per pass of the table */

struct gpipe {
	uint32_t id;
	nng_pipe pipe;
	long long last_ms; /* accepted, or a request delivered or answered */
	unsigned busy;     /* requests being served */
	bool closing;      /* closed by the guard: the reaper, the cap */
	bool trusted;      /* it delivered a request that authenticated */
	char addr[64];     /* "IP:PORT" for the log */
	char host[48];     /* "IP": the log limiter's key */
	struct gpipe *next;
};

struct guard {
	pthread_mutex_t lock;
	struct gpipe *bucket[GUARD_BUCKETS];
	size_t open;
	unsigned max_conns;
	int idle_ms;
	unsigned workers;
	unsigned serving; /* requests being served: the busy of every pipe */
	atomic_bool closing; /* the socket closes: no verdicts any more */
	int tick_ms;         /* the reaper's */
	struct bgthread reaper;
	struct log_limit limit;
	atomic_uint_fast64_t conns_total, conns_refused, idle_closed,
	    oversize, bad_tags;
};

static void
addr_format(nng_pipe pipe, char *addr, size_t acap, char *host, size_t hcap)
{
	nng_sockaddr sa;
	char ip[INET6_ADDRSTRLEN] = "?";
	unsigned port = 0;
	if (nng_pipe_get_addr(pipe, NNG_OPT_REMADDR, &sa) == 0) {
		if (sa.s_family == NNG_AF_INET) {
			inet_ntop(AF_INET, &sa.s_in.sa_addr, ip, sizeof(ip));
			port = ntohs(sa.s_in.sa_port);
		} else if (sa.s_family == NNG_AF_INET6) {
			inet_ntop(AF_INET6, sa.s_in6.sa_addr, ip, sizeof(ip));
			port = ntohs(sa.s_in6.sa_port);
		}
	}
	snprintf(host, hcap, "%s", ip);
	snprintf(addr, acap, "%s:%u", ip, port);
}

/* The log limiter's key: one line per address and reason per interval,
 * so that one reason's flood does not hide another's first line. */
static void
limit_key(char *key, size_t cap, const char *host, const char *reason)
{
	snprintf(key, cap, "%.16s %.46s", reason, host);
}

static struct gpipe **
slot_of_locked(struct guard *g, uint32_t id)
{
	struct gpipe **pp = &g->bucket[id % GUARD_BUCKETS];
	while (*pp && (*pp)->id != id)
		pp = &(*pp)->next;
	return pp;
}

static void
pipe_added(struct guard *g, nng_pipe pipe)
{
	struct gpipe *e = mem_calloc(1, sizeof(*e));
	if (!e) {
		/* No room to track it: not a connection to keep. */
		nng_pipe_close(pipe);
		return;
	}
	e->id = nng_pipe_id(pipe);
	e->pipe = pipe;
	e->last_ms = (long long)mono_ms();
	addr_format(pipe, e->addr, sizeof(e->addr), e->host, sizeof(e->host));

	pthread_mutex_lock(&g->lock);
	size_t open = g->open;
	bool over = open >= g->max_conns;
	if (!over) {
		struct gpipe **pp = slot_of_locked(g, e->id);
		if (!*pp) {
			*pp = e;
			g->open++;
			e = NULL;
		}
	}
	pthread_mutex_unlock(&g->lock);
	if (over) {
		char key[LOG_LIMIT_KEYLEN];
		limit_key(key, sizeof(key), e->host, "cap");
		atomic_fetch_add(&g->conns_refused, 1);
		log_limited(&g->limit, key, LOG_LVL_WARN,
		    "refused a connection from %s: connection cap (%zu open, "
		    "--max-connections)", e->addr, open);
		nng_pipe_close(pipe);
	} else {
		atomic_fetch_add(&g->conns_total, 1);
	}
	mem_free(e);
}

static void
pipe_removed(struct guard *g, nng_pipe pipe)
{
	pthread_mutex_lock(&g->lock);
	struct gpipe **pp = slot_of_locked(g, nng_pipe_id(pipe));
	struct gpipe *e = *pp;
	if (e) {
		*pp = e->next;
		g->open--;
		g->serving -= e->busy; /* its requests' done find no entry */
	}
	pthread_mutex_unlock(&g->lock);
	if (!e)
		return; /* refused on arrival */
	/*
	 * nng does not say why a pipe ended.  One that the peer hung up on
	 * has lost its remote address by now; one that nng closed itself
	 * while the connection was up did so for an error on our side of
	 * it, and the only such error of the rep protocol is the transport
	 * refusing a message declared over NNG_OPT_RECVMAXSZ (or running out
	 * of memory for one).  Our own closes and the socket's are known.
	 * The address test is a race, though: a peer's clean close often
	 * leaves it readable (every unmount logged this line), so a peer that
	 * has sent a request that authenticated is not suspected: a node
	 * refuses to send over the cap itself (rpc_pool_set_max_request),
	 * and what clients and mounts send is far under it.
	 */
	nng_sockaddr sa;
	if (!e->closing && !e->trusted && !atomic_load(&g->closing) &&
	    nng_pipe_get_addr(pipe, NNG_OPT_REMADDR, &sa) == 0) {
		char key[LOG_LIMIT_KEYLEN];
		limit_key(key, sizeof(key), e->host, "size");
		atomic_fetch_add(&g->oversize, 1);
		log_limited(&g->limit, key, LOG_LVL_WARN,
		    "closed the connection of %s: over max-request (a message "
		    "declared over --max-request)", e->addr);
	}
	mem_free(e);
}

static void
pipe_event(nng_pipe pipe, nng_pipe_ev ev, void *arg)
{
	struct guard *g = arg;
	if (ev == NNG_PIPE_EV_ADD_PRE && !atomic_load(&g->closing))
		pipe_added(g, pipe);
	else if (ev == NNG_PIPE_EV_REM_POST)
		pipe_removed(g, pipe);
}

/* Close up to REAP_BATCH idle pipes; true when there may be more. */
static bool
reap_once(struct guard *g)
{
	nng_pipe victims[REAP_BATCH];
	bool trusted[REAP_BATCH];
	char addrs[REAP_BATCH][64];
	char hosts[REAP_BATCH][48];
	size_t n = 0;
	long long now = (long long)mono_ms();

	pthread_mutex_lock(&g->lock);
	bool saturated = g->workers && g->serving >= g->workers;
	for (size_t b = 0; b < GUARD_BUCKETS && n < REAP_BATCH; b++) {
		for (struct gpipe *e = g->bucket[b]; e && n < REAP_BATCH;
		     e = e->next) {
			if (e->busy || e->closing ||
			    now - e->last_ms < g->idle_ms ||
			    (saturated && e->trusted))
				continue;
			e->closing = true;
			victims[n] = e->pipe;
			trusted[n] = e->trusted;
			memcpy(addrs[n], e->addr, sizeof(addrs[n]));
			memcpy(hosts[n], e->host, sizeof(hosts[n]));
			n++;
		}
	}
	pthread_mutex_unlock(&g->lock);

	for (size_t i = 0; i < n; i++) {
		char key[LOG_LIMIT_KEYLEN];
		limit_key(key, sizeof(key), hosts[i], "idle");
		atomic_fetch_add(&g->idle_closed, 1);
		/* A peer that spoke with the key and went quiet is no news
		 * (a client done for now, a node with nothing to say); it
		 * dials again when it has a request. */
		log_limited(&g->limit, key,
		    trusted[i] ? LOG_LVL_DEBUG : LOG_LVL_INFO,
		    "closed the connection of %s: idle (no complete request "
		    "in %d s, --idle-timeout)", addrs[i], g->idle_ms / 1000);
		nng_pipe_close(victims[i]);
	}
	return n == REAP_BATCH;
}

static int64_t
reaper_round(void *arg)
{
	struct guard *g = arg;
	while (reap_once(g))
		;
	return g->tick_ms;
}

int
guard_new(nng_socket sock, const struct guard_opts *o, struct guard **out)
{
	struct guard *g = mem_calloc(1, sizeof(*g));
	if (!g)
		return -ENOMEM;
	pthread_mutex_init(&g->lock, NULL);
	log_limit_init(&g->limit, 0);
	g->max_conns = o && o->max_conns ? o->max_conns : GUARD_MAX_CONNS;
	g->idle_ms = o && o->idle_ms > 0 ? o->idle_ms : GUARD_IDLE_MS;
	g->workers = o ? o->workers : 0;
	/* A pipe is closed between idle_ms and idle_ms + tick after its
	 * last request. */
	int tick = g->idle_ms / 4;
	g->tick_ms = tick < 50 ? 50 : tick > 1000 ? 1000 : tick;

	int rv = nng_pipe_notify(sock, NNG_PIPE_EV_ADD_PRE, pipe_event, g);
	if (rv == 0)
		rv = nng_pipe_notify(sock, NNG_PIPE_EV_REM_POST, pipe_event, g);
	int rc = rv ? -EINVAL : bgthread_start(&g->reaper, g->tick_ms,
	    reaper_round, g);
	if (rc != 0) {
		nng_pipe_notify(sock, NNG_PIPE_EV_ADD_PRE, NULL, NULL);
		nng_pipe_notify(sock, NNG_PIPE_EV_REM_POST, NULL, NULL);
		guard_free(g);
		return rc;
	}
	*out = g;
	return 0;
}

static void
pipe_touch(struct guard *g, nng_pipe pipe, int busy)
{
	pthread_mutex_lock(&g->lock);
	struct gpipe *e = *slot_of_locked(g, nng_pipe_id(pipe));
	if (e) {
		e->last_ms = (long long)mono_ms();
		if (busy > 0) {
			e->busy++;
			g->serving++;
		} else if (e->busy) {
			e->busy--;
			g->serving--;
		}
	}
	pthread_mutex_unlock(&g->lock);
}

void
guard_pipe_busy(struct guard *g, nng_pipe pipe)
{
	pipe_touch(g, pipe, 1);
}

void
guard_pipe_done(struct guard *g, nng_pipe pipe)
{
	pipe_touch(g, pipe, -1);
}

void
guard_pipe_trust(struct guard *g, nng_pipe pipe)
{
	pthread_mutex_lock(&g->lock);
	struct gpipe *e = *slot_of_locked(g, nng_pipe_id(pipe));
	if (e)
		e->trusted = true;
	pthread_mutex_unlock(&g->lock);
}

void
guard_log_refused(struct guard *g, nng_pipe pipe, const char *why)
{
	char addr[64], host[48];
	char key[LOG_LIMIT_KEYLEN];
	addr_format(pipe, addr, sizeof(addr), host, sizeof(host));
	limit_key(key, sizeof(key), host, why);
	log_limited(&g->limit, key, LOG_LVL_WARN,
	    "refused a request from %s: %s", addr, why);
}

void
guard_reject(struct guard *g, nng_pipe pipe, const char *why)
{
	atomic_fetch_add(&g->bad_tags, 1);
	guard_log_refused(g, pipe, why);
}

void
guard_stats(struct guard *g, struct guard_stats *out)
{
	pthread_mutex_lock(&g->lock);
	out->conns = g->open;
	pthread_mutex_unlock(&g->lock);
	out->conns_total = atomic_load(&g->conns_total);
	out->conns_refused = atomic_load(&g->conns_refused);
	out->idle_closed = atomic_load(&g->idle_closed);
	out->oversize = atomic_load(&g->oversize);
	out->bad_tags = atomic_load(&g->bad_tags);
}

void
guard_stopping(struct guard *g)
{
	if (g)
		atomic_store(&g->closing, true);
}

void
guard_free(struct guard *g)
{
	if (!g)
		return;
	bgthread_stop(&g->reaper);
	for (size_t b = 0; b < GUARD_BUCKETS; b++) {
		while (g->bucket[b]) {
			struct gpipe *e = g->bucket[b];
			g->bucket[b] = e->next;
			mem_free(e);
		}
	}
	log_limit_fini(&g->limit);
	pthread_mutex_destroy(&g->lock);
	mem_free(g);
}
