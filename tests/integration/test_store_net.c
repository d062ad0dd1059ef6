/*
 * test_store_net.c - rtcms-store as a real daemon on an ephemeral loopback
 * port: PUT/GET round trips, LIST paging and filters, idempotent PUT,
 * retention, DELETE, the claim race between two connections (100 rounds),
 * lease expiry, COMMIT and fencing, and read repair through the network.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "client/store_client.h"
#include "rtcms_error.h"
#include "testutil.h"

struct env {
	char *dir;
	char *keyfile;
	struct proto_key key;
	struct tu_daemon d;
};

static int start(void **state, const char *retain)
{
	struct env *e = calloc(1, sizeof(*e));
	e->dir = tu_tmpdir("net");
	e->keyfile = tu_keyfile(e->dir, &e->key);
	const char *extra[] = { "--retain", retain, "--log-level", "debug", NULL };
	if (tu_store_start(&e->d, e->dir, e->keyfile, 2, "127.0.0.1", extra) != 0)
		return -1;
	*state = e;
	return 0;
}

static int setup(void **state)
{
	return start(state, "1000");
}

static int setup_retain2(void **state)
{
	return start(state, "2");
}

static int teardown(void **state)
{
	struct env *e = *state;
	int alive = tu_daemon_alive(&e->d);
	tu_daemon_stop(&e->d, SIGTERM);
	if (!getenv("RTCMS_KEEP"))
		tu_rmrf(e->dir);
	free(e->dir);
	free(e->keyfile);
	free(e);
	return alive ? 0 : -1; /* the daemon must have survived the test */
}

static struct net_client *conn(struct env *e, const char *name)
{
	struct net_client *c = NULL;
	int rc = net_client_connect(e->d.addr, &e->key, PROTO_ROLE_CLI, name,
				    10000, &c);
	if (rc)
		fail_msg("connect %s: %s", e->d.addr, rtcms_strerror(rc));
	return c;
}

/* PUT size bytes of content seed. */
static int put(struct net_client *c, const char *proc, uint64_t inc,
	       uint64_t seq, size_t size, uint64_t seed, uint32_t chunk,
	       struct proto_put_ack *ack)
{
	uint8_t *data = malloc(size ? size : 1);
	struct store_client_buf b = { data, size };
	struct proto_ckpt_meta m;
	struct proto_put_ack a;
	tu_fill(data, size, seed);
	memset(&m, 0, sizeof(m));
	snprintf(m.process, sizeof(m.process), "%s", proc);
	m.incarnation = inc;
	m.sequence = seq;
	m.node = 0x42;
	m.size = size;
	m.created_ms = 1;
	m.spec = (const uint8_t *)"/bin/prog --restore";
	m.spec_len = 19;
	int rc = store_client_put(c, &m, chunk, store_client_read_buf, &b,
				  ack ? ack : &a);
	free(data);
	return rc;
}

struct sink {
	uint8_t *buf;
	size_t len;
};

static int to_sink(void *ctx, const struct proto_chunk *ch)
{
	struct sink *s = ctx;
	if (ch->offset + ch->len > s->len)
		return RTCMS_EPROTO;
	memcpy(s->buf + ch->offset, ch->data, ch->len);
	return 0;
}

static int get_check(struct net_client *c, const char *proc, uint64_t seq,
		     size_t size, uint64_t seed, uint32_t *repaired)
{
	struct sink s = { malloc(size ? size : 1), size };
	uint8_t *want = malloc(size ? size : 1);
	struct proto_ckpt_meta m;
	struct proto_get_end end;
	tu_fill(want, size, seed);
	int rc = store_client_get(c, proc, 0, seq, 0, &m, to_sink, &s, &end);
	if (rc == 0) {
		assert_int_equal(m.size, size);
		assert_memory_equal(s.buf, want, size);
		if (repaired)
			*repaired = end.repaired;
	}
	free(s.buf);
	free(want);
	return rc;
}

