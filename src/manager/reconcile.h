/*
 * reconcile.h - the detector thread: every 2 s it reads what the store
 * holds (what should run), fences nodes gone unheard (detector.c),
 * compares what should run with what the agents report (recovery.c
 * decides) and restores what runs nowhere, one program at a time
 * (restore.c).
 */
#ifndef RTCMS_MANAGER_RECONCILE_H
#define RTCMS_MANAGER_RECONCILE_H

#include "manager_int.h"

/* Start the detector thread: 0 or RTCMS_ENOMEM. */
int reconcile_start(struct manager *m);
/* Wait for it to end (after m->stopping was set). */
void reconcile_join(struct manager *m);

#endif
