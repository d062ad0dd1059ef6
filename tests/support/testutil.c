/* testutil.c - temporary dirs, keys and real daemons for tests. */
#include "testutil.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "rtcms_error.h"
#include "util/datakey.h"
#include "util/keyfile.h"

char *tu_tmpdir(const char *tag)
{
	const char *base = getenv("TMPDIR");
	char *path;

	if (!base)
		base = "/tmp";
	if (asprintf(&path, "%s/rtcms-%s-XXXXXX", base, tag) < 0)
		abort();
	if (!mkdtemp(path)) {
		perror("mkdtemp");
		abort();
	}
	return path;
}

static int rm_one(const char *p, const struct stat *sb, int flag, struct FTW *f)
{
	(void)sb; (void)flag; (void)f;
	return remove(p);
}

void tu_rmrf(const char *path)
{
	nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

char *tu_keyfile(const char *dir, struct proto_key *key)
{
	char *path;
	char err[512];

	if (asprintf(&path, "%s/key", dir) < 0)
		abort();
	if (keyfile_generate(path, 1, err, sizeof(err)) != 0) {
		fprintf(stderr, "%s\n", err);
		abort();
	}
	if (key && keyfile_load(path, key, err, sizeof(err)) != 0) {
		fprintf(stderr, "%s\n", err);
		abort();
	}
	return path;
}

uint64_t tu_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

const char *const *tu_exec_prefix;

int tu_daemon_start(struct tu_daemon *d, const char *dir, const char *name,
		    const char *const *args)
{
	char ready[600];
	const char *argv[96];
	int n = 0;

	memset(d, 0, sizeof(*d));
	snprintf(d->dir, sizeof(d->dir), "%s", dir);
	snprintf(d->log, sizeof(d->log), "%s/%s.log", dir, name);
	snprintf(ready, sizeof(ready), "%s/%s.ready", dir, name);
	unlink(ready);
	for (int i = 0; tu_exec_prefix && tu_exec_prefix[i] && n < 8; i++)
		argv[n++] = tu_exec_prefix[i];
	for (int i = 0; args[i] && n < 92; i++)
		argv[n++] = args[i];
	argv[n++] = "--ready-file";
	argv[n++] = ready;
	argv[n] = NULL;

	pid_t parent = getpid();
	pid_t pid = fork();
	if (pid < 0)
		return -1;
	if (pid == 0) {
		/* a test that dies (a crash, a kill, a cut-off run) takes its
		 * daemons with it: orphans would hold ports, the test lock and
		 * the /proc counts of every later run */
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent)
			_exit(127);
		int fd = open(d->log, O_WRONLY | O_CREAT | O_APPEND, 0644);
		if (fd >= 0) {
			dup2(fd, STDERR_FILENO);
			dup2(fd, STDOUT_FILENO);
			close(fd);
		}
		/* Under ASan a small quarantine keeps the store's memory
		 * figures meaningful (test_slow_store_big checks its RSS). */
		setenv("ASAN_OPTIONS", "quarantine_size_mb=16", 0);
		execv(argv[0], (char *const *)argv);
		_exit(127);
	}
	d->pid = pid;
	uint64_t deadline = tu_now_ms() + 20000;
	while (tu_now_ms() < deadline) {
		FILE *f = fopen(ready, "r");
		if (f) {
			int ok = fgets(d->addr, sizeof(d->addr), f) != NULL;
			fclose(f);
			if (ok) {
				d->addr[strcspn(d->addr, "\n")] = '\0';
				return 0;
			}
		}
		int st;
		if (waitpid(pid, &st, WNOHANG) == pid) {
			d->pid = 0;
			fprintf(stderr, "%s exited early; log %s\n", args[0], d->log);
			return -1;
		}
		usleep(10000);
	}
	fprintf(stderr, "%s not ready in time; log %s\n", args[0], d->log);
	tu_daemon_stop(d, SIGKILL);
	return -1;
}

static int add_extra(const char **argv, int n, const char *const *extra)
{
	for (int i = 0; extra && extra[i] && n < 80; i++)
		argv[n++] = extra[i];
	argv[n] = NULL;
	return n;
}

