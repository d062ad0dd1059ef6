/*
 * test_store.c - the store engine: PUT/GET, idempotency, retention and
 * garbage collection, shared chunks, claims (with an injected clock),
 * concurrent claims, fencing, mirror repair, resync at open, stale
 * metadata, a failing mirror (fault injection), and delta checkpoints
 * (chains assembled by GET, retention and claims keeping chains whole,
 * state hash checks, the upgrade of an old meta.db), and compressed
 * chunk files (fewer bytes on disk, compression toggled between opens,
 * scrub repair and resync of compressed copies).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <dirent.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#if defined(__SANITIZE_ADDRESS__)
/* from the ASan runtime (sanitizer/allocator_interface.h, not shipped
 * with every compiler) */
size_t __sanitizer_get_current_allocated_bytes(void);
#else
#include <malloc.h>
#endif

#include "area/delta.h"
#include "area/image.h"
#include "log/log.h"
#include "proto/msg.h"
#include "rtcms_error.h"
#include "store/chunkfile.h"
#include <sqlite3.h>
#include "store/store.h"
#include "testutil.h"
#include "util/bytes.h"

struct fixture {
	char *dir;
	char m0[512], m1[512];
	const char *mirrors[2];
	uint64_t clock;
	struct store *st;
	unsigned retain;
	enum store_compress compress;  /* for open_store */
	int compress_level;
};

static uint64_t fake_now(void *ctx)
{
	return ((struct fixture *)ctx)->clock;
}

static void open_store(struct fixture *f)
{
	struct store_options o = {
		.mirrors = f->mirrors, .mirror_count = 2, .retain = f->retain,
		.now_ms = fake_now, .now_ctx = f,
		.compress = f->compress, .compress_level = f->compress_level,
	};
	assert_int_equal(store_open(&o, &f->st), 0);
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	f->dir = tu_tmpdir("store");
	snprintf(f->m0, sizeof(f->m0), "%s/m0", f->dir);
	snprintf(f->m1, sizeof(f->m1), "%s/m1", f->dir);
	f->mirrors[0] = f->m0;
	f->mirrors[1] = f->m1;
	f->clock = 1000000;
	f->retain = 2;
	open_store(f);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	store_fault_hook = NULL;
	store_free(f->st);
	tu_rmrf(f->dir);
	free(f->dir);
	free(f);
	return 0;
}

/* What the last put_data() found: new chunks and their size on disk. */
static struct store_put_stats last_stats;

/* PUT size bytes of data as m (its image hash and chunk count are filled
 * in here) in chunks of chunk bytes; returns the engine's result (1: it was
 * stored already) and fills *ack. */
static int put_data(struct store *st, struct proto_ckpt_meta *m, const uint8_t *data,
		    size_t size, size_t chunk, struct proto_put_ack *ack)
{
	struct proto_image_hash ih;
	struct store_put *p;
	uint32_t count = 0;

	proto_image_hash_init(&ih, size);
	for (size_t off = 0; off < size; off += chunk, count++) {
		uint8_t h[PROTO_HASH_SIZE];
		size_t len = size - off < chunk ? size - off : chunk;
		proto_chunk_hash(data + off, len, h);
		proto_image_hash_update(&ih, off, (uint32_t)len, h);
	}
	proto_image_hash_final(&ih, m->hash);
	m->chunk_count = count;
	memset(ack, 0, sizeof(*ack));
	int rc = store_put_begin(st, m, &p, ack);
	if (rc != 0)
		return rc;
	for (size_t off = 0; off < size && rc == 0; off += chunk) {
		struct proto_chunk c;
		c.offset = off;
		c.len = (uint32_t)(size - off < chunk ? size - off : chunk);
		c.data = data + off;
		proto_chunk_hash(c.data, c.len, c.hash);
		rc = store_put_check(p, &c);
		if (rc == 0)
			rc = store_put_write(p, &c);
	}
	if (rc) {
		store_put_abort(p);
		return rc;
	}
	store_put_stats(p, &last_stats);
	return store_put_commit(p, count, ack);
}

/* The metadata of a test checkpoint of size bytes (node 7, spec "spec"). */
static void meta_for(struct proto_ckpt_meta *m, const char *process, uint64_t inc,
		     uint64_t seq, size_t size)
{
	memset(m, 0, sizeof(*m));
	snprintf(m->process, sizeof(m->process), "%s", process);
	m->incarnation = inc;
	m->sequence = seq;
	m->node = 7;
	m->size = size;
	m->spec = (const uint8_t *)"spec";
	m->spec_len = 4;
}

/* Store size bytes of content seed as (process, inc, seq) in chunks of
 * chunk bytes; returns the engine's result. */
static int put(struct store *st, const char *process, uint64_t inc,
	       uint64_t seq, size_t size, uint64_t seed, size_t chunk)
{
	uint8_t *data = malloc(size ? size : 1);
	struct proto_ckpt_meta m;
	struct proto_put_ack ack;

	tu_fill(data, size, seed);
	meta_for(&m, process, inc, seq, size);
	int rc = put_data(st, &m, data, size, chunk, &ack);
	free(data);
	return rc;
}

/* Read (process, inc, seq) back and compare with content seed. */
static int get_check(struct store *st, const char *process, uint64_t inc,
		     uint64_t seq, size_t size, uint64_t seed, uint32_t *repaired)
{
	struct proto_ckpt_meta m;
	struct store_get *g;
	uint8_t *want = malloc(size ? size : 1);
	uint8_t *buf = malloc(PROTO_MAX_CHUNK);
	struct proto_chunk c;
	uint64_t got = 0;
	int rc;

	tu_fill(want, size, seed);
	rc = store_get_open(st, process, inc, seq, &g, &m);
	if (rc)
		goto out;
	assert_int_equal(m.size, size);
	assert_int_equal(m.spec_len, 4);
	assert_memory_equal(m.spec, "spec", 4);
	while ((rc = store_get_next(g, buf, &c)) == 0) {
		assert_int_equal(c.offset, got);
		assert_memory_equal(c.data, want + c.offset, c.len);
		got += c.len;
	}
	if (repaired)
		*repaired = store_get_repaired(g);
	store_get_close(g);
	if (rc == RTCMS_EEOF)
		rc = got == size ? 0 : RTCMS_EPROTO;
out:
	free(want);
	free(buf);
	return rc;
}

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
	assert_int_equal(tu_count_chunk_files(f->m0), tu_count_chunk_files(f->m1));
	assert_int_equal(tu_count_chunk_files(f->m0), 4 + 25);
}

