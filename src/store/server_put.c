/*
 * server_put.c - the PUT stream of rtcms-store: PUT_BEGIN, then CHUNK
 * frames opened in place in the receive buffer, which then trades places
 * with the free buffer of one of PUT_INFLIGHT per-connection slots (no
 * copy), and written by the thread pool, reading paused while all are busy
 * (back-pressure), PUT_END waiting for them to drain before the commit;
 * a streamed PUT answered at PUT_BEGIN drops its CHUNKs (C_DISCARD).
 */
#include "server_int.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "log/log.h"
#include "stream/chunk.h"
#include "rtcms_error.h"

static void put_maybe_finish(struct conn *c);
static void put_fail(struct conn *c, int rc);


/* The text of an ERROR for a delta PUT the store refused (the engine logs
 * the same); other refusals keep their code's text. */
void server_put_error_text(struct conn *c, int rc)
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


void server_put_work_begin(struct conn *c)
{
	union proto_msg *m = &c->msg;
	union proto_msg *r = &c->reply;

	c->rc = store_put_begin(c->srv->store, &m->meta, &c->put, &r->put_ack);
	if (c->rc == 0 && !c->put) {
		c->reply_type = PROTO_PUT_ACK; /* stored already */
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
		server_put_error_text(c, c->rc);
	}
}

bool server_put_after_begin(struct conn *c, uint32_t req, enum conn_state next)
{
	if (c->reply_type == PROTO_PUT_ACK) {
		log_prog(LOG_INFO, c->msg.meta.process, c->msg.meta.incarnation,
			 c->msg.meta.sequence, "[peer %s] PUT %s %" PRIu64 "/%" PRIu64
			 ": already stored (idempotent)", c->peer,
			 c->msg.meta.process, c->msg.meta.incarnation,
			 c->msg.meta.sequence);
		c->state = next;
		conn_send(c, PROTO_PUT_ACK, 0, req, &c->reply, 0);
		return true;
	}
	c->state = C_PUT;
	c->put_request = req;
	c->put_failed = 0;
	c->end_pending = 0;
	c->put_start_ns = mono_ns();
	conn_send(c, PROTO_PUT_READY, 0, req, &c->reply, 0);
	return true;
}

