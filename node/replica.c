/*
 * Versions on their way into this node's store:
 *
 *   this node                              another node (a worker)
 *   coord.c put, read repair of others --REPLICATE_REQ--> replica_handle
 *   handoff.c hints delivered      (replica_request)       | a stand-in
 *                                                          | files the
 *   coord.c read repair of its own copy                    | hint first
 *   handoff.c a removed target's share ---> replica_merge <-+
 *   xfer.c pulls, ae.c rounds, MERGE_REQ -> replica_merge_records
 *   ae.c PURGE_REQ -> replica_apply_records (store_apply_delete_exact)
 *                          |
 *                          v
 *   store.c: store_update / store_update_many, applied in the writer
 *   thread with store_apply_merge
 */
#include "replica.h"

#include <errno.h>
#include <stdbool.h>
#include <string.h>

#include "blob.h"
#include "err.h"
#include "keypos.h"
#include "mem.h"
#include "node_i.h"
#include "reclist.h"

int
replica_merge(struct node *n, const void *key, size_t klen,
    const struct vset *set)
{
	int rc = store_update(n->store, key, klen, store_apply_merge,
	    (void *)set);
	return rc == STORE_SKIP ? 0 : rc;
}

int
replica_apply_records(struct node *n, const struct wire_field *f,
    store_apply_fn fn, uint32_t *count, uint32_t *changed)
{
	struct reclist l;
	reclist_init(&l);
	int rc = reclist_decode(f->data, f->len, n->cfg.max_value, &l);
	if (rc == 0)
		rc = replica_apply_list(n, &l, fn, count, changed);
	reclist_fini(&l);
	return rc;
}

int
replica_apply_list(struct node *n, const struct reclist *l,
    store_apply_fn fn, uint32_t *count, uint32_t *changed)
{
	int rc = 0;
	struct store_update *ups = mem_calloc(l->n ? l->n : 1, sizeof(*ups));
	uint32_t done = 0;
	if (!ups)
		rc = -ENOMEM;
	for (uint32_t i = 0; rc == 0 && i < l->n; i++)
		ups[i] = (struct store_update){l->keys[i].data, l->keys[i].len,
		    fn, &l->sets[i], 0};
	if (rc == 0 && (rc = store_update_many(n->store, ups, l->n)) == 0)
		for (uint32_t i = 0; i < l->n && rc == 0; i++) {
			if (ups[i].rc == 0)
				done++;
			else if (ups[i].rc < 0)
				rc = ups[i].rc;
		}
	if (rc == 0) {
		*count += l->n;
		if (changed)
			*changed += done;
	}
	mem_free(ups);
	return rc;
}

int
replica_merge_records(struct node *n, const struct wire_field *f,
    uint32_t *count)
{
	return replica_apply_records(n, f, store_apply_merge, count, NULL);
}

void
replica_blob_version(struct version *v, const void *value, size_t len)
{
	memset(v, 0, sizeof(*v));
	v->dot = (struct dot){.actor = BLOB_ACTOR, .counter = 1};
	vclock_init(&v->past);
	v->value = (uint8_t *)value;
	v->len = len;
}

int
replica_request(struct node *n, struct buf *b, const void *key,
    size_t klen, const struct vset *set, const char *hint)
{
	/* A blob goes as its bytes, which its name authenticates
	 * (WIRE_H_BLOB): one pass over them on each side, not two. */
	bool blob = blob_is_key(key, klen) && set->n == 1 &&
	    set->v[0].dot.actor == BLOB_ACTOR && !set->v[0].tombstone;
	node_req_begin_flags(n, b, WIRE_REPLICATE_REQ, blob ? WIRE_H_BLOB : 0);
	if (blob)
		buf_reserve(b, set->v[0].len + WIRE_SLACK);
	wire_put(b, F_KEY, key, klen);
	if (hint)
		wire_put_str(b, F_HINT, hint);
	if (blob) {
		wire_put(b, F_VALUE, set->v[0].value, set->v[0].len);
	} else {
		size_t at = wire_begin_field(b, F_VSET);
		vset_encode(set, b);
		wire_end_field(b, at);
	}
	return wire_seal(b, &n->cfg.keys);
}

