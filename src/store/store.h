/*
 * store.h - the checkpoint store engine behind rtcms-store (the NAS).
 *
 * Synchronous and thread-safe: the daemon calls these from libuv's thread
 * pool. Layout on every mirror directory M (RAID-1: all mirrors hold the
 * same files):
 *
 *   M/MIRROR               identity file: "rtcms-mirror v1 <uuid>\n"
 *   M/meta.db              SQLite (WAL, synchronous=FULL): processes,
 *                          checkpoints, their chunk lists, chunk refcounts,
 *                          claims; one copy per mirror, every transaction
 *                          applied to each
 *   M/packs/<16 hex>.pack  pack files: append-only, one record per chunk
 *                          (its id, then its stored form: raw,
 *                          zstd-compressed where that is smaller, or
 *                          sealed; packfile.h, chunkfile.h); each
 *                          mirror's meta.db records where its chunks are
 *   M/chunks/ab/<hex>      chunk files of the layout before packs, named
 *                          by the chunk's id: still read, no longer written
 *
 * A chunk's record is appended and flushed (fdatasync of the packs written)
 * on every online mirror before the transaction that references it (and
 * records its place) commits, and a checkpoint becomes visible only when
 * that transaction commits: an acknowledged PUT survives kill -9 and
 * power loss; a half-received PUT is never visible. A small PUT
 * (inline_max) writes no record: its new chunks go into meta.db's
 * inline_chunks in that same transaction, in the same stored form, under
 * the same id. Reads verify each chunk's hash (a sealed one's sum), in a
 * pack, inline or in a chunk file, and fall back to, and repair from,
 * another mirror.
 *
 * Delta checkpoints: a checkpoint is a full image (base 0, depth 0) or a
 * delta image (area/delta.h) against an earlier sequence `base` of the
 * same process and incarnation; its depth is its base's depth + 1, so a
 * chain runs from a delta down through its bases to one full image. The
 * store keeps chains whole:
 *  - a delta is accepted only while its base is stored;
 *  - retention keeps the newest `retain` checkpoints of a process, the one
 *    an open claim pins, and every checkpoint these depend on; it deletes
 *    only the others;
 *  - a single checkpoint that a remaining one is a delta against cannot be
 *    deleted (RTCMS_EBUSY); deleting a whole process removes its chains.
 * A GET of a delta assembles the full image in memory (at most
 * STORE_MAX_FULL bytes for the full images along the chain, plus its
 * largest delta) and checks the stored state hash.
 */
#ifndef RTCMS_STORE_STORE_H
#define RTCMS_STORE_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proto/msg.h"

#define STORE_MAX_MIRRORS PROTO_MIRRORS_MAX
/* Deltas in a chain at most, below the full image at its root. */
#define STORE_MAX_DEPTH 1024
/* Largest full image (and delta) a GET assembles in memory. */
#define STORE_MAX_FULL ((uint64_t)64 << 30)
/* Small PUTs: up to this many bytes (by default) in at most this many
 * chunks keep their chunks inline in meta.db (store_options.inline_max). */
#define STORE_INLINE_DEFAULT (64u << 10)
#define STORE_INLINE_CHUNKS 64

struct store;
struct store_put;
struct store_get;

/* How chunks are written (every form is always read). */
enum store_compress {
	STORE_COMPRESS_OFF = 0,       /* raw */
	STORE_COMPRESS_ZSTD = 1,      /* zstd, where that makes a file smaller */
};

#define STORE_COMPRESS_LEVEL_DEFAULT 3

