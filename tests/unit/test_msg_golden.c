/*
 * test_msg_golden.c - the wire format of every payload, byte for byte.
 *
 * For every message type with a payload, one fully populated message
 * (msg_sample_fill: every field non-zero or non-empty where its domain
 * allows) is encoded
 * and compared with golden bytes captured from the encoder; those bytes
 * decode and re-encode to themselves, and every prefix of them is refused.
 * A change to the golden strings is a change of the wire protocol
 * (docs/protocol.md), never a refactoring.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "msg_sample.h"
#include "proto/msg.h"
#include "rtcms_error.h"

/* ---- golden bytes, captured from the encoder of protocol version 1 ---- */

#define META_HEX \
	"00086c65646765722e370000000000000003010203040506070800a1a2a3a4a5" \
	"a6a700000000002000050000019ab697e8010000000320212223242526272829" \
	"2a2b2c2d2e2f303132333435363738393a3b3c3d3e3f01020304050607010000" \
	"000510000000404142434445464748494a4b4c4d4e4f50515253545556575859" \
	"5a5b5c5d5e5f00000008737065630001feff"

#define REF_HEX \
	"00027066000000000000012100000122"

#define HEARTBEAT_HEX \
	"0000000000000131e0e1e2e3e4e5e6e7e8e9eaebecedeeef0000000000000132" \
	"000000000000013300000134"

#define NODE_HEX \
	"0102030405060708"

#define REPORT_HEX \
	"0000000000000081000000000000008200000000000000830000000000000084" \
	"000000850200032f6d3001000000000000008600000000000000880000008a00" \
	"00008c0000008e00032f6d310100000000000000870000000000000089000000" \
	"8b0000008d0000008f"

