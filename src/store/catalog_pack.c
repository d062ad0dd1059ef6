/* catalog_pack.c - the catalog's places of chunks in the mirror's packs,
 * committed (chunk_locs, with the per-pack counts its triggers keep in
 * packs) and pending (a temporary table: records of open PUTs), see
 * catalog.h. */
#include "catalog_int.h"

#include <stdlib.h>

/* Cached statement k, prepared at its first use; reset (bindings
 * cleared) before it is handed out again. NULL on error. */
static sqlite3_stmt *cached(struct catalog *cat, enum catalog_stmt k, const char *sql)
{
	sqlite3_stmt *s = cat->cached[k];
	if (!s)
		return cat->cached[k] = sql_prep(cat, sql);
	sqlite3_reset(s);
	sqlite3_clear_bindings(s);
	return s;
}

/* Step a cached statement to its end (it stays prepared). */
static int cached_done(sqlite3_stmt *s)
{
	if (!s)
		return RTCMS_EIO;
	int rc = sqlite3_step(s);
	sqlite3_reset(s);
	return rc == SQLITE_DONE ? 0 : RTCMS_EIO;
}

static void bind_loc(sqlite3_stmt *s, int i, const struct chunk_loc *loc)
{
	sql_bind_u64(s, i, loc->pack);
	sql_bind_u64(s, i + 1, loc->off);
	sqlite3_bind_int64(s, i + 2, loc->len);
}

static void col_loc(sqlite3_stmt *s, int i, struct chunk_loc *loc)
{
	loc->pack = sql_col_u64(s, i);
	loc->off = sql_col_u64(s, i + 1);
	loc->len = (uint32_t)sqlite3_column_int64(s, i + 2);
}

/* A place from a SELECT pack, off, len ... WHERE hash=? statement. */
static int loc_select(sqlite3_stmt *s, const uint8_t *hash, struct chunk_loc *loc, bool *found)
{
	*found = false;
	if (!s)
		return RTCMS_EIO;
	sql_bind_hash(s, 1, hash);
	int rc = sqlite3_step(s);
	if (rc == SQLITE_ROW) {
		col_loc(s, 0, loc);
		*found = true;
	}
	sqlite3_reset(s);
	return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : RTCMS_EIO;
}

int catalog_loc_get(struct catalog *cat, const uint8_t hash[PROTO_HASH_SIZE],
		    struct chunk_loc *loc, bool *found)
{
	return loc_select(cached(cat, CS_LOC_GET, "SELECT pack, off, len FROM chunk_locs"
				 " WHERE hash=?"), hash, loc, found);
}

int catalog_loc_find(struct catalog *cat, const uint8_t hash[PROTO_HASH_SIZE],
		     struct chunk_loc *loc, bool *found, bool *pending)
{
	int rc = catalog_loc_get(cat, hash, loc, found);

	*pending = false;
	if (rc || *found)
		return rc;
	rc = loc_select(cached(cat, CS_PENDING_GET, "SELECT pack, off, len FROM temp.pending"
			       " WHERE hash=?"), hash, loc, found);
	*pending = *found;
	return rc;
}

int catalog_pending_add(struct catalog *cat, const uint8_t hash[PROTO_HASH_SIZE],
			const struct chunk_loc *loc)
{
	sqlite3_stmt *s = cached(cat, CS_PENDING_ADD, "INSERT OR IGNORE INTO temp.pending"
				 " VALUES(?,?,?,?)");
	if (!s)
		return RTCMS_EIO;
	sql_bind_hash(s, 1, hash);
	bind_loc(s, 2, loc);
	return cached_done(s);
}

int catalog_pending_drop(struct catalog *cat, const uint8_t hash[PROTO_HASH_SIZE])
{
	sqlite3_stmt *s = cached(cat, CS_PENDING_DROP, "DELETE FROM temp.pending WHERE hash=?");
	if (!s)
		return RTCMS_EIO;
	sql_bind_hash(s, 1, hash);
	return cached_done(s);
}

int catalog_pending_in(struct catalog *cat, uint64_t pack, bool *any)
{
	sqlite3_stmt *s = sql_prep(cat, "SELECT 1 FROM temp.pending WHERE pack=? LIMIT 1");
	if (!s)
		return RTCMS_EIO;
	sql_bind_u64(s, 1, pack);
	int rc = sqlite3_step(s);
	*any = rc == SQLITE_ROW;
	sqlite3_finalize(s);
	return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : RTCMS_EIO;
}

int catalog_loc_adopt(struct catalog *cat, const uint8_t hash[PROTO_HASH_SIZE])
{
	sqlite3_stmt *s = cached(cat, CS_ADOPT, "INSERT OR IGNORE INTO chunk_locs"
				 " SELECT hash, pack, off, len FROM temp.pending WHERE hash=?");
	if (!s)
		return RTCMS_EIO;
	sql_bind_hash(s, 1, hash);
	return cached_done(s);
}

int catalog_loc_set(struct catalog *cat, const uint8_t hash[PROTO_HASH_SIZE],
		    const struct chunk_loc *loc)
{
	/* an upsert, not INSERT OR REPLACE: the replaced row's delete would
	 * not run its trigger (recursive triggers are off) */
	sqlite3_stmt *s = sql_prep_hash(cat, "INSERT INTO chunk_locs VALUES(?,?,?,?)"
					" ON CONFLICT(hash) DO UPDATE SET pack=excluded.pack,"
					" off=excluded.off, len=excluded.len", hash);
	if (s)
		bind_loc(s, 2, loc);
	return sql_step_done(s);
}

