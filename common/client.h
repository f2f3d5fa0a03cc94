/*
 * client — the library every front end uses to talk to the cluster
 * (dynamoctl, dynamo-bench, the dynamofs mount).
 *
 * A client knows one or more node addresses and keeps one nng req socket
 * per node; every call opens its own nng context, so one client may be used
 * from many threads at once.  A call that gets no answer from a node within
 * the timeout moves on to the next node, until all were tried.  Values and
 * contexts returned belong to the caller (free with the *_fini calls).
 */
#ifndef DYN_CLIENT_H
#define DYN_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "auth.h"
#include "cred.h"
#include "vset.h"

struct dyn_client;

struct dyn_client_opts {
	const char *const *nodes; /* tcp://HOST:PORT addresses */
	size_t nnodes;
	struct auth_keys keys;
	const struct cred *cred; /* dial with mutual TLS with it (the caller
	                            keeps it; read in dyn_client_new only);
	                            NULL: plain tcp */
	int timeout_ms; /* per attempt; 0: 5000 */
	bool no_routing; /* send to the listed nodes only, never by the ring
	                    (the node forwards); for comparisons */
};

/* Per-request overrides; NULL or zeros mean the cluster's defaults. */
struct dyn_req_opts {
	uint32_t r;
	uint32_t w;
	uint32_t flags; /* WIRE_F_LOCAL for get */
};

/* An opaque context as the node issued it. */
struct dyn_ctx {
	uint8_t *p;
	size_t len;
};

struct dyn_get_result {
	struct vset versions; /* every version, tombstones included */
	uint8_t *ctx;         /* opaque context for the next put: covers all */
	size_t ctx_len;
	struct dyn_ctx *vctx; /* one per version (same order): that version's
	                         past plus its dot, exactly: it covers no
	                         sibling, not even an earlier one of the same
	                         coordinator */
};

int dyn_client_new(const struct dyn_client_opts *o, struct dyn_client **out);
void dyn_client_free(struct dyn_client *c);

/* 0 when at least one live (non-tombstone) version exists, -ENOENT when
 * none does (out still holds the context and any tombstones).  out must be
 * freed with dyn_get_result_fini in both cases. */
int dyn_get(struct dyn_client *c, const void *key, size_t klen,
    const struct dyn_req_opts *o, struct dyn_get_result *out);
void dyn_get_result_fini(struct dyn_get_result *r);

/* Write value under the context from a get (ctx NULL/0: blind put).  On
 * success, *new_ctx (if not NULL) gets the context of the new version,
 * mem_alloc'd, for a following put without a get. */
int dyn_put(struct dyn_client *c, const void *key, size_t klen,
    const uint8_t *ctx, size_t ctx_len, const void *value, size_t len,
    const struct dyn_req_opts *o, uint8_t **new_ctx, size_t *new_ctx_len);
/* A put whose context is the union of several contexts (each as a node
 * issued it, e.g. some of a get's vctx): the new version supersedes exactly
 * the versions they cover.  A version's context (vctx) names that version
 * and what its writer had read, never a sibling (common/vclock.h), so a put
 * under one vctx supersedes that version alone. */
int dyn_put_ctxs(struct dyn_client *c, const void *key, size_t klen,
    const struct dyn_ctx *ctxs, size_t nctx, const void *value, size_t len,
    const struct dyn_req_opts *o, uint8_t **new_ctx, size_t *new_ctx_len);
/* Blobs (common/blob.h): content-addressed, immutable values.
 * dyn_blob_put stores data as a blob of kind BLOB_DATA or BLOB_REFS and
 * gives its key (kind || name, the name computed here); putting the same
 * bytes again changes nothing stored.  dyn_blob_get copies the blob's
 * bytes into buf (cap bytes; DYN_ETOOBIG when it is bigger), checking them
 * against the name (DYN_EBADMSG when they do not match); -ENOENT when no
 * replica has it. */
int dyn_blob_put(struct dyn_client *c, uint8_t kind, const void *data,
    size_t len, const struct dyn_req_opts *o, uint8_t key[33]);
int dyn_blob_get(struct dyn_client *c, const uint8_t key[33], void *buf,
    size_t cap, size_t *len);
/* The same without a copy: out->data[0..out->len) points into the reply as
 * received, valid until dyn_bytes_release (which may come from any
 * thread).  On error out is empty. */
struct dyn_bytes {
	const uint8_t *data;
	size_t len;
	void *msg; /* private: the reply holding the bytes */
};
int dyn_blob_fetch(struct dyn_client *c, const uint8_t key[33], size_t cap,
    struct dyn_bytes *out);
void dyn_bytes_release(struct dyn_bytes *b);
/* The key dyn_blob_put would give data, without storing anything. */
void dyn_blob_key_of(struct dyn_client *c, uint8_t kind, const void *data,
    size_t len, uint8_t key[33]);

