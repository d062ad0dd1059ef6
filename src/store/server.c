/*
 * server.c - rtcms-store's event loop.
 *
 * Before a connection is one, the gate (daemon/gate.h) holds it until its
 * whole HELLO arrived (within GATE_HANDSHAKE_MS of the accept; when too
 * many wait, the oldest is closed): idle and slow peers never take one of
 * max_connections. Phases of a connection:
 *   HANDSHAKE  its HELLO is checked under the cluster key and answered
 *   READY      one request at a time; the request runs on the thread pool
 *              while reading is paused, then its reply is sealed and sent
 *   PUT        CHUNK frames are decrypted straight into one of a few
 *              per-connection buffers and written by the thread pool, up to
 *              PUT_INFLIGHT at once; reading pauses when all are busy
 *              (back-pressure), PUT_END waits for them to drain
 *   GET        chunks are read and verified on the thread pool one after
 *              another and streamed out; reading is paused
 * Any malformed, unauthenticated or replayed frame gets one log line naming
 * the peer, an ERROR frame where the peer can read one, and the connection
 * is closed; nothing stored is touched and other connections go on.
 */
#include "server.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <uv.h>

#include "daemon/gate.h"
#include "daemon/rpc_server.h"
#include "fence.h"
#include "log/log.h"
#include "net/addr.h"
#include "proto/msg.h"
#include "proto/session.h"
#include "rtcms_error.h"

#define PUT_INFLIGHT 4

/* C_DISCARD: a streamed PUT (flag STREAM) was answered at PUT_BEGIN
 * (refused, or already stored): its CHUNKs are dropped up to PUT_END. */
enum conn_state { C_HANDSHAKE, C_READY, C_BUSY, C_PUT, C_DISCARD, C_GET, C_CLOSING };

struct server;

struct chunk_slot {
	uint8_t *buf;                  /* decrypted CHUNK payload */
	struct proto_chunk chunk;      /* points into buf */
	int busy;
	int rc;
	uv_work_t work;
	struct conn *conn;
};

struct conn {
	uv_tcp_t tcp;
	uv_timer_t timer;
	struct server *srv;
	enum conn_state state;
	int handles_open;
	int reading;
	int closing;                   /* conn_close() called */
	int draining;                  /* a final frame is queued, then close */
	int write_stalls;              /* timeouts seen with writes pending */
	int closed;                    /* handles being closed */
	int works;                     /* works queued on the thread pool */
	char peer[80];

	struct proto_session session;
	uint8_t *rbuf;                 /* the frame being received */
	size_t rlen;                   /* bytes of it received */
	size_t rwant;                  /* bytes of it expected (header first) */
	uint8_t *plain;                /* decrypted payload of small requests */
	int pending_writes;

	/* the request running on the thread pool */
	uv_work_t work;
	struct proto_header req;       /* its header */
	union proto_msg msg;           /* its decoded payload */
	uint8_t reply_type;
	uint16_t reply_flags;
	union proto_msg reply;
	int rc;
	struct proto_error err;
	struct proto_list_entry *entries;

	/* PUT stream */
	struct store_put *put;
	struct chunk_slot slots[PUT_INFLIGHT];
	int inflight;
	int put_failed;
	int end_pending;
	uint32_t end_count;
	uint32_t put_request;
	uint64_t put_start_ns;
	struct store_put_stats put_stats; /* new chunk files, for the log */
	struct proto_put_ack ack;

	/* GET stream */
	struct store_get *get;
	uint8_t *gbuf;
	struct proto_chunk gchunk;
	uint32_t gcount;
	uint32_t get_request;
	int get_reading;               /* a chunk read is on the thread pool */
	uint8_t *gframe;               /* sealed CHUNK frame, sent from the loop */
	int gframe_len;
};

struct server {
	uv_loop_t *loop;
	struct gate *gate;             /* listener, connections before HELLO */
	uv_signal_t sigint, sigterm;
	const struct server_options *opt;
	struct store *store;
	struct fence_table *fences;    /* manager leases, node fences (fence.h) */
	uint64_t connections;          /* from HELLO on: max_connections */
	int stopping;
};

struct write_req {
	uv_write_t req;
	struct conn *conn;
	uint8_t *frame;
	int close_after;
};

