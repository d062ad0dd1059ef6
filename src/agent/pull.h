/*
 * pull.h - the pull service: PULL from a manager streams the checkpoint
 * the agent holds of a program (GET_META, CHUNKs, GET_END, exactly like
 * the store's GET) in the encoding the manager's base asks for.
 */
#ifndef RTCMS_AGENT_PULL_H
#define RTCMS_AGENT_PULL_H

#include <stdint.h>

#include "agent_int.h"
#include "peer.h"

enum pull_result {
	PULL_SENT,                     /* the checkpoint (or its metadata) went out */
	PULL_REFUSED,                  /* answered with an ERROR: nothing held, no memory,
					* or the program rewrote the checkpoint in its area
					* while it was sent (ENOENT: pull the newer one) */
	PULL_BROKEN,                   /* the connection broke: close it */
};

/* Serve the PULL g (request id request) from who to peer, on the calling
 * connection thread. */
enum pull_result pull_serve(struct agent *a, const struct agent_peer *peer, const char *who,
			    uint32_t request, const struct proto_get *g);

#endif
