/*
 * gate.c - pending connections on the loop, until their HELLO arrived.
 *
 * The pending list is in accept order, and every pending connection has
 * the same deadline after its accept, so the head is always both the
 * oldest (the one closed when the list is full) and the next to expire:
 * one timer armed for the head's deadline serves them all.
 */
#include "gate.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "log/log.h"
#include "net/addr.h"
#include "proto/msg.h"
#include "proto/session.h"
#include "rtcms_error.h"

/* Log lines about pending connections per second; the rest are counted
 * and reported in one line (a flood of idle peers must not flood the log). */
#define LOG_BURST 10

struct pending {
	uv_tcp_t tcp;
	struct gate *g;
	struct pending *prev, *next;   /* accept order */
	uint64_t deadline;             /* uv_now() ms */
	size_t have, want;             /* bytes of the HELLO frame */
	char peer[80];
	uint8_t buf[];                 /* g->hello_max bytes */
};

struct gate {
	uv_loop_t *loop;
	uv_tcp_t listener;
	uv_timer_t timer;
	struct gate_options opt;
	size_t hello_max;              /* largest HELLO frame */
	struct pending *head, *tail;
	int count;
	int handles;                   /* listener and timer, until closed */
	int stopping;
	uint64_t log_second;           /* the second the LOG_BURST counts in */
	int logged, unlogged;
};

