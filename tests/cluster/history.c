#include "history.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "context.h"
#include "keypos.h"
#include "mem.h"
#include "vclock.h"

struct entry {
	char *key;
	char *value;
	struct vclock ctx;  /* what the put was written with */
	struct vclock mine; /* the put's own version: past + dot */
};

struct history {
	struct auth_key key;
	pthread_mutex_t lock;
	struct entry *e;
	size_t n, cap;
};

struct history *
history_new(const struct auth_key *key)
{
	struct history *h = calloc(1, sizeof(*h));
	if (!h)
		abort();
	h->key = *key;
	pthread_mutex_init(&h->lock, NULL);
	return h;
}

void
history_free(struct history *h)
{
	if (!h)
		return;
	for (size_t i = 0; i < h->n; i++) {
		free(h->e[i].key);
		free(h->e[i].value);
	}
	free(h->e);
	pthread_mutex_destroy(&h->lock);
	free(h);
}

static void
decode(struct history *h, const char *key, const uint8_t *p, size_t len,
    struct vclock *out)
{
	struct keypos pos;
	vclock_init(out);
	if (keypos_of(key, strlen(key), &pos) != 0 ||
	    context_decode(&h->key, &pos, p, len, out) != 0) {
		fprintf(stderr, "history: a context that does not decode\n");
		abort();
	}
}

void
history_put(struct history *h, const char *key, const char *value,
    const uint8_t *ctx, size_t ctx_len, const uint8_t *new_ctx,
    size_t new_ctx_len)
{
	struct entry e = {strdup(key), strdup(value), {0}, {0}};
	decode(h, key, ctx, ctx_len, &e.ctx);
	decode(h, key, new_ctx, new_ctx_len, &e.mine);
	pthread_mutex_lock(&h->lock);
	if (h->n == h->cap) {
		h->cap = h->cap ? 2 * h->cap : 1024;
		h->e = realloc(h->e, h->cap * sizeof(*h->e));
		if (!h->e)
			abort();
	}
	h->e[h->n++] = e;
	pthread_mutex_unlock(&h->lock);
}

static int
by_key(const void *a, const void *b)
{
	return strcmp(((const struct entry *)a)->key,
	    ((const struct entry *)b)->key);
}

struct history_counts
history_check(struct history *h, struct dyn_client *c)
{
	struct history_counts k = {0};
	pthread_mutex_lock(&h->lock);
	qsort(h->e, h->n, sizeof(*h->e), by_key);
	for (size_t i = 0; i < h->n;) {
		size_t j = i;
		while (j < h->n && strcmp(h->e[j].key, h->e[i].key) == 0)
			j++;
		struct dyn_get_result r;
		int rc = dyn_get(c, h->e[i].key, strlen(h->e[i].key), NULL, &r);
		if (rc != 0 && rc != -ENOENT) {
			fprintf(stderr, "history: get %s: %d\n", h->e[i].key,
			    rc);
			abort();
		}
		for (size_t a = i; a < j; a++) {
			const struct entry *e = &h->e[a];
			k.acknowledged++;
			bool present = false;
			for (uint32_t v = 0; v < r.versions.n && !present; v++)
				present = !r.versions.v[v].tombstone &&
				    r.versions.v[v].len == strlen(e->value) &&
				    memcmp(r.versions.v[v].value, e->value,
				        r.versions.v[v].len) == 0;
			bool superseded = false;
			for (size_t b = i; b < j && !present && !superseded;
			     b++)
				superseded = b != a &&
				    vclock_descends(&h->e[b].ctx, &e->mine);
			if (present)
				k.present++;
			else if (superseded)
				k.superseded++;
			else {
				k.lost++;
				fprintf(stderr, "history: lost %s = %s\n",
				    e->key, e->value);
			}
		}
		dyn_get_result_fini(&r);
		i = j;
	}
	pthread_mutex_unlock(&h->lock);
	return k;
}
