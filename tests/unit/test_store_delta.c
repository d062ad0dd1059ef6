/*
 * test_store_delta.c - delta checkpoints: chains assembled by GET, a
 * missing base, retention and DELETE keeping chains whole, shared chunks
 * across chains, state hash checks.
 */
#include "store_fixture.h"

/* Change the data size to blocks (every block counts as changed). */
static void prog_resize(struct prog *p, uint64_t seq, uint32_t blocks)
{
	p->blocks = blocks;
	for (uint32_t b = 0; b < DBLOCKS; b++)
		p->versions[b] = seq;
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
	assert_int_equal(put_delta(f->st, "p", &p, 4, 3, &ack), PUT_STORED);
	assert_int_equal(ack.existed, 1);
	assert_int_equal(ack.depth, 3);
	/* the same state sent otherwise (full, as a second manager may):
	 * stored already; another state under the same key: EEXIST */
	assert_int_equal(put_full(f->st, "p", &p, 4, &ack), PUT_STORED);
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
	struct proto_chunk c = { 0 };
	uint8_t buf[16];
	assert_int_equal(store_get_open_meta(f->st, "p", 1, 3, &g, &m), 0);
	assert_int_equal(m.base, 2);
	assert_int_equal(m.full_size, flen[3]);
	assert_true(m.size < flen[3] / 10);
	assert_int_equal(m.chunk_count, (m.size + DCHUNK - 1) / DCHUNK);
	assert_int_equal(m.spec_len, 4);
	bool end = false;
	assert_int_equal(store_get_next(g, buf, &c, &end), 0);
	assert_true(end);
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
	assert_int_equal(tu_count_chunk_copies(f->m0), 0);
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
	struct proto_chunk c = { 0 };
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
	assert_int_equal(tu_count_chunk_copies(f->m0), 0);
	assert_int_equal(tu_count_chunk_copies(f->m1), 0);
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
	assert_int_equal(tu_count_chunk_copies(f->m0), (int)r.chunks);
	assert_int_equal(tu_count_chunk_copies(f->m1), (int)r.chunks);
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
		assert_int_equal(tu_count_chunk_copies(f->m0), 0);
		assert_int_equal(tu_count_chunk_copies(f->m1), 0);
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

/* The mirror's stored chunks (records in its packs, chunk files) are
 * exactly the set. */
static void files_exactly(const char *mirror, const struct hashset *s)
{
	uint8_t *got;
	int n = tu_chunk_list(mirror, &got);
	assert_true(n >= 0);
	for (int i = 0; i < n; i++) {
		size_t k;
		char hx[17];
		for (k = 0; k < s->n && memcmp(s->h[k], got + 32 * i, PROTO_HASH_SIZE) != 0; k++)
			;
		if (k == s->n)
			fail_msg("%s: chunk %s… is referenced by nothing", mirror,
				 sodium_bin2hex(hx, sizeof(hx), got + 32 * i, 8));
	}
	assert_int_equal(n, s->n);
	free(got);
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

/* The store serves a chain as stored; one that does not give its state
 * hash, or does not apply, is refused by the reader that assembles it
 * (ECORRUPT); its metadata stays readable and the full image below it
 * is served. */
static void test_delta_state_hash_mismatch(void **state)
{
	struct fixture *f = *state;
	struct proto_put_ack ack;
	struct proto_ckpt_meta m;
	struct store_get *g;
	struct prog p;
	uint8_t *full, *d, *got, sh[STATE_HASH_SIZE];
	size_t glen;

	prog_init(&p, 64, 16);
	assert_int_equal(put_full(f->st, "p", &p, 1, &ack), 0);
	prog_change(&p, 2, 4);
	size_t flen = prog_full(&p, 2, &full);
	assert_int_equal(state_hash(full, flen, sh), 0);
	sh[5] ^= 1;
	size_t dlen = prog_delta(&p, 2, 1, &d);
	assert_int_equal(put_img(f->st, "p", 1, 2, 1, flen, sh, d, dlen, &ack), 0);
	assert_int_equal(get_img(f->st, "p", 1, 2, &m, &got, &glen), RTCMS_ECORRUPT);
	assert_int_equal(store_get_open_meta(f->st, "p", 1, 2, &g, &m), 0);
	assert_int_equal(m.base, 1);
	store_get_close(g);
	/* without a state hash the same delta is served (the same image
	 * again is an idempotent PUT, whatever its state hash) */
	assert_int_equal(put_img(f->st, "p", 1, 2, 1, flen, NULL, d, dlen, &ack), PUT_STORED);
	assert_int_equal(store_delete(f->st, "p", 1, 2), 1);
	assert_int_equal(put_img(f->st, "p", 1, 2, 1, flen, NULL, d, dlen, &ack), 0);
	get_expect_state(f->st, "p", 2, full, flen, 0);

	/* not a delta at all, or an empty one: refused */
	uint8_t junk[5000];
	tu_fill(junk, sizeof(junk), 3);
	assert_int_equal(put_img(f->st, "p", 1, 3, 1, flen, NULL, junk, sizeof(junk), &ack), 0);
	assert_int_equal(get_img(f->st, "p", 1, 3, &m, &got, &glen), RTCMS_ECORRUPT);
	assert_int_equal(put_img(f->st, "p", 1, 4, 1, flen, NULL, d, 0, &ack), RTCMS_EINVAL);
	/* a delta against 1 stored as sequence 5: its header says 2 */
	assert_int_equal(put_img(f->st, "p", 1, 5, 1, flen, NULL, d, dlen, &ack), 0);
	assert_int_equal(get_img(f->st, "p", 1, 5, &m, &got, &glen), RTCMS_ECORRUPT);
	/* the full image below them is fine */
	assert_int_equal(get_img(f->st, "p", 1, 1, &m, &got, &glen), 0);
	free(got);
	free(full);
	free(d);
	free(p.live);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_delta_chain_get, setup, teardown),
		cmocka_unit_test_setup_teardown(test_delta_base_missing, setup, teardown),
		cmocka_unit_test_setup_teardown(test_retention_keeps_chains, setup, teardown),
		cmocka_unit_test_setup_teardown(test_delete_base_busy, setup, teardown),
		cmocka_unit_test_setup_teardown(test_shared_chunks_chains_gc, setup, teardown),
		cmocka_unit_test_setup_teardown(test_delta_state_hash_mismatch, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
