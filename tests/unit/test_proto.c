/*
 * test_proto.c - the wire protocol: every message round-trips; every
 * truncation and every flipped bit of a valid frame is refused; caps hold;
 * the handshake refuses wrong keys and replays; counters refuse replays.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "msg_sample.h"
#include "proto/frame.h"
#include "proto/heartbeat.h"
#include "proto/msg.h"
#include "proto/session.h"
#include "rtcms_error.h"
#include "util/bytes.h"

static uint8_t chunk_data[5000];

/* One sample of every message type: msg_sample_fill's, with a larger CHUNK
 * and the lease and report lists at their caps. */
static void sample(uint8_t type, union proto_msg *m)
{
	static struct proto_agent_proc ap[PROTO_PROCS_MAX];

	msg_sample_fill(type, m);
	switch (type) {
	case PROTO_CHUNK:
		for (size_t i = 0; i < sizeof(chunk_data); i++)
			chunk_data[i] = (uint8_t)(i * 13 + 1);
		proto_chunk_hash(chunk_data, sizeof(chunk_data), m->chunk.hash);
		m->chunk.data = chunk_data;
		m->chunk.len = sizeof(chunk_data);
		break;
	case PROTO_MLEASE:
		m->mlease.alive_count = PROTO_NODES_MAX; /* every entry at its cap */
		for (int i = 0; i < PROTO_NODES_MAX; i++)
			m->mlease.alive[i] = (uint64_t)i + 2;
		break;
	case PROTO_MLEASE_OK:
		m->mlease_ok.fence_count = PROTO_NODES_MAX;
		for (int i = 0; i < PROTO_NODES_MAX; i++) {
			m->mlease_ok.fences[i].node = (uint64_t)i + 2;
			m->mlease_ok.fences[i].gen = (uint64_t)i + 1;
			m->mlease_ok.fences[i].state = (uint8_t)(1 + i % 3);
		}
		m->mlease_ok.manager_count = PROTO_MANAGERS_MAX;
		for (int i = 0; i < PROTO_MANAGERS_MAX; i++)
			memset(m->mlease_ok.managers[i], 'a' + i, PROTO_ID_MAX);
		break;
	case PROTO_PROCS:
		memset(ap, 0, sizeof(ap));
		for (int i = 0; i < PROTO_PROCS_MAX; i++) { /* the largest report */
			memset(ap[i].process, 'p', PROTO_ID_MAX);
			ap[i].process[PROTO_ID_MAX - 1] = (char)('0' + i % 10);
			ap[i].incarnation = 3;
			ap[i].sequence = (uint64_t)i;
			ap[i].pid = 1000 + (uint32_t)i;
			ap[i].state = (uint8_t)(PROTO_AP_RUNNING + i % 7);
			ap[i].restarts = (uint32_t)i % 6;
			memset(ap[i].reason, 'r', PROTO_ID_MAX);
		}
		m->procs.count = PROTO_PROCS_MAX;
		m->procs.procs = ap;
		break;
	}
}

static const uint8_t all_types[] = {
	PROTO_HELLO, PROTO_HELLO_ACK, PROTO_ERROR, PROTO_OK, PROTO_PUT_BEGIN,
	PROTO_PUT_READY, PROTO_CHUNK, PROTO_PUT_END, PROTO_PUT_ACK, PROTO_GET,
	PROTO_GET_META, PROTO_GET_END, PROTO_LIST, PROTO_LIST_REPLY,
	PROTO_DELETE, PROTO_CLAIM, PROTO_CLAIM_OK, PROTO_COMMIT,
	PROTO_COMMIT_OK, PROTO_RELEASE, PROTO_SCRUB, PROTO_SCRUB_REPLY,
	PROTO_STATUS, PROTO_STATUS_REPLY, PROTO_REGISTER, PROTO_REGISTER_OK,
	PROTO_CKPT_NOTIFY, PROTO_MIGRATE, PROTO_MIGRATE_OK, PROTO_INFO,
	PROTO_INFO_REPLY, PROTO_RESTORE, PROTO_RESTORE_OK, PROTO_PULL,
	PROTO_HEARTBEAT, PROTO_RUN, PROTO_RUN_OK, PROTO_DRAIN, PROTO_DRAIN_OK,
	PROTO_MSTATUS, PROTO_MSTATUS_REPLY, PROTO_EXITED, PROTO_FREEZE,
	PROTO_FROZEN, PROTO_THAW, PROTO_STOP, PROTO_ADOPT, PROTO_HEARTBEAT_ACK,
	PROTO_NODE_FAILED, PROTO_RESOLVE, PROTO_RESOLVE_OK, PROTO_CORDON,
	PROTO_UNCORDON, PROTO_FORGET, PROTO_FORGET_OK, PROTO_MLEASE, PROTO_MLEASE_OK,
	PROTO_FENCE, PROTO_FENCE_OK, PROTO_PROCS,
};
#define NTYPES (sizeof(all_types) / sizeof(all_types[0]))

