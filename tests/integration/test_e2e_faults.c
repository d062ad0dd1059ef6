/*
 * test_e2e_faults.c - the end-to-end flows under faults, with the real
 * daemons and real kills: the store down and back, a program crashing
 * during its restore on every node, a target agent killed during a
 * restore, an agent that dies mid-transfer or sends a checkpoint that does
 * not match its hash, and peers without the key. Nothing acknowledged is
 * lost and the manager keeps serving.
 */
#include <arpa/inet.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <cmocka.h>

#include "cluster.h"
#include "net/client.h"
#include "rtcms_error.h"

#define COUNTER RTCMS_BIN_DIR "/rtcms-counter"
#define LEDGER RTCMS_BIN_DIR "/rtcms-ledger"

static void test_store_down_and_back(void **state)
{
	static struct cluster cl; /* static: cl_teardown may stop it after a failed assertion */
	struct proto_proc_entry e;
	(void)state;

	assert_int_equal(cl_start(&cl, "f-store", NULL), 0);
	assert_int_equal(cl_agent_start(&cl, 0, NULL), 0);
	const char *counter[] = { COUNTER, "--iterations", "0", "--interval-ms", "50", NULL };
	assert_int_equal(cl_run(&cl, "survivor", 0, counter, NULL), 0);
	assert_int_equal(cl_wait_durable(&cl, "survivor", 1, 2, 20000), 0);
	char store_addr[80];
	snprintf(store_addr, sizeof(store_addr), "%s", cl.store.addr);

	tu_daemon_stop(&cl.store, SIGKILL);
	assert_int_equal(cl_proc(&cl, "survivor", &e), 0);
	uint64_t durable_before = e.durable;
	usleep(1000 * 1000);
	/* the manager keeps serving and says the store is down */
	static struct proto_node_entry nodes[PROTO_NODES_MAX];
	static struct proto_proc_entry procs[PROTO_PROCS_MAX];
	union proto_msg q, r;
	memset(&q, 0, sizeof(q));
	r.mstatus.nodes = nodes;
	r.mstatus.procs = procs;
	assert_int_equal(cl_call(&cl, PROTO_MSTATUS, &q, PROTO_MSTATUS_REPLY, &r, 5000,
				 NULL, 0), 0);
	assert_int_equal(r.mstatus.store_up, 0);
	assert_true(r.mstatus.pending >= 1);
	assert_true(strlen(r.mstatus.store_error) > 0);
	assert_int_equal(cl_proc(&cl, "survivor", &e), 0);
	assert_true(e.notified > e.durable);
	uint64_t notified = e.notified;

	/* back on the same address and mirrors: the pullers catch up */
	const char *again[] = { "--listen", store_addr, NULL };
	assert_int_equal(tu_store_start(&cl.store, cl.dir, cl.key_file, 2, NULL, again), 0);
	assert_int_equal(cl_wait_durable(&cl, "survivor", 1, notified, 20000), 0);
	/* and says the store is up again */
	for (uint64_t end = tu_now_ms() + 20000;; usleep(20000)) {
		assert_int_equal(cl_call(&cl, PROTO_MSTATUS, &q, PROTO_MSTATUS_REPLY, &r, 5000,
					 NULL, 0), 0);
		if (r.mstatus.store_up || tu_now_ms() >= end)
			break;
	}
	assert_int_equal(r.mstatus.store_up, 1);
	assert_string_equal(r.mstatus.store_error, "");
	assert_true(durable_before >= 2);
	cl_stop(&cl);
}

/* A program that crashes during its restore on every node: the move
 * fails, the claim is released and the old instance goes on. */
