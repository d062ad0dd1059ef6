/*
 * pull.c - the pull service (pull.h): a PULL is served from the image the
 * agent holds (captured now if the managers asked for a newer one or the
 * program rewrote its slot), in an encoding held until it is sent, so
 * another PULL or a capture never changes what this one streams. The
 * bytes are read from the area chunk by chunk into one buffer, and each
 * chunk is checked to be still the image's before it goes out: a PULL
 * the program overtakes ends with ENOENT, never with another
 * checkpoint's bytes.
 */
#include "pull.h"

#include <inttypes.h>
#include <stdlib.h>

#include "capture.h"
#include "log/log.h"
#include "proc.h"
#include "rtcms_error.h"
#include "stats.h"

/* The image of p a PULL for sequence seq (0: the newest) gets, with a
 * reference, or NULL; *have is the newest sequence held. The image held
 * is captured again first when the managers asked for a newer one, or
 * when the program rewrote its slot (it cannot be sent any more). */
static struct image *pull_image(struct agent *a, struct aproc *p, uint64_t seq,
				uint64_t *have)
{
	uv_mutex_lock(&a->lock);
	struct image *img = p->img;
	if (img && (seq == 0 || img->sequence == seq))
		img->refs++;
	else
		img = NULL;
	*have = p->img ? p->img->sequence : 0;
	uv_mutex_unlock(&a->lock);
	if (img && seq == 0 && !image_current(img)) {
		image_unref(a, img);
		img = NULL;
	}
	if (!img && (seq == 0 || seq > *have)) {
		capture_take(a, p, &img);
		if (img && seq && img->sequence != seq) {
			*have = img->sequence;
			image_unref(a, img);
			img = NULL;
		}
	}
	return img;
}

/* The program rewrote img's slot while a PULL read it (encoding e): the
 * image is captured again at the next poll, and a full image that
 * outran the program once is served from a private copy from now on. */
static void pull_gone(struct agent *a, struct aproc *p, struct image *img,
		      const struct encoding *e)
{
	uv_mutex_lock(&a->lock);
	img->gone = true;
	uv_mutex_unlock(&a->lock);
	if (!e->base)
		copy_full_from_now(a, p, img, "full image's pull");
}

/* What sending an image did. */
enum pull_sent {
	SENT_OK,                       /* the stream (or the metadata) went out */
	SENT_GONE,                     /* the image was gone before anything went out */
	SENT_REFUSED,                  /* answered with an ERROR */
	SENT_BROKEN,                   /* the connection broke */
	SENT_GONE_REFUSED,             /* superseded while it was sent: told with an ERROR */
	SENT_GONE_BROKEN,              /* the same, and the connection broke */
};

/* The CHUNKs of encoding e, read where img's data is and each checked to
 * be still img's before it goes out, and GET_END. 0, RTCMS_ENOENT (the
 * image was gone: *gone), or the send's error. */
static int send_chunks(const struct stream_out *out, const struct image *img,
		       const struct encoding *e, uint8_t *buf, bool *gone)
{
	struct image_reader r = { img, e, false };
	int rc = stream_send_read(out, &e->chunks, image_read, &r, buf);

	*gone = r.gone;
	return rc ? rc : stream_send_end(out, PROTO_GET_END, e->chunks.count);
}

/* GET_META, then (unless only the metadata was asked for) the stream of
 * the encoding for g's base. */
