/*
 * msg.h - typed payloads of rtcms frames: encode and decode.
 *
 * Payload encoding: big-endian integers; a "str" is u16 length + bytes
 * (no NUL or other control characters 0x01..0x1f, 0x7f; each field has its own cap);
 * a "blob" is u32 length + bytes; a hash is 32 raw bytes; CHUNK data is
 * the rest of the payload. Decoders copy short strings into fixed arrays
 * (always NUL-terminated) and point blobs and chunk data into the input
 * buffer (borrowed: valid as long as the buffer is).
 *
 * Decoders are pure: proto_msg_decode(type, buf, len, out) returns len on
 * success, or RTCMS_EPROTO (malformed, trailing bytes, bad string),
 * RTCMS_ETOOBIG (a field over its cap). Encoders return the payload length
 * or RTCMS_ETOOBIG if cap is too small or a field is over its cap, and
 * RTCMS_EINVAL for a field a decoder would refuse.
 */
#ifndef RTCMS_PROTO_MSG_H
#define RTCMS_PROTO_MSG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <sodium.h>

#include "frame.h"

#define PROTO_HASH_SIZE     32    /* BLAKE2b-256 */
#define PROTO_NONCE_SIZE    32    /* handshake nonce */
#define PROTO_ID_MAX        128   /* process id, claimant, node/peer name */
#define PROTO_TEXT_MAX      512   /* error message, paths in replies */
#define PROTO_SPEC_MAX      16384 /* program spec blob */
#define PROTO_SPEC_PLAIN_MAX (PROTO_SPEC_MAX - 64) /* an encoded spec: room to
						     * be sealed (stream/chunk.h) */
#define PROTO_LIST_MAX      256   /* entries per LIST_REPLY page */
#define PROTO_MIRRORS_MAX   16    /* mirrors reported by SCRUB/STATUS */
#define PROTO_ADDR_MAX      64    /* "host:port" */
#define PROTO_BOOT_SIZE     16    /* per-boot random id of an agent */
#define PROTO_NODES_MAX     64    /* nodes per MSTATUS_REPLY */
#define PROTO_PROCS_MAX     256   /* processes per MSTATUS_REPLY and PROCS */
#define PROTO_MANAGERS_MAX  16    /* managers named in an MLEASE_OK */
#define PROTO_KEYS_MAX      256   /* data key ids per KEYS_REPLY page */

