/*
 * gc.c - garbage collection and retention: which checkpoints a process
 * keeps, DELETE, and removing the copies nothing references (never one an
 * open PUT, GET or scrub pins: those wait on st->deferred), the sweep of
 * leftovers at open, and the compaction pass that reclaims the packs'
 * dead records (store_compact).
 *
 * An inline copy and a chunk's place in a pack live in each mirror's
 * meta.db: the transaction that drops a chunk's last reference removes
 * them on every mirror, unless the chunk is pinned (a GET or scrub is
 * about to read it); then they stay until the pin goes (gc_deferred), or
 * the sweep at the next start. A record whose place went is dead bytes in
 * its pack until compaction; chunk files (the layout before packs) are
 * unlinked after the commit.
 */
#include "store_int.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "log/log.h"
#include "rtcms_error.h"

/* Checkpoints retention removes in one PUT's transaction at most (the
 * rest goes with the next PUTs): bounds the time the mutex is held. */
#define RETAIN_BATCH 256

int gc_victims_add(struct victim_list *v, const uint8_t *h)
{
	if (v->n == v->cap) {
		size_t cap = v->cap ? v->cap * 2 : 64;
		void *p = realloc(v->hash, cap * PROTO_HASH_SIZE);
		if (!p)
			return RTCMS_ENOMEM;
		v->hash = p;
		v->cap = cap;
	}
	memcpy(v->hash[v->n++], h, PROTO_HASH_SIZE);
	return 0;
}

int gc_victim_unref(void *ctx, const uint8_t hash[PROTO_HASH_SIZE])
{
	return gc_victims_add(ctx, hash);
}

/* A catalog_unref's keep_copies: the chunk is pinned (ctx: the store). */
static bool gc_keep_copies(void *ctx, const uint8_t hash[PROTO_HASH_SIZE])
{
	const struct store *st = ctx;
	return pinset_has(&st->pins, hash);
}

void gc_unref_init(struct store *st, struct victim_list *gc, struct catalog_unref *u)
{
	*u = (struct catalog_unref){ gc ? gc_victim_unref : NULL, gc, gc_keep_copies, st };
}

void gc_files(struct store *st, struct victim_list *gc, int committed)
{
	/* the places went with the transaction: their records are dead */
	if (committed && gc->n)
		atomic_store(&st->compact_due, true);
	for (size_t k = 0; committed && k < gc->n; k++) {
		if (pinset_has(&st->pins, gc->hash[k])) {
			/* in use by an open PUT, GET or scrub: look again
			 * when it lets go (the list is best effort: what it
			 * cannot hold is swept at the next start) */
			gc_victims_add(&st->deferred, gc->hash[k]);
			continue;
		}
		mirror_chunk_remove_all(st, gc->hash[k]);
	}
	free(gc->hash);
	gc->hash = NULL;
	gc->n = gc->cap = 0;
}

void gc_unreferenced(struct store *st, const uint8_t (*hash)[PROTO_HASH_SIZE], size_t n)
{
	struct mirror *p = mirror_primary(st);

	for (size_t k = 0; p && k < n; k++) {
		bool known;
		/* a chunk whose reference cannot be looked up is kept */
		if (!pinset_has(&st->pins, hash[k]) &&
		    catalog_chunk_known(p->cat, hash[k], &known) == 0 && !known)
			mirror_chunk_drop_all(st, hash[k]);
	}
}

void gc_deferred(struct store *st)
{
	struct victim_list *d = &st->deferred;
	size_t keep = 0;

	if (d->n == 0)
		return;
	/* partition: still pinned first, the others after them */
	for (size_t k = 0; k < d->n; k++) {
		if (!pinset_has(&st->pins, d->hash[k]))
			continue;
		if (keep != k) {
			uint8_t t[PROTO_HASH_SIZE];
			memcpy(t, d->hash[keep], PROTO_HASH_SIZE);
			memcpy(d->hash[keep], d->hash[k], PROTO_HASH_SIZE);
			memcpy(d->hash[k], t, PROTO_HASH_SIZE);
		}
		keep++;
	}
	gc_unreferenced(st, (const uint8_t (*)[PROTO_HASH_SIZE])(d->hash + keep),
			d->n - keep);
	d->n = keep;
}

