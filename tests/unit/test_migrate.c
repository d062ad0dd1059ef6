/*
 * test_migrate.c - the migration state machine (src/manager/migrate.c and
 * move.c) over fake agents and a fake store (support/fake_rpc.h): every
 * step's failure, and what the fakes were asked and the table holds after.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "fake_rpc.h"
#include "manager/migrate.h"
#include "manager/table.h"
#include "rtcms_error.h"


/* The world of fake_world_new(); p1 runs on node 1, durable up to 4. */
static struct migrate_result res;

static int setup(void **state)
{
	struct fake_world *w = fake_world_new();
	fake_manager_proc(w->m, "p1", 1, 1, 4);
	memset(&res, 0, sizeof(res));
	*state = w;
	return 0;
}

static int teardown(void **state)
{
	fake_world_free(*state);
	return 0;
}

static int migrate(struct fake_world *w, uint64_t target)
{
	return migrate_run(w->m, "test", "p1", target, false, &res, w->why, sizeof(w->why));
}

/* p1 is back where it was, running, not moving. */
static void assert_stayed(struct fake_world *w)
{
	fake_assert_p1(w, 1, 1, PROTO_PS_RUNNING, 0);
}

#define FREEZE "FREEZE 10.0.0.1 p1; "
#define CLAIM "CLAIM p1; "
#define TEE2 "PULL 10.0.0.1 p1 seq 5; PUT_BEGIN p1 1/5; RESTORE 10.0.0.2; PUT_END 3; " \
	     "RESTORE_END 10.0.0.2 3; "
#define UNDO "RELEASE p1 claim 7; THAW 10.0.0.1 p1"

static void test_moves_relaying_to_store_and_target(void **state)
{
	struct fake_world *w = *state;
	assert_int_equal(migrate(w, 0), 0);
	assert_string_equal(fake_world_calls(w), FREEZE CLAIM TEE2 "COMMIT p1 claim 7 node 2; "
			    "ADOPT 10.0.0.2 p1 inc 2; STOP 10.0.0.1 p1");
	assert_int_equal(w->f.stored_chunks, 3);
	assert_int_equal(w->a[1]->restored_chunks, 3);
	assert_int_equal(res.from, 1);
	assert_int_equal(res.to, 2);
	assert_int_equal(res.incarnation, 2);
	assert_int_equal(res.sequence, 5);
	assert_int_equal(fake_world_p1(w)->node, 2);
	assert_int_equal(fake_world_p1(w)->incarnation, 2);
	assert_int_equal(fake_world_p1(w)->durable, 5);
	assert_int_equal(fake_world_p1(w)->state, PROTO_PS_RUNNING);
	assert_int_equal(fake_world_p1(w)->migrating, 0);
}

static void test_durable_final_is_read_from_the_store(void **state)
{
	struct fake_world *w = *state;
	fake_world_p1(w)->durable = 5; /* the pullers stored the final checkpoint already */
	assert_int_equal(migrate(w, 0), 0);
	assert_string_equal(fake_world_calls(w), FREEZE CLAIM "GET p1 1/5; RESTORE 10.0.0.2; "
			    "RESTORE_END 10.0.0.2 3; COMMIT p1 claim 7 node 2; "
			    "ADOPT 10.0.0.2 p1 inc 2; STOP 10.0.0.1 p1");
	assert_int_equal(fake_count(&w->f, "PULL"), 0);
}

static void test_store_has_it_target_still_gets_it(void **state)
{
	struct fake_world *w = *state;
	w->f.store_has = true; /* another manager stored it meanwhile */
	assert_int_equal(migrate(w, 0), 0);
	assert_string_equal(fake_world_calls(w), FREEZE CLAIM "PULL 10.0.0.1 p1 seq 5; "
			    "PUT_BEGIN p1 1/5 (has it); RESTORE 10.0.0.2; RESTORE_END 10.0.0.2 3; "
			    "COMMIT p1 claim 7 node 2; ADOPT 10.0.0.2 p1 inc 2; STOP 10.0.0.1 p1");
	assert_int_equal(w->f.stored_chunks, 0);
	assert_int_equal(w->a[1]->restored_chunks, 3);
}