int catalog_loc_move(struct catalog *cat, const uint8_t hash[PROTO_HASH_SIZE],
		     const struct chunk_loc *from, const struct chunk_loc *to, bool *moved)
{
	sqlite3_stmt *s = sql_prep_hash(cat, "UPDATE chunk_locs SET pack=?2, off=?3, len=?4"
					" WHERE hash=?1 AND pack=?5 AND off=?6", hash);
	*moved = false;
	if (!s)
		return RTCMS_EIO;
	bind_loc(s, 2, to);
	sql_bind_u64(s, 5, from->pack);
	sql_bind_u64(s, 6, from->off);
	int rc = sql_step_done(s);
	*moved = rc == 0 && sqlite3_changes(cat->db) == 1;
	return rc;
}

int catalog_loc_drop(struct catalog *cat, const uint8_t hash[PROTO_HASH_SIZE])
{
	struct chunk_loc loc;
	bool found, known;

	/* look first: a write transaction only where there is one to drop */
	if (catalog_loc_get(cat, hash, &loc, &found) != 0 ||
	    (found && catalog_chunk_known(cat, hash, &known) != 0))
		return RTCMS_EIO;
	if (!found || known)
		return 0;
	return sql_step_done(sql_prep_hash(cat, "DELETE FROM chunk_locs WHERE hash=?", hash));
}

int catalog_locs_sweep(struct catalog *cat)
{
	uint64_t n = 0, empty = 0;
	int rc = catalog_query_u64(cat, "SELECT count(*) FROM chunk_locs WHERE hash NOT IN"
				   " (SELECT hash FROM chunks)", &n);
	if (rc == 0 && n)
		rc = sql_exec(cat->db, "DELETE FROM chunk_locs WHERE hash NOT IN"
			      " (SELECT hash FROM chunks)");
	/* and the rows of packs nothing is placed in (gone, or about to go) */
	if (rc == 0)
		rc = catalog_query_u64(cat, "SELECT count(*) FROM packs WHERE records <= 0", &empty);
	if (rc == 0 && empty)
		rc = sql_exec(cat->db, "DELETE FROM packs WHERE records <= 0");
	return rc ? rc : (int)n;
}

int catalog_locs_clear(struct catalog *cat)
{
	/* the pack rows first: the places' delete trigger then finds none */
	return sql_exec(cat->db, "DELETE FROM packs; DELETE FROM chunk_locs;");
}

int catalog_pack_usage(struct catalog *cat, uint64_t pack, uint64_t *records,
		       uint64_t *bytes)
{
	sqlite3_stmt *s = sql_prep(cat, "SELECT records, bytes FROM packs WHERE id=?");
	*records = *bytes = 0;
	if (!s)
		return RTCMS_EIO;
	sql_bind_u64(s, 1, pack);
	int rc = sqlite3_step(s);
	if (rc == SQLITE_ROW) {
		*records = sql_col_u64(s, 0);
		*bytes = sql_col_u64(s, 1);
	}
	sqlite3_finalize(s);
	return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : RTCMS_EIO;
}

int catalog_pack_locs(struct catalog *cat, uint64_t pack, struct chunk_rec **out, size_t *n)
{
	sqlite3_stmt *s = sql_prep(cat, "SELECT l.hash, l.pack, l.off, l.len,"
				   " coalesce(c.size, 0) FROM chunk_locs l LEFT JOIN chunks c"
				   " ON c.hash = l.hash WHERE l.pack=? ORDER BY l.off");
	struct chunk_rec *r = NULL;
	size_t cap = 0;
	int rc = 0, step;

	*out = NULL;
	*n = 0;
	if (!s)
		return RTCMS_EIO;
	sql_bind_u64(s, 1, pack);
	while ((step = sqlite3_step(s)) == SQLITE_ROW) {
		if (*n == cap) {
			size_t ncap = cap ? cap * 2 : 64;
			void *p = realloc(r, ncap * sizeof(*r));
			if (!p) {
				rc = RTCMS_ENOMEM;
				break;
			}
			r = p;
			cap = ncap;
		}
		sql_col_hash(s, 0, r[*n].hash);
		col_loc(s, 1, &r[*n].loc);
		r[*n].size = (uint32_t)sqlite3_column_int64(s, 4);
		(*n)++;
	}
	sqlite3_finalize(s);
	if (rc == 0 && step != SQLITE_DONE)
		rc = RTCMS_EIO;
	if (rc) {
		free(r);
		*n = 0;
		return rc;
	}
	*out = r;
	return 0;
}

int catalog_pack_forget(struct catalog *cat, uint64_t pack)
{
	sqlite3_stmt *s = sql_prep(cat, "DELETE FROM packs WHERE id=? AND records <= 0");
	if (s)
		sql_bind_u64(s, 1, pack);
	return sql_step_done(s);
}

int catalog_chunk_size(struct catalog *cat, const uint8_t hash[PROTO_HASH_SIZE],
		       uint64_t *size)
{
	sqlite3_stmt *s = sql_prep_hash(cat, "SELECT size FROM chunks WHERE hash=?", hash);
	*size = 0;
	if (!s)
		return RTCMS_EIO;
	int rc = sqlite3_step(s);
	if (rc == SQLITE_ROW)
		*size = sql_col_u64(s, 0);
	sqlite3_finalize(s);
	return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : RTCMS_EIO;
}

int catalog_pack_max(struct catalog *cat, uint64_t *max)
{
	*max = 0;
	int rc = catalog_query_u64(cat, "SELECT coalesce(max(id), 0) FROM packs", max);
	return rc == RTCMS_ENOENT ? 0 : rc;
}
