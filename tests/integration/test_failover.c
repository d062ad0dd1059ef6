/*
 * test_failover.c - node failures with the real daemons and real kills:
 * the programs of a killed node are restored exactly once, spread over the
 * healthy nodes, from their latest durable checkpoints; a frozen agent's
 * programs are fenced before their new incarnation starts (no overlap in
 * time, from the programs' own logs); an operator's notice declares a node
 * failed safely; a node that comes back does not resurrect its programs.
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

#include "client/store_client.h"
#include "cluster.h"
#include "net/client.h"
#include "rtcms_error.h"

#define COUNTER RTCMS_BIN_DIR "/rtcms-counter"
#define LEDGER RTCMS_BIN_DIR "/rtcms-ledger"

/* wait until id runs as incarnation inc; returns its node or 0 */
/* kill -9 an agent together with its programs: each is restored exactly
 * once, on the healthy nodes, spread, and goes on */
static void test_killed_node_restored(void **state)
{
	static struct cluster cl; /* static: cl_teardown may stop it after a failed assertion */
	struct proto_proc_entry e1, e2;
	char line[4096];
	(void)state;

	assert_int_equal(cl_start(&cl, "fo-kill", NULL), 0);
	for (int i = 0; i < 3; i++)
		assert_int_equal(cl_agent_start(&cl, i, NULL), 0);
	const char *counter[] = { COUNTER, "--iterations", "0", "--interval-ms", "30", NULL };
	const char *ledger[] = { LEDGER, "--iterations", "0", "--interval-ms", "30", NULL };
	assert_int_equal(cl_run(&cl, "victim-a", cl_node(0), counter, NULL), 0);
	assert_int_equal(cl_run(&cl, "victim-b", cl_node(0), ledger, NULL), 0);
	assert_int_equal(cl_wait_durable(&cl, "victim-a", 1, 3, 20000), 0);
	assert_int_equal(cl_wait_durable(&cl, "victim-b", 1, 3, 20000), 0);
	int pa = cl_program_pid(&cl, 0, "victim-a"), pb = cl_program_pid(&cl, 0, "victim-b");
	assert_true(pa > 0 && pb > 0);

	kill(cl.agents[0].pid, SIGKILL);
	kill(pa, SIGKILL);
	kill(pb, SIGKILL);
	tu_daemon_stop(&cl.agents[0], SIGKILL); /* reap */
	assert_int_equal(cl_proc(&cl, "victim-a", &e1), 0);
	assert_int_equal(cl_proc(&cl, "victim-b", &e2), 0);
	uint64_t da = e1.durable, db = e2.durable;

	uint64_t na = cl_wait_running(&cl, "victim-a", 2, 20000);
	uint64_t nb = cl_wait_running(&cl, "victim-b", 2, 20000);
	assert_true(na == cl_node(1) || na == cl_node(2));
	assert_true(nb == cl_node(1) || nb == cl_node(2));
	assert_true(na != nb); /* placement asked again: spread */
	/* exactly once each (one instance, incarnation 2), from the latest
	 * durable checkpoint */
	assert_true(cl_program_pid(&cl, (int)(na - cl_node(0)), "victim-a") > 0);
	assert_true(cl_program_pid(&cl, (int)(nb - cl_node(0)), "victim-b") > 0);
	assert_int_equal(cl_log_line(&cl.manager, "RESTORE victim-a done", line,
				     sizeof(line)), 0);
	uint64_t sa = strtoull(strstr(line, "from checkpoint ") + 16, NULL, 10);
	assert_true(sa >= da);
	char needle[96];
	snprintf(needle, sizeof(needle), "counter: restored at counter %" PRIu64 " with", sa);
	int hits = 0;
	for (int i = 1; i < 3; i++)
		hits += tu_log_count(&cl.agents[i], needle);
	assert_int_equal(hits, 1);
	/* and they go on under the new incarnation */
	assert_int_equal(cl_wait_durable(&cl, "victim-a", 2, sa + 2, 20000), 0);
	assert_int_equal(cl_wait_durable(&cl, "victim-b", 2, db + 2, 20000), 0);
	cl_stop(&cl);
}

