/*
 * peer.h - the manager at the other end of a request, as the agent's
 * conversations (pull.c, restore.c) see it: its frames as a stream port
 * (receive, reply), an ERROR reply, a time-out. A net_client in the
 * daemon (peer_of_client()); a script in the unit tests.
 */
#ifndef RTCMS_AGENT_PEER_H
#define RTCMS_AGENT_PEER_H

#include <stdbool.h>
#include <stdint.h>

#include "net/client.h"
#include "proto/msg.h"
#include "stream/stream_net.h"

/* port: the frames (stream_net.h): recv the next one (borrowed pointers
 * in *msg valid until the next recv), 0 or RTCMS_ECONN / RTCMS_ETIMEDOUT
 * / a decode error; send a reply (the agent sends nothing else to its
 * peer: always PROTO_F_REPLY), 0 or RTCMS_ECONN.
 * reply_error: send an ERROR reply to request; 0 or RTCMS_ECONN.
 * set_timeout: for the recv and replies after it.
 * ctx: of reply_error and set_timeout. */
struct agent_peer {
	struct stream_port port;
	int (*reply_error)(void *ctx, uint32_t request, int code, const char *text);
	void (*set_timeout)(void *ctx, int timeout_ms);
	void *ctx;
};

/* The peer of a server connection c (borrowed: c outlives it). */
struct agent_peer peer_of_client(struct net_client *c);

/* The replies to request: a stream_out in reply mode over p's port. */
struct stream_out peer_out(const struct agent_peer *p, uint32_t request);

/* Reply ERROR with code and a printf-style text. 0 or RTCMS_ECONN. */
int peer_reply_errorf(const struct agent_peer *p, uint32_t request, int code,
		      const char *fmt, ...) __attribute__((format(printf, 4, 5)));

#endif