static void conn_close(struct conn *c);
static void conn_read_start(struct conn *c);
static void conn_read_stop(struct conn *c);
static void conn_frame(struct conn *c);
static void put_maybe_finish(struct conn *c);
static void put_fail(struct conn *c, int rc);
static void get_next(struct conn *c);

static uint64_t mono_ns(void)
{
	return uv_hrtime();
}

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
		get_next(c); /* the socket drained: read the next chunk */
	}
}

/* Queue frame (ownership passes) for writing. */
static int conn_write_frame(struct conn *c, uint8_t *frame, size_t len,
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
	uv_buf_t b = uv_buf_init((char *)frame, (unsigned)len);
	int rc = uv_write(&w->req, (uv_stream_t *)&c->tcp, &b, 1, on_write);
	if (rc < 0) {
		free(frame);
		free(w);
		return RTCMS_ECONN;
	}
	c->pending_writes++;
	return 0;
}

/* Seal and send one message as a reply to request id. */
static int conn_send(struct conn *c, uint8_t type, uint16_t flags,
		     uint32_t request, const union proto_msg *msg,
		     int close_after)
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
static void conn_error(struct conn *c, uint32_t request, int code,
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
	free(c->gbuf);
	free(c->gframe);
	free(c->entries);
	c->srv->connections--;
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
	store_get_close(c->get);
	c->get = NULL;
	uv_close((uv_handle_t *)&c->tcp, on_handle_closed);
	uv_close((uv_handle_t *)&c->timer, on_handle_closed);
}

static void conn_close(struct conn *c)
{
	if (c->closing)
		return;
	c->closing = 1;
	conn_read_stop(c);
	c->state = C_CLOSING;
	conn_close_finish(c);
}

/* Queue work for this connection on the thread pool. */
static void conn_queue(struct conn *c, uv_work_t *w, void *data,
		       uv_work_cb work, uv_after_work_cb after)
{
	w->data = data;
	c->works++;
	uv_queue_work(c->srv->loop, w, work, after);
}

/* Called first in every after_* callback: 1 if the connection is closing
 * (and then finishes the close once no work remains). */
static int conn_work_done(struct conn *c)
{
	c->works--;
	if (!c->closing)
		return 0;
	conn_close_finish(c);
	return 1;
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

static void conn_read_start(struct conn *c)
{
	if (c->reading || c->closing || c->draining)
		return;
	if (uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) == 0)
		c->reading = 1;
}

static void conn_read_stop(struct conn *c)
{
	if (!c->reading)
		return;
	uv_read_stop((uv_stream_t *)&c->tcp);
	c->reading = 0;
}

/* ---- request work (thread pool) ----------------------------------- */

/* The text of an ERROR for a delta PUT the store refused (the engine logs
 * the same); other refusals keep their code's text. */
static void delta_error_text(struct conn *c, int rc)
{
	const struct proto_ckpt_meta *m = &c->msg.meta;

	if (m->base == 0)
		return;
	if (rc == RTCMS_ENOENT)
		snprintf(c->err.text, sizeof(c->err.text), "base %" PRIu64 " of %s/%"
			 PRIu64 " is not stored: send a full image", m->base,
			 m->process, m->incarnation);
	else if (rc == RTCMS_ETOOBIG)
		snprintf(c->err.text, sizeof(c->err.text), "%s %" PRIu64 "/%" PRIu64
			 ": chain too deep or image too big for a delta: send a "
			 "full image", m->process, m->incarnation, m->sequence);
}

/* FENCE: decided in memory, persisted on every mirror before the answer
 * (a restarted store must still list it). */
static void work_fence(struct conn *c)
{
	const struct proto_fence *f = &c->msg.fence;
	uint64_t created = 0;

	c->rc = fence_table_fence(c->srv->fences, f, mono_ns() / 1000000, &c->reply.fence_ok,
				  &created, c->err.text, sizeof(c->err.text));
	c->reply_type = PROTO_FENCE_OK;
	if (c->rc == 0 && created) {
		c->rc = store_fence_save(c->srv->store, f->node, created, f->hold_ms);
		if (c->rc)
			fence_table_drop(c->srv->fences, f->node, created);
		else
			log_warn("[peer %s] FENCE node %016" PRIx64 " by %s: generation %" PRIu64
				 "; no manager may answer it from now on", c->peer, f->node,
				 f->by, created);
	}
}