static void test_freeze_refused_or_timed_out(void **state)
{
	struct fake_world *w = *state;
	const int codes[] = { RTCMS_ESTATE, RTCMS_ETIMEDOUT };
	for (size_t i = 0; i < 2; i++) {
		w->f.call_count = 0;
		w->a[0]->freeze_rc = codes[i];
		assert_int_equal(migrate(w, 0), codes[i]);
		assert_string_equal(fake_world_calls(w), "FREEZE 10.0.0.1 p1");
		assert_non_null(strstr(w->why, "freezing p1 on node"));
		assert_stayed(w);
	}
}

static void test_not_moved_twice_or_from_a_dead_node(void **state)
{
	struct fake_world *w = *state;
	fake_world_p1(w)->migrating = 1;
	assert_int_equal(migrate(w, 0), RTCMS_EBUSY);
	fake_world_p1(w)->migrating = 0;
	manager_node(w->m, 1)->failed = true;
	assert_int_equal(migrate(w, 0), RTCMS_ESTATE);
	assert_int_equal(migrate_run(w->m, "test", "nope", 0, false, &res, w->why,
				     sizeof(w->why)), RTCMS_ENOENT);
	assert_int_equal(w->f.call_count, 0);
}

static void test_no_target(void **state)
{
	struct fake_world *w = *state;
	w->a[1]->mem_available = 0; /* nothing fits anywhere but the source */
	w->a[2]->info_rc = RTCMS_ETIMEDOUT;
	assert_int_equal(migrate(w, 0), RTCMS_ENOSPC);
	assert_string_equal(fake_world_calls(w), FREEZE CLAIM UNDO);
	assert_non_null(strstr(w->why, "no node can take p1"));
	assert_stayed(w);
}

static void test_only_the_node_asked_for(void **state)
{
	struct fake_world *w = *state;
	assert_int_equal(migrate(w, 3), 0);
	assert_int_equal(res.to, 3);
	assert_int_equal(fake_world_p1(w)->node, 3);
}

static void test_claim_refused(void **state)
{
	struct fake_world *w = *state;
	w->f.claim_rc[0] = RTCMS_ECLAIMED;
	assert_int_equal(migrate(w, 0), RTCMS_ECLAIMED);
	assert_string_equal(fake_world_calls(w), FREEZE CLAIM "THAW 10.0.0.1 p1"); /* nothing to release */
	assert_non_null(strstr(w->why, "claiming p1"));
	assert_stayed(w);
}

static void test_nothing_stored_yet_stores_the_final_first(void **state)
{
	struct fake_world *w = *state;
	w->f.claim_rc[0] = RTCMS_ENOENT;
	w->f.meta_rc = RTCMS_ENOENT;
	assert_int_equal(migrate(w, 0), 0);
	assert_string_equal(fake_world_calls(w), FREEZE CLAIM "META p1 1/5; PULL 10.0.0.1 p1 seq 0; "
			    "PUT_BEGIN p1 1/5; PUT_END 3; " CLAIM "GET p1 1/5; RESTORE 10.0.0.2; "
			    "RESTORE_END 10.0.0.2 3; COMMIT p1 claim 7 node 2; "
			    "ADOPT 10.0.0.2 p1 inc 2; STOP 10.0.0.1 p1");
}

static void test_claim_newer_than_the_final(void **state)
{
	struct fake_world *w = *state;
	w->f.claim.sequence = 6;
	assert_int_equal(migrate(w, 0), RTCMS_ESTATE);
	assert_string_equal(fake_world_calls(w), FREEZE CLAIM UNDO);
	assert_stayed(w);
}

