/*
 * pack.c - a mirror's packs: reserved appends, flushes, reads by place,
 * batches, compaction, re-index and the sweep at open (see pack.h).
 */
#include "store_int.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log/log.h"
#include "rtcms_error.h"

/* A pack being written, or waiting for its last writes' flush or for the
 * commit of a batch's records in it. */
struct pack_open {
	uint64_t id;
	int fd;
	uint64_t end;                 /* where the next record goes */
	uint32_t refs;                /* writes and flushes using fd now */
	uint32_t holds;               /* batch records not committed yet */
	uint64_t wgen, sgen;          /* writes finished; of them, flushed */
	bool named;                   /* the packs directory flushed since */
	bool full;                    /* takes no more records */
};

/* ---- the pack ids in a mirror's directory ---------------------------------- */

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

/* The ids of the packs in dir, ascending, into *ids (malloc'ed; NULL when
 * none). 0, RTCMS_ENOMEM (no directory is no pack). */
static int pack_ids(const char *dir, uint64_t **ids, size_t *n)
{
	char path[4200];
	uint64_t *v = NULL;
	size_t cap = 0;
	struct dirent *e;
	int rc = 0;

	*ids = NULL;
	*n = 0;
	snprintf(path, sizeof(path), "%s/packs", dir);
	/* open + fdopendir, not opendir: this runs on the pool while the loop
	 * accepts and closes sockets, and GCC 12's libtsan does not see
	 * opendir() make a descriptor, so it would take closedir() for a
	 * race with the socket that last had the same number */
	int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
	if (!d) {
		if (fd >= 0)
			close(fd);
		return 0;
	}
	while ((e = readdir(d)) != NULL) {
		uint64_t id;
		if (packfile_parse_name(e->d_name, &id) != 0)
			continue;
		if (*n == cap) {
			size_t ncap = cap ? cap * 2 : 64;
			void *p = realloc(v, ncap * sizeof(*v));
			if (!p) {
				rc = RTCMS_ENOMEM;
				break;
			}
			v = p;
			cap = ncap;
		}
		v[(*n)++] = id;
	}
	closedir(d);
	if (rc) {
		free(v);
		*n = 0;
		return rc;
	}
	if (*n)
		qsort(v, *n, sizeof(*v), cmp_u64);
	*ids = v;
	return 0;
}

bool pack_any(const char *dir)
{
	uint64_t *ids;
	size_t n;
	bool any = pack_ids(dir, &ids, &n) == 0 && n > 0;
	free(ids);
	return any;
}

/* Raise m's next id past every pack in its directory and every one its
 * meta.db names. */
static void next_id_raise(struct mirror *m, const uint64_t *ids, size_t n)
{
	uint64_t max = 0;
	if (n && ids[n - 1] > max)
		max = ids[n - 1];
	if (m->cat && catalog_pack_max(m->cat, &max) == 0 && n && ids[n - 1] > max)
		max = ids[n - 1];
	if (max + 1 > m->pk.next_id)
		m->pk.next_id = max + 1;
}

int pack_init(struct store *st, struct mirror *m, uint64_t limit)
{
	uint64_t *ids;
	size_t n;
	int rc = pack_ids(m->path, &ids, &n);

	(void)st;
	m->pk.limit = limit ? limit : PACK_SIZE_DEFAULT;
	if (m->pk.next_id == 0)
		m->pk.next_id = 1;
	if (rc == 0)
		next_id_raise(m, ids, n);
	free(ids);
	return rc;
}

void pack_fini(struct mirror *m)
{
	for (size_t i = 0; i < m->pk.nopen; i++) {
		close(m->pk.open[i]->fd);
		free(m->pk.open[i]);
	}
	free(m->pk.open);
	m->pk.open = NULL;
	m->pk.nopen = m->pk.cap = 0;
}

/* ---- writing ------------------------------------------------------------- */

