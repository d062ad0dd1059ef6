/*
 * store_fixture.h - what the store engine's unit tests (test_store*.c)
 * share: a store over two mirrors in a temporary directory with an
 * injected clock (setup/teardown), PUT and GET helpers, and the program
 * images (full and delta) the delta and compression tests store.
 */
#ifndef RTCMS_TESTS_STORE_FIXTURE_H
#define RTCMS_TESTS_STORE_FIXTURE_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <dirent.h>
#include <inttypes.h>
#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#if defined(__SANITIZE_ADDRESS__)
/* from the ASan runtime (sanitizer/allocator_interface.h, not shipped
 * with every compiler) */
size_t __sanitizer_get_current_allocated_bytes(void);
#else
#include <malloc.h>
#endif

#include "area/delta.h"
#include "area/image.h"
#include "log/log.h"
#include "proto/msg.h"
#include "rtcms_error.h"
#include "store/chunkfile.h"
#include <sqlite3.h>
#include "store/store.h"
#include "stream/stream.h"
#include "testutil.h"
#include "util/bytes.h"

struct fixture {
	char *dir;
	char m0[512], m1[512];
	const char *mirrors[2];
	uint64_t clock;
	struct store *st;
	unsigned retain;
	enum store_compress compress;  /* for open_store */
	int compress_level;
	/* store_options.inline_max: -1 (chunk files only) unless a test
	 * sets it: the tests of chunk files store small images, which the
	 * store would keep inline by default (test_store_inline.c) */
	int64_t inline_max;
	uint64_t pack_size;            /* store_options.pack_size: 0 default */
};

static inline uint64_t fake_now(void *ctx)
{
	return ((struct fixture *)ctx)->clock;
}

static inline void open_store(struct fixture *f)
{
	struct store_options o = {
		.mirrors = f->mirrors, .mirror_count = 2, .retain = f->retain,
		.now_ms = fake_now, .now_ctx = f,
		.compress = f->compress, .compress_level = f->compress_level,
		.inline_max = f->inline_max, .pack_size = f->pack_size,
	};
	assert_int_equal(store_open(&o, &f->st), 0);
}

/* A fixture whose store keeps PUTs of up to inline_max bytes inline
 * (store_options.inline_max: -1 never). */
static inline int setup_inline_max(void **state, int64_t inline_max)
{
	struct fixture *f = calloc(1, sizeof(*f));
	f->dir = tu_tmpdir("store");
	snprintf(f->m0, sizeof(f->m0), "%s/m0", f->dir);
	snprintf(f->m1, sizeof(f->m1), "%s/m1", f->dir);
	f->mirrors[0] = f->m0;
	f->mirrors[1] = f->m1;
	f->clock = 1000000;
	f->retain = 2;
	f->inline_max = inline_max;
	open_store(f);
	*state = f;
	return 0;
}

static inline int setup(void **state)
{
	return setup_inline_max(state, -1);
}

static inline int teardown(void **state)
{
	struct fixture *f = *state;
	store_fault_hook = NULL;
	store_free(f->st);
	tu_rmrf(f->dir);
	free(f->dir);
	free(f);
	return 0;
}

/* What the last put_data() found: new chunks and their size on disk. */
static struct store_put_stats last_stats __attribute__((unused));

/* put_data()'s result when the engine found the checkpoint stored already
 * (store_put_begin() gave no handle; ack->existed is set). */
enum { PUT_STORED = 1 };

/* PUT size bytes of data as m (its image hash and chunk count are filled
 * in here) in chunks of chunk bytes; returns 0, PUT_STORED or the engine's
 * error, and fills *ack. */
