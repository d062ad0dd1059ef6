/*
 * test_store_compress.c - compressed stored forms (in packs, and chunk
 * files of the layout before packs): fewer bytes on disk, compression
 * toggled between opens, scrub repair and resync of compressed copies.
 */
#include "store_fixture.h"

#define ZMAGIC "\x89rtcz\r\n\x1a"

#define ZIMG (64 * DCHUNK) /* 1 MiB */

/* Checkpoint-like content: most 16 KiB chunks hold text records (they
 * compress), every fourth is random (it does not). */
static void fill_mixed(uint8_t *buf, size_t len, uint64_t seed)
{
	for (size_t off = 0; off < len; off += DCHUNK) {
		size_t n = len - off < DCHUNK ? len - off : DCHUNK, at = 0;
		size_t idx = off / DCHUNK;
		if (idx % 4 == 3) {
			tu_fill(buf + off, n, seed * 1000 + idx);
			continue;
		}
		while (at < n) {
			char line[80];
			int k = snprintf(line, sizeof(line), "%" PRIu64 ":%zu: counter=%zu "
					 "state=running\n", seed, idx, at * 7919 % 100003);
			size_t c = (size_t)k < n - at ? (size_t)k : n - at;
			memcpy(buf + off + at, line, c);
			at += c;
		}
	}
}

/* Sum of the sizes of a mirror's stored forms (records in its packs and
 * chunk files); *zfiles gets how many are in the compressed form, *files
 * how many there are. */
static uint64_t disk_bytes(const char *mirror, int *zfiles, int *files)
{
	char path[4200];
	uint8_t *hashes;
	uint64_t sum = 0;
	int n = tu_chunk_list(mirror, &hashes);

	assert_true(n >= 0);
	*zfiles = *files = 0;
	for (int i = 0; i < n; i++) {
		uint8_t head[8] = { 0 };
		uint64_t off, len;
		chunk_where(mirror, hashes + 32 * i, path, sizeof(path), &off, &len);
		FILE *fp = fopen(path, "rb");
		assert_non_null(fp);
		assert_int_equal(fseek(fp, (long)off, SEEK_SET), 0);
		size_t got = fread(head, 1, sizeof(head), fp);
		fclose(fp);
		sum += len;
		(*files)++;
		*zfiles += got == 8 && memcmp(head, ZMAGIC, 8) == 0;
	}
	free(hashes);
	return sum;
}

/* Store the compressible image of seed as (process, 1, seq). */
static void put_mixed(struct store *st, const char *process, uint64_t seq,
		      uint64_t seed)
{
	struct proto_put_ack ack;
	uint8_t *img = malloc(ZIMG);
	fill_mixed(img, ZIMG, seed);
	assert_int_equal(put_img(st, process, 1, seq, 0, 0, NULL, img, ZIMG, &ack), 0);
	free(img);
}

/* GET (process, 1, seq) and compare it with the image of seed. */
static void get_mixed(struct store *st, const char *process, uint64_t seq,
		      uint64_t seed)
{
	struct proto_ckpt_meta m;
	uint8_t *want = malloc(ZIMG), *got;
	size_t len;
	fill_mixed(want, ZIMG, seed);
	assert_int_equal(get_img(st, process, 1, seq, &m, &got, &len), 0);
	assert_int_equal(len, ZIMG);
	assert_memory_equal(got, want, ZIMG);
	free(got);
	free(want);
}

static void reopen_compress(struct fixture *f, enum store_compress c, int level)
{
	store_free(f->st);
	f->st = NULL;
	f->compress = c;
	f->compress_level = level;
	open_store(f);
}

/* Where mirror keeps chunk idx (of DCHUNK) of the image of seed: the
 * file, the offset and the length of its stored form. */
static void mixed_chunk_where(const char *mirror, uint64_t seed, size_t idx, char *out,
			      size_t len, uint64_t *off, uint64_t *n)
{
	uint8_t *img = malloc(ZIMG), h[PROTO_HASH_SIZE];
	fill_mixed(img, ZIMG, seed);
	proto_chunk_hash(img + idx * DCHUNK, DCHUNK, h);
	chunk_where(mirror, h, out, len, off, n);
	free(img);
}

