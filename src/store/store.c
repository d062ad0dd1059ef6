/*
 * store.c - the checkpoint store engine (see store.h for the layout).
 *
 * Metadata: every mirror has its own meta.db. A mutating operation is a
 * deterministic function of its parameters (claim ids and times are chosen
 * once, before), run in one transaction on every online mirror's database
 * in turn under the store mutex; results are read from the first online
 * mirror. A `generation` counter, bumped by every mutation, tells at open
 * which database is newest; stale ones are replaced by a copy of it.
 *
 * Chunk files are written outside the mutex (several in parallel) and
 * pinned in memory while a PUT or GET uses them, so that retention's
 * garbage collection never removes a file an open PUT is about to
 * reference.
 */
#include "store.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <sodium.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "chunkfile.h"
#include "meta.h"
#include "pinset.h"
#include "area/delta.h"
#include "area/image.h"
#include "log/log.h"
#include "rtcms_error.h"
#include "util/bytes.h"

/* Checkpoints retention removes in one PUT's transaction at most (the
 * rest goes with the next PUTs): bounds the time the mutex is held. */
#define RETAIN_BATCH 256

/* The columns of a checkpoint row, in the order row_load() reads them. */
#define CKPT_COLS "process, incarnation, sequence, node, size, hash, created_ms," \
	" spec, chunk_count, base, depth, full_size, state_hash"

struct mirror {
	char path[PROTO_TEXT_MAX + 1];
	sqlite3 *db;
	int online;
	uint32_t repaired;            /* copies rewritten since start */
};

struct victim_list {
	uint8_t (*hash)[PROTO_HASH_SIZE];
	size_t n, cap;
};

struct store {
	struct mirror m[STORE_MAX_MIRRORS];
	size_t n;
	unsigned retain;
	int zlevel;                   /* chunk files: 0 raw, else zstd level */
	pthread_mutex_t mu;
	uint64_t (*now_ms)(void *);
	void *now_ctx;
	void (*log)(void *, int, const char *);
	void *log_ctx;
	struct pinset pins;           /* chunks open PUTs/GETs use */
	uint32_t open_puts;           /* PUT handles not yet committed/aborted */
	struct victim_list deferred;  /* unreferenced but pinned: unlink later */
};

struct chunk_ref {
	uint64_t offset;
	uint32_t len;
	uint8_t hash[PROTO_HASH_SIZE];
};

struct store_put {
	struct store *st;
	struct proto_ckpt_meta meta;
	uint8_t *spec;
	struct chunk_ref *chunks;     /* in offset order */
	uint32_t count;
	uint32_t cap;
	uint64_t next_offset;
	struct proto_image_hash ih;
	int failed;
	/* hashes this PUT pinned (in store_put_write, under st->mu): exactly
	 * these are unpinned at the end, never a chunk only checked */
	uint8_t (*pinned)[PROTO_HASH_SIZE];
	uint32_t npinned, pinned_cap;
	/* store_put_stats(): added by concurrent writes */
	atomic_uint_least32_t new_chunks;
	atomic_uint_least64_t new_bytes, disk_bytes;
};

struct store_get {
	struct store *st;
	uint8_t *spec;
	struct chunk_ref *chunks;
	uint32_t count;
	uint32_t pinned;              /* chunks[0..pinned) are pinned (streamed) */
	uint32_t next;
	uint32_t repaired;
	uint8_t *img;                 /* an image assembled from a chain: chunks
				       * are served from here, not from files */
};

/* ---- small helpers ------------------------------------------------- */

static void slog(struct store *st, int level, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void slog(struct store *st, int level, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;
	if (!st->log)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	st->log(st->log_ctx, level, msg);
}

static uint64_t default_now(void *ctx)
{
	struct timespec ts;
	(void)ctx;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static uint64_t now(struct store *st)
{
	return st->now_ms(st->now_ctx);
}

static const char *hexs(const uint8_t *h, char *buf)
{
	sodium_bin2hex(buf, 17, h, 8);
	return buf;
}

/* First online mirror, or NULL. */
/* A statement on one checkpoint's key: sql with process, incarnation and
 * sequence (or base) as its parameters 1..3. NULL on error. */
static sqlite3_stmt *prep_key(sqlite3 *db, const char *sql, const char *process,
			      uint64_t inc, uint64_t seq)
{
	sqlite3_stmt *s = meta_prep(db, sql);
	if (s) {
		meta_bind_text(s, 1, process);
		meta_bind_u64(s, 2, inc);
		meta_bind_u64(s, 3, seq);
	}
	return s;
}

static struct mirror *primary(struct store *st)
{
	for (size_t i = 0; i < st->n; i++)
		if (st->m[i].online)
			return &st->m[i];
	return NULL;
}

static size_t online_count(struct store *st)
{
	size_t k = 0;
	for (size_t i = 0; i < st->n; i++)
		k += st->m[i].online ? 1 : 0;
	return k;
}

static void mirror_offline(struct store *st, struct mirror *m, const char *why)
{
	if (!m->online)
		return;
	m->online = 0;
	slog(st, LOG_ERROR, "mirror %s taken OFFLINE: %s; continuing on %zu "
	     "mirror(s) — a repairing scrub or a restart resynchronises it",
	     m->path, why, online_count(st));
}

/* A mutation: run on one database inside a transaction. */
typedef int (*mutation_fn)(sqlite3 *db, void *arg);

/*
 * Apply fn to every online mirror's database, each in one transaction that
 * also bumps the generation. A mirror whose transaction fails goes offline
 * (the generation tells at restart that it is stale), and so does one
 * whose result differs from the first mirror's (its metadata diverged).
 * Returns fn's result on the first mirror that succeeded, or RTCMS_EIO if
 * none did. A refusal (a negative result other than RTCMS_EIO) on the
 * first mirror changes nothing anywhere. Call with st->mu held. fn must be
 * deterministic: same state + arg, same result.
 */
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

struct commit_job {
	sqlite3 *db;
	int rc;
};

static void *commit_thread(void *arg)
{
	struct commit_job *j = arg;
	j->rc = meta_exec(j->db, "COMMIT");
	return NULL;
}

static int apply(struct store *st, mutation_fn fn, void *arg)
{
	int result = RTCMS_EIO, have = 0;
	struct mirror *pending[STORE_MAX_MIRRORS];
	size_t npending = 0;

	/* Phase 1: run the mutation in a transaction on every online mirror
	 * (in memory, fast) and compare the results. */
	for (size_t i = 0; i < st->n; i++) {
		struct mirror *m = &st->m[i];
		char why[256];
		if (!m->online)
			continue;
		int rc;
		if (store_fault("meta_commit", m->path) != 0) {
			mirror_offline(st, m, "metadata commit failed (injected)");
			continue;
		}
		if (meta_exec(m->db, "BEGIN IMMEDIATE") != 0) {
			mirror_offline(st, m, sqlite3_errmsg(m->db));
			continue;
		}
		rc = fn(m->db, arg);
		if (have && rc != result && rc != RTCMS_EIO) {
			meta_exec(m->db, "ROLLBACK");
			snprintf(why, sizeof(why), "metadata diverged (result %d "
				 "where the first mirror gave %d)", rc, result);
			mirror_offline(st, m, why);
			continue;
		}
		if (rc < 0 && rc != RTCMS_EIO) {
			/* a refusal (same on every mirror): roll back, stop; no
			 * earlier mirror has a transaction open (have == 0) */
			meta_exec(m->db, "ROLLBACK");
			return rc;
		}
		if (rc == RTCMS_EIO ||
		    meta_exec(m->db, "UPDATE meta SET value = value + 1 WHERE key='generation'") != 0) {
			snprintf(why, sizeof(why), "metadata transaction failed: %s",
				 sqlite3_errmsg(m->db));
			meta_exec(m->db, "ROLLBACK");
			mirror_offline(st, m, why);
			continue;
		}
		pending[npending++] = m;
		if (!have) {
			result = rc;
			have = 1;
		}
	}
	/* Phase 2: commit everywhere at once: each COMMIT waits for its WAL
	 * flush, so mirrors on different disks flush in parallel. */
	struct commit_job jobs[STORE_MAX_MIRRORS];
	for (size_t k = 0; k < npending; k++)
		jobs[k] = (struct commit_job){ pending[k]->db, 0 };
	parallel_run(commit_thread, jobs, sizeof(jobs[0]), npending);
	size_t committed = 0;
	for (size_t k = 0; k < npending; k++) {
		if (jobs[k].rc == 0) {
			committed++;
			continue;
		}
		char why[256];
		snprintf(why, sizeof(why), "metadata commit failed: %s",
			 sqlite3_errmsg(pending[k]->db));
		meta_exec(pending[k]->db, "ROLLBACK");
		mirror_offline(st, pending[k], why);
	}
	return committed ? result : RTCMS_EIO;
}

/* ---- process rows -------------------------------------------------- */

struct proc_row {
	int found;
	uint64_t incarnation, node;
	uint64_t claim_id, claim_expires, claim_inc, claim_seq, last_claim;
	int gave_up;                  /* enum gave_up */
	int claim_gave_up;            /* the open claim is a GAVE_UP one */
	char claimant[PROTO_ID_MAX + 1];
};

static int proc_load(sqlite3 *db, const char *process, struct proc_row *r)
{
	sqlite3_stmt *s = meta_prep(db, "SELECT incarnation, node, claim_id, claimant,"
			       " claim_expires, claim_inc, claim_seq, last_claim,"
			       " gave_up, claim_gave_up FROM processes WHERE process = ?");
	memset(r, 0, sizeof(*r));
	if (!s)
		return RTCMS_EIO;
	meta_bind_text(s, 1, process);
	int rc = sqlite3_step(s);
	if (rc == SQLITE_ROW) {
		r->found = 1;
		r->incarnation = meta_col_u64(s, 0);
		r->node = meta_col_u64(s, 1);
		r->claim_id = meta_col_u64(s, 2);
		snprintf(r->claimant, sizeof(r->claimant), "%s",
			 (const char *)sqlite3_column_text(s, 3));
		r->claim_expires = meta_col_u64(s, 4);
		r->claim_inc = meta_col_u64(s, 5);
		r->claim_seq = meta_col_u64(s, 6);
		r->last_claim = meta_col_u64(s, 7);
		r->gave_up = sqlite3_column_int(s, 8);
		r->claim_gave_up = sqlite3_column_int(s, 9) != 0;
	}
	sqlite3_finalize(s);
	return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : RTCMS_EIO;
}

/* Load a process' row from the primary mirror, under st->mu: 0,
 * RTCMS_ENOENT if the store has never seen it, RTCMS_EIO. */
static int proc_load_known(struct store *st, const char *process,
			   struct proc_row *r)
{
	struct mirror *p = primary(st);
	if (!p)
		return RTCMS_EIO;
	int rc = proc_load(p->db, process, r);
	if (rc == 0 && !r->found)
		rc = RTCMS_ENOENT;
	return rc;
}

/* An open claim pins (claim_inc, claim_seq) until COMMIT or RELEASE —
 * even past its lease, until someone else claims (never deleted before
 * the restore is confirmed). */
static int claim_pins(const struct proc_row *r, uint64_t inc, uint64_t seq)
{
	return r->found && r->claim_id != 0 && r->claim_inc == inc &&
	       r->claim_seq == seq;
}

/* ---- garbage collection -------------------------------------------- */


static int victims_add(struct victim_list *v, const uint8_t *h)
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

/*
 * Delete one checkpoint's rows and drop its chunk references; hashes whose
 * count reaches 0 are deleted from `chunks` and, when gc is given, listed
 * there for unlinking after the commit.
 */
static int delete_ckpt(sqlite3 *db, const char *process, uint64_t inc,
		       uint64_t seq, struct victim_list *gc)
{
	sqlite3_stmt *s = prep_key(db, "SELECT hash FROM ckpt_chunks WHERE process=?"
				   " AND incarnation=? AND sequence=?", process, inc, seq);
	if (!s)
		return RTCMS_EIO;
	int rc;
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		uint8_t h[PROTO_HASH_SIZE];
		meta_col_hash(s, 0, h);
		sqlite3_stmt *u = meta_prep(db, "UPDATE chunks SET refs = refs - 1 WHERE hash=?");
		if (!u) {
			sqlite3_finalize(s);
			return RTCMS_EIO;
		}
		sqlite3_bind_blob(u, 1, h, PROTO_HASH_SIZE, SQLITE_TRANSIENT);
		if (meta_step_done(u) != 0) {
			sqlite3_finalize(s);
			return RTCMS_EIO;
		}
		sqlite3_stmt *q = meta_prep(db, "SELECT refs FROM chunks WHERE hash=?");
		sqlite3_bind_blob(q, 1, h, PROTO_HASH_SIZE, SQLITE_TRANSIENT);
		int zero = q && sqlite3_step(q) == SQLITE_ROW && sqlite3_column_int64(q, 0) <= 0;
		sqlite3_finalize(q);
		if (zero) {
			sqlite3_stmt *d = meta_prep(db, "DELETE FROM chunks WHERE hash=?");
			sqlite3_bind_blob(d, 1, h, PROTO_HASH_SIZE, SQLITE_TRANSIENT);
			if (meta_step_done(d) != 0 || (gc && victims_add(gc, h) != 0)) {
				sqlite3_finalize(s);
				return RTCMS_EIO;
			}
		}
	}
	sqlite3_finalize(s);
	if (rc != SQLITE_DONE)
		return RTCMS_EIO;
	s = prep_key(db, "DELETE FROM ckpt_chunks WHERE process=? AND incarnation=? AND sequence=?",
		     process, inc, seq);
	if (!s)
		return RTCMS_EIO;
	if (meta_step_done(s) != 0)
		return RTCMS_EIO;
	s = prep_key(db, "DELETE FROM checkpoints WHERE process=? AND incarnation=? AND sequence=?",
		     process, inc, seq);
	if (!s)
		return RTCMS_EIO;
	return meta_step_done(s);
}

/* Unlink the files of unreferenced chunks on every mirror, unless an open
 * PUT or GET pins them; then empty the list. Call with st->mu held, after
 * the commit; with committed 0 (no mirror committed: the rows still
 * reference the chunks) only empty the list. */
static void gc_files(struct store *st, struct victim_list *gc, int committed)
{
	for (size_t k = 0; committed && k < gc->n; k++) {
		if (pinset_has(&st->pins, gc->hash[k])) {
			/* in use by an open PUT, GET or scrub: look again
			 * when it lets go (the list is best effort: what it
			 * cannot hold is swept at the next start) */
			victims_add(&st->deferred, gc->hash[k]);
			continue;
		}
		for (size_t i = 0; i < st->n; i++)
			chunkfile_remove(st->m[i].path, gc->hash[k]);
	}
	free(gc->hash);
	gc->hash = NULL;
	gc->n = gc->cap = 0;
}

/*
 * Unlink the files of the given chunks that are neither pinned nor
 * referenced any more (checked in the primary's database). Call with
 * st->mu held.
 */
static void gc_unreferenced(struct store *st, const uint8_t (*hash)[PROTO_HASH_SIZE],
			    size_t n)
{
	struct mirror *p = primary(st);
	sqlite3_stmt *q;

	if (!p || n == 0 || !(q = meta_prep(p->db, "SELECT 1 FROM chunks WHERE hash=?")))
		return;
	for (size_t k = 0; k < n; k++) {
		if (pinset_has(&st->pins, hash[k]))
			continue;
		sqlite3_reset(q);
		sqlite3_bind_blob(q, 1, hash[k], PROTO_HASH_SIZE, SQLITE_TRANSIENT);
		int rc = sqlite3_step(q);
		if (rc == SQLITE_DONE)
			for (size_t i = 0; i < st->n; i++)
				chunkfile_remove(st->m[i].path, hash[k]);
	}
	sqlite3_finalize(q);
}

/* Collect the deferred victims no longer pinned. Call with st->mu held,
 * after unpinning. */
static void gc_deferred(struct store *st)
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

/* ---- open / resync ------------------------------------------------- */

/* 1 if M/MIRROR holds a valid identity, else 0 (missing or damaged). */
static int mirror_identity_ok(const struct mirror *m)
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
static int mirror_identity_write(const struct mirror *m)
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
			snprintf(q, sizeof(q), "%s.bad-%" PRIu64, p, now(st));
			if (rename(p, q) == 0) {
				slog(st, LOG_WARN, "mirror %s: unreadable meta.db "
				     "kept as %s", m->path, q);
				continue;
			}
		}
		unlink(p);
	}
}