/* Close the packs that are done: full, unused, flushed, nothing held. */
static void close_idle(struct mirror *m)
{
	size_t k = 0;
	for (size_t i = 0; i < m->pk.nopen; i++) {
		struct pack_open *po = m->pk.open[i];
		if (po->full && !po->refs && !po->holds && po->sgen == po->wgen) {
			close(po->fd);
			free(po);
			continue;
		}
		m->pk.open[k++] = po;
	}
	m->pk.nopen = k;
}

static bool is_stuck(const struct mirror *m, uint64_t id)
{
	for (size_t i = 0; i < m->pk.nstuck; i++)
		if (m->pk.stuck[i] == id)
			return true;
	return false;
}

/* Under st->mu: remember a pack a compaction could not empty. */
static void stuck_add(struct mirror *m, uint64_t id)
{
	if (m->pk.nstuck == PACK_STUCK_MAX) {
		memmove(m->pk.stuck, m->pk.stuck + 1, (PACK_STUCK_MAX - 1) * sizeof(uint64_t));
		m->pk.nstuck--;
	}
	m->pk.stuck[m->pk.nstuck++] = id;
}

static bool is_open(const struct mirror *m, uint64_t id)
{
	for (size_t i = 0; i < m->pk.nopen; i++)
		if (m->pk.open[i]->id == id)
			return true;
	return false;
}

/* Begin a pack on m: the new write pack. */
static int pack_begin(struct store *st, struct mirror *m, struct pack_open **out)
{
	struct pack_open *po;
	int rc;

	if (m->pk.nopen == m->pk.cap) {
		size_t cap = m->pk.cap ? m->pk.cap * 2 : 4;
		void *p = realloc(m->pk.open, cap * sizeof(*m->pk.open));
		if (!p)
			return RTCMS_ENOMEM;
		m->pk.open = p;
		m->pk.cap = cap;
	}
	if (!(po = calloc(1, sizeof(*po))))
		return RTCMS_ENOMEM;
	/* an id once tried is never tried again */
	po->id = m->pk.next_id++;
	if ((rc = packfile_create(m->path, po->id, &po->fd)) != 0) {
		store_log(st, LOG_ERROR, "mirror %s: cannot begin pack %016" PRIx64 ": %s",
			  m->path, po->id, rtcms_strerror(rc));
		free(po);
		return rc;
	}
	po->end = PACKFILE_HDR;
	/* its header is a write to flush, with its name */
	po->wgen = 1;
	m->pk.open[m->pk.nopen++] = po;
	*out = po;
	return 0;
}

int pack_reserve(struct store *st, struct mirror *m, size_t len, struct pack_slot *slot)
{
	uint64_t rl = packfile_rec_len(len);
	struct pack_open *po = m->pk.nopen ? m->pk.open[m->pk.nopen - 1] : NULL;
	int rc;

	if (po && !po->full && po->end + rl > m->pk.limit && po->end > PACKFILE_HDR) {
		/* a record larger than the limit still goes into a pack of
		 * its own */
		po->full = true;
		close_idle(m);
	}
	po = m->pk.nopen ? m->pk.open[m->pk.nopen - 1] : NULL;
	if ((!po || po->full) && (rc = pack_begin(st, m, &po)) != 0)
		return rc;
	slot->po = po;
	slot->fd = po->fd;
	slot->loc = (struct chunk_loc){ po->id, po->end, (uint32_t)len };
	po->end += rl;
	po->refs++;
	return 0;
}

int pack_write(const struct mirror *m, const struct pack_slot *slot,
	       const uint8_t hash[PROTO_HASH_SIZE], const struct chunkfile_enc *enc)
{
	return packfile_append(m->path, slot->fd, slot->loc.off, hash, enc);
}

void pack_done(struct mirror *m, const struct pack_slot *slot, int rc, bool hold)
{
	struct pack_open *po = slot->po;

	po->refs--;
	if (rc == 0) {
		po->wgen++;
		po->holds += hold ? 1 : 0;
	} else {
		/* the place stays a hole (dead bytes); the next record
		 * begins a pack, so a hole ends a pack */
		po->full = true;
	}
	close_idle(m);
}

