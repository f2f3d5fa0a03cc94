#include "buf.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "err.h"
#include "mem.h"

void
buf_init(struct buf *b)
{
	memset(b, 0, sizeof(*b));
}

void
buf_fini(struct buf *b)
{
	if (!b)
		return;
	mem_free(b->data);
	memset(b, 0, sizeof(*b));
}

void
buf_reset(struct buf *b)
{
	b->len = 0;
	b->err = 0;
}

int
buf_err(const struct buf *b)
{
	return b->err;
}

static int
grow(struct buf *b, size_t cap)
{
	uint8_t *d = mem_realloc(b->data, cap);
	if (!d) {
		b->err = -ENOMEM;
		return -ENOMEM;
	}
	b->data = d;
	b->cap = cap;
	return 0;
}

void
buf_reserve(struct buf *b, size_t n)
{
	if (b->err)
		return;
	if (n > SIZE_MAX / 2 - b->len)
		b->err = -ENOMEM;
	else if (b->len + n > b->cap || !b->data)
		grow(b, b->len + n > 256 ? b->len + n : 256);
}

uint8_t *
buf_extend(struct buf *b, size_t n)
{
	if (b->err)
		return NULL;
	if (n > SIZE_MAX / 2 - b->len) {
		b->err = -ENOMEM;
		return NULL;
	}
	if (b->len + n > b->cap || !b->data) {
		size_t cap = b->cap ? b->cap : 256;
		while (cap < b->len + n)
			cap *= 2;
		if (grow(b, cap) != 0)
			return NULL;
	}
	uint8_t *p = b->data + b->len;
	b->len += n;
	return p;
}

void
buf_put(struct buf *b, const void *p, size_t n)
{
	uint8_t *d = buf_extend(b, n);
	if (d && n)
		memcpy(d, p, n);
}

void
buf_printf(struct buf *b, const char *fmt, ...)
{
	char small[256];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(small, sizeof(small), fmt, ap);
	va_end(ap);
	if (n < 0) {
		if (!b->err)
			b->err = -EINVAL;
		return;
	}
	if ((size_t)n < sizeof(small)) {
		buf_put(b, small, (size_t)n);
		return;
	}
	/* Longer than the stack copy: format again straight into b, with
	 * room for vsnprintf's NUL, which is then not counted. */
	uint8_t *d = buf_extend(b, (size_t)n + 1);
	if (!d)
		return;
	va_start(ap, fmt);
	vsnprintf((char *)d, (size_t)n + 1, fmt, ap);
	va_end(ap);
	b->len--;
}

void
buf_put_u8(struct buf *b, uint8_t v)
{
	buf_put(b, &v, 1);
}

void
buf_put_u16(struct buf *b, uint16_t v)
{
	uint8_t d[2] = {(uint8_t)(v >> 8), (uint8_t)v};
	buf_put(b, d, 2);
}

void
buf_put_u32(struct buf *b, uint32_t v)
{
	uint8_t d[4];
	be_put_u32(d, v);
	buf_put(b, d, 4);
}

void
buf_put_u64(struct buf *b, uint64_t v)
{
	uint8_t d[8];
	be_put_u64(d, v);
	buf_put(b, d, 8);
}

void
buf_put_blob(struct buf *b, const void *p, size_t n)
{
	if (n > UINT32_MAX) {
		if (!b->err)
			b->err = DYN_ETOOBIG;
		return;
	}
	buf_put_u32(b, (uint32_t)n);
	buf_put(b, p, n);
}

uint8_t *
buf_take(struct buf *b, size_t *len)
{
	uint8_t *d = b->data;
	*len = b->len;
	memset(b, 0, sizeof(*b));
	return d;
}

void
be_put_u32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

uint32_t
be_get_u32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	    (uint32_t)p[2] << 8 | p[3];
}

void
be_put_u64(uint8_t *p, uint64_t v)
{
	be_put_u32(p, (uint32_t)(v >> 32));
	be_put_u32(p + 4, (uint32_t)v);
}

uint64_t
be_get_u64(const uint8_t *p)
{
	return (uint64_t)be_get_u32(p) << 32 | be_get_u32(p + 4);
}

void
rd_init(struct rd *r, const void *p, size_t len)
{
	r->p = p;
	r->len = len;
	r->off = 0;
	r->bad = false;
}

size_t
rd_left(const struct rd *r)
{
	return r->bad ? 0 : r->len - r->off;
}

int
rd_bytes(struct rd *r, size_t n, const uint8_t **p)
{
	if (r->bad || n > r->len - r->off) {
		r->bad = true;
		return DYN_EBADMSG;
	}
	*p = r->p + r->off;
	r->off += n;
	return 0;
}

int
rd_u8(struct rd *r, uint8_t *v)
{
	const uint8_t *p;
	int rc = rd_bytes(r, 1, &p);
	if (rc == 0)
		*v = p[0];
	return rc;
}

int
rd_u16(struct rd *r, uint16_t *v)
{
	const uint8_t *p;
	int rc = rd_bytes(r, 2, &p);
	if (rc == 0)
		*v = (uint16_t)(p[0] << 8 | p[1]);
	return rc;
}

int
rd_u32(struct rd *r, uint32_t *v)
{
	const uint8_t *p;
	int rc = rd_bytes(r, 4, &p);
	if (rc == 0)
		*v = be_get_u32(p);
	return rc;
}

int
rd_u64(struct rd *r, uint64_t *v)
{
	const uint8_t *p;
	int rc = rd_bytes(r, 8, &p);
	if (rc == 0)
		*v = be_get_u64(p);
	return rc;
}

int
rd_blob(struct rd *r, size_t max, const uint8_t **p, size_t *n)
{
	uint32_t len;
	int rc = rd_u32(r, &len);
	if (rc)
		return rc;
	if (len > max) {
		r->bad = true;
		return DYN_EBADMSG;
	}
	*n = len;
	return rd_bytes(r, len, p);
}
