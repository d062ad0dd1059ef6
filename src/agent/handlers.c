/*
 * handlers.c - rtcms-agent's interfaces, one request at a time on a
 * connection thread: info (INFO), checkpoint service (PULL), launch (RUN),
 * restore (RESTORE + ADOPT) and migration (FREEZE, THAW, STOP).
 */
#include "agent.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "area/area.h"
#include "area/delta.h"
#include "area/image.h"
#include "daemon/rpc_server.h"
#include "log/log.h"
#include "rtcms_error.h"

static void sleep_ms(unsigned ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };
	nanosleep(&ts, NULL);
}


/* The metadata of img as sent in encoding e (NULL: no data follows). */
static void fill_meta(const struct agent *a, const struct aproc *p,
		      const struct image *img, const struct encoding *e,
		      struct proto_ckpt_meta *m)
{
	memset(m, 0, sizeof(*m));
	snprintf(m->process, sizeof(m->process), "%s", p->id);
	m->incarnation = p->incarnation;
	m->sequence = img->sequence;
	m->node = a->node;
	m->size = e ? e->size : img->size;
	m->created_ms = img->created_ms;
	m->chunk_count = e ? e->chunk_count
			   : (uint32_t)((img->size + PROTO_MAX_CHUNK - 1) / PROTO_MAX_CHUNK);
	if (e)
		memcpy(m->hash, e->hash, PROTO_HASH_SIZE);
	m->base = e ? e->base : 0;
	m->full_size = img->size;
	memcpy(m->state_hash, img->state_hash, PROTO_HASH_SIZE);
	m->spec = p->spec;
	m->spec_len = p->spec_len;
}

/* Find the instance of id in the given state (FROZEN) or, with
 * state < 0, any live one. Returns it with a reference, or NULL. */
static struct aproc *find(struct agent *a, const char *id, int state)
{
	uv_mutex_lock(&a->lock);
	struct aproc *p = a->procs;
	for (; p; p = p->next)
		if (strcmp(p->id, id) == 0 && p->state != AP_EXITED &&
		    (state < 0 ? p->state != AP_FROZEN : (int)p->state == state))
			break;
	if (p)
		p->refs++;
	uv_mutex_unlock(&a->lock);
	return p;
}

static int handle_info(struct agent *a, struct net_client *c,
		       const struct proto_header *hdr)
{
	union proto_msg m;
	uint64_t total = a->mem_total, avail = 0;

	memset(&m, 0, sizeof(m));
	sysinfo_meminfo_read(&total, &avail);
	if (a->cfg.report_mem_available)
		avail = a->cfg.report_mem_available;
	uv_mutex_lock(&a->lock);
	uint16_t load = sysinfo_window_load(&a->cpu);
	int running = agent_running_count(a);
	uint64_t used = 0;
	for (struct aproc *p = a->procs; p; p = p->next)
		if (p->state != AP_EXITED)
			used += p->area_len;
	uv_mutex_unlock(&a->lock);
	if (a->cfg.report_cpu_permille)
		load = (uint16_t)(a->cfg.report_cpu_permille - 1);
	/* the agent's cgroup (its programs are in it) may allow less */
	uint64_t cg_mem, cg_pids;
	sysinfo_cgroup_room(&cg_mem, &cg_pids);
	if (cg_mem < avail && !a->cfg.report_mem_available)
		avail = cg_mem;
	m.info.node = a->node;
	m.info.mem_total = total;
	m.info.mem_available = avail;
	m.info.cpu_load_permille = load > 1000 ? 1000 : load;
	m.info.quota_max = (uint32_t)a->cfg.quota;
	m.info.quota_free = running >= (int)a->cfg.quota ? 0 : (uint32_t)(a->cfg.quota - (uint64_t)running);
	if (cg_pids < m.info.quota_free)
		m.info.quota_free = (uint32_t)cg_pids; /* a program needs a pid at least */
	m.info.area_capacity = a->cfg.area_capacity;
	m.info.area_used = used;
	m.info.processes = (uint32_t)running;
	return net_client_reply(c, PROTO_INFO_REPLY, 0, hdr->request, &m) ? -1 : 0;
}

