/*
 * log — leveled logging to stderr, one line per call, safe from any thread.
 * The level is process configuration (set once at start-up); nothing else is
 * global.
 */
#ifndef DYN_LOG_H
#define DYN_LOG_H

#include <inttypes.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

enum log_level { LOG_LVL_DEBUG, LOG_LVL_INFO, LOG_LVL_WARN, LOG_LVL_ERROR };

void log_set_level(enum log_level lvl);
/* Parse "debug", "info", "warn", "error"; -EINVAL otherwise. */
int log_level_parse(const char *s, enum log_level *out);
/* Name printed before every line, e.g. the node's name. Copied. */
void log_set_prefix(const char *prefix);
void log_msg(enum log_level lvl, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/*
 * A limiter for lines a remote party can cause: at most one line per key (a rejected peer's
 * address and the reason, node/guard.c) per LOG_LIMIT_MS, and the
 * next line that passes says how many were held back meanwhile.  It
 * remembers LOG_LIMIT_KEYS keys; when every one of them was used within
 * the interval, a line for a new key is held back too (counted under the
 * key it replaces later), so a flood from many addresses costs at most
 * LOG_LIMIT_KEYS lines per interval.  Embed it (log_limit_init/_fini);
 * any thread may log through it.
 */
#define LOG_LIMIT_MS   10000
#define LOG_LIMIT_KEYS 64
#define LOG_LIMIT_KEYLEN 64

struct log_limit_slot {
	char key[LOG_LIMIT_KEYLEN];
	long long last_ms; /* monotonic; 0: unused */
	unsigned long long held; /* lines held back since the last one */
};

struct log_limit {
	pthread_mutex_t lock;
	int interval_ms;
	unsigned long long held_other; /* for keys that found no slot */
	struct log_limit_slot slot[LOG_LIMIT_KEYS];
};

/* interval_ms 0: LOG_LIMIT_MS. */
void log_limit_init(struct log_limit *l, int interval_ms);
void log_limit_fini(struct log_limit *l);
/* Log the line unless key had one within the interval.  Returns true
 * when the line was written. */
bool log_limited(struct log_limit *l, const char *key, enum log_level lvl,
    const char *fmt, ...) __attribute__((format(printf, 4, 5)));

#define LOG_DEBUG(...) log_msg(LOG_LVL_DEBUG, __VA_ARGS__)
#define LOG_INFO(...)  log_msg(LOG_LVL_INFO, __VA_ARGS__)
#define LOG_WARN(...)  log_msg(LOG_LVL_WARN, __VA_ARGS__)
#define LOG_ERROR(...) log_msg(LOG_LVL_ERROR, __VA_ARGS__)

#endif
