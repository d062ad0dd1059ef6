/*
 * test_store_packs.c - the store's chunks in pack files: packs rolled at
 * their size limit, a torn record at a pack's end after a crash ignored,
 * the records of a PUT that never committed are dead bytes, compaction
 * (live chunks still read and verified after it, space reclaimed, a read
 * that meets a moved chunk, passes on another thread while PUTs and
 * retention run), a damaged record repaired by a fresh one from
 * the other mirror, a mirror whose pack went missing resynchronised, a
 * mirror whose meta.db was replaced finding its chunks in its packs, and
 * both finding them after a meta.db from before a compaction came back, two
 * open PUTs sharing a pending record, the pack being written removed
 * behind the store's back, and the chunk files of the layout before packs
 * served, deduplicated against, collected and repaired.
 */
#include "store_fixture.h"

#include <stdatomic.h>

#include "store/pack.h"
#include "store/packfile.h"

#define CH 16384 /* chunk size of these tests */

/* Records of CH-byte chunks: 3 fit in a 64 KiB pack. */
#define SMALL_PACK (64u << 10)

static int setup_small_packs(void **state)
{
	setup(state);
	struct fixture *f = *state;
	store_free(f->st);
	f->pack_size = SMALL_PACK;
	f->retain = 100;
	open_store(f);
	return 0;
}

static void reopen(struct fixture *f)
{
	store_free(f->st);
	f->st = NULL;
	open_store(f);
}

/* The ids of the chunks of n chunks of content seed. */
static void chunk_ids(uint64_t seed, int n, uint8_t (*h)[PROTO_HASH_SIZE])
{
	uint8_t *data = malloc((size_t)n * CH);
	tu_fill(data, (size_t)n * CH, seed);
	for (int i = 0; i < n; i++)
		proto_chunk_hash(data + (size_t)i * CH, CH, h[i]);
	free(data);
}

/* Every pack of mirror at most max bytes long; their number. */
static int packs_within(const char *mirror, uint64_t max)
{
	char path[700];
	snprintf(path, sizeof(path), "%s/packs", mirror);
	DIR *d = opendir(path);
	struct dirent *e;
	int n = 0;
	assert_non_null(d);
	while ((e = readdir(d))) {
		char p[1400];
		struct stat sb;
		if (e->d_name[0] == '.')
			continue;
		snprintf(p, sizeof(p), "%s/%s", path, e->d_name);
		assert_int_equal(stat(p, &sb), 0);
		assert_true((uint64_t)sb.st_size <= max);
		n++;
	}
	closedir(d);
	return n;
}

/* GET (process, 1, seq) and compare it with want (size bytes). */
static void get_same_seq(struct store *st, const char *process, uint64_t seq,
			 const uint8_t *want, size_t size)
{
	struct proto_ckpt_meta m;
	struct store_get *g;
	struct proto_chunk c = { 0 };
	uint8_t *buf = malloc(CHUNKFILE_MAX);
	uint64_t got = 0;
	bool end = false;

	assert_int_equal(store_get_open(st, process, 1, seq, &g, &m), 0);
	assert_int_equal(m.size, size);
	while (store_get_next(g, buf, &c, &end) == 0 && !end) {
		assert_int_equal(c.offset, got);
		assert_memory_equal(c.data, want + got, c.len);
		got += c.len;
	}
	assert_true(end);
	assert_int_equal(got, size);
	store_get_close(g);
	free(buf);
}

static void get_same(struct store *st, const char *process, const uint8_t *want, size_t size)
{
	get_same_seq(st, process, 1, want, size);
}

/* Compaction passes until none is due; their sums into *out. */
static void compact_all(struct store *st, struct store_compact_stats *out)
{
	struct store_compact_stats cs;
	memset(out, 0, sizeof(*out));
	for (int pass = 0; pass < 10 && store_compact_due(st); pass++) {
		assert_int_equal(store_compact(st, &cs), 0);
		out->removed += cs.removed;
		out->compacted += cs.compacted;
		out->moved += cs.moved;
		out->reclaimed += cs.reclaimed;
	}
	assert_false(store_compact_due(st));
}

