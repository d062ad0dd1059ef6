/*
 * server.c - rtcms-store's event loop: the listener, signals, the fences
 * read at start, and the requests: one table {type, work, log, after}
 * that says what each request runs on the thread pool, how a success is
 * logged, and what follows it on the loop.
 *
 * Before a connection is one, the gate (daemon/gate.h) holds it until its
 * whole HELLO arrived (within GATE_HANDSHAKE_MS of the accept; when too
 * many wait, the oldest is closed): idle and slow peers never take one of
 * max_connections. Phases of a connection (conn.c):
 *   HANDSHAKE  its HELLO is checked under the cluster key and answered
 *   READY      one request at a time; the request runs on the thread pool
 *              while reading is paused, then its reply is sealed and sent
 *   PUT        CHUNK frames are decrypted straight into one of a few
 *              per-connection buffers and written by the thread pool, up to
 *              PUT_INFLIGHT at once; reading pauses when all are busy
 *              (back-pressure), PUT_END waits for them to drain
 *              (server_put.c)
 *   GET        chunks are read and verified on the thread pool one after
 *              another and streamed out; reading is paused (server_get.c)
 * Any malformed, unauthenticated or replayed frame gets one log line naming
 * the peer, an ERROR frame where the peer can read one, and the connection
 * is closed; nothing stored is touched and other connections go on.
 */
#include "server_int.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/gate.h"
#include "daemon/notify.h"
#include "daemon/rpc_server.h"
#include "log/log.h"
#include "net/addr.h"
#include "rtcms_error.h"

/* ---- FENCE and MLEASE ------------------------------------------------- */

/* FENCE: decided in memory, persisted on every mirror before the answer
 * (a restarted store must still list it). */
static void work_fence(struct conn *c)
{
	const struct proto_fence *f = &c->msg.fence;
	uint64_t created = 0;

	c->rc = fence_table_fence(c->srv->fences, f, mono_ns() / 1000000, &c->reply.fence_ok,
				  &created, c->err.text, sizeof(c->err.text));
	c->reply_type = PROTO_FENCE_OK;
	if (c->rc == 0 && created) {
		c->rc = store_fence_save(c->srv->store, f->node, created, f->hold_ms);
		if (c->rc) {
			fence_table_drop(c->srv->fences, f->node, created);
		} else {
			metric_counter_inc(&store_stats.fences_created);
			metric_gauge_add(&store_stats.fences, 1);
			log_warn("[peer %s] FENCE node %016" PRIx64 " by %s: generation %" PRIu64
				 "; no manager may answer it from now on", c->peer, f->node,
				 f->by, created);
		}
	}
}

struct lift_work {
	uv_work_t w;
	struct store *store;
	size_t n;
	uint64_t nodes[PROTO_NODES_MAX];
};

static void work_lift(uv_work_t *w)
{
	struct lift_work *l = w->data;
	for (size_t i = 0; i < l->n; i++)
		if (store_fence_delete(l->store, l->nodes[i]) != 0)
			log_warn("fence of node %016" PRIx64 " lifted, but not deleted on disk "
				 "(it is lifted again after the next start)", l->nodes[i]);
}

static void after_lift(uv_work_t *w, int status)
{
	(void)status;
	free(w->data);
}

/* MLEASE on the loop (memory only, never behind a disk): renew the
 * manager's lease, answer with the fences; lift fences that are done. */
static void conn_mlease(struct conn *c, const struct proto_header *hdr,
			const union proto_msg *msg)
{
	struct server *srv = c->srv;
	union proto_msg out;
	uint64_t now = mono_ns() / 1000000;
	struct lift_work *l = calloc(1, sizeof(*l));

	if (l) {
		l->n = fence_table_expire(srv->fences, now, l->nodes, PROTO_NODES_MAX);
		metric_gauge_add(&store_stats.fences, -(int64_t)l->n);
		for (size_t i = 0; i < l->n; i++)
			log_info("fence of node %016" PRIx64 " lifted: it may rejoin (empty)",
				 l->nodes[i]);
		l->w.data = l;
		l->store = srv->store;
		if (l->n == 0 || uv_queue_work(srv->loop, &l->w, work_lift, after_lift) != 0)
			free(l);
	}
	int rc = fence_table_renew(srv->fences, &msg->mlease, now, &out.mlease_ok);
	if (rc) {
		conn_error(c, hdr->request, rc, NULL, 0);
		return;
	}
	conn_send(c, PROTO_MLEASE_OK, 0, hdr->request, &out, 0);
}

