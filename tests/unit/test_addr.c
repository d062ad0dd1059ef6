/* test_addr.c - numeric host:port parsing and formatting. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "net/addr.h"
#include "rtcms_error.h"

static void roundtrip(const char *s)
{
	struct sockaddr_storage ss;
	char buf[80];
	assert_int_equal(net_addr_parse(s, 1, &ss), 0);
	assert_string_equal(net_addr_format((struct sockaddr *)&ss, buf, sizeof(buf)), s);
}

static void test_good(void **state)
{
	(void)state;
	roundtrip("127.0.0.2:7400");
	roundtrip("0.0.0.0:0");
	roundtrip("[::1]:9");
}

static void test_bad(void **state)
{
	(void)state;
	struct sockaddr_storage ss;
	const char *bad[] = { "", "127.0.0.1", "127.0.0.1:", "127.0.0.1:65536",
			      "127.0.0.1:-1", "127.0.0.1:12x", "localhost:80",
			      "[::1]80", "[::1:80", "1.2.3.4.5:80", ":80" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(net_addr_parse(bad[i], 1, &ss), RTCMS_EINVAL);
	assert_int_equal(net_addr_parse("127.0.0.1:0", 0, &ss), RTCMS_EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_good),
		cmocka_unit_test(test_bad),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