static int handle_pull(struct agent *a, struct net_client *c, const char *peer,
		       const struct proto_header *hdr, const struct proto_get *g)
{
	union proto_msg m;
	struct image *img = NULL;

	struct aproc *p = find(a, g->process, -1);
	if (!p)
		p = find(a, g->process, AP_FROZEN);
	if (!p)
		return rpc_reply_error(c, hdr, RTCMS_ENOENT, "no program %s on this node", g->process);
	uv_mutex_lock(&a->lock);
	img = p->img;
	if (img && (g->sequence == 0 || img->sequence == g->sequence))
		img->refs++;
	else
		img = NULL;
	uint64_t have = p->img ? p->img->sequence : 0;
	uv_mutex_unlock(&a->lock);
	if (!img && (g->sequence == 0 || g->sequence > have)) {
		proc_capture(a, p, &img);
		if (img && g->sequence && img->sequence != g->sequence) {
			have = img->sequence;
			image_unref(a, img);
			img = NULL;
		}
	}
	if (!img) {
		proc_unref(a, p);
		return rpc_reply_error(c, hdr, RTCMS_ENOENT,
				 "%s: checkpoint %" PRIu64 " is not held here (latest %" PRIu64 ")",
				 g->process, g->sequence, have);
	}
	/* the full image, or the changes since the base the manager holds;
	 * held until it is sent (another PULL's base gets another delta) */
	struct encoding *e = g->meta_only ? NULL : image_encoding(img, g->base);
	if (!g->meta_only && !e) {
		image_unref(a, img);
		proc_unref(a, p);
		return rpc_reply_error(c, hdr, RTCMS_ENOMEM, "no memory to encode %s", g->process);
	}
	fill_meta(a, p, img, e, &m.meta);
	int rc = net_client_reply(c, PROTO_GET_META, g->meta_only ? 0 : PROTO_F_MORE,
				  hdr->request, &m);
	if (g->meta_only) {
		image_unref(a, img);
		proc_unref(a, p);
		return rc ? -1 : 0;
	}
	const uint8_t *bytes = e->bytes && e->base ? e->bytes : img->data;
	uint32_t n = 0;
	for (size_t off = 0; rc == 0 && off < e->size; off += PROTO_MAX_CHUNK, n++) {
		memset(&m, 0, sizeof(m));
		m.chunk.offset = off;
		m.chunk.len = e->size - off < PROTO_MAX_CHUNK ? (uint32_t)(e->size - off)
							      : PROTO_MAX_CHUNK;
		m.chunk.data = bytes + off;
		memcpy(m.chunk.hash, e->chunk_hash[n], PROTO_HASH_SIZE);
		rc = net_client_reply(c, PROTO_CHUNK, PROTO_F_MORE, hdr->request, &m);
	}
	if (rc == 0) {
		memset(&m, 0, sizeof(m));
		m.get_end.chunk_count = n;
		rc = net_client_reply(c, PROTO_GET_END, 0, hdr->request, &m);
	}
	log_debug("[%s] PULL %s seq %" PRIu64 " %s %" PRIu64 " (%zu bytes): %s", peer, p->id,
		  img->sequence, e->base ? "delta against" : "full, asked base", g->base, e->size,
		  rc ? rtcms_strerror(rc) : "sent");
	if (rc == 0) {
		uv_mutex_lock(&a->lock);
		img->pulled = 1;
		uv_mutex_unlock(&a->lock);
	}
	image_encoding_done(img, e);
	image_unref(a, img);
	proc_unref(a, p);
	return rc ? -1 : 0;
}

/* The highest incarnation of id this agent has run or adopted (a table of
 * the last 256 process ids, and the programs it holds). */
static uint64_t seen_incarnation(struct agent *a, const char *id)
{
	uint64_t max = 0;
	uv_mutex_lock(&a->lock);
	for (size_t i = 0; i < a->seen_count; i++)
		if (strcmp(a->seen[i].id, id) == 0)
			max = a->seen[i].inc;
	for (struct aproc *p = a->procs; p; p = p->next)
		if (strcmp(p->id, id) == 0 && p->state != AP_RESTORING && p->incarnation > max)
			max = p->incarnation;
	uv_mutex_unlock(&a->lock);
	return max;
}

