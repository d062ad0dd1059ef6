/*
 * test_capture.c - the agent's captures and their encodings (src/agent/capture.c):
 * an encoding a PULL streams never changes under it, whatever other PULLs
 * (other bases) and captures do meanwhile, and the bytes it reads from the
 * area are the image's or are refused (the program rewrote the slot). A
 * writer thread commits checkpoints into a real area (and keeps each
 * one's state for the checks), a capture thread captures them, and two
 * streaming threads do what PULL and the manager's fetch do: snapshot the
 * metadata, read the chunks where the image's data is (image_read), and
 * verify each chunk read, the image hash, the base, and the state hash of
 * what a store would assemble from it; a stream the writer overtook must
 * be refused by the read, never pass with wrong bytes.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "agent/agent_int.h"
#include "agent/capture.h"
#include "area/area.h"
#include "area/delta.h"
#include "area/image.h"
#include "proto/frame.h"
#include "rtcms_error.h"

#define DATA (4u << 20)               /* 1024 blocks: a full image is 5 chunks */
#define BLOCKS (DATA / AREA_BLOCK)
#define RUN_MS 2000
#define RING 16

struct world {
	struct agent a;
	struct aproc p;
	/* the program's state: the writer's alone */
	uint8_t *truth;
	uint64_t ver[BLOCKS];
	uint64_t seq;
	/* full images of recent captures by sequence, the bases a store holds */
	pthread_mutex_t ring_lock;
	struct { uint64_t seq; uint8_t *img; size_t len; } ring[RING];
	atomic_int stop;
	atomic_int streams, deltas, failures, gones;
	int pause_every;                 /* the writer pauses every so many commits */
	atomic_int calm;                 /* its pauses long (a loaded machine) */
};

/* The full image of the state data with sequence seq into a fresh buffer
 * (*len bytes), or NULL. */
static uint8_t *full_image(const uint8_t *data, uint64_t seq, size_t *len)
{
	struct area_region r = { 1, 0, DATA, 0 };
	uint8_t *img = malloc(image_size(1, DATA));
	if (img) {
		size_t head = image_head(img, seq, &r, 1, DATA);
		memcpy(img + head, data, DATA);
		*len = head + DATA;
	}
	return img;
}

/* Commit the next checkpoint: dirty random blocks changed (all at first);
 * its full image goes into the ring (the bases a store holds). */
static void commit(struct world *w, int dirty, unsigned *rng)
{
	uint64_t seq = ++w->seq;
	for (int k = 0; k < (seq == 1 ? (int)BLOCKS : dirty); k++) {
		size_t b = seq == 1 ? (size_t)k : (size_t)rand_r(rng) % BLOCKS;
		memset(w->truth + b * AREA_BLOCK, rand_r(rng) & 0xff, AREA_BLOCK);
		memcpy(w->truth + b * AREA_BLOCK, &seq, sizeof(seq));
		w->ver[b] = seq;
	}
	struct area_slot *s = area_write_begin(w->p.area);
	s->region_count = 1;
	s->regions[0] = (struct area_region){ 1, 0, DATA, 0 };
	s->data_size = DATA;
	memcpy(area_slot_data(w->p.area, s), w->truth, DATA);
	memcpy(area_slot_versions(w->p.area, s), w->ver, sizeof(w->ver));
	area_write_commit(w->p.area, s, seq);
	size_t len = 0;
	uint8_t *img = full_image(w->truth, seq, &len);
	pthread_mutex_lock(&w->ring_lock);
	int i = (int)(seq % RING);
	free(w->ring[i].img);
	w->ring[i].img = img;
	w->ring[i].len = len;
	w->ring[i].seq = img ? seq : 0;
	pthread_mutex_unlock(&w->ring_lock);
}

static void world_init(struct world *w)
{
	memset(w, 0, sizeof(*w));
	uv_mutex_init(&w->a.lock);
	uv_mutex_init(&w->p.cap_lock);
	snprintf(w->p.id, sizeof(w->p.id), "t");
	w->p.area_fd = -1;
	w->p.area_len = area_size_for(DATA);
	w->p.area = calloc(1, w->p.area_len);
	w->truth = calloc(1, DATA);
	assert_non_null(w->p.area);
	assert_non_null(w->truth);
	assert_int_equal(area_format(w->p.area, w->p.area_len), 0);
	pthread_mutex_init(&w->ring_lock, NULL);
}

static void world_free(struct world *w)
{
	image_unref(&w->a, w->p.img);
	for (int i = 0; i < RING; i++)
		free(w->ring[i].img);
	free(w->p.area);
	free(w->truth);
	uv_mutex_destroy(&w->p.cap_lock);
	uv_mutex_destroy(&w->a.lock);
	pthread_mutex_destroy(&w->ring_lock);
}

