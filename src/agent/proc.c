/*
 * proc.c - the agent's protected programs: launch (with a checkpoint area
 * as shared memory on fd 3), capture of committed checkpoints as images,
 * reaping.
 */
#include "agent.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "area/area.h"
#include "area/image.h"
#include "log/log.h"
#include "proto/spec.h"
#include "rtcms_error.h"

#define CHUNK (1u << 20)

extern char **environ;

void image_unref(struct agent *a, struct image *img)
{
	if (!img)
		return;
	uv_mutex_lock(&a->lock);
	int last = --img->refs == 0;
	uv_mutex_unlock(&a->lock);
	if (last) {
		free(img->data);
		free(img->chunk_hash);
		free(img);
	}
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
	if (p->pid > 0 && p->state != AP_EXITED)
		kill(p->pid, sig);
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
	posix_spawn_file_actions_adddup2(&fa, p->area_fd, 3);
	if (sp.cwd && sp.cwd[0])
		posix_spawn_file_actions_addchdir_np(&fa, sp.cwd);
	pid_t pid;
	int e = posix_spawn(&pid, sp.argv[0], &fa, NULL, (char *const *)sp.argv, env);
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

static void hash_image(struct image *img)
{
	struct proto_image_hash ih;
	uint32_t n = 0;

	proto_image_hash_init(&ih, img->size);
	for (size_t off = 0; off < img->size; off += CHUNK, n++) {
		uint32_t len = img->size - off < CHUNK ? (uint32_t)(img->size - off) : CHUNK;
		proto_chunk_hash(img->data + off, len, img->chunk_hash[n]);
		proto_image_hash_update(&ih, off, len, img->chunk_hash[n]);
	}
	proto_image_hash_final(&ih, img->hash);
	img->chunk_count = n;
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
	if (cur && cur->refs == 1) { /* nobody reads it: reuse its memory */
		p->img = NULL;
		img = cur;
	}
	uv_mutex_unlock(&a->lock);

	size_t cap = image_size(AREA_MAX_REGIONS, area_data_capacity(p->area));
	if (!img) {
		img = calloc(1, sizeof(*img));
		if (!img) {
			rc = RTCMS_ENOMEM;
			goto done;
		}
	}
	if (img->cap < cap) {
		free(img->data);
		free(img->chunk_hash);
		img->data = malloc(cap);
		img->chunk_hash = malloc(((cap + CHUNK - 1) / CHUNK) * PROTO_HASH_SIZE);
		img->cap = img->data && img->chunk_hash ? cap : 0;
		if (!img->cap) {
			rc = RTCMS_ENOMEM;
			goto fail;
		}
	}
	int64_t len = RTCMS_EAGAIN;
	for (int tries = 0; tries < 100 && len == RTCMS_EAGAIN; tries++)
		len = image_capture(p->area, img->data, img->cap);
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
	img->created_ms = agent_now_ms();
	img->captured_ms = agent_mono_ms();
	img->pulled = 0;
	hash_image(img);

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
	free(img->data);
	free(img->chunk_hash);
	free(img);
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
		/* a frozen instance stopped after its move, or a restore that
		 * was never adopted, is not news for the managers */
		if (was == AP_FROZEN || was == AP_RESTORING || p->incarnation == 0)
			p->exit_told = ~0u;
		/* killed by its own lease watchdog (or ours): fenced, not ended;
		 * the managers restore it elsewhere */
		if (a->lease_until && agent_mono_ms() >= a->lease_until) {
			p->exit_told = ~0u;
			log_info("[program %s] fenced: the lease had lapsed", p->id);
		}
	}
	/* children no longer in the table (never expected) must not linger
	 * as zombies */
	int st;
	while (waitpid(-1, &st, WNOHANG) > 0)
		;
	uv_mutex_unlock(&a->lock);
	agent_wake_outbox(a);
}