struct lift_work {
	uv_work_t w;
	struct store *store;
	size_t n;
	uint64_t nodes[PROTO_NODES_MAX];
};

static void work_lift(uv_work_t *w)
{
	struct lift_work *l = w->data;
	for (size_t i = 0; i < l->n; i++)
		if (store_fence_delete(l->store, l->nodes[i]) != 0)
			log_warn("fence of node %016" PRIx64 " lifted, but not deleted on disk "
				 "(it is lifted again after the next start)", l->nodes[i]);
}

static void after_lift(uv_work_t *w, int status)
{
	(void)status;
	free(w->data);
}

/* MLEASE on the loop (memory only, never behind a disk): renew the
 * manager's lease, answer with the fences; lift fences that are done. */
static void conn_mlease(struct conn *c, const struct proto_header *hdr,
			const union proto_msg *msg)
{
	struct server *srv = c->srv;
	union proto_msg out;
	uint64_t now = mono_ns() / 1000000;
	struct lift_work *l = calloc(1, sizeof(*l));

	if (l) {
		l->n = fence_table_expire(srv->fences, now, l->nodes, PROTO_NODES_MAX);
		for (size_t i = 0; i < l->n; i++)
			log_info("fence of node %016" PRIx64 " lifted: it may rejoin (empty)",
				 l->nodes[i]);
		l->w.data = l;
		l->store = srv->store;
		if (l->n == 0 || uv_queue_work(srv->loop, &l->w, work_lift, after_lift) != 0)
			free(l);
	}
	int rc = fence_table_renew(srv->fences, &msg->mlease, now, &out.mlease_ok);
	if (rc) {
		conn_error(c, hdr->request, rc, NULL, 0);
		return;
	}
	conn_send(c, PROTO_MLEASE_OK, 0, hdr->request, &out, 0);
}

static void work_request(uv_work_t *w)
{
	struct conn *c = w->data;
	struct store *st = c->srv->store;
	union proto_msg *m = &c->msg;
	union proto_msg *r = &c->reply;
	bool more = false;

	memset(&c->err, 0, sizeof(c->err));
	c->reply_flags = 0;
	switch (c->req.type) {
	case PROTO_PUT_BEGIN:
		c->rc = store_put_begin(st, &m->meta, &c->put, &r->put_ack);
		if (c->rc == 1) {
			c->reply_type = PROTO_PUT_ACK;
			c->rc = 0;
		} else if (c->rc == 0) {
			c->reply_type = PROTO_PUT_READY;
		} else if (c->rc == RTCMS_EFENCED) {
			c->err.detail = r->put_ack.incarnation;
			snprintf(c->err.text, sizeof(c->err.text),
				 "process %s: incarnation %" PRIu64
				 " is older than the current %" PRIu64,
				 m->meta.process, m->meta.incarnation,
				 r->put_ack.incarnation);
		} else {
			delta_error_text(c, c->rc);
		}
		break;
	case PROTO_GET:
		/* meta_only stays cheap: a delta's stored metadata, no
		 * assembly; a full GET of a delta assembles its full image */
		c->rc = (m->get.meta_only ? store_get_open_meta : store_get_open)
			(st, m->get.process, m->get.incarnation, m->get.sequence,
			 &c->get, &r->meta);
		c->reply_type = PROTO_GET_META;
		break;
	case PROTO_LIST:
		if (!c->entries)
			c->entries = calloc(PROTO_LIST_MAX, sizeof(*c->entries));
		if (!c->entries) {
			c->rc = RTCMS_ENOMEM;
			break;
		}
		c->rc = store_list(st, m->list.node, m->list.process,
				   m->list.offset, m->list.limit, c->entries, &more);
		if (c->rc >= 0) {
			r->list_reply.count = (uint16_t)c->rc;
			r->list_reply.entries = c->entries;
			c->reply_flags = more ? PROTO_F_MORE : 0;
			c->reply_type = PROTO_LIST_REPLY;
			c->rc = 0;
		}
		break;
	case PROTO_DELETE:
		c->rc = store_delete(st, m->del.process, m->del.incarnation,
				     m->del.sequence);
		if (c->rc == RTCMS_EBUSY)
			snprintf(c->err.text, sizeof(c->err.text), "%s %" PRIu64
				 "/%" PRIu64 " is the base of a delta checkpoint: "
				 "delete the deltas first, or the whole process",
				 m->del.process, m->del.incarnation, m->del.sequence);
		if (c->rc >= 0) {
			c->rc = 0;
			c->reply_type = PROTO_OK;
		}
		break;
	case PROTO_CLAIM:
		c->rc = store_claim(st, m->claim.process, m->claim.claimant,
				    m->claim.lease_ms, m->claim.flags, &r->claim_ok, &c->err);
		c->reply_type = PROTO_CLAIM_OK;
		break;
	case PROTO_COMMIT:
		c->rc = store_commit(st, m->commit.process, m->commit.claim_id,
				     m->commit.new_node, &r->commit_ok);
		c->reply_type = PROTO_COMMIT_OK;
		break;
	case PROTO_RELEASE:
		c->rc = store_release(st, m->release.process, m->release.claim_id);
		c->reply_type = PROTO_OK;
		break;
	case PROTO_SCRUB:
		c->rc = store_scrub(st, m->scrub.repair != 0, &r->scrub_reply);
		c->reply_type = PROTO_SCRUB_REPLY;
		break;
	case PROTO_STATUS:
		c->rc = store_status(st, &r->scrub_reply);
		c->reply_type = PROTO_STATUS_REPLY;
		break;
	case PROTO_FENCE:
		work_fence(c);
		break;
	case PROTO_MLEASE:
		/* a manager's first lease: persisted first, so a restarted store
		 * knows it may hold one */
		c->rc = store_manager_save(st, m->mlease.name, m->mlease.lease_ms);
		if (c->rc == 0)
			c->rc = fence_table_renew(c->srv->fences, &m->mlease,
						  mono_ns() / 1000000, &r->mlease_ok);
		c->reply_type = PROTO_MLEASE_OK;
		if (c->rc == 0)
			log_info("[peer %s] MLEASE: manager %s holds a lease (%u ms)", c->peer,
				 m->mlease.name, r->mlease_ok.lease_ms);
		break;
	default:
		c->rc = RTCMS_EINTERNAL;
	}
}

