/*
 * test_cordon.c - cordon, drain and forget with the real daemons and
 * rtcmsctl: `drain` cordons a node at every manager given, so neither
 * places a new program there (RUN, migration) until `uncordon`; `forget`
 * removes a dead node and a program that runs nowhere (its checkpoints
 * too), and refuses an alive node and a running program.
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
#include "proto/spec.h"
#include "rtcms_error.h"

#define COUNTER RTCMS_BIN_DIR "/rtcms-counter"
#define CTL RTCMS_BIN_DIR "/rtcmsctl"

static const char *counter[] = { COUNTER, "--iterations", "0", "--interval-ms", "100", NULL };

/* RUN at the manager at addr (node 0: placement chooses); *ok gets RUN_OK. */
static int run_at(struct cluster *cl, const char *addr, const char *id, uint64_t node,
		  struct proto_run_ok *ok, char *why, size_t whylen)
{
	struct proto_spec sp;
	static uint8_t spec[PROTO_SPEC_MAX];
	union proto_msg q, r;

	memset(&sp, 0, sizeof(sp));
	for (; counter[sp.argc]; sp.argc++)
		sp.argv[sp.argc] = counter[sp.argc];
	sp.cwd = cl->dir;
	int n = proto_spec_encode(&sp, spec, sizeof(spec));
	assert_true(n > 0);
	memset(&q, 0, sizeof(q));
	snprintf(q.run.process, sizeof(q.run.process), "%s", id);
	q.run.node = node;
	q.run.spec = spec;
	q.run.spec_len = (uint32_t)n;
	int rc = cl_call_at(cl, addr, PROTO_RUN, &q, PROTO_RUN_OK, &r, 20000, why, whylen);
	if (rc == 0 && ok)
		*ok = r.run_ok;
	return rc;
}

/* The manager at addr's entry for node (its cordoned flag); 0 or -1 if it
 * lists no such node. */
static int node_at(struct cluster *cl, const char *addr, uint64_t node,
		   struct proto_node_entry *out)
{
	static struct proto_node_entry nodes[PROTO_NODES_MAX];
	static struct proto_proc_entry procs[PROTO_PROCS_MAX];
	union proto_msg q, r;
	memset(&q, 0, sizeof(q));
	r.mstatus.nodes = nodes;
	r.mstatus.procs = procs;
	if (cl_call_at(cl, addr, PROTO_MSTATUS, &q, PROTO_MSTATUS_REPLY, &r, 10000, NULL, 0) != 0)
		return -1;
	for (int i = 0; i < r.mstatus.node_count; i++)
		if (nodes[i].node == node) {
			*out = nodes[i];
			return 0;
		}
	return -1;
}

/* Run rtcmsctl with args (a shell fragment); its output (stdout and
 * stderr) into out. Returns its exit status. */
static int ctl(struct cluster *cl, char *out, size_t len, const char *fmt, ...)
{
	char args[1024], cmd[2048];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(args, sizeof(args), fmt, ap);
	va_end(ap);
	snprintf(cmd, sizeof(cmd), "RTCMS_KEY=%s %s %s 2>&1; echo \"exit=$?\"",
		 cl->key_file, CTL, args);
	FILE *p = popen(cmd, "r");
	assert_non_null(p);
	size_t n = fread(out, 1, len - 1, p);
	out[n] = '\0';
	pclose(p);
	const char *e = strstr(out, "exit=");
	assert_non_null(e);
	return atoi(e + 5);
}

/* Wait until id's checkpoint seq (or newer) of incarnation inc is durable,
 * as either manager reports it (with two, one of them pulls it). */
static int wait_durable_any(struct cluster *cl, const char *id, uint64_t inc, uint64_t seq)
{
	uint64_t end = tu_now_ms() + 20000;
	while (tu_now_ms() < end) {
		struct proto_proc_entry e;
		if (cl_proc_at(cl, &cl->manager, id, &e) == 0 && e.incarnation == inc &&
		    e.durable >= seq)
			return 0;
		if (cl_proc_at(cl, &cl->manager2, id, &e) == 0 && e.incarnation == inc &&
		    e.durable >= seq)
			return 0;
		usleep(20000);
	}
	return -1;
}

/* Wait until both managers know node i (cl_agent_start waited for the
 * first): manager-2's node table lists agents 0..i alive. */
static void wait_registered_twice(struct cluster *cl, int i)
{
	assert_int_equal(cl_wait_nodes(cl, &cl->manager2, i + 1, 10000), 0);
}

/* drain cordons at both managers: placement skips the node for RUN (both
 * managers) and a migration to it is refused, until uncordon */
