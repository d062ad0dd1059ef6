/* area_sink.c - a verified full image, sent whole or as a chain (its root
 * and the deltas applied in order), assembled in place: into the slot of
 * the checkpoint area it is installed in (the restore of a program), or
 * into a buffer of its own. */
#include "stream.h"

#include <inttypes.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "area/image.h"
#include "rtcms_error.h"
#include "util/bytes.h"

#define AREA_SINK(s) ((struct stream_area_sink *)(void *)(s))
#define IMAGE_HEAD 32    /* an image's header, before its region table */

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

/* The area's slot given up: nothing of this stream is committed there. */
static void drop_slot(struct stream_area_sink *a)
{
	if (a->slot)
		area_write_abort(a->mem, a->slot);
	a->slot = NULL;
}

/* The place of the first link's data: the slot of the area area() gives
 * (its load begun), or a buffer of its own. */
static int target(struct stream_area_sink *a, uint64_t size)
{
	if (!a->area || size > a->max)
		return 0; /* room() refuses it */
	int rc = a->area(a->ctx, size, &a->mem);
	if (rc)
		return refuse(a, rc, "no checkpoint area for %" PRIu64 " bytes", size);
	a->slot = area_write_begin(a->mem);
	a->data = area_slot_data(a->mem, a->slot);
	a->data_cap = (size_t)area_data_capacity(a->mem);
	return 0;
}

/* Room for a full image of need bytes (a full image's size, a delta's
 * full_size): the area's data capacity, or the buffer grown to it. */
