#include "httpd.h"

#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include <nng/nng.h>
#include <nng/supplemental/http/http.h>

#include "ae.h"
#include "buf.h"
#include "err.h"
#include "gossip.h"
#include "log.h"
#include "mem.h"
#include "metrics.h"
#include "mono.h"
#include "node_i.h"
#include "store.h"
#include "xfer.h"

enum page { PAGE_STATUS, PAGE_METRICS };

struct job {
	nng_aio *aio; /* the handler's: completed by respond() */
	enum page page;
};

/* What nng's handlers reach (their data): freed by the last reference,
 * httpd's own or a handler's (core_put is their destructor). */
struct core {
	atomic_int refs;
	pthread_mutex_t lock;
	pthread_cond_t cv;
	bool stopping;
	struct job q[HTTPD_QUEUE_MAX]; /* a ring: head, n */
	size_t head, n;
};

struct httpd {
	struct node *node;
	struct core *core;
	nng_http_server *srv;
	bool srv_started;
	pthread_t thread;
	bool started;
	char url[RING_ADDR_MAX + 16];
};

static void
core_put(void *arg)
{
	struct core *c = arg;
	if (c && atomic_fetch_sub(&c->refs, 1) == 1) {
		pthread_cond_destroy(&c->cv);
		pthread_mutex_destroy(&c->lock);
		mem_free(c);
	}
}

/* Complete a handler's aio: 200 with body, or nng's error page of status
 * (body NULL).  When even that fails nng closes the connection. */
static void
respond(nng_aio *aio, uint16_t status, const char *ctype,
    const struct buf *body)
{
	nng_http_res *res = NULL;
	int rv = body ? nng_http_res_alloc(&res)
	              : nng_http_res_alloc_error(&res, status);
	if (rv == 0 && body) {
		rv = nng_http_res_set_header(res, "Content-Type", ctype);
		if (rv == 0)
			rv = nng_http_res_set_header(res, "Cache-Control",
			    "no-store");
		if (rv == 0)
			rv = nng_http_res_copy_data(res,
			    body->len ? (const void *)body->data : "", body->len);
	}
	if (rv != 0) {
		if (res)
			nng_http_res_free(res);
		nng_aio_finish(aio, rv);
		return;
	}
	nng_aio_set_output(aio, 0, res);
	nng_aio_finish(aio, 0);
}

/* In nng's thread: queue the request for httpd's, or answer 503. */
static void
on_request(nng_aio *aio, enum page page)
{
	struct core *c = nng_http_handler_get_data(nng_aio_get_input(aio, 1));
	pthread_mutex_lock(&c->lock);
	bool queued = !c->stopping && c->n < HTTPD_QUEUE_MAX;
	if (queued) {
		c->q[(c->head + c->n++) % HTTPD_QUEUE_MAX] =
		    (struct job){aio, page};
		pthread_cond_signal(&c->cv);
	}
	pthread_mutex_unlock(&c->lock);
	if (!queued)
		respond(aio, NNG_HTTP_STATUS_SERVICE_UNAVAILABLE, NULL, NULL);
}

static void
on_metrics(nng_aio *aio)
{
	on_request(aio, PAGE_METRICS);
}

static void
on_status(nng_aio *aio)
{
	on_request(aio, PAGE_STATUS);
}

/* ---- the status page ------------------------------------------------- */

/* s with &, <, >, " and ' escaped. */
static void
html(struct buf *b, const char *s)
{
	for (; *s; s++) {
		switch (*s) {
		case '&': buf_printf(b, "&amp;"); break;
		case '<': buf_printf(b, "&lt;"); break;
		case '>': buf_printf(b, "&gt;"); break;
		case '"': buf_printf(b, "&quot;"); break;
		case '\'': buf_printf(b, "&#39;"); break;
		default: buf_put(b, s, 1); break;
		}
	}
}

struct hint_tally {
	char target[GOSSIP_MEMBERS_MAX][STORE_TARGET_MAX + 1];
	uint64_t count[GOSSIP_MEMBERS_MAX];
	size_t n;
	uint64_t total;
};

static int
tally_hints(const char *target, uint64_t count, void *arg)
{
	struct hint_tally *t = arg;
	t->total += count;
	if (t->n < GOSSIP_MEMBERS_MAX) {
		snprintf(t->target[t->n], sizeof(t->target[0]), "%s", target);
		t->count[t->n++] = count;
	}
	return 0;
}

static uint64_t
hints_for(const struct hint_tally *t, const char *name)
{
	for (size_t i = 0; i < t->n; i++)
		if (strcmp(t->target[i], name) == 0)
			return t->count[i];
	return 0;
}