void pack_release(struct mirror *m, struct pack_open *po)
{
	po->holds--;
	close_idle(m);
}

/* One pack to flush. */
struct flush_job {
	struct pack_open *po;
	uint64_t gen;
};

int pack_flush(struct store *st, struct mirror *m)
{
	struct flush_job *jobs;
	size_t n = 0;
	bool name = false;
	int rc = 0;

	pthread_mutex_lock(&st->mu);
	jobs = m->pk.nopen ? malloc(m->pk.nopen * sizeof(*jobs)) : NULL;
	if (m->pk.nopen && !jobs)
		rc = RTCMS_ENOMEM;
	for (size_t i = 0; jobs && i < m->pk.nopen; i++) {
		struct pack_open *po = m->pk.open[i];
		if (po->sgen == po->wgen)
			continue;
		po->refs++;
		name |= !po->named;
		jobs[n++] = (struct flush_job){ po, po->wgen };
	}
	pthread_mutex_unlock(&st->mu);
	/* every pack's name first, then each pack's data: each write that
	 * finished before now is durable when this returns 0 */
	if (rc == 0 && name)
		rc = packfile_dir_sync(m->path);
	for (size_t i = 0; i < n && rc == 0; i++) {
		struct stat sb;
		rc = packfile_sync(m->path, jobs[i].po->fd);
		/* a pack unlinked behind the store's back keeps nothing */
		if (rc == 0 && (fstat(jobs[i].po->fd, &sb) != 0 || sb.st_nlink == 0)) {
			store_log(st, LOG_ERROR, "mirror %s: pack %016" PRIx64 " was removed "
				  "while written", m->path, jobs[i].po->id);
			jobs[i].gen = 0;
			rc = RTCMS_EIO;
		}
	}
	pthread_mutex_lock(&st->mu);
	for (size_t i = 0; i < n; i++) {
		struct pack_open *po = jobs[i].po;
		po->refs--;
		if (jobs[i].gen == 0) {
			/* lost: nothing more to flush in it, nothing goes into it */
			po->full = true;
			po->sgen = po->wgen;
		} else if (rc == 0) {
			po->named = true;
			if (jobs[i].gen > po->sgen)
				po->sgen = jobs[i].gen;
		}
	}
	close_idle(m);
	pthread_mutex_unlock(&st->mu);
	free(jobs);
	return rc;
}

void pack_gone(struct mirror *m, uint64_t id)
{
	for (size_t i = 0; i < m->pk.nopen; i++)
		if (m->pk.open[i]->id == id)
			m->pk.open[i]->full = true;
	close_idle(m);
}

/* ---- reading ---------------------------------------------------------------- */

int pack_read(const struct mirror *m, const struct chunk_loc *loc,
	      const uint8_t hash[PROTO_HASH_SIZE], size_t size, uint8_t *buf, size_t *len)
{
	int fd, rc = packfile_open(m->path, loc->pack, &fd);

	*len = 0;
	if (rc)
		return rc;
	rc = packfile_read(fd, loc->off, loc->len, hash, size, buf, len);
	close(fd);
	return rc;
}

bool pack_present(const struct mirror *m, const struct chunk_loc *loc)
{
	char path[4200];
	struct stat sb;

	packfile_path(m->path, loc->pack, path, sizeof(path));
	return stat(path, &sb) == 0 && S_ISREG(sb.st_mode) &&
	       (uint64_t)sb.st_size >= loc->off + packfile_rec_len(loc->len);
}

/* ---- batches -------------------------------------------------------------- */

