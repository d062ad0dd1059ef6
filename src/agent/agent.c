/*
 * agent.c - rtcms-agent's event loop and its outbox to the managers.
 *
 * Loop phases: accept manager connections (rpc_server); every poll
 * interval, look at each program's commit pointer and queue a capture of
 * a new checkpoint on the pool; every 100 ms, sample /proc/stat; on
 * SIGCHLD, reap programs; on SIGINT/SIGTERM, stop everything.
 * The outbox thread keeps one connection per manager: REGISTER (thesis
 * op 0, repeated every second as a keep-alive), then CKPT_NOTIFY (op 1)
 * for every captured checkpoint a manager has not been told of, and
 * EXITED for programs that ended by themselves.
 */
#include "agent.h"

#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>

#include "area/area.h"
#include "daemon/hbthread.h"
#include "daemon/rpc_server.h"
#include "log/log.h"
#include "net/addr.h"
#include "proto/heartbeat.h"
#include "rtcms_error.h"

#define REGISTER_EVERY_MS 1000
#define RETRY_MS 500

uint64_t agent_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

uint64_t agent_mono_ms(void)
{
	return uv_hrtime() / 1000000;
}

void agent_wake_outbox(struct agent *a)
{
	uv_mutex_lock(&a->lock);
	uv_cond_signal(&a->wake);
	uv_mutex_unlock(&a->lock);
}

/* ---- outbox -------------------------------------------------------- */

struct link_state {
	uint64_t last_register;
	uint64_t report_hash;          /* of the last PROCS this manager took */
};

static void link_drop(struct mgr_link *l, const char *why)
{
	if (l->registered)
		log_warn("[agent -> manager %s] lost: %s; retrying", l->addr, why);
	net_client_free(l->conn);
	l->conn = NULL;
	l->registered = 0;
	l->retry_at_ms = agent_mono_ms() + RETRY_MS;
}

/* Connect if needed and REGISTER. Called without agent.lock. */
static int link_register(struct agent *a, struct mgr_link *l)
{
	union proto_msg m, r;
	struct proto_header hdr;
	int rc;

	if (!l->conn) {
		rc = net_client_connect(l->addr, &a->key, PROTO_ROLE_AGENT, a->cfg.name,
					(int)a->cfg.io_timeout_ms, &l->conn);
		if (rc)
			return rc;
	}
	memset(&m, 0, sizeof(m));
	m.reg.node = a->node;
	snprintf(m.reg.name, sizeof(m.reg.name), "%s", a->cfg.name);
	snprintf(m.reg.address, sizeof(m.reg.address), "%s", a->address);
	m.reg.area_capacity = a->cfg.area_capacity;
	m.reg.mem_total = a->mem_total;
	m.reg.quota_max = (uint32_t)a->cfg.quota;
	memcpy(m.reg.boot, a->boot, PROTO_BOOT_SIZE);
	rc = net_client_call(l->conn, PROTO_REGISTER, &m, PROTO_REGISTER_OK, &hdr, &r);
	if (rc)
		return rc;
	if (!l->registered)
		log_info("[agent -> manager %s] REGISTER node %016" PRIx64 " at %s: "
			 "accepted by %s", l->addr, a->node, a->address, r.reg_ok.name);
	snprintf(l->name, sizeof(l->name), "%s", r.reg_ok.name);
	uv_mutex_lock(&a->lock);
	if (r.reg_ok.lease_ms && r.reg_ok.lease_ms < a->lease_ms) {
		log_info("lease %u ms, as manager %s asks", r.reg_ok.lease_ms, l->name);
		a->lease_ms = r.reg_ok.lease_ms;
	}
	uv_mutex_unlock(&a->lock);
	return 0;
}

static int link_notify(struct agent *a, struct mgr_link *l, struct aproc *p,
		       struct image *img)
{
	union proto_msg m, r;
	struct proto_header hdr;

	memset(&m, 0, sizeof(m));
	snprintf(m.meta.process, sizeof(m.meta.process), "%s", p->id);
	m.meta.incarnation = p->incarnation;
	m.meta.sequence = img->sequence;
	m.meta.node = a->node;
	m.meta.size = img->size;
	m.meta.created_ms = img->created_ms;
	/* what was captured; how it travels depends on the PULL (base) */
	m.meta.chunk_count = (uint32_t)((img->size + PROTO_MAX_CHUNK - 1) / PROTO_MAX_CHUNK);
	m.meta.full_size = img->size;
	memcpy(m.meta.state_hash, img->state_hash, PROTO_HASH_SIZE);
	m.meta.spec = p->spec;
	m.meta.spec_len = p->spec_len;
	int rc = net_client_call(l->conn, PROTO_CKPT_NOTIFY, &m, PROTO_OK, &hdr, &r);
	if (rc == 0)
		log_debug("[agent -> manager %s] CKPT_NOTIFY %s %" PRIu64 "/%" PRIu64
			  " (%zu bytes)", l->addr, p->id, p->incarnation, img->sequence,
			  img->size);
	return rc;
}

