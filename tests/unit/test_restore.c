/*
 * test_restore.c - the agent's restore (src/agent/restore.c) as a state
 * machine over fakes: a scripted manager connection (the frames it sends,
 * the replies it gets) and a launcher that starts nothing (the entry's
 * area is plain memory; the program resumes, never resumes, crashes or
 * cannot start, as the test says). Every branch of a restore: the image
 * adopted, a chunk, image or state hash that does not match, a truncated
 * or malformed stream, chunks out of order, a stale incarnation, a delta,
 * a checkpoint too big, no lease, a duplicate, a start that fails, a crash
 * before the resume, no resume in time, no ADOPT, a wrong or fenced ADOPT.
 * The tests assert on what the fakes saw and on the process table.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <signal.h>
#include <sodium.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/agent_int.h"
#include "agent/proc.h"
#include "agent/restore.h"
#include "agent/spawn.h"
#include "area/area.h"
#include "area/delta.h"
#include "area/image.h"
#include "rtcms_error.h"
#include "stream/stream.h"
#include "util/bytes.h"

#define DATA ((5u << 20) / 2)         /* 2.5 MiB of state: an image of 3 chunks */
#define SEQ 7
#define INC 3
#define PID 4242
#define FRAMES_MAX 16

/* ---- the manager's side: a script of frames, the replies it gets ---- */

struct reply {
	uint8_t type;                  /* PROTO_ERROR for an error */
	int code;
	uint32_t request;
	char text[PROTO_TEXT_MAX + 1];
	union proto_msg msg;
};

struct fake_peer {
	struct { uint8_t type; uint16_t flags; union proto_msg msg; } in[FRAMES_MAX];
	size_t n_in, next;
	int end_rc;                    /* recv's answer once the script is done */
	void (*before)(struct fake_peer *f, size_t frame); /* before frame is read */
	struct agent *a;
	struct reply out[FRAMES_MAX];
	size_t n_out;
	int timeout_ms;
};

static int peer_recv(void *ctx, struct proto_header *hdr, union proto_msg *msg)
{
	struct fake_peer *f = ctx;
	if (f->next >= f->n_in)
		return f->end_rc;
	if (f->before)
		f->before(f, f->next);
	memset(hdr, 0, sizeof(*hdr));
	hdr->type = f->in[f->next].type;
	hdr->flags = f->in[f->next].flags;
	hdr->request = 100 + (uint32_t)f->next;
	*msg = f->in[f->next].msg;
	f->next++;
	return 0;
}

static int peer_reply(void *ctx, uint8_t type, uint16_t flags, uint32_t request,
		      const union proto_msg *msg)
{
	struct fake_peer *f = ctx;
	assert_true(flags & PROTO_F_REPLY); /* the agent only answers its manager */
	assert_true(f->n_out < FRAMES_MAX);
	struct reply *r = &f->out[f->n_out++];
	r->type = type;
	r->request = request;
	r->msg = *msg;
	return 0;
}

static int peer_reply_error(void *ctx, uint32_t request, int code, const char *text)
{
	struct fake_peer *f = ctx;
	assert_true(f->n_out < FRAMES_MAX);
	struct reply *r = &f->out[f->n_out++];
	r->type = PROTO_ERROR;
	r->code = code;
	r->request = request;
	snprintf(r->text, sizeof(r->text), "%s", text ? text : "");
	return 0;
}

static void peer_set_timeout(void *ctx, int timeout_ms)
{
	struct fake_peer *f = ctx;
	f->timeout_ms = timeout_ms;
}

/* ---- the launcher: nothing is started ----------------------------- */

enum fake_mode { FAKE_RESUMES, FAKE_NEVER_RESUMES, FAKE_CRASHES, FAKE_CANNOT_START };

struct fake_launcher {
	enum fake_mode mode;
	int starts, releases;
	char id[PROTO_ID_MAX + 1];
	uint64_t incarnation;
	bool restore_mode;             /* the entry was AP_RESTORING */
	uint8_t image_hash[PROTO_HASH_SIZE]; /* of the image it was given */
	int signals[8];
	int n_signals;
};

