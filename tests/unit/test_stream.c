/* test_stream.c - checkpoint streams: the chunker, the verifier (every
 * way a stream can be wrong), the receiver's account of where a stream
 * failed, the tee's "which side failed", and the area installer into a
 * real in-memory area. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "area/area.h"
#include "area/delta.h"
#include "area/image.h"
#include "rtcms_error.h"
#include "stream/chunk.h"
#include "stream/stream_net.h"

#define CAP (64 * 1024)
#define DATA (3 * (int)AREA_BLOCK + 777)
#define CHUNK 1000u

/* A real image (captured from an area) with its chunks and metadata. */
struct fixture {
	uint8_t *img;
	size_t len;
	struct stream_chunks k;
	struct proto_ckpt_meta meta;
};

static void *new_area(void)
{
	size_t len = area_size_for(CAP);
	void *m = calloc(1, len);
	assert_non_null(m);
	assert_int_equal(area_format(m, len), 0);
	return m;
}

static void make_image(struct fixture *f, uint64_t seq)
{
	void *a = new_area();
	struct area_slot *s = area_write_begin(a);
	uint8_t *d = area_slot_data(a, s);

	s->region_count = 2;
	s->regions[0] = (struct area_region){ 1, 0, 8, 0 };
	s->regions[1] = (struct area_region){ 2, 0, DATA - 64, 64 };
	for (int i = 0; i < DATA; i++)
		d[i] = (uint8_t)(i * 7 + seq);
	s->data_size = DATA;
	area_write_commit(a, s, seq);
	f->img = malloc(CAP * 2);
	assert_non_null(f->img);
	int64_t n = image_capture(a, f->img, CAP * 2);
	assert_true(n > 0);
	f->len = (size_t)n;
	free(a);
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	make_image(f, 9);
	assert_int_equal(stream_chunks_of(&f->k, f->img, f->len, CHUNK), 0);
	strcpy(f->meta.process, "p");
	f->meta.incarnation = 1;
	f->meta.sequence = 9;
	stream_chunks_meta(&f->k, &f->meta);
	assert_int_equal(state_hash(f->img, f->len, f->meta.state_hash), 0);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	stream_chunks_clear(&f->k);
	free(f->img);
	free(f);
	return 0;
}

static void chunk_at(const struct fixture *f, uint32_t i, struct proto_chunk *c)
{
	uint32_t len;

	memset(c, 0, sizeof(*c));
	stream_chunks_span(&f->k, i, &c->offset, &len);
	c->len = len;
	c->data = f->img + c->offset;
	memcpy(c->hash, f->k.id[i], STREAM_ID_SIZE);
}

/* Feed chunks [0, n) of f, then the end with end_count; returns the first
 * error (0 if all passed). */
static int feed_all(const struct fixture *f, const struct proto_ckpt_meta *meta,
		    unsigned flags, uint32_t n, uint32_t end_count, char *why)
{
	struct stream_verifier v;
	struct proto_chunk c = { 0 };
	int rc = stream_verifier_begin(&v, meta, 0, flags);

	for (uint32_t i = 0; rc == 0 && i < n; i++) {
		chunk_at(f, i, &c);
		rc = stream_verifier_chunk(&v, &c);
	}
	if (rc == 0)
		rc = stream_verifier_end(&v, end_count);
	if (why)
		strcpy(why, stream_verifier_why(&v));
	return rc;
}

static int read_mem(void *ctx, uint64_t off, uint8_t *buf, size_t len)
{
	const struct fixture *f = ctx;

	if (off > f->len || len > f->len - off)
		return RTCMS_EINVAL;
	memcpy(buf, f->img + off, len);
	return 0;
}

static int read_fail(void *ctx, uint64_t off, uint8_t *buf, size_t len)
{
	(void)ctx;
	(void)buf;
	(void)len;
	return off >= CHUNK ? RTCMS_EIO : 0;
}

static void test_chunker_reader(void **state)
{
	struct fixture *f = *state;
	struct stream_chunks k2 = { 0 };
	uint8_t *buf = malloc(CHUNK);

	assert_int_equal(stream_chunks_read(&k2, f->len, CHUNK, read_mem, f, buf), 0);
	assert_int_equal(k2.count, f->k.count);
	assert_memory_equal(k2.id, f->k.id, (size_t)k2.count * STREAM_ID_SIZE);
	assert_memory_equal(k2.image_hash, f->k.image_hash, PROTO_HASH_SIZE);
	/* the reader's error; then no chunks */
	assert_int_equal(stream_chunks_read(&k2, f->len, CHUNK, read_fail, f, buf), RTCMS_EIO);
	assert_int_equal(k2.count, 0);
	/* the last chunk is shorter; the spans tile the image */
	uint64_t off;
	uint32_t len;
	stream_chunks_span(&f->k, f->k.count - 1, &off, &len);
	assert_int_equal(off + len, f->len);
	assert_true(len <= CHUNK);
	stream_chunks_clear(&k2);
	stream_chunks_clear(NULL);
	free(buf);
}

static void test_chunker_bad_sizes(void **state)
{
	struct fixture *f = *state;
	struct stream_chunks k2 = { 0 };

	assert_int_equal(stream_chunks_of(&k2, f->img, f->len, 0), RTCMS_EINVAL);
	assert_int_equal(stream_chunks_of(&k2, f->img, f->len, PROTO_MAX_CHUNK + 1),
			 RTCMS_EINVAL);
	assert_int_equal(k2.count, 0);
	assert_int_equal(stream_chunks_of(&k2, f->img, 0, CHUNK), 0);
	assert_int_equal(k2.count, 0);
	stream_chunks_clear(&k2);
}

static void test_round_trip_with_state(void **state)
{
	struct fixture *f = *state;
	char why[PROTO_TEXT_MAX + 1];

	assert_int_equal(feed_all(f, &f->meta, STREAM_VERIFY_STATE, f->k.count, f->k.count,
				  why), 0);
	assert_string_equal(why, "the stream has ended");
}

static void test_feed_frames(void **state)
{
	struct fixture *f = *state;
	struct stream_verifier v;
	union proto_msg m;
	enum stream_step step;

	assert_int_equal(stream_verifier_begin(&v, &f->meta, 0, STREAM_VERIFY_STATE), 0);
	for (uint32_t i = 0; i < f->k.count; i++) {
		chunk_at(f, i, &m.chunk);
		assert_int_equal(stream_verifier_feed(&v, PROTO_CHUNK, &m, PROTO_GET_END, &step),
				 0);
		assert_int_equal(step, STREAM_MORE);
	}
	assert_int_equal(stream_verifier_count(&v), f->k.count);
	memset(&m, 0, sizeof(m));
	m.get_end.chunk_count = f->k.count;
	assert_int_equal(stream_verifier_feed(&v, PROTO_GET_END, &m, PROTO_GET_END, &step), 0);
	assert_int_equal(step, STREAM_DONE);
	/* nothing more belongs to an ended stream */
	assert_int_equal(stream_verifier_feed(&v, PROTO_GET_END, &m, PROTO_GET_END, &step),
			 RTCMS_ESTATE);
	assert_int_equal(step, STREAM_MORE);

	/* a frame that is neither CHUNK nor the end */
	assert_int_equal(stream_verifier_begin(&v, &f->meta, 0, 0), 0);
	assert_int_equal(stream_verifier_feed(&v, PROTO_PUT_END, &m, PROTO_GET_END, &step),
			 RTCMS_EPROTO);
	assert_int_equal(step, STREAM_MORE);
}