/* A scrub that verifies every copy and finds them all good. */
static void scrub_clean(struct store *st, uint64_t chunks)
{
	struct proto_scrub_reply r;
	assert_int_equal(store_scrub(st, false, &r), 0);
	for (int i = 0; i < 2; i++) {
		assert_int_equal(r.mirrors[i].corrupt + r.mirrors[i].missing, 0);
		assert_int_equal(r.mirrors[i].chunks, chunks);
	}
	assert_int_equal(r.unrepairable, 0);
}

/* Records go one after another into packs of at most the limit, a new
 * one begun when the next would not fit; the same content again writes
 * nothing; a record larger than the limit gets a pack of its own. */
static void test_packs_roll_over(void **state)
{
	struct fixture *f = *state;

	assert_int_equal(put(f->st, "p", 1, 1, 20 * CH, 1, CH), 0);
	assert_int_equal(last_stats.new_chunks, 20);
	assert_int_equal(last_stats.disk_bytes, 20 * CH);
	/* 16-byte header + 3 records of 48 + 16384 bytes per 64 KiB pack */
	assert_int_equal(packs_within(f->m0, SMALL_PACK), 7);
	assert_int_equal(packs_within(f->m1, SMALL_PACK), 7);
	assert_int_equal(tu_count_chunk_copies(f->m0), 20);
	assert_int_equal(tu_count_chunk_files(f->m0), 0);
	assert_int_equal(get_check(f->st, "p", 1, 1, 20 * CH, 1, NULL), 0);
	assert_int_equal(put(f->st, "q", 1, 1, 20 * CH, 1, CH), 0);
	assert_int_equal(last_stats.new_chunks, 0);
	assert_int_equal(tu_count_packs(f->m0, NULL), 7);
	scrub_clean(f->st, 20);

	/* packs smaller than a record: one record each */
	f->pack_size = 4096;
	reopen(f);
	assert_int_equal(put(f->st, "r", 1, 1, 3 * CH, 2, CH), 0);
	assert_int_equal(tu_count_packs(f->m0, NULL), 10);
	assert_int_equal(get_check(f->st, "r", 1, 1, 3 * CH, 2, NULL), 0);
	assert_int_equal(get_check(f->st, "p", 1, 1, 20 * CH, 1, NULL), 0);
}

/* A crash in the middle of an append leaves a torn record at the end of
 * a pack: the store opens, serves what was committed, writes new records
 * to a new pack, and a re-index of the pack does not take the torn one. */