struct store_options {
	const char *const *mirrors;   /* mirror directories (created if absent) */
	size_t mirror_count;          /* 1..STORE_MAX_MIRRORS */
	unsigned retain;              /* sequences kept per process (>= 1; default 2),
				       * with the checkpoints they depend on */
	/* Chunks written from now on (PUTs, repairs, resyncs): raw
	 * (default) or compressed; chunks already stored stay as they
	 * are and readable either way. */
	enum store_compress compress;
	int compress_level;           /* zstd level 1..19; 0 = default (3) */
	/* A PUT of at most inline_max bytes (and STORE_INLINE_CHUNKS chunks)
	 * keeps its new chunks inline in meta.db, written in the transaction
	 * that records the checkpoint: one flush per mirror, no record in a
	 * pack. 0 = STORE_INLINE_DEFAULT; negative: never (packs only). */
	int64_t inline_max;
	/* A pack is begun anew when a record would take it past this many
	 * bytes; 0 = PACK_SIZE_DEFAULT (64 MiB). Not a setting: tests use
	 * small packs. */
	uint64_t pack_size;
	/* Clock in unix ms; NULL = real time. Tests inject their own. */
	uint64_t (*now_ms)(void *ctx);
	void *now_ctx;
	/* Log sink for repair/resync events; NULL = silent. */
	void (*log)(void *ctx, int level, const char *msg);
	void *log_ctx;
};

/*
 * Open (or create) the store over its mirrors: create missing directories,
 * bring every mirror's meta.db to the newest generation among them, and
 * resynchronise any mirror that is new, wiped or missing chunks
 * (copying from a good mirror). A missing, unreadable (kept as
 * meta.db.bad-<ms>), stale or diverged meta.db is replaced by the newest
 * one; a mirror that cannot be used starts offline. Returns 0 and *out, or
 * RTCMS_EIO (no usable mirror) / RTCMS_ECONFIG (bad options: mirrors,
 * compression or its level, inline_max over 1 MiB) / RTCMS_ECORRUPT (no mirror
 * has readable metadata but packs or chunk files exist: nothing is
 * removed, so a meta.db can be restored), with a message through the log
 * callback.
 */
int store_open(const struct store_options *opt, struct store **out);

/* Close the store. store_free(NULL) is a no-op. */
void store_free(struct store *st);

/*
 * Begin a PUT. meta->base 0 is a full image (full_size 0 or size); else a
 * delta against sequence base (< sequence) of the same incarnation, whose
 * full image has full_size bytes; a non-zero meta->state_hash is recorded
 * and checked when a GET assembles the image. Returns 0 and *out (a handle
 * to feed chunks to), or:
 *  - 0 with *out NULL if the same (process, incarnation, sequence) is
 *    already stored with the same image hash: nothing to do (idempotent
 *    PUT); *ack is filled in (ack->existed set, its depth the stored
 *    one's); also when it is
 *    stored with another image hash but the same non-zero state hash (the
 *    same state, encoded as a delta against another base, or full: two
 *    managers pulled it at once); ack then describes the stored one;
 *  - RTCMS_EEXIST if it is stored with another hash and state;
 *  - RTCMS_EFENCED if incarnation < the process' current incarnation
 *    (ack->incarnation then holds the current one); a PUT of a newer
 *    incarnation is accepted and raises the process' incarnation when it
 *    commits (older ones are fenced from then on);
 *  - RTCMS_ENOENT for a delta whose base is not stored (logged: send a
 *    full image); RTCMS_ETOOBIG for a delta that would make a chain deeper
 *    than STORE_MAX_DEPTH, or with a size or full_size over STORE_MAX_FULL;
 *  - RTCMS_EINVAL for invalid metadata (bad id, zero incarnation, a size
 *    that does not fit chunk_count * PROTO_MAX_CHUNK, base >= sequence, a
 *    delta without full_size, ...).
 * meta->spec is copied.
 */
int store_put_begin(struct store *st, const struct proto_ckpt_meta *meta,
		    struct store_put **out, struct proto_put_ack *ack);

/*
 * Check the next chunk of a PUT: in offset order, contiguous, within size,
 * and record its (offset, length, hash) for the image hash. Cheap (no
 * hashing of data); call it on the event loop thread, in arrival order,
 * before store_put_write(). Returns 0 or RTCMS_EPROTO. Not thread-safe for
 * one put.
 */