static int check_room(struct agent *a, const char *id, char *why, size_t len)
{
	uv_mutex_lock(&a->lock);
	int running = agent_running_count(a);
	int dup = 0;
	for (struct aproc *p = a->procs; p; p = p->next)
		if (strcmp(p->id, id) == 0 && p->state != AP_EXITED &&
		    p->state != AP_FROZEN)
			dup = 1;
	uv_mutex_unlock(&a->lock);
	if (dup) {
		snprintf(why, len, "%s already runs on this node", id);
		return RTCMS_EEXIST;
	}
	if (running >= (int)a->cfg.quota) {
		snprintf(why, len, "quota full: %d of %d programs run here", running,
			 (int)a->cfg.quota);
		return RTCMS_ENOSPC;
	}
	return 0;
}

static int handle_run(struct agent *a, struct net_client *c, const char *peer,
		      const struct proto_header *hdr, const struct proto_run *r)
{
	char why[PROTO_TEXT_MAX + 1];
	struct aproc *p;
	union proto_msg m;

	int rc = check_room(a, r->process, why, sizeof(why));
	if (rc)
		return rpc_reply_error(c, hdr, rc, "%s", why);
	rc = proc_launch(a, r->process, 1, r->spec, r->spec_len, NULL, 0, &p, why,
			 sizeof(why));
	if (rc) {
		log_warn("[%s] RUN %s refused: %s", peer, r->process, why);
		return rpc_reply_error(c, hdr, rc, "%s", why);
	}
	log_info("[%s -> agent] RUN %s: started pid %d, incarnation 1", peer,
		 r->process, (int)p->pid);
	memset(&m, 0, sizeof(m));
	snprintf(m.run_ok.process, sizeof(m.run_ok.process), "%s", p->id);
	m.run_ok.node = a->node;
	m.run_ok.incarnation = 1;
	m.run_ok.pid = (uint32_t)p->pid;
	proc_unref(a, p);
	return net_client_reply(c, PROTO_RUN_OK, 0, hdr->request, &m) ? -1 : 0;
}

static int handle_freeze(struct agent *a, struct net_client *c, const char *peer,
			 const struct proto_header *hdr, const struct proto_proc_ref *r)
{
	union proto_msg m;
	struct image *img = NULL;
	struct aproc *p = find(a, r->process, AP_RUNNING);
	if (!p)
		return rpc_reply_error(c, hdr, RTCMS_ENOENT, "no running program %s on this node",
				 r->process);
	if (r->incarnation && r->incarnation != p->incarnation) {
		uint64_t have = p->incarnation;
		proc_unref(a, p);
		return rpc_reply_error(c, hdr, RTCMS_EFENCED, "%s runs here as incarnation %" PRIu64
				 ", not %" PRIu64, r->process, have, r->incarnation);
	}
	struct area_header *h = p->area;
	uint64_t start = agent_mono_ms();
	uint64_t before = area_committed_sequence(p->area);
	unsigned wait = r->arg ? r->arg : (unsigned)a->cfg.freeze_timeout_ms;
	atomic_store_explicit(&h->frozen, 0, memory_order_relaxed);
	atomic_fetch_or_explicit(&h->control, AREA_CTL_FREEZE, memory_order_release);
	const char *how = "at its own checkpoint";
	for (;;) {
		uint64_t f = atomic_load_explicit(&h->frozen, memory_order_acquire);
		if (f > before)
			break;
		uv_mutex_lock(&a->lock);
		int gone = p->state == AP_EXITED;
		uv_mutex_unlock(&a->lock);
		if (gone) {
			proc_unref(a, p);
			return rpc_reply_error(c, hdr, RTCMS_ESTATE, "%s exited", r->process);
		}
		if (agent_mono_ms() - start >= wait) {
			/* the program did not reach a consistency point in time:
			 * stop it where it is; its last checkpoint is the final one */
			kill(p->pid, SIGSTOP);
			how = "by SIGSTOP after the timeout (last checkpoint is final)";
			break;
		}
		sleep_ms(1);
	}
	atomic_fetch_and_explicit(&h->control, ~AREA_CTL_FREEZE, memory_order_release);
	uv_mutex_lock(&a->lock);
	p->state = AP_FROZEN;
	p->frozen_ms = agent_mono_ms();
	uv_mutex_unlock(&a->lock);
	int rc = proc_capture(a, p, &img);
	if (rc) {
		uv_mutex_lock(&a->lock);
		p->state = AP_RUNNING;
		uv_mutex_unlock(&a->lock);
		kill(p->pid, SIGCONT);
		proc_unref(a, p);
		return rpc_reply_error(c, hdr, rc, "%s: no checkpoint to move: %s", r->process,
				 rtcms_strerror(rc));
	}
	log_info("[%s -> agent] FREEZE %s: frozen %s, final checkpoint %" PRIu64
		 " (%zu bytes) after %" PRIu64 " ms", peer, p->id, how, img->sequence,
		 img->size, agent_mono_ms() - start);
	/* the full image: a migration moves it whole (and its chunk hashes
	 * are then ready for the PULL that follows) */
	struct encoding *e = image_encoding(img, 0);
	fill_meta(a, p, img, e, &m.meta);
	image_encoding_done(img, e);
	rc = net_client_reply(c, PROTO_FROZEN, 0, hdr->request, &m);
	image_unref(a, img);
	proc_unref(a, p);
	return rc ? -1 : 0;
}

