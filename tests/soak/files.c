#include "files.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "mem.h"

#define NFILES    4
#define SIZE_MAX_ (2u << 20) /* no file grows past 2 MiB */
#define WRITE_MAX (256u << 10)

struct fmodel {
	uint8_t *buf;    /* the content the writer last meant */
	size_t len;
	uint64_t *sums;  /* digest of every content meant, in order */
	size_t nsums, cap;
	size_t acked;    /* sums[acked - 1] is the last acknowledged */
	bool wild;       /* a step failed since: the content is undefined */
};

static struct {
	const char *dynamofs;
	char nodes[HARNESS_MAX_NODES * 130];
	char keyfile[512];
	char dir[600];
	char log[600];
	pid_t pid;
	pthread_t thread;
	bool running;
	atomic_bool stop;
	uint32_t rng;
	struct fmodel f[NFILES];
	struct files_counts c;
	bool broken; /* a check during the run failed */
	size_t corrupt_at; /* SOAK_CORRUPT: the model's step to spoil */
} m;

static uint32_t
rnd(uint32_t n)
{
	m.rng ^= m.rng << 13, m.rng ^= m.rng >> 17, m.rng ^= m.rng << 5;
	return m.rng % n;
}

static uint64_t
digest(const uint8_t *p, size_t len)
{
	uint8_t md[EVP_MAX_MD_SIZE];
	unsigned mdlen = 0;
	CHECK(EVP_Digest(p, len, md, &mdlen, EVP_sha256(), NULL) == 1);
	uint64_t x;
	memcpy(&x, md, sizeof(x));
	return x;
}

static void
remember(struct fmodel *f, uint64_t sum)
{
	if (f->nsums == f->cap) {
		f->cap = f->cap ? 2 * f->cap : 256;
		f->sums = mem_realloc(f->sums, f->cap * sizeof(*f->sums));
		CHECK(f->sums != NULL);
	}
	f->sums[f->nsums++] = sum;
}

/* The newest index of sum in f's history, or -1: never written. */
static long
find(const struct fmodel *f, uint64_t sum)
{
	for (size_t i = f->nsums; i-- > 0;)
		if (f->sums[i] == sum)
			return (long)i;
	return -1;
}

static bool
mounted(void)
{
	struct stat a, b;
	char parent[sizeof(m.dir) + 4];
	snprintf(parent, sizeof(parent), "%s/..", m.dir);
	return stat(m.dir, &a) == 0 && stat(parent, &b) == 0 &&
	    a.st_dev != b.st_dev;
}

static void
mount_start(void)
{
	mkdir(m.dir, 0755);
	pid_t pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		int fd = open(m.log, O_WRONLY | O_CREAT | O_APPEND, 0644);
		if (fd >= 0) {
			dup2(fd, 1);
			dup2(fd, 2);
			close(fd);
		}
		execl(m.dynamofs, "dynamofs", "--node", m.nodes,
		    "--cluster-key", m.keyfile, m.dir, "-f", "-otimeout=2000",
		    (char *)NULL);
		_exit(127);
	}
	m.pid = pid;
	long long deadline = harness_now_ms() + 20000;
	while (!mounted()) {
		if (waitpid(pid, NULL, WNOHANG) == pid) {
			m.pid = 0;
			fprintf(stderr, "soak: dynamofs exited at start (%s)\n",
			    m.log);
			exit(1);
		}
		if (harness_now_ms() > deadline) {
			fprintf(stderr, "soak: no mount after 20 s (%s)\n", m.log);
			exit(1);
		}
		harness_pause_ms(20);
	}
}

static int
run(const char *const *argv)
{
	pid_t pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		execvp(argv[0], (char *const *)argv);
		_exit(127);
	}
	int st = 0;
	waitpid(pid, &st, 0);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* Unmount and reap the mount; lazily and by force when it will not go. */
