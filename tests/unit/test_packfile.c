/*
 * test_packfile.c - pack files: names, records appended at given offsets
 * and read back verified (raw, compressed, sealed forms), a record read
 * with the wrong id or length or a damaged header, the scan by record
 * headers past a hole, a torn record at the end ignored, a file that is
 * not a pack, and the failure injection hook.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "proto/msg.h"
#include "rtcms_error.h"
#include "store/packfile.h"
#include "stream/chunk.h"
#include "testutil.h"

struct fixture {
	char *dir;
	int fd;
	uint8_t buf[CHUNKFILE_MAX];
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	f->dir = tu_tmpdir("packfile");
	assert_int_equal(packfile_prepare(f->dir), 0);
	assert_int_equal(packfile_create(f->dir, 0x2a, &f->fd), 0);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	store_fault_hook = NULL;
	close(f->fd);
	tu_rmrf(f->dir);
	free(f->dir);
	free(f);
	return 0;
}

/* Append data (a plain chunk of len bytes, encoded at level) at off;
 * returns the record's length. */
static uint64_t append(struct fixture *f, uint64_t off, const uint8_t *data, size_t len,
		       int level, uint8_t h[PROTO_HASH_SIZE], uint32_t *n)
{
	struct chunkfile_enc enc;
	proto_chunk_hash(data, len, h);
	chunkfile_encode(data, len, level, &enc);
	assert_int_equal(packfile_append(f->dir, f->fd, off, h, &enc), 0);
	*n = (uint32_t)(enc.head_len + enc.len);
	chunkfile_enc_free(&enc);
	return packfile_rec_len(*n);
}

static void test_names(void **state)
{
	struct fixture *f = *state;
	char path[4200], want[4200];
	uint64_t id;
	struct stat sb;

	packfile_path(f->dir, 0x2a, path, sizeof(path));
	snprintf(want, sizeof(want), "%s/packs/000000000000002a.pack", f->dir);
	assert_string_equal(path, want);
	assert_int_equal(stat(path, &sb), 0);
	assert_int_equal(sb.st_size, PACKFILE_HDR);
	assert_int_equal(packfile_parse_name("000000000000002a.pack", &id), 0);
	assert_int_equal(id, 0x2a);
	assert_int_equal(packfile_parse_name("ffffffffffffffff.pack", &id), 0);
	assert_int_equal(id, UINT64_MAX);
	assert_int_equal(packfile_parse_name("000000000000002A.pack", &id), RTCMS_EINVAL);
	assert_int_equal(packfile_parse_name("00000000000002a.pack", &id), RTCMS_EINVAL);
	assert_int_equal(packfile_parse_name("000000000000002a.pak", &id), RTCMS_EINVAL);
	/* an id is created once */
	int fd;
	assert_int_not_equal(packfile_create(f->dir, 0x2a, &fd), 0);
	assert_int_equal(packfile_open(f->dir, 0x2b, &fd), RTCMS_ENOENT);
}

