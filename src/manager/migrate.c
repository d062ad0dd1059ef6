/* migrate.c - the steps of a migration (migrate.h). */
#include "migrate.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "candidates.h"
#include "detector.h"
#include "fault.h"
#include "log/log.h"
#include "move.h"
#include "pull.h"
#include "rtcms_error.h"
#include "stats.h"
#include "table.h"

/* One migration under way (on its caller's thread). */
struct migration {
	struct manager *m;
	const char *id;
	uint64_t target;
	char src_addr[PROTO_ADDR_MAX + 1];
	uint64_t source, inc;
	struct proto_ckpt_meta final;
	struct proto_claim_ok claim;
	bool claimed;
	struct rpc_link link;
	struct placement_node nodes[MANAGER_NODES_MAX];
	char addrs[MANAGER_NODES_MAX][PROTO_ADDR_MAX + 1];
	size_t count;
	char *why;
	size_t whylen;
};

/* Mark the process migrating (a pull of it gives up at its next chunk),
 * if it runs on a live node and nobody moves it yet. */
static int mark(struct migration *g)
{
	struct manager *m = g->m;
	int rc = 0;

	uv_mutex_lock(&m->lock);
	struct mproc *p = manager_proc(m, g->id);
	if (!p || p->state == PROTO_PS_EXITED) {
		snprintf(g->why, g->whylen, "no running process %s", g->id);
		rc = RTCMS_ENOENT;
		goto out;
	}
	if (p->migrating) {
		snprintf(g->why, g->whylen, "%s is being moved already", g->id);
		rc = RTCMS_EBUSY;
		goto out;
	}
	struct mnode *sn = manager_node(m, p->node);
	g->source = p->node;
	g->inc = p->incarnation;
	if (sn)
		snprintf(g->src_addr, sizeof(g->src_addr), "%s", sn->address);
	if (!sn || !detector_node_alive(m, sn)) {
		snprintf(g->why, g->whylen, "the node of %s (%016" PRIx64 ") is not alive", g->id,
			 g->source);
		rc = RTCMS_ESTATE;
		goto out;
	}
	p->migrating = 1;
out:
	uv_mutex_unlock(&m->lock);
	return rc;
}

/* 1. the final checkpoint, the program frozen */
static int freeze(struct migration *g)
{
	struct manager *m = g->m;
	char text[PROTO_TEXT_MAX + 1];
	int rc = m->rpc.agent->freeze(m->rpc.ctx, g->src_addr, g->id, g->inc, &g->final, text,
				      sizeof(text));
	if (rc) {
		snprintf(g->why, g->whylen, "freezing %s on node %016" PRIx64 ": %s", g->id,
			 g->source, text);
		return rc;
	}
	/* the rest of the move's lines are about the final checkpoint */
	log_about_set(g->id, g->final.incarnation, g->final.sequence);
	log_info("[manager -> %s] FREEZE %s: final checkpoint %" PRIu64 "/%" PRIu64
		 " (%" PRIu64 " bytes)", g->src_addr, g->id, g->final.incarnation,
		 g->final.sequence, g->final.size);
	return 0;
}

/* 2. where to: every alive node, or only the one asked for */
static void candidates(struct migration *g)
{
	g->count = candidates_poll(g->m, g->nodes, g->addrs, MANAGER_INFO_TIMEOUT(g->m));
	for (size_t i = 0; i < g->count; i++)
		if (g->target && g->nodes[i].info.node != g->target)
			g->nodes[i].alive = 0;
}

/* 3. claim: from here on this manager alone moves the process; the claim
 * pins the store's latest checkpoint, which may be older than the final
 * one (not stored yet), never newer. *stored_final: the final checkpoint
 * had to be stored first (nothing of it was durable yet). */
static int claim(struct migration *g, bool *stored_final)
{
	struct manager *m = g->m;
	const struct proto_ckpt_meta *f = &g->final;

	*stored_final = false;
	int rc = move_claim(m, &g->link, g->id, 0, &g->claim, NULL, g->why, g->whylen);
	if (rc == RTCMS_ENOENT) {
		/* nothing of it is durable yet (it asked to move right after it
		 * started): store the final checkpoint first, then claim */
		struct pull_result pr;
		rc = pull_checkpoint(m, &g->link, g->id, f->incarnation, f->sequence, 0,
				     g->src_addr, &pr, NULL);
		if (rc == 0 && pr.sequence != f->sequence)
			rc = RTCMS_ESTATE;
		if (rc) {
			snprintf(g->why, g->whylen, "storing the final checkpoint of %s: %s",
				 g->id, rtcms_strerror(rc));
			return rc;
		}
		*stored_final = true;
		if (!pr.existed) {
			metric_counter_inc(&manager_stats.durable);
			metric_counter_add(&manager_stats.stored_bytes, pr.size);
		}
		log_info("[manager -> store] %s %" PRIu64 "/%" PRIu64 " durable (the first of "
			 "it, before the move)", g->id, f->incarnation, f->sequence);
		rc = move_claim(m, &g->link, g->id, 0, &g->claim, NULL, g->why, g->whylen);
	}
	if (rc)
		return rc;
	g->claimed = true;
	manager_fault_point("after-claim");
	if (g->claim.incarnation > f->incarnation ||
	    (g->claim.incarnation == f->incarnation && g->claim.sequence > f->sequence)) {
		snprintf(g->why, g->whylen, "the store's latest checkpoint of %s is %" PRIu64
			 "/%" PRIu64 ", not before the final %" PRIu64 "/%" PRIu64, g->id,
			 g->claim.incarnation, g->claim.sequence, f->incarnation, f->sequence);
		return RTCMS_ESTATE;
	}
	return 0;
}

