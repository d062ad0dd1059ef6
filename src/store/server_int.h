/*
 * server_int.h - rtcms-store's network side inside: the connection and
 * server structs and what its files share. conn.c: a connection (frames
 * in and out, its lifetime, the accept after HELLO); server.c: the
 * request table and the listener; server_put.c: the PUT stream;
 * server_get.c: the GET stream.
 *
 * THREADS AND LOCKS
 *
 * Everything here runs on the one libuv loop thread, except the work_*
 * callbacks, which libuv's thread pool runs (the store engine's calls:
 * store_int.h has its threads and its lock). A work callback touches only
 * its connection's request fields (req, msg, reply, rc, err, the PUT or
 * GET handle, one chunk slot) while the loop leaves them alone: the loop
 * reads nothing more from the connection while a request is on the pool
 * (a PUT's chunk slots are each owned by one work at a time), and a GET
 * seals its CHUNK frames on the pool because only that work seals then.
 * Connections need no lock: the after_* callbacks hand results back on
 * the loop. c->works counts what is on the pool; a connection is freed
 * only when it is 0. The fence table (fence.h) has its own mutex, taken
 * by the loop (MLEASE) and the pool (FENCE, a first MLEASE); it is never
 * held while the engine's st->mu is taken, nor the other way round.
 * A compaction pass (store_compact) runs on the pool with no connection:
 * srv->compacting, touched by the loop only, keeps it to one at a time.
 * Under systemd a timer on the loop kicks the watchdog and, once a
 * second, peeks at the mirrors' state (store_mirrors_peek: a trylock of
 * st->mu, so the loop never waits behind a transaction).
 * With metrics_listen set, libmicrohttpd's thread (metrics/http.h) serves
 * /metrics: it reads the atomics of stats.h that the loop (PUT and GET
 * timings, bytes, connections, fences) and the pool raise, nothing else.
 */
#ifndef RTCMS_STORE_SERVER_INT_H
#define RTCMS_STORE_SERVER_INT_H

#include <stdint.h>
#include <uv.h>

#include "fence.h"
#include "proto/msg.h"
#include "proto/session.h"
#include "server.h"
#include "stats.h"
#include "store.h"

#define PUT_INFLIGHT 4

/* C_DISCARD: a streamed PUT (flag STREAM) was answered at PUT_BEGIN
 * (refused, or already stored): its CHUNKs are dropped up to PUT_END. */
enum conn_state { C_HANDSHAKE, C_READY, C_BUSY, C_PUT, C_DISCARD, C_GET, C_CLOSING };

struct server;

struct chunk_slot {
	uint8_t *buf;                  /* a CHUNK frame opened in place
					* (PROTO_MAX_FRAME bytes, traded with
					* the connection's receive buffer) */
	struct proto_chunk chunk;      /* points into buf */
	int busy;
	int rc;
	uv_work_t work;
	struct conn *conn;
};

struct conn {
	uv_tcp_t tcp;
	uv_timer_t timer;
	struct server *srv;
	enum conn_state state;
	int handles_open;
	int reading;
	int closing;                   /* conn_close() called */
	int draining;                  /* a final frame is queued, then close */
	int write_stalls;              /* timeouts seen with writes pending */
	int closed;                    /* handles being closed */
	int works;                     /* works queued on the thread pool */
	char peer[80];

	struct proto_session session;
	uint8_t *rbuf;                 /* the frame being received */
	size_t rlen;                   /* bytes of it received */
	size_t rwant;                  /* bytes of it expected (header first) */
	uint8_t *plain;                /* decrypted payload of small requests */
	int pending_writes;

	/* the request running on the thread pool */
	uv_work_t work;
	uint64_t req_ns;               /* when it arrived (mono_ns: its latency) */
	struct proto_header req;       /* its header */
	union proto_msg msg;           /* its decoded payload */
	uint8_t reply_type;
	uint16_t reply_flags;
	union proto_msg reply;
	int rc;
	struct proto_error err;
	struct proto_list_entry *entries;

	/* PUT stream */
	struct store_put *put;
	struct chunk_slot slots[PUT_INFLIGHT];
	int inflight;
	int put_failed;
	int end_pending;
	uint32_t end_count;
	uint32_t put_request;
	uint64_t put_start_ns;
	struct store_put_stats put_stats; /* new chunks written, for the log */
	struct proto_put_ack ack;

	/* GET stream */
	struct store_get *get;
	/* chunk reads alternate between two buffers: a raw tail is written
	 * from the one it was read into, and while a chunk is read at most
	 * the previous chunk's write is pending (uv writes finish in order;
	 * the next read starts only with fewer than 2 writes pending) */
	uint8_t *gbufs[2];
	unsigned gturn;                /* the buffer of the next read */
	struct proto_chunk gchunk;
	uint32_t gcount;
	uint32_t get_request;
	int get_reading;               /* a chunk read is on the thread pool */
	bool get_end;                  /* that read found the end of the image */
	uint8_t *gframe;               /* sealed CHUNK frame, sent from the loop */
	struct proto_frame_parts gparts; /* its parts (a raw tail in gbufs) */
};

