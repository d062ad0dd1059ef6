/*
 * manager.h - rtcms-manager as its main.c sees it: the settings, an opaque
 * manager built from them, its run, and the one setting that changes while
 * it runs (the placement, at SIGHUP). Everything inside is in
 * manager_int.h.
 */
#ifndef RTCMS_MANAGER_H
#define RTCMS_MANAGER_H

#include <stdint.h>

#include "placement.h"
#include "proto/frame.h"
#include "proto/msg.h"

#define MANAGER_PULLERS_MAX 16

struct manager_config {
	char listen[PROTO_ADDR_MAX + 1];
	char key[1024];
	char name[PROTO_ID_MAX + 1];
	char store[PROTO_ADDR_MAX + 1];
	char log_level[16];
	char ready_file[1024];
	char metrics_listen[PROTO_ADDR_MAX + 1]; /* "": no metrics endpoint */
	char policy[16];
	char w_ram[16], w_cpu[16], w_quota[16];
	uint64_t reserve;
	uint64_t pullers;
	uint64_t claim_lease_ms;
	uint64_t node_timeout_ms;
	uint64_t freeze_timeout_ms;
	uint64_t restore_timeout_ms;
	uint64_t io_timeout_ms;
	uint64_t agent_lease_ms;       /* told to agents in REGISTER_OK */
	uint64_t heartbeat_ms;         /* told to agents in REGISTER_OK */
	uint64_t fence_margin_ms;      /* node_timeout >= agent lease + this */
	uint64_t chain_max;            /* deltas in a row before a full image
					* (0: incremental transfer off) */
	uint64_t manager_lease_ms;     /* asked of the store; heartbeats are answered
					* only while it holds */
	uint64_t lease_renew_ms;       /* how often it is renewed */
};

struct manager;

/* A manager with settings cfg, placement pc and cluster key key (all
 * copied), whose RPC goes over the network (a fresh random epoch; call
 * after sodium_init()). Returns 0 and *out (free with manager_free), or
 * RTCMS_ENOMEM. */
int manager_new(const struct manager_config *cfg, const struct placement_config *pc,
		const struct proto_key *key, struct manager **out);

/* Wipe the key and free m; manager_free(NULL) is a no-op. */
void manager_free(struct manager *m);

/* Listen, start every thread and run the event loop until SIGINT or
 * SIGTERM; returns 0 once everything stopped, or the error that kept it
 * from starting. */
int manager_run(struct manager *m);

/* Replace the placement settings (SIGHUP; any thread): *old gets the
 * previous ones. A placement under way keeps the copy it took. */
void manager_set_placement(struct manager *m, const struct placement_config *pc,
			   struct placement_config *old);

#endif