/* PROCS: every program and its state, for the managers' reconciliation.
 * Sent when it changed since the last one this manager got, and with every
 * REGISTER (a lost report is repaired within a second). Called without
 * agent.lock. */
static int link_report(struct agent *a, struct mgr_link *l, struct link_state *ls, int force)
{
	static __thread struct proto_agent_proc procs[PROTO_PROCS_MAX];
	union proto_msg m, r;
	struct proto_header hdr;

	proc_report_msg(a, procs, &m.procs);
	uint64_t h = 1469598103934665603ull; /* FNV-1a of the report's content */
	const uint8_t *b = (const uint8_t *)procs;
	for (size_t i = 0; i < m.procs.count * sizeof(procs[0]); i++)
		h = (h ^ b[i]) * 1099511628211ull;
	h ^= m.procs.count;
	if (!force && h == ls->report_hash)
		return 0;
	int rc = net_client_call(l->conn, PROTO_PROCS, &m, PROTO_OK, &hdr, &r);
	if (rc == 0)
		ls->report_hash = h;
	return rc;
}

static int link_exited(struct agent *a, struct mgr_link *l, struct aproc *p)
{
	union proto_msg m, r;
	struct proto_header hdr;
	(void)a;
	memset(&m, 0, sizeof(m));
	snprintf(m.ref.process, sizeof(m.ref.process), "%s", p->id);
	m.ref.incarnation = p->incarnation;
	m.ref.arg = (uint32_t)p->status;
	return net_client_call(l->conn, PROTO_EXITED, &m, PROTO_OK, &hdr, &r);
}

/* With agent.lock held: free exited programs nobody uses any more. */
static void prune(struct agent *a)
{
	uint32_t all = a->mgr_count >= 32 ? ~0u : (1u << a->mgr_count) - 1;
	struct aproc **pp = &a->procs;
	while (*pp) {
		struct aproc *p = *pp;
		if (p->state == AP_EXITED && p->refs == 0 && !p->capturing &&
		    (p->exit_told & all) == all && !p->restart_pending &&
		    (p->superseded || agent_mono_ms() - p->exited_ms > 10000)) {
			*pp = p->next;
			struct image *img = p->img;
			p->img = NULL;
			if (img && --img->refs == 0)
				image_free(img);
			proc_free(p);
			continue;
		}
		pp = &p->next;
	}
}

static void outbox_thread(void *arg)
{
	struct agent *a = arg;
	struct link_state ls[AGENT_MANAGERS_MAX] = { 0 };

	uv_mutex_lock(&a->lock);
	while (!a->stopping) {
		uint64_t now = agent_mono_ms();
		for (size_t i = 0; i < a->mgr_count && !a->stopping; i++) {
			struct mgr_link *l = &a->mgrs[i];
			int report_due = 0; /* the report goes with every REGISTER */
			if (!l->registered && now < l->retry_at_ms)
				continue;
			if (!l->registered || now - ls[i].last_register >= REGISTER_EVERY_MS) {
				report_due = 1;
				uv_mutex_unlock(&a->lock);
				int rc = link_register(a, l);
				uv_mutex_lock(&a->lock);
				if (rc == RTCMS_EEXIST && l->conn) {
					const struct proto_error *e = net_client_last_error(l->conn);
					log_error("[agent -> manager %s] REGISTER refused: %s", l->addr,
						  e->code == rc ? e->text : rtcms_strerror(rc));
				}
				if (rc) {
					link_drop(l, rtcms_strerror(rc));
					continue;
				}
				if (!l->registered) /* (re)joined: tell it everything again */
					for (struct aproc *p = a->procs; p; p = p->next)
						p->notified[i] = 0;
				l->registered = 1;
				ls[i].last_register = now;
				ls[i].report_hash = 0; /* and the report with it */
			}
			if (l->registered) {
				uv_mutex_unlock(&a->lock);
				int rc = link_report(a, l, &ls[i], report_due || ls[i].report_hash == 0);
				uv_mutex_lock(&a->lock);
				if (rc) {
					link_drop(l, rtcms_strerror(rc));
					continue;
				}
			}
			for (struct aproc *p = a->procs; p && l->registered; p = p->next) {
				if (p->state == AP_EXITED && !(p->exit_told & (1u << i))) {
					p->refs++;
					uv_mutex_unlock(&a->lock);
					int rc = link_exited(a, l, p);
					uv_mutex_lock(&a->lock);
					p->refs--;
					if (rc) {
						link_drop(l, rtcms_strerror(rc));
						break;
					}
					p->exit_told |= 1u << i;
					continue;
				}
				struct image *img = p->img;
				if (p->state != AP_RUNNING || !img || img->sequence <= p->notified[i])
					continue;
				img->refs++;
				p->refs++;
				uv_mutex_unlock(&a->lock);
				int rc = link_notify(a, l, p, img);
				image_unref(a, img);
				uv_mutex_lock(&a->lock);
				p->refs--;
				if (rc) {
					link_drop(l, rtcms_strerror(rc));
					break;
				}
				if (img->sequence > p->notified[i])
					p->notified[i] = img->sequence;
			}
		}
		prune(a);
		uv_cond_timedwait(&a->wake, &a->lock, 200ull * 1000000);
	}
	uv_mutex_unlock(&a->lock);
	for (size_t i = 0; i < a->mgr_count; i++) {
		net_client_free(a->mgrs[i].conn);
		a->mgrs[i].conn = NULL;
	}
}

