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
#include "daemon/hbthread.h"
#include "daemon/journal.h"
#include "log/log.h"
#include "manager.h"
#include "metrics/http.h"
#include "net/addr.h"
#include "rtcms_error.h"
#include "stats.h"
#include "util/keyfile.h"

static struct manager_config cfg;
static struct placement_config placement;
static struct manager *mgr;

/* [placement] policy and weights (util/config.h's checks) */
static int policy_check(const char *v, char *why, size_t whylen)
{
	enum placement_policy p;
	if (placement_policy_parse(v, &p) == 0)
		return 0;
	snprintf(why, whylen, "\"%s\": expected weighted or thesis", v);
	return RTCMS_ECONFIG;
}

static int weight_check(const char *v, char *why, size_t whylen)
{
	char *end;
	double w = strtod(v, &end);
	if (v[0] && !*end && w >= 0 && w <= 1000)
		return 0;
	snprintf(why, whylen, "\"%s\": expected a number 0..1000", v);
	return RTCMS_ECONFIG;
}

static const struct config_field fields[] = {
	{ "manager", "listen", CONFIG_STR, cfg.listen, sizeof(cfg.listen), 0, 0, net_addr_check_listen },
	{ "manager", "key", CONFIG_STR, cfg.key, sizeof(cfg.key), 0, 0, NULL },
	{ "manager", "name", CONFIG_STR, cfg.name, sizeof(cfg.name), 0, 0, NULL },
	{ "manager", "store", CONFIG_STR, cfg.store, sizeof(cfg.store), 0, 0, net_addr_check_peer },
	{ "manager", "pull_concurrency", CONFIG_U64, &cfg.pullers, 0, 1, MANAGER_PULLERS_MAX, NULL },
	{ "manager", "claim_lease", CONFIG_U64, &cfg.claim_lease_ms, 0, 100, 3600000, NULL },
	{ "manager", "node_timeout", CONFIG_U64, &cfg.node_timeout_ms, 0, 100, 3600000, NULL },
	{ "manager", "freeze_timeout", CONFIG_U64, &cfg.freeze_timeout_ms, 0, 1, 600000, NULL },
	{ "manager", "restore_timeout", CONFIG_U64, &cfg.restore_timeout_ms, 0, 10, 600000, NULL },
	{ "manager", "io_timeout", CONFIG_U64, &cfg.io_timeout_ms, 0, 10, 600000, NULL },
	{ "manager", "agent_lease", CONFIG_U64, &cfg.agent_lease_ms, 0, 20, 3600000, NULL },
	{ "manager", "heartbeat_interval", CONFIG_U64, &cfg.heartbeat_ms, 0, 5, 60000, NULL },
	{ "manager", "fence_margin", CONFIG_U64, &cfg.fence_margin_ms, 0, 0, 3600000, NULL },
	{ "manager", "ready_file", CONFIG_STR, cfg.ready_file, sizeof(cfg.ready_file), 0, 0, NULL },
	{ "manager", "metrics_listen", CONFIG_STR, cfg.metrics_listen, sizeof(cfg.metrics_listen), 0, 0, metrics_listen_check },
	{ "manager", "chain_max", CONFIG_U64, &cfg.chain_max, 0, 0, 1024, NULL },
	{ "manager", "manager_lease", CONFIG_U64, &cfg.manager_lease_ms, 0, 100, 600000, NULL },
	{ "manager", "lease_renew", CONFIG_U64, &cfg.lease_renew_ms, 0, 10, 60000, NULL },
	{ "placement", "policy", CONFIG_STR, cfg.policy, sizeof(cfg.policy), 0, 0, policy_check },
	{ "placement", "weight_ram", CONFIG_STR, cfg.w_ram, sizeof(cfg.w_ram), 0, 0, weight_check },
	{ "placement", "weight_cpu", CONFIG_STR, cfg.w_cpu, sizeof(cfg.w_cpu), 0, 0, weight_check },
	{ "placement", "weight_quota", CONFIG_STR, cfg.w_quota, sizeof(cfg.w_quota), 0, 0, weight_check },
	{ "placement", "ram_reserve", CONFIG_U64, &cfg.reserve, 0, 0, 1ull << 50, NULL },
	{ "log", "level", CONFIG_STR, cfg.log_level, sizeof(cfg.log_level), 0, 0, log_level_check },
	{ NULL, NULL, 0, NULL, 0, 0, 0, NULL },
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
	{ "manager-lease", 0, "manager_lease" },
	{ "lease-renew", 0, "lease_renew" },
	{ "placement", 'p', "policy" },
	{ "ready-file", 0, "ready_file" },
	{ "metrics-listen", 0, "metrics_listen" },
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
"      --manager-lease MS     this manager's lease from the store (default 5000):\n"
"                             without it, it answers no heartbeat\n"
"      --lease-renew MS       how often the lease is renewed (default 100)\n"
"  -p, --placement POLICY     weighted (default) or thesis ([placement] weights)\n"
"      --ready-file FILE      write the bound address here once listening\n"
"      --metrics-listen HOST:PORT  serve Prometheus metrics at GET /metrics\n"
"                             there (default: off; port 0 picks a free port,\n"
"                             logged)\n"
"  -v, --log-level LEVEL      error, warn, info (default) or debug\n"
"  -h, --help                 this help\n"
"      --version              the version and the git revision it was built from\n");
}

