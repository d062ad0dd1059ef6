/* reconcile.c - the detector thread: what should run against what runs (reconcile.h). */
#include "reconcile.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "detector.h"
#include "log/log.h"
#include "recovery.h"
#include "restore.h"
#include "rtcms_error.h"
#include "stats.h"
#include "table.h"

/* One page of the store's LIST into the table: what is not reported by
 * an agent yet is STORED; *added counts the new ones. Lock held. */
static void scan_page(struct manager *m, const struct proto_list_entry *entries,
		      uint16_t count, size_t *added)
{
	for (uint16_t i = 0; i < count; i++) {
		const struct proto_list_entry *e = &entries[i];
		struct mproc *p = manager_proc(m, e->process);
		if (!p) {
			p = manager_proc_add(m, e->process);
			if (!p)
				break;
			p->state = PROTO_PS_STORED;
			(*added)++;
		}
		if (p->state != PROTO_PS_STORED)
			continue; /* an agent told us more already */
		if (e->incarnation > p->incarnation ||
		    (e->incarnation == p->incarnation && e->sequence > p->durable)) {
			p->node = e->node;
			p->incarnation = e->incarnation;
			p->durable = p->notified = e->sequence;
			p->durable_size = e->size;
			p->durable_at_ms = manager_mono_ms();
		}
	}
}

/* Every process the store holds checkpoints of (LIST: the latest
 * checkpoint of each), as STORED until an agent reports it. Programs that
 * ended cleanly had their checkpoints deleted, so what is left is running
 * somewhere or was lost with its node. Lock not held. Returns 0 or the
 * store's error. */
static int scan_store(struct manager *m)
{
	struct rpc_link link = { 0 };
	char why[PROTO_TEXT_MAX + 1];
	struct proto_list q;
	uint32_t offset = 0;
	size_t added = 0;
	int rc;

	struct proto_list_entry *entries = calloc(PROTO_LIST_MAX, sizeof(*entries));
	if (!entries)
		return RTCMS_ENOMEM;
	for (;;) {
		uint16_t count = 0;
		bool more = false;
		memset(&q, 0, sizeof(q));
		q.offset = offset;
		q.limit = PROTO_LIST_MAX;
		rc = m->rpc.store->list(m->rpc.ctx, &link, &q, entries, &count, &more, why,
					sizeof(why));
		if (rc)
			break;
		uv_mutex_lock(&m->lock);
		scan_page(m, entries, count, &added);
		uv_mutex_unlock(&m->lock);
		offset += count;
		if (!more || count == 0)
			break;
	}
	manager_link_close(&link);
	free(entries);
	if (rc == 0 && (added || !m->scanned))
		log_info("the store holds %zu process(es) not reported by an agent yet", added);
	return rc;
}

static bool report_present(uint8_t state)
{
	return state == PROTO_AP_RUNNING || state == PROTO_AP_RESTORING ||
	       state == PROTO_AP_FROZEN || state == PROTO_AP_RESTARTING;
}

/* The live instance of p that a usable node reports (the highest
 * incarnation), or NULL; *gone gets p's entry at its recorded node if
 * that node reports it failed or gone. Lock held. */
static const struct proto_agent_proc *find_instance(struct manager *m, const struct mproc *p,
						    struct mnode **where,
						    const struct proto_agent_proc **gone)
{
	const struct proto_agent_proc *best = NULL;
	*gone = NULL;
	for (size_t i = 0; i < m->node_count; i++) {
		struct mnode *n = &m->nodes[i];
		if (!n->report)
			continue;
		for (uint16_t k = 0; k < n->report_count; k++) {
			const struct proto_agent_proc *e = &n->report[k];
			if (strcmp(e->process, p->id) != 0)
				continue;
			if (!report_present(e->state)) {
				if (n->node == p->node && e->incarnation >= p->incarnation)
					*gone = e;
				continue;
			}
			if (detector_node_usable(m, n) && e->incarnation >= p->incarnation &&
			    (!best || e->incarnation > best->incarnation)) {
				best = e;
				*where = n;
			}
		}
	}
	return best;
}

/* A program an agent may not restart (restart = never): failed at once.
 * One an agent gave up on is moved to another node, and the store allows
 * that once per program (a GAVE_UP claim): a second time it has failed. */
static bool gave_up(struct mproc *p, const struct proto_agent_proc *e)
{
	if (e->state != PROTO_AP_FAILED)
		return false;
	snprintf(p->reason, sizeof(p->reason), "%s", e->reason);
	p->restarts = e->restarts;
	if (strncmp(e->reason, "restart=never", 13) == 0) {
		if (p->state != PROTO_PS_FAILED)
			log_prog(LOG_ERROR, p->id, p->incarnation, 0,
				 "%s failed for good on node %016" PRIx64 ": %s", p->id, p->node,
				 e->reason);
		p->state = PROTO_PS_FAILED;
		return true;
	}
	return false;
}

