/* delta.c - delta images (build, parse, apply) and state hashes. */
#include "delta.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "image.h"
#include "rtcms_error.h"
#include "util/bytes.h"

#define ENTRY 24
#define FULL_HEAD 32

int image_version(const uint8_t *img, size_t len)
{
	if (len < FULL_HEAD || get_be32(img) != IMAGE_MAGIC)
		return RTCMS_EPROTO;
	uint32_t v = get_be32(img + 4);
	return v == IMAGE_VERSION || v == DELTA_VERSION ? (int)v : RTCMS_EPROTO;
}

int image_sequence(const uint8_t *img, size_t len, uint64_t *sequence)
{
	if (image_version(img, len) != IMAGE_VERSION)
		return RTCMS_EPROTO;
	*sequence = get_be64(img + 8);
	return 0;
}

size_t delta_size(uint32_t n, uint32_t k)
{
	return DELTA_HEAD + (size_t)n * ENTRY + (size_t)k * 4 + (size_t)k * AREA_BLOCK;
}

int delta_parse(const uint8_t *img, size_t len, struct delta_info *out)
{
	if (len < DELTA_HEAD || get_be32(img) != IMAGE_MAGIC ||
	    get_be32(img + 4) != DELTA_VERSION || get_be32(img + 20) != 0 ||
	    get_be32(img + 44) != 0)
		return RTCMS_EPROTO;
	uint32_t n = get_be32(img + 16), k = get_be32(img + 40);
	uint64_t seq = get_be64(img + 8), d = get_be64(img + 24), base = get_be64(img + 32);
	if (n > AREA_MAX_REGIONS)
		return RTCMS_ETOOBIG;
	if (seq > (UINT64_MAX >> 1) || base == 0 || base >= seq || d % AREA_BLOCK ||
	    k > d / AREA_BLOCK || len != delta_size(n, k))
		return RTCMS_EPROTO;
	int rc = image_parse_regions(img + DELTA_HEAD, n, d, out->regions);
	if (rc)
		return rc;
	const uint8_t *blocks = img + DELTA_HEAD + (size_t)n * ENTRY;
	for (uint32_t i = 0; i < k; i++) {
		uint32_t b = get_be32(blocks + (size_t)i * 4);
		if (b >= d / AREA_BLOCK || (i && b <= get_be32(blocks + (size_t)(i - 1) * 4)))
			return RTCMS_EPROTO;
	}
	out->sequence = seq;
	out->base = base;
	out->data_size = d;
	out->region_count = n;
	out->block_count = k;
	out->blocks = blocks;
	out->data = blocks + (size_t)k * 4;
	return 0;
}

int64_t delta_head(const uint8_t *head, size_t head_len, uint64_t full_len,
		   const uint64_t *versions, uint64_t base, uint8_t *out, size_t cap)
{
	struct area_region regions[AREA_MAX_REGIONS];
	uint64_t seq, d;
	uint32_t n;
	int rc = image_parse_head(head, head_len, full_len, &seq, regions, &n, &d);
	if (rc)
		return rc;
	if (base == 0 || base >= seq || d % AREA_BLOCK)
		return RTCMS_EINVAL;
	uint32_t k = 0;
	for (uint64_t b = 0; b < d / AREA_BLOCK; b++)
		k += versions[b] > base;
	size_t len = delta_size(n, k) - (size_t)k * AREA_BLOCK;
	if (cap < len)
		return RTCMS_ETOOBIG;
	memcpy(out, head, FULL_HEAD + (size_t)n * ENTRY); /* magic, seq, n, d, table */
	memmove(out + DELTA_HEAD, out + FULL_HEAD, (size_t)n * ENTRY);
	put_be32(out + 4, DELTA_VERSION);
	put_be64(out + 32, base);
	put_be32(out + 40, k);
	put_be32(out + 44, 0);
	uint8_t *list = out + DELTA_HEAD + (size_t)n * ENTRY;
	for (uint64_t b = 0; b < d / AREA_BLOCK; b++) {
		if (versions[b] <= base)
			continue;
		put_be32(list, (uint32_t)b);
		list += 4;
	}
	return (int64_t)len;
}

int64_t delta_build(const uint8_t *full, size_t full_len, const uint64_t *versions,
		    uint64_t base, uint8_t *out, size_t cap)
{
	int64_t len = delta_head(full, full_len, full_len, versions, base, out, cap);
	if (len < 0)
		return len;
	uint32_t n = get_be32(out + 16), k = get_be32(out + 40);
	if (cap < delta_size(n, k))
		return RTCMS_ETOOBIG;
	const uint8_t *data = full + image_size(n, 0), *list = out + DELTA_HEAD + (size_t)n * ENTRY;
	uint8_t *dst = out + len;
	for (uint32_t i = 0; i < k; i++, dst += AREA_BLOCK)
		memcpy(dst, data + (size_t)get_be32(list + (size_t)i * 4) * AREA_BLOCK, AREA_BLOCK);
	return (int64_t)delta_size(n, k);
}