/* The health line: "healthy", or "degraded: " and every reason. */
static void
health(struct buf *b, const struct gossip_view *v, uint64_t hints,
    uint32_t xdone, uint32_t xtotal)
{
	struct buf why;
	buf_init(&why);
	for (size_t i = 0; i < v->nmembers; i++) {
		const struct gossip_member *m = &v->members[i];
		if (m->status == MEMBER_LEFT)
			continue;
		if (!m->reachable || m->status != MEMBER_UP) {
			buf_printf(&why, "%s", why.len ? "; " : "");
			html(&why, m->name);
			buf_printf(&why, " %s", !m->reachable ? "unreachable"
			                                      : "leaving");
		}
	}
	if (hints > 0)
		buf_printf(&why, "%s%" PRIu64 " hints held here", why.len ? "; "
		    : "", hints);
	if (v->transfer_pending)
		buf_printf(&why, "%stransfer running (%u of %u partitions "
		    "pulled here)", why.len ? "; " : "", xdone, xtotal);
	if (why.len == 0)
		buf_printf(b, "<p class=\"ok\">healthy</p>\n");
	else
		buf_printf(b, "<p class=\"bad\">degraded: %.*s</p>\n",
		    (int)why.len, (const char *)why.data);
	buf_fini(&why);
}

static void
row(struct buf *b, const char *key, const char *val)
{
	buf_printf(b, "<tr><th>%s</th><td>", key);
	html(b, val);
	buf_printf(b, "</td></tr>\n");
}

static void
row_u64(struct buf *b, const char *key, uint64_t v)
{
	buf_printf(b, "<tr><th>%s</th><td class=\"n\">%" PRIu64 "</td></tr>\n",
	    key, v);
}

static void
status_page(struct httpd *h, struct buf *b)
{
	struct node *n = h->node;
	struct gossip_view *v = NULL;
	struct store_stats st;
	struct hint_tally *ht = mem_calloc(1, sizeof(*ht));
	struct ae_stats as;
	struct xfer_progress xp;
	if (!ht || gossip_view(n->gossip, &v) != 0 ||
	    store_stats(n->store, &st) != 0) {
		if (!b->err)
			b->err = -EIO;
		goto out;
	}
	store_hint_counts(n->store, tally_hints, ht);
	xfer_progress(n->xfer, &xp);
	ae_stats(n->ae, &as);

	buf_printf(b, "<!DOCTYPE html>\n<html lang=\"en\"><head>"
	    "<meta charset=\"utf-8\">\n"
	    "<meta http-equiv=\"refresh\" content=\"5\">\n<title>dynamo ");
	html(b, n->name);
	buf_printf(b, "</title>\n<style>\n"
	    "body{font-family:sans-serif;margin:2em;color:#222}\n"
	    "table{border-collapse:collapse;margin-bottom:1.5em}\n"
	    "th,td{padding:.25em .9em;border-bottom:1px solid #ddd;"
	    "text-align:left}\n"
	    "td.n{text-align:right;font-variant-numeric:tabular-nums}\n"
	    ".ok{color:#070;font-weight:bold}.bad{color:#b00;"
	    "font-weight:bold}\n</style></head>\n<body>\n<h1>dynamo node ");
	html(b, n->name);
	buf_printf(b, "</h1>\n");
	health(b, v, ht->total, xp.done, xp.total);

	char tmp[64];
	buf_printf(b, "<table>\n");
	row(b, "address", n->addr);
	row(b, "HTTP", h->url);
	snprintf(tmp, sizeof(tmp), "%016" PRIx64, n->actor);
	row(b, "actor", tmp);
	row_u64(b, "uptime (s)", (mono_ms() - n->start_ms) / 1000);
	row_u64(b, "ring epoch", v->ring_epoch);
	row_u64(b, "partitions", v->partitions);
	snprintf(tmp, sizeof(tmp), "%u / %u / %u", v->settings.n,
	    v->settings.r, v->settings.w);
	row(b, "N / R / W", tmp);
	row_u64(b, "keys here", st.keys);
	row_u64(b, "data in use (bytes)", st.used_bytes);
	row_u64(b, "data file (bytes)", st.file_bytes);
	row_u64(b, "hints held here", st.hints);
	row_u64(b, "anti-entropy rounds", as.rounds);
	if (v->transfer_pending) {
		snprintf(tmp, sizeof(tmp), "%u of %u partitions", xp.done,
		    xp.total);
		row(b, "transfer", tmp);
	}
	buf_printf(b, "</table>\n<h2>Members</h2>\n<table>\n<tr><th>name</th>"
	    "<th>address</th><th>state</th><th>reachable</th>"
	    "<th>partitions</th><th>%%</th><th>keys</th>"
	    "<th>hints held here</th><th>ring epoch</th></tr>\n");
	for (size_t i = 0; i < v->nmembers; i++) {
		const struct gossip_member *m = &v->members[i];
		buf_printf(b, "<tr><td>");
		html(b, m->name);
		buf_printf(b, "</td><td>");
		html(b, m->addr);
		buf_printf(b, "</td><td>%s</td><td class=\"%s\">%s</td>"
		    "<td class=\"n\">%u</td><td class=\"n\">%.1f</td>",
		    gossip_status_name(m->status),
		    m->reachable ? "ok" : "bad", m->reachable ? "yes" : "no",
		    m->partitions,
		    v->partitions ? 100.0 * m->partitions / v->partitions : 0.0);
		if (i == 0)
			buf_printf(b, "<td class=\"n\">%" PRIu64 "</td>", st.keys);
		else
			buf_printf(b, "<td class=\"n\">&ndash;</td>");
		buf_printf(b, "<td class=\"n\">%" PRIu64 "</td>"
		    "<td class=\"n\">%" PRIu64 "</td></tr>\n",
		    hints_for(ht, m->name), m->ring_seen);
	}
	buf_printf(b, "</table>\n<p>As node ");
	html(b, n->name);
	buf_printf(b, " sees the cluster; keys are counted by each member "
	    "(see its own page). <a href=\"/metrics\">metrics</a></p>\n"
	    "</body></html>\n");
out:
	mem_free(v);
	mem_free(ht);
}

