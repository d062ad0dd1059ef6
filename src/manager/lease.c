/*
 * lease.c - the manager's lease from the store and the node fence, the
 * two halves of "a node's failure holds for every manager at once"
 * (docs/architecture.md, "The fence").
 *
 * The lease thread renews this manager's lease every lease_renew_ms
 * (MLEASE, on its own store connection, never behind a pull): the reply
 * grants the lease from the moment the request was sent, lists the nodes
 * the store has fenced and the managers holding leases. A heartbeat is
 * answered only while the lease holds and never for a fenced node, so a
 * manager cut off from the store stops renewing agents by itself within
 * its lease, and a fence, once every manager confirmed it (their next
 * MLEASE carries its generation) or their leases ran out, is obeyed by
 * all. The request also names the nodes this manager hears: the store
 * refuses to fence a node another manager still hears.
 */
#include "manager.h"

#include <inttypes.h>
#include <string.h>

#include "log/log.h"
#include "rtcms_error.h"

bool manager_may_answer(const struct manager *m, const struct mnode *n, uint64_t now)
{
	return now < m->lease_until && !n->fencing && !n->fence_state && !n->failed_notice;
}

/* FNV-1a of the manager's name and the process id: the rendezvous weight. */
static uint64_t weight(const char *mgr, const char *id)
{
	uint64_t h = 1469598103934665603ull;
	for (const char *s = mgr; *s; s++)
		h = (h ^ (uint8_t)*s) * 1099511628211ull;
	h = (h ^ 0xff) * 1099511628211ull;
	for (const char *s = id; *s; s++)
		h = (h ^ (uint8_t)*s) * 1099511628211ull;
	return h;
}

bool manager_pulls(const struct manager *m, const char *id)
{
	if (m->manager_count == 0)
		return true; /* no list (store unreachable): pull, the store decides */
	size_t best = 0;
	uint64_t bw = 0;
	for (size_t i = 0; i < m->manager_count; i++) {
		uint64_t w = weight(m->managers[i], id);
		if (i == 0 || w > bw || (w == bw && strcmp(m->managers[i], m->managers[best]) < 0)) {
			best = i;
			bw = w;
		}
	}
	return strcmp(m->managers[best], m->cfg.name) == 0;
}

int manager_agent_holds(struct manager *m, const char *addr, const char *id)
{
	static __thread struct proto_agent_proc procs[PROTO_PROCS_MAX];
	struct net_client *c = NULL;
	struct proto_header h;
	union proto_msg q, r;

	memset(&q, 0, sizeof(q));
	q.procs.node = UINT64_MAX; /* a query: the agent answers with its report */
	int rc = net_client_connect(addr, &m->key, PROTO_ROLE_MANAGER, m->cfg.name,
				    (int)m->cfg.io_timeout_ms, &c);
	r.procs.procs = procs;
	if (rc == 0)
		rc = net_client_call(c, PROTO_PROCS, &q, PROTO_PROCS, &h, &r);
	net_client_free(c);
	if (rc)
		return rc;
	for (uint16_t i = 0; i < r.procs.count; i++)
		if (strcmp(procs[i].process, id) == 0 && procs[i].state != PROTO_AP_FINISHED &&
		    procs[i].state != PROTO_AP_GONE && procs[i].state != PROTO_AP_FAILED)
			return 1;
	return 0;
}

int manager_fence(struct manager *m, uint64_t node, uint8_t *state, uint32_t *wait_ms,
		  char *why, size_t whylen)
{
	struct net_client *store = NULL;
	struct proto_header h;
	union proto_msg q, r;

	memset(&q, 0, sizeof(q));
	q.fence.node = node;
	snprintf(q.fence.by, sizeof(q.fence.by), "%s", m->cfg.name);
	q.fence.hold_ms = (uint32_t)(m->cfg.agent_lease_ms + m->cfg.fence_margin_ms);
	int rc = manager_store_connect(m, &store);
	if (rc == 0)
		rc = net_client_call(store, PROTO_FENCE, &q, PROTO_FENCE_OK, &h, &r);
	if (rc) {
		const struct proto_error *e = store ? net_client_last_error(store) : NULL;
		snprintf(why, whylen, "%s", e && e->code == rc ? e->text : rtcms_strerror(rc));
	} else {
		*state = r.fence_ok.state;
		*wait_ms = r.fence_ok.wait_ms;
	}
	net_client_free(store);
	return rc;
}

