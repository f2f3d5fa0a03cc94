/*
 * httpd — a node's HTTP front for operators, on nng's HTTP server:
 *   GET /metrics  the Prometheus text exposition (metrics.h)
 *   GET /         a self-contained HTML page (no external asset, no
 *                 script) of the ring and the members as this node sees
 *                 them: what `dynamoctl status` shows of it
 * HEAD works on both; any other path gets nng's 404, another method 405,
 * a request with a body 400.  Read-only and unauthenticated: bind it to
 * loopback or a private network.
 *
 * Threads: nng runs handlers in its own threads, which also complete the
 * node's RPC calls, so nothing is rendered there: a handler queues its
 * request (at most HTTPD_QUEUE_MAX wait; more get 503 at once) for the one
 * httpd thread, which renders it (store and gossip reads: a short wait at
 * most, never a peer's) and completes nng's aio.  The queue's state is
 * shared with nng's handler objects and freed by the last of them, so a
 * handler that nng runs late, after httpd_stop, still finds it (and
 * answers 503).
 */
#ifndef DYN_HTTPD_H
#define DYN_HTTPD_H

#include <stdbool.h>

struct node;
struct httpd;

#define HTTPD_QUEUE_MAX 16

/* Would httpd_start take url (as far as its form goes)? */
bool httpd_url_ok(const char *url);
/* Serve node n's pages at url (tcp://HOST:PORT or http://HOST:PORT; port 0
 * picks a free one).  -EINVAL for another scheme or a bad URL, or nng's
 * error translated (-EADDRINUSE, ...).  The pages answer 503 until
 * n->ready.  n must outlive httpd_stop. */
int httpd_start(struct node *n, const char *url, struct httpd **out);
/* http://HOST:PORT, the port resolved; valid until httpd_stop. */
const char *httpd_url(const struct httpd *h);
/* Stop serving: requests queued or arriving get 503, connections are
 * closed, the thread joined; no wait on a client.  NULL is fine. */
void httpd_stop(struct httpd *h);

#endif
