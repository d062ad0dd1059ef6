/*
 * msg.c - encode and decode the typed payloads of rtcms frames. Pure: no
 * I/O, no logging, no allocation. Each message type's name, payload cap
 * and codec are in its family's table (msg_base.c, msg_store.c,
 * msg_agent.c, msg_manager.c; msg_int.h); this file looks a type up and
 * runs its codec. docs/protocol.md has the byte tables.
 */
#include "msg.h"

#include "msg_int.h"

/* ---- the codec table ------------------------------------------------- */

static const struct {
	const struct proto_codec *codecs;
	const size_t *n;
} families[] = {
	{ proto_codecs_base, &proto_codecs_base_n },
	{ proto_codecs_store, &proto_codecs_store_n },
	{ proto_codecs_agent, &proto_codecs_agent_n },
	{ proto_codecs_manager, &proto_codecs_manager_n },
};

/* The codec of a message type, or NULL if the type is unknown. */
static const struct proto_codec *codec_find(uint8_t type)
{
	for (size_t f = 0; f < sizeof(families) / sizeof(families[0]); f++)
		for (size_t i = 0; i < *families[f].n; i++)
			if (families[f].codecs[i].type == type)
				return &families[f].codecs[i];
	return NULL;
}

const char *proto_type_name(uint8_t type)
{
	const struct proto_codec *c = codec_find(type);
	return c ? c->name : NULL;
}

bool proto_type_known(uint8_t type)
{
	return codec_find(type) != NULL;
}

uint32_t proto_type_max_payload(uint8_t type)
{
	const struct proto_codec *c = codec_find(type);
	return c ? c->cap : 0;
}

size_t proto_type_raw_head(uint8_t type)
{
	return type == PROTO_CHUNK ? PROTO_CHUNK_HEAD : 0;
}

bool proto_process_id_valid(const char *s)
{
	size_t n = 0;
	for (; s[n]; n++) {
		char c = s[n];
		if (n >= PROTO_ID_MAX)
			return false;
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      (c >= '0' && c <= '9') || c == '.' || c == '_' ||
		      c == ':' || c == '-'))
			return false;
	}
	return n >= 1;
}

/* ---- encode and decode ------------------------------------------------ */

int proto_msg_encode(uint8_t type, const union proto_msg *m, uint8_t *buf,
		     size_t cap)
{
	const struct proto_codec *c = codec_find(type);
	struct proto_wr w = { buf, cap, 0, 0 };

	if (!c)
		return RTCMS_EPROTO;
	if (w.cap > c->cap)
		w.cap = c->cap;
	if (c->encode)
		c->encode(&w, m);
	return w.err ? w.err : (int)w.len;
}

int proto_msg_decode(uint8_t type, const uint8_t *buf, size_t len,
		     union proto_msg *m)
{
	const struct proto_codec *c = codec_find(type);
	struct proto_rd r = { buf, len, 0, 0 };

	if (!c)
		return RTCMS_EPROTO;
	if (len > c->cap)
		return RTCMS_ETOOBIG;
	if (c->decode)
		c->decode(&r, m);
	if (r.err)
		return r.err;
	if (r.off != r.len)
		return RTCMS_EPROTO; /* trailing bytes */
	return (int)len;
}

/* ---- hashes ---------------------------------------------------------- */

void proto_chunk_hash(const uint8_t *data, size_t len,
		      uint8_t out[PROTO_HASH_SIZE])
{
	crypto_generichash(out, PROTO_HASH_SIZE, data, len, NULL, 0);
}

void proto_image_hash_init(struct proto_image_hash *h, uint64_t size)
{
	static const char tag[] = "rtcms-image-v1";
	uint8_t be[8];

	crypto_generichash_init(&h->state, NULL, 0, PROTO_HASH_SIZE);
	crypto_generichash_update(&h->state, (const uint8_t *)tag, sizeof(tag) - 1);
	put_be64(be, size);
	crypto_generichash_update(&h->state, be, sizeof(be));
	h->size = size;
	h->next_offset = 0;
}

int proto_image_hash_update(struct proto_image_hash *h, uint64_t offset,
			    uint32_t len, const uint8_t hash[PROTO_HASH_SIZE])
{
	uint8_t rec[12];

	if (offset != h->next_offset || len == 0 || len > PROTO_MAX_CHUNK ||
	    len > h->size - offset)
		return RTCMS_EPROTO;
	put_be64(rec, offset);
	put_be32(rec + 8, len);
	crypto_generichash_update(&h->state, rec, sizeof(rec));
	crypto_generichash_update(&h->state, hash, PROTO_HASH_SIZE);
	h->next_offset = offset + len;
	return 0;
}

int proto_image_hash_final(struct proto_image_hash *h,
			   uint8_t out[PROTO_HASH_SIZE])
{
	if (h->next_offset != h->size)
		return RTCMS_EPROTO;
	crypto_generichash_final(&h->state, out, PROTO_HASH_SIZE);
	return 0;
}