int pack_batch_add(struct store *st, struct pack_batch *b,
		   const uint8_t hash[PROTO_HASH_SIZE], const struct chunkfile_enc *enc,
		   const struct chunk_loc *from)
{
	struct pack_slot slot;
	int rc;

	if (b->n == b->cap) {
		size_t cap = b->cap ? b->cap * 2 : 64;
		void *p = realloc(b->r, cap * sizeof(*b->r));
		if (!p)
			return RTCMS_ENOMEM;
		b->r = p;
		b->cap = cap;
	}
	pthread_mutex_lock(&st->mu);
	rc = pack_reserve(st, b->m, enc->head_len + enc->len, &slot);
	pthread_mutex_unlock(&st->mu);
	if (rc)
		return rc;
	rc = pack_write(b->m, &slot, hash, enc);
	pthread_mutex_lock(&st->mu);
	pack_done(b->m, &slot, rc, rc == 0);
	pthread_mutex_unlock(&st->mu);
	if (rc)
		return rc;
	struct pack_batch_rec *r = &b->r[b->n++];
	memcpy(r->hash, hash, PROTO_HASH_SIZE);
	r->loc = slot.loc;
	r->from = from ? *from : (struct chunk_loc){ 0, 0, 0 };
	r->po = slot.po;
	return 0;
}

/* Under st->mu: commit b's places in one transaction of its mirror's
 * meta.db; *done counts them. 0 or RTCMS_EIO. */
static int batch_apply(struct pack_batch *b, size_t *done)
{
	struct catalog *cat = b->m->cat;
	int rc = 0;

	if (!b->m->online || !cat || catalog_begin(cat) != 0)
		return RTCMS_EIO;
	for (size_t i = 0; i < b->n && rc == 0; i++) {
		bool moved = true;
		rc = b->move ? catalog_loc_move(cat, b->r[i].hash, &b->r[i].from, &b->r[i].loc,
						&moved)
			     : catalog_loc_set(cat, b->r[i].hash, &b->r[i].loc);
		*done += rc == 0 && moved ? 1 : 0;
	}
	if (rc == 0)
		rc = store_fault("meta_commit", b->m->path);
	if (rc == 0)
		rc = catalog_commit(cat);
	if (rc) {
		catalog_rollback(cat);
		*done = 0;
		return RTCMS_EIO;
	}
	return 0;
}

int pack_batch_commit(struct store *st, struct pack_batch *b, size_t *done)
{
	size_t k = 0;
	int rc = b->n ? pack_flush(st, b->m) : 0;

	pthread_mutex_lock(&st->mu);
	if (rc == 0 && b->n)
		rc = batch_apply(b, &k);
	for (size_t i = 0; i < b->n; i++)
		pack_release(b->m, b->r[i].po);
	b->n = 0;
	pthread_mutex_unlock(&st->mu);
	if (done)
		*done = k;
	return rc;
}

void pack_batch_free(struct store *st, struct pack_batch *b)
{
	pthread_mutex_lock(&st->mu);
	for (size_t i = 0; i < b->n; i++)
		pack_release(b->m, b->r[i].po);
	pthread_mutex_unlock(&st->mu);
	free(b->r);
	b->r = NULL;
	b->n = b->cap = 0;
}

/* ---- compaction ------------------------------------------------------------ */

/* Take m for maintenance (compaction, re-index): false if it is taken. */
static bool maint_begin(struct store *st, struct mirror *m)
{
	pthread_mutex_lock(&st->mu);
	bool ok = !m->pk.busy;
	m->pk.busy = true;
	pthread_mutex_unlock(&st->mu);
	return ok;
}

static void maint_end(struct store *st, struct mirror *m)
{
	pthread_mutex_lock(&st->mu);
	m->pk.busy = false;
	pthread_mutex_unlock(&st->mu);
}

/* Unlink pack id (no place points into it) and forget it. */
static void pack_remove(struct store *st, struct mirror *m, uint64_t id, uint64_t size,
			struct pack_compact_stats *out)
{
	char path[4200];