static int handle_thaw_stop(struct agent *a, struct net_client *c, const char *peer,
			    const struct proto_header *hdr, const struct proto_proc_ref *r)
{
	union proto_msg m;
	struct aproc *p = find(a, r->process, AP_FROZEN);
	if (!p)
		return rpc_reply_error(c, hdr, RTCMS_ENOENT, "no frozen program %s on this node",
				 r->process);
	if (r->incarnation && r->incarnation != p->incarnation) {
		uint64_t have = p->incarnation;
		proc_unref(a, p);
		return rpc_reply_error(c, hdr, RTCMS_EFENCED, "%s is frozen here as incarnation %"
				 PRIu64 ", not %" PRIu64, r->process, have, r->incarnation);
	}
	if (hdr->type == PROTO_THAW) {
		uv_mutex_lock(&a->lock);
		p->state = AP_RUNNING;
		uv_mutex_unlock(&a->lock);
		kill(p->pid, SIGCONT);
		log_info("[%s -> agent] THAW %s: the move failed, pid %d goes on",
			 peer, p->id, (int)p->pid);
	} else {
		kill(p->pid, SIGKILL);
		log_info("[%s -> agent] STOP %s: moved away, old instance pid %d killed",
			 peer, p->id, (int)p->pid);
	}
	proc_unref(a, p);
	memset(&m, 0, sizeof(m));
	return net_client_reply(c, PROTO_OK, 0, hdr->request, &m) ? -1 : 0;
}

/* RESTORE: meta, CHUNKs, PUT_END; then start, wait for resume, answer,
 * and wait for ADOPT (the manager's commit) on the same connection. */
