/*
 * capture.h - a program's checkpoints as the agent holds them: the
 * capture of the committed slot of its area into an image (where its data
 * is, the block versions, the changed blocks hashed), and the encodings a
 * PULL streams (the full image or a delta against the manager's base,
 * with chunk hashes), read from the area as they are sent.
 * Below the handlers; uses the process table (proc.h).
 */
#ifndef RTCMS_AGENT_CAPTURE_H
#define RTCMS_AGENT_CAPTURE_H

#include <stdbool.h>
#include <stdint.h>

#include "agent_int.h"

/*
 * Capture p's committed checkpoint if it is newer than the last capture
 * (p->img, replaced): its description and block versions, and the hashes
 * of the blocks changed since the last capture, read from the area (or,
 * with p->copy_full, copied into a private copy first). Returns 0 and, if
 * out is not NULL, a new reference to the newest image in *out (NULL
 * while nothing is committed yet: not a failure; without out, a
 * program with a private copy that a PULL holds is not captured until
 * it is given back); or RTCMS_ENOMEM,
 * RTCMS_EAGAIN (the program rewrote the slot during every attempt) or
 * the area's errors. One capture of p at a time (p->cap_lock); call
 * without agent.lock.
 */
int capture_take(struct agent *a, struct aproc *p, struct image **out);

/* The program rewrote img's slot while what (a capture, a full image's
 * PULL) read it, slower than its checkpoints: p's captures keep a
 * private copy of the full image from now on (logged once). Takes
 * agent.lock. */
void copy_full_from_now(struct agent *a, struct aproc *p, const struct image *img,
			const char *what);

/* Drop a reference to img (takes agent.lock); the last frees it. NULL is
 * a no-op. */
void image_unref(struct agent *a, struct image *img);
/* Free an image nobody references. image_free(NULL) is a no-op. */
void image_free(struct image *img);

/*
 * The encoding of img a PULL asked for: a delta against base when base is
 * a sequence below the image's and the delta carries at most half of the
 * blocks, else the full image. Returns 0 and *out held for the caller: it
 * does not change until image_encoding_done(); or RTCMS_ENOMEM, or
 * RTCMS_ENOENT when building it (its chunk ids) found the image gone
 * from the area. The caller holds a reference to img meanwhile.
 */
int image_encoding(struct image *img, uint64_t base, struct encoding **out);
/* Give back an encoding image_encoding() returned. NULL is a no-op. */
void image_encoding_done(struct image *img, struct encoding *e);

/*
 * Reading an encoding's bytes where the image's data is: the private copy,
 * or the area's slot, each read checked to be still the image's (the
 * program rewrites a slot two commits after it committed it). image_read
 * is a stream_read_fn over the encoding's bytes with a struct
 * image_reader as its context: 0, or RTCMS_ENOENT when the slot was
 * rewritten (gone is set: the bytes are not the image's, and nothing read
 * since the previous check may be sent as the image).
 */
struct image_reader {
	const struct image *img;
	const struct encoding *e;
	bool gone;
};
int image_read(void *ctx, uint64_t off, uint8_t *buf, size_t len);

/* Whether img's data is still where it says (a private copy always). */
bool image_current(const struct image *img);

/* The metadata of p's image img as sent in encoding e (NULL: no data
 * follows) into m; m->spec borrows p's spec (hold p meanwhile). */
void image_meta(const struct agent *a, const struct aproc *p, const struct image *img,
		const struct encoding *e, struct proto_ckpt_meta *m);

#endif