/* The database's epoch: a random value set at every store_open on the
 * online mirrors; equal generations with other epochs diverged. */
static int64_t meta_epoch(sqlite3 *db)
{
	sqlite3_stmt *s = meta_prep(db, "SELECT value FROM meta WHERE key='epoch'");
	int64_t e = 0;
	if (s && sqlite3_step(s) == SQLITE_ROW)
		e = sqlite3_column_int64(s, 0);
	sqlite3_finalize(s);
	return e;
}

static int epoch_apply(sqlite3 *db, void *arg)
{
	sqlite3_stmt *s = meta_prep(db, "INSERT OR REPLACE INTO meta VALUES('epoch', ?)");
	if (!s)
		return RTCMS_EIO;
	sqlite3_bind_int64(s, 1, *(int64_t *)arg);
	return meta_step_done(s);
}

/*
 * Give a mirror a fresh copy of the primary's metadata: recreate its
 * meta.db and copy the primary's into it. 0, or RTCMS_EIO (the mirror's
 * database is closed then).
 */
static int mirror_meta_reset(struct store *st, struct mirror *m,
			     const struct mirror *from, int aside)
{
	sqlite3_close(m->db);
	m->db = NULL;
	meta_files_remove(st, m, aside);
	if (meta_open(m->path, &m->db) != 0)
		goto fail;
	if (from && meta_copy(m->db, from->db) != 0)
		goto fail;
	return 0;
fail:
	sqlite3_close(m->db);
	m->db = NULL;
	return RTCMS_EIO;
}

/* Bring every mirror's chunk files up to date: copy referenced chunks that
 * are missing or have the wrong size from a mirror with a good copy. */
static int resync_chunks(struct store *st)
{
	struct mirror *p = primary(st);
	uint8_t *buf = malloc(PROTO_MAX_CHUNK);
	uint64_t copied = 0, lost = 0;
	int wrote[STORE_MAX_MIRRORS] = { 0 };
	int rc = 0;

	if (!p || !buf) {
		free(buf);
		return p ? RTCMS_ENOMEM : RTCMS_EIO;
	}
	sqlite3_stmt *s = meta_prep(p->db, "SELECT hash, size FROM chunks");
	if (!s) {
		free(buf);
		return RTCMS_EIO;
	}
	while (sqlite3_step(s) == SQLITE_ROW) {
		uint8_t h[PROTO_HASH_SIZE];
		meta_col_hash(s, 0, h);
		size_t size = (size_t)sqlite3_column_int64(s, 1);
		int missing[STORE_MAX_MIRRORS] = { 0 }, nmissing = 0;
		for (size_t i = 0; i < st->n; i++) {
			if (st->m[i].online && !chunkfile_present(st->m[i].path, h, size)) {
				missing[i] = 1;
				nmissing++;
			}
		}
		if (!nmissing)
			continue;
		int good = -1;
		for (size_t i = 0; i < st->n && good < 0; i++)
			if (st->m[i].online && !missing[i] &&
			    chunkfile_read(st->m[i].path, h, size, buf) == 0)
				good = (int)i;
		if (good < 0) {
			char hx[17];
			lost++;
			slog(st, LOG_ERROR, "resync: chunk %s… has no good copy on "
			     "any mirror", hexs(h, hx));
			continue;
		}
		struct chunkfile_enc enc;
		chunkfile_encode(buf, size, st->zlevel, &enc);
		for (size_t i = 0; i < st->n; i++) {
			if (!missing[i])
				continue;
			if (chunkfile_write_enc(st->m[i].path, h, &enc, 0) != 0) {
				mirror_offline(st, &st->m[i], "resync write failed");
				continue;
			}
			wrote[i] = 1;
			copied++;
		}
		chunkfile_enc_free(&enc);
	}
	sqlite3_finalize(s);
	free(buf);
	/* one flush per mirror for all the copies */
	for (size_t i = 0; i < st->n; i++)
		if (wrote[i] && st->m[i].online && chunkfile_sync(st->m[i].path) != 0)
			mirror_offline(st, &st->m[i], "flushing resynchronised chunk "
				       "files failed");
	if (copied)
		slog(st, LOG_WARN, "resync: copied %" PRIu64 " chunk file(s) to "
		     "mirrors that lacked them", copied);
	if (lost)
		slog(st, LOG_ERROR, "resync: %" PRIu64 " chunk(s) have no good "
		     "copy; `rtcmsctl store scrub` lists the damage", lost);
	return rc;
}

/* Remove temporary files and chunk files no checkpoint references. */
static void sweep_orphans(struct store *st, struct mirror *m)
{
	struct mirror *p = primary(st);
	char dir[4200], path[4600];
	uint64_t removed = 0;
	sqlite3_stmt *q = meta_prep(p->db, "SELECT 1 FROM chunks WHERE hash=?");

	if (!q)
		return;
	for (int i = 0; i < 256; i++) {
		snprintf(dir, sizeof(dir), "%s/chunks/%02x", m->path, i);
		DIR *d = opendir(dir);
		if (!d)
			continue;
		struct dirent *e;
		while ((e = readdir(d)) != NULL) {
			uint8_t h[PROTO_HASH_SIZE];
			if (e->d_name[0] == '.' && (e->d_name[1] == '\0' ||
			    (e->d_name[1] == '.' && e->d_name[2] == '\0')))
				continue;
			snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
			if (chunkfile_parse_name(e->d_name, h) != 0) {
				if (strstr(e->d_name, ".tmp.")) {
					unlink(path);
					removed++;
				}
				continue;
			}
			sqlite3_reset(q);
			sqlite3_bind_blob(q, 1, h, PROTO_HASH_SIZE, SQLITE_TRANSIENT);
			if (sqlite3_step(q) != SQLITE_ROW) {
				unlink(path);
				removed++;
			}
		}
		closedir(d);
	}
	sqlite3_finalize(q);
	if (removed)
		slog(st, LOG_INFO, "mirror %s: removed %" PRIu64 " unreferenced "
		     "or temporary file(s) left by an interrupted run", m->path,
		     removed);
}

/* SQLite's own consistency check of a database: 0 or RTCMS_ECORRUPT. */
static int meta_check(sqlite3 *db)
{
	sqlite3_stmt *s = meta_prep(db, "PRAGMA quick_check");
	int ok = s && sqlite3_step(s) == SQLITE_ROW &&
		 strcmp((const char *)sqlite3_column_text(s, 0), "ok") == 0;
	sqlite3_finalize(s);
	return ok ? 0 : RTCMS_ECORRUPT;
}

/* What store_open found in one mirror directory. */
struct mirror_scan {
	int reachable;        /* directories exist or were created */
	int identity;         /* M/MIRROR was valid */
	int had_meta;         /* M/meta.db existed */
	int trusted;          /* identity, and a sound meta.db that was updated */
	int64_t gen, epoch;
};

static void mirror_scan(struct store *st, struct mirror *m, struct mirror_scan *sc)
{
	char path[4200];
	struct stat sb;

	memset(sc, 0, sizeof(*sc));
	sc->gen = -1;
	if (chunkfile_prepare(m->path) != 0) {
		slog(st, LOG_ERROR, "mirror %s: cannot prepare the directory: %s",
		     m->path, strerror(errno));
		return;
	}
	sc->reachable = 1;
	sc->identity = mirror_identity_ok(m);
	snprintf(path, sizeof(path), "%s/meta.db", m->path);
	sc->had_meta = stat(path, &sb) == 0;
	if (!sc->identity || !sc->had_meta)
		return;
	if (meta_open(m->path, &m->db) != 0 || meta_check(m->db) != 0 ||
	    (sc->gen = meta_generation(m->db)) < 0) {
		slog(st, LOG_ERROR, "mirror %s: meta.db is unreadable or damaged",
		     m->path);
		sqlite3_close(m->db);
		m->db = NULL;
		sc->gen = -1;
		return;
	}
	sc->epoch = meta_epoch(m->db);
	/* generation 0: never updated (every open commits an epoch), or
	 * emptied by damage: nothing to trust */
	sc->trusted = sc->gen >= 1;
}