/* The image PULL would serve (a reference), as handle_pull takes it. */
static struct image *held_image(struct world *w)
{
	uv_mutex_lock(&w->a.lock);
	struct image *img = w->p.img;
	if (img)
		img->refs++;
	uv_mutex_unlock(&w->a.lock);
	return img;
}

static void *writer(void *arg)
{
	struct world *w = arg;
	unsigned rng = 12345;
	for (int n = 1; !atomic_load(&w->stop); n++) {
		commit(w, 8, &rng);
		/* now and then slower than a stream (else the full images,
		 * five chunks, would rarely get through) */
		usleep(w->pause_every && n % w->pause_every == 0
			       ? (atomic_load(&w->calm) ? 1000000 : 100000) : 2000);
	}
	return NULL;
}

static void *capturer(void *arg)
{
	struct world *w = arg;
	while (!atomic_load(&w->stop)) {
		struct image *img = NULL;
		int rc = capture_take(&w->a, &w->p, &img);
		if (rc && rc != RTCMS_EAGAIN)
			atomic_fetch_add(&w->failures, 1);
		image_unref(&w->a, img);
		usleep(20000); /* the agent captures at the managers' pace */
	}
	return NULL;
}

#define FAIL(...) do { fprintf(stderr, __VA_ARGS__); atomic_fetch_add(&w->failures, 1); \
		       goto out; } while (0)

/* What the store would assemble from e: e itself (full) or e applied to the
 * image of its base; its state hash must be the image's. */
static void check_assembled(struct world *w, const struct image *img, const uint8_t *bytes,
			    size_t size, uint64_t base)
{
	uint8_t *buf = NULL;
	size_t len = size;
	uint8_t h[STATE_HASH_SIZE];
	if (base) {
		pthread_mutex_lock(&w->ring_lock);
		const uint8_t *b = w->ring[base % RING].seq == base ? w->ring[base % RING].img
								       : NULL;
		len = w->ring[base % RING].len;
		if (b && (buf = malloc(img->size)))
			memcpy(buf, b, len);
		pthread_mutex_unlock(&w->ring_lock);
		if (!buf)
			return; /* the base left the ring meanwhile */
		if (delta_apply(buf, &len, img->size, bytes, size) != 0)
			FAIL("delta of %llu against %llu does not apply\n",
			     (unsigned long long)img->sequence, (unsigned long long)base);
		bytes = buf;
	}
	if (state_hash(bytes, len, h) != 0 || memcmp(h, img->state_hash, sizeof(h)) != 0)
		FAIL("checkpoint %llu (base %llu): state hash differs\n",
		     (unsigned long long)img->sequence, (unsigned long long)base);
out:
	free(buf);
}

/* A base a manager might hold: none, or one of the recent captures. */
static uint64_t pick_base(struct world *w, uint64_t seq, unsigned *rng)
{
	uint64_t held[RING];
	int n = 0;
	pthread_mutex_lock(&w->ring_lock);
	for (int i = 0; i < RING; i++)
		if (w->ring[i].seq && w->ring[i].seq < seq && w->ring[i].seq + 64 > seq)
			held[n++] = w->ring[i].seq;
	pthread_mutex_unlock(&w->ring_lock);
	uint64_t r = (uint64_t)rand_r(rng);
	return n == 0 || r % 6 == 0 ? 0 : held[(r >> 8) % (uint64_t)n];
}

