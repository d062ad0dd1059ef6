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
#include "rtcms_error.h"

static void encoding_free(struct encoding *e)
{
	free(e->bytes);
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
	free(img->data);
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
	m->spec = p->spec;
	m->spec_len = p->spec_len;
}

/* Whether a delta of img against base pays: base below the image's
 * sequence, at most half of the blocks changed since (*changed of them),
 * whole blocks (*regions regions). */
static bool delta_pays(const struct image *img, uint64_t base, uint32_t *regions,
		       size_t *changed)
{
	struct area_region r[AREA_MAX_REGIONS];
	const uint8_t *d;
	uint64_t seq, dsize;
	size_t k = 0;

	if (!base || base >= img->sequence)
		return false;
	for (size_t b = 0; b < img->blocks; b++)
		k += img->versions[b] > base;
	*changed = k;
	return k <= img->blocks / 2 &&
	       image_parse(img->data, img->size, &seq, r, regions, &d, &dsize) == 0 &&
	       dsize % AREA_BLOCK == 0;
}

/* Build the delta of img against base (carrying changed blocks of regions
 * regions) into e, which nobody streams. 0 or RTCMS_ENOMEM (or another
 * error of delta_build). */
static int build_delta(struct image *img, struct encoding *e, uint64_t base,
		       uint32_t regions, size_t changed)
{
	size_t need = delta_size(regions, (uint32_t)changed);
	e->ready = false;
	if (need > e->cap) {
		free(e->bytes);
		e->bytes = malloc(need);
		e->cap = e->bytes ? need : 0;
	}
	int64_t len = e->bytes ? delta_build(img->data, img->size, img->versions, base,
					     e->bytes, e->cap)
			       : RTCMS_ENOMEM;
	if (len < 0)
		return (int)len;
	e->chunks.key = img->key;
	int rc = stream_chunks_of(&e->chunks, e->bytes, (uint64_t)len, PROTO_MAX_CHUNK);
	if (rc)
		return rc;
	e->base = base;
	e->ready = true;
	return 0;
}

/* With img.lock held: the delta against base, built if need be into one
 * nobody streams (a new one when every delta is in use). NULL on failure. */
static struct encoding *delta_for(struct image *img, uint64_t base, uint32_t regions,
				  size_t changed)
{
	struct encoding *idle = NULL;
	for (struct encoding *e = img->deltas; e; e = e->next) {
		if (e->ready && e->base == base)
			return e;
		if (!e->users && (!idle || !e->ready))
			idle = e;
	}
	if (!idle) {
		idle = calloc(1, sizeof(*idle));
		if (!idle)
			return NULL;
		idle->next = img->deltas;
		img->deltas = idle;
	}
	return build_delta(img, idle, base, regions, changed) == 0 ? idle : NULL;
}

struct encoding *image_encoding(struct image *img, uint64_t base)
{
	struct encoding *e = NULL;
	uint32_t regions;
	size_t changed;
	uv_mutex_lock(&img->lock);
	if (delta_pays(img, base, &regions, &changed)) {
		e = delta_for(img, base, regions, changed);
	} else { /* the full image: built once, never changed after */
		e = &img->full;
		e->chunks.key = img->key;
		if (!e->ready &&
		    stream_chunks_of(&e->chunks, img->data, img->size, PROTO_MAX_CHUNK) == 0) {
			e->base = 0;
			e->ready = true;
		}
		if (!e->ready)
			e = NULL;
	}
	if (e)
		e->users++;
	uv_mutex_unlock(&img->lock);
	return e;
}

void image_encoding_done(struct image *img, struct encoding *e)
{
	if (!e)
		return;
	uv_mutex_lock(&img->lock);
	e->users--;
	uv_mutex_unlock(&img->lock);
}

/* Make room in img for an image of cap bytes and blocks data blocks. */
static int image_reserve(struct image *img, size_t cap, size_t blocks)
{
	if (img->cap < cap) {
		free(img->data);
		img->data = malloc(cap);
		img->cap = img->data ? cap : 0;
		if (!img->data)
			return RTCMS_ENOMEM;
		img->size = 0; /* nothing to build on */
	}
	if (img->block_cap < blocks) {
		free(img->versions);
		free(img->block_hash);
		img->versions = malloc(blocks * sizeof(uint64_t));
		img->block_hash = malloc(blocks * PROTO_HASH_SIZE);
		img->block_cap = img->versions && img->block_hash ? blocks : 0;
		if (!img->block_cap)
			return RTCMS_ENOMEM;
		img->size = 0;
	}
	return 0;
}

