/*
 * test_chunkfile.c - content-addressed chunk files in one mirror: paths,
 * write (durable or flushed later) and verified read, missing, truncated
 * and corrupt files, removal, name parsing, the probe, the failure
 * injection hook, and the compressed form (round trip, incompressible
 * chunks stay raw, damaged or lying compressed files, a raw chunk that
 * looks like a compressed file).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zstd.h>

#include "proto/msg.h"
#include "rtcms_error.h"
#include "store/chunkfile.h"
#include "testutil.h"
#include "stream/chunk.h"
#include "util/bytes.h"
#include "util/datakey.h"

static size_t rlen; /* a read's length (the stored form) */

struct fixture {
	char *dir;
	uint8_t data[5000];
	uint8_t hash[PROTO_HASH_SIZE];
	char path[4200];
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	f->dir = tu_tmpdir("chunkfile");
	tu_fill(f->data, sizeof(f->data), 7);
	proto_chunk_hash(f->data, sizeof(f->data), f->hash);
	chunkfile_path(f->dir, f->hash, f->path, sizeof(f->path));
	assert_int_equal(chunkfile_prepare(f->dir), 0);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	store_fault_hook = NULL;
	tu_rmrf(f->dir);
	free(f->dir);
	free(f);
	return 0;
}

static int count_entries(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	int n = 0;
	assert_non_null(d);
	while ((e = readdir(d)))
		n += strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0;
	closedir(d);
	return n;
}

static void test_path_layout(void **state)
{
	struct fixture *f = *state;
	char hex[2 * PROTO_HASH_SIZE + 1], want[4200];
	uint8_t back[PROTO_HASH_SIZE];

	sodium_bin2hex(hex, sizeof(hex), f->hash, sizeof(f->hash));
	snprintf(want, sizeof(want), "%s/chunks/%.2s/%s", f->dir, hex, hex);
	assert_string_equal(f->path, want);
	assert_int_equal(chunkfile_parse_name(hex, back), 0);
	assert_memory_equal(back, f->hash, PROTO_HASH_SIZE);
	/* 256 fan-out directories */
	char chunks[4200];
	snprintf(chunks, sizeof(chunks), "%s/chunks", f->dir);
	assert_int_equal(count_entries(chunks), 256);
	/* preparing again is harmless */
	assert_int_equal(chunkfile_prepare(f->dir), 0);
}

static void test_parse_name(void **state)
{
	(void)state;
	uint8_t h[PROTO_HASH_SIZE];
	char name[80];

	memset(name, 'a', 64);
	name[64] = '\0';
	assert_int_equal(chunkfile_parse_name(name, h), 0);
	name[3] = 'A'; /* upper case is not ours */
	assert_int_equal(chunkfile_parse_name(name, h), RTCMS_EINVAL);
	name[3] = 'g';
	assert_int_equal(chunkfile_parse_name(name, h), RTCMS_EINVAL);
	name[3] = 'a';
	name[63] = '\0';
	assert_int_equal(chunkfile_parse_name(name, h), RTCMS_EINVAL);
	assert_int_equal(chunkfile_parse_name("", h), RTCMS_EINVAL);
	assert_int_equal(chunkfile_parse_name(".tmp.0011", h), RTCMS_EINVAL);
}

static void test_write_read(void **state)
{
	struct fixture *f = *state;
	uint8_t buf[5000];

	assert_false(chunkfile_present(f->dir, f->hash, sizeof(f->data)));
	assert_int_equal(chunkfile_read(f->dir, f->hash, sizeof(buf), buf, &rlen), RTCMS_ENOENT);
	assert_int_equal(chunkfile_write(f->dir, f->hash, f->data, sizeof(f->data), 1), 0);
	assert_true(chunkfile_present(f->dir, f->hash, sizeof(f->data)));
	assert_false(chunkfile_present(f->dir, f->hash, sizeof(f->data) - 1));
	assert_int_equal(chunkfile_read(f->dir, f->hash, sizeof(buf), buf, &rlen), 0);
	assert_memory_equal(buf, f->data, sizeof(buf));
	/* no temporary file left behind in the fan-out directory */
	char sub[4200];
	snprintf(sub, sizeof(sub), "%.*s", (int)(strrchr(f->path, '/') - f->path), f->path);
	assert_int_equal(count_entries(sub), 1);
	/* rewriting (a repair) replaces it atomically; written lazily then
	 * flushed with one sync */
	assert_int_equal(chunkfile_write(f->dir, f->hash, f->data, sizeof(f->data), 0), 0);
	assert_int_equal(chunkfile_sync(f->dir), 0);
	assert_int_equal(count_entries(sub), 1);
	assert_true(chunkfile_any(f->dir));
	chunkfile_remove(f->dir, f->hash);
	chunkfile_remove(f->dir, f->hash); /* missing is fine */
	assert_false(chunkfile_present(f->dir, f->hash, sizeof(f->data)));
	assert_false(chunkfile_any(f->dir));
}

