/*
 * test_mgr_restore.c - the manager restoring a program that runs nowhere, and resolving
 * one a vanished migration left frozen (src/manager/restore.c, move.c),
 * over fake agents and a fake store (support/fake_rpc.h): every failure
 * branch, what the fakes were asked and what the table holds after.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "fake_rpc.h"
#include "manager/restore.h"
#include "manager/table.h"
#include "rtcms_error.h"


static struct restore_req req;

/* The world of fake_world_new(): p1 1/5 durable, recorded on node 1,
 * which failed; nodes 2 and 3 are alive. The caller (the detector)
 * marked it moving. */
static int setup(void **state)
{
	struct fake_world *w = fake_world_new();
	manager_node(w->m, 1)->failed = true;
	struct mproc *p = fake_manager_proc(w->m, "p1", 1, 1, 5);
	p->state = PROTO_PS_WAITING;
	p->migrating = 1;
	memset(&req, 0, sizeof(req));
	*state = w;
	return 0;
}

static int teardown(void **state)
{
	fake_world_free(*state);
	return 0;
}

static int restore(struct fake_world *w)
{
	return restore_run(w->m, "p1", &req, w->why, sizeof(w->why));
}

/* Not restored: the table is as the detector left it. */
static void assert_untouched(struct fake_world *w)
{
	fake_assert_p1(w, 1, 1, PROTO_PS_WAITING, 1);
}

#define CLAIM "CLAIM p1; META p1 1/5; "
#define ON2 "GET p1 1/5; RESTORE 10.0.0.2; RESTORE_END 10.0.0.2 3; "
#define ON3 "GET p1 1/5; RESTORE 10.0.0.3; RESTORE_END 10.0.0.3 3; "

static void test_restored_on_the_best_node(void **state)
{
	struct fake_world *w = *state;
	assert_int_equal(restore(w), 0);
	assert_int_equal(req.outcome, RESTORE_DONE);
	assert_string_equal(fake_world_calls(w), CLAIM ON2 "COMMIT p1 claim 7 node 2; "
			    "ADOPT 10.0.0.2 p1 inc 2");
	assert_int_equal(fake_count(&w->f, "INFO 10.0.0.1"), 0); /* failed: not asked */
	assert_int_equal(w->a[1]->restored_chunks, 3);
	assert_int_equal(fake_world_p1(w)->node, 2);
	assert_int_equal(fake_world_p1(w)->incarnation, 2);
	assert_int_equal(fake_world_p1(w)->durable, 5);
	assert_int_equal(fake_world_p1(w)->state, PROTO_PS_RUNNING);
	assert_int_equal(fake_world_p1(w)->migrating, 0);
}

static void test_no_checkpoint(void **state)
{
	struct fake_world *w = *state;
	w->f.claim_rc[0] = RTCMS_ENOENT;
	assert_int_equal(restore(w), RTCMS_ENOENT);
	assert_int_equal(req.outcome, RESTORE_NOT_YET);
	assert_string_equal(fake_world_calls(w), "CLAIM p1"); /* nothing claimed: nothing released */
	assert_untouched(w);
}

static void test_metadata_gone(void **state)
{
	struct fake_world *w = *state;
	w->f.meta_rc = RTCMS_ENOENT;
	assert_int_equal(restore(w), RTCMS_ENOENT);
	assert_string_equal(fake_world_calls(w), CLAIM "RELEASE p1 claim 7");
	assert_untouched(w);
}

static void test_claim_held_by_another_manager(void **state)
{
	struct fake_world *w = *state;
	w->f.claim_rc[0] = RTCMS_ECLAIMED;
	w->f.held_until = 123456;
	assert_int_equal(restore(w), RTCMS_ECLAIMED);
	assert_int_equal(req.outcome, RESTORE_NOT_YET);
	assert_int_equal(req.held_until, 123456);
	assert_string_equal(fake_world_calls(w), "CLAIM p1");
	assert_untouched(w);
}

