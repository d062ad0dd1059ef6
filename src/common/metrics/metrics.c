/* metrics.c - the registry and the Prometheus text exposition (metrics.h). */
#include "metrics/metrics.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "net/addr.h"
#include "rtcms_error.h"
#include "util/version.h"

/* ---- the families every daemon has -------------------------------------- */

static struct metric_gauge build_info = { 1 };
static struct metric_gauge start_time_ms;
static const char *build_values[2];

static const struct metric_family common[] = {
	{ "rtcms_build_info", "The version and git revision this daemon was built from (1).",
	  METRIC_GAUGE, { "version", "revision" }, build_values, 1, 0, { .gauge = &build_info } },
	{ "process_start_time_seconds", "Start time of the process since the Unix epoch.",
	  METRIC_GAUGE, { NULL, NULL }, NULL, 1, 3, { .gauge = &start_time_ms } },
};

/* The process' start in Unix ms: /proc/self/stat's starttime (clock ticks
 * after boot) plus /proc/stat's btime; now if either cannot be read. */
static int64_t process_start_ms(void)
{
	struct timespec now;
	char buf[1024];
	long long btime = -1;
	unsigned long long ticks = 0;
	long hz = sysconf(_SC_CLK_TCK);

	clock_gettime(CLOCK_REALTIME, &now);
	int64_t fallback = (int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000;
	FILE *f = fopen("/proc/stat", "r");
	if (f) {
		while (fgets(buf, sizeof(buf), f))
			if (sscanf(buf, "btime %lld", &btime) == 1)
				break;
		fclose(f);
	}
	f = fopen("/proc/self/stat", "r");
	if (!f)
		return fallback;
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	/* after the command name (in parentheses, may hold anything): state
	 * is field 3, starttime field 22 */
	const char *p = strrchr(buf, ')');
	if (!p || btime < 0 || hz <= 0 ||
	    sscanf(p + 1, " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %*u %*u %*d %*d "
		   "%*d %*d %*d %*d %llu", &ticks) != 1)
		return fallback;
	return (int64_t)btime * 1000 + (int64_t)(ticks * 1000 / (unsigned long long)hz);
}

void metrics_registry_init(struct metrics_registry *r)
{
	char why[128];

	memset(r, 0, sizeof(*r));
	build_values[0] = version_number();
	build_values[1] = version_revision();
	metric_gauge_set(&start_time_ms, process_start_ms());
	metrics_registry_add(r, common, sizeof(common) / sizeof(common[0]), why, sizeof(why));
}

/* ---- checks ----------------------------------------------------------------- */

/* [a-zA-Z_:][a-zA-Z0-9_:]* (metric names); label names: no ':' */
static bool name_ok(const char *s, bool label)
{
	if (!s || !*s || (*s >= '0' && *s <= '9'))
		return false;
	for (; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
		      (*s >= '0' && *s <= '9') || *s == '_' || (*s == ':' && !label)))
			return false;
	return true;
}

static size_t label_count(const struct metric_family *f)
{
	size_t k = 0;
	while (k < METRIC_LABELS_MAX && f->labels[k])
		k++;
	return k;
}

static int family_check(const struct metric_family *f, char *why, size_t whylen)
{
	size_t nl = label_count(f);

	if (!name_ok(f->name, false) || !f->help) {
		snprintf(why, whylen, "metric \"%s\": not a valid name, or no help",
			 f->name ? f->name : "(null)");
		return RTCMS_EINVAL;
	}
	for (size_t k = 0; k < nl; k++)
		if (!name_ok(f->labels[k], true) || strncmp(f->labels[k], "__", 2) == 0 ||
		    (f->type == METRIC_HISTOGRAM && strcmp(f->labels[k], "le") == 0)) {
			snprintf(why, whylen, "metric %s: label name \"%s\" is not allowed",
				 f->name, f->labels[k]);
			return RTCMS_EINVAL;
		}
	if (f->series == 0 || (nl == 0 && f->series != 1) || (nl && !f->values) ||
	    !f->v.counter) {
		snprintf(why, whylen, "metric %s: %zu series, %zu labels, %s", f->name,
			 f->series, nl, f->v.counter ? "values missing" : "no data");
		return RTCMS_EINVAL;
	}
	for (size_t i = 0; i < f->series * nl; i++)
		if (!f->values[i]) {
			snprintf(why, whylen, "metric %s: label value %zu missing", f->name, i);
			return RTCMS_EINVAL;
		}
	for (size_t i = 0; f->type == METRIC_HISTOGRAM && i < f->series; i++) {
		const struct metric_histogram *h = &f->v.histogram[i];
		bool ok = h->bounds && h->nbounds > 0 && h->nbounds <= METRIC_BUCKETS_MAX;
		for (size_t b = 1; ok && b < h->nbounds; b++)
			ok = h->bounds[b] > h->bounds[b - 1];
		if (!ok) {
			snprintf(why, whylen, "metric %s: bounds not increasing, or more than %d",
				 f->name, METRIC_BUCKETS_MAX);
			return RTCMS_EINVAL;
		}
	}
	return 0;
}

