/*
 * capture.h - a program's checkpoints as the agent holds them: the
 * capture of the committed slot of its area into an image (the changed
 * blocks copied and hashed), and the encodings a PULL streams (the full
 * image or a delta against the manager's base, with chunk hashes).
 * Below the handlers; uses the process table (proc.h).
 */
#ifndef RTCMS_AGENT_CAPTURE_H
#define RTCMS_AGENT_CAPTURE_H

#include <stdint.h>

#include "agent_int.h"

/*
 * Capture p's committed checkpoint if it is newer than the last capture
 * (p->img, replaced). Returns 0 and, if out is not NULL, a new reference
 * to the newest image in *out (NULL while nothing is committed yet: not a
 * failure); or RTCMS_ENOMEM or the errors of image_capture_since(). One
 * capture of p at a time (p->cap_lock); call without agent.lock.
 */
int capture_take(struct agent *a, struct aproc *p, struct image **out);

/* Drop a reference to img (takes agent.lock); the last frees it. NULL is
 * a no-op. */
void image_unref(struct agent *a, struct image *img);
/* Free an image nobody references. image_free(NULL) is a no-op. */
void image_free(struct image *img);

/*
 * The encoding of img a PULL asked for: a delta against base when base is
 * a sequence below the image's and the delta carries at most half of the
 * blocks, else the full image. Returns it held for the caller: it does not
 * change until image_encoding_done(); or NULL (RTCMS_ENOMEM). The caller
 * holds a reference to img meanwhile.
 */
struct encoding *image_encoding(struct image *img, uint64_t base);
/* Give back an encoding image_encoding() returned. NULL is a no-op. */
void image_encoding_done(struct image *img, struct encoding *e);

/* The metadata of p's image img as sent in encoding e (NULL: no data
 * follows) into m; m->spec borrows p's spec (hold p meanwhile). */
void image_meta(const struct agent *a, const struct aproc *p, const struct image *img,
		const struct encoding *e, struct proto_ckpt_meta *m);

#endif
