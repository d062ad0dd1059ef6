/*
 * restore.c - the restore interface (restore.h), one RESTORE as a row of
 * steps over a struct restore.
 */
#include "restore.h"

#include <inttypes.h>
#include <signal.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "area/area.h"
#include "area/image.h"
#include "launch.h"
#include "log/log.h"
#include "proc.h"
#include "spawn.h"
#include "rtcms_error.h"
#include "stats.h"
#include "stream/chunk.h"
#include "stream/stream_net.h"

/* One RESTORE in progress, on its connection thread. */
struct restore {
	struct agent *a;
	const struct agent_peer *peer;
	const char *who;
	uint32_t request;
	struct proto_ckpt_meta meta;   /* meta.spec points to spec */
	uint8_t spec[PROTO_SPEC_MAX];
	uint64_t start_ms;             /* the RESTORE arrived */
	uint64_t launch_ms;            /* the program started (restore_timeout) */
	int rc;                        /* the refusal or failure: 0, RTCMS_E* */
	char why[PROTO_TEXT_MAX + 1];  /* its reason */
	uint64_t max;                  /* the largest image this node takes */
	struct stream_area_sink image; /* the verified image, assembled in area */
	struct launch_area area;       /* the new program's area (until the launch) */
	struct aproc *p;               /* the started instance (a reference) */
	uint64_t adopted;              /* the incarnation ADOPT gave */
};

/* Refuse or fail the restore with code and a reason (the first one
 * counts: the stream is still read to its end). */
