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
#include "store/chunkfile.h"
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
	assert_int_equal(catalog_ckpt_insert(cat, &m, 77, 0, c, NULL, 2), 0);

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

	assert_int_equal(catalog_ckpt_delete(cat, "p", 1, 2, NULL), 0);
	assert_int_equal(catalog_chunk_known(cat, c[1].hash, &known), 0);
	assert_false(known);
	assert_int_equal(catalog_ckpt_get(cat, "p", 1, 2, &row), RTCMS_ENOENT);
	catalog_close(cat);
	tu_rmrf(dir);
	free(dir);
}

/* The meta of a one-chunk checkpoint (p, 1, seq) of len bytes. */
static void one_chunk(struct proto_ckpt_meta *m, struct chunk_ref *c, uint64_t seq,
		      uint8_t fill, uint32_t key_id)
{
	memset(m, 0, sizeof(*m));
	strcpy(m->process, "p");
	m->incarnation = 1;
	m->sequence = seq;
	m->size = 8;
	m->chunk_count = 1;
	memset(c, 0, sizeof(*c));
	c->len = 8;
	c->key_id = key_id;
	memset(c->hash, fill, PROTO_HASH_SIZE);
}

static bool keep_all(void *ctx, const uint8_t hash[PROTO_HASH_SIZE])
{
	(void)hash;
	return *(bool *)ctx;
}

/* Inline copies: a new chunk's goes in with its checkpoint, a known
 * chunk's never; they go with the last reference unless kept (then
 * catalog_inline_drop or the sweep removes them); key ids are counted. */
static void test_inline_and_keys(void **state)
{
	(void)state;
	char *dir = tu_tmpdir("catalog");
	struct catalog *cat = NULL;
	struct proto_ckpt_meta m;
	struct chunk_ref c;
	struct chunk_form form = { (const uint8_t *)"01234567", 8 };
	uint8_t buf[CHUNKFILE_MAX];
	size_t len = 0;
	bool found = false, keep = true, more = true;
	uint64_t v = 0;

	assert_int_equal(catalog_open(dir, &cat), 0);
	one_chunk(&m, &c, 1, 1, 0);
	assert_int_equal(catalog_ckpt_insert(cat, &m, 1, 0, &c, &form, 1), 0);
	assert_int_equal(catalog_inline_get(cat, c.hash, buf, sizeof(buf), &len, &found), 0);
	assert_true(found);
	assert_int_equal(len, 8);
	assert_memory_equal(buf, "01234567", 8);
	/* a second reference keeps the first copy */
	struct chunk_form other = { (const uint8_t *)"76543210", 8 };
	one_chunk(&m, &c, 2, 1, 0);
	assert_int_equal(catalog_ckpt_insert(cat, &m, 1, 0, &c, &other, 1), 0);
	assert_int_equal(catalog_inline_get(cat, c.hash, buf, sizeof(buf), &len, &found), 0);
	assert_memory_equal(buf, "01234567", 8);
	/* a chunk referenced without a form (a file) is never inline */
	one_chunk(&m, &c, 3, 2, 5);
	assert_int_equal(catalog_ckpt_insert(cat, &m, 1, 0, &c, NULL, 1), 0);
	assert_false(catalog_inline_has(cat, c.hash));
	one_chunk(&m, &c, 4, 2, 5);
	assert_int_equal(catalog_ckpt_insert(cat, &m, 1, 0, &c, &form, 1), 0);
	assert_false(catalog_inline_has(cat, c.hash));

	struct proto_keys_reply k;
	assert_int_equal(catalog_keys(cat, 0, &k, &more), 0);
	assert_false(more);
	assert_int_equal(k.count, 2);
	assert_int_equal(k.keys[0].key_id, 0);
	assert_int_equal(k.keys[0].chunks, 1);
	assert_int_equal(k.keys[0].bytes, 8);
	assert_int_equal(k.keys[1].key_id, 5);
	assert_int_equal(k.keys[1].chunks, 1);
	assert_int_equal(k.unknown_chunks, 0);

	/* the last reference goes while the chunk is kept (pinned) */
	struct catalog_unref u = { NULL, NULL, keep_all, &keep };
	one_chunk(&m, &c, 1, 1, 0);
	assert_int_equal(catalog_ckpt_delete(cat, "p", 1, 1, &u), 0);
	assert_true(catalog_inline_has(cat, c.hash));
	assert_int_equal(catalog_ckpt_delete(cat, "p", 1, 2, &u), 0);
	assert_true(catalog_inline_has(cat, c.hash));
	assert_int_equal(catalog_inline_drop(cat, c.hash), 0);
	assert_false(catalog_inline_has(cat, c.hash));
	/* an orphan copy (a kill -9 before the drop) goes at the sweep */
	assert_int_equal(catalog_inline_put(cat, c.hash, buf, 8), 0);
	assert_int_equal(catalog_inline_sweep(cat), 1);
	assert_int_equal(catalog_inline_sweep(cat), 0);
	assert_false(catalog_inline_has(cat, c.hash));
	/* not kept: it goes with the reference */
	keep = false;
	one_chunk(&m, &c, 5, 3, 0);
	assert_int_equal(catalog_ckpt_insert(cat, &m, 1, 0, &c, &form, 1), 0);
	assert_true(catalog_inline_has(cat, c.hash));
	assert_int_equal(catalog_ckpt_delete(cat, "p", 1, 5, &u), 0);
	assert_false(catalog_inline_has(cat, c.hash));

	/* a row of before key ids: unknown until recorded; pages of key ids */
	assert_int_equal(catalog_exec(cat, "UPDATE chunks SET key_id = NULL"), 0);
	assert_int_equal(catalog_keys(cat, 0, &k, &more), 0);
	assert_int_equal(k.count, 0);
	assert_int_equal(k.unknown_chunks, 1);
	one_chunk(&m, &c, 3, 2, 5);
	assert_int_equal(catalog_chunk_set_key(cat, c.hash, 5), 0);
	for (uint32_t i = 0; i < PROTO_KEYS_MAX + 1; i++) {
		one_chunk(&m, &c, 100 + i, 0, 1000 + i);
		memcpy(c.hash, &i, sizeof(i));
		assert_int_equal(catalog_ckpt_insert(cat, &m, 1, 0, &c, NULL, 1), 0);
	}
	assert_int_equal(catalog_keys(cat, 0, &k, &more), 0);
	assert_true(more);
	assert_int_equal(k.count, PROTO_KEYS_MAX);
	assert_int_equal(k.keys[0].key_id, 5);
	assert_int_equal(k.unknown_chunks, 0);
	assert_int_equal(catalog_keys(cat, k.keys[PROTO_KEYS_MAX - 1].key_id + 1, &k, &more), 0);
	assert_false(more);
	assert_int_equal(k.count, 2); /* 1 + 257 key ids in all */
	assert_int_equal(k.keys[1].key_id, 1000 + PROTO_KEYS_MAX);
	assert_int_equal(catalog_query_u64(cat, "SELECT count(*) FROM inline_chunks", &v), 0);
	assert_int_equal(v, 0);
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
		cmocka_unit_test(test_inline_and_keys),
		cmocka_unit_test(test_copy),
		cmocka_unit_test(test_not_a_database),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
