/*
 * repair.c - keeping every mirror's copy of every chunk good: one repair
 * routine (repair_chunk) that the three repairs call: the resync at open
 * (missing copies), read repair (a GET that met a bad copy) and a
 * repairing SCRUB (every byte of every mirror verified).
 *
 * A mirror's copy of a chunk is its inline copy in the mirror's meta.db
 * if it has one, else its record in the mirror's packs, else its chunk
 * file (mirror_chunk_read); a bad copy is never rewritten in place: the
 * good one is appended to the mirror's packs and the chunk's place moves
 * there (or it is written inline where the good or the bad one was
 * inline), so the next read finds the repaired copy.
 */
#include "store_int.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "log/log.h"
#include "rtcms_error.h"
#include "stats.h"

/* Append chunk hash (enc) to m's packs and move its place there: into
 * later's batch for m, or durably now (a chunk file it had is redundant
 * then, and goes). */
static int repair_record(struct store *st, struct mirror *m, const uint8_t *hash,
			 const struct chunkfile_enc *enc, struct pack_batch *later)
{
	struct pack_batch one = { m, false, NULL, 0, 0 };
	size_t done = 0;
	int rc;

	if (later)
		return pack_batch_add(st, &later[m - st->m], hash, enc, NULL);
	rc = pack_batch_add(st, &one, hash, enc, NULL);
	if (rc == 0)
		rc = pack_batch_commit(st, &one, &done);
	pack_batch_free(st, &one);
	if (rc == 0 && done == 1)
		m->be->remove(m->be_state, hash);
	return rc ? rc : done == 1 ? 0 : RTCMS_EIO;
}

size_t repair_chunk(struct store *st, const uint8_t hash[PROTO_HASH_SIZE],
		    const uint8_t *data, size_t len, bool inl, struct repair_target *t,
		    size_t n, struct pack_batch *later, const char *log_prefix,
		    const struct mirror *from)
{
	struct chunkfile_enc enc = { 0 };
	size_t done = 0;
	char hx[17];

	for (size_t i = 0; i < n; i++) {
		bool as_inline = inl || t[i].inl;
		if (as_inline) {
			t[i].rc = mirror_chunk_write_inline(st, t[i].m, hash, data, len);
		} else {
			if (!enc.data) /* encoded once, for the first record */
				chunkfile_encode(data, len, st->zlevel, &enc);
			t[i].rc = repair_record(st, t[i].m, hash, &enc, later);
		}
		if (t[i].rc != 0)
			continue;
		done++;
		if (log_prefix)
			store_log(st, LOG_WARN, "%smirror %s: %schunk %s… was %s; repaired "
				  "from %s", log_prefix, t[i].m->path, as_inline ? "inline " : "",
				  store_hex(hash, hx),
				  t[i].bad == RTCMS_ENOENT ? "missing" : "corrupt",
				  from->path);
	}
	chunkfile_enc_free(&enc);
	metric_counter_add(&store_stats.repairs, done);
	return done;
}

/* ---- read repair ---------------------------------------------------------- */

int repair_read_chunk(struct store *st, const struct chunk_ref *c, uint8_t *buf,
		      size_t *len, uint32_t *repaired)
{
	struct mirror *ms[STORE_MAX_MIRRORS];
	struct repair_target bad[STORE_MAX_MIRRORS];
	size_t n, nbad = 0;
	int good = -1;
	bool inl = false;

	if (c->len == 0 || c->len > PROTO_MAX_CHUNK)
		return RTCMS_ECORRUPT;
	pthread_mutex_lock(&st->mu);
	n = mirror_online(st, ms);
	pthread_mutex_unlock(&st->mu);

	for (size_t i = 0; i < n && good < 0; i++) {
		int rc = mirror_chunk_read(st, ms[i], c->hash, c->len, buf, len, &inl);
		if (rc == 0)
			good = (int)i;
		else
			bad[nbad++] = (struct repair_target){ ms[i], rc, inl, 0 };
	}
	if (good < 0) {
		char hx[17];
		store_log(st, LOG_ERROR, "chunk %s… at offset %" PRIu64 ": no good copy "
			  "on any mirror", store_hex(c->hash, hx), c->offset);
		return RTCMS_ECORRUPT;
	}
	/* Repair the bad copies met before the good one. */
	*repaired += (uint32_t)repair_chunk(st, c->hash, buf, *len, inl, bad, nbad, NULL,
					    "", ms[good]);
	pthread_mutex_lock(&st->mu);
	for (size_t i = 0; i < nbad; i++)
		if (bad[i].rc == 0)
			bad[i].m->repaired++;
	pthread_mutex_unlock(&st->mu);
	return 0;
}