static int fake_start(void *ctx, const struct agent *a, const struct launch_req *r,
		      struct aproc *p, char *err, size_t errlen)
{
	struct fake_launcher *l = ctx;
	(void)a;
	l->starts++;
	snprintf(l->id, sizeof(l->id), "%s", r->id);
	l->incarnation = r->incarnation;
	l->restore_mode = p->state == AP_RESTORING;
	/* a restore's area came with the entry, its checkpoint committed */
	assert_non_null(r->area);
	assert_non_null(p->area);
	assert_null(r->area->mem);
	size_t cap = image_size(AREA_MAX_REGIONS, area_data_capacity(p->area));
	uint8_t *back = malloc(cap);
	assert_non_null(back);
	int64_t n = image_capture(p->area, back, cap);
	assert_true(n > 0);
	crypto_generichash(l->image_hash, sizeof(l->image_hash), back, (size_t)n, NULL, 0);
	free(back);
	if (l->mode == FAKE_CANNOT_START) {
		snprintf(err, errlen, "cannot start /nonexistent: No such file or directory");
		return RTCMS_EIO;
	}
	p->pid = PID;
	struct area_header *h = p->area;
	uint64_t seq = area_committed_sequence(p->area);
	if (l->mode == FAKE_RESUMES)
		atomic_store(&h->resumed, seq); /* refilled its regions at once */
	if (l->mode == FAKE_CRASHES) {
		p->state = AP_EXITED;      /* as the reaper sees a SIGSEGV */
		p->status = SIGSEGV;
	}
	return 0;
}

static void fake_signal(void *ctx, struct aproc *p, int sig)
{
	struct fake_launcher *l = ctx;
	(void)p;
	assert_true(l->n_signals < 8);
	l->signals[l->n_signals++] = sig;
}

static void fake_release(void *ctx, struct aproc *p)
{
	struct fake_launcher *l = ctx;
	struct launch_area ar = { p->area_fd, p->area, p->area_len };
	l->releases++;
	spawn_area_free(&ar); /* the restore's, a memfd */
	p->area = NULL;
}

static const struct launcher_ops fake_ops = { fake_start, fake_signal, fake_release };

/* ---- a checkpoint as the store sends it --------------------------- */

static uint8_t *image;                /* a real image of SEQ, DATA bytes of state */
static size_t image_len;
static uint8_t image_state_hash[PROTO_HASH_SIZE];
static uint8_t image_hash[PROTO_HASH_SIZE];   /* over its chunks */
static uint8_t image_digest[PROTO_HASH_SIZE]; /* of its bytes, as the launcher saw them */
static uint8_t spec[] = { 1, 2, 3, 4 };       /* opaque to the restore */

static int setup_image(void **state)
{
	(void)state;
	assert_true(sodium_init() >= 0);
	size_t len = area_size_for(DATA);
	void *mem = calloc(1, len);
	assert_non_null(mem);
	assert_int_equal(area_format(mem, len), 0);
	struct area_slot *s = area_write_begin(mem);
	s->region_count = 1;
	s->regions[0] = (struct area_region){ 1, 0, DATA, 0 };
	s->data_size = DATA;
	uint8_t *d = area_slot_data(mem, s);
	for (size_t i = 0; i < DATA; i++)
		d[i] = (uint8_t)(i * 7 + i / 4096);
	area_write_commit(mem, s, SEQ);
	image = malloc(image_size(AREA_MAX_REGIONS, DATA));
	int64_t n = image_capture(mem, image, image_size(AREA_MAX_REGIONS, DATA));
	assert_true(n > 0);
	image_len = (size_t)n;
	free(mem);
	assert_int_equal(state_hash(image, image_len, image_state_hash), 0);
	struct proto_image_hash ih;
	proto_image_hash_init(&ih, image_len);
	for (size_t off = 0; off < image_len; off += PROTO_MAX_CHUNK) {
		uint8_t h[PROTO_HASH_SIZE];
		size_t l = image_len - off < PROTO_MAX_CHUNK ? image_len - off : PROTO_MAX_CHUNK;
		proto_chunk_hash(image + off, l, h);
		assert_int_equal(proto_image_hash_update(&ih, off, (uint32_t)l, h), 0);
	}
	assert_int_equal(proto_image_hash_final(&ih, image_hash), 0);
	crypto_generichash(image_digest, sizeof(image_digest), image, image_len, NULL, 0);
	return 0;
}

static int teardown_image(void **state)
{
	(void)state;
	free(image);
	return 0;
}

/* ---- one restore: an agent, its fakes, the script ----------------- */

struct world {
	struct agent *a;
	struct fake_launcher l;
	struct fake_peer f;
	struct agent_peer peer;
	struct proto_ckpt_meta meta;
	uint8_t bad[PROTO_MAX_CHUNK];  /* a corrupted copy of a chunk */
};

