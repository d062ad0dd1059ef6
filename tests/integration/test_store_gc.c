/*
 * test_store_gc.c - kill -9 of rtcms-store during garbage collection, 20
 * times over. Two processes store the same program states (full images
 * and chains of deltas whose chunks they share, and share between
 * sequences) with retain = 1, so every PUT makes retention delete
 * checkpoints and unlink chunk files; the store is killed at a random
 * moment and restarted on the same mirrors. After each restart: every
 * listed checkpoint reads back whole (the store assembles deltas; the
 * client checks every chunk hash and the image hash) with the right
 * bytes, the newest acknowledged sequence of each process is still there,
 * a scrub finds no missing or corrupt chunk, and no mirror holds a
 * chunk file or an inline copy (small deltas) the metadata does not
 * reference.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <dirent.h>
#include <pthread.h>
#include <stdatomic.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "area/delta.h"
#include "area/image.h"
#include "client/store_client.h"
#include "rtcms_error.h"
#include "testutil.h"
#include "util/bytes.h"

#define ROUNDS   20
#define BLOCKS   96                      /* 384 KiB of program data */
#define DATA     ((size_t)BLOCKS * AREA_BLOCK)
#define HEAD     (32 + 24)               /* full image header, 1 region */
#define FULL_LEN (HEAD + DATA)
#define CHUNK    16384                   /* PUT chunk size */
#define FULL_EVERY 8                     /* chains of at most 8 checkpoints */
#define NPROC    2

static const char *const procs[NPROC] = { "alpha", "beta" };

static uint64_t mix(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ull;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
	return x ^ (x >> 31);
}

/* Block b changes at sequence s (every block exists from sequence 1). */
static int changed(uint32_t b, uint64_t s)
{
	return s == 1 || mix(((uint64_t)b << 40) ^ s) % 10 == 0;
}

/* The sequence block b last changed at, up to s. */
static uint64_t version(uint32_t b, uint64_t s)
{
	while (!changed(b, s))
		s--;
	return s;
}

/* The program's full image at sequence s (the same for both processes),
 * and its block versions. */
static void full_image(uint64_t s, uint8_t *img, uint64_t *versions)
{
	memset(img, 0, HEAD);
	put_be32(img, IMAGE_MAGIC);
	put_be32(img + 4, IMAGE_VERSION);
	put_be64(img + 8, s);
	put_be32(img + 16, 1);
	put_be64(img + 24, DATA);
	put_be32(img + 32, 1);
	put_be64(img + 40, DATA);
	for (uint32_t b = 0; b < BLOCKS; b++) {
		uint64_t v = version(b, s);
		if (versions)
			versions[b] = v;
		tu_fill(img + HEAD + (size_t)b * AREA_BLOCK, AREA_BLOCK,
			((uint64_t)(b + 1) << 32) + v);
	}
}

struct writer {
	const char *addr;
	struct proto_key *key;
	uint64_t next_seq;
	uint64_t acked[NPROC];        /* newest acknowledged sequence */
	uint32_t depth[NPROC];        /* and its depth (PUT_ACK) */
	uint64_t base_gone;           /* deltas refused: base removed */
	_Atomic int puts;
	char bad[200];                /* what went wrong in the writer */
	uint8_t *full, *delta;
};

/* PUT sequence s of process p: a delta against its newest acknowledged
 * sequence, or a full image when that chain is FULL_EVERY long or the
 * base is gone. Returns the client's result. Runs on the writer thread:
 * no cmocka assertions here. */
