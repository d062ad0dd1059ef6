/* test_keyfile.c - key generation, loading, and refusal of bad files. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "rtcms_error.h"
#include "testutil.h"
#include "util/keyfile.h"

static void test_generate_load(void **state)
{
	(void)state;
	char *dir = tu_tmpdir("key");
	char path[512], err[512];
	struct proto_key a, b;
	struct stat st;

	snprintf(path, sizeof(path), "%s/k", dir);
	assert_int_equal(keyfile_generate(path, 0, err, sizeof(err)), 0);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	assert_int_equal(keyfile_load(path, &a, err, sizeof(err)), 0);
	/* refuses to overwrite without force */
	assert_int_equal(keyfile_generate(path, 0, err, sizeof(err)), RTCMS_EEXIST);
	assert_non_null(strstr(err, "--force"));
	assert_int_equal(keyfile_generate(path, 1, err, sizeof(err)), 0);
	assert_int_equal(keyfile_load(path, &b, err, sizeof(err)), 0);
	assert_memory_not_equal(a.bytes, b.bytes, sizeof(a.bytes));
	tu_rmrf(dir);
	free(dir);
}

static void expect_bad(const char *content)
{
	char *dir = tu_tmpdir("key");
	char path[512], err[512];
	struct proto_key k;
	snprintf(path, sizeof(path), "%s/k", dir);
	FILE *f = fopen(path, "w");
	fputs(content, f);
	fclose(f);
	assert_int_equal(keyfile_load(path, &k, err, sizeof(err)), RTCMS_ECONFIG);
	assert_non_null(strstr(err, path));
	tu_rmrf(dir);
	free(dir);
}

static void test_bad_files(void **state)
{
	(void)state;
	char err[512];
	struct proto_key k;
	expect_bad("");
	expect_bad("hello\n");
	expect_bad("rtcms-key-v1 abcd\n");
	expect_bad("rtcms-key-v1 zz23456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\n");
	expect_bad("rtcms-key-v1 0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef00\n");
	assert_int_equal(keyfile_load("/nonexistent/k", &k, err, sizeof(err)), RTCMS_ECONFIG);
}

/* a key file others may read or write is refused, saying how to fix it */
static void test_open_mode_refused(void **state)
{
	(void)state;
	char *dir = tu_tmpdir("key");
	char path[512], err[512];
	struct proto_key k;
	snprintf(path, sizeof(path), "%s/k", dir);
	assert_int_equal(keyfile_generate(path, 0, err, sizeof(err)), 0);
	const mode_t modes[] = { 0640, 0604, 0660, 0644 };
	for (size_t i = 0; i < sizeof(modes) / sizeof(modes[0]); i++) {
		assert_int_equal(chmod(path, modes[i]), 0);
		assert_int_equal(keyfile_load(path, &k, err, sizeof(err)), RTCMS_ECONFIG);
		assert_non_null(strstr(err, "chmod 600"));
		assert_non_null(strstr(err, path));
	}
	assert_int_equal(chmod(path, 0400), 0);
	assert_int_equal(keyfile_load(path, &k, err, sizeof(err)), 0);
	tu_rmrf(dir);
	free(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_generate_load),
		cmocka_unit_test(test_bad_files),
		cmocka_unit_test(test_open_mode_refused),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