static void test_restore_crash_everywhere(void **state)
{
	static struct cluster cl; /* static: cl_teardown may stop it after a failed assertion */
	struct proto_migrate_ok ok;
	struct proto_proc_entry e;
	char why[PROTO_TEXT_MAX + 1];
	(void)state;

	assert_int_equal(cl_start(&cl, "f-crash", NULL), 0);
	for (int i = 0; i < 3; i++)
		assert_int_equal(cl_agent_start(&cl, i, NULL), 0);
	const char *ledger[] = { LEDGER, "--iterations", "0", "--interval-ms", "50", NULL };
	const char *env[] = { "LEDGER_CRASH_ON_RESTORE=1", NULL };
	assert_int_equal(cl_run(&cl, "crashy", cl_node(0), ledger, env), 0);
	assert_int_equal(cl_wait_durable(&cl, "crashy", 1, 2, 20000), 0);
	int pid = cl_program_pid(&cl, 0, "crashy");
	assert_true(pid > 0);
	int rc = cl_migrate(&cl, "crashy", 0, 0, &ok, why, sizeof(why));
	assert_int_not_equal(rc, 0);
	assert_non_null(strstr(why, "exited during its restore"));
	assert_int_equal(tu_log_count(&cl.agents[1], "exited during its restore") +
			 tu_log_count(&cl.agents[2], "exited during its restore"), 2);
	assert_int_equal(tu_log_count(&cl.manager, "RELEASE crashy"), 1);
	/* the old instance goes on (thawed, the only one): new durable
	 * checkpoints, same incarnation */
	assert_int_equal(cl_program_pid(&cl, 0, "crashy"), pid);
	assert_int_equal(cl_proc(&cl, "crashy", &e), 0);
	assert_int_equal(cl_wait_durable(&cl, "crashy", 1, e.durable + 3, 20000), 0);
	assert_int_equal(cl_proc(&cl, "crashy", &e), 0);
	assert_int_equal(e.node, cl_node(0));
	assert_int_equal(e.state, PROTO_PS_RUNNING);
	cl_stop(&cl);
}

struct migrate_job {
	struct cluster *cl;
	const char *id;
	struct proto_migrate_ok ok;
	char why[PROTO_TEXT_MAX + 1];
	int rc;
};

static void *migrate_thread(void *arg)
{
	struct migrate_job *j = arg;
	j->rc = cl_migrate(j->cl, j->id, 0, 0, &j->ok, j->why, sizeof(j->why));
	return NULL;
}

/* The chosen target agent is killed (with its new program) while the
 * program restores: the manager takes the next-best node. */
static void test_target_dies_during_restore(void **state)
{
	static struct cluster cl; /* static: cl_teardown may stop it after a failed assertion */
	(void)state;

	assert_int_equal(cl_start(&cl, "f-target", NULL), 0);
	char roomy[1024];
	snprintf(roomy, sizeof(roomy), "%s/roomy.ini", cl.dir);
	FILE *f = fopen(roomy, "w");
	assert_non_null(f);
	fputs("[test]\nreport_mem_available = 64G\nreport_cpu_load = 1\n", f);
	fclose(f);
	const char *first[] = { "--config", roomy, NULL };
	assert_int_equal(cl_agent_start(&cl, 0, NULL), 0);
	assert_int_equal(cl_agent_start(&cl, 1, first), 0); /* placement's choice */
	assert_int_equal(cl_agent_start(&cl, 2, NULL), 0);
	const char *ledger[] = { LEDGER, "--iterations", "0", "--interval-ms", "50", NULL };
	const char *env[] = { "LEDGER_SLOW_RESTORE_MS=1500", NULL };
	assert_int_equal(cl_run(&cl, "moving", cl_node(0), ledger, env), 0);
	assert_int_equal(cl_wait_durable(&cl, "moving", 1, 2, 20000), 0);

	struct migrate_job j = { .cl = &cl, .id = "moving", .rc = -1 };
	pthread_t t;
	assert_int_equal(pthread_create(&t, NULL, migrate_thread, &j), 0);
	/* the instance node 3 started for the restore */
	int pid = cl_child_instance(&cl, 1, "moving", 20000);
	assert_true(pid > 0);
	tu_daemon_stop(&cl.agents[1], SIGKILL);
	if (pid > 0)
		kill(pid, SIGKILL);
	pthread_join(t, NULL);
	if (j.rc)
		fail_msg("migration: %s", j.why);
	assert_int_equal(j.ok.to, cl_node(2));
	assert_int_equal(j.ok.incarnation, 2); /* node 3, the first choice, died: the next */
	assert_int_equal(cl_wait_durable(&cl, "moving", 2, j.ok.sequence + 2, 20000), 0);
	cl_stop(&cl);
}

/* ---- a fake agent that misbehaves ------------------------------------ */

enum fake_mode { FAKE_BAD_HASH, FAKE_DIES };

struct fake_agent {
	struct cluster *cl;
	enum fake_mode mode;
	int lfd;
	char addr[64];
	uint8_t image[3 << 20];
	uint8_t hashes[3][PROTO_HASH_SIZE];
	uint8_t image_hash[PROTO_HASH_SIZE];
	int served;
};