/* Is the final checkpoint durable already (the pullers stored it)? */
static bool final_durable(struct migration *g)
{
	uv_mutex_lock(&g->m->lock);
	struct mproc *p = manager_proc(g->m, g->id);
	bool durable = p && p->durable >= g->final.sequence &&
		       p->incarnation == g->final.incarnation;
	uv_mutex_unlock(&g->m->lock);
	return durable;
}

/* 5. after the commit: the old instance goes; the table follows. */
static void moved(struct migration *g, int k, uint64_t new_inc, int rc, uint64_t t0,
		  struct migrate_result *res)
{
	struct manager *m = g->m;
	char text[PROTO_TEXT_MAX + 1];

	if (m->rpc.agent->stop(m->rpc.ctx, g->src_addr, g->id, g->inc, text, sizeof(text)))
		log_error("[manager -> %s] STOP %s: %s", g->src_addr, g->id, text);
	res->to = g->nodes[k].info.node;
	res->incarnation = new_inc;
	res->sequence = g->final.sequence;
	res->millis = (uint32_t)((uv_hrtime() - t0) / 1000000);
	log_info("MIGRATE %s done: node %016" PRIx64 " -> %016" PRIx64
		 ", incarnation %" PRIu64 ", from checkpoint %" PRIu64 " in %u ms", g->id,
		 res->from, res->to, new_inc, g->final.sequence, res->millis);
	struct move_outcome o = { .moved = true, .to = res->to, .incarnation = new_inc,
				  .sequence = g->final.sequence, .size = g->final.size };
	manager_proc_settle(m, g->id, &o);
	if (rc) { /* committed but not confirmed: restore it from the store */
		uv_mutex_lock(&m->lock);
		struct mproc *p = manager_proc(m, g->id);
		if (p) {
			p->state = PROTO_PS_WAITING;
			p->retry_at = 0;
		}
		uv_mutex_unlock(&m->lock);
	}
}

/* Nothing worked: the claim goes, the source goes on. */
static void undo(struct migration *g)
{
	struct manager *m = g->m;
	char text[PROTO_TEXT_MAX + 1];

	if (g->claimed)
		move_release(m, &g->link, g->id, g->claim.claim_id);
	if (m->rpc.agent->thaw(m->rpc.ctx, g->src_addr, g->id, g->inc, text, sizeof(text)) == 0)
		log_info("[manager -> %s] THAW %s: it goes on where it was", g->src_addr, g->id);
	else
		log_error("[manager -> %s] THAW %s: %s", g->src_addr, g->id, text);
}

int migrate_run(struct manager *m, const char *who, const char *id, uint64_t target,
		bool allow_same, struct migrate_result *res, char *why, size_t whylen)
{
	struct migration *g = calloc(1, sizeof(*g));
	static const struct move_outcome stay = { .moved = false };
	uint64_t t0 = uv_hrtime(), new_inc = 0;
	bool stored_final = false, committed = false;
	int rc, k;

	memset(res, 0, sizeof(*res));
	if (!g) {
		snprintf(why, whylen, "out of memory");
		return RTCMS_ENOMEM;
	}
	*g = (struct migration){ .m = m, .id = id, .target = target, .why = why,
				 .whylen = whylen };
	if ((rc = mark(g)) != 0) {
		metric_counter_inc(&manager_stats.migrations[MMIGRATE_REFUSED]);
		goto out_free;
	}
	/* every line of this thread until the end is about this program
	 * (move.c's too) */
	log_about_set(id, g->inc, 0);
	res->from = g->source;
	log_info("[%s -> manager] MIGRATE %s: from node %016" PRIx64 "%s", who, id, g->source,
		 target ? "" : ", to the best node");
	if ((rc = freeze(g)) != 0) {
		metric_counter_inc(&manager_stats.migrations[MMIGRATE_FAILED]);
		log_warn("MIGRATE %s failed: %s", id, why);
		manager_proc_settle(m, id, &stay);
		goto out_free;
	}
	candidates(g);
	if ((rc = claim(g, &stored_final)) != 0)
		goto fail;
	struct move_plan plan = {
		.ckpt = &g->final, .source = g->source,
		.allow_source = allow_same || target == g->source, .src_addr = g->src_addr,
		.durable = stored_final || final_durable(g), .nodes = g->nodes,
		.addrs = g->addrs, .count = g->count,
	};
	if ((k = move_restore(m, &g->link, &plan, why, whylen)) < 0) {
		rc = k;
		goto fail;
	}
	/* 5. commit (only once the final checkpoint is durable and the target
	 * resumed), adopt, stop the old instance */
	manager_fault_point("before-commit");
	rc = move_commit(m, &g->link, id, g->claim.claim_id, g->nodes[k].info.node,
			 g->addrs[k], &new_inc, &committed, why, whylen);
	if (!committed)
		goto fail;
	moved(g, k, new_inc, rc, t0, res);
	metric_counter_inc(&manager_stats.migrations[rc ? MMIGRATE_UNCONFIRMED : MMIGRATE_OK]);
	goto out_close; /* 0, or RTCMS_ESTATE if the target did not confirm */
fail:
	metric_counter_inc(&manager_stats.migrations[MMIGRATE_FAILED]);
	log_warn("MIGRATE %s failed: %s", id, why);
	undo(g);
	manager_proc_settle(m, id, &stay);
	rc = rc ? rc : RTCMS_EINTERNAL;
out_close:
	manager_link_close(&g->link);
out_free:
	free(g);
	log_about_clear();
	return rc;
}
