/*
 * pull.c - the pull service (pull.h): a PULL is served from the image the
 * agent holds (captured now if the managers asked for a newer one), in an
 * encoding held until it is sent, so another PULL or a capture never
 * changes what this one streams.
 */
#include "pull.h"

#include <inttypes.h>

#include "capture.h"
#include "log/log.h"
#include "proc.h"
#include "rtcms_error.h"

/* The image of p a PULL for sequence seq (0: the newest) gets, with a
 * reference, or NULL; *have is the newest sequence held. */
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

/* The CHUNKs of encoding e (its bytes: the delta's, or the full image's)
 * and GET_END, as the replies out sends. 0 or the send's error. */
static int send_chunks(const struct stream_out *out, const struct image *img,
		       const struct encoding *e)
{
	const uint8_t *bytes = e->bytes && e->base ? e->bytes : img->data;
	int rc = stream_send_chunks(out, &e->chunks, bytes);

	return rc ? rc : stream_send_end(out, PROTO_GET_END, e->chunks.count);
}

/* GET_META, then (unless only the metadata was asked for) the stream of
 * the encoding for g's base. */
static enum pull_result pull_send(struct agent *a, const struct agent_peer *peer,
				  const char *who, uint32_t request, const struct proto_get *g,
				  struct aproc *p, struct image *img)
{
	union proto_msg m;
	/* the full image, or the changes since the base the manager holds;
	 * held until it is sent (another PULL's base gets another delta) */
	struct encoding *e = g->meta_only ? NULL : image_encoding(img, g->base);
	if (!g->meta_only && !e)
		return peer_reply_errorf(peer, request, RTCMS_ENOMEM, "no memory to encode %s",
					 g->process) ? PULL_BROKEN : PULL_REFUSED;
	struct stream_out out = peer_out(peer, request);
	image_meta(a, p, img, e, &m.meta);
	int rc = stream_out_send(&out, PROTO_GET_META, !g->meta_only, &m);
	if (g->meta_only)
		return rc ? PULL_BROKEN : PULL_SENT;
	if (rc == 0)
		rc = send_chunks(&out, img, e);
	log_debug("[%s] PULL %s seq %" PRIu64 " %s %" PRIu64 " (%" PRIu64 " bytes): %s", who,
		  p->id, img->sequence, e->base ? "delta against" : "full, asked base", g->base,
		  e->chunks.size, rc ? rtcms_strerror(rc) : "sent");
	if (rc == 0) {
		uv_mutex_lock(&a->lock);
		img->pulled = true;
		uv_mutex_unlock(&a->lock);
	}
	image_encoding_done(img, e);
	return rc ? PULL_BROKEN : PULL_SENT;
}

enum pull_result pull_serve(struct agent *a, const struct agent_peer *peer, const char *who,
			    uint32_t request, const struct proto_get *g)
{
	enum pull_result res;
	uint64_t have;

	struct aproc *p = proc_find_live(a, g->process);
	if (!p)
		p = proc_find_state(a, g->process, AP_FROZEN);
	if (!p)
		return peer_reply_errorf(peer, request, RTCMS_ENOENT, "no program %s on this node",
					 g->process) ? PULL_BROKEN : PULL_REFUSED;
	struct image *img = pull_image(a, p, g->sequence, &have);
	if (!img) {
		res = peer_reply_errorf(peer, request, RTCMS_ENOENT, "%s: checkpoint %" PRIu64
					" is not held here (latest %" PRIu64 ")", g->process,
					g->sequence, have) ? PULL_BROKEN : PULL_REFUSED;
		goto out_proc;
	}
	res = pull_send(a, peer, who, request, g, p, img);
	image_unref(a, img);
out_proc:
	proc_unref(a, p);
	return res;
}
