/*
 * area.h - the checkpoint area: shared memory that librtcms (the writer,
 * inside the protected program) fills and the node agent (the reader)
 * copies out. libc and C11 atomics only: librtcms links it.
 *
 * Layout (all fields native-endian: the area never leaves the node):
 *
 *   struct area_header      magic, version, sizes, the committed pointer
 *   slot 0                  struct area_slot (region table), block
 *                           versions (u64 per AREA_BLOCK of data), data
 *   slot 1                  the same
 *
 * Double buffering with a commit pointer written last:
 *   writer: picks the slot that is NOT committed, bumps its generation to
 *           odd (release), writes the region table and data, bumps the
 *           generation to even (release), then publishes
 *           committed = (sequence, slot) (release).
 *   reader: loads committed (acquire), reads the slot's generation g1
 *           (acquire), copies, reads the generation again (after an acquire
 *           fence) as g2; the copy is valid only if g1 == g2, g1 is even and
 *           the slot still holds that sequence. Otherwise the writer came by
 *           and the reader retries: a torn checkpoint is never accepted.
 * The writer never waits for the reader (real time); a reader that keeps
 * losing the race gets RTCMS_EAGAIN and tries again later.
 *
 * Incremental checkpoints: a slot's versions[b] is the sequence at which
 * data block b last changed. The writer refills the stale slot (it holds
 * the checkpoint before the committed one) with only the blocks that
 * changed since that checkpoint - those changed now and those the
 * committed slot records as changed after the stale one's sequence - so a
 * checkpoint copies about twice what changed, not the whole state. A
 * reader that captured sequence s before needs only the blocks whose
 * version is above s.
 */
#ifndef RTCMS_AREA_H
#define RTCMS_AREA_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define AREA_MAGIC        0x52544341u /* "RTCA" */
#define AREA_VERSION      3
#define AREA_MAX_REGIONS  64
#define AREA_ALIGN        64
/* Unit of incremental checkpoints: a region sits in a slot's data at the
 * same offset within a block as within its memory page (blocks follow
 * pages), and every slot records per block the sequence at which the
 * block's content last changed. */
#define AREA_BLOCK        4096u

struct area_region {
	uint32_t id;          /* the program's region id */
	uint32_t reserved;
	uint64_t size;        /* bytes */
	uint64_t offset;      /* from the start of the slot's data */
};

struct area_slot {
	_Atomic uint64_t gen;     /* odd while being written */
	uint64_t sequence;        /* checkpoint sequence held (0 = none) */
	uint64_t data_size;       /* bytes of data in use */
	uint32_t region_count;
	uint32_t reserved;
	struct area_region regions[AREA_MAX_REGIONS];
};

struct area_header {
	uint32_t magic;
	uint32_t version;
	uint64_t total_size;      /* whole mapping */
	uint64_t slot_size;       /* each slot, header included */
	uint64_t slot_offset[2];
	uint64_t blocks;          /* data capacity of each slot in AREA_BLOCKs */
	/* committed: sequence << 1 | slot; 0 = nothing committed yet */
	_Atomic uint64_t committed;
	/* reserved for the agent's lease (fencing, a later issue) */
	_Atomic uint64_t lease_until_ms;
	/* set by librtcms once a restored program refilled its regions and
	 * goes on: the sequence it resumed from */
	_Atomic uint64_t resumed;
	/* agent -> library requests (AREA_CTL_*) */
	_Atomic uint32_t control;
	/* library -> agent requests (AREA_REQ_*) */
	_Atomic uint32_t request;
	/* set by librtcms just before it stops itself for AREA_CTL_FREEZE:
	 * the sequence of the final checkpoint it committed */
	_Atomic uint64_t frozen;
};

/* control: the agent asks the program to take one more checkpoint at its
 * next consistency point and then stop itself (SIGSTOP) right after the
 * commit, so the final checkpoint holds everything it did (migration). */
#define AREA_CTL_FREEZE 1u

/* request: the program asks to be moved to another node (load balancing,
 * the thesis' op 2 from the program's side); the agent clears it and asks
 * a manager. */
#define AREA_REQ_MIGRATE 1u

/* Bytes needed for an area whose slots hold data_capacity bytes each. */
size_t area_size_for(uint64_t data_capacity);

/*
 * Format mem (len bytes, zeroed or not) as an empty area. Returns 0, or
 * RTCMS_EINVAL if len is too small for the header and two slots.
 */
int area_format(void *mem, size_t len);

/* Check that mem holds a formatted area of len bytes. 0 or RTCMS_EPROTO. */
int area_check(const void *mem, size_t len);

/* Data capacity of each slot in bytes (a multiple of AREA_BLOCK). */
uint64_t area_data_capacity(const void *mem);

/* Round v up to a whole number of AREA_BLOCKs (region placement). */
uint64_t area_block_round(uint64_t v);

