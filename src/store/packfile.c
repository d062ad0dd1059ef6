/* packfile.c - append-only pack files of chunk records (see packfile.h). */
#include "packfile.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>
#include <xxhash.h>

#include "rtcms_error.h"
#include "util/bytes.h"

static const uint8_t pmagic[8] = { 0x89, 'r', 't', 'c', 'P', '\r', '\n', 0x1a };
static const uint8_t rmagic[8] = { 0x89, 'r', 't', 'c', 'r', '\r', '\n', 0x1a };

/* How much a scan reads at once, looking for the next record header. */
#define SCAN_BLOCK (64u << 10)

void packfile_path(const char *dir, uint64_t id, char *buf, size_t len)
{
	snprintf(buf, len, "%s/packs/%016" PRIx64 ".pack", dir, id);
}

int packfile_parse_name(const char *name, uint64_t *id)
{
	uint64_t v = 0;

	if (strlen(name) != 21 || strcmp(name + 16, ".pack") != 0)
		return RTCMS_EINVAL;
	for (int i = 0; i < 16; i++) {
		char c = name[i];
		if (c >= '0' && c <= '9')
			v = v << 4 | (uint64_t)(c - '0');
		else if (c >= 'a' && c <= 'f')
			v = v << 4 | (uint64_t)(c - 'a' + 10);
		else
			return RTCMS_EINVAL;
	}
	*id = v;
	return 0;
}

int packfile_prepare(const char *dir)
{
	char path[4200];
	struct stat sb;

	snprintf(path, sizeof(path), "%s/packs", dir);
	if (stat(path, &sb) == 0 && S_ISDIR(sb.st_mode))
		return 0;
	if (mkdir(path, 0700) != 0 && errno != EEXIST)
		return RTCMS_EIO;
	return chunkfile_fsync_dir(dir);
}

int packfile_dir_sync(const char *dir)
{
	char path[4200];
	snprintf(path, sizeof(path), "%s/packs", dir);
	return chunkfile_fsync_dir(path);
}

static int io_error(void)
{
	return errno == ENOSPC || errno == EDQUOT ? RTCMS_ENOSPC : RTCMS_EIO;
}

/* Write iov[0..n) at off, all of it. */
static int pwritev_all(int fd, struct iovec *iov, int n, uint64_t off)
{
	while (n > 0) {
		ssize_t w = pwritev(fd, iov, n, (off_t)off);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return io_error();
		if (w == 0)
			return RTCMS_EIO;
		off += (uint64_t)w;
		while (n > 0 && (size_t)w >= iov->iov_len) {
			w -= (ssize_t)iov->iov_len;
			iov++;
			n--;
		}
		if (n > 0) {
			iov->iov_base = (uint8_t *)iov->iov_base + w;
			iov->iov_len -= (size_t)w;
		}
	}
	return 0;
}

int packfile_create(const char *dir, uint64_t id, int *fd)
{
	char path[4200];
	uint8_t h[PACKFILE_HDR];
	struct iovec iov = { h, sizeof(h) };

	packfile_path(dir, id, path, sizeof(path));
	*fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (*fd < 0)
		return io_error();
	memcpy(h, pmagic, sizeof(pmagic));
	put_be64(h + 8, id);
	int rc = pwritev_all(*fd, &iov, 1, 0);
	if (rc) {
		close(*fd);
		*fd = -1;
		unlink(path);
	}
	return rc;
}

int packfile_open(const char *dir, uint64_t id, int *fd)
{
	char path[4200];

	packfile_path(dir, id, path, sizeof(path));
	*fd = open(path, O_RDONLY | O_CLOEXEC);
	if (*fd < 0)
		return errno == ENOENT ? RTCMS_ENOENT : RTCMS_EIO;
	return 0;
}

static uint32_t head_check(const uint8_t *h)
{
	return (uint32_t)XXH3_64bits(h, 44);
}

static void rec_head(uint8_t h[PACKFILE_RHDR], const uint8_t hash[PROTO_HASH_SIZE], uint32_t n)
{
	memcpy(h, rmagic, sizeof(rmagic));
	memcpy(h + 8, hash, PROTO_HASH_SIZE);
	put_be32(h + 40, n);
	put_be32(h + 44, head_check(h));
}

/* Whether h is a sound record header; then its form's length in *n. */
static bool rec_head_ok(const uint8_t *h, uint32_t *n)
{
	if (memcmp(h, rmagic, sizeof(rmagic)) != 0 || get_be32(h + 44) != head_check(h))
		return false;
	*n = get_be32(h + 40);
	return *n > 0 && *n <= CHUNKFILE_MAX;
}

