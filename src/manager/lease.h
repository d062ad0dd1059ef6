/*
 * lease.h - the lease thread: this manager's lease from the store,
 * renewed every lease_renew (MLEASE on its own store connection, never
 * behind a pull or a restore), and the store's fences and list of
 * managers applied to the tables.
 */
#ifndef RTCMS_MANAGER_LEASE_H
#define RTCMS_MANAGER_LEASE_H

#include "manager_int.h"

/* Start the lease thread: 0 or RTCMS_ENOMEM. */
int lease_start(struct manager *m);
/* Wait for it to end (after m->stopping was set). */
void lease_join(struct manager *m);

#endif