static void test_damage_detected(void **state)
{
	struct fixture *f = *state;
	uint8_t buf[5000];

	assert_int_equal(chunkfile_write(f->dir, f->hash, f->data, sizeof(f->data), 1), 0);
	/* one flipped bit */
	FILE *fp = fopen(f->path, "r+b");
	assert_non_null(fp);
	fseek(fp, 4000, SEEK_SET);
	int c = fgetc(fp);
	fseek(fp, 4000, SEEK_SET);
	fputc(c ^ 0x10, fp);
	fclose(fp);
	assert_true(chunkfile_present(f->dir, f->hash, sizeof(f->data)));
	assert_int_equal(chunkfile_read(f->dir, f->hash, sizeof(buf), buf, &rlen), RTCMS_ECORRUPT);
	/* truncated */
	assert_int_equal(chunkfile_write(f->dir, f->hash, f->data, sizeof(f->data), 1), 0);
	assert_int_equal(truncate(f->path, 100), 0);
	assert_false(chunkfile_present(f->dir, f->hash, sizeof(f->data)));
	assert_int_equal(chunkfile_read(f->dir, f->hash, sizeof(buf), buf, &rlen), RTCMS_ECORRUPT);
	/* content of another hash under this name */
	uint8_t other[5000];
	tu_fill(other, sizeof(other), 8);
	assert_int_equal(chunkfile_write(f->dir, f->hash, other, sizeof(other), 1), 0);
	assert_int_equal(chunkfile_read(f->dir, f->hash, sizeof(buf), buf, &rlen), RTCMS_ECORRUPT);
}

static const char *fault_site;
static int fault_rc;

static int fault(const char *site, const char *dir)
{
	(void)dir;
	return strcmp(site, fault_site) == 0 ? fault_rc : 0;
}

static void test_fault_hook(void **state)
{
	struct fixture *f = *state;

	store_fault_hook = fault;
	fault_site = "chunk_write";
	fault_rc = 1;
	assert_int_equal(chunkfile_write(f->dir, f->hash, f->data, sizeof(f->data), 1), RTCMS_EIO);
	fault_rc = RTCMS_ENOSPC;
	assert_int_equal(chunkfile_write(f->dir, f->hash, f->data, sizeof(f->data), 0), RTCMS_ENOSPC);
	assert_false(chunkfile_present(f->dir, f->hash, sizeof(f->data)));
	assert_int_equal(chunkfile_sync(f->dir), 0);
	assert_int_equal(chunkfile_probe(f->dir), 0);
	fault_site = "chunk_sync";
	fault_rc = -1000; /* not an rtcms code: EIO */
	assert_int_equal(chunkfile_sync(f->dir), RTCMS_EIO);
	fault_site = "mirror_probe";
	fault_rc = 1;
	assert_int_equal(chunkfile_probe(f->dir), RTCMS_EIO);
	store_fault_hook = NULL;
	assert_int_equal(chunkfile_probe(f->dir), 0);
	assert_int_equal(count_entries(f->dir), 1); /* chunks/ only: probe removed */
}

/* Compressible content: log-like text lines with varying numbers. */
static void fill_text(uint8_t *buf, size_t len, uint64_t seed)
{
	uint64_t x = seed * 0x9E3779B97F4A7C15ull + 1;
	size_t at = 0;
	while (at < len) {
		char line[96];
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		int n = snprintf(line, sizeof(line), "record %06u: value=%u state=%s\n",
				 (unsigned)(at / 40), (unsigned)(x % 100000),
				 x & 1 ? "ok" : "pending");
		size_t k = (size_t)n < len - at ? (size_t)n : len - at;
		memcpy(buf + at, line, k);
		at += k;
	}
}