enum proto_type {
	/* handshake (plaintext, MAC under the cluster key) */
	PROTO_HELLO        = 0x01,
	PROTO_HELLO_ACK    = 0x02,
	/* generic replies */
	PROTO_ERROR        = 0x03,
	PROTO_OK           = 0x04,
	/* store */
	PROTO_PUT_BEGIN    = 0x10,
	PROTO_PUT_READY    = 0x11,
	PROTO_CHUNK        = 0x12,
	PROTO_PUT_END      = 0x13,
	PROTO_PUT_ACK      = 0x14,
	PROTO_GET          = 0x15,
	PROTO_GET_META     = 0x16,
	PROTO_GET_END      = 0x17,
	PROTO_LIST         = 0x18,
	PROTO_LIST_REPLY   = 0x19,
	PROTO_DELETE       = 0x1A,
	PROTO_CLAIM        = 0x1B,
	PROTO_CLAIM_OK     = 0x1C,
	PROTO_COMMIT       = 0x1D,
	PROTO_COMMIT_OK    = 0x1E,
	PROTO_RELEASE      = 0x1F,
	PROTO_SCRUB        = 0x20,
	PROTO_SCRUB_REPLY  = 0x21,
	PROTO_STATUS       = 0x22,
	PROTO_STATUS_REPLY = 0x23,
	PROTO_MLEASE       = 0x24, /* manager -> store: renew the manager's lease */
	PROTO_MLEASE_OK    = 0x25, /* its answer: lease, fenced nodes, live managers */
	PROTO_FENCE        = 0x26, /* manager -> store: record a node as failed */
	PROTO_FENCE_OK     = 0x27, /* its answer: how far the fence has taken hold */
	PROTO_DATAKEY      = 0x28, /* manager -> store: a data key's check value */
	PROTO_DATAKEY_OK   = 0x29, /* its answer: the cluster's check value of it */
	PROTO_KEYS         = 0x2A, /* -> store: chunks per data key id (key ids from) */
	PROTO_KEYS_REPLY   = 0x2B, /* its answer: per key id, chunks and bytes */
	/* manager and agent */
	PROTO_REGISTER     = 0x40, /* thesis op 0: agent -> manager */
	PROTO_REGISTER_OK  = 0x41,
	PROTO_CKPT_NOTIFY  = 0x42, /* thesis op 1: agent -> manager (meta) */
	PROTO_MIGRATE      = 0x43, /* thesis op 2: agent/operator -> manager */
	PROTO_MIGRATE_OK   = 0x44,
	PROTO_RUN          = 0x45, /* operator -> manager -> agent: start a program */
	PROTO_RUN_OK       = 0x46,
	PROTO_DRAIN        = 0x47, /* operator -> manager: move every program off a node */
	PROTO_DRAIN_OK     = 0x48,
	PROTO_MSTATUS      = 0x49, /* operator -> manager: nodes, processes, store (empty) */
	PROTO_MSTATUS_REPLY = 0x4A,
	PROTO_EXITED       = 0x4B, /* agent -> manager: a program ended by itself */
	PROTO_NODE_FAILED  = 0x4C, /* operator -> manager: a node is known to be down */
	PROTO_RESOLVE      = 0x4D, /* agent -> manager: a program frozen too long: go on or stop? */
	PROTO_RESOLVE_OK   = 0x4E, /* its answer: arg = enum proto_verdict */
	PROTO_PROCS        = 0x4F, /* agent -> manager: every program it holds, and how */
	PROTO_INFO         = 0x50, /* manager -> agent info interface (empty) */
	PROTO_INFO_REPLY   = 0x51,
	PROTO_RESTORE      = 0x52, /* manager -> agent: meta, then CHUNKs, PUT_END */
	PROTO_RESTORE_OK   = 0x53,
	PROTO_PULL         = 0x54, /* manager -> agent (a GET): GET_META, CHUNKs, GET_END */
	PROTO_FREEZE       = 0x55, /* manager -> agent: final checkpoint, then freeze */
	PROTO_FROZEN       = 0x56, /* its reply: the final checkpoint's metadata */
	PROTO_THAW         = 0x57, /* manager -> agent: the move failed, go on */
	PROTO_STOP         = 0x58, /* manager -> agent: the move is committed, kill the old instance */
	PROTO_ADOPT        = 0x59, /* manager -> target agent: the restore is committed, new incarnation */
	PROTO_CORDON       = 0x5A, /* operator -> manager: no new programs on a node */
	PROTO_UNCORDON     = 0x5B, /* operator -> manager: the node takes programs again */
	PROTO_FORGET       = 0x5C, /* operator -> manager: drop a dead node or a program that ended */
	PROTO_FORGET_OK    = 0x5D, /* its answer: what was forgotten */
	PROTO_HEARTBEAT    = 0x60, /* UDP, agent -> manager, plain + cluster-key MAC */
	PROTO_HEARTBEAT_ACK = 0x61, /* UDP, manager -> agent: renews the agent's lease */
};

/* Roles announced in HELLO. */
enum proto_role {
	PROTO_ROLE_CLI = 1,
	PROTO_ROLE_AGENT = 2,
	PROTO_ROLE_MANAGER = 3,
	PROTO_ROLE_STORE = 4,
};

/* Name of a message type ("PUT_BEGIN"), or NULL if the type is unknown. */
const char *proto_type_name(uint8_t type);

/* True if type is defined in this version (including reserved ones). */
bool proto_type_known(uint8_t type);

/* Largest payload a frame of this type may carry (<= PROTO_MAX_PAYLOAD). */
uint32_t proto_type_max_payload(uint8_t type);
/* The head of a type whose frames may carry a raw tail (PROTO_F_RAW,
 * frame.h): PROTO_CHUNK_HEAD for CHUNK; 0 for every other type. */
size_t proto_type_raw_head(uint8_t type);

