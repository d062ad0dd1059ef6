/*
 * test_pull_race.c - two managers pull the same fast-checkpointing
 * programs at once, on a machine loaded by stress-ng: every pull of a
 * healthy agent verifies (no "does not match its hash", no "malformed
 * frame" in either manager's log), deltas and full images alike. The
 * managers hold different bases for the same checkpoint (each skips
 * sequences the other stored), so the agent serves several deltas of one
 * image at the same time while it captures the next.
 */
#include <inttypes.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include "client/store_client.h"
#include "cluster.h"

#define LEDGER RTCMS_BIN_DIR "/rtcms-ledger"
#define RUN_MS 15000

static const char *const symptoms[] = { "does not match its hash", "malformed frame" };

/* stress-ng --cpu 2 for the test's length, or -1 (loudly) without it. */
static pid_t load_start(void)
{
	if (system("command -v stress-ng >/dev/null 2>&1") != 0) {
		printf("**** stress-ng is not installed: the race runs WITHOUT CPU load "
		       "(apt-get install stress-ng)\n");
		fflush(stdout);
		return -1;
	}
	pid_t pid = fork();
	if (pid == 0) {
		execlp("stress-ng", "stress-ng", "--cpu", "2", "--timeout", "60s", "--quiet",
		       (char *)NULL);
		_exit(127);
	}
	printf("load: stress-ng --cpu 2 (pid %d)\n", (int)pid);
	return pid;
}

static void load_stop(pid_t pid)
{
	if (pid <= 0)
		return;
	kill(pid, SIGTERM);
	waitpid(pid, NULL, 0);
}

/* While the programs run: count how the store holds each newly durable
 * checkpoint (deltas and full images; the store keeps only the latest few,
 * so this looks as they come). */
static void watch(struct cluster *cl, const char *const *ids, int n, int ms, int *deltas,
		  int *fulls)
{
	struct net_client *st = NULL;
	uint64_t last[8] = { 0 }, deadline = tu_now_ms() + (uint64_t)ms;
	assert_int_equal(net_client_connect(cl->store.addr, &cl->key, PROTO_ROLE_MANAGER, "t",
					    5000, &st), 0);
	while (tu_now_ms() < deadline) {
		for (int i = 0; i < n; i++) {
			struct proto_proc_entry e;
			struct proto_ckpt_meta meta;
			if (cl_proc(cl, ids[i], &e) != 0 || e.durable <= last[i])
				continue;
			last[i] = e.durable;
			if (store_client_get(st, ids[i], e.incarnation, e.durable, 1, &meta, NULL,
					     NULL, NULL) == 0)
				++*(meta.base ? deltas : fulls);
		}
		usleep(100000);
	}
	net_client_free(st);
}

static void test_two_managers_under_load(void **state)
{
	static struct cluster cl; /* static: cl_teardown may stop it after a failed assertion */
	static const char *const ids[] = { "race-a", "race-b", "race-c" };
	static const char *const intervals[] = { "10", "20", "50" };
	(void)state;
	const char *extra[] = { "--chain-max", "6", NULL };
	assert_int_equal(cl_start(&cl, "pullrace", extra), 0);
	assert_int_equal(cl_second_manager(&cl, extra), 0);
	assert_int_equal(cl_agent_start(&cl, 0, NULL), 0);
	assert_int_equal(cl_agent_start(&cl, 1, NULL), 0);
	pid_t load = load_start();
	for (int i = 0; i < 3; i++) {
		/* 4 MiB of balances, 30 transfers touch at most 60 of its
		 * 1024 pages: deltas */
		const char *ledger[] = { LEDGER, "--iterations", "0", "--interval-ms",
					 intervals[i], "--mib", "4", "--transfers", "30", NULL };
		assert_int_equal(cl_run(&cl, ids[i], cl_node(i == 2), ledger, NULL), 0);
	}
	int deltas = 0, fulls = 0;
	watch(&cl, ids, 3, RUN_MS, &deltas, &fulls);
	load_stop(load);
	printf("seen durable: %d deltas, %d full images\n", deltas, fulls);
	assert_true(deltas >= 5); /* the delta encodings were exercised */

	struct proto_proc_entry e;
	for (int i = 0; i < 3; i++) {
		assert_int_equal(cl_proc(&cl, ids[i], &e), 0);
		printf("%s: %" PRIu64 " durable\n", ids[i], e.durable);
		assert_true(e.durable >= 5);
	}
	/* one puller per process: no checkpoint was pulled and stored twice
	 * (the store logs a PUT of one it had already) */
	assert_int_equal(tu_log_count(&cl.store, "already stored (idempotent)"), 0);
	int bad = 0;
	for (size_t k = 0; k < sizeof(symptoms) / sizeof(symptoms[0]); k++) {
		int n1 = tu_log_count(&cl.manager, symptoms[k]);
		int n2 = tu_log_count(&cl.manager2, symptoms[k]);
		char line[512];
		if (n1 || n2)
			printf("\"%s\": %d lines in manager's log, %d in manager-2's\n",
			       symptoms[k], n1, n2);
		if (n1 && cl_log_line(&cl.manager, symptoms[k], line, sizeof(line)) == 0)
			printf("  manager: %s", line);
		if (n2 && cl_log_line(&cl.manager2, symptoms[k], line, sizeof(line)) == 0)
			printf("  manager-2: %s", line);
		bad += n1 + n2;
	}
	assert_int_equal(bad, 0);
	cl_stop(&cl);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_two_managers_under_load, cl_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
