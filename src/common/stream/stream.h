/*
 * stream.h - checkpoint streams: the one module that cuts a checkpoint
 * into chunks, verifies a stream of CHUNK frames, and hands verified
 * chunks to sinks (docs/protocol.md: PUT, GET, PULL and RESTORE streams).
 * This header is pure (no I/O, no threads): the chunker, the verifier,
 * the sink interface, the tee and the area installer. Sending and
 * receiving over a connection, and the network relay, are in
 * stream_net.h; the store writer is in client/store_client.h (it speaks
 * the store's PUT protocol). What a chunk is lives in chunk.h alone.
 *
 * A stream: metadata (struct proto_ckpt_meta: size, chunk count, image
 * hash, state hash, base), then chunks tiling [0, size) in offset order,
 * each 1..PROTO_MAX_CHUNK bytes and checked against its id as it arrives,
 * then an end frame with the chunk count; at the end the count, the size,
 * the image hash (and, if asked, the state hash) are checked.
 */
#ifndef RTCMS_STREAM_STREAM_H
#define RTCMS_STREAM_STREAM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "area/delta.h"
#include "area/image.h"
#include "proto/msg.h"
#include "stream/chunk.h"

/* ---- chunker: bytes to chunks with their ids --------------------------- */

/* Reads len bytes of the image at off into buf; returns 0 or an error. */
typedef int (*stream_read_fn)(void *ctx, uint64_t off, uint8_t *buf, size_t len);

/*
 * A checkpoint of size bytes cut into chunks of chunk_size bytes (the
 * last one shorter), with each chunk's id and the image hash over them.
 * Start from all zeros; building again reuses the id array when it is
 * large enough. With key set (before building; kept across builds) the
 * ids are keyed ids and the senders seal each chunk under it (chunk.h);
 * without, the chunks are plain. stream_chunks_clear() frees the ids.
 */
struct stream_chunks {
	const struct datakey *key;         /* borrowed; NULL: plain chunks */
	uint64_t size;
	uint32_t chunk_size;
	uint32_t count;
	uint8_t (*id)[STREAM_ID_SIZE];     /* count ids (owned) */
	size_t cap;                        /* ids allocated */
	uint8_t image_hash[PROTO_HASH_SIZE];
};

/* Cut size bytes in memory (hashed in place). 0, RTCMS_EINVAL (chunk_size
 * not 1..PROTO_MAX_CHUNK), RTCMS_ETOOBIG (over 2^32 chunks), RTCMS_ENOMEM;
 * on failure *k holds no chunks. */
int stream_chunks_of(struct stream_chunks *k, const uint8_t *bytes, uint64_t size,
		     uint32_t chunk_size);

/* The same through a reader, one chunk at a time into buf (chunk_size
 * bytes); also the reader's error. */
int stream_chunks_read(struct stream_chunks *k, uint64_t size, uint32_t chunk_size,
		       stream_read_fn read, void *ctx, uint8_t *buf);

/* Offset and length of chunk i (< k->count). */
void stream_chunks_span(const struct stream_chunks *k, uint32_t i, uint64_t *off,
			uint32_t *len);

/* Size, chunk count and image hash into meta (the rest is the caller's). */
void stream_chunks_meta(const struct stream_chunks *k, struct proto_ckpt_meta *meta);

/* Free the ids; *k is all zeros again but its key. NULL is a no-op. */
void stream_chunks_clear(struct stream_chunks *k);

/* ---- verifier: chunk frames in, verified chunks out -------------------- */

enum stream_verify_flags {
	/* also check the state hash (full images with a non-zero state_hash
	 * only; version 2, delta.h): hashed from the data as it arrives; a
	 * hop that gets sealed chunks it does not open cannot, and does not.
	 * A restore checks it in its area sink instead, which holds the
	 * image and takes version 1 too */
	STREAM_VERIFY_STATE = 1u << 0,
	/* a relay that neither stores nor opens the contents (the manager):
	 * sealed chunks are placed but not read, their sum and MAC are the
	 * store's to check, their AEAD the reader's */
	STREAM_VERIFY_RELAY = 1u << 1,
};

/* What a frame did to the stream: more to come, or it ended verified. */
enum stream_step { STREAM_MORE, STREAM_DONE };

/*
 * One stream's checks. Errors are sticky (every later call returns the
 * first) and say what failed:
 *   RTCMS_ETOOBIG  the image is larger than the caller's cap;
 *   RTCMS_EPROTO   a chunk out of order, out of bounds, empty, over
 *                  PROTO_MAX_CHUNK or beyond the announced count; an end
 *                  whose count or size is not the announced one; a frame
 *                  that is neither CHUNK nor the end;
 *   RTCMS_ECORRUPT a chunk whose data does not match its id (a sealed
 *                  one: its checksum); an image hash or state hash that
 *                  does not match.
 * stream_verifier_why() describes it. Fields are private.
 */
