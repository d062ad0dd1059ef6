/*
 * manager.c - rtcms-manager's tables, its pullers and its event loop.
 *
 * A checkpoint announced by an agent (CKPT_NOTIFY, the thesis' op 1) is
 * pulled at the manager's own pace by one of pull_concurrency threads and
 * relayed into the store; only the store's PUT_ACK makes it durable. Per
 * process only the newest announcement matters: an older one that was
 * not pulled yet is covered by the newer (nothing acknowledged is lost:
 * the newer checkpoint holds everything the older did). If the store is
 * down the pullers back off (100 ms doubling to 5 s) and keep every
 * process' newest announcement until the store is back.
 */
#include "manager.h"

#include <inttypes.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "client/store_client.h"
#include "daemon/hbthread.h"
#include "daemon/rpc_server.h"
#include "log/log.h"
#include "net/addr.h"
#include "proto/heartbeat.h"
#include "recovery.h"
#include "rtcms_error.h"

uint64_t manager_mono_ms(void)
{
	return uv_hrtime() / 1000000;
}

uint64_t manager_real_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

struct mproc *manager_proc(struct manager *m, const char *id)
{
	for (size_t i = 0; i < m->proc_count; i++)
		if (strcmp(m->procs[i].id, id) == 0)
			return &m->procs[i];
	return NULL;
}

struct mproc *manager_proc_add(struct manager *m, const char *id)
{
	struct mproc *p = manager_proc(m, id);
	if (p)
		return p;
	for (size_t i = 0; i < m->proc_count && !p; i++)
		if (!m->procs[i].id[0]) /* the slot of a forgotten one */
			p = &m->procs[i];
	if (!p && m->proc_count >= MANAGER_PROCS_MAX)
		return NULL;
	if (!p)
		p = &m->procs[m->proc_count++];
	memset(p, 0, sizeof(*p));
	snprintf(p->id, sizeof(p->id), "%s", id);
	p->state = PROTO_PS_RUNNING;
	p->added_ms = manager_mono_ms();
	return p;
}

struct mnode *manager_node(struct manager *m, uint64_t node)
{
	for (size_t i = 0; i < m->node_count; i++)
		if (m->nodes[i].node == node)
			return &m->nodes[i];
	return NULL;
}

int manager_node_alive(const struct manager *m, const struct mnode *n)
{
	/* an operator's notice counts at once: nothing is placed there, and
	 * what vanishes from it waits for its fence */
	return !n->failed && !n->failed_notice && n->seen_ms &&
	       manager_mono_ms() - n->seen_ms < m->cfg.node_timeout_ms;
}

int manager_store_connect(struct manager *m, struct net_client **store)
{
	if (*store)
		return 0;
	return net_client_connect(m->cfg.store, &m->key, PROTO_ROLE_MANAGER, m->cfg.name,
				  (int)m->cfg.io_timeout_ms, store);
}

void manager_store_result(struct manager *m, int rc, const char *what)
{
	uv_mutex_lock(&m->lock);
	if (rc == 0) {
		if (!m->store_up)
			log_info("[manager -> store %s] store is reachable", m->cfg.store);
		m->store_up = 1;
		m->store_error[0] = '\0';
		m->store_backoff = 0;
		m->store_retry_at = 0;
	} else {
		if (m->store_up)
			log_warn("[manager -> store %s] %s: %s; announcements are kept and "
				 "retried with back-off", m->cfg.store, what, rtcms_strerror(rc));
		m->store_up = 0;
		snprintf(m->store_error, sizeof(m->store_error), "%s: %s", what,
			 rtcms_strerror(rc));
		m->store_backoff = m->store_backoff ? m->store_backoff * 2 : 100;
		if (m->store_backoff > 5000)
			m->store_backoff = 5000;
		m->store_retry_at = manager_mono_ms() + m->store_backoff;
	}
	uv_mutex_unlock(&m->lock);
}

void manager_forget(struct manager *m, const char *id)
{
	struct net_client *store = NULL;
	struct proto_header h;
	union proto_msg q, rep;

	memset(&q, 0, sizeof(q));
	snprintf(q.del.process, sizeof(q.del.process), "%s", id);
	int rc = manager_store_connect(m, &store);
	if (rc == 0)
		rc = net_client_call(store, PROTO_DELETE, &q, PROTO_OK, &h, &rep);
	net_client_free(store);
	if (rc == 0)
		log_info("[manager -> store] %s finished: its checkpoints are deleted", id);
	else if (rc == RTCMS_ENOENT)
		log_info("[manager -> store] %s finished: the store holds no checkpoint of it", id);
	else
		log_warn("%s finished; its checkpoints stay in the store: %s", id,
			 rtcms_strerror(rc));
}