static uint8_t buf[PROTO_MAX_FRAME], buf2[PROTO_MAX_FRAME];
static struct proto_node_entry out_nodes[PROTO_NODES_MAX];
static struct proto_proc_entry out_procs[PROTO_PROCS_MAX];
static struct proto_agent_proc out_aprocs[PROTO_PROCS_MAX];

/* Give a message about to be decoded the arrays its list replies need. */
static void give_arrays(union proto_msg *d, struct proto_list_entry *entries_out)
{
	d->list_reply.entries = entries_out;
	d->mstatus.nodes = out_nodes;
	d->mstatus.procs = out_procs;
	d->procs.procs = out_aprocs; /* (overlaps nothing the others use) */
}

static void test_roundtrip_every_message(void **state)
{
	(void)state;
	for (size_t t = 0; t < NTYPES; t++) {
		uint8_t type = all_types[t];
		union proto_msg m, d;
		struct proto_list_entry out_entries[PROTO_LIST_MAX];
		sample(type, &m);
		int n = proto_msg_encode(type, &m, buf, sizeof(buf));
		if (n < 0)
			fail_msg("encode %s: %s", proto_type_name(type), rtcms_strerror(n));
		memset(&d, 0, sizeof(d));
		give_arrays(&d, out_entries);
		assert_int_equal(proto_msg_decode(type, buf, (size_t)n, &d), n);
		/* re-encoding the decoded message gives the same bytes */
		int n2 = proto_msg_encode(type, &d, buf2, sizeof(buf2));
		assert_int_equal(n2, n);
		assert_memory_equal(buf, buf2, (size_t)n);
		if (type == PROTO_PUT_BEGIN) {
			assert_string_equal(d.meta.process, m.meta.process);
			assert_int_equal(d.meta.sequence, m.meta.sequence);
			assert_int_equal(d.meta.spec_len, m.meta.spec_len);
			assert_memory_equal(d.meta.spec, m.meta.spec, m.meta.spec_len);
		}
		if (type == PROTO_LIST_REPLY) {
			assert_int_equal(d.list_reply.count, m.list_reply.count);
			assert_string_equal(out_entries[1].process,
					    m.list_reply.entries[1].process);
			assert_int_equal(out_entries[1].claimed, 1);
		}
		if (type == PROTO_MSTATUS_REPLY) {
			assert_int_equal(d.mstatus.node_count, m.mstatus.node_count);
			assert_int_equal(d.mstatus.proc_count, m.mstatus.proc_count);
			assert_string_equal(out_nodes[1].address, m.mstatus.nodes[1].address);
			assert_int_equal(out_nodes[1].cordoned, 1);
			assert_string_equal(out_procs[1].process, m.mstatus.procs[1].process);
			assert_int_equal(out_procs[1].state, m.mstatus.procs[1].state);
		}
		if (type == PROTO_PROCS) {
			assert_int_equal(d.procs.count, PROTO_PROCS_MAX);
			assert_int_equal(out_aprocs[255].pid, 1255);
			assert_int_equal(out_aprocs[6].state, PROTO_AP_FAILED);
		}
		if (type == PROTO_MLEASE_OK) {
			assert_int_equal(d.mlease_ok.fence_count, PROTO_NODES_MAX);
			assert_int_equal(d.mlease_ok.manager_count, PROTO_MANAGERS_MAX);
			assert_int_equal(d.mlease_ok.fences[2].state, PROTO_FENCE_COMPLETE);
		}
		if (type == PROTO_FORGET_OK) {
			assert_int_equal(d.forget_ok.kind, PROTO_FORGET_PROCESS);
			assert_string_equal(d.forget_ok.process, m.forget_ok.process);
			assert_int_equal(d.forget_ok.deleted, 1);
		}
		if (type == PROTO_ERROR) {
			assert_int_equal(d.error.code, RTCMS_ECLAIMED);
			assert_string_equal(d.error.who, m.error.who);
		}
	}
}

