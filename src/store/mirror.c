/*
 * mirror.c - replication to every mirror (see mirror.h).
 *
 * Metadata: every mirror has its own meta.db. A mutating operation is a
 * deterministic function of its parameters (claim ids and times are chosen
 * once, before), run in one transaction on every online mirror's catalog
 * in turn under st->mu; results are read from the first online mirror. A
 * `generation` counter, bumped by every mutation, tells at open which
 * database is newest; stale ones are replaced by a copy of it.
 */
#include "store_int.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log/log.h"
#include "rtcms_error.h"
#include "stats.h"

/* ---- the directory backend ------------------------------------------------ */

static int dir_open(const char *where, void **be)
{
	*be = (void *)where;
	return 0;
}

static void dir_close(void *be)
{
	(void)be;
}

/* The mirror's directory and its packs directory (a mirror written before
 * packs keeps its chunks directory; a new one gets none). */
static int dir_prepare(void *be)
{
	if (mkdir(be, 0700) != 0 && errno != EEXIST)
		return RTCMS_EIO;
	return packfile_prepare(be);
}

static int dir_probe(void *be)
{
	return chunkfile_probe(be);
}

static bool dir_any(void *be)
{
	return chunkfile_any(be) || pack_any(be);
}

static bool dir_present(void *be, const uint8_t h[PROTO_HASH_SIZE], size_t size)
{
	return chunkfile_present(be, h, size);
}

static int dir_read(void *be, const uint8_t h[PROTO_HASH_SIZE], size_t size, uint8_t *buf,
		    size_t *len)
{
	return chunkfile_read(be, h, size, buf, len);
}

static void dir_remove(void *be, const uint8_t h[PROTO_HASH_SIZE])
{
	chunkfile_remove(be, h);
}

static int dot_name(const char *n)
{
	return n[0] == '.' && (n[1] == '\0' || (n[1] == '.' && n[2] == '\0'));
}

static uint64_t dir_sweep(void *be, bool (*keep)(void *ctx, const uint8_t *hash),
			  void *ctx)
{
	char dir[4200], path[4600];
	uint64_t removed = 0;

	for (int i = 0; i < 256; i++) {
		snprintf(dir, sizeof(dir), "%s/chunks/%02x", (const char *)be, i);
		DIR *d = opendir(dir);
		if (!d)
			continue;
		struct dirent *e;
		while ((e = readdir(d)) != NULL) {
			uint8_t h[PROTO_HASH_SIZE];
			if (dot_name(e->d_name))
				continue;
			snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
			if (chunkfile_parse_name(e->d_name, h) != 0) {
				if (strstr(e->d_name, ".tmp.")) {
					unlink(path);
					removed++;
				}
				continue;
			}
			if (!keep(ctx, h)) {
				unlink(path);
				removed++;
			}
		}
		closedir(d);
	}
	return removed;
}

const struct mirror_backend mirror_dir_backend = {
	.name = "dir",
	.open = dir_open,
	.close = dir_close,
	.prepare = dir_prepare,
	.probe = dir_probe,
	.any = dir_any,
	.present = dir_present,
	.read = dir_read,
	.remove = dir_remove,
	.sweep = dir_sweep,
};

int mirror_init(struct mirror *m, const char *path)
{
	memset(m, 0, sizeof(*m));
	if (strlen(path) > PROTO_TEXT_MAX)
		return RTCMS_ECONFIG;
	snprintf(m->path, sizeof(m->path), "%s", path);
	m->be = &mirror_dir_backend;
	return m->be->open(m->path, &m->be_state);
}

void mirror_close(struct mirror *m)
{
	pack_fini(m);
	catalog_close(m->cat);
	m->cat = NULL;
	if (m->be)
		m->be->close(m->be_state);
	m->be = NULL;
}

/* Under st->mu: m's committed place of chunk hash. */
static bool loc_lookup(struct mirror *m, const uint8_t hash[PROTO_HASH_SIZE],
		       struct chunk_loc *loc)
{
	bool found = false;
	return m->cat && catalog_loc_get(m->cat, hash, loc, &found) == 0 && found;
}

