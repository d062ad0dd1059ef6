/* session.c - handshake, per-direction session keys, frame counters. */
#include "session.h"

#include <sodium.h>
#include <stdio.h>
#include <string.h>

#include "rtcms_error.h"

void proto_chunk_mac_key(const struct proto_key *cluster, struct proto_key *out)
{
	static const char label[] = "rtcms-chunk-mac-v1";

	crypto_generichash(out->bytes, PROTO_KEY_SIZE, (const uint8_t *)label,
			   sizeof(label) - 1, cluster->bytes, PROTO_KEY_SIZE);
}

void proto_session_init(struct proto_session *s, const struct proto_key *cluster,
			bool is_client, uint64_t self_node)
{
	(void)proto_init();
	memset(s, 0, sizeof(*s));
	s->cluster = *cluster;
	proto_chunk_mac_key(cluster, &s->chunk_mac);
	s->is_client = is_client;
	s->self_node = self_node;
}

/* K = BLAKE2b-256(key = cluster, label || Nc || Ns) */
static void derive(const struct proto_key *cluster, const char *label,
		   const uint8_t *nc, const uint8_t *ns, struct proto_key *out)
{
	crypto_generichash_state st;
	crypto_generichash_init(&st, cluster->bytes, PROTO_KEY_SIZE, PROTO_KEY_SIZE);
	crypto_generichash_update(&st, (const uint8_t *)label, strlen(label));
	crypto_generichash_update(&st, nc, PROTO_NONCE_SIZE);
	crypto_generichash_update(&st, ns, PROTO_NONCE_SIZE);
	crypto_generichash_final(&st, out->bytes, PROTO_KEY_SIZE);
}

static void establish(struct proto_session *s, const uint8_t *nc,
		      const uint8_t *ns)
{
	struct proto_key c2s, s2c;
	derive(&s->cluster, "rtcms-c2s-v1", nc, ns, &c2s);
	derive(&s->cluster, "rtcms-s2c-v1", nc, ns, &s2c);
	s->tx_key = s->is_client ? c2s : s2c;
	s->rx_key = s->is_client ? s2c : c2s;
	s->tx_counter = 1;
	s->rx_counter = 1;
	s->established = true;
	sodium_memzero(&c2s, sizeof(c2s));
	sodium_memzero(&s2c, sizeof(s2c));
}

/* Encode a handshake message and seal it with the cluster key MAC. */
static int seal_hello(struct proto_session *s, uint8_t type,
		      const union proto_msg *m, uint8_t *out, size_t cap)
{
	uint8_t payload[256];
	struct proto_header hdr = { 0 };
	int n = proto_msg_encode(type, m, payload, sizeof(payload));
	if (n < 0)
		return n;
	hdr.type = type;
	hdr.sender = s->self_node;
	return proto_frame_seal_plain(&s->cluster, &hdr, payload, (size_t)n,
				      out, cap);
}

int proto_session_hello(struct proto_session *s, uint8_t role,
			const char *name, uint8_t *out, size_t cap)
{
	union proto_msg m;

	memset(&m, 0, sizeof(m));
	randombytes_buf(s->my_nonce, PROTO_NONCE_SIZE);
	memcpy(m.hello.nonce, s->my_nonce, PROTO_NONCE_SIZE);
	m.hello.role = role;
	if (strlen(name) > PROTO_ID_MAX)
		return RTCMS_EINVAL;
	strcpy(m.hello.name, name);
	return seal_hello(s, PROTO_HELLO, &m, out, cap);
}

/* Open a handshake frame of the expected type. */
static int open_hello(struct proto_session *s, uint8_t type,
		      const uint8_t *frame, size_t len, union proto_msg *m)
{
	struct proto_header hdr;
	const uint8_t *payload;
	int n = proto_frame_open_plain(&s->cluster, frame, len, &hdr, &payload);
	if (n < 0)
		return n;
	if (hdr.type == PROTO_ERROR && type == PROTO_HELLO_ACK) {
		n = proto_msg_decode(PROTO_ERROR, payload, (size_t)n, m);
		return n < 0 ? n : m->error.code;
	}
	if (hdr.type != type || hdr.counter != 0)
		return RTCMS_EPROTO;
	n = proto_msg_decode(type, payload, (size_t)n, m);
	return n < 0 ? n : 0;
}

