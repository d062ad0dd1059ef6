/*
 * test_fencing.c - leases and heartbeats with the real daemons: a frozen
 * agent's programs stop themselves when the lease lapses (librtcms'
 * watchdog), an agent that hears from no manager stops its programs, a
 * manager refuses a config whose detection timeout is shorter than the
 * lease plus the margin, and the manager's heartbeat port answers only
 * fresh, authentic heartbeats of registered nodes.
 */
#include <arpa/inet.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include "cluster.h"
#include "net/addr.h"
#include "net/client.h"
#include "proto/heartbeat.h"
#include "rtcms_error.h"

#define COUNTER RTCMS_BIN_DIR "/rtcms-counter"

/* 1 if pid is gone or a zombie (dead, not reaped by a stopped parent) */
static int dead(int pid)
{
	char path[64], buf[256];
	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	FILE *f = fopen(path, "r");
	if (!f)
		return 1;
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	const char *p = strrchr(buf, ')');
	return p && p[1] == ' ' && p[2] == 'Z';
}

static int wait_dead(int pid, int timeout_ms)
{
	uint64_t end = tu_now_ms() + (uint64_t)timeout_ms;
	while (tu_now_ms() < end) {
		if (dead(pid))
			return 0;
		usleep(5000);
	}
	return -1;
}

/* A frozen (SIGSTOPped) agent cannot fence anything: the programs stop
 * themselves when the lease in their area lapses. */
static void test_frozen_agent_programs_stop(void **state)
{
	static struct cluster cl; /* static: cl_teardown may stop it after a failed assertion */
	(void)state;
	assert_int_equal(cl_start(&cl, "fence-frozen", NULL), 0);
	assert_int_equal(cl_agent_start(&cl, 0, NULL), 0);
	const char *counter[] = { COUNTER, "--iterations", "0", "--interval-ms", "20", NULL };
	assert_int_equal(cl_run(&cl, "fenced-1", 0, counter, NULL), 0);
	assert_int_equal(cl_wait_durable(&cl, "fenced-1", 1, 2, 20000), 0);
	int pid = cl_program_pid(&cl, 0, "fenced-1");
	assert_true(pid > 0);
	assert_false(dead(pid));

	kill(cl.agents[0].pid, SIGSTOP);
	assert_int_equal(wait_dead(pid, 10000), 0);
	kill(cl.agents[0].pid, SIGCONT);
	assert_int_equal(cl_wait_log(&cl.agents[0], "the agent's lease lapsed", 1, 5000), 0);
	/* the agent, back, sees the lapsed lease, reaps, and is leased again */
	assert_int_equal(cl_wait_log(&cl.agents[0], "killed by signal 9", 1, 5000), 0);
	assert_int_equal(cl_wait_log(&cl.agents[0], "lease regained", 1, 5000), 0);
	cl_stop(&cl);
}

/* No manager answers: the agent stops its programs itself. */
static void test_agent_without_managers_fences(void **state)
{
	static struct cluster cl; /* static: cl_teardown may stop it after a failed assertion */
	(void)state;
	assert_int_equal(cl_start(&cl, "fence-alone", NULL), 0);
	assert_int_equal(cl_agent_start(&cl, 0, NULL), 0);
	const char *counter[] = { COUNTER, "--iterations", "0", "--interval-ms", "20", NULL };
	assert_int_equal(cl_run(&cl, "alone-1", 0, counter, NULL), 0);
	assert_int_equal(cl_wait_durable(&cl, "alone-1", 1, 2, 20000), 0);
	int pid = cl_program_pid(&cl, 0, "alone-1");
	assert_true(pid > 0);
	tu_daemon_stop(&cl.manager, SIGKILL);
	assert_int_equal(cl_wait_log(&cl.agents[0], "lease lapsed: no manager answered", 1,
				     10000), 0);
	assert_int_equal(wait_dead(pid, 5000), 0);
	/* and it does not count as an ended program */
	assert_int_equal(tu_log_count(&cl.agents[0], "EXITED"), 0);
	cl_stop(&cl);
}

/* detection timeout < lease + margin: refused with a clear message */
static void test_unsafe_timeouts_refused(void **state)
{
	(void)state;
	char *dir = tu_tmpdir("fence-config");
	char *key = tu_keyfile(dir, NULL);
	char cmd[2048], out[2048] = "";
	snprintf(cmd, sizeof(cmd), "%s/rtcms-manager --key %s --node-timeout 250 "
		 "--agent-lease 200 --fence-margin 100 2>&1; echo \"exit=$?\"",
		 RTCMS_BIN_DIR, key);
	FILE *p = popen(cmd, "r");
	assert_non_null(p);
	size_t n = fread(out, 1, sizeof(out) - 1, p);
	out[n] = '\0';
	pclose(p);
	assert_non_null(strstr(out, "node_timeout (250 ms) must be at least agent_lease + "
				    "fence_margin"));
	assert_non_null(strstr(out, "exit=2"));
	tu_rmrf(dir);
	free(dir);
	free(key);
}