/* With the lock held: take the store's view of the fences. A node listed
 * is answered no more; COMPLETE means its programs are gone; a node no
 * longer listed had its fence lifted and may rejoin once heard. */
static void apply_fences(struct manager *m, const struct proto_mlease_ok *ok)
{
	m->fence_count = ok->fence_count;
	memcpy(m->fences, ok->fences, ok->fence_count * sizeof(ok->fences[0]));
	for (size_t i = 0; i < m->node_count; i++) {
		struct mnode *n = &m->nodes[i];
		uint8_t st = 0;
		for (uint16_t k = 0; k < ok->fence_count; k++)
			if (ok->fences[k].node == n->node)
				st = ok->fences[k].state;
		if (st && !n->fence_state)
			log_warn("node %016" PRIx64 " (%s) is fenced by the store: not answering "
				 "it any more", n->node, n->name);
		if (!st && n->fence_state) {
			log_info("node %016" PRIx64 " (%s): its fence is lifted", n->node, n->name);
			n->fencing = 0;
		}
		n->fence_state = st;
		if (st == PROTO_FENCE_COMPLETE && !n->failed) {
			n->failed = 1;
			log_warn("node %016" PRIx64 " (%s) failed: its fence is complete, its "
				 "programs are restored elsewhere", n->node, n->name);
		}
	}
	m->fence_gen = ok->fence_gen;
	m->manager_count = ok->manager_count;
	for (uint16_t i = 0; i < ok->manager_count; i++)
		snprintf(m->managers[i], sizeof(m->managers[i]), "%s", ok->managers[i]);
}

static void lease_thread(void *arg)
{
	struct manager *m = arg;
	struct net_client *store = NULL;
	union proto_msg q, r;
	struct proto_header h;

	uv_mutex_lock(&m->lock);
	while (!m->stopping) {
		uint64_t now = manager_mono_ms();
		memset(&q, 0, sizeof(q));
		snprintf(q.mlease.name, sizeof(q.mlease.name), "%s", m->cfg.name);
		q.mlease.lease_ms = (uint32_t)m->cfg.manager_lease_ms;
		q.mlease.fence_gen = m->fence_gen;
		for (size_t i = 0; i < m->node_count && q.mlease.alive_count < PROTO_NODES_MAX; i++) {
			const struct mnode *n = &m->nodes[i];
			if (manager_node_alive(m, n) && !n->fencing && !n->fence_state)
				q.mlease.alive[q.mlease.alive_count++] = n->node;
		}
		uv_mutex_unlock(&m->lock);

		int rc = 0;
		if (!store)
			rc = net_client_connect(m->cfg.store, &m->key, PROTO_ROLE_MANAGER,
						m->cfg.name, (int)m->cfg.lease_renew_ms * 4, &store);
		if (rc == 0)
			rc = net_client_call(store, PROTO_MLEASE, &q, PROTO_MLEASE_OK, &h, &r);
		if (rc) {
			net_client_free(store);
			store = NULL;
		}
		manager_store_result(m, rc, "lease");

		uv_mutex_lock(&m->lock);
		if (rc == 0) {
			if (m->lease_lost_logged || !m->lease_until)
				log_info("[manager -> store %s] lease held (%u ms, renewed every %"
					 PRIu64 " ms)", m->cfg.store, r.mlease_ok.lease_ms,
					 m->cfg.lease_renew_ms);
			m->lease_lost_logged = 0;
			m->lease_until = now + r.mlease_ok.lease_ms; /* from the send time */
			apply_fences(m, &r.mlease_ok);
		} else if (manager_mono_ms() >= m->lease_until && !m->lease_lost_logged) {
			m->lease_lost_logged = 1;
			m->manager_count = 0;
			log_warn("[manager -> store %s] no lease (%s): this manager answers no "
				 "heartbeat until the store grants one again", m->cfg.store,
				 rtcms_strerror(rc));
		}
		uv_mutex_unlock(&m->lock);
		uint64_t spent = manager_mono_ms() - now;
		if (spent < m->cfg.lease_renew_ms)
			uv_sleep((unsigned)(m->cfg.lease_renew_ms - spent));
		uv_mutex_lock(&m->lock);
	}
	uv_mutex_unlock(&m->lock);
	net_client_free(store);
}

int manager_lease_start(struct manager *m)
{
	return uv_thread_create(&m->lease_thread, lease_thread, m) == 0 ? 0 : RTCMS_ENOMEM;
}