struct proto_hello {          /* HELLO and HELLO_ACK */
	uint8_t nonce[PROTO_NONCE_SIZE];   /* sender's fresh random nonce */
	uint8_t echo[PROTO_NONCE_SIZE];    /* HELLO_ACK: the client's nonce; HELLO: zero */
	uint8_t role;                      /* enum proto_role */
	char name[PROTO_ID_MAX + 1];       /* sender's name, for logs */
};

struct proto_error {          /* ERROR */
	int32_t code;                      /* negative RTCMS_E* */
	uint64_t detail;                   /* ECLAIMED: lease expiry (unix ms); EFENCED: current incarnation */
	char who[PROTO_ID_MAX + 1];        /* ECLAIMED: the current claimant */
	char text[PROTO_TEXT_MAX + 1];     /* human-readable message */
};

/* Checkpoint metadata: PUT_BEGIN and GET_META. */
struct proto_ckpt_meta {
	char process[PROTO_ID_MAX + 1];    /* process id: [A-Za-z0-9._:-], 1..128 */
	uint64_t incarnation;              /* >= 1 */
	uint64_t sequence;                 /* >= 1 */
	uint64_t node;                     /* origin node id */
	uint64_t size;                     /* image size in bytes */
	uint64_t created_ms;               /* unix ms when the checkpoint was taken */
	uint32_t chunk_count;              /* number of CHUNK frames that follow */
	uint8_t hash[PROTO_HASH_SIZE];     /* image hash (proto_image_hash) */
	uint64_t base;                     /* 0: a full image; else a delta image
					    * against this sequence (same
					    * incarnation, < sequence) */
	uint64_t full_size;                /* size of the full image (0 or size
					    * when base is 0) */
	uint8_t state_hash[PROTO_HASH_SIZE]; /* of the full state (delta.h);
					      * zeros: not given */
	const uint8_t *spec;               /* program spec blob (borrowed) */
	uint32_t spec_len;                 /* <= PROTO_SPEC_MAX */
};

#define PROTO_CHUNK_TAG 16      /* a sealed chunk is its plaintext + this */
#define PROTO_CHUNK_SUM 16      /* XXH3-128 of a sealed chunk's bytes */
#define PROTO_CHUNK_MAC 16      /* Poly1305 of a sealed chunk's bytes */
/* A CHUNK's head: what precedes its data (offset, key id, id, sum, MAC);
 * a sealed chunk's frame seals only this (a raw tail, frame.h) */
#define PROTO_CHUNK_HEAD (8 + 4 + PROTO_HASH_SIZE + PROTO_CHUNK_SUM + PROTO_CHUNK_MAC)

struct proto_chunk {          /* CHUNK */
	uint64_t offset;                   /* byte offset in the image */
	uint8_t hash[PROTO_HASH_SIZE];     /* the chunk's id: BLAKE2b-256 of the
					    * data (key 0), else the keyed id of
					    * its plaintext (stream/chunk.h) */
	const uint8_t *data;               /* borrowed: len bytes (plain, or
					    * opened), or len + PROTO_CHUNK_TAG
					    * sealed bytes */
	uint32_t len;                      /* 1..PROTO_MAX_CHUNK: its plaintext */
	uint32_t key_id;                   /* 0: plain; else sealed under this
					    * data key */
	uint8_t sum[PROTO_CHUNK_SUM];      /* sealed: the checksum of data */
	uint8_t mac[PROTO_CHUNK_MAC];      /* sealed, in a PUT: its source's MAC
					    * of data for the store (chunk.h);
					    * zeros elsewhere */
	bool opened;                       /* sealed, but data is its plaintext:
					    * a receiver opened it (never sent) */
};

/* A CHUNK's head, the PROTO_CHUNK_HEAD bytes before its data, into head:
 * returns the length of the data that follows it on the wire, or 0 for a
 * chunk that cannot be sent (a bad length, or opened). */
size_t proto_chunk_head_encode(const struct proto_chunk *c, uint8_t head[PROTO_CHUNK_HEAD]);

struct proto_put_end {        /* PUT_END */
	uint32_t chunk_count;
};

