/*
 * proc.c - the agent's protected programs: launch (with a checkpoint area
 * as shared memory on fd 3), capture of committed checkpoints as images,
 * reaping.
 */
#include "agent.h"

#include <errno.h>
#include <inttypes.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "area/area.h"
#include "area/delta.h"
#include "area/image.h"
#include "log/log.h"
#include "proto/spec.h"
#include "rtcms_error.h"

#define CHUNK (1u << 20)

extern char **environ;

static void encoding_free(struct encoding *e)
{
	free(e->bytes);
	free(e->chunk_hash);
}

void image_free(struct image *img)
{
	if (!img)
		return;
	encoding_free(&img->full);
	while (img->deltas) {
		struct encoding *e = img->deltas;
		img->deltas = e->next;
		encoding_free(e);
		free(e);
	}
	uv_mutex_destroy(&img->lock);
	free(img->data);
	free(img->versions);
	free(img->block_hash);
	free(img);
}

void image_unref(struct agent *a, struct image *img)
{
	if (!img)
		return;
	uv_mutex_lock(&a->lock);
	int last = --img->refs == 0;
	uv_mutex_unlock(&a->lock);
	if (last)
		image_free(img);
}

struct aproc *proc_find(struct agent *a, const char *id)
{
	uv_mutex_lock(&a->lock);
	struct aproc *p = a->procs;
	for (; p; p = p->next)
		if (strcmp(p->id, id) == 0 && p->state != AP_EXITED)
			break;
	if (p)
		p->refs++;
	uv_mutex_unlock(&a->lock);
	return p;
}

void proc_unref(struct agent *a, struct aproc *p)
{
	if (!p)
		return;
	uv_mutex_lock(&a->lock);
	p->refs--;
	uv_mutex_unlock(&a->lock);
}

void proc_kill(struct aproc *p, int sig)
{
	if (p->pid > 0 && p->state != AP_EXITED) {
		if (sig == SIGKILL)
			p->killed = 1; /* not a crash: never restarted here */
		kill(p->pid, sig);
	}
}

void proc_free(struct aproc *p)
{
	if (!p)
		return;
	if (p->area)
		munmap(p->area, p->area_len);
	if (p->area_fd >= 0)
		close(p->area_fd);
	free(p->spec);
	uv_mutex_destroy(&p->cap_lock);
	free(p);
}

void agent_seen(struct agent *a, const char *id, uint64_t inc)
{
	for (size_t i = 0; i < a->seen_count; i++)
		if (strcmp(a->seen[i].id, id) == 0) {
			if (inc > a->seen[i].inc)
				a->seen[i].inc = inc;
			return;
		}
	size_t i = a->seen_count < 256 ? a->seen_count++ : a->seen_next++ % 256;
	snprintf(a->seen[i].id, sizeof(a->seen[i].id), "%s", id);
	a->seen[i].inc = inc;
}

int agent_running_count(struct agent *a)
{
	int n = 0;
	for (struct aproc *p = a->procs; p; p = p->next)
		if (p->state != AP_EXITED)
			n++;
	return n;
}

/* Build envp: the spec's variables plus the area descriptor and mode. */
static char **make_env(const struct proto_spec *sp, const char *id, int restore)
{
	static const char *keep[] = { "PATH=", "LANG=", "TZ=", "ASAN_OPTIONS=",
				      "UBSAN_OPTIONS=", "LSAN_OPTIONS=" };
	size_t n = 0, cap = sp->envc + 16;
	char **env = calloc(cap, sizeof(char *));
	if (!env)
		return NULL;
	/* a few of the agent's own variables (PATH, sanitizer options), unless
	 * the spec sets them */
	for (char **e = environ; *e && n < 6; e++)
		for (size_t k = 0; k < sizeof(keep) / sizeof(keep[0]); k++)
			if (strncmp(*e, keep[k], strlen(keep[k])) == 0) {
				int in_spec = 0;
				for (uint16_t i = 0; i < sp->envc; i++)
					if (strncmp(sp->env[i], keep[k], strlen(keep[k])) == 0)
						in_spec = 1;
				if (!in_spec)
					env[n++] = strdup(*e);
			}
	for (uint16_t i = 0; i < sp->envc; i++)
		if (strncmp(sp->env[i], "RTCMS_", 6) != 0)
			env[n++] = strdup(sp->env[i]);
	env[n++] = strdup("RTCMS_AREA_FD=3");
	char buf[PROTO_ID_MAX + 32];
	snprintf(buf, sizeof(buf), "RTCMS_PROCESS=%s", id);
	env[n++] = strdup(buf);
	if (restore)
		env[n++] = strdup("RTCMS_RESTORE=1");
	env[n] = NULL;
	for (size_t i = 0; i < n; i++)
		if (!env[i]) {
			for (size_t j = 0; j < n; j++)
				free(env[j]);
			free(env);
			return NULL;
		}
	return env;
}

