/*
 * handlers.h - rtcms-agent's control interface: the requests of a
 * manager connection, decoded, handed to their module and answered.
 */
#ifndef RTCMS_AGENT_HANDLERS_H
#define RTCMS_AGENT_HANDLERS_H

#include "daemon/rpc_server.h"

/* The rpc_handler of the agent's control server (ctx: the agent). */
enum rpc_result agent_handle(void *ctx, struct net_client *c, const char *peer,
			     const struct proto_header *hdr, union proto_msg *msg);

#endif
