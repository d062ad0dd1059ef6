/*
 * test_e2e.c - the thesis' scenario end to end with the real daemons: a
 * store (two mirrors), a manager, agents as nodes on 127.0.0.2/.3/.4 and
 * protected programs that checkpoint, migrate and continue on another
 * node with their state verified.
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

#define COUNTER RTCMS_BIN_DIR "/rtcms-counter"
#define LEDGER RTCMS_BIN_DIR "/rtcms-ledger"

static struct tu_daemon *agent_of(struct cluster *cl, uint64_t node)
{
	for (int i = 0; i < cl->agent_count; i++)
		if (cl_node(i) == node)
			return &cl->agents[i];
	fail_msg("no agent for node %" PRIx64, node);
	return NULL;
}

/* The ledger printed "checkpoint S hash H" before checkpoint S on the old
 * node; the restored instance must print the same hash for S. */
static void check_ledger_restored(struct cluster *cl, const struct proto_migrate_ok *ok)
{
	char needle[96], before[4096], after[4096];
	snprintf(needle, sizeof(needle), "restored checkpoint %" PRIu64 " hash", ok->sequence);
	assert_int_equal(cl_wait_log(agent_of(cl, ok->to), needle, 1, 10000), 0);
	assert_int_equal(cl_log_line(agent_of(cl, ok->to), needle, after, sizeof(after)), 0);
	assert_non_null(strstr(after, "total intact"));
	snprintf(needle, sizeof(needle), ", checkpoint %" PRIu64 " hash", ok->sequence);
	assert_int_equal(cl_log_line(agent_of(cl, ok->from), needle, before, sizeof(before)), 0);
	const char *h1 = strstr(before, " hash ") + 6, *h2 = strstr(after, " hash ") + 6;
	if (strncmp(h1, h2, 16) != 0)
		fail_msg("state hash differs: before %.16s, restored %.16s", h1, h2);
}

static void check_counter_restored(struct cluster *cl, const struct proto_migrate_ok *ok,
				   int nth)
{
	char needle[96];
	snprintf(needle, sizeof(needle), "counter: restored at counter %" PRIu64 " with",
		 ok->sequence);
	if (cl_wait_log(agent_of(cl, ok->to), needle, nth, 10000) != 0)
		fail_msg("no \"%s\" in %s", needle, agent_of(cl, ok->to)->log);
}

static void test_demo_scenario(void **state)
{
	static struct cluster cl; /* static: cl_teardown may stop it after a failed assertion */
	struct proto_migrate_ok ok1, ok2;
	struct proto_proc_entry e;
	char why[PROTO_TEXT_MAX + 1];
	(void)state;

	assert_int_equal(cl_start(&cl, "e2e-demo", NULL), 0);
	assert_int_equal(cl_agent_start(&cl, 0, NULL), 0);
	assert_int_equal(cl_agent_start(&cl, 1, NULL), 0);
	const char *counter[] = { COUNTER, "--iterations", "0", "--interval-ms", "50",
				  "--table-mib", "4", NULL };
	const char *ledger[] = { LEDGER, "--iterations", "0", "--interval-ms", "50",
				 "--mib", "4", NULL };
	assert_int_equal(cl_run(&cl, "counter-1", cl_node(0), counter, NULL), 0);
	assert_int_equal(cl_run(&cl, "ledger-1", cl_node(1), ledger, NULL), 0);
	assert_int_equal(cl_wait_durable(&cl, "counter-1", 1, 3, 20000), 0);
	assert_int_equal(cl_wait_durable(&cl, "ledger-1", 1, 3, 20000), 0);

	/* each goes to the other node: the source is not a candidate */
	if (cl_migrate(&cl, "counter-1", 0, 0, &ok1, why, sizeof(why)))
		fail_msg("migrate counter-1: %s", why);
	assert_int_equal(ok1.from, cl_node(0));
	assert_int_equal(ok1.to, cl_node(1));
	assert_int_equal(ok1.incarnation, 2);
	check_counter_restored(&cl, &ok1, 1);
	if (cl_migrate(&cl, "ledger-1", 0, 0, &ok2, why, sizeof(why)))
		fail_msg("migrate ledger-1: %s", why);
	assert_int_equal(ok2.to, cl_node(0));
	check_ledger_restored(&cl, &ok2);

	/* both go on: new checkpoints of the new incarnation become durable */
	assert_int_equal(cl_wait_durable(&cl, "counter-1", 2, ok1.sequence + 3, 20000), 0);
	assert_int_equal(cl_wait_durable(&cl, "ledger-1", 2, ok2.sequence + 3, 20000), 0);
	assert_int_equal(cl_proc(&cl, "counter-1", &e), 0);
	assert_int_equal(e.node, cl_node(1));
	assert_int_equal(e.state, PROTO_PS_RUNNING);
	/* the old instances were stopped: one instance each, on its new node */
	assert_true(cl_program_pid(&cl, 1, "counter-1") > 0);
	assert_true(cl_program_pid(&cl, 0, "ledger-1") > 0);
	cl_stop(&cl);
}

