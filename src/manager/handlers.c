/*
 * handlers.c - rtcms-manager's main interface, one request at a time on a
 * connection thread: REGISTER (thesis op 0), CKPT_NOTIFY (op 1), EXITED
 * from agents; MIGRATE (op 2) from agents or rtcmsctl; RUN, DRAIN,
 * CORDON, UNCORDON, FORGET, MSTATUS and LIST (relayed to the store) from
 * rtcmsctl.
 */
#include "handlers.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "candidates.h"
#include "daemon/rpc_server.h"
#include "detector.h"
#include "log/log.h"
#include "migrate.h"
#include "puller.h"
#include "restore.h"
#include "rtcms_error.h"
#include "table.h"


static enum rpc_result reply_ok(struct net_client *c, const struct proto_header *hdr)
{
	union proto_msg m;
	memset(&m, 0, sizeof(m));
	return rpc_sent(net_client_reply(c, PROTO_OK, 0, hdr->request, &m));
}

/* Whether the agent's data key is the cluster's: its check value against
 * the one the store recorded first (cached once confirmed). 0, or
 * RTCMS_EAUTH with the reason in why; a store that cannot be asked lets
 * the agent in (asked again at its next REGISTER). */
static int datakey_check(struct manager *m, const char *who, const struct proto_register *r,
			 char *why, size_t whylen)
{
	uint64_t recorded = 0;

	if (!r->data_key_id || !m->rpc.store->datakey)
		return 0;
	uv_mutex_lock(&m->lock);
	for (size_t i = 0; i < m->datakey_count; i++)
		if (m->datakeys[i].id == r->data_key_id) {
			recorded = m->datakeys[i].kcv;
			uv_mutex_unlock(&m->lock);
			goto compare;
		}
	uv_mutex_unlock(&m->lock);
	if (m->rpc.store->datakey(m->rpc.ctx, r->data_key_id, r->data_kcv, &recorded, why,
				  whylen) != 0) {
		log_debug("[%s -> manager] REGISTER: data key %" PRIu32 " not checked (store: "
			  "%s)", who, r->data_key_id, why);
		return 0;
	}
	uv_mutex_lock(&m->lock);
	if (m->datakey_count < MANAGER_DATAKEYS_MAX) {
		m->datakeys[m->datakey_count].id = r->data_key_id;
		m->datakeys[m->datakey_count].kcv = recorded;
		m->datakey_count++;
	}
	uv_mutex_unlock(&m->lock);
compare:
	if (recorded == r->data_kcv)
		return 0;
	snprintf(why, whylen, "node %016" PRIx64 " (%s) seals under data key %" PRIu32
		 " with check value %016" PRIx64 ", but the cluster's data key %" PRIu32
		 " has check value %016" PRIx64 ": this agent was given another data "
		 "keyring", r->node, r->name, r->data_key_id, r->data_kcv, r->data_key_id,
		 recorded);
	return RTCMS_EAUTH;
}

