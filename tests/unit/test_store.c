/*
 * test_store.c - the store engine: PUT/GET round trips, idempotent and
 * conflicting PUTs, bad chunks refused, LIST filters and pages, aborted
 * PUTs (their pins and files), DELETE during a GET, bounded memory of a
 * streamed GET, a newer incarnation fencing older PUTs.
 */
#include "store_fixture.h"

static void test_put_get_roundtrip(void **state)
{
	struct fixture *f = *state;
	assert_int_equal(put(f->st, "p", 1, 1, 0, 1, 4096), 0);
	assert_int_equal(get_check(f->st, "p", 1, 1, 0, 1, NULL), 0);
	assert_int_equal(put(f->st, "q", 1, 1, 3 * 1048576 + 5, 2, 1048576), 0);
	assert_int_equal(get_check(f->st, "q", 0, 0, 3 * 1048576 + 5, 2, NULL), 0);
	assert_int_equal(put(f->st, "r", 1, 1, 100001, 3, 4096), 0);
	assert_int_equal(get_check(f->st, "r", 1, 0, 100001, 3, NULL), 0);
	assert_int_equal(get_check(f->st, "nobody", 0, 0, 0, 0, NULL), RTCMS_ENOENT);
	/* both mirrors hold every chunk */
	assert_int_equal(tu_count_chunk_copies(f->m0), tu_count_chunk_copies(f->m1));
	assert_int_equal(tu_count_chunk_copies(f->m0), 4 + 25);
}

static void test_idempotent_and_conflicting_put(void **state)
{
	struct fixture *f = *state;
	assert_int_equal(put(f->st, "p", 1, 1, 10000, 1, 4096), 0);
	assert_int_equal(put(f->st, "p", 1, 1, 10000, 1, 4096), PUT_STORED);
	assert_int_equal(put(f->st, "p", 1, 1, 10000, 2, 4096), RTCMS_EEXIST);
	assert_int_equal(get_check(f->st, "p", 1, 1, 10000, 1, NULL), 0);
}

static void test_bad_chunks_refused(void **state)
{
	struct fixture *f = *state;
	struct proto_ckpt_meta m;
	struct proto_put_ack ack;
	struct store_put *p;
	uint8_t data[100];
	struct proto_chunk c = { .offset = 0, .data = data, .len = 100 };

	memset(&m, 0, sizeof(m));
	strcpy(m.process, "p");
	m.incarnation = m.sequence = 1;
	m.size = 200;
	m.chunk_count = 2;
	tu_fill(data, sizeof(data), 1);
	assert_int_equal(store_put_begin(f->st, &m, &p, &ack), 0);
	proto_chunk_hash(data, 100, c.hash);
	c.offset = 100; /* out of order */
	assert_int_equal(store_put_check(p, &c), RTCMS_EPROTO);
	store_put_abort(p);

	assert_int_equal(store_put_begin(f->st, &m, &p, &ack), 0);
	c.offset = 0;
	c.hash[0] ^= 1; /* hash does not match the data */
	assert_int_equal(store_put_check(p, &c), 0);
	assert_int_equal(store_put_write(p, &c), RTCMS_ECORRUPT);
	store_put_abort(p);

	/* a complete stream whose image hash differs from the announced one */
	assert_int_equal(store_put_begin(f->st, &m, &p, &ack), 0);
	for (int i = 0; i < 2; i++) {
		c.offset = (uint64_t)i * 100;
		proto_chunk_hash(data, 100, c.hash);
		assert_int_equal(store_put_check(p, &c), 0);
		assert_int_equal(store_put_write(p, &c), 0);
	}
	assert_int_equal(store_put_commit(p, 2, &ack), RTCMS_ECORRUPT);
	assert_int_equal(get_check(f->st, "p", 0, 0, 0, 0, NULL), RTCMS_ENOENT);

	/* invalid metadata */
	m.incarnation = 0;
	assert_int_equal(store_put_begin(f->st, &m, &p, &ack), RTCMS_EINVAL);
}

