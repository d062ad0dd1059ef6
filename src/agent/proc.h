/*
 * proc.h - the agent's process table: its programs' entries, their
 * lookup and references, the incarnations seen here, the room for one
 * more, and the report of them all (PROCS). The bottom of the agent: it
 * calls no other agent module (signals and areas go through the
 * launcher, agent_int.h).
 */
#ifndef RTCMS_AGENT_PROC_H
#define RTCMS_AGENT_PROC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "agent_int.h"

/* The live instance of id that is not frozen (running or restoring), with
 * a reference (proc_unref() it), or NULL. */
struct aproc *proc_find_live(struct agent *a, const char *id);
/* The instance of id in state (not AP_EXITED), with a reference, or NULL. */
struct aproc *proc_find_state(struct agent *a, const char *id, enum aproc_state state);
/* Drop a reference. NULL is a no-op. */
void proc_unref(struct agent *a, struct aproc *p);

/* Free an entry that is out of the table: its area is released through
 * the launcher. Its image is the caller's. NULL is a no-op. */
void proc_free(struct agent *a, struct aproc *p);

/* p's incarnation, read without agent.lock (a log line's): the adoption
 * of a restored instance changes it (under the lock, atomically). */
static inline uint64_t proc_incarnation(const struct aproc *p)
{
	return __atomic_load_n(&p->incarnation, __ATOMIC_RELAXED);
}

/* Seal p's spec under the agent's active data key (none: nothing to do)
 * into p->sealed_spec, once, before p is in the table. 0, or an error
 * with the reason in err. */
int proc_seal_spec(struct agent *a, struct aproc *p, char *err, size_t errlen);
/* The spec p's checkpoints carry: sealed if the agent has a keyring. */
void proc_ckpt_spec(const struct aproc *p, const uint8_t **spec, uint32_t *len);

/* The agent stops p's program (SIGKILL marks it killed: not a crash,
 * never restarted here). Nothing if it has exited. agent.lock held or
 * not: it only reads p. */
void proc_kill(struct agent *a, struct aproc *p, int sig);
/* Send sig to p's program (SIGSTOP, SIGCONT; a SIGKILL of a frozen
 * instance) without marking it killed. */
void proc_signal(struct agent *a, struct aproc *p, int sig);

/* Record that incarnation inc of id runs here (agent.lock held). */
void proc_seen_record(struct agent *a, const char *id, uint64_t inc);
/* The highest incarnation of id this agent has run or adopted (the last
 * AGENT_SEEN_MAX process ids, and the programs it holds). Takes
 * agent.lock. */
uint64_t proc_seen_incarnation(struct agent *a, const char *id);

/* Programs not exited, agent.lock held. */
int proc_running_count(struct agent *a);
/*
 * Whether one more instance of id may start here. Returns 0, or
 * RTCMS_EEXIST (it runs here already) or RTCMS_ENOSPC (the quota is
 * full) with the reason in why. Takes agent.lock.
 */
int proc_room(struct agent *a, const char *id, char *why, size_t len);

/* The report of every program (PROCS), with agent.lock held; returns the
 * count filled into out (PROTO_PROCS_MAX entries). */
uint16_t proc_report(struct agent *a, struct proto_agent_proc *out);
/* The whole PROCS message (node, boot, generation, the report in procs,
 * PROTO_PROCS_MAX entries, owned by the caller); takes agent.lock. */
void proc_report_msg(struct agent *a, struct proto_agent_proc *procs, struct proto_procs *out);

/* Something for the managers changed: wake the outbox. Takes agent.lock. */
void proc_wake_outbox(struct agent *a);

#endif