struct proto_put_ack {        /* PUT_ACK */
	char process[PROTO_ID_MAX + 1];
	uint64_t incarnation;
	uint64_t sequence;
	uint64_t size;
	uint8_t hash[PROTO_HASH_SIZE];
	uint8_t copies;                    /* mirrors that hold it durably */
	uint8_t existed;                   /* 1 if it was already stored (idempotent PUT) */
	uint32_t depth;                    /* deltas between it and a full image
					    * (0: it is full) */
};

struct proto_get {            /* GET */
	char process[PROTO_ID_MAX + 1];
	uint64_t incarnation;              /* 0 = any */
	uint64_t sequence;                 /* 0 = latest */
	uint8_t meta_only;                 /* 1 = reply GET_META only, no data */
	uint64_t base;                     /* PULL: a delta against this sequence
					    * is welcome (0 = full); GET: 0 */
};

struct proto_get_end {        /* GET_END */
	uint32_t chunk_count;
	uint32_t repaired;                 /* bad copies repaired while reading */
};

struct proto_list {           /* LIST */
	uint64_t node;                     /* 0 = any node */
	char process[PROTO_ID_MAX + 1];    /* "" = any process */
	uint32_t offset;                   /* page start */
	uint16_t limit;                    /* page size, 1..PROTO_LIST_MAX */
};

struct proto_list_entry {
	char process[PROTO_ID_MAX + 1];
	uint64_t incarnation;
	uint64_t sequence;
	uint64_t node;
	uint64_t size;
	uint64_t created_ms;
	uint8_t hash[PROTO_HASH_SIZE];
	uint8_t claimed;                   /* 1 if pinned by an open claim */
};

struct proto_list_reply {     /* LIST_REPLY; more is the PROTO_F_MORE flag */
	uint16_t count;
	struct proto_list_entry *entries;  /* caller-provided array, PROTO_LIST_MAX long */
};

struct proto_delete {         /* DELETE */
	char process[PROTO_ID_MAX + 1];
	uint64_t incarnation;              /* 0 with sequence 0: every checkpoint of process */
	uint64_t sequence;
};

/* CLAIM flags */
enum {
	/* the program's node gave up restarting it: the store allows one
	 * such move per program; another is refused (ESTATE): it failed */
	PROTO_CLAIM_F_GAVE_UP = 0x01,
};

struct proto_claim {          /* CLAIM */
	char process[PROTO_ID_MAX + 1];
	char claimant[PROTO_ID_MAX + 1];
	uint32_t lease_ms;                 /* 1..3600000 */
	uint8_t flags;                     /* PROTO_CLAIM_F_* */
};

struct proto_claim_ok {       /* CLAIM_OK */
	char process[PROTO_ID_MAX + 1];
	uint64_t claim_id;
	uint64_t incarnation;              /* incarnation of the claimed checkpoint */
	uint64_t sequence;                 /* sequence of the claimed checkpoint */
	uint64_t node;                     /* node the process is recorded on */
	uint64_t expires_ms;               /* unix ms */
};

struct proto_commit {         /* COMMIT */
	char process[PROTO_ID_MAX + 1];
	uint64_t claim_id;
	uint64_t new_node;
};

struct proto_commit_ok {      /* COMMIT_OK */
	char process[PROTO_ID_MAX + 1];
	uint64_t incarnation;              /* the new incarnation */
	uint64_t node;
};

struct proto_release {        /* RELEASE */
	char process[PROTO_ID_MAX + 1];
	uint64_t claim_id;
};

struct proto_scrub {          /* SCRUB */
	uint8_t repair;
};

struct proto_mirror_report {
	char path[PROTO_TEXT_MAX + 1];
	uint8_t online;
	uint64_t chunks;                   /* chunk files checked */
	uint64_t bytes;                    /* bytes verified */
	uint32_t missing;
	uint32_t corrupt;
	uint32_t repaired;
};

struct proto_scrub_reply {    /* SCRUB_REPLY and STATUS_REPLY */
	uint64_t processes;
	uint64_t checkpoints;
	uint64_t chunks;                   /* distinct chunks referenced */
	uint64_t bytes;                    /* distinct chunk bytes */
	uint32_t unrepairable;             /* chunks with no good copy anywhere */
	uint8_t mirror_count;
	struct proto_mirror_report mirrors[PROTO_MIRRORS_MAX];
};