/* ---- compaction of the packs (thread pool) ------------------------------ */

struct compact_work {
	uv_work_t w;
	struct server *srv;
	int rc;
	struct store_compact_stats s;
};

static void work_compact(uv_work_t *w)
{
	struct compact_work *k = w->data;
	k->rc = store_compact(k->srv->store, &k->s);
}

static void after_compact(uv_work_t *w, int status)
{
	struct compact_work *k = w->data;
	(void)status;
	/* the store logs what it did; the next request that frees records
	 * (or a pass that left work: store_compact_due) starts the next */
	k->srv->compacting = 0;
	free(k);
}

void server_compact_maybe(struct server *srv)
{
	if (srv->compacting || srv->stopping || !store_compact_due(srv->store))
		return;
	struct compact_work *k = calloc(1, sizeof(*k));
	if (!k)
		return;
	k->w.data = k;
	k->srv = srv;
	if (uv_queue_work(srv->loop, &k->w, work_compact, after_compact) != 0) {
		free(k);
		return;
	}
	srv->compacting = 1;
}

/* ---- the other requests (thread pool) ---------------------------------- */

static void work_list(struct conn *c)
{
	const struct proto_list *q = &c->msg.list;
	bool more = false;

	if (!c->entries)
		c->entries = calloc(PROTO_LIST_MAX, sizeof(*c->entries));
	if (!c->entries) {
		c->rc = RTCMS_ENOMEM;
		return;
	}
	c->rc = store_list(c->srv->store, q->node, q->process, q->offset, q->limit,
			   c->entries, &more);
	if (c->rc >= 0) {
		c->reply.list_reply.count = (uint16_t)c->rc;
		c->reply.list_reply.entries = c->entries;
		c->reply_flags = more ? PROTO_F_MORE : 0;
		c->reply_type = PROTO_LIST_REPLY;
		c->rc = 0;
	}
}

static void work_delete(struct conn *c)
{
	const struct proto_delete *q = &c->msg.del;

	c->rc = store_delete(c->srv->store, q->process, q->incarnation, q->sequence);
	if (c->rc == RTCMS_EBUSY)
		snprintf(c->err.text, sizeof(c->err.text), "%s %" PRIu64
			 "/%" PRIu64 " is the base of a delta checkpoint: "
			 "delete the deltas first, or the whole process",
			 q->process, q->incarnation, q->sequence);
	if (c->rc >= 0) {
		c->rc = 0;
		c->reply_type = PROTO_OK;
	}
}

static void work_claim(struct conn *c)
{
	const struct proto_claim *q = &c->msg.claim;

	c->rc = store_claim(c->srv->store, q->process, q->claimant, q->lease_ms,
			    q->flags, &c->reply.claim_ok, &c->err);
	c->reply_type = PROTO_CLAIM_OK;
}

static void work_commit(struct conn *c)
{
	const struct proto_commit *q = &c->msg.commit;

	c->rc = store_commit(c->srv->store, q->process, q->claim_id, q->new_node,
			     &c->reply.commit_ok);
	c->reply_type = PROTO_COMMIT_OK;
}

static void work_release(struct conn *c)
{
	c->rc = store_release(c->srv->store, c->msg.release.process,
			      c->msg.release.claim_id);
	c->reply_type = PROTO_OK;
}

static void work_scrub(struct conn *c)
{
	c->rc = store_scrub(c->srv->store, c->msg.scrub.repair != 0,
			    &c->reply.scrub_reply);
	c->reply_type = PROTO_SCRUB_REPLY;
}

