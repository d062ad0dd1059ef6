/*
 * migrate.c - the thesis' op 2, made safe:
 *
 *   1. FREEZE at the source agent: the program takes a final checkpoint
 *      at its next consistency point and stops itself (SIGSTOP)
 *   2. that checkpoint is pulled and made durable in the store
 *   3. INFO from every alive node; filter and score (placement.c)
 *   4. CLAIM the process in the store (lease): one manager moves it
 *   5. RESTORE on the best node: the checkpoint streams from the store
 *      through the manager to the target, which verifies it, starts the
 *      program in restore mode and answers once the program resumed;
 *      on failure, the next-best node
 *   5. COMMIT the claim (new incarnation), ADOPT at the target, STOP the
 *      old instance; or, if no node worked, RELEASE and THAW the source
 * Every step is logged, so one migration can be followed in the logs.
 */
#include "manager.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

#include "client/store_client.h"
#include "log/log.h"
#include "rtcms_error.h"

/* Failure injection for tests (like SQLite's sqlite3FaultSim): with
 * RTCMS_MANAGER_CRASH_AT=where in the environment the manager kills itself
 * (SIGKILL, as kill -9 would) at that step of a migration: after-claim,
 * after-send, before-commit, after-commit. */
static void crash_point(const char *where)
{
	const char *at = getenv("RTCMS_MANAGER_CRASH_AT");
	if (at && strcmp(at, where) == 0) {
		log_error("test hook RTCMS_MANAGER_CRASH_AT: dying %s", where);
		kill(getpid(), SIGKILL);
	}
}

size_t manager_poll_nodes(struct manager *m, struct placement_node *nodes,
			  char (*addrs)[PROTO_ADDR_MAX + 1], int timeout_ms)
{
	uint64_t ids[MANAGER_NODES_MAX];
	bool cordoned[MANAGER_NODES_MAX];
	size_t n = 0;

	uv_mutex_lock(&m->lock);
	for (size_t i = 0; i < m->node_count; i++)
		if (manager_node_alive(m, &m->nodes[i])) {
			ids[n] = m->nodes[i].node;
			cordoned[n] = cordon_set_has(&m->cordons, ids[n]);
			snprintf(addrs[n], PROTO_ADDR_MAX + 1, "%s", m->nodes[i].address);
			n++;
		}
	uv_mutex_unlock(&m->lock);
	for (size_t i = 0; i < n; i++) {
		struct net_client *c = NULL;
		struct proto_header h;
		union proto_msg q, r;
		memset(&nodes[i], 0, sizeof(nodes[i]));
		nodes[i].info.node = ids[i];
		nodes[i].cordoned = cordoned[i];
		memset(&q, 0, sizeof(q));
		int rc = net_client_connect(addrs[i], &m->key, PROTO_ROLE_MANAGER, m->cfg.name,
					    timeout_ms, &c);
		if (rc == 0)
			rc = net_client_call(c, PROTO_INFO, &q, PROTO_INFO_REPLY, &h, &r);
		net_client_free(c);
		if (rc == 0 && r.info.node == ids[i]) {
			nodes[i].info = r.info;
			nodes[i].alive = 1;
		} else {
			log_warn("[manager -> %s] INFO: %s", addrs[i],
				 rc ? rtcms_strerror(rc) : "answered with another node id");
		}
	}
	return n;
}

/* One call on a fresh connection to an agent; the error text, if the
 * agent sent one, goes to why. */
static int agent_call(struct manager *m, struct net_client **conn, const char *addr,
		      uint8_t type, const union proto_msg *q, uint8_t expect,
		      union proto_msg *r, int timeout_ms, char *why, size_t whylen)
{
	struct proto_header h;
	int rc = 0;
	if (!*conn)
		rc = net_client_connect(addr, &m->key, PROTO_ROLE_MANAGER, m->cfg.name,
					(int)m->cfg.io_timeout_ms, conn);
	if (rc == 0) {
		net_client_set_timeout(*conn, timeout_ms);
		rc = net_client_call(*conn, type, q, expect, &h, r);
	}
	if (rc) {
		const struct proto_error *e = *conn ? net_client_last_error(*conn) : NULL;
		snprintf(why, whylen, "%s", e && e->code == rc ? e->text : rtcms_strerror(rc));
	}
	return rc;
}

