/*
 * rpc_server.h - the control-plane server of rtcms-agent and
 * rtcms-manager: a libuv listener on the daemon's event loop, and one
 * thread per connection that runs the handshake and then a request loop
 * of blocking calls with timeouts (net/client.h).
 *
 * Why threads and not the loop: control-plane requests are few, but some
 * last long (a migration waits for a restore on another node, a restore
 * waits for a program to resume); running each connection on its own
 * thread keeps the loop free for timers, signals and child processes,
 * and every blocking call has a timeout.
 *
 * Caps: a connection gets its thread only once its peer's HELLO arrived
 * (daemon/gate.h: on the loop, within GATE_HANDSHAKE_MS of the accept, at
 * most GATE_MAX_PENDING waiting, the oldest closed to make room), and at
 * most max_connections threads exist (beyond, the HELLO gets EBUSY).
 * So idle or slow peers hold neither threads nor slots, the thread cap
 * bounds threads and memory, and an authenticated client is served
 * whatever unauthenticated ones do.
 */
#ifndef RTCMS_DAEMON_RPC_SERVER_H
#define RTCMS_DAEMON_RPC_SERVER_H

#include <stddef.h>
#include <uv.h>

#include "net/client.h"

/* What a connection does after a request. */
enum rpc_result {
	RPC_NEXT = 0,                  /* wait for the next request */
	RPC_CLOSE,                     /* close it: a protocol violation, a broken
					* stream, a conversation that must end */
};

/* RPC_NEXT if a reply was sent (send_rc is net_client_reply()'s 0), else
 * RPC_CLOSE (the connection broke). */
static inline enum rpc_result rpc_sent(int send_rc)
{
	return send_rc == 0 ? RPC_NEXT : RPC_CLOSE;
}

/*
 * Called on a connection thread for every authenticated request. Reply
 * with net_client_reply()/net_client_reply_error() (the request id is
 * hdr->request); streams may send and receive more frames on conn.
 * Returns what the connection does next.
 */
typedef enum rpc_result (*rpc_handler)(void *ctx, struct net_client *conn, const char *peer,
				       const struct proto_header *hdr, union proto_msg *msg);

struct rpc_server_options {
	const char *listen;            /* "host:port"; port 0 = ephemeral */
	const struct proto_key *key;   /* cluster key */
	uint8_t role;                  /* announced in HELLO_ACK */
	const char *name;              /* announced in HELLO_ACK */
	int io_timeout_ms;             /* every frame of a request */
	int idle_timeout_ms;           /* a connection idle this long is closed */
	int max_connections;           /* connection threads (authenticated peers) */
	rpc_handler handler;
	void *ctx;
};

struct rpc_server;

/*
 * Bind and listen on loop. The bound address ("host:port") is written to
 * bound (cap bytes). Returns 0 and *out, or RTCMS_EINVAL (bad address),
 * RTCMS_EIO (cannot bind), RTCMS_ENOMEM.
 */
int rpc_server_start(uv_loop_t *loop, const struct rpc_server_options *opt,
		     struct rpc_server **out, char *bound, size_t cap);

/*
 * Stop accepting, shut down every open connection and wait for their
 * threads. Call from the loop thread; the listener handle is closed on
 * the loop (run the loop once more to finish). rpc_server_stop(NULL) is
 * a no-op.
 */
void rpc_server_stop(struct rpc_server *s);

/* Reply ERROR to the request in hdr with code and a printf-style text.
 * Returns RPC_NEXT, or RPC_CLOSE if the connection broke. */
enum rpc_result rpc_reply_error(struct net_client *c, const struct proto_header *hdr, int code,
		    const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/* Close every handle of loop (a daemon stopping): uv_run then returns. */
void rpc_close_all(uv_loop_t *loop);

/* Write "addr\n" to path atomically (temp file + rename): the ready file
 * tests and scripts wait for. Returns 0 or RTCMS_EIO. */
int rpc_write_ready_file(const char *path, const char *addr);

#endif