static void
mount_stop(void)
{
	if (m.pid <= 0)
		return;
	const char *u[] = {"fusermount3", "-uq", m.dir, NULL};
	const char *uz[] = {"fusermount3", "-uz", m.dir, NULL};
	/* EBUSY while the kernel still releases the last files closed. */
	long long deadline = harness_now_ms() + 5000;
	bool clean;
	while (!(clean = run(u) == 0) && harness_now_ms() < deadline)
		harness_pause_ms(100);
	deadline = harness_now_ms() + 20000;
	while (waitpid(m.pid, NULL, WNOHANG) != m.pid) {
		if (harness_now_ms() > deadline || !clean) {
			kill(m.pid, SIGKILL);
			waitpid(m.pid, NULL, 0);
			run(uz);
			break;
		}
		harness_pause_ms(20);
	}
	m.pid = 0;
}

static void
at_exit(void)
{
	if (m.running) {
		atomic_store(&m.stop, true);
		m.running = false;
		pthread_join(m.thread, NULL);
	}
	mount_stop();
}

static void
path_of(char *out, size_t n, char kind, int k)
{
	snprintf(out, n, "%s/%c%d", m.dir, kind, k);
}

/* Read the whole of path into *buf (mem_alloc'd); 0 or -errno. */
static int
read_all(const char *path, uint8_t **buf, size_t *len)
{
	int fd = open(path, O_RDONLY);
	if (fd < 0)
		return -errno;
	size_t cap = 1 << 20, n = 0;
	uint8_t *b = mem_alloc(cap);
	CHECK(b != NULL);
	for (;;) {
		if (n == cap) {
			cap *= 2;
			b = mem_realloc(b, cap);
			CHECK(b != NULL);
		}
		ssize_t r = read(fd, b + n, cap - n);
		if (r < 0) {
			int e = errno;
			close(fd);
			mem_free(b);
			return -e;
		}
		if (r == 0)
			break;
		n += (size_t)r;
	}
	close(fd);
	*buf = b;
	*len = n;
	return 0;
}

static void
fill(uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		p[i] = (uint8_t)rnd(256);
}

static void
broken(const char *what, const char *name)
{
	fprintf(stderr, "soak: files: %s %s\n", name, what);
	m.broken = true;
}

/*
 * Where in file k's history the bytes read are: their index, or -1 when
 * they were never written to it.  After a failed step (a write that
 * failed may have changed part of what it covered, as POSIX allows) any
 * content is taken, and becomes the newest of the history.
 */
static long
place(int k, const uint8_t *p, size_t len)
{
	struct fmodel *f = &m.f[k];
	uint64_t sum = digest(p, len);
	long at = find(f, sum);
	if (at < 0 && f->wild) {
		m.c.uncertain++;
		remember(f, sum);
		at = (long)f->nsums - 1;
	}
	return at;
}

/* Check what the writer read of file k against its history. */
static void
check_read(int k, const char *name, const uint8_t *p, size_t len)
{
	long at = place(k, p, len);
	if (at < 0) {
		fprintf(stderr, "soak: files: read %zu bytes of %s; the writer "
		    "last meant %zu, acknowledged write %zu of %zu\n", len, name,
		    m.f[k].len, m.f[k].acked, m.f[k].nsums);
		broken("holds a content never written to it", name);
	}
	else if ((size_t)at + 1 < m.f[k].acked)
		m.c.stale++;
}

/* New content for f->buf by in-place changes through fd: 0 when every
 * call succeeded. */
static int
change_in_place(struct fmodel *f, int fd)
{
	int bad = 0;
	for (int n = 1 + (int)rnd(4); n-- > 0;) {
		uint32_t op = rnd(10);
		if (op < 7) { /* pwrite, maybe past the end: a hole */
			size_t len = 1 + rnd(WRITE_MAX);
			size_t off = rnd((uint32_t)(f->len + WRITE_MAX));
			if (off + len > SIZE_MAX_)
				off = SIZE_MAX_ - len;
			if (off + len > f->len) {
				memset(f->buf + f->len, 0, off + len - f->len);
				f->len = off + len;
			}
			fill(f->buf + off, len);
			if (pwrite(fd, f->buf + off, len, (off_t)off) != (ssize_t)len)
				bad = -1;
		} else { /* truncate: shrink or grow */
			size_t len = rnd(SIZE_MAX_);
			if (len > f->len)
				memset(f->buf + f->len, 0, len - f->len);
			f->len = len;
			if (ftruncate(fd, (off_t)len) != 0)
				bad = -1;
		}
	}
	return bad;
}

