/*
 * migrate.h - a migration, the thesis' op 2, made safe:
 *
 *   1. FREEZE at the source agent: the program takes a final checkpoint
 *      at its next consistency point and stops itself (SIGSTOP)
 *   2. INFO from every alive node; placement orders the candidates
 *   3. CLAIM the process in the store (lease): one manager moves it; if
 *      the store holds nothing of it yet, the final checkpoint is pulled
 *      and stored first
 *   4. RESTORE on the best node, else the next (move.h): the final
 *      checkpoint is relayed from the source to the store and the target
 *      at once (from the store when it is durable already)
 *   5. COMMIT the claim (new incarnation), ADOPT at the target, STOP the
 *      old instance; or, if no node worked, RELEASE and THAW the source
 * Every step is logged, so one migration can be followed in the logs.
 */
#ifndef RTCMS_MANAGER_MIGRATE_H
#define RTCMS_MANAGER_MIGRATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "manager_int.h"

struct migrate_result {
	uint64_t from, to, incarnation, sequence;
	uint32_t millis;               /* from the request to resumed */
};

/* Move process id (asked by who) to node target (0: the best node; the
 * source only with allow_same or as the target). Lock not held; runs on
 * the caller's thread. Returns 0 and *res; RTCMS_ESTATE if it was
 * committed but the target did not confirm (it is restored again); or
 * the error with why, the source thawed. */
int migrate_run(struct manager *m, const char *who, const char *id, uint64_t target,
		bool allow_same, struct migrate_result *res, char *why, size_t whylen);

#endif
