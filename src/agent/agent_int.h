/*
 * agent_int.h - rtcms-agent inside: the structs its modules share.
 * main.c sees only agent.h.
 *
 * THREADS AND LOCKS
 *
 *   loop       libuv's default loop (agent.c): the listener and the gate
 *              (rpc_server), the capture timer (each area's commit pointer
 *              every poll_interval, a program's own MIGRATE request, then
 *              the restarts whose back-off is over), CPU sampling every
 *              100 ms, SIGCHLD (restart.c: reap, decide the restart),
 *              SIGINT/SIGTERM, SIGHUP (main.c), housekeeping every
 *              heartbeat_interval (RESOLVE of programs frozen too long,
 *              the `run =` programs under the first lease), under
 *              systemd the watchdog and status timer (daemon/notify.c;
 *              takes agent.lock briefly once a second). Owns the
 *              uv handles; never waits on a connection.
 *   heartbeat  one thread with its own UDP socket (lease.c over
 *              daemon/hbthread.c; SCHED_FIFO where the agent may):
 *              HEARTBEAT to every manager, their acks renew the lease, the
 *              lease watchdog. Owns hb_counter and hb_sent; never waits on
 *              a disk, a pull, a restore or a connection.
 *   outbox     one thread (outbox.c): REGISTER and PROCS (every second
 *              and on every change), CKPT_NOTIFY and EXITED to every
 *              manager over one persistent connection each. Owns
 *              mgr_link.conn and its own per-manager state and report
 *              buffer.
 *   conn       one detached thread per manager connection (rpc_server,
 *              at most 32): the requests of handlers.c. A PULL streams its
 *              encoding from this thread (pull.c, the pull sender), read
 *              from the area through one chunk buffer of its own; a
 *              RESTORE receives, verifies, starts the program and waits
 *              for its resume and the ADOPT here (restore.c); FREEZE waits
 *              here for the program's final checkpoint (freeze.c). Owns
 *              its net_client and what it decodes.
 *   pool       libuv's worker threads: captures (capture.c: read the
 *              committed slot in place, hash the changed blocks) and
 *              restarts of crashed programs (restart.c: the new start,
 *              its area loaded from the dead program's).
 *   resolve    one short-lived detached thread per program frozen longer
 *              than freeze_hold (resolve.c): RESOLVE to the managers.
 *   migrate    one short-lived detached thread per MIGRATE a program asks
 *              for (outbox.c).
 *   metrics    with metrics_listen set, libmicrohttpd's polling thread
 *              (metrics/http.h): renders /metrics from the atomics of
 *              stats.h, which the threads above raise; it takes no lock of
 *              the agent's (the heartbeat thread sets the program and
 *              registration gauges on its tick). Its sockets are
 *              close-on-exec: no program inherits them.
 *
 * Locks:
 *   agent.lock   (a priority-inheritance mutex: the heartbeat thread
 *                takes it) guards the process list and every aproc field
 *                but the capture's, the image reference counts and
 *                `pulled`, the manager table's registration state, the
 *                lease, the seen table, procs_gen and the CPU window.
 *                Nobody holds it across I/O, a wait or a program start.
 *                agent.wake (its condition) wakes the outbox.
 *   aproc.cap_lock  one capture of that program at a time; held while the
 *                capture copies and hashes (without agent.lock).
 *   image.lock   an image's encodings (built on the first PULL asking for
 *                one, then held by users while a PULL streams it).
 * An image's data is in its program's area, which the program rewrites
 * without any lock (it never waits): a reader copies, then checks the
 * slot's generation (area_snap_read), and a PULL sends only what such a
 * check passed; aproc.copy_full and image.gone are under agent.lock.
 * Lock order: aproc.cap_lock, then agent.lock; image.lock is taken with
 * neither agent.lock held nor taken inside it. Images and aprocs are
 * reference counted (under agent.lock): a thread that drops agent.lock
 * keeps what it uses by a reference.
 */
#ifndef RTCMS_AGENT_INT_H
#define RTCMS_AGENT_INT_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <time.h>
#include <uv.h>

#include "agent.h"
#include "area/area.h"
#include "area/image.h"
#include "net/client.h"
#include "proto/msg.h"
#include "stream/stream.h"
#include "util/sysinfo.h"

#define AGENT_MANAGERS_MAX CONFIG_LIST_MAX
#define AGENT_SEEN_MAX 256             /* process ids whose incarnation is remembered */

/* How an image goes on the wire: the full image (base 0) or a delta
 * against base, cut into chunks with their ids (stream/stream.h's
 * chunker, PROTO_MAX_CHUNK bytes each). Built on the first
 * PULL that asks for it, under image.lock; a PULL then streams it without
 * the lock, so an encoding never changes while users is not 0: a PULL
 * for another base builds another delta (the image keeps one per base
 * asked for at the same time, and rebuilds only one nobody streams).
 * Neither holds the image's data: a delta holds its head and block list,
 * the blocks are read from where the image's data is (capture.h). */
