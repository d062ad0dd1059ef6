/* detector.c - node liveness, heartbeat answers, fences (detector.h). */
#include "detector.h"

#include <inttypes.h>
#include <string.h>

#include "daemon/hbthread.h"
#include "log/log.h"
#include "proto/heartbeat.h"
#include "rtcms_error.h"
#include "stats.h"
#include "table.h"

bool detector_node_alive(const struct manager *m, const struct mnode *n)
{
	/* an operator's notice counts at once: nothing is placed there, and
	 * what vanishes from it waits for its fence */
	return !n->failed && !n->failed_notice && n->seen_ms &&
	       manager_mono_ms() - n->seen_ms < m->cfg.node_timeout_ms;
}

bool detector_node_usable(const struct manager *m, const struct mnode *n)
{
	return n && detector_node_alive(m, n) && !n->fencing && !n->fence_state;
}

bool detector_fence_complete(const struct manager *m, uint64_t node)
{
	for (size_t i = 0; i < m->fence_count; i++)
		if (m->fences[i].node == node)
			return m->fences[i].state == PROTO_FENCE_COMPLETE;
	return false;
}

bool detector_may_answer(const struct manager *m, const struct mnode *n, uint64_t now)
{
	return now < m->lease_until && !n->fencing && !n->fence_state && !n->failed_notice;
}

/* Nodes unheard for node_timeout: answered no more, to be fenced. */
static void mark_unheard(struct manager *m, uint64_t now)
{
	for (size_t i = 0; i < m->node_count; i++) {
		struct mnode *n = &m->nodes[i];
		/* (seen_ms may be newer than now: a REGISTER while the caller
		 * had the lock released) */
		if (n->failed || n->fencing || n->fence_state || !n->seen_ms ||
		    n->seen_ms >= now || now - n->seen_ms < m->cfg.node_timeout_ms)
			continue;
		n->fencing = true;
		n->fence_retry_at = 0;
		n->fence_refused_logged = false;
		metric_counter_inc(&manager_stats.suspicions);
		log_warn("node %016" PRIx64 " (%s) unheard for %" PRIu64 " ms%s: no longer "
			 "answered; asking the store to fence it", n->node, n->name,
			 now - n->seen_ms, n->failed_notice ? " (declared failed by an operator)"
							    : "");
	}
}

/* What the store said to a FENCE of n (lock held, n looked up again). */
static void fence_answered(struct mnode *n, int rc, uint8_t state, uint32_t wait,
			   const char *why)
{
	uint64_t now = manager_mono_ms();
	if (rc == RTCMS_EBUSY) {
		/* another manager answers it: its lease is renewed, its
		 * programs run; nothing to restore */
		if (!n->fence_refused_logged)
			log_warn("node %016" PRIx64 " (%s) not fenced: %s; its programs "
				 "stay where they are", n->node, n->name, why);
		n->fence_refused_logged = true;
		n->fence_retry_at = now + 200;
		return;
	}
	if (rc) {
		n->fence_retry_at = now + 500;
		return;
	}
	if (!n->fence_state)
		log_info("[manager -> store] FENCE node %016" PRIx64 ": %s", n->node,
			 state == PROTO_FENCE_COMPLETE ? "complete" : "taking hold");
	n->fence_state = state;
	n->fence_retry_at = now + (wait && wait < 50 ? wait : 50);
	if (state == PROTO_FENCE_COMPLETE && !n->failed) {
		n->failed = true;
		metric_counter_inc(&manager_stats.node_failures);
		log_warn("node %016" PRIx64 " (%s) failed: fenced, its lease has lapsed; "
			 "its programs are restored elsewhere", n->node, n->name);
	}
}

void detector_fence_nodes(struct manager *m, uint64_t now)
{
	mark_unheard(m, now);
	for (size_t i = 0; i < m->node_count; i++) {
		struct mnode *n = &m->nodes[i];
		if (!n->fencing || n->failed || n->fence_inflight || now < n->fence_retry_at)
			continue;
		uint64_t node = n->node;
		uint8_t state = 0;
		uint32_t wait = 0;
		char why[PROTO_TEXT_MAX + 1] = "";
		n->fence_inflight = true;
		uv_mutex_unlock(&m->lock);
		int rc = m->rpc.store->fence(m->rpc.ctx, node, &state, &wait, why, sizeof(why));
		uv_mutex_lock(&m->lock);
		n = manager_node(m, node);
		if (!n)
			continue; /* forgotten meanwhile */
		n->fence_inflight = false;
		fence_answered(n, rc, state, wait, why);
	}
}

/* A heartbeat of n, fresh and of its boot: it is alive (lock held). */
static void heard(struct mnode *n, uint64_t counter, uint64_t now)
{
	n->hb_counter = counter;
	n->seen_ms = now;
	if (n->fencing && !n->fence_inflight && !n->fence_state) {
		/* heard again before the store fenced it: nothing happened */
		n->fencing = false;
		metric_counter_inc(&manager_stats.false_suspicions);
		log_info("node %016" PRIx64 " (%s) is heard again: not fenced", n->node,
			 n->name);
	}
	if (n->failed && !n->fence_state) {
		/* its programs were fenced when its lease lapsed and its fence
		 * is lifted: it comes back empty; nothing moves back to it by
		 * itself */
		n->failed = false;
		n->fencing = false;
		log_info("node %016" PRIx64 " (%s) is heard again: it rejoins as an "
			 "empty node", n->node, n->name);
	}
}

void detector_heartbeat(void *ctx, struct hb_thread *t, const uint8_t *buf, size_t len,
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
	bool ok = n && !n->failed_notice && memcmp(n->boot, hb.boot, PROTO_BOOT_SIZE) == 0 &&
		  hb.counter > n->hb_counter;
	if (ok) {
		heard(n, hb.counter, now);
		/* a heartbeat is answered only under this manager's lease from
		 * the store and never for a node being fenced */
		ok = detector_may_answer(m, n, now);
	}
	uv_mutex_unlock(&m->lock);
	metric_counter_inc(&manager_stats.heartbeats[ok ? 0 : 1]);
	if (!ok)
		return; /* unknown node (it registers first), old boot, replay, fenced */
	hb.sent_ms = (uint64_t)uv_hrtime() / 1000000;
	hb.processes = 0;
	int dl = proto_heartbeat_seal(&m->key, PROTO_HEARTBEAT_ACK, &hb, dg, sizeof(dg));
	if (dl > 0)
		hb_thread_send(t, dg, (size_t)dl, from);
}
