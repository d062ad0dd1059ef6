/*
 * chunkfile.h - content-addressed chunk files in one mirror directory:
 * M/chunks/ab/<64 hex digits of BLAKE2b-256 of the chunk>. Synchronous,
 * thread-safe (no shared state).
 *
 * A chunk file holds the chunk in one of two forms, under the same name:
 *  - raw: the chunk's bytes, exactly its size;
 *  - compressed (written only where it is smaller than the chunk):
 *
 *      offset  size  field
 *      0       8     magic 89 72 74 63 7a 0d 0a 1a ("\x89rtcz\r\n\x1a")
 *      8       4     the chunk's size (big-endian)
 *      12      4     n, the length of the zstd frame (big-endian)
 *      16      n     one zstd frame holding the chunk (content size set)
 *
 * A compressed file is always shorter than its chunk and a raw one exactly
 * as long, and every reader knows the chunk's size: the file's size alone
 * tells the form, so a raw chunk that happens to begin with the magic is
 * still read raw. The name is the hash of the chunk itself either way
 * (content addressing and deduplication do not depend on the form), and
 * reads always verify that hash on the decompressed bytes.
 */
#ifndef RTCMS_STORE_CHUNKFILE_H
#define RTCMS_STORE_CHUNKFILE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proto/msg.h"

/* Write the path of chunk hash in mirror dir into buf (>= 4200 bytes). */
void chunkfile_path(const char *dir, const uint8_t hash[PROTO_HASH_SIZE],
		    char *buf, size_t len);

/* Create M/chunks and its 256 fan-out directories, durably. 0 or RTCMS_EIO. */
int chunkfile_prepare(const char *dir);

/* Length of the compressed form's header; highest zstd level used. */
#define CHUNKFILE_ZHDR 16
#define CHUNKFILE_LEVEL_MAX 19

/* A chunk encoded for its file: the file's content is data[0..len). */
struct chunkfile_enc {
	const uint8_t *data;   /* the chunk itself (raw) or buf (compressed) */
	size_t len;            /* the file's size */
	size_t size;           /* the chunk's size */
	uint8_t *buf;          /* the compressed form (owned), or NULL */
};

/*
 * Encode a chunk of len bytes for writing. With level 1..CHUNKFILE_LEVEL_MAX
 * it is compressed (zstd) and the compressed form kept if it is shorter
 * than the chunk; otherwise (level 0, data that does not compress, or no
 * memory) the file holds the chunk raw and enc borrows data. Deterministic
 * for given data and level. Never fails; release enc with
 * chunkfile_enc_free(). At most len bytes are allocated.
 */
void chunkfile_encode(const uint8_t *data, size_t len, int level,
		      struct chunkfile_enc *enc);

/* Free what chunkfile_encode() allocated (NULL or a raw enc: no-op). */
void chunkfile_enc_free(struct chunkfile_enc *enc);

/*
 * Write an encoded chunk as chunk hash: temporary file, then rename, so
 * the chunk's name only ever shows complete content (whichever form was
 * there before is replaced). With durable, also fdatasync the file before
 * the rename and fsync the directory after it; without, the caller makes
 * it durable later with chunkfile_sync() (one flush for many chunks).
 * 0, RTCMS_EIO or RTCMS_ENOSPC.
 */
int chunkfile_write_enc(const char *dir, const uint8_t hash[PROTO_HASH_SIZE],
			const struct chunkfile_enc *enc, int durable);

/* chunkfile_write_enc() of data raw (uncompressed). */
int chunkfile_write(const char *dir, const uint8_t hash[PROTO_HASH_SIZE],
		    const uint8_t *data, size_t len, int durable);

/*
 * Make everything written to the mirror's file system durable (syncfs):
 * file data, and the directory entries of renamed chunk files. 0 or
 * RTCMS_EIO (also for a write-back error since the last sync).
 */
int chunkfile_sync(const char *dir);

/*
 * Read chunk hash of the given size into buf (size bytes), raw or
 * decompressed, and verify its hash. Decompression writes nothing beyond
 * buf[size) and allocates less than size bytes. 0, RTCMS_ENOENT (missing),
 * RTCMS_ECORRUPT (wrong size, a damaged or truncated compressed form, or
 * wrong hash), RTCMS_ENOMEM, RTCMS_EIO.
 */
int chunkfile_read(const char *dir, const uint8_t hash[PROTO_HASH_SIZE],
		   size_t size, uint8_t *buf);

/*
 * Whether the chunk file exists in either form for a chunk of the given
 * size (raw: exactly that long; compressed: a header that says that size
 * and the file's length). Does not read the data.
 */
bool chunkfile_present(const char *dir, const uint8_t hash[PROTO_HASH_SIZE],
		      size_t size);

/* Remove a chunk file, whichever its form (missing is fine). */
void chunkfile_remove(const char *dir, const uint8_t hash[PROTO_HASH_SIZE]);

/* Parse 64 lower-case hex digits into a hash; 0 or RTCMS_EINVAL. */
int chunkfile_parse_name(const char *name, uint8_t hash[PROTO_HASH_SIZE]);

/*
 * Make the directory able to take writes again: check that a file can be
 * created, written, flushed and removed in it (M/.probe). Used before a
 * mirror that failed is taken back. 0 or RTCMS_EIO / RTCMS_ENOSPC.
 */
int chunkfile_probe(const char *dir);

/* Whether the mirror holds at least one chunk file (named by a hash). */
bool chunkfile_any(const char *dir);

/*
 * Failure injection (tests), in the spirit of SQLite's sqlite3FaultSim:
 * when set, the hook is asked before every chunk write ("chunk_write"),
 * chunk flush ("chunk_sync"), mirror probe ("mirror_probe") and metadata
 * commit ("meta_commit"); dir is the mirror. It returns 0 to let the
 * operation run, a negative RTCMS_E* code to make it fail with that code
 * (RTCMS_ENOSPC simulates a full disk), or any other non-zero value for
 * RTCMS_EIO. Set it to NULL to disable; set it only while no other thread
 * uses the store.
 */
typedef int (*store_fault_fn)(const char *site, const char *dir);
extern store_fault_fn store_fault_hook;

/* What the hook says for site on dir: 0 or a negative RTCMS_E* code. */
int store_fault(const char *site, const char *dir);

#endif
