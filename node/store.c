/*
 * store — LMDB behind one writer thread.
 *
 *   caller threads                      writer thread
 *   --------------                      -------------
 *   store_update: build the data key,
 *   queue a req on s->queue, wait  ---> take up to max_batch reqs
 *   on req->cv                          begin the write txn
 *                                       per req: get, decode, fn, put/del
 *                                       commit once (one fsync)
 *   wake up with req->rc           <--- mark every req done, signal
 *
 *   store_get / store_scan: own read txn under s->maplock (read side)
 *
 * Hints are records like objects in their own database: store_hint_add,
 * store_hint_remove and store_delete_if are updates with apply functions
 * of this file (merge; delete if contained), so they share the batches.
 * The collector's operations on condemn marks (gc) are requests of their
 * own kind in the same batches; the touch rule (store.h) is applied by
 * writer_apply to every update of a blob key in objects.
 *
 * Why a rwlock around read transactions: mdb_env_set_mapsize remaps the
 * file, so no transaction may be live in this process while the map grows.
 * Readers hold maplock for reading for the life of their txn; the writer
 * takes it for writing only while it resizes, never across a commit, so
 * reads do not wait for fsync.  The lock prefers writers so a steady stream
 * of readers cannot starve a resize; a thread that already holds it for a
 * store (a scan callback calling store_get) does not take it again, which
 * would deadlock behind a waiting writer.
 *
 * Compaction (store.h) is a request of its own kind, run by the writer alone
 * between batches: the copy reads a snapshot while readers go on, then the
 * same write side of maplock that a resize takes holds readers off while the
 * environment is closed and reopened on the new file.  Only the writer
 * changes s->env, and only under that lock; the database handles come back
 * the same (LMDB numbers them in the order they are opened), so requests
 * queued with them stay valid.
 */
#include "store.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#include <lmdb.h>
#include <openssl/evp.h>

#include "blob.h"
#include "err.h"
#include "log.h"
#include "mem.h"
#include "mono.h"
#include "ring.h"
#include "wire.h"

#define STORE_MAP_INIT (64ull << 20)
#define STORE_MAP_MAX  (1ull << 40)
#define STORE_BATCH    1024
#define STORE_READERS  1024
#define STORE_HASH_LEN 32 /* SHA-256 */
#define META_NAME_MAX  64
#define META_VALUE_MAX 4096
#define MARK_LEN       16 /* u64 condemned_at, u64 bytes */
#define COMPACT_RATIO    2
#define COMPACT_MIN_FREE (64ull << 20)
#define DATA_FILE        "data.mdb"
#define COMPACT_FILE     "data.mdb.compact"
#define FREE_DBI         0 /* LMDB's freelist: txnid -> page list */
#define DKEY_MAX STORE_DKEY_MAX

/* Bounds of the batch-size histogram: powers of two up to STORE_BATCH. */
static const uint64_t batch_bounds[] = {1, 2, 4, 8, 16, 32, 64, 128, 256,
                                        512, 1024};
/* A batch's commit time, in microseconds: 0.1 ms to 10 s. */
static const uint64_t commit_bounds[] = {100, 250, 500, 1000, 2500, 5000,
    10000, 25000, 50000, 100000, 250000, 1000000, 10000000};

/* The longest hint data key is as long as the longest object data key, so
 * the check of the key limit at open covers both. */
_Static_assert(STORE_TARGET_MAX >= RING_NAME_MAX, "a node name is a target");
_Static_assert(STORE_TARGET_MAX <= UINT8_MAX, "target length is one byte");
_Static_assert(STORE_DKEY_MIN == KEYPOS_LEN + STORE_KEY_PREFIX + STORE_HASH_LEN,
               "the shortest key limit holds a hashed object key");
_Static_assert(KEYPOS_PLACED_MAX + KEYPOS_LEN <= STORE_DKEY_MIN,
               "a placement key is never stored hashed: LMDB's order is "
               "its key order");
_Static_assert(1 + STORE_TARGET_MAX + STORE_HINT_PREFIX == STORE_KEY_PREFIX,
               "hint keys fit where object keys do");

enum req_kind { REQ_UPDATE, REQ_META, REQ_GC, REQ_COMPACT };

/* A queued write.  Lives on the caller's stack until done is set, or, one
 * of store_update_async (done_fn set), on the heap until done_fn ran. */
struct store_req {
	struct store_req *next;
	enum req_kind kind;
	MDB_dbi dbi; /* REQ_UPDATE: objects or hints */
	MDB_val dkey;
	uint8_t dkbuf[DKEY_MAX];
	const void *key; /* user key (REQ_UPDATE) */
	size_t klen;
	store_apply_fn fn;
	void *arg;
	const void *val; /* REQ_META */
	size_t vlen;
	struct store_compaction *res; /* REQ_COMPACT: out */
	enum store_gc_kind gc; /* REQ_GC */
	uint64_t condemned_at;
	int rc;
	bool failed; /* rc is final: not retried with the batch */
	bool done;
	pthread_cond_t cv;
	store_done_fn done_fn; /* store_update_async */
	void *done_arg;
	store_applied_fn applied_fn; /* store_update_async_applied */
	bool applied;                /* applied_fn was called */
};

struct store {
	MDB_env *env;
	MDB_dbi objects;
	MDB_dbi hints;
	MDB_dbi meta;
	MDB_dbi gc;
	size_t maxkey; /* data keys longer than this are hashed */
	bool fsync;
	uint32_t max_batch;
	uint64_t map_max;
	size_t max_value;
	char *dir;         /* the data directory */
	char *data_path;   /* dir/data.mdb */
	char *compact_path; /* dir/data.mdb.compact */
	unsigned env_flags;
	uint64_t reopen_map; /* writer only: the map size to reopen with */
	int64_t compact_check_ms;
	uint32_t compact_ratio;
	uint64_t compact_min_free;
	uint64_t compact_reserve;

	pthread_rwlock_t maplock;
	bool maplock_ok;

	pthread_mutex_t mu; /* queue, closing, done flags */
	bool mu_ok;
	pthread_cond_t work_cv;
	bool work_cv_ok;
	struct store_req *head;
	struct store_req *tail;
	bool closing;
	bool compacting;               /* under mu, like the three below */
	uint64_t compactions;
	uint64_t compact_skipped;
	struct store_compaction last;

	pthread_t writer;
	bool writer_ok;
	struct store_req **batch; /* writer only: the batch being applied */
	struct buf enc;           /* writer only: record encoding */

	_Atomic uint64_t commits;
	_Atomic uint64_t updates;
	_Atomic uint64_t hints_added;
	struct hist batches; /* requests per committed transaction */
	struct hist commit_us; /* a batch's time: begin to durable commit */
};

/*
 * The read transactions this thread has open, one frame per store, linked
 * through the callers' stacks.  Thread-local bookkeeping only: it lets a
 * nested read skip re-taking maplock and lets store_update refuse to wait
 * on a writer that may be waiting for this very thread.
 */
struct read_frame {
	const struct store *s;
	struct read_frame *next;
};
static _Thread_local struct read_frame *read_frames;

int
store_error_from_lmdb(int rc)
{
	switch (rc) {
	case MDB_SUCCESS:
		return 0;
	case MDB_NOTFOUND:
		return -ENOENT;
	case MDB_KEYEXIST:
		return -EEXIST;
	case MDB_MAP_FULL:
	case MDB_TXN_FULL:
		return -ENOSPC;
	case MDB_CORRUPTED:
	case MDB_PAGE_NOTFOUND:
	case MDB_PANIC:
		return -EIO;
	case MDB_INVALID:
		return DYN_EBADMSG;
	case MDB_VERSION_MISMATCH:
		return DYN_EPROTO;
	case MDB_READERS_FULL:
	case MDB_TLS_FULL:
	case MDB_MAP_RESIZED:
		return -EAGAIN;
	case MDB_DBS_FULL:
		return -EMFILE;
	case MDB_BAD_VALSIZE:
		return DYN_ETOOBIG;
	case MDB_INCOMPATIBLE:
	case MDB_BAD_RSLOT:
	case MDB_BAD_TXN:
	case MDB_BAD_DBI:
		return -EINVAL;
	default:
		if (rc > 0)
			return -rc; /* an errno from the OS */
		return -EIO; /* MDB_CURSOR_FULL, MDB_PAGE_FULL, unknown */
	}
}

void
store_opts_default(struct store_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->fsync = true;
	o->max_batch = STORE_BATCH;
	o->map_init = STORE_MAP_INIT;
	o->map_max = STORE_MAP_MAX;
	o->max_value = WIRE_MAX_VALUE;
}

void
store_record_encode(const void *key, size_t klen, const struct vset *s,
                    struct buf *out)
{
	buf_put_blob(out, key, klen);
	vset_encode(s, out);
}

int
store_record_decode(const uint8_t *p, size_t len, size_t max_value,
                    struct buf *key, struct vset *out)
{
	struct rd r;
	struct vset tmp;
	const uint8_t *k;
	size_t klen;
	int rc;

	vset_init(&tmp);
	rd_init(&r, p, len);
	if ((rc = rd_blob(&r, KEY_MAX_LEN, &k, &klen)) != 0)
		goto out;
	if ((rc = vset_decode(&r, max_value, &tmp)) != 0)
		goto out;
	if (rd_left(&r) != 0 || r.bad) {
		rc = DYN_EBADMSG;
		goto out;
	}
	if (key) {
		buf_reset(key);
		buf_put(key, k, klen);
		if ((rc = buf_err(key)) != 0)
			goto out;
	}
	vset_fini(out);
	*out = tmp;
	vset_init(&tmp);
out:
	vset_fini(&tmp);
	return rc;
}

