/*
 * cmd_tables.c - rtcmsctl commands that change the managers' tables:
 * cordon, uncordon and forget. Each manager keeps its own tables and
 * decides alone, so these go to every manager given (--manager repeated,
 * or A,B); `drain` cordons the same way (cli_cordon_all) before it asks
 * the first manager to move the node's programs.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "rtcms_error.h"

/* What one manager answered. */
struct outcome {
	int rc;                            /* 0, or the call's error */
	int unreachable;                   /* cli_connect failed (and said so) */
	char why[PROTO_TEXT_MAX + 1];      /* its ERROR text, or the error's */
	union proto_msg reply;
};

/* Send m to every manager given; out[i] gets manager i's answer. A manager
 * that cannot be reached is reported by cli_connect (stderr). Returns how
 * many answered expect. */
static int call_each(struct cli *cli, uint8_t type, const union proto_msg *m,
		     uint8_t expect, struct outcome *out)
{
	int ok = 0;
	for (int i = 0; i < cli->manager_count; i++) {
		struct proto_header h;
		struct net_client *c = cli_connect(cli, cli->managers[i]);
		memset(&out[i], 0, sizeof(out[i]));
		if (!c) {
			out[i].rc = RTCMS_ECONN;
			out[i].unreachable = 1;
			snprintf(out[i].why, sizeof(out[i].why), "cannot connect");
			continue;
		}
		out[i].rc = net_client_call(c, type, m, expect, &h, &out[i].reply);
		if (out[i].rc) {
			const struct proto_error *e = net_client_last_error(c);
			snprintf(out[i].why, sizeof(out[i].why), "%s",
				 e && e->code == out[i].rc && e->text[0] ? e->text
				 : rtcms_strerror(out[i].rc));
		} else {
			ok++;
		}
		net_client_free(c);
	}
	return ok;
}

/* "rtcmsctl: what: manager ADDR: text (ENAME)" for a manager that refused
 * (one that could not be reached was reported already). */
static void print_failure(struct cli *cli, const char *what, int i, const struct outcome *o)
{
	if (!o->unreachable)
		cli_fail("%s: manager %s: %s (%s)", what, cli->managers[i], o->why,
			 rtcms_errname(o->rc));
}

static void print_managers_json(struct cli *cli, const struct outcome *out)
{
	printf("\"managers\":[");
	for (int i = 0; i < cli->manager_count; i++) {
		printf("%s{\"manager\":", i ? "," : "");
		cli_json_str(stdout, cli->managers[i]);
		printf(",\"ok\":%s", out[i].rc ? "false" : "true");
		if (out[i].rc) {
			printf(",\"error\":");
			cli_json_str(stdout, out[i].why);
			printf(",\"code\":\"%s\"", rtcms_errname(out[i].rc));
		}
		printf("}");
	}
	printf("]");
}

int cli_cordon_all(struct cli *cli, const char *what, uint64_t node, int *first_failed)
{
	static struct outcome out[CLI_MANAGERS_MAX];
	union proto_msg m;

	memset(&m, 0, sizeof(m));
	m.drain.node = node;
	int ok = call_each(cli, PROTO_CORDON, &m, PROTO_OK, out);
	for (int i = 0; i < cli->manager_count; i++)
		if (out[i].rc)
			print_failure(cli, what, i, &out[i]);
	if (first_failed)
		*first_failed = out[0].rc != 0;
	return ok == cli->manager_count ? CLI_OK : CLI_FAIL;
}

static int parse_node(const char *what, const char *s, uint64_t *out)
{
	if (cli_parse_node(s, out) != 0)
		return cli_usage("%s: \"%s\" is not a node id (1 to 16 hex digits, "
				 "e.g. 0000000000000002)", what, s);
	return 0;
}

/* ---- cordon / uncordon ------------------------------------------------ */

static int do_cordon(struct cli *cli, const struct cli_args *a, int on)
{
	static struct outcome out[CLI_MANAGERS_MAX];
	const char *what = on ? "cordon" : "uncordon";
	union proto_msg m;
	int rc;

	memset(&m, 0, sizeof(m));
	if ((rc = parse_node(what, a->pos[0], &m.drain.node)))
		return rc;
	int ok = call_each(cli, on ? PROTO_CORDON : PROTO_UNCORDON, &m, PROTO_OK, out);
	for (int i = 0; i < cli->manager_count; i++)
		if (out[i].rc)
			print_failure(cli, what, i, &out[i]);
	if (cli->json) {
		printf("{\"node\":\"%016" PRIx64 "\",\"cordoned\":%s,", m.drain.node,
		       on ? "true" : "false");
		print_managers_json(cli, out);
		printf("}\n");
	} else if (ok) {
		printf("node %016" PRIx64 " %s", m.drain.node, on ? "cordoned: no new "
		       "processes are placed on it" : "uncordoned: it takes new processes "
		       "again");
		if (cli->manager_count > 1)
			printf(" (%d of %d managers)", ok, cli->manager_count);
		printf("\n");
	}
	if (ok < cli->manager_count)
		return cli_fail("%s: %d of %d managers did not take it; give the command "
				"again when they are back", what, cli->manager_count - ok,
				cli->manager_count);
	return CLI_OK;
}

static int do_cordon_on(struct cli *cli, const struct cli_args *a)
{
	return do_cordon(cli, a, 1);
}

