/* restore.c - a program restored elsewhere, a frozen one resolved (restore.h). */
#include "restore.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "candidates.h"
#include "log/log.h"
#include "move.h"
#include "rtcms_error.h"
#include "table.h"

/* One restore under way (on the detector thread). */
struct restore {
	struct manager *m;
	const char *id;
	struct restore_req *req;
	uint64_t source;
	char src_addr[PROTO_ADDR_MAX + 1];
	struct proto_claim_ok claim;
	bool committed;                /* the claim is spent: nothing to release */
	struct proto_ckpt_meta meta;
	struct rpc_link link;
	struct placement_node nodes[MANAGER_NODES_MAX];
	char addrs[MANAGER_NODES_MAX][PROTO_ADDR_MAX + 1];
	char *why;
	size_t whylen;
};

/* Under the claim: does the program run somewhere after all? true (with
 * why, *rc) if it does or its node cannot say. */
static bool runs_elsewhere(struct restore *s, int *rc)
{
	struct manager *m = s->m;
	*rc = 0;
	if (s->claim.node != s->source) {
		/* another manager restored it meanwhile (the store recorded the
		 * move at its COMMIT): nothing to do, and doing it would run
		 * the program twice */
		s->req->elsewhere = s->claim.node;
		s->req->outcome = RESTORE_RUNS_ELSEWHERE;
		snprintf(s->why, s->whylen, "%s was restored on node %016" PRIx64 " already",
			 s->id, s->claim.node);
		return true;
	}
	if (!s->req->source_alive)
		return false;
	/* its node is alive and did not report it: ask again now that nobody
	 * else can commit a move (a report may be stale) */
	bool holds = false;
	*rc = m->rpc.agent->holds(m->rpc.ctx, s->src_addr, s->id, &holds);
	if (*rc == 0 && !holds)
		return false;
	s->req->elsewhere = s->source;
	s->req->outcome = *rc ? RESTORE_NOT_YET : RESTORE_RUNS_ELSEWHERE;
	snprintf(s->why, s->whylen, *rc == 0 ? "%s still runs on node %016" PRIx64
		 : "%s: node %016" PRIx64 " cannot be asked whether it runs it", s->id,
		 s->source);
	return true;
}

/* The claim names the latest durable checkpoint: its metadata. */
static int read_meta(struct restore *s)
{
	struct manager *m = s->m;
	memset(&s->meta, 0, sizeof(s->meta));
	snprintf(s->meta.process, sizeof(s->meta.process), "%s", s->id);
	s->meta.incarnation = s->claim.incarnation;
	s->meta.sequence = s->claim.sequence;
	int rc = m->rpc.store->meta(m->rpc.ctx, &s->link, s->id, s->claim.incarnation,
				    s->claim.sequence, &s->meta);
	if (rc) {
		snprintf(s->why, s->whylen, "reading the metadata of %s %" PRIu64 "/%" PRIu64
			 ": %s", s->id, s->claim.incarnation, s->claim.sequence,
			 rtcms_strerror(rc));
		return rc;
	}
	s->meta.spec = NULL;
	s->meta.spec_len = 0;
	return 0;
}

/* Restore exactly the claimed checkpoint on the best node, commit, adopt. */
static int restore_claimed(struct restore *s, uint64_t t0)
{
	struct manager *m = s->m;
	bool committed = false;
	uint64_t new_inc = 0;
	int rc;

	if ((rc = read_meta(s)) != 0)
		return rc;
	log_about_set(s->id, s->meta.incarnation, s->meta.sequence); /* what it restores */
	struct move_plan plan = {
		.ckpt = &s->meta, .source = s->source, .allow_source = s->req->source_alive,
		.src_addr = NULL, .durable = true, .nodes = s->nodes, .addrs = s->addrs,
		.count = candidates_poll(m, s->nodes, s->addrs, MANAGER_INFO_TIMEOUT(m)),
	};
	int k = move_restore(m, &s->link, &plan, s->why, s->whylen);
	if (k < 0)
		return k;
	uint64_t to = s->nodes[k].info.node;
	rc = move_commit(m, &s->link, s->id, s->claim.claim_id, to, s->addrs[k], &new_inc,
			 &committed, s->why, s->whylen);
	if (!committed)
		return rc;
	log_info("RESTORE %s done: was on node %016" PRIx64 ", now on %016" PRIx64
		 ", incarnation %" PRIu64 ", from checkpoint %" PRIu64 " in %" PRIu64 " ms",
		 s->id, s->source, to, new_inc, s->meta.sequence,
		 (uint64_t)((uv_hrtime() - t0) / 1000000));
	struct move_outcome o = { .moved = true, .to = to, .incarnation = new_inc,
				  .sequence = s->meta.sequence, .size = s->meta.size };
	manager_proc_settle(m, s->id, &o);
	if (rc) { /* committed, but the target did not confirm: again */
		uv_mutex_lock(&m->lock);
		struct mproc *p = manager_proc(m, s->id);
		if (p) {
			p->state = PROTO_PS_WAITING;
			p->retry_at = manager_mono_ms() + 100;
		}
		uv_mutex_unlock(&m->lock);
	}
	s->req->outcome = rc ? RESTORE_UNCONFIRMED : RESTORE_DONE;
	s->committed = true;
	return 0;
}

