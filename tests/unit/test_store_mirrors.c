/*
 * test_store_mirrors.c - the mirrors: read repair and scrub, resync of a
 * wiped mirror at open, a failing mirror (fault injection) and all of them
 * failing, a full disk, unreadable, lost and diverged metadata, a scrub
 * taking a mirror back, the upgrade of an old meta.db.
 */
#include "store_fixture.h"

/* The id of chunk idx of content seed (chunks of 4096). */
static void chunk_hash(size_t size, uint64_t seed, int idx, uint8_t h[PROTO_HASH_SIZE])
{
	uint8_t *data = malloc(size);
	tu_fill(data, size, seed);
	size_t off = (size_t)idx * 4096;
	size_t n = size - off < 4096 ? size - off : 4096;
	proto_chunk_hash(data + off, n, h);
	free(data);
}

/* Damage mirror's copy of chunk idx of content seed. */
static void damage_chunk(const char *mirror, size_t size, uint64_t seed, int idx,
			 enum damage how)
{
	uint8_t h[PROTO_HASH_SIZE];
	chunk_hash(size, seed, idx, h);
	damage(mirror, h, how);
}

static void test_read_repair_and_scrub(void **state)
{
	struct fixture *f = *state;
	uint32_t repaired = 0;
	struct proto_scrub_reply r;

	assert_int_equal(put(f->st, "p", 1, 1, 4 * 4096, 5, 4096), 0);
	/* mirror 0 (read first): a bad form, a bad record header, a place
	 * lost */
	damage_chunk(f->m0, 4 * 4096, 5, 0, DMG_FORM);
	damage_chunk(f->m0, 4 * 4096, 5, 1, DMG_HEAD);
	damage_chunk(f->m0, 4 * 4096, 5, 2, DMG_GONE);
	assert_int_equal(get_check(f->st, "p", 1, 1, 4 * 4096, 5, &repaired), 0);
	assert_int_equal(repaired, 3);
	/* repaired (fresh records, the places moved): a scrub finds nothing */
	assert_int_equal(store_scrub(f->st, true, &r), 0);
	assert_int_equal(r.mirrors[0].corrupt + r.mirrors[0].missing, 0);
	assert_int_equal(r.unrepairable, 0);
	assert_int_equal(r.mirrors[0].chunks, 4);

	/* damage mirror 1: scrub reports and repairs; a second scrub is clean */
	damage_chunk(f->m1, 4 * 4096, 5, 3, DMG_FORM);
	damage_chunk(f->m1, 4 * 4096, 5, 0, DMG_GONE);
	assert_int_equal(store_scrub(f->st, false, &r), 0);
	assert_int_equal(r.mirrors[1].corrupt, 1);
	assert_int_equal(r.mirrors[1].missing, 1);
	assert_int_equal(r.mirrors[1].repaired, 0);
	assert_int_equal(store_scrub(f->st, true, &r), 0);
	assert_int_equal(r.mirrors[1].repaired, 2);
	assert_int_equal(store_scrub(f->st, true, &r), 0);
	assert_int_equal(r.mirrors[1].corrupt + r.mirrors[1].missing, 0);

	/* both copies bad: unrepairable, reported, and GET says so */
	damage_chunk(f->m0, 4 * 4096, 5, 1, DMG_FORM);
	damage_chunk(f->m1, 4 * 4096, 5, 1, DMG_FORM);
	assert_int_equal(store_scrub(f->st, true, &r), 0);
	assert_int_equal(r.unrepairable, 1);
	assert_int_equal(get_check(f->st, "p", 1, 1, 4 * 4096, 5, NULL), RTCMS_ECORRUPT);
}

static void test_resync_wiped_mirror(void **state)
{
	struct fixture *f = *state;
	char cmd[1200];

	assert_int_equal(put(f->st, "p", 1, 1, 40000, 1, 4096), 0);
	assert_int_equal(put(f->st, "q", 1, 1, 40000, 2, 4096), 0);
	store_free(f->st);
	f->st = NULL;
	tu_rmrf(f->m1);
	open_store(f);
	assert_int_equal(tu_count_chunk_copies(f->m1), tu_count_chunk_copies(f->m0));
	/* mirror 1 alone now holds everything: wipe mirror 0's chunks */
	store_free(f->st);
	snprintf(cmd, sizeof(cmd), "%s/chunks", f->m0);
	tu_rmrf(cmd);
	open_store(f);
	assert_int_equal(tu_count_chunk_copies(f->m0), 20);
	assert_int_equal(get_check(f->st, "p", 1, 1, 40000, 1, NULL), 0);
	assert_int_equal(get_check(f->st, "q", 1, 1, 40000, 2, NULL), 0);
}