static inline int put_data(struct store *st, struct proto_ckpt_meta *m, const uint8_t *data,
		    size_t size, size_t chunk, struct proto_put_ack *ack)
{
	struct proto_image_hash ih;
	struct store_put *p;
	uint32_t count = 0;

	proto_image_hash_init(&ih, size);
	for (size_t off = 0; off < size; off += chunk, count++) {
		uint8_t h[PROTO_HASH_SIZE];
		size_t len = size - off < chunk ? size - off : chunk;
		proto_chunk_hash(data + off, len, h);
		proto_image_hash_update(&ih, off, (uint32_t)len, h);
	}
	proto_image_hash_final(&ih, m->hash);
	m->chunk_count = count;
	memset(ack, 0, sizeof(*ack));
	int rc = store_put_begin(st, m, &p, ack);
	if (rc != 0)
		return rc;
	if (!p)
		return PUT_STORED;
	for (size_t off = 0; off < size && rc == 0; off += chunk) {
		struct proto_chunk c = { 0 };
		c.offset = off;
		c.len = (uint32_t)(size - off < chunk ? size - off : chunk);
		c.data = data + off;
		proto_chunk_hash(c.data, c.len, c.hash);
		rc = store_put_check(p, &c);
		if (rc == 0)
			rc = store_put_write(p, &c);
	}
	if (rc) {
		store_put_abort(p);
		return rc;
	}
	store_put_stats(p, &last_stats);
	return store_put_commit(p, count, ack);
}

/* The metadata of a test checkpoint of size bytes (node 7, spec "spec"). */
static inline void meta_for(struct proto_ckpt_meta *m, const char *process, uint64_t inc,
		     uint64_t seq, size_t size)
{
	memset(m, 0, sizeof(*m));
	snprintf(m->process, sizeof(m->process), "%s", process);
	m->incarnation = inc;
	m->sequence = seq;
	m->node = 7;
	m->size = size;
	m->spec = (const uint8_t *)"spec";
	m->spec_len = 4;
}

/* Store size bytes of content seed as (process, inc, seq) in chunks of
 * chunk bytes; returns the engine's result. */
static inline int put(struct store *st, const char *process, uint64_t inc,
	       uint64_t seq, size_t size, uint64_t seed, size_t chunk)
{
	uint8_t *data = malloc(size ? size : 1);
	struct proto_ckpt_meta m;
	struct proto_put_ack ack;

	tu_fill(data, size, seed);
	meta_for(&m, process, inc, seq, size);
	int rc = put_data(st, &m, data, size, chunk, &ack);
	free(data);
	return rc;
}

/* Read (process, inc, seq) back and compare with content seed. */
static inline int get_check(struct store *st, const char *process, uint64_t inc,
		     uint64_t seq, size_t size, uint64_t seed, uint32_t *repaired)
{
	struct proto_ckpt_meta m;
	struct store_get *g;
	uint8_t *want = malloc(size ? size : 1);
	uint8_t *buf = malloc(PROTO_MAX_CHUNK);
	struct proto_chunk c = { 0 };
	uint64_t got = 0;
	bool end;
	int rc;

	tu_fill(want, size, seed);
	rc = store_get_open(st, process, inc, seq, &g, &m);
	if (rc)
		goto out;
	assert_int_equal(m.size, size);
	assert_int_equal(m.spec_len, 4);
	assert_memory_equal(m.spec, "spec", 4);
	while ((rc = store_get_next(g, buf, &c, &end)) == 0 && !end) {
		assert_int_equal(c.offset, got);
		assert_memory_equal(c.data, want + c.offset, c.len);
		got += c.len;
	}
	if (repaired)
		*repaired = store_get_repaired(g);
	store_get_close(g);
	if (rc == 0)
		rc = got == size ? 0 : RTCMS_EPROTO;
out:
	free(want);
	free(buf);
	return rc;
}

static inline void flip_byte(const char *path)
{
	FILE *fp = fopen(path, "r+b");
	assert_non_null(fp);
	int c = fgetc(fp);
	fseek(fp, 0, SEEK_SET);
	fputc(c ^ 0xff, fp);
	fclose(fp);
}

