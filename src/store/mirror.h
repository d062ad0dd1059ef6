/*
 * mirror.h - replication to every mirror (RAID-1): mirror handles, their
 * online state, metadata transactions applied to every online mirror's
 * catalog, chunk writes and flushes fanned out to all of them, and the
 * mirror's directory itself (identity file, meta.db files, the scan and
 * reconciliation at open, taking a failed mirror back). A mirror's copy
 * of a chunk is its inline copy in the mirror's meta.db (small PUTs) if
 * it has one, else its record in the mirror's packs (pack.h: where the
 * meta.db says), else its chunk file (the layout before packs); the
 * mirror_chunk_* calls look in that order. New chunks go to packs only.
 *
 * Chunk files go through a backend (struct mirror_backend): the engine
 * (put, get, repair, gc) never calls chunkfile.c itself; each mirror's
 * identity file, meta.db and packs stay in its directory. Only the
 * directory backend exists: it reads, finds and removes the chunk files
 * that mirrors written before packs hold.
 *
 * struct mirror's layout is in store_int.h; locking is described there.
 */
#ifndef RTCMS_STORE_MIRROR_H
#define RTCMS_STORE_MIRROR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "chunkfile.h"
#include "proto/msg.h"

struct store;
struct mirror;
struct catalog;

/* Where a mirror's chunk files live. Every call gets the handle open()
 * gave; all return 0 or a negative RTCMS_E* code unless said otherwise,
 * and must be thread-safe (called concurrently without st->mu). */
struct mirror_backend {
	const char *name;
	/* Open the backend at where (the mirror's configured location). */
	int (*open)(const char *where, void **be);
	void (*close)(void *be);
	/* Make the mirror's directory ready (create what is missing). */
	int (*prepare)(void *be);
	/* Check that it takes writes (before a failed mirror is taken back). */
	int (*probe)(void *be);
	/* Whether it holds at least one chunk (a chunk file or a pack). */
	bool (*any)(void *be);
	/* Whether chunk hash of size bytes is stored (not read). */
	bool (*present)(void *be, const uint8_t hash[PROTO_HASH_SIZE], size_t size);
	/* Read and verify a chunk's stored form into buf (CHUNKFILE_MAX),
	 * its length into *len: 0, RTCMS_ENOENT, RTCMS_ECORRUPT, ... */
	int (*read)(void *be, const uint8_t hash[PROTO_HASH_SIZE], size_t size,
		    uint8_t *buf, size_t *len);
	/* Remove a chunk (missing is fine). */
	void (*remove)(void *be, const uint8_t hash[PROTO_HASH_SIZE]);
	/* Remove temporary leftovers and every chunk keep() says false to;
	 * returns how many were removed. */
	uint64_t (*sweep)(void *be, bool (*keep)(void *ctx, const uint8_t *hash),
			  void *ctx);
};

/* Chunk files in the mirror's directory (chunkfile.h). */
extern const struct mirror_backend mirror_dir_backend;

/* Set up m for directory path (no I/O). 0 or RTCMS_ECONFIG (too long). */
int mirror_init(struct mirror *m, const char *path);

/* Close m's catalog and backend. */
void mirror_close(struct mirror *m);

/* ---- online state (all under st->mu) -------------------------------------- */

/* The first online mirror (reads come from its catalog), or NULL. */
struct mirror *mirror_primary(struct store *st);

size_t mirror_online_count(struct store *st);

/* The online mirrors into out (STORE_MAX_MIRRORS entries); their count. */
size_t mirror_online(struct store *st, struct mirror **out);

/* Take a mirror offline (logged with why); the store goes on without it. */
void mirror_offline(struct store *st, struct mirror *m, const char *why);

/* ---- metadata: one transaction on every online mirror -------------------- */

/* A mutation of one catalog: deterministic (same state + arg, same
 * result). */
typedef int (*mirror_mutation_fn)(struct catalog *cat, void *arg);

/*
 * Apply fn to every online mirror's catalog, each in one transaction that
 * also bumps the generation, then COMMIT them all in parallel. A mirror
 * whose transaction fails goes offline, and so does one whose result
 * differs from the first mirror's (its metadata diverged). Returns fn's
 * result on the first mirror that succeeded, or RTCMS_EIO if none did. A
 * refusal (a negative result other than RTCMS_EIO) on the first mirror
 * changes nothing anywhere. Call with st->mu held.
 */
int mirror_apply(struct store *st, mirror_mutation_fn fn, void *arg);

/* ---- chunks: records in packs, inline copies, chunk files ------------------- */

