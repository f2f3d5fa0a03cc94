/*
 * wire — the message format spoken between all processes (over nng).
 *
 *   header (56 bytes, network byte order)
 *     u32 magic 'DYNM' | u8 version | u8 type | u16 flags |
 *     u64 request id   | u32 body length | u32 field count |
 *     u8 role | 3 zero bytes | u32 key id |
 *     u64 sender | u64 sequence | u64 time (ms since the epoch)
 *   body: field count * (u16 tag | u32 length | bytes)
 *   trailer: 32-byte HMAC-SHA256 over header+body under the key of the
 *            role and key generation the header names (auth.h) (with
 *            WIRE_H_BLOB, over all but a blob's bytes, which its keyed
 *            name authenticates instead)
 *
 * The sender is a random id of the sending process, the sequence a counter
 * of its messages, the time its wall clock at sealing: together they let a
 * receiver refuse a message it has seen before (common/replay.h).
 *
 * Fields are typed by tag; a decoder ignores tags it does not know, so
 * later messages can grow fields without a version bump.  wire_decode checks
 * everything (magic, version, lengths, field count, every field's bounds,
 * the tag) before a handler sees a byte; on any failure the message is
 * rejected whole.  A decoded message points into the caller's buffer.
 */
#ifndef DYN_WIRE_H
#define DYN_WIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "auth.h"
#include "buf.h"

#define WIRE_MAGIC      0x44594e4du /* "DYNM" */
#define WIRE_VERSION    3 /* 3: role, key id, sender, sequence, time */
#define WIRE_HDR_LEN    56
#define WIRE_MAX_FIELDS 64
/* Values up to 8 MiB; a message may carry several (siblings). */
#define WIRE_MAX_VALUE (8u << 20)
#define WIRE_MAX_MSG   (64u << 20)
/* Room for a header, the trailer and a few small fields (key, sender,
 * hint, flags) beside one value: buf_reserve(b, len + WIRE_SLACK) before
 * a message that carries a big one. */
#define WIRE_SLACK 512

enum wire_type {
	WIRE_ERROR = 1, /* reply: F_STATUS (+ F_ERRMSG) */
	WIRE_GET_REQ,   /* F_KEY [F_R] [F_FLAGS] */
	WIRE_GET_RESP,  /* F_STATUS F_VSET F_CONTEXT, F_VCONTEXT per version */
	WIRE_PUT_REQ,   /* F_KEY [F_CONTEXT...] F_VALUE [F_W] [F_FLAGS] */
	WIRE_PUT_RESP,  /* F_STATUS F_CONTEXT */
	WIRE_STATUS_REQ,
	WIRE_STATUS_RESP, /* F_NAME F_ADDR F_UPTIME F_KEYS F_DBSIZE ... */
	WIRE_GOSSIP_REQ,  /* F_GOSSIP: the sender's view */
	WIRE_GOSSIP_RESP, /* F_GOSSIP: the receiver's view after merging */
	WIRE_RING_REQ,
	WIRE_RING_RESP,      /* F_RING F_N F_R F_W */
	WIRE_REPLICATE_REQ,  /* F_KEY F_VSET: merge into the local store */
	WIRE_REPLICATE_RESP, /* F_STATUS */
	WIRE_XFER_REQ,       /* F_PART [F_CURSOR]: records of a partition */
	WIRE_XFER_RESP,      /* F_RECORDS [F_CURSOR: more from there] */
	WIRE_LEAVE_REQ,
	WIRE_LEAVE_RESP,
	WIRE_FAULT_REQ,  /* F_NAME... (cut off from these) or F_FLAGS heal */
	WIRE_FAULT_RESP,
	WIRE_AE_REQ,    /* F_PART, then F_ROOT or F_LEAFHASHES */
	WIRE_AE_RESP,   /* F_LEAVES F_RECORDS (to F_ROOT: none if it differs) */
	WIRE_MERGE_REQ, /* F_RECORDS: merge into the local store */
	WIRE_MERGE_RESP,
	WIRE_PURGE_CHECK_REQ,  /* may tombstones be purged? (ae.c) */
	WIRE_PURGE_CHECK_RESP, /* F_EPOCH F_HINTMIN F_STRAYS */
	WIRE_PURGE_REQ,        /* F_RECORDS: delete these exact sets */
	WIRE_PURGE_RESP,       /* F_KEYS: how many were deleted */
	WIRE_REMOVE_REQ,       /* F_NAME: a dead member, out of the ring */
	WIRE_REMOVE_RESP,
	WIRE_GC_FILTER_REQ,  /* F_SEED: this node's blob references (gc.c) */
	WIRE_GC_FILTER_RESP, /* F_EPOCH F_GRACE F_BADREFS [F_BLOOM] */
	WIRE_COMPACT_REQ,    /* compact the node's data file now */
	WIRE_COMPACT_RESP,   /* F_STATUS F_BEFORE F_AFTER F_DURATION */
	WIRE_PING_REQ,       /* [F_FROM] [F_VALUE]: are you there? (rpc.c's
	                      * prober), or an echo of F_VALUE */
	WIRE_PING_RESP,
	WIRE_RANGE_REQ,  /* F_PART_KEY [F_START] [F_LIMIT] [F_LIMIT_BYTES]
	                  * [F_R] [F_FLAGS]: the keys of one placement part */
	WIRE_RANGE_RESP, /* F_STATUS F_RECORDS [F_START: more after it] */
	WIRE_TYPE_END,
};

