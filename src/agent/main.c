/*
 * rtcms-agent - the node agent (the thesis' RTCR): parent of the protected
 * programs of its node, owner of their checkpoint areas; registers with
 * the managers, notifies them of checkpoints and serves their pulls, and
 * restores programs sent to this node.
 *
 *   rtcms-agent --config /etc/rtcms/agent.ini
 *   rtcms-agent --listen 127.0.0.2:0 --manager 127.0.0.1:7600 --key k
 */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>

#include "agent.h"
#include "daemon/cmdline.h"
#include "daemon/hbthread.h"
#include "daemon/journal.h"
#include "daemon/reload.h"
#include "log/log.h"
#include "metrics/http.h"
#include "net/addr.h"
#include "proto/spec.h"
#include "rtcms_error.h"
#include "stats.h"
#include "util/datakey.h"
#include "util/keyfile.h"
#include "util/sysinfo.h"

static struct agent_config cfg;

/* util/config.h's checks of the agent's own settings */
static int node_id_check(const char *v, char *why, size_t whylen)
{
	char *end;
	errno = 0;
	uint64_t id = strtoull(v, &end, 16);
	if (v[0] && v[0] != '-' && !*end && errno == 0 && id != 0)
		return 0;
	snprintf(why, whylen, "\"%s\": expected a non-zero hex number of at most 16 "
		 "digits", v);
	return RTCMS_ECONFIG;
}

static int run_check(const char *v, char *why, size_t whylen)
{
	char id[PROTO_ID_MAX + 2];
	if (sscanf(v, "%129s", id) == 1 && proto_process_id_valid(id) && strchr(v, ' '))
		return 0;
	snprintf(why, whylen, "\"%s\": expected \"ID PATH [ARGS...]\"", v);
	return RTCMS_ECONFIG;
}

static int restart_check(const char *v, char *why, size_t whylen)
{
	if (agent_restart_valid(v))
		return 0;
	snprintf(why, whylen, "\"%s\": expected on-failure, always or never", v);
	return RTCMS_ECONFIG;
}

static const struct config_field fields[] = {
	{ "agent", "listen", CONFIG_STR, cfg.listen, sizeof(cfg.listen), 0, 0, net_addr_check_listen },
	{ "agent", "advertise", CONFIG_STR, cfg.advertise, sizeof(cfg.advertise), 0, 0, net_addr_check_peer },
	{ "agent", "key", CONFIG_STR, cfg.key, sizeof(cfg.key), 0, 0, NULL },
	{ "agent", "data_keyring", CONFIG_STR, cfg.data_keyring, sizeof(cfg.data_keyring), 0, 0, NULL },
	{ "agent", "name", CONFIG_STR, cfg.name, sizeof(cfg.name), 0, 0, NULL },
	{ "agent", "node_id", CONFIG_STR, cfg.node_id, sizeof(cfg.node_id), 0, 0, node_id_check },
	{ "agent", "manager", CONFIG_LIST, &cfg.managers, 0, 0, 0, net_addr_check_peer },
	{ "agent", "run", CONFIG_LIST, &cfg.programs, 0, 0, 0, run_check },
	{ "agent", "area_capacity", CONFIG_U64, &cfg.area_capacity, 0, 4096, 1ull << 40, NULL },
	{ "agent", "quota", CONFIG_U64, &cfg.quota, 0, 0, 100000, NULL },
	{ "agent", "poll_interval", CONFIG_U64, &cfg.poll_ms, 0, 1, 10000, NULL },
	{ "agent", "capture_lag", CONFIG_U64, &cfg.capture_lag_ms, 0, 1, 3600000, NULL },
	{ "agent", "freeze_timeout", CONFIG_U64, &cfg.freeze_timeout_ms, 0, 1, 600000, NULL },
	{ "agent", "restore_timeout", CONFIG_U64, &cfg.restore_timeout_ms, 0, 10, 600000, NULL },
	{ "agent", "adopt_timeout", CONFIG_U64, &cfg.adopt_timeout_ms, 0, 10, 600000, NULL },
	{ "agent", "freeze_hold", CONFIG_U64, &cfg.freeze_hold_ms, 0, 100, 3600000, NULL },
	{ "agent", "io_timeout", CONFIG_U64, &cfg.io_timeout_ms, 0, 10, 600000, NULL },
	{ "agent", "heartbeat_interval", CONFIG_U64, &cfg.heartbeat_ms, 0, 5, 60000, NULL },
	{ "agent", "lease", CONFIG_U64, &cfg.lease_ms, 0, 20, 3600000, NULL },
	{ "agent", "ready_file", CONFIG_STR, cfg.ready_file, sizeof(cfg.ready_file), 0, 0, NULL },
	{ "agent", "metrics_listen", CONFIG_STR, cfg.metrics_listen, sizeof(cfg.metrics_listen), 0, 0, metrics_listen_check },
	{ "agent", "restart", CONFIG_STR, cfg.restart, sizeof(cfg.restart), 0, 0, restart_check },
	{ "agent", "restart_backoff", CONFIG_U64, &cfg.restart_backoff_ms, 0, 1, 600000, NULL },
	{ "agent", "max_restarts", CONFIG_U64, &cfg.max_restarts, 0, 0, 1000000, NULL },
	{ "agent", "restart_window", CONFIG_U64, &cfg.restart_window_ms, 0, 100, 86400000, NULL },
	{ "test", "report_mem_available", CONFIG_U64, &cfg.report_mem_available, 0, 0, UINT64_MAX, NULL },
	{ "test", "report_cpu_load", CONFIG_U64, &cfg.report_cpu_permille, 0, 0, 1001, NULL },
	{ "log", "level", CONFIG_STR, cfg.log_level, sizeof(cfg.log_level), 0, 0, log_level_check },
	{ NULL, NULL, 0, NULL, 0, 0, 0, NULL },
};

