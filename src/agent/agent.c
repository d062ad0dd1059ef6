/*
 * agent.c - rtcms-agent's event loop (agent.h), the top of the agent:
 * the loop's phases call the modules below.
 *
 * Loop phases: accept manager connections (rpc_server, requests to
 * handlers.c); every poll interval, look at each program's commit pointer
 * and queue a capture of a new checkpoint on the pool (capture.c), pass a
 * program's own MIGRATE request on (outbox.c), restart crashed programs
 * whose back-off is over (restart.c); every 100 ms, sample /proc/stat; on
 * SIGCHLD, reap programs (restart.c); every heartbeat interval,
 * housekeeping (resolve.c, the `run =` programs of launch.c); on
 * SIGINT/SIGTERM, stop everything. The heartbeats (lease.c) and the
 * outbox (outbox.c) run on threads of their own.
 */
#include "agent_int.h"

#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "area/area.h"
#include "capture.h"
#include "daemon/hbthread.h"
#include "daemon/notify.h"
#include "daemon/rpc_server.h"
#include "handlers.h"
#include "launch.h"
#include "lease.h"
#include "log/log.h"
#include "net/addr.h"
#include "outbox.h"
#include "proc.h"
#include "resolve.h"
#include "restart.h"
#include "rtcms_error.h"
#include "spawn.h"

#define LEASE_WAIT_MS 2000

struct loop_state {
	struct agent *a;
	uv_timer_t poll, cpu, hb;
	struct hb_thread *hbt;         /* heartbeats and the lease (lease.h) */
	uv_signal_t sigchld, sigint, sigterm;
	struct rpc_server *srv;
};

struct capture_work {
	uv_work_t w;
	struct agent *a;
	struct aproc *p;
};

static void work_capture(uv_work_t *w)
{
	struct capture_work *cw = w->data;
	int rc = capture_take(cw->a, cw->p, NULL);
	if (rc)
		log_prog(LOG_WARN, cw->p->id, proc_incarnation(cw->p), 0,
			 "[program %s] capture failed: %s", cw->p->id, rtcms_strerror(rc));
}

static void after_capture(uv_work_t *w, int status)
{
	struct capture_work *cw = w->data;
	(void)status;
	uv_mutex_lock(&cw->a->lock);
	cw->p->capturing = false;
	cw->p->refs--;
	uv_cond_signal(&cw->a->wake);
	uv_mutex_unlock(&cw->a->lock);
	free(cw);
}

/* On the loop: what may block (RESOLVE, starting the `run =` programs). */
static void on_housekeeping(uv_timer_t *timer)
{
	struct loop_state *ls = timer->data;
	struct agent *a = ls->a;
	bool start_configured = false;

	resolve_due(a);
	uv_mutex_lock(&a->lock);
	if (!a->configured_started && a->lease_until > agent_mono_ms()) {
		a->configured_started = true;
		start_configured = true;
	}
	uv_mutex_unlock(&a->lock);
	if (start_configured)
		launch_configured(a); /* `run =` programs: only under a lease */
}

static void on_poll(uv_timer_t *t)
{
	struct loop_state *ls = t->data;
	struct agent *a = ls->a;

	uv_mutex_lock(&a->lock);
	for (struct aproc *p = a->procs; p; p = p->next) {
		if (p->state == AP_RUNNING) {
			struct area_header *h = p->area;
			if (atomic_load_explicit(&h->request, memory_order_acquire) &&
			    (atomic_exchange_explicit(&h->request, 0, memory_order_acq_rel) &
			     AREA_REQ_MIGRATE))
				outbox_request_migration(a, p);
		}
		if (p->capturing || (p->state != AP_RUNNING && p->state != AP_RESTORING))
			continue;
		uint64_t seq = area_committed_sequence(p->area);
		if (seq == 0 || (p->img && p->img->sequence == seq))
			continue;
		/* the managers pull at their own pace: a newer checkpoint is
		 * captured (its changed blocks hashed) once they took the last
		 * one, a PULL found it rewritten in the area, or it is
		 * capture_lag old (no manager reachable) */
		if (p->img && !p->img->pulled && !p->img->gone && p->state == AP_RUNNING &&
		    agent_mono_ms() - p->img->captured_ms < a->cfg.capture_lag_ms)
			continue;
		struct capture_work *cw = calloc(1, sizeof(*cw));
		if (!cw)
			break;
		cw->w.data = cw;
		cw->a = a;
		cw->p = p;
		p->capturing = true;
		p->refs++;
		if (uv_queue_work(a->loop, &cw->w, work_capture, after_capture) != 0) {
			p->capturing = false;
			p->refs--;
			free(cw);
		}
	}
	uv_mutex_unlock(&a->lock);
	restart_due(a); /* crashed programs whose back-off is over */
}

static void on_cpu(uv_timer_t *t)
{
	struct loop_state *ls = t->data;
	struct cpu_sample s;
	if (sysinfo_stat_read(&s) == 0) {
		uv_mutex_lock(&ls->a->lock);
		sysinfo_window_add(&ls->a->cpu, &s);
		uv_mutex_unlock(&ls->a->lock);
	}
}

