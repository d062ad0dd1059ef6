/* test_spec.c - program specs: round trip, truncation, invalid specs. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "proto/spec.h"
#include "rtcms_error.h"

static char arena[PROTO_SPEC_MAX + 512];

static void test_roundtrip(void **state)
{
	(void)state;
	struct proto_spec s = { 3, { "/usr/bin/counter", "--table-mib", "4", NULL },
				2, { "RTCMS_LOG=debug", "LANG=C", NULL }, "/var/lib/app" };
	uint8_t buf[PROTO_SPEC_MAX];
	struct proto_spec d;
	int n = proto_spec_encode(&s, buf, sizeof(buf));
	assert_true(n > 0);
	assert_int_equal(proto_spec_decode(buf, (size_t)n, &d, arena, sizeof(arena)), 0);
	assert_int_equal(d.argc, 3);
	assert_string_equal(d.argv[0], "/usr/bin/counter");
	assert_string_equal(d.argv[2], "4");
	assert_null(d.argv[3]);
	assert_int_equal(d.envc, 2);
	assert_string_equal(d.env[1], "LANG=C");
	assert_null(d.env[2]);
	assert_string_equal(d.cwd, "/var/lib/app");
	/* every truncation, and a trailing byte, are refused */
	for (int cut = 0; cut < n; cut++)
		assert_int_equal(proto_spec_decode(buf, (size_t)cut, &d, arena, sizeof(arena)),
				 RTCMS_EPROTO);
	buf[n] = 0;
	assert_int_equal(proto_spec_decode(buf, (size_t)n + 1, &d, arena, sizeof(arena)),
			 RTCMS_EPROTO);
	/* a NUL inside a string is refused */
	buf[4] = 0;
	assert_int_equal(proto_spec_decode(buf, (size_t)n, &d, arena, sizeof(arena)),
			 RTCMS_EPROTO);
}

static void test_invalid_specs(void **state)
{
	(void)state;
	uint8_t buf[PROTO_SPEC_MAX];
	struct proto_spec none = { 0, { NULL }, 0, { NULL }, "" };
	assert_int_equal(proto_spec_encode(&none, buf, sizeof(buf)), RTCMS_EINVAL);
	struct proto_spec rel = { 1, { "/bin/true", NULL }, 0, { NULL }, "relative/dir" };
	assert_int_equal(proto_spec_encode(&rel, buf, sizeof(buf)), RTCMS_EINVAL);
	struct proto_spec env = { 1, { "/bin/true", NULL }, 1, { "NOEQUALS", NULL }, "" };
	assert_int_equal(proto_spec_encode(&env, buf, sizeof(buf)), RTCMS_EINVAL);
	struct proto_spec ok = { 1, { "/bin/true", NULL }, 0, { NULL }, "" };
	assert_int_equal(proto_spec_encode(&ok, buf, 5), RTCMS_ETOOBIG);
	/* larger than PROTO_SPEC_MAX in all */
	static char big[4000];
	memset(big, 'x', sizeof(big) - 1);
	struct proto_spec huge = { 6, { "/bin/true", big, big, big, big, big, NULL }, 0, { NULL }, "" };
	assert_int_equal(proto_spec_encode(&huge, buf, sizeof(buf)), RTCMS_ETOOBIG);
	/* too many arguments announced */
	buf[0] = 0;
	buf[1] = PROTO_SPEC_ARGS_MAX + 1;
	struct proto_spec d;
	assert_int_equal(proto_spec_decode(buf, 2, &d, arena, sizeof(arena)), RTCMS_EPROTO);
	/* an arena too small is a refusal, not an overflow */
	int n = proto_spec_encode(&ok, buf, sizeof(buf));
	char tiny[4];
	assert_int_equal(proto_spec_decode(buf, (size_t)n, &d, tiny, sizeof(tiny)), RTCMS_EPROTO);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_roundtrip),
		cmocka_unit_test(test_invalid_specs),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