/* ---- pull and store -------------------------------------------------- */

struct relay {
	_Atomic int *cancel;           /* non-zero: give up (a migration started) */
	struct net_client *store;
	struct proto_ckpt_meta *meta;
	int begun;
	int existed;
	int store_rc;
	uint32_t count;
	struct proto_put_ack ack;
};

static int relay_chunk(void *ctx, const struct proto_chunk *chunk)
{
	struct relay *r = ctx;
	int rc;

	if (r->cancel && atomic_load_explicit(r->cancel, memory_order_relaxed))
		return RTCMS_ESTATE; /* the migration sends a newer one */
	if (!r->begun) {
		r->begun = 1;
		rc = store_client_put_begin(r->store, r->meta, &r->ack);
		if (rc == 1) {
			r->existed = 1;
			return RTCMS_EEOF; /* already durable: stop reading the agent */
		}
		if (rc) {
			r->store_rc = rc;
			return rc;
		}
	}
	rc = store_client_put_chunk(r->store, chunk);
	if (rc) {
		r->store_rc = rc;
		return rc;
	}
	r->count++;
	return 0;
}

/* One pull from the agent relayed into the store. */
static int pull_once(struct manager *m, struct net_client **store, const char *id,
		     uint64_t incarnation, uint64_t seq, uint64_t base, const char *addr,
		     struct pull_result *res, int *store_side, _Atomic int *cancel)
{
	struct net_client *agent = NULL;
	struct proto_ckpt_meta meta;
	static __thread uint8_t spec[PROTO_SPEC_MAX];
	struct relay r = { 0 };
	int rc = net_client_connect(addr, &m->key, PROTO_ROLE_MANAGER, m->cfg.name,
				    (int)m->cfg.io_timeout_ms, &agent);
	if (rc)
		return rc;
	r.store = *store;
	r.meta = &meta;
	r.cancel = cancel;
	/* the newest the agent holds: at least the one announced */
	rc = store_client_pull(agent, id, incarnation, base, &meta, spec, relay_chunk, &r);
	if (rc == RTCMS_EEOF && r.existed)
		rc = 0;
	else if (rc == 0 && (meta.sequence < seq || meta.incarnation != incarnation ||
			     strcmp(meta.process, id) != 0 || (meta.base && meta.base != base)))
		rc = RTCMS_EPROTO;
	else if (rc == 0 && !r.begun)
		rc = RTCMS_EPROTO; /* an image is never empty */
	else if (rc == 0) {
		rc = store_client_put_end(*store, r.count, &r.ack);
		if (rc)
			r.store_rc = rc;
	}
	net_client_free(agent);
	if (r.store_rc) {
		*store_side = 1;
		rc = r.store_rc;
	}
	if (rc && (r.begun || *store_side)) {
		/* the store connection may be mid-stream: start afresh */
		net_client_free(*store);
		*store = NULL;
	}
	if (rc == 0) {
		res->sequence = meta.sequence;
		res->size = meta.size;
		res->full_size = meta.base ? meta.full_size : meta.size;
		res->base = meta.base;
		res->depth = r.ack.depth;
		res->existed = r.existed;
	} else if (rc == RTCMS_ENOENT && *store_side && meta.base) {
		rc = RTCMS_EAGAIN; /* the store lacks the delta's base */
	}
	return rc;
}

int manager_pull(struct manager *m, struct net_client **store, const char *id,
		 uint64_t incarnation, uint64_t seq, uint64_t base, const char *addr,
		 struct pull_result *res, int *store_side, _Atomic int *cancel)
{
	struct proto_ckpt_meta meta;
	int rc;

	memset(res, 0, sizeof(*res));
	*store_side = 0;
	rc = manager_store_connect(m, store);
	if (rc) {
		*store_side = 1;
		return rc;
	}
	/* another manager may have stored it already: then there is nothing
	 * to pull (the agent is not read twice without need) */
	rc = store_client_get(*store, id, incarnation, seq, 1, &meta, NULL, NULL, NULL);
	if (rc == 0) {
		res->sequence = seq;
		res->size = 0;
		res->full_size = meta.base ? meta.full_size : meta.size;
		res->base = meta.base;
		res->depth = UINT32_MAX; /* not known here: do not build on it */
		res->existed = 1;
		return 0;
	}
	if (rc != RTCMS_ENOENT) {
		*store_side = 1;
		net_client_free(*store);
		*store = NULL;
		return rc;
	}
	if (!addr)
		return RTCMS_ENOENT; /* only asked */
	rc = pull_once(m, store, id, incarnation, seq, base, addr, res, store_side, cancel);
	if (rc == RTCMS_EAGAIN) {
		log_info("[manager -> store] %s: the store no longer holds %" PRIu64 "/%" PRIu64
			 ", the delta's base: pulling the full image", id, incarnation, base);
		*store_side = 0;
		rc = manager_store_connect(m, store);
		if (rc) {
			*store_side = 1;
			return rc;
		}
		rc = pull_once(m, store, id, incarnation, seq, 0, addr, res, store_side, cancel);
	}
	return rc;
}