/* ---- the thread ------------------------------------------------------ */

static void
serve(struct httpd *h, const struct job *j, struct buf *b)
{
	buf_reset(b);
	const char *ctype;
	if (!atomic_load(&h->node->ready)) {
		/* Still starting: the parts the pages read are not all up. */
		respond(j->aio, NNG_HTTP_STATUS_SERVICE_UNAVAILABLE, NULL, NULL);
		return;
	}
	if (j->page == PAGE_METRICS) {
		metrics_render(h->node, b);
		ctype = "text/plain; version=0.0.4; charset=utf-8";
	} else {
		status_page(h, b);
		ctype = "text/html; charset=utf-8";
	}
	if (buf_err(b) != 0) {
		LOG_WARN("http: %s page: %s",
		    j->page == PAGE_METRICS ? "metrics" : "status",
		    dyn_strerror(buf_err(b)));
		respond(j->aio, NNG_HTTP_STATUS_INTERNAL_SERVER_ERROR, NULL,
		    NULL);
		return;
	}
	respond(j->aio, NNG_HTTP_STATUS_OK, ctype, b);
}

static void *
httpd_main(void *arg)
{
	struct httpd *h = arg;
	struct core *c = h->core;
	struct buf b;
	buf_init(&b);
	pthread_mutex_lock(&c->lock);
	for (;;) {
		while (!c->stopping && c->n == 0)
			pthread_cond_wait(&c->cv, &c->lock);
		if (c->n == 0)
			break; /* stopping, and nothing is left waiting */
		struct job j = c->q[c->head];
		c->head = (c->head + 1) % HTTPD_QUEUE_MAX;
		c->n--;
		bool stop = c->stopping;
		pthread_mutex_unlock(&c->lock);
		if (stop)
			respond(j.aio, NNG_HTTP_STATUS_SERVICE_UNAVAILABLE, NULL,
			    NULL);
		else
			serve(h, &j, &b);
		pthread_mutex_lock(&c->lock);
	}
	pthread_mutex_unlock(&c->lock);
	buf_fini(&b);
	return NULL;
}

/* ---- life cycle ------------------------------------------------------ */

/* tcp://HOST:PORT or http://HOST:PORT, nothing after the port, as nng's
 * http URL. */
static int
parse_url(const char *in, nng_url **out)
{
	char url[RING_ADDR_MAX + 16];
	const char *rest = strncmp(in, "tcp://", 6) == 0    ? in + 6
	                 : strncmp(in, "http://", 7) == 0 ? in + 7
	                                                   : NULL;
	if (!rest || (size_t)snprintf(url, sizeof(url), "http://%s", rest) >=
	        sizeof(url))
		return -EINVAL;
	if (nng_url_parse(out, url) != 0)
		return -EINVAL;
	/* A host name or address, nothing that needs quoting in the URL
	 * status --json shows. */
	const char *host = (*out)->u_hostname, *path = (*out)->u_path;
	static const char ok[] = "abcdefghijklmnopqrstuvwxyz"
	                         "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-:";
	if (strspn(host, ok) != strlen(host) ||
	    (path[0] && strcmp(path, "/") != 0) || (*out)->u_query ||
	    (*out)->u_fragment || (*out)->u_userinfo) {
		nng_url_free(*out);
		*out = NULL;
		return -EINVAL;
	}
	return 0;
}

