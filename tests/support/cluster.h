/*
 * cluster.h - a whole rtcms cluster on loopback for integration tests and
 * benchmarks: a store with two mirrors, a manager and agents on their own
 * loopback addresses (127.0.0.2, 127.0.0.3, ...), plus calls to the
 * manager as rtcmsctl makes them.
 */
#ifndef RTCMS_TEST_CLUSTER_H
#define RTCMS_TEST_CLUSTER_H

#include <stdint.h>

#include "proto/msg.h"
#include "testutil.h"

#define CL_AGENTS_MAX 4

struct cluster {
	char *dir;
	char *key_file;
	struct proto_key key;
	struct tu_daemon store, manager, manager2; /* manager2: pid 0 unless started */
	struct tu_daemon agents[CL_AGENTS_MAX];
	int agent_count;
};

/* More options for the stores cl_start() starts (NULL: none). */
extern const char *const *cl_store_extra;

/* Where one daemon runs: the argv prefix it is started under (NULL: none;
 * see tu_exec_prefix) and the address it listens on (NULL: loopback). */
struct cl_host {
	const char *const *wrap;
	const char *ip;
};
/* Where cl_start(), cl_second_manager() and cl_agent_start() run each
 * daemon, e.g. in network namespaces (netns.h). NULL, the default: all on
 * loopback as described below. Read at each start; the test owns it. */
struct cl_hosts {
	struct cl_host store, manager, manager2;
	struct cl_host agents[CL_AGENTS_MAX];
};
extern const struct cl_hosts *cl_hosts;
/* Nonzero: cl_start(), cl_second_manager() and cl_agent_start() pass no
 * lease or detection options (cl_timeouts()): the daemons run with their
 * defaults (200 ms lease, 300 ms node timeout), as deployed. Default 0. */
extern int cl_default_timeouts;

/* The manager options of the tests' leases and node timeout ("--agent-lease",
 * MS, "--node-timeout", MS, NULL), scaled by RTCMS_TEST_TIME_SCALE. */
const char *const *cl_timeouts(void);
/* Start store and manager; manager_extra are more manager options. The
 * cluster must outlive the test function (make it static): cl_teardown
 * stops it after a failed assertion left the function. */
int cl_start(struct cluster *cl, const char *tag, const char *const *manager_extra);
/* Start a second manager ("manager-2") on the same store; agents started
 * after it register with both. */
int cl_second_manager(struct cluster *cl, const char *const *extra);
/* Start agent i (0-based) on 127.0.0.(i+2) (or cl_hosts->agents[i]) as
 * node i+2, or restart it. */
int cl_agent_start(struct cluster *cl, int i, const char *const *extra);
/* Stop the agents (SIGTERM: they stop their programs), kill manager and
 * store, reap, remove the directory. */
void cl_stop(struct cluster *cl);
/* cmocka teardown: stop every cluster a failed test left running. */
int cl_teardown(void **state);

/* Node id of agent i. */
static inline uint64_t cl_node(int i) { return (uint64_t)i + 2; }

/* One request to the manager; the ERROR text (if any) goes to why. */
int cl_call(struct cluster *cl, uint8_t type, const union proto_msg *req,
	    uint8_t expect, union proto_msg *reply, int timeout_ms,
	    char *why, size_t whylen);
/* The same to the daemon at addr (manager-2, the store, an agent). */
int cl_call_at(struct cluster *cl, const char *addr, uint8_t type,
	       const union proto_msg *req, uint8_t expect, union proto_msg *reply,
	       int timeout_ms, char *why, size_t whylen);
/* RUN program argv (NULL-terminated) as process id on node (0 = any). */
int cl_run(struct cluster *cl, const char *id, uint64_t node,
	   const char *const *argv, const char *const *env);
/* MIGRATE; fills *ok. */
int cl_migrate(struct cluster *cl, const char *id, uint64_t to, int allow_same,
	       struct proto_migrate_ok *ok, char *why, size_t whylen);
/* The manager's view of a process (state 0 if unknown). */
int cl_proc(struct cluster *cl, const char *id, struct proto_proc_entry *out);
/* Wait until the durable sequence of id under incarnation inc reaches at
 * least seq (timeout_ms); returns 0 or -1. */
int cl_wait_durable(struct cluster *cl, const char *id, uint64_t inc, uint64_t seq,
		    int timeout_ms);
/* Wait until a log line containing needle appears in d's log. */
int cl_wait_log(const struct tu_daemon *d, const char *needle, int count,
		int timeout_ms);
/* Find the last line of d's log containing needle; copies it to out. */
int cl_log_line(const struct tu_daemon *d, const char *needle, char *out, size_t len);

/* The pid of the one live instance of process id, once there is exactly
 * one and it is a child of agent i (counted from /proc, as cl_instances;
 * waits up to 10 s). -1 if that did not come to be: none, more than one
 * (an old instance still alive), or on another node. */
int cl_program_pid(struct cluster *cl, int agent, const char *id);
/* Wait until exactly n live instances of process id exist (cl_instances).
 * 0 or -1 on timeout. */
int cl_wait_instances(const char *id, int n, int timeout_ms);
/* Wait until the manager reports id RUNNING under incarnation inc; its
 * node, or 0 on timeout. */
uint64_t cl_wait_running(struct cluster *cl, const char *id, uint64_t inc, int timeout_ms);

/* Live (not zombie) processes started as process id (their RTCMS_PROCESS),
 * counted from /proc; their parent pids go to parents (max of them). */
int cl_instances(const char *id, int *parents, int max);
/* One MSTATUS of manager mgr: out[i] is its view of ids[i] (state 0 if
 * unknown); nodes (optional, PROTO_NODES_MAX long) gets its node table and
 * *node_count their number. Returns 0 or an RTCMS error (connect timeout
 * timeout_ms). */
int cl_procs_at(struct cluster *cl, const struct tu_daemon *mgr, const char *const *ids,
		int n, struct proto_proc_entry *out, struct proto_node_entry *nodes,
		int *node_count, int timeout_ms);
/* Wait until manager mgr's node table has agents 0..agents-1 alive (they
 * registered with it). 0 or -1 on timeout. */
int cl_wait_nodes(struct cluster *cl, const struct tu_daemon *mgr, int agents,
		  int timeout_ms);
/* The pid of the one live instance of id, or -1 (none, or more than one). */
int cl_instance_pid(const char *id);
/* The pid of a live instance of process id that agent i started (its
 * child), whatever other instances exist; waits up to timeout_ms. -1 if
 * none came. */
int cl_child_instance(struct cluster *cl, int agent, const char *id, int timeout_ms);
/* SIGKILL every child process of parent (a node's programs). */
void cl_kill_children(int parent);
/* cl_proc, asking the manager mgr (e.g. &cl->manager2). */
int cl_proc_at(struct cluster *cl, const struct tu_daemon *mgr, const char *id,
	       struct proto_proc_entry *out);

#endif
