/* log.c - component-prefixed, line-atomic logging to stderr or, as
 * fields, to the journal (log.h). */
#include "log.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <systemd/sd-daemon.h>
#include <time.h>
#include <unistd.h>

#include "rtcms_error.h"

static char component[129] = "rtcms"; /* a daemon name: up to 128 bytes */
static _Atomic int threshold = LOG_INFO; /* SIGHUP changes it under the threads */
static const char *const names[] = { "error", "warn", "info", "debug" };
static bool to_journal;               /* set by log_init, before the threads */

/* The journal sender and the fields every line has ("KEY=value"), set by
 * log_journal_attach before the threads. */
static struct {
	log_journal_send_fn send;
	char ident[160];
	char component[160];
	char node[160];
} jr;

/* The program this thread works on (log_about_set). */
static _Thread_local struct {
	bool set;
	char process[LOG_PROCESS_MAX + 1];
	uint64_t incarnation;
	uint64_t sequence;
} here;

void log_init(const char *name, enum log_level level)
{
	snprintf(component, sizeof(component), "%s", name);
	to_journal = log_stream_is_journal(getenv("JOURNAL_STREAM"), STDERR_FILENO);
	log_level_set(level);
}

bool log_stream_is_journal(const char *journal_stream, int fd)
{
	unsigned long long dev, ino;
	struct stat st;
	int end = 0;

	if (!journal_stream ||
	    sscanf(journal_stream, "%llu:%llu%n", &dev, &ino, &end) != 2 ||
	    journal_stream[end] != '\0')
		return false;
	if (fstat(fd, &st) != 0)
		return false;
	return (unsigned long long)st.st_dev == dev && (unsigned long long)st.st_ino == ino;
}

const char *log_journal_prefix(enum log_level level)
{
	static const char *const prefixes[] = { SD_ERR, SD_WARNING, SD_INFO, SD_DEBUG };
	return (unsigned)level < 4 ? prefixes[level] : SD_INFO;
}

int log_level_parse(const char *s)
{
	for (int i = 0; i < 4; i++)
		if (strcmp(s, names[i]) == 0)
			return i;
	return RTCMS_EINVAL;
}

int log_level_check(const char *s, char *why, size_t whylen)
{
	if (log_level_parse(s) >= 0)
		return 0;
	snprintf(why, whylen, "\"%s\": expected error, warn, info or debug", s);
	return RTCMS_ECONFIG;
}

enum log_level log_level_get(void)
{
	return (enum log_level)atomic_load_explicit(&threshold, memory_order_relaxed);
}

void log_level_set(enum log_level level)
{
	atomic_store_explicit(&threshold, (int)level, memory_order_relaxed);
}

const char *log_level_name(enum log_level level)
{
	return (unsigned)level < 4 ? names[level] : "?";
}

size_t log_format(char *line, size_t cap, bool journal, const struct timespec *ts,
		  const char *name, enum log_level level, const char *fmt, va_list ap)
{
	static const char *tags[] = { "ERROR ", "WARN ", "", "debug " };
	const char *tag = (unsigned)level < 4 ? tags[level] : "";
	size_t n;

	if (journal) {
		n = (size_t)snprintf(line, cap, "%s[%s] %s", log_journal_prefix(level),
				     name, tag);
	} else {
		struct tm tm;
		gmtime_r(&ts->tv_sec, &tm);
		n = strftime(line, cap, "%Y-%m-%dT%H:%M:%S", &tm);
		n += (size_t)snprintf(line + n, cap - n, ".%03ldZ [%s] %s",
				      ts->tv_nsec / 1000000, name, tag);
	}
	if (n > cap - 2)
		n = cap - 2;
	int m = vsnprintf(line + n, cap - n, fmt, ap);
	if (m < 0)
		m = 0;
	n += (size_t)m;
	if (n > cap - 2)
		n = cap - 2;
	line[n++] = '\n';
	return n;
}

void log_journal_attach(const char *name, const char *node, log_journal_send_fn send)
{
	snprintf(jr.ident, sizeof(jr.ident), "SYSLOG_IDENTIFIER=rtcms-%s", name);
	snprintf(jr.component, sizeof(jr.component), "RTCMS_COMPONENT=%s", name);
	snprintf(jr.node, sizeof(jr.node), "RTCMS_NODE=%s", node);
	jr.send = to_journal ? send : NULL;
}

