/*
 * test_sighup.c - SIGHUP re-reads the config file of rtcms-store,
 * rtcms-manager and rtcms-agent: each stays up and serves, the agent's
 * program runs on (same pid), a new log level takes effect (debug lines
 * appear), the manager's placement policy changes, a broken file changes
 * nothing, and a setting that needs a restart is named.
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

static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	assert_int_equal(fclose(f), 0);
}

/* One request on a fresh connection to the daemon at addr: it serves. */
static int ask(struct cluster *cl, const char *addr, uint8_t type, uint8_t expect)
{
	static struct proto_node_entry nodes[PROTO_NODES_MAX];
	static struct proto_proc_entry procs[PROTO_PROCS_MAX];
	union proto_msg q, r;
	memset(&q, 0, sizeof(q));
	memset(&r, 0, sizeof(r));
	r.mstatus.nodes = nodes; /* MSTATUS_REPLY is decoded into these */
	r.mstatus.procs = procs;
	return cl_call_at(cl, addr, type, &q, expect, &r, 10000, NULL, 0);
}

/* Every daemon is alive and answers a real request; the program runs as
 * the same process. */
static void check_all_serve(struct cluster *cl, int pid)
{
	assert_true(tu_daemon_alive(&cl->store));
	assert_true(tu_daemon_alive(&cl->manager));
	assert_true(tu_daemon_alive(&cl->agents[0]));
	assert_int_equal(ask(cl, cl->store.addr, PROTO_STATUS, PROTO_STATUS_REPLY), 0);
	assert_int_equal(ask(cl, cl->manager.addr, PROTO_MSTATUS, PROTO_MSTATUS_REPLY), 0);
	assert_int_equal(ask(cl, cl->agents[0].addr, PROTO_INFO, PROTO_INFO_REPLY), 0);
	assert_int_equal(kill(pid, 0), 0);
	int parents[4];
	assert_int_equal(cl_instances("steady-1", parents, 4), 1);
	assert_int_equal(parents[0], cl->agents[0].pid);
}

static void hup_all(struct cluster *cl)
{
	assert_int_equal(kill(cl->store.pid, SIGHUP), 0);
	assert_int_equal(kill(cl->manager.pid, SIGHUP), 0);
	assert_int_equal(kill(cl->agents[0].pid, SIGHUP), 0);
}

