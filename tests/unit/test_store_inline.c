/*
 * test_store_inline.c - small PUTs keep their chunks inline in meta.db:
 * no chunk file, read back (plain and sealed), deduplicated against
 * files, garbage collected by DELETE and retention (not while a GET
 * pins them), read-repaired and scrubbed per mirror, carried to a mirror
 * that missed them; and the chunks counted per data key id.
 */
#include "store_fixture.h"

#include "stream/chunk.h"
#include "util/datakey.h"

static int setup_inline(void **state)
{
	return setup_inline_max(state, 0); /* the default: 64 KiB */
}

/* A PUT of 4 KiB: read back, no chunk file on either mirror, its chunk
 * inline on both, counted as stored; the same PUT again is idempotent. */
static void test_small_put_inline(void **state)
{
	struct fixture *f = *state;
	struct proto_scrub_reply r;

	assert_int_equal(put(f->st, "p", 1, 1, 4096, 3, 4096), 0);
	assert_int_equal(last_stats.new_chunks, 0);
	assert_int_equal(last_stats.inline_chunks, 1);
	assert_int_equal(get_check(f->st, "p", 1, 1, 4096, 3, NULL), 0);
	assert_int_equal(tu_count_chunk_copies(f->m0), 0);
	assert_int_equal(tu_count_chunk_copies(f->m1), 0);
	assert_int_equal(tu_count_inline(f->m0), 1);
	assert_int_equal(tu_count_inline(f->m1), 1);
	assert_int_equal(store_status(f->st, &r), 0);
	assert_int_equal(r.chunks, 1);
	assert_int_equal(r.bytes, 4096);
	assert_int_equal(put(f->st, "p", 1, 1, 4096, 3, 4096), PUT_STORED);
	/* 64 KiB in 16 chunks is small; one byte more is not */
	assert_int_equal(put(f->st, "q", 1, 1, 64 << 10, 4, 4096), 0);
	assert_int_equal(tu_count_inline(f->m0), 17);
	assert_int_equal(put(f->st, "r", 1, 1, (64 << 10) + 1, 5, 4096), 0);
	assert_int_equal(tu_count_chunk_copies(f->m0), 17);
	assert_int_equal(tu_count_inline(f->m1), 17);
	assert_int_equal(get_check(f->st, "q", 1, 1, 64 << 10, 4, NULL), 0);
	assert_int_equal(get_check(f->st, "r", 1, 1, (64 << 10) + 1, 5, NULL), 0);
	/* after a restart (the sweep keeps what is referenced) */
	store_free(f->st);
	open_store(f);
	assert_int_equal(tu_count_inline(f->m0), 17);
	assert_int_equal(get_check(f->st, "p", 1, 1, 4096, 3, NULL), 0);
}

/* A chunk stored as a file already is referenced, not copied inline; a
 * chunk kept inline is written as a file by a big PUT that has it, and
 * both stay readable whichever checkpoint goes. */
static void test_dedup_with_files(void **state)
{
	struct fixture *f = *state;

	/* big: 5 chunks of 16 KiB (content 9) as files */
	assert_int_equal(put(f->st, "big", 1, 1, 80 << 10, 9, 16 << 10), 0);
	assert_int_equal(tu_count_chunk_copies(f->m0), 5);
	/* small: the first 16 KiB of the same content: the same chunk */
	assert_int_equal(put(f->st, "small", 1, 1, 16 << 10, 9, 16 << 10), 0);
	assert_int_equal(tu_count_inline(f->m0), 0);
	assert_int_equal(store_delete(f->st, "big", 0, 0), 1);
	assert_int_equal(tu_count_chunk_copies(f->m0), 1);
	assert_int_equal(get_check(f->st, "small", 1, 1, 16 << 10, 9, NULL), 0);
	assert_int_equal(store_delete(f->st, "small", 0, 0), 1);
	assert_int_equal(tu_count_chunk_copies(f->m0), 0);

	/* the other way round: inline first, then a big PUT with it */
	assert_int_equal(put(f->st, "small", 1, 2, 16 << 10, 9, 16 << 10), 0);
	assert_int_equal(tu_count_inline(f->m0), 1);
	assert_int_equal(put(f->st, "big", 1, 2, 80 << 10, 9, 16 << 10), 0);
	assert_int_equal(tu_count_chunk_copies(f->m0), 5);
	assert_int_equal(store_delete(f->st, "small", 0, 0), 1);
	assert_int_equal(tu_count_inline(f->m0), 1); /* big references it */
	assert_int_equal(get_check(f->st, "big", 1, 2, 80 << 10, 9, NULL), 0);
	assert_int_equal(store_delete(f->st, "big", 0, 0), 1);
	assert_int_equal(tu_count_inline(f->m0), 0);
	assert_int_equal(tu_count_inline(f->m1), 0);
	assert_int_equal(tu_count_chunk_copies(f->m1), 0);
}