static const char *fail_dir;

static int fail_mirror(const char *site, const char *dir)
{
	(void)site;
	return fail_dir && strcmp(dir, fail_dir) == 0;
}

static void test_failing_mirror_degrades(void **state)
{
	struct fixture *f = *state;
	struct proto_scrub_reply r;

	assert_int_equal(put(f->st, "p", 1, 1, 10000, 1, 4096), 0);
	fail_dir = f->m1;
	store_fault_hook = fail_mirror;
	/* writes to mirror 1 fail: it goes offline, the PUT succeeds on m0 */
	assert_int_equal(put(f->st, "p", 1, 2, 10000, 2, 4096), 0);
	assert_int_equal(store_status(f->st, &r), 0);
	assert_int_equal(r.mirrors[0].online, 1);
	assert_int_equal(r.mirrors[1].online, 0);
	assert_int_equal(get_check(f->st, "p", 1, 2, 10000, 2, NULL), 0);
	/* after a restart without the fault, mirror 1 is brought up to date */
	store_fault_hook = NULL;
	store_free(f->st);
	open_store(f);
	assert_int_equal(store_status(f->st, &r), 0);
	assert_int_equal(r.mirrors[1].online, 1);
	assert_int_equal(tu_count_chunk_copies(f->m1), tu_count_chunk_copies(f->m0));
	assert_int_equal(r.checkpoints, 2);
	/* and holds the newest metadata: remove m0 entirely and read from m1 */
	store_free(f->st);
	tu_rmrf(f->m0);
	open_store(f);
	assert_int_equal(get_check(f->st, "p", 1, 2, 10000, 2, NULL), 0);
	assert_int_equal(get_check(f->st, "p", 1, 1, 10000, 1, NULL), 0);
}

static void test_all_mirrors_failing(void **state)
{
	struct fixture *f = *state;
	fail_dir = NULL;
	store_fault_hook = NULL;
	/* make every write fail */
	store_fault_hook = (store_fault_fn)fail_mirror;
	fail_dir = f->m0;
	assert_int_equal(put(f->st, "p", 1, 1, 100, 1, 100), 0); /* m1 takes it */
	fail_dir = f->m1;
	assert_int_equal(put(f->st, "p", 1, 2, 100, 2, 100), RTCMS_EIO);
	store_fault_hook = NULL;
}

static int log_diverged;

static void count_diverged(void *ctx, int level, const char *msg)
{
	(void)ctx;
	(void)level;
	log_diverged += strstr(msg, "DIVERGED") != NULL;
}

/* Open the fixture's store with only mirror `only` usable: the other
 * path is replaced by a file for the time of the run. */
static void run_alone(struct fixture *f, int only, const char *process,
		      uint64_t seed)
{
	char away[600], *other = only == 0 ? f->m1 : f->m0;
	struct proto_scrub_reply r;

	snprintf(away, sizeof(away), "%s.away", other);
	assert_int_equal(rename(other, away), 0);
	FILE *fp = fopen(other, "w");
	assert_non_null(fp);
	fclose(fp);
	open_store(f);
	assert_int_equal(store_status(f->st, &r), 0);
	assert_int_equal(r.mirrors[only].online, 1);
	assert_int_equal(r.mirrors[1 - only].online, 0);
	assert_int_equal(put(f->st, process, 1, 1, 5000, seed, 4096), 0);
	store_free(f->st);
	f->st = NULL;
	assert_int_equal(unlink(other), 0);
	assert_int_equal(rename(away, other), 0);
}

/* Each mirror ran alone once (a degraded start while the other was away)
 * and took the same number of updates: equal generations, different
 * histories. The next open sees it, keeps one history on both mirrors
 * and says so, instead of serving two different stores. */
