/*
 * test_nothing_lost.c - a program that should run and runs nowhere is
 * restored, whatever made it stop; one that crashes is restarted on its
 * node from its checkpoint; operator mistakes are refused. Real daemons,
 * real kills and stops; every program's instances are counted from /proc
 * throughout (never two at once).
 *
 * Cases of the issue "Nothing lost, ever": a stalled agent whose lease
 * lapsed (1), a crashed program (3), two agents with one node id (4), an
 * agent killed and started again within the node timeout, and the only
 * manager stopped for longer than the lease (9).
 */
#include <inttypes.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>
#include <dirent.h>

#include "cluster.h"
#include "rtcms_error.h"

#define COUNTER RTCMS_BIN_DIR "/rtcms-counter"

static const char *counter[] = { COUNTER, "--iterations", "0", "--interval-ms", "20", NULL };

/* ---- a sampler: the most instances of each program seen at once ------- */

#define SAMPLED_MAX 4

static struct {
	pthread_t t;
	atomic_int stop;
	const char *ids[SAMPLED_MAX];
	int n;
	int max[SAMPLED_MAX];
} sampler;

static void *sample(void *arg)
{
	(void)arg;
	while (!atomic_load(&sampler.stop)) {
		for (int i = 0; i < sampler.n; i++) {
			int k = cl_instances(sampler.ids[i], NULL, 0);
			if (k > sampler.max[i])
				sampler.max[i] = k;
		}
		usleep(20000);
	}
	return NULL;
}

static void sampler_start(const char *const *ids, int n)
{
	memset(&sampler, 0, sizeof(sampler));
	atomic_init(&sampler.stop, 0);
	for (int i = 0; i < n && i < SAMPLED_MAX; i++)
		sampler.ids[sampler.n++] = ids[i];
	pthread_create(&sampler.t, NULL, sample, NULL);
}

static void sampler_stop(void)
{
	atomic_store(&sampler.stop, 1);
	pthread_join(sampler.t, NULL);
	for (int i = 0; i < sampler.n; i++) {
		printf("# %s: at most %d instance(s) at once\n", sampler.ids[i], sampler.max[i]);
		assert_true(sampler.max[i] <= 1);
	}
}

/* Wait until id runs (state RUNNING) as incarnation >= inc with exactly one
 * live instance; returns its entry's incarnation or 0. */
static uint64_t wait_running(struct cluster *cl, const char *id, uint64_t inc,
			     int timeout_ms, struct proto_proc_entry *out)
{
	uint64_t end = tu_now_ms() + (uint64_t)timeout_ms;
	while (tu_now_ms() < end) {
		struct proto_proc_entry e;
		if (cl_proc(cl, id, &e) == 0 && e.incarnation >= inc &&
		    e.state == PROTO_PS_RUNNING && cl_instances(id, NULL, 0) == 1) {
			if (out)
				*out = e;
			return e.incarnation;
		}
		usleep(20000);
	}
	struct proto_proc_entry e = { 0 };
	int rc = cl_proc(cl, id, &e);
	printf("# %s not running once as incarnation >= %" PRIu64 ": manager %d, state %u, "
	       "incarnation %" PRIu64 ", node %016" PRIx64 "; %d live instance(s) in /proc\n",
	       id, inc, rc, e.state, e.incarnation, e.node, cl_instances(id, NULL, 0));
	if (system("ps -eo pid,ppid,stat,lstart,args | grep '[r]tcms-counter'; "
		   "grep -h 'stall-a\\|lease\\|fenced' /tmp/rtcms-nl-stall-*/agent-1.log | "
		   "grep -v counter: | tail -20") != 0)
		printf("# (no ps)\n");
	return 0;
}


/* (1) An agent stalled longer than its lease but shorter than the node
 * timeout: the program's own watchdog fences it; the managers still count
 * the node alive. The program is reported gone and restored at once. */
