/*
 * harness — real dynamod processes for integration tests.
 *
 * A harness owns a temporary directory (key file, one data directory and
 * one log per node) and the node processes it started.  Nodes listen on
 * 127.0.0.1 port 0 the first time, so two test runs never collide; the
 * port the kernel gave is read from the node's ready file and reused on
 * restart.  Everything is undone at exit — also when a CHECK fails — by an
 * atexit hook: children killed by PID and reaped, the directory removed.
 */
#ifndef DYN_HARNESS_H
#define DYN_HARNESS_H

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/types.h>

#include <nng/nng.h>

#include "auth.h"
#include "client.h"
#include "cred.h"

#define HARNESS_MAX_NODES 16

struct hnode {
	char name[32];
	char dir[512];
	char log[512];
	char ready[512];
	char addr[128]; /* tcp://127.0.0.1:PORT once started */
	pid_t pid;      /* 0 when not running */
};

struct harness {
	char tmp[256];
	char keyfile[512];
	struct auth_key key;   /* the master key, in keyfile */
	struct auth_keys keys; /* its role keys; signs as admin */
	/* harness_init_tls: a CA in tmp/ca, a node credential per node
	 * (tmp/ca/n<i>.pem, --cred), and the admin credential "tester"
	 * (credfile, loaded in cred) for the harness's clients and
	 * dynamoctl.  Off: plain tcp. */
	bool tls;
	char cadir[512];
	char credfile[512];
	struct cred cred;
	char phase[16]; /* harness_cred_phase: credentials' file suffix */
	const char *dynamod;
	struct hnode nodes[HARNESS_MAX_NODES];
	int n;
};

/* Set up the directory and key; registers the exit-time cleanup. */
void harness_init(struct harness *h);
/* The same for a TLS cluster: the cluster key is the CA's master key
 * (key, keyfile), every node started gets a credential of its own
 * (--cred instead of --cluster-key), every client of the harness (keys)
 * and harness_ctl's dynamoctl the admin credential. */
void harness_init_tls(struct harness *h);
/* A credential of role from the harness's CA (tls only): its path, in
 * tmp/ca/NAME.pem (issued on first use). */
const char *harness_issue(struct harness *h, const char *name,
    enum auth_role role, char *path, size_t cap);
/* Credentials from now on are issued anew (files NAME<suffix>.pem, after
 * a `ca rotate` step): the admin credential at once, reloaded for the
 * harness's clients and dynamoctl; a node's when it is next started. */
void harness_cred_phase(struct harness *h, const char *suffix);
/* Add node i (name n<i>) and start it with extra dynamod args (NULL-ended
 * list, may be NULL); waits until it serves (deadline 20 s). */
void harness_start(struct harness *h, int i, const char *const *extra);
/* Start node i joined to the cluster through node `seed` (its address as
 * --seed), with the test gossip interval and extra args. */
void harness_start_joined(struct harness *h, int i, int seed,
    const char *const *extra);
/* Start nodes 0..n-1 as one cluster (node 0 first, the others joined
 * through it) and wait until all n own partitions (deadline 60 s). */
void harness_start_cluster(struct harness *h, int n);
/* Poll every running node's ring until all hold the same stable ring
 * (no transfer pending) in which exactly `owners` members own partitions;
 * returns the milliseconds it took, or exits the test at the deadline. */
long long harness_wait_ring(struct harness *h, int owners, int deadline_ms);
/* The same check once: true when every running node holds a stable ring
 * with exactly `owners` owners at one epoch (at *epoch, when it is not 0;
 * *epoch is set to it). */
bool harness_rings_agree(struct harness *h, int owners, uint64_t *epoch);
/* A client bound to node i alone that never routes by the ring (the node
 * coordinates or forwards). */
struct dyn_client *harness_client_direct(struct harness *h, int i);

/* Send sig to node i and reap it (SIGKILL: immediately; SIGTERM: waits for
 * a clean exit and returns its exit status). */
int harness_stop(struct harness *h, int i, int sig);
/* A client connected to the given nodes (-1 ends the list). */
struct dyn_client *harness_client(struct harness *h, int timeout_ms, ...);
/* Remove the data directory of node i (stopped). */
void harness_wipe(struct harness *h, int i);
/* Records in node i's store (dyn_status keys); UINT64_MAX when it does
 * not answer. */
uint64_t harness_keys(struct harness *h, int i);
/* The counter `name` of node i's stats text ("name=value" lines of
 * dyn_status); the test fails when the node does not answer or has none. */
uint64_t harness_stat(struct harness *h, int i, const char *name);
/* The members replicating key under ring r's current table (N = nrep):
 * their number, their indices in idx (room for nrep). */
struct ring;
uint32_t harness_replicas(const struct ring *r, uint32_t nrep,
    const char *key, uint32_t *idx);
/* A blind put of the string val; the test fails unless it is acked. */
void harness_put(struct dyn_client *c, const char *key, const char *val);
/* Read key and delete every version read (it must exist). */
void harness_delete_seen(struct dyn_client *c, const char *key);
/* Do all N = 3 owners of key (by any's ring) hold the same versions, each
 * read alone?  False also when one does not answer. */
bool harness_converged(struct harness *h, struct dyn_client *any,
    const char *key);
/* Run the dynamoctl of $DYNAMOCTL with --node (node i's address) and
 * --cluster-key, then args (NULL-ended); its stdout and stderr, merged,
 * go to out (cap bytes, NUL-terminated, the rest dropped).  Its exit
 * status, or -1 when it did not exit normally. */
int harness_ctl(struct harness *h, int i, char *out, size_t cap,
    const char *const *args);
/* Does a line of node i's log hold text? */
bool harness_log_has(struct harness *h, int i, const char *text);
/* Print the tail of every node's log (on failure). */
void harness_dump_logs(struct harness *h);
/* Monotonic milliseconds. */
long long harness_now_ms(void);
/* Send bytes as they are on a req socket (dialled to a node: raw bytes,
 * as a man in the middle would send them); the reply, or NULL when none
 * came within wait_ms.  The caller frees it (nng_msg_free). */
nng_msg *harness_send_raw(nng_socket s, const void *p, size_t len,
    int wait_ms);
/* Sleep between polls (never a test's only wait: poll with a deadline). */
void harness_pause_ms(int ms);

#define CHECK(cond)                                                         \
	do {                                                                \
		if (!(cond)) {                                              \
			fprintf(stderr, "%s:%d: CHECK failed: %s\n",        \
			    __FILE__, __LINE__, #cond);                     \
			exit(1);                                            \
		}                                                           \
	} while (0)

#define CHECK_RC(expr, want)                                                \
	do {                                                                \
		int rc_ = (expr);                                           \
		if (rc_ != (want)) {                                        \
			fprintf(stderr, "%s:%d: %s = %d (%s), wanted %d\n", \
			    __FILE__, __LINE__, #expr, rc_,                 \
			    dyn_strerror(rc_), (want));                     \
			exit(1);                                            \
		}                                                           \
	} while (0)

#endif
