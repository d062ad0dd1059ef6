/* fence.c - manager leases and node fences (see fence.h). */
#include "fence.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rtcms_error.h"

struct mgr {
	char name[PROTO_ID_MAX + 1];
	uint64_t expires;              /* monotonic ms; 0 = free slot */
	uint64_t applied_gen;
	uint16_t alive_count;
	uint64_t alive[PROTO_NODES_MAX];
};

struct fence {
	uint64_t node;                 /* 0 = free slot */
	uint64_t gen;
	uint32_t hold_ms;
	uint64_t effective_at;         /* monotonic ms; 0 = still PENDING */
};

struct fence_table {
	pthread_mutex_t mu;
	uint32_t lease_max_ms;
	uint64_t gen;
	struct mgr mgrs[PROTO_MANAGERS_MAX];
	struct fence fences[PROTO_NODES_MAX];
};

struct fence_table *fence_table_new(uint32_t lease_max_ms, uint64_t now)
{
	struct fence_table *t = calloc(1, sizeof(*t));
	if (!t)
		return NULL;
	pthread_mutex_init(&t->mu, NULL);
	t->lease_max_ms = lease_max_ms ? lease_max_ms : FENCE_LEASE_MAX_DEFAULT_MS;
	(void)now;
	return t;
}

void fence_table_free(struct fence_table *t)
{
	if (!t)
		return;
	pthread_mutex_destroy(&t->mu);
	free(t);
}

static struct fence *fence_find(struct fence_table *t, uint64_t node)
{
	for (size_t i = 0; i < PROTO_NODES_MAX; i++)
		if (t->fences[i].node == node)
			return &t->fences[i];
	return NULL;
}

static struct fence *fence_slot(struct fence_table *t, uint64_t node)
{
	struct fence *f = fence_find(t, node);
	return f ? f : fence_find(t, 0);
}

void fence_table_load(struct fence_table *t, uint64_t node, uint64_t gen,
		      uint32_t hold_ms)
{
	pthread_mutex_lock(&t->mu);
	struct fence *f = node ? fence_slot(t, node) : NULL;
	if (f) {
		f->node = node;
		f->gen = gen;
		f->hold_ms = hold_ms;
		f->effective_at = 0;
	}
	if (gen > t->gen)
		t->gen = gen;
	pthread_mutex_unlock(&t->mu);
}

void fence_table_load_manager(struct fence_table *t, const char *name, uint32_t lease_ms,
			      uint64_t now)
{
	pthread_mutex_lock(&t->mu);
	for (size_t i = 0; i < PROTO_MANAGERS_MAX; i++) {
		struct mgr *m = &t->mgrs[i];
		if (m->expires == 0) {
			snprintf(m->name, sizeof(m->name), "%s", name);
			m->expires = now + (lease_ms < t->lease_max_ms ? lease_ms : t->lease_max_ms);
			m->applied_gen = 0; /* unknown: it must confirm every fence */
			break;
		}
	}
	pthread_mutex_unlock(&t->mu);
}

bool fence_table_knows(struct fence_table *t, const char *name)
{
	bool known = false;
	pthread_mutex_lock(&t->mu);
	for (size_t i = 0; i < PROTO_MANAGERS_MAX && !known; i++)
		known = t->mgrs[i].expires && strcmp(t->mgrs[i].name, name) == 0;
	pthread_mutex_unlock(&t->mu);
	return known;
}

void fence_table_set_gen(struct fence_table *t, uint64_t gen)
{
	pthread_mutex_lock(&t->mu);
	if (gen > t->gen)
		t->gen = gen;
	pthread_mutex_unlock(&t->mu);
}

/* How long until every manager holding a lease at now has applied f (or
 * its lease ended); managers known from before a restart count as holding
 * the longest lease they were granted. */
static uint64_t pending_wait(const struct fence_table *t, const struct fence *f,
			     uint64_t now)
{
	uint64_t wait = 0;
	for (size_t i = 0; i < PROTO_MANAGERS_MAX; i++) {
		const struct mgr *m = &t->mgrs[i];
		if (m->expires > now && m->applied_gen < f->gen && m->expires - now > wait)
			wait = m->expires - now;
	}
	return wait;
}

/* The state of f at now (and the ms until the next one); PENDING becomes
 * EFFECTIVE here, the first time it is looked at with nothing to wait for. */
static uint8_t fence_state(struct fence_table *t, struct fence *f, uint64_t now,
			   uint32_t *wait_ms)
{
	uint64_t wait = 0;
	uint8_t st;
	if (!f->effective_at) {
		wait = pending_wait(t, f, now);
		if (wait == 0)
			f->effective_at = now;
	}
	if (!f->effective_at) {
		st = PROTO_FENCE_PENDING;
	} else if (now < f->effective_at + f->hold_ms) {
		st = PROTO_FENCE_EFFECTIVE;
		wait = f->effective_at + f->hold_ms - now;
	} else {
		st = PROTO_FENCE_COMPLETE;
	}
	if (wait_ms)
		*wait_ms = wait > UINT32_MAX ? UINT32_MAX : (uint32_t)wait;
	return st;
}

