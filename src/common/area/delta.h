/*
 * delta.h - delta images and state hashes (incremental checkpoints).
 *
 * A delta image carries only the data blocks (AREA_BLOCK bytes) that
 * changed since a base sequence of the same program run; applied to the
 * full image (image.h, version 1) of that base it gives the full image of
 * its own sequence. Pure codec (libsodium for the hashes), big-endian:
 *
 *   offset  size     field
 *   0       4        magic "RTCI" (0x52544349)
 *   4       4        version (2)
 *   8       8        sequence (< 2^63)
 *   16      4        region count n (<= AREA_MAX_REGIONS)
 *   20      4        reserved (0)
 *   24      8        data size d (a multiple of AREA_BLOCK)
 *   32      8        base sequence (1 .. sequence - 1)
 *   40      4        block count k (<= d / AREA_BLOCK)
 *   44      4        reserved (0)
 *   48      24*n     region table, as in a full image
 *   48+24n  4*k      block numbers, strictly ascending, each < d / AREA_BLOCK
 *   ...     k*4096   the blocks' data, in that order
 *
 * The state hash names a program's state whatever way it travelled (one
 * full image or a chain of deltas): BLAKE2b-256 over a tag, the full
 * image's header and region table, then the hash of every data block (the
 * last one may be shorter). An agent keeps the block hashes and rehashes
 * only the blocks that changed.
 *
 * Version 2 (what rtcms computes) hashes each block with XXH3-128, about
 * fifteen times faster than BLAKE2b here; version 1 (before) with
 * BLAKE2b-256, and is still accepted where an image is checked whole
 * (state_hash_check), so that checkpoints stored before the change still
 * restore. The state hash catches a wrong assembly (a delta applied to the
 * wrong base, a block misplaced) and accidents: contents are
 * authenticated by the chunks' AEAD (sealed) or the sessions (plain), and
 * a block's hash cannot be computed without its plaintext either way
 * (docs/architecture.md "The state hash").
 */
#ifndef RTCMS_AREA_DELTA_H
#define RTCMS_AREA_DELTA_H

#include <sodium.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "area.h"

#define DELTA_VERSION 2
#define DELTA_HEAD    48
#define STATE_HASH_SIZE 32
#define STATE_BLOCK_HASH_SIZE 16   /* version 2: XXH3-128, canonical */
#define STATE_HASH_V1 1
#define STATE_HASH_V2 2

struct delta_info {
	uint64_t sequence;
	uint64_t base;
	uint64_t data_size;
	uint32_t region_count;
	uint32_t block_count;
	struct area_region regions[AREA_MAX_REGIONS];
	const uint8_t *blocks;        /* block_count big-endian u32 (into the image) */
	const uint8_t *data;          /* block_count * AREA_BLOCK bytes */
};

/* 1 for a full image, 2 for a delta, RTCMS_EPROTO for neither. */
int image_version(const uint8_t *img, size_t len);

/* The sequence in a full image's header (version 1; the rest of the
 * image is not checked): 0 and *sequence, or RTCMS_EPROTO (not a full
 * image, or too short for its header). */
int image_sequence(const uint8_t *img, size_t len, uint64_t *sequence);

/* Size of a delta with n regions and k blocks. */
size_t delta_size(uint32_t n, uint32_t k);

/* Check a delta and describe it. 0, RTCMS_EPROTO or RTCMS_ETOOBIG. */
int delta_parse(const uint8_t *img, size_t len, struct delta_info *out);

/*
 * Build into out (capacity cap) the delta of full image full against base:
 * the blocks whose versions[] entry (one per data block) is above base.
 * Returns the delta's size, or RTCMS_EINVAL (base not below the image's
 * sequence, data size not a multiple of AREA_BLOCK), RTCMS_EPROTO (bad
 * image), RTCMS_ETOOBIG (out too small).
 */
int64_t delta_build(const uint8_t *full, size_t full_len, const uint64_t *versions,
		    uint64_t base, uint8_t *out, size_t cap);

/*
 * The same without the blocks' data: from the head of a full image of
 * full_len bytes (its header and region table, head_len bytes), the
 * delta's header, region table and block list (its first
 * delta_size(n, k) - k * AREA_BLOCK bytes; the data of the listed blocks
 * follows them in order). Returns that length, or the errors of
 * delta_build().
 */