static off_t file_size(const char *path)
{
	struct stat sb;
	return stat(path, &sb) == 0 ? sb.st_size : -1;
}

/* Overwrite len bytes at off of a file. */
static void patch(const char *path, long off, const void *p, size_t len)
{
	FILE *fp = fopen(path, "r+b");
	assert_non_null(fp);
	assert_int_equal(fseek(fp, off, SEEK_SET), 0);
	assert_int_equal(fwrite(p, 1, len, fp), len);
	fclose(fp);
}

#define ZSIZE 65536

/* A compressible chunk is written compressed, read back exactly, reported
 * present (only for its size) and removed; the forms replace each other. */
static void test_compressed_roundtrip(void **state)
{
	struct fixture *f = *state;
	uint8_t *data = malloc(ZSIZE), *buf = malloc(ZSIZE), h[PROTO_HASH_SIZE];
	char path[4200], sub[4200];
	struct chunkfile_enc enc;

	fill_text(data, ZSIZE, 1);
	proto_chunk_hash(data, ZSIZE, h);
	chunkfile_path(f->dir, h, path, sizeof(path));
	snprintf(sub, sizeof(sub), "%.*s", (int)(strrchr(path, '/') - path), path);

	/* level 0: raw, data borrowed */
	chunkfile_encode(data, ZSIZE, 0, &enc);
	assert_null(enc.buf);
	assert_ptr_equal(enc.data, data);
	assert_int_equal(enc.len, ZSIZE);
	chunkfile_enc_free(&enc);

	chunkfile_encode(data, ZSIZE, 3, &enc);
	assert_non_null(enc.buf);
	assert_true(enc.len < ZSIZE / 3);
	assert_int_equal(enc.size, ZSIZE);
	assert_memory_equal(enc.data, "\x89rtcz\r\n\x1a", 8);
	assert_int_equal(get_be32(enc.data + 8), ZSIZE);
	assert_int_equal(get_be32(enc.data + 12), enc.len - CHUNKFILE_ZHDR);
	assert_false(chunkfile_present(f->dir, h, ZSIZE));
	assert_int_equal(chunkfile_write_enc(f->dir, h, &enc, 1), 0);
	assert_int_equal(file_size(path), (off_t)enc.len);
	assert_int_equal(count_entries(sub), 1);
	assert_true(chunkfile_present(f->dir, h, ZSIZE));
	assert_false(chunkfile_present(f->dir, h, ZSIZE - 1));
	assert_false(chunkfile_present(f->dir, h, ZSIZE + 1));
	assert_true(chunkfile_any(f->dir));
	memset(buf, 0, ZSIZE);
	assert_int_equal(chunkfile_read(f->dir, h, ZSIZE, buf, &rlen), 0);
	assert_memory_equal(buf, data, ZSIZE);
	/* asked for another size it is not this chunk */
	assert_int_equal(chunkfile_read(f->dir, h, ZSIZE - 1, buf, &rlen), RTCMS_ECORRUPT);

	/* a repair may write the other form: it replaces the file */
	assert_int_equal(chunkfile_write(f->dir, h, data, ZSIZE, 1), 0);
	assert_int_equal(file_size(path), ZSIZE);
	assert_int_equal(count_entries(sub), 1);
	assert_int_equal(chunkfile_read(f->dir, h, ZSIZE, buf, &rlen), 0);
	assert_memory_equal(buf, data, ZSIZE);
	assert_int_equal(chunkfile_write_enc(f->dir, h, &enc, 0), 0);
	assert_int_equal(chunkfile_sync(f->dir), 0);
	assert_int_equal(file_size(path), (off_t)enc.len);
	assert_int_equal(count_entries(sub), 1);

	/* removal, whichever the form */
	chunkfile_remove(f->dir, h);
	assert_false(chunkfile_present(f->dir, h, ZSIZE));
	assert_int_equal(chunkfile_read(f->dir, h, ZSIZE, buf, &rlen), RTCMS_ENOENT);
	assert_false(chunkfile_any(f->dir));
	assert_int_equal(count_entries(sub), 0);
	chunkfile_enc_free(&enc);
	chunkfile_enc_free(&enc); /* twice is harmless */
	free(data);
	free(buf);
}