/* The next process with an announced checkpoint not durable yet: one this
 * manager pulls (*probe 0), or, every 500 ms, one another manager pulls:
 * then the store is only asked whether it has it (*probe 1), so this
 * manager's view stays true and it takes over when that manager is gone. */
static struct mproc *next_job(struct manager *m, int *probe)
{
	uint64_t now = manager_mono_ms();
	if (m->store_retry_at && now < m->store_retry_at)
		return NULL;
	/* round robin from after the last one taken: every process gets its
	 * turn, however often the others checkpoint */
	for (size_t k = 0; k < m->proc_count; k++) {
		size_t i = (m->pull_cursor + 1 + k) % m->proc_count;
		struct mproc *p = &m->procs[i];
		if (p->pulling || p->migrating || p->state != PROTO_PS_RUNNING)
			continue;
		if (p->notified > p->durable && p->notified != p->failed_seq) {
			*probe = !manager_pulls(m, p->id);
			if (*probe && now < p->probe_at)
				continue;
			if (*probe)
				p->probe_at = now + 500;
			m->pull_cursor = i;
			return p;
		}
	}
	return NULL;
}

/* The newest checkpoint of incarnation inc of id the store holds (LIST):
 * 0 and *seq (0 if none), or the store's error. */
static int probe_store(struct manager *m, struct net_client **store, const char *id,
		       uint64_t inc, uint64_t *seq, uint64_t *size)
{
	static __thread struct proto_list_entry entries[PROTO_LIST_MAX];
	struct proto_header h;
	union proto_msg q, r;

	*seq = 0;
	memset(&q, 0, sizeof(q));
	snprintf(q.list.process, sizeof(q.list.process), "%s", id);
	q.list.limit = PROTO_LIST_MAX;
	r.list_reply.entries = entries;
	int rc = manager_store_connect(m, store);
	if (rc == 0)
		rc = net_client_call(*store, PROTO_LIST, &q, PROTO_LIST_REPLY, &h, &r);
	if (rc) {
		net_client_free(*store);
		*store = NULL;
		return rc;
	}
	for (uint16_t i = 0; i < r.list_reply.count; i++)
		if (entries[i].incarnation == inc && entries[i].sequence > *seq) {
			*seq = entries[i].sequence;
			*size = entries[i].size;
		}
	return 0;
}