/* last "committed checkpoint S at T ms" of a log, or first (first = 1) */
static uint64_t commit_time(const struct tu_daemon *d, int first)
{
	char line[4096];
	uint64_t t = 0;
	FILE *f = fopen(d->log, "r");
	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f)) {
		const char *p = strstr(line, "ledger: committed checkpoint ");
		uint64_t seq, ms;
		if (p && sscanf(p, "ledger: committed checkpoint %" SCNu64 " at %" SCNu64,
				&seq, &ms) == 2) {
			t = ms;
			if (first)
				break;
		}
	}
	fclose(f);
	return t;
}

/* A frozen agent (as cut off: it hears nothing, answers nothing): its
 * program stops itself at the lease; the new incarnation starts only
 * after that - no overlap in the programs' own clocks. When the agent
 * comes back it rejoins empty: nothing is resurrected. */
static void test_frozen_node_fenced_then_restored(void **state)
{
	static struct cluster cl; /* static: cl_teardown may stop it after a failed assertion */
	(void)state;

	assert_int_equal(cl_start(&cl, "fo-frozen", NULL), 0);
	assert_int_equal(cl_agent_start(&cl, 0, NULL), 0);
	assert_int_equal(cl_agent_start(&cl, 1, NULL), 0);
	const char *ledger[] = { LEDGER, "--iterations", "0", "--interval-ms", "5",
				 "--print-times", NULL };
	assert_int_equal(cl_run(&cl, "split", cl_node(0), ledger, NULL), 0);
	assert_int_equal(cl_wait_durable(&cl, "split", 1, 5, 20000), 0);

	kill(cl.agents[0].pid, SIGSTOP);
	assert_true(cl_wait_running(&cl, "split", 2, 20000) == cl_node(1));
	assert_int_equal(cl_wait_log(&cl.agents[1], "committed checkpoint", 1, 10000), 0);
	uint64_t old_last = commit_time(&cl.agents[0], 0);
	uint64_t new_first = commit_time(&cl.agents[1], 1);
	assert_true(old_last > 0 && new_first > 0);
	if (old_last >= new_first)
		fail_msg("overlap: the old instance committed at %" PRIu64 " ms, the new one "
			 "already at %" PRIu64 " ms", old_last, new_first);
	/* the old instance stopped itself at its lease: one left, on node 3 */
	assert_true(cl_program_pid(&cl, 1, "split") > 0);

	/* back: the agent rejoins empty; the program stays where it is */
	kill(cl.agents[0].pid, SIGCONT);
	assert_int_equal(cl_wait_nodes(&cl, &cl.manager, 1, 10000), 0);
	assert_int_equal(cl_wait_durable(&cl, "split", 2, 1, 20000), 0);
	struct proto_proc_entry e;
	assert_int_equal(cl_proc(&cl, "split", &e), 0);
	assert_int_equal(e.node, cl_node(1));
	assert_int_equal(e.incarnation, 2);
	assert_true(cl_program_pid(&cl, 1, "split") > 0);
	/* the old instance never came back: no new commit on node 2 */
	uint64_t again = commit_time(&cl.agents[0], 0);
	assert_int_equal(again, old_last);
	cl_stop(&cl);
}

/* The operator's notice: the node's heartbeats go unanswered, its agent
 * fences its program, and it is restored elsewhere. */
