/*
 * test_partition.c - real network partitions (network namespaces, root
 * only; skipped with the reason otherwise): the store, two managers and
 * three agents each in a namespace of their own on one bridge, six
 * programs, two per agent. Each scenario cuts part of the network for 3 s
 * and heals it:
 *   (a) manager 2 cut off from everything,
 *   (b) manager 2 cut off from one agent (manager 1 still hears it),
 *   (c) one agent cut off from everything (its programs are fenced there
 *       and restored elsewhere, exactly once each),
 *   (d) the store cut off from manager 1 (manager 2 still reaches it),
 *   (e) the same for 7 s, longer than manager 1's lease from the store.
 * Throughout, a sampler counts every program's live instances in /proc
 * every 20 ms: no program may ever have two at one moment (a stopped,
 * SIGSTOPped instance counts as live, and is reported apart). After the
 * heal, every program must run exactly once, both managers must show it
 * running under one incarnation, and its durable checkpoint must advance
 * in both (a convergence wait of 20 s, not a performance bound). No
 * program may be restored that did not have to be: in (a), (b), (d), (e)
 * every incarnation stays 1; in (c) only the cut agent's programs move,
 * to incarnation 2.
 *
 * The store has a namespace apart from manager 1's, unlike a deployment
 * that puts them on one host: (d) needs a network between them.
 */
#include <inttypes.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include "census.h"
#include "cluster.h"
#include "netns.h"

#define COUNTER RTCMS_BIN_DIR "/rtcms-counter"
#define LEDGER RTCMS_BIN_DIR "/rtcms-ledger"
#define PROGRAMS 6
#define CUT_MS 3000
#define LONG_CUT_MS 7000
#define SAMPLE_MS 20
#define CONVERGE_MS 20000
#define QUIET_MS 3000 /* watched after convergence: twice the node timeout */

enum { H_T, H_S, H_M1, H_M2, H_N1, H_N2, H_N3 };
static const char *const tags[] = { "t", "s", "m1", "m2", "n1", "n2", "n3", NULL };

/* one net, one cluster, one census per test; static: the teardown stops
 * them after a failed assertion */
static struct netns_net net;
static struct cluster cl;
static struct cl_hosts hosts;
static struct census *census;

enum cut { ISOLATE, PAIR };

struct scenario {
	char key;
	const char *what;
	enum cut cut;
	int a, b;        /* hosts: the one isolated, or the pair */
	int victim;      /* agent whose programs must move (-1: none) */
	int cut_ms;      /* how long */
};

static const struct scenario scenarios[] = {
	{ 'a', "manager 2 cut off from everything", ISOLATE, H_M2, -1, -1, CUT_MS },
	{ 'b', "manager 2 cut off from agent 1", PAIR, H_M2, H_N1, -1, CUT_MS },
	{ 'c', "agent 1 cut off from everything", ISOLATE, H_N1, -1, 0, CUT_MS },
	{ 'd', "store cut off from manager 1", PAIR, H_S, H_M1, -1, CUT_MS },
	/* longer than the manager's lease from the store (5 s by default):
	 * manager 1 must stop answering, manager 2 keeps the nodes leased */
	{ 'e', "store cut off from manager 1, 7 s", PAIR, H_S, H_M1, -1, LONG_CUT_MS },
};

/* what a scenario saw, for the table */
struct row {
	bool ran;
	int max_live, max_running;
	uint64_t stopped_samples, double_samples, samples, max_gap_ms;
	int restores, expected;
	long converge_ms;  /* -1: not within CONVERGE_MS */
	bool ok;
};
static struct row rows[sizeof(scenarios) / sizeof(scenarios[0])];

static uint64_t scaled(uint64_t ms)
{
	const char *env = getenv("RTCMS_TEST_TIME_SCALE");
	long scale = env ? strtol(env, NULL, 10) : 1;
	return scale >= 1 && scale <= 100 ? ms * (uint64_t)scale : ms;
}