static void test_diverged_metadata_detected(void **state)
{
	struct fixture *f = *state;
	struct store_options o = {
		.mirrors = f->mirrors, .mirror_count = 2, .retain = 2,
		.now_ms = fake_now, .now_ctx = f, .log = count_diverged,
	};

	assert_int_equal(put(f->st, "base", 1, 1, 5000, 1, 4096), 0);
	store_free(f->st);
	f->st = NULL;
	run_alone(f, 0, "only0", 2);
	run_alone(f, 1, "only1", 3);
	log_diverged = 0;
	assert_int_equal(store_open(&o, &f->st), 0);
	assert_int_equal(log_diverged, 1);
	assert_int_equal(get_check(f->st, "only0", 1, 1, 5000, 2, NULL), 0);
	assert_int_equal(get_check(f->st, "only1", 1, 1, 5000, 3, NULL), RTCMS_ENOENT);
	/* both mirrors now hold the same history */
	store_free(f->st);
	tu_rmrf(f->m0);
	open_store(f);
	assert_int_equal(get_check(f->st, "base", 1, 1, 5000, 1, NULL), 0);
	assert_int_equal(get_check(f->st, "only0", 1, 1, 5000, 2, NULL), 0);
	assert_int_equal(get_check(f->st, "only1", 1, 1, 5000, 3, NULL), RTCMS_ENOENT);
}

/* Fail chunk writes on every mirror with "disk full". */
static int disk_full(const char *site, const char *dir)
{
	(void)dir;
	return strcmp(site, "chunk_write") == 0 ? RTCMS_ENOSPC : 0;
}

/* A full disk on every mirror refuses the PUT with ENOSPC but takes no
 * mirror offline: nothing diverged, and reads must go on. */
static void test_disk_full_everywhere(void **state)
{
	struct fixture *f = *state;
	struct proto_scrub_reply r;

	assert_int_equal(put(f->st, "p", 1, 1, 10000, 1, 4096), 0);
	store_fault_hook = disk_full;
	assert_int_equal(put(f->st, "p", 1, 2, 10000, 2, 4096), RTCMS_ENOSPC);
	assert_int_equal(store_status(f->st, &r), 0);
	assert_int_equal(r.mirrors[0].online, 1);
	assert_int_equal(r.mirrors[1].online, 1);
	assert_int_equal(r.checkpoints, 1);
	assert_int_equal(get_check(f->st, "p", 1, 1, 10000, 1, NULL), 0);
	store_fault_hook = NULL;
	assert_int_equal(put(f->st, "p", 1, 2, 10000, 2, 4096), 0);
	assert_int_equal(tu_count_chunk_copies(f->m1), tu_count_chunk_copies(f->m0));
}

static void write_garbage(const char *dir, const char *name)
{
	char path[700];
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	FILE *fp = fopen(path, "wb");
	assert_non_null(fp);
	for (int i = 0; i < 8192; i++)
		fputc((i * 7919) & 0xff, fp);
	fclose(fp);
}

/* An unreadable meta.db on one mirror is replaced by the other's at open;
 * the mirror is online and holds the metadata afterwards. */
static void test_unreadable_meta_replaced(void **state)
{
	struct fixture *f = *state;
	struct proto_scrub_reply r;

	assert_int_equal(put(f->st, "p", 1, 1, 10000, 1, 4096), 0);
	store_free(f->st);
	f->st = NULL;
	remove_meta(f->m1);
	write_garbage(f->m1, "meta.db");
	open_store(f);
	assert_int_equal(store_status(f->st, &r), 0);
	assert_int_equal(r.mirrors[0].online, 1);
	assert_int_equal(r.mirrors[1].online, 1);
	/* damaged pages behind a sound header: also replaced */
	assert_int_equal(put(f->st, "q", 1, 1, 10000, 2, 4096), 0);
	store_free(f->st);
	f->st = NULL;
	char path[700];
	snprintf(path, sizeof(path), "%s/meta.db", f->m1);
	struct stat sb;
	assert_int_equal(stat(path, &sb), 0);
	assert_true(sb.st_size > 8192);
	FILE *fp = fopen(path, "r+b");
	assert_non_null(fp);
	fseek(fp, 4096, SEEK_SET);
	for (long i = 4096; i < sb.st_size; i++)
		fputc((int)(i * 131) & 0xff, fp);
	fclose(fp);
	open_store(f);
	assert_int_equal(store_status(f->st, &r), 0);
	assert_int_equal(r.mirrors[1].online, 1);
	/* mirror 1 alone serves it now */
	store_free(f->st);
	tu_rmrf(f->m0);
	open_store(f);
	assert_int_equal(get_check(f->st, "p", 1, 1, 10000, 1, NULL), 0);
	assert_int_equal(get_check(f->st, "q", 1, 1, 10000, 2, NULL), 0);
}

