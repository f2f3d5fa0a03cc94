/*
 * dynamod — one storage node, in the foreground, logging to stderr.
 * SIGINT / SIGTERM: finish the requests in flight, close LMDB, exit 0.
 * Also exit 0 once `dynamoctl leave` is done; exit 3 when the node learns
 * that it was removed from the cluster (`dynamoctl remove`); exit 2 for
 * bad options.  Options come from the command line and from a --config
 * file (common/cli.h), parsed by one getopt_long loop over one table.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "auth.h"
#include "cli.h"
#include "cred.h"
#include "err.h"
#include "httpd.h"
#include "log.h"
#include "mem.h"
#include "node.h"
#include "wire.h"

static void
usage(FILE *f)
{
	fprintf(f,
	    "usage: dynamod --name NAME --listen tcp://HOST:PORT --data DIR\n"
	    "               {--cred FILE | --cluster-key FILE} [options]\n"
	    "       dynamod --config FILE [options]\n"
	    "\n"
	    "Runs one storage node of a dynamo cluster, in the foreground,\n"
	    "logging to stderr.  SIGINT or SIGTERM stops it: the requests in\n"
	    "flight finish, LMDB is closed.\n"
	    "\n"
	    "  --config FILE        read options from FILE (see config file below);\n"
	    "                       the command line's override the file's\n"
	    "  --name NAME          node name, unique in the cluster\n"
	    "                       (1 to 63 of A-Z a-z 0-9 . _ -)\n"
	    "  --listen URL         address to serve (port 0: any free port)\n"
	    "  --data DIR           data directory (created if missing)\n"
	    "  --cred FILE          credential (dynamoctl ca issue, role node; or\n"
	    "                       $DYNAMO_CRED_FILE): its role keys, and mutual\n"
	    "                       TLS listening and dialling (tcp://H:P carried\n"
	    "                       as tls+tcp://H:P)\n"
	    "  --cluster-key FILE   instead: the cluster key file (or\n"
	    "                       $DYNAMO_CLUSTER_KEY_FILE); plain tcp\n"
	    "  --no-fsync           do not fsync commits (faster, not durable)\n"
	    "  --no-group-commit    one LMDB transaction per write\n"
	    "  --workers N          requests served concurrently (default 64)\n"
	    "  --max-value BYTES    largest value accepted (default 8 MiB)\n"
	    "  --max-request BYTES  longest request accepted (default 25 MiB:\n"
	    "                       three full-size versions of a key and\n"
	    "                       room for the rest); the connection of a\n"
	    "                       longer one is closed before it is read;\n"
	    "                       at least 9 MiB; the same on every node\n"
	    "  --max-connections N  connections open at once; one over it is\n"
	    "                       closed as it arrives (default 4096)\n"
	    "  --idle-timeout SECONDS  a connection that delivers no complete\n"
	    "                       request for this long (idle, or stalled\n"
	    "                       in a message) is closed (default 60)\n");
	fprintf(f,
	    "  --max-db-size BYTES  cap on the LMDB map (default 1 TiB)\n"
	    "  --seed URL           a member to join through (repeatable); without\n"
	    "                       one, a node with no stored ring founds a cluster\n"
	    "  --advertise URL      address peers and clients use (default: listen)\n"
	    "  --partitions Q       ring partitions when founding (default 64)\n"
	    "  --n N --r R --w W    replication when founding (default 3/2/2)\n"
	    "  --timeout MS         node-to-node call timeout (default 2000;\n"
	    "                       calls carrying a partition's records, as\n"
	    "                       transfer and anti-entropy make, get 10x)\n"
	    "  --gossip-interval MS gossip round (default 1000)\n"
	    "  --ae-interval MS|off anti-entropy: one partition compared with\n"
	    "                       its other replicas per MS (default 1000)\n"
	    "  --tombstone-grace MS|off  a delete's tombstone is purged once\n"
	    "                       every replica has it and it is MS old\n"
	    "                       (default 3600000: an hour); off keeps them\n"
	    "  --gc-interval MS     blob garbage collection round (default 60000)\n"
	    "  --gc-grace MS|off    a blob no value references is deleted MS after\n"
	    "                       it was first found so (default 3600000, at\n"
	    "                       least 100; the same on every node); off: never\n"
	    "  --compact-at-start   compact the data file before serving\n"
	    "  --compact-check-interval MS|off  compact on its own when the data\n"
	    "                       file is 2x the data in use and over 64 MiB of\n"
	    "                       it is free, checked every MS (default 60000)\n"
	    "  --http URL           serve a status page (/) and Prometheus metrics\n"
	    "                       (/metrics) over HTTP at URL, tcp://HOST:PORT\n"
	    "                       (port 0: any free port; default off); no\n"
	    "                       authentication: bind it to loopback or a\n"
	    "                       private network\n"
	    "  --ready-file FILE    write the listen address here once serving\n"
	    "                       (and on a second line, with --http, the\n"
	    "                       HTTP URL)\n"
	    "  --replay-window MS   refuse a message timed more than MS away from\n"
	    "                       this node's clock (default 120000; the\n"
	    "                       cluster's clocks must agree that well)\n"
	    "  --fault-injection    serve `dynamoctl fault` (partitions on demand,\n"
	    "                       for tests); off by default\n"
	    "  --log-level LEVEL    debug, info, warn or error (default info)\n"
	    "  --help               this text\n");
	/* Three strings: C17 promises literals of 4095 bytes only. */
	fprintf(f,
	    "\n"
	    "config file:\n"
	    "One option a line, \"name = value\", with the names of the options\n"
	    "above without their dashes; blank lines and lines starting with #\n"
	    "are skipped.  A switch (an option without a value) is written\n"
	    "\"name = true\"; \"name = false\" leaves it off.  An option given\n"
	    "on the command line overrides the file's; seeds from both add up.\n"
	    "\n"
	    "  # /etc/dynamo/b.conf\n"
	    "  name = b\n"
	    "  listen = tcp://0.0.0.0:7100\n"
	    "  advertise = tcp://10.0.0.2:7100\n"
	    "  data = /var/lib/dynamo\n"
	    "  cred = /etc/dynamo/b.pem\n"
	    "  seed = tcp://10.0.0.1:7100\n"
	    "  compact-at-start = true\n"
	    "\n"
	    "exit status:\n"
	    "0 stopped by a signal, or left the cluster (dynamoctl leave);\n"
	    "1 could not start or serve; 2 bad options or config file (the\n"
	    "message names the file and line); 3 removed from the cluster\n"
	    "(dynamoctl remove).\n");
}

