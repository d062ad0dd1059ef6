/* recv.c - a stream of frames from a connection, verified into a sink. */
#include "stream_net.h"

#include <inttypes.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rtcms_error.h"

/* One receive: the verifier, the sink's state, the first failure. */
struct recv {
	const struct stream_in *in;
	struct stream_verifier *v;
	struct stream_sink *sink;
	struct stream_result *res;
	bool sink_live;                    /* begun, not ended, aborted or done */
	int rc;                            /* the first failure */
	uint8_t *plain;                    /* an opened chunk (with in->keys) */
};

/* Record a failure (the first one counts); the sink is aborted. */
static int recv_fail(struct recv *r, enum stream_fault fault, int rc)
{
	if (r->rc)
		return r->rc;
	r->rc = rc;
	r->res->fault = fault;
	if (fault == STREAM_FAULT_VERIFY)
		snprintf(r->res->why, sizeof(r->res->why), "%s", stream_verifier_why(r->v));
	if (r->sink_live)
		stream_sink_abort(r->sink, rc);
	r->sink_live = false;
	return rc;
}

/* Open a sealed chunk under the reader's keys into r->plain: *opened
 * then describes its plaintext. 0 or RTCMS_ECORRUPT / RTCMS_ENOMEM (with
 * the reason in why). */
static int recv_open(struct recv *r, const struct proto_chunk *c, union proto_msg *opened,
		     char *why, size_t whylen)
{
	const struct datakey *key = datakey_find(r->in->keys, c->key_id);
	int rc;

	if (!key) {
		snprintf(why, whylen, "chunk at %" PRIu64 " is sealed "
			 "under data key %" PRIu32 ", which this node's keyring lacks",
			 c->offset, c->key_id);
		return RTCMS_ECORRUPT;
	}
	/* where the sink keeps it, if it says (no copy after), else a buffer */
	uint8_t *to = r->in->place ? r->in->place(r->in->place_ctx, c->offset, c->len) : NULL;
	if (!to && !r->plain && !(r->plain = malloc(PROTO_MAX_CHUNK))) {
		snprintf(why, whylen, "no memory to open a chunk");
		return RTCMS_ENOMEM;
	}
	if (!to)
		to = r->plain;
	rc = stream_chunk_open(key, c->hash, c->data, (size_t)c->len + STREAM_TAG_SIZE, to);
	if (rc) {
		snprintf(why, whylen, "chunk at %" PRIu64 " does not "
			 "open under data key %" PRIu32 ": tampered, spliced from another "
			 "checkpoint, or sealed under another key with this id", c->offset,
			 c->key_id);
		return RTCMS_ECORRUPT;
	}
	opened->chunk = *c;
	opened->chunk.data = to;
	opened->chunk.opened = true;
	return 0;
}

/* A CHUNK or end frame once nothing failed: into the verifier, then the
 * sink. Sets *step. */
static int recv_frame(struct recv *r, const struct proto_header *h, const union proto_msg *m,
		      enum stream_step *step)
{
	union proto_msg opened;
	int rc;

	if (h->type == PROTO_CHUNK && m->chunk.key_id && r->in->keys) {
		char why[sizeof(r->res->why)];
		if ((rc = recv_open(r, &m->chunk, &opened, why, sizeof(why))) != 0) {
			r->res->at_end = false;
			rc = recv_fail(r, STREAM_FAULT_VERIFY, rc);
			snprintf(r->res->why, sizeof(r->res->why), "%s", why);
			return rc;
		}
		m = &opened;
	}
	rc = stream_verifier_feed(r->v, h->type, m, r->in->end_type, step);

	r->res->at_end = h->type != PROTO_CHUNK; /* if it fails */
	if (rc)
		return recv_fail(r, STREAM_FAULT_VERIFY, rc);
	if (*step == STREAM_DONE) {
		if (h->type == PROTO_GET_END)
			r->res->get_end = m->get_end;
		if (r->res->more) {
			/* a link of a chain: the sink stays live for the next
			 * one (a failure here aborts it) */
			rc = stream_sink_link(r->sink, stream_verifier_count(r->v));
			if (rc && !r->sink->ops->link)
				snprintf(r->res->why, sizeof(r->res->why),
					 "a chain of images where one was expected");
			if (rc == 0) {
				r->sink_live = false;
				r->res->at_end = false;
			}
			return rc ? recv_fail(r, STREAM_FAULT_SINK, rc) : 0;
		}
		r->sink_live = false;
		rc = stream_sink_end(r->sink, stream_verifier_count(r->v));
		if (rc == 0)
			r->res->at_end = false;
		return rc ? recv_fail(r, STREAM_FAULT_SINK, rc) : 0;
	}
	if ((rc = stream_sink_chunk(r->sink, &m->chunk)) != 0)
		return recv_fail(r, STREAM_FAULT_SINK, rc);
	r->res->chunks++;
	return 0;
}

/* A failure of the connection itself (it closed, the peer sent ERROR or
 * a frame out of step): it replaces a refusal being drained. */
static int recv_broken(struct recv *r, enum stream_fault fault, int rc)
{
	r->rc = 0;
	r->res->why[0] = '\0';
	r->res->at_end = false;
	return recv_fail(r, fault, rc);
}

/* Read frames until the end frame (or, failed without drain, the first
 * failure; or the sink's stop). */
