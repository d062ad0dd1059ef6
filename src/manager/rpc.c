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

static void side(const struct manager_rpc *rpc, struct rpc_link *link, struct rpc_stream *st,
		 const struct stream_sink_ops *ops)
{
	memset(st, 0, sizeof(*st));
	st->sink.ops = ops;
	st->rpc = rpc;
	st->link = link;
}

void manager_rpc_put_sink(const struct manager_rpc *rpc, struct rpc_link *link,
			  struct rpc_stream *st)
{
	side(rpc, link, st, rpc->store->put);
}

void manager_rpc_restore_sink(const struct manager_rpc *rpc, struct rpc_link *link,
			      struct rpc_stream *st)
{
	side(rpc, link, st, rpc->agent->restore);
}

void manager_rpc_stream_clear(struct rpc_stream *st)
{
	store_client_sink_clear(&st->put);
	stream_relay_clear(&st->restore);
}