static void test_torn_tail_ignored(void **state)
{
	struct fixture *f = *state;
	uint8_t h[20][PROTO_HASH_SIZE];
	char path[4200];
	uint64_t off, len, b0, b0_after;

	assert_int_equal(put(f->st, "p", 1, 1, 2 * CH, 1, CH), 0);
	store_free(f->st);
	f->st = NULL;
	/* the next append (a second copy of a chunk, as a repair or a
	 * compaction writes) was torn: its header and half its form on m0,
	 * part of its header on m1 */
	chunk_ids(1, 2, h);
	chunk_where(f->m0, h[1], path, sizeof(path), &off, &len);
	uint8_t rec[PACKFILE_RHDR + CH / 2];
	FILE *fp = fopen(path, "r+b");
	assert_non_null(fp);
	assert_int_equal(fseek(fp, (long)(off - PACKFILE_RHDR), SEEK_SET), 0);
	assert_int_equal(fread(rec, 1, sizeof(rec), fp), sizeof(rec));
	assert_int_equal(fseek(fp, 0, SEEK_END), 0);
	assert_int_equal(fwrite(rec, 1, sizeof(rec), fp), sizeof(rec));
	fclose(fp);
	chunk_where(f->m1, h[1], path, sizeof(path), &off, &len);
	fp = fopen(path, "ab");
	assert_non_null(fp);
	assert_int_equal(fwrite(rec, 1, 20, fp), 20);
	fclose(fp);
	tu_count_packs(f->m0, &b0);

	open_store(f);
	assert_int_equal(get_check(f->st, "p", 1, 1, 2 * CH, 1, NULL), 0);
	scrub_clean(f->st, 2);
	assert_int_equal(put(f->st, "q", 1, 1, 2 * CH, 2, CH), 0);
	assert_int_equal(tu_count_packs(f->m0, NULL), 2); /* a new one */
	assert_int_equal(get_check(f->st, "q", 1, 1, 2 * CH, 2, NULL), 0);

	/* m0's meta.db lost: copied from m1, m0 finds its chunks in its
	 * packs again (nothing copied: its packs stay as they were) */
	store_free(f->st);
	f->st = NULL;
	tu_count_packs(f->m0, &b0);
	remove_meta(f->m0);
	open_store(f);
	assert_int_equal(tu_count_chunk_copies(f->m0), 4);
	assert_int_equal(tu_count_packs(f->m0, &b0_after), 2);
	assert_int_equal(b0_after, b0);
	scrub_clean(f->st, 4);
	/* and m0 alone serves everything */
	store_free(f->st);
	f->st = NULL;
	tu_rmrf(f->m1);
	open_store(f);
	assert_int_equal(get_check(f->st, "p", 1, 1, 2 * CH, 1, NULL), 0);
	assert_int_equal(get_check(f->st, "q", 1, 1, 2 * CH, 2, NULL), 0);
}

/* Begin a PUT of n chunks of content seed and write them all, without
 * committing. */
static struct store_put *put_open(struct store *st, const char *process, int n,
				  uint64_t seed, struct proto_ckpt_meta *m, uint8_t **data)
{
	struct proto_image_hash ih;
	struct proto_put_ack ack;
	struct store_put *p;
	size_t size = (size_t)n * CH;

	*data = malloc(size);
	tu_fill(*data, size, seed);
	meta_for(m, process, 1, 1, size);
	proto_image_hash_init(&ih, size);
	for (int i = 0; i < n; i++) {
		uint8_t h[PROTO_HASH_SIZE];
		proto_chunk_hash(*data + (size_t)i * CH, CH, h);
		proto_image_hash_update(&ih, (uint64_t)i * CH, CH, h);
	}
	proto_image_hash_final(&ih, m->hash);
	m->chunk_count = (uint32_t)n;
	assert_int_equal(store_put_begin(st, m, &p, &ack), 0);
	assert_non_null(p);
	for (int i = 0; i < n; i++) {
		struct proto_chunk c = { 0 };
		c.offset = (uint64_t)i * CH;
		c.len = CH;
		c.data = *data + c.offset;
		proto_chunk_hash(c.data, CH, c.hash);
		assert_int_equal(store_put_check(p, &c), 0);
		assert_int_equal(store_put_write(p, &c), 0);
	}
	return p;
}

/* The records of a PUT that never commits are dead bytes: nothing places
 * them, and a pack holding nothing else goes at the next open. Two open
 * PUTs of one chunk share its pending record: the one that commits keeps
 * it even when the one that wrote it gives up. */
