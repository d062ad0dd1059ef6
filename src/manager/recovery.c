/* recovery.c - the reconciliation decision (see recovery.h). */
#include "recovery.h"

enum recovery_action recovery_decide(const struct recovery_config *cfg,
				     const struct recovery_facts *f)
{
	if (f->ended || f->moving)
		return RECOVERY_NONE;
	if (f->present)
		return RECOVERY_PRESENT;
	if (f->node_failed)
		return RECOVERY_RESTORE;
	if (f->node_alive && f->report_fresh && f->gave_up_there)
		return RECOVERY_RESTORE;
	if (f->uptime_ms < cfg->start_grace_ms)
		return RECOVERY_WAIT; /* its agent may not have reported yet, and an
				       * instance of an agent's earlier boot may
				       * live until its lease ends: this manager
				       * did not see that boot's heartbeats */
	if (f->node_alive)
		return f->report_fresh && f->absent_ms >= cfg->absent_grace_ms ? RECOVERY_RESTORE
									       : RECOVERY_WAIT;
	/* unheard: a known node is fenced by the failure detector; an unknown
	 * one must be fenced here before anything of it is restored */
	return f->node_known ? RECOVERY_WAIT : RECOVERY_FENCE_NODE;
}

const char *recovery_action_name(enum recovery_action a)
{
	switch (a) {
	case RECOVERY_NONE: return "none";
	case RECOVERY_PRESENT: return "present";
	case RECOVERY_WAIT: return "wait";
	case RECOVERY_RESTORE: return "restore";
	case RECOVERY_FENCE_NODE: return "fence its node";
	}
	return "?";
}
