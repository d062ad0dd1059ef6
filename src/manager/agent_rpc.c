/*
 * agent_rpc.c - what the manager asks of agents, over the network
 * (rpc.h): FREEZE, THAW, STOP, INFO, PROCS, RUN, PULL, and a restore's
 * RESTORE stream and ADOPT on the connection it keeps.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client/store_client.h"
#include "fault.h"
#include "manager_int.h"
#include "net/client.h"
#include "rtcms_error.h"

static int connect_to(struct manager *m, const char *addr, int timeout_ms,
		      struct net_client **out)
{
	return net_client_connect(addr, &m->key, PROTO_ROLE_MANAGER, m->cfg.name, timeout_ms,
				  out);
}

/* The peer's words for a failed call on c, else the code's. */
static void explain(const struct net_client *c, int rc, char *why, size_t whylen)
{
	const struct proto_error *e = c ? net_client_last_error(c) : NULL;
	snprintf(why, whylen, "%s", e && e->code == rc ? e->text : rtcms_strerror(rc));
}

/* One call on *conn (opened to addr if NULL) within timeout_ms. */
static int call(struct manager *m, struct net_client **conn, const char *addr, uint8_t type,
		const union proto_msg *q, uint8_t expect, union proto_msg *r, int timeout_ms,
		char *why, size_t whylen)
{
	struct proto_header h;
	int rc = 0;

	if (!*conn)
		rc = connect_to(m, addr, (int)m->cfg.io_timeout_ms, conn);
	if (rc == 0) {
		net_client_set_timeout(*conn, timeout_ms);
		rc = net_client_call(*conn, type, q, expect, &h, r);
	}
	if (rc)
		explain(*conn, rc, why, whylen);
	return rc;
}

/* One request about (id, inc) on a fresh connection. */
static int ref_call(struct manager *m, const char *addr, uint8_t type, const char *id,
		    uint64_t inc, uint32_t arg, uint8_t expect, union proto_msg *r,
		    int timeout_ms, char *why, size_t whylen)
{
	struct net_client *c = NULL;
	union proto_msg q;

	memset(&q, 0, sizeof(q));
	snprintf(q.ref.process, sizeof(q.ref.process), "%s", id);
	q.ref.incarnation = inc;
	q.ref.arg = arg;
	int rc = call(m, &c, addr, type, &q, expect, r, timeout_ms, why, whylen);
	net_client_free(c);
	return rc;
}

static int agent_freeze(void *ctx, const char *addr, const char *id, uint64_t inc,
			struct proto_ckpt_meta *final, char *why, size_t whylen)
{
	struct manager *m = ctx;
	union proto_msg r;

	int rc = ref_call(m, addr, PROTO_FREEZE, id, inc, (uint32_t)m->cfg.freeze_timeout_ms,
			  PROTO_FROZEN, &r,
			  (int)m->cfg.freeze_timeout_ms + (int)m->cfg.io_timeout_ms, why, whylen);
	if (rc)
		return rc;
	*final = r.meta;
	final->spec = NULL;
	final->spec_len = 0;
	return 0;
}

/* A request about (id, inc) that the agent answers with OK. */
static int ref_ok(void *ctx, const char *addr, uint8_t type, const char *id, uint64_t inc,
		  char *why, size_t whylen)
{
	struct manager *m = ctx;
	union proto_msg r;
	return ref_call(m, addr, type, id, inc, 0, PROTO_OK, &r, (int)m->cfg.io_timeout_ms, why,
			whylen);
}

static int agent_thaw(void *ctx, const char *addr, const char *id, uint64_t inc, char *why,
		      size_t whylen)
{
	return ref_ok(ctx, addr, PROTO_THAW, id, inc, why, whylen);
}

static int agent_stop(void *ctx, const char *addr, const char *id, uint64_t inc, char *why,
		      size_t whylen)
{
	return ref_ok(ctx, addr, PROTO_STOP, id, inc, why, whylen);
}

static int agent_info(void *ctx, const char *addr, int timeout_ms, struct proto_info_reply *out)
{
	struct manager *m = ctx;
	struct net_client *c = NULL;
	struct proto_header h;
	union proto_msg q, r;

	memset(&q, 0, sizeof(q));
	int rc = connect_to(m, addr, timeout_ms, &c);
	if (rc == 0)
		rc = net_client_call(c, PROTO_INFO, &q, PROTO_INFO_REPLY, &h, &r);
	net_client_free(c);
	if (rc == 0)
		*out = r.info;
	return rc;
}

static int agent_holds(void *ctx, const char *addr, const char *id, bool *holds)
{
	struct manager *m = ctx;
	struct net_client *c = NULL;
	struct proto_header h;
	union proto_msg q, r;
	int rc;

	*holds = false;
	struct proto_agent_proc *procs = calloc(PROTO_PROCS_MAX, sizeof(*procs));
	if (!procs)
		return RTCMS_ENOMEM;
	memset(&q, 0, sizeof(q));
	q.procs.node = UINT64_MAX; /* a query: the agent answers with its report */
	r.procs.procs = procs;
	rc = connect_to(m, addr, (int)m->cfg.io_timeout_ms, &c);
	if (rc == 0)
		rc = net_client_call(c, PROTO_PROCS, &q, PROTO_PROCS, &h, &r);
	if (rc)
		goto out;
	for (uint16_t i = 0; i < r.procs.count; i++)
		if (strcmp(procs[i].process, id) == 0 && procs[i].state != PROTO_AP_FINISHED &&
		    procs[i].state != PROTO_AP_GONE && procs[i].state != PROTO_AP_FAILED)
			*holds = true;
out:
	net_client_free(c);
	free(procs);
	return rc;
}

