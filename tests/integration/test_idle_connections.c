/*
 * test_idle_connections.c - peers that connect and never authenticate
 * cannot lock real clients out. Against the real store, manager and agent
 * each in turn: 200 TCP connections that never send a byte and 20 that
 * trickle a HELLO one byte at a time, re-opened as fast as the daemon
 * closes them, while an authenticated client asks again and again (the
 * store STATUS, the manager MSTATUS, the agent INFO): every one of its
 * requests must be answered, each within 2 s of its connect. Once more at
 * the store with more idle connections than it holds before their HELLO
 * (GATE_MAX_PENDING), so it keeps closing the oldest to let new ones in.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "cluster.h"
#include "daemon/gate.h"
#include "net/addr.h"
#include "net/client.h"
#include "proto/session.h"
#include "rtcms_error.h"
#include "testutil.h"

#define IDLE 200            /* connections that never send a byte */
#define IDLE_OVER (GATE_MAX_PENDING + 100) /* more than a daemon holds */
#define SLOW 20             /* connections that trickle a HELLO */
#define SOCKS_MAX (IDLE_OVER + SLOW)
#define SERVED_WITHIN_MS 2000 /* the requirement: a real client is served */
#define RUN_MS 5000         /* how long each daemon is attacked */

static struct cluster cl;

/* ---- the attacker: a thread that keeps idle + SLOW sockets open -------- */

struct sock {
	int fd;
	int sent;                   /* bytes of the HELLO (slow ones) */
};

struct attack {
	const char *addr;
	int idle;                   /* sockets 0..idle-1 idle, then SLOW slow */
	pthread_t thread;
	atomic_int stop;
	atomic_int ready;           /* every socket opened once */
	uint8_t hello[512];         /* a valid HELLO, trickled by the slow ones */
	int hello_len;
	/* results, read after the join */
	long opened, cut;           /* sockets opened; closed by the daemon */
	int failed;                 /* a socket could not even be opened */
	struct sock socks[SOCKS_MAX];
};

static int open_sock(const struct sockaddr_storage *ss)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	if (connect(fd, (const struct sockaddr *)ss, sizeof(struct sockaddr_in)) != 0 &&
	    errno != EINPROGRESS) {
		close(fd);
		return -1;
	}
	return fd;
}

static void *attack_thread(void *arg)
{
	struct attack *a = arg;
	struct sockaddr_storage ss;
	struct sock *socks = a->socks;
	struct pollfd p[SOCKS_MAX];
	int n = a->idle + SLOW;
	char junk[4096];

	if (net_addr_parse(a->addr, 0, &ss) != 0) {
		a->failed = 1;
		return NULL;
	}
	for (int i = 0; i < n; i++) {
		socks[i].fd = open_sock(&ss);
		socks[i].sent = 0;
		if (socks[i].fd < 0)
			a->failed = 1;
		else
			a->opened++;
	}
	atomic_store(&a->ready, 1);
	while (!atomic_load(&a->stop)) {
		for (int i = 0; i < n; i++)
			p[i] = (struct pollfd){ socks[i].fd, POLLIN, 0 };
		poll(p, (nfds_t)n, 50);
		for (int i = 0; i < n; i++) {
			struct sock *s = &socks[i];
			int gone = s->fd < 0;
			if (!gone && (p[i].revents & (POLLIN | POLLHUP | POLLERR))) {
				/* an ERROR frame or the end: either way it was cut */
				ssize_t got = recv(s->fd, junk, sizeof(junk), 0);
				gone = got == 0 || (got < 0 && errno != EAGAIN && errno != EINTR);
			}
			if (!gone && i >= a->idle && s->sent < a->hello_len &&
			    send(s->fd, a->hello + s->sent, 1, MSG_NOSIGNAL) == 1)
				s->sent++; /* one byte per round: never a whole HELLO in time */
			if (!gone)
				continue;
			if (s->fd >= 0) {
				close(s->fd);
				a->cut++;
			}
			s->fd = open_sock(&ss);
			s->sent = 0;
			if (s->fd >= 0)
				a->opened++;
		}
	}
	for (int i = 0; i < n; i++)
		if (socks[i].fd >= 0)
			close(socks[i].fd);
	return NULL;
}

static void attack_start(struct attack *a, const char *addr, int idle)
{
	memset(a, 0, sizeof(*a));
	a->addr = addr;
	a->idle = idle;
	struct proto_session s;
	proto_session_init(&s, &cl.key, true, 0);
	a->hello_len = proto_session_hello(&s, PROTO_ROLE_CLI, "loris", a->hello,
					   sizeof(a->hello));
	assert_true(a->hello_len > 0);
	assert_int_equal(pthread_create(&a->thread, NULL, attack_thread, a), 0);
	while (!atomic_load(&a->ready))
		usleep(1000);
}

static void attack_stop(struct attack *a)
{
	atomic_store(&a->stop, 1);
	pthread_join(a->thread, NULL);
	print_message("attack on %s: %ld connections opened, %ld cut by the daemon\n",
		      a->addr, a->opened, a->cut);
	assert_int_equal(a->failed, 0);
	/* the daemon cut unauthenticated connections (else nothing to re-open) */
	assert_true(a->cut > 0);
}

