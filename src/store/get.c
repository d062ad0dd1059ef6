/*
 * get.c - GET: open a checkpoint (its chain loaded and pinned by chain.c
 * until the handle closes: a full image is one link, a delta its root and
 * every delta up to it) and read its chunks, link by link, from the chunk
 * files with read repair. Nothing is assembled here: the reader applies
 * the links.
 */
#include "store_int.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log/log.h"
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
 * Under st->mu: find the checkpoint, fill *meta (the checkpoint as
 * stored) and a new handle *out, and (unless meta_only) load and pin its
 * chain (a full image: one link). 0 or a negative code (*out to be closed
 * either way).
 */
static int get_find(struct store *st, const char *process, uint64_t incarnation,
		    uint64_t sequence, int meta_only, struct store_get **out,
		    struct proto_ckpt_meta *meta)
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
			       &g->spec_len);
	if (rc)
		return rc;
	meta_from_row(meta, process, &row);
	snprintf(g->process, sizeof(g->process), "%s", meta->process);
	meta->spec_len = g->spec_len;
	meta->spec = g->spec;
	if (meta_only)
		return 0;
	return chain_load(st, p->cat, g->process, &row, &g->chain);
}

/* The metadata of the link being read. */
static void link_meta(const struct store_get *g, struct proto_ckpt_meta *meta)
{
	meta_from_row(meta, g->process, &g->chain->links[g->chain->n - 1 - g->link].row);
	meta->spec_len = g->spec_len;
	meta->spec = g->spec;
}

static int get_open(struct store *st, const char *process, uint64_t incarnation,
		    uint64_t sequence, int meta_only, struct store_get **out,
		    struct proto_ckpt_meta *meta)
{
	struct store_get *g = NULL;
	int rc;

	*out = NULL;
	pthread_mutex_lock(&st->mu);
	rc = get_find(st, process, incarnation, sequence, meta_only, &g, meta);
	pthread_mutex_unlock(&st->mu);
	if (rc == 0 && g->chain) {
		link_meta(g, meta);
		if (g->chain->n > 1)
			store_log(st, LOG_DEBUG, "GET %s %" PRIu64 "/%" PRIu64 ": served as "
				  "a chain of %zu links from full image %" PRIu64,
				  g->process, g->chain->links[0].row.inc,
				  g->chain->links[0].row.seq, g->chain->n, meta->sequence);
	}
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
	const struct chain_link *l = g->chain ? &g->chain->links[g->chain->n - 1 - g->link]
					      : NULL;

	*end = !l || g->next >= l->pinned;
	if (*end)
		return 0;
	const struct chunk_ref *c = &l->chunks[g->next];
	const uint8_t *sum, *sealed;
	size_t len;
	int rc = repair_read_chunk(g->st, c, buf, &len, &g->repaired);
	if (rc)
		return rc;
	memset(chunk, 0, sizeof(*chunk));
	chunk->offset = c->offset;
	chunk->len = c->len;
	chunk->data = buf;
	memcpy(chunk->hash, c->hash, PROTO_HASH_SIZE);
	if (chunkfile_sealed_view(buf, len, c->len, &chunk->key_id, &sum, &sealed)) {
		/* served as it came: sealed, with its sum */
		chunk->data = sealed;
		memcpy(chunk->sum, sum, PROTO_CHUNK_SUM);
	}
	g->next++;
	return 0;
}

bool store_get_next_link(struct store_get *g, struct proto_ckpt_meta *meta)
{
	if (!g->chain || g->link + 1 >= g->chain->n)
		return false;
	g->link++;
	g->next = 0;
	link_meta(g, meta);
	return true;
}

uint32_t store_get_links(const struct store_get *g, uint64_t *top_sequence)
{
	if (!g->chain)
		return 0;
	if (top_sequence)
		*top_sequence = g->chain->links[0].row.seq;
	return (uint32_t)g->chain->n;
}

uint32_t store_get_repaired(const struct store_get *g)
{
	return g->repaired;
}

void store_get_close(struct store_get *g)
{
	if (!g)
		return;
	chain_free(g->st, g->chain);
	free(g->spec);
	free(g);
}
