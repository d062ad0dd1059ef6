/*
 * test_slow_store_big.c - a 1 GiB checkpoint streamed into rtcms-store with
 * two mirrors and read back verified, while the store's peak resident
 * memory stays bounded (it never holds a whole checkpoint).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client/store_client.h"
#include "rtcms_error.h"
#include "testutil.h"

#define BIG ((uint64_t)1 << 30)
#define CHUNK (1u << 20)
#define RSS_LIMIT_KIB (256 * 1024)

/* Content generated per chunk: no 1 GiB buffer anywhere in the test. */
static int gen_read(void *ctx, uint64_t off, uint8_t *buf, size_t len)
{
	(void)ctx;
	if (off % CHUNK || len > CHUNK)
		return RTCMS_EINVAL;
	tu_fill(buf, len, off / CHUNK + 1);
	return 0;
}

static int gen_check(void *ctx, const struct proto_chunk *ch)
{
	uint8_t *want = ctx;
	if (ch->offset % CHUNK || ch->len > CHUNK)
		return RTCMS_EPROTO;
	tu_fill(want, ch->len, ch->offset / CHUNK + 1);
	return memcmp(want, ch->data, ch->len) == 0 ? 0 : RTCMS_ECORRUPT;
}

static void test_one_gib(void **state)
{
	(void)state;
	char *dir = tu_tmpdir("big");
	struct proto_key key;
	char *keyfile = tu_keyfile(dir, &key);
	struct tu_daemon d;
	struct net_client *c;
	struct proto_ckpt_meta m;
	struct proto_put_ack ack;
	struct proto_get_end end;
	uint8_t *want = malloc(CHUNK);

	/* the client hashes the whole GiB before its first frame (the image
	 * hash goes in PUT_BEGIN): on a loaded machine that takes longer than
	 * the store's default 10 s for a frame to complete */
	const char *patient[] = { "--client-timeout", "300000", NULL };
	assert_int_equal(tu_store_start(&d, dir, keyfile, 2, "127.0.0.1", patient), 0);
	assert_int_equal(net_client_connect(d.addr, &key, PROTO_ROLE_CLI, "big",
					    60000, &c), 0);
	memset(&m, 0, sizeof(m));
	strcpy(m.process, "big");
	m.incarnation = m.sequence = 1;
	m.size = BIG;
	uint64_t t = tu_now_ms();
	assert_int_equal(store_client_put(c, &m, CHUNK, gen_read, NULL, &ack), 0);
	print_message("PUT 1 GiB to 2 mirrors: %llu ms\n",
		      (unsigned long long)(tu_now_ms() - t));
	assert_int_equal(ack.copies, 2);
	t = tu_now_ms();
	assert_int_equal(store_client_get(c, "big", 1, 1, 0, &m, gen_check, want, &end), 0);
	print_message("GET 1 GiB verified: %llu ms\n",
		      (unsigned long long)(tu_now_ms() - t));
	assert_int_equal(end.chunk_count, BIG / CHUNK);
	long rss = tu_peak_rss_kib(d.pid);
	print_message("store peak RSS: %ld KiB\n", rss);
	assert_true(rss > 0);
	assert_true(rss < RSS_LIMIT_KIB);
	net_client_free(c);
	tu_daemon_stop(&d, SIGTERM);
	free(want);
	tu_rmrf(dir);
	free(dir);
	free(keyfile);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_one_gib),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
