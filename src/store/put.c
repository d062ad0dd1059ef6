/*
 * put.c - PUT: begin (idempotency, fencing, base checks), check and write
 * chunks, commit (flush the packs written on every mirror, then the
 * metadata, then retention), abort.
 *
 * Chunks are appended to the mirrors' packs outside st->mu (several in
 * parallel, each at a place reserved under it) and pinned in memory while
 * a PUT uses them, so that retention's garbage collection never drops a
 * copy an open PUT is about to reference. A new record's place is pending
 * (in memory) until the commit: the packs written are flushed, then the
 * commit's transaction makes the places the mirror's own.
 *
 * A small PUT (st->inline_max) writes no record and pins nothing: it keeps
 * its chunks' stored forms in memory, and its commit's transaction, on
 * every mirror, references each chunk already stored (durable since the
 * commit that first referenced it: in a pack, inline or as a chunk file)
 * and puts the others into inline_chunks: one flush per mirror, the WAL's.
 */
#include "store_int.h"

#include <inttypes.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log/log.h"
#include "rtcms_error.h"
#include "stats.h"

/* Log why a delta PUT was refused (its base missing or too deep). */
static void delta_refused(struct store *st, const struct proto_ckpt_meta *m, int rc)
{
	if (rc == RTCMS_ENOENT)
		store_log(st, LOG_WARN, "PUT %s %" PRIu64 "/%" PRIu64 ": base %" PRIu64
			  " of %s/%" PRIu64 " is not stored: send a full image",
			  m->process, m->incarnation, m->sequence, m->base, m->process,
			  m->incarnation);
	else if (rc == RTCMS_ETOOBIG)
		store_log(st, LOG_WARN, "PUT %s %" PRIu64 "/%" PRIu64 ": a delta against "
			  "%" PRIu64 " would make a chain deeper than %u deltas: send a "
			  "full image", m->process, m->incarnation, m->sequence, m->base,
			  STORE_MAX_DEPTH);
}

static void fill_ack(struct proto_put_ack *ack, const struct proto_ckpt_meta *m,
		     uint8_t copies, uint8_t existed, uint32_t depth)
{
	memset(ack, 0, sizeof(*ack));
	snprintf(ack->process, sizeof(ack->process), "%s", m->process);
	ack->incarnation = m->incarnation;
	ack->sequence = m->sequence;
	ack->size = m->size;
	memcpy(ack->hash, m->hash, PROTO_HASH_SIZE);
	ack->copies = copies;
	ack->existed = existed;
	ack->depth = depth;
}

/* Under st->mu: idempotency, fencing and base checks shared by begin and
 * commit. 0 (*stored: it is stored already, *ack filled), or a refusal. */
static int put_precheck(struct store *st, const struct proto_ckpt_meta *meta,
			struct proto_put_ack *ack, bool *stored)
{
	struct mirror *p = mirror_primary(st);
	uint8_t h[PROTO_HASH_SIZE], state[PROTO_HASH_SIZE];
	uint64_t size;
	uint32_t depth = 0;
	struct proc_row r;
	bool found;

	*stored = false;
	if (!p)
		return RTCMS_EIO;
	int rc = catalog_ckpt_lookup(p->cat, meta->process, meta->incarnation,
				     meta->sequence, h, &size, &depth, state, &found);
	if (rc < 0)
		return rc;
	if (found) {
		if (sodium_memcmp(h, meta->hash, PROTO_HASH_SIZE) == 0 &&
		    size == meta->size) {
			fill_ack(ack, meta, (uint8_t)mirror_online_count(st), 1, depth);
			*stored = true;
			return 0;
		}
		/* the same state encoded otherwise (a delta against another
		 * base, or full): two managers pulled it at once */
		if (!sodium_is_zero(state, PROTO_HASH_SIZE) &&
		    sodium_memcmp(state, meta->state_hash, PROTO_HASH_SIZE) == 0) {
			fill_ack(ack, meta, (uint8_t)mirror_online_count(st), 1, depth);
			ack->size = size;
			memcpy(ack->hash, h, PROTO_HASH_SIZE);
			*stored = true;
			return 0;
		}
		return RTCMS_EEXIST;
	}
	if (catalog_proc_load(p->cat, meta->process, &r) != 0)
		return RTCMS_EIO;
	if (r.found && meta->incarnation < r.incarnation) {
		memset(ack, 0, sizeof(*ack));
		ack->incarnation = r.incarnation;
		return RTCMS_EFENCED;
	}
	if (meta->base) {
		rc = chain_delta_depth(p->cat, meta->process, meta->incarnation,
				       meta->base, &depth);
		if (rc < 0) {
			delta_refused(st, meta, rc);
			return rc;
		}
	}
	return 0;
}