static int put_one(struct writer *w, struct net_client *c, int p, uint64_t s)
{
	uint64_t versions[BLOCKS];
	uint8_t sh[STATE_HASH_SIZE];
	struct proto_ckpt_meta m;
	struct proto_put_ack ack;
	int rc;

	full_image(s, w->full, versions);
	if (state_hash(w->full, FULL_LEN, sh) != 0) {
		snprintf(w->bad, sizeof(w->bad), "state_hash failed");
		return RTCMS_EINTERNAL;
	}
	memset(&m, 0, sizeof(m));
	snprintf(m.process, sizeof(m.process), "%s", procs[p]);
	m.incarnation = 1;
	m.sequence = s;
	m.node = 1;
	memcpy(m.state_hash, sh, sizeof(sh));
	if (w->acked[p] && w->depth[p] + 1 < FULL_EVERY) {
		int64_t n = delta_build(w->full, FULL_LEN, versions, w->acked[p],
					w->delta, delta_size(1, BLOCKS));
		if (n <= 0) {
			snprintf(w->bad, sizeof(w->bad), "delta_build: %s",
				 rtcms_strerror((int)n));
			return RTCMS_EINTERNAL;
		}
		struct store_client_buf b = { w->delta, (uint64_t)n };
		m.base = w->acked[p];
		m.full_size = FULL_LEN;
		m.size = (uint64_t)n;
		rc = store_client_put(c, &m, CHUNK, store_client_read_buf, &b, &ack);
		if (rc != RTCMS_ENOENT)
			goto out;
		/* the base went with retention (a newer, unacknowledged
		 * sequence was committed before a kill): send a full image */
		w->base_gone++;
	}
	struct store_client_buf b = { w->full, FULL_LEN };
	m.base = 0;
	m.full_size = FULL_LEN;
	m.size = FULL_LEN;
	rc = store_client_put(c, &m, CHUNK, store_client_read_buf, &b, &ack);
out:
	if (rc == 0) {
		uint32_t want = m.base ? w->depth[p] + 1 : 0;
		if (ack.depth != want) {
			snprintf(w->bad, sizeof(w->bad), "%s %llu: PUT_ACK depth %u, "
				 "expected %u", procs[p], (unsigned long long)s,
				 ack.depth, want);
			return RTCMS_EINTERNAL;
		}
		w->acked[p] = s;
		w->depth[p] = ack.depth;
		w->puts++;
	}
	return rc;
}

static void *writer_run(void *arg)
{
	struct writer *w = arg;
	struct net_client *c = NULL;

	if (net_client_connect(w->addr, w->key, PROTO_ROLE_CLI, "writer", 5000, &c))
		return NULL;
	for (;;) {
		/* both processes store the same state: they share chunks */
		uint64_t s = w->next_seq++;
		int rc = 0;
		for (int p = 0; p < NPROC && rc == 0; p++)
			rc = put_one(w, c, p, s);
		if (rc)
			break; /* the store died under us */
	}
	net_client_free(c);
	return NULL;
}

/* Everything the store lists reads back right; returns the number of
 * checkpoints of process p and their newest sequence in *newest. */
static int check_process(struct net_client *c, int p, uint8_t *want, uint64_t *newest)
{
	struct proto_list_entry e[PROTO_LIST_MAX];
	struct proto_header h;
	union proto_msg q, r;

	memset(&q, 0, sizeof(q));
	snprintf(q.list.process, sizeof(q.list.process), "%s", procs[p]);
	q.list.limit = PROTO_LIST_MAX;
	r.list_reply.entries = e;
	assert_int_equal(net_client_call(c, PROTO_LIST, &q, PROTO_LIST_REPLY, &h, &r), 0);
	assert_false(h.flags & PROTO_F_MORE);
	*newest = 0;
	for (int i = 0; i < r.list_reply.count; i++) {
		struct proto_ckpt_meta m;
		uint64_t seq = e[i].sequence;
		/* read as a restore target reads it: a delta as its chain */
		const struct store_client_query gq = { .type = PROTO_GET, .process = procs[p],
						       .incarnation = 1, .sequence = seq };
		struct stream_area_sink img;
		struct stream_result res;
		stream_area_sink_init(&img, (uint64_t)FULL_LEN * 2, NULL, NULL);
		int rc = store_client_fetch_to(c, &gq, &m, NULL, &img.sink, &res);
		if (rc)
			fail_msg("%s %llu is listed but cannot be read: %s (%s)", procs[p],
				 (unsigned long long)seq, rtcms_strerror(rc),
				 img.why[0] ? img.why : res.why);
		full_image(seq, want, NULL);
		assert_int_equal(m.sequence, seq);
		assert_int_equal(img.len, FULL_LEN);
		assert_memory_equal(img.image, want, FULL_LEN);
		stream_area_sink_clear(&img);
		/* metadata only: as stored (a delta stays a delta) */
		assert_int_equal(store_client_get(c, procs[p], 1, seq, 1, &m, NULL, NULL,
						  NULL), 0);
		assert_int_equal(m.full_size, FULL_LEN);
		assert_true(m.base < seq);
		assert_true(m.base == 0 ? m.size == FULL_LEN : m.size < FULL_LEN);
		*newest = seq > *newest ? seq : *newest;
	}
	return r.list_reply.count;
}

