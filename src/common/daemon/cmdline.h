/*
 * cmdline.h - command line of the rtcms daemons: `--config FILE` is read
 * first, then every other option overrides the setting of the same name
 * (a list setting given on the command line replaces the file's list).
 * `--help` prints the daemon's usage, `--version` its version and git
 * revision (util/version.h); both exit 0.
 */
#ifndef RTCMS_DAEMON_CMDLINE_H
#define RTCMS_DAEMON_CMDLINE_H

#include <stdio.h>

#include "daemon/reload.h"
#include "util/config.h"

struct cmdline_opt {
	const char *long_name;         /* "listen" for --listen */
	char short_name;               /* 'l' or 0 */
	const char *field;             /* config field it sets */
};

/* What cmdline_parse() found: run the daemon, or exit with this status. */
enum cmdline_result {
	CMDLINE_RUN = 0,  /* settings parsed: go on */
	CMDLINE_HELP,     /* --help or --version printed: exit 0 */
	CMDLINE_USAGE,    /* an error printed to stderr: exit 2 */
};

/* Parse argv against opts (terminated by long_name NULL) and fields. */
enum cmdline_result cmdline_parse(const char *prog, int argc, char **argv,
				  const struct config_field *fields,
				  const struct cmdline_opt *opts, void (*usage)(FILE *));

/*
 * The settings as cmdline_parse(argv) made them, computed again into fresh
 * (s->size bytes): s->defaults, the --config file read now, then the other
 * options (a SIGHUP: the file may have changed; the command line still
 * wins). The live settings are not touched. argv is the one the daemon
 * started with. Returns 0, or RTCMS_ECONFIG with the problem in err.
 */
int cmdline_reload(int argc, char **argv, const struct cmdline_opt *opts,
		   const struct reload_settings *s, void *fresh, char *err,
		   size_t errlen);

/*
 * A SIGHUP's first step: cmdline_reload() into fresh, then the setting
 * named "level" (the [log] level) checked with reload_log_level() (*to
 * and what a switch does into level). Returns 0, or a negative RTCMS_E*
 * code after logging the problem ("SIGHUP: ...: the settings stay as they were").
 */
int cmdline_sighup(int argc, char **argv, const struct cmdline_opt *opts,
		   const struct reload_settings *s, void *fresh, enum log_level *to,
		   char *level, size_t levellen);

#endif