static enum rpc_result handle_register(struct manager *m, struct net_client *c, const char *who,
			   const struct proto_header *hdr, const struct proto_register *r)
{
	union proto_msg out;
	char why[PROTO_TEXT_MAX + 1];

	if (r->node == 0)
		return rpc_reply_error(c, hdr, RTCMS_EINVAL, "node id 0 is not valid");
	if (datakey_check(m, who, r, why, sizeof(why)) != 0) {
		/* said once per node every 30 s: it retries twice a second */
		const size_t slots = sizeof(m->key_refusals) / sizeof(m->key_refusals[0]);
		uint64_t now = manager_mono_ms();
		bool quiet = false;
		uv_mutex_lock(&m->lock);
		for (size_t i = 0; i < slots; i++)
			if (m->key_refusals[i].node == r->node &&
			    now - m->key_refusals[i].ms < 30000)
				quiet = true;
		if (!quiet) {
			m->key_refusals[m->key_refusal_next].node = r->node;
			m->key_refusals[m->key_refusal_next].ms = now;
			m->key_refusal_next = (m->key_refusal_next + 1) % slots;
		}
		uv_mutex_unlock(&m->lock);
		if (!quiet)
			log_error("[%s -> manager] REGISTER refused: %s", who, why);
		return rpc_reply_error(c, hdr, RTCMS_EAUTH, "%s", why);
	}
	uv_mutex_lock(&m->lock);
	struct mnode *n = manager_node(m, r->node);
	bool fresh = !n || memcmp(n->boot, r->boot, PROTO_BOOT_SIZE) != 0;
	if (!n) {
		if (m->node_count >= MANAGER_NODES_MAX) {
			uv_mutex_unlock(&m->lock);
			return rpc_reply_error(c, hdr, RTCMS_ENOSPC, "this manager knows %d nodes "
					 "already", MANAGER_NODES_MAX);
		}
		n = manager_node_add(m, r->node);
		log_info("[%s -> manager] REGISTER: node %016" PRIx64 " at %s joins "
			 "(quota %u, area %" PRIu64 " MiB)", who, r->node, r->address,
			 r->quota_max, r->area_capacity >> 20);
	} else if (memcmp(n->boot, r->boot, PROTO_BOOT_SIZE) != 0 && !n->failed &&
		   n->seen_ms && manager_mono_ms() - n->seen_ms < 3 * m->cfg.heartbeat_ms &&
		   strcmp(n->address, r->address) != 0) {
		/* two agents with one node id: the one still heartbeating keeps
		 * it (an agent that restarted stopped heartbeating before: it is
		 * refused at most until its retry) */
		char held[PROTO_ADDR_MAX + 1];
		snprintf(held, sizeof(held), "%s", n->address);
		uv_mutex_unlock(&m->lock);
		log_error("[%s -> manager] REGISTER refused: node id %016" PRIx64 " is held by "
			  "the live agent at %s; the agent at %s must use another node_id",
			  who, r->node, held, r->address);
		return rpc_reply_error(c, hdr, RTCMS_EEXIST, "node id %016" PRIx64 " is held by "
				       "the live agent at %s; this agent (%s) must use another "
				       "node_id", r->node, held, r->address);
	} else if (memcmp(n->boot, r->boot, PROTO_BOOT_SIZE) != 0) {
		log_info("[%s -> manager] REGISTER: node %016" PRIx64 " at %s restarted",
			 who, r->node, r->address);
		n->hb_counter = 0;
		/* the old boot's programs may live on until their lease from its
		 * last answered heartbeat runs out - answered by any manager, maybe
		 * later than this one heard it, but sent before the new boot
		 * started: count from now. Its report is not this one's. */
		n->prev_boot_seen_ms = manager_mono_ms();
		n->report_gen = 0;
		n->report_ms = 0;
		n->report_count = 0;
		n->failed_notice = false; /* a new boot: the operator's notice is done */
		n->failed = false;    /* it rejoins empty */
	}
	snprintf(n->name, sizeof(n->name), "%s", r->name);
	snprintf(n->address, sizeof(n->address), "%s", r->address);
	memcpy(n->boot, r->boot, PROTO_BOOT_SIZE);
	n->area_capacity = r->area_capacity;
	n->mem_total = r->mem_total;
	n->quota_max = r->quota_max;
	/* liveness comes from heartbeats (they also carry the agent's lease);
	 * a (re)started node counts as alive from its registration on */
	if (fresh)
		n->seen_ms = manager_mono_ms();
	uv_mutex_unlock(&m->lock);
	memset(&out, 0, sizeof(out));
	snprintf(out.reg_ok.name, sizeof(out.reg_ok.name), "%s", m->cfg.name);
	out.reg_ok.epoch = m->epoch;
	out.reg_ok.heartbeat_ms = (uint32_t)m->cfg.heartbeat_ms;
	out.reg_ok.lease_ms = (uint32_t)m->cfg.agent_lease_ms;
	return rpc_sent(net_client_reply(c, PROTO_REGISTER_OK, 0, hdr->request, &out));
}

/* PROCS: an agent's programs and their states, the reconciliation loop's
 * view of what runs. Only a registered node of the same boot is heard. */
static enum rpc_result handle_procs(struct manager *m, struct net_client *c, const char *who,
			const struct proto_header *hdr, const struct proto_procs *r)
{
	uv_mutex_lock(&m->lock);
	struct mnode *n = manager_node(m, r->node);
	if (!n || memcmp(n->boot, r->boot, PROTO_BOOT_SIZE) != 0) {
		uv_mutex_unlock(&m->lock);
		return rpc_reply_error(c, hdr, RTCMS_ESTATE, "node %016" PRIx64 " (this boot) "
				       "has not registered", r->node);
	}
	if (!n->report)
		n->report = calloc(PROTO_PROCS_MAX, sizeof(*n->report));
	if (!n->report) {
		uv_mutex_unlock(&m->lock);
		return rpc_reply_error(c, hdr, RTCMS_ENOMEM, "no memory for the report");
	}
	if (r->generation < n->report_gen && n->report_ms) {
		uv_mutex_unlock(&m->lock);
		return reply_ok(c, hdr); /* an older report overtaken by a newer one */
	}
	memcpy(n->report, r->procs, r->count * sizeof(*r->procs));
	n->report_count = r->count;
	n->report_gen = r->generation;
	n->report_ms = manager_mono_ms();
	uv_cond_broadcast(&m->work); /* the reconciliation loop looks at once */
	uv_mutex_unlock(&m->lock);
	log_debug("[%s -> manager] PROCS node %016" PRIx64 ": %u program(s), generation %"
		  PRIu64, who, r->node, r->count, r->generation);
	return reply_ok(c, hdr);
}

