/*
 * restart.h - a program's end: reaping it (SIGCHLD on the loop) and the
 * restart policy (systemd's Restart=: on-failure, always, never), which
 * restarts a crashed program here from the newest checkpoint this agent
 * holds, after a back-off, or gives up and leaves it to the managers.
 */
#ifndef RTCMS_AGENT_RESTART_H
#define RTCMS_AGENT_RESTART_H

#include <stdint.h>

#include "agent_int.h"

/* Loop: waitpid every exited program, decide what its exit means
 * (restart_decide()), wake the outbox. */
void restart_reap(struct agent *a);

/* Decide, with agent.lock held, what a reaped program's exit means: a
 * restart here after a back-off, finished, failed for good, or gone
 * (fenced, killed). Sets p->outcome, p->reason, p->restart_pending. */
void restart_decide(struct agent *a, struct aproc *p, uint64_t now, enum aproc_state was);

/* Loop: restart the programs whose back-off is over (on the pool, or
 * here without a loop). */
void restart_due(struct agent *a);

#endif