struct proto_register {       /* REGISTER: thesis op 0, "DSM establishment" */
	uint64_t node;                     /* node id (from the MAC unless configured) */
	char name[PROTO_ID_MAX + 1];       /* agent name */
	char address[PROTO_ADDR_MAX + 1];  /* agent's TCP interface, host:port */
	uint64_t area_capacity;            /* checkpoint area bytes per program */
	uint64_t mem_total;                /* node RAM */
	uint32_t quota_max;                /* protected programs the node takes */
	uint8_t boot[PROTO_BOOT_SIZE];     /* random per agent start */
	uint32_t data_key_id;              /* the key it seals under (0: none) */
	uint64_t data_kcv;                 /* its check value (big-endian bytes) */
};

struct proto_register_ok {    /* REGISTER_OK */
	char name[PROTO_ID_MAX + 1];       /* manager name */
	uint64_t epoch;                    /* manager epoch */
	uint32_t heartbeat_ms;             /* heartbeat interval the manager wants */
	uint32_t lease_ms;                 /* agent lease (self-fencing) */
};

struct proto_migrate {        /* MIGRATE: thesis op 2 */
	char process[PROTO_ID_MAX + 1];
	uint64_t target;                   /* node id, 0 = best by placement */
	uint8_t allow_same;                /* 1: the current node may be chosen */
};

struct proto_migrate_ok {     /* MIGRATE_OK */
	char process[PROTO_ID_MAX + 1];
	uint64_t from;
	uint64_t to;
	uint64_t incarnation;              /* the new one */
	uint64_t sequence;                 /* the checkpoint it continued from */
	uint32_t millis;                   /* request to committed: the program resumed on
					    * the target, adopted, the old one stopped */
};

struct proto_info_reply {     /* INFO_REPLY: the agent's info interface */
	uint64_t node;
	uint64_t mem_total;
	uint64_t mem_available;            /* MemAvailable */
	uint16_t cpu_load_permille;        /* 0..1000 over a sliding window */
	uint32_t quota_max;
	uint32_t quota_free;
	uint64_t area_capacity;
	uint64_t area_used;
	uint32_t processes;
};

struct proto_restore_ok {     /* RESTORE_OK: restored and resumed */
	char process[PROTO_ID_MAX + 1];
	uint64_t incarnation;
	uint64_t sequence;
	uint32_t pid;
};

struct proto_heartbeat {      /* HEARTBEAT and HEARTBEAT_ACK (UDP; the ack echoes
			       * node, boot and counter, sent_ms is the manager's) */
	uint64_t node;
	uint8_t boot[PROTO_BOOT_SIZE];
	uint64_t counter;                  /* rises by 1 per heartbeat of this boot */
	uint64_t sent_ms;                  /* sender's unix ms */
	uint32_t processes;
};

/* Answer to RESOLVE (in proto_proc_ref.arg). */
enum proto_verdict {
	PROTO_VERDICT_STOP = 1,            /* it runs elsewhere now: kill this instance */
	PROTO_VERDICT_THAW = 2,            /* the move never committed: go on */
	PROTO_VERDICT_WAIT = 3,            /* a move is under way: ask again later */
};

/* FREEZE, THAW, STOP, ADOPT (manager -> agent), EXITED and RESOLVE (agent ->
 * manager), RESOLVE_OK. */
struct proto_proc_ref {
	char process[PROTO_ID_MAX + 1];
	uint64_t incarnation;              /* the instance meant; ADOPT: the new incarnation */
	uint32_t arg;                      /* FREEZE: ms to wait for the program's own
					    * checkpoint; EXITED: wait status; else 0 */
};

struct proto_run {            /* RUN */
	char process[PROTO_ID_MAX + 1];    /* new process id */
	uint64_t node;                     /* manager: 0 = best by placement; agent: its own id */
	const uint8_t *spec;               /* program spec blob (proto/spec.h), borrowed */
	uint32_t spec_len;                 /* 1..PROTO_SPEC_MAX */
};

