/*
 * pull.h - one checkpoint from an agent into the store: the agent's PULL
 * stream relayed chunk by chunk into a PUT (relay.h), verified at the
 * manager and again at the store, durable at the store's PUT_ACK.
 */
#ifndef RTCMS_MANAGER_PULL_H
#define RTCMS_MANAGER_PULL_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "manager_int.h"

/* What a pull moved and stored. */
struct pull_result {
	uint64_t sequence;             /* the sequence stored */
	uint64_t size;                 /* bytes pulled (the delta's, or the full image's) */
	uint64_t full_size;            /* the full image's */
	uint64_t base;                 /* 0: a full image; else the delta's base */
	uint32_t depth;                /* deltas down to a full image (the store's) */
	bool existed;                  /* the store had it (another manager) */
	bool store_side;               /* a failure was the store's */
	bool cancelled;                /* given up: a migration sends a newer one */
};

/* Make sequence seq (or newer) of process id durable: skipped if the
 * store has it already (another manager), else the newest the agent at
 * addr holds is pulled - as a delta against base when base is not 0 and
 * the agent finds that worth it - and stored (addr NULL: only ask the
 * store, RTCMS_ENOENT if it lacks it). A delta the store cannot take (its
 * base is gone) is pulled again in full. link is the calling thread's
 * store connection; cancel (may be NULL) raised gives up at the next
 * chunk (RTCMS_ESTATE, res->cancelled). Lock not held. Returns 0 and
 * *res, or the agent's or (res->store_side) the store's error. */
int pull_checkpoint(struct manager *m, struct rpc_link *link, const char *id,
		    uint64_t incarnation, uint64_t seq, uint64_t base, const char *addr,
		    struct pull_result *res, _Atomic int *cancel);

#endif
