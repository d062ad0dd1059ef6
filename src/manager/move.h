/*
 * move.h - the steps a migration (migrate.c) and a restore (restore.c)
 * share: CLAIM the process in the store, restore its checkpoint on the
 * best node else the next (placement.c orders them), COMMIT the claim
 * and ADOPT at the target, or RELEASE the claim. Each step is logged.
 * Lock not held for any of them; every call goes through m->rpc.
 */
#ifndef RTCMS_MANAGER_MOVE_H
#define RTCMS_MANAGER_MOVE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "manager_int.h"

/* CLAIM id for this manager (lease claim_lease) with flags: 0 and *ok, or
 * the store's error with why ("claiming id: ..."); for RTCMS_ECLAIMED
 * *held_until (may be NULL) gets the holder's lease end, unix ms. */
int move_claim(struct manager *m, struct rpc_link *link, const char *id, uint8_t flags,
	       struct proto_claim_ok *ok, uint64_t *held_until, char *why, size_t whylen);

/* RELEASE a claim (a failure is logged: the claim's lease runs out). */
void move_release(struct manager *m, struct rpc_link *link, const char *id,
		  uint64_t claim_id);

/* Where a checkpoint is restored. */
struct move_plan {
	const struct proto_ckpt_meta *ckpt; /* process, incarnation, sequence,
					     * size, hash */
	uint64_t source;               /* the node it ran on */
	bool allow_source;             /* the source may be chosen */
	const char *src_addr;          /* the source agent, which holds it while
					* it is not durable */
	bool durable;                  /* in/out: the store holds it */
	struct placement_node *nodes;  /* the candidates (candidates_poll) */
	char (*addrs)[PROTO_ADDR_MAX + 1];
	size_t count;
};

/* Restore plan->ckpt on the best node, else the next, until one resumes
 * it. Unless plan->durable the first attempt relays it from the source
 * agent to the store and the target at once (durable from then on);
 * later attempts read it from the store. Returns the chosen index into
 * plan->nodes (link->target open for the ADOPT), or an error with why:
 * RTCMS_ENOSPC when no node is left; any other error if the store or the
 * source failed (the move must stop). */
int move_restore(struct manager *m, struct rpc_link *link, struct move_plan *plan,
		 char *why, size_t whylen);

/* COMMIT the claim with node, then ADOPT at the target (link->target,
 * the agent at addr). Returns 0 and *new_inc; RTCMS_ESTATE if committed but
 * the target did not confirm; or the store's error (not committed).
 * *committed is set once the store committed. */
int move_commit(struct manager *m, struct rpc_link *link, const char *id, uint64_t claim_id,
		uint64_t node, const char *addr, uint64_t *new_inc, bool *committed, char *why,
		size_t whylen);

#endif