int store_put_check(struct store_put *put, const struct proto_chunk *chunk);

/*
 * Verify a checked chunk's data against its hash (RTCMS_ECORRUPT) and
 * write it to every online mirror (skipped where an identical chunk is
 * already stored); store_put_commit() makes the PUT's files durable. Several chunks of one PUT may be written concurrently
 * from different threads. A mirror whose write fails while another took
 * the chunk goes offline (the store goes on degraded); a full disk on
 * every mirror fails the chunk with RTCMS_ENOSPC and leaves the mirrors
 * online. Returns 0 or RTCMS_ECORRUPT / RTCMS_EIO / RTCMS_ENOSPC.
 */
int store_put_write(struct store_put *put, const struct proto_chunk *chunk);

/* What a PUT's chunk writes added so far (see store_put_stats()). */
struct store_put_stats {
	uint32_t new_chunks;          /* chunks written as new records (the
				       * others were stored already) */
	uint32_t inline_chunks;       /* chunks of a small PUT, kept for its
				       * commit (which stores those not stored
				       * yet inline) */
	uint64_t new_bytes;           /* their size */
	uint64_t disk_bytes;          /* the size of their stored forms (per
				       * mirror): smaller where compressed */
};

/*
 * Fill *out with what the PUT's store_put_write() calls so far added to
 * the mirrors. Call once no write of the PUT is in flight (e.g. right
 * before store_put_commit(), which frees the handle).
 */
void store_put_stats(const struct store_put *put, struct store_put_stats *out);

/*
 * Finish a PUT after all its chunks were written: check the chunk count,
 * size and image hash, commit the metadata on every mirror, apply
 * retention, and free the handle (whatever the result). Fills *ack on
 * success (ack->depth: deltas between it and a full image, 0 for a full
 * one). Returns 0, RTCMS_EPROTO (count/size), RTCMS_ECORRUPT (image hash
 * mismatch), RTCMS_EFENCED (a COMMIT raised the incarnation meanwhile),
 * RTCMS_ENOENT (a delta's base was removed meanwhile), RTCMS_EIO.
 */
int store_put_commit(struct store_put *put, uint32_t chunk_count,
		     struct proto_put_ack *ack);

/* Abandon a PUT and free the handle; nothing of it becomes visible.
 * store_put_abort(NULL) is a no-op. */
void store_put_abort(struct store_put *put);

/*
 * Open a checkpoint for reading: the given (incarnation, sequence), or the
 * latest when sequence is 0 (latest of any incarnation when incarnation is
 * 0). A full image is read as stored. A delta is served as its chain, the
 * links root first: the full image at its root, then every delta up to
 * the one asked for; the reader applies them (stream_area_sink) and checks
 * the state hash. *meta is the first link's metadata (meta->spec, the
 * checkpoint's own, points into memory owned by the handle);
 * store_get_next() reads the link's chunks, store_get_next_link() moves to
 * the next. Every chunk is pinned until the handle closes, and every
 * link's chunk list checked against its image hash. Returns 0,
 * RTCMS_ENOENT, RTCMS_ECORRUPT (a chain that is broken or inconsistent;
 * logged), RTCMS_ENOMEM, RTCMS_EIO.
 */
int store_get_open(struct store *st, const char *process, uint64_t incarnation,
		   uint64_t sequence, struct store_get **out,
		   struct proto_ckpt_meta *meta);

/*
 * Like store_get_open(), for the metadata only (cheap: no data is read,
 * no chain assembled): *meta is the checkpoint as stored, so a delta has
 * base != 0, size, chunk_count and hash of the delta image, and full_size
 * of the image it gives. store_get_next() on the handle is at its end at once.
 * Returns 0, RTCMS_ENOENT, RTCMS_ENOMEM, RTCMS_EIO.
 */
int store_get_open_meta(struct store *st, const char *process,
			uint64_t incarnation, uint64_t sequence,
			struct store_get **out, struct proto_ckpt_meta *meta);

