/*
 * test_delta_transfer.c - incremental checkpoints through the whole
 * system: a program with 16 MiB of state that changes about 1% of it
 * between checkpoints is pulled as deltas (chains of at most chain_max,
 * then a full image), the store assembles full images from the chains
 * (state hash checked), a killed node's program is restored from a delta
 * chain with every byte verified, and a manager whose delta base vanished
 * from the store pulls the full image instead; the agent serves pulls
 * from the area, and a program that overtakes its pulls never gets a
 * wrong checkpoint stored (the restore checks it); the agent's memory is
 * bounded by its areas.
 */
#include <inttypes.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>
#include <sodium.h>

#include "area/delta.h"
#include "rtcms_error.h"
#include "client/store_client.h"
#include "cluster.h"
#include "util/datakey.h"
#include "util/tsan.h"

#define LEDGER RTCMS_BIN_DIR "/rtcms-ledger"

struct seen {
	int full, delta;
	uint64_t max_delta_size, full_size;
};

/* Record how the store holds sequence seq of id (if it still does). */
static void look(struct cluster *cl, struct net_client *st, const char *id, uint64_t inc,
		 uint64_t seq, struct seen *s)
{
	struct proto_ckpt_meta meta;
	(void)cl;
	if (store_client_get(st, id, inc, seq, 1, &meta, NULL, NULL, NULL) != 0)
		return;
	if (meta.base) {
		s->delta++;
		if (meta.size > s->max_delta_size)
			s->max_delta_size = meta.size;
		assert_true(meta.base < meta.sequence);
		assert_true(meta.full_size > meta.size);
	} else {
		s->full++;
	}
	s->full_size = meta.base ? meta.full_size : meta.size;
}

/* Follow the durable sequences of id (incarnation inc) up to seq, and
 * until at least deltas of them were deltas (on a loaded machine the
 * manager skips sequences: fewer are stored). */
static void watch(struct cluster *cl, const char *id, uint64_t inc, uint64_t until,
		  int deltas, struct seen *s)
{
	struct net_client *st = NULL;
	uint64_t last = 0, deadline = tu_now_ms() + 120000;
	assert_int_equal(net_client_connect(cl->store.addr, &cl->key, PROTO_ROLE_MANAGER, "t",
					    5000, &st), 0);
	while ((last < until || s->delta < deltas) && tu_now_ms() < deadline) {
		struct proto_proc_entry e;
		if (cl_proc(cl, id, &e) == 0 && e.incarnation == inc && e.durable > last) {
			for (uint64_t q = last + 1; q <= e.durable; q++)
				look(cl, st, id, inc, q, s);
			last = e.durable;
		}
		usleep(5000);
	}
	net_client_free(st);
	assert_true(last >= until);
	assert_true(s->delta >= deltas);
}

/* GET the latest checkpoint of id from the store as a restore target
 * reads it (a delta as its chain, assembled by the stream module): the
 * full image whose state hash is the one the agent computed. */
static void check_assembled(struct cluster *cl, const char *id)
{
	struct net_client *st = NULL;
	struct proto_ckpt_meta meta;
	struct stream_area_sink img;
	struct stream_result res;
	struct datakey_ring ring;
	char path[4200], err[1024];
	uint8_t h[STATE_HASH_SIZE];

	/* the agents' data keyring (tu_agent_start): the chunks are sealed */
	snprintf(path, sizeof(path), "%s.data", cl->key_file);
	assert_int_equal(datakey_load(path, &ring, err, sizeof(err)), 0);
	const struct store_client_query q = { .type = PROTO_GET, .process = id, .keys = &ring };
	assert_int_equal(net_client_connect(cl->store.addr, &cl->key, PROTO_ROLE_MANAGER, "t",
					    5000, &st), 0);
	stream_area_sink_init(&img, 32u << 20, NULL, NULL);
	assert_int_equal(store_client_fetch_to(st, &q, &meta, NULL, &img.sink, &res), 0);
	assert_int_equal(res.outcome, STREAM_ENDED);
	assert_int_equal(img.len, meta.full_size);
	assert_int_equal(image_version(img.image, img.len), 1);
	assert_int_equal(state_hash(img.image, img.len, h), 0);
	assert_false(sodium_is_zero(meta.state_hash, sizeof(meta.state_hash)));
	assert_memory_equal(h, meta.state_hash, sizeof(h));
	net_client_free(st);
	stream_area_sink_clear(&img);
	datakey_ring_wipe(&ring);
}

/* The restored instance of id on agent 1 continues exactly the state its
 * node-0 instance had at the checkpoint it was restored from (the
 * program's own hash of its whole state, logged at every checkpoint). */
