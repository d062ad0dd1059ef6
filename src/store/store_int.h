/*
 * store_int.h - the store engine's internals: struct layouts and the
 * prototypes its files share. Not for the daemon (server.c, main.c),
 * which uses store.h only.
 *
 * THREADS AND LOCKS
 *
 * Who calls the engine:
 *  - the event loop thread of rtcms-store (server.c) calls only
 *    store_put_check(), which touches nothing but its PUT handle;
 *  - the worker threads of libuv's pool (server.c queues every other
 *    call there: store_put_begin/write/commit, GETs, LIST, DELETE, CLAIM,
 *    COMMIT, RELEASE, fences, scrub, status). Several run at once: chunk
 *    writes of one PUT may run concurrently, and reads and writes of
 *    chunks (packs, chunk files) run outside the lock;
 *  - store_open() and store_free() run alone, before the pool starts and
 *    after it stopped (main.c). store_open()'s resync runs there too;
 *  - short-lived threads of parallel_run() (mirror.c), one per extra
 *    mirror, which only COMMIT one catalog or flush one mirror and are
 *    joined before the call that made them returns.
 * There is no repair, scrub or compaction thread of its own: read repair
 *    runs in the worker reading the chunk (repair.c), a scrub in the
 *    worker that serves SCRUB, a compaction pass (store_compact) in a
 *    worker the daemon queues when garbage collection freed records.
 *
 * The lock: one mutex, st->mu. It guards every catalog (all SQL: the
 * catalogs are opened SQLITE_OPEN_NOMUTEX), the mirrors' online state,
 * counters and packs (struct packs: which packs are open, the write
 * pack's end, where the next record goes), st->pins, st->open_puts,
 * st->deferred and st->compacting. It is a leaf lock: nothing else is
 * taken while it is held, and it is never held across a chunk read or
 * write, in a pack or a chunk file (the chunks in use are pinned instead;
 * a record's place in a pack is reserved under it, then written and
 * flushed without it), only across metadata transactions (whose
 * per-mirror COMMITs run in parallel), the creation of a pack, and chunk
 * file unlinks of garbage collection. An inline chunk (a small
 * PUT's, in a mirror's meta.db) is read and rewritten under it, one copy
 * at a time (at most 64 KiB plus a header), and verified outside it. A PUT handle's counters
 * are atomics (written by concurrent chunk writes); the rest of a handle
 * belongs to its one caller at a time.
 *
 * The metrics (stats.h: PUT outcomes, claims, mirror states, repairs) are
 * relaxed atomics raised by whichever thread does the work, under st->mu
 * or not; rtcms-store's metrics endpoint thread only reads them and takes
 * no lock of the engine's.
 */
#ifndef RTCMS_STORE_STORE_INT_H
#define RTCMS_STORE_STORE_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "catalog.h"
#include "mirror.h"
#include "pack.h"
#include "pinset.h"
#include "store.h"
#include "stream/stream.h"

/* One mirror: a handle the engine passes around (never its path). */
struct mirror {
	char path[PROTO_TEXT_MAX + 1]; /* its directory (MIRROR, meta.db, packs) */
	const struct mirror_backend *be; /* its chunk files (the layout before packs) */
	void *be_state;               /* the backend's handle for it */
	struct catalog *cat;          /* its meta.db, or NULL */
	struct packs pk;              /* its packs: the write pack, ... (pack.h) */
	int online;
	uint32_t repaired;            /* copies rewritten since start */
};

/* Hashes of chunks to unlink (garbage collection). */
struct victim_list {
	uint8_t (*hash)[PROTO_HASH_SIZE];
	size_t n, cap;
};

struct store {
	struct mirror m[STORE_MAX_MIRRORS];
	size_t n;
	unsigned retain;
	int zlevel;                   /* new records: 0 raw, else zstd level */
	uint64_t inline_max;          /* small PUTs go inline; 0 never */
	uint64_t pack_size;           /* packs are begun anew at this size */
	atomic_bool compact_due;      /* garbage collection freed records */
	bool compacting;              /* store_compact() runs */
	pthread_mutex_t mu;
	uint64_t (*now_ms)(void *);
	void *now_ctx;
	void (*log)(void *, int, const char *);
	void *log_ctx;
	struct pinset pins;           /* chunks open PUTs/GETs/scrubs use */
	uint32_t open_puts;           /* PUT handles not yet committed/aborted */
	struct victim_list deferred;  /* unreferenced but pinned: unlink later */
};