/*
 * The checkpoints that are not kept are closed under "is a delta against":
 * a delta against one of them is not kept either (else they would be). A
 * delta has a higher sequence than its base in the same incarnation, so,
 * walking the candidates from the newest down, every delta against a
 * candidate was decided before it: a candidate still depended on when its
 * turn comes is needed by a kept checkpoint, one depended on by nothing is
 * not, and deleting it may free its base further down.
 */
int gc_retention(struct store *st, struct catalog *cat, const char *process,
		 unsigned retain, struct victim_list *gc, uint32_t *deleted)
{
	struct ckpt_key *old = NULL;
	struct catalog_unref u;
	size_t n = 0;
	struct proc_row r;
	int rc;

	gc_unref_init(st, gc, &u);
	*deleted = 0;
	if (catalog_proc_load(cat, process, &r) != 0)
		return RTCMS_EIO;
	rc = catalog_ckpt_older(cat, process, retain, &old, &n);
	for (size_t i = 0; i < n && rc == 0 && *deleted < RETAIN_BATCH; i++) {
		if (claim_pins(&r, old[i].inc, old[i].seq))
			continue;
		bool base;
		rc = catalog_ckpt_has_dependent(cat, process, old[i].inc, old[i].seq, &base,
						NULL);
		if (rc == 0 && base)
			continue; /* the base of a kept checkpoint */
		if (rc == 0)
			rc = catalog_ckpt_delete(cat, process, old[i].inc, old[i].seq, &u);
		if (rc == 0)
			(*deleted)++;
	}
	free(old);
	return rc;
}

/* ---- DELETE --------------------------------------------------------------- */

struct delete_args {
	struct store *st;
	const char *process;
	uint64_t inc, seq;
	struct victim_list *gc;
	int first;
	uint64_t dependent;           /* EBUSY: a delta against the one asked */
};

static int delete_apply(struct catalog *cat, void *arg)
{
	struct delete_args *a = arg;
	struct proc_row r;
	struct ckpt_key *list = NULL;
	struct catalog_unref u;
	size_t n = 0;
	int rc;

	gc_unref_init(a->st, a->first ? a->gc : NULL, &u);
	if (catalog_proc_load(cat, a->process, &r) != 0)
		return RTCMS_EIO;
	rc = catalog_ckpt_select(cat, a->process, a->inc, a->seq, &list, &n);
	if (rc == 0 && n == 0)
		rc = RTCMS_ENOENT;
	for (size_t i = 0; i < n && rc == 0; i++)
		if (claim_pins(&r, list[i].inc, list[i].seq))
			rc = RTCMS_ECLAIMED;
	/* one checkpoint alone: not while a remaining one is a delta against
	 * it (a whole process goes with its chains) */
	if (rc == 0 && a->seq) {
		bool base;
		rc = catalog_ckpt_has_dependent(cat, a->process, a->inc, a->seq, &base,
						&a->dependent);
		if (rc == 0 && base)
			rc = RTCMS_EBUSY;
	}
	for (size_t i = 0; i < n && rc == 0; i++)
		rc = catalog_ckpt_delete(cat, a->process, list[i].inc, list[i].seq, &u);
	free(list);
	/* the whole process went: a program run again under its id starts
	 * with no give-up behind it */
	if (rc == 0 && !a->seq)
		rc = catalog_proc_gave_up(cat, a->process, 0);
	a->first = 0;
	return rc == 0 ? (int)n : rc;
}