static int recv_loop(struct recv *r)
{
	struct proto_header h;
	union proto_msg m;
	enum stream_step step = STREAM_MORE;

	while (step == STREAM_MORE) {
		int rc = r->in->port.recv(r->in->port.ctx, &h, &m);
		if (rc)
			return recv_broken(r, STREAM_FAULT_CONN, rc);
		if (h.type == PROTO_ERROR) {
			if (r->in->port.peer_error)
				r->in->port.peer_error(r->in->port.ctx, &m.error);
			return recv_broken(r, STREAM_FAULT_PEER,
					   m.error.code < 0 ? m.error.code : RTCMS_EPROTO);
		}
		if (h.type != PROTO_CHUNK && h.type != r->in->end_type) {
			recv_broken(r, STREAM_FAULT_FRAME, RTCMS_EPROTO);
			snprintf(r->res->why, sizeof(r->res->why), "expected CHUNK or %s",
				 proto_type_name(r->in->end_type));
			return RTCMS_EPROTO;
		}
		if (h.type == r->in->end_type)
			r->res->more = (h.flags & PROTO_F_MORE) != 0;
		if (!r->rc) {
			if (recv_frame(r, &h, &m, &step) != 0 && !r->in->drain)
				return r->rc;
			if (!r->rc && r->sink->done) {
				r->res->outcome = STREAM_STOPPED;
				return 0;
			}
		}
		if (r->rc) /* draining a refused stream to its end */
			step = h.type == PROTO_CHUNK ? STREAM_MORE : STREAM_DONE;
	}
	return r->rc;
}

int stream_recv(const struct stream_in *in, const struct proto_ckpt_meta *meta,
		struct stream_sink *sink, struct stream_result *res)
{
	struct stream_verifier v;
	struct recv r = { in, &v, sink, res, false, 0, NULL };
	int rc;

	memset(res, 0, sizeof(*res));
	sink->done = false;
	rc = stream_verifier_begin(&v, meta, in->max_size, in->flags);
	if (rc) {
		recv_fail(&r, STREAM_FAULT_VERIFY, rc);
	} else if ((rc = stream_sink_begin(sink, meta)) != 0) {
		recv_fail(&r, STREAM_FAULT_SINK, rc);
	} else if (sink->done) {
		res->outcome = STREAM_STOPPED;
		return 0;
	} else {
		r.sink_live = true;
	}
	if (rc && !in->drain)
		return rc;
	rc = recv_loop(&r);
	if (r.plain) {
		sodium_memzero(r.plain, PROTO_MAX_CHUNK);
		free(r.plain);
	}
	return rc;
}

/* ---- chains ------------------------------------------------------------- */

/* Read the rest of a refused chain, link by link, to the end frame that
 * has no MORE. 0 or the connection's error. */
static int chain_drain(const struct stream_in *in, uint8_t begin_type)
{
	struct proto_header h;
	union proto_msg m;

	for (;;) {
		int rc = in->port.recv(in->port.ctx, &h, &m);
		if (rc)
			return rc;
		if (h.type == PROTO_ERROR)
			return m.error.code < 0 ? m.error.code : RTCMS_EPROTO;
		if (h.type != PROTO_CHUNK && h.type != begin_type && h.type != in->end_type)
			return RTCMS_EPROTO;
		if (h.type == in->end_type && !(h.flags & PROTO_F_MORE))
			return 0;
	}
}

int stream_recv_chain(const struct stream_in *in, uint8_t begin_type,
		      struct proto_ckpt_meta *meta, struct stream_sink *sink,
		      struct stream_result *res)
{
	struct proto_ckpt_meta prev;
	uint32_t links = 1, chunks = 0;
	int rc = stream_recv(in, meta, sink, res);

	for (;;) {
		chunks += res->chunks;
		res->chunks = chunks;
		if (rc && (res->fault == STREAM_FAULT_VERIFY || res->fault == STREAM_FAULT_SINK) &&
		    in->drain && res->more) {
			/* refused mid-chain: read the other links so the peer
			 * can be answered */
			int drc = chain_drain(in, begin_type);
			if (drc) {
				res->fault = STREAM_FAULT_CONN;
				return drc;
			}
			res->more = false;
			return rc;
		}
		if (rc || !res->more || res->outcome != STREAM_ENDED)
			return rc;
		/* the next link: its metadata frame, then its stream */
		struct proto_header h;
		union proto_msg m;
		prev = *meta;
		res->more = false;
		if ((rc = in->port.recv(in->port.ctx, &h, &m)) != 0) {
			res->fault = STREAM_FAULT_CONN;
		} else if (h.type == PROTO_ERROR) {
			if (in->port.peer_error)
				in->port.peer_error(in->port.ctx, &m.error);
			res->fault = STREAM_FAULT_PEER;
			rc = m.error.code < 0 ? m.error.code : RTCMS_EPROTO;
		} else if (h.type != begin_type) {
			res->fault = STREAM_FAULT_FRAME;
			rc = RTCMS_EPROTO;
			snprintf(res->why, sizeof(res->why), "expected %s (the next link "
				 "of a chain)", proto_type_name(begin_type));
		} else if (++links > STREAM_CHAIN_MAX) {
			res->fault = STREAM_FAULT_VERIFY;
			rc = RTCMS_EPROTO;
			snprintf(res->why, sizeof(res->why), "a chain of more than %d links",
				 STREAM_CHAIN_MAX);
		} else if ((rc = stream_chain_next(&prev, &m.meta, res->why,
						   sizeof(res->why))) != 0) {
			res->fault = STREAM_FAULT_VERIFY;
		}
		if (rc) {
			stream_sink_abort(sink, rc);
			return rc;
		}
		*meta = m.meta;
		rc = stream_recv(in, meta, sink, res);
	}
}
