/*
 * peer.h - the manager at the other end of a request, as the agent's
 * conversations (pull.c, restore.c) see it: receive a frame, reply, time
 * out. A net_client in the daemon (peer_of_client()); a script in the
 * unit tests.
 */
#ifndef RTCMS_AGENT_PEER_H
#define RTCMS_AGENT_PEER_H

#include <stdint.h>

#include "net/client.h"
#include "proto/msg.h"

/* recv: the next frame (borrowed pointers in *msg valid until the next
 * recv), 0 or RTCMS_ECONN / RTCMS_ETIMEDOUT / a decode error.
 * reply, reply_error: send a reply to request; 0 or RTCMS_ECONN.
 * set_timeout: for the recv and replies after it. */
struct agent_peer {
	int (*recv)(void *ctx, struct proto_header *hdr, union proto_msg *msg);
	int (*reply)(void *ctx, uint8_t type, uint16_t flags, uint32_t request,
		     const union proto_msg *msg);
	int (*reply_error)(void *ctx, uint32_t request, int code, const char *text);
	void (*set_timeout)(void *ctx, int timeout_ms);
	void *ctx;
};

/* The peer of a server connection c (borrowed: c outlives it). */
struct agent_peer peer_of_client(struct net_client *c);

/* Reply ERROR with code and a printf-style text. 0 or RTCMS_ECONN. */
int peer_reply_errorf(const struct agent_peer *p, uint32_t request, int code,
		      const char *fmt, ...) __attribute__((format(printf, 4, 5)));

#endif