static void test_flipped_byte(void **state)
{
	struct fixture *f = *state;
	struct stream_verifier v;
	struct proto_chunk c = { 0 };
	char why[PROTO_TEXT_MAX + 1];

	f->img[CHUNK + 5] ^= 0x01; /* in chunk 1 */
	assert_int_equal(stream_verifier_begin(&v, &f->meta, 0, 0), 0);
	chunk_at(f, 0, &c);
	assert_int_equal(stream_verifier_chunk(&v, &c), 0);
	chunk_at(f, 1, &c);
	assert_int_equal(stream_verifier_chunk(&v, &c), RTCMS_ECORRUPT);
	strcpy(why, stream_verifier_why(&v));
	assert_non_null(strstr(why, "does not match its hash"));
	/* sticky: a good chunk after it is refused the same way */
	chunk_at(f, 2, &c);
	f->img[CHUNK + 5] ^= 0x01;
	assert_int_equal(stream_verifier_chunk(&v, &c), RTCMS_ECORRUPT);
	assert_int_equal(stream_verifier_end(&v, f->k.count), RTCMS_ECORRUPT);
	assert_int_equal(stream_verifier_count(&v), 1);
}

static void test_wrong_image_hash(void **state)
{
	struct fixture *f = *state;
	struct proto_ckpt_meta m = f->meta;
	char why[PROTO_TEXT_MAX + 1];

	m.hash[3] ^= 0x80;
	assert_int_equal(feed_all(f, &m, 0, f->k.count, f->k.count, why), RTCMS_ECORRUPT);
	assert_string_equal(why, "the image does not match its hash");
}

static void test_wrong_state_hash(void **state)
{
	struct fixture *f = *state;
	struct proto_ckpt_meta m = f->meta;
	char why[PROTO_TEXT_MAX + 1];

	m.state_hash[0] ^= 0x01;
	assert_int_equal(feed_all(f, &m, STREAM_VERIFY_STATE, f->k.count, f->k.count, why),
			 RTCMS_ECORRUPT);
	assert_string_equal(why, "the image does not match its state hash");
	/* checked only when asked, and not for a delta */
	assert_int_equal(feed_all(f, &m, 0, f->k.count, f->k.count, NULL), 0);
	m.base = 3;
	assert_int_equal(feed_all(f, &m, STREAM_VERIFY_STATE, f->k.count, f->k.count, NULL), 0);
	/* a zero state hash means "none given" */
	m = f->meta;
	memset(m.state_hash, 0, sizeof(m.state_hash));
	assert_int_equal(feed_all(f, &m, STREAM_VERIFY_STATE, f->k.count, f->k.count, NULL), 0);
}

static void test_truncated_stream(void **state)
{
	struct fixture *f = *state;
	char why[PROTO_TEXT_MAX + 1];

	/* an end after too few chunks, whatever count it claims */
	assert_int_equal(feed_all(f, &f->meta, 0, f->k.count - 1, f->k.count - 1, why),
			 RTCMS_EPROTO);
	assert_non_null(strstr(why, "ended after"));
	assert_int_equal(feed_all(f, &f->meta, 0, f->k.count - 1, f->k.count, NULL),
			 RTCMS_EPROTO);
	/* all chunks, but an end that says otherwise */
	assert_int_equal(feed_all(f, &f->meta, 0, f->k.count, f->k.count + 1, NULL),
			 RTCMS_EPROTO);
	/* a stream that announces fewer chunks than the data needs */
	struct proto_ckpt_meta m = f->meta;
	m.chunk_count = f->k.count - 1;
	assert_int_equal(feed_all(f, &m, 0, f->k.count, f->k.count, NULL), RTCMS_EPROTO);
}

static void test_oversize(void **state)
{
	struct fixture *f = *state;
	struct stream_verifier v;
	struct proto_chunk c = { 0 };
	struct proto_ckpt_meta m = f->meta;

	/* an image over the caller's cap is refused before any chunk */
	assert_int_equal(stream_verifier_begin(&v, &f->meta, f->len - 1, 0), RTCMS_ETOOBIG);
	assert_non_null(strstr(stream_verifier_why(&v), "over the limit"));
	assert_int_equal(stream_verifier_begin(&v, &f->meta, f->len, 0), 0);

	/* one chunk over PROTO_MAX_CHUNK, with a correct id */
	uint8_t *big = calloc(1, PROTO_MAX_CHUNK + 1);
	m.size = (uint64_t)PROTO_MAX_CHUNK + 1;
	m.chunk_count = 1;
	assert_int_equal(stream_verifier_begin(&v, &m, 0, 0), 0);
	c.offset = 0;
	c.data = big;
	c.len = PROTO_MAX_CHUNK + 1;
	stream_chunk_id(big, c.len, c.hash);
	assert_true(stream_chunk_intact(&c));
	assert_int_equal(stream_verifier_chunk(&v, &c), RTCMS_EPROTO);
	free(big);

	/* a chunk past the image's end, and an empty one */
	assert_int_equal(stream_verifier_begin(&v, &f->meta, 0, 0), 0);
	chunk_at(f, 0, &c);
	c.len = (uint32_t)f->len + 1;
	uint8_t *past = calloc(1, c.len);
	c.data = past;
	stream_chunk_id(past, c.len, c.hash);
	assert_int_equal(stream_verifier_chunk(&v, &c), RTCMS_EPROTO);
	free(past);
	assert_int_equal(stream_verifier_begin(&v, &f->meta, 0, 0), 0);
	chunk_at(f, 0, &c);
	c.len = 0;
	stream_chunk_id(c.data, 0, c.hash);
	assert_int_equal(stream_verifier_chunk(&v, &c), RTCMS_EPROTO);
}