/* With compression on, compressible checkpoints take fewer bytes on disk
 * (incompressible chunks stay raw), read back byte-exact, and the same
 * content is still one chunk (deduplicated, nothing new written). */
static void test_compressed_store(void **state)
{
	struct fixture *f = *state;
	int z0, n0, z1, n1;

	f->retain = 10;
	reopen_compress(f, STORE_COMPRESS_ZSTD, 0);
	put_mixed(f->st, "p", 1, 1);
	uint64_t d0 = disk_bytes(f->m0, &z0, &n0), d1 = disk_bytes(f->m1, &z1, &n1);
	print_message("1 MiB checkpoint: %" PRIu64 " bytes on disk per mirror "
		      "(%d of %d chunk files compressed)\n", d0, z0, n0);
	assert_int_equal(n0, 64);
	assert_int_equal(z0, 48);             /* the random quarter stays raw */
	assert_true(d0 < ZIMG / 2);
	assert_true(d0 > ZIMG / 4);           /* the raw quarter alone */
	assert_int_equal(d1, d0);
	assert_int_equal(z1, z0);
	assert_int_equal(last_stats.new_chunks, 64);
	assert_int_equal(last_stats.new_bytes, ZIMG);
	assert_int_equal(last_stats.disk_bytes, d0);
	get_mixed(f->st, "p", 1, 1);

	/* the same content again (another process): no new chunk file */
	put_mixed(f->st, "q", 1, 1);
	assert_int_equal(last_stats.new_chunks, 0);
	assert_int_equal(last_stats.disk_bytes, 0);
	assert_int_equal(disk_bytes(f->m0, &z0, &n0), d0);
	assert_int_equal(n0, 64);
	get_mixed(f->st, "q", 1, 1);

	/* other levels work the same, with the same dedup */
	reopen_compress(f, STORE_COMPRESS_ZSTD, 19);
	put_mixed(f->st, "r", 1, 2);
	assert_true(last_stats.disk_bytes < last_stats.new_bytes / 2);
	put_mixed(f->st, "s", 1, 1);
	assert_int_equal(last_stats.new_chunks, 0);
	get_mixed(f->st, "r", 1, 2);
	get_mixed(f->st, "s", 1, 1);

	/* a level out of range, or an unknown mode, is a config error */
	struct store *st = NULL;
	struct store_options o = {
		.mirrors = f->mirrors, .mirror_count = 2,
		.compress = STORE_COMPRESS_ZSTD, .compress_level = 20,
	};
	assert_int_equal(store_open(&o, &st), RTCMS_ECONFIG);
	o.compress_level = -1;
	assert_int_equal(store_open(&o, &st), RTCMS_ECONFIG);
	o.compress_level = 3;
	o.compress = (enum store_compress)7;
	assert_int_equal(store_open(&o, &st), RTCMS_ECONFIG);
	assert_null(st);
}

/* Compression toggled between opens (off -> on -> off): raw and compressed
 * chunk files coexist, everything stays readable, a raw chunk dedups a
 * PUT made with compression on, GC removes either form, the orphan sweep
 * at open removes either form, and a scrub finds nothing wrong. */