static void fail(struct restore *r, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void fail(struct restore *r, int code, const char *fmt, ...)
{
	va_list ap;
	if (r->rc)
		return;
	r->rc = code;
	va_start(ap, fmt);
	vsnprintf(r->why, sizeof(r->why), fmt, ap);
	va_end(ap);
}

/* Answer the RESTORE with r's failure: RESTORE_FAILED, or RESTORE_BROKEN
 * if the connection broke. */
static enum restore_result answer_failure(struct restore *r)
{
	return peer_reply_errorf(r->peer, r->request, r->rc, "%s", r->why)
		       ? RESTORE_BROKEN : RESTORE_FAILED;
}

/* Step 1: may this checkpoint be restored here (room, an incarnation not
 * older than one that ran here, the size)? */
static void restore_admit(struct restore *r)
{
	struct agent *a = r->a;
	const struct proto_ckpt_meta *m = &r->meta;

	r->max = image_size(AREA_MAX_REGIONS, a->cfg.area_capacity > (1ull << 30)
			    ? a->cfg.area_capacity : (1ull << 30));
	r->rc = proc_room(a, m->process, r->why, sizeof(r->why));
	uint64_t seen = proc_seen_incarnation(a, m->process);
	if (m->incarnation < seen)
		/* a checkpoint older than an instance this node already ran */
		fail(r, RTCMS_EFENCED, "%s incarnation %" PRIu64 " already ran here: its "
		     "checkpoint of incarnation %" PRIu64 " is stale", m->process, seen,
		     m->incarnation);
	if (m->size > r->max)
		fail(r, RTCMS_ETOOBIG, "checkpoint of %" PRIu64 " bytes is over this "
		     "node's limit of %" PRIu64, m->size, r->max);
}

/* A spec sealed by its source agent (stream/chunk.h) opened into r->spec
 * with this agent's keyring; a plain one (an agent without a keyring, or
 * a checkpoint stored before specs were sealed) is used as it is. */
static void restore_open_spec(struct restore *r)
{
	const struct proto_ckpt_meta *m = &r->meta;
	uint32_t key_id;

	if (!stream_spec_is_sealed(r->spec, m->spec_len))
		return;
	uint8_t *plain = malloc(PROTO_SPEC_MAX);
	int n = plain ? stream_spec_open(&r->a->data_keys, m->process, r->spec, m->spec_len,
					 plain, PROTO_SPEC_MAX, &key_id)
		      : RTCMS_ENOMEM;
	if (n >= 0) {
		memcpy(r->spec, plain, (size_t)n);
		r->meta.spec_len = (uint32_t)n;
	} else if (n == RTCMS_ENOENT) {
		fail(r, RTCMS_ECORRUPT, "%s seq %" PRIu64 ": its program spec is sealed under "
		     "data key %" PRIu32 ", which this agent's keyring does not hold",
		     m->process, m->sequence, key_id);
	} else {
		fail(r, n == RTCMS_ENOMEM ? n : RTCMS_ECORRUPT, "%s seq %" PRIu64 ": its "
		     "program spec does not open under data key %" PRIu32 " (%s)", m->process,
		     m->sequence, key_id, rtcms_strerror(n));
	}
	if (plain)
		sodium_memzero(plain, PROTO_SPEC_MAX);
	free(plain);
}

/* The image's area (stream_area_fn), asked for at the stream's first
 * link: a memfd area whose slots hold the agent's area capacity, or the
 * image's data if it needs more. The image is received into it. */
static int restore_area(void *ctx, uint64_t size, void **mem)
{
	struct restore *r = ctx;
	uint64_t capacity = r->a->cfg.area_capacity;
	char err[PROTO_TEXT_MAX];

	if (size > capacity)
		capacity = size;
	int rc = spawn_area_new(capacity, &r->area, err, sizeof(err));
	if (rc) {
		log_warn("[agent] RESTORE %s: %s", r->meta.process, err);
		return rc;
	}
	*mem = r->area.mem;
	return 0;
}

/* The sink of a refused restore: it wants nothing, so the stream is read
 * to its end unverified (the refusal, not this code, is answered). */
static int refused_begin(struct stream_sink *s, const struct proto_ckpt_meta *meta)
{
	(void)s;
	(void)meta;
	return RTCMS_ESTATE;
}

static const struct stream_sink_ops refused_ops = { refused_begin, NULL, NULL, NULL, NULL };

/* The verifier's refusal as the restore answers it: a stream whose chunks
 * do not add up to the announced image (more than its count, or an end
 * after another count) is an image that does not match its hash. */
static void refuse_stream(struct restore *r, int rc, const struct stream_result *res)
{
	if (rc == RTCMS_EPROTO && (res->at_end || res->chunks >= r->meta.chunk_count))
		fail(r, RTCMS_ECORRUPT, "the image does not match its hash: %s", res->why);
	else
		fail(r, rc, "%s", res->why);
}

/* Step 2: read the whole stream (CHUNKs, PUT_END; a chain link by link:
 * PUT_END with MORE, the next link's RESTORE) through the stream verifier,
 * even when refusing: a refused restore's stream unverified, else every
 * link verified (chunks, image hash) into
 * r->image, which assembles it in place in r->area (the slot the new
 * program restores from), applies a chain's deltas there, checks the
 * state hash of what it assembled and commits it; a stream that fails
 * leaves nothing committed there. r->meta becomes the last link's (the checkpoint
 * restored). 0 (r->rc says whether it was refused), or the receive's
 * error or RTCMS_EPROTO (another frame: answered) when the connection
 * must close. */
static int restore_receive(struct restore *r)
{
	struct stream_sink refused = { &refused_ops, false };
	struct stream_sink *sink = r->rc ? &refused : &r->image.sink;
	const struct stream_in in = {
		.port = r->peer->port,
		.end_type = PROTO_PUT_END,
		.max_size = r->max,
		.flags = 0, /* the state hash: by r->image, of what it assembled */
		.drain = true,
		.keys = r->a->seal_key ? &r->a->data_keys : NULL, /* opened once, here */
		.place = stream_area_sink_place, /* straight into the area's slot */
		.place_ctx = &r->image,
	};
	struct proto_ckpt_meta meta = r->meta;
	struct stream_result res;
	int rc = stream_recv_chain(&in, PROTO_RESTORE, &meta, sink, &res);

	if (rc == 0) {
		uint32_t spec_len = r->meta.spec_len;
		r->meta = meta;
		r->meta.spec = r->spec;
		r->meta.spec_len = spec_len;
	}
	switch (rc ? res.fault : STREAM_FAULT_NONE) {
	case STREAM_FAULT_NONE:
		return 0;
	case STREAM_FAULT_VERIFY:
		refuse_stream(r, rc, &res);
		return 0;
	case STREAM_FAULT_SINK: /* refused already, or no memory for the image */
		if (r->image.why[0])
			fail(r, rc, "%s", r->image.why);
		else if (rc == RTCMS_ENOMEM)
			fail(r, rc, "no memory for %" PRIu64 " bytes", r->meta.size);
		else
			fail(r, rc, "the image was not taken: %s", rtcms_strerror(rc));
		return 0;
	case STREAM_FAULT_PEER:
	case STREAM_FAULT_FRAME:
		r->peer->reply_error(r->peer->ctx, r->request, RTCMS_EPROTO,
				     res.why[0] ? res.why : "expected CHUNK or PUT_END");
		return RTCMS_EPROTO;
	case STREAM_FAULT_CONN:
		break;
	}
	return rc;
}

/* Step 4: start the program in restore mode from its area, which holds
 * the verified image (the launch takes the area over). */
static void restore_launch(struct restore *r)
{
	if (r->rc)
		return;
	struct launch_req req = {
		.id = r->meta.process,
		.incarnation = r->meta.incarnation,
		.spec = r->meta.spec,
		.spec_len = r->meta.spec_len,
		.area = &r->area,
	};
	r->launch_ms = agent_mono_ms();
	r->rc = launch_start(r->a, &req, &r->p, r->why, sizeof(r->why));
}

/* Step 5: wait until the program has refilled its regions and goes on
 * (its area's resumed word), exits, or restore_timeout passes since it
 * started (the transfer before is bounded by the connection's timeouts,
 * not by this: a large image on a loaded machine takes its time). */
static void restore_wait_resume(struct restore *r)
{
	struct agent *a = r->a;
	struct area_header *ah = r->p->area;
	for (;;) {
		if (atomic_load_explicit(&ah->resumed, memory_order_acquire) == r->meta.sequence)
			return;
		uv_mutex_lock(&a->lock);
		bool gone = r->p->state == AP_EXITED;
		uv_mutex_unlock(&a->lock);
		if (gone) {
			fail(r, RTCMS_ESTATE, "%s exited during its restore", r->meta.process);
			return;
		}
		if (agent_mono_ms() - r->launch_ms > a->cfg.restore_timeout_ms) {
			fail(r, RTCMS_ETIMEDOUT, "%s did not resume within %" PRIu64 " ms",
			     r->meta.process, a->cfg.restore_timeout_ms);
			return;
		}
		agent_sleep_ms(1);
	}
}

/* Step 6: RESTORE_OK. 0 or the send's error. */
static int restore_answer(struct restore *r)
{
	union proto_msg m;
	memset(&m, 0, sizeof(m));
	snprintf(m.restore_ok.process, sizeof(m.restore_ok.process), "%s", r->meta.process);
	m.restore_ok.incarnation = r->meta.incarnation;
	m.restore_ok.sequence = r->meta.sequence;
	m.restore_ok.pid = (uint32_t)r->p->pid;
	return r->peer->port.send(r->peer->port.ctx, PROTO_RESTORE_OK, PROTO_F_REPLY, r->request,
				  &m);
}

/* Step 7: the instance may go on only once the manager committed the
 * move: ADOPT of this process with an incarnation newer than the
 * restored one and than any this node ran, within adopt_timeout. 0 and
 * r->adopted, or the receive's error, RTCMS_EPROTO (another frame or
 * process, an incarnation not newer than the restored one) or
 * RTCMS_EFENCED (answered). On success *req is ADOPT's request id. */
static int restore_wait_adopt(struct restore *r, uint32_t *req)
{
	struct proto_header h;
	union proto_msg m;
	const struct proto_ckpt_meta *mt = &r->meta;

	r->peer->set_timeout(r->peer->ctx, (int)r->a->cfg.adopt_timeout_ms);
	int rc = r->peer->port.recv(r->peer->port.ctx, &h, &m);
	if (rc)
		return rc;
	if (h.type != PROTO_ADOPT || strcmp(m.ref.process, mt->process) ||
	    m.ref.incarnation <= mt->incarnation)
		return RTCMS_EPROTO;
	/* the new incarnation must be newer than any this node ran */
	if (m.ref.incarnation <= proc_seen_incarnation(r->a, mt->process)) {
		log_warn("[%s -> agent] ADOPT %s incarnation %" PRIu64 " refused: not "
			 "newer than one that ran here", r->who, mt->process, m.ref.incarnation);
		r->peer->reply_error(r->peer->ctx, h.request, RTCMS_EFENCED,
				     "incarnation not newer than one that ran here");
		return RTCMS_EFENCED;
	}
	r->adopted = m.ref.incarnation;
	*req = h.request;
	return 0;
}

/* Step 8: the instance runs here as the adopted incarnation; the
 * managers are told of it by the outbox. */
static void restore_adopt(struct restore *r, uint32_t req)
{
	struct agent *a = r->a;
	struct aproc *p = r->p;
	union proto_msg m;

	uv_mutex_lock(&a->lock);
	/* atomic: log lines read it without the lock (proc_incarnation) */
	__atomic_store_n(&p->incarnation, r->adopted, __ATOMIC_RELAXED);
	p->state = AP_RUNNING;
	proc_seen_record(a, p->id, p->incarnation);
	memset(p->notified, 0, sizeof(p->notified));
	uv_mutex_unlock(&a->lock);
	log_prog(LOG_INFO, r->meta.process, r->adopted, 0,
		 "[%s -> agent] ADOPT %s: incarnation %" PRIu64 " runs here", r->who,
		 r->meta.process, r->adopted);
	memset(&m, 0, sizeof(m));
	r->peer->port.send(r->peer->port.ctx, PROTO_OK, PROTO_F_REPLY, req, &m);
	proc_wake_outbox(a);
}

/* Steps 5 to 8 for the started instance r->p. */
static enum restore_result restore_run(struct restore *r)
{
	restore_wait_resume(r);
	if (r->rc) {
		log_warn("[agent] RESTORE %s failed: %s", r->meta.process, r->why);
		proc_kill(r->a, r->p, SIGKILL);
		return answer_failure(r);
	}
	log_info("[program %s] resumed from checkpoint %" PRIu64 " after %" PRIu64 " ms",
		 r->meta.process, r->meta.sequence, agent_mono_ms() - r->start_ms);
	uint32_t req = 0;
	int rc = restore_answer(r);
	if (rc == 0)
		rc = restore_wait_adopt(r, &req);
	if (rc) {
		log_warn("[agent] %s: the manager did not confirm the restore (%s); "
			 "stopping the new instance", r->meta.process, rtcms_strerror(rc));
		proc_kill(r->a, r->p, SIGKILL);
		return RESTORE_UNADOPTED;
	}
	restore_adopt(r, req);
	return RESTORE_ADOPTED;
}

enum restore_result restore_serve(struct agent *a, const struct agent_peer *peer,
				  const char *who, uint32_t request,
				  const struct proto_ckpt_meta *meta)
{
	struct restore *r = calloc(1, sizeof(*r));
	enum restore_result res = RESTORE_BROKEN;

	if (!r)
		return RESTORE_BROKEN;
	r->a = a;
	r->peer = peer;
	r->who = who;
	r->request = request;
	r->start_ms = agent_mono_ms();
	r->meta = *meta;
	memcpy(r->spec, meta->spec, meta->spec_len); /* meta's borrows the frame */
	r->meta.spec = r->spec;
	/* every line of this thread until the end is about this checkpoint */
	log_about_set(meta->process, meta->incarnation, meta->sequence);

	r->area.fd = -1;
	restore_admit(r);
	restore_open_spec(r);
	stream_area_sink_init(&r->image, r->max, restore_area, r);
	if (restore_receive(r) != 0)
		goto out_free;
	size_t image_len = r->image.len;
	stream_area_sink_clear(&r->image);
	restore_launch(r);
	if (r->rc) {
		log_warn("[%s -> agent] RESTORE %s seq %" PRIu64 " refused: %s", who,
			 r->meta.process, r->meta.sequence, r->why);
		res = answer_failure(r);
		goto out_free;
	}
	log_info("[%s -> agent] RESTORE %s seq %" PRIu64 ": %zu bytes verified%s, "
		 "started pid %d in restore mode", who, r->meta.process, r->meta.sequence,
		 image_len, r->meta.base ? " (assembled from a chain)" : "",
		 (int)r->p->pid);
	res = restore_run(r);
	proc_unref(a, r->p);
out_free:
	stream_area_sink_clear(&r->image);
	spawn_area_free(&r->area); /* a failed restore's: discarded */
	free(r);
	log_about_clear();
	metric_counter_inc(&agent_stats.restores[res == RESTORE_ADOPTED ? ARESTORE_ADOPTED
				: res == RESTORE_FAILED ? ARESTORE_FAILED
				: res == RESTORE_UNADOPTED ? ARESTORE_UNADOPTED : ARESTORE_BROKEN]);
	return res;
}