static void test_idempotent_and_conflicting_put(void **state)
{
	struct fixture *f = *state;
	assert_int_equal(put(f->st, "p", 1, 1, 10000, 1, 4096), 0);
	assert_int_equal(put(f->st, "p", 1, 1, 10000, 1, 4096), 1); /* same: done */
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
	struct proto_chunk c = { 0, { 0 }, data, 100 };

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

static void test_retention_and_gc(void **state)
{
	struct fixture *f = *state;
	struct proto_list_entry e[PROTO_LIST_MAX];
	bool more;

	for (uint64_t s = 1; s <= 5; s++)
		assert_int_equal(put(f->st, "p", 1, s, 8192, s, 4096), 0);
	assert_int_equal(store_list(f->st, 0, "p", 0, 100, e, &more), 2);
	assert_int_equal(e[0].sequence, 4);
	assert_int_equal(e[1].sequence, 5);
	assert_int_equal(get_check(f->st, "p", 1, 3, 8192, 3, NULL), RTCMS_ENOENT);
	/* chunk files of removed sequences are gone from both mirrors */
	assert_int_equal(tu_count_chunk_files(f->m0), 4);
	assert_int_equal(tu_count_chunk_files(f->m1), 4);
}

static void test_shared_chunks_survive(void **state)
{
	struct fixture *f = *state;
	/* the same content under two processes shares its chunks */
	assert_int_equal(put(f->st, "a", 1, 1, 16384, 9, 4096), 0);
	assert_int_equal(put(f->st, "b", 1, 1, 16384, 9, 4096), 0);
	assert_int_equal(tu_count_chunk_files(f->m0), 4);
	assert_int_equal(store_delete(f->st, "a", 0, 0), 1);
	assert_int_equal(tu_count_chunk_files(f->m0), 4);
	assert_int_equal(get_check(f->st, "b", 1, 1, 16384, 9, NULL), 0);
	assert_int_equal(store_delete(f->st, "b", 1, 1), 1);
	assert_int_equal(tu_count_chunk_files(f->m0), 0);
	assert_int_equal(store_delete(f->st, "b", 1, 1), RTCMS_ENOENT);
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

static void test_claims(void **state)
{
	struct fixture *f = *state;
	struct proto_claim_ok ok, ok2;
	struct proto_commit_ok cok;
	struct proto_error err;

	assert_int_equal(store_claim(f->st, "p", "m1", 1000, 0, &ok, &err), RTCMS_ENOENT);
	assert_int_equal(put(f->st, "p", 1, 1, 5000, 1, 4096), 0);
	assert_int_equal(store_claim(f->st, "p", "m1", 1000, 0, &ok, &err), 0);
	assert_int_equal(ok.incarnation, 1);
	assert_int_equal(ok.sequence, 1);
	assert_int_equal(ok.expires_ms, f->clock + 1000);
	/* another claimant is refused, told who holds it and until when */
	assert_int_equal(store_claim(f->st, "p", "m2", 1000, 0, &ok2, &err), RTCMS_ECLAIMED);
	assert_string_equal(err.who, "m1");
	assert_int_equal(err.detail, f->clock + 1000);
	/* the holder renews: same claim id */
	f->clock += 500;
	assert_int_equal(store_claim(f->st, "p", "m1", 1000, 0, &ok2, &err), 0);
	assert_int_equal(ok2.claim_id, ok.claim_id);
	/* the claimed checkpoint is neither deleted nor retained away */
	assert_int_equal(store_delete(f->st, "p", 1, 1), RTCMS_ECLAIMED);
	for (uint64_t s = 2; s <= 4; s++)
		assert_int_equal(put(f->st, "p", 1, s, 5000, s, 4096), 0);
	assert_int_equal(get_check(f->st, "p", 1, 1, 5000, 1, NULL), 0);
	/* after the lease, the other claimant wins */
	f->clock += 1001;
	assert_int_equal(store_claim(f->st, "p", "m2", 1000, 0, &ok2, &err), 0);
	assert_int_not_equal(ok2.claim_id, ok.claim_id);
	assert_int_equal(ok2.sequence, 4);
	/* the old claim can no longer commit or release */
	assert_int_equal(store_commit(f->st, "p", ok.claim_id, 9, &cok), RTCMS_ECLAIMED);
	assert_int_equal(store_release(f->st, "p", ok.claim_id), RTCMS_ENOENT);
	/* commit moves the process and raises the incarnation */
	assert_int_equal(store_commit(f->st, "p", ok2.claim_id, 9, &cok), 0);
	assert_int_equal(cok.incarnation, 2);
	assert_int_equal(cok.node, 9);
	/* a retried commit gives the same answer, not a second increment */
	assert_int_equal(store_commit(f->st, "p", ok2.claim_id, 9, &cok), 0);
	assert_int_equal(cok.incarnation, 2);
	/* fencing: the old incarnation is refused, the new one accepted */
	assert_int_equal(put(f->st, "p", 1, 5, 5000, 5, 4096), RTCMS_EFENCED);
	assert_int_equal(put(f->st, "p", 2, 5, 5000, 5, 4096), 0);
	/* release */
	assert_int_equal(store_claim(f->st, "p", "m3", 1000, 0, &ok, &err), 0);
	assert_int_equal(store_release(f->st, "p", ok.claim_id), 0);
	assert_int_equal(store_claim(f->st, "p", "m4", 1000, 0, &ok, &err), 0);
}

/* A claim after a node gave up on the program is granted once: its commit
 * is recorded, and a second one is refused (ESTATE) and fails the program
 * for good; a release does not count, and deleting the process resets it. */
static void test_gave_up_claims(void **state)
{
	struct fixture *f = *state;
	struct proto_claim_ok ok;
	struct proto_commit_ok cok;
	struct proto_error err;

	assert_int_equal(put(f->st, "p", 1, 1, 5000, 1, 4096), 0);
	assert_int_equal(store_claim(f->st, "p", "m1", 1000, 0x80, &ok, &err), RTCMS_EINVAL);
	/* released: not a move */
	assert_int_equal(store_claim(f->st, "p", "m1", 1000, PROTO_CLAIM_F_GAVE_UP, &ok,
				     &err), 0);
	assert_int_equal(store_release(f->st, "p", ok.claim_id), 0);
	/* committed: the one move */
	assert_int_equal(store_claim(f->st, "p", "m2", 1000, PROTO_CLAIM_F_GAVE_UP, &ok,
				     &err), 0);
	assert_int_equal(store_commit(f->st, "p", ok.claim_id, 7, &cok), 0);
	assert_int_equal(cok.incarnation, 2);
	assert_int_equal(put(f->st, "p", 2, 2, 5000, 2, 4096), 0);
	/* another manager (or this one restarted) asks again: refused */
	memset(&err, 0, sizeof(err));
	assert_int_equal(store_claim(f->st, "p", "m1", 1000, PROTO_CLAIM_F_GAVE_UP, &ok,
				     &err), RTCMS_ESTATE);
	assert_int_equal(err.code, RTCMS_ESTATE);
	assert_non_null(strstr(err.text, "failed for good"));
	/* from now on no claim restores it: a node failure neither, nor a
	 * store that restarted */
	assert_int_equal(store_claim(f->st, "p", "m1", 1000, 0, &ok, &err), RTCMS_ESTATE);
	store_free(f->st);
	f->st = NULL;
	open_store(f);
	assert_int_equal(store_claim(f->st, "p", "m3", 1000, 0, &ok, &err), RTCMS_ESTATE);
	/* the whole process deleted (forgotten) and run again: allowed again */
	assert_int_equal(store_delete(f->st, "p", 0, 0), 2);
	assert_int_equal(put(f->st, "p", 3, 1, 5000, 3, 4096), 0);
	assert_int_equal(store_claim(f->st, "p", "m1", 1000, PROTO_CLAIM_F_GAVE_UP, &ok,
				     &err), 0);
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
	struct proto_chunk c;

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
	assert_int_equal(tu_count_chunk_files(f->m0), 1);
	assert_int_equal(tu_count_chunk_files(f->m1), 1);
}

struct racer {
	struct store *st;
	pthread_barrier_t *bar;
	const char *name;
	int wins;
	uint64_t ids[100];
};

static void *race(void *arg)
{
	struct racer *r = arg;
	for (int round = 0; round < 100; round++) {
		struct proto_claim_ok ok;
		struct proto_error err;
		pthread_barrier_wait(r->bar);
		int rc = store_claim(r->st, "p", r->name, 60000, 0, &ok, &err);
		r->ids[round] = rc == 0 ? ok.claim_id : 0;
		if (rc == 0)
			r->wins++;
		else
			assert_int_equal(rc, RTCMS_ECLAIMED);
		pthread_barrier_wait(r->bar); /* both have tried */
		if (rc == 0)
			assert_int_equal(store_release(r->st, "p", ok.claim_id), 0);
		pthread_barrier_wait(r->bar); /* released before the next round */
	}
	return NULL;
}

static void test_concurrent_claims(void **state)
{
	struct fixture *f = *state;
	pthread_barrier_t bar;
	struct racer a = { f->st, &bar, "m1", 0, { 0 } };
	struct racer b = { f->st, &bar, "m2", 0, { 0 } };
	pthread_t ta, tb;

	assert_int_equal(put(f->st, "p", 1, 1, 100, 1, 100), 0);
	pthread_barrier_init(&bar, NULL, 2);
	pthread_create(&ta, NULL, race, &a);
	pthread_create(&tb, NULL, race, &b);
	pthread_join(ta, NULL);
	pthread_join(tb, NULL);
	pthread_barrier_destroy(&bar);
	assert_int_equal(a.wins + b.wins, 100);
	for (int i = 0; i < 100; i++)
		assert_true((a.ids[i] != 0) != (b.ids[i] != 0)); /* exactly one */
}

static void flip_byte(const char *path)
{
	FILE *fp = fopen(path, "r+b");
	assert_non_null(fp);
	int c = fgetc(fp);
	fseek(fp, 0, SEEK_SET);
	fputc(c ^ 0xff, fp);
	fclose(fp);
}

/* Paths of the chunk files of content seed (chunks of 4096). */
static void chunk_path(const char *mirror, size_t size, uint64_t seed, int idx,
		       char *out, size_t len)
{
	uint8_t *data = malloc(size), h[PROTO_HASH_SIZE];
	tu_fill(data, size, seed);
	size_t off = (size_t)idx * 4096;
	size_t n = size - off < 4096 ? size - off : 4096;
	proto_chunk_hash(data + off, n, h);
	chunkfile_path(mirror, h, out, len);
	free(data);
}

static void test_read_repair_and_scrub(void **state)
{
	struct fixture *f = *state;
	char p0[4200], p1[4200], p2[4200];
	uint32_t repaired = 0;
	struct proto_scrub_reply r;

	assert_int_equal(put(f->st, "p", 1, 1, 4 * 4096, 5, 4096), 0);
	/* mirror 0 (read first): one corrupt, one truncated, one deleted */
	chunk_path(f->m0, 4 * 4096, 5, 0, p0, sizeof(p0));
	chunk_path(f->m0, 4 * 4096, 5, 1, p1, sizeof(p1));
	chunk_path(f->m0, 4 * 4096, 5, 2, p2, sizeof(p2));
	flip_byte(p0);
	assert_int_equal(truncate(p1, 100), 0);
	assert_int_equal(unlink(p2), 0);
	assert_int_equal(get_check(f->st, "p", 1, 1, 4 * 4096, 5, &repaired), 0);
	assert_int_equal(repaired, 3);
	/* repaired in place: a scrub now finds nothing */
	assert_int_equal(store_scrub(f->st, true, &r), 0);
	assert_int_equal(r.mirrors[0].corrupt + r.mirrors[0].missing, 0);
	assert_int_equal(r.unrepairable, 0);
	assert_int_equal(r.mirrors[0].chunks, 4);

	/* damage mirror 1: scrub reports and repairs; a second scrub is clean */
	chunk_path(f->m1, 4 * 4096, 5, 3, p0, sizeof(p0));
	chunk_path(f->m1, 4 * 4096, 5, 0, p1, sizeof(p1));
	flip_byte(p0);
	unlink(p1);
	assert_int_equal(store_scrub(f->st, false, &r), 0);
	assert_int_equal(r.mirrors[1].corrupt, 1);
	assert_int_equal(r.mirrors[1].missing, 1);
	assert_int_equal(r.mirrors[1].repaired, 0);
	assert_int_equal(store_scrub(f->st, true, &r), 0);
	assert_int_equal(r.mirrors[1].repaired, 2);
	assert_int_equal(store_scrub(f->st, true, &r), 0);
	assert_int_equal(r.mirrors[1].corrupt + r.mirrors[1].missing, 0);

	/* both copies bad: unrepairable, reported, and GET says so */
	chunk_path(f->m0, 4 * 4096, 5, 1, p0, sizeof(p0));
	chunk_path(f->m1, 4 * 4096, 5, 1, p1, sizeof(p1));
	flip_byte(p0);
	flip_byte(p1);
	assert_int_equal(store_scrub(f->st, true, &r), 0);
	assert_int_equal(r.unrepairable, 1);
	assert_int_equal(get_check(f->st, "p", 1, 1, 4 * 4096, 5, NULL), RTCMS_ECORRUPT);
}

static void test_resync_wiped_mirror(void **state)
{
	struct fixture *f = *state;
	char cmd[1200];

	assert_int_equal(put(f->st, "p", 1, 1, 40000, 1, 4096), 0);
	assert_int_equal(put(f->st, "q", 1, 1, 40000, 2, 4096), 0);
	store_free(f->st);
	f->st = NULL;
	tu_rmrf(f->m1);
	open_store(f);
	assert_int_equal(tu_count_chunk_files(f->m1), tu_count_chunk_files(f->m0));
	/* mirror 1 alone now holds everything: wipe mirror 0's chunks */
	store_free(f->st);
	snprintf(cmd, sizeof(cmd), "%s/chunks", f->m0);
	tu_rmrf(cmd);
	open_store(f);
	assert_int_equal(tu_count_chunk_files(f->m0), 20);
	assert_int_equal(get_check(f->st, "p", 1, 1, 40000, 1, NULL), 0);
	assert_int_equal(get_check(f->st, "q", 1, 1, 40000, 2, NULL), 0);
}

static const char *fail_dir;

static int fail_mirror(const char *site, const char *dir)
{
	(void)site;
	return fail_dir && strcmp(dir, fail_dir) == 0;
}

static void test_failing_mirror_degrades(void **state)
{
	struct fixture *f = *state;
	struct proto_scrub_reply r;

	assert_int_equal(put(f->st, "p", 1, 1, 10000, 1, 4096), 0);
	fail_dir = f->m1;
	store_fault_hook = fail_mirror;
	/* writes to mirror 1 fail: it goes offline, the PUT succeeds on m0 */
	assert_int_equal(put(f->st, "p", 1, 2, 10000, 2, 4096), 0);
	assert_int_equal(store_status(f->st, &r), 0);
	assert_int_equal(r.mirrors[0].online, 1);
	assert_int_equal(r.mirrors[1].online, 0);
	assert_int_equal(get_check(f->st, "p", 1, 2, 10000, 2, NULL), 0);
	/* after a restart without the fault, mirror 1 is brought up to date */
	store_fault_hook = NULL;
	store_free(f->st);
	open_store(f);
	assert_int_equal(store_status(f->st, &r), 0);
	assert_int_equal(r.mirrors[1].online, 1);
	assert_int_equal(tu_count_chunk_files(f->m1), tu_count_chunk_files(f->m0));
	assert_int_equal(r.checkpoints, 2);
	/* and holds the newest metadata: remove m0 entirely and read from m1 */
	store_free(f->st);
	tu_rmrf(f->m0);
	open_store(f);
	assert_int_equal(get_check(f->st, "p", 1, 2, 10000, 2, NULL), 0);
	assert_int_equal(get_check(f->st, "p", 1, 1, 10000, 1, NULL), 0);
}

static void test_all_mirrors_failing(void **state)
{
	struct fixture *f = *state;
	fail_dir = NULL;
	store_fault_hook = NULL;
	/* make every write fail */
	store_fault_hook = (store_fault_fn)fail_mirror;
	fail_dir = f->m0;
	assert_int_equal(put(f->st, "p", 1, 1, 100, 1, 100), 0); /* m1 takes it */
	fail_dir = f->m1;
	assert_int_equal(put(f->st, "p", 1, 2, 100, 2, 100), RTCMS_EIO);
	store_fault_hook = NULL;
}



/* An abandoned PUT leaves no files behind (without waiting for a restart),
 * but never removes a chunk another checkpoint references. */
static void test_abort_removes_its_files(void **state)
{
	struct fixture *f = *state;
	uint8_t a[4096], b[4096];

	assert_int_equal(put(f->st, "c", 1, 1, 4096, 42, 4096), 0);
	store_put_abort(put_open_one(f->st, "a", 1, 4096, 7, 1, a));
	assert_int_equal(tu_count_chunk_files(f->m0), 1);
	assert_int_equal(tu_count_chunk_files(f->m1), 1);
	store_put_abort(put_open_one(f->st, "b", 1, 4096, 42, 1, b));
	assert_int_equal(tu_count_chunk_files(f->m0), 1);
	assert_int_equal(get_check(f->st, "c", 1, 1, 4096, 42, NULL), 0);
	/* a commit that fails (image hash) removes its files too */
	struct store_put *p = put_open_one(f->st, "a", 1, 4096, 8, 1, a);
	struct proto_put_ack ack;
	assert_int_equal(store_put_commit(p, 2, &ack), RTCMS_EPROTO);
	assert_int_equal(tu_count_chunk_files(f->m0), 1);
	assert_int_equal(tu_count_chunk_files(f->m1), 1);
}

/* A checkpoint deleted while a GET streams it stays readable to the end;
 * its files go when the GET closes. */
static void test_delete_during_get(void **state)
{
	struct fixture *f = *state;
	struct proto_ckpt_meta m;
	struct store_get *g;
	struct proto_chunk c;
	uint8_t *buf = malloc(PROTO_MAX_CHUNK), want[4096];
	int n = 0, rc;

	assert_int_equal(put(f->st, "p", 1, 1, 3 * 4096, 5, 4096), 0);
	assert_int_equal(store_get_open(f->st, "p", 1, 1, &g, &m), 0);
	assert_int_equal(store_get_next(g, buf, &c), 0);
	n++;
	assert_int_equal(store_delete(f->st, "p", 1, 1), 1);
	assert_int_equal(tu_count_chunk_files(f->m0), 3);
	while ((rc = store_get_next(g, buf, &c)) == 0) {
		uint8_t all[3 * 4096];
		tu_fill(all, sizeof(all), 5);
		memcpy(want, all + c.offset, c.len);
		assert_memory_equal(c.data, want, c.len);
		n++;
	}
	assert_int_equal(rc, RTCMS_EEOF);
	assert_int_equal(n, 3);
	store_get_close(g);
	assert_int_equal(tu_count_chunk_files(f->m0), 0);
	assert_int_equal(tu_count_chunk_files(f->m1), 0);
	free(buf);
}


static int log_diverged;

static void count_diverged(void *ctx, int level, const char *msg)
{
	(void)ctx;
	(void)level;
	log_diverged += strstr(msg, "DIVERGED") != NULL;
}

/* Open the fixture's store with only mirror `only` usable: the other
 * path is replaced by a file for the time of the run. */
static void run_alone(struct fixture *f, int only, const char *process,
		      uint64_t seed)
{
	char away[600], *other = only == 0 ? f->m1 : f->m0;
	struct proto_scrub_reply r;

	snprintf(away, sizeof(away), "%s.away", other);
	assert_int_equal(rename(other, away), 0);
	FILE *fp = fopen(other, "w");
	assert_non_null(fp);
	fclose(fp);
	open_store(f);
	assert_int_equal(store_status(f->st, &r), 0);
	assert_int_equal(r.mirrors[only].online, 1);
	assert_int_equal(r.mirrors[1 - only].online, 0);
	assert_int_equal(put(f->st, process, 1, 1, 5000, seed, 4096), 0);
	store_free(f->st);
	f->st = NULL;
	assert_int_equal(unlink(other), 0);
	assert_int_equal(rename(away, other), 0);
}

/* Each mirror ran alone once (a degraded start while the other was away)
 * and took the same number of updates: equal generations, different
 * histories. The next open sees it, keeps one history on both mirrors
 * and says so, instead of serving two different stores. */
static void test_diverged_metadata_detected(void **state)
{
	struct fixture *f = *state;
	struct store_options o = {
		.mirrors = f->mirrors, .mirror_count = 2, .retain = 2,
		.now_ms = fake_now, .now_ctx = f, .log = count_diverged,
	};

	assert_int_equal(put(f->st, "base", 1, 1, 5000, 1, 4096), 0);
	store_free(f->st);
	f->st = NULL;
	run_alone(f, 0, "only0", 2);
	run_alone(f, 1, "only1", 3);
	log_diverged = 0;
	assert_int_equal(store_open(&o, &f->st), 0);
	assert_int_equal(log_diverged, 1);
	assert_int_equal(get_check(f->st, "only0", 1, 1, 5000, 2, NULL), 0);
	assert_int_equal(get_check(f->st, "only1", 1, 1, 5000, 3, NULL), RTCMS_ENOENT);
	/* both mirrors now hold the same history */
	store_free(f->st);
	tu_rmrf(f->m0);
	open_store(f);
	assert_int_equal(get_check(f->st, "base", 1, 1, 5000, 1, NULL), 0);
	assert_int_equal(get_check(f->st, "only0", 1, 1, 5000, 2, NULL), 0);
	assert_int_equal(get_check(f->st, "only1", 1, 1, 5000, 3, NULL), RTCMS_ENOENT);
}


#define PAR_CHUNKS 16
#define PAR_LEN 4096

struct par_put {
	struct store_put *put;
	const struct proto_chunk *chunks;
	int first;
	int rc;
};

static void *par_write(void *arg)
{
	struct par_put *w = arg;
	for (int i = w->first; i < PAR_CHUNKS; i += 4) {
		int rc = store_put_write(w->put, &w->chunks[i]);
		if (rc)
			w->rc = rc;
	}
	return NULL;
}

/* PUT the test image (chunk k holds content seed k) as (process, 1, seq),
 * writing its chunks from 4 threads at once. */
static int put_parallel(struct store *st, const char *process, uint64_t seq)
{
	uint8_t *data = malloc(PAR_CHUNKS * PAR_LEN);
	struct proto_chunk chunks[PAR_CHUNKS];
	struct proto_ckpt_meta m;
	struct proto_image_hash ih;
	struct proto_put_ack ack;
	struct store_put *p;
	struct par_put w[4];
	pthread_t t[4];
	int rc;

	memset(&m, 0, sizeof(m));
	snprintf(m.process, sizeof(m.process), "%s", process);
	m.incarnation = 1;
	m.sequence = seq;
	m.size = PAR_CHUNKS * PAR_LEN;
	m.chunk_count = PAR_CHUNKS;
	proto_image_hash_init(&ih, m.size);
	for (int k = 0; k < PAR_CHUNKS; k++) {
		tu_fill(data + k * PAR_LEN, PAR_LEN, (uint64_t)k);
		chunks[k].offset = (uint64_t)k * PAR_LEN;
		chunks[k].len = PAR_LEN;
		chunks[k].data = data + k * PAR_LEN;
		proto_chunk_hash(chunks[k].data, PAR_LEN, chunks[k].hash);
		proto_image_hash_update(&ih, chunks[k].offset, PAR_LEN, chunks[k].hash);
	}
	proto_image_hash_final(&ih, m.hash);
	rc = store_put_begin(st, &m, &p, &ack);
	if (rc)
		goto out;
	for (int k = 0; k < PAR_CHUNKS; k++)
		assert_int_equal(store_put_check(p, &chunks[k]), 0);
	for (int i = 0; i < 4; i++) {
		w[i] = (struct par_put){ p, chunks, i, 0 };
		pthread_create(&t[i], NULL, par_write, &w[i]);
	}
	for (int i = 0; i < 4; i++) {
		pthread_join(t[i], NULL);
		if (w[i].rc && !rc)
			rc = w[i].rc;
	}
	if (rc)
		store_put_abort(p);
	else
		rc = store_put_commit(p, PAR_CHUNKS, &ack);
out:
	free(data);
	return rc;
}

struct churner {
	struct store *st;
	const char *process;
	int rounds;
	int failures;
};

/* PUT the shared image under another name and delete it again, so that
 * its chunks' reference counts fall to zero while other PUTs use them. */
static void *churn(void *arg)
{
	struct churner *c = arg;
	for (int i = 1; i <= c->rounds; i++) {
		if (put_parallel(c->st, c->process, (uint64_t)i) != 0 ||
		    store_delete(c->st, c->process, 0, 0) != 1)
			c->failures++;
	}
	return NULL;
}

/* Chunk writes of several PUTs run in parallel with retention and
 * deletions that drop the same chunks: no acknowledged checkpoint ever
 * loses a chunk file, and nothing is left once all are deleted. */
static void test_parallel_writes_and_gc(void **state)
{
	struct fixture *f = *state;
	struct churner c = { f->st, "churn", 30, 0 };
	pthread_t t;

	pthread_create(&t, NULL, churn, &c);
	for (uint64_t seq = 1; seq <= 30; seq++) {
		assert_int_equal(put_parallel(f->st, "keep", seq), 0);
		struct proto_ckpt_meta m;
		struct store_get *g;
		struct proto_chunk ch;
		uint8_t *buf = malloc(PROTO_MAX_CHUNK);
		int rc, n = 0;
		assert_int_equal(store_get_open(f->st, "keep", 1, seq, &g, &m), 0);
		while ((rc = store_get_next(g, buf, &ch)) == 0)
			n++;
		assert_int_equal(rc, RTCMS_EEOF);
		assert_int_equal(n, PAR_CHUNKS);
		assert_int_equal(store_get_repaired(g), 0);
		store_get_close(g);
		free(buf);
		/* the chunks' references drop to zero here too, sometimes
		 * while the other thread's PUT holds them */
		if (seq % 3) {
			int del = store_delete(f->st, "keep", 0, 0);
			assert_true(del == 1 || del == 2);
		}
	}
	pthread_join(t, NULL);
	assert_int_equal(c.failures, 0);
	assert_int_equal(tu_count_chunk_files(f->m0), PAR_CHUNKS);
	assert_int_equal(tu_count_chunk_files(f->m1), PAR_CHUNKS);
	assert_int_equal(store_delete(f->st, "keep", 0, 0), 1);
	assert_int_equal(tu_count_chunk_files(f->m0), 0);
	assert_int_equal(tu_count_chunk_files(f->m1), 0);
}

/* Fail chunk writes on every mirror with "disk full". */
static int disk_full(const char *site, const char *dir)
{
	(void)dir;
	return strcmp(site, "chunk_write") == 0 ? RTCMS_ENOSPC : 0;
}

/* A full disk on every mirror refuses the PUT with ENOSPC but takes no
 * mirror offline: nothing diverged, and reads must go on. */
static void test_disk_full_everywhere(void **state)
{
	struct fixture *f = *state;
	struct proto_scrub_reply r;

	assert_int_equal(put(f->st, "p", 1, 1, 10000, 1, 4096), 0);
	store_fault_hook = disk_full;
	assert_int_equal(put(f->st, "p", 1, 2, 10000, 2, 4096), RTCMS_ENOSPC);
	assert_int_equal(store_status(f->st, &r), 0);
	assert_int_equal(r.mirrors[0].online, 1);
	assert_int_equal(r.mirrors[1].online, 1);
	assert_int_equal(r.checkpoints, 1);
	assert_int_equal(get_check(f->st, "p", 1, 1, 10000, 1, NULL), 0);
	store_fault_hook = NULL;
	assert_int_equal(put(f->st, "p", 1, 2, 10000, 2, 4096), 0);
	assert_int_equal(tu_count_chunk_files(f->m1), tu_count_chunk_files(f->m0));
}

static void write_garbage(const char *dir, const char *name)
{
	char path[700];
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	FILE *fp = fopen(path, "wb");
	assert_non_null(fp);
	for (int i = 0; i < 8192; i++)
		fputc((i * 7919) & 0xff, fp);
	fclose(fp);
}

static void remove_meta(const char *dir)
{
	static const char *const names[] = { "meta.db", "meta.db-wal", "meta.db-shm" };
	char path[700];
	for (size_t i = 0; i < 3; i++) {
		snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
		unlink(path);
	}
}

/* An unreadable meta.db on one mirror is replaced by the other's at open;
 * the mirror is online and holds the metadata afterwards. */
static void test_unreadable_meta_replaced(void **state)
{
	struct fixture *f = *state;
	struct proto_scrub_reply r;

	assert_int_equal(put(f->st, "p", 1, 1, 10000, 1, 4096), 0);
	store_free(f->st);
	f->st = NULL;
	remove_meta(f->m1);
	write_garbage(f->m1, "meta.db");
	open_store(f);
	assert_int_equal(store_status(f->st, &r), 0);
	assert_int_equal(r.mirrors[0].online, 1);
	assert_int_equal(r.mirrors[1].online, 1);
	/* damaged pages behind a sound header: also replaced */
	assert_int_equal(put(f->st, "q", 1, 1, 10000, 2, 4096), 0);
	store_free(f->st);
	f->st = NULL;
	char path[700];
	snprintf(path, sizeof(path), "%s/meta.db", f->m1);
	struct stat sb;
	assert_int_equal(stat(path, &sb), 0);
	assert_true(sb.st_size > 8192);
	FILE *fp = fopen(path, "r+b");
	assert_non_null(fp);
	fseek(fp, 4096, SEEK_SET);
	for (long i = 4096; i < sb.st_size; i++)
		fputc((int)(i * 131) & 0xff, fp);
	fclose(fp);
	open_store(f);
	assert_int_equal(store_status(f->st, &r), 0);
	assert_int_equal(r.mirrors[1].online, 1);
	/* mirror 1 alone serves it now */
	store_free(f->st);
	tu_rmrf(f->m0);
	open_store(f);
	assert_int_equal(get_check(f->st, "p", 1, 1, 10000, 1, NULL), 0);
	assert_int_equal(get_check(f->st, "q", 1, 1, 10000, 2, NULL), 0);
}

/* Metadata lost on every mirror (unreadable or deleted) while chunk files
 * exist: the store refuses to start and removes nothing, so an operator
 * can restore meta.db. */
static void test_lost_metadata_refuses_start(void **state)
{
	struct fixture *f = *state;
	struct store_options o = {
		.mirrors = f->mirrors, .mirror_count = 2, .retain = 2,
		.now_ms = fake_now, .now_ctx = f,
	};
	struct store *st = NULL;

	assert_int_equal(put(f->st, "p", 1, 1, 10000, 1, 4096), 0);
	store_free(f->st);
	f->st = NULL;
	remove_meta(f->m0);
	write_garbage(f->m0, "meta.db");
	remove_meta(f->m1);
	write_garbage(f->m1, "meta.db");
	assert_int_equal(store_open(&o, &st), RTCMS_ECORRUPT);
	assert_null(st);
	assert_int_equal(tu_count_chunk_files(f->m0), 3);
	assert_int_equal(tu_count_chunk_files(f->m1), 3);
	remove_meta(f->m0);
	remove_meta(f->m1);
	assert_int_equal(store_open(&o, &st), RTCMS_ECORRUPT);
	assert_null(st);
	assert_int_equal(tu_count_chunk_files(f->m0), 3);
	assert_int_equal(tu_count_chunk_files(f->m1), 3);
	/* a wiped mirror next to the lost one changes nothing */
	tu_rmrf(f->m1);
	assert_int_equal(store_open(&o, &st), RTCMS_ECORRUPT);
	assert_int_equal(tu_count_chunk_files(f->m0), 3);
}

/* A mirror taken offline by failed writes is brought back by a repairing
 * scrub: its metadata is copied, its chunk files are filled in, and later
 * writes go to it again. */
static void test_scrub_brings_mirror_back(void **state)
{
	struct fixture *f = *state;
	struct proto_scrub_reply r;

	assert_int_equal(put(f->st, "p", 1, 1, 10000, 1, 4096), 0);
	fail_dir = f->m1;
	store_fault_hook = fail_mirror;
	assert_int_equal(put(f->st, "p", 1, 2, 10000, 2, 4096), 0);
	assert_int_equal(store_status(f->st, &r), 0);
	assert_int_equal(r.mirrors[1].online, 0);
	/* still failing: the scrub cannot bring it back */
	assert_int_equal(store_scrub(f->st, true, &r), 0);
	assert_int_equal(r.mirrors[1].online, 0);
	store_fault_hook = NULL;
	/* a scrub without repair only reports */
	assert_int_equal(store_scrub(f->st, false, &r), 0);
	assert_int_equal(r.mirrors[1].online, 0);
	assert_int_equal(r.mirrors[1].missing, 3);
	assert_int_equal(store_scrub(f->st, true, &r), 0);
	assert_int_equal(r.mirrors[1].online, 1);
	assert_int_equal(r.mirrors[1].repaired, 3);
	assert_int_equal(r.unrepairable, 0);
	assert_int_equal(tu_count_chunk_files(f->m1), tu_count_chunk_files(f->m0));
	assert_int_equal(put(f->st, "p", 1, 3, 10000, 3, 4096), 0);
	assert_int_equal(store_status(f->st, &r), 0);
	assert_int_equal(r.mirrors[1].online, 1);
	/* mirror 1 alone holds everything, metadata included */
	store_free(f->st);
	tu_rmrf(f->m0);
	open_store(f);
	assert_int_equal(get_check(f->st, "p", 1, 2, 10000, 2, NULL), 0);
	assert_int_equal(get_check(f->st, "p", 1, 3, 10000, 3, NULL), 0);
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
	struct proto_chunk c;
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
	int rc;
	assert_int_equal(store_get_open(f->st, "big", 0, 0, &g, &m), 0);
	while ((rc = store_get_next(g, buf, &c)) == 0) {
		tu_fill(want, PROTO_MAX_CHUNK, 1000 + got);
		assert_int_equal(c.offset, (uint64_t)got * PROTO_MAX_CHUNK);
		assert_memory_equal(c.data, want, c.len);
		got++;
		size_t h = heap_bytes();
		peak = h > peak ? h : peak;
	}
	assert_int_equal(rc, RTCMS_EEOF);
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

/* An expired claim nobody else took can still be committed; LIST shows
 * which checkpoint a claim pins. */
static void test_commit_after_lease_and_list_claimed(void **state)
{
	struct fixture *f = *state;
	struct proto_list_entry e[PROTO_LIST_MAX];
	struct proto_claim_ok ok;
	struct proto_commit_ok cok;
	struct proto_error err;
	bool more;

	assert_int_equal(put(f->st, "p", 1, 1, 5000, 1, 4096), 0);
	assert_int_equal(put(f->st, "p", 1, 2, 5000, 2, 4096), 0);
	assert_int_equal(store_claim(f->st, "p", "m1", 1000, 0, &ok, &err), 0);
	assert_int_equal(store_list(f->st, 0, "p", 0, 10, e, &more), 2);
	assert_int_equal(e[0].claimed, 0);
	assert_int_equal(e[1].claimed, 1);
	f->clock += 5000;
	assert_int_equal(store_commit(f->st, "p", ok.claim_id, 3, &cok), 0);
	assert_int_equal(cok.incarnation, 2);
	assert_int_equal(cok.node, 3);
	assert_int_equal(store_list(f->st, 0, "p", 0, 10, e, &more), 2);
	assert_int_equal(e[1].claimed, 0);
	assert_int_equal(store_release(f->st, "p", ok.claim_id), RTCMS_ENOENT);
	assert_int_equal(store_commit(f->st, "p", 12345, 3, &cok), RTCMS_ENOENT);
}

/* ---- delta checkpoints --------------------------------------------- */

#define DBLOCKS 320 /* 1.25 MiB of data: a GET of it is two chunks */
#define DCHUNK 16384

/* A program's state as its agent sees it: data blocks and the sequence
 * each block last changed at. */
struct prog {
	uint8_t *live;
	uint64_t versions[DBLOCKS];
	uint32_t blocks;
	uint64_t x;
};

static void prog_init(struct prog *p, uint32_t blocks, uint64_t seed)
{
	p->live = malloc((size_t)DBLOCKS * AREA_BLOCK);
	p->blocks = blocks;
	p->x = seed;
	tu_fill(p->live, (size_t)DBLOCKS * AREA_BLOCK, seed);
	for (uint32_t b = 0; b < DBLOCKS; b++)
		p->versions[b] = 1;
}

/* Change n blocks at sequence seq. */
static void prog_change(struct prog *p, uint64_t seq, int n)
{
	for (int i = 0; i < n; i++) {
		p->x = p->x * 6364136223846793005ull + 1442695040888963407ull;
		uint32_t b = (uint32_t)((p->x >> 33) % p->blocks);
		p->live[(size_t)b * AREA_BLOCK + (p->x >> 20) % AREA_BLOCK] ^= 0x5a;
		p->versions[b] = seq;
	}
}

/* Change the data size to blocks (every block counts as changed). */
static void prog_resize(struct prog *p, uint64_t seq, uint32_t blocks)
{
	p->blocks = blocks;
	for (uint32_t b = 0; b < DBLOCKS; b++)
		p->versions[b] = seq;
}

static size_t full_len(const struct prog *p)
{
	return image_size(1, (uint64_t)p->blocks * AREA_BLOCK);
}

/* The full image of sequence seq into img (malloc'ed); returns its size. */
static size_t prog_full(const struct prog *p, uint64_t seq, uint8_t **img)
{
	size_t d = (size_t)p->blocks * AREA_BLOCK, len = full_len(p);
	uint8_t *i = malloc(len);
	memset(i, 0, 56);
	put_be32(i, IMAGE_MAGIC);
	put_be32(i + 4, IMAGE_VERSION);
	put_be64(i + 8, seq);
	put_be32(i + 16, 1);
	put_be64(i + 24, d);
	put_be32(i + 32, 1);
	put_be64(i + 40, d);
	memcpy(i + 56, p->live, d);
	*img = i;
	return len;
}

/* The delta of sequence seq against base into img (malloc'ed). */
static size_t prog_delta(const struct prog *p, uint64_t seq, uint64_t base, uint8_t **img)
{
	uint8_t *full;
	size_t flen = prog_full(p, seq, &full), cap = delta_size(1, p->blocks);
	*img = malloc(cap);
	int64_t n = delta_build(full, flen, p->versions, base, *img, cap);
	assert_true(n > 0);
	free(full);
	return (size_t)n;
}

/* What the last put_img() wrote (store_put_stats before its commit). */
/* PUT an image in chunks of DCHUNK bytes; fills *ack. state NULL: none. */
static int put_img(struct store *st, const char *process, uint64_t inc, uint64_t seq,
		   uint64_t base, uint64_t full_size, const uint8_t *state,
		   const uint8_t *data, size_t size, struct proto_put_ack *ack)
{
	struct proto_ckpt_meta m;

	meta_for(&m, process, inc, seq, size);
	m.base = base;
	m.full_size = full_size;
	if (state)
		memcpy(m.state_hash, state, PROTO_HASH_SIZE);
	return put_data(st, &m, data, size, DCHUNK, ack);
}

/* PUT the full image of p's state as seq; returns the engine's result. */
static int put_full(struct store *st, const char *process, const struct prog *p,
		    uint64_t seq, struct proto_put_ack *ack)
{
	uint8_t *img, sh[STATE_HASH_SIZE];
	size_t len = prog_full(p, seq, &img);
	assert_int_equal(state_hash(img, len, sh), 0);
	int rc = put_img(st, process, 1, seq, 0, 0, sh, img, len, ack);
	free(img);
	return rc;
}

/* PUT the delta of p's state as seq against base, with its state hash. */
static int put_delta(struct store *st, const char *process, const struct prog *p,
		     uint64_t seq, uint64_t base, struct proto_put_ack *ack)
{
	uint8_t *full, *d, sh[STATE_HASH_SIZE];
	size_t flen = prog_full(p, seq, &full);
	assert_int_equal(state_hash(full, flen, sh), 0);
	size_t dlen = prog_delta(p, seq, base, &d);
	int rc = put_img(st, process, 1, seq, base, flen, sh, d, dlen, ack);
	free(full);
	free(d);
	return rc;
}

/* GET a checkpoint whole, checking every chunk hash, the chunk order and
 * the image hash like a client does; *out is malloc'ed. */
static int get_img(struct store *st, const char *process, uint64_t inc, uint64_t seq,
		   struct proto_ckpt_meta *m, uint8_t **out, size_t *len)
{
	struct store_get *g;
	struct proto_image_hash ih;
	struct proto_chunk c;
	uint8_t *chunk = malloc(PROTO_MAX_CHUNK), h[PROTO_HASH_SIZE];
	uint32_t n = 0;
	int rc;

	*out = NULL;
	rc = store_get_open(st, process, inc, seq, &g, m);
	if (rc) {
		free(chunk);
		return rc;
	}
	assert_true(m->size < ((uint64_t)1 << 32));
	*out = malloc(m->size ? m->size : 1);
	*len = m->size;
	proto_image_hash_init(&ih, m->size);
	while ((rc = store_get_next(g, chunk, &c)) == 0) {
		assert_true(c.offset + c.len <= m->size);
		proto_chunk_hash(c.data, c.len, h);
		assert_memory_equal(h, c.hash, PROTO_HASH_SIZE);
		assert_int_equal(proto_image_hash_update(&ih, c.offset, c.len, c.hash), 0);
		memcpy(*out + c.offset, c.data, c.len);
		n++;
	}
	assert_int_equal(rc, RTCMS_EEOF);
	assert_int_equal(n, m->chunk_count);
	assert_int_equal(proto_image_hash_final(&ih, h), 0);
	assert_memory_equal(h, m->hash, PROTO_HASH_SIZE);
	assert_int_equal(m->spec_len, 4);
	assert_memory_equal(m->spec, "spec", 4);
	store_get_close(g);
	free(chunk);
	return 0;
}

/* GET (process, 1, seq) and compare it with want (a full image); the
 * state hash is want's, or zeros when the PUT gave none. */
static void get_expect_state(struct store *st, const char *process, uint64_t seq,
			     const uint8_t *want, size_t want_len, int with_state)
{
	struct proto_ckpt_meta m;
	struct store_get *g;
	uint8_t *got, sh[STATE_HASH_SIZE];
	size_t len;

	assert_int_equal(store_get_open_meta(st, process, 1, seq, &g, &m), 0);
	store_get_close(g);
	/* a full image is served as stored, a delta's in chunks of 1 MiB */
	uint64_t chunk = m.base ? PROTO_MAX_CHUNK : DCHUNK;
	assert_int_equal(get_img(st, process, 1, seq, &m, &got, &len), 0);
	assert_int_equal(m.sequence, seq);
	assert_int_equal(m.base, 0);
	assert_int_equal(m.size, want_len);
	assert_int_equal(m.full_size, want_len);
	assert_int_equal(m.chunk_count, (want_len + chunk - 1) / chunk);
	assert_int_equal(len, want_len);
	assert_memory_equal(got, want, want_len);
	assert_int_equal(state_hash(want, want_len, sh), 0);
	if (!with_state)
		memset(sh, 0, sizeof(sh));
	assert_memory_equal(m.state_hash, sh, STATE_HASH_SIZE);
	free(got);
}

static void get_expect(struct store *st, const char *process, uint64_t seq,
		       const uint8_t *want, size_t want_len)
{
	get_expect_state(st, process, seq, want, want_len, 1);
}

/* The sequences stored for process, ascending, into seqs; their count. */
static int list_seqs(struct store *st, const char *process, uint64_t *seqs)
{
	struct proto_list_entry e[PROTO_LIST_MAX];
	bool more;
	int n = store_list(st, 0, process, 0, PROTO_LIST_MAX, e, &more);
	assert_true(n >= 0);
	for (int i = 0; i < n; i++)
		seqs[i] = e[i].sequence;
	return n;
}

static void reopen(struct fixture *f, unsigned retain)
{
	store_free(f->st);
	f->retain = retain;
	open_store(f);
}

/* full -> delta -> delta (-> a delta that grows the image): a GET of each
 * gives exactly the full image of its sequence, described as a full
 * image; PUT_ACK says the depth; a meta-only GET gives what is stored. */
static void test_delta_chain_get(void **state)
{
	struct fixture *f = *state;
	struct proto_put_ack ack;
	struct prog p;
	uint8_t *full[5];
	size_t flen[5];

	reopen(f, 10);
	prog_init(&p, 300, 11);
	flen[1] = prog_full(&p, 1, &full[1]);
	assert_int_equal(put_full(f->st, "p", &p, 1, &ack), 0);
	assert_int_equal(ack.depth, 0);
	prog_change(&p, 2, 7);
	flen[2] = prog_full(&p, 2, &full[2]);
	assert_int_equal(put_delta(f->st, "p", &p, 2, 1, &ack), 0);
	assert_int_equal(ack.depth, 1);
	assert_int_equal(ack.existed, 0);
	prog_change(&p, 3, 3);
	flen[3] = prog_full(&p, 3, &full[3]);
	assert_int_equal(put_delta(f->st, "p", &p, 3, 2, &ack), 0);
	assert_int_equal(ack.depth, 2);
	/* the image grows: the delta carries every block */
	prog_resize(&p, 4, DBLOCKS);
	prog_change(&p, 4, 2);
	flen[4] = prog_full(&p, 4, &full[4]);
	assert_int_equal(put_delta(f->st, "p", &p, 4, 3, &ack), 0);
	assert_int_equal(ack.depth, 3);
	/* idempotent: the stored depth again */
	assert_int_equal(put_delta(f->st, "p", &p, 4, 3, &ack), 1);
	assert_int_equal(ack.existed, 1);
	assert_int_equal(ack.depth, 3);
	/* the same state sent otherwise (full, as a second manager may):
	 * stored already; another state under the same key: EEXIST */
	assert_int_equal(put_full(f->st, "p", &p, 4, &ack), 1);
	assert_int_equal(ack.existed, 1);
	assert_int_equal(ack.depth, 3);
	uint8_t *img4;
	size_t len4 = prog_full(&p, 4, &img4);
	uint8_t other[STATE_HASH_SIZE];
	memset(other, 0x5a, sizeof(other));
	assert_int_equal(put_img(f->st, "p", 1, 4, 0, 0, other, img4, len4, &ack), RTCMS_EEXIST);
	free(img4);

	for (uint64_t s = 1; s <= 4; s++)
		get_expect(f->st, "p", s, full[s], flen[s]);
	/* latest */
	struct proto_ckpt_meta m;
	uint8_t *got;
	size_t len;
	assert_int_equal(get_img(f->st, "p", 0, 0, &m, &got, &len), 0);
	assert_int_equal(m.sequence, 4);
	assert_memory_equal(got, full[4], flen[4]);
	free(got);

	/* metadata only: the delta as stored, nothing assembled */
	struct store_get *g;
	struct proto_chunk c;
	uint8_t buf[16];
	assert_int_equal(store_get_open_meta(f->st, "p", 1, 3, &g, &m), 0);
	assert_int_equal(m.base, 2);
	assert_int_equal(m.full_size, flen[3]);
	assert_true(m.size < flen[3] / 10);
	assert_int_equal(m.chunk_count, (m.size + DCHUNK - 1) / DCHUNK);
	assert_int_equal(m.spec_len, 4);
	assert_int_equal(store_get_next(g, buf, &c), RTCMS_EEOF);
	store_get_close(g);
	assert_int_equal(store_get_open_meta(f->st, "p", 1, 1, &g, &m), 0);
	assert_int_equal(m.base, 0);
	assert_int_equal(m.size, flen[1]);
	assert_int_equal(m.full_size, flen[1]);
	store_get_close(g);
	assert_int_equal(store_get_open_meta(f->st, "p", 1, 9, &g, &m), RTCMS_ENOENT);
	/* LIST gives the size a GET returns: the full image's */
	struct proto_list_entry e[8];
	bool more;
	assert_int_equal(store_list(f->st, 0, "p", 0, 8, e, &more), 4);
	for (int s = 0; s < 4; s++)
		assert_int_equal(e[s].size, flen[s + 1]);
	for (int s = 1; s <= 4; s++)
		free(full[s]);
	free(p.live);
}

static int log_base_missing;

static void count_base_missing(void *ctx, int level, const char *msg)
{
	(void)ctx;
	(void)level;
	log_base_missing += strstr(msg, "is not stored: send a full image") != NULL;
}

/* A delta needs its base stored: refused at PUT_BEGIN, and at the commit
 * if the base went away meanwhile (its files are removed then). */
static void test_delta_base_missing(void **state)
{
	struct fixture *f = *state;
	struct store_options o = {
		.mirrors = f->mirrors, .mirror_count = 2, .retain = 10,
		.now_ms = fake_now, .now_ctx = f, .log = count_base_missing,
	};
	struct proto_put_ack ack;
	struct prog p;

	store_free(f->st);
	assert_int_equal(store_open(&o, &f->st), 0);
	prog_init(&p, 64, 12);
	log_base_missing = 0;
	assert_int_equal(put_delta(f->st, "p", &p, 2, 1, &ack), RTCMS_ENOENT);
	assert_int_equal(log_base_missing, 1);
	assert_int_equal(tu_count_chunk_files(f->m0), 0);
	assert_int_equal(put_full(f->st, "p", &p, 1, &ack), 0);
	/* the base of another incarnation does not count */
	uint8_t *d;
	size_t dlen = prog_delta(&p, 2, 1, &d);
	assert_int_equal(put_img(f->st, "p", 2, 2, 1, full_len(&p), NULL, d, dlen, &ack),
			 RTCMS_ENOENT);
	/* invalid: base not below the sequence, no full size */
	assert_int_equal(put_img(f->st, "p", 1, 2, 2, full_len(&p), NULL, d, dlen, &ack),
			 RTCMS_EINVAL);
	assert_int_equal(put_img(f->st, "p", 1, 2, 1, 0, NULL, d, dlen, &ack), RTCMS_EINVAL);
	assert_int_equal(put_img(f->st, "p", 1, 2, 1, STORE_MAX_FULL + 1, NULL, d, dlen, &ack),
			 RTCMS_ETOOBIG);
	/* a full image whose full_size is not its size */
	assert_int_equal(put_img(f->st, "p", 1, 2, 0, dlen + 1, NULL, d, dlen, &ack),
			 RTCMS_EINVAL);

	/* the base is deleted between PUT_BEGIN and the commit */
	struct proto_ckpt_meta m;
	struct proto_image_hash ih;
	struct store_put *put;
	struct proto_chunk c;
	uint32_t count = 0;
	memset(&m, 0, sizeof(m));
	strcpy(m.process, "p");
	m.incarnation = 1;
	m.sequence = 2;
	m.size = dlen;
	m.base = 1;
	m.full_size = full_len(&p);
	proto_image_hash_init(&ih, dlen);
	for (size_t off = 0; off < dlen; off += DCHUNK, count++) {
		uint8_t h[PROTO_HASH_SIZE];
		size_t len = dlen - off < DCHUNK ? dlen - off : DCHUNK;
		proto_chunk_hash(d + off, len, h);
		proto_image_hash_update(&ih, off, (uint32_t)len, h);
	}
	proto_image_hash_final(&ih, m.hash);
	m.chunk_count = count;
	assert_int_equal(store_put_begin(f->st, &m, &put, &ack), 0);
	for (size_t off = 0; off < dlen; off += DCHUNK) {
		c.offset = off;
		c.len = (uint32_t)(dlen - off < DCHUNK ? dlen - off : DCHUNK);
		c.data = d + off;
		proto_chunk_hash(c.data, c.len, c.hash);
		assert_int_equal(store_put_check(put, &c), 0);
		assert_int_equal(store_put_write(put, &c), 0);
	}
	assert_int_equal(store_delete(f->st, "p", 1, 1), 1);
	log_base_missing = 0;
	assert_int_equal(store_put_commit(put, count, &ack), RTCMS_ENOENT);
	assert_int_equal(log_base_missing, 1);
	assert_int_equal(tu_count_chunk_files(f->m0), 0);
	assert_int_equal(tu_count_chunk_files(f->m1), 0);
	free(d);
	free(p.live);
}

/* Retention keeps the newest `retain` and the chains they need, and
 * removes the rest; an open claim pins its checkpoint's chain. */
static void test_retention_keeps_chains(void **state)
{
	struct fixture *f = *state;
	struct proto_put_ack ack;
	struct proto_scrub_reply r;
	uint64_t s[64];
	struct prog p;

	reopen(f, 1);
	prog_init(&p, 64, 13);
	assert_int_equal(put_full(f->st, "p", &p, 1, &ack), 0);
	prog_change(&p, 2, 3);
	assert_int_equal(put_delta(f->st, "p", &p, 2, 1, &ack), 0);
	prog_change(&p, 3, 3);
	assert_int_equal(put_delta(f->st, "p", &p, 3, 2, &ack), 0);
	/* 3 is kept, and with it 2 and 1 */
	assert_int_equal(list_seqs(f->st, "p", s), 3);
	assert_int_equal(s[0], 1);
	assert_int_equal(s[2], 3);
	prog_change(&p, 4, 3);
	assert_int_equal(put_full(f->st, "p", &p, 4, &ack), 0);
	/* a full image needs nothing: the old chain goes */
	assert_int_equal(list_seqs(f->st, "p", s), 1);
	assert_int_equal(s[0], 4);
	prog_change(&p, 5, 3);
	assert_int_equal(put_delta(f->st, "p", &p, 5, 4, &ack), 0);
	prog_change(&p, 6, 3);
	assert_int_equal(put_delta(f->st, "p", &p, 6, 5, &ack), 0);
	prog_change(&p, 7, 3);
	/* a delta against an older base (7 on 5): 6 is needed by nobody */
	assert_int_equal(put_delta(f->st, "p", &p, 7, 5, &ack), 0);
	assert_int_equal(ack.depth, 2);
	assert_int_equal(list_seqs(f->st, "p", s), 3);
	assert_int_equal(s[0], 4);
	assert_int_equal(s[1], 5);
	assert_int_equal(s[2], 7);
	uint8_t *want;
	size_t wlen = prog_full(&p, 7, &want);
	get_expect(f->st, "p", 7, want, wlen);
	free(want);

	/* retain 2: 8 full keeps 7 and 7's chain (4, 5) */
	reopen(f, 2);
	prog_change(&p, 8, 3);
	assert_int_equal(put_full(f->st, "p", &p, 8, &ack), 0);
	assert_int_equal(list_seqs(f->st, "p", s), 4);
	assert_int_equal(s[0], 4);
	assert_int_equal(s[3], 8);
	prog_change(&p, 9, 3);
	assert_int_equal(put_delta(f->st, "p", &p, 9, 8, &ack), 0);
	assert_int_equal(list_seqs(f->st, "p", s), 2);
	assert_int_equal(s[0], 8);
	assert_int_equal(s[1], 9);

	/* a claim on 10 (a delta) pins 10, 9 and 8 */
	struct proto_claim_ok ok;
	struct proto_error err;
	prog_change(&p, 10, 3);
	assert_int_equal(put_delta(f->st, "p", &p, 10, 9, &ack), 0);
	uint8_t *claimed;
	size_t clen = prog_full(&p, 10, &claimed);
	assert_int_equal(store_claim(f->st, "p", "m1", 1000, 0, &ok, &err), 0);
	assert_int_equal(ok.sequence, 10);
	for (uint64_t q = 11; q <= 13; q++) {
		prog_change(&p, q, 3);
		assert_int_equal(put_full(f->st, "p", &p, q, &ack), 0);
	}
	assert_int_equal(list_seqs(f->st, "p", s), 5);
	assert_int_equal(s[0], 8);
	assert_int_equal(s[1], 9);
	assert_int_equal(s[2], 10);
	assert_int_equal(s[3], 12);
	assert_int_equal(s[4], 13);
	get_expect(f->st, "p", 10, claimed, clen);
	/* released: the next PUT lets the chain go */
	assert_int_equal(store_release(f->st, "p", ok.claim_id), 0);
	prog_change(&p, 14, 3);
	assert_int_equal(put_full(f->st, "p", &p, 14, &ack), 0);
	assert_int_equal(list_seqs(f->st, "p", s), 2);
	assert_int_equal(s[0], 13);
	/* the chunk files are exactly what the rows reference */
	assert_int_equal(store_status(f->st, &r), 0);
	assert_int_equal(tu_count_chunk_files(f->m0), (int)r.chunks);
	assert_int_equal(tu_count_chunk_files(f->m1), (int)r.chunks);
	free(claimed);
	free(p.live);
}

/* A base a remaining checkpoint needs cannot be deleted alone; deleting
 * the whole process removes every chain. */
static void test_delete_base_busy(void **state)
{
	struct fixture *f = *state;
	struct proto_put_ack ack;
	struct prog p;

	reopen(f, 10);
	prog_init(&p, 64, 14);
	for (int round = 0; round < 2; round++) {
		assert_int_equal(put_full(f->st, "p", &p, 1, &ack), 0);
		prog_change(&p, 2, 3);
		assert_int_equal(put_delta(f->st, "p", &p, 2, 1, &ack), 0);
		prog_change(&p, 3, 3);
		assert_int_equal(put_delta(f->st, "p", &p, 3, 2, &ack), 0);
		if (round == 0) {
			assert_int_equal(store_delete(f->st, "p", 1, 1), RTCMS_EBUSY);
			assert_int_equal(store_delete(f->st, "p", 1, 2), RTCMS_EBUSY);
			assert_int_equal(store_delete(f->st, "p", 1, 3), 1);
			assert_int_equal(store_delete(f->st, "p", 1, 1), RTCMS_EBUSY);
			assert_int_equal(store_delete(f->st, "p", 1, 2), 1);
			assert_int_equal(store_delete(f->st, "p", 1, 1), 1);
		} else {
			assert_int_equal(store_delete(f->st, "p", 0, 0), 3);
		}
		assert_int_equal(tu_count_chunk_files(f->m0), 0);
		assert_int_equal(tu_count_chunk_files(f->m1), 0);
		for (uint32_t b = 0; b < DBLOCKS; b++)
			p.versions[b] = 1;
	}
	free(p.live);
}

/* A set of chunk hashes. */
struct hashset {
	uint8_t (*h)[PROTO_HASH_SIZE];
	size_t n;
};

static void hashset_add_image(struct hashset *s, const uint8_t *data, size_t size)
{
	for (size_t off = 0; off < size; off += DCHUNK) {
		uint8_t h[PROTO_HASH_SIZE];
		size_t len = size - off < DCHUNK ? size - off : DCHUNK, i;
		proto_chunk_hash(data + off, len, h);
		for (i = 0; i < s->n && memcmp(s->h[i], h, PROTO_HASH_SIZE) != 0; i++)
			;
		if (i < s->n)
			continue;
		s->h = realloc(s->h, (s->n + 1) * PROTO_HASH_SIZE);
		memcpy(s->h[s->n++], h, PROTO_HASH_SIZE);
	}
}

/* The mirror's chunk files are exactly the set. */
static void files_exactly(const char *mirror, const struct hashset *s)
{
	char path[600];
	size_t n = 0;
	for (int i = 0; i < 256; i++) {
		snprintf(path, sizeof(path), "%s/chunks/%02x", mirror, i);
		DIR *d = opendir(path);
		struct dirent *e;
		while (d && (e = readdir(d))) {
			uint8_t h[PROTO_HASH_SIZE];
			size_t k;
			if (e->d_name[0] == '.')
				continue;
			assert_int_equal(chunkfile_parse_name(e->d_name, h), 0);
			for (k = 0; k < s->n && memcmp(s->h[k], h, PROTO_HASH_SIZE) != 0; k++)
				;
			if (k == s->n)
				fail_msg("%s: chunk file %s is referenced by nothing",
					 mirror, e->d_name);
			n++;
		}
		if (d)
			closedir(d);
	}
	assert_int_equal(n, s->n);
}

/* Chunks shared by sequences of a chain and by two processes survive the
 * removal of one of them; GC removes exactly the chunk files nothing
 * references any more, on every mirror. */
static void test_shared_chunks_chains_gc(void **state)
{
	struct fixture *f = *state;
	struct proto_put_ack ack;
	struct prog p;
	uint8_t *img[6];
	size_t len[6];

	reopen(f, 2);
	prog_init(&p, 64, 15);
	/* a and b hold the same chain 1 <- 2 <- 3: every chunk is shared */
	len[1] = prog_full(&p, 1, &img[1]);
	for (int k = 0; k < 2; k++)
		assert_int_equal(put_full(f->st, k ? "b" : "a", &p, 1, &ack), 0);
	for (uint64_t s = 2; s <= 3; s++) {
		prog_change(&p, s, 2);
		len[s] = prog_delta(&p, s, s - 1, &img[s]);
		for (int k = 0; k < 2; k++)
			assert_int_equal(put_delta(f->st, k ? "b" : "a", &p, s, s - 1, &ack), 0);
	}
	struct hashset all = { 0 };
	for (int s = 1; s <= 3; s++)
		hashset_add_image(&all, img[s], len[s]);
	files_exactly(f->m0, &all);
	files_exactly(f->m1, &all);
	assert_int_equal(store_delete(f->st, "a", 0, 0), 3);
	files_exactly(f->m0, &all);
	files_exactly(f->m1, &all);
	uint8_t *want;
	size_t wlen = prog_full(&p, 3, &want);
	get_expect(f->st, "b", 3, want, wlen);
	free(want);

	/* b: 4 full (most of its chunks are those of 1) keeps 3's chain;
	 * 5 full drops it: only the chunks of 4 and 5 stay */
	prog_change(&p, 4, 2);
	len[4] = prog_full(&p, 4, &img[4]);
	assert_int_equal(put_full(f->st, "b", &p, 4, &ack), 0);
	hashset_add_image(&all, img[4], len[4]);
	files_exactly(f->m0, &all);
	prog_change(&p, 5, 2);
	len[5] = prog_full(&p, 5, &img[5]);
	assert_int_equal(put_full(f->st, "b", &p, 5, &ack), 0);
	struct hashset left = { 0 };
	hashset_add_image(&left, img[4], len[4]);
	hashset_add_image(&left, img[5], len[5]);
	struct hashset one = { 0 };
	hashset_add_image(&one, img[1], len[1]);
	size_t shared = 0;
	for (size_t i = 0; i < one.n; i++)
		for (size_t k = 0; k < left.n; k++)
			shared += memcmp(one.h[i], left.h[k], PROTO_HASH_SIZE) == 0;
	assert_true(shared > 0); /* some chunks of 1 live on in 4 and 5 */
	files_exactly(f->m0, &left);
	files_exactly(f->m1, &left);
	get_expect(f->st, "b", 4, img[4], len[4]);
	get_expect(f->st, "b", 5, img[5], len[5]);
	for (int s = 1; s <= 5; s++)
		free(img[s]);
	free(all.h);
	free(left.h);
	free(one.h);
	free(p.live);
}

static int log_state_mismatch;

static void count_state_mismatch(void *ctx, int level, const char *msg)
{
	(void)ctx;
	if (level == LOG_ERROR && strstr(msg, "GET p 1/2") &&
	    strstr(msg, "state hash"))
		log_state_mismatch++;
}

/* A chain that does not give its stored state hash, or does not apply,
 * is refused with ECORRUPT (and logged); its metadata stays readable. */
static void test_delta_state_hash_mismatch(void **state)
{
	struct fixture *f = *state;
	struct store_options o = {
		.mirrors = f->mirrors, .mirror_count = 2, .retain = 10,
		.now_ms = fake_now, .now_ctx = f, .log = count_state_mismatch,
	};
	struct proto_put_ack ack;
	struct proto_ckpt_meta m;
	struct store_get *g;
	struct prog p;
	uint8_t *full, *d, sh[STATE_HASH_SIZE];

	store_free(f->st);
	assert_int_equal(store_open(&o, &f->st), 0);
	prog_init(&p, 64, 16);
	assert_int_equal(put_full(f->st, "p", &p, 1, &ack), 0);
	prog_change(&p, 2, 4);
	size_t flen = prog_full(&p, 2, &full);
	assert_int_equal(state_hash(full, flen, sh), 0);
	sh[5] ^= 1;
	size_t dlen = prog_delta(&p, 2, 1, &d);
	assert_int_equal(put_img(f->st, "p", 1, 2, 1, flen, sh, d, dlen, &ack), 0);
	log_state_mismatch = 0;
	assert_int_equal(store_get_open(f->st, "p", 1, 2, &g, &m), RTCMS_ECORRUPT);
	assert_null(g);
	assert_int_equal(log_state_mismatch, 1);
	assert_int_equal(store_get_open_meta(f->st, "p", 1, 2, &g, &m), 0);
	assert_int_equal(m.base, 1);
	store_get_close(g);
	/* without a state hash the same delta is served (the same image
	 * again is an idempotent PUT, whatever its state hash) */
	assert_int_equal(put_img(f->st, "p", 1, 2, 1, flen, NULL, d, dlen, &ack), 1);
	assert_int_equal(store_delete(f->st, "p", 1, 2), 1);
	assert_int_equal(put_img(f->st, "p", 1, 2, 1, flen, NULL, d, dlen, &ack), 0);
	get_expect_state(f->st, "p", 2, full, flen, 0);

	/* not a delta at all, or an empty one: refused */
	uint8_t junk[5000];
	tu_fill(junk, sizeof(junk), 3);
	assert_int_equal(put_img(f->st, "p", 1, 3, 1, flen, NULL, junk, sizeof(junk), &ack), 0);
	assert_int_equal(store_get_open(f->st, "p", 1, 3, &g, &m), RTCMS_ECORRUPT);
	assert_int_equal(put_img(f->st, "p", 1, 4, 1, flen, NULL, d, 0, &ack), RTCMS_EINVAL);
	/* a delta against 1 stored as sequence 5: its header says 2 */
	assert_int_equal(put_img(f->st, "p", 1, 5, 1, flen, NULL, d, dlen, &ack), 0);
	assert_int_equal(store_get_open(f->st, "p", 1, 5, &g, &m), RTCMS_ECORRUPT);
	/* the full image below them is fine */
	struct proto_ckpt_meta bm;
	uint8_t *got;
	size_t glen;
	assert_int_equal(get_img(f->st, "p", 1, 1, &bm, &got, &glen), 0);
	free(got);
	free(full);
	free(d);
	free(p.live);
}

/* A meta.db of the first schema (no base, depth, full_size, state_hash)
 * is upgraded when the store opens it, on every mirror, and works. */
static void test_old_meta_db_upgraded(void **state)
{
	struct fixture *f = *state;
	static const char old_schema[] =
		"CREATE TABLE meta(key TEXT PRIMARY KEY, value INTEGER NOT NULL);"
		"CREATE TABLE processes("
		" process TEXT PRIMARY KEY, incarnation INTEGER NOT NULL, node INTEGER NOT NULL,"
		" claim_id INTEGER NOT NULL DEFAULT 0, claimant TEXT NOT NULL DEFAULT '',"
		" claim_expires INTEGER NOT NULL DEFAULT 0, claim_inc INTEGER NOT NULL DEFAULT 0,"
		" claim_seq INTEGER NOT NULL DEFAULT 0, last_claim INTEGER NOT NULL DEFAULT 0);"
		"CREATE TABLE checkpoints("
		" process TEXT NOT NULL, incarnation INTEGER NOT NULL, sequence INTEGER NOT NULL,"
		" node INTEGER NOT NULL, size INTEGER NOT NULL, hash BLOB NOT NULL,"
		" created_ms INTEGER NOT NULL, spec BLOB, chunk_count INTEGER NOT NULL,"
		" PRIMARY KEY(process, incarnation, sequence));"
		"CREATE INDEX checkpoints_node ON checkpoints(node);"
		"CREATE TABLE ckpt_chunks("
		" process TEXT NOT NULL, incarnation INTEGER NOT NULL, sequence INTEGER NOT NULL,"
		" idx INTEGER NOT NULL, offset INTEGER NOT NULL, len INTEGER NOT NULL,"
		" hash BLOB NOT NULL, PRIMARY KEY(process, incarnation, sequence, idx));"
		"CREATE TABLE chunks(hash BLOB PRIMARY KEY, size INTEGER NOT NULL,"
		" refs INTEGER NOT NULL);";
	struct proto_put_ack ack;
	struct prog p;
	char path[700], sql[900];

	prog_init(&p, 64, 17);
	assert_int_equal(put_full(f->st, "p", &p, 1, &ack), 0);
	store_free(f->st);
	f->st = NULL;
	/* rewrite each mirror's meta.db in the old schema, same rows */
	for (int i = 0; i < 2; i++) {
		const char *m = f->mirrors[i];
		sqlite3 *db;
		snprintf(path, sizeof(path), "%s/old.db", m);
		assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
		assert_int_equal(sqlite3_exec(db, old_schema, NULL, NULL, NULL), SQLITE_OK);
		snprintf(sql, sizeof(sql), "ATTACH '%s/meta.db' AS n;"
			 "INSERT INTO meta SELECT * FROM n.meta;"
			 "INSERT INTO processes SELECT process, incarnation, node, claim_id,"
			 " claimant, claim_expires, claim_inc, claim_seq, last_claim"
			 " FROM n.processes;"
			 "INSERT INTO checkpoints SELECT process, incarnation, sequence, node,"
			 " size, hash, created_ms, spec, chunk_count FROM n.checkpoints;"
			 "INSERT INTO ckpt_chunks SELECT * FROM n.ckpt_chunks;"
			 "INSERT INTO chunks SELECT * FROM n.chunks; DETACH n;", m);
		assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
		sqlite3_close(db);
		remove_meta(m);
		snprintf(sql, sizeof(sql), "%s/meta.db", m);
		assert_int_equal(rename(path, sql), 0);
	}
	open_store(f);
	struct proto_scrub_reply r;
	assert_int_equal(store_status(f->st, &r), 0);
	assert_int_equal(r.mirrors[0].online, 1);
	assert_int_equal(r.mirrors[1].online, 1);
	assert_int_equal(r.checkpoints, 1);
	uint8_t *want;
	size_t wlen = prog_full(&p, 1, &want);
	get_expect_state(f->st, "p", 1, want, wlen, 0); /* an old row: none */
	free(want);
	prog_change(&p, 2, 3);
	assert_int_equal(put_delta(f->st, "p", &p, 2, 1, &ack), 0);
	assert_int_equal(ack.depth, 1);
	wlen = prog_full(&p, 2, &want);
	get_expect(f->st, "p", 2, want, wlen);
	free(want);
	store_free(f->st);
	f->st = NULL;
	/* both mirrors have the new columns */
	for (int i = 0; i < 2; i++) {
		sqlite3 *db;
		sqlite3_stmt *s;
		int cols = 0;
		snprintf(path, sizeof(path), "%s/meta.db", f->mirrors[i]);
		assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
		assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA table_info(checkpoints)", -1,
						    &s, NULL), SQLITE_OK);
		while (sqlite3_step(s) == SQLITE_ROW)
			cols++;
		sqlite3_finalize(s);
		assert_int_equal(cols, 13);
		cols = 0;
		assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA table_info(processes)", -1,
						    &s, NULL), SQLITE_OK);
		while (sqlite3_step(s) == SQLITE_ROW)
			cols++;
		sqlite3_finalize(s);
		sqlite3_close(db);
		assert_int_equal(cols, 11);
	}
	open_store(f);
	/* and the other one alone serves the chain */
	store_free(f->st);
	tu_rmrf(f->m0);
	open_store(f);
	wlen = prog_full(&p, 2, &want);
	get_expect(f->st, "p", 2, want, wlen);
	free(want);
	free(p.live);
}