static void work_chunk(uv_work_t *w)
{
	struct chunk_slot *s = w->data;
	/* a sealed chunk came as a raw tail: its source's MAC proves it (the
	 * store cannot open it); checked here, off the loop, once */
	if (s->chunk.key_id && !stream_chunk_mac_ok(&s->conn->session.chunk_mac, &s->chunk))
		s->rc = RTCMS_EAUTH;
	else
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
		if (s->rc == RTCMS_ECORRUPT || s->rc == RTCMS_EAUTH)
			log_prog(LOG_WARN, c->msg.meta.process, c->msg.meta.incarnation,
				 c->msg.meta.sequence, "[peer %s] PUT %s seq %" PRIu64
				 ": chunk at %" PRIu64 " does not match its %s; PUT refused", c->peer,
				 c->msg.meta.process, c->msg.meta.sequence, s->chunk.offset,
				 s->rc == RTCMS_EAUTH ? "MAC"
				 : s->chunk.key_id ? "checksum" : "hash");
		else
			log_prog(LOG_ERROR, c->msg.meta.process, c->msg.meta.incarnation,
				 c->msg.meta.sequence, "[peer %s] PUT %s: writing chunk at %"
				 PRIu64 " failed: %s", c->peer, c->msg.meta.process,
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
		log_prog(LOG_WARN, c->msg.meta.process, c->msg.meta.incarnation,
			 c->msg.meta.sequence, "[peer %s] PUT %s %" PRIu64 "/%" PRIu64
			 " refused at commit: %s", c->peer, c->msg.meta.process,
			 c->msg.meta.incarnation, c->msg.meta.sequence,
			 rtcms_errname(c->rc));
		memset(&c->err, 0, sizeof(c->err));
		server_put_error_text(c, c->rc);
		conn_error(c, c->put_request, c->rc, &c->err, 0);
	} else {
		double ms = (double)(mono_ns() - c->put_start_ns) / 1e6;
		char kind[64] = "";
		if (c->msg.meta.base)
			snprintf(kind, sizeof(kind), " (delta against %" PRIu64
				 ", depth %u)", c->msg.meta.base, c->ack.depth);
		const struct store_put_stats *ps = &c->put_stats;
		log_prog(LOG_INFO, c->ack.process, c->ack.incarnation, c->ack.sequence,
			 "[peer %s] PUT %s %" PRIu64 "/%" PRIu64 "%s: %" PRIu64
			 " bytes in %u chunks (%u new: %" PRIu64 " bytes, %" PRIu64
			 " on disk%s) durable on %u mirror(s) in %.1f ms",
			 c->peer, c->ack.process, c->ack.incarnation,
			 c->ack.sequence, kind, c->ack.size, c->end_count,
			 ps->new_chunks, ps->new_bytes, ps->disk_bytes,
			 ps->inline_chunks ? "; small: the new ones inline in meta.db" : "",
			 c->ack.copies, ms);
		metric_histogram_observe_ns(&store_stats.put_seconds, mono_ns() - c->req_ns);
		m.put_ack = c->ack;
		conn_send(c, PROTO_PUT_ACK, 0, c->put_request, &m, 0);
	}
	server_compact_maybe(c->srv); /* retention may have freed records */
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

struct chunk_slot *server_put_slot(struct conn *c)
{
	for (int i = 0; i < PUT_INFLIGHT; i++) {
		if (!c->slots[i].busy) {
			if (!c->slots[i].buf)
				c->slots[i].buf = malloc(PROTO_MAX_FRAME);
			return c->slots[i].buf ? &c->slots[i] : NULL;
		}
	}
	return NULL;
}

int server_put_discard_frame(struct conn *c, const struct proto_header *hdr)
{
	if (hdr->type == PROTO_CHUNK)
		return 0;
	if (hdr->type == PROTO_PUT_END) {
		c->state = C_READY;
		return 0;
	}
	log_warn("[peer %s] %s inside a refused PUT stream; closing",
		 c->peer, proto_type_name(hdr->type));
	conn_read_stop(c);
	conn_error(c, hdr->request, RTCMS_EPROTO, NULL, 1);
	return RTCMS_EPROTO;
}

int server_put_frame(struct conn *c, const struct proto_header *hdr,
		     const union proto_msg *msg, struct chunk_slot *slot)
{
	int rc;

	if (hdr->type == PROTO_CHUNK) {
		rc = store_put_check(c->put, &msg->chunk);
		if (rc < 0) {
			log_prog(LOG_WARN, c->msg.meta.process, c->msg.meta.incarnation,
				 c->msg.meta.sequence, "[peer %s] PUT %s: chunk at %" PRIu64
				 " refused: %s; closing", c->peer,
				 c->msg.meta.process, msg->chunk.offset,
				 rtcms_strerror(rc));
			put_fail(c, rc);
			return rc;
		}
		metric_counter_add(&store_stats.received_bytes, msg->chunk.len);
		slot->chunk = msg->chunk;
		slot->busy = 1;
		slot->conn = c;
		c->inflight++;
		conn_queue(c, &slot->work, slot, work_chunk, after_chunk);
		return 0;
	}
	if (hdr->type == PROTO_PUT_END) {
		c->end_pending = 1;
		c->end_count = msg->put_end.chunk_count;
		put_maybe_finish(c);
		return 0;
	}
	log_warn("[peer %s] %s during a PUT stream; closing", c->peer,
		 proto_type_name(hdr->type));
	put_fail(c, RTCMS_EPROTO);
	return RTCMS_EPROTO;
}