static void test_reorder_and_duplicate(void **state)
{
	struct fixture *f = *state;
	struct stream_verifier v;
	struct proto_chunk c = { 0 };

	/* chunk 1 first */
	assert_int_equal(stream_verifier_begin(&v, &f->meta, 0, 0), 0);
	chunk_at(f, 1, &c);
	assert_int_equal(stream_verifier_chunk(&v, &c), RTCMS_EPROTO);
	assert_non_null(strstr(stream_verifier_why(&v), "out of order"));
	/* chunk 0 twice */
	assert_int_equal(stream_verifier_begin(&v, &f->meta, 0, 0), 0);
	chunk_at(f, 0, &c);
	assert_int_equal(stream_verifier_chunk(&v, &c), 0);
	assert_int_equal(stream_verifier_chunk(&v, &c), RTCMS_EPROTO);
	/* one chunk more than announced */
	assert_int_equal(stream_verifier_begin(&v, &f->meta, 0, 0), 0);
	for (uint32_t i = 0; i < f->k.count; i++) {
		chunk_at(f, i, &c);
		assert_int_equal(stream_verifier_chunk(&v, &c), 0);
	}
	assert_int_equal(stream_verifier_chunk(&v, &c), RTCMS_EPROTO);
	assert_non_null(strstr(stream_verifier_why(&v), "beyond"));
}

static void test_place_alone(void **state)
{
	struct fixture *f = *state;
	struct stream_verifier v;
	struct proto_chunk c = { 0 };

	/* place checks order and ids, not data: a hop that checks the data
	 * elsewhere still gets the image hash checked */
	assert_int_equal(stream_verifier_begin(&v, &f->meta, 0, 0), 0);
	for (uint32_t i = 0; i < f->k.count; i++) {
		chunk_at(f, i, &c);
		c.data = NULL;
		assert_int_equal(stream_verifier_place(&v, &c), 0);
	}
	assert_int_equal(stream_verifier_end(&v, f->k.count), 0);
	/* a wrong id changes the image hash */
	assert_int_equal(stream_verifier_begin(&v, &f->meta, 0, 0), 0);
	for (uint32_t i = 0; i < f->k.count; i++) {
		chunk_at(f, i, &c);
		if (i == 2)
			c.hash[0] ^= 1;
		assert_int_equal(stream_verifier_place(&v, &c), 0);
	}
	assert_int_equal(stream_verifier_end(&v, f->k.count), RTCMS_ECORRUPT);
}

/* ---- sinks ------------------------------------------------------------- */

/* A sink that records what it got and fails on request. */
struct rec {
	struct stream_sink sink;
	int begun, chunks, ended, aborted;
	int fail_begin, fail_end;
	int fail_at;                       /* fail the chunk with this index + 1 */
	int done_at;                       /* done after this many chunks (+1) */
};

static int rec_begin(struct stream_sink *s, const struct proto_ckpt_meta *meta)
{
	struct rec *r = (struct rec *)s;

	(void)meta;
	r->begun++;
	return r->fail_begin;
}

static int rec_chunk(struct stream_sink *s, const struct proto_chunk *chunk)
{
	struct rec *r = (struct rec *)s;

	(void)chunk;
	if (r->fail_at && r->chunks + 1 == r->fail_at)
		return RTCMS_EIO;
	r->chunks++;
	if (r->done_at && r->chunks + 1 == r->done_at)
		s->done = true;
	return 0;
}

static int rec_end(struct stream_sink *s, uint32_t count)
{
	struct rec *r = (struct rec *)s;

	(void)count;
	r->ended++;
	return r->fail_end;
}

static void rec_abort(struct stream_sink *s, int rc)
{
	(void)rc;
	((struct rec *)s)->aborted++;
}

static const struct stream_sink_ops rec_ops = { rec_begin, rec_chunk, rec_end, rec_abort, NULL };

static void rec_init(struct rec *r)
{
	memset(r, 0, sizeof(*r));
	r->sink.ops = &rec_ops;
}

/* Drive a sink as a receiver does: begin, chunks, end; abort on failure.
 * Returns the first failure. */
static int drive(const struct fixture *f, struct stream_sink *s)
{
	struct proto_chunk c = { 0 };
	int rc = stream_sink_begin(s, &f->meta);

	if (rc)
		return rc;
	for (uint32_t i = 0; i < f->k.count && !s->done; i++) {
		chunk_at(f, i, &c);
		if ((rc = stream_sink_chunk(s, &c)) != 0) {
			stream_sink_abort(s, rc);
			return rc;
		}
	}
	if (s->done)
		return 0;
	rc = stream_sink_end(s, f->k.count);
	return rc;
}

static void test_tee_both_ok(void **state)
{
	struct fixture *f = *state;
	struct rec a, b;
	struct stream_tee t;

	rec_init(&a);
	rec_init(&b);
	stream_tee_init(&t, &a.sink, &b.sink);
	assert_int_equal(drive(f, &t.sink), 0);
	assert_int_equal(stream_tee_failed(&t), STREAM_TEE_NONE);
	assert_int_equal(a.chunks, (int)f->k.count);
	assert_int_equal(b.chunks, (int)f->k.count);
	assert_int_equal(a.ended + b.ended, 2);
	assert_int_equal(a.aborted + b.aborted, 0);
}

static void test_tee_secondary_fails(void **state)
{
	struct fixture *f = *state;
	struct rec a, b;
	struct stream_tee t;

	rec_init(&a);
	rec_init(&b);
	b.fail_at = 3;
	stream_tee_init(&t, &a.sink, &b.sink);
	assert_int_equal(drive(f, &t.sink), 0);
	assert_int_equal(stream_tee_failed(&t), STREAM_TEE_SECONDARY);
	assert_int_equal(t.secondary_rc, RTCMS_EIO);
	assert_int_equal(t.primary_rc, 0);
	/* the primary got all of it; the secondary was undone once */
	assert_int_equal(a.chunks, (int)f->k.count);
	assert_int_equal(a.ended, 1);
	assert_int_equal(b.chunks, 2);
	assert_int_equal(b.aborted, 1);
	assert_int_equal(b.ended, 0);

	/* the secondary refusing at begin: never begun, never aborted */
	rec_init(&a);
	rec_init(&b);
	b.fail_begin = RTCMS_ENOSPC;
	stream_tee_init(&t, &a.sink, &b.sink);
	assert_int_equal(drive(f, &t.sink), 0);
	assert_int_equal(stream_tee_failed(&t), STREAM_TEE_SECONDARY);
	assert_int_equal(b.aborted + b.chunks + b.ended, 0);
	assert_int_equal(a.ended, 1);
}

