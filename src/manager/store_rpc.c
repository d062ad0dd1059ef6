/*
 * store_rpc.c - what the manager asks of the store, over the network
 * (rpc.h): GET (metadata and streams), LIST, DELETE, CLAIM, COMMIT,
 * RELEASE, FENCE, MLEASE, and the PUT stream as a relay sink.
 *
 * The store connection of a link is reused; after a failure that is not
 * the store's own refusal (an ERROR reply) it may be mid-stream or
 * broken and is dropped, so the next call opens a fresh one.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client/store_client.h"
#include "manager_int.h"
#include "net/client.h"
#include "rtcms_error.h"

static int store_open(void *ctx, struct rpc_link *link)
{
	struct manager *m = ctx;
	if (link->store)
		return 0;
	return net_client_connect(m->cfg.store, &m->key, PROTO_ROLE_MANAGER, m->cfg.name,
				  (int)m->cfg.io_timeout_ms, &link->store);
}

/* Did the store itself refuse with rc (an ERROR reply)? */
static bool refused(const struct rpc_link *link, int rc)
{
	const struct proto_error *e = link->store ? net_client_last_error(link->store) : NULL;
	return e && e->code == rc;
}

static void explain(const struct rpc_link *link, int rc, char *why, size_t whylen)
{
	const struct proto_error *e = link->store ? net_client_last_error(link->store) : NULL;
	snprintf(why, whylen, "%s", e && e->code == rc ? e->text : rtcms_strerror(rc));
}

/* One call on the link's store connection (opened if needed). */
static int call(void *ctx, struct rpc_link *link, uint8_t type, const union proto_msg *q,
		uint8_t expect, union proto_msg *r, struct proto_header *h)
{
	int rc = store_open(ctx, link);
	if (rc == 0)
		rc = net_client_call(link->store, type, q, expect, h, r);
	return rc;
}

static int store_meta(void *ctx, struct rpc_link *link, const char *id, uint64_t inc,
		      uint64_t seq, struct proto_ckpt_meta *out)
{
	int rc = store_open(ctx, link);
	if (rc == 0)
		rc = store_client_get(link->store, id, inc, seq, 1, out, NULL, NULL, NULL);
	if (rc && !refused(link, rc))
		manager_link_drop_store(link);
	return rc;
}

static int store_get(void *ctx, struct rpc_link *link, const char *id, uint64_t inc,
		     uint64_t seq, struct proto_ckpt_meta *meta, struct stream_sink *sink)
{
	const struct store_client_query q = { .type = PROTO_GET, .process = id,
					      .incarnation = inc, .sequence = seq,
					      .relay = true };
	struct stream_result res;
	int rc = store_open(ctx, link);
	if (rc == 0)
		rc = store_client_fetch_to(link->store, &q, meta, NULL, sink, &res);
	if (rc || res.outcome != STREAM_ENDED) /* the GET stream may be unfinished */
		manager_link_drop_store(link);
	return rc;
}

static int store_list(void *ctx, struct rpc_link *link, const struct proto_list *q,
		      struct proto_list_entry *entries, uint16_t *count, bool *more,
		      char *why, size_t whylen)
{
	struct proto_header h;
	union proto_msg mq, r;

	mq.list = *q;
	r.list_reply.entries = entries;
	int rc = call(ctx, link, PROTO_LIST, &mq, PROTO_LIST_REPLY, &r, &h);
	if (rc) {
		explain(link, rc, why, whylen);
		manager_link_drop_store(link);
		return rc;
	}
	*count = r.list_reply.count;
	*more = h.flags & PROTO_F_MORE;
	return 0;
}

static int store_remove(void *ctx, const char *id, char *why, size_t whylen)
{
	struct rpc_link link = { 0 };
	struct proto_header h;
	union proto_msg q, r;

	memset(&q, 0, sizeof(q));
	snprintf(q.del.process, sizeof(q.del.process), "%s", id); /* every checkpoint */
	int rc = call(ctx, &link, PROTO_DELETE, &q, PROTO_OK, &r, &h);
	if (rc)
		explain(&link, rc, why, whylen);
	manager_link_close(&link);
	return rc;
}

static int store_claim(void *ctx, struct rpc_link *link, const char *id, uint8_t flags,
		       struct proto_claim_ok *ok, uint64_t *held_until, char *why,
		       size_t whylen)
{
	struct manager *m = ctx;
	struct proto_header h;
	union proto_msg q, r;

	memset(&q, 0, sizeof(q));
	snprintf(q.claim.process, sizeof(q.claim.process), "%s", id);
	snprintf(q.claim.claimant, sizeof(q.claim.claimant), "%s", m->cfg.name);
	q.claim.lease_ms = (uint32_t)m->cfg.claim_lease_ms;
	q.claim.flags = flags;
	int rc = call(ctx, link, PROTO_CLAIM, &q, PROTO_CLAIM_OK, &r, &h);
	if (rc) {
		const struct proto_error *e = link->store ? net_client_last_error(link->store)
							  : NULL;
		explain(link, rc, why, whylen);
		if (held_until && rc == RTCMS_ECLAIMED && e)
			*held_until = e->detail; /* the holder's lease end, unix ms */
		if (rc == RTCMS_ECONN || rc == RTCMS_ETIMEDOUT)
			manager_link_drop_store(link);
		return rc;
	}
	*ok = r.claim_ok;
	return 0;
}

