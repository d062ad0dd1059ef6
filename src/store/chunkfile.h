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
 *  - sealed (a chunk sealed at its source, stream/chunk.h; the store holds
 *    no key and keeps it as it came):
 *
 *      offset  size  field
 *      0       8     magic 89 72 74 63 73 0d 0a 1a ("\x89rtcs\r\n\x1a")
 *      8       4     key id (big-endian, not 0)
 *      12      4     reserved (0)
 *      16      16    sum: XXH3-128 of the sealed bytes
 *      32      n+16  the sealed bytes (n: the chunk's size)
 *
 * A compressed file is always shorter than its chunk, a raw one exactly
 * as long and a sealed one CHUNKFILE_SEALED_EXTRA longer, and every reader
 * knows the chunk's size: the file's size alone tells the form, so a raw
 * chunk that happens to begin with a magic is still read raw. The name is
 * the chunk's id either way (content addressing and deduplication do not
 * depend on the form); reads verify it on the decompressed bytes of a
 * plain chunk, and the sum of a sealed one.
 *
 * In memory a chunk is its *stored form*: the plaintext of a plain chunk
 * (its size), or a sealed chunk's whole file (size + CHUNKFILE_SEALED_EXTRA,
 * chunkfile_sealed_*), which repairs copy as they read it.
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

/* fsync a directory (the names in it durable). 0 or RTCMS_EIO. */
int chunkfile_fsync_dir(const char *path);

/* Read len bytes at off of the file on fd, all of them: 0, RTCMS_ECORRUPT
 * (the file is shorter), RTCMS_EIO. */
int chunkfile_pread(int fd, uint8_t *p, size_t len, uint64_t off);

/* Create M/chunks and its 256 fan-out directories, durably. 0 or RTCMS_EIO. */
int chunkfile_prepare(const char *dir);

/* Length of the compressed form's header; highest zstd level used. */
#define CHUNKFILE_ZHDR 16
#define CHUNKFILE_LEVEL_MAX 19
/* The sealed form: its header, and how much longer than its chunk it is. */
#define CHUNKFILE_SHDR 32
#define CHUNKFILE_SEALED_EXTRA (CHUNKFILE_SHDR + PROTO_CHUNK_TAG)
/* The largest stored form: a read buffer. */
#define CHUNKFILE_MAX (PROTO_MAX_CHUNK + CHUNKFILE_SEALED_EXTRA)

/* Whether a stored form of len bytes for a chunk of size bytes is sealed,
 * and then its key id, sum and sealed bytes (pointers into form). */
bool chunkfile_sealed_view(const uint8_t *form, size_t len, size_t size, uint32_t *key_id,
			   const uint8_t **sum, const uint8_t **sealed);

/* A chunk encoded for its file: the file's content is head[0..head_len)
 * (a sealed form's header, or nothing) then data[0..len). */
struct chunkfile_enc {
	const uint8_t *data;   /* the chunk itself (raw) or buf (compressed) */
	size_t len;            /* the file's size, without head */
	size_t size;           /* the chunk's size */
	uint8_t *buf;          /* the compressed form (owned), or NULL */
	const uint8_t *head;   /* written before data (borrowed), or NULL */
	size_t head_len;
};

/* The header of a sealed chunk's stored form into head (CHUNKFILE_SHDR
 * bytes): what precedes its sealed bytes in the file. */
void chunkfile_sealed_head(uint32_t key_id, const uint8_t sum[PROTO_CHUNK_SUM],
			   uint8_t head[CHUNKFILE_SHDR]);

/*
 * Encode a chunk's stored form of len bytes for writing. With level
 * 1..CHUNKFILE_LEVEL_MAX a plain chunk is compressed (zstd) and the
 * compressed form kept if it is shorter than the chunk; otherwise (level
 * 0, data that does not compress, a sealed form, or no memory) the file
 * holds the form as it is and enc borrows data. Deterministic
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
 * Read the stored form of chunk hash of the given size into buf
 * (CHUNKFILE_MAX bytes; *len gets its length: size, or size +
 * CHUNKFILE_SEALED_EXTRA for a sealed chunk) and verify it: a plain
 * chunk's hash (raw or decompressed), a sealed one's header and sum.
 * Decompression writes nothing beyond buf[size) and allocates less than
 * size bytes. 0, RTCMS_ENOENT (missing), RTCMS_ECORRUPT (wrong size, a
 * damaged or truncated compressed or sealed form, wrong hash or sum),
 * RTCMS_ENOMEM, RTCMS_EIO.
 */
int chunkfile_read(const char *dir, const uint8_t hash[PROTO_HASH_SIZE],
		   size_t size, uint8_t *buf, size_t *len);

/*
 * chunkfile_read() of a stored form of flen bytes at offset off of an
 * open file (a chunk file: off 0 and its size; a pack record's form,
 * packfile.h): the same forms, checks and results (a form shorter than
 * flen in the file is RTCMS_ECORRUPT). Thread-safe (pread).
 */
int chunkfile_read_at(int fd, uint64_t off, size_t flen, const uint8_t hash[PROTO_HASH_SIZE],
		      size_t size, uint8_t *buf, size_t *len);

/*
 * Verify a chunk's stored form (form[0..len), in memory: a chunk file's
 * content once decompressed, or an inline copy from meta.db) for chunk
 * hash of size bytes: a plain chunk (len == size) against its hash, a
 * sealed one (len == size + CHUNKFILE_SEALED_EXTRA) by its header and
 * sum. 0 or RTCMS_ECORRUPT (any other length too).
 */
int chunkfile_form_check(const uint8_t *form, size_t len, const uint8_t hash[PROTO_HASH_SIZE],
			 size_t size);

/*
 * Whether the chunk file exists in any form for a chunk of the given size
 * (raw: exactly that long; compressed: a header that says that size and
 * the file's length; sealed: CHUNKFILE_SEALED_EXTRA longer, with its
 * magic). Does not read the data.
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
