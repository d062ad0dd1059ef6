/*
 * conn.c - one connection of rtcms-store: frames in (reading, the
 * timeout, opening each frame and handing it to its phase) and out
 * (sealing, writing, ERROR replies), its lifetime (closed only once no
 * work of it is on the thread pool), the handshake, and the accept after
 * the gate saw its HELLO. Phases (see server.c): HANDSHAKE, READY, BUSY,
 * PUT / DISCARD (server_put.c), GET (server_get.c), CLOSING.
 */
#include "server_int.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log/log.h"
#include "rtcms_error.h"

static void conn_frame(struct conn *c);

/* ---- writing ---------------------------------------------------------- */

static void on_write(uv_write_t *req, int status)
{
	struct write_req *w = (struct write_req *)req;
	struct conn *c = w->conn;
	int close_after = w->close_after;

	free(w->frame);
	free(w);
	c->pending_writes--;
	c->write_stalls = 0;
	if (c->closing)
		return;
	if (status < 0) {
		log_warn("[peer %s] write failed: %s; closing", c->peer,
			 uv_strerror(status));
		conn_close(c);
	} else if (close_after) {
		conn_close(c);
	} else if (c->state == C_GET && c->get && !c->get_reading &&
		   c->pending_writes < 2) {
		server_get_next(c); /* the socket drained: read the next chunk */
	}
}

/* Queue the n buffers of one frame for writing; frame (ownership passes)
 * is freed when the write is done. */
static int queue_write(struct conn *c, uint8_t *frame, const uv_buf_t *b, unsigned n,
		       int close_after)
{
	struct write_req *w = calloc(1, sizeof(*w));
	if (!w) {
		free(frame);
		return RTCMS_ENOMEM;
	}
	w->conn = c;
	w->frame = frame;
	w->close_after = close_after;
	if (close_after) {
		/* last words: read nothing more from this peer */
		conn_read_stop(c);
		c->draining = 1;
	}
	if (uv_write(&w->req, (uv_stream_t *)&c->tcp, b, n, on_write) < 0) {
		free(frame);
		free(w);
		return RTCMS_ECONN;
	}
	c->pending_writes++;
	return 0;
}

/* Queue frame (ownership passes) for writing. */
int conn_write_frame(struct conn *c, uint8_t *frame, size_t len, int close_after)
{
	uv_buf_t b = uv_buf_init((char *)frame, (unsigned)len);
	return queue_write(c, frame, &b, 1, close_after);
}

int conn_write_parts(struct conn *c, uint8_t *frame, const struct proto_frame_parts *parts)
{
	if (!parts->tail_len)
		return conn_write_frame(c, frame, parts->head_len + PROTO_TAG_SIZE, 0);
	uv_buf_t b[3] = { uv_buf_init((char *)frame, (unsigned)parts->head_len),
			  uv_buf_init((char *)parts->tail, (unsigned)parts->tail_len),
			  uv_buf_init((char *)frame + parts->head_len, PROTO_TAG_SIZE) };
	return queue_write(c, frame, b, 3, 0);
}

/* Seal and send one message as a reply to request id. */
int conn_send(struct conn *c, uint8_t type, uint16_t flags, uint32_t request,
	      const union proto_msg *msg, int close_after)
{
	size_t cap = proto_frame_size(type == PROTO_CHUNK ? PROTO_MAX_PAYLOAD
							  : 64 * 1024);
	uint8_t *frame = malloc(cap);
	if (!frame) {
		conn_close(c);
		return RTCMS_ENOMEM;
	}
	int n = proto_session_seal(&c->session, type, flags | PROTO_F_REPLY, 0,
				   request, msg, frame, cap);
	if (n < 0) {
		free(frame);
		log_error("[peer %s] cannot encode %s reply: %s", c->peer,
			  proto_type_name(type), rtcms_strerror(n));
		conn_close(c);
		return n;
	}
	return conn_write_frame(c, frame, (size_t)n, close_after);
}

/* Send an ERROR reply; close the connection afterwards if asked. */
void conn_error(struct conn *c, uint32_t request, int code,
		const struct proto_error *detail, int close_after)
{
	union proto_msg m;

	memset(&m, 0, sizeof(m));
	if (detail)
		m.error = *detail;
	m.error.code = code;
	if (m.error.text[0] == '\0')
		snprintf(m.error.text, sizeof(m.error.text), "%s",
			 rtcms_strerror(code));
	conn_send(c, PROTO_ERROR, 0, request, &m, close_after);
}

/* ---- connection lifecycle ------------------------------------------- */

static void on_handle_closed(uv_handle_t *h)
{
	struct conn *c = h->data;

	if (--c->handles_open > 0)
		return;
	for (int i = 0; i < PUT_INFLIGHT; i++)
		free(c->slots[i].buf);
	free(c->rbuf);
	free(c->plain);
	free(c->gbufs[0]);
	free(c->gbufs[1]);
	free(c->gframe);
	free(c->entries);
	c->srv->connections--;
	metric_gauge_set(&store_stats.connections, (int64_t)c->srv->connections);
	sodium_memzero(&c->session, sizeof(c->session));
	free(c);
}

