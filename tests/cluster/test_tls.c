/*
 * TLS (issue 12): a 3-node cluster whose nodes hold credentials of the
 * cluster's CA serves puts and gets over tls+tcp; a man in the middle (a
 * TCP relay in this test that forwards and records every byte) sees TLS
 * records and none of a distinctive key or value; a credential of another
 * CA, and a client speaking plain tcp, are refused cleanly (an error within
 * seconds, the node serving on); dynamoctl works with --cred; a client
 * certificate may get and put but not remove, leave or fault, and starts
 * no node; a node certificate of another CA cannot join.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
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
	/* One version, or several of the same value: a blind put that timed
	 * out somewhere (a forward on a loaded machine) and was coordinated
	 * again is two versions, as Dynamo makes them. */
	CHECK(r.versions.n >= 1);
	for (uint32_t i = 0; i < r.versions.n; i++) {
		CHECK(r.versions.v[i].len == strlen(want));
		CHECK(memcmp(r.versions.v[i].value, want, strlen(want)) == 0);
	}
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

/* A put that must fail, and soon, with `want` (0: any error): its time
 * in ms. */
static long long
put_refused(struct dyn_client *c, int want)
{
	long long t0 = harness_now_ms();
	int rc = dyn_put(c, "refused", 7, NULL, 0, "x", 1, NULL, NULL, NULL);
	long long ms = harness_now_ms() - t0;
	CHECK(rc != 0);
	if (want)
		CHECK_RC(rc, want);
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
	put_refused(c, DYN_ETLS); /* the handshake says why, not a timeout */
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
	put_refused(c, 0);
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

/* dynamoctl with the credential at cred (it overrides the harness's
 * --cred: the last one wins) against node i; its exit status, its output
 * in out. */
static int
ctl_as(const char *cred, int i, char *out, size_t cap, const char *cmd,
    const char *arg)
{
	const char *args[] = {"--cred", cred, "--timeout", "2000", cmd, arg,
	    NULL};
	return harness_ctl(&h, i, out, cap, args);
}

/* Start dynamod with args (its log in log) and wait for it to exit
 * within ms: its exit status, or -1 (killed) when it was still running. */
static int
dynamod_run(const char *const *args, const char *log, int ms, pid_t *left)
{
	const char *argv[32];
	int a = 0;
	argv[a++] = h.dynamod;
	for (int k = 0; args[k] && a < 31; k++)
		argv[a++] = args[k];
	argv[a] = NULL;
	pid_t pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		/* Its own output only: the test's stdout is meson's pipe,
		 * which a child left running would hold open. */
		int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0644);
		if (fd >= 0) {
			dup2(fd, 1);
			dup2(fd, 2);
			close(fd);
		}
		execv(h.dynamod, (char *const *)argv);
		_exit(127);
	}
	long long t0 = harness_now_ms();
	int st;
	while (harness_now_ms() - t0 < ms) {
		if (waitpid(pid, &st, WNOHANG) == pid)
			return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
		harness_pause_ms(50);
	}
	*left = pid;
	return -1;
}

static void
check_roles(void)
{
	char laptop[600], out[4096];
	harness_issue(&h, "laptop", AUTH_CLIENT, laptop, sizeof(laptop));

	/* A client certificate gets and puts... */
	CHECK(ctl_as(laptop, 0, out, sizeof(out), "get", "k5") == 0);
	CHECK(strcmp(out, "v5") == 0);
	/* ... but changes no membership and cuts no link. */
	static const char *const refused[][2] = {
	    {"remove", "n2"}, {"leave", NULL}, {"fault", "heal"}};
	for (size_t i = 0; i < 3; i++) {
		int st = ctl_as(laptop, 0, out, sizeof(out), refused[i][0],
		    refused[i][1]);
		if (st == 0 || !strstr(out, "role")) {
			fprintf(stderr, "client %s: status %d: %s\n",
			    refused[i][0], st, out);
			exit(1);
		}
	}
	fprintf(stderr, "tls: a client certificate gets, and is refused "
	    "remove, leave and fault\n");

	/* It starts no node. */
	char dir[600], log[600];
	snprintf(dir, sizeof(dir), "%s/laptop-node", h.tmp);
	snprintf(log, sizeof(log), "%s/laptop-node.log", h.tmp);
	const char *as_node[] = {"--name", "laptop", "--listen",
	    "tcp://127.0.0.1:0", "--data", dir, "--cred", laptop, "--seed",
	    h.nodes[0].addr, NULL};
	pid_t left = 0;
	int st = dynamod_run(as_node, log, 10000, &left);
	if (st != 1) {
		if (st == -1) {
			kill(left, SIGKILL);
			waitpid(left, NULL, 0);
		}
		fprintf(stderr, "dynamod with a client certificate: status %d "
		    "(log %s)\n", st, log);
		exit(1);
	}

	/* A node certificate of another CA: its dials fail the handshake,
	 * it never becomes a member. */
	char oca[600], opem[700], err[512];
	snprintf(oca, sizeof(oca), "%s/other-ca", h.tmp); /* made above */
	snprintf(opem, sizeof(opem), "%s/rogue.pem", oca);
	struct ca_issue_opts o = {.name = "rogue", .role = AUTH_NODE};
	CHECK_RC(ca_issue(oca, &o, opem, err, sizeof(err)), 0);
	snprintf(dir, sizeof(dir), "%s/rogue", h.tmp);
	snprintf(log, sizeof(log), "%s/rogue.log", h.tmp);
	const char *rogue[] = {"--name", "rogue", "--listen",
	    "tcp://127.0.0.1:0", "--data", dir, "--cred", opem, "--seed",
	    h.nodes[0].addr, "--gossip-interval", "250", NULL};
	st = dynamod_run(rogue, log, 3000, &left);
	const char *status[] = {"status", "--json", NULL};
	int cst = harness_ctl(&h, 0, out, sizeof(out), status);
	if (st == -1) {
		kill(left, SIGKILL);
		waitpid(left, NULL, 0);
	}
	if (cst != 0 || strstr(out, "rogue")) {
		fprintf(stderr, "status after the rogue node: %d: %s\n", cst,
		    out);
		exit(1);
	}
	uint64_t epoch = 0;
	CHECK(harness_rings_agree(&h, 3, &epoch));
	fprintf(stderr, "tls: a node certificate of another CA did not "
	    "join (%s after 3 s)\n", st == -1 ? "still trying" : "it exited");
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
	check_roles();
	for (int i = 0; i < 3; i++)
		CHECK(harness_stop(&h, i, SIGTERM) == 0);
	fprintf(stderr, "tls: ok\n");
	return 0;
}