int mirror_chunk_read(struct store *st, struct mirror *m, const uint8_t hash[PROTO_HASH_SIZE],
		      size_t size, uint8_t *buf, size_t *len, bool *inl)
{
	struct chunk_loc loc, again;
	bool placed = false;
	int rc = 0;

	*inl = false;
	*len = 0;
	if (size == 0 || size > PROTO_MAX_CHUNK)
		return RTCMS_ECORRUPT;
	pthread_mutex_lock(&st->mu);
	/* no valid form is longer: a longer copy is not copied (corrupt) */
	if (m->cat)
		rc = catalog_inline_get(m->cat, hash, buf, size + CHUNKFILE_SEALED_EXTRA, len, inl);
	if (rc == 0 && !*inl)
		placed = loc_lookup(m, hash, &loc);
	pthread_mutex_unlock(&st->mu);
	if (rc)
		return rc;
	if (*inl) /* checked outside the lock, as a pack's copy is */
		return chunkfile_form_check(buf, *len, hash, size);
	for (int tries = 0; placed; tries++) {
		rc = pack_read(m, &loc, hash, size, buf, len);
		if (rc != RTCMS_ENOENT || tries == 2)
			return rc;
		/* the pack is gone: a compaction moved the chunk since, or
		 * the file was removed (a repair then goes to another pack) */
		pthread_mutex_lock(&st->mu);
		placed = loc_lookup(m, hash, &again);
		bool same = placed && again.pack == loc.pack && again.off == loc.off;
		if (same)
			pack_gone(m, loc.pack);
		pthread_mutex_unlock(&st->mu);
		if (same)
			return RTCMS_ENOENT;
		loc = again;
	}
	return m->be->read(m->be_state, hash, size, buf, len);
}

bool mirror_chunk_stored(struct store *st, struct mirror *m,
			 const uint8_t hash[PROTO_HASH_SIZE], size_t size)
{
	struct chunk_loc loc;
	pthread_mutex_lock(&st->mu);
	bool inl = m->cat && catalog_inline_has(m->cat, hash);
	bool placed = !inl && loc_lookup(m, hash, &loc);
	pthread_mutex_unlock(&st->mu);
	return inl || (placed && pack_present(m, &loc)) ||
	       m->be->present(m->be_state, hash, size);
}

int mirror_chunk_write_inline(struct store *st, struct mirror *m,
			      const uint8_t hash[PROTO_HASH_SIZE], const uint8_t *form,
			      size_t len)
{
	int rc = store_fault("chunk_write", m->path);
	if (rc)
		return rc;
	pthread_mutex_lock(&st->mu);
	rc = m->cat ? catalog_inline_put(m->cat, hash, form, len) : RTCMS_EIO;
	pthread_mutex_unlock(&st->mu);
	return rc;
}

void mirror_chunk_remove_all(struct store *st, const uint8_t hash[PROTO_HASH_SIZE])
{
	for (size_t i = 0; i < st->n; i++)
		st->m[i].be->remove(st->m[i].be_state, hash);
}

void mirror_chunk_drop_all(struct store *st, const uint8_t hash[PROTO_HASH_SIZE])
{
	mirror_chunk_remove_all(st, hash);
	for (size_t i = 0; i < st->n; i++)
		if (st->m[i].online && st->m[i].cat &&
		    (catalog_inline_drop(st->m[i].cat, hash) != 0 ||
		     catalog_loc_drop(st->m[i].cat, hash) != 0))
			store_log(st, LOG_WARN, "mirror %s: an unreferenced chunk's copy "
				  "stays until the next start: %s", st->m[i].path,
				  catalog_errmsg(st->m[i].cat));
	atomic_store(&st->compact_due, true);
}

void mirror_chunk_unpend_all(struct store *st, const uint8_t hash[PROTO_HASH_SIZE])
{
	for (size_t i = 0; i < st->n; i++)
		if (st->m[i].cat)
			catalog_pending_drop(st->m[i].cat, hash);
}

/* ---- online state ------------------------------------------------------- */

/* The one place a mirror's state changes: the metric follows it. */
static void set_online(struct store *st, struct mirror *m, int online)
{
	m->online = online;
	metric_gauge_set(&store_stats.mirror_online[m - st->m], online);
}

struct mirror *mirror_primary(struct store *st)
{
	for (size_t i = 0; i < st->n; i++)
		if (st->m[i].online)
			return &st->m[i];
	return NULL;
}

