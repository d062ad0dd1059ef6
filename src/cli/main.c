/*
 * rtcmsctl - the rtcms operator CLI.
 *
 *   rtcmsctl [global options] COMMAND [args]
 *
 * Commands are table-dispatched; each lives in its own cmd_*.c file.
 */
#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "rtcms_error.h"
#include "util/json.h"
#include "util/keyfile.h"
#include "util/version.h"

static const struct cli_command commands[] = {
	{ "keygen", "[--data [--cipher C]] FILE [--force]", "write a new cluster key (or with --data a data keyring) to FILE", cmd_keygen, false },
	{ "store", "SUBCOMMAND ...", "talk to rtcms-store (put get list claim commit release delete scrub status)", cmd_store, false },
	{ "datakey", "list|add|activate|retire FILE [ID]", "the keys of a data keyring, and their rotation", cmd_datakey, false },
	{ "area", "SUBCOMMAND ...", "checkpoint areas on this node (create show capture install)", cmd_area, false },
	{ "status", "", "the manager's view: store, nodes, processes", cmd_manager, false },
	{ "run", "[OPTIONS] ID PROGRAM [ARGS...]", "start a protected program as process ID", cmd_run, true },
	{ "migrate", "PROCESS [--to HEXID]", "move a process to another node", cmd_manager, false },
	{ "drain", "NODE_HEXID", "cordon a node, then move every process off it", cmd_manager, false },
	{ "cordon", "NODE_HEXID", "no new processes on a node (every manager given)", cmd_tables, false },
	{ "uncordon", "NODE_HEXID", "the node takes new processes again (every manager given)", cmd_tables, false },
	{ "forget", "NODE_HEXID|PROCESS", "drop a dead node, or a process that runs nowhere and its checkpoints", cmd_tables, false },
	{ "node-failed", "NODE_HEXID", "declare a node down: its programs are restored elsewhere", cmd_manager, false },
	{ "checkpoints", "PROCESS", "a process's checkpoints, through the manager", cmd_manager, false },
	{ NULL, NULL, NULL, NULL, false },
};

static void usage(FILE *f)
{
	fprintf(f,
"usage: rtcmsctl [--key FILE] [--data-keyring FILE] [--store HOST:PORT]\n"
"                [--manager HOST:PORT]... [--json] [--timeout MS] COMMAND [ARGS]\n"
"\n"
"global options:\n"
"  -k, --key FILE           cluster key file (default $RTCMS_KEY)\n"
"  -d, --data-keyring FILE  data keys to open sealed checkpoints (store get)\n"
"                           and seal new ones (store put); default\n"
"                           $RTCMS_DATA_KEYRING, else checkpoints put are plain\n"
"  -s, --store HOST:PORT    rtcms-store address (default $RTCMS_STORE or 127.0.0.1:7400)\n"
"  -m, --manager HOST:PORT  rtcms-manager address (default $RTCMS_MANAGER or 127.0.0.1:7600);\n"
"                           repeat it or give A,B for several managers: cordon,\n"
"                           uncordon, forget and drain's cordon go to every one,\n"
"                           the other commands to the first\n"
"  -j, --json               machine-readable output: JSON on stdout, and errors\n"
"                           as JSON objects on stderr; also after the command\n"
"  -t, --timeout MS         per-operation network timeout (default 10000)\n"
"  -h, --help               this help; `rtcmsctl COMMAND --help` for a command\n"
"      --version            the version and the git revision it was built from\n"
"\ncommands:\n");
	for (const struct cli_command *c = commands; c->name; c++)
		fprintf(f, "  %-11s %-30s %s\n", c->name, c->args, c->help);
}

/* Add the managers of list ("A" or "A,B,..."; a global option or
 * $RTCMS_MANAGER) to cli->managers. The strings are cut in place (argv and
 * the environment live until exit). Returns CLI_OK or a usage error. */
static int add_managers(struct cli *cli, char *list)
{
	char *save = NULL;
	for (char *a = strtok_r(list, ",", &save); a; a = strtok_r(NULL, ",", &save)) {
		if (!a[0])
			continue;
		if (cli->manager_count >= CLI_MANAGERS_MAX)
			return cli_usage("--manager: more than %d managers", CLI_MANAGERS_MAX);
		cli->managers[cli->manager_count++] = a;
	}
	if (cli->manager_count == 0)
		return cli_usage("--manager: no address in \"%s\"", list);
	return CLI_OK;
}

