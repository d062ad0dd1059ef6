/*
 * bench_crypto.c - single-core speed of the primitives a checkpoint's
 * bytes can pass through: the candidate AEADs for sealing a chunk once,
 * the candidate keyed hashes for its content id, the checksum the store
 * checks sealed chunks with, and memcpy beside them, measured in the same
 * run. Each primitive runs over a 256 MiB buffer in 1 MiB calls (a chunk
 * each, as the data path calls it), median of 3 passes.
 *
 *   bench_crypto [--append FILE.md] [--quick]
 */
#include <openssl/evp.h>
#include <openssl/params.h>
#include <sodium.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define XXH_INLINE_ALL
#include <xxhash.h>

#include "bench_stats.h"

#define CHUNK (1u << 20)

struct run {
	uint8_t *in, *out;
	size_t len;
	uint8_t key[32];
	EVP_CIPHER_CTX *cx;
	EVP_MAC_CTX *mac;
	crypto_aead_aes256gcm_state aes;
};

typedef bool (*pass_fn)(struct run *r);

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static volatile uint8_t sink;

static bool p_memcpy(struct run *r)
{
	for (size_t o = 0; o < r->len; o += CHUNK)
		memcpy(r->out + o, r->in + o, CHUNK);
	sink ^= r->out[r->len - 1];
	return true;
}

static bool p_sodium_blake2b(struct run *r)
{
	uint8_t h[32];
	for (size_t o = 0; o < r->len; o += CHUNK)
		crypto_generichash(h, 32, r->in + o, CHUNK, r->key, 32);
	sink ^= h[0];
	return true;
}

static bool p_sodium_chacha(struct run *r)
{
	uint8_t n[12] = { 0 }, tag[16];
	for (size_t o = 0; o < r->len; o += CHUNK)
		crypto_aead_chacha20poly1305_ietf_encrypt_detached(r->out + o, tag, NULL,
			r->in + o, CHUNK, NULL, 0, NULL, n, r->key);
	sink ^= tag[0];
	return true;
}

static bool p_sodium_aes(struct run *r)
{
	uint8_t n[12] = { 0 }, tag[16];
	if (!crypto_aead_aes256gcm_is_available())
		return false;
	for (size_t o = 0; o < r->len; o += CHUNK)
		crypto_aead_aes256gcm_encrypt_detached_afternm(r->out + o, tag, NULL, r->in + o,
							       CHUNK, NULL, 0, NULL, n, &r->aes);
	sink ^= tag[0];
	return true;
}

/* An OpenSSL AEAD over every chunk, a fresh key each chunk (as a sealer
 * with a key per content would); decrypt: open what encrypt sealed. */
static bool ossl_aead(struct run *r, const EVP_CIPHER *c, bool decrypt, bool aad_only)
{
	uint8_t n[12] = { 0 }, tag[16] = { 0 };
	int l;
	for (size_t o = 0; o < r->len; o += CHUNK) {
		r->key[0] = (uint8_t)(o >> 20);
		if (decrypt) {
			if (!EVP_DecryptInit_ex(r->cx, c, NULL, r->key, n) ||
			    !EVP_DecryptUpdate(r->cx, r->in + o, &l, r->out + o, CHUNK) ||
			    !EVP_CIPHER_CTX_ctrl(r->cx, EVP_CTRL_AEAD_SET_TAG, 16,
						 r->out + r->len + (o >> 20) * 16))
				return false;
			if (EVP_DecryptFinal_ex(r->cx, r->in + o + l, &l) <= 0)
				return false;
			continue;
		}
		if (!EVP_EncryptInit_ex(r->cx, c, NULL, r->key, n))
			return false;
		if (aad_only) {
			if (!EVP_EncryptUpdate(r->cx, NULL, &l, r->in + o, CHUNK))
				return false;
		} else if (!EVP_EncryptUpdate(r->cx, r->out + o, &l, r->in + o, CHUNK)) {
			return false;
		}
		if (!EVP_EncryptFinal_ex(r->cx, tag, &l) ||
		    !EVP_CIPHER_CTX_ctrl(r->cx, EVP_CTRL_AEAD_GET_TAG, 16, tag))
			return false;
		if (!aad_only)
			memcpy(r->out + r->len + (o >> 20) * 16, tag, 16);
	}
	sink ^= tag[0];
	return true;
}

static bool p_ossl_aes(struct run *r)
{
	return ossl_aead(r, EVP_aes_256_gcm(), false, false);
}

static bool p_ossl_aes_open(struct run *r)
{
	/* seal once unmeasured by the caller's warm-up, then open */
	return ossl_aead(r, EVP_aes_256_gcm(), true, false);
}