/* Data that does not compress (random), and chunks too small to gain
 * anything, stay raw at any level. */
static void test_incompressible_stays_raw(void **state)
{
	struct fixture *f = *state;
	uint8_t buf[5000], tiny[17] = { 0 }, th[PROTO_HASH_SIZE];
	struct chunkfile_enc enc;

	for (int level = 1; level <= CHUNKFILE_LEVEL_MAX; level += 9) {
		chunkfile_encode(f->data, sizeof(f->data), level, &enc);
		assert_null(enc.buf);
		assert_ptr_equal(enc.data, f->data);
		assert_int_equal(enc.len, sizeof(f->data));
		assert_int_equal(chunkfile_write_enc(f->dir, f->hash, &enc, 1), 0);
		chunkfile_enc_free(&enc);
		assert_int_equal(file_size(f->path), sizeof(f->data));
		assert_true(chunkfile_present(f->dir, f->hash, sizeof(f->data)));
		assert_int_equal(chunkfile_read(f->dir, f->hash, sizeof(buf), buf, &rlen), 0);
		assert_memory_equal(buf, f->data, sizeof(buf));
	}
	/* 17 zero bytes would compress, but not below header + 1 byte */
	chunkfile_encode(tiny, sizeof(tiny), 3, &enc);
	assert_null(enc.buf);
	assert_int_equal(enc.len, sizeof(tiny));
	proto_chunk_hash(tiny, sizeof(tiny), th);
	assert_int_equal(chunkfile_write_enc(f->dir, th, &enc, 1), 0);
	assert_int_equal(chunkfile_read(f->dir, th, sizeof(tiny), buf, &rlen), 0);
	assert_memory_equal(buf, tiny, sizeof(tiny));
	/* out-of-range levels mean raw */
	uint8_t zeros[4096] = { 0 };
	chunkfile_encode(zeros, sizeof(zeros), -1, &enc);
	assert_null(enc.buf);
	chunkfile_encode(zeros, sizeof(zeros), CHUNKFILE_LEVEL_MAX + 1, &enc);
	assert_null(enc.buf);
	chunkfile_encode(zeros, sizeof(zeros), 1, &enc);
	assert_non_null(enc.buf);
	assert_true(enc.len < 64);
	chunkfile_enc_free(&enc);
}

/* Write a compressed file of content (size bytes) under name h by hand:
 * header fields as given, then frame (flen bytes). */
static void write_zfile(const char *path, uint32_t size, uint32_t flen_field,
			const uint8_t *frame, size_t flen)
{
	uint8_t hdr[CHUNKFILE_ZHDR];
	memcpy(hdr, "\x89rtcz\r\n\x1a", 8);
	put_be32(hdr + 8, size);
	put_be32(hdr + 12, flen_field);
	FILE *fp = fopen(path, "wb");
	assert_non_null(fp);
	assert_int_equal(fwrite(hdr, 1, sizeof(hdr), fp), sizeof(hdr));
	assert_int_equal(fwrite(frame, 1, flen, fp), flen);
	fclose(fp);
}

/* Damaged, truncated or lying compressed files are ECORRUPT (never a
 * crash, never a write beyond the chunk's size) and not present. */
