/*
 * session.h - connection handshake, session keys and replay protection.
 *
 * The client sends HELLO (its fresh 32-byte nonce Nc, role, name), MACed
 * under the cluster key. The server answers HELLO_ACK (its fresh nonce Ns,
 * the echoed Nc, role, name), MACed under the cluster key. Both derive
 *   Kc2s = BLAKE2b-256(key = cluster key, "rtcms-c2s-v1" || Nc || Ns)
 *   Ks2c = BLAKE2b-256(key = cluster key, "rtcms-s2c-v1" || Nc || Ns)
 * Every later frame is sealed under the key of its direction with a
 * counter starting at 1 and rising by exactly one per frame; the receiver
 * refuses any other counter. Hence a frame replayed from another connection
 * fails authentication (other keys), and a frame replayed, dropped or
 * reordered within a connection fails the counter check. A replayed HELLO
 * gets a fresh Ns, so its sender cannot derive the keys. A replayed
 * HELLO_ACK fails the echo check.
 *
 * A CHUNK whose data is a sealed chunk (key id not 0) is sent with a raw
 * tail (PROTO_F_RAW, frame.h): the session seals its head alone, and a
 * receiver refuses a CHUNK whose form does not match its key id. Every
 * session also holds the cluster's chunk MAC key,
 *   Kcm = BLAKE2b-256(key = cluster key, "rtcms-chunk-mac-v1"),
 * with which a sealed chunk's source proves its bytes to the store
 * (stream/chunk.h).
 *
 * Pure state machine: no I/O. The caller moves bytes.
 */
#ifndef RTCMS_PROTO_SESSION_H
#define RTCMS_PROTO_SESSION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "frame.h"
#include "msg.h"

struct proto_session {
	struct proto_key cluster;
	struct proto_key chunk_mac;       /* Kcm, the chunk MAC key (above) */
	struct proto_key tx_key;
	struct proto_key rx_key;
	uint64_t tx_counter;              /* counter of the next frame sent */
	uint64_t rx_counter;              /* counter expected of the next frame */
	uint64_t self_node;               /* put in the sender field */
	bool is_client;
	bool established;
	uint8_t my_nonce[PROTO_NONCE_SIZE];
	uint8_t peer_role;
	char peer_name[PROTO_ID_MAX + 1];
};

/* The chunk MAC key Kcm of a cluster key (above). */
void proto_chunk_mac_key(const struct proto_key *cluster, struct proto_key *out);

/* Prepare a session for either side. Does not fail. */
void proto_session_init(struct proto_session *s, const struct proto_key *cluster,
			bool is_client, uint64_t self_node);

/*
 * Client: build the HELLO frame into out. Returns the frame size or an
 * error (RTCMS_ETOOBIG if cap is too small).
 */
int proto_session_hello(struct proto_session *s, uint8_t role,
			const char *name, uint8_t *out, size_t cap);

/*
 * Server: check a received HELLO frame (len bytes) and build the HELLO_ACK
 * into out. On success the session is established and the frame size of
 * the HELLO_ACK is returned. RTCMS_EAUTH if the MAC is wrong (wrong key),
 * RTCMS_EPROTO if it is not a well-formed HELLO.
 */
int proto_session_accept(struct proto_session *s, const uint8_t *hello,
			 size_t len, uint8_t role, const char *name,
			 uint8_t *out, size_t cap);

/*
 * Client: check the HELLO_ACK frame. On success the session is established.
 * RTCMS_EAUTH for a wrong MAC or echo; an ERROR frame sent by the server
 * before the handshake (plaintext, MACed) yields its code.
 */
int proto_session_finish(struct proto_session *s, const uint8_t *ack,
			 size_t len);

/*
 * Seal a message of the given type as the next frame. hdr_in supplies
 * flags, epoch and request id (type, sender, counter and length are set
 * here). Returns the frame size or an error.
 */
int proto_session_seal(struct proto_session *s, uint8_t type, uint16_t flags,
		       uint64_t epoch, uint32_t request,
		       const union proto_msg *msg, uint8_t *out, size_t cap);

/*
 * Open the next received frame (exactly len bytes) and decode its payload.
 * plain is scratch space of at least PROTO_MAX_PAYLOAD bytes that holds the
 * decrypted payload; borrowed pointers in *msg point into it. Returns 0
 * or RTCMS_EREPLAY / RTCMS_EAUTH / RTCMS_EPROTO / RTCMS_ETOOBIG.
 */
int proto_session_open(struct proto_session *s, const uint8_t *frame,
		       size_t len, struct proto_header *hdr, uint8_t *plain,
		       size_t plain_cap, union proto_msg *msg);

/* proto_session_open in place: the payload is decrypted where it is in
 * frame, and borrowed pointers in *msg point into frame (a raw tail is
 * not copied). */
int proto_session_open_inplace(struct proto_session *s, uint8_t *frame, size_t len,
			       struct proto_header *hdr, union proto_msg *msg);

/*
 * A frame as up to three pieces to send in order: out[0 .. head_len), then
 * tail_len bytes at *tail, then out[head_len .. head_len + 16). A sealed
 * chunk's CHUNK (its data a raw tail) is sealed this way without copying
 * its data: *tail is its data, and out holds the header, the sealed head
 * and the tag. Any other message is sealed whole into out (tail_len 0, the
 * frame is out[0 .. head_len + 16)). Returns 0 or an error, as
 * proto_session_seal.
 */
struct proto_frame_parts {
	size_t head_len;
	const uint8_t *tail;
	size_t tail_len;
};
int proto_session_seal_parts(struct proto_session *s, uint8_t type, uint16_t flags,
			     uint64_t epoch, uint32_t request, const union proto_msg *msg,
			     uint8_t *out, size_t cap, struct proto_frame_parts *parts);

/*
 * Build an unauthenticated-peer ERROR frame (plaintext, MACed under the
 * cluster key) for a peer whose handshake failed; the peer can check it
 * only if it holds the key. Returns the frame size or an error.
 */
int proto_session_plain_error(const struct proto_key *cluster, int code,
			      const char *text, uint8_t *out, size_t cap);

#endif
