/*
 * catalog.h - one mirror's metadata database (M/meta.db), and every SQL
 * statement of the store: schema and its upgrade, WAL with
 * synchronous=FULL, the generation and epoch counters, copying, and the
 * rows of processes, checkpoints, chunk lists, chunk reference counts
 * and key ids, inline chunks, claims, fences and managers.
 *
 * A catalog is one database; it knows nothing of mirrors, pins or
 * threads. The store applies each mutation to every online mirror's
 * catalog in one transaction each (mirror_apply() in mirror.c) and reads
 * from the first online one. Not thread-safe: the store calls it under
 * st->mu (store_int.h). u64 values are stored as int64 bit patterns.
 */
#ifndef RTCMS_STORE_CATALOG_H
#define RTCMS_STORE_CATALOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proto/msg.h"
#include "store.h"

struct catalog;

/* One chunk of a checkpoint's image. */
struct chunk_ref {
	uint64_t offset;
	uint32_t len;
	uint32_t key_id;              /* the data key it is sealed under, 0 plain
				       * (set by a PUT; not loaded back) */
	uint8_t hash[PROTO_HASH_SIZE];
};

/* A chunk's stored form (chunkfile.h) to keep inline in the database. */
struct chunk_form {
	const uint8_t *data;
	uint32_t len;
};

/* A checkpoint row as stored (spec left out). */
struct ckpt_row {
	uint64_t inc, seq, node, size, created_ms, base, full_size;
	uint32_t chunk_count, depth;
	uint8_t hash[PROTO_HASH_SIZE];
	uint8_t state_hash[PROTO_HASH_SIZE];
};

/* A checkpoint's key within its process. */
struct ckpt_key {
	uint64_t inc, seq;
};

/* A process row: its incarnation, node and open claim. */
struct proc_row {
	int found;
	uint64_t incarnation, node;
	uint64_t claim_id, claim_expires, claim_inc, claim_seq, last_claim;
	int gave_up;                  /* enum gave_up (claim.c) */
	int claim_gave_up;            /* the open claim is a GAVE_UP one */
	char claimant[PROTO_ID_MAX + 1];
};

/* ---- the database ---------------------------------------------------- */

/* Open or create dir/meta.db with the schema; a database of an older
 * schema is upgraded in place (missing columns added with their
 * defaults). 0 and *out (close it with catalog_close), or RTCMS_EIO
 * (*out NULL) / RTCMS_ENOMEM. */
int catalog_open(const char *dir, struct catalog **out);

/* Close the database. catalog_close(NULL) is a no-op. */
void catalog_close(struct catalog *cat);

/* The database's generation (bumped by every mutation), or -1. */
int64_t catalog_generation(struct catalog *cat);

/* The epoch (a random value every store_open sets on the online mirrors:
 * equal generations with other epochs diverged), 0 if none. */
int64_t catalog_epoch(struct catalog *cat);

/* A mutation (mirror_apply) setting the epoch to *(int64_t *)arg. */
int catalog_epoch_apply(struct catalog *cat, void *arg);

/* SQLite's own consistency check: 0 or RTCMS_ECORRUPT. */
int catalog_check(struct catalog *cat);

/* Replace dst's content by a copy of src's. 0 or RTCMS_EIO. */
int catalog_copy(struct catalog *dst, struct catalog *src);

/* The last SQLite error message (owned by the catalog). */
const char *catalog_errmsg(struct catalog *cat);

/* Run SQL without results (tests and maintenance). 0 or RTCMS_EIO. */
int catalog_exec(struct catalog *cat, const char *sql);

/* The first column of the first row of sql as a u64 (tests). 0 and *out,
 * RTCMS_ENOENT (no row) or RTCMS_EIO. */
int catalog_query_u64(struct catalog *cat, const char *sql, uint64_t *out);

/* Transactions: BEGIN IMMEDIATE, COMMIT (0 or RTCMS_EIO), ROLLBACK, and
 * the generation bump every mutating transaction makes. */
int catalog_begin(struct catalog *cat);
int catalog_commit(struct catalog *cat);
void catalog_rollback(struct catalog *cat);
int catalog_generation_bump(struct catalog *cat);

/* ---- processes and claims --------------------------------------------- */

/* Load a process' row (r->found 0 if there is none). 0 or RTCMS_EIO. */
int catalog_proc_load(struct catalog *cat, const char *process, struct proc_row *r);

/* Insert a process row (insert) or raise its incarnation and node. 0 or
 * RTCMS_EIO. */
int catalog_proc_save(struct catalog *cat, const char *process, uint64_t inc,
		      uint64_t node, bool insert);

/* Set processes.gave_up of a process. 0 or RTCMS_EIO. */
int catalog_proc_gave_up(struct catalog *cat, const char *process, int gave_up);

