/*
 * puller.h - the pullers: pull_concurrency threads that make announced
 * checkpoints durable at the manager's own pace. Per process only the
 * newest announcement matters (it holds everything an older one did);
 * processes take turns (round robin), so none starves. Each process is
 * pulled by one manager (a rendezvous hash over the managers holding
 * leases); the others only ask the store what it holds. While the store
 * is down the pullers back off (100 ms doubling to 5 s) and keep every
 * announcement.
 */
#ifndef RTCMS_MANAGER_PULLER_H
#define RTCMS_MANAGER_PULLER_H

#include <stdbool.h>

#include "manager_int.h"

/* Start cfg.pullers puller threads (m->puller_count of them started). */
void puller_start(struct manager *m);
/* Wait for every puller to end (after m->stopping was set). */
void puller_join(struct manager *m);

/* Is this manager the one that pulls id's checkpoints (rendezvous hash
 * over the managers holding leases; every manager computes the same)?
 * Lock held. */
bool puller_owns(const struct manager *m, const char *id);

/* Delete every checkpoint of a program that finished (lock not held). */
void puller_forget(struct manager *m, const char *id);

#endif
