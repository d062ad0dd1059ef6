/*
 * agent.h - rtcms-agent's state, shared by its modules (internal).
 *
 * Threads:
 *   loop      libuv: the listener, the capture timer (polls each area's
 *             commit pointer, then restarts crashed programs whose
 *             back-off is over), CPU sampling, SIGCHLD (reaps programs and
 *             decides their restart), SIGINT/SIGTERM/SIGHUP, housekeeping
 *             (RESOLVE of frozen programs, the `run =` programs)
 *   heartbeat one thread with its own UDP socket (hbthread.c; SCHED_FIFO
 *             where the agent may): HEARTBEAT to every manager, their acks
 *             renew the lease, the lease watchdog; never waits on a disk,
 *             a pull or a restore
 *   outbox    one thread: REGISTER and PROCS (every second and on every
 *             change), CKPT_NOTIFY and EXITED to every manager, over one
 *             persistent connection each
 *   conn      one thread per manager connection (rpc_server): INFO, PULL,
 *             PROCS (a question), RUN, RESTORE, FREEZE, THAW, STOP, ADOPT
 *   pool      libuv's: captures (copy the committed slot, hash it)
 * One mutex (agent.lock) guards the process list, the manager table and
 * the lease; nobody holds it across I/O or a wait. Lock order: a
 * process' capture mutex, then agent.lock; images are reference counted.
 */
#ifndef RTCMS_AGENT_H
#define RTCMS_AGENT_H

#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <uv.h>

#include "net/client.h"
#include "proto/msg.h"
#include "util/config.h"
#include "util/sysinfo.h"

#define AGENT_MANAGERS_MAX CONFIG_LIST_MAX

/* How an image goes on the wire: the full image (base 0) or a delta
 * against base, cut into chunks with their hashes. Built on the first
 * PULL that asks for it, under image.lock; a PULL then streams it without
 * the lock, so an encoding never changes while users is not 0: a PULL
 * for another base builds another delta (the image keeps one per base
 * asked for at the same time, and rebuilds only one nobody streams). */
struct encoding {
	int ready;
	int users;                     /* PULLs streaming it (image.lock) */
	uint64_t base;                 /* 0: the full image */
	uint8_t *bytes;                /* the delta (NULL for the full image) */
	size_t size, cap;
	uint32_t chunk_count;
	uint8_t (*chunk_hash)[PROTO_HASH_SIZE];
	size_t hash_cap;               /* chunk_hash entries allocated */
	uint8_t hash[PROTO_HASH_SIZE]; /* image hash */
	struct encoding *next;         /* the image's other deltas */
};

/* A captured checkpoint: the full image, its block versions and hashes,
 * and its encodings for pulls. Only the capture writes an image, and only
 * one nobody else references (refs == 1: a copy otherwise). */
struct image {
	int refs;                      /* under agent.lock */
	uint64_t sequence;
	uint64_t created_ms;
	uint8_t *data;                 /* the full image */
	size_t size;                   /* image bytes */
	size_t cap;                    /* allocated */
	uint64_t *versions;            /* per data block: sequence it last changed */
	uint8_t (*block_hash)[PROTO_HASH_SIZE];
	size_t blocks;                 /* data blocks in use */
	size_t block_cap;              /* entries allocated */
	uint8_t state_hash[PROTO_HASH_SIZE];
	uint64_t copied;               /* bytes copied from the area by the capture */
	uv_mutex_t lock;               /* the encodings */
	struct encoding full;
	struct encoding *deltas;       /* list, one per base */
	int pulled;                    /* a manager pulled it (agent.lock) */
	uint64_t captured_ms;          /* monotonic */
};

/* Free an image nobody references. image_free(NULL) is a no-op. */
void image_free(struct image *img);

/*
 * The encoding of img a PULL asked for: a delta against base when base is
 * a sequence below the image's and the delta carries at most half of the
 * blocks, else the full image. Returns it held for the caller: it does not
 * change until image_encoding_done(); or NULL (RTCMS_ENOMEM). The caller
 * holds a reference to img meanwhile.
 */
struct encoding *image_encoding(struct image *img, uint64_t base);
/* Give back an encoding image_encoding() returned. NULL is a no-op. */
void image_encoding_done(struct image *img, struct encoding *e);

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
	uint8_t *spec;
	uint32_t spec_len;
	struct image *img;             /* latest capture (agent.lock) */
	int capturing;                 /* a capture is queued on the pool */
	uv_mutex_t cap_lock;           /* one capture at a time */
	uint64_t notified[AGENT_MANAGERS_MAX]; /* sequence told to each manager */
	uint32_t exit_told;            /* bit per manager: EXITED sent */
	uint64_t frozen_ms;            /* FROZEN since (monotonic; a RESOLVE is due
					* freeze_hold later) */
	int resolving;                 /* a RESOLVE is under way */
	/* the restart policy (proc.c): crashes are restarted here, from the
	 * newest checkpoint this agent holds */
	int restart;                   /* enum agent_restart, from the spec */
	int killed;                    /* the agent killed it (STOP, fence, shutdown,
					* an unadopted restore): not a crash */
	int restart_pending;           /* exited; restarted at restart_at */
	uint64_t restart_at;           /* monotonic ms */
	uint32_t restarts;             /* within the current window */
	uint64_t window_start;         /* monotonic ms: the window's first restart */
	int superseded;                /* a restarted instance replaced this entry */
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
	uint64_t acked;                /* highest heartbeat counter it acked */
	struct net_client *conn;       /* outbox thread only */
	int registered;
	uint64_t retry_at_ms;
	char name[PROTO_ID_MAX + 1];
};

