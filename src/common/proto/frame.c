/* frame.c - frame header, AEAD sealing and handshake MACs. Pure. */
#include "frame.h"

#include <sodium.h>
#include <stdbool.h>
#include <string.h>

#include "msg.h"
#include "rtcms_error.h"
#include "util/bytes.h"

int proto_header_encode(const struct proto_header *hdr,
			uint8_t out[PROTO_HEADER_SIZE])
{
	if (hdr->length > PROTO_MAX_PAYLOAD)
		return RTCMS_ETOOBIG;
	put_be32(out, PROTO_MAGIC);
	out[4] = hdr->version;
	out[5] = hdr->type;
	put_be16(out + 6, hdr->flags);
	put_be64(out + 8, hdr->sender);
	put_be64(out + 16, hdr->epoch);
	put_be32(out + 24, hdr->request);
	put_be32(out + 28, hdr->length);
	put_be64(out + 32, hdr->counter);
	return PROTO_HEADER_SIZE;
}

int proto_header_decode(const uint8_t *buf, size_t len,
			struct proto_header *out)
{
	if (len < PROTO_HEADER_SIZE)
		return RTCMS_EAGAIN;
	if (get_be32(buf) != PROTO_MAGIC)
		return RTCMS_EPROTO;
	out->version = buf[4];
	out->type = buf[5];
	out->flags = get_be16(buf + 6);
	out->sender = get_be64(buf + 8);
	out->epoch = get_be64(buf + 16);
	out->request = get_be32(buf + 24);
	out->length = get_be32(buf + 28);
	out->counter = get_be64(buf + 32);
	if (out->version != PROTO_VERSION)
		return RTCMS_EVERSION;
	if (!proto_type_known(out->type) || (out->flags & ~PROTO_F_KNOWN))
		return RTCMS_EPROTO;
	if (out->length > proto_type_max_payload(out->type))
		return RTCMS_ETOOBIG;
	return PROTO_HEADER_SIZE;
}

/* 96-bit IETF nonce: 4 zero bytes, then the 64-bit counter big-endian. */
static void make_nonce(uint8_t nonce[12], uint64_t counter)
{
	memset(nonce, 0, 4);
	put_be64(nonce + 4, counter);
}

/* The header of a frame of payload_len bytes, written at out, which must
 * hold need bytes of it: the frame's total size, or RTCMS_ETOOBIG (over
 * the type's cap or out's cap). */
static int header_put(struct proto_header *hdr, size_t payload_len, uint8_t *out,
		      size_t cap, size_t need)
{
	if (payload_len > PROTO_MAX_PAYLOAD ||
	    payload_len > proto_type_max_payload(hdr->type))
		return RTCMS_ETOOBIG;
	size_t total = proto_frame_size((uint32_t)payload_len);
	if (cap < need)
		return RTCMS_ETOOBIG;
	hdr->version = PROTO_VERSION;
	hdr->length = (uint32_t)payload_len;
	proto_header_encode(hdr, out);
	return (int)total;
}

/* The header of a whole frame of payload_len bytes at out (cap). */
static int header_place(struct proto_header *hdr, size_t payload_len, uint8_t *out,
			size_t cap)
{
	return header_put(hdr, payload_len, out, cap, proto_frame_size((uint32_t)payload_len));
}

/* How many payload bytes of a frame the session seals: all of them, or
 * with PROTO_F_RAW its type's head (0: not a valid raw frame). */
static size_t sealed_part(const struct proto_header *hdr, size_t payload_len)
{
	if (!(hdr->flags & PROTO_F_RAW))
		return payload_len;
	size_t head = proto_type_raw_head(hdr->type);
	return head && payload_len > head ? head : 0;
}

/* Encrypt the first sealed payload bytes of the frame at out in place,
 * the header as AD, and write the tag at tag. */
static void seal_at(const struct proto_key *key, const struct proto_header *hdr,
		    size_t sealed, uint8_t *out, uint8_t *tag)
{
	uint8_t nonce[12];

	make_nonce(nonce, hdr->counter);
	crypto_aead_chacha20poly1305_ietf_encrypt_detached(
		out + PROTO_HEADER_SIZE, tag, NULL, out + PROTO_HEADER_SIZE, sealed, out,
		PROTO_HEADER_SIZE, NULL, nonce, key->bytes);
}

int proto_frame_seal_inplace(const struct proto_key *key,
			     struct proto_header *hdr, size_t payload_len,
			     uint8_t *out, size_t cap)
{
	size_t sealed = sealed_part(hdr, payload_len);

	if (!sealed && (hdr->flags & PROTO_F_RAW))
		return RTCMS_EINVAL;
	int total = header_place(hdr, payload_len, out, cap);
	if (total < 0)
		return total;
	/* the tag after the whole payload, as for a sealed one: with a raw
	 * tail it covers the header and the head */
	seal_at(key, hdr, sealed, out, out + PROTO_HEADER_SIZE + payload_len);
	return total;
}

