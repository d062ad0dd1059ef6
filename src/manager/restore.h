/*
 * restore.h - the failover actions: a program that runs nowhere is
 * restored elsewhere from its latest durable checkpoint (claim, restore on
 * the best healthy node, commit, adopt), and a program a vanished
 * migration left frozen is resolved from what the store recorded. What to
 * restore is decided by recovery.c (pure) and the detector thread
 * (reconcile.c); this is the mechanism. Lock not held for either call;
 * every call to an agent or the store goes through m->rpc.
 */
#ifndef RTCMS_MANAGER_RESTORE_H
#define RTCMS_MANAGER_RESTORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "manager_int.h"

/* What came of restore_run(). */
enum restore_outcome {
	RESTORE_DONE,            /* restored: the table says where */
	RESTORE_UNCONFIRMED,     /* committed, but the target did not confirm:
				  * it is restored again (the table is WAITING) */
	RESTORE_RUNS_ELSEWHERE,  /* the store says it was restored on another
				  * node already, or its node still holds it */
	RESTORE_FAILED_FOR_GOOD, /* the store refused the claim: a second give-up */
	RESTORE_NOT_YET,         /* not restored this time: the error says why */
};

/* How restore_run() is to restore a program, and what came of it. */
struct restore_req {
	bool source_alive;     /* in: its node is alive (it may be chosen again)
				* and is asked under the claim whether it holds
				* the program after all */
	bool gave_up;          /* in: its node gave up restarting it (the store
				* allows one such move per program) */
	enum restore_outcome outcome; /* out */
	uint64_t elsewhere;    /* out, RESTORE_RUNS_ELSEWHERE: the node that runs it */
	uint64_t held_until;   /* out, RTCMS_ECLAIMED: the holder's lease end, unix ms */
};

/* Restore process id, which runs nowhere, from its latest durable
 * checkpoint on the best healthy node. The caller set its migrating flag;
 * when the move was committed the table is updated and the flag cleared.
 * Returns 0 with req->outcome DONE, UNCONFIRMED or RUNS_ELSEWHERE (why
 * says where), or an error with why and outcome FAILED_FOR_GOOD or
 * NOT_YET: RTCMS_ENOENT (no durable checkpoint), RTCMS_ECLAIMED
 * (req->held_until), or what failed. */
int restore_run(struct manager *m, const char *id, struct restore_req *req, char *why,
		size_t whylen);

/* Decide for a program frozen by a migration whose manager vanished:
 * *verdict STOP (the store recorded the move), THAW (never committed) or
 * WAIT (a claim is held). 0 or the store's error with why. */
int restore_resolve(struct manager *m, const char *id, uint64_t incarnation, uint64_t node,
		    uint32_t *verdict, char *why, size_t whylen);

#endif