int tu_store_start(struct tu_daemon *d, const char *dir, const char *key_file,
		   int mirrors, const char *listen_ip, const char *const *extra)
{
	char listen[80], mdir[16][600];
	const char *argv[96];
	int n = 0;

	snprintf(listen, sizeof(listen), "%s:0", listen_ip ? listen_ip : "127.0.0.1");
	argv[n++] = RTCMS_BIN_DIR "/rtcms-store";
	argv[n++] = "--listen";
	argv[n++] = listen;
	argv[n++] = "--key";
	argv[n++] = key_file;
	for (int i = 0; i < mirrors && i < 16; i++) {
		snprintf(mdir[i], sizeof(mdir[i]), "%s/m%d", dir, i);
		argv[n++] = "--mirror";
		argv[n++] = mdir[i];
	}
	add_extra(argv, n, extra);
	return tu_daemon_start(d, dir, "store", argv);
}

int tu_manager_start(struct tu_daemon *d, const char *dir, const char *name,
		     const char *key_file, const char *store_addr,
		     const char *const *extra)
{
	const char *argv[96];
	int n = 0;
	argv[n++] = RTCMS_BIN_DIR "/rtcms-manager";
	argv[n++] = "--listen";
	argv[n++] = "127.0.0.1:0";
	argv[n++] = "--key";
	argv[n++] = key_file;
	argv[n++] = "--store";
	argv[n++] = store_addr;
	argv[n++] = "--name";
	argv[n++] = name;
	add_extra(argv, n, extra);
	return tu_daemon_start(d, dir, name, argv);
}

int tu_agent_start(struct tu_daemon *d, const char *dir, const char *name,
		   const char *key_file, const char *ip, const char *node_id,
		   const char *manager_addr, const char *const *extra)
{
	char listen[80];
	const char *argv[96];
	int n = 0;
	snprintf(listen, sizeof(listen), "%s:0", ip);
	argv[n++] = RTCMS_BIN_DIR "/rtcms-agent";
	argv[n++] = "--listen";
	argv[n++] = listen;
	argv[n++] = "--key";
	argv[n++] = key_file;
	argv[n++] = "--name";
	argv[n++] = name;
	argv[n++] = "--node-id";
	argv[n++] = node_id;
	argv[n++] = "--manager";
	argv[n++] = manager_addr;
	/* every agent of a cluster (one key file) seals under one data
	 * keyring beside it, unless the test gives its own */
	const char *plain = getenv("RTCMS_TEST_PLAIN"); /* benches: compare */
	bool own = plain && strcmp(plain, "1") == 0;
	for (int i = 0; extra && extra[i]; i++)
		own |= strcmp(extra[i], "--data-keyring") == 0;
	char keyring[4200];
	if (!own) {
		char err[1024];
		snprintf(keyring, sizeof(keyring), "%s.data", key_file);
		int rc = datakey_generate(keyring, DATAKEY_AES_256_GCM, 0, err, sizeof(err));
		if (rc != 0 && rc != RTCMS_EEXIST) {
			fprintf(stderr, "%s\n", err);
			abort();
		}
		argv[n++] = "--data-keyring";
		argv[n++] = keyring;
	}
	add_extra(argv, n, extra);
	return tu_daemon_start(d, dir, name, argv);
}

int tu_daemon_stop(struct tu_daemon *d, int sig)
{
	int st = 0;

	if (d->pid <= 0)
		return -1;
	kill(d->pid, sig);
	while (waitpid(d->pid, &st, 0) < 0 && errno == EINTR)
		;
	d->pid = 0;
	return st;
}

int tu_daemon_alive(struct tu_daemon *d)
{
	int st;
	if (d->pid <= 0)
		return 0;
	if (waitpid(d->pid, &st, WNOHANG) == d->pid) {
		d->pid = 0;
		return 0;
	}
	return 1;
}

int tu_log_count(const struct tu_daemon *d, const char *needle)
{
	char line[4096];
	int n = 0;
	FILE *f = fopen(d->log, "r");
	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f))
		if (strstr(line, needle))
			n++;
	fclose(f);
	return n;
}