static void test_list_filters_and_pages(void **state)
{
	struct fixture *f = *state;
	struct proto_list_entry e[PROTO_LIST_MAX];
	bool more;
	char name[32];

	f->retain = 1000;
	store_free(f->st);
	open_store(f);
	for (int i = 0; i < 300; i++) {
		snprintf(name, sizeof(name), "proc-%03d", i);
		assert_int_equal(put(f->st, name, 1, 1, 10, (uint64_t)i, 10), 0);
	}
	assert_int_equal(store_list(f->st, 0, "", 0, PROTO_LIST_MAX, e, &more), PROTO_LIST_MAX);
	assert_true(more);
	assert_string_equal(e[0].process, "proc-000");
	assert_int_equal(store_list(f->st, 0, "", PROTO_LIST_MAX, PROTO_LIST_MAX, e, &more), 44);
	assert_false(more);
	assert_int_equal(store_list(f->st, 0, "proc-123", 0, 10, e, &more), 1);
	assert_int_equal(store_list(f->st, 7, "", 0, 10, e, &more), 10);
	assert_int_equal(store_list(f->st, 8, "", 0, 10, e, &more), 0);
}

/* Begin a PUT of content seed (one chunk of size bytes) and check (and,
 * with write, write) its chunk; returns the open handle. */
static struct store_put *put_open_one(struct store *st, const char *process,
				      uint64_t seq, size_t size, uint64_t seed,
				      int write, uint8_t *data)
{
	struct proto_ckpt_meta m;
	struct proto_image_hash ih;
	struct proto_put_ack ack;
	struct store_put *p;
	struct proto_chunk c = { 0 };

	tu_fill(data, size, seed);
	memset(&m, 0, sizeof(m));
	snprintf(m.process, sizeof(m.process), "%s", process);
	m.incarnation = 1;
	m.sequence = seq;
	m.size = size;
	m.chunk_count = 1;
	m.spec = (const uint8_t *)"spec";
	m.spec_len = 4;
	c.offset = 0;
	c.len = (uint32_t)size;
	c.data = data;
	proto_chunk_hash(data, size, c.hash);
	proto_image_hash_init(&ih, size);
	proto_image_hash_update(&ih, 0, (uint32_t)size, c.hash);
	proto_image_hash_final(&ih, m.hash);
	assert_int_equal(store_put_begin(st, &m, &p, &ack), 0);
	assert_int_equal(store_put_check(p, &c), 0);
	if (write)
		assert_int_equal(store_put_write(p, &c), 0);
	return p;
}

/* A PUT that checked a chunk but never wrote it (the connection failed)
 * must not drop another PUT's pin on the same chunk: garbage collection
 * would then delete a file the other PUT is about to reference. */
static void test_abort_keeps_other_pins(void **state)
{
	struct fixture *f = *state;
	struct proto_put_ack ack;
	uint8_t a[4096], b[4096];

	/* c:1 references the chunk of content 42 */
	assert_int_equal(put(f->st, "c", 1, 1, 4096, 42, 4096), 0);
	/* PUT a:1 writes the same chunk (a dedup hit) and stays open */
	struct store_put *pa = put_open_one(f->st, "a", 1, 4096, 42, 1, a);
	/* PUT b:1 checks it, fails before writing and is aborted, twice */
	store_put_abort(put_open_one(f->st, "b", 1, 4096, 42, 0, b));
	store_put_abort(put_open_one(f->st, "b", 1, 4096, 42, 0, b));
	/* c:1 goes away: its chunk is unreferenced but still pinned by a:1 */
	assert_int_equal(store_delete(f->st, "c", 0, 0), 1);
	assert_int_equal(store_put_commit(pa, 1, &ack), 0);
	assert_int_equal(get_check(f->st, "a", 1, 1, 4096, 42, NULL), 0);
	assert_int_equal(tu_count_chunk_copies(f->m0), 1);
	assert_int_equal(tu_count_chunk_copies(f->m1), 1);
}

/* An abandoned PUT leaves no files behind (without waiting for a restart),
 * but never removes a chunk another checkpoint references. */
