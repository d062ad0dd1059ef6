/* fake_rpc.c - fake agents and store for the manager's RPC (fake_rpc.h). */
#include "fake_rpc.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "manager/table.h"
#include "rtcms_error.h"

static void saw(struct fake *f, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void saw(struct fake *f, const char *fmt, ...)
{
	va_list ap;
	if (f->call_count >= FAKE_CALLS)
		return;
	va_start(ap, fmt);
	vsnprintf(f->calls[f->call_count++], sizeof(f->calls[0]), fmt, ap);
	va_end(ap);
}

static struct fake_agent *agent_at(struct fake *f, const char *addr)
{
	for (size_t i = 0; i < f->agent_count; i++)
		if (strcmp(f->agents[i].addr, addr) == 0)
			return &f->agents[i];
	return NULL;
}

static void say(char *why, size_t whylen, int rc, const char *who)
{
	snprintf(why, whylen, "%s: %s", who, rtcms_strerror(rc));
}

/* ---- agents ---------------------------------------------------------- */

static int f_freeze(void *ctx, const char *addr, const char *id, uint64_t inc,
		    struct proto_ckpt_meta *final, char *why, size_t whylen)
{
	struct fake *f = ctx;
	struct fake_agent *a = agent_at(f, addr);
	saw(f, "FREEZE %s %s", addr, id);
	int rc = a ? a->freeze_rc : RTCMS_ECONN;
	if (rc) {
		say(why, whylen, rc, "fake freeze");
		return rc;
	}
	*final = f->ckpt;
	(void)inc;
	return 0;
}

/* THAW or STOP of id at addr: the agent's rc for it. */
static int ref_call(struct fake *f, const char *verb, const char *addr, const char *id,
		    int (*rc_of)(const struct fake_agent *), char *why, size_t whylen)
{
	struct fake_agent *a = agent_at(f, addr);
	saw(f, "%s %s %s", verb, addr, id);
	int rc = a ? rc_of(a) : RTCMS_ECONN;
	if (rc)
		say(why, whylen, rc, verb);
	return rc;
}

static int thaw_rc(const struct fake_agent *a)
{
	return a->thaw_rc;
}

static int stop_rc(const struct fake_agent *a)
{
	return a->stop_rc;
}

static int f_thaw(void *ctx, const char *addr, const char *id, uint64_t inc, char *why,
		  size_t whylen)
{
	(void)inc;
	return ref_call(ctx, "THAW", addr, id, thaw_rc, why, whylen);
}

static int f_stop(void *ctx, const char *addr, const char *id, uint64_t inc, char *why,
		  size_t whylen)
{
	(void)inc;
	return ref_call(ctx, "STOP", addr, id, stop_rc, why, whylen);
}

static int f_info(void *ctx, const char *addr, int timeout_ms, struct proto_info_reply *out)
{
	struct fake *f = ctx;
	struct fake_agent *a = agent_at(f, addr);
	saw(f, "INFO %s", addr);
	(void)timeout_ms;
	if (!a)
		return RTCMS_ECONN;
	if (a->info_rc)
		return a->info_rc;
	memset(out, 0, sizeof(*out));
	out->node = a->node;
	out->mem_total = 4ull << 30;
	out->mem_available = a->mem_available;
	out->quota_max = 8;
	out->quota_free = 8;
	return 0;
}

static int f_holds(void *ctx, const char *addr, const char *id, bool *holds)
{
	struct fake *f = ctx;
	struct fake_agent *a = agent_at(f, addr);
	saw(f, "PROCS %s", addr);
	(void)id;
	*holds = a && a->holds;
	return a ? a->holds_rc : RTCMS_ECONN;
}

static int f_run(void *ctx, const char *addr, const struct proto_run *run,
		 struct proto_run_ok *ok, char *why, size_t whylen)
{
	struct fake *f = ctx;
	saw(f, "RUN %s %s", addr, run->process);
	(void)ok;
	say(why, whylen, RTCMS_EINVAL, "fake run");
	return RTCMS_EINVAL;
}

/* The fake checkpoint's bytes: FAKE_CHUNK-byte chunks of the same data. */
#define FAKE_CHUNK 16
static const uint8_t fake_data[FAKE_CHUNK] = "fake chunk data";

/* A source's connection, scripted: the checkpoint's chunks as CHUNK
 * frames, then GET_END; or, from chunk fail_after on, fail_rc (a broken
 * connection). */
struct fake_port {
	struct fake *f;
	uint32_t next, fail_after;
	int fail_rc;
	uint8_t id[STREAM_ID_SIZE];
};

static int port_recv(void *ctx, struct proto_header *hdr, union proto_msg *msg)
{
	struct fake_port *p = ctx;

	memset(hdr, 0, sizeof(*hdr));
	if (p->fail_rc && p->next == p->fail_after)
		return p->fail_rc;
	if (p->next == p->f->chunks) {
		hdr->type = PROTO_GET_END;
		memset(&msg->get_end, 0, sizeof(msg->get_end));
		msg->get_end.chunk_count = p->f->chunks;
		p->next++;
		return 0;
	}
	hdr->type = PROTO_CHUNK;
	msg->chunk = (struct proto_chunk){ .offset = (uint64_t)p->next * FAKE_CHUNK,
					   .len = FAKE_CHUNK, .data = fake_data };
	memcpy(msg->chunk.hash, p->id, STREAM_ID_SIZE);
	p->next++;
	return 0;
}

/* The checkpoint into sink as a real source gives it (stream_recv: every
 * chunk verified, the sink begun, fed, ended or aborted), its connection
 * failing after fail_after chunks with fail_rc (0: no failure). */
static int send_chunks(struct fake *f, struct proto_ckpt_meta *meta, struct stream_sink *sink,
		       uint32_t fail_after, int fail_rc, uint64_t skew)
{
	struct fake_port p = { f, 0, fail_after, fail_rc, { 0 } };
	struct stream_in in = { .port = { port_recv, NULL, NULL, &p },
				.end_type = PROTO_GET_END };
	struct stream_result res;

	stream_chunk_id(fake_data, FAKE_CHUNK, p.id);
	*meta = f->ckpt;
	meta->sequence += skew;
	return stream_recv(&in, meta, sink, &res);
}

static int f_pull(void *ctx, const char *addr, const struct rpc_pull *req,
		  struct proto_ckpt_meta *meta, struct stream_sink *sink)
{
	struct fake *f = ctx;
	struct fake_agent *a = agent_at(f, addr);
	saw(f, "PULL %s %s seq %llu", addr, req->process, (unsigned long long)req->sequence);
	if (!a)
		return RTCMS_ECONN;
	return send_chunks(f, meta, sink, a->pull_fail_after, a->pull_rc, a->pull_skew);
}

static int f_target_open(void *ctx, struct rpc_link *link, const char *addr)
{
	struct fake *f = ctx;
	struct fake_agent *a = agent_at(f, addr);
	(void)link;
	if (!a || a->target_open_rc) {
		saw(f, "CONNECT %s failed", addr);
		return a ? a->target_open_rc : RTCMS_ECONN;
	}
	f->target = a;
	a->restored_chunks = 0;
	return 0;
}

static int f_adopt(void *ctx, struct rpc_link *link, const char *id, uint64_t inc, char *why,
		   size_t whylen)
{
	struct fake *f = ctx;
	(void)link;
	saw(f, "ADOPT %s %s inc %llu", f->target ? f->target->addr : "?", id,
	    (unsigned long long)inc);
	int rc = f->target ? f->target->adopt_rc : RTCMS_ECONN;
	if (rc)
		say(why, whylen, rc, "fake adopt");
	return rc;
}

/* The fake target's RESTORE side: like the real one it sends RESTORE
 * with the first chunk. */
static int restore_begin(struct stream_sink *s, const struct proto_ckpt_meta *meta)
{
	struct rpc_stream *st = RPC_STREAM(s);
	st->sequence = meta->sequence;
	return 0;
}

static int restore_chunk(struct stream_sink *s, const struct proto_chunk *chunk)
{
	struct rpc_stream *st = RPC_STREAM(s);
	struct fake *f = st->rpc->ctx;
	(void)chunk;
	if (!st->restore.begun) {
		st->restore.begun = true; /* (the real side's flag: RESTORE went out) */
		saw(f, "RESTORE %s", f->target->addr);
		if (f->target->restore_begin_rc) {
			snprintf(st->why, sizeof(st->why), "sending it: fake");
			return f->target->restore_begin_rc;
		}
	}
	if (f->target->restore_chunk_rc) {
		snprintf(st->why, sizeof(st->why), "sending it: fake");
		return f->target->restore_chunk_rc;
	}
	f->target->restored_chunks++;
	return 0;
}

static int restore_end(struct stream_sink *s, uint32_t count)
{
	struct rpc_stream *st = RPC_STREAM(s);
	struct fake *f = st->rpc->ctx;
	saw(f, "RESTORE_END %s %u", f->target->addr, count);
	if (f->target->restore_rc)
		snprintf(st->why, sizeof(st->why), "fake: the program did not resume");
	return f->target->restore_rc;
}

static const struct stream_sink_ops fake_restore = { restore_begin, restore_chunk, restore_end,
						      NULL, NULL };

static const struct rpc_agent_ops fake_agent_ops = {
	.freeze = f_freeze, .thaw = f_thaw, .stop = f_stop, .info = f_info,
	.holds = f_holds, .run = f_run, .pull = f_pull, .target_open = f_target_open,
	.adopt = f_adopt, .restore = &fake_restore,
};

/* ---- the store ------------------------------------------------------- */

static int s_open(void *ctx, struct rpc_link *link)
{
	struct fake *f = ctx;
	(void)link;
	if (f->open_rc)
		saw(f, "STORE unreachable");
	return f->open_rc;
}

static int s_meta(void *ctx, struct rpc_link *link, const char *id, uint64_t inc,
		  uint64_t seq, struct proto_ckpt_meta *out)
{
	struct fake *f = ctx;
	(void)link;
	saw(f, "META %s %llu/%llu", id, (unsigned long long)inc, (unsigned long long)seq);
	if (f->meta_rc)
		return f->meta_rc;
	*out = f->ckpt;
	return 0;
}

static int s_get(void *ctx, struct rpc_link *link, const char *id, uint64_t inc, uint64_t seq,
		 struct proto_ckpt_meta *meta, struct stream_sink *sink)
{
	struct fake *f = ctx;
	(void)link;
	saw(f, "GET %s %llu/%llu", id, (unsigned long long)inc, (unsigned long long)seq);
	return send_chunks(f, meta, sink, 0, f->get_rc, 0);
}

static int s_list(void *ctx, struct rpc_link *link, const struct proto_list *q,
		  struct proto_list_entry *entries, uint16_t *count, bool *more, char *why,
		  size_t whylen)
{
	struct fake *f = ctx;
	(void)link, (void)q, (void)entries, (void)why, (void)whylen;
	saw(f, "LIST");
	*count = 0;
	*more = false;
	return 0;
}

static int s_remove(void *ctx, const char *id, char *why, size_t whylen)
{
	struct fake *f = ctx;
	(void)why, (void)whylen;
	saw(f, "DELETE %s", id);
	return 0;
}

static int s_claim(void *ctx, struct rpc_link *link, const char *id, uint8_t flags,
		   struct proto_claim_ok *ok, uint64_t *held_until, char *why, size_t whylen)
{
	struct fake *f = ctx;
	(void)link;
	saw(f, "CLAIM %s%s", id, flags & PROTO_CLAIM_F_GAVE_UP ? " gave-up" : "");
	int rc = f->claims < 4 ? f->claim_rc[f->claims] : 0;
	f->claims++;
	if (rc) {
		say(why, whylen, rc, "fake claim");
		if (rc == RTCMS_ECLAIMED && held_until)
			*held_until = f->held_until;
		return rc;
	}
	*ok = f->claim;
	snprintf(ok->process, sizeof(ok->process), "%s", id);
	return 0;
}

static int s_commit(void *ctx, struct rpc_link *link, const char *id, uint64_t claim_id,
		    uint64_t node, uint64_t *new_inc)
{
	struct fake *f = ctx;
	(void)link;
	saw(f, "COMMIT %s claim %llu node %llu", id, (unsigned long long)claim_id,
	    (unsigned long long)node);
	if (f->commit_rc)
		return f->commit_rc;
	*new_inc = f->commit_inc;
	return 0;
}

static int s_release(void *ctx, struct rpc_link *link, const char *id, uint64_t claim_id)
{
	struct fake *f = ctx;
	(void)link;
	saw(f, "RELEASE %s claim %llu", id, (unsigned long long)claim_id);
	return f->release_rc;
}

static int s_fence(void *ctx, uint64_t node, uint8_t *state, uint32_t *wait_ms, char *why,
		   size_t whylen)
{
	struct fake *f = ctx;
	(void)why, (void)whylen;
	saw(f, "FENCE %llu", (unsigned long long)node);
	*state = PROTO_FENCE_COMPLETE;
	*wait_ms = 0;
	return 0;
}

static int s_mlease(void *ctx, struct rpc_link *link, int timeout_ms,
		    const struct proto_mlease *q, struct proto_mlease_ok *ok)
{
	(void)ctx, (void)link, (void)timeout_ms, (void)q;
	memset(ok, 0, sizeof(*ok));
	ok->lease_ms = 5000;
	return 0;
}

/* The fake store's PUT side: like the real one it sends PUT_BEGIN with
 * the first chunk, and is done there if the store holds it already. */
static int put_begin(struct stream_sink *s, const struct proto_ckpt_meta *meta)
{
	struct rpc_stream *st = RPC_STREAM(s);
	st->sequence = meta->sequence;
	st->put.meta = *meta; /* (the real side's field: what PUT_BEGIN sends) */
	st->put.meta.spec = NULL;
	return 0;
}

static int put_chunk(struct stream_sink *s, const struct proto_chunk *chunk)
{
	struct rpc_stream *st = RPC_STREAM(s);
	struct fake *f = st->rpc->ctx;
	(void)chunk;
	if (!st->put.begun) {
		const struct proto_ckpt_meta *meta = &st->put.meta;
		st->put.begun = true;
		saw(f, "PUT_BEGIN %s %llu/%llu%s", meta->process,
		    (unsigned long long)meta->incarnation, (unsigned long long)meta->sequence,
		    f->store_has ? " (has it)" : "");
		f->stored_chunks = 0;
		if (f->put_begin_rc)
			return f->put_begin_rc;
		if (f->store_has) {
			s->done = true;
			return 0;
		}
	}
	if (f->put_chunk_rc)
		return f->put_chunk_rc;
	f->stored_chunks++;
	return 0;
}

static int put_end(struct stream_sink *s, uint32_t count)
{
	struct rpc_stream *st = RPC_STREAM(s);
	struct fake *f = st->rpc->ctx;
	saw(f, "PUT_END %u", count);
	st->ack.depth = 0;
	return f->put_end_rc;
}

static const struct stream_sink_ops fake_put = { put_begin, put_chunk, put_end, NULL, NULL };

static const struct rpc_store_ops fake_store_ops = {
	.open = s_open, .meta = s_meta, .get = s_get, .list = s_list, .remove = s_remove,
	.claim = s_claim, .commit = s_commit, .release = s_release, .fence = s_fence,
	.mlease = s_mlease, .put = &fake_put,
};

/* ---- the world and the manager ---------------------------------------- */

void fake_init(struct fake *f)
{
	memset(f, 0, sizeof(*f));
	snprintf(f->ckpt.process, sizeof(f->ckpt.process), "p1");
	f->ckpt.node = 1;
	f->ckpt.incarnation = 1;
	f->ckpt.sequence = 5;
	f->ckpt.size = 48;
	f->ckpt.chunk_count = 3;
	/* the image hash of three chunks of fake_data, as a real source's */
	uint8_t img[3 * FAKE_CHUNK];
	struct stream_chunks k = { 0 };
	for (int i = 0; i < 3; i++)
		memcpy(img + i * FAKE_CHUNK, fake_data, FAKE_CHUNK);
	assert_int_equal(stream_chunks_of(&k, img, sizeof(img), FAKE_CHUNK), 0);
	memcpy(f->ckpt.hash, k.image_hash, sizeof(f->ckpt.hash));
	stream_chunks_clear(&k);
	f->chunks = 3;
	f->claim.claim_id = 7;
	f->claim.incarnation = 1;
	f->claim.sequence = 5;
	f->claim.node = 1;
	f->commit_inc = 2;
}

struct fake_agent *fake_agent_add(struct fake *f, uint64_t node, const char *addr)
{
	struct fake_agent *a = &f->agents[f->agent_count++];
	memset(a, 0, sizeof(*a));
	a->node = node;
	snprintf(a->addr, sizeof(a->addr), "%s", addr);
	a->mem_available = 2ull << 30;
	return a;
}

struct manager *fake_manager_new(struct fake *f)
{
	struct manager *m = calloc(1, sizeof(*m));
	if (!m)
		return NULL;
	m->procs = calloc(MANAGER_PROCS_MAX, sizeof(*m->procs));
	snprintf(m->cfg.name, sizeof(m->cfg.name), "manager");
	snprintf(m->cfg.store, sizeof(m->cfg.store), "store");
	m->cfg.node_timeout_ms = 3600000; /* every registered node stays alive */
	m->cfg.io_timeout_ms = 1000;
	m->cfg.claim_lease_ms = 30000;
	m->cfg.agent_lease_ms = 200;
	m->cfg.fence_margin_ms = 100;
	placement_defaults(&m->placement);
	m->store_up = true;
	m->rpc = (struct manager_rpc){ &fake_agent_ops, &fake_store_ops, f };
	uv_mutex_init(&m->lock);
	uv_cond_init(&m->work);
	return m;
}

void fake_manager_free(struct manager *m)
{
	if (!m)
		return;
	uv_cond_destroy(&m->work);
	uv_mutex_destroy(&m->lock);
	free(m->procs);
	free(m);
}

struct mnode *fake_manager_node(struct manager *m, uint64_t node, const char *addr)
{
	struct mnode *n = manager_node_add(m, node);
	snprintf(n->name, sizeof(n->name), "agent-%llu", (unsigned long long)node);
	snprintf(n->address, sizeof(n->address), "%s", addr);
	n->seen_ms = manager_mono_ms();
	return n;
}

struct mproc *fake_manager_proc(struct manager *m, const char *id, uint64_t node,
				uint64_t inc, uint64_t durable)
{
	struct mproc *p = manager_proc_add(m, id);
	p->node = node;
	p->incarnation = inc;
	p->notified = p->durable = durable;
	return p;
}

const char *fake_calls(struct fake *f, char *buf, size_t len)
{
	size_t off = 0;
	buf[0] = '\0';
	for (size_t i = 0; i < f->call_count && off < len; i++) {
		if (strncmp(f->calls[i], "INFO ", 5) == 0)
			continue;
		off += (size_t)snprintf(buf + off, len - off, "%s%s", off ? "; " : "",
					f->calls[i]);
	}
	return buf;
}

size_t fake_count(const struct fake *f, const char *prefix)
{
	size_t n = 0;
	for (size_t i = 0; i < f->call_count; i++)
		n += strncmp(f->calls[i], prefix, strlen(prefix)) == 0;
	return n;
}

struct fake_world *fake_world_new(void)
{
	struct fake_world *w = calloc(1, sizeof(*w));
	if (!w)
		return NULL;
	fake_init(&w->f);
	w->m = fake_manager_new(&w->f);
	for (uint64_t i = 0; i < 3; i++) {
		char addr[32];
		snprintf(addr, sizeof(addr), "10.0.0.%llu", (unsigned long long)i + 1);
		w->a[i] = fake_agent_add(&w->f, i + 1, addr);
		fake_manager_node(w->m, i + 1, addr);
	}
	w->a[1]->mem_available = 3ull << 30;
	return w;
}

void fake_world_free(struct fake_world *w)
{
	if (!w)
		return;
	fake_manager_free(w->m);
	free(w);
}

const char *fake_world_calls(struct fake_world *w)
{
	return fake_calls(&w->f, w->calls, sizeof(w->calls));
}

struct mproc *fake_world_p1(struct fake_world *w)
{
	return manager_proc(w->m, "p1");
}

void fake_assert_p1(struct fake_world *w, uint64_t node, uint64_t inc, int state,
		    int migrating)
{
	struct mproc *p = fake_world_p1(w);
	assert_non_null(p);
	assert_int_equal(p->node, node);
	assert_int_equal(p->incarnation, inc);
	assert_int_equal(p->state, state);
	assert_int_equal(p->migrating, migrating);
}