/* A weight (checked by weight_check where it was set); empty: the default. */
static void weight(const char *s, double *out)
{
	if (s[0])
		*out = strtod(s, NULL);
}

/* The placement settings c names (at the start and at SIGHUP). 0, or
 * RTCMS_EINVAL with the problem in err. */
static int placement_from(const struct manager_config *c, struct placement_config *out,
			  char *err, size_t errlen)
{
	placement_defaults(out);
	/* the policy and the weights were checked where they were set */
	placement_policy_parse(c->policy, &out->policy);
	weight(c->w_ram, &out->w_ram);
	weight(c->w_cpu, &out->w_cpu);
	weight(c->w_quota, &out->w_quota);
	if (out->w_ram + out->w_cpu + out->w_quota <= 0) {
		snprintf(err, errlen, "[placement] weights are all 0");
		return RTCMS_EINVAL;
	}
	out->ram_reserve = c->reserve;
	return 0;
}

static const char *placement_text(const struct placement_config *p, char *buf, size_t len)
{
	if (p->policy == PLACEMENT_THESIS)
		snprintf(buf, len, "thesis (free RAM x free quota), reserve %" PRIu64 " MiB",
			 p->ram_reserve >> 20);
	else
		snprintf(buf, len, "weighted (ram %g, cpu %g, quota %g), reserve %" PRIu64
			 " MiB", p->w_ram, p->w_cpu, p->w_quota, p->ram_reserve >> 20);
	return buf;
}

/* What the manager started with: SIGHUP computes the settings again from
 * them and the config file as it is now. */
static struct manager_config defaults;
static int saved_argc;
static char **saved_argv;

/* SIGHUP (loop thread): the log level and the placement policy, weights
 * and reserve apply at once; every other setting that changed in the file
 * is named and takes effect at the next start. Nothing stops. */
static void on_sighup(void *ctx)
{
	static struct manager_config fresh;
	static const char *const applied[] = { "level", "policy", "weight_ram", "weight_cpu",
					       "weight_quota", "ram_reserve", NULL };
	struct reload_settings s = { fields, &cfg, &defaults, sizeof(cfg) };
	struct placement_config pc, old;
	char err[1024], level[128], before[160], after[160], later[1024];
	enum log_level to;
	(void)ctx;

	if (cmdline_sighup(saved_argc, saved_argv, opts, &s, &fresh, &to, level,
			   sizeof(level)) != 0)
		return;
	if (placement_from(&fresh, &pc, err, sizeof(err)) != 0) {
		log_warn("SIGHUP: %s: the settings stay as they were", err);
		return;
	}
	size_t n = reload_changed(&s, &cfg, &fresh, applied, later, sizeof(later));
	manager_set_placement(mgr, &pc, &old);
	memcpy(cfg.log_level, fresh.log_level, sizeof(cfg.log_level));
	memcpy(cfg.policy, fresh.policy, sizeof(cfg.policy));
	memcpy(cfg.w_ram, fresh.w_ram, sizeof(cfg.w_ram));
	memcpy(cfg.w_cpu, fresh.w_cpu, sizeof(cfg.w_cpu));
	memcpy(cfg.w_quota, fresh.w_quota, sizeof(cfg.w_quota));
	cfg.reserve = fresh.reserve;
	placement_text(&old, before, sizeof(before));
	placement_text(&pc, after, sizeof(after));
	if (strcmp(before, after) == 0)
		reload_announce(to, "SIGHUP: %s; placement %s", level, after);
	else
		reload_announce(to, "SIGHUP: %s; placement %s -> %s", level, before, after);
	if (n)
		log_info("SIGHUP: changed in the file, take effect at the next start: %s", later);
}