static void work_status(struct conn *c)
{
	c->rc = store_status(c->srv->store, &c->reply.scrub_reply);
	c->reply_type = PROTO_STATUS_REPLY;
}

/* DATAKEY: a data key's check value, recorded the first time (every
 * mirror), answered with the cluster's. */
static void work_datakey(struct conn *c)
{
	const struct proto_datakey *q = &c->msg.datakey;
	uint64_t recorded = 0;
	bool first = false;

	c->rc = store_datakey_check(c->srv->store, q->key_id, q->kcv, &recorded, &first);
	c->reply_type = PROTO_DATAKEY_OK;
	c->reply.datakey.key_id = q->key_id;
	c->reply.datakey.kcv = recorded;
	c->reply.datakey.first = first;
	if (c->rc == 0 && first)
		log_info("[peer %s] DATAKEY %" PRIu32 ": check value %016" PRIx64 " recorded: "
			 "the cluster's data key %" PRIu32, c->peer, q->key_id, q->kcv, q->key_id);
	else if (c->rc == 0 && recorded != q->kcv)
		log_warn("[peer %s] DATAKEY %" PRIu32 ": check value %016" PRIx64 " is not the "
			 "cluster's (%016" PRIx64 "): an agent has another keyring", c->peer,
			 q->key_id, q->kcv, recorded);
}

/* KEYS: the chunks each data key id seals, from the metadata. */
static void work_keys(struct conn *c)
{
	bool more = false;

	c->rc = store_keys(c->srv->store, c->msg.keys.from, &c->reply.keys_reply, &more);
	c->reply_type = PROTO_KEYS_REPLY;
	c->reply_flags = more ? PROTO_F_MORE : 0;
}

/* A manager's first lease: persisted first, so a restarted store knows it
 * may hold one. */
static void work_mlease(struct conn *c)
{
	const struct proto_mlease *q = &c->msg.mlease;

	c->rc = store_manager_save(c->srv->store, q->name, q->lease_ms);
	if (c->rc == 0)
		c->rc = fence_table_renew(c->srv->fences, q, mono_ns() / 1000000,
					  &c->reply.mlease_ok);
	c->reply_type = PROTO_MLEASE_OK;
	if (c->rc == 0)
		log_info("[peer %s] MLEASE: manager %s holds a lease (%u ms)", c->peer,
			 q->name, c->reply.mlease_ok.lease_ms);
}

/* ---- success log lines ------------------------------------------------- */

static void log_claim(struct conn *c)
{
	const struct proto_claim *q = &c->msg.claim;
	const struct proto_claim_ok *r = &c->reply.claim_ok;

	log_prog(LOG_INFO, q->process, r->incarnation, r->sequence,
		 "[peer %s] CLAIM %s by %s: won, claim %016" PRIx64
		 " on %" PRIu64 "/%" PRIu64 ", lease %u ms%s",
		 c->peer, q->process, q->claimant, r->claim_id, r->incarnation,
		 r->sequence, q->lease_ms, q->flags & PROTO_CLAIM_F_GAVE_UP
		 ? " (its node gave up on it: the one move allowed)" : "");
}

static void log_commit(struct conn *c)
{
	log_prog(LOG_INFO, c->msg.commit.process, c->reply.commit_ok.incarnation, 0,
		 "[peer %s] COMMIT %s claim %016" PRIx64
		 ": now incarnation %" PRIu64 " on node %016" PRIx64,
		 c->peer, c->msg.commit.process, c->msg.commit.claim_id,
		 c->reply.commit_ok.incarnation, c->reply.commit_ok.node);
}

static void log_release(struct conn *c)
{
	log_prog(LOG_INFO, c->msg.release.process, 0, 0,
		 "[peer %s] RELEASE %s claim %016" PRIx64, c->peer,
		 c->msg.release.process, c->msg.release.claim_id);
}

