/*
 * wire — building and checking messages.
 *
 *   wire_begin ─ wire_put* ─ wire_seal           (sender)
 *       │           │            └ patch body length, append HMAC
 *       │           └ u16 tag | u32 len | bytes; field count += 1 in place
 *       └ 56-byte header at offset 0 of the buf, lengths zero
 *
 *   wire_decode: sizes → magic → version → body length → field count
 *                → role and key id → HMAC → type → fields (each bounded
 *                by the body)
 *
 * The field count lives in the header while building, so a struct buf is
 * the whole builder state.  Decoding trusts nothing before the HMAC has
 * been checked except the fixed-size header, and every length is compared
 * against what is left rather than added to an offset, so no sum can wrap.
 */
#include "wire.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include "blob.h"
#include "err.h"

#define OFF_MAGIC   0
#define OFF_VERSION 4
#define OFF_TYPE    5
#define OFF_FLAGS   6
#define OFF_REQID   8
#define OFF_BODYLEN 16
#define OFF_NFIELDS 20
#define OFF_ROLE    24
#define OFF_KEYID   28
#define OFF_SENDER  32
#define OFF_SEQ     40
#define OFF_TIME    48
#define FIELD_HDR   6 /* u16 tag + u32 length */

static void
set_err(struct buf *b, int err)
{
	if (b->err == 0)
		b->err = err;
}

/* Count one more field in the header being built. */
static void
count_field(struct buf *b)
{
	uint32_t n;

	if (b->err)
		return;
	if (b->len < WIRE_HDR_LEN) {
		set_err(b, -EINVAL); /* no wire_begin */
		return;
	}
	n = be_get_u32(b->data + OFF_NFIELDS);
	if (n >= WIRE_MAX_FIELDS) {
		set_err(b, DYN_ETOOBIG);
		return;
	}
	be_put_u32(b->data + OFF_NFIELDS, n + 1);
}

/* The message always starts at offset 0: a reused buf is emptied first
 * (which also clears an error left from its previous message). */
void
wire_begin(struct buf *b, uint8_t type, uint16_t flags, uint64_t reqid)
{
	buf_reset(b);
	buf_put_u32(b, WIRE_MAGIC);
	buf_put_u8(b, WIRE_VERSION);
	buf_put_u8(b, type);
	buf_put_u16(b, flags);
	buf_put_u64(b, reqid);
	buf_put_u32(b, 0); /* body length, set by wire_seal */
	buf_put_u32(b, 0); /* field count, counted by count_field */
	/* role ... time: wire_seal's */
	uint8_t *rest = buf_extend(b, WIRE_HDR_LEN - OFF_ROLE);
	if (rest)
		memset(rest, 0, WIRE_HDR_LEN - OFF_ROLE);
}

void
wire_put(struct buf *b, uint16_t tag, const void *p, size_t len)
{
	if (len > WIRE_MAX_MSG) {
		set_err(b, DYN_ETOOBIG);
		return;
	}
	count_field(b);
	buf_put_u16(b, tag);
	buf_put_u32(b, (uint32_t)len);
	buf_put(b, p, len);
}

void
wire_put_u32(struct buf *b, uint16_t tag, uint32_t v)
{
	uint8_t d[4];

	be_put_u32(d, v);
	wire_put(b, tag, d, sizeof(d));
}

void
wire_put_u64(struct buf *b, uint16_t tag, uint64_t v)
{
	uint8_t d[8];

	be_put_u64(d, v);
	wire_put(b, tag, d, sizeof(d));
}

void
wire_put_str(struct buf *b, uint16_t tag, const char *s)
{
	wire_put(b, tag, s, s ? strlen(s) : 0);
}

size_t
wire_begin_field(struct buf *b, uint16_t tag)
{
	size_t at;

	count_field(b);
	buf_put_u16(b, tag);
	at = b->len;
	buf_put_u32(b, 0);
	return at;
}

void
wire_end_field(struct buf *b, size_t at)
{
	size_t n;

	if (b->err)
		return;
	if (at < WIRE_HDR_LEN || at > b->len || b->len - at < 4) {
		set_err(b, -EINVAL);
		return;
	}
	n = b->len - at - 4;
	if (n > WIRE_MAX_MSG) {
		set_err(b, DYN_ETOOBIG);
		return;
	}
	be_put_u32(b->data + at, (uint32_t)n);
}