/* ---- resync at open -------------------------------------------------------- */

/* Places of a resync's copies commit per mirror every this many. */
#define RESYNC_BATCH 1024

struct resync {
	struct store *st;
	uint8_t *buf;
	uint64_t copied, lost;
	struct pack_batch b[STORE_MAX_MIRRORS];
};

/* Commit a mirror's batch of copies (flushed first); a failure takes the
 * mirror offline. */
static void resync_commit(struct resync *rs, size_t i)
{
	struct store *st = rs->st;
	if (rs->b[i].n && pack_batch_commit(st, &rs->b[i], NULL) != 0) {
		pthread_mutex_lock(&st->mu);
		mirror_offline(st, &st->m[i], "committing resynchronised chunks failed");
		pthread_mutex_unlock(&st->mu);
	}
}

/* Copy one referenced chunk to the online mirrors that lack it. */
static bool resync_one(void *ctx, const uint8_t h[PROTO_HASH_SIZE], uint64_t size)
{
	struct resync *rs = ctx;
	struct store *st = rs->st;
	struct repair_target t[STORE_MAX_MIRRORS];
	int missing[STORE_MAX_MIRRORS] = { 0 }, good = -1;
	size_t n = 0, len = 0;
	bool inl = false;

	for (size_t i = 0; i < st->n; i++) {
		struct mirror *m = &st->m[i];
		if (m->online && !mirror_chunk_stored(st, m, h, (size_t)size)) {
			missing[i] = 1;
			t[n++] = (struct repair_target){ m, RTCMS_ENOENT, false, 0 };
		}
	}
	if (!n)
		return true;
	for (size_t i = 0; i < st->n && good < 0; i++)
		if (st->m[i].online && !missing[i] &&
		    mirror_chunk_read(st, &st->m[i], h, (size_t)size, rs->buf, &len, &inl) == 0)
			good = (int)i;
	if (good < 0) {
		char hx[17];
		rs->lost++;
		store_log(st, LOG_ERROR, "resync: chunk %s… has no good copy on "
			  "any mirror", store_hex(h, hx));
		return true;
	}
	rs->copied += repair_chunk(st, h, rs->buf, len, inl, t, n, rs->b, NULL, NULL);
	for (size_t k = 0; k < n; k++) {
		size_t i = (size_t)(t[k].m - st->m);
		if (t[k].rc != 0) {
			pthread_mutex_lock(&st->mu);
			mirror_offline(st, t[k].m, "resync write failed");
			pthread_mutex_unlock(&st->mu);
		} else if (rs->b[i].n >= RESYNC_BATCH) {
			resync_commit(rs, i);
		}
	}
	return true;
}

int repair_resync(struct store *st, uint64_t *lost)
{
	struct mirror *p = mirror_primary(st);
	struct resync rs = { st, malloc(CHUNKFILE_MAX), 0, 0, { { 0 } } };
	int rc;

	if (!p || !rs.buf) {
		free(rs.buf);
		return p ? RTCMS_ENOMEM : RTCMS_EIO;
	}
	for (size_t i = 0; i < st->n; i++)
		rs.b[i].m = &st->m[i];
	rc = catalog_chunks_each(p->cat, resync_one, &rs);
	free(rs.buf);
	/* the rest of the copies: one flush and one transaction per mirror */
	for (size_t i = 0; i < st->n; i++) {
		if (rc == 0)
			resync_commit(&rs, i);
		pack_batch_free(st, &rs.b[i]);
	}
	if (rc)
		return rc;
	if (rs.copied)
		store_log(st, LOG_WARN, "resync: copied %" PRIu64 " chunk(s) to "
			  "mirrors that lacked them", rs.copied);
	if (rs.lost && lost)
		store_log(st, LOG_WARN, "resync: %" PRIu64 " chunk(s) have no good copy "
			  "where the metadata places them", rs.lost);
	else if (rs.lost)
		store_log(st, LOG_ERROR, "resync: %" PRIu64 " chunk(s) have no good "
			  "copy; `rtcmsctl store scrub` lists the damage", rs.lost);
	if (lost)
		*lost = rs.lost;
	return 0;
}