static void test_pending_records(void **state)
{
	struct fixture *f = *state;
	struct proto_ckpt_meta ma, mb;
	struct proto_put_ack ack;
	struct store_put_stats sa, sb;
	uint8_t *da, *db;

	f->pack_size = 0;
	reopen(f);
	struct store_put *a = put_open(f->st, "a", 4, 7, &ma, &da);
	struct store_put *b = put_open(f->st, "b", 4, 7, &mb, &db);
	store_put_stats(a, &sa);
	store_put_stats(b, &sb);
	assert_int_equal(sa.new_chunks, 4);
	assert_int_equal(sb.new_chunks, 0); /* a's pending records */
	assert_int_equal(tu_count_chunk_copies(f->m0), 0);
	store_put_abort(a);
	assert_int_equal(store_put_commit(b, 4, &ack), 0);
	assert_int_equal(tu_count_chunk_copies(f->m0), 4);
	assert_int_equal(tu_count_chunk_copies(f->m1), 4);
	assert_int_equal(get_check(f->st, "b", 1, 1, 4 * CH, 7, NULL), 0);
	free(da);
	free(db);

	/* abandoned alone (a crash before the commit): dead bytes */
	struct store_put *c = put_open(f->st, "c", 3, 8, &ma, &da);
	store_put_abort(c);
	free(da);
	assert_int_equal(tu_count_chunk_copies(f->m0), 4);
	reopen(f);
	assert_int_equal(get_check(f->st, "b", 1, 1, 4 * CH, 7, NULL), 0);
	/* the first run's pack holds b's records (and c's dead ones) */
	assert_int_equal(tu_count_packs(f->m0, NULL), 1);
	assert_int_equal(store_delete(f->st, "b", 0, 0), 1);
	struct store_compact_stats cs;
	compact_all(f->st, &cs);
	assert_int_equal(cs.removed, 2); /* one per mirror */
	assert_int_equal(tu_count_packs(f->m0, NULL), 0);
	assert_int_equal(tu_count_packs(f->m1, NULL), 0);
}

/* Image of n chunks: p's content where i % 3 == 0, another's else. */
static uint8_t *mixed(int n, uint64_t keep_seed, uint64_t other_seed)
{
	uint8_t *a = malloc((size_t)n * CH), *b = malloc((size_t)n * CH);
	tu_fill(a, (size_t)n * CH, keep_seed);
	tu_fill(b, (size_t)n * CH, other_seed);
	for (int i = 0; i < n; i += 3)
		memcpy(b + (size_t)i * CH, a + (size_t)i * CH, CH);
	free(a);
	return b;
}

/* GC leaves packs two-thirds dead: compaction copies their live records
 * to the write pack, moves the places in one transaction and unlinks the
 * old packs; what is left reads back verified (also by a GET that was
 * reading when the packs went), and the space is reclaimed. */
static void test_compaction(void **state)
{
	struct fixture *f = *state;
	struct proto_put_ack ack;
	struct proto_ckpt_meta m;
	struct store_compact_stats cs;
	uint64_t before, after;

	assert_int_equal(put(f->st, "p", 1, 1, 21 * CH, 1, CH), 0);
	uint8_t *q = mixed(21, 1, 2);
	meta_for(&m, "q", 1, 1, 21 * CH);
	assert_int_equal(put_data(f->st, &m, q, 21 * CH, CH, &ack), 0);
	assert_int_equal(last_stats.new_chunks, 14);
	assert_int_equal(tu_count_packs(f->m0, &before), 12);

	/* a GET of q reads its first chunk, then p goes and the packs are
	 * compacted under it */
	struct store_get *g;
	struct proto_chunk c = { 0 };
	uint8_t *buf = malloc(CHUNKFILE_MAX);
	bool end;
	assert_int_equal(store_get_open(f->st, "q", 1, 1, &g, &m), 0);
	assert_int_equal(store_get_next(g, buf, &c, &end), 0);
	assert_int_equal(store_delete(f->st, "p", 0, 0), 1);
	assert_true(store_compact_due(f->st));
	/* at most PACK_COMPACT_PASS packs per mirror copied in one pass */
	assert_int_equal(store_compact(f->st, &cs), 0);
	assert_int_equal(cs.compacted, 2 * PACK_COMPACT_PASS);
	assert_true(store_compact_due(f->st));
	struct store_compact_stats rest;
	compact_all(f->st, &rest);
	cs.removed += rest.removed;
	cs.compacted += rest.compacted;
	cs.moved += rest.moved;
	/* p's 7 packs on each mirror held one live record in three */
	assert_int_equal(cs.removed, 14);
	assert_int_equal(cs.compacted, 14);
	assert_int_equal(cs.moved, 14);
	for (uint64_t off = CH; ; off += CH) {
		assert_int_equal(store_get_next(g, buf, &c, &end), 0);
		if (end)
			break;
		assert_int_equal(c.offset, off);
		assert_memory_equal(c.data, q + off, CH);
	}
	store_get_close(g);
	free(buf);
	/* no dead byte left: q's 21 records in 7 packs */
	assert_int_equal(tu_count_packs(f->m0, &after), 7);
	assert_int_equal(after, 7 * PACKFILE_HDR + 21 * (CH + PACKFILE_RHDR));
	assert_true(after < before - 3 * SMALL_PACK);
	assert_int_equal(tu_count_chunk_copies(f->m0), 21);
	scrub_clean(f->st, 21);
	get_same(f->st, "q", q, 21 * CH);

	/* nothing left to do: a second pass changes nothing */
	assert_int_equal(store_compact(f->st, &cs), 0);
	assert_int_equal(cs.removed, 0);
	/* q alone on m1 after a restart */
	store_free(f->st);
	f->st = NULL;
	tu_rmrf(f->m0);
	open_store(f);
	get_same(f->st, "q", q, 21 * CH);
	free(q);
}