/* 0 if a PUT's metadata is acceptable, else RTCMS_EINVAL / RTCMS_ETOOBIG. */
static int put_meta_check(const struct proto_ckpt_meta *meta)
{
	if (!proto_process_id_valid(meta->process) || meta->incarnation == 0 ||
	    meta->sequence == 0 || meta->spec_len > PROTO_SPEC_MAX ||
	    (meta->size == 0) != (meta->chunk_count == 0) ||
	    meta->chunk_count > meta->size ||
	    meta->size > (uint64_t)meta->chunk_count * PROTO_MAX_CHUNK ||
	    meta->incarnation > INT64_MAX || meta->sequence > INT64_MAX ||
	    meta->size > INT64_MAX || meta->base >= meta->sequence ||
	    (meta->base == 0 && meta->full_size != 0 && meta->full_size != meta->size) ||
	    (meta->base != 0 && (meta->full_size == 0 || meta->size == 0)))
		return RTCMS_EINVAL;
	/* a GET assembles a delta's chain in memory: both sizes are capped */
	if (meta->base != 0 && (meta->full_size > STORE_MAX_FULL ||
				meta->size > STORE_MAX_FULL))
		return RTCMS_ETOOBIG;
	return 0;
}

static void put_free(struct store_put *put)
{
	free(put->ibuf);
	free(put->forms);
	free(put->pinned);
	free(put->chunks);
	free(put->spec);
	free(put);
}

int store_put_begin(struct store *st, const struct proto_ckpt_meta *meta,
		    struct store_put **out, struct proto_put_ack *ack)
{
	struct store_put *put;
	bool stored;
	int rc;

	*out = NULL;
	if ((rc = put_meta_check(meta)) != 0)
		goto out_refused;
	put = calloc(1, sizeof(*put));
	if (!put) {
		rc = RTCMS_ENOMEM;
		goto out_refused;
	}
	put->st = st;
	put->meta = *meta;
	if (meta->spec_len) {
		put->spec = malloc(meta->spec_len);
		if (!put->spec) {
			free(put);
			rc = RTCMS_ENOMEM;
			goto out_refused;
		}
		memcpy(put->spec, meta->spec, meta->spec_len);
	}
	put->meta.spec = put->spec;
	put->inl = meta->size > 0 && meta->size <= st->inline_max &&
		   meta->chunk_count <= STORE_INLINE_CHUNKS;
	if (put->inl) {
		put->ibuf = malloc(meta->size + (size_t)meta->chunk_count * CHUNKFILE_SEALED_EXTRA);
		put->forms = calloc(meta->chunk_count, sizeof(*put->forms));
		if (!put->ibuf || !put->forms) {
			put_free(put);
			rc = RTCMS_ENOMEM;
			goto out_refused;
		}
	}
	stream_verifier_begin(&put->v, meta, 0, 0);
	pthread_mutex_lock(&st->mu);
	rc = put_precheck(st, meta, ack, &stored);
	if (rc == 0 && !stored)
		st->open_puts++;
	pthread_mutex_unlock(&st->mu);
	if (rc != 0 || stored) {
		put_free(put);
		if (rc)
			goto out_refused;
		metric_counter_inc(&store_stats.puts[STORE_PUT_DUPLICATE]);
		return 0;
	}
	*out = put;
	return 0;
out_refused:
	metric_counter_inc(&store_stats.puts[STORE_PUT_REFUSED]);
	return rc;
}