struct encoding {
	bool ready;
	int users;                     /* PULLs streaming it (image.lock) */
	uint64_t base;                 /* 0: the full image */
	uint8_t *head;                 /* a delta's header, region table and block list */
	size_t head_len;               /* bytes in use at head */
	size_t cap;                    /* bytes allocated at head */
	uint32_t count;                /* a delta's blocks */
	struct stream_chunks chunks;   /* its size, chunk ids and image hash */
	struct encoding *next;         /* the image's other deltas */
};

/* A captured checkpoint: where its data is, its block versions and
 * hashes, and its encodings for pulls. Its data is not copied: it is the
 * area's slot snap names, for as long as the program has not rewritten
 * that slot (two commits later; every read checks it, capture.h), or,
 * for a program whose full images outran its checkpoints once
 * (aproc.copy_full), a private copy of the full image. Only the capture
 * writes an image, and only one nobody else references (refs == 1: a
 * copy otherwise). */
struct image {
	int refs;                      /* under agent.lock */
	uint64_t sequence;
	uint64_t created_ms;
	const void *area;              /* its program's area (borrowed: users hold the aproc) */
	struct area_snap snap;         /* the slot, generation and layout it was read at */
	uint8_t head[IMAGE_HEAD_MAX];  /* the full image's header and region table */
	size_t head_len;
	size_t size;                   /* image bytes */
	uint8_t *copy;                 /* the private copy of the full image, or NULL */
	size_t copy_cap;               /* bytes allocated at copy */
	uint64_t *versions;            /* per data block: sequence it last changed */
	uint8_t (*block_hash)[STATE_BLOCK_HASH_SIZE]; /* per data block (delta.h) */
	size_t blocks;                 /* data blocks in use */
	size_t block_cap;              /* entries allocated */
	uint8_t state_hash[PROTO_HASH_SIZE];
	uint64_t copied;               /* bytes hashed by the capture */
	uv_mutex_t lock;               /* the encodings */
	struct encoding full;
	struct encoding *deltas;       /* list, one per base */
	const struct datakey *key;     /* its chunks are sealed under it (NULL: plain) */
	bool pulled;                   /* a manager pulled it (agent.lock) */
	bool gone;                     /* a PULL found its slot rewritten (agent.lock) */
	uint64_t captured_ms;          /* monotonic */
};

/* Restart policy of a crashed program, as systemd's Restart= (the spec's
 * RTCMS_RESTART variable, else the agent's `restart` setting). */
enum agent_restart {
	AGENT_RESTART_ON_FAILURE = 0,  /* a non-zero exit or a signal */
	AGENT_RESTART_ALWAYS = 1,      /* also a clean exit */
	AGENT_RESTART_NEVER = 2,
};

enum aproc_state {
	AP_RUNNING,
	AP_RESTORING,                  /* started for a restore, not adopted yet */
	AP_FROZEN,                     /* stopped after its final checkpoint */
	AP_EXITED,
};

struct aproc {
	char id[PROTO_ID_MAX + 1];
	uint64_t incarnation;
	enum aproc_state state;
	pid_t pid;
	int status;                    /* wait status once exited */
	int area_fd;
	void *area;
	size_t area_len;
	uint8_t *spec;                 /* what starts it (proto/spec.h) */
	uint32_t spec_len;
	uint8_t *sealed_spec;          /* spec sealed under the data key, as its
					* checkpoints carry it; NULL: no keyring,
					* they carry spec */
	uint32_t sealed_spec_len;
	struct image *img;             /* latest capture (agent.lock) */
	bool capturing;                /* a capture is queued on the pool */
	bool copy_full;                /* a full image's PULL outran the program's
					* checkpoints: captures keep a private copy
					* (agent.lock) */
	uv_mutex_t cap_lock;           /* one capture at a time */
	uint64_t notified[AGENT_MANAGERS_MAX]; /* sequence told to each manager */
	uint32_t exit_told;            /* bit per manager: EXITED sent */
	uint64_t frozen_ms;            /* FROZEN since (monotonic; a RESOLVE is due
					* freeze_hold later) */
	bool resolving;                /* a RESOLVE is under way */
	/* the restart policy (restart.c): crashes are restarted here, from
	 * the newest checkpoint this agent holds */
	bool killed;                   /* the agent killed it (STOP, fence, shutdown,
					* an unadopted restore): not a crash */
	bool restart_pending;          /* exited; restarted at restart_at */
	uint64_t restart_at;           /* monotonic ms */
	uint32_t restarts;             /* within the current window */
	uint64_t window_start;         /* monotonic ms: the window's first restart */
	bool superseded;               /* a restarted instance replaced this entry */
	uint64_t exited_ms;            /* monotonic: when it was reaped */
	uint64_t started_lapses;       /* a->lapses when it started */
	uint8_t outcome;               /* once exited: enum proto_agent_proc_state */
	char reason[PROTO_ID_MAX + 1]; /* its last exit or restart */
	int refs;                      /* threads using it (agent.lock) */
	struct aproc *next;
};

