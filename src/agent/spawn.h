/*
 * spawn.h - the launcher the agent runs with (agent_int.h's
 * launcher_ops): checkpoint areas as memfds, programs by posix_spawn,
 * signals by kill().
 */
#ifndef RTCMS_AGENT_SPAWN_H
#define RTCMS_AGENT_SPAWN_H

#include "agent_int.h"

extern const struct launcher_ops spawn_launcher;

/*
 * A checkpoint area whose slots hold capacity bytes: a memfd, mapped and
 * formatted, into *out. 0, or RTCMS_ENOMEM with the reason in err (*out
 * then holds nothing). spawn_area_free() unmaps and closes it.
 */
int spawn_area_new(uint64_t capacity, struct launch_area *out, char *err, size_t errlen);

/* Unmap and close *ar (whatever of it was made); *ar holds none then.
 * NULL, or an area holding none, is a no-op. */
void spawn_area_free(struct launch_area *ar);

#endif
