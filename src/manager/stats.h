/*
 * stats.h - what rtcms-manager counts for its metrics (metrics/metrics.h):
 * one instance for the process, raised where the work is done - pullers
 * (puller.c), the threads of migrations (migrate.c, move.c), the detector
 * (reconcile.c, detector.c), the heartbeat thread (detector.c), the lease
 * thread (lease.c) - and read only by the /metrics endpoint's thread. The
 * node and program counts are gauges the lease thread sets on its tick
 * (manager_stats_census), under manager.lock, which it takes anyway.
 * main.c registers manager_stats_families().
 */
#ifndef RTCMS_MANAGER_STATS_H
#define RTCMS_MANAGER_STATS_H

#include <stddef.h>

#include "metrics/metrics.h"

struct manager;

/* rtcms_manager_pulls_total{outcome} */
enum manager_pull_outcome {
	MPULL_DURABLE,                 /* pulled and stored: durable */
	MPULL_STORED,                  /* the store had it (another manager) */
	MPULL_SUPERSEDED,              /* the agent holds a newer one only */
	MPULL_CANCELLED,               /* given up: a migration sends a newer one */
	MPULL_REFUSED,                 /* the store refused it (fenced, another hash) */
	MPULL_FAILED,                  /* the agent or the store failed */
	MPULL_OUTCOMES
};

/* rtcms_manager_migrations_total{outcome} */
enum manager_migrate_outcome {
	MMIGRATE_OK,                   /* committed, the target runs it */
	MMIGRATE_UNCONFIRMED,          /* committed, the target did not confirm: restored */
	MMIGRATE_FAILED,               /* undone: the source goes on */
	MMIGRATE_REFUSED,              /* not begun (not running, moved already, node down) */
	MMIGRATE_OUTCOMES
};

/* rtcms_manager_restores_total{outcome} */
enum manager_restore_outcome {
	MRESTORE_OK,                   /* committed, the target runs it */
	MRESTORE_UNCONFIRMED,          /* committed, not confirmed: again */
	MRESTORE_ELSEWHERE,            /* it runs after all (another manager, its node) */
	MRESTORE_RETRY,                /* not now (claimed elsewhere, no node): again later */
	MRESTORE_FAILED,               /* for good (no checkpoint, failed for good) */
	MRESTORE_OUTCOMES
};

/* rtcms_manager_nodes{state} */
enum manager_node_state { MNODE_ALIVE, MNODE_SUSPECT, MNODE_FAILED, MNODE_STATES };

#define MANAGER_PROC_STATES 8          /* enum proto_proc_state 1..7, 0 unused */

struct manager_stats {
	struct metric_counter durable;           /* checkpoints made durable */
	struct metric_histogram durable_seconds; /* announced -> durable (pulls) */
	struct metric_counter stored_bytes;      /* bytes of those checkpoints */
	struct metric_counter pulls[MPULL_OUTCOMES];
	struct metric_gauge pulls_in_flight;
	struct metric_counter migrations[MMIGRATE_OUTCOMES];
	struct metric_counter restores[MRESTORE_OUTCOMES];
	struct metric_gauge nodes[MNODE_STATES];
	struct metric_gauge procs[MANAGER_PROC_STATES - 1]; /* by state 1..7 */
	struct metric_counter suspicions;        /* unheard for node_timeout */
	struct metric_counter false_suspicions;  /* heard again before fenced */
	struct metric_counter node_failures;     /* fenced: declared failed */
	struct metric_counter heartbeats[2];     /* answered, not answered */
	struct metric_counter lease_lapses;      /* this manager's store lease lost */
	struct metric_gauge lease_held;          /* 1 while it holds it */
	struct metric_gauge store_up;
};

extern struct manager_stats manager_stats;

/* The manager's metric families; *n gets their number. */
const struct metric_family *manager_stats_families(size_t *n);

/* Set the node and program gauges from m's tables (manager.lock held). */
void manager_stats_census(const struct manager *m);

#endif
