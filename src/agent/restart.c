/*
 * restart.c - what the agent does when one of its programs ends (restart.h):
 * reaping it, and the restart policy.
 *
 * The restart policy is systemd's Restart=, per program: on-failure (the
 * default: a non-zero exit or a signal), always (a clean exit too), never.
 * A crashed program is restarted HERE, from the newest checkpoint this
 * agent holds (captured from its area at the crash: no network, no store),
 * under the same incarnation, at once the first time, then after a
 * back-off (restart_backoff, doubled per restart); more than max_restarts within restart_window and the agent
 * gives up: the program is reported FAILED with the reason and the
 * managers move it to another node once. A program the agent killed
 * itself (STOP after a move, its lease lapsed, shutdown, a restore never
 * adopted) is never restarted here: a fenced one is reported GONE and the
 * managers' reconciliation restores it.
 */
#include "restart.h"

#include <inttypes.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "area/area.h"
#include "launch.h"
#include "log/log.h"
#include "proc.h"
#include "proto/spec.h"
#include "rtcms_error.h"
#include "stats.h"

void restart_reap(struct agent *a)
{
	uv_mutex_lock(&a->lock);
	for (struct aproc *p = a->procs; p; p = p->next) {
		if (p->state == AP_EXITED || p->pid <= 0)
			continue;
		int st;
		pid_t r = waitpid(p->pid, &st, WNOHANG);
		if (r != p->pid)
			continue;
		p->status = st;
		enum aproc_state was = p->state;
		p->state = AP_EXITED;
		if (WIFEXITED(st))
			log_prog(LOG_INFO, p->id, proc_incarnation(p), 0,
				 "[program %s] pid %d exited with status %d", p->id,
				 (int)p->pid, WEXITSTATUS(st));
		else
			log_prog(LOG_INFO, p->id, proc_incarnation(p), 0,
				 "[program %s] pid %d killed by signal %d", p->id,
				 (int)p->pid, WTERMSIG(st));
		/* a restart here, finished, failed, or gone (restart.c); a
		 * frozen instance stopped after its move, a restore never
		 * adopted or a fenced program is not news for EXITED */
		restart_decide(a, p, agent_mono_ms(), was);
		a->procs_gen++;
	}
	/* children no longer in the table (never expected) must not linger
	 * as zombies */
	int st;
	while (waitpid(-1, &st, WNOHANG) > 0)
		;
	uv_mutex_unlock(&a->lock);
	proc_wake_outbox(a);
}

/* The policy s names into *out; false if s names none. */
static bool policy_parse(const char *s, enum agent_restart *out)
{
	if (strcmp(s, "on-failure") == 0)
		*out = AGENT_RESTART_ON_FAILURE;
	else if (strcmp(s, "always") == 0)
		*out = AGENT_RESTART_ALWAYS;
	else if (strcmp(s, "never") == 0)
		*out = AGENT_RESTART_NEVER;
	else
		return false;
	return true;
}

bool agent_restart_valid(const char *s)
{
	enum agent_restart r;
	return policy_parse(s, &r);
}

/* The program's own policy (RTCMS_RESTART in its spec), else the agent's. */
static enum agent_restart policy_of(const struct agent *a, const struct aproc *p)
{
	struct proto_spec sp;
	char arena[PROTO_SPEC_MAX + 512];
	enum agent_restart r;
	if (p->spec && proto_spec_decode(p->spec, p->spec_len, &sp, arena, sizeof(arena)) == 0)
		for (uint16_t i = 0; i < sp.envc; i++)
			if (strncmp(sp.env[i], "RTCMS_RESTART=", 14) == 0 &&
			    policy_parse(sp.env[i] + 14, &r))
				return r;
	return policy_parse(a->cfg.restart, &r) ? r : AGENT_RESTART_ON_FAILURE;
}

static void how(int st, char *buf, size_t len)
{
	if (WIFEXITED(st))
		snprintf(buf, len, "exit status %d", WEXITSTATUS(st));
	else
		snprintf(buf, len, "killed by signal %d", WTERMSIG(st));
}

