/*
 * chunk.h - what a chunk of a checkpoint stream is, and how a hop checks
 * one: the only place that knows (docs/architecture.md, "Sealed once").
 *
 * A plain chunk (key id 0, today's streams) is its bytes plus their
 * BLAKE2b-256 (its id, proto_chunk_hash), checked at every hop. A sealed
 * chunk is made once at its source under a data key (util/datakey.h): its
 * id is HMAC-SHA-256 of the plaintext under the key's id key, its bytes
 * the AEAD of the plaintext under a key derived from the id (AD: the key
 * id, the length and the id), and its sum the XXH3-128 of the sealed
 * bytes, which a hop without the data key (the store) checks. The image
 * hash binds the ids in order either way.
 *
 * A sealed chunk travels as a raw tail (proto/frame.h): the session seals
 * only its head. Its source adds a MAC for the store, which cannot open
 * it: Poly1305 of the sealed bytes under a one-time key derived from the
 * cluster's chunk MAC key (proto/session.h) and the chunk's key id,
 * length and id. Only the store checks it, once, before writing; the
 * reader's AEAD authenticates the chunk end to end.
 */
#ifndef RTCMS_STREAM_CHUNK_H
#define RTCMS_STREAM_CHUNK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proto/frame.h"
#include "proto/msg.h"
#include "util/datakey.h"

#define STREAM_ID_SIZE PROTO_HASH_SIZE
#define STREAM_TAG_SIZE PROTO_CHUNK_TAG  /* a sealed chunk is its plaintext + this */
#define STREAM_SUM_SIZE PROTO_CHUNK_SUM  /* XXH3-128, canonical (big-endian) */

/* The id of a plain chunk of len bytes (at its source). */
void stream_chunk_id(const uint8_t *data, size_t len, uint8_t id[STREAM_ID_SIZE]);

/*
 * Whether a chunk's data is what it says, at a hop: a plain chunk's
 * BLAKE2b against its id, a sealed one's checksum against its sum (no
 * key needed: the AEAD at the reader authenticates it), an opened one
 * (this process opened it under its key) always.
 */
bool stream_chunk_intact(const struct proto_chunk *chunk);

/* The id of len bytes of plaintext under key (HMAC-SHA-256, its id key). */
void stream_chunk_keyed_id(const struct datakey *key, const uint8_t *plain, size_t len,
			   uint8_t id[STREAM_ID_SIZE]);

/* Seal len bytes of plain whose keyed id is id (stream_chunk_seal without
 * computing the id again). Returns as stream_chunk_seal. */
int stream_chunk_seal_as(const struct datakey *key, const uint8_t id[STREAM_ID_SIZE],
			 const uint8_t *plain, size_t len, uint8_t *sealed,
			 uint8_t sum[STREAM_SUM_SIZE]);

/*
 * Seal len (1..PROTO_MAX_CHUNK) bytes of plain under key: writes the
 * chunk's id, len + STREAM_TAG_SIZE sealed bytes (sealed may be plain: in
 * place) and their sum. Equal plaintexts under one key give equal output.
 * Returns 0, RTCMS_EINVAL for a bad length, or RTCMS_EINTERNAL when the
 * crypto library fails.
 */
int stream_chunk_seal(const struct datakey *key, const uint8_t *plain,
		      size_t len, uint8_t id[STREAM_ID_SIZE], uint8_t *sealed,
		      uint8_t sum[STREAM_SUM_SIZE]);

/*
 * Open sealed_len bytes sealed under key as the chunk id names: writes
 * sealed_len - STREAM_TAG_SIZE bytes of plaintext (plain may be sealed: in
 * place). Returns 0, RTCMS_ECORRUPT when the bytes do not authenticate
 * (tampered, another chunk's, another key's or another length's; plain is
 * then zeroed), RTCMS_EINVAL for a bad length, RTCMS_EINTERNAL when the
 * crypto library fails.
 */
int stream_chunk_open(const struct datakey *key, const uint8_t id[STREAM_ID_SIZE],
		      const uint8_t *sealed, size_t sealed_len, uint8_t *plain);

/* The MAC of a sealed chunk (its key id, len, id and len +
 * STREAM_TAG_SIZE bytes at data) under the chunk MAC key kcm. 0 or
 * RTCMS_EINTERNAL when the crypto library fails. */
int stream_chunk_mac(const struct proto_key *kcm, const struct proto_chunk *chunk,
		     uint8_t mac[PROTO_CHUNK_MAC]);

/* Whether a sealed chunk's mac is its MAC under kcm. */
bool stream_chunk_mac_ok(const struct proto_key *kcm, const struct proto_chunk *chunk);

/* The checksum of len sealed bytes (a store's check, no key needed). */
void stream_chunk_sum(const uint8_t *sealed, size_t len, uint8_t sum[STREAM_SUM_SIZE]);

/* Whether len sealed bytes have this sum. */
bool stream_chunk_sum_ok(const uint8_t *sealed, size_t len,
			 const uint8_t sum[STREAM_SUM_SIZE]);

/*
 * A program's spec (proto/spec.h: its command line, environment and
 * working directory, which may hold secrets) sealed under a data key, as
 * an agent with a keyring sends it with every checkpoint, so that the
 * store keeps it sealed like the state (docs/protocol.md "Sealed specs"):
 *
 *   offset  size  field
 *   0       4     magic 89 72 74 53 ("\x89rtS"; a plain spec begins with
 *                 00: its argument count is 1..64)
 *   4       4     key id (big-endian, not 0)
 *   8       32    id: HMAC-SHA-256 under the key's id key of
 *                 "rtcms-spec-v1" || the process id || 00 || the spec
 *   40      n+16  the spec sealed as a chunk with that id
 *
 * The id binds it to its process: a spec moved to another process's
 * checkpoint does not open there.
 */
#define STREAM_SPEC_SEALED_HEAD 40
#define STREAM_SPEC_SEALED_EXTRA (STREAM_SPEC_SEALED_HEAD + STREAM_TAG_SIZE)

/* Whether a spec blob is sealed (else a plain spec, or nothing). */
bool stream_spec_is_sealed(const uint8_t *blob, size_t len);

/* Seal spec (len bytes) of process under key into out (cap bytes): its
 * length (len + STREAM_SPEC_SEALED_EXTRA), or RTCMS_EINVAL (empty, over
 * PROTO_SPEC_MAX) / RTCMS_ETOOBIG (out too small). */
int stream_spec_seal(const struct datakey *key, const char *process, const uint8_t *spec,
		     size_t len, uint8_t *out, size_t cap);

/*
 * Open a sealed spec blob of process with the keyring into out (cap
 * bytes): the spec's length, or RTCMS_ENOENT (its key id is not in the
 * ring; *key_id names it), RTCMS_ECORRUPT (it does not open: another key
 * of that id, damaged, another process's), RTCMS_EPROTO (not a sealed
 * spec), RTCMS_ETOOBIG (out too small).
 */
int stream_spec_open(const struct datakey_ring *ring, const char *process,
		     const uint8_t *blob, size_t len, uint8_t *out, size_t cap,
		     uint32_t *key_id);

#endif