static void print_table(void)
{
	bool any = false;
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++)
		any = any || rows[i].ran;
	if (!any) {
		print_message("partition scenarios: none ran\n");
		return;
	}
	print_message("partition scenarios (sampled every %d ms; cut %d ms unless said):\n",
		      SAMPLE_MS, CUT_MS);
	print_message("  %-36s %5s %7s %8s %8s %8s %9s %10s %s\n", "scenario", "max", "max",
		      "samples", "samples", "max gap", "restores", "converged", "result");
	print_message("  %-36s %5s %7s %8s %8s %8s %9s %10s\n", "", "live", "running",
		      "stopped", "double", "ms", "(expect)", "after heal");
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		const struct row *r = &rows[i];
		if (!r->ran)
			continue;
		char conv[24], rest[24];
		if (r->converge_ms >= 0)
			snprintf(conv, sizeof(conv), "%ld ms", r->converge_ms);
		else
			snprintf(conv, sizeof(conv), "no (%d s)", CONVERGE_MS / 1000);
		snprintf(rest, sizeof(rest), "%d (%d)", r->restores, r->expected);
		print_message("  (%c) %-32s %5d %7d %8" PRIu64 " %8" PRIu64 " %8" PRIu64
			      " %9s %10s %s\n", scenarios[i].key, scenarios[i].what, r->max_live,
			      r->max_running, r->stopped_samples, r->double_samples,
			      r->max_gap_ms, rest, conv, r->ok ? "pass" : "FAIL");
	}
}

static int teardown(void **state)
{
	census_free(census);
	census = NULL;
	cl_teardown(state); /* a failed test's cluster: log tails, then stopped */
	cl_hosts = NULL;
	netns_teardown(&net);
	return 0;
}

static int group_teardown(void **state)
{
	(void)state;
	print_table();
	return 0;
}

/* The namespaces, the test itself in "t", and the daemons placed. */
static void net_up(void)
{
	assert_int_equal(netns_setup(&net, tags), 0); /* skips when it cannot run */
	assert_int_equal(netns_enter(&net, H_T), 0);
	hosts.store = (struct cl_host){ netns_wrap(&net, H_S), netns_ip(&net, H_S) };
	hosts.manager = (struct cl_host){ netns_wrap(&net, H_M1), netns_ip(&net, H_M1) };
	hosts.manager2 = (struct cl_host){ netns_wrap(&net, H_M2), netns_ip(&net, H_M2) };
	for (int i = 0; i < 3; i++)
		hosts.agents[i] = (struct cl_host){ netns_wrap(&net, H_N1 + i),
						    netns_ip(&net, H_N1 + i) };
	cl_hosts = &hosts;
}

/* The cuts really hold (a TCP connect, both ways) and spare the rest. */
static void test_cuts_are_real(void **state)
{
	(void)state;
	net_up();
	for (int h = H_S; h <= H_N3; h++)
		assert_int_equal(netns_reach(&net, H_T, h, 2000), 1);
	assert_int_equal(netns_isolate(&net, H_M2), 0);
	assert_int_equal(netns_reach(&net, H_T, H_M2, 300), 0);
	assert_int_equal(netns_reach(&net, H_M2, H_S, 300), 0);
	assert_int_equal(netns_reach(&net, H_N1, H_M2, 300), 0);
	assert_int_equal(netns_reach(&net, H_N1, H_M1, 2000), 1);
	assert_int_equal(netns_heal(&net), 0);
	assert_int_equal(netns_reach(&net, H_T, H_M2, 2000), 1);
	assert_int_equal(netns_reach(&net, H_M2, H_N1, 2000), 1);
	assert_int_equal(netns_cut(&net, H_M2, H_N1), 0);
	assert_int_equal(netns_reach(&net, H_M2, H_N1, 300), 0);
	assert_int_equal(netns_reach(&net, H_N1, H_M2, 300), 0);
	assert_int_equal(netns_reach(&net, H_M2, H_N2, 2000), 1);
	assert_int_equal(netns_reach(&net, H_N1, H_M1, 2000), 1);
	assert_int_equal(netns_reach(&net, H_T, H_M2, 2000), 1);
	assert_int_equal(netns_heal(&net), 0);
	assert_int_equal(netns_reach(&net, H_M2, H_N1, 2000), 1);
	assert_int_equal(netns_reach(&net, H_N1, H_M2, 2000), 1);
	/* a wrapped program runs in its namespace under its own pid */
	char path[160], self[64];
	snprintf(path, sizeof(path), "/run/netns/%s", net.hosts[H_N2].name);
	struct stat ns, in;
	assert_int_equal(stat(path, &ns), 0);
	const char *const *wrap = netns_wrap(&net, H_N2);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		const char *argv[] = { wrap[0], wrap[1], wrap[2], "/bin/sleep", "10", NULL };
		execv(argv[0], (char *const *)argv);
		_exit(127);
	}
	snprintf(self, sizeof(self), "/proc/%d/ns/net", (int)pid);
	bool inside = false;
	for (uint64_t end = tu_now_ms() + 5000; !inside && tu_now_ms() < end;) {
		inside = stat(self, &in) == 0 && in.st_ino == ns.st_ino && in.st_dev == ns.st_dev;
		if (!inside)
			usleep(5000);
	}
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	assert_true(inside);
	netns_teardown(&net);
	assert_int_not_equal(access(path, F_OK), 0); /* removed */
}