/* The running command line: how errors are printed (set by main). */
static const struct cli *err_cli;

/*
 * Print an error: "rtcmsctl: message" (a usage error adds "(see --help)"),
 * or with --json one JSON object on a line of its own: {"error": message,
 * "code": the RTCMS_E* name if known, "command": the command if one runs,
 * the members of extra (JSON text, may be NULL), "status": exit status}.
 */
static void report(int status, const char *code, const char *extra,
		   const char *fmt, va_list ap)
{
	char msg[4096];

	vsnprintf(msg, sizeof(msg), fmt, ap);
	if (!err_cli || !err_cli->json) {
		fprintf(stderr, "rtcmsctl: %s%s\n", msg,
			status == CLI_USAGE ? " (see --help)" : "");
		return;
	}
	fputs("{\"error\":", stderr);
	json_write_str(stderr, msg);
	if (code) {
		fputs(",\"code\":", stderr);
		json_write_str(stderr, code);
	}
	if (err_cli->command) {
		fputs(",\"command\":", stderr);
		json_write_str(stderr, err_cli->command);
	}
	if (extra)
		fprintf(stderr, ",%s", extra);
	fprintf(stderr, ",\"status\":%d}\n", status);
}

int cli_fail(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	report(CLI_FAIL, NULL, NULL, fmt, ap);
	va_end(ap);
	return CLI_FAIL;
}

int cli_fail_with(const char *code, const char *extra, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	report(CLI_FAIL, code, extra, fmt, ap);
	va_end(ap);
	return CLI_FAIL;
}

int cli_usage(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	report(CLI_USAGE, NULL, NULL, fmt, ap);
	va_end(ap);
	return CLI_USAGE;
}

int cli_fail_rc(struct net_client *c, const char *what, int rc)
{
	const struct proto_error *e = c ? net_client_last_error(c) : NULL;
	if (e && e->code == rc && e->text[0])
		return cli_fail_with(rtcms_errname(rc), NULL, "%s: %s (%s)", what, e->text,
				     rtcms_errname(rc));
	return cli_fail_with(rtcms_errname(rc), NULL, "%s: %s (%s)", what,
			     rtcms_strerror(rc), rtcms_errname(rc));
}

struct net_client *cli_connect(struct cli *cli, const char *addr)
{
	const char *cmd = cli->command ? cli->command : "";
	const char *sep = cli->command ? ": " : "";
	struct proto_key key;
	struct net_client *c = NULL;
	char err[1024];
	int rc;

	if (!cli->key_file) {
		cli_fail("%s%sno cluster key: give --key FILE or set RTCMS_KEY", cmd, sep);
		return NULL;
	}
	if (keyfile_load(cli->key_file, &key, err, sizeof(err)) != 0) {
		cli_fail("%s%s%s", cmd, sep, err);
		return NULL;
	}
	rc = net_client_connect(addr, &key, PROTO_ROLE_CLI, "rtcmsctl",
				cli->timeout_ms, &c);
	sodium_memzero(&key, sizeof(key));
	if (rc) {
		if (rc == RTCMS_EINVAL)
			cli_fail("%s%sinvalid address \"%s\" (expected HOST:PORT)",
				 cmd, sep, addr);
		else if (rc == RTCMS_EAUTH)
			cli_fail("%s%s%s refused the handshake: wrong cluster key?",
				 cmd, sep, addr);
		else
			cli_fail("%s%scannot connect to %s: %s", cmd, sep, addr,
				 rtcms_strerror(rc));
		return NULL;
	}
	return c;
}

int cli_call(struct cli *cli, const char *addr, const char *what,
	     int timeout_ms, uint8_t type, const union proto_msg *m,
	     uint8_t expect, union proto_msg *r)
{
	struct proto_header hdr;
	struct net_client *c = cli_connect(cli, addr);
	int rc;

	if (!c)
		return CLI_FAIL;
	if (timeout_ms > cli->timeout_ms)
		net_client_set_timeout(c, timeout_ms);
	rc = net_client_call(c, type, m, expect, &hdr, r);
	if (rc)
		rc = cli_fail_rc(c, what, rc);
	net_client_free(c);
	return rc ? CLI_FAIL : CLI_OK;
}

