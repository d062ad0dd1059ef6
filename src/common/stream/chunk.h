/*
 * chunk.h - what a chunk of a checkpoint stream is, and how a hop checks
 * one: the only place that knows. Today a chunk is its bytes plus their
 * BLAKE2b-256 (its id, proto_chunk_hash), computed where the chunk is cut
 * and checked at every hop; the image hash binds the ids in order.
 * Everything that makes or checks a chunk's id calls these two functions,
 * so a different chunk (sealed once at its source, checked by a checksum)
 * changes this file and chunk.c alone.
 */
#ifndef RTCMS_STREAM_CHUNK_H
#define RTCMS_STREAM_CHUNK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proto/msg.h"

#define STREAM_ID_SIZE PROTO_HASH_SIZE

/* The id of a chunk of len bytes (at its source). */
void stream_chunk_id(const uint8_t *data, size_t len, uint8_t id[STREAM_ID_SIZE]);

/* Whether chunk's data is what its id says (at a hop). */
bool stream_chunk_intact(const struct proto_chunk *chunk);

#endif