static struct world *world_new(enum fake_mode mode)
{
	struct agent_config cfg;
	struct proto_key key;
	char err[256];
	struct world *w = calloc(1, sizeof(*w));
	assert_non_null(w);
	agent_config_defaults(&cfg);
	cfg.restore_timeout_ms = 50;
	cfg.adopt_timeout_ms = 1234;
	randombytes_buf(&key, sizeof(key));
	assert_int_equal(agent_new(&cfg, &key, 0xa1, &w->a, err, sizeof(err)), 0);
	w->l.mode = mode;
	w->a->launcher = &fake_ops;
	w->a->launcher_ctx = &w->l;
	w->a->lease_until = agent_mono_ms() + 3600 * 1000; /* under a lease */
	w->f.a = w->a;
	w->f.end_rc = RTCMS_ECONN;
	w->peer = (struct agent_peer){ { peer_recv, peer_reply, NULL, &w->f, NULL }, peer_reply_error,
				       peer_set_timeout, &w->f };
	struct proto_ckpt_meta *m = &w->meta;
	snprintf(m->process, sizeof(m->process), "ledger");
	m->incarnation = INC;
	m->sequence = SEQ;
	m->size = image_len;
	m->full_size = image_len;
	m->chunk_count = (uint32_t)((image_len + PROTO_MAX_CHUNK - 1) / PROTO_MAX_CHUNK);
	memcpy(m->hash, image_hash, PROTO_HASH_SIZE);
	memcpy(m->state_hash, image_state_hash, PROTO_HASH_SIZE);
	m->spec = spec;
	m->spec_len = sizeof(spec);
	return w;
}

static void world_free(struct world *w)
{
	agent_free(w->a);
	free(w);
}

static void push(struct world *w, uint8_t type, const union proto_msg *m)
{
	assert_true(w->f.n_in < FRAMES_MAX);
	w->f.in[w->f.n_in].type = type;
	if (m)
		w->f.in[w->f.n_in].msg = *m;
	w->f.n_in++;
}

/* CHUNK k of the image (from bytes: the image, or a corrupted copy). */
static void push_chunk(struct world *w, size_t k, const uint8_t *bytes)
{
	union proto_msg m;
	memset(&m, 0, sizeof(m));
	m.chunk.offset = k * PROTO_MAX_CHUNK;
	m.chunk.len = image_len - m.chunk.offset < PROTO_MAX_CHUNK
		      ? (uint32_t)(image_len - m.chunk.offset) : PROTO_MAX_CHUNK;
	m.chunk.data = bytes ? bytes : image + m.chunk.offset;
	proto_chunk_hash(image + m.chunk.offset, m.chunk.len, m.chunk.hash);
	push(w, PROTO_CHUNK, &m);
}

static void push_end(struct world *w, uint32_t count)
{
	union proto_msg m;
	memset(&m, 0, sizeof(m));
	m.put_end.chunk_count = count;
	push(w, PROTO_PUT_END, &m);
}

/* The whole stream: every chunk, PUT_END. */
static void push_stream(struct world *w)
{
	for (size_t k = 0; k < w->meta.chunk_count; k++)
		push_chunk(w, k, NULL);
	push_end(w, w->meta.chunk_count);
}

static void push_adopt(struct world *w, const char *id, uint64_t inc)
{
	union proto_msg m;
	memset(&m, 0, sizeof(m));
	snprintf(m.ref.process, sizeof(m.ref.process), "%s", id);
	m.ref.incarnation = inc;
	push(w, PROTO_ADOPT, &m);
}

static enum restore_result run(struct world *w)
{
	return restore_serve(w->a, &w->peer, "manager-test", 42, &w->meta);
}

static int table_count(struct agent *a)
{
	int n = 0;
	for (struct aproc *p = a->procs; p; p = p->next)
		n++;
	return n;
}

/* The only reply is ERROR code to the RESTORE, its text holding what. */
static void assert_refused(const struct world *w, int code, const char *what)
{
	assert_int_equal(w->f.n_out, 1);
	assert_int_equal(w->f.out[0].type, PROTO_ERROR);
	assert_int_equal(w->f.out[0].request, 42);
	assert_int_equal(w->f.out[0].code, code);
	if (!strstr(w->f.out[0].text, what))
		fail_msg("\"%s\" does not say \"%s\"", w->f.out[0].text, what);
}

/* Refused before a start: the whole stream read, nothing started, the
 * table empty. */
static void assert_refused_unstarted(const struct world *w, int code, const char *what)
{
	assert_refused(w, code, what);
	assert_int_equal(w->f.next, w->f.n_in);
	assert_int_equal(w->l.starts, 0);
	assert_int_equal(table_count(w->a), 0);
}

