/*
 * cmdline.h - command line of the rtcms daemons: `--config FILE` is read
 * first, then every other option overrides the setting of the same name
 * (a list setting given on the command line replaces the file's list).
 */
#ifndef RTCMS_DAEMON_CMDLINE_H
#define RTCMS_DAEMON_CMDLINE_H

#include <stdio.h>

#include "util/config.h"

struct cmdline_opt {
	const char *long_name;         /* "listen" for --listen */
	char short_name;               /* 'l' or 0 */
	const char *field;             /* config field it sets */
};

/*
 * Parse argv against opts (terminated by long_name NULL) and fields.
 * Returns 0 to go on, 1 after printing the help (exit 0), 2 after
 * printing an error to stderr (exit 2).
 */
int cmdline_parse(const char *prog, int argc, char **argv,
		  const struct config_field *fields,
		  const struct cmdline_opt *opts, void (*usage)(FILE *));

#endif
