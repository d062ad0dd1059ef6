/*
 * test_store_crash.c - kill -9 of rtcms-store while a client streams PUTs,
 * five times over: after each restart every acknowledged checkpoint is
 * present and intact, and everything listed reads back completely and
 * verified (no partial checkpoint is ever visible).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "client/store_client.h"
#include "rtcms_error.h"
#include "testutil.h"

#define MAX_ACKS 10000

struct ack {
	uint64_t seq;
	size_t size;
};

struct writer {
	const char *addr;
	struct proto_key *key;
	uint64_t next_seq;
	struct ack acks[MAX_ACKS];
	int nacks;
	volatile int stop;
	uint8_t *buf;
};

/* Content of sequence seq: deterministic, so the checker can rebuild it. */
static size_t size_of(uint64_t seq)
{
	static const size_t sizes[] = { 4096, 100000, 1 << 20, 4 << 20, 777, 2500000 };
	return sizes[seq % 6];
}

static void *writer_run(void *arg)
{
	struct writer *w = arg;
	struct net_client *c = NULL;

	if (net_client_connect(w->addr, w->key, PROTO_ROLE_CLI, "writer", 5000, &c))
		return NULL;
	while (!w->stop && w->nacks < MAX_ACKS) {
		uint64_t seq = w->next_seq;
		size_t size = size_of(seq);
		struct store_client_buf b = { w->buf, size };
		struct proto_ckpt_meta m;
		struct proto_put_ack ack;
		tu_fill(w->buf, size, seq);
		memset(&m, 0, sizeof(m));
		strcpy(m.process, "crashy");
		m.incarnation = 1;
		m.sequence = seq;
		m.size = size;
		if (store_client_put(c, &m, 256 * 1024, store_client_read_buf, &b, &ack) != 0)
			break; /* the store died under us */
		w->acks[w->nacks].seq = seq;
		w->acks[w->nacks].size = size;
		w->nacks++;
		w->next_seq++;
	}
	net_client_free(c);
	return NULL;
}

struct sink {
	uint8_t *buf;
	size_t cap;
};

static int to_sink(void *ctx, const struct proto_chunk *ch)
{
	struct sink *s = ctx;
	if (ch->offset + ch->len > s->cap)
		return RTCMS_EPROTO;
	memcpy(s->buf + ch->offset, ch->data, ch->len);
	return 0;
}

static void test_kill9_during_puts(void **state)
{
	(void)state;
	char *dir = tu_tmpdir("crash");
	struct proto_key key;
	char *keyfile = tu_keyfile(dir, &key);
	struct tu_daemon d;
	const char *extra[] = { "--retain", "100000", NULL };
	static struct writer w;
	uint8_t *want = malloc(8 << 20);
	struct sink s = { malloc(8 << 20), 8 << 20 };

	memset(&w, 0, sizeof(w));
	w.key = &key;
	w.next_seq = 1;
	w.buf = malloc(8 << 20);
	srand((unsigned)getpid());
	for (int round = 0; round < 5; round++) {
		pthread_t th;
		assert_int_equal(tu_store_start(&d, dir, keyfile, 2, "127.0.0.1", extra), 0);
		w.addr = d.addr;
		w.stop = 0;
		int before = w.nacks;
		pthread_create(&th, NULL, writer_run, &w);
		usleep((useconds_t)(100 + rand() % 600) * 1000);
		tu_daemon_stop(&d, SIGKILL);
		pthread_join(th, NULL);
		print_message("round %d: %d PUTs acknowledged before kill -9\n",
			      round, w.nacks - before);
		/* the unacknowledged in-flight sequence may or may not have been
		 * committed: the writer moves past it either way */
		w.next_seq++;

		/* restart on the same mirrors and check */
		assert_int_equal(tu_store_start(&d, dir, keyfile, 2, "127.0.0.1", extra), 0);
		struct net_client *c;
		assert_int_equal(net_client_connect(d.addr, &key, PROTO_ROLE_CLI, "checker",
						    10000, &c), 0);
		for (int i = 0; i < w.nacks; i++) {
			struct proto_ckpt_meta m;
			size_t size = w.acks[i].size;
			int rc = store_client_get(c, "crashy", 1, w.acks[i].seq, 0, &m,
						  to_sink, &s, NULL);
			if (rc)
				fail_msg("acknowledged sequence %llu: %s",
					 (unsigned long long)w.acks[i].seq, rtcms_strerror(rc));
			tu_fill(want, size, w.acks[i].seq);
			assert_int_equal(m.size, size);
			assert_memory_equal(s.buf, want, size);
		}
		/* whatever is listed reads back whole and verified */
		struct proto_list_entry e[PROTO_LIST_MAX];
		struct proto_header h;
		union proto_msg q, r;
		uint32_t off = 0;
		for (;;) {
			memset(&q, 0, sizeof(q));
			strcpy(q.list.process, "crashy");
			q.list.offset = off;
			q.list.limit = PROTO_LIST_MAX;
			r.list_reply.entries = e;
			assert_int_equal(net_client_call(c, PROTO_LIST, &q, PROTO_LIST_REPLY, &h, &r), 0);
			for (int i = 0; i < r.list_reply.count; i++) {
				struct proto_ckpt_meta m;
				assert_int_equal(store_client_get(c, "crashy", 1, e[i].sequence, 0,
								  &m, to_sink, &s, NULL), 0);
				tu_fill(want, m.size, e[i].sequence);
				assert_memory_equal(s.buf, want, m.size);
			}
			off += r.list_reply.count;
			if (!(h.flags & PROTO_F_MORE))
				break;
		}
		assert_true(off >= (uint32_t)w.nacks);
		assert_true(off <= (uint32_t)w.nacks + (uint32_t)round + 1);
		net_client_free(c);
		tu_daemon_stop(&d, SIGTERM);
	}
	assert_true(w.nacks > 0);
	free(w.buf);
	free(want);
	free(s.buf);
	tu_rmrf(dir);
	free(dir);
	free(keyfile);
}

int main(void)
{
	signal(SIGPIPE, SIG_IGN);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_kill9_during_puts),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