/* Started, resumed, RESTORE_OK sent, then killed for want of an ADOPT. */
static void assert_unadopted(const struct world *w)
{
	assert_int_equal(w->l.starts, 1);
	assert_true(w->f.n_out >= 1);
	assert_int_equal(w->f.out[0].type, PROTO_RESTORE_OK);
	assert_int_equal(w->f.timeout_ms, 1234); /* adopt_timeout */
	assert_int_equal(w->l.n_signals, 1);
	assert_int_equal(w->l.signals[0], SIGKILL);
	struct aproc *p = w->a->procs;
	assert_non_null(p);
	assert_true(p->killed);         /* not a crash: never restarted */
	assert_int_equal(p->state, AP_RESTORING);
	assert_int_equal(p->incarnation, INC);
	assert_int_equal(p->refs, 0);
}

/* ---- the tests ---------------------------------------------------- */

static void test_adopted(void **state)
{
	(void)state;
	struct world *w = world_new(FAKE_RESUMES);
	push_stream(w);
	push_adopt(w, "ledger", INC + 1);
	assert_int_equal(run(w), RESTORE_ADOPTED);

	assert_int_equal(w->l.starts, 1);
	assert_string_equal(w->l.id, "ledger");
	assert_int_equal(w->l.incarnation, INC);
	assert_true(w->l.restore_mode);
	assert_memory_equal(w->l.image_hash, image_digest, PROTO_HASH_SIZE);
	assert_int_equal(w->l.n_signals, 0);
	assert_int_equal(w->f.n_out, 2);
	assert_int_equal(w->f.out[0].type, PROTO_RESTORE_OK);
	assert_int_equal(w->f.out[0].request, 42);
	assert_string_equal(w->f.out[0].msg.restore_ok.process, "ledger");
	assert_int_equal(w->f.out[0].msg.restore_ok.incarnation, INC);
	assert_int_equal(w->f.out[0].msg.restore_ok.sequence, SEQ);
	assert_int_equal(w->f.out[0].msg.restore_ok.pid, PID);
	assert_int_equal(w->f.out[1].type, PROTO_OK);
	assert_int_equal(w->f.out[1].request, 100 + w->f.n_in - 1); /* the ADOPT's */
	assert_int_equal(w->f.timeout_ms, 1234);

	assert_int_equal(table_count(w->a), 1);
	struct aproc *p = w->a->procs;
	assert_string_equal(p->id, "ledger");
	assert_int_equal(p->state, AP_RUNNING);
	assert_int_equal(p->incarnation, INC + 1);
	assert_false(p->killed);
	assert_int_equal(p->refs, 0);
	assert_memory_equal(p->spec, spec, sizeof(spec));
	assert_int_equal(proc_seen_incarnation(w->a, "ledger"), INC + 1);
	world_free(w);
}

static void test_chunk_hash_mismatch(void **state)
{
	(void)state;
	struct world *w = world_new(FAKE_RESUMES);
	push_chunk(w, 0, NULL);
	memcpy(w->bad, image + PROTO_MAX_CHUNK, PROTO_MAX_CHUNK);
	w->bad[100] ^= 1;
	push_chunk(w, 1, w->bad);
	push_chunk(w, 2, NULL);
	push_end(w, 3);
	assert_int_equal(run(w), RESTORE_FAILED);
	assert_refused_unstarted(w, RTCMS_ECORRUPT, "chunk at 1048576 does not match its hash");
	world_free(w);
}

static void test_image_hash_mismatch(void **state)
{
	(void)state;
	struct world *w = world_new(FAKE_RESUMES);
	w->meta.hash[0] ^= 1;
	push_stream(w);
	assert_int_equal(run(w), RESTORE_FAILED);
	assert_refused_unstarted(w, RTCMS_ECORRUPT, "the image does not match its hash");
	world_free(w);
}

/* A checkpoint stored before state hashes of version 2 (BLAKE2b blocks)
 * still restores. */
static void test_state_hash_v1(void **state)
{
	(void)state;
	struct world *w = world_new(FAKE_RESUMES);
	assert_int_equal(state_hash_version(image, image_len, STATE_HASH_V1, w->meta.state_hash),
			 0);
	assert_memory_not_equal(w->meta.state_hash, image_state_hash, PROTO_HASH_SIZE);
	push_stream(w);
	push_adopt(w, "ledger", INC + 1);
	assert_int_equal(run(w), RESTORE_ADOPTED);
	assert_int_equal(w->l.starts, 1);
	world_free(w);
}

