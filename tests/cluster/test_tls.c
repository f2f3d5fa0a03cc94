/*
 * TLS (issue 12): a 3-node cluster whose nodes hold credentials of the
 * cluster's CA serves puts and gets over tls+tcp; a man in the middle (a
 * TCP relay in this test that forwards and records every byte) sees TLS
 * records and none of a distinctive key or value; a credential of another
 * CA, and a client speaking plain tcp, are refused cleanly (an error within
 * seconds, the node serving on); dynamoctl works with --cred.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "ca.h"
#include "err.h"
#include "harness.h"
#include "mem.h"

static struct harness h;

/* ---- the relay: 127.0.0.1:port -> the node, every byte recorded ---- */

struct relay {
	int lfd;
	uint16_t port;     /* where it listens */
	uint16_t upstream; /* the node's port */
	atomic_bool stop;
	pthread_t thread;
	pthread_mutex_t lock;
	uint8_t *seen[2]; /* [0] client to node, [1] node to client */
	size_t nseen[2], cap[2];
	int conns;
};

static void
relay_record(struct relay *r, int dir, const uint8_t *p, size_t n)
{
	pthread_mutex_lock(&r->lock);
	if (r->nseen[dir] + n > r->cap[dir]) {
		size_t cap = (r->nseen[dir] + n) * 2;
		r->seen[dir] = realloc(r->seen[dir], cap);
		CHECK(r->seen[dir] != NULL);
		r->cap[dir] = cap;
	}
	memcpy(r->seen[dir] + r->nseen[dir], p, n);
	r->nseen[dir] += n;
	pthread_mutex_unlock(&r->lock);
}

static int
connect_port(uint16_t port)
{
	struct sockaddr_in sa = {.sin_family = AF_INET,
	    .sin_port = htons(port)};
	inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	CHECK(fd >= 0);
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
		close(fd);
		return -1;
	}
	return fd;
}

/* One connection at a time, both ways, until either side closes or the
 * relay stops (nng's client keeps one connection per node). */
static void
relay_pipe(struct relay *r, int cfd)
{
	int ufd = connect_port(r->upstream);
	if (ufd < 0) {
		close(cfd);
		return;
	}
	struct pollfd pf[2] = {{.fd = cfd, .events = POLLIN},
	    {.fd = ufd, .events = POLLIN}};
	uint8_t buf[65536];
	while (!atomic_load(&r->stop)) {
		int n = poll(pf, 2, 100);
		if (n < 0 && errno != EINTR)
			break;
		bool done = false;
		for (int i = 0; i < 2 && n > 0; i++) {
			if (!(pf[i].revents & (POLLIN | POLLHUP | POLLERR)))
				continue;
			ssize_t got = read(pf[i].fd, buf, sizeof(buf));
			if (got <= 0) {
				done = true;
				break;
			}
			relay_record(r, i, buf, (size_t)got);
			int to = pf[1 - i].fd;
			for (ssize_t off = 0; off < got;) {
				ssize_t w = write(to, buf + off,
				    (size_t)(got - off));
				if (w <= 0) {
					done = true;
					break;
				}
				off += w;
			}
		}
		if (done)
			break;
	}
	close(ufd);
	close(cfd);
}

static void *
relay_main(void *arg)
{
	struct relay *r = arg;
	while (!atomic_load(&r->stop)) {
		struct pollfd pf = {.fd = r->lfd, .events = POLLIN};
		if (poll(&pf, 1, 100) <= 0)
			continue;
		int cfd = accept(r->lfd, NULL, NULL);
		if (cfd < 0)
			continue;
		pthread_mutex_lock(&r->lock);
		r->conns++;
		pthread_mutex_unlock(&r->lock);
		relay_pipe(r, cfd);
	}
	return NULL;
}

static void
relay_start(struct relay *r, const char *node_addr)
{
	memset(r, 0, sizeof(*r));
	pthread_mutex_init(&r->lock, NULL);
	r->upstream = (uint16_t)atoi(strrchr(node_addr, ':') + 1);
	r->lfd = socket(AF_INET, SOCK_STREAM, 0);
	CHECK(r->lfd >= 0);
	struct sockaddr_in sa = {.sin_family = AF_INET};
	inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
	CHECK(bind(r->lfd, (struct sockaddr *)&sa, sizeof(sa)) == 0);
	CHECK(listen(r->lfd, 8) == 0);
	socklen_t sl = sizeof(sa);
	CHECK(getsockname(r->lfd, (struct sockaddr *)&sa, &sl) == 0);
	r->port = ntohs(sa.sin_port);
	CHECK(pthread_create(&r->thread, NULL, relay_main, r) == 0);
}

