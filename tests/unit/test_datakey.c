/* test_datakey.c - the data keyring (parse, load, generate) and sealed
 * chunks (seal, open, sum): known answers computed independently, every
 * way a keyring or a sealed chunk can be wrong. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "proto/session.h"
#include "rtcms_error.h"
#include "stream/chunk.h"
#include "testutil.h"
#include "util/datakey.h"

#define HEX32 "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"
#define HEX32B "f0e0d0c0b0a090807060504030201000f0e0d0c0b0a090807060504030201000"

static void parse_ok(const char *text, struct datakey_ring *ring)
{
	char err[512] = "";
	int rc = datakey_parse(text, strlen(text), ring, err, sizeof(err));
	if (rc != 0)
		fail_msg("parse failed: %s", err);
}

static void parse_bad(const char *text, const char *what)
{
	struct datakey_ring ring;
	char err[512] = "";

	assert_int_equal(datakey_parse(text, strlen(text), &ring, err, sizeof(err)),
			 RTCMS_ECONFIG);
	if (!strstr(err, what))
		fail_msg("error \"%s\" does not say \"%s\"", err, what);
	assert_int_equal(ring.count, 0);
}

static void test_parse(void **state)
{
	(void)state;
	struct datakey_ring ring;
	char kcv[17];

	parse_ok("# comment\n\n  rtcms-data-key-v1 1 aes-256-gcm " HEX32 "\n", &ring);
	assert_int_equal(ring.count, 1);
	assert_int_equal(datakey_active(&ring)->id, 1);
	assert_int_equal(datakey_active(&ring)->cipher, DATAKEY_AES_256_GCM);
	/* the key check value, computed with python's hmac */
	datakey_kcv_hex(datakey_active(&ring), kcv);
	assert_string_equal(kcv, "a192e845e8aafbb0");

	/* the active key is the highest id not retired, whatever the order */
	parse_ok("rtcms-data-key-v1 9 chacha20-poly1305 " HEX32B " retired\r\n"
		 "rtcms-data-key-v1 3 aes-256-gcm " HEX32 "\n"
		 "rtcms-data-key-v1\t4294967295\tchacha20-poly1305\t" HEX32B, &ring);
	assert_int_equal(ring.count, 3);
	assert_int_equal(datakey_active(&ring)->id, 4294967295u);
	assert_true(datakey_find(&ring, 9)->retired);
	assert_null(datakey_find(&ring, 4));
	assert_memory_not_equal(datakey_find(&ring, 3)->kcv, datakey_find(&ring, 9)->kcv,
				DATAKEY_KCV_SIZE);
	parse_ok("rtcms-data-key-v1 2 aes-256-gcm " HEX32 "\n"
		 "rtcms-data-key-v1 5 aes-256-gcm " HEX32B " retired\n", &ring);
	assert_int_equal(datakey_active(&ring)->id, 2);
	datakey_ring_wipe(&ring);
}

