/* catalog_ckpt.c - the catalog's checkpoint rows, their chunk lists, the
 * chunks' reference counts and key ids, and inline chunks (see
 * catalog.h). */
#include "catalog_int.h"

#include <sodium.h>
#include <stdlib.h>

#include "chunkfile.h"

/* ---- checkpoints -------------------------------------------------------- */

int catalog_ckpt_lookup(struct catalog *cat, const char *process, uint64_t inc,
			uint64_t seq, uint8_t hash[PROTO_HASH_SIZE], uint64_t *size,
			uint32_t *depth, uint8_t state[PROTO_HASH_SIZE], bool *found)
{
	sqlite3_stmt *s = sql_prep_key(cat, "SELECT hash, size, depth, state_hash FROM checkpoints"
				       " WHERE process=? AND incarnation=? AND sequence=?",
				       process, inc, seq);
	if (!s)
		return RTCMS_EIO;
	int rc = sqlite3_step(s);
	if (rc == SQLITE_ROW) {
		if (hash)
			sql_col_hash(s, 0, hash);
		if (size)
			*size = sql_col_u64(s, 1);
		if (depth)
			*depth = (uint32_t)sqlite3_column_int64(s, 2);
		if (state)
			sql_col_hash(s, 3, state);
	}
	sqlite3_finalize(s);
	*found = rc == SQLITE_ROW;
	return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : RTCMS_EIO;
}

int catalog_ckpt_has_dependent(struct catalog *cat, const char *process, uint64_t inc,
			       uint64_t seq, bool *has, uint64_t *dep)
{
	sqlite3_stmt *s = sql_prep_key(cat, "SELECT sequence FROM checkpoints WHERE process=?"
				       " AND incarnation=? AND base=? ORDER BY sequence DESC LIMIT 1",
				       process, inc, seq);
	if (!s)
		return RTCMS_EIO;
	int rc = sqlite3_step(s);
	if (rc == SQLITE_ROW && dep)
		*dep = sql_col_u64(s, 0);
	sqlite3_finalize(s);
	*has = rc == SQLITE_ROW;
	return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : RTCMS_EIO;
}

/* Read a row of a SELECT CKPT_COLS statement. */
static void row_load(sqlite3_stmt *s, struct ckpt_row *r)
{
	r->inc = sql_col_u64(s, 1);
	r->seq = sql_col_u64(s, 2);
	r->node = sql_col_u64(s, 3);
	r->size = sql_col_u64(s, 4);
	sql_col_hash(s, 5, r->hash);
	r->created_ms = sql_col_u64(s, 6);
	r->chunk_count = (uint32_t)sqlite3_column_int64(s, 8);
	r->base = sql_col_u64(s, 9);
	r->depth = (uint32_t)sqlite3_column_int64(s, 10);
	r->full_size = sql_col_u64(s, 11);
	sql_col_hash(s, 12, r->state_hash);
}

int catalog_ckpt_get(struct catalog *cat, const char *process, uint64_t inc,
		     uint64_t seq, struct ckpt_row *r)
{
	sqlite3_stmt *s = sql_prep_key(cat, "SELECT " CKPT_COLS " FROM checkpoints"
				       " WHERE process=? AND incarnation=? AND sequence=?",
				       process, inc, seq);
	if (!s)
		return RTCMS_EIO;
	int rc = sqlite3_step(s);
	if (rc == SQLITE_ROW)
		row_load(s, r);
	sqlite3_finalize(s);
	return rc == SQLITE_ROW ? 0 : rc == SQLITE_DONE ? RTCMS_ENOENT : RTCMS_EIO;
}

/* The spec column of a CKPT_COLS row into *spec (malloc'ed). */
static int spec_load(sqlite3_stmt *s, uint8_t **spec, uint32_t *spec_len)
{
	*spec = NULL;
	*spec_len = (uint32_t)sqlite3_column_bytes(s, 7);
	if (*spec_len > PROTO_SPEC_MAX)
		*spec_len = 0;
	if (*spec_len == 0)
		return 0;
	if (!(*spec = malloc(*spec_len)))
		return RTCMS_ENOMEM;
	memcpy(*spec, sqlite3_column_blob(s, 7), *spec_len);
	return 0;
}

