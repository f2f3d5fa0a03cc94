/*
 * dynamofs — mount a dynamo cluster as a filesystem (libfuse3).
 *
 *   dynamofs --node tcp://HOST:PORT[,tcp://...] --cluster-key FILE
 *            MOUNTPOINT [-f] [-o OPTIONS]
 *
 * Parses the options, loads the cluster key, and hands over to fuse_main,
 * which mounts, runs the (multi-threaded) loop, and unmounts on
 * `fusermount3 -u` or SIGINT/SIGTERM.  The cluster client is made in the
 * init callback (fsops), after libfuse went to the background.
 */
#include <errno.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "err.h"
#include "fsops.h"

#include <fuse_lowlevel.h>
#include "log.h"
#include "mem.h"

#define DEFAULT_TIMEOUT_MS 5000
#define DEFAULT_CHUNK      (128u << 10)
#define DEFAULT_CACHE      (256u << 20)
#define DEFAULT_INLINE     (64u << 10)

struct cli {
	char *node;
	char *key;
	char *timeout;
	char *chunk;
	char *inline_max;
	char *cache_size;
	char *log_level;
	int help;
	int version;
};

enum { KEY_HELP, KEY_VERSION };

#define OPT(t, f)                                                             \
	{                                                                     \
		t, offsetof(struct cli, f), 0                                 \
	}

static const struct fuse_opt cli_opts[] = {
    OPT("--node=%s", node),
    OPT("--node %s", node),
    OPT("--cluster-key=%s", key),
    OPT("--cluster-key %s", key),
    OPT("timeout=%s", timeout),
    OPT("chunk_size=%s", chunk),
    OPT("inline_max=%s", inline_max),
    OPT("cache_size=%s", cache_size),
    OPT("log_level=%s", log_level),
    FUSE_OPT_KEY("-h", KEY_HELP),
    FUSE_OPT_KEY("--help", KEY_HELP),
    FUSE_OPT_KEY("-V", KEY_VERSION),
    FUSE_OPT_KEY("--version", KEY_VERSION),
    FUSE_OPT_END,
};

static void
usage(const char *prog)
{
	printf(
	    "usage: %s --node tcp://HOST:PORT[,tcp://...] --cluster-key FILE "
	    "MOUNTPOINT [-f] [-o OPTIONS]\n"
	    "\n"
	    "  --node ADDRS         nodes of the cluster, comma separated\n"
	    "  --cluster-key FILE   the cluster key (default: "
	    "$" CLI_KEY_ENV ")\n"
	    "  -f                   stay in the foreground\n"
	    "  -o timeout=MS        give up on a node after MS (default "
	    "%d); a call fails\n"
	    "                       with ETIMEDOUT or EIO once every node "
	    "was tried\n"
	    "  -o attr_timeout=S    attribute cache, seconds (default 1)\n"
	    "  -o entry_timeout=S   directory entry cache, seconds "
	    "(default 1)\n"
	    "  -o chunk_size=BYTES  content chunk size of new files (default "
	    "128K, 4K..8M)\n"
	    "  -o cache_size=BYTES  content cached in memory, shared by all "
	    "files (default 256M)\n"
	    "  -o inline_max=BYTES  largest file kept inline in its object "
	    "(default 64K)\n"
	    "  -o log_level=LEVEL   debug, info, warn, error (default "
	    "warn)\n"
	    "\n"
	    "Permissions are checked against the stored owners and modes; a "
	    "mount made\n"
	    "by root serves every user (allow_other).\n"
	    "Unmount with `fusermount3 -u MOUNTPOINT`, or SIGINT/SIGTERM.\n"
	    "\n",
	    prog, DEFAULT_TIMEOUT_MS);
}

static int
opt_proc(void *data, const char *arg, int key, struct fuse_args *out)
{
	struct cli *c = data;
	(void)arg;
	(void)out;
	if (key == KEY_HELP) {
		c->help = 1;
		return 1; /* keep it: fuse_main prints its options too */
	}
	if (key == KEY_VERSION) {
		c->version = 1;
		return 1;
	}
	return 1;
}

