/*
 * test_store_badinput.c - hostile and broken peers against the real
 * rtcms-store: garbage, oversized and truncated frames, a wrong key,
 * replayed and tampered frames, idle and slow clients, too many
 * connections. Each is refused with a log line naming the peer, the daemon
 * keeps serving everyone else, and what was stored stays intact.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "client/store_client.h"
#include "net/addr.h"
#include "proto/session.h"
#include "rtcms_error.h"
#include "stream/chunk.h"
#include "testutil.h"
#include "util/bytes.h"
#include "util/datakey.h"

static char *dir, *keyfile;
static struct proto_key key;
static struct tu_daemon d;
static uint8_t original[300000];

static struct net_client *conn(const char *name)
{
	struct net_client *c = NULL;
	int rc = net_client_connect(d.addr, &key, PROTO_ROLE_CLI, name, 10000, &c);
	if (rc)
		fail_msg("connect: %s", rtcms_strerror(rc));
	return c;
}

static int put_original(struct net_client *c, uint64_t seq)
{
	struct store_client_buf b = { original, sizeof(original) };
	struct proto_ckpt_meta m;
	struct proto_put_ack ack;
	memset(&m, 0, sizeof(m));
	strcpy(m.process, "precious");
	m.incarnation = 1;
	m.sequence = seq;
	m.size = sizeof(original);
	return store_client_put(c, &m, 65536, store_client_read_buf, &b, &ack);
}

struct sink {
	uint8_t buf[sizeof(original)];
};

static int to_sink(void *ctx, const struct proto_chunk *ch)
{
	struct sink *s = ctx;
	memcpy(s->buf + ch->offset, ch->data, ch->len);
	return 0;
}

/* The checkpoint stored at the start is intact and the daemon serves. */
static void assert_intact(void)
{
	static struct sink s;
	struct proto_ckpt_meta m;
	assert_true(tu_daemon_alive(&d));
	struct net_client *c = conn("checker");
	assert_int_equal(store_client_get(c, "precious", 1, 1, 0, &m, to_sink, &s, NULL), 0);
	assert_memory_equal(s.buf, original, sizeof(original));
	net_client_free(c);
}

static int raw_connect(void)
{
	struct sockaddr_storage ss;
	assert_int_equal(net_addr_parse(d.addr, 0, &ss), 0);
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	assert_int_equal(connect(fd, (struct sockaddr *)&ss, sizeof(struct sockaddr_in)), 0);
	return fd;
}

/* Wait until the daemon closes fd (read returns 0 or an error); drains
 * whatever it sent first. Returns 1 if closed within ms. */
static int closed_within(int fd, int ms)
{
	uint64_t end = tu_now_ms() + (uint64_t)ms;
	char buf[4096];
	while (tu_now_ms() < end) {
		struct pollfd p = { fd, POLLIN, 0 };
		if (poll(&p, 1, 100) > 0) {
			ssize_t n = read(fd, buf, sizeof(buf));
			if (n <= 0)
				return 1;
		}
	}
	return 0;
}

static int setup(void **state)
{
	(void)state;
	dir = tu_tmpdir("bad");
	keyfile = tu_keyfile(dir, &key);
	tu_fill(original, sizeof(original), 4242);
	const char *extra[] = { "--client-timeout", "1000", "--max-connections", "6", NULL };
	if (tu_store_start(&d, dir, keyfile, 2, "127.0.0.1", extra) != 0)
		return -1;
	struct net_client *c = conn("setup");
	int rc = put_original(c, 1);
	net_client_free(c);
	return rc;
}

static int teardown(void **state)
{
	(void)state;
	tu_daemon_stop(&d, SIGTERM);
	if (!getenv("RTCMS_KEEP"))
		tu_rmrf(dir);
	free(dir);
	free(keyfile);
	return 0;
}

static void test_garbage(void **state)
{
	(void)state;
	int before = tu_log_count(&d, "bad frame header");
	int fd = raw_connect();
	const char junk[] = "GET / HTTP/1.1\r\nHost: x\r\n\r\n0123456789abcdef0123456789";
	assert_int_equal(write(fd, junk, sizeof(junk)), (ssize_t)sizeof(junk));
	assert_true(closed_within(fd, 5000));
	close(fd);
	assert_int_equal(tu_log_count(&d, "bad frame header"), before + 1);
	/* the log line names the peer */
	assert_true(tu_log_count(&d, "[peer 127.0.0.1:") > 0);
	assert_intact();
}