size_t mirror_online_count(struct store *st)
{
	size_t k = 0;
	for (size_t i = 0; i < st->n; i++)
		k += st->m[i].online ? 1 : 0;
	return k;
}

size_t mirror_online(struct store *st, struct mirror **out)
{
	size_t k = 0;
	for (size_t i = 0; i < st->n; i++)
		if (st->m[i].online)
			out[k++] = &st->m[i];
	return k;
}

void mirror_offline(struct store *st, struct mirror *m, const char *why)
{
	if (!m->online)
		return;
	set_online(st, m, 0);
	store_log(st, LOG_ERROR, "mirror %s taken OFFLINE: %s; continuing on %zu "
		  "mirror(s) — a repairing scrub or a restart resynchronises it",
		  m->path, why, mirror_online_count(st));
}

/* ---- parallel work on the mirrors ----------------------------------------- */

/*
 * Run fn on each of n jobs (size bytes apart in jobs) at once: the first on
 * this thread, the others on short-lived threads (or here too if a thread
 * cannot be made); returns when all are done. For the per-mirror flushes,
 * which wait on different disks.
 */
static void parallel_run(void *(*fn)(void *), void *jobs, size_t size, size_t n)
{
	pthread_t th[STORE_MAX_MIRRORS];
	int started[STORE_MAX_MIRRORS] = { 0 };
	uint8_t *base = jobs;

	for (size_t i = 1; i < n; i++)
		started[i] = pthread_create(&th[i], NULL, fn, base + i * size) == 0;
	for (size_t i = 0; i < n; i++)
		if (!started[i])
			fn(base + i * size);
	for (size_t i = 1; i < n; i++)
		if (started[i])
			pthread_join(th[i], NULL);
}

/* One mirror's part of a parallel COMMIT or flush. */
struct mirror_job {
	struct store *st;
	struct mirror *m;
	int rc;
};

static void *commit_thread(void *arg)
{
	struct mirror_job *j = arg;
	j->rc = catalog_commit(j->m->cat);
	return NULL;
}

static void *sync_thread(void *arg)
{
	struct mirror_job *j = arg;
	j->rc = pack_flush(j->st, j->m);
	return NULL;
}

void mirror_sync(struct store *st, struct mirror *const *ms, size_t n, int *rc)
{
	struct mirror_job jobs[STORE_MAX_MIRRORS];

	for (size_t i = 0; i < n; i++)
		jobs[i] = (struct mirror_job){ st, ms[i], 0 };
	parallel_run(sync_thread, jobs, sizeof(jobs[0]), n);
	for (size_t i = 0; i < n; i++)
		rc[i] = jobs[i].rc;
}

/* ---- metadata transactions ------------------------------------------------ */

/* Phase 1 of mirror_apply on one mirror: 0 with *applied if its
 * transaction is ready to commit (not if the mirror went offline), or the
 * refusal (< 0) to stop at. */
static int apply_one(struct store *st, struct mirror *m, mirror_mutation_fn fn,
		     void *arg, int have, int *result, bool *applied)
{
	char why[256];
	int rc;

	*applied = false;
	if (store_fault("meta_commit", m->path) != 0) {
		mirror_offline(st, m, "metadata commit failed (injected)");
		return 0;
	}
	if (catalog_begin(m->cat) != 0) {
		mirror_offline(st, m, catalog_errmsg(m->cat));
		return 0;
	}
	rc = fn(m->cat, arg);
	if (have && rc != *result && rc != RTCMS_EIO) {
		catalog_rollback(m->cat);
		snprintf(why, sizeof(why), "metadata diverged (result %d "
			 "where the first mirror gave %d)", rc, *result);
		mirror_offline(st, m, why);
		return 0;
	}
	if (rc < 0 && rc != RTCMS_EIO) {
		/* a refusal (same on every mirror): roll back, stop; no
		 * earlier mirror has a transaction open (have == 0) */
		catalog_rollback(m->cat);
		return rc;
	}
	if (rc == RTCMS_EIO || catalog_generation_bump(m->cat) != 0) {
		snprintf(why, sizeof(why), "metadata transaction failed: %s",
			 catalog_errmsg(m->cat));
		catalog_rollback(m->cat);
		mirror_offline(st, m, why);
		return 0;
	}
	if (!have)
		*result = rc;
	*applied = true;
	return 0;
}

