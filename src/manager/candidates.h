/*
 * candidates.h - the facts placement chooses from: every alive node's
 * INFO, asked now, and whether it is cordoned.
 */
#ifndef RTCMS_MANAGER_CANDIDATES_H
#define RTCMS_MANAGER_CANDIDATES_H

#include <stddef.h>

#include "manager_int.h"

/* placement: a loaded node may be slow to answer */
#define MANAGER_INFO_TIMEOUT(m) ((int)(m)->cfg.io_timeout_ms)

/* Ask every alive node for its INFO (each within timeout_ms; one that does
 * not answer, or answers with another node id, is marked not alive and
 * logged); fills nodes and addrs (MANAGER_NODES_MAX each) and returns the
 * count. Lock not held. */
size_t candidates_poll(struct manager *m, struct placement_node *nodes,
		       char (*addrs)[PROTO_ADDR_MAX + 1], int timeout_ms);

#endif
