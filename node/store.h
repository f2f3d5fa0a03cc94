/*
 * store — a node's local storage: one LMDB environment in the data
 * directory with named databases
 *   objects  key = MD5 position (16) || user key   value = record
 *   hints    key = u8 target length || target || MD5 position || user key
 *            value = record (hinted handoff: versions held for a replica
 *            that was down, until it acknowledges them)
 *   meta     small named settings (the node's actor id, ...)
 *   gc       key = a blob's objects key   value = u64 condemned_at ||
 *            u64 bytes (the blob garbage collector's condemn marks, below)
 * so a partition of the ring is one contiguous key range, and so are all
 * the hints of one target.  LMDB keys are at most 511 bytes; a longer user
 * key is stored under position || first STORE_KEY_PREFIX bytes ||
 * SHA-256(key) (STORE_HINT_PREFIX bytes in hints, whose keys also carry the
 * target), and the record always carries the full key.
 *
 * Concurrency: reads (store_get, the scans, store_hint_counts) run in the
 * caller's thread in their own read transaction.  All writes go through one
 * writer thread that owns the only write transaction: callers queue an
 * update and block until it is committed; the writer applies every queued
 * update in one transaction and commits once (group commit), so with fsync
 * on, a batch costs one fsync.  When the map is full the writer aborts,
 * grows the map (readers are held off for that moment) and retries the
 * batch; past the configured maximum, or when the disk itself is full, the
 * updates fail with -ENOSPC and nothing is written.
 *
 * Compaction.  LMDB reuses freed pages but never shrinks its file, so after
 * deletes the data file stays as big as it ever was.  store_compact (and
 * the automatic check, store_opts.compact_check_ms) runs in the writer
 * thread between two batches: it copies the environment without its free
 * pages (mdb_env_copyfd2, MDB_CP_COMPACT) to data.mdb.compact, fsyncs it,
 * renames it over data.mdb, fsyncs the directory, and reopens LMDB on the
 * new file.  Nothing commits between the copy's snapshot and the swap (the
 * writer is busy copying), so no write is lost; updates queued meanwhile
 * wait and commit right after.  Reads go on during the copy and are held
 * off only while the environment is closed and reopened.  A crash leaves
 * either the old file or the complete new one as data.mdb, and at most a
 * stray data.mdb.compact, which store_open removes.
 */
#ifndef DYN_STORE_H
#define DYN_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "hist.h"
#include "keypos.h"
#include "vset.h"

/* The store's format (meta STORE_FORMAT_META, a u32): 2 since placement
 * keys (common/keypos.h); a store of another format is refused at open. */
#define STORE_FORMAT      2u
#define STORE_FORMAT_META "store_format"
#define STORE_KEY_PREFIX  400
#define STORE_TARGET_MAX  63 /* hint target: a node name (RING_NAME_MAX) */
#define STORE_HINT_PREFIX (STORE_KEY_PREFIX - 1 - STORE_TARGET_MAX)
/* Data keys are at most STORE_DKEY_MAX bytes (LMDB 0.9's compiled-in key
 * limit; the runtime one may only be smaller, but not below STORE_DKEY_MIN,
 * which holds a hashed key: store_open refuses an LMDB with less). */
#define STORE_DKEY_MAX 511
#define STORE_DKEY_MIN (KEYPOS_LEN + STORE_KEY_PREFIX + 32)

struct store;

struct store_opts {
	const char *dir;     /* created if missing */
	bool fsync;          /* durable commits (default true) */
	uint32_t max_batch;  /* updates per transaction; 1 = no group commit */
	uint64_t map_init;   /* initial map size in bytes (0: 64 MiB) */
	uint64_t map_max;    /* the map never grows past this (0: 1 TiB) */
	size_t max_value;    /* values over this are refused (0: WIRE_MAX_VALUE) */
	/* Automatic compaction: every compact_check_ms (0: never, the
	 * default) the writer compacts when the data file is at least
	 * compact_ratio (0: 2) times the bytes in use and more than
	 * compact_min_free (0: 64 MiB) of it is free. */
	int64_t compact_check_ms;
	uint32_t compact_ratio;
	uint64_t compact_min_free;
	/* Disk space that must stay free besides the copy (default 0): a
	 * compaction with less room is refused with -ENOSPC. */
	uint64_t compact_reserve;
};

/* One compaction. */
struct store_compaction {
	uint64_t before; /* data file bytes before */
	uint64_t after;  /* and after */
	uint64_t ms;     /* copy and swap; queued writes waited that long */
};

