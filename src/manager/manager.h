/*
 * manager.h - rtcms-manager's state, shared by its modules (internal).
 *
 * Threads:
 *   loop      libuv: the listener (rpc_server), SIGINT/SIGTERM
 *   conn      one per connection: REGISTER, CKPT_NOTIFY, EXITED from
 *             agents; MSTATUS, RUN, MIGRATE, DRAIN, LIST from rtcmsctl. A
 *             migration runs on the thread of the connection that asked.
 *   puller    pull_concurrency threads: take a process whose announced
 *             checkpoint is not durable yet, PULL it from its agent and
 *             relay it chunk by chunk into the store (bounded memory: one
 *             chunk; back-pressure: the agent's stream waits on the store)
 * One mutex (manager.lock) guards the node and process tables.
 */
#ifndef RTCMS_MANAGER_H
#define RTCMS_MANAGER_H

#include <stdatomic.h>
#include <stdint.h>
#include <uv.h>

#include "net/client.h"
#include "placement.h"
#include "proto/msg.h"

#define MANAGER_NODES_MAX PROTO_NODES_MAX
#define MANAGER_PROCS_MAX 1024
#define MANAGER_PULLERS_MAX 16

struct mnode {
	uint64_t node;
	char name[PROTO_ID_MAX + 1];
	char address[PROTO_ADDR_MAX + 1];
	uint8_t boot[PROTO_BOOT_SIZE];
	uint64_t area_capacity;
	uint64_t mem_total;
	uint32_t quota_max;
	uint64_t seen_ms;              /* monotonic ms of the last heartbeat/REGISTER */
	uint64_t hb_counter;           /* last heartbeat counter of this boot */
	int failed;                    /* declared failed; cleared when it is heard again */
	int failed_notice;             /* an operator said it failed: its heartbeats are
					* not answered (its lease lapses) until it restarts */
};

struct mproc {
	char id[PROTO_ID_MAX + 1];
	uint64_t node;
	uint64_t incarnation;
	uint64_t notified;             /* latest sequence announced */
	uint64_t durable;              /* latest sequence the store acknowledged */
	uint64_t durable_size;
	uint64_t durable_at_ms;        /* monotonic */
	uint64_t failed_seq;           /* announced sequence that cannot be pulled */
	uint64_t base_inc, base_seq;   /* the newest durable checkpoint a delta may
					* build on (this incarnation's) ... */
	uint32_t base_depth;           /* ... and its depth in its chain */
	int state;                     /* enum proto_proc_state */
	int pulling;
	int ended;                     /* finished cleanly: its checkpoints go */
	int exit_wait;                 /* EXITED waits for the pull in flight */
	uint64_t retry_at;             /* WAITING: next restore attempt (monotonic ms) */
	_Atomic int migrating;         /* written under lock; a pull polls it */
};

struct manager_config {
	char listen[PROTO_ADDR_MAX + 1];
	char key[1024];
	char name[PROTO_ID_MAX + 1];
	char store[PROTO_ADDR_MAX + 1];
	char log_level[16];
	char ready_file[1024];
	char policy[16];
	char w_ram[16], w_cpu[16], w_quota[16];
	uint64_t reserve;
	uint64_t pullers;
	uint64_t claim_lease_ms;
	uint64_t node_timeout_ms;
	uint64_t freeze_timeout_ms;
	uint64_t restore_timeout_ms;
	uint64_t io_timeout_ms;
	uint64_t agent_lease_ms;       /* told to agents in REGISTER_OK */
	uint64_t heartbeat_ms;         /* told to agents in REGISTER_OK */
	uint64_t fence_margin_ms;      /* node_timeout >= agent lease + this */
	uint64_t chain_max;            /* deltas in a row before a full image
					* (0: incremental transfer off) */
};