int mirror_apply(struct store *st, mirror_mutation_fn fn, void *arg)
{
	int result = RTCMS_EIO, have = 0;
	struct mirror_job jobs[STORE_MAX_MIRRORS];
	size_t npending = 0, committed = 0;

	/* Phase 1: run the mutation in a transaction on every online mirror
	 * (in memory, fast) and compare the results. */
	for (size_t i = 0; i < st->n; i++) {
		if (!st->m[i].online)
			continue;
		bool applied;
		int rc = apply_one(st, &st->m[i], fn, arg, have, &result, &applied);
		if (rc < 0)
			return rc;
		if (applied) {
			jobs[npending++] = (struct mirror_job){ st, &st->m[i], 0 };
			have = 1;
		}
	}
	/* Phase 2: commit everywhere at once: each COMMIT waits for its WAL
	 * flush, so mirrors on different disks flush in parallel. */
	parallel_run(commit_thread, jobs, sizeof(jobs[0]), npending);
	for (size_t k = 0; k < npending; k++) {
		if (jobs[k].rc == 0) {
			committed++;
			continue;
		}
		char why[256];
		snprintf(why, sizeof(why), "metadata commit failed: %s",
			 catalog_errmsg(jobs[k].m->cat));
		catalog_rollback(jobs[k].m->cat);
		mirror_offline(st, jobs[k].m, why);
	}
	return committed ? result : RTCMS_EIO;
}

/* ---- chunk writes --------------------------------------------------------- */

static int write_enc(struct store *st, struct mirror *const *ms, size_t n,
		     const uint8_t hash[PROTO_HASH_SIZE], size_t size, struct chunkfile_enc *enc,
		     size_t *disk_len);

int mirror_write_all(struct store *st, struct mirror *const *ms, size_t n,
		     const uint8_t hash[PROTO_HASH_SIZE], size_t size, const uint8_t *data,
		     size_t len, size_t *disk_len)
{
	struct chunkfile_enc enc = { data, len, 0, NULL, NULL, 0 };
	return write_enc(st, ms, n, hash, size, &enc, disk_len);
}

int mirror_write_sealed(struct store *st, struct mirror *const *ms, size_t n,
			const uint8_t hash[PROTO_HASH_SIZE], size_t size, uint32_t key_id,
			const uint8_t sum[PROTO_CHUNK_SUM], const uint8_t *sealed,
			size_t *disk_len)
{
	uint8_t head[CHUNKFILE_SHDR];
	struct chunkfile_enc enc = { sealed, size + PROTO_CHUNK_TAG, size, NULL, head,
				     sizeof(head) };

	chunkfile_sealed_head(key_id, sum, head);
	return write_enc(st, ms, n, hash, size, &enc, disk_len);
}

/* Under st->mu: whether m has a place (committed or pending) for hash. */
static bool placed_or_pending(struct mirror *m, const uint8_t hash[PROTO_HASH_SIZE])
{
	struct chunk_loc loc;
	bool found = false, pending;
	return m->cat && catalog_loc_find(m->cat, hash, &loc, &found, &pending) == 0 && found;
}

/* Write enc (its size 0: not encoded yet; encoded once, for the first
 * mirror lacking the chunk) to the packs of the mirrors that lack chunk
 * hash, each record at a place reserved under st->mu. */
