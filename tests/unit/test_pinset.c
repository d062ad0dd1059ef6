/*
 * test_pinset.c - the counted set of pinned chunk hashes: counting,
 * removal, many entries, and a table that does not grow without bound
 * when many distinct hashes come and go.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "proto/msg.h"
#include "rtcms_error.h"
#include "store/pinset.h"

static void hash_of(uint64_t i, uint8_t h[PROTO_HASH_SIZE])
{
	proto_chunk_hash((const uint8_t *)&i, sizeof(i), h);
}

static void test_counts(void **state)
{
	(void)state;
	struct pinset ps = { 0 };
	uint8_t a[PROTO_HASH_SIZE], b[PROTO_HASH_SIZE];

	hash_of(1, a);
	hash_of(2, b);
	assert_false(pinset_has(&ps, a));
	pinset_del(&ps, a); /* absent: no-op, also on an empty set */
	assert_int_equal(pinset_add(&ps, a), 0);
	assert_int_equal(pinset_add(&ps, a), 0);
	assert_true(pinset_has(&ps, a));
	assert_false(pinset_has(&ps, b));
	pinset_del(&ps, a);
	assert_true(pinset_has(&ps, a)); /* one reference left */
	pinset_del(&ps, b);
	assert_true(pinset_has(&ps, a));
	pinset_del(&ps, a);
	assert_false(pinset_has(&ps, a));
	pinset_free(&ps);
	pinset_free(&ps);
}

static void test_many(void **state)
{
	(void)state;
	struct pinset ps = { 0 };
	uint8_t h[PROTO_HASH_SIZE];

	for (uint64_t i = 0; i < 20000; i++) {
		hash_of(i, h);
		assert_int_equal(pinset_add(&ps, h), 0);
	}
	for (uint64_t i = 0; i < 20000; i += 2) {
		hash_of(i, h);
		pinset_del(&ps, h);
	}
	for (uint64_t i = 0; i < 20000; i++) {
		hash_of(i, h);
		assert_int_equal(pinset_has(&ps, h), (int)(i & 1));
	}
	pinset_free(&ps);
}

/* A long-running store pins millions of distinct chunks over time, a few
 * at once: the table stays sized for the few. */
static void test_churn_stays_small(void **state)
{
	(void)state;
	struct pinset ps = { 0 };
	uint8_t h[PROTO_HASH_SIZE], live[PROTO_HASH_SIZE];

	hash_of(~0ull, live);
	assert_int_equal(pinset_add(&ps, live), 0);
	for (uint64_t i = 0; i < 200000; i++) {
		hash_of(i, h);
		assert_int_equal(pinset_add(&ps, h), 0);
		assert_true(pinset_has(&ps, h));
		pinset_del(&ps, h);
		assert_false(pinset_has(&ps, h));
	}
	assert_true(pinset_has(&ps, live));
	assert_true(ps.cap <= 4096);
	pinset_free(&ps);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_counts),
		cmocka_unit_test(test_many),
		cmocka_unit_test(test_churn_stays_small),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
