/*
 * rtcms-store - the durable, mirrored checkpoint store (the thesis' NAS).
 *
 *   rtcms-store --config /etc/rtcms/store.ini
 *   rtcms-store --listen 127.0.0.1:7400 --mirror /srv/a --mirror /srv/b --key k
 *
 * Command-line options override the config file.
 */
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "daemon/journal.h"
#include "daemon/reload.h"
#include "log/log.h"
#include "metrics/http.h"
#include "net/addr.h"
#include "rtcms_error.h"
#include "server.h"
#include "stats.h"
#include "store.h"
#include "util/config.h"
#include "util/keyfile.h"
#include "util/version.h"

struct settings {
	char listen[128];
	char key[1024];
	char name[PROTO_ID_MAX + 1];
	char log_level[16];
	char ready_file[1024];
	char metrics_listen[128];
	struct config_list mirrors;
	uint64_t retain;
	char compress[16];
	uint64_t compress_level;
	uint64_t inline_max;
	uint64_t client_timeout_ms;
	uint64_t max_connections;
	uint64_t manager_lease_max_ms;
};

static struct settings cfg = {
	.listen = "127.0.0.1:7400",
	.name = "store",
	.log_level = "info",
	.retain = 2,
	.compress = "off",
	.compress_level = STORE_COMPRESS_LEVEL_DEFAULT,
	.inline_max = STORE_INLINE_DEFAULT,
	.client_timeout_ms = 10000,
	.max_connections = 64,
	.manager_lease_max_ms = 10000,
};

/* compress = off | zstd (util/config.h's check) */
static int compress_check(const char *v, char *why, size_t whylen)
{
	if (strcmp(v, "off") == 0 || strcmp(v, "zstd") == 0)
		return 0;
	snprintf(why, whylen, "\"%s\": expected off or zstd", v);
	return RTCMS_ECONFIG;
}

static const struct config_field fields[] = {
	{ "store", "listen", CONFIG_STR, cfg.listen, sizeof(cfg.listen), 0, 0, net_addr_check_listen },
	{ "store", "key", CONFIG_STR, cfg.key, sizeof(cfg.key), 0, 0, NULL },
	{ "store", "name", CONFIG_STR, cfg.name, sizeof(cfg.name), 0, 0, NULL },
	{ "store", "mirror", CONFIG_LIST, &cfg.mirrors, 0, 0, 0, NULL },
	{ "store", "retain", CONFIG_U64, &cfg.retain, 0, 1, 1000000, NULL },
	{ "store", "compress", CONFIG_STR, cfg.compress, sizeof(cfg.compress), 0, 0, compress_check },
	{ "store", "compress_level", CONFIG_U64, &cfg.compress_level, 0, 1, 19, NULL },
	{ "store", "inline_max", CONFIG_U64, &cfg.inline_max, 0, 0, PROTO_MAX_CHUNK, NULL },
	{ "store", "client_timeout", CONFIG_U64, &cfg.client_timeout_ms, 0, 100, 3600000, NULL },
	{ "store", "max_connections", CONFIG_U64, &cfg.max_connections, 0, 1, 4096, NULL },
	{ "store", "manager_lease_max", CONFIG_U64, &cfg.manager_lease_max_ms, 0, 100, 600000, NULL },
	{ "store", "ready_file", CONFIG_STR, cfg.ready_file, sizeof(cfg.ready_file), 0, 0, NULL },
	{ "store", "metrics_listen", CONFIG_STR, cfg.metrics_listen, sizeof(cfg.metrics_listen), 0, 0, metrics_listen_check },
	{ "log", "level", CONFIG_STR, cfg.log_level, sizeof(cfg.log_level), 0, 0, log_level_check },
	{ NULL, NULL, 0, NULL, 0, 0, 0, NULL },
};