static enum rpc_result handle_notify(struct manager *m, struct net_client *c, const char *who,
			 const struct proto_header *hdr, const struct proto_ckpt_meta *mt)
{
	uv_mutex_lock(&m->lock);
	struct mnode *n = manager_node(m, mt->node);
	if (!n) {
		uv_mutex_unlock(&m->lock);
		return rpc_reply_error(c, hdr, RTCMS_ESTATE, "node %016" PRIx64 " has not "
				 "registered", mt->node);
	}
	struct mproc *p = manager_proc_add(m, mt->process);
	if (!p) {
		uv_mutex_unlock(&m->lock);
		return rpc_reply_error(c, hdr, RTCMS_ENOSPC, "process table full");
	}
	if (p->incarnation && mt->incarnation < p->incarnation) {
		uint64_t cur = p->incarnation;
		uv_mutex_unlock(&m->lock);
		log_prog(LOG_WARN, mt->process, mt->incarnation, mt->sequence,
			 "[%s -> manager] CKPT_NOTIFY %s %" PRIu64 "/%" PRIu64 " from an "
			 "old incarnation (current %" PRIu64 "): ignored", who, mt->process,
			 mt->incarnation, mt->sequence, cur);
		return rpc_reply_error(c, hdr, RTCMS_EFENCED, "incarnation %" PRIu64 " is older "
				 "than %" PRIu64, mt->incarnation, cur);
	}
	if (mt->incarnation > p->incarnation) {
		p->incarnation = mt->incarnation;
		p->durable = 0;
		p->failed_seq = 0;
		p->notified = 0;
	}
	if (!p->migrating) {
		p->node = mt->node;
		p->state = PROTO_PS_RUNNING;
	}
	if (mt->sequence > p->notified) {
		p->notified = mt->sequence;
		p->notified_ns = uv_hrtime();
	}
	uv_cond_signal(&m->work);
	uv_mutex_unlock(&m->lock);
	log_prog(LOG_DEBUG, mt->process, mt->incarnation, mt->sequence,
		 "[%s -> manager] CKPT_NOTIFY %s %" PRIu64 "/%" PRIu64 " (%" PRIu64
		 " bytes)", who, mt->process, mt->incarnation, mt->sequence, mt->size);
	return reply_ok(c, hdr);
}

static enum rpc_result handle_exited(struct manager *m, struct net_client *c, const char *who,
			 const struct proto_header *hdr, const struct proto_proc_ref *r)
{
	uv_mutex_lock(&m->lock);
	struct mproc *p = manager_proc(m, r->process);
	bool current = p && p->incarnation == r->incarnation && !p->migrating;
	if (current)
		p->state = PROTO_PS_EXITED;
	uv_mutex_unlock(&m->lock);
	bool clean = WIFEXITED((int)r->arg) && WEXITSTATUS((int)r->arg) == 0;
	log_prog(LOG_INFO, r->process, r->incarnation, 0,
		 "[%s -> manager] EXITED %s incarnation %" PRIu64 " (%s %d)", who,
		 r->process, r->incarnation, WIFEXITED((int)r->arg) ? "exit status" : "signal",
		 WIFEXITED((int)r->arg) ? WEXITSTATUS((int)r->arg) : WTERMSIG((int)r->arg));
	if (current && clean) {
		/* it finished: nothing to restore, ever; its checkpoints go, so
		 * a manager that starts later does not take it for lost (and the
		 * id can be run again) */
		uv_mutex_lock(&m->lock);
		p->ended = true;
		/* a pull in flight would store a checkpoint after the delete:
		 * let it finish first (no new one starts for an exited program) */
		p->exit_wait = true;
		for (uint64_t waited = 0; p->pulling && waited < m->cfg.io_timeout_ms; waited += 5) {
			uv_mutex_unlock(&m->lock);
			uv_sleep(5);
			uv_mutex_lock(&m->lock);
			p = manager_proc(m, r->process);
			if (!p)
				break;
		}
		if (p)
			p->exit_wait = false;
		uv_mutex_unlock(&m->lock);
		puller_forget(m, r->process);
	}
	return reply_ok(c, hdr);
}

