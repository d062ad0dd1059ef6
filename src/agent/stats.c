/* stats.c - rtcms-agent's metrics and their families (stats.h). */
#include "stats.h"

static const double latency[] = METRIC_BOUNDS_LATENCY;
static const double rtt[] = METRIC_BOUNDS_RTT;

struct agent_stats agent_stats = {
	.capture_seconds = METRIC_HISTOGRAM(latency),
	.heartbeat_rtt = METRIC_HISTOGRAM(rtt),
};

static const char *const capture_outcomes[] = { "ok", "failed" };
static const char *const pull_outcomes[] = { "sent", "superseded", "refused", "broken" };
static const char *const restore_outcomes[] = { "adopted", "failed", "unadopted", "broken" };
static const char *const restart_outcomes[] = { "restarted", "failed", "gave_up" };
static const char *const exit_hows[] = { "finished", "crashed", "fenced", "stopped" };

#define N(a) (sizeof(a) / sizeof((a)[0]))

static const struct metric_family families[] = {
	{ "rtcms_agent_captures_total", "Captures of a program's newest checkpoint from its "
	  "area, by outcome (failed: rewritten during every attempt, or no memory).",
	  METRIC_COUNTER, { "outcome", NULL }, capture_outcomes, N(capture_outcomes), 0,
	  { .counter = agent_stats.captures } },
	{ "rtcms_agent_capture_duration_seconds", "Successful captures: the committed slot "
	  "read in place, the changed blocks hashed.", METRIC_HISTOGRAM, { NULL, NULL }, NULL,
	  1, 0, { .histogram = &agent_stats.capture_seconds } },
	{ "rtcms_agent_capture_hashed_bytes_total", "Bytes read and hashed by captures (the "
	  "changed blocks).", METRIC_COUNTER, { NULL, NULL }, NULL, 1, 0,
	  { .counter = &agent_stats.hashed_bytes } },
	{ "rtcms_agent_pulls_total", "PULL requests of managers by outcome.", METRIC_COUNTER,
	  { "outcome", NULL }, pull_outcomes, N(pull_outcomes), 0,
	  { .counter = agent_stats.pulls } },
	{ "rtcms_agent_sent_bytes_total", "Checkpoint bytes sent in complete PULL streams (a "
	  "delta's own size).", METRIC_COUNTER, { NULL, NULL }, NULL, 1, 0,
	  { .counter = &agent_stats.sent_bytes } },
	{ "rtcms_agent_restores_total", "RESTOREs received by outcome.", METRIC_COUNTER,
	  { "outcome", NULL }, restore_outcomes, N(restore_outcomes), 0,
	  { .counter = agent_stats.restores } },
	{ "rtcms_agent_restarts_total", "Restart decisions for crashed programs, by outcome.",
	  METRIC_COUNTER, { "outcome", NULL }, restart_outcomes, N(restart_outcomes), 0,
	  { .counter = agent_stats.restarts } },
	{ "rtcms_agent_program_exits_total", "Programs that ended, by how.", METRIC_COUNTER,
	  { "how", NULL }, exit_hows, N(exit_hows), 0, { .counter = agent_stats.exits } },
	{ "rtcms_agent_lease_lapses_total", "Times no manager answered a heartbeat for the "
	  "lease: every program was stopped (fenced).", METRIC_COUNTER, { NULL, NULL }, NULL, 1,
	  0, { .counter = &agent_stats.lease_lapses } },
	{ "rtcms_agent_fenced", "1 from a lease lapse until a manager answers again.",
	  METRIC_GAUGE, { NULL, NULL }, NULL, 1, 0, { .gauge = &agent_stats.fenced } },
	{ "rtcms_agent_heartbeat_rtt_seconds", "Heartbeat round trips: from a HEARTBEAT sent "
	  "to a manager's HEARTBEAT_ACK of it received (one per answering manager).",
	  METRIC_HISTOGRAM, { NULL, NULL }, NULL, 1, 0,
	  { .histogram = &agent_stats.heartbeat_rtt } },
	{ "rtcms_agent_programs", "Protected programs running on this node.", METRIC_GAUGE,
	  { NULL, NULL }, NULL, 1, 0, { .gauge = &agent_stats.programs } },
	{ "rtcms_agent_managers_registered", "Managers this agent is registered with.",
	  METRIC_GAUGE, { NULL, NULL }, NULL, 1, 0,
	  { .gauge = &agent_stats.managers_registered } },
};

const struct metric_family *agent_stats_families(size_t *n)
{
	*n = N(families);
	return families;
}
