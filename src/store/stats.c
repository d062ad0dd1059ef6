/* stats.c - rtcms-store's metrics and their families (stats.h). */
#include "stats.h"

static const double latency[] = METRIC_BOUNDS_LATENCY;

struct store_stats store_stats = {
	.put_seconds = METRIC_HISTOGRAM(latency),
	.get_seconds = METRIC_HISTOGRAM(latency),
};

static const char *const put_outcomes[] = { "durable", "duplicate", "refused", "failed",
					     "aborted" };
static const char *const get_outcomes[] = { "ok", "missing", "failed", "aborted" };
static const char *const claim_outcomes[] = { "won", "renewed", "held", "refused" };
static const char *const indexes[] = { "0", "1", "2", "3", "4", "5", "6", "7", "8", "9",
				       "10", "11", "12", "13", "14", "15" };
_Static_assert(sizeof(indexes) / sizeof(indexes[0]) >= STORE_MAX_MIRRORS,
	       "a mirror index label per mirror");
static const char *mirror_labels[2 * STORE_MAX_MIRRORS]; /* mirror, path */

#define N(a) (sizeof(a) / sizeof((a)[0]))

static struct metric_family families[] = {
	{ "rtcms_store_puts_total", "PUT requests by outcome.", METRIC_COUNTER,
	  { "outcome", NULL }, put_outcomes, N(put_outcomes), 0, { .counter = store_stats.puts } },
	{ "rtcms_store_put_duration_seconds", "Durable PUTs, from PUT_BEGIN received to "
	  "PUT_ACK sent (chunks written and flushed, metadata committed on every online mirror).",
	  METRIC_HISTOGRAM, { NULL, NULL }, NULL, 1, 0, { .histogram = &store_stats.put_seconds } },
	{ "rtcms_store_received_bytes_total", "Chunk bytes received in PUT streams.",
	  METRIC_COUNTER, { NULL, NULL }, NULL, 1, 0, { .counter = &store_stats.received_bytes } },
	{ "rtcms_store_gets_total", "Streamed GET requests by outcome (metadata-only GETs "
	  "are not counted).", METRIC_COUNTER, { "outcome", NULL }, get_outcomes,
	  N(get_outcomes), 0, { .counter = store_stats.gets } },
	{ "rtcms_store_get_duration_seconds", "Complete GET streams, from GET received to "
	  "GET_END sent.", METRIC_HISTOGRAM, { NULL, NULL }, NULL, 1, 0,
	  { .histogram = &store_stats.get_seconds } },
	{ "rtcms_store_sent_bytes_total", "Chunk bytes sent in GET streams.", METRIC_COUNTER,
	  { NULL, NULL }, NULL, 1, 0, { .counter = &store_stats.sent_bytes } },
	{ "rtcms_store_mirror_online", "1 while the mirror takes writes and serves reads, 0 "
	  "once it was taken offline.", METRIC_GAUGE, { "mirror", "path" }, mirror_labels, 0, 0,
	  { .gauge = store_stats.mirror_online } },
	{ "rtcms_store_chunk_repairs_total", "Chunk copies written from a good copy: read "
	  "repair, scrub, and the resync at open (a new or wiped mirror filled in).", METRIC_COUNTER, { NULL, NULL }, NULL, 1, 0,
	  { .counter = &store_stats.repairs } },
	{ "rtcms_store_claims_total", "CLAIM requests by outcome.", METRIC_COUNTER,
	  { "outcome", NULL }, claim_outcomes, N(claim_outcomes), 0,
	  { .counter = store_stats.claims } },
	{ "rtcms_store_claim_commits_total", "Claims committed: a process moved to a new "
	  "node, its incarnation raised.", METRIC_COUNTER, { NULL, NULL }, NULL, 1, 0,
	  { .counter = &store_stats.commits } },
	{ "rtcms_store_claim_releases_total", "Claims released without a move.",
	  METRIC_COUNTER, { NULL, NULL }, NULL, 1, 0, { .counter = &store_stats.releases } },
	{ "rtcms_store_fences", "Node fences in the store's table now (pending, effective "
	  "or complete).", METRIC_GAUGE, { NULL, NULL }, NULL, 1, 0,
	  { .gauge = &store_stats.fences } },
	{ "rtcms_store_fences_created_total", "Node fences made (a manager no longer heard "
	  "the node and no other did).", METRIC_COUNTER, { NULL, NULL }, NULL, 1, 0,
	  { .counter = &store_stats.fences_created } },
	{ "rtcms_store_connections", "Connections past their HELLO (max_connections bounds "
	  "them).", METRIC_GAUGE, { NULL, NULL }, NULL, 1, 0,
	  { .gauge = &store_stats.connections } },
};

const struct metric_family *store_stats_families(const char *const *paths, size_t count,
						 size_t *n)
{
	if (count > STORE_MAX_MIRRORS)
		count = STORE_MAX_MIRRORS;
	for (size_t i = 0; i < count; i++) {
		mirror_labels[2 * i] = indexes[i];
		mirror_labels[2 * i + 1] = paths[i];
	}
	for (size_t i = 0; i < N(families); i++)
		if (families[i].v.gauge == store_stats.mirror_online)
			families[i].series = count;
	*n = N(families);
	return families;
}