static void test_compressed_damage(void **state)
{
	struct fixture *f = *state;
	uint8_t *data = malloc(ZSIZE), *buf = malloc(ZSIZE + 64), h[PROTO_HASH_SIZE];
	char path[4200];
	struct chunkfile_enc enc;

	fill_text(data, ZSIZE, 2);
	proto_chunk_hash(data, ZSIZE, h);
	chunkfile_path(f->dir, h, path, sizeof(path));
	chunkfile_encode(data, ZSIZE, 3, &enc);
	assert_non_null(enc.buf);
	long flen = (long)(enc.len - CHUNKFILE_ZHDR);

	/* one flipped byte in the frame */
	assert_int_equal(chunkfile_write_enc(f->dir, h, &enc, 1), 0);
	uint8_t b = enc.data[CHUNKFILE_ZHDR + flen / 2] ^ 0x21;
	patch(path, CHUNKFILE_ZHDR + flen / 2, &b, 1);
	assert_int_equal(chunkfile_read(f->dir, h, ZSIZE, buf, &rlen), RTCMS_ECORRUPT);
	/* truncated: by one byte, into the header, to nothing */
	const off_t cuts[] = { (off_t)enc.len - 1, CHUNKFILE_ZHDR, 10, 0 };
	for (size_t i = 0; i < sizeof(cuts) / sizeof(cuts[0]); i++) {
		assert_int_equal(chunkfile_write_enc(f->dir, h, &enc, 1), 0);
		assert_int_equal(truncate(path, cuts[i]), 0);
		assert_false(chunkfile_present(f->dir, h, ZSIZE));
		assert_int_equal(chunkfile_read(f->dir, h, ZSIZE, buf, &rlen), RTCMS_ECORRUPT);
	}
	/* a damaged magic, size or frame length field */
	for (long off = 0; off < CHUNKFILE_ZHDR; off += 5) {
		assert_int_equal(chunkfile_write_enc(f->dir, h, &enc, 1), 0);
		b = enc.data[off] ^ 0x01;
		patch(path, off, &b, 1);
		assert_false(chunkfile_present(f->dir, h, ZSIZE));
		assert_int_equal(chunkfile_read(f->dir, h, ZSIZE, buf, &rlen), RTCMS_ECORRUPT);
	}
	/* a sound header over a frame that is not zstd */
	uint8_t junk[1000];
	tu_fill(junk, sizeof(junk), 3);
	write_zfile(path, ZSIZE, sizeof(junk), junk, sizeof(junk));
	assert_true(chunkfile_present(f->dir, h, ZSIZE)); /* header only */
	assert_int_equal(chunkfile_read(f->dir, h, ZSIZE, buf, &rlen), RTCMS_ECORRUPT);

	/* a frame that holds more than the chunk (and the header lies about
	 * it): refused, and nothing is written beyond the chunk's size */
	uint8_t *big = calloc(2, ZSIZE);
	size_t cap = ZSTD_compressBound(2 * ZSIZE);
	uint8_t *frame = malloc(cap);
	size_t n = ZSTD_compress(frame, cap, big, 2 * ZSIZE, 3);
	assert_false(ZSTD_isError(n));
	write_zfile(path, ZSIZE, (uint32_t)n, frame, n);
	memset(buf, 0xee, ZSIZE + 64);
	assert_int_equal(chunkfile_read(f->dir, h, ZSIZE, buf, &rlen), RTCMS_ECORRUPT);
	for (int i = 0; i < 64; i++)
		assert_int_equal(buf[ZSIZE + i], 0xee);
	/* the same, with the content size left out of the frame */
	ZSTD_CCtx *cc = ZSTD_createCCtx();
	assert_non_null(cc);
	assert_int_equal(ZSTD_CCtx_setParameter(cc, ZSTD_c_contentSizeFlag, 0), 0);
	ZSTD_outBuffer out = { frame, cap, 0 };
	ZSTD_inBuffer in = { big, 2 * ZSIZE, 0 };
	assert_int_equal(ZSTD_compressStream2(cc, &out, &in, ZSTD_e_end), 0);
	ZSTD_freeCCtx(cc);
	assert_int_equal(ZSTD_getFrameContentSize(frame, out.pos),
			 ZSTD_CONTENTSIZE_UNKNOWN);
	write_zfile(path, ZSIZE, (uint32_t)out.pos, frame, out.pos);
	memset(buf, 0xee, ZSIZE + 64);
	assert_int_equal(chunkfile_read(f->dir, h, ZSIZE, buf, &rlen), RTCMS_ECORRUPT);
	for (int i = 0; i < 64; i++)
		assert_int_equal(buf[ZSIZE + i], 0xee);
	/* the compressed form of other content of the same size: its hash */
	uint8_t *other = malloc(ZSIZE);
	struct chunkfile_enc oenc;
	fill_text(other, ZSIZE, 4);
	chunkfile_encode(other, ZSIZE, 3, &oenc);
	assert_non_null(oenc.buf);
	assert_int_equal(chunkfile_write_enc(f->dir, h, &oenc, 1), 0);
	assert_true(chunkfile_present(f->dir, h, ZSIZE));
	assert_int_equal(chunkfile_read(f->dir, h, ZSIZE, buf, &rlen), RTCMS_ECORRUPT);
	/* and the good form reads again */
	assert_int_equal(chunkfile_write_enc(f->dir, h, &enc, 1), 0);
	assert_int_equal(chunkfile_read(f->dir, h, ZSIZE, buf, &rlen), 0);
	assert_memory_equal(buf, data, ZSIZE);
	chunkfile_enc_free(&oenc);
	chunkfile_enc_free(&enc);
	free(other);
	free(frame);
	free(big);
	free(data);
	free(buf);
}