/* ---- loop ---------------------------------------------------------- */

struct loop_state {
	struct agent *a;
	uv_timer_t poll, cpu, hb;
	struct hb_thread *hbt;         /* heartbeats and the lease (hbthread.h) */
	uv_signal_t sigchld, sigint, sigterm;
	struct rpc_server *srv;
};

struct capture_work {
	uv_work_t w;
	struct agent *a;
	struct aproc *p;
};

static void work_capture(uv_work_t *w)
{
	struct capture_work *cw = w->data;
	int rc = proc_capture(cw->a, cw->p, NULL);
	if (rc && rc != RTCMS_ENOENT)
		log_warn("[program %s] capture failed: %s", cw->p->id, rtcms_strerror(rc));
}

static void after_capture(uv_work_t *w, int status)
{
	struct capture_work *cw = w->data;
	(void)status;
	uv_mutex_lock(&cw->a->lock);
	cw->p->capturing = 0;
	cw->p->refs--;
	uv_cond_signal(&cw->a->wake);
	uv_mutex_unlock(&cw->a->lock);
	free(cw);
}

/* ---- migration requests from programs ----------------------------- */

struct mig_req {
	struct agent *a;
	char id[PROTO_ID_MAX + 1];
	uint64_t incarnation;
};

/* Ask the managers, one after another, to move a program: MIGRATE waits
 * for the whole move, so it runs on its own short-lived thread. */
static void *migration_thread(void *arg)
{
	struct mig_req *r = arg;
	struct agent *a = r->a;
	union proto_msg q, rep;
	struct proto_header h;
	int rc = RTCMS_ECONN;

	for (size_t i = 0; i < a->mgr_count; i++) {
		struct net_client *c = NULL;
		memset(&q, 0, sizeof(q));
		snprintf(q.migrate.process, sizeof(q.migrate.process), "%s", r->id);
		rc = net_client_connect(a->mgrs[i].addr, &a->key, PROTO_ROLE_AGENT, a->cfg.name,
					(int)a->cfg.io_timeout_ms, &c);
		if (rc == 0) {
			net_client_set_timeout(c, 600000);
			rc = net_client_call(c, PROTO_MIGRATE, &q, PROTO_MIGRATE_OK, &h, &rep);
		}
		if (rc == 0) {
			log_info("[agent -> manager %s] MIGRATE %s (asked by the program): moved "
				 "to node %016" PRIx64 " as incarnation %" PRIu64 " in %u ms",
				 a->mgrs[i].addr, r->id, rep.migrate_ok.to,
				 rep.migrate_ok.incarnation, rep.migrate_ok.millis);
		} else {
			const struct proto_error *e = c ? net_client_last_error(c) : NULL;
			log_warn("[agent -> manager %s] MIGRATE %s (asked by the program): %s",
				 a->mgrs[i].addr, r->id,
				 e && e->code == rc ? e->text : rtcms_strerror(rc));
		}
		net_client_free(c);
		if (rc != RTCMS_ECONN && rc != RTCMS_ETIMEDOUT)
			break; /* the manager answered: done, or it refused */
	}
	free(r);
	return NULL;
}

