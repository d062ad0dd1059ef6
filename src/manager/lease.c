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
#include "lease.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "detector.h"
#include "log/log.h"
#include "rtcms_error.h"
#include "stats.h"
#include "table.h"

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
			n->fencing = false;
		}
		n->fence_state = st;
		if (st == PROTO_FENCE_COMPLETE && !n->failed) {
			n->failed = true;
			metric_counter_inc(&manager_stats.node_failures);
			log_warn("node %016" PRIx64 " (%s) failed: its fence is complete, its "
				 "programs are restored elsewhere", n->node, n->name);
		}
	}
	m->fence_gen = ok->fence_gen;
	m->manager_count = ok->manager_count;
	for (uint16_t i = 0; i < ok->manager_count; i++)
		snprintf(m->managers[i], sizeof(m->managers[i]), "%s", ok->managers[i]);
}

/* The MLEASE request: this manager, its lease, the nodes it hears (lock held). */
static void lease_request(const struct manager *m, struct proto_mlease *q)
{
	memset(q, 0, sizeof(*q));
	snprintf(q->name, sizeof(q->name), "%s", m->cfg.name);
	q->lease_ms = (uint32_t)m->cfg.manager_lease_ms;
	q->fence_gen = m->fence_gen;
	for (size_t i = 0; i < m->node_count && q->alive_count < PROTO_NODES_MAX; i++) {
		const struct mnode *n = &m->nodes[i];
		if (detector_node_usable(m, n))
			q->alive[q->alive_count++] = n->node;
	}
}

/* What the store answered (rc, ok) to a request sent at now (lock held). */
static void lease_answered(struct manager *m, int rc, const struct proto_mlease_ok *ok,
			   uint64_t now)
{
	if (rc == 0) {
		if (m->lease_lost_logged || !m->lease_until)
			log_info("[manager -> store %s] lease held (%u ms, renewed every %" PRIu64
				 " ms)", m->cfg.store, ok->lease_ms, m->cfg.lease_renew_ms);
		m->lease_lost_logged = 0;
		m->lease_until = now + ok->lease_ms; /* from the send time */
		apply_fences(m, ok);
	} else if (manager_mono_ms() >= m->lease_until && !m->lease_lost_logged) {
		m->lease_lost_logged = 1;
		m->manager_count = 0;
		if (m->lease_until) /* it had one */
			metric_counter_inc(&manager_stats.lease_lapses);
		log_warn("[manager -> store %s] no lease (%s): this manager answers no "
			 "heartbeat until the store grants one again", m->cfg.store,
			 rtcms_strerror(rc));
	}
}

static void lease_thread(void *arg)
{
	struct manager *m = arg;
	struct rpc_link link = { 0 };
	struct proto_mlease q;
	struct proto_mlease_ok *ok = calloc(1, sizeof(*ok));

	uv_mutex_lock(&m->lock);
	while (!m->stopping) {
		uint64_t now = manager_mono_ms();
		lease_request(m, &q);
		uv_mutex_unlock(&m->lock);
		int rc = ok ? m->rpc.store->mlease(m->rpc.ctx, &link, (int)m->cfg.lease_renew_ms * 4,
						   &q, ok)
			    : RTCMS_ENOMEM;
		manager_store_result(m, rc, "lease");
		uv_mutex_lock(&m->lock);
		lease_answered(m, rc, ok, now);
		/* the metrics' gauges, on this tick (the lock is held anyway) */
		metric_gauge_set(&manager_stats.lease_held, manager_mono_ms() < m->lease_until);
		manager_stats_census(m);
		uv_mutex_unlock(&m->lock);
		uint64_t spent = manager_mono_ms() - now;
		if (spent < m->cfg.lease_renew_ms)
			uv_sleep((unsigned)(m->cfg.lease_renew_ms - spent));
		uv_mutex_lock(&m->lock);
	}
	uv_mutex_unlock(&m->lock);
	manager_link_close(&link);
	free(ok);
}

int lease_start(struct manager *m)
{
	return uv_thread_create(&m->lease_thread, lease_thread, m) == 0 ? 0 : RTCMS_ENOMEM;
}

void lease_join(struct manager *m)
{
	uv_thread_join(&m->lease_thread);
}