/*
 * Writer side. One writer at a time (librtcms serialises its callers).
 * area_write_begin() returns the slot to fill (the one not committed) and
 * marks it as being written; area_write_commit() publishes it as sequence.
 */
struct area_slot *area_write_begin(void *mem);
uint8_t *area_slot_data(void *mem, const struct area_slot *slot);
/* The slot's block versions: area_data_capacity() / AREA_BLOCK entries. */
uint64_t *area_slot_versions(void *mem, const struct area_slot *slot);
/* Writer side: the committed slot (NULL if nothing is committed). Only the
 * writer changes slots, so it may read this one without the seqlock. */
struct area_slot *area_committed_slot(void *mem);
/* sequence must be below 2^63 (the area stores sequence << 1 | slot). */
void area_write_commit(void *mem, struct area_slot *slot, uint64_t sequence);
/* Give up a slot begun with area_write_begin(): nothing is published. */
void area_write_abort(void *mem, struct area_slot *slot);

/* The committed sequence (0 if none), acquire. */
uint64_t area_committed_sequence(const void *mem);

/*
 * Reader side: copy the committed checkpoint into out (capacity cap bytes
 * of data) and its region table into *regions / *count (caller provides
 * AREA_MAX_REGIONS entries). Returns 0 and *sequence, RTCMS_ENOENT if
 * nothing is committed, RTCMS_EAGAIN if the writer overwrote the slot
 * during every attempt, RTCMS_ETOOBIG if out is too small, RTCMS_EPROTO if
 * the area's content is inconsistent.
 */
int area_read(const void *mem, uint8_t *out, size_t cap, uint64_t *data_size,
	      struct area_region *regions, uint32_t *count, uint64_t *sequence);

/*
 * A committed checkpoint read in place (the agent's captures and pulls):
 * which slot holds it at which (even) generation, and its layout. Its data
 * is that slot's for as long as the slot's generation is unchanged: the
 * writer makes it odd before it rewrites the slot, two commits later.
 */
struct area_snap {
	unsigned slot;
	uint64_t gen;
	uint64_t sequence;
	uint64_t data_size;
	uint32_t region_count;
	struct area_region regions[AREA_MAX_REGIONS];
};

/*
 * Describe the committed checkpoint into *snap and copy its block
 * versions (area_block_round(data_size) / AREA_BLOCK of them) into
 * versions (vcap entries), validated as area_read() validates its copy.
 * Returns 0, RTCMS_ENOENT (nothing committed), RTCMS_EAGAIN (the writer
 * came by during every attempt), RTCMS_ETOOBIG (vcap too small),
 * RTCMS_EPROTO (an inconsistent slot).
 */
int area_snap_take(const void *mem, struct area_snap *snap, uint64_t *versions, size_t vcap);

/*
 * Copy len bytes at off of snap's data into out, then check that the
 * slot still holds snap (seqlock style): only then are the bytes snap's.
 * Returns 0, RTCMS_ENOENT when the slot was rewritten meanwhile (out
 * holds garbage: the checkpoint is gone from the area), RTCMS_EINVAL for
 * a range outside the data.
 */
int area_snap_read(const void *mem, const struct area_snap *snap, uint64_t off, void *out,
		   size_t len);

/* Whether snap's slot still holds it (its generation is unchanged). */
bool area_snap_valid(const void *mem, const struct area_snap *snap);

/*
 * Install a checkpoint (region table, data of size bytes, sequence) as
 * the committed checkpoint of area mem, which nobody writes yet (before a
 * restored or restarted program starts); every block gets version seq, so
 * the program's next checkpoint is full. 0, RTCMS_EPROTO (seq 0 or a
 * region outside the data), RTCMS_ENOSPC (it does not fit).
 */
int area_load(void *mem, const struct area_region *regions, uint32_t n,
		 const uint8_t *data, uint64_t size, uint64_t seq);

/*
 * The same for data already in place: the slot s that area_write_begin()
 * gave (a restore receives the image's data straight into its
 * area_slot_data()) gets the region table and sequence and is committed.
 * On failure (the errors of area_load()) the slot is given up
 * (area_write_abort) and nothing is committed.
 */
int area_load_commit(void *mem, struct area_slot *s, const struct area_region *regions,
		     uint32_t n, uint64_t size, uint64_t seq);

/*
 * Load the committed checkpoint of area src, which nobody writes any more
 * (its program is gone), into area dst as area_load() does (a restart
 * continues from it). 0, the errors of area_committed_view() and of
 * area_load().
 */
int area_copy(void *dst, const void *src);

/*
 * The committed checkpoint in place, without a copy: *data points into the
 * area. Only for an area nobody writes (a program that restores before its
 * first checkpoint). Checks the region table lies in the data. Returns 0,
 * RTCMS_ENOENT, RTCMS_EAGAIN (a write is in progress), RTCMS_EPROTO.
 */
int area_committed_view(void *mem, const uint8_t **data, uint64_t *data_size,
			struct area_region *regions, uint32_t *count,
			uint64_t *sequence);

#endif