static void test_roundtrip(void **state)
{
	struct env *e = *state;
	struct net_client *c = conn(e, "t");
	struct proto_put_ack ack;
	size_t sizes[] = { 0, 1, 4096, 3 * 1048576 + 17 };

	for (size_t i = 0; i < 4; i++) {
		assert_int_equal(put(c, "p", 1, i + 1, sizes[i], i, 1048576, &ack), 0);
		assert_int_equal(ack.copies, 2);
		assert_int_equal(ack.existed, 0);
		assert_int_equal(get_check(c, "p", i + 1, sizes[i], i, NULL), 0);
	}
	/* odd chunk size */
	assert_int_equal(put(c, "odd", 1, 1, 1000000, 77, 100000, NULL), 0);
	assert_int_equal(get_check(c, "odd", 0, 1000000, 77, NULL), 0);
	/* idempotent PUT, conflicting PUT */
	assert_int_equal(put(c, "odd", 1, 1, 1000000, 77, 100000, &ack), 0);
	assert_int_equal(ack.existed, 1);
	assert_int_equal(put(c, "odd", 1, 1, 1000000, 78, 100000, &ack), RTCMS_EEXIST);
	/* the connection stays usable after a refusal */
	assert_int_equal(get_check(c, "odd", 1, 1000000, 77, NULL), 0);
	assert_int_equal(get_check(c, "none", 0, 0, 0, NULL), RTCMS_ENOENT);
	/* meta-only GET carries the program spec */
	struct proto_ckpt_meta m;
	assert_int_equal(store_client_get(c, "p", 0, 0, 1, &m, NULL, NULL, NULL), 0);
	assert_int_equal(m.sequence, 4);
	assert_int_equal(m.spec_len, 19);
	net_client_free(c);
}

static void test_list_pages_and_delete(void **state)
{
	struct env *e = *state;
	struct net_client *c = conn(e, "t");
	struct proto_list_entry entries[PROTO_LIST_MAX];
	struct proto_header h;
	union proto_msg q, r;
	char name[32];

	for (int i = 0; i < 300; i++) {
		snprintf(name, sizeof(name), "proc-%03d", i);
		assert_int_equal(put(c, name, 1, 1, 64, (uint64_t)i, 64, NULL), 0);
	}
	uint32_t total = 0;
	int pages = 0;
	for (;;) {
		memset(&q, 0, sizeof(q));
		q.list.offset = total;
		q.list.limit = PROTO_LIST_MAX;
		r.list_reply.entries = entries;
		assert_int_equal(net_client_call(c, PROTO_LIST, &q, PROTO_LIST_REPLY, &h, &r), 0);
		if (total == 0)
			assert_string_equal(entries[0].process, "proc-000");
		total += r.list_reply.count;
		pages++;
		if (!(h.flags & PROTO_F_MORE))
			break;
	}
	assert_int_equal(total, 300);
	assert_int_equal(pages, 2);
	/* filter by process */
	memset(&q, 0, sizeof(q));
	strcpy(q.list.process, "proc-123");
	q.list.limit = 10;
	r.list_reply.entries = entries;
	assert_int_equal(net_client_call(c, PROTO_LIST, &q, PROTO_LIST_REPLY, &h, &r), 0);
	assert_int_equal(r.list_reply.count, 1);
	/* DELETE */
	memset(&q, 0, sizeof(q));
	strcpy(q.del.process, "proc-123");
	assert_int_equal(net_client_call(c, PROTO_DELETE, &q, PROTO_OK, &h, &r), 0);
	assert_int_equal(net_client_call(c, PROTO_DELETE, &q, PROTO_OK, &h, &r), RTCMS_ENOENT);
	net_client_free(c);
}

static void test_retention(void **state)
{
	struct env *e = *state;
	struct net_client *c = conn(e, "t");
	for (uint64_t s = 1; s <= 5; s++)
		assert_int_equal(put(c, "p", 1, s, 5000, s, 4096, NULL), 0);
	assert_int_equal(get_check(c, "p", 3, 5000, 3, NULL), RTCMS_ENOENT);
	assert_int_equal(get_check(c, "p", 4, 5000, 4, NULL), 0);
	assert_int_equal(get_check(c, "p", 5, 5000, 5, NULL), 0);
	net_client_free(c);
}

static int claim(struct net_client *c, const char *proc, const char *who,
		 uint32_t lease, struct proto_claim_ok *ok)
{
	struct proto_header h;
	union proto_msg q, r;
	memset(&q, 0, sizeof(q));
	strcpy(q.claim.process, proc);
	strcpy(q.claim.claimant, who);
	q.claim.lease_ms = lease;
	int rc = net_client_call(c, PROTO_CLAIM, &q, PROTO_CLAIM_OK, &h, &r);
	if (rc == 0)
		*ok = r.claim_ok;
	return rc;
}

