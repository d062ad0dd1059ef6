/* store_client.c - streaming PUT/GET with end-to-end hash checks. */
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

static uint32_t chunk_len(uint64_t size, uint64_t off, uint32_t chunk_size)
{
	uint64_t left = size - off;
	return left < chunk_size ? (uint32_t)left : chunk_size;
}

int store_client_put(struct net_client *c, const struct proto_ckpt_meta *meta,
		     uint32_t chunk_size, store_client_read_fn read, void *ctx,
		     struct proto_put_ack *ack)
{
	struct proto_image_hash ih;
	struct proto_header hdr;
	union proto_msg m, reply;
	uint8_t *buf;
	uint8_t (*hashes)[PROTO_HASH_SIZE] = NULL;
	uint32_t count = 0;
	int rc;

	if (chunk_size == 0 || chunk_size > PROTO_MAX_CHUNK)
		return RTCMS_EINVAL;
	uint64_t nchunks = (meta->size + chunk_size - 1) / chunk_size;
	if (nchunks > UINT32_MAX)
		return RTCMS_ETOOBIG;
	buf = malloc(chunk_size);
	/* chunk hashes of pass 1, reused in pass 2: each chunk hashed once */
	hashes = malloc((size_t)(nchunks ? nchunks : 1) * PROTO_HASH_SIZE);
	if (!buf || !hashes) {
		free(buf);
		free(hashes);
		return RTCMS_ENOMEM;
	}

	/* Pass 1: chunk hashes -> image hash. */
	m.meta = *meta;
	proto_image_hash_init(&ih, meta->size);
	for (uint64_t off = 0; off < meta->size; off += chunk_size) {
		uint32_t len = chunk_len(meta->size, off, chunk_size);
		rc = read(ctx, off, buf, len);
		if (rc)
			goto out;
		proto_chunk_hash(buf, len, hashes[count]);
		rc = proto_image_hash_update(&ih, off, len, hashes[count]);
		if (rc)
			goto out;
		count++;
	}
	rc = proto_image_hash_final(&ih, m.meta.hash);
	if (rc)
		goto out;
	m.meta.chunk_count = count;

	/* Small checkpoints are streamed without waiting for PUT_READY (one
	 * round trip less); if the store answers PUT_BEGIN otherwise, it
	 * drops the data that follows. */
	int stream = meta->size <= STORE_CLIENT_STREAM_MAX;
	rc = net_client_send(c, PROTO_PUT_BEGIN, stream ? PROTO_F_STREAM : 0,
			     &m, NULL);
	if (rc)
		goto out;
	if (!stream) {
		rc = net_client_recv(c, &hdr, &reply);
		if (rc)
			goto out;
		if (hdr.type == PROTO_PUT_ACK) { /* already stored: idempotent */
			*ack = reply.put_ack;
			goto out;
		}
		if (hdr.type == PROTO_ERROR) {
			net_client_set_error(c, &reply.error);
			rc = reply.error.code;
			goto out;
		}
		if (hdr.type != PROTO_PUT_READY) {
			rc = RTCMS_EPROTO;
			goto out;
		}
	}

	/* Pass 2: stream the chunks; the store answers only at the end
	 * (or with an ERROR, which we see when we read the reply). */
	uint32_t i = 0;
	for (uint64_t off = 0; off < meta->size; off += chunk_size, i++) {
		uint32_t len = chunk_len(meta->size, off, chunk_size);
		rc = read(ctx, off, buf, len);
		if (rc)
			goto out;
		m.chunk.offset = off;
		m.chunk.data = buf;
		m.chunk.len = len;
		/* The reader must return the same bytes twice; if it did not,
		 * the store refuses the chunk (ECORRUPT), never stores it. */
		memcpy(m.chunk.hash, hashes[i], PROTO_HASH_SIZE);
		rc = net_client_send(c, PROTO_CHUNK, 0, &m, NULL);
		if (rc)
			break; /* the store may have closed after an ERROR */
	}
	if (rc == 0) {
		m.put_end.chunk_count = count;
		rc = net_client_send(c, PROTO_PUT_END, 0, &m, NULL);
	}
	int rrc = net_client_recv(c, &hdr, &reply);
	if (stream && rrc == 0 && hdr.type == PROTO_PUT_READY)
		rrc = net_client_recv(c, &hdr, &reply); /* then the outcome */
	if (rrc == 0 && hdr.type == PROTO_ERROR) {
		net_client_set_error(c, &reply.error);
		rc = reply.error.code;
	} else if (rrc) {
		rc = rc ? rc : rrc;
	} else if (rc == 0 && hdr.type == PROTO_PUT_ACK) {
		*ack = reply.put_ack;
	} else if (rc == 0) {
		rc = RTCMS_EPROTO;
	}
out:
	free(buf);
	free(hashes);
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

int store_client_put_begin(struct net_client *c, const struct proto_ckpt_meta *meta,
			   struct proto_put_ack *ack)
{
	struct proto_header hdr;
	union proto_msg m, reply;