struct server {
	uv_loop_t *loop;
	struct gate *gate;             /* listener, connections before HELLO */
	uv_signal_t sigint, sigterm;
	const struct server_options *opt;
	struct store *store;
	struct fence_table *fences;    /* manager leases, node fences (fence.h) */
	uint64_t connections;          /* from HELLO on: max_connections */
	int stopping;
	int compacting;                /* a store_compact() pass is on the pool */
	char bound[80];                /* the address it listens on */
};

struct write_req {
	uv_write_t req;
	struct conn *conn;
	uint8_t *frame;
	int close_after;
};

/* Monotonic time in ns (leases, fences, PUT timing). */
static inline uint64_t mono_ns(void)
{
	return uv_hrtime();
}

/* ---- conn.c ------------------------------------------------------------- */

/* A peer's HELLO arrived (gate.h): make it a connection. */
int conn_on_hello(void *ctx, int fd, const char *peer, const uint8_t *hello, size_t len);

/* Close a connection (its handles once no work of it is on the pool). */
void conn_close(struct conn *c);
void conn_read_start(struct conn *c);
void conn_read_stop(struct conn *c);

/* Queue a sealed frame (ownership passes) for writing; with close_after,
 * read nothing more and close once it is written. 0 or a negative code. */
int conn_write_frame(struct conn *c, uint8_t *frame, size_t len, int close_after);
/* Queue a frame in parts (proto_session_seal_parts): frame (ownership
 * passes) holds its header, head and tag, the tail stays where it is
 * until the write is done. */
int conn_write_parts(struct conn *c, uint8_t *frame, const struct proto_frame_parts *parts);

/* Seal and send one message as a reply to request. 0 or a negative code
 * (the connection is closed then). */
int conn_send(struct conn *c, uint8_t type, uint16_t flags, uint32_t request,
	      const union proto_msg *msg, int close_after);

/* Send an ERROR reply (code, detail's text and fields if given). */
void conn_error(struct conn *c, uint32_t request, int code,
		const struct proto_error *detail, int close_after);

/* Queue work for c on the thread pool; every after callback calls
 * conn_work_done() first and returns at once if it says true (the
 * connection was closing and is gone now). */
void conn_queue(struct conn *c, uv_work_t *w, void *data, uv_work_cb work,
		uv_after_work_cb after);
bool conn_work_done(struct conn *c);

/* ---- server.c: requests -------------------------------------------------- */

/* A request frame in state C_READY: answered from memory (a known
 * manager's MLEASE) or run on the thread pool by its handler. 0, or
 * RTCMS_EPROTO (not a request: refused, the connection closes). */
int server_request_frame(struct conn *c, const struct proto_header *hdr,
			  const union proto_msg *msg);

/* Queue a compaction pass of the packs on the thread pool if garbage
 * collection freed records and none is running (a cheap check: call it
 * after any request that may have freed some). */
void server_compact_maybe(struct server *srv);

/* ---- server_put.c: the PUT stream --------------------------------------- */

/* PUT_BEGIN on the pool; then on the loop after it succeeded: answer
 * PUT_READY (the stream starts) or PUT_ACK (already stored; next is the
 * state after it). Returns true: resume reading. */
void server_put_work_begin(struct conn *c);
bool server_put_after_begin(struct conn *c, uint32_t request, enum conn_state next);

/* The ERROR text for a delta PUT the store refused with rc. */
void server_put_error_text(struct conn *c, int rc);

/* A free chunk slot for the next CHUNK (buffer allocated), or NULL. */
struct chunk_slot *server_put_slot(struct conn *c);

/* A frame in a PUT stream (C_PUT; a CHUNK's frame now slot's buffer) or in
 * a refused one (C_DISCARD). 0, or a negative code (refused: the PUT
 * fails and the connection closes). */
int server_put_frame(struct conn *c, const struct proto_header *hdr,
		     const union proto_msg *msg, struct chunk_slot *slot);
int server_put_discard_frame(struct conn *c, const struct proto_header *hdr);

/* ---- server_get.c: the GET stream --------------------------------------- */

/* GET on the pool; then on the loop after it succeeded: answer GET_META
 * and start streaming (false: reading stays paused) or, for meta_only,
 * just answer (true: resume reading). */
void server_get_work_open(struct conn *c);
bool server_get_after_open(struct conn *c, uint32_t request, enum conn_state next);

/* Read, seal and send the next chunk of the GET stream. */
void server_get_next(struct conn *c);

#endif
