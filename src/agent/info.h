/*
 * info.h - the info interface: what this node offers to placement (INFO).
 */
#ifndef RTCMS_AGENT_INFO_H
#define RTCMS_AGENT_INFO_H

#include "agent_int.h"

/* This node's figures into out: memory, CPU load over the sliding window,
 * quota, checkpoint areas, bounded by the agent's cgroup; the [test]
 * section's figures where set. Takes agent.lock. */
void info_fill(struct agent *a, struct proto_info_reply *out);

#endif