/* Metadata lost on every mirror (unreadable or deleted) while chunk files
 * exist: the store refuses to start and removes nothing, so an operator
 * can restore meta.db. */
static void test_lost_metadata_refuses_start(void **state)
{
	struct fixture *f = *state;
	struct store_options o = {
		.mirrors = f->mirrors, .mirror_count = 2, .retain = 2,
		.now_ms = fake_now, .now_ctx = f,
	};
	struct store *st = NULL;

	uint64_t b0, b1, b;

	assert_int_equal(put(f->st, "p", 1, 1, 10000, 1, 4096), 0);
	store_free(f->st);
	f->st = NULL;
	assert_int_equal(tu_count_packs(f->m0, &b0), 1);
	assert_int_equal(tu_count_packs(f->m1, &b1), 1);
	remove_meta(f->m0);
	write_garbage(f->m0, "meta.db");
	remove_meta(f->m1);
	write_garbage(f->m1, "meta.db");
	assert_int_equal(store_open(&o, &st), RTCMS_ECORRUPT);
	assert_null(st);
	assert_int_equal(tu_count_packs(f->m0, &b), 1);
	assert_int_equal(b, b0);
	assert_int_equal(tu_count_packs(f->m1, &b), 1);
	assert_int_equal(b, b1);
	remove_meta(f->m0);
	remove_meta(f->m1);
	assert_int_equal(store_open(&o, &st), RTCMS_ECORRUPT);
	assert_null(st);
	assert_int_equal(tu_count_packs(f->m0, &b), 1);
	assert_int_equal(b, b0);
	assert_int_equal(tu_count_packs(f->m1, &b), 1);
	assert_int_equal(b, b1);
	/* a wiped mirror next to the lost one changes nothing */
	tu_rmrf(f->m1);
	assert_int_equal(store_open(&o, &st), RTCMS_ECORRUPT);
	assert_int_equal(tu_count_packs(f->m0, &b), 1);
	assert_int_equal(b, b0);
	/* nor do chunk files (the layout before packs) without metadata */
	tu_rmrf(f->m0);
	assert_int_equal(chunkfile_prepare(f->m0), 0);
	uint8_t h[PROTO_HASH_SIZE], data[100] = { 1 };
	proto_chunk_hash(data, sizeof(data), h);
	assert_int_equal(chunkfile_write(f->m0, h, data, sizeof(data), 1), 0);
	assert_int_equal(store_open(&o, &st), RTCMS_ECORRUPT);
	assert_int_equal(tu_count_chunk_files(f->m0), 1);
}

/* A mirror taken offline by failed writes is brought back by a repairing
 * scrub: its metadata is copied, its chunk files are filled in, and later
 * writes go to it again. */
static void test_scrub_brings_mirror_back(void **state)
{
	struct fixture *f = *state;
	struct proto_scrub_reply r;

	assert_int_equal(put(f->st, "p", 1, 1, 10000, 1, 4096), 0);
	fail_dir = f->m1;
	store_fault_hook = fail_mirror;
	assert_int_equal(put(f->st, "p", 1, 2, 10000, 2, 4096), 0);
	assert_int_equal(store_status(f->st, &r), 0);
	assert_int_equal(r.mirrors[1].online, 0);
	/* still failing: the scrub cannot bring it back */
	assert_int_equal(store_scrub(f->st, true, &r), 0);
	assert_int_equal(r.mirrors[1].online, 0);
	store_fault_hook = NULL;
	/* a scrub without repair only reports */
	assert_int_equal(store_scrub(f->st, false, &r), 0);
	assert_int_equal(r.mirrors[1].online, 0);
	assert_int_equal(r.mirrors[1].missing, 3);
	assert_int_equal(store_scrub(f->st, true, &r), 0);
	assert_int_equal(r.mirrors[1].online, 1);
	assert_int_equal(r.mirrors[1].repaired, 3);
	assert_int_equal(r.unrepairable, 0);
	assert_int_equal(tu_count_chunk_copies(f->m1), tu_count_chunk_copies(f->m0));
	assert_int_equal(put(f->st, "p", 1, 3, 10000, 3, 4096), 0);
	assert_int_equal(store_status(f->st, &r), 0);
	assert_int_equal(r.mirrors[1].online, 1);
	/* mirror 1 alone holds everything, metadata included */
	store_free(f->st);
	tu_rmrf(f->m0);
	open_store(f);
	assert_int_equal(get_check(f->st, "p", 1, 2, 10000, 2, NULL), 0);
	assert_int_equal(get_check(f->st, "p", 1, 3, 10000, 3, NULL), 0);
}

