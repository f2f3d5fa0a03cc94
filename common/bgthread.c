#include "bgthread.h"

#include <errno.h>

#include "mono.h"

static void *
bgthread_main(void *arg)
{
	struct bgthread *t = arg;
	int64_t ms = t->first_ms;
	pthread_mutex_lock(&t->lock);
	while (!t->stopping) {
		if (ms > 0) {
			/* A wake-up that is no stop (none is expected) goes
			 * back to sleep: rounds keep their pace. */
			struct timespec dl;
			mono_deadline(&dl, ms);
			while (!t->stopping &&
			    pthread_cond_timedwait(&t->cv, &t->lock, &dl) !=
			        ETIMEDOUT)
				;
			if (t->stopping)
				break;
		}
		pthread_mutex_unlock(&t->lock);
		ms = t->fn(t->arg);
		pthread_mutex_lock(&t->lock);
		if (ms < 0)
			break;
	}
	pthread_mutex_unlock(&t->lock);
	return NULL;
}

int
bgthread_start(struct bgthread *t, int64_t first_ms, bgthread_fn fn,
    void *arg)
{
	t->stopping = false;
	t->started = false;
	t->first_ms = first_ms;
	t->fn = fn;
	t->arg = arg;
	int rc = -pthread_mutex_init(&t->lock, NULL);
	if (rc)
		return rc;
	if ((rc = mono_cond_init(&t->cv)) != 0) {
		pthread_mutex_destroy(&t->lock);
		return rc;
	}
	if ((rc = -pthread_create(&t->thread, NULL, bgthread_main, t)) != 0) {
		pthread_cond_destroy(&t->cv);
		pthread_mutex_destroy(&t->lock);
		return rc;
	}
	t->started = true;
	return 0;
}

bool
bgthread_stopping(struct bgthread *t)
{
	pthread_mutex_lock(&t->lock);
	bool s = t->stopping;
	pthread_mutex_unlock(&t->lock);
	return s;
}

void
bgthread_stop(struct bgthread *t)
{
	if (!t->started)
		return;
	pthread_mutex_lock(&t->lock);
	t->stopping = true;
	pthread_cond_broadcast(&t->cv);
	pthread_mutex_unlock(&t->lock);
	pthread_join(t->thread, NULL);
	pthread_cond_destroy(&t->cv);
	pthread_mutex_destroy(&t->lock);
	t->started = false;
}
