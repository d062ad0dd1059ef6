/* meta.c - a mirror's metadata database and SQLite helpers. */
#include "meta.h"

#include <stdio.h>
#include <string.h>

#include "rtcms_error.h"


static const char schema[] =
	"CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value INTEGER NOT NULL);"
	"INSERT OR IGNORE INTO meta VALUES('generation', 0);"
	"CREATE TABLE IF NOT EXISTS processes("
	" process TEXT PRIMARY KEY, incarnation INTEGER NOT NULL, node INTEGER NOT NULL,"
	" claim_id INTEGER NOT NULL DEFAULT 0, claimant TEXT NOT NULL DEFAULT '',"
	" claim_expires INTEGER NOT NULL DEFAULT 0, claim_inc INTEGER NOT NULL DEFAULT 0,"
	" claim_seq INTEGER NOT NULL DEFAULT 0, last_claim INTEGER NOT NULL DEFAULT 0,"
	" gave_up INTEGER NOT NULL DEFAULT 0, claim_gave_up INTEGER NOT NULL DEFAULT 0);"
	"CREATE TABLE IF NOT EXISTS checkpoints("
	" process TEXT NOT NULL, incarnation INTEGER NOT NULL, sequence INTEGER NOT NULL,"
	" node INTEGER NOT NULL, size INTEGER NOT NULL, hash BLOB NOT NULL,"
	" created_ms INTEGER NOT NULL, spec BLOB, chunk_count INTEGER NOT NULL,"
	" base INTEGER NOT NULL DEFAULT 0, depth INTEGER NOT NULL DEFAULT 0,"
	" full_size INTEGER NOT NULL DEFAULT 0, state_hash BLOB,"
	" PRIMARY KEY(process, incarnation, sequence));"
	"CREATE INDEX IF NOT EXISTS checkpoints_node ON checkpoints(node);"
	"CREATE TABLE IF NOT EXISTS ckpt_chunks("
	" process TEXT NOT NULL, incarnation INTEGER NOT NULL, sequence INTEGER NOT NULL,"
	" idx INTEGER NOT NULL, offset INTEGER NOT NULL, len INTEGER NOT NULL,"
	" hash BLOB NOT NULL, PRIMARY KEY(process, incarnation, sequence, idx));"
	"CREATE TABLE IF NOT EXISTS chunks(hash BLOB PRIMARY KEY, size INTEGER NOT NULL,"
	" refs INTEGER NOT NULL);"
	/* nodes fenced for every manager (fence.h); fence_gen in meta */
	"CREATE TABLE IF NOT EXISTS fences(node INTEGER PRIMARY KEY, gen INTEGER NOT NULL,"
	" hold_ms INTEGER NOT NULL);"
	"INSERT OR IGNORE INTO meta VALUES('fence_gen', 0);"
	"CREATE TABLE IF NOT EXISTS managers(name TEXT PRIMARY KEY, lease_ms INTEGER NOT NULL);";

/*
 * Columns added after the first schema (delta checkpoints; the moves after
 * a node gave up on a program), in the order a new database has them:
 * ALTER TABLE appends, so an upgraded database ends up with the same
 * columns as a new one.
 */
static const struct {
	const char *table;
	const char *name;
	const char *def;
} added_columns[] = {
	{ "checkpoints", "base", "base INTEGER NOT NULL DEFAULT 0" },
	{ "checkpoints", "depth", "depth INTEGER NOT NULL DEFAULT 0" },
	{ "checkpoints", "full_size", "full_size INTEGER NOT NULL DEFAULT 0" },
	{ "checkpoints", "state_hash", "state_hash BLOB" },
	{ "processes", "gave_up", "gave_up INTEGER NOT NULL DEFAULT 0" },
	{ "processes", "claim_gave_up", "claim_gave_up INTEGER NOT NULL DEFAULT 0" },
};

int meta_exec(sqlite3 *db, const char *sql)
{
	char *err = NULL;
	int rc = sqlite3_exec(db, sql, NULL, NULL, &err);
	sqlite3_free(err);
	return rc == SQLITE_OK ? 0 : RTCMS_EIO;
}

sqlite3_stmt *meta_prep(sqlite3 *db, const char *sql)
{
	sqlite3_stmt *s = NULL;
	if (sqlite3_prepare_v2(db, sql, -1, &s, NULL) != SQLITE_OK)
		return NULL;
	return s;
}