/* Split "a,b,c" into cfg->nodes. */
static int
parse_nodes(const char *list, struct fsops_config *cfg)
{
	size_t n = 1;
	for (const char *p = list; *p; p++)
		n += *p == ',';
	cfg->nodes = mem_calloc(n, sizeof(*cfg->nodes));
	cfg->nodes_text = mem_dup(list, strlen(list) + 1);
	if (!cfg->nodes || !cfg->nodes_text)
		return -ENOMEM;
	const char *p = list;
	while (*p) {
		const char *e = strchr(p, ',');
		size_t l = e ? (size_t)(e - p) : strlen(p);
		if (l > 0) {
			char *a = mem_alloc(l + 1);
			if (!a)
				return -ENOMEM;
			memcpy(a, p, l);
			a[l] = '\0';
			if (strncmp(a, "tcp://", 6) != 0 &&
			    strncmp(a, "tls+tcp://", 10) != 0) {
				fprintf(stderr,
				        "dynamofs: bad node address "
				        "'%s' (want tcp://HOST:PORT)\n",
				        a);
				mem_free(a);
				return -EINVAL;
			}
			cfg->nodes[cfg->nnodes++] = a;
		}
		p += l + (e ? 1 : 0);
	}
	return cfg->nnodes ? 0 : -EINVAL;
}

static void
config_fini(struct fsops_config *cfg)
{
	for (size_t i = 0; cfg->nodes && i < cfg->nnodes; i++)
		mem_free(cfg->nodes[i]);
	mem_free(cfg->nodes);
	mem_free(cfg->nodes_text);
}

static int
parse_size_opt(const char *name, const char *s, uint64_t lo, uint64_t hi,
               uint32_t *out)
{
	uint64_t v;
	if (cli_parse_size(s, &v) != 0 || v < lo || v > hi) {
		fprintf(stderr, "dynamofs: bad %s '%s' (%llu..%llu)\n", name,
		        s, (unsigned long long)lo, (unsigned long long)hi);
		return -EINVAL;
	}
	*out = (uint32_t)v;
	return 0;
}

/*
 * fuse_main, except that a loop ended by SIGINT, SIGTERM or SIGHUP (libfuse
 * returns the signal's number) is a clean exit.  The fs's destroy callback
 * (which writes what is still dirty) runs in fuse_destroy, after the
 * unmount.
 */
static int
run(struct fuse_args *args, struct fsops_config *cfg)
{
	struct fuse_cmdline_opts fo;
	struct fuse *fuse = NULL;
	struct fuse_session *se;
	int rc = 1;

	memset(&fo, 0, sizeof(fo));
	if (fuse_parse_cmdline(args, &fo) != 0)
		return 1;
	if (!fo.mountpoint) {
		fprintf(stderr, "dynamofs: no mount point (try --help)\n");
		goto out;
	}
	fuse = fuse_new(args, fsops_operations(),
	                sizeof(struct fuse_operations), cfg);
	if (!fuse)
		goto out;
	if (fuse_mount(fuse, fo.mountpoint) != 0)
		goto out_destroy;
	if (fuse_daemonize(fo.foreground) != 0)
		goto out_unmount;
	se = fuse_get_session(fuse);
	if (fuse_set_signal_handlers(se) != 0)
		goto out_unmount;
	int res = fo.singlethread ? fuse_loop(fuse)
	                          : fuse_loop_mt(fuse, fo.clone_fd);
	fuse_remove_signal_handlers(se);
	rc = res == 0 || res == SIGINT || res == SIGTERM || res == SIGHUP ? 0
	                                                                  : 1;
out_unmount:
	fuse_unmount(fuse);
out_destroy:
	fuse_destroy(fuse);
out:
	free(fo.mountpoint);
	return rc;
}

