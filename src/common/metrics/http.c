/*
 * http.c - the metrics endpoint over libmicrohttpd (http.h).
 *
 * The listening socket is made here (so a failure names its errno, and
 * port 0 is read back with getsockname) and handed to libmicrohttpd,
 * which runs one internal polling thread for it and every connection:
 * the request line, headers and their limits are its parser's. The
 * handler answers at its first call for a request (the headers are in;
 * a body is never read: nothing here takes one).
 */
#include "metrics/http.h"

#include <errno.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "log/log.h"
#include "net/addr.h"
#include "rtcms_error.h"

#define CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

struct metrics_http {
	struct MHD_Daemon *d;
	const struct metrics_registry *r;
	struct metrics_registry *own;  /* metrics_http_serve's, or NULL */
};

/* libmicrohttpd's own messages (a client that sent garbage, a connection
 * refused at the limit): debug lines, since any peer can cause them. */
static void on_log(void *cls, const char *fmt, va_list ap)
{
	char line[256];
	(void)cls;
	vsnprintf(line, sizeof(line), fmt, ap);
	size_t n = strlen(line);
	while (n && (line[n - 1] == '\n' || line[n - 1] == '\r'))
		line[--n] = '\0';
	log_debug("metrics: %s", line);
}

/* A short text answer with the given status (and Allow for 405). */
static enum MHD_Result answer_text(struct MHD_Connection *conn, unsigned status,
				   const char *body)
{
	struct MHD_Response *res = MHD_create_response_from_buffer(strlen(body), (void *)body,
								     MHD_RESPMEM_PERSISTENT);
	if (!res)
		return MHD_NO;
	MHD_add_response_header(res, MHD_HTTP_HEADER_CONTENT_TYPE, "text/plain; charset=utf-8");
	if (status == MHD_HTTP_METHOD_NOT_ALLOWED)
		MHD_add_response_header(res, MHD_HTTP_HEADER_ALLOW, "GET, HEAD");
	enum MHD_Result rc = MHD_queue_response(conn, status, res);
	MHD_destroy_response(res);
	return rc;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
				  const char *method, const char *version,
				  const char *upload_data, size_t *upload_size, void **req_cls)
{
	struct metrics_http *h = cls;
	(void)version;
	(void)upload_data;
	(void)upload_size;
	(void)req_cls;

	if (strcmp(url, "/metrics") != 0)
		return answer_text(conn, MHD_HTTP_NOT_FOUND, "not found: the metrics are at "
				   "/metrics\n");
	if (strcmp(method, MHD_HTTP_METHOD_GET) != 0 && strcmp(method, MHD_HTTP_METHOD_HEAD) != 0)
		return answer_text(conn, MHD_HTTP_METHOD_NOT_ALLOWED, "only GET and HEAD\n");
	char *text;
	size_t len;
	int rc = metrics_render(h->r, &text, &len);
	if (rc) {
		log_warn("metrics: cannot render the metrics: %s", rtcms_strerror(rc));
		return answer_text(conn, MHD_HTTP_INTERNAL_SERVER_ERROR, "cannot render\n");
	}
	struct MHD_Response *res = MHD_create_response_from_buffer(len, text,
								     MHD_RESPMEM_MUST_FREE);
	if (!res) {
		free(text);
		return MHD_NO;
	}
	MHD_add_response_header(res, MHD_HTTP_HEADER_CONTENT_TYPE, CONTENT_TYPE);
	enum MHD_Result q = MHD_queue_response(conn, MHD_HTTP_OK, res);
	MHD_destroy_response(res);
	return q;
}

/* A listening socket on ss (close-on-exec: programs an agent starts
 * never inherit it). 0 and *fd, or RTCMS_EIO with err. */
static int listen_on(const struct sockaddr_storage *ss, const char *listen_addr, int *fd,
		     char *err, size_t errlen)
{
	socklen_t len = ss->ss_family == AF_INET6 ? sizeof(struct sockaddr_in6)
						  : sizeof(struct sockaddr_in);
	int one = 1;
	int s = socket(ss->ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (s < 0) {
		snprintf(err, errlen, "metrics_listen %s: socket: %s", listen_addr,
			 strerror(errno));
		return RTCMS_EIO;
	}
	setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(s, (const struct sockaddr *)ss, len) != 0 || listen(s, 16) != 0) {
		snprintf(err, errlen, "metrics_listen %s: cannot listen: %s", listen_addr,
			 strerror(errno));
		close(s);
		return RTCMS_EIO;
	}
	*fd = s;
	return 0;
}

int metrics_http_start(const char *listen_addr, const struct metrics_registry *r,
		       struct metrics_http **out, char *bound, size_t boundlen, char *err,
		       size_t errlen)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	int fd = -1;

	*out = NULL;
	if (net_addr_parse(listen_addr, 1, &ss) != 0) {
		snprintf(err, errlen, "metrics_listen \"%s\" is not a numeric host:port",
			 listen_addr);
		return RTCMS_EINVAL;
	}
	int rc = listen_on(&ss, listen_addr, &fd, err, errlen);
	if (rc)
		return rc;
	getsockname(fd, (struct sockaddr *)&ss, &sl);
	net_addr_format((const struct sockaddr *)&ss, bound, boundlen);

	struct metrics_http *h = calloc(1, sizeof(*h));
	if (!h) {
		close(fd);
		snprintf(err, errlen, "out of memory");
		return RTCMS_ENOMEM;
	}
	h->r = r;
	unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_AUTO | MHD_USE_ERROR_LOG |
			 (ss.ss_family == AF_INET6 ? MHD_USE_IPv6 : 0);
	h->d = MHD_start_daemon(flags, 0, NULL, NULL, on_request, h,
				MHD_OPTION_EXTERNAL_LOGGER, on_log, NULL,
				MHD_OPTION_LISTEN_SOCKET, fd,
				MHD_OPTION_CONNECTION_LIMIT, (unsigned)METRICS_HTTP_CONNECTIONS,
				MHD_OPTION_PER_IP_CONNECTION_LIMIT, (unsigned)METRICS_HTTP_PER_IP,
				MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)METRICS_HTTP_IDLE_S,
				MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)METRICS_HTTP_MEMORY,
				MHD_OPTION_END);
	if (!h->d) {
		/* fd is left alone: libmicrohttpd may have closed it already (a
		 * second close could hit another thread's new descriptor); the
		 * daemon does not start anyway */
		free(h);
		snprintf(err, errlen, "metrics_listen %s: libmicrohttpd cannot start", bound);
		return RTCMS_EIO;
	}
	*out = h;
	return 0;
}

int metrics_http_serve(const char *listen_addr, const struct metric_family *f, size_t n,
		       struct metrics_http **out)
{
	char bound[80], err[256];

	*out = NULL;
	if (!listen_addr[0])
		return 0;
	struct metrics_registry *r = malloc(sizeof(*r));
	if (!r) {
		log_error("metrics: out of memory");
		return RTCMS_ENOMEM;
	}
	metrics_registry_init(r);
	int rc = metrics_registry_add(r, f, n, err, sizeof(err));
	if (rc == 0)
		rc = metrics_http_start(listen_addr, r, out, bound, sizeof(bound), err,
					sizeof(err));
	if (rc) {
		log_error("metrics: %s", err);
		free(r);
		return rc;
	}
	(*out)->own = r;
	log_info("metrics: GET /metrics on %s", bound);
	return 0;
}

void metrics_http_stop(struct metrics_http *h)
{
	if (!h)
		return;
	MHD_stop_daemon(h->d); /* closes the socket, joins its thread */
	free(h->own);
	free(h);
}
