/*
 * datakey.h - the cluster's data keys: the keyring file that seals
 * checkpoint contents (docs/architecture.md, "Sealed once").
 *
 * A keyring file holds one key per line (blank lines and lines starting
 * with '#' are ignored):
 *
 *   rtcms-data-key-v1 <id> <aes-256-gcm|chacha20-poly1305> <64 hex> [pending|retired]
 *
 * Ids are 1..2^32-1 and unique. The active key, under which new chunks are
 * sealed, is the highest id marked neither pending nor retired; the others
 * only open what they sealed (pending: a new key being rolled out, read
 * everywhere before anything is sealed under it; retired: an old one, kept
 * until no stored checkpoint uses it). In memory a key is kept only as the keys derived from
 * it (the id key, the sealing key and the key check value); the file's
 * secret is wiped after parsing.
 */
#ifndef RTCMS_DATAKEY_H
#define RTCMS_DATAKEY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define DATAKEY_MAX 64          /* keys in one keyring */
#define DATAKEY_FILE_MAX 16384  /* bytes in a keyring file */
#define DATAKEY_SIZE 32
#define DATAKEY_KCV_SIZE 8

enum datakey_cipher {
	DATAKEY_AES_256_GCM = 1,
	DATAKEY_CHACHA20_POLY1305 = 2,
};

struct datakey {
	uint32_t id;
	enum datakey_cipher cipher;
	bool retired;
	bool pending;
	uint8_t k_id[DATAKEY_SIZE];      /* keys chunk ids (HMAC-SHA-256) */
	uint8_t k_enc[DATAKEY_SIZE];     /* derives each chunk's sealing key */
	uint8_t kcv[DATAKEY_KCV_SIZE];   /* names the key without revealing it */
};

struct datakey_ring {
	size_t count;
	struct datakey keys[DATAKEY_MAX];   /* in file order */
};

/*
 * Parse a keyring's text (len bytes, not necessarily NUL-terminated) into
 * *ring. Pure: no I/O. On failure returns RTCMS_ECONFIG with "line N:
 * what" in err (a keyring with no key, or only retired keys, is an error:
 * nothing could be sealed) and leaves *ring wiped.
 */
int datakey_parse(const char *text, size_t len, struct datakey_ring *ring,
		  char *err, size_t errlen);

/*
 * Load the keyring in path. Refuses a file that others may read or write
 * (mode & 077) and one over DATAKEY_FILE_MAX bytes. Returns 0, or
 * RTCMS_ECONFIG / RTCMS_EIO with a message naming the file (and the line)
 * in err.
 */
int datakey_load(const char *path, struct datakey_ring *ring, char *err,
		 size_t errlen);

/* The active key (never NULL for a parsed ring). */
const struct datakey *datakey_active(const struct datakey_ring *ring);

/* The key with this id, or NULL when the ring does not hold it. */
const struct datakey *datakey_find(const struct datakey_ring *ring,
				   uint32_t id);

/*
 * Write a new keyring to path holding one fresh random key with id 1 and
 * the given cipher (mode 0600; an existing file is refused unless force).
 * Returns 0 or an error with a message in err.
 */
int datakey_generate(const char *path, enum datakey_cipher cipher, int force,
		     char *err, size_t errlen);

/* The cipher the CPU seals fastest: AES-256-GCM where it has AES
 * instructions (x86 AES-NI, the arm64 crypto extension), else
 * ChaCha20-Poly1305. */
enum datakey_cipher datakey_cipher_default(void);

/* "aes-256-gcm" / "chacha20-poly1305"; parse returns 0 or RTCMS_EINVAL. */
const char *datakey_cipher_name(enum datakey_cipher cipher);
int datakey_cipher_parse(const char *name, enum datakey_cipher *out);

/* The key check value as 16 hex digits (buf of at least 17 bytes). */
void datakey_kcv_hex(const struct datakey *key, char buf[2 * DATAKEY_KCV_SIZE + 1]);

/* How datakey_edit() changes a keyring. */
enum datakey_edit {
	DATAKEY_ADD,          /* a new random key, the next id: the active one */
	DATAKEY_ADD_PENDING,  /* the same, marked pending */
	DATAKEY_ACTIVATE,     /* key id: pending no more */
	DATAKEY_RETIRE,       /* key id: retired */
};

/*
 * Change the keyring at path (checked as datakey_load checks it) and write
 * it back atomically (mode 0600, flushed; comments kept). ADD uses cipher
 * and sets *id to the new key's id; the others take *id. The result must
 * still parse and have an active key. 0, or RTCMS_ECONFIG / RTCMS_ENOENT
 * (no key id) / RTCMS_EIO with a message naming the file in err.
 */
int datakey_edit(const char *path, enum datakey_edit op, enum datakey_cipher cipher,
		 uint32_t *id, char *err, size_t errlen);

/* Wipe every key in ring (safe on a zeroed ring). */
void datakey_ring_wipe(struct datakey_ring *ring);

#endif