/* Record an open claim on a process. 0 or RTCMS_EIO. */
int catalog_claim_set(struct catalog *cat, const char *process, const char *claimant,
		      uint64_t claim_id, uint64_t expires, uint64_t inc, uint64_t seq,
		      bool gave_up);

/* Close the open claim claim_id: with commit, move the process to
 * new_node, raise its incarnation and count a GAVE_UP claim; else leave
 * it as it was. 0, RTCMS_ENOENT (no such open claim), RTCMS_EIO. */
int catalog_claim_close(struct catalog *cat, const char *process, uint64_t claim_id,
			bool commit, uint64_t new_node);

/* ---- checkpoints -------------------------------------------------------- */

/* Look up a stored checkpoint's hash, size, depth and state hash (any may
 * be NULL): 0 with *found, or RTCMS_EIO. */
int catalog_ckpt_lookup(struct catalog *cat, const char *process, uint64_t inc,
			uint64_t seq, uint8_t hash[PROTO_HASH_SIZE], uint64_t *size,
			uint32_t *depth, uint8_t state[PROTO_HASH_SIZE], bool *found);

/* Whether a checkpoint of (process, inc) is a delta against seq (*has; the
 * newest such sequence into *dep if dep): 0, or RTCMS_EIO. */
int catalog_ckpt_has_dependent(struct catalog *cat, const char *process, uint64_t inc,
			       uint64_t seq, bool *has, uint64_t *dep);

/* Load the row of (process, inc, seq): 0, RTCMS_ENOENT, RTCMS_EIO. */
int catalog_ckpt_get(struct catalog *cat, const char *process, uint64_t inc,
		     uint64_t seq, struct ckpt_row *r);

/*
 * Find a checkpoint as a GET names it: (inc, seq), or the latest when seq
 * is 0 (of any incarnation when inc is 0); with spec, its spec goes to
 * *spec (malloc'ed, NULL if empty or over PROTO_SPEC_MAX) and *spec_len.
 * 0, RTCMS_ENOENT (also when the row cannot be read), RTCMS_ENOMEM,
 * RTCMS_EIO (the query cannot start).
 */
int catalog_ckpt_find(struct catalog *cat, const char *process, uint64_t inc,
		      uint64_t seq, struct ckpt_row *r, uint8_t **spec,
		      uint32_t *spec_len);

/* The latest checkpoint of a process: 1 and *key, 0 if none, RTCMS_EIO. */
int catalog_ckpt_latest(struct catalog *cat, const char *process, struct ckpt_key *key);

/*
 * The keys of a process' checkpoints into *out (malloc'ed, *n of them;
 * NULL when none): with skip_newest, all but the newest skip_newest
 * (newest first); else (inc, seq), or all of them when seq is 0.
 * 0, RTCMS_ENOMEM, RTCMS_EIO.
 */
int catalog_ckpt_older(struct catalog *cat, const char *process, unsigned skip_newest,
		       struct ckpt_key **out, size_t *n);
int catalog_ckpt_select(struct catalog *cat, const char *process, uint64_t inc,
			uint64_t seq, struct ckpt_key **out, size_t *n);

/*
 * Insert a checkpoint (meta, created at created_ms, of the given depth),
 * its chunk list and one reference to each of its chunks (with its key
 * id). With forms (one per chunk), a chunk not referenced yet is kept
 * inline: forms[i] goes into inline_chunks in the same transaction; a
 * chunk referenced already keeps the copy it has (a durable file or an
 * inline one). Without, a chunk that has no place in the packs yet gets
 * the one its pending row says (catalog_pending_add: the PUT wrote it
 * there). 0 or RTCMS_EIO.
 */
int catalog_ckpt_insert(struct catalog *cat, const struct proto_ckpt_meta *m,
			uint64_t created_ms, uint32_t depth,
			const struct chunk_ref *chunks, const struct chunk_form *forms,
			uint32_t count);

/* Called for a chunk whose last reference went; non-zero fails. */
typedef int (*catalog_unref_fn)(void *ctx, const uint8_t hash[PROTO_HASH_SIZE]);

/* What dropping references does with a chunk whose last one went: its
 * row goes, unref (if set) is told, and its copies in the database (its
 * inline copy, its place in the mirror's packs) go too unless keep_copies
 * (if set) says it is in use (pinned: catalog_inline_drop() and
 * catalog_loc_drop() remove them later). The same on every mirror. */
struct catalog_unref {
	catalog_unref_fn unref;
	void *ctx;
	bool (*keep_copies)(void *ctx, const uint8_t hash[PROTO_HASH_SIZE]);
	void *keep_ctx;
};