static const struct {
	uint8_t type;
	const char *hex;
} golden[] = {
	{ PROTO_HELLO,
	  "0102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f20"
	  "8182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9fa0"
	  "04000773746f72652d31" },
	{ PROTO_HELLO_ACK,
	  "0102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f20"
	  "8182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9fa0"
	  "04000773746f72652d31" },
	{ PROTO_ERROR,
	  "fffffff5010203040506070800056d67722d620010636c61696d656420627920"
	  "6d67722d62" },
	{ PROTO_PUT_BEGIN, META_HEX },
	{ PROTO_CHUNK,
	  "000000000010000000000000606162636465666768696a6b6c6d6e6f70717273"
	  "7475767778797a7b7c7d7e7f0000000000000000000000000000000000000000"
	  "000000000000000000000000c0c1c2c3c4" },
	{ PROTO_PUT_END, "01020304" },
	{ PROTO_PUT_ACK,
	  "0002706100000000000000110000000000000012000000000000131480818283"
	  "8485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f03010000"
	  "0015" },
	{ PROTO_GET, "0002706700000000000000210000000000000022010000000000000000" },
	{ PROTO_GET_META, META_HEX },
	{ PROTO_GET_END, "0000003100000032" },
	{ PROTO_LIST, "00000000000000410002706c000000420043" },
	{ PROTO_LIST_REPLY,
	  "0002000265300000000000000051000000000000005300000000000000550000"
	  "0000000000570000000000000059a0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1"
	  "b2b3b4b5b6b7b8b9babbbcbdbebf010002653100000000000000520000000000"
	  "00005400000000000000560000000000000058000000000000005ac0c1c2c3c4"
	  "c5c6c7c8c9cacbcccdcecfd0d1d2d3d4d5d6d7d8d9dadbdcdddedf01" },
	{ PROTO_DELETE, "0002706400000000000000610000000000000062" },
	{ PROTO_CLAIM, "0002706300056d67722d610036ee8001" },
	{ PROTO_CLAIM_OK,
	  "0002706300000000000000710000000000000072000000000000007300000000"
	  "000000740000000000000075" },
	{ PROTO_COMMIT, "0002706300000000000000710000000000000076" },
	{ PROTO_COMMIT_OK, "0002706300000000000000770000000000000076" },
	{ PROTO_RELEASE, "000270630000000000000071" },
	{ PROTO_SCRUB, "01" },
	{ PROTO_SCRUB_REPLY, REPORT_HEX },
	{ PROTO_STATUS_REPLY, REPORT_HEX },
	{ PROTO_MLEASE,
	  "00056d67722d6100000091000000000000009200020000000000000093000000"
	  "0000000094" },
	{ PROTO_MLEASE_OK,
	  "0000009500000000000000960002000000000000009700000000000000990200"
	  "00000000000098000000000000009a03000200056d67722d6100056d67722d62" },
	{ PROTO_FENCE, "000000000000009b00056d67722d620000009c" },
	{ PROTO_FENCE_OK, "000000000000009b000000000000009d010000009e" },
	{ PROTO_DATAKEY, "0000009fa0a1a2a3a4a5a6a700" },
	{ PROTO_DATAKEY_OK, "0000009fa0a1a2a3a4a5a6a701" },
	{ PROTO_KEYS, "000000a8" },
	{ PROTO_KEYS_REPLY,
	  "00000000000000a900000000000000aa00020000000000000000000000ab0000"
	  "0000000000ac000000ad00000000000000ae00000000000000af" },
	{ PROTO_REGISTER,
	  "00000000000000f100076167656e742d31000d31302e302e302e313a37353030"
	  "00000000000000f200000000000000f3000000f4e0e1e2e3e4e5e6e7e8e9eaeb"
	  "ecedeeef000000f7b0b1b2b3b4b5b6b7" },
	{ PROTO_REGISTER_OK, "00056d67722d6100000000000000f5000000f6000000f7" },
	{ PROTO_CKPT_NOTIFY, META_HEX },
	{ PROTO_MIGRATE, "0002706d000000000000014101" },
	{ PROTO_MIGRATE_OK,
	  "0002706d00000000000001420000000000000143000000000000014400000000"
	  "0000014500000146" },
	{ PROTO_RUN, "0002706e000000000000015100000008737065630001feff" },
	{ PROTO_RUN_OK, "0002706e0000000000000151000000000000015200000153" },
	{ PROTO_DRAIN, NODE_HEX },
	{ PROTO_DRAIN_OK, "0000016100000162" },
	{ PROTO_MSTATUS_REPLY,
	  "00056d67722d61000e3132372e302e302e313a3734303001000000b1000f6c61"
	  "73743a2074696d6564206f7574000200000000000000b200076167656e742d30"
	  "000d31302e302e302e313a37353030010100000000000000b400000000000000"
	  "b600000000000000b803e7000000ba000000b900000000000000bc000000be00"
	  "000000000000b300076167656e742d31000d31302e302e302e323a3735303001"
	  "0100000000000000b500000000000000b700000000000000b903e8000000bb00"
	  "0000b900000000000000bd000000bf00020003702d3000000000000000c10000"
	  "0000000000c300000000000000c500000000000000c700000000000000c90000"
	  "0000000000cb07000000cd00000000000000cf000577687920300003702d3100"
	  "000000000000c200000000000000c400000000000000c600000000000000c800"
	  "000000000000ca00000000000000cc06000000ce00000000000000d000057768"
	  "792031" },
	{ PROTO_EXITED, REF_HEX },
	{ PROTO_NODE_FAILED, NODE_HEX },
	{ PROTO_RESOLVE, REF_HEX },
	{ PROTO_RESOLVE_OK, REF_HEX },
	{ PROTO_PROCS,
	  "00000000000000d1e0e1e2e3e4e5e6e7e8e9eaebecedeeef00000000000000d2"
	  "0002000361703000000000000000d300000000000000d5000000d707000000d9"
	  "0009676176652075702030000361703100000000000000d400000000000000d6"
	  "000000d806000000da0009676176652075702031" },
	{ PROTO_INFO_REPLY,
	  "00000000000001010000000000000102000000000000010303e8000001050000"
	  "01040000000000000106000000000000010700000108" },
	{ PROTO_RESTORE, META_HEX },
	{ PROTO_RESTORE_OK, "000270720000000000000111000000000000011200000113" },
	{ PROTO_PULL, "0002706700000000000000210000000000000022010000000000000020" },
	{ PROTO_FREEZE, REF_HEX },
	{ PROTO_FROZEN, META_HEX },
	{ PROTO_THAW, REF_HEX },
	{ PROTO_STOP, REF_HEX },
	{ PROTO_ADOPT, REF_HEX },
	{ PROTO_CORDON, NODE_HEX },
	{ PROTO_UNCORDON, NODE_HEX },
	{ PROTO_FORGET, "020002707a" },
	{ PROTO_FORGET_OK, "0200000000000001710002707a01" },
	{ PROTO_HEARTBEAT, HEARTBEAT_HEX },
	{ PROTO_HEARTBEAT_ACK, HEARTBEAT_HEX },
};
#define NGOLDEN (sizeof(golden) / sizeof(golden[0]))

/* ---- checks ------------------------------------------------------------ */

static uint8_t enc[PROTO_MAX_PAYLOAD], enc2[PROTO_MAX_PAYLOAD];
static struct proto_list_entry d_entries[PROTO_LIST_MAX];
static struct proto_node_entry d_nodes[PROTO_NODES_MAX];
static struct proto_proc_entry d_procs[PROTO_PROCS_MAX];
static struct proto_agent_proc d_aprocs[PROTO_PROCS_MAX];