static void test_abort_removes_its_files(void **state)
{
	struct fixture *f = *state;
	uint8_t a[4096], b[4096];

	assert_int_equal(put(f->st, "c", 1, 1, 4096, 42, 4096), 0);
	store_put_abort(put_open_one(f->st, "a", 1, 4096, 7, 1, a));
	assert_int_equal(tu_count_chunk_copies(f->m0), 1);
	assert_int_equal(tu_count_chunk_copies(f->m1), 1);
	store_put_abort(put_open_one(f->st, "b", 1, 4096, 42, 1, b));
	assert_int_equal(tu_count_chunk_copies(f->m0), 1);
	assert_int_equal(get_check(f->st, "c", 1, 1, 4096, 42, NULL), 0);
	/* a commit that fails (image hash) removes its files too */
	struct store_put *p = put_open_one(f->st, "a", 1, 4096, 8, 1, a);
	struct proto_put_ack ack;
	assert_int_equal(store_put_commit(p, 2, &ack), RTCMS_EPROTO);
	assert_int_equal(tu_count_chunk_copies(f->m0), 1);
	assert_int_equal(tu_count_chunk_copies(f->m1), 1);
}

/* A checkpoint deleted while a GET streams it stays readable to the end;
 * its files go when the GET closes. */
static void test_delete_during_get(void **state)
{
	struct fixture *f = *state;
	struct proto_ckpt_meta m;
	struct store_get *g;
	struct proto_chunk c = { 0 };
	uint8_t *buf = malloc(PROTO_MAX_CHUNK), want[4096];
	int n = 0, rc;

	assert_int_equal(put(f->st, "p", 1, 1, 3 * 4096, 5, 4096), 0);
	assert_int_equal(store_get_open(f->st, "p", 1, 1, &g, &m), 0);
	bool end;
	assert_int_equal(store_get_next(g, buf, &c, &end), 0);
	assert_false(end);
	n++;
	assert_int_equal(store_delete(f->st, "p", 1, 1), 1);
	assert_int_equal(tu_count_chunk_copies(f->m0), 3);
	while ((rc = store_get_next(g, buf, &c, &end)) == 0 && !end) {
		uint8_t all[3 * 4096];
		tu_fill(all, sizeof(all), 5);
		memcpy(want, all + c.offset, c.len);
		assert_memory_equal(c.data, want, c.len);
		n++;
	}
	assert_int_equal(rc, 0);
	assert_int_equal(n, 3);
	store_get_close(g);
	assert_int_equal(tu_count_chunk_copies(f->m0), 0);
	assert_int_equal(tu_count_chunk_copies(f->m1), 0);
	free(buf);
}

/* Live heap bytes of this process. */
static size_t heap_bytes(void)
{
#if defined(__SANITIZE_ADDRESS__)
	return __sanitizer_get_current_allocated_bytes();
#else
	struct mallinfo2 mi = mallinfo2();
	return mi.uordblks + mi.hblkhd;
#endif
}

#define BIG_SIZE ((size_t)64 << 20)

/* A 64 MiB checkpoint streams through the engine: the heap never grows by
 * more than a few chunks, in PUT or GET, whatever the image size. */