struct store_stats {
	uint64_t keys;       /* records in objects */
	uint64_t hints;      /* records in hints (all targets) */
	uint64_t db_bytes;   /* bytes of the data file in use */
	uint64_t map_bytes;  /* current map size */
	uint64_t commits;    /* write transactions committed */
	uint64_t updates;    /* updates that wrote (not skipped) */
	uint64_t hints_added; /* store_hint_add calls that grew a hint */
	struct hist_snap batches; /* requests per commit (every kind), a
	                             histogram with bounds 1, 2, 4 .. 1024 */
	struct hist_snap commit_us; /* each commit's time from the batch's
	                               first begin to its durable commit */
	uint64_t file_bytes; /* the data file's size on disk */
	uint64_t used_bytes; /* of its pages, those in use */
	uint64_t free_bytes; /* the rest: what compaction gives back */
	uint64_t compactions;     /* done since open */
	uint64_t compact_skipped; /* refused: no room on disk for the copy */
	bool compacting;          /* one is running now */
	struct store_compaction last; /* the last one done (zeros: none) */
};

void store_opts_default(struct store_opts *o);
int store_open(const struct store_opts *o, struct store **out);
/* Finishes queued updates, stops the writer, closes LMDB. NULL is fine. */
void store_close(struct store *s);

/* Read the record of key into out (out must be initialised; its old
 * contents are replaced).  -ENOENT when there is none (out left empty),
 * DYN_EBADMSG when the stored record does not decode (logged). */
int store_get(struct store *s, const void *key, size_t klen, struct vset *out);

/*
 * Update function: called in the writer thread, inside the write
 * transaction, with the key's current set (empty when absent).  It changes
 * cur in place and returns 0 to write it, STORE_SKIP to leave the record as
 * it was, or a negative error to fail this update alone.  It may be called
 * more than once for one update (when a batch is retried after growing the
 * map); only the last call's effect is committed, so it must start from cur
 * each time.  Writing an empty set deletes the record.
 */
#define STORE_SKIP 1
typedef int (*store_apply_fn)(struct vset *cur, void *arg);

/* The replica merge, as an apply function (arg: the struct vset to merge
 * in, only read): vset_merge into cur; 0 when that changed it, STORE_SKIP
 * when it added nothing, or vset_merge's error (cur unchanged).  What
 * every replica write (node/replica.h) and store_hint_add apply. */
int store_apply_merge(struct vset *cur, void *arg);

/* Queue an update of key and wait until it is committed (durable when fsync
 * is on).  Returns the apply function's result, or the commit's error;
 * DYN_EBADMSG (fn not called) when the stored record does not decode.
 * -EDEADLK when called from an apply function or a scan callback of s: the
 * writer may be waiting for that very scan to end before it grows the map. */
int store_update(struct store *s, const void *key, size_t klen,
    store_apply_fn fn, void *arg);

/* store_update without the wait: queues the update and returns 0, and the
 * writer thread calls done(done_arg, rc) once it is committed, rc as
 * store_update would return it (done must not block: the next batch waits
 * for it).  key, fn's arg and done_arg must stay valid until then.  Any
 * other return (the key is too long, the store is closing, no memory)
 * means done is never called. */
typedef void (*store_done_fn)(void *done_arg, int rc);
int store_update_async(struct store *s, const void *key, size_t klen,
    store_apply_fn fn, void *arg, store_done_fn done, void *done_arg);
/* store_update_async, and applied(done_arg) is called in the writer once
 * fn has made its change (fn returned 0 or STORE_SKIP), before the batch
 * commits, at most once: what fn made can be sent on while the commit's
 * fsync runs.  If the commit then fails, done gets the error as usual, and
 * what was sent on is not stored here (coord.c copes with that). */
typedef void (*store_applied_fn)(void *done_arg);
int store_update_async_applied(struct store *s, const void *key,
    size_t klen, store_apply_fn fn, void *arg, store_applied_fn applied,
    store_done_fn done, void *done_arg);

/* Many updates queued at once (so they share batches); waits for all.
 * Each ups[i].rc gets that update's result; returns 0, or an error that
 * kept every update from being queued. */
struct store_update {
	const void *key;
	size_t klen;
	store_apply_fn fn;
	void *arg;
	int rc; /* out */
};
int store_update_many(struct store *s, struct store_update *ups, size_t n);

/*
 * Visit every record whose position p has from <= p < to, in position order
 * (from == NULL: from 0; to == NULL: to the end of the ring).  cb gets the key and the set (valid
 * only during the call); a non-zero return stops the scan and is returned.
 * Runs in one read transaction: a consistent snapshot.  A record that does
 * not decode is logged and skipped.  cb may call store_get, not
 * store_update; while the scan runs the map cannot grow, so keep cb short.
 */
typedef int (*store_scan_fn)(const struct keypos *pos, const uint8_t *key,
    size_t klen, const struct vset *set, void *arg);
int store_scan(struct store *s, const struct keypos *from,
    const struct keypos *to, store_scan_fn cb, void *arg);