static int write_enc(struct store *st, struct mirror *const *ms, size_t n,
		     const uint8_t hash[PROTO_HASH_SIZE], size_t size, struct chunkfile_enc *in,
		     size_t *disk_len)
{
	size_t written = 0, failed = 0, full = 0, fresh = 0;
	int res[STORE_MAX_MIRRORS];
	bool need[STORE_MAX_MIRRORS], reserved[STORE_MAX_MIRRORS];
	struct pack_slot slot[STORE_MAX_MIRRORS];
	struct chunkfile_enc enc = { 0 };
	size_t nneed = 0;
	int rc = 0;

	*disk_len = 0;
	pthread_mutex_lock(&st->mu);
	for (size_t i = 0; i < n; i++)
		need[i] = !placed_or_pending(ms[i], hash);
	pthread_mutex_unlock(&st->mu);
	for (size_t i = 0; i < n; i++) {
		/* a chunk file (the layout before packs) counts as stored */
		if (need[i] && ms[i]->be->present(ms[i]->be_state, hash, size))
			need[i] = false;
		res[i] = 0;
		reserved[i] = false;
		if (!need[i])
			written++; /* deduplicated: an identical chunk is stored */
		nneed += need[i];
	}
	if (!nneed)
		return 0;
	/* encoded (compressed) once, for every mirror lacking it */
	if (in->size)
		enc = *in; /* written as it is */
	else
		chunkfile_encode(in->data, in->len, st->zlevel, &enc);
	pthread_mutex_lock(&st->mu);
	for (size_t i = 0; i < n; i++)
		if (need[i])
			reserved[i] = (res[i] = pack_reserve(st, ms[i], enc.head_len + enc.len,
							     &slot[i])) == 0;
	pthread_mutex_unlock(&st->mu);
	for (size_t i = 0; i < n; i++)
		if (reserved[i])
			res[i] = pack_write(ms[i], &slot[i], hash, &enc);
	pthread_mutex_lock(&st->mu);
	for (size_t i = 0; i < n; i++) {
		if (!reserved[i])
			continue;
		pack_done(ms[i], &slot[i], res[i], false);
		/* pending until the PUT's commit makes the place its own */
		if (res[i] == 0 && catalog_pending_add(ms[i]->cat, hash, &slot[i].loc) != 0)
			res[i] = RTCMS_EIO;
	}
	pthread_mutex_unlock(&st->mu);
	for (size_t i = 0; i < n; i++) {
		if (!need[i])
			continue;
		if (res[i] == 0) {
			written++;
			fresh++;
			continue;
		}
		failed++;
		full += res[i] == RTCMS_ENOSPC;
		rc = res[i];
	}
	if (fresh)
		*disk_len = enc.head_len + enc.len;
	chunkfile_enc_free(&enc);
	if (!failed)
		return 0;
	/* Disk full everywhere: the write fails, but nothing diverged and
	 * the mirrors stay online (for reads, and for writes once space is
	 * freed). Otherwise a mirror that failed while another took the
	 * chunk goes offline: the store goes on degraded. */
	if (written == 0 && full == failed)
		return RTCMS_ENOSPC;
	pthread_mutex_lock(&st->mu);
	for (size_t i = 0; i < n; i++)
		if (need[i] && res[i] != 0)
			mirror_offline(st, ms[i], res[i] == RTCMS_ENOSPC
				       ? "disk full" : "chunk write failed");
	pthread_mutex_unlock(&st->mu);
	return written > 0 ? 0 : rc;
}

/* ---- the mirror's directory ------------------------------------------------ */

/* 1 if M/MIRROR holds a valid identity, else 0 (missing or damaged). */
static int identity_ok(const struct mirror *m)
{
	char path[4200], line[128];
	snprintf(path, sizeof(path), "%s/MIRROR", m->path);
	FILE *f = fopen(path, "r");
	if (!f)
		return 0;
	int ok = fgets(line, sizeof(line), f) &&
		 strncmp(line, "rtcms-mirror v1 ", 16) == 0;
	fclose(f);
	return ok;
}

