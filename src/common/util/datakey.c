/* datakey.c - parse, load and generate the data keyring (see datakey.h). */
#include "datakey.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#if defined(__aarch64__) && defined(__linux__)
#include <asm/hwcap.h>
#include <sys/auxv.h>
#endif

#include "keyfile.h"
#include "rtcms_error.h"

#define LINE_PREFIX "rtcms-data-key-v1"
#define LINE_MAX_LEN 256
#define TOKENS_MAX 6

static const struct {
	enum datakey_cipher cipher;
	const char *name;
} ciphers[] = {
	{ DATAKEY_AES_256_GCM, "aes-256-gcm" },
	{ DATAKEY_CHACHA20_POLY1305, "chacha20-poly1305" },
};

const char *datakey_cipher_name(enum datakey_cipher cipher)
{
	for (size_t i = 0; i < sizeof(ciphers) / sizeof(ciphers[0]); i++)
		if (ciphers[i].cipher == cipher)
			return ciphers[i].name;
	return "unknown";
}

int datakey_cipher_parse(const char *name, enum datakey_cipher *out)
{
	for (size_t i = 0; i < sizeof(ciphers) / sizeof(ciphers[0]); i++)
		if (strcmp(ciphers[i].name, name) == 0) {
			*out = ciphers[i].cipher;
			return 0;
		}
	return RTCMS_EINVAL;
}

enum datakey_cipher datakey_cipher_default(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_cpu_init();
	if (__builtin_cpu_supports("aes") && __builtin_cpu_supports("pclmul"))
		return DATAKEY_AES_256_GCM;
#elif defined(__aarch64__) && defined(__linux__)
	unsigned long caps = getauxval(AT_HWCAP);
	if ((caps & HWCAP_AES) && (caps & HWCAP_PMULL))
		return DATAKEY_AES_256_GCM;
#endif
	return DATAKEY_CHACHA20_POLY1305;
}

static void derive(const uint8_t secret[DATAKEY_SIZE], const char *label,
		   uint8_t out[DATAKEY_SIZE])
{
	unsigned int n = DATAKEY_SIZE;

	HMAC(EVP_sha256(), secret, DATAKEY_SIZE, (const uint8_t *)label,
	     strlen(label), out, &n);
}

static void key_from_secret(struct datakey *key, const uint8_t secret[DATAKEY_SIZE])
{
	uint8_t kcv[DATAKEY_SIZE];

	derive(secret, "rtcms id key v1", key->k_id);
	derive(secret, "rtcms enc key v1", key->k_enc);
	derive(secret, "rtcms key check v1", kcv);
	memcpy(key->kcv, kcv, DATAKEY_KCV_SIZE);
	sodium_memzero(kcv, sizeof(kcv));
}

void datakey_kcv_hex(const struct datakey *key, char buf[2 * DATAKEY_KCV_SIZE + 1])
{
	sodium_bin2hex(buf, 2 * DATAKEY_KCV_SIZE + 1, key->kcv, DATAKEY_KCV_SIZE);
}

void datakey_ring_wipe(struct datakey_ring *ring)
{
	sodium_memzero(ring, sizeof(*ring));
}

#define FAIL(...) do { snprintf(err, errlen, __VA_ARGS__); goto fail; } while (0)