int proto_frame_seal_head(const struct proto_key *key, struct proto_header *hdr,
			  size_t head_len, size_t tail_len, uint8_t *out, size_t cap)
{
	if (!(hdr->flags & PROTO_F_RAW) || head_len != proto_type_raw_head(hdr->type) ||
	    !head_len || !tail_len || tail_len > PROTO_MAX_PAYLOAD)
		return RTCMS_EINVAL;
	int total = header_put(hdr, head_len + tail_len, out, cap,
			       PROTO_HEADER_SIZE + head_len + PROTO_TAG_SIZE);
	if (total < 0)
		return total;
	seal_at(key, hdr, head_len, out, out + PROTO_HEADER_SIZE + head_len);
	return (int)(PROTO_HEADER_SIZE + head_len + PROTO_TAG_SIZE);
}

int proto_frame_seal(const struct proto_key *key, struct proto_header *hdr,
		     const uint8_t *payload, size_t payload_len,
		     uint8_t *out, size_t cap)
{
	if (payload_len > PROTO_MAX_PAYLOAD ||
	    cap < proto_frame_size((uint32_t)payload_len))
		return RTCMS_ETOOBIG;
	if (payload_len)
		memcpy(out + PROTO_HEADER_SIZE, payload, payload_len);
	return proto_frame_seal_inplace(key, hdr, payload_len, out, cap);
}

/* Check a complete frame's header and exact length. */
static int frame_check(const uint8_t *frame, size_t len,
		       struct proto_header *hdr)
{
	int rc = proto_header_decode(frame, len, hdr);
	if (rc < 0)
		return rc;
	size_t total = proto_frame_size(hdr->length);
	if (len < total)
		return RTCMS_EAGAIN;
	if (len > total)
		return RTCMS_EPROTO;
	return 0;
}

/* Open into payload_out, which may be the frame's own payload (in place:
 * then a raw tail is where it is already). */
static int frame_open(const struct proto_key *key, uint64_t expected_counter,
		      const uint8_t *frame, size_t len, struct proto_header *hdr,
		      uint8_t *payload_out, size_t cap)
{
	uint8_t nonce[12];
	int rc = frame_check(frame, len, hdr);

	if (rc < 0)
		return rc;
	if (cap < hdr->length)
		return RTCMS_ETOOBIG;
	if (hdr->counter != expected_counter)
		return RTCMS_EREPLAY;
	size_t sealed = sealed_part(hdr, hdr->length);
	if (!sealed && (hdr->flags & PROTO_F_RAW))
		return RTCMS_EPROTO; /* raw, but not a head and a tail of its type */
	const uint8_t *payload = frame + PROTO_HEADER_SIZE;
	make_nonce(nonce, hdr->counter);
	if (crypto_aead_chacha20poly1305_ietf_decrypt_detached(
		    payload_out, NULL, payload, sealed, payload + hdr->length, frame,
		    PROTO_HEADER_SIZE, nonce, key->bytes) != 0)
		return RTCMS_EAUTH;
	if (sealed < hdr->length && payload_out != payload)
		memcpy(payload_out + sealed, payload + sealed, hdr->length - sealed);
	return (int)hdr->length;
}

int proto_frame_open(const struct proto_key *key, uint64_t expected_counter,
		     const uint8_t *frame, size_t len, struct proto_header *hdr,
		     uint8_t *payload_out, size_t cap)
{
	return frame_open(key, expected_counter, frame, len, hdr, payload_out, cap);
}

int proto_frame_open_inplace(const struct proto_key *key, uint64_t expected_counter,
			     uint8_t *frame, size_t len, struct proto_header *hdr)
{
	/* a short frame fails frame_check before its payload is touched */
	bool whole = len >= PROTO_HEADER_SIZE + PROTO_TAG_SIZE;
	return frame_open(key, expected_counter, frame, len, hdr,
			  whole ? frame + PROTO_HEADER_SIZE : NULL,
			  whole ? len - PROTO_HEADER_SIZE - PROTO_TAG_SIZE : 0);
}

static void plain_mac(const struct proto_key *key, const uint8_t *frame,
		      size_t body_len, uint8_t tag[PROTO_TAG_SIZE])
{
	crypto_generichash(tag, PROTO_TAG_SIZE, frame, body_len, key->bytes,
			   PROTO_KEY_SIZE);
}

int proto_frame_seal_plain(const struct proto_key *key,
			   struct proto_header *hdr, const uint8_t *payload,
			   size_t payload_len, uint8_t *out, size_t cap)
{
	int total = header_place(hdr, payload_len, out, cap);
	if (total < 0)
		return total;
	if (payload_len)
		memmove(out + PROTO_HEADER_SIZE, payload, payload_len);
	plain_mac(key, out, PROTO_HEADER_SIZE + payload_len,
		  out + PROTO_HEADER_SIZE + payload_len);
	return total;
}

int proto_frame_open_plain(const struct proto_key *key, const uint8_t *frame,
			   size_t len, struct proto_header *hdr,
			   const uint8_t **payload)
{
	uint8_t tag[PROTO_TAG_SIZE];
	int rc = frame_check(frame, len, hdr);

	if (rc < 0)
		return rc;
	plain_mac(key, frame, PROTO_HEADER_SIZE + hdr->length, tag);
	if (sodium_memcmp(tag, frame + PROTO_HEADER_SIZE + hdr->length,
			  PROTO_TAG_SIZE) != 0)
		return RTCMS_EAUTH;
	*payload = frame + PROTO_HEADER_SIZE;
	return (int)hdr->length;
}

int proto_init(void)
{
	return sodium_init() < 0 ? RTCMS_EINTERNAL : 0;
}