/*
 * Close the connection. Work of ours still running on the thread pool
 * touches c, so the handles are closed (and c freed) only when the last
 * work has reported back: each after_* callback calls conn_close_finish().
 */
static void conn_close_finish(struct conn *c)
{
	if (c->works > 0 || c->closed)
		return;
	c->closed = 1;
	store_put_abort(c->put);
	c->put = NULL;
	if (c->get && !(c->req.type == PROTO_GET && c->msg.get.meta_only))
		metric_counter_inc(&store_stats.gets[STORE_GET_ABORTED]);
	store_get_close(c->get);
	c->get = NULL;
	uv_close((uv_handle_t *)&c->tcp, on_handle_closed);
	uv_close((uv_handle_t *)&c->timer, on_handle_closed);
}

void conn_close(struct conn *c)
{
	if (c->closing)
		return;
	c->closing = 1;
	conn_read_stop(c);
	c->state = C_CLOSING;
	conn_close_finish(c);
}

/* Queue work for this connection on the thread pool. */
void conn_queue(struct conn *c, uv_work_t *w, void *data, uv_work_cb work,
		uv_after_work_cb after)
{
	w->data = data;
	c->works++;
	uv_queue_work(c->srv->loop, w, work, after);
}

/* Called first in every after_* callback: 1 if the connection is closing
 * (and then finishes the close once no work remains). */
bool conn_work_done(struct conn *c)
{
	c->works--;
	if (!c->closing)
		return false;
	conn_close_finish(c);
	return true;
}

static void on_timeout(uv_timer_t *t)
{
	struct conn *c = t->data;

	if (c->works > 0) {
		/* Our side is working: wait. */
		uv_timer_again(t);
		return;
	}
	if (c->pending_writes > 0 && ++c->write_stalls < 3) {
		/* The peer reads slowly: give it a few more periods. */
		uv_timer_again(t);
		return;
	}
	log_warn("[peer %s] no complete frame for %" PRIu64 " ms (idle or slow "
		 "sender); closing", c->peer, c->srv->opt->client_timeout_ms);
	conn_close(c);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
	struct conn *c = h->data;
	/* Read at most the rest of the current frame: frames never mix. */
	buf->base = (char *)c->rbuf + c->rlen;
	buf->len = c->rwant - c->rlen;
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
	struct conn *c = s->data;

	if (nread == UV_EOF || nread == UV_ECONNRESET) {
		if (c->rlen > 0 || c->state == C_PUT)
			log_warn("[peer %s] disconnected mid-%s", c->peer,
				 c->state == C_PUT ? "PUT (nothing of it stored)"
						   : "frame");
		else
			log_debug("[peer %s] disconnected", c->peer);
		conn_close(c);
		return;
	}
	if (nread < 0) {
		log_warn("[peer %s] read error: %s", c->peer, uv_strerror((int)nread));
		conn_close(c);
		return;
	}
	c->rlen += (size_t)nread;
	if (c->rlen < c->rwant)
		return;
	if (c->rwant == PROTO_HEADER_SIZE) {
		struct proto_header hdr;
		int rc = proto_header_decode(c->rbuf, c->rlen, &hdr);
		if (rc < 0) {
			log_warn("[peer %s] bad frame header: %s; closing",
				 c->peer, rtcms_strerror(rc));
			conn_error(c, 0, rc, NULL, 1);
			uv_read_stop(s);
			c->reading = 0;
			return;
		}
		c->rwant = proto_frame_size(hdr.length);
		if (c->rlen < c->rwant)
			return;
	}
	conn_frame(c);
}

void conn_read_start(struct conn *c)
{
	if (c->reading || c->closing || c->draining)
		return;
	if (uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) == 0)
		c->reading = 1;
}

void conn_read_stop(struct conn *c)
{
	if (!c->reading)
		return;
	uv_read_stop((uv_stream_t *)&c->tcp);
	c->reading = 0;
}

/* ---- frames -------------------------------------------------------- */

static void conn_handshake(struct conn *c)
{
	const struct server_options *o = c->srv->opt;
	uint8_t *ack = malloc(1024);
	int n;

	if (!ack) {
		conn_close(c);
		return;
	}
	n = proto_session_accept(&c->session, c->rbuf, c->rlen,
				 PROTO_ROLE_STORE, o->name, ack, 1024);
	if (n < 0) {
		free(ack);
		log_warn("[peer %s] handshake refused: %s; closing", c->peer,
			 rtcms_strerror(n));
		uint8_t *f = malloc(1024);
		int m = f ? proto_session_plain_error(o->key, n,
						      rtcms_strerror(n), f, 1024)
			  : -1;
		conn_read_stop(c);
		if (m > 0)
			conn_write_frame(c, f, (size_t)m, 1);
		else {
			free(f);
			conn_close(c);
		}
		return;
	}
	size_t plen = strlen(c->peer);
	snprintf(c->peer + plen, sizeof(c->peer) - plen, " %s",
		 c->session.peer_name);
	log_debug("[peer %s] authenticated", c->peer);
	c->state = C_READY;
	conn_write_frame(c, ack, (size_t)n, 0);
}