/* Remove a mirror's meta.db and its WAL files (lost metadata). */
static inline void remove_meta(const char *dir)
{
	static const char *const names[] = { "meta.db", "meta.db-wal", "meta.db-shm" };
	char path[700];
	for (size_t i = 0; i < 3; i++) {
		snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
		unlink(path);
	}
}

/* Flip the byte at off of path. */
static inline void flip_at(const char *path, uint64_t off)
{
	FILE *fp = fopen(path, "r+b");
	assert_non_null(fp);
	assert_int_equal(fseek(fp, (long)off, SEEK_SET), 0);
	int c = fgetc(fp);
	assert_true(c != EOF);
	assert_int_equal(fseek(fp, (long)off, SEEK_SET), 0);
	fputc(c ^ 0xff, fp);
	fclose(fp);
}

/* Where mirror keeps chunk h's stored form: its pack (or chunk file), the
 * form's offset and length. */
static inline void chunk_where(const char *mirror, const uint8_t *h, char *path, size_t len,
			       uint64_t *off, uint64_t *n)
{
	assert_int_equal(tu_chunk_where(mirror, h, path, len, off, n), 0);
}

/* How a test damages one mirror's copy of a chunk. */
enum damage {
	DMG_FORM,   /* a byte of its stored form */
	DMG_HEAD,   /* a byte of its record's header (the chunk id in it) */
	DMG_GONE,   /* its place forgotten (a chunk file: removed): missing */
};

static inline void damage(const char *mirror, const uint8_t *h, enum damage how)
{
	char path[4200], sql[200], hex[65];
	uint64_t off, n;

	chunk_where(mirror, h, path, sizeof(path), &off, &n);
	sodium_bin2hex(hex, sizeof(hex), h, PROTO_HASH_SIZE);
	if (how == DMG_FORM) {
		flip_at(path, off);
	} else if (how == DMG_HEAD) {
		assert_true(off >= 48);
		flip_at(path, off - 48 + 8);
	} else if (off == 0 && strstr(path, "/chunks/")) {
		assert_int_equal(unlink(path), 0);
	} else {
		snprintf(sql, sizeof(sql), "DELETE FROM chunk_locs WHERE hash = x'%s'", hex);
		assert_int_equal(tu_meta_exec(mirror, sql), 0);
	}
}

/* Turn a closed store's mirror into the layout before packs: each record
 * its meta.db places goes into a chunk file of its own (the same stored
 * form), then the places and the packs go. */
static inline void to_chunk_files(const char *mirror)
{
	char path[4200];
	uint8_t *hashes, *buf = malloc(CHUNKFILE_MAX);
	int n = tu_chunk_list(mirror, &hashes);

	assert_true(n >= 0);
	assert_int_equal(chunkfile_prepare(mirror), 0);
	for (int i = 0; i < n; i++) {
		uint64_t off, len;
		chunk_where(mirror, hashes + 32 * i, path, sizeof(path), &off, &len);
		FILE *fp = fopen(path, "rb");
		assert_non_null(fp);
		assert_int_equal(fseek(fp, (long)off, SEEK_SET), 0);
		assert_int_equal(fread(buf, 1, len, fp), len);
		fclose(fp);
		assert_int_equal(chunkfile_write(mirror, hashes + 32 * i, buf, len, 1), 0);
	}
	assert_int_equal(tu_meta_exec(mirror, "DELETE FROM chunk_locs; DELETE FROM packs"), 0);
	snprintf(path, sizeof(path), "%s/packs", mirror);
	tu_rmrf(path);
	free(hashes);
	free(buf);
}

#define DBLOCKS 320 /* 1.25 MiB of data: a GET of it is two chunks */

#define DCHUNK 16384

/* A program's state as its agent sees it: data blocks and the sequence
 * each block last changed at. */
struct prog {
	uint8_t *live;
	uint64_t versions[DBLOCKS];
	uint32_t blocks;
	uint64_t x;
};

