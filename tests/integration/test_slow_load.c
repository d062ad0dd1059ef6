/*
 * test_slow_load.c - leases and failure detection with the daemons'
 * DEFAULT timeouts (200 ms agent lease, 300 ms node timeout, 50 ms
 * heartbeats: what a deployment runs, not the tests' stretched ones) on a
 * machine under load: two managers, three agents on loopback, four
 * programs checkpointing every 100 ms, while stress-ng loads every core
 * and the disks (--cpu 0 --io 2) for two minutes. Nothing fails, so
 * nothing may be declared failed, no lease may lapse, nothing may be
 * restored, and every program must still run, once, and make progress
 * (its durable checkpoint never standing still for 10 s).
 *
 * MSTATUS has no counters of failures or lapses, and a node declared
 * failed that is heard again before the next poll leaves no trace in it;
 * so the test polls it every 100 ms (a node shown not alive, its longest
 * silence, every program's incarnation and durable checkpoint) and also
 * counts the daemons' log lines ("failed: no heartbeat" at the managers,
 * "lease lapsed" at the agents, the programs' own watchdog). /proc is
 * sampled every 50 ms for double instances and, at the end, for programs
 * that run nowhere. It prints every count per phase (before, under and
 * after the load) and fails with all that went wrong. Skipped when
 * stress-ng is not installed.
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
#include <sys/wait.h>
#include <fcntl.h>
#include <unistd.h>
#include <cmocka.h>

#include "census.h"
#include "cluster.h"

#define COUNTER RTCMS_BIN_DIR "/rtcms-counter"
#define LEDGER RTCMS_BIN_DIR "/rtcms-ledger"
#define PROGRAMS 4
#define AGENTS 3
#define LOAD_S 120
#define POLL_MS 100
#define STALL_MS 10000 /* a program's durable checkpoint stands still this long:
			* no progress (it checkpoints every 100 ms) */

static struct cluster cl;
static struct census *census;
static pid_t stress = -1; /* stress-ng, leader of its own process group */

static const char *stress_ng(void)
{
	static const char *const paths[] = { "/usr/bin/stress-ng", "/usr/local/bin/stress-ng",
					     "/bin/stress-ng", NULL };
	for (int i = 0; paths[i]; i++)
		if (access(paths[i], X_OK) == 0)
			return paths[i];
	return NULL;
}

static void stress_stop(void)
{
	if (stress <= 0)
		return;
	kill(-stress, SIGKILL); /* its workers too: the group is its own */
	waitpid(stress, NULL, 0);
	stress = -1;
}

static int teardown(void **state)
{
	stress_stop();
	census_free(census);
	census = NULL;
	cl_teardown(state);
	cl_default_timeouts = 0;
	return 0;
}

/* the phases of the run: the cluster starting its programs, under
 * stress-ng, and a little after it */
enum { CALM, LOADED, AFTER, PHASES };
static const char *const phase_name[PHASES] = { "before", "under load", "after" };
static int phase;

/* what a manager showed over the run */
struct view {
	int polls, failed_polls;
	int node_drops[PHASES];      /* alive -> not alive, over all nodes */
	uint64_t max_seen_ago_ms[PHASES]; /* longest silence of a node it saw */
	uint64_t max_poll_ms;        /* slowest MSTATUS */
	bool alive[AGENTS];
	uint64_t first_inc[PROGRAMS], last_inc[PROGRAMS];
	uint8_t last_state[PROGRAMS];
	uint64_t advanced_ms[PROGRAMS]; /* when its durable checkpoint last moved */
	uint64_t max_stall_ms[PROGRAMS];/* longest time it did not */
	uint64_t first_durable[PROGRAMS], last_durable[PROGRAMS];
};

