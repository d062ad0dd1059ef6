/* verify.c - a stream of chunk frames checked as it arrives (stream.h). */
#include "stream.h"

#include <inttypes.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "rtcms_error.h"

/* Record the stream's first failure and its reason; returns rc. */
__attribute__((format(printf, 3, 4)))
static int fail(struct stream_verifier *v, int rc, const char *fmt, ...)
{
	va_list ap;

	if (v->failed)
		return v->failed;
	va_start(ap, fmt);
	vsnprintf(v->why, sizeof(v->why), fmt, ap);
	va_end(ap);
	v->failed = rc;
	return rc;
}

int stream_verifier_begin(struct stream_verifier *v, const struct proto_ckpt_meta *meta,
			  uint64_t max_size, unsigned flags)
{
	memset(v, 0, offsetof(struct stream_verifier, state));
	v->size = meta->size;
	v->expect = meta->chunk_count;
	memcpy(v->hash, meta->hash, PROTO_HASH_SIZE);
	memcpy(v->state_hash, meta->state_hash, PROTO_HASH_SIZE);
	proto_image_hash_init(&v->ih, meta->size);
	v->check_state = (flags & STREAM_VERIFY_STATE) && meta->base == 0 &&
			 !sodium_is_zero(meta->state_hash, PROTO_HASH_SIZE);
	v->relay = (flags & STREAM_VERIFY_RELAY) != 0;
	if (v->check_state)
		state_hasher_init(&v->state, meta->size);
	if (max_size && meta->size > max_size)
		return fail(v, RTCMS_ETOOBIG, "checkpoint of %" PRIu64 " bytes is over the "
			    "limit of %" PRIu64, meta->size, max_size);
	return 0;
}

int stream_verifier_place(struct stream_verifier *v, const struct proto_chunk *chunk)
{
	if (v->failed)
		return v->failed;
	if (v->count >= v->expect)
		return fail(v, RTCMS_EPROTO, "chunk at %" PRIu64 " beyond the %" PRIu32
			    " announced", chunk->offset, v->expect);
	if (chunk->offset != v->next_offset || chunk->len == 0 ||
	    chunk->len > PROTO_MAX_CHUNK || chunk->len > v->size - chunk->offset ||
	    proto_image_hash_update(&v->ih, chunk->offset, chunk->len, chunk->hash) != 0)
		return fail(v, RTCMS_EPROTO, "chunk at %" PRIu64 " out of order or bounds",
			    chunk->offset);
	v->next_offset += chunk->len;
	v->count++;
	return 0;
}

int stream_verifier_chunk(struct stream_verifier *v, const struct proto_chunk *chunk)
{
	if (v->failed)
		return v->failed;
	bool passed_on = v->relay && chunk->key_id && !chunk->opened;
	if (!passed_on && !stream_chunk_intact(chunk))
		return fail(v, RTCMS_ECORRUPT, "chunk at %" PRIu64 " does not match its %s",
			    chunk->offset, chunk->key_id ? "checksum" : "hash");
	int rc = stream_verifier_place(v, chunk);
	if (rc)
		return rc;
	if (v->check_state && chunk->key_id && !chunk->opened)
		v->check_state = false; /* sealed: this hop cannot see the state */
	if (v->check_state && state_hasher_update(&v->state, chunk->data, chunk->len) != 0)
		return fail(v, RTCMS_ECORRUPT, "the image does not match its state hash");
	return 0;
}

int stream_verifier_end(struct stream_verifier *v, uint32_t end_count)
{
	uint8_t h[PROTO_HASH_SIZE];

	if (v->failed)
		return v->failed;
	if (end_count != v->count || v->count != v->expect || v->next_offset != v->size ||
	    proto_image_hash_final(&v->ih, h) != 0)
		return fail(v, RTCMS_EPROTO, "the stream ended after %" PRIu32 " of %" PRIu32
			    " chunks (%" PRIu32 " said at its end)", v->count, v->expect,
			    end_count);
	if (sodium_memcmp(h, v->hash, PROTO_HASH_SIZE) != 0)
		return fail(v, RTCMS_ECORRUPT, "the image does not match its hash");
	if (v->check_state && (state_hasher_final(&v->state, h) != 0 ||
			       sodium_memcmp(h, v->state_hash, PROTO_HASH_SIZE) != 0))
		return fail(v, RTCMS_ECORRUPT, "the image does not match its state hash");
	v->failed = RTCMS_ESTATE; /* used up: nothing more belongs to it */
	snprintf(v->why, sizeof(v->why), "the stream has ended");
	return 0;
}

int stream_verifier_feed(struct stream_verifier *v, uint8_t type, const union proto_msg *m,
			 uint8_t end_type, enum stream_step *step)
{
	*step = STREAM_MORE;
	if (type == PROTO_CHUNK)
		return stream_verifier_chunk(v, &m->chunk);
	if (type != end_type)
		return fail(v, RTCMS_EPROTO, "expected CHUNK or %s", proto_type_name(end_type));
	int rc = stream_verifier_end(v, end_type == PROTO_PUT_END ? m->put_end.chunk_count
								   : m->get_end.chunk_count);
	if (rc == 0)
		*step = STREAM_DONE;
	return rc;
}

uint32_t stream_verifier_count(const struct stream_verifier *v)
{
	return v->count;
}

const char *stream_verifier_why(const struct stream_verifier *v)
{
	return v->why;
}
