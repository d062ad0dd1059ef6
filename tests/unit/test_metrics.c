/* test_metrics.c - the metrics registry, its Prometheus text (counters,
 * gauges, cumulative histogram buckets with +Inf, _sum and _count, escaped
 * label values and help) and the /metrics endpoint over loopback (the
 * answers to GET, HEAD, other methods and paths, and to garbage). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "agent/stats.h"
#include "manager/stats.h"
#include "metrics/http.h"
#include "metrics/metrics.h"
#include "net/addr.h"
#include "rtcms_error.h"
#include "store/stats.h"

static const double bounds[] = { 0.001, 0.01, 0.1, 1 };

/* The exposition of families f (n of them) alone, as a string (freed by
 * the caller). */
static char *render(const struct metric_family *f, size_t n)
{
	struct metrics_registry r;
	char why[256], *text;
	size_t len;

	memset(&r, 0, sizeof(r));
	assert_int_equal(metrics_registry_add(&r, f, n, why, sizeof(why)), 0);
	assert_int_equal(metrics_render(&r, &text, &len), 0);
	assert_int_equal(strlen(text), len);
	return text;
}

static void test_counter_and_gauge(void **state)
{
	(void)state;
	static struct metric_counter puts[3];
	static struct metric_gauge g, ms;
	static const char *const outcomes[] = { "ok", "refused", "failed" };
	const struct metric_family f[] = {
		{ "rtcms_test_puts_total", "PUTs by outcome.", METRIC_COUNTER, { "outcome", NULL },
		  outcomes, 3, 0, { .counter = puts } },
		{ "rtcms_test_level", "A gauge.", METRIC_GAUGE, { NULL, NULL }, NULL, 1, 0,
		  { .gauge = &g } },
		{ "rtcms_test_seconds", "Milliseconds written as seconds.", METRIC_GAUGE,
		  { NULL, NULL }, NULL, 1, 3, { .gauge = &ms } },
	};
	metric_counter_inc(&puts[0]);
	metric_counter_add(&puts[0], 41);
	metric_counter_inc(&puts[2]);
	metric_gauge_set(&g, 5);
	metric_gauge_add(&g, -7);
	metric_gauge_set(&ms, 1700000000123);
	char *t = render(f, 3);
	assert_string_equal(t,
		"# HELP rtcms_test_puts_total PUTs by outcome.\n"
		"# TYPE rtcms_test_puts_total counter\n"
		"rtcms_test_puts_total{outcome=\"ok\"} 42\n"
		"rtcms_test_puts_total{outcome=\"refused\"} 0\n"
		"rtcms_test_puts_total{outcome=\"failed\"} 1\n"
		"# HELP rtcms_test_level A gauge.\n"
		"# TYPE rtcms_test_level gauge\n"
		"rtcms_test_level -2\n"
		"# HELP rtcms_test_seconds Milliseconds written as seconds.\n"
		"# TYPE rtcms_test_seconds gauge\n"
		"rtcms_test_seconds 1700000000.123\n");
	free(t);
	metric_gauge_set(&ms, -1500);
	t = render(&f[2], 1);
	assert_non_null(strstr(t, "\nrtcms_test_seconds -1.500\n"));
	free(t);
}

static void test_histogram(void **state)
{
	(void)state;
	static struct metric_histogram h[2] = { METRIC_HISTOGRAM(bounds), METRIC_HISTOGRAM(bounds) };
	static const char *const kinds[] = { "full", "delta" };
	const struct metric_family f = {
		"rtcms_test_duration_seconds", "Durations.", METRIC_HISTOGRAM, { "kind", NULL },
		kinds, 2, 0, { .histogram = h }
	};
	metric_histogram_observe_ns(&h[0], 500000);      /* 0.0005 s: le 0.001 */
	metric_histogram_observe_ns(&h[0], 1000000);     /* exactly 0.001: le 0.001 */
	metric_histogram_observe_ns(&h[0], 50000000);    /* 0.05: le 0.1 */
	metric_histogram_observe_ns(&h[0], 2500000000u); /* 2.5: only +Inf */
	char *t = render(&f, 1);
	assert_string_equal(t,
		"# HELP rtcms_test_duration_seconds Durations.\n"
		"# TYPE rtcms_test_duration_seconds histogram\n"
		"rtcms_test_duration_seconds_bucket{kind=\"full\",le=\"0.001\"} 2\n"
		"rtcms_test_duration_seconds_bucket{kind=\"full\",le=\"0.01\"} 2\n"
		"rtcms_test_duration_seconds_bucket{kind=\"full\",le=\"0.1\"} 3\n"
		"rtcms_test_duration_seconds_bucket{kind=\"full\",le=\"1\"} 3\n"
		"rtcms_test_duration_seconds_bucket{kind=\"full\",le=\"+Inf\"} 4\n"
		"rtcms_test_duration_seconds_sum{kind=\"full\"} 2.551500000\n"
		"rtcms_test_duration_seconds_count{kind=\"full\"} 4\n"
		"rtcms_test_duration_seconds_bucket{kind=\"delta\",le=\"0.001\"} 0\n"
		"rtcms_test_duration_seconds_bucket{kind=\"delta\",le=\"0.01\"} 0\n"
		"rtcms_test_duration_seconds_bucket{kind=\"delta\",le=\"0.1\"} 0\n"
		"rtcms_test_duration_seconds_bucket{kind=\"delta\",le=\"1\"} 0\n"
		"rtcms_test_duration_seconds_bucket{kind=\"delta\",le=\"+Inf\"} 0\n"
		"rtcms_test_duration_seconds_sum{kind=\"delta\"} 0.000000000\n"
		"rtcms_test_duration_seconds_count{kind=\"delta\"} 0\n");
	free(t);
}