/* Write the address (and the HTTP URL, if any, on a second line)
 * atomically, so a poller never sees half of it. */
static int
write_ready_file(const char *path, const char *addr, const char *http)
{
	char tmp[4096];
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	FILE *f = fopen(tmp, "w");
	if (!f)
		return -errno;
	fprintf(f, "%s\n", addr);
	if (http)
		fprintf(f, "%s\n", http);
	if (fclose(f) != 0 || rename(tmp, path) != 0)
		return -errno;
	return 0;
}

static int
parse_u64(const char *s, uint64_t *out)
{
	char *end;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno || end == s)
		return -EINVAL;
	switch (*end) {
	case 'k': case 'K': v <<= 10; end++; break;
	case 'm': case 'M': v <<= 20; end++; break;
	case 'g': case 'G': v <<= 30; end++; break;
	case 't': case 'T': v <<= 40; end++; break;
	default: break;
	}
	if (*end)
		return -EINVAL;
	*out = v;
	return 0;
}

/*
 * A stop must not hang: shutdown can wait on a call to a peer that is
 * itself going away (nng's socket close, seen waiting up to a background
 * call's 30 s timeout).  Past STOP_DEADLINE_MS the process exits anyway:
 * every acknowledged write is committed in LMDB, which is safe against a
 * stop at any point, so nothing acknowledged is lost.
 */
#define STOP_DEADLINE_MS 5000