static void free_env(char **env)
{
	for (char **e = env; e && *e; e++)
		free(*e);
	free(env);
}

int proc_launch(struct agent *a, const char *id, uint64_t incarnation,
		const uint8_t *spec, uint32_t spec_len, const uint8_t *image,
		size_t image_len, struct aproc **out, char *err, size_t errlen)
{
	struct proto_spec sp;
	char arena[PROTO_SPEC_MAX + 512];
	struct aproc *p = NULL;
	char **env = NULL;
	posix_spawn_file_actions_t fa;
	int fa_init = 0;
	int rc;

	*out = NULL;
	/* a program runs only under a lease: its watchdog must have an end
	 * to enforce, or it would outlive this agent. A request that comes
	 * right after this agent registered waits for the first answer (the
	 * callers that run on the loop start programs only under a lease). */
	int leased = 0;
	for (int waited = 0; !leased && waited <= 2000; waited += 10) {
		uv_mutex_lock(&a->lock);
		leased = a->lease_until > agent_mono_ms() && !a->fenced;
		uv_mutex_unlock(&a->lock);
		if (!leased)
			uv_sleep(10);
	}
	if (!leased) {
		snprintf(err, errlen, "this agent holds no lease (no manager answers its "
			 "heartbeats yet)");
		return RTCMS_ESTATE;
	}
	rc = proto_spec_decode(spec, spec_len, &sp, arena, sizeof(arena));
	if (rc) {
		snprintf(err, errlen, "bad program spec: %s", rtcms_strerror(rc));
		return rc;
	}
	/* the area must hold the checkpoint being restored */
	uint64_t capacity = a->cfg.area_capacity;
	if (image) {
		uint64_t seq, dsize;
		struct area_region regs[AREA_MAX_REGIONS];
		uint32_t count;
		const uint8_t *data;
		rc = image_parse(image, image_len, &seq, regs, &count, &data, &dsize);
		if (rc) {
			snprintf(err, errlen, "bad checkpoint image: %s", rtcms_strerror(rc));
			return rc;
		}
		if (dsize > capacity)
			capacity = dsize;
	}
	p = calloc(1, sizeof(*p));
	if (!p)
		return RTCMS_ENOMEM;
	p->area_fd = -1;
	p->pid = -1;
	uv_mutex_init(&p->cap_lock);
	snprintf(p->id, sizeof(p->id), "%s", id);
	p->incarnation = incarnation;
	p->state = image ? AP_RESTORING : AP_RUNNING;
	p->spec = malloc(spec_len);
	if (!p->spec) {
		rc = RTCMS_ENOMEM;
		goto fail;
	}
	memcpy(p->spec, spec, spec_len);
	p->spec_len = spec_len;

	p->area_len = area_size_for(capacity);
	p->area_fd = memfd_create("rtcms-area", MFD_CLOEXEC);
	if (p->area_fd < 0 || ftruncate(p->area_fd, (off_t)p->area_len) != 0) {
		snprintf(err, errlen, "checkpoint area: %s", strerror(errno));
		rc = RTCMS_ENOMEM;
		goto fail;
	}
	p->area = mmap(NULL, p->area_len, PROT_READ | PROT_WRITE, MAP_SHARED,
		       p->area_fd, 0);
	if (p->area == MAP_FAILED) {
		p->area = NULL;
		snprintf(err, errlen, "checkpoint area: %s", strerror(errno));
		rc = RTCMS_ENOMEM;
		goto fail;
	}
	area_format(p->area, p->area_len);
	if (image) {
		rc = image_install(p->area, image, image_len);
		if (rc) {
			snprintf(err, errlen, "cannot install the checkpoint: %s",
				 rtcms_strerror(rc));
			goto fail;
		}
	}

	env = make_env(&sp, id, image != NULL);
	if (!env) {
		rc = RTCMS_ENOMEM;
		goto fail;
	}
	posix_spawn_file_actions_init(&fa);
	fa_init = 1;
	posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	/* its own process group: a signal to the agent's group (a terminal's
	 * hangup, ^C) is not the program's */
	posix_spawnattr_t sa;
	posix_spawnattr_init(&sa);
	posix_spawnattr_setflags(&sa, POSIX_SPAWN_SETPGROUP);
	posix_spawnattr_setpgroup(&sa, 0);
	posix_spawn_file_actions_adddup2(&fa, p->area_fd, 3);
	if (sp.cwd && sp.cwd[0])
		posix_spawn_file_actions_addchdir_np(&fa, sp.cwd);
	pid_t pid;
	int e = posix_spawn(&pid, sp.argv[0], &fa, &sa, (char *const *)sp.argv, env);
	posix_spawnattr_destroy(&sa);
	if (e != 0) {
		snprintf(err, errlen, "cannot start %s: %s", sp.argv[0], strerror(e));
		rc = RTCMS_EIO;
		goto fail;
	}
	p->pid = pid;
	posix_spawn_file_actions_destroy(&fa);
	free_env(env);

	uv_mutex_lock(&a->lock);
	/* what managers were told before is not this instance's */
	p->refs = 1;
	p->started_lapses = a->lapses;
	a->procs_gen++;
	if (!image)
		agent_seen(a, id, incarnation);
	atomic_store_explicit(&((struct area_header *)p->area)->lease_until_ms,
			      a->lease_until, memory_order_release);
	p->next = a->procs;
	a->procs = p;
	uv_mutex_unlock(&a->lock);
	*out = p;
	return 0;
fail:
	if (fa_init)
		posix_spawn_file_actions_destroy(&fa);
	free_env(env);
	proc_free(p);
	return rc;
}

