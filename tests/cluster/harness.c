#include "harness.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <stdarg.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "ca.h"
#include "err.h"
#include "keypos.h"
#include "mono.h"
#include "ring.h"
#include "vset.h"
#include "wire.h"

static struct harness *active;
static bool failed_exit = true;

long long
harness_now_ms(void)
{
	return (long long)mono_ms();
}

void
harness_pause_ms(int ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000};
	nanosleep(&ts, NULL);
}

static int
rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	remove(path);
	return 0;
}

void
harness_wipe(struct harness *h, int i)
{
	CHECK(h->nodes[i].pid == 0);
	CHECK(nftw(h->nodes[i].dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS) == 0);
}

uint64_t
harness_keys(struct harness *h, int i)
{
	struct dyn_client *d = harness_client_direct(h, i);
	struct dyn_status st;
	uint64_t k = UINT64_MAX;
	if (dyn_status(d, 0, &st) == 0)
		k = st.keys;
	dyn_status_fini(&st);
	dyn_client_free(d);
	return k;
}

uint64_t
harness_stat(struct harness *h, int i, const char *name)
{
	struct dyn_client *d = harness_client_direct(h, i);
	struct dyn_status st;
	char pat[80];
	CHECK_RC(dyn_status(d, 0, &st), 0);
	/* "name=value" lines: match at the start or after a newline. */
	int n = snprintf(pat, sizeof(pat), "\n%s=", name);
	const char *t = st.stats ? st.stats : "";
	const char *p = strncmp(t, pat + 1, (size_t)n - 1) == 0 ? t - 1
	                                                        : strstr(t, pat);
	CHECK(p != NULL);
	uint64_t v = strtoull(p + n, NULL, 10);
	dyn_status_fini(&st);
	dyn_client_free(d);
	return v;
}

uint32_t
harness_replicas(const struct ring *r, uint32_t nrep, const char *key,
    uint32_t *idx)
{
	struct keypos pos;
	uint32_t n = 0;
	CHECK_RC(keypos_of(key, strlen(key), &pos), 0);
	CHECK_RC(ring_preflist_key(r, RING_CUR, &pos, nrep, idx, &n), 0);
	return n;
}

void
harness_put(struct dyn_client *c, const char *key, const char *val)
{
	CHECK_RC(dyn_put(c, key, strlen(key), NULL, 0, val, strlen(val), NULL,
	             NULL, NULL),
	    0);
}

void
harness_delete_seen(struct dyn_client *c, const char *key)
{
	struct dyn_get_result r;
	CHECK_RC(dyn_get(c, key, strlen(key), NULL, &r), 0);
	CHECK_RC(dyn_delete(c, key, strlen(key), r.ctx, r.ctx_len, NULL), 0);
	dyn_get_result_fini(&r);
}

int
harness_ctl(struct harness *h, int i, char *out, size_t cap,
    const char *const *args)
{
	const char *ctl = getenv("DYNAMOCTL");
	CHECK(ctl != NULL && cap > 0);
	const char *argv[32];
	int a = 0;
	argv[a++] = ctl;
	argv[a++] = "--node";
	argv[a++] = h->nodes[i].addr;
	/* Alternatives: a credential carries its role's keys. */
	argv[a++] = h->tls ? "--cred" : "--cluster-key";
	argv[a++] = h->tls ? h->credfile : h->keyfile;
	for (int k = 0; args && args[k] && a < 31; k++)
		argv[a++] = args[k];
	argv[a] = NULL;
	int fd[2];
	CHECK(pipe(fd) == 0);
	pid_t pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		dup2(fd[1], 1);
		dup2(fd[1], 2);
		close(fd[0]);
		close(fd[1]);
		execv(ctl, (char *const *)argv);
		_exit(127);
	}
	close(fd[1]);
	size_t len = 0;
	char sink[4096];
	for (;;) {
		char *to = len + 1 < cap ? out + len : sink;
		size_t room = len + 1 < cap ? cap - 1 - len : sizeof(sink);
		ssize_t n = read(fd[0], to, room);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		if (to != sink)
			len += (size_t)n;
	}
	out[len] = '\0';
	close(fd[0]);
	int st;
	CHECK(waitpid(pid, &st, 0) == pid);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