/* Is name one of the space-separated words of list? */
static bool in_list(const char *list, const char *name)
{
	size_t nl = strlen(name);
	for (const char *f = strstr(list, name); f; f = strstr(f + 1, name))
		if ((f == list || f[-1] == ' ') && (f[nl] == ' ' || f[nl] == '\0'))
			return true;
	return false;
}

int cli_args_parse(int argc, char **argv, int first, const char *opts,
		   const char *flags, struct cli_args *a)
{
	memset(a, 0, sizeof(*a));
	for (int i = first; i < argc; i++) {
		const char *s = argv[i];
		if (strncmp(s, "--", 2) == 0 && s[2]) {
			const char *name = s + 2;
			const char *val = NULL;
			bool is_flag = in_list(flags, name);
			if (!is_flag && !in_list(opts, name))
				return cli_usage("unknown option --%s", name);
			if (!is_flag) {
				if (i + 1 >= argc)
					return cli_usage("option --%s needs a value", name);
				val = argv[++i];
			} else {
				val = "1";
			}
			if (a->nopt >= 16)
				return cli_usage("too many options");
			a->opt_name[a->nopt] = name;
			a->opt_val[a->nopt++] = val;
		} else {
			if (a->npos >= 4)
				return cli_usage("too many arguments");
			a->pos[a->npos++] = s;
		}
	}
	return 0;
}

const char *cli_args_get(const struct cli_args *a, const char *name)
{
	for (int i = 0; i < a->nopt; i++)
		if (strcmp(a->opt_name[i], name) == 0)
			return a->opt_val[i];
	return NULL;
}

bool cli_wants_help(int argc, char **argv, int first)
{
	for (int i = first; i < argc; i++)
		if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h"))
			return true;
	return false;
}

int cli_check_process(const char *p)
{
	if (!p)
		return cli_usage("PROCESS missing");
	if (!proto_process_id_valid(p))
		return cli_usage("\"%s\" is not a valid process id (1..%d of "
				 "A-Z a-z 0-9 . _ : -)", p, PROTO_ID_MAX);
	return 0;
}

int cli_parse_u64(const char *s, uint64_t *out)
{
	char *end;
	if (!s || *s == '\0' || *s == '-')
		return RTCMS_EINVAL;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 0);
	if (errno || *end != '\0')
		return RTCMS_EINVAL;
	*out = v;
	return 0;
}

int cli_parse_node(const char *s, uint64_t *out)
{
	char *end;
	if (!s || !isxdigit((unsigned char)*s))
		return RTCMS_EINVAL;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 16);
	if (errno || *end != '\0' || v == 0)
		return RTCMS_EINVAL;
	*out = v;
	return 0;
}

void cli_json_str(FILE *f, const char *s)
{
	json_write_str(f, s);
}

const char *cli_hex(const uint8_t *p, size_t n, char *buf, size_t len)
{
	size_t o = 0;
	for (size_t i = 0; i < n && o + 3 <= len; i++)
		o += (size_t)snprintf(buf + o, len - o, "%02x", p[i]);
	buf[o] = '\0';
	return buf;
}

const char *cli_time(uint64_t ms, char *buf, size_t len)
{
	time_t t = (time_t)(ms / 1000);
	struct tm tm;
	localtime_r(&t, &tm);
	size_t n = strftime(buf, len, "%Y-%m-%d %H:%M:%S", &tm);
	snprintf(buf + n, len - n, ".%03u", (unsigned)(ms % 1000));
	return buf;
}

const char *cli_bytes(uint64_t n, char *buf, size_t len)
{
	static const char *units[] = { "B", "KiB", "MiB", "GiB", "TiB" };
	double v = (double)n;
	int u = 0;
	while (v >= 1024 && u < 4) {
		v /= 1024;
		u++;
	}
	if (u == 0)
		snprintf(buf, len, "%llu B", (unsigned long long)n);
	else
		snprintf(buf, len, "%.1f %s", v, units[u]);
	return buf;
}

int cli_data_keys(const struct cli *cli, struct datakey_ring *ring)
{
	char err[1024];

	memset(ring, 0, sizeof(*ring));
	if (!cli->data_keyring)
		return CLI_OK;
	if (datakey_load(cli->data_keyring, ring, err, sizeof(err)) != 0)
		return cli_fail("%s", err);
	return CLI_OK;
}