/* ---- compressed chunk files ---------------------------------------- */

#define ZMAGIC "\x89rtcz\r\n\x1a"
#define ZIMG (64 * DCHUNK) /* 1 MiB */

/* Checkpoint-like content: most 16 KiB chunks hold text records (they
 * compress), every fourth is random (it does not). */
static void fill_mixed(uint8_t *buf, size_t len, uint64_t seed)
{
	for (size_t off = 0; off < len; off += DCHUNK) {
		size_t n = len - off < DCHUNK ? len - off : DCHUNK, at = 0;
		size_t idx = off / DCHUNK;
		if (idx % 4 == 3) {
			tu_fill(buf + off, n, seed * 1000 + idx);
			continue;
		}
		while (at < n) {
			char line[80];
			int k = snprintf(line, sizeof(line), "%" PRIu64 ":%zu: counter=%zu "
					 "state=running\n", seed, idx, at * 7919 % 100003);
			size_t c = (size_t)k < n - at ? (size_t)k : n - at;
			memcpy(buf + off + at, line, c);
			at += c;
		}
	}
}

/* Sum of a mirror's chunk file sizes; *zfiles gets how many are in the
 * compressed form, *files how many there are. */
static uint64_t disk_bytes(const char *mirror, int *zfiles, int *files)
{
	char dir[600], path[900];
	uint64_t sum = 0;
	*zfiles = *files = 0;
	for (int i = 0; i < 256; i++) {
		snprintf(dir, sizeof(dir), "%s/chunks/%02x", mirror, i);
		DIR *d = opendir(dir);
		struct dirent *e;
		while (d && (e = readdir(d))) {
			uint8_t head[8] = { 0 };
			struct stat sb;
			if (e->d_name[0] == '.')
				continue;
			snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
			assert_int_equal(stat(path, &sb), 0);
			FILE *fp = fopen(path, "rb");
			assert_non_null(fp);
			size_t got = fread(head, 1, sizeof(head), fp);
			fclose(fp);
			sum += (uint64_t)sb.st_size;
			(*files)++;
			*zfiles += got == 8 && memcmp(head, ZMAGIC, 8) == 0;
		}
		if (d)
			closedir(d);
	}
	return sum;
}

