/*
 * lease.h - heartbeats and the agent's lease: the time-critical thread
 * (daemon/hbthread.h) that sends a HEARTBEAT to every manager each
 * heartbeat_interval, renews the lease from their acks, publishes it into
 * every program's area (librtcms' watchdog), and stops every program
 * when it lapses.
 */
#ifndef RTCMS_AGENT_LEASE_H
#define RTCMS_AGENT_LEASE_H

#include "agent_int.h"
#include "daemon/hbthread.h"

/* Start the heartbeat thread from the host of bound (any port). 0 and
 * *out (hb_thread_stop() it), or the errors of hb_thread_start(). */
int lease_start(struct agent *a, const char *bound, struct hb_thread **out);

#endif
