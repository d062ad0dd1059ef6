/*
 * msg_sample.c - one fully populated message of every type (msg_sample.h).
 * tests/unit/test_msg_golden.c holds these messages' bytes: a change here
 * changes its golden vectors.
 */
#include "msg_sample.h"

#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "rtcms_error.h"

static const uint8_t spec_blob[] = { 's', 'p', 'e', 'c', 0x00, 0x01, 0xfe, 0xff };
static const uint8_t chunk_bytes[] = { 0xc0, 0xc1, 0xc2, 0xc3, 0xc4 };
static struct proto_list_entry g_entries[2];
static struct proto_node_entry g_nodes[2];
static struct proto_proc_entry g_procs[2];
static struct proto_agent_proc g_aprocs[2];

/* b, b+1, b+2, ...: a field whose byte order shows in the hex */
static void ramp(uint8_t *p, size_t n, uint8_t b)
{
	for (size_t i = 0; i < n; i++)
		p[i] = (uint8_t)(b + i);
}

static void fill_meta(struct proto_ckpt_meta *m)
{
	strcpy(m->process, "ledger.7");
	m->incarnation = 0x0000000000000003ull;
	m->sequence = 0x0102030405060708ull;
	m->node = 0x00a1a2a3a4a5a6a7ull;
	m->size = 2 * PROTO_MAX_CHUNK + 5;
	m->created_ms = 1764000000001ull;
	m->chunk_count = 3;
	ramp(m->hash, PROTO_HASH_SIZE, 0x20);
	m->base = 0x0102030405060701ull;
	m->full_size = 0x0000000510000000ull;
	ramp(m->state_hash, PROTO_HASH_SIZE, 0x40);
	m->spec = spec_blob;
	m->spec_len = sizeof(spec_blob);
}

