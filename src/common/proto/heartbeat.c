/* heartbeat.c - UDP heartbeat datagrams (MACed plaintext frames). */
#include "heartbeat.h"

#include <string.h>

#include "rtcms_error.h"

int proto_heartbeat_seal(const struct proto_key *key, uint8_t type,
			 const struct proto_heartbeat *hb, uint8_t *out, size_t cap)
{
	uint8_t payload[PROTO_HEARTBEAT_MAX];
	union proto_msg m;

	if (type != PROTO_HEARTBEAT && type != PROTO_HEARTBEAT_ACK)
		return RTCMS_EINVAL;
	m.heartbeat = *hb;
	int n = proto_msg_encode(type, &m, payload, sizeof(payload));
	if (n < 0)
		return n;
	struct proto_header hdr = {
		.type = type,
		.sender = hb->node,
		.counter = hb->counter,
	};
	return proto_frame_seal_plain(key, &hdr, payload, (size_t)n, out, cap);
}

int proto_heartbeat_open(const struct proto_key *key, const uint8_t *buf, size_t len,
			 uint8_t *type, struct proto_heartbeat *hb)
{
	struct proto_header hdr;
	const uint8_t *payload;
	union proto_msg m;

	if (len > PROTO_HEARTBEAT_MAX)
		return RTCMS_ETOOBIG;
	int n = proto_frame_open_plain(key, buf, len, &hdr, &payload);
	if (n == RTCMS_EAGAIN)
		return RTCMS_EPROTO; /* a datagram is whole or nothing */
	if (n < 0)
		return n;
	if (hdr.type != PROTO_HEARTBEAT && hdr.type != PROTO_HEARTBEAT_ACK)
		return RTCMS_EPROTO;
	memset(&m, 0, sizeof(m));
	int rc = proto_msg_decode(hdr.type, payload, (size_t)n, &m);
	if (rc < 0)
		return rc;
	if (m.heartbeat.counter != hdr.counter || m.heartbeat.node != hdr.sender ||
	    hdr.flags || hdr.epoch || hdr.request)
		return RTCMS_EPROTO;
	*type = hdr.type;
	*hb = m.heartbeat;
	return 0;
}
