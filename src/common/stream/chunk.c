/* chunk.c - a chunk's id, its sealing and its checks (see chunk.h). */
#include "chunk.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <sodium.h>
#include <string.h>
#include <xxhash.h>

#include "rtcms_error.h"
#include "util/bytes.h"

#define AD_LABEL "rtcms-chunk-v1"
#define AD_SIZE (sizeof(AD_LABEL) - 1 + 4 + 4 + STREAM_ID_SIZE)

void stream_chunk_id(const uint8_t *data, size_t len, uint8_t id[STREAM_ID_SIZE])
{
	proto_chunk_hash(data, len, id);
}

bool stream_chunk_intact(const struct proto_chunk *chunk)
{
	uint8_t id[STREAM_ID_SIZE];

	if (chunk->key_id && chunk->opened)
		return true;
	if (chunk->key_id)
		return stream_chunk_sum_ok(chunk->data, chunk->len + STREAM_TAG_SIZE,
					   chunk->sum);
	stream_chunk_id(chunk->data, chunk->len, id);
	return sodium_memcmp(id, chunk->hash, STREAM_ID_SIZE) == 0;
}

void stream_chunk_sum(const uint8_t *sealed, size_t len, uint8_t sum[STREAM_SUM_SIZE])
{
	XXH128_canonical_t c;

	XXH128_canonicalFromHash(&c, XXH3_128bits(sealed, len));
	memcpy(sum, c.digest, STREAM_SUM_SIZE);
}

bool stream_chunk_sum_ok(const uint8_t *sealed, size_t len,
			 const uint8_t sum[STREAM_SUM_SIZE])
{
	uint8_t got[STREAM_SUM_SIZE];

	stream_chunk_sum(sealed, len, got);
	return memcmp(got, sum, STREAM_SUM_SIZE) == 0;
}

#define MAC_LABEL "rtcms-chunk-mac-v1"
#define MAC_IN_SIZE (sizeof(MAC_LABEL) - 1 + 4 + 4 + STREAM_ID_SIZE)

int stream_chunk_mac(const struct proto_key *kcm, const struct proto_chunk *chunk,
		     uint8_t mac[PROTO_CHUNK_MAC])
{
	uint8_t in[MAC_IN_SIZE], k[32], *p = in;
	unsigned int kn = sizeof(k);
	size_t n = 0;
	int rc = RTCMS_EINTERNAL;

	/* a one-time key per chunk: the sealed bytes of one (key id, id) are
	 * one string, so each Poly1305 key authenticates one message */
	memcpy(p, MAC_LABEL, sizeof(MAC_LABEL) - 1);
	p += sizeof(MAC_LABEL) - 1;
	put_be32(p, chunk->key_id);
	put_be32(p + 4, chunk->len);
	memcpy(p + 8, chunk->hash, STREAM_ID_SIZE);
	if (HMAC(EVP_sha256(), kcm->bytes, PROTO_KEY_SIZE, in, sizeof(in), k, &kn) &&
	    EVP_Q_mac(NULL, "POLY1305", NULL, NULL, NULL, k, sizeof(k), chunk->data,
		      (size_t)chunk->len + STREAM_TAG_SIZE, mac, PROTO_CHUNK_MAC, &n) &&
	    n == PROTO_CHUNK_MAC)
		rc = 0;
	sodium_memzero(k, sizeof(k));
	return rc;
}

bool stream_chunk_mac_ok(const struct proto_key *kcm, const struct proto_chunk *chunk)
{
	uint8_t mac[PROTO_CHUNK_MAC];

	return stream_chunk_mac(kcm, chunk, mac) == 0 &&
	       sodium_memcmp(mac, chunk->mac, PROTO_CHUNK_MAC) == 0;
}

static const EVP_CIPHER *cipher_of(const struct datakey *key)
{
	return key->cipher == DATAKEY_AES_256_GCM ? EVP_aes_256_gcm()
						   : EVP_chacha20_poly1305();
}