/* Chunk hashes and image hash of bytes (size) into e. 0 or RTCMS_ENOMEM. */
static int encoding_hash(struct encoding *e, const uint8_t *bytes, size_t size)
{
	struct proto_image_hash ih;
	size_t chunks = (size + CHUNK - 1) / CHUNK;
	if (chunks > e->hash_cap) {
		free(e->chunk_hash);
		e->chunk_hash = malloc(chunks * PROTO_HASH_SIZE);
		e->hash_cap = e->chunk_hash ? chunks : 0;
		if (!e->chunk_hash)
			return RTCMS_ENOMEM;
	}
	uint32_t n = 0;
	proto_image_hash_init(&ih, size);
	for (size_t off = 0; off < size; off += CHUNK, n++) {
		uint32_t len = size - off < CHUNK ? (uint32_t)(size - off) : CHUNK;
		proto_chunk_hash(bytes + off, len, e->chunk_hash[n]);
		proto_image_hash_update(&ih, off, len, e->chunk_hash[n]);
	}
	proto_image_hash_final(&ih, e->hash);
	e->chunk_count = n;
	e->size = size;
	return 0;
}

/* Whether a delta of img against base pays: base below the image's
 * sequence, at most half of the blocks changed since (*changed of them),
 * whole blocks (*regions regions). */
static bool delta_pays(const struct image *img, uint64_t base, uint32_t *regions,
		       size_t *changed)
{
	struct area_region r[AREA_MAX_REGIONS];
	const uint8_t *d;
	uint64_t seq, dsize;
	size_t k = 0;

	if (!base || base >= img->sequence)
		return false;
	for (size_t b = 0; b < img->blocks; b++)
		k += img->versions[b] > base;
	*changed = k;
	return k <= img->blocks / 2 &&
	       image_parse(img->data, img->size, &seq, r, regions, &d, &dsize) == 0 &&
	       dsize % AREA_BLOCK == 0;
}

/* Build the delta of img against base (carrying changed blocks of regions
 * regions) into e, which nobody streams. 0 or RTCMS_ENOMEM (or another
 * error of delta_build). */
static int build_delta(struct image *img, struct encoding *e, uint64_t base,
		       uint32_t regions, size_t changed)
{
	size_t need = delta_size(regions, (uint32_t)changed);
	e->ready = 0;
	if (need > e->cap) {
		free(e->bytes);
		e->bytes = malloc(need);
		e->cap = e->bytes ? need : 0;
	}
	int64_t len = e->bytes ? delta_build(img->data, img->size, img->versions, base,
					     e->bytes, e->cap)
			       : RTCMS_ENOMEM;
	if (len < 0)
		return (int)len;
	int rc = encoding_hash(e, e->bytes, (size_t)len);
	if (rc)
		return rc;
	e->base = base;
	e->ready = 1;
	return 0;
}