/* Retention and DELETE remove inline chunks with their last reference,
 * on every mirror; shared ones stay. */
static void test_retention_and_delete(void **state)
{
	struct fixture *f = *state;

	for (uint64_t seq = 1; seq <= 5; seq++)
		assert_int_equal(put(f->st, "p", 1, seq, 8192, 100 + seq, 8192), 0);
	/* retain 2: sequences 4 and 5 */
	assert_int_equal(tu_count_inline(f->m0), 2);
	assert_int_equal(tu_count_inline(f->m1), 2);
	assert_int_equal(get_check(f->st, "p", 1, 5, 8192, 105, NULL), 0);
	/* another process with the same content shares the chunk */
	assert_int_equal(put(f->st, "q", 1, 1, 8192, 105, 8192), 0);
	assert_int_equal(tu_count_inline(f->m0), 2);
	assert_int_equal(store_delete(f->st, "p", 0, 0), 2);
	assert_int_equal(tu_count_inline(f->m0), 1);
	assert_int_equal(get_check(f->st, "q", 1, 1, 8192, 105, NULL), 0);
	assert_int_equal(store_delete(f->st, "q", 1, 1), 1);
	assert_int_equal(tu_count_inline(f->m0), 0);
	assert_int_equal(tu_count_inline(f->m1), 0);
	assert_int_equal(tu_meta_query(f->m0, "SELECT count(*) FROM chunks"), 0);
}

/* A checkpoint deleted while a GET reads it stays readable to the end
 * (the GET pins its inline chunks); they go when the GET closes. */
static void test_delete_during_get(void **state)
{
	struct fixture *f = *state;
	struct proto_ckpt_meta m;
	struct store_get *g;
	struct proto_chunk c = { 0 };
	uint8_t *buf = malloc(CHUNKFILE_MAX), all[3 * 4096];
	int n = 0, rc;
	bool end;

	tu_fill(all, sizeof(all), 5);
	assert_int_equal(put(f->st, "p", 1, 1, sizeof(all), 5, 4096), 0);
	assert_int_equal(store_get_open(f->st, "p", 1, 1, &g, &m), 0);
	assert_int_equal(store_delete(f->st, "p", 1, 1), 1);
	assert_int_equal(tu_count_inline(f->m0), 3);
	while ((rc = store_get_next(g, buf, &c, &end)) == 0 && !end) {
		assert_memory_equal(c.data, all + c.offset, c.len);
		n++;
	}
	assert_int_equal(rc, 0);
	assert_int_equal(n, 3);
	store_get_close(g);
	assert_int_equal(tu_count_inline(f->m0), 0);
	assert_int_equal(tu_count_inline(f->m1), 0);
	free(buf);
}

/* An inline copy damaged on one mirror: a GET serves the good one and
 * rewrites it; one missing on the other: a scrub reports it, a repairing
 * scrub restores it, a second scrub finds all good. */
static void test_repair_and_scrub(void **state)
{
	struct fixture *f = *state;
	struct proto_scrub_reply r;
	uint32_t repaired = 0;

	assert_int_equal(put(f->st, "p", 1, 1, 4096, 8, 4096), 0);
	assert_int_equal(tu_meta_exec(f->m0, "UPDATE inline_chunks SET form ="
				      " zeroblob(length(form))"), 0);
	assert_int_equal(get_check(f->st, "p", 1, 1, 4096, 8, &repaired), 0);
	assert_int_equal(repaired, 1);
	assert_int_equal(get_check(f->st, "p", 1, 1, 4096, 8, &repaired), 0);
	assert_int_equal(repaired, 0);
	assert_int_equal(tu_count_chunk_copies(f->m0), 0); /* repaired inline */
	/* a copy longer than any stored form is corrupt too (never copied
	 * beyond the chunk's largest form) */
	assert_int_equal(tu_meta_exec(f->m1, "UPDATE inline_chunks SET form ="
				      " form || zeroblob(2000000)"), 0);
	assert_int_equal(get_check(f->st, "p", 1, 1, 4096, 8, &repaired), 0);
	assert_int_equal(store_scrub(f->st, false, &r), 0);
	assert_int_equal(r.mirrors[1].corrupt, 1);
	assert_int_equal(store_scrub(f->st, true, &r), 0);
	assert_int_equal(r.mirrors[1].repaired, 1);
	assert_int_equal(tu_meta_query(f->m1, "SELECT length(form) FROM inline_chunks"), 4096);

	assert_int_equal(tu_meta_exec(f->m1, "DELETE FROM inline_chunks"), 0);
	/* one byte short */
	assert_int_equal(tu_meta_exec(f->m0, "UPDATE inline_chunks SET form = substr(form, 2)"),
			 0);
	assert_int_equal(store_scrub(f->st, false, &r), 0);
	assert_int_equal(r.chunks, 1);
	assert_int_equal(r.unrepairable, 1);
	assert_int_equal(r.mirrors[0].corrupt, 1);
	assert_int_equal(r.mirrors[1].missing, 1);
	/* nothing good anywhere: the GET fails, nothing is served */
	assert_int_equal(get_check(f->st, "p", 1, 1, 4096, 8, NULL), RTCMS_ECORRUPT);
	/* a good copy on mirror 0 again: the repairing scrub fills mirror 1 */
	assert_int_equal(store_delete(f->st, "p", 0, 0), 1);
	assert_int_equal(put(f->st, "p", 1, 1, 4096, 8, 4096), 0);
	assert_int_equal(tu_meta_exec(f->m1, "DELETE FROM inline_chunks"), 0);
	assert_int_equal(store_scrub(f->st, true, &r), 0);
	assert_int_equal(r.mirrors[1].missing, 1);
	assert_int_equal(r.mirrors[1].repaired, 1);
	assert_int_equal(tu_count_inline(f->m1), 1);
	assert_int_equal(store_scrub(f->st, false, &r), 0);
	assert_int_equal(r.mirrors[0].chunks, 1);
	assert_int_equal(r.mirrors[1].chunks, 1);
	assert_int_equal(r.mirrors[1].missing + r.mirrors[1].corrupt, 0);
}