static void on_sigchld(uv_signal_t *s, int signum)
{
	struct loop_state *ls = s->data;
	(void)signum;
	restart_reap(ls->a);
}

static void on_stop(uv_signal_t *s, int signum)
{
	struct loop_state *ls = s->data;
	struct agent *a = ls->a;

	log_info("signal %d: stopping; the programs of this agent are stopped too",
		 signum);
	notify_stopping("signal %d: stopping its programs (SIGKILL), then itself", signum);
	uv_mutex_lock(&a->lock);
	a->stopping = true;
	for (struct aproc *p = a->procs; p; p = p->next)
		proc_kill(a, p, SIGKILL);
	uv_cond_signal(&a->wake);
	uv_mutex_unlock(&a->lock);
	rpc_server_stop(ls->srv);
	ls->srv = NULL;
	rpc_close_all(a->loop);
}

/* STATUS= for systemd (daemon/notify.h): programs, managers, the lease. */
static bool status_line(void *ctx, char *buf, size_t len)
{
	struct agent *a = ctx;
	size_t running = 0, registered = 0;
	uv_mutex_lock(&a->lock);
	for (struct aproc *p = a->procs; p; p = p->next)
		if (p->state != AP_EXITED)
			running++;
	for (size_t i = 0; i < a->mgr_count; i++)
		if (a->mgrs[i].registered)
			registered++;
	bool fenced = a->fenced;
	uv_mutex_unlock(&a->lock);
	snprintf(buf, len, "node %016" PRIx64 " at %s: %zu programs; registered with %zu "
		 "of %zu managers%s", a->node, a->address, running, registered, a->mgr_count,
		 fenced ? "; lease lapsed: programs fenced" : "");
	return true;
}

/* The control server on the loop; the bound address into bound. */
static int server_start(struct loop_state *ls, char *bound, size_t cap)
{
	struct agent *a = ls->a;
	struct rpc_server_options so = {
		.listen = a->cfg.listen,
		.key = &a->key,
		.role = PROTO_ROLE_AGENT,
		.name = a->cfg.name,
		.io_timeout_ms = (int)a->cfg.io_timeout_ms,
		.idle_timeout_ms = 60000,
		.max_connections = 32,
		.handler = agent_handle,
		.ctx = a,
	};
	int rc = rpc_server_start(a->loop, &so, &ls->srv, bound, cap);
	if (rc)
		return rc;
	snprintf(a->address, sizeof(a->address), "%s",
		 a->cfg.advertise[0] ? a->cfg.advertise : bound);
	log_info("listening on %s as node %016" PRIx64 " (%s), quota %" PRIu64
		 " programs, area %" PRIu64 " MiB each", bound, a->node, a->cfg.name,
		 a->cfg.quota, a->cfg.area_capacity >> 20);
	return 0;
}

/* The loop's signals and timers. */
static void loop_handles_start(struct loop_state *ls)
{
	struct agent *a = ls->a;

	uv_signal_init(a->loop, &ls->sigchld);
	ls->sigchld.data = ls;
	uv_signal_start(&ls->sigchld, on_sigchld, SIGCHLD);
	uv_signal_init(a->loop, &ls->sigint);
	ls->sigint.data = ls;
	uv_signal_start(&ls->sigint, on_stop, SIGINT);
	uv_signal_init(a->loop, &ls->sigterm);
	ls->sigterm.data = ls;
	uv_signal_start(&ls->sigterm, on_stop, SIGTERM);
	uv_timer_init(a->loop, &ls->poll);
	ls->poll.data = ls;
	uv_timer_start(&ls->poll, on_poll, a->cfg.poll_ms, a->cfg.poll_ms);
	uv_timer_init(a->loop, &ls->cpu);
	ls->cpu.data = ls;
	on_cpu(&ls->cpu);
	uv_timer_start(&ls->cpu, on_cpu, 100, 100);
}

/* The heartbeat thread and the housekeeping timer that goes with it. */
static int heartbeat_start(struct loop_state *ls, const char *bound)
{
	struct agent *a = ls->a;
	int rc = lease_start(a, bound, &ls->hbt);
	if (rc)
		return rc;
	uv_timer_init(a->loop, &ls->hb);
	ls->hb.data = ls;
	uv_timer_start(&ls->hb, on_housekeeping, 0, a->cfg.heartbeat_ms);
	return 0;
}

