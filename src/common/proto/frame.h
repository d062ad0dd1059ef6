/*
 * frame.h - the rtcms frame: fixed header, payload, authentication tag.
 *
 * Every message between rtcms parts travels in one frame:
 *
 *   offset size field
 *   0      4    magic      "RTCM" (0x5254434D)
 *   4      1    version    PROTO_VERSION
 *   5      1    type       message type (enum proto_type, msg.h)
 *   6      2    flags      PROTO_F_* bits
 *   8      8    sender     node id of the sender (0 if none)
 *   16     8    epoch      incarnation or epoch the sender acts under
 *   24     4    request    request id; a reply echoes the request's id
 *   28     4    length     payload length in bytes (<= PROTO_MAX_PAYLOAD)
 *   32     8    counter    per-direction frame counter (the AEAD nonce)
 *   40     n    payload    ciphertext (data frames) or plaintext (HELLO);
 *                           with PROTO_F_RAW: a ciphertext head, then a
 *                           raw tail
 *   40+n   16   tag        authentication tag
 *
 * All integers are big-endian. HELLO and HELLO_ACK frames (the handshake)
 * are plaintext, authenticated with a keyed BLAKE2b-128 MAC under the
 * cluster key over header||payload. Every other frame is sealed with
 * ChaCha20-Poly1305-IETF under a per-connection, per-direction session key
 * (session.h), the header as additional data and the counter as nonce, so
 * it is both confidential and authenticated. A frame flagged PROTO_F_RAW
 * (a CHUNK whose data is a sealed chunk, sealed once at its source under
 * the data key) seals only its head, the first proto_type_raw_head(type)
 * bytes of the payload; the tail after it travels as it is, bound to the
 * head by the chunk's own checks (docs/protocol.md, "Raw tails").
 *
 * This module is pure: no I/O, no logging, no allocation.
 */
#ifndef RTCMS_PROTO_FRAME_H
#define RTCMS_PROTO_FRAME_H

#include <stddef.h>
#include <stdint.h>

#define PROTO_MAGIC        0x5254434Du /* "RTCM" */
#define PROTO_VERSION      2
#define PROTO_HEADER_SIZE  40
#define PROTO_TAG_SIZE     16
#define PROTO_KEY_SIZE     32
/* Largest chunk of checkpoint data in one CHUNK frame. */
#define PROTO_MAX_CHUNK    (1u << 20)
/* Largest payload of any frame: one chunk plus its small header. */
#define PROTO_MAX_PAYLOAD  (PROTO_MAX_CHUNK + 4096u)
#define PROTO_MAX_FRAME    (PROTO_HEADER_SIZE + PROTO_MAX_PAYLOAD + PROTO_TAG_SIZE)

/* Initialise the crypto library (idempotent, thread-safe). Returns 0 or
 * RTCMS_EINTERNAL. Called by proto_session_init(). */
int proto_init(void);

/* Header flags. */
#define PROTO_F_REPLY      0x0001u /* frame answers a request */
#define PROTO_F_MORE       0x0002u /* more reply frames follow (streams, pages) */
#define PROTO_F_STREAM     0x0004u /* PUT_BEGIN: CHUNKs and PUT_END follow at
                                    * once, without waiting for PUT_READY */
#define PROTO_F_RAW        0x0008u /* only the payload's head is sealed, the
                                    * tail is raw (CHUNK of a sealed chunk) */
#define PROTO_F_KNOWN      0x000Fu /* every flag defined in this version */

struct proto_header {
	uint8_t version;
	uint8_t type;
	uint16_t flags;
	uint64_t sender;
	uint64_t epoch;
	uint32_t request;
	uint32_t length;
	uint64_t counter;
};

/* A 32-byte symmetric key (cluster key or session key). */
struct proto_key {
	uint8_t bytes[PROTO_KEY_SIZE];
};

/*
 * Write hdr as the 40-byte wire header into out. Never fails for a header
 * whose length is within PROTO_MAX_PAYLOAD; returns PROTO_HEADER_SIZE, or
 * RTCMS_ETOOBIG.
 */
int proto_header_encode(const struct proto_header *hdr,
			uint8_t out[PROTO_HEADER_SIZE]);

