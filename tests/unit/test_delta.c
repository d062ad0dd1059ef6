/*
 * test_delta.c - delta images: built from versions, applied in chains they
 * give the same full image (and state hash) as a full capture; malformed
 * deltas, wrong bases and layout changes without every block are refused.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "area/delta.h"
#include "area/image.h"
#include "rtcms_error.h"
#include "util/bytes.h"

#define BLOCKS 64
#define DSIZE ((size_t)BLOCKS * AREA_BLOCK)

/* A full image of one region filling DSIZE bytes. */
static size_t make_full(uint8_t *img, uint64_t seq, const uint8_t *data, uint32_t regions)
{
	memset(img, 0, 32 + 24 * regions);
	put_be32(img, IMAGE_MAGIC);
	put_be32(img + 4, IMAGE_VERSION);
	put_be64(img + 8, seq);
	put_be32(img + 16, regions);
	put_be64(img + 24, DSIZE);
	for (uint32_t i = 0; i < regions; i++) {
		put_be32(img + 32 + 24 * i, i + 1);
		put_be64(img + 32 + 24 * i + 8, DSIZE / regions);
		put_be64(img + 32 + 24 * i + 16, DSIZE / regions * i);
	}
	memcpy(img + 32 + 24 * regions, data, DSIZE);
	return image_size(regions, DSIZE);
}

static void test_chain_equals_full(void **state)
{
	(void)state;
	size_t cap = image_size(2, DSIZE) + 4096;
	uint8_t *live = calloc(1, DSIZE), *full = malloc(cap), *chain = malloc(cap);
	uint8_t *delta = malloc(delta_size(2, BLOCKS));
	uint64_t versions[BLOCKS] = { 0 };
	uint8_t h1[STATE_HASH_SIZE], h2[STATE_HASH_SIZE];
	uint64_t x = 12345;

	for (size_t i = 0; i < DSIZE; i++)
		live[i] = (uint8_t)i;
	for (int b = 0; b < BLOCKS; b++)
		versions[b] = 1;
	size_t clen = make_full(chain, 1, live, 2);
	for (uint64_t seq = 2; seq < 60; seq++) {
		/* change a few blocks; the versions say which */
		int changes = (int)(seq % 5);
		for (int c = 0; c < changes; c++) {
			x = x * 6364136223846793005ull + 1442695040888963407ull;
			size_t b = (size_t)(x >> 33) % BLOCKS;
			live[b * AREA_BLOCK + (x >> 20) % AREA_BLOCK] ^= 0x5a;
			versions[b] = seq;
		}
		size_t flen = make_full(full, seq, live, 2);
		int64_t dlen = delta_build(full, flen, versions, seq - 1, delta,
					   delta_size(2, BLOCKS));
		assert_true(dlen > 0);
		struct delta_info di;
		assert_int_equal(delta_parse(delta, (size_t)dlen, &di), 0);
		assert_true(di.block_count <= (uint32_t)changes);
		assert_int_equal(image_version(delta, (size_t)dlen), 2);
		assert_int_equal(delta_apply(chain, &clen, cap, delta, (size_t)dlen), 0);
		assert_int_equal(clen, flen);
		assert_memory_equal(chain, full, flen);
		assert_int_equal(state_hash(full, flen, h1), 0);
		assert_int_equal(state_hash(chain, clen, h2), 0);
		assert_memory_equal(h1, h2, sizeof(h1));
	}
	/* a delta against an older base covers everything since */
	size_t flen = make_full(full, 60, live, 2);
	int64_t dlen = delta_build(full, flen, versions, 30, delta, delta_size(2, BLOCKS));
	struct delta_info di;
	assert_int_equal(delta_parse(delta, (size_t)dlen, &di), 0);
	uint32_t want = 0;
	for (int b = 0; b < BLOCKS; b++)
		want += versions[b] > 30;
	assert_int_equal(di.block_count, want);
	/* the state hash from block hashes is the same */
	uint8_t (*bh)[STATE_BLOCK_HASH_SIZE] = malloc((size_t)BLOCKS * STATE_BLOCK_HASH_SIZE);
	for (int b = 0; b < BLOCKS; b++)
		state_block_hash(full + 32 + 48 + (size_t)b * AREA_BLOCK, AREA_BLOCK, bh[b]);
	state_hash_blocks(full, 32 + 48, (const uint8_t (*)[STATE_BLOCK_HASH_SIZE])bh, BLOCKS,
			  h2);
	assert_int_equal(state_hash(full, flen, h1), 0);
	assert_memory_equal(h1, h2, sizeof(h1));
	free(bh);
	free(live);
	free(full);
	free(chain);
	free(delta);
}