static int handle_restore(struct agent *a, struct net_client *c, const char *peer,
			  const struct proto_header *hdr, const struct proto_ckpt_meta *mt)
{
	struct proto_ckpt_meta meta = *mt;
	uint8_t spec[PROTO_SPEC_MAX];
	struct proto_image_hash ih;
	struct proto_header h2;
	union proto_msg m;
	char why[PROTO_TEXT_MAX + 1];
	uint8_t *img = NULL;
	struct aproc *p = NULL;
	int rc, keep = 0;
	uint64_t start = agent_mono_ms();

	memcpy(spec, meta.spec, meta.spec_len);
	meta.spec = spec;
	uint64_t max = image_size(AREA_MAX_REGIONS, a->cfg.area_capacity > (1ull << 30)
				  ? a->cfg.area_capacity : (1ull << 30));
	rc = check_room(a, meta.process, why, sizeof(why));
	uint64_t seen = seen_incarnation(a, meta.process);
	if (rc == 0 && meta.incarnation < seen) {
		/* a checkpoint older than an instance this node already ran */
		rc = RTCMS_EFENCED;
		snprintf(why, sizeof(why), "%s incarnation %" PRIu64 " already ran here: its "
			 "checkpoint of incarnation %" PRIu64 " is stale", meta.process, seen,
			 meta.incarnation);
	}
	if (rc == 0 && meta.size > max) {
		rc = RTCMS_ETOOBIG;
		snprintf(why, sizeof(why), "checkpoint of %" PRIu64 " bytes is over this "
			 "node's limit of %" PRIu64, meta.size, max);
	}
	if (rc == 0 && !(img = malloc(meta.size ? meta.size : 1))) {
		rc = RTCMS_ENOMEM;
		snprintf(why, sizeof(why), "no memory for %" PRIu64 " bytes", meta.size);
	}
	/* read the whole stream even when refusing, then answer */
	proto_image_hash_init(&ih, meta.size);
	uint32_t n = 0;
	for (;;) {
		int r = net_client_recv(c, &h2, &m);
		if (r) {
			free(img);
			return -1;
		}
		if (h2.type == PROTO_PUT_END)
			break;
		if (h2.type != PROTO_CHUNK) {
			free(img);
			rpc_reply_error(c, hdr, RTCMS_EPROTO, "expected CHUNK or PUT_END");
			return -1;
		}
		if (rc)
			continue;
		uint8_t hh[PROTO_HASH_SIZE];
		proto_chunk_hash(m.chunk.data, m.chunk.len, hh);
		if (sodium_memcmp(hh, m.chunk.hash, PROTO_HASH_SIZE) != 0) {
			rc = RTCMS_ECORRUPT;
			snprintf(why, sizeof(why), "chunk at %" PRIu64 " does not match its hash",
				 m.chunk.offset);
			continue;
		}
		if (proto_image_hash_update(&ih, m.chunk.offset, m.chunk.len, hh) != 0) {
			rc = RTCMS_EPROTO;
			snprintf(why, sizeof(why), "chunk at %" PRIu64 " out of order or bounds",
				 m.chunk.offset);
			continue;
		}
		memcpy(img + m.chunk.offset, m.chunk.data, m.chunk.len);
		n++;
	}
	if (rc == 0) {
		uint8_t fin[PROTO_HASH_SIZE];
		if (n != meta.chunk_count || m.put_end.chunk_count != n ||
		    proto_image_hash_final(&ih, fin) != 0 ||
		    sodium_memcmp(fin, meta.hash, PROTO_HASH_SIZE) != 0) {
			rc = RTCMS_ECORRUPT;
			snprintf(why, sizeof(why), "the image does not match its hash");
		}
	}
	if (rc == 0 && meta.base != 0) {
		rc = RTCMS_EPROTO;
		snprintf(why, sizeof(why), "a restore needs a full image, not a delta");
	}
	if (rc == 0 && !sodium_is_zero(meta.state_hash, PROTO_HASH_SIZE)) {
		/* end to end: the state the source agent hashed, however the
		 * image travelled (whole, or assembled from deltas by the store) */
		uint8_t sh[PROTO_HASH_SIZE];
		if (state_hash(img, meta.size, sh) != 0 ||
		    sodium_memcmp(sh, meta.state_hash, PROTO_HASH_SIZE) != 0) {
			rc = RTCMS_ECORRUPT;
			snprintf(why, sizeof(why), "the image does not match its state hash");
		}
	}
	if (rc == 0)
		rc = proc_launch(a, meta.process, meta.incarnation, meta.spec,
				 meta.spec_len, img, meta.size, &p, why, sizeof(why));
	free(img);
	img = NULL;
	if (rc) {
		log_warn("[%s -> agent] RESTORE %s seq %" PRIu64 " refused: %s", peer,
			 meta.process, meta.sequence, why);
		return rpc_reply_error(c, hdr, rc, "%s", why);
	}
	log_info("[%s -> agent] RESTORE %s seq %" PRIu64 ": %" PRIu64 " bytes verified, "
		 "started pid %d in restore mode", peer, meta.process, meta.sequence,
		 meta.size, (int)p->pid);

	/* wait until the program has refilled its regions and goes on */
	struct area_header *ah = p->area;
	for (;;) {
		if (atomic_load_explicit(&ah->resumed, memory_order_acquire) == meta.sequence)
			break;
		uv_mutex_lock(&a->lock);
		int gone = p->state == AP_EXITED;
		uv_mutex_unlock(&a->lock);
		if (gone) {
			rc = RTCMS_ESTATE;
			snprintf(why, sizeof(why), "%s exited during its restore", meta.process);
			break;
		}
		if (agent_mono_ms() - start > a->cfg.restore_timeout_ms) {
			rc = RTCMS_ETIMEDOUT;
			snprintf(why, sizeof(why), "%s did not resume within %" PRIu64 " ms",
				 meta.process, a->cfg.restore_timeout_ms);
			break;
		}
		sleep_ms(1);
	}
	if (rc) {
		log_warn("[agent] RESTORE %s failed: %s", meta.process, why);
		proc_kill(p, SIGKILL);
		proc_unref(a, p);
		return rpc_reply_error(c, hdr, rc, "%s", why);
	}
	log_info("[program %s] resumed from checkpoint %" PRIu64 " after %" PRIu64 " ms",
		 meta.process, meta.sequence, agent_mono_ms() - start);
	memset(&m, 0, sizeof(m));
	snprintf(m.restore_ok.process, sizeof(m.restore_ok.process), "%s", meta.process);
	m.restore_ok.incarnation = meta.incarnation;
	m.restore_ok.sequence = meta.sequence;
	m.restore_ok.pid = (uint32_t)p->pid;
	rc = net_client_reply(c, PROTO_RESTORE_OK, 0, hdr->request, &m);

	/* the instance may go on only once the manager committed the move */
	if (rc == 0) {
		net_client_set_timeout(c, (int)a->cfg.adopt_timeout_ms);
		rc = net_client_recv(c, &h2, &m);
		if (rc == 0 && (h2.type != PROTO_ADOPT || strcmp(m.ref.process, meta.process) ||
				m.ref.incarnation <= meta.incarnation))
			rc = RTCMS_EPROTO;
		/* the new incarnation must be newer than any this node ran */
		if (rc == 0 && m.ref.incarnation <= seen_incarnation(a, meta.process)) {
			log_warn("[%s -> agent] ADOPT %s incarnation %" PRIu64 " refused: not "
				 "newer than one that ran here", peer, meta.process,
				 m.ref.incarnation);
			net_client_reply_error(c, h2.request, RTCMS_EFENCED, 0,
					       "incarnation not newer than one that ran here");
			rc = RTCMS_EFENCED;
		}
	}
	if (rc == 0) {
		uv_mutex_lock(&a->lock);
		p->incarnation = m.ref.incarnation;
		p->state = AP_RUNNING;
		agent_seen(a, p->id, p->incarnation);
		memset(p->notified, 0, sizeof(p->notified));
		uv_mutex_unlock(&a->lock);
		keep = 1;
		log_info("[%s -> agent] ADOPT %s: incarnation %" PRIu64 " runs here", peer,
			 meta.process, m.ref.incarnation);
		memset(&m, 0, sizeof(m));
		net_client_reply(c, PROTO_OK, 0, h2.request, &m);
		agent_wake_outbox(a);
	}
	if (!keep) {
		log_warn("[agent] %s: the manager did not confirm the restore (%s); "
			 "stopping the new instance", meta.process, rtcms_strerror(rc));
		proc_kill(p, SIGKILL);
	}
	proc_unref(a, p);
	return keep ? 0 : -1;
}