static enum rpc_result handle_status(struct manager *m, struct net_client *c,
			 const struct proto_header *hdr)
{
	struct placement_node info[MANAGER_NODES_MAX];
	char addrs[MANAGER_NODES_MAX][PROTO_ADDR_MAX + 1];
	union proto_msg out;

	/* the reply's tables: this request's own */
	struct proto_node_entry *nodes = calloc(PROTO_NODES_MAX, sizeof(*nodes));
	struct proto_proc_entry *procs = calloc(PROTO_PROCS_MAX, sizeof(*procs));
	if (!nodes || !procs) {
		free(nodes);
		free(procs);
		return rpc_reply_error(c, hdr, RTCMS_ENOMEM, "out of memory");
	}
	/* fresh metrics from every alive node */
	/* a frozen agent must not hold status up for io_timeout: 1 s each */
	size_t ni = candidates_poll(m, info, addrs, 1000);
	memset(&out, 0, sizeof(out));
	uv_mutex_lock(&m->lock);
	snprintf(out.mstatus.name, sizeof(out.mstatus.name), "%s", m->cfg.name);
	snprintf(out.mstatus.store, sizeof(out.mstatus.store), "%s", m->cfg.store);
	out.mstatus.store_up = (uint8_t)m->store_up;
	snprintf(out.mstatus.store_error, sizeof(out.mstatus.store_error), "%s",
		 m->store_error);
	uint64_t now = manager_mono_ms();
	for (size_t i = 0; i < m->node_count && i < PROTO_NODES_MAX; i++) {
		const struct mnode *n = &m->nodes[i];
		struct proto_node_entry *e = &nodes[i];
		memset(e, 0, sizeof(*e));
		e->node = n->node;
		snprintf(e->name, sizeof(e->name), "%s", n->name);
		snprintf(e->address, sizeof(e->address), "%s", n->address);
		e->alive = (uint8_t)detector_node_alive(m, n);
		e->cordoned = cordon_set_has(&m->cordons, n->node);
		e->seen_ago_ms = n->seen_ms ? now - n->seen_ms : UINT64_MAX;
		e->mem_total = n->mem_total;
		e->quota_max = n->quota_max;
		for (size_t k = 0; k < ni; k++)
			if (info[k].info.node == n->node && info[k].alive) {
				e->mem_total = info[k].info.mem_total;
				e->mem_available = info[k].info.mem_available;
				e->cpu_load_permille = info[k].info.cpu_load_permille;
				e->quota_max = info[k].info.quota_max;
				e->quota_free = info[k].info.quota_free;
				e->area_used = info[k].info.area_used;
				e->processes = info[k].info.processes;
			}
	}
	out.mstatus.node_count = (uint16_t)(m->node_count < PROTO_NODES_MAX ? m->node_count
									  : PROTO_NODES_MAX);
	size_t np = 0;
	for (size_t i = 0; i < m->proc_count && np < PROTO_PROCS_MAX; i++) {
		const struct mproc *p = &m->procs[i];
		if (!p->id[0])
			continue; /* a forgotten one's slot */
		struct proto_proc_entry *e = &procs[np++];
		memset(e, 0, sizeof(*e));
		snprintf(e->process, sizeof(e->process), "%s", p->id);
		e->node = p->node;
		e->incarnation = p->incarnation;
		e->durable = p->durable;
		e->durable_age_ms = p->durable ? now - p->durable_at_ms : 0;
		e->notified = p->notified;
		e->size = p->durable_size;
		e->state = (uint8_t)(p->migrating ? PROTO_PS_MIGRATING : p->state);
		e->restarts = p->restarts;
		e->confirmed_ago_ms = p->confirmed_ms ? now - p->confirmed_ms : UINT64_MAX;
		snprintf(e->reason, sizeof(e->reason), "%s", p->reason);
		if (p->notified > p->durable && p->notified != p->failed_seq)
			out.mstatus.pending++;
	}
	out.mstatus.proc_count = (uint16_t)np;
	uv_mutex_unlock(&m->lock);
	out.mstatus.nodes = nodes;
	out.mstatus.procs = procs;
	int rc = net_client_reply(c, PROTO_MSTATUS_REPLY, 0, hdr->request, &out);
	free(nodes);
	free(procs);
	return rpc_sent(rc);
}

static enum rpc_result handle_list(struct manager *m, struct net_client *c,
		       const struct proto_header *hdr, const struct proto_list *l)
{
	struct rpc_link link = { 0 };
	char text[PROTO_TEXT_MAX + 1];
	union proto_msg r;
	bool more = false;

	struct proto_list_entry *entries = calloc(PROTO_LIST_MAX, sizeof(*entries));
	if (!entries)
		return rpc_reply_error(c, hdr, RTCMS_ENOMEM, "out of memory");
	memset(&r, 0, sizeof(r));
	r.list_reply.entries = entries;
	int rc = m->rpc.store->list(m->rpc.ctx, &link, l, entries, &r.list_reply.count, &more,
				    text, sizeof(text));
	manager_link_close(&link);
	if (rc) {
		if (rc == RTCMS_ECONN || rc == RTCMS_ETIMEDOUT)
			manager_store_result(m, rc, "LIST");
		rc = rpc_reply_error(c, hdr, rc, "store %s: %s", m->cfg.store, text);
	} else {
		rc = net_client_reply(c, PROTO_LIST_REPLY, more ? PROTO_F_MORE : 0, hdr->request,
				      &r);
	}
	free(entries);
	return rpc_sent(rc);
}

