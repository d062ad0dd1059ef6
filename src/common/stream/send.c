/* send.c - a checkpoint's chunks as frames, and the network relay sink. */
#include "stream_net.h"

#include <stdlib.h>
#include <string.h>

#include "rtcms_error.h"

static int client_recv(void *ctx, struct proto_header *hdr, union proto_msg *msg)
{
	return net_client_recv(ctx, hdr, msg);
}

static int client_send(void *ctx, uint8_t type, uint16_t flags, uint32_t request,
		       const union proto_msg *msg)
{
	if (flags & PROTO_F_REPLY)
		return net_client_reply(ctx, type, flags & ~PROTO_F_REPLY, request, msg);
	return net_client_send(ctx, type, flags, msg, NULL);
}

static void client_peer_error(void *ctx, const struct proto_error *e)
{
	net_client_set_error(ctx, e);
}

struct stream_port stream_port_client(struct net_client *c)
{
	struct stream_port p = { client_recv, client_send, client_peer_error, c,
				 &net_client_session(c)->chunk_mac };
	return p;
}

int stream_out_send(const struct stream_out *o, uint8_t type, bool more,
		    const union proto_msg *m)
{
	if (o->reply)
		return o->port.send(o->port.ctx, type,
				    PROTO_F_REPLY | (more ? PROTO_F_MORE : 0), o->request, m);
	return o->port.send(o->port.ctx, type, 0, 0, m);
}

/* Chunk i of k, its plaintext at data; a keyed k's chunk is sealed into
 * sealed (PROTO_MAX_CHUNK + STREAM_TAG_SIZE bytes) first. */
static int send_chunk(const struct stream_out *o, const struct stream_chunks *k, uint32_t i,
		      const uint8_t *data, uint8_t *sealed)
{
	union proto_msg m;
	uint32_t len;

	memset(&m, 0, sizeof(m));
	stream_chunks_span(k, i, &m.chunk.offset, &len);
	m.chunk.len = len;
	m.chunk.data = data;
	memcpy(m.chunk.hash, k->id[i], STREAM_ID_SIZE);
	if (k->key) {
		int rc = stream_chunk_seal_as(k->key, k->id[i], data, len, sealed, m.chunk.sum);
		if (rc)
			return rc;
		m.chunk.key_id = k->key->id;
		m.chunk.data = sealed;
		if (o->port.mac_key &&
		    (rc = stream_chunk_mac(o->port.mac_key, &m.chunk, m.chunk.mac)) != 0)
			return rc;
	}
	return stream_out_send(o, PROTO_CHUNK, true, &m);
}

/* The buffer a keyed k's chunks are sealed into (NULL for plain ones). */
static int sealing_buffer(const struct stream_chunks *k, uint8_t **sealed)
{
	*sealed = NULL;
	if (!k->key)
		return 0;
	*sealed = malloc(PROTO_MAX_CHUNK + STREAM_TAG_SIZE);
	return *sealed ? 0 : RTCMS_ENOMEM;
}

int stream_send_chunks(const struct stream_out *o, const struct stream_chunks *k,
		       const uint8_t *bytes)
{
	uint8_t *sealed;
	int rc = sealing_buffer(k, &sealed);

	for (uint32_t i = 0; rc == 0 && i < k->count; i++)
		rc = send_chunk(o, k, i, bytes + (uint64_t)i * k->chunk_size, sealed);
	free(sealed);
	return rc;
}

int stream_send_read(const struct stream_out *o, const struct stream_chunks *k,
		     stream_read_fn read, void *ctx, uint8_t *buf)
{
	uint8_t *sealed;
	int rc = sealing_buffer(k, &sealed);

	for (uint32_t i = 0; rc == 0 && i < k->count; i++) {
		uint64_t off;
		uint32_t len;
		stream_chunks_span(k, i, &off, &len);
		rc = read(ctx, off, buf, len);
		if (rc == 0)
			rc = send_chunk(o, k, i, buf, sealed);
	}
	free(sealed);
	return rc;
}

/* An end frame; more: a chain's link, the next one follows. */
static int send_end(const struct stream_out *o, uint8_t end_type, uint32_t count, bool more)
{
	union proto_msg m;

	memset(&m, 0, sizeof(m));
	if (end_type == PROTO_GET_END)
		m.get_end.chunk_count = count;
	else
		m.put_end.chunk_count = count;
	if (o->reply)
		return o->port.send(o->port.ctx, end_type,
				    PROTO_F_REPLY | (more ? PROTO_F_MORE : 0), o->request, &m);
	return o->port.send(o->port.ctx, end_type, more ? PROTO_F_MORE : 0, 0, &m);
}

int stream_send_end(const struct stream_out *o, uint8_t end_type, uint32_t count)
{
	return send_end(o, end_type, count, false);
}

int stream_send_link_end(const struct stream_out *o, uint8_t end_type, uint32_t count)
{
	return send_end(o, end_type, count, true);
}

/* ---- network relay ------------------------------------------------------- */

#define RELAY(s) ((struct stream_relay *)(void *)(s))

static int relay_begin(struct stream_sink *s, const struct proto_ckpt_meta *meta)
{
	struct stream_relay *r = RELAY(s);

	stream_relay_clear(r);
	r->begun = false;
	r->count = 0;
	return r->begin_type ? stream_meta_keep(&r->meta, &r->spec, meta) : 0;
}

/* The begin frame, once. */
static int relay_open(struct stream_relay *r)
{
	union proto_msg m;
	int rc = 0;

	if (r->begun)
		return 0;
	r->begun = true;
	if (r->begin_type) {
		m.meta = r->meta;
		rc = stream_out_send(&r->out, r->begin_type, true, &m);
		stream_meta_drop(&r->meta, &r->spec);
	}
	return rc;
}

static int relay_chunk(struct stream_sink *s, const struct proto_chunk *chunk)
{
	struct stream_relay *r = RELAY(s);
	union proto_msg m;
	int rc = relay_open(r);

	if (rc)
		return rc;
	m.chunk = *chunk;
	if ((rc = stream_out_send(&r->out, PROTO_CHUNK, true, &m)) != 0)
		return rc;
	r->count++;
	return 0;
}

/* The end frame (with more: of a chain's link, the next begin sends the
 * next link's metadata frame). */
static int relay_close(struct stream_sink *s, bool more)
{
	struct stream_relay *r = RELAY(s);
	int rc = relay_open(r);

	if (rc)
		return rc;
	return send_end(&r->out, r->end_type, r->count, more);
}

static int relay_end(struct stream_sink *s, uint32_t count)
{
	(void)count;
	return relay_close(s, false);
}

static int relay_link(struct stream_sink *s, uint32_t count)
{
	(void)count;
	return relay_close(s, true);
}

static void relay_abort(struct stream_sink *s, int rc)
{
	(void)rc;
	stream_relay_clear(RELAY(s));
}

static const struct stream_sink_ops relay_ops = { relay_begin, relay_chunk, relay_end,
						  relay_abort, relay_link };

void stream_relay_init(struct stream_relay *r, const struct stream_out *out,
		       uint8_t begin_type, uint8_t end_type)
{
	memset(r, 0, sizeof(*r));
	r->sink.ops = &relay_ops;
	r->out = *out;
	r->begin_type = begin_type;
	r->end_type = end_type;
}

void stream_relay_clear(struct stream_relay *r)
{
	if (r && r->spec)
		stream_meta_drop(&r->meta, &r->spec);
}