static int fail_m1_meta(const char *site, const char *dir)
{
	return strcmp(site, "meta_commit") == 0 && strstr(dir, "/m1") ? RTCMS_EIO : 0;
}

/* A mirror that missed a small PUT (offline then) gets it at the next
 * start with the newest metadata: it alone serves it afterwards. */
static void test_resync_missed_mirror(void **state)
{
	struct fixture *f = *state;
	struct proto_scrub_reply r;

	store_fault_hook = fail_m1_meta;
	assert_int_equal(put(f->st, "p", 1, 1, 4096, 11, 4096), 0);
	store_fault_hook = NULL;
	assert_int_equal(store_status(f->st, &r), 0);
	assert_int_equal(r.mirrors[1].online, 0);
	assert_int_equal(tu_count_inline(f->m1), 0);
	store_free(f->st);
	open_store(f);
	assert_int_equal(tu_count_inline(f->m1), 1);
	store_free(f->st);
	/* mirror 1 alone */
	struct store_options o = { .mirrors = &f->mirrors[1], .mirror_count = 1,
				   .now_ms = fake_now, .now_ctx = f };
	assert_int_equal(store_open(&o, &f->st), 0);
	assert_int_equal(get_check(f->st, "p", 1, 1, 4096, 11, NULL), 0);
}

/* A sealed small PUT: kept inline in its sealed form (no plaintext in
 * meta.db), served sealed with its key id and sum, its sum checked when
 * read; chunks are counted per key id until their last reference goes. */