static void test_second_give_up_fails_for_good(void **state)
{
	struct fake_world *w = *state;
	req.gave_up = true;
	w->f.claim_rc[0] = RTCMS_ESTATE;
	assert_int_equal(restore(w), RTCMS_ESTATE);
	assert_int_equal(req.outcome, RESTORE_FAILED_FOR_GOOD);
	assert_string_equal(fake_world_calls(w), "CLAIM p1 gave-up");
	assert_untouched(w);
}

static void test_restored_elsewhere_already(void **state)
{
	struct fake_world *w = *state;
	w->f.claim.node = 3; /* another manager's COMMIT recorded node 3 */
	assert_int_equal(restore(w), 0);
	assert_int_equal(req.outcome, RESTORE_RUNS_ELSEWHERE);
	assert_int_equal(req.elsewhere, 3);
	assert_string_equal(fake_world_calls(w), "CLAIM p1; RELEASE p1 claim 7");
	assert_untouched(w);
}

static void test_live_source_holds_it_after_all(void **state)
{
	struct fake_world *w = *state;
	req.source_alive = true;
	w->a[0]->holds = true;
	assert_int_equal(restore(w), 0);
	assert_int_equal(req.outcome, RESTORE_RUNS_ELSEWHERE);
	assert_int_equal(req.elsewhere, 1);
	assert_string_equal(fake_world_calls(w), "CLAIM p1; PROCS 10.0.0.1; RELEASE p1 claim 7");
}

static void test_live_source_cannot_be_asked(void **state)
{
	struct fake_world *w = *state;
	req.source_alive = true;
	w->a[0]->holds_rc = RTCMS_ETIMEDOUT;
	assert_int_equal(restore(w), RTCMS_ETIMEDOUT);
	assert_int_equal(req.outcome, RESTORE_NOT_YET);
	assert_string_equal(fake_world_calls(w), "CLAIM p1; PROCS 10.0.0.1; RELEASE p1 claim 7");
	assert_untouched(w);
}

static void test_live_source_lacks_it_may_get_it_back(void **state)
{
	struct fake_world *w = *state;
	manager_node(w->m, 1)->failed = false;
	w->a[0]->mem_available = 4ull << 30; /* the best node now */
	req.source_alive = true;
	assert_int_equal(restore(w), 0);
	assert_string_equal(fake_world_calls(w), "CLAIM p1; PROCS 10.0.0.1; META p1 1/5; GET p1 1/5; "
			    "RESTORE 10.0.0.1; RESTORE_END 10.0.0.1 3; "
			    "COMMIT p1 claim 7 node 1; ADOPT 10.0.0.1 p1 inc 2");
	assert_int_equal(fake_world_p1(w)->node, 1);
	assert_int_equal(fake_world_p1(w)->incarnation, 2);
}

static void test_target_fails_next_node(void **state)
{
	struct fake_world *w = *state;
	w->a[1]->restore_rc = RTCMS_ECORRUPT;
	assert_int_equal(restore(w), 0);
	assert_string_equal(fake_world_calls(w), CLAIM ON2 ON3 "COMMIT p1 claim 7 node 3; "
			    "ADOPT 10.0.0.3 p1 inc 2");
	assert_int_equal(fake_world_p1(w)->node, 3);
}

static void test_store_read_fails_next_node(void **state)
{
	struct fake_world *w = *state;
	w->f.get_rc = RTCMS_ECONN; /* every read: no node gets it */
	assert_int_equal(restore(w), RTCMS_ENOSPC);
	assert_string_equal(fake_world_calls(w), CLAIM "GET p1 1/5; GET p1 1/5; RELEASE p1 claim 7");
	assert_untouched(w);
}

static void test_every_node_fails(void **state)
{
	struct fake_world *w = *state;
	w->a[1]->restore_rc = RTCMS_ETIMEDOUT;
	w->a[2]->target_open_rc = RTCMS_ECONN;
	assert_int_equal(restore(w), RTCMS_ENOSPC);
	assert_string_equal(fake_world_calls(w), CLAIM ON2 "CONNECT 10.0.0.3 failed; RELEASE p1 claim 7");
	assert_non_null(strstr(w->why, "restore on node 0000000000000003 failed"));
	assert_untouched(w);
}

