/*
 * bgthread — a background thread of rounds: a round, then a sleep until a
 * deadline on the monotonic clock (mono.h), then the next round, until a
 * stop, which wakes a sleeping thread at once.  The node's periodic work
 * runs on it (anti-entropy, the collector, gossip, hinted handoff, the
 * transfer thread, the guard's reaper).  Not for a thread that waits for
 * work on a queue of its own (the store's writer, httpd's renderer).
 *
 * The struct is embedded in its owner, which keeps the state the rounds
 * share with other threads under a lock of its own: the thread's lock
 * guards only the stop.
 */
#ifndef DYN_BGTHREAD_H
#define DYN_BGTHREAD_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

/* One round, in the thread: the ms to sleep before the next (>= 0), or -1
 * to end the thread (bgthread_stop must still be called). */
typedef int64_t (*bgthread_fn)(void *arg);

struct bgthread {
	pthread_mutex_t lock;
	pthread_cond_t cv; /* on the monotonic clock */
	bool stopping;     /* under lock */
	bool started;
	int64_t first_ms;
	bgthread_fn fn;
	void *arg;
	pthread_t thread;
};

/* Start t's thread: it sleeps first_ms, then runs fn(arg) until a stop or
 * fn's -1.  0, or a negative errno (then t is as never started).  t must
 * stay where it is until bgthread_stop returns. */
int bgthread_start(struct bgthread *t, int64_t first_ms, bgthread_fn fn,
    void *arg);
/* Whether a stop was asked: a long round checks it between its steps. */
bool bgthread_stopping(struct bgthread *t);
/* Ask t's thread to stop, wake it if it sleeps, and wait for it: a round
 * under way finishes first (its calls to peers end at once when the
 * node's rpc_pool_cancel came before).  Fine on a t that was zeroed and
 * never started, or whose start failed, and on one stopped already. */
void bgthread_stop(struct bgthread *t);

#endif