int
main(int argc, char **argv)
{
	struct fuse_args args = FUSE_ARGS_INIT(argc, argv);
	struct fsops_config cfg;
	struct cli c;
	const char *used = NULL;
	int rc = 1;

	memset(&cfg, 0, sizeof(cfg));
	memset(&c, 0, sizeof(c));
	mem_keep_freed_blocks();
	log_set_prefix("dynamofs");
	log_set_level(LOG_LVL_WARN);
	if (fuse_opt_parse(&args, &c, cli_opts, opt_proc) != 0)
		goto out;
	if (c.help) {
		usage(argv[0]);
		fuse_cmdline_help();
		fuse_lib_help(&args);
		rc = 0;
		goto out;
	}
	if (c.version) {
		printf("dynamofs 0.1.0, libfuse %s\n", fuse_pkgversion());
		rc = 0;
		goto out;
	}
	if (c.log_level) {
		enum log_level lvl;
		if (log_level_parse(c.log_level, &lvl) != 0) {
			fprintf(stderr, "dynamofs: bad log_level '%s'\n",
			        c.log_level);
			goto out;
		}
		log_set_level(lvl);
	}
	if (!c.node) {
		fprintf(stderr, "dynamofs: --node is required (try --help)\n");
		goto out;
	}
	if (parse_nodes(c.node, &cfg) != 0)
		goto out;
	int kr = cli_key_load(c.key, &cfg.key, &used);
	if (kr != 0) {
		fprintf(stderr, "dynamofs: cluster key %s: %s\n",
		        used ? used
		             : "(give --cluster-key or $" CLI_KEY_ENV ")",
		        dyn_strerror(kr));
		goto out;
	}
	cfg.timeout_ms = DEFAULT_TIMEOUT_MS;
	if (c.timeout) {
		uint64_t ms;
		if (cli_parse_duration_ms(c.timeout, 1, &ms) != 0 || ms < 1 ||
		    ms > 3600000) {
			fprintf(stderr, "dynamofs: bad timeout '%s' (ms)\n",
			        c.timeout);
			goto out;
		}
		cfg.timeout_ms = (int)ms;
	}
	cfg.chunk_size = DEFAULT_CHUNK;
	cfg.inline_max = DEFAULT_INLINE;
	if (c.chunk && parse_size_opt("chunk_size", c.chunk, 4096, 8u << 20,
	                              &cfg.chunk_size) != 0)
		goto out;
	if (c.inline_max &&
	    parse_size_opt("inline_max", c.inline_max, 0, cfg.chunk_size,
	                   &cfg.inline_max) != 0)
		goto out;
	if (cfg.inline_max > cfg.chunk_size)
		cfg.inline_max = cfg.chunk_size;
	cfg.cache_size = DEFAULT_CACHE;
	if (c.cache_size &&
	    parse_size_opt("cache_size", c.cache_size, 1u << 20, UINT32_MAX,
	                   &cfg.cache_size) != 0)
		goto out;
	/* The kernel checks permissions against the stored owners and modes;
	 * a mount made by root serves every user (as NFS, CephFS and
	 * GlusterFS mounts do), one made by a user only that user (FUSE's
	 * allow_other needs user_allow_other in /etc/fuse.conf for them). */
	if ((geteuid() == 0 &&
	        fuse_opt_add_arg(&args, "-oallow_other") != 0) ||
	    fuse_opt_add_arg(&args, "-odefault_permissions") != 0 ||
	    fuse_opt_add_arg(&args, "-ofsname=dynamofs") != 0 ||
	    fuse_opt_add_arg(&args, "-osubtype=dynamofs") != 0)
		goto out;
	rc = run(&args, &cfg);
	if (cfg.init_failed)
		rc = 1;
out:
	fuse_opt_free_args(&args);
	free(c.node);
	free(c.key);
	free(c.timeout);
	free(c.chunk);
	free(c.inline_max);
	free(c.cache_size);
	free(c.log_level);
	config_fini(&cfg);
	return rc;
}
