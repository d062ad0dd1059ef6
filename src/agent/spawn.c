/*
 * spawn.c - the agent's launcher (spawn.h): a program's checkpoint area
 * is a memfd, formatted (a restore's made before, its image received
 * into it), mapped by the agent and inherited by the program as fd 3; the program starts
 * with posix_spawn in its own process group.
 */
#include "spawn.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "area/area.h"
#include "proto/spec.h"
#include "rtcms_error.h"

extern char **environ;

/* Build envp: the spec's variables plus the area descriptor and mode. */
static char **make_env(const struct proto_spec *sp, const char *id, bool restore)
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
				bool in_spec = false;
				for (uint16_t i = 0; i < sp->envc; i++)
					if (strncmp(sp->env[i], keep[k], strlen(keep[k])) == 0)
						in_spec = true;
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

/* The area's capacity: the agent's, or what the area being restarted
 * from needs. */
static uint64_t area_capacity(const struct agent *a, const struct launch_req *r)
{
	uint64_t capacity = a->cfg.area_capacity;
	if (r->from_area && area_data_capacity(r->from_area) > capacity)
		capacity = area_data_capacity(r->from_area);
	return capacity;
}

int spawn_area_new(uint64_t capacity, struct launch_area *out, char *err, size_t errlen)
{
	out->len = area_size_for(capacity);
	out->mem = NULL;
	out->fd = memfd_create("rtcms-area", MFD_CLOEXEC);
	if (out->fd < 0 || ftruncate(out->fd, (off_t)out->len) != 0)
		goto fail;
	out->mem = mmap(NULL, out->len, PROT_READ | PROT_WRITE, MAP_SHARED, out->fd, 0);
	if (out->mem == MAP_FAILED) {
		out->mem = NULL;
		goto fail;
	}
	area_format(out->mem, out->len);
	return 0;
fail:
	snprintf(err, errlen, "checkpoint area: %s", strerror(errno));
	spawn_area_free(out);
	return RTCMS_ENOMEM;
}

void spawn_area_free(struct launch_area *ar)
{
	if (!ar)
		return;
	if (ar->mem)
		munmap(ar->mem, ar->len);
	if (ar->fd >= 0)
		close(ar->fd);
	ar->mem = NULL;
	ar->fd = -1;
}

/* p's area, unless a restore's is there already: a memfd of the
 * capacity, holding the checkpoint a restart continues from. 0 or an
 * error with the reason in err (what was made is released with the
 * entry). */
static int area_make(struct aproc *p, uint64_t capacity, const struct launch_req *r,
		     char *err, size_t errlen)
{
	if (p->area)
		return 0;
	struct launch_area ar;
	int rc = spawn_area_new(capacity, &ar, err, errlen);
	if (rc)
		return rc;
	p->area_fd = ar.fd;
	p->area = ar.mem;
	p->area_len = ar.len;
	if (r->from_area) {
		rc = area_copy(p->area, r->from_area);
		if (rc) {
			snprintf(err, errlen, "cannot copy the checkpoint: %s",
				 rtcms_strerror(rc));
			return rc;
		}
	}
	return 0;
}

/* posix_spawn the program of sp with env, the area on fd 3, stdin from
 * /dev/null, in its own process group (a signal to the agent's group, a
 * terminal's hangup or ^C, is not the program's). 0 or RTCMS_EIO. */
static int spawn_program(struct aproc *p, const struct proto_spec *sp, char **env,
			 char *err, size_t errlen)
{
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t sa;
	pid_t pid;
	int rc = 0;

	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	posix_spawnattr_init(&sa);
	posix_spawnattr_setflags(&sa, POSIX_SPAWN_SETPGROUP);
	posix_spawnattr_setpgroup(&sa, 0);
	posix_spawn_file_actions_adddup2(&fa, p->area_fd, 3);
	if (sp->cwd && sp->cwd[0])
		posix_spawn_file_actions_addchdir_np(&fa, sp->cwd);
	int e = posix_spawn(&pid, sp->argv[0], &fa, &sa, (char *const *)sp->argv, env);
	if (e != 0) {
		snprintf(err, errlen, "cannot start %s: %s", sp->argv[0], strerror(e));
		rc = RTCMS_EIO;
		goto out;
	}
	p->pid = pid;
out:
	posix_spawnattr_destroy(&sa);
	posix_spawn_file_actions_destroy(&fa);
	return rc;
}

static int spawn_start(void *ctx, const struct agent *a, const struct launch_req *r,
		       struct aproc *p, char *err, size_t errlen)
{
	struct proto_spec sp;
	char arena[PROTO_SPEC_MAX + 512];
	(void)ctx;

	int rc = proto_spec_decode(r->spec, r->spec_len, &sp, arena, sizeof(arena));
	if (rc) {
		snprintf(err, errlen, "bad program spec: %s", rtcms_strerror(rc));
		return rc;
	}
	rc = area_make(p, area_capacity(a, r), r, err, errlen);
	if (rc)
		return rc;
	char **env = make_env(&sp, r->id, r->area != NULL);
	if (!env) {
		snprintf(err, errlen, "no memory for the environment");
		return RTCMS_ENOMEM;
	}
	rc = spawn_program(p, &sp, env, err, errlen);
	free_env(env);
	return rc;
}

static void spawn_signal(void *ctx, struct aproc *p, int sig)
{
	(void)ctx;
	if (p->pid > 0)
		kill(p->pid, sig);
}

static void spawn_release(void *ctx, struct aproc *p)
{
	struct launch_area ar = { p->area_fd, p->area, p->area_len };
	(void)ctx;
	spawn_area_free(&ar);
	p->area = NULL;
	p->area_fd = -1;
}

const struct launcher_ops spawn_launcher = {
	.start = spawn_start,
	.signal = spawn_signal,
	.release = spawn_release,
};