static void *streamer(void *arg)
{
	struct world *w = arg;
	unsigned rng = (unsigned)(uintptr_t)&rng;
	uint8_t *copy = malloc(image_size(AREA_MAX_REGIONS, DATA));
	while (!atomic_load(&w->stop)) {
		struct image *img = held_image(w);
		if (!img) {
			sched_yield();
			continue;
		}
		uint64_t base = pick_base(w, img->sequence, &rng);
		struct encoding *e = NULL;
		int rc = image_encoding(img, base, &e);
		if (rc == RTCMS_ENOENT) { /* rewritten while its ids were cut */
			atomic_fetch_add(&w->gones, 1);
			goto out;
		}
		if (rc)
			FAIL("no encoding: %s\n", rtcms_strerror(rc));
		/* GET_META, as fill_meta takes it */
		uint64_t seq = img->sequence, size = e->chunks.size, ebase = e->base;
		uint32_t chunks = e->chunks.count;
		uint8_t hash[PROTO_HASH_SIZE];
		memcpy(hash, e->chunks.image_hash, sizeof(hash));
		if (ebase && ebase != base)
			FAIL("asked for a delta against %llu, got one against %llu\n",
			     (unsigned long long)base, (unsigned long long)ebase);
		/* the CHUNKs, as pull.c reads and sends them and fetch checks them */
		struct image_reader rd = { img, e, false };
		struct proto_image_hash ih;
		proto_image_hash_init(&ih, size);
		uint32_t n = 0;
		for (size_t off = 0; off < size; off += PROTO_MAX_CHUNK, n++) {
			uint32_t len = size - off < PROTO_MAX_CHUNK ? (uint32_t)(size - off)
								   : PROTO_MAX_CHUNK;
			uint8_t sent[PROTO_HASH_SIZE], h[PROTO_HASH_SIZE];
			memcpy(sent, e->chunks.id[n], sizeof(sent));
			usleep(100);
			if (image_read(&rd, off, copy + off, len) != 0) { /* on the wire */
				if (!rd.gone)
					FAIL("chunk %u not read, not gone\n", n);
				atomic_fetch_add(&w->gones, 1);
				goto out;
			}
			proto_chunk_hash(copy + off, len, h);
			if (memcmp(h, sent, sizeof(h)) != 0)
				FAIL("checkpoint %llu base %llu: chunk %u does not match its hash\n",
				     (unsigned long long)seq, (unsigned long long)base, n);
			if (proto_image_hash_update(&ih, off, len, h) != 0)
				FAIL("checkpoint %llu base %llu: malformed chunk %u\n",
				     (unsigned long long)seq, (unsigned long long)base, n);
		}
		uint8_t got[PROTO_HASH_SIZE];
		if (n != chunks || proto_image_hash_final(&ih, got) != 0 ||
		    memcmp(got, hash, sizeof(got)) != 0)
			FAIL("checkpoint %llu base %llu: the image does not match its hash\n",
			     (unsigned long long)seq, (unsigned long long)base);
		check_assembled(w, img, copy, size, ebase);
		atomic_fetch_add(&w->streams, 1);
		if (ebase)
			atomic_fetch_add(&w->deltas, 1);
out:
		image_encoding_done(img, e);
		image_unref(&w->a, img);
	}
	free(copy);
	return NULL;
}

/* Two PULLs with other bases, and captures, while each streams. */
static void test_streams_under_captures(void **state)
{
	(void)state;
	static struct world w;
	pthread_t t[4];
	world_init(&w);
	unsigned rng = 1;
	w.pause_every = 25;
	commit(&w, 0, &rng);
	assert_int_equal(pthread_create(&t[0], NULL, writer, &w), 0);
	assert_int_equal(pthread_create(&t[1], NULL, capturer, &w), 0);
	assert_int_equal(pthread_create(&t[2], NULL, streamer, &w), 0);
	assert_int_equal(pthread_create(&t[3], NULL, streamer, &w), 0);
	/* at least RUN_MS, and on a slow build (sanitizers) until enough
	 * streams of both kinds ran */
	usleep(RUN_MS * 1000);
	/* on a loaded machine a full stream may not fit in the writer's
	 * short pauses: from now on they are long, so every kind completes */
	atomic_store(&w.calm, 1);
	while (atomic_load(&w.failures) == 0 &&
	       (atomic_load(&w.deltas) < 10 || atomic_load(&w.gones) < 1 ||
		atomic_load(&w.streams) - atomic_load(&w.deltas) < 2))
		usleep(100 * 1000);
	atomic_store(&w.stop, 1);
	for (int i = 0; i < 4; i++)
		pthread_join(t[i], NULL);
	printf("%d streams verified (%d deltas), %d overtaken and refused, %d failures\n",
	       atomic_load(&w.streams), atomic_load(&w.deltas), atomic_load(&w.gones),
	       atomic_load(&w.failures));
	assert_true(atomic_load(&w.gones) >= 1);
	assert_int_equal(atomic_load(&w.failures), 0);
	assert_true(atomic_load(&w.deltas) >= 10);
	assert_true(atomic_load(&w.streams) - atomic_load(&w.deltas) >= 2);
	world_free(&w);
}

/* The encoding of img against base, which must build. */
static struct encoding *encoding_of(struct image *img, uint64_t base)
{
	struct encoding *e = NULL;
	assert_int_equal(image_encoding(img, base, &e), 0);
	assert_non_null(e);
	return e;
}

/* The state hash of img's full image, read where its data is (0), or the
 * read's error (RTCMS_ENOENT: gone from the area). */
static int read_state_hash(struct image *img, uint8_t h[STATE_HASH_SIZE])
{
	struct encoding *full = NULL;
	int rc = image_encoding(img, 0, &full);
	uint8_t *buf = malloc(img->size);
	struct image_reader rd = { img, full, false };
	assert_non_null(buf);
	if (rc == 0)
		rc = image_read(&rd, 0, buf, img->size);
	if (rc == 0)
		assert_int_equal(state_hash(buf, img->size, h), 0);
	else
		assert_true(rd.gone || !full);
	image_encoding_done(img, full);
	free(buf);
	return rc;
}

