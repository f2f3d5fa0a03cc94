/*
 * dynamoctl — the command-line client: get, put and delete one key, list
 * the keys of a placement part, show a node's status, and make a cluster
 * key.  It talks to the cluster only through the client library
 * (common/client.h), like any other front end.
 *
 *   argv --getopt_long--> struct ctl --> cmd_*() --> dyn_get/put/...
 *                                           |
 *                    stdout: value or JSON; stderr: "dynamoctl: what: why"
 *
 * status, leave and remove judge the whole cluster (health.c): every
 * member's status, asked in parallel, and the wait with progress lines.
 *
 * Exit status: 0 success, 1 error or bad usage, 2 not found, 3 the key has
 * concurrent versions (get prints nothing then; --json shows them all),
 * 4 the cluster is degraded (status) or the wait ran out (--wait).
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "auth.h"
#include "ca.h"
#include "cli.h"
#include "client.h"
#include "cred.h"
#include "err.h"
#include "health.h"
#include "keypos.h"
#include "mem.h"
#include "mono.h"
#include "ring.h"
#include "vset.h"
#include "wire.h"

enum {
	EXIT_OK = 0,
	EXIT_ERR = 1,
	EXIT_NOTFOUND = 2,
	EXIT_SIBLINGS = 3,
	EXIT_DEGRADED = 4,
};

/* Command-specific options, as bits, so each command can refuse the ones
 * that mean nothing to it instead of silently ignoring them. */
enum {
	CO_JSON = 1u << 0,
	CO_R = 1u << 1,
	CO_LOCAL = 1u << 2,
	CO_CONTEXT = 1u << 3,
	CO_W = 1u << 4,
	CO_WAIT = 1u << 5,
	CO_NO_WAIT = 1u << 6,
	CO_ROLE = 1u << 7,
	CO_HOST = 1u << 8,
	CO_OUT = 1u << 9,
	CO_PART = 1u << 10,
};

/* Long-only options get codes above any char. */
enum {
	OPT_R = 256,
	OPT_W,
	OPT_LOCAL,
	OPT_WAIT,
	OPT_NO_WAIT,
	OPT_CRED,
	OPT_ROLE,
	OPT_HOST,
	OPT_PART,
};

struct ctl {
	const char **nodes; /* into argv; array mem_alloc'd */
	size_t nnodes;
	const char *key_file; /* NULL: $DYNAMO_CLUSTER_KEY_FILE */
	const char *cred_file; /* NULL: $DYNAMO_CRED_FILE, or none */
	const char *role;     /* ca issue --role */
	const char **hosts;   /* ca issue --host, into argv; mem_alloc'd */
	size_t nhosts;
	const char *out;      /* ca issue -o */
	int timeout_ms;       /* 0: the library's default */
	unsigned given;       /* CO_* seen on the command line */
	bool json;
	bool local;
	uint32_t r;
	uint32_t w;
	const char *context; /* base64, as printed by get --json */
	const char *part;    /* --part: KEY is the rest of a placement key */
	uint8_t key[KEYPOS_PLACED_MAX]; /* that key */
	uint64_t wait_ms;    /* --wait=DURATION; 0: no bound */
	char **args;         /* command and its operands, into argv */
	int nargs;
};

struct cmd {
	const char *name;
	int min_args; /* operands after the command name */
	int max_args;
	unsigned opts; /* CO_* allowed */
	bool needs_client;
	int (*run)(struct ctl *ctl, struct dyn_client *c);
};

static const char usage_text[] =
    "usage: dynamoctl --node tcp://HOST:PORT [--node ...]\n"
    "                 {--cred FILE | --cluster-key FILE} [--timeout MS]\n"
    "                 COMMAND [ARGS]\n"
    "\n"
    "commands:\n"
    "  get KEY [--json] [--r N] [--local] [--part PART]\n"
    "  put KEY [FILE|-] [--context CTX] [--w N] [--part PART]\n"
    "  delete KEY [--context CTX] [--w N] [--part PART]\n"
    "  list PART [--r N] [--local]\n"
    "  status [--json] [--wait[=DURATION]]\n"
    "  ring [--json]\n"
    "  leave [--no-wait | --wait=DURATION]\n"
    "  remove NAME [--no-wait | --wait=DURATION]\n"
    "  compact [--json]\n"
    "  fault drop NODE... | fault heal\n"
    "  keygen FILE\n"
    "  ca init DIR | ca issue DIR NAME --role ROLE [--host H]... [-o FILE]\n"
    "  ca rotate DIR begin|switch|finish\n";

static const char help_text[] =
    "\n"
    "  get KEY      Print the value of KEY, raw, on stdout.  With --json,\n"
    "               print every version (tombstones too) with its dot,\n"
    "               clock and write time, and the context for a later put:\n"
    "               {\"key\": ..., \"versions\": [{\"value\": BASE64,\n"
    "               \"tombstone\": BOOL, \"ts_ms\": N, \"dot\": {\"actor\":\n"
    "               HEX16, \"counter\": N}, \"clock\": [{\"actor\": HEX16,\n"
    "               \"counter\": N, \"ts_ms\": N}, ...], \"dots\": [{\"actor\":\n"
    "               HEX16, \"counter\": N}, ...]}, ...], \"context\": BASE64}\n"
    "  put KEY [FILE|-]\n"
    "               Write KEY.  The value comes from FILE, or from stdin\n"
    "               when FILE is '-' or absent.  CTX is the \"context\" of\n"
    "               get --json: the put replaces the versions that get\n"
    "               saw.  Without --context the put is blind and every\n"
    "               version already stored stays, as a sibling.\n"
    "  delete KEY   Write a tombstone for KEY.  With --context it replaces\n"
    "               the versions that context saw; without, dynamoctl first\n"
    "               reads KEY and deletes every version the read returned\n"
    "               (exit 2 when there was no live version to delete).\n"
    "  list PART    Print every key of placement part PART, the rest of\n"
    "               each key after the part, one a line, in key order\n"
    "               (keys 0xFF | u16 length | PART | rest share PART's\n"
    "               ring position: common/keypos.h), read a page at a\n"
    "               time with the read quorum and read repair of a get;\n"
    "               deleted keys are not shown.  --local: only the\n"
    "               answering node's own replica.\n"
    ;