/* Write a new identity to M/MIRROR durably. 0 or RTCMS_EIO. */
static int identity_write(const struct mirror *m)
{
	char path[4200], tmp[4300], line[128];
	uint8_t id[16];
	char hex[33];

	snprintf(path, sizeof(path), "%s/MIRROR", m->path);
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	randombytes_buf(id, sizeof(id));
	sodium_bin2hex(hex, sizeof(hex), id, sizeof(id));
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return RTCMS_EIO;
	int n = snprintf(line, sizeof(line), "rtcms-mirror v1 %s\n", hex);
	int rc = write(fd, line, (size_t)n) == n && fsync(fd) == 0 ? 0 : RTCMS_EIO;
	close(fd);
	if (rc == 0 && rename(tmp, path) != 0)
		rc = RTCMS_EIO;
	if (rc == 0 && (fd = open(m->path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) >= 0) {
		rc = fsync(fd) == 0 ? 0 : RTCMS_EIO;
		close(fd);
	}
	return rc;
}

/* Remove M/meta.db and its WAL files; with aside, keep meta.db renamed to
 * meta.db.bad-<ms> for a post-mortem. */
static void meta_files_remove(struct store *st, const struct mirror *m, int aside)
{
	static const char *const names[] = { "meta.db", "meta.db-wal", "meta.db-shm" };
	char p[4200], q[4300];

	for (size_t i = 0; i < 3; i++) {
		snprintf(p, sizeof(p), "%s/%s", m->path, names[i]);
		if (i == 0 && aside) {
			snprintf(q, sizeof(q), "%s.bad-%" PRIu64, p, store_now(st));
			if (rename(p, q) == 0) {
				store_log(st, LOG_WARN, "mirror %s: unreadable meta.db "
					  "kept as %s", m->path, q);
				continue;
			}
		}
		unlink(p);
	}
}

/* Give a mirror a fresh copy of from's metadata (or an empty one): recreate
 * its meta.db and copy from's into it. 0, or RTCMS_EIO (its catalog is
 * closed then). */
static int meta_reset(struct store *st, struct mirror *m, const struct mirror *from,
		      int aside)
{
	catalog_close(m->cat);
	m->cat = NULL;
	meta_files_remove(st, m, aside);
	if (catalog_open(m->path, &m->cat) != 0)
		goto fail;
	/* from's places in its packs are not m's: m finds its own again
	 * (pack_reindex) */
	if (from && (catalog_copy(m->cat, from->cat) != 0 || catalog_locs_clear(m->cat) != 0))
		goto fail;
	m->pk.stale = from != NULL;
	return 0;
fail:
	catalog_close(m->cat);
	m->cat = NULL;
	return RTCMS_EIO;
}

/* What mirror_open_all found in one mirror directory. */
struct mirror_scan {
	int reachable;        /* directories exist or were created */
	int identity;         /* M/MIRROR was valid */
	int had_meta;         /* M/meta.db existed */
	int trusted;          /* identity, and a sound meta.db that was updated */
	int64_t gen, epoch;
};

static void scan(struct store *st, struct mirror *m, struct mirror_scan *sc)
{
	char path[4200];
	struct stat sb;

	memset(sc, 0, sizeof(*sc));
	sc->gen = -1;
	if (m->be->prepare(m->be_state) != 0) {
		store_log(st, LOG_ERROR, "mirror %s: cannot prepare the directory: %s",
			  m->path, strerror(errno));
		return;
	}
	sc->reachable = 1;
	sc->identity = identity_ok(m);
	snprintf(path, sizeof(path), "%s/meta.db", m->path);
	sc->had_meta = stat(path, &sb) == 0;
	if (!sc->identity || !sc->had_meta)
		return;
	if (catalog_open(m->path, &m->cat) != 0 || catalog_check(m->cat) != 0 ||
	    (sc->gen = catalog_generation(m->cat)) < 0) {
		store_log(st, LOG_ERROR, "mirror %s: meta.db is unreadable or damaged",
			  m->path);
		catalog_close(m->cat);
		m->cat = NULL;
		sc->gen = -1;
		return;
	}
	sc->epoch = catalog_epoch(m->cat);
	/* generation 0: never updated (every open commits an epoch), or
	 * emptied by damage: nothing to trust */
	sc->trusted = sc->gen >= 1;
}

/* Why mirror i's metadata must be replaced by best's, or NULL. */
static const char *meta_stale(const struct store *st, const struct mirror_scan *sc,
			      size_t i, int best)
{
	if ((int)i == best)
		return NULL;
	if (!sc[i].identity)
		return "new";
	if (!sc[i].had_meta)
		return "missing";
	if (!sc[i].trusted)
		return st->m[i].cat ? "empty" : "unreadable";
	if (best >= 0 && sc[i].gen < sc[best].gen)
		return "stale";
	if (best >= 0 && sc[i].epoch != sc[best].epoch)
		/* same generation reached by other histories: a mirror ran
		 * alone while this one was away. One must go. */
		return "DIVERGED (each was updated without the other)";
	return NULL;
}

/* Bring mirror i online with the newest metadata (from best). */
static void reconcile(struct store *st, const struct mirror_scan *sc, size_t i, int best)
{
	struct mirror *m = &st->m[i];
	struct mirror *from = best >= 0 ? &st->m[best] : NULL;
	const char *what;

	if (!sc[i].identity && identity_write(m) != 0) {
		store_log(st, LOG_ERROR, "mirror %s: cannot write MIRROR", m->path);
		catalog_close(m->cat);
		m->cat = NULL;
		return;
	}
	what = meta_stale(st, sc, i, best);
	if (what || !m->cat) {
		if (from)
			store_log(st, LOG_WARN, "mirror %s: metadata %s (generation "
				  "%" PRId64 ", newest %" PRId64 "): copying from %s",
				  m->path, what ? what : "new", sc[i].gen,
				  sc[best].gen, from->path);
		if (meta_reset(st, m, from, sc[i].identity && sc[i].had_meta &&
			       !m->cat) != 0) {
			store_log(st, LOG_ERROR, "mirror %s: cannot copy the "
				  "metadata; leaving it offline", m->path);
			return;
		}
	}
	set_online(st, m, 1);
}

int mirror_open_all(struct store *st, int *have_meta)
{
	struct mirror_scan sc[STORE_MAX_MIRRORS];
	int best = -1, any = 0;

	/* 1. Look at every mirror before changing anything. */
	for (size_t i = 0; i < st->n; i++) {
		scan(st, &st->m[i], &sc[i]);
		any |= sc[i].reachable;
		if (sc[i].trusted && (best < 0 || sc[i].gen > sc[best].gen))
			best = (int)i;
	}
	if (!any) {
		store_log(st, LOG_ERROR, "no usable mirror");
		return RTCMS_EIO;
	}
	/* No metadata anywhere: a new store, unless packs or chunk files say that
	 * metadata was lost; then start nothing and remove nothing, so that
	 * meta.db can be restored. */
	for (size_t i = 0; best < 0 && i < st->n; i++) {
		struct mirror *m = &st->m[i];
		if (sc[i].reachable && m->be->any(m->be_state)) {
			store_log(st, LOG_ERROR, "mirror %s holds chunks but no "
				  "mirror has readable metadata (meta.db): refusing "
				  "to start; restore a meta.db, or empty the mirrors "
				  "to start a new store", m->path);
			return RTCMS_ECORRUPT;
		}
	}
	/* 2. The newest metadata wins and is copied over missing, unreadable,
	 * stale and diverged copies. */
	for (size_t i = 0; i < st->n; i++)
		if (sc[i].reachable)
			reconcile(st, sc, i, best);
	if (!mirror_primary(st)) {
		store_log(st, LOG_ERROR, "no usable mirror");
		return RTCMS_EIO;
	}
	/* 3. Every mirror's packs; one whose metadata was copied finds its
	 * chunks in them again. */
	for (size_t i = 0; i < st->n; i++) {
		struct mirror *m = &st->m[i];
		uint64_t found = 0;
		if (pack_init(st, m, st->pack_size) != 0)
			store_log(st, LOG_WARN, "mirror %s: cannot list its packs", m->path);
		if (!m->online || !m->pk.stale)
			continue;
		if (pack_reindex(st, m, &found) != 0)
			mirror_offline(st, m, "re-indexing its packs failed");
		else if (found)
			store_log(st, LOG_WARN, "mirror %s: found %" PRIu64 " chunk(s) again "
				  "in its packs", m->path, found);
	}
	*have_meta = best >= 0;
	return 0;
}

int mirror_revive(struct store *st, struct mirror *m)
{
	struct mirror *p = mirror_primary(st);
	int rc;

	if (!p)
		return RTCMS_EIO;
	if (st->open_puts) {
		store_log(st, LOG_WARN, "mirror %s stays offline for now: %u PUT(s) in "
			  "progress; scrub again to bring it back", m->path, st->open_puts);
		return RTCMS_EBUSY;
	}
	if ((rc = m->be->prepare(m->be_state)) != 0 ||
	    (rc = m->be->probe(m->be_state)) != 0)
		goto fail;
	if (!identity_ok(m) && (rc = identity_write(m)) != 0)
		goto fail;
	if ((rc = meta_reset(st, m, p, 0)) != 0 || (rc = pack_init(st, m, st->pack_size)) != 0)
		goto fail;
	set_online(st, m, 1);
	store_log(st, LOG_WARN, "mirror %s back ONLINE: metadata copied from %s; "
		  "finding its chunks in its packs, copying those it lacks", m->path, p->path);
	return 0;
fail:
	store_log(st, LOG_ERROR, "mirror %s stays offline: %s", m->path,
		  rtcms_strerror(rc));
	return rc;
}