/* A raw chunk whose bytes are a well-formed compressed file for a chunk
 * of its own size (magic, its size, the right frame length, zstd data that
 * decompresses to exactly that many bytes of other content) is still read
 * raw: the file's size equals the chunk's, and only a shorter file is a
 * compressed form. */
static void test_raw_chunk_with_magic(void **state)
{
	struct fixture *f = *state;
	const size_t n = 2300;
	size_t cap = ZSTD_compressBound(n);
	uint8_t *z = calloc(1, n), *y = malloc(n), *buf = malloc(n);
	uint8_t *frame = malloc(cap), h[PROTO_HASH_SIZE];

	/* z: n bytes of other content; y: header + its frame + a skippable
	 * frame filling y up to n bytes */
	tu_fill(z, 2000, 5);
	size_t fl = ZSTD_compress(frame, cap, z, n, 3);
	assert_false(ZSTD_isError(fl));
	assert_true(CHUNKFILE_ZHDR + fl + 8 <= n);
	size_t pad = n - CHUNKFILE_ZHDR - fl - 8;
	memcpy(y, "\x89rtcz\r\n\x1a", 8);
	put_be32(y + 8, (uint32_t)n);
	put_be32(y + 12, (uint32_t)(n - CHUNKFILE_ZHDR));
	memcpy(y + CHUNKFILE_ZHDR, frame, fl);
	uint8_t *skip = y + CHUNKFILE_ZHDR + fl;
	skip[0] = 0x50, skip[1] = 0x2a, skip[2] = 0x4d, skip[3] = 0x18; /* LE magic */
	skip[4] = (uint8_t)pad, skip[5] = (uint8_t)(pad >> 8), skip[6] = 0, skip[7] = 0;
	memset(skip + 8, 0x5c, pad);
	/* decoded as a compressed form, y would give z, not itself */
	assert_int_equal(ZSTD_getFrameContentSize(y + CHUNKFILE_ZHDR, n - CHUNKFILE_ZHDR), n);
	assert_int_equal(ZSTD_decompress(buf, n, y + CHUNKFILE_ZHDR, n - CHUNKFILE_ZHDR), n);
	assert_memory_equal(buf, z, n);
	proto_chunk_hash(y, n, h);

	/* stored raw (compression off) it reads as itself; compressed too */
	struct chunkfile_enc enc;
	for (int level = 0; level <= 3; level += 3) {
		chunkfile_encode(y, n, level, &enc);
		assert_true(level ? enc.buf != NULL : enc.buf == NULL);
		assert_int_equal(chunkfile_write_enc(f->dir, h, &enc, 1), 0);
		chunkfile_enc_free(&enc);
		assert_true(chunkfile_present(f->dir, h, n));
		memset(buf, 0, n);
		assert_int_equal(chunkfile_read(f->dir, h, n, buf, &rlen), 0);
		assert_memory_equal(buf, y, n);
	}
	assert_int_equal(chunkfile_write(f->dir, h, y, n, 1), 0);
	/* damaged, it is refused like any raw chunk */
	uint8_t b = y[n / 2] ^ 1;
	char path[4200];
	chunkfile_path(f->dir, h, path, sizeof(path));
	patch(path, (long)(n / 2), &b, 1);
	assert_int_equal(chunkfile_read(f->dir, h, n, buf, &rlen), RTCMS_ECORRUPT);
	free(buf);
	free(y);
	free(z);
	free(frame);
}