/*
 * The range read: the keys of one placement part (common/keypos.h: keys
 * 0xFF | u16 L | part | rest) in key order, a page at a time, with a get's
 * R-quorum merge and read repair (node/coord.h).  after (alen bytes; NULL:
 * from the first) is the cursor: the page holds keys after it, at most
 * limit of them (0: the node's default, 100; at most 1000) and about
 * limit_bytes of keys and values (0: 1 MiB; at most 4 MiB), live keys
 * only, each with its contexts as a get gives them.  out->more says there may be keys after out->next, the cursor for
 * the next page; a page may be short, or empty, and still have more.
 * -EINVAL for a cursor that is not a key of the part, DYN_ETOOBIG for a
 * part over KEYPOS_PLACED_MAX - 3 bytes or a limit over its maximum.
 * out (zeroed here) is freed with dyn_range_page_fini whatever the result.
 */
struct dyn_range_entry {
	uint8_t *key; /* the whole key (header, part and rest) */
	size_t klen;
	struct vset versions; /* the merged versions, tombstones included */
	struct dyn_ctx ctx;   /* covers every version, as a get's */
	struct dyn_ctx *vctx; /* one per version, as a get's */
};
struct dyn_range_page {
	uint32_t n;
	struct dyn_range_entry *e;
	bool more;
	uint8_t *next; /* the cursor of the next page (more) */
	size_t next_len;
};
int dyn_range(struct dyn_client *c, const void *part, size_t plen,
    const void *after, size_t alen, uint32_t limit, uint32_t limit_bytes,
    const struct dyn_req_opts *o, struct dyn_range_page *out);
void dyn_range_page_fini(struct dyn_range_page *p);

/* A put of a tombstone. */
int dyn_delete(struct dyn_client *c, const void *key, size_t klen,
    const uint8_t *ctx, size_t ctx_len, const struct dyn_req_opts *o);
int dyn_delete_ctxs(struct dyn_client *c, const void *key, size_t klen,
    const struct dyn_ctx *ctxs, size_t nctx, const struct dyn_req_opts *o);

struct dyn_status {
	char name[64];
	char addr[128];
	uint64_t uptime_s;
	uint64_t keys;
	uint64_t db_bytes;
	uint64_t actor;
	char *stats; /* "name=value\n" lines, mem_alloc'd, may be NULL */
	char *json;  /* members, ring and transfers as JSON, mem_alloc'd,
	                may be NULL */
};

/* The cluster's ring as the node at index i of the client's list sees it
 * (*out is the caller's: ring_free), with the cluster's N, R, W. */
struct ring;
int dyn_ring(struct dyn_client *c, size_t i, struct ring **out,
    uint32_t nrw[3]);
/* Ask the node at index i to leave the cluster: it hands its partitions
 * over, then exits. */
int dyn_leave(struct dyn_client *c, size_t i);
/* Ask the node at index i to remove member `name`, which is down for good
 * (a dead disk, a lost host), from the cluster: the others take its
 * partitions from the remaining replicas and redirect the hints held for
 * it.  -EBUSY while that node reaches it (make it leave instead), -ENOENT
 * for a name it does not know, -EINVAL for itself. */
int dyn_remove(struct dyn_client *c, size_t i, const char *name);
/* Ask the node at index i to compact its data file now (LMDB reuses the
 * pages deletes free but never gives them back to the disk) and wait for
 * it: out gets the file's bytes before and after and the milliseconds it
 * took (the node's writes waited that long, its reads did not).  The
 * client's timeout must cover the copy.  -ENOSPC when the node's disk has
 * no room for the copy (nothing done). */
struct dyn_compaction {
	uint64_t before;
	uint64_t after;
	uint64_t ms;
};
int dyn_compact(struct dyn_client *c, size_t i, struct dyn_compaction *out);
/* The preference list of key as the client routes it (the node addresses
 * in order, copied into addrs[0..*n), at most max).  Uses the cached ring;
 * -ENOENT when the client has none. */
int dyn_preflist(struct dyn_client *c, const void *key, size_t klen,
    char (*addrs)[128], size_t max, size_t *n);

/* Fault injection, for tests: cut the node at index i off from the named
 * nodes, both ways (n names), or with n == 0 heal every cut. */
int dyn_fault(struct dyn_client *c, size_t i, const char *const *names,
    size_t n);

/* An echo through the node at index i: data (len bytes, may be 0) comes
 * back as sent.  The node does nothing but check the message: the
 * transport floor dynamo-bench --echo measures.  DYN_EBADMSG when the
 * answer differs. */
int dyn_echo(struct dyn_client *c, size_t i, const void *data, size_t len);

/* Status of the node at index i of the client's list. */
int dyn_status(struct dyn_client *c, size_t i, struct dyn_status *out);
/* Status of the nodes at addrs[0..n) (any members, not only the client's
 * list), asked in parallel: each answers within timeout_ms (0: the
 * client's timeout) or rc[i] is DYN_ETIMEDOUT, so the call takes at most
 * that long.  rc[i] is node i's result, out[i] its status (empty unless
 * rc[i] is 0; dyn_status_fini each whatever rc[i]).  Returns how many
 * answered. */
size_t dyn_status_each(struct dyn_client *c, const char *const *addrs,
    size_t n, int timeout_ms, struct dyn_status *out, int *rc);
void dyn_status_fini(struct dyn_status *s);

#endif
