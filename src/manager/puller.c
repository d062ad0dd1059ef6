/* puller.c - the puller threads and what they pull when (puller.h). */
#include "puller.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "log/log.h"
#include "pull.h"
#include "rtcms_error.h"
#include "stats.h"
#include "table.h"

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

bool puller_owns(const struct manager *m, const char *id)
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

void puller_forget(struct manager *m, const char *id)
{
	char why[PROTO_TEXT_MAX + 1];
	int rc = m->rpc.store->remove(m->rpc.ctx, id, why, sizeof(why));
	const struct log_about about = { id, 0, 0 };
	if (rc == 0)
		log_with(LOG_INFO, &about, "[manager -> store] %s finished: its checkpoints are "
			 "deleted", id);
	else if (rc == RTCMS_ENOENT)
		log_with(LOG_INFO, &about, "[manager -> store] %s finished: the store holds no "
			 "checkpoint of it", id);
	else
		log_with(LOG_WARN, &about, "%s finished; its checkpoints stay in the store: %s",
			 id, rtcms_strerror(rc));
}

/* One pull job, copied out of the table. */
struct job {
	char id[PROTO_ID_MAX + 1];
	char addr[PROTO_ADDR_MAX + 1];
	uint64_t inc, seq, base;
	uint64_t notified_ns;          /* when seq was announced (0: not known) */
	bool first;                    /* the first of its incarnation */
	bool probe;                    /* another manager pulls it: only look */
	struct mproc *p;               /* its slot (valid until the lock is taken
					* again: look it up by id then) */
};

/* The next process with an announced checkpoint not durable yet: one this
 * manager pulls, or, every 500 ms, one another manager pulls: then the
 * store is only asked whether it has it (probe), so this manager's view
 * stays true and it takes over when that manager is gone. Lock held. */
static bool next_job(struct manager *m, struct job *j)
{
	uint64_t now = manager_mono_ms();
	if (m->store_retry_at && now < m->store_retry_at)
		return false;
	/* round robin from after the last one taken: every process gets its
	 * turn, however often the others checkpoint */
	for (size_t k = 0; k < m->proc_count; k++) {
		size_t i = (m->pull_cursor + 1 + k) % m->proc_count;
		struct mproc *p = &m->procs[i];
		if (p->pulling || p->migrating || p->state != PROTO_PS_RUNNING)
			continue;
		if (p->notified <= p->durable || p->notified == p->failed_seq)
			continue;
		bool probe = !puller_owns(m, p->id);
		if (probe && now < p->probe_at)
			continue;
		if (probe)
			p->probe_at = now + 500;
		m->pull_cursor = i;
		memset(j, 0, sizeof(*j));
		struct mnode *n = manager_node(m, p->node);
		snprintf(j->id, sizeof(j->id), "%s", p->id);
		if (n)
			snprintf(j->addr, sizeof(j->addr), "%s", n->address);
		j->inc = p->incarnation;
		j->seq = p->notified;
		j->notified_ns = p->notified_ns;
		j->first = p->durable == 0;
		j->probe = probe;
		j->p = p;
		/* a delta against the newest durable checkpoint of this
		 * incarnation, until the chain is chain_max long */
		j->base = p->base_inc == j->inc && p->base_seq && m->cfg.chain_max &&
			  p->base_depth < m->cfg.chain_max ? p->base_seq : 0;
		p->pulling = true;
		return true;
	}
	return false;
}

/* The newest checkpoint of incarnation inc of id the store holds (LIST):
 * 0 and *seq (0 if none), or the store's error. Lock not held. */
static int probe_store(struct manager *m, struct rpc_link *link, const char *id,
		       uint64_t inc, uint64_t *seq, uint64_t *size)
{
	struct proto_list q;
	uint16_t count = 0;
	bool more = false;
	char why[PROTO_TEXT_MAX + 1];

	*seq = 0;
	struct proto_list_entry *entries = calloc(PROTO_LIST_MAX, sizeof(*entries));
	if (!entries)
		return RTCMS_ENOMEM;
	memset(&q, 0, sizeof(q));
	snprintf(q.process, sizeof(q.process), "%s", id);
	q.limit = PROTO_LIST_MAX;
	int rc = m->rpc.store->list(m->rpc.ctx, link, &q, entries, &count, &more, why,
				    sizeof(why));
	for (uint16_t i = 0; rc == 0 && i < count; i++)
		if (entries[i].incarnation == inc && entries[i].sequence > *seq) {
			*seq = entries[i].sequence;
			*size = entries[i].size;
		}
	free(entries);
	return rc;
}

