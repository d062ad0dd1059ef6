/*
 * stats.h - what rtcms-agent counts for its metrics (metrics/metrics.h):
 * one instance for the process, raised where the work is done - captures
 * on the pool (capture.c), PULLs and RESTOREs on connection threads
 * (pull.c, restore.c), ends and restarts of programs on the loop and the
 * pool (restart.c), the lease, heartbeat round trips and the counts of
 * programs and registrations on the heartbeat thread (lease.c) - and read
 * only by the /metrics endpoint's thread. main.c registers
 * agent_stats_families().
 */
#ifndef RTCMS_AGENT_STATS_H
#define RTCMS_AGENT_STATS_H

#include <stddef.h>

#include "metrics/metrics.h"

/* rtcms_agent_captures_total{outcome} */
enum agent_capture_outcome { ACAPTURE_OK, ACAPTURE_FAILED, ACAPTURE_OUTCOMES };

/* rtcms_agent_pulls_total{outcome} */
enum agent_pull_outcome {
	APULL_SENT,                    /* the stream (or the metadata) went out */
	APULL_SUPERSEDED,              /* the program rewrote it while it was sent */
	APULL_REFUSED,                 /* answered with an ERROR (not held, no memory) */
	APULL_BROKEN,                  /* the connection broke */
	APULL_OUTCOMES
};

/* rtcms_agent_restores_total{outcome} */
enum agent_restore_outcome {
	ARESTORE_ADOPTED,              /* runs here as the new incarnation */
	ARESTORE_FAILED,               /* refused, or started and did not resume */
	ARESTORE_UNADOPTED,            /* resumed, but no ADOPT came: killed */
	ARESTORE_BROKEN,               /* the stream broke */
	ARESTORE_OUTCOMES
};

/* rtcms_agent_restarts_total{outcome} */
enum agent_restart_outcome {
	ARESTART_RESTARTED,            /* a new instance from its newest checkpoint */
	ARESTART_FAILED,               /* the new start failed: the managers move it */
	ARESTART_GAVE_UP,              /* max_restarts within the window: moved */
	ARESTART_OUTCOMES
};

/* rtcms_agent_program_exits_total{how} */
enum agent_exit_how {
	AEXIT_FINISHED,                /* exit status 0 */
	AEXIT_CRASHED,                 /* another status or a signal of its own */
	AEXIT_FENCED,                  /* killed for a lapsed lease */
	AEXIT_STOPPED,                 /* stopped by the agent (STOP, a failed restore) */
	AEXIT_HOWS
};

struct agent_stats {
	struct metric_counter captures[ACAPTURE_OUTCOMES];
	struct metric_histogram capture_seconds;
	struct metric_counter hashed_bytes;    /* read and hashed by captures */
	struct metric_counter pulls[APULL_OUTCOMES];
	struct metric_counter sent_bytes;      /* checkpoint bytes of PULL streams */
	struct metric_counter restores[ARESTORE_OUTCOMES];
	struct metric_counter restarts[ARESTART_OUTCOMES];
	struct metric_counter exits[AEXIT_HOWS];
	struct metric_counter lease_lapses;
	struct metric_gauge fenced;            /* 1 while its programs are fenced */
	struct metric_histogram heartbeat_rtt;
	struct metric_gauge programs;          /* running now */
	struct metric_gauge managers_registered;
};

extern struct agent_stats agent_stats;

/* The agent's metric families; *n gets their number. */
const struct metric_family *agent_stats_families(size_t *n);

#endif
