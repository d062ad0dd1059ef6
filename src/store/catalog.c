/* catalog.c - one mirror's metadata database: schema, opening,
 * generation and epoch, transactions, processes and claims, listing,
 * counts, fences and managers (see catalog.h; checkpoint rows are in
 * catalog_ckpt.c). */
#include "catalog_int.h"

#include <stdio.h>
#include <stdlib.h>

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
	" refs INTEGER NOT NULL, key_id INTEGER);"
	/* chunks kept in the database instead of a pack (small PUTs): their
	 * stored form, as a record would hold it uncompressed */
	"CREATE TABLE IF NOT EXISTS inline_chunks(hash BLOB PRIMARY KEY, form BLOB NOT NULL);"
	/* where this mirror keeps each chunk in its packs (packfile.h): the
	 * pack, the offset of the record, the length of its stored form.
	 * This mirror's own rows: another mirror keeps the same chunks at
	 * other places (a copy of another's meta.db is re-indexed) */
	"CREATE TABLE IF NOT EXISTS chunk_locs(hash BLOB PRIMARY KEY, pack INTEGER NOT NULL,"
	" off INTEGER NOT NULL, len INTEGER NOT NULL);"
	"CREATE INDEX IF NOT EXISTS chunk_locs_pack ON chunk_locs(pack, off);"
	/* per pack: how many records chunk_locs points to and their forms'
	 * bytes (what compaction weighs against the file's size), kept by
	 * triggers in the transactions that move the rows (no OR IGNORE in
	 * them: an upsert's own conflict policy would override it) */
	"CREATE TABLE IF NOT EXISTS packs(id INTEGER PRIMARY KEY, records INTEGER NOT NULL,"
	" bytes INTEGER NOT NULL);"
	"CREATE TRIGGER IF NOT EXISTS chunk_locs_ins AFTER INSERT ON chunk_locs BEGIN"
	" INSERT INTO packs SELECT new.pack, 0, 0 WHERE NOT EXISTS"
	" (SELECT 1 FROM packs WHERE id = new.pack);"
	" UPDATE packs SET records = records + 1, bytes = bytes + new.len WHERE id = new.pack;"
	" END;"
	"CREATE TRIGGER IF NOT EXISTS chunk_locs_del AFTER DELETE ON chunk_locs BEGIN"
	" UPDATE packs SET records = records - 1, bytes = bytes - old.len WHERE id = old.pack;"
	" END;"
	"CREATE TRIGGER IF NOT EXISTS chunk_locs_upd AFTER UPDATE ON chunk_locs BEGIN"
	" UPDATE packs SET records = records - 1, bytes = bytes - old.len WHERE id = old.pack;"
	" INSERT INTO packs SELECT new.pack, 0, 0 WHERE NOT EXISTS"
	" (SELECT 1 FROM packs WHERE id = new.pack);"
	" UPDATE packs SET records = records + 1, bytes = bytes + new.len WHERE id = new.pack;"
	" END;"
	/* nodes fenced for every manager (fence.h); fence_gen in meta */
	"CREATE TABLE IF NOT EXISTS fences(node INTEGER PRIMARY KEY, gen INTEGER NOT NULL,"
	" hold_ms INTEGER NOT NULL);"
	"INSERT OR IGNORE INTO meta VALUES('fence_gen', 0);"
	"CREATE TABLE IF NOT EXISTS managers(name TEXT PRIMARY KEY, lease_ms INTEGER NOT NULL);";

/* Records written to this mirror's packs that no committed row points to
 * yet (an open PUT's): in memory only, gone when the catalog closes. */
static const char pending_schema[] =
	"PRAGMA temp_store=MEMORY;"
	"CREATE TEMP TABLE IF NOT EXISTS pending(hash BLOB PRIMARY KEY, pack INTEGER NOT NULL,"
	" off INTEGER NOT NULL, len INTEGER NOT NULL);"
	"CREATE INDEX IF NOT EXISTS temp.pending_pack ON pending(pack);";

/*
 * Columns added after the first schema (delta checkpoints; the moves after
 * a node gave up on a program; chunks' key ids), in the order a new database has them:
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
	/* the data key a chunk is sealed under (0 plain); NULL in rows from
	 * before it was kept, until store_open fills them in */
	{ "chunks", "key_id", "key_id INTEGER" },
};

