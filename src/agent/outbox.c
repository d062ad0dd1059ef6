/*
 * outbox.c - the agent's messages to the managers (outbox.h).
 *
 * The outbox thread keeps one connection per manager: REGISTER (thesis
 * op 0, repeated every second as a keep-alive), PROCS when the report
 * changed (and with every REGISTER), then CKPT_NOTIFY (op 1) for every
 * captured checkpoint a manager has not been told of, and EXITED for
 * programs that ended by themselves.
 */
#include "outbox.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

#include "capture.h"
#include "log/log.h"
#include "proc.h"
#include "rtcms_error.h"
#include "util/bytes.h"

#define REGISTER_EVERY_MS 1000
#define RETRY_MS 500
#define REFUSED_LOG_MS 30000   /* a manager not joined is said again this often */

/* ---- outbox -------------------------------------------------------- */

struct link_state {
	uint64_t last_register;
	uint64_t report_hash;          /* of the last PROCS this manager took */
};

/* The outbox thread's own state. */
struct outbox {
	struct agent *a;
	struct link_state ls[AGENT_MANAGERS_MAX];
	struct proto_agent_proc procs[PROTO_PROCS_MAX]; /* the report being sent */
};

static void link_drop(struct mgr_link *l, const char *why)
{
	if (l->registered)
		log_warn("[agent -> manager %s] lost: %s; retrying", l->addr, why);
	net_client_free(l->conn);
	l->conn = NULL;
	l->registered = false;
	l->retry_at_ms = agent_mono_ms() + RETRY_MS;
}

/* Connect if needed and REGISTER. Called without agent.lock. After a
 * failed connect *sys_errno is why (net/client.h), else 0. */
static int link_register(struct agent *a, struct mgr_link *l, int *sys_errno)
{
	union proto_msg m, r;
	struct proto_header hdr;
	int rc;

	if (!l->conn) {
		rc = net_client_connect(l->addr, &a->key, PROTO_ROLE_AGENT, a->cfg.name,
					(int)a->cfg.io_timeout_ms, &l->conn);
		*sys_errno = rc == RTCMS_ECONN ? errno : 0;
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
	if (a->seal_key) {
		/* the managers check it against the cluster's: a wrong keyring
		 * is refused now, not at the first restore */
		m.reg.data_key_id = a->seal_key->id;
		m.reg.data_kcv = get_be64(a->seal_key->kcv);
	}
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
	proc_ckpt_spec(p, &m.meta.spec, &m.meta.spec_len);
	int rc = net_client_call(l->conn, PROTO_CKPT_NOTIFY, &m, PROTO_OK, &hdr, &r);
	if (rc == 0)
		log_prog(LOG_DEBUG, p->id, proc_incarnation(p), img->sequence,
			 "[agent -> manager %s] CKPT_NOTIFY %s %" PRIu64 "/%" PRIu64
			 " (%zu bytes)", l->addr, p->id, p->incarnation, img->sequence,
			 img->size);
	return rc;
}

/* PROCS: every program and its state, for the managers' reconciliation.
 * Sent when it changed since the last one this manager got, and with every
 * REGISTER (a lost report is repaired within a second). Called without
 * agent.lock. */
static int link_report(struct agent *a, struct mgr_link *l, struct link_state *ls,
		       struct proto_agent_proc *procs, bool force)
{
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
			proc_free(a, p);
			continue;
		}
		pp = &p->next;
	}
}

/* Why REGISTER with l failed (rc, and after a connect errno's sys_errno),
 * for the agent's warning: unreachable, timed out, wrong key, refused. */
static void link_failure_text(struct agent *a, struct mgr_link *l, int rc, int sys_errno,
			      char *out, size_t len)
{
	const struct proto_error *e = l->conn ? net_client_last_error(l->conn) : NULL;

	if (l->conn && (rc == RTCMS_EEXIST || rc == RTCMS_EAUTH))
		snprintf(out, len, "REGISTER refused: %s",
			 e && e->code == rc ? e->text : rtcms_strerror(rc));
	else if (rc == RTCMS_ECONN && sys_errno)
		snprintf(out, len, "cannot reach the manager: %s", strerror(sys_errno));
	else if (rc == RTCMS_ECONN)
		snprintf(out, len, "cannot register: the manager closed the connection%s",
			 l->conn ? "" : " during the handshake (not an rtcms manager, or "
			 "it refused this agent)");
	else if (rc == RTCMS_ETIMEDOUT)
		snprintf(out, len, "cannot reach the manager: timed out after %" PRIu64 " ms "
			 "(io_timeout)", a->cfg.io_timeout_ms);
	else if (rc == RTCMS_EAUTH)
		snprintf(out, len, "handshake failed: wrong cluster key (this agent's key "
			 "file is not the manager's)");
	else
		snprintf(out, len, "cannot register: %s", rtcms_strerror(rc));
}

/* With agent.lock held: (re)register with manager i when it is due.
 * Returns whether the link is usable. */