static void test_refused(void **state)
{
	(void)state;
	size_t cap = image_size(2, DSIZE) + 4096;
	uint8_t *data = calloc(1, DSIZE), *full = malloc(cap), *base = malloc(cap);
	uint8_t *delta = malloc(delta_size(2, BLOCKS));
	uint64_t versions[BLOCKS];
	for (int b = 0; b < BLOCKS; b++)
		versions[b] = b == 3 || b == 9 ? 7 : 2;
	size_t flen = make_full(full, 7, data, 2);
	assert_int_equal(delta_build(full, flen, versions, 7, delta, cap), RTCMS_EINVAL);
	assert_int_equal(delta_build(full, flen, versions, 0, delta, cap), RTCMS_EINVAL);
	assert_int_equal(delta_build(full, flen, versions, 5, delta, 10), RTCMS_ETOOBIG);
	int64_t dlen = delta_build(full, flen, versions, 5, delta, delta_size(2, BLOCKS));
	assert_int_equal(dlen, (int64_t)delta_size(2, 2));
	struct delta_info di;
	/* every truncation and extension */
	for (int64_t cut = 0; cut < dlen; cut++)
		assert_true(delta_parse(delta, (size_t)cut, &di) < 0);
	/* blocks out of order, out of range; base not below the sequence */
	uint8_t *list = delta + DELTA_HEAD + 48;
	put_be32(list, 9);
	assert_int_equal(delta_parse(delta, (size_t)dlen, &di), RTCMS_EPROTO);
	put_be32(list, BLOCKS);
	put_be32(list + 4, BLOCKS + 1);
	assert_int_equal(delta_parse(delta, (size_t)dlen, &di), RTCMS_EPROTO);
	put_be32(list, 3);
	put_be32(list + 4, 9);
	put_be64(delta + 32, 7);
	assert_int_equal(delta_parse(delta, (size_t)dlen, &di), RTCMS_EPROTO);
	put_be64(delta + 32, 5);
	assert_int_equal(delta_parse(delta, (size_t)dlen, &di), 0);
	/* the wrong base image */
	size_t blen = make_full(base, 4, data, 2);
	assert_int_equal(delta_apply(base, &blen, cap, delta, (size_t)dlen), RTCMS_EPROTO);
	/* another layout: only a delta with every block applies */
	blen = make_full(base, 5, data, 1);
	size_t before = blen;
	assert_int_equal(delta_apply(base, &blen, cap, delta, (size_t)dlen), RTCMS_EPROTO);
	assert_int_equal(blen, before);
	for (int b = 0; b < BLOCKS; b++)
		versions[b] = 7;
	dlen = delta_build(full, flen, versions, 5, delta, delta_size(2, BLOCKS));
	assert_int_equal(delta_apply(base, &blen, cap, delta, (size_t)dlen), 0);
	assert_int_equal(blen, flen);
	assert_memory_equal(base, full, flen);
	/* too small a buffer */
	blen = make_full(base, 5, data, 1);
	assert_int_equal(delta_apply(base, &blen, blen - 1, delta, (size_t)dlen), RTCMS_ETOOBIG);
	assert_int_equal(image_version(delta, 3), RTCMS_EPROTO);
	/* the sequence of a full image's header; a delta is not one */
	uint64_t seq = 0;
	assert_int_equal(image_sequence(base, blen, &seq), 0);
	assert_int_equal(seq, 5);
	assert_int_equal(image_sequence(delta, (size_t)dlen, &seq), RTCMS_EPROTO);
	assert_int_equal(image_sequence(base, 31, &seq), RTCMS_EPROTO);
	free(data);
	free(full);
	free(base);
	free(delta);
}

/* The state hash fed in pieces of every size (a stream's chunks) is the
 * one of the whole image; a short, long or bad image is refused. */