	packfile_path(m->path, id, path, sizeof(path));
	if (unlink(path) != 0 && errno != ENOENT) {
		store_log(st, LOG_WARN, "mirror %s: cannot remove pack %016" PRIx64 ": %s",
			  m->path, id, strerror(errno));
		return;
	}
	pthread_mutex_lock(&st->mu);
	if (m->cat)
		catalog_pack_forget(m->cat, id);
	pthread_mutex_unlock(&st->mu);
	out->removed++;
	out->reclaimed += size;
}

/* Copy the live records of pack id to the write pack and move their
 * places; the pack goes if nothing points into it afterwards. buf, raw:
 * CHUNKFILE_MAX bytes each. */
static int pack_copy(struct store *st, struct mirror *m, uint64_t id, uint64_t size,
		     uint8_t *buf, uint8_t *raw, struct pack_compact_stats *out)
{
	struct pack_batch b = { m, true, NULL, 0, 0 };
	struct chunk_rec *recs = NULL;
	uint64_t left = 0, bytes;
	size_t n = 0, moved = 0, len;
	char hx[17];
	int fd = -1, rc;

	pthread_mutex_lock(&st->mu);
	rc = m->cat ? catalog_pack_locs(m->cat, id, &recs, &n) : RTCMS_EIO;
	pthread_mutex_unlock(&st->mu);
	if (rc == 0)
		rc = packfile_open(m->path, id, &fd);
	for (size_t i = 0; i < n && rc == 0; i++) {
		struct chunk_rec *r = &recs[i];
		/* an unreferenced chunk (pinned: it goes with its pin) stays */
		if (r->size == 0)
			continue;
		/* copied as it is stored (compressed stays compressed), once
		 * it is found good */
		if (packfile_read(fd, r->loc.off, r->loc.len, r->hash, r->size, buf, &len) != 0 ||
		    pread(fd, raw, r->loc.len, (off_t)(r->loc.off + PACKFILE_RHDR)) !=
			    (ssize_t)r->loc.len) {
			store_log(st, LOG_WARN, "mirror %s: pack %016" PRIx64 ": chunk %s… at "
				  "offset %" PRIu64 " is damaged; it stays until a read or a "
				  "scrub repairs it", m->path, id, store_hex(r->hash, hx),
				  r->loc.off);
			continue;
		}
		struct chunkfile_enc enc = { raw, r->loc.len, r->size, NULL, NULL, 0 };
		rc = pack_batch_add(st, &b, r->hash, &enc, &r->loc);
	}
	if (fd >= 0)
		close(fd);
	free(recs);
	if (rc == 0)
		rc = pack_batch_commit(st, &b, &moved);
	pack_batch_free(st, &b);
	out->moved += moved;
	if (rc)
		return rc;
	pthread_mutex_lock(&st->mu);
	rc = m->cat ? catalog_pack_usage(m->cat, id, &left, &bytes) : RTCMS_EIO;
	if (rc == 0 && left)
		stuck_add(m, id);
	pthread_mutex_unlock(&st->mu);
	if (rc == 0 && left == 0) {
		pack_remove(st, m, id, size, out);
		out->compacted++;
	}
	return rc;
}