static void test_every_truncation_refused(void **state)
{
	(void)state;
	for (size_t t = 0; t < NTYPES; t++) {
		uint8_t type = all_types[t];
		union proto_msg m, d;
		struct proto_list_entry out_entries[PROTO_LIST_MAX];
		sample(type, &m);
		int n = proto_msg_encode(type, &m, buf, sizeof(buf));
		assert_true(n >= 0);
		/* CHUNK data is "the rest": a shorter chunk is still a valid
		 * message down to one data byte; the hash check is the
		 * receiver's. Everything before the data must be complete. */
		int min_valid = type == PROTO_CHUNK ? 8 + PROTO_HASH_SIZE + 1 : n;
		for (int cut = 0; cut < min_valid; cut++) {
			give_arrays(&d, out_entries);
			int rc = proto_msg_decode(type, buf, (size_t)cut, &d);
			if (rc >= 0)
				fail_msg("%s truncated to %d of %d bytes was accepted",
					 proto_type_name(type), cut, n);
		}
		/* one trailing byte is refused too */
		if (type != PROTO_CHUNK) {
			buf[n] = 0;
			give_arrays(&d, out_entries);
			assert_true(proto_msg_decode(type, buf, (size_t)n + 1, &d) < 0);
		}
	}
}

static void test_field_caps_and_validation(void **state)
{
	(void)state;
	union proto_msg m, d;

	/* process id: bad characters and lengths */
	assert_true(proto_process_id_valid("a"));
	assert_false(proto_process_id_valid(""));
	assert_false(proto_process_id_valid("a b"));
	assert_false(proto_process_id_valid("a/b"));
	char longid[PROTO_ID_MAX + 2];
	memset(longid, 'x', sizeof(longid));
	longid[PROTO_ID_MAX] = '\0';
	assert_true(proto_process_id_valid(longid));
	longid[PROTO_ID_MAX] = 'x';
	longid[PROTO_ID_MAX + 1] = '\0';
	assert_false(proto_process_id_valid(longid));

	/* a GET whose process id has a slash is refused by the decoder */
	sample(PROTO_GET, &m);
	int n = proto_msg_encode(PROTO_GET, &m, buf, sizeof(buf));
	assert_true(n > 0);
	buf[3] = '/';
	assert_int_equal(proto_msg_decode(PROTO_GET, buf, (size_t)n, &d), RTCMS_EPROTO);

	/* string length over the cap: refused before anything is copied */
	put_be16(buf, PROTO_ID_MAX + 1);
	assert_true(proto_msg_decode(PROTO_GET, buf, (size_t)n, &d) < 0);

	/* spec over its cap */
	sample(PROTO_PUT_BEGIN, &m);
	m.meta.spec_len = PROTO_SPEC_MAX + 1;
	assert_true(proto_msg_encode(PROTO_PUT_BEGIN, &m, buf, sizeof(buf)) < 0);

	/* inconsistent size / chunk count */
	sample(PROTO_PUT_BEGIN, &m);
	m.meta.chunk_count = 1;
	assert_int_equal(proto_msg_encode(PROTO_PUT_BEGIN, &m, buf, sizeof(buf)), RTCMS_EINVAL);

	/* a delta's base must lie below its sequence; a full image's size
	 * is its full size */
	sample(PROTO_PUT_BEGIN, &m);
	m.meta.base = m.meta.sequence;
	assert_int_equal(proto_msg_encode(PROTO_PUT_BEGIN, &m, buf, sizeof(buf)), RTCMS_EINVAL);
	m.meta.base = 0;
	assert_int_equal(proto_msg_encode(PROTO_PUT_BEGIN, &m, buf, sizeof(buf)), RTCMS_EINVAL);
	m.meta.full_size = m.meta.size;
	assert_true(proto_msg_encode(PROTO_PUT_BEGIN, &m, buf, sizeof(buf)) > 0);

	/* only a PULL may ask for a delta */
	sample(PROTO_PULL, &m);
	n = proto_msg_encode(PROTO_PULL, &m, buf, sizeof(buf));
	assert_true(n > 0);
	assert_true(proto_msg_decode(PROTO_PULL, buf, (size_t)n, &d) >= 0);
	assert_int_equal(d.get.base, m.get.base);
	assert_int_equal(proto_msg_decode(PROTO_GET, buf, (size_t)n, &d), RTCMS_EPROTO);

	/* LIST_REPLY count over the cap */
	put_be16(buf, PROTO_LIST_MAX + 1);
	struct proto_list_entry e[PROTO_LIST_MAX];
	d.list_reply.entries = e;
	assert_int_equal(proto_msg_decode(PROTO_LIST_REPLY, buf, 2, &d), RTCMS_ETOOBIG);

	/* ERROR code must be a known negative code */
	sample(PROTO_ERROR, &m);
	m.error.code = 5;
	assert_int_equal(proto_msg_encode(PROTO_ERROR, &m, buf, sizeof(buf)), RTCMS_EINVAL);

	/* INFO_REPLY fields keep their domains */
	sample(PROTO_INFO_REPLY, &m);
	m.info.cpu_load_permille = 1001;
	assert_int_equal(proto_msg_encode(PROTO_INFO_REPLY, &m, buf, sizeof(buf)), RTCMS_EINVAL);
	assert_false(proto_type_known(0x7f));
	assert_int_equal(proto_msg_decode(0x7f, buf, 0, &d), RTCMS_EPROTO);
}

