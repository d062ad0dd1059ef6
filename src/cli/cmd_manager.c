/*
 * cmd_manager.c - rtcmsctl commands that talk to rtcms-manager (--manager):
 * status, run, migrate, drain, checkpoints.
 */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "proto/spec.h"
#include "rtcms_error.h"

/* The manager answers MIGRATE once the program resumed on its new node, and
 * DRAIN once every program of the node moved: wait for them that long. */
#define MIGRATE_TIMEOUT_MS (120 * 1000)
#define DRAIN_TIMEOUT_MS   (600 * 1000)

#define RUN_USAGE "run [--node HEXID] [--env NAME=VALUE]... [--cwd DIR] [--json] ID PROGRAM [ARGS...]"

/* Print a command's --help text; returns CLI_OK. */
static int help(const char *synopsis, const char *text)
{
	printf("usage: rtcmsctl [--manager HOST:PORT] %s\n%s", synopsis, text);
	return CLI_OK;
}

/* Parse a node id given as option or argument what. */
static int parse_node(const char *what, const char *s, uint64_t *out)
{
	if (cli_parse_node(s, out) != 0)
		return cli_usage("%s: \"%s\" is not a node id (1 to 16 hex digits, "
				 "e.g. 0000000000000002)", what, s);
	return 0;
}

/* ---- status ---------------------------------------------------------- */

static const char *state_name(uint8_t state)
{
	switch (state) {
	case PROTO_PS_RUNNING: return "running";
	case PROTO_PS_MIGRATING: return "migrating";
	case PROTO_PS_EXITED: return "exited";
	case PROTO_PS_UNKNOWN: return "lost";
	case PROTO_PS_WAITING: return "waiting";
	case PROTO_PS_STORED: return "stored";
	case PROTO_PS_FAILED: return "failed";
	default: return "?";
	}
}

/* A duration for a table: "850 ms", "12.5 s", "3.2 min", "5.0 h". */
static const char *duration(uint64_t ms, char *buf, size_t len)
{
	if (ms < 1000)
		snprintf(buf, len, "%" PRIu64 " ms", ms);
	else if (ms < 60 * 1000)
		snprintf(buf, len, "%.1f s", (double)ms / 1000);
	else if (ms < 3600 * 1000)
		snprintf(buf, len, "%.1f min", (double)ms / 60000);
	else
		snprintf(buf, len, "%.1f h", (double)ms / 3600000);
	return buf;
}

static void print_status_json(const struct proto_mstatus_reply *s)
{
	printf("{\"manager\":");
	cli_json_str(stdout, s->name);
	printf(",\"store\":");
	cli_json_str(stdout, s->store);
	printf(",\"store_up\":%s,\"store_error\":", s->store_up ? "true" : "false");
	cli_json_str(stdout, s->store_error);
	printf(",\"pending\":%u,\"nodes\":[", s->pending);
	for (uint16_t i = 0; i < s->node_count; i++) {
		const struct proto_node_entry *n = &s->nodes[i];
		printf("%s{\"node\":\"%016" PRIx64 "\",\"name\":", i ? "," : "", n->node);
		cli_json_str(stdout, n->name);
		printf(",\"address\":");
		cli_json_str(stdout, n->address);
		printf(",\"alive\":%s,\"cordoned\":%s,\"seen_ago_ms\":",
		       n->alive ? "true" : "false", n->cordoned ? "true" : "false");
		if (n->seen_ago_ms == UINT64_MAX)
			printf("null");
		else
			printf("%" PRIu64, n->seen_ago_ms);
		printf(",\"mem_total\":%" PRIu64 ",\"mem_available\":%" PRIu64
		       ",\"cpu_load_permille\":%u,\"quota_max\":%u,\"quota_free\":%u"
		       ",\"area_used\":%" PRIu64 ",\"processes\":%u}", n->mem_total,
		       n->mem_available, n->cpu_load_permille, n->quota_max,
		       n->quota_free, n->area_used, n->processes);
	}
	printf("],\"processes\":[");
	for (uint16_t i = 0; i < s->proc_count; i++) {
		const struct proto_proc_entry *p = &s->procs[i];
		printf("%s{\"process\":", i ? "," : "");
		cli_json_str(stdout, p->process);
		printf(",\"node\":\"%016" PRIx64 "\",\"incarnation\":%" PRIu64
		       ",\"durable\":%" PRIu64 ",\"durable_age_ms\":", p->node,
		       p->incarnation, p->durable);
		if (p->durable)
			printf("%" PRIu64, p->durable_age_ms);
		else
			printf("null");
		printf(",\"notified\":%" PRIu64 ",\"size\":%" PRIu64 ",\"state\":\"%s\""
		       ",\"restarts\":%u,\"confirmed_ago_ms\":", p->notified, p->size,
		       state_name(p->state), p->restarts);
		if (p->confirmed_ago_ms == UINT64_MAX)
			printf("null");
		else
			printf("%" PRIu64, p->confirmed_ago_ms);
		printf(",\"reason\":");
		cli_json_str(stdout, p->reason);
		printf("}");
	}
	printf("]}\n");
}