void restart_decide(struct agent *a, struct aproc *p, uint64_t now, enum aproc_state was)
{
	char h[48];
	int st = p->status;
	bool clean = WIFEXITED(st) && WEXITSTATUS(st) == 0;
	how(st, h, sizeof(h));
	p->exited_ms = now;
	p->restart_pending = false;
	/* killed by its own lease watchdog (or by us when the lease lapsed):
	 * fenced, not crashed; the managers restore it */
	bool fenced = (a->lease_until && now >= a->lease_until) ||
		     (WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL && a->lapses != p->started_lapses);
	bool stopped = fenced || p->killed || was == AP_FROZEN || was == AP_RESTORING ||
		       p->incarnation == 0;
	metric_counter_inc(&agent_stats.exits[fenced ? AEXIT_FENCED : stopped ? AEXIT_STOPPED
					      : clean ? AEXIT_FINISHED : AEXIT_CRASHED]);
	if (stopped) {
		p->outcome = PROTO_AP_GONE;
		p->exit_told = ~0u; /* not news for the managers: not ended */
		snprintf(p->reason, sizeof(p->reason), "%s%s", fenced ? "fenced (lease lapsed): "
			 : p->killed ? "stopped by the agent: " : "", h);
		if (fenced)
			log_prog(LOG_INFO, p->id, proc_incarnation(p), 0,
				 "[program %s] fenced: the lease had lapsed; the managers "
				 "restore it", p->id);
		return;
	}
	enum agent_restart policy = policy_of(a, p);
	if (clean && policy != AGENT_RESTART_ALWAYS) {
		p->outcome = PROTO_AP_FINISHED;
		snprintf(p->reason, sizeof(p->reason), "finished: %s", h);
		return; /* EXITED tells the managers */
	}
	if (policy == AGENT_RESTART_NEVER) {
		p->outcome = PROTO_AP_FAILED;
		snprintf(p->reason, sizeof(p->reason), "restart=never: %s", h);
		log_prog(LOG_WARN, p->id, proc_incarnation(p), 0,
			 "[program %s] %s; not restarted (restart = never)", p->id, h);
		return; /* EXITED tells the managers */
	}
	if (!p->window_start || now - p->window_start > a->cfg.restart_window_ms) {
		p->window_start = now;
		p->restarts = 0;
	}
	if (p->restarts >= a->cfg.max_restarts) {
		metric_counter_inc(&agent_stats.restarts[ARESTART_GAVE_UP]);
		p->outcome = PROTO_AP_FAILED;
		p->exit_told = ~0u; /* the managers move it, from the report */
		snprintf(p->reason, sizeof(p->reason), "gave up after %u restarts in %" PRIu64
			 " s: %s", p->restarts, a->cfg.restart_window_ms / 1000, h);
		log_prog(LOG_ERROR, p->id, proc_incarnation(p), 0,
			 "[program %s] %s; the managers move it to another node", p->id,
			 p->reason);
		return;
	}
	/* the first restart at once (a crash is repaired within a memory copy
	 * and a program start), then restart_backoff, doubled each time */
	uint64_t backoff = p->restarts ? a->cfg.restart_backoff_ms : 0;
	for (uint32_t i = 1; i < p->restarts && backoff < 10000; i++)
		backoff *= 2;
	p->outcome = PROTO_AP_RESTARTING;
	p->restart_pending = true;
	p->restart_at = now + backoff;
	p->exit_told = ~0u; /* it is not gone: no EXITED */
	snprintf(p->reason, sizeof(p->reason), "%s, restart %u in %" PRIu64 " ms", h,
		 p->restarts + 1, backoff);
	log_prog(LOG_WARN, p->id, proc_incarnation(p), 0,
		 "[program %s] %s: restarting it here from its newest checkpoint in %"
		 PRIu64 " ms (restart %u of at most %" PRIu64 " in %" PRIu64 " s)", p->id, h,
		 backoff, p->restarts + 1, a->cfg.max_restarts, a->cfg.restart_window_ms / 1000);
}