static void test_header(void **state)
{
	(void)state;
	struct proto_header h = { PROTO_VERSION, PROTO_CHUNK, PROTO_F_REPLY, 1, 2, 3, 100, 4 };
	struct proto_header d;
	uint8_t b[PROTO_HEADER_SIZE];

	assert_int_equal(proto_header_encode(&h, b), PROTO_HEADER_SIZE);
	assert_int_equal(proto_header_decode(b, sizeof(b), &d), PROTO_HEADER_SIZE);
	assert_int_equal(d.type, PROTO_CHUNK);
	assert_int_equal(d.sender, 1);
	assert_int_equal(d.epoch, 2);
	assert_int_equal(d.request, 3);
	assert_int_equal(d.length, 100);
	assert_int_equal(d.counter, 4);
	for (size_t cut = 0; cut < sizeof(b); cut++)
		assert_int_equal(proto_header_decode(b, cut, &d), RTCMS_EAGAIN);
	b[0] ^= 1;
	assert_int_equal(proto_header_decode(b, sizeof(b), &d), RTCMS_EPROTO);
	b[0] ^= 1;
	b[4] = PROTO_VERSION + 1;
	assert_int_equal(proto_header_decode(b, sizeof(b), &d), RTCMS_EVERSION);
	b[4] = PROTO_VERSION;
	b[5] = 0x7f;
	assert_int_equal(proto_header_decode(b, sizeof(b), &d), RTCMS_EPROTO);
	b[5] = PROTO_CHUNK;
	b[7] = 0x80; /* unknown flag */
	assert_int_equal(proto_header_decode(b, sizeof(b), &d), RTCMS_EPROTO);
	b[7] = 0;
	put_be32(b + 28, PROTO_MAX_PAYLOAD + 1);
	assert_int_equal(proto_header_decode(b, sizeof(b), &d), RTCMS_ETOOBIG);
	b[5] = PROTO_GET; /* small per-type cap */
	put_be32(b + 28, 5000);
	assert_int_equal(proto_header_decode(b, sizeof(b), &d), RTCMS_ETOOBIG);
}

/* A connected pair of sessions. */
static void pair(struct proto_session *c, struct proto_session *s,
		 const struct proto_key *kc, const struct proto_key *ks)
{
	uint8_t hello[512], ack[512];
	proto_session_init(c, kc, true, 1);
	proto_session_init(s, ks, false, 2);
	int n = proto_session_hello(c, PROTO_ROLE_CLI, "client", hello, sizeof(hello));
	assert_true(n > 0);
	int m = proto_session_accept(s, hello, (size_t)n, PROTO_ROLE_STORE, "store",
				     ack, sizeof(ack));
	assert_true(m > 0);
	assert_int_equal(proto_session_finish(c, ack, (size_t)m), 0);
	assert_string_equal(c->peer_name, "store");
	assert_string_equal(s->peer_name, "client");
}

static struct proto_key key_a, key_b;

static int setup(void **state)
{
	(void)state;
	proto_init();
	randombytes_buf(key_a.bytes, sizeof(key_a.bytes));
	randombytes_buf(key_b.bytes, sizeof(key_b.bytes));
	return 0;
}