static int
add_page(struct httpd *h, const char *path, void (*cb)(nng_aio *))
{
	nng_http_handler *hh;
	int rv = nng_http_handler_alloc(&hh, path, cb);
	if (rv != 0)
		return err_from_nng(rv);
	atomic_fetch_add(&h->core->refs, 1);
	if ((rv = nng_http_handler_set_data(hh, h->core, core_put)) != 0) {
		core_put(h->core); /* not the handler's to drop */
		nng_http_handler_free(hh);
		return err_from_nng(rv);
	}
	/* A GET has no body: one that has is refused with 400. */
	if ((rv = nng_http_handler_collect_body(hh, true, 0)) == 0)
		rv = nng_http_server_add_handler(h->srv, hh);
	if (rv != 0)
		nng_http_handler_free(hh); /* drops its reference */
	return err_from_nng(rv);
}

bool
httpd_url_ok(const char *url)
{
	nng_url *u = NULL;
	if (parse_url(url, &u) != 0)
		return false;
	nng_url_free(u);
	return true;
}

int
httpd_start(struct node *n, const char *url, struct httpd **out)
{
	nng_url *u = NULL;
	int rc = parse_url(url, &u);
	if (rc != 0) {
		LOG_ERROR("http on %s: not tcp://HOST:PORT", url);
		return rc;
	}
	struct httpd *h = mem_calloc(1, sizeof(*h));
	struct core *c = mem_calloc(1, sizeof(*c));
	if (!h || !c) {
		mem_free(h);
		mem_free(c);
		nng_url_free(u);
		return -ENOMEM;
	}
	h->node = n;
	h->core = c;
	atomic_init(&c->refs, 1);
	pthread_mutex_init(&c->lock, NULL);
	pthread_cond_init(&c->cv, NULL);

	int rv = nng_http_server_hold(&h->srv, u);
	if (rv != 0) {
		h->srv = NULL;
		rc = err_from_nng(rv);
		goto fail;
	}
	if ((rc = add_page(h, "/", on_status)) != 0 ||
	    (rc = add_page(h, "/metrics", on_metrics)) != 0)
		goto fail;
	if ((rc = -pthread_create(&h->thread, NULL, httpd_main, h)) != 0)
		goto fail;
	h->started = true;
	if ((rv = nng_http_server_start(h->srv)) != 0) {
		rc = err_from_nng(rv);
		goto fail;
	}
	h->srv_started = true;

	/* The port nng bound (port 0 asked for any). */
	nng_sockaddr sa;
	unsigned port = 0;
	if (nng_http_server_get_addr(h->srv, &sa) == 0)
		port = sa.s_family == NNG_AF_INET6 ? ntohs(sa.s_in6.sa_port)
		                                   : ntohs(sa.s_in.sa_port);
	bool v6 = strchr(u->u_hostname, ':') != NULL;
	snprintf(h->url, sizeof(h->url), "http://%s%s%s:%u", v6 ? "[" : "",
	    u->u_hostname, v6 ? "]" : "", port);
	nng_url_free(u);
	*out = h;
	return 0;
fail:
	LOG_ERROR("http on %s: %s", url, dyn_strerror(rc));
	nng_url_free(u);
	httpd_stop(h);
	return rc;
}

const char *
httpd_url(const struct httpd *h)
{
	return h->url;
}

void
httpd_stop(struct httpd *h)
{
	if (!h)
		return;
	/* The thread answers what is queued with 503 and ends; a handler
	 * that runs from now on answers 503 itself. */
	pthread_mutex_lock(&h->core->lock);
	h->core->stopping = true;
	pthread_cond_broadcast(&h->core->cv);
	pthread_mutex_unlock(&h->core->lock);
	if (h->started)
		pthread_join(h->thread, NULL);
	if (h->srv) {
		/* Closes the listener and every connection without waiting
		 * on a client; nng frees the server (and our handlers, which
		 * drop their references) on its reaper thread. */
		if (h->srv_started)
			nng_http_server_stop(h->srv);
		nng_http_server_release(h->srv);
	}
	core_put(h->core);
	mem_free(h);
}