static void poll_manager(const struct tu_daemon *mgr, const char *const *ids, struct view *v)
{
	static struct proto_node_entry nodes[PROTO_NODES_MAX];
	struct proto_proc_entry e[PROGRAMS];
	int count = 0;
	uint64_t t0 = tu_now_ms();
	int rc = cl_procs_at(&cl, mgr, ids, PROGRAMS, e, nodes, &count, 2000);
	uint64_t took = tu_now_ms() - t0;
	if (took > v->max_poll_ms)
		v->max_poll_ms = took;
	if (rc) {
		v->failed_polls++;
		return;
	}
	for (int a = 0; a < AGENTS; a++)
		for (int i = 0; i < count; i++) {
			if (nodes[i].node != cl_node(a))
				continue;
			bool alive = nodes[i].alive != 0;
			if (v->polls > 0 && v->alive[a] && !alive) {
				v->node_drops[phase]++;
				print_message("%s (%s): node %" PRIx64 " not alive (unheard for %"
					      PRIu64 " ms)\n",
					      mgr == &cl.manager ? "manager 1" : "manager 2",
					      phase_name[phase], nodes[i].node, nodes[i].seen_ago_ms);
			}
			v->alive[a] = alive;
			if (nodes[i].seen_ago_ms != UINT64_MAX &&
			    nodes[i].seen_ago_ms > v->max_seen_ago_ms[phase])
				v->max_seen_ago_ms[phase] = nodes[i].seen_ago_ms;
		}
	uint64_t now = tu_now_ms();
	for (int k = 0; k < PROGRAMS; k++) {
		if (v->polls == 0) {
			v->first_inc[k] = e[k].incarnation;
			v->first_durable[k] = e[k].durable;
			v->advanced_ms[k] = now;
		}
		if (e[k].durable != v->last_durable[k] || e[k].incarnation != v->last_inc[k])
			v->advanced_ms[k] = now;
		if (now - v->advanced_ms[k] > v->max_stall_ms[k])
			v->max_stall_ms[k] = now - v->advanced_ms[k];
		v->last_inc[k] = e[k].incarnation;
		v->last_state[k] = e[k].state;
		v->last_durable[k] = e[k].durable;
	}
	v->polls++;
}

/* the log lines that tell a false failure or a lapse */
enum { HB_FAILED, AGENT_LAPSED, PROGRAM_LAPSED, LINES };
static const char *const line_needle[LINES] = {
	"failed: no heartbeat",               /* managers */
	"lease lapsed: no manager answered",  /* agents */
	"librtcms: the agent's lease lapsed", /* programs (in their agent's log) */
};

static void count_lines(int out[LINES])
{
	out[HB_FAILED] = tu_log_count(&cl.manager, line_needle[HB_FAILED]) +
			 tu_log_count(&cl.manager2, line_needle[HB_FAILED]);
	out[AGENT_LAPSED] = out[PROGRAM_LAPSED] = 0;
	for (int a = 0; a < AGENTS; a++) {
		out[AGENT_LAPSED] += tu_log_count(&cl.agents[a], line_needle[AGENT_LAPSED]);
		out[PROGRAM_LAPSED] += tu_log_count(&cl.agents[a], line_needle[PROGRAM_LAPSED]);
	}
}

static void poll_both(const char *const *ids, struct view *v1, struct view *v2)
{
	poll_manager(&cl.manager, ids, v1);
	poll_manager(&cl.manager2, ids, v2);
}