static void *
watchdog_main(void *arg)
{
	int status = (int)(intptr_t)arg;
	struct timespec ts = {STOP_DEADLINE_MS / 1000,
	    (STOP_DEADLINE_MS % 1000) * 1000000L};
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
	LOG_ERROR("stop did not finish in %d ms (waiting on a peer): exiting "
	          "now; committed data is safe",
	    STOP_DEADLINE_MS);
	_exit(status);
	return NULL;
}

static void
stop_watchdog(int status)
{
	pthread_t t;
	if (pthread_create(&t, NULL, watchdog_main,
	        (void *)(intptr_t)status) == 0)
		pthread_detach(t);
}

/* Exit status (also in the usage text). */
enum {
	EXIT_STOPPED = 0, /* a signal, or the node left the cluster */
	EXIT_FAILED = 1,  /* could not start or serve */
	EXIT_USAGE = 2,   /* bad options or config file */
	EXIT_REMOVED = 3, /* removed from the cluster */
};

enum {
	O_NAME = 256, O_LISTEN, O_DATA, O_KEY, O_NOFSYNC, O_NOGROUP,
	O_WORKERS, O_MAXVAL, O_MAXDB, O_READY, O_LOG, O_HELP,
	O_SEED, O_ADV, O_PARTS, O_N, O_R, O_W, O_TIMEOUT, O_GOSSIP,
	O_AE, O_GRACE, O_GC, O_GCGRACE, O_COMPACT_START,
	O_COMPACT_CHECK, O_CONFIG, O_HTTP, O_REPLAY, O_FAULT, O_CRED,
	O_MAXREQ, O_MAXCONN, O_IDLE,
};

/* The one list of options: the command line's and the config file's. */
static const struct option opts[] = {
	{"config", required_argument, NULL, O_CONFIG},
	{"name", required_argument, NULL, O_NAME},
	{"listen", required_argument, NULL, O_LISTEN},
	{"data", required_argument, NULL, O_DATA},
	{"cluster-key", required_argument, NULL, O_KEY},
	{"cred", required_argument, NULL, O_CRED},
	{"no-fsync", no_argument, NULL, O_NOFSYNC},
	{"no-group-commit", no_argument, NULL, O_NOGROUP},
	{"workers", required_argument, NULL, O_WORKERS},
	{"max-value", required_argument, NULL, O_MAXVAL},
	{"max-request", required_argument, NULL, O_MAXREQ},
	{"max-connections", required_argument, NULL, O_MAXCONN},
	{"idle-timeout", required_argument, NULL, O_IDLE},
	{"max-db-size", required_argument, NULL, O_MAXDB},
	{"ready-file", required_argument, NULL, O_READY},
	{"log-level", required_argument, NULL, O_LOG},
	{"help", no_argument, NULL, O_HELP},
	{"seed", required_argument, NULL, O_SEED},
	{"advertise", required_argument, NULL, O_ADV},
	{"partitions", required_argument, NULL, O_PARTS},
	{"n", required_argument, NULL, O_N},
	{"r", required_argument, NULL, O_R},
	{"w", required_argument, NULL, O_W},
	{"timeout", required_argument, NULL, O_TIMEOUT},
	{"gossip-interval", required_argument, NULL, O_GOSSIP},
	{"ae-interval", required_argument, NULL, O_AE},
	{"tombstone-grace", required_argument, NULL, O_GRACE},
	{"gc-interval", required_argument, NULL, O_GC},
	{"gc-grace", required_argument, NULL, O_GCGRACE},
	{"compact-at-start", no_argument, NULL, O_COMPACT_START},
	{"compact-check-interval", required_argument, NULL, O_COMPACT_CHECK},
	{"http", required_argument, NULL, O_HTTP},
	{"replay-window", required_argument, NULL, O_REPLAY},
	{"fault-injection", no_argument, NULL, O_FAULT},
	{NULL, 0, NULL, 0},
};

#define MAX_SEEDS 64
#define DAY_MS    (86400ull * 1000)
#define YEAR_MS   (366 * DAY_MS)

/* What the options set.  Strings point into the cli_args' argv. */
struct args {
	struct node_config cfg;
	const char *keyfile;
	const char *credfile;
	const char *ready;
	const char *seeds[MAX_SEEDS];
	bool help;
};

