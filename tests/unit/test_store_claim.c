/*
 * test_store_claim.c - claims (with an injected clock): CLAIM, renewal,
 * COMMIT, RELEASE, give-ups (GAVE_UP moves a program once), concurrent
 * claimants, a commit after the lease and LIST showing the claimed
 * checkpoint.
 */
#include "store_fixture.h"

static void test_claims(void **state)
{
	struct fixture *f = *state;
	struct proto_claim_ok ok, ok2;
	struct proto_commit_ok cok;
	struct proto_error err;

	assert_int_equal(store_claim(f->st, "p", "m1", 1000, 0, &ok, &err), RTCMS_ENOENT);
	assert_int_equal(put(f->st, "p", 1, 1, 5000, 1, 4096), 0);
	assert_int_equal(store_claim(f->st, "p", "m1", 1000, 0, &ok, &err), 0);
	assert_int_equal(ok.incarnation, 1);
	assert_int_equal(ok.sequence, 1);
	assert_int_equal(ok.expires_ms, f->clock + 1000);
	/* another claimant is refused, told who holds it and until when */
	assert_int_equal(store_claim(f->st, "p", "m2", 1000, 0, &ok2, &err), RTCMS_ECLAIMED);
	assert_string_equal(err.who, "m1");
	assert_int_equal(err.detail, f->clock + 1000);
	/* the holder renews: same claim id */
	f->clock += 500;
	assert_int_equal(store_claim(f->st, "p", "m1", 1000, 0, &ok2, &err), 0);
	assert_int_equal(ok2.claim_id, ok.claim_id);
	/* the claimed checkpoint is neither deleted nor retained away */
	assert_int_equal(store_delete(f->st, "p", 1, 1), RTCMS_ECLAIMED);
	for (uint64_t s = 2; s <= 4; s++)
		assert_int_equal(put(f->st, "p", 1, s, 5000, s, 4096), 0);
	assert_int_equal(get_check(f->st, "p", 1, 1, 5000, 1, NULL), 0);
	/* after the lease, the other claimant wins */
	f->clock += 1001;
	assert_int_equal(store_claim(f->st, "p", "m2", 1000, 0, &ok2, &err), 0);
	assert_int_not_equal(ok2.claim_id, ok.claim_id);
	assert_int_equal(ok2.sequence, 4);
	/* the old claim can no longer commit or release */
	assert_int_equal(store_commit(f->st, "p", ok.claim_id, 9, &cok), RTCMS_ECLAIMED);
	assert_int_equal(store_release(f->st, "p", ok.claim_id), RTCMS_ENOENT);
	/* commit moves the process and raises the incarnation */
	assert_int_equal(store_commit(f->st, "p", ok2.claim_id, 9, &cok), 0);
	assert_int_equal(cok.incarnation, 2);
	assert_int_equal(cok.node, 9);
	/* a retried commit gives the same answer, not a second increment */
	assert_int_equal(store_commit(f->st, "p", ok2.claim_id, 9, &cok), 0);
	assert_int_equal(cok.incarnation, 2);
	/* fencing: the old incarnation is refused, the new one accepted */
	assert_int_equal(put(f->st, "p", 1, 5, 5000, 5, 4096), RTCMS_EFENCED);
	assert_int_equal(put(f->st, "p", 2, 5, 5000, 5, 4096), 0);
	/* release */
	assert_int_equal(store_claim(f->st, "p", "m3", 1000, 0, &ok, &err), 0);
	assert_int_equal(store_release(f->st, "p", ok.claim_id), 0);
	assert_int_equal(store_claim(f->st, "p", "m4", 1000, 0, &ok, &err), 0);
}

/* A claim after a node gave up on the program is granted once: its commit
 * is recorded, and a second one is refused (ESTATE) and fails the program
 * for good; a release does not count, and deleting the process resets it. */