static const struct cmdline_opt opts[] = {
	{ "listen", 'l', "listen" },
	{ "advertise", 0, "advertise" },
	{ "key", 'k', "key" },
	{ "data-keyring", 0, "data_keyring" },
	{ "name", 'n', "name" },
	{ "node-id", 0, "node_id" },
	{ "manager", 'm', "manager" },
	{ "run", 0, "run" },
	{ "area-capacity", 0, "area_capacity" },
	{ "quota", 'q', "quota" },
	{ "poll-interval", 0, "poll_interval" },
	{ "freeze-timeout", 0, "freeze_timeout" },
	{ "restore-timeout", 0, "restore_timeout" },
	{ "freeze-hold", 0, "freeze_hold" },
	{ "ready-file", 0, "ready_file" },
	{ "metrics-listen", 0, "metrics_listen" },
	{ "heartbeat-interval", 0, "heartbeat_interval" },
	{ "lease", 0, "lease" },
	{ "restart", 0, "restart" },
	{ "restart-backoff", 0, "restart_backoff" },
	{ "max-restarts", 0, "max_restarts" },
	{ "restart-window", 0, "restart_window" },
	{ "log-level", 'v', "level" },
	{ NULL, 0, NULL },
};

static void usage(FILE *f)
{
	fprintf(f,
"usage: rtcms-agent [--config FILE] [options]\n"
"\n"
"The rtcms node agent: starts protected programs, gives each a checkpoint\n"
"area, tells the managers of every checkpoint and restores programs moved\n"
"to this node.\n"
"\n"
"options (override the config file, section [agent]):\n"
"  -c, --config FILE          INI config file (see contrib/agent.ini)\n"
"  -l, --listen HOST:PORT     address of this agent's interface (default\n"
"                             127.0.0.1:7500; port 0 picks a free port)\n"
"      --advertise HOST:PORT  address managers should use (default: the bound one)\n"
"  -m, --manager HOST:PORT    a manager; give it once per manager\n"
"  -k, --key FILE             cluster key file (rtcmsctl keygen FILE)\n"
"      --data-keyring FILE    the data keys that seal checkpoint contents\n"
"                             (rtcmsctl keygen --data FILE; the same on every\n"
"                             node); without it checkpoints are stored plain\n"
"  -n, --name NAME            agent name (default: agent-<node id>)\n"
"      --node-id ID           node id (hex); default: the MAC of the\n"
"                             interface with the default route\n"
"  -q, --quota N              protected programs this node takes (default 8)\n"
"      --area-capacity SIZE   checkpoint area per program (default 64M)\n"
"      --run \"ID PATH ARGS\"   start a program at startup (repeatable)\n"
"      --poll-interval MS     how often areas are checked for new checkpoints (5)\n"
"      --freeze-timeout MS    wait for a program's own final checkpoint (2000)\n"
"      --restore-timeout MS   wait for a restored program to resume (10000)\n"
"      --freeze-hold MS       a program frozen for a move this long without THAW\n"
"                             or STOP (its manager died) is resolved with a\n"
"                             manager from the store (default 45000; more than\n"
"                             the managers' claim lease)\n"
"      --heartbeat-interval MS  UDP heartbeats to every manager (default 50)\n"
"      --lease MS             programs are stopped when no manager answered a\n"
"                             heartbeat for this long (default 200; a manager\n"
"                             may set a shorter one)\n"
"      --restart POLICY       a crashed program is restarted here from its newest\n"
"                             checkpoint: on-failure (default), always, never;\n"
"                             a program's own RTCMS_RESTART variable wins\n"
"      --restart-backoff MS   the first restart is at once; then wait this long,\n"
"                             doubled per restart (default 100)\n"
"      --max-restarts N       restarts within the window before the agent gives\n"
"                             up and the managers move it once (default 5)\n"
"      --restart-window MS    the window of --max-restarts (default 60000)\n"
"      --ready-file FILE      write the bound address here once listening\n"
"      --metrics-listen HOST:PORT  serve Prometheus metrics at GET /metrics\n"
"                             there (default: off; port 0 picks a free port,\n"
"                             logged)\n"
"  -v, --log-level LEVEL      error, warn, info (default) or debug\n"
"  -h, --help                 this help\n"
"      --version              the version and the git revision it was built from\n");
}

