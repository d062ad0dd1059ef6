/*
 * capture.c - a program's captured checkpoints (capture.h): the capture
 * of its area's committed slot into an image, and the image's encodings
 * (the full image, deltas) cut into chunks for PULLs (the stream
 * module's chunker).
 */
#include "capture.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "area/area.h"
#include "area/delta.h"
#include "area/image.h"
#include "log/log.h"
#include "proc.h"
#include "rtcms_error.h"
#include "stats.h"
#include "util/bytes.h"

static void encoding_free(struct encoding *e)
{
	free(e->head);
	stream_chunks_clear(&e->chunks);
}

void image_free(struct image *img)
{
	if (!img)
		return;
	encoding_free(&img->full);
	while (img->deltas) {
		struct encoding *e = img->deltas;
		img->deltas = e->next;
		encoding_free(e);
		free(e);
	}
	uv_mutex_destroy(&img->lock);
	free(img->copy);
	free(img->versions);
	free(img->block_hash);
	free(img);
}

void image_unref(struct agent *a, struct image *img)
{
	if (!img)
		return;
	uv_mutex_lock(&a->lock);
	bool last = --img->refs == 0;
	uv_mutex_unlock(&a->lock);
	if (last)
		image_free(img);
}

/* The metadata of img as sent in encoding e (NULL: no data follows). */
void image_meta(const struct agent *a, const struct aproc *p, const struct image *img,
		const struct encoding *e, struct proto_ckpt_meta *m)
{
	memset(m, 0, sizeof(*m));
	snprintf(m->process, sizeof(m->process), "%s", p->id);
	m->incarnation = p->incarnation;
	m->sequence = img->sequence;
	m->node = a->node;
	m->size = img->size;
	m->created_ms = img->created_ms;
	m->chunk_count = (uint32_t)((img->size + PROTO_MAX_CHUNK - 1) / PROTO_MAX_CHUNK);
	if (e)
		stream_chunks_meta(&e->chunks, m);
	m->base = e ? e->base : 0;
	m->full_size = img->size;
	memcpy(m->state_hash, img->state_hash, PROTO_HASH_SIZE);
	proc_ckpt_spec(p, &m->spec, &m->spec_len);
}

bool image_current(const struct image *img)
{
	return img->copy || area_snap_valid(img->area, &img->snap);
}

/* len bytes of img's data at off into buf: from the private copy, or
 * from the area, checked to be still the image's. 0 or RTCMS_ENOENT (the
 * slot was rewritten: the image is gone). */
static int data_read(const struct image *img, uint64_t off, uint8_t *buf, size_t len)
{
	if (img->copy) {
		memcpy(buf, img->copy + img->head_len + off, len);
		return 0;
	}
	return area_snap_read(img->area, &img->snap, off, buf, len);
}

/* Bytes of a delta encoding: its head and block list, then the blocks. */
static int delta_read(const struct image *img, const struct encoding *e, uint64_t off,
		      uint8_t *buf, size_t len)
{
	const uint8_t *list = e->head + e->head_len - (size_t)e->count * 4;
	while (len > 0) {
		size_t n;
		int rc = 0;
		if (off < e->head_len) {
			n = e->head_len - off < len ? (size_t)(e->head_len - off) : len;
			memcpy(buf, e->head + off, n);
		} else {
			uint64_t i = (off - e->head_len) / AREA_BLOCK, in = (off - e->head_len) % AREA_BLOCK;
			n = AREA_BLOCK - in < len ? (size_t)(AREA_BLOCK - in) : len;
			uint64_t b = get_be32(list + i * 4);
			rc = data_read(img, b * AREA_BLOCK + in, buf, n);
		}
		if (rc)
			return rc;
		buf += n;
		off += n;
		len -= n;
	}
	return 0;
}

int image_read(void *ctx, uint64_t off, uint8_t *buf, size_t len)
{
	struct image_reader *r = ctx;
	const struct image *img = r->img;
	int rc = 0;

	if (r->e->base) {
		rc = delta_read(img, r->e, off, buf, len);
	} else if (img->copy) {
		memcpy(buf, img->copy + off, len);
	} else {
		size_t n = off < img->head_len ? img->head_len - (size_t)off : 0;
		n = n < len ? n : len;
		memcpy(buf, img->head + off, n);
		if (len > n)
			rc = data_read(img, off + n - img->head_len, buf + n, len - n);
	}
	if (rc == RTCMS_ENOENT)
		r->gone = true;
	return rc;
}

/* Whether a delta of img against base pays: base below the image's
 * sequence, at most half of the blocks changed since, whole blocks. */