int store_open(const struct store_options *opt, struct store **out)
{
	struct store *st;
	struct mirror_scan sc[STORE_MAX_MIRRORS];
	int rc = RTCMS_EIO;

	*out = NULL;
	if (proto_init() != 0)
		return RTCMS_EINTERNAL;
	if (opt->mirror_count < 1 || opt->mirror_count > STORE_MAX_MIRRORS ||
	    (opt->compress != STORE_COMPRESS_OFF && opt->compress != STORE_COMPRESS_ZSTD) ||
	    opt->compress_level < 0 || opt->compress_level > CHUNKFILE_LEVEL_MAX)
		return RTCMS_ECONFIG;
	st = calloc(1, sizeof(*st));
	if (!st)
		return RTCMS_ENOMEM;
	pthread_mutex_init(&st->mu, NULL);
	st->n = opt->mirror_count;
	st->retain = opt->retain ? opt->retain : 2;
	if (opt->compress == STORE_COMPRESS_ZSTD)
		st->zlevel = opt->compress_level ? opt->compress_level
						 : STORE_COMPRESS_LEVEL_DEFAULT;
	st->now_ms = opt->now_ms ? opt->now_ms : default_now;
	st->now_ctx = opt->now_ctx;
	st->log = opt->log;
	st->log_ctx = opt->log_ctx;

	for (size_t i = 0; i < st->n; i++) {
		if (strlen(opt->mirrors[i]) > PROTO_TEXT_MAX) {
			slog(st, LOG_ERROR, "mirror path too long: %s", opt->mirrors[i]);
			rc = RTCMS_ECONFIG;
			goto fail;
		}
		for (size_t j = 0; j < i; j++) {
			if (strcmp(st->m[j].path, opt->mirrors[i]) == 0) {
				slog(st, LOG_ERROR, "mirror %s given twice", opt->mirrors[i]);
				rc = RTCMS_ECONFIG;
				goto fail;
			}
		}
		snprintf(st->m[i].path, sizeof(st->m[i].path), "%s", opt->mirrors[i]);
	}

	/* 1. Look at every mirror before changing anything. */
	int best = -1, any = 0;
	for (size_t i = 0; i < st->n; i++) {
		mirror_scan(st, &st->m[i], &sc[i]);
		any |= sc[i].reachable;
		if (sc[i].trusted && (best < 0 || sc[i].gen > sc[best].gen))
			best = (int)i;
	}
	if (!any) {
		slog(st, LOG_ERROR, "no usable mirror");
		goto fail;
	}
	if (best < 0) {
		/* No metadata anywhere: a new store, unless chunk files say
		 * that metadata was lost; then start nothing and remove
		 * nothing, so that meta.db can be restored. */
		for (size_t i = 0; i < st->n; i++) {
			if (sc[i].reachable && chunkfile_any(st->m[i].path)) {
				slog(st, LOG_ERROR, "mirror %s holds chunk files but no "
				     "mirror has readable metadata (meta.db): refusing "
				     "to start; restore a meta.db, or empty the mirrors "
				     "to start a new store", st->m[i].path);
				rc = RTCMS_ECORRUPT;
				goto fail;
			}
		}
	}

	/* 2. The newest metadata wins and is copied over missing, unreadable,
	 * stale and diverged copies. */
	for (size_t i = 0; i < st->n; i++) {
		struct mirror *m = &st->m[i];
		struct mirror *from = best >= 0 ? &st->m[best] : NULL;
		const char *what = NULL;
		if (!sc[i].reachable)
			continue;
		if (!sc[i].identity && mirror_identity_write(m) != 0) {
			slog(st, LOG_ERROR, "mirror %s: cannot write MIRROR", m->path);
			sqlite3_close(m->db);
			m->db = NULL;
			continue;
		}
		if ((int)i == best) {
			what = NULL;
		} else if (!sc[i].identity) {
			what = "new";
		} else if (!sc[i].had_meta) {
			what = "missing";
		} else if (!sc[i].trusted) {
			what = m->db ? "empty" : "unreadable";
		} else if (best >= 0 && sc[i].gen < sc[best].gen) {
			what = "stale";
		} else if (best >= 0 && sc[i].epoch != sc[best].epoch) {
			/* same generation reached by other histories: a mirror
			 * ran alone while this one was away. One must go. */
			what = "DIVERGED (each was updated without the other)";
		}
		if (what || !m->db) {
			if (from)
				slog(st, LOG_WARN, "mirror %s: metadata %s (generation "
				     "%" PRId64 ", newest %" PRId64 "): copying from %s",
				     m->path, what ? what : "new", sc[i].gen,
				     sc[best].gen, from->path);
			if (mirror_meta_reset(st, m, from, sc[i].identity &&
					      sc[i].had_meta && !m->db) != 0) {
				slog(st, LOG_ERROR, "mirror %s: cannot copy the "
				     "metadata; leaving it offline", m->path);
				continue;
			}
		}
		m->online = 1;
	}
	if (!primary(st)) {
		slog(st, LOG_ERROR, "no usable mirror");
		goto fail;
	}

	/* 3. A new epoch on every online mirror: a mirror left out now and
	 * updated alone later is recognised as diverged. */
	int64_t epoch;
	do
		randombytes_buf(&epoch, sizeof(epoch));
	while (epoch <= 0);
	if ((rc = apply(st, epoch_apply, &epoch)) != 0)
		goto fail;

	/* 4. Remove what no checkpoint references (only with metadata that
	 * can tell), and copy missing chunk files between mirrors. */
	for (size_t i = 0; best >= 0 && i < st->n; i++)
		if (st->m[i].online)
			sweep_orphans(st, &st->m[i]);
	rc = resync_chunks(st);
	if (rc)
		goto fail;
	char zinfo[48] = "off";
	if (st->zlevel)
		snprintf(zinfo, sizeof(zinfo), "zstd level %d", st->zlevel);
	slog(st, LOG_INFO, "store open: %zu of %zu mirror(s) online, metadata "
	     "generation %" PRId64 ", compression of new chunk files %s",
	     online_count(st), st->n, meta_generation(primary(st)->db), zinfo);
	*out = st;
	return 0;
fail:
	store_free(st);
	return rc;
}

void store_free(struct store *st)
{
	if (!st)
		return;
	for (size_t i = 0; i < st->n; i++)
		sqlite3_close(st->m[i].db);
	pinset_free(&st->pins);
	free(st->deferred.hash);
	pthread_mutex_destroy(&st->mu);
	free(st);
}

/* ---- PUT ----------------------------------------------------------- */

/* Look up a stored checkpoint's hash, size and depth (any of them may
 * be NULL): 1 found, 0 not, <0 error. */
static int ckpt_lookup(sqlite3 *db, const char *process, uint64_t inc,
		       uint64_t seq, uint8_t hash[PROTO_HASH_SIZE], uint64_t *size,
		       uint32_t *depth, uint8_t state[PROTO_HASH_SIZE])
{
	sqlite3_stmt *s = prep_key(db, "SELECT hash, size, depth, state_hash FROM checkpoints"
				   " WHERE process=? AND incarnation=? AND sequence=?",
				   process, inc, seq);
	if (!s)
		return RTCMS_EIO;
	int rc = sqlite3_step(s);
	if (rc == SQLITE_ROW) {
		if (hash)
			meta_col_hash(s, 0, hash);
		if (size)
			*size = meta_col_u64(s, 1);
		if (depth)
			*depth = (uint32_t)sqlite3_column_int64(s, 2);
		if (state)
			meta_col_hash(s, 3, state);
	}
	sqlite3_finalize(s);
	return rc == SQLITE_ROW ? 1 : rc == SQLITE_DONE ? 0 : RTCMS_EIO;
}

/* 1 if a checkpoint of (process, inc) is a delta against seq, 0 if none
 * is, RTCMS_EIO. With dep, the newest such sequence goes there. */
static int ckpt_has_dependent(sqlite3 *db, const char *process, uint64_t inc,
			      uint64_t seq, uint64_t *dep)
{
	sqlite3_stmt *s = prep_key(db, "SELECT sequence FROM checkpoints WHERE process=?"
				   " AND incarnation=? AND base=? ORDER BY sequence DESC LIMIT 1",
				   process, inc, seq);
	if (!s)
		return RTCMS_EIO;
	int rc = sqlite3_step(s);
	if (rc == SQLITE_ROW && dep)
		*dep = meta_col_u64(s, 0);
	sqlite3_finalize(s);
	return rc == SQLITE_ROW ? 1 : rc == SQLITE_DONE ? 0 : RTCMS_EIO;
}

/*
 * The depth a delta against (process, inc, base) gets: its base's depth
 * + 1. 0 and *depth, RTCMS_ENOENT if the base is not stored, RTCMS_ETOOBIG
 * if the chain would be deeper than STORE_MAX_DEPTH, RTCMS_EIO.
 */
static int delta_depth(sqlite3 *db, const char *process, uint64_t inc,
		       uint64_t base, uint32_t *depth)
{
	uint32_t d = 0;
	int rc = ckpt_lookup(db, process, inc, base, NULL, NULL, &d, NULL);
	if (rc < 0)
		return rc;
	if (rc == 0)
		return RTCMS_ENOENT;
	if (d >= STORE_MAX_DEPTH)
		return RTCMS_ETOOBIG;
	*depth = d + 1;
	return 0;
}