static void print_nodes(const struct proto_mstatus_reply *s)
{
	char seen[32], mem[48], cpu[16], quota[32];

	printf("%-16s %-16s %-21s %-5s %-8s %9s %19s %6s %10s %5s\n", "NODE", "NAME",
	       "ADDRESS", "ALIVE", "CORDONED", "SEEN", "MEM AVAIL/TOTAL MiB", "CPU",
	       "QUOTA FREE", "PROCS");
	for (uint16_t i = 0; i < s->node_count; i++) {
		const struct proto_node_entry *n = &s->nodes[i];
		if (n->seen_ago_ms == UINT64_MAX)
			snprintf(seen, sizeof(seen), "never");
		else
			duration(n->seen_ago_ms, seen, sizeof(seen));
		snprintf(mem, sizeof(mem), "%" PRIu64 "/%" PRIu64,
			 n->mem_available >> 20, n->mem_total >> 20);
		snprintf(cpu, sizeof(cpu), "%.1f%%", n->cpu_load_permille / 10.0);
		snprintf(quota, sizeof(quota), "%u/%u", n->quota_free, n->quota_max);
		printf("%016" PRIx64 " %-16s %-21s %-5s %-8s %9s %19s %6s %10s %5u\n",
		       n->node, n->name, n->address, n->alive ? "yes" : "no",
		       n->cordoned ? "yes" : "-", seen,
		       mem, cpu, quota, n->processes);
	}
	if (s->node_count == 0)
		printf("(no nodes registered)\n");
}

static void print_procs(const struct proto_mstatus_reply *s)
{
	char durable[24], age[32], size[32];

	printf("%-24s %-16s %5s %8s %9s %8s %10s %-9s %8s %9s %s\n", "PROCESS", "NODE", "INC",
	       "DURABLE", "AGE", "NOTIFIED", "SIZE", "STATE", "RESTARTS", "CONFIRMED",
	       "LAST REASON");
	for (uint16_t i = 0; i < s->proc_count; i++) {
		const struct proto_proc_entry *p = &s->procs[i];
		if (p->durable) {
			snprintf(durable, sizeof(durable), "%" PRIu64, p->durable);
			duration(p->durable_age_ms, age, sizeof(age));
			cli_bytes(p->size, size, sizeof(size));
		} else {
			strcpy(durable, "-");
			strcpy(age, "-");
			strcpy(size, "-");
		}
		char confirmed[32];
		if (p->confirmed_ago_ms == UINT64_MAX)
			strcpy(confirmed, "never");
		else
			duration(p->confirmed_ago_ms, confirmed, sizeof(confirmed));
		printf("%-24s %016" PRIx64 " %5" PRIu64 " %8s %9s %8" PRIu64
		       " %10s %-9s %8u %9s %s\n", p->process, p->node, p->incarnation, durable,
		       age, p->notified, size, state_name(p->state), p->restarts, confirmed,
		       p->reason[0] ? p->reason : "-");
	}
	if (s->proc_count == 0)
		printf("(no processes)\n");
}