struct proto_run_ok {         /* RUN_OK */
	char process[PROTO_ID_MAX + 1];
	uint64_t node;
	uint64_t incarnation;
	uint32_t pid;
};

struct proto_drain {          /* DRAIN, NODE_FAILED, CORDON and UNCORDON */
	uint64_t node;
};

struct proto_drain_ok {       /* DRAIN_OK */
	uint32_t moved;
	uint32_t failed;
};

/* What FORGET names. */
enum proto_forget_kind {
	PROTO_FORGET_ANY = 0,              /* a known node if name is one's id, else a process */
	PROTO_FORGET_NODE = 1,
	PROTO_FORGET_PROCESS = 2,
};

struct proto_forget {         /* FORGET: operator -> manager */
	uint8_t kind;                      /* enum proto_forget_kind */
	char name[PROTO_ID_MAX + 1];       /* a node id (hex) or a process id */
};

struct proto_forget_ok {      /* FORGET_OK */
	uint8_t kind;                      /* NODE or PROCESS: what was forgotten */
	uint64_t node;                     /* NODE: its id */
	char process[PROTO_ID_MAX + 1];    /* PROCESS: its id */
	uint8_t deleted;                   /* PROCESS: 1 if the store held checkpoints of it
					    * and deleted them, 0 if it held none */
};

enum proto_proc_state {
	PROTO_PS_RUNNING = 1,
	PROTO_PS_MIGRATING = 2,
	PROTO_PS_EXITED = 3,
	PROTO_PS_UNKNOWN = 4,              /* lost: its node failed before any checkpoint
					    * was durable */
	PROTO_PS_WAITING = 5,              /* its node failed: to be restored, waiting for
					    * a node with room */
	PROTO_PS_STORED = 6,               /* known from the store only (a manager that
					    * started): no agent has reported it yet */
	PROTO_PS_FAILED = 7,               /* crashed for good (restart policy): not
					    * restored until it is run again */
};

struct proto_node_entry {
	uint64_t node;
	char name[PROTO_ID_MAX + 1];
	char address[PROTO_ADDR_MAX + 1];
	uint8_t alive;
	uint8_t cordoned;                  /* takes no new programs (rtcmsctl cordon, drain) */
	uint64_t seen_ago_ms;              /* since the agent was last heard */
	uint64_t mem_total;
	uint64_t mem_available;
	uint16_t cpu_load_permille;
	uint32_t quota_max;
	uint32_t quota_free;
	uint64_t area_used;
	uint32_t processes;
};

struct proto_proc_entry {
	char process[PROTO_ID_MAX + 1];
	uint64_t node;
	uint64_t incarnation;
	uint64_t durable;                  /* latest sequence the store acknowledged (0 = none) */
	uint64_t durable_age_ms;           /* since it became durable */
	uint64_t notified;                 /* latest sequence the agent announced */
	uint64_t size;                     /* image bytes of the durable checkpoint */
	uint8_t state;                     /* enum proto_proc_state */
	uint32_t restarts;                 /* crash restarts on its node (its agent's count) */
	uint64_t confirmed_ago_ms;         /* since an agent last reported it (UINT64_MAX: never) */
	char reason[PROTO_ID_MAX + 1];     /* its last exit, restart or failure ("" = none) */
};

struct proto_mstatus_reply {  /* MSTATUS_REPLY */
	char name[PROTO_ID_MAX + 1];       /* manager */
	char store[PROTO_ADDR_MAX + 1];    /* store address */
	uint8_t store_up;
	uint32_t pending;                  /* checkpoints announced, not yet durable */
	char store_error[PROTO_TEXT_MAX + 1];
	uint16_t node_count;
	struct proto_node_entry *nodes;    /* caller-provided, PROTO_NODES_MAX long */
	uint16_t proc_count;
	struct proto_proc_entry *procs;    /* caller-provided, PROTO_PROCS_MAX long */
};

/*
 * Manager leases and node fences (store side, docs/architecture.md "The
 * fence"). A manager answers heartbeats only while it holds a lease from
 * the store and never for a node the store lists as fenced.
 */
