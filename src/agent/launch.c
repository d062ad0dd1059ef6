/*
 * launch.c - starting a program here (launch.h).
 */
#include "launch.h"

#include <inttypes.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "area/area.h"
#include "log/log.h"
#include "proc.h"
#include "proto/spec.h"
#include "rtcms_error.h"

/* Whether the agent holds a lease, waiting up to a->lease_wait_ms for
 * one: a request that comes right after this agent registered waits for
 * the first answer (the callers that run on the loop start programs only
 * under a lease). */
static bool lease_wait(struct agent *a)
{
	for (uint64_t waited = 0;; waited += 10) {
		uv_mutex_lock(&a->lock);
		bool leased = a->lease_until > agent_mono_ms() && !a->fenced;
		uv_mutex_unlock(&a->lock);
		if (leased)
			return true;
		if (waited >= a->lease_wait_ms)
			return false;
		uv_sleep(10);
	}
}

/* r's area is the entry's now (or released): the restore holds none. */
static void take_area(const struct launch_req *r)
{
	if (!r->area)
		return;
	r->area->mem = NULL;
	r->area->fd = -1;
	r->area->len = 0;
}

/* A new entry for r, not started, in no table, with r's area; NULL
 * without memory. */
static struct aproc *entry_new(const struct launch_req *r)
{
	struct aproc *p = calloc(1, sizeof(*p));
	if (!p)
		return NULL;
	p->area_fd = -1;
	p->pid = -1;
	uv_mutex_init(&p->cap_lock);
	snprintf(p->id, sizeof(p->id), "%s", r->id);
	p->incarnation = r->incarnation;
	p->state = r->area ? AP_RESTORING : AP_RUNNING;
	p->spec = malloc(r->spec_len ? r->spec_len : 1);
	if (!p->spec) {
		uv_mutex_destroy(&p->cap_lock);
		free(p);
		return NULL;
	}
	memcpy(p->spec, r->spec, r->spec_len);
	p->spec_len = r->spec_len;
	if (r->area) {
		p->area_fd = r->area->fd;
		p->area = r->area->mem;
		p->area_len = r->area->len;
		take_area(r);
	}
	return p;
}

int launch_start(struct agent *a, const struct launch_req *r, struct aproc **out,
		 char *err, size_t errlen)
{
	*out = NULL;
	struct aproc *p = entry_new(r);
	if (!p) {
		struct aproc none = { .area_fd = r->area ? r->area->fd : -1,
				      .area = r->area ? r->area->mem : NULL,
				      .area_len = r->area ? r->area->len : 0 };
		a->launcher->release(a->launcher_ctx, &none);
		take_area(r);
		snprintf(err, errlen, "no memory for a program");
		return RTCMS_ENOMEM;
	}
	int rc = proc_seal_spec(a, p, err, errlen);
	if (rc) {
		proc_free(a, p);
		return rc;
	}
	rc = RTCMS_ESTATE;
	if (!lease_wait(a)) {
		snprintf(err, errlen, "this agent holds no lease (no manager answers its "
			 "heartbeats yet)");
		proc_free(a, p);
		return rc;
	}
	rc = a->launcher->start(a->launcher_ctx, a, r, p, err, errlen);
	if (rc) {
		proc_free(a, p);
		return rc;
	}
	uv_mutex_lock(&a->lock);
	/* what managers were told before is not this instance's */
	p->refs = 1;
	p->started_lapses = a->lapses;
	a->procs_gen++;
	if (!r->area)
		proc_seen_record(a, r->id, r->incarnation);
	atomic_store_explicit(&((struct area_header *)p->area)->lease_until_ms,
			      a->lease_until, memory_order_release);
	p->next = a->procs;
	a->procs = p;
	uv_mutex_unlock(&a->lock);
	*out = p;
	return 0;
}

/* "ID PATH ARGS..." from the config: a spec with the agent's cwd. */
static int start_configured(struct agent *a, const char *line)
{
	char buf[512], cwd[1024], id[PROTO_ID_MAX + 1];
	struct proto_spec sp;
	uint8_t spec[PROTO_SPEC_MAX];
	char err[PROTO_TEXT_MAX];
	char *save = NULL;

	snprintf(buf, sizeof(buf), "%s", line);
	memset(&sp, 0, sizeof(sp));
	char *tok = strtok_r(buf, " \t", &save);
	if (!tok || !proto_process_id_valid(tok)) {
		log_error("run = \"%s\": expected \"ID PATH [ARGS...]\"", line);
		return RTCMS_ECONFIG;
	}
	snprintf(id, sizeof(id), "%s", tok);
	while ((tok = strtok_r(NULL, " \t", &save)) && sp.argc < PROTO_SPEC_ARGS_MAX)
		sp.argv[sp.argc++] = tok;
	if (sp.argc == 0) {
		log_error("run = \"%s\": no program path", line);
		return RTCMS_ECONFIG;
	}
	sp.cwd = getcwd(cwd, sizeof(cwd)) ? cwd : "";
	int n = proto_spec_encode(&sp, spec, sizeof(spec));
	if (n < 0) {
		log_error("run = \"%s\": %s", line, rtcms_strerror(n));
		return n;
	}
	struct aproc *p;
	struct launch_req r = { .id = id, .incarnation = 1, .spec = spec, .spec_len = (uint32_t)n };
	int rc = launch_start(a, &r, &p, err, sizeof(err));
	if (rc) {
		log_prog(LOG_ERROR, id, 1, 0, "cannot start %s: %s", id, err);
		return rc;
	}
	log_prog(LOG_INFO, id, proc_incarnation(p), 0, "[program %s] started pid %d from the config",
		 id, (int)p->pid);
	proc_unref(a, p);
	return 0;
}

void launch_configured(struct agent *a)
{
	for (size_t i = 0; i < a->cfg.programs.count; i++)
		start_configured(a, a->cfg.programs.items[i]);
}