static void test_parse_bad(void **state)
{
	(void)state;
	char big[DATAKEY_FILE_MAX + 2];

	parse_bad("", "no data key");
	parse_bad("# only a comment\n", "no data key");
	parse_bad("rtcms-key-v1 " HEX32 "\n", "line 1: not a data key");
	parse_bad("\nrtcms-data-key-v1 1 aes-256-gcm\n", "line 2: missing fields");
	parse_bad("rtcms-data-key-v1 0 aes-256-gcm " HEX32 "\n", "key id \"0\"");
	parse_bad("rtcms-data-key-v1 01 aes-256-gcm " HEX32 "\n", "key id");
	parse_bad("rtcms-data-key-v1 -1 aes-256-gcm " HEX32 "\n", "key id");
	parse_bad("rtcms-data-key-v1 4294967296 aes-256-gcm " HEX32 "\n", "key id");
	parse_bad("rtcms-data-key-v1 1x aes-256-gcm " HEX32 "\n", "key id");
	parse_bad("rtcms-data-key-v1 1 aes-128-gcm " HEX32 "\n", "unknown cipher");
	parse_bad("rtcms-data-key-v1 1 aes-256-gcm " HEX32 "00\n", "64 hex digits");
	parse_bad("rtcms-data-key-v1 1 aes-256-gcm 0001\n", "64 hex digits");
	parse_bad("rtcms-data-key-v1 1 aes-256-gcm zz" HEX32 "\n", "64 hex digits");
	parse_bad("rtcms-data-key-v1 1 aes-256-gcm " HEX32 " old\n", "unknown flag");
	parse_bad("rtcms-data-key-v1 1 aes-256-gcm " HEX32 " retired x\n", "too many");
	parse_bad("rtcms-data-key-v1 1 aes-256-gcm " HEX32 "\n"
		  "rtcms-data-key-v1 1 chacha20-poly1305 " HEX32B "\n", "line 2: key id 1 appears twice");
	parse_bad("rtcms-data-key-v1 1 aes-256-gcm " HEX32 " retired\n", "every key is pending or retired");
	{
		static const char nul[] = "rtcms-data-key-v1 1 aes-256-gcm " HEX32 "\0\n";
		struct datakey_ring ring;
		char err[256];
		assert_int_equal(datakey_parse(nul, sizeof(nul) - 1, &ring, err, sizeof(err)),
				 RTCMS_ECONFIG);
		assert_non_null(strstr(err, "NUL"));
	}
	memset(big, '#', sizeof(big));
	big[sizeof(big) - 1] = '\0';
	parse_bad(big, "over");
	memset(big, ' ', 300);
	big[300] = '\0';
	parse_bad(big, "longer than");
	/* more keys than a ring holds */
	{
		static char many[DATAKEY_MAX * 110 + 200];
		size_t n = 0;
		for (int i = 1; i <= DATAKEY_MAX + 1; i++)
			n += (size_t)snprintf(many + n, sizeof(many) - n,
					      "rtcms-data-key-v1 %d aes-256-gcm " HEX32 "\n", i);
		parse_bad(many, "more than");
	}
}

static void write_file(const char *path, const char *text, mode_t mode)
{
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
	assert_int_equal(chmod(path, mode), 0);
}

static void test_load_generate(void **state)
{
	(void)state;
	char *dir = tu_tmpdir("datakey");
	char path[512], err[1024];
	struct datakey_ring a, b;
	struct stat st;

	snprintf(path, sizeof(path), "%s/data.keys", dir);
	assert_int_equal(datakey_generate(path, DATAKEY_CHACHA20_POLY1305, 0, err, sizeof(err)), 0);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	assert_int_equal(datakey_load(path, &a, err, sizeof(err)), 0);
	assert_int_equal(datakey_active(&a)->id, 1);
	assert_int_equal(datakey_active(&a)->cipher, DATAKEY_CHACHA20_POLY1305);
	assert_int_equal(datakey_generate(path, DATAKEY_AES_256_GCM, 0, err, sizeof(err)),
			 RTCMS_EEXIST);
	assert_non_null(strstr(err, "--force"));
	assert_int_equal(datakey_generate(path, DATAKEY_AES_256_GCM, 1, err, sizeof(err)), 0);
	assert_int_equal(datakey_load(path, &b, err, sizeof(err)), 0);
	assert_int_equal(datakey_active(&b)->cipher, DATAKEY_AES_256_GCM);
	assert_memory_not_equal(a.keys[0].k_enc, b.keys[0].k_enc, DATAKEY_SIZE);

	/* a keyring others may read is refused, naming the file and the fix */
	assert_int_equal(chmod(path, 0640), 0);
	assert_int_equal(datakey_load(path, &a, err, sizeof(err)), RTCMS_ECONFIG);
	assert_non_null(strstr(err, path));
	assert_non_null(strstr(err, "chmod 600"));
	/* a bad line is named by file and line */
	write_file(path, "# keys\nrtcms-data-key-v1 1 aes-256-gcm 00\n", 0600);
	assert_int_equal(datakey_load(path, &a, err, sizeof(err)), RTCMS_ECONFIG);
	char want[600];
	snprintf(want, sizeof(want), "%s:2: ", path);
	assert_non_null(strstr(err, want));
	assert_int_equal(datakey_load("/nonexistent/k", &a, err, sizeof(err)), RTCMS_ECONFIG);
	assert_int_equal(datakey_load(dir, &a, err, sizeof(err)), RTCMS_ECONFIG);
	tu_rmrf(dir);
	free(dir);
}