struct agent_config {
	char listen[PROTO_ADDR_MAX + 1];
	char advertise[PROTO_ADDR_MAX + 1];
	char key[1024];
	char name[PROTO_ID_MAX + 1];
	char node_id[32];
	char log_level[16];
	char ready_file[1024];
	struct config_list managers;
	struct config_list programs;
	uint64_t area_capacity;
	uint64_t quota;
	uint64_t poll_ms;
	uint64_t capture_lag_ms;
	uint64_t freeze_timeout_ms;
	uint64_t restore_timeout_ms;
	uint64_t adopt_timeout_ms;
	uint64_t freeze_hold_ms;       /* frozen this long without THAW/STOP: RESOLVE */
	uint64_t io_timeout_ms;
	uint64_t heartbeat_ms;         /* UDP heartbeat interval */
	uint64_t lease_ms;             /* agent lease unless a manager sets a shorter one */
	uint64_t report_mem_available;  /* test hook: 0 = real MemAvailable */
	uint64_t report_cpu_permille;   /* test hook: 0 = real load; 1..1001 = value - 1 */
	char restart[16];              /* default restart policy */
	uint64_t restart_backoff_ms;   /* first back-off, doubled per restart */
	uint64_t max_restarts;         /* restarts within restart_window, then give up */
	uint64_t restart_window_ms;
};

struct agent {
	struct agent_config cfg;
	struct proto_key key;
	uint64_t node;
	char address[PROTO_ADDR_MAX + 1];
	uint8_t boot[PROTO_BOOT_SIZE];
	uint64_t mem_total;

	uv_loop_t *loop;
	uv_mutex_t lock;
	uv_cond_t wake;                /* outbox: something to send */
	struct aproc *procs;
	struct mgr_link mgrs[AGENT_MANAGERS_MAX];
	size_t mgr_count;
	struct cpu_window cpu;         /* loop writes, handlers read (lock) */
	int stopping;
	uv_thread_t outbox;

	/* lease (agent.lock): renewed by each HEARTBEAT_ACK, measured from the
	 * acked heartbeat's send time; 0 = never granted */
	uint64_t lease_ms;
	uint64_t lease_until;          /* monotonic ms */
	int fenced;                    /* programs were stopped for a lapsed lease */
	uint64_t lapses;               /* lease lapses since the start */
	uint64_t procs_gen;            /* rises at every change of the process table */
	int configured_started;        /* `run =` programs start under the first lease */
	uint64_t hb_counter;
	uint64_t hb_sent[64];          /* send time by counter % 64 */

	/* the highest incarnation run here per process id (agent.lock), kept
	 * after the program is gone: a restore of an older one is refused */
	struct { char id[PROTO_ID_MAX + 1]; uint64_t inc; } seen[256];
	size_t seen_count, seen_next;
};

/* Record that incarnation inc of id runs here (agent.lock held). */
void agent_seen(struct agent *a, const char *id, uint64_t inc);

/* main.c: start the `run =` programs (called once, under the first lease) */
void agent_start_configured(struct agent *a);

uint64_t agent_now_ms(void);       /* unix ms */
uint64_t agent_mono_ms(void);

/* proc.c */
int proc_launch(struct agent *a, const char *id, uint64_t incarnation,
		const uint8_t *spec, uint32_t spec_len, const uint8_t *image,
		size_t image_len, struct aproc **out, char *err, size_t errlen);
/* Capture the committed checkpoint if it is newer than the last capture.
 * Returns 0 (and a new reference in *out if out is not NULL) or an error. */
int proc_capture(struct agent *a, struct aproc *p, struct image **out);
void image_unref(struct agent *a, struct image *img);
struct aproc *proc_find(struct agent *a, const char *id); /* with a ref */
void proc_unref(struct agent *a, struct aproc *p);
void proc_kill(struct aproc *p, int sig);
void proc_reap(struct agent *a);   /* loop: waitpid every exited program */
void proc_free(struct aproc *p);
int agent_running_count(struct agent *a); /* with agent.lock held */

/* Decide, with agent.lock held, what a reaped program's exit means: a
 * restart here after a back-off, finished, failed for good, or gone
 * (fenced, killed). Sets p->outcome, p->reason, p->restart_pending. */
void proc_exit_decide(struct agent *a, struct aproc *p, uint64_t now, enum aproc_state was);
/* Loop: restart the programs whose back-off is over. */
void proc_restart_due(struct agent *a);
/* The report of every program (PROCS), with agent.lock held; returns the
 * count filled into out (PROTO_PROCS_MAX entries). */
uint16_t proc_report(struct agent *a, struct proto_agent_proc *out);
/* The whole PROCS message (node, boot, generation, the report in procs,
 * PROTO_PROCS_MAX entries); takes agent.lock. */
void proc_report_msg(struct agent *a, struct proto_agent_proc *procs, struct proto_procs *out);
/* Parse a restart policy name; -1 if unknown. */
int agent_restart_parse(const char *s);

/* handlers.c: decide for a program frozen too long (RESOLVE) */
void agent_resolve_frozen(struct agent *a, struct aproc *p);
/* handlers.c */
int agent_handle(void *ctx, struct net_client *c, const char *peer,
		 const struct proto_header *hdr, union proto_msg *msg);

/* agent.c */
void agent_wake_outbox(struct agent *a);
int agent_run(struct agent *a);

#endif
