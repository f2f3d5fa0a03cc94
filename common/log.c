#include "log.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

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

bool
log_allow(_Atomic uint64_t *last, _Atomic uint64_t *skipped,
    uint64_t every_ms, uint64_t *suppressed)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	/* +1: a first call at time 0 still finds last (0) behind it. */
	uint64_t now = (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000
	               + every_ms + 1;
	uint64_t was = atomic_load(last);
	if (now - was < every_ms ||
	    !atomic_compare_exchange_strong(last, &was, now)) {
		atomic_fetch_add(skipped, 1);
		return false;
	}
	*suppressed = atomic_exchange(skipped, 0);
	return true;
}

void
log_msg(enum log_level lvl, const char *fmt, ...)
{
	static const char *const tags[] = {"DEBUG", "INFO", "WARN", "ERROR"};
	if (lvl < cur_level)
		return;

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
	va_list ap;
	va_start(ap, fmt);
	if (n > 0 && (size_t)n < sizeof(line))
		n += vsnprintf(line + n, sizeof(line) - (size_t)n, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((size_t)n >= sizeof(line) - 1)
		n = sizeof(line) - 2;
	line[n++] = '\n';
	fwrite(line, 1, (size_t)n, stderr);
}
