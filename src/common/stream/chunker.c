/* chunker.c - bytes to chunks with their ids and the image hash. */
#include "stream.h"

#include <stdlib.h>
#include <string.h>

#include "rtcms_error.h"

void stream_chunks_span(const struct stream_chunks *k, uint32_t i, uint64_t *off,
			uint32_t *len)
{
	*off = (uint64_t)i * k->chunk_size;
	uint64_t left = k->size - *off;
	*len = left < k->chunk_size ? (uint32_t)left : k->chunk_size;
}

/* Room for the ids of size bytes in chunks of chunk_size; sets size,
 * chunk_size and count 0. */
static int chunks_prepare(struct stream_chunks *k, uint64_t size, uint32_t chunk_size)
{
	k->count = 0;
	k->size = 0;
	if (chunk_size == 0 || chunk_size > PROTO_MAX_CHUNK)
		return RTCMS_EINVAL;
	uint64_t n = (size + chunk_size - 1) / chunk_size;
	if (n > UINT32_MAX)
		return RTCMS_ETOOBIG;
	if (n > k->cap || !k->id) {
		free(k->id);
		k->cap = 0;
		k->id = malloc((size_t)(n ? n : 1) * STREAM_ID_SIZE);
		if (!k->id)
			return RTCMS_ENOMEM;
		k->cap = (size_t)n;
	}
	k->size = size;
	k->chunk_size = chunk_size;
	return 0;
}

/* Chunk i (its data at data) into the list and the image hash. */
static void chunks_add(struct stream_chunks *k, struct proto_image_hash *ih,
		       const uint8_t *data)
{
	uint64_t off;
	uint32_t len;

	stream_chunks_span(k, k->count, &off, &len);
	if (k->key)
		stream_chunk_keyed_id(k->key, data, len, k->id[k->count]);
	else
		stream_chunk_id(data, len, k->id[k->count]);
	proto_image_hash_update(ih, off, len, k->id[k->count]);
	k->count++;
}

int stream_chunks_of(struct stream_chunks *k, const uint8_t *bytes, uint64_t size,
		     uint32_t chunk_size)
{
	struct proto_image_hash ih;
	int rc = chunks_prepare(k, size, chunk_size);

	if (rc)
		return rc;
	proto_image_hash_init(&ih, size);
	for (uint64_t off = 0; off < size; off += chunk_size)
		chunks_add(k, &ih, bytes + off);
	proto_image_hash_final(&ih, k->image_hash);
	return 0;
}

int stream_chunks_read(struct stream_chunks *k, uint64_t size, uint32_t chunk_size,
		       stream_read_fn read, void *ctx, uint8_t *buf)
{
	struct proto_image_hash ih;
	int rc = chunks_prepare(k, size, chunk_size);

	if (rc)
		return rc;
	proto_image_hash_init(&ih, size);
	for (uint64_t off = 0; off < size; off += chunk_size) {
		uint64_t left = size - off;
		rc = read(ctx, off, buf, left < chunk_size ? (size_t)left : chunk_size);
		if (rc) {
			k->count = 0;
			k->size = 0;
			return rc;
		}
		chunks_add(k, &ih, buf);
	}
	proto_image_hash_final(&ih, k->image_hash);
	return 0;
}

void stream_chunks_meta(const struct stream_chunks *k, struct proto_ckpt_meta *meta)
{
	meta->size = k->size;
	meta->chunk_count = k->count;
	memcpy(meta->hash, k->image_hash, PROTO_HASH_SIZE);
}

void stream_chunks_clear(struct stream_chunks *k)
{
	if (!k)
		return;
	const struct datakey *key = k->key;
	free(k->id);
	memset(k, 0, sizeof(*k));
	k->key = key;
}
