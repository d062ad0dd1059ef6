/* test_cordon_set.c - the set of cordoned nodes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "manager/cordon_set.h"
#include "rtcms_error.h"

static void test_add_remove(void **state)
{
	(void)state;
	struct cordon_set s;
	memset(&s, 0, sizeof(s));
	assert_false(cordon_set_has(&s, 2));
	assert_int_equal(cordon_set_add(&s, 2), 0);
	assert_int_equal(cordon_set_add(&s, 2), 0); /* again: no second entry */
	assert_int_equal(s.count, 1);
	assert_int_equal(cordon_set_add(&s, 3), 0);
	assert_true(cordon_set_has(&s, 2) && cordon_set_has(&s, 3));
	assert_false(cordon_set_has(&s, 4));
	assert_true(cordon_set_remove(&s, 2));
	assert_false(cordon_set_remove(&s, 2));
	assert_false(cordon_set_has(&s, 2));
	assert_true(cordon_set_has(&s, 3));
	assert_int_equal(s.count, 1);
}

static void test_full(void **state)
{
	(void)state;
	struct cordon_set s;
	memset(&s, 0, sizeof(s));
	for (uint64_t n = 1; n <= CORDON_MAX; n++)
		assert_int_equal(cordon_set_add(&s, n), 0);
	assert_int_equal(cordon_set_add(&s, CORDON_MAX + 1), RTCMS_ENOSPC);
	assert_int_equal(cordon_set_add(&s, 5), 0); /* one already in: fine */
	assert_true(cordon_set_remove(&s, 1));
	assert_int_equal(cordon_set_add(&s, CORDON_MAX + 1), 0);
	for (uint64_t n = 2; n <= CORDON_MAX + 1; n++)
		assert_true(cordon_set_has(&s, n));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_add_remove),
		cmocka_unit_test(test_full),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
