/*
 * keyfile.h - the cluster key file.
 *
 * Format: one line "rtcms-key-v1 <64 hex digits>\n", mode 0600. Every
 * daemon and rtcmsctl take --key FILE; `rtcmsctl keygen FILE` writes one.
 */
#ifndef RTCMS_KEYFILE_H
#define RTCMS_KEYFILE_H

#include <stddef.h>

#include "proto/frame.h"

/*
 * Open a secret file (what: "the cluster key file", "the data keyring")
 * for reading into *fd: a regular file nobody but its owner may read or
 * write (mode & 077 is refused: the message says `chmod 600 FILE`).
 * Returns 0 and *fd (the caller closes it; *st its stat), or
 * RTCMS_ECONFIG with a message naming the file in err.
 */
struct stat;
int keyfile_open_secret(const char *path, const char *what, int *fd, struct stat *st,
			char *err, size_t errlen);

/*
 * Load the key in path into *key. On failure returns RTCMS_ECONFIG (or
 * RTCMS_EIO) and writes a message naming the file into err;
 * a file others may read or write is refused (keyfile_open_secret).
 */
int keyfile_load(const char *path, struct proto_key *key, char *err,
		 size_t errlen);

/*
 * Generate a fresh random key and write it to path (mode 0600, refusing to
 * overwrite an existing file unless force). Returns 0 or an error with a
 * message in err.
 */
int keyfile_generate(const char *path, int force, char *err, size_t errlen);

/*
 * Create path for a secret (mode 0600; an existing file is refused with
 * RTCMS_EEXIST unless force), write len bytes of text and fsync it. what
 * names the file in messages ("key file"). Returns 0, RTCMS_EEXIST or
 * RTCMS_EIO with a message in err.
 */
int keyfile_write_new(const char *path, int force, const char *text,
		      size_t len, const char *what, char *err, size_t errlen);

#endif
