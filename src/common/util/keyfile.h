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
 * Load the key in path into *key. On failure returns RTCMS_ECONFIG (or
 * RTCMS_EIO) and writes a message naming the file into err.
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
