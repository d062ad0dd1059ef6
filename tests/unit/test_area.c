/*
 * test_area.c - the checkpoint area: formatting, commit and read, and the
 * property that fixes the thesis' notify-before-write race: a reader never
 * accepts a half-written checkpoint, however the writer interleaves.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "area/area.h"
#include "rtcms_error.h"

#define CAP (256 * 1024)

static void write_ckpt(void *mem, uint64_t seq, size_t len)
{
	struct area_slot *s = area_write_begin(mem);
	uint8_t *d = area_slot_data(mem, s);
	s->region_count = 2;
	s->regions[0] = (struct area_region){ 7, 0, len / 2, 0 };
	s->regions[1] = (struct area_region){ 9, 0, len - len / 2, len / 2 };
	/* every byte carries the sequence: a torn copy mixes two values */
	memset(d, (int)(seq & 0xff), len);
	s->data_size = len;
	area_write_commit(mem, s, seq);
}

static void test_format_and_empty(void **state)
{
	(void)state;
	size_t len = area_size_for(CAP);
	void *mem = calloc(1, len);
	uint8_t out[16];
	struct area_region r[AREA_MAX_REGIONS];
	uint64_t size, seq;
	uint32_t n;

	assert_int_equal(area_format(mem, 100), RTCMS_EINVAL);
	assert_int_equal(area_format(mem, len), 0);
	assert_int_equal(area_check(mem, len), 0);
	assert_int_equal(area_check(mem, len - 1), RTCMS_EPROTO);
	assert_true(area_data_capacity(mem) >= CAP);
	assert_int_equal(area_committed_sequence(mem), 0);
	assert_int_equal(area_read(mem, out, sizeof(out), &size, r, &n, &seq), RTCMS_ENOENT);
	((struct area_header *)mem)->magic ^= 1;
	assert_int_equal(area_check(mem, len), RTCMS_EPROTO);
	free(mem);
}

static void test_commit_read_abort(void **state)
{
	(void)state;
	size_t len = area_size_for(CAP);
	void *mem = calloc(1, len);
	uint8_t *out = malloc(CAP);
	struct area_region r[AREA_MAX_REGIONS];
	uint64_t size, seq;
	uint32_t n;

	area_format(mem, len);
	write_ckpt(mem, 1, 1000);
	assert_int_equal(area_read(mem, out, CAP, &size, r, &n, &seq), 0);
	assert_int_equal(seq, 1);
	assert_int_equal(size, 1000);
	assert_int_equal(n, 2);
	assert_int_equal(r[1].id, 9);
	assert_int_equal(out[999], 1);
	/* a second checkpoint goes to the other slot */
	write_ckpt(mem, 2, 3000);
	assert_int_equal(area_read(mem, out, CAP, &size, r, &n, &seq), 0);
	assert_int_equal(seq, 2);
	assert_int_equal(out[2999], 2);
	/* a writer that is half-way: the reader still gets sequence 2 */
	struct area_slot *s = area_write_begin(mem);
	memset(area_slot_data(mem, s), 3, 500);
	assert_int_equal(area_read(mem, out, CAP, &size, r, &n, &seq), 0);
	assert_int_equal(seq, 2);
	assert_int_equal(out[0], 2);
	area_write_abort(mem, s);
	assert_int_equal(area_read(mem, out, CAP, &size, r, &n, &seq), 0);
	assert_int_equal(seq, 2);
	/* the reader's buffer must hold the data */
	assert_int_equal(area_read(mem, out, 10, &size, r, &n, &seq), RTCMS_ETOOBIG);
	free(out);
	free(mem);
}

struct race {
	void *mem;
	atomic_int stop;
	_Atomic uint64_t written;
};

static void *writer(void *arg)
{
	struct race *r = arg;
	uint64_t seq = 0;
	while (!atomic_load(&r->stop) && seq < 2000000) {
		seq++;
		write_ckpt(r->mem, seq, 4096 + (seq % 7) * 8192);
		atomic_store(&r->written, seq);
	}
	return NULL;
}

