/* test_recovery.c - the reconciliation decision (manager/recovery.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "manager/recovery.h"

static const struct recovery_config cfg = { .absent_grace_ms = 300, .start_grace_ms = 2600 };

static enum recovery_action decide(struct recovery_facts f)
{
	if (!f.uptime_ms)
		f.uptime_ms = 60000;
	return recovery_decide(&cfg, &f);
}

static void test_recovery_cases(void **state)
{
	(void)state;
	/* runs somewhere: nothing to restore, whatever else is true */
	assert_int_equal(decide((struct recovery_facts){ .present = 1, .node_failed = 1 }),
			 RECOVERY_PRESENT);
	/* finished, or being moved by this manager: left alone */
	assert_int_equal(decide((struct recovery_facts){ .ended = 1, .node_failed = 1 }),
			 RECOVERY_NONE);
	assert_int_equal(decide((struct recovery_facts){ .moving = 1, .node_failed = 1 }),
			 RECOVERY_NONE);
	/* its node's fence is complete: restore */
	assert_int_equal(decide((struct recovery_facts){ .node_known = 1, .node_failed = 1 }),
			 RECOVERY_RESTORE);
	/* fenced, crashed or lost on a live node: restore once fresh reports
	 * lacked it for the grace */
	struct recovery_facts f = { .node_known = 1, .node_alive = 1, .report_fresh = 1,
				    .absent_ms = 299 };
	assert_int_equal(decide(f), RECOVERY_WAIT);
	f.absent_ms = 300;
	assert_int_equal(decide(f), RECOVERY_RESTORE);
	f.report_fresh = 0; /* a stale report proves nothing */
	assert_int_equal(decide(f), RECOVERY_WAIT);
	/* an unheard known node: the failure detector fences it; wait */
	assert_int_equal(decide((struct recovery_facts){ .node_known = 1 }), RECOVERY_WAIT);
	/* a node this manager never heard (it restarted): fence it first, but
	 * only after the agents had time to register */
	assert_int_equal(decide((struct recovery_facts){ 0 }), RECOVERY_FENCE_NODE);
	assert_int_equal(decide((struct recovery_facts){ .uptime_ms = 1000 }), RECOVERY_WAIT);
	/* a manager that just started trusts no report's absence yet */
	f.report_fresh = 1;
	f.uptime_ms = 1000;
	assert_int_equal(decide(f), RECOVERY_WAIT);
	/* ... but believes an agent that says it gave up on it */
	f.absent_ms = 0;
	f.gave_up_there = 1;
	assert_int_equal(decide(f), RECOVERY_RESTORE);
	f.report_fresh = 0;
	assert_int_equal(decide(f), RECOVERY_WAIT);
	f.report_fresh = 1;
	f.node_alive = 0; /* not from a node that is not heard */
	assert_int_equal(decide(f), RECOVERY_WAIT);
	assert_string_equal(recovery_action_name(RECOVERY_RESTORE), "restore");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_recovery_cases),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