static void test_drain_cordons(void **state)
{
	static struct cluster cl; /* static: cl_teardown may stop it after a failed assertion */
	struct proto_run_ok ok;
	struct proto_node_entry ne;
	struct proto_proc_entry e;
	char out[8192], why[PROTO_TEXT_MAX + 1];
	union proto_msg q, r;
	(void)state;

	assert_int_equal(cl_start(&cl, "cordon", NULL), 0);
	assert_int_equal(cl_second_manager(&cl, NULL), 0);
	/* node 2 has more free quota: placement prefers it while it may */
	const char *small[] = { "--quota", "5", NULL };
	assert_int_equal(cl_agent_start(&cl, 0, NULL), 0);
	assert_int_equal(cl_agent_start(&cl, 1, small), 0);
	wait_registered_twice(&cl, 0);
	wait_registered_twice(&cl, 1);

	/* (named: on a loaded machine the CPU figures of two agents on one
	 * host differ by chance and may outweigh the quota) */
	if (run_at(&cl, cl.manager.addr, "before-1", cl_node(0), &ok, why, sizeof(why)))
		fail_msg("run before-1: %s", why);
	assert_int_equal(ok.node, cl_node(0));
	if (run_at(&cl, cl.manager.addr, "drained-1", cl_node(0), &ok, why, sizeof(why)))
		fail_msg("run drained-1: %s", why);
	assert_int_equal(wait_durable_any(&cl, "before-1", 1, 2), 0);
	assert_int_equal(wait_durable_any(&cl, "drained-1", 1, 2), 0);

	/* drain node 2 through rtcmsctl, naming both managers */
	int st = ctl(&cl, out, sizeof(out), "--manager %s --manager %s drain %" PRIx64,
		     cl.manager.addr, cl.manager2.addr, cl_node(0));
	if (st != 0 || !strstr(out, "drained: 2 moved, 0 failed"))
		fail_msg("drain: %s", out);
	assert_int_equal(cl_proc(&cl, "before-1", &e), 0);
	assert_int_equal(e.node, cl_node(1));
	assert_int_equal(cl_proc(&cl, "drained-1", &e), 0);
	assert_int_equal(e.node, cl_node(1));

	/* both managers know: node 2 cordoned, node 3 not */
	assert_int_equal(node_at(&cl, cl.manager.addr, cl_node(0), &ne), 0);
	assert_int_equal(ne.cordoned, 1);
	assert_int_equal(ne.alive, 1);
	assert_int_equal(node_at(&cl, cl.manager2.addr, cl_node(0), &ne), 0);
	assert_int_equal(ne.cordoned, 1);
	assert_int_equal(node_at(&cl, cl.manager.addr, cl_node(1), &ne), 0);
	assert_int_equal(ne.cordoned, 0);
	st = ctl(&cl, out, sizeof(out), "--manager %s --json status", cl.manager.addr);
	assert_int_equal(st, 0);
	assert_non_null(strstr(out, "\"alive\":true,\"cordoned\":true"));
	st = ctl(&cl, out, sizeof(out), "--manager %s status", cl.manager.addr);
	assert_int_equal(st, 0);
	assert_non_null(strstr(out, "CORDONED"));

	/* a new program goes elsewhere although node 2 has the most room, at
	 * either manager */
	if (run_at(&cl, cl.manager.addr, "after-1", 0, &ok, why, sizeof(why)))
		fail_msg("run after-1: %s", why);
	assert_int_equal(ok.node, cl_node(1));
	assert_int_equal(cl_proc(&cl, "after-1", &e), 0);
	assert_int_equal(e.node, cl_node(1));
	if (run_at(&cl, cl.manager2.addr, "after-2", 0, &ok, why, sizeof(why)))
		fail_msg("run after-2 at manager-2: %s", why);
	assert_int_equal(ok.node, cl_node(1));
	/* asked for by name: refused, and so is a migration to it */
	assert_int_equal(run_at(&cl, cl.manager.addr, "pinned-1", cl_node(0), NULL, why,
				sizeof(why)), RTCMS_ESTATE);
	assert_non_null(strstr(why, "cordoned"));
	memset(&q, 0, sizeof(q));
	strcpy(q.migrate.process, "after-1");
	q.migrate.target = cl_node(0);
	assert_int_equal(cl_call_at(&cl, cl.manager.addr, PROTO_MIGRATE, &q,
				    PROTO_MIGRATE_OK, &r, 120000, why, sizeof(why)), RTCMS_ESTATE);
	assert_non_null(strstr(why, "cordoned"));
	/* placement's own choice of a migration target skips it too: the
	 * only other node is the source */
	memset(&q, 0, sizeof(q));
	strcpy(q.migrate.process, "after-1");
	assert_int_equal(cl_call_at(&cl, cl.manager.addr, PROTO_MIGRATE, &q,
				    PROTO_MIGRATE_OK, &r, 120000, why, sizeof(why)), RTCMS_ENOSPC);
	assert_int_equal(wait_durable_any(&cl, "after-1", 1, 1), 0);

	/* uncordon at both: node 2 is the best node again */
	st = ctl(&cl, out, sizeof(out), "--manager %s,%s uncordon %" PRIx64, cl.manager.addr,
		 cl.manager2.addr, cl_node(0));
	if (st != 0 || !strstr(out, "uncordoned") || !strstr(out, "(2 of 2 managers)"))
		fail_msg("uncordon: %s", out);
	assert_int_equal(node_at(&cl, cl.manager.addr, cl_node(0), &ne), 0);
	assert_int_equal(ne.cordoned, 0);
	assert_int_equal(node_at(&cl, cl.manager2.addr, cl_node(0), &ne), 0);
	assert_int_equal(ne.cordoned, 0);
	/* placement may choose node 2 again: with node 3 cordoned it must */
	st = ctl(&cl, out, sizeof(out), "--manager %s cordon %" PRIx64, cl.manager.addr,
		 cl_node(1));
	if (st != 0)
		fail_msg("cordon node 3: %s", out);
	if (run_at(&cl, cl.manager.addr, "again-1", 0, &ok, why, sizeof(why)))
		fail_msg("run again-1: %s", why);
	assert_int_equal(ok.node, cl_node(0));
	st = ctl(&cl, out, sizeof(out), "--manager %s uncordon %" PRIx64, cl.manager.addr,
		 cl_node(1));
	if (st != 0)
		fail_msg("uncordon node 3: %s", out);
	if (run_at(&cl, cl.manager2.addr, "again-2", cl_node(0), &ok, why, sizeof(why)))
		fail_msg("run again-2 at manager-2: %s", why);
	assert_int_equal(ok.node, cl_node(0));

	/* cordon alone (no drain): nothing moves, nothing new lands there */
	st = ctl(&cl, out, sizeof(out), "--manager %s --manager %s --json cordon %" PRIx64,
		 cl.manager.addr, cl.manager2.addr, cl_node(0));
	if (st != 0 || !strstr(out, "\"cordoned\":true"))
		fail_msg("cordon: %s", out);
	assert_int_equal(cl_proc(&cl, "again-1", &e), 0);
	assert_int_equal(e.node, cl_node(0));
	assert_int_equal(e.state, PROTO_PS_RUNNING);
	assert_int_equal(run_at(&cl, cl.manager2.addr, "late-1", cl_node(0), NULL, why,
				sizeof(why)), RTCMS_ESTATE);
	/* a manager that is not there: named, exit 1, the others have it */
	st = ctl(&cl, out, sizeof(out), "--manager %s --manager 127.0.0.1:1 uncordon %" PRIx64,
		 cl.manager.addr, cl_node(0));
	if (st != 1 || !strstr(out, "cannot connect to 127.0.0.1:1") ||
	    !strstr(out, "(1 of 2 managers)"))
		fail_msg("uncordon with a missing manager: %s", out);
	assert_int_equal(node_at(&cl, cl.manager.addr, cl_node(0), &ne), 0);
	assert_int_equal(ne.cordoned, 0);
	cl_stop(&cl);
}