static int do_status(struct cli *cli, const struct cli_args *a)
{
	static struct proto_node_entry nodes[PROTO_NODES_MAX];
	static struct proto_proc_entry procs[PROTO_PROCS_MAX];
	union proto_msg m, r;
	int rc;

	(void)a;
	memset(&m, 0, sizeof(m));
	memset(&r, 0, sizeof(r));
	r.mstatus.nodes = nodes;
	r.mstatus.procs = procs;
	if ((rc = cli_call(cli, cli->manager_addr, "status", 0, PROTO_MSTATUS, &m,
			   PROTO_MSTATUS_REPLY, &r)))
		return rc;
	if (cli->json) {
		print_status_json(&r.mstatus);
		return CLI_OK;
	}
	printf("manager  %s\n", r.mstatus.name);
	printf("store    %s %s%s%s\n", r.mstatus.store,
	       r.mstatus.store_up ? "up" : "DOWN",
	       r.mstatus.store_error[0] ? ": " : "", r.mstatus.store_error);
	printf("pending  %u checkpoint(s) announced, not yet durable\n\n",
	       r.mstatus.pending);
	print_nodes(&r.mstatus);
	printf("\n");
	print_procs(&r.mstatus);
	return CLI_OK;
}

/* ---- run ------------------------------------------------------------- */

/* path made absolute if it is a relative path that exists here, into buf;
 * else path itself. */
static const char *absolute(const char *path, char *buf)
{
	if (path[0] != '/' && access(path, F_OK) == 0 && realpath(path, buf))
		return buf;
	return path;
}

int cmd_run(struct cli *cli, int argc, char **argv)
{
	static uint8_t blob[PROTO_SPEC_MAX];
	static char prog[PATH_MAX], dir[PATH_MAX];
	struct proto_spec spec;
	union proto_msg m, r;
	const char *cwd = NULL;
	uint64_t node = 0;
	int i, rc;

	memset(&spec, 0, sizeof(spec));
	/* options first; the first non-option is the ID */
	for (i = 1; i < argc && argv[i][0] == '-'; i++) {
		const char *o = argv[i];
		if (!strcmp(o, "--")) {
			i++;
			break;
		}
		if (!strcmp(o, "--json")) { /* main leaves run's arguments alone */
			cli->json = 1;
			continue;
		}
		if (!strcmp(o, "--help") || !strcmp(o, "-h"))
			return help(RUN_USAGE,
				    "Start PROGRAM with ARGS as protected process ID on node HEXID, or\n"
				    "on the node the manager's placement chooses. PROGRAM is made\n"
				    "absolute if it names a file here; the program runs in DIR\n"
				    "(default: the current directory) with the --env variables.\n"
				    "--json must come before ID (what follows ID is the program's).\n");
		if (strcmp(o, "--node") && strcmp(o, "--env") && strcmp(o, "--cwd"))
			return cli_usage("run: unknown option %s", o);
		if (i + 1 >= argc)
			return cli_usage("run: option %s needs a value", o);
		const char *v = argv[++i];
		if (!strcmp(o, "--node")) {
			if ((rc = parse_node("run: --node", v, &node)))
				return rc;
		} else if (!strcmp(o, "--cwd")) {
			cwd = v;
		} else {
			if (!strchr(v, '=') || v[0] == '=')
				return cli_usage("run: --env: expected NAME=VALUE, got \"%s\"", v);
			if (spec.envc >= PROTO_SPEC_ENV_MAX)
				return cli_usage("run: more than %d --env", PROTO_SPEC_ENV_MAX);
			spec.env[spec.envc++] = v;
		}
	}
	if (argc - i < 2)
		return cli_usage("usage: " RUN_USAGE);
	const char *id = argv[i];
	if ((rc = cli_check_process(id)))
		return rc;
	if (argc - i - 1 > PROTO_SPEC_ARGS_MAX)
		return cli_usage("run: more than %d program arguments",
				 PROTO_SPEC_ARGS_MAX - 1);
	if (!argv[i + 1][0])
		return cli_usage("run: PROGRAM is empty");
	spec.argv[spec.argc++] = absolute(argv[i + 1], prog);
	for (int j = i + 2; j < argc; j++)
		spec.argv[spec.argc++] = argv[j];
	if (!cwd) {
		if (!getcwd(dir, sizeof(dir)))
			return cli_fail("run: current directory: %s", strerror(errno));
		cwd = dir;
	} else if ((cwd = absolute(cwd, dir))[0] != '/') {
		return cli_usage("run: --cwd: \"%s\" is neither absolute nor a path that exists here",
				 cwd);
	}
	spec.cwd = cwd;
	rc = proto_spec_encode(&spec, blob, sizeof(blob));
	if (rc == RTCMS_EINVAL)
		return cli_usage("run: an argument, variable or directory is longer "
				 "than %d bytes", PROTO_SPEC_STR_MAX);
	if (rc < 0)
		return cli_usage("run: arguments, environment and directory take more "
				 "than %d bytes", PROTO_SPEC_MAX);

	memset(&m, 0, sizeof(m));
	strcpy(m.run.process, id);
	m.run.node = node;
	m.run.spec = blob;
	m.run.spec_len = (uint32_t)rc;
	if ((rc = cli_call(cli, cli->manager_addr, "run", 0, PROTO_RUN, &m,
			   PROTO_RUN_OK, &r)))
		return rc;
	if (cli->json) {
		printf("{\"process\":");
		cli_json_str(stdout, r.run_ok.process);
		printf(",\"node\":\"%016" PRIx64 "\",\"pid\":%u,\"incarnation\":%" PRIu64
		       "}\n", r.run_ok.node, r.run_ok.pid, r.run_ok.incarnation);
	} else {
		printf("%s started on node %016" PRIx64 " (pid %u, incarnation %"
		       PRIu64 ")\n", r.run_ok.process, r.run_ok.node, r.run_ok.pid,
		       r.run_ok.incarnation);
	}
	return CLI_OK;
}