int proto_session_accept(struct proto_session *s, const uint8_t *hello,
			 size_t len, uint8_t role, const char *name,
			 uint8_t *out, size_t cap)
{
	union proto_msg m, ack;
	int rc;

	if (s->is_client || s->established)
		return RTCMS_ESTATE;
	rc = open_hello(s, PROTO_HELLO, hello, len, &m);
	if (rc)
		return rc;
	memset(&ack, 0, sizeof(ack));
	randombytes_buf(s->my_nonce, PROTO_NONCE_SIZE);
	memcpy(ack.hello.nonce, s->my_nonce, PROTO_NONCE_SIZE);
	memcpy(ack.hello.echo, m.hello.nonce, PROTO_NONCE_SIZE);
	ack.hello.role = role;
	if (strlen(name) > PROTO_ID_MAX)
		return RTCMS_EINVAL;
	strcpy(ack.hello.name, name);
	int n = seal_hello(s, PROTO_HELLO_ACK, &ack, out, cap);
	if (n < 0)
		return n;
	s->peer_role = m.hello.role;
	memcpy(s->peer_name, m.hello.name, sizeof(s->peer_name));
	establish(s, m.hello.nonce, s->my_nonce);
	return n;
}

int proto_session_finish(struct proto_session *s, const uint8_t *ack,
			 size_t len)
{
	union proto_msg m;
	int rc;

	if (!s->is_client || s->established)
		return RTCMS_ESTATE;
	rc = open_hello(s, PROTO_HELLO_ACK, ack, len, &m);
	if (rc)
		return rc;
	/* The echo binds this answer to our fresh nonce: an old HELLO_ACK
	 * replayed by someone else fails here. */
	if (sodium_memcmp(m.hello.echo, s->my_nonce, PROTO_NONCE_SIZE) != 0)
		return RTCMS_EAUTH;
	s->peer_role = m.hello.role;
	memcpy(s->peer_name, m.hello.name, sizeof(s->peer_name));
	establish(s, s->my_nonce, m.hello.nonce);
	return 0;
}

/* Whether a message goes with a raw tail: a sealed chunk's CHUNK (the one
 * rule, for whole frames and frames in parts). */
static bool sent_raw(uint8_t type, const union proto_msg *msg)
{
	return type == PROTO_CHUNK && msg->chunk.key_id != 0;
}

int proto_session_seal(struct proto_session *s, uint8_t type, uint16_t flags,
		       uint64_t epoch, uint32_t request,
		       const union proto_msg *msg, uint8_t *out, size_t cap)
{
	struct proto_header hdr;
	union proto_msg empty;
	int n;

	if (!s->established)
		return RTCMS_ESTATE;
	if (cap < PROTO_HEADER_SIZE + PROTO_TAG_SIZE)
		return RTCMS_ETOOBIG;
	if (!msg) {
		memset(&empty, 0, sizeof(empty));
		msg = &empty;
	}
	/* Encode straight into the frame's payload area, then encrypt in
	 * place (libsodium allows in-place encryption). */
	uint8_t *payload = out + PROTO_HEADER_SIZE;
	n = proto_msg_encode(type, msg, payload,
			     cap - PROTO_HEADER_SIZE - PROTO_TAG_SIZE);
	if (n < 0)
		return n;
	memset(&hdr, 0, sizeof(hdr));
	hdr.type = type;
	hdr.flags = flags & ~PROTO_F_RAW;
	if (sent_raw(type, msg))
		hdr.flags |= PROTO_F_RAW; /* sealed once already: not again */
	hdr.sender = s->self_node;
	hdr.epoch = epoch;
	hdr.request = request;
	hdr.counter = s->tx_counter;
	n = proto_frame_seal_inplace(&s->tx_key, &hdr, (size_t)n, out, cap);
	if (n >= 0)
		s->tx_counter++;
	return n;
}