static void test_node_failed_notice(void **state)
{
	static struct cluster cl; /* static: cl_teardown may stop it after a failed assertion */
	union proto_msg q, r;
	char why[PROTO_TEXT_MAX + 1];
	(void)state;

	assert_int_equal(cl_start(&cl, "fo-notice", NULL), 0);
	assert_int_equal(cl_agent_start(&cl, 0, NULL), 0);
	assert_int_equal(cl_agent_start(&cl, 1, NULL), 0);
	const char *counter[] = { COUNTER, "--iterations", "0", "--interval-ms", "20", NULL };
	assert_int_equal(cl_run(&cl, "noticed", cl_node(0), counter, NULL), 0);
	assert_int_equal(cl_wait_durable(&cl, "noticed", 1, 3, 20000), 0);
	memset(&q, 0, sizeof(q));
	q.drain.node = cl_node(0);
	assert_int_equal(cl_call(&cl, PROTO_NODE_FAILED, &q, PROTO_OK, &r, 5000, why,
				 sizeof(why)), 0);
	assert_true(cl_wait_running(&cl, "noticed", 2, 20000) == cl_node(1));
	/* the old instance was fenced: one left, on node 3 */
	assert_true(cl_program_pid(&cl, 1, "noticed") > 0);
	q.drain.node = 0x999;
	assert_int_equal(cl_call(&cl, PROTO_NODE_FAILED, &q, PROTO_OK, &r, 5000, why,
				 sizeof(why)), RTCMS_ENOENT);
	cl_stop(&cl);
}

/* Two managers, both active: a killed node's programs are restored once
 * (the store's claim decides; the other manager sees the move); killing
 * one manager leaves the cluster running on the other. */
static void test_two_managers(void **state)
{
	static struct cluster cl; /* static: cl_teardown may stop it after a failed assertion */
	(void)state;

	const char *fast[] = { "--claim-lease", "3000", NULL };
	assert_int_equal(cl_start(&cl, "fo-two", fast), 0);
	assert_int_equal(cl_second_manager(&cl, fast), 0);
	for (int i = 0; i < 3; i++)
		assert_int_equal(cl_agent_start(&cl, i, NULL), 0);
	assert_int_equal(cl_wait_nodes(&cl, &cl.manager2, 3, 10000), 0);
	const char *counter[] = { COUNTER, "--iterations", "0", "--interval-ms", "30", NULL };
	assert_int_equal(cl_run(&cl, "twice-a", cl_node(0), counter, NULL), 0);
	assert_int_equal(cl_run(&cl, "twice-b", cl_node(0), counter, NULL), 0);
	assert_int_equal(cl_wait_durable(&cl, "twice-a", 1, 3, 20000), 0);
	assert_int_equal(cl_wait_durable(&cl, "twice-b", 1, 3, 20000), 0);
	int pa = cl_program_pid(&cl, 0, "twice-a"), pb = cl_program_pid(&cl, 0, "twice-b");
	kill(cl.agents[0].pid, SIGKILL);
	kill(pa, SIGKILL);
	kill(pb, SIGKILL);
	tu_daemon_stop(&cl.agents[0], SIGKILL);
	assert_true(cl_wait_running(&cl, "twice-a", 2, 30000) != 0);
	assert_true(cl_wait_running(&cl, "twice-b", 2, 30000) != 0);
	assert_int_equal(cl_wait_durable(&cl, "twice-a", 2, 1, 20000), 0);
	/* one restore each, whichever manager did it (incarnation 2, not
	 * more); one restored instance */
	const char *ids[] = { "twice-a", "twice-b" };
	int restored[2];
	struct proto_proc_entry e;
	for (int k = 0; k < 2; k++) {
		assert_int_equal(cl_proc(&cl, ids[k], &e), 0);
		assert_int_equal(e.incarnation, 2);
		restored[k] = cl_program_pid(&cl, (int)(e.node - cl_node(0)), ids[k]);
		assert_true(restored[k] > 0);
	}
	/* one manager dies: the other keeps the leases alive (no instance is
	 * fenced and restored again) and the checkpoints flowing */
	tu_daemon_stop(&cl.manager2, SIGKILL);
	assert_int_equal(cl_proc(&cl, "twice-a", &e), 0);
	assert_int_equal(cl_wait_durable(&cl, "twice-a", 2, e.durable + 10, 20000), 0);
	for (int k = 0; k < 2; k++) {
		assert_int_equal(cl_instance_pid(ids[k]), restored[k]);
		assert_int_equal(cl_proc(&cl, ids[k], &e), 0);
		assert_int_equal(e.incarnation, 2);
	}
	cl_stop(&cl);
}

/* relay one stored checkpoint to an agent as RESTORE (as a manager would) */
struct relay { struct net_client *agent; struct proto_ckpt_meta *meta; int begun; uint32_t n; };