struct store_put {
	struct store *st;
	struct proto_ckpt_meta meta;  /* meta.spec points to spec */
	uint8_t *spec;
	struct chunk_ref *chunks;     /* in offset order */
	uint32_t count;
	uint32_t cap;
	/* the stream's order, bounds, count and image hash; each chunk's
	 * data is checked against its id by store_put_write() */
	struct stream_verifier v;
	int failed;
	/* hashes this PUT pinned (in store_put_write, under st->mu): exactly
	 * these are unpinned at the end, never a chunk only checked */
	uint8_t (*pinned)[PROTO_HASH_SIZE];
	uint32_t npinned, pinned_cap;
	/* store_put_stats(): added by concurrent writes */
	atomic_uint_least32_t new_chunks;
	atomic_uint_least64_t new_bytes, disk_bytes;
	/* A small PUT (inl): no record; each chunk's stored form is
	 * kept in ibuf by store_put_write() (concurrent writes take their
	 * places through the atomics) for the commit's transaction. */
	bool inl;
	uint8_t *ibuf;                /* size + chunk_count * SEALED_EXTRA bytes */
	struct put_form *forms;       /* chunk_count places */
	atomic_uint_least32_t nforms;
	atomic_uint_least64_t ibuf_used;
};

/* A small PUT's chunk, kept in its ibuf. */
struct put_form {
	uint8_t hash[PROTO_HASH_SIZE];
	uint64_t off;
	uint32_t len;
};

/* One checkpoint of a chain, its chunks pinned. */
struct chain_link {
	struct ckpt_row row;
	struct chunk_ref *chunks;
	uint32_t pinned;
};

/* links[0] is the checkpoint asked for, links[n - 1] the full image at the
 * root of its chain (n is 1 for a full image), each link a delta against
 * the next. */
struct chain {
	struct chain_link *links;
	size_t n, cap;
};

struct store_get {
	struct store *st;
	char process[PROTO_ID_MAX + 1];
	uint8_t *spec;                /* the checkpoint's, sent with every link */
	uint32_t spec_len;
	struct chain *chain;          /* NULL for meta_only */
	size_t link;                  /* the link being read, 0 = the root */
	uint32_t next;                /* its next chunk */
	uint32_t repaired;
};

/* ---- store.c: small helpers ---------------------------------------------- */

