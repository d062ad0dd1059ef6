/*
 * test_capture.c - the agent's captures and their encodings (src/agent/capture.c):
 * an encoding a PULL streams never changes under it, whatever other PULLs
 * (other bases) and captures do meanwhile. A writer thread commits
 * checkpoints into a real area, a capture thread captures them, and two
 * streaming threads do what PULL and the manager's fetch do: snapshot the
 * metadata, send the chunks with the hashes of the encoding and verify each
 * chunk, the image hash, the base, and the state hash of what a store would
 * assemble from it.
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
	atomic_int streams, deltas, failures;
};

/* Commit the next checkpoint: dirty random blocks changed (all at first). */
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
	while (!atomic_load(&w->stop)) {
		commit(w, 8, &rng);
		usleep(2000);
	}
	return NULL;
}

static void *capturer(void *arg)
{
	struct world *w = arg;
	while (!atomic_load(&w->stop)) {
		struct image *img = NULL;
		int rc = capture_take(&w->a, &w->p, &img);
		if (rc == 0 && img) {
			pthread_mutex_lock(&w->ring_lock);
			int i = (int)(img->sequence % RING);
			if (w->ring[i].seq != img->sequence) {
				uint8_t *copy = realloc(w->ring[i].img, img->size);
				if (copy) {
					memcpy(copy, img->data, img->size);
					w->ring[i].img = copy;
					w->ring[i].len = img->size;
					w->ring[i].seq = img->sequence;
				}
			}
			pthread_mutex_unlock(&w->ring_lock);
		} else if (rc && rc != RTCMS_EAGAIN) {
			atomic_fetch_add(&w->failures, 1);
		}
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
		struct encoding *e = image_encoding(img, base);
		if (!e)
			FAIL("no encoding\n");
		/* GET_META, as fill_meta takes it */
		uint64_t seq = img->sequence, size = e->chunks.size, ebase = e->base;
		uint32_t chunks = e->chunks.count;
		uint8_t hash[PROTO_HASH_SIZE];
		memcpy(hash, e->chunks.image_hash, sizeof(hash));
		if (ebase && ebase != base)
			FAIL("asked for a delta against %llu, got one against %llu\n",
			     (unsigned long long)base, (unsigned long long)ebase);
		/* the CHUNKs, as handle_pull sends them and fetch checks them */
		const uint8_t *bytes = e->bytes && e->base ? e->bytes : img->data;
		struct proto_image_hash ih;
		proto_image_hash_init(&ih, size);
		uint32_t n = 0;
		for (size_t off = 0; off < size; off += PROTO_MAX_CHUNK, n++) {
			uint32_t len = size - off < PROTO_MAX_CHUNK ? (uint32_t)(size - off)
								   : PROTO_MAX_CHUNK;
			uint8_t sent[PROTO_HASH_SIZE], h[PROTO_HASH_SIZE];
			memcpy(sent, e->chunks.id[n], sizeof(sent));
			memcpy(copy + off, bytes + off, len); /* on the wire */
			usleep(100);
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
	commit(&w, 0, &rng);
	assert_int_equal(pthread_create(&t[0], NULL, writer, &w), 0);
	assert_int_equal(pthread_create(&t[1], NULL, capturer, &w), 0);
	assert_int_equal(pthread_create(&t[2], NULL, streamer, &w), 0);
	assert_int_equal(pthread_create(&t[3], NULL, streamer, &w), 0);
	/* at least RUN_MS, and on a slow build (sanitizers) until enough
	 * streams of both kinds ran */
	usleep(RUN_MS * 1000);
	while (atomic_load(&w.failures) == 0 &&
	       (atomic_load(&w.deltas) < 10 || atomic_load(&w.streams) - atomic_load(&w.deltas) < 2))
		usleep(100 * 1000);
	atomic_store(&w.stop, 1);
	for (int i = 0; i < 4; i++)
		pthread_join(t[i], NULL);
	printf("%d streams verified (%d deltas), %d failures\n", atomic_load(&w.streams),
	       atomic_load(&w.deltas), atomic_load(&w.failures));
	assert_int_equal(atomic_load(&w.failures), 0);
	assert_true(atomic_load(&w.deltas) >= 10);
	assert_true(atomic_load(&w.streams) - atomic_load(&w.deltas) >= 2);
	world_free(&w);
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

	struct encoding *d3 = image_encoding(img, 3);
	assert_non_null(d3);
	assert_int_equal(d3->base, 3);
	uint8_t before[PROTO_HASH_SIZE];
	memcpy(before, d3->chunks.image_hash, sizeof(before));
	struct encoding *d2 = image_encoding(img, 2);
	assert_non_null(d2);
	assert_ptr_not_equal(d2, d3);
	assert_int_equal(d2->base, 2);
	assert_int_equal(d3->base, 3);
	assert_memory_equal(d3->chunks.image_hash, before, sizeof(before));
	struct encoding *again = image_encoding(img, 3); /* the same base: shared */
	assert_ptr_equal(again, d3);
	image_encoding_done(img, again);
	image_encoding_done(img, d3);
	/* nobody streams d3 any more: a third base reuses it */
	struct encoding *d1 = image_encoding(img, 1);
	assert_ptr_equal(d1, d3);
	assert_int_equal(d1->base, 1);
	struct encoding *full = image_encoding(img, 0);
	assert_non_null(full);
	assert_int_equal(full->base, 0);
	assert_int_equal(full->chunks.size, img->size);
	image_encoding_done(img, full);
	image_encoding_done(img, d1);
	image_encoding_done(img, d2);
	image_encoding_done(img, NULL);

	/* a capture while img is held builds a new image: img stays as it was */
	uint8_t sh[STATE_HASH_SIZE];
	memcpy(sh, img->state_hash, sizeof(sh));
	commit(&w, 10, &rng);
	struct image *next = NULL;
	assert_int_equal(capture_take(&w.a, &w.p, &next), 0);
	assert_ptr_not_equal(next, img);
	assert_int_equal(next->sequence, 5);
	assert_int_equal(img->sequence, 4);
	uint8_t h[STATE_HASH_SIZE];
	assert_int_equal(state_hash(img->data, img->size, h), 0);
	assert_memory_equal(h, sh, sizeof(h));
	image_unref(&w.a, next);
	image_unref(&w.a, img);
	world_free(&w);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_encoding_held),
		cmocka_unit_test(test_streams_under_captures),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
