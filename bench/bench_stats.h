/*
 * bench_stats.h - what every benchmark needs: percentiles of samples, the
 * wall clock in ms, and the time stamp at the start of an rtcms log line.
 * Header-only (static functions): bench_checkpoint links librtcms alone.
 */
#ifndef RTCMS_BENCH_STATS_H
#define RTCMS_BENCH_STATS_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static inline int bench_cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

/* The p-th percentile (0..1) of n samples (sorts them); 0 if none. */
static inline double bench_pct(double *v, int n, double p)
{
	if (n == 0)
		return 0;
	qsort(v, (size_t)n, sizeof(*v), bench_cmp);
	return v[(int)(p * (n - 1) + 0.5)];
}

/* Unix time in ms. */
static inline uint64_t bench_real_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* "2026-11-25T14:01:27.777Z ..." -> unix ms, or -1. */
static inline int64_t bench_log_time_ms(const char *line)
{
	struct tm tm;
	int ms = 0;
	memset(&tm, 0, sizeof(tm));
	if (sscanf(line, "%d-%d-%dT%d:%d:%d.%dZ", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
		   &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &ms) != 7)
		return -1;
	tm.tm_year -= 1900;
	tm.tm_mon -= 1;
	return (int64_t)timegm(&tm) * 1000 + ms;
}

#endif
