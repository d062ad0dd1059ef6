/*
 * test_fence.c - the store's manager leases and node fences (fence.c):
 * a fence waits for every manager holding a lease to confirm it or for its
 * lease to end, is refused while another manager hears the node, becomes
 * complete hold_ms later and is lifted after that; managers known from
 * before a restart count as holding their lease until they renew.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "rtcms_error.h"
#include "store/fence.h"

static void renew(struct fence_table *t, const char *name, uint64_t gen, uint64_t now,
		  const uint64_t *alive, uint16_t n, struct proto_mlease_ok *out)
{
	struct proto_mlease q;
	memset(&q, 0, sizeof(q));
	strcpy(q.name, name);
	q.lease_ms = 1000;
	q.fence_gen = gen;
	q.alive_count = n;
	for (uint16_t i = 0; i < n; i++)
		q.alive[i] = alive[i];
	assert_int_equal(fence_table_renew(t, &q, now, out), 0);
}

static int fence(struct fence_table *t, const char *by, uint64_t node, uint64_t now,
		 struct proto_fence_ok *ok, uint64_t *created)
{
	struct proto_fence f;
	char why[256];
	memset(&f, 0, sizeof(f));
	f.node = node;
	strcpy(f.by, by);
	f.hold_ms = 300;
	return fence_table_fence(t, &f, now, ok, created, why, sizeof(why));
}

static void test_fence_waits_for_every_manager(void **state)
{
	struct fence_table *t = fence_table_new(10000, 0);
	struct proto_mlease_ok ok;
	struct proto_fence_ok f;
	uint64_t created, lifted[8];
	(void)state;

	renew(t, "m1", 0, 0, NULL, 0, &ok);
	renew(t, "m2", 0, 0, NULL, 0, &ok);
	assert_int_equal(ok.manager_count, 2);
	assert_int_equal(fence(t, "m1", 7, 10, &f, &created), 0);
	assert_int_equal(created, 1);
	/* m2 has not confirmed it: pending until it does or its lease ends */
	assert_int_equal(f.state, PROTO_FENCE_PENDING);
	assert_true(f.wait_ms > 0 && f.wait_ms <= 1000);
	renew(t, "m2", 0, 50, NULL, 0, &ok); /* its reply lists the fence ... */
	assert_int_equal(ok.fence_count, 1);
	assert_int_equal(ok.fences[0].node, 7);
	assert_int_equal(fence(t, "m1", 7, 60, &f, &created), 0);
	assert_int_equal(created, 0);
	assert_int_equal(f.state, PROTO_FENCE_PENDING);
	renew(t, "m2", ok.fence_gen, 100, NULL, 0, &ok); /* ... then it confirms */
	assert_int_equal(fence(t, "m1", 7, 110, &f, &created), 0);
	assert_int_equal(f.state, PROTO_FENCE_EFFECTIVE);
	assert_true(f.wait_ms > 0 && f.wait_ms <= 300); /* hold_ms from when it took hold */
	assert_int_equal(fence(t, "m1", 7, 410, &f, &created), 0);
	assert_int_equal(f.state, PROTO_FENCE_COMPLETE);
	assert_int_equal(fence_table_expire(t, 500, lifted, 8), 0);
	assert_int_equal(fence_table_expire(t, 410 + FENCE_LINGER_MS, lifted, 8), 1);
	assert_int_equal(lifted[0], 7);
	renew(t, "m2", ok.fence_gen, 3000, NULL, 0, &ok);
	assert_int_equal(ok.fence_count, 0);
	fence_table_free(t);
}

static void test_fence_refused_while_heard(void **state)
{
	struct fence_table *t = fence_table_new(10000, 0);
	struct proto_mlease_ok ok;
	struct proto_fence_ok f;
	uint64_t created, alive[] = { 7 };
	(void)state;

	renew(t, "m1", 0, 0, NULL, 0, &ok);
	renew(t, "m2", 0, 0, alive, 1, &ok);
	assert_int_equal(fence(t, "m1", 7, 10, &f, &created), RTCMS_EBUSY);
	/* m2 stops hearing it: the fence is made */
	renew(t, "m2", 0, 20, NULL, 0, &ok);
	assert_int_equal(fence(t, "m1", 7, 30, &f, &created), 0);
	assert_int_equal(created, 1);
	/* a manager whose lease ran out counts for nothing */
	assert_int_equal(fence(t, "m1", 8, 30, &f, &created), 0);
	fence_table_free(t);
	t = fence_table_new(10000, 0);
	renew(t, "m1", 0, 0, NULL, 0, &ok);
	renew(t, "m2", 0, 0, alive, 1, &ok);
	assert_int_equal(fence(t, "m1", 7, 2000, &f, &created), 0); /* m2's lease ended */
	assert_int_equal(f.state, PROTO_FENCE_EFFECTIVE);
	fence_table_free(t);
}

static void test_fence_after_restart(void **state)
{
	struct fence_table *t = fence_table_new(10000, 5000);
	struct proto_mlease_ok ok;
	struct proto_fence_ok f;
	uint64_t created;
	(void)state;

	/* m2 held a lease before the restart; a persisted fence and its gen */
	fence_table_load_manager(t, "m2", 1000, 5000);
	fence_table_load(t, 9, 4, 300);
	fence_table_set_gen(t, 6);
	assert_true(fence_table_knows(t, "m2"));
	assert_false(fence_table_knows(t, "m3"));
	renew(t, "m1", 6, 5000, NULL, 0, &ok);
	assert_int_equal(ok.fence_gen, 6);
	assert_int_equal(fence(t, "m1", 9, 5010, &f, &created), 0);
	assert_int_equal(created, 0);
	assert_int_equal(f.state, PROTO_FENCE_PENDING); /* m2 may still answer node 9 */
	assert_int_equal(fence(t, "m1", 3, 5010, &f, &created), 0);
	assert_int_equal(created, 7); /* generations never go back */
	assert_int_equal(fence(t, "m1", 9, 6001, &f, &created), 0);
	assert_int_equal(f.state, PROTO_FENCE_EFFECTIVE); /* m2's old lease is over */
	fence_table_free(t);
}

static void test_fence_bad_requests(void **state)
{
	struct fence_table *t = fence_table_new(0, 0);
	struct proto_mlease q;
	struct proto_mlease_ok ok;
	struct proto_fence_ok f;
	uint64_t created;
	(void)state;

	memset(&q, 0, sizeof(q));
	assert_int_equal(fence_table_renew(t, &q, 0, &ok), RTCMS_EINVAL);
	assert_int_equal(fence(t, "m1", 0, 0, &f, &created), RTCMS_EINVAL);
	/* the table of managers is bounded */
	char name[16];
	for (int i = 0; i < PROTO_MANAGERS_MAX; i++) {
		snprintf(name, sizeof(name), "m%d", i);
		renew(t, name, 0, 0, NULL, 0, &ok);
	}
	strcpy(q.name, "one-too-many");
	q.lease_ms = 1000;
	assert_int_equal(fence_table_renew(t, &q, 10, &ok), RTCMS_ENOSPC);
	assert_int_equal(fence_table_renew(t, &q, 5000, &ok), 0); /* the others expired */
	fence_table_free(NULL);
	fence_table_free(t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_fence_waits_for_every_manager),
		cmocka_unit_test(test_fence_refused_while_heard),
		cmocka_unit_test(test_fence_after_restart),
		cmocka_unit_test(test_fence_bad_requests),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