static int store_commit(void *ctx, struct rpc_link *link, const char *id, uint64_t claim_id,
			uint64_t node, uint64_t *new_inc)
{
	struct proto_header h;
	union proto_msg q, r;

	memset(&q, 0, sizeof(q));
	snprintf(q.commit.process, sizeof(q.commit.process), "%s", id);
	q.commit.claim_id = claim_id;
	q.commit.new_node = node;
	int rc = call(ctx, link, PROTO_COMMIT, &q, PROTO_COMMIT_OK, &r, &h);
	if (rc == 0)
		*new_inc = r.commit_ok.incarnation;
	return rc;
}

static int store_release(void *ctx, struct rpc_link *link, const char *id, uint64_t claim_id)
{
	struct proto_header h;
	union proto_msg q, r;

	memset(&q, 0, sizeof(q));
	snprintf(q.release.process, sizeof(q.release.process), "%s", id);
	q.release.claim_id = claim_id;
	return call(ctx, link, PROTO_RELEASE, &q, PROTO_OK, &r, &h);
}

static int store_fence(void *ctx, uint64_t node, uint8_t *state, uint32_t *wait_ms,
		       char *why, size_t whylen)
{
	struct manager *m = ctx;
	struct rpc_link link = { 0 };
	struct proto_header h;
	union proto_msg q, r;

	memset(&q, 0, sizeof(q));
	q.fence.node = node;
	snprintf(q.fence.by, sizeof(q.fence.by), "%s", m->cfg.name);
	q.fence.hold_ms = (uint32_t)(m->cfg.agent_lease_ms + m->cfg.fence_margin_ms);
	int rc = call(ctx, &link, PROTO_FENCE, &q, PROTO_FENCE_OK, &r, &h);
	if (rc) {
		explain(&link, rc, why, whylen);
	} else {
		*state = r.fence_ok.state;
		*wait_ms = r.fence_ok.wait_ms;
	}
	manager_link_close(&link);
	return rc;
}

static int store_datakey(void *ctx, uint32_t id, uint64_t kcv, uint64_t *recorded,
			 char *why, size_t whylen)
{
	struct rpc_link link = { 0 };
	struct proto_header h;
	union proto_msg q, r;

	memset(&q, 0, sizeof(q));
	q.datakey.key_id = id;
	q.datakey.kcv = kcv;
	int rc = call(ctx, &link, PROTO_DATAKEY, &q, PROTO_DATAKEY_OK, &r, &h);
	if (rc)
		explain(&link, rc, why, whylen);
	else
		*recorded = r.datakey.kcv;
	manager_link_close(&link);
	return rc;
}

static int store_mlease(void *ctx, struct rpc_link *link, int timeout_ms,
			const struct proto_mlease *q, struct proto_mlease_ok *ok)
{
	struct manager *m = ctx;
	struct proto_header h;
	union proto_msg mq, r;
	int rc = 0;

	if (!link->store)
		rc = net_client_connect(m->cfg.store, &m->key, PROTO_ROLE_MANAGER, m->cfg.name,
					timeout_ms, &link->store);
	mq.mlease = *q;
	if (rc == 0)
		rc = net_client_call(link->store, PROTO_MLEASE, &mq, PROTO_MLEASE_OK, &h, &r);
	if (rc) {
		manager_link_drop_store(link);
		return rc;
	}
	*ok = r.mlease_ok;
	return 0;
}

/* ---- the PUT side: the stream module's store writer ------------------ */

/* The writer's state into st: done (with the store's ack) once the store
 * said it holds the checkpoint already. */
static int put_settle(struct rpc_stream *st, int rc)
{
	if (st->put.existed && !st->sink.done)
		st->ack = st->put.ack;
	st->sink.done = st->put.sink.done;
	return rc;
}

static int put_begin(struct stream_sink *s, const struct proto_ckpt_meta *meta)
{
	struct rpc_stream *st = RPC_STREAM(s);

	st->sequence = meta->sequence;
	int rc = store_open(st->rpc->ctx, st->link);
	if (rc)
		return rc;
	store_client_sink_init(&st->put, st->link->store);
	return put_settle(st, stream_sink_begin(&st->put.sink, meta));
}

static int put_chunk(struct stream_sink *s, const struct proto_chunk *chunk)
{
	struct rpc_stream *st = RPC_STREAM(s);
	return put_settle(st, stream_sink_chunk(&st->put.sink, chunk));
}

static int put_end(struct stream_sink *s, uint32_t count)
{
	struct rpc_stream *st = RPC_STREAM(s);
	int rc = stream_sink_end(&st->put.sink, count);
	if (rc == 0)
		st->ack = st->put.ack; /* durable */
	return rc;
}

static void put_abort(struct stream_sink *s, int rc)
{
	struct rpc_stream *st = RPC_STREAM(s);
	if (st->put.sink.ops)
		stream_sink_abort(&st->put.sink, rc);
}

static const struct stream_sink_ops put_side = { put_begin, put_chunk, put_end, put_abort, NULL };

const struct rpc_store_ops store_rpc_net = {
	.open = store_open,
	.meta = store_meta,
	.get = store_get,
	.list = store_list,
	.remove = store_remove,
	.claim = store_claim,
	.commit = store_commit,
	.release = store_release,
	.fence = store_fence,
	.datakey = store_datakey,
	.mlease = store_mlease,
	.put = &put_side,
};
