/*
 * packfile.h - pack files in one mirror directory: M/packs/<16 hex>.pack,
 * append-only files of chunk records, each chunk's stored form exactly as
 * a chunk file holds it (chunkfile.h: raw, compressed or sealed), so every
 * form check works on it unchanged. Synchronous, thread-safe (no shared
 * state: pwrite and pread at offsets the caller chose).
 *
 *   the file:   offset 0, 16 bytes: magic 89 72 74 63 50 0d 0a 1a
 *               ("\x89rtcP\r\n\x1a"), the pack's id (big-endian);
 *               then records, one after another
 *   a record:   offset  size  field
 *               0       8     magic 89 72 74 63 72 0d 0a 1a ("\x89rtcr\r\n\x1a")
 *               8       32    the chunk's id
 *               40      4     n, the length of the stored form (big-endian,
 *                             1..CHUNKFILE_MAX)
 *               44      4     check: the low 32 bits of XXH3-64 of bytes
 *                             0..44 (big-endian)
 *               48      n     the stored form
 *
 * Nothing in a pack is trusted by itself: a chunk's place (pack, offset
 * of its record, n) is recorded in the mirror's meta.db, and a read checks
 * the record's header against it (magic, id, length, check) and then the
 * form like any chunk file's. The headers make a pack self-describing: a
 * mirror whose meta.db was replaced finds its records again by scanning
 * (packfile_scan), and bytes of a record that was never committed (a torn
 * append at a crash) are only dead space.
 */
#ifndef RTCMS_STORE_PACKFILE_H
#define RTCMS_STORE_PACKFILE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "chunkfile.h"
#include "proto/msg.h"

/* The file's header and a record's header. */
#define PACKFILE_HDR 16
#define PACKFILE_RHDR 48

/* Write the path of pack id in mirror dir into buf (>= 4200 bytes). */
void packfile_path(const char *dir, uint64_t id, char *buf, size_t len);

/* Parse a pack's file name ("<16 lower-case hex>.pack"): 0 and *id, or
 * RTCMS_EINVAL. */
int packfile_parse_name(const char *name, uint64_t *id);

/* Create M/packs, durably. 0 or RTCMS_EIO. */
int packfile_prepare(const char *dir);

/* Create pack id (it must not exist) with its header, open for reading
 * and writing: 0 and *fd, RTCMS_EIO or RTCMS_ENOSPC. Its directory entry
 * is durable only after packfile_dir_sync(). */
int packfile_create(const char *dir, uint64_t id, int *fd);

/* fsync M/packs: new packs' names durable. 0 or RTCMS_EIO. */
int packfile_dir_sync(const char *dir);

/* Open pack id for reading: 0 and *fd, RTCMS_ENOENT, RTCMS_EIO. */
int packfile_open(const char *dir, uint64_t id, int *fd);

/* The bytes a record of a stored form of n bytes takes. */
static inline uint64_t packfile_rec_len(size_t n)
{
	return PACKFILE_RHDR + (uint64_t)n;
}

/*
 * Write a record of chunk hash at off of the pack open on fd: its header,
 * then enc's head and data (chunkfile_encode: the stored form as a chunk
 * file would hold it). Not flushed (packfile_sync). The failure injection
 * hook is asked ("chunk_write" on dir). 0, RTCMS_EIO or RTCMS_ENOSPC.
 */
int packfile_append(const char *dir, int fd, uint64_t off,
		    const uint8_t hash[PROTO_HASH_SIZE], const struct chunkfile_enc *enc);

/* fdatasync the pack on fd (the hook: "chunk_sync" on dir). 0 or RTCMS_EIO
 * (also for a write-back error since the last flush). */
int packfile_sync(const char *dir, int fd);

/*
 * Read and verify the record at off of the pack on fd, which must be chunk
 * hash's with a stored form of n bytes (its header says so and its check
 * holds), into buf (CHUNKFILE_MAX bytes) as chunkfile_read() does: the
 * stored form, *len its length, the hash (a sealed chunk: its sum) checked.
 * 0, RTCMS_ECORRUPT (a header that does not match, a short pack, a bad
 * form), RTCMS_ENOMEM, RTCMS_EIO.
 */
int packfile_read(int fd, uint64_t off, uint32_t n, const uint8_t hash[PROTO_HASH_SIZE],
		  size_t size, uint8_t *buf, size_t *len);

/* Called for each record packfile_scan() finds: its chunk id, the offset
 * of its header and the length of its stored form. false stops. */
typedef bool (*packfile_rec_fn)(void *ctx, const uint8_t hash[PROTO_HASH_SIZE],
				uint64_t off, uint32_t n);

/*
 * Walk the records of the pack on fd (size bytes long) by their headers
 * (their forms are not read). A header that does not hold (a hole or bytes
 * of a failed append) is skipped by looking for the next record magic; a
 * record that ends past size (torn at a crash) ends the walk. 0,
 * RTCMS_ECORRUPT (not a pack: its own header is wrong), RTCMS_ENOMEM or
 * RTCMS_EIO.
 */
int packfile_scan(int fd, uint64_t size, packfile_rec_fn fn, void *ctx);

#endif
