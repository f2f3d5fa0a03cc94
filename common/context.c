/*
 * context — the clock a client read, tagged so it comes back unchanged.
 *
 * The key position is part of the tagged text, so a context copied from
 * one key to another is refused like a forged one.  Decoding checks the
 * tag before it parses a byte of the clock.
 */
#include "context.h"

#include <string.h>

#include "err.h"

/* 2: the clock carries exact dots (common/vclock.h). */
#define CONTEXT_FORMAT 2

static const char context_domain[] = "dynamo-context-v2";

#define DOMAIN_LEN (sizeof(context_domain) - 1)
/* format byte, shortest clock (no entries, no dots), tag */
#define CONTEXT_MIN_LEN (1 + 2 + 2 + AUTH_TAG_LEN)

/* The first part of the tagged text: domain || key position. */
static void
context_prefix(const struct keypos *pos, uint8_t out[DOMAIN_LEN + KEYPOS_LEN])
{
	memcpy(out, context_domain, DOMAIN_LEN);
	memcpy(out + DOMAIN_LEN, pos->b, KEYPOS_LEN);
}

void
context_encode(const struct auth_key *k, const struct keypos *pos,
               const struct vclock *c, struct buf *out)
{
	uint8_t prefix[DOMAIN_LEN + KEYPOS_LEN];
	size_t start;
	uint8_t *t;
	int rc;

	buf_put_u8(out, CONTEXT_FORMAT);
	start = out->len;
	vclock_encode(c, out);
	/* Extend first: the clock's bytes may move when the buf grows. */
	if ((t = buf_extend(out, AUTH_TAG_LEN)) == NULL)
		return;
	context_prefix(pos, prefix);
	rc = auth_tag(k, prefix, sizeof(prefix), out->data + start,
	              out->len - AUTH_TAG_LEN - start, t);
	if (rc != 0 && out->err == 0)
		out->err = rc;
}

int
context_decode(const struct auth_key *k, const struct keypos *pos,
               const uint8_t *p, size_t len, struct vclock *out)
{
	uint8_t prefix[DOMAIN_LEN + KEYPOS_LEN];
	const uint8_t *clock;
	size_t clen;
	struct rd r;

	vclock_init(out);
	if (len == 0)
		return 0;
	if (len < CONTEXT_MIN_LEN || len > CONTEXT_MAX_LEN)
		return DYN_EBADMSG;
	/* Format 1 (clocks without dots) is no longer issued or read: any
	 * other byte here is a context this cluster did not make. */
	if (p[0] != CONTEXT_FORMAT)
		return DYN_ECONTEXT;
	clock = p + 1;
	clen = len - 1 - AUTH_TAG_LEN;
	context_prefix(pos, prefix);
	if (!auth_check(k, prefix, sizeof(prefix), clock, clen, clock + clen))
		return DYN_ECONTEXT;

	/* A tag that checks but a clock that does not parse can only come
	 * from a key holder with a bug: malformed, not forged. */
	rd_init(&r, clock, clen);
	if (vclock_decode(&r, out) != 0 || rd_left(&r) != 0) {
		vclock_init(out);
		return DYN_EBADMSG;
	}
	return 0;
}
