/*
 * msg_base.c - the payloads every part speaks: the handshake (HELLO,
 * HELLO_ACK), the generic replies (ERROR, OK), checkpoint data (CHUNK) and
 * the UDP heartbeat (HEARTBEAT, HEARTBEAT_ACK). Encode and decode side by
 * side; docs/protocol.md has the byte tables.
 */
#include "msg_int.h"

#include <sodium.h>

/* HELLO, HELLO_ACK */

static void enc_hello(struct proto_wr *w, const union proto_msg *m)
{
	const struct proto_hello *h = &m->hello;
	w_bytes(w, h->nonce, PROTO_NONCE_SIZE);
	w_bytes(w, h->echo, PROTO_NONCE_SIZE);
	w_u8(w, h->role);
	w_str(w, h->name, PROTO_ID_MAX);
}

static void dec_hello(struct proto_rd *r, union proto_msg *m)
{
	struct proto_hello *h = &m->hello;
	r_bytes(r, h->nonce, PROTO_NONCE_SIZE);
	r_bytes(r, h->echo, PROTO_NONCE_SIZE);
	h->role = r_u8(r);
	r_check(r, h->role >= PROTO_ROLE_CLI && h->role <= PROTO_ROLE_STORE);
	r_str(r, h->name, PROTO_ID_MAX);
}

/* ERROR */

static void enc_error(struct proto_wr *w, const union proto_msg *m)
{
	const struct proto_error *e = &m->error;
	if (e->code >= 0 || e->code < RTCMS_EINTERNAL) {
		w_fail(w, RTCMS_EINVAL);
		return;
	}
	w_u32(w, (uint32_t)e->code);
	w_u64(w, e->detail);
	w_str(w, e->who, PROTO_ID_MAX);
	w_str(w, e->text, PROTO_TEXT_MAX);
}

static void dec_error(struct proto_rd *r, union proto_msg *m)
{
	struct proto_error *e = &m->error;
	e->code = (int32_t)r_u32(r);
	r_check(r, e->code < 0 && e->code >= RTCMS_EINTERNAL);
	e->detail = r_u64(r);
	r_str(r, e->who, PROTO_ID_MAX);
	r_str(r, e->text, PROTO_TEXT_MAX);
}

/* CHUNK: offset, key id, id, sum, MAC (the head, PROTO_CHUNK_HEAD bytes),
 * then the data: the rest of the payload (the plaintext for key 0, whose
 * sum and MAC are zero; else the sealed bytes, PROTO_CHUNK_TAG more than
 * the plaintext) */

size_t proto_chunk_head_encode(const struct proto_chunk *c, uint8_t head[PROTO_CHUNK_HEAD])
{
	if (c->len == 0 || c->len > PROTO_MAX_CHUNK || c->opened)
		return 0;
	put_be64(head, c->offset);
	put_be32(head + 8, c->key_id);
	memcpy(head + 12, c->hash, PROTO_HASH_SIZE);
	if (c->key_id) {
		memcpy(head + 12 + PROTO_HASH_SIZE, c->sum, PROTO_CHUNK_SUM);
		memcpy(head + 12 + PROTO_HASH_SIZE + PROTO_CHUNK_SUM, c->mac, PROTO_CHUNK_MAC);
	} else {
		memset(head + 12 + PROTO_HASH_SIZE, 0, PROTO_CHUNK_SUM + PROTO_CHUNK_MAC);
	}
	return (size_t)c->len + (c->key_id ? PROTO_CHUNK_TAG : 0);
}

static void enc_chunk(struct proto_wr *w, const union proto_msg *m)
{
	uint8_t head[PROTO_CHUNK_HEAD];
	size_t data_len = proto_chunk_head_encode(&m->chunk, head);
	if (!data_len) {
		w_fail(w, RTCMS_EINVAL);
		return;
	}
	w_bytes(w, head, sizeof(head));
	w_bytes(w, m->chunk.data, data_len);
}

static void dec_chunk(struct proto_rd *r, union proto_msg *m)
{
	struct proto_chunk *c = &m->chunk;
	c->offset = r_u64(r);
	c->key_id = r_u32(r);
	r_bytes(r, c->hash, PROTO_HASH_SIZE);
	r_bytes(r, c->sum, PROTO_CHUNK_SUM);
	r_bytes(r, c->mac, PROTO_CHUNK_MAC);
	c->opened = false;
	if (r->err)
		return;
	size_t rest = r->len - r->off, tag = c->key_id ? PROTO_CHUNK_TAG : 0;
	r_check(r, rest > tag && rest - tag <= PROTO_MAX_CHUNK &&
		   (c->key_id || (sodium_is_zero(c->sum, PROTO_CHUNK_SUM) &&
				   sodium_is_zero(c->mac, PROTO_CHUNK_MAC))));
	if (r->err)
		return;
	c->len = (uint32_t)(rest - tag);
	r_check(r, c->offset <= UINT64_MAX - c->len);
	c->data = r_take(r, rest);
}

/* HEARTBEAT, HEARTBEAT_ACK */

static void enc_heartbeat(struct proto_wr *w, const union proto_msg *m)
{
	const struct proto_heartbeat *h = &m->heartbeat;
	w_u64(w, h->node);
	w_bytes(w, h->boot, PROTO_BOOT_SIZE);
	w_u64(w, h->counter);
	w_u64(w, h->sent_ms);
	w_u32(w, h->processes);
}

static void dec_heartbeat(struct proto_rd *r, union proto_msg *m)
{
	struct proto_heartbeat *h = &m->heartbeat;
	h->node = r_u64(r);
	r_bytes(r, h->boot, PROTO_BOOT_SIZE);
	h->counter = r_u64(r);
	h->sent_ms = r_u64(r);
	h->processes = r_u32(r);
}

const struct proto_codec proto_codecs_base[] = {
	{ PROTO_HELLO, "HELLO", 256, enc_hello, dec_hello },
	{ PROTO_HELLO_ACK, "HELLO_ACK", 256, enc_hello, dec_hello },
	{ PROTO_ERROR, "ERROR", 1024, enc_error, dec_error },
	{ PROTO_OK, "OK", 0, NULL, NULL },
	{ PROTO_CHUNK, "CHUNK", PROTO_MAX_PAYLOAD, enc_chunk, dec_chunk },
	{ PROTO_HEARTBEAT, "HEARTBEAT", 256, enc_heartbeat, dec_heartbeat },
	{ PROTO_HEARTBEAT_ACK, "HEARTBEAT_ACK", 256, enc_heartbeat, dec_heartbeat },
};
const size_t proto_codecs_base_n =
	sizeof(proto_codecs_base) / sizeof(proto_codecs_base[0]);
