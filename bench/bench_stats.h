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

/* memcpy bandwidth of this machine in bytes/s: 256 MiB buffers, best of 5. */
static inline double bench_memcpy(void)
{
	size_t len = 256u << 20;
	uint8_t *a = malloc(len), *b = malloc(len);
	double best = 0;
	if (!a || !b) {
		free(a);
		free(b);
		return 0;
	}
	memset(a, 1, len);
	memset(b, 2, len);
	for (int i = 0; i < 5; i++) {
		struct timespec t0, t1;
		clock_gettime(CLOCK_MONOTONIC, &t0);
		memcpy(b, a, len);
		clock_gettime(CLOCK_MONOTONIC, &t1);
		double t = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
		a[i] = b[len - 1 - (size_t)i]; /* keep the copy observable */
		if ((double)len / t > best)
			best = (double)len / t;
	}
	free(a);
	free(b);
	return best;
}

/* Parse the benchmarks' options, [--append FILE.md] [--quick]: 0, or 2
 * after a usage message naming the benchmark. */
static inline int bench_args(int argc, char **argv, const char *name, const char **append,
			     int *quick)
{
	*append = NULL;
	*quick = 0;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--append") && i + 1 < argc) {
			*append = argv[++i];
		} else if (!strcmp(argv[i], "--quick")) {
			*quick = 1;
		} else {
			fprintf(stderr, "usage: %s [--append FILE.md] [--quick]\n", name);
			return 2;
		}
	}
	return 0;
}

/* Append text to the file at path (nothing if path is NULL): 0, or 1. */
static inline int bench_append(const char *path, const char *text)
{
	if (!path)
		return 0;
	FILE *f = fopen(path, "a");
	if (!f)
		return 1;
	fputs(text, f);
	return fclose(f) == 0 ? 0 : 1;
}

#endif
