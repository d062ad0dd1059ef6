/* store_client.c - the store's PUT and GET (and an agent's PULL) over a
 * connection, verified by the stream module; the store writer sink. */
#include "store_client.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "rtcms_error.h"

int store_client_read_buf(void *ctx, uint64_t off, uint8_t *buf, size_t len)
{
	const struct store_client_buf *b = ctx;
	if (off > b->len || len > b->len - off)
		return RTCMS_EINVAL;
	memcpy(buf, b->data + off, len);
	return 0;
}

int store_client_read_fd(void *ctx, uint64_t off, uint8_t *buf, size_t len)
{
	int fd = *(int *)ctx;
	while (len > 0) {
		ssize_t n = pread(fd, buf, len, (off_t)off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return RTCMS_EIO;
		buf += n;
		off += (uint64_t)n;
		len -= (size_t)n;
	}
	return 0;
}

/* The code of an ERROR frame (kept for net_client_last_error()). */
static int peer_error(struct net_client *c, const struct proto_error *e)
{
	net_client_set_error(c, e);
	return e->code < 0 ? e->code : RTCMS_EPROTO;
}

/* The store's answer to PUT_BEGIN: PUT_READY (to the request want, if
 * given), PUT_ACK (already stored) or ERROR. */
static int put_answer(struct net_client *c, const uint32_t *want,
		      enum store_put_start *start, struct proto_put_ack *ack)
{
	struct proto_header h;
	union proto_msg r;
	int rc = net_client_recv(c, &h, &r);

	if (rc)
		return rc;
	switch (h.type) {
	case PROTO_PUT_READY:
		if (want && h.request != *want)
			return RTCMS_EPROTO;
		*start = STORE_PUT_READY;
		return 0;
	case PROTO_PUT_ACK: /* already stored: idempotent */
		*ack = r.put_ack;
		*start = STORE_PUT_STORED;
		return 0;
	case PROTO_ERROR:
		return peer_error(c, &r.error);
	default:
		return RTCMS_EPROTO;
	}
}

/* After the chunks and PUT_END (sent: rc 0, or their error): the store's
 * outcome. A streamed PUT may see its PUT_READY first. */
static int put_outcome(struct net_client *c, bool streamed, int rc,
		       struct proto_put_ack *ack)
{
	struct proto_header h;
	union proto_msg r;
	int rrc = net_client_recv(c, &h, &r);

	if (streamed && rrc == 0 && h.type == PROTO_PUT_READY)
		rrc = net_client_recv(c, &h, &r); /* then the outcome */
	if (rrc == 0 && h.type == PROTO_ERROR)
		return peer_error(c, &r.error);
	if (rrc)
		return rc ? rc : rrc;
	if (rc)
		return rc;
	if (h.type != PROTO_PUT_ACK)
		return RTCMS_EPROTO;
	*ack = r.put_ack;
	return 0;
}

int store_client_put(struct net_client *c, const struct proto_ckpt_meta *meta,
		     uint32_t chunk_size, store_client_read_fn read, void *ctx,
		     struct proto_put_ack *ack)
{
	return store_client_put_sealed(c, meta, chunk_size, NULL, read, ctx, ack);
}

int store_client_put_sealed(struct net_client *c, const struct proto_ckpt_meta *meta,
			    uint32_t chunk_size, const struct datakey *key,
			    store_client_read_fn read, void *ctx, struct proto_put_ack *ack)
{
	struct stream_chunks k = { .key = key };
	struct stream_out out = { stream_port_client(c), false, 0 };
	enum store_put_start start;
	union proto_msg m;
	uint8_t *buf;
	int rc;

	if (chunk_size == 0 || chunk_size > PROTO_MAX_CHUNK)
		return RTCMS_EINVAL;
	if (!(buf = malloc(chunk_size)))
		return RTCMS_ENOMEM;
	/* pass 1: the chunk ids and the image hash (each chunk hashed once) */
	rc = stream_chunks_read(&k, meta->size, chunk_size, read, ctx, buf);
	if (rc)
		goto out;
	m.meta = *meta;
	stream_chunks_meta(&k, &m.meta);
	/* Small checkpoints are streamed without waiting for PUT_READY (one
	 * round trip less); if the store answers PUT_BEGIN otherwise, it
	 * drops the data that follows. */
	bool streamed = meta->size <= STORE_CLIENT_STREAM_MAX;
	rc = net_client_send(c, PROTO_PUT_BEGIN, streamed ? PROTO_F_STREAM : 0, &m, NULL);
	if (rc)
		goto out;
	if (!streamed && ((rc = put_answer(c, NULL, &start, ack)) != 0 ||
			  start == STORE_PUT_STORED))
		goto out;
	/* pass 2: the chunks; the store answers only at the end (or with an
	 * ERROR, which we see when we read the reply: it may have closed) */
	rc = stream_send_read(&out, &k, read, ctx, buf);
	if (rc == 0)
		rc = stream_send_end(&out, PROTO_PUT_END, k.count);
	rc = put_outcome(c, streamed, rc, ack);
out:
	free(buf);
	stream_chunks_clear(&k);
	return rc;
}

/* The store writer's three steps: PUT_BEGIN and its answer (*start; with
 * STORE_PUT_STORED *ack is the store's), or, streamed, PUT_BEGIN alone
 * (the answer comes at the end); one CHUNK; PUT_END and the durable
 * PUT_ACK. Each 0 or an error (the store's ERROR code, kept for
 * net_client_last_error()). */
static int put_start(struct net_client *c, const struct proto_ckpt_meta *meta,
		     bool streamed, enum store_put_start *start, struct proto_put_ack *ack)
{
	union proto_msg m;
	uint32_t id;

	m.meta = *meta;
	*start = STORE_PUT_READY;
	int rc = net_client_send(c, PROTO_PUT_BEGIN, streamed ? PROTO_F_STREAM : 0, &m, &id);
	return rc || streamed ? rc : put_answer(c, &id, start, ack);
}

static int put_chunk(struct net_client *c, const struct proto_chunk *chunk)
{
	union proto_msg m;
	m.chunk = *chunk;
	return net_client_send(c, PROTO_CHUNK, 0, &m, NULL);
}

static int put_finish(struct net_client *c, uint32_t chunk_count, bool streamed,
		      struct proto_put_ack *ack)
{
	union proto_msg m;

	m.put_end.chunk_count = chunk_count;
	int rc = net_client_send(c, PROTO_PUT_END, 0, &m, NULL);
	/* the ack answers PUT_BEGIN's request */
	return rc ? rc : put_outcome(c, streamed, 0, ack);
}

/* ---- GET and PULL ------------------------------------------------------- */

int store_client_fetch_to(struct net_client *c, const struct store_client_query *q,
			  struct proto_ckpt_meta *meta_out, uint8_t *spec_copy,
			  struct stream_sink *sink, struct stream_result *res)
{
	struct proto_header hdr;
	union proto_msg m, reply;
	int rc;

	memset(res, 0, sizeof(*res));
	memset(&m, 0, sizeof(m));
	hdr.type = 0;
	if (strlen(q->process) > PROTO_ID_MAX)
		return RTCMS_EINVAL;
	strcpy(m.get.process, q->process);
	m.get.incarnation = q->incarnation;
	m.get.sequence = q->sequence;
	m.get.meta_only = q->meta_only ? 1 : 0;
	m.get.base = q->base;
	rc = net_client_call(c, q->type, &m, PROTO_GET_META, &hdr, &reply);
	if (rc) {
		res->fault = hdr.type == PROTO_ERROR ? STREAM_FAULT_PEER : STREAM_FAULT_CONN;
		return rc;
	}
	*meta_out = reply.meta;
	if (spec_copy) {
		memcpy(spec_copy, reply.meta.spec, reply.meta.spec_len);
		meta_out->spec = spec_copy;
	}
	if (q->meta_only)
		return 0;
	struct stream_in in = { .port = stream_port_client(c), .end_type = PROTO_GET_END,
				.keys = q->keys,
				.flags = q->relay ? STREAM_VERIFY_RELAY : 0 };
	rc = stream_recv_chain(&in, PROTO_GET_META, meta_out, sink, res);
	if (rc == 0 && spec_copy && meta_out->spec != spec_copy) {
		/* the last link's metadata: the spec is the same */
		memcpy(spec_copy, meta_out->spec, meta_out->spec_len);
		meta_out->spec = spec_copy;
	}
	return rc;
}

/* A sink that hands each chunk to a write callback. */
struct write_sink {
	struct stream_sink sink;
	store_client_write_fn write;
	void *ctx;
};

static int write_chunk(struct stream_sink *s, const struct proto_chunk *chunk)
{
	struct write_sink *w = (struct write_sink *)(void *)s;
	return w->write ? w->write(w->ctx, chunk) : 0;
}

static const struct stream_sink_ops write_ops = { NULL, write_chunk, NULL, NULL, NULL };

static int fetch(struct net_client *c, const struct store_client_query *q,
		 struct proto_ckpt_meta *meta_out, uint8_t *spec_copy,
		 store_client_write_fn write, void *ctx, struct proto_get_end *end)
{
	struct write_sink w = { { &write_ops, false }, write, ctx };
	struct stream_result res;

	int rc = store_client_fetch_to(c, q, meta_out, spec_copy, &w.sink, &res);
	if (rc == 0 && end)
		*end = res.get_end;
	return rc;
}

int store_client_get(struct net_client *c, const char *process,
		     uint64_t incarnation, uint64_t sequence, int meta_only,
		     struct proto_ckpt_meta *meta_out, store_client_write_fn write,
		     void *ctx, struct proto_get_end *end)
{
	return store_client_fetch(c, PROTO_GET, process, incarnation, sequence,
				  meta_only, meta_out, NULL, write, ctx, end);
}

int store_client_fetch(struct net_client *c, uint8_t type, const char *process,
		       uint64_t incarnation, uint64_t sequence, int meta_only,
		       struct proto_ckpt_meta *meta_out, uint8_t *spec_copy,
		       store_client_write_fn write, void *ctx,
		       struct proto_get_end *end)
{
	struct store_client_query q = { type, process, incarnation, sequence, 0,
					meta_only != 0, NULL, false };
	return fetch(c, &q, meta_out, spec_copy, write, ctx, end);
}

/* ---- the store writer sink ---------------------------------------------- */

#define STORE_SINK(s) ((struct store_client_sink *)(void *)(s))

static int sink_begin(struct stream_sink *s, const struct proto_ckpt_meta *meta)
{
	struct store_client_sink *w = STORE_SINK(s);

	store_client_sink_clear(w);
	w->begun = false;
	w->existed = false;
	w->rc = 0;
	w->count = 0;
	return stream_meta_keep(&w->meta, &w->spec, meta);
}

/* PUT_BEGIN once, with the kept metadata. */
static int sink_open(struct store_client_sink *w)
{
	enum store_put_start start;

	if (w->begun)
		return 0;
	w->begun = true;
	/* a small checkpoint goes right behind PUT_BEGIN, without waiting
	 * for PUT_READY (one round trip less); whether the store held it
	 * already is known at the end then */
	w->streamed = w->meta.size > 0 && w->meta.size <= STORE_CLIENT_STREAM_MAX;
	int rc = put_start(w->c, &w->meta, w->streamed, &start, &w->ack);
	stream_meta_drop(&w->meta, &w->spec);
	if (rc)
		return w->rc = rc;
	if (start == STORE_PUT_STORED) {
		w->existed = true;
		w->sink.done = true; /* already durable: read no further */
	}
	return 0;
}

static int sink_chunk(struct stream_sink *s, const struct proto_chunk *chunk)
{
	struct store_client_sink *w = STORE_SINK(s);
	int rc = sink_open(w);

	if (rc || w->existed)
		return rc;
	if ((rc = put_chunk(w->c, chunk)) != 0)
		return w->rc = rc;
	w->count++;
	return 0;
}

static int sink_end(struct stream_sink *s, uint32_t count)
{
	struct store_client_sink *w = STORE_SINK(s);
	int rc = sink_open(w);

	(void)count;
	if (rc || w->existed)
		return rc;
	if ((rc = put_finish(w->c, w->count, w->streamed, &w->ack)) != 0)
		return w->rc = rc;
	w->existed = w->ack.existed != 0;
	return 0;
}

static void sink_abort(struct stream_sink *s, int rc)
{
	(void)rc;
	store_client_sink_clear(STORE_SINK(s));
}

static const struct stream_sink_ops store_sink_ops = { sink_begin, sink_chunk, sink_end,
						       sink_abort, NULL };

void store_client_sink_init(struct store_client_sink *s, struct net_client *c)
{
	memset(s, 0, sizeof(*s));
	s->sink.ops = &store_sink_ops;
	s->c = c;
}

void store_client_sink_clear(struct store_client_sink *s)
{
	if (s && s->spec)
		stream_meta_drop(&s->meta, &s->spec);
}