static void test_source_fails_mid_relay(void **state)
{
	struct fake_world *w = *state;
	w->a[0]->pull_rc = RTCMS_ECONN;
	w->a[0]->pull_fail_after = 1;
	assert_int_equal(migrate(w, 0), RTCMS_ECONN);
	/* the source holds the only copy: no other node is tried */
	assert_string_equal(fake_world_calls(w), FREEZE CLAIM "PULL 10.0.0.1 p1 seq 5; PUT_BEGIN p1 1/5; "
			    "RESTORE 10.0.0.2; " UNDO);
	assert_non_null(strstr(w->why, "storing the final checkpoint"));
	assert_stayed(w);
	assert_int_equal(fake_world_p1(w)->durable, 4);
}

static void test_source_sends_another_checkpoint(void **state)
{
	struct fake_world *w = *state;
	w->a[0]->pull_skew = 1; /* not the final checkpoint FREEZE announced */
	assert_int_equal(migrate(w, 0), RTCMS_EPROTO);
	/* refused before anything reached the store or the target */
	assert_string_equal(fake_world_calls(w), FREEZE CLAIM "PULL 10.0.0.1 p1 seq 5; " UNDO);
	assert_non_null(strstr(w->why, "source agent 10.0.0.1"));
	assert_stayed(w);
	assert_int_equal(fake_world_p1(w)->durable, 4);
}

static void test_store_fails_mid_relay(void **state)
{
	struct fake_world *w = *state;
	w->f.put_end_rc = RTCMS_EIO;
	assert_int_equal(migrate(w, 0), RTCMS_EIO);
	assert_string_equal(fake_world_calls(w), FREEZE CLAIM "PULL 10.0.0.1 p1 seq 5; PUT_BEGIN p1 1/5; "
			    "RESTORE 10.0.0.2; PUT_END 3; " UNDO);
	assert_int_equal(fake_count(&w->f, "RESTORE_END"), 0); /* never confirmed */
	assert_stayed(w);
	assert_false(w->m->store_up);
}

static void test_store_unreachable(void **state)
{
	struct fake_world *w = *state;
	w->f.open_rc = RTCMS_ECONN;
	assert_int_equal(migrate(w, 0), RTCMS_ECONN);
	assert_string_equal(fake_world_calls(w), FREEZE CLAIM "STORE unreachable; " UNDO);
	assert_stayed(w);
}

static void test_target_fails_then_next_best_node(void **state)
{
	struct fake_world *w = *state;
	w->a[1]->restore_rc = RTCMS_ESTATE; /* the program exited at restore */
	assert_int_equal(migrate(w, 0), 0);
	/* durable after the first attempt: the next one reads the store */
	assert_string_equal(fake_world_calls(w), FREEZE CLAIM TEE2 "GET p1 1/5; RESTORE 10.0.0.3; "
			    "RESTORE_END 10.0.0.3 3; COMMIT p1 claim 7 node 3; "
			    "ADOPT 10.0.0.3 p1 inc 2; STOP 10.0.0.1 p1");
	assert_int_equal(res.to, 3);
	assert_int_equal(fake_world_p1(w)->node, 3);
}

static void test_target_breaks_mid_stream_store_gets_all(void **state)
{
	struct fake_world *w = *state;
	w->a[1]->restore_chunk_rc = RTCMS_ECONN;
	assert_int_equal(migrate(w, 0), 0);
	assert_int_equal(w->f.stored_chunks, 3); /* the store still got it all */
	assert_int_equal(fake_count(&w->f, "PUT_END 3"), 1);
	assert_int_equal(fake_count(&w->f, "RESTORE_END 10.0.0.2"), 0);
	assert_int_equal(fake_count(&w->f, "GET p1"), 1);
	assert_int_equal(fake_world_p1(w)->node, 3);
}

