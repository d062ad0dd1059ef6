/*
 * manager.c - rtcms-manager's life: the manager built from its settings,
 * its threads started and joined, and its event loop (the control
 * connections and the signals). What the threads do is in their modules
 * (manager_int.h names them).
 */
#include "manager.h"

#include <inttypes.h>
#include <signal.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/hbthread.h"
#include "daemon/notify.h"
#include "daemon/rpc_server.h"
#include "detector.h"
#include "handlers.h"
#include "lease.h"
#include "log/log.h"
#include "manager_int.h"
#include "puller.h"
#include "reconcile.h"
#include "rtcms_error.h"
#include "table.h"

int manager_new(const struct manager_config *cfg, const struct placement_config *pc,
		const struct proto_key *key, struct manager **out)
{
	struct manager *m = calloc(1, sizeof(*m));
	if (!m)
		return RTCMS_ENOMEM;
	m->procs = calloc(MANAGER_PROCS_MAX, sizeof(*m->procs));
	if (!m->procs)
		goto out_free;
	m->cfg = *cfg;
	m->placement = *pc;
	m->key = *key;
	randombytes_buf(&m->epoch, sizeof(m->epoch));
	m->rpc = (struct manager_rpc){ .agent = &agent_rpc_net, .store = &store_rpc_net,
				       .ctx = m };
	m->store_up = true;
	/* shared with the real-time heartbeat thread: priority inheritance */
	if (rt_mutex_init(&m->lock) != 0)
		log_warn("no priority inheritance for the main lock: a loaded machine can "
			 "delay heartbeats behind it");
	if (uv_cond_init(&m->work) != 0)
		goto out_lock;
	*out = m;
	return 0;
out_lock:
	uv_mutex_destroy(&m->lock);
	free(m->procs);
out_free:
	free(m);
	return RTCMS_ENOMEM;
}

void manager_free(struct manager *m)
{
	if (!m)
		return;
	sodium_memzero(&m->key, sizeof(m->key));
	for (size_t i = 0; i < m->node_count; i++)
		free(m->nodes[i].report);
	uv_cond_destroy(&m->work);
	uv_mutex_destroy(&m->lock);
	free(m->procs);
	free(m);
}

void manager_set_placement(struct manager *m, const struct placement_config *pc,
			   struct placement_config *old)
{
	uv_mutex_lock(&m->lock);
	*old = m->placement;
	m->placement = *pc;
	uv_mutex_unlock(&m->lock);
}

struct loop_state {
	struct manager *m;
	uv_signal_t sigint, sigterm;
	struct hb_thread *hbt;         /* heartbeats (hbthread.h) */
	struct rpc_server *srv;
};

static void on_stop(uv_signal_t *s, int signum)
{
	struct loop_state *ls = s->data;
	log_info("signal %d: stopping", signum);
	notify_stopping("signal %d: stopping", signum);
	uv_mutex_lock(&ls->m->lock);
	ls->m->stopping = true;
	uv_cond_broadcast(&ls->m->work);
	uv_mutex_unlock(&ls->m->lock);
	rpc_server_stop(ls->srv);
	ls->srv = NULL;
	rpc_close_all(ls->m->loop);
}

/* The address the manager listens on (loop thread), for its STATUS=. */
static char status_bound[PROTO_ADDR_MAX + 1];

/* STATUS= for systemd (daemon/notify.h): nodes, programs, the store. */
static bool status_line(void *ctx, char *buf, size_t len)
{
	struct manager *m = ctx;
	size_t live = 0;
	uv_mutex_lock(&m->lock);
	for (size_t i = 0; i < m->node_count; i++)
		if (!m->nodes[i].failed)
			live++;
	snprintf(buf, len, "listening on %s: %zu programs on %zu nodes (%zu failed); store "
		 "%s%s%s%s", status_bound, m->proc_count, live, m->node_count - live, m->store_up ? "up" : "DOWN",
		 !m->store_up && m->store_error[0] ? " (" : "",
		 m->store_up ? "" : m->store_error, !m->store_up && m->store_error[0] ? ")" : "");
	uv_mutex_unlock(&m->lock);
	return true;
}

/* The listener and the heartbeat thread (the loop's own). */
static int listen_all(struct manager *m, struct loop_state *ls, char *bound, size_t boundlen)
{
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
	int rc = rpc_server_start(m->loop, &so, &ls->srv, bound, boundlen);
	if (rc)
		return rc;
	struct hb_thread_options ho = {
		.bind = bound,
		.recv = detector_heartbeat,
		.ctx = m,
		.who = "heartbeat answers",
	};
	return hb_thread_start(&ho, &ls->hbt);
}

/* Pullers, detector, lease; then wait (a little) for the first lease:
 * ready means able to answer heartbeats (without the store it comes
 * later). */
static int start_threads(struct manager *m)
{
	puller_start(m);
	if (reconcile_start(m) != 0) {
		log_error("cannot start the failure detector");
		return RTCMS_ENOMEM;
	}
	if (lease_start(m) != 0) {
		log_error("cannot start the lease thread");
		return RTCMS_ENOMEM;
	}
	for (int i = 0; i < 200; i++) {
		uv_mutex_lock(&m->lock);
		bool held = m->lease_until != 0;
		uv_mutex_unlock(&m->lock);
		if (held)
			break;
		uv_sleep(10);
	}
	return 0;
}

int manager_run(struct manager *m)
{
	struct loop_state ls = { .m = m };
	char bound[PROTO_ADDR_MAX + 1];

	m->loop = uv_default_loop();
	int rc = listen_all(m, &ls, bound, sizeof(bound));
	if (rc)
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
	if ((rc = start_threads(m)) != 0)
		return rc;
	if (m->cfg.ready_file[0] && rpc_write_ready_file(m->cfg.ready_file, bound) != 0)
		log_warn("cannot write the ready file %s", m->cfg.ready_file);
	/* serving: listening (TCP and heartbeats), its threads running, its
	 * lease from the store taken if the store answered within 2 s */
	snprintf(status_bound, sizeof(status_bound), "%s", bound);
	notify_start(m->loop, status_line, m);
	char status[512];
	status_line(m, status, sizeof(status));
	notify_ready("%s", status);
	uv_run(m->loop, UV_RUN_DEFAULT);
	hb_thread_stop(ls.hbt);
	puller_join(m);
	reconcile_join(m);
	lease_join(m);
	uv_loop_close(m->loop);
	log_info("stopped");
	return 0;
}