/* Restart p (exited, pending): a new instance of the same incarnation
 * whose area starts with the newest checkpoint of p's area. Pool thread;
 * lock not held. */
static void restart_one(struct agent *a, struct aproc *p)
{
	char err[256];
	struct aproc *np = NULL;

	/* the checkpoint the crashed program committed last: its area is
	 * still mapped and nobody writes it any more (else from the start) */
	uint64_t seq = area_committed_sequence(p->area);
	uint64_t t0 = agent_mono_ms();
	struct launch_req r = {
		.id = p->id, .incarnation = p->incarnation, .spec = p->spec,
		.spec_len = p->spec_len, .from_area = seq ? p->area : NULL,
	};
	int rc = launch_start(a, &r, &np, err, sizeof(err));
	metric_counter_inc(&agent_stats.restarts[rc ? ARESTART_FAILED : ARESTART_RESTARTED]);
	uv_mutex_lock(&a->lock);
	p->superseded = true;
	if (rc == 0) {
		np->state = AP_RUNNING; /* it refills itself from the area */
		np->restarts = p->restarts + 1;
		np->window_start = p->window_start;
		np->started_lapses = a->lapses;
		np->copy_full = p->copy_full;
		snprintf(np->reason, sizeof(np->reason), "restarted after %.100s", p->reason);
		proc_seen_record(a, np->id, np->incarnation);
		log_prog(LOG_INFO, np->id, proc_incarnation(np), seq,
			 "[program %s] restarted as pid %d from checkpoint %" PRIu64 " in %"
			 PRIu64 " ms (restart %u)", np->id, (int)np->pid, seq,
			 agent_mono_ms() - t0, np->restarts);
		np->refs--; /* proc_launch's reference */
	} else {
		p->outcome = PROTO_AP_FAILED;
		snprintf(p->reason, sizeof(p->reason), "gave up: restart failed: %.100s", err);
		p->superseded = false;
		log_prog(LOG_ERROR, p->id, proc_incarnation(p), seq,
			 "[program %s] cannot restart it: %s; the managers move it", p->id, err);
	}
	a->procs_gen++;
	uv_mutex_unlock(&a->lock);
	proc_wake_outbox(a);
}

struct restart_work {
	uv_work_t w;
	struct agent *a;
	struct aproc *p;
};

static void work_restart(uv_work_t *w)
{
	struct restart_work *rw = w->data;
	restart_one(rw->a, rw->p);
}

static void after_restart(uv_work_t *w, int status)
{
	struct restart_work *rw = w->data;
	(void)status;
	proc_unref(rw->a, rw->p);
	free(rw);
}

/* Loop: hand every program whose back-off is over to the pool. The capture
 * (a copy of the area) and the program's start run there, never on the
 * loop, which keeps serving the managers' pulls meanwhile. */
void restart_due(struct agent *a)
{
	uint64_t now = agent_mono_ms();
	for (;;) {
		struct aproc *due = NULL;
		uv_mutex_lock(&a->lock);
		for (struct aproc *p = a->procs; p && !due; p = p->next)
			if (p->restart_pending && !p->superseded && now >= p->restart_at &&
			    !a->stopping && !a->fenced && a->lease_until > now) {
				due = p;
				p->restart_pending = false;
				p->refs++;
			}
		uv_mutex_unlock(&a->lock);
		if (!due)
			return;
		struct restart_work *rw = a->loop ? calloc(1, sizeof(*rw)) : NULL;
		if (rw) {
			rw->w.data = rw;
			rw->a = a;
			rw->p = due;
			if (uv_queue_work(a->loop, &rw->w, work_restart, after_restart) == 0)
				continue;
			free(rw);
		}
		restart_one(a, due); /* no loop (tests) or no pool: here */
		proc_unref(a, due);
	}
}
