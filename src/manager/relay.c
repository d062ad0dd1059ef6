/* relay.c - chunks from a source to the store, a target or both (relay.h). */
#include "relay.h"

#include <string.h>

#include "rtcms_error.h"

void relay_init(struct relay *r, const struct relay_sink *store,
		const struct relay_sink *target, const struct proto_ckpt_meta *meta,
		_Atomic int *cancel)
{
	memset(r, 0, sizeof(*r));
	if (store)
		r->store = *store;
	if (target)
		r->target = *target;
	r->meta = meta;
	r->cancel = cancel;
}

static bool has_store(const struct relay *r)
{
	return r->store.ops && !r->had_it && !r->store_rc;
}

static bool has_target(const struct relay *r)
{
	return r->target.ops && !r->target_rc;
}

/* A target failure: the end of the stream only if the store is not
 * taking it. */
static int target_failed(struct relay *r, int rc)
{
	r->target_rc = rc;
	return has_store(r) ? 0 : rc;
}

static int begin(struct relay *r)
{
	int rc;

	r->begun = true;
	if (r->store.ops) {
		bool have = false;
		rc = r->store.ops->begin(r->store.ctx, r->meta, &have);
		if (rc) {
			r->store_rc = rc;
			return rc;
		}
		if (have) {
			r->had_it = true; /* durable already */
			if (!r->target.ops)
				return RTCMS_EEOF; /* stop reading the source */
		}
	}
	if (r->target.ops) {
		bool unused = false;
		rc = r->target.ops->begin(r->target.ctx, r->meta, &unused);
		if (rc)
			return target_failed(r, rc);
	}
	return 0;
}

int relay_chunk(void *ctx, const struct proto_chunk *chunk)
{
	struct relay *r = ctx;
	int rc;

	if (r->cancel && atomic_load_explicit(r->cancel, memory_order_relaxed)) {
		r->cancelled = true; /* a migration sends a newer one */
		return RTCMS_ESTATE;
	}
	if (!r->begun && (rc = begin(r)) != 0)
		return rc;
	if (has_store(r) && (rc = r->store.ops->chunk(r->store.ctx, chunk)) != 0) {
		r->store_rc = rc;
		return rc;
	}
	r->count++;
	if (has_target(r) && (rc = r->target.ops->chunk(r->target.ctx, chunk)) != 0)
		return target_failed(r, rc);
	return 0;
}

void relay_end(struct relay *r)
{
	int rc;

	if (has_store(r)) {
		if ((rc = r->store.ops->end(r->store.ctx, r->count)) != 0) {
			r->store_rc = rc;
			return; /* nothing further: the target is dropped unconfirmed */
		}
		r->store_ended = true;
	}
	if (has_target(r) && (rc = r->target.ops->end(r->target.ctx, r->count)) != 0)
		r->target_rc = rc;
}

enum relay_result relay_result(const struct relay *r, int source_rc)
{
	if (r->cancelled)
		return RELAY_CANCELLED;
	if (r->store_rc)
		return RELAY_STORE_FAILED;
	if (r->had_it && !r->target.ops)
		return RELAY_HAD_IT;
	if (source_rc && r->target_rc && !r->store.ops)
		return RELAY_TARGET_FAILED; /* the target alone stopped it */
	if (source_rc)
		return RELAY_SOURCE_FAILED;
	if (r->target_rc)
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
		return source_rc ? source_rc : RTCMS_EPROTO;
	case RELAY_STORE_FAILED:
		return r->store_rc;
	case RELAY_TARGET_FAILED:
		return r->target_rc;
	}
	return RTCMS_EINTERNAL;
}