int64_t meta_generation(sqlite3 *db)
{
	sqlite3_stmt *s = meta_prep(db, "SELECT value FROM meta WHERE key='generation'");
	int64_t g = -1;
	if (s && sqlite3_step(s) == SQLITE_ROW)
		g = sqlite3_column_int64(s, 0);
	sqlite3_finalize(s);
	return g;
}

/* 1 if table checkpoints has column name, 0 if not, RTCMS_EIO. */
static int has_column(sqlite3 *db, const char *table, const char *name)
{
	char sql[64];
	snprintf(sql, sizeof(sql), "PRAGMA table_info(%s)", table);
	sqlite3_stmt *s = meta_prep(db, sql);
	int rc, found = 0;

	if (!s)
		return RTCMS_EIO;
	while ((rc = sqlite3_step(s)) == SQLITE_ROW)
		if (strcmp((const char *)sqlite3_column_text(s, 1), name) == 0)
			found = 1;
	sqlite3_finalize(s);
	return rc == SQLITE_DONE ? found : RTCMS_EIO;
}

/*
 * Bring a database of an older schema up to date: add the missing columns
 * (old rows get their defaults: full checkpoints of depth 0) and the index
 * on them, in one transaction. The generation is left alone: the upgrade
 * is the same on every mirror and changes no data.
 */
static int meta_upgrade(sqlite3 *db)
{
	char sql[160];
	int rc = meta_exec(db, "BEGIN IMMEDIATE");

	for (size_t i = 0; rc == 0 && i < sizeof(added_columns) / sizeof(added_columns[0]); i++) {
		rc = has_column(db, added_columns[i].table, added_columns[i].name);
		if (rc == 1) {
			rc = 0;
		} else if (rc == 0) {
			snprintf(sql, sizeof(sql), "ALTER TABLE %s ADD COLUMN %s",
				 added_columns[i].table, added_columns[i].def);
			rc = meta_exec(db, sql);
		}
	}
	if (rc == 0)
		rc = meta_exec(db, "CREATE INDEX IF NOT EXISTS checkpoints_base"
			       " ON checkpoints(process, incarnation, base)");
	if (rc == 0)
		rc = meta_exec(db, "COMMIT");
	if (rc != 0)
		meta_exec(db, "ROLLBACK");
	return rc;
}

int meta_open(const char *dir, sqlite3 **out)
{
	char path[4200];
	sqlite3 *db = NULL;
	snprintf(path, sizeof(path), "%s/meta.db", dir);
	if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE |
			    SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK)
		goto fail;
	sqlite3_busy_timeout(db, 5000);
	if (meta_exec(db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;"
			"PRAGMA foreign_keys=OFF;") != 0 ||
	    meta_exec(db, schema) != 0 || meta_upgrade(db) != 0)
		goto fail;
	*out = db;
	return 0;
fail:
	sqlite3_close(db);
	return RTCMS_EIO;
}

void meta_bind_text(sqlite3_stmt *s, int i, const char *v)
{
	sqlite3_bind_text(s, i, v, -1, SQLITE_TRANSIENT);
}

void meta_bind_u64(sqlite3_stmt *s, int i, uint64_t v)
{
	sqlite3_bind_int64(s, i, (int64_t)v);
}

uint64_t meta_col_u64(sqlite3_stmt *s, int i)
{
	return (uint64_t)sqlite3_column_int64(s, i);
}

void meta_col_hash(sqlite3_stmt *s, int i, uint8_t out[PROTO_HASH_SIZE])
{
	const void *p = sqlite3_column_blob(s, i);
	if (p && sqlite3_column_bytes(s, i) == PROTO_HASH_SIZE)
		memcpy(out, p, PROTO_HASH_SIZE);
	else
		memset(out, 0, PROTO_HASH_SIZE);
}

/* Run a statement to completion; 0 or RTCMS_EIO. */
int meta_step_done(sqlite3_stmt *s)
{
	int rc = s ? sqlite3_step(s) : SQLITE_ERROR;
	sqlite3_finalize(s);
	return rc == SQLITE_DONE ? 0 : RTCMS_EIO;
}

/* Replace dst's database by a copy of src's. */
int meta_copy(sqlite3 *dst, sqlite3 *src)
{
	sqlite3_backup *b = sqlite3_backup_init(dst, "main", src, "main");
	if (!b)
		return RTCMS_EIO;
	int rc = sqlite3_backup_step(b, -1);
	sqlite3_backup_finish(b);
	return rc == SQLITE_DONE ? 0 : RTCMS_EIO;
}