/* A new image to capture into, built on cur where possible: cur's memory
 * when nobody else reads it, else a copy of it (a memcpy is far cheaper
 * than hashing the blocks again). */
static struct image *image_next(struct image *cur, bool reuse, size_t cap, size_t blocks)
{
	struct image *img = reuse ? cur : calloc(1, sizeof(*img));
	if (!img)
		return NULL;
	if (!reuse) {
		uv_mutex_init(&img->lock);
		if (image_reserve(img, cap, blocks) != 0) {
			image_free(img);
			return NULL;
		}
		if (cur && cur->size && cur->size <= cap && cur->blocks <= blocks) {
			memcpy(img->data, cur->data, cur->size);
			memcpy(img->versions, cur->versions, cur->blocks * sizeof(uint64_t));
			memcpy(img->block_hash, cur->block_hash, cur->blocks * PROTO_HASH_SIZE);
			img->size = cur->size;
			img->sequence = cur->sequence;
			img->blocks = cur->blocks;
		}
	} else if (image_reserve(img, cap, blocks) != 0) {
		return NULL;
	}
	/* nobody streams them (nobody else references img): stale now */
	img->full.ready = false;
	for (struct encoding *e = img->deltas; e; e = e->next)
		e->ready = false;
	return img;
}

/* Copy into img the blocks of p's committed checkpoint changed since the
 * image img holds, and hash only those (the state hash reuses the other
 * blocks' hashes). 0 or the errors of image_capture_since()/image_parse(). */
static int capture_into(struct aproc *p, struct image *img)
{
	uint64_t since = img->size ? img->sequence : 0;
	int64_t len = image_capture_since(p->area, &since, img->data, img->cap, img->versions,
					  img->block_cap);
	if (len < 0)
		return (int)len;
	img->size = (size_t)len;
	struct area_region regs[AREA_MAX_REGIONS];
	uint32_t count;
	const uint8_t *data;
	uint64_t dsize;
	int rc = image_parse(img->data, img->size, &img->sequence, regs, &count, &data, &dsize);
	if (rc)
		return rc;
	img->blocks = area_block_round(dsize) / AREA_BLOCK;
	img->copied = 0;
	for (size_t b = 0; b < img->blocks; b++) {
		if (since && img->versions[b] <= since)
			continue;
		size_t off = b * AREA_BLOCK;
		size_t n = dsize - off < AREA_BLOCK ? (size_t)(dsize - off) : AREA_BLOCK;
		state_block_hash(data + off, n, img->block_hash[b]);
		img->copied += n;
	}
	state_hash_blocks(img->data, (size_t)(data - img->data),
			  (const uint8_t (*)[PROTO_HASH_SIZE])img->block_hash, img->blocks,
			  img->state_hash);
	img->created_ms = agent_now_ms();
	img->captured_ms = agent_mono_ms();
	img->pulled = false;
	log_debug("[program %s] captured checkpoint %" PRIu64 ": %" PRIu64 " of %zu bytes "
		  "copied and hashed (built on %" PRIu64 ")", p->id, img->sequence, img->copied,
		  img->size, since);
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
	if (reuse)
		p->img = NULL;
	else if (cur)
		cur->refs++; /* held while we copy from it */
	uv_mutex_unlock(&a->lock);

	size_t cap = image_size(AREA_MAX_REGIONS, area_data_capacity(p->area));
	size_t blocks = area_data_capacity(p->area) / AREA_BLOCK;
	img = image_next(cur, reuse, cap, blocks);
	if (!reuse)
		image_unref(a, cur);
	if (!img) {
		if (reuse)
			image_free(cur);
		rc = RTCMS_ENOMEM;
		goto out_unlock;
	}
	img->key = a->seal_key;
	rc = capture_into(p, img);
	if (rc)
		goto out_free;
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