/* After the at bytes already in buf: position || key, or position ||
 * key[0..prefix) || SHA-256(key) when that would pass maxkey (LMDB's key
 * limit, at least STORE_DKEY_MIN).  buf holds DKEY_MAX bytes. */
static int
store_dkey_at(size_t maxkey, size_t at, size_t prefix, const void *key,
              size_t klen, uint8_t *buf, MDB_val *out)
{
	uint8_t *p = buf + at;
	struct keypos pos;
	unsigned int n = 0;
	int rc;

	if (klen > KEY_MAX_LEN)
		return DYN_ETOOBIG;
	if ((rc = keypos_of(key, klen, &pos)) != 0)
		return rc;
	memcpy(p, pos.b, KEYPOS_LEN);
	if (at + KEYPOS_LEN + klen <= maxkey) {
		if (klen)
			memcpy(p + KEYPOS_LEN, key, klen);
		out->mv_size = at + KEYPOS_LEN + klen;
	} else {
		memcpy(p + KEYPOS_LEN, key, prefix);
		if (EVP_Digest(key, klen, p + KEYPOS_LEN + prefix, &n,
		               EVP_sha256(), NULL) != 1 ||
		    n != STORE_HASH_LEN)
			return -EIO;
		out->mv_size = at + KEYPOS_LEN + prefix + STORE_HASH_LEN;
	}
	out->mv_data = buf;
	return 0;
}

static int
store_dkey(const struct store *s, const void *key, size_t klen, uint8_t *buf,
           MDB_val *out)
{
	return store_dkey_at(s->maxkey, 0, STORE_KEY_PREFIX, key, klen, buf,
	                     out);
}

/* u8 length || target: the first bytes of every hint key of target. */
static int
hint_header(const char *target, uint8_t *buf, size_t *len)
{
	size_t tlen;

	if (!target)
		return -EINVAL;
	tlen = strnlen(target, STORE_TARGET_MAX + 1);
	if (tlen == 0 || tlen > STORE_TARGET_MAX)
		return -EINVAL;
	buf[0] = (uint8_t)tlen;
	memcpy(buf + 1, target, tlen);
	*len = 1 + tlen;
	return 0;
}

/* header || the object data key, with the shorter prefix of hints. */
static int
hint_dkey_at(size_t maxkey, const char *target, const void *key, size_t klen,
             uint8_t *buf, MDB_val *out)
{
	size_t at;
	int rc;

	if (maxkey < STORE_DKEY_MIN || maxkey > DKEY_MAX)
		return -EINVAL;
	if ((rc = hint_header(target, buf, &at)) != 0)
		return rc;
	return store_dkey_at(maxkey, at, STORE_HINT_PREFIX, key, klen, buf,
	                     out);
}

static int
store_hint_dkey(const struct store *s, const char *target, const void *key,
                size_t klen, uint8_t *buf, MDB_val *out)
{
	return hint_dkey_at(s->maxkey, target, key, klen, buf, out);
}

int
store_hint_key(size_t maxkey, const char *target, const void *key,
               size_t klen, uint8_t buf[STORE_DKEY_MAX], size_t *len)
{
	MDB_val dk;
	int rc = hint_dkey_at(maxkey, target, key, klen, buf, &dk);

	if (rc == 0)
		*len = dk.mv_size;
	return rc;
}

/* Does the data key k file the user key key?  Compares the key bytes it
 * holds; the position and the digest are not recomputed. */
static bool
store_dkey_matches(const struct store *s, const MDB_val *k, const void *key,
                   size_t klen)
{
	const uint8_t *d = (const uint8_t *)k->mv_data + KEYPOS_LEN;

	if (KEYPOS_LEN + klen <= s->maxkey)
		return k->mv_size == KEYPOS_LEN + klen &&
		       (klen == 0 || memcmp(d, key, klen) == 0);
	return k->mv_size == KEYPOS_LEN + STORE_KEY_PREFIX + STORE_HASH_LEN &&
	       memcmp(d, key, STORE_KEY_PREFIX) == 0;
}

/* Name a bad record by its position (the key may be anything). */
static void
log_bad_record(const MDB_val *dk, const MDB_val *v, int rc)
{
	struct keypos pos;
	char hex[2 * KEYPOS_LEN + 1] = "?";

	if (dk->mv_size >= KEYPOS_LEN) {
		memcpy(pos.b, dk->mv_data, KEYPOS_LEN);
		keypos_hex(&pos, hex);
	}
	LOG_ERROR("store: record at %s (%zu bytes) left as it is: %s", hex,
	          v->mv_size, dyn_strerror(rc));
}

/* The target named by a hint's data key, copied into name; false when the
 * header is malformed. */
static bool
hint_target(const MDB_val *dk, char name[STORE_TARGET_MAX + 1])
{
	const uint8_t *d = dk->mv_data;
	size_t tlen = dk->mv_size ? d[0] : 0;

	if (tlen == 0 || tlen > STORE_TARGET_MAX ||
	    dk->mv_size < 1 + tlen + KEYPOS_LEN || memchr(d + 1, 0, tlen))
		return false;
	memcpy(name, d + 1, tlen);
	name[tlen] = '\0';
	return true;
}

/* Name a bad hint by its target and position (when they are readable). */
static void
log_bad_hint(const MDB_val *dk, const MDB_val *v, int rc)
{
	char name[STORE_TARGET_MAX + 1] = "?";
	char hex[2 * KEYPOS_LEN + 1] = "?";
	struct keypos pos;

	if (hint_target(dk, name)) {
		memcpy(pos.b, (const uint8_t *)dk->mv_data + 1 + strlen(name),
		       KEYPOS_LEN);
		keypos_hex(&pos, hex);
		for (char *c = name; *c; c++)
			if (*c < 0x20 || *c > 0x7e)
				*c = '?'; /* keep the log line one line */
	}
	LOG_ERROR("store: hint for %s at %s (%zu bytes) left as it is: %s",
	          name, hex, v->mv_size, dyn_strerror(rc));
}

/* A mark as stored; false when it has the wrong size (logged). */
static bool
mark_decode(const MDB_val *v, struct store_mark *out)
{
	if (v->mv_size != MARK_LEN) {
		LOG_ERROR("store: condemn mark of %zu bytes ignored", v->mv_size);
		return false;
	}
	out->condemned_at = be_get_u64(v->mv_data);
	out->bytes = be_get_u64((const uint8_t *)v->mv_data + 8);
	return true;
}

static bool
read_held(const struct store *s)
{
	for (struct read_frame *f = read_frames; f; f = f->next)
		if (f->s == s)
			return true;
	return false;
}

/* Begin a read txn with maplock held for reading (unless this thread holds
 * it already); store_read_end undoes both. */
static int
store_read_begin(struct store *s, struct read_frame *f, bool *locked,
                 MDB_txn **txn)
{
	int rc;

	*locked = false;
	if (!read_held(s)) {
		if ((rc = pthread_rwlock_rdlock(&s->maplock)) != 0)
			return -rc;
		*locked = true;
	}
	/* NULL only after a compaction could not reopen LMDB (logged). */
	rc = s->env ? mdb_txn_begin(s->env, NULL, MDB_RDONLY, txn) : EIO;
	if (rc != 0) {
		if (*locked)
			pthread_rwlock_unlock(&s->maplock);
		*locked = false;
		return store_error_from_lmdb(rc);
	}
	f->s = s;
	f->next = read_frames;
	read_frames = f;
	return 0;
}

static void
store_read_end(struct store *s, struct read_frame *f, bool locked,
               MDB_txn *txn)
{
	mdb_txn_abort(txn);
	read_frames = f->next;
	if (locked)
		pthread_rwlock_unlock(&s->maplock);
}

/* Decode a stored record and check it belongs to key. */
static int
store_decode_for(const struct store *s, const MDB_val *v, const void *key,
                 size_t klen, struct vset *out)
{
	struct vset tmp;
	struct buf k;
	int rc;

	vset_init(&tmp);
	buf_init(&k);
	rc = store_record_decode(v->mv_data, v->mv_size, s->max_value, &k,
	                         &tmp);
	if (rc == 0 && (k.len != klen || (klen && memcmp(k.data, key, klen))))
		rc = DYN_EBADMSG; /* a SHA-256 collision or a corrupt record */
	if (rc == 0) {
		vset_fini(out);
		*out = tmp;
		vset_init(&tmp);
	}
	vset_fini(&tmp);
	buf_fini(&k);
	return rc;
}

int
store_get(struct store *s, const void *key, size_t klen, struct vset *out)
{
	struct read_frame f;
	uint8_t dkbuf[DKEY_MAX];
	MDB_val dk, v;
	MDB_txn *txn;
	bool locked;
	int rc;

	if ((rc = store_dkey(s, key, klen, dkbuf, &dk)) != 0)
		return rc;
	if ((rc = store_read_begin(s, &f, &locked, &txn)) != 0)
		return rc;
	rc = mdb_get(txn, s->objects, &dk, &v);
	if (rc != 0) {
		rc = store_error_from_lmdb(rc);
		goto out;
	}
	rc = store_decode_for(s, &v, key, klen, out);
	if (rc == DYN_EBADMSG)
		log_bad_record(&dk, &v, rc);
out:
	store_read_end(s, &f, locked, txn);
	if (rc == -ENOENT)
		vset_fini(out);
	return rc;
}

/* The scans of objects: from data key start (skipping a record stored
 * under exactly that key when after), up to position to. */