static void test_edit(void **state)
{
	(void)state;
	char *dir = tu_tmpdir("datakey");
	char path[512], err[1024], text[4096];
	struct datakey_ring r;
	struct stat st;
	uint32_t id = 0;

	snprintf(path, sizeof(path), "%s/k", dir);
	write_file(path, "# our keys\nrtcms-data-key-v1 4 aes-256-gcm " HEX32 "\n", 0600);
	assert_int_equal(datakey_edit(path, DATAKEY_ADD_PENDING, DATAKEY_CHACHA20_POLY1305, &id,
				      err, sizeof(err)), 0);
	assert_int_equal(id, 5);
	assert_int_equal(datakey_load(path, &r, err, sizeof(err)), 0);
	assert_int_equal(datakey_active(&r)->id, 4);
	assert_true(datakey_find(&r, 5)->pending);
	assert_int_equal(datakey_find(&r, 5)->cipher, DATAKEY_CHACHA20_POLY1305);
	uint8_t kcv5[DATAKEY_KCV_SIZE];
	memcpy(kcv5, datakey_find(&r, 5)->kcv, sizeof(kcv5));
	id = 5;
	assert_int_equal(datakey_edit(path, DATAKEY_ACTIVATE, 0, &id, err, sizeof(err)), 0);
	id = 4;
	assert_int_equal(datakey_edit(path, DATAKEY_RETIRE, 0, &id, err, sizeof(err)), 0);
	assert_int_equal(datakey_load(path, &r, err, sizeof(err)), 0);
	assert_int_equal(datakey_active(&r)->id, 5);
	assert_memory_equal(datakey_active(&r)->kcv, kcv5, sizeof(kcv5)); /* the same key */
	assert_true(datakey_find(&r, 4)->retired);
	/* comments kept, mode kept */
	FILE *f = fopen(path, "r");
	size_t n = fread(text, 1, sizeof(text) - 1, f);
	fclose(f);
	text[n] = '\0';
	assert_non_null(strstr(text, "# our keys\n"));
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	/* refused: no such key; a result with no key to seal under */
	id = 9;
	assert_int_equal(datakey_edit(path, DATAKEY_RETIRE, 0, &id, err, sizeof(err)), RTCMS_ENOENT);
	id = 5;
	assert_int_equal(datakey_edit(path, DATAKEY_RETIRE, 0, &id, err, sizeof(err)),
			 RTCMS_ECONFIG);
	assert_non_null(strstr(err, "would not be valid"));
	assert_int_equal(datakey_load(path, &r, err, sizeof(err)), 0);
	assert_int_equal(datakey_active(&r)->id, 5); /* unchanged */
	/* a plain add is active at once */
	assert_int_equal(datakey_edit(path, DATAKEY_ADD, DATAKEY_AES_256_GCM, &id, err,
				      sizeof(err)), 0);
	assert_int_equal(id, 6);
	assert_int_equal(datakey_load(path, &r, err, sizeof(err)), 0);
	assert_int_equal(datakey_active(&r)->id, 6);
	/* a keyring others may read is not edited */
	assert_int_equal(chmod(path, 0644), 0);
	assert_int_equal(datakey_edit(path, DATAKEY_ADD, DATAKEY_AES_256_GCM, &id, err,
				      sizeof(err)), RTCMS_ECONFIG);
	datakey_ring_wipe(&r);
	tu_rmrf(dir);
	free(dir);
}

static void from_hex(const char *hex, uint8_t *out, size_t n)
{
	for (size_t i = 0; i < n; i++)
		sscanf(hex + 2 * i, "%2hhx", &out[i]);
}

/* Known answers from an independent implementation (python's hmac and
 * the cryptography package) pin the format. */