void tu_fill(uint8_t *buf, size_t len, uint64_t seed)
{
	uint64_t x = seed * 0x9E3779B97F4A7C15ull + 1;
	for (size_t i = 0; i < len; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		buf[i] = (uint8_t)x;
	}
}

long tu_peak_rss_kib(pid_t pid)
{
	char path[64], line[256];
	long v = -1;
	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	FILE *f = fopen(path, "r");
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "VmHWM: %ld kB", &v) == 1)
			break;
	fclose(f);
	return v;
}

/* mirror's meta.db, read-only; NULL if it cannot be opened. */
static sqlite3 *meta_open(const char *mirror)
{
	char path[1024];
	sqlite3 *db = NULL;
	snprintf(path, sizeof(path), "%s/meta.db", mirror);
	if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK) {
		sqlite3_close(db);
		return NULL;
	}
	sqlite3_busy_timeout(db, 5000);
	return db;
}

/* The first column of sql's first row, or -1. */
static int meta_count(sqlite3 *db, const char *sql, const char *hex)
{
	sqlite3_stmt *s = NULL;
	int n = -1;
	if (sqlite3_prepare_v2(db, sql, -1, &s, NULL) == SQLITE_OK) {
		if (hex)
			sqlite3_bind_text(s, 1, hex, -1, SQLITE_TRANSIENT);
		if (sqlite3_step(s) == SQLITE_ROW)
			n = sqlite3_column_int(s, 0);
	}
	sqlite3_finalize(s);
	return n;
}

int64_t tu_meta_query(const char *mirror, const char *sql)
{
	sqlite3 *db = meta_open(mirror);
	int n = db ? meta_count(db, sql, NULL) : -1;
	sqlite3_close(db);
	return n;
}

int tu_count_inline(const char *mirror)
{
	return (int)tu_meta_query(mirror, "SELECT count(*) FROM inline_chunks");
}

int tu_count_unreferenced(const char *mirror)
{
	char path[1024];
	sqlite3 *db = meta_open(mirror);
	int n = db ? meta_count(db, "SELECT (SELECT count(*) FROM inline_chunks WHERE hash"
				" NOT IN (SELECT hash FROM chunks)) + (SELECT count(*) FROM"
				" chunk_locs WHERE hash NOT IN (SELECT hash FROM chunks))",
				NULL) : -1;

	for (int i = 0; n >= 0 && i < 256; i++) {
		snprintf(path, sizeof(path), "%s/chunks/%02x", mirror, i);
		DIR *d = opendir(path);
		struct dirent *e;
		while (d && n >= 0 && (e = readdir(d))) {
			if (e->d_name[0] == '.')
				continue;
			int known = meta_count(db, "SELECT count(*) FROM chunks WHERE"
					       " hex(hash) = upper(?)", e->d_name);
			n = known < 0 ? -1 : n + (known == 0);
		}
		if (d)
			closedir(d);
	}
	sqlite3_close(db);
	return n;
}

int tu_meta_exec(const char *mirror, const char *sql)
{
	char path[1024];
	sqlite3 *db = NULL;
	snprintf(path, sizeof(path), "%s/meta.db", mirror);
	int rc = sqlite3_open(path, &db) == SQLITE_OK &&
		 sqlite3_busy_timeout(db, 5000) == SQLITE_OK &&
		 sqlite3_exec(db, sql, NULL, NULL, NULL) == SQLITE_OK ? 0 : -1;
	sqlite3_close(db);
	return rc;
}

int tu_count_chunk_files(const char *mirror)
{
	char path[1024];
	int n = 0;
	for (int i = 0; i < 256; i++) {
		snprintf(path, sizeof(path), "%s/chunks/%02x", mirror, i);
		DIR *d = opendir(path);
		struct dirent *e;
		while (d && (e = readdir(d)))
			n += e->d_name[0] != '.';
		if (d)
			closedir(d);
	}
	return n;
}

int tu_count_chunk_copies(const char *mirror)
{
	char path[1024];
	struct stat sb;
	int placed = 0;

	/* a new mirror's meta.db may not be there yet: no places then */
	snprintf(path, sizeof(path), "%s/meta.db", mirror);
	if (stat(path, &sb) == 0 &&
	    (placed = (int)tu_meta_query(mirror, "SELECT count(*) FROM chunk_locs")) < 0)
		return -1;
	return placed + tu_count_chunk_files(mirror);
}