static void
relay_stop(struct relay *r)
{
	atomic_store(&r->stop, true);
	pthread_join(r->thread, NULL);
	close(r->lfd);
}

/* After relay_stop, once its records were read. */
static void
relay_fini(struct relay *r)
{
	free(r->seen[0]);
	free(r->seen[1]);
	pthread_mutex_destroy(&r->lock);
}

/* ---- the checks ---- */

#define SECRET_KEY "tls-secret-key-6b1f0e"
#define SECRET_VAL "plaintext-value-that-must-not-leak-9d2c47"

static struct dyn_client *
client_at(const char *addr, const struct cred *cred, int timeout_ms)
{
	struct dyn_client_opts o = {
		.nodes = &addr,
		.nnodes = 1,
		.keys = cred ? cred->keys : h.keys,
		.cred = cred,
		.timeout_ms = timeout_ms,
		.no_routing = true,
	};
	struct dyn_client *c = NULL;
	CHECK_RC(dyn_client_new(&o, &c), 0);
	return c;
}

static void
get_is(struct dyn_client *c, const char *key, const char *want)
{
	struct dyn_get_result r;
	CHECK_RC(dyn_get(c, key, strlen(key), NULL, &r), 0);
	CHECK(r.versions.n == 1);
	CHECK(r.versions.v[0].len == strlen(want));
	CHECK(memcmp(r.versions.v[0].value, want, strlen(want)) == 0);
	dyn_get_result_fini(&r);
}

static void
check_cluster_serves(void)
{
	struct dyn_client *c = harness_client(&h, 5000, 0, 1, 2, -1);
	char key[64], val[64];
	for (int i = 0; i < 50; i++) {
		snprintf(key, sizeof(key), "k%d", i);
		snprintf(val, sizeof(val), "v%d", i);
		harness_put(c, key, val);
	}
	for (int i = 0; i < 50; i++) {
		snprintf(key, sizeof(key), "k%d", i);
		snprintf(val, sizeof(val), "v%d", i);
		get_is(c, key, val);
	}
	/* Every node answers directly too (each is a TLS server). */
	for (int i = 0; i < 3; i++) {
		struct dyn_client *d = harness_client_direct(&h, i);
		get_is(d, "k7", "v7");
		dyn_client_free(d);
	}
	dyn_client_free(c);
	fprintf(stderr, "tls: 50 puts and gets over TLS, every node answers\n");
}

static void
check_no_plaintext(void)
{
	struct relay r;
	relay_start(&r, h.nodes[0].addr);
	char addr[64];
	snprintf(addr, sizeof(addr), "tcp://127.0.0.1:%u", r.port);
	struct dyn_client *c = client_at(addr, &h.cred, 5000);
	harness_put(c, SECRET_KEY, SECRET_VAL);
	get_is(c, SECRET_KEY, SECRET_VAL);
	dyn_client_free(c);
	relay_stop(&r);

	/* The relay carried the conversation, as TLS records (a handshake
	 * record first: 0x16, version 3.x), and nothing of the secrets. */
	CHECK(r.conns >= 1);
	CHECK(r.nseen[0] > strlen(SECRET_VAL) && r.nseen[1] > 0);
	const uint8_t *s = r.seen[0];
	CHECK(s[0] == 0x16 && s[1] == 0x03);
	for (int d = 0; d < 2; d++) {
		CHECK(memmem(r.seen[d], r.nseen[d], SECRET_KEY,
		          strlen(SECRET_KEY)) == NULL);
		CHECK(memmem(r.seen[d], r.nseen[d], SECRET_VAL,
		          strlen(SECRET_VAL)) == NULL);
		CHECK(memmem(r.seen[d], r.nseen[d], "plaintext-value", 15) ==
		      NULL);
	}
	fprintf(stderr, "tls: the relay saw %zu + %zu bytes of TLS, no "
	    "plaintext key or value\n", r.nseen[0], r.nseen[1]);
	relay_fini(&r);
}

