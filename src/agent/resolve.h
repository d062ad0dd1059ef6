/*
 * resolve.h - a program frozen for a move whose manager never came back
 * with THAW or STOP: after freeze_hold the agent asks the managers to
 * decide from the store (RESOLVE) and applies their verdict.
 */
#ifndef RTCMS_AGENT_RESOLVE_H
#define RTCMS_AGENT_RESOLVE_H

#include "agent_int.h"

/* Loop: a RESOLVE, each on a short-lived thread of its own, for every
 * program frozen for freeze_hold that is not being resolved. Takes
 * agent.lock. */
void resolve_due(struct agent *a);

#endif