static void test_seal_known_answer(void **state)
{
	(void)state;
	struct datakey_ring ring;
	uint8_t id[STREAM_ID_SIZE], want_id[STREAM_ID_SIZE], sealed[3 + STREAM_TAG_SIZE];
	uint8_t want[sizeof(sealed)], sum[STREAM_SUM_SIZE], back[3];

	from_hex("491b102c7717521c483f304ee424884ee28297d3e95e7212fdafb3832696cc51",
		 want_id, sizeof(want_id));
	parse_ok("rtcms-data-key-v1 1 aes-256-gcm " HEX32 "\n", &ring);
	assert_int_equal(stream_chunk_seal(&ring.keys[0], (const uint8_t *)"abc", 3, id,
					   sealed, sum), 0);
	assert_memory_equal(id, want_id, sizeof(id));
	from_hex("e425e0df918dcae346e78b368cf85b7e681051", want, sizeof(want));
	assert_memory_equal(sealed, want, sizeof(want));
	assert_true(stream_chunk_sum_ok(sealed, sizeof(sealed), sum));
	assert_int_equal(stream_chunk_open(&ring.keys[0], id, sealed, sizeof(sealed), back), 0);
	assert_memory_equal(back, "abc", 3);

	/* the MAC for the store: under the chunk MAC key of cluster key
	 * 00 01 .. 1f, computed with python's hashlib, hmac and cryptography */
	struct proto_key cluster, kcm;
	for (int i = 0; i < PROTO_KEY_SIZE; i++)
		cluster.bytes[i] = (uint8_t)i;
	proto_chunk_mac_key(&cluster, &kcm);
	struct proto_chunk ch = { .len = 3, .key_id = 1, .data = sealed };
	memcpy(ch.hash, id, STREAM_ID_SIZE);
	assert_int_equal(stream_chunk_mac(&kcm, &ch, ch.mac), 0);
	from_hex("ae10a5024712cd61e0a270a0d04d0d0c", want, PROTO_CHUNK_MAC);
	assert_memory_equal(ch.mac, want, PROTO_CHUNK_MAC);
	assert_true(stream_chunk_mac_ok(&kcm, &ch));
	/* bound to the bytes, the id, the key id and the length */
	sealed[1] ^= 1;
	assert_false(stream_chunk_mac_ok(&kcm, &ch));
	sealed[1] ^= 1;
	ch.hash[0] ^= 1;
	assert_false(stream_chunk_mac_ok(&kcm, &ch));
	ch.hash[0] ^= 1;
	ch.key_id = 2;
	assert_false(stream_chunk_mac_ok(&kcm, &ch));
	ch.key_id = 1;
	ch.len = 2;
	assert_false(stream_chunk_mac_ok(&kcm, &ch));
	ch.len = 3;
	kcm.bytes[0] ^= 1;
	assert_false(stream_chunk_mac_ok(&kcm, &ch));

	parse_ok("rtcms-data-key-v1 1 chacha20-poly1305 " HEX32 "\n", &ring);
	assert_int_equal(stream_chunk_seal(&ring.keys[0], (const uint8_t *)"abc", 3, id,
					   sealed, sum), 0);
	assert_memory_equal(id, want_id, sizeof(id));
	from_hex("eb39957c8ba403eaaf064d29e089ba37dcbe3f", want, sizeof(want));
	assert_memory_equal(sealed, want, sizeof(want));
	datakey_ring_wipe(&ring);
}