int packfile_append(const char *dir, int fd, uint64_t off,
		    const uint8_t hash[PROTO_HASH_SIZE], const struct chunkfile_enc *enc)
{
	uint8_t h[PACKFILE_RHDR];
	struct iovec iov[3];
	int n = 0, rc;

	if ((rc = store_fault("chunk_write", dir)) != 0)
		return rc;
	if (enc->head_len + enc->len > CHUNKFILE_MAX)
		return RTCMS_EIO;
	rec_head(h, hash, (uint32_t)(enc->head_len + enc->len));
	iov[n++] = (struct iovec){ h, sizeof(h) };
	if (enc->head_len)
		iov[n++] = (struct iovec){ (void *)enc->head, enc->head_len };
	iov[n++] = (struct iovec){ (void *)enc->data, enc->len };
	return pwritev_all(fd, iov, n, off);
}

int packfile_sync(const char *dir, int fd)
{
	int rc = store_fault("chunk_sync", dir);
	if (rc)
		return rc;
	return fdatasync(fd) == 0 ? 0 : RTCMS_EIO;
}

int packfile_read(int fd, uint64_t off, uint32_t n, const uint8_t hash[PROTO_HASH_SIZE],
		  size_t size, uint8_t *buf, size_t *len)
{
	uint8_t h[PACKFILE_RHDR];
	uint32_t hn;

	*len = 0;
	int rc = chunkfile_pread(fd, h, sizeof(h), off);
	if (rc)
		return rc;
	if (!rec_head_ok(h, &hn) || hn != n || memcmp(h + 8, hash, PROTO_HASH_SIZE) != 0)
		return RTCMS_ECORRUPT;
	return chunkfile_read_at(fd, off + PACKFILE_RHDR, n, hash, size, buf, len);
}

/* The offset of the next sound record header at or after off (before
 * size), or size if there is none. buf: SCAN_BLOCK bytes. */
static int64_t scan_resync(int fd, uint64_t off, uint64_t size, uint8_t *buf)
{
	while (off + PACKFILE_RHDR <= size) {
		size_t want = size - off < SCAN_BLOCK ? (size_t)(size - off) : SCAN_BLOCK;
		int rc = chunkfile_pread(fd, buf, want, off);
		if (rc)
			return rc;
		for (size_t i = 0; i + PACKFILE_RHDR <= want; i++) {
			uint32_t n;
			if (buf[i] == rmagic[0] && rec_head_ok(buf + i, &n))
				return (int64_t)(off + i);
		}
		/* a header may straddle the block's end: look again there */
		off += want > PACKFILE_RHDR ? want - PACKFILE_RHDR + 1 : want;
	}
	return (int64_t)size;
}

int packfile_scan(int fd, uint64_t size, packfile_rec_fn fn, void *ctx)
{
	uint8_t h[PACKFILE_HDR > PACKFILE_RHDR ? PACKFILE_HDR : PACKFILE_RHDR];
	uint8_t *block = NULL;
	uint64_t off = PACKFILE_HDR;
	int rc;

	if (size < PACKFILE_HDR)
		return RTCMS_ECORRUPT;
	if ((rc = chunkfile_pread(fd, h, PACKFILE_HDR, 0)) != 0)
		return rc;
	if (memcmp(h, pmagic, sizeof(pmagic)) != 0)
		return RTCMS_ECORRUPT;
	while (off + PACKFILE_RHDR <= size) {
		uint32_t n;
		if ((rc = chunkfile_pread(fd, h, PACKFILE_RHDR, off)) != 0)
			break;
		if (!rec_head_ok(h, &n)) {
			/* bytes of an append that failed: the records after
			 * them are still good */
			if (!block && !(block = malloc(SCAN_BLOCK))) {
				rc = RTCMS_ENOMEM;
				break;
			}
			int64_t next = scan_resync(fd, off + 1, size, block);
			if (next < 0) {
				rc = (int)next;
				break;
			}
			off = (uint64_t)next;
			continue;
		}
		if (off + packfile_rec_len(n) > size)
			break; /* torn at the end */
		if (!fn(ctx, h + 8, off, n))
			break;
		off += packfile_rec_len(n);
	}
	free(block);
	return rc == RTCMS_ECORRUPT ? 0 : rc;
}