/* A whole new content written to t<k>, then renamed over f<k>. */
static int
replace(struct fmodel *f, int k)
{
	char tmp[sizeof(m.dir) + 16], dst[sizeof(m.dir) + 16];
	path_of(tmp, sizeof(tmp), 't', k);
	path_of(dst, sizeof(dst), 'f', k);
	f->len = rnd(SIZE_MAX_);
	fill(f->buf, f->len);
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (fd < 0)
		return -1;
	int bad = write(fd, f->buf, f->len) == (ssize_t)f->len ? 0 : -1;
	if (fsync(fd) != 0)
		bad = -1;
	if (close(fd) != 0)
		bad = -1;
	if (bad == 0 && rename(tmp, dst) != 0)
		bad = -1;
	return bad;
}

static void
step(void)
{
	int k = (int)rnd(NFILES);
	struct fmodel *f = &m.f[k];
	char path[sizeof(m.dir) + 16];
	path_of(path, sizeof(path), 'f', k);
	m.c.steps++;

	uint8_t *seen;
	size_t seen_len;
	if (read_all(path, &seen, &seen_len) != 0) {
		m.c.failed++;
		harness_pause_ms(50);
		return;
	}
	check_read(k, path, seen, seen_len);
	/* Changes apply to what was read: that is what the mount writes
	 * under (its context), stale or not. */
	memcpy(f->buf, seen, seen_len);
	f->len = seen_len;
	mem_free(seen);

	int bad;
	if (rnd(8) == 0) {
		bad = replace(f, k);
	} else {
		int fd = open(path, O_RDWR);
		if (fd < 0) {
			m.c.failed++;
			return;
		}
		bad = change_in_place(f, fd);
		if (rnd(4) != 0 && fsync(fd) != 0)
			bad = -1;
		if (close(fd) != 0)
			bad = -1;
	}
	uint64_t sum = digest(f->buf, f->len);
	if (m.c.steps == m.corrupt_at)
		sum ^= 1; /* the self-check: this content was never "written" */
	remember(f, sum);
	if (bad == 0) {
		f->acked = f->nsums;
		f->wild = false;
		m.c.acked++;
	} else {
		f->wild = true;
		m.c.failed++;
	}
}

/* Is name f<k> or f<k>.v<N>?  Returns k, or -1. */
static int
file_of(const char *name, bool *sibling)
{
	int k, end = 0;
	*sibling = false;
	if (sscanf(name, "f%d%n", &k, &end) != 1 || k < 0 || k >= NFILES)
		return -1;
	if (name[end] == '\0')
		return k;
	unsigned v;
	int end2 = 0;
	if (sscanf(name + end, ".v%u%n", &v, &end2) == 1 &&
	    name[end + end2] == '\0') {
		*sibling = true;
		return k;
	}
	return -1;
}

/* Every entry a file of ours, a sibling of one, or a temporary; each
 * sibling holds a content written to its file. */
static void
check_listing(void)
{
	DIR *d = opendir(m.dir);
	if (!d)
		return; /* a fault: counted by the steps */
	struct dirent *e;
	while ((e = readdir(d)) != NULL) {
		bool sib;
		int k = file_of(e->d_name, &sib);
		if (e->d_name[0] == '.' ||
		    (e->d_name[0] == 't' && e->d_name[1] >= '0' &&
		        e->d_name[1] < '0' + NFILES && e->d_name[2] == '\0'))
			continue;
		if (k < 0) {
			broken("is not a name the writer made", e->d_name);
			continue;
		}
		if (!sib)
			continue;
		char path[sizeof(m.dir) + 300];
		snprintf(path, sizeof(path), "%s/%s", m.dir, e->d_name);
		uint8_t *p;
		size_t len;
		if (read_all(path, &p, &len) == 0) {
			m.c.siblings_seen++;
			check_read(k, path, p, len);
			mem_free(p);
		}
	}
	closedir(d);
}

