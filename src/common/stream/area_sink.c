/* area_sink.c - a verified full image, sent whole or as a chain (its root
 * and the deltas applied in order), assembled and installed into a
 * checkpoint area (the restore of a program). */
#include "stream.h"

#include <inttypes.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "area/image.h"
#include "rtcms_error.h"

#define AREA_SINK(s) ((struct stream_area_sink *)(void *)(s))

static int refuse(struct stream_area_sink *a, int rc, const char *fmt, uint64_t v)
{
	snprintf(a->why, sizeof(a->why), fmt, v);
	return rc;
}

static void drop_delta(struct stream_area_sink *a)
{
	free(a->delta);
	a->delta = NULL;
	a->delta_len = 0;
}

/* Room for the full image a link gives: its size (a full image) or its
 * full_size (a delta, applied in place). */
static int room(struct stream_area_sink *a, uint64_t need)
{
	if (need > a->max || need > SIZE_MAX)
		return refuse(a, RTCMS_ETOOBIG, "an image of %" PRIu64 " bytes is over "
			      "the limit", need);
	if (need <= a->cap && a->image)
		return 0;
	uint8_t *p = realloc(a->image, need ? (size_t)need : 1);
	if (!p)
		return refuse(a, RTCMS_ENOMEM, "out of memory for %" PRIu64 " bytes", need);
	a->image = p;
	a->cap = (size_t)need;
	return 0;
}

static int area_begin(struct stream_sink *s, const struct proto_ckpt_meta *meta)
{
	struct stream_area_sink *a = AREA_SINK(s);
	int rc;

	if (a->links == 0) {
		stream_area_sink_clear(a);
		a->why[0] = '\0';
	}
	if ((rc = stream_chain_next(a->links ? &a->last : NULL, meta, a->why,
				    sizeof(a->why))) != 0)
		return rc;
	a->links++;
	a->last = *meta;
	a->last.spec = NULL;
	a->last.spec_len = 0;
	if (meta->base == 0) {
		if ((rc = room(a, meta->size)) != 0)
			return rc;
		a->len = (size_t)meta->size;
		return 0;
	}
	/* a delta: received aside, applied at its end */
	if ((rc = room(a, meta->full_size)) != 0)
		return rc;
	if (meta->size > a->max || meta->size > SIZE_MAX)
		return refuse(a, RTCMS_ETOOBIG, "a delta of %" PRIu64 " bytes is over "
			      "the limit", meta->size);
	drop_delta(a);
	if (!(a->delta = malloc(meta->size ? (size_t)meta->size : 1)))
		return refuse(a, RTCMS_ENOMEM, "out of memory for %" PRIu64 " bytes",
			      meta->size);
	a->delta_len = (size_t)meta->size;
	return 0;
}

static int area_chunk(struct stream_sink *s, const struct proto_chunk *chunk)
{
	struct stream_area_sink *a = AREA_SINK(s);
	uint8_t *dst = a->last.base ? a->delta : a->image;
	size_t len = a->last.base ? a->delta_len : a->len;

	if (chunk->key_id && !chunk->opened)
		return refuse(a, RTCMS_ECORRUPT, "the checkpoint is sealed under data key "
			      "%" PRIu64 ", and this reader was given no data keyring",
			      chunk->key_id);
	if (chunk->offset > len || chunk->len > len - chunk->offset)
		return RTCMS_EPROTO; /* a verifier never lets it through */
	memcpy(dst + chunk->offset, chunk->data, chunk->len);
	return 0;
}

/* The end of one link: a delta is applied to the image of its base. */
static int link_done(struct stream_area_sink *a)
{
	uint64_t seq;

	if (a->last.base == 0)
		return 0;
	int rc = delta_apply(a->image, &a->len, a->cap, a->delta, a->delta_len);
	drop_delta(a);
	if (rc != 0 || image_sequence(a->image, a->len, &seq) != 0 ||
	    seq != a->last.sequence || a->len != a->last.full_size)
		return refuse(a, RTCMS_ECORRUPT, "the delta of sequence %" PRIu64
			      " does not apply to its base", a->last.sequence);
	return 0;
}

static int area_link(struct stream_sink *s, uint32_t count)
{
	(void)count;
	return link_done(AREA_SINK(s));
}

static int area_end(struct stream_sink *s, uint32_t count)
{
	struct stream_area_sink *a = AREA_SINK(s);
	int rc;

	(void)count;
	a->links = 0;
	if ((rc = link_done(a)) != 0)
		return rc;
	if (a->last.base != 0 && !sodium_is_zero(a->last.state_hash, PROTO_HASH_SIZE)) {
		/* assembled here: the whole state must be what its source hashed */
		uint8_t h[STATE_HASH_SIZE];
		if (state_hash(a->image, a->len, h) != 0 ||
		    sodium_memcmp(h, a->last.state_hash, STATE_HASH_SIZE) != 0)
			return refuse(a, RTCMS_ECORRUPT, "the image assembled up to "
				      "sequence %" PRIu64 " does not have its state hash",
				      a->last.sequence);
	}
	if (!a->area)
		return 0;
	if ((rc = a->area(a->ctx, a->image, a->len, &a->mem)) != 0)
		return rc;
	return image_install(a->mem, a->image, a->len);
}

static void area_abort(struct stream_sink *s, int rc)
{
	(void)rc;
	stream_area_sink_clear(AREA_SINK(s));
}

static const struct stream_sink_ops area_ops = { area_begin, area_chunk, area_end, area_abort,
						 area_link };

void stream_area_sink_init(struct stream_area_sink *s, uint64_t max, stream_area_fn area,
			   void *ctx)
{
	memset(s, 0, sizeof(*s));
	s->sink.ops = &area_ops;
	s->max = max;
	s->area = area;
	s->ctx = ctx;
}

void stream_area_sink_clear(struct stream_area_sink *s)
{
	if (!s)
		return;
	free(s->image);
	s->image = NULL;
	s->len = 0;
	s->cap = 0;
	s->links = 0;
	drop_delta(s);
}