static void prepare_decode(uint8_t type, union proto_msg *d)
{
	memset(d, 0, sizeof(*d));
	if (type == PROTO_LIST_REPLY)
		d->list_reply.entries = d_entries;
	if (type == PROTO_MSTATUS_REPLY) {
		d->mstatus.nodes = d_nodes;
		d->mstatus.procs = d_procs;
	}
	if (type == PROTO_PROCS)
		d->procs.procs = d_aprocs;
}

static size_t unhex(const char *hex, uint8_t *out, size_t cap)
{
	size_t n = strlen(hex) / 2;
	assert_int_equal(strlen(hex) % 2, 0);
	assert_true(n <= cap);
	for (size_t i = 0; i < n; i++) {
		unsigned v;
		assert_int_equal(sscanf(hex + 2 * i, "%2x", &v), 1);
		out[i] = (uint8_t)v;
	}
	return n;
}

/* Print bytes as a C string literal, 32 bytes a line, for a failure message. */
static void print_hex(const char *name, const uint8_t *p, size_t n)
{
	printf("%s (%zu bytes):\n", name, n);
	for (size_t i = 0; i < n; i++) {
		if (i % 32 == 0)
			printf("%s\t\"", i ? "\"\n" : "");
		printf("%02x", p[i]);
	}
	printf("%s\n", n ? "\"" : "\t\"\"");
}

static int golden_index(uint8_t type)
{
	for (size_t i = 0; i < NGOLDEN; i++)
		if (golden[i].type == type)
			return (int)i;
	return -1;
}

/* Every type with a payload has a golden vector; the others encode empty. */
static void test_every_type_covered(void **state)
{
	(void)state;
	for (unsigned t = 0; t < 256; t++) {
		uint8_t type = (uint8_t)t;
		if (!proto_type_known(type))
			continue;
		if (proto_type_max_payload(type) == 0) {
			union proto_msg m, d;
			memset(&m, 0, sizeof(m));
			assert_int_equal(proto_msg_encode(type, &m, enc, sizeof(enc)), 0);
			prepare_decode(type, &d);
			assert_int_equal(proto_msg_decode(type, enc, 0, &d), 0);
			assert_true(proto_msg_decode(type, enc, 1, &d) < 0);
			continue;
		}
		if (golden_index(type) < 0)
			fail_msg("type 0x%02x (%s) has a payload and no golden vector",
				 t, proto_type_name(type));
	}
}

static void test_encode_matches_golden(void **state)
{
	(void)state;
	int bad = 0;
	for (size_t i = 0; i < NGOLDEN; i++) {
		uint8_t type = golden[i].type;
		union proto_msg m;
		uint8_t want[4096];
		msg_sample_fill(type, &m);
		int n = proto_msg_encode(type, &m, enc, sizeof(enc));
		if (n < 0)
			fail_msg("encode %s: %s", proto_type_name(type), rtcms_strerror(n));
		size_t wn = unhex(golden[i].hex, want, sizeof(want));
		if ((size_t)n != wn || memcmp(enc, want, wn) != 0) {
			print_hex(proto_type_name(type), enc, (size_t)n);
			bad++;
		}
	}
	if (bad)
		fail_msg("%d encodings differ from their golden bytes", bad);
}

/* The golden bytes decode, re-encode to themselves, and none of their
 * prefixes decodes. */
static void test_golden_decodes(void **state)
{
	(void)state;
	for (size_t i = 0; i < NGOLDEN; i++) {
		uint8_t type = golden[i].type;
		union proto_msg d;
		uint8_t want[4096];
		size_t wn = unhex(golden[i].hex, want, sizeof(want));
		prepare_decode(type, &d);
		int rc = proto_msg_decode(type, want, wn, &d);
		if (rc != (int)wn)
			fail_msg("decode %s: %d", proto_type_name(type), rc);
		int n = proto_msg_encode(type, &d, enc2, sizeof(enc2));
		if (n != (int)wn || memcmp(enc2, want, wn) != 0)
			fail_msg("%s does not re-encode to its golden bytes",
				 proto_type_name(type));
		/* CHUNK data is the rest of the payload: only a cut before its
		 * first data byte is a truncation */
		size_t valid = type == PROTO_CHUNK ? PROTO_CHUNK_HEAD + 1
						   : wn;
		for (size_t cut = 0; cut < valid; cut++) {
			prepare_decode(type, &d);
			rc = proto_msg_decode(type, want, cut, &d);
			if (rc >= 0)
				fail_msg("%s cut to %zu of %zu bytes was accepted",
					 proto_type_name(type), cut, wn);
		}
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_every_type_covered),
		cmocka_unit_test(test_encode_matches_golden),
		cmocka_unit_test(test_golden_decodes),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
