/*
 * dynamod — one storage node, in the foreground, logging to stderr.
 * SIGINT / SIGTERM: finish the requests in flight, close LMDB, exit 0.
 * Also exit 0 once `dynamoctl leave` is done; exit 3 when the node learns
 * that it was removed from the cluster (`dynamoctl remove`).
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
#include "err.h"
#include "log.h"
#include "mem.h"
#include "node.h"
#include "wire.h"

static void
usage(FILE *f)
{
	fprintf(f,
	    "usage: dynamod --name NAME --listen tcp://HOST:PORT --data DIR\n"
	    "               --cluster-key FILE [options]\n"
	    "\n"
	    "  --name NAME          node name, unique in the cluster\n"
	    "  --listen URL         address to serve (port 0: any free port)\n"
	    "  --data DIR           data directory (created if missing)\n"
	    "  --cluster-key FILE   cluster key file (or $DYNAMO_CLUSTER_KEY_FILE)\n"
	    "  --no-fsync           do not fsync commits (faster, not durable)\n"
	    "  --no-group-commit    one LMDB transaction per write\n"
	    "  --workers N          requests served concurrently (default 64)\n"
	    "  --max-value BYTES    largest value accepted (default 8 MiB)\n"
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
	    "  --ready-file FILE    write the listen address here once serving\n"
	    "  --log-level LEVEL    debug, info, warn or error (default info)\n");
}

/* Write the address atomically, so a poller never sees half of it. */
static int
write_ready_file(const char *path, const char *addr)
{
	char tmp[4096];
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	FILE *f = fopen(tmp, "w");
	if (!f)
		return -errno;
	fprintf(f, "%s\n", addr);
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

int
main(int argc, char **argv)
{
	enum {
		O_NAME = 256, O_LISTEN, O_DATA, O_KEY, O_NOFSYNC, O_NOGROUP,
		O_WORKERS, O_MAXVAL, O_MAXDB, O_READY, O_LOG, O_HELP,
		O_SEED, O_ADV, O_PARTS, O_N, O_R, O_W, O_TIMEOUT, O_GOSSIP,
		O_AE, O_GRACE, O_GC, O_GCGRACE, O_COMPACT_START,
		O_COMPACT_CHECK,
	};
	static const struct option opts[] = {
		{"name", required_argument, NULL, O_NAME},
		{"listen", required_argument, NULL, O_LISTEN},
		{"data", required_argument, NULL, O_DATA},
		{"cluster-key", required_argument, NULL, O_KEY},
		{"no-fsync", no_argument, NULL, O_NOFSYNC},
		{"no-group-commit", no_argument, NULL, O_NOGROUP},
		{"workers", required_argument, NULL, O_WORKERS},
		{"max-value", required_argument, NULL, O_MAXVAL},
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
		{"compact-check-interval", required_argument, NULL,
		    O_COMPACT_CHECK},
		{NULL, 0, NULL, 0},
	};
	struct node_config cfg;
	mem_keep_freed_blocks();
	node_config_default(&cfg);
	const char *keyfile = getenv("DYNAMO_CLUSTER_KEY_FILE");
	const char *ready = NULL;
	const char *seeds[64];
	size_t nseeds = 0;
	uint64_t v;
	int c;

	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case O_NAME: cfg.name = optarg; break;
		case O_LISTEN: cfg.listen = optarg; break;
		case O_DATA: cfg.data = optarg; break;
		case O_KEY: keyfile = optarg; break;
		case O_NOFSYNC: cfg.fsync = false; break;
		case O_NOGROUP: cfg.group_commit = false; break;
		case O_READY: ready = optarg; break;
		case O_SEED:
			if (nseeds == sizeof(seeds) / sizeof(seeds[0])) {
				fprintf(stderr, "dynamod: too many seeds\n");
				return 1;
			}
			seeds[nseeds++] = optarg;
			break;
		case O_ADV: cfg.advertise = optarg; break;
		case O_AE:
			if (strcmp(optarg, "off") == 0) {
				cfg.ae_ms = -1;
				break;
			}
			if (parse_u64(optarg, &v) != 0 || v == 0 ||
			    v > 3600000) {
				fprintf(stderr, "dynamod: bad --ae-interval\n");
				return 1;
			}
			cfg.ae_ms = (int)v;
			break;
		case O_GRACE:
			if (strcmp(optarg, "off") == 0) {
				cfg.tomb_grace_ms = -1;
				break;
			}
			if (parse_u64(optarg, &v) != 0 ||
			    v > 366ull * 86400 * 1000) {
				fprintf(stderr, "dynamod: bad --tombstone-grace\n");
				return 1;
			}
			cfg.tomb_grace_ms = (int64_t)v;
			break;
		case O_GC:
			if (parse_u64(optarg, &v) != 0 || v == 0 ||
			    v > 86400000) {
				fprintf(stderr, "dynamod: bad --gc-interval\n");
				return 1;
			}
			cfg.gc_ms = (int)v;
			break;
		case O_GCGRACE:
			if (strcmp(optarg, "off") == 0) {
				cfg.gc_grace_ms = -1;
				break;
			}
			/* A round may take grace/4: below 100 ms, none could. */
			if (parse_u64(optarg, &v) != 0 || v < 100 ||
			    v > 366ull * 86400 * 1000) {
				fprintf(stderr, "dynamod: bad --gc-grace\n");
				return 1;
			}
			cfg.gc_grace_ms = (int64_t)v;
			break;
		case O_COMPACT_START:
			cfg.compact_at_start = true;
			break;
		case O_COMPACT_CHECK:
			if (strcmp(optarg, "off") == 0) {
				cfg.compact_check_ms = -1;
				break;
			}
			if (parse_u64(optarg, &v) != 0 || v == 0 ||
			    v > 86400000) {
				fprintf(stderr,
				    "dynamod: bad --compact-check-interval\n");
				return 1;
			}
			cfg.compact_check_ms = (int64_t)v;
			break;
		case O_PARTS:
		case O_N:
		case O_R:
		case O_W:
		case O_TIMEOUT:
		case O_GOSSIP:
			if (parse_u64(optarg, &v) != 0 || v == 0 || v > 1000000) {
				fprintf(stderr, "dynamod: bad number '%s'\n",
				    optarg);
				return 1;
			}
			if (c == O_PARTS)
				cfg.partitions = (uint32_t)v;
			else if (c == O_N)
				cfg.n = (uint32_t)v;
			else if (c == O_R)
				cfg.r = (uint32_t)v;
			else if (c == O_W)
				cfg.w = (uint32_t)v;
			else if (c == O_TIMEOUT)
				cfg.timeout_ms = (int)v;
			else
				cfg.gossip_ms = (int)v;
			break;
		case O_WORKERS:
		case O_MAXVAL:
		case O_MAXDB:
			if (parse_u64(optarg, &v) != 0 || v == 0) {
				fprintf(stderr, "dynamod: bad number '%s'\n",
				    optarg);
				return 1;
			}
			if (c == O_WORKERS)
				cfg.workers = v > 4096 ? 4096 : (unsigned)v;
			else if (c == O_MAXVAL)
				cfg.max_value = v;
			else
				cfg.map_max = v;
			break;
		case O_LOG: {
			enum log_level lvl;
			if (log_level_parse(optarg, &lvl) != 0) {
				fprintf(stderr, "dynamod: bad log level '%s'\n",
				    optarg);
				return 1;
			}
			log_set_level(lvl);
			break;
		}
		case O_HELP:
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 1;
		}
	}
	if (optind != argc || !cfg.name || !cfg.listen || !cfg.data ||
	    !keyfile) {
		usage(stderr);
		return 1;
	}
	/* Names travel in JSON, logs and hint keys: keep them plain. */
	size_t nl = strlen(cfg.name);
	if (nl == 0 || nl > 63 ||
	    strspn(cfg.name, "abcdefghijklmnopqrstuvwxyz"
	                     "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") != nl) {
		fprintf(stderr, "dynamod: --name: 1 to 63 of A-Z a-z 0-9 . _ -\n");
		return 1;
	}
	cfg.seeds = seeds;
	cfg.nseeds = nseeds;
	if (cfg.n > 8 || cfg.r > cfg.n || cfg.w > cfg.n ||
	    (cfg.partitions & (cfg.partitions - 1)) != 0 ||
	    cfg.partitions > 4096) {
		fprintf(stderr, "dynamod: need R, W <= N <= 8 and partitions a "
		                "power of two <= 4096\n");
		return 1;
	}
	if (cfg.max_value > WIRE_MAX_VALUE) {
		fprintf(stderr, "dynamod: --max-value is at most %u\n",
		    WIRE_MAX_VALUE);
		return 1;
	}
	int rc = auth_key_load(keyfile, &cfg.key);
	if (rc != 0) {
		fprintf(stderr, "dynamod: cluster key %s: %s\n", keyfile,
		    dyn_strerror(rc));
		return 1;
	}
	log_set_prefix(cfg.name);

	/* Signals are taken by sigwait below, in this thread only. */
	sigset_t sigs;
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);
	signal(SIGPIPE, SIG_IGN);

	struct node *n;
	if ((rc = node_start(&cfg, &n)) != 0) {
		fprintf(stderr, "dynamod: %s\n", dyn_strerror(rc));
		return 1;
	}
	if (ready && (rc = write_ready_file(ready, node_addr(n))) != 0)
		LOG_ERROR("ready file %s: %s", ready, dyn_strerror(rc));

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
	stop_watchdog(removed ? 3 : 0);
	node_stop(n);
	LOG_INFO("stopped");
	return removed ? 3 : 0;
}