/* The chunk's own key and the AD that binds it to key id, length and id. */
static bool chunk_key(const struct datakey *key, const uint8_t id[STREAM_ID_SIZE],
		      size_t len, uint8_t k[32], uint8_t ad[AD_SIZE])
{
	unsigned int n = 32;
	uint8_t *p = ad;

	memcpy(p, AD_LABEL, sizeof(AD_LABEL) - 1);
	p += sizeof(AD_LABEL) - 1;
	put_be32(p, key->id);
	put_be32(p + 4, (uint32_t)len);
	memcpy(p + 8, id, STREAM_ID_SIZE);
	return HMAC(EVP_sha256(), key->k_enc, DATAKEY_SIZE, id, STREAM_ID_SIZE,
		    k, &n) != NULL;
}

/* One AEAD pass: seal (enc) or open; the tag is written or checked. */
static int aead(const struct datakey *key, const uint8_t id[STREAM_ID_SIZE],
		int enc, const uint8_t *in, size_t len, uint8_t *out,
		uint8_t tag[STREAM_TAG_SIZE])
{
	static const uint8_t nonce[12];
	uint8_t k[32], ad[AD_SIZE];
	EVP_CIPHER_CTX *ctx = NULL;
	int n = 0, rc = RTCMS_EINTERNAL;

	if (!chunk_key(key, id, len, k, ad))
		goto out;
	ctx = EVP_CIPHER_CTX_new();
	if (!ctx || !EVP_CipherInit_ex(ctx, cipher_of(key), NULL, k, nonce, enc))
		goto out;
	if (!enc && !EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_SET_TAG,
					 STREAM_TAG_SIZE, tag))
		goto out;
	if (!EVP_CipherUpdate(ctx, NULL, &n, ad, (int)sizeof(ad)) ||
	    !EVP_CipherUpdate(ctx, out, &n, in, (int)len))
		goto out;
	if (!EVP_CipherFinal_ex(ctx, out + n, &n)) {
		rc = enc ? RTCMS_EINTERNAL : RTCMS_ECORRUPT;
		goto out;
	}
	if (enc && !EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_GET_TAG,
					STREAM_TAG_SIZE, tag))
		goto out;
	rc = 0;
out:
	EVP_CIPHER_CTX_free(ctx);
	sodium_memzero(k, sizeof(k));
	return rc;
}

void stream_chunk_keyed_id(const struct datakey *key, const uint8_t *plain, size_t len,
			   uint8_t id[STREAM_ID_SIZE])
{
	unsigned int n = STREAM_ID_SIZE;

	HMAC(EVP_sha256(), key->k_id, DATAKEY_SIZE, plain, len, id, &n);
}

int stream_chunk_seal_as(const struct datakey *key, const uint8_t id[STREAM_ID_SIZE],
			 const uint8_t *plain, size_t len, uint8_t *sealed,
			 uint8_t sum[STREAM_SUM_SIZE])
{
	if (len == 0 || len > PROTO_MAX_CHUNK)
		return RTCMS_EINVAL;
	int rc = aead(key, id, 1, plain, len, sealed, sealed + len);
	if (rc == 0)
		stream_chunk_sum(sealed, len + STREAM_TAG_SIZE, sum);
	return rc;
}

int stream_chunk_seal(const struct datakey *key, const uint8_t *plain,
		      size_t len, uint8_t id[STREAM_ID_SIZE], uint8_t *sealed,
		      uint8_t sum[STREAM_SUM_SIZE])
{
	if (len == 0 || len > PROTO_MAX_CHUNK)
		return RTCMS_EINVAL;
	stream_chunk_keyed_id(key, plain, len, id);
	return stream_chunk_seal_as(key, id, plain, len, sealed, sum);
}

