/*
 * relay.h - a checkpoint on its way through the manager: the stream a
 * source sends (an agent's PULL, the store's GET; received and verified
 * by the stream module, stream_recv()) goes to the store, to a target
 * agent, or to both at once, each chunk once, as it arrives (memory: one
 * chunk; back-pressure: the source waits on the sinks).
 *
 * The relay is the sink the source feeds. Inside it the two sides are
 * stream sinks (the store's PUT and a target's RESTORE, rpc.h); with both,
 * a stream tee (stream/stream.h) with the store as its primary. The rules:
 *  - the store failing stops the stream: nothing may commit without it;
 *  - a store that holds the checkpoint already takes no chunk; alone, it
 *    stops the stream at once (the source is not read in vain);
 *  - the target failing stops the stream only when it is the only side:
 *    with the store beside it, the store still gets everything;
 *  - at the end the store ends first (durable), then the target;
 *  - metadata the caller does not accept (relay_expect) stops the stream
 *    before anything is forwarded: it counts as the source's failure;
 *  - a raised cancel flag stops the stream at the next chunk.
 * Pure: no I/O of its own, no locks, no logging.
 */
#ifndef RTCMS_MANAGER_RELAY_H
#define RTCMS_MANAGER_RELAY_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "proto/msg.h"
#include "stream/stream.h"

/* How a relayed stream ended. */
enum relay_result {
	RELAY_DONE,            /* every side took it all (or the store had it) */
	RELAY_HAD_IT,          /* the store alone, and it holds it already */
	RELAY_CANCELLED,       /* the cancel flag stopped it */
	RELAY_SOURCE_FAILED,   /* the source failed (its code is the source's),
				* or sent metadata the caller refused */
	RELAY_STORE_FAILED,    /* the store failed (its code) */
	RELAY_TARGET_FAILED,   /* the target failed (its code); the store, if
				* it was a side, has it all */
};

/* Whether the stream meta describes is the one the caller asked for. */
typedef bool (*relay_expect_fn)(void *ctx, const struct proto_ckpt_meta *meta);

/* Fields other than sink are the relay's; read them through the calls. */
struct relay {
	struct stream_sink sink;       /* what the source feeds */
	struct stream_sink *store;     /* a side, or NULL */
	struct stream_sink *target;
	struct stream_sink *inner;     /* the tee, or the one side */
	struct stream_tee tee;
	_Atomic int *cancel;           /* non-zero: give up; may be NULL */
	relay_expect_fn expect;
	void *expect_ctx;
	bool begun;                    /* the first chunk arrived */
	bool refused;                  /* expect said no */
	bool cancelled;
	int side_rc;                   /* the one side's failure (no tee) */
};

/* Set r up for one stream to store and/or target (either may be NULL, not
 * both); cancel may be NULL. */
void relay_init(struct relay *r, struct stream_sink *store, struct stream_sink *target,
		_Atomic int *cancel);

/* Check the stream's metadata with fn before anything is forwarded. */
void relay_expect(struct relay *r, relay_expect_fn fn, void *ctx);

/* How the stream went, from the relay's state and source_rc (what the
 * source returned). */
enum relay_result relay_result(const struct relay *r, int source_rc);

/* The code that goes with result (source_rc for RELAY_SOURCE_FAILED,
 * RTCMS_EPROTO for refused metadata; 0 for RELAY_DONE and RELAY_HAD_IT;
 * RTCMS_ESTATE for RELAY_CANCELLED). */
int relay_code(const struct relay *r, enum relay_result result, int source_rc);

/* Whether the first chunk reached the sides (a store connection may then
 * be mid-stream). */
bool relay_begun(const struct relay *r);

#endif