static uint8_t plain[PROTO_MAX_PAYLOAD];

static void test_session_roundtrip_and_bitflips(void **state)
{
	(void)state;
	struct proto_session c, s;
	struct proto_header h;
	union proto_msg m, d;

	pair(&c, &s, &key_a, &key_a);
	for (size_t t = 0; t < NTYPES; t++) {
		uint8_t type = all_types[t];
		if (type == PROTO_HELLO || type == PROTO_HELLO_ACK)
			continue;
		struct proto_list_entry e[PROTO_LIST_MAX];
		sample(type, &m);
		int n = proto_session_seal(&c, type, 0, 7, 99, &m, buf, sizeof(buf));
		assert_true(n > 0);
		memset(&d, 0, sizeof(d));
		give_arrays(&d, e);
		assert_int_equal(proto_session_open(&s, buf, (size_t)n, &h, plain,
						    sizeof(plain), &d), 0);
		assert_int_equal(h.type, type);
		assert_int_equal(h.request, 99);
		assert_int_equal(h.epoch, 7);
	}

	/* every single flipped bit of a sealed frame is refused */
	sample(PROTO_CLAIM, &m);
	int n = proto_session_seal(&c, PROTO_CLAIM, 0, 0, 1, &m, buf, sizeof(buf));
	assert_true(n > 0);
	uint64_t expect = s.rx_counter;
	for (int bit = 0; bit < n * 8; bit++) {
		memcpy(buf2, buf, (size_t)n);
		buf2[bit / 8] ^= (uint8_t)(1u << (bit % 8));
		int rc = proto_frame_open(&s.rx_key, expect, buf2, (size_t)n, &h,
					  plain, sizeof(plain));
		if (rc >= 0)
			fail_msg("frame with bit %d flipped was accepted", bit);
	}
	/* every truncation of a sealed frame is refused */
	for (int cut = 0; cut < n; cut++)
		assert_true(proto_frame_open(&s.rx_key, expect, buf, (size_t)cut, &h,
					     plain, sizeof(plain)) < 0);
	/* the intact frame opens; the same frame again is a replay */
	assert_int_equal(proto_session_open(&s, buf, (size_t)n, &h, plain,
					    sizeof(plain), &d), 0);
	assert_int_equal(proto_session_open(&s, buf, (size_t)n, &h, plain,
					    sizeof(plain), &d), RTCMS_EREPLAY);

	/* the server's replies open at the client, not at the server */
	sample(PROTO_OK, &m);
	n = proto_session_seal(&s, PROTO_OK, PROTO_F_REPLY, 0, 1, &m, buf, sizeof(buf));
	assert_int_equal(proto_session_open(&c, buf, (size_t)n, &h, plain,
					    sizeof(plain), &d), 0);
}

/* A sealed chunk travels as a raw tail: the session seals only the head,
 * the tail is on the wire as it is, the header and head stay authenticated,
 * and the form must match the key id. */