static void test_state_hash_in_pieces(void **state)
{
	static const size_t pieces[] = { 1, 5, 31, 40, 4096, 333, 8192, 7 };
	static uint8_t data[DSIZE], img[DSIZE + 4096];
	struct state_hasher *h = malloc(sizeof(*h));
	uint8_t want[STATE_HASH_SIZE], out[STATE_HASH_SIZE];
	(void)state;

	assert_non_null(h);
	for (size_t i = 0; i < DSIZE; i++)
		data[i] = (uint8_t)(i * 13 + 5);
	size_t len = make_full(img, 4, data, 3) - 100; /* the last block shorter */
	put_be64(img + 24, DSIZE - 100);
	put_be64(img + 32 + 2 * 24 + 8, DSIZE / 3 - 100);
	assert_int_equal(state_hash(img, len, want), 0);
	for (size_t first = 0; first < 8; first++) {
		state_hasher_init(h, len);
		for (size_t off = 0, i = first; off < len; i++) {
			size_t n = pieces[i % 8] < len - off ? pieces[i % 8] : len - off;
			assert_int_equal(state_hasher_update(h, img + off, n), 0);
			off += n;
		}
		assert_int_equal(state_hasher_final(h, out), 0);
		assert_memory_equal(out, want, STATE_HASH_SIZE);
	}
	state_hasher_init(h, len);
	assert_int_equal(state_hasher_update(h, img, len - 1), 0);
	assert_int_equal(state_hasher_final(h, out), RTCMS_EPROTO);
	state_hasher_init(h, len - 1);
	assert_int_equal(state_hasher_update(h, img, len), RTCMS_EPROTO);
	img[4] ^= 1; /* an unknown version */
	state_hasher_init(h, len);
	assert_int_equal(state_hasher_update(h, img, len), RTCMS_EPROTO);
	assert_int_equal(state_hasher_final(h, out), RTCMS_EPROTO);
	assert_int_equal(state_hash(img, len, out), RTCMS_EPROTO);
	free(h);
}

/* Both versions computed here from their definitions (delta.h): a tag,
 * the head, then each block's hash (BLAKE2b-256 in version 1, XXH3-128
 * in version 2, the last block shorter). */
static void reference_hash(int version, const uint8_t *img, size_t head_len, size_t len,
			   uint8_t out[STATE_HASH_SIZE])
{
	const char *tag = version == 1 ? "rtcms state v1" : "rtcms state v2";
	crypto_generichash_state st;
	crypto_generichash_init(&st, NULL, 0, STATE_HASH_SIZE);
	crypto_generichash_update(&st, (const uint8_t *)tag, strlen(tag) + 1);
	crypto_generichash_update(&st, img, head_len);
	for (size_t off = head_len; off < len; off += AREA_BLOCK) {
		size_t n = len - off < AREA_BLOCK ? len - off : AREA_BLOCK;
		uint8_t bh[STATE_HASH_SIZE];
		if (version == 1) {
			crypto_generichash(bh, STATE_HASH_SIZE, img + off, n, NULL, 0);
			crypto_generichash_update(&st, bh, STATE_HASH_SIZE);
		} else {
			XXH128_canonical_t c;
			XXH128_canonicalFromHash(&c, XXH3_128bits(img + off, n));
			crypto_generichash_update(&st, c.digest, sizeof(c.digest));
		}
	}
	crypto_generichash_final(&st, out, STATE_HASH_SIZE);
}

/* Each version is what its definition says; an image kept apart is
 * checked against either (a checkpoint stored before version 2 still
 * restores), and against neither when one byte differs. */
static void test_state_hash_versions(void **state)
{
	static uint8_t data[DSIZE], img[DSIZE + 4096];
	uint8_t v1[STATE_HASH_SIZE], v2[STATE_HASH_SIZE], out[STATE_HASH_SIZE];
	(void)state;

	for (size_t i = 0; i < DSIZE; i++)
		data[i] = (uint8_t)(i * 7 + 3);
	size_t len = make_full(img, 9, data, 2) - 10;
	put_be64(img + 24, DSIZE - 10);
	put_be64(img + 32 + 24 + 8, DSIZE / 2 - 10);
	size_t head = 32 + 2 * 24;
	reference_hash(1, img, head, len, v1);
	reference_hash(2, img, head, len, v2);
	assert_int_equal(state_hash_version(img, len, STATE_HASH_V1, out), 0);
	assert_memory_equal(out, v1, STATE_HASH_SIZE);
	assert_int_equal(state_hash(img, len, out), 0);
	assert_memory_equal(out, v2, STATE_HASH_SIZE);
	assert_memory_not_equal(v1, v2, STATE_HASH_SIZE);

	assert_int_equal(state_hash_check(img, head, img + head, len - head, v2), 0);
	assert_int_equal(state_hash_check(img, head, img + head, len - head, v1), 0);
	img[head + 5000] ^= 0x10;
	assert_int_equal(state_hash_check(img, head, img + head, len - head, v2),
			 RTCMS_ECORRUPT);
	assert_int_equal(state_hash_check(img, head, img + head, len - head, v1),
			 RTCMS_ECORRUPT);
	img[head + 5000] ^= 0x10;
	put_be32(img + 16, 3); /* a head that is not this image's */
	assert_int_not_equal(state_hash_check(img, head, img + head, len - head, v2), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_chain_equals_full),
		cmocka_unit_test(test_refused),
		cmocka_unit_test(test_state_hash_in_pieces),
		cmocka_unit_test(test_state_hash_versions),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
