/* fuzz_session.c - a server session fed arbitrary bytes: first as HELLO,
 * then, after a real handshake, as the next data frame. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proto/session.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint8_t plain[PROTO_MAX_PAYLOAD];
static struct proto_list_entry entries[PROTO_LIST_MAX];

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const struct proto_key key = { { 9, 8, 7, 6, 5, 4, 3, 2, 1 } };
	struct proto_session c, s, s2;
	struct proto_header h;
	union proto_msg m;
	uint8_t hello[512], ack[512];

	/* arbitrary bytes as a HELLO */
	proto_session_init(&s, &key, false, 0);
	proto_session_accept(&s, data, size, PROTO_ROLE_STORE, "s", ack, sizeof(ack));

	/* arbitrary bytes as the first frame of an established session */
	proto_session_init(&c, &key, true, 0);
	proto_session_init(&s2, &key, false, 0);
	int n = proto_session_hello(&c, PROTO_ROLE_CLI, "c", hello, sizeof(hello));
	int a = proto_session_accept(&s2, hello, (size_t)n, PROTO_ROLE_STORE, "s",
				     ack, sizeof(ack));
	if (n < 0 || a < 0 || proto_session_finish(&c, ack, (size_t)a) != 0)
		abort();
	m.list_reply.entries = entries;
	if (proto_session_open(&s2, data, size, &h, plain, sizeof(plain), &m) == 0)
		abort(); /* forging a frame without the session key */
	/* and as the client's view of a HELLO_ACK */
	proto_session_init(&c, &key, true, 0);
	proto_session_hello(&c, PROTO_ROLE_CLI, "c", hello, sizeof(hello));
	proto_session_finish(&c, data, size);
	return 0;
}
