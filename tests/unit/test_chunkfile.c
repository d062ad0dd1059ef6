/*
 * test_chunkfile.c - content-addressed chunk files in one mirror: paths,
 * write (durable or flushed later) and verified read, missing, truncated
 * and corrupt files, removal, name parsing, the probe, and the failure
 * injection hook.
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

#include "proto/msg.h"
#include "rtcms_error.h"
#include "store/chunkfile.h"
#include "testutil.h"

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
	assert_int_equal(chunkfile_parse_name(name, h), -1);
	name[3] = 'g';
	assert_int_equal(chunkfile_parse_name(name, h), -1);
	name[3] = 'a';
	name[63] = '\0';
	assert_int_equal(chunkfile_parse_name(name, h), -1);
	assert_int_equal(chunkfile_parse_name("", h), -1);
	assert_int_equal(chunkfile_parse_name(".tmp.0011", h), -1);
}

static void test_write_read(void **state)
{
	struct fixture *f = *state;
	uint8_t buf[5000];

	assert_int_equal(chunkfile_present(f->dir, f->hash, sizeof(f->data)), 0);
	assert_int_equal(chunkfile_read(f->dir, f->hash, sizeof(buf), buf), RTCMS_ENOENT);
	assert_int_equal(chunkfile_write(f->dir, f->hash, f->data, sizeof(f->data), 1), 0);
	assert_int_equal(chunkfile_present(f->dir, f->hash, sizeof(f->data)), 1);
	assert_int_equal(chunkfile_present(f->dir, f->hash, sizeof(f->data) - 1), 0);
	assert_int_equal(chunkfile_read(f->dir, f->hash, sizeof(buf), buf), 0);
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
	assert_int_equal(chunkfile_any(f->dir), 1);
	chunkfile_remove(f->dir, f->hash);
	chunkfile_remove(f->dir, f->hash); /* missing is fine */
	assert_int_equal(chunkfile_present(f->dir, f->hash, sizeof(f->data)), 0);
	assert_int_equal(chunkfile_any(f->dir), 0);
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
	assert_int_equal(chunkfile_present(f->dir, f->hash, sizeof(f->data)), 1);
	assert_int_equal(chunkfile_read(f->dir, f->hash, sizeof(buf), buf), RTCMS_ECORRUPT);
	/* truncated */
	assert_int_equal(chunkfile_write(f->dir, f->hash, f->data, sizeof(f->data), 1), 0);
	assert_int_equal(truncate(f->path, 100), 0);
	assert_int_equal(chunkfile_present(f->dir, f->hash, sizeof(f->data)), 0);
	assert_int_equal(chunkfile_read(f->dir, f->hash, sizeof(buf), buf), RTCMS_ECORRUPT);
	/* content of another hash under this name */
	uint8_t other[5000];
	tu_fill(other, sizeof(other), 8);
	assert_int_equal(chunkfile_write(f->dir, f->hash, other, sizeof(other), 1), 0);
	assert_int_equal(chunkfile_read(f->dir, f->hash, sizeof(buf), buf), RTCMS_ECORRUPT);
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
	assert_int_equal(chunkfile_present(f->dir, f->hash, sizeof(f->data)), 0);
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

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_path_layout, setup, teardown),
		cmocka_unit_test_setup_teardown(test_parse_name, setup, teardown),
		cmocka_unit_test_setup_teardown(test_write_read, setup, teardown),
		cmocka_unit_test_setup_teardown(test_damage_detected, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fault_hook, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