/* Store the compressible image of seed as (process, 1, seq). */
static void put_mixed(struct store *st, const char *process, uint64_t seq,
		      uint64_t seed)
{
	struct proto_put_ack ack;
	uint8_t *img = malloc(ZIMG);
	fill_mixed(img, ZIMG, seed);
	assert_int_equal(put_img(st, process, 1, seq, 0, 0, NULL, img, ZIMG, &ack), 0);
	free(img);
}

/* GET (process, 1, seq) and compare it with the image of seed. */
static void get_mixed(struct store *st, const char *process, uint64_t seq,
		      uint64_t seed)
{
	struct proto_ckpt_meta m;
	uint8_t *want = malloc(ZIMG), *got;
	size_t len;
	fill_mixed(want, ZIMG, seed);
	assert_int_equal(get_img(st, process, 1, seq, &m, &got, &len), 0);
	assert_int_equal(len, ZIMG);
	assert_memory_equal(got, want, ZIMG);
	free(got);
	free(want);
}

static void reopen_compress(struct fixture *f, enum store_compress c, int level)
{
	store_free(f->st);
	f->st = NULL;
	f->compress = c;
	f->compress_level = level;
	open_store(f);
}

/* The path of chunk idx (of DCHUNK) of the image of seed in mirror. */
static void mixed_chunk_path(const char *mirror, uint64_t seed, size_t idx,
			     char *out, size_t len)
{
	uint8_t *img = malloc(ZIMG), h[PROTO_HASH_SIZE];
	fill_mixed(img, ZIMG, seed);
	proto_chunk_hash(img + idx * DCHUNK, DCHUNK, h);
	chunkfile_path(mirror, h, out, len);
	free(img);
}