/* Records of every form at consecutive offsets read back verified. */
static void test_append_read(void **state)
{
	struct fixture *f = *state;
	uint8_t raw[5000], text[8192], h1[PROTO_HASH_SIZE], h2[PROTO_HASH_SIZE];
	uint8_t h3[PROTO_HASH_SIZE], head[CHUNKFILE_SHDR], sum[PROTO_CHUNK_SUM];
	uint8_t sealed[3000 + PROTO_CHUNK_TAG];
	uint32_t n1, n2, n3;
	size_t len;

	tu_fill(raw, sizeof(raw), 1);
	for (size_t i = 0; i < sizeof(text); i++)
		text[i] = (uint8_t)("checkpoint "[i % 11]);
	uint64_t o1 = PACKFILE_HDR;
	uint64_t o2 = o1 + append(f, o1, raw, sizeof(raw), 3, h1, &n1);
	uint64_t o3 = o2 + append(f, o2, text, sizeof(text), 3, h2, &n2);
	assert_int_equal(n1, sizeof(raw)); /* random: stays raw */
	assert_true(n2 < sizeof(text) / 4); /* compressed */
	/* a sealed form: its header and the sealed bytes, as they came */
	tu_fill(sealed, sizeof(sealed), 2);
	stream_chunk_sum(sealed, sizeof(sealed), sum);
	chunkfile_sealed_head(7, sum, head);
	memset(h3, 0x33, sizeof(h3));
	struct chunkfile_enc enc = { sealed, sizeof(sealed), 3000, NULL, head, sizeof(head) };
	assert_int_equal(packfile_append(f->dir, f->fd, o3, h3, &enc), 0);
	n3 = (uint32_t)(sizeof(head) + sizeof(sealed));

	assert_int_equal(packfile_read(f->fd, o1, n1, h1, sizeof(raw), f->buf, &len), 0);
	assert_int_equal(len, sizeof(raw));
	assert_memory_equal(f->buf, raw, sizeof(raw));
	assert_int_equal(packfile_read(f->fd, o2, n2, h2, sizeof(text), f->buf, &len), 0);
	assert_int_equal(len, sizeof(text));
	assert_memory_equal(f->buf, text, sizeof(text));
	assert_int_equal(packfile_read(f->fd, o3, n3, h3, 3000, f->buf, &len), 0);
	assert_int_equal(len, 3000 + CHUNKFILE_SEALED_EXTRA);
	assert_memory_equal(f->buf + CHUNKFILE_SHDR, sealed, sizeof(sealed));

	/* the place must be the record's: another id, length or offset */
	assert_int_equal(packfile_read(f->fd, o1, n1, h2, sizeof(raw), f->buf, &len),
			 RTCMS_ECORRUPT);
	assert_int_equal(packfile_read(f->fd, o1, n1 - 1, h1, sizeof(raw), f->buf, &len),
			 RTCMS_ECORRUPT);
	assert_int_equal(packfile_read(f->fd, o1 + 1, n1, h1, sizeof(raw), f->buf, &len),
			 RTCMS_ECORRUPT);
	/* past the end */
	assert_int_equal(packfile_read(f->fd, o3 + 1000000, n1, h1, sizeof(raw), f->buf, &len),
			 RTCMS_ECORRUPT);
	/* a damaged header (its check), a damaged form (the hash) */
	uint8_t b;
	assert_int_equal(pread(f->fd, &b, 1, (off_t)o2 + 41), 1);
	b ^= 1;
	assert_int_equal(pwrite(f->fd, &b, 1, (off_t)o2 + 41), 1);
	assert_int_equal(packfile_read(f->fd, o2, n2, h2, sizeof(text), f->buf, &len),
			 RTCMS_ECORRUPT);
	assert_int_equal(pread(f->fd, &b, 1, (off_t)o1 + PACKFILE_RHDR + 9), 1);
	b ^= 1;
	assert_int_equal(pwrite(f->fd, &b, 1, (off_t)o1 + PACKFILE_RHDR + 9), 1);
	assert_int_equal(packfile_read(f->fd, o1, n1, h1, sizeof(raw), f->buf, &len),
			 RTCMS_ECORRUPT);
	assert_int_equal(packfile_sync(f->dir, f->fd), 0);
}

/* What a scan found. */
struct seen {
	uint8_t h[8][PROTO_HASH_SIZE];
	uint64_t off[8];
	uint32_t n[8];
	int count;
};

static bool seen_add(void *ctx, const uint8_t hash[PROTO_HASH_SIZE], uint64_t off, uint32_t n)
{
	struct seen *s = ctx;
	assert_true(s->count < 8);
	memcpy(s->h[s->count], hash, PROTO_HASH_SIZE);
	s->off[s->count] = off;
	s->n[s->count++] = n;
	return true;
}

static uint64_t file_size(int fd)
{
	struct stat sb;
	assert_int_equal(fstat(fd, &sb), 0);
	return (uint64_t)sb.st_size;
}

/* The scan walks the records by their headers: past a hole (a failed
 * append's bytes), not into a record torn at the end. */