/* Relay of a stored checkpoint to a target agent as RESTORE. */
struct restore_relay {
	struct net_client *agent;
	struct proto_ckpt_meta *meta;
	int begun;
	int agent_rc;
	uint32_t count;
};

static int restore_chunk(void *ctx, const struct proto_chunk *chunk)
{
	struct restore_relay *r = ctx;
	union proto_msg q;
	int rc;

	if (!r->begun) {
		r->begun = 1;
		q.meta = *r->meta;
		if ((rc = net_client_send(r->agent, PROTO_RESTORE, 0, &q, NULL)) != 0) {
			r->agent_rc = rc;
			return rc;
		}
	}
	q.chunk = *chunk;
	if ((rc = net_client_send(r->agent, PROTO_CHUNK, 0, &q, NULL)) != 0) {
		r->agent_rc = rc;
		return rc;
	}
	r->count++;
	return 0;
}

/* End a RESTORE stream of count chunks and wait until the target says
 * the program resumed from seq. */
static int restore_finish(struct manager *m, struct net_client *target, uint32_t count,
			  uint64_t seq, char *why, size_t whylen)
{
	struct proto_header h;
	union proto_msg q, r;

	memset(&q, 0, sizeof(q));
	q.put_end.chunk_count = count;
	int rc = net_client_send(target, PROTO_PUT_END, 0, &q, NULL);
	crash_point("after-send");
	if (rc == 0) {
		net_client_set_timeout(target, (int)m->cfg.restore_timeout_ms);
		rc = net_client_recv(target, &h, &r);
	}
	if (rc == 0 && h.type == PROTO_ERROR) {
		snprintf(why, whylen, "%s", r.error.text);
		return r.error.code;
	}
	if (rc == 0 && (h.type != PROTO_RESTORE_OK || r.restore_ok.sequence != seq))
		rc = RTCMS_EPROTO;
	if (rc)
		snprintf(why, whylen, "%s", rtcms_strerror(rc));
	return rc;
}

/* Stream checkpoint (id, inc, seq) from the store to the agent at addr
 * and wait for RESTORE_OK. *agent stays open for the ADOPT. */
static int restore_on(struct manager *m, struct net_client **store,
		      struct net_client **agent, const char *addr, const char *id,
		      uint64_t inc, uint64_t seq, char *why, size_t whylen)
{
	struct proto_ckpt_meta meta;
	static __thread uint8_t spec[PROTO_SPEC_MAX];
	struct restore_relay rr = { 0 };
	int rc;

	rc = manager_store_connect(m, store);
	if (rc) {
		snprintf(why, whylen, "store %s: %s", m->cfg.store, rtcms_strerror(rc));
		return rc;
	}
	rc = net_client_connect(addr, &m->key, PROTO_ROLE_MANAGER, m->cfg.name,
				(int)m->cfg.io_timeout_ms, agent);
	if (rc) {
		snprintf(why, whylen, "%s", rtcms_strerror(rc));
		return rc;
	}
	rr.agent = *agent;
	rr.meta = &meta;
	rc = store_client_fetch(*store, PROTO_GET, id, inc, seq, 0, &meta, spec,
				restore_chunk, &rr, NULL);
	if (rc) {
		/* the store's GET stream may be unfinished either way */
		net_client_free(*store);
		*store = NULL;
		if (!rr.agent_rc)
			snprintf(why, whylen, "reading it from the store: %s", rtcms_strerror(rc));
		else
			snprintf(why, whylen, "sending it: %s", rtcms_strerror(rc));
		return rc;
	}
	return restore_finish(m, *agent, rr.count, seq, why, whylen);
}

/* The final checkpoint in one pass: pulled from the source agent and
 * relayed, chunk by chunk, both into the store (PUT) and to the target
 * (RESTORE). The target answers only after the program resumed; the
 * store's PUT_ACK makes the checkpoint durable before anything commits. */
struct tee {
	struct net_client *store;      /* NULL once it is known durable */
	struct net_client *target;
	struct proto_ckpt_meta *meta;
	int begun;
	int store_rc;
	int target_rc;
	uint32_t count;
	struct proto_put_ack ack;
};