/* Log a line about a pending connection, within the budget. */
static void __attribute__((format(printf, 2, 3))) gate_log(struct gate *g, const char *fmt, ...)
{
	uint64_t second = uv_now(g->loop) / 1000;
	if (second != g->log_second) {
		if (g->unlogged)
			log_warn("%d more connections closed before their handshake "
				 "(not logged one by one)", g->unlogged);
		g->log_second = second;
		g->logged = g->unlogged = 0;
	}
	if (g->logged >= LOG_BURST) {
		g->unlogged++;
		return;
	}
	g->logged++;
	char line[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	log_warn("%s", line);
}

/* Best effort: a plaintext ERROR frame to a peer that has no session yet.
 * The socket is fresh, so the few bytes fit its send buffer at once. */
static void send_refusal(const struct gate *g, int fd, int code, const char *text)
{
	uint8_t frame[1024];
	int n = proto_session_plain_error(g->opt.key, code, text ? text : rtcms_strerror(code),
					  frame, sizeof(frame));
	if (n > 0 && send(fd, frame, (size_t)n, MSG_NOSIGNAL | MSG_DONTWAIT) < 0)
		log_debug("cannot send a refusal: %s", strerror(errno));
}

static void on_deadline(uv_timer_t *t);

/* Arm the timer for the head's deadline (the earliest), or stop it. */
static void arm(struct gate *g)
{
	if (!g->head) {
		uv_timer_stop(&g->timer);
		return;
	}
	uint64_t now = uv_now(g->loop);
	uv_timer_start(&g->timer, on_deadline,
		       g->head->deadline > now ? g->head->deadline - now : 0, 0);
}

static void on_pending_closed(uv_handle_t *h)
{
	free(h->data);
}

/* Unlink p and close its handle (p is freed in the close callback). */
static void pending_drop(struct pending *p)
{
	struct gate *g = p->g;
	int was_head = g->head == p;
	if (p->prev)
		p->prev->next = p->next;
	else
		g->head = p->next;
	if (p->next)
		p->next->prev = p->prev;
	else
		g->tail = p->prev;
	g->count--;
	uv_close((uv_handle_t *)&p->tcp, on_pending_closed);
	if (was_head && !g->stopping)
		arm(g);
}

/* Refuse p with a plaintext ERROR (code, text) and drop it. */
static void pending_refuse(struct pending *p, int code, const char *text)
{
	uv_os_fd_t fd;
	if (uv_fileno((uv_handle_t *)&p->tcp, &fd) == 0)
		send_refusal(p->g, fd, code, text);
	pending_drop(p);
}

static void on_deadline(uv_timer_t *t)
{
	struct gate *g = t->data;
	uint64_t now = uv_now(g->loop);
	while (g->head && g->head->deadline <= now) {
		struct pending *p = g->head;
		gate_log(g, "[peer %s] no complete frame for %d ms (handshake); closing",
			 p->peer, g->opt.handshake_ms);
		pending_drop(p);
	}
	arm(g);
}

/* The whole HELLO is in p->buf: hand the connection on, or refuse it. */
static void pending_hello(struct pending *p)
{
	struct gate *g = p->g;
	uv_os_fd_t ufd;
	int fd = -1;
	uv_read_stop((uv_stream_t *)&p->tcp);
	if (uv_fileno((uv_handle_t *)&p->tcp, &ufd) == 0)
		fd = fcntl(ufd, F_DUPFD_CLOEXEC, 3);
	if (fd < 0) {
		log_error("[peer %s] cannot take over the connection: %s", p->peer,
			  strerror(errno));
		pending_drop(p);
		return;
	}
	/* p stays allocated until its close callback: buf is valid below */
	pending_drop(p);
	int rc = g->opt.on_hello(g->opt.ctx, fd, p->peer, p->buf, p->have);
	if (rc) {
		send_refusal(g, fd, rc, NULL);
		close(fd);
	}
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
	struct pending *p = h->data;
	(void)suggested;
	/* at most the rest of the HELLO: what follows is the server's */
	buf->base = (char *)p->buf + p->have;
	buf->len = p->want - p->have;
}

/* n more bytes of p's first frame are in p->buf: check the header once it
 * is whole, hand the connection on once the HELLO is. True if that was the
 * end of p (handed on or refused), false if it waits for more. */
static bool pending_more(struct pending *p, size_t n)
{
	p->have += n;
	if (p->have < p->want)
		return false;
	if (p->want == PROTO_HEADER_SIZE) {
		struct proto_header hdr;
		int rc = proto_header_decode(p->buf, p->have, &hdr);
		if (rc < 0) {
			gate_log(p->g, "[peer %s] bad frame header: %s; closing", p->peer,
				 rtcms_strerror(rc));
			pending_refuse(p, rc, NULL);
			return true;
		}
		if (hdr.type != PROTO_HELLO) {
			gate_log(p->g, "[peer %s] handshake refused: %s before HELLO; closing",
				 p->peer, proto_type_name(hdr.type));
			pending_refuse(p, RTCMS_EPROTO, "the handshake starts with HELLO");
			return true;
		}
		/* the header's check caps a HELLO's length: it fits buf */
		p->want = proto_frame_size(hdr.length);
		if (p->have < p->want)
			return false;
	}
	pending_hello(p);
	return true;
}

/* Take what already arrived for p, without waiting (the loop may not have
 * read it yet: a burst of accepts comes first). True if that was the end
 * of p. Before p is closed to make room: a peer whose HELLO is here is served. */
static bool pending_drain(struct pending *p)
{
	uv_os_fd_t fd;
	if (uv_fileno((uv_handle_t *)&p->tcp, &fd) != 0)
		return false;
	for (;;) {
		ssize_t n = recv(fd, p->buf + p->have, p->want - p->have, MSG_DONTWAIT);
		if (n <= 0)
			return false;
		if (pending_more(p, (size_t)n))
			return true;
	}
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
	struct pending *p = s->data;
	(void)buf;
	if (nread < 0) {
		log_debug("[peer %s] gone before its handshake", p->peer);
		pending_drop(p);
		return;
	}
	pending_more(p, (size_t)nread);
}

static void on_connection(uv_stream_t *ls, int status)
{
	struct gate *g = ls->data;
	if (status < 0) {
		log_warn("accept failed: %s", uv_strerror(status));
		return;
	}
	struct pending *p = calloc(1, sizeof(*p) + g->hello_max);
	if (!p) {
		log_error("out of memory accepting a connection");
		return;
	}
	p->g = g;
	p->want = PROTO_HEADER_SIZE;
	uv_tcp_init(g->loop, &p->tcp);
	p->tcp.data = p;
	if (uv_accept(ls, (uv_stream_t *)&p->tcp) != 0) {
		uv_close((uv_handle_t *)&p->tcp, on_pending_closed);
		return;
	}
	struct sockaddr_storage ss;
	int sl = sizeof(ss);
	if (uv_tcp_getpeername(&p->tcp, (struct sockaddr *)&ss, &sl) == 0)
		net_addr_format((struct sockaddr *)&ss, p->peer, sizeof(p->peer));
	else
		snprintf(p->peer, sizeof(p->peer), "unknown");
	uv_tcp_nodelay(&p->tcp, 1);
	if (g->count >= g->opt.max_pending && !pending_drain(g->head)) {
		gate_log(g, "[peer %s] closed: %d connections without a HELLO "
			 "(max_pending), this one the oldest", g->head->peer, g->count);
		pending_drop(g->head);
	}
	p->deadline = uv_now(g->loop) + (uint64_t)g->opt.handshake_ms;
	p->prev = g->tail;
	if (g->tail)
		g->tail->next = p;
	else
		g->head = p;
	g->tail = p;
	g->count++;
	if (g->head == p)
		arm(g);
	if (uv_read_start((uv_stream_t *)&p->tcp, on_alloc, on_read) != 0)
		pending_drop(p);
}

static void on_gate_closed(uv_handle_t *h)
{
	struct gate *g = h->data;
	if (--g->handles == 0)
		free(g);
}

int gate_start(uv_loop_t *loop, const struct gate_options *opt, struct gate **out,
	       char *bound, size_t cap)
{
	struct sockaddr_storage ss;
	int rc = net_addr_parse(opt->listen, 1, &ss);
	if (rc)
		return rc;
	struct gate *g = calloc(1, sizeof(*g));
	if (!g)
		return RTCMS_ENOMEM;
	g->loop = loop;
	g->opt = *opt;
	if (g->opt.handshake_ms <= 0)
		g->opt.handshake_ms = GATE_HANDSHAKE_MS;
	if (g->opt.max_pending <= 0)
		g->opt.max_pending = GATE_MAX_PENDING;
	g->hello_max = proto_frame_size(proto_type_max_payload(PROTO_HELLO));
	uv_tcp_init(loop, &g->listener);
	uv_timer_init(loop, &g->timer);
	g->listener.data = g->timer.data = g;
	g->handles = 2;
	/* a deep backlog: peers reconnecting in a burst must not crowd a
	 * client's SYN out before the loop accepts (and sorts) them */
	rc = uv_tcp_bind(&g->listener, (struct sockaddr *)&ss, 0);
	if (rc == 0)
		rc = uv_listen((uv_stream_t *)&g->listener, SOMAXCONN, on_connection);
	if (rc != 0) {
		log_error("cannot listen on %s: %s", opt->listen, uv_strerror(rc));
		g->stopping = 1;
		uv_close((uv_handle_t *)&g->listener, on_gate_closed);
		uv_close((uv_handle_t *)&g->timer, on_gate_closed);
		uv_run(loop, UV_RUN_NOWAIT);
		return RTCMS_EIO;
	}
	int sl = sizeof(ss);
	uv_tcp_getsockname(&g->listener, (struct sockaddr *)&ss, &sl);
	net_addr_format((struct sockaddr *)&ss, bound, cap);
	*out = g;
	return 0;
}

void gate_stop(struct gate *g)
{
	if (!g || g->stopping)
		return;
	g->stopping = 1;
	while (g->head)
		pending_drop(g->head);
	uv_close((uv_handle_t *)&g->listener, on_gate_closed);
	uv_close((uv_handle_t *)&g->timer, on_gate_closed);
}