static void test_state_hash_mismatch(void **state)
{
	(void)state;
	struct world *w = world_new(FAKE_RESUMES);
	w->meta.state_hash[5] ^= 1;
	push_stream(w);
	assert_int_equal(run(w), RESTORE_FAILED);
	assert_refused_unstarted(w, RTCMS_ECORRUPT, "does not match its state hash");
	world_free(w);
}

/* Chunks [0, sent) of the image and a PUT_END saying end_count, for
 * metadata announcing announced chunks: not the image announced. */
static void assert_count_refused(uint32_t announced, size_t sent, uint32_t end_count)
{
	struct world *w = world_new(FAKE_RESUMES);
	w->meta.chunk_count = announced;
	for (size_t k = 0; k < sent; k++)
		push_chunk(w, k, NULL);
	push_end(w, end_count);
	assert_int_equal(run(w), RESTORE_FAILED);
	assert_refused_unstarted(w, RTCMS_ECORRUPT, "the image does not match its hash");
	world_free(w);
}

/* A chunk the metadata does not count, or a PUT_END that says another
 * count: the image is not the one announced. */
static void test_chunk_count_mismatch(void **state)
{
	(void)state;
	assert_count_refused(3, 3, 2); /* a PUT_END that says another count */
	assert_count_refused(3, 2, 2); /* the last chunk never came */
	assert_count_refused(2, 3, 3); /* a chunk more than announced */
}

static void test_out_of_order(void **state)
{
	(void)state;
	struct world *w = world_new(FAKE_RESUMES);
	push_chunk(w, 1, NULL);
	push_chunk(w, 0, NULL);
	push_chunk(w, 2, NULL);
	push_end(w, 3);
	assert_int_equal(run(w), RESTORE_FAILED);
	assert_refused_unstarted(w, RTCMS_EPROTO, "chunk at 1048576 out of order or bounds");
	world_free(w);
}

/* The connection breaks in the middle of the stream: no answer, nothing
 * started, the connection is closed. */
static void test_truncated_stream(void **state)
{
	(void)state;
	struct world *w = world_new(FAKE_RESUMES);
	push_chunk(w, 0, NULL);
	push_chunk(w, 1, NULL);
	w->f.end_rc = RTCMS_ECONN;
	assert_int_equal(run(w), RESTORE_BROKEN);
	assert_int_equal(w->f.n_out, 0);
	assert_int_equal(w->l.starts, 0);
	assert_int_equal(table_count(w->a), 0);
	world_free(w);

	w = world_new(FAKE_RESUMES); /* or times out */
	push_chunk(w, 0, NULL);
	w->f.end_rc = RTCMS_ETIMEDOUT;
	assert_int_equal(run(w), RESTORE_BROKEN);
	assert_int_equal(w->f.n_out, 0);
	assert_int_equal(w->l.starts, 0);
	world_free(w);
}

/* Another frame in the stream: ERROR EPROTO, and the connection closes. */
static void test_not_a_chunk(void **state)
{
	(void)state;
	struct world *w = world_new(FAKE_RESUMES);
	push_chunk(w, 0, NULL);
	push_adopt(w, "ledger", INC + 1);
	push_chunk(w, 1, NULL);
	assert_int_equal(run(w), RESTORE_BROKEN);
	assert_int_equal(w->f.next, 2); /* nothing read after it */
	assert_refused(w, RTCMS_EPROTO, "expected CHUNK or PUT_END");
	assert_int_equal(w->l.starts, 0);
	assert_int_equal(table_count(w->a), 0);
	world_free(w);
}

/* A checkpoint older than an incarnation this node already ran. */
static void test_incarnation_fenced(void **state)
{
	(void)state;
	struct world *w = world_new(FAKE_RESUMES);
	uv_mutex_lock(&w->a->lock);
	proc_seen_record(w->a, "ledger", INC + 2);
	uv_mutex_unlock(&w->a->lock);
	push_stream(w);
	assert_int_equal(run(w), RESTORE_FAILED);
	assert_refused_unstarted(w, RTCMS_EFENCED, "incarnation 5 already ran here");
	world_free(w);

	w = world_new(FAKE_RESUMES); /* the same incarnation again is not older */
	uv_mutex_lock(&w->a->lock);
	proc_seen_record(w->a, "ledger", INC);
	uv_mutex_unlock(&w->a->lock);
	push_stream(w);
	push_adopt(w, "ledger", INC + 1);
	assert_int_equal(run(w), RESTORE_ADOPTED);
	world_free(w);
}