static void test_tee_primary_fails(void **state)
{
	struct fixture *f = *state;
	struct rec a, b;
	struct stream_tee t;

	rec_init(&a);
	rec_init(&b);
	a.fail_at = 2;
	stream_tee_init(&t, &a.sink, &b.sink);
	assert_int_equal(drive(f, &t.sink), RTCMS_EIO);
	assert_int_equal(stream_tee_failed(&t), STREAM_TEE_PRIMARY);
	assert_int_equal(a.aborted, 1);
	assert_int_equal(b.aborted, 1);
	assert_int_equal(a.ended + b.ended, 0);

	/* the primary failing at its end: the secondary is undone, not ended */
	rec_init(&a);
	rec_init(&b);
	a.fail_end = RTCMS_EIO;
	stream_tee_init(&t, &a.sink, &b.sink);
	assert_int_equal(drive(f, &t.sink), RTCMS_EIO);
	assert_int_equal(stream_tee_failed(&t), STREAM_TEE_PRIMARY);
	assert_int_equal(b.ended, 0);
	assert_int_equal(b.aborted, 1);

	/* both fail: the primary is the one that matters */
	rec_init(&a);
	rec_init(&b);
	b.fail_at = 1;
	a.fail_at = 4;
	stream_tee_init(&t, &a.sink, &b.sink);
	assert_int_equal(drive(f, &t.sink), RTCMS_EIO);
	assert_int_equal(stream_tee_failed(&t), STREAM_TEE_PRIMARY);
	assert_int_equal(b.aborted, 1);
}

static void test_tee_done_sides(void **state)
{
	struct fixture *f = *state;
	struct rec a, b;
	struct stream_tee t;

	/* the primary needs no more (already stored): the secondary goes on */
	rec_init(&a);
	rec_init(&b);
	a.done_at = 2;
	stream_tee_init(&t, &a.sink, &b.sink);
	assert_int_equal(drive(f, &t.sink), 0);
	assert_int_equal(a.chunks, 1);
	assert_int_equal(a.ended + a.aborted, 0);
	assert_int_equal(b.chunks, (int)f->k.count);
	assert_int_equal(b.ended, 1);
	/* both done: the tee is */
	rec_init(&a);
	rec_init(&b);
	a.done_at = 2;
	b.done_at = 3;
	stream_tee_init(&t, &a.sink, &b.sink);
	assert_int_equal(drive(f, &t.sink), 0);
	assert_true(t.sink.done);
	assert_int_equal(b.chunks, 2);
	assert_int_equal(stream_tee_failed(&t), STREAM_TEE_NONE);
}

/* The area a test installs into. */
struct target {
	void *mem;
	int calls;
};

static int give_area(void *ctx, uint64_t size, void **mem)
{
	struct target *t = ctx;

	(void)size;
	t->calls++;
	*mem = t->mem;
	return 0;
}

static void test_area_installer(void **state)
{
	struct fixture *f = *state;
	struct target t = { new_area(), 0 };
	struct stream_area_sink s;
	struct stream_verifier v;
	struct proto_chunk c = { 0 };

	stream_area_sink_init(&s, CAP * 2, give_area, &t);
	assert_int_equal(stream_verifier_begin(&v, &f->meta, 0, STREAM_VERIFY_STATE), 0);
	assert_int_equal(stream_sink_begin(&s.sink, &f->meta), 0);
	for (uint32_t i = 0; i < f->k.count; i++) {
		chunk_at(f, i, &c);
		assert_int_equal(stream_verifier_chunk(&v, &c), 0);
		assert_int_equal(stream_sink_chunk(&s.sink, &c), 0);
	}
	assert_int_equal(stream_verifier_end(&v, f->k.count), 0);
	assert_int_equal(stream_sink_end(&s.sink, f->k.count), 0);
	assert_int_equal(t.calls, 1);
	assert_ptr_equal(s.mem, t.mem);
	/* the area holds it as its committed checkpoint, byte for byte */
	assert_int_equal(area_committed_sequence(t.mem), 9);
	uint8_t *back = malloc(CAP * 2);
	assert_int_equal(image_capture(t.mem, back, CAP * 2), (int64_t)f->len);
	assert_memory_equal(back, f->img, f->len);
	free(back);
	stream_area_sink_clear(&s);
	free(t.mem);
}

/* A stream of the fixture's image sealed under a data key, read by a
 * receiver that opens each chunk: sealed[i] holds chunk i's sealed bytes. */
struct sealed_script {
	const struct fixture *f;
	struct stream_chunks k;            /* the keyed ids */
	uint8_t *sealed;                   /* CHUNK + tag bytes per chunk */
	uint8_t sums[64][STREAM_SUM_SIZE];
	uint32_t next;
};

static int sealed_recv(void *ctx, struct proto_header *hdr, union proto_msg *msg)
{
	struct sealed_script *s = ctx;

	memset(hdr, 0, sizeof(*hdr));
	memset(msg, 0, sizeof(*msg));
	if (s->next > s->k.count)
		return RTCMS_ECONN;
	if (s->next == s->k.count) {
		hdr->type = PROTO_PUT_END;
		msg->put_end.chunk_count = s->k.count;
	} else {
		struct proto_chunk *c = &msg->chunk;
		uint32_t len;
		hdr->type = PROTO_CHUNK;
		hdr->flags = PROTO_F_RAW;
		stream_chunks_span(&s->k, s->next, &c->offset, &len);
		c->len = len;
		c->key_id = s->k.key->id;
		c->data = s->sealed + (size_t)s->next * (CHUNK + STREAM_TAG_SIZE);
		memcpy(c->hash, s->k.id[s->next], STREAM_ID_SIZE);
		memcpy(c->sum, s->sums[s->next], STREAM_SUM_SIZE);
	}
	s->next++;
	return 0;
}

/* Sealed chunks opened straight into the area's slot (struct stream_in's
 * place): the image installed is the one sent, byte for byte; the place
 * is refused for the head and for anything out of the slot's bounds. */