/* ---- the database ------------------------------------------------------- */

/* 1 if table has column name, 0 if not, RTCMS_EIO. */
static int has_column(struct catalog *cat, const char *table, const char *name)
{
	char sql[64];
	snprintf(sql, sizeof(sql), "PRAGMA table_info(%s)", table);
	sqlite3_stmt *s = sql_prep(cat, sql);
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
static int upgrade(struct catalog *cat)
{
	char sql[160];
	int rc = sql_exec(cat->db, "BEGIN IMMEDIATE");

	for (size_t i = 0; rc == 0 && i < sizeof(added_columns) / sizeof(added_columns[0]); i++) {
		rc = has_column(cat, added_columns[i].table, added_columns[i].name);
		if (rc == 1) {
			rc = 0;
		} else if (rc == 0) {
			snprintf(sql, sizeof(sql), "ALTER TABLE %s ADD COLUMN %s",
				 added_columns[i].table, added_columns[i].def);
			rc = sql_exec(cat->db, sql);
		}
	}
	if (rc == 0)
		rc = sql_exec(cat->db, "CREATE INDEX IF NOT EXISTS checkpoints_base"
			      " ON checkpoints(process, incarnation, base)");
	if (rc == 0)
		rc = sql_exec(cat->db, "COMMIT");
	if (rc != 0)
		sql_exec(cat->db, "ROLLBACK");
	return rc;
}

int catalog_open(const char *dir, struct catalog **out)
{
	char path[4200];
	struct catalog *cat = calloc(1, sizeof(*cat));

	*out = NULL;
	if (!cat)
		return RTCMS_ENOMEM;
	snprintf(path, sizeof(path), "%s/meta.db", dir);
	if (sqlite3_open_v2(path, &cat->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE |
			    SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK)
		goto fail;
	sqlite3_busy_timeout(cat->db, 5000);
	if (sql_exec(cat->db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;"
		     "PRAGMA foreign_keys=OFF;") != 0 ||
	    sql_exec(cat->db, schema) != 0 || upgrade(cat) != 0 ||
	    sql_exec(cat->db, pending_schema) != 0)
		goto fail;
	*out = cat;
	return 0;
fail:
	catalog_close(cat);
	return RTCMS_EIO;
}

void catalog_close(struct catalog *cat)
{
	if (!cat)
		return;
	sqlite3_finalize(cat->known);
	for (size_t i = 0; i < CATALOG_CACHED; i++)
		sqlite3_finalize(cat->cached[i]);
	sqlite3_close(cat->db);
	free(cat);
}

/* The integer value of a key of table meta, or dflt. */
static int64_t meta_value(struct catalog *cat, const char *sql, int64_t dflt)
{
	sqlite3_stmt *s = sql_prep(cat, sql);
	int64_t v = dflt;
	if (s && sqlite3_step(s) == SQLITE_ROW)
		v = sqlite3_column_int64(s, 0);
	sqlite3_finalize(s);
	return v;
}

int64_t catalog_generation(struct catalog *cat)
{
	return meta_value(cat, "SELECT value FROM meta WHERE key='generation'", -1);
}

int64_t catalog_epoch(struct catalog *cat)
{
	return meta_value(cat, "SELECT value FROM meta WHERE key='epoch'", 0);
}

int catalog_epoch_apply(struct catalog *cat, void *arg)
{
	sqlite3_stmt *s = sql_prep(cat, "INSERT OR REPLACE INTO meta VALUES('epoch', ?)");
	if (!s)
		return RTCMS_EIO;
	sqlite3_bind_int64(s, 1, *(int64_t *)arg);
	return sql_step_done(s);
}

int catalog_check(struct catalog *cat)
{
	sqlite3_stmt *s = sql_prep(cat, "PRAGMA quick_check");
	int ok = s && sqlite3_step(s) == SQLITE_ROW &&
		 strcmp((const char *)sqlite3_column_text(s, 0), "ok") == 0;
	sqlite3_finalize(s);
	return ok ? 0 : RTCMS_ECORRUPT;
}

int catalog_copy(struct catalog *dst, struct catalog *src)
{
	sqlite3_backup *b = sqlite3_backup_init(dst->db, "main", src->db, "main");
	if (!b)
		return RTCMS_EIO;
	int rc = sqlite3_backup_step(b, -1);
	sqlite3_backup_finish(b);
	return rc == SQLITE_DONE ? 0 : RTCMS_EIO;
}

const char *catalog_errmsg(struct catalog *cat)
{
	return sqlite3_errmsg(cat->db);
}

int catalog_exec(struct catalog *cat, const char *sql)
{
	return sql_exec(cat->db, sql);
}

int catalog_query_u64(struct catalog *cat, const char *sql, uint64_t *out)
{
	sqlite3_stmt *s = sql_prep(cat, sql);
	if (!s)
		return RTCMS_EIO;
	int rc = sqlite3_step(s);
	if (rc == SQLITE_ROW)
		*out = sql_col_u64(s, 0);
	sqlite3_finalize(s);
	return rc == SQLITE_ROW ? 0 : rc == SQLITE_DONE ? RTCMS_ENOENT : RTCMS_EIO;
}

int catalog_begin(struct catalog *cat)
{
	return sql_exec(cat->db, "BEGIN IMMEDIATE");
}

int catalog_commit(struct catalog *cat)
{
	return sql_exec(cat->db, "COMMIT");
}

void catalog_rollback(struct catalog *cat)
{
	sql_exec(cat->db, "ROLLBACK");
}

int catalog_generation_bump(struct catalog *cat)
{
	return sql_exec(cat->db, "UPDATE meta SET value = value + 1 WHERE key='generation'");
}

/* ---- processes and claims ----------------------------------------------- */

int catalog_proc_load(struct catalog *cat, const char *process, struct proc_row *r)
{
	sqlite3_stmt *s = sql_prep_proc(cat, "SELECT incarnation, node, claim_id, claimant,"
					" claim_expires, claim_inc, claim_seq, last_claim,"
					" gave_up, claim_gave_up FROM processes WHERE process = ?",
					process);
	memset(r, 0, sizeof(*r));
	if (!s)
		return RTCMS_EIO;
	int rc = sqlite3_step(s);
	if (rc == SQLITE_ROW) {
		r->found = 1;
		r->incarnation = sql_col_u64(s, 0);
		r->node = sql_col_u64(s, 1);
		r->claim_id = sql_col_u64(s, 2);
		snprintf(r->claimant, sizeof(r->claimant), "%s",
			 (const char *)sqlite3_column_text(s, 3));
		r->claim_expires = sql_col_u64(s, 4);
		r->claim_inc = sql_col_u64(s, 5);
		r->claim_seq = sql_col_u64(s, 6);
		r->last_claim = sql_col_u64(s, 7);
		r->gave_up = sqlite3_column_int(s, 8);
		r->claim_gave_up = sqlite3_column_int(s, 9) != 0;
	}
	sqlite3_finalize(s);
	return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : RTCMS_EIO;
}

int catalog_proc_save(struct catalog *cat, const char *process, uint64_t inc,
		      uint64_t node, bool insert)
{
	sqlite3_stmt *s = sql_prep_proc(cat, insert
		? "INSERT INTO processes(process, incarnation, node) VALUES(?1,?2,?3)"
		: "UPDATE processes SET incarnation=?2, node=?3 WHERE process=?1", process);
	if (!s)
		return RTCMS_EIO;
	sql_bind_u64(s, 2, inc);
	sql_bind_u64(s, 3, node);
	return sql_step_done(s);
}

int catalog_proc_gave_up(struct catalog *cat, const char *process, int gave_up)
{
	sqlite3_stmt *s = sql_prep_proc(cat, "UPDATE processes SET gave_up=?2 WHERE process=?1",
					process);
	if (!s)
		return RTCMS_EIO;
	sqlite3_bind_int(s, 2, gave_up);
	return sql_step_done(s);
}

int catalog_claim_set(struct catalog *cat, const char *process, const char *claimant,
		      uint64_t claim_id, uint64_t expires, uint64_t inc, uint64_t seq,
		      bool gave_up)
{
	sqlite3_stmt *s = sql_prep_proc(cat, "UPDATE processes SET claim_id=?2, claimant=?3,"
					" claim_expires=?4, claim_inc=?5, claim_seq=?6,"
					" claim_gave_up=?7 WHERE process=?1", process);
	if (!s)
		return RTCMS_EIO;
	sql_bind_u64(s, 2, claim_id);
	sql_bind_text(s, 3, claimant);
	sql_bind_u64(s, 4, expires);
	sql_bind_u64(s, 5, inc);
	sql_bind_u64(s, 6, seq);
	sql_bind_u64(s, 7, gave_up ? 1 : 0);
	return sql_step_done(s);
}

int catalog_claim_close(struct catalog *cat, const char *process, uint64_t claim_id,
			bool commit, uint64_t new_node)
{
	sqlite3_stmt *s = sql_prep_proc(cat, commit
		? "UPDATE processes SET incarnation = incarnation + 1, node=?3,"
		  " gave_up = MAX(gave_up, claim_gave_up), claim_gave_up=0,"
		  " last_claim=claim_id, claim_id=0, claimant='', claim_expires=0,"
		  " claim_inc=0, claim_seq=0 WHERE process=?1 AND claim_id=?2"
		: "UPDATE processes SET claim_id=0, claimant='', claim_expires=0,"
		  " claim_inc=0, claim_seq=0, claim_gave_up=0"
		  " WHERE process=?1 AND claim_id=?2", process);
	if (!s)
		return RTCMS_EIO;
	sql_bind_u64(s, 2, claim_id);
	if (commit)
		sql_bind_u64(s, 3, new_node);
	int rc = sql_step_done(s);
	if (rc == 0 && sqlite3_changes(cat->db) != 1)
		rc = RTCMS_ENOENT;
	return rc;
}

/* ---- listing, counts, fences, managers ---------------------------------- */

int catalog_list(struct catalog *cat, uint64_t node, const char *process,
		 uint32_t offset, uint16_t limit, struct proto_list_entry *entries,
		 bool *more)
{
	sqlite3_stmt *s = sql_prep(cat,
		"SELECT c.process, c.incarnation, c.sequence, c.node,"
		" CASE WHEN c.full_size > 0 THEN c.full_size ELSE c.size END,"
		" c.created_ms, c.hash, (p.claim_id != 0 AND p.claim_inc = c.incarnation"
		" AND p.claim_seq = c.sequence)"
		" FROM checkpoints c LEFT JOIN processes p ON p.process = c.process"
		" WHERE (?1 = 0 OR c.node = ?1) AND (?2 = '' OR c.process = ?2)"
		" ORDER BY c.process, c.incarnation, c.sequence LIMIT ?3 OFFSET ?4");
	int n = 0;

	if (!s)
		return RTCMS_EIO;
	sql_bind_u64(s, 1, node);
	sql_bind_text(s, 2, process ? process : "");
	sqlite3_bind_int64(s, 3, (int64_t)limit + 1);
	sqlite3_bind_int64(s, 4, offset);
	while (sqlite3_step(s) == SQLITE_ROW) {
		if (n == limit) {
			*more = true;
			break;
		}
		struct proto_list_entry *e = &entries[n++];
		memset(e, 0, sizeof(*e));
		snprintf(e->process, sizeof(e->process), "%s",
			 (const char *)sqlite3_column_text(s, 0));
		e->incarnation = sql_col_u64(s, 1);
		e->sequence = sql_col_u64(s, 2);
		e->node = sql_col_u64(s, 3);
		e->size = sql_col_u64(s, 4);
		e->created_ms = sql_col_u64(s, 5);
		sql_col_hash(s, 6, e->hash);
		e->claimed = sqlite3_column_int(s, 7) ? 1 : 0;
	}
	sqlite3_finalize(s);
	return n;
}

int catalog_counts(struct catalog *cat, struct proto_scrub_reply *r)
{
	sqlite3_stmt *s = sql_prep(cat,
		"SELECT (SELECT count(*) FROM processes), (SELECT count(*) FROM checkpoints),"
		" (SELECT count(*) FROM chunks), (SELECT coalesce(sum(size),0) FROM chunks)");
	if (!s || sqlite3_step(s) != SQLITE_ROW) {
		sqlite3_finalize(s);
		return RTCMS_EIO;
	}
	r->processes = sql_col_u64(s, 0);
	r->checkpoints = sql_col_u64(s, 1);
	r->chunks = sql_col_u64(s, 2);
	r->bytes = sql_col_u64(s, 3);
	sqlite3_finalize(s);
	return 0;
}

int catalog_fence_save(struct catalog *cat, uint64_t node, uint64_t gen, uint32_t hold_ms)
{
	sqlite3_stmt *s = sql_prep(cat, "INSERT OR REPLACE INTO fences VALUES(?1, ?2, ?3)");
	if (!s)
		return RTCMS_EIO;
	sql_bind_u64(s, 1, node);
	sql_bind_u64(s, 2, gen);
	sql_bind_u64(s, 3, hold_ms);
	if (sql_step_done(s) != 0)
		return RTCMS_EIO;
	s = sql_prep(cat, "UPDATE meta SET value = max(value, ?1) WHERE key='fence_gen'");
	if (!s)
		return RTCMS_EIO;
	sql_bind_u64(s, 1, gen);
	return sql_step_done(s);
}

int catalog_fence_delete(struct catalog *cat, uint64_t node)
{
	sqlite3_stmt *s = sql_prep(cat, "DELETE FROM fences WHERE node=?1");
	if (!s)
		return RTCMS_EIO;
	sql_bind_u64(s, 1, node);
	return sql_step_done(s);
}

int catalog_fences_load(struct catalog *cat, store_fence_fn fn, void *ctx, uint64_t *gen)
{
	*gen = (uint64_t)meta_value(cat, "SELECT value FROM meta WHERE key='fence_gen'", 0);
	sqlite3_stmt *s = sql_prep(cat, "SELECT node, gen, hold_ms FROM fences");
	if (!s)
		return RTCMS_EIO;
	while (sqlite3_step(s) == SQLITE_ROW)
		fn(ctx, sql_col_u64(s, 0), sql_col_u64(s, 1), (uint32_t)sql_col_u64(s, 2));
	sqlite3_finalize(s);
	return 0;
}

int catalog_manager_save(struct catalog *cat, const char *name, uint32_t lease_ms)
{
	sqlite3_stmt *s = sql_prep(cat, "INSERT INTO managers VALUES(?1, ?2) ON CONFLICT(name)"
				   " DO UPDATE SET lease_ms = max(lease_ms, ?2)");
	if (!s)
		return RTCMS_EIO;
	sql_bind_text(s, 1, name);
	sql_bind_u64(s, 2, lease_ms);
	return sql_step_done(s);
}

/* A statement whose first parameter is data key id's name in meta. */
static sqlite3_stmt *datakey_stmt(struct catalog *cat, const char *sql, uint32_t id)
{
	char key[32];
	sqlite3_stmt *s = sql_prep(cat, sql);
	if (s) {
		snprintf(key, sizeof(key), "datakey.%u", id);
		sql_bind_text(s, 1, key);
	}
	return s;
}

int catalog_datakey_record(struct catalog *cat, uint32_t id, uint64_t kcv)
{
	sqlite3_stmt *s = datakey_stmt(cat, "INSERT OR IGNORE INTO meta VALUES(?, ?)", id);
	if (!s)
		return RTCMS_EIO;
	sql_bind_u64(s, 2, kcv);
	return sql_step_done(s);
}

int catalog_datakey_get(struct catalog *cat, uint32_t id, uint64_t *kcv, bool *found)
{
	sqlite3_stmt *s = datakey_stmt(cat, "SELECT value FROM meta WHERE key = ?", id);
	if (!s)
		return RTCMS_EIO;
	int rc = sqlite3_step(s);
	*found = rc == SQLITE_ROW;
	if (*found)
		*kcv = sql_col_u64(s, 0);
	sqlite3_finalize(s);
	return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : RTCMS_EIO;
}

int catalog_managers_load(struct catalog *cat, store_manager_fn fn, void *ctx)
{
	sqlite3_stmt *s = sql_prep(cat, "SELECT name, lease_ms FROM managers");
	if (!s)
		return RTCMS_EIO;
	while (sqlite3_step(s) == SQLITE_ROW)
		fn(ctx, (const char *)sqlite3_column_text(s, 0), (uint32_t)sql_col_u64(s, 1));
	sqlite3_finalize(s);
	return 0;
}