static uint16_t
hdr_flags(const uint8_t *msg)
{
	return (uint16_t)(msg[OFF_FLAGS] << 8 | msg[OFF_FLAGS + 1]);
}

/* The one F_VALUE field's bytes in body[0..len) (a message we built, or
 * one whose fields were checked): offset and length, or -1. */
static long
value_span(const uint8_t *body, size_t len, uint32_t nfields, uint32_t *vlen)
{
	struct rd r;
	long at = -1;
	rd_init(&r, body, len);
	for (uint32_t i = 0; i < nfields; i++) {
		uint16_t tag;
		uint32_t n;
		const uint8_t *p;
		if (rd_u16(&r, &tag) != 0 || rd_u32(&r, &n) != 0 ||
		    rd_bytes(&r, n, &p) != 0)
			return -1;
		if (tag == F_VALUE) {
			if (at >= 0)
				return -1; /* one value only */
			at = p - body;
			*vlen = n;
		}
	}
	return at;
}

/* The tag of a message, skipping [skip, skip + skiplen) of it. */
static int
tag_of(const struct auth_key *k, const uint8_t *msg, size_t len, size_t skip,
       size_t skiplen, uint8_t tag[AUTH_TAG_LEN])
{
	return auth_tag(k, msg, skip, msg + skip + skiplen,
	                len - skip - skiplen, tag);
}

/*
 * The sender id is random per process, so two processes never share a
 * sequence space; a forked child (the mount daemonizes) gets its own, or
 * parent and child would send the same (sender, seq) pairs.
 */
static pthread_once_t sender_once = PTHREAD_ONCE_INIT;
static _Atomic uint64_t sender_id;
static _Atomic uint64_t sender_seq;

static void
sender_renew(void)
{
	uint64_t id = 0;
	while (id == 0)
		if (RAND_bytes((unsigned char *)&id, sizeof(id)) != 1)
			id = (uint64_t)time(NULL) ^ (uint64_t)clock();
	atomic_store(&sender_id, id);
	atomic_store(&sender_seq, 0);
}

static void
sender_init(void)
{
	sender_renew();
	pthread_atfork(NULL, NULL, sender_renew);
}

uint64_t
wire_sender(void)
{
	pthread_once(&sender_once, sender_init);
	return atomic_load(&sender_id);
}

uint64_t
wire_clock_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

int
wire_seal(struct buf *b, const struct auth_keys *k)
{
	return wire_seal_as(b, k, k->self);
}

int
wire_seal_as(struct buf *b, const struct auth_keys *ks, enum auth_role role)
{
	uint8_t *t;
	size_t body;
	int rc;

	if (b->err)
		return b->err;
	if (b->len < WIRE_HDR_LEN) {
		set_err(b, -EINVAL);
		return b->err;
	}
	const struct auth_key *k = auth_role_key(ks, 0, role);
	if (k == NULL) {
		set_err(b, -EPERM);
		return b->err;
	}
	/* Sealed before: drop the old tag (the body length says where the
	 * message ended). */
	uint32_t was = be_get_u32(b->data + OFF_BODYLEN);
	if (be_get_u64(b->data + OFF_SENDER) != 0) {
		if (b->len != WIRE_HDR_LEN + (size_t)was + AUTH_TAG_LEN) {
			set_err(b, -EINVAL);
			return b->err;
		}
		b->len -= AUTH_TAG_LEN;
	}
	body = b->len - WIRE_HDR_LEN;
	if (body > WIRE_MAX_MSG - WIRE_HDR_LEN - AUTH_TAG_LEN) {
		set_err(b, DYN_ETOOBIG);
		return b->err;
	}
	be_put_u32(b->data + OFF_BODYLEN, (uint32_t)body);
	b->data[OFF_ROLE] = (uint8_t)role;
	be_put_u32(b->data + OFF_KEYID, ks->gen[0].id);
	be_put_u64(b->data + OFF_SENDER, wire_sender());
	be_put_u64(b->data + OFF_SEQ, atomic_fetch_add(&sender_seq, 1) + 1);
	be_put_u64(b->data + OFF_TIME, wire_clock_ms());
	size_t skip = 0;
	uint32_t vlen = 0;
	if (hdr_flags(b->data) & WIRE_H_BLOB) {
		long at = value_span(b->data + WIRE_HDR_LEN, body,
		                     be_get_u32(b->data + OFF_NFIELDS), &vlen);
		if (at < 0) {
			set_err(b, -EINVAL);
			return b->err;
		}
		skip = WIRE_HDR_LEN + (size_t)at;
	}
	if ((t = buf_extend(b, AUTH_TAG_LEN)) == NULL)
		return b->err;
	rc = skip ? tag_of(k, b->data, b->len - AUTH_TAG_LEN, skip, vlen, t)
	          : auth_tag(k, b->data, b->len - AUTH_TAG_LEN, NULL, 0, t);
	if (rc != 0)
		set_err(b, rc);
	return b->err;
}