static void log_result(struct conn *c)
{
	union proto_msg *m = &c->msg;
	union proto_msg *r = &c->reply;

	if (c->rc < 0) {
		/* a manager asking whether a checkpoint is stored yet is routine */
		int probe = c->req.type == PROTO_GET && m->get.meta_only && c->rc == RTCMS_ENOENT;
		log_msg(probe ? LOG_DEBUG : LOG_INFO, "[peer %s] %s refused: %s%s%s", c->peer,
			 proto_type_name(c->req.type), rtcms_errname(c->rc),
			 c->err.text[0] ? ": " : "", c->err.text);
		return;
	}
	switch (c->req.type) {
	case PROTO_CLAIM:
		log_info("[peer %s] CLAIM %s by %s: won, claim %016" PRIx64
			 " on %" PRIu64 "/%" PRIu64 ", lease %u ms%s",
			 c->peer, m->claim.process, m->claim.claimant,
			 r->claim_ok.claim_id, r->claim_ok.incarnation,
			 r->claim_ok.sequence, m->claim.lease_ms,
			 m->claim.flags & PROTO_CLAIM_F_GAVE_UP
			 ? " (its node gave up on it: the one move allowed)" : "");
		break;
	case PROTO_COMMIT:
		log_info("[peer %s] COMMIT %s claim %016" PRIx64
			 ": now incarnation %" PRIu64 " on node %016" PRIx64,
			 c->peer, m->commit.process, m->commit.claim_id,
			 r->commit_ok.incarnation, r->commit_ok.node);
		break;
	case PROTO_RELEASE:
		log_info("[peer %s] RELEASE %s claim %016" PRIx64, c->peer,
			 m->release.process, m->release.claim_id);
		break;
	case PROTO_DELETE:
		log_info("[peer %s] DELETE %s %" PRIu64 "/%" PRIu64, c->peer,
			 m->del.process, m->del.incarnation, m->del.sequence);
		break;
	case PROTO_SCRUB:
		log_info("[peer %s] SCRUB: %" PRIu64 " chunks, %u unrepairable",
			 c->peer, r->scrub_reply.chunks,
			 r->scrub_reply.unrepairable);
		break;
	default:
		log_debug("[peer %s] %s done", c->peer,
			  proto_type_name(c->req.type));
	}
}