/* With img.lock held: the delta against base, built if need be into one
 * nobody streams (a new one when every delta is in use). NULL on failure. */
static struct encoding *delta_for(struct image *img, uint64_t base, uint32_t regions,
				  size_t changed)
{
	struct encoding *idle = NULL;
	for (struct encoding *e = img->deltas; e; e = e->next) {
		if (e->ready && e->base == base)
			return e;
		if (!e->users && (!idle || !e->ready))
			idle = e;
	}
	if (!idle) {
		idle = calloc(1, sizeof(*idle));
		if (!idle)
			return NULL;
		idle->next = img->deltas;
		img->deltas = idle;
	}
	return build_delta(img, idle, base, regions, changed) == 0 ? idle : NULL;
}

struct encoding *image_encoding(struct image *img, uint64_t base)
{
	struct encoding *e = NULL;
	uint32_t regions;
	size_t changed;
	uv_mutex_lock(&img->lock);
	if (delta_pays(img, base, &regions, &changed)) {
		e = delta_for(img, base, regions, changed);
	} else { /* the full image: built once, never changed after */
		e = &img->full;
		if (!e->ready && encoding_hash(e, img->data, img->size) == 0) {
			e->base = 0;
			e->ready = 1;
		}
		if (!e->ready)
			e = NULL;
	}
	if (e)
		e->users++;
	uv_mutex_unlock(&img->lock);
	return e;
}

void image_encoding_done(struct image *img, struct encoding *e)
{
	if (!e)
		return;
	uv_mutex_lock(&img->lock);
	e->users--;
	uv_mutex_unlock(&img->lock);
}

/* Make room in img for an image of cap bytes and blocks data blocks. */
static int image_reserve(struct image *img, size_t cap, size_t blocks)
{
	if (img->cap < cap) {
		free(img->data);
		img->data = malloc(cap);
		img->cap = img->data ? cap : 0;
		if (!img->data)
			return RTCMS_ENOMEM;
		img->size = 0; /* nothing to build on */
	}
	if (img->block_cap < blocks) {
		free(img->versions);
		free(img->block_hash);
		img->versions = malloc(blocks * sizeof(uint64_t));
		img->block_hash = malloc(blocks * PROTO_HASH_SIZE);
		img->block_cap = img->versions && img->block_hash ? blocks : 0;
		if (!img->block_cap)
			return RTCMS_ENOMEM;
		img->size = 0;
	}
	return 0;
}

/* A new image to capture into, built on cur where possible: cur's memory
 * when nobody else reads it, else a copy of it (a memcpy is far cheaper
 * than hashing the blocks again). */
static struct image *image_next(struct image *cur, int reuse, size_t cap, size_t blocks)
{
	struct image *img = reuse ? cur : calloc(1, sizeof(*img));
	if (!img)
		return NULL;
	if (!reuse) {
		uv_mutex_init(&img->lock);
		if (image_reserve(img, cap, blocks) != 0) {
			image_free(img);
			return NULL;
		}
		if (cur && cur->size && cur->size <= cap && cur->blocks <= blocks) {
			memcpy(img->data, cur->data, cur->size);
			memcpy(img->versions, cur->versions, cur->blocks * sizeof(uint64_t));
			memcpy(img->block_hash, cur->block_hash, cur->blocks * PROTO_HASH_SIZE);
			img->size = cur->size;
			img->sequence = cur->sequence;
			img->blocks = cur->blocks;
		}
	} else if (image_reserve(img, cap, blocks) != 0) {
		return NULL;
	}
	/* nobody streams them (nobody else references img): stale now */
	img->full.ready = 0;
	for (struct encoding *e = img->deltas; e; e = e->next)
		e->ready = 0;
	return img;
}