/* ---- a program frozen too long -------------------------------------
 *
 * A migration freezes its program; the manager then THAWs or STOPs it. If
 * that manager died on the way, nobody will: after freeze_hold the agent
 * asks a manager to decide from the store (RESOLVE): the program was
 * committed elsewhere (STOP), or the move never committed (THAW), or a
 * move is still under way (WAIT: ask again in a second). */

struct resolve_job {
	struct agent *a;
	struct aproc *p;               /* with a reference */
};

static void apply_verdict(struct agent *a, struct aproc *p, uint32_t verdict,
			  const char *who)
{
	uv_mutex_lock(&a->lock);
	if (p->state != AP_FROZEN) {
		uv_mutex_unlock(&a->lock);
		return;
	}
	if (verdict == PROTO_VERDICT_STOP) {
		p->exit_told = ~0u; /* it lives on elsewhere */
		uv_mutex_unlock(&a->lock);
		kill(p->pid, SIGKILL);
		log_warn("[%s -> agent] RESOLVE %s: it runs elsewhere now; frozen instance "
			 "pid %d killed", who, p->id, (int)p->pid);
		return;
	}
	if (verdict == PROTO_VERDICT_THAW) {
		p->state = AP_RUNNING;
		uv_mutex_unlock(&a->lock);
		kill(p->pid, SIGCONT);
		log_warn("[%s -> agent] RESOLVE %s: the move never committed; pid %d goes on",
			 who, p->id, (int)p->pid);
		return;
	}
	/* WAIT, or no manager answered: ask again in a second */
	p->frozen_ms = agent_mono_ms() - a->cfg.freeze_hold_ms + 1000;
	uv_mutex_unlock(&a->lock);
}