static void after_request(uv_work_t *w, int status)
{
	struct conn *c = w->data;
	uint32_t req = c->req.request;

	if (conn_work_done(c))
		return;
	log_result(c);
	/* A streamed PUT answered now: its data follows and is dropped. */
	enum conn_state after = c->req.type == PROTO_PUT_BEGIN &&
				(c->req.flags & PROTO_F_STREAM) &&
				c->msg.meta.chunk_count > 0 ? C_DISCARD : C_READY;
	if (c->rc < 0) {
		c->state = after;
		conn_error(c, req, c->rc, &c->err, 0);
		conn_read_start(c);
		return;
	}
	switch (c->req.type) {
	case PROTO_PUT_BEGIN:
		if (c->reply_type == PROTO_PUT_ACK) {
			log_info("[peer %s] PUT %s %" PRIu64 "/%" PRIu64
				 ": already stored (idempotent)", c->peer,
				 c->msg.meta.process, c->msg.meta.incarnation,
				 c->msg.meta.sequence);
			c->state = after;
			conn_send(c, PROTO_PUT_ACK, 0, req, &c->reply, 0);
			break;
		}
		c->state = C_PUT;
		c->put_request = req;
		c->put_failed = 0;
		c->end_pending = 0;
		c->put_start_ns = mono_ns();
		conn_send(c, PROTO_PUT_READY, 0, req, &c->reply, 0);
		break;
	case PROTO_GET:
		c->get_request = req;
		c->gcount = 0;
		if (c->msg.get.meta_only) {
			conn_send(c, PROTO_GET_META, 0, req, &c->reply, 0);
			store_get_close(c->get);
			c->get = NULL;
			c->state = C_READY;
			break;
		}
		log_info("[peer %s] GET %s %" PRIu64 "/%" PRIu64 " (%" PRIu64
			 " bytes, %u chunks)", c->peer, c->reply.meta.process,
			 c->reply.meta.incarnation, c->reply.meta.sequence,
			 c->reply.meta.size, c->reply.meta.chunk_count);
		conn_send(c, PROTO_GET_META, PROTO_F_MORE, req, &c->reply, 0);
		c->state = C_GET;
		get_next(c);
		return; /* reading stays paused during the stream */
	default:
		c->state = C_READY;
		conn_send(c, c->reply_type, c->reply_flags, req, &c->reply, 0);
	}
	conn_read_start(c);
}

/* ---- PUT stream ---------------------------------------------------- */

static void work_chunk(uv_work_t *w)
{
	struct chunk_slot *s = w->data;
	s->rc = store_put_write(s->conn->put, &s->chunk);
}

static void after_chunk(uv_work_t *w, int status)
{
	struct chunk_slot *s = w->data;
	struct conn *c = s->conn;

	s->busy = 0;
	c->inflight--;
	if (conn_work_done(c))
		return;
	if (s->rc < 0 && !c->put_failed) {
		c->put_failed = s->rc;
		if (s->rc == RTCMS_ECORRUPT)
			log_warn("[peer %s] PUT %s: chunk at %" PRIu64 " does not "
				 "match its hash; PUT refused", c->peer,
				 c->msg.meta.process, s->chunk.offset);
		else
			log_error("[peer %s] PUT %s: writing chunk at %" PRIu64
				  " failed: %s", c->peer, c->msg.meta.process,
				  s->chunk.offset, rtcms_strerror(s->rc));
	}
	if (c->put_failed) {
		put_fail(c, c->put_failed);
		return;
	}
	if (c->end_pending) {
		put_maybe_finish(c);
		return;
	}
	if (!c->put_failed)
		conn_read_start(c);
}

static void work_commit(uv_work_t *w)
{
	struct conn *c = w->data;
	store_put_stats(c->put, &c->put_stats);
	c->rc = store_put_commit(c->put, c->end_count, &c->ack);
	c->put = NULL; /* freed by commit whatever the result */
}