static void test_stream_bounded_memory(void **state)
{
	struct fixture *f = *state;
	uint8_t *buf = malloc(PROTO_MAX_CHUNK);
	struct proto_ckpt_meta m;
	struct proto_image_hash ih;
	struct proto_put_ack ack;
	struct proto_chunk c = { 0 };
	struct store_put *p;
	struct store_get *g;
	uint32_t n = (uint32_t)(BIG_SIZE / PROTO_MAX_CHUNK);
	size_t base, peak = 0;

	memset(&m, 0, sizeof(m));
	strcpy(m.process, "big");
	m.incarnation = m.sequence = 1;
	m.size = BIG_SIZE;
	m.chunk_count = n;
	proto_image_hash_init(&ih, m.size);
	for (uint32_t i = 0; i < n; i++) {
		tu_fill(buf, PROTO_MAX_CHUNK, 1000 + i);
		proto_chunk_hash(buf, PROTO_MAX_CHUNK, c.hash);
		proto_image_hash_update(&ih, (uint64_t)i * PROTO_MAX_CHUNK,
					PROTO_MAX_CHUNK, c.hash);
	}
	proto_image_hash_final(&ih, m.hash);

	base = heap_bytes();
	assert_int_equal(store_put_begin(f->st, &m, &p, &ack), 0);
	for (uint32_t i = 0; i < n; i++) {
		tu_fill(buf, PROTO_MAX_CHUNK, 1000 + i);
		c.offset = (uint64_t)i * PROTO_MAX_CHUNK;
		c.len = PROTO_MAX_CHUNK;
		c.data = buf;
		proto_chunk_hash(buf, c.len, c.hash);
		assert_int_equal(store_put_check(p, &c), 0);
		assert_int_equal(store_put_write(p, &c), 0);
		size_t h = heap_bytes();
		peak = h > peak ? h : peak;
	}
	assert_int_equal(store_put_commit(p, n, &ack), 0);
	assert_int_equal(ack.copies, 2);

	uint8_t *want = malloc(PROTO_MAX_CHUNK);
	uint32_t got = 0;
	bool end;
	int rc;
	assert_int_equal(store_get_open(f->st, "big", 0, 0, &g, &m), 0);
	while ((rc = store_get_next(g, buf, &c, &end)) == 0 && !end) {
		tu_fill(want, PROTO_MAX_CHUNK, 1000 + got);
		assert_int_equal(c.offset, (uint64_t)got * PROTO_MAX_CHUNK);
		assert_memory_equal(c.data, want, c.len);
		got++;
		size_t h = heap_bytes();
		peak = h > peak ? h : peak;
	}
	assert_int_equal(rc, 0);
	assert_int_equal(got, n);
	store_get_close(g);
	print_message("64 MiB PUT+GET: heap grew by at most %zu KiB\n",
		      peak > base ? (peak - base) / 1024 : 0);
	/* the want buffer (1 MiB) plus SQLite's page caches, far below 64 MiB */
	assert_true(peak < base + 8 * (size_t)PROTO_MAX_CHUNK);
	free(want);
	free(buf);
}

/* A PUT of a newer incarnation than the recorded one is accepted and
 * raises the fencing token: older incarnations are refused from then on. */
static void test_put_newer_incarnation_fences(void **state)
{
	struct fixture *f = *state;
	struct proto_ckpt_meta m;
	struct proto_put_ack ack;
	struct store_put *p;

	assert_int_equal(put(f->st, "p", 1, 1, 5000, 1, 4096), 0);
	assert_int_equal(put(f->st, "p", 3, 1, 5000, 2, 4096), 0);
	assert_int_equal(put(f->st, "p", 2, 9, 5000, 3, 4096), RTCMS_EFENCED);
	memset(&m, 0, sizeof(m));
	strcpy(m.process, "p");
	m.incarnation = 1;
	m.sequence = 2;
	m.size = 1;
	m.chunk_count = 1;
	assert_int_equal(store_put_begin(f->st, &m, &p, &ack), RTCMS_EFENCED);
	assert_int_equal(ack.incarnation, 3);
	assert_int_equal(get_check(f->st, "p", 0, 0, 5000, 2, NULL), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_put_get_roundtrip, setup, teardown),
		cmocka_unit_test_setup_teardown(test_idempotent_and_conflicting_put, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_chunks_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_list_filters_and_pages, setup, teardown),
		cmocka_unit_test_setup_teardown(test_abort_keeps_other_pins, setup, teardown),
		cmocka_unit_test_setup_teardown(test_stream_bounded_memory, setup, teardown),
		cmocka_unit_test_setup_teardown(test_put_newer_incarnation_fences, setup, teardown),
		cmocka_unit_test_setup_teardown(test_abort_removes_its_files, setup, teardown),
		cmocka_unit_test_setup_teardown(test_delete_during_get, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