static void log_delete(struct conn *c)
{
	log_prog(LOG_INFO, c->msg.del.process, c->msg.del.incarnation, c->msg.del.sequence,
		 "[peer %s] DELETE %s %" PRIu64 "/%" PRIu64, c->peer,
		 c->msg.del.process, c->msg.del.incarnation, c->msg.del.sequence);
}

static void log_scrub(struct conn *c)
{
	log_info("[peer %s] SCRUB: %" PRIu64 " chunks, %u unrepairable",
		 c->peer, c->reply.scrub_reply.chunks,
		 c->reply.scrub_reply.unrepairable);
}

/* ---- the request table ---------------------------------------------------- */

struct request_handler {
	uint8_t type;
	/* on the thread pool: c->rc, c->reply_type, c->reply (and c->err) */
	void (*work)(struct conn *c);
	/* the log line of a success (NULL: a debug line) */
	void (*log)(struct conn *c);
	/* on the loop after a success (NULL: send the reply, READY again);
	 * true: resume reading */
	bool (*after)(struct conn *c, uint32_t request, enum conn_state next);
};

static const struct request_handler handlers[] = {
	{ PROTO_PUT_BEGIN, server_put_work_begin, NULL, server_put_after_begin },
	{ PROTO_GET, server_get_work_open, NULL, server_get_after_open },
	{ PROTO_LIST, work_list, NULL, NULL },
	{ PROTO_DELETE, work_delete, log_delete, NULL },
	{ PROTO_CLAIM, work_claim, log_claim, NULL },
	{ PROTO_COMMIT, work_commit, log_commit, NULL },
	{ PROTO_RELEASE, work_release, log_release, NULL },
	{ PROTO_SCRUB, work_scrub, log_scrub, NULL },
	{ PROTO_STATUS, work_status, NULL, NULL },
	{ PROTO_FENCE, work_fence, NULL, NULL },
	{ PROTO_DATAKEY, work_datakey, NULL, NULL },
	{ PROTO_KEYS, work_keys, NULL, NULL },
	{ PROTO_MLEASE, work_mlease, NULL, NULL },
};

/* The handler of a request type, or NULL (not a request). */
static const struct request_handler *handler_find(uint8_t type)
{
	for (size_t i = 0; i < sizeof(handlers) / sizeof(handlers[0]); i++)
		if (handlers[i].type == type)
			return &handlers[i];
	return NULL;
}

static void work_request(uv_work_t *w)
{
	struct conn *c = w->data;
	const struct request_handler *h = handler_find(c->req.type);

	memset(&c->err, 0, sizeof(c->err));
	c->reply_flags = 0;
	if (h)
		h->work(c);
	else
		c->rc = RTCMS_EINTERNAL;
}

/* The program a request is about, for the journal's fields of its log
 * lines (process NULL: not about one). */
static struct log_about request_about(const struct conn *c)
{
	const union proto_msg *m = &c->msg;

	switch (c->req.type) {
	case PROTO_PUT_BEGIN:
		return (struct log_about){ m->meta.process, m->meta.incarnation,
					   m->meta.sequence };
	case PROTO_GET:
		return (struct log_about){ m->get.process, m->get.incarnation, m->get.sequence };
	case PROTO_DELETE:
		return (struct log_about){ m->del.process, m->del.incarnation, m->del.sequence };
	case PROTO_CLAIM:
		return (struct log_about){ m->claim.process, 0, 0 };
	case PROTO_COMMIT:
		return (struct log_about){ m->commit.process, 0, 0 };
	case PROTO_RELEASE:
		return (struct log_about){ m->release.process, 0, 0 };
	default:
		return (struct log_about){ NULL, 0, 0 };
	}
}

