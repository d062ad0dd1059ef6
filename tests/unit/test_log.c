/* test_log.c - the line format: the journal's priority prefix when stderr
 * is the journal (JOURNAL_STREAM matches its device and inode), the time
 * stamp otherwise; the decision itself. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log/log.h"
#include "testutil.h"

static size_t format(char *line, size_t cap, bool journal, enum log_level level,
		     const char *fmt, ...)
{
	struct timespec ts = { .tv_sec = 1795953600, .tv_nsec = 123000000 };
	va_list ap;
	va_start(ap, fmt);
	size_t n = log_format(line, cap, journal, &ts, "store", level, fmt, ap);
	va_end(ap);
	return n;
}

static void test_journal_prefixes(void **state)
{
	(void)state;
	char line[256];
	size_t n = format(line, sizeof(line), true, LOG_WARN, "mirror %d offline", 1);
	assert_int_equal(n, strlen("<4>[store] WARN mirror 1 offline\n"));
	assert_memory_equal(line, "<4>[store] WARN mirror 1 offline\n", n);
	n = format(line, sizeof(line), true, LOG_ERROR, "x");
	assert_memory_equal(line, "<3>[store] ERROR x\n", n);
	n = format(line, sizeof(line), true, LOG_INFO, "x");
	assert_memory_equal(line, "<6>[store] x\n", n);
	n = format(line, sizeof(line), true, LOG_DEBUG, "x");
	assert_memory_equal(line, "<7>[store] debug x\n", n);
	assert_string_equal(log_journal_prefix(LOG_WARN), "<4>");
}

static void test_terminal_keeps_the_time(void **state)
{
	(void)state;
	char line[256];
	size_t n = format(line, sizeof(line), false, LOG_WARN, "hello");
	const char *want = "2026-11-29T12:00:00.123Z [store] WARN hello\n";
	assert_int_equal(n, strlen(want));
	assert_memory_equal(line, want, n);
}

static void test_long_line_is_cut(void **state)
{
	(void)state;
	char line[64], big[200];
	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	size_t n = format(line, sizeof(line), true, LOG_INFO, "%s", big);
	assert_int_equal(n, sizeof(line) - 1);
	assert_int_equal(line[n - 1], '\n');
}

static void test_journal_stream_decision(void **state)
{
	(void)state;
	char *dir = tu_tmpdir("log");
	char path[512], env[128];
	struct stat st;
	snprintf(path, sizeof(path), "%s/stream", dir);
	int fd = open(path, O_WRONLY | O_CREAT, 0600);
	assert_true(fd >= 0);
	assert_int_equal(fstat(fd, &st), 0);
	snprintf(env, sizeof(env), "%llu:%llu", (unsigned long long)st.st_dev,
		 (unsigned long long)st.st_ino);
	assert_true(log_stream_is_journal(env, fd));
	snprintf(env, sizeof(env), "%llu:%llu", (unsigned long long)st.st_dev,
		 (unsigned long long)st.st_ino + 1);
	assert_false(log_stream_is_journal(env, fd));     /* another file */
	assert_false(log_stream_is_journal(NULL, fd));    /* not under systemd */
	assert_false(log_stream_is_journal("", fd));
	assert_false(log_stream_is_journal("12:34:56", fd));
	assert_false(log_stream_is_journal("abc", fd));
	close(fd);
	tu_rmrf(dir);
	free(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_journal_prefixes),
		cmocka_unit_test(test_terminal_keeps_the_time),
		cmocka_unit_test(test_long_line_is_cut),
		cmocka_unit_test(test_journal_stream_decision),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
