/*
 * store.c - the checkpoint store engine's handle (see store.h for the
 * layout on disk, store_int.h for threads and locks): opening and closing
 * it over its mirrors, LIST, STATUS, KEYS, and the persisted fences and
 * managers. The rest of the public API lives by feature: put.c, get.c
 * (with chain.c), claim.c, gc.c (retention, DELETE, compaction),
 * repair.c (resync, read repair, SCRUB); mirror.c replicates to every
 * mirror, pack.c keeps each mirror's packs and catalog*.c hold all SQL.
 */
#include "store_int.h"

#include <inttypes.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log/log.h"
#include "rtcms_error.h"

/* ---- small helpers -------------------------------------------------------- */

void store_log(struct store *st, int level, const char *fmt, ...)
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

uint64_t store_now(struct store *st)
{
	return st->now_ms(st->now_ctx);
}

const char *store_hex(const uint8_t *h, char buf[17])
{
	sodium_bin2hex(buf, 17, h, 8);
	return buf;
}

/* ---- open / free ---------------------------------------------------------- */

/* A new handle from the options (no I/O). 0 and *out, RTCMS_ECONFIG,
 * RTCMS_ENOMEM. */
static int store_new(const struct store_options *opt, struct store **out)
{
	struct store *st;

	*out = NULL;
	if (opt->mirror_count < 1 || opt->mirror_count > STORE_MAX_MIRRORS ||
	    (opt->compress != STORE_COMPRESS_OFF && opt->compress != STORE_COMPRESS_ZSTD) ||
	    opt->compress_level < 0 || opt->compress_level > CHUNKFILE_LEVEL_MAX ||
	    opt->inline_max > PROTO_MAX_CHUNK)
		return RTCMS_ECONFIG;
	st = calloc(1, sizeof(*st));
	if (!st)
		return RTCMS_ENOMEM;
	pthread_mutex_init(&st->mu, NULL);
	st->retain = opt->retain ? opt->retain : 2;
	st->inline_max = opt->inline_max < 0 ? 0
			 : opt->inline_max ? (uint64_t)opt->inline_max : STORE_INLINE_DEFAULT;
	if (opt->compress == STORE_COMPRESS_ZSTD)
		st->zlevel = opt->compress_level ? opt->compress_level
						 : STORE_COMPRESS_LEVEL_DEFAULT;
	st->pack_size = opt->pack_size;
	st->now_ms = opt->now_ms ? opt->now_ms : default_now;
	st->now_ctx = opt->now_ctx;
	st->log = opt->log;
	st->log_ctx = opt->log_ctx;
	*out = st;
	for (size_t i = 0; i < opt->mirror_count; i++) {
		if (strlen(opt->mirrors[i]) > PROTO_TEXT_MAX) {
			store_log(st, LOG_ERROR, "mirror path too long: %s", opt->mirrors[i]);
			return RTCMS_ECONFIG;
		}
		for (size_t j = 0; j < i; j++) {
			if (strcmp(st->m[j].path, opt->mirrors[i]) == 0) {
				store_log(st, LOG_ERROR, "mirror %s given twice",
					  opt->mirrors[i]);
				return RTCMS_ECONFIG;
			}
		}
		st->n = i + 1;
		if (mirror_init(&st->m[i], opt->mirrors[i]) != 0)
			return RTCMS_ECONFIG;
	}
	return 0;
}