/* The set a REPLICATE_REQ carries (into set, initialised here) and its
 * key; *hinted with the hint's target in hint. */
static int
replicate_parse(struct node *n, const struct wire_msg *m,
    const struct wire_field **key, struct vset *set, char hint[64],
    bool *hinted)
{
	const struct wire_field *k = wire_find(m, F_KEY);
	const struct wire_field *f = wire_find(m, F_VSET);
	const struct wire_field *val = wire_find(m, F_VALUE);
	vset_init(set);
	if (!k || k->len > KEY_MAX_LEN || !(f || val) || (f && val))
		return DYN_EBADMSG;
	*key = k;
	*hinted = wire_get_str(m, F_HINT, hint, 64) == 0;
	if (val) {
		/* A blob's bytes: wire_decode checked them against the key
		 * (WIRE_H_BLOB), so only such a message may carry them. */
		if (!(m->flags & WIRE_H_BLOB) || val->len > n->cfg.max_value)
			return DYN_EBADMSG;
		struct version *v = mem_alloc(sizeof(*v));
		if (!v)
			return -ENOMEM;
		replica_blob_version(v, NULL, 0);
		if (val->len && !(v->value = mem_dup(val->data, val->len))) {
			mem_free(v);
			return -ENOMEM;
		}
		v->len = val->len;
		*set = (struct vset){.n = 1, .v = v};
		return 0;
	}
	struct rd r;
	rd_init(&r, f->data, f->len);
	int rc = vset_decode(&r, n->cfg.max_value, set);
	if (rc == 0 && rd_left(&r) != 0) {
		vset_fini(set);
		rc = DYN_EBADMSG;
	}
	return rc;
}

static int
replicate_reply(const struct wire_msg *m, struct buf *out)
{
	wire_begin(out, WIRE_REPLICATE_RESP, 0, m->reqid);
	wire_put_u32(out, F_STATUS, 0);
	return buf_err(out);
}

int
replica_handle(struct node *n, const struct wire_msg *m, struct buf *out)
{
	const struct wire_field *k;
	char hint[64];
	bool hinted;
	struct vset set;
	int rc = replicate_parse(n, m, &k, &set, hint, &hinted);
	/* A stand-in keeps the write as a hint for the replica it stands in
	 * for, and in its own store so it can serve reads meanwhile. */
	if (rc == 0 && hinted)
		rc = store_hint_add(n->store, hint, k->data, k->len, &set);
	if (rc == 0)
		rc = replica_merge(n, k->data, k->len, &set);
	vset_fini(&set);
	return rc ? rc : replicate_reply(m, out);
}

/* A REPLICATE_REQ under way in the store's writer (replica_start). */
struct pending {
	const struct wire_msg *m;
	struct buf *out;
	struct vset set;
	replica_done_fn done;
	void *arg;
};

static void
pending_done(void *arg, int rc)
{
	struct pending *p = arg;
	if (rc == STORE_SKIP)
		rc = 0;
	vset_fini(&p->set);
	if (rc == 0)
		rc = replicate_reply(p->m, p->out);
	p->done(p->arg, rc);
	mem_free(p);
}

int
replica_start(struct node *n, const struct wire_msg *m, struct buf *out,
    replica_done_fn done, void *arg)
{
	struct pending *p = mem_alloc(sizeof(*p));
	if (!p)
		return -ENOMEM;
	const struct wire_field *k;
	char hint[64];
	bool hinted;
	int rc = replicate_parse(n, m, &k, &p->set, hint, &hinted);
	if (rc == 0 && hinted)
		rc = -EINVAL; /* two writes: replica_handle's */
	if (rc == 0) {
		p->m = m;
		p->out = out;
		p->done = done;
		p->arg = arg;
		rc = store_update_async(n->store, k->data, k->len,
		    store_apply_merge, &p->set, pending_done, p);
		if (rc == 0)
			return 0;
	}
	vset_fini(&p->set);
	mem_free(p);
	return rc;
}