static void test_oversized(void **state)
{
	(void)state;
	uint8_t hdr[PROTO_HEADER_SIZE];
	struct proto_header h = { PROTO_VERSION, PROTO_HELLO, 0, 0, 0, 0, 0, 0 };
	proto_header_encode(&h, hdr);
	put_be32(hdr + 28, 0x7fffffff); /* 2 GiB payload announced */
	int fd = raw_connect();
	assert_int_equal(write(fd, hdr, sizeof(hdr)), (ssize_t)sizeof(hdr));
	assert_true(closed_within(fd, 5000));
	close(fd);
	assert_intact();
}

static void test_truncated(void **state)
{
	(void)state;
	/* a valid HELLO cut short, then the peer goes away */
	struct proto_session s;
	uint8_t hello[512];
	proto_session_init(&s, &key, true, 0);
	int n = proto_session_hello(&s, PROTO_ROLE_CLI, "cut", hello, sizeof(hello));
	for (int cut = 1; cut < n; cut += 37) {
		int fd = raw_connect();
		assert_int_equal(write(fd, hello, (size_t)cut), cut);
		close(fd);
	}
	/* an authenticated client sends half a PUT_BEGIN frame and vanishes */
	struct net_client *c = conn("half");
	uint8_t frame[PROTO_MAX_FRAME];
	union proto_msg m;
	memset(&m, 0, sizeof(m));
	strcpy(m.get.process, "precious");
	n = proto_session_seal(net_client_session(c), PROTO_GET, 0, 0, 9, &m,
			       frame, sizeof(frame));
	assert_int_equal(net_client_send_raw(c, frame, (size_t)n / 2), 0);
	net_client_free(c);
	assert_intact();
}

static void test_wrong_key(void **state)
{
	(void)state;
	struct proto_key other;
	struct net_client *c = NULL;
	int before = tu_log_count(&d, "handshake refused");
	randombytes_buf(other.bytes, sizeof(other.bytes));
	assert_int_equal(net_client_connect(d.addr, &other, PROTO_ROLE_CLI, "mallory",
					    5000, &c), RTCMS_EAUTH);
	assert_null(c);
	assert_int_equal(tu_log_count(&d, "handshake refused"), before + 1);
	assert_intact();
}

/* Receive one frame on fd within 5 s; returns its size or -1 (closed). */
static int recv_frame(struct net_client *c, struct proto_header *h, union proto_msg *m)
{
	return net_client_recv(c, h, m);
}

static void test_replay_and_tamper(void **state)
{
	(void)state;
	uint8_t frame[4096], copy[4096];
	struct proto_header h;
	union proto_msg m, r;
	struct proto_list_entry e[PROTO_LIST_MAX];

	/* replay within a connection: the same bytes twice */
	struct net_client *c = conn("replayer");
	memset(&m, 0, sizeof(m));
	strcpy(m.get.process, "precious");
	m.get.meta_only = 1;
	int n = proto_session_seal(net_client_session(c), PROTO_GET, 0, 0, 1, &m,
				   frame, sizeof(frame));
	memcpy(copy, frame, (size_t)n);
	assert_int_equal(net_client_send_raw(c, frame, (size_t)n), 0);
	assert_int_equal(recv_frame(c, &h, &r), 0);
	assert_int_equal(h.type, PROTO_GET_META);
	int before = tu_log_count(&d, "replayed or out-of-order");
	assert_int_equal(net_client_send_raw(c, copy, (size_t)n), 0);
	r.list_reply.entries = e;
	int rc = recv_frame(c, &h, &r);
	/* the daemon answers ERROR(EREPLAY) and closes */
	if (rc == 0) {
		assert_int_equal(h.type, PROTO_ERROR);
		assert_int_equal(r.error.code, RTCMS_EREPLAY);
		assert_true(recv_frame(c, &h, &r) != 0);
	}
	net_client_free(c);
	assert_int_equal(tu_log_count(&d, "replayed or out-of-order"), before + 1);

	/* replay into another connection: fails authentication */
	c = conn("replayer2");
	before = tu_log_count(&d, "authentication failed");
	assert_int_equal(net_client_send_raw(c, copy, (size_t)n), 0);
	rc = recv_frame(c, &h, &r);
	assert_true(rc != 0 || h.type == PROTO_ERROR);
	net_client_free(c);
	assert_int_equal(tu_log_count(&d, "authentication failed"), before + 1);

	/* a flipped bit in the payload of a fresh frame */
	c = conn("tamper");
	n = proto_session_seal(net_client_session(c), PROTO_GET, 0, 0, 1, &m,
			       frame, sizeof(frame));
	frame[PROTO_HEADER_SIZE + 3] ^= 0x10;
	assert_int_equal(net_client_send_raw(c, frame, (size_t)n), 0);
	rc = recv_frame(c, &h, &r);
	assert_true(rc != 0 || (h.type == PROTO_ERROR && r.error.code == RTCMS_EAUTH));
	net_client_free(c);

	/* a well-formed request of a type the store does not serve */
	c = conn("wrongtype");
	memset(&m, 0, sizeof(m));
	assert_int_equal(net_client_call(c, PROTO_OK, &m, PROTO_OK, &h, &r), RTCMS_EPROTO);
	net_client_free(c);
	assert_intact();
}