int catalog_ckpt_find(struct catalog *cat, const char *process, uint64_t inc,
		      uint64_t seq, struct ckpt_row *r, uint8_t **spec,
		      uint32_t *spec_len)
{
	const char *sql =
		seq ? (inc
		       ? "SELECT " CKPT_COLS " FROM checkpoints WHERE process=?1"
			 " AND incarnation=?2 AND sequence=?3"
		       : "SELECT " CKPT_COLS " FROM checkpoints WHERE process=?1"
			 " AND sequence=?3 ORDER BY incarnation DESC LIMIT 1")
		    : (inc
		       ? "SELECT " CKPT_COLS " FROM checkpoints WHERE process=?1"
			 " AND incarnation=?2 ORDER BY sequence DESC LIMIT 1"
		       : "SELECT " CKPT_COLS " FROM checkpoints WHERE process=?1"
			 " ORDER BY incarnation DESC, sequence DESC LIMIT 1");
	sqlite3_stmt *s = sql_prep_key(cat, sql, process, inc, seq);
	int rc;

	if (!s)
		return RTCMS_EIO;
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW) {
		row_load(s, r);
		rc = spec ? spec_load(s, spec, spec_len) : 0;
	} else {
		rc = RTCMS_ENOENT;
	}
	sqlite3_finalize(s);
	return rc;
}

int catalog_ckpt_latest(struct catalog *cat, const char *process, struct ckpt_key *key)
{
	sqlite3_stmt *s = sql_prep_proc(cat, "SELECT incarnation, sequence FROM checkpoints"
					" WHERE process=? ORDER BY incarnation DESC,"
					" sequence DESC LIMIT 1", process);
	if (!s)
		return RTCMS_EIO;
	int found = sqlite3_step(s) == SQLITE_ROW;
	if (found) {
		key->inc = sql_col_u64(s, 0);
		key->seq = sql_col_u64(s, 1);
	}
	sqlite3_finalize(s);
	return found;
}

/* The (incarnation, sequence) rows of s into *out; finalizes s. */
static int keys_load(sqlite3_stmt *s, struct ckpt_key **out, size_t *n)
{
	struct ckpt_key *k = NULL;
	size_t cap = 0;
	int rc = 0, step;

	*out = NULL;
	*n = 0;
	if (!s)
		return RTCMS_EIO;
	while ((step = sqlite3_step(s)) == SQLITE_ROW) {
		if (*n == cap) {
			size_t ncap = cap ? cap * 2 : 16;
			void *p = realloc(k, ncap * sizeof(*k));
			if (!p) {
				rc = RTCMS_ENOMEM;
				break;
			}
			k = p;
			cap = ncap;
		}
		k[*n].inc = sql_col_u64(s, 0);
		k[*n].seq = sql_col_u64(s, 1);
		(*n)++;
	}
	sqlite3_finalize(s);
	if (rc == 0 && step != SQLITE_DONE)
		rc = RTCMS_EIO;
	*out = k;
	return rc;
}

int catalog_ckpt_older(struct catalog *cat, const char *process, unsigned skip_newest,
		       struct ckpt_key **out, size_t *n)
{
	sqlite3_stmt *s = sql_prep_proc(cat, "SELECT incarnation, sequence FROM checkpoints"
					" WHERE process=? ORDER BY incarnation DESC, sequence DESC"
					" LIMIT -1 OFFSET ?", process);
	if (s)
		sqlite3_bind_int64(s, 2, skip_newest);
	return keys_load(s, out, n);
}

int catalog_ckpt_select(struct catalog *cat, const char *process, uint64_t inc,
			uint64_t seq, struct ckpt_key **out, size_t *n)
{
	return keys_load(sql_prep_key(cat, seq
		? "SELECT incarnation, sequence FROM checkpoints WHERE process=?1"
		  " AND incarnation=?2 AND sequence=?3"
		: "SELECT incarnation, sequence FROM checkpoints WHERE process=?1",
		process, inc, seq), out, n);
}

static int ckpt_row_insert(struct catalog *cat, const struct proto_ckpt_meta *m,
			   uint64_t created_ms, uint32_t depth, uint32_t count)
{
	sqlite3_stmt *s = sql_prep(cat, "INSERT INTO checkpoints(process, incarnation, sequence,"
		" node, size, hash, created_ms, spec, chunk_count, base, depth, full_size,"
		" state_hash) VALUES(?,?,?,?,?,?,?,?,?,?,?,?,?)");
	if (!s)
		return RTCMS_EIO;
	sql_bind_text(s, 1, m->process);
	sql_bind_u64(s, 2, m->incarnation);
	sql_bind_u64(s, 3, m->sequence);
	sql_bind_u64(s, 4, m->node);
	sql_bind_u64(s, 5, m->size);
	sql_bind_hash(s, 6, m->hash);
	sql_bind_u64(s, 7, created_ms);
	sqlite3_bind_blob(s, 8, m->spec ? (const void *)m->spec : "", (int)m->spec_len,
			  SQLITE_TRANSIENT);
	sqlite3_bind_int64(s, 9, count);
	sql_bind_u64(s, 10, m->base);
	sqlite3_bind_int64(s, 11, depth);
	sql_bind_u64(s, 12, m->base ? m->full_size : m->size);
	if (sodium_is_zero(m->state_hash, PROTO_HASH_SIZE))
		sqlite3_bind_null(s, 13);
	else
		sql_bind_hash(s, 13, m->state_hash);
	return sql_step_done(s);
}

