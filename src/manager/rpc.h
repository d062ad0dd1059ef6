/*
 * rpc.h - everything the manager asks of agents and of the store, as two
 * tables of calls held by the manager (struct manager_rpc). The real ones
 * (agent_rpc.c, store_rpc.c) speak the wire protocol over net_client
 * connections; unit tests put fakes in their place, so the migration and
 * restore state machines run without processes or sockets.
 *
 * Every call is blocking with the manager's timeouts, and is made without
 * the manager's lock. A call returns 0 or a negative RTCMS_E* code; where
 * there is a why buffer it gets the peer's own words for a refusal (its
 * ERROR text), or the code's description.
 */
#ifndef RTCMS_MANAGER_RPC_H
#define RTCMS_MANAGER_RPC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "client/store_client.h"
#include "proto/msg.h"
#include "stream/stream_net.h"

struct net_client;

/* The connections one operation (a migration, a restore, a puller, the
 * lease thread) keeps between calls: the store's, reused and dropped
 * after a failure that may have left it mid-stream, and a restore's
 * target, held open from the RESTORE to the ADOPT (the target kills an
 * instance whose connection closes unadopted). Owned by the real calls;
 * fakes may leave them NULL. Zero-initialise; close with
 * manager_link_close(). */
struct rpc_link {
	struct net_client *store;
	struct net_client *target;
};

/* Close both connections of l (NULL ones are skipped). */
void manager_link_close(struct rpc_link *l);
/* Close the target's connection only (the target stops what it started). */
void manager_link_drop_target(struct rpc_link *l);
/* Close the store's connection (it may be mid-stream): the next call
 * opens a fresh one. */
void manager_link_drop_store(struct rpc_link *l);

/* One stream into a side of a relay (the store's PUT, a target's
 * RESTORE): sink is the side, its ops the rpc table's (rpc_store_ops.put,
 * rpc_agent_ops.restore), which find the rest with RPC_STREAM(). Made by
 * manager_rpc_put_sink() or manager_rpc_restore_sink(); freed with
 * manager_rpc_stream_clear(). */
struct rpc_stream {
	struct stream_sink sink;
	const struct manager_rpc *rpc;
	struct rpc_link *link;
	uint64_t sequence;             /* from begin: RESTORE_OK must name it */
	struct proto_put_ack ack;      /* the store's, after end (or if it had it) */
	char why[PROTO_TEXT_MAX + 1];  /* a target's failure, in its words */
	/* the real sides' stream module sinks */
	struct store_client_sink put;  /* the store writer on link->store */
	struct stream_relay restore;   /* RESTORE frames to link->target */
};
#define RPC_STREAM(s) ((struct rpc_stream *)(void *)((char *)(s) - offsetof(struct rpc_stream, sink)))

/* What to PULL from an agent: the newest checkpoint of an incarnation (as
 * a delta against base if the agent finds that worth it), or exactly
 * sequence. */
struct rpc_pull {
	const char *process;
	uint64_t incarnation;
	uint64_t sequence;             /* 0: the newest */
	uint64_t base;                 /* with sequence 0: a delta against it */
};

struct rpc_agent_ops {
	/* FREEZE: the program takes its final checkpoint and stops; *final
	 * gets its metadata (spec cleared). */
	int (*freeze)(void *ctx, const char *addr, const char *id, uint64_t inc,
		      struct proto_ckpt_meta *final, char *why, size_t whylen);
	/* THAW (a move failed: it goes on) and STOP (it moved: it goes). */
	int (*thaw)(void *ctx, const char *addr, const char *id, uint64_t inc, char *why,
		    size_t whylen);
	int (*stop)(void *ctx, const char *addr, const char *id, uint64_t inc, char *why,
		    size_t whylen);
	/* INFO within timeout_ms. */
	int (*info)(void *ctx, const char *addr, int timeout_ms, struct proto_info_reply *out);
	/* PROCS as a question: *holds if the agent has a live instance of id
	 * (running, restoring, frozen or restarting). */
	int (*holds)(void *ctx, const char *addr, const char *id, bool *holds);
	/* RUN: start a program there. */
	int (*run)(void *ctx, const char *addr, const struct proto_run *run,
		   struct proto_run_ok *ok, char *why, size_t whylen);
	/* PULL: the agent's stream, verified, into sink (stream_recv; a
	 * relay's); meta is filled before the sink begins (its spec is not
	 * valid after the call). Returns the source's result (0, or the
	 * failure of the request, the stream or the sink: relay_result()
	 * tells which). */
	int (*pull)(void *ctx, const char *addr, const struct rpc_pull *req,
		    struct proto_ckpt_meta *meta, struct stream_sink *sink);
	/* Open link->target to the agent at addr for a restore. */
	int (*target_open)(void *ctx, struct rpc_link *link, const char *addr);
	/* ADOPT on link->target (the restored instance runs as inc). */
	int (*adopt)(void *ctx, struct rpc_link *link, const char *id, uint64_t inc,
		     char *why, size_t whylen);
	/* The side of a RESTORE on link->target (struct rpc_stream): end
	 * sends PUT_END and waits until the program resumed. */
	const struct stream_sink_ops *restore;
};