/* Parse one key line (NUL-terminated, modifiable) into *key. */
static int parse_line(char *line, size_t lineno, struct datakey *key,
		      char *err, size_t errlen)
{
	char *tok[TOKENS_MAX] = { NULL }, *save = NULL, *end = NULL;
	uint8_t secret[DATAKEY_SIZE];
	size_t ntok = 0, bin_len = 0;
	const char *hexend = NULL;
	unsigned long long id;

	for (char *t = strtok_r(line, " \t", &save); t; t = strtok_r(NULL, " \t", &save)) {
		if (ntok == TOKENS_MAX)
			FAIL("line %zu: too many fields (expected \"%s <id> <cipher> "
			     "<64 hex digits> [retired]\")", lineno, LINE_PREFIX);
		tok[ntok++] = t;
	}
	if (ntok == 0 || strcmp(tok[0], LINE_PREFIX) != 0)
		FAIL("line %zu: not a data key (expected \"%s <id> <cipher> "
		     "<64 hex digits> [retired]\"; make a keyring with "
		     "`rtcmsctl keygen --data FILE`)", lineno, LINE_PREFIX);
	if (ntok < 4)
		FAIL("line %zu: missing fields (expected \"%s <id> <cipher> "
		     "<64 hex digits> [retired]\")", lineno, LINE_PREFIX);
	errno = 0;
	id = strtoull(tok[1], &end, 10);
	if (tok[1][0] < '1' || tok[1][0] > '9' || *end != '\0' || errno != 0 ||
	    id > UINT32_MAX)
		FAIL("line %zu: key id \"%s\" must be a number from 1 to %" PRIu32,
		     lineno, tok[1], UINT32_MAX);
	key->id = (uint32_t)id;
	if (datakey_cipher_parse(tok[2], &key->cipher) != 0)
		FAIL("line %zu: unknown cipher \"%s\" (aes-256-gcm or "
		     "chacha20-poly1305)", lineno, tok[2]);
	if (sodium_hex2bin(secret, sizeof(secret), tok[3], strlen(tok[3]), NULL,
			   &bin_len, &hexend) != 0 ||
	    bin_len != sizeof(secret) || *hexend != '\0')
		FAIL("line %zu: the key must be exactly 64 hex digits", lineno);
	key->retired = false;
	key->pending = false;
	if (ntok == 5) {
		if (strcmp(tok[4], "retired") == 0)
			key->retired = true;
		else if (strcmp(tok[4], "pending") == 0)
			key->pending = true;
		else
			FAIL("line %zu: unknown flag \"%s\" (\"pending\" or \"retired\")",
			     lineno, tok[4]);
	} else if (ntok > 5)
		FAIL("line %zu: too many fields", lineno);
	key_from_secret(key, secret);
	sodium_memzero(secret, sizeof(secret));
	return 0;
fail:
	sodium_memzero(secret, sizeof(secret));
	return RTCMS_ECONFIG;
}

int datakey_parse(const char *text, size_t len, struct datakey_ring *ring,
		  char *err, size_t errlen)
{
	char line[LINE_MAX_LEN + 1];
	size_t pos = 0, lineno = 0;
	int rc = RTCMS_ECONFIG;

	memset(ring, 0, sizeof(*ring));
	if (len > DATAKEY_FILE_MAX)
		FAIL("line 1: the keyring is over %d bytes", DATAKEY_FILE_MAX);
	while (pos < len) {
		const char *nl = memchr(text + pos, '\n', len - pos);
		size_t n = nl ? (size_t)(nl - (text + pos)) : len - pos;
		size_t start = 0;

		lineno++;
		if (n > LINE_MAX_LEN)
			FAIL("line %zu: longer than %d bytes", lineno, LINE_MAX_LEN);
		memcpy(line, text + pos, n);
		line[n] = '\0';
		pos += n + (nl != NULL);
		if (memchr(line, '\0', n))
			FAIL("line %zu: contains a NUL byte", lineno);
		if (n > 0 && line[n - 1] == '\r')
			line[--n] = '\0';
		while (line[start] == ' ' || line[start] == '\t')
			start++;
		if (line[start] == '\0' || line[start] == '#')
			continue;
		if (ring->count == DATAKEY_MAX)
			FAIL("line %zu: more than %d keys", lineno, DATAKEY_MAX);
		struct datakey *key = &ring->keys[ring->count];
		if (parse_line(line + start, lineno, key, err, errlen) != 0)
			goto fail;
		if (datakey_find(ring, key->id))
			FAIL("line %zu: key id %" PRIu32 " appears twice", lineno,
			     key->id);
		ring->count++;
	}
	if (ring->count == 0)
		FAIL("line %zu: no data key (make a keyring with `rtcmsctl keygen "
		     "--data FILE`)", lineno ? lineno : 1);
	if (!datakey_active(ring))
		FAIL("line %zu: every key is pending or retired: one must seal new chunks",
		     lineno);
	sodium_memzero(line, sizeof(line));
	return 0;
fail:
	sodium_memzero(line, sizeof(line));
	datakey_ring_wipe(ring);
	return rc;
}

const struct datakey *datakey_active(const struct datakey_ring *ring)
{
	const struct datakey *best = NULL;

	for (size_t i = 0; i < ring->count; i++)
		if (!ring->keys[i].retired && !ring->keys[i].pending &&
		    (!best || ring->keys[i].id > best->id))
			best = &ring->keys[i];
	return best;
}

const struct datakey *datakey_find(const struct datakey_ring *ring, uint32_t id)
{
	for (size_t i = 0; i < ring->count; i++)
		if (ring->keys[i].id == id)
			return &ring->keys[i];
	return NULL;
}

