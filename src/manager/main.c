/*
 * rtcms-manager - the checkpoint management system (the thesis' CMS):
 * registers agents, pulls announced checkpoints into the store, places and
 * migrates programs.
 *
 *   rtcms-manager --config /etc/rtcms/manager.ini
 *   rtcms-manager --listen 127.0.0.1:7600 --store 127.0.0.1:7400 --key k
 */
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/cmdline.h"
#include "log/log.h"
#include "manager.h"
#include "rtcms_error.h"
#include "util/keyfile.h"

static struct manager mgr;
#define cfg mgr.cfg

static const struct config_field fields[] = {
	{ "manager", "listen", CONFIG_STR, cfg.listen, sizeof(cfg.listen), 0, 0 },
	{ "manager", "key", CONFIG_STR, cfg.key, sizeof(cfg.key), 0, 0 },
	{ "manager", "name", CONFIG_STR, cfg.name, sizeof(cfg.name), 0, 0 },
	{ "manager", "store", CONFIG_STR, cfg.store, sizeof(cfg.store), 0, 0 },
	{ "manager", "pull_concurrency", CONFIG_U64, &cfg.pullers, 0, 1, MANAGER_PULLERS_MAX },
	{ "manager", "claim_lease", CONFIG_U64, &cfg.claim_lease_ms, 0, 100, 3600000 },
	{ "manager", "node_timeout", CONFIG_U64, &cfg.node_timeout_ms, 0, 100, 3600000 },
	{ "manager", "freeze_timeout", CONFIG_U64, &cfg.freeze_timeout_ms, 0, 1, 600000 },
	{ "manager", "restore_timeout", CONFIG_U64, &cfg.restore_timeout_ms, 0, 10, 600000 },
	{ "manager", "io_timeout", CONFIG_U64, &cfg.io_timeout_ms, 0, 10, 600000 },
	{ "manager", "agent_lease", CONFIG_U64, &cfg.agent_lease_ms, 0, 20, 3600000 },
	{ "manager", "heartbeat_interval", CONFIG_U64, &cfg.heartbeat_ms, 0, 5, 60000 },
	{ "manager", "fence_margin", CONFIG_U64, &cfg.fence_margin_ms, 0, 0, 3600000 },
	{ "manager", "ready_file", CONFIG_STR, cfg.ready_file, sizeof(cfg.ready_file), 0, 0 },
	{ "manager", "chain_max", CONFIG_U64, &cfg.chain_max, 0, 0, 1024 },
	{ "placement", "policy", CONFIG_STR, cfg.policy, sizeof(cfg.policy), 0, 0 },
	{ "placement", "weight_ram", CONFIG_STR, cfg.w_ram, sizeof(cfg.w_ram), 0, 0 },
	{ "placement", "weight_cpu", CONFIG_STR, cfg.w_cpu, sizeof(cfg.w_cpu), 0, 0 },
	{ "placement", "weight_quota", CONFIG_STR, cfg.w_quota, sizeof(cfg.w_quota), 0, 0 },
	{ "placement", "ram_reserve", CONFIG_U64, &cfg.reserve, 0, 0, 1ull << 50 },
	{ "log", "level", CONFIG_STR, cfg.log_level, sizeof(cfg.log_level), 0, 0 },
	{ NULL, NULL, 0, NULL, 0, 0, 0 },
};

static const struct cmdline_opt opts[] = {
	{ "listen", 'l', "listen" },
	{ "key", 'k', "key" },
	{ "name", 'n', "name" },
	{ "store", 's', "store" },
	{ "pull-concurrency", 0, "pull_concurrency" },
	{ "claim-lease", 0, "claim_lease" },
	{ "node-timeout", 0, "node_timeout" },
	{ "agent-lease", 0, "agent_lease" },
	{ "fence-margin", 0, "fence_margin" },
	{ "chain-max", 0, "chain_max" },
	{ "placement", 'p', "policy" },
	{ "ready-file", 0, "ready_file" },
	{ "log-level", 'v', "level" },
	{ NULL, 0, NULL },
};

static void usage(FILE *f)
{
	fprintf(f,
"usage: rtcms-manager [--config FILE] [options]\n"
"\n"
"The rtcms manager: agents register with it and announce checkpoints; it\n"
"pulls them into the store, and moves programs to the best node.\n"
"\n"
"options (override the config file, section [manager]):\n"
"  -c, --config FILE          INI config file (see contrib/manager.ini)\n"
"  -l, --listen HOST:PORT     address to listen on (default 127.0.0.1:7600;\n"
"                             port 0 picks a free port)\n"
"  -s, --store HOST:PORT      the checkpoint store (default 127.0.0.1:7400)\n"
"  -k, --key FILE             cluster key file (rtcmsctl keygen FILE)\n"
"  -n, --name NAME            manager name, also its claimant name (default manager)\n"
"      --pull-concurrency N   checkpoints pulled at once (default 2)\n"
"      --claim-lease MS       lease of a migration's claim (default 30000)\n"
"      --node-timeout MS      a node unheard this long has failed (default 300);\n"
"                             must be >= agent lease + fence margin\n"
"      --agent-lease MS       agents fence their programs after this long without\n"
"                             an answer from any manager (default 200)\n"
"      --fence-margin MS      safety margin of the rule above (default 100)\n"
"      --chain-max N          deltas in a row before the next full checkpoint\n"
"                             is pulled (default 16; 0: always full)\n"
"  -p, --placement POLICY     weighted (default) or thesis ([placement] weights)\n"
"      --ready-file FILE      write the bound address here once listening\n"
"  -v, --log-level LEVEL      error, warn, info (default) or debug\n"
"  -h, --help                 this help\n");
}

