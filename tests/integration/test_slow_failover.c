/*
 * test_slow_failover.c - 50 node failures in a row, at random moments,
 * with two active managers: after each one every program runs exactly
 * once somewhere (counted from /proc, by the RTCMS_PROCESS its agent gave
 * it), none is lost, and the number of restores of each program equals
 * the number of times its node was killed under it.
 */
#include <dirent.h>
#include <inttypes.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "cluster.h"

#define COUNTER RTCMS_BIN_DIR "/rtcms-counter"
#define PROGRAMS 6
#define NODES 4
#define ROUNDS 50

static int restores(struct cluster *cl, const char *id)
{
	char needle[160];
	snprintf(needle, sizeof(needle), "RESTORE %s done", id);
	return tu_log_count(&cl->manager, needle) + tu_log_count(&cl->manager2, needle);
}

static void test_fifty_failures(void **state)
{
	static struct cluster cl; /* static: cl_teardown may stop it after a failed assertion */
	char ids[PROGRAMS][16];
	int killed_under[PROGRAMS] = { 0 };
	(void)state;

	unsigned seed = (unsigned)time(NULL);
	print_message("seed %u\n", seed);
	srand(seed);
	const char *quota[] = { "--quota", "16", NULL };
	assert_int_equal(cl_start(&cl, "fo-fifty", NULL), 0);
	assert_int_equal(cl_second_manager(&cl, NULL), 0);
	for (int i = 0; i < NODES; i++)
		assert_int_equal(cl_agent_start(&cl, i, quota), 0);
	const char *counter[] = { COUNTER, "--iterations", "0", "--interval-ms", "30",
				  "--table-mib", "1", NULL };
	for (int k = 0; k < PROGRAMS; k++) {
		snprintf(ids[k], sizeof(ids[k]), "p%d", k);
		assert_int_equal(cl_run(&cl, ids[k], 0, counter, NULL), 0);
		assert_int_equal(cl_wait_durable(&cl, ids[k], 1, 2, 20000), 0);
	}
	for (int round = 0; round < ROUNDS; round++) {
		int victim = rand() % NODES;
		usleep((useconds_t)(rand() % 300) * 1000); /* anywhere in a checkpoint */
		int agent_pid = cl.agents[victim].pid;
		for (int k = 0; k < PROGRAMS; k++) {
			int parent = 0;
			if (cl_instances(ids[k], &parent, 1) == 1 && parent == agent_pid)
				killed_under[k]++;
		}
		kill(agent_pid, SIGKILL);
		cl_kill_children(agent_pid);
		tu_daemon_stop(&cl.agents[victim], SIGKILL);
		/* every program again running exactly once, restored as often as
		 * its node was killed */
		uint64_t end = tu_now_ms() + 60000;
		int settled = 0;
		while (!settled && tu_now_ms() < end) {
			settled = 1;
			for (int k = 0; k < PROGRAMS && settled; k++)
				settled = restores(&cl, ids[k]) == killed_under[k] &&
					  cl_instances(ids[k], NULL, 0) == 1;
			if (!settled)
				usleep(50000);
		}
		for (int k = 0; k < PROGRAMS; k++) {
			int n = cl_instances(ids[k], NULL, 0), r = restores(&cl, ids[k]);
			if (n != 1 || r != killed_under[k])
				fail_msg("round %d (seed %u): %s runs %d time(s), restored %d "
					 "time(s) for %d node failure(s)", round + 1, seed, ids[k],
					 n, r, killed_under[k]);
		}
		assert_int_equal(cl_agent_start(&cl, victim, quota), 0);
	}
	/* and they all still make progress (a newer incarnation counts too:
	 * the manager may learn one from the other manager's restore) */
	for (int k = 0; k < PROGRAMS; k++) {
		struct proto_proc_entry e, now;
		assert_int_equal(cl_proc(&cl, ids[k], &e), 0);
		uint64_t end = tu_now_ms() + 30000;
		int moved = 0;
		while (!moved && tu_now_ms() < end) {
			if (cl_proc(&cl, ids[k], &now) == 0)
				moved = now.incarnation > e.incarnation ||
					(now.incarnation == e.incarnation &&
					 now.durable >= e.durable + 2);
			if (!moved)
				usleep(50000);
		}
		if (!moved)
			fail_msg("%s makes no progress (incarnation %" PRIu64 ", durable %" PRIu64
				 ")", ids[k], e.incarnation, e.durable);
	}
	cl_stop(&cl);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_fifty_failures, cl_teardown),
	};
	signal(SIGPIPE, SIG_IGN);
	proto_init();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