/*
 * Read the next chunk into buf (capacity >= CHUNKFILE_MAX; a sealed chunk
 * is served sealed, with its key id and sum): verified
 * against its hash, from the first mirror with a good copy; bad or missing
 * copies on other mirrors are rewritten. Returns 0 with *chunk filled
 * (data points to buf), or 0 with *end set after the link's last chunk
 * (*chunk untouched), or
 * RTCMS_ECORRUPT if no mirror has a good copy.
 */
int store_get_next(struct store_get *g, uint8_t *buf, struct proto_chunk *chunk, bool *end);

/*
 * After the last chunk of a link: move to the next link of the chain and
 * fill *meta with it (true), or false after the last link (the checkpoint
 * asked for).
 */
bool store_get_next_link(struct store_get *g, struct proto_ckpt_meta *meta);

/* The links the read serves (1 for a full image, 0 for meta_only) and,
 * with top_sequence, the sequence of the last one (the one asked for). */
uint32_t store_get_links(const struct store_get *g, uint64_t *top_sequence);

/* Copies repaired so far by this read. */
uint32_t store_get_repaired(const struct store_get *g);

/* Close a read handle. store_get_close(NULL) is a no-op. */
void store_get_close(struct store_get *g);

/*
 * List checkpoints (metadata only), ordered by process, incarnation,
 * sequence; filter by node (0 = any) and process ("" or NULL = any); skip
 * offset entries, return at most limit in entries[]. *more is set if there
 * are further entries. An entry's size is the full image's (what a GET
 * returns, also for a delta); its hash is the stored image's. Returns the
 * number of entries or RTCMS_EIO.
 */
int store_list(struct store *st, uint64_t node, const char *process,
	       uint32_t offset, uint16_t limit,
	       struct proto_list_entry *entries, bool *more);

/*
 * Delete one checkpoint, or all of a process (its chains included) when
 * incarnation and sequence are 0. A checkpoint pinned by an open claim is
 * not deleted: RTCMS_ECLAIMED; nor one checkpoint alone that a remaining
 * checkpoint is a delta against: RTCMS_EBUSY (delete the deltas first).
 * Returns the number deleted (>= 1) or RTCMS_ENOENT.
 */
int store_delete(struct store *st, const char *process, uint64_t incarnation,
		 uint64_t sequence);

/*
 * Claim the latest checkpoint of process for restoration, atomically.
 * Exactly one concurrent claimant wins. Claiming again by the same
 * claimant renews its lease (same claim id). Fills *ok. On RTCMS_ECLAIMED,
 * *err names the holder and the lease expiry. RTCMS_ENOENT if the process
 * has no checkpoint. The claimed checkpoint and the chain it depends on
 * are pinned (kept from DELETE and retention) until COMMIT or RELEASE,
 * even past the lease, until another claimant takes the process over.
 * flags PROTO_CLAIM_F_GAVE_UP: the program's node gave up restarting it;
 * granted once per program (counted at COMMIT). A second one is refused
 * with RTCMS_ESTATE and marks the program failed: every claim of it is
 * refused so from then on, until its checkpoints are deleted.
 */
int store_claim(struct store *st, const char *process, const char *claimant,
		uint32_t lease_ms, uint8_t flags, struct proto_claim_ok *ok,
		struct proto_error *err);

/*
 * Commit a claim: record process on new_node and increment its incarnation
 * (later PUTs with an older incarnation get RTCMS_EFENCED), and close the
 * claim. Committing an already committed claim id again returns the same
 * result (idempotent retry). RTCMS_ENOENT for an unknown claim id,
 * RTCMS_ECLAIMED if the lease expired and another claimant holds it.
 */
int store_commit(struct store *st, const char *process, uint64_t claim_id,
		 uint64_t new_node, struct proto_commit_ok *ok);

/* Node fences (fence.h keeps them in memory; these keep them across a
 * restart, on every mirror like any metadata). 0 or a negative code. */