static int
scan_objects(struct store *s, const MDB_val *start, bool after,
             const struct keypos *to, store_scan_fn cb, void *arg)
{
	struct read_frame f;
	MDB_cursor *cur = NULL;
	MDB_val k, v;
	MDB_txn *txn;
	struct keypos pos;
	struct vset set;
	struct buf key;
	bool locked;
	int rc, op;

	vset_init(&set);
	buf_init(&key);
	if ((rc = store_read_begin(s, &f, &locked, &txn)) != 0)
		goto done;
	if ((rc = mdb_cursor_open(txn, s->objects, &cur)) != 0) {
		rc = store_error_from_lmdb(rc);
		goto out;
	}
	k = *start;
	for (op = MDB_SET_RANGE;; op = MDB_NEXT) {
		rc = mdb_cursor_get(cur, &k, &v, (MDB_cursor_op)op);
		if (rc == MDB_NOTFOUND) {
			rc = 0;
			break;
		}
		if (rc != 0) {
			rc = store_error_from_lmdb(rc);
			break;
		}
		if (k.mv_size < KEYPOS_LEN) {
			LOG_ERROR("store: object key of %zu bytes", k.mv_size);
			continue;
		}
		if (to && memcmp(k.mv_data, to->b, KEYPOS_LEN) >= 0)
			break;
		if (after && op == MDB_SET_RANGE && k.mv_size == start->mv_size &&
		    memcmp(k.mv_data, start->mv_data, k.mv_size) == 0)
			continue;
		memcpy(pos.b, k.mv_data, KEYPOS_LEN);
		/* One bad record must not hide the rest of the range from
		 * anti-entropy: log it and go on. */
		rc = store_record_decode(v.mv_data, v.mv_size, s->max_value,
		                         &key, &set);
		if (rc == -ENOMEM)
			break;
		if (rc == 0 && !store_dkey_matches(s, &k, key.data, key.len)) {
			vset_fini(&set);
			rc = DYN_EBADMSG;
		}
		if (rc != 0) {
			log_bad_record(&k, &v, rc);
			continue;
		}
		rc = cb(&pos, key.data, key.len, &set, arg);
		vset_fini(&set);
		if (rc != 0)
			break;
	}
out:
	if (cur)
		mdb_cursor_close(cur);
	store_read_end(s, &f, locked, txn);
done:
	vset_fini(&set);
	buf_fini(&key);
	return rc;
}

int
store_scan(struct store *s, const struct keypos *from, const struct keypos *to,
           store_scan_fn cb, void *arg)
{
	static const struct keypos zero;
	MDB_val k = {.mv_size = KEYPOS_LEN,
	             .mv_data = (void *)(from ? from : &zero)->b};
	return scan_objects(s, &k, false, to, cb, arg);
}

int
store_scan_from(struct store *s, const void *start, size_t slen, bool after,
                const struct keypos *to, store_scan_fn cb, void *arg)
{
	uint8_t buf[DKEY_MAX];
	MDB_val k;
	int rc = store_dkey(s, start, slen, buf, &k);
	if (rc != 0)
		return rc;
	return scan_objects(s, &k, after, to, cb, arg);
}

int
store_hint_decode(size_t maxkey, size_t max_value, const void *dk,
                  size_t dklen, const void *v, size_t vlen,
                  char name[STORE_TARGET_MAX + 1], struct buf *key,
                  struct vset *set)
{
	MDB_val k = {.mv_size = dklen, .mv_data = (void *)dk};
	uint8_t dkbuf[DKEY_MAX];
	MDB_val want;
	int rc;

	if (!hint_target(&k, name))
		return DYN_EBADMSG;
	rc = store_record_decode(v, vlen, max_value, key, set);
	if (rc != 0)
		return rc;
	rc = hint_dkey_at(maxkey, name, key->data, key->len, dkbuf, &want);
	if (rc == 0 && (want.mv_size != dklen ||
	                memcmp(want.mv_data, dk, dklen) != 0))
		rc = DYN_EBADMSG;
	if (rc != 0)
		vset_fini(set);
	return rc;
}

/* Decode the hint at dk into name, key and set (store_hint_decode). */
static int
hint_decode(const struct store *s, const MDB_val *dk, const MDB_val *v,
            char name[STORE_TARGET_MAX + 1], struct buf *key, struct vset *set)
{
	return store_hint_decode(s->maxkey, s->max_value, dk->mv_data,
	                         dk->mv_size, v->mv_data, v->mv_size, name, key,
	                         set);
}

int
store_hint_scan(struct store *s, const char *target, store_hint_fn cb,
                void *arg)
{
	uint8_t hdr[1 + STORE_TARGET_MAX];
	char name[STORE_TARGET_MAX + 1];
	struct read_frame f;
	MDB_cursor *cur = NULL;
	MDB_val k, v;
	MDB_txn *txn;
	struct vset set;
	struct buf key;
	size_t hlen = 0;
	bool locked;
	int rc, op;

	if (target && (rc = hint_header(target, hdr, &hlen)) != 0)
		return rc;
	vset_init(&set);
	buf_init(&key);
	if ((rc = store_read_begin(s, &f, &locked, &txn)) != 0)
		goto done;
	if ((rc = mdb_cursor_open(txn, s->hints, &cur)) != 0) {
		rc = store_error_from_lmdb(rc);
		goto out;
	}
	k.mv_data = hdr;
	k.mv_size = hlen;
	op = target ? MDB_SET_RANGE : MDB_FIRST;
	for (;; op = MDB_NEXT) {
		rc = mdb_cursor_get(cur, &k, &v, (MDB_cursor_op)op);
		if (rc == MDB_NOTFOUND) {
			rc = 0;
			break;
		}
		if (rc != 0) {
			rc = store_error_from_lmdb(rc);
			break;
		}
		if (target &&
		    (k.mv_size < hlen || memcmp(k.mv_data, hdr, hlen) != 0))
			break; /* past target's range */
		/* A bad hint must not hold back the others: log, go on. */
		rc = hint_decode(s, &k, &v, name, &key, &set);
		if (rc == -ENOMEM)
			break;
		if (rc != 0) {
			log_bad_hint(&k, &v, rc);
			continue;
		}
		rc = cb(name, key.data, key.len, &set, arg);
		vset_fini(&set);
		if (rc != 0)
			break;
	}
out:
	if (cur)
		mdb_cursor_close(cur);
	store_read_end(s, &f, locked, txn);
done:
	vset_fini(&set);
	buf_fini(&key);
	return rc;
}

int
store_hint_counts(struct store *s, store_hint_count_fn cb, void *arg)
{
	char name[STORE_TARGET_MAX + 1], next[STORE_TARGET_MAX + 1];
	struct read_frame f;
	MDB_cursor *cur = NULL;
	MDB_val k, v;
	MDB_txn *txn;
	uint64_t n = 0;
	bool locked;
	int rc, op;

	name[0] = '\0';
	if ((rc = store_read_begin(s, &f, &locked, &txn)) != 0)
		return rc;
	if ((rc = mdb_cursor_open(txn, s->hints, &cur)) != 0) {
		rc = store_error_from_lmdb(rc);
		goto out;
	}
	for (op = MDB_FIRST;; op = MDB_NEXT) {
		rc = mdb_cursor_get(cur, &k, &v, (MDB_cursor_op)op);
		if (rc == MDB_NOTFOUND) {
			rc = n ? cb(name, n, arg) : 0;
			break;
		}
		if (rc != 0) {
			rc = store_error_from_lmdb(rc);
			break;
		}
		if (!hint_target(&k, next)) {
			log_bad_hint(&k, &v, DYN_EBADMSG);
			continue;
		}
		/* Keys of one target are contiguous: a new name closes the
		 * previous target's count. */
		if (n && strcmp(name, next) != 0) {
			if ((rc = cb(name, n, arg)) != 0)
				break;
			n = 0;
		}
		memcpy(name, next, sizeof(name));
		n++;
	}
out:
	if (cur)
		mdb_cursor_close(cur);
	store_read_end(s, &f, locked, txn);
	return rc;
}

int
store_meta_get(struct store *s, const char *name, void *buf, size_t cap,
               size_t *len)
{
	struct read_frame f;
	MDB_val k, v;
	MDB_txn *txn;
	bool locked;
	int rc;

	k.mv_size = strlen(name);
	k.mv_data = (void *)name;
	if (k.mv_size == 0 || k.mv_size > META_NAME_MAX)
		return -EINVAL;
	if ((rc = store_read_begin(s, &f, &locked, &txn)) != 0)
		return rc;
	if ((rc = mdb_get(txn, s->meta, &k, &v)) != 0) {
		rc = store_error_from_lmdb(rc);
		goto out;
	}
	*len = v.mv_size;
	if (cap)
		memcpy(buf, v.mv_data, v.mv_size < cap ? v.mv_size : cap);
out:
	store_read_end(s, &f, locked, txn);
	return rc;
}

int
store_gc_mark_get(struct store *s, const void *key, size_t klen,
                  struct store_mark *out)
{
	struct read_frame f;
	uint8_t dkbuf[DKEY_MAX];
	MDB_val dk, v;
	MDB_txn *txn;
	bool locked;
	int rc;

	if ((rc = store_dkey(s, key, klen, dkbuf, &dk)) != 0)
		return rc;
	if ((rc = store_read_begin(s, &f, &locked, &txn)) != 0)
		return rc;
	rc = store_error_from_lmdb(mdb_get(txn, s->gc, &dk, &v));
	if (rc == 0 && !mark_decode(&v, out))
		rc = -ENOENT;
	store_read_end(s, &f, locked, txn);
	return rc;
}

/* The user key filed under the objects data key k, when it is a blob's
 * (blob keys are short, so never hashed into the data key). */
static bool
dkey_blob(const MDB_val *k, const uint8_t **key)
{
	const uint8_t *d = k->mv_data;

	if (k->mv_size != KEYPOS_LEN + BLOB_KEY_LEN ||
	    !blob_is_key(d + KEYPOS_LEN, BLOB_KEY_LEN))
		return false;
	*key = d + KEYPOS_LEN;
	return true;
}