/* "off" (-1, if off_ok) or a number of ms in [min, max]. */
static int
parse_ms(const char *s, bool off_ok, uint64_t min, uint64_t max,
    int64_t *out)
{
	uint64_t v;
	if (off_ok && strcmp(s, "off") == 0) {
		*out = -1;
		return 0;
	}
	if (parse_u64(s, &v) != 0 || v < min || v > max)
		return -EINVAL;
	*out = (int64_t)v;
	return 0;
}

/*
 * Apply option c with its argument: NULL, or what a good value looks like
 * (for the message naming the bad one).
 */
static const char *
set_option(struct args *ar, int c, const char *arg)
{
	struct node_config *cfg = &ar->cfg;
	int64_t ms;
	uint64_t v;

	switch (c) {
	case O_NAME: {
		/* Names travel in JSON, logs and hint keys: plain ones. */
		static const char ok[] = "abcdefghijklmnopqrstuvwxyz"
		                         "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
		                         "0123456789._-";
		size_t nl = strlen(arg);
		if (nl == 0 || nl > 63 || strspn(arg, ok) != nl)
			return "1 to 63 of A-Z a-z 0-9 . _ -";
		cfg->name = arg;
		return NULL;
	}
	case O_LISTEN: cfg->listen = arg; return NULL;
	case O_DATA: cfg->data = arg; return NULL;
	case O_KEY: ar->keyfile = arg; return NULL;
	case O_CRED: ar->credfile = arg; return NULL;
	case O_NOFSYNC: cfg->fsync = false; return NULL;
	case O_NOGROUP: cfg->group_commit = false; return NULL;
	case O_READY: ar->ready = arg; return NULL;
	case O_ADV: cfg->advertise = arg; return NULL;
	case O_HTTP:
		if (!httpd_url_ok(arg))
			return "tcp://HOST:PORT";
		cfg->http = arg;
		return NULL;
	case O_COMPACT_START: cfg->compact_at_start = true; return NULL;
	case O_FAULT: cfg->fault_injection = true; return NULL;
	case O_HELP: ar->help = true; return NULL;
	case O_CONFIG: return NULL; /* read by cli_args_init */
	case O_SEED:
		if (cfg->nseeds == MAX_SEEDS)
			return "at most 64 seeds";
		ar->seeds[cfg->nseeds++] = arg;
		return NULL;
	case O_AE:
		if (parse_ms(arg, true, 1, 3600000, &ms) != 0)
			return "MS from 1 to 3600000, or off";
		cfg->ae_ms = (int)ms;
		return NULL;
	case O_GRACE:
		if (parse_ms(arg, true, 0, YEAR_MS, &ms) != 0)
			return "MS up to a year, or off";
		cfg->tomb_grace_ms = ms;
		return NULL;
	case O_GC:
		if (parse_ms(arg, false, 1, DAY_MS, &ms) != 0)
			return "MS from 1 to a day";
		cfg->gc_ms = (int)ms;
		return NULL;
	case O_GCGRACE:
		/* A round may take grace/4: below 100 ms, none could. */
		if (parse_ms(arg, true, 100, YEAR_MS, &ms) != 0)
			return "MS from 100 to a year, or off";
		cfg->gc_grace_ms = ms;
		return NULL;
	case O_COMPACT_CHECK:
		if (parse_ms(arg, true, 1, DAY_MS, &ms) != 0)
			return "MS from 1 to a day, or off";
		cfg->compact_check_ms = ms;
		return NULL;
	case O_PARTS:
		if (parse_u64(arg, &v) != 0 || v == 0 || v > 4096 ||
		    (v & (v - 1)) != 0)
			return "a power of two up to 4096";
		cfg->partitions = (uint32_t)v;
		return NULL;
	case O_N:
	case O_R:
	case O_W:
		if (parse_u64(arg, &v) != 0 || v == 0 || v > 8)
			return "1 to 8";
		*(c == O_N ? &cfg->n : c == O_R ? &cfg->r : &cfg->w) =
		    (uint32_t)v;
		return NULL;
	case O_REPLAY:
		if (parse_ms(arg, false, 1000, DAY_MS, &ms) != 0)
			return "MS from 1000 to a day";
		cfg->replay_window_ms = ms;
		return NULL;
	case O_TIMEOUT:
	case O_GOSSIP:
		if (parse_ms(arg, false, 1, 1000000, &ms) != 0)
			return "MS from 1 to 1000000";
		*(c == O_TIMEOUT ? &cfg->timeout_ms : &cfg->gossip_ms) =
		    (int)ms;
		return NULL;
	case O_WORKERS:
		if (parse_u64(arg, &v) != 0 || v == 0)
			return "a number, at least 1";
		cfg->workers = v > 4096 ? 4096 : (unsigned)v;
		return NULL;
	case O_MAXVAL:
		if (parse_u64(arg, &v) != 0 || v == 0 || v > WIRE_MAX_VALUE)
			return "BYTES from 1 to 8M";
		cfg->max_value = v;
		return NULL;
	case O_MAXREQ:
		/* At least a full-size value and room for the rest, so a
		 * client's put always gets an answer (a refusal over
		 * --max-value), not its connection closed; over WIRE_MAX_MSG
		 * no message can be built. */
		if (parse_u64(arg, &v) != 0 || v < WIRE_MAX_VALUE + (1u << 20) ||
		    v > WIRE_MAX_MSG)
			return "BYTES from 9M to 64M";
		cfg->max_request = v;
		return NULL;
	case O_MAXCONN:
		if (parse_u64(arg, &v) != 0 || v == 0 || v > 1000000)
			return "a number from 1 to 1000000";
		cfg->max_conns = (unsigned)v;
		return NULL;
	case O_IDLE:
		if (parse_u64(arg, &v) != 0 || v == 0 || v > 86400)
			return "SECONDS from 1 to 86400";
		cfg->idle_ms = (int)v * 1000;
		return NULL;
	case O_MAXDB:
		if (parse_u64(arg, &v) != 0 || v == 0)
			return "BYTES (4k, 10G, 1T, ...)";
		cfg->map_max = v;
		return NULL;
	case O_LOG: {
		enum log_level lvl;
		if (log_level_parse(arg, &lvl) != 0)
			return "debug, info, warn or error";
		log_set_level(lvl);
		return NULL;
	}
	default:
		return "a known option";
	}
}

