/*
 * test_sealed.c - sealed once at the source, stored sealed: a protected
 * program's state (examples/counter: a table of known 8-byte values)
 * checkpointed through a whole cluster whose agents seal under one data
 * keyring (tu_agent_start).
 *  - The checkpoint read with the keyring holds a run of the table, and no
 *    file on either of the store's mirrors (chunk files, meta.db and its
 *    WAL, everything) holds that run anywhere, nor the program's
 *    environment (its spec travels sealed too).
 *  - Read without a keyring, or with another one, it is refused with the
 *    reason; nothing is written.
 *  - A sealed chunk damaged on one mirror is found by the store's checksum
 *    and repaired from the other as it is read (read repair); the reader
 *    gets the right state.
 */
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "client/store_client.h"
#include "cluster.h"
#include "rtcms_error.h"
#include "util/datakey.h"

#define COUNTER RTCMS_BIN_DIR "/rtcms-counter"
#define RUN 16            /* table entries in the pattern: 128 bytes */

/* examples/counter.c's table entry i */
static uint64_t entry_value(uint64_t i)
{
	return i * 0x9E3779B97F4A7C15ull ^ (i >> 7);
}

static uint8_t pattern[RUN * sizeof(uint64_t)];
static int files_seen, files_with_pattern, files_with_secret;
static char first_hit[4200], first_secret_hit[4200];
/* in the program's environment (its spec): sealed with the state */
#define SECRET "RTCMS_TEST_SECRET=correct-horse-battery-staple"

static int search_file(const char *path, const struct stat *sb, int type, struct FTW *ftw)
{
	(void)ftw;
	if (type != FTW_F || !S_ISREG(sb->st_mode))
		return 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	uint8_t *buf = malloc((size_t)sb->st_size + 1);
	ssize_t n = buf ? read(fd, buf, (size_t)sb->st_size) : -1;
	close(fd);
	files_seen++;
	if (n > 0 && memmem(buf, (size_t)n, pattern, sizeof(pattern))) {
		if (!files_with_pattern++)
			snprintf(first_hit, sizeof(first_hit), "%s", path);
	}
	if (n > 0 && memmem(buf, (size_t)n, "correct-horse", 13)) {
		if (!files_with_secret++)
			snprintf(first_secret_hit, sizeof(first_secret_hit), "%s", path);
	}
	free(buf);
	return 0;
}

/* A sink that records the id of the first chunk and hands everything on
 * to the image assembler. */
struct first_id {
	struct stream_sink sink;
	struct stream_area_sink img;
	uint8_t id[PROTO_HASH_SIZE];
	bool have;
};

#define FIRST(s) ((struct first_id *)(void *)(s))

static int f_begin(struct stream_sink *s, const struct proto_ckpt_meta *m)
{
	return stream_sink_begin(&FIRST(s)->img.sink, m);
}

static int f_chunk(struct stream_sink *s, const struct proto_chunk *c)
{
	if (!FIRST(s)->have && c->offset == 0) {
		memcpy(FIRST(s)->id, c->hash, PROTO_HASH_SIZE);
		FIRST(s)->have = true;
	}
	return stream_sink_chunk(&FIRST(s)->img.sink, c);
}

static int f_end(struct stream_sink *s, uint32_t n)
{
	return stream_sink_end(&FIRST(s)->img.sink, n);
}

static void f_abort(struct stream_sink *s, int rc)
{
	stream_sink_abort(&FIRST(s)->img.sink, rc);
}

static int f_link(struct stream_sink *s, uint32_t n)
{
	return stream_sink_link(&FIRST(s)->img.sink, n);
}

static const struct stream_sink_ops first_ops = { f_begin, f_chunk, f_end, f_abort, f_link };

/* GET (id, 1, seq) through the image assembler, opened with ring (NULL:
 * none). Returns the fetch's code; *f holds the image. */
static int get(struct cluster *cl, const char *id, uint64_t seq,
	       const struct datakey_ring *ring, struct first_id *f, struct stream_result *res)
{
	struct net_client *st = NULL;
	struct proto_ckpt_meta meta;
	const struct store_client_query q = { .type = PROTO_GET, .process = id,
					      .incarnation = 1, .sequence = seq, .keys = ring };

	memset(f, 0, sizeof(*f));
	f->sink.ops = &first_ops;
	stream_area_sink_init(&f->img, 64u << 20, NULL, NULL);
	assert_int_equal(net_client_connect(cl->store.addr, &cl->key, PROTO_ROLE_MANAGER, "t",
					    5000, &st), 0);
	int rc = store_client_fetch_to(st, &q, &meta, NULL, &f->sink, res);
	net_client_free(st);
	return rc;
}