int
store_blob_scan(struct store *s, const uint8_t *after, store_blob_fn cb,
                void *arg)
{
	uint8_t dkbuf[DKEY_MAX];
	struct read_frame f;
	MDB_cursor *cur = NULL;
	struct store_mark m;
	const uint8_t *key;
	MDB_val k, v, mv, from = {0, NULL};
	MDB_txn *txn;
	bool locked, marked;
	int rc, op;

	if (after && !blob_is_key(after, BLOB_KEY_LEN))
		return -EINVAL;
	if (after && (rc = store_dkey(s, after, BLOB_KEY_LEN, dkbuf, &from)))
		return rc;
	if ((rc = store_read_begin(s, &f, &locked, &txn)) != 0)
		return rc;
	if ((rc = mdb_cursor_open(txn, s->objects, &cur)) != 0) {
		rc = store_error_from_lmdb(rc);
		goto out;
	}
	if (after)
		k = from;
	for (op = after ? MDB_SET_RANGE : MDB_FIRST;; op = MDB_NEXT) {
		rc = mdb_cursor_get(cur, &k, &v, (MDB_cursor_op)op);
		if (rc == MDB_NOTFOUND) {
			rc = 0;
			break;
		}
		if (rc != 0) {
			rc = store_error_from_lmdb(rc);
			break;
		}
		if (op == MDB_SET_RANGE && k.mv_size == from.mv_size &&
		    memcmp(k.mv_data, from.mv_data, from.mv_size) == 0)
			continue; /* after itself */
		if (!dkey_blob(&k, &key))
			continue;
		rc = mdb_get(txn, s->gc, &k, &mv);
		if (rc != 0 && rc != MDB_NOTFOUND) {
			rc = store_error_from_lmdb(rc);
			break;
		}
		marked = rc == 0 && mark_decode(&mv, &m);
		rc = cb(key, BLOB_KEY_LEN, v.mv_size, marked ? &m : NULL, arg);
		if (rc != 0)
			break;
	}
out:
	if (cur)
		mdb_cursor_close(cur);
	store_read_end(s, &f, locked, txn);
	return rc;
}

/* Is the hint at dk one of a data blob (whose value is never read)? */
static bool
hint_of_data_blob(const MDB_val *dk)
{
	const uint8_t *d = dk->mv_data;
	size_t tlen = dk->mv_size ? d[0] : 0;
	size_t at = 1 + tlen + KEYPOS_LEN;

	return dk->mv_size == at + BLOB_KEY_LEN && d[at] == BLOB_DATA;
}

/* One database of store_ref_scan, in txn. */
static int
ref_scan_dbi(struct store *s, MDB_txn *txn, bool hints, store_ref_fn cb,
             void *arg, uint64_t *bad)
{
	char name[STORE_TARGET_MAX + 1];
	MDB_cursor *cur = NULL;
	const uint8_t *bkey;
	struct vset set;
	struct buf key;
	MDB_val k, v;
	int rc, op;

	vset_init(&set);
	buf_init(&key);
	if ((rc = mdb_cursor_open(txn, hints ? s->hints : s->objects, &cur))) {
		rc = store_error_from_lmdb(rc);
		goto out;
	}
	for (op = MDB_FIRST;; op = MDB_NEXT) {
		rc = mdb_cursor_get(cur, &k, &v, (MDB_cursor_op)op);
		if (rc == MDB_NOTFOUND) {
			rc = 0;
			break;
		}
		if (rc != 0) {
			rc = store_error_from_lmdb(rc);
			break;
		}
		if (hints ? hint_of_data_blob(&k)
		          : dkey_blob(&k, &bkey) && bkey[0] == BLOB_DATA)
			continue; /* never parsed (blob.h) */
		if (hints) {
			rc = hint_decode(s, &k, &v, name, &key, &set);
		} else {
			rc = store_record_decode(v.mv_data, v.mv_size,
			                         s->max_value, &key, &set);
			if (rc == 0 &&
			    (k.mv_size < KEYPOS_LEN ||
			     !store_dkey_matches(s, &k, key.data, key.len))) {
				vset_fini(&set);
				rc = DYN_EBADMSG;
			}
		}
		if (rc == -ENOMEM)
			break;
		if (rc != 0) {
			if (hints)
				log_bad_hint(&k, &v, rc);
			else
				log_bad_record(&k, &v, rc);
			(*bad)++;
			continue;
		}
		rc = cb(key.data, key.len, &set, hints, arg);
		vset_fini(&set);
		if (rc != 0)
			break;
	}
out:
	if (cur)
		mdb_cursor_close(cur);
	vset_fini(&set);
	buf_fini(&key);
	return rc;
}

int
store_ref_scan(struct store *s, store_ref_fn cb, void *arg, uint64_t *bad)
{
	struct read_frame f;
	MDB_txn *txn;
	bool locked;
	int rc;

	*bad = 0;
	if ((rc = store_read_begin(s, &f, &locked, &txn)) != 0)
		return rc;
	rc = ref_scan_dbi(s, txn, false, cb, arg, bad);
	if (rc == 0)
		rc = ref_scan_dbi(s, txn, true, cb, arg, bad);
	store_read_end(s, &f, locked, txn);
	return rc;
}

/* The data file's size, and how much of it holds pages in use: every page
 * up to the last one allocated, less those on the freelist of txn's
 * snapshot (the pages a compacting copy leaves out). */
static int
store_space(const struct store *s, MDB_txn *txn, uint64_t *file,
            uint64_t *used)
{
	MDB_cursor *cur;
	MDB_envinfo info;
	MDB_stat st;
	MDB_val k, v;
	struct stat sb;
	uint64_t pages, freepg = 0;
	size_t cnt;
	int rc, op;

	if ((rc = mdb_env_info(s->env, &info)) != 0 ||
	    (rc = mdb_env_stat(s->env, &st)) != 0 ||
	    (rc = mdb_cursor_open(txn, FREE_DBI, &cur)) != 0)
		return store_error_from_lmdb(rc);
	for (op = MDB_FIRST;; op = MDB_NEXT) {
		if ((rc = mdb_cursor_get(cur, &k, &v, (MDB_cursor_op)op)) != 0)
			break;
		/* An ID list: its length, then that many page numbers. */
		if (v.mv_size >= sizeof(cnt)) {
			memcpy(&cnt, v.mv_data, sizeof(cnt));
			freepg += cnt;
		}
	}
	mdb_cursor_close(cur);
	if (rc != MDB_NOTFOUND)
		return store_error_from_lmdb(rc);
	if (stat(s->data_path, &sb) != 0)
		return -errno;
	pages = (uint64_t)info.me_last_pgno + 1;
	*used = (pages > freepg ? pages - freepg : 0) * st.ms_psize;
	*file = (uint64_t)sb.st_size;
	return 0;
}

int
store_stats(struct store *s, struct store_stats *out)
{
	struct read_frame f;
	MDB_envinfo info;
	MDB_stat st;
	MDB_txn *txn;
	bool locked;
	int rc;

	memset(out, 0, sizeof(*out));
	if ((rc = store_read_begin(s, &f, &locked, &txn)) != 0)
		return rc;
	if ((rc = mdb_stat(txn, s->hints, &st)) != 0) {
		rc = store_error_from_lmdb(rc);
		goto out;
	}
	out->hints = st.ms_entries;
	if ((rc = mdb_stat(txn, s->objects, &st)) != 0 ||
	    (rc = mdb_env_info(s->env, &info)) != 0) {
		rc = store_error_from_lmdb(rc);
		goto out;
	}
	out->keys = st.ms_entries;
	out->db_bytes = ((uint64_t)info.me_last_pgno + 1) * st.ms_psize;
	out->map_bytes = info.me_mapsize;
	out->commits = atomic_load(&s->commits);
	out->updates = atomic_load(&s->updates);
	out->hints_added = atomic_load(&s->hints_added);
	hist_read(&s->batches, &out->batches);
	hist_read(&s->commit_us, &out->commit_us);
	if ((rc = store_space(s, txn, &out->file_bytes, &out->used_bytes)))
		goto out;
	if (out->file_bytes > out->used_bytes)
		out->free_bytes = out->file_bytes - out->used_bytes;
out:
	store_read_end(s, &f, locked, txn);
	pthread_mutex_lock(&s->mu);
	out->compactions = s->compactions;
	out->compact_skipped = s->compact_skipped;
	out->compacting = s->compacting;
	out->last = s->last;
	pthread_mutex_unlock(&s->mu);
	return rc;
}

/*
 * Writer side.
 */

/* Caps the decoder will enforce on the way back in, checked before the
 * record is written so nothing unreadable reaches the disk. */
static int
store_check_set(const struct store *s, const struct vset *set)
{
	if (set->n > VSET_MAX_VERSIONS)
		return DYN_ETOOBIG;
	for (uint32_t i = 0; i < set->n; i++)
		if (set->v[i].len > s->max_value)
			return DYN_ETOOBIG;
	return 0;
}