/* ---- migrate / drain ------------------------------------------------- */

static int do_migrate(struct cli *cli, const struct cli_args *a)
{
	union proto_msg m, r;
	int rc;

	if ((rc = cli_check_process(a->pos[0])))
		return rc;
	memset(&m, 0, sizeof(m));
	strcpy(m.migrate.process, a->pos[0]);
	const char *to = cli_args_get(a, "to");
	if (to && (rc = parse_node("migrate: --to", to, &m.migrate.target)))
		return rc;
	m.migrate.allow_same = cli_args_get(a, "allow-same") ? 1 : 0;
	if ((rc = cli_call(cli, cli->manager_addr, "migrate", MIGRATE_TIMEOUT_MS,
			   PROTO_MIGRATE, &m, PROTO_MIGRATE_OK, &r)))
		return rc;
	const struct proto_migrate_ok *ok = &r.migrate_ok;
	if (cli->json) {
		printf("{\"process\":");
		cli_json_str(stdout, ok->process);
		printf(",\"from\":\"%016" PRIx64 "\",\"to\":\"%016" PRIx64
		       "\",\"incarnation\":%" PRIu64 ",\"sequence\":%" PRIu64
		       ",\"millis\":%u}\n", ok->from, ok->to, ok->incarnation,
		       ok->sequence, ok->millis);
	} else {
		printf("%s moved from node %016" PRIx64 " to node %016" PRIx64
		       ": incarnation %" PRIu64 ", continued from checkpoint %"
		       PRIu64 ", %u ms\n", ok->process, ok->from, ok->to,
		       ok->incarnation, ok->sequence, ok->millis);
	}
	return CLI_OK;
}

static int do_drain(struct cli *cli, const struct cli_args *a)
{
	union proto_msg m, r;
	int rc;

	memset(&m, 0, sizeof(m));
	if ((rc = parse_node("drain", a->pos[0], &m.drain.node)))
		return rc;
	/* every manager first: none may place a program there meanwhile (the
	 * first, which moves them, cordons it itself too) */
	int first_failed = 0;
	int cordon_rc = cli_cordon_all(cli, "drain", m.drain.node, &first_failed);
	if (first_failed)
		return CLI_FAIL;
	if ((rc = cli_call(cli, cli->manager_addr, "drain", DRAIN_TIMEOUT_MS,
			   PROTO_DRAIN, &m, PROTO_DRAIN_OK, &r)))
		return rc;
	if (cli->json)
		printf("{\"node\":\"%016" PRIx64 "\",\"moved\":%u,\"failed\":%u}\n",
		       m.drain.node, r.drain_ok.moved, r.drain_ok.failed);
	else
		printf("node %016" PRIx64 " drained: %u moved, %u failed\n",
		       m.drain.node, r.drain_ok.moved, r.drain_ok.failed);
	if (r.drain_ok.failed)
		return cli_fail("drain: %u process(es) could not be moved off node %016"
				PRIx64 " (see the manager's log)", r.drain_ok.failed,
				m.drain.node);
	if (cordon_rc)
		return cli_fail("drain: node %016" PRIx64 " is not cordoned at every manager "
				"(see above): `rtcmsctl cordon` it there when they are back",
				m.drain.node);
	return CLI_OK;
}