static void test_raw_tail(void **state)
{
	(void)state;
	struct proto_session c, s;
	struct proto_header h;
	union proto_msg m, d;
	uint8_t tail[4096 + PROTO_CHUNK_TAG];

	pair(&c, &s, &key_a, &key_a);
	for (size_t i = 0; i < sizeof(tail); i++)
		tail[i] = (uint8_t)(i * 31 + 7);
	memset(&m, 0, sizeof(m));
	m.chunk.offset = 8192;
	m.chunk.len = 4096;
	m.chunk.key_id = 3;
	m.chunk.data = tail;
	memset(m.chunk.hash, 0x11, sizeof(m.chunk.hash));
	memset(m.chunk.sum, 0x22, sizeof(m.chunk.sum));
	memset(m.chunk.mac, 0x33, sizeof(m.chunk.mac));
	uint64_t ctr = c.tx_counter;
	int n = proto_session_seal(&c, PROTO_CHUNK, PROTO_F_MORE, 0, 5, &m, buf, sizeof(buf));
	assert_int_equal(n, (int)proto_frame_size(PROTO_CHUNK_HEAD + sizeof(tail)));
	assert_int_equal(get_be16(buf + 6), PROTO_F_MORE | PROTO_F_RAW);
	/* the tail as it is, the head (with the id) not */
	assert_memory_equal(buf + PROTO_HEADER_SIZE + PROTO_CHUNK_HEAD, tail, sizeof(tail));
	assert_memory_not_equal(buf + PROTO_HEADER_SIZE + 12, m.chunk.hash, PROTO_HASH_SIZE);
	memcpy(buf2, buf, (size_t)n);
	assert_int_equal(proto_session_open(&s, buf, (size_t)n, &h, plain, sizeof(plain), &d), 0);
	assert_int_equal(d.chunk.offset, 8192);
	assert_int_equal(d.chunk.len, 4096);
	assert_int_equal(d.chunk.key_id, 3);
	assert_memory_equal(d.chunk.hash, m.chunk.hash, PROTO_HASH_SIZE);
	assert_memory_equal(d.chunk.sum, m.chunk.sum, PROTO_CHUNK_SUM);
	assert_memory_equal(d.chunk.mac, m.chunk.mac, PROTO_CHUNK_MAC);
	assert_memory_equal(d.chunk.data, tail, sizeof(tail));

	/* every flipped bit of the header, the head or the tag is refused; a
	 * flipped tail bit is the chunk's own checks' (its MAC at the store,
	 * its AEAD at the reader), not the session's */
	for (int bit = 0; bit < n * 8; bit++) {
		size_t at = (size_t)bit / 8;
		bool in_tail = at >= PROTO_HEADER_SIZE + PROTO_CHUNK_HEAD &&
			       at < (size_t)n - PROTO_TAG_SIZE;
		if (in_tail && bit % 97)
			continue; /* a sample of the tail's bits */
		memcpy(buf, buf2, (size_t)n);
		buf[at] ^= (uint8_t)(1u << (bit % 8));
		int rc = proto_frame_open(&s.rx_key, ctr, buf, (size_t)n, &h, plain,
					  sizeof(plain));
		if (in_tail)
			assert_true(rc > 0 && plain[at - PROTO_HEADER_SIZE] != buf2[at]);
		else if (rc >= 0)
			fail_msg("raw frame with bit %d flipped was accepted", bit);
	}

	/* in parts (header and head, the tail where it is, the tag), the same
	 * wire bytes; opened in place, the data is the frame's own tail */
	struct proto_session c2, s2;
	struct proto_frame_parts parts;
	pair(&c2, &s2, &key_a, &key_a);
	assert_int_equal(proto_session_seal_parts(&c2, PROTO_CHUNK, PROTO_F_MORE, 0, 5, &m, buf,
						  sizeof(buf), &parts), 0);
	assert_int_equal(parts.head_len, PROTO_HEADER_SIZE + PROTO_CHUNK_HEAD);
	assert_ptr_equal(parts.tail, tail);
	assert_int_equal(parts.tail_len, sizeof(tail));
	uint8_t *wire = buf + parts.head_len + PROTO_TAG_SIZE;
	memcpy(wire, buf, parts.head_len);
	memcpy(wire + parts.head_len, tail, sizeof(tail));
	memcpy(wire + parts.head_len + sizeof(tail), buf + parts.head_len, PROTO_TAG_SIZE);
	n = (int)(parts.head_len + sizeof(tail) + PROTO_TAG_SIZE);
	assert_int_equal(proto_session_open_inplace(&s2, wire, (size_t)n, &h, &d), 0);
	assert_ptr_equal(d.chunk.data, wire + parts.head_len);
	assert_memory_equal(d.chunk.hash, m.chunk.hash, PROTO_HASH_SIZE);
	assert_memory_equal(d.chunk.mac, m.chunk.mac, PROTO_CHUNK_MAC);
	assert_int_equal(h.flags, PROTO_F_MORE | PROTO_F_RAW);
	/* any other message in one part */
	sample(PROTO_CLAIM, &d);
	assert_int_equal(proto_session_seal_parts(&c2, PROTO_CLAIM, 0, 0, 6, &d, buf, sizeof(buf),
						  &parts), 0);
	assert_int_equal(parts.tail_len, 0);
	assert_int_equal(proto_session_open_inplace(&s2, buf, parts.head_len + PROTO_TAG_SIZE,
						    &h, &d), 0);
	assert_int_equal(h.type, PROTO_CLAIM);

	/* a plain chunk (key id 0) is sealed whole: its data never raw */
	m.chunk.key_id = 0;
	memset(m.chunk.sum, 0, sizeof(m.chunk.sum));
	memset(m.chunk.mac, 0, sizeof(m.chunk.mac));
	n = proto_session_seal(&c, PROTO_CHUNK, PROTO_F_RAW, 0, 6, &m, buf, sizeof(buf));
	assert_int_equal(get_be16(buf + 6), 0);
	assert_memory_not_equal(buf + PROTO_HEADER_SIZE + PROTO_CHUNK_HEAD, tail, 64);
	assert_int_equal(proto_session_open(&s, buf, (size_t)n, &h, plain, sizeof(plain), &d), 0);
	assert_memory_equal(d.chunk.data, tail, 4096);

	/* a form that does not match the key id, sealed with the session's
	 * own key (only a peer that holds it could), is refused */
	struct proto_header fh = { .type = PROTO_CHUNK, .flags = PROTO_F_RAW,
				   .counter = c.tx_counter };
	int pl = proto_msg_encode(PROTO_CHUNK, &m, buf + PROTO_HEADER_SIZE,
				  sizeof(buf) - PROTO_HEADER_SIZE - PROTO_TAG_SIZE);
	assert_true(pl > PROTO_CHUNK_HEAD);
	n = proto_frame_seal_inplace(&c.tx_key, &fh, (size_t)pl, buf, sizeof(buf));
	assert_true(n > 0);
	c.tx_counter++;
	assert_int_equal(proto_session_open(&s, buf, (size_t)n, &h, plain, sizeof(plain), &d),
			 RTCMS_EPROTO);
	/* raw on a type without a head, or with nothing after the head */
	struct proto_header oh = { .type = PROTO_OK, .flags = PROTO_F_RAW };
	assert_int_equal(proto_frame_seal_inplace(&c.tx_key, &oh, 8, buf, sizeof(buf)),
			 RTCMS_EINVAL);
	fh.flags = PROTO_F_RAW;
	assert_int_equal(proto_frame_seal_inplace(&c.tx_key, &fh, PROTO_CHUNK_HEAD, buf,
						  sizeof(buf)), RTCMS_EINVAL);
}