/* A restore from a chain (as the store serves a delta through the
 * manager): the full image, PUT_END with MORE, the delta's RESTORE and
 * chunks, PUT_END. The program starts from the assembled image of the
 * delta's sequence; RESTORE_OK names that sequence. */
static void test_chain_restored(void **state)
{
	(void)state;
	struct world *w = world_new(FAKE_RESUMES);
	uint64_t versions[DATA / AREA_BLOCK];
	uint8_t *next = malloc(image_len), *delta = malloc(image_len);
	uint8_t digest[PROTO_HASH_SIZE];
	union proto_msg m;
	struct stream_chunks k = { 0 };

	/* the next checkpoint: block 5 changed, sequence SEQ + 1 */
	memcpy(next, image, image_len);
	for (size_t i = 0; i < DATA / AREA_BLOCK; i++)
		versions[i] = i == 5 ? SEQ + 1 : SEQ;
	size_t head = image_len - DATA;
	next[head + 5 * AREA_BLOCK] ^= 0xff;
	put_be64(next + 8, SEQ + 1);
	int64_t dlen = delta_build(next, image_len, versions, SEQ, delta, image_len);
	assert_true(dlen > 0 && dlen < 3 * (int64_t)AREA_BLOCK);
	crypto_generichash(digest, sizeof(digest), next, image_len, NULL, 0);

	push_stream(w);
	w->f.in[w->f.n_in - 1].flags = PROTO_F_MORE; /* another link follows */
	memset(&m, 0, sizeof(m));
	m.meta = w->meta;
	m.meta.sequence = SEQ + 1;
	m.meta.base = SEQ;
	m.meta.full_size = image_len;
	assert_int_equal(stream_chunks_of(&k, delta, (uint64_t)dlen, PROTO_MAX_CHUNK), 0);
	stream_chunks_meta(&k, &m.meta);
	assert_int_equal(state_hash(next, image_len, m.meta.state_hash), 0);
	push(w, PROTO_RESTORE, &m);
	memset(&m, 0, sizeof(m));
	m.chunk.offset = 0;
	m.chunk.len = (uint32_t)dlen;
	m.chunk.data = delta;
	memcpy(m.chunk.hash, k.id[0], PROTO_HASH_SIZE);
	push(w, PROTO_CHUNK, &m);
	push_end(w, 1);
	push_adopt(w, "ledger", INC + 1);
	assert_int_equal(run(w), RESTORE_ADOPTED);
	assert_int_equal(w->l.starts, 1);
	assert_memory_equal(w->l.image_hash, digest, PROTO_HASH_SIZE);
	assert_int_equal(w->f.out[0].type, PROTO_RESTORE_OK);
	assert_int_equal(w->f.out[0].msg.restore_ok.sequence, SEQ + 1);
	world_free(w);

	/* the same chain with a state hash the assembled image does not have:
	 * refused before anything starts */
	w = world_new(FAKE_RESUMES);
	push_stream(w);
	w->f.in[w->f.n_in - 1].flags = PROTO_F_MORE;
	memset(&m, 0, sizeof(m));
	m.meta = w->meta;
	m.meta.sequence = SEQ + 1;
	m.meta.base = SEQ;
	m.meta.full_size = image_len;
	stream_chunks_meta(&k, &m.meta);
	memcpy(m.meta.state_hash, image_state_hash, PROTO_HASH_SIZE); /* the base's */
	push(w, PROTO_RESTORE, &m);
	memset(&m, 0, sizeof(m));
	m.chunk.len = (uint32_t)dlen;
	m.chunk.data = delta;
	memcpy(m.chunk.hash, k.id[0], PROTO_HASH_SIZE);
	push(w, PROTO_CHUNK, &m);
	push_end(w, 1);
	assert_int_equal(run(w), RESTORE_FAILED);
	assert_refused_unstarted(w, RTCMS_ECORRUPT, "state hash");
	world_free(w);
	stream_chunks_clear(&k);
	free(next);
	free(delta);
}

static void test_delta_refused(void **state)
{
	(void)state;
	struct world *w = world_new(FAKE_RESUMES);
	w->meta.base = SEQ - 1;
	push_stream(w);
	assert_int_equal(run(w), RESTORE_FAILED);
	assert_refused_unstarted(w, RTCMS_EPROTO, "must start with a full image, not a delta");
	world_free(w);
}