static void after_commit(uv_work_t *w, int status)
{
	struct conn *c = w->data;
	union proto_msg m;

	if (conn_work_done(c))
		return;
	c->state = C_READY;
	if (c->rc < 0) {
		log_warn("[peer %s] PUT %s %" PRIu64 "/%" PRIu64
			 " refused at commit: %s", c->peer, c->msg.meta.process,
			 c->msg.meta.incarnation, c->msg.meta.sequence,
			 rtcms_errname(c->rc));
		memset(&c->err, 0, sizeof(c->err));
		delta_error_text(c, c->rc);
		conn_error(c, c->put_request, c->rc, &c->err, 0);
	} else {
		double ms = (double)(mono_ns() - c->put_start_ns) / 1e6;
		char kind[64] = "";
		if (c->msg.meta.base)
			snprintf(kind, sizeof(kind), " (delta against %" PRIu64
				 ", depth %u)", c->msg.meta.base, c->ack.depth);
		const struct store_put_stats *ps = &c->put_stats;
		log_info("[peer %s] PUT %s %" PRIu64 "/%" PRIu64 "%s: %" PRIu64
			 " bytes in %u chunks (%u new: %" PRIu64 " bytes, %" PRIu64
			 " on disk) durable on %u mirror(s) in %.1f ms",
			 c->peer, c->ack.process, c->ack.incarnation,
			 c->ack.sequence, kind, c->ack.size, c->end_count,
			 ps->new_chunks, ps->new_bytes, ps->disk_bytes,
			 c->ack.copies, ms);
		m.put_ack = c->ack;
		conn_send(c, PROTO_PUT_ACK, 0, c->put_request, &m, 0);
	}
	conn_read_start(c);
}

static void put_maybe_finish(struct conn *c)
{
	conn_read_stop(c); /* the client waits for PUT_ACK now */
	if (c->inflight > 0)
		return;
	c->end_pending = 0;
	c->state = C_BUSY;
	conn_queue(c, &c->work, c, work_commit, after_commit);
}

/*
 * A PUT stream failed: read nothing more; once no chunk write is in flight,
 * drop the PUT, answer ERROR and close (after_chunk finishes it otherwise).
 */
static void put_fail(struct conn *c, int rc)
{
	if (!c->put_failed)
		c->put_failed = rc;
	conn_read_stop(c);
	if (c->inflight > 0)
		return;
	store_put_abort(c->put);
	c->put = NULL;
	c->state = C_READY;
	conn_error(c, c->put_request, c->put_failed, NULL, 1);
}

static struct chunk_slot *slot_free(struct conn *c)
{
	for (int i = 0; i < PUT_INFLIGHT; i++) {
		if (!c->slots[i].busy) {
			if (!c->slots[i].buf)
				c->slots[i].buf = malloc(PROTO_MAX_PAYLOAD);
			return c->slots[i].buf ? &c->slots[i] : NULL;
		}
	}
	return NULL;
}

/* ---- GET stream ---------------------------------------------------- */

static void work_get(uv_work_t *w)
{
	struct conn *c = w->data;
	union proto_msg m;

	c->rc = store_get_next(c->get, c->gbuf, &c->gchunk);
	if (c->rc < 0)
		return;
	/* Seal here, off the loop: only this work seals during a GET stream. */
	m.chunk = c->gchunk;
	c->gframe = malloc(PROTO_MAX_FRAME);
	if (!c->gframe) {
		c->rc = RTCMS_ENOMEM;
		return;
	}
	c->gframe_len = proto_session_seal(&c->session, PROTO_CHUNK,
					   PROTO_F_REPLY | PROTO_F_MORE, 0,
					   c->get_request, &m, c->gframe,
					   PROTO_MAX_FRAME);
	if (c->gframe_len < 0) {
		c->rc = c->gframe_len;
		free(c->gframe);
		c->gframe = NULL;
	}
}

static void after_get(uv_work_t *w, int status)
{
	struct conn *c = w->data;
	union proto_msg m;

	c->get_reading = 0;
	if (conn_work_done(c)) {
		free(c->gframe);
		c->gframe = NULL;
		return;
	}
	if (c->rc == RTCMS_EEOF) {
		m.get_end.chunk_count = c->gcount;
		m.get_end.repaired = store_get_repaired(c->get);
		if (m.get_end.repaired)
			log_warn("[peer %s] GET %s: %u bad copies repaired "
				 "from a good mirror", c->peer,
				 c->msg.get.process, m.get_end.repaired);
		store_get_close(c->get);
		c->get = NULL;
		c->state = C_READY;
		conn_send(c, PROTO_GET_END, 0, c->get_request, &m, 0);
		conn_read_start(c);
		return;
	}
	if (c->rc < 0) {
		log_error("[peer %s] GET %s failed after %u chunks: %s", c->peer,
			  c->msg.get.process, c->gcount, rtcms_strerror(c->rc));
		store_get_close(c->get);
		c->get = NULL;
		c->state = C_READY;
		conn_error(c, c->get_request, c->rc, NULL, 1);
		return;
	}
	c->gcount++;
	uint8_t *f = c->gframe;
	c->gframe = NULL;
	conn_write_frame(c, f, (size_t)c->gframe_len, 0);
	if (c->pending_writes < 2)
		get_next(c);
	/* else on_write calls get_next when the socket drains */
}

