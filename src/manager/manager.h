/*
 * manager.h - rtcms-manager's state, shared by its modules (internal).
 *
 * Threads:
 *   loop      libuv: the listener (rpc_server), SIGINT/SIGTERM, SIGHUP
 *             (main.c: re-reads the config, replaces placement under lock)
 *   conn      one per connection: REGISTER, CKPT_NOTIFY, EXITED from
 *             agents; MSTATUS, RUN, MIGRATE, DRAIN, CORDON, UNCORDON,
 *             FORGET, LIST from rtcmsctl. A migration runs on the thread
 *             of the connection that asked.
 *   puller    pull_concurrency threads: take a process whose announced
 *             checkpoint is not durable yet and that this manager pulls
 *             (manager_pulls), PULL it from its agent and relay it chunk
 *             by chunk into the store (bounded memory: one chunk;
 *             back-pressure: the agent's stream waits on the store); for
 *             another manager's processes only ask the store (LIST)
 *   detector  the failure detector and the reconciliation loop: fences
 *             unheard nodes in the store, compares what should run with
 *             the agents' reports, restores what runs nowhere (one at a
 *             time, blocking calls with timeouts)
 *   lease     renews this manager's lease from the store every
 *             lease_renew on its own connection and applies the store's
 *             fences (never behind a pull or a restore)
 * One mutex (manager.lock) guards the node and process tables, the
 * cordoned nodes, the placement settings, the lease and the fences. No
 * thread holds it across I/O: each copies what it needs, releases it, and
 * looks its entry up again afterwards.
 */
#ifndef RTCMS_MANAGER_H
#define RTCMS_MANAGER_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "net/client.h"
#include "cordon_set.h"
#include "daemon/rpc_server.h"
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
	int failed;                    /* its fence is complete: its programs are gone;
					* cleared when it is heard again after the fence */
	int failed_notice;             /* an operator said it failed: its heartbeats are
					* not answered (its lease lapses) until it restarts */
	/* the fence (docs/architecture.md "The fence"): while any of these is
	 * set the node's heartbeats are not answered */
	int fencing;                   /* unheard: this manager asks the store to fence it */
	int fence_inflight;            /* a FENCE is on its way to the store */
	uint8_t fence_state;           /* the store's enum proto_fence_state, 0 = none */
	uint64_t fence_retry_at;       /* monotonic ms */
	int fence_refused_logged;
	/* the agent's latest PROCS report */
	struct proto_agent_proc *report;  /* PROTO_PROCS_MAX entries, or NULL */
	uint16_t report_count;
	uint64_t report_ms;            /* monotonic ms it arrived; 0 = none yet */
	uint64_t report_gen;
	uint64_t prev_boot_seen_ms;    /* when its agent's new boot registered: the old
					* boot's instances may live a lease longer */
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
	uint64_t added_ms;             /* monotonic: when this manager learned of it */
	uint64_t absent_since;         /* monotonic: first fresh report of its node
					* without it (0 = seen, or not looked at) */
	uint64_t confirmed_ms;         /* monotonic: last report that showed it */
	uint32_t restarts;             /* as its agent reports them */
	char reason[PROTO_ID_MAX + 1]; /* its last exit, restart or failure */
	int gave_up_move;              /* the restore under way follows a give-up */
	uint64_t probe_at;             /* another manager pulls it: next look at the
					* store (monotonic ms) */
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
	uint64_t manager_lease_ms;     /* asked of the store; heartbeats are answered
					* only while it holds */
	uint64_t lease_renew_ms;       /* how often it is renewed */
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
	struct cordon_set cordons;     /* nodes that take no new program (under lock) */

	/* the manager's lease from the store (lease thread; under lock) */
	uv_thread_t lease_thread;
	uint64_t lease_until;          /* monotonic ms; heartbeats answered only before */
	uint64_t fence_gen;            /* newest fence generation applied */
	int lease_lost_logged;
	struct proto_fence_entry fences[PROTO_NODES_MAX]; /* the store's fences */
	size_t fence_count;
	char managers[PROTO_MANAGERS_MAX][PROTO_ID_MAX + 1]; /* managers with leases */
	size_t manager_count;
};