static void test_unlabelled_histogram(void **state)
{
	(void)state;
	static struct metric_histogram h = METRIC_HISTOGRAM(bounds);
	const struct metric_family f = { "rtcms_test_rtt_seconds", "RTT.", METRIC_HISTOGRAM,
					 { NULL, NULL }, NULL, 1, 0, { .histogram = &h } };
	metric_histogram_observe_ns(&h, 3000000);
	char *t = render(&f, 1);
	assert_non_null(strstr(t, "\nrtcms_test_rtt_seconds_bucket{le=\"0.001\"} 0\n"));
	assert_non_null(strstr(t, "\nrtcms_test_rtt_seconds_bucket{le=\"0.01\"} 1\n"));
	assert_non_null(strstr(t, "\nrtcms_test_rtt_seconds_bucket{le=\"+Inf\"} 1\n"));
	assert_non_null(strstr(t, "\nrtcms_test_rtt_seconds_sum 0.003000000\n"));
	assert_non_null(strstr(t, "\nrtcms_test_rtt_seconds_count 1\n"));
	free(t);
}

static void test_escaping(void **state)
{
	(void)state;
	static struct metric_gauge g[1];
	static const char *const values[] = { "/srv/a\"b\\c\nd", "0" };
	const struct metric_family f = {
		"rtcms_test_mirror_online", "Help with a back\\slash\nand a newline \"quoted\".",
		METRIC_GAUGE, { "path", "mirror" }, values, 1, 0, { .gauge = g }
	};
	metric_gauge_set(&g[0], 1);
	char *t = render(&f, 1);
	assert_string_equal(t,
		"# HELP rtcms_test_mirror_online Help with a back\\\\slash\\nand a newline "
		"\"quoted\".\n"
		"# TYPE rtcms_test_mirror_online gauge\n"
		"rtcms_test_mirror_online{path=\"/srv/a\\\"b\\\\c\\nd\",mirror=\"0\"} 1\n");
	free(t);
}