/* 64 MiB of state moves with every byte verified (the ledger hashes its
 * whole state before the checkpoint and after the restore). */
static void test_migrate_64mib(void **state)
{
	static struct cluster cl; /* static: cl_teardown may stop it after a failed assertion */
	struct proto_migrate_ok ok;
	char why[PROTO_TEXT_MAX + 1];
	(void)state;

	assert_int_equal(cl_start(&cl, "e2e-64", NULL), 0);
	const char *extra[] = { "--area-capacity", "80M", NULL };
	assert_int_equal(cl_agent_start(&cl, 0, extra), 0);
	assert_int_equal(cl_agent_start(&cl, 1, extra), 0);
	const char *ledger[] = { LEDGER, "--iterations", "0", "--interval-ms", "200",
				 "--mib", "64", "--transfers", "100000", NULL };
	assert_int_equal(cl_run(&cl, "big", cl_node(0), ledger, NULL), 0);
	assert_int_equal(cl_wait_durable(&cl, "big", 1, 2, 60000), 0);
	if (cl_migrate(&cl, "big", cl_node(1), 0, &ok, why, sizeof(why)))
		fail_msg("migrate: %s", why);
	check_ledger_restored(&cl, &ok);
	assert_int_equal(cl_wait_durable(&cl, "big", 2, ok.sequence + 1, 60000), 0);
	cl_stop(&cl);
}

/* 20 moves back and forth; every restore continues from the final
 * checkpoint with the table intact; incarnations rise by one each. */
static void test_twenty_migrations(void **state)
{
	static struct cluster cl; /* static: cl_teardown may stop it after a failed assertion */
	char why[PROTO_TEXT_MAX + 1];
	(void)state;

	assert_int_equal(cl_start(&cl, "e2e-20", NULL), 0);
	assert_int_equal(cl_agent_start(&cl, 0, NULL), 0);
	assert_int_equal(cl_agent_start(&cl, 1, NULL), 0);
	const char *counter[] = { COUNTER, "--iterations", "0", "--interval-ms", "20",
				  "--table-mib", "2", NULL };
	assert_int_equal(cl_run(&cl, "pingpong", cl_node(0), counter, NULL), 0);
	assert_int_equal(cl_wait_durable(&cl, "pingpong", 1, 2, 20000), 0);
	uint64_t last_seq = 0;
	for (int i = 0; i < 20; i++) {
		struct proto_migrate_ok ok;
		uint64_t to = cl_node((i + 1) % 2);
		if (cl_migrate(&cl, "pingpong", to, 0, &ok, why, sizeof(why)))
			fail_msg("migration %d: %s", i + 1, why);
		assert_int_equal(ok.to, to);
		assert_int_equal(ok.incarnation, (uint64_t)i + 2);
		assert_true(ok.sequence > last_seq);
		last_seq = ok.sequence;
		check_counter_restored(&cl, &ok, 1);
		/* let it checkpoint under the new incarnation before the next move */
		assert_int_equal(cl_wait_durable(&cl, "pingpong", ok.incarnation,
						 ok.sequence + 1, 20000), 0);
	}
	/* exactly one instance runs, the 21st incarnation, back on node 0 */
	struct proto_proc_entry e;
	assert_int_equal(cl_proc(&cl, "pingpong", &e), 0);
	assert_int_equal(e.incarnation, 21);
	assert_int_equal(e.node, cl_node(0));
	assert_true(cl_program_pid(&cl, 0, "pingpong") > 0);
	cl_stop(&cl);
}

/* The program itself asks to move (rtcms_request_migration at its first
 * checkpoint, usually before anything of it is durable: the manager
 * stores the final checkpoint first): its agent asks the manager, which
 * moves it to the other node. */
