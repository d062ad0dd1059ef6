/*
 * test_meta.c - one mirror's metadata database: creation with its schema
 * and generation, WAL mode, persistence, copying, and refusing a file that
 * is not a database.
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
#include "store/meta.h"
#include "testutil.h"

static void test_open_schema_generation(void **state)
{
	(void)state;
	char *dir = tu_tmpdir("meta");
	sqlite3 *db = NULL;
	sqlite3_stmt *s;

	assert_int_equal(meta_open(dir, &db), 0);
	assert_int_equal(meta_generation(db), 0);
	s = meta_prep(db, "PRAGMA journal_mode");
	assert_non_null(s);
	assert_int_equal(sqlite3_step(s), SQLITE_ROW);
	assert_string_equal((const char *)sqlite3_column_text(s, 0), "wal");
	sqlite3_finalize(s);
	assert_int_equal(meta_exec(db, "UPDATE meta SET value = 41 WHERE key='generation'"), 0);
	assert_int_equal(meta_exec(db, "INSERT INTO processes(process, incarnation, node)"
				   " VALUES('p', 3, 9)"), 0);
	assert_int_equal(meta_exec(db, "no such statement"), RTCMS_EIO);
	assert_null(meta_prep(db, "SELECT nothing FROM nowhere"));
	sqlite3_close(db);

	/* reopened: the schema is kept, rows and generation persist */
	assert_int_equal(meta_open(dir, &db), 0);
	assert_int_equal(meta_generation(db), 41);
	s = meta_prep(db, "SELECT incarnation, node FROM processes WHERE process=?");
	meta_bind_text(s, 1, "p");
	assert_int_equal(sqlite3_step(s), SQLITE_ROW);
	assert_int_equal(meta_col_u64(s, 0), 3);
	assert_int_equal(meta_col_u64(s, 1), 9);
	sqlite3_finalize(s);
	sqlite3_close(db);
	tu_rmrf(dir);
	free(dir);
}

static void test_u64_and_hash_columns(void **state)
{
	(void)state;
	char *dir = tu_tmpdir("meta");
	sqlite3 *db = NULL;
	uint8_t h[PROTO_HASH_SIZE], out[PROTO_HASH_SIZE];

	assert_int_equal(meta_open(dir, &db), 0);
	memset(h, 0xab, sizeof(h));
	sqlite3_stmt *s = meta_prep(db, "INSERT INTO chunks VALUES(?, ?, 1)");
	sqlite3_bind_blob(s, 1, h, PROTO_HASH_SIZE, SQLITE_TRANSIENT);
	meta_bind_u64(s, 2, UINT64_MAX - 1); /* kept as its bit pattern */
	assert_int_equal(meta_step_done(s), 0);
	s = meta_prep(db, "SELECT hash, size, x'0102' FROM chunks");
	assert_int_equal(sqlite3_step(s), SQLITE_ROW);
	meta_col_hash(s, 0, out);
	assert_memory_equal(out, h, PROTO_HASH_SIZE);
	assert_true(meta_col_u64(s, 1) == UINT64_MAX - 1);
	meta_col_hash(s, 2, out); /* not 32 bytes: zeros */
	memset(h, 0, sizeof(h));
	assert_memory_equal(out, h, PROTO_HASH_SIZE);
	sqlite3_finalize(s);
	assert_int_equal(meta_step_done(NULL), RTCMS_EIO);
	sqlite3_close(db);
	tu_rmrf(dir);
	free(dir);
}

static void test_copy(void **state)
{
	(void)state;
	char *a = tu_tmpdir("meta"), *b = tu_tmpdir("meta");
	sqlite3 *da = NULL, *db = NULL;

	assert_int_equal(meta_open(a, &da), 0);
	assert_int_equal(meta_open(b, &db), 0);
	assert_int_equal(meta_exec(da, "UPDATE meta SET value = 7 WHERE key='generation';"
				   "INSERT INTO processes(process, incarnation, node) VALUES('x', 1, 1)"), 0);
	assert_int_equal(meta_exec(db, "INSERT INTO processes(process, incarnation, node)"
				   " VALUES('stale', 1, 1)"), 0);
	assert_int_equal(meta_copy(db, da), 0);
	assert_int_equal(meta_generation(db), 7);
	sqlite3_stmt *s = meta_prep(db, "SELECT group_concat(process) FROM processes");
	assert_int_equal(sqlite3_step(s), SQLITE_ROW);
	assert_string_equal((const char *)sqlite3_column_text(s, 0), "x");
	sqlite3_finalize(s);
	sqlite3_close(da);
	sqlite3_close(db);
	/* the copy is durable in b's own file */
	assert_int_equal(meta_open(b, &db), 0);
	assert_int_equal(meta_generation(db), 7);
	sqlite3_close(db);
	tu_rmrf(a);
	tu_rmrf(b);
	free(a);
	free(b);
}

static void test_not_a_database(void **state)
{
	(void)state;
	char *dir = tu_tmpdir("meta");
	char path[600];
	sqlite3 *db = NULL;

	snprintf(path, sizeof(path), "%s/meta.db", dir);
	FILE *fp = fopen(path, "wb");
	assert_non_null(fp);
	for (int i = 0; i < 4096; i++)
		fputc(i * 31, fp);
	fclose(fp);
	assert_int_equal(meta_open(dir, &db), RTCMS_EIO);
	assert_null(db);
	tu_rmrf(dir);
	free(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_open_schema_generation),
		cmocka_unit_test(test_u64_and_hash_columns),
		cmocka_unit_test(test_copy),
		cmocka_unit_test(test_not_a_database),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
