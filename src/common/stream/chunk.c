/* chunk.c - a chunk's id and its check (see chunk.h). */
#include "chunk.h"

#include <sodium.h>

void stream_chunk_id(const uint8_t *data, size_t len, uint8_t id[STREAM_ID_SIZE])
{
	proto_chunk_hash(data, len, id);
}

bool stream_chunk_intact(const struct proto_chunk *chunk)
{
	uint8_t id[STREAM_ID_SIZE];

	stream_chunk_id(chunk->data, chunk->len, id);
	return sodium_memcmp(id, chunk->hash, STREAM_ID_SIZE) == 0;
}