static void test_no_plaintext_on_mirrors(void **state)
{
	static struct cluster cl;
	struct datakey_ring ring, other;
	struct stream_result res;
	struct first_id f;
	char path[4200], err[1024];
	(void)state;

	for (int i = 0; i < RUN; i++) {
		uint64_t v = entry_value(100 + (uint64_t)i);
		memcpy(pattern + i * sizeof(v), &v, sizeof(v));
	}
	assert_int_equal(cl_start(&cl, "sealed", NULL), 0);
	assert_int_equal(cl_agent_start(&cl, 0, NULL), 0);
	/* one checkpoint of a 1 MiB table (its first 1000 entries filled),
	 * then a minute's sleep: the checkpoint stays the latest */
	const char *counter[] = { COUNTER, "--iterations", "0", "--interval-ms", "60000",
				  "--table-mib", "1", NULL };
	const char *env[] = { SECRET, NULL };
	assert_int_equal(cl_run(&cl, "vault", cl_node(0), counter, env), 0);
	assert_int_equal(cl_wait_durable(&cl, "vault", 1, 1, 30000), 0);

	snprintf(path, sizeof(path), "%s.data", cl.key_file);
	assert_int_equal(datakey_load(path, &ring, err, sizeof(err)), 0);

	/* with the keyring: the state is there */
	assert_int_equal(get(&cl, "vault", 0, &ring, &f, &res), 0);
	assert_non_null(memmem(f.img.image, f.img.len, pattern, sizeof(pattern)));
	stream_area_sink_clear(&f.img);

	/* on the mirrors: nowhere */
	for (int m = 0; m < 2; m++) {
		snprintf(path, sizeof(path), "%s/m%d", cl.dir, m);
		assert_int_equal(nftw(path, search_file, 16, FTW_PHYS), 0);
	}
	assert_true(files_seen > 4);
	if (files_with_pattern)
		fail_msg("%d mirror file(s) hold the program's state in plaintext, e.g. %s",
			 files_with_pattern, first_hit);
	if (files_with_secret)
		fail_msg("%d mirror file(s) hold the program's environment in plaintext, e.g. %s",
			 files_with_secret, first_secret_hit);

	/* without the keyring, or with another: refused, with the reason */
	assert_int_equal(get(&cl, "vault", 0, NULL, &f, &res), RTCMS_ECORRUPT);
	assert_non_null(strstr(f.img.why, "no data keyring"));
	assert_null(f.img.image);
	snprintf(path, sizeof(path), "%s/other.keys", cl.dir);
	assert_int_equal(datakey_generate(path, DATAKEY_CHACHA20_POLY1305, 0, err,
					  sizeof(err)), 0);
	assert_int_equal(datakey_load(path, &other, err, sizeof(err)), 0);
	assert_int_equal(get(&cl, "vault", 0, &other, &f, &res), RTCMS_ECORRUPT);
	assert_int_equal(res.fault, STREAM_FAULT_VERIFY);
	assert_non_null(strstr(res.why, "does not open under data key 1"));
	assert_null(f.img.image);

	/* a sealed chunk damaged on mirror 0: the checksum finds it, the
	 * store serves mirror 1's copy and rewrites mirror 0's */
	assert_int_equal(get(&cl, "vault", 0, &ring, &f, &res), 0);
	assert_true(f.have);
	stream_area_sink_clear(&f.img);
	char m0[4200];
	uint64_t off, len;
	snprintf(m0, sizeof(m0), "%s/m0", cl.dir);
	assert_int_equal(tu_chunk_where(m0, f.id, path, sizeof(path), &off, &len), 0);
	int fd = open(path, O_RDWR);
	assert_true(fd >= 0);
	uint8_t b;
	assert_int_equal(pread(fd, &b, 1, (off_t)off + 100), 1);
	b ^= 0x40;
	assert_int_equal(pwrite(fd, &b, 1, (off_t)off + 100), 1);
	close(fd);
	assert_int_equal(get(&cl, "vault", 0, &ring, &f, &res), 0);
	assert_int_equal(res.get_end.repaired, 1);
	assert_non_null(memmem(f.img.image, f.img.len, pattern, sizeof(pattern)));
	stream_area_sink_clear(&f.img);
	assert_int_equal(cl_wait_log(&cl.store, "was corrupt; repaired", 1, 5000), 0);

	datakey_ring_wipe(&ring);
	datakey_ring_wipe(&other);
	cl_stop(&cl);
}

/* An agent started with another data keyring (same key id, another key)
 * is refused when it registers, with the reason on both sides; the rest
 * of the cluster goes on. */
static void test_wrong_data_key_refused_at_start(void **state)
{
	static struct cluster cl;
	char path[4200], err[1024];
	(void)state;

	assert_int_equal(cl_start(&cl, "wrongkey", NULL), 0);
	assert_int_equal(cl_agent_start(&cl, 0, NULL), 0); /* records the cluster's key */
	snprintf(path, sizeof(path), "%s/wrong.keys", cl.dir);
	assert_int_equal(datakey_generate(path, DATAKEY_AES_256_GCM, 0, err, sizeof(err)), 0);
	const char *wrong[] = { "--data-keyring", path, NULL };
	assert_int_not_equal(cl_agent_start(&cl, 1, wrong), 0); /* never joins */
	assert_int_equal(cl_wait_log(&cl.agents[1], "REGISTER refused", 1, 5000), 0);
	assert_int_equal(cl_wait_log(&cl.agents[1], "another data keyring", 1, 5000), 0);
	assert_int_equal(cl_wait_log(&cl.manager, "this agent was given another data keyring",
				     1, 5000), 0);
	/* said once every 30 s, not at every retry (twice a second) */
	int said = tu_log_count(&cl.manager, "another data keyring");
	usleep(2000 * 1000);
	assert_true(tu_log_count(&cl.manager, "another data keyring") - said <= 1);
	/* the good node still works */
	const char *counter[] = { COUNTER, "--iterations", "0", "--interval-ms", "50", NULL };
	assert_int_equal(cl_run(&cl, "fine", cl_node(0), counter, NULL), 0);
	assert_int_equal(cl_wait_durable(&cl, "fine", 1, 2, 30000), 0);
	cl_stop(&cl);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_no_plaintext_on_mirrors, cl_teardown),
		cmocka_unit_test_teardown(test_wrong_data_key_refused_at_start, cl_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