static enum rpc_result handle_run(struct manager *m, struct net_client *c, const char *who,
		      const struct proto_header *hdr, const struct proto_run *run)
{
	struct placement_node info[MANAGER_NODES_MAX];
	char addrs[MANAGER_NODES_MAX][PROTO_ADDR_MAX + 1];
	struct rpc_link link = { 0 };
	struct proto_ckpt_meta meta;
	union proto_msg q, r;

	uv_mutex_lock(&m->lock);
	struct mproc *p = manager_proc(m, run->process);
	bool running = p && p->state != PROTO_PS_EXITED;
	uv_mutex_unlock(&m->lock);
	if (running)
		return rpc_reply_error(c, hdr, RTCMS_EEXIST, "%s is already running", run->process);
	/* a process id is used once: its checkpoints identify it */
	int rc = m->rpc.store->meta(m->rpc.ctx, &link, run->process, 0, 0, &meta);
	manager_link_close(&link);
	if (rc == 0)
		return rpc_reply_error(c, hdr, RTCMS_EEXIST, "%s already has checkpoints in the "
				 "store (incarnation %" PRIu64 "); choose another id or delete "
				 "them", run->process, meta.incarnation);
	if (rc != RTCMS_ENOENT) {
		manager_store_result(m, rc, "GET");
		return rpc_reply_error(c, hdr, rc, "cannot check %s in the store %s: %s",
				 run->process, m->cfg.store, rtcms_strerror(rc));
	}
	size_t n = candidates_poll(m, info, addrs, MANAGER_INFO_TIMEOUT(m));
	int pick = RTCMS_ENOSPC;
	if (run->node) {
		for (size_t i = 0; i < n; i++)
			if (info[i].info.node == run->node && info[i].alive)
				pick = (int)i;
		if (pick < 0)
			return rpc_reply_error(c, hdr, RTCMS_ENOENT, "node %016" PRIx64 " is not "
					 "alive", run->node);
		if (info[pick].cordoned)
			return rpc_reply_error(c, hdr, RTCMS_ESTATE, "node %016" PRIx64 " is "
					 "cordoned: it takes no new program until `rtcmsctl "
					 "uncordon %016" PRIx64 "`", run->node, run->node);
	} else {
		struct placement_config pc;
		uv_mutex_lock(&m->lock); /* SIGHUP may change it */
		pc = m->placement;
		uv_mutex_unlock(&m->lock);
		pick = placement_choose(&pc, info, n, 0, 0, 1, NULL);
		if (pick < 0)
			return rpc_reply_error(c, hdr, RTCMS_ENOSPC, "no node has room for %s",
					 run->process);
	}
	q.run = *run;
	q.run.node = info[pick].info.node;
	char text[PROTO_TEXT_MAX + 1];
	memset(&r, 0, sizeof(r));
	rc = m->rpc.agent->run(m->rpc.ctx, addrs[pick], &q.run, &r.run_ok, text, sizeof(text));
	if (rc)
		return rpc_reply_error(c, hdr, rc, "node %016" PRIx64 ": %s", q.run.node, text);
	uv_mutex_lock(&m->lock);
	p = manager_proc_add(m, run->process);
	if (p) {
		p->node = r.run_ok.node;
		p->incarnation = r.run_ok.incarnation;
		p->state = PROTO_PS_RUNNING;
		p->notified = p->durable = p->failed_seq = 0;
	}
	uv_mutex_unlock(&m->lock);
	log_prog(LOG_INFO, run->process, r.run_ok.incarnation, 0,
		 "[%s -> manager] RUN %s: started on node %016" PRIx64 " (pid %u)", who,
		 run->process, r.run_ok.node, r.run_ok.pid);
	return rpc_sent(net_client_reply(c, PROTO_RUN_OK, 0, hdr->request, &r));
}

static enum rpc_result handle_migrate(struct manager *m, struct net_client *c, const char *who,
			  const struct proto_header *hdr, const struct proto_migrate *mg)
{
	struct migrate_result res;
	char why[PROTO_TEXT_MAX + 1];
	union proto_msg out;

	uv_mutex_lock(&m->lock);
	bool cordoned = mg->target && cordon_set_has(&m->cordons, mg->target);
	uv_mutex_unlock(&m->lock);
	if (cordoned)
		return rpc_reply_error(c, hdr, RTCMS_ESTATE, "node %016" PRIx64 " is cordoned: "
				       "it takes no new program until `rtcmsctl uncordon %016"
				       PRIx64 "`", mg->target, mg->target);
	int rc = migrate_run(m, who, mg->process, mg->target, mg->allow_same, &res, why,
			     sizeof(why));
	if (rc)
		return rpc_reply_error(c, hdr, rc, "%s", why);
	memset(&out, 0, sizeof(out));
	snprintf(out.migrate_ok.process, sizeof(out.migrate_ok.process), "%s", mg->process);
	out.migrate_ok.from = res.from;
	out.migrate_ok.to = res.to;
	out.migrate_ok.incarnation = res.incarnation;
	out.migrate_ok.sequence = res.sequence;
	out.migrate_ok.millis = res.millis;
	return rpc_sent(net_client_reply(c, PROTO_MIGRATE_OK, 0, hdr->request, &out));
}

