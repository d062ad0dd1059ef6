/*
 * cordon_set.h - the nodes an operator cordoned (rtcmsctl cordon, drain): they
 * take no new program - no RUN, migration or restore places one there -
 * until they are uncordoned. A set of node ids, kept apart from the node
 * table so a cordon holds for a node that has not registered yet, and
 * across its restarts. Pure: no locking (the manager's lock guards it), no
 * I/O.
 */
#ifndef RTCMS_MANAGER_CORDON_SET_H
#define RTCMS_MANAGER_CORDON_SET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proto/msg.h"

#define CORDON_MAX PROTO_NODES_MAX

struct cordon_set {
	uint64_t nodes[CORDON_MAX];
	size_t count;
};

/* Is node cordoned? */
bool cordon_set_has(const struct cordon_set *s, uint64_t node);

/* Cordon node (again: no change). 0, or RTCMS_ENOSPC when CORDON_MAX other
 * nodes are cordoned already. */
int cordon_set_add(struct cordon_set *s, uint64_t node);

/* Uncordon node; true if it was cordoned. */
bool cordon_set_remove(struct cordon_set *s, uint64_t node);

#endif
