/*
 * test_gate.c - the gate in front of every server (daemon/gate.h): a
 * whole HELLO is handed on byte for byte; a refusal reaches the peer as a
 * plaintext ERROR; a first frame that is not a HELLO is refused; an idle
 * peer is closed at the handshake deadline; with max_pending held, the
 * oldest is closed to make room - unless its HELLO is there already.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <netinet/in.h>
#include <poll.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

#include "daemon/gate.h"
#include "net/addr.h"
#include "proto/msg.h"
#include "proto/session.h"
#include "rtcms_error.h"
#include "testutil.h"

/* a guard against a hang, not a requirement: each wait below is for
 * something the gate does within its (short) deadline */
#define HANG_MS 10000

static uv_loop_t loop;
static struct gate *gate;
static char addr[80];
static struct proto_key key;
static int refuse_with;              /* what on_hello answers */
static int hellos;                   /* on_hello calls */
static uint8_t got[512];             /* the last HELLO handed on */
static size_t got_len;
static int got_fd = -1;

static int on_hello(void *ctx, int fd, const char *peer, const uint8_t *hello, size_t len)
{
	(void)ctx;
	(void)peer;
	hellos++;
	memcpy(got, hello, len);
	got_len = len;
	if (refuse_with)
		return refuse_with;
	if (got_fd >= 0)
		close(got_fd);
	got_fd = fd;
	return 0;
}

static void start(int handshake_ms, int max_pending)
{
	struct gate_options o = {
		.listen = "127.0.0.1:0",
		.key = &key,
		.handshake_ms = handshake_ms,
		.max_pending = max_pending,
		.on_hello = on_hello,
	};
	assert_int_equal(gate_start(&loop, &o, &gate, addr, sizeof(addr)), 0);
	refuse_with = 0;
	hellos = 0;
}

static int setup(void **state)
{
	(void)state;
	randombytes_buf(key.bytes, sizeof(key.bytes));
	return uv_loop_init(&loop);
}

static int teardown(void **state)
{
	(void)state;
	gate_stop(gate);
	gate = NULL;
	uv_run(&loop, UV_RUN_DEFAULT);
	if (got_fd >= 0)
		close(got_fd);
	got_fd = -1;
	return uv_loop_close(&loop);
}

static int dial(void)
{
	struct sockaddr_storage ss;
	assert_int_equal(net_addr_parse(addr, 0, &ss), 0);
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	assert_int_equal(connect(fd, (struct sockaddr *)&ss, sizeof(struct sockaddr_in)), 0);
	return fd;
}

/* Run the loop until fd is readable (data or its end); 1 if it is. */
static int spin_readable(int fd)
{
	for (uint64_t end = tu_now_ms() + HANG_MS; tu_now_ms() < end;) {
		uv_run(&loop, UV_RUN_NOWAIT);
		struct pollfd p = { fd, POLLIN, 0 };
		if (poll(&p, 1, 5) > 0)
			return 1;
	}
	return 0;
}

/* Run the loop until on_hello was called n times in all; 1 if it was. */
static int spin_hellos(int n)
{
	for (uint64_t end = tu_now_ms() + HANG_MS; tu_now_ms() < end && hellos < n;) {
		uv_run(&loop, UV_RUN_NOWAIT);
		usleep(1000);
	}
	return hellos >= n;
}

/* 1 if the peer closed fd (after whatever it sent); runs the loop. */
static int closed(int fd)
{
	uint8_t buf[1024];
	while (spin_readable(fd)) {
		ssize_t n = recv(fd, buf, sizeof(buf), 0);
		if (n <= 0)
			return 1;
	}
	return 0;
}

static int make_hello(uint8_t *out, size_t cap)
{
	struct proto_session s;
	proto_session_init(&s, &key, true, 0);
	return proto_session_hello(&s, PROTO_ROLE_CLI, "test", out, cap);
}

static void test_hello_handed_on(void **state)
{
	(void)state;
	start(0, 0);
	uint8_t hello[512];
	int n = make_hello(hello, sizeof(hello));
	int fd = dial();
	/* in two pieces: the gate puts them together */
	assert_int_equal(send(fd, hello, 10, 0), 10);
	assert_int_equal(send(fd, hello + 10, (size_t)n - 10, 0), n - 10);
	assert_true(spin_hellos(1));
	assert_int_equal(got_len, n);
	assert_memory_equal(got, hello, (size_t)n);
	/* the descriptor handed on is the connection */
	assert_int_equal(send(got_fd, "x", 1, MSG_NOSIGNAL), 1);
	char c;
	assert_int_equal(recv(fd, &c, 1, 0), 1);
	assert_int_equal(c, 'x');
	close(fd);
}