static void log_result(struct conn *c, const struct request_handler *h)
{
	if (c->rc < 0) {
		/* a manager asking whether a checkpoint is stored yet is routine */
		int probe = c->req.type == PROTO_GET && c->msg.get.meta_only &&
			    c->rc == RTCMS_ENOENT;
		struct log_about about = request_about(c);
		log_with(probe ? LOG_DEBUG : LOG_INFO, &about, "[peer %s] %s refused: %s%s%s",
			 c->peer, proto_type_name(c->req.type), rtcms_errname(c->rc),
			 c->err.text[0] ? ": " : "", c->err.text);
		return;
	}
	if (h && h->log)
		h->log(c);
	else
		log_debug("[peer %s] %s done", c->peer, proto_type_name(c->req.type));
}

static void after_request(uv_work_t *w, int status)
{
	struct conn *c = w->data;
	const struct request_handler *h = handler_find(c->req.type);
	uint32_t req = c->req.request;

	if (conn_work_done(c))
		return;
	log_result(c, h);
	/* A streamed PUT answered now: its data follows and is dropped. */
	enum conn_state next = c->req.type == PROTO_PUT_BEGIN &&
			       (c->req.flags & PROTO_F_STREAM) &&
			       c->msg.meta.chunk_count > 0 ? C_DISCARD : C_READY;
	if (c->rc < 0) {
		if (c->req.type == PROTO_GET && !c->msg.get.meta_only)
			metric_counter_inc(&store_stats.gets[c->rc == RTCMS_ENOENT ? STORE_GET_MISSING
							     : STORE_GET_FAILED]);
		c->state = next;
		conn_error(c, req, c->rc, &c->err, 0);
		conn_read_start(c);
		return;
	}
	server_compact_maybe(c->srv);
	if (h && h->after) {
		if (!h->after(c, req, next))
			return;
	} else {
		c->state = C_READY;
		conn_send(c, c->reply_type, c->reply_flags, req, &c->reply, 0);
	}
	conn_read_start(c);
}

int server_request_frame(struct conn *c, const struct proto_header *hdr,
			 const union proto_msg *msg)
{
	if (!handler_find(hdr->type)) {
		log_warn("[peer %s] unexpected %s; closing", c->peer,
			 proto_type_name(hdr->type) ? proto_type_name(hdr->type)
						    : "frame");
		conn_read_stop(c);
		conn_error(c, hdr->request, RTCMS_EPROTO, NULL, 1);
		return RTCMS_EPROTO;
	}
	if (hdr->type == PROTO_MLEASE && fence_table_knows(c->srv->fences, msg->mlease.name)) {
		conn_mlease(c, hdr, msg);
		return 0;
	}
	/* A request: run it on the thread pool, reading paused meanwhile.
	 * The spec blob of PUT_BEGIN points into c->plain, which stays
	 * untouched until the request is done. */
	c->req = *hdr;
	c->req_ns = mono_ns();
	c->msg = *msg;
	c->state = C_BUSY;
	conn_read_stop(c);
	conn_queue(c, &c->work, c, work_request, after_request);
	return 0;
}

/* ---- listener ------------------------------------------------------------ */

static void close_walk(uv_handle_t *h, void *arg)
{
	(void)arg;
	if (uv_is_closing(h))
		return;
	if (h->type == UV_TCP) { /* the gate's are closing already */
		conn_close(h->data);
		return;
	}
	if (h->type == UV_TIMER)
		return; /* closed with its connection */
	uv_close(h, NULL);
}

static void on_signal(uv_signal_t *s, int signum)
{
	struct server *srv = s->data;

	log_info("signal %d: shutting down", signum);
	notify_stopping("signal %d: shutting down", signum);
	srv->stopping = 1;
	gate_stop(srv->gate);
	uv_walk(srv->loop, close_walk, srv);
}

static void fence_loaded(void *ctx, uint64_t node, uint64_t gen, uint32_t hold_ms)
{
	fence_table_load(ctx, node, gen, hold_ms);
	metric_gauge_add(&store_stats.fences, 1);
	log_warn("node %016" PRIx64 " is fenced (generation %" PRIu64 ", from before this "
		 "start): no manager may answer it", node, gen);
}