static void usage(FILE *f)
{
	fprintf(f,
"usage: rtcms-store [--config FILE] [options]\n"
"\n"
"The rtcms checkpoint store: durable, checksummed, mirrored (RAID-1)\n"
"checkpoint storage with atomic, lease-based claims for restoration.\n"
"\n"
"options (override the config file, section [store]):\n"
"  -c, --config FILE        INI config file (see contrib/store.ini)\n"
"  -l, --listen HOST:PORT   address to listen on (default 127.0.0.1:7400;\n"
"                           port 0 picks a free port)\n"
"  -m, --mirror DIR         a mirror directory; give it once per mirror\n"
"  -k, --key FILE           cluster key file (rtcmsctl keygen FILE)\n"
"  -r, --retain N           checkpoints kept per process (default 2)\n"
"      --compress MODE      chunks written from now on: off (default)\n"
"                           or zstd (each compressed where that makes it\n"
"                           smaller); stored chunks stay readable either way\n"
"      --compress-level N   zstd level 1..19 (default 3)\n"
"      --inline-max BYTES   PUTs up to this size keep their chunks in meta.db,\n"
"                           one flush per mirror (default 65536; 0: never)\n"
"  -n, --name NAME          name announced to peers (default store)\n"
"      --client-timeout MS  a frame must arrive within this (default 10s)\n"
"      --max-connections N  refuse connections beyond N (default 64)\n"
"      --manager-lease-max MS  longest lease a manager is granted (default\n"
"                           10000); after a restart a fence waits for each\n"
"                           known manager to renew, or this long at most\n"
"      --ready-file FILE    write the bound address here once listening\n"
"      --metrics-listen HOST:PORT  serve Prometheus metrics at GET /metrics\n"
"                           there (default: off; port 0 picks a free port,\n"
"                           logged)\n"
"  -v, --log-level LEVEL    error, warn, info (default) or debug\n"
"  -h, --help               this help\n"
"      --version            the version and the git revision it was built from\n");
}

