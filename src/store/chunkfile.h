/*
 * chunkfile.h - content-addressed chunk files in one mirror directory:
 * M/chunks/ab/<64 hex digits of BLAKE2b-256>. Synchronous, thread-safe
 * (no shared state).
 */
#ifndef RTCMS_STORE_CHUNKFILE_H
#define RTCMS_STORE_CHUNKFILE_H

#include <stddef.h>
#include <stdint.h>

#include "proto/msg.h"

/* Write the path of chunk hash in mirror dir into buf (>= 4200 bytes). */
void chunkfile_path(const char *dir, const uint8_t hash[PROTO_HASH_SIZE],
		    char *buf, size_t len);

/* Create M/chunks and its 256 fan-out directories, durably. 0 or RTCMS_EIO. */
int chunkfile_prepare(const char *dir);

/*
 * Write data as chunk hash: temporary file, then rename, so the chunk's
 * name only ever shows complete content. With durable, also fdatasync the
 * file before the rename and fsync the directory after it; without, the
 * caller makes it durable later with chunkfile_sync() (one flush for many
 * chunks). 0, RTCMS_EIO or RTCMS_ENOSPC.
 */
int chunkfile_write(const char *dir, const uint8_t hash[PROTO_HASH_SIZE],
		    const uint8_t *data, size_t len, int durable);

/*
 * Make everything written to the mirror's file system durable (syncfs):
 * file data, and the directory entries of renamed chunk files. 0 or
 * RTCMS_EIO (also for a write-back error since the last sync).
 */
int chunkfile_sync(const char *dir);

/*
 * Read chunk hash of the given size into buf and verify its hash.
 * 0, RTCMS_ENOENT (missing), RTCMS_ECORRUPT (wrong size or hash), RTCMS_EIO.
 */
int chunkfile_read(const char *dir, const uint8_t hash[PROTO_HASH_SIZE],
		   size_t size, uint8_t *buf);

/* 1 if the chunk file exists with the given size, else 0. */
int chunkfile_present(const char *dir, const uint8_t hash[PROTO_HASH_SIZE],
		      size_t size);

/* Remove a chunk file (missing is fine). */
void chunkfile_remove(const char *dir, const uint8_t hash[PROTO_HASH_SIZE]);

/* Parse 64 hex digits into a hash; 0 or -1. */
int chunkfile_parse_name(const char *name, uint8_t hash[PROTO_HASH_SIZE]);

/*
 * Make the directory able to take writes again: check that a file can be
 * created, written, flushed and removed in it (M/.probe). Used before a
 * mirror that failed is taken back. 0 or RTCMS_EIO / RTCMS_ENOSPC.
 */
int chunkfile_probe(const char *dir);

/* 1 if the mirror holds at least one chunk file (named by a hash). */
int chunkfile_any(const char *dir);

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