/* Another manager pulls it: take what the store holds as durable. */
static void probe(struct manager *m, struct rpc_link *link, const struct job *j)
{
	uint64_t have = 0, size = 0;
	int rc = probe_store(m, link, j->id, j->inc, &have, &size);
	uv_mutex_lock(&m->lock);
	struct mproc *p = manager_proc(m, j->id);
	if (p) {
		p->pulling = false;
		if (rc == 0 && p->incarnation == j->inc && have > p->durable) {
			p->durable = have;
			p->durable_size = size;
			p->durable_at_ms = manager_mono_ms();
			p->base_inc = 0; /* its chain is not ours to extend */
		}
	}
}

/* The store answered a refusal (fenced, exists, ...): it is up. */
static bool store_refused(int rc)
{
	return rc == RTCMS_EFENCED || rc == RTCMS_EEXIST || rc == RTCMS_EINVAL ||
	       rc == RTCMS_ECORRUPT || rc == RTCMS_ETOOBIG || rc == RTCMS_EBUSY;
}

static void log_pull(const struct job *j, int rc, const struct pull_result *res, double ms)
{
	bool store_side = res->store_side;
	char kind[48] = "full";
	if (res->base)
		snprintf(kind, sizeof(kind), "a delta against %" PRIu64, res->base);
	/* the checkpoint stored, or the one asked for */
	const struct log_about about = { j->id, j->inc, rc == 0 ? res->sequence : j->seq };
	if (rc == 0 && res->existed)
		log_with(LOG_DEBUG, &about, "%s %" PRIu64 "/%" PRIu64 ": stored already "
			 "(another manager)", j->id, j->inc, res->sequence);
	else if (rc == 0) /* the first of an incarnation at info, the rest at debug */
		log_with(j->first ? LOG_INFO : LOG_DEBUG, &about, "[manager -> store] %s %"
			 PRIu64 "/%" PRIu64 " durable (%" PRIu64 " bytes, %s, pulled and stored "
			 "in %.1f ms)%s", j->id, j->inc, res->sequence, res->size, kind, ms,
			 j->first ? "; later ones are logged at debug level" : "");
	else if (res->cancelled)
		log_with(LOG_DEBUG, &about, "%s %" PRIu64 "/%" PRIu64 ": pull given up, a "
			 "migration sends a newer checkpoint", j->id, j->inc, j->seq);
	else if (!store_side && rc == RTCMS_ECORRUPT)
		log_with(LOG_WARN, &about, "%s %" PRIu64 "/%" PRIu64 " not stored: refused, the "
			 "data from %s does not match its hash", j->id, j->inc, j->seq, j->addr);
	else if (!store_side || rc == RTCMS_EFENCED || rc == RTCMS_EEXIST)
		log_with(LOG_WARN, &about, "%s %" PRIu64 "/%" PRIu64 " not stored: %s%s", j->id,
			 j->inc, j->seq, store_side ? "the store refused it: " : "",
			 rtcms_strerror(rc));
}

/* The newest durable checkpoint a delta may build on (lock held). */
static void note_base(struct mproc *p, const struct job *j, struct pull_result *res)
{
	uint64_t got = res->sequence;
	if (got < p->base_seq && p->base_inc == j->inc)
		return;
	/* stored by another manager: its depth follows from its base when
	 * that is the one we know */
	if (res->existed)
		res->depth = res->base == 0 ? 0
			     : res->base == p->base_seq && p->base_inc == j->inc &&
			       p->base_depth < UINT32_MAX ? p->base_depth + 1
			     : UINT32_MAX;
	p->base_inc = j->inc;
	p->base_seq = got;
	p->base_depth = res->depth;
}

/* What a pull did to the table (lock held on entry and exit; released
 * while a finished program's checkpoints are deleted). */