/*
 * Decode a wire header from buf. Returns PROTO_HEADER_SIZE on success,
 * RTCMS_EAGAIN if len < PROTO_HEADER_SIZE, RTCMS_EPROTO for a bad magic,
 * unknown type or unknown flags, RTCMS_EVERSION for another version, and
 * RTCMS_ETOOBIG if the payload length exceeds PROTO_MAX_PAYLOAD or the cap
 * of its message type (proto_type_max_payload()). Nothing is authenticated
 * yet: use it only to learn how many bytes the whole frame takes.
 */
int proto_header_decode(const uint8_t *buf, size_t len,
			struct proto_header *out);

/* Total wire size of a frame whose payload is payload_len bytes. */
static inline size_t proto_frame_size(uint32_t payload_len)
{
	return PROTO_HEADER_SIZE + (size_t)payload_len + PROTO_TAG_SIZE;
}

/*
 * Seal a data frame: write header (hdr->length is set to payload_len),
 * encrypted payload and tag into out (capacity cap). Returns the frame size,
 * or RTCMS_ETOOBIG if payload_len or the frame does not fit.
 * payload and out may not overlap.
 */
int proto_frame_seal(const struct proto_key *key, struct proto_header *hdr,
		     const uint8_t *payload, size_t payload_len,
		     uint8_t *out, size_t cap);

/*
 * Like proto_frame_seal, but the payload_len plaintext bytes already sit at
 * out + PROTO_HEADER_SIZE and are encrypted in place. With PROTO_F_RAW in
 * hdr->flags only the type's head (proto_type_raw_head()) is encrypted,
 * the rest stays as it is (RTCMS_EINVAL for a type without one, or a
 * payload no longer than it).
 */
int proto_frame_seal_inplace(const struct proto_key *key,
			     struct proto_header *hdr, size_t payload_len,
			     uint8_t *out, size_t cap);

/*
 * A raw frame (PROTO_F_RAW in hdr->flags) without its tail: the head_len
 * plaintext bytes of the type's head sit at out + PROTO_HEADER_SIZE; the
 * header (for a payload of head_len + tail_len bytes), the sealed head and
 * then the tag are written at out. The frame on the wire is out's first
 * PROTO_HEADER_SIZE + head_len bytes, the tail_len bytes of the tail, then
 * the tag. Returns the bytes written at out, RTCMS_EINVAL (not raw, not
 * the type's head, no tail) or RTCMS_ETOOBIG.
 */
int proto_frame_seal_head(const struct proto_key *key, struct proto_header *hdr,
			  size_t head_len, size_t tail_len, uint8_t *out, size_t cap);

/*
 * Open a data frame of exactly len bytes sealed under key. Checks the header
 * (as proto_header_decode), that hdr.counter == expected_counter
 * (else RTCMS_EREPLAY), then the tag (else RTCMS_EAUTH), and decrypts the
 * payload into payload_out (capacity cap, at least hdr.length bytes).
 * Returns the payload length. On any error nothing in payload_out is valid.
 * A PROTO_F_RAW frame's head is decrypted and its tail copied as it is.
 */
int proto_frame_open(const struct proto_key *key, uint64_t expected_counter,
		     const uint8_t *frame, size_t len, struct proto_header *hdr,
		     uint8_t *payload_out, size_t cap);

/*
 * proto_frame_open in place: the payload is decrypted where it is (a raw
 * tail stays as it is), at frame + PROTO_HEADER_SIZE. Returns as
 * proto_frame_open; on an error the frame's payload is not valid.
 */
int proto_frame_open_inplace(const struct proto_key *key, uint64_t expected_counter,
			     uint8_t *frame, size_t len, struct proto_header *hdr);

/*
 * Handshake frames: like seal/open but the payload stays plaintext and the
 * tag is BLAKE2b-128 keyed with the cluster key over header||payload.
 * proto_frame_open_plain() returns the payload length and points *payload
 * into frame (borrowed).
 */
int proto_frame_seal_plain(const struct proto_key *key,
			   struct proto_header *hdr, const uint8_t *payload,
			   size_t payload_len, uint8_t *out, size_t cap);
int proto_frame_open_plain(const struct proto_key *key, const uint8_t *frame,
			   size_t len, struct proto_header *hdr,
			   const uint8_t **payload);

#endif