/* The settings before and after the command line: SIGHUP computes them
 * again from the defaults and the config file as it is now. */
static struct agent_config defaults, parsed;
static int saved_argc;
static char **saved_argv;

/* SIGHUP (loop thread): the log level applies at once; every other setting
 * that changed in the file is named and takes effect at the next start
 * (`run =` lines included: no program is started or stopped). */
static void on_sighup(void *ctx)
{
	static struct agent_config fresh;
	static const char *const applied[] = { "level", NULL };
	struct reload_settings s = { fields, &cfg, &defaults, sizeof(cfg) };
	char level[128], later[1024];
	enum log_level to;
	(void)ctx;

	if (cmdline_sighup(saved_argc, saved_argv, opts, &s, &fresh, &to, level,
			   sizeof(level)) != 0)
		return;
	size_t n = reload_changed(&s, &parsed, &fresh, applied, later, sizeof(later));
	memcpy(parsed.log_level, fresh.log_level, sizeof(parsed.log_level));
	reload_announce(to, "SIGHUP: %s; the programs run on", level);
	if (n)
		log_info("SIGHUP: changed in the file, take effect at the next start: %s", later);
}

/* The settings are usable (the key and the managers are given; each
 * setting's value was checked where it was set). 0, or 2 (the exit
 * status) after saying why. */
static int settings_check(void)
{
	if (cfg.key[0] == '\0') {
		fprintf(stderr, "rtcms-agent: no cluster key: give --key FILE or key = "
			"FILE in [agent] (create one with `rtcmsctl keygen FILE`)\n");
		return 2;
	}
	if (cfg.managers.count == 0) {
		fprintf(stderr, "rtcms-agent: no manager: give --manager HOST:PORT or "
			"manager = HOST:PORT in [agent]\n");
		return 2;
	}
	return 0;
}

/* The node id: node_id, else the MAC of the default-route interface. 0,
 * or 2 after saying why. */
