/*
 * gate.h - the door of a server on a libuv loop: it listens, accepts, and
 * holds each new connection until the peer's whole HELLO frame (the first
 * step of the handshake, docs/protocol.md) has arrived; only then does it
 * hand the connection to the server, which authenticates the HELLO and
 * counts the connection against its own cap (max_connections).
 *
 * A connection still waiting for its HELLO is *pending*. Pending
 * connections hold none of the server's slots, threads or large buffers
 * (a few hundred bytes each), and they cannot lock real clients out:
 *   - each must deliver its whole HELLO within the handshake deadline
 *     (GATE_HANDSHAKE_MS) counted from its accept; bytes trickled in do
 *     not extend it, so an idle peer and a slow-loris are cut alike;
 *   - at most max_pending are held; when one more arrives, the OLDEST
 *     pending connection is closed to make room, so a new peer - one
 *     that sends its HELLO at once, as every client does - always gets in.
 * A first frame that is not a HELLO, or a bad header, gets a plaintext
 * ERROR frame (MACed under the cluster key) and the connection is closed.
 *
 * Loop thread only: every call and callback runs on the loop.
 */
#ifndef RTCMS_DAEMON_GATE_H
#define RTCMS_DAEMON_GATE_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "proto/frame.h"

/* Default handshake deadline: the whole HELLO within this of the accept. */
#define GATE_HANDSHAKE_MS 1000
/* Default cap on pending connections (the oldest is closed beyond it). */
#define GATE_MAX_PENDING 256

/*
 * A whole HELLO frame (len bytes at hello, not yet checked) arrived from
 * peer. fd is a new descriptor of the connection (non-blocking); the
 * gate's own handle is already closed. Return 0 to take fd (the callee
 * owns it from then on), or a negative RTCMS_E* code to refuse the
 * connection: the gate sends a plaintext ERROR with that code and closes
 * fd. hello is valid only during the call.
 */
typedef int (*gate_hello_cb)(void *ctx, int fd, const char *peer,
			     const uint8_t *hello, size_t len);

struct gate_options {
	const char *listen;            /* "host:port"; port 0 = ephemeral */
	const struct proto_key *key;   /* cluster key: MACs ERROR frames */
	int handshake_ms;              /* 0: GATE_HANDSHAKE_MS */
	int max_pending;               /* 0: GATE_MAX_PENDING */
	gate_hello_cb on_hello;
	void *ctx;
};

struct gate;

/*
 * Bind and listen on loop; the bound address ("host:port") is written to
 * bound (cap bytes). Returns 0 and *out, or RTCMS_EINVAL (bad address),
 * RTCMS_EIO (cannot bind or listen; logged), RTCMS_ENOMEM.
 */
int gate_start(uv_loop_t *loop, const struct gate_options *opt, struct gate **out,
	       char *bound, size_t cap);

/*
 * Stop listening and close every pending connection; on_hello is not
 * called again. The gate is freed on the loop once its handles closed
 * (run the loop once more). gate_stop(NULL) is a no-op.
 */
void gate_stop(struct gate *g);

#endif