static void fill_store(uint8_t type, union proto_msg *m)
{
	switch (type) {
	case PROTO_CHUNK:
		m->chunk.offset = 0x0000000000100000ull;
		ramp(m->chunk.hash, PROTO_HASH_SIZE, 0x60);
		m->chunk.data = chunk_bytes;
		m->chunk.len = sizeof(chunk_bytes);
		break;
	case PROTO_PUT_END:
		m->put_end.chunk_count = 0x01020304;
		break;
	case PROTO_PUT_ACK:
		strcpy(m->put_ack.process, "pa");
		m->put_ack.incarnation = 0x11;
		m->put_ack.sequence = 0x12;
		m->put_ack.size = 0x1314;
		ramp(m->put_ack.hash, PROTO_HASH_SIZE, 0x80);
		m->put_ack.copies = 3;
		m->put_ack.existed = 1;
		m->put_ack.depth = 0x15;
		break;
	case PROTO_GET:
	case PROTO_PULL:
		strcpy(m->get.process, "pg");
		m->get.incarnation = 0x21;
		m->get.sequence = 0x22;
		m->get.meta_only = 1;
		m->get.base = type == PROTO_PULL ? 0x20 : 0; /* GET: must be 0 */
		break;
	case PROTO_GET_END:
		m->get_end.chunk_count = 0x31;
		m->get_end.repaired = 0x32;
		break;
	case PROTO_LIST:
		m->list.node = 0x41;
		strcpy(m->list.process, "pl");
		m->list.offset = 0x42;
		m->list.limit = 0x43;
		break;
	case PROTO_LIST_REPLY:
		for (int i = 0; i < 2; i++) {
			struct proto_list_entry *e = &g_entries[i];
			snprintf(e->process, sizeof(e->process), "e%d", i);
			e->incarnation = 0x51 + (uint64_t)i;
			e->sequence = 0x53 + (uint64_t)i;
			e->node = 0x55 + (uint64_t)i;
			e->size = 0x57 + (uint64_t)i;
			e->created_ms = 0x59 + (uint64_t)i;
			ramp(e->hash, PROTO_HASH_SIZE, (uint8_t)(0xa0 + 0x20 * i));
			e->claimed = 1;
		}
		m->list_reply.count = 2;
		m->list_reply.entries = g_entries;
		break;
	case PROTO_DELETE:
		strcpy(m->del.process, "pd");
		m->del.incarnation = 0x61;
		m->del.sequence = 0x62;
		break;
	case PROTO_CLAIM:
		strcpy(m->claim.process, "pc");
		strcpy(m->claim.claimant, "mgr-a");
		m->claim.lease_ms = 3600000;
		m->claim.flags = PROTO_CLAIM_F_GAVE_UP;
		break;
	case PROTO_CLAIM_OK:
		strcpy(m->claim_ok.process, "pc");
		m->claim_ok.claim_id = 0x71;
		m->claim_ok.incarnation = 0x72;
		m->claim_ok.sequence = 0x73;
		m->claim_ok.node = 0x74;
		m->claim_ok.expires_ms = 0x75;
		break;
	case PROTO_COMMIT:
		strcpy(m->commit.process, "pc");
		m->commit.claim_id = 0x71;
		m->commit.new_node = 0x76;
		break;
	case PROTO_COMMIT_OK:
		strcpy(m->commit_ok.process, "pc");
		m->commit_ok.incarnation = 0x77;
		m->commit_ok.node = 0x76;
		break;
	case PROTO_RELEASE:
		strcpy(m->release.process, "pc");
		m->release.claim_id = 0x71;
		break;
	case PROTO_SCRUB:
		m->scrub.repair = 1;
		break;
	case PROTO_SCRUB_REPLY:
	case PROTO_STATUS_REPLY: {
		struct proto_scrub_reply *s = &m->scrub_reply;
		s->processes = 0x81;
		s->checkpoints = 0x82;
		s->chunks = 0x83;
		s->bytes = 0x84;
		s->unrepairable = 0x85;
		s->mirror_count = 2;
		for (int i = 0; i < 2; i++) {
			snprintf(s->mirrors[i].path, sizeof(s->mirrors[i].path), "/m%d", i);
			s->mirrors[i].online = 1;
			s->mirrors[i].chunks = 0x86 + (uint64_t)i;
			s->mirrors[i].bytes = 0x88 + (uint64_t)i;
			s->mirrors[i].missing = 0x8a + (uint32_t)i;
			s->mirrors[i].corrupt = 0x8c + (uint32_t)i;
			s->mirrors[i].repaired = 0x8e + (uint32_t)i;
		}
		break;
	}
	case PROTO_MLEASE:
		strcpy(m->mlease.name, "mgr-a");
		m->mlease.lease_ms = 0x91;
		m->mlease.fence_gen = 0x92;
		m->mlease.alive_count = 2;
		m->mlease.alive[0] = 0x93;
		m->mlease.alive[1] = 0x94;
		break;
	case PROTO_MLEASE_OK:
		m->mlease_ok.lease_ms = 0x95;
		m->mlease_ok.fence_gen = 0x96;
		m->mlease_ok.fence_count = 2;
		for (int i = 0; i < 2; i++) {
			m->mlease_ok.fences[i].node = 0x97 + (uint64_t)i;
			m->mlease_ok.fences[i].gen = 0x99 + (uint64_t)i;
			m->mlease_ok.fences[i].state = (uint8_t)(PROTO_FENCE_EFFECTIVE + i);
		}
		m->mlease_ok.manager_count = 2;
		strcpy(m->mlease_ok.managers[0], "mgr-a");
		strcpy(m->mlease_ok.managers[1], "mgr-b");
		break;
	case PROTO_FENCE:
		m->fence.node = 0x9b;
		strcpy(m->fence.by, "mgr-b");
		m->fence.hold_ms = 0x9c;
		break;
	case PROTO_DATAKEY:
	case PROTO_DATAKEY_OK:
		m->datakey.key_id = 0x9f;
		m->datakey.kcv = 0xa0a1a2a3a4a5a6a7ull;
		m->datakey.first = type == PROTO_DATAKEY_OK;
		break;
	case PROTO_KEYS:
		m->keys.from = 0xa8;
		break;
	case PROTO_KEYS_REPLY:
		m->keys_reply.unknown_chunks = 0xa9;
		m->keys_reply.unknown_bytes = 0xaa;
		m->keys_reply.count = 2;
		m->keys_reply.keys[0] = (struct proto_key_count){ 0, 0xab, 0xac };
		m->keys_reply.keys[1] = (struct proto_key_count){ 0xad, 0xae, 0xaf };
		break;
	case PROTO_FENCE_OK:
		m->fence_ok.node = 0x9b;
		m->fence_ok.gen = 0x9d;
		m->fence_ok.state = PROTO_FENCE_PENDING;
		m->fence_ok.wait_ms = 0x9e;
		break;
	}
}