static void test_refused(void **state)
{
	(void)state;
	start(0, 0);
	refuse_with = RTCMS_EBUSY;
	uint8_t hello[512], reply[1024];
	struct proto_session s;
	proto_session_init(&s, &key, true, 0);
	int n = proto_session_hello(&s, PROTO_ROLE_CLI, "test", hello, sizeof(hello));
	int fd = dial();
	assert_int_equal(send(fd, hello, (size_t)n, 0), n);
	assert_true(spin_readable(fd));
	ssize_t m = recv(fd, reply, sizeof(reply), 0);
	assert_true(m > 0);
	/* the client sees the server's code, checked under the key */
	assert_int_equal(proto_session_finish(&s, reply, (size_t)m), RTCMS_EBUSY);
	assert_true(closed(fd));
	close(fd);
}

static void test_not_hello(void **state)
{
	(void)state;
	start(0, 0);
	uint8_t hdr[PROTO_HEADER_SIZE], reply[1024];
	struct proto_header h = { PROTO_VERSION, PROTO_STATUS, 0, 0, 0, 0, 0, 0 };
	proto_header_encode(&h, hdr);
	int fd = dial();
	assert_int_equal(send(fd, hdr, sizeof(hdr), 0), (ssize_t)sizeof(hdr));
	assert_true(spin_readable(fd));
	ssize_t m = recv(fd, reply, sizeof(reply), 0);
	assert_true(m > 0);
	struct proto_session s;
	proto_session_init(&s, &key, true, 0);
	assert_int_equal(proto_session_finish(&s, reply, (size_t)m), RTCMS_EPROTO);
	assert_true(closed(fd));
	assert_int_equal(hellos, 0);
	close(fd);
}

/* Idle, and trickling a HELLO: both are closed at the deadline. */
static void test_deadline(void **state)
{
	(void)state;
	start(200, 0);
	uint8_t hello[512];
	int n = make_hello(hello, sizeof(hello));
	int idle = dial(), slow = dial();
	int sent = 0, cut = 0;
	for (uint64_t end = tu_now_ms() + HANG_MS; !cut && tu_now_ms() < end && sent < n;) {
		uv_run(&loop, UV_RUN_NOWAIT);
		struct pollfd p = { slow, POLLIN, 0 };
		cut = poll(&p, 1, 20) > 0;
		if (!cut && send(slow, hello + sent, 1, MSG_NOSIGNAL) == 1)
			sent++;
	}
	assert_true(cut);
	assert_true(sent < n);
	assert_true(closed(slow));
	assert_true(closed(idle));
	assert_int_equal(hellos, 0);
	close(idle);
	close(slow);
}

/* max_pending held: the oldest goes, unless its HELLO arrived already. */
static void test_oldest_closed(void **state)
{
	(void)state;
	start(HANG_MS, 2);
	uint8_t hello[512];
	int n = make_hello(hello, sizeof(hello));
	/* b waits in the backlog with its HELLO, then three idle ones */
	int b = dial();
	assert_int_equal(send(b, hello, (size_t)n, 0), n);
	int a = dial(), c = dial(), d = dial();
	/* all four are accepted in one go, before anything is read: c makes
	 * room by serving b (the oldest, its HELLO there), d by closing a */
	assert_true(spin_hellos(1));
	assert_int_equal(got_len, n);
	assert_memory_equal(got, hello, (size_t)n);
	assert_true(closed(a));
	assert_int_equal(hellos, 1);
	close(a);
	close(b);
	close(c);
	close(d);
}

int main(void)
{
	if (sodium_init() < 0)
		return 1;
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_hello_handed_on, setup, teardown),
		cmocka_unit_test_setup_teardown(test_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_not_hello, setup, teardown),
		cmocka_unit_test_setup_teardown(test_deadline, setup, teardown),
		cmocka_unit_test_setup_teardown(test_oldest_closed, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