static int relay_chunk(void *ctx, const struct proto_chunk *chunk)
{
	struct relay *r = ctx;
	union proto_msg q;
	if (!r->begun) {
		r->begun = 1;
		q.meta = *r->meta;
		if (net_client_send(r->agent, PROTO_RESTORE, 0, &q, NULL))
			return -1;
	}
	q.chunk = *chunk;
	r->n++;
	return net_client_send(r->agent, PROTO_CHUNK, 0, &q, NULL);
}

/* A target refuses a restore of an incarnation older than one it ran. */
static void test_stale_restore_refused(void **state)
{
	static struct cluster cl; /* static: cl_teardown may stop it after a failed assertion */
	struct proto_migrate_ok ok;
	char why[PROTO_TEXT_MAX + 1];
	(void)state;

	assert_int_equal(cl_start(&cl, "fo-stale", NULL), 0);
	assert_int_equal(cl_agent_start(&cl, 0, NULL), 0);
	assert_int_equal(cl_agent_start(&cl, 1, NULL), 0);
	const char *counter[] = { COUNTER, "--iterations", "0", "--interval-ms", "30", NULL };
	const char *never[] = { "RTCMS_RESTART=never", NULL }; /* killed below: it ends */
	assert_int_equal(cl_run(&cl, "stale", cl_node(0), counter, never), 0);
	assert_int_equal(cl_wait_durable(&cl, "stale", 1, 3, 20000), 0);
	if (cl_migrate(&cl, "stale", cl_node(1), 0, &ok, why, sizeof(why)))
		fail_msg("migrate: %s", why);
	assert_int_equal(ok.incarnation, 2);
	/* incarnation 2 ran on node 3; it ends there */
	int pid = cl_program_pid(&cl, 1, "stale");
	assert_true(pid > 0);
	kill(pid, SIGKILL);
	assert_int_equal(cl_wait_instances("stale", 0, 5000), 0);

	/* an old checkpoint of incarnation 1, sent to node 3 as a restore */
	struct net_client *store = NULL, *agent = NULL;
	struct proto_ckpt_meta meta;
	static uint8_t spec[PROTO_SPEC_MAX];
	struct proto_header h;
	union proto_msg q, r;
	assert_int_equal(net_client_connect(cl.store.addr, &cl.key, PROTO_ROLE_MANAGER, "t",
					    5000, &store), 0);
	assert_int_equal(net_client_connect(cl.agents[1].addr, &cl.key, PROTO_ROLE_MANAGER,
					    "t", 5000, &agent), 0);
	struct relay rl = { agent, &meta, 0, 0 };
	assert_int_equal(store_client_fetch(store, PROTO_GET, "stale", 1, ok.sequence, 0, &meta,
					    spec, relay_chunk, &rl, NULL), 0);
	memset(&q, 0, sizeof(q));
	q.put_end.chunk_count = rl.n;
	assert_int_equal(net_client_send(agent, PROTO_PUT_END, 0, &q, NULL), 0);
	assert_int_equal(net_client_recv(agent, &h, &r), 0);
	assert_int_equal(h.type, PROTO_ERROR);
	assert_int_equal(r.error.code, RTCMS_EFENCED);
	assert_non_null(strstr(r.error.text, "already ran here"));
	net_client_free(agent);
	net_client_free(store);
	cl_stop(&cl);
}

/* A manager that starts alone learns the store's processes: one lost
 * with its node while no manager ran is restored; one that finished
 * cleanly had its checkpoints deleted and stays finished. */