struct stream_verifier {
	struct proto_image_hash ih;
	uint64_t size;
	uint64_t next_offset;
	uint32_t expect;                   /* announced chunk count */
	uint32_t count;                    /* chunks taken */
	uint8_t hash[PROTO_HASH_SIZE];
	uint8_t state_hash[PROTO_HASH_SIZE];
	bool check_state;
	bool relay;                        /* STREAM_VERIFY_RELAY */
	int failed;
	char why[PROTO_TEXT_MAX + 1];
	struct state_hasher state;
};

/* Start verifying the stream meta describes. max_size caps meta->size
 * (0: no cap). 0 or RTCMS_ETOOBIG. */
int stream_verifier_begin(struct stream_verifier *v, const struct proto_ckpt_meta *meta,
			  uint64_t max_size, unsigned flags);

/* The chunk's place alone: order, bounds, count, and its id into the
 * image hash; not its data (for a hop that checks the data elsewhere,
 * with stream_chunk_intact(), e.g. on another thread). 0 or RTCMS_EPROTO. */
int stream_verifier_place(struct stream_verifier *v, const struct proto_chunk *chunk);

/* A whole chunk: its data against its id, then its place (and the state
 * hash over its data). 0, RTCMS_ECORRUPT or RTCMS_EPROTO. */
int stream_verifier_chunk(struct stream_verifier *v, const struct proto_chunk *chunk);

/* The end, with the chunk count its frame carries: count, size, image
 * hash, state hash. 0, RTCMS_EPROTO or RTCMS_ECORRUPT. */
int stream_verifier_end(struct stream_verifier *v, uint32_t end_count);

/*
 * A frame of the stream: CHUNK (verified whole: *step STREAM_MORE) or
 * end_type (PROTO_PUT_END or PROTO_GET_END: the end is checked, *step
 * STREAM_DONE); any other type is RTCMS_EPROTO.
 */
int stream_verifier_feed(struct stream_verifier *v, uint8_t type, const union proto_msg *m,
			 uint8_t end_type, enum stream_step *step);

/* Chunks taken so far. */
uint32_t stream_verifier_count(const struct stream_verifier *v);

/* What failed, in words ("" while nothing did; after a verified end,
 * later calls fail with RTCMS_ESTATE: "the stream has ended"). */
const char *stream_verifier_why(const struct stream_verifier *v);

/* ---- sinks: where verified chunks go ------------------------------------ */

/*
 * A sink gets begin once (the metadata), then the verified chunks in
 * order, then end (the stream verified whole, with its chunk count) or
 * abort (it failed anywhere, also in this sink: undo, release). Each
 * returns 0 or a negative RTCMS_E* code. A sink that needs no more of the
 * stream (the store holds the checkpoint already) sets done in begin or
 * chunk: it then gets nothing more, neither end nor abort. The metadata
 * (and its spec) is borrowed for the call: a sink that keeps it copies it
 * (stream_meta_keep).
 *
 * A chain (a delta served as the full image at its root, then each delta
 * in order: docs/protocol.md) is one image stream per link: begin,
 * chunks, link (that link verified whole, another follows), begin of the
 * next, ..., and end after the last. A sink without a link op takes one
 * image only: a chain fails it with RTCMS_EPROTO.
 */
struct stream_sink;
struct stream_sink_ops {
	int (*begin)(struct stream_sink *s, const struct proto_ckpt_meta *meta);
	int (*chunk)(struct stream_sink *s, const struct proto_chunk *chunk);
	int (*end)(struct stream_sink *s, uint32_t count);
	void (*abort)(struct stream_sink *s, int rc);
	int (*link)(struct stream_sink *s, uint32_t count);
};

/* Links in a chain at most: a full image and STREAM_CHAIN_MAX - 1 deltas. */
#define STREAM_CHAIN_MAX 1025
struct stream_sink {
	const struct stream_sink_ops *ops;
	bool done;                         /* set by the sink: needs no more */
};

/* The sink's operations (a NULL op does nothing and succeeds). */
int stream_sink_begin(struct stream_sink *s, const struct proto_ckpt_meta *meta);
int stream_sink_chunk(struct stream_sink *s, const struct proto_chunk *chunk);
int stream_sink_end(struct stream_sink *s, uint32_t count);
void stream_sink_abort(struct stream_sink *s, int rc);
/* A link of a chain ended (RTCMS_EPROTO for a sink that takes no chain). */
int stream_sink_link(struct stream_sink *s, uint32_t count);

/*
 * Whether next may follow prev in a chain: the same process and
 * incarnation, a delta against prev's sequence. The first link (prev
 * NULL) must be a full image. 0 or RTCMS_EPROTO with why (whylen bytes).
 */
int stream_chain_next(const struct proto_ckpt_meta *prev,
		      const struct proto_ckpt_meta *next, char *why, size_t whylen);

/* A copy of meta whose spec is the sink's own (*spec, malloc'ed). 0 or
 * RTCMS_ENOMEM; stream_meta_drop() frees it. */