/* A collector operation (store.h); same contract as writer_apply. */
static int
writer_gc(struct store *s, MDB_txn *txn, struct store_req *r)
{
	struct store_mark m;
	uint8_t mb[MARK_LEN];
	MDB_val v, mv;
	int mrc;

	switch (r->gc) {
	case STORE_GC_MARK:
		mrc = mdb_get(txn, s->objects, &r->dkey, &v);
		if (mrc == MDB_NOTFOUND) {
			r->rc = STORE_SKIP; /* deleted meanwhile: no orphan mark */
			return 0;
		}
		if (mrc != 0)
			return mrc;
		mrc = mdb_get(txn, s->gc, &r->dkey, &mv);
		if (mrc == 0 && mark_decode(&mv, &m)) {
			r->rc = STORE_KEPT; /* the older mark stands */
			return 0;
		}
		if (mrc != 0 && mrc != MDB_NOTFOUND)
			return mrc;
		be_put_u64(mb, r->condemned_at);
		be_put_u64(mb + 8, v.mv_size);
		mv.mv_data = mb;
		mv.mv_size = sizeof(mb);
		r->rc = 0;
		return mdb_put(txn, s->gc, &r->dkey, &mv, 0);
	case STORE_GC_UNMARK:
		r->rc = 0;
		mrc = mdb_del(txn, s->gc, &r->dkey, NULL);
		return mrc == MDB_NOTFOUND ? 0 : mrc;
	case STORE_GC_DELETE:
		mrc = mdb_get(txn, s->gc, &r->dkey, &mv);
		if (mrc != 0 && mrc != MDB_NOTFOUND)
			return mrc;
		if (mrc == MDB_NOTFOUND || !mark_decode(&mv, &m) ||
		    m.condemned_at != r->condemned_at) {
			r->rc = STORE_KEPT; /* touched since the sweep read it */
			return 0;
		}
		mrc = mdb_del(txn, s->objects, &r->dkey, NULL);
		if (mrc != 0 && mrc != MDB_NOTFOUND)
			return mrc;
		r->rc = 0;
		return mdb_del(txn, s->gc, &r->dkey, NULL);
	}
	r->rc = -EINVAL;
	r->failed = true;
	return 0;
}

/*
 * Apply one request inside txn.  Returns 0 when the request is settled
 * (r->rc and r->failed say how), or an LMDB code that spoils the whole
 * transaction (the batch is retried).
 */
static int
writer_apply(struct store *s, MDB_txn *txn, struct store_req *r)
{
	struct vset cur;
	MDB_val v;
	int rc, mrc;

	if (r->kind == REQ_META) {
		v.mv_data = (void *)r->val;
		v.mv_size = r->vlen;
		r->rc = 0;
		return mdb_put(txn, s->meta, &r->dkey, &v, 0);
	}
	if (r->kind == REQ_GC)
		return writer_gc(s, txn, r);

	vset_init(&cur);
	mrc = mdb_get(txn, r->dbi, &r->dkey, &v);
	if (mrc != 0 && mrc != MDB_NOTFOUND)
		goto out;
	if (mrc == 0) {
		rc = store_decode_for(s, &v, r->key, r->klen, &cur);
		if (rc != 0) {
			if (rc == DYN_EBADMSG && r->dbi == s->hints)
				log_bad_hint(&r->dkey, &v, rc);
			else if (rc == DYN_EBADMSG)
				log_bad_record(&r->dkey, &v, rc);
			r->rc = rc;
			r->failed = true;
			mrc = 0;
			goto out;
		}
	}
	mrc = 0;
	rc = r->fn(&cur, r->arg);
	if (rc == 0)
		rc = store_check_set(s, &cur);
	r->rc = rc;
	if (rc < 0) {
		r->failed = true;
		goto out;
	}
	if (rc > 0)
		goto out; /* STORE_SKIP (or another positive: leave it too) */
	if (cur.n == 0) {
		mrc = mdb_del(txn, r->dbi, &r->dkey, NULL);
		if (mrc == MDB_NOTFOUND)
			mrc = 0;
		goto out;
	}
	buf_reset(&s->enc);
	store_record_encode(r->key, r->klen, &cur, &s->enc);
	if ((rc = buf_err(&s->enc)) != 0) {
		r->rc = rc;
		r->failed = true;
		goto out;
	}
	v.mv_data = s->enc.data;
	v.mv_size = s->enc.len;
	mrc = mdb_put(txn, r->dbi, &r->dkey, &v, 0);
out:
	/* The touch (store.h): whatever this update did to a blob, short of
	 * failing, its condemn mark goes in the same transaction. */
	if (mrc == 0 && !r->failed && r->dbi == s->objects &&
	    blob_is_key(r->key, r->klen)) {
		mrc = mdb_del(txn, s->gc, &r->dkey, NULL);
		if (mrc == MDB_NOTFOUND)
			mrc = 0;
	}
	vset_fini(&cur);
	return mrc;
}

/* Double the map (no txn of this process may be live meanwhile). */
static int
writer_grow(struct store *s)
{
	MDB_envinfo info;
	uint64_t size;
	int rc;

	if ((rc = mdb_env_info(s->env, &info)) != 0)
		return store_error_from_lmdb(rc);
	if (info.me_mapsize >= s->map_max)
		return -ENOSPC;
	size = (uint64_t)info.me_mapsize * 2;
	if (size > s->map_max)
		size = s->map_max;
	if ((rc = pthread_rwlock_wrlock(&s->maplock)) != 0)
		return -rc;
	rc = mdb_env_set_mapsize(s->env, (size_t)size);
	pthread_rwlock_unlock(&s->maplock);
	if (rc != 0)
		return store_error_from_lmdb(rc);
	LOG_INFO("store: map grown to %llu MiB",
	         (unsigned long long)(size >> 20));
	return 0;
}

/* Open LMDB in dir and its four databases (objects, hints, meta, gc, in
 * that order: the order fixes their handles).  *out stays NULL on
 * failure. */
static int
env_open(const char *dir, unsigned flags, uint64_t map, MDB_env **out,
         MDB_dbi dbi[4])
{
	static const char *const names[4] = {"objects", "hints", "meta",
	                                     "gc"};
	MDB_env *env;
	MDB_txn *txn;
	int rc;

	*out = NULL;
	if ((rc = mdb_env_create(&env)) != 0)
		return store_error_from_lmdb(rc);
	if ((rc = mdb_env_set_maxdbs(env, 8)) != 0 ||
	    (rc = mdb_env_set_maxreaders(env, STORE_READERS)) != 0 ||
	    (rc = mdb_env_set_mapsize(env, (size_t)map)) != 0 ||
	    (rc = mdb_env_open(env, dir, flags, 0600)) != 0 ||
	    (rc = mdb_txn_begin(env, NULL, 0, &txn)) != 0)
		goto fail;
	for (int i = 0; i < 4; i++) {
		if ((rc = mdb_dbi_open(txn, names[i], MDB_CREATE, &dbi[i]))) {
			mdb_txn_abort(txn);
			goto fail;
		}
	}
	if ((rc = mdb_txn_commit(txn)) != 0)
		goto fail;
	*out = env;
	return 0;
fail:
	mdb_env_close(env);
	return store_error_from_lmdb(rc);
}

/* Reopen LMDB on the data file, which a compaction replaced; the caller
 * holds maplock for writing.  The handles come back the same (the same
 * databases opened in the same order), which queued requests rely on. */
static int
writer_reopen_locked(struct store *s)
{
	MDB_dbi d[4];
	MDB_env *env;
	int rc;

	rc = env_open(s->dir, s->env_flags, s->reopen_map, &env, d);
	if (rc == 0 && (d[0] != s->objects || d[1] != s->hints ||
	                d[2] != s->meta || d[3] != s->gc)) {
		mdb_env_close(env);
		rc = -EIO;
	}
	if (rc != 0) {
		LOG_ERROR("store: reopening %s: %s (retried at the next "
		          "write)", s->data_path, dyn_strerror(rc));
		return rc;
	}
	s->env = env;
	return 0;
}

/* An environment to write to: only missing when a reopen after a
 * compaction failed; try again. */
static int
writer_ensure_env(struct store *s)
{
	int rc;

	if (s->env)
		return 0;
	if ((rc = pthread_rwlock_wrlock(&s->maplock)) != 0)
		return -rc;
	rc = writer_reopen_locked(s);
	pthread_rwlock_unlock(&s->maplock);
	return rc;
}

/* Bytes free to us on the data directory's file system. */
static int
disk_room(const struct store *s, uint64_t *room)
{
	struct statvfs vfs;
	if (statvfs(s->dir, &vfs) != 0)
		return -errno;
	*room = (uint64_t)vfs.f_bavail * vfs.f_frsize;
	return 0;
}

/* Is the file system of the data directory (nearly) out of room? */
static bool
disk_full(const struct store *s)
{
	uint64_t room = UINT64_MAX;
	return disk_room(s, &room) == 0 && room < (1u << 20);
}

static void
batch_fail(struct store_req **b, uint32_t n, int rc)
{
	for (uint32_t i = 0; i < n; i++) {
		if (!b[i]->failed) {
			b[i]->rc = rc;
			b[i]->failed = true;
		}
	}
}

/* Every change of the batch is made, not yet committed: tell those that
 * asked (store_update_async_applied), once each, even if the batch is
 * redone (its changes come out the same: the transaction that was undone
 * never committed). */
static void
announce(struct store_req **b, uint32_t n)
{
	for (uint32_t i = 0; i < n; i++) {
		struct store_req *r = b[i];
		if (r->applied_fn && !r->applied && !r->failed && r->rc >= 0) {
			r->applied = true;
			r->applied_fn(r->done_arg);
		}
	}
}

/*
 * Apply a batch in one transaction.  Map full: grow and redo the batch.  An
 * LMDB error on one request's put spoils the transaction, so that request
 * fails alone and the rest are redone without it.
 */