static void fill_mstatus(struct proto_mstatus_reply *s)
{
	strcpy(s->name, "mgr-a");
	strcpy(s->store, "127.0.0.1:7400");
	s->store_up = 1;
	s->pending = 0xb1;
	strcpy(s->store_error, "last: timed out");
	s->node_count = 2;
	s->nodes = g_nodes;
	for (int i = 0; i < 2; i++) {
		struct proto_node_entry *n = &g_nodes[i];
		n->node = 0xb2 + (uint64_t)i;
		snprintf(n->name, sizeof(n->name), "agent-%d", i);
		snprintf(n->address, sizeof(n->address), "10.0.0.%d:7500", i + 1);
		n->alive = 1;
		n->cordoned = 1;
		n->seen_ago_ms = 0xb4 + (uint64_t)i;
		n->mem_total = 0xb6 + (uint64_t)i;
		n->mem_available = 0xb8 + (uint64_t)i;
		n->cpu_load_permille = (uint16_t)(999 + i);
		n->quota_max = 0xba + (uint32_t)i;
		n->quota_free = 0xb9;
		n->area_used = 0xbc + (uint64_t)i;
		n->processes = 0xbe + (uint32_t)i;
	}
	s->proc_count = 2;
	s->procs = g_procs;
	for (int i = 0; i < 2; i++) {
		struct proto_proc_entry *p = &g_procs[i];
		snprintf(p->process, sizeof(p->process), "p-%d", i);
		p->node = 0xc1 + (uint64_t)i;
		p->incarnation = 0xc3 + (uint64_t)i;
		p->durable = 0xc5 + (uint64_t)i;
		p->durable_age_ms = 0xc7 + (uint64_t)i;
		p->notified = 0xc9 + (uint64_t)i;
		p->size = 0xcb + (uint64_t)i;
		p->state = (uint8_t)(PROTO_PS_FAILED - i);
		p->restarts = 0xcd + (uint32_t)i;
		p->confirmed_ago_ms = 0xcf + (uint64_t)i;
		snprintf(p->reason, sizeof(p->reason), "why %d", i);
	}
}

static void fill_procs(struct proto_procs *p)
{
	p->node = 0xd1;
	ramp(p->boot, PROTO_BOOT_SIZE, 0xe0);
	p->generation = 0xd2;
	p->count = 2;
	p->procs = g_aprocs;
	for (int i = 0; i < 2; i++) {
		struct proto_agent_proc *e = &g_aprocs[i];
		snprintf(e->process, sizeof(e->process), "ap%d", i);
		e->incarnation = 0xd3 + (uint64_t)i;
		e->sequence = 0xd5 + (uint64_t)i;
		e->pid = 0xd7 + (uint32_t)i;
		e->state = (uint8_t)(PROTO_AP_FAILED - i);
		e->restarts = 0xd9 + (uint32_t)i;
		snprintf(e->reason, sizeof(e->reason), "gave up %d", i);
	}
}