int store_put_check(struct store_put *put, const struct proto_chunk *chunk)
{
	if (put->failed)
		return put->failed;
	int rc = stream_verifier_place(&put->v, chunk);
	if (rc)
		return put->failed = rc;
	if (put->count == put->cap) {
		size_t cap = put->cap ? (size_t)put->cap * 2 : 16;
		if (cap > put->meta.chunk_count)
			cap = put->meta.chunk_count;
		void *p = realloc(put->chunks, cap * sizeof(*put->chunks));
		if (!p)
			return put->failed = RTCMS_ENOMEM;
		put->chunks = p;
		put->cap = (uint32_t)cap;
	}
	struct chunk_ref *c = &put->chunks[put->count++];
	c->offset = chunk->offset;
	c->len = chunk->len;
	c->key_id = chunk->key_id;
	memcpy(c->hash, chunk->hash, PROTO_HASH_SIZE);
	return 0;
}

/* A small PUT's chunk write: keep its stored form (a sealed chunk with
 * its header) for the commit. 0 or RTCMS_EPROTO (more than announced). */
static int put_keep(struct store_put *put, const struct proto_chunk *chunk)
{
	size_t cap = put->meta.size + (size_t)put->meta.chunk_count * CHUNKFILE_SEALED_EXTRA;
	size_t len = chunk->key_id ? chunk->len + CHUNKFILE_SEALED_EXTRA : chunk->len;
	uint32_t k = atomic_fetch_add(&put->nforms, 1);
	uint64_t off = atomic_fetch_add(&put->ibuf_used, len);

	if (k >= put->meta.chunk_count || off + len > cap)
		return RTCMS_EPROTO;
	uint8_t *p = put->ibuf + off;
	if (chunk->key_id) {
		chunkfile_sealed_head(chunk->key_id, chunk->sum, p);
		memcpy(p + CHUNKFILE_SHDR, chunk->data, chunk->len + PROTO_CHUNK_TAG);
	} else {
		memcpy(p, chunk->data, chunk->len);
	}
	memcpy(put->forms[k].hash, chunk->hash, PROTO_HASH_SIZE);
	put->forms[k].off = off;
	put->forms[k].len = (uint32_t)len;
	return 0;
}

/* Under st->mu: pin chunk h for the PUT. 0 or RTCMS_ENOMEM. */
static int put_pin(struct store_put *put, const uint8_t *h)
{
	if (put->npinned == put->pinned_cap) {
		uint32_t cap = put->pinned_cap ? put->pinned_cap * 2 : 16;
		void *np = realloc(put->pinned, (size_t)cap * PROTO_HASH_SIZE);
		if (np) {
			put->pinned = np;
			put->pinned_cap = cap;
		}
	}
	int rc = put->npinned < put->pinned_cap ? pinset_add(&put->st->pins, h)
						: RTCMS_ENOMEM;
	if (rc == 0)
		memcpy(put->pinned[put->npinned++], h, PROTO_HASH_SIZE);
	return rc;
}

int store_put_write(struct store_put *put, const struct proto_chunk *chunk)
{
	struct store *st = put->st;
	const uint8_t *h = chunk->hash;
	struct mirror *ms[STORE_MAX_MIRRORS];
	size_t n, disk_len = 0;
	int rc;

	/* The data must be what its id says (checked off the event loop). */
	if (!stream_chunk_intact(chunk))
		return RTCMS_ECORRUPT;
	if (put->inl)
		return put_keep(put, chunk);

	pthread_mutex_lock(&st->mu);
	rc = put_pin(put, h);
	n = mirror_online(st, ms);
	pthread_mutex_unlock(&st->mu);
	if (rc)
		return rc;
	if (chunk->key_id) {
		/* kept sealed as it came, in the sealed form (chunkfile.h) */
		rc = mirror_write_sealed(st, ms, n, h, chunk->len, chunk->key_id, chunk->sum,
					 chunk->data, &disk_len);
	} else {
		rc = mirror_write_all(st, ms, n, h, chunk->len, chunk->data, chunk->len,
				      &disk_len);
	}
	if (disk_len) {
		atomic_fetch_add_explicit(&put->new_chunks, 1, memory_order_relaxed);
		atomic_fetch_add_explicit(&put->new_bytes, chunk->len, memory_order_relaxed);
		atomic_fetch_add_explicit(&put->disk_bytes, disk_len, memory_order_relaxed);
	}
	return rc;
}