/*
 * Delete one checkpoint's rows and drop its chunk references; the rows of
 * chunks whose count reaches 0 are deleted as u says (u NULL: rows and
 * inline copies go, nobody is told). 0 or RTCMS_EIO.
 */
int catalog_ckpt_delete(struct catalog *cat, const char *process, uint64_t inc,
			uint64_t seq, const struct catalog_unref *u);

/*
 * Load the chunk list of a checkpoint (count entries) into *out
 * (malloc'ed; NULL when count is 0). 0, RTCMS_ENOMEM, RTCMS_EIO (also if
 * the list is not count entries long; *out is NULL then).
 */
int catalog_chunks_load(struct catalog *cat, const char *process, uint64_t inc,
			uint64_t seq, uint32_t count, struct chunk_ref **out);

/* ---- chunks ------------------------------------------------------------- */

/* Whether a checkpoint references chunk hash (*known): 0, or RTCMS_EIO. */
int catalog_chunk_known(struct catalog *cat, const uint8_t hash[PROTO_HASH_SIZE],
			bool *known);

/* Called for each referenced chunk; false stops the walk. */
typedef bool (*catalog_chunk_fn)(void *ctx, const uint8_t hash[PROTO_HASH_SIZE],
				 uint64_t size);

/* Call fn for every referenced chunk. 0 (also when fn stopped the walk,
 * or a row could not be read: the walk ends there), or RTCMS_EIO when the
 * query cannot start. */
int catalog_chunks_each(struct catalog *cat, catalog_chunk_fn fn, void *ctx);

/* ---- inline chunks (a mirror's own copies; no generation bump) ------------ */

/* The inline copy of chunk hash into buf (cap bytes): 0 with *found and
 * *len (a copy longer than cap is not copied: *len 0, the caller finds it
 * corrupt), or RTCMS_EIO. */
int catalog_inline_get(struct catalog *cat, const uint8_t hash[PROTO_HASH_SIZE],
		       uint8_t *buf, size_t cap, size_t *len, bool *found);

/* Whether chunk hash has an inline copy (not read). */
bool catalog_inline_has(struct catalog *cat, const uint8_t hash[PROTO_HASH_SIZE]);

/* Write (or replace) the inline copy of chunk hash: a repair of this
 * mirror's copy, durable when it returns. 0 or RTCMS_EIO. */
int catalog_inline_put(struct catalog *cat, const uint8_t hash[PROTO_HASH_SIZE],
		       const uint8_t *form, size_t len);

/* Remove the inline copy of chunk hash unless a checkpoint references it
 * (garbage collection after its pins went). 0 or RTCMS_EIO. */
int catalog_inline_drop(struct catalog *cat, const uint8_t hash[PROTO_HASH_SIZE]);

/* Remove every inline copy no checkpoint references (at open); the number
 * removed or RTCMS_EIO. */
int catalog_inline_sweep(struct catalog *cat);

/* ---- places in the mirror's packs (its own rows; no generation bump) ------- */

/* Where a chunk's record is in this mirror's packs (packfile.h). */
struct chunk_loc {
	uint64_t pack;                /* the pack's id */
	uint64_t off;                 /* the offset of the record's header */
	uint32_t len;                 /* the length of its stored form */
};

/* A chunk and its place. */
struct chunk_rec {
	uint8_t hash[PROTO_HASH_SIZE];
	struct chunk_loc loc;
	uint32_t size;                /* the chunk's; 0: no checkpoint
				       * references it (catalog_pack_locs) */
};

/* Chunk hash's committed place: 0 with *found (and *loc), or RTCMS_EIO. */
int catalog_loc_get(struct catalog *cat, const uint8_t hash[PROTO_HASH_SIZE],
		    struct chunk_loc *loc, bool *found);

/* Its committed place, else its pending one (written by an open PUT, not
 * committed): 0 with *found and *pending, or RTCMS_EIO. */
int catalog_loc_find(struct catalog *cat, const uint8_t hash[PROTO_HASH_SIZE],
		     struct chunk_loc *loc, bool *found, bool *pending);

/* Pending places (a temporary table, in memory): a PUT's chunk written at
 * loc (a first one stays), and its removal once no open PUT needs it.
 * 0 or RTCMS_EIO. */
int catalog_pending_add(struct catalog *cat, const uint8_t hash[PROTO_HASH_SIZE],
			const struct chunk_loc *loc);
int catalog_pending_drop(struct catalog *cat, const uint8_t hash[PROTO_HASH_SIZE]);

/* Whether a pending place is in pack (*any). 0 or RTCMS_EIO. */
int catalog_pending_in(struct catalog *cat, uint64_t pack, bool *any);

/* Set chunk hash's place (a repair, a resync or a re-index; in the
 * caller's transaction or on its own, durable then). 0 or RTCMS_EIO. */
