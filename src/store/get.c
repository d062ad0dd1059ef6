/*
 * get.c - GET: open a checkpoint (a full image streamed from its chunk
 * files, pinned until the handle closes; a delta assembled from its chain
 * by chain.c and served from memory), read its chunks with read repair.
 */
#include "store_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rtcms_error.h"

int store_chunks_pin(struct store *st, struct catalog *cat, const char *process,
		     uint64_t inc, uint64_t seq, uint32_t count,
		     struct chunk_ref **out, uint32_t *pinned)
{
	int rc = catalog_chunks_load(cat, process, inc, seq, count, out);

	*pinned = 0;
	for (uint32_t i = 0; rc == 0 && i < count; i++) {
		/* count only what is pinned: the caller unpins exactly those */
		if (pinset_add(&st->pins, (*out)[i].hash) != 0)
			rc = RTCMS_ENOMEM;
		else
			(*pinned)++;
	}
	return rc;
}

void store_chunks_unpin(struct store *st, const struct chunk_ref *c, uint32_t n)
{
	for (uint32_t i = 0; i < n; i++)
		pinset_del(&st->pins, c[i].hash);
}

/*
 * Serve an assembled image from memory: cut it into chunks of
 * PROTO_MAX_CHUNK and describe it in meta (a full image: base 0, its own
 * size, chunk hashes and image hash). g takes img.
 */
static int get_serve_image(struct store_get *g, uint8_t *img, size_t len,
			   struct proto_ckpt_meta *meta)
{
	struct stream_chunks k = { 0 };

	g->img = img;
	int rc = stream_chunks_of(&k, img, len, PROTO_MAX_CHUNK);
	if (rc)
		return rc;
	if (k.count && !(g->chunks = calloc(k.count, sizeof(*g->chunks)))) {
		stream_chunks_clear(&k);
		return RTCMS_ENOMEM;
	}
	for (uint32_t i = 0; i < k.count; i++) {
		struct chunk_ref *c = &g->chunks[i];
		stream_chunks_span(&k, i, &c->offset, &c->len);
		memcpy(c->hash, k.id[i], PROTO_HASH_SIZE);
	}
	g->count = k.count;
	stream_chunks_meta(&k, meta);
	stream_chunks_clear(&k);
	meta->full_size = len;
	meta->base = 0;
	return 0;
}

/* A checkpoint's metadata as stored, from its row. */
static void meta_from_row(struct proto_ckpt_meta *meta, const char *process,
			  const struct ckpt_row *row)
{
	memset(meta, 0, sizeof(*meta));
	snprintf(meta->process, sizeof(meta->process), "%s", process);
	meta->incarnation = row->inc;
	meta->sequence = row->seq;
	meta->node = row->node;
	meta->size = row->size;
	memcpy(meta->hash, row->hash, PROTO_HASH_SIZE);
	meta->created_ms = row->created_ms;
	meta->chunk_count = row->chunk_count;
	meta->base = row->base;
	meta->full_size = row->base ? row->full_size : row->size;
	memcpy(meta->state_hash, row->state_hash, PROTO_HASH_SIZE);
}

/*
 * Under st->mu: find the checkpoint, fill *meta and a new handle *out, and
 * (unless meta_only) pin a full image's chunks into it or load a delta's
 * chain into *chain. 0 or a negative code (*out to be closed either way).
 */
static int get_find(struct store *st, const char *process, uint64_t incarnation,
		    uint64_t sequence, int meta_only, struct store_get **out,
		    struct proto_ckpt_meta *meta, struct chain **chain)
{
	struct mirror *p = mirror_primary(st);
	struct store_get *g;
	struct ckpt_row row;
	int rc;

	if (!p)
		return RTCMS_EIO;
	if (!(g = *out = calloc(1, sizeof(*g))))
		return RTCMS_ENOMEM;
	g->st = st;
	rc = catalog_ckpt_find(p->cat, process, incarnation, sequence, &row, &g->spec,
			       &meta->spec_len);
	if (rc)
		return rc;
	uint32_t spec_len = meta->spec_len;
	meta_from_row(meta, process, &row);
	meta->spec_len = spec_len;
	meta->spec = g->spec;
	if (meta_only)
		return 0;
	if (row.base != 0)
		return chain_load(st, p->cat, meta->process, &row, chain);
	/* a full image: streamed from the chunk files, pinned until the
	 * handle is closed */
	rc = store_chunks_pin(st, p->cat, meta->process, row.inc, row.seq,
			      row.chunk_count, &g->chunks, &g->pinned);
	g->count = g->pinned;
	return rc;
}

/* Open a checkpoint: as stored (meta_only, or a full image: streamed from
 * the chunk files) or assembled from its chain (a delta). */
static int get_open(struct store *st, const char *process, uint64_t incarnation,
		    uint64_t sequence, int meta_only, struct store_get **out,
		    struct proto_ckpt_meta *meta)
{
	struct store_get *g = NULL;
	struct chain *chain = NULL;
	int rc;

	*out = NULL;
	pthread_mutex_lock(&st->mu);
	rc = get_find(st, process, incarnation, sequence, meta_only, &g, meta, &chain);
	pthread_mutex_unlock(&st->mu);

	if (rc == 0 && chain) {
		/* read and apply without the mutex: the chain's chunks are
		 * pinned until chain_free */
		uint8_t *img = NULL;
		size_t len = 0;
		rc = chain_assemble(st, meta->process, chain, &img, &len, &g->repaired);
		if (rc == 0)
			rc = get_serve_image(g, img, len, meta);
	}
	chain_free(st, chain);
	if (rc == 0) {
		*out = g;
		g = NULL;
	}
	store_get_close(g);
	return rc;
}

int store_get_open(struct store *st, const char *process, uint64_t incarnation,
		   uint64_t sequence, struct store_get **out,
		   struct proto_ckpt_meta *meta)
{
	return get_open(st, process, incarnation, sequence, 0, out, meta);
}

int store_get_open_meta(struct store *st, const char *process,
			uint64_t incarnation, uint64_t sequence,
			struct store_get **out, struct proto_ckpt_meta *meta)
{
	return get_open(st, process, incarnation, sequence, 1, out, meta);
}

int store_get_next(struct store_get *g, uint8_t *buf, struct proto_chunk *chunk, bool *end)
{
	*end = g->next >= g->count;
	if (*end)
		return 0;
	const struct chunk_ref *c = &g->chunks[g->next];
	if (g->img) {
		/* assembled and hashed at open: copied, so that buf is what
		 * chunk->data points to either way */
		memcpy(buf, g->img + c->offset, c->len);
	} else {
		int rc = repair_read_chunk(g->st, c, buf, &g->repaired);
		if (rc)
			return rc;
	}
	chunk->offset = c->offset;
	chunk->len = c->len;
	chunk->data = buf;
	memcpy(chunk->hash, c->hash, PROTO_HASH_SIZE);
	g->next++;
	return 0;
}

uint32_t store_get_repaired(const struct store_get *g)
{
	return g->repaired;
}

void store_get_close(struct store_get *g)
{
	if (!g)
		return;
	if (g->pinned) {
		pthread_mutex_lock(&g->st->mu);
		store_chunks_unpin(g->st, g->chunks, g->pinned);
		gc_deferred(g->st);
		pthread_mutex_unlock(&g->st->mu);
	}
	free(g->img);
	free(g->chunks);
	free(g->spec);
	free(g);
}