int metrics_registry_add(struct metrics_registry *r, const struct metric_family *f, size_t n,
			 char *why, size_t whylen)
{
	if (r->count + n > METRICS_FAMILIES_MAX) {
		snprintf(why, whylen, "more than %d metric families", METRICS_FAMILIES_MAX);
		return RTCMS_ENOSPC;
	}
	for (size_t i = 0; i < n; i++) {
		int rc = family_check(&f[i], why, whylen);
		if (rc)
			return rc;
		/* one family per name (a scrape with two is refused whole) */
		for (size_t k = 0; k < r->count + i; k++) {
			const char *other = k < r->count ? r->families[k]->name : f[k - r->count].name;
			if (strcmp(other, f[i].name) == 0) {
				snprintf(why, whylen, "metric %s: added twice", f[i].name);
				return RTCMS_EINVAL;
			}
		}
	}
	for (size_t i = 0; i < n; i++)
		r->families[r->count++] = &f[i];
	return 0;
}

int metrics_listen_check(const char *s, char *why, size_t whylen)
{
	return s[0] ? net_addr_check_listen(s, why, whylen) : 0;
}

/* ---- exposition ---------------------------------------------------------- */

/* The text being built: grows by doubling up to METRICS_TEXT_MAX; the
 * first failure sticks. */
struct text {
	char *buf;
	size_t len, cap;
	int rc;
};

static void text_reserve(struct text *t, size_t more)
{
	if (t->rc || t->len + more + 1 <= t->cap)
		return;
	size_t cap = t->cap ? t->cap : 4096;
	while (cap < t->len + more + 1)
		cap *= 2;
	if (cap > METRICS_TEXT_MAX) {
		t->rc = RTCMS_ETOOBIG;
		return;
	}
	char *b = realloc(t->buf, cap);
	if (!b) {
		t->rc = RTCMS_ENOMEM;
		return;
	}
	t->buf = b;
	t->cap = cap;
}

static void text_add(struct text *t, const char *s, size_t n)
{
	text_reserve(t, n);
	if (t->rc)
		return;
	memcpy(t->buf + t->len, s, n);
	t->len += n;
	t->buf[t->len] = '\0';
}