static void test_idle_and_slow_clients(void **state)
{
	(void)state;
	/* an idle TCP client, an idle authenticated client and a slow one */
	int idle = raw_connect();
	struct net_client *quiet = conn("quiet");
	int slow = raw_connect();
	struct proto_session s;
	uint8_t hello[512];
	proto_session_init(&s, &key, true, 0);
	int n = proto_session_hello(&s, PROTO_ROLE_CLI, "slow", hello, sizeof(hello));

	/* meanwhile another client is served normally */
	struct net_client *c = conn("busy");
	assert_int_equal(put_original(c, 2), 0);
	net_client_free(c);
	assert_intact();

	/* the slow client dribbles one byte every 200 ms: cut off by the
	 * frame timeout (1 s) long before it finishes its HELLO */
	int sent = 0, closed = 0;
	for (int i = 0; i < 40 && !closed; i++) {
		if (sent < n && write(slow, hello + sent, 1) == 1)
			sent++;
		closed = closed_within(slow, 200);
	}
	assert_true(closed);
	assert_true(sent < n);
	/* the idle ones are closed too */
	assert_true(closed_within(idle, 5000));
	struct proto_header h;
	union proto_msg r;
	net_client_set_timeout(quiet, 5000);
	assert_true(net_client_recv(quiet, &h, &r) != 0);
	close(idle);
	close(slow);
	net_client_free(quiet);
	assert_true(tu_log_count(&d, "no complete frame") >= 3);
	assert_intact();
}

static void test_too_many_connections(void **state)
{
	(void)state;
	struct net_client *c[6] = { 0 };
	struct net_client *extra = NULL;
	for (int i = 0; i < 6; i++)
		c[i] = conn("hog");
	assert_int_equal(net_client_connect(d.addr, &key, PROTO_ROLE_CLI, "late",
					    5000, &extra), RTCMS_EBUSY);
	for (int i = 0; i < 6; i++)
		net_client_free(c[i]);
	/* slots are freed when they go */
	usleep(200 * 1000);
	assert_intact();
}

static void test_bad_put_stream(void **state)
{
	(void)state;
	/* a PUT whose chunk data does not match its hash is refused and
	 * nothing of it becomes visible */
	struct net_client *c = conn("liar");
	struct proto_header h;
	union proto_msg m, r;
	uint8_t data[1000];
	tu_fill(data, sizeof(data), 1);
	memset(&m, 0, sizeof(m));
	strcpy(m.meta.process, "liar");
	m.meta.incarnation = m.meta.sequence = 1;
	m.meta.size = sizeof(data);
	m.meta.chunk_count = 1;
	assert_int_equal(net_client_call(c, PROTO_PUT_BEGIN, &m, PROTO_PUT_READY, &h, &r), 0);
	memset(&m, 0, sizeof(m));
	m.chunk.offset = 0;
	m.chunk.data = data;
	m.chunk.len = sizeof(data);
	proto_chunk_hash(data, sizeof(data), m.chunk.hash);
	data[5] ^= 1; /* data no longer matches */
	assert_int_equal(net_client_send(c, PROTO_CHUNK, 0, &m, NULL), 0);
	m.put_end.chunk_count = 1;
	net_client_send(c, PROTO_PUT_END, 0, &m, NULL);
	assert_int_equal(net_client_recv(c, &h, &r), 0);
	assert_int_equal(h.type, PROTO_ERROR);
	assert_int_equal(r.error.code, RTCMS_ECORRUPT);
	net_client_free(c);

	c = conn("check");
	struct proto_ckpt_meta meta;
	assert_int_equal(store_client_get(c, "liar", 0, 0, 1, &meta, NULL, NULL, NULL),
			 RTCMS_ENOENT);
	net_client_free(c);
	assert_intact();
}

/* One sealed chunk as a PUT, its raw tail and MAC as given: the store's
 * answer to PUT_END (PUT_ACK or the ERROR's code). */