static void copy_file(const char *from, const char *to)
{
	FILE *in = fopen(from, "rb"), *out = fopen(to, "wb");
	char buf[65536];
	size_t n;
	assert_non_null(in);
	assert_non_null(out);
	while ((n = fread(buf, 1, sizeof(buf), in)) > 0)
		assert_int_equal(fwrite(buf, 1, n, out), n);
	fclose(in);
	assert_int_equal(fclose(out), 0);
}

/* Both mirrors' meta.db put back from a copy taken before a compaction
 * moved records: the places it knows point into packs that are gone; the
 * store finds the chunks again in the packs (a re-index of every mirror)
 * and serves what is still stored. */
static void test_meta_from_backup(void **state)
{
	struct fixture *f = *state;
	struct proto_put_ack ack;
	struct proto_ckpt_meta m;
	struct store_compact_stats cs;
	char from[700], to[700];

	assert_int_equal(put(f->st, "p", 1, 1, 9 * CH, 1, CH), 0);
	uint8_t *q = mixed(9, 1, 2);
	meta_for(&m, "q", 1, 1, 9 * CH);
	assert_int_equal(put_data(f->st, &m, q, 9 * CH, CH, &ack), 0);
	store_free(f->st);
	f->st = NULL;
	for (int i = 0; i < 2; i++) {
		snprintf(from, sizeof(from), "%s/meta.db", f->mirrors[i]);
		snprintf(to, sizeof(to), "%s/backup.db", f->mirrors[i]);
		copy_file(from, to);
	}
	open_store(f);
	assert_int_equal(store_delete(f->st, "q", 0, 0), 1);
	assert_int_equal(store_delete(f->st, "p", 0, 0), 1);
	assert_int_equal(put_data(f->st, &m, q, 9 * CH, CH, &ack), 0);
	compact_all(f->st, &cs);
	assert_true(cs.removed > 0); /* the packs the copy knows */
	store_free(f->st);
	f->st = NULL;
	for (int i = 0; i < 2; i++) {
		remove_meta(f->mirrors[i]);
		snprintf(from, sizeof(from), "%s/backup.db", f->mirrors[i]);
		snprintf(to, sizeof(to), "%s/meta.db", f->mirrors[i]);
		assert_int_equal(rename(from, to), 0);
	}
	open_store(f);
	get_same(f->st, "q", q, 9 * CH);
	/* p's own chunks went with its deletion: reported, not served */
	assert_int_equal(get_check(f->st, "p", 1, 1, 9 * CH, 1, NULL), RTCMS_ECORRUPT);
	free(q);
}