static void test_gave_up_claims(void **state)
{
	struct fixture *f = *state;
	struct proto_claim_ok ok;
	struct proto_commit_ok cok;
	struct proto_error err;

	assert_int_equal(put(f->st, "p", 1, 1, 5000, 1, 4096), 0);
	assert_int_equal(store_claim(f->st, "p", "m1", 1000, 0x80, &ok, &err), RTCMS_EINVAL);
	/* released: not a move */
	assert_int_equal(store_claim(f->st, "p", "m1", 1000, PROTO_CLAIM_F_GAVE_UP, &ok,
				     &err), 0);
	assert_int_equal(store_release(f->st, "p", ok.claim_id), 0);
	/* committed: the one move */
	assert_int_equal(store_claim(f->st, "p", "m2", 1000, PROTO_CLAIM_F_GAVE_UP, &ok,
				     &err), 0);
	assert_int_equal(store_commit(f->st, "p", ok.claim_id, 7, &cok), 0);
	assert_int_equal(cok.incarnation, 2);
	assert_int_equal(put(f->st, "p", 2, 2, 5000, 2, 4096), 0);
	/* another manager (or this one restarted) asks again: refused */
	memset(&err, 0, sizeof(err));
	assert_int_equal(store_claim(f->st, "p", "m1", 1000, PROTO_CLAIM_F_GAVE_UP, &ok,
				     &err), RTCMS_ESTATE);
	assert_int_equal(err.code, RTCMS_ESTATE);
	assert_non_null(strstr(err.text, "failed for good"));
	/* from now on no claim restores it: a node failure neither, nor a
	 * store that restarted */
	assert_int_equal(store_claim(f->st, "p", "m1", 1000, 0, &ok, &err), RTCMS_ESTATE);
	store_free(f->st);
	f->st = NULL;
	open_store(f);
	assert_int_equal(store_claim(f->st, "p", "m3", 1000, 0, &ok, &err), RTCMS_ESTATE);
	/* the whole process deleted (forgotten) and run again: allowed again */
	assert_int_equal(store_delete(f->st, "p", 0, 0), 2);
	assert_int_equal(put(f->st, "p", 3, 1, 5000, 3, 4096), 0);
	assert_int_equal(store_claim(f->st, "p", "m1", 1000, PROTO_CLAIM_F_GAVE_UP, &ok,
				     &err), 0);
}

struct racer {
	struct store *st;
	pthread_barrier_t *bar;
	const char *name;
	int wins;
	uint64_t ids[100];
};

static void *race(void *arg)
{
	struct racer *r = arg;
	for (int round = 0; round < 100; round++) {
		struct proto_claim_ok ok;
		struct proto_error err;
		pthread_barrier_wait(r->bar);
		int rc = store_claim(r->st, "p", r->name, 60000, 0, &ok, &err);
		r->ids[round] = rc == 0 ? ok.claim_id : 0;
		if (rc == 0)
			r->wins++;
		else
			assert_int_equal(rc, RTCMS_ECLAIMED);
		pthread_barrier_wait(r->bar); /* both have tried */
		if (rc == 0)
			assert_int_equal(store_release(r->st, "p", ok.claim_id), 0);
		pthread_barrier_wait(r->bar); /* released before the next round */
	}
	return NULL;
}

static void test_concurrent_claims(void **state)
{
	struct fixture *f = *state;
	pthread_barrier_t bar;
	struct racer a = { f->st, &bar, "m1", 0, { 0 } };
	struct racer b = { f->st, &bar, "m2", 0, { 0 } };
	pthread_t ta, tb;

	assert_int_equal(put(f->st, "p", 1, 1, 100, 1, 100), 0);
	pthread_barrier_init(&bar, NULL, 2);
	pthread_create(&ta, NULL, race, &a);
	pthread_create(&tb, NULL, race, &b);
	pthread_join(ta, NULL);
	pthread_join(tb, NULL);
	pthread_barrier_destroy(&bar);
	assert_int_equal(a.wins + b.wins, 100);
	for (int i = 0; i < 100; i++)
		assert_true((a.ids[i] != 0) != (b.ids[i] != 0)); /* exactly one */
}

/* An expired claim nobody else took can still be committed; LIST shows
 * which checkpoint a claim pins. */
static void test_commit_after_lease_and_list_claimed(void **state)
{
	struct fixture *f = *state;
	struct proto_list_entry e[PROTO_LIST_MAX];
	struct proto_claim_ok ok;
	struct proto_commit_ok cok;
	struct proto_error err;
	bool more;

	assert_int_equal(put(f->st, "p", 1, 1, 5000, 1, 4096), 0);
	assert_int_equal(put(f->st, "p", 1, 2, 5000, 2, 4096), 0);
	assert_int_equal(store_claim(f->st, "p", "m1", 1000, 0, &ok, &err), 0);
	assert_int_equal(store_list(f->st, 0, "p", 0, 10, e, &more), 2);
	assert_int_equal(e[0].claimed, 0);
	assert_int_equal(e[1].claimed, 1);
	f->clock += 5000;
	assert_int_equal(store_commit(f->st, "p", ok.claim_id, 3, &cok), 0);
	assert_int_equal(cok.incarnation, 2);
	assert_int_equal(cok.node, 3);
	assert_int_equal(store_list(f->st, 0, "p", 0, 10, e, &more), 2);
	assert_int_equal(e[1].claimed, 0);
	assert_int_equal(store_release(f->st, "p", ok.claim_id), RTCMS_ENOENT);
	assert_int_equal(store_commit(f->st, "p", 12345, 3, &cok), RTCMS_ENOENT);
}

/* ---- delta checkpoints --------------------------------------------- */

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_claims, setup, teardown),
		cmocka_unit_test_setup_teardown(test_gave_up_claims, setup, teardown),
		cmocka_unit_test_setup_teardown(test_concurrent_claims, setup, teardown),
		cmocka_unit_test_setup_teardown(test_commit_after_lease_and_list_claimed, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
