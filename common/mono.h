/*
 * mono — the monotonic clock: what durations, timeouts and deadlines are
 * measured on, in every program (a wall clock may step).  Wall-clock time,
 * for version timestamps and message times, is wire_clock_ms (wire.h).
 * Condition variables that wait for a deadline are made with
 * mono_cond_init, so their deadlines are on this clock too.
 */
#ifndef DYN_MONO_H
#define DYN_MONO_H

#include <pthread.h>
#include <stdint.h>
#include <time.h>

/* Nanoseconds, microseconds and milliseconds since an arbitrary origin
 * (the same for the whole system until it reboots). */
uint64_t mono_ns(void);
uint64_t mono_us(void);
uint64_t mono_ms(void);

/* Initialise cv (as pthread_cond_init) with the monotonic clock for its
 * timed waits: 0, or a negative errno. */
int mono_cond_init(pthread_cond_t *cv);

/* *ts = now + ms (ms >= 0) on the monotonic clock: the deadline of a
 * pthread_cond_timedwait on a cv made with mono_cond_init. */
void mono_deadline(struct timespec *ts, int64_t ms);

#endif