/* A new chunk's inline copy (in the transaction that references it). */
static int inline_insert(struct catalog *cat, const uint8_t *h, const struct chunk_form *f)
{
	sqlite3_stmt *s = sql_prep_hash(cat, "INSERT OR REPLACE INTO inline_chunks VALUES(?,?)", h);
	if (s)
		sqlite3_bind_blob(s, 2, f->data, (int)f->len, SQLITE_STATIC);
	return sql_step_done(s);
}

int catalog_ckpt_insert(struct catalog *cat, const struct proto_ckpt_meta *m,
			uint64_t created_ms, uint32_t depth,
			const struct chunk_ref *chunks, const struct chunk_form *forms,
			uint32_t count)
{
	int rc = ckpt_row_insert(cat, m, created_ms, depth, count);
	if (rc)
		return rc;
	sqlite3_stmt *ins = sql_prep(cat, "INSERT INTO ckpt_chunks VALUES(?,?,?,?,?,?,?)");
	sqlite3_stmt *ref = sql_prep(cat, "INSERT INTO chunks(hash, size, refs, key_id)"
				     " VALUES(?,?,1,?) ON CONFLICT(hash) DO UPDATE SET"
				     " refs = refs + 1, key_id = coalesce(key_id, excluded.key_id)");
	rc = ins && ref ? 0 : RTCMS_EIO;
	for (uint32_t i = 0; i < count && rc == 0; i++) {
		const struct chunk_ref *c = &chunks[i];
		bool known = true;
		sqlite3_reset(ins);
		sql_bind_text(ins, 1, m->process);
		sql_bind_u64(ins, 2, m->incarnation);
		sql_bind_u64(ins, 3, m->sequence);
		sqlite3_bind_int64(ins, 4, i);
		sql_bind_u64(ins, 5, c->offset);
		sqlite3_bind_int64(ins, 6, c->len);
		sql_bind_hash(ins, 7, c->hash);
		sqlite3_reset(ref);
		sql_bind_hash(ref, 1, c->hash);
		sqlite3_bind_int64(ref, 2, c->len);
		sqlite3_bind_int64(ref, 3, c->key_id);
		/* a chunk referenced already has its durable copy: only a new
		 * one is kept inline */
		if (forms && catalog_chunk_known(cat, c->hash, &known) != 0)
			rc = RTCMS_EIO;
		else if (sqlite3_step(ins) != SQLITE_DONE || sqlite3_step(ref) != SQLITE_DONE)
			rc = RTCMS_EIO;
		else if (!forms)
			rc = catalog_loc_adopt(cat, c->hash);
		else if (!known)
			rc = inline_insert(cat, c->hash, &forms[i]);
	}
	sqlite3_finalize(ins);
	sqlite3_finalize(ref);
	return rc;
}

/* Drop one reference to chunk h; at 0 delete its row (and its copies:
 * inline and its place in the packs, unless u keeps them) and tell u's
 * unref. */
static int chunk_unref(struct catalog *cat, const uint8_t *h, const struct catalog_unref *u)
{
	if (sql_step_done(sql_prep_hash(cat, "UPDATE chunks SET refs = refs - 1 WHERE hash=?",
					h)) != 0)
		return RTCMS_EIO;
	sqlite3_stmt *q = sql_prep_hash(cat, "SELECT refs FROM chunks WHERE hash=?", h);
	int zero = q && sqlite3_step(q) == SQLITE_ROW && sqlite3_column_int64(q, 0) <= 0;
	sqlite3_finalize(q);
	if (!zero)
		return 0;
	if (sql_step_done(sql_prep_hash(cat, "DELETE FROM chunks WHERE hash=?", h)) != 0)
		return RTCMS_EIO;
	if (!(u && u->keep_copies && u->keep_copies(u->keep_ctx, h)) &&
	    (sql_step_done(sql_prep_hash(cat, "DELETE FROM inline_chunks WHERE hash=?", h)) != 0 ||
	     sql_step_done(sql_prep_hash(cat, "DELETE FROM chunk_locs WHERE hash=?", h)) != 0))
		return RTCMS_EIO;
	if (u && u->unref && u->unref(u->ctx, h) != 0)
		return RTCMS_EIO;
	return 0;
}

