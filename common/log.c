#include "log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "mono.h"

static enum log_level cur_level = LOG_LVL_INFO;
static char cur_prefix[64];

void
log_set_level(enum log_level lvl)
{
	cur_level = lvl;
}

int
log_level_parse(const char *s, enum log_level *out)
{
	static const char *const names[] = {"debug", "info", "warn", "error"};
	for (unsigned i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		if (strcmp(s, names[i]) == 0) {
			*out = (enum log_level)i;
			return 0;
		}
	}
	return -EINVAL;
}

void
log_set_prefix(const char *prefix)
{
	snprintf(cur_prefix, sizeof(cur_prefix), "%s", prefix);
}

static void __attribute__((format(printf, 3, 0)))
log_vmsg(enum log_level lvl, unsigned long long held, const char *fmt,
    va_list ap)
{
	static const char *const tags[] = {"DEBUG", "INFO", "WARN", "ERROR"};

	/* Format into one buffer so concurrent lines do not interleave. */
	char line[1024];
	struct timespec ts;
	struct tm tm;
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	int n = snprintf(line, sizeof(line),
	    "%02d:%02d:%02d.%03ld %s%s%-5s ", tm.tm_hour, tm.tm_min, tm.tm_sec,
	    ts.tv_nsec / 1000000, cur_prefix, cur_prefix[0] ? " " : "",
	    tags[lvl]);
	if (n > 0 && (size_t)n < sizeof(line))
		n += vsnprintf(line + n, sizeof(line) - (size_t)n, fmt, ap);
	if (n > 0 && held && (size_t)n < sizeof(line))
		n += snprintf(line + n, sizeof(line) - (size_t)n,
		    " (%llu more like it not logged)", held);
	if (n < 0)
		return;
	if ((size_t)n >= sizeof(line) - 1)
		n = sizeof(line) - 2;
	line[n++] = '\n';
	fwrite(line, 1, (size_t)n, stderr);
}

void
log_msg(enum log_level lvl, const char *fmt, ...)
{
	if (lvl < cur_level)
		return;
	va_list ap;
	va_start(ap, fmt);
	log_vmsg(lvl, 0, fmt, ap);
	va_end(ap);
}

void
log_limit_init(struct log_limit *l, int interval_ms)
{
	memset(l, 0, sizeof(*l));
	pthread_mutex_init(&l->lock, NULL);
	l->interval_ms = interval_ms > 0 ? interval_ms : LOG_LIMIT_MS;
}

void
log_limit_fini(struct log_limit *l)
{
	pthread_mutex_destroy(&l->lock);
}


/* The key's slot, or the least recently used one that is free to take
 * (used longer than the interval ago); NULL when there is none. */
static struct log_limit_slot *
limit_slot_locked(struct log_limit *l, const char *key, long long now)
{
	struct log_limit_slot *free_slot = NULL;
	for (unsigned i = 0; i < LOG_LIMIT_KEYS; i++) {
		struct log_limit_slot *s = &l->slot[i];
		if (s->last_ms && strncmp(s->key, key, sizeof(s->key)) == 0)
			return s;
		if (now - s->last_ms >= l->interval_ms || !s->last_ms)
			if (!free_slot || s->last_ms < free_slot->last_ms)
				free_slot = s;
	}
	if (free_slot) {
		/* What the old key held back is owed by the next line. */
		l->held_other += free_slot->held;
		snprintf(free_slot->key, sizeof(free_slot->key), "%s", key);
		free_slot->last_ms = 0;
		free_slot->held = 0;
	}
	return free_slot;
}

bool
log_limited(struct log_limit *l, const char *key, enum log_level lvl,
    const char *fmt, ...)
{
	if (lvl < cur_level)
		return false;
	long long now = (long long)mono_ms();
	unsigned long long held;
	pthread_mutex_lock(&l->lock);
	struct log_limit_slot *s = limit_slot_locked(l, key, now);
	if (!s) {
		l->held_other++;
		pthread_mutex_unlock(&l->lock);
		return false;
	}
	if (s->last_ms && now - s->last_ms < l->interval_ms) {
		s->held++;
		pthread_mutex_unlock(&l->lock);
		return false;
	}
	held = s->held + l->held_other;
	s->held = 0;
	l->held_other = 0;
	s->last_ms = now ? now : 1;
	pthread_mutex_unlock(&l->lock);

	va_list ap;
	va_start(ap, fmt);
	log_vmsg(lvl, held, fmt, ap);
	va_end(ap);
	return true;
}
