/* stats.c - rtcms-manager's metrics and their families (stats.h). */
#include "stats.h"

#include "detector.h"
#include "manager_int.h"

static const double latency[] = METRIC_BOUNDS_LATENCY;

struct manager_stats manager_stats = {
	.durable_seconds = METRIC_HISTOGRAM(latency),
};

static const char *const pull_outcomes[] = { "durable", "stored", "superseded", "cancelled",
					     "refused", "failed" };
static const char *const migrate_outcomes[] = { "ok", "unconfirmed", "failed", "refused" };
static const char *const restore_outcomes[] = { "ok", "unconfirmed", "elsewhere", "retry",
						"failed" };
static const char *const node_states[] = { "alive", "suspect", "failed" };
/* enum proto_proc_state 1..7, as rtcmsctl status names them */
static const char *const proc_states[] = { "running", "migrating", "exited", "lost",
					   "waiting", "stored", "failed" };
static const char *const hb_outcomes[] = { "answered", "unanswered" };

#define N(a) (sizeof(a) / sizeof((a)[0]))
_Static_assert(N(proc_states) == MANAGER_PROC_STATES - 1, "a label per process state");

static const struct metric_family families[] = {
	{ "rtcms_manager_checkpoints_durable_total", "Checkpoints this manager made durable in "
	  "the store (pulls, and the final checkpoints of migrations).", METRIC_COUNTER,
	  { NULL, NULL }, NULL, 1, 0, { .counter = &manager_stats.durable } },
	{ "rtcms_manager_checkpoint_durable_seconds", "Pulled checkpoints, from the first news of "
	  "one at this manager (the agent's CKPT_NOTIFY, or its PROCS report) to the store's "
	  "PUT_ACK.", METRIC_HISTOGRAM,
	  { NULL, NULL }, NULL, 1, 0, { .histogram = &manager_stats.durable_seconds } },
	{ "rtcms_manager_stored_bytes_total", "Bytes of the checkpoints this manager made "
	  "durable (a delta's own size).", METRIC_COUNTER, { NULL, NULL }, NULL, 1, 0,
	  { .counter = &manager_stats.stored_bytes } },
	{ "rtcms_manager_pulls_total", "Pulls from agents into the store by outcome.",
	  METRIC_COUNTER, { "outcome", NULL }, pull_outcomes, N(pull_outcomes), 0,
	  { .counter = manager_stats.pulls } },
	{ "rtcms_manager_pulls_in_flight", "Pulls under way (at most pull_concurrency).",
	  METRIC_GAUGE, { NULL, NULL }, NULL, 1, 0, { .gauge = &manager_stats.pulls_in_flight } },
	{ "rtcms_manager_migrations_total", "Migrations by outcome.", METRIC_COUNTER,
	  { "outcome", NULL }, migrate_outcomes, N(migrate_outcomes), 0,
	  { .counter = manager_stats.migrations } },
	{ "rtcms_manager_restores_total", "Restores of programs that run nowhere, by outcome "
	  "(one per attempt).", METRIC_COUNTER, { "outcome", NULL }, restore_outcomes,
	  N(restore_outcomes), 0, { .counter = manager_stats.restores } },
	{ "rtcms_manager_nodes", "Nodes in this manager's table by state: alive "
	  "(heard within node_timeout, not fenced), suspect (unheard, declared failed by an "
	  "operator, or being fenced), failed (fenced: its programs are restored elsewhere).",
	  METRIC_GAUGE, { "state", NULL }, node_states, N(node_states), 0,
	  { .gauge = manager_stats.nodes } },
	{ "rtcms_manager_processes", "Programs in this manager's table by state.", METRIC_GAUGE,
	  { "state", NULL }, proc_states, N(proc_states), 0, { .gauge = manager_stats.procs } },
	{ "rtcms_manager_node_suspicions_total", "Nodes found unheard for node_timeout (no "
	  "longer answered; the store is asked to fence them).", METRIC_COUNTER,
	  { NULL, NULL }, NULL, 1, 0, { .counter = &manager_stats.suspicions } },
	{ "rtcms_manager_false_suspicions_total", "Suspected nodes heard again before their "
	  "fence took hold: nothing happened to them.", METRIC_COUNTER, { NULL, NULL }, NULL, 1,
	  0, { .counter = &manager_stats.false_suspicions } },
	{ "rtcms_manager_node_failures_total", "Nodes declared failed (their fence complete: "
	  "their programs are restored elsewhere).", METRIC_COUNTER, { NULL, NULL }, NULL, 1, 0,
	  { .counter = &manager_stats.node_failures } },
	{ "rtcms_manager_heartbeats_total", "Authentic heartbeats of agents: answered, or not "
	  "(unknown node, old boot, replay, fenced node, no lease).", METRIC_COUNTER,
	  { "outcome", NULL }, hb_outcomes, N(hb_outcomes), 0,
	  { .counter = manager_stats.heartbeats } },
	{ "rtcms_manager_lease_lapses_total", "Times this manager lost its lease from the "
	  "store (it answers no heartbeat until it has one again).", METRIC_COUNTER,
	  { NULL, NULL }, NULL, 1, 0, { .counter = &manager_stats.lease_lapses } },
	{ "rtcms_manager_lease_held", "1 while this manager holds its lease from the store.",
	  METRIC_GAUGE, { NULL, NULL }, NULL, 1, 0, { .gauge = &manager_stats.lease_held } },
	{ "rtcms_manager_store_up", "1 while the store answers this manager.", METRIC_GAUGE,
	  { NULL, NULL }, NULL, 1, 0, { .gauge = &manager_stats.store_up } },
};

const struct metric_family *manager_stats_families(size_t *n)
{
	*n = N(families);
	return families;
}

void manager_stats_census(const struct manager *m)
{
	int64_t nodes[MNODE_STATES] = { 0 }, procs[MANAGER_PROC_STATES] = { 0 };

	/* as the manager itself sees them: alive is what placement may use */
	for (size_t i = 0; i < m->node_count; i++) {
		const struct mnode *n = &m->nodes[i];
		nodes[n->failed ? MNODE_FAILED : detector_node_usable(m, n) ? MNODE_ALIVE
									 : MNODE_SUSPECT]++;
	}
	for (size_t i = 0; i < m->proc_count; i++)
		if (m->procs[i].id[0] && m->procs[i].state > 0 &&
		    m->procs[i].state < MANAGER_PROC_STATES)
			procs[m->procs[i].state]++;
	for (int s = 0; s < MNODE_STATES; s++)
		metric_gauge_set(&manager_stats.nodes[s], nodes[s]);
	for (int s = 1; s < MANAGER_PROC_STATES; s++)
		metric_gauge_set(&manager_stats.procs[s - 1], procs[s]);
}
