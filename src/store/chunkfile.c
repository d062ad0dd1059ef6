/* chunkfile.c - durable content-addressed chunk files. */
#include "chunkfile.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zstd.h>

#include "rtcms_error.h"
#include "stream/chunk.h"
#include "util/bytes.h"

/* The compressed and the sealed forms' magics (see chunkfile.h). */
static const uint8_t zmagic[8] = { 0x89, 'r', 't', 'c', 'z', '\r', '\n', 0x1a };
static const uint8_t smagic[8] = { 0x89, 'r', 't', 'c', 's', '\r', '\n', 0x1a };

void chunkfile_sealed_head(uint32_t key_id, const uint8_t sum[PROTO_CHUNK_SUM],
			   uint8_t head[CHUNKFILE_SHDR])
{
	memcpy(head, smagic, sizeof(smagic));
	put_be32(head + 8, key_id);
	put_be32(head + 12, 0);
	memcpy(head + 16, sum, PROTO_CHUNK_SUM);
}

bool chunkfile_sealed_view(const uint8_t *form, size_t len, size_t size, uint32_t *key_id,
			   const uint8_t **sum, const uint8_t **sealed)
{
	if (len != size + CHUNKFILE_SEALED_EXTRA || memcmp(form, smagic, sizeof(smagic)) != 0 ||
	    get_be32(form + 8) == 0 || get_be32(form + 12) != 0)
		return false;
	*key_id = get_be32(form + 8);
	*sum = form + 16;
	*sealed = form + CHUNKFILE_SHDR;
	return true;
}

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

int chunkfile_fsync_dir(const char *path)
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
	if (chunkfile_fsync_dir(path) != 0 || chunkfile_fsync_dir(dir) != 0)
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

void chunkfile_encode(const uint8_t *data, size_t len, int level,
		      struct chunkfile_enc *enc)
{
	*enc = (struct chunkfile_enc){ data, len, len, NULL, NULL, 0 };
	/* the compressed file must come out shorter than the chunk: room
	 * for the header and at least one byte of frame, all below len; a
	 * sealed form (ciphertext) is kept as it is */
	if (level < 1 || level > CHUNKFILE_LEVEL_MAX || len <= CHUNKFILE_ZHDR + 1 ||
	    len > UINT32_MAX ||
	    (len > CHUNKFILE_SEALED_EXTRA && memcmp(data, smagic, sizeof(smagic)) == 0))
		return;
	uint8_t *buf = malloc(len - 1);
	if (!buf)
		return;
	/* a frame that does not fit in len - 1 - ZHDR bytes fails (too
	 * small a destination): the chunk stays raw */
	size_t n = ZSTD_compress(buf + CHUNKFILE_ZHDR, len - 1 - CHUNKFILE_ZHDR,
				 data, len, level);
	if (ZSTD_isError(n)) {
		free(buf);
		return;
	}
	memcpy(buf, zmagic, sizeof(zmagic));
	put_be32(buf + 8, (uint32_t)len);
	put_be32(buf + 12, (uint32_t)n);
	enc->data = enc->buf = buf;
	enc->len = CHUNKFILE_ZHDR + n;
}

void chunkfile_enc_free(struct chunkfile_enc *enc)
{
	if (!enc)
		return;
	free(enc->buf);
	enc->buf = NULL;
	enc->data = NULL;
	enc->len = 0;
}

int chunkfile_write(const char *dir, const uint8_t hash[PROTO_HASH_SIZE],
		    const uint8_t *data, size_t len, int durable)
{
	struct chunkfile_enc raw = { data, len, len, NULL, NULL, 0 };
	return chunkfile_write_enc(dir, hash, &raw, durable);
}

int chunkfile_write_enc(const char *dir, const uint8_t hash[PROTO_HASH_SIZE],
			const struct chunkfile_enc *enc, int durable)
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
	rc = enc->head_len ? write_all(fd, enc->head, enc->head_len) : 0;
	if (rc == 0)
		rc = write_all(fd, enc->data, enc->len);
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
	return chunkfile_fsync_dir(sub);
}

