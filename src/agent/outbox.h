/*
 * outbox.h - what the agent tells the managers unasked: the outbox
 * thread (REGISTER, PROCS, CKPT_NOTIFY, EXITED over one persistent
 * connection per manager; it also frees exited programs every manager
 * was told of), and the MIGRATE a program asks for.
 */
#ifndef RTCMS_AGENT_OUTBOX_H
#define RTCMS_AGENT_OUTBOX_H

#include "agent_int.h"

/* Start the outbox thread (it runs until a->stopping, woken by
 * agent.wake). 0 or RTCMS_ENOMEM. */
int outbox_start(struct agent *a);
/* Wait for the outbox thread to end (after a->stopping was set). */
void outbox_join(struct agent *a);

/* With agent.lock held: ask the managers, one after another, to move p
 * (its program asked for it): MIGRATE waits for the whole move, so it
 * runs on a short-lived thread of its own. */
void outbox_request_migration(struct agent *a, struct aproc *p);

#endif