static int put_sealed_chunk(const char *process, const struct proto_chunk *chunk,
			    uint64_t size)
{
	struct net_client *c = conn(process);
	struct proto_header h;
	union proto_msg m, r;
	int rc;

	memset(&m, 0, sizeof(m));
	strcpy(m.meta.process, process);
	m.meta.incarnation = m.meta.sequence = 1;
	m.meta.size = size;
	m.meta.chunk_count = 1;
	struct proto_image_hash ih;
	proto_image_hash_init(&ih, size);
	assert_int_equal(proto_image_hash_update(&ih, 0, chunk->len, chunk->hash), 0);
	assert_int_equal(proto_image_hash_final(&ih, m.meta.hash), 0);
	assert_int_equal(net_client_call(c, PROTO_PUT_BEGIN, &m, PROTO_PUT_READY, &h, &r), 0);
	m.chunk = *chunk;
	assert_int_equal(net_client_send(c, PROTO_CHUNK, 0, &m, NULL), 0);
	memset(&m, 0, sizeof(m));
	m.put_end.chunk_count = 1;
	net_client_send(c, PROTO_PUT_END, 0, &m, NULL);
	rc = net_client_recv(c, &h, &r);
	if (rc == 0)
		rc = h.type == PROTO_ERROR ? r.error.code : 0;
	net_client_free(c);
	return rc;
}

/* A sealed chunk travels as a raw tail the session does not seal again:
 * the store takes it only with its source's MAC. A tail rewritten on the
 * way (its checksum made to match) or one without a MAC is refused and
 * nothing of it is stored; the genuine one is taken. */
static void test_raw_tail_tampered(void **state)
{
	(void)state;
	static const char ring_text[] = "rtcms-data-key-v1 7 aes-256-gcm "
		"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\n";
	struct datakey_ring ring;
	struct proto_key kcm;
	struct proto_chunk ch;
	char err[256];
	uint8_t plain[3000], sealed[sizeof(plain) + STREAM_TAG_SIZE];
	struct proto_ckpt_meta meta;

	assert_int_equal(datakey_parse(ring_text, strlen(ring_text), &ring, err, sizeof(err)), 0);
	proto_chunk_mac_key(&key, &kcm);
	tu_fill(plain, sizeof(plain), 9);
	memset(&ch, 0, sizeof(ch));
	ch.len = sizeof(plain);
	ch.key_id = 7;
	ch.data = sealed;
	assert_int_equal(stream_chunk_seal(&ring.keys[0], plain, sizeof(plain), ch.hash,
					   sealed, ch.sum), 0);
	assert_int_equal(stream_chunk_mac(&kcm, &ch, ch.mac), 0);

	/* rewritten on the way, the checksum made to match */
	sealed[100] ^= 0x40;
	struct proto_chunk bad = ch;
	stream_chunk_sum(sealed, sizeof(sealed), bad.sum);
	assert_int_equal(put_sealed_chunk("rewritten", &bad, sizeof(plain)), RTCMS_EAUTH);
	sealed[100] ^= 0x40;
	/* without a MAC (a source that lacks the cluster key) */
	bad = ch;
	memset(bad.mac, 0, sizeof(bad.mac));
	assert_int_equal(put_sealed_chunk("unproven", &bad, sizeof(plain)), RTCMS_EAUTH);

	struct net_client *c = conn("check");
	assert_int_equal(store_client_get(c, "rewritten", 0, 0, 1, &meta, NULL, NULL, NULL),
			 RTCMS_ENOENT);
	assert_int_equal(store_client_get(c, "unproven", 0, 0, 1, &meta, NULL, NULL, NULL),
			 RTCMS_ENOENT);
	net_client_free(c);
	/* the genuine chunk is taken */
	assert_int_equal(put_sealed_chunk("genuine", &ch, sizeof(plain)), 0);
	assert_true(tu_log_count(&d, "does not match its MAC") >= 2);
	datakey_ring_wipe(&ring);
	assert_intact();
}

int main(void)
{
	signal(SIGPIPE, SIG_IGN);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_garbage),
		cmocka_unit_test(test_oversized),
		cmocka_unit_test(test_truncated),
		cmocka_unit_test(test_wrong_key),
		cmocka_unit_test(test_replay_and_tamper),
		cmocka_unit_test(test_idle_and_slow_clients),
		cmocka_unit_test(test_too_many_connections),
		cmocka_unit_test(test_bad_put_stream),
		cmocka_unit_test(test_raw_tail_tampered),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