static bool delta_pays(const struct image *img, uint64_t base)
{
	size_t k = 0;

	if (!base || base >= img->sequence || img->snap.data_size % AREA_BLOCK)
		return false;
	for (size_t b = 0; b < img->blocks; b++)
		k += img->versions[b] > base;
	return k <= img->blocks / 2;
}

/* Cut encoding e of img into chunks, reading its bytes (e->chunks.size
 * of them) from where the image's data is. 0, RTCMS_ENOENT (the image
 * is gone from the area) or RTCMS_ENOMEM. */
static int encoding_cut(const struct image *img, struct encoding *e, uint64_t size)
{
	struct image_reader r = { img, e, false };
	uint8_t *buf = malloc(PROTO_MAX_CHUNK);
	if (!buf)
		return RTCMS_ENOMEM;
	e->chunks.key = img->key;
	int rc = stream_chunks_read(&e->chunks, size, PROTO_MAX_CHUNK, image_read, &r, buf);
	free(buf);
	return rc;
}

/* Build the delta of img against base into e, which nobody streams: its
 * head and block list, then the chunk ids. 0, RTCMS_ENOMEM, RTCMS_ENOENT
 * (gone) or another error of delta_head. */
static int build_delta(struct image *img, struct encoding *e, uint64_t base)
{
	uint32_t k = 0;
	for (size_t b = 0; b < img->blocks; b++)
		k += img->versions[b] > base;
	size_t need = delta_size(img->snap.region_count, k) - (size_t)k * AREA_BLOCK;
	e->ready = false;
	if (need > e->cap) {
		free(e->head);
		e->head = malloc(need);
		e->cap = e->head ? need : 0;
	}
	int64_t len = e->head ? delta_head(img->head, img->head_len, img->size, img->versions,
					   base, e->head, e->cap)
			      : RTCMS_ENOMEM;
	if (len < 0)
		return (int)len;
	e->head_len = (size_t)len;
	e->count = k;
	e->base = base;
	int rc = encoding_cut(img, e, (uint64_t)len + (uint64_t)k * AREA_BLOCK);
	if (rc)
		return rc;
	e->ready = true;
	return 0;
}

/* With img.lock held: the delta against base, built if need be into one
 * nobody streams (a new one when every delta is in use). */
static int delta_for(struct image *img, uint64_t base, struct encoding **out)
{
	struct encoding *idle = NULL;
	for (struct encoding *e = img->deltas; e; e = e->next) {
		if (e->ready && e->base == base) {
			*out = e;
			return 0;
		}
		if (!e->users && (!idle || !e->ready))
			idle = e;
	}
	if (!idle) {
		idle = calloc(1, sizeof(*idle));
		if (!idle)
			return RTCMS_ENOMEM;
		idle->next = img->deltas;
		img->deltas = idle;
	}
	*out = idle;
	return build_delta(img, idle, base);
}

int image_encoding(struct image *img, uint64_t base, struct encoding **out)
{
	struct encoding *e = NULL;
	int rc = 0;
	uv_mutex_lock(&img->lock);
	if (delta_pays(img, base)) {
		rc = delta_for(img, base, &e);
	} else { /* the full image: built once, never changed after */
		e = &img->full;
		if (!e->ready) {
			e->base = 0;
			rc = encoding_cut(img, e, img->size);
			e->ready = rc == 0;
		}
	}
	if (rc == 0)
		e->users++;
	uv_mutex_unlock(&img->lock);
	*out = rc ? NULL : e;
	return rc;
}

void image_encoding_done(struct image *img, struct encoding *e)
{
	if (!e)
		return;
	uv_mutex_lock(&img->lock);
	e->users--;
	uv_mutex_unlock(&img->lock);
}

/* Make room in img for blocks data blocks and, with copy, a private
 * copy of a full image of cap bytes (else none). */
static int image_reserve(struct image *img, bool copy, size_t cap, size_t blocks)
{
	if (!copy) {
		free(img->copy);
		img->copy = NULL;
		img->copy_cap = 0;
	} else if (img->copy_cap < cap) {
		free(img->copy);
		img->size = 0; /* no copy to build on */
		img->copy = malloc(cap);
		img->copy_cap = img->copy ? cap : 0;
		if (!img->copy)
			return RTCMS_ENOMEM;
	}
	if (img->block_cap < blocks) {
		free(img->versions);
		free(img->block_hash);
		img->versions = malloc(blocks * sizeof(uint64_t));
		img->block_hash = malloc(blocks * STATE_BLOCK_HASH_SIZE);
		img->block_cap = img->versions && img->block_hash ? blocks : 0;
		if (!img->block_cap)
			return RTCMS_ENOMEM;
		img->blocks = 0; /* nothing to build on */
	}
	return 0;
}