/* ---- the real client ------------------------------------------------- */

/* One request of the real client: connect with the cluster key, ask,
 * check the structured reply. 0 or an RTCMS code. */
typedef int (*ask_fn)(struct net_client *c);

static int ask_store(struct net_client *c)
{
	struct proto_header h;
	union proto_msg q, r;
	memset(&q, 0, sizeof(q));
	int rc = net_client_call(c, PROTO_STATUS, &q, PROTO_STATUS_REPLY, &h, &r);
	if (rc == 0 && r.scrub_reply.mirror_count != 2)
		rc = RTCMS_EPROTO;
	return rc;
}

static int ask_manager(struct net_client *c)
{
	static struct proto_node_entry nodes[PROTO_NODES_MAX];
	static struct proto_proc_entry procs[PROTO_PROCS_MAX];
	struct proto_header h;
	union proto_msg q, r;
	memset(&q, 0, sizeof(q));
	r.mstatus.nodes = nodes;
	r.mstatus.procs = procs;
	int rc = net_client_call(c, PROTO_MSTATUS, &q, PROTO_MSTATUS_REPLY, &h, &r);
	if (rc == 0 && strcmp(r.mstatus.name, "manager") != 0)
		rc = RTCMS_EPROTO;
	return rc;
}

static int ask_agent(struct net_client *c)
{
	struct proto_header h;
	union proto_msg q, r;
	memset(&q, 0, sizeof(q));
	int rc = net_client_call(c, PROTO_INFO, &q, PROTO_INFO_REPLY, &h, &r);
	if (rc == 0 && r.info.node != cl_node(0))
		rc = RTCMS_EPROTO;
	return rc;
}

/* While addr is attacked (idle idle connections and SLOW slow ones), the
 * real client asks again and again for RUN_MS: every request is
 * answered, within SERVED_WITHIN_MS. */
static void served_under_attack(const char *addr, int idle, uint8_t role, ask_fn ask)
{
	static struct attack a;
	attack_start(&a, addr, idle);
	int asked = 0, failed = 0, late = 0, first_rc = 0;
	uint64_t worst = 0, end = tu_now_ms() + RUN_MS;
	while (tu_now_ms() < end) {
		uint64_t t0 = tu_now_ms();
		struct net_client *c = NULL;
		int rc = net_client_connect(addr, &cl.key, role, "real", SERVED_WITHIN_MS, &c);
		if (rc == 0)
			rc = ask(c);
		net_client_free(c);
		uint64_t took = tu_now_ms() - t0;
		asked++;
		if (rc) {
			failed++;
			if (!first_rc)
				first_rc = rc;
		}
		if (took > SERVED_WITHIN_MS)
			late++;
		if (took > worst)
			worst = took;
		usleep(50 * 1000);
	}
	attack_stop(&a);
	print_message("%s: %d requests, %d failed (first: %s), %d late, slowest %llu ms\n",
		      addr, asked, failed, first_rc ? rtcms_strerror(first_rc) : "-", late,
		      (unsigned long long)worst);
	assert_true(asked > 0);
	assert_int_equal(failed, 0);
	assert_int_equal(late, 0);
}

static void test_store(void **state)
{
	(void)state;
	served_under_attack(cl.store.addr, IDLE, PROTO_ROLE_CLI, ask_store);
	assert_true(tu_daemon_alive(&cl.store));
}

static void test_store_over_pending_cap(void **state)
{
	(void)state;
	served_under_attack(cl.store.addr, IDLE_OVER, PROTO_ROLE_CLI, ask_store);
	assert_true(tu_daemon_alive(&cl.store));
}

static void test_manager(void **state)
{
	(void)state;
	served_under_attack(cl.manager.addr, IDLE, PROTO_ROLE_CLI, ask_manager);
	assert_true(tu_daemon_alive(&cl.manager));
}

static void test_agent(void **state)
{
	(void)state;
	served_under_attack(cl.agents[0].addr, IDLE, PROTO_ROLE_MANAGER, ask_agent);
	assert_true(tu_daemon_alive(&cl.agents[0]));
}

static int setup(void **state)
{
	(void)state;
	if (cl_start(&cl, "idle", NULL) != 0 || cl_agent_start(&cl, 0, NULL) != 0)
		return -1;
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	cl_stop(&cl);
	return 0;
}

int main(void)
{
	signal(SIGPIPE, SIG_IGN);
	/* the attackers' sockets here, and as many at each daemon (which
	 * inherit this limit) */
	struct rlimit nofile;
	if (getrlimit(RLIMIT_NOFILE, &nofile) == 0 && nofile.rlim_cur < 4096) {
		nofile.rlim_cur = nofile.rlim_max < 4096 ? nofile.rlim_max : 4096;
		setrlimit(RLIMIT_NOFILE, &nofile);
	}
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_store),
		cmocka_unit_test(test_store_over_pending_cap),
		cmocka_unit_test(test_manager),
		cmocka_unit_test(test_agent),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