static void test_cross_session_and_wrong_key(void **state)
{
	(void)state;
	struct proto_session c1, s1, c2, s2;
	struct proto_header h;
	union proto_msg m, d;

	pair(&c1, &s1, &key_a, &key_a);
	pair(&c2, &s2, &key_a, &key_a);
	/* a frame of connection 1 replayed into connection 2 */
	sample(PROTO_DELETE, &m);
	int n = proto_session_seal(&c1, PROTO_DELETE, 0, 0, 1, &m, buf, sizeof(buf));
	assert_int_equal(proto_session_open(&s2, buf, (size_t)n, &h, plain,
					    sizeof(plain), &d), RTCMS_EAUTH);

	/* wrong cluster key: the server refuses the HELLO */
	struct proto_session c, s;
	uint8_t hello[512], ack[512];
	proto_session_init(&c, &key_b, true, 1);
	proto_session_init(&s, &key_a, false, 2);
	n = proto_session_hello(&c, PROTO_ROLE_CLI, "x", hello, sizeof(hello));
	assert_int_equal(proto_session_accept(&s, hello, (size_t)n, PROTO_ROLE_STORE,
					      "store", ack, sizeof(ack)), RTCMS_EAUTH);
	assert_false(s.established);

	/* a replayed HELLO_ACK (answer to another client's nonce) is refused */
	struct proto_session c3, s3, c4;
	proto_session_init(&c3, &key_a, true, 1);
	proto_session_init(&s3, &key_a, false, 2);
	proto_session_init(&c4, &key_a, true, 1);
	n = proto_session_hello(&c3, PROTO_ROLE_CLI, "c3", hello, sizeof(hello));
	int m2 = proto_session_accept(&s3, hello, (size_t)n, PROTO_ROLE_STORE, "s",
				      ack, sizeof(ack));
	assert_true(m2 > 0);
	n = proto_session_hello(&c4, PROTO_ROLE_CLI, "c4", hello, sizeof(hello));
	assert_int_equal(proto_session_finish(&c4, ack, (size_t)m2), RTCMS_EAUTH);

	/* a plain ERROR frame before the handshake yields its code */
	struct proto_session c5;
	proto_session_init(&c5, &key_a, true, 1);
	proto_session_hello(&c5, PROTO_ROLE_CLI, "c5", hello, sizeof(hello));
	n = proto_session_plain_error(&key_a, RTCMS_EBUSY, "too many", ack, sizeof(ack));
	assert_int_equal(proto_session_finish(&c5, ack, (size_t)n), RTCMS_EBUSY);
}

