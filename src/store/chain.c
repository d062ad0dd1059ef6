/*
 * chain.c - delta chains: the depth a delta gets, and a GET's assembly of
 * a delta's full image from its chain (the full image at its root, then
 * every delta in order, checked against the stored state hash). The image
 * format is area/delta.h's; this file never reads image bytes itself.
 */
#include "store_int.h"

#include <inttypes.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "area/delta.h"
#include "log/log.h"
#include "rtcms_error.h"

/* One checkpoint of a chain being assembled. */
struct chain_link {
	struct ckpt_row row;
	struct chunk_ref *chunks;
	uint32_t pinned;
};

/* links[0] is the top (a delta), links[n - 1] the full image at its root,
 * each link a delta against the next. */
struct chain {
	struct chain_link *links;
	size_t n, cap;
};

int chain_delta_depth(struct catalog *cat, const char *process, uint64_t inc,
		      uint64_t base, uint32_t *depth)
{
	uint32_t d = 0;
	bool found;
	int rc = catalog_ckpt_lookup(cat, process, inc, base, NULL, NULL, &d, NULL, &found);
	if (rc < 0)
		return rc;
	if (!found)
		return RTCMS_ENOENT;
	if (d >= STORE_MAX_DEPTH)
		return RTCMS_ETOOBIG;
	*depth = d + 1;
	return 0;
}

/*
 * Check that a stored chunk list tiles [0, size) with chunks of
 * 1..PROTO_MAX_CHUNK bytes and gives the stored image hash. 0 or
 * RTCMS_ECORRUPT.
 */
static int chunks_consistent(const struct chain_link *l)
{
	struct proto_image_hash ih;
	uint8_t h[PROTO_HASH_SIZE];

	proto_image_hash_init(&ih, l->row.size);
	for (uint32_t i = 0; i < l->row.chunk_count; i++) {
		const struct chunk_ref *c = &l->chunks[i];
		if (c->len == 0 || c->len > PROTO_MAX_CHUNK ||
		    proto_image_hash_update(&ih, c->offset, c->len, c->hash) != 0)
			return RTCMS_ECORRUPT;
	}
	if (proto_image_hash_final(&ih, h) != 0 ||
	    sodium_memcmp(h, l->row.hash, PROTO_HASH_SIZE) != 0)
		return RTCMS_ECORRUPT;
	return 0;
}

/* Read a checkpoint's whole image into buf (>= its size), chunk by chunk. */
static int image_read(struct store *st, const struct chain_link *l, uint8_t *buf,
		      uint32_t *repaired)
{
	int rc = chunks_consistent(l);
	for (uint32_t i = 0; i < l->row.chunk_count && rc == 0; i++)
		rc = repair_read_chunk(st, &l->chunks[i], buf + l->chunks[i].offset,
				       repaired);
	return rc;
}

/* The buffers an assembly needs: the largest full image along the chain
 * (it may shrink) and its largest delta. 0 or RTCMS_ETOOBIG / ENOMEM. */
static int assembly_alloc(struct store *st, const char *process, const struct chain *c,
			  uint8_t **img, uint64_t *cap, uint8_t **delta)
{
	const struct ckpt_row *top = &c->links[0].row;
	uint64_t dcap = 0;

	*cap = c->links[c->n - 1].row.size;
	for (size_t i = 0; i + 1 < c->n; i++) {
		const struct ckpt_row *r = &c->links[i].row;
		*cap = r->full_size > *cap ? r->full_size : *cap;
		dcap = r->size > dcap ? r->size : dcap;
	}
	if (*cap > STORE_MAX_FULL || dcap > STORE_MAX_FULL) {
		store_log(st, LOG_ERROR, "GET %s %" PRIu64 "/%" PRIu64 ": its chain needs "
			  "%" PRIu64 " bytes, over the cap of %" PRIu64, process,
			  top->inc, top->seq, *cap + dcap, (uint64_t)STORE_MAX_FULL);
		return RTCMS_ETOOBIG;
	}
	*img = malloc(*cap ? (size_t)*cap : 1);
	*delta = malloc(dcap ? (size_t)dcap : 1);
	if (!*img || !*delta) {
		store_log(st, LOG_ERROR, "GET %s %" PRIu64 "/%" PRIu64 ": out of memory "
			  "for %" PRIu64 " bytes to assemble it", process, top->inc,
			  top->seq, *cap + dcap);
		return RTCMS_ENOMEM;
	}
	return 0;
}

/* Read the root and apply the deltas upwards into img (cap bytes); *have
 * gets the image's size. On failure *why says what failed at *at. */
static int assembly_run(struct store *st, const struct chain *c, uint8_t *img,
			size_t cap, uint8_t *delta, size_t *have, uint32_t *repaired,
			const char **why, uint64_t *at)
{
	const struct ckpt_row *root = &c->links[c->n - 1].row;
	uint64_t seq;

	*at = root->seq;
	if (image_read(st, &c->links[c->n - 1], img, repaired) != 0) {
		*why = "its full image cannot be read";
		return RTCMS_ECORRUPT;
	}
	*have = (size_t)root->size;
	if (image_sequence(img, *have, &seq) != 0 || seq != root->seq) {
		*why = "the root of its chain is not a full image of its sequence";
		return RTCMS_ECORRUPT;
	}
	for (size_t i = c->n - 1; i-- > 0;) {
		const struct ckpt_row *d = &c->links[i].row;
		*at = d->seq;
		if (image_read(st, &c->links[i], delta, repaired) != 0) {
			*why = "a delta of its chain cannot be read";
			return RTCMS_ECORRUPT;
		}
		if (delta_apply(img, have, cap, delta, (size_t)d->size) != 0 ||
		    image_sequence(img, *have, &seq) != 0 || seq != d->seq ||
		    *have != d->full_size) {
			*why = "a delta of its chain does not apply";
			return RTCMS_ECORRUPT;
		}
	}
	*at = c->links[0].row.seq;
	return 0;
}

