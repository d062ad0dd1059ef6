/*
 * test_store.c - the store engine: PUT/GET, idempotency, retention and
 * garbage collection, shared chunks, claims (with an injected clock),
 * concurrent claims, fencing, mirror repair, resync at open, stale
 * metadata, and a failing mirror (fault injection).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <dirent.h>
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

#include "proto/msg.h"
#include "rtcms_error.h"
#include "store/chunkfile.h"
#include "store/store.h"
#include "testutil.h"

struct fixture {
	char *dir;
	char m0[512], m1[512];
	const char *mirrors[2];
	uint64_t clock;
	struct store *st;
	unsigned retain;
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

/* Store size bytes of content seed as (process, inc, seq) in chunks of
 * chunk bytes; returns the engine's result. */
static int put(struct store *st, const char *process, uint64_t inc,
	       uint64_t seq, size_t size, uint64_t seed, size_t chunk)
{
	uint8_t *data = malloc(size ? size : 1);
	struct proto_ckpt_meta m;
	struct proto_image_hash ih;
	struct proto_put_ack ack;
	struct store_put *p;
	uint32_t count = 0;

	tu_fill(data, size, seed);
	memset(&m, 0, sizeof(m));
	snprintf(m.process, sizeof(m.process), "%s", process);
	m.incarnation = inc;
	m.sequence = seq;
	m.node = 7;
	m.size = size;
	m.spec = (const uint8_t *)"spec";
	m.spec_len = 4;
	proto_image_hash_init(&ih, size);
	for (size_t off = 0; off < size; off += chunk) {
		uint8_t h[PROTO_HASH_SIZE];
		size_t len = size - off < chunk ? size - off : chunk;
		proto_chunk_hash(data + off, len, h);
		proto_image_hash_update(&ih, off, (uint32_t)len, h);
		count++;
	}
	proto_image_hash_final(&ih, m.hash);
	m.chunk_count = count;
	int rc = store_put_begin(st, &m, &p, &ack);
	if (rc != 0) {
		free(data);
		return rc;
	}
	for (size_t off = 0; off < size; off += chunk) {
		struct proto_chunk c;
		c.offset = off;
		c.len = (uint32_t)(size - off < chunk ? size - off : chunk);
		c.data = data + off;
		proto_chunk_hash(c.data, c.len, c.hash);
		rc = store_put_check(p, &c);
		if (rc == 0)
			rc = store_put_write(p, &c);
		if (rc) {
			store_put_abort(p);
			free(data);
			return rc;
		}
	}
	rc = store_put_commit(p, count, &ack);
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

static int count_files(const char *mirror)
{
	char path[600];
	int n = 0;
	for (int i = 0; i < 256; i++) {
		snprintf(path, sizeof(path), "%s/chunks/%02x", mirror, i);
		DIR *d = opendir(path);
		struct dirent *e;
		while (d && (e = readdir(d)))
			n += e->d_name[0] != '.';
		if (d)
			closedir(d);
	}
	return n;
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
	assert_int_equal(count_files(f->m0), count_files(f->m1));
	assert_int_equal(count_files(f->m0), 4 + 25);
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
	assert_int_equal(count_files(f->m0), 4);
	assert_int_equal(count_files(f->m1), 4);
}

static void test_shared_chunks_survive(void **state)
{
	struct fixture *f = *state;
	/* the same content under two processes shares its chunks */
	assert_int_equal(put(f->st, "a", 1, 1, 16384, 9, 4096), 0);
	assert_int_equal(put(f->st, "b", 1, 1, 16384, 9, 4096), 0);
	assert_int_equal(count_files(f->m0), 4);
	assert_int_equal(store_delete(f->st, "a", 0, 0), 1);
	assert_int_equal(count_files(f->m0), 4);
	assert_int_equal(get_check(f->st, "b", 1, 1, 16384, 9, NULL), 0);
	assert_int_equal(store_delete(f->st, "b", 1, 1), 1);
	assert_int_equal(count_files(f->m0), 0);
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

	assert_int_equal(store_claim(f->st, "p", "m1", 1000, &ok, &err), RTCMS_ENOENT);
	assert_int_equal(put(f->st, "p", 1, 1, 5000, 1, 4096), 0);
	assert_int_equal(store_claim(f->st, "p", "m1", 1000, &ok, &err), 0);
	assert_int_equal(ok.incarnation, 1);
	assert_int_equal(ok.sequence, 1);
	assert_int_equal(ok.expires_ms, f->clock + 1000);
	/* another claimant is refused, told who holds it and until when */
	assert_int_equal(store_claim(f->st, "p", "m2", 1000, &ok2, &err), RTCMS_ECLAIMED);
	assert_string_equal(err.who, "m1");
	assert_int_equal(err.detail, f->clock + 1000);
	/* the holder renews: same claim id */
	f->clock += 500;
	assert_int_equal(store_claim(f->st, "p", "m1", 1000, &ok2, &err), 0);
	assert_int_equal(ok2.claim_id, ok.claim_id);
	/* the claimed checkpoint is neither deleted nor retained away */
	assert_int_equal(store_delete(f->st, "p", 1, 1), RTCMS_ECLAIMED);
	for (uint64_t s = 2; s <= 4; s++)
		assert_int_equal(put(f->st, "p", 1, s, 5000, s, 4096), 0);
	assert_int_equal(get_check(f->st, "p", 1, 1, 5000, 1, NULL), 0);
	/* after the lease, the other claimant wins */
	f->clock += 1001;
	assert_int_equal(store_claim(f->st, "p", "m2", 1000, &ok2, &err), 0);
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
	assert_int_equal(store_claim(f->st, "p", "m3", 1000, &ok, &err), 0);
	assert_int_equal(store_release(f->st, "p", ok.claim_id), 0);
	assert_int_equal(store_claim(f->st, "p", "m4", 1000, &ok, &err), 0);
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
	assert_int_equal(count_files(f->m0), 1);
	assert_int_equal(count_files(f->m1), 1);
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
		int rc = store_claim(r->st, "p", r->name, 60000, &ok, &err);
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
	assert_int_equal(count_files(f->m1), count_files(f->m0));
	/* mirror 1 alone now holds everything: wipe mirror 0's chunks */
	store_free(f->st);
	snprintf(cmd, sizeof(cmd), "%s/chunks", f->m0);
	tu_rmrf(cmd);
	open_store(f);
	assert_int_equal(count_files(f->m0), 20);
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
	assert_int_equal(count_files(f->m1), count_files(f->m0));
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
	assert_int_equal(count_files(f->m0), 1);
	assert_int_equal(count_files(f->m1), 1);
	store_put_abort(put_open_one(f->st, "b", 1, 4096, 42, 1, b));
	assert_int_equal(count_files(f->m0), 1);
	assert_int_equal(get_check(f->st, "c", 1, 1, 4096, 42, NULL), 0);
	/* a commit that fails (image hash) removes its files too */
	struct store_put *p = put_open_one(f->st, "a", 1, 4096, 8, 1, a);
	struct proto_put_ack ack;
	assert_int_equal(store_put_commit(p, 2, &ack), RTCMS_EPROTO);
	assert_int_equal(count_files(f->m0), 1);
	assert_int_equal(count_files(f->m1), 1);
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
	assert_int_equal(count_files(f->m0), 3);
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
	assert_int_equal(count_files(f->m0), 0);
	assert_int_equal(count_files(f->m1), 0);
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
	assert_int_equal(count_files(f->m0), PAR_CHUNKS);
	assert_int_equal(count_files(f->m1), PAR_CHUNKS);
	assert_int_equal(store_delete(f->st, "keep", 0, 0), 1);
	assert_int_equal(count_files(f->m0), 0);
	assert_int_equal(count_files(f->m1), 0);
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
	assert_int_equal(count_files(f->m1), count_files(f->m0));
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
	assert_int_equal(count_files(f->m0), 3);
	assert_int_equal(count_files(f->m1), 3);
	remove_meta(f->m0);
	remove_meta(f->m1);
	assert_int_equal(store_open(&o, &st), RTCMS_ECORRUPT);
	assert_null(st);
	assert_int_equal(count_files(f->m0), 3);
	assert_int_equal(count_files(f->m1), 3);
	/* a wiped mirror next to the lost one changes nothing */
	tu_rmrf(f->m1);
	assert_int_equal(store_open(&o, &st), RTCMS_ECORRUPT);
	assert_int_equal(count_files(f->m0), 3);
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
	assert_int_equal(count_files(f->m1), count_files(f->m0));
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
	assert_int_equal(store_claim(f->st, "p", "m1", 1000, &ok, &err), 0);
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
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