void store_put_stats(const struct store_put *put, struct store_put_stats *out)
{
	out->new_chunks = (uint32_t)atomic_load(&put->new_chunks);
	out->inline_chunks = put->inl ? (uint32_t)atomic_load(&put->nforms) : 0;
	out->new_bytes = atomic_load(&put->new_bytes);
	out->disk_bytes = atomic_load(&put->disk_bytes);
}

struct put_args {
	struct store_put *put;
	const struct chunk_form *forms; /* a small PUT's, one per chunk, or NULL */
	uint64_t now;
	unsigned retain;
	struct victim_list *gc;       /* filled on the first mirror only */
	int first;
	uint32_t deleted;
	uint32_t depth;               /* the new checkpoint's depth */
};

/* The mutation of a PUT's commit: insert the checkpoint (raising the
 * process' incarnation if newer), then apply retention. */
static int put_apply(struct catalog *cat, void *arg)
{
	struct put_args *a = arg;
	struct store_put *put = a->put;
	const struct proto_ckpt_meta *m = &put->meta;
	struct proc_row r;
	uint32_t depth = 0;
	int rc;

	if (catalog_proc_load(cat, m->process, &r) != 0)
		return RTCMS_EIO;
	if (r.found && m->incarnation < r.incarnation)
		return RTCMS_EFENCED;
	/* the base must still be there: retention or a DELETE may have
	 * removed it since PUT_BEGIN */
	if (m->base && (rc = chain_delta_depth(cat, m->process, m->incarnation,
					       m->base, &depth)) != 0)
		return rc;
	/* A checkpoint of a newer incarnation (taken after a restore
	 * committed elsewhere, e.g. through another store path) raises the
	 * fencing token: older ones are refused from now on. */
	if ((!r.found || m->incarnation > r.incarnation) &&
	    catalog_proc_save(cat, m->process, m->incarnation, m->node, !r.found) != 0)
		return RTCMS_EIO;
	rc = catalog_ckpt_insert(cat, m, m->created_ms ? m->created_ms : a->now, depth,
				 put->chunks, a->forms, put->count);
	if (rc)
		return rc;
	rc = gc_retention(put->st, cat, m->process, a->retain, a->first ? a->gc : NULL,
			  &a->deleted);
	if (rc)
		return rc;
	a->depth = depth;
	a->first = 0;
	return 0;
}

/* Under st->mu: the PUT lets go of its pins (and of the pending places
 * no open PUT uses any more: committed, they are the mirrors' own now;
 * else their records are dead bytes), then the copies of gc's victims go
 * (if committed); without committed, the copies of what the PUT wrote
 * that nothing else references or uses go too. */
static void put_release(struct store_put *put, struct victim_list *gc, bool committed)
{
	struct store *st = put->st;

	for (uint32_t i = 0; i < put->npinned; i++) {
		pinset_del(&st->pins, put->pinned[i]);
		if (!pinset_has(&st->pins, put->pinned[i]))
			mirror_chunk_unpend_all(st, put->pinned[i]);
	}
	st->open_puts--;
	if (gc)
		gc_files(st, gc, committed);
	if (!committed)
		gc_unreferenced(st, (const uint8_t (*)[PROTO_HASH_SIZE])put->pinned,
				put->npinned);
	gc_deferred(st);
}

/* 0 if the PUT got all its chunks and their hashes give the image hash. */
static int put_complete(struct store_put *put, uint32_t chunk_count)
{
	if (put->failed)
		return put->failed;
	return stream_verifier_end(&put->v, chunk_count);
}

