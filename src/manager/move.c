/* move.c - the steps a migration and a restore share (move.h). */
#include "move.h"

#include <inttypes.h>
#include <sodium.h>
#include <string.h>

#include "fault.h"
#include "log/log.h"
#include "relay.h"
#include "rtcms_error.h"
#include "stats.h"
#include "table.h"

int move_claim(struct manager *m, struct rpc_link *link, const char *id, uint8_t flags,
	       struct proto_claim_ok *ok, uint64_t *held_until, char *why, size_t whylen)
{
	char text[PROTO_TEXT_MAX + 1];
	int rc = m->rpc.store->claim(m->rpc.ctx, link, id, flags, ok, held_until, text,
				     sizeof(text));
	if (rc) {
		snprintf(why, whylen, "claiming %s: %s", id, text);
		if (rc == RTCMS_ECONN || rc == RTCMS_ETIMEDOUT)
			manager_store_result(m, rc, "CLAIM");
		return rc;
	}
	log_info("[manager -> store] CLAIM %s: claim %016" PRIx64 " on %" PRIu64 "/%" PRIu64
		 ", lease %" PRIu64 " ms", id, ok->claim_id, ok->incarnation, ok->sequence,
		 m->cfg.claim_lease_ms);
	return 0;
}

void move_release(struct manager *m, struct rpc_link *link, const char *id,
		  uint64_t claim_id)
{
	if (m->rpc.store->release(m->rpc.ctx, link, id, claim_id) == 0)
		log_info("[manager -> store] RELEASE %s", id);
	else
		log_warn("[manager -> store] RELEASE %s failed; the lease expires", id);
}

/* How one attempt on a target went. */
enum attempt {
	ATTEMPT_RESUMED,               /* the target resumed the program */
	ATTEMPT_NEXT,                  /* the target failed: try the next node */
	ATTEMPT_FATAL,                 /* the store or the source failed: stop */
};

/* Open the store's connection and one to the target at addr: 0, or the
 * error with why (*target_side: the target's). */
static int open_both(struct manager *m, struct rpc_link *link, const char *addr,
		     bool *target_side, char *why, size_t whylen)
{
	const struct manager_rpc *rpc = &m->rpc;
	*target_side = false;
	int rc = rpc->store->open(rpc->ctx, link);
	if (rc) {
		snprintf(why, whylen, "store %s: %s", m->cfg.store, rtcms_strerror(rc));
		return rc;
	}
	if ((rc = rpc->agent->target_open(rpc->ctx, link, addr)) != 0) {
		*target_side = true;
		snprintf(why, whylen, "%s", rtcms_strerror(rc));
	}
	return rc;
}

/* Is the stream the source sends the final checkpoint it announced? */
static bool is_final(void *ctx, const struct proto_ckpt_meta *meta)
{
	const struct proto_ckpt_meta *final = ctx;
	return meta->sequence == final->sequence &&
	       sodium_memcmp(meta->hash, final->hash, PROTO_HASH_SIZE) == 0;
}

/* The final checkpoint in one pass: pulled from the source agent and
 * relayed, chunk by chunk, both into the store (PUT) and to the target
 * (RESTORE). The target answers only after the program resumed; the
 * store's PUT_ACK makes the checkpoint durable before anything commits.
 * *stored: it is durable now (also when only the target failed). */
static int tee_restore(struct manager *m, struct rpc_link *link, const char *src_addr,
		       const char *dst_addr, const struct proto_ckpt_meta *final,
		       enum attempt *how, bool *stored, char *why, size_t whylen)
{
	const struct manager_rpc *rpc = &m->rpc;
	const struct rpc_pull req = { .process = final->process,
				      .incarnation = final->incarnation,
				      .sequence = final->sequence };
	struct rpc_stream put, restore;
	struct proto_ckpt_meta meta;
	struct relay r;
	bool target_side;

