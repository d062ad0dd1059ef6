/*
 * rtcms.h - librtcms, the library a protected program links.
 *
 * A protected program registers the memory regions that make up its state
 * and calls rtcms_checkpoint() at its consistency points. The call copies
 * the regions into the node's checkpoint area (shared memory owned by the
 * rtcms agent) and commits them; it never waits on the network or a disk:
 * it costs about a memcpy of what changed (see below). The agent ships
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
 * Incremental checkpoints: rtcms_checkpoint() copies only the blocks
 * (4 KiB) that changed since the last checkpoint. By default the library
 * finds them with write faults: after each checkpoint a region's pages are
 * write-protected (mprotect); the first write to a page raises SIGSEGV,
 * which librtcms' handler records before it makes the page writable again
 * (one fault per page and checkpoint interval, a few microseconds). When
 * more than half of a region was written in an interval, faults cost more
 * than they save: the region is left writable and copied whole for the
 * next 1, 2, 4 .. 16 checkpoints, then tracked again. Where
 * that cannot be used (see rtcms_protect_tracked()) the library compares
 * the region with the last checkpoint instead.
 *
 * Write-fault tracking has consequences a program must know:
 *  - the kernel does not fault on the program's behalf: a system call that
 *    writes into a protected region (read(2), recv(2), ...) fails with
 *    EFAULT if the page was not written since the last checkpoint. Give
 *    such buffers RTCMS_TRACK_COMPARE (or write to them first);
 *  - librtcms installs a SIGSEGV handler at the first region it tracks and
 *    passes every fault that is not its own to the handler that was
 *    installed before (or to the default action). A program with its own
 *    handler installs it before rtcms_protect(); one installed later is
 *    found at the next rtcms_checkpoint() and chained to from then on;
 *  - regions on the calling thread's stack are compared, not protected;
 *    do not protect other threads' stacks with write faults.
 *
 * Consistency: a checkpoint holds every write that completed before
 * rtcms_checkpoint() was called. A write by another thread during the call
 * may or may not be in it, and a block written during the call may be
 * captured half-updated - but it is then in the next checkpoint, never
 * lost. Call it where the program's state is consistent (e.g. with writer
 * threads paused or between work items).
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

/* How rtcms_checkpoint() finds what changed in a region. */
enum rtcms_tracking {
	RTCMS_TRACK_AUTO = 0,    /* write faults, or comparison where they cannot be used */
	RTCMS_TRACK_WRITES = 1,  /* write faults (reported, not asked for: use AUTO) */
	RTCMS_TRACK_COMPARE = 2, /* compare each block with the last checkpoint */
	RTCMS_TRACK_FULL = 3     /* copy the whole region every time */
};

/*
 * rtcms_protect() with a choice of tracking (rtcms_protect() uses AUTO;
 * the environment variable RTCMS_TRACKING=compare or =full turns AUTO into
 * that for a whole program). AUTO uses write faults unless the region has
 * no whole page, lies on the calling thread's stack, or the handler cannot
 * be installed; then it compares. If write protection fails later (e.g.
 * the process ran out of memory mappings, vm.max_map_count), the region
 * switches to comparison at the next checkpoint, which copies it whole.
 * RTCMS_EINVAL for an unknown tracking value; otherwise as rtcms_protect().
 */
int rtcms_protect_tracked(uint32_t id, void *ptr, size_t size, int tracking);

/* The tracking region id uses now (RTCMS_TRACK_WRITES, _COMPARE or
 * _FULL), or RTCMS_ENOENT. */
int rtcms_region_tracking(uint32_t id);

/* Stop protecting region id (its pages become writable again); later
 * checkpoints omit it. RTCMS_ENOENT if id is not protected. */
int rtcms_unprotect(uint32_t id);

/* What the last rtcms_checkpoint() did. */
struct rtcms_stats {
	uint64_t sequence;        /* its sequence */
	uint64_t protected_bytes; /* the regions' bytes */
	uint64_t dirty_bytes;     /* bytes of the blocks that changed */
	uint64_t copied_bytes;    /* bytes copied: the changed blocks, plus those
				   * that changed in the checkpoint before
				   * (double buffering), or everything */
	int full;                 /* 1 if everything was copied (the first one,
				   * after a restore or a change of regions) */
};

/* Fill *out with the figures of the last checkpoint. 0, RTCMS_EINVAL,
 * RTCMS_ESTATE before rtcms_init(). */
int rtcms_last_stats(struct rtcms_stats *out);

/*
 * Copy what changed in the protected regions into the checkpoint area
 * and commit them as the next sequence (the area then holds every region
 * whole). Returns the new sequence number (> 0), or
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
