/* sink.c - the sink interface's calls, kept metadata, and the tee. */
#include "stream.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rtcms_error.h"

int stream_sink_begin(struct stream_sink *s, const struct proto_ckpt_meta *meta)
{
	return s->ops->begin ? s->ops->begin(s, meta) : 0;
}

int stream_sink_chunk(struct stream_sink *s, const struct proto_chunk *chunk)
{
	return s->ops->chunk ? s->ops->chunk(s, chunk) : 0;
}

int stream_sink_end(struct stream_sink *s, uint32_t count)
{
	return s->ops->end ? s->ops->end(s, count) : 0;
}

void stream_sink_abort(struct stream_sink *s, int rc)
{
	if (s->ops->abort)
		s->ops->abort(s, rc);
}

int stream_sink_link(struct stream_sink *s, uint32_t count)
{
	return s->ops->link ? s->ops->link(s, count) : RTCMS_EPROTO;
}

int stream_chain_next(const struct proto_ckpt_meta *prev,
		      const struct proto_ckpt_meta *next, char *why, size_t whylen)
{
	if (!prev) {
		if (next->base == 0)
			return 0;
		snprintf(why, whylen, "a chain must start with a full image, not a "
			 "delta against %" PRIu64, next->base);
		return RTCMS_EPROTO;
	}
	if (strcmp(prev->process, next->process) != 0 ||
	    prev->incarnation != next->incarnation) {
		snprintf(why, whylen, "a link of %s %" PRIu64 " follows %s %" PRIu64,
			 next->process, next->incarnation, prev->process,
			 prev->incarnation);
		return RTCMS_EPROTO;
	}
	if (next->base == 0 || next->base != prev->sequence ||
	    next->sequence <= next->base) {
		snprintf(why, whylen, "sequence %" PRIu64 " (base %" PRIu64 ") cannot "
			 "follow sequence %" PRIu64 " in a chain", next->sequence,
			 next->base, prev->sequence);
		return RTCMS_EPROTO;
	}
	return 0;
}

int stream_meta_keep(struct proto_ckpt_meta *dst, uint8_t **spec,
		     const struct proto_ckpt_meta *src)
{
	*dst = *src;
	*spec = malloc(src->spec_len ? src->spec_len : 1);
	if (!*spec) {
		dst->spec = NULL;
		dst->spec_len = 0;
		return RTCMS_ENOMEM;
	}
	if (src->spec_len)
		memcpy(*spec, src->spec, src->spec_len);
	dst->spec = *spec;
	return 0;
}

void stream_meta_drop(struct proto_ckpt_meta *m, uint8_t **spec)
{
	free(*spec);
	*spec = NULL;
	m->spec = NULL;
	m->spec_len = 0;
}

/* ---- tee ---------------------------------------------------------------- */

#define TEE(s) ((struct stream_tee *)(void *)(s))

static void tee_settle(struct stream_tee *t)
{
	if (t->primary_live && t->primary->done)
		t->primary_live = false;
	if (t->secondary_live && t->secondary->done)
		t->secondary_live = false;
	t->sink.done = !t->primary_live && !t->secondary_live;
}

/* The secondary failed with rc: record it, undo it, go on without it. */
static void tee_drop_secondary(struct stream_tee *t, int rc, bool begun)
{
	t->secondary_rc = rc;
	if (begun)
		stream_sink_abort(t->secondary, rc);
	t->secondary_live = false;
}

static int tee_begin(struct stream_sink *s, const struct proto_ckpt_meta *meta)
{
	struct stream_tee *t = TEE(s);
	int rc = stream_sink_begin(t->primary, meta);

	if (rc) {
		t->primary_rc = rc;
		return rc; /* the secondary was not begun */
	}
	t->primary_live = true;
	rc = stream_sink_begin(t->secondary, meta);
	t->secondary_live = rc == 0;
	if (rc)
		tee_drop_secondary(t, rc, false);
	tee_settle(t);
	return 0;
}

static int tee_chunk(struct stream_sink *s, const struct proto_chunk *chunk)
{
	struct stream_tee *t = TEE(s);
	int rc;

	if (t->primary_live && (rc = stream_sink_chunk(t->primary, chunk)) != 0) {
		t->primary_rc = rc;
		return rc; /* the abort that follows undoes both */
	}
	if (t->secondary_live && (rc = stream_sink_chunk(t->secondary, chunk)) != 0)
		tee_drop_secondary(t, rc, true);
	tee_settle(t);
	return 0;
}

static int tee_end(struct stream_sink *s, uint32_t count)
{
	struct stream_tee *t = TEE(s);
	int rc;

	if (t->primary_live) {
		t->primary_live = false;
		if ((rc = stream_sink_end(t->primary, count)) != 0) {
			t->primary_rc = rc;
			if (t->secondary_live)
				tee_drop_secondary(t, rc, true);
			return rc;
		}
	}
	if (t->secondary_live) {
		t->secondary_live = false;
		if ((rc = stream_sink_end(t->secondary, count)) != 0)
			t->secondary_rc = rc;
	}
	return 0;
}

static void tee_abort(struct stream_sink *s, int rc)
{
	struct stream_tee *t = TEE(s);

	if (t->primary_live)
		stream_sink_abort(t->primary, rc);
	if (t->secondary_live)
		stream_sink_abort(t->secondary, rc);
	t->primary_live = false;
	t->secondary_live = false;
}

static const struct stream_sink_ops tee_ops = { tee_begin, tee_chunk, tee_end, tee_abort, NULL };

void stream_tee_init(struct stream_tee *t, struct stream_sink *primary,
		     struct stream_sink *secondary)
{
	memset(t, 0, sizeof(*t));
	t->sink.ops = &tee_ops;
	t->primary = primary;
	t->secondary = secondary;
}

enum stream_tee_side stream_tee_failed(const struct stream_tee *t)
{
	if (t->primary_rc)
		return STREAM_TEE_PRIMARY;
	return t->secondary_rc ? STREAM_TEE_SECONDARY : STREAM_TEE_NONE;
}