int catalog_ckpt_delete(struct catalog *cat, const char *process, uint64_t inc,
			uint64_t seq, const struct catalog_unref *u)
{
	sqlite3_stmt *s = sql_prep_key(cat, "SELECT hash FROM ckpt_chunks WHERE process=?"
				       " AND incarnation=? AND sequence=?", process, inc, seq);
	int rc;

	if (!s)
		return RTCMS_EIO;
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		uint8_t h[PROTO_HASH_SIZE];
		sql_col_hash(s, 0, h);
		if (chunk_unref(cat, h, u) != 0) {
			sqlite3_finalize(s);
			return RTCMS_EIO;
		}
	}
	sqlite3_finalize(s);
	if (rc != SQLITE_DONE)
		return RTCMS_EIO;
	if (sql_step_done(sql_prep_key(cat, "DELETE FROM ckpt_chunks WHERE process=? AND"
			       " incarnation=? AND sequence=?", process, inc, seq)) != 0)
		return RTCMS_EIO;
	return sql_step_done(sql_prep_key(cat, "DELETE FROM checkpoints WHERE process=? AND"
				  " incarnation=? AND sequence=?", process, inc, seq));
}

int catalog_chunks_load(struct catalog *cat, const char *process, uint64_t inc,
			uint64_t seq, uint32_t count, struct chunk_ref **out)
{
	struct chunk_ref *c = NULL;
	uint32_t n = 0;
	int rc = 0, step;

	*out = NULL;
	if (count && !(c = calloc(count, sizeof(*c))))
		return RTCMS_ENOMEM;
	sqlite3_stmt *s = sql_prep_key(cat, "SELECT offset, len, hash FROM ckpt_chunks WHERE"
				       " process=? AND incarnation=? AND sequence=? ORDER BY idx",
				       process, inc, seq);
	if (!s) {
		free(c);
		return RTCMS_EIO;
	}
	while ((step = sqlite3_step(s)) == SQLITE_ROW) {
		if (n == count) {
			rc = RTCMS_EIO; /* more than the row says */
			break;
		}
		c[n].offset = sql_col_u64(s, 0);
		c[n].len = (uint32_t)sqlite3_column_int64(s, 1);
		sql_col_hash(s, 2, c[n].hash);
		n++;
	}
	sqlite3_finalize(s);
	if (rc == 0 && (step != SQLITE_DONE || n != count))
		rc = RTCMS_EIO;
	if (rc) {
		free(c);
		return rc;
	}
	*out = c;
	return 0;
}

/* ---- chunks ------------------------------------------------------------- */

int catalog_chunk_known(struct catalog *cat, const uint8_t hash[PROTO_HASH_SIZE],
			bool *known)
{
	if (!cat->known && !(cat->known = sql_prep(cat, "SELECT 1 FROM chunks WHERE hash=?")))
		return RTCMS_EIO;
	sql_bind_hash(cat->known, 1, hash);
	int rc = sqlite3_step(cat->known);
	sqlite3_reset(cat->known);
	*known = rc == SQLITE_ROW;
	return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : RTCMS_EIO;
}

/* Call fn for every (hash, size) row sql selects. */
static int chunks_walk(struct catalog *cat, const char *sql, catalog_chunk_fn fn, void *ctx)
{
	sqlite3_stmt *s = sql_prep(cat, sql);
	if (!s)
		return RTCMS_EIO;
	while (sqlite3_step(s) == SQLITE_ROW) {
		uint8_t h[PROTO_HASH_SIZE];
		sql_col_hash(s, 0, h);
		if (!fn(ctx, h, sql_col_u64(s, 1)))
			break;
	}
	sqlite3_finalize(s);
	return 0;
}

int catalog_chunks_each(struct catalog *cat, catalog_chunk_fn fn, void *ctx)
{
	return chunks_walk(cat, "SELECT hash, size FROM chunks", fn, ctx);
}

/* ---- inline chunks ------------------------------------------------------ */