int restore_run(struct manager *m, const char *id, struct restore_req *req, char *why,
		size_t whylen)
{
	uint64_t t0 = uv_hrtime();
	int rc;

	req->outcome = RESTORE_NOT_YET;
	req->elsewhere = 0;
	req->held_until = 0;
	struct restore *s = calloc(1, sizeof(*s));
	if (!s) {
		snprintf(why, whylen, "out of memory");
		return RTCMS_ENOMEM;
	}
	*s = (struct restore){ .m = m, .id = id, .req = req, .why = why, .whylen = whylen };
	/* every line of this thread until the end is about this program
	 * (move.c's too) */
	log_about_set(id, 0, 0);
	uv_mutex_lock(&m->lock);
	struct mproc *p = manager_proc(m, id);
	s->source = p ? p->node : 0;
	struct mnode *sn = manager_node(m, s->source);
	if (sn)
		snprintf(s->src_addr, sizeof(s->src_addr), "%s", sn->address);
	uv_mutex_unlock(&m->lock);
	if (!p) {
		snprintf(why, whylen, "no process %s", id);
		rc = RTCMS_ENOENT;
		goto out_free;
	}
	rc = move_claim(m, &s->link, id, req->gave_up ? PROTO_CLAIM_F_GAVE_UP : 0, &s->claim,
			&req->held_until, why, whylen);
	if (rc) {
		if (rc == RTCMS_ESTATE) /* failed for good (store.h) */
			req->outcome = RESTORE_FAILED_FOR_GOOD;
		goto out_close;
	}
	if (!runs_elsewhere(s, &rc))
		rc = restore_claimed(s, t0);
	if (!s->committed)
		move_release(m, &s->link, id, s->claim.claim_id);
	if (rc == 0 && req->outcome == RESTORE_NOT_YET)
		rc = RTCMS_EINTERNAL;
out_close:
	manager_link_close(&s->link);
out_free:
	free(s);
	log_about_clear();
	return rc;
}

int restore_resolve(struct manager *m, const char *id, uint64_t incarnation, uint64_t node,
		    uint32_t *verdict, char *why, size_t whylen)
{
	struct rpc_link link = { 0 };
	struct proto_claim_ok claim;
	uint64_t held_until = 0;

	uv_mutex_lock(&m->lock);
	struct mproc *p = manager_proc(m, id);
	bool busy = p && p->migrating;
	uv_mutex_unlock(&m->lock);
	if (busy) {
		*verdict = PROTO_VERDICT_WAIT; /* this manager is moving it */
		return 0;
	}
	log_about_set(id, incarnation, 0); /* move.c's lines too */
	int rc = move_claim(m, &link, id, 0, &claim, &held_until, why, whylen);
	if (rc == RTCMS_ECLAIMED) {
		*verdict = PROTO_VERDICT_WAIT; /* another manager is moving it */
		rc = 0;
		goto out_close;
	}
	if (rc)
		goto out_close;
	uv_mutex_lock(&m->lock);
	if (claim.node != node) {
		/* the move was committed: the frozen instance must go. If no news
		 * of the new incarnation came, the target may have killed it
		 * unconfirmed (its manager died before ADOPT): restore it. */
		*verdict = PROTO_VERDICT_STOP;
		if (p && p->incarnation <= incarnation) {
			p->node = claim.node;
			p->state = PROTO_PS_WAITING;
			p->retry_at = manager_mono_ms() + 100;
		}
	} else {
		*verdict = PROTO_VERDICT_THAW; /* never committed: it goes on */
		if (p && p->incarnation == incarnation)
			p->state = PROTO_PS_RUNNING;
	}
	uv_mutex_unlock(&m->lock);
	log_warn("RESOLVE %s incarnation %" PRIu64 ", frozen on node %016" PRIx64 ": the "
		 "store records node %016" PRIx64 ": %s", id, incarnation, node, claim.node,
		 *verdict == PROTO_VERDICT_STOP ? "stop it" : "thaw it");
	move_release(m, &link, id, claim.claim_id);
out_close:
	manager_link_close(&link);
	log_about_clear();
	return rc;
}