/*
 * store_scan from a key: the records from the one of key start (after:
 * from the first one after it), in the order of their data keys, up to
 * position to (NULL: the end of the ring).  The order is key order within
 * one position for keys that are stored whole (every placement key is,
 * common/keypos.h), so a range read pages through one placement part with
 * it and a transfer resumes inside a position many keys share.  start is
 * only read, and need not be stored.  Errors of keypos_of for start; the
 * rules of store_scan otherwise.
 */
int store_scan_from(struct store *s, const void *start, size_t slen,
    bool after, const struct keypos *to, store_scan_fn cb, void *arg);

/*
 * Conditional deletes, for data that was read, acted on, and may have
 * changed since: they return 0 when the record is gone (deleted now, or
 * already absent) and STORE_KEPT when it was left because it no longer
 * matches.  Both go through the writer thread like store_update (same
 * -EDEADLK rule, DYN_EBADMSG when the stored record does not decode).
 */
#define STORE_KEPT 2

/* Delete key's object record only if it holds exactly the versions of
 * expected (each set contains the other: vset_contains both ways); for
 * anti-entropy purging tombstones that every replica has. */
int store_delete_if(struct store *s, const void *key, size_t klen,
    const struct vset *expected);
/* The same test as an apply function (arg: the expected set), for
 * store_update_many: 0 deletes, STORE_KEPT or STORE_SKIP (absent) leave. */
int store_apply_delete_exact(struct vset *cur, void *expected);

/*
 * Hinted handoff.  A hint is the set of versions this node keeps for target
 * (a node name, 1..STORE_TARGET_MAX bytes, no NUL) under key, until target
 * has them.  Hints live in LMDB, so they survive restarts.
 *
 * store_hint_add merges set into the hint of (target, key) (vset_merge),
 * through the writer thread, so concurrent adds share commits.  0 on success
 * (also when set added nothing), -EINVAL for a bad target, DYN_ETOOBIG for a
 * key over KEY_MAX_LEN, or the errors of store_update.  set is only read.
 *
 * store_hint_remove deletes the hint of (target, key) only if delivered
 * holds everything it holds now (vset_contains(delivered, stored)): a hint
 * that grew after it was read for delivery stays, and STORE_KEPT says so.
 * 0 when the hint is gone (removed now or absent).
 */
int store_hint_add(struct store *s, const char *target, const void *key,
    size_t klen, const struct vset *set);
int store_hint_remove(struct store *s, const char *target, const void *key,
    size_t klen, const struct vset *delivered);

/*
 * Visit the hints of target (NULL: of every target), target by target and
 * in position order within one.  cb gets the target as a NUL-terminated
 * string, the full key and the set, all valid only during the call; a
 * non-zero return stops the scan and is returned.  Same rules as store_scan:
 * one read transaction, a hint that does not decode is logged and skipped,
 * cb may read (store_get, a nested scan) but not write: collect what was
 * delivered and store_hint_remove it after the scan.
 */
typedef int (*store_hint_fn)(const char *target, const uint8_t *key,
    size_t klen, const struct vset *set, void *arg);
int store_hint_scan(struct store *s, const char *target, store_hint_fn cb,
    void *arg);

/*
 * The hint backlog: cb once per target that has hints, with their number
 * (decodable or not; a key whose target cannot be read is logged and left
 * out, while store_stats' hints counts every record), in the order of
 * store_hint_scan.  A non-zero return stops and is returned.  Reads every
 * hint key once (no values) in one read transaction: fine for `dynamoctl
 * status`, not for a hot path.
 */
typedef int (*store_hint_count_fn)(const char *target, uint64_t count,
    void *arg);
int store_hint_counts(struct store *s, store_hint_count_fn cb, void *arg);

/*
 * A hint as stored, without a store (what the scans use, and the fuzz
 * target), for an LMDB key limit of maxkey (STORE_DKEY_MIN..STORE_DKEY_MAX;
 * else -EINVAL).  store_hint_key writes the data key of the hint of
 * (target, key) into buf and its length to *len: -EINVAL for a bad target,
 * DYN_ETOOBIG for a key over KEY_MAX_LEN.
 *
 * store_hint_decode reads the hint with data key dk and value v (a record,
 * store_record_decode): the target into name (NUL-terminated), the user key
 * into key (must be initialised), the versions into set (must be
 * initialised; replaced).  It checks that the hint is filed under the data
 * key its target and user key make (which also checks the position).
 * DYN_EBADMSG for anything malformed or misfiled, DYN_ETOOBIG for a value
 * over max_value, -ENOMEM; on error set is as it was or empty and key holds
 * anything.  Only reads dk and v.
 */
int store_hint_key(size_t maxkey, const char *target, const void *key,
    size_t klen, uint8_t buf[STORE_DKEY_MAX], size_t *len);
