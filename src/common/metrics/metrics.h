/*
 * metrics.h - a daemon's metrics: counters, gauges and histograms that the
 * threads doing the work update, and their exposition in the Prometheus
 * text format (version 0.0.4) for the endpoint (metrics/http.h).
 *
 * Every value is a C11 atomic, updated with relaxed operations by
 * whichever thread does the work: an update is one atomic add or store,
 * never a lock, so a heartbeat thread may count too. Only the rendering
 * (the endpoint's thread) reads them. Nothing orders one value against
 * another: a scrape may see a counter raised and a related one not yet.
 *
 * A metric family (struct metric_family) names its values: a name, a help
 * text, a type, up to METRIC_LABELS_MAX label names and, for each series,
 * their values. Label sets are fixed when the family is declared (an
 * outcome, a mirror's index): nothing here grows with the programs or
 * requests a daemon sees. The families are added to a registry before the
 * endpoint starts and neither changes afterwards.
 *
 * Histograms have fixed upper bounds in seconds (at most
 * METRIC_BUCKETS_MAX, increasing; +Inf is implicit) and observe durations
 * in nanoseconds: one bucket and the sum are raised per observation. The
 * exposition makes the buckets cumulative and gives _count as the +Inf
 * bucket, so a scrape's _count always equals its +Inf bucket however the
 * updates interleave (a separate count could run ahead of the buckets).
 */
#ifndef RTCMS_METRICS_H
#define RTCMS_METRICS_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#define METRIC_LABELS_MAX 2
#define METRIC_BUCKETS_MAX 16
#define METRICS_FAMILIES_MAX 96        /* in one registry */
#define METRICS_TEXT_MAX (1u << 20)    /* an exposition longer than this fails */

struct metric_counter {
	_Atomic uint64_t v;
};

struct metric_gauge {
	_Atomic int64_t v;
};

/* bounds: upper bounds in seconds (static storage), nbounds of them */
struct metric_histogram {
	const double *bounds;
	size_t nbounds;
	_Atomic uint64_t bucket[METRIC_BUCKETS_MAX + 1]; /* per bucket, the last +Inf */
	_Atomic uint64_t sum_ns;
};

/* Bounds in seconds for request latencies (from 0.5 ms to 30 s) and for
 * round trips on a LAN (from 0.1 ms to 0.5 s), for a daemon's
 * `static const double b[] = METRIC_BOUNDS_LATENCY;`. */
#define METRIC_BOUNDS_LATENCY \
	{ 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30 }
#define METRIC_BOUNDS_RTT \
	{ 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5 }

/* A histogram's initialiser: METRIC_HISTOGRAM(latency_bounds). */
#define METRIC_HISTOGRAM(b) { .bounds = (b), .nbounds = sizeof(b) / sizeof((b)[0]) }

static inline void metric_counter_add(struct metric_counter *c, uint64_t n)
{
	atomic_fetch_add_explicit(&c->v, n, memory_order_relaxed);
}

static inline void metric_counter_inc(struct metric_counter *c)
{
	metric_counter_add(c, 1);
}

static inline void metric_gauge_set(struct metric_gauge *g, int64_t v)
{
	atomic_store_explicit(&g->v, v, memory_order_relaxed);
}

static inline void metric_gauge_add(struct metric_gauge *g, int64_t d)
{
	atomic_fetch_add_explicit(&g->v, d, memory_order_relaxed);
}

/* One observation of ns nanoseconds. */
static inline void metric_histogram_observe_ns(struct metric_histogram *h, uint64_t ns)
{
	double s = (double)ns / 1e9;
	size_t i = 0;
	while (i < h->nbounds && s > h->bounds[i])
		i++;
	atomic_fetch_add_explicit(&h->bucket[i], 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&h->sum_ns, ns, memory_order_relaxed);
}

enum metric_type {
	METRIC_COUNTER,
	METRIC_GAUGE,
	METRIC_HISTOGRAM,
};

struct metric_family {
	const char *name;              /* rtcms_store_puts_total */
	const char *help;              /* one line */
	enum metric_type type;
	const char *labels[METRIC_LABELS_MAX]; /* label names, the unused NULL */
	/* series: label values, series x (labels in use) of them, series by
	 * series (NULL without labels); series: 1 without labels */
	const char *const *values;
	size_t series;
	/* counter, gauge: the value is written as v / 10^decimals (a gauge of
	 * milliseconds with 3 gives seconds); histograms ignore it */
	unsigned decimals;
	/* the values: an array of `series` of the type's struct */
	union {
		struct metric_counter *counter;
		struct metric_gauge *gauge;
		struct metric_histogram *histogram;
	} v;
};

struct metrics_registry {
	const struct metric_family *families[METRICS_FAMILIES_MAX];
	size_t count;
};

/*
 * Start r with the families every daemon exposes: rtcms_build_info
 * {version, revision} (1) and process_start_time_seconds (from /proc: the
 * process' start, not this call's).
 */
void metrics_registry_init(struct metrics_registry *r);

/*
 * Add n families (an array, static storage: the registry keeps pointers)
 * after checking each: a name not in r yet, names and label names of the
 * Prometheus alphabet,
 * a histogram's bounds increasing and at most METRIC_BUCKETS_MAX, values
 * given for every label. Returns 0, RTCMS_EINVAL (naming the family in
 * why) or RTCMS_ENOSPC (more than METRICS_FAMILIES_MAX in all).
 */
int metrics_registry_add(struct metrics_registry *r, const struct metric_family *f, size_t n,
			 char *why, size_t whylen);

/*
 * The exposition of every family in r, in the order added: a malloc'd
 * text (the caller frees it) and its length. Returns 0, RTCMS_ENOMEM, or
 * RTCMS_ETOOBIG (longer than METRICS_TEXT_MAX).
 */
int metrics_render(const struct metrics_registry *r, char **text, size_t *len);

/* A config check (util/config.h) of metrics_listen: empty (off), or a
 * numeric host:port to listen on (net/addr.h; port 0 allowed). */
int metrics_listen_check(const char *s, char *why, size_t whylen);

#endif
