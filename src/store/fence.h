/*
 * fence.h - the store's table of manager leases and node fences: what
 * makes a node's failure hold for every manager at once.
 *
 * A manager answers heartbeats only while it holds a lease from this
 * table (MLEASE, renewed every few hundred ms) and never for a node the
 * table lists as fenced. A node is fenced (FENCE) by a manager that no
 * longer hears it, unless another manager with a valid lease still hears
 * it (RTCMS_EBUSY). A fence goes through three states:
 *
 *   PENDING    some manager with a valid lease has not yet confirmed it
 *              stopped answering the node (its next MLEASE carries the
 *              fence's generation). The managers ever granted a lease are
 *              persisted before their first grant: after a restart each
 *              counts as holding its lease until it renews or that long
 *              passed
 *   EFFECTIVE  no manager answers the node any more: its agent's lease,
 *              renewed only by answers, runs out within hold_ms
 *   COMPLETE   hold_ms after that: the node's programs are stopped (by
 *              their agent and by librtcms' watchdog), so they may be
 *              restored elsewhere
 *
 * and is lifted FENCE_LINGER_MS after COMPLETE (the node may rejoin,
 * empty). The decision is the store's alone, so every manager sees the
 * same one. Pure logic over a caller-supplied monotonic clock (ms), with
 * its own mutex: called from the event loop (MLEASE) and the thread pool
 * (FENCE). Persistence of the fences (they survive a restart) is the
 * caller's: fence_table_load at start, and the `persist` flags below.
 */
#ifndef RTCMS_STORE_FENCE_H
#define RTCMS_STORE_FENCE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proto/msg.h"

#define FENCE_LINGER_MS 2000
#define FENCE_LEASE_MAX_DEFAULT_MS 10000

struct fence_table;

/* A new table at monotonic time now; leases are capped at lease_max_ms.
 * NULL on allocation failure. */
struct fence_table *fence_table_new(uint32_t lease_max_ms, uint64_t now);
void fence_table_free(struct fence_table *t);

/* A fence persisted before a restart: PENDING again (every manager must
 * confirm it anew). gen raises the generation counter. */
void fence_table_load(struct fence_table *t, uint64_t node, uint64_t gen,
		      uint32_t hold_ms);
/* A manager persisted before a restart: counted as holding a lease of
 * lease_ms from now, with no fence confirmed, until it renews. */
void fence_table_load_manager(struct fence_table *t, const char *name, uint32_t lease_ms,
			      uint64_t now);
/* Has name held a lease here (or been loaded)? A manager the table does not
 * know is persisted before its first lease. */
bool fence_table_knows(struct fence_table *t, const char *name);
/* The generation counter persisted before a restart (never goes back). */
void fence_table_set_gen(struct fence_table *t, uint64_t gen);

/* Renew manager req->name's lease at now; fills *out (lease granted, the
 * fences with their states, the managers holding leases). 0, or
 * RTCMS_ENOSPC when PROTO_MANAGERS_MAX other managers hold leases. */
int fence_table_renew(struct fence_table *t, const struct proto_mlease *req,
		      uint64_t now, struct proto_mlease_ok *out);

/* Fence req->node, or report how far its fence got. 0 and *out; *created
 * set to the new fence's generation when this call made it (the caller
 * persists it, then calls fence_table_persisted, or fence_table_drop if
 * that failed). RTCMS_EBUSY (why names the manager that still hears the
 * node), RTCMS_ENOSPC (table full), RTCMS_EINVAL. */
int fence_table_fence(struct fence_table *t, const struct proto_fence *req,
		      uint64_t now, struct proto_fence_ok *out, uint64_t *created,
		      char *why, size_t whylen);
void fence_table_drop(struct fence_table *t, uint64_t node, uint64_t gen);

/* Remove the fences lifted by now; their nodes go to lifted (up to max,
 * the caller deletes them from disk). Returns how many. */
size_t fence_table_expire(struct fence_table *t, uint64_t now, uint64_t *lifted,
			  size_t max);

#endif
