/*
 * test_catalog.c - one mirror's metadata database: creation with its
 * schema and generation, WAL mode, persistence, u64 and hash columns,
 * copying, and refusing a file that is not a database.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rtcms_error.h"
#include "store/catalog.h"
#include "testutil.h"

static void test_open_schema_generation(void **state)
{
	(void)state;
	char *dir = tu_tmpdir("catalog");
	struct catalog *cat = NULL;
	struct proc_row r;
	uint64_t v = 0;

	assert_int_equal(catalog_open(dir, &cat), 0);
	assert_int_equal(catalog_generation(cat), 0);
	assert_int_equal(catalog_query_u64(cat, "SELECT journal_mode = 'wal' FROM"
					   " pragma_journal_mode", &v), 0);
	assert_int_equal(v, 1);
	assert_int_equal(catalog_exec(cat, "UPDATE meta SET value = 41 WHERE key='generation'"), 0);
	assert_int_equal(catalog_proc_save(cat, "p", 3, 9, true), 0);
	assert_int_equal(catalog_exec(cat, "no such statement"), RTCMS_EIO);
	assert_int_equal(catalog_query_u64(cat, "SELECT nothing FROM nowhere", &v), RTCMS_EIO);
	assert_int_equal(catalog_query_u64(cat, "SELECT 1 WHERE 0", &v), RTCMS_ENOENT);
	catalog_close(cat);
	catalog_close(NULL);

	/* reopened: the schema is kept, rows and generation persist */
	assert_int_equal(catalog_open(dir, &cat), 0);
	assert_int_equal(catalog_generation(cat), 41);
	assert_int_equal(catalog_proc_load(cat, "p", &r), 0);
	assert_true(r.found);
	assert_int_equal(r.incarnation, 3);
	assert_int_equal(r.node, 9);
	assert_int_equal(catalog_proc_load(cat, "q", &r), 0);
	assert_false(r.found);
	catalog_close(cat);
	tu_rmrf(dir);
	free(dir);
}

static bool count_chunks(void *ctx, const uint8_t hash[PROTO_HASH_SIZE], uint64_t size)
{
	(void)hash;
	(void)size;
	(*(int *)ctx)++;
	return true;
}

static void test_checkpoint_rows(void **state)
{
	(void)state;
	char *dir = tu_tmpdir("catalog");
	struct catalog *cat = NULL;
	struct proto_ckpt_meta m;
	struct chunk_ref c[2], *got = NULL;
	struct ckpt_row row;
	uint8_t h[PROTO_HASH_SIZE];
	uint64_t size = 0;
	uint32_t depth = 9;
	int n = 0;

	assert_int_equal(catalog_open(dir, &cat), 0);
	memset(&m, 0, sizeof(m));
	strcpy(m.process, "p");
	m.incarnation = 1;
	m.sequence = 2;
	m.node = UINT64_MAX - 1; /* kept as its bit pattern */
	m.size = 10;
	m.chunk_count = 2;
	memset(m.hash, 0xab, sizeof(m.hash));
	memset(c, 0, sizeof(c));
	c[0].len = 4;
	memset(c[0].hash, 1, PROTO_HASH_SIZE);
	c[1].offset = 4;
	c[1].len = 6;
	memset(c[1].hash, 2, PROTO_HASH_SIZE);
	assert_int_equal(catalog_ckpt_insert(cat, &m, 77, 0, c, 2), 0);

	bool found = false, known = true;
	assert_int_equal(catalog_ckpt_lookup(cat, "p", 1, 2, h, &size, &depth, NULL, &found), 0);
	assert_true(found);
	assert_memory_equal(h, m.hash, PROTO_HASH_SIZE);
	assert_int_equal(size, 10);
	assert_int_equal(depth, 0);
	assert_int_equal(catalog_ckpt_lookup(cat, "p", 1, 3, NULL, NULL, NULL, NULL, &found), 0);
	assert_false(found);
	assert_int_equal(catalog_ckpt_get(cat, "p", 1, 2, &row), 0);
	assert_true(row.node == UINT64_MAX - 1);
	assert_int_equal(row.created_ms, 77);
	assert_int_equal(row.full_size, 10);
	/* no state hash stored: zeros */
	memset(h, 0, sizeof(h));
	assert_memory_equal(row.state_hash, h, PROTO_HASH_SIZE);
	assert_int_equal(catalog_ckpt_find(cat, "p", 0, 0, &row, NULL, NULL), 0);
	assert_int_equal(row.seq, 2);
	assert_int_equal(catalog_ckpt_find(cat, "x", 0, 0, &row, NULL, NULL), RTCMS_ENOENT);

	assert_int_equal(catalog_chunks_load(cat, "p", 1, 2, 2, &got), 0);
	assert_memory_equal(got, c, sizeof(c));
	free(got);
	assert_int_equal(catalog_chunks_load(cat, "p", 1, 2, 1, &got), RTCMS_EIO);
	assert_null(got);
	assert_int_equal(catalog_chunk_known(cat, c[1].hash, &known), 0);
	assert_true(known);
	assert_int_equal(catalog_chunks_each(cat, count_chunks, &n), 0);
	assert_int_equal(n, 2);

	assert_int_equal(catalog_ckpt_delete(cat, "p", 1, 2, NULL, NULL), 0);
	assert_int_equal(catalog_chunk_known(cat, c[1].hash, &known), 0);
	assert_false(known);
	assert_int_equal(catalog_ckpt_get(cat, "p", 1, 2, &row), RTCMS_ENOENT);
	catalog_close(cat);
	tu_rmrf(dir);
	free(dir);
}

static void test_copy(void **state)
{
	(void)state;
	char *a = tu_tmpdir("catalog"), *b = tu_tmpdir("catalog");
	struct catalog *ca = NULL, *cb = NULL;
	struct proc_row r;

	assert_int_equal(catalog_open(a, &ca), 0);
	assert_int_equal(catalog_open(b, &cb), 0);
	assert_int_equal(catalog_exec(ca, "UPDATE meta SET value = 7 WHERE key='generation'"), 0);
	assert_int_equal(catalog_proc_save(ca, "x", 1, 1, true), 0);
	assert_int_equal(catalog_proc_save(cb, "stale", 1, 1, true), 0);
	assert_int_equal(catalog_copy(cb, ca), 0);
	assert_int_equal(catalog_generation(cb), 7);
	assert_int_equal(catalog_proc_load(cb, "x", &r), 0);
	assert_true(r.found);
	assert_int_equal(catalog_proc_load(cb, "stale", &r), 0);
	assert_false(r.found);
	catalog_close(ca);
	catalog_close(cb);
	/* the copy is durable in b's own file */
	assert_int_equal(catalog_open(b, &cb), 0);
	assert_int_equal(catalog_generation(cb), 7);
	catalog_close(cb);
	tu_rmrf(a);
	tu_rmrf(b);
	free(a);
	free(b);
}

static void test_not_a_database(void **state)
{
	(void)state;
	char *dir = tu_tmpdir("catalog");
	char path[600];
	struct catalog *cat = NULL;

	snprintf(path, sizeof(path), "%s/meta.db", dir);
	FILE *fp = fopen(path, "wb");
	assert_non_null(fp);
	for (int i = 0; i < 4096; i++)
		fputc(i * 31, fp);
	fclose(fp);
	assert_int_equal(catalog_open(dir, &cat), RTCMS_EIO);
	assert_null(cat);
	tu_rmrf(dir);
	free(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_open_schema_generation),
		cmocka_unit_test(test_checkpoint_rows),
		cmocka_unit_test(test_copy),
		cmocka_unit_test(test_not_a_database),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