/* Log through the options' sink (nothing without one). */
void store_log(struct store *st, int level, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* The store's clock, in unix ms. */
uint64_t store_now(struct store *st);

/* The first 8 bytes of a hash as 16 hex digits, into buf; returns buf. */
const char *store_hex(const uint8_t *h, char buf[17]);

/* Fill r with the primary's counts and the mirrors' states. Call with
 * st->mu held. 0 or RTCMS_EIO. */
int store_counts(struct store *st, struct proto_scrub_reply *r);

/* ---- get.c: pinned chunk lists ------------------------------------------- */

/*
 * Load the chunk list of a checkpoint (count entries) from cat into *out
 * (malloc'ed; NULL when count is 0) and pin each chunk; *pinned says how
 * many were pinned, also on failure (the caller unpins them with
 * store_chunks_unpin and frees *out). Call with st->mu held. 0,
 * RTCMS_ENOMEM, RTCMS_EIO.
 */
int store_chunks_pin(struct store *st, struct catalog *cat, const char *process,
		     uint64_t inc, uint64_t seq, uint32_t count,
		     struct chunk_ref **out, uint32_t *pinned);

/* Unpin n chunks of a list. Call with st->mu held. */
void store_chunks_unpin(struct store *st, const struct chunk_ref *c, uint32_t n);

/* ---- chain.c: delta chains ------------------------------------------------ */

/* The depth a delta against (process, inc, base) gets: its base's depth
 * + 1. 0 and *depth, RTCMS_ENOENT if the base is not stored, RTCMS_ETOOBIG
 * if the chain would be deeper than STORE_MAX_DEPTH, RTCMS_EIO. */
int chain_delta_depth(struct catalog *cat, const char *process, uint64_t inc,
		      uint64_t base, uint32_t *depth);

/*
 * Under st->mu: load the chain of top from cat down to its full root (a
 * full image is a chain of one link), pin every chunk of it and check
 * that each link's chunk list tiles its image and gives its image hash.
 * 0 and *out (free it with chain_free, also on failure: *out may be set
 * then), RTCMS_ECORRUPT (a base is missing, a chunk list is inconsistent,
 * or the chain is deeper than STORE_MAX_DEPTH; logged), RTCMS_ENOMEM,
 * RTCMS_EIO.
 */
int chain_load(struct store *st, struct catalog *cat, const char *process,
	       const struct ckpt_row *top, struct chain **out);

/* Unpin (takes st->mu) and free a chain. chain_free(st, NULL) is a no-op. */
void chain_free(struct store *st, struct chain *c);

/* ---- gc.c: garbage collection and retention -------------------------------- */

/* Add a hash to a victim list. 0 or RTCMS_ENOMEM. */
int gc_victims_add(struct victim_list *v, const uint8_t *h);

/* A catalog_unref_fn adding to the victim list ctx. */
int gc_victim_unref(void *ctx, const uint8_t hash[PROTO_HASH_SIZE]);

/* What a mutation dropping references does (catalog_unref): victims go
 * to gc (NULL: nowhere, on mirrors after the first), inline copies of
 * pinned chunks stay. Call with st->mu held. */
void gc_unref_init(struct store *st, struct victim_list *gc, struct catalog_unref *u);

/* Unlink the files of the victims on every mirror, unless pinned (then
 * deferred); then empty the list. With committed 0 (no mirror committed)
 * only empty it. Call with st->mu held. */
void gc_files(struct store *st, struct victim_list *gc, int committed);

/* Remove the files and inline copies of the given chunks that are
 * neither pinned nor referenced any more. Call with st->mu held. */
void gc_unreferenced(struct store *st, const uint8_t (*hash)[PROTO_HASH_SIZE], size_t n);

/* Collect the deferred victims no longer pinned. Call with st->mu held,
 * after unpinning. */
void gc_deferred(struct store *st);

/*
 * Retention of a process in one catalog (inside a mutation): keep its
 * newest `retain` checkpoints, the one an open claim pins, and every
 * checkpoint these depend on; delete the others (a batch at a time),
 * their unreferenced chunks added to gc (if not NULL). *deleted counts
 * them. 0 or a negative RTCMS_E* code.
 */
int gc_retention(struct store *st, struct catalog *cat, const char *process,
		 unsigned retain, struct victim_list *gc, uint32_t *deleted);

/* Remove temporary files, chunk files, inline copies and places no
 * checkpoint references from mirror m (store_open, with trustworthy
 * metadata). */
void gc_sweep_orphans(struct store *st, struct mirror *m);

/* Remove m's packs no place points into (store_open, after the resync:
 * a pack may hold the only copy of a chunk whose place the metadata did
 * not know before its re-index). */
void gc_sweep_packs(struct store *st, struct mirror *m);

/* ---- claim.c --------------------------------------------------------------- */

/* An open claim pins (claim_inc, claim_seq) until COMMIT or RELEASE,
 * even past its lease, until someone else claims. */
bool claim_pins(const struct proc_row *r, uint64_t inc, uint64_t seq);

/* ---- repair.c: one repair for resync, read repair and scrub --------------- */

/* A copy to rewrite: its mirror, what was wrong (RTCMS_ENOENT missing,
 * else corrupt) and whether the bad copy was inline; rc gets the write's
 * result. */
struct repair_target {
	struct mirror *m;
	int bad;
	bool inl;
	int rc;
};

/*
 * THE repair: copy a good chunk (hash, its stored form of len bytes, verified
 * by the caller; inl: it is an inline copy) over the bad or missing copies
 * on targets[0..n): inline (durable) where the good or the bad copy is
 * inline, else as a fresh record in the target's packs (encoded once with
 * the store's compression) whose place replaces the old one: durable and
 * committed when this returns, or, with later (one batch per mirror,
 * indexed like st->m), added to the target's batch for the caller to
 * commit. Nothing is rewritten in place. With log_prefix (not NULL), each
 * repaired copy is logged, naming the good mirror from. Call without
 * st->mu. Returns the number of copies repaired (or added to a batch).
 */
size_t repair_chunk(struct store *st, const uint8_t hash[PROTO_HASH_SIZE],
		    const uint8_t *data, size_t len, bool inl, struct repair_target *targets,
		    size_t n, struct pack_batch *later, const char *log_prefix,
		    const struct mirror *from);

/*
 * Read chunk c's stored form into buf (CHUNKFILE_MAX bytes; *len its
 * length), verified (a plain chunk's hash, a sealed one's sum), from the
 * first online mirror with a good copy, and repair the bad or missing
 * copies met before it (counted in *repaired and the mirrors' counters).
 * Call without st->mu. 0 or RTCMS_ECORRUPT (logged).
 */
int repair_read_chunk(struct store *st, const struct chunk_ref *c, uint8_t *buf,
		      size_t *len, uint32_t *repaired);

/* Bring every online mirror's copies up to date from a good copy
 * (store_open): a chunk a mirror lacks (no inline copy, no place in a pack
 * that is there, no chunk file) is appended to its packs. With lost, the
 * number of chunks with no good copy anywhere goes there (the caller
 * decides what to do; logged as an error without). 0, RTCMS_ENOMEM,
 * RTCMS_EIO. */
int repair_resync(struct store *st, uint64_t *lost);

/* Record the key id of every chunk whose key id is not recorded (rows of
 * a meta.db from before they were), read from a good copy (store_open,
 * after the resync; one transaction on every mirror). A chunk with no
 * good copy stays unknown. 0, RTCMS_ENOMEM, RTCMS_EIO. */
int repair_keys_fill(struct store *st);

#endif