int catalog_loc_set(struct catalog *cat, const uint8_t hash[PROTO_HASH_SIZE],
		    const struct chunk_loc *loc);

/* Move chunk hash's place from `from` to `to` if it is still at from
 * (compaction: *moved says whether it was). 0 or RTCMS_EIO. */
int catalog_loc_move(struct catalog *cat, const uint8_t hash[PROTO_HASH_SIZE],
		     const struct chunk_loc *from, const struct chunk_loc *to, bool *moved);

/* Remove chunk hash's place unless a checkpoint references it (garbage
 * collection after its pins went). 0 or RTCMS_EIO. */
int catalog_loc_drop(struct catalog *cat, const uint8_t hash[PROTO_HASH_SIZE]);

/* Remove every place no checkpoint references, and the rows of packs
 * nothing is placed in (at open); the number of places removed or
 * RTCMS_EIO. */
int catalog_locs_sweep(struct catalog *cat);

/* Remove every place and pack row (a re-index starts from nothing). 0 or
 * RTCMS_EIO. */
int catalog_locs_clear(struct catalog *cat);

/* The records of pack that rows point to and their forms' bytes (0 and 0
 * for a pack without a row). 0 or RTCMS_EIO. */
int catalog_pack_usage(struct catalog *cat, uint64_t pack, uint64_t *records,
		       uint64_t *bytes);

/* The places in pack, by offset, with their chunks' sizes, into *out
 * (malloc'ed, *n of them; NULL when none). 0, RTCMS_ENOMEM, RTCMS_EIO. */
int catalog_pack_locs(struct catalog *cat, uint64_t pack, struct chunk_rec **out, size_t *n);

/* Forget pack (its file is gone; no place points to it). 0 or RTCMS_EIO. */
int catalog_pack_forget(struct catalog *cat, uint64_t pack);

/* The size of referenced chunk hash into *size (0 if none references
 * it). 0 or RTCMS_EIO. */
int catalog_chunk_size(struct catalog *cat, const uint8_t hash[PROTO_HASH_SIZE],
		       uint64_t *size);

/* The highest pack id the rows name (0 if none). 0 or RTCMS_EIO. */
int catalog_pack_max(struct catalog *cat, uint64_t *max);

/* ---- chunks by data key ---------------------------------------------------- */

/*
 * The referenced chunks per data key id (0: plain chunks), from key id
 * `from` up, in key id order: at most PROTO_KEYS_MAX entries into r->keys
 * (*more if further key ids follow), and those whose key id is not
 * recorded (rows from before it was) into r->unknown_*. 0 or RTCMS_EIO.
 */
int catalog_keys(struct catalog *cat, uint32_t from, struct proto_keys_reply *r, bool *more);

/* Call fn for every referenced chunk whose key id is not recorded. 0 or
 * RTCMS_EIO. */
int catalog_chunks_unkeyed(struct catalog *cat, catalog_chunk_fn fn, void *ctx);

/* Record chunk hash's key id where it is not recorded (a mutation). 0 or
 * RTCMS_EIO. */
int catalog_chunk_set_key(struct catalog *cat, const uint8_t hash[PROTO_HASH_SIZE],
			  uint32_t key_id);

/* ---- listing, counts, fences, managers --------------------------------- */

/* store_list() on one database: the number of entries or RTCMS_EIO. */
int catalog_list(struct catalog *cat, uint64_t node, const char *process,
		 uint32_t offset, uint16_t limit, struct proto_list_entry *entries,
		 bool *more);

/* Fill r->processes, checkpoints, chunks and bytes. 0 or RTCMS_EIO. */
int catalog_counts(struct catalog *cat, struct proto_scrub_reply *r);

/* Persisted node fences and managers (store.h). 0 or RTCMS_EIO. */
int catalog_fence_save(struct catalog *cat, uint64_t node, uint64_t gen, uint32_t hold_ms);
int catalog_fence_delete(struct catalog *cat, uint64_t node);
int catalog_fences_load(struct catalog *cat, store_fence_fn fn, void *ctx, uint64_t *gen);
int catalog_manager_save(struct catalog *cat, const char *name, uint32_t lease_ms);

/* Record data key id's check value unless one is recorded (in meta, as
 * "datakey.<id>"). 0 or RTCMS_EIO. */
int catalog_datakey_record(struct catalog *cat, uint32_t id, uint64_t kcv);

/* The recorded check value of data key id: 0 and *kcv, *found; RTCMS_EIO. */
int catalog_datakey_get(struct catalog *cat, uint32_t id, uint64_t *kcv, bool *found);
int catalog_managers_load(struct catalog *cat, store_manager_fn fn, void *ctx);

#endif