static int room(struct stream_area_sink *a, uint64_t need)
{
	if (need > a->max || need > SIZE_MAX)
		return refuse(a, RTCMS_ETOOBIG, "an image of %" PRIu64 " bytes is over "
			      "the limit", need);
	if (a->area) {
		if (need > IMAGE_HEAD + (uint64_t)a->data_cap)
			return refuse(a, RTCMS_ETOOBIG, "an image of %" PRIu64 " bytes is "
				      "larger than its checkpoint area", need);
		return 0;
	}
	if (need <= a->cap && a->image)
		return 0;
	uint8_t *p = realloc(a->image, need ? (size_t)need : 1);
	if (!p)
		return refuse(a, RTCMS_ENOMEM, "out of memory for %" PRIu64 " bytes", need);
	/* the whole image is data here: bytes, whatever they are */
	a->image = a->data = p;
	a->cap = a->data_cap = (size_t)need;
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
	if (a->links == 0 && (rc = target(a, meta->size)) != 0)
		return rc;
	if (a->area && !a->mem)
		return room(a, meta->size); /* over the limit: no area was asked for */
	a->links++;
	a->last = *meta;
	a->last.spec = NULL;
	a->last.spec_len = 0;
	if (meta->base == 0) {
		if ((rc = room(a, meta->size)) != 0)
			return rc;
		a->len = (size_t)meta->size;
		a->head_len = 0;
		return 0;
	}
	/* a delta: received aside, applied in place at its end */
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

/* The bytes of a full image at off: held as they come, or, into an area,
 * its head into head and its data into data. The head's length is known
 * from the header's region count once the chunk that reaches it came
 * (chunks come in order). */
static int place(struct stream_area_sink *a, uint64_t off, const uint8_t *p, size_t len)
{
	if (!a->area) {
		memcpy(a->data + off, p, len);
		return 0;
	}
	if (off < IMAGE_HEAD_MAX) {
		size_t n = IMAGE_HEAD_MAX - off < len ? (size_t)(IMAGE_HEAD_MAX - off) : len;
		memcpy(a->head + off, p, n);
	}
	if (a->head_len == 0) {
		if (off + len < IMAGE_HEAD)
			return 0; /* every byte so far is the header's */
		uint32_t n = get_be32(a->head + 16);
		if (n > AREA_MAX_REGIONS || image_size(n, 0) > a->len)
			return refuse(a, RTCMS_EPROTO, "not a checkpoint image (%" PRIu64
				      " regions)", n);
		a->head_len = image_size(n, 0);
		if (a->len - a->head_len > a->data_cap)
			return refuse(a, RTCMS_ETOOBIG, "%" PRIu64 " bytes of state are "
				      "more than its checkpoint area holds",
				      a->len - a->head_len);
	}
	if (off + len <= a->head_len)
		return 0;
	size_t skip = off < a->head_len ? (size_t)(a->head_len - off) : 0;
	uint8_t *to = a->data + (off + skip - a->head_len);
	if (to != p + skip) /* else opened there already (stream_area_sink_place) */
		memcpy(to, p + skip, len - skip);
	return 0;
}

uint8_t *stream_area_sink_place(void *ctx, uint64_t offset, uint32_t len)
{
	struct stream_area_sink *a = ctx;

	if (!a->area || !a->links)
		return NULL;
	if (a->last.base) /* a delta: received aside, whole */
		return offset <= a->delta_len && len <= a->delta_len - offset
			       ? a->delta + offset : NULL;
	if (!a->data || !a->head_len || offset < a->head_len || offset > a->len ||
	    len > a->len - offset || offset - a->head_len > a->data_cap ||
	    len > a->data_cap - (offset - a->head_len))
		return NULL;
	return a->data + (offset - a->head_len);
}

static int area_chunk(struct stream_sink *s, const struct proto_chunk *chunk)
{
	struct stream_area_sink *a = AREA_SINK(s);
	size_t len = a->last.base ? a->delta_len : a->len;

	if (chunk->key_id && !chunk->opened)
		return refuse(a, RTCMS_ECORRUPT, "the checkpoint is sealed under data key "
			      "%" PRIu64 ", and this reader was given no data keyring",
			      chunk->key_id);
	if (chunk->offset > len || chunk->len > len - chunk->offset)
		return RTCMS_EPROTO; /* a verifier never lets it through */
	if (!a->last.base)
		return place(a, chunk->offset, chunk->data, chunk->len);
	if (a->delta + chunk->offset != chunk->data) /* else opened there */
		memcpy(a->delta + chunk->offset, chunk->data, chunk->len);
	return 0;
}

/* The end of one link: a delta is applied in place to the image of its
 * base. */
static int link_done(struct stream_area_sink *a)
{
	uint64_t seq, len = a->len;
	size_t held = a->len;
	int rc;

	if (a->last.base == 0)
		return 0;
	if (a->area)
		rc = delta_apply_apart(a->head, a->data, &len, a->data_cap, a->delta,
				       a->delta_len);
	else if ((rc = delta_apply(a->image, &held, a->cap, a->delta, a->delta_len)) == 0)
		len = held;
	drop_delta(a);
	if (rc == 0)
		rc = a->area ? image_sequence(a->head, IMAGE_HEAD_MAX, &seq)
			     : image_sequence(a->image, (size_t)len, &seq);
	if (rc != 0 || seq != a->last.sequence || len != a->last.full_size)
		return refuse(a, RTCMS_ECORRUPT, "the delta of sequence %" PRIu64
			      " does not apply to its base", a->last.sequence);
	a->len = (size_t)len;
	if (a->area)
		a->head_len = image_size(get_be32(a->head + 16), 0);
	return 0;
}

static int area_link(struct stream_sink *s, uint32_t count)
{
	(void)count;
	return link_done(AREA_SINK(s));
}

/* The end of the stream: the last link applied, the state hash of the
 * image assembled checked (of a whole image too: the verifier checks its
 * chunks and its image hash; this checks what they add up to, and takes
 * the state hash of checkpoints stored before version 2), the image
 * committed into the area or held. */
static int finish(struct stream_area_sink *a)
{
	struct area_region regions[AREA_MAX_REGIONS];
	uint64_t seq, dsize;
	uint32_t n;
	int rc;

	a->links = 0;
	if ((rc = link_done(a)) != 0)
		return rc;
	if (!sodium_is_zero(a->last.state_hash, PROTO_HASH_SIZE)) {
		/* the whole state must be what its source hashed */
		rc = state_hash_check(a->head, a->head_len, a->data, a->len - a->head_len,
				      a->last.state_hash);
		if (rc == RTCMS_ENOMEM)
			return refuse(a, rc, "no memory to hash %" PRIu64 " bytes", a->len);
		if (rc)
			return refuse(a, RTCMS_ECORRUPT, "the image of sequence %" PRIu64
				      " does not match its state hash", a->last.sequence);
	}
	if (!a->area)
		return 0;
	if (image_parse_head(a->head, IMAGE_HEAD_MAX, a->len, &seq, regions, &n, &dsize) != 0)
		return refuse(a, RTCMS_EPROTO, "the %" PRIu64 " bytes received are no "
			      "checkpoint image", a->len);
	rc = area_load_commit(a->mem, a->slot, regions, n, dsize, seq);
	a->slot = NULL; /* committed, or given up */
	return rc;
}

static int area_end(struct stream_sink *s, uint32_t count)
{
	struct stream_area_sink *a = AREA_SINK(s);
	(void)count;
	int rc = finish(a);
	if (rc)
		drop_slot(a); /* nothing half-written is ever committed */
	return rc;
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
	drop_slot(s);
	free(s->image);
	s->image = NULL;
	s->cap = 0;
	s->data = NULL;
	s->data_cap = 0;
	s->len = 0;
	s->head_len = 0;
	s->links = 0;
	drop_delta(s);
}