static void fill_agent(uint8_t type, union proto_msg *m)
{
	switch (type) {
	case PROTO_REGISTER:
		m->reg.node = 0xf1;
		strcpy(m->reg.name, "agent-1");
		strcpy(m->reg.address, "10.0.0.1:7500");
		m->reg.area_capacity = 0xf2;
		m->reg.mem_total = 0xf3;
		m->reg.quota_max = 0xf4;
		ramp(m->reg.boot, PROTO_BOOT_SIZE, 0xe0);
		m->reg.data_key_id = 0xf7;
		m->reg.data_kcv = 0xb0b1b2b3b4b5b6b7ull;
		break;
	case PROTO_REGISTER_OK:
		strcpy(m->reg_ok.name, "mgr-a");
		m->reg_ok.epoch = 0xf5;
		m->reg_ok.heartbeat_ms = 0xf6;
		m->reg_ok.lease_ms = 0xf7;
		break;
	case PROTO_INFO_REPLY:
		m->info.node = 0x101;
		m->info.mem_total = 0x102;
		m->info.mem_available = 0x103;
		m->info.cpu_load_permille = 1000;
		m->info.quota_max = 0x105;
		m->info.quota_free = 0x104;
		m->info.area_capacity = 0x106;
		m->info.area_used = 0x107;
		m->info.processes = 0x108;
		break;
	case PROTO_RESTORE_OK:
		strcpy(m->restore_ok.process, "pr");
		m->restore_ok.incarnation = 0x111;
		m->restore_ok.sequence = 0x112;
		m->restore_ok.pid = 0x113;
		break;
	case PROTO_EXITED:
	case PROTO_RESOLVE:
	case PROTO_RESOLVE_OK:
	case PROTO_FREEZE:
	case PROTO_THAW:
	case PROTO_STOP:
	case PROTO_ADOPT:
		strcpy(m->ref.process, "pf");
		m->ref.incarnation = 0x121;
		m->ref.arg = 0x122;
		break;
	case PROTO_HEARTBEAT:
	case PROTO_HEARTBEAT_ACK:
		m->heartbeat.node = 0x131;
		ramp(m->heartbeat.boot, PROTO_BOOT_SIZE, 0xe0);
		m->heartbeat.counter = 0x132;
		m->heartbeat.sent_ms = 0x133;
		m->heartbeat.processes = 0x134;
		break;
	case PROTO_PROCS:
		fill_procs(&m->procs);
		break;
	}
}

static void fill_manager(uint8_t type, union proto_msg *m)
{
	switch (type) {
	case PROTO_MIGRATE:
		strcpy(m->migrate.process, "pm");
		m->migrate.target = 0x141;
		m->migrate.allow_same = 1;
		break;
	case PROTO_MIGRATE_OK:
		strcpy(m->migrate_ok.process, "pm");
		m->migrate_ok.from = 0x142;
		m->migrate_ok.to = 0x143;
		m->migrate_ok.incarnation = 0x144;
		m->migrate_ok.sequence = 0x145;
		m->migrate_ok.millis = 0x146;
		break;
	case PROTO_RUN:
		strcpy(m->run.process, "pn");
		m->run.node = 0x151;
		m->run.spec = spec_blob;
		m->run.spec_len = sizeof(spec_blob);
		break;
	case PROTO_RUN_OK:
		strcpy(m->run_ok.process, "pn");
		m->run_ok.node = 0x151;
		m->run_ok.incarnation = 0x152;
		m->run_ok.pid = 0x153;
		break;
	case PROTO_DRAIN:
	case PROTO_NODE_FAILED:
	case PROTO_CORDON:
	case PROTO_UNCORDON:
		m->drain.node = 0x0102030405060708ull;
		break;
	case PROTO_DRAIN_OK:
		m->drain_ok.moved = 0x161;
		m->drain_ok.failed = 0x162;
		break;
	case PROTO_FORGET:
		m->forget.kind = PROTO_FORGET_PROCESS;
		strcpy(m->forget.name, "pz");
		break;
	case PROTO_FORGET_OK:
		m->forget_ok.kind = PROTO_FORGET_PROCESS;
		m->forget_ok.node = 0x171;
		strcpy(m->forget_ok.process, "pz");
		m->forget_ok.deleted = 1;
		break;
	case PROTO_MSTATUS_REPLY:
		fill_mstatus(&m->mstatus);
		break;
	}
}

void msg_sample_fill(uint8_t type, union proto_msg *m)
{
	memset(m, 0, sizeof(*m));
	switch (type) {
	case PROTO_HELLO:
	case PROTO_HELLO_ACK:
		ramp(m->hello.nonce, PROTO_NONCE_SIZE, 0x01);
		ramp(m->hello.echo, PROTO_NONCE_SIZE, 0x81);
		m->hello.role = PROTO_ROLE_STORE;
		strcpy(m->hello.name, "store-1");
		return;
	case PROTO_ERROR:
		m->error.code = RTCMS_ECLAIMED;
		m->error.detail = 0x0102030405060708ull;
		strcpy(m->error.who, "mgr-b");
		strcpy(m->error.text, "claimed by mgr-b");
		return;
	case PROTO_PUT_BEGIN:
	case PROTO_GET_META:
	case PROTO_CKPT_NOTIFY:
	case PROTO_RESTORE:
	case PROTO_FROZEN:
		fill_meta(&m->meta);
		return;
	}
	fill_store(type, m);
	fill_agent(type, m);
	fill_manager(type, m);
}
