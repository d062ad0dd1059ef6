/*
 * server.h - the network side of rtcms-store: one libuv event loop that
 * accepts authenticated connections and runs store operations on libuv's
 * thread pool (disk I/O, fsync and hashing never run on the loop).
 */
#ifndef RTCMS_STORE_SERVER_H
#define RTCMS_STORE_SERVER_H

#include <stdint.h>

#include "proto/frame.h"
#include "store.h"

struct server_options {
	const char *listen;            /* "host:port"; port 0 = ephemeral */
	const struct proto_key *key;   /* cluster key */
	const char *name;              /* name announced in HELLO_ACK */
	const char *ready_file;        /* written with the bound address once listening (or NULL) */
	uint64_t client_timeout_ms;    /* a frame must complete within this */
	uint64_t max_connections;      /* authenticated connections; beyond, EBUSY */
	uint32_t manager_lease_max_ms; /* longest manager lease granted (0: default);
				        * a fence waits this long after a start */
};

/*
 * Serve until SIGINT or SIGTERM. Returns 0 on a clean shutdown or an error
 * (RTCMS_EINVAL for a bad listen address, RTCMS_EIO if it cannot bind),
 * logged.
 */
int server_run(const struct server_options *opt, struct store *st);

#endif
