/*
 * cli.h - what rtcmsctl's subcommand files share: global options, the
 * connection helper, output helpers (tables or --json) and errors.
 */
#ifndef RTCMS_CLI_H
#define RTCMS_CLI_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "net/client.h"
#include "util/datakey.h"

#define CLI_MANAGERS_MAX 16

struct cli {
	const char *key_file;     /* --key, $RTCMS_KEY */
	const char *data_keyring; /* --data-keyring, $RTCMS_DATA_KEYRING */
	const char *store_addr;   /* --store, $RTCMS_STORE */
	const char *manager_addr; /* the first manager: the one most commands ask */
	const char *managers[CLI_MANAGERS_MAX]; /* every manager given (--manager is
				   * repeatable and takes A,B lists; so does
				   * $RTCMS_MANAGER): cordon, uncordon, forget
				   * and drain's cordon go to each */
	int manager_count;
	const char *command;      /* the command running, for error messages */
	int json;                 /* --json */
	int timeout_ms;           /* --timeout */
};

/* The data keyring of --data-keyring into *ring (none given: a ring with
 * no key). CLI_OK, or CLI_FAIL after the error was printed. */
int cli_data_keys(const struct cli *cli, struct datakey_ring *ring);

struct cli_command {
	const char *name;
	const char *args;         /* synopsis of its arguments */
	const char *help;         /* one line */
	int (*run)(struct cli *cli, int argc, char **argv);
	bool verbatim;            /* its arguments reach it as given (run: what
				   * follows ID is the program's own); it takes
				   * --json itself. Otherwise main takes a
				   * --json out of them (up to a "--"). */
};

/* Exit statuses. */
#define CLI_OK      0
#define CLI_FAIL    1  /* the operation failed */
#define CLI_USAGE   2  /* bad command line */

/*
 * Errors go to stderr: "rtcmsctl: <msg>", or with --json one JSON object
 * per error on a line of its own, {"error": "<msg>", "code": "ENOENT" (when
 * known), "command": "status" (when one runs), "status": 1}.
 */

/* Print an error; returns CLI_FAIL. */
int cli_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Print an error with its RTCMS_E* name code (NULL: none) and, with --json,
 * the members extra (JSON text without braces, "\"claimant\":\"m\""; NULL:
 * none) in its object; returns CLI_FAIL. */
int cli_fail_with(const char *code, const char *extra, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Print a usage error; returns CLI_USAGE. */
int cli_usage(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Report a failed call: the peer's ERROR text if it sent one, and the
 * error's name (the "code" with --json). Returns CLI_FAIL. */
int cli_fail_rc(struct net_client *c, const char *what, int rc);

/* Connect to addr with the cluster key; prints the error (prefixed with
 * cli->command) and returns NULL on failure. */
struct net_client *cli_connect(struct cli *cli, const char *addr);

/*
 * Connect to addr and make one call: send type with m, wait for expect into
 * *r. timeout_ms raises the --timeout for this call (0: keep it). Prints
 * "rtcmsctl: what: ..." (the peer's ERROR text if it sent one) on failure.
 * *r must not borrow from the frame: the connection is closed on return.
 * Returns CLI_OK or CLI_FAIL.
 */
int cli_call(struct cli *cli, const char *addr, const char *what,
	     int timeout_ms, uint8_t type, const union proto_msg *m,
	     uint8_t expect, union proto_msg *r);

/*
 * Connect to addr and print every checkpoint LIST returns for node (0 =
 * any) and process ("" or NULL = any), paging while the store says there is
 * more: a table, or a JSON array with --json. what names the command in
 * errors. Returns CLI_OK or CLI_FAIL.
 */
int cli_list_checkpoints(struct cli *cli, const char *addr, const char *what,
			 uint64_t node, const char *process);

/* Parsed arguments of a command: positionals and --name value pairs. */
struct cli_args {
	int npos;
	const char *pos[4];
	int nopt;
	const char *opt_name[16];
	const char *opt_val[16];
};

/*
 * Parse argv[first..argc-1] into *a: opts are the space-separated names of
 * options that take a value, flags of those that take none ("1"). Returns 0
 * or prints a usage error and returns CLI_USAGE.
 */
int cli_args_parse(int argc, char **argv, int first, const char *opts,
		   const char *flags, struct cli_args *a);

/* The value of option name (the first given), or NULL. */
const char *cli_args_get(const struct cli_args *a, const char *name);

/* True if any of argv[first..argc-1] is --help or -h. */
bool cli_wants_help(int argc, char **argv, int first);

/* Check a process id given on the command line: 0, or prints a usage
 * error and returns CLI_USAGE (p NULL: missing). */
int cli_check_process(const char *p);

/* Parse an unsigned number (decimal or 0x hex); 0 or RTCMS_EINVAL. */
int cli_parse_u64(const char *s, uint64_t *out);

/* Parse a node id: 1 to 16 hex digits (strtoull base 16, "0x" allowed),
 * not 0; 0 or RTCMS_EINVAL. */
int cli_parse_node(const char *s, uint64_t *out);

/* Print s as a JSON string (with quotes), valid whatever bytes s holds
 * (util/json.h). */
void cli_json_str(FILE *f, const char *s);

/* Format a hash as hex (first n bytes) into buf. */
const char *cli_hex(const uint8_t *p, size_t n, char *buf, size_t len);

/* Format unix ms as local ISO time into buf. */
const char *cli_time(uint64_t ms, char *buf, size_t len);

/* Format a byte count ("1.5 MiB"). */
const char *cli_bytes(uint64_t n, char *buf, size_t len);

int cmd_keygen(struct cli *cli, int argc, char **argv);
int cmd_datakey(struct cli *cli, int argc, char **argv);
int cmd_store(struct cli *cli, int argc, char **argv);
int cmd_area(struct cli *cli, int argc, char **argv);
/* cmd_manager.c: commands that talk to rtcms-manager. cmd_manager runs the
 * one named by argv[0]: status, migrate, drain or checkpoints. */
int cmd_manager(struct cli *cli, int argc, char **argv);
int cmd_run(struct cli *cli, int argc, char **argv);
/* cmd_tables.c: commands that change every given manager's tables: cordon,
 * uncordon and forget (argv[0] names it). */
int cmd_tables(struct cli *cli, int argc, char **argv);
/* Cordon node at every manager given, printing a line per failure; what
 * names the command in messages. Returns CLI_OK, or CLI_FAIL if any manager
 * did not take it (*first_failed: the first manager, the one a drain asks,
 * is among them). */
int cli_cordon_all(struct cli *cli, const char *what, uint64_t node, int *first_failed);

#endif
