/* rpc.c - the connections an operation keeps, and its sinks (rpc.h). */
#include "rpc.h"

#include <string.h>

#include "net/client.h"

void manager_link_close(struct rpc_link *l)
{
	manager_link_drop_target(l);
	manager_link_drop_store(l);
}

void manager_link_drop_target(struct rpc_link *l)
{
	net_client_free(l->target);
	l->target = NULL;
}

void manager_link_drop_store(struct rpc_link *l)
{
	net_client_free(l->store);
	l->store = NULL;
}

static void sink(const struct manager_rpc *rpc, struct rpc_link *link, struct rpc_stream *st,
		 const struct relay_sink_ops *ops, struct relay_sink *out)
{
	memset(st, 0, sizeof(*st));
	st->rpc = rpc;
	st->link = link;
	out->ops = ops;
	out->ctx = st;
}

void manager_rpc_put_sink(const struct manager_rpc *rpc, struct rpc_link *link,
			  struct rpc_stream *st, struct relay_sink *out)
{
	sink(rpc, link, st, rpc->store->put, out);
}

void manager_rpc_restore_sink(const struct manager_rpc *rpc, struct rpc_link *link,
			      struct rpc_stream *st, struct relay_sink *out)
{
	sink(rpc, link, st, rpc->agent->restore, out);
}
