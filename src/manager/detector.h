/*
 * detector.h - the failure detector: which nodes are alive (heard within
 * node_timeout), which heartbeats are answered, and the fence of a node
 * gone unheard (docs/architecture.md "The fence"). The heartbeat thread
 * itself is src/common/daemon/hbthread.c; detector_heartbeat() runs on it.
 * Lock held for every call unless it says otherwise.
 */
#ifndef RTCMS_MANAGER_DETECTOR_H
#define RTCMS_MANAGER_DETECTOR_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include "manager_int.h"

struct hb_thread;

/* Heard within node_timeout and not declared failed (an operator's notice
 * counts at once). */
bool detector_node_alive(const struct manager *m, const struct mnode *n);
/* Alive and neither being fenced nor fenced: programs may be placed or
 * found there (n may be NULL: false). */
bool detector_node_usable(const struct manager *m, const struct mnode *n);
/* The store's fence of node is complete: its programs are gone. */
bool detector_fence_complete(const struct manager *m, uint64_t node);
/* May this manager answer n's heartbeats now (its lease holds, n is not
 * fenced or being fenced)? */
bool detector_may_answer(const struct manager *m, const struct mnode *n, uint64_t now);

/* A node unheard for node_timeout is answered no more and the store is
 * asked to fence it (the lock is released meanwhile); the store refuses
 * while another manager still hears it. Once the fence is complete the
 * node has failed and its programs are restored elsewhere. */
void detector_fence_nodes(struct manager *m, uint64_t now);

/* The heartbeat thread's receive callback (ctx: struct manager; lock not
 * held): a fresh HEARTBEAT of a registered node of the same boot marks it
 * alive and is answered with a HEARTBEAT_ACK if it may be; anything else
 * is dropped. */
void detector_heartbeat(void *ctx, struct hb_thread *t, const uint8_t *buf, size_t len,
			const struct sockaddr *from, socklen_t fromlen);

#endif