static void test_compression_toggled(void **state)
{
	struct fixture *f = *state;
	struct proto_scrub_reply r;
	int z, n;

	f->retain = 10;
	reopen_compress(f, STORE_COMPRESS_OFF, 0);
	put_mixed(f->st, "a", 1, 1);
	uint64_t da = disk_bytes(f->m0, &z, &n);
	assert_int_equal(z, 0);
	assert_int_equal(da, ZIMG);
	assert_int_equal(last_stats.disk_bytes, ZIMG);

	reopen_compress(f, STORE_COMPRESS_ZSTD, 3);
	put_mixed(f->st, "b", 1, 2);
	uint64_t dab = disk_bytes(f->m0, &z, &n);
	assert_int_equal(z, 48);
	assert_int_equal(n, 128);
	assert_true(dab < da + ZIMG / 2);
	/* a's raw chunks count as stored: nothing new for the same content */
	put_mixed(f->st, "a2", 1, 1);
	assert_int_equal(last_stats.new_chunks, 0);
	assert_int_equal(disk_bytes(f->m0, &z, &n), dab);
	get_mixed(f->st, "a", 1, 1);
	get_mixed(f->st, "b", 1, 2);

	reopen_compress(f, STORE_COMPRESS_OFF, 0);
	put_mixed(f->st, "c", 1, 3);
	assert_int_equal(last_stats.disk_bytes, ZIMG);
	get_mixed(f->st, "a", 1, 1);
	get_mixed(f->st, "a2", 1, 1);
	get_mixed(f->st, "b", 1, 2);
	get_mixed(f->st, "c", 1, 3);
	assert_int_equal(store_scrub(f->st, false, &r), 0);
	for (int i = 0; i < 2; i++) {
		assert_int_equal(r.mirrors[i].chunks, 192);
		assert_int_equal(r.mirrors[i].bytes, 3 * ZIMG);
		assert_int_equal(r.mirrors[i].corrupt + r.mirrors[i].missing, 0);
	}
	assert_int_equal(r.unrepairable, 0);

	/* GC: deleting b removes its compressed files on both mirrors */
	assert_int_equal(store_delete(f->st, "b", 0, 0), 1);
	for (int i = 0; i < 2; i++) {
		uint64_t d = disk_bytes(f->mirrors[i], &z, &n);
		assert_int_equal(z, 0);
		assert_int_equal(n, 128);
		assert_int_equal(d, 2 * ZIMG);
	}
	/* the orphan sweep at open: an unreferenced compressed chunk file
	 * (of the layout before packs) and a raw one go */
	uint8_t *img = malloc(ZIMG), h[PROTO_HASH_SIZE];
	struct chunkfile_enc enc;
	assert_int_equal(chunkfile_prepare(f->m0), 0);
	assert_int_equal(chunkfile_prepare(f->m1), 0);
	fill_mixed(img, ZIMG, 9);
	proto_chunk_hash(img, DCHUNK, h);
	chunkfile_encode(img, DCHUNK, 3, &enc);
	assert_non_null(enc.buf);
	assert_int_equal(chunkfile_write_enc(f->m0, h, &enc, 1), 0);
	chunkfile_enc_free(&enc);
	proto_chunk_hash(img + 3 * DCHUNK, DCHUNK, h);
	assert_int_equal(chunkfile_write(f->m1, h, img + 3 * DCHUNK, DCHUNK, 1), 0);
	disk_bytes(f->m0, &z, &n);
	assert_int_equal(z, 1);
	assert_int_equal(n, 129);
	disk_bytes(f->m1, &z, &n);
	assert_int_equal(z, 0);
	assert_int_equal(n, 129);
	reopen_compress(f, STORE_COMPRESS_ZSTD, 3);
	for (int i = 0; i < 2; i++) {
		assert_int_equal(disk_bytes(f->mirrors[i], &z, &n), 2 * ZIMG);
		assert_int_equal(z, 0);
		assert_int_equal(n, 128);
	}
	get_mixed(f->st, "c", 1, 3);
	free(img);
}

/* A damaged compressed copy (a flipped byte, a truncated file) is found
 * by a scrub and repaired from the other mirror, and by a GET. */
