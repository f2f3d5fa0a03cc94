/*
 * dynamofs — mount a dynamo cluster as a filesystem (libfuse3).
 *
 *   dynamofs [--node ADDRS] {--cred FILE | --cluster-key FILE} [ADDRS]
 *            MOUNTPOINT [-f] [-o OPTIONS]
 *
 * Parses the options, loads the credential or the cluster key, and hands
 * over to fuse_main, which mounts, runs the (multi-threaded) loop, and
 * unmounts on `fusermount3 -u` or SIGINT/SIGTERM.  The cluster client (and
 * with it nng's TLS setup) is made in the init callback (fsops), after
 * libfuse went to the background.
 *
 * From /etc/fstab, mount(8) runs mount.fuse3, which runs
 * `dynamofs SOURCE MOUNTPOINT -o OPTIONS`: SOURCE (the fstab line's first
 * field) may carry the node list, -o node=/nodes=/cred=/cluster_key= the
 * rest,
 * and mount's own options that reach us (_netdev, nofail, ...) are
 * dropped here rather than refused by the kernel.
 */
#include <errno.h>
#include <signal.h>
#include <stdbool.h>
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
	char *nodes; /* every node given, comma separated; mem_alloc'd */
	char *key;   /* mem_alloc'd */
	char *cred;  /* mem_alloc'd */
	char *timeout;
	char *chunk;
	char *inline_max;
	char *cache_size;
	char *log_level;
	int no_routing;
	const char *operands[2]; /* [SOURCE] MOUNTPOINT, into argv */
	int noperands;
	int help;
	int version;
};

enum {
	KEY_HELP,
	KEY_VERSION,
	KEY_NODE_FLAG,
	KEY_NODE_OPT,
	KEY_KEY_FLAG,
	KEY_KEY_OPT,
	KEY_CRED_FLAG,
	KEY_CRED_OPT,
};

#define OPT(t, f)                                                             \
	{                                                                     \
		t, offsetof(struct cli, f), 0                                 \
	}

static const struct fuse_opt cli_opts[] = {
    /* "--node LIST" and "--node=LIST": this one template matches both
     * (with a second for "--node=", both would match "--node=LIST") */
    FUSE_OPT_KEY("--node ", KEY_NODE_FLAG),
    FUSE_OPT_KEY("node=", KEY_NODE_OPT),
    FUSE_OPT_KEY("nodes=", KEY_NODE_OPT),
    FUSE_OPT_KEY("--cluster-key ", KEY_KEY_FLAG),
    FUSE_OPT_KEY("cluster_key=", KEY_KEY_OPT),
    FUSE_OPT_KEY("--cred ", KEY_CRED_FLAG),
    FUSE_OPT_KEY("cred=", KEY_CRED_OPT),
    OPT("timeout=%s", timeout),
    {"no_routing", offsetof(struct cli, no_routing), 1},
    OPT("chunk_size=%s", chunk),
    OPT("inline_max=%s", inline_max),
    OPT("cache_size=%s", cache_size),
    OPT("log_level=%s", log_level),
    FUSE_OPT_KEY("-h", KEY_HELP),
    FUSE_OPT_KEY("--help", KEY_HELP),
    FUSE_OPT_KEY("-V", KEY_VERSION),
    FUSE_OPT_KEY("--version", KEY_VERSION),
    /* mount(8)'s and fstab's own options, meaningless to FUSE (the
     * kernel refuses them); mount.fuse3 drops most, not every version
     * all.  "x-*" is dropped in opt_proc. */
    FUSE_OPT_KEY("_netdev", FUSE_OPT_KEY_DISCARD),
    FUSE_OPT_KEY("nofail", FUSE_OPT_KEY_DISCARD),
    FUSE_OPT_KEY("auto", FUSE_OPT_KEY_DISCARD),
    FUSE_OPT_KEY("noauto", FUSE_OPT_KEY_DISCARD),
    FUSE_OPT_KEY("defaults", FUSE_OPT_KEY_DISCARD),
    FUSE_OPT_KEY("user", FUSE_OPT_KEY_DISCARD),
    FUSE_OPT_KEY("nouser", FUSE_OPT_KEY_DISCARD),
    FUSE_OPT_KEY("users", FUSE_OPT_KEY_DISCARD),
    FUSE_OPT_KEY("owner", FUSE_OPT_KEY_DISCARD),
    FUSE_OPT_KEY("group", FUSE_OPT_KEY_DISCARD),
    FUSE_OPT_KEY("comment=", FUSE_OPT_KEY_DISCARD),
    FUSE_OPT_END,
};