int tu_count_packs(const char *mirror, uint64_t *bytes)
{
	char path[1024];
	int n = 0;
	if (bytes)
		*bytes = 0;
	snprintf(path, sizeof(path), "%s/packs", mirror);
	DIR *d = opendir(path);
	struct dirent *e;
	while (d && (e = readdir(d))) {
		size_t l = strlen(e->d_name);
		struct stat sb;
		if (l < 5 || strcmp(e->d_name + l - 5, ".pack") != 0)
			continue;
		n++;
		snprintf(path, sizeof(path), "%s/packs/%s", mirror, e->d_name);
		if (bytes && stat(path, &sb) == 0)
			*bytes += (uint64_t)sb.st_size;
	}
	if (d)
		closedir(d);
	return n;
}

int tu_chunk_where(const char *mirror, const uint8_t *hash, char *path, size_t size,
		   uint64_t *off, uint64_t *len)
{
	char hex[65];
	struct stat sb;
	sqlite3 *db = meta_open(mirror);
	sqlite3_stmt *s = NULL;
	int found = 0;

	for (int i = 0; i < 32; i++)
		snprintf(hex + 2 * i, 3, "%02x", hash[i]);
	if (db && sqlite3_prepare_v2(db, "SELECT pack, off, len FROM chunk_locs WHERE hash=?",
				     -1, &s, NULL) == SQLITE_OK) {
		sqlite3_bind_blob(s, 1, hash, 32, SQLITE_TRANSIENT);
		if (sqlite3_step(s) == SQLITE_ROW) {
			/* the record's header (packfile.h: 48 bytes) comes first */
			snprintf(path, size, "%s/packs/%016llx.pack", mirror,
				 (unsigned long long)sqlite3_column_int64(s, 0));
			*off = (uint64_t)sqlite3_column_int64(s, 1) + 48;
			*len = (uint64_t)sqlite3_column_int64(s, 2);
			found = 1;
		}
	}
	sqlite3_finalize(s);
	sqlite3_close(db);
	if (found)
		return 0;
	snprintf(path, size, "%s/chunks/%.2s/%s", mirror, hex, hex);
	if (stat(path, &sb) != 0)
		return -1;
	*off = 0;
	*len = (uint64_t)sb.st_size;
	return 0;
}

/* Append a hash to a growing list. */
static int hash_push(uint8_t **v, int n, const uint8_t *h)
{
	uint8_t *p = realloc(*v, (size_t)(n + 1) * 32);
	if (!p)
		return -1;
	memcpy(p + (size_t)n * 32, h, 32);
	*v = p;
	return n + 1;
}

int tu_chunk_list(const char *mirror, uint8_t **hashes)
{
	char path[1024];
	sqlite3 *db = meta_open(mirror);
	sqlite3_stmt *s = NULL;
	int n = 0;

	*hashes = NULL;
	if (db && sqlite3_prepare_v2(db, "SELECT hash FROM chunk_locs", -1, &s, NULL) ==
	    SQLITE_OK)
		while (n >= 0 && sqlite3_step(s) == SQLITE_ROW &&
		       sqlite3_column_bytes(s, 0) == 32)
			n = hash_push(hashes, n, sqlite3_column_blob(s, 0));
	sqlite3_finalize(s);
	sqlite3_close(db);
	for (int i = 0; n >= 0 && i < 256; i++) {
		snprintf(path, sizeof(path), "%s/chunks/%02x", mirror, i);
		DIR *d = opendir(path);
		struct dirent *e;
		while (d && n >= 0 && (e = readdir(d))) {
			uint8_t h[32];
			unsigned v;
			if (strlen(e->d_name) != 64)
				continue;
			for (int k = 0; k < 32; k++) {
				sscanf(e->d_name + 2 * k, "%2x", &v);
				h[k] = (uint8_t)v;
			}
			n = hash_push(hashes, n, h);
		}
		if (d)
			closedir(d);
	}
	return n;
}
