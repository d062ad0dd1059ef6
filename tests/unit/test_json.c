/* test_json.c - JSON strings from any bytes: valid UTF-8 kept, everything
 * else escaped, so rtcmsctl's --json output always parses. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/json.h"

/* json_write_str(s) as a string (static buffer). */
static const char *written(const char *s)
{
	static char buf[4096];
	FILE *f = fmemopen(buf, sizeof(buf), "w");
	assert_non_null(f);
	json_write_str(f, s);
	assert_int_equal(fclose(f), 0);
	return buf;
}

static void test_plain_and_escapes(void **state)
{
	(void)state;
	assert_string_equal(written(""), "\"\"");
	assert_string_equal(written("agent-1"), "\"agent-1\"");
	assert_string_equal(written("a\"b\\c"), "\"a\\\"b\\\\c\"");
	assert_string_equal(written("tab\there\nx\x01"), "\"tab\\u0009here\\u000ax\\u0001\"");
	assert_string_equal(written("del\x7f"), "\"del\x7f\"");
}

static void test_valid_utf8_is_kept(void **state)
{
	(void)state;
	/* 2, 3 and 4 bytes, at the edges of their ranges */
	assert_string_equal(written("Gr\xc3\xbc\xc3\x9f"), "\"Gr\xc3\xbc\xc3\x9f\"");
	assert_string_equal(written("\xe2\x82\xac \xed\x9f\xbf \xef\xbf\xbf"),
			    "\"\xe2\x82\xac \xed\x9f\xbf \xef\xbf\xbf\"");
	assert_string_equal(written("\xf0\x9f\x98\x80 \xf4\x8f\xbf\xbf"),
			    "\"\xf0\x9f\x98\x80 \xf4\x8f\xbf\xbf\"");
}

static void test_invalid_bytes_are_escaped(void **state)
{
	(void)state;
	/* a lone continuation byte, a byte that never starts a sequence */
	assert_string_equal(written("a\x80z"), "\"a\\u0080z\"");
	assert_string_equal(written("\xff\xfe"), "\"\\u00ff\\u00fe\"");
	/* overlong forms: C0/C1 leads, E0 and F0 with too small a second byte */
	assert_string_equal(written("\xc0\xaf"), "\"\\u00c0\\u00af\"");
	assert_string_equal(written("\xe0\x80\xaf"), "\"\\u00e0\\u0080\\u00af\"");
	assert_string_equal(written("\xf0\x80\x80\xaf"), "\"\\u00f0\\u0080\\u0080\\u00af\"");
	/* a surrogate (U+D800) and a code point above U+10FFFF */
	assert_string_equal(written("\xed\xa0\x80"), "\"\\u00ed\\u00a0\\u0080\"");
	assert_string_equal(written("\xf4\x90\x80\x80"), "\"\\u00f4\\u0090\\u0080\\u0080\"");
	/* truncated sequences: at the end, and before an ASCII byte */
	assert_string_equal(written("x\xe2\x82"), "\"x\\u00e2\\u0082\"");
	assert_string_equal(written("\xc3z"), "\"\\u00c3z\"");
	/* a valid sequence right after an invalid byte is kept */
	assert_string_equal(written("\xff\xc3\xbc"), "\"\\u00ff\xc3\xbc\"");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_plain_and_escapes),
		cmocka_unit_test(test_valid_utf8_is_kept),
		cmocka_unit_test(test_invalid_bytes_are_escaped),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
