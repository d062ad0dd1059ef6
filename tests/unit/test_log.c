/* test_log.c - the line format: the journal's priority prefix when stderr
 * is the journal (JOURNAL_STREAM matches its device and inode), the time
 * stamp otherwise; the decision itself; the journal's fields of a line
 * (component, node, code location, the program a line is about, from the
 * line or from the thread), and stderr when the journal refuses it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
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

/* The value of field key among n fields, as a string in out (NULL if
 * there is no such field). */
static const char *value_of(const struct iovec *iov, int n, const char *key, char *out,
			    size_t cap)
{
	size_t k = strlen(key);
	for (int i = 0; i < n; i++) {
		const char *f = iov[i].iov_base;
		if (iov[i].iov_len > k && memcmp(f, key, k) == 0 && f[k] == '=') {
			size_t len = iov[i].iov_len - k - 1;
			assert_true(len < cap);
			memcpy(out, f + k + 1, len);
			out[len] = '\0';
			return out;
		}
	}
	return NULL;
}

static void assert_field(const struct iovec *iov, int n, const char *key, const char *want)
{
	char v[2048];
	const char *got = value_of(iov, n, key, v, sizeof(v));
	if (!want) {
		if (got)
			fail_msg("%s=%s, expected no such field", key, got);
		return;
	}
	if (!got)
		fail_msg("no field %s (expected %s)", key, want);
	assert_string_equal(got, want);
}

static void test_journal_fields(void **state)
{
	(void)state;
	struct iovec iov[LOG_JOURNAL_FIELDS];
	char buf[1024];
	const char *msg = "[agent-7] WARN [program p1] pid 42 killed by signal 9";
	struct log_site site = { "/build/tree/src/agent/restart.c", 49, "restart_reap" };
	struct log_about about = { "p1", 3, 17 };

	log_journal_attach("agent", "agent-7", NULL);
	int n = log_journal_fields(iov, buf, sizeof(buf), LOG_WARN, &site, &about, msg,
				   strlen(msg));
	assert_int_equal(n, LOG_JOURNAL_FIELDS);
	assert_field(iov, n, "PRIORITY", "4");
	assert_field(iov, n, "SYSLOG_IDENTIFIER", "rtcms-agent");
	assert_field(iov, n, "RTCMS_COMPONENT", "agent");
	assert_field(iov, n, "RTCMS_NODE", "agent-7");
	assert_field(iov, n, "CODE_FILE", "src/agent/restart.c");
	assert_field(iov, n, "CODE_LINE", "49");
	assert_field(iov, n, "CODE_FUNC", "restart_reap");
	assert_field(iov, n, "RTCMS_PROCESS", "p1");
	assert_field(iov, n, "RTCMS_INCARNATION", "3");
	assert_field(iov, n, "RTCMS_SEQUENCE", "17");
	assert_field(iov, n, "MESSAGE", msg);

	/* a program without a known checkpoint; a line about none; no site */
	about = (struct log_about){ "p2", 1, 0 };
	n = log_journal_fields(iov, buf, sizeof(buf), LOG_ERROR, NULL, &about, "x", 1);
	assert_field(iov, n, "PRIORITY", "3");
	assert_field(iov, n, "RTCMS_PROCESS", "p2");
	assert_field(iov, n, "RTCMS_INCARNATION", "1");
	assert_field(iov, n, "RTCMS_SEQUENCE", NULL);
	assert_field(iov, n, "CODE_FILE", NULL);
	n = log_journal_fields(iov, buf, sizeof(buf), LOG_DEBUG, &site, NULL, "y", 1);
	assert_field(iov, n, "PRIORITY", "7");
	assert_field(iov, n, "RTCMS_PROCESS", NULL);
	assert_field(iov, n, "RTCMS_INCARNATION", NULL);
	assert_field(iov, n, "RTCMS_NODE", "agent-7");
	assert_field(iov, n, "MESSAGE", "y");
	n = log_journal_fields(iov, buf, sizeof(buf), LOG_INFO, NULL, NULL, "z", 1);
	assert_field(iov, n, "PRIORITY", "6");
	/* a file outside src/ keeps its path */
	site.file = "tests/unit/test_log.c";
	n = log_journal_fields(iov, buf, sizeof(buf), LOG_INFO, &site, NULL, "z", 1);
	assert_field(iov, n, "CODE_FILE", "tests/unit/test_log.c");
}