int main(int argc, char **argv)
{
	struct proto_key key;
	char err[1024];
	int rc;

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
	cfg.manager_lease_ms = 5000;
	cfg.lease_renew_ms = 100;
	cfg.freeze_timeout_ms = 2000;
	cfg.restore_timeout_ms = 15000;
	cfg.io_timeout_ms = 5000;
	placement_defaults(&placement);
	cfg.reserve = placement.ram_reserve;
	defaults = cfg;
	saved_argc = argc;
	saved_argv = argv;

	enum cmdline_result cr = cmdline_parse("rtcms-manager", argc, argv, fields, opts, usage);
	if (cr != CMDLINE_RUN)
		return cr == CMDLINE_HELP ? 0 : 2;
	int level = log_level_parse(cfg.log_level); /* checked where it was set */
	if (placement_from(&cfg, &placement, err, sizeof(err)) != 0) {
		fprintf(stderr, "rtcms-manager: %s\n", err);
		return 2;
	}
	/* a failed node's programs are restored only after they were fenced */
	if (cfg.node_timeout_ms < cfg.agent_lease_ms + cfg.fence_margin_ms) {
		fprintf(stderr, "rtcms-manager: node_timeout (%" PRIu64 " ms) must be at "
			"least agent_lease + fence_margin (%" PRIu64 " + %" PRIu64 " ms): a "
			"node must have fenced its programs before they are restored "
			"elsewhere\n", cfg.node_timeout_ms, cfg.agent_lease_ms,
			cfg.fence_margin_ms);
		return 2;
	}
	if (cfg.lease_renew_ms * 2 > cfg.manager_lease_ms) {
		fprintf(stderr, "rtcms-manager: lease_renew (%" PRIu64 " ms) must be at most "
			"half the manager_lease (%" PRIu64 " ms)\n", cfg.lease_renew_ms,
			cfg.manager_lease_ms);
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
	if (keyfile_load(cfg.key, &key, err, sizeof(err)) != 0) {
		fprintf(stderr, "rtcms-manager: %s\n", err);
		return 2;
	}
	log_init(cfg.name, (enum log_level)level);
	log_journal_attach("manager", cfg.name, journal_sendv);
	signal(SIGPIPE, SIG_IGN);
	if (sodium_init() < 0) {
		log_error("libsodium cannot start");
		return 1;
	}
	rc = manager_new(&cfg, &placement, &key, &mgr);
	sodium_memzero(&key, sizeof(key));
	if (rc) {
		log_error("%s", rtcms_strerror(rc));
		return 1;
	}
	/* SIGHUP re-reads the config file; it never stops the manager */
	if (reload_on_sighup(on_sighup, NULL) != 0)
		log_warn("cannot handle SIGHUP: it would stop the manager");
	/* the metrics endpoint, if metrics_listen is set (its own thread) */
	struct metrics_http *mx = NULL;
	size_t nf;
	const struct metric_family *mf = manager_stats_families(&nf);
	if (metrics_http_serve(cfg.metrics_listen, mf, nf, &mx) != 0) {
		manager_free(mgr);
		return 1;
	}
	rt_lock_memory("this daemon"); /* time-critical threads never wait on a fault */
	rc = manager_run(mgr);
	metrics_http_stop(mx);
	manager_free(mgr);
	if (rc) {
		log_error("%s", rtcms_strerror(rc));
		return 1;
	}
	return 0;
}