static enum rpc_result handle_node_failed(struct manager *m, struct net_client *c, const char *who,
			      const struct proto_header *hdr, const struct proto_drain *d)
{
	uv_mutex_lock(&m->lock);
	struct mnode *n = manager_node(m, d->node);
	if (n)
		n->failed_notice = true; /* its heartbeats go unanswered: its lease lapses */
	uv_mutex_unlock(&m->lock);
	if (!n)
		return rpc_reply_error(c, hdr, RTCMS_ENOENT, "node %016" PRIx64 " is unknown",
				       d->node);
	log_warn("[%s -> manager] NODE_FAILED %016" PRIx64 ": its heartbeats are no longer "
		 "answered; its programs are restored elsewhere once its lease lapsed "
		 "(node_timeout)", who, d->node);
	return reply_ok(c, hdr);
}

static enum rpc_result handle_resolve(struct manager *m, struct net_client *c, const char *who,
			  const struct proto_header *hdr, const struct proto_proc_ref *r)
{
	union proto_msg out;
	char why[PROTO_TEXT_MAX + 1];
	uint64_t node = 0;
	uint32_t verdict = PROTO_VERDICT_WAIT;

	uv_mutex_lock(&m->lock);
	for (size_t i = 0; i < m->node_count; i++)
		if (strcmp(m->nodes[i].name, who) == 0)
			node = m->nodes[i].node;
	uv_mutex_unlock(&m->lock);
	if (!node)
		return rpc_reply_error(c, hdr, RTCMS_ENOENT, "agent %s has not registered", who);
	int rc = restore_resolve(m, r->process, r->incarnation, node, &verdict, why,
				 sizeof(why));
	if (rc)
		return rpc_reply_error(c, hdr, rc, "%s", why);
	memset(&out, 0, sizeof(out));
	snprintf(out.ref.process, sizeof(out.ref.process), "%s", r->process);
	out.ref.incarnation = r->incarnation;
	out.ref.arg = verdict;
	return rpc_sent(net_client_reply(c, PROTO_RESOLVE_OK, 0, hdr->request, &out));
}

static enum rpc_result handle_drain(struct manager *m, struct net_client *c, const char *who,
			const struct proto_header *hdr, const struct proto_drain *d)
{
	char (*ids)[PROTO_ID_MAX + 1] = calloc(MANAGER_PROCS_MAX, sizeof(*ids));
	union proto_msg out;
	size_t n = 0;

	if (!ids)
		return rpc_reply_error(c, hdr, RTCMS_ENOMEM, "out of memory");
	uv_mutex_lock(&m->lock);
	bool known = manager_node(m, d->node) != NULL;
	/* cordoned first: nothing new lands on it while (or after) it drains */
	int rc = known ? cordon_set_add(&m->cordons, d->node) : 0;
	for (size_t i = 0; i < m->proc_count; i++)
		if (m->procs[i].node == d->node && m->procs[i].state == PROTO_PS_RUNNING)
			snprintf(ids[n++], sizeof(ids[0]), "%s", m->procs[i].id);
	uv_mutex_unlock(&m->lock);
	if (!known || rc) {
		free(ids);
		if (rc)
			return rpc_reply_error(c, hdr, rc, "%d nodes are cordoned already",
					       CORDON_MAX);
		return rpc_reply_error(c, hdr, RTCMS_ENOENT, "node %016" PRIx64 " is unknown",
				 d->node);
	}
	log_info("[%s -> manager] DRAIN node %016" PRIx64 ": cordoned; %zu programs to move",
		 who, d->node, n);
	memset(&out, 0, sizeof(out));
	for (size_t i = 0; i < n; i++) {
		struct migrate_result res;
		char why[PROTO_TEXT_MAX + 1];
		if (migrate_run(m, who, ids[i], 0, false, &res, why, sizeof(why)) == 0)
			out.drain_ok.moved++;
		else
			out.drain_ok.failed++;
	}
	free(ids);
	log_info("DRAIN node %016" PRIx64 ": %u moved, %u failed", d->node,
		 out.drain_ok.moved, out.drain_ok.failed);
	return rpc_sent(net_client_reply(c, PROTO_DRAIN_OK, 0, hdr->request, &out));
}

/* CORDON / UNCORDON: the node takes no new program (RUN, migration,
 * restore) until it is uncordoned. A node this manager has not heard of
 * yet may be cordoned too: the cordon holds from its registration on. */
static enum rpc_result handle_cordon(struct manager *m, struct net_client *c, const char *who,
			 const struct proto_header *hdr, const struct proto_drain *d)
{
	bool on = hdr->type == PROTO_CORDON;
	int rc = 0;
	bool was;

	if (d->node == 0)
		return rpc_reply_error(c, hdr, RTCMS_EINVAL, "node id 0 is not valid");
	uv_mutex_lock(&m->lock);
	bool known = manager_node(m, d->node) != NULL;
	was = cordon_set_has(&m->cordons, d->node);
	if (on)
		rc = cordon_set_add(&m->cordons, d->node);
	else
		cordon_set_remove(&m->cordons, d->node);
	uv_mutex_unlock(&m->lock);
	if (rc)
		return rpc_reply_error(c, hdr, rc, "%d nodes are cordoned already", CORDON_MAX);
	if (on)
		log_info("[%s -> manager] CORDON node %016" PRIx64 "%s: no new programs are "
			 "placed on it until it is uncordoned%s", who, d->node,
			 known ? "" : " (not registered yet)", was ? " (it was already)" : "");
	else
		log_info("[%s -> manager] UNCORDON node %016" PRIx64 ": %s", who, d->node,
			 was ? "it takes new programs again" : "it was not cordoned");
	return reply_ok(c, hdr);
}