static bool link_join(struct outbox *ob, size_t i, uint64_t now)
{
	struct agent *a = ob->a;
	struct mgr_link *l = &a->mgrs[i];

	bool was_registered = l->registered;
	int sys_errno = 0;
	uv_mutex_unlock(&a->lock);
	int rc = link_register(a, l, &sys_errno);
	uv_mutex_lock(&a->lock);
	if (rc && was_registered) {
		l->refused_log_ms = now; /* "lost" says it now (link_drop) */
	} else if (rc && (!l->refused_log_ms || now - l->refused_log_ms >= REFUSED_LOG_MS)) {
		char why[PROTO_TEXT_MAX + 128];
		link_failure_text(a, l, rc, sys_errno, why, sizeof(why));
		log_msg(rc == RTCMS_EEXIST || rc == RTCMS_EAUTH ? LOG_ERROR : LOG_WARN,
			"[agent -> manager %s] %s%s", l->addr, why,
			l->refused_log_ms ? "" : " (retrying; said again every 30 s)");
		l->refused_log_ms = now;
	}
	if (rc == 0)
		l->refused_log_ms = 0;
	if (rc) {
		link_drop(l, rtcms_strerror(rc));
		return false;
	}
	if (!l->registered) /* (re)joined: tell it everything again */
		for (struct aproc *p = a->procs; p; p = p->next)
			p->notified[i] = 0;
	l->registered = true;
	ob->ls[i].last_register = now;
	ob->ls[i].report_hash = 0; /* and the report with it */
	return true;
}

/* With agent.lock held: EXITED and CKPT_NOTIFY to manager i for what it
 * has not been told. */
static void link_tell(struct outbox *ob, size_t i)
{
	struct agent *a = ob->a;
	struct mgr_link *l = &a->mgrs[i];

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
		uint64_t seq = img->sequence; /* img may go with its reference */
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
		if (seq > p->notified[i])
			p->notified[i] = seq;
	}
}

/* With agent.lock held: one round for manager i. */
static void link_serve(struct outbox *ob, size_t i, uint64_t now)
{
	struct agent *a = ob->a;
	struct mgr_link *l = &a->mgrs[i];
	bool report_due = false; /* the report goes with every REGISTER */

	if (!l->registered && now < l->retry_at_ms)
		return;
	if (!l->registered || now - ob->ls[i].last_register >= REGISTER_EVERY_MS) {
		report_due = true;
		if (!link_join(ob, i, now))
			return;
	}
	if (l->registered) {
		uv_mutex_unlock(&a->lock);
		int rc = link_report(a, l, &ob->ls[i], ob->procs,
				     report_due || ob->ls[i].report_hash == 0);
		uv_mutex_lock(&a->lock);
		if (rc) {
			link_drop(l, rtcms_strerror(rc));
			return;
		}
	}
	link_tell(ob, i);
}

static void outbox_thread(void *arg)
{
	struct outbox *ob = arg;
	struct agent *a = ob->a;

	uv_mutex_lock(&a->lock);
	while (!a->stopping) {
		uint64_t now = agent_mono_ms();
		for (size_t i = 0; i < a->mgr_count && !a->stopping; i++)
			link_serve(ob, i, now);
		prune(a);
		uv_cond_timedwait(&a->wake, &a->lock, 200ull * 1000000);
	}
	uv_mutex_unlock(&a->lock);
	for (size_t i = 0; i < a->mgr_count; i++) {
		net_client_free(a->mgrs[i].conn);
		a->mgrs[i].conn = NULL;
	}
	free(ob);
}

int outbox_start(struct agent *a)
{
	struct outbox *ob = calloc(1, sizeof(*ob));
	if (!ob)
		return RTCMS_ENOMEM;
	ob->a = a;
	if (uv_thread_create(&a->outbox, outbox_thread, ob) != 0) {
		free(ob);
		return RTCMS_ENOMEM;
	}
	return 0;
}

void outbox_join(struct agent *a)
{
	uv_thread_join(&a->outbox);
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
			log_prog(LOG_INFO, r->id, rep.migrate_ok.incarnation, 0,
				 "[agent -> manager %s] MIGRATE %s (asked by the program): moved "
				 "to node %016" PRIx64 " as incarnation %" PRIu64 " in %u ms",
				 a->mgrs[i].addr, r->id, rep.migrate_ok.to,
				 rep.migrate_ok.incarnation, rep.migrate_ok.millis);
		} else {
			const struct proto_error *e = c ? net_client_last_error(c) : NULL;
			log_prog(LOG_WARN, r->id, r->incarnation, 0,
				 "[agent -> manager %s] MIGRATE %s (asked by the program): %s",
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

void outbox_request_migration(struct agent *a, struct aproc *p)
{
	struct mig_req *r = calloc(1, sizeof(*r));
	pthread_attr_t attr;
	pthread_t t;

	if (!r)
		return;
	r->a = a;
	snprintf(r->id, sizeof(r->id), "%s", p->id);
	r->incarnation = p->incarnation;
	log_prog(LOG_INFO, p->id, proc_incarnation(p), 0, "[program %s] asks to be moved to another "
		 "node", p->id);
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	if (pthread_create(&t, &attr, migration_thread, r) != 0) {
		log_prog(LOG_ERROR, p->id, proc_incarnation(p), 0,
			 "[program %s] cannot start the migration request", p->id);
		free(r);
	}
	pthread_attr_destroy(&attr);
}