static void test_unreachable_target_then_next(void **state)
{
	struct fake_world *w = *state;
	w->a[1]->target_open_rc = RTCMS_ECONN;
	assert_int_equal(migrate(w, 0), 0);
	/* nothing was sent: the next attempt still relays from the source */
	assert_string_equal(fake_world_calls(w), FREEZE CLAIM "CONNECT 10.0.0.2 failed; "
			    "PULL 10.0.0.1 p1 seq 5; PUT_BEGIN p1 1/5; RESTORE 10.0.0.3; PUT_END 3; "
			    "RESTORE_END 10.0.0.3 3; COMMIT p1 claim 7 node 3; "
			    "ADOPT 10.0.0.3 p1 inc 2; STOP 10.0.0.1 p1");
}

static void test_every_target_fails(void **state)
{
	struct fake_world *w = *state;
	w->a[1]->restore_rc = RTCMS_ESTATE;
	w->a[2]->restore_rc = RTCMS_ETIMEDOUT;
	assert_int_equal(migrate(w, 0), RTCMS_ENOSPC);
	assert_string_equal(fake_world_calls(w), FREEZE CLAIM TEE2 "GET p1 1/5; RESTORE 10.0.0.3; "
			    "RESTORE_END 10.0.0.3 3; " UNDO);
	assert_non_null(strstr(w->why, "restore on node 0000000000000003 failed"));
	assert_stayed(w);
	assert_int_equal(fake_world_p1(w)->durable, 5); /* stored on the way */
}

static void test_commit_refused(void **state)
{
	struct fake_world *w = *state;
	w->f.commit_rc = RTCMS_EFENCED;
	assert_int_equal(migrate(w, 0), RTCMS_EFENCED);
	assert_string_equal(fake_world_calls(w), FREEZE CLAIM TEE2 "COMMIT p1 claim 7 node 2; " UNDO);
	assert_int_equal(fake_count(&w->f, "ADOPT"), 0);
	assert_int_equal(fake_count(&w->f, "STOP"), 0);
	assert_stayed(w);
}

static void test_adopt_fails_after_commit(void **state)
{
	struct fake_world *w = *state;
	w->a[1]->adopt_rc = RTCMS_ECONN;
	assert_int_equal(migrate(w, 0), RTCMS_ESTATE);
	/* committed: the old instance goes, the new one is restored again */
	assert_string_equal(fake_world_calls(w), FREEZE CLAIM TEE2 "COMMIT p1 claim 7 node 2; "
			    "ADOPT 10.0.0.2 p1 inc 2; STOP 10.0.0.1 p1");
	assert_int_equal(fake_count(&w->f, "RELEASE"), 0);
	assert_int_equal(fake_world_p1(w)->node, 2);
	assert_int_equal(fake_world_p1(w)->incarnation, 2);
	assert_int_equal(fake_world_p1(w)->state, PROTO_PS_WAITING);
	assert_int_equal(fake_world_p1(w)->migrating, 0);
}

static void test_thaw_fails_too(void **state)
{
	struct fake_world *w = *state;
	w->f.commit_rc = RTCMS_ECONN;
	w->a[0]->thaw_rc = RTCMS_ECONN;
	assert_int_equal(migrate(w, 0), RTCMS_ECONN);
	assert_int_equal(fake_count(&w->f, "THAW"), 1);
	assert_int_equal(fake_world_p1(w)->migrating, 0);
}

#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_moves_relaying_to_store_and_target),
		T(test_durable_final_is_read_from_the_store),
		T(test_store_has_it_target_still_gets_it),
		T(test_freeze_refused_or_timed_out),
		T(test_not_moved_twice_or_from_a_dead_node),
		T(test_no_target),
		T(test_only_the_node_asked_for),
		T(test_claim_refused),
		T(test_nothing_stored_yet_stores_the_final_first),
		T(test_claim_newer_than_the_final),
		T(test_source_fails_mid_relay),
		T(test_source_sends_another_checkpoint),
		T(test_store_fails_mid_relay),
		T(test_store_unreachable),
		T(test_target_fails_then_next_best_node),
		T(test_target_breaks_mid_stream_store_gets_all),
		T(test_unreachable_target_then_next),
		T(test_every_target_fails),
		T(test_commit_refused),
		T(test_adopt_fails_after_commit),
		T(test_thaw_fails_too),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
