/*
 * rpc_server.c - the gate (gate.h) on the loop, plus one thread per
 * connection that sent its HELLO: connections still in their handshake
 * hold no thread, and at most max_connections threads exist.
 */
#include "rpc_server.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "gate.h"
#include "log/log.h"
#include "net/addr.h"
#include "rtcms_error.h"

struct rpc_conn {
	struct rpc_server *srv;
	int fd;
	char peer[80];
	/* where a PROCS report is decoded: this connection's, on the heap
	 * (PROTO_PROCS_MAX entries are too many for a thread's stack) */
	struct proto_agent_proc *procs;
	struct rpc_conn *next;
	size_t hello_len;
	uint8_t hello[];               /* the peer's HELLO frame (gate.h) */
};

/* Refused handshakes, logged once per peer (host and claimed name) every
 * REFUSED_LOG_MS: a peer with the wrong key retries twice a second. */
#define REFUSED_PEERS 16
#define REFUSED_LOG_MS 30000
struct refused_peer {
	char key[80 + PROTO_ID_MAX + 2]; /* "host name" */
	uint64_t logged_ms;            /* monotonic ms of the last line */
	uint64_t unlogged;             /* refusals since that line */
};

struct rpc_server {
	struct gate *gate;
	struct rpc_server_options opt;
	uv_mutex_t lock;
	uv_cond_t idle;                /* signalled when the last thread ends */
	struct rpc_conn *conns;
	int active;                    /* connection threads */
	int stopping;
	struct refused_peer refused[REFUSED_PEERS]; /* under lock */
	size_t refused_next;
};

/* The name a HELLO claims (unauthenticated: its tag did not check, but
 * it names the node for the operator), into out; "" if none. */
static void hello_claimed_name(const uint8_t *hello, size_t len, char *out, size_t outlen)
{
	struct proto_header hdr;
	union proto_msg m;
	out[0] = '\0';
	if (proto_header_decode(hello, len, &hdr) < 0 || hdr.type != PROTO_HELLO ||
	    len < PROTO_HEADER_SIZE + (size_t)hdr.length)
		return;
	if (proto_msg_decode(PROTO_HELLO, hello + PROTO_HEADER_SIZE, hdr.length, &m) < 0)
		return;
	for (const char *c = m.hello.name; *c; c++)
		if (*c < 0x21 || *c > 0x7e)
			return; /* not a name to print */
	snprintf(out, outlen, "%s", m.hello.name);
}

/* A refused handshake: logged with the peer's address and the name its
 * HELLO claims, at once, then once per REFUSED_LOG_MS per host and name
 * with the count of those not logged. */
static void log_refused(struct rpc_server *s, const struct rpc_conn *rc, int r)
{
	char name[PROTO_ID_MAX + 1], key[80 + PROTO_ID_MAX + 2], host[80];
	uint64_t now = uv_hrtime() / 1000000, unlogged = 0;
	bool say = true;

	hello_claimed_name(rc->hello, rc->hello_len, name, sizeof(name));
	snprintf(host, sizeof(host), "%s", rc->peer);
	char *colon = strrchr(host, ':'); /* the source port changes at every retry */
	if (colon)
		*colon = '\0';
	snprintf(key, sizeof(key), "%s %s", host, name);
	uv_mutex_lock(&s->lock);
	struct refused_peer *p = NULL;
	for (size_t i = 0; i < REFUSED_PEERS; i++)
		if (strcmp(s->refused[i].key, key) == 0)
			p = &s->refused[i];
	if (!p) {
		p = &s->refused[s->refused_next];
		s->refused_next = (s->refused_next + 1) % REFUSED_PEERS;
		snprintf(p->key, sizeof(p->key), "%s", key);
		p->logged_ms = now;
		p->unlogged = 0;
	} else if (now - p->logged_ms < REFUSED_LOG_MS) {
		p->unlogged++;
		say = false;
	} else {
		unlogged = p->unlogged;
		p->logged_ms = now;
		p->unlogged = 0;
	}
	uv_mutex_unlock(&s->lock);
	if (!say)
		return;
	char more[64] = "";
	if (unlogged)
		snprintf(more, sizeof(more), "; %" PRIu64 " more since", unlogged);
	log_warn("[peer %s%s%s%s] handshake refused: %s%s%s", rc->peer, name[0] ? " \"" : "",
		 name, name[0] ? "\"" : "", r == RTCMS_EAUTH ? "wrong cluster key (its HELLO "
		 "does not check under this one's)" : rtcms_strerror(r), more,
		 " (said once every 30 s per peer)");
}

/* Connection threads are detached (the loop never waits to join one): each
 * unlinks and frees itself, and the last one wakes rpc_server_stop. */