static enum pull_sent pull_send(struct agent *a, const struct agent_peer *peer,
				const char *who, uint32_t request, const struct proto_get *g,
				struct aproc *p, struct image *img)
{
	union proto_msg m;
	struct encoding *e = NULL;
	uint8_t *buf = NULL;
	bool gone = false;
	int rc = 0;
	/* the full image, or the changes since the base the manager holds;
	 * held until it is sent (another PULL's base gets another delta) */
	if (!g->meta_only) {
		rc = image_encoding(img, g->base, &e);
		if (rc == RTCMS_ENOENT)
			return SENT_GONE;
		buf = rc ? NULL : malloc(PROTO_MAX_CHUNK);
		if (!buf) {
			image_encoding_done(img, e);
			return peer_reply_errorf(peer, request, RTCMS_ENOMEM, "no memory to "
						 "encode %s", g->process) ? SENT_BROKEN : SENT_REFUSED;
		}
	}
	struct stream_out out = peer_out(peer, request);
	image_meta(a, p, img, e, &m.meta);
	rc = stream_out_send(&out, PROTO_GET_META, !g->meta_only, &m);
	if (g->meta_only)
		return rc ? SENT_BROKEN : SENT_OK;
	if (rc == 0)
		rc = send_chunks(&out, img, e, buf, &gone);
	free(buf);
	log_prog(LOG_DEBUG, p->id, proc_incarnation(p), img->sequence,
		 "[%s] PULL %s seq %" PRIu64 " %s %" PRIu64 " (%" PRIu64 " bytes): %s", who,
		 p->id, img->sequence, e->base ? "delta against" : "full, asked base", g->base,
		 e->chunks.size, gone ? "rewritten in the area meanwhile"
		 : rc ? rtcms_strerror(rc) : "sent");
	enum pull_sent res = rc ? SENT_BROKEN : SENT_OK;
	if (rc == 0 && !gone)
		metric_counter_add(&agent_stats.sent_bytes, e->chunks.size);
	if (gone) {
		pull_gone(a, p, img, e);
		/* the manager drops what it got and pulls the newer one */
		metric_counter_inc(&agent_stats.pulls[APULL_SUPERSEDED]);
		res = peer_reply_errorf(peer, request, RTCMS_ENOENT, "%s: checkpoint %" PRIu64
					" was superseded while it was pulled (the program "
					"rewrote it)", p->id, img->sequence)
		      ? SENT_GONE_BROKEN : SENT_GONE_REFUSED;
	} else if (rc == 0) {
		uv_mutex_lock(&a->lock);
		img->pulled = true;
		uv_mutex_unlock(&a->lock);
	}
	image_encoding_done(img, e);
	return res;
}

/* res, counted for the metrics. */
static enum pull_result counted(enum pull_result res)
{
	metric_counter_inc(&agent_stats.pulls[res == PULL_SENT ? APULL_SENT
				: res == PULL_REFUSED ? APULL_REFUSED : APULL_BROKEN]);
	return res;
}

/* Times a PULL captures again when its image is gone before it is sent. */
#define PULL_TRIES 3

enum pull_result pull_serve(struct agent *a, const struct agent_peer *peer, const char *who,
			    uint32_t request, const struct proto_get *g)
{
	enum pull_result res = PULL_REFUSED;
	bool superseded = false;
	uint64_t have;

	struct aproc *p = proc_find_live(a, g->process);
	if (!p)
		p = proc_find_state(a, g->process, AP_FROZEN);
	if (!p) {
		res = peer_reply_errorf(peer, request, RTCMS_ENOENT, "no program %s on this node",
					g->process) ? PULL_BROKEN : PULL_REFUSED;
		return counted(res);
	}
	for (int tries = 0;; tries++) {
		struct image *img = pull_image(a, p, g->sequence, &have);
		if (!img || tries == PULL_TRIES) {
			res = peer_reply_errorf(peer, request, RTCMS_ENOENT, "%s: checkpoint %"
						PRIu64 " is not held here (latest %" PRIu64 ")",
						g->process, g->sequence, have)
			      ? PULL_BROKEN : PULL_REFUSED;
			image_unref(a, img);
			break;
		}
		enum pull_sent sent = pull_send(a, peer, who, request, g, p, img);
		image_unref(a, img);
		if (sent != SENT_GONE) {
			res = sent == SENT_OK ? PULL_SENT
			      : sent == SENT_REFUSED || sent == SENT_GONE_REFUSED ? PULL_REFUSED
			      : PULL_BROKEN;
			superseded = sent == SENT_GONE_REFUSED || sent == SENT_GONE_BROKEN;
			break;
		}
	}
	proc_unref(a, p);
	return superseded ? res : counted(res); /* (a superseded one was counted) */
}