static void test_restarted_manager(void **state)
{
	static struct cluster cl; /* static: cl_teardown may stop it after a failed assertion */
	char why[PROTO_TEXT_MAX + 1];
	(void)state;

	assert_int_equal(cl_start(&cl, "fo-restart", NULL), 0);
	assert_int_equal(cl_agent_start(&cl, 0, NULL), 0);
	assert_int_equal(cl_agent_start(&cl, 1, NULL), 0);
	const char *forever[] = { COUNTER, "--iterations", "0", "--interval-ms", "30", NULL };
	const char *brief[] = { COUNTER, "--iterations", "20", "--interval-ms", "10", NULL };
	assert_int_equal(cl_run(&cl, "orphan", cl_node(0), forever, NULL), 0);
	assert_int_equal(cl_run(&cl, "brief", cl_node(0), brief, NULL), 0);
	assert_int_equal(cl_wait_durable(&cl, "orphan", 1, 3, 20000), 0);
	/* whether a checkpoint of it was durable before it ended or not */
	assert_int_equal(cl_wait_log(&cl.manager, "brief finished: ", 1, 20000), 0);

	/* the manager goes; node 2 dies with its program meanwhile */
	char addr[80];
	snprintf(addr, sizeof(addr), "%s", cl.manager.addr);
	tu_daemon_stop(&cl.manager, SIGKILL);
	int pid = cl_program_pid(&cl, 0, "orphan");
	kill(cl.agents[0].pid, SIGKILL);
	kill(pid, SIGKILL);
	tu_daemon_stop(&cl.agents[0], SIGKILL);
	const char *const *t = cl_timeouts();
	const char *args[] = { "--listen", addr, t[0], t[1], t[2], t[3], NULL };
	assert_int_equal(tu_manager_start(&cl.manager, cl.dir, "manager", cl.key_file,
					  cl.store.addr, args), 0);
	assert_true(cl_wait_running(&cl, "orphan", 2, 30000) == cl_node(1));
	assert_int_equal(cl_instances("orphan", NULL, 0), 1);
	assert_int_equal(cl_instances("brief", NULL, 0), 0);
	struct proto_proc_entry e;
	assert_int_equal(cl_proc(&cl, "brief", &e), 0);
	assert_int_equal(e.state, 0); /* unknown to the new manager: it finished */
	/* and its id may be used again */
	assert_int_equal(cl_run(&cl, "brief", cl_node(1), brief, NULL), 0);
	(void)why;
	cl_stop(&cl);
}

/* The only manager is away longer than the lease: every agent fences its
 * programs; when the manager is back it restores them from the store. */
static void test_single_manager_outage(void **state)
{
	static struct cluster cl; /* static: cl_teardown may stop it after a failed assertion */
	(void)state;

	assert_int_equal(cl_start(&cl, "fo-outage", NULL), 0);
	assert_int_equal(cl_agent_start(&cl, 0, NULL), 0);
	assert_int_equal(cl_agent_start(&cl, 1, NULL), 0);
	const char *forever[] = { COUNTER, "--iterations", "0", "--interval-ms", "30", NULL };
	assert_int_equal(cl_run(&cl, "outlived", cl_node(0), forever, NULL), 0);
	assert_int_equal(cl_wait_durable(&cl, "outlived", 1, 3, 20000), 0);
	char addr[80];
	snprintf(addr, sizeof(addr), "%s", cl.manager.addr);
	tu_daemon_stop(&cl.manager, SIGKILL);
	assert_int_equal(cl_wait_instances("outlived", 0, 10000), 0); /* fenced */
	const char *const *t = cl_timeouts();
	const char *args[] = { "--listen", addr, t[0], t[1], t[2], t[3], NULL };
	assert_int_equal(tu_manager_start(&cl.manager, cl.dir, "manager", cl.key_file,
					  cl.store.addr, args), 0);
	assert_true(cl_wait_running(&cl, "outlived", 2, 30000) != 0);
	assert_int_equal(cl_instances("outlived", NULL, 0), 1);
	cl_stop(&cl);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_killed_node_restored, cl_teardown),
		cmocka_unit_test_teardown(test_frozen_node_fenced_then_restored, cl_teardown),
		cmocka_unit_test_teardown(test_node_failed_notice, cl_teardown),
		cmocka_unit_test_teardown(test_two_managers, cl_teardown),
		cmocka_unit_test_teardown(test_stale_restore_refused, cl_teardown),
		cmocka_unit_test_teardown(test_restarted_manager, cl_teardown),
		cmocka_unit_test_teardown(test_single_manager_outage, cl_teardown),
	};
	signal(SIGPIPE, SIG_IGN);
	proto_init();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