static void test_heartbeat(void **state)
{
	struct proto_key k1, k2;
	struct proto_heartbeat hb, got;
	uint8_t dg[PROTO_HEARTBEAT_MAX], type;
	(void)state;
	randombytes_buf(k1.bytes, sizeof(k1.bytes));
	randombytes_buf(k2.bytes, sizeof(k2.bytes));
	memset(&hb, 0, sizeof(hb));
	hb.node = 0x1234;
	memset(hb.boot, 9, sizeof(hb.boot));
	hb.counter = 77;
	hb.sent_ms = 1764000000000ull;
	hb.processes = 3;
	int n = proto_heartbeat_seal(&k1, PROTO_HEARTBEAT, &hb, dg, sizeof(dg));
	assert_true(n > 0);
	assert_int_equal(proto_heartbeat_open(&k1, dg, (size_t)n, &type, &got), 0);
	assert_int_equal(type, PROTO_HEARTBEAT);
	assert_int_equal(got.counter, 77);
	assert_int_equal(got.node, 0x1234);
	assert_memory_equal(got.boot, hb.boot, sizeof(hb.boot));
	/* wrong key, every bit flip, every truncation, another type */
	assert_int_equal(proto_heartbeat_open(&k2, dg, (size_t)n, &type, &got), RTCMS_EAUTH);
	for (int i = 0; i < n * 8; i++) {
		dg[i / 8] ^= (uint8_t)(1 << (i % 8));
		assert_true(proto_heartbeat_open(&k1, dg, (size_t)n, &type, &got) < 0);
		dg[i / 8] ^= (uint8_t)(1 << (i % 8));
	}
	for (int l = 0; l < n; l++)
		assert_true(proto_heartbeat_open(&k1, dg, (size_t)l, &type, &got) < 0);
	assert_int_equal(proto_heartbeat_seal(&k1, PROTO_HELLO, &hb, dg, sizeof(dg)),
			 RTCMS_EINVAL);
	n = proto_heartbeat_seal(&k1, PROTO_HEARTBEAT_ACK, &hb, dg, sizeof(dg));
	assert_int_equal(proto_heartbeat_open(&k1, dg, (size_t)n, &type, &got), 0);
	assert_int_equal(type, PROTO_HEARTBEAT_ACK);
}

static void test_image_hash(void **state)
{
	(void)state;
	struct proto_image_hash ih;
	uint8_t h[PROTO_HASH_SIZE], a[PROTO_HASH_SIZE], b[PROTO_HASH_SIZE];

	memset(h, 1, sizeof(h));
	proto_image_hash_init(&ih, 300);
	assert_int_equal(proto_image_hash_update(&ih, 0, 100, h), 0);
	assert_int_equal(proto_image_hash_update(&ih, 150, 100, h), RTCMS_EPROTO); /* gap */
	assert_int_equal(proto_image_hash_update(&ih, 50, 100, h), RTCMS_EPROTO);  /* overlap */
	assert_int_equal(proto_image_hash_final(&ih, a), RTCMS_EPROTO);            /* short */
	assert_int_equal(proto_image_hash_update(&ih, 100, 200, h), 0);
	assert_int_equal(proto_image_hash_update(&ih, 300, 1, h), RTCMS_EPROTO);   /* past size */
	assert_int_equal(proto_image_hash_final(&ih, a), 0);

	/* the same bytes cut differently hash differently: the chunk list is
	 * part of the image hash; one changed chunk hash changes it */
	proto_image_hash_init(&ih, 300);
	proto_image_hash_update(&ih, 0, 100, h);
	h[0] = 2;
	proto_image_hash_update(&ih, 100, 200, h);
	proto_image_hash_final(&ih, b);
	assert_memory_not_equal(a, b, sizeof(a));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_roundtrip_every_message),
		cmocka_unit_test(test_every_truncation_refused),
		cmocka_unit_test(test_field_caps_and_validation),
		cmocka_unit_test(test_header),
		cmocka_unit_test(test_session_roundtrip_and_bitflips),
		cmocka_unit_test(test_raw_tail),
		cmocka_unit_test(test_cross_session_and_wrong_key),
		cmocka_unit_test(test_image_hash),
		cmocka_unit_test(test_heartbeat),
	};
	return cmocka_run_group_tests(tests, setup, NULL);
}
