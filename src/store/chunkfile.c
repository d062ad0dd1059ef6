/* chunkfile.c - durable content-addressed chunk files. */
#include "chunkfile.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "rtcms_error.h"

store_fault_fn store_fault_hook;

int store_fault(const char *site, const char *dir)
{
	int rc = store_fault_hook ? store_fault_hook(site, dir) : 0;
	if (rc == 0)
		return 0;
	return rc < 0 && rc >= RTCMS_EINTERNAL ? rc : RTCMS_EIO;
}

void chunkfile_path(const char *dir, const uint8_t hash[PROTO_HASH_SIZE],
		    char *buf, size_t len)
{
	char hex[2 * PROTO_HASH_SIZE + 1];
	sodium_bin2hex(hex, sizeof(hex), hash, PROTO_HASH_SIZE);
	snprintf(buf, len, "%s/chunks/%.2s/%s", dir, hex, hex);
}

static int fsync_dir(const char *path)
{
	int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return RTCMS_EIO;
	int rc = fsync(fd) == 0 ? 0 : RTCMS_EIO;
	close(fd);
	return rc;
}

int chunkfile_prepare(const char *dir)
{
	char path[4200];

	if (mkdir(dir, 0700) != 0 && errno != EEXIST)
		return RTCMS_EIO;
	snprintf(path, sizeof(path), "%s/chunks", dir);
	if (mkdir(path, 0700) != 0 && errno != EEXIST)
		return RTCMS_EIO;
	for (int i = 0; i < 256; i++) {
		snprintf(path, sizeof(path), "%s/chunks/%02x", dir, i);
		if (mkdir(path, 0700) != 0 && errno != EEXIST)
			return RTCMS_EIO;
	}
	snprintf(path, sizeof(path), "%s/chunks", dir);
	if (fsync_dir(path) != 0 || fsync_dir(dir) != 0)
		return RTCMS_EIO;
	return 0;
}

static int write_all(int fd, const uint8_t *p, size_t len)
{
	while (len > 0) {
		ssize_t n = write(fd, p, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return errno == ENOSPC ? RTCMS_ENOSPC : RTCMS_EIO;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

int chunkfile_sync(const char *dir)
{
	int rc = store_fault("chunk_sync", dir);
	if (rc)
		return rc;
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return RTCMS_EIO;
	rc = syncfs(fd) == 0 ? 0 : RTCMS_EIO;
	close(fd);
	return rc;
}

int chunkfile_write(const char *dir, const uint8_t hash[PROTO_HASH_SIZE],
		    const uint8_t *data, size_t len, int durable)
{
	char path[4200], tmp[4300], sub[4200];
	uint32_t rnd = randombytes_random();
	int rc;

	if ((rc = store_fault("chunk_write", dir)) != 0)
		return rc;
	chunkfile_path(dir, hash, path, sizeof(path));
	snprintf(tmp, sizeof(tmp), "%.*s.tmp.%08x", (int)(strrchr(path, '/') - path + 1),
		 path, rnd);
	/* the temporary name keeps the hash for debugging */
	snprintf(tmp + strlen(tmp), sizeof(tmp) - strlen(tmp), ".%.16s",
		 strrchr(path, '/') + 1);
	int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0)
		return errno == ENOSPC ? RTCMS_ENOSPC : RTCMS_EIO;
	rc = write_all(fd, data, len);
	if (rc == 0 && durable && fdatasync(fd) != 0)
		rc = RTCMS_EIO;
	if (close(fd) != 0 && rc == 0)
		rc = RTCMS_EIO;
	if (rc == 0 && rename(tmp, path) != 0)
		rc = RTCMS_EIO;
	if (rc) {
		unlink(tmp);
		return rc;
	}
	if (!durable)
		return 0;
	snprintf(sub, sizeof(sub), "%.*s", (int)(strrchr(path, '/') - path), path);
	return fsync_dir(sub);
}

int chunkfile_read(const char *dir, const uint8_t hash[PROTO_HASH_SIZE],
		   size_t size, uint8_t *buf)
{
	char path[4200];
	uint8_t h[PROTO_HASH_SIZE];
	struct stat st;
	size_t got = 0;

	chunkfile_path(dir, hash, path, sizeof(path));
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? RTCMS_ENOENT : RTCMS_EIO;
	if (fstat(fd, &st) != 0) {
		close(fd);
		return RTCMS_EIO;
	}
	if ((size_t)st.st_size != size) {
		close(fd);
		return RTCMS_ECORRUPT;
	}
	while (got < size) {
		ssize_t n = read(fd, buf + got, size - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			close(fd);
			return n == 0 ? RTCMS_ECORRUPT : RTCMS_EIO;
		}
		got += (size_t)n;
	}
	close(fd);
	proto_chunk_hash(buf, size, h);
	if (sodium_memcmp(h, hash, PROTO_HASH_SIZE) != 0)
		return RTCMS_ECORRUPT;
	return 0;
}

int chunkfile_present(const char *dir, const uint8_t hash[PROTO_HASH_SIZE],
		      size_t size)
{
	char path[4200];
	struct stat st;
	chunkfile_path(dir, hash, path, sizeof(path));
	return stat(path, &st) == 0 && S_ISREG(st.st_mode) &&
	       (size_t)st.st_size == size;
}

void chunkfile_remove(const char *dir, const uint8_t hash[PROTO_HASH_SIZE])
{
	char path[4200];
	chunkfile_path(dir, hash, path, sizeof(path));
	unlink(path);
}

int chunkfile_parse_name(const char *name, uint8_t hash[PROTO_HASH_SIZE])
{
	size_t bin_len = 0;
	const char *end = NULL;
	if (strlen(name) != 2 * PROTO_HASH_SIZE)
		return -1;
	if (sodium_hex2bin(hash, PROTO_HASH_SIZE, name, strlen(name), NULL,
			   &bin_len, &end) != 0 || bin_len != PROTO_HASH_SIZE ||
	    *end != '\0')
		return -1;
	/* only lower-case names are ours */
	for (const char *p = name; *p; p++)
		if (*p >= 'A' && *p <= 'F')
			return -1;
	return 0;
}

int chunkfile_probe(const char *dir)
{
	char path[4200];
	static const char probe[] = "rtcms probe\n";
	int rc = store_fault("mirror_probe", dir);

	if (rc)
		return rc;
	snprintf(path, sizeof(path), "%s/.probe", dir);
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return errno == ENOSPC ? RTCMS_ENOSPC : RTCMS_EIO;
	rc = write_all(fd, (const uint8_t *)probe, sizeof(probe) - 1);
	if (rc == 0 && fsync(fd) != 0)
		rc = RTCMS_EIO;
	close(fd);
	if (unlink(path) != 0 && rc == 0)
		rc = RTCMS_EIO;
	return rc;
}

int chunkfile_any(const char *dir)
{
	char path[4200];
	uint8_t h[PROTO_HASH_SIZE];

	for (int i = 0; i < 256; i++) {
		snprintf(path, sizeof(path), "%s/chunks/%02x", dir, i);
		DIR *d = opendir(path);
		struct dirent *e;
		int found = 0;
		if (!d)
			continue;
		while (!found && (e = readdir(d)) != NULL)
			found = chunkfile_parse_name(e->d_name, h) == 0;
		closedir(d);
		if (found)
			return 1;
	}
	return 0;
}
