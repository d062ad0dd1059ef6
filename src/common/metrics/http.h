/*
 * http.h - a daemon's metrics endpoint: GET (and HEAD) /metrics answered
 * with the registry's exposition (metrics.h) as
 * `text/plain; version=0.0.4; charset=utf-8`; 404 for any other path,
 * 405 (Allow: GET, HEAD) for another method on /metrics.
 *
 * HTTP is libmicrohttpd's (its parser, its limits): one internal polling
 * thread of its own serves every connection, so no loop of the daemon
 * ever waits on a client. It renders the text on that thread from the
 * registry's atomics and touches nothing else of the daemon. Bounded:
 * METRICS_HTTP_CONNECTIONS connections at once (METRICS_HTTP_PER_IP from
 * one address), each closed after METRICS_HTTP_IDLE_S without progress,
 * a request's headers within METRICS_HTTP_MEMORY bytes (else 431).
 */
#ifndef RTCMS_METRICS_HTTP_H
#define RTCMS_METRICS_HTTP_H

#include <stddef.h>

#include "metrics/metrics.h"

#define METRICS_HTTP_CONNECTIONS 8
#define METRICS_HTTP_PER_IP 4
#define METRICS_HTTP_IDLE_S 5
#define METRICS_HTTP_MEMORY (16u * 1024)

struct metrics_http;

/*
 * Listen on listen ("host:port", IPv4 or IPv6, numeric; port 0 picks a
 * free one) and serve r (which must outlive the endpoint) from a thread
 * of the endpoint's. bound gets the address bound (boundlen bytes).
 * Returns 0 and *out, or RTCMS_EINVAL (not an address) or RTCMS_EIO (it
 * cannot listen: the address is in use, or not this host's), with the
 * problem in err.
 */
int metrics_http_start(const char *listen, const struct metrics_registry *r,
		       struct metrics_http **out, char *bound, size_t boundlen, char *err,
		       size_t errlen);

/*
 * What each daemon does with its metrics_listen setting: nothing if it is
 * empty (*out NULL), else a registry of the common families and the n of
 * f (the endpoint keeps it), metrics_http_start() and the log line
 * "metrics: GET /metrics on ADDR" (the bound address: with port 0, the
 * only place it is told). Returns 0, or the error (logged).
 */
int metrics_http_serve(const char *listen, const struct metric_family *f, size_t n,
		       struct metrics_http **out);

/* Stop serving: close the socket and every connection, join the thread,
 * free h. NULL: nothing. */
void metrics_http_stop(struct metrics_http *h);

#endif
