/*
 * catalog_int.h - what the catalog's files (catalog.c: the database,
 * processes, claims, lists, fences; catalog_ckpt.c: checkpoints, their
 * chunk lists and chunk references) share: the handle's layout and small
 * SQLite helpers. Nothing outside the catalog includes it.
 */
#ifndef RTCMS_STORE_CATALOG_INT_H
#define RTCMS_STORE_CATALOG_INT_H

#include <sqlite3.h>
#include <string.h>

#include "catalog.h"
#include "rtcms_error.h"

/* The columns of a checkpoint row, in the order row_load() reads them. */
#define CKPT_COLS "process, incarnation, sequence, node, size, hash, created_ms," \
	" spec, chunk_count, base, depth, full_size, state_hash"

/* Statements of the chunk write and read paths, prepared once. */
enum catalog_stmt { CS_LOC_GET, CS_PENDING_GET, CS_PENDING_ADD, CS_PENDING_DROP,
		    CS_ADOPT, CATALOG_CACHED };

struct catalog {
	sqlite3 *db;
	sqlite3_stmt *known;          /* catalog_chunk_known(), kept prepared */
	sqlite3_stmt *cached[CATALOG_CACHED];
};

/* ---- SQLite helpers ----------------------------------------------------- */

static inline int sql_exec(sqlite3 *db, const char *sql)
{
	char *err = NULL;
	int rc = sqlite3_exec(db, sql, NULL, NULL, &err);
	sqlite3_free(err);
	return rc == SQLITE_OK ? 0 : RTCMS_EIO;
}

static inline sqlite3_stmt *sql_prep(struct catalog *cat, const char *sql)
{
	sqlite3_stmt *s = NULL;
	if (sqlite3_prepare_v2(cat->db, sql, -1, &s, NULL) != SQLITE_OK)
		return NULL;
	return s;
}

static inline void sql_bind_text(sqlite3_stmt *s, int i, const char *v)
{
	sqlite3_bind_text(s, i, v, -1, SQLITE_TRANSIENT);
}

static inline void sql_bind_u64(sqlite3_stmt *s, int i, uint64_t v)
{
	sqlite3_bind_int64(s, i, (int64_t)v);
}

static inline void sql_bind_hash(sqlite3_stmt *s, int i, const uint8_t *h)
{
	sqlite3_bind_blob(s, i, h, PROTO_HASH_SIZE, SQLITE_TRANSIENT);
}

static inline uint64_t sql_col_u64(sqlite3_stmt *s, int i)
{
	return (uint64_t)sqlite3_column_int64(s, i);
}

/* A hash column into out (zeros if the column is not a 32-byte blob). */
static inline void sql_col_hash(sqlite3_stmt *s, int i, uint8_t out[PROTO_HASH_SIZE])
{
	const void *p = sqlite3_column_blob(s, i);
	if (p && sqlite3_column_bytes(s, i) == PROTO_HASH_SIZE)
		memcpy(out, p, PROTO_HASH_SIZE);
	else
		memset(out, 0, PROTO_HASH_SIZE);
}

/* Run a statement to completion and finalize it; 0 or RTCMS_EIO. */
static inline int sql_step_done(sqlite3_stmt *s)
{
	int rc = s ? sqlite3_step(s) : SQLITE_ERROR;
	sqlite3_finalize(s);
	return rc == SQLITE_DONE ? 0 : RTCMS_EIO;
}

/* A statement on one checkpoint's key: sql with process, incarnation and
 * sequence (or base) as its parameters 1..3. NULL on error. */
static inline sqlite3_stmt *sql_prep_key(struct catalog *cat, const char *sql, const char *process,
			      uint64_t inc, uint64_t seq)
{
	sqlite3_stmt *s = sql_prep(cat, sql);
	if (s) {
		sql_bind_text(s, 1, process);
		sql_bind_u64(s, 2, inc);
		sql_bind_u64(s, 3, seq);
	}
	return s;
}

/* A statement whose first parameter is a chunk's hash. NULL on error. */
static inline sqlite3_stmt *sql_prep_hash(struct catalog *cat, const char *sql, const uint8_t *h)
{
	sqlite3_stmt *s = sql_prep(cat, sql);
	if (s)
		sql_bind_hash(s, 1, h);
	return s;
}

/* A statement with process as its parameter 1. NULL on error. */
static inline sqlite3_stmt *sql_prep_proc(struct catalog *cat, const char *sql, const char *process)
{
	sqlite3_stmt *s = sql_prep(cat, sql);
	if (s)
		sql_bind_text(s, 1, process);
	return s;
}

/* ---- catalog_pack.c, for catalog_ckpt.c ---------------------------------- */

/* Record chunk hash where this mirror's pending row says a PUT wrote it,
 * unless it has a place already (inside the PUT's transaction). 0 or
 * RTCMS_EIO. */
int catalog_loc_adopt(struct catalog *cat, const uint8_t hash[PROTO_HASH_SIZE]);

#endif