/* Apart from help_text: C17 promises string literals of 4095 bytes. */
static const char help_admin_text[] =
    "  status       The cluster as the first --node that answers sees it:\n"
    "               a row per member (state, reachable, partitions owned,\n"
    "               keys, data size, hints held for it, anti-entropy\n"
    "               rounds and last difference, transfer), each member\n"
    "               asked in parallel, then 'healthy' or 'degraded: ...'\n"
    "               with the reasons (a member down or unreachable, hints\n"
    "               pending, a transfer running, replicas differing).\n"
    "               Exit 0 healthy, 4 degraded.  --wait waits (at most\n"
    "               DURATION) until healthy, with progress on stderr.\n"
    "               --json: one object per --node, one per line (its\n"
    "               counters, members, ring, transfer, anti-entropy, hints\n"
    "               and \"health\": the verdict and the rows); the same\n"
    "               exit status, 1 when a --node did not answer.\n"
    "  ring         The ring as the (first) node sees it: epoch, N/R/W,\n"
    "               members with the partitions each owns, and every\n"
    "               partition's preference list (--json: one object).\n"
    "  leave        Make the (first) node leave the cluster: it hands its\n"
    "               partitions to their new owners, then exits 0.  Refused\n"
    "               when it is the only member up (nowhere to hand them).\n"
    "               Waits until it has left, showing partitions and bytes\n"
    "               moved, rate and time left on stderr (--no-wait: return\n"
    "               at once; the leave goes on either way).\n"
    "  remove NAME  Tell the (first) node that member NAME is gone for\n"
    "               good (a dead disk or host) and cannot leave: the ring\n"
    "               is planned without it, its partitions are copied from\n"
    "               the other replicas, hints held for it go to the keys'\n"
    "               replicas.  Refused while the node reaches NAME.  NAME\n"
    "               cannot join again, and if it comes back it stops\n"
    "               (exit 3); a replacement takes a new name.  Waits, as\n"
    "               leave does, until its partitions and hints are\n"
    "               elsewhere.\n"
    "  compact      Make every --node in turn compact its data file now,\n"
    "               giving the disk back the space that deletes freed;\n"
    "               prints the file's size before and after.  The node's\n"
    "               writes wait for the copy, reads go on.  Refused when\n"
    "               the node's disk has no room for the copy.  The timeout\n"
    "               is 10 minutes unless --timeout is given (--json: one\n"
    "               object per node).\n"
    "  fault drop NODE...\n"
    "               For tests: cut the (first) node off from the named\n"
    "               nodes, both ways, as a network partition would.\n"
    "  fault heal   Undo every cut of the (first) node.\n"
    "  keygen FILE  Write a new random cluster key to FILE (64 hex digits,\n"
    "               mode 0600; an existing file is never overwritten).\n"
    "               Needs no --node and no key.\n";

/* Apart from help_text: C17 promises string literals of 4095 bytes. */
static const char help_ca_text[] =
    "  ca init DIR  Make a cluster CA in DIR (created if missing):\n"
    "               ca.pem (its certificate), ca.key (its private key)\n"
    "               and cluster.key (the master key every role key is\n"
    "               derived from), the keys mode 0600.  Never overwrites.\n"
    "  ca issue DIR NAME --role node|client|admin [--host H]... [-o FILE]\n"
    "               Issue a credential from the CA in DIR to FILE (default\n"
    "               DIR/NAME.pem, mode 0600, never overwritten): an EC\n"
    "               P-256 key, its certificate (CN NAME, OU the role,\n"
    "               subjectAltName the hosts), the CA certificate and the\n"
    "               role's keys.  Give it to dynamod, dynamoctl,\n"
    "               dynamo-bench or dynamofs as --cred FILE.\n"
    "  ca rotate DIR begin|switch|finish\n"
    "               Replace the CA and the master key without downtime:\n"
    "               after each step, issue every credential again and\n"
    "               restart the nodes and clients one by one.  begin: a\n"
    "               new CA and key, trusted and accepted beside the old;\n"
    "               switch: the new ones sign, the old still trusted;\n"
    "               finish: the old ones dropped.  Blobs keep their names.\n";

/* Apart from help_text: C17 promises string literals of 4095 bytes. */
static const char help_opts_text[] =
    "\n"
    "options (before or after the command):\n"
    "  -n, --node ADDR        a node, tcp://HOST:PORT; repeat for more:\n"
    "                         a request goes to one of them and moves on\n"
    "                         to the next when it does not answer\n"
    "      --cred FILE        a credential (ca issue): its role's keys, and\n"
    "                         mutual TLS to the nodes (default: the file\n"
    "                         named by $" CRED_ENV ")\n"
    "  -k, --cluster-key FILE instead, the cluster key file: plain tcp\n"
    "                         (default: the file named by $" CLI_KEY_ENV ")\n"
    "      --role, --host, -o, --output  ca issue: see above\n"
    "  -t, --timeout MS       per-node timeout (default 5000; \"2s\" works)\n"
    "  -j, --json             JSON output (get, status, ring, compact)\n"
    "      --wait[=DURATION]  status: wait until the cluster is healthy\n"
    "                         (a join's transfer, a repair, hints\n"
    "                         delivered); leave, remove: wait at most\n"
    "                         DURATION (\"90s\", \"10m\"; default: no bound)\n"
    "      --no-wait          leave, remove: return once asked\n"
    "      --r N              get, list: read quorum (default: the cluster's R)\n"
    "      --local            get, list: read only the answering node's own\n"
    "                         replica, without a quorum\n"
    "      --part PART        get, put, delete: KEY is the rest of a key of\n"
    "                         placement part PART (list PART shows it)\n"
    "  -c, --context CTX      put, delete: base64 context from get --json\n"
    "      --w N              put, delete: write quorum (default: the\n"
    "                         cluster's W)\n"
    "  -h, --help             this text\n"
    "  --                     end of options: a KEY starting with '-'\n"
    "                         goes after it\n"
    "\n"
    "exit status: 0 success, 1 error or bad usage, 2 not found,\n"
    "3 KEY has concurrent versions (get prints no value; use --json),\n"
    "4 the cluster is degraded (status), or --wait ran out.\n";

static void
usage_short(void)
{
	fputs(usage_text, stderr);
	fputs("run 'dynamoctl --help' for details\n", stderr);
}

static void usage_error(const char *fmt, ...)
    __attribute__((format(printf, 1, 2)));

