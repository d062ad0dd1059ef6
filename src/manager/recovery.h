/*
 * recovery.h - where recovery is decided: what the reconciliation loop
 * does with one program, from facts gathered by the manager (pure; unit
 * tested in tests/unit/test_recovery.c).
 *
 * Level-triggered: the loop asks this about every program the store holds
 * (started, not finished) on every pass, whatever happened before. A
 * program that should run and runs nowhere is restored; what it ran on
 * decides when that is safe:
 *  - its node is alive and says (in fresh reports) that it does not run
 *    it: restore now; the claim is taken first and the agent asked again
 *    under it, so a stale report can never start a second instance;
 *  - its node is alive and reports that it gave up restarting it: restore
 *    at once, also right after this manager started (that report is no
 *    absence to be trusted later, but the agent's own word);
 *  - its node is unheard: only once the store's fence of that node is
 *    complete (no manager answers it, its lease has lapsed);
 *  - its node is not known to this manager at all (it restarted, the node
 *    is gone): the node is fenced like an unheard one.
 */
#ifndef RTCMS_MANAGER_RECOVERY_H
#define RTCMS_MANAGER_RECOVERY_H

#include <stdint.h>

enum recovery_action {
	RECOVERY_NONE,                 /* nothing to do (ended, being moved, failed) */
	RECOVERY_PRESENT,              /* it runs: record where */
	RECOVERY_WAIT,                 /* not known yet: look again later */
	RECOVERY_RESTORE,              /* restore it from its latest durable checkpoint */
	RECOVERY_FENCE_NODE,           /* fence its (unknown) node first */
};

struct recovery_facts {
	int ended;                     /* finished cleanly, or failed for good */
	int moving;                    /* this manager migrates or restores it now */
	int present;                   /* a live node's report shows it running,
					* restoring, frozen or restarting */
	int node_known;                /* its recorded node registered here */
	int node_alive;                /* heard within the node timeout, not fenced */
	int node_failed;               /* the node's fence is complete */
	int report_fresh;              /* the node's latest report is recent */
	int gave_up_there;             /* that report says its agent gave up
					* restarting it (or may not restart it) */
	uint64_t absent_ms;            /* how long fresh reports lacked it (0: not) */
	uint64_t uptime_ms;            /* since this manager started */
};

struct recovery_config {
	uint64_t absent_grace_ms;      /* absent this long from fresh reports: restore */
	uint64_t start_grace_ms;       /* agents re-register and report within this */
};

enum recovery_action recovery_decide(const struct recovery_config *cfg,
				     const struct recovery_facts *f);

/* Name of an action, for logs. */
const char *recovery_action_name(enum recovery_action a);

#endif