static void
writer_batch(struct store *s, struct store_req **b, uint32_t n)
{
	MDB_txn *txn;
	bool meta;
	uint32_t i, ok;
	int rc;

	if ((rc = writer_ensure_env(s)) != 0) {
		batch_fail(b, n, rc);
		return;
	}
	uint64_t t0 = mono_us();
	for (;;) {
		meta = false;
		rc = mdb_txn_begin(s->env, NULL, 0, &txn);
		if (rc != 0) {
			batch_fail(b, n, store_error_from_lmdb(rc));
			return;
		}
		for (i = 0; i < n; i++) {
			if (b[i]->failed)
				continue;
			if ((rc = writer_apply(s, txn, b[i])) != 0)
				break;
			meta |= b[i]->kind == REQ_META;
		}
		if (rc == 0)
			announce(b, n);
		if (rc == 0)
			rc = mdb_txn_commit(txn); /* frees txn, even failing */
		else
			mdb_txn_abort(txn);
		if (rc == 0)
			break;
		if (rc == MDB_MAP_FULL) {
			if ((rc = writer_grow(s)) != 0) {
				batch_fail(b, n, rc);
				return;
			}
			continue;
		}
		if (i < n) {
			b[i]->rc = store_error_from_lmdb(rc);
			b[i]->failed = true;
			continue;
		}
		rc = store_error_from_lmdb(rc);
		/* LMDB says EIO for a short write, which is what a full disk
		 * gives: say what it is. */
		if (rc == -EIO && disk_full(s))
			rc = -ENOSPC;
		LOG_ERROR("store: commit failed: %s%s", dyn_strerror(rc),
		          rc == -ENOSPC ? " (the data directory's file system "
		                          "is full)"
		                        : "");
		batch_fail(b, n, rc);
		return;
	}
	/* meta_put promises durability even when objects are not fsynced. */
	if (meta && !s->fsync && (rc = mdb_env_sync(s->env, 1)) != 0) {
		for (i = 0; i < n; i++)
			if (b[i]->kind == REQ_META)
				b[i]->rc = store_error_from_lmdb(rc);
	}
	for (ok = 0, i = 0; i < n; i++)
		ok += !b[i]->failed && b[i]->kind == REQ_UPDATE &&
		    b[i]->rc == 0;
	atomic_fetch_add(&s->commits, 1);
	atomic_fetch_add(&s->updates, ok);
	hist_add(&s->batches, n);
	hist_add(&s->commit_us, mono_us() - t0);
}

static int
fsync_dir(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int rc = 0;

	if (fd < 0)
		return -errno;
	if (fsync(fd) != 0)
		rc = -errno;
	close(fd);
	return rc;
}

/* Copy the environment without its free pages to compact_path and make
 * the copy durable. */
static int
writer_copy(struct store *s)
{
	int fd, rc;

	fd = open(s->compact_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC,
	          0600);
	if (fd < 0)
		return -errno;
	rc = store_error_from_lmdb(mdb_env_copyfd2(s->env, fd, MDB_CP_COMPACT));
	if (rc == 0 && fsync(fd) != 0)
		rc = -errno;
	if (close(fd) != 0 && rc == 0)
		rc = -errno;
	return rc;
}

/*
 * Compaction (store.h), in the writer thread between batches: no write txn
 * is live and none can begin until this returns, so the copy's snapshot is
 * the last commit and swapping the copy in loses nothing.  Readers go on
 * during the copy (their snapshots are in the old file, which stays mapped
 * until the close); they are held off from just before the rename until
 * LMDB is open on the new file.  The directory is fsynced before any write
 * commits to the new file, so a crash cannot bring the old one back under
 * those writes.
 */
static int
writer_compact(struct store *s, struct store_compaction *res)
{
	struct store_compaction r = {0, 0, 0};
	uint64_t t0 = mono_ms(), t1 = 0, t2 = 0, t3 = 0, used, need, room = 0;
	MDB_envinfo info;
	struct stat sb;
	MDB_txn *txn;
	bool renamed = false;
	int rc, err, old = -1;

	*res = r;
	if ((rc = writer_ensure_env(s)) != 0)
		return rc;
	if ((rc = mdb_txn_begin(s->env, NULL, MDB_RDONLY, &txn)) != 0)
		return store_error_from_lmdb(rc);
	rc = store_space(s, txn, &r.before, &used);
	mdb_txn_abort(txn);
	if (rc != 0)
		return rc;
	if ((rc = disk_room(s, &room)) != 0)
		return rc;
	/* The copy is at most the pages in use (it leaves out the freelist
	 * too); a little more for the file system's own blocks. */
	need = used + used / 64 + (1u << 20);
	need = need > UINT64_MAX - s->compact_reserve
	    ? UINT64_MAX
	    : need + s->compact_reserve;
	if (room < need) {
		LOG_WARN("store: compaction skipped: %llu MiB free on disk, "
		         "the copy needs %llu MiB",
		         (unsigned long long)(room >> 20),
		         (unsigned long long)(need >> 20));
		pthread_mutex_lock(&s->mu);
		s->compact_skipped++;
		pthread_mutex_unlock(&s->mu);
		return -ENOSPC;
	}
	if ((rc = mdb_env_info(s->env, &info)) != 0)
		return store_error_from_lmdb(rc);
	s->reopen_map = info.me_mapsize;

	pthread_mutex_lock(&s->mu);
	s->compacting = true;
	pthread_mutex_unlock(&s->mu);
	if ((rc = writer_copy(s)) != 0)
		goto out;
	t1 = mono_ms();
	/* Keeps the old file's blocks until the readers are let go again:
	 * freeing a big file takes a while. */
	old = open(s->data_path, O_RDONLY | O_CLOEXEC);
	if ((rc = pthread_rwlock_wrlock(&s->maplock)) != 0) {
		rc = -rc;
		goto out;
	}
	if (rename(s->compact_path, s->data_path) != 0) {
		rc = -errno;
		pthread_rwlock_unlock(&s->maplock);
		goto out;
	}
	/* data.mdb is the copy now: the old env must not write again. */
	renamed = true;
	t2 = mono_ms();
	mdb_env_close(s->env);
	s->env = NULL;
	rc = writer_reopen_locked(s); /* logs; retried at the next write */
	pthread_rwlock_unlock(&s->maplock);
	t3 = mono_ms();
	if (old >= 0)
		close(old);
	old = -1;
	if ((err = fsync_dir(s->dir)) != 0) {
		LOG_ERROR("store: fsync of %s after compaction: %s", s->dir,
		          dyn_strerror(err));
		rc = rc ? rc : err;
	}
	r.after = stat(s->data_path, &sb) == 0 ? (uint64_t)sb.st_size : 0;
	r.ms = mono_ms() - t0;
out:
	if (old >= 0)
		close(old);
	if (!renamed)
		unlink(s->compact_path);
	pthread_mutex_lock(&s->mu);
	s->compacting = false;
	if (renamed) {
		s->compactions++;
		s->last = r;
	}
	pthread_mutex_unlock(&s->mu);
	if (renamed)
		LOG_INFO("store: compacted %llu MiB to %llu MiB in %llu ms "
		         "(copy %llu ms, readers held off %llu ms after "
		         "waiting %llu ms for them)",
		         (unsigned long long)(r.before >> 20),
		         (unsigned long long)(r.after >> 20),
		         (unsigned long long)r.ms,
		         (unsigned long long)(t1 - t0),
		         (unsigned long long)(t3 - t2),
		         (unsigned long long)(t2 - t1));
	else
		LOG_ERROR("store: compaction failed, %s left as it was: %s",
		          s->data_path, dyn_strerror(rc));
	*res = r;
	return rc;
}

/* The automatic check (store_opts.compact_check_ms): true when it
 * compacted (or tried), with the outcome in *rc and *res. */
static bool
writer_auto_compact(struct store *s, int *rc, struct store_compaction *res)
{
	uint64_t file, used;
	MDB_txn *txn;
	int err;

	if (writer_ensure_env(s) != 0 ||
	    mdb_txn_begin(s->env, NULL, MDB_RDONLY, &txn) != 0)
		return false;
	err = store_space(s, txn, &file, &used);
	mdb_txn_abort(txn);
	if (err != 0 || file / s->compact_ratio < used ||
	    file - used <= s->compact_min_free)
		return false;
	LOG_INFO("store: data file %llu MiB, %llu MiB of it in use: "
	         "compacting",
	         (unsigned long long)(file >> 20),
	         (unsigned long long)(used >> 20));
	*rc = writer_compact(s, res);
	return true;
}

/* Answer r (NULL: none) and every compaction request queued meanwhile with
 * one outcome: the file they would compact is the one just made. */
static void
compact_done_locked(struct store *s, struct store_req *r, int rc,
                    const struct store_compaction *res)
{
	struct store_req **pp = &s->head, *q;

	s->tail = NULL;
	while ((q = *pp) != NULL) {
		if (q->kind == REQ_COMPACT) {
			*pp = q->next;
			q->next = r;
			r = q;
			continue;
		}
		s->tail = q;
		pp = &q->next;
	}
	while (r) {
		q = r->next;
		r->rc = rc;
		*r->res = *res;
		r->done = true;
		pthread_cond_signal(&r->cv);
		r = q;
	}
}

static void
writer_wait_locked(struct store *s, uint64_t until_ms)
{
	struct timespec ts;

	if (until_ms == UINT64_MAX) {
		pthread_cond_wait(&s->work_cv, &s->mu);
		return;
	}
	ts.tv_sec = (time_t)(until_ms / 1000);
	ts.tv_nsec = (long)(until_ms % 1000) * 1000000;
	pthread_cond_timedwait(&s->work_cv, &s->mu, &ts); /* monotonic */
}

