#include "reclist.h"

#include <errno.h>
#include <string.h>

#include "err.h"
#include "mem.h"
#include "store.h"
#include "wire.h"

/* The smallest record on the wire: its blob length, the key's length and
 * a version count (an empty key and set). */
#define RECORD_MIN_WIRE 12

void
reclist_init(struct reclist *l)
{
	memset(l, 0, sizeof(*l));
}

void
reclist_fini(struct reclist *l)
{
	if (!l)
		return;
	for (uint32_t i = 0; i < l->n; i++) {
		buf_fini(&l->keys[i]);
		vset_fini(&l->sets[i]);
	}
	mem_free(l->keys);
	mem_free(l->sets);
	reclist_init(l);
}

int
reclist_add(struct reclist *l, uint32_t cap, const void *key, size_t klen,
    const struct vset *set)
{
	if (l->n >= cap)
		return -ENOSPC;
	if (!l->keys) {
		l->keys = mem_calloc(cap, sizeof(*l->keys));
		l->sets = mem_calloc(cap, sizeof(*l->sets));
		if (!l->keys || !l->sets) {
			mem_free(l->keys);
			mem_free(l->sets);
			l->keys = NULL;
			l->sets = NULL;
			return -ENOMEM;
		}
	}
	struct buf *k = &l->keys[l->n];
	struct vset *v = &l->sets[l->n];
	buf_init(k);
	vset_init(v);
	buf_put(k, key, klen);
	int rc = buf_err(k);
	if (rc == 0)
		rc = vset_copy(v, set);
	if (rc != 0) {
		buf_fini(k);
		vset_fini(v);
		return rc;
	}
	l->n++;
	return 0;
}

void
reclist_encode(const struct buf *keys, const struct vset *sets, uint32_t n,
    struct buf *out)
{
	struct buf rec;

	buf_put_u32(out, n);
	buf_init(&rec);
	for (uint32_t i = 0; i < n; i++) {
		buf_reset(&rec);
		store_record_encode(keys[i].data, keys[i].len, &sets[i], &rec);
		if (buf_err(&rec) && !out->err)
			out->err = buf_err(&rec);
		buf_put_blob(out, rec.data, rec.len);
	}
	buf_fini(&rec);
}

int
reclist_decode(const void *p, size_t len, size_t max_value,
    struct reclist *out)
{
	struct rd r;
	uint32_t cnt;
	int rc;

	reclist_fini(out);
	rd_init(&r, p, len);
	if ((rc = rd_u32(&r, &cnt)) != 0)
		return rc;
	if ((size_t)cnt * RECORD_MIN_WIRE > rd_left(&r))
		return DYN_EBADMSG;
	if (cnt > 0) {
		out->keys = mem_calloc(cnt, sizeof(*out->keys));
		out->sets = mem_calloc(cnt, sizeof(*out->sets));
		if (!out->keys || !out->sets) {
			rc = -ENOMEM;
			goto out;
		}
	}
	for (uint32_t i = 0; i < cnt; i++) {
		const uint8_t *rp;
		size_t rl;
		if ((rc = rd_blob(&r, WIRE_MAX_MSG, &rp, &rl)) != 0)
			goto out;
		buf_init(&out->keys[i]);
		vset_init(&out->sets[i]);
		out->n = i + 1;
		if ((rc = store_record_decode(rp, rl, max_value, &out->keys[i],
		         &out->sets[i])) != 0)
			goto out;
	}
	rc = rd_left(&r) == 0 ? 0 : DYN_EBADMSG;
out:
	if (rc != 0)
		reclist_fini(out);
	return rc;
}
