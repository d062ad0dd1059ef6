/*
 * pack.h - a mirror's packs (the format: packfile.h): where its chunks are
 * written, one record after another, instead of a file each.
 *
 *  - Writing: a record's place is reserved under st->mu at the end of the
 *    mirror's write pack (pack_reserve; a new pack is begun when it would
 *    pass the size limit), written with pwrite outside the lock
 *    (pack_write), and reported back under it (pack_done). Concurrent
 *    writes of a mirror so never overlap, and nothing is written in
 *    place: a pack only grows, and a record is never rewritten.
 *  - Durability: pack_flush() fdatasyncs every pack of the mirror written
 *    since its last flush (and the packs directory once after a pack was
 *    begun). A place is committed to the mirror's meta.db only after its
 *    record was flushed: a PUT's in its commit transaction (it was
 *    pending until then: catalog_pending_add), a batch's (pack_batch:
 *    repairs, the resync, compaction) in one transaction of their own. A
 *    crash between the append and the commit leaves dead bytes.
 *  - Packs are open while they are written, and until their last write is
 *    flushed and no uncommitted record (a batch's) is in them; only closed
 *    packs without pending places are compacted or removed.
 *  - Compaction (pack_compact, from store_compact on the thread pool):
 *    a pack no place points into is unlinked; one whose live records take
 *    less than half of it is copied: its live records are read, verified
 *    and appended to the write pack, flushed, their places moved in one
 *    transaction, then the old pack is unlinked.
 *  - A mirror whose meta.db was replaced by another mirror's copy finds
 *    its chunks again by scanning its packs' record headers (pack_reindex).
 *
 * State lives in struct packs inside the mirror (store_int.h) and is
 * guarded by st->mu like the rest of the mirror.
 */
#ifndef RTCMS_STORE_PACK_H
#define RTCMS_STORE_PACK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "catalog.h"
#include "packfile.h"

struct store;
struct mirror;
struct pack_open;

/* A pack is begun anew when a record would take it past this size
 * (store_options.pack_size overrides it: tests). */
#define PACK_SIZE_DEFAULT ((uint64_t)64 << 20)

/* A pack whose live records take less than 1/PACK_COMPACT_RATIO of it
 * is compacted; at most PACK_COMPACT_PASS packs per mirror in one pass. */
#define PACK_COMPACT_RATIO 2
#define PACK_COMPACT_PASS 4
#define PACK_STUCK_MAX 16

struct packs {
	struct pack_open **open;      /* the write pack last; the others wait */
	size_t nopen, cap;
	uint64_t next_id;             /* the id of the next pack begun */
	uint64_t limit;               /* PACK_SIZE_DEFAULT or the option */
	bool busy;                    /* a compaction or re-index runs on it */
	/* packs a compaction could not empty (a damaged record stays until a
	 * repair moves it): not copied again until then, or the next open */
	uint64_t stuck[PACK_STUCK_MAX];
	size_t nstuck;
	bool stale;                   /* meta.db was replaced: pack_reindex due */
};

/* A place reserved for one record (pack_reserve). */
struct pack_slot {
	struct pack_open *po;
	int fd;
	struct chunk_loc loc;
};

/* Set up m's packs (packs directory prepared): the next id after every
 * pack there and every one its meta.db names. limit 0: the default. No
 * pack is open until the first write. 0 or RTCMS_EIO. Alone (open). */
int pack_init(struct store *st, struct mirror *m, uint64_t limit);

/* Close m's open packs (no write in flight). */
void pack_fini(struct mirror *m);

/* Under st->mu: reserve the place of a record of a stored form of len
 * bytes in m's write pack, beginning a pack if needed. 0 and *slot, or
 * RTCMS_EIO / RTCMS_ENOSPC (a pack could not be begun). */
int pack_reserve(struct store *st, struct mirror *m, size_t len, struct pack_slot *slot);

/* Without st->mu: write the record of chunk hash (enc: its stored form,
 * chunkfile_encode) at the reserved place. 0, RTCMS_EIO, RTCMS_ENOSPC. */
int pack_write(const struct mirror *m, const struct pack_slot *slot,
	       const uint8_t hash[PROTO_HASH_SIZE], const struct chunkfile_enc *enc);