/* A store of the first layout, a meta.db of the first schema (no base,
 * depth, full_size, state_hash, no chunk key ids, no inline chunks, no
 * packs) and a chunk file per chunk, is upgraded when the store opens it,
 * on every mirror, and works: the chunks' key ids are read from their
 * files, the chunk files serve reads, new chunks go to packs. */
static void test_old_meta_db_upgraded(void **state)
{
	struct fixture *f = *state;
	static const char old_schema[] =
		"CREATE TABLE meta(key TEXT PRIMARY KEY, value INTEGER NOT NULL);"
		"CREATE TABLE processes("
		" process TEXT PRIMARY KEY, incarnation INTEGER NOT NULL, node INTEGER NOT NULL,"
		" claim_id INTEGER NOT NULL DEFAULT 0, claimant TEXT NOT NULL DEFAULT '',"
		" claim_expires INTEGER NOT NULL DEFAULT 0, claim_inc INTEGER NOT NULL DEFAULT 0,"
		" claim_seq INTEGER NOT NULL DEFAULT 0, last_claim INTEGER NOT NULL DEFAULT 0);"
		"CREATE TABLE checkpoints("
		" process TEXT NOT NULL, incarnation INTEGER NOT NULL, sequence INTEGER NOT NULL,"
		" node INTEGER NOT NULL, size INTEGER NOT NULL, hash BLOB NOT NULL,"
		" created_ms INTEGER NOT NULL, spec BLOB, chunk_count INTEGER NOT NULL,"
		" PRIMARY KEY(process, incarnation, sequence));"
		"CREATE INDEX checkpoints_node ON checkpoints(node);"
		"CREATE TABLE ckpt_chunks("
		" process TEXT NOT NULL, incarnation INTEGER NOT NULL, sequence INTEGER NOT NULL,"
		" idx INTEGER NOT NULL, offset INTEGER NOT NULL, len INTEGER NOT NULL,"
		" hash BLOB NOT NULL, PRIMARY KEY(process, incarnation, sequence, idx));"
		"CREATE TABLE chunks(hash BLOB PRIMARY KEY, size INTEGER NOT NULL,"
		" refs INTEGER NOT NULL);";
	struct proto_put_ack ack;
	struct prog p;
	char path[700], sql[900];

	prog_init(&p, 64, 17);
	assert_int_equal(put_full(f->st, "p", &p, 1, &ack), 0);
	store_free(f->st);
	f->st = NULL;
	int nfiles = tu_count_chunk_copies(f->m0);
	assert_true(nfiles > 1);
	/* rewrite each mirror in the old layout: chunk files, and its
	 * meta.db in the old schema, same rows */
	for (int i = 0; i < 2; i++) {
		const char *m = f->mirrors[i];
		sqlite3 *db;
		to_chunk_files(m);
		assert_int_equal(tu_count_chunk_files(m), nfiles);
		snprintf(path, sizeof(path), "%s/old.db", m);
		assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
		assert_int_equal(sqlite3_exec(db, old_schema, NULL, NULL, NULL), SQLITE_OK);
		snprintf(sql, sizeof(sql), "ATTACH '%s/meta.db' AS n;"
			 "INSERT INTO meta SELECT * FROM n.meta;"
			 "INSERT INTO processes SELECT process, incarnation, node, claim_id,"
			 " claimant, claim_expires, claim_inc, claim_seq, last_claim"
			 " FROM n.processes;"
			 "INSERT INTO checkpoints SELECT process, incarnation, sequence, node,"
			 " size, hash, created_ms, spec, chunk_count FROM n.checkpoints;"
			 "INSERT INTO ckpt_chunks SELECT * FROM n.ckpt_chunks;"
			 "INSERT INTO chunks SELECT hash, size, refs FROM n.chunks;"
			 " DETACH n;", m);
		assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
		sqlite3_close(db);
		remove_meta(m);
		snprintf(sql, sizeof(sql), "%s/meta.db", m);
		assert_int_equal(rename(path, sql), 0);
	}
	open_store(f);
	struct proto_scrub_reply r;
	assert_int_equal(store_status(f->st, &r), 0);
	assert_int_equal(r.mirrors[0].online, 1);
	assert_int_equal(r.mirrors[1].online, 1);
	assert_int_equal(r.checkpoints, 1);
	struct proto_keys_reply keys;
	bool more = true;
	assert_int_equal(store_keys(f->st, 0, &keys, &more), 0);
	assert_false(more);
	assert_int_equal(keys.unknown_chunks, 0);
	assert_int_equal(keys.count, 1);
	assert_int_equal(keys.keys[0].key_id, 0); /* plain chunks */
	assert_int_equal(keys.keys[0].chunks, r.chunks);
	assert_int_equal(keys.keys[0].bytes, r.bytes);
	uint8_t *want;
	size_t wlen = prog_full(&p, 1, &want);
	get_expect_state(f->st, "p", 1, want, wlen, 0); /* an old row: none */
	free(want);
	prog_change(&p, 2, 3);
	assert_int_equal(put_delta(f->st, "p", &p, 2, 1, &ack), 0);
	assert_int_equal(ack.depth, 1);
	wlen = prog_full(&p, 2, &want);
	get_expect(f->st, "p", 2, want, wlen);
	free(want);
	/* the base's chunks are still chunk files, the delta's new ones in
	 * packs; a scrub finds every copy good */
	assert_int_equal(tu_count_chunk_files(f->m0), nfiles);
	assert_int_equal(tu_count_packs(f->m0, NULL), 1);
	assert_true(tu_count_chunk_copies(f->m0) > nfiles);
	assert_int_equal(store_scrub(f->st, false, &r), 0);
	assert_int_equal(r.mirrors[0].corrupt + r.mirrors[0].missing, 0);
	assert_int_equal(r.mirrors[1].corrupt + r.mirrors[1].missing, 0);
	store_free(f->st);
	f->st = NULL;
	/* both mirrors have the new columns */
	for (int i = 0; i < 2; i++) {
		sqlite3 *db;
		sqlite3_stmt *s;
		int cols = 0;
		snprintf(path, sizeof(path), "%s/meta.db", f->mirrors[i]);
		assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
		assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA table_info(checkpoints)", -1,
						    &s, NULL), SQLITE_OK);
		while (sqlite3_step(s) == SQLITE_ROW)
			cols++;
		sqlite3_finalize(s);
		assert_int_equal(cols, 13);
		cols = 0;
		assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA table_info(processes)", -1,
						    &s, NULL), SQLITE_OK);
		while (sqlite3_step(s) == SQLITE_ROW)
			cols++;
		sqlite3_finalize(s);
		sqlite3_close(db);
		assert_int_equal(cols, 11);
	}
	open_store(f);
	/* and the other one alone serves the chain */
	store_free(f->st);
	tu_rmrf(f->m0);
	open_store(f);
	wlen = prog_full(&p, 2, &want);
	get_expect(f->st, "p", 2, want, wlen);
	free(want);
	free(p.live);
}

/* ---- compressed chunk files ---------------------------------------- */

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_read_repair_and_scrub, setup, teardown),
		cmocka_unit_test_setup_teardown(test_resync_wiped_mirror, setup, teardown),
		cmocka_unit_test_setup_teardown(test_failing_mirror_degrades, setup, teardown),
		cmocka_unit_test_setup_teardown(test_all_mirrors_failing, setup, teardown),
		cmocka_unit_test_setup_teardown(test_disk_full_everywhere, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unreadable_meta_replaced, setup, teardown),
		cmocka_unit_test_setup_teardown(test_lost_metadata_refuses_start, setup, teardown),
		cmocka_unit_test_setup_teardown(test_scrub_brings_mirror_back, setup, teardown),
		cmocka_unit_test_setup_teardown(test_diverged_metadata_detected, setup, teardown),
		cmocka_unit_test_setup_teardown(test_old_meta_db_upgraded, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