int proto_session_seal_parts(struct proto_session *s, uint8_t type, uint16_t flags,
			     uint64_t epoch, uint32_t request, const union proto_msg *msg,
			     uint8_t *out, size_t cap, struct proto_frame_parts *parts)
{
	memset(parts, 0, sizeof(*parts));
	if (!msg || !sent_raw(type, msg)) {
		int n = proto_session_seal(s, type, flags, epoch, request, msg, out, cap);
		if (n < 0)
			return n;
		parts->head_len = (size_t)n - PROTO_TAG_SIZE;
		return 0;
	}
	if (!s->established)
		return RTCMS_ESTATE;
	if (cap < PROTO_HEADER_SIZE + PROTO_CHUNK_HEAD + PROTO_TAG_SIZE)
		return RTCMS_ETOOBIG;
	size_t tail_len = proto_chunk_head_encode(&msg->chunk, out + PROTO_HEADER_SIZE);
	if (!tail_len)
		return RTCMS_EINVAL;
	struct proto_header hdr = { .type = type,
				    .flags = (uint16_t)(flags | PROTO_F_RAW),
				    .sender = s->self_node, .epoch = epoch,
				    .request = request, .counter = s->tx_counter };
	int n = proto_frame_seal_head(&s->tx_key, &hdr, PROTO_CHUNK_HEAD, tail_len, out, cap);
	if (n < 0)
		return n;
	s->tx_counter++;
	parts->head_len = PROTO_HEADER_SIZE + PROTO_CHUNK_HEAD;
	parts->tail = msg->chunk.data;
	parts->tail_len = tail_len;
	return 0;
}

/* A frame just opened (n: its payload length or an error) into plain:
 * counted and decoded. */
static int opened(struct proto_session *s, int n, struct proto_header *hdr,
		  const uint8_t *plain, union proto_msg *msg)
{
	if (n < 0)
		return n;
	s->rx_counter++; /* authentic: it counts, even if it fails to decode */
	n = proto_msg_decode(hdr->type, plain, (size_t)n, msg);
	if (n < 0)
		return n;
	/* a sealed chunk comes raw, a plain one sealed by the session: no
	 * plaintext state ever travels raw */
	if (hdr->type == PROTO_CHUNK &&
	    (msg->chunk.key_id != 0) != ((hdr->flags & PROTO_F_RAW) != 0))
		return RTCMS_EPROTO;
	return 0;
}

int proto_session_open(struct proto_session *s, const uint8_t *frame,
		       size_t len, struct proto_header *hdr, uint8_t *plain,
		       size_t plain_cap, union proto_msg *msg)
{
	if (!s->established)
		return RTCMS_ESTATE;
	return opened(s, proto_frame_open(&s->rx_key, s->rx_counter, frame, len, hdr, plain,
					  plain_cap), hdr, plain, msg);
}

int proto_session_open_inplace(struct proto_session *s, uint8_t *frame, size_t len,
			       struct proto_header *hdr, union proto_msg *msg)
{
	if (!s->established)
		return RTCMS_ESTATE;
	return opened(s, proto_frame_open_inplace(&s->rx_key, s->rx_counter, frame, len, hdr),
		      hdr, frame + PROTO_HEADER_SIZE, msg);
}

int proto_session_plain_error(const struct proto_key *cluster, int code,
			      const char *text, uint8_t *out, size_t cap)
{
	union proto_msg m;
	uint8_t payload[1024];
	struct proto_header hdr = { 0 };

	memset(&m, 0, sizeof(m));
	m.error.code = code;
	snprintf(m.error.text, sizeof(m.error.text), "%s", text);
	int n = proto_msg_encode(PROTO_ERROR, &m, payload, sizeof(payload));
	if (n < 0)
		return n;
	hdr.type = PROTO_ERROR;
	return proto_frame_seal_plain(cluster, &hdr, payload, (size_t)n, out, cap);
}
