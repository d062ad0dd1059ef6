/*
 * rtcms.c - librtcms: protected regions, checkpoints into the shared
 * checkpoint area, and restore. libc only; one mutex; no threads.
 */
#include "rtcms.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "area/area.h"
#include "track.h"
#include "util/tsan.h"

struct region {
	uint32_t id;
	void *ptr;
	size_t size;
	int mode;                /* RTCMS_TRACK_WRITES, _COMPARE or _FULL */
	int handle;              /* track.c handle while mode is WRITES */
	int fresh;               /* not in a checkpoint yet: copy it whole */
	unsigned paused;         /* WRITES: checkpoints left with the region
				  * unprotected (most of it was written) */
	unsigned backoff;        /* the last pause's length */
	size_t lead;             /* ptr's offset in its 4 KiB block: blocks are
				  * laid out on the memory's page grid */
	uint64_t *dirty;         /* scratch bitmap of blocks, track_words(lead + size) */
};

static struct {
	pthread_mutex_t mu;
	int ready;
	void *area;
	size_t area_len;
	int shared;              /* the area is the agent's (not private) */
	struct region regions[AREA_MAX_REGIONS];
	uint32_t count;
	uint64_t sequence;       /* last committed */
	struct rtcms_stats stats; /* of the last checkpoint */
	int restoring;
	/* the checkpoint being restored (in the area, until resume) */
	const uint8_t *restore_data;   /* in the area's committed slot */
	uint64_t restore_size;
	struct area_region restore_regions[AREA_MAX_REGIONS];
	uint32_t restore_count;
} lib = { .mu = PTHREAD_MUTEX_INITIALIZER };

/* ---- the lease watchdog ------------------------------------------------
 *
 * The agent renews a lease in the area (lease_until_ms, CLOCK_MONOTONIC)
 * while it hears from a manager. If the agent hangs or is cut off, the
 * program must not outlive the lease: a one-shot POSIX timer (no thread)
 * fires at the lease's end; its handler re-arms it if the lease was
 * renewed meanwhile, else the process kills itself. */

static timer_t lease_timer;
static int lease_armed;
static void *volatile lease_area;

static uint64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void lease_arm(uint64_t in_ms)
{
	struct itimerspec it = { { 0, 0 }, { (time_t)(in_ms / 1000),
					     (long)(in_ms % 1000) * 1000000L } };
	timer_settime(lease_timer, 0, &it, NULL);
}

/* async-signal-safe: atomics, clock_gettime, timer_settime, kill */
static void lease_check(int sig)
{
	(void)sig;
	struct area_header *h = lease_area;
	if (!h)
		return;
	uint64_t until = atomic_load_explicit(&h->lease_until_ms, memory_order_acquire);
	uint64_t now = mono_ms();
	if (until == 0) {
		lease_arm(100); /* no lease granted yet */
	} else if (now < until) {
		lease_arm(until - now + 1);
	} else {
		static const char msg[] = "librtcms: the agent's lease lapsed: "
					  "stopping this instance (fenced)\n";
		ssize_t w = write(2, msg, sizeof(msg) - 1);
		(void)w;
		kill(getpid(), SIGKILL);
	}
}

/* Start the watchdog for an agent's area; RTCMS_LEASE_SIGNAL picks the
 * signal (default SIGRTMAX - 1; 0 turns the watchdog off). */
static void lease_start(void *area)
{
	const char *env = getenv("RTCMS_LEASE_SIGNAL");
	int sig = env && *env ? atoi(env) : SIGRTMAX - 1;
	if (sig <= 0 || sig > SIGRTMAX)
		return;
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = lease_check;
	sa.sa_flags = SA_RESTART;
	sigemptyset(&sa.sa_mask);
	struct sigevent ev;
	memset(&ev, 0, sizeof(ev));
	ev.sigev_notify = SIGEV_SIGNAL;
	ev.sigev_signo = sig;
	if (sigaction(sig, &sa, NULL) != 0 ||
	    timer_create(CLOCK_MONOTONIC, &ev, &lease_timer) != 0)
		return;
	lease_area = area;
	lease_armed = 1;
	lease_check(sig);
}

static void lease_stop(void)
{
	if (!lease_armed)
		return;
	lease_area = NULL;
	timer_delete(lease_timer);
	lease_armed = 0;
}

