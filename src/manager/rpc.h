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

#include "proto/msg.h"
#include "relay.h"

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

/* One stream into a sink (the store's PUT, a target's RESTORE): the sink
 * ctx of a relay_sink built by manager_rpc_put_sink() or
 * manager_rpc_restore_sink(). */
struct rpc_stream {
	const struct manager_rpc *rpc;
	struct rpc_link *link;
	uint64_t sequence;             /* from begin: RESTORE_OK must name it */
	struct proto_put_ack ack;      /* the store's, after end */
	char why[PROTO_TEXT_MAX + 1];  /* a target's failure, in its words */
};

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
	/* PULL: the agent's stream goes chunk by chunk into relay_chunk(r);
	 * meta is filled before the first chunk. Returns the source's result
	 * (relay_result() tells what stopped it). */
	int (*pull)(void *ctx, const char *addr, const struct rpc_pull *req,
		    struct proto_ckpt_meta *meta, struct relay *r);
	/* Open link->target to the agent at addr for a restore. */
	int (*target_open)(void *ctx, struct rpc_link *link, const char *addr);
	/* ADOPT on link->target (the restored instance runs as inc). */
	int (*adopt)(void *ctx, struct rpc_link *link, const char *id, uint64_t inc,
		     char *why, size_t whylen);
	/* The sink of a RESTORE on link->target (ctx: struct rpc_stream):
	 * end sends PUT_END and waits until the program resumed. */
	const struct relay_sink_ops *restore;
};

struct rpc_store_ops {
	/* Open link->store if it is not open. */
	int (*open)(void *ctx, struct rpc_link *link);
	/* The metadata of a checkpoint (GET meta_only; sequence 0: the
	 * latest, incarnation 0: any): RTCMS_ENOENT if it lacks it. */
	int (*meta)(void *ctx, struct rpc_link *link, const char *id, uint64_t inc,
		    uint64_t seq, struct proto_ckpt_meta *out);
	/* GET: the stream goes into relay_chunk(r), meta filled first. */
	int (*get)(void *ctx, struct rpc_link *link, const char *id, uint64_t inc,
		   uint64_t seq, struct proto_ckpt_meta *meta, struct relay *r);
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
	/* MLEASE on link->store (opened within timeout_ms if needed). */
	int (*mlease)(void *ctx, struct rpc_link *link, int timeout_ms,
		      const struct proto_mlease *q, struct proto_mlease_ok *ok);
	/* The sink of a PUT on link->store (ctx: struct rpc_stream): begin
	 * says *have if the store holds it already; end waits for PUT_ACK. */
	const struct relay_sink_ops *put;
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

/* A relay sink for rpc's PUT on link, its state in *st. */
void manager_rpc_put_sink(const struct manager_rpc *rpc, struct rpc_link *link,
			  struct rpc_stream *st, struct relay_sink *out);
/* A relay sink for rpc's RESTORE on link->target, its state in *st. */
void manager_rpc_restore_sink(const struct manager_rpc *rpc, struct rpc_link *link,
			      struct rpc_stream *st, struct relay_sink *out);

#endif
