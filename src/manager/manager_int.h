/*
 * manager_int.h - inside rtcms-manager: its tables and the manager
 * itself, shared by its modules (main.c sees only manager.h).
 *
 * THREADS AND LOCKS
 *
 *   loop        the libuv event loop (manager.c): the listener and the
 *               gate (rpc_server), SIGINT/SIGTERM, SIGHUP (main.c: new
 *               placement settings through manager_set_placement), under
 *               systemd the watchdog and status timer (daemon/notify.c;
 *               takes manager.lock briefly once a second). Owns
 *               the loop's handles; it never blocks on I/O.
 *   conn        one thread per control connection (rpc_server, at most
 *               64): handlers.c. REGISTER, PROCS, CKPT_NOTIFY, EXITED,
 *               RESOLVE from agents; MSTATUS, LIST, RUN, MIGRATE, DRAIN,
 *               NODE_FAILED, CORDON, UNCORDON, FORGET from rtcmsctl. A
 *               migration (migrate.c) runs on the thread of the
 *               connection that asked and owns its rpc_link. Buffers of a
 *               reply are the thread's stack or its heap.
 *   puller      pull_concurrency threads (puller.c): each owns one store
 *               connection (its rpc_link) and pulls one checkpoint at a
 *               time (pull.c: agent -> store, one chunk in memory).
 *   detector    one thread (reconcile.c): reads the store's processes
 *               every 2 s, fences unheard nodes (detector.c), compares
 *               what should run with the agents' reports (recovery.c
 *               decides) and restores what runs nowhere, one at a time
 *               (restore.c), owning that restore's rpc_link.
 *   lease       one thread (lease.c): renews this manager's lease from
 *               the store every lease_renew on its own connection and
 *               applies the store's fences; never behind a pull or a
 *               restore.
 *   heartbeat   one thread (src/common/daemon/hbthread.c, real-time
 *               priority where it may) that owns the UDP socket; it runs
 *               detector_heartbeat() for each datagram: a few field
 *               updates under the lock, nothing else.
 *   metrics     with metrics_listen set, libmicrohttpd's polling thread
 *               (metrics/http.h): renders /metrics from the atomics of
 *               stats.h, which the threads above raise; it takes no lock
 *               of the manager's (the lease thread sets the node and
 *               program gauges on its tick, under manager.lock).
 *
 * Locks:
 *   manager.lock (a priority-inheritance mutex: the heartbeat thread
 *               takes it) guards everything in struct manager below the
 *               settings: the node table and every mnode field, the
 *               process table and every mproc field (migrating is also
 *               read without it: a pull polls it to give up), the pull
 *               cursor, the store's health, stopping, scanned, adopt_at,
 *               the cordons, the placement settings, the lease and the
 *               fences. No thread holds it across I/O or a call through
 *               manager.rpc: each copies what it needs, unlocks, calls,
 *               locks again and looks its entry up again (by id).
 *   manager.work (a condition variable with manager.lock): pullers and
 *               the detector wait on it; a notification, a report, the
 *               end of a move or the stop wakes them.
 *   Lock order: manager.lock is the manager's only lock; the log's lock
 *               (log.c) and rpc_server's are leaves taken below it or
 *               without it, never the other way round.
 *   Lifetimes:  process entries never move (a forgotten one's slot gets
 *               the id "" and is reused), so a struct mproc * stays a
 *               valid slot across an unlock, though it may then hold
 *               another process: look it up again. Node entries move (a
 *               forgotten node is taken out): never keep a struct mnode *
 *               across an unlock. cfg, key and rpc are written before the
 *               threads start and only read afterwards.
 */
#ifndef RTCMS_MANAGER_INT_H
#define RTCMS_MANAGER_INT_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "cordon_set.h"
#include "manager.h"
#include "placement.h"
#include "proto/msg.h"
#include "rpc.h"

