/*
 * client.h - a blocking, authenticated rtcms connection (client side).
 *
 * Used by rtcmsctl, the tests and the benchmarks; every call has a timeout
 * so no caller can hang on a dead peer. Not thread-safe: one connection per
 * thread.
 */
#ifndef RTCMS_NET_CLIENT_H
#define RTCMS_NET_CLIENT_H

#include <stdint.h>

#include "proto/msg.h"
#include "proto/session.h"

struct net_client;

/*
 * Connect to addr ("host:port"), run the handshake with the cluster key and
 * return the connection in *out. timeout_ms bounds the connect, the
 * handshake and every later send or receive. Returns 0, RTCMS_EINVAL (bad
 * address), RTCMS_ECONN, RTCMS_ETIMEDOUT or RTCMS_EAUTH (wrong key).
 * After RTCMS_ECONN errno says why where the system told (ECONNREFUSED,
 * EHOSTUNREACH, ECONNRESET, ...), else it is 0 (the peer closed).
 */
int net_client_connect(const char *addr, const struct proto_key *key,
		       uint8_t role, const char *name, int timeout_ms,
		       struct net_client **out);

/*
 * Server side: take over the accepted socket fd (closed on failure), read
 * the peer's HELLO and answer HELLO_ACK announcing role and name. A peer
 * without the cluster key gets a plain ERROR frame. Returns 0 and the
 * connection, or RTCMS_EAUTH, RTCMS_EPROTO, RTCMS_ECONN, RTCMS_ETIMEDOUT.
 */
int net_client_accept(int fd, const struct proto_key *key, uint8_t role,
		      const char *name, int timeout_ms, struct net_client **out);
/*
 * Server side, when the HELLO was read already (daemon/gate.h): take over
 * fd (closed on failure), check the HELLO frame (len bytes, copied) and
 * answer as net_client_accept() does; same results, never RTCMS_ETIMEDOUT
 * waiting for the HELLO.
 */
int net_client_accept_hello(int fd, const uint8_t *hello, size_t len,
			    const struct proto_key *key, uint8_t role, const char *name,
			    int timeout_ms, struct net_client **out);
/* Server side: send a reply (flag REPLY added) to request. */
int net_client_reply(struct net_client *c, uint8_t type, uint16_t flags,
		     uint32_t request, const union proto_msg *msg);
/* Server side: reply ERROR with code (a negative RTCMS_E*) and a text
 * (NULL: the code's description). */
int net_client_reply_error(struct net_client *c, uint32_t request, int code,
			   uint64_t detail, const char *text);
/* The socket (to shut it down from another thread). */
int net_client_fd(const struct net_client *c);
/* Close and free. net_client_free(NULL) is a no-op. */
void net_client_free(struct net_client *c);

/* Send one message; *request (may be NULL) receives its request id. */
int net_client_send(struct net_client *c, uint8_t type, uint16_t flags,
		    const union proto_msg *msg, uint32_t *request);

/*
 * Receive the next frame. Borrowed pointers in *msg stay valid until the
 * next receive. Returns 0 or RTCMS_ECONN / RTCMS_ETIMEDOUT / a decode error.
 * An ERROR frame is returned as such (hdr->type == PROTO_ERROR), not as an
 * error code.
 */
int net_client_recv(struct net_client *c, struct proto_header *hdr,
		    union proto_msg *msg);

/*
 * Send a request and wait for its reply of type expect. If the peer answers
 * ERROR, returns its code and keeps it for net_client_last_error(). A reply
 * of another type is RTCMS_EPROTO.
 */
int net_client_call(struct net_client *c, uint8_t type,
		    const union proto_msg *req, uint8_t expect,
		    struct proto_header *hdr, union proto_msg *reply);

/* The last ERROR received (code 0 if none). */
const struct proto_error *net_client_last_error(const struct net_client *c);

/* Remember an ERROR message received by a caller of net_client_recv(). */
void net_client_set_error(struct net_client *c, const struct proto_error *e);

/* Peer name from its HELLO_ACK. */
const char *net_client_peer(const struct net_client *c);

/* Set the timeout for later calls. */
void net_client_set_timeout(struct net_client *c, int timeout_ms);

/* Send raw bytes (tests of bad input only). */
int net_client_send_raw(struct net_client *c, const void *buf, size_t len);

/* The session, for tests that craft frames by hand. */
struct proto_session *net_client_session(struct net_client *c);

#endif