static void test_area_opened_in_place(void **state)
{
	struct fixture *f = *state;
	struct target t = { new_area(), 0 };
	struct stream_area_sink sink;
	struct datakey_ring ring;
	struct sealed_script s = { .f = f };
	struct proto_ckpt_meta meta = f->meta;
	struct stream_result res;
	char err[256];
	static const char keys[] = "rtcms-data-key-v1 4 aes-256-gcm "
		"000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f\n";

	assert_int_equal(datakey_parse(keys, sizeof(keys) - 1, &ring, err, sizeof(err)), 0);
	s.k.key = datakey_active(&ring);
	assert_int_equal(stream_chunks_of(&s.k, f->img, f->len, CHUNK), 0);
	assert_true(s.k.count <= 64);
	s.sealed = malloc((size_t)s.k.count * (CHUNK + STREAM_TAG_SIZE));
	for (uint32_t i = 0; i < s.k.count; i++) {
		uint64_t off;
		uint32_t len;
		stream_chunks_span(&s.k, i, &off, &len);
		assert_int_equal(stream_chunk_seal_as(s.k.key, s.k.id[i], f->img + off, len,
						      s.sealed + (size_t)i * (CHUNK + STREAM_TAG_SIZE),
						      s.sums[i]), 0);
	}
	stream_chunks_meta(&s.k, &meta);

	stream_area_sink_init(&sink, CAP * 2, give_area, &t);
	struct stream_in in = { .port = { sealed_recv, NULL, NULL, &s, NULL },
				.end_type = PROTO_PUT_END, .keys = &ring,
				.place = stream_area_sink_place, .place_ctx = &sink };
	assert_null(stream_area_sink_place(&sink, 2000, 100)); /* not begun */
	assert_int_equal(stream_recv(&in, &meta, &sink.sink, &res), 0);
	assert_int_equal(res.outcome, STREAM_ENDED);
	assert_int_equal(area_committed_sequence(t.mem), 9);
	uint8_t *back = malloc(CAP * 2);
	assert_int_equal(image_capture(t.mem, back, CAP * 2), (int64_t)f->len);
	assert_memory_equal(back, f->img, f->len);
	free(back);

	/* a new stream's first link: the head and out-of-bounds are refused */
	assert_int_equal(stream_sink_begin(&sink.sink, &meta), 0);
	assert_null(stream_area_sink_place(&sink, 0, CHUNK)); /* the head, unknown yet */
	struct proto_chunk c = { 0 };
	c.data = f->img;
	c.len = CHUNK;
	c.key_id = 4;
	c.opened = true;
	assert_int_equal(stream_sink_chunk(&sink.sink, &c), 0);
	assert_null(stream_area_sink_place(&sink, 10, 100));           /* in the head */
	assert_non_null(stream_area_sink_place(&sink, CHUNK, CHUNK));
	assert_null(stream_area_sink_place(&sink, f->len - 10, 11));   /* past the image */
	assert_null(stream_area_sink_place(&sink, UINT64_MAX - 5, 10));
	stream_sink_abort(&sink.sink, RTCMS_EIO);
	assert_int_equal(area_committed_sequence(t.mem), 9); /* the installed one stays */

	stream_area_sink_clear(&sink);
	stream_chunks_clear(&s.k);
	free(s.sealed);
	datakey_ring_wipe(&ring);
	free(t.mem);
}

static void test_area_installer_refuses(void **state)
{
	struct fixture *f = *state;
	struct target t = { new_area(), 0 };
	struct stream_area_sink s;
	struct proto_ckpt_meta m = f->meta;

	/* a delta, and an image over the cap */
	stream_area_sink_init(&s, CAP * 2, give_area, &t);
	m.base = 4;
	assert_int_equal(stream_sink_begin(&s.sink, &m), RTCMS_EPROTO);
	stream_area_sink_init(&s, f->len - 1, give_area, &t);
	assert_int_equal(stream_sink_begin(&s.sink, &f->meta), RTCMS_ETOOBIG);

	/* bytes that verify but are no image: the install refuses them and
	 * the area keeps what it had */
	struct fixture g = { 0 };
	g.len = 3000;
	g.img = calloc(1, g.len);
	assert_int_equal(stream_chunks_of(&g.k, g.img, g.len, CHUNK), 0);
	stream_chunks_meta(&g.k, &g.meta);
	stream_area_sink_init(&s, CAP * 2, give_area, &t);
	assert_int_equal(drive(&g, &s.sink), RTCMS_EPROTO);
	assert_int_equal(area_committed_sequence(t.mem), 0);
	stream_area_sink_clear(&s);

	/* aborted mid-stream: nothing installed, the image freed */
	stream_area_sink_init(&s, CAP * 2, give_area, &t);
	assert_int_equal(stream_sink_begin(&s.sink, &f->meta), 0);
	stream_sink_abort(&s.sink, RTCMS_EIO);
	assert_null(s.image);
	assert_int_equal(area_committed_sequence(t.mem), 0);
	assert_int_equal(t.calls, 2);
	stream_chunks_clear(&g.k);
	free(g.img);
	free(t.mem);
}

static void test_area_installer_holds(void **state)
{
	struct fixture *f = *state;
	struct stream_area_sink s;

	/* without an area it only holds the verified image */
	stream_area_sink_init(&s, CAP * 2, NULL, NULL);
	assert_int_equal(drive(f, &s.sink), 0);
	assert_int_equal(s.len, f->len);
	assert_memory_equal(s.image, f->img, f->len);
	stream_area_sink_clear(&s);
	stream_area_sink_clear(NULL);
}

static void test_meta_keep(void **state)
{
	struct fixture *f = *state;
	struct proto_ckpt_meta src = f->meta, dst;
	uint8_t spec[5] = "abcd", *own = NULL;

	src.spec = spec;
	src.spec_len = 4;
	assert_int_equal(stream_meta_keep(&dst, &own, &src), 0);
	spec[0] = 'z';
	assert_ptr_equal(dst.spec, own);
	assert_memory_equal(dst.spec, "abcd", 4);
	stream_meta_drop(&dst, &own);
	assert_null(own);
	assert_int_equal(dst.spec_len, 0);
}

/* ---- receiver: where a stream failed ---------------------------------- */

/* A port that plays f's chunks (chunk bad flipped, if not UINT32_MAX) and
 * a PUT_END with end_count; then the connection closes. */
struct script {
	const struct fixture *f;
	uint32_t next, bad, end_count;
	uint8_t copy[CHUNK];
};

static int script_recv(void *ctx, struct proto_header *hdr, union proto_msg *msg)
{
	struct script *s = ctx;

	memset(hdr, 0, sizeof(*hdr));
	memset(msg, 0, sizeof(*msg));
	if (s->next > s->f->k.count)
		return RTCMS_ECONN;
	if (s->next == s->f->k.count) {
		hdr->type = PROTO_PUT_END;
		msg->put_end.chunk_count = s->end_count;
	} else {
		hdr->type = PROTO_CHUNK;
		chunk_at(s->f, s->next, &msg->chunk);
		if (s->next == s->bad) {
			memcpy(s->copy, msg->chunk.data, msg->chunk.len);
			s->copy[0] ^= 1;
			msg->chunk.data = s->copy;
		}
	}
	s->next++;
	return 0;
}

static int fail_end(struct stream_sink *s, uint32_t count)
{
	(void)s;
	(void)count;
	return RTCMS_EIO;
}

static int recv_script(const struct fixture *f, uint32_t bad, uint32_t end_count,
		       const struct stream_sink_ops *ops, struct stream_result *res)
{
	struct script s = { .f = f, .bad = bad, .end_count = end_count };
	struct stream_in in = { { script_recv, NULL, NULL, &s, NULL }, PROTO_PUT_END, 0, 0, true, NULL, NULL, NULL };
	struct stream_sink sink = { ops, false };
	int rc = stream_recv(&in, &f->meta, &sink, res);

	assert_int_equal(s.next, f->k.count + 1); /* read to its end, no further */
	return rc;
}