int proc_capture(struct agent *a, struct aproc *p, struct image **out)
{
	struct image *img = NULL;
	int rc = 0;

	if (out)
		*out = NULL;
	uv_mutex_lock(&p->cap_lock);
	uint64_t seq = area_committed_sequence(p->area);
	uv_mutex_lock(&a->lock);
	struct image *cur = p->img;
	if (cur && cur->sequence == seq) {
		if (out) {
			cur->refs++;
			*out = cur;
		}
		uv_mutex_unlock(&a->lock);
		goto done;
	}
	if (seq == 0) {
		uv_mutex_unlock(&a->lock);
		rc = RTCMS_ENOENT;
		goto done;
	}
	int reuse = cur && cur->refs == 1; /* nobody reads it: reuse its memory */
	if (reuse)
		p->img = NULL;
	else if (cur)
		cur->refs++; /* held while we copy from it */
	uv_mutex_unlock(&a->lock);

	size_t cap = image_size(AREA_MAX_REGIONS, area_data_capacity(p->area));
	size_t blocks = area_data_capacity(p->area) / AREA_BLOCK;
	img = image_next(cur, reuse, cap, blocks);
	if (!reuse)
		image_unref(a, cur);
	if (!img) {
		if (reuse)
			image_free(cur);
		rc = RTCMS_ENOMEM;
		goto done;
	}
	/* copy only the blocks changed since the image we build on, and hash
	 * only those (the state hash reuses the other blocks' hashes) */
	uint64_t since = img->size ? img->sequence : 0;
	int64_t len = image_capture_since(p->area, &since, img->data, img->cap, img->versions,
					  img->block_cap);
	if (len < 0) {
		rc = (int)len;
		goto fail;
	}
	img->size = (size_t)len;
	struct area_region regs[AREA_MAX_REGIONS];
	uint32_t count;
	const uint8_t *data;
	uint64_t dsize;
	rc = image_parse(img->data, img->size, &img->sequence, regs, &count, &data, &dsize);
	if (rc)
		goto fail;
	img->blocks = area_block_round(dsize) / AREA_BLOCK;
	img->copied = 0;
	for (size_t b = 0; b < img->blocks; b++) {
		if (since && img->versions[b] <= since)
			continue;
		size_t off = b * AREA_BLOCK;
		size_t n = dsize - off < AREA_BLOCK ? (size_t)(dsize - off) : AREA_BLOCK;
		state_block_hash(data + off, n, img->block_hash[b]);
		img->copied += n;
	}
	state_hash_blocks(img->data, (size_t)(data - img->data),
			  (const uint8_t (*)[PROTO_HASH_SIZE])img->block_hash, img->blocks,
			  img->state_hash);
	img->created_ms = agent_now_ms();
	img->captured_ms = agent_mono_ms();
	img->pulled = 0;
	log_debug("[program %s] captured checkpoint %" PRIu64 ": %" PRIu64 " of %zu bytes "
		  "copied and hashed (built on %" PRIu64 ")", p->id, img->sequence, img->copied,
		  img->size, since);

	uv_mutex_lock(&a->lock);
	cur = p->img;
	p->img = img;
	img->refs = out ? 2 : 1;
	uv_mutex_unlock(&a->lock);
	if (out)
		*out = img;
	image_unref(a, cur);
	goto done;
fail:
	image_free(img);
done:
	uv_mutex_unlock(&p->cap_lock);
	return rc;
}

void proc_reap(struct agent *a)
{
	uv_mutex_lock(&a->lock);
	for (struct aproc *p = a->procs; p; p = p->next) {
		if (p->state == AP_EXITED || p->pid <= 0)
			continue;
		int st;
		pid_t r = waitpid(p->pid, &st, WNOHANG);
		if (r != p->pid)
			continue;
		p->status = st;
		enum aproc_state was = p->state;
		p->state = AP_EXITED;
		if (WIFEXITED(st))
			log_info("[program %s] pid %d exited with status %d", p->id,
				 (int)p->pid, WEXITSTATUS(st));
		else
			log_info("[program %s] pid %d killed by signal %d", p->id,
				 (int)p->pid, WTERMSIG(st));
		/* a restart here, finished, failed, or gone (restart.c); a
		 * frozen instance stopped after its move, a restore never
		 * adopted or a fenced program is not news for EXITED */
		proc_exit_decide(a, p, agent_mono_ms(), was);
		a->procs_gen++;
	}
	/* children no longer in the table (never expected) must not linger
	 * as zombies */
	int st;
	while (waitpid(-1, &st, WNOHANG) > 0)
		;
	uv_mutex_unlock(&a->lock);
	agent_wake_outbox(a);
}