/* Map the area the agent gave us, or make a private one. */
static int map_area(const struct rtcms_config *cfg)
{
	const char *fd_env = getenv("RTCMS_AREA_FD");
	const char *path = getenv("RTCMS_AREA");
	int fd = -1, own = 0;
	struct stat st;

	if (fd_env && *fd_env) {
		char *end;
		long v = strtol(fd_env, &end, 10);
		if (*end || v < 0 || v > 1 << 20)
			return RTCMS_ECONFIG;
		fd = (int)v;
	} else if (path && *path) {
		fd = open(path, O_RDWR | O_CLOEXEC);
		if (fd < 0)
			return RTCMS_ECONFIG;
		own = 1;
	}
	if (fd >= 0) {
		if (fstat(fd, &st) != 0 || st.st_size <= 0) {
			if (own)
				close(fd);
			return RTCMS_ECONFIG;
		}
		void *m = mmap(NULL, (size_t)st.st_size, PROT_READ | PROT_WRITE,
			       MAP_SHARED, fd, 0);
		if (own)
			close(fd);
		if (m == MAP_FAILED)
			return RTCMS_ECONFIG;
		if (area_check(m, (size_t)st.st_size) != 0) {
			munmap(m, (size_t)st.st_size);
			return RTCMS_ECONFIG;
		}
		lib.area = m;
		lib.area_len = (size_t)st.st_size;
		lib.shared = 1;
		return 0;
	}
	uint64_t cap = cfg && cfg->area_capacity ? cfg->area_capacity : 64u << 20;
	size_t len = area_size_for(cap);
	void *m = mmap(NULL, len, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (m == MAP_FAILED)
		return RTCMS_ENOMEM;
	area_format(m, len);
	lib.area = m;
	lib.area_len = len;
	lib.shared = 0;
	return 0;
}

int rtcms_init(const struct rtcms_config *cfg)
{
	int rc;

	pthread_mutex_lock(&lib.mu);
	if (lib.ready) {
		rc = RTCMS_ESTATE;
		goto out;
	}
	rc = map_area(cfg);
	if (rc)
		goto out;
	lib.count = 0;
	lib.sequence = area_committed_sequence(lib.area);
	const char *restore = getenv("RTCMS_RESTORE");
	lib.restoring = restore && strcmp(restore, "1") == 0;
	if (lib.restoring) {
		/* Refill the regions straight from the committed slot: the
		 * agent wrote it before starting us, and nothing writes the
		 * area until our first checkpoint, which rtcms_resume() allows
		 * only after every region was refilled. */
		rc = area_committed_view(lib.area, &lib.restore_data, &lib.restore_size,
					 lib.restore_regions, &lib.restore_count,
					 &lib.sequence);
		if (rc) {
			lib.restore_data = NULL;
			munmap(lib.area, lib.area_len);
			lib.area = NULL;
			rc = rc == RTCMS_ENOENT ? RTCMS_ENOENT : RTCMS_ECONFIG;
			goto out;
		}
	}
	if (lib.shared)
		lease_start(lib.area);
	lib.ready = 1;
out:
	pthread_mutex_unlock(&lib.mu);
	return rc;
}

static struct region *find(uint32_t id)
{
	for (uint32_t i = 0; i < lib.count; i++)
		if (lib.regions[i].id == id)
			return &lib.regions[i];
	return NULL;
}

/* The tracking asked for (argument, else RTCMS_TRACKING in the
 * environment: auto, compare or full). */
static int tracking_wanted(int tracking)
{
	if (tracking != RTCMS_TRACK_AUTO)
		return tracking;
	const char *env = getenv("RTCMS_TRACKING");
	if (env && !strcmp(env, "compare"))
		return RTCMS_TRACK_COMPARE;
	if (env && !strcmp(env, "full"))
		return RTCMS_TRACK_FULL;
	return RTCMS_TRACK_AUTO;
}

int rtcms_protect_tracked(uint32_t id, void *ptr, size_t size, int tracking)
{
	int rc = 0;

	if ((!ptr && size) || tracking < RTCMS_TRACK_AUTO || tracking > RTCMS_TRACK_FULL ||
	    tracking == RTCMS_TRACK_WRITES)
		return RTCMS_EINVAL;
	pthread_mutex_lock(&lib.mu);
	if (!lib.ready) {
		rc = RTCMS_ESTATE;
		goto out;
	}
	if (find(id)) {
		rc = RTCMS_EEXIST;
		goto out;
	}
	if (lib.count == AREA_MAX_REGIONS) {
		rc = RTCMS_ETOOBIG;
		goto out;
	}
	if (lib.restoring) {
		const struct area_region *r = NULL;
		for (uint32_t i = 0; i < lib.restore_count; i++)
			if (lib.restore_regions[i].id == id)
				r = &lib.restore_regions[i];
		if (!r) {
			rc = RTCMS_ENOENT;
			goto out;
		}
		if (r->size != size || r->offset > lib.restore_size ||
		    r->size > lib.restore_size - r->offset) {
			rc = RTCMS_EINVAL;
			goto out;
		}
		memcpy(ptr, lib.restore_data + r->offset, size);
	}
	struct region reg = { id, ptr, size, RTCMS_TRACK_FULL, -1, 1, 0, 0,
			      (uintptr_t)ptr % AREA_BLOCK, NULL };
	reg.dirty = calloc(track_words(reg.lead + size) + 1, sizeof(uint64_t));
	if (!reg.dirty) {
		rc = RTCMS_ENOMEM;
		goto out;
	}
	int want = tracking_wanted(tracking);
	if (want == RTCMS_TRACK_AUTO) {
		/* write faults where the memory allows it, else comparison */
		reg.handle = track_add(ptr, size);
		reg.mode = reg.handle >= 0 ? RTCMS_TRACK_WRITES : RTCMS_TRACK_COMPARE;
	} else {
		reg.mode = want;
	}
	lib.regions[lib.count++] = reg;
out:
	pthread_mutex_unlock(&lib.mu);
	return rc;
}

int rtcms_protect(uint32_t id, void *ptr, size_t size)
{
	return rtcms_protect_tracked(id, ptr, size, RTCMS_TRACK_AUTO);
}

static void region_drop(struct region *r)
{
	if (r->handle >= 0)
		track_remove(r->handle);
	free(r->dirty);
	r->handle = -1;
	r->dirty = NULL;
}

int rtcms_unprotect(uint32_t id)
{
	int rc = RTCMS_ENOENT;

	pthread_mutex_lock(&lib.mu);
	struct region *r = lib.ready ? find(id) : NULL;
	if (r) {
		region_drop(r);
		*r = lib.regions[--lib.count];
		rc = 0;
	}
	pthread_mutex_unlock(&lib.mu);
	return rc;
}

int rtcms_region_tracking(uint32_t id)
{
	pthread_mutex_lock(&lib.mu);
	struct region *r = lib.ready ? find(id) : NULL;
	int mode = r ? r->mode : RTCMS_ENOENT;
	pthread_mutex_unlock(&lib.mu);
	return mode;
}

int rtcms_last_stats(struct rtcms_stats *out)
{
	if (!out)
		return RTCMS_EINVAL;
	pthread_mutex_lock(&lib.mu);
	int rc = lib.ready ? 0 : RTCMS_ESTATE;
	*out = lib.stats;
	pthread_mutex_unlock(&lib.mu);
	return rc;
}

/* 1 if slot holds the current regions at the offsets laid out in want */
static int same_layout(const struct area_slot *slot, const struct area_region *want,
		       uint32_t n)
{
	if (!slot || slot->region_count != n)
		return 0;
	for (uint32_t i = 0; i < n; i++)
		if (slot->regions[i].id != want[i].id || slot->regions[i].size != want[i].size ||
		    slot->regions[i].offset != want[i].offset)
			return 0;
	return 1;
}

#define BIT(map, b) ((map)[(b) / 64] >> ((b) % 64) & 1)

/* Blocks of r: on the memory's 4 KiB grid, so that one written page is
 * one block even when the region does not start on a page. */
static size_t region_blocks(const struct region *r)
{
	return (r->lead + r->size + AREA_BLOCK - 1) / AREA_BLOCK;
}

/* The part of r in block b: region offset *at, *len bytes. */
static void block_span(const struct region *r, size_t b, size_t *at, size_t *len)
{
	size_t start = b * AREA_BLOCK, end = start + AREA_BLOCK;
	start = start > r->lead ? start - r->lead : 0;
	end = end - r->lead < r->size ? end - r->lead : r->size;
	*at = start;
	*len = end - start;
}

/* Which blocks of r changed since the committed checkpoint (committed
 * points at the region's first byte there): into r->dirty. all: every
 * block, whatever the tracking says (tracking restarts). */
static void region_dirty(struct region *r, const uint8_t *committed, int all)
{
	size_t words = track_words(r->lead + r->size);
	int paused = 0;
	if (r->mode == RTCMS_TRACK_WRITES && r->paused > 1) {
		r->paused--; /* still unprotected: it is copied whole */
		paused = 1;
	} else if (r->mode == RTCMS_TRACK_WRITES) {
		/* protect again (after a pause too: copied whole this once) */
		paused = r->paused == 1;
		r->paused = 0;
		if (track_take(r->handle, r->dirty) != 0) {
			/* write protection failed: compare from now on */
			r->mode = RTCMS_TRACK_COMPARE;
			r->handle = -1;
			all = 1;
		}
	}
	if (r->mode == RTCMS_TRACK_WRITES && !paused && !all && !r->fresh) {
		/* Most of the region was written: faults and re-protection
		 * cost more than a whole copy. Leave it writable for 1, 2, 4
		 * .. 16 checkpoints and copy it whole meanwhile, then measure
		 * again. */
		size_t n = 0, blocks = region_blocks(r);
		for (size_t w = 0; w < words; w++)
			n += (size_t)__builtin_popcountll(r->dirty[w]);
		if (n * 2 > blocks && track_pause(r->handle) == 0) {
			r->backoff = r->backoff ? (r->backoff < 16 ? r->backoff * 2 : 16) : 1;
			r->paused = r->backoff;
		} else if (n * 2 <= blocks) {
			r->backoff = 0;
		}
	}
	if (all || paused || r->fresh || r->mode == RTCMS_TRACK_FULL) {
		memset(r->dirty, 0xff, words * sizeof(uint64_t));
	} else if (r->mode == RTCMS_TRACK_COMPARE) {
		memset(r->dirty, 0, words * sizeof(uint64_t));
		for (size_t b = 0; b < region_blocks(r); b++) {
			size_t at, len;
			block_span(r, b, &at, &len);
			if (memcmp((const uint8_t *)r->ptr + at, committed + at, len) != 0)
				r->dirty[b / 64] |= (uint64_t)1 << (b % 64);
		}
	}
	r->fresh = 0;
}

enum { SRC_NONE, SRC_LIVE, SRC_COMMITTED };

/* Where block b of r comes from in this checkpoint: the program's memory
 * (it changed now), the committed slot (it changed after the stale slot's
 * sequence), or nowhere (the stale slot holds it already). cver: the
 * committed slot's versions from r's first block (NULL: none). */
static int block_source(const struct region *r, size_t b, const uint64_t *cver,
			uint64_t stale)
{
	if (BIT(r->dirty, b))
		return SRC_LIVE;
	return cver && cver[b] > stale ? SRC_COMMITTED : SRC_NONE;
}

int64_t rtcms_checkpoint(void)
{
	int64_t rc;
	struct area_region layout[AREA_MAX_REGIONS];

	pthread_mutex_lock(&lib.mu);
	if (!lib.ready || lib.restoring) {
		rc = RTCMS_ESTATE; /* restoring: the regions come from the area */
		goto out;
	}
	uint64_t cap = area_data_capacity(lib.area);
	uint64_t need = 0;
	for (uint32_t i = 0; i < lib.count; i++) {
		const struct region *r = &lib.regions[i];
		layout[i] = (struct area_region){ r->id, 0, r->size, need + r->lead };
		need += area_block_round(r->lead + r->size);
	}
	if (need > cap) {
		rc = RTCMS_ENOSPC;
		goto out;
	}
	struct area_slot *c = area_committed_slot(lib.area);
	struct area_slot *s = area_write_begin(lib.area);
	/* Incremental only if the stale slot holds an older checkpoint and
	 * both slots have the current layout; then a block needs copying if
	 * it changed now or after the stale slot's checkpoint. */
	int full = !c || s->sequence == 0 || s->sequence >= c->sequence ||
		   !same_layout(s, layout, lib.count) || !same_layout(c, layout, lib.count);
	uint64_t seq = lib.sequence + 1;
	uint8_t *data = area_slot_data(lib.area, s);
	const uint8_t *cdata = c ? area_slot_data(lib.area, c) : NULL;
	uint64_t *ver = area_slot_versions(lib.area, s);
	const uint64_t *cver = c ? area_slot_versions(lib.area, c) : NULL;
	struct rtcms_stats st = { .sequence = seq, .full = full };
	for (uint32_t i = 0; i < lib.count; i++) {
		struct region *r = &lib.regions[i];
		uint64_t off = layout[i].offset, grid = off - r->lead;
		region_dirty(r, full ? NULL : cdata + off, full);
		st.protected_bytes += r->size;
		/* runs of blocks with the same source: one memcpy each */
		size_t nb = region_blocks(r), vb0 = (size_t)(grid / AREA_BLOCK);
		for (size_t b = 0, e; b < nb; b = e) {
			int kind = block_source(r, b, cver ? cver + vb0 : NULL, s->sequence);
			for (e = b + 1;
			     e < nb && block_source(r, e, cver ? cver + vb0 : NULL, s->sequence) == kind;
			     e++)
				;
			if (kind == SRC_NONE)
				continue;
			size_t at, len, at_end, len_end;
			block_span(r, b, &at, &len);
			block_span(r, e - 1, &at_end, &len_end);
			size_t bytes = at_end + len_end - at;
			if (kind == SRC_LIVE) {
				/* the program's threads may write these pages now:
				 * such a write faults and marks its page dirty again
				 * for the next checkpoint (write tracking), an order
				 * TSan cannot see */
				TSAN_IGNORE_READS_BEGIN();
				memcpy(data + off + at, (const uint8_t *)r->ptr + at, bytes);
				TSAN_IGNORE_READS_END();
				for (size_t k = b; k < e; k++)
					ver[vb0 + k] = seq;
				st.dirty_bytes += bytes;
			} else {
				/* changed in the committed checkpoint: this slot is
				 * one behind; the committed copy is current */
				memcpy(data + off + at, cdata + off + at, bytes);
				memcpy(ver + vb0 + b, cver + vb0 + b, (e - b) * sizeof(*ver));
			}
			st.copied_bytes += bytes;
		}
		if (full) { /* the padding before and after it in its blocks */
			memset(data + grid, 0, r->lead);
			memset(data + off + r->size, 0,
			       area_block_round(r->lead + r->size) - r->lead - r->size);
		}
	}
	memcpy(s->regions, layout, lib.count * sizeof(layout[0]));
	s->region_count = lib.count;
	s->data_size = need;
	area_write_commit(lib.area, s, seq);
	lib.sequence = seq;
	lib.stats = st;
	rc = (int64_t)lib.sequence;
	struct area_header *h = lib.area;
	if (atomic_load_explicit(&h->control, memory_order_acquire) & AREA_CTL_FREEZE) {
		/* migration: this is the final checkpoint; the agent thaws us
		 * (SIGCONT) if the move fails, or kills us once it succeeded */
		atomic_store_explicit(&h->frozen, lib.sequence, memory_order_release);
		raise(SIGSTOP);
	}
out:
	pthread_mutex_unlock(&lib.mu);
	return rc;
}

int rtcms_restoring(void)
{
	pthread_mutex_lock(&lib.mu);
	int r = lib.ready && lib.restoring;
	pthread_mutex_unlock(&lib.mu);
	return r;
}

int rtcms_resume(void)
{
	int rc = 0;

	pthread_mutex_lock(&lib.mu);
	if (!lib.ready || !lib.restoring) {
		rc = RTCMS_ESTATE;
	} else {
		lib.restoring = 0;
		lib.restore_data = NULL;
		struct area_header *h = lib.area;
		atomic_store_explicit(&h->resumed, lib.sequence, memory_order_release);
	}
	pthread_mutex_unlock(&lib.mu);
	return rc;
}

int rtcms_request_migration(void)
{
	int rc = 0;

	pthread_mutex_lock(&lib.mu);
	if (!lib.ready || !lib.shared) {
		rc = RTCMS_ESTATE; /* no agent to ask */
	} else {
		struct area_header *h = lib.area;
		atomic_fetch_or_explicit(&h->request, AREA_REQ_MIGRATE, memory_order_release);
	}
	pthread_mutex_unlock(&lib.mu);
	return rc;
}

uint64_t rtcms_sequence(void)
{
	pthread_mutex_lock(&lib.mu);
	uint64_t s = lib.sequence;
	pthread_mutex_unlock(&lib.mu);
	return s;
}

int rtcms_finalize(void)
{
	pthread_mutex_lock(&lib.mu);
	lease_stop();
	if (lib.area)
		munmap(lib.area, lib.area_len);
	lib.area = NULL;
	lib.restore_data = NULL;
	for (uint32_t i = 0; i < lib.count; i++)
		region_drop(&lib.regions[i]);
	lib.count = 0;
	lib.ready = 0;
	lib.restoring = 0;
	lib.sequence = 0;
	pthread_mutex_unlock(&lib.mu);
	return 0;
}