/* Take a dead node out of the tables (lock held). The entries are moved:
 * nothing keeps a node's entry across an unlock. */
static void node_remove(struct manager *m, struct mnode *n)
{
	size_t i = (size_t)(n - m->nodes);
	free(n->report); /* its agent's last PROCS report */
	memmove(&m->nodes[i], &m->nodes[i + 1], (m->node_count - i - 1) * sizeof(*n));
	m->node_count--;
}

static enum rpc_result forget_node(struct manager *m, struct net_client *c, const char *who,
		       const struct proto_header *hdr, uint64_t node)
{
	union proto_msg out;
	char busy[PROTO_ID_MAX + 1] = "";

	uv_mutex_lock(&m->lock);
	struct mnode *n = manager_node(m, node);
	if (!n) {
		uv_mutex_unlock(&m->lock);
		return rpc_reply_error(c, hdr, RTCMS_ENOENT, "node %016" PRIx64 " is unknown",
				       node);
	}
	if (detector_node_alive(m, n)) {
		uint64_t ago = manager_mono_ms() - n->seen_ms;
		uv_mutex_unlock(&m->lock);
		return rpc_reply_error(c, hdr, RTCMS_ESTATE, "node %016" PRIx64 " is alive "
				       "(heard %" PRIu64 " ms ago): only a dead node can be "
				       "forgotten (drain it, then stop its agent)", node, ago);
	}
	/* its programs are restored elsewhere first (they are WAITING then) */
	for (size_t i = 0; i < m->proc_count && !busy[0]; i++) {
		const struct mproc *p = &m->procs[i];
		if (p->id[0] && p->node == node &&
		    (p->migrating || p->state == PROTO_PS_RUNNING || p->state == PROTO_PS_MIGRATING))
			snprintf(busy, sizeof(busy), "%s", p->id);
	}
	if (busy[0]) {
		uv_mutex_unlock(&m->lock);
		return rpc_reply_error(c, hdr, RTCMS_ESTATE, "node %016" PRIx64 " still counts "
				       "as the node of %s (not restored elsewhere yet): try again "
				       "in a moment", node, busy);
	}
	node_remove(m, n);
	cordon_set_remove(&m->cordons, node);
	uv_mutex_unlock(&m->lock);
	log_info("[%s -> manager] FORGET node %016" PRIx64 ": removed from the tables (it "
		 "rejoins as a new node if its agent starts again)", who, node);
	memset(&out, 0, sizeof(out));
	out.forget_ok.kind = PROTO_FORGET_NODE;
	out.forget_ok.node = node;
	return rpc_sent(net_client_reply(c, PROTO_FORGET_OK, 0, hdr->request, &out));
}

static enum rpc_result forget_process(struct manager *m, struct net_client *c, const char *who,
			  const struct proto_header *hdr, const char *id)
{
	union proto_msg out;

	uv_mutex_lock(&m->lock);
	struct mproc *p = manager_proc(m, id);
	if (!p) {
		uv_mutex_unlock(&m->lock);
		return rpc_reply_error(c, hdr, RTCMS_ENOENT, "%s is unknown to this manager", id);
	}
	/* running, being moved, or perhaps running (known from the store only,
	 * no agent asked yet): not forgotten; everything else has ended
	 * (exited, failed), was lost, or waits for a node to be restored on */
	if (p->migrating || p->pulling || p->state == PROTO_PS_RUNNING ||
	    p->state == PROTO_PS_MIGRATING || p->state == PROTO_PS_STORED) {
		int state = p->migrating ? PROTO_PS_MIGRATING : p->state;
		uint64_t node = p->node;
		uv_mutex_unlock(&m->lock);
		return rpc_reply_error(c, hdr, RTCMS_ESTATE, "%s is %s (node %016" PRIx64 "): "
				       "only a program that runs nowhere can be forgotten",
				       id, state == PROTO_PS_STORED ? "not confirmed gone yet" :
				       state == PROTO_PS_RUNNING ? "running" : "being moved",
				       node);
	}
	/* keep pullers and restores away while the store deletes it; the entry
	 * stays where it is (p remains valid) */
	p->migrating = 1;
	uv_mutex_unlock(&m->lock);

	char text[PROTO_TEXT_MAX + 1] = "";
	int rc = m->rpc.store->remove(m->rpc.ctx, id, text, sizeof(text));
	if (rc == RTCMS_ECONN || rc == RTCMS_ETIMEDOUT)
		manager_store_result(m, rc, "DELETE");

	uv_mutex_lock(&m->lock);
	if (rc && rc != RTCMS_ENOENT) {
		p->migrating = 0;
		uv_mutex_unlock(&m->lock);
		/* ECLAIMED: a manager restores it right now */
		return rpc_reply_error(c, hdr, rc, "%s is kept: the store %s did not delete its "
				       "checkpoints: %s", id, m->cfg.store,
				       text[0] ? text : rtcms_strerror(rc));
	}
	/* an empty id marks the slot free (manager_proc_add reuses it) */
	memset(p, 0, sizeof(*p));
	p->state = PROTO_PS_EXITED;
	uv_mutex_unlock(&m->lock);
	log_prog(LOG_INFO, id, 0, 0, "[%s -> manager] FORGET %s: removed from the table; %s",
		 who, id, rc == 0 ? "its checkpoints are deleted from the store"
			 : "the store held no checkpoint of it");
	memset(&out, 0, sizeof(out));
	out.forget_ok.kind = PROTO_FORGET_PROCESS;
	snprintf(out.forget_ok.process, sizeof(out.forget_ok.process), "%s", id);
	out.forget_ok.deleted = rc == 0;
	return rpc_sent(net_client_reply(c, PROTO_FORGET_OK, 0, hdr->request, &out));
}

