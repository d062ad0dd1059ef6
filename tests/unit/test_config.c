/* test_config.c - INI parsing: values, ranges, and error messages that
 * name the file, the line and the field. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "rtcms_error.h"
#include "testutil.h"
#include "util/config.h"

static char listen_addr[64];
static uint64_t retain;
static struct config_list mirrors;
static int verbose;
static char mode[16];

/* a check (config.h): only "a" or "b" */
static int mode_check(const char *v, char *why, size_t whylen)
{
	if (strcmp(v, "a") == 0 || strcmp(v, "b") == 0)
		return 0;
	snprintf(why, whylen, "\"%s\": expected a or b", v);
	return RTCMS_ECONFIG;
}

static const struct config_field fields[] = {
	{ "store", "listen", CONFIG_STR, listen_addr, sizeof(listen_addr), 0, 0, NULL },
	{ "store", "retain", CONFIG_U64, &retain, 0, 1, 100, NULL },
	{ "store", "mirror", CONFIG_LIST, &mirrors, 0, 0, 0, NULL },
	{ "log", "verbose", CONFIG_BOOL, &verbose, 0, 0, 0, NULL },
	{ "store", "mode", CONFIG_STR, mode, sizeof(mode), 0, 0, mode_check },
	{ "store", "modes", CONFIG_LIST, &mirrors, 0, 0, 0, mode_check },
	{ NULL, NULL, 0, NULL, 0, 0, 0, NULL },
};

static char *write_file(const char *text)
{
	char *dir = tu_tmpdir("config");
	char *path;
	if (asprintf(&path, "%s/x.ini", dir) < 0)
		abort();
	FILE *f = fopen(path, "w");
	fputs(text, f);
	fclose(f);
	free(dir);
	return path;
}

static void cleanup(char *path)
{
	unlink(path);
	*strrchr(path, '/') = '\0';
	rmdir(path);
	free(path);
}

static void reset(void)
{
	memset(listen_addr, 0, sizeof(listen_addr));
	retain = 0;
	memset(&mirrors, 0, sizeof(mirrors));
	verbose = 0;
	memset(mode, 0, sizeof(mode));
}

static void test_good(void **state)
{
	(void)state;
	char err[512];
	reset();
	char *p = write_file("; comment\n[store]\nlisten = 127.0.0.2:7400\n"
			     "retain = 3\nmirror = /a, /b\nmirror = /c\n"
			     "[log]\nverbose = yes\n");
	assert_int_equal(config_load(p, fields, err, sizeof(err)), 0);
	assert_string_equal(listen_addr, "127.0.0.2:7400");
	assert_int_equal(retain, 3);
	assert_int_equal(mirrors.count, 3);
	assert_string_equal(mirrors.items[1], "/b");
	assert_string_equal(mirrors.items[2], "/c");
	assert_int_equal(verbose, 1);
	cleanup(p);
}

static void expect_error(const char *text, const char *needle)
{
	char err[512];
	reset();
	char *p = write_file(text);
	assert_int_equal(config_load(p, fields, err, sizeof(err)), RTCMS_ECONFIG);
	if (!strstr(err, needle) || !strstr(err, p))
		fail_msg("error \"%s\" lacks \"%s\" or the file name", err, needle);
	cleanup(p);
}

static void test_errors_name_line_and_field(void **state)
{
	(void)state;
	expect_error("[store]\nlisten = x\nretain = 0\n", ":3: [store] retain: 0 is out of range");
	expect_error("[store]\n\nretain = many\n", ":3: [store] retain: \"many\" is not a number");
	expect_error("[store]\nlistne = x\n", ":2: [store] listne: unknown setting");
	expect_error("[nope]\nlisten = x\n", ":2: [nope] listen: unknown setting");
	expect_error("[log]\nverbose = perhaps\n", ":2: [log] verbose:");
	expect_error("[store]\nthis line is broken\n", ":2: syntax error");
	/* a field's own check: file, line, field and its reason */
	expect_error("[store]\nmode = a\n\nmode = c\n", ":4: [store] mode: \"c\": expected a or b");
	expect_error("[store]\nmodes = a, z\n", ":2: [store] modes: \"z\": expected a or b");
}

static void test_check_applies_to_overrides(void **state)
{
	(void)state;
	char err[512];
	reset();
	assert_int_equal(config_set(&fields[4], "b", err, sizeof(err)), 0);
	assert_string_equal(mode, "b");
	assert_int_equal(config_set(&fields[4], "q", err, sizeof(err)), RTCMS_ECONFIG);
	assert_string_equal(mode, "b"); /* refused: unchanged */
	assert_non_null(strstr(err, "expected a or b"));
}

static void test_missing_file(void **state)
{
	(void)state;
	char err[512];
	assert_int_equal(config_load("/nonexistent/x.ini", fields, err, sizeof(err)),
			 RTCMS_ECONFIG);
	assert_non_null(strstr(err, "/nonexistent/x.ini"));
}

static void test_units(void **state)
{
	(void)state;
	uint64_t v;
	assert_int_equal(config_parse_u64("64K", &v), 0);
	assert_int_equal(v, 65536);
	assert_int_equal(config_parse_u64("2s", &v), 0);
	assert_int_equal(v, 2000);
	assert_int_equal(config_parse_u64("150ms", &v), 0);
	assert_int_equal(v, 150);
	assert_int_equal(config_parse_u64("-1", &v), RTCMS_EINVAL);
	assert_int_equal(config_parse_u64("1x", &v), RTCMS_EINVAL);
	assert_int_equal(config_parse_u64("99999999999999999999", &v), RTCMS_EINVAL);
	assert_int_equal(config_parse_u64("18014398509481984G", &v), RTCMS_EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_good),
		cmocka_unit_test(test_errors_name_line_and_field),
		cmocka_unit_test(test_check_applies_to_overrides),
		cmocka_unit_test(test_missing_file),
		cmocka_unit_test(test_units),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