int pack_compact(struct store *st, struct mirror *m, struct pack_compact_stats *out)
{
	uint8_t *buf = NULL, *raw = NULL;
	uint64_t *ids = NULL;
	size_t n = 0, copied = 0;
	int rc;

	memset(out, 0, sizeof(*out));
	if (!maint_begin(st, m))
		return 0;
	rc = pack_ids(m->path, &ids, &n);
	for (size_t i = 0; i < n && rc == 0; i++) {
		char path[4200];
		uint64_t records = 0, bytes = 0;
		bool skip, stuck, pend = false;
		struct stat sb;

		/* only closed packs without pending places: nothing
		 * writes to them, nothing will point into them anew */
		pthread_mutex_lock(&st->mu);
		skip = !m->online || !m->cat || is_open(m, ids[i]) ||
		       catalog_pending_in(m->cat, ids[i], &pend) != 0 || pend ||
		       catalog_pack_usage(m->cat, ids[i], &records, &bytes) != 0;
		bool online = m->online;
		stuck = is_stuck(m, ids[i]);
		pthread_mutex_unlock(&st->mu);
		if (!online)
			break;
		packfile_path(m->path, ids[i], path, sizeof(path));
		if (skip || stat(path, &sb) != 0)
			continue;
		uint64_t live = bytes + records * PACKFILE_RHDR, fsize = (uint64_t)sb.st_size;
		if (records == 0) {
			pack_remove(st, m, ids[i], fsize, out);
			continue;
		}
		if (live * PACK_COMPACT_RATIO >= fsize || stuck)
			continue;
		if (copied == PACK_COMPACT_PASS) {
			out->more = true;
			continue;
		}
		if (!buf && (!(buf = malloc(CHUNKFILE_MAX)) || !(raw = malloc(CHUNKFILE_MAX)))) {
			rc = RTCMS_ENOMEM;
			break;
		}
		copied++;
		rc = pack_copy(st, m, ids[i], fsize, buf, raw, out);
	}
	maint_end(st, m);
	free(ids);
	free(buf);
	free(raw);
	return rc;
}

/* ---- re-index --------------------------------------------------------------- */

/* A record a scan found; dup: its chunk has a place already. */
struct scan_rec {
	struct chunk_rec r;
	bool dup;
};

/* One pack's records, as its scan found them. */
struct scan_list {
	struct scan_rec *r;
	size_t n, cap;
	uint64_t pack;
	int rc;
};

static bool scan_add(void *ctx, const uint8_t hash[PROTO_HASH_SIZE], uint64_t off, uint32_t n)
{
	struct scan_list *l = ctx;
	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 256;
		void *p = realloc(l->r, cap * sizeof(*l->r));
		if (!p) {
			l->rc = RTCMS_ENOMEM;
			return false;
		}
		l->r = p;
		l->cap = cap;
	}
	struct scan_rec *r = &l->r[l->n++];
	memcpy(r->r.hash, hash, PROTO_HASH_SIZE);
	r->r.loc = (struct chunk_loc){ l->pack, off, n };
	r->r.size = 0;
	r->dup = false;
	return true;
}

/* By chunk, then by offset. */
static int cmp_scan(const void *a, const void *b)
{
	const struct scan_rec *x = a, *y = b;
	int c = memcmp(x->r.hash, y->r.hash, PROTO_HASH_SIZE);
	return c ? c : x->r.loc.off < y->r.loc.off ? -1 : x->r.loc.off > y->r.loc.off;
}

/* Under st->mu: set the places of l's records in one transaction. */
static int reindex_apply(struct catalog *cat, const struct scan_list *l)
{
	int rc = catalog_begin(cat);
	for (size_t i = 0; i < l->n && rc == 0; i++)
		rc = catalog_loc_set(cat, l->r[i].r.hash, &l->r[i].r.loc);
	if (rc == 0)
		rc = catalog_commit(cat);
	if (rc)
		catalog_rollback(cat);
	return rc;
}

/*
 * Record the places of one scanned pack (ascending order: a later record
 * of a chunk is a newer copy: a repair's or a compaction's). A chunk
 * nothing references is left out; a chunk placed already (by an earlier
 * record) moves to this record only if this one reads good.
 */