static int tee_chunk(void *ctx, const struct proto_chunk *chunk)
{
	struct tee *t = ctx;
	union proto_msg q;
	int rc;

	if (!t->begun) {
		t->begun = 1;
		if (t->store) {
			rc = store_client_put_begin(t->store, t->meta, &t->ack);
			if (rc == 1) {
				t->store = NULL; /* already durable */
			} else if (rc) {
				t->store_rc = rc;
				return rc;
			}
		}
		q.meta = *t->meta;
		if ((rc = net_client_send(t->target, PROTO_RESTORE, 0, &q, NULL)) != 0)
			t->target_rc = rc;
	}
	if (t->store && (rc = store_client_put_chunk(t->store, chunk)) != 0) {
		t->store_rc = rc;
		return rc;
	}
	t->count++;
	if (t->target_rc)
		return 0; /* the target is gone: the store still gets it all */
	q.chunk = *chunk;
	if ((rc = net_client_send(t->target, PROTO_CHUNK, 0, &q, NULL)) != 0)
		t->target_rc = rc;
	return 0;
}

/* Returns 0, or an error with the reason in why: *store_failed if the
 * store or the source failed (the move must not go on). *stored tells
 * whether the final checkpoint is durable now (also when only the target
 * failed). *target stays open for the ADOPT. */
static int tee_restore(struct manager *m, struct net_client **store,
		       struct net_client **target, const char *src_addr,
		       const char *dst_addr, const struct proto_ckpt_meta *final,
		       int *store_failed, int *stored, char *why, size_t whylen)
{
	struct net_client *src = NULL;
	struct proto_ckpt_meta meta;
	static __thread uint8_t spec[PROTO_SPEC_MAX];
	struct tee t = { 0 };
	int rc;

	*store_failed = 0;
	*stored = 0;
	rc = manager_store_connect(m, store);
	if (rc) {
		*store_failed = 1;
		snprintf(why, whylen, "store %s: %s", m->cfg.store, rtcms_strerror(rc));
		return rc;
	}
	rc = net_client_connect(dst_addr, &m->key, PROTO_ROLE_MANAGER, m->cfg.name,
				(int)m->cfg.io_timeout_ms, target);
	if (rc) {
		snprintf(why, whylen, "%s", rtcms_strerror(rc));
		return rc; /* nothing sent anywhere yet */
	}
	rc = net_client_connect(src_addr, &m->key, PROTO_ROLE_MANAGER, m->cfg.name,
				(int)m->cfg.io_timeout_ms, &src);
	if (rc) {
		*store_failed = 1; /* the source holds the only copy */
		snprintf(why, whylen, "source agent %s: %s", src_addr, rtcms_strerror(rc));
		return rc;
	}
	t.store = *store;
	t.target = *target;
	t.meta = &meta;
	rc = store_client_fetch(src, PROTO_PULL, final->process, final->incarnation,
				final->sequence, 0, &meta, spec, tee_chunk, &t, NULL);
	net_client_free(src);
	if (rc == 0 && (meta.sequence != final->sequence ||
			sodium_memcmp(meta.hash, final->hash, PROTO_HASH_SIZE) != 0))
		rc = RTCMS_EPROTO;
	if (rc == 0 && t.store) {
		rc = store_client_put_end(t.store, t.count, &t.ack);
		if (rc)
			t.store_rc = rc;
	}
	if (rc) {
		*store_failed = 1; /* the store or the source: stop here */
		net_client_free(*store);
		*store = NULL;
		snprintf(why, whylen, "storing the final checkpoint: %s", rtcms_strerror(rc));
		return rc;
	}
	*stored = 1;
	if (t.target_rc) {
		snprintf(why, whylen, "sending it: %s", rtcms_strerror(t.target_rc));
		return t.target_rc;
	}
	return restore_finish(m, *target, t.count, final->sequence, why, whylen);
}

static void finish(struct manager *m, const char *id, int moved, uint64_t to,
		   uint64_t inc, uint64_t seq, uint64_t size)
{
	uv_mutex_lock(&m->lock);
	struct mproc *p = manager_proc(m, id);
	if (p) {
		p->migrating = 0;
		p->state = PROTO_PS_RUNNING;
		/* what its nodes reported before this is not news of it */
		p->added_ms = manager_mono_ms();
		p->absent_since = 0;
		if (moved) {
			p->node = to;
			p->incarnation = inc;
			p->notified = seq;
			p->durable = seq;
			p->durable_size = size;
			p->failed_seq = 0;
		}
	}
	uv_cond_broadcast(&m->work);
	uv_mutex_unlock(&m->lock);
}

