/*
 * rtcms.h - librtcms, the library a protected program links.
 *
 * A protected program registers the memory regions that make up its state
 * and calls rtcms_checkpoint() at its consistency points. The call copies
 * the regions into the node's checkpoint area (shared memory owned by the
 * rtcms agent) and commits them; it never waits on the network or a disk:
 * it costs about a memcpy of the protected bytes. The agent ships
 * committed checkpoints off the node.
 *
 * When the agent starts the program to restore it (on this or another
 * node), rtcms_restoring() is 1 and every rtcms_protect() refills its
 * region from the checkpoint before returning; rtcms_resume() then tells
 * the agent that the program goes on.
 *
 *   rtcms_init(NULL);
 *   rtcms_protect(1, &counter, sizeof(counter));
 *   rtcms_protect(2, table, table_bytes);
 *   if (rtcms_restoring())
 *           rtcms_resume();          // state is back: go on from here
 *   for (;;) {
 *           work();
 *           rtcms_checkpoint();      // at a consistency point
 *   }
 *
 * Consistency: a checkpoint holds each region as it was while
 * rtcms_checkpoint() copied it. Regions written by other threads during the
 * call may be captured half-updated; call it where the program's state is
 * consistent (e.g. with those threads paused or between work items).
 *
 * All calls are thread-safe (one internal mutex) and return 0 (or a
 * positive value where stated) or a negative RTCMS_E* code
 * (rtcms_error.h). librtcms uses libc only and starts no threads.
 *
 * Environment (set by the agent; all optional):
 *   RTCMS_AREA_FD    an inherited file descriptor of the checkpoint area
 *   RTCMS_AREA       a path to the checkpoint area (a file in /dev/shm)
 *   RTCMS_RESTORE=1  the program is started to restore the committed
 *                    checkpoint in the area
 * Without an area the library keeps a private one of
 * rtcms_config.area_capacity bytes (standalone use, tests, benchmarks).
 */
#ifndef RTCMS_H
#define RTCMS_H

#include <stddef.h>
#include <stdint.h>

#include "rtcms_error.h"

#ifdef __cplusplus
extern "C" {
#endif

struct rtcms_config {
	/* Capacity of a private area when the environment names none
	 * (0 = 64 MiB). Ignored when the agent provides the area. */
	uint64_t area_capacity;
};

/*
 * Fencing: under an agent, the program runs only while the agent's lease
 * (renewed while the agent hears from a manager) lasts. A one-shot POSIX
 * timer (no thread) on a real-time signal, SIGRTMAX - 1 unless
 * RTCMS_LEASE_SIGNAL names another (0: off), checks the lease about once
 * per lease period; when it lapsed the process kills itself (SIGKILL), so a
 * hung or cut-off agent cannot leave it running while the program is
 * restored elsewhere. Blocking calls may see EINTR from that signal.
 */

/* Attach to the checkpoint area (see above). cfg may be NULL. Returns 0,
 * RTCMS_ESTATE if already initialised, RTCMS_ECONFIG for an unusable
 * area, RTCMS_ENOMEM. */
int rtcms_init(const struct rtcms_config *cfg);

/*
 * Protect size bytes at ptr as region id (any number; at most 64 regions).
 * The memory stays the caller's and must stay valid until unprotected.
 * When restoring, the region is first refilled from the checkpoint:
 * RTCMS_ENOENT if the checkpoint has no region id, RTCMS_EINVAL if its size
 * differs. RTCMS_EEXIST if id is already protected.
 */
int rtcms_protect(uint32_t id, void *ptr, size_t size);

/* Stop protecting region id; later checkpoints omit it. RTCMS_ENOENT if
 * id is not protected. */
int rtcms_unprotect(uint32_t id);

/*
 * Copy every protected region into the checkpoint area and commit them as
 * the next sequence. Returns the new sequence number (> 0), or
 * RTCMS_ENOSPC if the regions do not fit the area (nothing is committed),
 * RTCMS_ESTATE before rtcms_init() or while restoring (before
 * rtcms_resume()). Never waits on the network or a disk.
 *
 * Migration: when the agent has asked for a final checkpoint (the program
 * is about to move to another node), the call stops the whole process
 * (SIGSTOP) right after the commit. If the move fails the agent continues
 * it (SIGCONT) and the call returns normally; if it succeeds the agent
 * kills this instance and the program goes on elsewhere from this
 * checkpoint. A program that ignores SIGSTOP's default cannot: it is not
 * catchable.
 */
int64_t rtcms_checkpoint(void);

/*
 * Ask to be moved to another node (load balancing: the thesis' migration
 * request from the program's side). Returns at once: the agent passes the
 * request to a manager, which picks the best other node; the move happens
 * at a later rtcms_checkpoint() (see above), and the program goes on there.
 * 0, or RTCMS_ESTATE without an agent's area (nobody to ask).
 */
int rtcms_request_migration(void);

/* 1 if the program was started to restore a checkpoint (until
 * rtcms_resume()), else 0. */
int rtcms_restoring(void);

/* Tell the agent that the restored program refilled its regions and goes
 * on; later checkpoints continue from the restored sequence.
 * RTCMS_ESTATE if not restoring. */
int rtcms_resume(void);

/* The last committed sequence (0 if none). */
uint64_t rtcms_sequence(void);

/* Detach from the area and forget all regions. */
int rtcms_finalize(void);

#ifdef __cplusplus
}
#endif
#endif