static void check_restored_state(struct cluster *cl, const char *id)
{
	char needle[96], before[4096], after[4096];
	assert_int_equal(cl_wait_log(&cl->agents[1], "ledger: restored checkpoint", 1, 30000), 0);
	assert_int_equal(cl_log_line(&cl->agents[1], "ledger: restored checkpoint", after,
				     sizeof(after)), 0);
	assert_non_null(strstr(after, "total intact"));
	uint64_t seq = strtoull(strstr(after, "restored checkpoint ") + 20, NULL, 10);
	snprintf(needle, sizeof(needle), ", checkpoint %" PRIu64 " hash", seq);
	assert_int_equal(cl_log_line(&cl->agents[0], needle, before, sizeof(before)), 0);
	if (strncmp(strstr(before, " hash ") + 6, strstr(after, " hash ") + 6, 16) != 0)
		fail_msg("%s: state differs after the restore: %s / %s", id, before, after);
	printf("%s restored from checkpoint %" PRIu64 ": its state as it was\n", id, seq);
}

/* Node 0 dies (its agent and id's instance killed): id comes back on
 * node 1 as incarnation 2 with its state as it was (check_restored_state).
 * Returns the sequence it was restored from. */
static uint64_t restore_after_node_death(struct cluster *cl, const char *id)
{
	struct proto_proc_entry e;
	char after[4096];
	int pid = cl_program_pid(cl, 0, id);
	kill(cl->agents[0].pid, SIGKILL);
	kill(pid, SIGKILL);
	tu_daemon_stop(&cl->agents[0], SIGKILL);
	uint64_t deadline = tu_now_ms() + 30000;
	while (tu_now_ms() < deadline &&
	       !(cl_proc(cl, id, &e) == 0 && e.incarnation == 2 && e.node == cl_node(1)))
		usleep(20000);
	assert_int_equal(e.incarnation, 2);
	check_restored_state(cl, id);
	assert_int_equal(cl_log_line(&cl->agents[1], "ledger: restored checkpoint", after,
				     sizeof(after)), 0);
	return strtoull(strstr(after, "restored checkpoint ") + 20, NULL, 10);
}

static void test_deltas_then_restore(void **state)
{
	static struct cluster cl; /* static: cl_teardown may stop it after a failed assertion */
	(void)state;
	const char *extra[] = { "--chain-max", "4", NULL };
	assert_int_equal(cl_start(&cl, "delta", extra), 0);
	assert_int_equal(cl_agent_start(&cl, 0, NULL), 0);
	assert_int_equal(cl_agent_start(&cl, 1, NULL), 0);
	/* 16 MiB of balances; 20 transfers touch at most 40 of its 4096 pages */
	const char *ledger[] = { LEDGER, "--iterations", "0", "--interval-ms", "30",
				 "--mib", "16", "--transfers", "20", NULL };
	assert_int_equal(cl_run(&cl, "led", cl_node(0), ledger, NULL), 0);

	struct seen s = { 0 };
	watch(&cl, "led", 1, 16, 4, &s);
	/* chains of at most 4 deltas, each a small part of the state */
	assert_true(s.delta >= 4);
	assert_true(s.full >= 1);
	assert_true(s.delta <= 4 * (s.full + 1));
	assert_true(s.max_delta_size < s.full_size / 8);
	check_assembled(&cl, "led");

	/* the node dies: its program comes back on the other node from the
	 * newest durable checkpoint - most likely the end of a delta chain */
	struct proto_proc_entry e;
	uint64_t seq = restore_after_node_death(&cl, "led");

	/* the new incarnation starts with a full image, then deltas again */
	struct seen s2 = { 0 };
	assert_int_equal(cl_wait_durable(&cl, "led", 2, seq + 1, 30000), 0);
	assert_int_equal(cl_proc(&cl, "led", &e), 0);
	watch(&cl, "led", 2, e.durable + 8, 3, &s2);
	assert_true(s2.full >= 1);
	assert_true(s2.delta >= 3);
	assert_int_equal(cl_instances("led", NULL, 0), 1);
	cl_stop(&cl);
}

/* The store loses the base of the next delta (the checkpoints are
 * deleted under the running program): the manager pulls the full image
 * and goes on. */
static void test_base_gone(void **state)
{
	static struct cluster cl;
	(void)state;
	assert_int_equal(cl_start(&cl, "delta-gone", NULL), 0);
	assert_int_equal(cl_agent_start(&cl, 0, NULL), 0);
	const char *ledger[] = { LEDGER, "--iterations", "0", "--interval-ms", "30",
				 "--mib", "8", "--transfers", "10", NULL };
	assert_int_equal(cl_run(&cl, "gone", cl_node(0), ledger, NULL), 0);
	struct seen s = { 0 };
	watch(&cl, "gone", 1, 4, 1, &s);
	assert_true(s.delta >= 1);

	struct net_client *st = NULL;
	union proto_msg q, r;
	struct proto_header h;
	assert_int_equal(net_client_connect(cl.store.addr, &cl.key, PROTO_ROLE_MANAGER, "t",
					    5000, &st), 0);
	memset(&q, 0, sizeof(q));
	snprintf(q.del.process, sizeof(q.del.process), "gone");
	assert_int_equal(net_client_call(st, PROTO_DELETE, &q, PROTO_OK, &h, &r), 0);
	net_client_free(st);
	assert_int_equal(cl_wait_log(&cl.manager, "the delta's base: pulling the full image", 1,
				     20000), 0);
	struct proto_proc_entry e;
	assert_int_equal(cl_proc(&cl, "gone", &e), 0);
	assert_int_equal(cl_wait_durable(&cl, "gone", 1, e.durable + 3, 20000), 0);
	check_assembled(&cl, "gone");
	cl_stop(&cl);
}