static void *
writer_main(void *arg)
{
	struct store *s = arg;
	struct store_compaction res;
	struct store_req *r;
	uint64_t next = UINT64_MAX;
	uint32_t n;
	int rc;

	if (s->compact_check_ms > 0)
		next = mono_ms() + (uint64_t)s->compact_check_ms;
	pthread_mutex_lock(&s->mu);
	for (;;) {
		if (next != UINT64_MAX && !s->closing && mono_ms() >= next) {
			pthread_mutex_unlock(&s->mu);
			bool ran = writer_auto_compact(s, &rc, &res);
			next = mono_ms() + (uint64_t)s->compact_check_ms;
			pthread_mutex_lock(&s->mu);
			if (ran)
				compact_done_locked(s, NULL, rc, &res);
			continue;
		}
		if (!s->head) {
			if (s->closing)
				break; /* drained */
			writer_wait_locked(s, next);
			continue;
		}
		if (s->head->kind == REQ_COMPACT) {
			r = s->head;
			s->head = r->next;
			r->next = NULL;
			if (!s->head)
				s->tail = NULL;
			memset(&res, 0, sizeof(res));
			rc = DYN_ECLOSED; /* no compaction on the way out */
			if (!s->closing) {
				pthread_mutex_unlock(&s->mu);
				rc = writer_compact(s, &res);
				pthread_mutex_lock(&s->mu);
			}
			compact_done_locked(s, r, rc, &res);
			continue;
		}
		for (n = 0; n < s->max_batch && s->head &&
		            s->head->kind != REQ_COMPACT;
		     n++) {
			r = s->head;
			s->head = r->next;
			s->batch[n] = r;
		}
		if (!s->head)
			s->tail = NULL;
		pthread_mutex_unlock(&s->mu);

		writer_batch(s, s->batch, n);

		/* Wake the waiters; the asynchronous requests' callbacks run
		 * after, outside the lock (batch[] is reused for them). */
		uint32_t na = 0;
		pthread_mutex_lock(&s->mu);
		for (uint32_t i = 0; i < n; i++) {
			r = s->batch[i];
			if (r->done_fn) {
				s->batch[na++] = r;
				continue;
			}
			r->done = true;
			pthread_cond_signal(&r->cv);
		}
		if (na > 0) {
			pthread_mutex_unlock(&s->mu);
			for (uint32_t i = 0; i < na; i++) {
				r = s->batch[i];
				r->done_fn(r->done_arg, r->rc);
				mem_free(r);
			}
			pthread_mutex_lock(&s->mu);
		}
	}
	pthread_mutex_unlock(&s->mu);
	return NULL;
}

/* r as an update of key (its data key already in r) in dbi by fn. */
static void
req_update(struct store_req *r, MDB_dbi dbi, const void *key, size_t klen,
    store_apply_fn fn, void *arg)
{
	r->kind = REQ_UPDATE;
	r->dbi = dbi;
	r->key = key;
	r->klen = klen;
	r->fn = fn;
	r->arg = arg;
}

/* Append r to the writer's queue (s->mu held). */
static void
queue_locked(struct store *s, struct store_req *r)
{
	if (s->tail)
		s->tail->next = r;
	else
		s->head = r;
	s->tail = r;
}

/* Queue r and wait for its batch to commit. */
/* Queue n requests at once (they may land in one batch) and wait for
 * all of them. */
static int
store_submit_many(struct store *s, struct store_req *rs, size_t n)
{
	int rc = 0;
	size_t inited = 0;

	if (s->writer_ok && pthread_equal(pthread_self(), s->writer))
		return -EDEADLK; /* called from an apply function */
	if (read_held(s))
		return -EDEADLK; /* a map resize would wait for us */
	for (; inited < n; inited++) {
		struct store_req *r = &rs[inited];
		if ((rc = -pthread_cond_init(&r->cv, NULL)) != 0)
			goto out_destroy;
		r->next = NULL;
		r->rc = 0;
		r->failed = false;
		r->done = false;
	}

	pthread_mutex_lock(&s->mu);
	if (s->closing) {
		rc = DYN_ECLOSED;
		for (size_t i = 0; i < n; i++)
			rs[i].rc = rc;
		goto out;
	}
	for (size_t i = 0; i < n; i++)
		queue_locked(s, &rs[i]);
	pthread_cond_signal(&s->work_cv);
	for (size_t i = 0; i < n; i++)
		while (!rs[i].done)
			pthread_cond_wait(&rs[i].cv, &s->mu);
out:
	pthread_mutex_unlock(&s->mu);
out_destroy:
	for (size_t i = 0; i < inited; i++)
		pthread_cond_destroy(&rs[i].cv);
	return rc;
}

static int
store_submit(struct store *s, struct store_req *r)
{
	int rc = store_submit_many(s, r, 1);
	return rc ? rc : r->rc;
}

int
store_update_many(struct store *s, struct store_update *ups, size_t n)
{
	int rc = 0;
	struct store_req *rs = mem_calloc(n ? n : 1, sizeof(*rs));
	if (!rs)
		return -ENOMEM;
	size_t k = 0;
	for (size_t i = 0; i < n; i++) {
		struct store_req *r = &rs[k];
		ups[i].rc = store_dkey(s, ups[i].key, ups[i].klen, r->dkbuf,
		    &r->dkey);
		if (ups[i].rc)
			continue;
		req_update(r, s->objects, ups[i].key, ups[i].klen, ups[i].fn,
		    ups[i].arg);
		r->vlen = i; /* which update this is */
		k++;
	}
	rc = store_submit_many(s, rs, k);
	for (size_t j = 0; j < k; j++)
		ups[rs[j].vlen].rc = rc ? rc : rs[j].rc;
	mem_free(rs);
	return rc;
}

int
store_gc_apply(struct store *s, struct store_gc_op *ops, size_t n)
{
	int rc = 0;
	struct store_req *rs = mem_calloc(n ? n : 1, sizeof(*rs));
	if (!rs)
		return -ENOMEM;
	size_t k = 0;
	for (size_t i = 0; i < n; i++) {
		struct store_req *r = &rs[k];
		if (!blob_is_key(ops[i].key, ops[i].klen)) {
			ops[i].rc = -EINVAL;
			continue;
		}
		ops[i].rc = store_dkey(s, ops[i].key, ops[i].klen, r->dkbuf,
		                       &r->dkey);
		if (ops[i].rc)
			continue;
		r->kind = REQ_GC;
		r->gc = ops[i].kind;
		r->condemned_at = ops[i].condemned_at;
		r->key = ops[i].key;
		r->klen = ops[i].klen;
		r->vlen = i; /* which operation this is */
		k++;
	}
	rc = store_submit_many(s, rs, k);
	for (size_t j = 0; j < k; j++)
		ops[rs[j].vlen].rc = rc ? rc : rs[j].rc;
	mem_free(rs);
	return rc;
}

int
store_update(struct store *s, const void *key, size_t klen, store_apply_fn fn,
             void *arg)
{
	struct store_req r;
	int rc;

	memset(&r, 0, sizeof(r));
	if ((rc = store_dkey(s, key, klen, r.dkbuf, &r.dkey)) != 0)
		return rc;
	req_update(&r, s->objects, key, klen, fn, arg);
	return store_submit(s, &r);
}

int
store_update_async(struct store *s, const void *key, size_t klen,
    store_apply_fn fn, void *arg, store_done_fn done, void *done_arg)
{
	return store_update_async_applied(s, key, klen, fn, arg, NULL, done,
	    done_arg);
}

int
store_update_async_applied(struct store *s, const void *key, size_t klen,
    store_apply_fn fn, void *arg, store_applied_fn applied,
    store_done_fn done, void *done_arg)
{
	if (s->writer_ok && pthread_equal(pthread_self(), s->writer))
		return -EDEADLK; /* as store_update: no write from an apply
		                    function or a done callback */
	struct store_req *r = mem_calloc(1, sizeof(*r));
	if (!r)
		return -ENOMEM;
	int rc = store_dkey(s, key, klen, r->dkbuf, &r->dkey);
	if (rc) {
		mem_free(r);
		return rc;
	}
	req_update(r, s->objects, key, klen, fn, arg);
	r->done_fn = done;
	r->done_arg = done_arg;
	r->applied_fn = applied;
	pthread_mutex_lock(&s->mu);
	if (s->closing) {
		pthread_mutex_unlock(&s->mu);
		mem_free(r);
		return DYN_ECLOSED;
	}
	queue_locked(s, r);
	pthread_cond_signal(&s->work_cv);
	pthread_mutex_unlock(&s->mu);
	return 0;
}

int
store_apply_merge(struct vset *cur, void *arg)
{
	int rc = vset_merge(cur, arg);

	if (rc < 0)
		return rc;
	return rc ? 0 : STORE_SKIP;
}

/* Conditional delete: arg says what the caller saw. */
struct delete_cond {
	const struct vset *seen;
	bool exact; /* cur must also contain seen (no version went away) */
};

static int
apply_delete_if(struct vset *cur, void *arg)
{
	const struct delete_cond *c = arg;

	if (cur->n == 0)
		return STORE_SKIP; /* absent: nothing to delete */
	if (!vset_contains(c->seen, cur) ||
	    (c->exact && !vset_contains(cur, c->seen)))
		return STORE_KEPT;
	vset_fini(cur); /* an empty set deletes the record */
	return 0;
}

int
store_apply_delete_exact(struct vset *cur, void *expected)
{
	struct delete_cond c = {expected, true};

	return apply_delete_if(cur, &c);
}

/* Run fn on the record at r->dkey of dbi: fn's result (STORE_SKIP too),
 * or the commit's error. */
static int
store_update_dkey(struct store *s, struct store_req *r, MDB_dbi dbi,
                  const void *key, size_t klen, store_apply_fn fn, void *arg)
{
	req_update(r, dbi, key, klen, fn, arg);
	return store_submit(s, r);
}

int
store_delete_if(struct store *s, const void *key, size_t klen,
                const struct vset *expected)
{
	struct store_req r;
	int rc;

	memset(&r, 0, sizeof(r));
	if ((rc = store_dkey(s, key, klen, r.dkbuf, &r.dkey)) != 0)
		return rc;
	rc = store_update_dkey(s, &r, s->objects, key, klen,
	                       store_apply_delete_exact, (void *)expected);
	return rc == STORE_SKIP ? 0 : rc;
}