static void test_reader_never_sees_torn_data(void **state)
{
	(void)state;
	size_t len = area_size_for(CAP);
	void *mem = calloc(1, len);
	uint8_t *out = malloc(CAP);
	struct area_region rg[AREA_MAX_REGIONS];
	struct race r = { mem, 0, 0 };
	pthread_t th;
	uint64_t ok = 0, again = 0, last = 0;

	area_format(mem, len);
	write_ckpt(mem, 0x100, 100); /* something committed from the start */
	pthread_create(&th, NULL, writer, &r);
	/* read while the writer runs: until it wrote 20000 checkpoints and we
	 * read 2000 of them (bounded by a generous iteration count) */
	uint64_t fresh = 0;
	for (long i = 0; i < 50000000 && (atomic_load(&r.written) < 20000 || fresh < 2000); i++) {
		uint64_t size, seq;
		uint32_t n;
		int rc = area_read(mem, out, CAP, &size, rg, &n, &seq);
		if (rc == RTCMS_EAGAIN) {
			again++;
			continue;
		}
		assert_int_equal(rc, 0);
		/* internally consistent: every byte has the sequence's value */
		for (uint64_t k = 0; k < size; k++)
			if (out[k] != (uint8_t)(seq & 0xff))
				fail_msg("torn read: sequence %llu byte %llu is %u",
					 (unsigned long long)seq, (unsigned long long)k, out[k]);
		assert_int_equal(n, 2);
		assert_int_equal(rg[0].size + rg[1].size, size);
		/* sequences never go backwards */
		if (seq != 0x100)
			assert_true(seq >= last || last == 0x100);
		if (seq != 0x100) {
			last = seq;
			fresh++;
		}
		ok++;
	}
	atomic_store(&r.stop, 1);
	pthread_join(th, NULL);
	print_message("reads: %llu consistent, %llu retried; checkpoints written: %llu\n",
		      (unsigned long long)ok, (unsigned long long)again,
		      (unsigned long long)atomic_load(&r.written));
	assert_true(fresh >= 2000);                  /* we raced the writer */
	assert_true(atomic_load(&r.written) >= 20000);
	free(out);
	free(mem);
}

/* Commit seq with every data byte set to fill (one region of len bytes). */
static void commit_fill(void *mem, uint64_t seq, uint8_t fill, size_t len)
{
	struct area_slot *s = area_write_begin(mem);
	s->region_count = 1;
	s->regions[0] = (struct area_region){ 7, 0, len, 0 };
	s->data_size = len;
	memset(area_slot_data(mem, s), fill, len);
	for (size_t b = 0; b < area_block_round(len) / AREA_BLOCK; b++)
		area_slot_versions(mem, s)[b] = seq;
	area_write_commit(mem, s, seq);
}

/* A checkpoint read in place stays readable through the next commit (the
 * other slot) and is refused as soon as the writer begins the one after
 * (its slot); area_copy carries the committed one into another area. */
static void test_snap_in_place(void **state)
{
	(void)state;
	size_t len = area_size_for(CAP);
	void *mem = calloc(1, len), *other = calloc(1, len);
	uint64_t versions[CAP / AREA_BLOCK];
	struct area_snap snap;
	uint8_t buf[3 * AREA_BLOCK], want[sizeof(buf)];
	assert_int_equal(area_format(mem, len), 0);
	assert_int_equal(area_format(other, len), 0);
	assert_int_equal(area_snap_take(mem, &snap, versions, CAP / AREA_BLOCK), RTCMS_ENOENT);
	commit_fill(mem, 1, 0x11, sizeof(buf));
	assert_int_equal(area_snap_take(mem, &snap, versions, 1), RTCMS_ETOOBIG);
	assert_int_equal(area_snap_take(mem, &snap, versions, CAP / AREA_BLOCK), 0);
	assert_int_equal(snap.sequence, 1);
	assert_int_equal(snap.data_size, sizeof(buf));
	assert_int_equal(snap.region_count, 1);
	assert_int_equal(versions[2], 1);
	memset(want, 0x11, sizeof(want));
	assert_int_equal(area_snap_read(mem, &snap, 0, buf, sizeof(buf)), 0);
	assert_memory_equal(buf, want, sizeof(buf));
	assert_int_equal(area_snap_read(mem, &snap, 1, buf, sizeof(buf)), RTCMS_EINVAL);
	commit_fill(mem, 2, 0x22, sizeof(buf)); /* the other slot */
	assert_true(area_snap_valid(mem, &snap));
	assert_int_equal(area_snap_read(mem, &snap, AREA_BLOCK, buf, AREA_BLOCK), 0);
	assert_memory_equal(buf, want, AREA_BLOCK);
	struct area_slot *s = area_write_begin(mem); /* 1's slot, being rewritten */
	assert_false(area_snap_valid(mem, &snap));
	assert_int_equal(area_snap_read(mem, &snap, 0, buf, AREA_BLOCK), RTCMS_ENOENT);
	area_write_abort(mem, s);
	assert_false(area_snap_valid(mem, &snap)); /* gone for good */
	/* a restart: the committed checkpoint into a fresh area */
	assert_int_equal(area_copy(other, mem), 0);
	assert_int_equal(area_committed_sequence(other), 2);
	assert_int_equal(area_snap_take(other, &snap, versions, CAP / AREA_BLOCK), 0);
	assert_int_equal(area_snap_read(other, &snap, 0, buf, sizeof(buf)), 0);
	memset(want, 0x22, sizeof(want));
	assert_memory_equal(buf, want, sizeof(buf));
	free(mem);
	free(other);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_format_and_empty),
		cmocka_unit_test(test_commit_read_abort),
		cmocka_unit_test(test_reader_never_sees_torn_data),
		cmocka_unit_test(test_snap_in_place),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