uint64_t manager_mono_ms(void);
uint64_t manager_real_ms(void);    /* unix ms (the store's claims use it) */

/* manager.c */
struct mproc *manager_proc(struct manager *m, const char *id); /* lock held */
struct mnode *manager_node(struct manager *m, uint64_t node);  /* lock held */
/* The entry of id, added (RUNNING, empty) if new - in the slot of a
 * forgotten process (id "") if there is one: entries never move - ; NULL
 * if the table is full. Lock held. */
struct mproc *manager_proc_add(struct manager *m, const char *id);
int manager_node_alive(const struct manager *m, const struct mnode *n);
/* May this manager answer n's heartbeats now (its lease holds, n is not
 * fenced or being fenced)? Lock held. */
bool manager_may_answer(const struct manager *m, const struct mnode *n, uint64_t now);
/* Is this manager the one that pulls id's checkpoints (rendezvous hash over
 * the managers holding leases; every manager computes the same)? Lock held. */
bool manager_pulls(const struct manager *m, const char *id);
/* Ask the agent at addr for its programs (PROCS); 1 if it holds a live
 * instance of id (running, restoring, frozen or restarting), 0 if not, a
 * negative code if it cannot be asked. Lock not held. */
int manager_agent_holds(struct manager *m, const char *addr, const char *id);
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
 * the agent finds that worth it - and stored (addr NULL: only ask the
 * store, RTCMS_ENOENT if it lacks it). A delta the store cannot
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
enum rpc_result manager_handle(void *ctx, struct net_client *c, const char *peer,
		   const struct proto_header *hdr, union proto_msg *msg);

/* migrate.c */
struct migrate_result {
	uint64_t from, to, incarnation, sequence;
	uint32_t millis;
};
int manager_migrate(struct manager *m, const char *who, const char *id,
		    uint64_t target, int allow_same, struct migrate_result *res,
		    char *why, size_t whylen);
/* How manager_recover() is to restore a program, and what came of it. */
struct recover_req {
	int source_alive;      /* in: its node is alive (it may be chosen again)
				* and is asked under the claim whether it holds
				* the program after all */
	int gave_up;           /* in: its node gave up restarting it (the store
				* allows one such move per program) */
	uint64_t elsewhere;    /* out, RTCMS_EEXIST: the node that runs it */
	uint64_t held_until;   /* out, RTCMS_ECLAIMED: the holder's lease end, unix ms */
	int failed;            /* out: the store refused the claim: a second
				* give-up, the program has failed for good */
};
/* Restore process id, which runs nowhere, from its latest durable
 * checkpoint on the best healthy node (claim, restore, commit, adopt).
 * The caller set its migrating flag. 0, RTCMS_EEXIST if the store says it
 * was restored elsewhere already or its node still holds it,
 * RTCMS_ECLAIMED, RTCMS_ESTATE with req->failed, or an error with why. */
int manager_recover(struct manager *m, const char *id, struct recover_req *req, char *why,
		    size_t whylen);
/* lease.c: the lease thread (MLEASE every lease_renew_ms) */
int manager_lease_start(struct manager *m);
/* Ask the store to fence node (lock not held): 0 and *state (enum
 * proto_fence_state) and *wait_ms, RTCMS_EBUSY with why (another manager
 * hears it), or the store's error. */
int manager_fence(struct manager *m, uint64_t node, uint8_t *state, uint32_t *wait_ms,
		  char *why, size_t whylen);
/* Decide for a program frozen by a migration whose manager vanished:
 * *verdict STOP (the store recorded the move), THAW (never committed) or
 * WAIT (a claim is held). 0 or the store's error. */
int manager_resolve(struct manager *m, const char *id, uint64_t incarnation,
		    uint64_t node, uint32_t *verdict, char *why, size_t whylen);
/* Ask every alive node for its INFO (each within timeout_ms; one that does
 * not answer is left out); fills nodes (MANAGER_NODES_MAX) and returns the
 * count. */
#define MANAGER_INFO_TIMEOUT(m) ((int)(m)->cfg.io_timeout_ms) /* placement: a loaded node may be slow */
size_t manager_poll_nodes(struct manager *m, struct placement_node *nodes,
			  char (*addrs)[PROTO_ADDR_MAX + 1], int timeout_ms);

#endif