static int release(struct net_client *c, const char *proc, uint64_t id)
{
	struct proto_header h;
	union proto_msg q, r;
	memset(&q, 0, sizeof(q));
	strcpy(q.release.process, proc);
	q.release.claim_id = id;
	return net_client_call(c, PROTO_RELEASE, &q, PROTO_OK, &h, &r);
}

static int commit(struct net_client *c, const char *proc, uint64_t id,
		  uint64_t node, struct proto_commit_ok *ok)
{
	struct proto_header h;
	union proto_msg q, r;
	memset(&q, 0, sizeof(q));
	strcpy(q.commit.process, proc);
	q.commit.claim_id = id;
	q.commit.new_node = node;
	int rc = net_client_call(c, PROTO_COMMIT, &q, PROTO_COMMIT_OK, &h, &r);
	if (rc == 0)
		*ok = r.commit_ok;
	return rc;
}

struct racer {
	struct env *e;
	pthread_barrier_t *bar;
	const char *name;
	int won[100];
	char loser_saw[100][PROTO_ID_MAX + 1];
};

static void *race(void *arg)
{
	struct racer *r = arg;
	struct net_client *c = conn(r->e, r->name);
	for (int i = 0; i < 100; i++) {
		struct proto_claim_ok ok;
		pthread_barrier_wait(r->bar);
		int rc = claim(c, "p", r->name, 60000, &ok);
		r->won[i] = rc == 0;
		if (rc == RTCMS_ECLAIMED)
			snprintf(r->loser_saw[i], sizeof(r->loser_saw[i]), "%s",
				 net_client_last_error(c)->who);
		else if (rc != 0)
			fail_msg("claim: %s", rtcms_strerror(rc));
		pthread_barrier_wait(r->bar);
		if (rc == 0 && release(c, "p", ok.claim_id) != 0)
			fail_msg("release failed");
		pthread_barrier_wait(r->bar);
	}
	net_client_free(c);
	return NULL;
}

static void test_claim_race(void **state)
{
	struct env *e = *state;
	struct net_client *c = conn(e, "t");
	pthread_barrier_t bar;
	struct racer a = { e, &bar, "manager-a", { 0 }, { { 0 } } };
	struct racer b = { e, &bar, "manager-b", { 0 }, { { 0 } } };
	pthread_t ta, tb;

	assert_int_equal(put(c, "p", 1, 1, 100, 1, 100, NULL), 0);
	pthread_barrier_init(&bar, NULL, 2);
	pthread_create(&ta, NULL, race, &a);
	pthread_create(&tb, NULL, race, &b);
	pthread_join(ta, NULL);
	pthread_join(tb, NULL);
	pthread_barrier_destroy(&bar);
	int wa = 0, wb = 0;
	for (int i = 0; i < 100; i++) {
		if (a.won[i] == b.won[i])
			fail_msg("round %d: %d winners", i, a.won[i] + b.won[i]);
		/* the loser is told who holds the claim */
		assert_string_equal(a.won[i] ? b.loser_saw[i] : a.loser_saw[i],
				    a.won[i] ? "manager-a" : "manager-b");
		wa += a.won[i];
		wb += b.won[i];
	}
	assert_int_equal(wa + wb, 100);
	net_client_free(c);
}

static void test_lease_commit_fence(void **state)
{
	struct env *e = *state;
	struct net_client *a = conn(e, "a"), *b = conn(e, "b");
	struct proto_claim_ok ok, ok2;
	struct proto_commit_ok cok;

	assert_int_equal(put(a, "p", 1, 1, 5000, 1, 4096, NULL), 0);
	assert_int_equal(claim(a, "p", "manager-a", 300, &ok), 0);
	assert_int_equal(claim(b, "p", "manager-b", 300, &ok2), RTCMS_ECLAIMED);
	assert_int_equal(net_client_last_error(b)->detail, ok.expires_ms);
	usleep(500 * 1000);
	assert_int_equal(claim(b, "p", "manager-b", 5000, &ok2), 0);
	/* the claimed sequence survives DELETE until the commit */
	struct proto_header h;
	union proto_msg q, r;
	memset(&q, 0, sizeof(q));
	strcpy(q.del.process, "p");
	assert_int_equal(net_client_call(a, PROTO_DELETE, &q, PROTO_OK, &h, &r), RTCMS_ECLAIMED);
	assert_int_equal(commit(a, "p", ok.claim_id, 5, &cok), RTCMS_ECLAIMED);
	assert_int_equal(commit(b, "p", ok2.claim_id, 5, &cok), 0);
	assert_int_equal(cok.incarnation, 2);
	assert_int_equal(commit(b, "p", ok2.claim_id, 5, &cok), 0); /* retry */
	assert_int_equal(cok.incarnation, 2);
	assert_int_equal(put(a, "p", 1, 2, 5000, 2, 4096, NULL), RTCMS_EFENCED);
	assert_int_equal(net_client_last_error(a)->detail, 2);
	assert_int_equal(put(b, "p", 2, 2, 5000, 2, 4096, NULL), 0);
	net_client_free(a);
	net_client_free(b);
}