static int do_uncordon(struct cli *cli, const struct cli_args *a)
{
	return do_cordon(cli, a, 0);
}

/* ---- forget ----------------------------------------------------------- */

static int do_forget(struct cli *cli, const struct cli_args *a)
{
	static struct outcome out[CLI_MANAGERS_MAX];
	union proto_msg m;
	uint64_t node;
	int rc;

	int as_node = cli_args_get(a, "node") != NULL;
	int as_proc = cli_args_get(a, "process") != NULL;
	if (as_node && as_proc)
		return cli_usage("forget: --node or --process, not both");
	memset(&m, 0, sizeof(m));
	m.forget.kind = as_node ? PROTO_FORGET_NODE : as_proc ? PROTO_FORGET_PROCESS
			: PROTO_FORGET_ANY;
	if (as_node) {
		if ((rc = parse_node("forget", a->pos[0], &node)))
			return rc;
		snprintf(m.forget.name, sizeof(m.forget.name), "%016" PRIx64, node);
	} else {
		if ((rc = cli_check_process(a->pos[0])))
			return rc;
		snprintf(m.forget.name, sizeof(m.forget.name), "%s", a->pos[0]);
	}
	int ok = call_each(cli, PROTO_FORGET, &m, PROTO_FORGET_OK, out);
	/* a manager that does not know it has nothing to forget */
	int unknown = 0, failed = 0, deleted = 0;
	const struct proto_forget_ok *what = NULL;
	for (int i = 0; i < cli->manager_count; i++) {
		if (out[i].rc == 0) {
			what = what ? what : &out[i].reply.forget_ok;
			deleted |= out[i].reply.forget_ok.deleted;
		} else if (out[i].rc == RTCMS_ENOENT) {
			unknown++;
		} else {
			failed++;
			print_failure(cli, "forget", i, &out[i]);
		}
	}
	if (cli->json) {
		printf("{\"name\":");
		cli_json_str(stdout, m.forget.name);
		printf(",\"forgotten\":%s,\"kind\":", ok && !failed ? "true" : "false");
		if (what)
			printf("\"%s\"", what->kind == PROTO_FORGET_NODE ? "node" : "process");
		else
			printf("null");
		printf(",\"checkpoints_deleted\":%s,", deleted ? "true" : "false");
		print_managers_json(cli, out);
		printf("}\n");
	} else if (what && what->kind == PROTO_FORGET_NODE) {
		printf("node %016" PRIx64 " forgotten", what->node);
	} else if (what) {
		printf("process %s forgotten: %s", what->process, deleted ?
		       "its checkpoints are deleted from the store" :
		       "the store held no checkpoint of it");
	}
	if (what && !cli->json && cli->manager_count > 1)
		printf(" (%d of %d managers; %d did not know it)\n", ok, cli->manager_count,
		       unknown);
	else if (what && !cli->json)
		printf("\n");
	if (!ok && !failed)
		return cli_fail("forget: %s", out[0].why);
	if (failed)
		return cli_fail("forget: %d of %d managers did not forget %s", failed,
				cli->manager_count, m.forget.name);
	return CLI_OK;
}

/* ---- dispatch --------------------------------------------------------- */

static const struct {
	const char *name;
	const char *synopsis;
	const char *text;      /* --help */
	const char *flags;     /* options that take no value */
	int (*run)(struct cli *, const struct cli_args *);
} cmds[] = {
	{ "cordon", "cordon NODE_HEXID",
	  "No new process is placed on node NODE_HEXID - no run, migration or\n"
	  "restore - until `rtcmsctl uncordon NODE_HEXID`; what runs there goes\n"
	  "on (`drain` cordons and then moves it). Sent to every manager given\n"
	  "(--manager A --manager B, or A,B); a manager that did not get it is\n"
	  "named and the exit status is 1. A manager keeps cordons in memory: one\n"
	  "that restarts has none.\n", "", do_cordon_on },
	{ "uncordon", "uncordon NODE_HEXID",
	  "Node NODE_HEXID takes new processes again (every manager given).\n",
	  "", do_uncordon },
	{ "forget", "forget [--node|--process] NODE_HEXID|PROCESS",
	  "Remove a dead node from the managers' tables, or a process that runs\n"
	  "nowhere (exited, failed, lost, or waiting for a node) from their\n"
	  "tables and all its checkpoints from the store. Refused while the node\n"
	  "is alive or the process runs, is being moved, or may still run (a\n"
	  "manager that started and has not heard of it yet). A name that is a\n"
	  "known node's id means the node; --node or --process says which.\n"
	  "Sent to every manager given; one that does not know it is skipped.\n",
	  "node process", do_forget },
};

int cmd_tables(struct cli *cli, int argc, char **argv)
{
	struct cli_args a;
	int rc;

	for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
		if (strcmp(cmds[i].name, argv[0]) != 0)
			continue;
		if (cli_wants_help(argc, argv, 1)) {
			printf("usage: rtcmsctl [--manager HOST:PORT]... %s\n%s",
			       cmds[i].synopsis, cmds[i].text);
			return CLI_OK;
		}
		if ((rc = cli_args_parse(argc, argv, 1, "", cmds[i].flags, &a)))
			return rc;
		if (a.npos != 1)
			return cli_usage("usage: %s", cmds[i].synopsis);
		return cmds[i].run(cli, &a);
	}
	return cli_usage("\"%s\" is not a manager command", argv[0]);
}