/*
 * Read and verify mirror m's copy of chunk hash (size bytes) into buf
 * (CHUNKFILE_MAX bytes), the stored form's length into *len: its inline
 * copy in m's meta.db if it has one (*inl set, also when that copy is
 * bad), else its record where m's meta.db places it (looked up again if
 * a compaction moved it meanwhile), else its chunk file. Takes st->mu
 * for the look-ups (call without it). 0, RTCMS_ENOENT, RTCMS_ECORRUPT,
 * RTCMS_EIO.
 */
int mirror_chunk_read(struct store *st, struct mirror *m, const uint8_t hash[PROTO_HASH_SIZE],
		      size_t size, uint8_t *buf, size_t *len, bool *inl);

/* Whether m holds chunk hash inline, at a place in a pack that is there,
 * or as a chunk file (not read). Takes st->mu. */
bool mirror_chunk_stored(struct store *st, struct mirror *m,
			 const uint8_t hash[PROTO_HASH_SIZE], size_t size);

/* Write a verified stored form as m's inline copy of chunk hash (a
 * repair; durable). Takes st->mu. 0 or RTCMS_EIO. */
int mirror_chunk_write_inline(struct store *st, struct mirror *m,
			      const uint8_t hash[PROTO_HASH_SIZE], const uint8_t *form,
			      size_t len);

/* Remove a chunk's files from every mirror (offline ones too). Under
 * st->mu. */
void mirror_chunk_remove_all(struct store *st, const uint8_t hash[PROTO_HASH_SIZE]);

/* Remove a chunk no checkpoint references: its files everywhere, its
 * inline copies and its places in the packs on the online mirrors. Under
 * st->mu. */
void mirror_chunk_drop_all(struct store *st, const uint8_t hash[PROTO_HASH_SIZE]);

/* Under st->mu: forget the pending places of chunk hash on every mirror
 * (no open PUT uses it any more). */
void mirror_chunk_unpend_all(struct store *st, const uint8_t hash[PROTO_HASH_SIZE]);

/*
 * Write a verified chunk of size bytes, its stored form data[0..len)
 * (chunkfile.h), to the mirrors ms[0..n) (a snapshot of the online ones),
 * skipping those that hold it already (a committed or pending place, or a
 * chunk file; inline copies are not looked at: a big PUT writes a record
 * of a chunk kept inline): encoded once with the store's compression,
 * appended to each one's packs and recorded as pending (the PUT's commit
 * makes the place its own). Without st->mu (takes it for the look-ups,
 * the reservations and to take a failed mirror offline). *disk_len gets
 * the size of the stored form written where it was new (0 if every
 * mirror had it). Returns 0 if some mirror holds the chunk now,
 * RTCMS_ENOSPC if every write failed on a full disk (no mirror is taken
 * offline then), else the failure.
 */
int mirror_write_all(struct store *st, struct mirror *const *ms, size_t n,
		     const uint8_t hash[PROTO_HASH_SIZE], size_t size, const uint8_t *data,
		     size_t len, size_t *disk_len);

/* mirror_write_all() of a sealed chunk as it came: its header (key id,
 * sum) and its size + PROTO_CHUNK_TAG sealed bytes, written as they are. */
int mirror_write_sealed(struct store *st, struct mirror *const *ms, size_t n,
			const uint8_t hash[PROTO_HASH_SIZE], size_t size, uint32_t key_id,
			const uint8_t sum[PROTO_CHUNK_SUM], const uint8_t *sealed,
			size_t *disk_len);

/* Flush the mirrors ms[0..n) at once (pack_flush: mirrors on different
 * disks flush in parallel); rc[i] gets each result. Without st->mu. */
void mirror_sync(struct store *st, struct mirror *const *ms, size_t n, int *rc);

/* ---- opening and taking back ---------------------------------------------- */

/*
 * store_open's work on the mirrors: look at every mirror before changing
 * anything, pick the newest trustworthy metadata, copy it over missing,
 * unreadable, stale and diverged copies (such a mirror then finds its
 * own chunks again in its packs: pack_reindex), set up every mirror's
 * packs, and bring the usable mirrors online. *have_meta says whether any
 * mirror had trustworthy metadata. 0, RTCMS_EIO (no usable mirror) or
 * RTCMS_ECORRUPT (chunks but no metadata anywhere: nothing removed).
 * Logged.
 */
int mirror_open_all(struct store *st, int *have_meta);

/*
 * Take an offline mirror back: it must take writes again (probe), then it
 * gets a copy of the primary's metadata (without the primary's places:
 * m->pk.stale is set) and goes online; the caller (a repairing scrub)
 * re-indexes its packs and fills in the chunks it lacks. Only while no
 * PUT is open. Call with st->mu held. 0 or a negative RTCMS_E* code
 * (logged).
 */
int mirror_revive(struct store *st, struct mirror *m);

#endif