static void test_sighup_reloads(void **state)
{
	static struct cluster cl; /* static: cl_teardown may stop it after a failed assertion */
	static char store_ini[600], manager_ini[600], agent_ini[600], dir[512];
	struct proto_proc_entry e;
	(void)state;

	/* the config files live next to the cluster's own directory */
	char *tmp = tu_tmpdir("sighup-ini");
	snprintf(dir, sizeof(dir), "%s", tmp);
	free(tmp);
	snprintf(store_ini, sizeof(store_ini), "%s/store.ini", dir);
	snprintf(manager_ini, sizeof(manager_ini), "%s/manager.ini", dir);
	snprintf(agent_ini, sizeof(agent_ini), "%s/agent.ini", dir);
	write_file(store_ini, "[log]\nlevel = info\n");
	write_file(manager_ini, "[log]\nlevel = info\n");
	write_file(agent_ini, "[log]\nlevel = info\n");
	static const char *store_extra[] = { "--config", store_ini, NULL };
	const char *manager_extra[] = { "--config", manager_ini, NULL };
	const char *agent_extra[] = { "--config", agent_ini, NULL };
	cl_store_extra = store_extra;
	int started = cl_start(&cl, "sighup", manager_extra);
	cl_store_extra = NULL;
	assert_int_equal(started, 0);
	assert_int_equal(cl_agent_start(&cl, 0, agent_extra), 0);
	const char *counter[] = { COUNTER, "--iterations", "0", "--interval-ms", "50", NULL };
	assert_int_equal(cl_run(&cl, "steady-1", cl_node(0), counter, NULL), 0);
	int pid = cl_program_pid(&cl, 0, "steady-1");
	assert_true(pid > 0);
	assert_int_equal(cl_wait_durable(&cl, "steady-1", 1, 2, 20000), 0);
	assert_int_equal(tu_log_count(&cl.manager, "] debug "), 0);
	assert_int_equal(tu_log_count(&cl.agents[0], "] debug "), 0);
	assert_int_equal(tu_log_count(&cl.store, "] debug "), 0);

	/* the same file, three times: nothing changes, nobody stops */
	for (int i = 1; i <= 3; i++) {
		hup_all(&cl);
		assert_int_equal(cl_wait_log(&cl.store, "SIGHUP: log level info;", i, 10000), 0);
		assert_int_equal(cl_wait_log(&cl.manager, "SIGHUP: log level info; placement "
					     "weighted (ram 0.5, cpu 0.3, quota 0.2), reserve 64 MiB",
					     i, 10000), 0);
		assert_int_equal(cl_wait_log(&cl.agents[0], "SIGHUP: log level info; the "
					     "programs run on", i, 10000), 0);
		check_all_serve(&cl, pid);
	}
	assert_int_equal(tu_log_count(&cl.manager, "changed in the file"), 0);

	/* debug, and for the manager the thesis' placement and a setting that
	 * waits for a restart */
	write_file(store_ini, "[log]\nlevel = debug\n");
	write_file(manager_ini, "[manager]\nchain_max = 4\n[placement]\npolicy = thesis\n"
		   "ram_reserve = 32M\n[log]\nlevel = debug\n");
	write_file(agent_ini, "[agent]\nquota = 3\n[log]\nlevel = debug\n");
	hup_all(&cl);
	assert_int_equal(cl_wait_log(&cl.store, "SIGHUP: log level info -> debug", 1, 10000), 0);
	assert_int_equal(cl_wait_log(&cl.manager, "SIGHUP: log level info -> debug; placement "
				     "weighted (ram 0.5, cpu 0.3, quota 0.2), reserve 64 MiB -> "
				     "thesis (free RAM x free quota), reserve 32 MiB", 1, 10000), 0);
	assert_int_equal(cl_wait_log(&cl.manager, "take effect at the next start: [manager] "
				     "chain_max", 1, 10000), 0);
	assert_int_equal(cl_wait_log(&cl.agents[0], "SIGHUP: log level info -> debug", 1,
				     10000), 0);
	assert_int_equal(cl_wait_log(&cl.agents[0], "take effect at the next start: [agent] "
				     "quota", 1, 10000), 0);
	/* debug lines now: the agent's captures, the manager's notifications,
	 * the store's connections (a request makes one) */
	check_all_serve(&cl, pid);
	assert_int_equal(cl_wait_log(&cl.agents[0], "] debug ", 1, 10000), 0);
	assert_int_equal(cl_wait_log(&cl.manager, "] debug ", 1, 10000), 0);
	assert_int_equal(cl_wait_log(&cl.store, "] debug [peer", 1, 10000), 0);

	/* a broken file: logged, the settings stay (still debug) */
	write_file(manager_ini, "[log]\nlevel = loud\n");
	write_file(agent_ini, "[agent]\nno_such_setting = 1\n");
	write_file(store_ini, "[log]\nlevel = loud\n");
	hup_all(&cl);
	/* named where it is: file, line, field */
	assert_int_equal(cl_wait_log(&cl.manager, "manager.ini:2: [log] level: \"loud\": "
				     "expected error, warn, info or debug: the settings stay", 1,
				     10000), 0);
	assert_int_equal(cl_wait_log(&cl.agents[0], "no_such_setting", 1, 10000), 0);
	assert_int_equal(cl_wait_log(&cl.store, "the settings stay as they were", 1, 10000), 0);
	int before = tu_log_count(&cl.store, "] debug [peer");
	check_all_serve(&cl, pid);
	assert_int_equal(cl_wait_log(&cl.store, "] debug [peer", before + 1, 10000), 0);

	/* back to info: the debug lines stop */
	write_file(store_ini, "[log]\nlevel = info\n");
	write_file(manager_ini, "[log]\nlevel = info\n");
	write_file(agent_ini, "[log]\nlevel = info\n");
	hup_all(&cl);
	assert_int_equal(cl_wait_log(&cl.store, "SIGHUP: log level debug -> info", 1, 10000), 0);
	assert_int_equal(cl_wait_log(&cl.manager, "SIGHUP: log level debug -> info", 1, 10000), 0);
	assert_int_equal(cl_wait_log(&cl.agents[0], "SIGHUP: log level debug -> info", 1,
				     10000), 0);
	usleep(200000);
	int dbg_manager = tu_log_count(&cl.manager, "] debug ");
	int dbg_agent = tu_log_count(&cl.agents[0], "] debug ");
	check_all_serve(&cl, pid);
	usleep(500000);
	assert_int_equal(tu_log_count(&cl.manager, "] debug "), dbg_manager);
	assert_int_equal(tu_log_count(&cl.agents[0], "] debug "), dbg_agent);

	/* the program went on checkpointing all along, one instance */
	assert_int_equal(cl_proc(&cl, "steady-1", &e), 0);
	assert_int_equal(e.state, PROTO_PS_RUNNING);
	assert_int_equal(e.incarnation, 1);
	assert_int_equal(cl_wait_durable(&cl, "steady-1", 1, e.durable + 3, 20000), 0);
	assert_int_equal(cl_program_pid(&cl, 0, "steady-1"), pid);
	assert_int_equal(tu_log_count(&cl.agents[0], "EXITED"), 0);
	assert_int_equal(tu_log_count(&cl.manager, "signal 1"), 0);
	cl_stop(&cl);
	tu_rmrf(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_sighup_reloads, cl_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
