#include "view.h"

#include <errno.h>
#include <string.h>

#include "err.h"
#include "mem.h"
#include "wire.h"

void
view_encode(const struct view *v, struct buf *b)
{
	buf_put_u8(b, v->has_settings);
	buf_put_u32(b, v->settings.n);
	buf_put_u32(b, v->settings.r);
	buf_put_u32(b, v->settings.w);
	buf_put_u16(b, (uint16_t)v->n);
	for (size_t i = 0; i < v->n; i++) {
		const struct member *m = &v->members[i];
		buf_put_blob(b, m->name, strlen(m->name));
		buf_put_blob(b, m->addr, strlen(m->addr));
		buf_put_u64(b, m->incarnation);
		buf_put_u64(b, m->version);
		buf_put_u8(b, m->status);
		buf_put_u64(b, m->ring_seen);
		buf_put_u64(b, m->ready);
	}
	buf_put_u8(b, v->ring != NULL);
	if (v->ring) {
		struct buf rb;
		buf_init(&rb);
		ring_encode(v->ring, &rb);
		if (buf_err(&rb))
			b->err = buf_err(&rb);
		buf_put_blob(b, rb.data, rb.len);
		buf_fini(&rb);
	}
}

/* A NUL-free, non-empty string of at most cap - 1 bytes, NUL-terminated
 * into out. */
static int
rd_str(struct rd *r, char *out, size_t cap)
{
	const uint8_t *p;
	size_t n;
	int rc = rd_blob(r, cap - 1, &p, &n);
	if (rc)
		return rc;
	if (n == 0 || memchr(p, 0, n))
		return DYN_EBADMSG;
	memcpy(out, p, n);
	out[n] = '\0';
	return 0;
}

int
view_decode(const void *p, size_t len, struct view *out)
{
	struct rd r;
	uint8_t has_settings, has_ring;
	struct cluster_settings s;
	uint16_t n;

	memset(out, 0, sizeof(*out));
	rd_init(&r, p, len);
	if (rd_u8(&r, &has_settings) || rd_u32(&r, &s.n) || rd_u32(&r, &s.r) ||
	    rd_u32(&r, &s.w) || rd_u16(&r, &n) || n > GOSSIP_MEMBERS_MAX)
		return DYN_EBADMSG;
	struct member *in = mem_calloc(n ? n : 1, sizeof(*in));
	if (!in)
		return -ENOMEM;
	int rc = 0;
	for (uint16_t i = 0; i < n && rc == 0; i++) {
		struct member *m = &in[i];
		if ((rc = rd_str(&r, m->name, sizeof(m->name))) ||
		    (rc = rd_str(&r, m->addr, sizeof(m->addr))) ||
		    (rc = rd_u64(&r, &m->incarnation)) ||
		    (rc = rd_u64(&r, &m->version)) ||
		    (rc = rd_u8(&r, &m->status)) ||
		    (rc = rd_u64(&r, &m->ring_seen)) ||
		    (rc = rd_u64(&r, &m->ready)))
			break;
		if (m->status < MEMBER_UP || m->status > MEMBER_LEFT)
			rc = DYN_EBADMSG;
	}
	struct ring *ring = NULL;
	if (rc == 0 && (rc = rd_u8(&r, &has_ring)) == 0 && has_ring) {
		const uint8_t *rp;
		size_t rl;
		struct rd rr;
		if ((rc = rd_blob(&r, WIRE_MAX_MSG, &rp, &rl)) == 0) {
			rd_init(&rr, rp, rl);
			rc = ring_decode(&rr, &ring);
		}
	}
	if (rc == 0 && rd_left(&r) != 0)
		rc = DYN_EBADMSG;
	if (rc == 0 && has_settings &&
	    (s.n == 0 || s.r == 0 || s.w == 0 || s.n > REPLICAS_MAX / 2))
		rc = DYN_EBADMSG;
	if (rc) {
		mem_free(in);
		ring_free(ring);
		return rc;
	}
	out->has_settings = has_settings != 0;
	out->settings = s;
	out->n = n;
	out->members = in;
	out->ring = ring;
	return 0;
}

void
view_fini(struct view *v)
{
	if (!v)
		return;
	mem_free(v->members);
	ring_free(v->ring);
	memset(v, 0, sizeof(*v));
}