/* The keyring file's text into *buf (malloc'ed, *len bytes, NUL after),
 * checked: a regular file nobody else may read or write, at most
 * DATAKEY_FILE_MAX bytes. 0 or RTCMS_ECONFIG / RTCMS_EIO / RTCMS_ENOMEM. */
static int keyring_read(const char *path, char **buf, size_t *len, char *err, size_t errlen)
{
	struct stat st;
	ssize_t n = 0;
	int fd, rc = 0;

	*buf = NULL;
	rc = keyfile_open_secret(path, "the data keyring", &fd, &st, err, errlen);
	if (rc)
		return rc;
	if (st.st_size > DATAKEY_FILE_MAX) {
		snprintf(err, errlen, "%s: the data keyring is over %d bytes", path,
			 DATAKEY_FILE_MAX);
		rc = RTCMS_ECONFIG;
	} else if (!(*buf = malloc(DATAKEY_FILE_MAX + 2))) {
		snprintf(err, errlen, "%s: out of memory", path);
		rc = RTCMS_ENOMEM;
	}
	while (rc == 0) {
		ssize_t r = read(fd, *buf + n, (size_t)(DATAKEY_FILE_MAX + 1 - n));
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			snprintf(err, errlen, "%s: cannot read the data keyring: %s",
				 path, strerror(errno));
			rc = RTCMS_EIO;
			break;
		}
		n += r;
		if (r == 0 || n > DATAKEY_FILE_MAX)
			break;
	}
	close(fd);
	if (rc) {
		free(*buf);
		*buf = NULL;
		return rc;
	}
	(*buf)[n] = '\0';
	*len = (size_t)n;
	return 0;
}

static void keyring_free(char *buf)
{
	if (buf) {
		sodium_memzero(buf, DATAKEY_FILE_MAX + 2);
		free(buf);
	}
}

int datakey_load(const char *path, struct datakey_ring *ring, char *err,
		 size_t errlen)
{
	char *buf, msg[512];
	size_t n;
	int rc;

	memset(ring, 0, sizeof(*ring));
	if ((rc = keyring_read(path, &buf, &n, err, errlen)) != 0)
		return rc;
	rc = datakey_parse(buf, n, ring, msg, sizeof(msg));
	if (rc != 0)
		snprintf(err, errlen, "%s:%s", path, msg + strlen("line "));
	keyring_free(buf);
	return rc;
}

/* The id of a key line (0: not one). */
static uint32_t line_id(const char *line, size_t len)
{
	char copy[LINE_MAX_LEN + 1], *save = NULL;

	if (len > LINE_MAX_LEN)
		return 0;
	memcpy(copy, line, len);
	copy[len] = '\0';
	char *t = strtok_r(copy, " \t\r", &save);
	if (!t || strcmp(t, LINE_PREFIX) != 0 || !(t = strtok_r(NULL, " \t\r", &save)))
		return 0;
	unsigned long long v = strtoull(t, NULL, 10);
	sodium_memzero(copy, sizeof(copy));
	return v <= UINT32_MAX ? (uint32_t)v : 0;
}

/* Line with its flag set to flag ("" for none) into out. */
static size_t line_flag(const char *line, size_t len, const char *flag, char *out)
{
	char copy[LINE_MAX_LEN + 1], *tok[4], *save = NULL;
	int n = 0;

	memcpy(copy, line, len);
	copy[len] = '\0';
	for (char *t = strtok_r(copy, " \t\r", &save); t && n < 4; t = strtok_r(NULL, " \t\r", &save))
		tok[n++] = t;
	int w = snprintf(out, LINE_MAX_LEN + 1, "%s %s %s %s%s%s", tok[0], tok[1], tok[2], tok[3],
			 flag[0] ? " " : "", flag);
	sodium_memzero(copy, sizeof(copy));
	return (size_t)w;
}

/* Write text to path atomically: path.tmp (0600), flushed, renamed. */
static int keyring_write(const char *path, const char *text, size_t len, char *err,
			 size_t errlen)
{
	char tmp[4200];
	int rc;

	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	unlink(tmp);
	if ((rc = keyfile_write_new(tmp, 0, text, len, "the data keyring", err, errlen)) != 0)
		return rc;
	if (rename(tmp, path) != 0) {
		snprintf(err, errlen, "%s: cannot replace the data keyring: %s", path,
			 strerror(errno));
		unlink(tmp);
		return RTCMS_EIO;
	}
	return 0;
}

