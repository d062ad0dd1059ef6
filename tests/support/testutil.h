/*
 * testutil.h - helpers for rtcms tests: temporary directories, key files,
 * and starting the real daemons on ephemeral loopback ports.
 */
#ifndef RTCMS_TESTUTIL_H
#define RTCMS_TESTUTIL_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "proto/frame.h"

/* Create a fresh directory under $TMPDIR (or /tmp); aborts on failure.
 * Returns a malloc'ed path. */
char *tu_tmpdir(const char *tag);

/* Remove path recursively (like rm -rf). */
void tu_rmrf(const char *path);

/* Chunk files (any name not starting with '.') in mirror/chunks/00..ff:
 * the layout before packs. */
int tu_count_chunk_files(const char *mirror);

/* The chunks mirror holds outside its inline copies: its chunk files and
 * the records its meta.db places in its packs (read by a connection of
 * its own), or -1. */
int tu_count_chunk_copies(const char *mirror);

/* The ids of the chunks tu_count_chunk_copies() counts, into *hashes
 * (malloc'ed, 32 bytes each; free it); their number, or -1. */
int tu_chunk_list(const char *mirror, uint8_t **hashes);

/* Pack files in mirror/packs; the sum of their sizes into *bytes (if not
 * NULL). */
int tu_count_packs(const char *mirror, uint64_t *bytes);

/* Where mirror keeps chunk hash's stored form (PROTO_HASH_SIZE bytes):
 * the file (its pack as its meta.db places it, else its chunk file) into
 * path, the form's offset in it into *off and its length into *len. 0,
 * or -1 if it has neither. */
int tu_chunk_where(const char *mirror, const uint8_t *hash, char *path, size_t size,
		   uint64_t *off, uint64_t *len);

/* The first column of the first row of sql on mirror/meta.db (read by a
 * connection of its own: the store may have it open), or -1. */
int64_t tu_meta_query(const char *mirror, const char *sql);

/* Inline chunk copies in mirror/meta.db, or -1. */
int tu_count_inline(const char *mirror);

/* Chunk files, inline copies and places in packs in mirror that its
 * meta.db references no chunk of: what garbage collection left behind. -1
 * if the database cannot be read. */
int tu_count_unreferenced(const char *mirror);

/* Run sql on mirror/meta.db behind the store's back (damage, tests).
 * 0 or -1. */
int tu_meta_exec(const char *mirror, const char *sql);

/* Write a new key file at dir/key and load it into *key (may be NULL).
 * Returns the malloc'ed path. */
char *tu_keyfile(const char *dir, struct proto_key *key);

struct tu_daemon {
	pid_t pid;
	char addr[80];        /* "127.0.0.1:PORT" once ready */
	char dir[512];        /* its working directory */
	char log[600];        /* its stderr */
};

/*
 * Start rtcms-store listening on listen_ip with an ephemeral port, with
 * mirrors dir/m0 .. dir/m{n-1}, and extra argv (NULL-terminated, may be
 * NULL). Waits for its ready file (10 s). Returns 0 or -1.
 */
int tu_store_start(struct tu_daemon *d, const char *dir, const char *key_file,
		   int mirrors, const char *listen_ip, const char *const *extra);

/*
 * An argv prefix every daemon started next is run under (NULL-terminated;
 * NULL, the default: none), e.g. { "/usr/bin/nsenter",
 * "--net=/run/netns/NS", NULL } to run it in a network namespace. The
 * wrapper must exec the daemon in place (same pid), as nsenter does.
 */
extern const char *const *tu_exec_prefix;

/*
 * Start a daemon: args is its argv (NULL-terminated; args[0] the binary),
 * run after tu_exec_prefix if set; --ready-file DIR/NAME.ready is added,
 * and the call waits (20 s at most) until the daemon wrote its bound
 * address there (into d->addr). Its stdout and stderr go to DIR/NAME.log.
 * Returns 0 or -1.
 */
int tu_daemon_start(struct tu_daemon *d, const char *dir, const char *name,
		    const char *const *args);
/* rtcms-manager on 127.0.0.1, an ephemeral port, named name. */
int tu_manager_start(struct tu_daemon *d, const char *dir, const char *name,
		     const char *key_file, const char *store_addr,
		     const char *const *extra);
/* rtcms-agent on ip (ephemeral port) as node node_id (hex), sealing
 * checkpoints under the data keyring key_file.data (made if missing)
 * unless extra gives --data-keyring or $RTCMS_TEST_PLAIN is 1 (the
 * benches' comparison: plain chunks). */
int tu_agent_start(struct tu_daemon *d, const char *dir, const char *name,
		   const char *key_file, const char *ip, const char *node_id,
		   const char *manager_addr, const char *const *extra);
/* Send sig to the daemon and reap it. Returns its wait status. */
int tu_daemon_stop(struct tu_daemon *d, int sig);

/* 1 if the daemon still runs. */
int tu_daemon_alive(struct tu_daemon *d);

/* Count lines of the daemon's log containing needle. */
int tu_log_count(const struct tu_daemon *d, const char *needle);

/* Fill buf with deterministic pseudo-random bytes from seed. */
void tu_fill(uint8_t *buf, size_t len, uint64_t seed);

/* Monotonic clock in milliseconds. */
uint64_t tu_now_ms(void);

/* Peak resident set size (VmHWM) of pid in KiB, or -1. */
long tu_peak_rss_kib(pid_t pid);

#endif
