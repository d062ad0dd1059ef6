/*
 * test_store_retention.c - retention and garbage collection: old
 * checkpoints go, shared chunks survive, parallel chunk writes racing
 * retention.
 */
#include "store_fixture.h"

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
	assert_int_equal(tu_count_chunk_copies(f->m0), 4);
	assert_int_equal(tu_count_chunk_copies(f->m1), 4);
}

static void test_shared_chunks_survive(void **state)
{
	struct fixture *f = *state;
	/* the same content under two processes shares its chunks */
	assert_int_equal(put(f->st, "a", 1, 1, 16384, 9, 4096), 0);
	assert_int_equal(put(f->st, "b", 1, 1, 16384, 9, 4096), 0);
	assert_int_equal(tu_count_chunk_copies(f->m0), 4);
	assert_int_equal(store_delete(f->st, "a", 0, 0), 1);
	assert_int_equal(tu_count_chunk_copies(f->m0), 4);
	assert_int_equal(get_check(f->st, "b", 1, 1, 16384, 9, NULL), 0);
	assert_int_equal(store_delete(f->st, "b", 1, 1), 1);
	assert_int_equal(tu_count_chunk_copies(f->m0), 0);
	assert_int_equal(store_delete(f->st, "b", 1, 1), RTCMS_ENOENT);
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
	struct proto_chunk chunks[PAR_CHUNKS] = { 0 };
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
	if (rc || !p) /* !p: stored already */
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
		struct proto_chunk ch = { 0 };
		uint8_t *buf = malloc(PROTO_MAX_CHUNK);
		int rc, n = 0;
		bool end;
		assert_int_equal(store_get_open(f->st, "keep", 1, seq, &g, &m), 0);
		while ((rc = store_get_next(g, buf, &ch, &end)) == 0 && !end)
			n++;
		assert_int_equal(rc, 0);
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
	assert_int_equal(tu_count_chunk_copies(f->m0), PAR_CHUNKS);
	assert_int_equal(tu_count_chunk_copies(f->m1), PAR_CHUNKS);
	assert_int_equal(store_delete(f->st, "keep", 0, 0), 1);
	assert_int_equal(tu_count_chunk_copies(f->m0), 0);
	assert_int_equal(tu_count_chunk_copies(f->m1), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_retention_and_gc, setup, teardown),
		cmocka_unit_test_setup_teardown(test_shared_chunks_survive, setup, teardown),
		cmocka_unit_test_setup_teardown(test_parallel_writes_and_gc, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
