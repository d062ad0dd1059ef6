/*
 * server_get.c - the GET stream of rtcms-store: GET opens the checkpoint
 * (on the thread pool: its chain is loaded and pinned there), GET_META
 * answers it, then each chunk is read, verified and sealed on the thread
 * pool one after another and sent from the loop, at most two frames
 * queued on the socket (a sealed chunk as a raw tail, written from the
 * read buffer: two alternate); a delta's chain link by link (GET_END with MORE,
 * the next link's GET_META); reading stays paused until the last GET_END.
 */
#include "server_int.h"

#include <inttypes.h>
#include <stdlib.h>

#include "log/log.h"
#include "chunkfile.h"
#include "rtcms_error.h"

void server_get_work_open(struct conn *c)
{
	const struct proto_get *q = &c->msg.get;

	/* meta_only stays cheap: the stored metadata, nothing pinned; a full
	 * GET of a delta serves its chain */
	c->rc = (q->meta_only ? store_get_open_meta : store_get_open)
		(c->srv->store, q->process, q->incarnation, q->sequence, &c->get,
		 &c->reply.meta);
	c->reply_type = PROTO_GET_META;
}

bool server_get_after_open(struct conn *c, uint32_t req, enum conn_state next)
{
	(void)next;
	c->get_request = req;
	c->gcount = 0;
	if (c->msg.get.meta_only) {
		conn_send(c, PROTO_GET_META, 0, req, &c->reply, 0);
		store_get_close(c->get);
		c->get = NULL;
		c->state = C_READY;
		return true;
	}
	uint64_t top = 0;
	uint32_t links = store_get_links(c->get, &top);
	if (links > 1)
		log_prog(LOG_INFO, c->reply.meta.process, c->reply.meta.incarnation, top,
			 "[peer %s] GET %s %" PRIu64 "/%" PRIu64 " (a delta: its chain "
			 "of %u links from full image %" PRIu64 ", %" PRIu64 " bytes)",
			 c->peer, c->reply.meta.process, c->reply.meta.incarnation, top,
			 links, c->reply.meta.sequence, c->reply.meta.size);
	else
		log_prog(LOG_INFO, c->reply.meta.process, c->reply.meta.incarnation,
			 c->reply.meta.sequence, "[peer %s] GET %s %" PRIu64 "/%" PRIu64
			 " (%" PRIu64 " bytes, %u chunks)", c->peer, c->reply.meta.process,
			 c->reply.meta.incarnation, c->reply.meta.sequence,
			 c->reply.meta.size, c->reply.meta.chunk_count);
	conn_send(c, PROTO_GET_META, PROTO_F_MORE, req, &c->reply, 0);
	c->state = C_GET;
	server_get_next(c);
	return false; /* reading stays paused during the stream */
}

static void work_get(uv_work_t *w)
{
	struct conn *c = w->data;
	union proto_msg m;

	c->rc = store_get_next(c->get, c->gbufs[c->gturn], &c->gchunk, &c->get_end);
	if (c->rc < 0 || c->get_end)
		return;
	c->gturn ^= 1;
	/* Seal here, off the loop: only this work seals during a GET stream.
	 * A sealed chunk goes as a raw tail from the buffer it was read into
	 * (the frame holds only header, head and tag); a plain one whole. */
	m.chunk = c->gchunk;
	size_t cap = c->gchunk.key_id ? PROTO_HEADER_SIZE + PROTO_CHUNK_HEAD + PROTO_TAG_SIZE
				      : PROTO_MAX_FRAME;
	c->gframe = malloc(cap);
	if (!c->gframe) {
		c->rc = RTCMS_ENOMEM;
		return;
	}
	int rc = proto_session_seal_parts(&c->session, PROTO_CHUNK, PROTO_F_REPLY | PROTO_F_MORE,
					  0, c->get_request, &m, c->gframe, cap, &c->gparts);
	if (rc < 0) {
		c->rc = rc;
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
	if (c->rc == 0 && c->get_end && store_get_next_link(c->get, &c->reply.meta)) {
		/* the next link of a chain: this link's end, its metadata */
		m.get_end.chunk_count = c->gcount;
		m.get_end.repaired = store_get_repaired(c->get);
		c->gcount = 0;
		conn_send(c, PROTO_GET_END, PROTO_F_MORE, c->get_request, &m, 0);
		conn_send(c, PROTO_GET_META, PROTO_F_MORE, c->get_request, &c->reply, 0);
		if (c->pending_writes < 2)
			server_get_next(c);
		return;
	}
	if (c->rc == 0 && c->get_end) {
		m.get_end.chunk_count = c->gcount;
		m.get_end.repaired = store_get_repaired(c->get);
		if (m.get_end.repaired)
			log_prog(LOG_WARN, c->msg.get.process, c->msg.get.incarnation,
				 c->msg.get.sequence, "[peer %s] GET %s: %u bad copies repaired "
				 "from a good mirror", c->peer,
				 c->msg.get.process, m.get_end.repaired);
		store_get_close(c->get);
		c->get = NULL;
		c->state = C_READY;
		metric_counter_inc(&store_stats.gets[STORE_GET_OK]);
		metric_histogram_observe_ns(&store_stats.get_seconds, mono_ns() - c->req_ns);
		conn_send(c, PROTO_GET_END, 0, c->get_request, &m, 0);
		conn_read_start(c);
		return;
	}
	if (c->rc < 0) {
		log_prog(LOG_ERROR, c->msg.get.process, c->msg.get.incarnation,
			 c->msg.get.sequence, "[peer %s] GET %s failed after %u chunks: %s",
			 c->peer, c->msg.get.process, c->gcount, rtcms_strerror(c->rc));
		store_get_close(c->get);
		c->get = NULL;
		c->state = C_READY;
		metric_counter_inc(&store_stats.gets[STORE_GET_FAILED]);
		conn_error(c, c->get_request, c->rc, NULL, 1);
		return;
	}
	c->gcount++;
	metric_counter_add(&store_stats.sent_bytes, c->gchunk.len);
	uint8_t *f = c->gframe;
	c->gframe = NULL;
	conn_write_parts(c, f, &c->gparts);
	if (c->pending_writes < 2)
		server_get_next(c);
	/* else on_write calls get_next when the socket drains */
}

void server_get_next(struct conn *c)
{
	for (int i = 0; i < 2; i++)
		if (!c->gbufs[i])
			c->gbufs[i] = malloc(CHUNKFILE_MAX);
	if (!c->gbufs[0] || !c->gbufs[1]) {
		c->rc = RTCMS_ENOMEM;
		conn_close(c);
		return;
	}
	c->get_reading = 1;
	conn_queue(c, &c->work, c, work_get, after_get);
}
