/* notify.c - sd_notify readiness, status and watchdog (notify.h). */
#include "notify.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <systemd/sd-daemon.h>

#include "log/log.h"
#include "rtcms_error.h"

#define STATUS_EVERY_MS 1000   /* the daemon's status is asked this often */

static struct {
	uv_mutex_t lock;               /* guards last (any thread sends STATUS=) */
	bool lock_made;
	char last[512];                /* the STATUS= text sent last */
	uv_timer_t timer;
	bool timer_on;                 /* initialised and not yet closed */
	bool watchdog;                 /* WATCHDOG=1 at every tick */
	uint64_t period_ms;
	uint64_t since_status_ms;      /* ms of ticks since the status was asked */
	notify_status_fn status;
	void *ctx;
} nt;

bool notify_enabled(void)
{
	const char *s = getenv("NOTIFY_SOCKET");
	return s && s[0];
}

/* Send "head" and, if text is not NULL, "STATUS=text" when it changed
 * (always with a head). */
static void send_state(const char *head, const char *text)
{
	char msg[600];
	bool changed = false;

	if (!notify_enabled())
		return;
	if (!nt.lock_made) { /* before notify_start: the main thread alone */
		uv_mutex_init(&nt.lock);
		nt.lock_made = true;
	}
	uv_mutex_lock(&nt.lock);
	if (text && strcmp(text, nt.last) != 0) {
		snprintf(nt.last, sizeof(nt.last), "%s", text);
		changed = true;
	}
	uv_mutex_unlock(&nt.lock);
	if (!head && !changed)
		return;
	snprintf(msg, sizeof(msg), "%s%s%s%s", head ? head : "",
		 head && text ? "\n" : "", text ? "STATUS=" : "", text ? text : "");
	int rc = sd_notify(0, msg);
	if (rc < 0)
		log_debug("sd_notify: %s", strerror(-rc));
}

static void on_tick(uv_timer_t *t)
{
	char buf[512];
	(void)t;
	if (nt.watchdog)
		sd_notify(0, "WATCHDOG=1");
	nt.since_status_ms += nt.period_ms;
	if (nt.status && nt.since_status_ms >= STATUS_EVERY_MS) {
		nt.since_status_ms = 0;
		if (nt.status(nt.ctx, buf, sizeof(buf)))
			send_state(NULL, buf);
	}
}

int notify_start(uv_loop_t *loop, notify_status_fn status, void *ctx)
{
	uint64_t usec = 0;

	if (!notify_enabled())
		return 0;
	if (!nt.lock_made) {
		uv_mutex_init(&nt.lock);
		nt.lock_made = true;
	}
	nt.status = status;
	nt.ctx = ctx;
	nt.watchdog = sd_watchdog_enabled(0, &usec) > 0 && usec > 0;
	nt.period_ms = STATUS_EVERY_MS;
	if (nt.watchdog) {
		uint64_t half = usec / 2000;
		nt.period_ms = half == 0 ? 1 : half < STATUS_EVERY_MS ? half : STATUS_EVERY_MS;
		log_info("systemd watchdog: %" PRIu64 " ms, kicked every %" PRIu64 " ms from "
			 "the event loop", usec / 1000, nt.period_ms);
	}
	nt.since_status_ms = STATUS_EVERY_MS; /* the first tick asks */
	if (uv_timer_init(loop, &nt.timer) != 0 ||
	    uv_timer_start(&nt.timer, on_tick, nt.period_ms, nt.period_ms) != 0) {
		log_warn("cannot start the systemd watchdog timer: the daemon runs unwatched");
		return RTCMS_EIO;
	}
	uv_unref((uv_handle_t *)&nt.timer);
	nt.timer_on = true;
	return 0;
}

static void notify_vsend(const char *head, const char *fmt, va_list ap)
{
	char text[512];
	vsnprintf(text, sizeof(text), fmt, ap);
	send_state(head, text);
}

void notify_ready(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	notify_vsend("READY=1", fmt, ap);
	va_end(ap);
}

void notify_status(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	notify_vsend(NULL, fmt, ap);
	va_end(ap);
}

void notify_stopping(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	notify_vsend("STOPPING=1", fmt, ap);
	va_end(ap);
	if (nt.timer_on) {
		nt.timer_on = false;
		if (!uv_is_closing((uv_handle_t *)&nt.timer))
			uv_close((uv_handle_t *)&nt.timer, NULL);
	}
}
