/*
 * launch.h - starting a program here: under a lease only, through the
 * launcher (agent_int.h: spawn.c, or a fake), then into the process
 * table. What RUN, a restore, a restart and the `run =` lines share.
 */
#ifndef RTCMS_AGENT_LAUNCH_H
#define RTCMS_AGENT_LAUNCH_H

#include <stddef.h>
#include <stdint.h>

#include "agent_int.h"

/*
 * Start r: make the entry (with r->area, a restore's, taken over
 * whatever happens: in the entry, or released on failure; state
 * AP_RESTORING), wait up to a->lease_wait_ms for a lease (a program runs
 * only under one: its watchdog needs an end to enforce), let the
 * launcher make its area (unless r->area) and start it, and put it into
 * the table. Returns 0 and
 * *out with a reference (proc_unref() it), or RTCMS_ESTATE (no lease),
 * RTCMS_ENOMEM or the launcher's code, with the reason in err.
 * Call without agent.lock.
 */
int launch_start(struct agent *a, const struct launch_req *r, struct aproc **out,
		 char *err, size_t errlen);

/* Start the `run =` programs of the config ("ID PATH ARGS...", with the
 * agent's working directory); each failure is logged. */
void launch_configured(struct agent *a);

#endif