static void *fake_serve(void *arg)
{
	struct fake_agent *fa = arg;
	struct net_client *c = NULL;
	struct proto_header h;
	union proto_msg m;
	int fd = accept(fa->lfd, NULL, NULL);
	if (fd < 0 || net_client_accept(fd, &fa->cl->key, PROTO_ROLE_AGENT, "fake",
					 5000, &c) != 0)
		return NULL;
	if (net_client_recv(c, &h, &m) == 0 && h.type == PROTO_PULL) {
		uint32_t req = h.request;
		memset(&m, 0, sizeof(m));
		strcpy(m.meta.process, "forged");
		m.meta.incarnation = 1;
		m.meta.sequence = 1;
		m.meta.node = 0x99;
		m.meta.size = sizeof(fa->image);
		m.meta.chunk_count = 3;
		memcpy(m.meta.hash, fa->image_hash, PROTO_HASH_SIZE);
		net_client_reply(c, PROTO_GET_META, PROTO_F_MORE, req, &m);
		for (int i = 0; i < 3; i++) {
			if (fa->mode == FAKE_DIES && i == 1)
				break; /* the agent dies mid-transfer */
			memset(&m, 0, sizeof(m));
			m.chunk.offset = (uint64_t)i << 20;
			m.chunk.len = 1 << 20;
			m.chunk.data = fa->image + ((size_t)i << 20);
			memcpy(m.chunk.hash, fa->hashes[i], PROTO_HASH_SIZE);
			if (fa->mode == FAKE_BAD_HASH && i == 2)
				m.chunk.hash[0] ^= 1; /* data that does not match */
			net_client_reply(c, PROTO_CHUNK, PROTO_F_MORE, req, &m);
		}
		if (fa->mode == FAKE_BAD_HASH) {
			memset(&m, 0, sizeof(m));
			m.get_end.chunk_count = 3;
			net_client_reply(c, PROTO_GET_END, 0, req, &m);
		}
		fa->served = 1;
	}
	net_client_free(c);
	return NULL;
}