/* ---- key ids of chunks stored before they were recorded ------------------ */

struct keyfill {
	struct store *st;
	uint8_t *buf;
	struct victim_list found;     /* hashes whose key id was read ... */
	uint32_t *ids;                /* ... and those key ids */
	size_t cap;
	int rc;
};

/* Read one unkeyed chunk's good copy and note its key id (0: plain). */
static bool keyfill_one(void *ctx, const uint8_t h[PROTO_HASH_SIZE], uint64_t size)
{
	struct keyfill *kf = ctx;
	struct store *st = kf->st;
	const uint8_t *sum, *sealed;
	uint32_t key_id = 0;
	size_t len = 0;
	bool inl, good = false;

	for (size_t i = 0; i < st->n && !good; i++)
		good = st->m[i].online &&
		       mirror_chunk_read(st, &st->m[i], h, (size_t)size, kf->buf, &len, &inl) == 0;
	if (!good)
		return true; /* stays unknown: the resync or a scrub reports it */
	if (!chunkfile_sealed_view(kf->buf, len, (size_t)size, &key_id, &sum, &sealed))
		key_id = 0;
	if (kf->found.n == kf->cap) {
		size_t cap = kf->cap ? kf->cap * 2 : 64;
		uint32_t *p = realloc(kf->ids, cap * sizeof(*p));
		if (!p) {
			kf->rc = RTCMS_ENOMEM;
			return false;
		}
		kf->ids = p;
		kf->cap = cap;
	}
	if ((kf->rc = gc_victims_add(&kf->found, h)) != 0)
		return false;
	kf->ids[kf->found.n - 1] = key_id;
	return true;
}

static int keyfill_apply(struct catalog *cat, void *arg)
{
	const struct keyfill *kf = arg;
	int rc = 0;
	for (size_t i = 0; i < kf->found.n && rc == 0; i++)
		rc = catalog_chunk_set_key(cat, kf->found.hash[i], kf->ids[i]);
	return rc;
}

int repair_keys_fill(struct store *st)
{
	struct mirror *p = mirror_primary(st);
	struct keyfill kf = { .st = st, .buf = malloc(CHUNKFILE_MAX) };
	int rc = p && kf.buf ? catalog_chunks_unkeyed(p->cat, keyfill_one, &kf)
			     : p ? RTCMS_ENOMEM : RTCMS_EIO;

	if (rc == 0)
		rc = kf.rc;
	if (rc == 0 && kf.found.n) {
		rc = mirror_apply(st, keyfill_apply, &kf);
		if (rc == 0)
			store_log(st, LOG_INFO, "recorded the data key id of %zu chunk(s) "
				  "stored before key ids were kept", kf.found.n);
	}
	free(kf.found.hash);
	free(kf.ids);
	free(kf.buf);
	return rc;
}

/* ---- SCRUB ----------------------------------------------------------------- */

/* The chunk list a scrub verifies, pinned while it runs. */
struct scrub_list {
	struct store *st;
	uint8_t (*hashes)[PROTO_HASH_SIZE];
	uint32_t *sizes;
	size_t n, cap;
	int rc;
};

static bool scrub_add(void *ctx, const uint8_t h[PROTO_HASH_SIZE], uint64_t size)
{
	struct scrub_list *l = ctx;
	if (l->n >= l->cap)
		return false;
	memcpy(l->hashes[l->n], h, PROTO_HASH_SIZE);
	l->sizes[l->n] = (uint32_t)size;
	if (pinset_add(&l->st->pins, h) != 0) {
		l->rc = RTCMS_ENOMEM;
		return false;
	}
	l->n++;
	return true;
}