static void test_registry_refuses(void **state)
{
	(void)state;
	static struct metric_counter c;
	static struct metric_histogram h = METRIC_HISTOGRAM(bounds);
	static const double down[] = { 1, 0.5 };
	static struct metric_histogram hd = METRIC_HISTOGRAM(down);
	static const char *const one[] = { "x" };
	struct metrics_registry r;
	char why[256];
	const struct metric_family bad[] = {
		{ "9starts_with_digit", "h", METRIC_COUNTER, { NULL, NULL }, NULL, 1, 0, { .counter = &c } },
		{ "has-dash", "h", METRIC_COUNTER, { NULL, NULL }, NULL, 1, 0, { .counter = &c } },
		{ "ok_name", "h", METRIC_COUNTER, { "bad:label", NULL }, one, 1, 0, { .counter = &c } },
		{ "ok_name", "h", METRIC_COUNTER, { "__reserved", NULL }, one, 1, 0, { .counter = &c } },
		{ "ok_name", "h", METRIC_HISTOGRAM, { "le", NULL }, one, 1, 0, { .histogram = &h } },
		{ "ok_name", "h", METRIC_HISTOGRAM, { NULL, NULL }, NULL, 1, 0, { .histogram = &hd } },
		{ "ok_name", "h", METRIC_COUNTER, { "outcome", NULL }, NULL, 1, 0, { .counter = &c } },
		{ "ok_name", "h", METRIC_COUNTER, { NULL, NULL }, NULL, 2, 0, { .counter = &c } },
		{ "ok_name", NULL, METRIC_COUNTER, { NULL, NULL }, NULL, 1, 0, { .counter = &c } },
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		memset(&r, 0, sizeof(r));
		why[0] = '\0';
		assert_int_equal(metrics_registry_add(&r, &bad[i], 1, why, sizeof(why)),
				 RTCMS_EINVAL);
		assert_int_equal(r.count, 0);
		assert_non_null(strstr(why, "metric"));
	}
	/* a name twice: in one call, and in a later one */
	const struct metric_family twice[] = {
		{ "rtcms_ok", "h", METRIC_COUNTER, { NULL, NULL }, NULL, 1, 0, { .counter = &c } },
		{ "rtcms_ok", "h", METRIC_COUNTER, { NULL, NULL }, NULL, 1, 0, { .counter = &c } },
	};
	memset(&r, 0, sizeof(r));
	assert_int_equal(metrics_registry_add(&r, twice, 2, why, sizeof(why)), RTCMS_EINVAL);
	assert_non_null(strstr(why, "rtcms_ok: added twice"));
	assert_int_equal(metrics_registry_add(&r, twice, 1, why, sizeof(why)), 0);
	assert_int_equal(metrics_registry_add(&r, twice, 1, why, sizeof(why)), RTCMS_EINVAL);
	/* full */
	static char buf[METRICS_FAMILIES_MAX + 1][16];
	static struct metric_family many[METRICS_FAMILIES_MAX + 1];
	for (size_t i = 0; i <= METRICS_FAMILIES_MAX; i++) {
		snprintf(buf[i], sizeof(buf[i]), "rtcms_m%zu", i);
		many[i] = twice[0];
		many[i].name = buf[i];
	}
	memset(&r, 0, sizeof(r));
	assert_int_equal(metrics_registry_add(&r, many, METRICS_FAMILIES_MAX, why, sizeof(why)), 0);
	assert_int_equal(metrics_registry_add(&r, &many[METRICS_FAMILIES_MAX], 1, why, sizeof(why)),
			 RTCMS_ENOSPC);
}

static void test_common_families(void **state)
{
	(void)state;
	struct metrics_registry r;
	char *t;
	size_t len;

	metrics_registry_init(&r);
	assert_int_equal(metrics_render(&r, &t, &len), 0);
	assert_non_null(strstr(t, "# TYPE rtcms_build_info gauge\nrtcms_build_info{version=\""));
	assert_non_null(strstr(t, "\",revision=\""));
	assert_non_null(strstr(t, "\"} 1\n"));
	const char *st = strstr(t, "\nprocess_start_time_seconds ");
	assert_non_null(st);
	double v = strtod(st + strlen("\nprocess_start_time_seconds "), NULL);
	assert_true(v > 1.5e9); /* after 2017, so from the clock, not zero */
	free(t);
}

/* Each daemon's families pass the registry's checks, with the common
 * ones, and render (the store's mirror gauge: a series per mirror). */
static void test_daemon_families(void **state)
{
	(void)state;
	static const char *const paths[] = { "/srv/a", "/srv/b" };
	const struct metric_family *f[3];
	size_t n[3];
	char why[256], *t;
	size_t len;

	f[0] = store_stats_families(paths, 2, &n[0]);
	f[1] = manager_stats_families(&n[1]);
	f[2] = agent_stats_families(&n[2]);
	for (int d = 0; d < 3; d++) {
		struct metrics_registry r;
		metrics_registry_init(&r);
		if (metrics_registry_add(&r, f[d], n[d], why, sizeof(why)) != 0)
			fail_msg("daemon %d: %s", d, why);
		assert_int_equal(metrics_render(&r, &t, &len), 0);
		assert_non_null(strstr(t, "\nrtcms_build_info{"));
		if (d == 0) {
			assert_non_null(strstr(t, "\nrtcms_store_mirror_online{mirror=\"0\","
					       "path=\"/srv/a\"} "));
			assert_non_null(strstr(t, "\nrtcms_store_mirror_online{mirror=\"1\","
					       "path=\"/srv/b\"} "));
			assert_null(strstr(t, "mirror=\"2\""));
		}
		free(t);
	}
}