static void test_too_big(void **state)
{
	(void)state;
	struct world *w = world_new(FAKE_RESUMES);
	w->meta.size = 4ull << 40;
	push_stream(w);
	assert_int_equal(run(w), RESTORE_FAILED);
	assert_refused_unstarted(w, RTCMS_ETOOBIG, "over this node's limit");
	world_free(w);
}

/* No manager answers the heartbeats: a program never starts without a
 * lease (its watchdog would have no end to enforce). */
static void test_no_lease(void **state)
{
	(void)state;
	struct world *w = world_new(FAKE_RESUMES);
	w->a->lease_until = 0;
	w->a->lease_wait_ms = 0;
	push_stream(w);
	assert_int_equal(run(w), RESTORE_FAILED);
	assert_refused_unstarted(w, RTCMS_ESTATE, "holds no lease");
	world_free(w);

	w = world_new(FAKE_RESUMES); /* or the lease lapsed: fenced */
	w->a->fenced = true;
	w->a->lease_wait_ms = 0;
	push_stream(w);
	assert_int_equal(run(w), RESTORE_FAILED);
	assert_refused_unstarted(w, RTCMS_ESTATE, "holds no lease");
	world_free(w);
}

/* A second RESTORE of a program that runs here (adopted) is refused; the
 * running instance is left alone. */
static void test_duplicate(void **state)
{
	(void)state;
	struct world *w = world_new(FAKE_RESUMES);
	push_stream(w);
	push_adopt(w, "ledger", INC + 1);
	assert_int_equal(run(w), RESTORE_ADOPTED);

	memset(&w->f.in, 0, sizeof(w->f.in));
	w->f.n_in = w->f.next = w->f.n_out = 0;
	w->meta.incarnation = INC + 1;
	push_stream(w);
	assert_int_equal(run(w), RESTORE_FAILED);
	assert_refused(w, RTCMS_EEXIST, "ledger already runs on this node");
	assert_int_equal(w->f.next, w->f.n_in);
	assert_int_equal(w->l.starts, 1);
	assert_int_equal(w->l.n_signals, 0);
	assert_int_equal(table_count(w->a), 1);
	assert_int_equal(w->a->procs->state, AP_RUNNING);
	world_free(w);
}

static void test_quota_full(void **state)
{
	(void)state;
	struct world *w = world_new(FAKE_RESUMES);
	w->a->cfg.quota = 0;
	push_stream(w);
	assert_int_equal(run(w), RESTORE_FAILED);
	assert_refused_unstarted(w, RTCMS_ENOSPC, "quota full");
	world_free(w);
}

/* The program cannot be started: the entry is released and freed. */
static void test_start_fails(void **state)
{
	(void)state;
	struct world *w = world_new(FAKE_CANNOT_START);
	push_stream(w);
	assert_int_equal(run(w), RESTORE_FAILED);
	assert_refused(w, RTCMS_EIO, "cannot start /nonexistent");
	assert_int_equal(w->l.starts, 1);
	assert_int_equal(w->l.releases, 1);
	assert_int_equal(table_count(w->a), 0);
	assert_int_equal(proc_seen_incarnation(w->a, "ledger"), 0);
	world_free(w);
}

/* It crashes while it refills its regions: ERROR, nothing to kill, the
 * connection goes on. */
static void test_crash_before_resume(void **state)
{
	(void)state;
	struct world *w = world_new(FAKE_CRASHES);
	push_stream(w);
	push_adopt(w, "ledger", INC + 1); /* never read */
	assert_int_equal(run(w), RESTORE_FAILED);
	assert_refused(w, RTCMS_ESTATE, "ledger exited during its restore");
	assert_int_equal(w->f.next, w->f.n_in - 1);
	assert_int_equal(w->l.starts, 1);
	assert_int_equal(w->l.n_signals, 0);
	assert_int_equal(table_count(w->a), 1);
	assert_int_equal(w->a->procs->state, AP_EXITED);
	assert_int_equal(w->a->procs->refs, 0);
	assert_int_equal(proc_seen_incarnation(w->a, "ledger"), INC); /* it ran */
	world_free(w);
}

static void test_no_resume_in_time(void **state)
{
	(void)state;
	struct world *w = world_new(FAKE_NEVER_RESUMES);
	push_stream(w);
	assert_int_equal(run(w), RESTORE_FAILED);
	assert_refused(w, RTCMS_ETIMEDOUT, "ledger did not resume within 50 ms");
	assert_int_equal(w->l.n_signals, 1);
	assert_int_equal(w->l.signals[0], SIGKILL);
	assert_true(w->a->procs->killed);
	assert_int_equal(w->a->procs->state, AP_RESTORING);
	world_free(w);
}