	*how = ATTEMPT_FATAL;
	*stored = false;
	int rc = open_both(m, link, dst_addr, &target_side, why, whylen);
	if (rc) {
		if (target_side)
			*how = ATTEMPT_NEXT; /* nothing sent anywhere yet */
		return rc;
	}
	memset(&meta, 0, sizeof(meta));
	manager_rpc_put_sink(rpc, link, &put);
	manager_rpc_restore_sink(rpc, link, &restore);
	relay_init(&r, &put.sink, &restore.sink, NULL);
	relay_expect(&r, is_final, (void *)final);
	rc = rpc->agent->pull(rpc->ctx, src_addr, &req, &meta, &r.sink);
	manager_rpc_stream_clear(&put);
	manager_rpc_stream_clear(&restore);
	enum relay_result rr = relay_result(&r, rc);
	if (rr == RELAY_SOURCE_FAILED || rr == RELAY_STORE_FAILED) {
		/* the store or the source (which holds the only copy): stop here */
		manager_link_drop_store(link);
		if (!relay_begun(&r) && rr == RELAY_SOURCE_FAILED)
			snprintf(why, whylen, "source agent %s: %s", src_addr, rtcms_strerror(rc));
		else
			snprintf(why, whylen, "storing the final checkpoint: %s",
				 rtcms_strerror(relay_code(&r, rr, rc)));
		return relay_code(&r, rr, rc);
	}
	*stored = true;
	*how = rr == RELAY_DONE ? ATTEMPT_RESUMED : ATTEMPT_NEXT;
	snprintf(why, whylen, "%s", restore.why);
	return relay_code(&r, rr, rc);
}

/* The durable checkpoint (id, inc, seq) from the store to the agent at
 * addr, and wait for RESTORE_OK. */
static int restore_on(struct manager *m, struct rpc_link *link, const char *addr,
		      const struct proto_ckpt_meta *ckpt, enum attempt *how, char *why,
		      size_t whylen)
{
	const struct manager_rpc *rpc = &m->rpc;
	struct rpc_stream st;
	struct proto_ckpt_meta meta;
	struct relay r;
	bool target_side;

	*how = ATTEMPT_NEXT;
	int rc = open_both(m, link, addr, &target_side, why, whylen);
	if (rc)
		return rc;
	memset(&meta, 0, sizeof(meta));
	manager_rpc_restore_sink(rpc, link, &st);
	relay_init(&r, NULL, &st.sink, NULL);
	rc = rpc->store->get(rpc->ctx, link, ckpt->process, ckpt->incarnation, ckpt->sequence,
			     &meta, &r.sink);
	manager_rpc_stream_clear(&st);
	enum relay_result rr = relay_result(&r, rc);
	if (rr == RELAY_SOURCE_FAILED)
		snprintf(why, whylen, "reading it from the store: %s", rtcms_strerror(rc));
	else if (rr != RELAY_DONE)
		snprintf(why, whylen, "%s", st.why);
	if (rr == RELAY_DONE)
		*how = ATTEMPT_RESUMED;
	return relay_code(&r, rr, rc);
}

/* The checkpoint is durable now: so the table says (lock not held). */
static void note_durable(struct manager *m, const struct proto_ckpt_meta *ckpt)
{
	log_prog(LOG_INFO, ckpt->process, ckpt->incarnation, ckpt->sequence,
		 "[manager -> store] %s %" PRIu64 "/%" PRIu64 " durable (relayed to the "
		 "store and the target at once)", ckpt->process, ckpt->incarnation,
		 ckpt->sequence);
	metric_counter_inc(&manager_stats.durable);
	metric_counter_add(&manager_stats.stored_bytes, ckpt->size);
	uv_mutex_lock(&m->lock);
	struct mproc *p = manager_proc(m, ckpt->process);
	if (p && p->incarnation == ckpt->incarnation && p->durable < ckpt->sequence) {
		p->durable = ckpt->sequence;
		p->durable_size = ckpt->size;
		p->durable_at_ms = manager_mono_ms();
	}
	uv_mutex_unlock(&m->lock);
}