static int do_node_failed(struct cli *cli, const struct cli_args *a)
{
	union proto_msg m, r;
	int rc;

	memset(&m, 0, sizeof(m));
	if ((rc = parse_node("node-failed", a->pos[0], &m.drain.node)))
		return rc;
	if ((rc = cli_call(cli, cli->manager_addr, "node-failed", cli->timeout_ms,
			   PROTO_NODE_FAILED, &m, PROTO_OK, &r)))
		return rc;
	if (cli->json)
		printf("{\"node\":\"%016" PRIx64 "\",\"declared_failed\":true}\n",
		       m.drain.node);
	else
		printf("node %016" PRIx64 " declared failed: its programs are restored "
		       "elsewhere once its lease lapsed\n", m.drain.node);
	return CLI_OK;
}

/* ---- checkpoints ----------------------------------------------------- */

static int do_checkpoints(struct cli *cli, const struct cli_args *a)
{
	int rc;

	if ((rc = cli_check_process(a->pos[0])))
		return rc;
	return cli_list_checkpoints(cli, cli->manager_addr, "checkpoints", 0,
				    a->pos[0]);
}

/* ---- dispatch -------------------------------------------------------- */

/* The commands with options anywhere and a fixed number of arguments. */
static const struct {
	const char *name;
	const char *synopsis;
	const char *text;      /* --help */
	const char *opts;      /* options that take a value */
	const char *flags;     /* options that take none */
	int npos;              /* arguments */
	int (*run)(struct cli *, const struct cli_args *);
} cmds[] = {
	{ "status", "status",
	  "The manager's view of the cluster: the store it uses (up or DOWN,\n"
	  "checkpoints announced but not yet durable), every node with its\n"
	  "resources and whether it is cordoned, every process with its latest\n"
	  "durable checkpoint. With several --manager, the first one's view.\n",
	  "", "", 0, do_status },
	{ "migrate", "migrate PROCESS [--to HEXID] [--allow-same]",
	  "Move PROCESS to node HEXID, or to the node the manager's placement\n"
	  "chooses: final checkpoint, restore there, resume. --allow-same lets\n"
	  "placement choose the node it runs on (a restart in place).\n",
	  "to", "allow-same", 1, do_migrate },
	{ "drain", "drain NODE_HEXID",
	  "Cordon node NODE_HEXID at every manager given (no new process is\n"
	  "placed on it until `rtcmsctl uncordon NODE_HEXID`), then move every\n"
	  "running process off it through the first manager (for maintenance);\n"
	  "exits 1 if any could not be moved or a manager did not take the\n"
	  "cordon.\n", "", "", 1, do_drain },
	{ "node-failed", "node-failed NODE_HEXID",
	  "Tell the manager that node NODE_HEXID is down (the thesis' external\n"
	  "notice of a breakdown). The manager stops answering its heartbeats, so\n"
	  "its agent fences its programs if it still runs; after node_timeout its\n"
	  "programs are restored on the other nodes. The node rejoins when its\n"
	  "agent restarts.\n", "", "", 1, do_node_failed },
	{ "checkpoints", "checkpoints PROCESS",
	  "The checkpoints of PROCESS in the manager's store (the manager\n"
	  "relays the listing: no --store needed).\n", "", "", 1, do_checkpoints },
};

int cmd_manager(struct cli *cli, int argc, char **argv)
{
	struct cli_args a;
	int rc;

	for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
		if (strcmp(cmds[i].name, argv[0]) != 0)
			continue;
		if (cli_wants_help(argc, argv, 1))
			return help(cmds[i].synopsis, cmds[i].text);
		if ((rc = cli_args_parse(argc, argv, 1, cmds[i].opts,
					 cmds[i].flags, &a)))
			return rc;
		if (a.npos != cmds[i].npos)
			return cli_usage("usage: %s", cmds[i].synopsis);
		return cmds[i].run(cli, &a);
	}
	return cli_usage("\"%s\" is not a manager command", argv[0]);
}