static int agent_run(void *ctx, const char *addr, const struct proto_run *run,
		     struct proto_run_ok *ok, char *why, size_t whylen)
{
	struct manager *m = ctx;
	struct net_client *c = NULL;
	struct proto_header h;
	union proto_msg q, r;

	q.run = *run;
	int rc = connect_to(m, addr, (int)m->cfg.io_timeout_ms, &c);
	if (rc == 0)
		rc = net_client_call(c, PROTO_RUN, &q, PROTO_RUN_OK, &h, &r);
	if (rc) {
		const struct proto_error *e = c ? net_client_last_error(c) : NULL;
		snprintf(why, whylen, "%s", e && e->code ? e->text : rtcms_strerror(rc));
	} else {
		*ok = r.run_ok;
	}
	net_client_free(c);
	return rc;
}

static int agent_pull(void *ctx, const char *addr, const struct rpc_pull *req,
		      struct proto_ckpt_meta *meta, struct stream_sink *sink)
{
	struct manager *m = ctx;
	struct net_client *c = NULL;
	/* sequence 0: the newest the agent holds (at least the one announced),
	 * as a delta against base if it finds that worth it */
	const struct store_client_query q = { .type = PROTO_PULL, .process = req->process,
					      .incarnation = req->incarnation,
					      .sequence = req->sequence,
					      .base = req->sequence ? 0 : req->base,
					      .relay = true };
	struct stream_result res;
	int rc = connect_to(m, addr, (int)m->cfg.io_timeout_ms, &c);

	if (rc == 0)
		rc = store_client_fetch_to(c, &q, meta, NULL, sink, &res);
	net_client_free(c);
	return rc;
}

static int agent_target_open(void *ctx, struct rpc_link *link, const char *addr)
{
	struct manager *m = ctx;
	if (link->target)
		return 0;
	return connect_to(m, addr, (int)m->cfg.io_timeout_ms, &link->target);
}

static int agent_adopt(void *ctx, struct rpc_link *link, const char *id, uint64_t inc,
		       char *why, size_t whylen)
{
	struct manager *m = ctx;
	union proto_msg q, r;

	if (!link->target) {
		snprintf(why, whylen, "%s", rtcms_strerror(RTCMS_ECONN));
		return RTCMS_ECONN;
	}
	memset(&q, 0, sizeof(q));
	snprintf(q.ref.process, sizeof(q.ref.process), "%s", id);
	q.ref.incarnation = inc;
	return call(m, &link->target, NULL, PROTO_ADOPT, &q, PROTO_OK, &r,
		    (int)m->cfg.io_timeout_ms, why, whylen);
}

/* ---- the RESTORE side: the stream module's network relay ------------- */

/* A failure sending the stream, in st's words. */
static int restore_sent(struct rpc_stream *st, int rc)
{
	if (rc)
		snprintf(st->why, sizeof(st->why), "sending it: %s", rtcms_strerror(rc));
	return rc;
}

static int restore_begin(struct stream_sink *s, const struct proto_ckpt_meta *meta)
{
	struct rpc_stream *st = RPC_STREAM(s);
	const struct stream_out out = { .port = stream_port_client(st->link->target) };

	st->sequence = meta->sequence;
	stream_relay_init(&st->restore, &out, PROTO_RESTORE, PROTO_PUT_END);
	return restore_sent(st, stream_sink_begin(&st->restore.sink, meta));
}

static int restore_chunk(struct stream_sink *s, const struct proto_chunk *chunk)
{
	struct rpc_stream *st = RPC_STREAM(s);
	return restore_sent(st, stream_sink_chunk(&st->restore.sink, chunk));
}

/* End the RESTORE stream (PUT_END) and wait until the target says the
 * program resumed from the sequence sent. */
static int restore_end(struct stream_sink *s, uint32_t count)
{
	struct rpc_stream *st = RPC_STREAM(s);
	struct manager *m = st->rpc->ctx;
	struct net_client *target = st->link->target;
	struct proto_header h;
	union proto_msg r;

	int rc = restore_sent(st, stream_sink_end(&st->restore.sink, count));
	manager_fault_point("after-send");
	if (rc)
		return rc;
	net_client_set_timeout(target, (int)m->cfg.restore_timeout_ms);
	rc = net_client_recv(target, &h, &r);
	if (rc == 0 && h.type == PROTO_ERROR) {
		snprintf(st->why, sizeof(st->why), "%s", r.error.text);
		return r.error.code;
	}
	if (rc == 0 && (h.type != PROTO_RESTORE_OK || r.restore_ok.sequence != st->sequence))
		rc = RTCMS_EPROTO;
	if (rc)
		snprintf(st->why, sizeof(st->why), "%s", rtcms_strerror(rc));
	return rc;
}

/* A link of a chain: its PUT_END with MORE (the target assembles). */
static int restore_link(struct stream_sink *s, uint32_t count)
{
	struct rpc_stream *st = RPC_STREAM(s);
	return restore_sent(st, stream_sink_link(&st->restore.sink, count));
}

static void restore_abort(struct stream_sink *s, int rc)
{
	struct rpc_stream *st = RPC_STREAM(s);
	if (st->restore.sink.ops)
		stream_sink_abort(&st->restore.sink, rc);
}

static const struct stream_sink_ops restore_side = { restore_begin, restore_chunk,
						     restore_end, restore_abort, restore_link };

const struct rpc_agent_ops agent_rpc_net = {
	.freeze = agent_freeze,
	.thaw = agent_thaw,
	.stop = agent_stop,
	.info = agent_info,
	.holds = agent_holds,
	.run = agent_run,
	.pull = agent_pull,
	.target_open = agent_target_open,
	.adopt = agent_adopt,
	.restore = &restore_side,
};