/*
 * A message whose tag skips its value (WIRE_H_BLOB): the tag must match
 * over the rest, and the value must be the blob its F_KEY names (a blob's
 * name is a MAC of its bytes under a key derived from the cluster key), so
 * every byte is still authenticated, the value by one pass instead of two.
 */
static int
blob_check(const struct auth_key *k, const struct auth_key *blobk,
           const uint8_t *buf, size_t len, uint32_t nfields,
           const struct wire_msg *m)
{
	const struct wire_field *key = NULL, *val = NULL;
	for (uint32_t i = 0; i < nfields; i++) {
		if (m->f[i].tag == F_KEY && !key)
			key = &m->f[i];
		else if (m->f[i].tag == F_VALUE && !val)
			val = &m->f[i];
		else if (m->f[i].tag == F_KEY || m->f[i].tag == F_VALUE)
			return DYN_EBADMSG;
	}
	if (!key || !val || !blob_is_key(key->data, key->len))
		return DYN_EBADMSG;
	uint8_t t[AUTH_TAG_LEN], name[BLOB_NAME_LEN];
	size_t skip = (size_t)(val->data - buf);
	if (tag_of(k, buf, len - AUTH_TAG_LEN, skip, val->len, t) != 0 ||
	    CRYPTO_memcmp(t, buf + len - AUTH_TAG_LEN, AUTH_TAG_LEN) != 0)
		return DYN_EAUTH;
	struct blob_key bk;
	memcpy(bk.k, blobk->k, sizeof(bk.k));
	blob_name(&bk, val->data, val->len, name);
	if (CRYPTO_memcmp(name, key->data + 1, BLOB_NAME_LEN) != 0)
		return DYN_EAUTH;
	return 0;
}

int
wire_decode(const struct auth_keys *ks, const uint8_t *buf, size_t len,
            struct wire_msg *m)
{
	const uint8_t *tag;
	struct rd r;
	uint32_t bodylen;
	uint32_t nfields;
	uint8_t type;

	m->nfields = 0;
	if (len < WIRE_HDR_LEN + AUTH_TAG_LEN)
		return DYN_EBADMSG;
	if (len > WIRE_MAX_MSG)
		return DYN_ETOOBIG;
	if (be_get_u32(buf + OFF_MAGIC) != WIRE_MAGIC)
		return DYN_EBADMSG;
	if (buf[OFF_VERSION] != WIRE_VERSION)
		return DYN_EPROTO;
	bodylen = be_get_u32(buf + OFF_BODYLEN);
	if (bodylen != len - WIRE_HDR_LEN - AUTH_TAG_LEN)
		return DYN_EBADMSG;
	nfields = be_get_u32(buf + OFF_NFIELDS);
	if (nfields > WIRE_MAX_FIELDS)
		return DYN_EBADMSG;
	uint8_t role = buf[OFF_ROLE];
	if (role >= AUTH_NROLES || buf[OFF_ROLE + 1] || buf[OFF_ROLE + 2] ||
	    buf[OFF_ROLE + 3])
		return DYN_EBADMSG;
	uint32_t keyid = be_get_u32(buf + OFF_KEYID);
	const struct auth_key *k = keyid ? auth_role_key(ks, keyid, role) : NULL;
	if (k == NULL)
		return DYN_EAUTH; /* a key we do not hold: cannot be checked */
	tag = buf + len - AUTH_TAG_LEN;
	uint16_t hflags = hdr_flags(buf);
	if (!(hflags & WIRE_H_BLOB) &&
	    !auth_check(k, buf, len - AUTH_TAG_LEN, NULL, 0, tag))
		return DYN_EAUTH;
	type = buf[OFF_TYPE];
	if (type == 0 || type >= WIRE_TYPE_END)
		return DYN_EBADMSG;