int chunkfile_pread(int fd, uint8_t *p, size_t len, uint64_t off)
{
	while (len > 0) {
		ssize_t n = pread(fd, p, len, (off_t)off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n == 0 ? RTCMS_ECORRUPT : RTCMS_EIO;
		p += n;
		off += (uint64_t)n;
		len -= (size_t)n;
	}
	return 0;
}

/*
 * Check the header of a compressed form of flen bytes at off for a chunk
 * of size bytes: magic, size, and a frame that fills the rest of the
 * form. The frame's length, or RTCMS_ECORRUPT / RTCMS_EIO.
 */
static int64_t zheader_check(int fd, uint64_t off, size_t flen, size_t size)
{
	uint8_t h[CHUNKFILE_ZHDR];

	if (flen <= CHUNKFILE_ZHDR || flen >= size)
		return RTCMS_ECORRUPT;
	int rc = chunkfile_pread(fd, h, sizeof(h), off);
	if (rc)
		return rc;
	if (memcmp(h, zmagic, sizeof(zmagic)) != 0 || get_be32(h + 8) != size ||
	    get_be32(h + 12) != flen - CHUNKFILE_ZHDR)
		return RTCMS_ECORRUPT;
	return (int64_t)(flen - CHUNKFILE_ZHDR);
}

/* Decompress the compressed form at off (flen bytes, shorter than size)
 * into buf[0..size): all of it, nothing beyond. */
static int read_compressed(int fd, uint64_t off, size_t flen, size_t size, uint8_t *buf)
{
	int64_t zlen = zheader_check(fd, off, flen, size);
	if (zlen < 0)
		return (int)zlen;
	uint8_t *frame = malloc((size_t)zlen); /* < size */
	if (!frame)
		return RTCMS_ENOMEM;
	int rc = chunkfile_pread(fd, frame, (size_t)zlen, off + CHUNKFILE_ZHDR);
	if (rc == 0) {
		/* the frame must announce exactly the chunk's size; the
		 * decompressor is bounded by buf's size whatever it says */
		unsigned long long want = ZSTD_getFrameContentSize(frame, (size_t)zlen);
		size_t n = want == size ? ZSTD_decompress(buf, size, frame, (size_t)zlen) : 0;
		rc = want == size && !ZSTD_isError(n) && n == size ? 0 : RTCMS_ECORRUPT;
	}
	free(frame);
	return rc;
}

int chunkfile_read_at(int fd, uint64_t off, size_t flen, const uint8_t hash[PROTO_HASH_SIZE],
		      size_t size, uint8_t *buf, size_t *len)
{
	int rc;

	*len = 0;
	if (size == 0 || size > PROTO_MAX_CHUNK)
		return RTCMS_ECORRUPT;
	/* the length tells the form: raw exactly size bytes, compressed
	 * fewer, sealed CHUNKFILE_SEALED_EXTRA more */
	if (flen == size || flen == size + CHUNKFILE_SEALED_EXTRA)
		rc = chunkfile_pread(fd, buf, flen, off);
	else if (flen < size)
		rc = read_compressed(fd, off, flen, size, buf);
	else
		rc = RTCMS_ECORRUPT;
	if (rc)
		return rc;
	/* decompressed: the plain chunk, size bytes */
	if ((rc = chunkfile_form_check(buf, flen < size ? size : flen, hash, size)) != 0)
		return rc;
	*len = flen < size ? size : flen;
	return 0;
}

int chunkfile_read(const char *dir, const uint8_t hash[PROTO_HASH_SIZE],
		   size_t size, uint8_t *buf, size_t *len)
{
	char path[4200];
	struct stat st;
	int rc;

	*len = 0;
	if (size == 0 || size > PROTO_MAX_CHUNK)
		return RTCMS_ECORRUPT;
	chunkfile_path(dir, hash, path, sizeof(path));
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? RTCMS_ENOENT : RTCMS_EIO;
	rc = fstat(fd, &st) == 0 ? chunkfile_read_at(fd, 0, (size_t)st.st_size, hash, size,
						     buf, len)
				 : RTCMS_EIO;
	close(fd);
	return rc;
}

int chunkfile_form_check(const uint8_t *form, size_t len, const uint8_t hash[PROTO_HASH_SIZE],
			 size_t size)
{
	uint8_t h[PROTO_HASH_SIZE];

	if (size == 0 || size > PROTO_MAX_CHUNK)
		return RTCMS_ECORRUPT;
	if (len == size + CHUNKFILE_SEALED_EXTRA) {
		uint32_t key_id;
		const uint8_t *sum, *sealed;
		if (!chunkfile_sealed_view(form, len, size, &key_id, &sum, &sealed) ||
		    !stream_chunk_sum_ok(sealed, size + PROTO_CHUNK_TAG, sum))
			return RTCMS_ECORRUPT;
		return 0;
	}
	if (len != size)
		return RTCMS_ECORRUPT;
	stream_chunk_id(form, size, h);
	return sodium_memcmp(h, hash, PROTO_HASH_SIZE) == 0 ? 0 : RTCMS_ECORRUPT;
}

bool chunkfile_present(const char *dir, const uint8_t hash[PROTO_HASH_SIZE],
		       size_t size)
{
	char path[4200];
	uint8_t head[sizeof(smagic)];
	struct stat st;
	chunkfile_path(dir, hash, path, sizeof(path));
	if (stat(path, &st) != 0 || !S_ISREG(st.st_mode))
		return false;
	if ((size_t)st.st_size == size)
		return true;
	if ((size_t)st.st_size != size + CHUNKFILE_SEALED_EXTRA && (size_t)st.st_size > size)
		return false;
	/* shorter: a compressed form, if its header says so; longer: a
	 * sealed one, if it has the sealed magic */
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	bool ok;
	if ((size_t)st.st_size > size)
		ok = chunkfile_pread(fd, head, sizeof(head), 0) == 0 &&
		     memcmp(head, smagic, sizeof(smagic)) == 0;
	else
		ok = fstat(fd, &st) == 0 && zheader_check(fd, 0, (size_t)st.st_size, size) >= 0;
	close(fd);
	return ok;
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
		return RTCMS_EINVAL;
	if (sodium_hex2bin(hash, PROTO_HASH_SIZE, name, strlen(name), NULL,
			   &bin_len, &end) != 0 || bin_len != PROTO_HASH_SIZE ||
	    *end != '\0')
		return RTCMS_EINVAL;
	/* only lower-case names are ours */
	for (const char *p = name; *p; p++)
		if (*p >= 'A' && *p <= 'F')
			return RTCMS_EINVAL;
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

bool chunkfile_any(const char *dir)
{
	char path[4200];
	uint8_t h[PROTO_HASH_SIZE];

	for (int i = 0; i < 256; i++) {
		snprintf(path, sizeof(path), "%s/chunks/%02x", dir, i);
		DIR *d = opendir(path);
		struct dirent *e;
		bool found = false;
		if (!d)
			continue;
		while (!found && (e = readdir(d)) != NULL)
			found = chunkfile_parse_name(e->d_name, h) == 0;
		closedir(d);
		if (found)
			return true;
	}
	return false;
}
