/*
 * log.h - component-prefixed logging for the daemons and the CLI.
 *
 * Lines look like the thesis' Listing 6.1, with a time stamp:
 *   2026-11-24T12:00:00.123Z [store] [peer 127.0.0.1:40112] PUT p1 1/3 ...
 * Output goes to stderr (one write(2) per line, so lines of several
 * threads never interleave). Thread-safe.
 */
#ifndef RTCMS_LOG_H
#define RTCMS_LOG_H

enum log_level { LOG_ERROR = 0, LOG_WARN = 1, LOG_INFO = 2, LOG_DEBUG = 3 };

/* Set the component name ("store", "manager", ...) and the threshold. */
void log_init(const char *component, enum log_level level);

/* Parse "error", "warn", "info", "debug" into an enum log_level;
 * RTCMS_EINVAL if unknown. */
int log_level_parse(const char *s);

/* The threshold now, and a new one (a daemon's SIGHUP; any thread may log
 * meanwhile). */
enum log_level log_level_get(void);
void log_level_set(enum log_level level);

/* "error", "warn", "info" or "debug". */
const char *log_level_name(enum log_level level);

/* Log one line (a trailing newline is added). */
void log_msg(enum log_level level, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

#define log_error(...) log_msg(LOG_ERROR, __VA_ARGS__)
#define log_warn(...)  log_msg(LOG_WARN, __VA_ARGS__)
#define log_info(...)  log_msg(LOG_INFO, __VA_ARGS__)
#define log_debug(...) log_msg(LOG_DEBUG, __VA_ARGS__)

#endif