static void manager_loaded(void *ctx, const char *name, uint32_t lease_ms)
{
	fence_table_load_manager(ctx, name, lease_ms, mono_ns() / 1000000);
}

static int server_fences_open(struct server *srv)
{
	uint64_t gen = 0;
	srv->fences = fence_table_new(srv->opt->manager_lease_max_ms, mono_ns() / 1000000);
	if (!srv->fences)
		return RTCMS_ENOMEM;
	int rc = store_fences_load(srv->store, fence_loaded, srv->fences, &gen);
	if (rc) {
		log_error("cannot read the node fences: %s", rtcms_strerror(rc));
		fence_table_free(srv->fences);
		return rc;
	}
	fence_table_set_gen(srv->fences, gen);
	rc = store_managers_load(srv->store, manager_loaded, srv->fences);
	if (rc) {
		log_error("cannot read the managers: %s", rtcms_strerror(rc));
		fence_table_free(srv->fences);
		return rc;
	}
	return 0;
}

/* STATUS= for systemd (daemon/notify.h): the mirrors, on the loop. */
static bool status_line(void *ctx, char *buf, size_t len)
{
	struct server *srv = ctx;
	char offline[256];
	size_t online, total;
	if (!store_mirrors_peek(srv->store, &online, &total, offline, sizeof(offline)))
		return false;
	snprintf(buf, len, "serving on %s: %zu of %zu mirrors online%s%s%s; %" PRIu64
		 " connections", srv->bound, online, total, offline[0] ? " (mirror " : "",
		 offline, offline[0] ? " OFFLINE)" : "", srv->connections);
	return true;
}

int server_run(const struct server_options *opt, struct store *st)
{
	struct server srv;
	struct sockaddr_storage ss;
	char bound[80];
	int rc;

	memset(&srv, 0, sizeof(srv));
	srv.opt = opt;
	srv.store = st;
	if ((rc = server_fences_open(&srv)) != 0)
		return rc;
	if (net_addr_parse(opt->listen, 1, &ss) != 0) {
		log_error("invalid listen address \"%s\" (expected host:port, "
			  "e.g. 127.0.0.1:7400)", opt->listen);
		fence_table_free(srv.fences);
		return RTCMS_EINVAL;
	}
	srv.loop = uv_default_loop();
	struct gate_options g = {
		.listen = opt->listen,
		.key = opt->key,
		.on_hello = conn_on_hello,
		.ctx = &srv,
	};
	rc = gate_start(srv.loop, &g, &srv.gate, bound, sizeof(bound));
	if (rc != 0) { /* logged */
		uv_run(srv.loop, UV_RUN_DEFAULT);
		uv_loop_close(srv.loop);
		fence_table_free(srv.fences);
		return RTCMS_EIO;
	}
	uv_signal_init(srv.loop, &srv.sigint);
	uv_signal_init(srv.loop, &srv.sigterm);
	srv.sigint.data = srv.sigterm.data = &srv;
	uv_signal_start(&srv.sigint, on_signal, SIGINT);
	uv_signal_start(&srv.sigterm, on_signal, SIGTERM);
	log_info("listening on %s", bound);
	if (opt->ready_file && rpc_write_ready_file(opt->ready_file, bound) != 0) {
		log_error("cannot write ready file %s: %s", opt->ready_file,
			  strerror(errno));
		return RTCMS_EIO;
	}
	/* serving: the mirrors are open and resynchronised, the socket listens */
	snprintf(srv.bound, sizeof(srv.bound), "%s", bound);
	notify_start(srv.loop, status_line, &srv);
	char status[512];
	if (!status_line(&srv, status, sizeof(status)))
		snprintf(status, sizeof(status), "serving on %s", bound);
	notify_ready("%s", status);
	server_compact_maybe(&srv); /* dead records left by the last run */
	uv_run(srv.loop, UV_RUN_DEFAULT);
	uv_loop_close(srv.loop);
	fence_table_free(srv.fences);
	log_info("stopped");
	return 0;
}