	m.meta = *meta;
	int rc = net_client_call(c, PROTO_PUT_BEGIN, &m, PROTO_PUT_READY, &hdr, &reply);
	if (rc == RTCMS_EPROTO && hdr.type == PROTO_PUT_ACK) {
		*ack = reply.put_ack; /* already stored: idempotent */
		return 1;
	}
	return rc;
}

int store_client_put_chunk(struct net_client *c, const struct proto_chunk *chunk)
{
	union proto_msg m;
	m.chunk = *chunk;
	return net_client_send(c, PROTO_CHUNK, 0, &m, NULL);
}

int store_client_put_end(struct net_client *c, uint32_t chunk_count,
			 struct proto_put_ack *ack)
{
	struct proto_header hdr;
	union proto_msg m, reply;

	m.put_end.chunk_count = chunk_count;
	int rc = net_client_call(c, PROTO_PUT_END, &m, PROTO_PUT_ACK, &hdr, &reply);
	if (rc == RTCMS_EPROTO && hdr.type == PROTO_PUT_ACK)
		rc = 0; /* the ack answers PUT_BEGIN's request id */
	if (rc == 0)
		*ack = reply.put_ack;
	return rc;
}

static int fetch(struct net_client *c, uint8_t type, const char *process,
		 uint64_t incarnation, uint64_t sequence, uint64_t base, int meta_only,
		 struct proto_ckpt_meta *meta_out, uint8_t *spec_copy,
		 store_client_write_fn write, void *ctx, struct proto_get_end *end);

int store_client_fetch(struct net_client *c, uint8_t type, const char *process,
		       uint64_t incarnation, uint64_t sequence, int meta_only,
		       struct proto_ckpt_meta *meta_out, uint8_t *spec_copy,
		       store_client_write_fn write, void *ctx,
		       struct proto_get_end *end)
{
	return fetch(c, type, process, incarnation, sequence, 0, meta_only, meta_out,
		     spec_copy, write, ctx, end);
}

int store_client_pull(struct net_client *c, const char *process, uint64_t incarnation,
		      uint64_t base, struct proto_ckpt_meta *meta_out, uint8_t *spec_copy,
		      store_client_write_fn write, void *ctx)
{
	return fetch(c, PROTO_PULL, process, incarnation, 0, base, 0, meta_out, spec_copy,
		     write, ctx, NULL);
}

static int fetch(struct net_client *c, uint8_t type, const char *process,
		 uint64_t incarnation, uint64_t sequence, uint64_t base, int meta_only,
		 struct proto_ckpt_meta *meta_out, uint8_t *spec_copy,
		 store_client_write_fn write, void *ctx, struct proto_get_end *end)
{
	struct proto_image_hash ih;
	struct proto_header hdr;
	union proto_msg m, reply;
	uint32_t count = 0;
	int rc;

	memset(&m, 0, sizeof(m));
	if (strlen(process) > PROTO_ID_MAX)
		return RTCMS_EINVAL;
	strcpy(m.get.process, process);
	m.get.incarnation = incarnation;
	m.get.sequence = sequence;
	m.get.meta_only = meta_only ? 1 : 0;
	m.get.base = base;
	rc = net_client_call(c, type, &m, PROTO_GET_META, &hdr, &reply);
	if (rc)
		return rc;
	*meta_out = reply.meta;
	if (spec_copy) {
		memcpy(spec_copy, reply.meta.spec, reply.meta.spec_len);
		meta_out->spec = spec_copy;
	}
	if (meta_only)
		return 0;
	proto_image_hash_init(&ih, meta_out->size);
	for (;;) {
		rc = net_client_recv(c, &hdr, &reply);
		if (rc)
			return rc;
		if (hdr.type == PROTO_ERROR) {
			net_client_set_error(c, &reply.error);
			return reply.error.code;
		}
		if (hdr.type == PROTO_GET_END)
			break;
		if (hdr.type != PROTO_CHUNK)
			return RTCMS_EPROTO;
		uint8_t h[PROTO_HASH_SIZE];
		proto_chunk_hash(reply.chunk.data, reply.chunk.len, h);
		if (sodium_memcmp(h, reply.chunk.hash, sizeof(h)) != 0)
			return RTCMS_ECORRUPT;
		rc = proto_image_hash_update(&ih, reply.chunk.offset,
					     reply.chunk.len, h);
		if (rc)
			return rc;
		if (write && (rc = write(ctx, &reply.chunk)) != 0)
			return rc;
		count++;
	}
	if (reply.get_end.chunk_count != count || count != meta_out->chunk_count)
		return RTCMS_EPROTO;
	uint8_t img[PROTO_HASH_SIZE];
	rc = proto_image_hash_final(&ih, img);
	if (rc)
		return rc;
	if (sodium_memcmp(img, meta_out->hash, sizeof(img)) != 0)
		return RTCMS_ECORRUPT;
	if (end)
		*end = reply.get_end;
	return 0;
}