static void test_nowhere_fits(void **state)
{
	struct fake_world *w = *state;
	w->a[1]->mem_available = 0;
	w->a[2]->mem_available = 0;
	assert_int_equal(restore(w), RTCMS_ENOSPC);
	assert_string_equal(fake_world_calls(w), CLAIM "RELEASE p1 claim 7");
	assert_untouched(w);
}

static void test_fenced_at_commit(void **state)
{
	struct fake_world *w = *state;
	w->f.commit_rc = RTCMS_EFENCED;
	assert_int_equal(restore(w), RTCMS_EFENCED);
	assert_int_equal(req.outcome, RESTORE_NOT_YET);
	assert_string_equal(fake_world_calls(w), CLAIM ON2 "COMMIT p1 claim 7 node 2; RELEASE p1 claim 7");
	assert_untouched(w);
}

static void test_adopt_fails_restored_again(void **state)
{
	struct fake_world *w = *state;
	w->a[1]->adopt_rc = RTCMS_ECONN;
	assert_int_equal(restore(w), 0);
	assert_int_equal(req.outcome, RESTORE_UNCONFIRMED);
	assert_string_equal(fake_world_calls(w), CLAIM ON2 "COMMIT p1 claim 7 node 2; "
			    "ADOPT 10.0.0.2 p1 inc 2"); /* committed: no release */
	assert_int_equal(fake_world_p1(w)->node, 2);
	assert_int_equal(fake_world_p1(w)->incarnation, 2);
	assert_int_equal(fake_world_p1(w)->state, PROTO_PS_WAITING);
	assert_int_equal(fake_world_p1(w)->migrating, 0);
}

static void test_resolve(void **state)
{
	struct fake_world *w = *state;
	uint32_t verdict = 99;
	fake_world_p1(w)->migrating = 0;
	/* never committed: thaw */
	assert_int_equal(restore_resolve(w->m, "p1", 1, 1, &verdict, w->why, sizeof(w->why)), 0);
	assert_int_equal(verdict, PROTO_VERDICT_THAW);
	assert_int_equal(fake_world_p1(w)->state, PROTO_PS_RUNNING);
	/* the store recorded the move: stop, and restore it where it went */
	w->f.claim.node = 2;
	assert_int_equal(restore_resolve(w->m, "p1", 1, 1, &verdict, w->why, sizeof(w->why)), 0);
	assert_int_equal(verdict, PROTO_VERDICT_STOP);
	assert_int_equal(fake_world_p1(w)->node, 2);
	assert_int_equal(fake_world_p1(w)->state, PROTO_PS_WAITING);
	/* another manager holds the claim: wait */
	w->f.claim_rc[2] = RTCMS_ECLAIMED;
	assert_int_equal(restore_resolve(w->m, "p1", 1, 1, &verdict, w->why, sizeof(w->why)), 0);
	assert_int_equal(verdict, PROTO_VERDICT_WAIT);
	assert_string_equal(fake_world_calls(w), "CLAIM p1; RELEASE p1 claim 7; CLAIM p1; "
			    "RELEASE p1 claim 7; CLAIM p1");
	/* this manager moves it: wait, without asking */
	fake_world_p1(w)->migrating = 1;
	assert_int_equal(restore_resolve(w->m, "p1", 1, 1, &verdict, w->why, sizeof(w->why)), 0);
	assert_int_equal(verdict, PROTO_VERDICT_WAIT);
	assert_int_equal(fake_count(&w->f, "CLAIM"), 3);
}

#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_restored_on_the_best_node),
		T(test_no_checkpoint),
		T(test_metadata_gone),
		T(test_claim_held_by_another_manager),
		T(test_second_give_up_fails_for_good),
		T(test_restored_elsewhere_already),
		T(test_live_source_holds_it_after_all),
		T(test_live_source_cannot_be_asked),
		T(test_live_source_lacks_it_may_get_it_back),
		T(test_target_fails_next_node),
		T(test_store_read_fails_next_node),
		T(test_every_node_fails),
		T(test_nowhere_fits),
		T(test_fenced_at_commit),
		T(test_adopt_fails_restored_again),
		T(test_resolve),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
