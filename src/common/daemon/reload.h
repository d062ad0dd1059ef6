/*
 * reload.h - SIGHUP for the rtcms daemons: the config file is read again
 * into a fresh copy of the daemon's settings (the running ones are never
 * half-overwritten), then the daemon applies what it can apply while
 * running and logs the rest as "takes effect at the next start". A SIGHUP
 * never stops a program or the daemon.
 */
#ifndef RTCMS_DAEMON_RELOAD_H
#define RTCMS_DAEMON_RELOAD_H

#include <stddef.h>

#include "log/log.h"
#include "util/config.h"

/* A daemon's settings: its field table, whose every dst lies in the struct
 * at live (size bytes), and that struct's values before the config file
 * and the command line were applied (its defaults, size bytes). */
struct reload_settings {
	const struct config_field *fields;
	const void *live;
	const void *defaults;
	size_t size;
};

/*
 * Make fresh (size bytes) the defaults with the config file at path read
 * over them (path NULL: the defaults only). The live settings are not
 * touched. Returns 0, or RTCMS_ECONFIG with the problem in err, or
 * RTCMS_EINVAL if a field lies outside live.
 */
int reload_load(const struct reload_settings *s, const char *path, void *fresh,
		char *err, size_t errlen);

/* The field f of s->fields, pointing into fresh instead of live (to apply
 * a command-line override to fresh with config_set). */
struct config_field reload_field(const struct reload_settings *s,
				 const struct config_field *f, void *fresh);

/*
 * The settings that differ between running (the settings the daemon runs
 * with, laid out like live; often live itself) and fresh, except those
 * named in skip (NULL-terminated, may be NULL), as "[section] name, ..."
 * into out. Returns their count.
 */
size_t reload_changed(const struct reload_settings *s, const void *running,
		      const void *fresh, const char *const *skip, char *out,
		      size_t outlen);

/*
 * Check a log level setting (a name) against the threshold now: *to gets
 * it, out what a switch does ("log level debug -> info", or "log level
 * info" if unchanged). Nothing is applied. 0, or RTCMS_EINVAL (out says
 * why).
 */
int reload_log_level(const char *level, enum log_level *to, char *out, size_t outlen);

/*
 * Log the SIGHUP's summary (info) and switch the threshold to `to`: the
 * line is logged under the more verbose of the two levels, so a switch
 * to debug shows it, and so does one from debug to warn.
 */
void reload_announce(enum log_level to, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/*
 * Call fn(ctx) on the loop thread at every SIGHUP. The handler lives on
 * uv_default_loop(), the loop every rtcms daemon runs, and does not keep
 * the loop alive: the daemon's shutdown closes it with every other handle
 * (rpc_close_all, the store's close walk). Call before the daemon's loop
 * starts. Returns 0 or RTCMS_EIO.
 */
int reload_on_sighup(void (*fn)(void *ctx), void *ctx);

#endif