static void test_stalled_agent(void **state)
{
	static struct cluster cl;
	struct proto_proc_entry e;
	const char *ids[] = { "stall-a" };
	(void)state;

	assert_int_equal(cl_start(&cl, "nl-stall", NULL), 0);
	for (int i = 0; i < 2; i++)
		assert_int_equal(cl_agent_start(&cl, i, NULL), 0);
	assert_int_equal(cl_run(&cl, "stall-a", cl_node(0), counter, NULL), 0);
	assert_int_equal(cl_wait_durable(&cl, "stall-a", 1, 3, 20000), 0);
	sampler_start(ids, 1);
	/* the tests' lease is 1000 ms (scaled), the node timeout 1500 ms */
	const char *scale = getenv("RTCMS_TEST_TIME_SCALE");
	int k = scale ? atoi(scale) : 1;
	kill(cl.agents[0].pid, SIGSTOP);
	usleep((useconds_t)(1250000 * (k > 0 ? k : 1)));
	kill(cl.agents[0].pid, SIGCONT);
	assert_true(wait_running(&cl, "stall-a", 2, 30000, &e) >= 2);
	printf("# stalled agent: restored as incarnation %" PRIu64 " on node %016" PRIx64 "\n",
	       e.incarnation, e.node);
	/* and it goes on from there */
	assert_int_equal(cl_wait_durable(&cl, "stall-a", e.incarnation, e.notified + 2, 20000), 0);
	sampler_stop();
	cl_stop(&cl);
}

/* (3) A crashed program is restarted on its node from its checkpoint (same
 * incarnation, its sequence goes on); with restart = never it is failed. */
static void test_crash_restarted(void **state)
{
	static struct cluster cl;
	struct proto_proc_entry before, after;
	const char *ids[] = { "crash-a", "crash-never" };
	const char *never[] = { "RTCMS_RESTART=never", NULL };
	(void)state;

	assert_int_equal(cl_start(&cl, "nl-crash", NULL), 0);
	assert_int_equal(cl_agent_start(&cl, 0, NULL), 0);
	assert_int_equal(cl_run(&cl, "crash-a", cl_node(0), counter, NULL), 0);
	assert_int_equal(cl_run(&cl, "crash-never", cl_node(0), counter, never), 0);
	assert_int_equal(cl_wait_durable(&cl, "crash-a", 1, 3, 20000), 0);
	assert_int_equal(cl_wait_durable(&cl, "crash-never", 1, 3, 20000), 0);
	sampler_start(ids, 2);
	for (int round = 0; round < 3; round++) {
		assert_int_equal(cl_proc(&cl, "crash-a", &before), 0);
		int pid = cl_instance_pid("crash-a");
		assert_true(pid > 0);
		kill(pid, SIGABRT);
		/* a new pid, the same incarnation, restarts counted */
		uint64_t end = tu_now_ms() + 20000;
		int np = -1;
		while (tu_now_ms() < end) {
			np = cl_instance_pid("crash-a");
			if (np > 0 && np != pid && cl_proc(&cl, "crash-a", &after) == 0 &&
			    after.restarts >= (uint32_t)round + 1)
				break;
			usleep(20000);
		}
		assert_true(np > 0 && np != pid);
		assert_int_equal(after.incarnation, 1);
		assert_int_equal(after.restarts, round + 1);
		/* it continued from its checkpoint: its sequence goes on */
		assert_int_equal(cl_wait_durable(&cl, "crash-a", 1, before.durable + 2, 20000), 0);
	}
	int pid = cl_instance_pid("crash-never");
	assert_true(pid > 0);
	kill(pid, SIGABRT);
	uint64_t end = tu_now_ms() + 20000;
	while (tu_now_ms() < end && (cl_proc(&cl, "crash-never", &after) != 0 ||
				     after.state != PROTO_PS_FAILED))
		usleep(20000);
	assert_int_equal(after.state, PROTO_PS_FAILED);
	assert_non_null(strstr(after.reason, "restart=never"));
	usleep(1000000); /* and it stays so: not restored anywhere */
	assert_int_equal(cl_instances("crash-never", NULL, 0), 0);
	sampler_stop();
	cl_stop(&cl);
}

/* Kill id's one instance, then wait for a new pid, or for the manager to
 * show it failed; returns the new pid, 0 if failed, -1 on timeout. */
static int crash_and_wait(struct cluster *cl, const char *id, struct proto_proc_entry *after)
{
	int pid = cl_instance_pid(id);
	assert_true(pid > 0);
	kill(pid, SIGABRT);
	uint64_t end = tu_now_ms() + 30000;
	while (tu_now_ms() < end) {
		int np = cl_instance_pid(id);
		if (cl_proc(cl, id, after) == 0 && after->state == PROTO_PS_FAILED)
			return 0;
		if (np > 0 && np != pid)
			return np;
		usleep(20000);
	}
	return -1;
}