static int udp_exchange(int fd, const struct sockaddr_storage *to, const uint8_t *dg,
			size_t len, uint8_t *reply, size_t cap)
{
	socklen_t sl = to->ss_family == AF_INET ? sizeof(struct sockaddr_in)
						: sizeof(struct sockaddr_in6);
	if (sendto(fd, dg, len, 0, (const struct sockaddr *)to, sl) < 0)
		return -1;
	ssize_t n = recv(fd, reply, cap, 0);
	return n < 0 ? 0 : (int)n;
}

/* The manager's heartbeat port: an ack only for a fresh heartbeat of a
 * registered node's boot under the cluster key. */
static void test_heartbeat_port(void **state)
{
	static struct cluster cl; /* static: cl_teardown may stop it after a failed assertion */
	struct net_client *c = NULL;
	struct proto_header h;
	union proto_msg q, r;
	struct proto_heartbeat hb, ack;
	struct sockaddr_storage to;
	uint8_t dg[PROTO_HEARTBEAT_MAX], reply[PROTO_HEARTBEAT_MAX], type;
	(void)state;

	assert_int_equal(cl_start(&cl, "fence-hb", NULL), 0);
	assert_int_equal(net_client_connect(cl.manager.addr, &cl.key, PROTO_ROLE_AGENT,
					    "fake", 5000, &c), 0);
	memset(&q, 0, sizeof(q));
	q.reg.node = 0x77;
	strcpy(q.reg.name, "fake");
	strcpy(q.reg.address, "127.0.0.9:1");
	q.reg.quota_max = 1;
	memset(q.reg.boot, 0xb0, PROTO_BOOT_SIZE);
	assert_int_equal(net_client_call(c, PROTO_REGISTER, &q, PROTO_REGISTER_OK, &h, &r), 0);
	assert_true(r.reg_ok.lease_ms > 0 && r.reg_ok.heartbeat_ms * 2 <= r.reg_ok.lease_ms);
	net_client_free(c);

	int fd = socket(AF_INET, SOCK_DGRAM, 0);
	struct timeval tv = { 0, 100000 }; /* six silent probes stay within the node timeout */
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	assert_int_equal(net_addr_parse(cl.manager.addr, 0, &to), 0);
	memset(&hb, 0, sizeof(hb));
	hb.node = 0x77;
	memset(hb.boot, 0xb0, PROTO_BOOT_SIZE);
	hb.counter = 5;
	int n = proto_heartbeat_seal(&cl.key, PROTO_HEARTBEAT, &hb, dg, sizeof(dg));
	int m = udp_exchange(fd, &to, dg, (size_t)n, reply, sizeof(reply));
	assert_true(m > 0);
	assert_int_equal(proto_heartbeat_open(&cl.key, reply, (size_t)m, &type, &ack), 0);
	assert_int_equal(type, PROTO_HEARTBEAT_ACK);
	assert_int_equal(ack.counter, 5);
	/* the same datagram again (a replay), an older counter: no answer */
	assert_int_equal(udp_exchange(fd, &to, dg, (size_t)n, reply, sizeof(reply)), 0);
	hb.counter = 4;
	n = proto_heartbeat_seal(&cl.key, PROTO_HEARTBEAT, &hb, dg, sizeof(dg));
	assert_int_equal(udp_exchange(fd, &to, dg, (size_t)n, reply, sizeof(reply)), 0);
	/* another key, another boot, an unknown node, garbage: no answer */
	struct proto_key wrong;
	randombytes_buf(wrong.bytes, sizeof(wrong.bytes));
	hb.counter = 6;
	n = proto_heartbeat_seal(&wrong, PROTO_HEARTBEAT, &hb, dg, sizeof(dg));
	assert_int_equal(udp_exchange(fd, &to, dg, (size_t)n, reply, sizeof(reply)), 0);
	memset(hb.boot, 0xb1, PROTO_BOOT_SIZE);
	n = proto_heartbeat_seal(&cl.key, PROTO_HEARTBEAT, &hb, dg, sizeof(dg));
	assert_int_equal(udp_exchange(fd, &to, dg, (size_t)n, reply, sizeof(reply)), 0);
	memset(hb.boot, 0xb0, PROTO_BOOT_SIZE);
	hb.node = 0x78;
	n = proto_heartbeat_seal(&cl.key, PROTO_HEARTBEAT, &hb, dg, sizeof(dg));
	assert_int_equal(udp_exchange(fd, &to, dg, (size_t)n, reply, sizeof(reply)), 0);
	tu_fill(dg, sizeof(dg), 3);
	assert_int_equal(udp_exchange(fd, &to, dg, sizeof(dg), reply, sizeof(reply)), 0);
	/* a fresh one is still answered */
	hb.node = 0x77;
	hb.counter = 7;
	n = proto_heartbeat_seal(&cl.key, PROTO_HEARTBEAT, &hb, dg, sizeof(dg));
	assert_true(udp_exchange(fd, &to, dg, (size_t)n, reply, sizeof(reply)) > 0);
	close(fd);
	cl_stop(&cl);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_frozen_agent_programs_stop, cl_teardown),
		cmocka_unit_test_teardown(test_agent_without_managers_fences, cl_teardown),
		cmocka_unit_test(test_unsafe_timeouts_refused),
		cmocka_unit_test_teardown(test_heartbeat_port, cl_teardown),
	};
	signal(SIGPIPE, SIG_IGN);
	proto_init();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