/* Take every --json out of argv[first..argc-1] (up to a "--": what follows
 * is left alone), setting cli->json; returns the new argc. */
static int take_json(struct cli *cli, int argc, char **argv, int first)
{
	int n = first, i;

	for (i = first; i < argc && strcmp(argv[i], "--") != 0; i++) {
		if (strcmp(argv[i], "--json") == 0)
			cli->json = 1;
		else
			argv[n++] = argv[i];
	}
	while (i < argc)
		argv[n++] = argv[i++];
	argv[n] = NULL;
	return n;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "key", required_argument, NULL, 'k' },
		{ "data-keyring", required_argument, NULL, 'd' },
		{ "store", required_argument, NULL, 's' },
		{ "manager", required_argument, NULL, 'm' },
		{ "json", no_argument, NULL, 'j' },
		{ "timeout", required_argument, NULL, 't' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	struct cli cli = {
		.key_file = getenv("RTCMS_KEY"),
		.data_keyring = getenv("RTCMS_DATA_KEYRING"),
		.store_addr = getenv("RTCMS_STORE"),
		.timeout_ms = 10000,
	};
	static char env_managers[4096], default_manager[] = "127.0.0.1:7600";
	char bad[512] = ""; /* the first bad global option, told once --json is known */
	int given = 0, c, rc;

	err_cli = &cli;
	if (!cli.store_addr)
		cli.store_addr = "127.0.0.1:7400";
	signal(SIGPIPE, SIG_IGN);
	/* "+": stop at the command name; its options are its own. ":": a
	 * missing value is told apart from an unknown option. */
	opterr = 0;
	while ((c = getopt_long(argc, argv, "+:k:d:s:m:jt:h", opts, NULL)) != -1) {
		switch (c) {
		case 'k': cli.key_file = optarg; break;
		case 'd': cli.data_keyring = optarg; break;
		case 's': cli.store_addr = optarg; break;
		case 'm':
			/* the command line replaces $RTCMS_MANAGER */
			if ((rc = add_managers(&cli, optarg)))
				return rc;
			given = 1;
			break;
		case 'j': cli.json = 1; break;
		case 't': {
			uint64_t v;
			if (cli_parse_u64(optarg, &v) || v == 0 || v > 3600000)
				return cli_usage("--timeout: expected milliseconds, 1..3600000");
			cli.timeout_ms = (int)v;
			break;
		}
		case 'h': usage(stdout); return CLI_OK;
		case 'V': version_print(stdout, "rtcmsctl"); return CLI_OK;
		case ':':
			if (!bad[0])
				snprintf(bad, sizeof(bad), "option %s needs a value",
					 argv[optind - 1]);
			break;
		default:
			if (bad[0])
				break;
			if (optopt)
				snprintf(bad, sizeof(bad), "unknown option -%c", optopt);
			else
				snprintf(bad, sizeof(bad), "unknown option %s", argv[optind - 1]);
			break;
		}
	}
	const struct cli_command *cmd = NULL;
	if (optind < argc)
		for (cmd = commands; cmd->name && strcmp(cmd->name, argv[optind]); cmd++)
			;
	if (cmd && !cmd->verbatim) /* an unknown command too: its error in JSON */
		argc = take_json(&cli, argc, argv, optind + 1);
	if (bad[0])
		return cli_usage("%s", bad);
	if (!given) {
		const char *env = getenv("RTCMS_MANAGER");
		if (env && strlen(env) >= sizeof(env_managers))
			return cli_usage("$RTCMS_MANAGER: longer than %zu characters",
					 sizeof(env_managers) - 1);
		if (env && env[0]) {
			strcpy(env_managers, env);
			if ((rc = add_managers(&cli, env_managers)))
				return rc;
		} else {
			cli.managers[cli.manager_count++] = default_manager;
		}
	}
	cli.manager_addr = cli.managers[0];
	if (optind >= argc) {
		if (cli.json)
			return cli_usage("no command given");
		usage(stderr);
		return CLI_USAGE;
	}
	if (!cmd->name)
		return cli_usage("unknown command \"%s\"", argv[optind]);
	optind++;
	cli.command = cmd->name;
	return cmd->run(&cli, argc - optind + 1, argv + optind - 1);
}
