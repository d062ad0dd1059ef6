/*
 * lease.c - heartbeats and the lease (lease.h).
 *
 * Every heartbeat_interval the agent sends a HEARTBEAT datagram to every
 * manager; each HEARTBEAT_ACK renews the lease until the acked heartbeat's
 * send time + lease. The lease is written into every program's area, where
 * librtcms' watchdog enforces it even if this agent hangs; and when it
 * lapses here, the agent stops its programs itself (SIGKILL): a node cut
 * off from every manager fences its programs before any manager restores
 * them elsewhere (managers wait detection timeout >= lease + margin).
 */
#include "lease.h"

#include <inttypes.h>
#include <signal.h>
#include <stdatomic.h>
#include <string.h>

#include "area/area.h"
#include "log/log.h"
#include "proc.h"
#include "proto/heartbeat.h"
#include "stats.h"

/* With agent.lock held: publish the lease to every program's area. */
static void lease_publish(struct agent *a)
{
	for (struct aproc *p = a->procs; p; p = p->next)
		if (p->state != AP_EXITED && p->area) {
			struct area_header *h = p->area;
			atomic_store_explicit(&h->lease_until_ms, a->lease_until,
					      memory_order_release);
		}
}

/* With agent.lock held: if the lease has run out, stop every program
 * (they are restored elsewhere or, by the managers' reconciliation, here)
 * before anything may renew it. */
static void lease_check(struct agent *a, uint64_t now)
{
	if (!a->lease_until || now < a->lease_until || a->fenced)
		return;
	int n = 0;
	for (struct aproc *p = a->procs; p; p = p->next)
		if (p->state != AP_EXITED) {
			proc_kill(a, p, SIGKILL);
			p->exit_told = ~0u; /* fenced, not ended: managers restore it */
			n++;
		}
	a->fenced = true;
	a->lapses++;
	metric_counter_inc(&agent_stats.lease_lapses);
	metric_gauge_set(&agent_stats.fenced, 1);
	a->procs_gen++;
	log_warn("lease lapsed: no manager answered for %" PRIu64 " ms; %d "
		 "program(s) stopped (fenced)", now - a->lease_until + a->lease_ms, n);
}

/* On the heartbeat thread: an ack renews the lease. */
static void hb_recv(void *ctx, struct hb_thread *t, const uint8_t *buf, size_t len,
		    const struct sockaddr *from, socklen_t fromlen)
{
	struct agent *a = ctx;
	struct proto_heartbeat hb;
	uint8_t type;
	(void)t;
	(void)from;
	(void)fromlen;

	if (proto_heartbeat_open(&a->key, buf, len, &type, &hb) != 0)
		return; /* not ours: ignored */
	if (type != PROTO_HEARTBEAT_ACK || hb.node != a->node ||
	    sodium_memcmp(hb.boot, a->boot, PROTO_BOOT_SIZE) != 0)
		return;
	uv_mutex_lock(&a->lock);
	/* a lease that ran out while nobody looked (this agent stalled) is
	 * enforced before an answer may renew it */
	uint64_t now = agent_mono_ms();
	lease_check(a, now);
	/* only the last 64 heartbeats count: an old ack renews nothing */
	if (hb.counter <= a->hb_counter && hb.counter + 64 > a->hb_counter) {
		metric_histogram_observe_ns(&agent_stats.heartbeat_rtt,
					    uv_hrtime() - a->hb_sent_ns[hb.counter % 64]);
		uint64_t until = a->hb_sent[hb.counter % 64] + a->lease_ms;
		if (until > a->lease_until && until > now) {
			if (a->fenced)
				log_info("lease regained: a manager answers again");
			a->fenced = false;
			metric_gauge_set(&agent_stats.fenced, 0);
			a->lease_until = until;
			lease_publish(a);
		}
	}
	uv_mutex_unlock(&a->lock);
}

/* On the heartbeat thread, every heartbeat_interval: the lease watchdog,
 * then a HEARTBEAT to every manager. */
static void hb_tick(void *ctx, struct hb_thread *t)
{
	struct agent *a = ctx;
	struct proto_heartbeat hb;
	uint8_t dg[PROTO_HEARTBEAT_MAX];
	uint64_t now = agent_mono_ms();

	uv_mutex_lock(&a->lock);
	lease_check(a, now); /* no manager answered for the lease */
	memset(&hb, 0, sizeof(hb));
	hb.node = a->node;
	memcpy(hb.boot, a->boot, PROTO_BOOT_SIZE);
	hb.counter = ++a->hb_counter;
	a->hb_sent[hb.counter % 64] = now;
	a->hb_sent_ns[hb.counter % 64] = uv_hrtime();
	hb.sent_ms = agent_now_ms();
	hb.processes = (uint32_t)proc_running_count(a);
	/* the metrics' gauges, on this tick (the lock is held anyway) */
	size_t registered = 0;
	for (size_t i = 0; i < a->mgr_count; i++)
		registered += a->mgrs[i].registered;
	metric_gauge_set(&agent_stats.programs, hb.processes);
	metric_gauge_set(&agent_stats.managers_registered, (int64_t)registered);
	uv_mutex_unlock(&a->lock);

	int n = proto_heartbeat_seal(&a->key, PROTO_HEARTBEAT, &hb, dg, sizeof(dg));
	for (size_t i = 0; n > 0 && i < a->mgr_count; i++)
		hb_thread_send(t, dg, (size_t)n, (const struct sockaddr *)&a->mgrs[i].udp);
}

int lease_start(struct agent *a, const char *bound, struct hb_thread **out)
{
	/* from this agent's address, any port: managers answer the source */
	struct hb_thread_options o = {
		.bind = bound,
		.any_port = 1,
		.interval_ms = a->cfg.heartbeat_ms,
		.tick = hb_tick,
		.recv = hb_recv,
		.ctx = a,
		.who = "heartbeats and the lease watchdog",
	};
	return hb_thread_start(&o, out);
}