static void *conn_thread(void *arg)
{
	struct rpc_conn *rc = arg;
	struct rpc_server *s = rc->srv;
	struct net_client *c = NULL;
	struct proto_header hdr;
	union proto_msg msg;

	int r = net_client_accept_hello(rc->fd, rc->hello, rc->hello_len, s->opt.key,
					s->opt.role, s->opt.name, s->opt.io_timeout_ms, &c);
	if (r) {
		if (r == RTCMS_EAUTH || r == RTCMS_EPROTO)
			log_refused(s, rc, r);
		goto out;
	}
	for (;;) {
		net_client_set_timeout(c, s->opt.idle_timeout_ms);
		msg.procs.procs = rc->procs; /* where a PROCS report is decoded */
		r = net_client_recv(c, &hdr, &msg);
		if (r == RTCMS_ECONN || r == RTCMS_ETIMEDOUT)
			break;
		if (r) {
			log_warn("[peer %s %s] bad frame: %s; closing", rc->peer,
				 net_client_peer(c), rtcms_strerror(r));
			if (r != RTCMS_EAUTH && r != RTCMS_EREPLAY)
				net_client_reply_error(c, hdr.request, r, 0, NULL);
			break;
		}
		if (hdr.flags & PROTO_F_REPLY) {
			log_warn("[peer %s %s] unexpected %s reply; closing", rc->peer,
				 net_client_peer(c), proto_type_name(hdr.type));
			net_client_reply_error(c, hdr.request, RTCMS_EPROTO, 0,
					       "a reply where a request was expected");
			break;
		}
		net_client_set_timeout(c, s->opt.io_timeout_ms);
		if (s->opt.handler(s->opt.ctx, c, rc->peer, &hdr, &msg) == RPC_CLOSE)
			break;
	}
out:
	uv_mutex_lock(&s->lock);
	rc->fd = -1; /* from here on rpc_server_stop leaves the socket alone */
	uv_mutex_unlock(&s->lock);
	if (c)
		net_client_free(c);
	uv_mutex_lock(&s->lock);
	for (struct rpc_conn **pp = &s->conns; *pp; pp = &(*pp)->next)
		if (*pp == rc) {
			*pp = rc->next;
			break;
		}
	free(rc->procs);
	free(rc);
	if (--s->active == 0)
		uv_cond_broadcast(&s->idle);
	uv_mutex_unlock(&s->lock); /* s may be freed once this is released */
	return NULL;
}

/* A peer's HELLO arrived (gate.h): a thread answers it and serves the
 * connection, if one of max_connections is free. */
static int on_hello(void *ctx, int fd, const char *peer, const uint8_t *hello, size_t len)
{
	struct rpc_server *s = ctx;

	uv_mutex_lock(&s->lock);
	if (s->stopping || s->active >= s->opt.max_connections) {
		int active = s->active;
		uv_mutex_unlock(&s->lock);
		log_warn("[peer %s] refused: %d connections open (max_connections)",
			 peer, active);
		return RTCMS_EBUSY;
	}
	struct rpc_conn *c = calloc(1, sizeof(*c) + len);
	if (c)
		c->procs = calloc(PROTO_PROCS_MAX, sizeof(*c->procs));
	if (!c || !c->procs) {
		uv_mutex_unlock(&s->lock);
		free(c);
		return RTCMS_ENOMEM;
	}
	c->srv = s;
	c->fd = fd;
	snprintf(c->peer, sizeof(c->peer), "%s", peer);
	memcpy(c->hello, hello, len);
	c->hello_len = len;
	pthread_attr_t attr;
	pthread_t t;
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	int e = pthread_create(&t, &attr, conn_thread, c);
	pthread_attr_destroy(&attr);
	if (e != 0) {
		uv_mutex_unlock(&s->lock);
		log_error("[peer %s] cannot start a connection thread", peer);
		free(c->procs);
		free(c);
		return RTCMS_ENOMEM;
	}
	s->active++;
	c->next = s->conns;
	s->conns = c;
	uv_mutex_unlock(&s->lock);
	return 0;
}

int rpc_server_start(uv_loop_t *loop, const struct rpc_server_options *opt,
		     struct rpc_server **out, char *bound, size_t cap)
{
	struct rpc_server *s = calloc(1, sizeof(*s));
	if (!s)
		return RTCMS_ENOMEM;
	s->opt = *opt;
	if (uv_mutex_init(&s->lock)) {
		free(s);
		return RTCMS_ENOMEM;
	}
	if (uv_cond_init(&s->idle)) {
		uv_mutex_destroy(&s->lock);
		free(s);
		return RTCMS_ENOMEM;
	}
	struct gate_options g = {
		.listen = opt->listen,
		.key = opt->key,
		.on_hello = on_hello,
		.ctx = s,
	};
	int rc = gate_start(loop, &g, &s->gate, bound, cap);
	if (rc) {
		uv_cond_destroy(&s->idle);
		uv_mutex_destroy(&s->lock);
		free(s);
		return rc;
	}
	*out = s;
	return 0;
}

void rpc_server_stop(struct rpc_server *s)
{
	if (!s)
		return;
	gate_stop(s->gate); /* on_hello is not called again */
	uv_mutex_lock(&s->lock);
	s->stopping = 1;
	for (struct rpc_conn *c = s->conns; c; c = c->next)
		if (c->fd >= 0)
			shutdown(c->fd, SHUT_RDWR);
	while (s->active > 0)
		uv_cond_wait(&s->idle, &s->lock);
	uv_mutex_unlock(&s->lock);
	uv_cond_destroy(&s->idle);
	uv_mutex_destroy(&s->lock);
	free(s);
}

int rpc_write_ready_file(const char *path, const char *addr)
{
	char tmp[4096];
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	FILE *f = fopen(tmp, "w");
	if (!f)
		return RTCMS_EIO;
	fprintf(f, "%s\n", addr);
	if (fclose(f) != 0 || rename(tmp, path) != 0)
		return RTCMS_EIO;
	return 0;
}

enum rpc_result rpc_reply_error(struct net_client *c, const struct proto_header *hdr,
				int code, const char *fmt, ...)
{
	char text[PROTO_TEXT_MAX + 1];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	return rpc_sent(net_client_reply_error(c, hdr->request, code, 0, text));
}

static void close_walk(uv_handle_t *h, void *arg)
{
	(void)arg;
	if (!uv_is_closing(h))
		uv_close(h, NULL);
}

void rpc_close_all(uv_loop_t *loop)
{
	uv_walk(loop, close_walk, NULL);
}