enum wire_tag {
	F_STATUS = 1, /* i32 as u32: 0 or a negative project error */
	F_ERRMSG,     /* text */
	F_KEY,        /* user key bytes, <= KEY_MAX_LEN */
	F_VALUE,      /* value bytes, <= WIRE_MAX_VALUE */
	F_CONTEXT,    /* opaque context (context.h) */
	F_VSET,       /* vset encoding */
	F_R,          /* u32 */
	F_W,          /* u32 */
	F_N,          /* u32 */
	F_FLAGS,      /* u32, WIRE_F_* */
	F_NAME,       /* text */
	F_ADDR,       /* text */
	F_UPTIME,     /* u64 seconds */
	F_KEYS,       /* u64 */
	F_DBSIZE,     /* u64 bytes */
	F_ACTOR,      /* u64 */
	F_STATS,      /* text: "name=value\n" counters */
	F_VCONTEXT,   /* context of one version (its past plus its dot) */
	F_GOSSIP,     /* a membership view (node/gossip.c) */
	F_RING,       /* ring encoding (common/ring.h) */
	F_PART,       /* u32 partition */
	F_CURSOR,     /* XFER: position [|| key]: where to go on */
	F_RECORDS,    /* u32 count, then count * blob(store record) */
	F_STATUSJSON, /* text: members and ring as JSON */
	F_FROM,       /* text: the sending node's name (node to node) */
	F_HINT,       /* text: the replica a stand-in holds a write for */
	F_LEAFHASHES, /* u32 count, count * 32-byte Merkle leaf hashes */
	F_LEAVES,     /* u32 count, count * u32 leaf index */
	F_EPOCH,      /* u64 ring epoch; UINT64_MAX while a plan is pending */
	F_HINTMIN,    /* u64 oldest version time (ms) in any hint; or max */
	F_STRAYS,     /* u64 records held outside the node's partitions */
	F_SEED,       /* u64 a GC round's Bloom filter seed */
	F_BLOOM,      /* a Bloom filter encoding (common/bloom.h) */
	F_GRACE,      /* u64 the node's GC grace period (ms); max: GC off */
	F_BADREFS,    /* u64 values whose reference header is malformed */
	F_BEFORE,     /* u64 bytes (a data file before compaction) */
	F_AFTER,      /* u64 bytes (and after) */
	F_DURATION,   /* u64 milliseconds */
	F_ROOT,       /* 32-byte Merkle root hash (anti-entropy's first ask) */
	F_PART_KEY,   /* a placement part, <= KEYPOS_PLACED_MAX - 3 bytes */
	F_START,      /* a key: a range read's cursor (exclusive) */
	F_LIMIT,      /* u32 keys at most */
	F_LIMIT_BYTES, /* u32 record bytes at most (past the first) */
	F_RCONTEXTS,  /* a range page's contexts: per record, blob context
	                 (covers every version), then a blob per version */
};