static void test_listen_check(void **state)
{
	(void)state;
	char why[256];
	assert_int_equal(metrics_listen_check("", why, sizeof(why)), 0);
	assert_int_equal(metrics_listen_check("127.0.0.1:0", why, sizeof(why)), 0);
	assert_int_equal(metrics_listen_check("[::1]:9100", why, sizeof(why)), 0);
	assert_int_equal(metrics_listen_check("localhost:9100", why, sizeof(why)), RTCMS_ECONFIG);
	assert_non_null(strstr(why, "localhost:9100"));
	assert_int_equal(metrics_listen_check("127.0.0.1", why, sizeof(why)), RTCMS_ECONFIG);
}

/* ---- many writers, one reader ----------------------------------------------- */

static struct metric_counter busy_counter;
static struct metric_histogram busy_hist = METRIC_HISTOGRAM(bounds);

static void *writer(void *arg)
{
	(void)arg;
	for (int i = 0; i < 20000; i++) {
		metric_counter_inc(&busy_counter);
		metric_histogram_observe_ns(&busy_hist, (uint64_t)(i % 2000) * 1000000);
	}
	return NULL;
}

/* The value of the sample line that starts with name in text. */
static uint64_t value_of(const char *text, const char *name)
{
	const char *p = strstr(text, name);
	while (p && p != text && p[-1] != '\n')
		p = strstr(p + 1, name);
	assert_non_null(p);
	return strtoull(p + strlen(name), NULL, 10);
}

static void test_concurrent_updates(void **state)
{
	(void)state;
	const struct metric_family f[] = {
		{ "rtcms_test_busy_total", "h", METRIC_COUNTER, { NULL, NULL }, NULL, 1, 0,
		  { .counter = &busy_counter } },
		{ "rtcms_test_busy_seconds", "h", METRIC_HISTOGRAM, { NULL, NULL }, NULL, 1, 0,
		  { .histogram = &busy_hist } },
	};
	struct metrics_registry r;
	char why[256], *t;
	size_t len;
	pthread_t th[4];

	memset(&r, 0, sizeof(r));
	assert_int_equal(metrics_registry_add(&r, f, 2, why, sizeof(why)), 0);
	for (int i = 0; i < 4; i++)
		assert_int_equal(pthread_create(&th[i], NULL, writer, NULL), 0);
	for (int k = 0; k < 20; k++) { /* scrapes while they write: +Inf == _count */
		assert_int_equal(metrics_render(&r, &t, &len), 0);
		assert_int_equal(value_of(t, "rtcms_test_busy_seconds_bucket{le=\"+Inf\"} "),
				 value_of(t, "rtcms_test_busy_seconds_count "));
		free(t);
	}
	for (int i = 0; i < 4; i++)
		pthread_join(th[i], NULL);
	assert_int_equal(metrics_render(&r, &t, &len), 0);
	assert_int_equal(value_of(t, "rtcms_test_busy_total "), 80000);
	assert_int_equal(value_of(t, "rtcms_test_busy_seconds_count "), 80000);
	/* 0..1999 ms, each 40 times: 1 + 10 + 100 + 1000 + 1000 */
	assert_int_equal(value_of(t, "rtcms_test_busy_seconds_bucket{le=\"0.001\"} "), 2 * 40);
	assert_int_equal(value_of(t, "rtcms_test_busy_seconds_bucket{le=\"1\"} "), 1001 * 40);
	free(t);
}

/* ---- the endpoint ------------------------------------------------------------ */

static struct metrics_registry http_reg;
static struct metrics_http *http;
static char http_addr[80];

static int http_setup(void **state)
{
	char err[256];
	(void)state;
	metrics_registry_init(&http_reg);
	int rc = metrics_http_start("127.0.0.1:0", &http_reg, &http, http_addr,
				    sizeof(http_addr), err, sizeof(err));
	if (rc)
		fprintf(stderr, "metrics_http_start: %s\n", err);
	return rc;
}

static int http_teardown(void **state)
{
	(void)state;
	metrics_http_stop(http);
	http = NULL;
	return 0;
}

static int http_connect(void)
{
	struct sockaddr_storage ss;
	assert_int_equal(net_addr_parse(http_addr, 0, &ss), 0);
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	assert_true(fd >= 0);
	struct timeval tv = { 30, 0 }; /* a bound on a hang, not a threshold */
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	assert_int_equal(connect(fd, (struct sockaddr *)&ss, sizeof(struct sockaddr_in)), 0);
	return fd;
}

/* Send req (len bytes) on a new connection and read until the server
 * closes it: the whole answer (malloc'd, NUL-terminated). */