bool
harness_log_has(struct harness *h, int i, const char *text)
{
	FILE *f = fopen(h->nodes[i].log, "r");
	char line[2048];
	bool found = false;
	while (f && !found && fgets(line, sizeof(line), f))
		found = strstr(line, text) != NULL;
	if (f)
		fclose(f);
	return found;
}

void
harness_dump_logs(struct harness *h)
{
	for (int i = 0; i < h->n; i++) {
		char cmd[1024];
		fprintf(stderr, "---- last lines of %s ----\n", h->nodes[i].log);
		snprintf(cmd, sizeof(cmd), "tail -n 30 '%s' >&2",
		    h->nodes[i].log);
		if (system(cmd) != 0)
			fprintf(stderr, "(no log)\n");
	}
}

static void
cleanup(void)
{
	struct harness *h = active;
	if (!h)
		return;
	active = NULL;
	if (failed_exit)
		harness_dump_logs(h);
	for (int i = 0; i < h->n; i++) {
		if (h->nodes[i].pid > 0) {
			kill(h->nodes[i].pid, SIGKILL);
			waitpid(h->nodes[i].pid, NULL, 0);
			h->nodes[i].pid = 0;
		}
	}
	if (getenv("HARNESS_KEEP"))
		fprintf(stderr, "kept %s\n", h->tmp);
	else
		nftw(h->tmp, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static void
on_signal(int sig)
{
	cleanup();
	signal(sig, SIG_DFL);
	raise(sig);
}

/* exit(0) from a test means success: no log dump. */
static void
mark_success(int status, void *arg)
{
	(void)arg;
	failed_exit = status != 0;
}

void
harness_init(struct harness *h)
{
	memset(h, 0, sizeof(*h));
	h->dynamod = getenv("DYNAMOD");
	CHECK(h->dynamod != NULL);
	const char *base = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
	snprintf(h->tmp, sizeof(h->tmp), "%s/dynamo-test-XXXXXX", base);
	CHECK(mkdtemp(h->tmp) != NULL);
	active = h;
	atexit(cleanup);
	on_exit(mark_success, NULL);
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	signal(SIGPIPE, SIG_IGN);
	snprintf(h->keyfile, sizeof(h->keyfile), "%s/cluster.key", h->tmp);
	CHECK_RC(auth_key_generate(&h->key), 0);
	CHECK_RC(auth_key_write(h->keyfile, &h->key), 0);
	CHECK_RC(auth_keys_from_master(&h->key, AUTH_ADMIN, &h->keys), 0);
}

const char *
harness_issue(struct harness *h, const char *name, enum auth_role role,
    char *path, size_t cap)
{
	CHECK(h->tls);
	char err[512];
	snprintf(path, cap, "%s/ca/%s%s.pem", h->tmp, name, h->phase);
	if (access(path, F_OK) == 0)
		return path;
	struct ca_issue_opts o = {.name = name, .role = role};
	if (ca_issue(h->cadir, &o, path, err, sizeof(err)) != 0) {
		fprintf(stderr, "harness: ca issue: %s\n", err);
		exit(1);
	}
	return path;
}

void
harness_init_tls(struct harness *h)
{
	char err[512];
	harness_init(h);
	h->tls = true;
	snprintf(h->cadir, sizeof(h->cadir), "%s/ca", h->tmp);
	if (ca_init(h->cadir, err, sizeof(err)) != 0) {
		fprintf(stderr, "harness: ca init: %s\n", err);
		exit(1);
	}
	/* The cluster key: the CA's master key. */
	snprintf(h->keyfile, sizeof(h->keyfile), "%s/ca/%s", h->tmp,
	    CA_MASTER_FILE);
	CHECK_RC(auth_key_load(h->keyfile, &h->key), 0);
	harness_cred_phase(h, "");
}

void
harness_cred_phase(struct harness *h, const char *suffix)
{
	char err[512];
	CHECK(h->tls && strlen(suffix) < sizeof(h->phase));
	snprintf(h->phase, sizeof(h->phase), "%s", suffix);
	harness_issue(h, "tester", AUTH_ADMIN, h->credfile,
	    sizeof(h->credfile));
	cred_fini(&h->cred);
	if (cred_load(h->credfile, &h->cred, err, sizeof(err)) != 0) {
		fprintf(stderr, "harness: %s\n", err);
		exit(1);
	}
	h->keys = h->cred.keys; /* an admin's, as harness_init's */
}

static bool
read_ready(struct hnode *nd)
{
	FILE *f = fopen(nd->ready, "r");
	if (!f)
		return false;
	bool ok = fgets(nd->addr, sizeof(nd->addr), f) != NULL;
	fclose(f);
	if (ok)
		nd->addr[strcspn(nd->addr, "\n")] = '\0';
	return ok && nd->addr[0];
}

void
harness_start(struct harness *h, int i, const char *const *extra)
{
	CHECK(i >= 0 && i < HARNESS_MAX_NODES);
	struct hnode *nd = &h->nodes[i];
	if (i >= h->n) {
		h->n = i + 1;
		/* Local copies: the paths are built from fields of h. */
		char tmp[sizeof(h->tmp)], name[sizeof(nd->name)];
		snprintf(tmp, sizeof(tmp), "%s", h->tmp);
		snprintf(name, sizeof(name), "n%d", i);
		snprintf(nd->name, sizeof(nd->name), "%s", name);
		snprintf(nd->dir, sizeof(nd->dir), "%s/%s", tmp, name);
		snprintf(nd->log, sizeof(nd->log), "%s/%s.log", tmp, name);
		snprintf(nd->ready, sizeof(nd->ready), "%s/%s.ready", tmp,
		    name);
	}
	CHECK(nd->pid == 0);
	char listen[128];
	snprintf(listen, sizeof(listen), "%s",
	    nd->addr[0] ? nd->addr : "tcp://127.0.0.1:0");
	unlink(nd->ready);

	const char *argv[64];
	int a = 0;
	argv[a++] = h->dynamod;
	argv[a++] = "--name";
	argv[a++] = nd->name;
	argv[a++] = "--listen";
	argv[a++] = listen;
	argv[a++] = "--data";
	argv[a++] = nd->dir;
	char cred[512];
	argv[a++] = h->tls ? "--cred" : "--cluster-key";
	argv[a++] = h->tls ? harness_issue(h, nd->name, AUTH_NODE, cred,
	                         sizeof(cred))
	                   : h->keyfile;
	argv[a++] = "--ready-file";
	argv[a++] = nd->ready;
	argv[a++] = "--fault-injection"; /* harness_fault's partitions */
	for (int k = 0; extra && extra[k] && a < 62; k++)
		argv[a++] = extra[k];
	argv[a] = NULL;

	pid_t pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		int fd = open(nd->log, O_WRONLY | O_CREAT | O_APPEND, 0644);
		if (fd >= 0) {
			dup2(fd, 2);
			dup2(fd, 1);
			close(fd);
		}
		execv(h->dynamod, (char *const *)argv);
		_exit(127);
	}
	nd->pid = pid;

	long long deadline = harness_now_ms() + 20000;
	while (!read_ready(nd)) {
		int st;
		if (waitpid(pid, &st, WNOHANG) == pid) {
			nd->pid = 0;
			fprintf(stderr, "node %s exited at start-up\n",
			    nd->name);
			exit(1);
		}
		if (harness_now_ms() > deadline) {
			fprintf(stderr, "node %s not ready after 20 s\n",
			    nd->name);
			exit(1);
		}
		harness_pause_ms(20);
	}
}

int
harness_stop(struct harness *h, int i, int sig)
{
	struct hnode *nd = &h->nodes[i];
	CHECK(nd->pid > 0);
	kill(nd->pid, sig);
	int st = 0;
	long long deadline = harness_now_ms() + 30000;
	for (;;) {
		pid_t r = waitpid(nd->pid, &st, WNOHANG);
		if (r == nd->pid)
			break;
		if (harness_now_ms() > deadline) {
			fprintf(stderr, "node %s did not exit on signal %d\n",
			    nd->name, sig);
			kill(nd->pid, SIGKILL);
			waitpid(nd->pid, &st, 0);
			nd->pid = 0;
			exit(1);
		}
		harness_pause_ms(10);
	}
	nd->pid = 0;
	return st;
}

struct dyn_client *
harness_client(struct harness *h, int timeout_ms, ...)
{
	const char *addrs[HARNESS_MAX_NODES];
	size_t n = 0;
	va_list ap;
	va_start(ap, timeout_ms);
	for (int i; (i = va_arg(ap, int)) >= 0 && n < HARNESS_MAX_NODES;)
		addrs[n++] = h->nodes[i].addr;
	va_end(ap);
	struct dyn_client_opts o = {
		.nodes = addrs,
		.nnodes = n,
		.keys = h->keys,
		.cred = h->tls ? &h->cred : NULL,
		.timeout_ms = timeout_ms,
	};
	struct dyn_client *c = NULL;
	CHECK_RC(dyn_client_new(&o, &c), 0);
	return c;
}

void
harness_start_joined(struct harness *h, int i, int seed,
    const char *const *extra)
{
	const char *argv[32];
	int a = 0;
	if (seed >= 0) {
		argv[a++] = "--seed";
		argv[a++] = h->nodes[seed].addr;
	}
	argv[a++] = "--gossip-interval";
	argv[a++] = "250";
	argv[a++] = "--ae-interval";
	argv[a++] = "100";
	for (int k = 0; extra && extra[k] && a < 30; k++)
		argv[a++] = extra[k];
	argv[a] = NULL;
	harness_start(h, i, argv);
}

struct dyn_client *
harness_client_direct(struct harness *h, int i)
{
	const char *addr = h->nodes[i].addr;
	struct dyn_client_opts o = {
		.nodes = &addr,
		.nnodes = 1,
		.keys = h->keys,
		.cred = h->tls ? &h->cred : NULL,
		.timeout_ms = 5000,
		.no_routing = true,
	};
	struct dyn_client *c = NULL;
	CHECK_RC(dyn_client_new(&o, &c), 0);
	return c;
}

/* Members of r owning partitions. */
static int
ring_owners(const struct ring *r)
{
	uint32_t own[RING_MEMBERS_MAX];
	uint32_t cnt = ring_member_count(r);
	ring_owned_counts(r, RING_CUR, own);
	int o = 0;
	for (uint32_t k = 0; k < cnt; k++)
		o += own[k] > 0;
	return o;
}

/* Do the rings of the nodes with a client in cl[0..n) agree: stable, the
 * same epoch (*epoch's when it is not 0; set to it), exactly `owners`
 * members owning partitions? */
static bool
rings_agree(struct dyn_client **cl, int n, int owners, uint64_t *epoch)
{
	for (int i = 0; i < n; i++) {
		if (!cl[i])
			continue;
		struct ring *r;
		uint32_t nrw[3];
		if (dyn_ring(cl[i], 0, &r, nrw) != 0)
			return false;
		bool ok = !ring_has_next(r) && ring_owners(r) == owners &&
		    (*epoch == 0 || ring_epoch(r) == *epoch);
		if (ok)
			*epoch = ring_epoch(r);
		ring_free(r);
		if (!ok)
			return false;
	}
	return true;
}

static void
clients_of_running(struct harness *h, struct dyn_client **cl)
{
	for (int i = 0; i < h->n; i++)
		cl[i] = h->nodes[i].pid > 0 ? harness_client_direct(h, i) : NULL;
}

bool
harness_rings_agree(struct harness *h, int owners, uint64_t *epoch)
{
	struct dyn_client *cl[HARNESS_MAX_NODES] = {0};
	clients_of_running(h, cl);
	bool ok = rings_agree(cl, h->n, owners, epoch);
	for (int i = 0; i < h->n; i++)
		dyn_client_free(cl[i]);
	return ok;
}

/* What each running node says of its ring, through the client that
 * waited and through a new one (a stalled connection shows as one
 * failing and the other not); the threads of a node that answers
 * neither, when gdb is there. */
static void
report_rings(struct harness *h, struct dyn_client **cl)
{
	for (int i = 0; i < h->n; i++) {
		if (!cl[i])
			continue;
		struct dyn_client *fresh = harness_client_direct(h, i);
		struct dyn_client *via[2] = {cl[i], fresh};
		bool answered = false;
		for (int k = 0; k < 2; k++) {
			struct ring *r;
			uint32_t nrw[3];
			int rc = dyn_ring(via[k], 0, &r, nrw);
			if (rc != 0) {
				fprintf(stderr, "n%d (%s client): %s\n", i,
				    k ? "new" : "waiting", dyn_strerror(rc));
				continue;
			}
			answered = true;
			fprintf(stderr, "n%d (%s client): epoch %llu, %u "
			    "members, %d owners%s\n", i, k ? "new" : "waiting",
			    (unsigned long long)ring_epoch(r),
			    ring_member_count(r), ring_owners(r),
			    ring_has_next(r) ? ", a next ring pending" : "");
			ring_free(r);
		}
		dyn_client_free(fresh);
		if (!answered && access("/usr/bin/gdb", X_OK) == 0) {
			char cmd[256];
			snprintf(cmd, sizeof(cmd), "gdb -p %d -batch -ex "
			    "'thread apply all bt' >&2 2>/dev/null",
			    (int)h->nodes[i].pid);
			if (system(cmd) != 0)
				fprintf(stderr, "n%d: no thread dump\n", i);
		}
	}
}

long long
harness_wait_ring(struct harness *h, int owners, int deadline_ms)
{
	long long t0 = harness_now_ms();
	struct dyn_client *cl[HARNESS_MAX_NODES] = {0};
	clients_of_running(h, cl);
	for (;;) {
		uint64_t epoch = 0;
		if (rings_agree(cl, h->n, owners, &epoch))
			break;
		if (harness_now_ms() - t0 > deadline_ms) {
			fprintf(stderr, "ring did not settle on %d owners in "
			                "%d ms\n", owners, deadline_ms);
			report_rings(h, cl);
			exit(1);
		}
		harness_pause_ms(50);
	}
	for (int i = 0; i < h->n; i++)
		dyn_client_free(cl[i]);
	return harness_now_ms() - t0;
}

void
harness_start_cluster(struct harness *h, int n)
{
	harness_start_joined(h, 0, -1, NULL);
	for (int i = 1; i < n; i++)
		harness_start_joined(h, i, 0, NULL);
	harness_wait_ring(h, n, 60000);
}

bool
harness_converged(struct harness *h, struct dyn_client *any, const char *key)
{
	char addrs[16][128];
	size_t na = 0;
	if (dyn_preflist(any, key, strlen(key), addrs, 3, &na) != 0)
		return false;
	struct vset first;
	vset_init(&first);
	bool same = true;
	for (size_t i = 0; i < na && same; i++) {
		const char *a = addrs[i];
		struct dyn_client_opts o = {.nodes = &a, .nnodes = 1,
		    .keys = h->keys, .cred = h->tls ? &h->cred : NULL,
		    .timeout_ms = 5000, .no_routing = true};
		struct dyn_client *d;
		CHECK_RC(dyn_client_new(&o, &d), 0);
		struct dyn_req_opts lo = {.flags = WIRE_F_LOCAL};
		struct dyn_get_result r;
		int rc = dyn_get(d, key, strlen(key), &lo, &r);
		if (rc != 0 && rc != -ENOENT)
			same = false; /* not answering: not known to be equal */
		else if (i == 0)
			vset_copy(&first, &r.versions);
		else
			same = vset_contains(&first, &r.versions) &&
			    vset_contains(&r.versions, &first);
		dyn_get_result_fini(&r);
		dyn_client_free(d);
	}
	vset_fini(&first);
	return same;
}

nng_msg *
harness_send_raw(nng_socket s, const void *p, size_t len, int wait_ms)
{
	nng_ctx ctx;
	nng_aio *aio;
	nng_msg *m;
	CHECK(nng_ctx_open(&ctx, s) == 0);
	CHECK(nng_aio_alloc(&aio, NULL, NULL) == 0);
	CHECK(nng_msg_alloc(&m, 0) == 0);
	CHECK(nng_msg_append(m, p, len) == 0);
	nng_aio_set_timeout(aio, 2000);
	nng_aio_set_msg(aio, m);
	nng_ctx_send(ctx, aio);
	nng_aio_wait(aio);
	CHECK(nng_aio_result(aio) == 0);
	nng_aio_set_timeout(aio, wait_ms);
	nng_ctx_recv(ctx, aio);
	nng_aio_wait(aio);
	nng_msg *reply = nng_aio_result(aio) == 0 ? nng_aio_get_msg(aio) : NULL;
	nng_aio_free(aio);
	nng_ctx_close(ctx);
	return reply;
}