/* One attempt on node k of the plan. */
static int attempt(struct manager *m, struct rpc_link *link, struct move_plan *plan, size_t k,
		   enum attempt *how, char *why, size_t whylen)
{
	const struct proto_ckpt_meta *ckpt = plan->ckpt;
	if (plan->durable)
		return restore_on(m, link, plan->addrs[k], ckpt, how, why, whylen);
	bool stored = false;
	int rc = tee_restore(m, link, plan->src_addr, plan->addrs[k], ckpt, how, &stored, why,
			     whylen);
	if (*how == ATTEMPT_FATAL) {
		manager_store_result(m, rc, "PUT");
		return rc ? rc : RTCMS_EIO;
	}
	if (stored) {
		plan->durable = true;
		manager_store_result(m, 0, "PUT");
		note_durable(m, ckpt);
	}
	return rc;
}

int move_restore(struct manager *m, struct rpc_link *link, struct move_plan *plan,
		 char *why, size_t whylen)
{
	const char *id = plan->ckpt->process;

	snprintf(why, whylen, "no node can take %s (%" PRIu64 " bytes)", id, plan->ckpt->size);
	for (;;) {
		struct placement_config pc;
		uv_mutex_lock(&m->lock); /* SIGHUP may change it */
		pc = m->placement;
		uv_mutex_unlock(&m->lock);
		int k = placement_choose(&pc, plan->nodes, plan->count, plan->ckpt->size,
					 plan->source, plan->allow_source, NULL);
		if (k < 0)
			return RTCMS_ENOSPC;
		const struct proto_info_reply *info = &plan->nodes[k].info;
		log_info("placement: %s -> node %016" PRIx64 " (%s, %" PRIu64
			 " MiB free, cpu %u.%u%%, quota %u/%u)", id, info->node,
			 plan->addrs[k], info->mem_available >> 20, info->cpu_load_permille / 10,
			 info->cpu_load_permille % 10, info->quota_free, info->quota_max);
		char reason[PROTO_TEXT_MAX + 1];
		enum attempt how;
		int rc = attempt(m, link, plan, (size_t)k, &how, reason, sizeof(reason));
		if (how == ATTEMPT_FATAL) {
			snprintf(why, whylen, "%s", reason);
			manager_link_drop_target(link); /* the target kills what it started */
			return rc;
		}
		if (how == ATTEMPT_RESUMED) {
			log_prog(LOG_INFO, id, plan->ckpt->incarnation, plan->ckpt->sequence,
				 "[%s -> manager] RESTORE_OK %s: resumed from %" PRIu64,
				 plan->addrs[k], id, plan->ckpt->sequence);
			return k;
		}
		log_warn("[manager -> %s] RESTORE %s failed: %s; trying the next node",
			 plan->addrs[k], id, reason);
		snprintf(why, whylen, "restore on node %016" PRIx64 " failed: %s", info->node,
			 reason);
		manager_link_drop_target(link);
		plan->nodes[k].alive = 0;
	}
}

int move_commit(struct manager *m, struct rpc_link *link, const char *id, uint64_t claim_id,
		uint64_t node, const char *addr, uint64_t *new_inc, bool *committed, char *why,
		size_t whylen)
{
	char text[PROTO_TEXT_MAX + 1];

	*committed = false;
	int rc = m->rpc.store->commit(m->rpc.ctx, link, id, claim_id, node, new_inc);
	if (rc) {
		snprintf(why, whylen, "committing %s: %s", id, rtcms_strerror(rc));
		return rc; /* the target stops the unconfirmed instance itself */
	}
	*committed = true;
	manager_fault_point("after-commit");
	log_info("[manager -> store] COMMIT %s: incarnation %" PRIu64 " on node %016" PRIx64,
		 id, *new_inc, node);
	rc = m->rpc.agent->adopt(m->rpc.ctx, link, id, *new_inc, text, sizeof(text));
	if (rc) {
		/* committed, but the target will stop the unconfirmed instance:
		 * the program must be restored from its checkpoint again */
		log_error("[manager -> %s] ADOPT %s: %s; incarnation %" PRIu64 " is "
			  "committed but may not run", addr, id, text, *new_inc);
		snprintf(why, whylen, "%s was committed to node %016" PRIx64 " (incarnation %"
			 PRIu64 ") but the target did not confirm it: %s", id, node, *new_inc,
			 text);
		return RTCMS_ESTATE;
	}
	return 0;
}
