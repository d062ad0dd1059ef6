/*
 * fake_rpc.h - fake agents and a fake store behind the manager's RPC
 * tables (src/manager/rpc.h), for unit tests of its state machines
 * (migration, restore) without processes or sockets. Every call the
 * manager makes is recorded as one line ("CLAIM p1", "RESTORE 10.0.0.2",
 * ...); each fake peer answers as its fields say.
 */
#ifndef RTCMS_TEST_FAKE_RPC_H
#define RTCMS_TEST_FAKE_RPC_H

#include <stdbool.h>
#include <stdint.h>

#include "manager/manager_int.h"

#define FAKE_NODES 4
#define FAKE_CALLS 64

struct fake_agent {
	uint64_t node;
	char addr[PROTO_ADDR_MAX + 1];
	uint64_t mem_available;        /* INFO: 0 = too small for anything */
	int info_rc, freeze_rc, thaw_rc, stop_rc, holds_rc, target_open_rc, adopt_rc;
	bool holds;                    /* PROCS: it runs the program */
	int pull_rc;                   /* PULL: fails after pull_fail_after chunks */
	uint32_t pull_fail_after;
	uint64_t pull_skew;            /* PULL: sends sequence + pull_skew */
	int restore_begin_rc, restore_chunk_rc;
	int restore_rc;                /* the answer to PUT_END (RESTORE_OK if 0) */
	uint32_t restored_chunks;      /* chunks it got in its last RESTORE */
};

struct fake {
	struct fake_agent agents[FAKE_NODES];
	size_t agent_count;
	struct fake_agent *target;     /* the one target_open chose */
	/* the checkpoint every source sends */
	struct proto_ckpt_meta ckpt;
	uint32_t chunks;
	/* the store */
	int open_rc, meta_rc, get_rc, release_rc, commit_rc;
	int claim_rc[4];               /* one per CLAIM in turn (0 after the last) */
	size_t claims;
	struct proto_claim_ok claim;   /* CLAIM_OK (process filled in) */
	uint64_t commit_inc;           /* COMMIT_OK's new incarnation */
	uint64_t held_until;           /* ECLAIMED: the holder's lease end */
	bool store_has;                /* PUT_BEGIN: the store holds it already */
	int put_begin_rc, put_chunk_rc, put_end_rc;
	uint32_t stored_chunks;        /* chunks of the last PUT */
	/* what the manager asked, in order */
	char calls[FAKE_CALLS][96];
	size_t call_count;
};

/* A fake world: no agents yet, a checkpoint p1 1/5 of 3 chunks, a store
 * that grants every claim (claim 7 on 1/5 at node 1) and commits as
 * incarnation 2. */
void fake_init(struct fake *f);
/* Add an agent for node at address addr with room for anything. */
struct fake_agent *fake_agent_add(struct fake *f, uint64_t node, const char *addr);

/* A manager whose RPC is f's, its tables empty, every setting a test
 * needs; free with fake_manager_free(). */
struct manager *fake_manager_new(struct fake *f);
void fake_manager_free(struct manager *m);
/* Register node at addr with m (alive now). */
struct mnode *fake_manager_node(struct manager *m, uint64_t node, const char *addr);
/* A running process id on node, incarnation inc, durable up to durable. */
struct mproc *fake_manager_proc(struct manager *m, const char *id, uint64_t node,
				uint64_t inc, uint64_t durable);

/* Every call so far, one line each joined by "; ", INFO calls left out
 * (their order is the node table's). */
const char *fake_calls(struct fake *f, char *buf, size_t len);
/* How many calls start with prefix. */
size_t fake_count(const struct fake *f, const char *prefix);

/* The world both state machines are tested in: agents and registered
 * nodes 1, 2 (the most free RAM) and 3 at 10.0.0.1-3, a manager over f. */
struct fake_world {
	struct fake f;
	struct manager *m;
	struct fake_agent *a[3];
	char why[PROTO_TEXT_MAX + 1];
	char calls[4096];
};
struct fake_world *fake_world_new(void);
void fake_world_free(struct fake_world *w);
/* fake_calls() of the world's fake. */
const char *fake_world_calls(struct fake_world *w);
/* The table's entry of process p1, and a cmocka check of its fields. */
struct mproc *fake_world_p1(struct fake_world *w);
void fake_assert_p1(struct fake_world *w, uint64_t node, uint64_t inc, int state,
		    int migrating);

#endif
