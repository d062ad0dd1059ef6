/*
 * chain.c - delta chains: the depth a delta gets, and the chain a GET
 * serves (the checkpoint, its bases down to the full image at the root,
 * every chunk pinned, every chunk list checked against its image hash).
 * The store never assembles a chain: it serves the links, root first, and
 * the reader applies them (docs/protocol.md). It never reads image bytes.
 */
#include "store_int.h"

#include <inttypes.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "area/delta.h"
#include "log/log.h"
#include "rtcms_error.h"

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
		if (rc == 0 && (rc = chunks_consistent(l)) != 0)
			store_log(st, LOG_ERROR, "GET %s %" PRIu64 "/%" PRIu64 ": the chunk "
				  "list of sequence %" PRIu64 " does not give its image hash",
				  process, top->inc, top->seq, l->row.seq);
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