/* An image of n chunks for sequence seq whose chunks the neighbouring
 * sequences share in part: chunk j holds content (seq - j % 3, j / 3). */
static uint8_t *rolling(uint64_t seq, int n)
{
	uint8_t *img = malloc((size_t)n * CH);
	for (int j = 0; j < n; j++)
		tu_fill(img + (size_t)j * CH, CH, (seq + 10 - (uint64_t)(j % 3)) * 1000 + (uint64_t)(j / 3));
	return img;
}

struct compactor {
	struct store *st;
	atomic_int stop;
	int passes;
	uint64_t moved;
};

static void *compact_loop(void *arg)
{
	struct compactor *c = arg;
	do {
		struct store_compact_stats cs;
		assert_int_equal(store_compact(c->st, &cs), 0);
		c->moved += cs.moved;
		c->passes++;
		usleep(1000);
	} while (!atomic_load(&c->stop));
	return NULL;
}

/* PUTs, retention and reads while compaction passes run on another
 * thread: every checkpoint reads back as it was put, and afterwards
 * every copy on both mirrors is good and each mirror alone serves the
 * kept ones. */
static void test_compaction_concurrent(void **state)
{
	struct fixture *f = *state;
	struct compactor c = { .st = f->st, .stop = 0, .passes = 0, .moved = 0 };
	struct proto_put_ack ack;
	struct proto_ckpt_meta m;
	pthread_t th;

	f->retain = 2;
	reopen(f);
	c.st = f->st;
	assert_int_equal(pthread_create(&th, NULL, compact_loop, &c), 0);
	for (uint64_t seq = 1; seq <= 40; seq++) {
		uint8_t *img = rolling(seq, 12);
		meta_for(&m, "p", 1, seq, 12 * CH);
		assert_int_equal(put_data(f->st, &m, img, 12 * CH, CH, &ack), 0);
		get_same_seq(f->st, "p", seq, img, 12 * CH);
		free(img);
	}
	atomic_store(&c.stop, 1);
	pthread_join(th, NULL);
	assert_true(c.passes > 0);
	struct store_compact_stats cs;
	compact_all(f->st, &cs);
	print_message("%d compaction passes alongside, %" PRIu64 " records moved\n",
		      c.passes, c.moved + cs.moved);
	struct proto_scrub_reply r;
	assert_int_equal(store_status(f->st, &r), 0);
	scrub_clean(f->st, r.chunks);
	for (int alone = 0; alone < 2; alone++) {
		store_free(f->st);
		f->st = NULL;
		tu_rmrf(f->mirrors[alone]);
		open_store(f);
		for (uint64_t seq = 39; seq <= 40; seq++) {
			uint8_t *img = rolling(seq, 12);
			get_same_seq(f->st, "p", seq, img, 12 * CH);
			free(img);
		}
	}
}

/* A damaged record is never rewritten in place: the good copy from the
 * other mirror is appended and the place moves to it. */
static void test_repair_appends(void **state)
{
	struct fixture *f = *state;
	uint8_t h[3][PROTO_HASH_SIZE];
	char p0[4200], p1[4200];
	uint64_t o0, o1, n0, n1;
	uint32_t repaired = 0;

	assert_int_equal(put(f->st, "p", 1, 1, 3 * CH, 4, CH), 0);
	chunk_ids(4, 3, h);
	chunk_where(f->m0, h[1], p0, sizeof(p0), &o0, &n0);
	flip_at(p0, o0 + 77);
	assert_int_equal(get_check(f->st, "p", 1, 1, 3 * CH, 4, &repaired), 0);
	assert_int_equal(repaired, 1);
	chunk_where(f->m0, h[1], p1, sizeof(p1), &o1, &n1);
	assert_int_equal(n1, n0);
	assert_true(strcmp(p1, p0) != 0 || o1 > o0);
	/* the old record is as it was: damaged, dead */
	FILE *fp = fopen(p0, "rb");
	uint8_t *want = malloc(3 * CH);
	tu_fill(want, 3 * CH, 4);
	assert_non_null(fp);
	assert_int_equal(fseek(fp, (long)o0 + 77, SEEK_SET), 0);
	assert_int_equal(fgetc(fp), want[CH + 77] ^ 0xff);
	fclose(fp);
	free(want);
	scrub_clean(f->st, 3);
}