/* Cut as the scenario says, and prove the cut holds. */
static void apply_cut(const struct scenario *s)
{
	if (s->cut == ISOLATE) {
		assert_int_equal(netns_isolate(&net, s->a), 0);
		assert_int_equal(netns_reach(&net, H_T, s->a, 200), 0);
	} else {
		assert_int_equal(netns_cut(&net, s->a, s->b), 0);
		assert_int_equal(netns_reach(&net, s->a, s->b, 200), 0);
		assert_int_equal(netns_reach(&net, H_T, s->a, 2000), 1);
		assert_int_equal(netns_reach(&net, H_T, s->b, 2000), 1);
	}
}

static bool progressed(const struct proto_proc_entry *now, const struct proto_proc_entry *base)
{
	return now->incarnation > base->incarnation ||
	       (now->incarnation == base->incarnation && now->durable >= base->durable + 2);
}

static void run_scenario(int which)
{
	const struct scenario *s = &scenarios[which];
	struct row *row = &rows[which];
	char idbuf[PROGRAMS][48], tag[32];
	const char *ids[PROGRAMS];
	struct census_count before[PROGRAMS], now[PROGRAMS];
	struct proto_proc_entry e1[PROGRAMS], e2[PROGRAMS], b1[PROGRAMS], b2[PROGRAMS];

	memset(row, 0, sizeof(*row));
	net_up();
	snprintf(tag, sizeof(tag), "part-%c", s->key);
	const char *fast[] = { "--claim-lease", "3000", NULL };
	assert_int_equal(cl_start(&cl, tag, fast), 0);
	assert_int_equal(cl_second_manager(&cl, fast), 0);
	for (int i = 0; i < 3; i++)
		assert_int_equal(cl_agent_start(&cl, i, NULL), 0);
	assert_int_equal(cl_wait_nodes(&cl, &cl.manager2, 3, 10000), 0);
	const char *counter[] = { COUNTER, "--iterations", "0", "--interval-ms", "50",
				  "--table-mib", "1", NULL };
	const char *ledger[] = { LEDGER, "--iterations", "0", "--interval-ms", "50",
				 "--mib", "1", NULL };
	for (int k = 0; k < PROGRAMS; k++) {
		snprintf(idbuf[k], sizeof(idbuf[k]), "%c%d-%d", s->key, (int)getpid(), k);
		ids[k] = idbuf[k];
		assert_int_equal(cl_run(&cl, ids[k], cl_node(k / 2), k % 2 ? ledger : counter,
					NULL), 0);
	}
	for (int k = 0; k < PROGRAMS; k++)
		assert_int_equal(cl_wait_durable(&cl, ids[k], 1, 3, 20000), 0);
	assert_int_equal(census_start(ids, PROGRAMS, SAMPLE_MS, &census), 0);
	assert_int_equal(census_scan(ids, PROGRAMS, before), 0);
	for (int k = 0; k < PROGRAMS; k++)
		assert_int_equal(before[k].live, 1);

	/* the partition: CUT_MS long, whatever happens meanwhile. A cut agent
	 * must stay cut past the node timeout, which sanitizer runs stretch
	 * (RTCMS_TEST_TIME_SCALE): its cut is stretched alike, else its node
	 * is never declared failed and restoring its programs there again is
	 * right */
	uint64_t cut_ms = s->victim >= 0 ? scaled((uint64_t)s->cut_ms) : (uint64_t)s->cut_ms;
	uint64_t cut_at = tu_now_ms();
	apply_cut(s);
	uint64_t elapsed = tu_now_ms() - cut_at;
	if (elapsed < cut_ms)
		usleep((useconds_t)(cut_ms - elapsed) * 1000);
	assert_int_equal(netns_heal(&net), 0);
	uint64_t healed_at = tu_now_ms();
	assert_int_equal(netns_reach(&net, H_T, s->a, 2000), 1);
	if (s->cut == PAIR)
		assert_int_equal(netns_reach(&net, s->a, s->b, 2000), 1);

	/* convergence: once each, running in both managers' eyes under one
	 * incarnation, durable advancing in both */
	bool have_b1 = false, have_b2 = false, converged = false;
	row->converge_ms = -1;
	char why[256] = "";
	uint64_t deadline = healed_at + scaled(CONVERGE_MS);
	while (!converged && tu_now_ms() < deadline) {
		bool ok = census_scan(ids, PROGRAMS, now) == 0;
		for (int k = 0; ok && k < PROGRAMS; k++)
			if (now[k].live != 1 || now[k].stopped) {
				snprintf(why, sizeof(why), "%s has %d live instance(s), %d stopped",
					 ids[k], now[k].live, now[k].stopped);
				ok = false;
			}
		int r1 = cl_procs_at(&cl, &cl.manager, ids, PROGRAMS, e1, NULL, NULL, 2000);
		int r2 = cl_procs_at(&cl, &cl.manager2, ids, PROGRAMS, e2, NULL, NULL, 2000);
		if (r1 == 0 && !have_b1) {
			memcpy(b1, e1, sizeof(b1));
			have_b1 = true;
			ok = false;
		}
		if (r2 == 0 && !have_b2) {
			memcpy(b2, e2, sizeof(b2));
			have_b2 = true;
			ok = false;
		}
		if (r1 || r2) {
			snprintf(why, sizeof(why), "MSTATUS: manager 1 %d, manager 2 %d", r1, r2);
			ok = false;
		}
		for (int k = 0; ok && k < PROGRAMS; k++) {
			if (e1[k].state != PROTO_PS_RUNNING || e2[k].state != PROTO_PS_RUNNING ||
			    e1[k].incarnation != e2[k].incarnation || e1[k].node != e2[k].node) {
				snprintf(why, sizeof(why), "%s: manager 1 says state %d inc %" PRIu64
					 " node %" PRIx64 ", manager 2 state %d inc %" PRIu64
					 " node %" PRIx64, ids[k], e1[k].state, e1[k].incarnation,
					 e1[k].node, e2[k].state, e2[k].incarnation, e2[k].node);
				ok = false;
			} else if (!progressed(&e1[k], &b1[k]) || !progressed(&e2[k], &b2[k])) {
				snprintf(why, sizeof(why), "%s: durable %" PRIu64 "/%" PRIu64
					 " since the heal %" PRIu64 "/%" PRIu64
					 " (managers 1/2)", ids[k], e1[k].durable, e2[k].durable,
					 b1[k].durable, b2[k].durable);
				ok = false;
			}
		}
		if (ok) {
			converged = true;
			row->converge_ms = (long)(tu_now_ms() - healed_at);
		} else {
			usleep(100000);
		}
	}
	/* nothing happens late either (a restore decided during the cut) */
	if (converged)
		usleep((useconds_t)scaled(QUIET_MS) * 1000);

	/* what was seen */
	int worst = -1;
	row->ran = true;
	row->max_gap_ms = 0;
	for (int k = 0; k < PROGRAMS; k++) {
		struct census_stats st;
		census_get(census, k, &st);
		if (st.max_live > row->max_live) {
			row->max_live = st.max_live;
			worst = k;
		}
		if (st.max_running > row->max_running)
			row->max_running = st.max_running;
		row->stopped_samples += st.stopped_samples;
		row->double_samples += st.double_samples;
		row->samples = st.samples;
		if (st.max_gap_ms > row->max_gap_ms)
			row->max_gap_ms = st.max_gap_ms;
	}
	int r1 = cl_procs_at(&cl, &cl.manager, ids, PROGRAMS, e1, NULL, NULL, 2000);
	int r2 = cl_procs_at(&cl, &cl.manager2, ids, PROGRAMS, e2, NULL, NULL, 2000);
	assert_int_equal(census_scan(ids, PROGRAMS, now), 0);
	char moved[256] = "";
	bool restores_ok = r1 == 0 && r2 == 0;
	for (int k = 0; k < PROGRAMS; k++) {
		int expect = k / 2 == s->victim ? 1 : 0;
		int got = e1[k].incarnation > 0 ? (int)e1[k].incarnation - 1 : 0;
		row->restores += got;
		row->expected += expect;
		if (got != expect || e2[k].incarnation != e1[k].incarnation) {
			restores_ok = false;
			size_t len = strlen(moved);
			snprintf(moved + len, sizeof(moved) - len, " %s: incarnation %" PRIu64
				 "/%" PRIu64 " (managers 1/2), expected %d;", ids[k],
				 e1[k].incarnation, e2[k].incarnation, 1 + expect);
		}
		if (expect && (e1[k].node == cl_node(s->victim) || now[k].live != 1 ||
			       now[k].pids[0] == before[k].pids[0])) {
			restores_ok = false;
			size_t len = strlen(moved);
			snprintf(moved + len, sizeof(moved) - len, " %s: still on its cut node "
				 "(node %" PRIx64 ", pid %d, before %d);", ids[k], e1[k].node,
				 now[k].pids[0], before[k].pids[0]);
		}
	}
	row->ok = row->max_live <= 1 && converged && restores_ok;
	print_message("(%c) %s: %" PRIu64 " samples; max live %d, max running %d, %" PRIu64
		      " sample(s) with a stopped instance; %d restore(s), %d expected; %s\n",
		      s->key, s->what, row->samples, row->max_live, row->max_running,
		      row->stopped_samples, row->restores, row->expected,
		      converged ? "converged" : "did not converge");
	if (row->max_live > 1) {
		struct census_stats st;
		census_get(census, worst, &st);
		fail_msg("(%c) %s: %s had %d live instances at once (first %" PRIu64 " ms "
			 "after the census began: pids %d and %d, %d of them stopped; %" PRIu64
			 " samples with two or more)", s->key, s->what, ids[worst], st.max_live,
			 st.first_double_ms, st.double_pids[0], st.double_pids[1],
			 st.double_stopped, st.double_samples);
	}
	if (!converged)
		fail_msg("(%c) %s: no convergence %d s after the heal: %s", s->key, s->what,
			 CONVERGE_MS / 1000, why);
	if (!restores_ok)
		fail_msg("(%c) %s: restores:%s", s->key, s->what, moved);
	census_free(census);
	census = NULL;
	cl_stop(&cl);
	cl_hosts = NULL;
	netns_teardown(&net);
}

static void test_manager_cut_off(void **state) { (void)state; run_scenario(0); }
static void test_manager_cut_from_agent(void **state) { (void)state; run_scenario(1); }
static void test_agent_cut_off(void **state) { (void)state; run_scenario(2); }
static void test_store_cut_from_manager(void **state) { (void)state; run_scenario(3); }
static void test_store_cut_from_manager_long(void **state) { (void)state; run_scenario(4); }

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_cuts_are_real, teardown),
		cmocka_unit_test_teardown(test_manager_cut_off, teardown),
		cmocka_unit_test_teardown(test_manager_cut_from_agent, teardown),
		cmocka_unit_test_teardown(test_agent_cut_off, teardown),
		cmocka_unit_test_teardown(test_store_cut_from_manager, teardown),
		cmocka_unit_test_teardown(test_store_cut_from_manager_long, teardown),
	};
	signal(SIGPIPE, SIG_IGN);
	proto_init();
	return cmocka_run_group_tests(tests, NULL, group_teardown);
}