static uint64_t real_now_ms(void *ctx)
{
	struct timespec ts;
	(void)ctx;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void on_store_log(void *ctx, int level, const char *msg)
{
	(void)ctx;
	log_msg((enum log_level)level, "%s", msg);
}

static const struct config_field *field(const char *name)
{
	for (const struct config_field *f = fields; f->name; f++)
		if (strcmp(f->name, name) == 0)
			return f;
	return NULL;
}

/* What the store started from: SIGHUP reads the config file again over the
 * defaults; a setting given on the command line keeps its value. */
static struct settings defaults, parsed;
static const char *config_path;
#define OVERRIDES_MAX 32
static const char *overridden[OVERRIDES_MAX + 1]; /* settings the command line set */
static size_t overridden_count;

static void overridden_add(const char *name)
{
	for (size_t i = 0; i < overridden_count; i++)
		if (strcmp(overridden[i], name) == 0)
			return;
	if (overridden_count < OVERRIDES_MAX)
		overridden[overridden_count++] = name;
}

/* SIGHUP (loop thread): the log level applies at once; every other setting
 * that changed in the file is named and takes effect at the next start.
 * The store serves on; nothing is closed. */
static void on_sighup(void *ctx)
{
	static struct settings fresh;
	struct reload_settings s = { fields, &cfg, &defaults, sizeof(cfg) };
	const char *skip[OVERRIDES_MAX + 2];
	char err[1024], level[128], later[1024];
	enum log_level to;
	size_t k = 0;
	(void)ctx;

	if (reload_load(&s, config_path, &fresh, err, sizeof(err)) != 0) {
		log_warn("SIGHUP: %s: the settings stay as they were", err);
		return;
	}
	for (size_t i = 0; i < overridden_count; i++)
		if (strcmp(overridden[i], "level") == 0)
			memcpy(fresh.log_level, parsed.log_level, sizeof(fresh.log_level));
	if (reload_log_level(fresh.log_level, &to, level, sizeof(level)) != 0) {
		log_warn("SIGHUP: %s: the settings stay as they were", level);
		return;
	}
	skip[k++] = "level";
	for (size_t i = 0; i < overridden_count; i++)
		skip[k++] = overridden[i];
	skip[k] = NULL;
	size_t n = reload_changed(&s, &parsed, &fresh, skip, later, sizeof(later));
	memcpy(parsed.log_level, fresh.log_level, sizeof(parsed.log_level));
	reload_announce(to, "SIGHUP: %s; the store serves on", level);
	if (n)
		log_info("SIGHUP: changed in the file, take effect at the next start: %s", later);
}

/* What a step of main() returns when main goes on: not an exit code (those
 * are 0..2) and not an error code. */
enum { STEP_GO_ON = -100 };

/* Read the command line (and the config file it names) into cfg.
 * STEP_GO_ON, or the exit code (help, or a bad option: told on stderr). */
static int options_parse(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "listen", required_argument, NULL, 'l' },
		{ "mirror", required_argument, NULL, 'm' },
		{ "key", required_argument, NULL, 'k' },
		{ "retain", required_argument, NULL, 'r' },
		{ "compress", required_argument, NULL, 'Z' },
		{ "compress-level", required_argument, NULL, 'L' },
		{ "inline-max", required_argument, NULL, 'I' },
		{ "name", required_argument, NULL, 'n' },
		{ "client-timeout", required_argument, NULL, 'T' },
		{ "max-connections", required_argument, NULL, 'M' },
		{ "manager-lease-max", required_argument, NULL, 'G' },
		{ "ready-file", required_argument, NULL, 'R' },
		{ "metrics-listen", required_argument, NULL, 'P' },
		{ "log-level", required_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	const char *config = NULL;
	char err[1024];
	struct config_list cli_mirrors = { 0 };
	int c;

	/* First pass: find --config, so options given later override it. */
	while ((c = getopt_long(argc, argv, "c:l:m:k:r:n:v:h", opts, NULL)) != -1) {
		if (c == 'c')
			config = optarg;
		else if (c == 'h') {
			usage(stdout);
			return 0;
		} else if (c == 'V') {
			version_print(stdout, "rtcms-store");
			return 0;
		} else if (c == '?') {
			usage(stderr);
			return 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "rtcms-store: unexpected argument \"%s\"\n", argv[optind]);
		return 2;
	}
	if (config && config_load(config, fields, err, sizeof(err)) != 0) {
		fprintf(stderr, "rtcms-store: %s\n", err);
		return 2;
	}
	optind = 1;
	while ((c = getopt_long(argc, argv, "c:l:m:k:r:n:v:h", opts, NULL)) != -1) {
		const char *name = NULL;
		switch (c) {
		case 'l': name = "listen"; break;
		case 'k': name = "key"; break;
		case 'r': name = "retain"; break;
		case 'Z': name = "compress"; break;
		case 'L': name = "compress_level"; break;
		case 'I': name = "inline_max"; break;
		case 'n': name = "name"; break;
		case 'T': name = "client_timeout"; break;
		case 'M': name = "max_connections"; break;
		case 'G': name = "manager_lease_max"; break;
		case 'R': name = "ready_file"; break;
		case 'P': name = "metrics_listen"; break;
		case 'v': name = "level"; break;
		case 'm': {
			struct config_field f = { "store", "mirror", CONFIG_LIST,
						  &cli_mirrors, 0, 0, 0, NULL };
			if (config_set(&f, optarg, err, sizeof(err)) != 0) {
				fprintf(stderr, "rtcms-store: --mirror: %s\n", err);
				return 2;
			}
			continue;
		}
		default:
			continue;
		}
		if (config_set(field(name), optarg, err, sizeof(err)) != 0) {
			fprintf(stderr, "rtcms-store: option for %s: %s\n", name, err);
			return 2;
		}
		overridden_add(name);
	}
	if (cli_mirrors.count > 0) {
		cfg.mirrors = cli_mirrors; /* --mirror replaces the file's list */
		overridden_add("mirror");
	}
	parsed = cfg;
	config_path = config;
	return STEP_GO_ON;
}

/* Check the settings, start logging and load the key. STEP_GO_ON, or the
 * exit code (told on stderr). */
static int settings_check(enum store_compress *compress, struct proto_key *key)
{
	char err[1024];
	/* the level, compress and listen were checked where they were set */
	log_init("store", (enum log_level)log_level_parse(cfg.log_level));
	log_journal_attach("store", cfg.name, journal_sendv);
	*compress = strcmp(cfg.compress, "zstd") == 0 ? STORE_COMPRESS_ZSTD
						      : STORE_COMPRESS_OFF;
	if (cfg.mirrors.count == 0) {
		fprintf(stderr, "rtcms-store: no mirror directory: give --mirror DIR "
			"(once per mirror) or mirror = DIR in [store]\n");
		return 2;
	}
	if (cfg.key[0] == '\0') {
		fprintf(stderr, "rtcms-store: no cluster key: give --key FILE or "
			"key = FILE in [store] (create one with `rtcmsctl keygen FILE`)\n");
		return 2;
	}
	if (keyfile_load(cfg.key, key, err, sizeof(err)) != 0) {
		fprintf(stderr, "rtcms-store: %s\n", err);
		return 2;
	}
	return STEP_GO_ON;
}

/* Open the store and serve until a signal stops it: the exit code. */
static int store_serve(enum store_compress compress, const struct proto_key *key)
{
	signal(SIGPIPE, SIG_IGN);
	/* Chunk writes, reads and syncs wait on disks: give libuv's pool more
	 * threads than cores (an explicit UV_THREADPOOL_SIZE wins). */
	setenv("UV_THREADPOOL_SIZE", "8", 0);

	const char *mirrors[CONFIG_LIST_MAX];
	for (size_t i = 0; i < cfg.mirrors.count; i++) {
		mirrors[i] = cfg.mirrors.items[i];
		log_info("mirror %zu: %s", i, mirrors[i]);
	}
	struct store_options so = {
		.mirrors = mirrors,
		.mirror_count = cfg.mirrors.count,
		.retain = (unsigned)cfg.retain,
		.compress = compress,
		.compress_level = (int)cfg.compress_level,
		.inline_max = cfg.inline_max ? (int64_t)cfg.inline_max : -1,
		.now_ms = real_now_ms,
		.log = on_store_log,
	};
	struct store *st = NULL;
	int rc = store_open(&so, &st);
	if (rc != 0) {
		log_error("cannot open the store: %s", rtcms_strerror(rc));
		return 1;
	}
	/* the metrics endpoint, if metrics_listen is set: once the store is
	 * open (the mirrors' gauges tell their state), on a thread of its own */
	struct metrics_http *mx = NULL;
	size_t nf;
	const struct metric_family *f = store_stats_families(mirrors, cfg.mirrors.count, &nf);
	if (metrics_http_serve(cfg.metrics_listen, f, nf, &mx) != 0) {
		store_free(st);
		return 1;
	}
	struct server_options sv = {
		.listen = cfg.listen,
		.key = key,
		.name = cfg.name,
		.ready_file = cfg.ready_file[0] ? cfg.ready_file : NULL,
		.client_timeout_ms = cfg.client_timeout_ms,
		.max_connections = cfg.max_connections,
		.manager_lease_max_ms = (uint32_t)cfg.manager_lease_max_ms,
	};
	/* SIGHUP re-reads the config file; it never stops the store */
	if (reload_on_sighup(on_sighup, NULL) != 0)
		log_warn("cannot handle SIGHUP: it would stop the store");
	rc = server_run(&sv, st);
	metrics_http_stop(mx);
	store_free(st);
	return rc == 0 ? 0 : 1;
}

int main(int argc, char **argv)
{
	enum store_compress compress = STORE_COMPRESS_OFF;
	struct proto_key key;
	int rc;

	defaults = cfg;
	if ((rc = options_parse(argc, argv)) != STEP_GO_ON)
		return rc;
	if ((rc = settings_check(&compress, &key)) != STEP_GO_ON)
		return rc;
	rc = store_serve(compress, &key);
	sodium_memzero(&key, sizeof(key));
	return rc;
}