/* Header flags. */
#define WIRE_H_BLOB 0x1u /* the tag skips the bytes of the one F_VALUE,
                            which must be the blob that F_KEY names: the
                            decoder checks the name (common/blob.h) */

/* Request flags (F_FLAGS). */
#define WIRE_F_TOMBSTONE 0x1u /* PUT_REQ: this is a delete */
#define WIRE_F_LOCAL     0x2u /* GET_REQ: read only this node's store */
#define WIRE_F_FORWARDED 0x4u /* sent on by a node: coordinate, no hop */
#define WIRE_F_HEAL      0x8u /* FAULT_REQ: undo every injected fault */
#define WIRE_F_BLOB      0x10u /* GET_REQ, PUT_REQ: the key is a blob's
                                  (common/blob.h); a get answers F_VALUE */

struct wire_field {
	uint16_t tag;
	uint32_t len;
	const uint8_t *data; /* points into the decoded buffer */
};

struct wire_msg {
	uint8_t type;
	uint16_t flags;
	uint64_t reqid;
	enum auth_role role; /* whose key tagged it */
	uint32_t keyid;      /* of which key generation */
	uint64_t sender;     /* the sending process's random id */
	uint64_t seq;        /* its sequence number there */
	uint64_t time_ms;    /* its wall clock when sealed */
	uint32_t nfields;
	struct wire_field f[WIRE_MAX_FIELDS];
};

/* Building: wire_begin, any number of wire_put_*, then wire_seal, which
 * fills in the lengths, the sender, sequence and time, and appends the tag
 * under the keys' own role (wire_seal_as: under another role they hold;
 * -EPERM when they lack it).  Errors are sticky in the buf (buf_err);
 * wire_seal returns the first one.  A buf may be sealed again (its old tag
 * is replaced): a forwarded request gets a fresh sequence number. */
void wire_begin(struct buf *b, uint8_t type, uint16_t flags, uint64_t reqid);
void wire_put(struct buf *b, uint16_t tag, const void *p, size_t len);
void wire_put_u32(struct buf *b, uint16_t tag, uint32_t v);
void wire_put_u64(struct buf *b, uint16_t tag, uint64_t v);
void wire_put_str(struct buf *b, uint16_t tag, const char *s);
/* Open a field whose bytes the caller appends to b next (e.g. with
 * vset_encode); wire_end_field patches its length.  Returns the offset to
 * pass to wire_end_field. */
size_t wire_begin_field(struct buf *b, uint16_t tag);
void wire_end_field(struct buf *b, size_t at);
int wire_seal(struct buf *b, const struct auth_keys *k);
int wire_seal_as(struct buf *b, const struct auth_keys *k,
    enum auth_role role);
/* This process's sender id (random, renewed in a forked child). */
uint64_t wire_sender(void);
/* The wall clock (ms since the epoch) messages are timed by. */
uint64_t wire_clock_ms(void);
/* May a request of this type come from this role?  A node may ask
 * anything; a client what reads and writes keys (get, put, ring, ping,
 * status: the mount's statfs reads it); an admin also what changes
 * membership or the node (leave, remove, compact, fault). */
bool wire_role_may(enum auth_role role, uint8_t type);

/* Check and parse buf[0..len).  Returns 0, DYN_EBADMSG (malformed),
 * DYN_EPROTO (other version), DYN_ETOOBIG, or DYN_EAUTH (bad tag, or a
 * role or key generation the keys do not hold).  Freshness (replays) is
 * the receiver's to check, with m's sender, seq and time_ms. */
int wire_decode(const struct auth_keys *k, const uint8_t *buf, size_t len,
    struct wire_msg *m);

/* Field access. -ENOENT when absent, DYN_EBADMSG when the size is wrong. */
const struct wire_field *wire_find(const struct wire_msg *m, uint16_t tag);
int wire_get_u32(const struct wire_msg *m, uint16_t tag, uint32_t *v);
int wire_get_u64(const struct wire_msg *m, uint16_t tag, uint64_t *v);
int wire_get_i32(const struct wire_msg *m, uint16_t tag, int32_t *v);
/* Copy a text field into out (NUL-terminated, truncated to cap-1). */
int wire_get_str(const struct wire_msg *m, uint16_t tag, char *out,
    size_t cap);

#endif
