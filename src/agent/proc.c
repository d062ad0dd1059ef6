/*
 * proc.c - the agent's process table (proc.h).
 */
#include "proc.h"

#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rtcms_error.h"
#include "stream/chunk.h"

#define EXITED_LINGER_MS 10000 /* an ended program stays in the report */

/* The first entry of id that is not exited and matches: any live state
 * but AP_FROZEN (want_frozen false), or exactly state. With a reference. */
static struct aproc *find(struct agent *a, const char *id, bool any_unfrozen,
			  enum aproc_state state)
{
	uv_mutex_lock(&a->lock);
	struct aproc *p = a->procs;
	for (; p; p = p->next)
		if (strcmp(p->id, id) == 0 && p->state != AP_EXITED &&
		    (any_unfrozen ? p->state != AP_FROZEN : p->state == state))
			break;
	if (p)
		p->refs++;
	uv_mutex_unlock(&a->lock);
	return p;
}

struct aproc *proc_find_live(struct agent *a, const char *id)
{
	return find(a, id, true, AP_RUNNING);
}

struct aproc *proc_find_state(struct agent *a, const char *id, enum aproc_state state)
{
	return find(a, id, false, state);
}

void proc_unref(struct agent *a, struct aproc *p)
{
	if (!p)
		return;
	uv_mutex_lock(&a->lock);
	p->refs--;
	uv_mutex_unlock(&a->lock);
}

int proc_seal_spec(struct agent *a, struct aproc *p, char *err, size_t errlen)
{
	if (!a->seal_key || !p->spec_len)
		return 0;
	size_t cap = (size_t)p->spec_len + STREAM_SPEC_SEALED_EXTRA;
	p->sealed_spec = malloc(cap);
	int n = p->sealed_spec ? stream_spec_seal(a->seal_key, p->id, p->spec, p->spec_len,
						  p->sealed_spec, cap)
			       : RTCMS_ENOMEM;
	if (n < 0 || n > PROTO_SPEC_MAX) {
		free(p->sealed_spec);
		p->sealed_spec = NULL;
		snprintf(err, errlen, "cannot seal the program's spec of %" PRIu32 " bytes: %s",
			 p->spec_len, n < 0 ? rtcms_strerror(n) : "too long");
		return n < 0 ? n : RTCMS_ETOOBIG;
	}
	p->sealed_spec_len = (uint32_t)n;
	return 0;
}

void proc_ckpt_spec(const struct aproc *p, const uint8_t **spec, uint32_t *len)
{
	*spec = p->sealed_spec ? p->sealed_spec : p->spec;
	*len = p->sealed_spec ? p->sealed_spec_len : p->spec_len;
}

void proc_free(struct agent *a, struct aproc *p)
{
	if (!p)
		return;
	a->launcher->release(a->launcher_ctx, p);
	free(p->spec);
	free(p->sealed_spec);
	uv_mutex_destroy(&p->cap_lock);
	free(p);
}

void proc_kill(struct agent *a, struct aproc *p, int sig)
{
	if (p->pid > 0 && p->state != AP_EXITED) {
		if (sig == SIGKILL)
			p->killed = true; /* not a crash: never restarted here */
		a->launcher->signal(a->launcher_ctx, p, sig);
	}
}

void proc_signal(struct agent *a, struct aproc *p, int sig)
{
	a->launcher->signal(a->launcher_ctx, p, sig);
}

void proc_seen_record(struct agent *a, const char *id, uint64_t inc)
{
	for (size_t i = 0; i < a->seen_count; i++)
		if (strcmp(a->seen[i].id, id) == 0) {
			if (inc > a->seen[i].inc)
				a->seen[i].inc = inc;
			return;
		}
	size_t i = a->seen_count < AGENT_SEEN_MAX ? a->seen_count++
						  : a->seen_next++ % AGENT_SEEN_MAX;
	snprintf(a->seen[i].id, sizeof(a->seen[i].id), "%s", id);
	a->seen[i].inc = inc;
}

uint64_t proc_seen_incarnation(struct agent *a, const char *id)
{
	uint64_t max = 0;
	uv_mutex_lock(&a->lock);
	for (size_t i = 0; i < a->seen_count; i++)
		if (strcmp(a->seen[i].id, id) == 0)
			max = a->seen[i].inc;
	for (struct aproc *p = a->procs; p; p = p->next)
		if (strcmp(p->id, id) == 0 && p->state != AP_RESTORING && p->incarnation > max)
			max = p->incarnation;
	uv_mutex_unlock(&a->lock);
	return max;
}

int proc_running_count(struct agent *a)
{
	int n = 0;
	for (struct aproc *p = a->procs; p; p = p->next)
		if (p->state != AP_EXITED)
			n++;
	return n;
}

int proc_room(struct agent *a, const char *id, char *why, size_t len)
{
	uv_mutex_lock(&a->lock);
	int running = proc_running_count(a);
	bool dup = false;
	for (struct aproc *p = a->procs; p; p = p->next)
		if (strcmp(p->id, id) == 0 && p->state != AP_EXITED &&
		    p->state != AP_FROZEN)
			dup = true;
	uv_mutex_unlock(&a->lock);
	if (dup) {
		snprintf(why, len, "%s already runs on this node", id);
		return RTCMS_EEXIST;
	}
	if (running >= (int)a->cfg.quota) {
		snprintf(why, len, "quota full: %d of %d programs run here", running,
			 (int)a->cfg.quota);
		return RTCMS_ENOSPC;
	}
	return 0;
}

static uint8_t state_of(const struct aproc *p)
{
	switch (p->state) {
	case AP_RUNNING: return PROTO_AP_RUNNING;
	case AP_RESTORING: return PROTO_AP_RESTORING;
	case AP_FROZEN: return PROTO_AP_FROZEN;
	case AP_EXITED: break;
	}
	return p->outcome ? p->outcome : PROTO_AP_GONE;
}

uint16_t proc_report(struct agent *a, struct proto_agent_proc *out)
{
	uint16_t n = 0;
	uint64_t now = agent_mono_ms();
	for (struct aproc *p = a->procs; p && n < PROTO_PROCS_MAX; p = p->next) {
		if (p->superseded || !proto_process_id_valid(p->id) ||
		    (p->state == AP_EXITED && now - p->exited_ms > EXITED_LINGER_MS &&
		     !p->restart_pending))
			continue;
		struct proto_agent_proc *e = &out[n++];
		memset(e, 0, sizeof(*e));
		snprintf(e->process, sizeof(e->process), "%s", p->id);
		e->incarnation = p->incarnation;
		e->sequence = p->img ? p->img->sequence : 0;
		e->pid = p->state != AP_EXITED && p->pid > 0 ? (uint32_t)p->pid : 0;
		e->state = state_of(p);
		e->restarts = p->restarts;
		snprintf(e->reason, sizeof(e->reason), "%s", p->reason);
	}
	return n;
}

void proc_report_msg(struct agent *a, struct proto_agent_proc *procs, struct proto_procs *out)
{
	memset(out, 0, sizeof(*out));
	uv_mutex_lock(&a->lock);
	out->node = a->node;
	memcpy(out->boot, a->boot, PROTO_BOOT_SIZE);
	out->generation = a->procs_gen;
	out->count = proc_report(a, procs);
	uv_mutex_unlock(&a->lock);
	out->procs = procs;
}

void proc_wake_outbox(struct agent *a)
{
	uv_mutex_lock(&a->lock);
	uv_cond_signal(&a->wake);
	uv_mutex_unlock(&a->lock);
}