/* With agent.lock held. */
static void request_migration(struct agent *a, struct aproc *p)
{
	struct mig_req *r = calloc(1, sizeof(*r));
	pthread_attr_t attr;
	pthread_t t;

	if (!r)
		return;
	r->a = a;
	snprintf(r->id, sizeof(r->id), "%s", p->id);
	r->incarnation = p->incarnation;
	log_info("[program %s] asks to be moved to another node", p->id);
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	if (pthread_create(&t, &attr, migration_thread, r) != 0) {
		log_error("[program %s] cannot start the migration request", p->id);
		free(r);
	}
	pthread_attr_destroy(&attr);
}

/* ---- heartbeats and the lease ----------------------------------------
 *
 * Every heartbeat_interval the agent sends a HEARTBEAT datagram to every
 * manager; each HEARTBEAT_ACK renews the lease until the acked heartbeat's
 * send time + lease. The lease is written into every program's area, where
 * librtcms' watchdog enforces it even if this agent hangs; and when it
 * lapses here, the agent stops its programs itself (SIGKILL): a node cut
 * off from every manager fences its programs before any manager restores
 * them elsewhere (managers wait detection timeout >= lease + margin). */

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
			proc_kill(p, SIGKILL);
			p->exit_told = ~0u; /* fenced, not ended: managers restore it */
			n++;
		}
	a->fenced = 1;
	a->lapses++;
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
		uint64_t until = a->hb_sent[hb.counter % 64] + a->lease_ms;
		if (until > a->lease_until && until > now) {
			if (a->fenced)
				log_info("lease regained: a manager answers again");
			a->fenced = 0;
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
	hb.sent_ms = agent_now_ms();
	hb.processes = (uint32_t)agent_running_count(a);
	uv_mutex_unlock(&a->lock);

	int n = proto_heartbeat_seal(&a->key, PROTO_HEARTBEAT, &hb, dg, sizeof(dg));
	for (size_t i = 0; n > 0 && i < a->mgr_count; i++)
		hb_thread_send(t, dg, (size_t)n, (const struct sockaddr *)&a->mgrs[i].udp);
}

/* On the loop: what may block (RESOLVE, starting the `run =` programs). */
static void on_housekeeping(uv_timer_t *timer)
{
	struct loop_state *ls = timer->data;
	struct agent *a = ls->a;
	uint64_t now = agent_mono_ms();
	int start_configured = 0;

	uv_mutex_lock(&a->lock);
	for (struct aproc *p = a->procs; p; p = p->next)
		if (p->state == AP_FROZEN && !p->resolving &&
		    now - p->frozen_ms >= a->cfg.freeze_hold_ms)
			agent_resolve_frozen(a, p);
	if (!a->configured_started && a->lease_until > now) {
		a->configured_started = 1;
		start_configured = 1;
	}
	uv_mutex_unlock(&a->lock);
	if (start_configured)
		agent_start_configured(a); /* `run =` programs: only under a lease */
}

static int heartbeat_start(struct loop_state *ls, const char *bound)
{
	struct agent *a = ls->a;
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
	int rc = hb_thread_start(&o, &ls->hbt);
	if (rc)
		return rc;
	uv_timer_init(a->loop, &ls->hb);
	ls->hb.data = ls;
	uv_timer_start(&ls->hb, on_housekeeping, 0, a->cfg.heartbeat_ms);
	return 0;
}

static void on_poll(uv_timer_t *t)
{
	struct loop_state *ls = t->data;
	struct agent *a = ls->a;

	uv_mutex_lock(&a->lock);
	for (struct aproc *p = a->procs; p; p = p->next) {
		if (p->state == AP_RUNNING) {
			struct area_header *h = p->area;
			if (atomic_load_explicit(&h->request, memory_order_acquire) &&
			    (atomic_exchange_explicit(&h->request, 0, memory_order_acq_rel) &
			     AREA_REQ_MIGRATE))
				request_migration(a, p);
		}
		if (p->capturing || (p->state != AP_RUNNING && p->state != AP_RESTORING))
			continue;
		uint64_t seq = area_committed_sequence(p->area);
		if (seq == 0 || (p->img && p->img->sequence == seq))
			continue;
		/* the managers pull at their own pace: a newer checkpoint is
		 * captured (copied and hashed) once they took the last one, or
		 * when it is capture_lag old (no manager reachable) */
		if (p->img && !p->img->pulled && p->state == AP_RUNNING &&
		    agent_mono_ms() - p->img->captured_ms < a->cfg.capture_lag_ms)
			continue;
		struct capture_work *cw = calloc(1, sizeof(*cw));
		if (!cw)
			break;
		cw->w.data = cw;
		cw->a = a;
		cw->p = p;
		p->capturing = 1;
		p->refs++;
		if (uv_queue_work(a->loop, &cw->w, work_capture, after_capture) != 0) {
			p->capturing = 0;
			p->refs--;
			free(cw);
		}
	}
	uv_mutex_unlock(&a->lock);
	proc_restart_due(a); /* crashed programs whose back-off is over */
}