/* delta_apply() on a full image whose head is at head and whose data is
 * at data (cap bytes of room), or, data NULL, right after its head in one
 * buffer of cap bytes at head. */
static int apply(uint8_t *head, uint8_t *data, uint64_t *len, size_t cap,
		 const uint8_t *delta, size_t dlen)
{
	struct delta_info di;
	struct area_region regions[AREA_MAX_REGIONS];
	uint64_t seq, d;
	uint32_t n;
	int rc = delta_parse(delta, dlen, &di);
	if (rc)
		return rc;
	size_t avail = data ? IMAGE_HEAD_MAX : (size_t)*len;
	rc = image_parse_head(head, avail, *len, &seq, regions, &n, &d);
	if (rc || seq != di.base)
		return RTCMS_EPROTO;
	size_t table = (size_t)di.region_count * ENTRY;
	int same = n == di.region_count && d == di.data_size &&
		   memcmp(head + FULL_HEAD, delta + DELTA_HEAD, table) == 0;
	if (!same && di.block_count != di.data_size / AREA_BLOCK)
		return RTCMS_EPROTO; /* a new layout needs every block */
	size_t full = image_size(di.region_count, di.data_size);
	if (data ? di.data_size > cap : full > cap)
		return RTCMS_ETOOBIG;
	/* header and table of the new sequence; then its blocks */
	memcpy(head, delta, 32);
	put_be32(head + 4, IMAGE_VERSION);
	memcpy(head + FULL_HEAD, delta + DELTA_HEAD, table);
	uint8_t *dst = data ? data : head + FULL_HEAD + table;
	for (uint32_t i = 0; i < di.block_count; i++) {
		uint32_t b = get_be32(di.blocks + (size_t)i * 4);
		memcpy(dst + (size_t)b * AREA_BLOCK, di.data + (size_t)i * AREA_BLOCK, AREA_BLOCK);
	}
	*len = full;
	return 0;
}

int delta_apply(uint8_t *buf, size_t *len, size_t cap, const uint8_t *delta, size_t dlen)
{
	uint64_t l = *len;
	int rc = apply(buf, NULL, &l, cap, delta, dlen);
	if (rc == 0)
		*len = (size_t)l;
	return rc;
}

int delta_apply_apart(uint8_t *head, uint8_t *data, uint64_t *len, size_t data_cap,
		      const uint8_t *delta, size_t dlen)
{
	return apply(head, data, len, data_cap, delta, dlen);
}

void state_block_hash(const uint8_t *data, size_t len, uint8_t out[STATE_BLOCK_HASH_SIZE])
{
	XXH128_canonicalFromHash((XXH128_canonical_t *)(void *)out, XXH3_128bits(data, len));
}

/* A block's hash of either version, into out (its size returned). */
static size_t block_hash_of(int version, const uint8_t *data, size_t len,
			    uint8_t out[STATE_HASH_SIZE])
{
	if (version == STATE_HASH_V1) {
		crypto_generichash(out, STATE_HASH_SIZE, data, len, NULL, 0);
		return STATE_HASH_SIZE;
	}
	state_block_hash(data, len, out);
	return STATE_BLOCK_HASH_SIZE;
}

/* Start a state hash over a full image's head (header and region table). */
static void state_begin(crypto_generichash_state *st, int version, const uint8_t *head,
			size_t head_len)
{
	/* the tags as they were written, their NUL included */
	static const char v1[] = "rtcms state v1", v2[] = "rtcms state v2";
	crypto_generichash_init(st, NULL, 0, STATE_HASH_SIZE);
	crypto_generichash_update(st, (const uint8_t *)(version == STATE_HASH_V1 ? v1 : v2),
				  sizeof(v1));
	crypto_generichash_update(st, head, head_len);
}

void state_hash_blocks(const uint8_t *head, size_t head_len,
		       const uint8_t (*block_hash)[STATE_BLOCK_HASH_SIZE], size_t blocks,
		       uint8_t out[STATE_HASH_SIZE])
{
	crypto_generichash_state st;
	state_begin(&st, STATE_HASH_V2, head, head_len);
	crypto_generichash_update(&st, (const uint8_t *)block_hash,
				  blocks * STATE_BLOCK_HASH_SIZE);
	crypto_generichash_final(&st, out, STATE_HASH_SIZE);
}

void state_hasher_init_version(struct state_hasher *h, uint64_t len, int version)
{
	memset(h, 0, sizeof(*h));
	h->len = len;
	h->version = version == STATE_HASH_V1 ? STATE_HASH_V1 : STATE_HASH_V2;
}

void state_hasher_init(struct state_hasher *h, uint64_t len)
{
	state_hasher_init_version(h, len, STATE_HASH_V2);
}

/* Take bytes of the head (header, then the table it names); once it is
 * whole, check it and start the hash. Returns the bytes taken. */
