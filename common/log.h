/*
 * log — leveled logging to stderr, one line per call, safe from any thread.
 * The level is process configuration (set once at start-up); nothing else is
 * global.
 */
#ifndef DYN_LOG_H
#define DYN_LOG_H

#include <inttypes.h>
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

#define LOG_DEBUG(...) log_msg(LOG_LVL_DEBUG, __VA_ARGS__)
#define LOG_INFO(...)  log_msg(LOG_LVL_INFO, __VA_ARGS__)
#define LOG_WARN(...)  log_msg(LOG_LVL_WARN, __VA_ARGS__)
#define LOG_ERROR(...) log_msg(LOG_LVL_ERROR, __VA_ARGS__)

/* A rate limit for one call site: true at most once per every_ms (by the
 * monotonic clock); *suppressed then gets how many calls were refused
 * since the last one allowed.  last and skipped are the site's state. */
bool log_allow(_Atomic uint64_t *last, _Atomic uint64_t *skipped,
    uint64_t every_ms, uint64_t *suppressed);

/* log_msg at most once per every_ms from this call site, saying how many
 * lines were left out in between (for what a peer can make happen at any
 * rate: refused requests, rejected connections). */
#define LOG_EVERY(every_ms, lvl, fmt, ...)                                  \
	do {                                                                \
		static _Atomic uint64_t log_last_, log_skipped_;            \
		uint64_t log_n_;                                            \
		if (log_allow(&log_last_, &log_skipped_, (every_ms),        \
		        &log_n_))                                           \
			log_msg((lvl), fmt " (%" PRIu64 " more like it "    \
			    "not logged)", __VA_ARGS__, log_n_);            \
	} while (0)

#endif
