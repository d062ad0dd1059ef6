/*
 * log.h - component-prefixed logging for the daemons and the CLI.
 *
 * Lines look like the thesis' Listing 6.1, with a time stamp:
 *   2026-11-24T12:00:00.123Z [store] [peer 127.0.0.1:40112] PUT p1 1/3 ...
 * Output goes to stderr (one write(2) per line, so lines of several
 * threads never interleave). Thread-safe.
 *
 * When stderr is the journal (systemd's JOURNAL_STREAM names its device
 * and inode), each line starts with its priority instead of the time
 * (the journal keeps its own): "<4>[store] WARN ...", sd-daemon.h's
 * SD_ERR, SD_WARNING, SD_INFO, SD_DEBUG, so `journalctl -p warning`
 * shows the warnings and errors.
 */
#ifndef RTCMS_LOG_H
#define RTCMS_LOG_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <time.h>

enum log_level { LOG_ERROR = 0, LOG_WARN = 1, LOG_INFO = 2, LOG_DEBUG = 3 };

/* Set the component name ("store", "manager", ...) and the threshold. */
void log_init(const char *component, enum log_level level);

/* Parse "error", "warn", "info", "debug" into an enum log_level;
 * RTCMS_EINVAL if unknown. */
int log_level_parse(const char *s);

/* A config check (util/config.h) of a level name: 0, or RTCMS_ECONFIG
 * with the problem in why. */
int log_level_check(const char *s, char *why, size_t whylen);

/* The threshold now, and a new one (a daemon's SIGHUP; any thread may log
 * meanwhile). */
enum log_level log_level_get(void);
void log_level_set(enum log_level level);

/* "error", "warn", "info" or "debug". */
const char *log_level_name(enum log_level level);

/* Whether fd is the journal's stream: journal_stream is JOURNAL_STREAM's
 * value ("DEV:INODE", may be NULL) and fd's device and inode match it. */
bool log_stream_is_journal(const char *journal_stream, int fd);

/* The journal's priority prefix of level: "<3>", "<4>", "<6>" or "<7>". */
const char *log_journal_prefix(enum log_level level);

/* Format one line into line (cap bytes, at least 64), ending in a newline:
 * for the journal "<N>[component] TAG message", else "TIME [component]
 * TAG message" (TIME from ts). Returns its length (a longer message is
 * cut). */
size_t log_format(char *line, size_t cap, bool journal, const struct timespec *ts,
		  const char *component, enum log_level level, const char *fmt,
		  va_list ap) __attribute__((format(printf, 7, 0)));

/* Log one line (a trailing newline is added). */
void log_msg(enum log_level level, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

#define log_error(...) log_msg(LOG_ERROR, __VA_ARGS__)
#define log_warn(...)  log_msg(LOG_WARN, __VA_ARGS__)
#define log_info(...)  log_msg(LOG_INFO, __VA_ARGS__)
#define log_debug(...) log_msg(LOG_DEBUG, __VA_ARGS__)

#endif