/* With compression on, compressible checkpoints take fewer bytes on disk
 * (incompressible chunks stay raw), read back byte-exact, and the same
 * content is still one chunk (deduplicated, nothing new written). */
static void test_compressed_store(void **state)
{
	struct fixture *f = *state;
	int z0, n0, z1, n1;

	f->retain = 10;
	reopen_compress(f, STORE_COMPRESS_ZSTD, 0);
	put_mixed(f->st, "p", 1, 1);
	uint64_t d0 = disk_bytes(f->m0, &z0, &n0), d1 = disk_bytes(f->m1, &z1, &n1);
	print_message("1 MiB checkpoint: %" PRIu64 " bytes on disk per mirror "
		      "(%d of %d chunk files compressed)\n", d0, z0, n0);
	assert_int_equal(n0, 64);
	assert_int_equal(z0, 48);             /* the random quarter stays raw */
	assert_true(d0 < ZIMG / 2);
	assert_true(d0 > ZIMG / 4);           /* the raw quarter alone */
	assert_int_equal(d1, d0);
	assert_int_equal(z1, z0);
	assert_int_equal(last_stats.new_chunks, 64);
	assert_int_equal(last_stats.new_bytes, ZIMG);
	assert_int_equal(last_stats.disk_bytes, d0);
	get_mixed(f->st, "p", 1, 1);

	/* the same content again (another process): no new chunk file */
	put_mixed(f->st, "q", 1, 1);
	assert_int_equal(last_stats.new_chunks, 0);
	assert_int_equal(last_stats.disk_bytes, 0);
	assert_int_equal(disk_bytes(f->m0, &z0, &n0), d0);
	assert_int_equal(n0, 64);
	get_mixed(f->st, "q", 1, 1);

	/* other levels work the same, with the same dedup */
	reopen_compress(f, STORE_COMPRESS_ZSTD, 19);
	put_mixed(f->st, "r", 1, 2);
	assert_true(last_stats.disk_bytes < last_stats.new_bytes / 2);
	put_mixed(f->st, "s", 1, 1);
	assert_int_equal(last_stats.new_chunks, 0);
	get_mixed(f->st, "r", 1, 2);
	get_mixed(f->st, "s", 1, 1);

	/* a level out of range, or an unknown mode, is a config error */
	struct store *st = NULL;
	struct store_options o = {
		.mirrors = f->mirrors, .mirror_count = 2,
		.compress = STORE_COMPRESS_ZSTD, .compress_level = 20,
	};
	assert_int_equal(store_open(&o, &st), RTCMS_ECONFIG);
	o.compress_level = -1;
	assert_int_equal(store_open(&o, &st), RTCMS_ECONFIG);
	o.compress_level = 3;
	o.compress = (enum store_compress)7;
	assert_int_equal(store_open(&o, &st), RTCMS_ECONFIG);
	assert_null(st);
}