static void fake_agent_run(struct cluster *cl, enum fake_mode mode)
{
	static struct fake_agent fa;
	struct sockaddr_in sa = { .sin_family = AF_INET };
	socklen_t sl = sizeof(sa);
	union proto_msg q, r;
	struct proto_header h;
	struct net_client *c = NULL;
	pthread_t t;

	memset(&fa, 0, sizeof(fa));
	fa.cl = cl;
	fa.mode = mode;
	tu_fill(fa.image, sizeof(fa.image), 7);
	struct proto_image_hash ih;
	proto_image_hash_init(&ih, sizeof(fa.image));
	for (int i = 0; i < 3; i++) {
		proto_chunk_hash(fa.image + ((size_t)i << 20), 1 << 20, fa.hashes[i]);
		proto_image_hash_update(&ih, (uint64_t)i << 20, 1 << 20, fa.hashes[i]);
	}
	proto_image_hash_final(&ih, fa.image_hash);
	fa.lfd = socket(AF_INET, SOCK_STREAM, 0);
	inet_pton(AF_INET, "127.0.0.9", &sa.sin_addr);
	assert_int_equal(bind(fa.lfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(listen(fa.lfd, 4), 0);
	getsockname(fa.lfd, (struct sockaddr *)&sa, &sl);
	snprintf(fa.addr, sizeof(fa.addr), "127.0.0.9:%u", ntohs(sa.sin_port));
	assert_int_equal(pthread_create(&t, NULL, fake_serve, &fa), 0);

	assert_int_equal(net_client_connect(cl->manager.addr, &cl->key, PROTO_ROLE_AGENT,
					    "fake", 5000, &c), 0);
	memset(&q, 0, sizeof(q));
	q.reg.node = 0x99;
	strcpy(q.reg.name, "fake");
	strcpy(q.reg.address, fa.addr);
	q.reg.quota_max = 1;
	assert_int_equal(net_client_call(c, PROTO_REGISTER, &q, PROTO_REGISTER_OK, &h, &r), 0);
	memset(&q, 0, sizeof(q));
	strcpy(q.meta.process, "forged");
	q.meta.incarnation = 1;
	q.meta.sequence = 1;
	q.meta.node = 0x99;
	q.meta.size = sizeof(fa.image);
	q.meta.chunk_count = 3;
	memcpy(q.meta.hash, fa.image_hash, PROTO_HASH_SIZE);
	assert_int_equal(net_client_call(c, PROTO_CKPT_NOTIFY, &q, PROTO_OK, &h, &r), 0);
	net_client_free(c);
	pthread_join(t, NULL);
	close(fa.lfd);
	assert_int_equal(fa.served, 1);
}

static void check_not_stored(struct cluster *cl, const char *needle)
{
	static struct proto_list_entry entries[PROTO_LIST_MAX];
	union proto_msg q, r;
	struct proto_proc_entry e;

	assert_int_equal(cl_wait_log(&cl->manager, needle, 1, 10000), 0);
	memset(&q, 0, sizeof(q));
	strcpy(q.list.process, "forged");
	q.list.limit = 10;
	r.list_reply.entries = entries;
	assert_int_equal(cl_call(cl, PROTO_LIST, &q, PROTO_LIST_REPLY, &r, 5000, NULL, 0), 0);
	assert_int_equal(r.list_reply.count, 0);
	/* the manager keeps serving */
	assert_int_equal(cl_proc(cl, "forged", &e), 0);
	assert_int_equal(e.durable, 0);
}

static void test_bad_hash_refused(void **state)
{
	static struct cluster cl; /* static: cl_teardown may stop it after a failed assertion */
	(void)state;
	assert_int_equal(cl_start(&cl, "f-hash", NULL), 0);
	fake_agent_run(&cl, FAKE_BAD_HASH);
	check_not_stored(&cl, "forged 1/1 not stored: refused, the data from");
	cl_stop(&cl);
}

static void test_agent_dies_mid_transfer(void **state)
{
	static struct cluster cl; /* static: cl_teardown may stop it after a failed assertion */
	(void)state;
	assert_int_equal(cl_start(&cl, "f-dies", NULL), 0);
	fake_agent_run(&cl, FAKE_DIES);
	check_not_stored(&cl, "forged 1/1 not stored");
	cl_stop(&cl);
}

/* Peers without the key, and garbage, are refused; both daemons go on. */
static void test_unauthenticated_peers(void **state)
{
	static struct cluster cl; /* static: cl_teardown may stop it after a failed assertion */
	struct proto_key wrong;
	struct net_client *c = NULL;
	struct proto_proc_entry e;
	(void)state;

	assert_int_equal(cl_start(&cl, "f-auth", NULL), 0);
	assert_int_equal(cl_agent_start(&cl, 0, NULL), 0);
	randombytes_buf(wrong.bytes, sizeof(wrong.bytes));
	const char *targets[] = { cl.manager.addr, cl.agents[0].addr };
	for (int i = 0; i < 2; i++) {
		assert_int_equal(net_client_connect(targets[i], &wrong, PROTO_ROLE_CLI, "intruder",
						    5000, &c), RTCMS_EAUTH);
		/* garbage instead of a HELLO */
		assert_int_equal(net_client_connect(targets[i], &cl.key, PROTO_ROLE_CLI, "x",
						    5000, &c), 0);
		uint8_t junk[4096];
		tu_fill(junk, sizeof(junk), (uint64_t)i);
		net_client_send_raw(c, junk, sizeof(junk));
		net_client_free(c);
		c = NULL;
	}
	/* named by the name its HELLO claims, rate-limited per peer */
	const char *line = "\"intruder\"] handshake refused: wrong cluster key";
	assert_true(cl_wait_log(&cl.manager, line, 1, 5000) == 0);
	assert_true(cl_wait_log(&cl.agents[0], line, 1, 5000) == 0);
	const char *counter[] = { COUNTER, "--iterations", "0", "--interval-ms", "50", NULL };
	assert_int_equal(cl_run(&cl, "still-works", 0, counter, NULL), 0);
	assert_int_equal(cl_wait_durable(&cl, "still-works", 1, 2, 20000), 0);
	assert_int_equal(cl_proc(&cl, "still-works", &e), 0);
	cl_stop(&cl);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_store_down_and_back, cl_teardown),
		cmocka_unit_test_teardown(test_restore_crash_everywhere, cl_teardown),
		cmocka_unit_test_teardown(test_target_dies_during_restore, cl_teardown),
		cmocka_unit_test_teardown(test_bad_hash_refused, cl_teardown),
		cmocka_unit_test_teardown(test_agent_dies_mid_transfer, cl_teardown),
		cmocka_unit_test_teardown(test_unauthenticated_peers, cl_teardown),
	};
	signal(SIGPIPE, SIG_IGN);
	proto_init();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