int store_open(const struct store_options *opt, struct store **out)
{
	struct store *st = NULL;
	int64_t epoch;
	int have_meta = 0, rc;

	*out = NULL;
	if (proto_init() != 0)
		return RTCMS_EINTERNAL;
	if ((rc = store_new(opt, &st)) != 0)
		goto fail;
	/* 1, 2: the newest metadata on every usable mirror */
	if ((rc = mirror_open_all(st, &have_meta)) != 0)
		goto fail;
	/* 3. A new epoch on every online mirror: a mirror left out now and
	 * updated alone later is recognised as diverged. */
	do
		randombytes_buf(&epoch, sizeof(epoch));
	while (epoch <= 0);
	if ((rc = mirror_apply(st, catalog_epoch_apply, &epoch)) != 0)
		goto fail;
	/* 4. Remove what no checkpoint references (only with metadata that
	 * can tell), copy missing chunks between mirrors, then remove the
	 * packs nothing is placed in. */
	for (size_t i = 0; have_meta && i < st->n; i++)
		if (st->m[i].online)
			gc_sweep_orphans(st, &st->m[i]);
	uint64_t lost = 0;
	if ((rc = repair_resync(st, &lost)) != 0)
		goto fail;
	/* Chunks found nowhere their places say (a meta.db restored from a
	 * backup older than a compaction): look for them in every mirror's
	 * packs, then copy again; what is still missing is reported. */
	if (lost) {
		for (size_t i = 0; i < st->n; i++) {
			uint64_t found = 0;
			if (st->m[i].online && pack_reindex(st, &st->m[i], &found) != 0)
				mirror_offline(st, &st->m[i], "re-indexing its packs failed");
		}
		store_log(st, LOG_WARN, "resync: re-indexed every mirror's packs");
		if ((rc = repair_resync(st, NULL)) != 0)
			goto fail;
	}
	for (size_t i = 0; have_meta && i < st->n; i++)
		if (st->m[i].online)
			gc_sweep_packs(st, &st->m[i]);
	if ((rc = repair_keys_fill(st)) != 0)
		goto fail;
	char zinfo[48] = "off";
	if (st->zlevel)
		snprintf(zinfo, sizeof(zinfo), "zstd level %d", st->zlevel);
	store_log(st, LOG_INFO, "store open: %zu of %zu mirror(s) online, metadata "
		  "generation %" PRId64 ", compression of new chunks %s",
		  mirror_online_count(st), st->n,
		  catalog_generation(mirror_primary(st)->cat), zinfo);
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
		mirror_close(&st->m[i]);
	pinset_free(&st->pins);
	free(st->deferred.hash);
	pthread_mutex_destroy(&st->mu);
	free(st);
}

/* ---- LIST / STATUS -------------------------------------------------------- */

int store_list(struct store *st, uint64_t node, const char *process,
	       uint32_t offset, uint16_t limit,
	       struct proto_list_entry *entries, bool *more)
{
	*more = false;
	if (limit == 0 || limit > PROTO_LIST_MAX)
		return RTCMS_EINVAL;
	pthread_mutex_lock(&st->mu);
	struct mirror *p = mirror_primary(st);
	int rc = p ? catalog_list(p->cat, node, process, offset, limit, entries, more)
		   : RTCMS_EIO;
	pthread_mutex_unlock(&st->mu);
	return rc;
}

int store_counts(struct store *st, struct proto_scrub_reply *r)
{
	struct mirror *p = mirror_primary(st);
	memset(r, 0, sizeof(*r));
	if (!p || catalog_counts(p->cat, r) != 0)
		return RTCMS_EIO;
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
	int rc = store_counts(st, report);
	if (rc == 0)
		for (size_t i = 0; i < st->n; i++) {
			report->mirrors[i].chunks = st->m[i].online ? report->chunks : 0;
			report->mirrors[i].bytes = st->m[i].online ? report->bytes : 0;
		}
	pthread_mutex_unlock(&st->mu);
	return rc;
}

int store_keys(struct store *st, uint32_t from, struct proto_keys_reply *out, bool *more)
{
	pthread_mutex_lock(&st->mu);
	struct mirror *p = mirror_primary(st);
	int rc = p ? catalog_keys(p->cat, from, out, more) : RTCMS_EIO;
	pthread_mutex_unlock(&st->mu);
	return rc;
}