static char *exchange(const char *req, size_t len)
{
	int fd = http_connect();
	size_t off = 0, cap = 1 << 16;
	char *buf = malloc(cap + 1);
	assert_non_null(buf);
	while (off < len) {
		ssize_t n = send(fd, req + off, len - off, MSG_NOSIGNAL);
		if (n <= 0)
			break; /* the server may answer and close before it read all */
		off += (size_t)n;
	}
	off = 0;
	for (;;) {
		if (off == cap) {
			cap *= 2;
			buf = realloc(buf, cap + 1);
			assert_non_null(buf);
		}
		ssize_t n = recv(fd, buf + off, cap - off, 0);
		if (n <= 0)
			break;
		off += (size_t)n;
	}
	buf[off] = '\0';
	close(fd);
	return buf;
}

static char *request(const char *method, const char *path)
{
	char req[256];
	int n = snprintf(req, sizeof(req), "%s %s HTTP/1.1\r\nHost: test\r\nConnection: close\r\n"
			 "\r\n", method, path);
	return exchange(req, (size_t)n);
}

static void assert_serves(void)
{
	char *a = request("GET", "/metrics");
	assert_true(strncmp(a, "HTTP/1.1 200 ", 13) == 0);
	assert_non_null(strstr(a, "\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\n"));
	const char *body = strstr(a, "\r\n\r\n");
	assert_non_null(body);
	assert_non_null(strstr(body, "\nrtcms_build_info{version=\""));
	free(a);
}

static void test_http_get_head(void **state)
{
	(void)state;
	assert_serves();
	char *a = request("HEAD", "/metrics");
	assert_true(strncmp(a, "HTTP/1.1 200 ", 13) == 0);
	assert_non_null(strstr(a, "version=0.0.4"));
	const char *end = strstr(a, "\r\n\r\n");
	assert_non_null(end);
	assert_string_equal(end, "\r\n\r\n"); /* no body */
	free(a);
}

static void test_http_other_paths_and_methods(void **state)
{
	(void)state;
	char *a = request("GET", "/");
	assert_true(strncmp(a, "HTTP/1.1 404 ", 13) == 0);
	free(a);
	a = request("GET", "/metricsx");
	assert_true(strncmp(a, "HTTP/1.1 404 ", 13) == 0);
	free(a);
	a = request("POST", "/metrics");
	assert_true(strncmp(a, "HTTP/1.1 405 ", 13) == 0);
	assert_non_null(strstr(a, "\r\nAllow: GET, HEAD\r\n"));
	free(a);
	a = request("DELETE", "/metrics");
	assert_true(strncmp(a, "HTTP/1.1 405 ", 13) == 0);
	free(a);
	/* a POST with a body: answered without reading it */
	const char post[] = "POST /metrics HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\nhello";
	a = exchange(post, sizeof(post) - 1);
	assert_true(strncmp(a, "HTTP/1.1 405 ", 13) == 0);
	free(a);
	assert_serves();
}

static void test_http_garbage(void **state)
{
	(void)state;
	const char garbage[] = "\x01\x02 not http at all\r\n\r\n";
	char *a = exchange(garbage, sizeof(garbage) - 1);
	/* refused: an error status or a plain close, never a 200 */
	assert_true(a[0] == '\0' || strncmp(a, "HTTP/1.1 4", 10) == 0);
	free(a);
	/* headers beyond the connection's memory */
	size_t big = 64 * 1024;
	char *req = malloc(big + 128);
	assert_non_null(req);
	int n = snprintf(req, big + 128, "GET /metrics HTTP/1.1\r\nHost: t\r\nX-Big: ");
	memset(req + n, 'a', big);
	memcpy(req + n + big, "\r\n\r\n", 4);
	a = exchange(req, (size_t)n + big + 4);
	assert_true(a[0] == '\0' || strncmp(a, "HTTP/1.1 4", 10) == 0);
	assert_null(strstr(a, "rtcms_build_info"));
	free(a);
	free(req);
	/* an idle connection held open does not stop the others */
	int idle = http_connect();
	assert_serves();
	close(idle);
	assert_serves();
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_counter_and_gauge),
		cmocka_unit_test(test_histogram),
		cmocka_unit_test(test_unlabelled_histogram),
		cmocka_unit_test(test_escaping),
		cmocka_unit_test(test_registry_refuses),
		cmocka_unit_test(test_common_families),
		cmocka_unit_test(test_daemon_families),
		cmocka_unit_test(test_listen_check),
		cmocka_unit_test(test_concurrent_updates),
		cmocka_unit_test_setup_teardown(test_http_get_head, http_setup, http_teardown),
		cmocka_unit_test_setup_teardown(test_http_other_paths_and_methods, http_setup,
						http_teardown),
		cmocka_unit_test_setup_teardown(test_http_garbage, http_setup, http_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