static void test_program_asks_to_migrate(void **state)
{
	static struct cluster cl; /* static: cl_teardown may stop it after a failed assertion */
	struct proto_proc_entry e;
	char line[4096];
	(void)state;

	assert_int_equal(cl_start(&cl, "e2e-ask", NULL), 0);
	assert_int_equal(cl_agent_start(&cl, 0, NULL), 0);
	assert_int_equal(cl_agent_start(&cl, 1, NULL), 0);
	const char *counter[] = { COUNTER, "--iterations", "0", "--interval-ms", "50",
				  "--migrate-at", "1", NULL };
	assert_int_equal(cl_run(&cl, "mover", cl_node(0), counter, NULL), 0);
	assert_int_equal(cl_wait_log(&cl.manager, "MIGRATE mover done", 1, 30000), 0);
	assert_int_equal(tu_log_count(&cl.manager, "[agent-1 -> manager] MIGRATE mover"), 1);
	assert_int_equal(cl_log_line(&cl.manager, "MIGRATE mover done", line, sizeof(line)), 0);
	uint64_t seq = strtoull(strstr(line, "from checkpoint ") + 16, NULL, 10);
	assert_true(seq >= 1);
	struct proto_migrate_ok ok = { .from = cl_node(0), .to = cl_node(1), .sequence = seq };
	check_counter_restored(&cl, &ok, 1);
	assert_int_equal(cl_wait_durable(&cl, "mover", 2, seq + 2, 20000), 0);
	assert_int_equal(cl_proc(&cl, "mover", &e), 0);
	assert_int_equal(e.node, cl_node(1));
	/* the restored instance does not ask again: it continues past 1 */
	assert_int_equal(e.incarnation, 2);
	assert_true(cl_program_pid(&cl, 1, "mover") > 0);
	cl_stop(&cl);
}

static char *write_ini(struct cluster *cl, const char *name, const char *text)
{
	char *path = malloc(1024);
	snprintf(path, 1024, "%s/%s", cl->dir, name);
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
	return path;
}

/* Placement picks the node with the most headroom: agent 2 reports
 * little free RAM and a busy CPU, agent 3 plenty (test hooks). */
static void test_placement_headroom(void **state)
{
	static struct cluster cl; /* static: cl_teardown may stop it after a failed assertion */
	struct proto_migrate_ok ok;
	char why[PROTO_TEXT_MAX + 1];
	(void)state;

	assert_int_equal(cl_start(&cl, "e2e-place", NULL), 0);
	char *tight = write_ini(&cl, "tight.ini", "[test]\nreport_mem_available = 200M\n"
				"report_cpu_load = 901\n");
	char *roomy = write_ini(&cl, "roomy.ini", "[test]\nreport_mem_available = 16G\n"
				"report_cpu_load = 51\n");
	const char *a1[] = { "--config", tight, NULL };
	const char *a2[] = { "--config", roomy, NULL };
	assert_int_equal(cl_agent_start(&cl, 0, NULL), 0);
	assert_int_equal(cl_agent_start(&cl, 1, a1), 0);
	assert_int_equal(cl_agent_start(&cl, 2, a2), 0);
	const char *counter[] = { COUNTER, "--iterations", "0", "--interval-ms", "50", NULL };
	assert_int_equal(cl_run(&cl, "placed", cl_node(0), counter, NULL), 0);
	assert_int_equal(cl_wait_durable(&cl, "placed", 1, 2, 20000), 0);
	if (cl_migrate(&cl, "placed", 0, 0, &ok, why, sizeof(why)))
		fail_msg("migrate: %s", why);
	assert_int_equal(ok.to, cl_node(2));
	check_counter_restored(&cl, &ok, 1);
	/* and back to the source only when asked for */
	if (cl_migrate(&cl, "placed", cl_node(2), 1, &ok, why, sizeof(why)))
		fail_msg("migrate to the same node: %s", why);
	assert_int_equal(ok.to, cl_node(2));
	assert_int_equal(ok.from, cl_node(2));
	check_counter_restored(&cl, &ok, 1);
	free(tight);
	free(roomy);
	cl_stop(&cl);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_demo_scenario, cl_teardown),
		cmocka_unit_test_teardown(test_migrate_64mib, cl_teardown),
		cmocka_unit_test_teardown(test_twenty_migrations, cl_teardown),
		cmocka_unit_test_teardown(test_program_asks_to_migrate, cl_teardown),
		cmocka_unit_test_teardown(test_placement_headroom, cl_teardown),
	};
	signal(SIGPIPE, SIG_IGN);
	proto_init();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
