/*
 * hbthread.h - the time-critical half of a daemon: one thread that owns a
 * UDP socket for heartbeats and nothing else, so heartbeats are sent and
 * answered on time whatever the event loop, the pullers or a restore are
 * doing. With the rights for it (root or CAP_SYS_NICE) the thread runs at
 * real-time priority (SCHED_FIFO); without them it says so once.
 */
#ifndef RTCMS_DAEMON_HBTHREAD_H
#define RTCMS_DAEMON_HBTHREAD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <uv.h>

struct hb_thread;

/* Called on the thread: tick every interval_ms (if interval_ms > 0), recv
 * for every datagram received. */
typedef void (*hb_tick_fn)(void *ctx, struct hb_thread *t);
typedef void (*hb_recv_fn)(void *ctx, struct hb_thread *t, const uint8_t *buf, size_t len,
			   const struct sockaddr *from, socklen_t fromlen);

struct hb_thread_options {
	const char *bind;             /* host:port to bind */
	int any_port;                 /* bind the host with port 0 */
	uint64_t interval_ms;         /* tick period; 0 = no tick */
	hb_tick_fn tick;
	hb_recv_fn recv;
	void *ctx;
	const char *who;              /* for logs: "heartbeats" */
};

/* Open the socket and start the thread. 0 and *out, RTCMS_EINVAL (bad
 * address), RTCMS_EIO (cannot bind) or RTCMS_ENOMEM. */
int hb_thread_start(const struct hb_thread_options *o, struct hb_thread **out);
/* Stop and join the thread, close the socket. NULL is a no-op. */
void hb_thread_stop(struct hb_thread *t);
/* Send one datagram (never blocks). 0 or RTCMS_EIO. */
int hb_thread_send(struct hb_thread *t, const void *buf, size_t len,
		   const struct sockaddr *to);

/* Give the calling thread real-time priority (SCHED_FIFO, priority prio)
 * if the process may; returns true if it did. Logs once per process when
 * it may not. */
bool rt_thread_promote(const char *who, int prio);
/* Lock the daemon's memory (mlockall, pages locked as they are touched)
 * if it may, so a time-critical thread never waits on a page fault to
 * disk; logs what it did. A ThreadSanitizer build never locks (its shadow
 * memory must stay reclaimable). */
void rt_lock_memory(const char *who);
/* Initialize a lock the heartbeat thread shares with ordinary threads with
 * priority inheritance (PTHREAD_PRIO_INHERIT): a holder preempted by other
 * work on a loaded machine runs at the waiting heartbeat thread's priority
 * until it lets go, so the heartbeat waits for the critical section only,
 * never for the holder's turn on a CPU (priority inversion). 0 or
 * RTCMS_EINTERNAL (then it is a plain mutex, initialized). */
int rt_mutex_init(uv_mutex_t *m);

#endif