static void test_journal_fields_cut(void **state)
{
	(void)state;
	struct iovec iov[LOG_JOURNAL_FIELDS];
	char buf[48], big[300];
	struct log_about about = { "p1", 3, 17 };

	memset(big, 'm', sizeof(big));
	log_journal_attach("store", "store-a", NULL);
	int n = log_journal_fields(iov, buf, sizeof(buf), LOG_INFO, NULL, &about, big,
				   sizeof(big));
	/* what fits, each field within buf, nothing beyond it */
	assert_true(n >= 4);
	for (int i = 0; i < n; i++) {
		const char *b = iov[i].iov_base;
		if (b >= buf && b < buf + sizeof(buf))
			assert_true(b + iov[i].iov_len < buf + sizeof(buf));
		assert_non_null(memchr(b, '=', iov[i].iov_len));
	}
}

/* What the fake journal got: the fields of the last entry. */
static struct {
	int calls;
	int answer;                    /* what the sender returns */
	int n;
	char text[LOG_JOURNAL_FIELDS][2048];
	struct iovec iov[LOG_JOURNAL_FIELDS];
} fake;

static int fake_send(const struct iovec *iov, int n)
{
	fake.calls++;
	if (fake.answer)
		return fake.answer;
	assert_true(n <= LOG_JOURNAL_FIELDS);
	fake.n = n;
	for (int i = 0; i < n; i++) {
		assert_true(iov[i].iov_len < sizeof(fake.text[i]));
		memcpy(fake.text[i], iov[i].iov_base, iov[i].iov_len);
		fake.iov[i] = (struct iovec){ fake.text[i], iov[i].iov_len };
	}
	return 0;
}

static void *log_elsewhere(void *arg)
{
	(void)arg;
	log_info("from another thread");
	return NULL;
}

static int saved_stderr = -1;          /* while stderr is a file */
static char stderr_path[512];

/* stderr: the file at path from now on, and JOURNAL_STREAM naming it;
 * returns the saved stderr. */
static int stderr_to(const char *path)
{
	struct stat st;
	char env[128];
	int saved = dup(STDERR_FILENO);
	saved_stderr = saved;
	snprintf(stderr_path, sizeof(stderr_path), "%s", path);
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	assert_true(saved >= 0 && fd >= 0);
	assert_int_equal(dup2(fd, STDERR_FILENO), STDERR_FILENO);
	close(fd);
	assert_int_equal(fstat(STDERR_FILENO, &st), 0);
	snprintf(env, sizeof(env), "%llu:%llu", (unsigned long long)st.st_dev,
		 (unsigned long long)st.st_ino);
	setenv("JOURNAL_STREAM", env, 1);
	return saved;
}

static void stderr_back(int saved)
{
	assert_int_equal(dup2(saved, STDERR_FILENO), STDERR_FILENO);
	close(saved);
	saved_stderr = -1;
	unsetenv("JOURNAL_STREAM");
}

/* After a failure with stderr in a file: stderr back, and what cmocka
 * said there shown. */
static int stderr_teardown(void **state)
{
	(void)state;
	if (saved_stderr < 0)
		return 0;
	stderr_back(saved_stderr);
	FILE *f = fopen(stderr_path, "r");
	char line[512];
	while (f && fgets(line, sizeof(line), f))
		fputs(line, stderr);
	if (f)
		fclose(f);
	return 0;
}