/* (3) A program that keeps crashing: past max_restarts its agent gives up,
 * the manager moves it to another node once (a new incarnation), and when
 * it gives up there too, it is shown failed with the reason, runs nowhere
 * and is not restored again. */
static void test_gave_up_moved_once(void **state)
{
	static struct cluster cl;
	struct proto_proc_entry e;
	const char *ids[] = { "crash-loop" };
	const char *one[] = { "--max-restarts", "1", NULL };
	(void)state;

	assert_int_equal(cl_start(&cl, "nl-gaveup", NULL), 0);
	for (int i = 0; i < 2; i++)
		assert_int_equal(cl_agent_start(&cl, i, one), 0);
	assert_int_equal(cl_run(&cl, "crash-loop", cl_node(0), counter, NULL), 0);
	assert_int_equal(cl_wait_durable(&cl, "crash-loop", 1, 3, 20000), 0);
	sampler_start(ids, 1);
	/* node 0: one restart, then the agent gives up; moved to node 1 */
	assert_true(crash_and_wait(&cl, "crash-loop", &e) > 0);
	assert_true(crash_and_wait(&cl, "crash-loop", &e) > 0);
	assert_true(wait_running(&cl, "crash-loop", 2, 30000, &e) >= 2);
	assert_int_equal(e.node, cl_node(1));
	printf("# gave up on node 0: moved to node 1 as incarnation %" PRIu64 "\n",
	       e.incarnation);
	uint64_t moved = e.incarnation;
	assert_int_equal(cl_wait_durable(&cl, "crash-loop", moved, 2, 20000), 0);
	/* node 1: one restart, then it gives up there too: failed for good */
	assert_true(crash_and_wait(&cl, "crash-loop", &e) > 0);
	assert_int_equal(crash_and_wait(&cl, "crash-loop", &e), 0);
	assert_int_equal(e.state, PROTO_PS_FAILED);
	assert_int_equal(e.incarnation, moved);
	assert_non_null(strstr(e.reason, "gave up"));
	printf("# failed for good: %s\n", e.reason);
	usleep(2000000); /* and it stays so: not restored anywhere */
	assert_int_equal(cl_proc(&cl, "crash-loop", &e), 0);
	assert_int_equal(e.state, PROTO_PS_FAILED);
	assert_int_equal(cl_instances("crash-loop", NULL, 0), 0);
	/* the store holds that it failed, not the manager's memory: a manager
	 * started afresh (which finds it running nowhere) restores it neither */
	char listen[96];
	snprintf(listen, sizeof(listen), "%s", cl.manager.addr);
	tu_daemon_stop(&cl.manager, SIGKILL);
	const char *const *t = cl_timeouts();
	const char *args[] = { t[0], t[1], t[2], t[3], "--listen", listen, NULL };
	assert_int_equal(tu_manager_start(&cl.manager, cl.dir, "manager", cl.key_file,
					  cl.store.addr, args), 0);
	memset(&e, 0, sizeof(e));
	for (uint64_t end = tu_now_ms() + 40000;
	     tu_now_ms() < end && (cl_proc(&cl, "crash-loop", &e) != 0 ||
				   e.state != PROTO_PS_FAILED);)
		usleep(50000);
	assert_int_equal(e.state, PROTO_PS_FAILED);
	printf("# a new manager: failed for good: %s\n", e.reason);
	assert_int_equal(cl_instances("crash-loop", NULL, 0), 0);
	sampler_stop(); /* never two at once */
	cl_stop(&cl);
}

/* (9) An agent killed with kill -9 and started again within the node
 * timeout: its program (fenced by its own watchdog) is restored. */