static bool p_ossl_chacha(struct run *r)
{
	return ossl_aead(r, EVP_chacha20_poly1305(), false, false);
}

static bool p_ossl_gmac(struct run *r)
{
	return ossl_aead(r, EVP_aes_256_gcm(), false, true);
}

static bool p_ossl_digest(struct run *r, const EVP_MD *md)
{
	uint8_t h[EVP_MAX_MD_SIZE];
	unsigned int hl;
	for (size_t o = 0; o < r->len; o += CHUNK)
		if (!EVP_Digest(r->in + o, CHUNK, h, &hl, md, NULL))
			return false;
	sink ^= h[0];
	return true;
}

static bool p_ossl_sha256(struct run *r)
{
	return p_ossl_digest(r, EVP_sha256());
}

static bool p_ossl_blake2b(struct run *r)
{
	return p_ossl_digest(r, EVP_blake2b512());
}

static bool p_ossl_mac(struct run *r)
{
	uint8_t h[64];
	size_t hl;
	for (size_t o = 0; o < r->len; o += CHUNK)
		if (!EVP_MAC_init(r->mac, r->key, 32, NULL) ||
		    !EVP_MAC_update(r->mac, r->in + o, CHUNK) ||
		    !EVP_MAC_final(r->mac, h, &hl, sizeof(h)))
			return false;
	sink ^= h[0];
	return true;
}

static bool p_sodium_poly1305(struct run *r)
{
	uint8_t tag[16];
	for (size_t o = 0; o < r->len; o += CHUNK) {
		r->key[0] = (uint8_t)(o >> 20); /* a one-time key per chunk */
		crypto_onetimeauth_poly1305(tag, r->in + o, CHUNK, r->key);
	}
	sink ^= tag[0];
	return true;
}

static bool p_xxh3_lib(struct run *r)
{
	XXH128_hash_t h = { 0, 0 };
	for (size_t o = 0; o < r->len; o += CHUNK)
		h = (XXH3_128bits)(r->in + o, CHUNK);
	sink ^= (uint8_t)h.low64;
	return true;
}

static bool p_xxh3_inline(struct run *r)
{
	XXH128_hash_t h = { 0, 0 };
	for (size_t o = 0; o < r->len; o += CHUNK)
		h = XXH3_128bits(r->in + o, CHUNK);
	sink ^= (uint8_t)h.low64;
	return true;
}

struct cand {
	const char *name;
	const char *role;
	pass_fn fn;
	const char *mac;      /* EVP_MAC to set up, or NULL */
	const char *digest;   /* its digest parameter (HMAC) */
};

static const struct cand cands[] = {
	{ "memcpy", "the machine's limit", p_memcpy, NULL, NULL },
	{ "libsodium BLAKE2b-256 (keyed)", "content id", p_sodium_blake2b, NULL, NULL },
	{ "OpenSSL BLAKE2b-512", "content id (unkeyed)", p_ossl_blake2b, NULL, NULL },
	{ "OpenSSL BLAKE2BMAC-512 (keyed)", "content id", p_ossl_mac, "BLAKE2BMAC", NULL },
	{ "OpenSSL SHA-256", "content id (unkeyed)", p_ossl_sha256, NULL, NULL },
	{ "OpenSSL HMAC-SHA-256", "content id", p_ossl_mac, "HMAC", "SHA256" },
	{ "libsodium ChaCha20-Poly1305", "AEAD", p_sodium_chacha, NULL, NULL },
	{ "libsodium AES-256-GCM", "AEAD", p_sodium_aes, NULL, NULL },
	{ "OpenSSL AES-256-GCM seal", "AEAD", p_ossl_aes, NULL, NULL },
	{ "OpenSSL AES-256-GCM open", "AEAD", p_ossl_aes_open, NULL, NULL },
	{ "OpenSSL ChaCha20-Poly1305 seal", "AEAD (no AES-NI)", p_ossl_chacha, NULL, NULL },
	{ "OpenSSL GMAC (AES-256-GCM, no data)", "MAC only", p_ossl_gmac, NULL, NULL },
	{ "OpenSSL Poly1305 (one-time key per chunk)", "MAC only", p_ossl_mac, "POLY1305", NULL },
	{ "libsodium Poly1305 (one-time key per chunk)", "MAC only", p_sodium_poly1305, NULL, NULL },
	{ "XXH3-128 (libxxhash call)", "checksum", p_xxh3_lib, NULL, NULL },
	{ "XXH3-128 (inlined, baseline -O2)", "checksum", p_xxh3_inline, NULL, NULL },
};
#define NCANDS (sizeof(cands) / sizeof(cands[0]))