static void test_lines_to_the_journal(void **state)
{
	(void)state;
	char *dir = tu_tmpdir("log");
	char path[512], got[512];
	snprintf(path, sizeof(path), "%s/stderr", dir);
	int saved = stderr_to(path);

	memset(&fake, 0, sizeof(fake));
	log_init("store", LOG_INFO);
	log_journal_attach("store", "store-a", fake_send);

	log_prog(LOG_WARN, "p1", 2, 7, "[peer x] PUT %s %d/%d refused", "p1", 2, 7);
	assert_int_equal(fake.calls, 1);
	assert_field(fake.iov, fake.n, "PRIORITY", "4");
	assert_field(fake.iov, fake.n, "MESSAGE", "[store] WARN [peer x] PUT p1 2/7 refused");
	assert_field(fake.iov, fake.n, "RTCMS_COMPONENT", "store");
	assert_field(fake.iov, fake.n, "RTCMS_NODE", "store-a");
	assert_field(fake.iov, fake.n, "RTCMS_PROCESS", "p1");
	assert_field(fake.iov, fake.n, "RTCMS_INCARNATION", "2");
	assert_field(fake.iov, fake.n, "RTCMS_SEQUENCE", "7");
	assert_field(fake.iov, fake.n, "CODE_FUNC", "test_lines_to_the_journal");
	char file[512]; /* __FILE__: outside src/ its path stays whole */
	assert_non_null(value_of(fake.iov, fake.n, "CODE_FILE", file, sizeof(file)));
	assert_string_equal(file, __FILE__);

	/* below the threshold: nothing */
	log_debug("hidden");
	assert_int_equal(fake.calls, 1);

	/* the thread's program, for lines that name none; a line's own wins;
	 * other threads do not see it */
	log_about_set("p9", 4, 0);
	log_info("restoring");
	assert_field(fake.iov, fake.n, "RTCMS_PROCESS", "p9");
	assert_field(fake.iov, fake.n, "RTCMS_INCARNATION", "4");
	assert_field(fake.iov, fake.n, "RTCMS_SEQUENCE", NULL);
	log_about_set("p9", 4, 12);
	log_error("restore failed");
	assert_field(fake.iov, fake.n, "PRIORITY", "3");
	assert_field(fake.iov, fake.n, "RTCMS_SEQUENCE", "12");
	log_prog(LOG_INFO, "p8", 1, 3, "other");
	assert_field(fake.iov, fake.n, "RTCMS_PROCESS", "p8");
	pthread_t t;
	assert_int_equal(pthread_create(&t, NULL, log_elsewhere, NULL), 0);
	pthread_join(t, NULL);
	assert_field(fake.iov, fake.n, "MESSAGE", "[store] from another thread");
	assert_field(fake.iov, fake.n, "RTCMS_PROCESS", NULL);
	log_about_clear();
	log_info("done");
	assert_field(fake.iov, fake.n, "RTCMS_PROCESS", NULL);
	assert_int_equal(fake.calls, 6);

	/* the journal refuses: that line goes to stderr, as without it */
	fake.answer = -ECONNREFUSED;
	log_prog(LOG_WARN, "p1", 2, 8, "journal away");
	assert_int_equal(fake.calls, 7);
	fake.answer = 0;
	log_info("journal back");
	assert_field(fake.iov, fake.n, "MESSAGE", "[store] journal back");

	log_journal_attach("store", "store-a", NULL);
	log_info("to stderr again");
	assert_int_equal(fake.calls, 8);
	stderr_back(saved);

	FILE *f = fopen(path, "r");
	assert_non_null(f);
	assert_non_null(fgets(got, sizeof(got), f));
	assert_string_equal(got, "<4>[store] WARN journal away\n");
	assert_non_null(fgets(got, sizeof(got), f));
	assert_string_equal(got, "<6>[store] to stderr again\n");
	assert_null(fgets(got, sizeof(got), f));
	fclose(f);
	tu_rmrf(dir);
	free(dir);
}

static void test_no_journal_no_fields(void **state)
{
	(void)state;
	char *dir = tu_tmpdir("log");
	char path[512], got[512];
	snprintf(path, sizeof(path), "%s/stderr", dir);
	int saved = stderr_to(path);
	unsetenv("JOURNAL_STREAM"); /* stderr is not the journal */

	memset(&fake, 0, sizeof(fake));
	log_init("manager-1", LOG_INFO);
	log_journal_attach("manager", "manager-1", fake_send);
	log_prog(LOG_INFO, "p1", 1, 1, "durable");
	stderr_back(saved);
	assert_int_equal(fake.calls, 0);

	FILE *f = fopen(path, "r");
	assert_non_null(f);
	assert_non_null(fgets(got, sizeof(got), f));
	fclose(f);
	/* "2026-...Z [manager-1] durable\n", the time stamp as always */
	const char *tail = strstr(got, "Z [manager-1] durable\n");
	assert_non_null(tail);
	assert_int_equal(tail - got, strlen("2026-11-29T12:00:00.123"));
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
		cmocka_unit_test(test_journal_fields),
		cmocka_unit_test(test_journal_fields_cut),
		cmocka_unit_test_teardown(test_lines_to_the_journal, stderr_teardown),
		cmocka_unit_test_teardown(test_no_journal_no_fields, stderr_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
