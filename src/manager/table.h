/*
 * table.h - the manager's process and node tables and the store's health
 * as the manager saw it last. Every function here is called with
 * manager.lock held unless it says otherwise (manager_int.h).
 */
#ifndef RTCMS_MANAGER_TABLE_H
#define RTCMS_MANAGER_TABLE_H

#include <stdbool.h>
#include <stdint.h>

#include "manager_int.h"

/* Monotonic and unix (the store's claims use it) milliseconds. */
uint64_t manager_mono_ms(void);
uint64_t manager_real_ms(void);

/* The entry of process id, or NULL. */
struct mproc *manager_proc(struct manager *m, const char *id);
/* The entry of id, added (RUNNING, empty) if new - in the slot of a
 * forgotten process (id "") if there is one: entries never move - ; NULL
 * if the table is full. */
struct mproc *manager_proc_add(struct manager *m, const char *id);
/* The entry of node, or NULL. */
struct mnode *manager_node(struct manager *m, uint64_t node);
/* A new, empty entry for node (which has none); NULL if the table is full. */
struct mnode *manager_node_add(struct manager *m, uint64_t node);

/* The outcome of a move of id (lock NOT held): it runs again (RUNNING,
 * not migrating) and, if moved, on node to as incarnation inc from
 * checkpoint seq of size bytes, which is durable. Wakes the pullers. */
struct move_outcome {
	bool moved;
	uint64_t to, incarnation, sequence, size;
};
void manager_proc_settle(struct manager *m, const char *id, const struct move_outcome *o);

/* Record the outcome of a store operation (lock NOT held): 0 marks the
 * store up, an error marks it down with a back-off for the pullers. */
void manager_store_result(struct manager *m, int rc, const char *what);

#endif
