/*
 * heartbeat.h - the UDP heartbeat: an agent tells every manager it is
 * alive (HEARTBEAT), a manager answers (HEARTBEAT_ACK) and the answer
 * renews the agent's lease. One datagram = one plaintext frame MACed under
 * the cluster key (like HELLO): a frame of another type, another key or a
 * flipped bit is refused. Replays: the counter rises by one per heartbeat
 * of a boot; receivers refuse a counter not above the last they accepted
 * for the same (node, boot). Pure: no I/O.
 */
#ifndef RTCMS_PROTO_HEARTBEAT_H
#define RTCMS_PROTO_HEARTBEAT_H

#include <stddef.h>
#include <stdint.h>

#include "msg.h"

/* Largest heartbeat datagram. */
#define PROTO_HEARTBEAT_MAX 256

/*
 * Seal hb as a HEARTBEAT or HEARTBEAT_ACK datagram into out (cap bytes).
 * Returns its size, or RTCMS_EINVAL (other type) / RTCMS_ETOOBIG.
 */
int proto_heartbeat_seal(const struct proto_key *key, uint8_t type,
			 const struct proto_heartbeat *hb, uint8_t *out, size_t cap);

/*
 * Check and decode a datagram of len bytes: *type is HEARTBEAT or
 * HEARTBEAT_ACK. Returns 0, RTCMS_EAUTH (wrong key or tampered),
 * RTCMS_EPROTO (malformed, another type), RTCMS_ETOOBIG.
 */
int proto_heartbeat_open(const struct proto_key *key, const uint8_t *buf, size_t len,
			 uint8_t *type, struct proto_heartbeat *hb);

#endif
