/*
 * spawn.h - the launcher the agent runs with (agent_int.h's
 * launcher_ops): checkpoint areas as memfds, programs by posix_spawn,
 * signals by kill().
 */
#ifndef RTCMS_AGENT_SPAWN_H
#define RTCMS_AGENT_SPAWN_H

#include "agent_int.h"

extern const struct launcher_ops spawn_launcher;

#endif