/* Log why a delta PUT was refused (its base missing or too deep). */
static void delta_refused(struct store *st, const struct proto_ckpt_meta *m, int rc)
{
	if (rc == RTCMS_ENOENT)
		slog(st, LOG_WARN, "PUT %s %" PRIu64 "/%" PRIu64 ": base %" PRIu64
		     " of %s/%" PRIu64 " is not stored: send a full image",
		     m->process, m->incarnation, m->sequence, m->base, m->process,
		     m->incarnation);
	else if (rc == RTCMS_ETOOBIG)
		slog(st, LOG_WARN, "PUT %s %" PRIu64 "/%" PRIu64 ": a delta against "
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
 * commit. */
static int put_precheck(struct store *st, const struct proto_ckpt_meta *meta,
			struct proto_put_ack *ack)
{
	struct mirror *p = primary(st);
	uint8_t h[PROTO_HASH_SIZE];
	uint64_t size;
	uint32_t depth = 0;
	struct proc_row r;

	if (!p)
		return RTCMS_EIO;
	uint8_t state[PROTO_HASH_SIZE];
	int rc = ckpt_lookup(p->db, meta->process, meta->incarnation,
			     meta->sequence, h, &size, &depth, state);
	if (rc < 0)
		return rc;
	if (rc == 1) {
		if (sodium_memcmp(h, meta->hash, PROTO_HASH_SIZE) == 0 &&
		    size == meta->size) {
			fill_ack(ack, meta, (uint8_t)online_count(st), 1, depth);
			return 1;
		}
		/* the same state encoded otherwise (a delta against another
		 * base, or full): two managers pulled it at once */
		if (!sodium_is_zero(state, PROTO_HASH_SIZE) &&
		    sodium_memcmp(state, meta->state_hash, PROTO_HASH_SIZE) == 0) {
			fill_ack(ack, meta, (uint8_t)online_count(st), 1, depth);
			ack->size = size;
			memcpy(ack->hash, h, PROTO_HASH_SIZE);
			return 1;
		}
		return RTCMS_EEXIST;
	}
	if (proc_load(p->db, meta->process, &r) != 0)
		return RTCMS_EIO;
	if (r.found && meta->incarnation < r.incarnation) {
		memset(ack, 0, sizeof(*ack));
		ack->incarnation = r.incarnation;
		return RTCMS_EFENCED;
	}
	if (meta->base) {
		rc = delta_depth(p->db, meta->process, meta->incarnation,
				 meta->base, &depth);
		if (rc < 0) {
			delta_refused(st, meta, rc);
			return rc;
		}
	}
	return 0;
}

int store_put_begin(struct store *st, const struct proto_ckpt_meta *meta,
		    struct store_put **out, struct proto_put_ack *ack)
{
	struct store_put *put;
	int rc;

	*out = NULL;
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
	put = calloc(1, sizeof(*put));
	if (!put)
		return RTCMS_ENOMEM;
	put->st = st;
	put->meta = *meta;
	if (meta->spec_len) {
		put->spec = malloc(meta->spec_len);
		if (!put->spec) {
			free(put);
			return RTCMS_ENOMEM;
		}
		memcpy(put->spec, meta->spec, meta->spec_len);
	}
	put->meta.spec = put->spec;
	proto_image_hash_init(&put->ih, meta->size);
	pthread_mutex_lock(&st->mu);
	rc = put_precheck(st, meta, ack);
	if (rc == 0)
		st->open_puts++;
	pthread_mutex_unlock(&st->mu);
	if (rc != 0) {
		free(put->spec);
		free(put);
		return rc;
	}
	*out = put;
	return 0;
}

int store_put_check(struct store_put *put, const struct proto_chunk *chunk)
{
	if (put->failed)
		return put->failed;
	if (put->count >= put->meta.chunk_count ||
	    chunk->offset != put->next_offset || chunk->len == 0 ||
	    chunk->len > PROTO_MAX_CHUNK ||
	    chunk->len > put->meta.size - chunk->offset)
		return put->failed = RTCMS_EPROTO;
	if (proto_image_hash_update(&put->ih, chunk->offset, chunk->len,
				    chunk->hash) != 0)
		return put->failed = RTCMS_EPROTO;
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
	memcpy(c->hash, chunk->hash, PROTO_HASH_SIZE);
	put->next_offset += chunk->len;
	return 0;
}

int store_put_write(struct store_put *put, const struct proto_chunk *chunk)
{
	struct store *st = put->st;
	uint8_t h[PROTO_HASH_SIZE];
	const char *dirs[STORE_MAX_MIRRORS];
	size_t ndirs = 0;
	int rc = 0;

	/* The data must be what its hash says (checked off the event loop). */
	proto_chunk_hash(chunk->data, chunk->len, h);
	if (sodium_memcmp(h, chunk->hash, PROTO_HASH_SIZE) != 0)
		return RTCMS_ECORRUPT;

	pthread_mutex_lock(&st->mu);
	if (put->npinned == put->pinned_cap) {
		uint32_t cap = put->pinned_cap ? put->pinned_cap * 2 : 16;
		void *np = realloc(put->pinned, (size_t)cap * PROTO_HASH_SIZE);
		if (np) {
			put->pinned = np;
			put->pinned_cap = cap;
		}
	}
	rc = put->npinned < put->pinned_cap ? pinset_add(&st->pins, h) : RTCMS_ENOMEM;
	if (rc == 0)
		memcpy(put->pinned[put->npinned++], h, PROTO_HASH_SIZE);
	for (size_t i = 0; i < st->n; i++)
		if (st->m[i].online)
			dirs[ndirs++] = st->m[i].path;
	pthread_mutex_unlock(&st->mu);
	if (rc)
		return rc;

	size_t written = 0, failed = 0, full = 0, fresh = 0;
	int res[STORE_MAX_MIRRORS];
	struct chunkfile_enc enc = { 0 };
	for (size_t i = 0; i < ndirs; i++) {
		res[i] = 0;
		if (chunkfile_present(dirs[i], h, chunk->len)) {
			written++; /* deduplicated: an identical chunk is stored */
			continue;
		}
		/* encoded (compressed) once, for the first mirror lacking it */
		if (!enc.data)
			chunkfile_encode(chunk->data, chunk->len, st->zlevel, &enc);
		res[i] = chunkfile_write_enc(dirs[i], h, &enc, 0);
		if (res[i] == 0) {
			written++;
			fresh++;
			continue;
		}
		failed++;
		full += res[i] == RTCMS_ENOSPC;
		rc = res[i];
	}
	if (fresh) {
		atomic_fetch_add_explicit(&put->new_chunks, 1, memory_order_relaxed);
		atomic_fetch_add_explicit(&put->new_bytes, chunk->len, memory_order_relaxed);
		atomic_fetch_add_explicit(&put->disk_bytes, enc.len, memory_order_relaxed);
	}
	chunkfile_enc_free(&enc);
	if (!failed)
		return 0;
	/* Disk full everywhere: the PUT fails, but nothing diverged and the
	 * mirrors stay online (for reads, and for writes once space is
	 * freed). Otherwise a mirror that failed while another took the
	 * chunk goes offline: the store goes on degraded. */
	if (written == 0 && full == failed)
		return RTCMS_ENOSPC;
	pthread_mutex_lock(&st->mu);
	for (size_t i = 0; i < ndirs; i++)
		for (size_t k = 0; res[i] != 0 && k < st->n; k++)
			if (strcmp(st->m[k].path, dirs[i]) == 0)
				mirror_offline(st, &st->m[k], res[i] == RTCMS_ENOSPC
					       ? "disk full" : "chunk write failed");
	pthread_mutex_unlock(&st->mu);
	return written > 0 ? 0 : rc;
}

void store_put_stats(const struct store_put *put, struct store_put_stats *out)
{
	out->new_chunks = (uint32_t)atomic_load(&put->new_chunks);
	out->new_bytes = atomic_load(&put->new_bytes);
	out->disk_bytes = atomic_load(&put->disk_bytes);
}

struct put_args {
	struct store_put *put;
	uint64_t now;
	unsigned retain;
	struct victim_list *gc;       /* filled on the first mirror only */
	int first;
	uint32_t deleted;
	uint32_t depth;               /* the new checkpoint's depth */
};

struct ckpt_key {
	uint64_t inc, seq;
};

/*
 * Retention of a process: keep its newest `retain` checkpoints, the one an
 * open claim pins, and every checkpoint these depend on (base, its base,
 * ... down to a full image); delete the others (at most RETAIN_BATCH now,
 * the rest at the next PUT), their unreferenced chunks listed in gc.
 *
 * The checkpoints that are not kept are closed under "is a delta against":
 * a delta against one of them is not kept either (else they would be). A
 * delta has a higher sequence than its base in the same incarnation, so,
 * walking the candidates from the newest down, every delta against a
 * candidate was decided before it: a candidate still depended on when its
 * turn comes is needed by a kept checkpoint, one depended on by nothing is
 * not, and deleting it may free its base further down.
 */
static int retention_apply(sqlite3 *db, const char *process, unsigned retain,
			   struct victim_list *gc, uint32_t *deleted)
{
	struct ckpt_key *old = NULL;
	size_t n = 0, cap = 0;
	struct proc_row r;
	int rc = 0, step;

	*deleted = 0;
	if (proc_load(db, process, &r) != 0)
		return RTCMS_EIO;
	sqlite3_stmt *s = meta_prep(db, "SELECT incarnation, sequence FROM checkpoints"
			       " WHERE process=? ORDER BY incarnation DESC, sequence DESC"
			       " LIMIT -1 OFFSET ?");
	if (!s)
		return RTCMS_EIO;
	meta_bind_text(s, 1, process);
	sqlite3_bind_int64(s, 2, retain);
	while ((step = sqlite3_step(s)) == SQLITE_ROW) {
		if (n == cap) {
			size_t ncap = cap ? cap * 2 : 16;
			void *p = realloc(old, ncap * sizeof(*old));
			if (!p) {
				rc = RTCMS_ENOMEM;
				break;
			}
			old = p;
			cap = ncap;
		}
		old[n].inc = meta_col_u64(s, 0);
		old[n].seq = meta_col_u64(s, 1);
		n++;
	}
	sqlite3_finalize(s);
	if (rc == 0 && step != SQLITE_DONE)
		rc = RTCMS_EIO;
	for (size_t i = 0; i < n && rc == 0 && *deleted < RETAIN_BATCH; i++) {
		if (claim_pins(&r, old[i].inc, old[i].seq))
			continue;
		rc = ckpt_has_dependent(db, process, old[i].inc, old[i].seq, NULL);
		if (rc == 1) {
			rc = 0; /* the base of a kept checkpoint */
			continue;
		}
		if (rc == 0)
			rc = delete_ckpt(db, process, old[i].inc, old[i].seq, gc);
		if (rc == 0)
			(*deleted)++;
	}
	free(old);
	return rc;
}

/* Insert the checkpoint, then apply retention. */
static int put_apply(sqlite3 *db, void *arg)
{
	struct put_args *a = arg;
	struct store_put *put = a->put;
	const struct proto_ckpt_meta *m = &put->meta;
	struct proc_row r;
	sqlite3_stmt *s;
	uint32_t depth = 0;
	int rc;

	if (proc_load(db, m->process, &r) != 0)
		return RTCMS_EIO;
	if (r.found && m->incarnation < r.incarnation)
		return RTCMS_EFENCED;
	/* the base must still be there: retention or a DELETE may have
	 * removed it since PUT_BEGIN */
	if (m->base && (rc = delta_depth(db, m->process, m->incarnation, m->base,
					 &depth)) != 0)
		return rc;
	if (!r.found) {
		s = meta_prep(db, "INSERT INTO processes(process, incarnation, node) VALUES(?,?,?)");
		if (!s)
			return RTCMS_EIO;
		meta_bind_text(s, 1, m->process);
		meta_bind_u64(s, 2, m->incarnation);
		meta_bind_u64(s, 3, m->node);
		if (meta_step_done(s))
			return RTCMS_EIO;
	} else if (m->incarnation > r.incarnation) {
		/* A checkpoint of a newer incarnation (taken after a restore
		 * committed elsewhere, e.g. through another store path) raises
		 * the fencing token: older ones are refused from now on. */
		s = meta_prep(db, "UPDATE processes SET incarnation=?, node=? WHERE process=?");
		if (!s)
			return RTCMS_EIO;
		meta_bind_u64(s, 1, m->incarnation);
		meta_bind_u64(s, 2, m->node);
		meta_bind_text(s, 3, m->process);
		if (meta_step_done(s))
			return RTCMS_EIO;
	}
	s = meta_prep(db, "INSERT INTO checkpoints(process, incarnation, sequence, node, size,"
		 " hash, created_ms, spec, chunk_count, base, depth, full_size, state_hash)"
		 " VALUES(?,?,?,?,?,?,?,?,?,?,?,?,?)");
	if (!s)
		return RTCMS_EIO;
	meta_bind_text(s, 1, m->process);
	meta_bind_u64(s, 2, m->incarnation);
	meta_bind_u64(s, 3, m->sequence);
	meta_bind_u64(s, 4, m->node);
	meta_bind_u64(s, 5, m->size);
	sqlite3_bind_blob(s, 6, m->hash, PROTO_HASH_SIZE, SQLITE_TRANSIENT);
	meta_bind_u64(s, 7, m->created_ms ? m->created_ms : a->now);
	sqlite3_bind_blob(s, 8, put->spec ? (const void *)put->spec : "", (int)m->spec_len,
			  SQLITE_TRANSIENT);
	sqlite3_bind_int64(s, 9, put->count);
	meta_bind_u64(s, 10, m->base);
	sqlite3_bind_int64(s, 11, depth);
	meta_bind_u64(s, 12, m->base ? m->full_size : m->size);
	if (sodium_is_zero(m->state_hash, PROTO_HASH_SIZE))
		sqlite3_bind_null(s, 13);
	else
		sqlite3_bind_blob(s, 13, m->state_hash, PROTO_HASH_SIZE, SQLITE_TRANSIENT);
	if (meta_step_done(s))
		return RTCMS_EIO;

	sqlite3_stmt *ins = meta_prep(db, "INSERT INTO ckpt_chunks VALUES(?,?,?,?,?,?,?)");
	sqlite3_stmt *ref = meta_prep(db, "INSERT INTO chunks(hash, size, refs) VALUES(?,?,1)"
				 " ON CONFLICT(hash) DO UPDATE SET refs = refs + 1");
	rc = ins && ref ? 0 : RTCMS_EIO;
	for (uint32_t i = 0; i < put->count && rc == 0; i++) {
		const struct chunk_ref *c = &put->chunks[i];
		sqlite3_reset(ins);
		meta_bind_text(ins, 1, m->process);
		meta_bind_u64(ins, 2, m->incarnation);
		meta_bind_u64(ins, 3, m->sequence);
		sqlite3_bind_int64(ins, 4, i);
		meta_bind_u64(ins, 5, c->offset);
		sqlite3_bind_int64(ins, 6, c->len);
		sqlite3_bind_blob(ins, 7, c->hash, PROTO_HASH_SIZE, SQLITE_TRANSIENT);
		sqlite3_reset(ref);
		sqlite3_bind_blob(ref, 1, c->hash, PROTO_HASH_SIZE, SQLITE_TRANSIENT);
		sqlite3_bind_int64(ref, 2, c->len);
		if (sqlite3_step(ins) != SQLITE_DONE || sqlite3_step(ref) != SQLITE_DONE)
			rc = RTCMS_EIO;
	}
	sqlite3_finalize(ins);
	sqlite3_finalize(ref);
	if (rc)
		return rc;

	rc = retention_apply(db, m->process, a->retain, a->first ? a->gc : NULL,
			     &a->deleted);
	if (rc)
		return rc;
	a->depth = depth;
	a->first = 0;
	return 0;
}

/* Unpin an abandoned PUT's chunks and remove the files it wrote that
 * nothing else references or uses. */
static void put_unpin(struct store_put *put)
{
	struct store *st = put->st;
	pthread_mutex_lock(&st->mu);
	for (uint32_t i = 0; i < put->npinned; i++)
		pinset_del(&st->pins, put->pinned[i]);
	st->open_puts--;
	gc_unreferenced(st, (const uint8_t (*)[PROTO_HASH_SIZE])put->pinned,
			put->npinned);
	gc_deferred(st);
	pthread_mutex_unlock(&st->mu);
}

static void put_free(struct store_put *put)
{
	free(put->pinned);
	free(put->chunks);
	free(put->spec);
	free(put);
}

struct sync_job {
	const char *dir;
	int rc;
};

static void *sync_thread(void *arg)
{
	struct sync_job *j = arg;
	j->rc = chunkfile_sync(j->dir);
	return NULL;
}

/* syncfs every directory at once (mirrors on different disks flush in
 * parallel); rc[i] gets each result. */
static void sync_all(const char *const *dirs, size_t n, int *rc)
{
	struct sync_job jobs[STORE_MAX_MIRRORS];

	for (size_t i = 0; i < n; i++)
		jobs[i] = (struct sync_job){ dirs[i], 0 };
	parallel_run(sync_thread, jobs, sizeof(jobs[0]), n);
	for (size_t i = 0; i < n; i++)
		rc[i] = jobs[i].rc;
}

int store_put_commit(struct store_put *put, uint32_t chunk_count,
		     struct proto_put_ack *ack)
{
	struct store *st = put->st;
	struct victim_list gc = { 0 };
	uint8_t img[PROTO_HASH_SIZE];
	int rc;

	if (put->failed)
		rc = put->failed;
	else if (chunk_count != put->count || put->count != put->meta.chunk_count ||
		 put->next_offset != put->meta.size)
		rc = RTCMS_EPROTO;
	else if (proto_image_hash_final(&put->ih, img) != 0)
		rc = RTCMS_EPROTO;
	else if (sodium_memcmp(img, put->meta.hash, PROTO_HASH_SIZE) != 0)
		rc = RTCMS_ECORRUPT;
	else
		rc = 0;
	if (rc) {
		store_put_abort(put);
		return rc;
	}

	/* Make the chunk files durable on every online mirror before the
	 * metadata that references them commits: one syncfs per mirror
	 * instead of an fsync per chunk file and directory. */
	const char *dirs[STORE_MAX_MIRRORS];
	size_t ndirs = 0;
	pthread_mutex_lock(&st->mu);
	for (size_t i = 0; i < st->n; i++)
		if (st->m[i].online)
			dirs[ndirs++] = st->m[i].path;
	pthread_mutex_unlock(&st->mu);
	int synced[STORE_MAX_MIRRORS];
	sync_all(dirs, ndirs, synced);

	pthread_mutex_lock(&st->mu);
	for (size_t i = 0; i < ndirs; i++)
		for (size_t k = 0; synced[i] != 0 && k < st->n; k++)
			if (strcmp(st->m[k].path, dirs[i]) == 0)
				mirror_offline(st, &st->m[k], "flushing chunk files failed");
	rc = put_precheck(st, &put->meta, ack);
	if (rc == 0) {
		struct put_args a = { put, now(st), st->retain, &gc, 1, 0, 0 };
		rc = apply(st, put_apply, &a);
		if (rc == RTCMS_ENOENT || rc == RTCMS_ETOOBIG)
			delta_refused(st, &put->meta, rc);
		if (rc == 0) {
			fill_ack(ack, &put->meta, (uint8_t)online_count(st), 0, a.depth);
			if (a.deleted)
				slog(st, LOG_DEBUG, "retention: removed %u old "
				     "checkpoint(s) of %s", a.deleted,
				     put->meta.process);
		}
	} else if (rc == 1) {
		rc = 0; /* stored meanwhile by someone else: same content */
	}
	for (uint32_t i = 0; i < put->npinned; i++)
		pinset_del(&st->pins, put->pinned[i]);
	st->open_puts--;
	gc_files(st, &gc, rc == 0);
	if (rc != 0)
		gc_unreferenced(st, (const uint8_t (*)[PROTO_HASH_SIZE])put->pinned,
				put->npinned);
	gc_deferred(st);
	pthread_mutex_unlock(&st->mu);
	put_free(put);
	return rc;
}

void store_put_abort(struct store_put *put)
{
	if (!put)
		return;
	/* Chunks written for it stay as orphans only if nothing references
	 * them; they are swept at the next start. */
	put_unpin(put);
	put_free(put);
}

/* ---- GET ----------------------------------------------------------- */

/* A checkpoint row as stored (spec left out). */
struct ckpt_row {
	uint64_t inc, seq, node, size, created_ms, base, full_size;
	uint32_t chunk_count, depth;
	uint8_t hash[PROTO_HASH_SIZE];
	uint8_t state_hash[PROTO_HASH_SIZE];
};

/* Read a row of a SELECT CKPT_COLS statement. */
static void row_load(sqlite3_stmt *s, struct ckpt_row *r)
{
	r->inc = meta_col_u64(s, 1);
	r->seq = meta_col_u64(s, 2);
	r->node = meta_col_u64(s, 3);
	r->size = meta_col_u64(s, 4);
	meta_col_hash(s, 5, r->hash);
	r->created_ms = meta_col_u64(s, 6);
	r->chunk_count = (uint32_t)sqlite3_column_int64(s, 8);
	r->base = meta_col_u64(s, 9);
	r->depth = (uint32_t)sqlite3_column_int64(s, 10);
	r->full_size = meta_col_u64(s, 11);
	meta_col_hash(s, 12, r->state_hash);
}

/* Load the row of (process, inc, seq): 0, RTCMS_ENOENT, RTCMS_EIO. */
static int row_get(sqlite3 *db, const char *process, uint64_t inc, uint64_t seq,
		   struct ckpt_row *r)
{
	sqlite3_stmt *s = prep_key(db, "SELECT " CKPT_COLS " FROM checkpoints"
				   " WHERE process=? AND incarnation=? AND sequence=?",
				   process, inc, seq);
	if (!s)
		return RTCMS_EIO;
	int rc = sqlite3_step(s);
	if (rc == SQLITE_ROW)
		row_load(s, r);
	sqlite3_finalize(s);
	return rc == SQLITE_ROW ? 0 : rc == SQLITE_DONE ? RTCMS_ENOENT : RTCMS_EIO;
}

/*
 * Load the chunk list of a checkpoint (count entries) into *out (malloc'ed;
 * NULL when count is 0) and pin each chunk; *pinned says how many were
 * pinned, also on failure (the caller unpins them). Call with st->mu held.
 * 0, RTCMS_ENOMEM, RTCMS_EIO (the list is not count entries long).
 */
static int chunks_load_pin(struct store *st, sqlite3 *db, const char *process,
			   uint64_t inc, uint64_t seq, uint32_t count,
			   struct chunk_ref **out, uint32_t *pinned)
{
	struct chunk_ref *c = NULL;
	int rc = 0, step;

	*out = NULL;
	*pinned = 0;
	if (count && !(c = calloc(count, sizeof(*c))))
		return RTCMS_ENOMEM;
	*out = c;
	sqlite3_stmt *s = prep_key(db, "SELECT offset, len, hash FROM ckpt_chunks WHERE"
				   " process=? AND incarnation=? AND sequence=? ORDER BY idx",
				   process, inc, seq);
	if (!s)
		return RTCMS_EIO;
	while ((step = sqlite3_step(s)) == SQLITE_ROW) {
		if (*pinned == count) {
			rc = RTCMS_EIO; /* more than the row says */
			break;
		}
		struct chunk_ref *r = &c[*pinned];
		r->offset = meta_col_u64(s, 0);
		r->len = (uint32_t)sqlite3_column_int64(s, 1);
		meta_col_hash(s, 2, r->hash);
		/* count only what is pinned: the caller unpins exactly those */
		if (pinset_add(&st->pins, r->hash) != 0) {
			rc = RTCMS_ENOMEM;
			break;
		}
		(*pinned)++;
	}
	sqlite3_finalize(s);
	if (rc == 0 && (step != SQLITE_DONE || *pinned != count))
		rc = RTCMS_EIO;
	return rc;
}

static void chunks_unpin(struct store *st, const struct chunk_ref *c, uint32_t n)
{
	for (uint32_t i = 0; i < n; i++)
		pinset_del(&st->pins, c[i].hash);
}

/*
 * Read chunk c into buf (>= c->len bytes), verified against its hash, from
 * the first online mirror with a good copy; rewrite the bad or missing
 * copies met before it (counted in *repaired). Call without st->mu.
 * 0 or RTCMS_ECORRUPT.
 */
static int chunk_read_repair(struct store *st, const struct chunk_ref *c,
			     uint8_t *buf, uint32_t *repaired)
{
	const char *dirs[STORE_MAX_MIRRORS];
	int bad[STORE_MAX_MIRRORS] = { 0 };
	size_t ndirs = 0;
	int good = -1;

	if (c->len == 0 || c->len > PROTO_MAX_CHUNK)
		return RTCMS_ECORRUPT;
	pthread_mutex_lock(&st->mu);
	for (size_t i = 0; i < st->n; i++)
		if (st->m[i].online)
			dirs[ndirs++] = st->m[i].path;
	pthread_mutex_unlock(&st->mu);

	for (size_t i = 0; i < ndirs && good < 0; i++) {
		int rc = chunkfile_read(dirs[i], c->hash, c->len, buf);
		if (rc == 0)
			good = (int)i;
		else
			bad[i] = rc;
	}
	if (good < 0) {
		char hx[17];
		slog(st, LOG_ERROR, "chunk %s… at offset %" PRIu64 ": no good copy "
		     "on any mirror", hexs(c->hash, hx), c->offset);
		return RTCMS_ECORRUPT;
	}
	/* Repair the bad copies met before the good one. */
	struct chunkfile_enc enc = { 0 };
	if (good > 0)
		chunkfile_encode(buf, c->len, st->zlevel, &enc);
	for (int i = 0; i < good; i++) {
		char hx[17];
		if (chunkfile_write_enc(dirs[i], c->hash, &enc, 1) == 0) {
			(*repaired)++;
			slog(st, LOG_WARN, "mirror %s: chunk %s… was %s; repaired "
			     "from %s", dirs[i], hexs(c->hash, hx),
			     bad[i] == RTCMS_ENOENT ? "missing" : "corrupt", dirs[good]);
			pthread_mutex_lock(&st->mu);
			for (size_t k = 0; k < st->n; k++)
				if (strcmp(st->m[k].path, dirs[i]) == 0)
					st->m[k].repaired++;
			pthread_mutex_unlock(&st->mu);
		}
	}
	chunkfile_enc_free(&enc);
	return 0;
}

/* One checkpoint of a chain being assembled. */
struct chain_link {
	struct ckpt_row row;
	struct chunk_ref *chunks;
	uint32_t pinned;
};

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
		rc = chunk_read_repair(st, &l->chunks[i], buf + l->chunks[i].offset,
				       repaired);
	return rc;
}

/*
 * Assemble the full image of chain[0] from its chain (chain[n - 1] is the
 * full image at its root, each link a delta against the next): read the
 * root, apply the deltas upwards, check every step's sequence and size and
 * at the end the stored state hash. Call without st->mu (the chunks are
 * pinned). Returns 0 and *out (malloc'ed, *len bytes), or RTCMS_ECORRUPT
 * (logged), RTCMS_ETOOBIG, RTCMS_ENOMEM.
 */
static int chain_assemble(struct store *st, const char *process,
			  const struct chain_link *chain, size_t n,
			  uint8_t **out, size_t *len, uint32_t *repaired)
{
	const struct ckpt_row *top = &chain[0].row, *root = &chain[n - 1].row;
	uint64_t cap = root->size, dcap = 0;
	uint8_t *img = NULL, *delta = NULL;
	const char *why = NULL;
	uint64_t at = root->seq;       /* where it went wrong */
	int rc;

	*out = NULL;
	/* every intermediate full image must fit: the chain may shrink */
	for (size_t i = 0; i + 1 < n; i++) {
		cap = chain[i].row.full_size > cap ? chain[i].row.full_size : cap;
		dcap = chain[i].row.size > dcap ? chain[i].row.size : dcap;
	}
	if (cap > STORE_MAX_FULL || dcap > STORE_MAX_FULL) {
		slog(st, LOG_ERROR, "GET %s %" PRIu64 "/%" PRIu64 ": its chain needs "
		     "%" PRIu64 " bytes, over the cap of %" PRIu64, process,
		     top->inc, top->seq, cap + dcap, (uint64_t)STORE_MAX_FULL);
		return RTCMS_ETOOBIG;
	}
	img = malloc(cap ? (size_t)cap : 1);
	delta = malloc(dcap ? (size_t)dcap : 1);
	if (!img || !delta) {
		slog(st, LOG_ERROR, "GET %s %" PRIu64 "/%" PRIu64 ": out of memory "
		     "for %" PRIu64 " bytes to assemble it", process, top->inc,
		     top->seq, cap + dcap);
		rc = RTCMS_ENOMEM;
		goto out;
	}
	rc = image_read(st, &chain[n - 1], img, repaired);
	if (rc) {
		why = "its full image cannot be read";
		goto out;
	}
	size_t have = (size_t)root->size;
	if (image_version(img, have) != IMAGE_VERSION || get_be64(img + 8) != root->seq) {
		rc = RTCMS_ECORRUPT;
		why = "the root of its chain is not a full image of its sequence";
		goto out;
	}
	for (size_t i = n - 1; i-- > 0;) {
		const struct ckpt_row *d = &chain[i].row;
		at = d->seq;
		rc = image_read(st, &chain[i], delta, repaired);
		if (rc) {
			why = "a delta of its chain cannot be read";
			goto out;
		}
		if (delta_apply(img, &have, (size_t)cap, delta, (size_t)d->size) != 0 ||
		    get_be64(img + 8) != d->seq || have != d->full_size) {
			rc = RTCMS_ECORRUPT;
			why = "a delta of its chain does not apply";
			goto out;
		}
	}
	at = top->seq;
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
	slog(st, LOG_DEBUG, "GET %s %" PRIu64 "/%" PRIu64 ": assembled %zu bytes "
	     "from full image %" PRIu64 " and %zu delta(s)", process, top->inc,
	     top->seq, have, root->seq, n - 1);
out:
	if (why)
		slog(st, LOG_ERROR, "GET %s %" PRIu64 "/%" PRIu64 " (a delta, depth "
		     "%u, chain from full image %" PRIu64 "): %s (at sequence %" PRIu64
		     "): refused", process, top->inc, top->seq, top->depth,
		     root->seq, why, at);
	free(delta);
	free(img);
	return rc;
}

/*
 * Under st->mu: load the chain of top (a delta) down to its full root and
 * pin every chunk of it. Returns 0 with *chain (n links, chain[0] = top;
 * the caller unpins and frees them with chain_free), RTCMS_ECORRUPT (a base
 * is missing, or the chain is deeper than STORE_MAX_DEPTH), RTCMS_ENOMEM,
 * RTCMS_EIO.
 */
static int chain_load(struct store *st, sqlite3 *db, const char *process,
		      const struct ckpt_row *top, struct chain_link **chain, size_t *n)
{
	size_t cap = (size_t)(top->depth < STORE_MAX_DEPTH ? top->depth : STORE_MAX_DEPTH) + 1;
	struct chain_link *c = calloc(cap, sizeof(*c));
	int rc = 0;

	*chain = c;
	*n = 0;
	if (!c)
		return RTCMS_ENOMEM;
	c[0].row = *top;
	for (size_t i = 0; rc == 0; i++) {
		*n = i + 1;
		rc = chunks_load_pin(st, db, process, c[i].row.inc, c[i].row.seq,
				     c[i].row.chunk_count, &c[i].chunks, &c[i].pinned);
		if (rc || c[i].row.base == 0)
			break;
		if (i + 1 > STORE_MAX_DEPTH || c[i].row.base >= c[i].row.seq) {
			slog(st, LOG_ERROR, "GET %s %" PRIu64 "/%" PRIu64 ": its chain "
			     "is deeper than %u deltas or goes up at sequence %"
			     PRIu64, process, top->inc, top->seq, STORE_MAX_DEPTH,
			     c[i].row.seq);
			rc = RTCMS_ECORRUPT;
			break;
		}
		if (i + 1 == cap) {
			/* the recorded depth was short of the real chain */
			size_t ncap = cap * 2 < STORE_MAX_DEPTH + 1 ? cap * 2
								    : STORE_MAX_DEPTH + 1;
			void *p = realloc(c, ncap * sizeof(*c));
			if (!p) {
				rc = RTCMS_ENOMEM;
				break;
			}
			c = *chain = p;
			memset(c + cap, 0, (ncap - cap) * sizeof(*c));
			cap = ncap;
		}
		rc = row_get(db, process, c[i].row.inc, c[i].row.base, &c[i + 1].row);
		if (rc == RTCMS_ENOENT) {
			slog(st, LOG_ERROR, "GET %s %" PRIu64 "/%" PRIu64 ": base %"
			     PRIu64 " of sequence %" PRIu64 " is missing: the chain "
			     "is broken", process, top->inc, top->seq, c[i].row.base,
			     c[i].row.seq);
			rc = RTCMS_ECORRUPT;
		}
	}
	return rc;
}

static void chain_free(struct store *st, struct chain_link *chain, size_t n)
{
	if (!chain)
		return;
	pthread_mutex_lock(&st->mu);
	for (size_t i = 0; i < n; i++)
		chunks_unpin(st, chain[i].chunks, chain[i].pinned);
	gc_deferred(st);
	pthread_mutex_unlock(&st->mu);
	for (size_t i = 0; i < n; i++)
		free(chain[i].chunks);
	free(chain);
}

/*
 * Serve an assembled image from memory: cut it into chunks of
 * PROTO_MAX_CHUNK and describe it in meta (a full image: base 0, its own
 * size, chunk hashes and image hash). g takes img.
 */
static int get_serve_image(struct store_get *g, uint8_t *img, size_t len,
			   struct proto_ckpt_meta *meta)
{
	struct proto_image_hash ih;
	uint64_t count = (len + PROTO_MAX_CHUNK - 1) / PROTO_MAX_CHUNK;

	g->img = img;
	if (count > UINT32_MAX)
		return RTCMS_ETOOBIG;
	if (count && !(g->chunks = calloc((size_t)count, sizeof(*g->chunks))))
		return RTCMS_ENOMEM;
	proto_image_hash_init(&ih, len);
	for (uint32_t i = 0; i < count; i++) {
		struct chunk_ref *c = &g->chunks[i];
		c->offset = (uint64_t)i * PROTO_MAX_CHUNK;
		c->len = (uint32_t)(len - c->offset < PROTO_MAX_CHUNK
				    ? len - c->offset : PROTO_MAX_CHUNK);
		proto_chunk_hash(img + c->offset, c->len, c->hash);
		proto_image_hash_update(&ih, c->offset, c->len, c->hash);
	}
	if (proto_image_hash_final(&ih, meta->hash) != 0)
		return RTCMS_EINTERNAL;
	g->count = (uint32_t)count;
	meta->size = len;
	meta->full_size = len;
	meta->chunk_count = (uint32_t)count;
	meta->base = 0;
	return 0;
}

/* Open a checkpoint: as stored (meta_only, or a full image: streamed from
 * the chunk files) or assembled from its chain (a delta). */
static int get_open(struct store *st, const char *process, uint64_t incarnation,
		    uint64_t sequence, int meta_only, struct store_get **out,
		    struct proto_ckpt_meta *meta)
{
	struct store_get *g = NULL;
	struct chain_link *chain = NULL;
	struct ckpt_row row;
	size_t nchain = 0;
	sqlite3_stmt *s = NULL;
	int rc = RTCMS_ENOENT;

	*out = NULL;
	pthread_mutex_lock(&st->mu);
	struct mirror *p = primary(st);
	if (!p) {
		rc = RTCMS_EIO;
		goto out;
	}
	const char *sql =
		sequence ? (incarnation
			    ? "SELECT " CKPT_COLS " FROM checkpoints WHERE process=?1"
			      " AND incarnation=?2 AND sequence=?3"
			    : "SELECT " CKPT_COLS " FROM checkpoints WHERE process=?1"
			      " AND sequence=?3 ORDER BY incarnation DESC LIMIT 1")
			 : (incarnation
			    ? "SELECT " CKPT_COLS " FROM checkpoints WHERE process=?1"
			      " AND incarnation=?2 ORDER BY sequence DESC LIMIT 1"
			    : "SELECT " CKPT_COLS " FROM checkpoints WHERE process=?1"
			      " ORDER BY incarnation DESC, sequence DESC LIMIT 1");
	s = meta_prep(p->db, sql);
	if (!s) {
		rc = RTCMS_EIO;
		goto out;
	}
	meta_bind_text(s, 1, process);
	meta_bind_u64(s, 2, incarnation);
	meta_bind_u64(s, 3, sequence);
	if (sqlite3_step(s) != SQLITE_ROW)
		goto out;
	g = calloc(1, sizeof(*g));
	if (!g) {
		rc = RTCMS_ENOMEM;
		goto out;
	}
	g->st = st;
	row_load(s, &row);
	memset(meta, 0, sizeof(*meta));
	snprintf(meta->process, sizeof(meta->process), "%s",
		 (const char *)sqlite3_column_text(s, 0));
	meta->incarnation = row.inc;
	meta->sequence = row.seq;
	meta->node = row.node;
	meta->size = row.size;
	memcpy(meta->hash, row.hash, PROTO_HASH_SIZE);
	meta->created_ms = row.created_ms;
	meta->chunk_count = row.chunk_count;
	meta->base = row.base;
	meta->full_size = row.base ? row.full_size : row.size;
	memcpy(meta->state_hash, row.state_hash, PROTO_HASH_SIZE);
	meta->spec_len = (uint32_t)sqlite3_column_bytes(s, 7);
	if (meta->spec_len > PROTO_SPEC_MAX)
		meta->spec_len = 0;
	if (meta->spec_len) {
		g->spec = malloc(meta->spec_len);
		if (!g->spec) {
			rc = RTCMS_ENOMEM;
			goto out;
		}
		memcpy(g->spec, sqlite3_column_blob(s, 7), meta->spec_len);
	}
	meta->spec = g->spec;
	sqlite3_finalize(s);
	s = NULL;

	if (meta_only) {
		rc = 0;
	} else if (row.base == 0) {
		/* a full image: streamed from the chunk files, pinned until
		 * the handle is closed */
		rc = chunks_load_pin(st, p->db, meta->process, row.inc, row.seq,
				     row.chunk_count, &g->chunks, &g->pinned);
		g->count = g->pinned;
	} else {
		rc = chain_load(st, p->db, meta->process, &row, &chain, &nchain);
	}
	pthread_mutex_unlock(&st->mu);

	if (rc == 0 && chain) {
		/* read and apply without the mutex: the chain's chunks are
		 * pinned until chain_free */
		uint8_t *img = NULL;
		size_t len = 0;
		rc = chain_assemble(st, meta->process, chain, nchain, &img, &len,
				    &g->repaired);
		if (rc == 0)
			rc = get_serve_image(g, img, len, meta);
	}
	chain_free(st, chain, nchain);
	if (rc == 0) {
		*out = g;
		g = NULL;
	}
	store_get_close(g);
	return rc;
out:
	sqlite3_finalize(s);
	pthread_mutex_unlock(&st->mu);
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

int store_get_next(struct store_get *g, uint8_t *buf, struct proto_chunk *chunk)
{
	if (g->next >= g->count)
		return RTCMS_EEOF;
	const struct chunk_ref *c = &g->chunks[g->next];
	if (g->img) {
		/* assembled and hashed at open: copied, so that buf is what
		 * chunk->data points to either way */
		memcpy(buf, g->img + c->offset, c->len);
	} else {
		int rc = chunk_read_repair(g->st, c, buf, &g->repaired);
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
		chunks_unpin(g->st, g->chunks, g->pinned);
		gc_deferred(g->st);
		pthread_mutex_unlock(&g->st->mu);
	}
	free(g->img);
	free(g->chunks);
	free(g->spec);
	free(g);
}

/* ---- LIST / DELETE ------------------------------------------------- */

int store_list(struct store *st, uint64_t node, const char *process,
	       uint32_t offset, uint16_t limit,
	       struct proto_list_entry *entries, bool *more)
{
	int n = 0;

	*more = false;
	if (limit == 0 || limit > PROTO_LIST_MAX)
		return RTCMS_EINVAL;
	pthread_mutex_lock(&st->mu);
	struct mirror *p = primary(st);
	sqlite3_stmt *s = p ? meta_prep(p->db,
		"SELECT c.process, c.incarnation, c.sequence, c.node,"
		" CASE WHEN c.full_size > 0 THEN c.full_size ELSE c.size END,"
		" c.created_ms, c.hash, (p.claim_id != 0 AND p.claim_inc = c.incarnation"
		" AND p.claim_seq = c.sequence)"
		" FROM checkpoints c LEFT JOIN processes p ON p.process = c.process"
		" WHERE (?1 = 0 OR c.node = ?1) AND (?2 = '' OR c.process = ?2)"
		" ORDER BY c.process, c.incarnation, c.sequence LIMIT ?3 OFFSET ?4") : NULL;
	if (!s) {
		pthread_mutex_unlock(&st->mu);
		return RTCMS_EIO;
	}
	meta_bind_u64(s, 1, node);
	meta_bind_text(s, 2, process ? process : "");
	sqlite3_bind_int64(s, 3, (int64_t)limit + 1);
	sqlite3_bind_int64(s, 4, offset);
	while (sqlite3_step(s) == SQLITE_ROW) {
		if (n == limit) {
			*more = true;
			break;
		}
		struct proto_list_entry *e = &entries[n++];
		memset(e, 0, sizeof(*e));
		snprintf(e->process, sizeof(e->process), "%s",
			 (const char *)sqlite3_column_text(s, 0));
		e->incarnation = meta_col_u64(s, 1);
		e->sequence = meta_col_u64(s, 2);
		e->node = meta_col_u64(s, 3);
		e->size = meta_col_u64(s, 4);
		e->created_ms = meta_col_u64(s, 5);
		meta_col_hash(s, 6, e->hash);
		e->claimed = sqlite3_column_int(s, 7) ? 1 : 0;
	}
	sqlite3_finalize(s);
	pthread_mutex_unlock(&st->mu);
	return n;
}

struct delete_args {
	const char *process;
	uint64_t inc, seq;
	struct victim_list *gc;
	int first;
	uint64_t dependent;           /* EBUSY: a delta against the one asked */
};

static int delete_apply(sqlite3 *db, void *arg)
{
	struct delete_args *a = arg;
	struct proc_row r;
	uint64_t (*list)[2] = NULL;
	int n = 0, cap = 0, rc = 0;

	if (proc_load(db, a->process, &r) != 0)
		return RTCMS_EIO;
	sqlite3_stmt *s = meta_prep(db, a->seq
		? "SELECT incarnation, sequence FROM checkpoints WHERE process=?1"
		  " AND incarnation=?2 AND sequence=?3"
		: "SELECT incarnation, sequence FROM checkpoints WHERE process=?1");
	if (!s)
		return RTCMS_EIO;
	meta_bind_text(s, 1, a->process);
	meta_bind_u64(s, 2, a->inc);
	meta_bind_u64(s, 3, a->seq);
	while (sqlite3_step(s) == SQLITE_ROW) {
		if (n == cap) {
			cap = cap ? cap * 2 : 16;
			void *p = realloc(list, (size_t)cap * sizeof(*list));
			if (!p) {
				rc = RTCMS_ENOMEM;
				break;
			}
			list = p;
		}
		list[n][0] = meta_col_u64(s, 0);
		list[n][1] = meta_col_u64(s, 1);
		n++;
	}
	sqlite3_finalize(s);
	if (rc == 0 && n == 0)
		rc = RTCMS_ENOENT;
	for (int i = 0; i < n && rc == 0; i++)
		if (claim_pins(&r, list[i][0], list[i][1]))
			rc = RTCMS_ECLAIMED;
	/* one checkpoint alone: not while a remaining one is a delta against
	 * it (a whole process goes with its chains) */
	if (rc == 0 && a->seq) {
		rc = ckpt_has_dependent(db, a->process, a->inc, a->seq, &a->dependent);
		rc = rc == 1 ? RTCMS_EBUSY : rc;
	}
	for (int i = 0; i < n && rc == 0; i++)
		rc = delete_ckpt(db, a->process, list[i][0], list[i][1],
				 a->first ? a->gc : NULL);
	free(list);
	if (rc == 0 && !a->seq) {
		/* the whole process went: a program run again under its id
		 * starts with no give-up behind it */
		s = meta_prep(db, "UPDATE processes SET gave_up=0 WHERE process=?");
		if (!s)
			return RTCMS_EIO;
		meta_bind_text(s, 1, a->process);
		rc = meta_step_done(s);
	}
	a->first = 0;
	return rc == 0 ? n : rc;
}

int store_delete(struct store *st, const char *process, uint64_t incarnation,
		 uint64_t sequence)
{
	struct victim_list gc = { 0 };
	struct delete_args a = { process, incarnation, sequence, &gc, 1, 0 };

	if (!proto_process_id_valid(process) || (incarnation == 0) != (sequence == 0))
		return RTCMS_EINVAL;
	pthread_mutex_lock(&st->mu);
	int rc = apply(st, delete_apply, &a);
	if (rc == RTCMS_EBUSY)
		slog(st, LOG_INFO, "DELETE %s %" PRIu64 "/%" PRIu64 " refused: "
		     "sequence %" PRIu64 " is a delta against it", process,
		     incarnation, sequence, a.dependent);
	gc_files(st, &gc, rc >= 0);
	pthread_mutex_unlock(&st->mu);
	return rc;
}

/* ---- CLAIM / COMMIT / RELEASE -------------------------------------- */

/* processes.gave_up: how far the give-ups of a program went */
enum gave_up {
	GAVE_UP_NONE = 0,
	GAVE_UP_MOVED = 1,            /* a GAVE_UP claim was committed: moved once */
	GAVE_UP_FAILED = 2,           /* another GAVE_UP claim came: failed for good */
};

static int gave_up_failed_apply(sqlite3 *db, void *arg)
{
	sqlite3_stmt *s = meta_prep(db, "UPDATE processes SET gave_up=2 WHERE process=?");
	if (!s)
		return RTCMS_EIO;
	meta_bind_text(s, 1, (const char *)arg);
	return meta_step_done(s);
}

struct claim_args {
	const char *process;
	const char *claimant;
	uint64_t claim_id, expires, inc, seq;
	int gave_up;
};

static int claim_apply(sqlite3 *db, void *arg)
{
	struct claim_args *a = arg;
	sqlite3_stmt *s = meta_prep(db, "UPDATE processes SET claim_id=?, claimant=?,"
			       " claim_expires=?, claim_inc=?, claim_seq=?, claim_gave_up=?"
			       " WHERE process=?");
	if (!s)
		return RTCMS_EIO;
	meta_bind_u64(s, 1, a->claim_id);
	meta_bind_text(s, 2, a->claimant);
	meta_bind_u64(s, 3, a->expires);
	meta_bind_u64(s, 4, a->inc);
	meta_bind_u64(s, 5, a->seq);
	meta_bind_u64(s, 6, a->gave_up ? 1 : 0);
	meta_bind_text(s, 7, a->process);
	return meta_step_done(s);
}

int store_claim(struct store *st, const char *process, const char *claimant,
		uint32_t lease_ms, uint8_t flags, struct proto_claim_ok *ok,
		struct proto_error *err)
{
	struct proc_row r;
	int rc;

	if (!proto_process_id_valid(process) || !claimant[0] ||
	    strlen(claimant) > PROTO_ID_MAX || lease_ms == 0 || lease_ms > 3600000 ||
	    (flags & ~PROTO_CLAIM_F_GAVE_UP))
		return RTCMS_EINVAL;
	pthread_mutex_lock(&st->mu);
	struct mirror *p = primary(st);
	uint64_t t = now(st);
	if ((rc = proc_load_known(st, process, &r)) != 0)
		goto out;
	if (r.claim_id && r.claim_expires > t && strcmp(r.claimant, claimant) != 0) {
		memset(err, 0, sizeof(*err));
		err->code = RTCMS_ECLAIMED;
		err->detail = r.claim_expires;
		snprintf(err->who, sizeof(err->who), "%s", r.claimant);
		snprintf(err->text, sizeof(err->text), "process %s is already claimed "
			 "by %s for %" PRIu64 " more ms", process, r.claimant,
			 r.claim_expires - t);
		rc = RTCMS_ECLAIMED;
		goto out;
	}
	if (r.gave_up == GAVE_UP_FAILED ||
	    ((flags & PROTO_CLAIM_F_GAVE_UP) && r.gave_up == GAVE_UP_MOVED)) {
		/* moved once already after a node gave up on it: it fails
		 * wherever it runs, and moving it on would not end that; from
		 * now on no claim restores it (a node failure neither) */
		if (r.gave_up != GAVE_UP_FAILED &&
		    (rc = apply(st, gave_up_failed_apply, (void *)process)) != 0)
			goto out;
		memset(err, 0, sizeof(*err));
		err->code = RTCMS_ESTATE;
		snprintf(err->text, sizeof(err->text), "%s has failed for good: it was moved "
			 "to another node once already after its node gave up restarting "
			 "it (forget it to run it again)", process);
		rc = RTCMS_ESTATE;
		goto out;
	}
	struct claim_args a = { process, claimant, 0, t + lease_ms, 0, 0,
				(flags & PROTO_CLAIM_F_GAVE_UP) != 0 };
	if (r.claim_id && strcmp(r.claimant, claimant) == 0) {
		/* renewal by the holder (also after expiry, if nobody took it) */
		a.claim_id = r.claim_id;
		a.inc = r.claim_inc;
		a.seq = r.claim_seq;
	} else {
		sqlite3_stmt *s = meta_prep(p->db, "SELECT incarnation, sequence FROM checkpoints"
				       " WHERE process=? ORDER BY incarnation DESC,"
				       " sequence DESC LIMIT 1");
		if (!s) {
			rc = RTCMS_EIO;
			goto out;
		}
		meta_bind_text(s, 1, process);
		int found = sqlite3_step(s) == SQLITE_ROW;
		if (found) {
			a.inc = meta_col_u64(s, 0);
			a.seq = meta_col_u64(s, 1);
		}
		sqlite3_finalize(s);
		if (!found) {
			rc = RTCMS_ENOENT;
			goto out;
		}
		do
			randombytes_buf(&a.claim_id, sizeof(a.claim_id));
		while (a.claim_id == 0 || a.claim_id == r.last_claim ||
		       a.claim_id > INT64_MAX);
	}
	rc = apply(st, claim_apply, &a);
	if (rc == 0) {
		memset(ok, 0, sizeof(*ok));
		snprintf(ok->process, sizeof(ok->process), "%s", process);
		ok->claim_id = a.claim_id;
		ok->incarnation = a.inc;
		ok->sequence = a.seq;
		ok->node = r.node;
		ok->expires_ms = a.expires;
	}
out:
	pthread_mutex_unlock(&st->mu);
	return rc;
}

struct commit_args {
	const char *process;
	uint64_t claim_id, new_node;
	int commit;                   /* 1 COMMIT, 0 RELEASE */
};

/* Close an open claim: COMMIT (move the process, raise the incarnation)
 * or RELEASE (leave everything as it was). */
static int close_claim_apply(sqlite3 *db, void *arg)
{
	struct commit_args *a = arg;
	sqlite3_stmt *s = meta_prep(db, a->commit
		? "UPDATE processes SET incarnation = incarnation + 1, node=?3,"
		  " gave_up = MAX(gave_up, claim_gave_up), claim_gave_up=0,"
		  " last_claim=claim_id, claim_id=0, claimant='', claim_expires=0,"
		  " claim_inc=0, claim_seq=0 WHERE process=?1 AND claim_id=?2"
		: "UPDATE processes SET claim_id=0, claimant='', claim_expires=0,"
		  " claim_inc=0, claim_seq=0, claim_gave_up=0"
		  " WHERE process=?1 AND claim_id=?2");
	if (!s)
		return RTCMS_EIO;
	meta_bind_text(s, 1, a->process);
	meta_bind_u64(s, 2, a->claim_id);
	if (a->commit)
		meta_bind_u64(s, 3, a->new_node);
	int rc = meta_step_done(s);
	if (rc == 0 && sqlite3_changes(db) != 1)
		rc = RTCMS_ENOENT;
	return rc;
}

int store_commit(struct store *st, const char *process, uint64_t claim_id,
		 uint64_t new_node, struct proto_commit_ok *ok)
{
	struct proc_row r;
	int rc;

	if (!proto_process_id_valid(process) || claim_id == 0)
		return RTCMS_EINVAL;
	pthread_mutex_lock(&st->mu);
	if ((rc = proc_load_known(st, process, &r)) != 0)
		goto out;
	if (r.last_claim == claim_id && r.claim_id != claim_id) {
		/* a retry of a commit that already happened: same answer */
		rc = 0;
	} else if (r.claim_id != claim_id) {
		rc = r.claim_id && r.claim_expires > now(st) ? RTCMS_ECLAIMED
							      : RTCMS_ENOENT;
		goto out;
	} else {
		struct commit_args a = { process, claim_id, new_node, 1 };
		rc = apply(st, close_claim_apply, &a);
		if (rc)
			goto out;
		proc_load(primary(st)->db, process, &r);
	}
	memset(ok, 0, sizeof(*ok));
	snprintf(ok->process, sizeof(ok->process), "%s", process);
	ok->incarnation = r.incarnation;
	ok->node = r.node;
out:
	pthread_mutex_unlock(&st->mu);
	return rc;
}

int store_release(struct store *st, const char *process, uint64_t claim_id)
{
	struct commit_args a = { process, claim_id, 0, 0 };

	if (!proto_process_id_valid(process) || claim_id == 0)
		return RTCMS_EINVAL;
	pthread_mutex_lock(&st->mu);
	int rc = apply(st, close_claim_apply, &a);
	pthread_mutex_unlock(&st->mu);
	return rc;
}

/* ---- SCRUB / STATUS ------------------------------------------------ */

static int counts(struct store *st, struct proto_scrub_reply *r)
{
	struct mirror *p = primary(st);
	memset(r, 0, sizeof(*r));
	if (!p)
		return RTCMS_EIO;
	sqlite3_stmt *s = meta_prep(p->db,
		"SELECT (SELECT count(*) FROM processes), (SELECT count(*) FROM checkpoints),"
		" (SELECT count(*) FROM chunks), (SELECT coalesce(sum(size),0) FROM chunks)");
	if (!s || sqlite3_step(s) != SQLITE_ROW) {
		sqlite3_finalize(s);
		return RTCMS_EIO;
	}
	r->processes = meta_col_u64(s, 0);
	r->checkpoints = meta_col_u64(s, 1);
	r->chunks = meta_col_u64(s, 2);
	r->bytes = meta_col_u64(s, 3);
	sqlite3_finalize(s);
	r->mirror_count = (uint8_t)st->n;
	for (size_t i = 0; i < st->n; i++) {
		snprintf(r->mirrors[i].path, sizeof(r->mirrors[i].path), "%s", st->m[i].path);
		r->mirrors[i].online = (uint8_t)st->m[i].online;
		r->mirrors[i].repaired = st->m[i].repaired;
	}
	return 0;
}

int store_status(struct store *st, struct proto_scrub_reply *report)
{
	pthread_mutex_lock(&st->mu);
	int rc = counts(st, report);
	if (rc == 0)
		for (size_t i = 0; i < st->n; i++) {
			report->mirrors[i].chunks = st->m[i].online ? report->chunks : 0;
			report->mirrors[i].bytes = st->m[i].online ? report->bytes : 0;
		}
	pthread_mutex_unlock(&st->mu);
	return rc;
}

/*
 * Take an offline mirror back: it must take writes again (probe), then it
 * gets a copy of the primary's metadata and goes online; the caller (a
 * repairing scrub) fills in its chunk files. Only while no PUT is open: a
 * PUT's chunks written before would be missing on it at its commit. Call
 * with st->mu held. 0 or a negative RTCMS_E* code.
 */
static int mirror_revive(struct store *st, struct mirror *m)
{
	struct mirror *p = primary(st);
	int rc;

	if (!p)
		return RTCMS_EIO;
	if (st->open_puts) {
		slog(st, LOG_WARN, "mirror %s stays offline for now: %u PUT(s) in "
		     "progress; scrub again to bring it back", m->path, st->open_puts);
		return RTCMS_EBUSY;
	}
	if ((rc = chunkfile_prepare(m->path)) != 0 ||
	    (rc = chunkfile_probe(m->path)) != 0)
		goto fail;
	if (!mirror_identity_ok(m) && (rc = mirror_identity_write(m)) != 0)
		goto fail;
	if ((rc = mirror_meta_reset(st, m, p, 0)) != 0)
		goto fail;
	m->online = 1;
	slog(st, LOG_WARN, "mirror %s back ONLINE: metadata copied from %s; "
	     "copying the chunk files it lacks", m->path, p->path);
	return 0;
fail:
	slog(st, LOG_ERROR, "mirror %s stays offline: %s", m->path,
	     rtcms_strerror(rc));
	return rc;
}

int store_scrub(struct store *st, bool repair, struct proto_scrub_reply *r)
{
	uint8_t (*hashes)[PROTO_HASH_SIZE] = NULL;
	uint32_t *sizes = NULL;
	size_t n = 0;
	uint8_t *buf = malloc(PROTO_MAX_CHUNK);
	int rc;

	if (!buf)
		return RTCMS_ENOMEM;
	/* Snapshot the chunk list, then verify without holding the mutex. A
	 * repairing scrub first tries to take offline mirrors back. */
	pthread_mutex_lock(&st->mu);
	for (size_t i = 0; repair && i < st->n; i++)
		if (!st->m[i].online)
			mirror_revive(st, &st->m[i]);
	rc = counts(st, r);
	if (rc == 0) {
		size_t cap = (size_t)r->chunks + 1;
		hashes = malloc(cap * PROTO_HASH_SIZE);
		sizes = malloc(cap * sizeof(*sizes));
		sqlite3_stmt *s = meta_prep(primary(st)->db, "SELECT hash, size FROM chunks");
		if (!s)
			rc = RTCMS_EIO;
		else if (!hashes || !sizes)
			rc = RTCMS_ENOMEM;
		while (rc == 0 && n < cap && sqlite3_step(s) == SQLITE_ROW) {
			meta_col_hash(s, 0, hashes[n]);
			sizes[n] = (uint32_t)sqlite3_column_int64(s, 1);
			if (pinset_add(&st->pins, hashes[n]) != 0)
				rc = RTCMS_ENOMEM;
			else
				n++;
		}
		sqlite3_finalize(s);
	}
	pthread_mutex_unlock(&st->mu);

	for (size_t k = 0; k < n && rc == 0; k++) {
		int res[STORE_MAX_MIRRORS];
		int good = -1;
		if (sizes[k] == 0 || sizes[k] > PROTO_MAX_CHUNK)
			continue;
		for (size_t i = 0; i < st->n; i++) {
			res[i] = chunkfile_read(st->m[i].path, hashes[k], sizes[k], buf);
			if (res[i] == 0) {
				r->mirrors[i].chunks++;
				r->mirrors[i].bytes += sizes[k];
				if (good < 0)
					good = (int)i;
			} else if (res[i] == RTCMS_ENOENT) {
				r->mirrors[i].missing++;
			} else {
				r->mirrors[i].corrupt++;
			}
		}
		if (good < 0) {
			char hx[17];
			r->unrepairable++;
			slog(st, LOG_ERROR, "scrub: chunk %s… has no good copy on any "
			     "mirror", hexs(hashes[k], hx));
			continue;
		}
		if (!repair)
			continue;
		struct chunkfile_enc enc = { 0 };
		for (size_t i = 0; i < st->n; i++) {
			if (res[i] == 0)
				continue;
			if (!enc.data) {
				/* buf holds the last mirror's read: read the
				 * good copy again, and encode it once */
				if (chunkfile_read(st->m[good].path, hashes[k],
						   sizes[k], buf) != 0)
					break;
				chunkfile_encode(buf, sizes[k], st->zlevel, &enc);
			}
			if (chunkfile_write_enc(st->m[i].path, hashes[k], &enc, 1) == 0) {
				char hx[17];
				r->mirrors[i].repaired++;
				slog(st, LOG_WARN, "scrub: mirror %s: chunk %s… was %s; "
				     "repaired", st->m[i].path, hexs(hashes[k], hx),
				     res[i] == RTCMS_ENOENT ? "missing" : "corrupt");
			}
		}
		chunkfile_enc_free(&enc);
	}
	pthread_mutex_lock(&st->mu);
	for (size_t k = 0; k < n; k++)
		pinset_del(&st->pins, hashes[k]);
	gc_deferred(st);
	pthread_mutex_unlock(&st->mu);
	free(hashes);
	free(sizes);
	free(buf);
	return rc;
}

/* ---- node fences (persisted for fence.c) --------------------------- */

struct fence_args {
	uint64_t node, gen;
	uint32_t hold_ms;
	int save;
};

static int fence_apply(sqlite3 *db, void *arg)
{
	struct fence_args *a = arg;
	sqlite3_stmt *s = meta_prep(db, a->save
		? "INSERT OR REPLACE INTO fences VALUES(?1, ?2, ?3)"
		: "DELETE FROM fences WHERE node=?1");
	if (!s)
		return RTCMS_EIO;
	meta_bind_u64(s, 1, a->node);
	if (a->save) {
		meta_bind_u64(s, 2, a->gen);
		meta_bind_u64(s, 3, a->hold_ms);
	}
	int rc = meta_step_done(s);
	if (rc == 0 && a->save) {
		s = meta_prep(db, "UPDATE meta SET value = max(value, ?1) WHERE key='fence_gen'");
		if (!s)
			return RTCMS_EIO;
		meta_bind_u64(s, 1, a->gen);
		rc = meta_step_done(s);
	}
	return rc;
}

int store_fence_save(struct store *st, uint64_t node, uint64_t gen, uint32_t hold_ms)
{
	struct fence_args a = { node, gen, hold_ms, 1 };
	pthread_mutex_lock(&st->mu);
	int rc = apply(st, fence_apply, &a);
	pthread_mutex_unlock(&st->mu);
	return rc;
}

int store_fence_delete(struct store *st, uint64_t node)
{
	struct fence_args a = { node, 0, 0, 0 };
	pthread_mutex_lock(&st->mu);
	int rc = apply(st, fence_apply, &a);
	pthread_mutex_unlock(&st->mu);
	return rc;
}

struct manager_args {
	const char *name;
	uint32_t lease_ms;
};

static int manager_apply(sqlite3 *db, void *arg)
{
	struct manager_args *a = arg;
	sqlite3_stmt *s = meta_prep(db, "INSERT INTO managers VALUES(?1, ?2) ON CONFLICT(name)"
				    " DO UPDATE SET lease_ms = max(lease_ms, ?2)");
	if (!s)
		return RTCMS_EIO;
	meta_bind_text(s, 1, a->name);
	meta_bind_u64(s, 2, a->lease_ms);
	return meta_step_done(s);
}

int store_manager_save(struct store *st, const char *name, uint32_t lease_ms)
{
	struct manager_args a = { name, lease_ms };
	pthread_mutex_lock(&st->mu);
	int rc = apply(st, manager_apply, &a);
	pthread_mutex_unlock(&st->mu);
	return rc;
}

int store_managers_load(struct store *st, store_manager_fn fn, void *ctx)
{
	pthread_mutex_lock(&st->mu);
	struct mirror *p = primary(st);
	sqlite3_stmt *s = p ? meta_prep(p->db, "SELECT name, lease_ms FROM managers") : NULL;
	int rc = s ? 0 : RTCMS_EIO;
	while (s && sqlite3_step(s) == SQLITE_ROW)
		fn(ctx, (const char *)sqlite3_column_text(s, 0), (uint32_t)meta_col_u64(s, 1));
	sqlite3_finalize(s);
	pthread_mutex_unlock(&st->mu);
	return rc;
}

int store_fences_load(struct store *st, store_fence_fn fn, void *ctx, uint64_t *gen)
{
	pthread_mutex_lock(&st->mu);
	struct mirror *p = primary(st);
	int rc = p ? 0 : RTCMS_EIO;
	*gen = 0;
	sqlite3_stmt *s = p ? meta_prep(p->db, "SELECT value FROM meta WHERE key='fence_gen'")
			    : NULL;
	if (s && sqlite3_step(s) == SQLITE_ROW)
		*gen = meta_col_u64(s, 0);
	sqlite3_finalize(s);
	s = p ? meta_prep(p->db, "SELECT node, gen, hold_ms FROM fences") : NULL;
	if (p && !s)
		rc = RTCMS_EIO;
	while (s && sqlite3_step(s) == SQLITE_ROW)
		fn(ctx, meta_col_u64(s, 0), meta_col_u64(s, 1), (uint32_t)meta_col_u64(s, 2));
	sqlite3_finalize(s);
	pthread_mutex_unlock(&st->mu);
	return rc;
}
