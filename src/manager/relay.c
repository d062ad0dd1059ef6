/* relay.c - a stream from a source to the store, a target or both (relay.h). */
#include "relay.h"

#include <string.h>

#include "rtcms_error.h"

#define RELAY(s) ((struct relay *)(void *)(s))

/* A failure of the inner sink: the one side's is kept (the tee keeps its
 * own). */
static int inner_rc(struct relay *r, int rc)
{
	if (rc && r->inner != &r->tee.sink && !r->side_rc)
		r->side_rc = rc;
	r->sink.done = r->inner->done;
	return rc;
}

static int relay_begin(struct stream_sink *s, const struct proto_ckpt_meta *meta)
{
	struct relay *r = RELAY(s);

	if (r->expect && !r->expect(r->expect_ctx, meta)) {
		r->refused = true;
		return RTCMS_EPROTO;
	}
	return inner_rc(r, stream_sink_begin(r->inner, meta));
}

static int relay_chunk(struct stream_sink *s, const struct proto_chunk *chunk)
{
	struct relay *r = RELAY(s);

	if (r->cancel && atomic_load_explicit(r->cancel, memory_order_relaxed)) {
		r->cancelled = true; /* a migration sends a newer one */
		return RTCMS_ESTATE;
	}
	r->begun = true;
	return inner_rc(r, stream_sink_chunk(r->inner, chunk));
}

static int relay_end(struct stream_sink *s, uint32_t count)
{
	struct relay *r = RELAY(s);
	return inner_rc(r, stream_sink_end(r->inner, count));
}

static int relay_link(struct stream_sink *s, uint32_t count)
{
	struct relay *r = RELAY(s);

	if (r->cancel && atomic_load_explicit(r->cancel, memory_order_relaxed)) {
		r->cancelled = true;
		return RTCMS_ESTATE;
	}
	return inner_rc(r, stream_sink_link(r->inner, count));
}

static void relay_abort(struct stream_sink *s, int rc)
{
	struct relay *r = RELAY(s);
	if (!r->refused)
		stream_sink_abort(r->inner, rc);
}

static const struct stream_sink_ops relay_ops = { relay_begin, relay_chunk, relay_end,
						  relay_abort, relay_link };

void relay_init(struct relay *r, struct stream_sink *store, struct stream_sink *target,
		_Atomic int *cancel)
{
	memset(r, 0, sizeof(*r));
	r->sink.ops = &relay_ops;
	r->store = store;
	r->target = target;
	r->cancel = cancel;
	if (store && target) {
		stream_tee_init(&r->tee, store, target);
		r->inner = &r->tee.sink;
	} else {
		r->inner = store ? store : target;
	}
}

void relay_expect(struct relay *r, relay_expect_fn fn, void *ctx)
{
	r->expect = fn;
	r->expect_ctx = ctx;
}

bool relay_begun(const struct relay *r)
{
	return r->begun;
}

static int store_rc(const struct relay *r)
{
	if (!r->store)
		return 0;
	return r->target ? r->tee.primary_rc : r->side_rc;
}

static int target_rc(const struct relay *r)
{
	if (!r->target)
		return 0;
	return r->store ? r->tee.secondary_rc : r->side_rc;
}

enum relay_result relay_result(const struct relay *r, int source_rc)
{
	if (r->cancelled)
		return RELAY_CANCELLED;
	if (r->refused)
		return RELAY_SOURCE_FAILED;
	if (store_rc(r))
		return RELAY_STORE_FAILED;
	if (r->store && !r->target && r->store->done)
		return RELAY_HAD_IT;
	if (source_rc && target_rc(r) && !r->store)
		return RELAY_TARGET_FAILED; /* the target alone stopped it */
	if (source_rc)
		return RELAY_SOURCE_FAILED;
	if (target_rc(r))
		return RELAY_TARGET_FAILED;
	return RELAY_DONE;
}

int relay_code(const struct relay *r, enum relay_result result, int source_rc)
{
	switch (result) {
	case RELAY_DONE:
	case RELAY_HAD_IT:
		return 0;
	case RELAY_CANCELLED:
		return RTCMS_ESTATE;
	case RELAY_SOURCE_FAILED:
		if (r->refused)
			return RTCMS_EPROTO;
		return source_rc ? source_rc : RTCMS_EPROTO;
	case RELAY_STORE_FAILED:
		return store_rc(r);
	case RELAY_TARGET_FAILED:
		return target_rc(r);
	}
	return RTCMS_EINTERNAL;
}