/* Compression toggled between opens (off -> on -> off): raw and compressed
 * chunk files coexist, everything stays readable, a raw chunk dedups a
 * PUT made with compression on, GC removes either form, the orphan sweep
 * at open removes either form, and a scrub finds nothing wrong. */
static void test_compression_toggled(void **state)
{
	struct fixture *f = *state;
	struct proto_scrub_reply r;
	int z, n;

	f->retain = 10;
	reopen_compress(f, STORE_COMPRESS_OFF, 0);
	put_mixed(f->st, "a", 1, 1);
	uint64_t da = disk_bytes(f->m0, &z, &n);
	assert_int_equal(z, 0);
	assert_int_equal(da, ZIMG);
	assert_int_equal(last_stats.disk_bytes, ZIMG);

	reopen_compress(f, STORE_COMPRESS_ZSTD, 3);
	put_mixed(f->st, "b", 1, 2);
	uint64_t dab = disk_bytes(f->m0, &z, &n);
	assert_int_equal(z, 48);
	assert_int_equal(n, 128);
	assert_true(dab < da + ZIMG / 2);
	/* a's raw chunks count as stored: nothing new for the same content */
	put_mixed(f->st, "a2", 1, 1);
	assert_int_equal(last_stats.new_chunks, 0);
	assert_int_equal(disk_bytes(f->m0, &z, &n), dab);
	get_mixed(f->st, "a", 1, 1);
	get_mixed(f->st, "b", 1, 2);

	reopen_compress(f, STORE_COMPRESS_OFF, 0);
	put_mixed(f->st, "c", 1, 3);
	assert_int_equal(last_stats.disk_bytes, ZIMG);
	get_mixed(f->st, "a", 1, 1);
	get_mixed(f->st, "a2", 1, 1);
	get_mixed(f->st, "b", 1, 2);
	get_mixed(f->st, "c", 1, 3);
	assert_int_equal(store_scrub(f->st, false, &r), 0);
	for (int i = 0; i < 2; i++) {
		assert_int_equal(r.mirrors[i].chunks, 192);
		assert_int_equal(r.mirrors[i].bytes, 3 * ZIMG);
		assert_int_equal(r.mirrors[i].corrupt + r.mirrors[i].missing, 0);
	}
	assert_int_equal(r.unrepairable, 0);

	/* GC: deleting b removes its compressed files on both mirrors */
	assert_int_equal(store_delete(f->st, "b", 0, 0), 1);
	for (int i = 0; i < 2; i++) {
		uint64_t d = disk_bytes(f->mirrors[i], &z, &n);
		assert_int_equal(z, 0);
		assert_int_equal(n, 128);
		assert_int_equal(d, 2 * ZIMG);
	}
	/* the orphan sweep at open: an unreferenced compressed file (left
	 * by a PUT that never committed) and a raw one go */
	uint8_t *img = malloc(ZIMG), h[PROTO_HASH_SIZE];
	struct chunkfile_enc enc;
	fill_mixed(img, ZIMG, 9);
	proto_chunk_hash(img, DCHUNK, h);
	chunkfile_encode(img, DCHUNK, 3, &enc);
	assert_non_null(enc.buf);
	assert_int_equal(chunkfile_write_enc(f->m0, h, &enc, 1), 0);
	chunkfile_enc_free(&enc);
	proto_chunk_hash(img + 3 * DCHUNK, DCHUNK, h);
	assert_int_equal(chunkfile_write(f->m1, h, img + 3 * DCHUNK, DCHUNK, 1), 0);
	disk_bytes(f->m0, &z, &n);
	assert_int_equal(z, 1);
	assert_int_equal(n, 129);
	disk_bytes(f->m1, &z, &n);
	assert_int_equal(z, 0);
	assert_int_equal(n, 129);
	reopen_compress(f, STORE_COMPRESS_ZSTD, 3);
	for (int i = 0; i < 2; i++) {
		assert_int_equal(disk_bytes(f->mirrors[i], &z, &n), 2 * ZIMG);
		assert_int_equal(z, 0);
		assert_int_equal(n, 128);
	}
	get_mixed(f->st, "c", 1, 3);
	free(img);
}