static void seal_checks(const struct datakey *key, const struct datakey *other)
{
	size_t len = PROTO_MAX_CHUNK;
	uint8_t *plain = malloc(len), *sealed = malloc(len + STREAM_TAG_SIZE);
	uint8_t *again = malloc(len + STREAM_TAG_SIZE), *back = malloc(len);
	uint8_t id[STREAM_ID_SIZE], id2[STREAM_ID_SIZE], sum[STREAM_SUM_SIZE];
	uint8_t sum2[STREAM_SUM_SIZE];

	for (size_t i = 0; i < len; i++)
		plain[i] = (uint8_t)(i * 7 + (i >> 12));
	assert_int_equal(stream_chunk_seal(key, plain, len, id, sealed, sum), 0);
	assert_memory_not_equal(sealed, plain, 4096);
	/* deterministic: equal chunks deduplicate */
	assert_int_equal(stream_chunk_seal(key, plain, len, id2, again, sum2), 0);
	assert_memory_equal(id, id2, sizeof(id));
	assert_memory_equal(sealed, again, len + STREAM_TAG_SIZE);
	assert_memory_equal(sum, sum2, sizeof(sum));
	assert_int_equal(stream_chunk_open(key, id, sealed, len + STREAM_TAG_SIZE, back), 0);
	assert_memory_equal(back, plain, len);
	/* in place, both ways */
	memcpy(again, plain, len);
	assert_int_equal(stream_chunk_seal(key, again, len, id2, again, sum2), 0);
	assert_memory_equal(again, sealed, len + STREAM_TAG_SIZE);
	assert_int_equal(stream_chunk_open(key, id, again, len + STREAM_TAG_SIZE, again), 0);
	assert_memory_equal(again, plain, len);

	/* a flipped bit anywhere, in the data or the tag: no plaintext out */
	for (size_t at = 0; at < len + STREAM_TAG_SIZE; at += 104729) {
		memcpy(again, sealed, len + STREAM_TAG_SIZE);
		again[at] ^= 0x20;
		assert_false(stream_chunk_sum_ok(again, len + STREAM_TAG_SIZE, sum));
		assert_int_equal(stream_chunk_open(key, id, again, len + STREAM_TAG_SIZE, back),
				 RTCMS_ECORRUPT);
		assert_int_equal(back[0] | back[len / 2] | back[len - 1], 0);
	}
	/* opened as another chunk (another id), under another key, truncated */
	id2[0] = id[0] ^ 1;
	memcpy(id2 + 1, id + 1, sizeof(id) - 1);
	assert_int_equal(stream_chunk_open(key, id2, sealed, len + STREAM_TAG_SIZE, back),
			 RTCMS_ECORRUPT);
	assert_int_equal(stream_chunk_open(other, id, sealed, len + STREAM_TAG_SIZE, back),
			 RTCMS_ECORRUPT);
	assert_int_equal(stream_chunk_open(key, id, sealed, len + STREAM_TAG_SIZE - 1, back),
			 RTCMS_ECORRUPT);
	/* a different plaintext gets a different id */
	plain[len - 1] ^= 1;
	assert_int_equal(stream_chunk_seal(key, plain, len, id2, again, sum2), 0);
	assert_memory_not_equal(id, id2, sizeof(id));
	/* bad lengths */
	assert_int_equal(stream_chunk_seal(key, plain, 0, id, sealed, sum), RTCMS_EINVAL);
	assert_int_equal(stream_chunk_seal(key, plain, len + 1, id, sealed, sum), RTCMS_EINVAL);
	assert_int_equal(stream_chunk_open(key, id, sealed, STREAM_TAG_SIZE, back), RTCMS_EINVAL);
	assert_int_equal(stream_chunk_open(key, id, sealed, len + STREAM_TAG_SIZE + 1, back),
			 RTCMS_EINVAL);
	free(plain);
	free(sealed);
	free(again);
	free(back);
}

static void test_seal_open(void **state)
{
	(void)state;
	struct datakey_ring ring;

	parse_ok("rtcms-data-key-v1 1 aes-256-gcm " HEX32 "\n"
		 "rtcms-data-key-v1 2 chacha20-poly1305 " HEX32B "\n"
		 "rtcms-data-key-v1 3 aes-256-gcm " HEX32B "\n", &ring);
	seal_checks(datakey_find(&ring, 1), datakey_find(&ring, 3));
	seal_checks(datakey_find(&ring, 2), datakey_find(&ring, 1));
	/* the same secret under another id seals differently (the AD binds it) */
	{
		struct datakey_ring r2;
		uint8_t id[STREAM_ID_SIZE], s1[100 + STREAM_TAG_SIZE], sum[STREAM_SUM_SIZE];
		uint8_t back[100], p[100] = { 1, 2, 3 };
		parse_ok("rtcms-data-key-v1 7 aes-256-gcm " HEX32 "\n", &r2);
		assert_int_equal(stream_chunk_seal(&ring.keys[0], p, sizeof(p), id, s1, sum), 0);
		assert_int_equal(stream_chunk_open(&r2.keys[0], id, s1, sizeof(s1), back),
				 RTCMS_ECORRUPT);
		datakey_ring_wipe(&r2);
	}
	datakey_ring_wipe(&ring);
}