static void test_read_repair_over_network(void **state)
{
	struct env *e = *state;
	struct net_client *c = conn(e, "t");
	char m0[600], path[4200];
	uint8_t data[4096], h[PROTO_HASH_SIZE];
	uint32_t repaired = 0;

	/* over 64 KiB: records in packs (smaller PUTs go inline) */
	assert_int_equal(put(c, "p", 1, 1, 20 * 4096, 9, 4096, NULL), 0);
	/* damage the first chunk's record on mirror 0 */
	uint8_t *all = malloc(20 * 4096);
	tu_fill(all, 20 * 4096, 9);
	memcpy(data, all, 4096);
	free(all);
	proto_chunk_hash(data, 4096, h);
	snprintf(m0, sizeof(m0), "%s/m0", e->dir);
	uint64_t off, len, off2;
	assert_int_equal(tu_chunk_where(m0, h, path, sizeof(path), &off, &len), 0);
	assert_int_equal(len, 4096);
	int fd = open(path, O_RDWR);
	assert_true(fd >= 0);
	assert_int_equal(pwrite(fd, "\0\0\0\0", 4, (off_t)off + 100), 4);
	close(fd);
	assert_int_equal(get_check(c, "p", 1, 20 * 4096, 9, &repaired), 0);
	assert_int_equal(repaired, 1);
	/* a fresh record, placed after the damaged one */
	assert_int_equal(tu_chunk_where(m0, h, path, sizeof(path), &off2, &len), 0);
	assert_true(off2 > off);
	net_client_free(c);
}

static int scrub(struct net_client *c, bool repair, struct proto_scrub_reply *out)
{
	union proto_msg q, r;
	struct proto_header h;
	memset(&q, 0, sizeof(q));
	q.scrub.repair = repair;
	int rc = net_client_call(c, PROTO_SCRUB, &q, PROTO_SCRUB_REPLY, &h, &r);
	if (rc == 0)
		*out = r.scrub_reply;
	return rc;
}

/* A small PUT over the network: one chunk inline in each mirror's meta.db
 * and no chunk file; damaged on mirror 0, a GET repairs it; missing on
 * mirror 1, a scrub reports it and a repairing scrub restores it; a
 * mirror wiped while the store was down gets it back at the start and
 * alone serves it; DELETE removes it everywhere. */