static void test_default_leases_under_load(void **state)
{
	char idbuf[PROGRAMS][48], path[700];
	const char *ids[PROGRAMS];
	struct view v1, v2;
	int lines[PHASES + 1][LINES];
	(void)state;

	const char *bin = stress_ng();
	if (!bin) {
		print_message("SKIP: stress-ng is not installed (scripts/install-deps installs "
			      "it)\n");
		skip();
	}
	phase = CALM;
	memset(&v1, 0, sizeof(v1));
	memset(&v2, 0, sizeof(v2));
	cl_default_timeouts = 1; /* the daemons' own lease and node timeout */
	assert_int_equal(cl_start(&cl, "load", NULL), 0);
	assert_int_equal(cl_second_manager(&cl, NULL), 0);
	for (int a = 0; a < AGENTS; a++)
		assert_int_equal(cl_agent_start(&cl, a, NULL), 0);
	assert_int_equal(cl_wait_log(&cl.manager2, "joins", AGENTS, 10000), 0);
	count_lines(lines[CALM]);
	char line[4096];
	assert_int_equal(cl_log_line(&cl.manager, "agent lease", line, sizeof(line)), 0);
	print_message("manager 1: %s", strstr(line, "agent lease") ? strstr(line, "agent lease")
								    : line);
	const char *counter[] = { COUNTER, "--iterations", "0", "--interval-ms", "100",
				  "--table-mib", "1", NULL };
	const char *ledger[] = { LEDGER, "--iterations", "0", "--interval-ms", "100",
				 "--mib", "1", NULL };
	for (int k = 0; k < PROGRAMS; k++) {
		snprintf(idbuf[k], sizeof(idbuf[k]), "load%d-%d", (int)getpid(), k);
		ids[k] = idbuf[k];
		assert_int_equal(cl_run(&cl, ids[k], cl_node(k % AGENTS),
					k % 2 ? ledger : counter, NULL), 0);
	}
	assert_int_equal(census_start(ids, PROGRAMS, 50, &census), 0);
	/* every program durable before the load (bounded: one fenced before
	 * its first checkpoint is lost, and counted below) */
	uint64_t until = tu_now_ms() + 20000;
	for (bool all = false; !all && tu_now_ms() < until;) {
		poll_both(ids, &v1, &v2);
		all = true;
		for (int k = 0; k < PROGRAMS; k++)
			all = all && v1.last_durable[k] >= 3;
		if (!all)
			usleep(POLL_MS * 1000);
	}
	uint64_t durable_before[PROGRAMS];
	memcpy(durable_before, v1.last_durable, sizeof(durable_before));

	/* the load: every core and the disks, LOAD_S seconds */
	phase = LOADED;
	count_lines(lines[LOADED]);
	char timeout[16];
	snprintf(timeout, sizeof(timeout), "%ds", LOAD_S);
	snprintf(path, sizeof(path), "%s/stress-ng.log", cl.dir);
	stress = fork();
	assert_true(stress >= 0);
	if (stress == 0) {
		setpgid(0, 0);
		int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
		if (fd >= 0) {
			dup2(fd, STDOUT_FILENO);
			dup2(fd, STDERR_FILENO);
			close(fd);
		}
		if (chdir(cl.dir) != 0) /* its files, if any, go with the test's */
			_exit(126);
		const char *argv[] = { bin, "--cpu", "0", "--io", "2", "--timeout", timeout,
				       "--metrics-brief", NULL };
		execv(bin, (char *const *)argv);
		_exit(127);
	}
	setpgid(stress, stress);
	uint64_t began = tu_now_ms(), end = began + (LOAD_S + 20) * 1000ull;
	int st = 0;
	bool done = false;
	while (!done && tu_now_ms() < end) {
		poll_both(ids, &v1, &v2);
		if (waitpid(stress, &st, WNOHANG) == stress) {
			stress = -1;
			done = true;
		} else {
			usleep(POLL_MS * 1000);
		}
	}
	uint64_t loaded_ms = tu_now_ms() - began;
	if (!done)
		stress_stop();
	uint64_t durable_loaded[PROGRAMS];
	memcpy(durable_loaded, v1.last_durable, sizeof(durable_loaded));
	/* a little longer without the load: a failure decided at its end shows */
	phase = AFTER;
	count_lines(lines[AFTER]);
	for (uint64_t calm = tu_now_ms() + 2000; tu_now_ms() < calm;) {
		poll_both(ids, &v1, &v2);
		usleep(POLL_MS * 1000);
	}
	count_lines(lines[PHASES]);

	int restores = 0, max_live = 0, stalled = 0;
	uint64_t max_gap = 0;
	for (int k = 0; k < PROGRAMS; k++) {
		struct census_stats cs;
		census_get(census, k, &cs);
		if (cs.max_live > max_live)
			max_live = cs.max_live;
		if (cs.max_gap_ms > max_gap)
			max_gap = cs.max_gap_ms;
		restores += v1.last_inc[k] > 1 ? (int)v1.last_inc[k] - 1 : 0; /* all began at 1 */
		if (durable_loaded[k] < durable_before[k] + 10 || v1.last_durable[k] < 3 ||
		    v1.max_stall_ms[k] > STALL_MS || v2.max_stall_ms[k] > STALL_MS)
			stalled++;
	}
	print_message("stress-ng --cpu 0 --io 2 for %" PRIu64 " ms (exit status %d%s); "
		      "default timeouts (lease 200 ms, node timeout 300 ms):\n", loaded_ms,
		      done && WIFEXITED(st) ? WEXITSTATUS(st) : -1, done ? "" : ", killed");
	print_message("  %-46s %10s %10s %10s\n", "", phase_name[CALM], phase_name[LOADED],
		      phase_name[AFTER]);
	print_message("  %-46s %10d %10d %10d\n", "manager 1: nodes not alive (polled)",
		      v1.node_drops[CALM], v1.node_drops[LOADED], v1.node_drops[AFTER]);
	print_message("  %-46s %10d %10d %10d\n", "manager 2: nodes not alive (polled)",
		      v2.node_drops[CALM], v2.node_drops[LOADED], v2.node_drops[AFTER]);
	print_message("  %-46s %10" PRIu64 " %10" PRIu64 " %10" PRIu64 "\n",
		      "manager 1: longest node silence polled, ms", v1.max_seen_ago_ms[CALM],
		      v1.max_seen_ago_ms[LOADED], v1.max_seen_ago_ms[AFTER]);
	print_message("  %-46s %10" PRIu64 " %10" PRIu64 " %10" PRIu64 "\n",
		      "manager 2: longest node silence polled, ms", v2.max_seen_ago_ms[CALM],
		      v2.max_seen_ago_ms[LOADED], v2.max_seen_ago_ms[AFTER]);
	static const char *const line_label[LINES] = {
		"\"failed: no heartbeat\" lines (managers)",
		"\"lease lapsed\" lines (agents)",
		"lease watchdog lines (programs)",
	};
	int total[LINES] = { 0 };
	for (int l = 0; l < LINES; l++) {
		int d[PHASES];
		for (int p = 0; p < PHASES; p++)
			d[p] = lines[p + 1][l] - lines[p][l];
		total[l] = lines[PHASES][l] - lines[CALM][l];
		print_message("  %-46s %10d %10d %10d\n", line_label[l], d[CALM], d[LOADED],
			      d[AFTER]);
	}
	print_message("  restores (incarnation changes): %d; most live instances of a program: "
		      "%d; MSTATUS polls %d/%d (failed %d/%d, slowest %" PRIu64 "/%" PRIu64
		      " ms); longest gap between /proc samples %" PRIu64 " ms\n", restores,
		      max_live, v1.polls, v2.polls, v1.failed_polls, v2.failed_polls,
		      v1.max_poll_ms, v2.max_poll_ms, max_gap);
	struct census_count now[PROGRAMS];
	if (census_scan(ids, PROGRAMS, now) != 0)
		memset(now, 0, sizeof(now));
	for (int k = 0; k < PROGRAMS; k++)
		print_message("  %s: durable %" PRIu64 " before the load, %" PRIu64 " at its end, %"
			      PRIu64 " at the end; still for %" PRIu64 "/%" PRIu64 " ms at most "
			      "(managers 1/2); incarnation %" PRIu64 ", state %d at manager 1; "
			      "%d live instance(s) now\n", ids[k], durable_before[k],
			      durable_loaded[k], v1.last_durable[k], v1.max_stall_ms[k],
			      v2.max_stall_ms[k], v1.last_inc[k], v1.last_state[k], now[k].live);

	int drops = 0, nowhere = 0;
	for (int p = 0; p < PHASES; p++)
		drops += v1.node_drops[p] + v2.node_drops[p];
	for (int k = 0; k < PROGRAMS; k++)
		nowhere += now[k].live == 0;
	char why[512] = "";
	size_t len = 0;
#define VIOLATION(cond, ...)                                                          \
	do {                                                                          \
		if ((cond) && len < sizeof(why))                                      \
			len += (size_t)snprintf(why + len, sizeof(why) - len, __VA_ARGS__); \
	} while (0)
	VIOLATION(total[HB_FAILED] || drops, " %d false node failure(s) (%d polled);",
		  total[HB_FAILED], drops);
	VIOLATION(total[AGENT_LAPSED] || total[PROGRAM_LAPSED],
		  " %d lease lapse(s) at agents, %d watchdog kill(s) in programs;",
		  total[AGENT_LAPSED], total[PROGRAM_LAPSED]);
	VIOLATION(restores, " %d restore(s) of programs that never failed;", restores);
	VIOLATION(max_live > 1, " a program ran %d times at once;", max_live);
	VIOLATION(nowhere, " %d program(s) run nowhere at the end;", nowhere);
	VIOLATION(stalled, " %d program(s) made no progress (durable checkpoint still for more "
		  "than %d s, or fewer than 10 new ones under the load);", stalled,
		  STALL_MS / 1000);
#undef VIOLATION
	if (len)
		fail_msg("with the default timeouts under load:%s", why);
	census_free(census);
	census = NULL;
	cl_stop(&cl);
	cl_default_timeouts = 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_default_leases_under_load, teardown),
	};
	signal(SIGPIPE, SIG_IGN);
	proto_init();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