/* A program that checkpoints far faster than its full image travels:
 * the agent reads every pull from the area, and a pull the program
 * overtakes (its slot rewritten two commits later) ends with an error
 * and the manager pulls a newer one; the agent then keeps a private copy
 * for that program's captures. Nothing wrong becomes durable: the
 * latest checkpoint assembles with its state hash, and the program
 * restored from the store after its node died has exactly the state of
 * the checkpoint it was restored from. */
static void test_pulls_overtaken(void **state)
{
	static struct cluster cl;
	(void)state;
	const char *extra[] = { "--chain-max", "3", NULL };
	assert_int_equal(cl_start(&cl, "overtaken", extra), 0);
	assert_int_equal(cl_agent_start(&cl, 0, NULL), 0);
	assert_int_equal(cl_agent_start(&cl, 1, NULL), 0);
	const char *ledger[] = { LEDGER, "--iterations", "0", "--interval-ms", "2",
				 "--mib", "24", "--transfers", "40", NULL };
	assert_int_equal(cl_run(&cl, "fast", cl_node(0), ledger, NULL), 0);
	/* durable, and then on (thousands of sequences a minute: the
	 * manager skips most) */
	struct proto_proc_entry e;
	assert_int_equal(cl_wait_durable(&cl, "fast", 1, 1, 60000), 0);
	assert_int_equal(cl_proc(&cl, "fast", &e), 0);
	assert_int_equal(cl_wait_durable(&cl, "fast", 1, e.durable + 200, 60000), 0);
	printf("overtaken pulls: %d; the agent went to a private copy: %s; %d deltas stored\n",
	       tu_log_count(&cl.manager, "was superseded while it was pulled"),
	       tu_log_count(&cl.agents[0], "captures keep a private copy") ? "yes" : "no",
	       tu_log_count(&cl.store, "(delta against"));
	assert_int_equal(tu_log_count(&cl.manager, "does not match its hash"), 0);
	check_assembled(&cl, "fast");

	restore_after_node_death(&cl, "fast");
	cl_stop(&cl);
}

/* The agent's memory is the program's area and a bounded rest: its peak
 * resident set (VmHWM, the area pages it read included) stays below the
 * two slots of the state plus a constant, with full images and deltas
 * pulled (no private copy of the image); one more state's size if the
 * program outran a full pull and the agent went to its private copy. */
static void test_agent_memory(void **state)
{
	static struct cluster cl;
	(void)state;
	const long mib = 32;
	const char *extra[] = { "--chain-max", "2", NULL };
	assert_int_equal(cl_start(&cl, "agentmem", extra), 0);
	assert_int_equal(cl_agent_start(&cl, 0, NULL), 0);
	long idle = tu_peak_rss_kib(cl.agents[0].pid);
	const char *ledger[] = { LEDGER, "--iterations", "0", "--interval-ms", "500",
				 "--mib", "32", "--transfers", "200", NULL };
	assert_int_equal(cl_run(&cl, "mem", cl_node(0), ledger, NULL), 0);
	struct seen s = { 0 };
	watch(&cl, "mem", 1, 8, 2, &s);
	assert_true(s.full >= 2); /* chains of 2: full images again and again */
	long hwm = tu_peak_rss_kib(cl.agents[0].pid);
	int copies = tu_log_count(&cl.agents[0], "captures keep a private copy");
	long bound = (2 + (copies ? 1 : 0)) * mib * 1024 + idle + 24 * 1024;
	printf("agent VmHWM %ld KiB for %ld MiB of state (%.2fx; %ld KiB before the "
	       "program; bound %ld KiB%s)\n", hwm, mib, (double)hwm / 1024 / (double)mib, idle,
	       bound, copies ? ", with its private copy" : "");
	assert_true(idle > 0);
#if defined(RTCMS_THREAD_SANITIZER) || defined(__SANITIZE_ADDRESS__)
	/* a sanitizer's shadow memory (and ASan's quarantine of freed
	 * buffers) grows with what the agent touches: no bound to check */
	printf("sanitizer build: the bound is not checked\n");
#else
	assert_true(hwm <= bound);
#endif
	cl_stop(&cl);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_deltas_then_restore, cl_teardown),
		cmocka_unit_test_teardown(test_base_gone, cl_teardown),
		cmocka_unit_test_teardown(test_pulls_overtaken, cl_teardown),
		cmocka_unit_test_teardown(test_agent_memory, cl_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
