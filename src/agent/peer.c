/*
 * peer.c - a manager connection as an agent_peer (peer.h).
 */
#include "peer.h"

#include <stdarg.h>
#include <stdio.h>

static int client_reply_error(void *ctx, uint32_t request, int code, const char *text)
{
	return net_client_reply_error(ctx, request, code, 0, text);
}

static void client_set_timeout(void *ctx, int timeout_ms)
{
	net_client_set_timeout(ctx, timeout_ms);
}

struct agent_peer peer_of_client(struct net_client *c)
{
	return (struct agent_peer){
		.port = stream_port_client(c),
		.reply_error = client_reply_error,
		.set_timeout = client_set_timeout,
		.ctx = c,
	};
}

struct stream_out peer_out(const struct agent_peer *p, uint32_t request)
{
	return (struct stream_out){ .port = p->port, .reply = true, .request = request };
}

int peer_reply_errorf(const struct agent_peer *p, uint32_t request, int code,
		      const char *fmt, ...)
{
	char text[PROTO_TEXT_MAX + 1];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	return p->reply_error(p->ctx, request, code, text);
}
