/*
 * freeze.h - the source side of a migration: FREEZE (the program's own
 * final checkpoint, then it is stopped), THAW (the move failed: it goes
 * on), STOP (the move committed: the old instance is killed).
 */
#ifndef RTCMS_AGENT_FREEZE_H
#define RTCMS_AGENT_FREEZE_H

#include <stddef.h>

#include "agent_int.h"

/*
 * FREEZE r from who: ask the program to stop itself right after its next
 * checkpoint (within r->arg ms, else freeze_timeout; then SIGSTOP, its
 * last checkpoint is final), capture that checkpoint and describe it as
 * the full image into *meta. Returns 0 and *held (the frozen instance,
 * which meta->spec borrows: proc_unref() it after the reply), or
 * RTCMS_ENOENT (no running instance), RTCMS_EFENCED (another
 * incarnation), RTCMS_ESTATE (it exited), the capture's error, with the
 * reason in why.
 */
int freeze_program(struct agent *a, const char *who, const struct proto_proc_ref *r,
		   struct proto_ckpt_meta *meta, struct aproc **held, char *why, size_t len);

/* THAW r: the frozen instance goes on. STOP r: it is killed. 0, or
 * RTCMS_ENOENT (nothing frozen) or RTCMS_EFENCED (another incarnation)
 * with the reason in why. */
int freeze_thaw(struct agent *a, const char *who, const struct proto_proc_ref *r,
		char *why, size_t len);
int freeze_stop(struct agent *a, const char *who, const struct proto_proc_ref *r,
		char *why, size_t len);

#endif