int store_hint_decode(size_t maxkey, size_t max_value, const void *dk,
    size_t dklen, const void *v, size_t vlen, char name[STORE_TARGET_MAX + 1],
    struct buf *key, struct vset *set);

/* Small named values in meta (name <= 64 bytes, value <= 4 KiB).
 * meta_get: -ENOENT when absent; *len gets the full length (copied up to
 * cap).  meta_put is synchronous and durable. */
int store_meta_get(struct store *s, const char *name, void *buf, size_t cap,
    size_t *len);
int store_meta_put(struct store *s, const char *name, const void *val,
    size_t len);

int store_stats(struct store *s, struct store_stats *out);

/* Compact the data file now (see the top of this file) and wait for it;
 * out (may be NULL) gets the sizes.  0 when done; -ENOSPC, nothing done,
 * when the file system has no room for the copy (statvfs: about the bytes
 * in use, plus compact_reserve); an error of the copy leaves the store as
 * it was.  Requests that come while one runs wait and share its result.
 * Same -EDEADLK rule as store_update. */
int store_compact(struct store *s, struct store_compaction *out);

/*
 * Blob garbage collection (node/gc.h).  A condemn mark says when the
 * collector first found a stored blob unreferenced.  Two rules hold in the
 * writer thread, so they are atomic with the writes they go with:
 *   - touch: every update of a blob key (blob_is_key) in objects, whatever
 *     its apply function does short of failing — a put, a re-put that
 *     changes nothing (STORE_SKIP), a replica merge, transfer or
 *     anti-entropy write, a conditional delete — deletes that key's mark
 *     in the same transaction;
 *   - the collector's delete is conditional: the blob record goes (with its
 *     mark) only if the mark is still there with exactly the condemned_at
 *     the collector read, i.e. nothing touched the blob since.
 */
struct store_mark {
	uint64_t condemned_at; /* wall-clock ms */
	uint64_t bytes;        /* the blob record's size when marked */
};

enum store_gc_kind {
	STORE_GC_MARK,   /* 0; STORE_KEPT: marked already; STORE_SKIP: the
	                    record is gone (no mark made) */
	STORE_GC_UNMARK, /* 0 (also when there was no mark) */
	STORE_GC_DELETE, /* 0: record and mark deleted (or the record was
	                    gone already); STORE_KEPT: the mark is gone or
	                    has another time (the blob was touched) */
};

struct store_gc_op {
	enum store_gc_kind kind;
	const void *key; /* a blob key */
	size_t klen;
	uint64_t condemned_at; /* MARK: the mark's time; DELETE: the one read */
	int rc;                /* out: as above, or an error; -EINVAL for a key
	                          that is not a blob's */
};

/* Apply n collector operations through the writer thread (they share
 * batches; same -EDEADLK rule as store_update).  Each ops[i].rc gets its
 * result; returns 0, or an error that kept every one from being queued. */
int store_gc_apply(struct store *s, struct store_gc_op *ops, size_t n);

/* The mark of a blob key; -ENOENT when there is none. */
int store_gc_mark_get(struct store *s, const void *key, size_t klen,
    struct store_mark *out);

/*
 * Visit every blob record of objects with its mark (NULL: none), in one
 * read transaction, in the order of their data keys; with after (a blob
 * key), only those that come after it (to resume a scan that cb stopped).
 * bytes is the stored record's size; the record is not decoded (a data
 * blob may be 8 MiB).  Rules of store_scan (a non-zero return stops and is
 * returned; no writes from cb).
 */
typedef int (*store_blob_fn)(const uint8_t *key, size_t klen, uint64_t bytes,
    const struct store_mark *mark, void *arg);
int store_blob_scan(struct store *s, const uint8_t *after, store_blob_fn cb,
    void *arg);

/*
 * Visit every record of objects, then every hint (hint true), in ONE read
 * transaction (one snapshot of both), except data blobs ('B' keys), which
 * are never decoded: what the collector reads references from.  Records
 * that do not decode are logged and skipped, as in store_scan; *bad counts
 * them (the collector must not treat a record it could not read as holding
 * no reference).  Rules of store_scan otherwise.
 */
typedef int (*store_ref_fn)(const uint8_t *key, size_t klen,
    const struct vset *set, bool hint, void *arg);
int store_ref_scan(struct store *s, store_ref_fn cb, void *arg,
    uint64_t *bad);

/* Record codec: u32 key length, key, vset encoding. Exposed for tests and
 * the fuzzer.  decode copies everything out of p. */
void store_record_encode(const void *key, size_t klen, const struct vset *s,
    struct buf *out);
int store_record_decode(const uint8_t *p, size_t len, size_t max_value,
    struct buf *key, struct vset *out);

/* LMDB's codes -> project codes (MDB_MAP_FULL -> -ENOSPC, ...). */
int store_error_from_lmdb(int rc);

#endif