/* Resumed, RESTORE_OK sent, and then no ADOPT within adopt_timeout (the
 * manager died or never committed): the new instance is killed. */
static void test_no_adopt(void **state)
{
	(void)state;
	struct world *w = world_new(FAKE_RESUMES);
	push_stream(w);
	w->f.end_rc = RTCMS_ETIMEDOUT;
	assert_int_equal(run(w), RESTORE_UNADOPTED);
	assert_unadopted(w);
	assert_int_equal(w->f.n_out, 1);
	assert_int_equal(proc_seen_incarnation(w->a, "ledger"), 0);
	world_free(w);

	w = world_new(FAKE_RESUMES); /* the connection closed instead */
	push_stream(w);
	w->f.end_rc = RTCMS_ECONN;
	assert_int_equal(run(w), RESTORE_UNADOPTED);
	assert_unadopted(w);
	world_free(w);
}

/* An ADOPT of another process, an incarnation not newer than the restored
 * one, or another request: not a commit of this restore. */
static void test_wrong_adopt(void **state)
{
	(void)state;
	struct world *w = world_new(FAKE_RESUMES);
	push_stream(w);
	push_adopt(w, "counter", INC + 1);
	assert_int_equal(run(w), RESTORE_UNADOPTED);
	assert_unadopted(w);
	assert_int_equal(w->f.n_out, 1);
	world_free(w);

	w = world_new(FAKE_RESUMES);
	push_stream(w);
	push_adopt(w, "ledger", INC);
	assert_int_equal(run(w), RESTORE_UNADOPTED);
	assert_unadopted(w);
	assert_int_equal(w->f.n_out, 1);
	world_free(w);

	w = world_new(FAKE_RESUMES);
	push_stream(w);
	push(w, PROTO_INFO, NULL);
	assert_int_equal(run(w), RESTORE_UNADOPTED);
	assert_unadopted(w);
	world_free(w);
}

/* Before the ADOPT arrives, a newer incarnation of the program ran here
 * (another move committed meanwhile): the ADOPT is refused (EFENCED). */
static void seen_newer(struct fake_peer *f, size_t frame)
{
	if (f->in[frame].type != PROTO_ADOPT)
		return;
	uv_mutex_lock(&f->a->lock);
	proc_seen_record(f->a, "ledger", INC + 5);
	uv_mutex_unlock(&f->a->lock);
}

static void test_adopt_fenced(void **state)
{
	(void)state;
	struct world *w = world_new(FAKE_RESUMES);
	push_stream(w);
	push_adopt(w, "ledger", INC + 1);
	w->f.before = seen_newer;
	assert_int_equal(run(w), RESTORE_UNADOPTED);
	assert_unadopted(w);
	assert_int_equal(w->f.n_out, 2);
	assert_int_equal(w->f.out[1].type, PROTO_ERROR);
	assert_int_equal(w->f.out[1].code, RTCMS_EFENCED);
	assert_int_equal(w->f.out[1].request, 100 + w->f.n_in - 1); /* the ADOPT's */
	assert_int_equal(proc_seen_incarnation(w->a, "ledger"), INC + 5);
	world_free(w);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_adopted),
		cmocka_unit_test(test_chunk_hash_mismatch),
		cmocka_unit_test(test_image_hash_mismatch),
		cmocka_unit_test(test_state_hash_v1),
		cmocka_unit_test(test_state_hash_mismatch),
		cmocka_unit_test(test_chunk_count_mismatch),
		cmocka_unit_test(test_out_of_order),
		cmocka_unit_test(test_truncated_stream),
		cmocka_unit_test(test_not_a_chunk),
		cmocka_unit_test(test_incarnation_fenced),
		cmocka_unit_test(test_delta_refused),
		cmocka_unit_test(test_chain_restored),
		cmocka_unit_test(test_too_big),
		cmocka_unit_test(test_no_lease),
		cmocka_unit_test(test_duplicate),
		cmocka_unit_test(test_quota_full),
		cmocka_unit_test(test_start_fails),
		cmocka_unit_test(test_crash_before_resume),
		cmocka_unit_test(test_no_resume_in_time),
		cmocka_unit_test(test_no_adopt),
		cmocka_unit_test(test_wrong_adopt),
		cmocka_unit_test(test_adopt_fenced),
	};
	return cmocka_run_group_tests(tests, setup_image, teardown_image);
}