/* Under st->mu: the write at slot finished with rc. A failed write ends
 * the pack (the next record begins another). With hold, the pack stays
 * open until pack_release() (a batch's record, not committed yet). */
void pack_done(struct mirror *m, const struct pack_slot *slot, int rc, bool hold);

/* Under st->mu: a held record's place was committed or given up. */
void pack_release(struct mirror *m, struct pack_open *po);

/* Without st->mu: make every record written to m so far durable (the
 * packs written since their last flush, fdatasync each; the packs
 * directory if a pack was begun). 0 or RTCMS_EIO (also for a pack whose
 * file was removed meanwhile: it takes no more records). */
int pack_flush(struct store *st, struct mirror *m);

/* Under st->mu: pack id's file was found missing (removed behind the
 * store's back): if it is open, no record goes into it any more. */
void pack_gone(struct mirror *m, uint64_t id);

/* Without st->mu: read and verify the record at loc (chunk hash of size
 * bytes) as chunkfile_read() does. 0, RTCMS_ENOENT (no such pack: a
 * compaction may have moved the chunk; look its place up again),
 * RTCMS_ECORRUPT, RTCMS_ENOMEM, RTCMS_EIO. */
int pack_read(const struct mirror *m, const struct chunk_loc *loc,
	      const uint8_t hash[PROTO_HASH_SIZE], size_t size, uint8_t *buf, size_t *len);

/* Whether loc's pack is there and long enough for its record (not read). */
bool pack_present(const struct mirror *m, const struct chunk_loc *loc);

/* ---- batches: records whose places commit together ------------------------ */

struct pack_batch_rec {
	uint8_t hash[PROTO_HASH_SIZE];
	struct chunk_loc loc, from;   /* from: compaction's old place */
	struct pack_open *po;
};

struct pack_batch {
	struct mirror *m;
	bool move;                    /* compaction: move each from -> loc if
				       * it is still at from; else set loc */
	struct pack_batch_rec *r;
	size_t n, cap;
};

/* Without st->mu: append chunk hash's record (enc) to b's mirror and
 * remember it (from: the place it moves from, for a moving batch). 0, or
 * a write's error (nothing remembered). */
int pack_batch_add(struct store *st, struct pack_batch *b,
		   const uint8_t hash[PROTO_HASH_SIZE], const struct chunkfile_enc *enc,
		   const struct chunk_loc *from);

/* Without st->mu: flush the mirror, then commit every place of the batch
 * in one transaction of its meta.db (durable); *done (if set) counts the
 * places set or moved. The batch is empty afterwards, whatever the
 * result. 0 or RTCMS_EIO (the places stay as they were: the records are
 * dead bytes). */
int pack_batch_commit(struct store *st, struct pack_batch *b, size_t *done);

/* Give up a batch's records (dead bytes) and free it. Takes st->mu. */
void pack_batch_free(struct store *st, struct pack_batch *b);

/* ---- maintenance ----------------------------------------------------------- */

/* What a compaction pass did on one mirror. */
struct pack_compact_stats {
	uint32_t removed;             /* packs unlinked */
	uint32_t compacted;           /* of them, copied first */
	uint64_t moved;               /* records copied */
	uint64_t reclaimed;           /* bytes the unlinked packs took */
	bool more;                    /* packs left for another pass */
};

/* Without st->mu: one compaction pass over m (see above). 0 or a negative
 * code (what was done stays done). */
int pack_compact(struct store *st, struct mirror *m, struct pack_compact_stats *out);

/* Without st->mu: re-index m (its meta.db was just replaced by a copy of
 * another mirror's): forget the places the copy brought and record those
 * of m's own packs, for the chunks the metadata references (of several
 * records of one chunk, the last good one). *found: the places recorded.
 * 0 or a negative code. */
int pack_reindex(struct store *st, struct mirror *m, uint64_t *found);

/* At open, with trustworthy metadata: unlink m's packs no place points
 * into; the number removed. */
uint64_t pack_sweep(struct store *st, struct mirror *m);

/* Whether m holds at least one pack. */
bool pack_any(const char *dir);

#endif