/* An encoding held by one PULL stays as it is while another PULL asks for
 * another base; once given back it is rebuilt in place. */
static void test_encoding_held(void **state)
{
	(void)state;
	static struct world w;
	world_init(&w);
	unsigned rng = 7;
	struct image *img = NULL;
	for (int i = 0; i < 4; i++)
		commit(&w, 10, &rng);
	assert_int_equal(capture_take(&w.a, &w.p, &img), 0);
	assert_int_equal(img->sequence, 4);

	struct encoding *d3 = encoding_of(img, 3);
	assert_int_equal(d3->base, 3);
	uint8_t before[PROTO_HASH_SIZE];
	memcpy(before, d3->chunks.image_hash, sizeof(before));
	struct encoding *d2 = encoding_of(img, 2);
	assert_ptr_not_equal(d2, d3);
	assert_int_equal(d2->base, 2);
	assert_int_equal(d3->base, 3);
	assert_memory_equal(d3->chunks.image_hash, before, sizeof(before));
	struct encoding *again = encoding_of(img, 3); /* the same base: shared */
	assert_ptr_equal(again, d3);
	image_encoding_done(img, again);
	image_encoding_done(img, d3);
	/* nobody streams d3 any more: a third base reuses it */
	struct encoding *d1 = encoding_of(img, 1);
	assert_ptr_equal(d1, d3);
	assert_int_equal(d1->base, 1);
	struct encoding *full = encoding_of(img, 0);
	assert_int_equal(full->base, 0);
	assert_int_equal(full->chunks.size, img->size);
	image_encoding_done(img, full);
	image_encoding_done(img, d1);
	image_encoding_done(img, d2);
	image_encoding_done(img, NULL);

	/* a capture while img is held builds a new image: img stays as it
	 * was, readable until the program rewrites its slot */
	uint8_t sh[STATE_HASH_SIZE], h[STATE_HASH_SIZE];
	memcpy(sh, img->state_hash, sizeof(sh));
	commit(&w, 10, &rng);
	struct image *next = NULL;
	assert_int_equal(capture_take(&w.a, &w.p, &next), 0);
	assert_ptr_not_equal(next, img);
	assert_int_equal(next->sequence, 5);
	assert_int_equal(img->sequence, 4);
	assert_true(image_current(img));
	assert_int_equal(read_state_hash(img, h), 0);
	assert_memory_equal(h, sh, sizeof(h));
	assert_int_equal(read_state_hash(next, h), 0);
	assert_memory_equal(h, next->state_hash, sizeof(h));
	/* the next commit rewrites 4's slot: gone, whatever reads it */
	commit(&w, 10, &rng);
	assert_false(image_current(img));
	assert_int_equal(read_state_hash(img, h), RTCMS_ENOENT);
	assert_true(image_current(next));
	image_unref(&w.a, next);
	image_unref(&w.a, img);
	world_free(&w);
}

/* A program whose full images outran it: its captures keep a private
 * copy, built on the last one, which every later commit leaves alone. */
static void test_private_copy(void **state)
{
	(void)state;
	static struct world w;
	world_init(&w);
	unsigned rng = 9;
	struct image *img = NULL, *next = NULL;
	uint8_t h[STATE_HASH_SIZE];
	commit(&w, 0, &rng);
	assert_int_equal(capture_take(&w.a, &w.p, &img), 0); /* from the area */
	assert_null(img->copy);
	image_unref(&w.a, img);
	w.p.copy_full = true;
	commit(&w, 10, &rng);
	assert_int_equal(capture_take(&w.a, &w.p, &img), 0);
	assert_non_null(img->copy);
	assert_true(img->copied < DATA); /* only the changed blocks hashed */
	commit(&w, 10, &rng);
	assert_int_equal(capture_take(&w.a, &w.p, &next), 0); /* a copy of img's copy */
	commit(&w, 10, &rng);
	commit(&w, 10, &rng);
	assert_true(image_current(img));
	assert_int_equal(read_state_hash(img, h), 0);
	assert_memory_equal(h, img->state_hash, sizeof(h));
	struct encoding *d = encoding_of(next, img->sequence);
	assert_int_equal(d->base, img->sequence);
	image_encoding_done(next, d);
	assert_int_equal(read_state_hash(next, h), 0);
	assert_memory_equal(h, next->state_hash, sizeof(h));
	image_unref(&w.a, next);
	image_unref(&w.a, img);
	world_free(&w);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_encoding_held),
		cmocka_unit_test(test_private_copy),
		cmocka_unit_test(test_streams_under_captures),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