static void
usage(void)
{
	printf(
	    "usage: dynamofs [--node ADDRS] {--cred FILE | --cluster-key FILE} "
	    "[ADDRS]\n"
	    "                MOUNTPOINT [-f] [-o OPTIONS]\n"
	    "\n"
	    "Mounts a dynamo cluster at MOUNTPOINT.  ADDRS names nodes of the "
	    "cluster,\n"
	    "tcp://HOST:PORT[,tcp://...]: the first of two arguments (the "
	    "device field of\n"
	    "an fstab line), --node, or -o node=; all of them are used, a "
	    "request that\n"
	    "gets no answer moves on to the next node.  Permissions are "
	    "checked against\n"
	    "the stored owners and modes; a mount made by root serves every "
	    "user\n"
	    "(allow_other).  Unmount with `umount MOUNTPOINT` (root), "
	    "`fusermount3 -u\n"
	    "MOUNTPOINT`, or SIGINT/SIGTERM.\n"
	    "\n"
	    "  --node ADDRS         nodes of the cluster, comma separated "
	    "(repeatable)\n"
	    "  --cred FILE          a credential (dynamoctl ca issue): its "
	    "role keys, and\n"
	    "                       mutual TLS to the nodes (default: "
	    "$" CRED_ENV ")\n"
	    "  --cluster-key FILE   instead, the cluster key: plain tcp "
	    "(default:\n"
	    "                       $" CLI_KEY_ENV ")\n"
	    "  -f                   stay in the foreground\n"
	    "  -o node=ADDRS        the same as --node (also nodes=; the "
	    "commas of a list\n"
	    "                       in -o are fine)\n"
	    "  -o cred=FILE         the same as --cred\n"
	    "  -o cluster_key=FILE  the same as --cluster-key\n"
	    "  -o timeout=MS        give up on a node after MS (default "
	    "%d); a call fails\n"
	    "                       with ETIMEDOUT or EIO once every node "
	    "was tried\n"
	    "  -o no_routing        send every request to the given nodes "
	    "(the first\n"
	    "                       that answers), which forward it; never "
	    "straight to\n"
	    "                       the key's replicas (a mount that can "
	    "reach only some\n"
	    "                       nodes)\n"
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
	    "  -o _netdev, ...      mount(8)'s own options (_netdev, nofail, "
	    "auto, noauto,\n"
	    "                       defaults, user, users, x-*, comment=): "
	    "ignored\n"
	    "\n"
	    "fstab:\n"
	    "mount(8) runs mount.fuse3, which runs dynamofs, found in "
	    "/usr/local/sbin,\n"
	    "/usr/local/bin, /usr/sbin, /usr/bin, /sbin or /bin (mount "
	    "passes no PATH).\n"
	    "`mount MOUNTPOINT` mounts the line's file system, `umount "
	    "MOUNTPOINT`\n"
	    "unmounts it.  A line (here on two):\n"
	    "\n"
	    "  tcp://10.0.0.1:7100,tcp://10.0.0.2:7100 /mnt/dynamo "
	    "fuse.dynamofs\n"
	    "    cluster_key=/etc/dynamo/cluster.key,_netdev,nofail 0 0\n"
	    "\n"
	    "libfuse options:\n",
	    DEFAULT_TIMEOUT_MS);
}

/* Append a node list to c->nodes, comma separated: 0, or -1 (out of
 * memory), as fuse_opt's callback returns. */
static int
nodes_append(struct cli *c, const char *list)
{
	size_t have = c->nodes ? strlen(c->nodes) : 0, add = strlen(list);
	char *s = mem_realloc(c->nodes, have + 1 + add + 1);
	if (s == NULL)
		return -1;
	if (have)
		s[have++] = ',';
	memcpy(s + have, list, add + 1);
	c->nodes = s;
	return 0;
}

/* *slot = a copy of path: 0, or -1 (out of memory). */
static int
path_set(char **slot, const char *path)
{
	mem_free(*slot);
	*slot = mem_dup(path, strlen(path) + 1);
	return *slot ? 0 : -1;
}

/* The value of a "--flag VALUE" (libfuse glues VALUE to the flag) or
 * "--flag=VALUE" argument. */
static const char *
flag_value(const char *arg, const char *flag)
{
	arg += strlen(flag);
	return arg + (*arg == '=');
}

static bool
is_node_addr(const char *s)
{
	return strncmp(s, "tcp://", 6) == 0 ||
	       strncmp(s, "tls+tcp://", 10) == 0;
}