struct rpc_store_ops {
	/* Open link->store if it is not open. */
	int (*open)(void *ctx, struct rpc_link *link);
	/* The metadata of a checkpoint (GET meta_only; sequence 0: the
	 * latest, incarnation 0: any): RTCMS_ENOENT if it lacks it. */
	int (*meta)(void *ctx, struct rpc_link *link, const char *id, uint64_t inc,
		    uint64_t seq, struct proto_ckpt_meta *out);
	/* GET: the stream into sink, as agent pull. */
	int (*get)(void *ctx, struct rpc_link *link, const char *id, uint64_t inc,
		   uint64_t seq, struct proto_ckpt_meta *meta, struct stream_sink *sink);
	/* LIST one page into entries (PROTO_LIST_MAX): *count, *more. */
	int (*list)(void *ctx, struct rpc_link *link, const struct proto_list *q,
		    struct proto_list_entry *entries, uint16_t *count, bool *more,
		    char *why, size_t whylen);
	/* DELETE every checkpoint of id (its own connection). */
	int (*remove)(void *ctx, const char *id, char *why, size_t whylen);
	/* CLAIM id for this manager (claim_lease): *ok; for RTCMS_ECLAIMED
	 * *held_until is the holder's lease end (unix ms). */
	int (*claim)(void *ctx, struct rpc_link *link, const char *id, uint8_t flags,
		     struct proto_claim_ok *ok, uint64_t *held_until, char *why,
		     size_t whylen);
	/* COMMIT a claim with the new node: *new_inc, the new incarnation. */
	int (*commit)(void *ctx, struct rpc_link *link, const char *id, uint64_t claim_id,
		      uint64_t node, uint64_t *new_inc);
	int (*release)(void *ctx, struct rpc_link *link, const char *id, uint64_t claim_id);
	/* FENCE node (its own connection): *state (enum proto_fence_state),
	 * *wait_ms; RTCMS_EBUSY with why while another manager hears it. */
	int (*fence)(void *ctx, uint64_t node, uint8_t *state, uint32_t *wait_ms, char *why,
		     size_t whylen);
	/* DATAKEY (its own connection): the cluster's check value of data key
	 * id (*recorded), recording kcv if it has none. NULL: not checked. */
	int (*datakey)(void *ctx, uint32_t id, uint64_t kcv, uint64_t *recorded, char *why,
		       size_t whylen);
	/* MLEASE on link->store (opened within timeout_ms if needed). */
	int (*mlease)(void *ctx, struct rpc_link *link, int timeout_ms,
		      const struct proto_mlease *q, struct proto_mlease_ok *ok);
	/* The side of a PUT on link->store (struct rpc_stream): done once the
	 * store says it holds it already (ack set); end waits for PUT_ACK. */
	const struct stream_sink_ops *put;
};

struct manager_rpc {
	const struct rpc_agent_ops *agent;
	const struct rpc_store_ops *store;
	void *ctx;                     /* the first argument of every call */
};

/* The real calls (ctx: the struct manager, for its key, name, store
 * address and timeouts). */
extern const struct rpc_agent_ops agent_rpc_net;
extern const struct rpc_store_ops store_rpc_net;

/* st as the side of rpc's PUT on link (&st->sink). */
void manager_rpc_put_sink(const struct manager_rpc *rpc, struct rpc_link *link,
			  struct rpc_stream *st);
/* st as the side of rpc's RESTORE on link->target (&st->sink). */
void manager_rpc_restore_sink(const struct manager_rpc *rpc, struct rpc_link *link,
			      struct rpc_stream *st);
/* Free what st kept (the real sides' metadata). */
void manager_rpc_stream_clear(struct rpc_stream *st);

#endif