/* A new image to capture into, built on cur where possible: cur's memory
 * when nobody else reads it, else a copy of its block versions and
 * hashes (far cheaper than hashing the blocks again) and of its private
 * copy if it has one. */
static struct image *image_next(struct image *cur, bool reuse, bool copy, size_t cap,
				size_t blocks)
{
	struct image *img = reuse ? cur : calloc(1, sizeof(*img));
	if (!img)
		return NULL;
	if (!reuse) {
		uv_mutex_init(&img->lock);
		if (image_reserve(img, copy, cap, blocks) != 0) {
			image_free(img);
			return NULL;
		}
		if (cur && cur->blocks && cur->blocks <= blocks) {
			memcpy(img->versions, cur->versions, cur->blocks * sizeof(uint64_t));
			memcpy(img->block_hash, cur->block_hash, cur->blocks * STATE_BLOCK_HASH_SIZE);
			img->blocks = cur->blocks;
			img->sequence = cur->sequence;
			img->snap = cur->snap;
			if (copy && cur->copy && cur->size <= cap) {
				memcpy(img->copy, cur->copy, cur->size);
				img->size = cur->size;
			}
		}
	} else if (image_reserve(img, copy, cap, blocks) != 0) {
		return NULL;
	}
	/* nobody streams them (nobody else references img): stale now */
	img->full.ready = false;
	for (struct encoding *e = img->deltas; e; e = e->next)
		e->ready = false;
	return img;
}

/* Whether snap has the layout (region table, data size) of base's. */
static bool same_layout(const struct area_snap *snap, const struct area_snap *base)
{
	return snap->region_count == base->region_count && snap->data_size == base->data_size &&
	       memcmp(snap->regions, base->regions,
		      snap->region_count * sizeof(snap->regions[0])) == 0;
}

/* The copy path: the committed checkpoint into img's private copy (only
 * the blocks changed since the copy it holds), described into *snap. */
static int copy_committed(struct aproc *p, struct image *img, struct area_snap *snap)
{
	const uint8_t *data;
	uint64_t since = img->copy && img->size ? img->sequence : 0;
	int64_t len = image_capture_since(p->area, &since, img->copy, img->copy_cap,
					  img->versions, img->block_cap);
	if (len < 0)
		return (int)len;
	memset(snap, 0, sizeof(*snap));
	return image_parse(img->copy, (size_t)len, &snap->sequence, snap->regions,
			   &snap->region_count, &data, &snap->data_size);
}

/* Hash the blocks of the checkpoint snap describes whose version is above
 * since (all with since 0), reading them from the private copy or from
 * the area. 0, or RTCMS_ENOENT: the slot was rewritten meanwhile (the
 * hashes of those blocks are garbage; a newer checkpoint has them above
 * since too). */
static int hash_blocks(struct image *img, const struct area_snap *snap, uint64_t since)
{
	uint8_t block[AREA_BLOCK];
	uint64_t d = snap->data_size;

	img->copied = 0;
	for (size_t b = 0; b < img->blocks; b++) {
		if (since && img->versions[b] <= since)
			continue;
		size_t off = b * AREA_BLOCK;
		size_t n = d - off < AREA_BLOCK ? (size_t)(d - off) : AREA_BLOCK;
		int rc = data_read(img, off, block, n);
		if (rc)
			return rc;
		state_block_hash(block, n, img->block_hash[b]);
		img->copied += n;
	}
	return 0;
}

#define CAPTURE_ATTEMPTS 100
#define COPY_AFTER 3               /* attempts torn in place before the copy */

void copy_full_from_now(struct agent *a, struct aproc *p, const struct image *img,
			const char *what)
{
	uv_mutex_lock(&a->lock);
	bool first = !p->copy_full;
	p->copy_full = true;
	uv_mutex_unlock(&a->lock);
	if (first)
		log_prog(LOG_INFO, p->id, proc_incarnation(p), img->sequence,
			 "[program %s] it rewrote its area faster than the agent's %s read it "
			 "(after checkpoint %" PRIu64 "): its captures keep a private copy from "
			 "now on", p->id, what, img->sequence);
}

/* Capture p's committed checkpoint into img, built on the image img
 * holds: only the blocks changed since are hashed (the state hash reuses
 * the other blocks' hashes). 0 or the errors of area_snap_take(),
 * image_capture_since() or image_parse() (RTCMS_EAGAIN: the program
 * rewrote the slot during every attempt). */
