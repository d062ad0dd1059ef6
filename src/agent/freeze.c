/*
 * freeze.c - the source side of a migration (freeze.h).
 */
#include "freeze.h"

#include <inttypes.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>

#include "area/area.h"
#include "capture.h"
#include "log/log.h"
#include "proc.h"
#include "rtcms_error.h"

/* Wait for the program to commit a checkpoint after before and stop
 * itself (FREEZE in its area's control word), for wait ms; then stop it
 * where it is. 0 and *how, or RTCMS_ESTATE if it exited meanwhile. */
static int freeze_wait(struct agent *a, struct aproc *p, unsigned wait, const char **how)
{
	struct area_header *h = p->area;
	uint64_t start = agent_mono_ms();
	uint64_t before = area_committed_sequence(p->area);
	int rc = 0;

	atomic_store_explicit(&h->frozen, 0, memory_order_relaxed);
	atomic_fetch_or_explicit(&h->control, AREA_CTL_FREEZE, memory_order_release);
	*how = "at its own checkpoint";
	for (;;) {
		uint64_t f = atomic_load_explicit(&h->frozen, memory_order_acquire);
		if (f > before)
			break;
		uv_mutex_lock(&a->lock);
		bool gone = p->state == AP_EXITED;
		uv_mutex_unlock(&a->lock);
		if (gone) {
			rc = RTCMS_ESTATE;
			break;
		}
		if (agent_mono_ms() - start >= wait) {
			/* the program did not reach a consistency point in time:
			 * stop it where it is; its last checkpoint is the final one */
			proc_signal(a, p, SIGSTOP);
			*how = "by SIGSTOP after the timeout (last checkpoint is final)";
			break;
		}
		agent_sleep_ms(1);
	}
	atomic_fetch_and_explicit(&h->control, ~AREA_CTL_FREEZE, memory_order_release);
	return rc;
}

int freeze_program(struct agent *a, const char *who, const struct proto_proc_ref *r,
		   struct proto_ckpt_meta *meta, struct aproc **held, char *why, size_t len)
{
	struct image *img = NULL;
	const char *how;
	int rc;

	*held = NULL;
	struct aproc *p = proc_find_state(a, r->process, AP_RUNNING);
	if (!p) {
		snprintf(why, len, "no running program %s on this node", r->process);
		return RTCMS_ENOENT;
	}
	if (r->incarnation && r->incarnation != p->incarnation) {
		snprintf(why, len, "%s runs here as incarnation %" PRIu64 ", not %" PRIu64,
			 r->process, p->incarnation, r->incarnation);
		rc = RTCMS_EFENCED;
		goto out_unref;
	}
	uint64_t start = agent_mono_ms();
	rc = freeze_wait(a, p, r->arg ? r->arg : (unsigned)a->cfg.freeze_timeout_ms, &how);
	if (rc) {
		snprintf(why, len, "%s exited", r->process);
		goto out_unref;
	}
	uv_mutex_lock(&a->lock);
	p->state = AP_FROZEN;
	p->frozen_ms = agent_mono_ms();
	uv_mutex_unlock(&a->lock);
	rc = capture_take(a, p, &img);
	if (rc == 0 && !img)
		rc = RTCMS_ENOENT; /* it never committed a checkpoint */
	if (rc) {
		uv_mutex_lock(&a->lock);
		p->state = AP_RUNNING;
		uv_mutex_unlock(&a->lock);
		proc_signal(a, p, SIGCONT);
		snprintf(why, len, "%s: no checkpoint to move: %s", r->process, rtcms_strerror(rc));
		goto out_unref;
	}
	log_prog(LOG_INFO, p->id, proc_incarnation(p), img->sequence,
		 "[%s -> agent] FREEZE %s: frozen %s, final checkpoint %" PRIu64
		 " (%zu bytes) after %" PRIu64 " ms", who, p->id, how, img->sequence,
		 img->size, agent_mono_ms() - start);
	/* the full image: a migration moves it whole (and its chunk hashes
	 * are then ready for the PULL that follows) */
	struct encoding *e = NULL;
	image_encoding(img, 0, &e); /* without: FROZEN without chunk hashes */
	image_meta(a, p, img, e, meta);
	image_encoding_done(img, e);
	image_unref(a, img);
	*held = p;
	return 0;
out_unref:
	proc_unref(a, p);
	return rc;
}

/* The frozen instance r names, with a reference; else NULL and the
 * reason. */
static struct aproc *frozen(struct agent *a, const struct proto_proc_ref *r, int *rc,
			    char *why, size_t len)
{
	struct aproc *p = proc_find_state(a, r->process, AP_FROZEN);
	if (!p) {
		snprintf(why, len, "no frozen program %s on this node", r->process);
		*rc = RTCMS_ENOENT;
		return NULL;
	}
	if (r->incarnation && r->incarnation != p->incarnation) {
		snprintf(why, len, "%s is frozen here as incarnation %" PRIu64 ", not %" PRIu64,
			 r->process, p->incarnation, r->incarnation);
		proc_unref(a, p);
		*rc = RTCMS_EFENCED;
		return NULL;
	}
	return p;
}

int freeze_thaw(struct agent *a, const char *who, const struct proto_proc_ref *r,
		char *why, size_t len)
{
	int rc;
	struct aproc *p = frozen(a, r, &rc, why, len);
	if (!p)
		return rc;
	uv_mutex_lock(&a->lock);
	p->state = AP_RUNNING;
	uv_mutex_unlock(&a->lock);
	proc_signal(a, p, SIGCONT);
	log_prog(LOG_INFO, p->id, proc_incarnation(p), 0,
		 "[%s -> agent] THAW %s: the move failed, pid %d goes on", who, p->id,
		 (int)p->pid);
	proc_unref(a, p);
	return 0;
}

int freeze_stop(struct agent *a, const char *who, const struct proto_proc_ref *r,
		char *why, size_t len)
{
	int rc;
	struct aproc *p = frozen(a, r, &rc, why, len);
	if (!p)
		return rc;
	proc_signal(a, p, SIGKILL);
	log_prog(LOG_INFO, p->id, proc_incarnation(p), 0,
		 "[%s -> agent] STOP %s: moved away, old instance pid %d killed", who,
		 p->id, (int)p->pid);
	proc_unref(a, p);
	return 0;
}