/* Fill ar from a's argv (the config file's options, then the command
 * line's): 0, or EXIT_USAGE after a message. */
static int
parse_args(struct cli_args *a, struct args *ar)
{
	int c, li;

	memset(ar, 0, sizeof(*ar));
	node_config_default(&ar->cfg);
	ar->cfg.seeds = ar->seeds;
	while ((c = getopt_long(a->argc, a->argv, "", opts, &li)) != -1) {
		if (c == '?' || c == ':') {
			/* getopt has said what was wrong (the file's lines
			 * were all checked by cli_args_init). */
			fprintf(stderr, "dynamod: try --help\n");
			return EXIT_USAGE;
		}
		const char *want = set_option(ar, c, optarg);
		if (want != NULL) {
			cli_args_error(a, optind - 1, "dynamod",
			    "bad --%s '%s': want %s", opts[li].name,
			    optarg ? optarg : "", want);
			return EXIT_USAGE;
		}
		if (ar->help)
			return 0;
	}
	if (optind != a->argc) {
		fprintf(stderr, "dynamod: unexpected argument '%s'\n",
		    a->argv[optind]);
		return EXIT_USAGE;
	}
	const char *missing = !ar->cfg.name ? "--name"
	                    : !ar->cfg.listen ? "--listen"
	                    : !ar->cfg.data ? "--data"
	                                    : NULL;
	if (missing) {
		fprintf(stderr, "dynamod: %s is required, on the command line "
		                "or in the --config file (try --help)\n",
		    missing);
		return EXIT_USAGE;
	}
	if (ar->cfg.r > ar->cfg.n || ar->cfg.w > ar->cfg.n) {
		fprintf(stderr,
		    "dynamod: need --r and --w <= --n (now %u/%u/%u)\n",
		    ar->cfg.n, ar->cfg.r, ar->cfg.w);
		return EXIT_USAGE;
	}
	return 0;
}