struct manager {
	struct manager_config cfg;
	struct placement_config placement;
	struct proto_key key;
	uint64_t epoch;
	uv_loop_t *loop;
	uv_mutex_t lock;
	uv_cond_t work;                /* pullers: a checkpoint to pull */
	struct mnode nodes[MANAGER_NODES_MAX];
	size_t node_count;
	struct mproc *procs;
	size_t proc_count;
	size_t pull_cursor;            /* round robin of the pullers */
	int store_up;
	char store_error[PROTO_TEXT_MAX + 1];
	uint64_t store_retry_at;       /* monotonic ms */
	uint64_t store_backoff;
	int stopping;
	uv_thread_t pullers[MANAGER_PULLERS_MAX];
	uv_thread_t detector;
	uint64_t started_ms;           /* monotonic */
	int scanned;                   /* the store's processes are in the table */
	uint64_t adopt_at;             /* next look at STORED processes (detector) */
	size_t puller_count;
};

uint64_t manager_mono_ms(void);
uint64_t manager_real_ms(void);    /* unix ms (the store's claims use it) */

/* manager.c */
struct mproc *manager_proc(struct manager *m, const char *id); /* lock held */
struct mnode *manager_node(struct manager *m, uint64_t node);  /* lock held */
/* The entry of id, added (RUNNING, empty) if new; NULL if the table is
 * full. Lock held. */
struct mproc *manager_proc_add(struct manager *m, const char *id);
int manager_node_alive(const struct manager *m, const struct mnode *n);
/* Delete every checkpoint of a program that finished (lock not held). */
void manager_forget(struct manager *m, const char *id);
/* Record the outcome of a store operation (lock not held). */
void manager_store_result(struct manager *m, int rc, const char *what);
/* What a pull moved and stored. */
struct pull_result {
	uint64_t sequence;             /* the sequence stored */
	uint64_t size;                 /* bytes pulled (the delta's, or the full image's) */
	uint64_t full_size;            /* the full image's */
	uint64_t base;                 /* 0: a full image; else the delta's base */
	uint32_t depth;                /* deltas down to a full image (the store's) */
	int existed;                   /* the store had it (another manager) */
};

/* Make sequence seq (or newer) of process id durable: skipped if the
 * store has it already (another manager), else the newest the agent at
 * addr holds is pulled - as a delta against base when base is not 0 and
 * the agent finds that worth it - and stored. A delta the store cannot
 * take (its base is gone) is pulled again in full. *store is this
 * thread's store connection (opened, or dropped on error). Returns 0 and
 * *res, RTCMS_ESTORE-class errors from the store (*store_side = 1) or the
 * agent's. */
int manager_pull(struct manager *m, struct net_client **store, const char *id,
		 uint64_t incarnation, uint64_t seq, uint64_t base, const char *addr,
		 struct pull_result *res, int *store_side, _Atomic int *cancel);
int manager_store_connect(struct manager *m, struct net_client **store);
int manager_run(struct manager *m);

/* handlers.c */
int manager_handle(void *ctx, struct net_client *c, const char *peer,
		   const struct proto_header *hdr, union proto_msg *msg);

/* migrate.c */
struct migrate_result {
	uint64_t from, to, incarnation, sequence;
	uint32_t millis;
};
int manager_migrate(struct manager *m, const char *who, const char *id,
		    uint64_t target, int allow_same, struct migrate_result *res,
		    char *why, size_t whylen);
/* Restore process id, whose node failed, from its latest durable
 * checkpoint on the best healthy node (claim, restore, commit, adopt).
 * The caller set its migrating flag. 0, RTCMS_EEXIST if the store says it
 * was restored elsewhere already (*elsewhere: that node), RTCMS_ECLAIMED
 * (*held_until: when the holder's lease ends, unix ms), or an error with
 * why. */
int manager_recover(struct manager *m, const char *id, uint64_t *elsewhere,
		    uint64_t *held_until, char *why, size_t whylen);
/* Decide for a program frozen by a migration whose manager vanished:
 * *verdict STOP (the store recorded the move), THAW (never committed) or
 * WAIT (a claim is held). 0 or the store's error. */
int manager_resolve(struct manager *m, const char *id, uint64_t incarnation,
		    uint64_t node, uint32_t *verdict, char *why, size_t whylen);
/* Ask every alive node for its INFO; fills nodes (MANAGER_NODES_MAX) and
 * returns the count. */
size_t manager_poll_nodes(struct manager *m, struct placement_node *nodes,
			  char (*addrs)[PROTO_ADDR_MAX + 1]);

#endif
