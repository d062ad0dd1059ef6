/* pull.c - one checkpoint from an agent into the store (pull.h). */
#include "pull.h"

#include <inttypes.h>
#include <string.h>

#include "log/log.h"
#include "relay.h"
#include "rtcms_error.h"

/* What a pull asked for. */
struct pull_ask {
	const char *id;
	uint64_t incarnation, sequence, base;
};

/* Is what the agent sent what was asked for (and not empty: an image
 * never is)? */
static bool meta_fits(void *ctx, const struct proto_ckpt_meta *meta)
{
	const struct pull_ask *a = ctx;
	return meta->sequence >= a->sequence && meta->incarnation == a->incarnation &&
	       strcmp(meta->process, a->id) == 0 && (!meta->base || meta->base == a->base) &&
	       meta->chunk_count > 0;
}

/* One pull from the agent relayed into the store. *base_gone: the store
 * refused the delta because it lacks its base. */
static int pull_once(struct manager *m, struct rpc_link *link, const char *id,
		     uint64_t incarnation, uint64_t seq, uint64_t base, const char *addr,
		     struct pull_result *res, _Atomic int *cancel, bool *base_gone)
{
	struct proto_ckpt_meta meta;
	struct rpc_stream st;
	struct relay r;
	const struct rpc_pull req = { .process = id, .incarnation = incarnation, .base = base };
	const struct pull_ask ask = { id, incarnation, seq, base };

	*base_gone = false;
	memset(&meta, 0, sizeof(meta));
	manager_rpc_put_sink(&m->rpc, link, &st);
	relay_init(&r, &st.sink, NULL, cancel);
	relay_expect(&r, meta_fits, (void *)&ask);
	int rc = m->rpc.agent->pull(m->rpc.ctx, addr, &req, &meta, &r.sink);
	manager_rpc_stream_clear(&st);
	enum relay_result rr = relay_result(&r, rc);
	rc = relay_code(&r, rr, rc);
	res->store_side = rr == RELAY_STORE_FAILED;
	res->cancelled = rr == RELAY_CANCELLED;
	if (rc && relay_begun(&r)) /* the store connection may be mid-stream: start afresh */
		manager_link_drop_store(link);
	if (rc) {
		*base_gone = rc == RTCMS_ENOENT && res->store_side && meta.base;
		return rc;
	}
	res->sequence = meta.sequence;
	res->size = meta.size;
	res->full_size = meta.base ? meta.full_size : meta.size;
	res->base = meta.base;
	res->depth = st.ack.depth;
	res->existed = rr == RELAY_HAD_IT;
	return 0;
}

int pull_checkpoint(struct manager *m, struct rpc_link *link, const char *id,
		    uint64_t incarnation, uint64_t seq, uint64_t base, const char *addr,
		    struct pull_result *res, _Atomic int *cancel)
{
	const struct rpc_store_ops *store = m->rpc.store;
	struct proto_ckpt_meta meta;
	bool base_gone = false;
	int rc;

	memset(res, 0, sizeof(*res));
	res->store_side = true;
	if ((rc = store->open(m->rpc.ctx, link)) != 0)
		return rc;
	/* another manager may have stored it already: then there is nothing
	 * to pull (the agent is not read twice without need) */
	rc = store->meta(m->rpc.ctx, link, id, incarnation, seq, &meta);
	if (rc == 0) {
		res->store_side = false;
		res->sequence = seq;
		res->full_size = meta.base ? meta.full_size : meta.size;
		res->base = meta.base;
		res->depth = UINT32_MAX; /* not known here: do not build on it */
		res->existed = true;
		return 0;
	}
	if (rc != RTCMS_ENOENT) {
		manager_link_drop_store(link);
		return rc;
	}
	res->store_side = false;
	if (!addr)
		return RTCMS_ENOENT; /* only asked */
	rc = pull_once(m, link, id, incarnation, seq, base, addr, res, cancel, &base_gone);
	if (!base_gone)
		return rc;
	log_prog(LOG_INFO, id, incarnation, seq,
		 "[manager -> store] %s: the store no longer holds %" PRIu64 "/%" PRIu64
		 ", the delta's base: pulling the full image", id, incarnation, base);
	res->store_side = true;
	if ((rc = store->open(m->rpc.ctx, link)) != 0)
		return rc;
	res->store_side = false;
	return pull_once(m, link, id, incarnation, seq, 0, addr, res, cancel, &base_gone);
}
