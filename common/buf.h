/*
 * buf — a growable output buffer and a bounds-checked input reader, both in
 * network byte order.  Every encoder of the project writes into a struct buf
 * and every decoder reads through a struct rd, so bounds checks live here
 * once.  A buf that failed to grow is "broken": later writes are no-ops and
 * buf_err() reports -ENOMEM, so encoders check once at the end.
 */
#ifndef DYN_BUF_H
#define DYN_BUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct buf {
	uint8_t *data; /* owned; mem_free'd by buf_fini */
	size_t len;
	size_t cap;
	int err; /* first error, sticky */
};

void buf_init(struct buf *b);
void buf_fini(struct buf *b);
void buf_reset(struct buf *b); /* len = 0, keeps memory, clears err */
int buf_err(const struct buf *b);
/* Make room for n more bytes; returns a pointer to them (len is advanced),
 * or NULL on allocation failure. */
uint8_t *buf_extend(struct buf *b, size_t n);
/* Room for n more bytes without further growth, allocated to fit: a big
 * message built by buf_extend's doubling would get up to twice its size,
 * and a block past the allocator's mapping threshold is mapped and
 * unmapped (a page fault per 4 KiB, a TLB flush) every time. */
void buf_reserve(struct buf *b, size_t n);
void buf_put(struct buf *b, const void *p, size_t n);
void buf_put_u8(struct buf *b, uint8_t v);
void buf_put_u16(struct buf *b, uint16_t v);
void buf_put_u32(struct buf *b, uint32_t v);
void buf_put_u64(struct buf *b, uint64_t v);
/* u32 length then the bytes. */
void buf_put_blob(struct buf *b, const void *p, size_t n);
/* Append printf-formatted text (no NUL is stored; the buffer's own rule
 * for errors: a failed growth breaks it). */
void buf_printf(struct buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Hand the bytes to the caller (mem_free them); b becomes empty. */
uint8_t *buf_take(struct buf *b, size_t *len);

/* Store big-endian integers at p (no bounds: for patching headers). */
void be_put_u32(uint8_t *p, uint32_t v);
uint32_t be_get_u32(const uint8_t *p);
void be_put_u64(uint8_t *p, uint64_t v);
uint64_t be_get_u64(const uint8_t *p);

struct rd {
	const uint8_t *p; /* not owned */
	size_t len;
	size_t off;
	bool bad; /* sticky: a read went past the end or a cap was broken */
};

void rd_init(struct rd *r, const void *p, size_t len);
size_t rd_left(const struct rd *r);
/* Each getter returns 0 and stores the value, or returns DYN_EBADMSG (and
 * marks the reader bad) when the input is too short. */
int rd_u8(struct rd *r, uint8_t *v);
int rd_u16(struct rd *r, uint16_t *v);
int rd_u32(struct rd *r, uint32_t *v);
int rd_u64(struct rd *r, uint64_t *v);
/* Point *p at the next n bytes (no copy; valid as long as the input). */
int rd_bytes(struct rd *r, size_t n, const uint8_t **p);
/* u32 length (must be <= max) then that many bytes. */
int rd_blob(struct rd *r, size_t max, const uint8_t **p, size_t *n);

#endif
