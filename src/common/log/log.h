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
 *
 * A daemon that attaches a journal sender (log_journal_attach, with
 * libsystemd's sd_journal_sendv) sends each line to the journal instead,
 * as fields: PRIORITY, MESSAGE (the line without its priority prefix),
 * SYSLOG_IDENTIFIER, CODE_FILE/LINE/FUNC, RTCMS_COMPONENT and RTCMS_NODE,
 * and for a line about one program's checkpoint RTCMS_PROCESS,
 * RTCMS_INCARNATION and RTCMS_SEQUENCE: `journalctl RTCMS_PROCESS=p1`
 * follows p1 through the agents, managers and the store. A line the
 * journal does not take goes to stderr as before. The sender is a
 * pointer so that this module (linked into rtcmsctl and the tests too)
 * needs no libsystemd; the daemons have it.
 *
 * What a line is about: log_prog() names the program, its incarnation
 * and a checkpoint's sequence for one line; log_about_set() names them
 * for every line the calling thread logs until log_about_clear() (work
 * on one program on its own thread: a migration, a restore, a pull).
 * The stderr text is the same either way: the fields are the journal's.
 */
#ifndef RTCMS_LOG_H
#define RTCMS_LOG_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

struct iovec;

enum log_level { LOG_ERROR = 0, LOG_WARN = 1, LOG_INFO = 2, LOG_DEBUG = 3 };

/* Set the name in the lines' brackets ("store", an agent's name, ...)
 * and the threshold. */
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

/* Where a line is logged (CODE_FILE, CODE_LINE, CODE_FUNC). */
struct log_site {
	const char *file;
	int line;
	const char *func;
};

/* What a line is about: a program's process id (NULL: none), its
 * incarnation and a checkpoint's sequence (0: not known, or not one
 * checkpoint's line). */
struct log_about {
	const char *process;
	uint64_t incarnation;
	uint64_t sequence;
};

#define LOG_PROCESS_MAX 128 /* a process id's bytes kept by log_about_set */

/* What sends a line's fields to the journal: sd_journal_sendv's shape
 * (n fields "KEY=value"; 0 or a negative errno). */
typedef int (*log_journal_send_fn)(const struct iovec *iov, int n);

/* Send the lines to the journal from now on, if stderr is the journal
 * (log_init saw JOURNAL_STREAM name it; else nothing changes): component
 * is "store", "manager" or "agent" (RTCMS_COMPONENT, and
 * SYSLOG_IDENTIFIER rtcms-COMPONENT), node the daemon's name
 * (RTCMS_NODE). Call after log_init, before the threads. send NULL:
 * stderr again. */
void log_journal_attach(const char *component, const char *node,
			log_journal_send_fn send);

#define LOG_JOURNAL_FIELDS 11 /* fields of one line at most */

/* The journal fields of one line into iov (LOG_JOURNAL_FIELDS entries),
 * their text into buf (cap bytes, values longer than it allows are cut):
 * PRIORITY of level, SYSLOG_IDENTIFIER, RTCMS_COMPONENT, RTCMS_NODE
 * (those three from log_journal_attach, none before), CODE_FILE (from
 * "src/" on), CODE_LINE, CODE_FUNC (if site), RTCMS_PROCESS,
 * RTCMS_INCARNATION, RTCMS_SEQUENCE (if about names a process; the
 * numbers if not 0), then MESSAGE: msglen bytes of msg. Returns the
 * number of fields. */
int log_journal_fields(struct iovec *iov, char *buf, size_t cap, enum log_level level,
		       const struct log_site *site, const struct log_about *about,
		       const char *msg, size_t msglen);

/* The program the calling thread works on, for its lines (the journal's
 * RTCMS_PROCESS...; process is copied, cut at LOG_PROCESS_MAX bytes); a
 * line's own log_prog() fields win. Set it again when the sequence is
 * known; clear it when the work ends. Not nested: a clear forgets it. */
void log_about_set(const char *process, uint64_t incarnation, uint64_t sequence);
void log_about_clear(void);

/* Log one line (a trailing newline is added); site and about may be
 * NULL. The macros below fill them in. */
void log_emit(enum log_level level, const struct log_site *site,
	      const struct log_about *about, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

#define LOG_SITE (&(const struct log_site){ __FILE__, __LINE__, __func__ })

/* log_msg(level, fmt, ...): one line. */
#define log_msg(level, ...) log_emit((level), LOG_SITE, NULL, __VA_ARGS__)

#define log_error(...) log_msg(LOG_ERROR, __VA_ARGS__)
#define log_warn(...)  log_msg(LOG_WARN, __VA_ARGS__)
#define log_info(...)  log_msg(LOG_INFO, __VA_ARGS__)
#define log_debug(...) log_msg(LOG_DEBUG, __VA_ARGS__)

/* log_prog(level, process, incarnation, sequence, fmt, ...): one line
 * about a program's checkpoint (incarnation, sequence 0 if not known);
 * the text still names them itself, for stderr. */
#define log_prog(level, process, incarnation, sequence, ...)                          \
	log_emit((level), LOG_SITE,                                                  \
		 &(const struct log_about){ (process), (incarnation), (sequence) },  \
		 __VA_ARGS__)

/* log_with(level, about, fmt, ...): the same with a struct log_about *
 * (lines of one request or job that share it). */
#define log_with(level, about, ...) log_emit((level), LOG_SITE, (about), __VA_ARGS__)

#endif