int store_fence_save(struct store *st, uint64_t node, uint64_t gen, uint32_t hold_ms);
int store_fence_delete(struct store *st, uint64_t node);
typedef void (*store_fence_fn)(void *ctx, uint64_t node, uint64_t gen, uint32_t hold_ms);
/* Call fn for every persisted fence; *gen: the newest generation ever given. */
int store_fences_load(struct store *st, store_fence_fn fn, void *ctx, uint64_t *gen);
/* The managers ever granted a lease, with the longest lease each held. */
int store_manager_save(struct store *st, const char *name, uint32_t lease_ms);

/*
 * The check value of data key id as the cluster knows it: the one first
 * recorded (on every mirror), recording kcv if none is (*first). The store
 * never holds data keys; it keeps their check values so that an agent
 * with a wrong keyring is refused when it registers. 0 and *recorded, or
 * RTCMS_EIO.
 */
int store_datakey_check(struct store *st, uint32_t id, uint64_t kcv, uint64_t *recorded,
			bool *first);
typedef void (*store_manager_fn)(void *ctx, const char *name, uint32_t lease_ms);
int store_managers_load(struct store *st, store_manager_fn fn, void *ctx);

/* Release a claim without moving the process. RTCMS_ENOENT if no such
 * open claim. */
int store_release(struct store *st, const char *process, uint64_t claim_id);

/*
 * Verify every byte of every referenced chunk on every mirror (offline ones
 * too); with repair, first try to take offline mirrors back (they must
 * take writes again, and no PUT may be open; their metadata is copied from
 * the primary), then rewrite missing or corrupt copies from a good one.
 * Fills *report. 0, RTCMS_EIO or RTCMS_ENOMEM.
 */
int store_scrub(struct store *st, bool repair, struct proto_scrub_reply *report);

/* What a compaction pass did, summed over the mirrors. */
struct store_compact_stats {
	uint32_t removed;             /* packs unlinked */
	uint32_t compacted;           /* of them, their live records copied first */
	uint64_t moved;               /* records copied */
	uint64_t reclaimed;           /* bytes the unlinked packs took */
};

/* Whether garbage collection freed records since the last compaction pass
 * began (or a pass left work): cheap, takes no lock. */
bool store_compact_due(struct store *st);

/*
 * One compaction pass over every online mirror's packs: a pack no
 * referenced chunk is in is unlinked; one whose live records take less
 * than half of it has them copied to the write pack (read and verified
 * first), flushed, their places moved in one transaction, and is then
 * unlinked. Nothing blocks meanwhile but the records' reservations; reads
 * of a moved chunk find its new place. Blocks on the disks (call it from
 * the thread pool); one pass at a time (a second call returns at once).
 * Fills *out (if set). 0 or a negative code (logged).
 */
int store_compact(struct store *st, struct store_compact_stats *out);

/* Counts and mirror states without reading data. */
int store_status(struct store *st, struct proto_scrub_reply *report);

/*
 * The chunks retained checkpoints reference, per data key id that seals
 * them (0: plain chunks), from key id `from` up in key id order (a page
 * of at most PROTO_KEYS_MAX; *more: ask again from the last id + 1): how
 * many distinct chunks and bytes (plaintext) each key still seals, read
 * from the metadata (no key, no chunk data). A key id not listed seals
 * nothing kept. 0 or RTCMS_EIO.
 */
int store_keys(struct store *st, uint32_t from, struct proto_keys_reply *out, bool *more);

/*
 * Which mirrors are online, without waiting: the count into *online, the
 * total into *total, and the first offline mirror's directory into
 * offline (len bytes; "" if none). Returns false, telling nothing, if
 * the store is busy (a transaction holds it): for the daemon's loop,
 * which must not wait on a disk.
 */
bool store_mirrors_peek(struct store *st, size_t *online, size_t *total, char *offline,
			size_t len);

#endif