bool store_mirrors_peek(struct store *st, size_t *online, size_t *total, char *offline,
			size_t len)
{
	if (pthread_mutex_trylock(&st->mu) != 0)
		return false;
	*online = 0;
	*total = st->n;
	offline[0] = '\0';
	for (size_t i = 0; i < st->n; i++) {
		if (st->m[i].online)
			(*online)++;
		else if (!offline[0])
			snprintf(offline, len, "%s", st->m[i].path);
	}
	pthread_mutex_unlock(&st->mu);
	return true;
}

/* ---- node fences and managers (persisted for fence.c) --------------------- */

struct fence_args {
	uint64_t node, gen;
	uint32_t hold_ms;
	int save;
};

static int fence_apply(struct catalog *cat, void *arg)
{
	struct fence_args *a = arg;
	return a->save ? catalog_fence_save(cat, a->node, a->gen, a->hold_ms)
		       : catalog_fence_delete(cat, a->node);
}

/* mirror_apply(fn, arg) under st->mu. */
static int store_apply(struct store *st, mirror_mutation_fn fn, void *arg)
{
	pthread_mutex_lock(&st->mu);
	int rc = mirror_apply(st, fn, arg);
	pthread_mutex_unlock(&st->mu);
	return rc;
}

int store_fence_save(struct store *st, uint64_t node, uint64_t gen, uint32_t hold_ms)
{
	struct fence_args a = { node, gen, hold_ms, 1 };
	return store_apply(st, fence_apply, &a);
}

int store_fence_delete(struct store *st, uint64_t node)
{
	struct fence_args a = { node, 0, 0, 0 };
	return store_apply(st, fence_apply, &a);
}

struct manager_args {
	const char *name;
	uint32_t lease_ms;
};

static int manager_apply(struct catalog *cat, void *arg)
{
	struct manager_args *a = arg;
	return catalog_manager_save(cat, a->name, a->lease_ms);
}

int store_manager_save(struct store *st, const char *name, uint32_t lease_ms)
{
	struct manager_args a = { name, lease_ms };
	return store_apply(st, manager_apply, &a);
}

struct datakey_args {
	uint32_t id;
	uint64_t kcv;
};

static int datakey_apply(struct catalog *cat, void *arg)
{
	struct datakey_args *a = arg;
	return catalog_datakey_record(cat, a->id, a->kcv);
}

static int datakey_get(struct store *st, uint32_t id, uint64_t *kcv, bool *found)
{
	pthread_mutex_lock(&st->mu);
	struct mirror *p = mirror_primary(st);
	int rc = p ? catalog_datakey_get(p->cat, id, kcv, found) : RTCMS_EIO;
	pthread_mutex_unlock(&st->mu);
	return rc;
}

int store_datakey_check(struct store *st, uint32_t id, uint64_t kcv, uint64_t *recorded,
			bool *first)
{
	struct datakey_args a = { id, kcv };
	bool found = false;
	int rc = datakey_get(st, id, recorded, &found);

	*first = false;
	if (rc || found)
		return rc;
	/* not known yet: record it (a concurrent first call may win: read
	 * back what is recorded) */
	if ((rc = store_apply(st, datakey_apply, &a)) != 0 ||
	    (rc = datakey_get(st, id, recorded, &found)) != 0)
		return rc;
	if (!found)
		return RTCMS_EIO;
	*first = *recorded == kcv;
	return 0;
}

int store_managers_load(struct store *st, store_manager_fn fn, void *ctx)
{
	pthread_mutex_lock(&st->mu);
	struct mirror *p = mirror_primary(st);
	int rc = p ? catalog_managers_load(p->cat, fn, ctx) : RTCMS_EIO;
	pthread_mutex_unlock(&st->mu);
	return rc;
}

int store_fences_load(struct store *st, store_fence_fn fn, void *ctx, uint64_t *gen)
{
	pthread_mutex_lock(&st->mu);
	struct mirror *p = mirror_primary(st);
	int rc = RTCMS_EIO;
	*gen = 0;
	if (p)
		rc = catalog_fences_load(p->cat, fn, ctx, gen);
	pthread_mutex_unlock(&st->mu);
	return rc;
}