static void *
writer(void *arg)
{
	(void)arg;
	while (!atomic_load(&m.stop)) {
		step();
		if (m.c.steps % 16 == 0)
			check_listing();
	}
	return NULL;
}

void
files_start(struct harness *h, int nnodes, const char *dynamofs,
    unsigned seed)
{
	m.dynamofs = dynamofs;
	m.rng = seed | 1u;
	const char *c = getenv("SOAK_CORRUPT");
	m.corrupt_at = c ? (size_t)strtoull(c, NULL, 10) : 0;
	size_t off = 0;
	for (int i = 0; i < nnodes; i++)
		off += (size_t)snprintf(m.nodes + off, sizeof(m.nodes) - off,
		    "%s%s", i ? "," : "", h->nodes[i].addr);
	snprintf(m.keyfile, sizeof(m.keyfile), "%s", h->keyfile);
	snprintf(m.dir, sizeof(m.dir), "%s/mnt", h->tmp);
	snprintf(m.log, sizeof(m.log), "%s/dynamofs.log", h->tmp);
	atexit(at_exit); /* runs before the harness's cleanup */
	mount_start();

	/* Every file starts empty and acknowledged. */
	for (int k = 0; k < NFILES; k++) {
		struct fmodel *f = &m.f[k];
		f->buf = mem_alloc(SIZE_MAX_ + WRITE_MAX);
		CHECK(f->buf != NULL);
		char path[sizeof(m.dir) + 16];
		path_of(path, sizeof(path), 'f', k);
		int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
		CHECK(fd >= 0);
		CHECK(fsync(fd) == 0);
		CHECK(close(fd) == 0);
		remember(f, digest(f->buf, 0));
		f->acked = 1;
	}
	CHECK(pthread_create(&m.thread, NULL, writer, NULL) == 0);
	m.running = true;
}

void
files_stop(void)
{
	if (!m.running)
		return;
	atomic_store(&m.stop, true);
	pthread_join(m.thread, NULL);
	m.running = false;
}

bool
files_check(struct files_counts *out)
{
	files_stop();
	mount_stop();
	mount_start();
	/* Each file's versions: name.vK when siblings show, else name. */
	bool any_sib[NFILES] = {false};
	long newest[NFILES];
	for (int k = 0; k < NFILES; k++)
		newest[k] = -1;
	for (int pass = 0; pass < 2; pass++) {
		DIR *d = opendir(m.dir);
		CHECK(d != NULL);
		struct dirent *e;
		while ((e = readdir(d)) != NULL) {
			bool sib;
			int k = file_of(e->d_name, &sib);
			if (k < 0)
				continue;
			if (pass == 0) {
				any_sib[k] |= sib;
				continue;
			}
			if (sib != any_sib[k])
				continue;
			char path[sizeof(m.dir) + 300];
			snprintf(path, sizeof(path), "%s/%s", m.dir, e->d_name);
			uint8_t *p;
			size_t len;
			int rc = read_all(path, &p, &len);
			if (rc != 0) {
				fprintf(stderr, "soak: files: read %s: %s\n",
				    path, strerror(-rc));
				m.c.foreign++;
				continue;
			}
			m.c.versions++;
			long at = place(k, p, len);
			mem_free(p);
			if (at < 0) {
				fprintf(stderr, "soak: files: %s holds a content "
				    "never written to it\n", path);
				m.c.foreign++;
			}
			if (at > newest[k])
				newest[k] = at;
		}
		closedir(d);
	}
	for (int k = 0; k < NFILES; k++) {
		m.c.files++;
		if (newest[k] + 1 < (long)m.f[k].acked) {
			fprintf(stderr, "soak: files: f%d lost its last "
			    "acknowledged content (write %zu of %zu; newest "
			    "present %ld)\n", k, m.f[k].acked, m.f[k].nsums,
			    newest[k] + 1);
			m.c.lost++;
		}
	}
	*out = m.c;
	return !m.broken && m.c.lost == 0 && m.c.foreign == 0 &&
	    m.c.acked > 0;
}