static size_t hasher_head(struct state_hasher *h, const uint8_t *p, size_t n)
{
	struct area_region regions[AREA_MAX_REGIONS];
	uint64_t seq, d;
	uint32_t count, named = 0;
	size_t want = FULL_HEAD;

	if (h->fill >= FULL_HEAD) {
		named = get_be32(h->head + 16);
		want = image_size(named <= AREA_MAX_REGIONS ? named : 0, 0);
	}
	size_t take = want - h->fill < n ? want - h->fill : n;
	memcpy(h->head + h->fill, p, take);
	h->fill += take;
	if (h->fill < want)
		return take;
	if (want == FULL_HEAD && (named = get_be32(h->head + 16)) != 0 &&
	    named <= AREA_MAX_REGIONS)
		return take; /* the table next */
	h->err = image_parse_head(h->head, h->fill, h->len, &seq, regions, &count, &d);
	if (h->err == 0) {
		state_begin(&h->st, h->version, h->head, h->fill);
		h->data = true;
		h->fill = 0;
	}
	return take;
}

int state_hasher_update(struct state_hasher *h, const uint8_t *p, size_t n)
{
	if (h->err == 0 && n > h->len - h->got)
		h->err = RTCMS_EPROTO;
	if (h->err)
		return h->err;
	h->got += n;
	while (n > 0 && !h->data) {
		size_t took = hasher_head(h, p, n);
		if (h->err)
			return h->err;
		p += took;
		n -= took;
	}
	uint8_t bh[STATE_HASH_SIZE];
	while (n > 0) {
		if (h->fill == 0 && n >= AREA_BLOCK) { /* a whole block in place */
			crypto_generichash_update(&h->st, bh,
						  block_hash_of(h->version, p, AREA_BLOCK, bh));
			p += AREA_BLOCK;
			n -= AREA_BLOCK;
			continue;
		}
		size_t take = AREA_BLOCK - h->fill < n ? AREA_BLOCK - h->fill : n;
		memcpy(h->block + h->fill, p, take);
		h->fill += take;
		p += take;
		n -= take;
		if (h->fill == AREA_BLOCK) {
			crypto_generichash_update(&h->st, bh,
						  block_hash_of(h->version, h->block, AREA_BLOCK, bh));
			h->fill = 0;
		}
	}
	return 0;
}

int state_hasher_final(struct state_hasher *h, uint8_t out[STATE_HASH_SIZE])
{
	if (h->err == 0 && (h->got != h->len || !h->data))
		h->err = RTCMS_EPROTO;
	if (h->err)
		return h->err;
	if (h->fill) { /* the last block may be shorter */
		uint8_t bh[STATE_HASH_SIZE];
		crypto_generichash_update(&h->st, bh,
					  block_hash_of(h->version, h->block, h->fill, bh));
		h->fill = 0;
	}
	crypto_generichash_final(&h->st, out, STATE_HASH_SIZE);
	h->err = RTCMS_EINVAL; /* used up */
	return 0;
}

/* The state hash of an image kept apart, of one version. */
static int apart_hash(const uint8_t *head, size_t head_len, const uint8_t *data,
		      size_t data_len, int version, uint8_t out[STATE_HASH_SIZE])
{
	struct state_hasher *h = malloc(sizeof(*h)); /* 4 KiB and more: not on a stack */
	if (!h)
		return RTCMS_ENOMEM;
	state_hasher_init_version(h, head_len + data_len, version);
	state_hasher_update(h, head, head_len);
	if (data_len)
		state_hasher_update(h, data, data_len);
	int rc = state_hasher_final(h, out);
	free(h);
	return rc;
}

int state_hash_version(const uint8_t *full, size_t len, int version,
		       uint8_t out[STATE_HASH_SIZE])
{
	/* a whole image is one kept apart with nothing after its "head" */
	int rc = apart_hash(full, len, NULL, 0, version, out);
	return rc == RTCMS_ENOMEM ? rc : rc ? RTCMS_EPROTO : 0;
}

int state_hash(const uint8_t *full, size_t len, uint8_t out[STATE_HASH_SIZE])
{
	return state_hash_version(full, len, STATE_HASH_V2, out);
}

int state_hash_check(const uint8_t *head, size_t head_len, const uint8_t *data,
		     size_t data_len, const uint8_t expected[STATE_HASH_SIZE])
{
	static const int versions[] = { STATE_HASH_V2, STATE_HASH_V1 };
	uint8_t h[STATE_HASH_SIZE];

	for (size_t i = 0; i < sizeof(versions) / sizeof(versions[0]); i++) {
		int rc = apart_hash(head, head_len, data, data_len, versions[i], h);
		if (rc)
			return rc; /* no image (the same for both), or no memory */
		if (sodium_memcmp(h, expected, STATE_HASH_SIZE) == 0)
			return 0;
	}
	return RTCMS_ECORRUPT;
}