static int capture_into(struct agent *a, struct aproc *p, struct image *img)
{
	struct area_snap snap, base = img->snap;
	size_t base_blocks = img->blocks;
	uint64_t since = 0;
	int rc = RTCMS_EAGAIN;

	img->area = p->area;
	for (int attempt = 0; attempt < CAPTURE_ATTEMPTS && rc == RTCMS_EAGAIN; attempt++) {
		if (attempt == COPY_AFTER && !img->copy) {
			/* hashing in place is slower than the program: copy first */
			rc = image_reserve(img, true, image_size(AREA_MAX_REGIONS,
								 area_data_capacity(p->area)),
					   img->block_cap);
			if (rc)
				break;
			copy_full_from_now(a, p, img, "capture");
		}
		rc = img->copy ? copy_committed(p, img, &snap)
			       : area_snap_take(p->area, &snap, img->versions, img->block_cap);
		if (rc)
			continue;
		since = base_blocks && same_layout(&snap, &base) ? img->sequence : 0;
		img->blocks = area_block_round(snap.data_size) / AREA_BLOCK;
		img->head_len = image_size(snap.region_count, 0);
		img->snap = snap; /* where hash_blocks reads */
		rc = hash_blocks(img, &snap, since);
		if (rc == RTCMS_ENOENT)
			rc = RTCMS_EAGAIN; /* rewritten meanwhile: the newer one */
	}
	if (rc) {
		img->blocks = 0; /* its hashes may be garbage: nothing to build on */
		return rc;
	}
	img->snap = snap;
	img->sequence = snap.sequence;
	img->head_len = image_head(img->head, snap.sequence, snap.regions, snap.region_count,
				   snap.data_size);
	img->size = image_size(snap.region_count, snap.data_size);
	state_hash_blocks(img->head, img->head_len,
			  (const uint8_t (*)[STATE_BLOCK_HASH_SIZE])img->block_hash, img->blocks,
			  img->state_hash);
	img->created_ms = agent_now_ms();
	img->captured_ms = agent_mono_ms();
	img->pulled = false;
	img->gone = false;
	log_prog(LOG_DEBUG, p->id, proc_incarnation(p), img->sequence,
		 "[program %s] captured checkpoint %" PRIu64 ": %" PRIu64 " of %zu bytes "
		 "hashed (built on %" PRIu64 ")%s", p->id, img->sequence, img->copied,
		 img->size, since, img->copy ? ", copied" : "");
	return 0;
}

int capture_take(struct agent *a, struct aproc *p, struct image **out)
{
	struct image *img = NULL;
	int rc = 0;

	if (out)
		*out = NULL;
	uv_mutex_lock(&p->cap_lock);
	uint64_t seq = area_committed_sequence(p->area);
	uv_mutex_lock(&a->lock);
	struct image *cur = p->img;
	if (cur && cur->sequence == seq) {
		if (out) {
			cur->refs++;
			*out = cur;
		}
		uv_mutex_unlock(&a->lock);
		goto out_unlock;
	}
	if (seq == 0) { /* nothing committed yet: no image, not a failure */
		uv_mutex_unlock(&a->lock);
		goto out_unlock;
	}
	bool reuse = cur && cur->refs == 1; /* nobody reads it: reuse its memory */
	bool copy = p->copy_full;
	if (copy && !reuse && cur && !out) {
		/* a PULL streams the private copy: a second one would cost a
		 * state more; the poll captures once it is given back */
		uv_mutex_unlock(&a->lock);
		goto out_unlock;
	}
	if (reuse)
		p->img = NULL;
	else if (cur)
		cur->refs++; /* held while we copy from it */
	uv_mutex_unlock(&a->lock);

	size_t cap = image_size(AREA_MAX_REGIONS, area_data_capacity(p->area));
	size_t blocks = area_data_capacity(p->area) / AREA_BLOCK;
	img = image_next(cur, reuse, copy, cap, blocks);
	if (!reuse)
		image_unref(a, cur);
	if (!img) {
		if (reuse)
			image_free(cur);
		rc = RTCMS_ENOMEM;
		goto out_unlock;
	}
	img->key = a->seal_key;
	uint64_t t0 = uv_hrtime();
	rc = capture_into(a, p, img);
	metric_counter_inc(&agent_stats.captures[rc ? ACAPTURE_FAILED : ACAPTURE_OK]);
	if (rc)
		goto out_free;
	metric_histogram_observe_ns(&agent_stats.capture_seconds, uv_hrtime() - t0);
	metric_counter_add(&agent_stats.hashed_bytes, img->copied);
	uv_mutex_lock(&a->lock);
	cur = p->img;
	p->img = img;
	img->refs = out ? 2 : 1;
	uv_mutex_unlock(&a->lock);
	if (out)
		*out = img;
	image_unref(a, cur);
	goto out_unlock;
out_free:
	image_free(img);
out_unlock:
	uv_mutex_unlock(&p->cap_lock);
	return rc;
}