struct proto_mlease {         /* MLEASE: manager -> store */
	char name[PROTO_ID_MAX + 1];       /* the manager (its claimant name) */
	uint32_t lease_ms;                 /* lease asked for (the store may cap it) */
	uint64_t fence_gen;                /* the newest fence generation it applied */
	uint16_t alive_count;              /* nodes it hears (answers) now ... */
	uint64_t alive[PROTO_NODES_MAX];   /* ... their ids */
};

enum proto_fence_state {
	PROTO_FENCE_PENDING = 1,           /* some manager may still answer the node */
	PROTO_FENCE_EFFECTIVE = 2,         /* no manager answers it; its lease runs out */
	PROTO_FENCE_COMPLETE = 3,          /* its lease has lapsed: its programs are gone */
};

struct proto_fence_entry {
	uint64_t node;
	uint64_t gen;                      /* the fence's generation */
	uint8_t state;                     /* enum proto_fence_state */
};

struct proto_mlease_ok {      /* MLEASE_OK */
	uint32_t lease_ms;                 /* granted, from the request's send time */
	uint64_t fence_gen;                /* newest fence generation */
	uint16_t fence_count;
	struct proto_fence_entry fences[PROTO_NODES_MAX];
	uint16_t manager_count;            /* managers holding a lease, this one included */
	char managers[PROTO_MANAGERS_MAX][PROTO_ID_MAX + 1];
};

struct proto_fence {          /* FENCE: manager -> store */
	uint64_t node;
	char by[PROTO_ID_MAX + 1];         /* the manager asking */
	uint32_t hold_ms;                  /* effective this long before complete: the
					    * agent lease plus the fence margin */
};

struct proto_datakey {        /* DATAKEY, DATAKEY_OK: manager <-> store */
	uint32_t key_id;                   /* 1.. */
	uint64_t kcv;                      /* asked: the agent's; answered: the one
					    * the cluster recorded first */
	uint8_t first;                     /* DATAKEY_OK: 1 = recorded by this call */
};

struct proto_keys {           /* KEYS: -> store */
	uint32_t from;                     /* key ids from this one up (0: all) */
};

struct proto_key_count {
	uint32_t key_id;                   /* 0: plain chunks */
	uint64_t chunks;                   /* distinct chunks retained checkpoints reference */
	uint64_t bytes;                    /* their size (plaintext) */
};

struct proto_keys_reply {     /* KEYS_REPLY: store -> (flag MORE: ask again) */
	uint64_t unknown_chunks;           /* chunks whose key id is not recorded */
	uint64_t unknown_bytes;
	uint16_t count;                    /* <= PROTO_KEYS_MAX, key ids ascending */
	struct proto_key_count keys[PROTO_KEYS_MAX];
};

struct proto_fence_ok {       /* FENCE_OK */
	uint64_t node;
	uint64_t gen;
	uint8_t state;                     /* enum proto_fence_state */
	uint32_t wait_ms;                  /* PENDING/EFFECTIVE: ms until the next state at most */
};

/* The state of one program as its agent reports it (PROCS). */
enum proto_agent_proc_state {
	PROTO_AP_RUNNING = 1,
	PROTO_AP_RESTORING = 2,            /* started for a restore, not adopted yet */
	PROTO_AP_FROZEN = 3,               /* stopped for a migration */
	PROTO_AP_RESTARTING = 4,           /* crashed: restarted here after a back-off */
	PROTO_AP_FINISHED = 5,             /* exited with status 0 */
	PROTO_AP_GONE = 6,                 /* fenced or killed: not here any more */
	PROTO_AP_FAILED = 7,               /* crashed and not restarted here (restart
					    * policy never, or it gave up: reason) */
};

struct proto_agent_proc {
	char process[PROTO_ID_MAX + 1];
	uint64_t incarnation;
	uint64_t sequence;                 /* newest checkpoint captured */
	uint32_t pid;                      /* 0 while not running */
	uint8_t state;                     /* enum proto_agent_proc_state */
	uint32_t restarts;                 /* restarts here within the window */
	char reason[PROTO_ID_MAX + 1];     /* the last exit or restart, for operators */
};