/* The facts recovery_decide() weighs for p. Lock held. */
static void gather(struct manager *m, struct mproc *p, const struct mnode *n,
		   const struct proto_agent_proc *e, const struct proto_agent_proc *gone,
		   uint64_t now, struct recovery_facts *f)
{
	*f = (struct recovery_facts){
		.ended = p->ended || p->state == PROTO_PS_EXITED ||
			 p->state == PROTO_PS_FAILED || p->state == PROTO_PS_UNKNOWN,
		.moving = p->migrating,
		.present = e != NULL,
		.node_known = n != NULL,
		.node_alive = detector_node_usable(m, n),
		.node_failed = (n && n->failed) || detector_fence_complete(m, p->node),
		.report_fresh = n && n->report_ms && n->report_ms > p->added_ms &&
				now - n->report_ms <= 3000,
		.uptime_ms = now - m->started_ms,
	};
	if (f->node_alive && f->report_fresh && !f->present) {
		if (!p->absent_since)
			p->absent_since = now;
		f->absent_ms = now - p->absent_since + 1;
	} else {
		p->absent_since = 0;
	}
	f->gave_up_there = gone && gone->state == PROTO_AP_FAILED;
	if (f->node_alive && n->prev_boot_seen_ms &&
	    now < n->prev_boot_seen_ms + m->cfg.agent_lease_ms + m->cfg.fence_margin_ms)
		f->report_fresh = 0; /* the old boot's instance may live until its
				      * lease runs out: not yet */
}

/* An agent reports p's instance e on node where: the table follows. */
static void present(struct mproc *p, const struct mnode *where,
		    const struct proto_agent_proc *e)
{
	if (e->incarnation > p->incarnation) {
		/* restored by another manager: its instance tells us */
		p->incarnation = e->incarnation;
		p->durable = 0;
		p->notified = 0;
		p->failed_seq = 0;
	}
	if (e->sequence > p->notified) {
		/* the report told of it first: its announcement (the metrics) */
		p->notified = e->sequence;
		p->notified_ns = where->report_ms * 1000000;
	}
	p->node = where->node;
	p->confirmed_ms = where->report_ms;
	p->restarts = e->restarts;
	if (e->reason[0])
		snprintf(p->reason, sizeof(p->reason), "%s", e->reason);
	if (p->state != PROTO_PS_RUNNING)
		p->state = PROTO_PS_RUNNING;
}

/* Compare every program that should run with what the agents report;
 * mark those that run nowhere WAITING (restored below). Lock held. */
static void reconcile(struct manager *m, uint64_t now)
{
	static const struct recovery_config rcfg = { .absent_grace_ms = 300 };
	struct recovery_config cfg = rcfg;
	cfg.start_grace_ms = 2 * m->cfg.node_timeout_ms + 2000;

	for (size_t j = 0; j < m->proc_count; j++) {
		struct mproc *p = &m->procs[j];
		if (!p->id[0])
			continue; /* a forgotten one's slot */
		struct mnode *where = NULL, *n = manager_node(m, p->node);
		const struct proto_agent_proc *gone = NULL;
		const struct proto_agent_proc *e = find_instance(m, p, &where, &gone);
		if (gone && gave_up(p, gone))
			continue;
		struct recovery_facts f;
		gather(m, p, n, e, gone, now, &f);
		switch (recovery_decide(&cfg, &f)) {
		case RECOVERY_PRESENT:
			present(p, where, e);
			break;
		case RECOVERY_RESTORE:
			if (p->state != PROTO_PS_WAITING) {
				log_prog(LOG_WARN, p->id, p->incarnation, p->durable,
					 "%s runs nowhere (%s): restoring it from its latest "
					 "checkpoint", p->id, f.node_failed ? "its node failed"
					 : gone ? gone->reason[0] ? gone->reason : "gone from its node"
					 : "its node no longer reports it");
				p->gave_up_move = f.gave_up_there;
				p->state = PROTO_PS_WAITING;
				p->retry_at = 0;
			}
			break;
		case RECOVERY_FENCE_NODE:
			if (!n && (n = manager_node_add(m, p->node)) != NULL) {
				/* a node this manager never heard: unheard since the start */
				snprintf(n->name, sizeof(n->name), "(not registered)");
				n->seen_ms = m->started_ms ? m->started_ms : 1;
			}
			break;
		case RECOVERY_WAIT:
		case RECOVERY_NONE:
			break;
		}
	}
}