	rd_init(&r, buf + WIRE_HDR_LEN, bodylen);
	for (uint32_t i = 0; i < nfields; i++) {
		struct wire_field *f = &m->f[i];

		if (rd_u16(&r, &f->tag) != 0 || rd_u32(&r, &f->len) != 0 ||
		    rd_bytes(&r, f->len, &f->data) != 0)
			return DYN_EBADMSG;
	}
	if (rd_left(&r) != 0)
		return DYN_EBADMSG;
	if (hflags & WIRE_H_BLOB) {
		int rc = blob_check(k, &ks->blob, buf, len, nfields, m);
		if (rc != 0)
			return rc;
	}

	m->type = type;
	m->flags = (uint16_t)(buf[OFF_FLAGS] << 8 | buf[OFF_FLAGS + 1]);
	m->reqid = be_get_u64(buf + OFF_REQID);
	m->role = (enum auth_role)role;
	m->keyid = keyid;
	m->sender = be_get_u64(buf + OFF_SENDER);
	m->seq = be_get_u64(buf + OFF_SEQ);
	m->time_ms = be_get_u64(buf + OFF_TIME);
	m->nfields = nfields;
	return 0;
}

bool
wire_role_may(enum auth_role role, uint8_t type)
{
	switch (type) {
	case WIRE_GET_REQ:
	case WIRE_PUT_REQ:
	case WIRE_RANGE_REQ:
	case WIRE_RING_REQ:
	case WIRE_PING_REQ:
	case WIRE_STATUS_REQ:
		return true;
	case WIRE_LEAVE_REQ:
	case WIRE_REMOVE_REQ:
	case WIRE_COMPACT_REQ:
	case WIRE_FAULT_REQ:
		return role == AUTH_ADMIN || role == AUTH_NODE;
	default:
		return role == AUTH_NODE;
	}
}

const struct wire_field *
wire_find(const struct wire_msg *m, uint16_t tag)
{
	for (uint32_t i = 0; i < m->nfields && i < WIRE_MAX_FIELDS; i++)
		if (m->f[i].tag == tag)
			return &m->f[i];
	return NULL;
}

static int
get_fixed(const struct wire_msg *m, uint16_t tag, uint32_t size,
          const uint8_t **p)
{
	const struct wire_field *f = wire_find(m, tag);

	if (f == NULL)
		return -ENOENT;
	if (f->len != size)
		return DYN_EBADMSG;
	*p = f->data;
	return 0;
}

int
wire_get_u32(const struct wire_msg *m, uint16_t tag, uint32_t *v)
{
	const uint8_t *p;
	int rc = get_fixed(m, tag, 4, &p);

	if (rc == 0)
		*v = be_get_u32(p);
	return rc;
}

int
wire_get_u64(const struct wire_msg *m, uint16_t tag, uint64_t *v)
{
	const uint8_t *p;
	int rc = get_fixed(m, tag, 8, &p);

	if (rc == 0)
		*v = be_get_u64(p);
	return rc;
}

int
wire_get_i32(const struct wire_msg *m, uint16_t tag, int32_t *v)
{
	uint32_t u;
	int rc = wire_get_u32(m, tag, &u);

	/* Two's complement without the implementation-defined conversion of
	 * an out-of-range unsigned value. */
	if (rc == 0)
		*v = u <= INT32_MAX ? (int32_t)u
		                    : -(int32_t)(UINT32_MAX - u) - 1;
	return rc;
}

int
wire_get_str(const struct wire_msg *m, uint16_t tag, char *out, size_t cap)
{
	const struct wire_field *f;
	size_t n;

	if (cap == 0)
		return -EINVAL;
	if ((f = wire_find(m, tag)) == NULL)
		return -ENOENT;
	n = f->len < cap - 1 ? f->len : cap - 1;
	if (n > 0)
		memcpy(out, f->data, n);
	out[n] = '\0';
	return 0;
}