/* Load the key, start the node, serve until a signal, a leave or a
 * removal: the exit status. */
static int
run(struct args *ar)
{
	struct node_config *cfg = &ar->cfg;
	struct cred cred;
	bool have_cred;
	char why[600];
	int rc = cli_auth_load(ar->keyfile, ar->credfile, AUTH_NODE,
	    &cfg->keys, &cred, &have_cred, why, sizeof(why));
	if (rc != 0) {
		fprintf(stderr, "dynamod: %s\n", why);
		return rc == -ENOKEY || rc == -EINVAL ? EXIT_USAGE : EXIT_FAILED;
	}
	if (have_cred) {
		if (cred.role != AUTH_NODE) {
			fprintf(stderr, "dynamod: credential %s is of role %s; "
			    "a node needs one of role node (dynamoctl ca issue "
			    "DIR NAME --role node)\n", ar->credfile ?
			    ar->credfile : getenv(CRED_ENV),
			    auth_role_name(cred.role));
			cred_fini(&cred);
			return EXIT_FAILED;
		}
		cfg->cred = &cred;
	}
	log_set_prefix(cfg->name);

	/* Signals are taken by sigwait below, in this thread only. */
	sigset_t sigs;
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);
	signal(SIGPIPE, SIG_IGN);

	struct node *n;
	rc = node_start(cfg, &n);
	if (cfg->cred) { /* the node keeps what it needs of it */
		cred_fini(&cred);
		cfg->cred = NULL;
	}
	if (rc != 0) {
		fprintf(stderr, "dynamod: %s\n", dyn_strerror(rc));
		return EXIT_FAILED;
	}
	if (ar->ready && (rc = write_ready_file(ar->ready, node_addr(n),
	                      node_http_url(n))) != 0)
		LOG_ERROR("ready file %s: %s", ar->ready, dyn_strerror(rc));

	/* Wait for a signal, or for `dynamoctl leave` to complete. */
	int sig = -1;
	const struct timespec tick = {0, 200 * 1000000L};
	while (sig < 0 && !node_left(n)) {
		sig = sigtimedwait(&sigs, NULL, &tick);
		if (sig < 0 && errno != EAGAIN && errno != EINTR)
			break;
	}
	bool removed = sig < 0 && node_removed(n);
	if (sig >= 0)
		LOG_INFO("signal %d: stopping", sig);
	else if (removed)
		LOG_ERROR("removed from the cluster: stopping");
	else
		LOG_INFO("left the cluster: stopping");
	stop_watchdog(removed ? EXIT_REMOVED : EXIT_STOPPED);
	node_stop(n);
	LOG_INFO("stopped");
	return removed ? EXIT_REMOVED : EXIT_STOPPED;
}

int
main(int argc, char **argv)
{
	struct cli_args a;
	struct args ar;
	char err[512];
	int status;

	/*
	 * nng allocates (zeroed) a message's whole buffer when its length
	 * arrives.  A block kept in the heap is zeroed by hand, so every
	 * page of it is resident at once: 50 connections declaring 24 MiB
	 * and sending 256 KiB each held 1.2 GB.  A mapped block is zero
	 * already and costs only the pages the peer really sends.  So blocks
	 * over 256 KiB are mapped: the mount's chunks (128 KiB by default)
	 * and their messages stay in the heap, as fast as before, and a peer
	 * stalling in a message holds at most 256 KiB or what it sent.
	 */
	mem_keep_freed_blocks(256u << 10);
	if (cli_args_init(&a, argc, argv, "", opts, O_CONFIG, err,
	        sizeof(err)) != 0) {
		fprintf(stderr, "dynamod: %s\n", err);
		status = EXIT_USAGE;
	} else if ((status = parse_args(&a, &ar)) == 0) {
		if (ar.help)
			usage(stdout);
		else
			status = run(&ar);
	}
	cli_args_fini(&a);
	return status;
}