static void test_sealed_inline_and_keys(void **state)
{
	struct fixture *f = *state;
	static const char keytext[] = "rtcms-data-key-v1 7 aes-256-gcm "
		"000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f\n";
	struct datakey_ring ring;
	char err[256];
	uint8_t plain[4000], sealed[sizeof(plain) + PROTO_CHUNK_TAG];
	struct proto_chunk c = { 0 };
	struct proto_ckpt_meta m;
	struct proto_image_hash ih;
	struct proto_put_ack ack;
	struct store_put *p;
	struct proto_keys_reply k;
	bool more;

	assert_int_equal(datakey_parse(keytext, sizeof(keytext) - 1, &ring, err, sizeof(err)), 0);
	tu_fill(plain, sizeof(plain), 21);
	c.len = sizeof(plain);
	c.key_id = 7;
	assert_int_equal(stream_chunk_seal(&ring.keys[0], plain, sizeof(plain), c.hash, sealed,
					   c.sum), 0);
	c.data = sealed;
	meta_for(&m, "s", 1, 1, sizeof(plain));
	m.chunk_count = 1;
	proto_image_hash_init(&ih, sizeof(plain));
	proto_image_hash_update(&ih, 0, sizeof(plain), c.hash);
	proto_image_hash_final(&ih, m.hash);
	assert_int_equal(store_put_begin(f->st, &m, &p, &ack), 0);
	assert_int_equal(store_put_check(p, &c), 0);
	assert_int_equal(store_put_write(p, &c), 0);
	assert_int_equal(store_put_commit(p, 1, &ack), 0);
	assert_int_equal(tu_count_inline(f->m0), 1);
	assert_int_equal(tu_meta_query(f->m0, "SELECT length(form) FROM inline_chunks"),
			 sizeof(plain) + CHUNKFILE_SEALED_EXTRA);
	assert_int_equal(put(f->st, "plain", 1, 1, 2048, 4, 2048), 0);

	/* served sealed, as it came */
	struct store_get *g;
	struct proto_chunk got;
	uint8_t *buf = malloc(CHUNKFILE_MAX);
	bool end;
	assert_int_equal(store_get_open(f->st, "s", 1, 1, &g, &m), 0);
	assert_int_equal(store_get_next(g, buf, &got, &end), 0);
	assert_false(end);
	assert_int_equal(got.key_id, 7);
	assert_int_equal(got.len, sizeof(plain));
	assert_memory_equal(got.sum, c.sum, PROTO_CHUNK_SUM);
	assert_memory_equal(got.data, sealed, sizeof(sealed));
	assert_null(memmem(buf, CHUNKFILE_MAX, plain + 100, 64));
	store_get_close(g);

	assert_int_equal(store_keys(f->st, 0, &k, &more), 0);
	assert_false(more);
	assert_int_equal(k.unknown_chunks, 0);
	assert_int_equal(k.count, 2);
	assert_int_equal(k.keys[0].key_id, 0);
	assert_int_equal(k.keys[0].chunks, 1);
	assert_int_equal(k.keys[0].bytes, 2048);
	assert_int_equal(k.keys[1].key_id, 7);
	assert_int_equal(k.keys[1].chunks, 1);
	assert_int_equal(k.keys[1].bytes, sizeof(plain));
	assert_int_equal(store_keys(f->st, 1, &k, &more), 0);
	assert_int_equal(k.count, 1);
	assert_int_equal(k.keys[0].key_id, 7);

	/* rows of before key ids (an older meta.db): read from the sealed
	 * form and recorded again at the next open */
	store_free(f->st);
	assert_int_equal(tu_meta_exec(f->m0, "UPDATE chunks SET key_id = NULL"), 0);
	assert_int_equal(tu_meta_exec(f->m1, "UPDATE chunks SET key_id = NULL"), 0);
	open_store(f);
	assert_int_equal(store_keys(f->st, 0, &k, &more), 0);
	assert_int_equal(k.unknown_chunks, 0);
	assert_int_equal(k.count, 2);
	assert_int_equal(k.keys[1].key_id, 7);
	assert_int_equal(tu_meta_query(f->m1, "SELECT count(*) FROM chunks WHERE key_id = 7"),
			 1);

	/* one bit of the sealed bytes flipped on both mirrors: the sum
	 * finds it, nothing is served */
	static const char flip[] = "UPDATE inline_chunks SET form = substr(form, 1, 40) ||"
				   " zeroblob(1) || substr(form, 42) WHERE length(form) > 4000";
	assert_int_equal(tu_meta_exec(f->m0, flip), 0);
	assert_int_equal(tu_meta_exec(f->m1, flip), 0);
	assert_int_equal(store_get_open(f->st, "s", 1, 1, &g, &m), 0);
	assert_int_equal(store_get_next(g, buf, &got, &end), RTCMS_ECORRUPT);
	store_get_close(g);
	free(buf);
	/* with no good copy its key id cannot be read: it stays unknown */
	store_free(f->st);
	static const char unkey[] = "UPDATE chunks SET key_id = NULL WHERE size = 4000";
	assert_int_equal(tu_meta_exec(f->m0, unkey), 0);
	assert_int_equal(tu_meta_exec(f->m1, unkey), 0);
	open_store(f);
	assert_int_equal(store_keys(f->st, 0, &k, &more), 0);
	assert_int_equal(k.unknown_chunks, 1);
	assert_int_equal(k.unknown_bytes, sizeof(plain));
	assert_int_equal(k.count, 1);

	/* the key seals nothing kept once its last checkpoint goes */
	assert_int_equal(store_delete(f->st, "s", 0, 0), 1);
	assert_int_equal(store_keys(f->st, 0, &k, &more), 0);
	assert_int_equal(k.count, 1);
	assert_int_equal(k.keys[0].key_id, 0);
	datakey_ring_wipe(&ring);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_small_put_inline, setup_inline, teardown),
		cmocka_unit_test_setup_teardown(test_dedup_with_files, setup_inline, teardown),
		cmocka_unit_test_setup_teardown(test_retention_and_delete, setup_inline, teardown),
		cmocka_unit_test_setup_teardown(test_delete_during_get, setup_inline, teardown),
		cmocka_unit_test_setup_teardown(test_repair_and_scrub, setup_inline, teardown),
		cmocka_unit_test_setup_teardown(test_resync_missed_mirror, setup_inline, teardown),
		cmocka_unit_test_setup_teardown(test_sealed_inline_and_keys, setup_inline,
						teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