int stream_chunk_open(const struct datakey *key, const uint8_t id[STREAM_ID_SIZE],
		      const uint8_t *sealed, size_t sealed_len, uint8_t *plain)
{
	uint8_t tag[STREAM_TAG_SIZE];
	size_t len;
	int rc;

	if (sealed_len <= STREAM_TAG_SIZE ||
	    sealed_len > PROTO_MAX_CHUNK + STREAM_TAG_SIZE)
		return RTCMS_EINVAL;
	len = sealed_len - STREAM_TAG_SIZE;
	memcpy(tag, sealed + len, STREAM_TAG_SIZE);
	rc = aead(key, id, 0, sealed, len, plain, tag);
	if (rc != 0)
		sodium_memzero(plain, len);
	return rc;
}

#define SPEC_LABEL "rtcms-spec-v1"
static const uint8_t spec_magic[4] = { 0x89, 'r', 't', 'S' };

bool stream_spec_is_sealed(const uint8_t *blob, size_t len)
{
	return len >= 4 && memcmp(blob, spec_magic, 4) == 0;
}

/* The id of process's spec (len <= PROTO_SPEC_MAX) under key. */
static void spec_id(const struct datakey *key, const char *process, const uint8_t *spec,
		    size_t len, uint8_t id[STREAM_ID_SIZE])
{
	uint8_t in[sizeof(SPEC_LABEL) - 1 + PROTO_ID_MAX + 1 + PROTO_SPEC_MAX];
	size_t plen = strnlen(process, PROTO_ID_MAX);
	unsigned int n = STREAM_ID_SIZE;
	uint8_t *p = in;

	memcpy(p, SPEC_LABEL, sizeof(SPEC_LABEL) - 1);
	p += sizeof(SPEC_LABEL) - 1;
	memcpy(p, process, plen);
	p += plen;
	*p++ = 0;
	memcpy(p, spec, len);
	p += len;
	if (!HMAC(EVP_sha256(), key->k_id, DATAKEY_SIZE, in, (size_t)(p - in), id, &n))
		memset(id, 0, STREAM_ID_SIZE); /* opens nothing: refused there */
	sodium_memzero(in, (size_t)(p - in));
}

int stream_spec_seal(const struct datakey *key, const char *process, const uint8_t *spec,
		     size_t len, uint8_t *out, size_t cap)
{
	uint8_t sum[STREAM_SUM_SIZE];

	if (len == 0 || len > PROTO_SPEC_MAX)
		return RTCMS_EINVAL;
	if (cap < len + STREAM_SPEC_SEALED_EXTRA)
		return RTCMS_ETOOBIG;
	memcpy(out, spec_magic, 4);
	put_be32(out + 4, key->id);
	spec_id(key, process, spec, len, out + 8);
	int rc = stream_chunk_seal_as(key, out + 8, spec, len, out + STREAM_SPEC_SEALED_HEAD,
				      sum);
	return rc ? rc : (int)(len + STREAM_SPEC_SEALED_EXTRA);
}

int stream_spec_open(const struct datakey_ring *ring, const char *process,
		     const uint8_t *blob, size_t len, uint8_t *out, size_t cap,
		     uint32_t *key_id)
{
	uint8_t id[STREAM_ID_SIZE];

	*key_id = 0;
	if (!stream_spec_is_sealed(blob, len) || len <= STREAM_SPEC_SEALED_EXTRA)
		return RTCMS_EPROTO;
	size_t n = len - STREAM_SPEC_SEALED_EXTRA;
	if (n > cap || n > PROTO_SPEC_MAX)
		return RTCMS_ETOOBIG;
	*key_id = get_be32(blob + 4);
	const struct datakey *key = ring ? datakey_find(ring, *key_id) : NULL;
	if (!key)
		return RTCMS_ENOENT;
	if (stream_chunk_open(key, blob + 8, blob + STREAM_SPEC_SEALED_HEAD,
			      len - STREAM_SPEC_SEALED_HEAD, out) != 0)
		return RTCMS_ECORRUPT;
	/* the id is of this process's spec: not one moved from another */
	spec_id(key, process, out, n, id);
	if (sodium_memcmp(id, blob + 8, STREAM_ID_SIZE) != 0) {
		sodium_memzero(out, n);
		return RTCMS_ECORRUPT;
	}
	return (int)n;
}