/* wait until the manager lists id in state (0: not at all) */
static int wait_state(struct cluster *cl, const char *id, int state, int timeout_ms)
{
	uint64_t end = tu_now_ms() + (uint64_t)timeout_ms;
	while (tu_now_ms() < end) {
		struct proto_proc_entry e;
		if (cl_proc(cl, id, &e) == 0 && e.state == state)
			return 0;
		usleep(50000);
	}
	return -1;
}

/* forget: refused for an alive node and a running program; a program of a
 * dead node that fits nowhere is removed with its checkpoints, then the
 * dead node itself */
static void test_forget(void **state)
{
	static struct cluster cl; /* static: cl_teardown may stop it after a failed assertion */
	struct proto_node_entry ne;
	struct proto_proc_entry e;
	struct proto_ckpt_meta meta;
	char out[8192], why[PROTO_TEXT_MAX + 1];
	(void)state;

	assert_int_equal(cl_start(&cl, "forget", NULL), 0);
	const char *one[] = { "--quota", "1", NULL };
	assert_int_equal(cl_agent_start(&cl, 0, NULL), 0);
	assert_int_equal(cl_agent_start(&cl, 1, one), 0);
	if (run_at(&cl, cl.manager.addr, "keeper-1", cl_node(1), NULL, why, sizeof(why)))
		fail_msg("run keeper-1: %s", why);
	if (run_at(&cl, cl.manager.addr, "orphan-1", cl_node(0), NULL, why, sizeof(why)))
		fail_msg("run orphan-1: %s", why);
	assert_int_equal(cl_wait_durable(&cl, "orphan-1", 1, 2, 20000), 0);

	/* refused: an alive node, a running program, something unknown */
	int st = ctl(&cl, out, sizeof(out), "--manager %s forget %" PRIx64, cl.manager.addr,
		     cl_node(0));
	if (st != 1 || !strstr(out, "is alive"))
		fail_msg("forget an alive node: %s", out);
	st = ctl(&cl, out, sizeof(out), "--manager %s forget orphan-1", cl.manager.addr);
	if (st != 1 || !strstr(out, "running"))
		fail_msg("forget a running program: %s", out);
	st = ctl(&cl, out, sizeof(out), "--manager %s forget nobody-1", cl.manager.addr);
	if (st != 1 || !strstr(out, "neither a node nor a process"))
		fail_msg("forget something unknown: %s", out);
	st = ctl(&cl, out, sizeof(out), "--manager %s forget --node nobody-1", cl.manager.addr);
	assert_int_equal(st, 2);

	/* node 2 dies with its program; node 3 has no room: orphan-1 waits */
	int orphan = cl_program_pid(&cl, 0, "orphan-1");
	assert_true(orphan > 0);
	kill(cl.agents[0].pid, SIGKILL);
	kill(orphan, SIGKILL);
	tu_daemon_stop(&cl.agents[0], SIGKILL); /* reap */
	assert_int_equal(wait_state(&cl, "orphan-1", PROTO_PS_WAITING, 30000), 0);

	/* a restore attempt may be under way at any moment: ask again */
	uint64_t end = tu_now_ms() + 20000;
	for (;;) {
		st = ctl(&cl, out, sizeof(out), "--manager %s --json forget orphan-1",
			 cl.manager.addr);
		if (st == 0 || !strstr(out, "being moved") || tu_now_ms() > end)
			break;
		usleep(200000);
	}
	if (st != 0 || !strstr(out, "\"forgotten\":true,\"kind\":\"process\"") ||
	    !strstr(out, "\"checkpoints_deleted\":true"))
		fail_msg("forget orphan-1: %s", out);
	/* gone from the table and from the store; nothing restores it */
	assert_int_equal(cl_proc(&cl, "orphan-1", &e), 0);
	assert_int_equal(e.state, 0);
	struct net_client *store = NULL;
	assert_int_equal(net_client_connect(cl.store.addr, &cl.key, PROTO_ROLE_CLI, "test",
					    5000, &store), 0);
	assert_int_equal(store_client_get(store, "orphan-1", 0, 0, 1, &meta, NULL, NULL, NULL),
			 RTCMS_ENOENT);
	net_client_free(store);
	/* again: unknown now */
	st = ctl(&cl, out, sizeof(out), "--manager %s forget --process orphan-1",
		 cl.manager.addr);
	if (st != 1 || !strstr(out, "unknown"))
		fail_msg("forget orphan-1 again: %s", out);

	/* the dead node (its id as printed, or shorter) */
	st = ctl(&cl, out, sizeof(out), "--manager %s forget %" PRIx64, cl.manager.addr,
		 cl_node(0));
	if (st != 0 || !strstr(out, "node 0000000000000002 forgotten"))
		fail_msg("forget node 2: %s", out);
	assert_int_equal(node_at(&cl, cl.manager.addr, cl_node(0), &ne), -1);
	assert_int_equal(node_at(&cl, cl.manager.addr, cl_node(1), &ne), 0);
	/* the rest goes on: keeper-1 still runs and checkpoints */
	assert_int_equal(cl_proc(&cl, "keeper-1", &e), 0);
	assert_int_equal(e.state, PROTO_PS_RUNNING);
	assert_int_equal(cl_wait_durable(&cl, "keeper-1", 1, e.durable + 2, 20000), 0);
	/* the forgotten id is free again: RUN gets as far as placement (node
	 * 3 is full), not "already has checkpoints" */
	assert_int_equal(run_at(&cl, cl.manager.addr, "orphan-1", 0, NULL, why, sizeof(why)),
			 RTCMS_ENOSPC);
	cl_stop(&cl);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_drain_cordons, cl_teardown),
		cmocka_unit_test_teardown(test_forget, cl_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