static void puller_thread(void *arg)
{
	struct manager *m = arg;
	struct net_client *store = NULL;

	uv_mutex_lock(&m->lock);
	while (!m->stopping) {
		int probe = 0;
		struct mproc *p = next_job(m, &probe);
		if (!p) {
			uv_cond_timedwait(&m->work, &m->lock, 100ull * 1000000);
			continue;
		}
		char id[PROTO_ID_MAX + 1], addr[PROTO_ADDR_MAX + 1] = "";
		uint64_t inc = p->incarnation, seq = p->notified;
		int first = p->durable == 0;
		struct mnode *n = manager_node(m, p->node);
		snprintf(id, sizeof(id), "%s", p->id);
		if (n)
			snprintf(addr, sizeof(addr), "%s", n->address);
		p->pulling = 1;
		uv_mutex_unlock(&m->lock);

		/* a delta against the newest durable checkpoint of this
		 * incarnation, until the chain is chain_max long */
		uint64_t base = p->base_inc == inc && p->base_seq && m->cfg.chain_max &&
				p->base_depth < m->cfg.chain_max ? p->base_seq : 0;
		uint64_t t0 = uv_hrtime();
		int store_side = 0;
		struct pull_result res = { .sequence = seq };
		if (probe) {
			/* another manager pulls it: what did it store? */
			uint64_t have = 0, size = 0;
			int prc = probe_store(m, &store, id, inc, &have, &size);
			uv_mutex_lock(&m->lock);
			if ((p = manager_proc(m, id)) != NULL) {
				p->pulling = 0;
				if (prc == 0 && p->incarnation == inc && have > p->durable) {
					p->durable = have;
					p->durable_size = size;
					p->durable_at_ms = manager_mono_ms();
					p->base_inc = 0; /* its chain is not ours to extend */
				}
			}
			continue;
		}
		int rc = addr[0] ? manager_pull(m, &store, id, inc, seq, base, addr, &res,
						&store_side, &p->migrating)
				 : RTCMS_ENOENT;
		uint64_t got = res.sequence;
		double ms = (double)(uv_hrtime() - t0) / 1e6;
		/* the store answered a refusal (fenced, exists, ...): it is up */
		int refused = rc == RTCMS_EFENCED || rc == RTCMS_EEXIST || rc == RTCMS_EINVAL ||
			      rc == RTCMS_ECORRUPT || rc == RTCMS_ETOOBIG || rc == RTCMS_EBUSY;
		if (rc == 0 || store_side)
			manager_store_result(m, refused ? 0 : rc, "PUT");
		if (rc == 0 && res.existed)
			log_debug("%s %" PRIu64 "/%" PRIu64 ": stored already (another manager)",
				  id, inc, got);
		else if (rc == 0) /* the first of an incarnation at info, the rest at debug */
			log_msg(first ? LOG_INFO : LOG_DEBUG, "[manager -> store] %s %" PRIu64
				"/%" PRIu64 " durable (%" PRIu64 " bytes, %s%" PRIu64 ", pulled "
				"and stored in %.1f ms)%s", id, inc, got, res.size,
				res.base ? "a delta against " : "full", res.base, ms,
				first ? "; later ones are logged at debug level" : "");
		else if (rc == RTCMS_ESTATE)
			log_debug("%s %" PRIu64 "/%" PRIu64 ": pull given up, a migration "
				  "sends a newer checkpoint", id, inc, seq);
		else if (!store_side && rc == RTCMS_ECORRUPT)
			log_warn("%s %" PRIu64 "/%" PRIu64 " not stored: refused, the "
				 "data from %s does not match its hash", id, inc, seq, addr);
		else if (!store_side || rc == RTCMS_EFENCED || rc == RTCMS_EEXIST)
			log_warn("%s %" PRIu64 "/%" PRIu64 " not stored: %s%s", id,
				 inc, seq, store_side ? "the store refused it: " : "", rtcms_strerror(rc));

		uv_mutex_lock(&m->lock);
		p = manager_proc(m, id);
		if (!p)
			continue;
		p->pulling = 0;
		if (rc == 0 && p->ended && !p->exit_wait) { /* it finished while we
							     * stored it, and EXITED
							     * gave up waiting */
			uv_mutex_unlock(&m->lock);
			manager_forget(m, id);
			uv_mutex_lock(&m->lock);
		}
		if (rc == 0 && inc == p->incarnation) {
			if (got >= p->base_seq || p->base_inc != inc) {
				/* stored by another manager: its depth follows from
				 * its base when that is the one we know */
				if (res.existed)
					res.depth = res.base == 0 ? 0
						    : res.base == p->base_seq && p->base_inc == inc &&
						      p->base_depth < UINT32_MAX ? p->base_depth + 1
						    : UINT32_MAX;
				p->base_inc = inc;
				p->base_seq = got;
				p->base_depth = res.depth;
			}
		}
		if (rc == 0 && inc == p->incarnation && got > p->durable) {
			p->durable = got;
			p->durable_size = res.full_size;
			p->durable_at_ms = manager_mono_ms();
		} else if (rc && (!store_side || rc == RTCMS_EFENCED || rc == RTCMS_EEXIST ||
				  rc == RTCMS_ECORRUPT)) {
			/* this announcement cannot be stored (superseded at the
			 * agent, corrupt, fenced): wait for the next one */
			p->failed_seq = seq;
		}
		uv_cond_broadcast(&m->work);
	}
	uv_mutex_unlock(&m->lock);
	net_client_free(store);
}

/* ---- failure detection and restore ------------------------------------
 *
 * Every 20 ms: a node unheard for node_timeout has failed (its agent's
 * lease, shorter by the fence margin at least, has lapsed, so its programs
 * were stopped); each of its programs becomes WAITING and is restored,
 * one after another, from its latest durable checkpoint on the best node,
 * placement asked again each time so they spread. A program that fits
 * nowhere stays WAITING (rtcmsctl status) and is tried again every second.
 * The store's claim makes each restore happen once, whichever manager
 * tries. */