static void on_cpu(uv_timer_t *t)
{
	struct loop_state *ls = t->data;
	struct cpu_sample s;
	if (sysinfo_stat_read(&s) == 0) {
		uv_mutex_lock(&ls->a->lock);
		sysinfo_window_add(&ls->a->cpu, &s);
		uv_mutex_unlock(&ls->a->lock);
	}
}

static void on_sigchld(uv_signal_t *s, int signum)
{
	struct loop_state *ls = s->data;
	(void)signum;
	proc_reap(ls->a);
}

static void on_stop(uv_signal_t *s, int signum)
{
	struct loop_state *ls = s->data;
	struct agent *a = ls->a;

	log_info("signal %d: stopping; the programs of this agent are stopped too",
		 signum);
	uv_mutex_lock(&a->lock);
	a->stopping = 1;
	for (struct aproc *p = a->procs; p; p = p->next)
		proc_kill(p, SIGKILL);
	uv_cond_signal(&a->wake);
	uv_mutex_unlock(&a->lock);
	rpc_server_stop(ls->srv);
	ls->srv = NULL;
	rpc_close_all(a->loop);
}

int agent_run(struct agent *a)
{
	struct loop_state ls = { .a = a };
	char bound[PROTO_ADDR_MAX + 1];
	int rc;

	a->loop = uv_default_loop();
	struct rpc_server_options so = {
		.listen = a->cfg.listen,
		.key = &a->key,
		.role = PROTO_ROLE_AGENT,
		.name = a->cfg.name,
		.io_timeout_ms = (int)a->cfg.io_timeout_ms,
		.idle_timeout_ms = 60000,
		.max_connections = 32,
		.handler = agent_handle,
		.ctx = a,
	};
	rc = rpc_server_start(a->loop, &so, &ls.srv, bound, sizeof(bound));
	if (rc)
		return rc;
	snprintf(a->address, sizeof(a->address), "%s",
		 a->cfg.advertise[0] ? a->cfg.advertise : bound);
	log_info("listening on %s as node %016" PRIx64 " (%s), quota %" PRIu64
		 " programs, area %" PRIu64 " MiB each", bound, a->node, a->cfg.name,
		 a->cfg.quota, a->cfg.area_capacity >> 20);

	uv_signal_init(a->loop, &ls.sigchld);
	ls.sigchld.data = &ls;
	uv_signal_start(&ls.sigchld, on_sigchld, SIGCHLD);
	uv_signal_init(a->loop, &ls.sigint);
	ls.sigint.data = &ls;
	uv_signal_start(&ls.sigint, on_stop, SIGINT);
	uv_signal_init(a->loop, &ls.sigterm);
	ls.sigterm.data = &ls;
	uv_signal_start(&ls.sigterm, on_stop, SIGTERM);
	uv_timer_init(a->loop, &ls.poll);
	ls.poll.data = &ls;
	uv_timer_start(&ls.poll, on_poll, a->cfg.poll_ms, a->cfg.poll_ms);
	uv_timer_init(a->loop, &ls.cpu);
	ls.cpu.data = &ls;
	on_cpu(&ls.cpu);
	uv_timer_start(&ls.cpu, on_cpu, 100, 100);

	if ((rc = heartbeat_start(&ls, bound)) != 0)
		return rc;
	if (uv_thread_create(&a->outbox, outbox_thread, a) != 0) {
		log_error("cannot start the outbox thread");
		return RTCMS_ENOMEM;
	}
	if (a->cfg.ready_file[0] && rpc_write_ready_file(a->cfg.ready_file, bound) != 0)
		log_warn("cannot write the ready file %s", a->cfg.ready_file);

	uv_run(a->loop, UV_RUN_DEFAULT);
	hb_thread_stop(ls.hbt);
	uv_thread_join(&a->outbox);
	/* reap what we killed, then free */
	for (struct aproc *p = a->procs; p; p = p->next)
		if (p->state != AP_EXITED && p->pid > 0)
			waitpid(p->pid, NULL, 0);
	while (a->procs) {
		struct aproc *p = a->procs;
		a->procs = p->next;
		image_free(p->img);
		proc_free(p);
	}
	uv_loop_close(a->loop);
	log_info("stopped");
	return 0;
}