static void test_restarted_agent(void **state)
{
	static struct cluster cl;
	struct proto_proc_entry e;
	const char *ids[] = { "again-a" };
	(void)state;

	assert_int_equal(cl_start(&cl, "nl-again", NULL), 0);
	assert_int_equal(cl_agent_start(&cl, 0, NULL), 0);
	assert_int_equal(cl_run(&cl, "again-a", cl_node(0), counter, NULL), 0);
	assert_int_equal(cl_wait_durable(&cl, "again-a", 1, 3, 20000), 0);
	sampler_start(ids, 1);
	tu_daemon_stop(&cl.agents[0], SIGKILL);
	assert_int_equal(cl_agent_start(&cl, 0, NULL), 0);
	assert_true(wait_running(&cl, "again-a", 2, 30000, &e) >= 2);
	assert_int_equal(e.node, cl_node(0)); /* the only node */
	assert_int_equal(cl_wait_durable(&cl, "again-a", e.incarnation, e.notified + 2, 20000), 0);
	sampler_stop();
	cl_stop(&cl);
}

/* (9) The only manager stopped for twice the lease: every program is
 * fenced; once it is back each is restored, once. */
static void test_manager_stopped(void **state)
{
	static struct cluster cl;
	struct proto_proc_entry e;
	const char *ids[] = { "mstop-a", "mstop-b" };
	(void)state;

	assert_int_equal(cl_start(&cl, "nl-mstop", NULL), 0);
	for (int i = 0; i < 2; i++)
		assert_int_equal(cl_agent_start(&cl, i, NULL), 0);
	assert_int_equal(cl_run(&cl, "mstop-a", cl_node(0), counter, NULL), 0);
	assert_int_equal(cl_run(&cl, "mstop-b", cl_node(1), counter, NULL), 0);
	assert_int_equal(cl_wait_durable(&cl, "mstop-a", 1, 3, 20000), 0);
	assert_int_equal(cl_wait_durable(&cl, "mstop-b", 1, 3, 20000), 0);
	sampler_start(ids, 2);
	const char *scale = getenv("RTCMS_TEST_TIME_SCALE");
	int k = scale ? atoi(scale) : 1;
	kill(cl.manager.pid, SIGSTOP);
	usleep((useconds_t)(2000000 * (k > 0 ? k : 1)));
	kill(cl.manager.pid, SIGCONT);
	assert_true(wait_running(&cl, "mstop-a", 2, 30000, &e) >= 2);
	assert_true(wait_running(&cl, "mstop-b", 2, 30000, &e) >= 2);
	sampler_stop();
	cl_stop(&cl);
}

/* (4) A second agent with a node id a live agent holds is refused; the
 * first keeps its node and its program. */
static void test_duplicate_node_id(void **state)
{
	static struct cluster cl;
	struct tu_daemon dup;
	struct proto_proc_entry e;
	(void)state;

	assert_int_equal(cl_start(&cl, "nl-dup", NULL), 0);
	assert_int_equal(cl_agent_start(&cl, 0, NULL), 0);
	assert_int_equal(cl_run(&cl, "dup-a", cl_node(0), counter, NULL), 0);
	assert_int_equal(cl_wait_durable(&cl, "dup-a", 1, 2, 20000), 0);
	int pid = cl_instance_pid("dup-a");
	char node[32];
	snprintf(node, sizeof(node), "%" PRIx64, cl_node(0));
	const char *extra[] = { "--lease", "1000", NULL };
	memset(&dup, 0, sizeof(dup));
	assert_int_equal(tu_agent_start(&dup, cl.dir, "agent-dup", cl.key_file, "127.0.0.9",
					node, cl.manager.addr, extra), 0);
	assert_int_equal(cl_wait_log(&dup, "REGISTER refused", 1, 10000), 0);
	assert_int_equal(cl_wait_log(&cl.manager, "is held by the live agent at", 1, 10000), 0);
	usleep(3000000);
	/* the first agent keeps its node and its program runs on, the same */
	assert_int_equal(cl_proc(&cl, "dup-a", &e), 0);
	assert_int_equal(e.state, PROTO_PS_RUNNING);
	assert_int_equal(e.incarnation, 1);
	assert_int_equal(cl_instance_pid("dup-a"), pid);
	tu_daemon_stop(&dup, SIGTERM);
	cl_stop(&cl);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_stalled_agent, cl_teardown),
		cmocka_unit_test_teardown(test_crash_restarted, cl_teardown),
		cmocka_unit_test_teardown(test_gave_up_moved_once, cl_teardown),
		cmocka_unit_test_teardown(test_restarted_agent, cl_teardown),
		cmocka_unit_test_teardown(test_manager_stopped, cl_teardown),
		cmocka_unit_test_teardown(test_duplicate_node_id, cl_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