static void *resolve_thread(void *arg)
{
	struct resolve_job *j = arg;
	struct agent *a = j->a;
	struct aproc *p = j->p;
	uint32_t verdict = PROTO_VERDICT_WAIT;
	char who[PROTO_ID_MAX + 1] = "agent";

	/* a newer instance of it adopted here (a move to this same node)? */
	uv_mutex_lock(&a->lock);
	for (struct aproc *o = a->procs; o; o = o->next)
		if (o != p && strcmp(o->id, p->id) == 0 && o->state == AP_RUNNING &&
		    o->incarnation > p->incarnation)
			verdict = PROTO_VERDICT_STOP;
	uv_mutex_unlock(&a->lock);
	for (size_t i = 0; i < a->mgr_count && verdict == PROTO_VERDICT_WAIT; i++) {
		struct net_client *c = NULL;
		struct proto_header h;
		union proto_msg q, r;
		memset(&q, 0, sizeof(q));
		snprintf(q.ref.process, sizeof(q.ref.process), "%s", p->id);
		q.ref.incarnation = p->incarnation;
		int rc = net_client_connect(a->mgrs[i].addr, &a->key, PROTO_ROLE_AGENT,
					    a->cfg.name, (int)a->cfg.io_timeout_ms, &c);
		if (rc == 0)
			rc = net_client_call(c, PROTO_RESOLVE, &q, PROTO_RESOLVE_OK, &h, &r);
		if (rc == 0 && r.ref.arg >= PROTO_VERDICT_STOP && r.ref.arg <= PROTO_VERDICT_WAIT) {
			verdict = r.ref.arg;
			snprintf(who, sizeof(who), "%s", net_client_peer(c));
		}
		net_client_free(c);
	}
	apply_verdict(a, p, verdict, who);
	uv_mutex_lock(&a->lock);
	p->resolving = 0;
	uv_mutex_unlock(&a->lock);
	proc_unref(a, p);
	free(j);
	return NULL;
}

/* With agent.lock held (from the loop's timer). */
void agent_resolve_frozen(struct agent *a, struct aproc *p)
{
	struct resolve_job *j = calloc(1, sizeof(*j));
	pthread_attr_t attr;
	pthread_t t;

	if (!j)
		return;
	j->a = a;
	j->p = p;
	p->refs++;
	p->resolving = 1;
	log_warn("[program %s] frozen for %" PRIu64 " ms without THAW or STOP (its "
		 "manager may have died): asking the managers", p->id,
		 agent_mono_ms() - p->frozen_ms);
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	if (pthread_create(&t, &attr, resolve_thread, j) != 0) {
		p->refs--;
		p->resolving = 0;
		free(j);
	}
	pthread_attr_destroy(&attr);
}

/* PROCS from a manager is a question: which programs does this node hold?
 * The answer is the same report the outbox sends. */
static int handle_procs(struct agent *a, struct net_client *c,
			const struct proto_header *hdr)
{
	static __thread struct proto_agent_proc procs[PROTO_PROCS_MAX];
	union proto_msg m;

	proc_report_msg(a, procs, &m.procs);
	return net_client_reply(c, PROTO_PROCS, 0, hdr->request, &m) ? -1 : 0;
}

int agent_handle(void *ctx, struct net_client *c, const char *peer,
		 const struct proto_header *hdr, union proto_msg *msg)
{
	struct agent *a = ctx;
	char who[160];
	snprintf(who, sizeof(who), "%s", net_client_peer(c)[0] ? net_client_peer(c) : peer);

	switch (hdr->type) {
	case PROTO_INFO:
		return handle_info(a, c, hdr);
	case PROTO_PROCS:
		return handle_procs(a, c, hdr);
	case PROTO_PULL:
		return handle_pull(a, c, who, hdr, &msg->get);
	case PROTO_RUN:
		return handle_run(a, c, who, hdr, &msg->run);
	case PROTO_RESTORE:
		return handle_restore(a, c, who, hdr, &msg->meta);
	case PROTO_FREEZE:
		return handle_freeze(a, c, who, hdr, &msg->ref);
	case PROTO_THAW:
	case PROTO_STOP:
		return handle_thaw_stop(a, c, who, hdr, &msg->ref);
	default:
		log_warn("[%s] %s is not an agent request; closing", who,
			 proto_type_name(hdr->type) ? proto_type_name(hdr->type) : "?");
		net_client_reply_error(c, hdr->request, RTCMS_EPROTO, 0,
				       "not a request this agent serves");
		return -1;
	}
}