int stream_meta_keep(struct proto_ckpt_meta *dst, uint8_t **spec,
		     const struct proto_ckpt_meta *src);
void stream_meta_drop(struct proto_ckpt_meta *m, uint8_t **spec);

/* ---- tee: one stream into two sinks ------------------------------------- */

/* Which side of a tee failed. */
enum stream_tee_side { STREAM_TEE_NONE, STREAM_TEE_PRIMARY, STREAM_TEE_SECONDARY };

/*
 * A sink that feeds primary and secondary with the same stream, as a
 * migration sends the final checkpoint to the store and the target at
 * once. The primary must get all of it: its failure fails the tee (the
 * secondary is aborted). The secondary's failure is recorded in
 * secondary_rc, the secondary aborted, and the stream goes on to the
 * primary. A side that is done gets no more; the tee is done when no side
 * wants more. At the end the primary ends first (the store makes it
 * durable), then the secondary. Fields other than sink are read-only.
 */
struct stream_tee {
	struct stream_sink sink;
	struct stream_sink *primary;
	struct stream_sink *secondary;
	int primary_rc;                    /* the primary's failure, or 0 */
	int secondary_rc;                  /* the secondary's failure, or 0 */
	bool primary_live, secondary_live; /* begun, not done, failed or ended */
};
void stream_tee_init(struct stream_tee *t, struct stream_sink *primary,
		     struct stream_sink *secondary);

/* The side that failed first in a way that matters: the primary if it
 * failed, else the secondary if it did, else none. */
enum stream_tee_side stream_tee_failed(const struct stream_tee *t);

/* ---- area installer: a verified image into a checkpoint area ----------- */

/*
 * Gives the area an image of size bytes goes into (its data is less than
 * size): formatted (area_format), nobody writing it, with the data
 * capacity the caller chose for it; 0 and *mem, or an error. Called once
 * per stream, at its first begin. The memory stays the caller's.
 */
typedef int (*stream_area_fn)(void *ctx, uint64_t size, void **mem);

/*
 * A sink that assembles a full image, from one full image or from a
 * chain (the root, then each delta applied in order: a delta that does
 * not apply, or a result without the last link's state hash (when it
 * has one not zero; of version 2, or 1 for checkpoints stored before:
 * state_hash_check()), is
 * RTCMS_ECORRUPT; a stream that starts with a delta is RTCMS_EPROTO; an
 * image or delta over max bytes RTCMS_ETOOBIG; RTCMS_ENOMEM).
 *
 * With area set, the image is assembled in place in the area area()
 * gives: the data of every chunk goes straight into the slot the area's
 * load fills (area_write_begin), a delta's blocks are applied there, only
 * the image's head (header and region table) and a delta being received
 * are held aside; at the end the slot is committed as the area's
 * checkpoint (RTCMS_EPROTO for bytes that are no checkpoint image,
 * the errors of area_load_commit()). An image
 * whose state is larger than the area's data capacity is RTCMS_ETOOBIG
 * (as soon as its header or the delta's metadata says so). A stream that
 * fails anywhere (a chunk, the end's checks, an abort) leaves nothing
 * committed in the area: the slot is given up (area_write_abort).
 *
 * With area NULL it holds the verified image in a buffer of its own
 * (image/len), the bytes as they came (a full image is not parsed). mem, len and last (the last link's metadata, spec
 * cleared) are the result; why says what failed;
 * stream_area_sink_clear() frees what it holds. Fields are private but
 * those.
 */
struct stream_area_sink {
	struct stream_sink sink;
	uint64_t max;
	stream_area_fn area;
	void *ctx;
	uint8_t *image;                    /* area NULL: the verified image (owned) */
	size_t len;                        /* the image's length */
	void *mem;                         /* the area it goes into */
	struct area_slot *slot;            /* its slot being loaded, until the end */
	uint8_t head[IMAGE_HEAD_MAX];      /* the image's header and region table */
	size_t head_len;                   /* known once its header came (0 before) */
	uint8_t *data;                     /* where its data goes: the slot's, or image */
	size_t data_cap;                   /* bytes of room at data */
	size_t cap;                        /* area NULL: bytes allocated at image */
	struct proto_ckpt_meta last;       /* the link being received, then the last */
	uint32_t links;                    /* links begun */
	uint8_t *delta;                    /* the delta being received (owned) */
	size_t delta_len;
	char why[PROTO_TEXT_MAX + 1];
};
void stream_area_sink_init(struct stream_area_sink *s, uint64_t max, stream_area_fn area,
			   void *ctx);
void stream_area_sink_clear(struct stream_area_sink *s);
/* Where the chunk at offset (len bytes) of the link being received goes
 * in the sink's own memory, for a receiver to open it there (struct
 * stream_in's place; ctx the sink): in an area, the slot's data for a
 * full image's chunk past its head, the delta's buffer for a delta's;
 * NULL where it cannot go whole (the head, out of bounds, no area). */
uint8_t *stream_area_sink_place(void *ctx, uint64_t offset, uint32_t len);

#endif