/* A pack missing on one mirror (its meta.db still places chunks in it)
 * is resynchronised at open from the other mirror's copies. */
static void test_missing_pack_resynced(void **state)
{
	struct fixture *f = *state;
	uint8_t h[9][PROTO_HASH_SIZE];
	char path[4200];
	uint64_t off, len;

	assert_int_equal(put(f->st, "p", 1, 1, 9 * CH, 5, CH), 0);
	assert_int_equal(tu_count_packs(f->m1, NULL), 3);
	chunk_ids(5, 9, h);
	store_free(f->st);
	f->st = NULL;
	chunk_where(f->m1, h[4], path, sizeof(path), &off, &len);
	assert_int_equal(unlink(path), 0);
	open_store(f);
	/* the three chunks it held are in a new pack now */
	for (int i = 3; i < 6; i++) {
		char p[4200];
		chunk_where(f->m1, h[i], p, sizeof(p), &off, &len);
		assert_true(strcmp(p, path) != 0);
		assert_int_equal(access(p, F_OK), 0);
	}
	scrub_clean(f->st, 9);
	store_free(f->st);
	f->st = NULL;
	tu_rmrf(f->m0);
	open_store(f);
	assert_int_equal(get_check(f->st, "p", 1, 1, 9 * CH, 5, NULL), 0);
}

/* The pack being written removed behind the running store's back: a PUT
 * flushing it finds out (the mirror goes offline, nothing acknowledged
 * rests on the lost file); a repairing scrub brings the mirror back and
 * copies what it lost into a new pack. */
static void test_write_pack_removed(void **state)
{
	struct fixture *f = *state;
	struct proto_scrub_reply r;
	char path[4200];
	uint8_t h[1][PROTO_HASH_SIZE];
	uint64_t off, len;

	f->pack_size = 0;
	reopen(f);
	assert_int_equal(put(f->st, "p", 1, 1, 2 * CH, 1, CH), 0);
	chunk_ids(1, 1, h);
	chunk_where(f->m1, h[0], path, sizeof(path), &off, &len);
	assert_int_equal(unlink(path), 0);
	assert_int_equal(put(f->st, "p", 1, 2, 2 * CH, 2, CH), 0);
	assert_int_equal(store_status(f->st, &r), 0);
	assert_int_equal(r.mirrors[0].online, 1);
	assert_int_equal(r.mirrors[1].online, 0);
	assert_int_equal(store_scrub(f->st, true, &r), 0);
	assert_int_equal(r.mirrors[1].online, 1);
	assert_int_equal(r.unrepairable, 0);
	scrub_clean(f->st, 4);
	assert_int_equal(put(f->st, "p", 1, 3, 2 * CH, 3, CH), 0);
	assert_int_equal(store_status(f->st, &r), 0);
	assert_int_equal(r.mirrors[1].online, 1);
	scrub_clean(f->st, 6);
	store_free(f->st);
	f->st = NULL;
	tu_rmrf(f->m0);
	open_store(f);
	for (uint64_t seq = 1; seq <= 3; seq++)
		assert_int_equal(get_check(f->st, "p", 1, seq, 2 * CH, seq, NULL), 0);
}

/* Mirrors written before packs (a chunk file per chunk) are served as
 * they are; new chunks go to packs, deduplicated against the chunk files;
 * GC removes chunk files; a bad chunk file is repaired into a pack. */