static EVP_MAC_CTX *mac_new(const struct cand *c)
{
	EVP_MAC *m = EVP_MAC_fetch(NULL, c->mac, NULL);
	if (!m)
		return NULL;
	EVP_MAC_CTX *cx = EVP_MAC_CTX_new(m);
	EVP_MAC_free(m);
	if (cx && c->digest) {
		OSSL_PARAM p[] = { OSSL_PARAM_construct_utf8_string("digest", (char *)c->digest, 0),
				   OSSL_PARAM_construct_end() };
		if (!EVP_MAC_CTX_set_params(cx, p)) {
			EVP_MAC_CTX_free(cx);
			return NULL;
		}
	}
	return cx;
}

/* GB/s of c: median of passes over r (0: unavailable here). */
static double measure(const struct cand *c, struct run *r, int passes)
{
	double v[5];
	if (c->mac && !(r->mac = mac_new(c)))
		return 0;
	if (c->fn == p_ossl_aes_open && !p_ossl_aes(r)) /* something to open */
		return 0;
	bool ok = true;
	for (int i = 0; ok && i < passes; i++) {
		double t = now_s();
		ok = c->fn(r);
		v[i] = (double)r->len / (now_s() - t) / 1e9;
	}
	EVP_MAC_CTX_free(r->mac);
	r->mac = NULL;
	return ok ? bench_pct(v, passes, 0.5) : 0;
}

int main(int argc, char **argv)
{
	const char *append;
	int quick;
	if (bench_args(argc, argv, "bench_crypto", &append, &quick))
		return 2;
	if (sodium_init() < 0)
		return 1;
	struct run r = { .len = (quick ? 64u : 256u) << 20 };
	int passes = quick ? 1 : 3;
	r.in = malloc(r.len);
	r.out = malloc(r.len + (r.len / CHUNK) * 16);
	r.cx = EVP_CIPHER_CTX_new();
	if (!r.in || !r.out || !r.cx)
		return 1;
	randombytes_buf(r.in, r.len);
	memset(r.out, 0, r.len + (r.len / CHUNK) * 16);
	randombytes_buf(r.key, sizeof(r.key));
	crypto_aead_aes256gcm_beforenm(&r.aes, r.key);

	char table[8192];
	size_t tl = 0;
	double mc = 0;
	tl += (size_t)snprintf(table + tl, sizeof(table) - tl,
		"## Primitives, one core (bench/bench_crypto.c)\n\n"
		"Each over a %zu MiB buffer of random bytes in 1 MiB calls (one chunk each, "
		"as the data path calls them; OpenSSL AEADs set a fresh key per call), median of "
		"%d passes, in one run on this machine (its load below). libsodium %s, %s, "
		"libxxhash %u. AES-NI: %s.\n\n"
		"| primitive | role | GB/s | x memcpy |\n|---|---|---|---|\n",
		r.len >> 20, passes, sodium_version_string(),
		OpenSSL_version(OPENSSL_VERSION), XXH_versionNumber(),
		crypto_aead_aes256gcm_is_available() ? "yes" : "no");
	for (size_t i = 0; i < NCANDS; i++) {
		double g = measure(&cands[i], &r, passes);
		if (i == 0)
			mc = g;
		if (g == 0)
			tl += (size_t)snprintf(table + tl, sizeof(table) - tl,
					       "| %s | %s | unavailable | |\n", cands[i].name,
					       cands[i].role);
		else
			tl += (size_t)snprintf(table + tl, sizeof(table) - tl,
					       "| %s | %s | %.2f | %.3f |\n", cands[i].name,
					       cands[i].role, g, mc > 0 ? g / mc : 0);
		fprintf(stderr, "bench_crypto: %-40s %.2f GB/s\n", cands[i].name, g);
	}
	double la[3] = { 0, 0, 0 };
	FILE *f = fopen("/proc/loadavg", "r");
	if (f) {
		if (fscanf(f, "%lf %lf %lf", &la[0], &la[1], &la[2]) != 3)
			la[0] = la[1] = la[2] = 0;
		fclose(f);
	}
	tl += (size_t)snprintf(table + tl, sizeof(table) - tl,
			       "\nLoad average at the end of the run: %.2f %.2f %.2f (2 cores).\n",
			       la[0], la[1], la[2]);
	fputs(table, stdout);
	EVP_CIPHER_CTX_free(r.cx);
	free(r.in);
	free(r.out);
	char out[sizeof(table) + 2];
	snprintf(out, sizeof(out), "\n%s", table);
	return bench_append(append, out);
}
