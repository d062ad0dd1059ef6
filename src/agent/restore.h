/*
 * restore.h - the restore interface: RESTORE (the checkpoint's metadata),
 * CHUNKs and PUT_END from a manager; the image verified chunk by chunk
 * and as a whole (image hash, state hash) by the stream module's receiver
 * (stream_recv into the area installer), the program started from it
 * in a fresh area, RESTORE_OK once it resumed, then ADOPT (the manager's
 * commit, with the new incarnation) on the same connection, or the new
 * instance is killed.
 *
 * The steps, each a function of restore.c: admit (room, incarnation,
 * size), receive and verify the stream, check it is a full image, launch,
 * wait for the resume, answer, wait for ADOPT.
 */
#ifndef RTCMS_AGENT_RESTORE_H
#define RTCMS_AGENT_RESTORE_H

#include <stdint.h>

#include "agent_int.h"
#include "peer.h"

enum restore_result {
	RESTORE_ADOPTED,               /* the program runs here as the new incarnation */
	RESTORE_FAILED,                /* answered with an ERROR (refused, or started and
					* did not resume: killed); the connection goes on */
	RESTORE_UNADOPTED,             /* resumed, but no valid ADOPT: killed; close */
	RESTORE_BROKEN,                /* the stream broke or was not CHUNKs: close */
};

/* Serve the RESTORE meta (request id request) from who, reading its
 * stream from peer, on the calling connection thread. */
enum restore_result restore_serve(struct agent *a, const struct agent_peer *peer,
				  const char *who, uint32_t request,
				  const struct proto_ckpt_meta *meta);

#endif
