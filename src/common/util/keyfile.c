/* keyfile.c - load and generate the cluster key file. */
#include "keyfile.h"

#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "rtcms_error.h"

#define KEY_PREFIX "rtcms-key-v1 "

int keyfile_open_secret(const char *path, const char *what, int *fd, struct stat *st,
			char *err, size_t errlen)
{
	*fd = open(path, O_RDONLY | O_CLOEXEC);
	if (*fd < 0) {
		snprintf(err, errlen, "%s: cannot open %s: %s", path, what, strerror(errno));
		return RTCMS_ECONFIG;
	}
	if (fstat(*fd, st) != 0 || !S_ISREG(st->st_mode)) {
		snprintf(err, errlen, "%s: not a regular file", path);
	} else if (st->st_mode & 077) {
		snprintf(err, errlen, "%s: %s may be read or written by others (mode "
			 "%04o): run `chmod 600 %s`", path, what,
			 (unsigned)(st->st_mode & 07777), path);
	} else {
		return 0;
	}
	close(*fd);
	*fd = -1;
	return RTCMS_ECONFIG;
}

int keyfile_load(const char *path, struct proto_key *key, char *err,
		 size_t errlen)
{
	char buf[256];
	size_t bin_len = 0;
	const char *end = NULL;
	ssize_t n;
	int fd;

	if (sodium_init() < 0) {
		snprintf(err, errlen, "libsodium failed to initialise");
		return RTCMS_EINTERNAL;
	}
	struct stat st;
	int rc = keyfile_open_secret(path, "the cluster key file", &fd, &st, err, errlen);
	if (rc)
		return rc;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n < 0) {
		snprintf(err, errlen, "%s: cannot read key file: %s", path,
			 strerror(errno));
		return RTCMS_EIO;
	}
	buf[n] = '\0';
	if (strncmp(buf, KEY_PREFIX, strlen(KEY_PREFIX)) != 0) {
		snprintf(err, errlen,
			 "%s:1: not an rtcms key file (expected \"%s<64 hex digits>\"; "
			 "create one with `rtcmsctl keygen %s`)",
			 path, KEY_PREFIX, path);
		return RTCMS_ECONFIG;
	}
	const char *hex = buf + strlen(KEY_PREFIX);
	if (sodium_hex2bin(key->bytes, sizeof(key->bytes), hex, strlen(hex),
			   NULL, &bin_len, &end) != 0 ||
	    bin_len != sizeof(key->bytes) ||
	    (*end != '\0' && *end != '\n')) {
		snprintf(err, errlen, "%s:1: key must be exactly 64 hex digits",
			 path);
		sodium_memzero(buf, sizeof(buf));
		return RTCMS_ECONFIG;
	}
	sodium_memzero(buf, sizeof(buf));
	return 0;
}

int keyfile_write_new(const char *path, int force, const char *text,
		      size_t len, const char *what, char *err, size_t errlen)
{
	int flags = O_WRONLY | O_CREAT | O_CLOEXEC | (force ? O_TRUNC : O_EXCL);
	int fd, rc = 0;

	fd = open(path, flags, 0600);
	if (fd < 0) {
		int e = errno;
		snprintf(err, errlen, "%s: cannot create %s: %s%s", path, what,
			 strerror(e), e == EEXIST ? " (use --force to overwrite)" : "");
		return e == EEXIST ? RTCMS_EEXIST : RTCMS_EIO;
	}
	if (fchmod(fd, 0600) != 0 || write(fd, text, len) != (ssize_t)len ||
	    fsync(fd) != 0) {
		snprintf(err, errlen, "%s: cannot write %s: %s", path, what,
			 strerror(errno));
		rc = RTCMS_EIO;
	}
	close(fd);
	return rc;
}

int keyfile_generate(const char *path, int force, char *err, size_t errlen)
{
	uint8_t key[PROTO_KEY_SIZE];
	char hex[2 * PROTO_KEY_SIZE + 1];
	char line[sizeof(KEY_PREFIX) + sizeof(hex) + 1];
	int rc;

	if (sodium_init() < 0) {
		snprintf(err, errlen, "libsodium failed to initialise");
		return RTCMS_EINTERNAL;
	}
	randombytes_buf(key, sizeof(key));
	sodium_bin2hex(hex, sizeof(hex), key, sizeof(key));
	int len = snprintf(line, sizeof(line), "%s%s\n", KEY_PREFIX, hex);
	rc = keyfile_write_new(path, force, line, (size_t)len, "key file", err,
			       errlen);
	sodium_memzero(key, sizeof(key));
	sodium_memzero(hex, sizeof(hex));
	sodium_memzero(line, sizeof(line));
	return rc;
}