static inline void prog_init(struct prog *p, uint32_t blocks, uint64_t seed)
{
	p->live = malloc((size_t)DBLOCKS * AREA_BLOCK);
	p->blocks = blocks;
	p->x = seed;
	tu_fill(p->live, (size_t)DBLOCKS * AREA_BLOCK, seed);
	for (uint32_t b = 0; b < DBLOCKS; b++)
		p->versions[b] = 1;
}

/* Change n blocks at sequence seq. */
static inline void prog_change(struct prog *p, uint64_t seq, int n)
{
	for (int i = 0; i < n; i++) {
		p->x = p->x * 6364136223846793005ull + 1442695040888963407ull;
		uint32_t b = (uint32_t)((p->x >> 33) % p->blocks);
		p->live[(size_t)b * AREA_BLOCK + (p->x >> 20) % AREA_BLOCK] ^= 0x5a;
		p->versions[b] = seq;
	}
}

static inline size_t full_len(const struct prog *p)
{
	return image_size(1, (uint64_t)p->blocks * AREA_BLOCK);
}

/* The full image of sequence seq into img (malloc'ed); returns its size. */
static inline size_t prog_full(const struct prog *p, uint64_t seq, uint8_t **img)
{
	size_t d = (size_t)p->blocks * AREA_BLOCK, len = full_len(p);
	uint8_t *i = malloc(len);
	memset(i, 0, 56);
	put_be32(i, IMAGE_MAGIC);
	put_be32(i + 4, IMAGE_VERSION);
	put_be64(i + 8, seq);
	put_be32(i + 16, 1);
	put_be64(i + 24, d);
	put_be32(i + 32, 1);
	put_be64(i + 40, d);
	memcpy(i + 56, p->live, d);
	*img = i;
	return len;
}

/* The delta of sequence seq against base into img (malloc'ed). */
static inline size_t prog_delta(const struct prog *p, uint64_t seq, uint64_t base, uint8_t **img)
{
	uint8_t *full;
	size_t flen = prog_full(p, seq, &full), cap = delta_size(1, p->blocks);
	*img = malloc(cap);
	int64_t n = delta_build(full, flen, p->versions, base, *img, cap);
	assert_true(n > 0);
	free(full);
	return (size_t)n;
}

/* What the last put_img() wrote (store_put_stats before its commit). */
/* PUT an image in chunks of DCHUNK bytes; fills *ack. state NULL: none. */
static inline int put_img(struct store *st, const char *process, uint64_t inc, uint64_t seq,
		   uint64_t base, uint64_t full_size, const uint8_t *state,
		   const uint8_t *data, size_t size, struct proto_put_ack *ack)
{
	struct proto_ckpt_meta m;

	meta_for(&m, process, inc, seq, size);
	m.base = base;
	m.full_size = full_size;
	if (state)
		memcpy(m.state_hash, state, PROTO_HASH_SIZE);
	return put_data(st, &m, data, size, DCHUNK, ack);
}

/* PUT the full image of p's state as seq; returns the engine's result. */
static inline int put_full(struct store *st, const char *process, const struct prog *p,
		    uint64_t seq, struct proto_put_ack *ack)
{
	uint8_t *img, sh[STATE_HASH_SIZE];
	size_t len = prog_full(p, seq, &img);
	assert_int_equal(state_hash(img, len, sh), 0);
	int rc = put_img(st, process, 1, seq, 0, 0, sh, img, len, ack);
	free(img);
	return rc;
}

/* PUT the delta of p's state as seq against base, with its state hash. */
static inline int put_delta(struct store *st, const char *process, const struct prog *p,
		     uint64_t seq, uint64_t base, struct proto_put_ack *ack)
{
	uint8_t *full, *d, sh[STATE_HASH_SIZE];
	size_t flen = prog_full(p, seq, &full);
	assert_int_equal(state_hash(full, flen, sh), 0);
	size_t dlen = prog_delta(p, seq, base, &d);
	int rc = put_img(st, process, 1, seq, base, flen, sh, d, dlen, ack);
	free(full);
	free(d);
	return rc;
}