/* What came of a restore of p (lock held; p looked up again). */
static void restored(struct manager *m, const char *id, int rc, const struct restore_req *req,
		     const char *why)
{
	static const enum manager_restore_outcome outcome[] = {
		[RESTORE_DONE] = MRESTORE_OK, [RESTORE_UNCONFIRMED] = MRESTORE_UNCONFIRMED,
		[RESTORE_RUNS_ELSEWHERE] = MRESTORE_ELSEWHERE,
		[RESTORE_FAILED_FOR_GOOD] = MRESTORE_FAILED, [RESTORE_NOT_YET] = MRESTORE_RETRY,
	};
	enum manager_restore_outcome o = outcome[req->outcome];
	if (req->outcome == RESTORE_NOT_YET && rc == RTCMS_ENOENT)
		o = MRESTORE_FAILED; /* nothing durable to restore: lost */
	metric_counter_inc(&manager_stats.restores[o]);
	struct mproc *p = manager_proc(m, id);
	if (!p)
		return;
	switch (req->outcome) {
	case RESTORE_DONE:
	case RESTORE_UNCONFIRMED:
		return; /* the table was updated (UNCONFIRMED: WAITING again) */
	case RESTORE_RUNS_ELSEWHERE:
		/* it runs (another manager restored it, or its agent holds it
		 * after all): its reports tell the rest */
		log_prog(LOG_INFO, id, p->incarnation, 0, "%s", why);
		p->migrating = 0;
		p->node = req->elsewhere;
		p->state = PROTO_PS_RUNNING;
		p->absent_since = 0;
		p->added_ms = manager_mono_ms(); /* wait for a report after this */
		return;
	case RESTORE_FAILED_FOR_GOOD:
		p->migrating = 0;
		p->state = PROTO_PS_FAILED;
		p->gave_up_move = 0;
		snprintf(p->reason, sizeof(p->reason), "%.*s", (int)sizeof(p->reason) - 1, why);
		log_prog(LOG_ERROR, id, p->incarnation, 0, "%s failed for good: %s", id, why);
		return;
	case RESTORE_NOT_YET:
		break;
	}
	p->migrating = 0;
	if (rc == RTCMS_ENOENT) {
		p->state = PROTO_PS_UNKNOWN;
		log_prog(LOG_ERROR, id, p->incarnation, 0,
			 "%s cannot be restored: no durable checkpoint (%s)", id, why);
		return;
	}
	/* claimed by another manager: try again right when its lease ends
	 * (it may have crashed), else in a second */
	uint64_t wait = 1000, real = manager_real_ms();
	if (rc == RTCMS_ECLAIMED && req->held_until > real && req->held_until - real < wait)
		wait = req->held_until - real + 5;
	p->retry_at = manager_mono_ms() + wait;
	log_prog(LOG_WARN, id, p->incarnation, 0,
		 "%s not restored yet: %s; trying again in %" PRIu64 " ms", id, why, wait);
}

/* Restore one WAITING program whose time came, if there is one (lock
 * held; released during the restore). false if there was none. */
static bool restore_next(struct manager *m, uint64_t now)
{
	struct mproc *p = NULL;
	for (size_t j = 0; j < m->proc_count && !p; j++)
		if (m->procs[j].state == PROTO_PS_WAITING && !m->procs[j].migrating &&
		    now >= m->procs[j].retry_at)
			p = &m->procs[j];
	if (!p)
		return false;
	char id[PROTO_ID_MAX + 1], why[PROTO_TEXT_MAX + 1] = "";
	snprintf(id, sizeof(id), "%s", p->id);
	struct mnode *src = manager_node(m, p->node);
	struct restore_req req = {
		.source_alive = detector_node_usable(m, src) && !p->gave_up_move,
		.gave_up = p->gave_up_move,
	};
	p->migrating = 1;
	uv_mutex_unlock(&m->lock);
	int rc = restore_run(m, id, &req, why, sizeof(why));
	uv_mutex_lock(&m->lock);
	restored(m, id, rc, &req, why);
	return true;
}

static void detector_thread(void *arg)
{
	struct manager *m = arg;

	uint64_t scan_at = 0;
	uv_mutex_lock(&m->lock);
	while (!m->stopping) {
		uint64_t now = manager_mono_ms();
		if (now >= scan_at) {
			/* the store's processes: what should run (level-triggered:
			 * again every 2 s, not only at start) */
			uv_mutex_unlock(&m->lock);
			int rc = scan_store(m);
			uv_mutex_lock(&m->lock);
			m->scanned = m->scanned || rc == 0;
			scan_at = manager_mono_ms() + (rc == 0 ? 2000 : 1000);
			now = manager_mono_ms(); /* the lock was released meanwhile */
		}
		detector_fence_nodes(m, now);
		now = manager_mono_ms();
		reconcile(m, now);
		if (!restore_next(m, now))
			uv_cond_timedwait(&m->work, &m->lock, 20ull * 1000000);
	}
	uv_mutex_unlock(&m->lock);
}

int reconcile_start(struct manager *m)
{
	return uv_thread_create(&m->detector, detector_thread, m) == 0 ? 0 : RTCMS_ENOMEM;
}

void reconcile_join(struct manager *m)
{
	uv_thread_join(&m->detector);
}
