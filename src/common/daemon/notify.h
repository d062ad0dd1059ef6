/*
 * notify.h - the daemons under systemd (Type=notify): READY=1 once the
 * daemon serves, STATUS= lines when its state changes, WATCHDOG=1 from
 * its event loop, STOPPING=1 when it shuts down (sd_notify(3), libsystemd).
 *
 * Without systemd (NOTIFY_SOCKET unset) every call is a no-op and no
 * timer is started. With WATCHDOG_USEC set (sd_watchdog_enabled(3): the
 * unit's WatchdogSec=), a timer on the daemon's loop kicks the watchdog
 * every half interval, so a loop that is wedged stops kicking it and
 * systemd restarts the daemon. The same tick asks the daemon for its
 * status (at most once a second) and sends STATUS= when it changed.
 *
 * The timer is unreferenced (it never keeps the loop alive) and closed
 * by notify_stopping(). Functions may be called from any thread but
 * notify_start() and notify_stopping(), which belong to the loop thread.
 */
#ifndef RTCMS_DAEMON_NOTIFY_H
#define RTCMS_DAEMON_NOTIFY_H

#include <stdbool.h>
#include <stddef.h>
#include <uv.h>

/* The daemon's status now, as one line into buf (len bytes), e.g.
 * "serving on 127.0.0.1:7400: 2 of 2 mirrors online". Called on the
 * loop thread; must not block (take locks only briefly). Returns false
 * if it cannot tell now (the status stays as it was). */
typedef bool (*notify_status_fn)(void *ctx, char *buf, size_t len);

/* Whether the daemon runs under a service manager that listens
 * (NOTIFY_SOCKET is set). */
bool notify_enabled(void);

/* Start the watchdog and status tick on loop (status may be NULL). A
 * no-op without NOTIFY_SOCKET. Returns 0, or RTCMS_EIO if the timer
 * cannot start (logged; the daemon runs on, unwatched). */
int notify_start(uv_loop_t *loop, notify_status_fn status, void *ctx);

/* READY=1 with STATUS= the daemon's status (or the text given). */
void notify_ready(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* STATUS= text, if it differs from the last one sent. */
void notify_status(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* STOPPING=1 with STATUS= text; stops and closes the tick's timer. Call
 * once, on the loop thread, when the daemon begins to shut down. */
void notify_stopping(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