static void test_recv_where(void **state)
{
	static const struct stream_sink_ops take = { NULL, NULL, NULL, NULL, NULL };
	static const struct stream_sink_ops refuse_end = { NULL, NULL, fail_end, NULL, NULL };
	struct fixture *f = *state;
	struct stream_result res;

	assert_int_equal(recv_script(f, UINT32_MAX, f->k.count, &take, &res), 0);
	assert_int_equal(res.outcome, STREAM_ENDED);
	assert_int_equal(res.chunks, f->k.count);
	/* a chunk that does not match its id: drained to the end */
	assert_int_equal(recv_script(f, 1, f->k.count, &take, &res), RTCMS_ECORRUPT);
	assert_int_equal(res.fault, STREAM_FAULT_VERIFY);
	assert_int_equal(res.chunks, 1);
	assert_false(res.at_end);
	/* an end that says another count: the end frame's check */
	assert_int_equal(recv_script(f, UINT32_MAX, f->k.count - 1, &take, &res), RTCMS_EPROTO);
	assert_int_equal(res.fault, STREAM_FAULT_VERIFY);
	assert_int_equal(res.chunks, f->k.count);
	assert_true(res.at_end);
	assert_non_null(strstr(res.why, "ended after"));
	/* the sink's end */
	assert_int_equal(recv_script(f, UINT32_MAX, f->k.count, &refuse_end, &res), RTCMS_EIO);
	assert_int_equal(res.fault, STREAM_FAULT_SINK);
	assert_true(res.at_end);
}

/* ---- chains: a delta served as its root and deltas ---------------------- */

#define CBLOCKS 4

/* The full image of sequence seq of a one-region program whose block b
 * last changed at version[b]. */
static size_t chain_full(uint64_t seq, const uint64_t *version, uint8_t **out)
{
	void *a = new_area();
	struct area_slot *s = area_write_begin(a);
	uint8_t *d = area_slot_data(a, s);

	s->region_count = 1;
	s->regions[0] = (struct area_region){ 1, 0, CBLOCKS * AREA_BLOCK, 0 };
	for (size_t i = 0; i < CBLOCKS * AREA_BLOCK; i++)
		d[i] = (uint8_t)(i * 13 + version[i / AREA_BLOCK] * 101);
	s->data_size = CBLOCKS * AREA_BLOCK;
	area_write_commit(a, s, seq);
	*out = malloc(CAP * 2);
	int64_t n = image_capture(a, *out, CAP * 2);
	assert_true(n > 0);
	free(a);
	return (size_t)n;
}

/* One link: its bytes, chunks and metadata. */
struct clink {
	uint8_t *bytes;
	size_t len;
	struct stream_chunks k;
	struct proto_ckpt_meta meta;
};

struct chain3 {
	struct clink l[3];       /* full 9, delta 10 (base 9), delta 11 (base 10) */
	uint8_t *want;           /* the full image of 11 */
	size_t want_len;
};

static void clink_cut(struct clink *l, uint64_t seq, uint64_t base, size_t full_size)
{
	assert_int_equal(stream_chunks_of(&l->k, l->bytes, l->len, CHUNK), 0);
	memset(&l->meta, 0, sizeof(l->meta));
	strcpy(l->meta.process, "p");
	l->meta.incarnation = 1;
	l->meta.sequence = seq;
	l->meta.base = base;
	l->meta.full_size = full_size;
	stream_chunks_meta(&l->k, &l->meta);
}

static void chain3_make(struct chain3 *c)
{
	uint64_t v[CBLOCKS] = { 3, 5, 9, 9 };
	uint8_t *full10;

	memset(c, 0, sizeof(*c));
	c->l[0].len = chain_full(9, v, &c->l[0].bytes);
	clink_cut(&c->l[0], 9, 0, c->l[0].len);
	assert_int_equal(state_hash(c->l[0].bytes, c->l[0].len, c->l[0].meta.state_hash), 0);
	v[1] = 10;
	size_t flen = chain_full(10, v, &full10);
	c->l[1].bytes = malloc(CAP);
	int64_t n = delta_build(full10, flen, v, 9, c->l[1].bytes, CAP);
	assert_true(n > 0);
	c->l[1].len = (size_t)n;
	clink_cut(&c->l[1], 10, 9, flen);
	v[3] = 11;
	c->want_len = chain_full(11, v, &c->want);
	c->l[2].bytes = malloc(CAP);
	n = delta_build(c->want, c->want_len, v, 10, c->l[2].bytes, CAP);
	assert_true(n > 0);
	c->l[2].len = (size_t)n;
	clink_cut(&c->l[2], 11, 10, c->want_len);
	assert_int_equal(state_hash(c->want, c->want_len, c->l[2].meta.state_hash), 0);
	free(full10);
}

static void chain3_free(struct chain3 *c)
{
	for (int i = 0; i < 3; i++) {
		stream_chunks_clear(&c->l[i].k);
		free(c->l[i].bytes);
	}
	free(c->want);
}

/* A connection that plays links [0, n) of c as a RESTORE chain would
 * come: chunks, PUT_END (MORE but after the last), the next RESTORE. */
struct chain_script {
	const struct chain3 *c;
	const struct clink *links[3];
	int n, link;
	uint32_t chunk;          /* next chunk of the link; count: its end */
	bool meta_next;          /* the next frame is the link's RESTORE */
	int frames;
};

static int chain_recv(void *ctx, struct proto_header *hdr, union proto_msg *msg)
{
	struct chain_script *s = ctx;
	const struct clink *l;

	memset(hdr, 0, sizeof(*hdr));
	memset(msg, 0, sizeof(*msg));
	if (s->link >= s->n)
		return RTCMS_ECONN;
	l = s->links[s->link];
	s->frames++;
	if (s->meta_next) {
		s->meta_next = false;
		hdr->type = PROTO_RESTORE;
		msg->meta = l->meta;
		return 0;
	}
	if (s->chunk < l->k.count) {
		uint32_t len;
		hdr->type = PROTO_CHUNK;
		stream_chunks_span(&l->k, s->chunk, &msg->chunk.offset, &len);
		msg->chunk.len = len;
		msg->chunk.data = l->bytes + msg->chunk.offset;
		memcpy(msg->chunk.hash, l->k.id[s->chunk], STREAM_ID_SIZE);
		s->chunk++;
		return 0;
	}
	hdr->type = PROTO_PUT_END;
	msg->put_end.chunk_count = l->k.count;
	s->chunk = 0;
	if (++s->link < s->n) {
		hdr->flags = PROTO_F_MORE;
		s->meta_next = true;
	}
	return 0;
}

static int recv_chain3(const struct clink *l0, const struct clink *l1, const struct clink *l2,
		       struct stream_sink *sink, struct stream_result *res,
		       struct proto_ckpt_meta *meta, int *frames_left)
{
	struct chain_script s = { .links = { l0, l1, l2 }, .n = l2 ? 3 : l1 ? 2 : 1 };
	struct stream_in in = { { chain_recv, NULL, NULL, &s, NULL }, PROTO_PUT_END, 0,
				STREAM_VERIFY_STATE, true, NULL, NULL, NULL };
	int total = 0;

	for (int i = 0; i < s.n; i++)
		total += (int)s.links[i]->k.count + 1 + (i > 0);
	*meta = l0->meta;
	int rc = stream_recv_chain(&in, PROTO_RESTORE, meta, sink, res);
	*frames_left = total - s.frames;
	return rc;
}