struct proto_procs {          /* PROCS: agent -> manager */
	uint64_t node;
	uint8_t boot[PROTO_BOOT_SIZE];
	uint64_t generation;               /* rises at every change of the agent's table */
	uint16_t count;
	struct proto_agent_proc *procs;    /* encode: borrowed; decode: caller-provided,
					    * PROTO_PROCS_MAX long */
};

/* One decoded payload. Which member is valid depends on the frame type;
 * OK, PUT_READY, STATUS, INFO and MSTATUS carry no payload. */
union proto_msg {
	struct proto_hello hello;
	struct proto_error error;
	struct proto_ckpt_meta meta;
	struct proto_chunk chunk;
	struct proto_put_end put_end;
	struct proto_put_ack put_ack;
	struct proto_get get;
	struct proto_get_end get_end;
	struct proto_list list;
	struct proto_list_reply list_reply;
	struct proto_delete del;
	struct proto_claim claim;
	struct proto_claim_ok claim_ok;
	struct proto_commit commit;
	struct proto_commit_ok commit_ok;
	struct proto_release release;
	struct proto_scrub scrub;
	struct proto_scrub_reply scrub_reply;
	struct proto_register reg;
	struct proto_register_ok reg_ok;
	struct proto_migrate migrate;
	struct proto_migrate_ok migrate_ok;
	struct proto_info_reply info;
	struct proto_restore_ok restore_ok;
	struct proto_heartbeat heartbeat;
	struct proto_proc_ref ref;
	struct proto_run run;
	struct proto_run_ok run_ok;
	struct proto_drain drain;
	struct proto_drain_ok drain_ok;
	struct proto_forget forget;
	struct proto_forget_ok forget_ok;
	struct proto_mstatus_reply mstatus;
	struct proto_mlease mlease;
	struct proto_mlease_ok mlease_ok;
	struct proto_fence fence;
	struct proto_fence_ok fence_ok;
	struct proto_datakey datakey;
	struct proto_keys keys;
	struct proto_keys_reply keys_reply;
	struct proto_procs procs;
	/* CKPT_NOTIFY, RESTORE and FROZEN use meta; PULL uses get */
};

/*
 * Encode msg as the payload of a frame of the given type into buf.
 * Returns the payload length or a negative RTCMS_E* code.
 */
int proto_msg_encode(uint8_t type, const union proto_msg *msg, uint8_t *buf,
		     size_t cap);

/*
 * Decode the payload of a frame of the given type. For LIST_REPLY the
 * caller sets out->list_reply.entries to an array of PROTO_LIST_MAX
 * entries before calling; for MSTATUS_REPLY out->mstatus.nodes and .procs
 * to arrays of PROTO_NODES_MAX and PROTO_PROCS_MAX entries; for PROCS
 * out->procs.procs to an array of PROTO_PROCS_MAX entries. Returns len or a negative RTCMS_E* code.
 */
int proto_msg_decode(uint8_t type, const uint8_t *buf, size_t len,
		     union proto_msg *out);

/* True if s (NUL-terminated) is a valid process id. */
bool proto_process_id_valid(const char *s);

/*
 * Image hash: BLAKE2b-256 of "rtcms-image-v1" || be64(size) || for each
 * chunk in offset order: be64(offset) || be32(len) || chunk hash.
 * Chunks must tile [0, size) without gap or overlap. Incremental use:
 * proto_image_hash_init/update/final.
 */
struct proto_image_hash {
	crypto_generichash_state state;
	uint64_t size;
	uint64_t next_offset;
};
void proto_image_hash_init(struct proto_image_hash *h, uint64_t size);
/* Returns RTCMS_EPROTO if offset is not where the previous chunk ended. */
int proto_image_hash_update(struct proto_image_hash *h, uint64_t offset,
			    uint32_t len, const uint8_t hash[PROTO_HASH_SIZE]);
/* Returns RTCMS_EPROTO if the chunks did not reach size. */
int proto_image_hash_final(struct proto_image_hash *h,
			   uint8_t out[PROTO_HASH_SIZE]);

/* BLAKE2b-256 of a chunk of data. */
void proto_chunk_hash(const uint8_t *data, size_t len,
		      uint8_t out[PROTO_HASH_SIZE]);

#endif