/* A put that must fail, and soon: its time in ms. */
static long long
put_refused(struct dyn_client *c)
{
	long long t0 = harness_now_ms();
	int rc = dyn_put(c, "refused", 7, NULL, 0, "x", 1, NULL, NULL, NULL);
	long long ms = harness_now_ms() - t0;
	CHECK(rc != 0);
	CHECK(ms < 8000);
	fprintf(stderr, "tls:   refused in %lld ms: %s\n", ms,
	    dyn_strerror(rc));
	return ms;
}

static void
check_other_ca_refused(void)
{
	char dir[600], path[700], err[512];
	snprintf(dir, sizeof(dir), "%s/other-ca", h.tmp);
	CHECK_RC(ca_init(dir, err, sizeof(err)), 0);
	snprintf(path, sizeof(path), "%s/intruder.pem", dir);
	struct ca_issue_opts o = {.name = "intruder", .role = AUTH_ADMIN};
	CHECK_RC(ca_issue(dir, &o, path, err, sizeof(err)), 0);
	struct cred other;
	CHECK_RC(cred_load(path, &other, err, sizeof(err)), 0);

	fprintf(stderr, "tls: a credential of another CA:\n");
	struct dyn_client *c = client_at(h.nodes[0].addr, &other, 2000);
	put_refused(c);
	dyn_client_free(c);
	cred_fini(&other);

	/* The node was not bothered. */
	struct dyn_client *d = harness_client_direct(&h, 0);
	get_is(d, "k3", "v3");
	dyn_client_free(d);
}

static void
check_plain_refused(void)
{
	fprintf(stderr, "tls: a plain tcp client:\n");
	struct dyn_client *c = client_at(h.nodes[1].addr, NULL, 2000);
	put_refused(c);
	dyn_client_free(c);

	/* A raw connection speaking nng's plain SP header is closed by the
	 * node (the TLS handshake fails), not held. */
	uint16_t port = (uint16_t)atoi(strrchr(h.nodes[1].addr, ':') + 1);
	int fd = connect_port(port);
	CHECK(fd >= 0);
	static const uint8_t sp[8] = {0, 'S', 'P', 0, 0, 0x31, 0, 0};
	CHECK(write(fd, sp, sizeof(sp)) == (ssize_t)sizeof(sp));
	struct pollfd pf = {.fd = fd, .events = POLLIN};
	long long t0 = harness_now_ms();
	bool closed = false;
	while (!closed && harness_now_ms() - t0 < 5000) {
		uint8_t b[512];
		if (poll(&pf, 1, 100) > 0 && read(fd, b, sizeof(b)) <= 0)
			closed = true;
	}
	close(fd);
	CHECK(closed);
	fprintf(stderr, "tls:   a raw plain SP connection was closed in %lld "
	    "ms\n", harness_now_ms() - t0);

	struct dyn_client *d = harness_client_direct(&h, 1);
	get_is(d, "k3", "v3");
	dyn_client_free(d);
}

static void
check_dynamoctl(void)
{
	char out[4096];
	const char *get[] = {"get", "k9", NULL};
	int st = harness_ctl(&h, 2, out, sizeof(out), get);
	if (st != 0 || strcmp(out, "v9") != 0) {
		fprintf(stderr, "dynamoctl get: status %d, '%s'\n", st, out);
		exit(1);
	}
	const char *status[] = {"status", NULL};
	st = harness_ctl(&h, 0, out, sizeof(out), status);
	if (st != 0) {
		fprintf(stderr, "dynamoctl status: status %d:\n%s\n", st, out);
		exit(1);
	}
	fprintf(stderr, "tls: dynamoctl --cred get and status work\n");
}

int
main(void)
{
	harness_init_tls(&h);
	harness_start_cluster(&h, 3);
	check_cluster_serves();
	check_no_plaintext();
	check_other_ca_refused();
	check_plain_refused();
	check_dynamoctl();
	for (int i = 0; i < 3; i++)
		CHECK(harness_stop(&h, i, SIGTERM) == 0);
	fprintf(stderr, "tls: ok\n");
	return 0;
}