static void test_chain_assembled(void **state)
{
	(void)state;
	struct chain3 c;
	struct stream_area_sink img;
	struct stream_result res;
	struct proto_ckpt_meta m;
	int left;

	chain3_make(&c);
	stream_area_sink_init(&img, CAP * 2, NULL, NULL);
	assert_int_equal(recv_chain3(&c.l[0], &c.l[1], &c.l[2], &img.sink, &res, &m, &left), 0);
	assert_int_equal(left, 0);
	assert_int_equal(res.outcome, STREAM_ENDED);
	assert_int_equal(res.chunks, c.l[0].k.count + c.l[1].k.count + c.l[2].k.count);
	assert_int_equal(m.sequence, 11);
	assert_int_equal(m.base, 10);
	assert_int_equal(img.len, c.want_len);
	assert_memory_equal(img.image, c.want, c.want_len);
	/* a full image alone still works, and the sink is reusable */
	assert_int_equal(recv_chain3(&c.l[0], NULL, NULL, &img.sink, &res, &m, &left), 0);
	assert_int_equal(img.len, c.l[0].len);
	assert_memory_equal(img.image, c.l[0].bytes, c.l[0].len);
	stream_area_sink_clear(&img);
	chain3_free(&c);
}

/* Whether area mem holds image (len bytes) as its committed checkpoint. */
static void assert_area_holds(void *mem, const uint8_t *image, size_t len)
{
	uint8_t *back = malloc(CAP * 2);
	assert_non_null(back);
	assert_int_equal(image_capture(mem, back, CAP * 2), (int64_t)len);
	assert_memory_equal(back, image, len);
	free(back);
}

/* A chain received into an area by the tests below. */
struct area_run {
	struct chain3 c;
	struct target t;
	struct stream_area_sink img;
	struct stream_result res;
	struct proto_ckpt_meta m;
	int left;
};

static void area_run_start(struct area_run *r)
{
	chain3_make(&r->c);
	r->t = (struct target){ new_area(), 0 };
	stream_area_sink_init(&r->img, CAP * 2, give_area, &r->t);
}

/* l0, l1, l2 (NULL: fewer links) into r's area. */
static int area_run(struct area_run *r, const struct clink *l0, const struct clink *l1,
		    const struct clink *l2)
{
	return recv_chain3(l0, l1, l2, &r->img.sink, &r->res, &r->m, &r->left);
}

/* Into an area, in place: a chain's root lands in the slot, its deltas
 * are applied there, and the result is committed; the sink holds no copy
 * of the image. */
static void test_chain_in_area(void **state)
{
	(void)state;
	struct area_run r;

	area_run_start(&r);
	assert_int_equal(area_run(&r, &r.c.l[0], &r.c.l[1], &r.c.l[2]), 0);
	assert_int_equal(r.t.calls, 1);
	assert_null(r.img.image);
	assert_int_equal(r.img.len, r.c.want_len);
	assert_int_equal(area_committed_sequence(r.t.mem), 11);
	assert_area_holds(r.t.mem, r.c.want, r.c.want_len);
	/* the next checkpoint of the restored program is a full one */
	struct area_snap snap;
	uint64_t ver[CAP / AREA_BLOCK];
	assert_int_equal(area_snap_take(r.t.mem, &snap, ver, CAP / AREA_BLOCK), 0);
	for (uint32_t b = 0; b < CBLOCKS; b++)
		assert_int_equal(ver[b], 11);
	stream_area_sink_clear(&r.img);
	free(r.t.mem);

	/* a full image alone */
	r.t.mem = new_area();
	assert_int_equal(area_run(&r, &r.c.l[0], NULL, NULL), 0);
	assert_int_equal(area_committed_sequence(r.t.mem), 9);
	assert_area_holds(r.t.mem, r.c.l[0].bytes, r.c.l[0].len);
	stream_area_sink_clear(&r.img);
	free(r.t.mem);
	chain3_free(&r.c);
}

/* Into an area, a stream that fails leaves nothing committed there: a
 * chain whose result lacks its state hash, a chunk that does not match
 * its id, an image larger than the area. */
static void test_area_in_place_refused(void **state)
{
	(void)state;
	struct area_run r;

	area_run_start(&r);
	struct clink liar = r.c.l[2];
	liar.meta.state_hash[0] ^= 1;
	assert_int_equal(area_run(&r, &r.c.l[0], &r.c.l[1], &liar), RTCMS_ECORRUPT);
	assert_non_null(strstr(r.img.why, "state hash"));
	assert_int_equal(r.left, 0);
	assert_int_equal(area_committed_sequence(r.t.mem), 0);
	stream_area_sink_clear(&r.img);

	/* a flipped byte in the root: the verifier fails it, the sink aborts */
	struct clink bad = r.c.l[0];
	bad.bytes = malloc(bad.len);
	memcpy(bad.bytes, r.c.l[0].bytes, bad.len);
	bad.bytes[bad.len - 5] ^= 1;
	assert_int_equal(area_run(&r, &bad, &r.c.l[1], &r.c.l[2]), RTCMS_ECORRUPT);
	assert_int_equal(r.res.fault, STREAM_FAULT_VERIFY);
	assert_int_equal(area_committed_sequence(r.t.mem), 0);
	free(bad.bytes);
	stream_area_sink_clear(&r.img);
	free(r.t.mem);

	/* an area of one block: four blocks of state are too many */
	size_t small = area_size_for(AREA_BLOCK);
	r.t.mem = calloc(1, small);
	assert_int_equal(area_format(r.t.mem, small), 0);
	assert_int_equal(area_run(&r, &r.c.l[0], NULL, NULL), RTCMS_ETOOBIG);
	assert_non_null(strstr(r.img.why, "checkpoint area"));
	assert_int_equal(area_committed_sequence(r.t.mem), 0);
	stream_area_sink_clear(&r.img);
	free(r.t.mem);
	chain3_free(&r.c);
}

/* Into an area, chunks shorter than the image's header: the head is
 * gathered across them, the data placed after it. */
static void test_area_small_chunks(void **state)
{
	struct fixture *f = *state;
	struct fixture g = *f;
	struct target t = { new_area(), 0 };
	struct stream_area_sink s;

	memset(&g.k, 0, sizeof(g.k));
	assert_int_equal(stream_chunks_of(&g.k, g.img, g.len, 7), 0);
	stream_chunks_meta(&g.k, &g.meta);
	g.meta.sequence = f->meta.sequence;
	stream_area_sink_init(&s, CAP * 2, give_area, &t);
	assert_int_equal(drive(&g, &s.sink), 0);
	assert_int_equal(area_committed_sequence(t.mem), 9);
	assert_area_holds(t.mem, f->img, f->len);
	stream_area_sink_clear(&s);
	stream_chunks_clear(&g.k);
	free(t.mem);
}