static int reindex_pack(struct store *st, struct mirror *m, struct scan_list *l, int fd,
			uint8_t *buf, uint64_t *found)
{
	size_t len, k = 0, keep = 0;
	int rc = 0;

	/* 1. which records matter (under the lock: the catalog); copies of
	 * one chunk next to each other, the pack's first one first */
	if (l->n > 1)
		qsort(l->r, l->n, sizeof(*l->r), cmp_scan);
	pthread_mutex_lock(&st->mu);
	for (size_t i = 0; i < l->n && rc == 0; i++) {
		struct scan_rec *r = &l->r[i];
		struct chunk_loc old;
		uint64_t size;
		rc = catalog_chunk_size(m->cat, r->r.hash, &size);
		if (rc == 0 && size)
			rc = catalog_loc_get(m->cat, r->r.hash, &old, &r->dup);
		if (rc || !size)
			continue;
		r->r.size = (uint32_t)size;
		r->dup |= k > 0 && memcmp(l->r[k - 1].r.hash, r->r.hash, PROTO_HASH_SIZE) == 0;
		l->r[k++] = *r;
	}
	pthread_mutex_unlock(&st->mu);
	/* 2. a second copy of a chunk replaces the first only if it is good */
	for (size_t i = 0; i < k && rc == 0; i++) {
		const struct chunk_rec *r = &l->r[i].r;
		if (l->r[i].dup && packfile_read(fd, r->loc.off, r->loc.len, r->hash, r->size,
						 buf, &len) != 0)
			continue;
		l->r[keep++] = l->r[i];
	}
	l->n = keep;
	/* 3. one transaction for the pack */
	pthread_mutex_lock(&st->mu);
	if (rc == 0 && keep)
		rc = reindex_apply(m->cat, l);
	pthread_mutex_unlock(&st->mu);
	if (rc == 0)
		*found += keep;
	return rc;
}

int pack_reindex(struct store *st, struct mirror *m, uint64_t *found)
{
	struct scan_list l = { NULL, 0, 0, 0, 0 };
	uint8_t *buf = malloc(CHUNKFILE_MAX);
	uint64_t *ids = NULL;
	size_t n = 0;
	int rc;

	*found = 0;
	if (!buf)
		return RTCMS_ENOMEM;
	if (!maint_begin(st, m)) {
		free(buf);
		return RTCMS_EBUSY;
	}
	rc = pack_ids(m->path, &ids, &n);
	pthread_mutex_lock(&st->mu);
	if (rc == 0)
		rc = m->cat ? catalog_locs_clear(m->cat) : RTCMS_EIO;
	if (rc == 0) {
		next_id_raise(m, ids, n);
		m->pk.stale = false;
	}
	pthread_mutex_unlock(&st->mu);
	for (size_t i = 0; i < n && rc == 0; i++) {
		struct stat sb;
		int fd;
		if (packfile_open(m->path, ids[i], &fd) != 0)
			continue;
		l.n = 0;
		l.pack = ids[i];
		l.rc = 0;
		rc = fstat(fd, &sb) == 0 ? packfile_scan(fd, (uint64_t)sb.st_size, scan_add, &l)
					 : RTCMS_EIO;
		if (rc == RTCMS_ECORRUPT) {
			store_log(st, LOG_WARN, "mirror %s: %016" PRIx64 ".pack is not a pack; "
				  "left alone", m->path, ids[i]);
			rc = 0;
		} else if (rc == 0 && (rc = l.rc) == 0) {
			rc = reindex_pack(st, m, &l, fd, buf, found);
		}
		close(fd);
	}
	maint_end(st, m);
	free(l.r);
	free(ids);
	free(buf);
	return rc;
}

/* ---- the sweep at open ------------------------------------------------------ */

uint64_t pack_sweep(struct store *st, struct mirror *m)
{
	struct pack_compact_stats s = { 0 };
	uint64_t *ids;
	size_t n;

	if (pack_ids(m->path, &ids, &n) != 0)
		return 0;
	for (size_t i = 0; i < n; i++) {
		char path[4200];
		uint64_t records = 1, bytes;
		struct stat sb;
		pthread_mutex_lock(&st->mu);
		bool idle = m->cat && !is_open(m, ids[i]) &&
			    catalog_pack_usage(m->cat, ids[i], &records, &bytes) == 0;
		pthread_mutex_unlock(&st->mu);
		packfile_path(m->path, ids[i], path, sizeof(path));
		if (idle && records == 0 && stat(path, &sb) == 0)
			pack_remove(st, m, ids[i], (uint64_t)sb.st_size, &s);
	}
	free(ids);
	return s.removed;
}