/* CLAIM id in the store for this manager (lease claim_lease). */
static int store_claim(struct manager *m, struct net_client **store, const char *id,
		       uint8_t flags, struct proto_claim_ok *ok, uint64_t *held_until,
		       char *why, size_t whylen)
{
	struct proto_header h;
	union proto_msg q, r;

	memset(&q, 0, sizeof(q));
	snprintf(q.claim.process, sizeof(q.claim.process), "%s", id);
	snprintf(q.claim.claimant, sizeof(q.claim.claimant), "%s", m->cfg.name);
	q.claim.lease_ms = (uint32_t)m->cfg.claim_lease_ms;
	q.claim.flags = flags;
	int rc = manager_store_connect(m, store);
	if (rc == 0)
		rc = net_client_call(*store, PROTO_CLAIM, &q, PROTO_CLAIM_OK, &h, &r);
	if (rc) {
		const struct proto_error *e = *store ? net_client_last_error(*store) : NULL;
		snprintf(why, whylen, "claiming %s: %s", id, e && e->code == rc ? e->text
								  : rtcms_strerror(rc));
		if (held_until && rc == RTCMS_ECLAIMED && e)
			*held_until = e->detail; /* the holder's lease end, unix ms */
		if (rc == RTCMS_ECONN || rc == RTCMS_ETIMEDOUT) {
			manager_store_result(m, rc, "CLAIM");
			net_client_free(*store);
			*store = NULL;
		}
		return rc;
	}
	*ok = r.claim_ok;
	log_info("[manager -> store] CLAIM %s: claim %016" PRIx64 " on %" PRIu64 "/%" PRIu64
		 ", lease %" PRIu64 " ms", id, ok->claim_id, ok->incarnation, ok->sequence,
		 m->cfg.claim_lease_ms);
	return 0;
}

static void store_release(struct manager *m, struct net_client **store, const char *id,
			  uint64_t claim_id)
{
	struct proto_header h;
	union proto_msg q, r;
	memset(&q, 0, sizeof(q));
	snprintf(q.release.process, sizeof(q.release.process), "%s", id);
	q.release.claim_id = claim_id;
	if (manager_store_connect(m, store) == 0 &&
	    net_client_call(*store, PROTO_RELEASE, &q, PROTO_OK, &h, &r) == 0)
		log_info("[manager -> store] RELEASE %s", id);
	else
		log_warn("[manager -> store] RELEASE %s failed; the lease expires", id);
}

/*
 * Restore checkpoint final of p on the best node, else the next. Unless
 * *durable, the first attempt relays the checkpoint from the source agent
 * (src_addr) to the store and the target at once; once it is durable,
 * attempts read it from the store. Returns the chosen index into nodes
 * (dst open for the ADOPT), or an error with why; *fatal if the move must
 * stop (the store or the source failed).
 */
static int place_and_restore(struct manager *m, struct mproc *p,
			     struct net_client **store, struct net_client **dst,
			     struct placement_node *nodes, char (*addrs)[PROTO_ADDR_MAX + 1],
			     size_t n, const struct proto_ckpt_meta *final, uint64_t source,
			     int allow_src, const char *src_addr, int *durable,
			     char *why, size_t whylen)
{
	const char *id = final->process;
	int rc = RTCMS_ENOSPC;

	snprintf(why, whylen, "no node can take %s (%" PRIu64 " bytes)", id, final->size);
	for (;;) {
		struct placement_config pc;
		uv_mutex_lock(&m->lock); /* SIGHUP may change it */
		pc = m->placement;
		uv_mutex_unlock(&m->lock);
		int k = placement_choose(&pc, nodes, n, final->size, source, allow_src, NULL);
		if (k < 0)
			return RTCMS_ENOSPC;
		log_info("placement: %s -> node %016" PRIx64 " (%s, %" PRIu64
			 " MiB free, cpu %u.%u%%, quota %u/%u)", id, nodes[k].info.node,
			 addrs[k], nodes[k].info.mem_available >> 20,
			 nodes[k].info.cpu_load_permille / 10, nodes[k].info.cpu_load_permille % 10,
			 nodes[k].info.quota_free, nodes[k].info.quota_max);
		char reason[PROTO_TEXT_MAX + 1];
		if (!*durable) {
			int store_failed = 0, stored = 0;
			rc = tee_restore(m, store, dst, src_addr, addrs[k], final,
					 &store_failed, &stored, reason, sizeof(reason));
			if (store_failed) {
				manager_store_result(m, rc, "PUT");
				snprintf(why, whylen, "%s", reason);
				net_client_free(*dst); /* the target kills what it started */
				*dst = NULL;
				return rc ? rc : RTCMS_EIO;
			}
			if (!stored)
				goto next; /* the target was unreachable: nothing sent */
			*durable = 1;
			manager_store_result(m, 0, "PUT");
			log_info("[manager -> store] %s %" PRIu64 "/%" PRIu64 " durable "
				 "(relayed to the store and the target at once)", id,
				 final->incarnation, final->sequence);
			uv_mutex_lock(&m->lock);
			if (p->incarnation == final->incarnation && p->durable < final->sequence) {
				p->durable = final->sequence;
				p->durable_size = final->size;
				p->durable_at_ms = manager_mono_ms();
			}
			uv_mutex_unlock(&m->lock);
		} else {
			rc = restore_on(m, store, dst, addrs[k], id, final->incarnation,
					final->sequence, reason, sizeof(reason));
		}
		if (rc == 0) {
			log_info("[%s -> manager] RESTORE_OK %s: resumed from %" PRIu64, addrs[k],
				 id, final->sequence);
			return k;
		}
next:
		log_warn("[manager -> %s] RESTORE %s failed: %s; trying the next node",
			 addrs[k], id, reason);
		snprintf(why, whylen, "restore on node %016" PRIx64 " failed: %s",
			 nodes[k].info.node, reason);
		net_client_free(*dst);
		*dst = NULL;
		nodes[k].alive = 0;
	}
}