static int weight(const char *name, const char *s, double *out)
{
	char *end;
	if (!s[0])
		return 0;
	double v = strtod(s, &end);
	if (*end || v < 0 || v > 1000) {
		fprintf(stderr, "rtcms-manager: [placement] %s = \"%s\": expected a number "
			">= 0\n", name, s);
		return -1;
	}
	*out = v;
	return 0;
}

int main(int argc, char **argv)
{
	char err[1024];

	snprintf(cfg.listen, sizeof(cfg.listen), "127.0.0.1:7600");
	snprintf(cfg.store, sizeof(cfg.store), "127.0.0.1:7400");
	snprintf(cfg.name, sizeof(cfg.name), "manager");
	snprintf(cfg.log_level, sizeof(cfg.log_level), "info");
	snprintf(cfg.policy, sizeof(cfg.policy), "weighted");
	cfg.pullers = 2;
	cfg.claim_lease_ms = 30000;
	cfg.node_timeout_ms = 300;
	cfg.agent_lease_ms = 200;
	cfg.heartbeat_ms = 50;
	cfg.fence_margin_ms = 100;
	cfg.chain_max = 16;
	cfg.freeze_timeout_ms = 2000;
	cfg.restore_timeout_ms = 15000;
	cfg.io_timeout_ms = 5000;
	placement_defaults(&mgr.placement);
	cfg.reserve = mgr.placement.ram_reserve;

	int r = cmdline_parse("rtcms-manager", argc, argv, fields, opts, usage);
	if (r)
		return r == 1 ? 0 : 2;
	int level = log_level_parse(cfg.log_level);
	if (level < 0) {
		fprintf(stderr, "rtcms-manager: log level \"%s\": expected error, warn, "
			"info or debug\n", cfg.log_level);
		return 2;
	}
	if (placement_policy_parse(cfg.policy, &mgr.placement.policy) != 0) {
		fprintf(stderr, "rtcms-manager: placement policy \"%s\": expected weighted "
			"or thesis\n", cfg.policy);
		return 2;
	}
	if (weight("weight_ram", cfg.w_ram, &mgr.placement.w_ram) ||
	    weight("weight_cpu", cfg.w_cpu, &mgr.placement.w_cpu) ||
	    weight("weight_quota", cfg.w_quota, &mgr.placement.w_quota))
		return 2;
	if (mgr.placement.w_ram + mgr.placement.w_cpu + mgr.placement.w_quota <= 0) {
		fprintf(stderr, "rtcms-manager: [placement] weights are all 0\n");
		return 2;
	}
	mgr.placement.ram_reserve = cfg.reserve;
	/* a failed node's programs are restored only after they were fenced */
	if (cfg.node_timeout_ms < cfg.agent_lease_ms + cfg.fence_margin_ms) {
		fprintf(stderr, "rtcms-manager: node_timeout (%" PRIu64 " ms) must be at "
			"least agent_lease + fence_margin (%" PRIu64 " + %" PRIu64 " ms): a "
			"node must have fenced its programs before they are restored "
			"elsewhere\n", cfg.node_timeout_ms, cfg.agent_lease_ms,
			cfg.fence_margin_ms);
		return 2;
	}
	if (cfg.heartbeat_ms * 2 > cfg.agent_lease_ms) {
		fprintf(stderr, "rtcms-manager: heartbeat_interval (%" PRIu64 " ms) must be "
			"at most half the agent_lease (%" PRIu64 " ms), or one lost datagram "
			"fences a healthy node\n", cfg.heartbeat_ms, cfg.agent_lease_ms);
		return 2;
	}
	if (cfg.key[0] == '\0') {
		fprintf(stderr, "rtcms-manager: no cluster key: give --key FILE or key = "
			"FILE in [manager] (create one with `rtcmsctl keygen FILE`)\n");
		return 2;
	}
	if (keyfile_load(cfg.key, &mgr.key, err, sizeof(err)) != 0) {
		fprintf(stderr, "rtcms-manager: %s\n", err);
		return 2;
	}
	log_init(cfg.name, (enum log_level)level);
	signal(SIGPIPE, SIG_IGN);
	if (sodium_init() < 0) {
		log_error("libsodium cannot start");
		return 1;
	}
	randombytes_buf(&mgr.epoch, sizeof(mgr.epoch));
	mgr.procs = calloc(MANAGER_PROCS_MAX, sizeof(*mgr.procs));
	if (!mgr.procs)
		return 1;
	mgr.store_up = 1;
	uv_mutex_init(&mgr.lock);
	uv_cond_init(&mgr.work);
	int rc = manager_run(&mgr);
	sodium_memzero(&mgr.key, sizeof(mgr.key));
	free(mgr.procs);
	if (rc) {
		log_error("%s", rtcms_strerror(rc));
		return 1;
	}
	return 0;
}
