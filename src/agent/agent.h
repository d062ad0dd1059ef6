/*
 * agent.h - rtcms-agent as its main.c sees it: the settings, and an agent
 * to create, run and free. Everything inside is in agent_int.h.
 */
#ifndef RTCMS_AGENT_H
#define RTCMS_AGENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proto/frame.h"
#include "proto/msg.h"
#include "util/config.h"
#include "util/datakey.h"

struct agent_config {
	char listen[PROTO_ADDR_MAX + 1];
	char advertise[PROTO_ADDR_MAX + 1];
	char key[1024];
	char data_keyring[1024];       /* "" : checkpoint contents stay plain */
	char name[PROTO_ID_MAX + 1];
	char node_id[32];
	char log_level[16];
	char ready_file[1024];
	char metrics_listen[PROTO_ADDR_MAX + 1]; /* "": no metrics endpoint */
	struct config_list managers;
	struct config_list programs;   /* `run =` lines: "ID PATH ARGS..." */
	uint64_t area_capacity;
	uint64_t quota;
	uint64_t poll_ms;
	uint64_t capture_lag_ms;
	uint64_t freeze_timeout_ms;
	uint64_t restore_timeout_ms;
	uint64_t adopt_timeout_ms;
	uint64_t freeze_hold_ms;       /* frozen this long without THAW/STOP: RESOLVE */
	uint64_t io_timeout_ms;
	uint64_t heartbeat_ms;         /* UDP heartbeat interval */
	uint64_t lease_ms;             /* agent lease unless a manager sets a shorter one */
	uint64_t report_mem_available;  /* test hook: 0 = real MemAvailable */
	uint64_t report_cpu_permille;   /* test hook: 0 = real load; 1..1001 = value - 1 */
	char restart[16];              /* default restart policy */
	uint64_t restart_backoff_ms;   /* first back-off, doubled per restart */
	uint64_t max_restarts;         /* restarts within restart_window, then give up */
	uint64_t restart_window_ms;
};

struct agent;

/* The built-in settings (what main.c starts from before the config file). */
void agent_config_defaults(struct agent_config *cfg);

/* Whether s names a restart policy: on-failure, always or never. */
bool agent_restart_valid(const char *s);

/*
 * A new agent with a copy of cfg, the cluster key and the node id: a
 * fresh boot id, the machine's memory, the managers' addresses parsed.
 * Call after sodium_init(). Returns 0 and *out (agent_free() it), or
 * RTCMS_EINVAL with the reason in err (a manager address), RTCMS_ENOMEM.
 */
int agent_new(const struct agent_config *cfg, const struct proto_key *key, uint64_t node,
	      struct agent **out, char *err, size_t errlen);

/*
 * Serve until SIGINT or SIGTERM: listen, heartbeat, tell the managers,
 * capture, restore. The agent's programs are stopped when it returns.
 * Returns 0, or the negative RTCMS_E* code that kept it from starting.
 */
int agent_run(struct agent *a);

/* Free an agent (after agent_run returned) and wipe its keys. NULL is a
 * no-op. */
void agent_free(struct agent *a);

/*
 * Give the agent the data keyring (before agent_run): new chunks are
 * sealed under its active key, restores open chunks under any of its
 * keys. A ring with no key leaves chunks plain. ring is copied.
 */
void agent_set_data_keys(struct agent *a, const struct datakey_ring *ring);

#endif
