/*
 * census.h - live instances of protected programs, counted from /proc by
 * the RTCMS_PROCESS their agent gave them (as cl_instances() does): once,
 * or all the time in a sampler thread that keeps the worst it saw.
 *
 * "Live" is every state but zombie and dead: running, sleeping, and
 * stopped (T, t). A stopped instance (SIGSTOPped: frozen for a migration,
 * or its node frozen) still counts as live, since a SIGCONT brings it
 * back; stopped ones are also counted apart so a report can tell them.
 */
#ifndef RTCMS_TEST_CENSUS_H
#define RTCMS_TEST_CENSUS_H

#include <stdint.h>

#define CENSUS_IDS_MAX 16
#define CENSUS_PIDS_MAX 8

struct census_count {
	int live;                    /* instances alive at one same moment */
	int stopped;                 /* of them, stopped (T or t) */
	int pids[CENSUS_PIDS_MAX];   /* the first of them */
};

/*
 * Count the instances of ids[0..n-1] now into out[0..n-1]. Instances are
 * found in one pass over /proc and then read again: only those still alive
 * then (same start time, not a zombie) count, so all counted instances were
 * alive together at one moment (one that ended during the pass is not
 * taken for an overlap). Returns 0, or -1 if /proc cannot be read.
 */
int census_scan(const char *const *ids, int n, struct census_count *out);

struct census_stats {
	uint64_t samples;
	int last_live;               /* in the latest sample */
	int last_stopped;
	int max_live;                /* most instances alive at one moment */
	int max_running;             /* most of them not stopped at one moment */
	uint64_t double_samples;     /* samples with two or more live */
	uint64_t stopped_samples;    /* samples with a stopped instance */
	uint64_t zero_samples;       /* samples with none */
	uint64_t first_double_ms;    /* when the first double was seen (ms since
				      * census_start; 0: never) */
	int double_pids[CENSUS_PIDS_MAX]; /* the instances of that sample */
	int double_stopped;          /* how many of those were stopped */
	uint64_t max_gap_ms;         /* longest time between two samples */
};

struct census;

/* Start a thread that counts ids[0..n-1] (copied; n <= CENSUS_IDS_MAX)
 * every interval_ms. Returns 0 and *out, or -1. */
int census_start(const char *const *ids, int n, int interval_ms, struct census **out);
/* What the thread saw of ids[i] so far. */
void census_get(struct census *c, int i, struct census_stats *out);
/* Forget what was seen (a new phase of a test). */
void census_reset(struct census *c);
/* Stop the thread and free c; NULL is a no-op. */
void census_free(struct census *c);

#endif
