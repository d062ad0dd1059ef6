/*
 * stats.h - what rtcms-store counts for its metrics (metrics/metrics.h):
 * one instance for the process, updated where the work is done - the
 * engine (put.c, claim.c, mirror.c, repair.c) on the pool threads, the
 * server (server*.c, conn.c) on the loop - and read only by the /metrics
 * endpoint's thread. main.c registers store_stats_families().
 */
#ifndef RTCMS_STORE_STATS_H
#define RTCMS_STORE_STATS_H

#include <stddef.h>

#include "metrics/metrics.h"
#include "store.h"

/* rtcms_store_puts_total{outcome} */
enum store_put_outcome {
	STORE_PUT_DURABLE,             /* committed on every online mirror, acknowledged */
	STORE_PUT_DUPLICATE,           /* stored already: acknowledged at PUT_BEGIN */
	STORE_PUT_REFUSED,             /* refused at PUT_BEGIN (fenced, another hash, ...) */
	STORE_PUT_FAILED,              /* refused at PUT_END (count, hash, I/O, fenced) */
	STORE_PUT_ABORTED,             /* given up mid-stream (a chunk refused, the
					* connection lost) */
	STORE_PUT_OUTCOMES
};

/* rtcms_store_gets_total{outcome}: streamed GETs (not metadata probes) */
enum store_get_outcome {
	STORE_GET_OK,                  /* streamed to its GET_END */
	STORE_GET_MISSING,             /* no such checkpoint */
	STORE_GET_FAILED,              /* could not be opened or read */
	STORE_GET_ABORTED,             /* the connection went mid-stream */
	STORE_GET_OUTCOMES
};

/* rtcms_store_claims_total{outcome} */
enum store_claim_outcome {
	STORE_CLAIM_WON,               /* a new claim */
	STORE_CLAIM_RENEWED,           /* its holder's again */
	STORE_CLAIM_HELD,              /* held by another claimant (ECLAIMED) */
	STORE_CLAIM_REFUSED,           /* nothing to claim, failed for good, an error */
	STORE_CLAIM_OUTCOMES
};

struct store_stats {
	struct metric_counter puts[STORE_PUT_OUTCOMES];
	struct metric_histogram put_seconds;   /* PUT_BEGIN in to PUT_ACK out, durable ones */
	struct metric_counter received_bytes;  /* chunk bytes of PUT streams */
	struct metric_counter gets[STORE_GET_OUTCOMES];
	struct metric_histogram get_seconds;   /* GET in to GET_END out, complete ones */
	struct metric_counter sent_bytes;      /* chunk bytes of GET streams */
	struct metric_gauge mirror_online[STORE_MAX_MIRRORS];
	struct metric_counter repairs;         /* bad or missing copies rewritten */
	struct metric_counter claims[STORE_CLAIM_OUTCOMES];
	struct metric_counter commits;         /* claims committed (a move recorded) */
	struct metric_counter releases;        /* claims released */
	struct metric_gauge fences;            /* node fences in the table now */
	struct metric_counter fences_created;
	struct metric_gauge connections;       /* connections past their HELLO */
};

extern struct store_stats store_stats;

/* The store's metric families, the mirror gauge with one series per
 * mirror path (count of them, in the order opened; the strings must
 * outlive the registry). *n gets their number. */
const struct metric_family *store_stats_families(const char *const *paths, size_t count,
						 size_t *n);

#endif