int chain_assemble(struct store *st, const char *process, const struct chain *c,
		   uint8_t **out, size_t *len, uint32_t *repaired)
{
	const struct ckpt_row *top = &c->links[0].row, *root = &c->links[c->n - 1].row;
	uint8_t *img = NULL, *delta = NULL;
	const char *why = NULL;
	uint64_t cap, at = root->seq;  /* where it went wrong */
	size_t have = 0;
	int rc;

	*out = NULL;
	rc = assembly_alloc(st, process, c, &img, &cap, &delta);
	if (rc)
		goto out;
	rc = assembly_run(st, c, img, (size_t)cap, delta, &have, repaired, &why, &at);
	if (rc)
		goto out;
	if (!sodium_is_zero(top->state_hash, PROTO_HASH_SIZE)) {
		uint8_t h[STATE_HASH_SIZE];
		if (state_hash(img, have, h) != 0 ||
		    sodium_memcmp(h, top->state_hash, STATE_HASH_SIZE) != 0) {
			rc = RTCMS_ECORRUPT;
			why = "the assembled image does not have the stored state hash";
			goto out;
		}
	}
	*out = img;
	*len = have;
	img = NULL;
	store_log(st, LOG_DEBUG, "GET %s %" PRIu64 "/%" PRIu64 ": assembled %zu bytes "
		  "from full image %" PRIu64 " and %zu delta(s)", process, top->inc,
		  top->seq, have, root->seq, c->n - 1);
out:
	if (why)
		store_log(st, LOG_ERROR, "GET %s %" PRIu64 "/%" PRIu64 " (a delta, depth "
			  "%u, chain from full image %" PRIu64 "): %s (at sequence %" PRIu64
			  "): refused", process, top->inc, top->seq, top->depth,
			  root->seq, why, at);
	free(delta);
	free(img);
	return rc;
}

/* Room for one more link (the recorded depth was short of the real
 * chain). 0 or RTCMS_ENOMEM. */
static int chain_grow(struct chain *c)
{
	if (c->n < c->cap)
		return 0;
	size_t ncap = c->cap * 2 < STORE_MAX_DEPTH + 1 ? c->cap * 2 : STORE_MAX_DEPTH + 1;
	void *p = realloc(c->links, ncap * sizeof(*c->links));
	if (!p)
		return RTCMS_ENOMEM;
	c->links = p;
	memset(c->links + c->cap, 0, (ncap - c->cap) * sizeof(*c->links));
	c->cap = ncap;
	return 0;
}

/* The next link below l (its base): checks, then its row into l + 1. */
static int chain_next(struct store *st, struct catalog *cat, const char *process,
		      const struct ckpt_row *top, struct chain *c)
{
	const struct ckpt_row *r = &c->links[c->n - 1].row;
	int rc;

	if (c->n > STORE_MAX_DEPTH || r->base >= r->seq) {
		store_log(st, LOG_ERROR, "GET %s %" PRIu64 "/%" PRIu64 ": its chain "
			  "is deeper than %u deltas or goes up at sequence %" PRIu64,
			  process, top->inc, top->seq, STORE_MAX_DEPTH, r->seq);
		return RTCMS_ECORRUPT;
	}
	if ((rc = chain_grow(c)) != 0)
		return rc;
	r = &c->links[c->n - 1].row;
	rc = catalog_ckpt_get(cat, process, r->inc, r->base, &c->links[c->n].row);
	if (rc == RTCMS_ENOENT) {
		store_log(st, LOG_ERROR, "GET %s %" PRIu64 "/%" PRIu64 ": base %" PRIu64
			  " of sequence %" PRIu64 " is missing: the chain is broken",
			  process, top->inc, top->seq, r->base, r->seq);
		rc = RTCMS_ECORRUPT;
	}
	return rc;
}

int chain_load(struct store *st, struct catalog *cat, const char *process,
	       const struct ckpt_row *top, struct chain **out)
{
	struct chain *c = calloc(1, sizeof(*c));
	int rc = 0;

	*out = c;
	if (!c)
		return RTCMS_ENOMEM;
	c->cap = (size_t)(top->depth < STORE_MAX_DEPTH ? top->depth : STORE_MAX_DEPTH) + 1;
	if (!(c->links = calloc(c->cap, sizeof(*c->links))))
		return RTCMS_ENOMEM;
	c->links[0].row = *top;
	while (rc == 0) {
		struct chain_link *l = &c->links[c->n++];
		rc = store_chunks_pin(st, cat, process, l->row.inc, l->row.seq,
				      l->row.chunk_count, &l->chunks, &l->pinned);
		if (rc || l->row.base == 0)
			break;
		rc = chain_next(st, cat, process, top, c);
	}
	return rc;
}

void chain_free(struct store *st, struct chain *c)
{
	if (!c)
		return;
	pthread_mutex_lock(&st->mu);
	for (size_t i = 0; i < c->n; i++)
		store_chunks_unpin(st, c->links[i].chunks, c->links[i].pinned);
	gc_deferred(st);
	pthread_mutex_unlock(&st->mu);
	for (size_t i = 0; i < c->n; i++)
		free(c->links[i].chunks);
	free(c->links);
	free(c);
}
