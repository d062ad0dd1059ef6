/*
 * handlers.h - rtcms-manager's control requests, one at a time on a
 * connection thread (rpc_server.h): REGISTER, PROCS, CKPT_NOTIFY, EXITED
 * and RESOLVE from agents; MIGRATE from agents or rtcmsctl; RUN, DRAIN,
 * NODE_FAILED, CORDON, UNCORDON, FORGET, MSTATUS and LIST from rtcmsctl.
 */
#ifndef RTCMS_MANAGER_HANDLERS_H
#define RTCMS_MANAGER_HANDLERS_H

#include "manager_int.h"
#include "daemon/rpc_server.h"
#include "net/client.h"

/* The rpc_server handler (ctx: the struct manager): RPC_NEXT to wait for
 * the next request, RPC_CLOSE to close the connection. */
enum rpc_result manager_handle(void *ctx, struct net_client *c, const char *peer,
		   const struct proto_header *hdr, union proto_msg *msg);

#endif