static int node_id_of(uint64_t *node)
{
	if (cfg.node_id[0]) {
		*node = strtoull(cfg.node_id, NULL, 16); /* checked where it was set */
		return 0;
	}
	char ifname[64] = "";
	if (sysinfo_node_id(node, ifname, sizeof(ifname)) != 0) {
		fprintf(stderr, "rtcms-agent: cannot derive the node id from a MAC "
			"address; set node_id in [agent]\n");
		return 2;
	}
	return 0;
}

/* Make the agent and serve: the process' exit status. */
static int serve(const struct proto_key *key, const struct datakey_ring *ring, uint64_t node)
{
	char err[1024];
	struct agent *a;

	if (sodium_init() < 0) {
		log_error("libsodium cannot start");
		return 1;
	}
	if (agent_new(&cfg, key, node, &a, err, sizeof(err)) != 0) {
		fprintf(stderr, "rtcms-agent: %s\n", err);
		return 2;
	}
	agent_set_data_keys(a, ring);
	if (ring->count) {
		const struct datakey *k = datakey_active(ring);
		char kcv[2 * DATAKEY_KCV_SIZE + 1];
		datakey_kcv_hex(k, kcv);
		log_info("checkpoint contents sealed under data key %" PRIu32 " (%s, check "
			 "value %s; %zu key(s) in %s)", k->id, datakey_cipher_name(k->cipher),
			 kcv, ring->count, cfg.data_keyring);
	} else {
		log_warn("no data keyring: checkpoints are stored in plaintext on the "
			 "store's mirrors (make one with `rtcmsctl keygen --data FILE`, the "
			 "same on every node, and set data_keyring)");
	}
	/* SIGHUP re-reads the config file; it never stops the agent or a program */
	if (reload_on_sighup(on_sighup, NULL) != 0)
		log_warn("cannot handle SIGHUP: it would stop the agent and its programs");
	/* the metrics endpoint, if metrics_listen is set: its own thread, its
	 * socket close-on-exec (no program inherits it) */
	struct metrics_http *mx = NULL;
	size_t nf;
	const struct metric_family *mf = agent_stats_families(&nf);
	if (metrics_http_serve(cfg.metrics_listen, mf, nf, &mx) != 0) {
		agent_free(a);
		return 1;
	}
	rt_lock_memory("this daemon"); /* time-critical threads never wait on a fault */
	int rc = agent_run(a);
	metrics_http_stop(mx);
	agent_free(a);
	if (rc) {
		log_error("%s", rtcms_strerror(rc));
		return 1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	char err[1024];
	struct proto_key key;
	struct datakey_ring ring;
	uint64_t node;

	memset(&ring, 0, sizeof(ring));
	agent_config_defaults(&cfg);
	defaults = cfg;
	saved_argc = argc;
	saved_argv = argv;

	enum cmdline_result cr = cmdline_parse("rtcms-agent", argc, argv, fields, opts, usage);
	if (cr != CMDLINE_RUN)
		return cr == CMDLINE_HELP ? 0 : 2;
	parsed = cfg;
	int r = settings_check();
	if (r != 0)
		return r;
	if (keyfile_load(cfg.key, &key, err, sizeof(err)) != 0) {
		fprintf(stderr, "rtcms-agent: %s\n", err);
		return 2;
	}
	if (cfg.data_keyring[0] &&
	    datakey_load(cfg.data_keyring, &ring, err, sizeof(err)) != 0) {
		fprintf(stderr, "rtcms-agent: %s\n", err);
		sodium_memzero(&key, sizeof(key));
		return 2;
	}
	if ((r = node_id_of(&node)) != 0)
		return r;
	if (cfg.name[0] == '\0')
		snprintf(cfg.name, sizeof(cfg.name), "agent-%" PRIx64, node);
	log_init(cfg.name, (enum log_level)log_level_parse(cfg.log_level));
	log_journal_attach("agent", cfg.name, journal_sendv);
	signal(SIGPIPE, SIG_IGN);
	r = serve(&key, &ring, node);
	sodium_memzero(&key, sizeof(key));
	datakey_ring_wipe(&ring);
	return r;
}