int catalog_inline_get(struct catalog *cat, const uint8_t hash[PROTO_HASH_SIZE],
		       uint8_t *buf, size_t cap, size_t *len, bool *found)
{
	sqlite3_stmt *s = sql_prep_hash(cat, "SELECT form FROM inline_chunks WHERE hash=?", hash);
	if (!s)
		return RTCMS_EIO;
	int rc = sqlite3_step(s);
	*found = rc == SQLITE_ROW;
	*len = 0;
	if (*found) {
		const void *p = sqlite3_column_blob(s, 0);
		size_t n = (size_t)sqlite3_column_bytes(s, 0);
		if (p && n <= cap) {
			memcpy(buf, p, n);
			*len = n;
		}
	}
	sqlite3_finalize(s);
	return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : RTCMS_EIO;
}

bool catalog_inline_has(struct catalog *cat, const uint8_t hash[PROTO_HASH_SIZE])
{
	sqlite3_stmt *s = sql_prep_hash(cat, "SELECT 1 FROM inline_chunks WHERE hash=?", hash);
	bool has = s && sqlite3_step(s) == SQLITE_ROW;
	sqlite3_finalize(s);
	return has;
}

int catalog_inline_put(struct catalog *cat, const uint8_t hash[PROTO_HASH_SIZE],
		       const uint8_t *form, size_t len)
{
	struct chunk_form f = { form, (uint32_t)len };
	return len > CHUNKFILE_MAX ? RTCMS_EIO : inline_insert(cat, hash, &f);
}

int catalog_inline_drop(struct catalog *cat, const uint8_t hash[PROTO_HASH_SIZE])
{
	bool known;
	/* look first: a write transaction only where there is one to drop */
	if (!catalog_inline_has(cat, hash))
		return 0;
	if (catalog_chunk_known(cat, hash, &known) != 0)
		return RTCMS_EIO;
	if (known)
		return 0;
	return sql_step_done(sql_prep_hash(cat, "DELETE FROM inline_chunks WHERE hash=?", hash));
}

int catalog_inline_sweep(struct catalog *cat)
{
	uint64_t n = 0;
	int rc = catalog_query_u64(cat, "SELECT count(*) FROM inline_chunks WHERE hash NOT IN"
				   " (SELECT hash FROM chunks)", &n);
	if (rc || n == 0)
		return rc;
	rc = sql_exec(cat->db, "DELETE FROM inline_chunks WHERE hash NOT IN"
		      " (SELECT hash FROM chunks)");
	return rc ? rc : (int)n;
}

/* ---- chunks by data key ------------------------------------------------- */

int catalog_keys(struct catalog *cat, uint32_t from, struct proto_keys_reply *r, bool *more)
{
	sqlite3_stmt *s = sql_prep(cat, "SELECT count(*), coalesce(sum(size), 0) FROM chunks"
				   " WHERE key_id IS NULL");
	int rc;

	memset(r, 0, sizeof(*r));
	*more = false;
	if (!s || sqlite3_step(s) != SQLITE_ROW) {
		sqlite3_finalize(s);
		return RTCMS_EIO;
	}
	r->unknown_chunks = sql_col_u64(s, 0);
	r->unknown_bytes = sql_col_u64(s, 1);
	sqlite3_finalize(s);
	s = sql_prep(cat, "SELECT key_id, count(*), sum(size) FROM chunks WHERE key_id >= ?"
		     " GROUP BY key_id ORDER BY key_id LIMIT ?");
	if (!s)
		return RTCMS_EIO;
	sql_bind_u64(s, 1, from);
	sqlite3_bind_int64(s, 2, PROTO_KEYS_MAX + 1);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		if (r->count == PROTO_KEYS_MAX) {
			*more = true;
			break;
		}
		struct proto_key_count *k = &r->keys[r->count++];
		k->key_id = (uint32_t)sql_col_u64(s, 0);
		k->chunks = sql_col_u64(s, 1);
		k->bytes = sql_col_u64(s, 2);
	}
	sqlite3_finalize(s);
	return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : RTCMS_EIO;
}

int catalog_chunks_unkeyed(struct catalog *cat, catalog_chunk_fn fn, void *ctx)
{
	return chunks_walk(cat, "SELECT hash, size FROM chunks WHERE key_id IS NULL", fn, ctx);
}

int catalog_chunk_set_key(struct catalog *cat, const uint8_t hash[PROTO_HASH_SIZE],
			  uint32_t key_id)
{
	sqlite3_stmt *s = sql_prep_hash(cat, "UPDATE chunks SET key_id=?2 WHERE hash=?1"
					" AND key_id IS NULL", hash);
	if (s)
		sql_bind_u64(s, 2, key_id);
	return sql_step_done(s);
}