/* COMMIT the claim with the new node, then ADOPT at the target. Returns 0
 * (and *new_inc), RTCMS_ESTATE if committed but the target did not confirm
 * (*committed set either way once the store committed), or the error. */
static int commit_adopt(struct manager *m, struct net_client **store,
			struct net_client **dst, const char *id, uint64_t claim_id,
			uint64_t node, const char *addr, uint64_t *new_inc, int *committed,
			char *why, size_t whylen)
{
	struct proto_header h;
	union proto_msg q, r;
	char text[PROTO_TEXT_MAX + 1];

	*committed = 0;
	memset(&q, 0, sizeof(q));
	snprintf(q.commit.process, sizeof(q.commit.process), "%s", id);
	q.commit.claim_id = claim_id;
	q.commit.new_node = node;
	int rc = manager_store_connect(m, store);
	if (rc == 0)
		rc = net_client_call(*store, PROTO_COMMIT, &q, PROTO_COMMIT_OK, &h, &r);
	if (rc) {
		snprintf(why, whylen, "committing %s: %s", id, rtcms_strerror(rc));
		return rc; /* the target stops the unconfirmed instance itself */
	}
	*committed = 1;
	*new_inc = r.commit_ok.incarnation;
	crash_point("after-commit");
	log_info("[manager -> store] COMMIT %s: incarnation %" PRIu64 " on node %016" PRIx64,
		 id, *new_inc, node);
	memset(&q, 0, sizeof(q));
	snprintf(q.ref.process, sizeof(q.ref.process), "%s", id);
	q.ref.incarnation = *new_inc;
	rc = agent_call(m, dst, addr, PROTO_ADOPT, &q, PROTO_OK, &r,
			(int)m->cfg.io_timeout_ms, text, sizeof(text));
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

int manager_migrate(struct manager *m, const char *who, const char *id,
		    uint64_t target, int allow_same, struct migrate_result *res,
		    char *why, size_t whylen)
{
	struct placement_node nodes[MANAGER_NODES_MAX];
	char addrs[MANAGER_NODES_MAX][PROTO_ADDR_MAX + 1];
	char src_addr[PROTO_ADDR_MAX + 1] = "";
	char text[PROTO_TEXT_MAX + 1];
	struct net_client *src = NULL, *store = NULL, *dst = NULL;
	struct proto_ckpt_meta final;
	struct proto_claim_ok claim;
	union proto_msg q, r;
	uint64_t t0 = uv_hrtime();
	int rc, claimed = 0, committed = 0;

	memset(res, 0, sizeof(*res));
	uv_mutex_lock(&m->lock);
	struct mproc *p = manager_proc(m, id);
	if (!p || p->state == PROTO_PS_EXITED) {
		uv_mutex_unlock(&m->lock);
		snprintf(why, whylen, "no running process %s", id);
		return RTCMS_ENOENT;
	}
	if (p->migrating) {
		uv_mutex_unlock(&m->lock);
		snprintf(why, whylen, "%s is being moved already", id);
		return RTCMS_EBUSY;
	}
	struct mnode *sn = manager_node(m, p->node);
	uint64_t source = p->node, inc = p->incarnation;
	/* p stays valid: the table is a fixed array and entries are never
	 * removed */
	if (sn)
		snprintf(src_addr, sizeof(src_addr), "%s", sn->address);
	if (!sn || !manager_node_alive(m, sn)) {
		uv_mutex_unlock(&m->lock);
		snprintf(why, whylen, "the node of %s (%016" PRIx64 ") is not alive", id, source);
		return RTCMS_ESTATE;
	}
	p->migrating = 1; /* a pull of it in progress gives up at its next chunk */
	uv_mutex_unlock(&m->lock);
	res->from = source;
	log_info("[%s -> manager] MIGRATE %s: from node %016" PRIx64 "%s", who, id, source,
		 target ? "" : ", to the best node");

	/* 1. final checkpoint, program frozen */
	memset(&q, 0, sizeof(q));
	snprintf(q.ref.process, sizeof(q.ref.process), "%s", id);
	q.ref.incarnation = inc;
	q.ref.arg = (uint32_t)m->cfg.freeze_timeout_ms;
	rc = agent_call(m, &src, src_addr, PROTO_FREEZE, &q, PROTO_FROZEN, &r,
			(int)m->cfg.freeze_timeout_ms + (int)m->cfg.io_timeout_ms,
			text, sizeof(text));
	if (rc) {
		snprintf(why, whylen, "freezing %s on node %016" PRIx64 ": %s", id, source, text);
		net_client_free(src);
		finish(m, id, 0, 0, 0, 0, 0);
		log_warn("MIGRATE %s failed: %s", id, why);
		return rc;
	}
	final = r.meta;
	final.spec = NULL;
	final.spec_len = 0;
	log_info("[manager -> %s] FREEZE %s: final checkpoint %" PRIu64 "/%" PRIu64
		 " (%" PRIu64 " bytes)", src_addr, id, final.incarnation, final.sequence,
		 final.size);

	/* 2. where to */
	size_t n = manager_poll_nodes(m, nodes, addrs, MANAGER_INFO_TIMEOUT(m));
	int allow_src = allow_same || target == source;
	for (size_t i = 0; i < n; i++)
		if (target && nodes[i].info.node != target)
			nodes[i].alive = 0;

	/* 3. claim: from here on this manager alone moves the process; the
	 * claim pins the store's latest checkpoint, which may be older than
	 * the final one (not stored yet), never newer */
	rc = store_claim(m, &store, id, 0, &claim, NULL, why, whylen);
	int stored_final = 0;
	if (rc == RTCMS_ENOENT) {
		/* nothing of it is durable yet (it asked to move right after it
		 * started): store the final checkpoint first, then claim */
		struct pull_result pr;
		int side = 0;
		rc = manager_pull(m, &store, id, final.incarnation, final.sequence, 0, src_addr,
				  &pr, &side, NULL);
		if (rc == 0 && pr.sequence != final.sequence)
			rc = RTCMS_ESTATE;
		if (rc) {
			snprintf(why, whylen, "storing the final checkpoint of %s: %s", id,
				 rtcms_strerror(rc));
			goto fail;
		}
		stored_final = 1;
		log_info("[manager -> store] %s %" PRIu64 "/%" PRIu64 " durable (the first of it, "
			 "before the move)", id, final.incarnation, final.sequence);
		rc = store_claim(m, &store, id, 0, &claim, NULL, why, whylen);
	}
	if (rc)
		goto fail;
	claimed = 1;
	crash_point("after-claim");
	if (claim.incarnation > final.incarnation ||
	    (claim.incarnation == final.incarnation && claim.sequence > final.sequence)) {
		snprintf(why, whylen, "the store's latest checkpoint of %s is %" PRIu64 "/%" PRIu64
			 ", not before the final %" PRIu64 "/%" PRIu64, id, claim.incarnation,
			 claim.sequence, final.incarnation, final.sequence);
		rc = RTCMS_ESTATE;
		goto fail;
	}
	uv_mutex_lock(&m->lock);
	int durable = stored_final ||
		      (p->durable >= final.sequence && p->incarnation == final.incarnation);
	uv_mutex_unlock(&m->lock);

	/* 4. restore on the best node, else the next */
	int chosen = place_and_restore(m, p, &store, &dst, nodes, addrs, n, &final, source,
				       allow_src, src_addr, &durable, why, whylen);
	if (chosen < 0) {
		rc = chosen;
		goto fail;
	}

	/* 5. commit (only once the final checkpoint is durable and the target
	 * resumed), adopt, stop the old instance */
	crash_point("before-commit");
	uint64_t new_inc = 0;
	rc = commit_adopt(m, &store, &dst, id, claim.claim_id, nodes[chosen].info.node,
			  addrs[chosen], &new_inc, &committed, why, whylen);
	if (!committed)
		goto fail;
	claimed = 0;
	memset(&q, 0, sizeof(q));
	snprintf(q.ref.process, sizeof(q.ref.process), "%s", id);
	q.ref.incarnation = inc;
	net_client_free(src); /* may have idled out during a long restore */
	src = NULL;
	if (agent_call(m, &src, src_addr, PROTO_STOP, &q, PROTO_OK, &r,
		       (int)m->cfg.io_timeout_ms, text, sizeof(text)) != 0)
		log_error("[manager -> %s] STOP %s: %s", src_addr, id, text);
	res->to = nodes[chosen].info.node;
	res->incarnation = new_inc;
	res->sequence = final.sequence;
	res->millis = (uint32_t)((uv_hrtime() - t0) / 1000000);
	log_info("MIGRATE %s done: node %016" PRIx64 " -> %016" PRIx64
		 ", incarnation %" PRIu64 ", from checkpoint %" PRIu64 " in %u ms", id,
		 res->from, res->to, new_inc, final.sequence, res->millis);
	finish(m, id, 1, res->to, new_inc, final.sequence, final.size);
	if (rc) { /* committed but not confirmed: restore it from the store */
		uv_mutex_lock(&m->lock);
		p->state = PROTO_PS_WAITING;
		p->retry_at = 0;
		uv_mutex_unlock(&m->lock);
	}
	net_client_free(src);
	net_client_free(dst);
	net_client_free(store);
	return rc; /* 0, or RTCMS_ESTATE if the target did not confirm */

fail:
	log_warn("MIGRATE %s failed: %s", id, why);
	if (claimed)
		store_release(m, &store, id, claim.claim_id);
	memset(&q, 0, sizeof(q));
	snprintf(q.ref.process, sizeof(q.ref.process), "%s", id);
	q.ref.incarnation = inc;
	net_client_free(src);
	src = NULL;
	if (agent_call(m, &src, src_addr, PROTO_THAW, &q, PROTO_OK, &r,
		       (int)m->cfg.io_timeout_ms, text, sizeof(text)) == 0)
		log_info("[manager -> %s] THAW %s: it goes on where it was", src_addr, id);
	else
		log_error("[manager -> %s] THAW %s: %s", src_addr, id, text);
	finish(m, id, 0, 0, 0, 0, 0);
	net_client_free(src);
	net_client_free(dst);
	net_client_free(store);
	return rc ? rc : RTCMS_EINTERNAL;
}

int manager_recover(struct manager *m, const char *id, struct recover_req *req, char *why,
		    size_t whylen)
{
	int source_alive = req->source_alive;
	struct placement_node nodes[MANAGER_NODES_MAX];
	char addrs[MANAGER_NODES_MAX][PROTO_ADDR_MAX + 1];
	struct net_client *store = NULL, *dst = NULL;
	struct proto_claim_ok claim;
	struct proto_ckpt_meta meta;
	int committed = 0, durable = 1;
	uint64_t t0 = uv_hrtime();

	char src_addr[PROTO_ADDR_MAX + 1] = "";
	uv_mutex_lock(&m->lock);
	struct mproc *p = manager_proc(m, id);
	uint64_t source = p ? p->node : 0;
	struct mnode *sn = manager_node(m, source);
	if (sn)
		snprintf(src_addr, sizeof(src_addr), "%s", sn->address);
	uv_mutex_unlock(&m->lock);
	if (!p) {
		snprintf(why, whylen, "no process %s", id);
		return RTCMS_ENOENT;
	}
	req->elsewhere = 0;
	req->held_until = 0;
	req->failed = 0;
	int rc = store_claim(m, &store, id, req->gave_up ? PROTO_CLAIM_F_GAVE_UP : 0, &claim,
			     &req->held_until, why, whylen);
	if (rc) {
		req->failed = rc == RTCMS_ESTATE; /* failed for good (store.h) */
		net_client_free(store);
		return rc;
	}
	if (claim.node != source) {
		/* another manager restored it meanwhile (the store recorded the
		 * move at its COMMIT): nothing to do, and doing it would run
		 * the program twice */
		req->elsewhere = claim.node;
		snprintf(why, whylen, "%s was restored on node %016" PRIx64 " already", id,
			 claim.node);
		store_release(m, &store, id, claim.claim_id);
		net_client_free(store);
		return RTCMS_EEXIST;
	}
	if (source_alive) {
		/* its node is alive and did not report it: ask again now that
		 * nobody else can commit a move (a report may be stale) */
		int holds = manager_agent_holds(m, src_addr, id);
		if (holds != 0) {
			req->elsewhere = source;
			snprintf(why, whylen, holds > 0 ? "%s still runs on node %016" PRIx64
				 : "%s: node %016" PRIx64 " cannot be asked whether it runs it", id,
				 source);
			store_release(m, &store, id, claim.claim_id);
			net_client_free(store);
			return holds > 0 ? RTCMS_EEXIST : holds;
		}
	}
	/* the claim names the latest durable checkpoint: restore exactly it */
	memset(&meta, 0, sizeof(meta));
	snprintf(meta.process, sizeof(meta.process), "%s", id);
	meta.incarnation = claim.incarnation;
	meta.sequence = claim.sequence;
	rc = store_client_get(store, id, claim.incarnation, claim.sequence, 1, &meta, NULL,
			      NULL, NULL);
	if (rc) {
		snprintf(why, whylen, "reading the metadata of %s %" PRIu64 "/%" PRIu64 ": %s",
			 id, claim.incarnation, claim.sequence, rtcms_strerror(rc));
		goto fail;
	}
	meta.spec = NULL;
	meta.spec_len = 0;
	size_t n = manager_poll_nodes(m, nodes, addrs, MANAGER_INFO_TIMEOUT(m));
	int chosen = place_and_restore(m, p, &store, &dst, nodes, addrs, n, &meta, source,
				       source_alive, NULL, &durable, why, whylen);
	if (chosen < 0) {
		rc = chosen;
		goto fail;
	}
	uint64_t new_inc = 0;
	rc = commit_adopt(m, &store, &dst, id, claim.claim_id, nodes[chosen].info.node,
			  addrs[chosen], &new_inc, &committed, why, whylen);
	if (!committed)
		goto fail;
	log_info("RESTORE %s done: was on node %016" PRIx64 ", now on %016" PRIx64
		 ", incarnation %" PRIu64 ", from checkpoint %" PRIu64 " in %" PRIu64 " ms",
		 id, source, nodes[chosen].info.node, new_inc, meta.sequence,
		 (uint64_t)((uv_hrtime() - t0) / 1000000));
	finish(m, id, 1, nodes[chosen].info.node, new_inc, meta.sequence, meta.size);
	net_client_free(dst);
	net_client_free(store);
	return rc;
fail:
	store_release(m, &store, id, claim.claim_id);
	net_client_free(dst);
	net_client_free(store);
	return rc ? rc : RTCMS_EINTERNAL;
}

int manager_resolve(struct manager *m, const char *id, uint64_t incarnation,
		    uint64_t node, uint32_t *verdict, char *why, size_t whylen)
{
	struct net_client *store = NULL;
	struct proto_claim_ok claim;
	uint64_t held_until = 0;

	uv_mutex_lock(&m->lock);
	struct mproc *p = manager_proc(m, id);
	int busy = p && p->migrating;
	uv_mutex_unlock(&m->lock);
	if (busy) {
		*verdict = PROTO_VERDICT_WAIT; /* this manager is moving it */
		return 0;
	}
	int rc = store_claim(m, &store, id, 0, &claim, &held_until, why, whylen);
	if (rc == RTCMS_ECLAIMED) {
		*verdict = PROTO_VERDICT_WAIT; /* another manager is moving it */
		net_client_free(store);
		return 0;
	}
	if (rc) {
		net_client_free(store);
		return rc;
	}
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
	store_release(m, &store, id, claim.claim_id);
	net_client_free(store);
	return 0;
}