int store_delete(struct store *st, const char *process, uint64_t incarnation,
		 uint64_t sequence)
{
	struct victim_list gc = { 0 };
	struct delete_args a = { st, process, incarnation, sequence, &gc, 1, 0 };

	if (!proto_process_id_valid(process) || (incarnation == 0) != (sequence == 0))
		return RTCMS_EINVAL;
	pthread_mutex_lock(&st->mu);
	int rc = mirror_apply(st, delete_apply, &a);
	if (rc == RTCMS_EBUSY)
		store_log(st, LOG_INFO, "DELETE %s %" PRIu64 "/%" PRIu64 " refused: "
			  "sequence %" PRIu64 " is a delta against it", process,
			  incarnation, sequence, a.dependent);
	gc_files(st, &gc, rc >= 0);
	pthread_mutex_unlock(&st->mu);
	return rc;
}

/* ---- the sweep at open ---------------------------------------------------- */

static bool sweep_keep(void *ctx, const uint8_t *hash)
{
	bool known;
	/* a chunk whose reference cannot be looked up is kept */
	return catalog_chunk_known(ctx, hash, &known) != 0 || known;
}

void gc_sweep_orphans(struct store *st, struct mirror *m)
{
	struct mirror *p = mirror_primary(st);
	uint64_t removed = m->be->sweep(m->be_state, sweep_keep, p->cat);
	int dropped = m->cat ? catalog_inline_sweep(m->cat) : 0;
	int places = m->cat ? catalog_locs_sweep(m->cat) : 0;

	if (dropped > 0)
		removed += (uint64_t)dropped;
	if (places > 0)
		removed += (uint64_t)places;
	if (removed)
		store_log(st, LOG_INFO, "mirror %s: removed %" PRIu64 " unreferenced "
			  "or temporary file(s), inline chunk(s) or places left by an "
			  "interrupted run", m->path, removed);
}

void gc_sweep_packs(struct store *st, struct mirror *m)
{
	uint64_t removed = pack_sweep(st, m);
	if (removed)
		store_log(st, LOG_INFO, "mirror %s: removed %" PRIu64 " pack(s) no chunk "
			  "is placed in", m->path, removed);
	/* packs with dead records from before: the first pass looks */
	atomic_store(&st->compact_due, true);
}

/* ---- compaction ------------------------------------------------------------ */

bool store_compact_due(struct store *st)
{
	return atomic_load(&st->compact_due);
}

int store_compact(struct store *st, struct store_compact_stats *out)
{
	struct store_compact_stats sum = { 0 };
	bool more = false;
	int rc = 0;

	pthread_mutex_lock(&st->mu);
	bool running = st->compacting;
	st->compacting = true;
	pthread_mutex_unlock(&st->mu);
	if (out)
		*out = sum;
	if (running)
		return 0;
	atomic_store(&st->compact_due, false);
	for (size_t i = 0; i < st->n && rc == 0; i++) {
		struct pack_compact_stats s;
		rc = pack_compact(st, &st->m[i], &s);
		sum.removed += s.removed;
		sum.compacted += s.compacted;
		sum.moved += s.moved;
		sum.reclaimed += s.reclaimed;
		more |= s.more;
		if (rc)
			store_log(st, LOG_WARN, "mirror %s: compacting its packs stopped: %s",
				  st->m[i].path, rtcms_strerror(rc));
	}
	/* work left (not a failure: that waits for the next collection) */
	if (more)
		atomic_store(&st->compact_due, true);
	if (sum.removed)
		store_log(st, LOG_INFO, "compaction: %u pack(s) removed (%u after copying "
			  "%" PRIu64 " live record(s)), %" PRIu64 " bytes reclaimed",
			  sum.removed, sum.compacted, sum.moved, sum.reclaimed);
	pthread_mutex_lock(&st->mu);
	st->compacting = false;
	pthread_mutex_unlock(&st->mu);
	if (out)
		*out = sum;
	return rc;
}