static void
usage_error(const char *fmt, ...)
{
	va_list ap;

	fputs("dynamoctl: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	usage_short();
}

/* "dynamoctl: what: why" for an error code of the project. */
static void
fail(const char *what, int err)
{
	fprintf(stderr, "dynamoctl: %s: %s\n", what, dyn_strerror(err));
}

/* Flush stdout and report a failed write (a full disk, a closed pipe): a
 * get whose value did not arrive must not exit 0. */
static int
flush_stdout(void)
{
	if (fflush(stdout) != 0 || ferror(stdout)) {
		fail("write to stdout", -(errno ? errno : EIO));
		return EXIT_ERR;
	}
	return EXIT_OK;
}

/* KEY, or with --part the placement key 0xFF | length | PART | KEY
 * (common/keypos.h), built in ctl->key.  -1 (said on stderr) when that
 * is too long for a placement key. */
static int
key_arg(struct ctl *ctl, const char **key, size_t *klen)
{
	*key = ctl->args[1];
	*klen = strlen(*key);
	if (!ctl->part)
		return 0;
	size_t plen = strlen(ctl->part);
	size_t h = plen + KEYPOS_PLACED_HDR <= KEYPOS_PLACED_MAX
	    ? keypos_placed_make(ctl->part, plen, ctl->key)
	    : 0;
	if (h == 0 || *klen > KEYPOS_PLACED_MAX - h) {
		fail("--part", DYN_ETOOBIG);
		return -1;
	}
	memcpy(ctl->key + h, *key, *klen);
	*key = (const char *)ctl->key;
	*klen += h;
	return 0;
}

static void
json_b64(FILE *f, const void *p, size_t len, int *err)
{
	char *s = NULL;
	int rv = cli_b64_encode(p, len, &s);
	if (rv != 0) {
		if (*err == 0)
			*err = rv;
		fputs("null", f);
		return;
	}
	fprintf(f, "\"%s\"", s);
	mem_free(s);
}

static int
print_get_json(const char *key, size_t klen, const struct dyn_get_result *res)
{
	FILE *f = stdout;
	int err = 0;

	fputs("{\"key\": ", f);
	cli_json_str(f, key, klen);
	fputs(", \"versions\": [", f);
	for (uint32_t i = 0; i < res->versions.n; i++) {
		const struct version *v = &res->versions.v[i];

		fputs(i ? ", {\"value\": " : "{\"value\": ", f);
		json_b64(f, v->value, v->len, &err);
		fprintf(f,
		        ", \"tombstone\": %s, \"ts_ms\": %" PRIu64
		        ", \"dot\": {\"actor\": \"%016" PRIx64
		        "\", \"counter\": %" PRIu64 "}, \"clock\": [",
		        v->tombstone ? "true" : "false", v->ts_ms,
		        v->dot.actor, v->dot.counter);
		for (uint32_t j = 0; j < v->past.n; j++) {
			const struct vclock_entry *e = &v->past.e[j];
			fprintf(f,
			        "%s{\"actor\": \"%016" PRIx64
			        "\", \"counter\": %" PRIu64
			        ", \"ts_ms\": %" PRIu64 "}",
			        j ? ", " : "", e->actor, e->counter, e->ts_ms);
		}
		/* Exact events beyond the entries (common/vclock.h). */
		fputs("], \"dots\": [", f);
		for (uint32_t j = 0; j < v->past.nd; j++) {
			const struct vclock_entry *e = &v->past.d[j];
			fprintf(f,
			        "%s{\"actor\": \"%016" PRIx64
			        "\", \"counter\": %" PRIu64 "}",
			        j ? ", " : "", e->actor, e->counter);
		}
		fputs("]}", f);
	}
	fputs("], \"context\": ", f);
	json_b64(f, res->ctx, res->ctx_len, &err);
	fputs("}\n", f);
	return err;
}

/* Page through the part until the end; each key's rest on a line. */
static int
cmd_list(struct ctl *ctl, struct dyn_client *c)
{
	struct dyn_req_opts ro = {
	    .r = ctl->r,
	    .flags = ctl->local ? WIRE_F_LOCAL : 0,
	};
	const char *part;
	size_t plen;
	part = ctl->args[1];
	plen = strlen(part);
	uint8_t *cursor = NULL;
	size_t clen = 0;
	int ex = EXIT_OK;
	for (;;) {
		struct dyn_range_page pg;
		int rv = dyn_range(c, part, plen, cursor, clen, 0, 0, &ro, &pg);
		mem_free(cursor);
		cursor = NULL;
		if (rv != 0) {
			fail("list", rv);
			dyn_range_page_fini(&pg);
			ex = EXIT_ERR;
			break;
		}
		size_t hlen = KEYPOS_PLACED_HDR + plen;
		for (uint32_t i = 0; i < pg.n && ex == EXIT_OK; i++) {
			const struct dyn_range_entry *e = &pg.e[i];
			size_t n = e->klen - hlen;
			if ((n > 0 && fwrite(e->key + hlen, 1, n, stdout) != n) ||
			    putchar('\n') == EOF)
				ex = flush_stdout();
		}
		/* The next page from where this one ended. */
		cursor = pg.next;
		clen = pg.next_len;
		bool more = pg.more;
		pg.next = NULL;
		dyn_range_page_fini(&pg);
		if (!more || ex != EXIT_OK)
			break;
	}
	mem_free(cursor);
	if (ex == EXIT_OK)
		ex = flush_stdout();
	return ex;
}

static int
cmd_get(struct ctl *ctl, struct dyn_client *c)
{
	struct dyn_get_result res;
	struct dyn_req_opts ro = {
	    .r = ctl->r,
	    .flags = ctl->local ? WIRE_F_LOCAL : 0,
	};
	const char *key;
	size_t klen;
	int ex = EXIT_ERR;

	memset(&res, 0, sizeof(res));
	if (key_arg(ctl, &key, &klen) != 0)
		goto out;
	int rv = dyn_get(c, key, klen, &ro, &res);
	if (rv != 0 && rv != -ENOENT) {
		fail("get", rv);
		goto out;
	}

	/* Decide by the versions in hand, not by rv alone: the exit code
	 * must match what --json shows. */
	uint32_t live = vset_live(&res.versions);
	const struct version *one = NULL;
	for (uint32_t i = 0; i < res.versions.n && one == NULL; i++) {
		if (!res.versions.v[i].tombstone)
			one = &res.versions.v[i];
	}

	if (ctl->json) {
		rv = print_get_json(key, klen, &res);
		if (rv != 0) {
			fail("get: JSON output", rv);
			goto out;
		}
	} else if (live == 0) {
		fputs("dynamoctl: not found\n", stderr);
	} else if (live > 1) {
		fprintf(stderr,
		        "dynamoctl: key has %" PRIu32 " concurrent versions "
		        "(siblings); use get --json to see them all, then put "
		        "with its context to resolve them\n",
		        live);
	} else if (one->len > 0 &&
	           fwrite(one->value, 1, one->len, stdout) != one->len) {
		fail("write to stdout", -(errno ? errno : EIO));
		goto out;
	}
	if (flush_stdout() != EXIT_OK)
		goto out;
	ex = live == 0 ? EXIT_NOTFOUND : live > 1 ? EXIT_SIBLINGS : EXIT_OK;
out:
	dyn_get_result_fini(&res);
	return ex;
}

static int
context_arg(const struct ctl *ctl, uint8_t **ctx, size_t *len)
{
	*ctx = NULL;
	*len = 0;
	if (ctl->context == NULL)
		return 0;
	int rv = cli_b64_decode(ctl->context, ctx, len);
	if (rv == -EINVAL)
		fputs("dynamoctl: --context: not a base64 context from get "
		      "--json\n",
		      stderr);
	else if (rv != 0)
		fail("--context", rv);
	return rv;
}

static int
cmd_put(struct ctl *ctl, struct dyn_client *c)
{
	struct dyn_req_opts ro = {.w = ctl->w};
	const char *path = ctl->nargs > 2 ? ctl->args[2] : NULL;
	uint8_t *ctx = NULL, *val = NULL;
	size_t ctx_len, len;
	const char *key;
	size_t klen;
	int ex = EXIT_ERR;

	if (key_arg(ctl, &key, &klen) != 0 ||
	    context_arg(ctl, &ctx, &ctx_len) != 0)
		goto out;
	int rv = cli_read_file(path, WIRE_MAX_VALUE, &val, &len);
	if (rv != 0) {
		char what[300];
		snprintf(what, sizeof(what), "read %s",
		         path && strcmp(path, "-") != 0 ? path : "stdin");
		fail(what, rv);
		goto out;
	}
	rv = dyn_put(c, key, klen, ctx, ctx_len, val, len, &ro, NULL, NULL);
	if (rv != 0) {
		fail("put", rv);
		goto out;
	}
	ex = EXIT_OK;
out:
	mem_free(val);
	mem_free(ctx);
	return ex;
}

static int
cmd_delete(struct ctl *ctl, struct dyn_client *c)
{
	struct dyn_req_opts ro = {.w = ctl->w};
	struct dyn_get_result res;
	uint8_t *ctx = NULL;
	size_t ctx_len;
	const char *key;
	size_t klen;
	int ex = EXIT_ERR;
	int rv;

	memset(&res, 0, sizeof(res));
	if (key_arg(ctl, &key, &klen) != 0)
		goto out;
	if (ctl->context != NULL) {
		if (context_arg(ctl, &ctx, &ctx_len) != 0)
			goto out;
	} else {
		/* A blind tombstone supersedes nothing: every live version
		 * would stay next to it.  Read first so "delete KEY" means
		 * what it says. */
		rv = dyn_get(c, key, klen, NULL, &res);
		if (rv == -ENOENT ||
		    (rv == 0 && vset_live(&res.versions) == 0)) {
			fputs("dynamoctl: not found\n", stderr);
			ex = EXIT_NOTFOUND;
			goto out;
		}
		if (rv != 0) {
			fail("delete: read", rv);
			goto out;
		}
		ctx = res.ctx;
		ctx_len = res.ctx_len;
		res.ctx = NULL; /* ours now */
		res.ctx_len = 0;
	}
	rv = dyn_delete(c, key, klen, ctx, ctx_len, &ro);
	if (rv != 0) {
		fail("delete", rv);
		goto out;
	}
	ex = EXIT_OK;
out:
	dyn_get_result_fini(&res);
	mem_free(ctx);
	return ex;
}

/* Is s[0..n) a plain decimal integer (printed in JSON as a number)? */
static bool
is_json_int(const char *s, size_t n)
{
	size_t i = (n > 0 && s[0] == '-') ? 1 : 0;

	if (i == n || n - i > 19 || (s[i] == '0' && n - i > 1))
		return false;
	for (; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
	}
	return true;
}

/* The stats text, "name=value" lines, as a JSON object. */
static void
print_stats_json(FILE *f, const char *stats)
{
	const char *p = stats;
	bool first = true;

	fputc('{', f);
	while (p != NULL && *p != '\0') {
		const char *nl = strchr(p, '\n');
		size_t n = nl ? (size_t)(nl - p) : strlen(p);
		const char *eq = memchr(p, '=', n);

		if (eq != NULL && eq != p) {
			size_t kn = (size_t)(eq - p), vn = n - kn - 1;

			fputs(first ? "" : ", ", f);
			cli_json_str(f, p, kn);
			fputs(": ", f);
			if (is_json_int(eq + 1, vn))
				fwrite(eq + 1, 1, vn, f);
			else
				cli_json_str(f, eq + 1, vn);
			first = false;
		}
		p = nl ? nl + 1 : NULL;
	}
	fputc('}', f);
}

/* One --node's status as a JSON line; with the cluster's health (h NULL:
 * no member answered the health round). */
static void
print_status_json(const char *node, const struct dyn_status *st, int err,
    const struct health *h)
{
	FILE *f = stdout;

	fputs("{\"node\": ", f);
	cli_json_str(f, node, strlen(node));
	if (err != 0) {
		fputs(", \"error\": ", f);
		const char *m = dyn_strerror(err);
		cli_json_str(f, m, strlen(m));
		fputs("}\n", f);
		return;
	}
	fputs(", \"name\": ", f);
	cli_json_str(f, st->name, strnlen(st->name, sizeof(st->name)));
	fputs(", \"address\": ", f);
	cli_json_str(f, st->addr, strnlen(st->addr, sizeof(st->addr)));
	fprintf(f,
	        ", \"uptime_s\": %" PRIu64 ", \"keys\": %" PRIu64
	        ", \"db_bytes\": %" PRIu64 ", \"actor\": \"%016" PRIx64
	        "\", \"stats\": ",
	        st->uptime_s, st->keys, st->db_bytes, st->actor);
	print_stats_json(f, st->stats);
	if (st->json) {
		/* The node's own JSON: members, ring, transfers. */
		fputs(", \"cluster\": ", f);
		fputs(st->json, f);
	}
	fputs(", \"health\": ", f);
	if (h)
		health_print_json(h, f);
	else
		fputs("null", f);
	fputs("}\n", f);
}

/* The timeout of each status call of a health round: short, so a member
 * down costs little (they are asked in parallel). */
#define HEALTH_TIMEOUT_MS 2000

static int
health_timeout(const struct ctl *ctl)
{
	return ctl->timeout_ms > 0 ? ctl->timeout_ms : HEALTH_TIMEOUT_MS;
}

/* Wait for goal (name: the member leaving or removed), progress on
 * stderr, at most --wait's duration.  *last as health_wait's. */
static int
wait_for(const struct ctl *ctl, struct dyn_client *c, enum health_goal goal,
    const char *name, struct health *last)
{
	struct health_wait w = {
	    .goal = goal,
	    .name = name,
	    .deadline_ms = ctl->wait_ms
	        ? (long long)mono_ms() + (long long)ctl->wait_ms
	        : 0,
	    .timeout_ms = health_timeout(ctl),
	    .out = stderr,
	    .tty = isatty(STDERR_FILENO) == 1,
	};
	return health_wait(c, ctl->nodes, ctl->nnodes, &w, last);
}

static int
cmd_status(struct ctl *ctl, struct dyn_client *c)
{
	struct health h;
	int ex = EXIT_OK;
	int rv;

	memset(&h, 0, sizeof(h));
	if (ctl->given & CO_WAIT) {
		rv = wait_for(ctl, c, HEALTH_GOAL_HEALTHY, NULL, &h);
		if (rv != 0 && rv != DYN_ETIMEDOUT) {
			fail("status --wait", rv);
			return EXIT_ERR;
		}
		if (h.n == 0)
			rv = DYN_EUNREACH; /* nobody ever answered */
	} else {
		rv = health_gather(c, ctl->nodes, ctl->nnodes,
		    health_timeout(ctl), &h);
	}
	if (!ctl->json) {
		if (rv != 0 && h.n == 0) {
			fail("status: no --node answers", rv);
			return EXIT_ERR;
		}
		health_print_table(&h, stdout);
		ex = h.healthy ? EXIT_OK : EXIT_DEGRADED;
	} else {
		/* The machine form: one object per --node, as it always was,
		 * each with the verdict too. */
		for (size_t i = 0; i < ctl->nnodes; i++) {
			struct dyn_status st;
			int srv = dyn_status(c, i, &st);
			print_status_json(ctl->nodes[i], &st, srv,
			    h.n ? &h : NULL);
			if (srv != 0)
				ex = EXIT_ERR;
			dyn_status_fini(&st);
		}
		if (ex == EXIT_OK && h.n > 0 && !h.healthy)
			ex = EXIT_DEGRADED;
	}
	health_fini(&h);
	if (flush_stdout() != EXIT_OK)
		ex = EXIT_ERR;
	return ex;
}

static int
cmd_keygen(struct ctl *ctl, struct dyn_client *c)
{
	struct auth_key k;
	const char *path = ctl->args[1];
	char what[300];
	int rv;

	(void)c;
	rv = auth_key_generate(&k);
	if (rv == 0)
		rv = auth_key_write(path, &k);
	OPENSSL_cleanse(&k, sizeof(k));
	if (rv != 0) {
		snprintf(what, sizeof(what), "keygen %s", path);
		fail(what, rv);
		return EXIT_ERR;
	}
	return EXIT_OK;
}

/* ca init DIR | ca issue DIR NAME --role ROLE [--host H]... [-o FILE] |
 * ca rotate DIR STEP */
static int
cmd_ca(struct ctl *ctl, struct dyn_client *c)
{
	const char *sub = ctl->args[1], *dir = ctl->args[2];
	char err[512], path[PATH_MAX];
	(void)c;
	if (strcmp(sub, "init") == 0) {
		if (ctl->nargs != 3 || ctl->given != 0) {
			usage_error("ca init takes DIR only");
			return EXIT_ERR;
		}
		if (ca_init(dir, err, sizeof(err)) != 0) {
			fprintf(stderr, "dynamoctl: ca init: %s\n", err);
			return EXIT_ERR;
		}
		printf("%s/%s: the CA's certificate\n%s/%s: its key (keep it "
		    "offline)\n%s/%s: the cluster's master key\n", dir,
		    CA_CERT_FILE, dir, CA_KEY_FILE, dir, CA_MASTER_FILE);
		return flush_stdout();
	}
	if (strcmp(sub, "rotate") == 0) {
		static const char *const steps[] = {"begin", "switch", "finish"};
		const char *st = ctl->nargs == 4 ? ctl->args[3] : "";
		int k = 0;
		while (k < 3 && strcmp(st, steps[k]) != 0)
			k++;
		if (k == 3 || ctl->given != 0) {
			usage_error("ca rotate DIR begin|switch|finish");
			return EXIT_ERR;
		}
		if (ca_rotate(dir, (enum ca_rotate_step)k, err, sizeof(err)) !=
		    0) {
			fprintf(stderr, "dynamoctl: ca rotate: %s\n", err);
			return EXIT_ERR;
		}
		printf("%s: rotation %s: issue every node's and client's "
		    "credential again and restart them one by one%s\n", dir,
		    steps[k], k == 2 ? " (the old CA and key are gone)" : "");
		return flush_stdout();
	}
	if (strcmp(sub, "issue") != 0) {
		usage_error("ca: want init, issue or rotate, not '%s'", sub);
		return EXIT_ERR;
	}
	struct ca_issue_opts o = {
		.hosts = ctl->hosts,
		.nhosts = ctl->nhosts,
	};
	if (ctl->nargs != 4 || !ctl->role ||
	    auth_role_parse(ctl->role, &o.role) != 0) {
		usage_error("ca issue DIR NAME --role node|client|admin");
		return EXIT_ERR;
	}
	o.name = ctl->args[3];
	const char *out = ctl->out;
	if (!out) {
		snprintf(path, sizeof(path), "%s/%s.pem", dir, o.name);
		out = path;
	}
	if (ca_issue(dir, &o, out, err, sizeof(err)) != 0) {
		fprintf(stderr, "dynamoctl: ca issue: %s\n", err);
		return EXIT_ERR;
	}
	printf("%s: credential of %s %s\n", out, auth_role_name(o.role),
	    o.name);
	return flush_stdout();
}

static void
print_ring_json(const struct ring *r, const uint32_t nrw[3])
{
	uint32_t cnt = ring_member_count(r), q = ring_q(r);
	uint32_t *own = mem_calloc(cnt, sizeof(*own));
	uint32_t *nxt = mem_calloc(cnt, sizeof(*nxt));
	if (!own || !nxt)
		goto out;
	ring_owned_counts(r, RING_CUR, own);
	ring_owned_counts(r, RING_NEXT, nxt);
	printf("{\"epoch\": %" PRIu64 ", \"partitions\": %u, \"n\": %u, "
	       "\"r\": %u, \"w\": %u, \"transfer_pending\": %s, "
	       "\"members\": [",
	       ring_epoch(r), q, nrw[0], nrw[1], nrw[2],
	       ring_has_next(r) ? "true" : "false");
	for (uint32_t i = 0; i < cnt; i++) {
		const char *nm = ring_member_name(r, i);
		const char *ad = ring_member_addr(r, i);
		fputs(i ? ", {\"name\": " : "{\"name\": ", stdout);
		cli_json_str(stdout, nm, strlen(nm));
		fputs(", \"addr\": ", stdout);
		cli_json_str(stdout, ad, strlen(ad));
		printf(", \"partitions\": %u, \"next_partitions\": %u}",
		       own[i], nxt[i]);
	}
	fputs("], \"preflists\": [", stdout);
	for (uint32_t p = 0; p < q; p++) {
		uint32_t idx[16], n = 0;
		ring_preflist(r, RING_CUR, p, nrw[0] < 16 ? nrw[0] : 16, idx,
		              &n);
		fputs(p ? ", [" : "[", stdout);
		for (uint32_t k = 0; k < n; k++) {
			const char *nm = ring_member_name(r, idx[k]);
			fputs(k ? ", " : "", stdout);
			cli_json_str(stdout, nm, strlen(nm));
		}
		fputs("]", stdout);
	}
	fputs("]}\n", stdout);
out:
	mem_free(own);
	mem_free(nxt);
}

static void
print_ring_text(const struct ring *r, const uint32_t nrw[3])
{
	uint32_t cnt = ring_member_count(r), q = ring_q(r);
	uint32_t *own = mem_calloc(cnt, sizeof(*own));
	if (!own)
		return;
	ring_owned_counts(r, RING_CUR, own);
	printf("epoch %" PRIu64 ", %u partitions, N=%u R=%u W=%u%s\n",
	       ring_epoch(r), q, nrw[0], nrw[1], nrw[2],
	       ring_has_next(r) ? " (transfer pending)" : "");
	for (uint32_t i = 0; i < cnt; i++)
		printf("  %-16s %-28s %u partitions\n", ring_member_name(r, i),
		       ring_member_addr(r, i), own[i]);
	printf("partition  preference list\n");
	for (uint32_t p = 0; p < q; p++) {
		uint32_t idx[16], n = 0;
		ring_preflist(r, RING_CUR, p, nrw[0] < 16 ? nrw[0] : 16, idx,
		              &n);
		printf("  %-8u", p);
		for (uint32_t k = 0; k < n; k++)
			printf(" %s", ring_member_name(r, idx[k]));
		putchar('\n');
	}
	mem_free(own);
}

static int
cmd_ring(struct ctl *ctl, struct dyn_client *c)
{
	struct ring *r = NULL;
	uint32_t nrw[3];
	int rv = dyn_ring(c, 0, &r, nrw);
	if (rv != 0) {
		fail("ring", rv);
		return EXIT_ERR;
	}
	if (ctl->json)
		print_ring_json(r, nrw);
	else
		print_ring_text(r, nrw);
	ring_free(r);
	return flush_stdout();
}

/* After a leave or a removal was accepted: wait unless --no-wait. */
static int
follow(const struct ctl *ctl, struct dyn_client *c, enum health_goal goal,
    const char *name)
{
	if (ctl->given & CO_NO_WAIT)
		return EXIT_OK;
	struct health h;
	int rv = wait_for(ctl, c, goal, name, &h);
	health_fini(&h);
	if (rv == DYN_ETIMEDOUT) {
		fprintf(stderr, "dynamoctl: %s is not done yet; it goes on "
		                "(dynamoctl status shows it)\n", name);
		return EXIT_DEGRADED;
	}
	if (rv != 0) {
		fail("wait", rv);
		return EXIT_ERR;
	}
	return EXIT_OK;
}

static int
cmd_leave(struct ctl *ctl, struct dyn_client *c)
{
	struct dyn_status st;
	int rv = dyn_status(c, 0, &st); /* its name, to follow the leave */
	char name[sizeof(st.name)];
	snprintf(name, sizeof(name), "%.*s",
	    (int)strnlen(st.name, sizeof(st.name)), st.name);
	dyn_status_fini(&st);
	if (rv == 0)
		rv = dyn_leave(c, 0);
	if (rv == -EINVAL) {
		fprintf(stderr, "dynamoctl: leave: %s is the only member that is "
		                "up: its data would have nowhere to go (start "
		                "another node first, or just stop this one)\n",
		    ctl->nodes[0]);
		return EXIT_ERR;
	}
	if (rv != 0) {
		fail("leave", rv);
		return EXIT_ERR;
	}
	fprintf(stderr, "%s (%s) is leaving: it hands its partitions over, "
	                "then exits\n", name, ctl->nodes[0]);
	return follow(ctl, c, HEALTH_GOAL_LEFT, name);
}

static int
cmd_remove(struct ctl *ctl, struct dyn_client *c)
{
	int rv = dyn_remove(c, 0, ctl->args[1]);
	if (rv == -EBUSY) {
		fprintf(stderr, "dynamoctl: remove: %s still reaches %s: make "
		                "it leave instead (dynamoctl --node ITS-ADDRESS "
		                "leave)\n",
		    ctl->nodes[0], ctl->args[1]);
		return EXIT_ERR;
	}
	if (rv == -ENOENT || rv == -EINVAL) {
		fprintf(stderr, "dynamoctl: remove: %s\n",
		    rv == -ENOENT ? "no member by that name"
		                  : "a node cannot remove itself (use leave)");
		return EXIT_ERR;
	}
	if (rv != 0) {
		fail("remove", rv);
		return EXIT_ERR;
	}
	fprintf(stderr, "%s is removed: the others take over its "
	                "partitions\n", ctl->args[1]);
	return follow(ctl, c, HEALTH_GOAL_REMOVED, ctl->args[1]);
}

/* A node's compaction can take a while: the copy holds the data in use. */
#define COMPACT_TIMEOUT_MS (10 * 60 * 1000)

static int
cmd_compact(struct ctl *ctl, struct dyn_client *c)
{
	int ex = EXIT_OK;

	for (size_t i = 0; i < ctl->nnodes; i++) {
		struct dyn_compaction r;
		const char *node = ctl->nodes[i];
		int rv = dyn_compact(c, i, &r);

		if (ctl->json) {
			fputs("{\"node\": ", stdout);
			cli_json_str(stdout, node, strlen(node));
			if (rv == 0) {
				printf(", \"before_bytes\": %" PRIu64
				       ", \"after_bytes\": %" PRIu64
				       ", \"ms\": %" PRIu64 "}\n",
				       r.before, r.after, r.ms);
			} else {
				const char *m = dyn_strerror(rv);
				fputs(", \"error\": ", stdout);
				cli_json_str(stdout, m, strlen(m));
				fputs("}\n", stdout);
			}
		} else if (rv == 0) {
			char b[64], a[64];
			health_fmt_bytes(r.before, b, sizeof(b));
			health_fmt_bytes(r.after, a, sizeof(a));
			printf("%s: data file %s -> %s in %" PRIu64 " ms\n",
			       node, b, a, r.ms);
		} else if (rv == -ENOSPC) {
			fprintf(stderr, "dynamoctl: compact %s: not enough "
			                "free disk space for the copy (the "
			                "node's log says how much it needs)\n",
			        node);
		} else {
			char what[300];
			snprintf(what, sizeof(what), "compact %s", node);
			fail(what, rv);
		}
		if (rv != 0)
			ex = EXIT_ERR;
	}
	if (flush_stdout() != EXIT_OK)
		ex = EXIT_ERR;
	return ex;
}

static int
cmd_fault(struct ctl *ctl, struct dyn_client *c)
{
	const char *what = ctl->args[1];
	int rv;
	if (strcmp(what, "heal") == 0 && ctl->nargs == 2) {
		rv = dyn_fault(c, 0, NULL, 0);
	} else if (strcmp(what, "drop") == 0 && ctl->nargs > 2) {
		rv = dyn_fault(c, 0, (const char *const *)&ctl->args[2],
		               ctl->nargs - 2);
	} else {
		fprintf(stderr, "dynamoctl: fault drop NODE... | fault heal\n");
		return EXIT_ERR;
	}
	if (rv != 0) {
		fail("fault", rv);
		return EXIT_ERR;
	}
	return EXIT_OK;
}

static const struct cmd cmds[] = {
    {"get", 1, 1, CO_JSON | CO_R | CO_LOCAL | CO_PART, true, cmd_get},
    {"put", 1, 2, CO_CONTEXT | CO_W | CO_PART, true, cmd_put},
    {"delete", 1, 1, CO_CONTEXT | CO_W | CO_PART, true, cmd_delete},
    {"list", 1, 1, CO_R | CO_LOCAL, true, cmd_list},
    {"status", 0, 0, CO_JSON | CO_WAIT, true, cmd_status},
    {"ring", 0, 0, CO_JSON, true, cmd_ring},
    {"leave", 0, 0, CO_WAIT | CO_NO_WAIT, true, cmd_leave},
    {"remove", 1, 1, CO_WAIT | CO_NO_WAIT, true, cmd_remove},
    {"compact", 0, 0, CO_JSON, true, cmd_compact},
    {"fault", 1, 17, 0, true, cmd_fault},
    {"keygen", 1, 1, 0, false, cmd_keygen},
    {"ca", 2, 3, CO_ROLE | CO_HOST | CO_OUT, false, cmd_ca},
};

static const char *
opt_name(unsigned co)
{
	switch (co) {
	case CO_JSON:
		return "--json";
	case CO_R:
		return "--r";
	case CO_LOCAL:
		return "--local";
	case CO_CONTEXT:
		return "--context";
	case CO_WAIT:
		return "--wait";
	case CO_NO_WAIT:
		return "--no-wait";
	case CO_ROLE:
		return "--role";
	case CO_HOST:
		return "--host";
	case CO_OUT:
		return "--output";
	case CO_PART:
		return "--part";
	default:
		return "--w";
	}
}

static int
parse_quorum(const char *name, const char *s, uint32_t *out)
{
	uint64_t v;

	if (cli_parse_u64(s, 1, UINT32_MAX, &v) != 0) {
		fprintf(stderr,
		        "dynamoctl: %s: want a whole number >= 1, "
		        "not '%s'\n",
		        name, s);
		return -EINVAL;
	}
	*out = (uint32_t)v;
	return 0;
}

/* 0 and ctl filled in, 1 for --help, or -EINVAL after a usage message. */
static int
parse_args(int argc, char **argv, struct ctl *ctl)
{
	static const struct option longopts[] = {
	    {"node", required_argument, NULL, 'n'},
	    {"cluster-key", required_argument, NULL, 'k'},
	    {"cred", required_argument, NULL, OPT_CRED},
	    {"role", required_argument, NULL, OPT_ROLE},
	    {"host", required_argument, NULL, OPT_HOST},
	    {"output", required_argument, NULL, 'o'},
	    {"timeout", required_argument, NULL, 't'},
	    {"json", no_argument, NULL, 'j'},
	    {"context", required_argument, NULL, 'c'},
	    {"r", required_argument, NULL, OPT_R},
	    {"w", required_argument, NULL, OPT_W},
	    {"local", no_argument, NULL, OPT_LOCAL},
	    {"part", required_argument, NULL, OPT_PART},
	    {"wait", optional_argument, NULL, OPT_WAIT},
	    {"no-wait", no_argument, NULL, OPT_NO_WAIT},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	uint64_t ms;
	int opt;

	ctl->nodes = mem_calloc((size_t)argc, sizeof(*ctl->nodes));
	ctl->hosts = mem_calloc((size_t)argc, sizeof(*ctl->hosts));
	if (ctl->nodes == NULL || ctl->hosts == NULL) {
		fail("start", -ENOMEM);
		return -ENOMEM;
	}
	/* GNU getopt permutes, so options may follow the command; "--"
	 * stops it for keys that start with '-'. */
	while ((opt = getopt_long(argc, argv, "n:k:t:jc:o:h", longopts, NULL)) !=
	       -1) {
		switch (opt) {
		case 'n':
			ctl->nodes[ctl->nnodes++] = optarg;
			break;
		case 'k':
			ctl->key_file = optarg;
			break;
		case OPT_CRED:
			ctl->cred_file = optarg;
			break;
		case OPT_ROLE:
			ctl->role = optarg;
			ctl->given |= CO_ROLE;
			break;
		case OPT_HOST:
			ctl->hosts[ctl->nhosts++] = optarg;
			ctl->given |= CO_HOST;
			break;
		case 'o':
			ctl->out = optarg;
			ctl->given |= CO_OUT;
			break;
		case 't':
			if (cli_parse_duration_ms(optarg, 1, &ms) != 0 ||
			    ms == 0 || ms > INT_MAX) {
				usage_error("--timeout: bad value '%s'",
				            optarg);
				return -EINVAL;
			}
			ctl->timeout_ms = (int)ms;
			break;
		case 'j':
			ctl->json = true;
			ctl->given |= CO_JSON;
			break;
		case 'c':
			ctl->context = optarg;
			ctl->given |= CO_CONTEXT;
			break;
		case OPT_R:
			if (parse_quorum("--r", optarg, &ctl->r) != 0)
				return -EINVAL;
			ctl->given |= CO_R;
			break;
		case OPT_W:
			if (parse_quorum("--w", optarg, &ctl->w) != 0)
				return -EINVAL;
			ctl->given |= CO_W;
			break;
		case OPT_LOCAL:
			ctl->local = true;
			ctl->given |= CO_LOCAL;
			break;
		case OPT_PART:
			ctl->part = optarg;
			ctl->given |= CO_PART;
			break;
		case OPT_WAIT:
			if (optarg && (cli_parse_duration_ms(optarg, 1000,
			                   &ctl->wait_ms) != 0 ||
			                  ctl->wait_ms == 0)) {
				usage_error("--wait: bad duration '%s'", optarg);
				return -EINVAL;
			}
			ctl->given |= CO_WAIT;
			break;
		case OPT_NO_WAIT:
			ctl->given |= CO_NO_WAIT;
			break;
		case 'h':
			return 1;
		default:
			/* getopt has said what was wrong. */
			usage_short();
			return -EINVAL;
		}
	}
	ctl->args = argv + optind;
	ctl->nargs = argc - optind;
	return 0;
}

static int
connect_cluster(const struct ctl *ctl, struct dyn_client **c)
{
	struct dyn_client_opts o;
	struct cred cred;
	char err[600];
	int rv;

	memset(&o, 0, sizeof(o));
	if (ctl->nnodes == 0) {
		usage_error("no --node given");
		return -EINVAL;
	}
	bool have_cred;
	rv = cli_auth_load(ctl->key_file, ctl->cred_file, AUTH_ADMIN, &o.keys,
	    &cred, &have_cred, err, sizeof(err));
	if (rv == -ENOKEY || rv == -EINVAL) {
		usage_error("%s", err);
		goto out;
	}
	if (rv != 0) {
		fprintf(stderr, "dynamoctl: %s\n", err);
		goto out;
	}
	if (have_cred)
		o.cred = &cred;
	o.nodes = ctl->nodes;
	o.nnodes = ctl->nnodes;
	o.timeout_ms = ctl->timeout_ms;
	rv = dyn_client_new(&o, c);
	if (rv != 0)
		fail("client", rv);
out:
	if (o.cred)
		cred_fini(&cred);
	OPENSSL_cleanse(&o.keys, sizeof(o.keys));
	return rv;
}

int
main(int argc, char **argv)
{
	struct ctl ctl;
	struct dyn_client *c = NULL;
	const struct cmd *cmd = NULL;
	int ex = EXIT_ERR;

	memset(&ctl, 0, sizeof(ctl));
	int rv = parse_args(argc, argv, &ctl);
	if (rv == 0 && ctl.nargs == 1 && strcmp(ctl.args[0], "help") == 0)
		rv = 1;
	if (rv == 1) {
		fputs(usage_text, stdout);
		fputs(help_text, stdout);
		fputs(help_admin_text, stdout);
		fputs(help_ca_text, stdout);
		fputs(help_opts_text, stdout);
		ex = flush_stdout();
		goto out;
	}
	if (rv != 0)
		goto out;
	if (ctl.nargs == 0) {
		usage_error("no command given");
		goto out;
	}
	for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
		if (strcmp(ctl.args[0], cmds[i].name) == 0)
			cmd = &cmds[i];
	}
	if (cmd == NULL) {
		usage_error("unknown command '%s'", ctl.args[0]);
		goto out;
	}
	if (ctl.nargs - 1 < cmd->min_args || ctl.nargs - 1 > cmd->max_args) {
		usage_error("wrong number of arguments for '%s'", cmd->name);
		goto out;
	}
	unsigned bad = ctl.given & ~cmd->opts;
	if (bad != 0) {
		usage_error("%s does not apply to '%s'", opt_name(bad & -bad),
		            cmd->name);
		goto out;
	}
	if ((ctl.given & CO_NO_WAIT) && (ctl.given & CO_WAIT)) {
		usage_error("--wait and --no-wait do not go together");
		goto out;
	}
	if (cmd->run == cmd_compact && ctl.timeout_ms == 0)
		ctl.timeout_ms = COMPACT_TIMEOUT_MS;
	if (cmd->needs_client && connect_cluster(&ctl, &c) != 0)
		goto out;
	ex = cmd->run(&ctl, c);
out:
	dyn_client_free(c);
	mem_free(ctl.nodes);
	mem_free(ctl.hosts);
	return ex;
}
