/*
 * test_status_fresh.c - what `rtcmsctl status` shows follows the cluster:
 * a killed store is shown down without anyone talking to it (the manager's
 * lease from the store is renewed every 100 ms), a store back on its address
 * is shown up within the documented back-off of at most 5 s, and a stopped
 * (SIGSTOP) agent does not hold status up: its node's figures are asked
 * for at most 1 s. All read from MSTATUS, the reply `status --json` prints.
 */
#include <inttypes.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "cluster.h"
#include "rtcms_error.h"

#define COUNTER RTCMS_BIN_DIR "/rtcms-counter"

static const char *counter[] = { COUNTER, "--iterations", "0", "--interval-ms", "100", NULL };

static struct proto_node_entry nodes[PROTO_NODES_MAX];
static struct proto_proc_entry procs[PROTO_PROCS_MAX];

/* MSTATUS at the cluster's manager into *r (timeout_ms for the call). */
static int mstatus(struct cluster *cl, union proto_msg *r, int timeout_ms)
{
	union proto_msg q;
	memset(&q, 0, sizeof(q));
	r->mstatus.nodes = nodes;
	r->mstatus.procs = procs;
	return cl_call(cl, PROTO_MSTATUS, &q, PROTO_MSTATUS_REPLY, r, timeout_ms, NULL, 0);
}

/* Poll MSTATUS until the store is shown as up (1) or down (0); the time it
 * took in ms, or -1 if not within limit_ms. */
static long wait_store_shown(struct cluster *cl, int up, uint64_t limit_ms)
{
	uint64_t t0 = tu_now_ms();
	union proto_msg r;
	while (tu_now_ms() - t0 < limit_ms) {
		if (mstatus(cl, &r, 5000) == 0) {
			/* one reply is consistent: up with no error, down with one */
			assert_int_equal(r.mstatus.store_up, r.mstatus.store_error[0] == '\0');
			if (r.mstatus.store_up == up)
				return (long)(tu_now_ms() - t0);
		}
		usleep(20000);
	}
	return -1;
}

static uint64_t scale(void)
{
	const char *env = getenv("RTCMS_TEST_TIME_SCALE");
	long s = env ? strtol(env, NULL, 10) : 1;
	return s < 1 || s > 100 ? 1 : (uint64_t)s;
}

static void test_store_shown_down_and_up(void **state)
{
	static struct cluster cl; /* static: cl_teardown may stop it after a failed assertion */
	(void)state;

	assert_int_equal(cl_start(&cl, "s-store", NULL), 0);
	assert_int_equal(cl_agent_start(&cl, 0, NULL), 0);
	assert_int_equal(cl_run(&cl, "fresh", 0, counter, NULL), 0);
	assert_int_equal(cl_wait_durable(&cl, "fresh", 1, 2, 20000), 0);
	assert_true(wait_store_shown(&cl, 1, 5000) >= 0); /* up now */
	char store_addr[80];
	snprintf(store_addr, sizeof(store_addr), "%s", cl.store.addr);

	/* nothing asks the store anything; the manager's lease renewals see it */
	tu_daemon_stop(&cl.store, SIGKILL);
	long down_ms = wait_store_shown(&cl, 0, 2000 * scale());
	printf("# store killed -> status shows it down: %ld ms\n", down_ms);
	assert_true(down_ms >= 0);
	/* it stays down while the store is down (no stale "up") */
	usleep(500 * 1000);
	union proto_msg r;
	assert_int_equal(mstatus(&cl, &r, 5000), 0);
	assert_int_equal(r.mstatus.store_up, 0);
	assert_true(strlen(r.mstatus.store_error) > 0);

	const char *again[] = { "--listen", store_addr, NULL };
	assert_int_equal(tu_store_start(&cl.store, cl.dir, cl.key_file, 2, NULL, again), 0);
	/* the back-off between tries is at most 5 s (docs/operations.md) */
	long up_ms = wait_store_shown(&cl, 1, 6000 * scale());
	printf("# store back -> status shows it up: %ld ms\n", up_ms);
	/* (a store just back on a loaded machine may fail a call again: each
	 * reply is checked to be consistent, not that it stays up) */
	assert_true(up_ms >= 0);
	cl_stop(&cl);
}

static void test_stopped_agent_does_not_hold_status(void **state)
{
	static struct cluster cl; /* static: cl_teardown may stop it after a failed assertion */
	union proto_msg r;
	(void)state;

	assert_int_equal(cl_start(&cl, "s-agent", NULL), 0);
	assert_int_equal(cl_agent_start(&cl, 0, NULL), 0);
	assert_int_equal(cl_agent_start(&cl, 1, NULL), 0);
	assert_int_equal(cl_run(&cl, "steady", cl_node(1), counter, NULL), 0);
	assert_int_equal(cl_wait_durable(&cl, "steady", 1, 2, 20000), 0);

	kill(cl.agents[0].pid, SIGSTOP);
	/* status answers (within the 2 s a client is promised, stretched for
	 * sanitizer builds) and still lists both nodes and the program */
	uint64_t t0 = tu_now_ms();
	int rc = mstatus(&cl, &r, (int)(2000 * scale()));
	uint64_t took = tu_now_ms() - t0;
	kill(cl.agents[0].pid, SIGCONT);
	printf("# status with a stopped agent: %" PRIu64 " ms\n", took);
	assert_int_equal(rc, 0);
	assert_true(r.mstatus.node_count >= 2);
	int found = 0;
	for (int i = 0; i < r.mstatus.proc_count; i++)
		found += strcmp(procs[i].process, "steady") == 0;
	assert_int_equal(found, 1);
	cl_stop(&cl);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_store_shown_down_and_up, cl_teardown),
		cmocka_unit_test_teardown(test_stopped_agent_does_not_hold_status, cl_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