static void pulled(struct manager *m, const struct job *j, int rc, struct pull_result *res)
{
	struct mproc *p = manager_proc(m, j->id);
	if (!p)
		return;
	p->pulling = false;
	if (rc == 0 && p->ended && !p->exit_wait) {
		/* it finished while we stored it, and EXITED gave up waiting */
		uv_mutex_unlock(&m->lock);
		puller_forget(m, j->id);
		uv_mutex_lock(&m->lock);
	}
	if (rc == 0 && j->inc == p->incarnation)
		note_base(p, j, res);
	if (rc == 0 && j->inc == p->incarnation && res->sequence > p->durable) {
		p->durable = res->sequence;
		p->durable_size = res->full_size;
		p->durable_at_ms = manager_mono_ms();
	} else if (rc && (!res->store_side || rc == RTCMS_EFENCED || rc == RTCMS_EEXIST ||
			  rc == RTCMS_ECORRUPT)) {
		/* this announcement cannot be stored (superseded at the agent,
		 * corrupt, fenced): wait for the next one */
		p->failed_seq = j->seq;
	}
	uv_cond_broadcast(&m->work);
}

/* What a pull came to, for the metrics. */
static void count_pull(const struct job *j, int rc, const struct pull_result *res)
{
	enum manager_pull_outcome o = MPULL_FAILED;
	if (rc == 0 && res->existed)
		o = MPULL_STORED;
	else if (rc == 0)
		o = MPULL_DURABLE;
	else if (res->cancelled)
		o = MPULL_CANCELLED;
	else if (!res->store_side && rc == RTCMS_ENOENT && j->addr[0])
		o = MPULL_SUPERSEDED;
	else if (res->store_side && store_refused(rc))
		o = MPULL_REFUSED;
	metric_counter_inc(&manager_stats.pulls[o]);
	if (o != MPULL_DURABLE)
		return;
	metric_counter_inc(&manager_stats.durable);
	metric_counter_add(&manager_stats.stored_bytes, res->size);
	if (j->notified_ns)
		metric_histogram_observe_ns(&manager_stats.durable_seconds,
					    uv_hrtime() - j->notified_ns);
}

/* Pull the job's checkpoint (lock not held on entry, held on return). */
static void pull(struct manager *m, struct rpc_link *link, const struct job *j)
{
	struct pull_result res = { .sequence = j->seq };
	uint64_t t0 = uv_hrtime();
	int rc = RTCMS_ENOENT;

	metric_gauge_add(&manager_stats.pulls_in_flight, 1);
	if (j->addr[0])
		rc = pull_checkpoint(m, link, j->id, j->inc, j->seq, j->base, j->addr, &res,
				     &j->p->migrating);
	metric_gauge_add(&manager_stats.pulls_in_flight, -1);
	count_pull(j, rc, &res);
	double ms = (double)(uv_hrtime() - t0) / 1e6;
	if (rc == 0 || res.store_side)
		manager_store_result(m, store_refused(rc) ? 0 : rc, "PUT");
	log_pull(j, rc, &res, ms);
	uv_mutex_lock(&m->lock);
	pulled(m, j, rc, &res);
}

static void puller_thread(void *arg)
{
	struct manager *m = arg;
	struct rpc_link link = { 0 };
	struct job j;

	uv_mutex_lock(&m->lock);
	while (!m->stopping) {
		if (!next_job(m, &j)) {
			uv_cond_timedwait(&m->work, &m->lock, 100ull * 1000000);
			continue;
		}
		uv_mutex_unlock(&m->lock);
		if (j.probe)
			probe(m, &link, &j);
		else
			pull(m, &link, &j);
	}
	uv_mutex_unlock(&m->lock);
	manager_link_close(&link);
}

void puller_start(struct manager *m)
{
	for (size_t i = 0; i < m->cfg.pullers && i < MANAGER_PULLERS_MAX; i++)
		if (uv_thread_create(&m->pullers[m->puller_count], puller_thread, m) == 0)
			m->puller_count++;
}

void puller_join(struct manager *m)
{
	for (size_t i = 0; i < m->puller_count; i++)
		uv_thread_join(&m->pullers[i]);
}