static void test_scan(void **state)
{
	struct fixture *f = *state;
	uint8_t a[3000], b[4000], c[2000], ha[PROTO_HASH_SIZE], hb[PROTO_HASH_SIZE];
	uint8_t hc[PROTO_HASH_SIZE];
	uint32_t na, nb, nc;
	struct seen s = { .count = 0 };

	tu_fill(a, sizeof(a), 3);
	tu_fill(b, sizeof(b), 4);
	tu_fill(c, sizeof(c), 5);
	uint64_t oa = PACKFILE_HDR;
	uint64_t hole = oa + append(f, oa, a, sizeof(a), 0, ha, &na);
	/* 777 bytes of garbage (a header-like start included), then b */
	uint8_t junk[777];
	memset(junk, 0, sizeof(junk));
	memcpy(junk, "\x89rtcr\r\n\x1a", 8);
	assert_int_equal(pwrite(f->fd, junk, sizeof(junk), (off_t)hole), (ssize_t)sizeof(junk));
	uint64_t ob = hole + sizeof(junk);
	uint64_t oc = ob + append(f, ob, b, sizeof(b), 0, hb, &nb);
	uint64_t end = oc + append(f, oc, c, sizeof(c), 0, hc, &nc);
	assert_int_equal(packfile_scan(f->fd, file_size(f->fd), seen_add, &s), 0);
	assert_int_equal(s.count, 3);
	assert_memory_equal(s.h[0], ha, PROTO_HASH_SIZE);
	assert_int_equal(s.off[0], oa);
	assert_int_equal(s.n[0], na);
	assert_memory_equal(s.h[1], hb, PROTO_HASH_SIZE);
	assert_int_equal(s.off[1], ob);
	assert_memory_equal(s.h[2], hc, PROTO_HASH_SIZE);
	assert_int_equal(s.off[2], oc);
	assert_int_equal(s.n[2], nc);

	/* torn at the end (a crash during the append): c is not seen */
	assert_int_equal(ftruncate(f->fd, (off_t)(end - 10)), 0);
	s.count = 0;
	assert_int_equal(packfile_scan(f->fd, file_size(f->fd), seen_add, &s), 0);
	assert_int_equal(s.count, 2);
	/* only its header made it: nothing either */
	assert_int_equal(ftruncate(f->fd, (off_t)(oc + PACKFILE_RHDR)), 0);
	s.count = 0;
	assert_int_equal(packfile_scan(f->fd, file_size(f->fd), seen_add, &s), 0);
	assert_int_equal(s.count, 2);

	/* not a pack */
	assert_int_equal(pwrite(f->fd, "X", 1, 0), 1);
	assert_int_equal(packfile_scan(f->fd, file_size(f->fd), seen_add, &s), RTCMS_ECORRUPT);
	assert_int_equal(packfile_scan(f->fd, 3, seen_add, &s), RTCMS_ECORRUPT);
}

static int fail_all(const char *site, const char *dir)
{
	(void)dir;
	return strcmp(site, "chunk_write") == 0 ? RTCMS_ENOSPC
	       : strcmp(site, "chunk_sync") == 0 ? 1 : 0;
}

static void test_faults(void **state)
{
	struct fixture *f = *state;
	uint8_t a[100] = { 1 }, h[PROTO_HASH_SIZE];
	struct chunkfile_enc enc = { a, sizeof(a), sizeof(a), NULL, NULL, 0 };

	proto_chunk_hash(a, sizeof(a), h);
	store_fault_hook = fail_all;
	assert_int_equal(packfile_append(f->dir, f->fd, PACKFILE_HDR, h, &enc), RTCMS_ENOSPC);
	assert_int_equal(packfile_sync(f->dir, f->fd), RTCMS_EIO);
	assert_int_equal(file_size(f->fd), PACKFILE_HDR);
	store_fault_hook = NULL;
	assert_int_equal(packfile_append(f->dir, f->fd, PACKFILE_HDR, h, &enc), 0);
	assert_int_equal(file_size(f->fd), PACKFILE_HDR + PACKFILE_RHDR + sizeof(a));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_names, setup, teardown),
		cmocka_unit_test_setup_teardown(test_append_read, setup, teardown),
		cmocka_unit_test_setup_teardown(test_scan, setup, teardown),
		cmocka_unit_test_setup_teardown(test_faults, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