static void text_printf(struct text *t, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void text_printf(struct text *t, const char *fmt, ...)
{
	char small[128];
	va_list ap;

	va_start(ap, fmt);
	int n = vsnprintf(small, sizeof(small), fmt, ap);
	va_end(ap);
	if (n < 0) {
		t->rc = RTCMS_EINTERNAL;
		return;
	}
	if ((size_t)n < sizeof(small)) {
		text_add(t, small, (size_t)n);
		return;
	}
	text_reserve(t, (size_t)n);
	if (t->rc)
		return;
	va_start(ap, fmt);
	vsnprintf(t->buf + t->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	t->len += (size_t)n;
}

/* s escaped: backslash and newline always, the double quote in a label
 * value (the format's two escapings: HELP text and label values). */
static void text_escaped(struct text *t, const char *s, bool quote)
{
	for (; *s; s++) {
		if (*s == '\\')
			text_add(t, "\\\\", 2);
		else if (*s == '\n')
			text_add(t, "\\n", 2);
		else if (*s == '"' && quote)
			text_add(t, "\\\"", 2);
		else
			text_add(t, s, 1);
	}
}

/* {a="x",b="y"} of series i, with le="..." last if given; nothing if the
 * series has no label at all. */
static void text_labels(struct text *t, const struct metric_family *f, size_t i,
			const char *le)
{
	size_t nl = label_count(f);
	if (nl == 0 && !le)
		return;
	text_add(t, "{", 1);
	for (size_t k = 0; k < nl; k++) {
		text_printf(t, "%s%s=\"", k ? "," : "", f->labels[k]);
		text_escaped(t, f->values[i * nl + k], true);
		text_add(t, "\"", 1);
	}
	if (le)
		text_printf(t, "%sle=\"%s\"", nl ? "," : "", le);
	text_add(t, "}", 1);
}

/* v / 10^decimals, exactly (no float rounding). */
static void text_value(struct text *t, int64_t v, unsigned decimals)
{
	if (decimals == 0) {
		text_printf(t, " %" PRId64 "\n", v);
		return;
	}
	uint64_t scale = 1;
	for (unsigned d = 0; d < decimals && d < 18; d++)
		scale *= 10;
	uint64_t mag = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
	text_printf(t, " %s%" PRIu64 ".%0*" PRIu64 "\n", v < 0 ? "-" : "", mag / scale,
		    (int)(decimals < 18 ? decimals : 18), mag % scale);
}

static void render_histogram(struct text *t, const struct metric_family *f, size_t i)
{
	const struct metric_histogram *h = &f->v.histogram[i];
	uint64_t cumulative = 0;
	char le[32];

	for (size_t b = 0; b <= h->nbounds; b++) {
		cumulative += atomic_load_explicit(&h->bucket[b], memory_order_relaxed);
		if (b < h->nbounds)
			snprintf(le, sizeof(le), "%g", h->bounds[b]);
		else
			snprintf(le, sizeof(le), "+Inf");
		text_printf(t, "%s_bucket", f->name);
		text_labels(t, f, i, le);
		text_printf(t, " %" PRIu64 "\n", cumulative);
	}
	uint64_t ns = atomic_load_explicit(&h->sum_ns, memory_order_relaxed);
	text_printf(t, "%s_sum", f->name);
	text_labels(t, f, i, NULL);
	text_printf(t, " %" PRIu64 ".%09" PRIu64 "\n", ns / 1000000000u, ns % 1000000000u);
	text_printf(t, "%s_count", f->name);
	text_labels(t, f, i, NULL);
	text_printf(t, " %" PRIu64 "\n", cumulative);
}

static void render_family(struct text *t, const struct metric_family *f)
{
	static const char *const types[] = { "counter", "gauge", "histogram" };

	text_printf(t, "# HELP %s ", f->name);
	text_escaped(t, f->help, false);
	text_printf(t, "\n# TYPE %s %s\n", f->name, types[f->type]);
	for (size_t i = 0; i < f->series; i++) {
		switch (f->type) {
		case METRIC_COUNTER: {
			uint64_t v = atomic_load_explicit(&f->v.counter[i].v, memory_order_relaxed);
			text_add(t, f->name, strlen(f->name));
			text_labels(t, f, i, NULL);
			if (f->decimals == 0)
				text_printf(t, " %" PRIu64 "\n", v);
			else
				text_value(t, (int64_t)v, f->decimals);
			break;
		}
		case METRIC_GAUGE:
			text_add(t, f->name, strlen(f->name));
			text_labels(t, f, i, NULL);
			text_value(t, atomic_load_explicit(&f->v.gauge[i].v, memory_order_relaxed),
				   f->decimals);
			break;
		case METRIC_HISTOGRAM:
			render_histogram(t, f, i);
			break;
		}
	}
}

int metrics_render(const struct metrics_registry *r, char **text, size_t *len)
{
	struct text t = { NULL, 0, 0, 0 };

	*text = NULL;
	*len = 0;
	for (size_t i = 0; i < r->count && !t.rc; i++)
		render_family(&t, r->families[i]);
	if (!t.rc && !t.buf)
		text_add(&t, "", 0);
	if (t.rc) {
		free(t.buf);
		return t.rc;
	}
	*text = t.buf;
	*len = t.len;
	return 0;
}