static int
opt_proc(void *data, const char *arg, int key, struct fuse_args *out)
{
	struct cli *c = data;
	(void)out;
	switch (key) {
	case KEY_HELP:
		c->help = 1;
		return 1; /* keep it: fuse_main prints its options too */
	case KEY_VERSION:
		c->version = 1;
		return 1;
	case KEY_NODE_FLAG:
		return nodes_append(c, flag_value(arg, "--node"));
	case KEY_NODE_OPT:
		return nodes_append(c, strchr(arg, '=') + 1);
	case KEY_KEY_FLAG:
		return path_set(&c->key, flag_value(arg, "--cluster-key"));
	case KEY_KEY_OPT:
		return path_set(&c->key, strchr(arg, '=') + 1);
	case KEY_CRED_FLAG:
		return path_set(&c->cred, flag_value(arg, "--cred"));
	case KEY_CRED_OPT:
		return path_set(&c->cred, strchr(arg, '=') + 1);
	case FUSE_OPT_KEY_OPT:
		/* -o nodes=tcp://a:1,tcp://b:2 arrives split at the comma:
		 * "tcp://b:2" is the list's next node (no FUSE option starts
		 * so). */
		if (is_node_addr(arg))
			return nodes_append(c, arg);
		if (strncmp(arg, "x-", 2) == 0)
			return 0; /* mount(8)'s x-systemd.* and the like */
		return 1;
	case FUSE_OPT_KEY_NONOPT:
		if (c->noperands == 2) {
			fprintf(stderr,
			        "dynamofs: too many arguments: '%s' "
			        "(try --help)\n",
			        arg);
			return -1;
		}
		c->operands[c->noperands++] = arg;
		return 0; /* put back as the mount point by main */
	default:
		return 1;
	}
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

/*
 * [SOURCE] MOUNTPOINT: the mount point goes back to args for libfuse;
 * SOURCE is a node list when it looks like one (tcp://...), put first;
 * otherwise a label (fstab's device field must hold something), allowed
 * when the nodes come from options.  0, or -1 after a message.
 */
static int
operands_apply(struct cli *c, struct fuse_args *args)
{
	const char *source = c->noperands == 2 ? c->operands[0] : NULL;

	if (c->noperands == 0) {
		fprintf(stderr, "dynamofs: no mount point (try --help)\n");
		return -1;
	}
	if (fuse_opt_add_arg(args, c->operands[c->noperands - 1]) != 0)
		return -1;
	if (source && is_node_addr(source)) {
		char *rest = c->nodes;
		c->nodes = NULL;
		int rv = nodes_append(c, source);
		if (rv == 0 && rest)
			rv = nodes_append(c, rest);
		mem_free(rest);
		if (rv != 0)
			return -1;
	}
	if (!c->nodes) {
		if (source)
			fprintf(stderr,
			        "dynamofs: '%s' is not a node list "
			        "(tcp://HOST:PORT[,...]) and no --node or "
			        "-o node= was given\n",
			        source);
		else
			fprintf(stderr,
			        "dynamofs: no nodes: give --node, -o "
			        "node= or a node list before the mount "
			        "point (try --help)\n");
		return -1;
	}
	return 0;
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
	struct cred cred;
	struct cli c;
	int rc = 1;

	memset(&cfg, 0, sizeof(cfg));
	memset(&c, 0, sizeof(c));
	mem_keep_freed_blocks(MEM_KEEP_MAX);
	log_set_prefix("dynamofs");
	log_set_level(LOG_LVL_WARN);
	if (fuse_opt_parse(&args, &c, cli_opts, opt_proc) != 0)
		goto out;
	if (c.help) {
		usage();
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
	if (operands_apply(&c, &args) != 0 || parse_nodes(c.nodes, &cfg) != 0)
		goto out;
	/* A credential is loaded (and checked, with errors on the
	 * terminal) before the fork; nng's TLS setup is made after it, in
	 * the fs's init. */
	bool have_cred;
	char why[600];
	if (cli_auth_load(c.key, c.cred, AUTH_CLIENT, &cfg.keys, &cred,
	        &have_cred, why, sizeof(why)) != 0) {
		fprintf(stderr, "dynamofs: %s\n", why);
		goto out;
	}
	if (have_cred)
		cfg.cred = &cred;
	cfg.timeout_ms = DEFAULT_TIMEOUT_MS;
	cfg.no_routing = c.no_routing != 0;
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
	mem_free(c.nodes);
	mem_free(c.key);
	mem_free(c.cred);
	if (cfg.cred)
		cred_fini(cfg.cred);
	free(c.timeout);
	free(c.chunk);
	free(c.inline_max);
	free(c.cache_size);
	free(c.log_level);
	config_fini(&cfg);
	return rc;
}