struct mgr_link {
	char addr[PROTO_ADDR_MAX + 1];
	struct sockaddr_storage udp;   /* heartbeats go to the same host:port */
	struct net_client *conn;       /* outbox thread only */
	bool registered;
	uint64_t retry_at_ms;
	uint64_t refused_log_ms;       /* a refusal was last logged (0: never) */
	char name[PROTO_ID_MAX + 1];
};

/* A checkpoint area made before its program starts (spawn_area_new): a
 * restore receives its image straight into it. A memfd of len bytes,
 * mapped at mem (NULL: none). */
struct launch_area {
	int fd;
	void *mem;
	size_t len;
};

/* What a launch needs: the program, and for a restore or a restart the
 * checkpoint its area starts with. */
struct launch_req {
	const char *id;
	uint64_t incarnation;
	const uint8_t *spec;
	uint32_t spec_len;
	struct launch_area *area;      /* a restore: the area its checkpoint was
					* received and committed into, which the
					* launch takes over (NULL: none) */
	const void *from_area;         /* or (a restart) the committed checkpoint of
					* this area, which nobody writes any more */
};

/*
 * The mechanism below a program's start, stop and end: the real one
 * (spawn.c) makes the checkpoint area (a memfd) and
 * starts the program with posix_spawn; unit tests give fakes.
 *   start    for the entry p that launch.c made for r (id, incarnation,
 *            state, spec; in no table yet): make its area (p->area,
 *            p->area_len, p->area_fd; a restore's is there already: r->area,
 *            taken over by launch.c), and start the program (p->pid). Returns 0, or a negative RTCMS_E* code
 *            with a reason in err (release() is called then).
 *   signal   send sig to p's program.
 *   release  unmap and close p's area, whatever start() made of it (the
 *            entry is freed after).
 */
struct launcher_ops {
	int (*start)(void *ctx, const struct agent *a, const struct launch_req *r,
		     struct aproc *p, char *err, size_t errlen);
	void (*signal)(void *ctx, struct aproc *p, int sig);
	void (*release)(void *ctx, struct aproc *p);
};

struct agent {
	struct agent_config cfg;
	struct proto_key key;
	struct datakey_ring data_keys; /* the data keyring (count 0: none) */
	const struct datakey *seal_key; /* its active key, or NULL: plain chunks */
	uint64_t node;
	char address[PROTO_ADDR_MAX + 1];
	uint8_t boot[PROTO_BOOT_SIZE];
	uint64_t mem_total;
	const struct launcher_ops *launcher;
	void *launcher_ctx;
	uint64_t lease_wait_ms;        /* a start waits this long for a lease (2 s) */

	uv_loop_t *loop;
	uv_mutex_t lock;
	uv_cond_t wake;                /* outbox: something to send */
	struct aproc *procs;
	struct mgr_link mgrs[AGENT_MANAGERS_MAX];
	size_t mgr_count;
	struct cpu_window cpu;         /* loop writes, handlers read (lock) */
	bool stopping;
	uv_thread_t outbox;

	/* lease (agent.lock): renewed by each HEARTBEAT_ACK, measured from the
	 * acked heartbeat's send time; 0 = never granted */
	uint64_t lease_ms;
	uint64_t lease_until;          /* monotonic ms */
	bool fenced;                   /* programs were stopped for a lapsed lease */
	uint64_t lapses;               /* lease lapses since the start */
	uint64_t procs_gen;            /* rises at every change of the process table */
	bool configured_started;       /* `run =` programs start under the first lease */
	uint64_t hb_counter;           /* heartbeat thread */
	uint64_t hb_sent[64];          /* send time by counter % 64 */
	uint64_t hb_sent_ns[64];       /* the same in uv_hrtime() ns (round trips) */

	/* the highest incarnation run here per process id (agent.lock), kept
	 * after the program is gone: a restore of an older one is refused */
	struct { char id[PROTO_ID_MAX + 1]; uint64_t inc; } seen[AGENT_SEEN_MAX];
	size_t seen_count, seen_next;
};

static inline uint64_t agent_now_ms(void)  /* unix ms */
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static inline uint64_t agent_mono_ms(void)
{
	return uv_hrtime() / 1000000;
}

/* Sleep ms milliseconds (the waits of a connection thread). */
static inline void agent_sleep_ms(unsigned ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };
	nanosleep(&ts, NULL);
}

#endif