/* A small PUT's stored forms, one per chunk in order, into *out
 * (malloc'ed). 0, RTCMS_ENOMEM, RTCMS_EPROTO (a chunk was not written). */
static int put_forms(const struct store_put *put, struct chunk_form **out)
{
	uint32_t n = (uint32_t)atomic_load(&put->nforms);
	struct chunk_form *f = calloc(put->count ? put->count : 1, sizeof(*f));

	*out = f;
	if (!f)
		return RTCMS_ENOMEM;
	for (uint32_t i = 0; i < put->count; i++) {
		uint32_t k = 0;
		/* content-addressed: any kept chunk of the same id will do */
		while (k < n && memcmp(put->forms[k].hash, put->chunks[i].hash,
				       PROTO_HASH_SIZE) != 0)
			k++;
		if (k == n)
			return RTCMS_EPROTO;
		f[i] = (struct chunk_form){ put->ibuf + put->forms[k].off, put->forms[k].len };
	}
	return 0;
}

/* Make the records durable on every online mirror before the metadata
 * that references them commits: an fdatasync of each pack written since
 * its last flush, on every mirror in parallel (a small PUT wrote none:
 * nothing to flush). Returns with st->mu held. */
static void put_flush_lock(struct store_put *put)
{
	struct store *st = put->st;
	struct mirror *ms[STORE_MAX_MIRRORS];
	int synced[STORE_MAX_MIRRORS];
	size_t n;

	pthread_mutex_lock(&st->mu);
	if (put->inl)
		return;
	n = mirror_online(st, ms);
	pthread_mutex_unlock(&st->mu);
	mirror_sync(st, ms, n, synced);
	pthread_mutex_lock(&st->mu);
	for (size_t i = 0; i < n; i++)
		if (synced[i] != 0)
			mirror_offline(st, ms[i], "flushing its packs failed");
}

/* The PUT given up: its pending places go (what it wrote is dead bytes
 * in the packs unless another PUT placed the same chunks). */
static void put_drop(struct store_put *put)
{
	pthread_mutex_lock(&put->st->mu);
	put_release(put, NULL, false);
	pthread_mutex_unlock(&put->st->mu);
	put_free(put);
}

int store_put_commit(struct store_put *put, uint32_t chunk_count,
		     struct proto_put_ack *ack)
{
	struct store *st = put->st;
	struct victim_list gc = { 0 };
	struct chunk_form *forms = NULL;
	bool stored;
	int rc = put_complete(put, chunk_count);

	if (rc == 0 && put->inl)
		rc = put_forms(put, &forms);
	if (rc) {
		free(forms);
		put_drop(put);
		metric_counter_inc(&store_stats.puts[STORE_PUT_FAILED]);
		return rc;
	}
	put_flush_lock(put);
	rc = put_precheck(st, &put->meta, ack, &stored);
	if (rc == 0 && !stored) {
		struct put_args a = { put, forms, store_now(st), st->retain, &gc, 1, 0, 0 };
		rc = mirror_apply(st, put_apply, &a);
		if (rc == RTCMS_ENOENT || rc == RTCMS_ETOOBIG)
			delta_refused(st, &put->meta, rc);
		if (rc == 0) {
			fill_ack(ack, &put->meta, (uint8_t)mirror_online_count(st), 0,
				 a.depth);
			if (a.deleted)
				store_log(st, LOG_DEBUG, "retention: removed %u old "
					  "checkpoint(s) of %s", a.deleted,
					  put->meta.process);
		}
	}
	/* stored meanwhile by someone else (same content): done, ack theirs */
	put_release(put, &gc, rc == 0);
	pthread_mutex_unlock(&st->mu);
	free(forms);
	put_free(put);
	metric_counter_inc(&store_stats.puts[rc ? STORE_PUT_FAILED : STORE_PUT_DURABLE]);
	return rc;
}

void store_put_abort(struct store_put *put)
{
	if (!put)
		return;
	/* records written for it are dead bytes (their places were only
	 * pending); compaction reclaims them */
	put_drop(put);
	metric_counter_inc(&store_stats.puts[STORE_PUT_ABORTED]);
}