static void test_chain_refused(void **state)
{
	(void)state;
	static const struct stream_sink_ops one_image = { NULL, NULL, NULL, NULL, NULL };
	struct stream_sink plain = { &one_image, false };
	struct chain3 c;
	struct stream_area_sink img;
	struct stream_result res;
	struct proto_ckpt_meta m;
	int left;

	chain3_make(&c);
	stream_area_sink_init(&img, CAP * 2, NULL, NULL);
	/* a link that skips one: refused where it joins, the rest drained */
	assert_int_equal(recv_chain3(&c.l[0], &c.l[2], NULL, &img.sink, &res, &m, &left),
			 RTCMS_EPROTO);
	assert_int_equal(res.fault, STREAM_FAULT_VERIFY);
	assert_non_null(strstr(res.why, "cannot follow"));
	assert_null(img.image);
	/* starting with a delta */
	assert_int_equal(recv_chain3(&c.l[1], &c.l[2], NULL, &img.sink, &res, &m, &left),
			 RTCMS_EPROTO);
	assert_int_equal(res.fault, STREAM_FAULT_SINK);
	assert_non_null(strstr(img.why, "must start with a full image"));
	assert_int_equal(left, 0); /* drained to the last end */
	/* a link of another process */
	struct clink other = c.l[1];
	strcpy(other.meta.process, "q");
	assert_int_equal(recv_chain3(&c.l[0], &other, NULL, &img.sink, &res, &m, &left),
			 RTCMS_EPROTO);
	assert_non_null(strstr(res.why, "follows"));
	/* the assembled state is not the one the last link names */
	struct clink liar = c.l[2];
	liar.meta.state_hash[0] ^= 1;
	assert_int_equal(recv_chain3(&c.l[0], &c.l[1], &liar, &img.sink, &res, &m, &left),
			 RTCMS_ECORRUPT);
	assert_int_equal(res.fault, STREAM_FAULT_SINK);
	assert_non_null(strstr(img.why, "state hash"));
	/* a delta that is not the one its metadata says (its full size) */
	struct clink wrong = c.l[1];
	wrong.meta.full_size += AREA_BLOCK;
	assert_int_equal(recv_chain3(&c.l[0], &wrong, &c.l[2], &img.sink, &res, &m, &left),
			 RTCMS_ECORRUPT);
	assert_non_null(strstr(img.why, "does not apply"));
	assert_int_equal(left, 0);
	/* a sink that takes one image: a chain is refused, read to its end */
	assert_int_equal(recv_chain3(&c.l[0], &c.l[1], &c.l[2], &plain, &res, &m, &left),
			 RTCMS_EPROTO);
	assert_int_equal(res.fault, STREAM_FAULT_SINK);
	assert_non_null(strstr(res.why, "where one was expected"));
	assert_int_equal(left, 0);
	stream_area_sink_clear(&img);
	chain3_free(&c);
}

/* The network relay forwards a chain as it came: each link's RESTORE with
 * its first chunk, PUT_END with MORE between links, none after the last. */
struct capture {
	uint8_t types[64];
	uint16_t flags[64];
	uint64_t seqs[64];
	int n;
};

static int capture_send(void *ctx, uint8_t type, uint16_t flags, uint32_t request,
			const union proto_msg *msg)
{
	struct capture *c = ctx;
	(void)request;
	assert_true(c->n < 64);
	c->types[c->n] = type;
	c->flags[c->n] = flags;
	c->seqs[c->n] = type == PROTO_RESTORE ? msg->meta.sequence : 0;
	c->n++;
	return 0;
}

static void test_chain_relayed(void **state)
{
	(void)state;
	struct chain3 c;
	struct capture cap = { 0 };
	struct stream_relay relay;
	const struct stream_out out = { .port = { NULL, capture_send, NULL, &cap } };
	struct stream_result res;
	struct proto_ckpt_meta m;
	int left, at = 0;

	chain3_make(&c);
	stream_relay_init(&relay, &out, PROTO_RESTORE, PROTO_PUT_END);
	assert_int_equal(recv_chain3(&c.l[0], &c.l[1], &c.l[2], &relay.sink, &res, &m, &left), 0);
	for (int i = 0; i < 3; i++) {
		assert_int_equal(cap.types[at], PROTO_RESTORE);
		assert_int_equal(cap.seqs[at], c.l[i].meta.sequence);
		at++;
		for (uint32_t k = 0; k < c.l[i].k.count; k++)
			assert_int_equal(cap.types[at++], PROTO_CHUNK);
		assert_int_equal(cap.types[at], PROTO_PUT_END);
		assert_int_equal(cap.flags[at], i < 2 ? PROTO_F_MORE : 0);
		at++;
	}
	assert_int_equal(at, cap.n);
	stream_relay_clear(&relay);
	chain3_free(&c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_chunker_reader, setup, teardown),
		cmocka_unit_test_setup_teardown(test_chunker_bad_sizes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_round_trip_with_state, setup, teardown),
		cmocka_unit_test_setup_teardown(test_feed_frames, setup, teardown),
		cmocka_unit_test_setup_teardown(test_flipped_byte, setup, teardown),
		cmocka_unit_test_setup_teardown(test_wrong_image_hash, setup, teardown),
		cmocka_unit_test_setup_teardown(test_wrong_state_hash, setup, teardown),
		cmocka_unit_test_setup_teardown(test_truncated_stream, setup, teardown),
		cmocka_unit_test_setup_teardown(test_oversize, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reorder_and_duplicate, setup, teardown),
		cmocka_unit_test_setup_teardown(test_place_alone, setup, teardown),
		cmocka_unit_test_setup_teardown(test_recv_where, setup, teardown),
		cmocka_unit_test_setup_teardown(test_tee_both_ok, setup, teardown),
		cmocka_unit_test_setup_teardown(test_tee_secondary_fails, setup, teardown),
		cmocka_unit_test_setup_teardown(test_tee_primary_fails, setup, teardown),
		cmocka_unit_test_setup_teardown(test_tee_done_sides, setup, teardown),
		cmocka_unit_test_setup_teardown(test_area_installer, setup, teardown),
		cmocka_unit_test_setup_teardown(test_area_opened_in_place, setup, teardown),
		cmocka_unit_test_setup_teardown(test_area_installer_refuses, setup, teardown),
		cmocka_unit_test_setup_teardown(test_area_installer_holds, setup, teardown),
		cmocka_unit_test_setup_teardown(test_meta_keep, setup, teardown),
		cmocka_unit_test(test_chain_assembled),
		cmocka_unit_test(test_chain_in_area),
		cmocka_unit_test(test_area_in_place_refused),
		cmocka_unit_test_setup_teardown(test_area_small_chunks, setup, teardown),
		cmocka_unit_test(test_chain_refused),
		cmocka_unit_test(test_chain_relayed),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