static void test_chunk_files_served(void **state)
{
	struct fixture *f = *state;
	struct proto_ckpt_meta m;
	struct proto_put_ack ack;
	uint8_t h[6][PROTO_HASH_SIZE];
	uint32_t repaired = 0;

	f->pack_size = 0;
	reopen(f);
	assert_int_equal(put(f->st, "old", 1, 1, 6 * CH, 1, CH), 0);
	assert_int_equal(put(f->st, "gone", 1, 1, 2 * CH, 3, CH), 0);
	store_free(f->st);
	f->st = NULL;
	to_chunk_files(f->m0);
	to_chunk_files(f->m1);
	assert_int_equal(tu_count_chunk_files(f->m0), 8);
	assert_int_equal(tu_count_packs(f->m0, NULL), 0);
	open_store(f);
	assert_int_equal(get_check(f->st, "old", 1, 1, 6 * CH, 1, NULL), 0);
	scrub_clean(f->st, 8);
	/* a new checkpoint sharing a third of old's chunks */
	uint8_t *img = mixed(6, 1, 2);
	meta_for(&m, "new", 1, 1, 6 * CH);
	assert_int_equal(put_data(f->st, &m, img, 6 * CH, CH, &ack), 0);
	assert_int_equal(last_stats.new_chunks, 4);
	assert_int_equal(tu_count_packs(f->m0, NULL), 1);
	assert_int_equal(tu_count_chunk_copies(f->m0), 12);
	/* GC: gone's chunk files go */
	assert_int_equal(store_delete(f->st, "gone", 0, 0), 1);
	assert_int_equal(tu_count_chunk_files(f->m0), 6);
	assert_int_equal(tu_count_chunk_files(f->m1), 6);
	/* a damaged chunk file on m0: repaired into m0's packs */
	chunk_ids(1, 6, h);
	damage(f->m0, h[1], DMG_FORM);
	assert_int_equal(get_check(f->st, "old", 1, 1, 6 * CH, 1, &repaired), 0);
	assert_int_equal(repaired, 1);
	char path[4200];
	uint64_t off, len;
	chunk_where(f->m0, h[1], path, sizeof(path), &off, &len);
	assert_non_null(strstr(path, "/packs/"));
	assert_int_equal(tu_count_chunk_files(f->m0), 5);
	scrub_clean(f->st, 10);
	get_same(f->st, "new", img, 6 * CH);
	free(img);
	/* m1's chunk files alone resynchronise a wiped m0 */
	store_free(f->st);
	f->st = NULL;
	tu_rmrf(f->m0);
	open_store(f);
	assert_int_equal(tu_count_chunk_files(f->m0), 0);
	assert_int_equal(tu_count_chunk_copies(f->m0), 10);
	store_free(f->st);
	f->st = NULL;
	tu_rmrf(f->m1);
	open_store(f);
	assert_int_equal(get_check(f->st, "old", 1, 1, 6 * CH, 1, NULL), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_packs_roll_over, setup_small_packs, teardown),
		cmocka_unit_test_setup_teardown(test_torn_tail_ignored, setup_small_packs, teardown),
		cmocka_unit_test_setup_teardown(test_pending_records, setup_small_packs, teardown),
		cmocka_unit_test_setup_teardown(test_compaction, setup_small_packs, teardown),
		cmocka_unit_test_setup_teardown(test_compaction_concurrent, setup_small_packs,
						teardown),
		cmocka_unit_test_setup_teardown(test_meta_from_backup, setup_small_packs, teardown),
		cmocka_unit_test_setup_teardown(test_repair_appends, setup_small_packs, teardown),
		cmocka_unit_test_setup_teardown(test_missing_pack_resynced, setup_small_packs,
						teardown),
		cmocka_unit_test_setup_teardown(test_write_pack_removed, setup_small_packs,
						teardown),
		cmocka_unit_test_setup_teardown(test_chunk_files_served, setup_small_packs,
						teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
