/* area_sink.c - a verified full image assembled and installed into a
 * checkpoint area (the restore of a program). */
#include "stream.h"

#include <stdlib.h>
#include <string.h>

#include "area/image.h"
#include "rtcms_error.h"

#define AREA_SINK(s) ((struct stream_area_sink *)(void *)(s))

static int area_begin(struct stream_sink *s, const struct proto_ckpt_meta *meta)
{
	struct stream_area_sink *a = AREA_SINK(s);

	stream_area_sink_clear(a);
	if (meta->base != 0)
		return RTCMS_EPROTO; /* a restore needs a full image */
	if (meta->size > a->max || meta->size > SIZE_MAX)
		return RTCMS_ETOOBIG;
	a->image = malloc(meta->size ? (size_t)meta->size : 1);
	if (!a->image)
		return RTCMS_ENOMEM;
	a->len = (size_t)meta->size;
	return 0;
}

static int area_chunk(struct stream_sink *s, const struct proto_chunk *chunk)
{
	struct stream_area_sink *a = AREA_SINK(s);

	if (chunk->offset > a->len || chunk->len > a->len - chunk->offset)
		return RTCMS_EPROTO; /* a verifier never lets it through */
	memcpy(a->image + chunk->offset, chunk->data, chunk->len);
	return 0;
}

static int area_end(struct stream_sink *s, uint32_t count)
{
	struct stream_area_sink *a = AREA_SINK(s);
	int rc;

	(void)count;
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

static const struct stream_sink_ops area_ops = { area_begin, area_chunk, area_end, area_abort };

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
}