static void get_next(struct conn *c)
{
	if (!c->gbuf)
		c->gbuf = malloc(PROTO_MAX_CHUNK);
	if (!c->gbuf) {
		c->rc = RTCMS_ENOMEM;
		conn_close(c);
		return;
	}
	c->get_reading = 1;
	conn_queue(c, &c->work, c, work_get, after_get);
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

static int request_allowed(uint8_t type)
{
	switch (type) {
	case PROTO_PUT_BEGIN: case PROTO_GET: case PROTO_LIST:
	case PROTO_DELETE: case PROTO_CLAIM: case PROTO_COMMIT:
	case PROTO_RELEASE: case PROTO_SCRUB: case PROTO_STATUS:
	case PROTO_MLEASE: case PROTO_FENCE:
		return 1;
	default:
		return 0;
	}
}

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
		slot = slot_free(c);
		if (!slot) {
			log_error("[peer %s] out of memory for a chunk", c->peer);
			conn_close(c);
			return;
		}
		plain = slot->buf;
	}
	rc = proto_session_open(&c->session, c->rbuf, c->rlen, &hdr, plain,
				PROTO_MAX_PAYLOAD, &msg);
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

	if (c->state == C_DISCARD) {
		if (hdr.type == PROTO_CHUNK)
			goto next;
		if (hdr.type == PROTO_PUT_END) {
			c->state = C_READY;
			goto next;
		}
		log_warn("[peer %s] %s inside a refused PUT stream; closing",
			 c->peer, proto_type_name(hdr.type));
		conn_read_stop(c);
		conn_error(c, hdr.request, RTCMS_EPROTO, NULL, 1);
		return;
	}
	if (c->state == C_PUT) {
		if (hdr.type == PROTO_CHUNK) {
			rc = store_put_check(c->put, &msg.chunk);
			if (rc < 0) {
				log_warn("[peer %s] PUT %s: chunk at %" PRIu64
					 " refused: %s; closing", c->peer,
					 c->msg.meta.process, msg.chunk.offset,
					 rtcms_strerror(rc));
				put_fail(c, rc);
				return;
			}
			slot->chunk = msg.chunk;
			slot->busy = 1;
			slot->conn = c;
			c->inflight++;
			conn_queue(c, &slot->work, slot, work_chunk, after_chunk);
			goto next;
		}
		if (hdr.type == PROTO_PUT_END) {
			c->end_pending = 1;
			c->end_count = msg.put_end.chunk_count;
			put_maybe_finish(c);
			goto next;
		}
		log_warn("[peer %s] %s during a PUT stream; closing", c->peer,
			 proto_type_name(hdr.type));
		put_fail(c, RTCMS_EPROTO);
		return;
	}

	if (!request_allowed(hdr.type)) {
		log_warn("[peer %s] unexpected %s; closing", c->peer,
			 proto_type_name(hdr.type) ? proto_type_name(hdr.type)
						   : "frame");
		conn_read_stop(c);
		conn_error(c, hdr.request, RTCMS_EPROTO, NULL, 1);
		return;
	}
	if (hdr.type == PROTO_MLEASE && fence_table_knows(c->srv->fences, msg.mlease.name)) {
		conn_mlease(c, &hdr, &msg);
		goto next;
	}
	/* A request: run it on the thread pool, reading paused meanwhile.
	 * The spec blob of PUT_BEGIN points into plain, which stays untouched
	 * until the request is done. */
	c->req = hdr;
	c->msg = msg;
	c->state = C_BUSY;
	conn_read_stop(c);
	conn_queue(c, &c->work, c, work_request, after_request);
next:
	c->rlen = 0;
	c->rwant = PROTO_HEADER_SIZE;
	if (!c->closing && c->state == C_PUT && c->inflight >= PUT_INFLIGHT)
		conn_read_stop(c); /* back-pressure: resumes in after_chunk */
}