/* GET a checkpoint whole as a client does: every link of its chain (a
 * full image is one) through the stream verifier (chunk hashes, order,
 * image hash, a full image's state hash) into the image assembler, which
 * applies the deltas and checks the state hash. *m is the last link's
 * metadata (the checkpoint asked for), *out the full image (malloc'ed).
 * Returns the store's or the assembler's error (RTCMS_ECORRUPT). */
static inline int get_img(struct store *st, const char *process, uint64_t inc, uint64_t seq,
		   struct proto_ckpt_meta *m, uint8_t **out, size_t *len)
{
	struct stream_area_sink img;
	struct stream_verifier v;
	struct store_get *g;
	struct proto_chunk c = { 0 };
	uint8_t *chunk = malloc(PROTO_MAX_CHUNK);
	bool end, more = true;
	int rc;

	*out = NULL;
	rc = store_get_open(st, process, inc, seq, &g, m);
	if (rc) {
		free(chunk);
		return rc;
	}
	stream_area_sink_init(&img, (uint64_t)1 << 32, NULL, NULL);
	for (uint32_t link = 0; more && rc == 0; link++) {
		assert_int_equal(m->spec_len, 4);
		assert_memory_equal(m->spec, "spec", 4);
		assert_int_equal(stream_verifier_begin(&v, m, 0, STREAM_VERIFY_STATE), 0);
		rc = stream_sink_begin(&img.sink, m);
		while (rc == 0 && (rc = store_get_next(g, chunk, &c, &end)) == 0 && !end) {
			assert_int_equal(stream_verifier_chunk(&v, &c), 0);
			rc = stream_sink_chunk(&img.sink, &c);
		}
		if (rc)
			break;
		assert_int_equal(stream_verifier_end(&v, stream_verifier_count(&v)), 0);
		more = store_get_next_link(g, m);
		rc = more ? stream_sink_link(&img.sink, stream_verifier_count(&v))
			  : stream_sink_end(&img.sink, stream_verifier_count(&v));
	}
	store_get_close(g);
	free(chunk);
	if (rc) {
		stream_area_sink_clear(&img);
		return rc;
	}
	*out = img.image;
	*len = img.len;
	return 0;
}

/* GET (process, 1, seq) and compare it with want (a full image); the
 * state hash is want's, or zeros when the PUT gave none. */
static inline void get_expect_state(struct store *st, const char *process, uint64_t seq,
			     const uint8_t *want, size_t want_len, int with_state)
{
	struct proto_ckpt_meta m;
	struct store_get *g;
	uint8_t *got, sh[STATE_HASH_SIZE];
	size_t len;

	struct proto_ckpt_meta stored;
	assert_int_equal(store_get_open_meta(st, process, 1, seq, &g, &stored), 0);
	store_get_close(g);
	/* served as stored: a delta as its chain, whose last link is it */
	assert_int_equal(get_img(st, process, 1, seq, &m, &got, &len), 0);
	assert_int_equal(m.sequence, seq);
	assert_int_equal(m.base, stored.base);
	assert_int_equal(m.size, stored.size);
	assert_memory_equal(m.hash, stored.hash, PROTO_HASH_SIZE);
	assert_int_equal(m.full_size, want_len);
	assert_int_equal(len, want_len);
	assert_memory_equal(got, want, want_len);
	assert_int_equal(state_hash(want, want_len, sh), 0);
	if (!with_state)
		memset(sh, 0, sizeof(sh));
	assert_memory_equal(m.state_hash, sh, STATE_HASH_SIZE);
	free(got);
}

static inline void get_expect(struct store *st, const char *process, uint64_t seq,
		       const uint8_t *want, size_t want_len)
{
	get_expect_state(st, process, seq, want, want_len, 1);
}

#endif