/* A program spec sealed by one agent opens at another with the same
 * keyring, for the same process only; damage, an unknown key id and
 * another key of the same id are refused; a plain spec is no sealed one. */
static void test_spec_seal(void **state)
{
	(void)state;
	struct datakey_ring ring, other, empty = { 0 };
	static const uint8_t spec[] = "\x00\x02 /usr/bin/vault --password=hunter2";
	uint8_t blob[sizeof(spec) + STREAM_SPEC_SEALED_EXTRA], back[sizeof(spec)];
	uint32_t key_id;

	parse_ok("rtcms-data-key-v1 1 aes-256-gcm " HEX32 "\n"
		 "rtcms-data-key-v1 2 chacha20-poly1305 " HEX32B "\n", &ring);
	parse_ok("rtcms-data-key-v1 2 chacha20-poly1305 " HEX32 "\n", &other);
	assert_false(stream_spec_is_sealed(spec, sizeof(spec)));
	int n = stream_spec_seal(datakey_active(&ring), "vault", spec, sizeof(spec), blob,
				 sizeof(blob));
	assert_int_equal(n, (int)sizeof(blob));
	assert_true(stream_spec_is_sealed(blob, sizeof(blob)));
	assert_null(memmem(blob, sizeof(blob), "hunter2", 7));
	/* deterministic: the same spec of the same process, the same blob */
	uint8_t again[sizeof(blob)];
	assert_int_equal(stream_spec_seal(datakey_active(&ring), "vault", spec, sizeof(spec),
					  again, sizeof(again)), n);
	assert_memory_equal(again, blob, sizeof(blob));

	assert_int_equal(stream_spec_open(&ring, "vault", blob, sizeof(blob), back, sizeof(back),
					  &key_id), (int)sizeof(spec));
	assert_int_equal(key_id, 2);
	assert_memory_equal(back, spec, sizeof(spec));
	/* another process's checkpoint, another key of id 2, no key 2 */
	assert_int_equal(stream_spec_open(&ring, "vault2", blob, sizeof(blob), back,
					  sizeof(back), &key_id), RTCMS_ECORRUPT);
	assert_int_equal(stream_spec_open(&other, "vault", blob, sizeof(blob), back,
					  sizeof(back), &key_id), RTCMS_ECORRUPT);
	assert_int_equal(stream_spec_open(&empty, "vault", blob, sizeof(blob), back,
					  sizeof(back), &key_id), RTCMS_ENOENT);
	assert_int_equal(key_id, 2);
	/* every byte damaged in turn, a truncation, too little room */
	for (size_t i = 4; i < sizeof(blob); i++) {
		blob[i] ^= 0x20;
		int rc = stream_spec_open(&ring, "vault", blob, sizeof(blob), back, sizeof(back),
					  &key_id);
		assert_true(rc == RTCMS_ECORRUPT || rc == RTCMS_ENOENT);
		blob[i] ^= 0x20;
	}
	assert_int_equal(stream_spec_open(&ring, "vault", blob, sizeof(blob) - 1, back,
					  sizeof(back), &key_id), RTCMS_ECORRUPT);
	assert_int_equal(stream_spec_open(&ring, "vault", blob, STREAM_SPEC_SEALED_EXTRA, back,
					  sizeof(back), &key_id), RTCMS_EPROTO);
	assert_int_equal(stream_spec_open(&ring, "vault", blob, sizeof(blob), back,
					  sizeof(back) - 1, &key_id), RTCMS_ETOOBIG);
	assert_int_equal(stream_spec_seal(datakey_active(&ring), "vault", spec, sizeof(spec),
					  blob, sizeof(blob) - 1), RTCMS_ETOOBIG);
	datakey_ring_wipe(&ring);
	datakey_ring_wipe(&other);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse),
		cmocka_unit_test(test_parse_bad),
		cmocka_unit_test(test_load_generate),
		cmocka_unit_test(test_edit),
		cmocka_unit_test(test_seal_known_answer),
		cmocka_unit_test(test_seal_open),
		cmocka_unit_test(test_spec_seal),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
