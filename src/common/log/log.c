/* log.c - component-prefixed, line-atomic logging to stderr. */
#include "log.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "rtcms_error.h"

static char component[129] = "rtcms"; /* a daemon name: up to 128 bytes */
static _Atomic int threshold = LOG_INFO; /* SIGHUP changes it under the threads */
static const char *const names[] = { "error", "warn", "info", "debug" };

void log_init(const char *name, enum log_level level)
{
	snprintf(component, sizeof(component), "%s", name);
	log_level_set(level);
}

int log_level_parse(const char *s)
{
	for (int i = 0; i < 4; i++)
		if (strcmp(s, names[i]) == 0)
			return i;
	return RTCMS_EINVAL;
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

void log_msg(enum log_level level, const char *fmt, ...)
{
	static const char *tags[] = { "ERROR ", "WARN ", "", "debug " };
	char line[2048];
	struct timespec ts;
	struct tm tm;
	size_t n;
	va_list ap;

	if ((int)level > atomic_load_explicit(&threshold, memory_order_relaxed))
		return;
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	n = strftime(line, sizeof(line), "%Y-%m-%dT%H:%M:%S", &tm);
	n += (size_t)snprintf(line + n, sizeof(line) - n, ".%03ldZ [%s] %s",
			      ts.tv_nsec / 1000000, component, tags[level]);
	va_start(ap, fmt);
	int m = vsnprintf(line + n, sizeof(line) - n, fmt, ap);
	va_end(ap);
	if (m < 0)
		m = 0;
	n += (size_t)m;
	if (n > sizeof(line) - 2)
		n = sizeof(line) - 2;
	line[n++] = '\n';
	/* One write per line: lines of different threads never interleave. */
	ssize_t w = write(STDERR_FILENO, line, n);
	(void)w;
}