int datakey_edit(const char *path, enum datakey_edit op, enum datakey_cipher cipher,
		 uint32_t *id, char *err, size_t errlen)
{
	struct datakey_ring ring;
	char *buf = NULL, *out = NULL, msg[512];
	size_t n, outlen = 0;
	bool found = false;
	uint32_t max = 0;
	int rc;

	if ((rc = datakey_load(path, &ring, err, errlen)) != 0)
		return rc;
	for (size_t i = 0; i < ring.count; i++)
		max = ring.keys[i].id > max ? ring.keys[i].id : max;
	datakey_ring_wipe(&ring);
	if ((rc = keyring_read(path, &buf, &n, err, errlen)) != 0)
		return rc;
	if (!(out = malloc(DATAKEY_FILE_MAX + 2 * LINE_MAX_LEN))) {
		snprintf(err, errlen, "%s: out of memory", path);
		rc = RTCMS_ENOMEM;
		goto out;
	}
	for (size_t pos = 0; pos < n;) {
		const char *nl = memchr(buf + pos, '\n', n - pos);
		size_t len = nl ? (size_t)(nl - (buf + pos)) : n - pos;
		uint32_t lid = line_id(buf + pos, len);
		if ((op == DATAKEY_ACTIVATE || op == DATAKEY_RETIRE) && lid && lid == *id) {
			outlen += line_flag(buf + pos, len, op == DATAKEY_RETIRE ? "retired" : "",
					    out + outlen);
			found = true;
		} else {
			memcpy(out + outlen, buf + pos, len);
			outlen += len;
		}
		out[outlen++] = '\n';
		pos += len + (nl != NULL);
	}
	if (op == DATAKEY_ADD || op == DATAKEY_ADD_PENDING) {
		uint8_t secret[DATAKEY_SIZE];
		char hex[2 * DATAKEY_SIZE + 1];
		if (max == UINT32_MAX) {
			snprintf(err, errlen, "%s: no key id is left", path);
			rc = RTCMS_ECONFIG;
			goto out;
		}
		*id = max + 1;
		randombytes_buf(secret, sizeof(secret));
		sodium_bin2hex(hex, sizeof(hex), secret, sizeof(secret));
		outlen += (size_t)snprintf(out + outlen, 2 * LINE_MAX_LEN, "%s %" PRIu32 " %s %s%s\n",
					   LINE_PREFIX, *id, datakey_cipher_name(cipher), hex,
					   op == DATAKEY_ADD_PENDING ? " pending" : "");
		sodium_memzero(secret, sizeof(secret));
		sodium_memzero(hex, sizeof(hex));
		found = true;
	}
	if (!found) {
		snprintf(err, errlen, "%s: no data key %" PRIu32, path, *id);
		rc = RTCMS_ENOENT;
		goto out;
	}
	if (datakey_parse(out, outlen, &ring, msg, sizeof(msg)) != 0) {
		snprintf(err, errlen, "%s: refused, the keyring would not be valid: %s", path,
			 msg);
		rc = RTCMS_ECONFIG;
		goto out;
	}
	datakey_ring_wipe(&ring);
	rc = keyring_write(path, out, outlen, err, errlen);
out:
	keyring_free(buf);
	if (out) {
		sodium_memzero(out, DATAKEY_FILE_MAX + 2 * LINE_MAX_LEN);
		free(out);
	}
	return rc;
}

int datakey_generate(const char *path, enum datakey_cipher cipher, int force,
		     char *err, size_t errlen)
{
	uint8_t secret[DATAKEY_SIZE];
	char hex[2 * DATAKEY_SIZE + 1], line[LINE_MAX_LEN];
	int len, rc;

	if (sodium_init() < 0) {
		snprintf(err, errlen, "libsodium failed to initialise");
		return RTCMS_EINTERNAL;
	}
	randombytes_buf(secret, sizeof(secret));
	sodium_bin2hex(hex, sizeof(hex), secret, sizeof(secret));
	len = snprintf(line, sizeof(line),
		       "# rtcms data keyring: keep it secret, give it to every agent\n"
		       "%s 1 %s %s\n", LINE_PREFIX, datakey_cipher_name(cipher), hex);
	rc = keyfile_write_new(path, force, line, (size_t)len, "the data keyring",
			       err, errlen);
	sodium_memzero(secret, sizeof(secret));
	sodium_memzero(hex, sizeof(hex));
	sodium_memzero(line, sizeof(line));
	return rc;
}