/* A manager that starts learns every process the store holds (the latest
 * checkpoint of each), as STORED until an agent reports it. Programs that
 * ended cleanly had their checkpoints deleted, so what is left is running
 * somewhere or was lost with its node. Returns 0 or the store's error. */
static int scan_store(struct manager *m)
{
	static __thread struct proto_list_entry entries[PROTO_LIST_MAX];
	struct net_client *store = NULL;
	struct proto_header h;
	union proto_msg q, r;
	uint32_t offset = 0;
	size_t added = 0;
	int rc;

	for (;;) {
		memset(&q, 0, sizeof(q));
		q.list.offset = offset;
		q.list.limit = PROTO_LIST_MAX;
		r.list_reply.entries = entries;
		rc = manager_store_connect(m, &store);
		if (rc == 0)
			rc = net_client_call(store, PROTO_LIST, &q, PROTO_LIST_REPLY, &h, &r);
		if (rc)
			break;
		uv_mutex_lock(&m->lock);
		for (uint16_t i = 0; i < r.list_reply.count; i++) {
			const struct proto_list_entry *e = &entries[i];
			struct mproc *p = manager_proc(m, e->process);
			if (!p) {
				p = manager_proc_add(m, e->process);
				if (!p)
					break;
				p->state = PROTO_PS_STORED;
				added++;
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
		uv_mutex_unlock(&m->lock);
		offset += r.list_reply.count;
		if (!(h.flags & PROTO_F_MORE) || r.list_reply.count == 0)
			break;
	}
	net_client_free(store);
	if (rc == 0 && (added || !m->scanned))
		log_info("the store holds %zu process(es) not reported by an agent yet", added);
	return rc;
}

/* ---- the fence: an unheard node is fenced in the store -------------- */

/* With the lock held (released while the store is asked): a node unheard
 * for node_timeout is answered no more and the store is asked to fence
 * it; the store refuses while another manager still hears it. Its
 * programs are restored only once the fence is complete. */
static void fence_nodes(struct manager *m, uint64_t now)
{
	for (size_t i = 0; i < m->node_count; i++) {
		struct mnode *n = &m->nodes[i];
		/* (seen_ms may be newer than now: a REGISTER while the caller
		 * had the lock released) */
		if (n->failed || n->fencing || n->fence_state || !n->seen_ms ||
		    n->seen_ms >= now || now - n->seen_ms < m->cfg.node_timeout_ms)
			continue;
		n->fencing = 1;
		n->fence_retry_at = 0;
		n->fence_refused_logged = 0;
		log_warn("node %016" PRIx64 " (%s) unheard for %" PRIu64 " ms%s: no longer "
			 "answered; asking the store to fence it", n->node, n->name,
			 now - n->seen_ms, n->failed_notice ? " (declared failed by an operator)"
							    : "");
	}
	for (size_t i = 0; i < m->node_count; i++) {
		struct mnode *n = &m->nodes[i];
		if (!n->fencing || n->failed || n->fence_inflight || now < n->fence_retry_at)
			continue;
		uint64_t node = n->node;
		uint8_t state = 0;
		uint32_t wait = 0;
		char why[PROTO_TEXT_MAX + 1] = "";
		n->fence_inflight = 1;
		uv_mutex_unlock(&m->lock);
		int rc = manager_fence(m, node, &state, &wait, why, sizeof(why));
		uv_mutex_lock(&m->lock);
		n = manager_node(m, node);
		if (!n)
			continue; /* forgotten meanwhile */
		n->fence_inflight = 0;
		now = manager_mono_ms();
		if (rc == RTCMS_EBUSY) {
			/* another manager answers it: its lease is renewed, its
			 * programs run; nothing to restore */
			if (!n->fence_refused_logged)
				log_warn("node %016" PRIx64 " (%s) not fenced: %s; its programs "
					 "stay where they are", node, n->name, why);
			n->fence_refused_logged = 1;
			n->fence_retry_at = now + 200;
			continue;
		}
		if (rc) {
			n->fence_retry_at = now + 500;
			continue;
		}
		if (!n->fence_state)
			log_info("[manager -> store] FENCE node %016" PRIx64 ": %s", node,
				 state == PROTO_FENCE_COMPLETE ? "complete" : "taking hold");
		n->fence_state = state;
		n->fence_retry_at = now + (wait && wait < 50 ? wait : 50);
		if (state == PROTO_FENCE_COMPLETE && !n->failed) {
			n->failed = 1;
			log_warn("node %016" PRIx64 " (%s) failed: fenced, its lease has lapsed; "
				 "its programs are restored elsewhere", node, n->name);
		}
	}
}

/* ---- reconciliation: what should run against what runs --------------- */

static bool report_present(uint8_t state)
{
	return state == PROTO_AP_RUNNING || state == PROTO_AP_RESTORING ||
	       state == PROTO_AP_FROZEN || state == PROTO_AP_RESTARTING;
}

static bool node_usable(const struct manager *m, const struct mnode *n)
{
	return n && manager_node_alive(m, n) && !n->fencing && !n->fence_state;
}

static bool node_fence_complete(const struct manager *m, uint64_t node)
{
	for (size_t i = 0; i < m->fence_count; i++)
		if (m->fences[i].node == node)
			return m->fences[i].state == PROTO_FENCE_COMPLETE;
	return false;
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
			if (node_usable(m, n) && e->incarnation >= p->incarnation &&
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
static bool gave_up(struct manager *m, struct mproc *p, const struct proto_agent_proc *e)
{
	if (e->state != PROTO_AP_FAILED)
		return false;
	snprintf(p->reason, sizeof(p->reason), "%s", e->reason);
	p->restarts = e->restarts;
	if (strncmp(e->reason, "restart=never", 13) == 0) {
		if (p->state != PROTO_PS_FAILED)
			log_error("%s failed for good on node %016" PRIx64 ": %s", p->id, p->node,
				  e->reason);
		p->state = PROTO_PS_FAILED;
		return true;
	}
	(void)m;
	return false;
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
		if (gone && gave_up(m, p, gone))
			continue;
		struct recovery_facts f = {
			.ended = p->ended || p->state == PROTO_PS_EXITED ||
				 p->state == PROTO_PS_FAILED || p->state == PROTO_PS_UNKNOWN,
			.moving = p->migrating,
			.present = e != NULL,
			.node_known = n != NULL,
			.node_alive = node_usable(m, n),
			.node_failed = (n && n->failed) || node_fence_complete(m, p->node),
			.report_fresh = n && n->report_ms && n->report_ms > p->added_ms &&
					now - n->report_ms <= 3000,
			.uptime_ms = now - m->started_ms,
		};
		if (f.node_alive && f.report_fresh && !f.present) {
			if (!p->absent_since)
				p->absent_since = now;
			f.absent_ms = now - p->absent_since + 1;
		} else {
			p->absent_since = 0;
		}
		f.gave_up_there = gone && gone->state == PROTO_AP_FAILED;
		if (f.node_alive && n->prev_boot_seen_ms &&
		    now < n->prev_boot_seen_ms + m->cfg.agent_lease_ms + m->cfg.fence_margin_ms)
			f.report_fresh = 0; /* the old boot's instance may live until its
					     * lease runs out: not yet */
		switch (recovery_decide(&cfg, &f)) {
		case RECOVERY_PRESENT:
			if (e->incarnation > p->incarnation) {
				/* restored by another manager: its instance tells us */
				p->incarnation = e->incarnation;
				p->durable = 0;
				p->notified = 0;
				p->failed_seq = 0;
			}
			if (e->sequence > p->notified)
				p->notified = e->sequence;
			p->node = where->node;
			p->confirmed_ms = where->report_ms;
			p->restarts = e->restarts;
			if (e->reason[0])
				snprintf(p->reason, sizeof(p->reason), "%s", e->reason);
			if (p->state != PROTO_PS_RUNNING)
				p->state = PROTO_PS_RUNNING;
			break;
		case RECOVERY_RESTORE:
			if (p->state != PROTO_PS_WAITING) {
				log_warn("%s runs nowhere (%s): restoring it from its latest "
					 "checkpoint", p->id, f.node_failed ? "its node failed"
					 : gone ? gone->reason[0] ? gone->reason : "gone from its node"
					 : "its node no longer reports it");
				p->gave_up_move = f.gave_up_there;
				p->state = PROTO_PS_WAITING;
				p->retry_at = 0;
			}
			break;
		case RECOVERY_FENCE_NODE:
			if (!n && m->node_count < MANAGER_NODES_MAX) {
				/* a node this manager never heard: unheard since the start */
				n = &m->nodes[m->node_count++];
				memset(n, 0, sizeof(*n));
				n->node = p->node;
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
		fence_nodes(m, now);
		now = manager_mono_ms();
		reconcile(m, now);
		struct mproc *p = NULL;
		for (size_t j = 0; j < m->proc_count && !p; j++)
			if (m->procs[j].state == PROTO_PS_WAITING && !m->procs[j].migrating &&
			    now >= m->procs[j].retry_at)
				p = &m->procs[j];
		if (!p) {
			uv_cond_timedwait(&m->work, &m->lock, 20ull * 1000000);
			continue;
		}
		char id[PROTO_ID_MAX + 1], why[PROTO_TEXT_MAX + 1];
		snprintf(id, sizeof(id), "%s", p->id);
		struct mnode *src = manager_node(m, p->node);
		struct recover_req req = {
			.source_alive = node_usable(m, src) && !p->gave_up_move,
			.gave_up = p->gave_up_move,
		};
		p->migrating = 1;
		uv_mutex_unlock(&m->lock);
		int rc = manager_recover(m, id, &req, why, sizeof(why));
		uv_mutex_lock(&m->lock);
		p = manager_proc(m, id);
		if (rc == 0)
			continue; /* restored: finish() updated p */
		if (rc == RTCMS_EEXIST) {
			/* it runs (another manager restored it, or its agent holds
			 * it after all): its reports tell the rest */
			log_info("%s", why);
			p->migrating = 0;
			p->node = req.elsewhere;
			p->state = PROTO_PS_RUNNING;
			p->absent_since = 0;
			p->added_ms = manager_mono_ms(); /* wait for a report after this */
			continue;
		}
		if (rc == RTCMS_ESTATE && !p->migrating) {
			/* committed, but the target did not confirm: again */
			p->state = PROTO_PS_WAITING;
			p->retry_at = manager_mono_ms() + 100;
			continue;
		}
		p->migrating = 0;
		if (req.failed) {
			p->state = PROTO_PS_FAILED;
			p->gave_up_move = 0;
			snprintf(p->reason, sizeof(p->reason), "%.*s", (int)sizeof(p->reason) - 1,
				 why);
			log_error("%s failed for good: %s", id, why);
		} else if (rc == RTCMS_ENOENT) {
			p->state = PROTO_PS_UNKNOWN;
			log_error("%s cannot be restored: no durable checkpoint (%s)", id, why);
		} else {
			/* claimed by another manager: try again right when its
			 * lease ends (it may have crashed), else in a second */
			uint64_t wait = 1000, real = manager_real_ms();
			if (rc == RTCMS_ECLAIMED && req.held_until > real &&
			    req.held_until - real < wait)
				wait = req.held_until - real + 5;
			p->retry_at = manager_mono_ms() + wait;
			log_warn("%s not restored yet: %s; trying again in %" PRIu64 " ms", id,
				 why, wait);
		}
	}
	uv_mutex_unlock(&m->lock);
}

/* ---- loop ------------------------------------------------------------ */

struct loop_state {
	struct manager *m;
	uv_signal_t sigint, sigterm;
	struct hb_thread *hbt;         /* heartbeats (hbthread.h) */
	struct rpc_server *srv;
};

/* ---- heartbeats ------------------------------------------------------- */

/* A HEARTBEAT from a registered node of the same boot, newer than the last:
 * the node is alive; the ACK renews its lease. Anything else is dropped. */
/* On the heartbeat thread (its own socket, real-time priority where it
 * may): nothing else runs there, so a loaded manager still answers on
 * time. */
static void hb_recv(void *ctx, struct hb_thread *t, const uint8_t *buf, size_t len,
		    const struct sockaddr *from, socklen_t fromlen)
{
	struct manager *m = ctx;
	struct proto_heartbeat hb;
	uint8_t type, dg[PROTO_HEARTBEAT_MAX];
	(void)fromlen;

	if (proto_heartbeat_open(&m->key, buf, len, &type, &hb) != 0 ||
	    type != PROTO_HEARTBEAT)
		return;
	uv_mutex_lock(&m->lock);
	struct mnode *n = manager_node(m, hb.node);
	uint64_t now = manager_mono_ms();
	int ok = n && !n->failed_notice && memcmp(n->boot, hb.boot, PROTO_BOOT_SIZE) == 0 &&
		 hb.counter > n->hb_counter;
	if (ok) {
		n->hb_counter = hb.counter;
		n->seen_ms = now;
		if (n->fencing && !n->fence_inflight && !n->fence_state) {
			/* heard again before the store fenced it: nothing happened */
			n->fencing = 0;
			log_info("node %016" PRIx64 " (%s) is heard again: not fenced", n->node,
				 n->name);
		}
		if (n->failed && !n->fence_state) {
			/* its programs were fenced when its lease lapsed and its
			 * fence is lifted: it comes back empty; nothing moves back
			 * to it by itself */
			n->failed = 0;
			n->fencing = 0;
			log_info("node %016" PRIx64 " (%s) is heard again: it rejoins as an "
				 "empty node", n->node, n->name);
		}
		/* a heartbeat is answered only under this manager's lease from
		 * the store and never for a node being fenced */
		ok = manager_may_answer(m, n, now);
	}
	uv_mutex_unlock(&m->lock);
	if (!ok)
		return; /* unknown node (it registers first), old boot, replay, fenced */
	hb.sent_ms = (uint64_t)uv_hrtime() / 1000000;
	hb.processes = 0;
	int dl = proto_heartbeat_seal(&m->key, PROTO_HEARTBEAT_ACK, &hb, dg, sizeof(dg));
	if (dl > 0)
		hb_thread_send(t, dg, (size_t)dl, from);
}


static void on_stop(uv_signal_t *s, int signum)
{
	struct loop_state *ls = s->data;
	log_info("signal %d: stopping", signum);
	uv_mutex_lock(&ls->m->lock);
	ls->m->stopping = 1;
	uv_cond_broadcast(&ls->m->work);
	uv_mutex_unlock(&ls->m->lock);
	rpc_server_stop(ls->srv);
	ls->srv = NULL;
	rpc_close_all(ls->m->loop);
}

int manager_run(struct manager *m)
{
	struct loop_state ls = { .m = m };
	char bound[PROTO_ADDR_MAX + 1];

	m->loop = uv_default_loop();
	struct rpc_server_options so = {
		.listen = m->cfg.listen,
		.key = &m->key,
		.role = PROTO_ROLE_MANAGER,
		.name = m->cfg.name,
		.io_timeout_ms = (int)m->cfg.io_timeout_ms,
		.idle_timeout_ms = 60000,
		.max_connections = 64,
		.handler = manager_handle,
		.ctx = m,
	};
	int rc = rpc_server_start(m->loop, &so, &ls.srv, bound, sizeof(bound));
	if (rc)
		return rc;
	struct hb_thread_options ho = {
		.bind = bound,
		.recv = hb_recv,
		.ctx = m,
		.who = "heartbeat answers",
	};
	if ((rc = hb_thread_start(&ho, &ls.hbt)) != 0)
		return rc;
	log_info("listening on %s (TCP, and UDP for heartbeats) as %s; store %s; %zu "
		 "pullers; placement %s; agent lease %" PRIu64 " ms, node timeout %" PRIu64
		 " ms", bound, m->cfg.name, m->cfg.store, (size_t)m->cfg.pullers,
		 m->cfg.policy, m->cfg.agent_lease_ms, m->cfg.node_timeout_ms);
	uv_signal_init(m->loop, &ls.sigint);
	ls.sigint.data = &ls;
	uv_signal_start(&ls.sigint, on_stop, SIGINT);
	uv_signal_init(m->loop, &ls.sigterm);
	ls.sigterm.data = &ls;
	uv_signal_start(&ls.sigterm, on_stop, SIGTERM);
	m->started_ms = manager_mono_ms();
	for (size_t i = 0; i < m->cfg.pullers && i < MANAGER_PULLERS_MAX; i++)
		if (uv_thread_create(&m->pullers[m->puller_count], puller_thread, m) == 0)
			m->puller_count++;
	if (uv_thread_create(&m->detector, detector_thread, m) != 0) {
		log_error("cannot start the failure detector");
		return RTCMS_ENOMEM;
	}
	if (manager_lease_start(m) != 0) {
		log_error("cannot start the lease thread");
		return RTCMS_ENOMEM;
	}
	/* ready means able to answer heartbeats: wait (a little) for the
	 * first lease; without the store it comes later */
	for (int i = 0; i < 200; i++) {
		uv_mutex_lock(&m->lock);
		int held = m->lease_until != 0;
		uv_mutex_unlock(&m->lock);
		if (held)
			break;
		uv_sleep(10);
	}
	if (m->cfg.ready_file[0] && rpc_write_ready_file(m->cfg.ready_file, bound) != 0)
		log_warn("cannot write the ready file %s", m->cfg.ready_file);
	uv_run(m->loop, UV_RUN_DEFAULT);
	hb_thread_stop(ls.hbt);
	for (size_t i = 0; i < m->puller_count; i++)
		uv_thread_join(&m->pullers[i]);
	uv_thread_join(&m->detector);
	uv_thread_join(&m->lease_thread);
	uv_loop_close(m->loop);
	log_info("stopped");
	return 0;
}