int64_t delta_head(const uint8_t *head, size_t head_len, uint64_t full_len,
		   const uint64_t *versions, uint64_t base, uint8_t *out, size_t cap);

/*
 * Apply a delta to the full image in buf (*len bytes, capacity cap), which
 * must be the image of the delta's base sequence; a delta that changes the
 * region table or the data size must carry every block. On success buf
 * holds the full image of the delta's sequence and *len its size. 0, or
 * RTCMS_EPROTO (bad delta, wrong base), RTCMS_ETOOBIG (cap too small);
 * buf is unchanged on failure.
 */
int delta_apply(uint8_t *buf, size_t *len, size_t cap, const uint8_t *delta, size_t dlen);

/*
 * The same on a full image kept apart: its head (header and region table)
 * at head, with room for IMAGE_HEAD_MAX bytes, its data at data, with
 * room for data_cap bytes (a restore's: the data in the slot of the area
 * it goes into); *len is the whole image's length, before and after. The
 * blocks are written in place. Errors as delta_apply(), RTCMS_ETOOBIG
 * for a data size over data_cap; head and data are unchanged on failure.
 */
int delta_apply_apart(uint8_t *head, uint8_t *data, uint64_t *len, size_t data_cap,
		      const uint8_t *delta, size_t dlen);

/* The hash of one data block (len <= AREA_BLOCK), version 2. */
void state_block_hash(const uint8_t *data, size_t len, uint8_t out[STATE_BLOCK_HASH_SIZE]);

/* The state hash (version 2) from a full image's head (header and region
 * table, head_len bytes) and its data blocks' hashes. */
void state_hash_blocks(const uint8_t *head, size_t head_len,
		       const uint8_t (*block_hash)[STATE_BLOCK_HASH_SIZE], size_t blocks,
		       uint8_t out[STATE_HASH_SIZE]);

/* The state hash (version 2) of a full image. 0 or RTCMS_EPROTO. */
int state_hash(const uint8_t *full, size_t len, uint8_t out[STATE_HASH_SIZE]);

/* The same of either version (STATE_HASH_V1 or STATE_HASH_V2). */
int state_hash_version(const uint8_t *full, size_t len, int version,
		       uint8_t out[STATE_HASH_SIZE]);

/*
 * Whether a full image kept apart (its head, head_len bytes, then its
 * data, data_len bytes) has the state hash expected, of version 2 or else
 * of version 1 (a checkpoint stored before version 2; it costs a second
 * pass only then). 0, RTCMS_ECORRUPT (neither matches), RTCMS_EPROTO (no
 * image) or RTCMS_ENOMEM.
 */
int state_hash_check(const uint8_t *head, size_t head_len, const uint8_t *data,
		     size_t data_len, const uint8_t expected[STATE_HASH_SIZE]);

/*
 * The state hash of a full image of len bytes fed in pieces of any size,
 * in order (a stream of chunks): the head is checked as image_parse()
 * does once it is whole. Fields are private.
 */
struct state_hasher {
	crypto_generichash_state st;
	uint64_t len, got;
	int version;                  /* STATE_HASH_V2, or V1 */
	int err;                      /* sticky: the first error */
	bool data;                    /* the head is done: hashing data blocks */
	size_t fill;                  /* bytes in head (or block, once data) */
	uint8_t head[32 + 24 * AREA_MAX_REGIONS];
	uint8_t block[AREA_BLOCK];
};
void state_hasher_init(struct state_hasher *h, uint64_t len);   /* version 2 */
void state_hasher_init_version(struct state_hasher *h, uint64_t len, int version);
/* 0, or RTCMS_EPROTO / RTCMS_ETOOBIG (bad head, more than len bytes);
 * errors are sticky. */
int state_hasher_update(struct state_hasher *h, const uint8_t *p, size_t n);
/* The hash once all len bytes came: 0 or the first error (RTCMS_EPROTO
 * also for fewer than len bytes). */
int state_hasher_final(struct state_hasher *h, uint8_t out[STATE_HASH_SIZE]);

#endif
