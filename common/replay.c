#include "replay.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <string.h>

#include "err.h"
#include "mem.h"

#define NBUCKETS 4096 /* a power of two */
#define WORDS    (REPLAY_BITS / 64)

struct sender {
	struct sender *next;
	uint64_t id;
	uint64_t top;      /* highest sequence seen */
	uint64_t max_time; /* newest message time accepted */
	uint64_t bits[WORDS]; /* sequence s at bit s % REPLAY_BITS */
};

struct replay {
	pthread_mutex_t lock;
	uint64_t window_ms;
	size_t max, count;
	struct sender *bucket[NBUCKETS];
};

int
replay_new(uint64_t window_ms, size_t max_senders, struct replay **out)
{
	struct replay *r = mem_calloc(1, sizeof(*r));
	if (!r)
		return -ENOMEM;
	pthread_mutex_init(&r->lock, NULL);
	r->window_ms = window_ms;
	r->max = max_senders;
	*out = r;
	return 0;
}

void
replay_free(struct replay *r)
{
	if (!r)
		return;
	for (size_t i = 0; i < NBUCKETS; i++)
		for (struct sender *s = r->bucket[i], *nx; s; s = nx) {
			nx = s->next;
			mem_free(s);
		}
	pthread_mutex_destroy(&r->lock);
	mem_free(r);
}

static size_t
bucket_of(uint64_t id)
{
	id ^= id >> 33;
	id *= 0xff51afd7ed558ccdull;
	id ^= id >> 33;
	return (size_t)(id & (NBUCKETS - 1));
}

static bool
expired(const struct replay *r, const struct sender *s, uint64_t now)
{
	return s->max_time + r->window_ms < now;
}

/* Unlink the senders of bucket b nobody can replay any more. */
static void
drop_expired_locked(struct replay *r, size_t b, uint64_t now)
{
	for (struct sender **pp = &r->bucket[b]; *pp;) {
		struct sender *s = *pp;
		if (expired(r, s, now)) {
			*pp = s->next;
			mem_free(s);
			r->count--;
		} else {
			pp = &s->next;
		}
	}
}

static bool
test_and_set(struct sender *s, uint64_t seq)
{
	uint64_t bit = seq % REPLAY_BITS;
	uint64_t m = 1ull << (bit % 64);
	bool was = s->bits[bit / 64] & m;
	s->bits[bit / 64] |= m;
	return was;
}

/* Move the window's top to seq, clearing the bits it passes over. */
static void
advance(struct sender *s, uint64_t seq)
{
	if (seq - s->top >= REPLAY_BITS)
		memset(s->bits, 0, sizeof(s->bits));
	else
		for (uint64_t q = s->top + 1; q <= seq; q++)
			s->bits[(q % REPLAY_BITS) / 64] &=
			    ~(1ull << (q % REPLAY_BITS % 64));
	s->top = seq;
}

static int
check_locked(struct replay *r, uint64_t id, uint64_t seq, uint64_t t,
    uint64_t now)
{
	size_t b = bucket_of(id);
	struct sender *s = r->bucket[b];
	while (s && s->id != id)
		s = s->next;
	if (s && expired(r, s, now)) {
		drop_expired_locked(r, b, now);
		s = NULL;
	}
	if (!s) {
		if (r->count >= r->max) {
			for (size_t i = 0; i < NBUCKETS; i++)
				drop_expired_locked(r, i, now);
			if (r->count >= r->max)
				return -EBUSY;
		}
		if (!(s = mem_calloc(1, sizeof(*s))))
			return -ENOMEM;
		s->id = id;
		s->top = seq;
		s->next = r->bucket[b];
		r->bucket[b] = s;
		r->count++;
	} else if (seq > s->top) {
		advance(s, seq);
	} else if (s->top - seq >= REPLAY_BITS) {
		return DYN_EREPLAY; /* too far behind to tell: refused */
	}
	if (test_and_set(s, seq))
		return DYN_EREPLAY;
	if (t > s->max_time)
		s->max_time = t;
	return 0;
}

int
replay_check(struct replay *r, uint64_t sender, uint64_t seq,
    uint64_t time_ms, uint64_t now_ms)
{
	if (time_ms + r->window_ms < now_ms || time_ms > now_ms + r->window_ms)
		return DYN_ESTALE;
	pthread_mutex_lock(&r->lock);
	int rc = check_locked(r, sender, seq, time_ms, now_ms);
	pthread_mutex_unlock(&r->lock);
	return rc;
}

size_t
replay_senders(struct replay *r)
{
	pthread_mutex_lock(&r->lock);
	size_t n = r->count;
	pthread_mutex_unlock(&r->lock);
	return n;
}