/* Under st->mu: take offline mirrors back (repair), count, and snapshot
 * and pin the chunk list. 0 or a negative code. */
static int scrub_start(struct store *st, bool repair, struct proto_scrub_reply *r,
		       struct scrub_list *l)
{
	for (size_t i = 0; repair && i < st->n; i++)
		if (!st->m[i].online)
			mirror_revive(st, &st->m[i]);
	int rc = store_counts(st, r);
	if (rc)
		return rc;
	l->cap = (size_t)r->chunks + 1;
	l->hashes = malloc(l->cap * PROTO_HASH_SIZE);
	l->sizes = malloc(l->cap * sizeof(*l->sizes));
	if (!l->hashes || !l->sizes)
		return RTCMS_ENOMEM;
	rc = catalog_chunks_each(mirror_primary(st)->cat, scrub_add, l);
	return rc ? rc : l->rc;
}

/* Verify one chunk on every mirror (offline ones too) and, with repair,
 * rewrite its bad copies from the first good one. buf: CHUNKFILE_MAX. */
static void scrub_chunk(struct store *st, const uint8_t *h, uint32_t size, bool repair,
			uint8_t *buf, struct proto_scrub_reply *r)
{
	struct repair_target t[STORE_MAX_MIRRORS];
	size_t n = 0, len = 0;
	int good = -1;
	bool inl = false;

	if (size == 0 || size > PROTO_MAX_CHUNK)
		return;
	for (size_t i = 0; i < st->n; i++) {
		int res = mirror_chunk_read(st, &st->m[i], h, size, buf, &len, &inl);
		if (res == 0) {
			r->mirrors[i].chunks++;
			r->mirrors[i].bytes += size;
			if (good < 0)
				good = (int)i;
			continue;
		}
		if (res == RTCMS_ENOENT)
			r->mirrors[i].missing++;
		else
			r->mirrors[i].corrupt++;
		t[n++] = (struct repair_target){ &st->m[i], res, inl, 0 };
	}
	if (good < 0) {
		char hx[17];
		r->unrepairable++;
		store_log(st, LOG_ERROR, "scrub: chunk %s… has no good copy on any "
			  "mirror", store_hex(h, hx));
		return;
	}
	/* buf holds the last mirror's read: read the good copy again */
	if (!repair || n == 0 ||
	    mirror_chunk_read(st, &st->m[good], h, size, buf, &len, &inl) != 0)
		return;
	repair_chunk(st, h, buf, len, inl, t, n, NULL, "scrub: ", &st->m[good]);
	for (size_t k = 0; k < n; k++)
		if (t[k].rc == 0)
			r->mirrors[t[k].m - st->m].repaired++;
}

int store_scrub(struct store *st, bool repair, struct proto_scrub_reply *r)
{
	struct scrub_list l = { .st = st };
	uint8_t *buf = malloc(CHUNKFILE_MAX);
	int rc;

	if (!buf)
		return RTCMS_ENOMEM;
	/* Snapshot the chunk list, then verify without holding the mutex. A
	 * repairing scrub first tries to take offline mirrors back. */
	pthread_mutex_lock(&st->mu);
	rc = scrub_start(st, repair, r, &l);
	pthread_mutex_unlock(&st->mu);
	/* a mirror taken back finds its own chunks in its packs first */
	for (size_t i = 0; i < st->n && rc == 0; i++) {
		uint64_t found = 0;
		if (st->m[i].online && st->m[i].pk.stale &&
		    pack_reindex(st, &st->m[i], &found) == 0 && found)
			store_log(st, LOG_WARN, "mirror %s: found %" PRIu64 " chunk(s) again "
				  "in its packs", st->m[i].path, found);
	}
	for (size_t k = 0; k < l.n && rc == 0; k++)
		scrub_chunk(st, l.hashes[k], l.sizes[k], repair, buf, r);
	pthread_mutex_lock(&st->mu);
	for (size_t k = 0; k < l.n; k++)
		pinset_del(&st->pins, l.hashes[k]);
	gc_deferred(st);
	pthread_mutex_unlock(&st->mu);
	free(l.hashes);
	free(l.sizes);
	free(buf);
	return rc;
}