static void test_kill9_during_gc(void **state)
{
	(void)state;
	char *dir = tu_tmpdir("storegc");
	struct proto_key key;
	char *keyfile = tu_keyfile(dir, &key);
	struct tu_daemon d;
	const char *extra[] = { "--retain", "1", NULL };
	static struct writer w;
	uint8_t *want = malloc(FULL_LEN);
	char m0[600], m1[600];
	uint64_t start = tu_now_ms();

	memset(&w, 0, sizeof(w));
	w.key = &key;
	w.next_seq = 1;
	w.full = malloc(FULL_LEN);
	w.delta = malloc(delta_size(1, BLOCKS));
	snprintf(m0, sizeof(m0), "%s/m0", dir);
	snprintf(m1, sizeof(m1), "%s/m1", dir);
	srand((unsigned)getpid());
	for (int round = 0; round < ROUNDS; round++) {
		pthread_t th;
		assert_int_equal(tu_store_start(&d, dir, keyfile, 2, "127.0.0.1", extra), 0);
		w.addr = d.addr;
		int before = w.puts;
		pthread_create(&th, NULL, writer_run, &w);
		/* the kill lands at a random point after this round's first
		 * acknowledged PUT (its garbage collection, the next PUT, a
		 * commit), however slowly a loaded machine lets it come */
		for (uint64_t end = tu_now_ms() + 30000; w.puts == before && !w.bad[0] &&
		     tu_now_ms() < end;)
			usleep(5000);
		usleep((useconds_t)(rand() % 350) * 1000);
		tu_daemon_stop(&d, SIGKILL);
		pthread_join(th, NULL);
		if (w.bad[0])
			fail_msg("writer: %s", w.bad);

		/* restart on the same mirrors and check */
		assert_int_equal(tu_store_start(&d, dir, keyfile, 2, "127.0.0.1", extra), 0);
		struct net_client *c;
		assert_int_equal(net_client_connect(d.addr, &key, PROTO_ROLE_CLI, "checker",
						    10000, &c), 0);
		int listed[NPROC];
		for (int p = 0; p < NPROC; p++) {
			uint64_t newest;
			listed[p] = check_process(c, p, want, &newest);
			/* the newest acknowledged one, or a newer one */
			assert_true(newest >= w.acked[p]);
			/* retention: the newest and its chain, nothing else (a
			 * process the writer never got acknowledged may have none:
			 * a loaded machine can kill the store before its first) */
			assert_true(listed[p] >= (w.acked[p] ? 1 : 0));
			assert_true(listed[p] <= FULL_EVERY);
		}
		union proto_msg q, r;
		struct proto_header h;
		memset(&q, 0, sizeof(q));
		q.scrub.repair = 0;
		assert_int_equal(net_client_call(c, PROTO_SCRUB, &q, PROTO_SCRUB_REPLY, &h, &r), 0);
		assert_int_equal(r.scrub_reply.unrepairable, 0);
		assert_int_equal(r.scrub_reply.mirror_count, 2);
		for (int i = 0; i < 2; i++) {
			assert_int_equal(r.scrub_reply.mirrors[i].online, 1);
			assert_int_equal(r.scrub_reply.mirrors[i].missing, 0);
			assert_int_equal(r.scrub_reply.mirrors[i].corrupt, 0);
			assert_int_equal(r.scrub_reply.mirrors[i].chunks, r.scrub_reply.chunks);
		}
		/* no chunk file and no inline copy is left that nothing
		 * references (small deltas are kept inline) */
		assert_int_equal(tu_count_unreferenced(m0), 0);
		assert_int_equal(tu_count_unreferenced(m1), 0);
		assert_true(tu_count_chunk_copies(m0) + tu_count_inline(m0) >=
			    (int)r.scrub_reply.chunks);
		print_message("round %2d: %3d PUTs acknowledged before kill -9; %d + %d "
			      "checkpoints, %llu chunks after restart\n", round,
			      w.puts - before, listed[0], listed[1],
			      (unsigned long long)r.scrub_reply.chunks);
		net_client_free(c);
		/* a clean exit: also no sanitizer report in an ASan build */
		int status = tu_daemon_stop(&d, SIGTERM);
		if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
			fail_msg("rtcms-store did not exit cleanly (status %#x); see %s",
				 status, d.log);
		/* an unacknowledged sequence may have been committed: go past */
		w.next_seq++;
	}
	/* files left by a kill between a commit and its unlinks (or by a
	 * half-received PUT) are swept at the next start */
	print_message("%d PUTs in %llu ms; %llu deltas found their base gone; "
		      "%d restarts swept files a kill left behind\n", w.puts,
		      (unsigned long long)(tu_now_ms() - start),
		      (unsigned long long)w.base_gone,
		      tu_log_count(&d, "unreferenced or temporary file"));
	assert_true(w.puts >= ROUNDS); /* one at least in every round */
	free(w.full);
	free(w.delta);
	free(want);

	tu_rmrf(dir);
	free(dir);
	free(keyfile);
}

int main(void)
{
	signal(SIGPIPE, SIG_IGN);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_kill9_during_gc),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