/* FORGET: a dead node or a program that runs nowhere. With kind ANY the
 * name is a node if it is the id of a node this manager knows, else a
 * process; both at once is ambiguous. */
static enum rpc_result handle_forget(struct manager *m, struct net_client *c, const char *who,
			 const struct proto_header *hdr, const struct proto_forget *f)
{
	uint64_t node = 0;
	char *end;

	bool hex = f->name[0] && strlen(f->name) <= 16 &&
		  strspn(f->name, "0123456789abcdefABCDEF") == strlen(f->name);
	if (hex)
		node = strtoull(f->name, &end, 16);
	if (f->kind == PROTO_FORGET_NODE) {
		if (!hex || node == 0)
			return rpc_reply_error(c, hdr, RTCMS_EINVAL, "\"%s\" is not a node id "
					       "(1 to 16 hex digits)", f->name);
		return forget_node(m, c, who, hdr, node);
	}
	if (f->kind == PROTO_FORGET_PROCESS)
		return forget_process(m, c, who, hdr, f->name);
	uv_mutex_lock(&m->lock);
	bool is_node = node && manager_node(m, node) != NULL;
	bool is_proc = manager_proc(m, f->name) != NULL;
	uv_mutex_unlock(&m->lock);
	if (is_node && is_proc)
		return rpc_reply_error(c, hdr, RTCMS_EINVAL, "\"%s\" names both a node and a "
				       "process: say which (--node or --process)", f->name);
	if (is_node)
		return forget_node(m, c, who, hdr, node);
	if (is_proc)
		return forget_process(m, c, who, hdr, f->name);
	return rpc_reply_error(c, hdr, RTCMS_ENOENT, "\"%s\" is neither a node nor a process "
			       "this manager knows", f->name);
}

enum rpc_result manager_handle(void *ctx, struct net_client *c, const char *peer,
		   const struct proto_header *hdr, union proto_msg *msg)
{
	struct manager *m = ctx;
	char who[160];
	snprintf(who, sizeof(who), "%s", net_client_peer(c)[0] ? net_client_peer(c) : peer);

	switch (hdr->type) {
	case PROTO_PROCS:
		return handle_procs(m, c, who, hdr, &msg->procs);
	case PROTO_REGISTER:
		return handle_register(m, c, who, hdr, &msg->reg);
	case PROTO_CKPT_NOTIFY:
		return handle_notify(m, c, who, hdr, &msg->meta);
	case PROTO_EXITED:
		return handle_exited(m, c, who, hdr, &msg->ref);
	case PROTO_MSTATUS:
		return handle_status(m, c, hdr);
	case PROTO_LIST:
		return handle_list(m, c, hdr, &msg->list);
	case PROTO_RUN:
		return handle_run(m, c, who, hdr, &msg->run);
	case PROTO_MIGRATE:
		return handle_migrate(m, c, who, hdr, &msg->migrate);
	case PROTO_DRAIN:
		return handle_drain(m, c, who, hdr, &msg->drain);
	case PROTO_NODE_FAILED:
		return handle_node_failed(m, c, who, hdr, &msg->drain);
	case PROTO_RESOLVE:
		return handle_resolve(m, c, who, hdr, &msg->ref);
	case PROTO_CORDON:
	case PROTO_UNCORDON:
		return handle_cordon(m, c, who, hdr, &msg->drain);
	case PROTO_FORGET:
		return handle_forget(m, c, who, hdr, &msg->forget);
	default:
		log_warn("[%s] %s is not a manager request; closing", who,
			 proto_type_name(hdr->type) ? proto_type_name(hdr->type) : "?");
		net_client_reply_error(c, hdr->request, RTCMS_EPROTO, 0,
				       "not a request this manager serves");
		return RPC_CLOSE;
	}
}
