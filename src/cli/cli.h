/*
 * cli.h - what rtcmsctl's subcommand files share: global options, the
 * connection helper, output helpers (tables or --json) and errors.
 */
#ifndef RTCMS_CLI_H
#define RTCMS_CLI_H

#include <stdint.h>
#include <stdio.h>

#include "net/client.h"

struct cli {
	const char *key_file;     /* --key, $RTCMS_KEY */
	const char *store_addr;   /* --store, $RTCMS_STORE */
	int json;                 /* --json */
	int timeout_ms;           /* --timeout */
};

struct cli_command {
	const char *name;
	const char *args;         /* synopsis of its arguments */
	const char *help;         /* one line */
	int (*run)(struct cli *cli, int argc, char **argv);
};

/* Exit statuses. */
#define CLI_OK      0
#define CLI_FAIL    1  /* the operation failed */
#define CLI_USAGE   2  /* bad command line */

/* Print "rtcmsctl: <msg>" to stderr; returns CLI_FAIL. */
int cli_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Print a usage error; returns CLI_USAGE. */
int cli_usage(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Report a failed call: the peer's ERROR text if it sent one. */
int cli_fail_rc(struct net_client *c, const char *what, int rc);

/* Connect to addr with the cluster key; prints the error and returns NULL
 * on failure. */
struct net_client *cli_connect(struct cli *cli, const char *addr);

/* Parse an unsigned number (decimal or 0x hex); -1 on error. */
int cli_parse_u64(const char *s, uint64_t *out);

/* Print s as a JSON string (with quotes). */
void cli_json_str(FILE *f, const char *s);

/* Format a hash as hex (first n bytes) into buf. */
const char *cli_hex(const uint8_t *p, size_t n, char *buf, size_t len);

/* Format unix ms as local ISO time into buf. */
const char *cli_time(uint64_t ms, char *buf, size_t len);

/* Format a byte count ("1.5 MiB"). */
const char *cli_bytes(uint64_t n, char *buf, size_t len);

int cmd_keygen(struct cli *cli, int argc, char **argv);
int cmd_store(struct cli *cli, int argc, char **argv);
int cmd_area(struct cli *cli, int argc, char **argv);

#endif