int fence_table_renew(struct fence_table *t, const struct proto_mlease *req,
		      uint64_t now, struct proto_mlease_ok *out)
{
	if (req->name[0] == '\0' || req->alive_count > PROTO_NODES_MAX)
		return RTCMS_EINVAL;
	pthread_mutex_lock(&t->mu);
	struct mgr *m = NULL, *free_slot = NULL;
	for (size_t i = 0; i < PROTO_MANAGERS_MAX; i++) {
		struct mgr *x = &t->mgrs[i];
		if (x->expires && strcmp(x->name, req->name) == 0)
			m = x;
		else if (!free_slot && x->expires <= now)
			free_slot = x;
	}
	if (!m && !free_slot) {
		pthread_mutex_unlock(&t->mu);
		return RTCMS_ENOSPC;
	}
	if (!m) {
		m = free_slot;
		memset(m, 0, sizeof(*m));
		snprintf(m->name, sizeof(m->name), "%s", req->name);
	}
	uint32_t lease = req->lease_ms && req->lease_ms < t->lease_max_ms ? req->lease_ms
									  : t->lease_max_ms;
	m->expires = now + lease;
	if (req->fence_gen > m->applied_gen && req->fence_gen <= t->gen)
		m->applied_gen = req->fence_gen;
	m->alive_count = req->alive_count;
	memcpy(m->alive, req->alive, req->alive_count * sizeof(req->alive[0]));

	memset(out, 0, sizeof(*out));
	out->lease_ms = lease;
	out->fence_gen = t->gen;
	for (size_t i = 0; i < PROTO_NODES_MAX; i++) {
		struct fence *f = &t->fences[i];
		if (!f->node)
			continue;
		struct proto_fence_entry *e = &out->fences[out->fence_count++];
		e->node = f->node;
		e->gen = f->gen;
		e->state = fence_state(t, f, now, NULL);
	}
	for (size_t i = 0; i < PROTO_MANAGERS_MAX; i++)
		if (t->mgrs[i].expires > now)
			snprintf(out->managers[out->manager_count++], PROTO_ID_MAX + 1, "%s",
				 t->mgrs[i].name);
	pthread_mutex_unlock(&t->mu);
	return 0;
}

int fence_table_fence(struct fence_table *t, const struct proto_fence *req,
		      uint64_t now, struct proto_fence_ok *out, uint64_t *created,
		      char *why, size_t whylen)
{
	*created = 0;
	if (req->node == 0 || req->by[0] == '\0')
		return RTCMS_EINVAL;
	pthread_mutex_lock(&t->mu);
	struct fence *f = fence_find(t, req->node);
	if (!f) {
		/* one manager's view proves nothing while another still hears
		 * the node (and answers it, renewing its lease) */
		for (size_t i = 0; i < PROTO_MANAGERS_MAX; i++) {
			const struct mgr *m = &t->mgrs[i];
			if (m->expires <= now || strcmp(m->name, req->by) == 0)
				continue;
			for (uint16_t k = 0; k < m->alive_count; k++)
				if (m->alive[k] == req->node) {
					snprintf(why, whylen, "manager %s still hears node %016"
						 PRIx64, m->name, req->node);
					pthread_mutex_unlock(&t->mu);
					return RTCMS_EBUSY;
				}
		}
		f = fence_find(t, 0);
		if (!f) {
			snprintf(why, whylen, "%d nodes are fenced already", PROTO_NODES_MAX);
			pthread_mutex_unlock(&t->mu);
			return RTCMS_ENOSPC;
		}
		f->node = req->node;
		f->gen = ++t->gen;
		f->hold_ms = req->hold_ms;
		f->effective_at = 0;
		*created = f->gen;
		/* the fencer stopped answering the node before it asked */
		for (size_t i = 0; i < PROTO_MANAGERS_MAX; i++) {
			struct mgr *m = &t->mgrs[i];
			if (m->expires > now && strcmp(m->name, req->by) == 0 &&
			    m->applied_gen == f->gen - 1)
				m->applied_gen = f->gen;
		}
	}
	memset(out, 0, sizeof(*out));
	out->node = f->node;
	out->gen = f->gen;
	out->state = fence_state(t, f, now, &out->wait_ms);
	pthread_mutex_unlock(&t->mu);
	return 0;
}

void fence_table_drop(struct fence_table *t, uint64_t node, uint64_t gen)
{
	pthread_mutex_lock(&t->mu);
	struct fence *f = fence_find(t, node);
	if (f && f->gen == gen)
		memset(f, 0, sizeof(*f));
	pthread_mutex_unlock(&t->mu);
}

size_t fence_table_expire(struct fence_table *t, uint64_t now, uint64_t *lifted,
			  size_t max)
{
	size_t n = 0;
	pthread_mutex_lock(&t->mu);
	for (size_t i = 0; i < PROTO_NODES_MAX && n < max; i++) {
		struct fence *f = &t->fences[i];
		if (!f->node)
			continue;
		fence_state(t, f, now, NULL);
		if (f->effective_at && now >= f->effective_at + f->hold_ms + FENCE_LINGER_MS) {
			lifted[n++] = f->node;
			memset(f, 0, sizeof(*f));
		}
	}
	pthread_mutex_unlock(&t->mu);
	return n;
}