/* A whole frame arrived: open it and hand it to the phase it belongs to. */
static void conn_frame(struct conn *c)
{
	struct proto_header hdr;
	uint8_t *plain = c->plain;
	struct chunk_slot *slot = NULL;
	union proto_msg msg;
	int rc;

	uv_timer_again(&c->timer);
	c->write_stalls = 0;
	if (c->state == C_PUT) {
		slot = server_put_slot(c);
		if (!slot) {
			log_error("[peer %s] out of memory for a chunk", c->peer);
			conn_close(c);
			return;
		}
		plain = slot->buf;
	}
	if (slot) {
		/* a PUT's frame is opened where it is; a CHUNK's buffer goes to
		 * its slot, whose free buffer receives the next frame (no copy) */
		rc = proto_session_open_inplace(&c->session, c->rbuf, c->rlen, &hdr, &msg);
		if (rc == 0 && hdr.type == PROTO_CHUNK) {
			slot->buf = c->rbuf;
			c->rbuf = plain;
		}
	} else {
		rc = proto_session_open(&c->session, c->rbuf, c->rlen, &hdr, plain,
					PROTO_MAX_PAYLOAD, &msg);
	}
	if (rc < 0) {
		log_warn("[peer %s] frame refused: %s; closing", c->peer,
			 rtcms_strerror(rc));
		conn_read_stop(c);
		if (c->put && c->inflight == 0) {
			store_put_abort(c->put);
			c->put = NULL;
		}
		if (c->state == C_PUT)
			c->state = c->inflight ? C_PUT : C_READY;
		conn_error(c, 0, rc, NULL, 1);
		return;
	}
	if (c->state == C_DISCARD)
		rc = server_put_discard_frame(c, &hdr);
	else if (c->state == C_PUT)
		rc = server_put_frame(c, &hdr, &msg, slot);
	else
		rc = server_request_frame(c, &hdr, &msg);
	if (rc < 0)
		return; /* refused: the connection closes */
	c->rlen = 0;
	c->rwant = PROTO_HEADER_SIZE;
	if (!c->closing && c->state == C_PUT && c->inflight >= PUT_INFLIGHT)
		conn_read_stop(c); /* back-pressure: resumes in after_chunk */
}

/* ---- accepting -------------------------------------------------------- */

static void free_unopened(uv_handle_t *h)
{
	struct conn *c = h->data;
	free(c->rbuf);
	free(c->plain);
	free(c);
}

/* A peer's HELLO arrived (gate.h): it becomes a connection, if one of
 * max_connections is free, and its HELLO is answered at once. */
int conn_on_hello(void *ctx, int fd, const char *peer, const uint8_t *hello, size_t len)
{
	struct server *srv = ctx;
	struct conn *c;

	if (srv->stopping || srv->connections >= srv->opt->max_connections) {
		log_warn("[peer %s] refused: %" PRIu64 " connections already", peer,
			 srv->connections);
		return RTCMS_EBUSY;
	}
	if (len > PROTO_MAX_FRAME)
		return RTCMS_EPROTO;
	c = calloc(1, sizeof(*c));
	if (!c || !(c->rbuf = malloc(PROTO_MAX_FRAME)) ||
	    !(c->plain = malloc(PROTO_MAX_PAYLOAD))) {
		if (c) {
			free(c->rbuf);
			free(c);
		}
		log_error("out of memory accepting a connection");
		return RTCMS_ENOMEM;
	}
	uv_tcp_init(srv->loop, &c->tcp);
	if (uv_tcp_open(&c->tcp, fd) != 0) {
		/* not ours yet: the gate closes fd */
		c->tcp.data = c;
		uv_close((uv_handle_t *)&c->tcp, free_unopened);
		return RTCMS_EIO;
	}
	c->srv = srv;
	uv_timer_init(srv->loop, &c->timer);
	c->tcp.data = c;
	c->timer.data = c;
	c->handles_open = 2;
	srv->connections++;
	metric_gauge_set(&store_stats.connections, (int64_t)srv->connections);
	snprintf(c->peer, sizeof(c->peer), "%s", peer);
	proto_session_init(&c->session, srv->opt->key, false, 0);
	c->state = C_HANDSHAKE;
	memcpy(c->rbuf, hello, len);
	c->rlen = len;
	uv_timer_start(&c->timer, on_timeout, srv->opt->client_timeout_ms,
		       srv->opt->client_timeout_ms);
	conn_handshake(c);
	c->rlen = 0;
	c->rwant = PROTO_HEADER_SIZE;
	conn_read_start(c);
	return 0;
}
