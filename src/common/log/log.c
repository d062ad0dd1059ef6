/* log.c - component-prefixed, line-atomic logging to stderr. */
#include "log.h"

#include <stdarg.h>
#include <stdlib.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <systemd/sd-daemon.h>
#include <time.h>
#include <unistd.h>

#include "rtcms_error.h"

static char component[129] = "rtcms"; /* a daemon name: up to 128 bytes */
static _Atomic int threshold = LOG_INFO; /* SIGHUP changes it under the threads */
static const char *const names[] = { "error", "warn", "info", "debug" };
static bool to_journal;               /* set by log_init, before the threads */

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

void log_msg(enum log_level level, const char *fmt, ...)
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
	/* One write per line: lines of different threads never interleave. */
	ssize_t w = write(STDERR_FILENO, line, n);
	(void)w;
}