int
store_hint_add(struct store *s, const char *target, const void *key,
               size_t klen, const struct vset *set)
{
	struct store_req r;
	int rc;

	memset(&r, 0, sizeof(r));
	if ((rc = store_hint_dkey(s, target, key, klen, r.dkbuf, &r.dkey)))
		return rc;
	/* store_apply_merge only reads the set: vset_merge's src is
	 * const. */
	rc = store_update_dkey(s, &r, s->hints, key, klen, store_apply_merge,
	                       (void *)set);
	if (rc == 0) /* the hint grew (STORE_SKIP: it held all of set) */
		atomic_fetch_add(&s->hints_added, 1);
	return rc == STORE_SKIP ? 0 : rc;
}

int
store_hint_remove(struct store *s, const char *target, const void *key,
                  size_t klen, const struct vset *delivered)
{
	struct delete_cond c = {delivered, false};
	struct store_req r;
	int rc;

	memset(&r, 0, sizeof(r));
	if ((rc = store_hint_dkey(s, target, key, klen, r.dkbuf, &r.dkey)))
		return rc;
	rc = store_update_dkey(s, &r, s->hints, key, klen, apply_delete_if,
	                       &c);
	return rc == STORE_SKIP ? 0 : rc;
}

int
store_meta_put(struct store *s, const char *name, const void *val, size_t len)
{
	struct store_req r;
	size_t nlen = strlen(name);

	if (nlen == 0 || nlen > META_NAME_MAX)
		return -EINVAL;
	if (len > META_VALUE_MAX)
		return DYN_ETOOBIG;
	memset(&r, 0, sizeof(r));
	r.kind = REQ_META;
	memcpy(r.dkbuf, name, nlen);
	r.dkey.mv_data = r.dkbuf;
	r.dkey.mv_size = nlen;
	r.val = val;
	r.vlen = len;
	return store_submit(s, &r);
}

int
store_compact(struct store *s, struct store_compaction *out)
{
	struct store_compaction res = {0, 0, 0};
	struct store_req r;
	int rc;

	memset(&r, 0, sizeof(r));
	r.kind = REQ_COMPACT;
	r.res = &res;
	rc = store_submit(s, &r);
	if (out)
		*out = res;
	return rc;
}

/*
 * Open and close.
 */

static int
mkdir_p(const char *dir)
{
	char *p, *path;
	int rc = 0;

	if (!(path = mem_dup(dir, strlen(dir) + 1)))
		return -ENOMEM;
	for (p = path + 1;; p++) {
		if (*p != '/' && *p != '\0')
			continue;
		char c = *p;
		*p = '\0';
		if (mkdir(path, 0755) != 0 && errno != EEXIST) {
			rc = -errno;
			goto out;
		}
		*p = c;
		if (c == '\0')
			break;
	}
out:
	mem_free(path);
	return rc;
}

static int
store_open_env(struct store *s, uint64_t map)
{
	MDB_dbi d[4];
	int rc, mkey;

	if ((rc = env_open(s->dir, s->env_flags, map, &s->env, d)) != 0)
		return rc;
	s->objects = d[0];
	s->hints = d[1];
	s->meta = d[2];
	s->gc = d[3];
	mkey = mdb_env_get_maxkeysize(s->env);
	s->maxkey = mkey > 0 && mkey < DKEY_MAX ? (size_t)mkey : DKEY_MAX;
	if (s->maxkey < STORE_DKEY_MIN)
		return -EINVAL;
	return 0;
}

/*
 * The meaning of the stored keys: format 2 places a key that begins with
 * 0xFF by its placement header (common/keypos.h).  A store without the
 * record is of format 1, from before: the same but for such keys, which
 * none of the project's clients wrote (file system keys begin with '/' or
 * a type letter, blobs with 'B'), so it is stamped 2.  Any other format is
 * refused: its positions would not be this node's.
 */
static int
store_format_check(struct store *s)
{
	uint8_t v[4];
	size_t len = 0;
	int rc = store_meta_get(s, STORE_FORMAT_META, v, sizeof(v), &len);
	if (rc == -ENOENT) {
		be_put_u32(v, STORE_FORMAT);
		return store_meta_put(s, STORE_FORMAT_META, v, sizeof(v));
	}
	if (rc != 0)
		return rc;
	uint32_t have = len == sizeof(v) ? be_get_u32(v) : 0;
	if (have != STORE_FORMAT) {
		LOG_ERROR("store: %s holds store format %u (%zu bytes), this "
		          "dynamod reads format %u only: start the dynamod "
		          "that wrote it, or a new data directory",
		          s->dir, have, len, STORE_FORMAT);
		return DYN_EPROTO;
	}
	return 0;
}

/* dir/name, mem_alloc'd. */
static char *
path_in(const char *dir, const char *name)
{
	size_t n = strlen(dir) + 1 + strlen(name) + 1;
	char *p = mem_alloc(n);

	if (p)
		snprintf(p, n, "%s/%s", dir, name);
	return p;
}

int
store_open(const struct store_opts *o, struct store **out)
{
	pthread_rwlockattr_t ra;
	struct store *s;
	uint64_t map;
	int rc;

	*out = NULL;
	if (!o->dir || !*o->dir)
		return -EINVAL;
	if (!(s = mem_calloc(1, sizeof(*s))))
		return -ENOMEM;
	buf_init(&s->enc);
	atomic_init(&s->commits, 0);
	atomic_init(&s->updates, 0);
	atomic_init(&s->hints_added, 0);
	hist_init(&s->batches, batch_bounds,
	          sizeof(batch_bounds) / sizeof(batch_bounds[0]));
	hist_init(&s->commit_us, commit_bounds,
	          sizeof(commit_bounds) / sizeof(commit_bounds[0]));
	s->fsync = o->fsync;
	s->max_batch = o->max_batch ? o->max_batch : STORE_BATCH;
	s->map_max = o->map_max ? o->map_max : STORE_MAP_MAX;
	s->max_value = o->max_value ? o->max_value : WIRE_MAX_VALUE;
	map = o->map_init ? o->map_init : STORE_MAP_INIT;
	if (map > s->map_max)
		map = s->map_max;
	s->env_flags = MDB_NOTLS | (o->fsync ? 0 : MDB_NOSYNC);
	s->compact_check_ms = o->compact_check_ms;
	s->compact_ratio = o->compact_ratio ? o->compact_ratio : COMPACT_RATIO;
	s->compact_min_free =
	    o->compact_min_free ? o->compact_min_free : COMPACT_MIN_FREE;
	s->compact_reserve = o->compact_reserve;

	if (!(s->batch = mem_calloc(s->max_batch, sizeof(*s->batch)))) {
		rc = -ENOMEM;
		goto fail;
	}
	if ((rc = mkdir_p(o->dir)) != 0)
		goto fail;
	s->dir = mem_dup(o->dir, strlen(o->dir) + 1);
	s->data_path = path_in(o->dir, DATA_FILE);
	s->compact_path = path_in(o->dir, COMPACT_FILE);
	if (!s->dir || !s->data_path || !s->compact_path) {
		rc = -ENOMEM;
		goto fail;
	}
	/* A compaction that did not get to its rename: data.mdb is whole. */
	if (unlink(s->compact_path) == 0) {
		LOG_WARN("store: removed %s, left by an interrupted compaction",
		         s->compact_path);
	} else if (errno != ENOENT) {
		rc = -errno;
		goto fail;
	}
	/* LMDB maps its lock file: on a full file system the first touch of
	 * a page of it is a SIGBUS, not an error.  Say so instead. */
	if (disk_full(s)) {
		LOG_ERROR("store: no space left on the file system of %s: "
		          "free some before starting the node", s->dir);
		rc = -ENOSPC;
		goto fail;
	}
	if ((rc = store_open_env(s, map)) != 0)
		goto fail;

	if ((rc = pthread_rwlockattr_init(&ra)) != 0) {
		rc = -rc;
		goto fail;
	}
	pthread_rwlockattr_setkind_np(
	    &ra, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
	rc = pthread_rwlock_init(&s->maplock, &ra);
	pthread_rwlockattr_destroy(&ra);
	if (rc != 0) {
		rc = -rc;
		goto fail;
	}
	s->maplock_ok = true;
	if ((rc = pthread_mutex_init(&s->mu, NULL)) != 0) {
		rc = -rc;
		goto fail;
	}
	s->mu_ok = true;
	/* The writer's wait for work times out for the compaction check,
	 * measured on the monotonic clock. */
	if ((rc = mono_cond_init(&s->work_cv)) != 0)
		goto fail;
	s->work_cv_ok = true;
	if ((rc = pthread_create(&s->writer, NULL, writer_main, s)) != 0) {
		rc = -rc;
		goto fail;
	}
	s->writer_ok = true;
	if ((rc = store_format_check(s)) != 0)
		goto fail;
	*out = s;
	return 0;
fail:
	store_close(s);
	return rc;
}

void
store_close(struct store *s)
{
	if (!s)
		return;
	if (s->writer_ok) {
		pthread_mutex_lock(&s->mu);
		s->closing = true;
		pthread_cond_signal(&s->work_cv);
		pthread_mutex_unlock(&s->mu);
		pthread_join(s->writer, NULL);
	}
	if (s->env)
		mdb_env_close(s->env);
	if (s->work_cv_ok)
		pthread_cond_destroy(&s->work_cv);
	if (s->mu_ok)
		pthread_mutex_destroy(&s->mu);
	if (s->maplock_ok)
		pthread_rwlock_destroy(&s->maplock);
	buf_fini(&s->enc);
	mem_free(s->batch);
	mem_free(s->dir);
	mem_free(s->data_path);
	mem_free(s->compact_path);
	mem_free(s);
}