static void test_small_put_inline(void **state)
{
	struct env *e = *state;
	struct net_client *c = conn(e, "t");
	struct proto_scrub_reply r;
	char m0[600], m1[600];
	uint32_t repaired = 9;
	const char *extra[] = { "--retain", "1000", NULL };

	snprintf(m0, sizeof(m0), "%s/m0", e->dir);
	snprintf(m1, sizeof(m1), "%s/m1", e->dir);
	assert_int_equal(put(c, "small", 1, 1, 4096, 21, 4096, NULL), 0);
	assert_int_equal(get_check(c, "small", 1, 4096, 21, &repaired), 0);
	assert_int_equal(repaired, 0);
	assert_int_equal(tu_count_chunk_copies(m0) + tu_count_chunk_copies(m1), 0);
	assert_int_equal(tu_count_inline(m0), 1);
	assert_int_equal(tu_count_inline(m1), 1);

	assert_int_equal(tu_meta_exec(m0, "UPDATE inline_chunks SET form ="
				      " zeroblob(length(form))"), 0);
	assert_int_equal(get_check(c, "small", 1, 4096, 21, &repaired), 0);
	assert_int_equal(repaired, 1);
	assert_int_equal(tu_meta_exec(m1, "DELETE FROM inline_chunks"), 0);
	assert_int_equal(scrub(c, false, &r), 0);
	assert_int_equal(r.chunks, 1);
	assert_int_equal(r.mirrors[0].chunks, 1); /* the read repaired it */
	assert_int_equal(r.mirrors[1].missing, 1);
	assert_int_equal(scrub(c, true, &r), 0);
	assert_int_equal(r.mirrors[1].repaired, 1);
	assert_int_equal(scrub(c, false, &r), 0);
	assert_int_equal(r.unrepairable, 0);
	assert_int_equal(r.mirrors[1].chunks, 1);
	assert_int_equal(r.mirrors[1].missing + r.mirrors[1].corrupt, 0);
	net_client_free(c);

	/* mirror 1 replaced by an empty disk while the store is down */
	tu_daemon_stop(&e->d, SIGTERM);
	tu_rmrf(m1);
	assert_int_equal(tu_store_start(&e->d, e->dir, e->keyfile, 2, "127.0.0.1", extra), 0);
	assert_int_equal(tu_count_inline(m1), 1);
	tu_daemon_stop(&e->d, SIGTERM);
	tu_rmrf(m0);
	assert_int_equal(tu_store_start(&e->d, e->dir, e->keyfile, 2, "127.0.0.1", extra), 0);
	c = conn(e, "t");
	assert_int_equal(get_check(c, "small", 1, 4096, 21, NULL), 0);

	union proto_msg q, rr;
	struct proto_header h;
	memset(&q, 0, sizeof(q));
	strcpy(q.del.process, "small");
	assert_int_equal(net_client_call(c, PROTO_DELETE, &q, PROTO_OK, &h, &rr), 0);
	assert_int_equal(tu_count_inline(m0), 0);
	assert_int_equal(tu_count_inline(m1), 0);
	assert_int_equal(scrub(c, false, &r), 0);
	assert_int_equal(r.chunks, 0);
	net_client_free(c);
}

static void test_wiped_mirror_resynced_at_start(void **state)
{
	struct env *e = *state;
	struct net_client *c = conn(e, "t");
	char path[600];
	const char *extra[] = { "--retain", "1000", NULL };

	assert_int_equal(put(c, "p", 1, 1, 2500000, 11, 1048576, NULL), 0);
	assert_int_equal(put(c, "q", 1, 1, 70000, 12, 4096, NULL), 0);
	net_client_free(c);
	/* the store stops; mirror 1 is lost and replaced by an empty disk */
	tu_daemon_stop(&e->d, SIGTERM);
	snprintf(path, sizeof(path), "%s/m1", e->dir);
	tu_rmrf(path);
	assert_int_equal(tu_store_start(&e->d, e->dir, e->keyfile, 2, "127.0.0.1", extra), 0);
	/* resynced at the start: mirror 1 holds every chunk mirror 0 holds */
	char m0[600];
	snprintf(m0, sizeof(m0), "%s/m0", e->dir);
	assert_true(tu_count_chunk_copies(m0) > 0);
	assert_int_equal(tu_count_chunk_copies(path), tu_count_chunk_copies(m0));
	/* now mirror 0 is lost: mirror 1 alone must hold everything */
	tu_daemon_stop(&e->d, SIGTERM);
	snprintf(path, sizeof(path), "%s/m0", e->dir);
	tu_rmrf(path);
	assert_int_equal(tu_store_start(&e->d, e->dir, e->keyfile, 2, "127.0.0.1", extra), 0);
	c = conn(e, "t");
	assert_int_equal(get_check(c, "p", 1, 2500000, 11, NULL), 0);
	assert_int_equal(get_check(c, "q", 1, 70000, 12, NULL), 0);
	net_client_free(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_roundtrip, setup, teardown),
		cmocka_unit_test_setup_teardown(test_list_pages_and_delete, setup, teardown),
		cmocka_unit_test_setup_teardown(test_retention, setup_retain2, teardown),
		cmocka_unit_test_setup_teardown(test_claim_race, setup, teardown),
		cmocka_unit_test_setup_teardown(test_lease_commit_fence, setup, teardown),
		cmocka_unit_test_setup_teardown(test_read_repair_over_network, setup, teardown),
		cmocka_unit_test_setup_teardown(test_wiped_mirror_resynced_at_start, setup, teardown),
		cmocka_unit_test_setup_teardown(test_small_put_inline, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
