/*
 * relay.h - a checkpoint on its way through the manager: the chunks a
 * source sends (an agent's PULL, the store's GET) go to the store, to a
 * target agent, or to both at once, each chunk once, as it arrives
 * (memory: one chunk; back-pressure: the source waits on the sinks).
 *
 * A sink is three calls (begin with the metadata, one per chunk, end with
 * the count); the store's PUT and a target's RESTORE are sinks
 * (rpc.h). The rules of the two together:
 *  - the store failing stops the stream: nothing may commit without it;
 *  - a store that holds the checkpoint already takes no chunk; alone, it
 *    stops the stream at once (the source is not read in vain);
 *  - the target failing stops the stream only when it is the only sink:
 *    with the store beside it, the store still gets everything;
 *  - a raised cancel flag stops the stream at the next chunk.
 * Pure: no I/O of its own, no locks, no logging.
 */
#ifndef RTCMS_MANAGER_RELAY_H
#define RTCMS_MANAGER_RELAY_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "proto/msg.h"

struct relay_sink_ops {
	/* The stream's metadata, before its first chunk: 0 or an error.
	 * *have: the sink holds this checkpoint already and takes no chunk. */
	int (*begin)(void *ctx, const struct proto_ckpt_meta *meta, bool *have);
	/* One verified chunk: 0 or an error. */
	int (*chunk)(void *ctx, const struct proto_chunk *chunk);
	/* The end of a stream of count chunks: 0 once the sink has it all
	 * (the store: durable; a target: the program resumed), or an error. */
	int (*end)(void *ctx, uint32_t count);
};

struct relay_sink {
	const struct relay_sink_ops *ops;  /* NULL: no such sink */
	void *ctx;
};

/* How a relayed stream ended. */
enum relay_result {
	RELAY_DONE,            /* every sink took it all (or the store had it) */
	RELAY_HAD_IT,          /* the store alone, and it holds it already */
	RELAY_CANCELLED,       /* the cancel flag stopped it */
	RELAY_SOURCE_FAILED,   /* the source failed (its code is the source's) */
	RELAY_STORE_FAILED,    /* the store failed (store_rc) */
	RELAY_TARGET_FAILED,   /* the target failed (target_rc); the store, if
				* it was a sink, has it all */
};

struct relay {
	struct relay_sink store;
	struct relay_sink target;
	const struct proto_ckpt_meta *meta; /* filled by the source before its
					     * first chunk */
	_Atomic int *cancel;           /* non-zero: give up; may be NULL */
	bool begun;                    /* the first chunk arrived */
	bool had_it;                   /* the store held it already */
	bool cancelled;
	bool store_ended;              /* the store's end succeeded */
	int store_rc, target_rc;       /* a sink's failure */
	uint32_t count;                /* chunks relayed */
};

/* Set r up for one stream to store and/or target (either may be NULL)
 * with metadata at meta (which the source fills); cancel may be NULL. */
void relay_init(struct relay *r, const struct relay_sink *store,
		const struct relay_sink *target, const struct proto_ckpt_meta *meta,
		_Atomic int *cancel);

/* The source's chunk callback (ctx: struct relay *). 0 to go on; a
 * negative code stops the source. The reason it stopped is read with
 * relay_result(), never from the code. */
int relay_chunk(void *ctx, const struct proto_chunk *chunk);

/* After a source returned 0 (and its metadata was checked): end every
 * sink still taking, the store first (durable), then the target. */
void relay_end(struct relay *r);

/* How the stream went, from the relay's state and source_rc (what the
 * source returned). */
enum relay_result relay_result(const struct relay *r, int source_rc);

/* The code that goes with result (source_rc for RELAY_SOURCE_FAILED; 0
 * for RELAY_DONE and RELAY_HAD_IT; RTCMS_ESTATE for RELAY_CANCELLED). */
int relay_code(const struct relay *r, enum relay_result result, int source_rc);

#endif