/* A sealed chunk kept as it came: read back whole (header and sealed
 * bytes), its sum checked; present by its size and magic; any damaged
 * byte, a truncation or a wrong header is ECORRUPT. */
static void test_sealed_form(void **state)
{
	struct fixture *f = *state;
	static const char hexkey[] = "rtcms-data-key-v1 3 aes-256-gcm "
		"000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f\n";
	struct datakey_ring ring;
	uint8_t id[PROTO_HASH_SIZE], sealed[sizeof(f->data) + PROTO_CHUNK_TAG];
	uint8_t sum[PROTO_CHUNK_SUM], head[CHUNKFILE_SHDR], buf[CHUNKFILE_MAX];
	char err[256], path[4200];
	uint32_t key_id;
	const uint8_t *vsum, *vsealed;
	size_t size = sizeof(f->data);

	assert_int_equal(datakey_parse(hexkey, sizeof(hexkey) - 1, &ring, err, sizeof(err)), 0);
	assert_int_equal(stream_chunk_seal(&ring.keys[0], f->data, size, id, sealed, sum), 0);
	chunkfile_sealed_head(3, sum, head);
	struct chunkfile_enc enc = { sealed, sizeof(sealed), size, NULL, head, sizeof(head) };
	assert_int_equal(chunkfile_write_enc(f->dir, id, &enc, 1), 0);
	assert_true(chunkfile_present(f->dir, id, size));
	assert_int_equal(chunkfile_read(f->dir, id, size, buf, &rlen), 0);
	assert_int_equal(rlen, size + CHUNKFILE_SEALED_EXTRA);
	assert_true(chunkfile_sealed_view(buf, rlen, size, &key_id, &vsum, &vsealed));
	assert_int_equal(key_id, 3);
	assert_memory_equal(vsum, sum, PROTO_CHUNK_SUM);
	assert_memory_equal(vsealed, sealed, sizeof(sealed));
	/* the chunk never appears in the clear */
	assert_null(memmem(buf, rlen, f->data + 100, 64));
	/* every kind of damage */
	chunkfile_path(f->dir, id, path, sizeof(path));
	for (long at = 0; at < (long)(size + CHUNKFILE_SEALED_EXTRA); at += 997) {
		FILE *fp = fopen(path, "r+b");
		fseek(fp, at, SEEK_SET);
		int c = fgetc(fp);
		fseek(fp, at, SEEK_SET);
		fputc(c ^ 0x10, fp);
		fclose(fp);
		assert_int_equal(chunkfile_read(f->dir, id, size, buf, &rlen), RTCMS_ECORRUPT);
		fp = fopen(path, "r+b");
		fseek(fp, at, SEEK_SET);
		fputc(c, fp);
		fclose(fp);
		assert_int_equal(chunkfile_read(f->dir, id, size, buf, &rlen), 0);
	}
	assert_int_equal(truncate(path, (off_t)(size + CHUNKFILE_SEALED_EXTRA - 1)), 0);
	assert_int_equal(chunkfile_read(f->dir, id, size, buf, &rlen), RTCMS_ECORRUPT);
	assert_false(chunkfile_present(f->dir, id, size));
	/* a stored form is never compressed */
	chunkfile_encode(buf, size + CHUNKFILE_SEALED_EXTRA, 3, &enc);
	assert_null(enc.buf);
	datakey_ring_wipe(&ring);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_path_layout, setup, teardown),
		cmocka_unit_test_setup_teardown(test_parse_name, setup, teardown),
		cmocka_unit_test_setup_teardown(test_write_read, setup, teardown),
		cmocka_unit_test_setup_teardown(test_damage_detected, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fault_hook, setup, teardown),
		cmocka_unit_test_setup_teardown(test_compressed_roundtrip, setup, teardown),
		cmocka_unit_test_setup_teardown(test_incompressible_stays_raw, setup, teardown),
		cmocka_unit_test_setup_teardown(test_compressed_damage, setup, teardown),
		cmocka_unit_test_setup_teardown(test_raw_chunk_with_magic, setup, teardown),
		cmocka_unit_test_setup_teardown(test_sealed_form, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