/* A damaged compressed copy (a flipped byte, a truncated file) is found
 * by a scrub and repaired from the other mirror, and by a GET. */
static void test_compressed_scrub_repair(void **state)
{
	struct fixture *f = *state;
	struct proto_scrub_reply r;
	char p0[4200], p1[4200];
	uint32_t repaired = 0;
	struct stat sb;

	reopen_compress(f, STORE_COMPRESS_ZSTD, 3);
	put_mixed(f->st, "p", 1, 1);
	/* chunks 0 and 1 compress (text), chunk 3 does not */
	mixed_chunk_path(f->m1, 1, 0, p0, sizeof(p0));
	mixed_chunk_path(f->m1, 1, 1, p1, sizeof(p1));
	assert_int_equal(stat(p0, &sb), 0);
	off_t zsize = sb.st_size;
	assert_true(zsize < DCHUNK / 2);
	flip_byte(p0); /* the magic */
	FILE *fp = fopen(p1, "r+b");
	assert_non_null(fp);
	fseek(fp, 200, SEEK_SET);
	int c = fgetc(fp);
	fseek(fp, 200, SEEK_SET);
	fputc(c ^ 0x40, fp);
	fclose(fp);
	assert_int_equal(store_scrub(f->st, false, &r), 0);
	assert_int_equal(r.mirrors[1].corrupt, 2);
	assert_int_equal(r.mirrors[0].corrupt, 0);
	assert_int_equal(store_scrub(f->st, true, &r), 0);
	assert_int_equal(r.mirrors[1].repaired, 2);
	assert_int_equal(store_scrub(f->st, true, &r), 0);
	assert_int_equal(r.mirrors[1].corrupt + r.mirrors[1].missing, 0);
	assert_int_equal(r.mirrors[1].chunks, 64);
	/* rewritten compressed, as the store writes now */
	assert_int_equal(stat(p0, &sb), 0);
	assert_int_equal(sb.st_size, zsize);

	/* mirror 0 (read first): truncated and corrupt copies, repaired by
	 * the GET */
	mixed_chunk_path(f->m0, 1, 0, p0, sizeof(p0));
	mixed_chunk_path(f->m0, 1, 5, p1, sizeof(p1));
	assert_int_equal(truncate(p0, zsize - 3), 0);
	assert_int_equal(stat(p1, &sb), 0);
	assert_int_equal(truncate(p1, sb.st_size / 2), 0);
	struct proto_ckpt_meta m;
	struct store_get *g;
	uint8_t *buf = malloc(PROTO_MAX_CHUNK);
	struct proto_chunk ch;
	assert_int_equal(store_get_open(f->st, "p", 1, 1, &g, &m), 0);
	while (store_get_next(g, buf, &ch) == 0)
		;
	repaired = store_get_repaired(g);
	store_get_close(g);
	free(buf);
	assert_int_equal(repaired, 2);
	get_mixed(f->st, "p", 1, 1);
	assert_int_equal(store_scrub(f->st, false, &r), 0);
	assert_int_equal(r.mirrors[0].corrupt + r.mirrors[1].corrupt, 0);
}

