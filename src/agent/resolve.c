/*
 * resolve.c - a program frozen too long (resolve.h).
 *
 * A migration freezes its program; the manager then THAWs or STOPs it. If
 * that manager died on the way, nobody will: after freeze_hold the agent
 * asks a manager to decide from the store (RESOLVE): the program was
 * committed elsewhere (STOP), or the move never committed (THAW), or a
 * move is still under way (WAIT: ask again in a second).
 */
#include "resolve.h"

#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log/log.h"
#include "proc.h"
#include "rtcms_error.h"

struct resolve_job {
	struct agent *a;
	struct aproc *p;               /* with a reference */
};

static void apply_verdict(struct agent *a, struct aproc *p, uint32_t verdict,
			  const char *who)
{
	uv_mutex_lock(&a->lock);
	if (p->state != AP_FROZEN) {
		uv_mutex_unlock(&a->lock);
		return;
	}
	if (verdict == PROTO_VERDICT_STOP) {
		p->exit_told = ~0u; /* it lives on elsewhere */
		uv_mutex_unlock(&a->lock);
		proc_signal(a, p, SIGKILL);
		log_prog(LOG_WARN, p->id, proc_incarnation(p), 0,
			 "[%s -> agent] RESOLVE %s: it runs elsewhere now; frozen instance "
			 "pid %d killed", who, p->id, (int)p->pid);
		return;
	}
	if (verdict == PROTO_VERDICT_THAW) {
		p->state = AP_RUNNING;
		uv_mutex_unlock(&a->lock);
		proc_signal(a, p, SIGCONT);
		log_prog(LOG_WARN, p->id, proc_incarnation(p), 0,
			 "[%s -> agent] RESOLVE %s: the move never committed; pid %d goes on",
			 who, p->id, (int)p->pid);
		return;
	}
	/* WAIT, or no manager answered: ask again in a second */
	p->frozen_ms = agent_mono_ms() - a->cfg.freeze_hold_ms + 1000;
	uv_mutex_unlock(&a->lock);
}

static void *resolve_thread(void *arg)
{
	struct resolve_job *j = arg;
	struct agent *a = j->a;
	struct aproc *p = j->p;
	uint32_t verdict = PROTO_VERDICT_WAIT;
	char who[PROTO_ID_MAX + 1] = "agent";

	/* a newer instance of it adopted here (a move to this same node)? */
	uv_mutex_lock(&a->lock);
	for (struct aproc *o = a->procs; o; o = o->next)
		if (o != p && strcmp(o->id, p->id) == 0 && o->state == AP_RUNNING &&
		    o->incarnation > p->incarnation)
			verdict = PROTO_VERDICT_STOP;
	uv_mutex_unlock(&a->lock);
	for (size_t i = 0; i < a->mgr_count && verdict == PROTO_VERDICT_WAIT; i++) {
		struct net_client *c = NULL;
		struct proto_header h;
		union proto_msg q, r;
		memset(&q, 0, sizeof(q));
		snprintf(q.ref.process, sizeof(q.ref.process), "%s", p->id);
		q.ref.incarnation = p->incarnation;
		int rc = net_client_connect(a->mgrs[i].addr, &a->key, PROTO_ROLE_AGENT,
					    a->cfg.name, (int)a->cfg.io_timeout_ms, &c);
		if (rc == 0)
			rc = net_client_call(c, PROTO_RESOLVE, &q, PROTO_RESOLVE_OK, &h, &r);
		if (rc == 0 && r.ref.arg >= PROTO_VERDICT_STOP && r.ref.arg <= PROTO_VERDICT_WAIT) {
			verdict = r.ref.arg;
			snprintf(who, sizeof(who), "%s", net_client_peer(c));
		}
		net_client_free(c);
	}
	apply_verdict(a, p, verdict, who);
	uv_mutex_lock(&a->lock);
	p->resolving = false;
	uv_mutex_unlock(&a->lock);
	proc_unref(a, p);
	free(j);
	return NULL;
}

/* With agent.lock held: ask the managers about p on a thread of its own. */
static void resolve_start(struct agent *a, struct aproc *p)
{
	struct resolve_job *j = calloc(1, sizeof(*j));
	pthread_attr_t attr;
	pthread_t t;

	if (!j)
		return;
	j->a = a;
	j->p = p;
	p->refs++;
	p->resolving = true;
	log_prog(LOG_WARN, p->id, proc_incarnation(p), 0,
		 "[program %s] frozen for %" PRIu64 " ms without THAW or STOP (its "
		 "manager may have died): asking the managers", p->id,
		 agent_mono_ms() - p->frozen_ms);
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	if (pthread_create(&t, &attr, resolve_thread, j) != 0) {
		p->refs--;
		p->resolving = false;
		free(j);
	}
	pthread_attr_destroy(&attr);
}

void resolve_due(struct agent *a)
{
	uint64_t now = agent_mono_ms();
	uv_mutex_lock(&a->lock);
	for (struct aproc *p = a->procs; p; p = p->next)
		if (p->state == AP_FROZEN && !p->resolving &&
		    now - p->frozen_ms >= a->cfg.freeze_hold_ms)
			resolve_start(a, p);
	uv_mutex_unlock(&a->lock);
}