/* One field "KEY=value" at the end of buf (used of cap bytes taken), as
 * iov[*n]; cut where buf ends, left out if nothing is left of it. */
static void __attribute__((format(printf, 6, 7)))
field(struct iovec *iov, int *n, char *buf, size_t cap, size_t *used, const char *fmt, ...)
{
	va_list ap;

	if (*used + 1 >= cap)
		return;
	va_start(ap, fmt);
	int m = vsnprintf(buf + *used, cap - *used, fmt, ap);
	va_end(ap);
	if (m <= 0)
		return;
	size_t len = (size_t)m < cap - *used ? (size_t)m : cap - *used - 1;
	iov[*n].iov_base = buf + *used;
	iov[*n].iov_len = len;
	(*n)++;
	*used += len + 1;
}

static void fixed(struct iovec *iov, int *n, char *text)
{
	if (!text[0])
		return;
	iov[*n].iov_base = text;
	iov[*n].iov_len = strlen(text);
	(*n)++;
}

/* A source file's path from its "src/" on (__FILE__ is absolute). */
static const char *source_path(const char *file)
{
	const char *s = file;
	for (const char *p = strstr(file, "/src/"); p; p = strstr(p + 1, "/src/"))
		s = p + 1;
	return s;
}

int log_journal_fields(struct iovec *iov, char *buf, size_t cap, enum log_level level,
		       const struct log_site *site, const struct log_about *about,
		       const char *msg, size_t msglen)
{
	size_t used = 0;
	int n = 0;

	/* "<N>": the digit is the journal's (syslog's) priority */
	field(iov, &n, buf, cap, &used, "PRIORITY=%c", log_journal_prefix(level)[1]);
	fixed(iov, &n, jr.ident);
	fixed(iov, &n, jr.component);
	fixed(iov, &n, jr.node);
	if (site) {
		field(iov, &n, buf, cap, &used, "CODE_FILE=%s", source_path(site->file));
		field(iov, &n, buf, cap, &used, "CODE_LINE=%d", site->line);
		field(iov, &n, buf, cap, &used, "CODE_FUNC=%s", site->func);
	}
	if (about && about->process) {
		field(iov, &n, buf, cap, &used, "RTCMS_PROCESS=%s", about->process);
		if (about->incarnation)
			field(iov, &n, buf, cap, &used, "RTCMS_INCARNATION=%" PRIu64,
			      about->incarnation);
		if (about->sequence)
			field(iov, &n, buf, cap, &used, "RTCMS_SEQUENCE=%" PRIu64,
			      about->sequence);
	}
	field(iov, &n, buf, cap, &used, "MESSAGE=%.*s", (int)msglen, msg);
	return n;
}

void log_about_set(const char *process, uint64_t incarnation, uint64_t sequence)
{
	snprintf(here.process, sizeof(here.process), "%s", process);
	here.incarnation = incarnation;
	here.sequence = sequence;
	here.set = true;
}

void log_about_clear(void)
{
	here.set = false;
}

/* Send a formatted line (log_format's, for the journal: "<N>...\n") as
 * fields: 0, or the sender's error (then it goes to stderr). */
static int journal_send(enum log_level level, const struct log_site *site,
			const struct log_about *about, const char *line, size_t n)
{
	struct iovec iov[LOG_JOURNAL_FIELDS];
	char buf[2048 + 640]; /* the message and the other fields' values */
	struct log_about mine;
	size_t skip = strlen(log_journal_prefix(level));

	if (!about && here.set) {
		mine = (struct log_about){ here.process, here.incarnation, here.sequence };
		about = &mine;
	}
	int k = log_journal_fields(iov, buf, sizeof(buf), level, site, about, line + skip,
				   n - skip - 1);
	return jr.send(iov, k);
}

void log_emit(enum log_level level, const struct log_site *site,
	      const struct log_about *about, const char *fmt, ...)
{
	char line[2048];
	struct timespec ts;
	va_list ap;

	if ((int)level > atomic_load_explicit(&threshold, memory_order_relaxed))
		return;
	clock_gettime(CLOCK_REALTIME, &ts);
	va_start(ap, fmt);
	size_t n = log_format(line, sizeof(line), to_journal, &ts, component, level, fmt, ap);
	va_end(ap);
	if (jr.send && journal_send(level, site, about, line, n) == 0)
		return;
	/* One write per line: lines of different threads never interleave. */
	ssize_t w = write(STDERR_FILENO, line, n);
	(void)w;
}