/* A wiped mirror is resynchronised at open from compressed chunk files:
 * compressed again with compression on; raw with it off. */
static void test_compressed_resync(void **state)
{
	struct fixture *f = *state;
	int z0, n0, z1, n1;
	char path[700];

	f->retain = 10;
	reopen_compress(f, STORE_COMPRESS_ZSTD, 3);
	put_mixed(f->st, "p", 1, 1);
	put_mixed(f->st, "q", 1, 2);
	store_free(f->st);
	f->st = NULL;
	tu_rmrf(f->m1);
	open_store(f);
	uint64_t d0 = disk_bytes(f->m0, &z0, &n0), d1 = disk_bytes(f->m1, &z1, &n1);
	assert_int_equal(n1, n0);
	assert_int_equal(n1, 128);
	assert_int_equal(z1, z0);
	assert_int_equal(d1, d0);
	/* mirror 0's chunks wiped, compression now off: resynced raw from
	 * mirror 1's compressed files */
	store_free(f->st);
	f->st = NULL;
	snprintf(path, sizeof(path), "%s/chunks", f->m0);
	tu_rmrf(path);
	f->compress = STORE_COMPRESS_OFF;
	open_store(f);
	d0 = disk_bytes(f->m0, &z0, &n0);
	assert_int_equal(n0, 128);
	assert_int_equal(z0, 0);
	assert_int_equal(d0, 2 * ZIMG);
	get_mixed(f->st, "p", 1, 1);
	get_mixed(f->st, "q", 1, 2);
	/* mirror 1 alone still serves everything */
	store_free(f->st);
	tu_rmrf(f->m0);
	open_store(f);
	get_mixed(f->st, "p", 1, 1);
	get_mixed(f->st, "q", 1, 2);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_put_get_roundtrip, setup, teardown),
		cmocka_unit_test_setup_teardown(test_idempotent_and_conflicting_put, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_chunks_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_retention_and_gc, setup, teardown),
		cmocka_unit_test_setup_teardown(test_shared_chunks_survive, setup, teardown),
		cmocka_unit_test_setup_teardown(test_list_filters_and_pages, setup, teardown),
		cmocka_unit_test_setup_teardown(test_claims, setup, teardown),
		cmocka_unit_test_setup_teardown(test_gave_up_claims, setup, teardown),
		cmocka_unit_test_setup_teardown(test_concurrent_claims, setup, teardown),
		cmocka_unit_test_setup_teardown(test_abort_keeps_other_pins, setup, teardown),
		cmocka_unit_test_setup_teardown(test_read_repair_and_scrub, setup, teardown),
		cmocka_unit_test_setup_teardown(test_resync_wiped_mirror, setup, teardown),
		cmocka_unit_test_setup_teardown(test_failing_mirror_degrades, setup, teardown),
		cmocka_unit_test_setup_teardown(test_all_mirrors_failing, setup, teardown),
		cmocka_unit_test_setup_teardown(test_disk_full_everywhere, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unreadable_meta_replaced, setup, teardown),
		cmocka_unit_test_setup_teardown(test_lost_metadata_refuses_start, setup, teardown),
		cmocka_unit_test_setup_teardown(test_scrub_brings_mirror_back, setup, teardown),
		cmocka_unit_test_setup_teardown(test_stream_bounded_memory, setup, teardown),
		cmocka_unit_test_setup_teardown(test_put_newer_incarnation_fences, setup, teardown),
		cmocka_unit_test_setup_teardown(test_commit_after_lease_and_list_claimed, setup, teardown),
		cmocka_unit_test_setup_teardown(test_abort_removes_its_files, setup, teardown),
		cmocka_unit_test_setup_teardown(test_delete_during_get, setup, teardown),
		cmocka_unit_test_setup_teardown(test_diverged_metadata_detected, setup, teardown),
		cmocka_unit_test_setup_teardown(test_parallel_writes_and_gc, setup, teardown),
		cmocka_unit_test_setup_teardown(test_delta_chain_get, setup, teardown),
		cmocka_unit_test_setup_teardown(test_delta_base_missing, setup, teardown),
		cmocka_unit_test_setup_teardown(test_retention_keeps_chains, setup, teardown),
		cmocka_unit_test_setup_teardown(test_delete_base_busy, setup, teardown),
		cmocka_unit_test_setup_teardown(test_shared_chunks_chains_gc, setup, teardown),
		cmocka_unit_test_setup_teardown(test_delta_state_hash_mismatch, setup, teardown),
		cmocka_unit_test_setup_teardown(test_old_meta_db_upgraded, setup, teardown),
		cmocka_unit_test_setup_teardown(test_compressed_store, setup, teardown),
		cmocka_unit_test_setup_teardown(test_compression_toggled, setup, teardown),
		cmocka_unit_test_setup_teardown(test_compressed_scrub_repair, setup, teardown),
		cmocka_unit_test_setup_teardown(test_compressed_resync, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
