/*
 * make_seeds.c - writes the seed corpus of the fuzz targets: one valid
 * payload of every message type (fuzz_msg: type byte + payload) and valid
 * sealed and handshake frames under the fuzzers' fixed keys (fuzz_frame,
 * fuzz_session). Built and run by CMake before the fuzz tests.
 *
 *   make_seeds DIR   (creates DIR/fuzz_msg, DIR/fuzz_frame, DIR/fuzz_session)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "area/delta.h"
#include "area/image.h"
#include "util/bytes.h"
#include "proto/heartbeat.h"
#include "proto/session.h"
#include "proto/spec.h"

static void put_file(const char *dir, const char *target, const char *name,
		     const uint8_t *data, size_t len)
{
	char path[1024];
	snprintf(path, sizeof(path), "%s/%s", dir, target);
	mkdir(path, 0755);
	snprintf(path, sizeof(path), "%s/%s/seed-%s", dir, target, name);
	FILE *f = fopen(path, "wb");
	if (!f || fwrite(data, 1, len, f) != len) {
		perror(path);
		exit(1);
	}
	fclose(f);
}

int main(int argc, char **argv)
{
	static uint8_t buf[PROTO_MAX_FRAME + 1];
	static const struct proto_key fkey = { { 1, 2, 3, 4, 5, 6, 7, 8 } };
	static const struct proto_key skey = { { 9, 8, 7, 6, 5, 4, 3, 2, 1 } };
	static const uint8_t types[] = {
		PROTO_HELLO, PROTO_ERROR, PROTO_OK, PROTO_PUT_BEGIN, PROTO_CHUNK,
		PROTO_PUT_END, PROTO_PUT_ACK, PROTO_GET, PROTO_GET_END, PROTO_LIST,
		PROTO_LIST_REPLY, PROTO_DELETE, PROTO_CLAIM, PROTO_CLAIM_OK,
		PROTO_COMMIT, PROTO_COMMIT_OK, PROTO_RELEASE, PROTO_SCRUB,
		PROTO_SCRUB_REPLY, PROTO_REGISTER, PROTO_REGISTER_OK, PROTO_MIGRATE,
		PROTO_MIGRATE_OK, PROTO_INFO, PROTO_INFO_REPLY, PROTO_RESTORE_OK,
		PROTO_HEARTBEAT, PROTO_RUN, PROTO_RUN_OK, PROTO_DRAIN, PROTO_DRAIN_OK,
		PROTO_MSTATUS_REPLY, PROTO_FREEZE, PROTO_FROZEN, PROTO_ADOPT,
		PROTO_CORDON, PROTO_UNCORDON, PROTO_FORGET, PROTO_FORGET_OK,
		PROTO_MLEASE, PROTO_MLEASE_OK, PROTO_FENCE, PROTO_FENCE_OK, PROTO_PROCS,
		PROTO_KEYS, PROTO_KEYS_REPLY,
	};
	struct proto_agent_proc aprocs[2];
	struct proto_node_entry nodes[1];
	struct proto_proc_entry procs[1];
	struct proto_list_entry entries[2];
	uint8_t data[64];
	union proto_msg m;

	if (argc != 2) {
		fprintf(stderr, "usage: make_seeds DIR\n");
		return 2;
	}
	mkdir(argv[1], 0755);
	proto_init();
	memset(data, 0x5a, sizeof(data));
	for (size_t i = 0; i < sizeof(types); i++) {
		uint8_t t = types[i];
		memset(&m, 0, sizeof(m));
		memset(entries, 0, sizeof(entries));
		switch (t) {
		case PROTO_HELLO: m.hello.role = PROTO_ROLE_AGENT; strcpy(m.hello.name, "agent-1"); break;
		case PROTO_ERROR: m.error.code = -11; strcpy(m.error.who, "m1"); strcpy(m.error.text, "claimed"); break;
		case PROTO_PUT_BEGIN:
			strcpy(m.meta.process, "p1"); m.meta.incarnation = 1; m.meta.sequence = 2;
			m.meta.size = 64; m.meta.chunk_count = 1; m.meta.spec = data; m.meta.spec_len = 8;
			break;
		case PROTO_CHUNK: m.chunk.data = data; m.chunk.len = sizeof(data); break;
		case PROTO_PUT_ACK: strcpy(m.put_ack.process, "p1"); break;
		case PROTO_GET: strcpy(m.get.process, "p1"); break;
		case PROTO_LIST: m.list.limit = 10; break;
		case PROTO_LIST_REPLY:
			strcpy(entries[0].process, "a"); strcpy(entries[1].process, "b");
			m.list_reply.count = 2; m.list_reply.entries = entries;
			break;
		case PROTO_DELETE: strcpy(m.del.process, "p1"); break;
		case PROTO_RUN: strcpy(m.run.process, "p1"); m.run.spec = data; m.run.spec_len = 8; break;
		case PROTO_RUN_OK: strcpy(m.run_ok.process, "p1"); break;
		case PROTO_FREEZE: case PROTO_ADOPT: strcpy(m.ref.process, "p1"); m.ref.incarnation = 2; break;
		case PROTO_FROZEN:
			strcpy(m.meta.process, "p1"); m.meta.incarnation = 1; m.meta.sequence = 2;
			m.meta.size = 64; m.meta.chunk_count = 1;
			break;
		case PROTO_MSTATUS_REPLY:
			memset(nodes, 0, sizeof(nodes)); memset(procs, 0, sizeof(procs));
			strcpy(nodes[0].name, "n1"); strcpy(procs[0].process, "p1");
			procs[0].state = PROTO_PS_RUNNING;
			m.mstatus.node_count = 1; m.mstatus.nodes = nodes;
			m.mstatus.proc_count = 1; m.mstatus.procs = procs;
			break;
		case PROTO_CLAIM: strcpy(m.claim.process, "p1"); strcpy(m.claim.claimant, "m1"); m.claim.lease_ms = 100; break;
		case PROTO_CLAIM_OK: strcpy(m.claim_ok.process, "p1"); break;
		case PROTO_COMMIT: strcpy(m.commit.process, "p1"); break;
		case PROTO_COMMIT_OK: strcpy(m.commit_ok.process, "p1"); break;
		case PROTO_RELEASE: strcpy(m.release.process, "p1"); break;
		case PROTO_SCRUB_REPLY: m.scrub_reply.mirror_count = 1; strcpy(m.scrub_reply.mirrors[0].path, "/m"); break;
		case PROTO_REGISTER: strcpy(m.reg.name, "a"); strcpy(m.reg.address, "127.0.0.2:7500"); break;
		case PROTO_MIGRATE: strcpy(m.migrate.process, "p1"); break;
		case PROTO_MIGRATE_OK: strcpy(m.migrate_ok.process, "p1"); break;
		case PROTO_RESTORE_OK: strcpy(m.restore_ok.process, "p1"); break;
		case PROTO_FORGET: strcpy(m.forget.name, "p1"); break;
		case PROTO_FORGET_OK: m.forget_ok.kind = PROTO_FORGET_NODE; m.forget_ok.node = 2; break;
		case PROTO_MLEASE:
			strcpy(m.mlease.name, "m1"); m.mlease.lease_ms = 5000; m.mlease.fence_gen = 3;
			m.mlease.alive_count = 2; m.mlease.alive[0] = 2; m.mlease.alive[1] = 3;
			break;
		case PROTO_MLEASE_OK:
			m.mlease_ok.lease_ms = 5000; m.mlease_ok.fence_gen = 3;
			m.mlease_ok.fence_count = 1; m.mlease_ok.fences[0].node = 4;
			m.mlease_ok.fences[0].gen = 3; m.mlease_ok.fences[0].state = PROTO_FENCE_EFFECTIVE;
			m.mlease_ok.manager_count = 2; strcpy(m.mlease_ok.managers[0], "m1");
			strcpy(m.mlease_ok.managers[1], "m2");
			break;
		case PROTO_FENCE: m.fence.node = 4; strcpy(m.fence.by, "m1"); m.fence.hold_ms = 300; break;
		case PROTO_FENCE_OK: m.fence_ok.node = 4; m.fence_ok.gen = 3; m.fence_ok.state = PROTO_FENCE_PENDING; break;
		case PROTO_KEYS: m.keys.from = 2; break;
		case PROTO_KEYS_REPLY:
			m.keys_reply.count = 2; m.keys_reply.keys[0].chunks = 3;
			m.keys_reply.keys[1] = (struct proto_key_count){ 7, 12, 49152 };
			break;
		case PROTO_PROCS:
			memset(aprocs, 0, sizeof(aprocs));
			strcpy(aprocs[0].process, "p1"); aprocs[0].incarnation = 1;
			aprocs[0].state = PROTO_AP_RUNNING; aprocs[0].pid = 42;
			strcpy(aprocs[1].process, "p2"); aprocs[1].state = PROTO_AP_FAILED;
			strcpy(aprocs[1].reason, "gave up after 5 restarts");
			m.procs.node = 2; m.procs.generation = 7; m.procs.count = 2; m.procs.procs = aprocs;
			break;
		default: break;
		}
		buf[0] = t;
		int n = proto_msg_encode(t, &m, buf + 1, sizeof(buf) - 1);
		if (n < 0) {
			fprintf(stderr, "make_seeds: cannot encode type %u\n", t);
			return 1;
		}
		put_file(argv[1], "fuzz_msg", proto_type_name(t), buf, (size_t)n + 1);

		/* the same message as a sealed data frame (counter 1) under the
		 * frame fuzzer's key, and as a plain handshake-style frame */
		struct proto_header h = { 0 };
		h.type = t;
		h.counter = 1;
		n = proto_frame_seal(&fkey, &h, buf + 1, (size_t)n, buf + 1 + PROTO_MAX_PAYLOAD / 2,
				     sizeof(buf) - 1 - PROTO_MAX_PAYLOAD / 2);
		if (n > 0)
			put_file(argv[1], "fuzz_frame", proto_type_name(t),
				 buf + 1 + PROTO_MAX_PAYLOAD / 2, (size_t)n);
	}
	/* a checkpoint image for the image fuzzer */
	{
		static uint8_t area[1 << 16];
		area_format(area, sizeof(area));
		struct area_slot *s = area_write_begin(area);
		s->region_count = 2;
		s->regions[0] = (struct area_region){ 1, 0, 8, 0 };
		s->regions[1] = (struct area_region){ 2, 0, 100, 64 };
		memset(area_slot_data(area, s), 7, 164);
		s->data_size = 164;
		area_write_commit(area, s, 3);
		int64_t len = image_capture(area, buf, sizeof(buf));
		if (len > 0)
			put_file(argv[1], "fuzz_image", "two-regions", buf, (size_t)len);
		/* the same image as a stream: chunk size 50, untouched */
		if (len > 0 && (size_t)len + 3 <= sizeof(buf)) {
			memmove(buf + 3, buf, (size_t)len);
			buf[0] = 7;
			buf[1] = 0;
			buf[2] = 0;
			put_file(argv[1], "fuzz_stream", "image", buf, (size_t)len + 3);
		}
	}
	/* a delta for the delta fuzzer: two of three blocks changed */
	{
		static uint8_t full[1 << 15], delta[1 << 15];
		uint64_t versions[3] = { 5, 2, 5 };
		memset(full, 0, sizeof(full));
		put_be32(full, IMAGE_MAGIC);
		put_be32(full + 4, IMAGE_VERSION);
		put_be64(full + 8, 5);
		put_be32(full + 16, 1);
		put_be64(full + 24, 3 * AREA_BLOCK);
		put_be32(full + 32, 1);
		put_be64(full + 40, 3 * AREA_BLOCK);
		int64_t len = delta_build(full, image_size(1, 3 * AREA_BLOCK), versions, 3, delta,
					  sizeof(delta));
		if (len > 0)
			put_file(argv[1], "fuzz_delta", "two-blocks", delta, (size_t)len);
	}
	/* a program spec for the spec fuzzer */
	{
		struct proto_spec sp = { 2, { "/usr/bin/app", "--restore", NULL },
					 1, { "LANG=C", NULL }, "/tmp" };
		int sl = proto_spec_encode(&sp, buf, sizeof(buf));
		if (sl > 0)
			put_file(argv[1], "fuzz_spec", "app", buf, (size_t)sl);
	}
	/* a whole chain for the chain fuzzer: link 0 (9 chunks), PUT_END with
	 * MORE, link 1's RESTORE and 3 chunks, the same for link 2, PUT_END */
	{
		uint8_t ops[64];
		size_t n = 0;
		ops[n++] = 0x00;
		for (int i = 0; i < 9; i++)
			ops[n++] = 0x00;
		ops[n++] = 0x04;
		ops[n++] = 0x15;
		for (int i = 0; i < 3; i++)
			ops[n++] = 0x01;
		ops[n++] = 0x04;
		ops[n++] = 0x25;
		for (int i = 0; i < 3; i++)
			ops[n++] = 0x02;
		ops[n++] = 0x03;
		put_file(argv[1], "fuzz_chain", "three-links", ops, n);
		put_file(argv[1], "fuzz_chain", "one-link", ops, 11);
	}
	/* data keyrings for the keyring fuzzer */
	{
		static const char one[] =
			"# rtcms data keyring\n"
			"rtcms-data-key-v1 1 aes-256-gcm "
			"000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f\n";
		static const char two[] =
			"rtcms-data-key-v1 1 aes-256-gcm "
			"000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f retired\n"
			"rtcms-data-key-v1 7 chacha20-poly1305 "
			"f0e0d0c0b0a090807060504030201000f0e0d0c0b0a090807060504030201000\r\n";
		put_file(argv[1], "fuzz_datakey", "one", (const uint8_t *)one, sizeof(one) - 1);
		put_file(argv[1], "fuzz_datakey", "two", (const uint8_t *)two, sizeof(two) - 1);
	}
	/* heartbeat datagrams under the fuzzers' key */
	{
		struct proto_heartbeat hb = { .node = 2, .counter = 5, .sent_ms = 1000,
					      .processes = 1 };
		int hl = proto_heartbeat_seal(&fkey, PROTO_HEARTBEAT, &hb, buf, sizeof(buf));
		if (hl > 0)
			put_file(argv[1], "fuzz_heartbeat", "HEARTBEAT", buf, (size_t)hl);
		hl = proto_heartbeat_seal(&fkey, PROTO_HEARTBEAT_ACK, &hb, buf, sizeof(buf));
		if (hl > 0)
			put_file(argv[1], "fuzz_heartbeat", "HEARTBEAT_ACK", buf, (size_t)hl);
	}
	/* handshake frames for the session fuzzer */
	struct proto_session c;
	proto_session_init(&c, &skey, true, 0);
	int n = proto_session_hello(&c, PROTO_ROLE_CLI, "seed", buf, sizeof(buf));
	put_file(argv[1], "fuzz_session", "HELLO", buf, (size_t)n);
	put_file(argv[1], "fuzz_frame", "HELLO_plain", buf, (size_t)n);
	n = proto_session_plain_error(&skey, -17, "busy", buf, sizeof(buf));
	put_file(argv[1], "fuzz_session", "ERROR", buf, (size_t)n);
	return 0;
}