#define MANAGER_NODES_MAX PROTO_NODES_MAX
#define MANAGER_PROCS_MAX 1024

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
	bool failed;                   /* its fence is complete: its programs are gone;
					* cleared when it is heard again after the fence */
	bool failed_notice;            /* an operator said it failed: its heartbeats are
					* not answered (its lease lapses) until it restarts */
	/* the fence (docs/architecture.md "The fence"): while any of these is
	 * set the node's heartbeats are not answered */
	bool fencing;                  /* unheard: this manager asks the store to fence it */
	bool fence_inflight;           /* a FENCE is on its way to the store */
	uint8_t fence_state;           /* the store's enum proto_fence_state, 0 = none */
	uint64_t fence_retry_at;       /* monotonic ms */
	bool fence_refused_logged;
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
	uint64_t notified_ns;          /* uv_hrtime() when it was: its CKPT_NOTIFY or the
					* PROCS report that named it came (0: not known) */
	uint64_t durable;              /* latest sequence the store acknowledged */
	uint64_t durable_size;
	uint64_t durable_at_ms;        /* monotonic */
	uint64_t failed_seq;           /* announced sequence that cannot be pulled */
	uint64_t base_inc, base_seq;   /* the newest durable checkpoint a delta may
					* build on (this incarnation's) ... */
	uint32_t base_depth;           /* ... and its depth in its chain */
	int state;                     /* enum proto_proc_state */
	bool pulling;
	bool ended;                    /* finished cleanly: its checkpoints go */
	bool exit_wait;                /* EXITED waits for the pull in flight */
	uint64_t retry_at;             /* WAITING: next restore attempt (monotonic ms) */
	uint64_t added_ms;             /* monotonic: when this manager learned of it */
	uint64_t absent_since;         /* monotonic: first fresh report of its node
					* without it (0 = seen, or not looked at) */
	uint64_t confirmed_ms;         /* monotonic: last report that showed it */
	uint32_t restarts;             /* as its agent reports them */
	char reason[PROTO_ID_MAX + 1]; /* its last exit, restart or failure */
	bool gave_up_move;             /* the restore under way follows a give-up */
	uint64_t probe_at;             /* another manager pulls it: next look at the
					* store (monotonic ms) */
	_Atomic int migrating;         /* written under lock; a pull polls it */
};

#define MANAGER_DATAKEYS_MAX 64

struct manager {
	/* settings: written before the threads start (placement: under lock) */
	struct manager_config cfg;
	struct proto_key key;
	uint64_t epoch;
	struct manager_rpc rpc;        /* what it asks of agents and the store */

	uv_loop_t *loop;
	uv_mutex_t lock;
	uv_cond_t work;                /* pullers, detector: something to do */
	struct placement_config placement;
	/* data keys whose check value the store confirmed (under lock) */
	struct { uint32_t id; uint64_t kcv; } datakeys[MANAGER_DATAKEYS_MAX];
	size_t datakey_count;
	/* nodes refused for their data key, when it was last logged */
	struct { uint64_t node, ms; } key_refusals[8];
	size_t key_refusal_next;
	struct mnode nodes[MANAGER_NODES_MAX];
	size_t node_count;
	struct mproc *procs;           /* MANAGER_PROCS_MAX */
	size_t proc_count;
	size_t pull_cursor;            /* round robin of the pullers */
	bool store_up;
	char store_error[PROTO_TEXT_MAX + 1];
	uint64_t store_retry_at;       /* monotonic ms */
	uint64_t store_backoff;
	bool stopping;
	uv_thread_t pullers[MANAGER_PULLERS_MAX];
	size_t puller_count;
	uv_thread_t detector;
	uint64_t started_ms;           /* monotonic */
	bool scanned;                  /* the store's processes are in the table */
	uint64_t adopt_at;             /* next look at STORED processes (detector) */
	struct cordon_set cordons;     /* nodes that take no new program */

	/* the manager's lease from the store (lease thread) */
	uv_thread_t lease_thread;
	uint64_t lease_until;          /* monotonic ms; heartbeats answered only before */
	uint64_t fence_gen;            /* newest fence generation applied */
	bool lease_lost_logged;
	struct proto_fence_entry fences[PROTO_NODES_MAX]; /* the store's fences */
	size_t fence_count;
	char managers[PROTO_MANAGERS_MAX][PROTO_ID_MAX + 1]; /* managers with leases */
	size_t manager_count;
};

#endif