int agent_run(struct agent *a)
{
	struct loop_state ls = { .a = a };
	char bound[PROTO_ADDR_MAX + 1];
	int rc;

	a->loop = uv_default_loop();
	if ((rc = server_start(&ls, bound, sizeof(bound))) != 0)
		return rc;
	loop_handles_start(&ls);
	if ((rc = heartbeat_start(&ls, bound)) != 0)
		return rc;
	if (outbox_start(a) != 0) {
		log_error("cannot start the outbox thread");
		return RTCMS_ENOMEM;
	}
	if (a->cfg.ready_file[0] && rpc_write_ready_file(a->cfg.ready_file, bound) != 0)
		log_warn("cannot write the ready file %s", a->cfg.ready_file);
	/* serving: listening, heartbeating and registering (the managers may
	 * answer later: STATUS= says with how many it is registered) */
	notify_start(a->loop, status_line, a);
	char status[512];
	status_line(a, status, sizeof(status));
	notify_ready("%s", status);

	uv_run(a->loop, UV_RUN_DEFAULT);
	hb_thread_stop(ls.hbt);
	outbox_join(a);
	/* reap what we killed */
	for (struct aproc *p = a->procs; p; p = p->next)
		if (p->state != AP_EXITED && p->pid > 0)
			waitpid(p->pid, NULL, 0);
	uv_loop_close(a->loop);
	a->loop = NULL;
	log_info("stopped");
	return 0;
}

void agent_config_defaults(struct agent_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	snprintf(cfg->listen, sizeof(cfg->listen), "127.0.0.1:7500");
	snprintf(cfg->log_level, sizeof(cfg->log_level), "info");
	cfg->area_capacity = 64ull << 20;
	cfg->quota = 8;
	cfg->poll_ms = 5;
	cfg->capture_lag_ms = 1000;
	cfg->freeze_timeout_ms = 2000;
	cfg->restore_timeout_ms = 10000;
	cfg->adopt_timeout_ms = 10000;
	cfg->freeze_hold_ms = 45000;
	cfg->io_timeout_ms = 5000;
	cfg->heartbeat_ms = 50;
	cfg->lease_ms = 200;
	snprintf(cfg->restart, sizeof(cfg->restart), "on-failure");
	cfg->restart_backoff_ms = 100;
	cfg->max_restarts = 5;
	cfg->restart_window_ms = 60000;
}

/* The managers of a->cfg into a->mgrs. 0 or RTCMS_EINVAL with err. */
static int managers_parse(struct agent *a, char *err, size_t errlen)
{
	for (size_t i = 0; i < a->cfg.managers.count; i++) {
		const char *m = a->cfg.managers.items[i];
		size_t len = strlen(m);
		if (len > PROTO_ADDR_MAX) {
			snprintf(err, errlen, "manager \"%.40s...\": an address is at most %d "
				 "characters", m, PROTO_ADDR_MAX);
			return RTCMS_EINVAL;
		}
		memcpy(a->mgrs[i].addr, m, len + 1);
		if (net_addr_parse(m, 0, &a->mgrs[i].udp) != 0) {
			snprintf(err, errlen, "manager \"%s\": expected HOST:PORT with a numeric "
				 "address", m);
			return RTCMS_EINVAL;
		}
		a->mgr_count++;
	}
	return 0;
}

int agent_new(const struct agent_config *cfg, const struct proto_key *key, uint64_t node,
	      struct agent **out, char *err, size_t errlen)
{
	uint64_t avail;
	int rc;

	*out = NULL;
	struct agent *a = calloc(1, sizeof(*a));
	if (!a) {
		snprintf(err, errlen, "no memory");
		return RTCMS_ENOMEM;
	}
	a->cfg = *cfg;
	a->key = *key;
	a->node = node;
	a->launcher = &spawn_launcher;
	a->lease_wait_ms = LEASE_WAIT_MS;
	a->lease_ms = cfg->lease_ms;
	randombytes_buf(a->boot, sizeof(a->boot));
	sysinfo_meminfo_read(&a->mem_total, &avail);
	/* shared with the real-time heartbeat thread: priority inheritance */
	if (rt_mutex_init(&a->lock) != 0)
		log_warn("no priority inheritance for the main lock: a loaded machine can "
			 "delay heartbeats behind it");
	if (uv_cond_init(&a->wake) != 0) {
		snprintf(err, errlen, "no memory");
		rc = RTCMS_ENOMEM;
		goto out_lock;
	}
	rc = managers_parse(a, err, errlen);
	if (rc)
		goto out_cond;
	*out = a;
	return 0;
out_cond:
	uv_cond_destroy(&a->wake);
out_lock:
	uv_mutex_destroy(&a->lock);
	sodium_memzero(&a->key, sizeof(a->key));
	free(a);
	return rc;
}

void agent_free(struct agent *a)
{
	if (!a)
		return;
	while (a->procs) {
		struct aproc *p = a->procs;
		a->procs = p->next;
		image_free(p->img);
		proc_free(a, p);
	}
	uv_cond_destroy(&a->wake);
	uv_mutex_destroy(&a->lock);
	sodium_memzero(&a->key, sizeof(a->key));
	datakey_ring_wipe(&a->data_keys);
	free(a);
}

void agent_set_data_keys(struct agent *a, const struct datakey_ring *ring)
{
	a->data_keys = *ring;
	a->seal_key = ring->count ? datakey_active(&a->data_keys) : NULL;
}