static void test_compressed_scrub_repair(void **state)
{
	struct fixture *f = *state;
	struct proto_scrub_reply r;
	char p0[4200], p1[4200];
	uint64_t o0, o1, zsize, n1;
	uint32_t repaired = 0;

	reopen_compress(f, STORE_COMPRESS_ZSTD, 3);
	put_mixed(f->st, "p", 1, 1);
	/* chunks 0 and 1 compress (text), chunk 3 does not */
	mixed_chunk_where(f->m1, 1, 0, p0, sizeof(p0), &o0, &zsize);
	mixed_chunk_where(f->m1, 1, 1, p1, sizeof(p1), &o1, &n1);
	assert_true(zsize < DCHUNK / 2);
	flip_at(p0, o0); /* the magic */
	flip_at(p1, o1 + 200);
	assert_int_equal(store_scrub(f->st, false, &r), 0);
	assert_int_equal(r.mirrors[1].corrupt, 2);
	assert_int_equal(r.mirrors[0].corrupt, 0);
	assert_int_equal(store_scrub(f->st, true, &r), 0);
	assert_int_equal(r.mirrors[1].repaired, 2);
	assert_int_equal(store_scrub(f->st, true, &r), 0);
	assert_int_equal(r.mirrors[1].corrupt + r.mirrors[1].missing, 0);
	assert_int_equal(r.mirrors[1].chunks, 64);
	/* rewritten compressed, as the store writes now: a fresh record */
	uint64_t o2, n2;
	mixed_chunk_where(f->m1, 1, 0, p1, sizeof(p1), &o2, &n2);
	assert_int_equal(n2, zsize);
	assert_true(o2 > o0);

	/* mirror 0 (read first): the end of one compressed frame and the
	 * middle of another damaged, repaired by the GET */
	mixed_chunk_where(f->m0, 1, 0, p0, sizeof(p0), &o0, &zsize);
	mixed_chunk_where(f->m0, 1, 5, p1, sizeof(p1), &o1, &n1);
	flip_at(p0, o0 + zsize - 3);
	flip_at(p1, o1 + n1 / 2);
	struct proto_ckpt_meta m;
	struct store_get *g;
	uint8_t *buf = malloc(PROTO_MAX_CHUNK);
	struct proto_chunk ch = { 0 };
	bool end = false;
	assert_int_equal(store_get_open(f->st, "p", 1, 1, &g, &m), 0);
	while (store_get_next(g, buf, &ch, &end) == 0 && !end)
		;
	repaired = store_get_repaired(g);
	store_get_close(g);
	free(buf);
	assert_int_equal(repaired, 2);
	get_mixed(f->st, "p", 1, 1);
	assert_int_equal(store_scrub(f->st, false, &r), 0);
	assert_int_equal(r.mirrors[0].corrupt + r.mirrors[1].corrupt, 0);
}

/* A wiped mirror is resynchronised at open from compressed chunk files:
 * compressed again with compression on; raw with it off. */
static void test_compressed_resync(void **state)
{
	struct fixture *f = *state;
	int z0, n0, z1, n1;
	char path[700];

	f->retain = 10;
	reopen_compress(f, STORE_COMPRESS_ZSTD, 3);
	put_mixed(f->st, "p", 1, 1);
	put_mixed(f->st, "q", 1, 2);
	store_free(f->st);
	f->st = NULL;
	tu_rmrf(f->m1);
	open_store(f);
	uint64_t d0 = disk_bytes(f->m0, &z0, &n0), d1 = disk_bytes(f->m1, &z1, &n1);
	assert_int_equal(n1, n0);
	assert_int_equal(n1, 128);
	assert_int_equal(z1, z0);
	assert_int_equal(d1, d0);
	/* mirror 0's packs wiped (its meta.db still places the chunks
	 * there), compression now off: resynced raw from mirror 1's
	 * compressed records */
	store_free(f->st);
	f->st = NULL;
	snprintf(path, sizeof(path), "%s/packs", f->m0);
	tu_rmrf(path);
	f->compress = STORE_COMPRESS_OFF;
	open_store(f);
	d0 = disk_bytes(f->m0, &z0, &n0);
	assert_int_equal(n0, 128);
	assert_int_equal(z0, 0);
	assert_int_equal(d0, 2 * ZIMG);
	get_mixed(f->st, "p", 1, 1);
	get_mixed(f->st, "q", 1, 2);
	/* mirror 1 alone still serves everything */
	store_free(f->st);
	tu_rmrf(f->m0);
	open_store(f);
	get_mixed(f->st, "p", 1, 1);
	get_mixed(f->st, "q", 1, 2);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_compressed_store, setup, teardown),
		cmocka_unit_test_setup_teardown(test_compression_toggled, setup, teardown),
		cmocka_unit_test_setup_teardown(test_compressed_scrub_repair, setup, teardown),
		cmocka_unit_test_setup_teardown(test_compressed_resync, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
