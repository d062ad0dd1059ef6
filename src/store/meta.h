/*
 * meta.h - one mirror's metadata database (M/meta.db): schema, opening
 * with WAL and synchronous=FULL, the generation counter, copying, and
 * small SQLite helpers. The store applies each mutation to every mirror's
 * database (store.c); this module knows nothing of mirrors.
 */
#ifndef RTCMS_STORE_META_H
#define RTCMS_STORE_META_H

#include <sqlite3.h>
#include <stdint.h>

#include "proto/msg.h"

/* Open or create dir/meta.db with the schema; a database of an older
 * schema is upgraded in place (missing checkpoint columns added with their
 * defaults). 0 or RTCMS_EIO. */
int meta_open(const char *dir, sqlite3 **out);

/* The database's generation (bumped by every mutation), or -1. */
int64_t meta_generation(sqlite3 *db);

/* Replace dst's content by a copy of src's. 0 or RTCMS_EIO. */
int meta_copy(sqlite3 *dst, sqlite3 *src);

/* Run SQL without results. 0 or RTCMS_EIO. */
int meta_exec(sqlite3 *db, const char *sql);

/* Prepare a statement; NULL on error. The caller finalizes it. */
sqlite3_stmt *meta_prep(sqlite3 *db, const char *sql);

/* Step a statement to completion and finalize it. 0 or RTCMS_EIO. */
int meta_step_done(sqlite3_stmt *s);

/* Binding and reading helpers: u64 values are stored as int64 bit patterns. */
void meta_bind_text(sqlite3_stmt *s, int i, const char *v);
void meta_bind_u64(sqlite3_stmt *s, int i, uint64_t v);
uint64_t meta_col_u64(sqlite3_stmt *s, int i);
/* A hash column into out (zeros if the column is not a 32-byte blob). */
void meta_col_hash(sqlite3_stmt *s, int i, uint8_t out[PROTO_HASH_SIZE]);

#endif
