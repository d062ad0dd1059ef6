/* table.c - the process and node tables and the store's health (table.h). */
#include "table.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#include "log/log.h"
#include "rtcms_error.h"
#include "stats.h"

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

struct mnode *manager_node_add(struct manager *m, uint64_t node)
{
	if (m->node_count >= MANAGER_NODES_MAX)
		return NULL;
	struct mnode *n = &m->nodes[m->node_count++];
	memset(n, 0, sizeof(*n));
	n->node = node;
	return n;
}

void manager_proc_settle(struct manager *m, const char *id, const struct move_outcome *o)
{
	uv_mutex_lock(&m->lock);
	struct mproc *p = manager_proc(m, id);
	if (p) {
		p->migrating = 0;
		p->state = PROTO_PS_RUNNING;
		/* what its nodes reported before this is not news of it */
		p->added_ms = manager_mono_ms();
		p->absent_since = 0;
		if (o->moved) {
			p->node = o->to;
			p->incarnation = o->incarnation;
			p->notified = o->sequence;
			p->durable = o->sequence;
			p->durable_size = o->size;
			p->failed_seq = 0;
		}
	}
	uv_cond_broadcast(&m->work);
	uv_mutex_unlock(&m->lock);
}

void manager_store_result(struct manager *m, int rc, const char *what)
{
	uv_mutex_lock(&m->lock);
	if (rc == 0) {
		if (!m->store_up)
			log_info("[manager -> store %s] store is reachable", m->cfg.store);
		m->store_up = true;
		metric_gauge_set(&manager_stats.store_up, 1);
		m->store_error[0] = '\0';
		m->store_backoff = 0;
		m->store_retry_at = 0;
	} else {
		if (m->store_up)
			log_warn("[manager -> store %s] %s: %s; announcements are kept and "
				 "retried with back-off", m->cfg.store, what, rtcms_strerror(rc));
		m->store_up = false;
		metric_gauge_set(&manager_stats.store_up, 0);
		snprintf(m->store_error, sizeof(m->store_error), "%s: %s", what,
			 rtcms_strerror(rc));
		m->store_backoff = m->store_backoff ? m->store_backoff * 2 : 100;
		if (m->store_backoff > 5000)
			m->store_backoff = 5000;
		m->store_retry_at = manager_mono_ms() + m->store_backoff;
	}
	uv_mutex_unlock(&m->lock);
}