/* ---- listener ------------------------------------------------------- */

static void free_unopened(uv_handle_t *h)
{
	struct conn *c = h->data;
	free(c->rbuf);
	free(c->plain);
	free(c);
}

/* A peer's HELLO arrived (gate.h): it becomes a connection, if one of
 * max_connections is free, and its HELLO is answered at once. */
static int on_hello(void *ctx, int fd, const char *peer, const uint8_t *hello, size_t len)
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

static void close_walk(uv_handle_t *h, void *arg)
{
	(void)arg;
	if (uv_is_closing(h))
		return;
	if (h->type == UV_TCP) { /* the gate's are closing already */
		conn_close(h->data);
		return;
	}
	if (h->type == UV_TIMER)
		return; /* closed with its connection */
	uv_close(h, NULL);
}

static void on_signal(uv_signal_t *s, int signum)
{
	struct server *srv = s->data;

	log_info("signal %d: shutting down", signum);
	srv->stopping = 1;
	gate_stop(srv->gate);
	uv_walk(srv->loop, close_walk, srv);
}

static void fence_loaded(void *ctx, uint64_t node, uint64_t gen, uint32_t hold_ms)
{
	fence_table_load(ctx, node, gen, hold_ms);
	log_warn("node %016" PRIx64 " is fenced (generation %" PRIu64 ", from before this "
		 "start): no manager may answer it", node, gen);
}

static void manager_loaded(void *ctx, const char *name, uint32_t lease_ms)
{
	fence_table_load_manager(ctx, name, lease_ms, mono_ns() / 1000000);
}

static int server_fences_open(struct server *srv)
{
	uint64_t gen = 0;
	srv->fences = fence_table_new(srv->opt->manager_lease_max_ms, mono_ns() / 1000000);
	if (!srv->fences)
		return RTCMS_ENOMEM;
	int rc = store_fences_load(srv->store, fence_loaded, srv->fences, &gen);
	if (rc) {
		log_error("cannot read the node fences: %s", rtcms_strerror(rc));
		fence_table_free(srv->fences);
		return rc;
	}
	fence_table_set_gen(srv->fences, gen);
	rc = store_managers_load(srv->store, manager_loaded, srv->fences);
	if (rc) {
		log_error("cannot read the managers: %s", rtcms_strerror(rc));
		fence_table_free(srv->fences);
		return rc;
	}
	return 0;
}

int server_run(const struct server_options *opt, struct store *st)
{
	struct server srv;
	struct sockaddr_storage ss;
	char bound[80];
	int rc;

	memset(&srv, 0, sizeof(srv));
	srv.opt = opt;
	srv.store = st;
	if ((rc = server_fences_open(&srv)) != 0)
		return rc;
	if (net_addr_parse(opt->listen, 1, &ss) != 0) {
		log_error("invalid listen address \"%s\" (expected host:port, "
			  "e.g. 127.0.0.1:7400)", opt->listen);
		fence_table_free(srv.fences);
		return RTCMS_EINVAL;
	}
	srv.loop = uv_default_loop();
	struct gate_options g = {
		.listen = opt->listen,
		.key = opt->key,
		.on_hello = on_hello,
		.ctx = &srv,
	};
	rc = gate_start(srv.loop, &g, &srv.gate, bound, sizeof(bound));
	if (rc != 0) { /* logged */
		uv_run(srv.loop, UV_RUN_DEFAULT);
		uv_loop_close(srv.loop);
		fence_table_free(srv.fences);
		return RTCMS_EIO;
	}
	uv_signal_init(srv.loop, &srv.sigint);
	uv_signal_init(srv.loop, &srv.sigterm);
	srv.sigint.data = srv.sigterm.data = &srv;
	uv_signal_start(&srv.sigint, on_signal, SIGINT);
	uv_signal_start(&srv.sigterm, on_signal, SIGTERM);
	log_info("listening on %s", bound);
	if (opt->ready_file && rpc_write_ready_file(opt->ready_file, bound) != 0) {
		log_error("cannot write ready file %s: %s", opt->ready_file,
			  strerror(errno));
		return RTCMS_EIO;
	}
	uv_run(srv.loop, UV_RUN_DEFAULT);
	uv_loop_close(srv.loop);
	fence_table_free(srv.fences);
	log_info("stopped");
	return 0;
}
