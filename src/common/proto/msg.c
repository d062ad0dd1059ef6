/*
 * msg.c - encode and decode the typed payloads of rtcms frames. Pure: no
 * I/O, no logging, no allocation. Field order follows the structs in msg.h;
 * docs/protocol.md has the byte tables.
 */
#include "msg.h"

#include <string.h>

#include "rtcms_error.h"
#include "util/bytes.h"

/* ---- cursors --------------------------------------------------------- */

struct wr {
	uint8_t *p;
	size_t cap;
	size_t len;
	int err;
};

struct rd {
	const uint8_t *p;
	size_t len;
	size_t off;
	int err;
};

static uint8_t *w_take(struct wr *w, size_t n)
{
	if (w->err)
		return NULL;
	if (n > w->cap - w->len) {
		w->err = RTCMS_ETOOBIG;
		return NULL;
	}
	uint8_t *q = w->p + w->len;
	w->len += n;
	return q;
}

static void w_u8(struct wr *w, uint8_t v)
{
	uint8_t *q = w_take(w, 1);
	if (q)
		*q = v;
}

static void w_u16(struct wr *w, uint16_t v)
{
	uint8_t *q = w_take(w, 2);
	if (q)
		put_be16(q, v);
}

static void w_u32(struct wr *w, uint32_t v)
{
	uint8_t *q = w_take(w, 4);
	if (q)
		put_be32(q, v);
}

static void w_u64(struct wr *w, uint64_t v)
{
	uint8_t *q = w_take(w, 8);
	if (q)
		put_be64(q, v);
}

static void w_bytes(struct wr *w, const void *src, size_t n)
{
	uint8_t *q = w_take(w, n);
	if (q && n)
		memcpy(q, src, n);
}

/* Strings: no control characters (< 0x20, 0x7f). */
static int str_ok(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c < 0x20 || c == 0x7f)
			return 0;
	}
	return 1;
}

static void w_str(struct wr *w, const char *s, size_t max)
{
	size_t n = strnlen(s, max + 1);
	if (w->err)
		return;
	if (n > max) {
		w->err = RTCMS_ETOOBIG;
		return;
	}
	if (!str_ok(s, n)) {
		w->err = RTCMS_EINVAL;
		return;
	}
	w_u16(w, (uint16_t)n);
	w_bytes(w, s, n);
}

static void w_process(struct wr *w, const char *s, int allow_empty)
{
	if (!w->err && !(allow_empty && s[0] == '\0') &&
	    !proto_process_id_valid(s)) {
		w->err = RTCMS_EINVAL;
		return;
	}
	w_str(w, s, PROTO_ID_MAX);
}

static const uint8_t *r_take(struct rd *r, size_t n)
{
	if (r->err)
		return NULL;
	if (n > r->len - r->off) {
		r->err = RTCMS_EPROTO;
		return NULL;
	}
	const uint8_t *q = r->p + r->off;
	r->off += n;
	return q;
}

static uint8_t r_u8(struct rd *r)
{
	const uint8_t *q = r_take(r, 1);
	return q ? *q : 0;
}

static uint16_t r_u16(struct rd *r)
{
	const uint8_t *q = r_take(r, 2);
	return q ? get_be16(q) : 0;
}

static uint32_t r_u32(struct rd *r)
{
	const uint8_t *q = r_take(r, 4);
	return q ? get_be32(q) : 0;
}

static uint64_t r_u64(struct rd *r)
{
	const uint8_t *q = r_take(r, 8);
	return q ? get_be64(q) : 0;
}

static void r_bytes(struct rd *r, void *dst, size_t n)
{
	const uint8_t *q = r_take(r, n);
	if (q)
		memcpy(dst, q, n);
	else
		memset(dst, 0, n);
}

/* Copy a string of at most max bytes into dst[max + 1]. */
static void r_str(struct rd *r, char *dst, size_t max)
{
	dst[0] = '\0';
	uint16_t n = r_u16(r);
	if (r->err)
		return;
	if (n > max) {
		r->err = RTCMS_ETOOBIG;
		return;
	}
	const uint8_t *q = r_take(r, n);
	if (!q)
		return;
	if (!str_ok((const char *)q, n)) {
		r->err = RTCMS_EPROTO;
		return;
	}
	memcpy(dst, q, n);
	dst[n] = '\0';
}

static void r_process(struct rd *r, char *dst, int allow_empty)
{
	r_str(r, dst, PROTO_ID_MAX);
	if (!r->err && !(allow_empty && dst[0] == '\0') &&
	    !proto_process_id_valid(dst))
		r->err = RTCMS_EPROTO;
}

static void r_check(struct rd *r, int ok)
{
	if (!r->err && !ok)
		r->err = RTCMS_EPROTO;
}

/* ---- types ----------------------------------------------------------- */

static const struct {
	uint8_t type;
	const char *name;
	uint32_t max;      /* payload cap */
	uint8_t reserved;  /* payload not defined yet */
} types[] = {
	{ PROTO_HELLO, "HELLO", 256, 0 },
	{ PROTO_HELLO_ACK, "HELLO_ACK", 256, 0 },
	{ PROTO_ERROR, "ERROR", 1024, 0 },
	{ PROTO_OK, "OK", 0, 0 },
	{ PROTO_PUT_BEGIN, "PUT_BEGIN", 17408, 0 },
	{ PROTO_PUT_READY, "PUT_READY", 0, 0 },
	{ PROTO_CHUNK, "CHUNK", PROTO_MAX_PAYLOAD, 0 },
	{ PROTO_PUT_END, "PUT_END", 4, 0 },
	{ PROTO_PUT_ACK, "PUT_ACK", 1024, 0 },
	{ PROTO_GET, "GET", 1024, 0 },
	{ PROTO_GET_META, "GET_META", 17408, 0 },
	{ PROTO_GET_END, "GET_END", 8, 0 },
	{ PROTO_LIST, "LIST", 1024, 0 },
	{ PROTO_LIST_REPLY, "LIST_REPLY", 65536, 0 },
	{ PROTO_DELETE, "DELETE", 1024, 0 },
	{ PROTO_CLAIM, "CLAIM", 1024, 0 },
	{ PROTO_CLAIM_OK, "CLAIM_OK", 1024, 0 },
	{ PROTO_COMMIT, "COMMIT", 1024, 0 },
	{ PROTO_COMMIT_OK, "COMMIT_OK", 1024, 0 },
	{ PROTO_RELEASE, "RELEASE", 1024, 0 },
	{ PROTO_SCRUB, "SCRUB", 1, 0 },
	{ PROTO_SCRUB_REPLY, "SCRUB_REPLY", 16384, 0 },
	{ PROTO_STATUS, "STATUS", 0, 0 },
	{ PROTO_STATUS_REPLY, "STATUS_REPLY", 16384, 0 },
	{ PROTO_REGISTER, "REGISTER", 1024, 0 },
	{ PROTO_REGISTER_OK, "REGISTER_OK", 1024, 0 },
	{ PROTO_CKPT_NOTIFY, "CKPT_NOTIFY", 17408, 0 },
	{ PROTO_MIGRATE, "MIGRATE", 1024, 0 },
	{ PROTO_MIGRATE_OK, "MIGRATE_OK", 1024, 0 },
	{ PROTO_INFO, "INFO", 0, 0 },
	{ PROTO_INFO_REPLY, "INFO_REPLY", 1024, 0 },
	{ PROTO_RESTORE, "RESTORE", 17408, 0 },
	{ PROTO_RESTORE_OK, "RESTORE_OK", 1024, 0 },
	{ PROTO_PULL, "PULL", 1024, 0 },
	{ PROTO_HEARTBEAT, "HEARTBEAT", 256, 0 },
	{ PROTO_HEARTBEAT_ACK, "HEARTBEAT_ACK", 256, 0 },
	{ PROTO_RUN, "RUN", 17408, 0 },
	{ PROTO_RUN_OK, "RUN_OK", 1024, 0 },
	{ PROTO_DRAIN, "DRAIN", 8, 0 },
	{ PROTO_DRAIN_OK, "DRAIN_OK", 8, 0 },
	{ PROTO_CORDON, "CORDON", 8, 0 },
	{ PROTO_UNCORDON, "UNCORDON", 8, 0 },
	{ PROTO_FORGET, "FORGET", 1024, 0 },
	{ PROTO_FORGET_OK, "FORGET_OK", 1024, 0 },
	{ PROTO_MSTATUS, "MSTATUS", 0, 0 },
	{ PROTO_MSTATUS_REPLY, "MSTATUS_REPLY", 131072, 0 },
	{ PROTO_EXITED, "EXITED", 1024, 0 },
	{ PROTO_NODE_FAILED, "NODE_FAILED", 8, 0 },
	{ PROTO_RESOLVE, "RESOLVE", 1024, 0 },
	{ PROTO_RESOLVE_OK, "RESOLVE_OK", 1024, 0 },
	{ PROTO_FREEZE, "FREEZE", 1024, 0 },
	{ PROTO_FROZEN, "FROZEN", 17408, 0 },
	{ PROTO_THAW, "THAW", 1024, 0 },
	{ PROTO_STOP, "STOP", 1024, 0 },
	{ PROTO_ADOPT, "ADOPT", 1024, 0 },
	{ PROTO_MLEASE, "MLEASE", 1024, 0 },
	{ PROTO_MLEASE_OK, "MLEASE_OK", 4096, 0 },
	{ PROTO_FENCE, "FENCE", 1024, 0 },
	{ PROTO_FENCE_OK, "FENCE_OK", 64, 0 },
	{ PROTO_PROCS, "PROCS", 81920, 0 },
};

static int type_index(uint8_t type)
{
	for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++)
		if (types[i].type == type)
			return (int)i;
	return -1;
}

const char *proto_type_name(uint8_t type)
{
	int i = type_index(type);
	return i < 0 ? NULL : types[i].name;
}

bool proto_type_known(uint8_t type)
{
	return type_index(type) >= 0;
}

uint32_t proto_type_max_payload(uint8_t type)
{
	int i = type_index(type);
	return i < 0 ? 0 : types[i].max;
}

bool proto_process_id_valid(const char *s)
{
	size_t n = 0;
	for (; s[n]; n++) {
		char c = s[n];
		if (n >= PROTO_ID_MAX)
			return false;
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      (c >= '0' && c <= '9') || c == '.' || c == '_' ||
		      c == ':' || c == '-'))
			return false;
	}
	return n >= 1;
}

/* ---- per-message codecs ------------------------------------------- */

static void enc_meta(struct wr *w, const struct proto_ckpt_meta *m)
{
	w_process(w, m->process, 0);
	w_u64(w, m->incarnation);
	w_u64(w, m->sequence);
	w_u64(w, m->node);
	w_u64(w, m->size);
	w_u64(w, m->created_ms);
	w_u32(w, m->chunk_count);
	w_bytes(w, m->hash, PROTO_HASH_SIZE);
	w_u64(w, m->base);
	w_u64(w, m->full_size);
	w_bytes(w, m->state_hash, PROTO_HASH_SIZE);
	if (!w->err && m->spec_len > PROTO_SPEC_MAX)
		w->err = RTCMS_ETOOBIG;
	w_u32(w, m->spec_len);
	w_bytes(w, m->spec, m->spec_len);
}

/* size and chunk count agree: every chunk holds 1..PROTO_MAX_CHUNK bytes */
static int meta_consistent(const struct proto_ckpt_meta *m)
{
	if (m->incarnation == 0 || m->sequence == 0 || m->base >= m->sequence ||
	    (m->base == 0 && m->full_size != 0 && m->full_size != m->size))
		return 0;
	if (m->size == 0)
		return m->chunk_count == 0;
	return m->chunk_count >= 1 && m->chunk_count <= m->size &&
	       m->size <= (uint64_t)m->chunk_count * PROTO_MAX_CHUNK;
}

static void dec_meta(struct rd *r, struct proto_ckpt_meta *m)
{
	r_process(r, m->process, 0);
	m->incarnation = r_u64(r);
	m->sequence = r_u64(r);
	m->node = r_u64(r);
	m->size = r_u64(r);
	m->created_ms = r_u64(r);
	m->chunk_count = r_u32(r);
	r_bytes(r, m->hash, PROTO_HASH_SIZE);
	m->base = r_u64(r);
	m->full_size = r_u64(r);
	r_bytes(r, m->state_hash, PROTO_HASH_SIZE);
	m->spec_len = r_u32(r);
	if (!r->err && m->spec_len > PROTO_SPEC_MAX)
		r->err = RTCMS_ETOOBIG;
	m->spec = r_take(r, m->spec_len);
	r_check(r, meta_consistent(m));
}

static void enc_entry(struct wr *w, const struct proto_list_entry *e)
{
	w_process(w, e->process, 0);
	w_u64(w, e->incarnation);
	w_u64(w, e->sequence);
	w_u64(w, e->node);
	w_u64(w, e->size);
	w_u64(w, e->created_ms);
	w_bytes(w, e->hash, PROTO_HASH_SIZE);
	w_u8(w, e->claimed ? 1 : 0);
}

static void dec_entry(struct rd *r, struct proto_list_entry *e)
{
	r_process(r, e->process, 0);
	e->incarnation = r_u64(r);
	e->sequence = r_u64(r);
	e->node = r_u64(r);
	e->size = r_u64(r);
	e->created_ms = r_u64(r);
	r_bytes(r, e->hash, PROTO_HASH_SIZE);
	e->claimed = r_u8(r);
	r_check(r, e->claimed <= 1);
}

static void enc_report(struct wr *w, const struct proto_scrub_reply *s)
{
	w_u64(w, s->processes);
	w_u64(w, s->checkpoints);
	w_u64(w, s->chunks);
	w_u64(w, s->bytes);
	w_u32(w, s->unrepairable);
	if (!w->err && s->mirror_count > PROTO_MIRRORS_MAX)
		w->err = RTCMS_ETOOBIG;
	w_u8(w, s->mirror_count);
	for (int i = 0; i < s->mirror_count && !w->err; i++) {
		const struct proto_mirror_report *m = &s->mirrors[i];
		w_str(w, m->path, PROTO_TEXT_MAX);
		w_u8(w, m->online ? 1 : 0);
		w_u64(w, m->chunks);
		w_u64(w, m->bytes);
		w_u32(w, m->missing);
		w_u32(w, m->corrupt);
		w_u32(w, m->repaired);
	}
}

static void dec_report(struct rd *r, struct proto_scrub_reply *s)
{
	s->processes = r_u64(r);
	s->checkpoints = r_u64(r);
	s->chunks = r_u64(r);
	s->bytes = r_u64(r);
	s->unrepairable = r_u32(r);
	s->mirror_count = r_u8(r);
	if (!r->err && s->mirror_count > PROTO_MIRRORS_MAX) {
		r->err = RTCMS_ETOOBIG;
		return;
	}
	for (int i = 0; i < s->mirror_count && !r->err; i++) {
		struct proto_mirror_report *m = &s->mirrors[i];
		r_str(r, m->path, PROTO_TEXT_MAX);
		m->online = r_u8(r);
		r_check(r, m->online <= 1);
		m->chunks = r_u64(r);
		m->bytes = r_u64(r);
		m->missing = r_u32(r);
		m->corrupt = r_u32(r);
		m->repaired = r_u32(r);
	}
}

static void enc_mstatus(struct wr *w, const struct proto_mstatus_reply *s)
{
	w_str(w, s->name, PROTO_ID_MAX);
	w_str(w, s->store, PROTO_ADDR_MAX);
	w_u8(w, s->store_up ? 1 : 0);
	w_u32(w, s->pending);
	w_str(w, s->store_error, PROTO_TEXT_MAX);
	if (!w->err && (s->node_count > PROTO_NODES_MAX ||
			s->proc_count > PROTO_PROCS_MAX))
		w->err = RTCMS_ETOOBIG;
	w_u16(w, s->node_count);
	for (uint16_t i = 0; i < s->node_count && !w->err; i++) {
		const struct proto_node_entry *n = &s->nodes[i];
		if (n->cpu_load_permille > 1000 || n->quota_free > n->quota_max) {
			w->err = RTCMS_EINVAL;
			break;
		}
		w_u64(w, n->node);
		w_str(w, n->name, PROTO_ID_MAX);
		w_str(w, n->address, PROTO_ADDR_MAX);
		w_u8(w, n->alive ? 1 : 0);
		w_u8(w, n->cordoned ? 1 : 0);
		w_u64(w, n->seen_ago_ms);
		w_u64(w, n->mem_total);
		w_u64(w, n->mem_available);
		w_u16(w, n->cpu_load_permille);
		w_u32(w, n->quota_max);
		w_u32(w, n->quota_free);
		w_u64(w, n->area_used);
		w_u32(w, n->processes);
	}
	w_u16(w, s->proc_count);
	for (uint16_t i = 0; i < s->proc_count && !w->err; i++) {
		const struct proto_proc_entry *p = &s->procs[i];
		if (p->state < PROTO_PS_RUNNING || p->state > PROTO_PS_FAILED) {
			w->err = RTCMS_EINVAL;
			break;
		}
		w_process(w, p->process, 0);
		w_u64(w, p->node);
		w_u64(w, p->incarnation);
		w_u64(w, p->durable);
		w_u64(w, p->durable_age_ms);
		w_u64(w, p->notified);
		w_u64(w, p->size);
		w_u8(w, p->state);
		w_u32(w, p->restarts);
		w_u64(w, p->confirmed_ago_ms);
		w_str(w, p->reason, PROTO_ID_MAX);
	}
}

static int dec_mstatus(struct rd *r, struct proto_mstatus_reply *s)
{
	if (!s->nodes || !s->procs)
		return RTCMS_EINVAL;
	r_str(r, s->name, PROTO_ID_MAX);
	r_str(r, s->store, PROTO_ADDR_MAX);
	s->store_up = r_u8(r);
	r_check(r, s->store_up <= 1);
	s->pending = r_u32(r);
	r_str(r, s->store_error, PROTO_TEXT_MAX);
	s->node_count = r_u16(r);
	if (!r->err && s->node_count > PROTO_NODES_MAX)
		return RTCMS_ETOOBIG;
	for (uint16_t i = 0; i < s->node_count && !r->err; i++) {
		struct proto_node_entry *n = &s->nodes[i];
		n->node = r_u64(r);
		r_str(r, n->name, PROTO_ID_MAX);
		r_str(r, n->address, PROTO_ADDR_MAX);
		n->alive = r_u8(r);
		n->cordoned = r_u8(r);
		n->seen_ago_ms = r_u64(r);
		n->mem_total = r_u64(r);
		n->mem_available = r_u64(r);
		n->cpu_load_permille = r_u16(r);
		n->quota_max = r_u32(r);
		n->quota_free = r_u32(r);
		n->area_used = r_u64(r);
		n->processes = r_u32(r);
		r_check(r, n->alive <= 1 && n->cordoned <= 1 && n->cpu_load_permille <= 1000 &&
			   n->quota_free <= n->quota_max);
	}
	s->proc_count = r_u16(r);
	if (!r->err && s->proc_count > PROTO_PROCS_MAX)
		return RTCMS_ETOOBIG;
	for (uint16_t i = 0; i < s->proc_count && !r->err; i++) {
		struct proto_proc_entry *p = &s->procs[i];
		r_process(r, p->process, 0);
		p->node = r_u64(r);
		p->incarnation = r_u64(r);
		p->durable = r_u64(r);
		p->durable_age_ms = r_u64(r);
		p->notified = r_u64(r);
		p->size = r_u64(r);
		p->state = r_u8(r);
		r_check(r, p->state >= PROTO_PS_RUNNING && p->state <= PROTO_PS_FAILED);
		p->restarts = r_u32(r);
		p->confirmed_ago_ms = r_u64(r);
		r_str(r, p->reason, PROTO_ID_MAX);
	}
	return 0;
}

/* ---- leases, fences and program reports: encode and decode side by side */

static void enc_mlease(struct wr *w, const struct proto_mlease *l)
{
	if (l->alive_count > PROTO_NODES_MAX) {
		w->err = RTCMS_EINVAL;
		return;
	}
	w_str(w, l->name, PROTO_ID_MAX);
	w_u32(w, l->lease_ms);
	w_u64(w, l->fence_gen);
	w_u16(w, l->alive_count);
	for (uint16_t i = 0; i < l->alive_count; i++)
		w_u64(w, l->alive[i]);
}

static void dec_mlease(struct rd *r, struct proto_mlease *l)
{
	r_str(r, l->name, PROTO_ID_MAX);
	r_check(r, l->name[0] != '\0');
	l->lease_ms = r_u32(r);
	l->fence_gen = r_u64(r);
	l->alive_count = r_u16(r);
	r_check(r, l->alive_count <= PROTO_NODES_MAX);
	for (uint16_t i = 0; i < l->alive_count && !r->err; i++)
		l->alive[i] = r_u64(r);
}

static void enc_mlease_ok(struct wr *w, const struct proto_mlease_ok *o)
{
	if (o->fence_count > PROTO_NODES_MAX || o->manager_count > PROTO_MANAGERS_MAX) {
		w->err = RTCMS_EINVAL;
		return;
	}
	w_u32(w, o->lease_ms);
	w_u64(w, o->fence_gen);
	w_u16(w, o->fence_count);
	for (uint16_t i = 0; i < o->fence_count; i++) {
		w_u64(w, o->fences[i].node);
		w_u64(w, o->fences[i].gen);
		w_u8(w, o->fences[i].state);
	}
	w_u16(w, o->manager_count);
	for (uint16_t i = 0; i < o->manager_count; i++)
		w_str(w, o->managers[i], PROTO_ID_MAX);
}

static void dec_mlease_ok(struct rd *r, struct proto_mlease_ok *o)
{
	o->lease_ms = r_u32(r);
	o->fence_gen = r_u64(r);
	o->fence_count = r_u16(r);
	r_check(r, o->fence_count <= PROTO_NODES_MAX);
	for (uint16_t i = 0; i < o->fence_count && !r->err; i++) {
		o->fences[i].node = r_u64(r);
		o->fences[i].gen = r_u64(r);
		o->fences[i].state = r_u8(r);
		r_check(r, o->fences[i].state >= PROTO_FENCE_PENDING &&
			   o->fences[i].state <= PROTO_FENCE_COMPLETE);
	}
	o->manager_count = r_u16(r);
	r_check(r, o->manager_count <= PROTO_MANAGERS_MAX);
	for (uint16_t i = 0; i < o->manager_count && !r->err; i++)
		r_str(r, o->managers[i], PROTO_ID_MAX);
}

static void enc_fence(struct wr *w, const struct proto_fence *f)
{
	w_u64(w, f->node);
	w_str(w, f->by, PROTO_ID_MAX);
	w_u32(w, f->hold_ms);
}

static void dec_fence(struct rd *r, struct proto_fence *f)
{
	f->node = r_u64(r);
	r_str(r, f->by, PROTO_ID_MAX);
	f->hold_ms = r_u32(r);
	r_check(r, f->node != 0 && f->by[0] != '\0');
}

static void enc_fence_ok(struct wr *w, const struct proto_fence_ok *f)
{
	w_u64(w, f->node);
	w_u64(w, f->gen);
	w_u8(w, f->state);
	w_u32(w, f->wait_ms);
}

static void dec_fence_ok(struct rd *r, struct proto_fence_ok *f)
{
	f->node = r_u64(r);
	f->gen = r_u64(r);
	f->state = r_u8(r);
	f->wait_ms = r_u32(r);
	r_check(r, f->state >= PROTO_FENCE_PENDING && f->state <= PROTO_FENCE_COMPLETE);
}

static void enc_procs(struct wr *w, const struct proto_procs *p)
{
	if (p->count > PROTO_PROCS_MAX || (p->count && !p->procs)) {
		w->err = RTCMS_EINVAL;
		return;
	}
	w_u64(w, p->node);
	w_bytes(w, p->boot, PROTO_BOOT_SIZE);
	w_u64(w, p->generation);
	w_u16(w, p->count);
	for (uint16_t i = 0; i < p->count; i++) {
		const struct proto_agent_proc *e = &p->procs[i];
		if (e->state < PROTO_AP_RUNNING || e->state > PROTO_AP_FAILED) {
			w->err = RTCMS_EINVAL;
			return;
		}
		w_process(w, e->process, 0);
		w_u64(w, e->incarnation);
		w_u64(w, e->sequence);
		w_u32(w, e->pid);
		w_u8(w, e->state);
		w_u32(w, e->restarts);
		w_str(w, e->reason, PROTO_ID_MAX);
	}
}

static void dec_procs(struct rd *r, struct proto_procs *p)
{
	p->node = r_u64(r);
	r_bytes(r, p->boot, PROTO_BOOT_SIZE);
	p->generation = r_u64(r);
	p->count = r_u16(r);
	r_check(r, p->count <= PROTO_PROCS_MAX && p->node != 0);
	for (uint16_t i = 0; i < p->count && !r->err; i++) {
		struct proto_agent_proc *e = &p->procs[i];
		r_process(r, e->process, 0);
		e->incarnation = r_u64(r);
		e->sequence = r_u64(r);
		e->pid = r_u32(r);
		e->state = r_u8(r);
		r_check(r, e->state >= PROTO_AP_RUNNING && e->state <= PROTO_AP_FAILED);
		e->restarts = r_u32(r);
		r_str(r, e->reason, PROTO_ID_MAX);
	}
}

int proto_msg_encode(uint8_t type, const union proto_msg *m, uint8_t *buf,
		     size_t cap)
{
	int i = type_index(type);
	struct wr w = { buf, cap, 0, 0 };

	if (i < 0 || types[i].reserved)
		return RTCMS_EPROTO;
	if (w.cap > types[i].max)
		w.cap = types[i].max;
	switch (type) {
	case PROTO_HELLO:
	case PROTO_HELLO_ACK:
		w_bytes(&w, m->hello.nonce, PROTO_NONCE_SIZE);
		w_bytes(&w, m->hello.echo, PROTO_NONCE_SIZE);
		w_u8(&w, m->hello.role);
		w_str(&w, m->hello.name, PROTO_ID_MAX);
		break;
	case PROTO_ERROR:
		if (m->error.code >= 0 || m->error.code < RTCMS_EINTERNAL)
			return RTCMS_EINVAL;
		w_u32(&w, (uint32_t)m->error.code);
		w_u64(&w, m->error.detail);
		w_str(&w, m->error.who, PROTO_ID_MAX);
		w_str(&w, m->error.text, PROTO_TEXT_MAX);
		break;
	case PROTO_OK:
	case PROTO_PUT_READY:
	case PROTO_STATUS:
	case PROTO_INFO:
	case PROTO_MSTATUS:
		break;
	case PROTO_PUT_BEGIN:
	case PROTO_GET_META:
	case PROTO_CKPT_NOTIFY:
	case PROTO_RESTORE:
	case PROTO_FROZEN:
		if (!meta_consistent(&m->meta))
			return RTCMS_EINVAL;
		enc_meta(&w, &m->meta);
		break;
	case PROTO_REGISTER:
		w_u64(&w, m->reg.node);
		w_str(&w, m->reg.name, PROTO_ID_MAX);
		w_str(&w, m->reg.address, PROTO_ADDR_MAX);
		w_u64(&w, m->reg.area_capacity);
		w_u64(&w, m->reg.mem_total);
		w_u32(&w, m->reg.quota_max);
		w_bytes(&w, m->reg.boot, PROTO_BOOT_SIZE);
		break;
	case PROTO_REGISTER_OK:
		w_str(&w, m->reg_ok.name, PROTO_ID_MAX);
		w_u64(&w, m->reg_ok.epoch);
		w_u32(&w, m->reg_ok.heartbeat_ms);
		w_u32(&w, m->reg_ok.lease_ms);
		break;
	case PROTO_MIGRATE:
		w_process(&w, m->migrate.process, 0);
		w_u64(&w, m->migrate.target);
		w_u8(&w, m->migrate.allow_same ? 1 : 0);
		break;
	case PROTO_MIGRATE_OK:
		w_process(&w, m->migrate_ok.process, 0);
		w_u64(&w, m->migrate_ok.from);
		w_u64(&w, m->migrate_ok.to);
		w_u64(&w, m->migrate_ok.incarnation);
		w_u64(&w, m->migrate_ok.sequence);
		w_u32(&w, m->migrate_ok.millis);
		break;
	case PROTO_INFO_REPLY:
		if (m->info.cpu_load_permille > 1000 ||
		    m->info.quota_free > m->info.quota_max)
			return RTCMS_EINVAL;
		w_u64(&w, m->info.node);
		w_u64(&w, m->info.mem_total);
		w_u64(&w, m->info.mem_available);
		w_u16(&w, m->info.cpu_load_permille);
		w_u32(&w, m->info.quota_max);
		w_u32(&w, m->info.quota_free);
		w_u64(&w, m->info.area_capacity);
		w_u64(&w, m->info.area_used);
		w_u32(&w, m->info.processes);
		break;
	case PROTO_RESTORE_OK:
		w_process(&w, m->restore_ok.process, 0);
		w_u64(&w, m->restore_ok.incarnation);
		w_u64(&w, m->restore_ok.sequence);
		w_u32(&w, m->restore_ok.pid);
		break;
	case PROTO_RUN:
		if (m->run.spec_len == 0)
			return RTCMS_EINVAL;
		if (m->run.spec_len > PROTO_SPEC_MAX)
			return RTCMS_ETOOBIG;
		w_process(&w, m->run.process, 0);
		w_u64(&w, m->run.node);
		w_u32(&w, m->run.spec_len);
		w_bytes(&w, m->run.spec, m->run.spec_len);
		break;
	case PROTO_RUN_OK:
		w_process(&w, m->run_ok.process, 0);
		w_u64(&w, m->run_ok.node);
		w_u64(&w, m->run_ok.incarnation);
		w_u32(&w, m->run_ok.pid);
		break;
	case PROTO_NODE_FAILED:
	case PROTO_DRAIN:
	case PROTO_CORDON:
	case PROTO_UNCORDON:
		w_u64(&w, m->drain.node);
		break;
	case PROTO_DRAIN_OK:
		w_u32(&w, m->drain_ok.moved);
		w_u32(&w, m->drain_ok.failed);
		break;
	case PROTO_FORGET:
		if (m->forget.kind > PROTO_FORGET_PROCESS)
			return RTCMS_EINVAL;
		w_u8(&w, m->forget.kind);
		w_process(&w, m->forget.name, 0);
		break;
	case PROTO_FORGET_OK:
		if (m->forget_ok.kind != PROTO_FORGET_NODE &&
		    m->forget_ok.kind != PROTO_FORGET_PROCESS)
			return RTCMS_EINVAL;
		w_u8(&w, m->forget_ok.kind);
		w_u64(&w, m->forget_ok.node);
		w_process(&w, m->forget_ok.process, 1);
		w_u8(&w, m->forget_ok.deleted ? 1 : 0);
		break;
	case PROTO_MSTATUS_REPLY:
		enc_mstatus(&w, &m->mstatus);
		break;
	case PROTO_RESOLVE:
	case PROTO_RESOLVE_OK:
	case PROTO_EXITED:
	case PROTO_FREEZE:
	case PROTO_THAW:
	case PROTO_STOP:
	case PROTO_ADOPT:
		w_process(&w, m->ref.process, 0);
		w_u64(&w, m->ref.incarnation);
		w_u32(&w, m->ref.arg);
		break;
	case PROTO_HEARTBEAT_ACK:
	case PROTO_HEARTBEAT:
		w_u64(&w, m->heartbeat.node);
		w_bytes(&w, m->heartbeat.boot, PROTO_BOOT_SIZE);
		w_u64(&w, m->heartbeat.counter);
		w_u64(&w, m->heartbeat.sent_ms);
		w_u32(&w, m->heartbeat.processes);
		break;
	case PROTO_CHUNK:
		if (m->chunk.len == 0 || m->chunk.len > PROTO_MAX_CHUNK)
			return RTCMS_EINVAL;
		w_u64(&w, m->chunk.offset);
		w_bytes(&w, m->chunk.hash, PROTO_HASH_SIZE);
		w_bytes(&w, m->chunk.data, m->chunk.len);
		break;
	case PROTO_PUT_END:
		w_u32(&w, m->put_end.chunk_count);
		break;
	case PROTO_PUT_ACK:
		w_process(&w, m->put_ack.process, 0);
		w_u64(&w, m->put_ack.incarnation);
		w_u64(&w, m->put_ack.sequence);
		w_u64(&w, m->put_ack.size);
		w_bytes(&w, m->put_ack.hash, PROTO_HASH_SIZE);
		w_u8(&w, m->put_ack.copies);
		w_u8(&w, m->put_ack.existed ? 1 : 0);
		w_u32(&w, m->put_ack.depth);
		break;
	case PROTO_GET:
	case PROTO_PULL:
		w_process(&w, m->get.process, 0);
		w_u64(&w, m->get.incarnation);
		w_u64(&w, m->get.sequence);
		w_u8(&w, m->get.meta_only ? 1 : 0);
		w_u64(&w, m->get.base);
		break;
	case PROTO_GET_END:
		w_u32(&w, m->get_end.chunk_count);
		w_u32(&w, m->get_end.repaired);
		break;
	case PROTO_LIST:
		if (m->list.limit == 0 || m->list.limit > PROTO_LIST_MAX)
			return RTCMS_EINVAL;
		w_u64(&w, m->list.node);
		w_process(&w, m->list.process, 1);
		w_u32(&w, m->list.offset);
		w_u16(&w, m->list.limit);
		break;
	case PROTO_LIST_REPLY:
		if (m->list_reply.count > PROTO_LIST_MAX)
			return RTCMS_ETOOBIG;
		w_u16(&w, m->list_reply.count);
		for (uint16_t k = 0; k < m->list_reply.count && !w.err; k++)
			enc_entry(&w, &m->list_reply.entries[k]);
		break;
	case PROTO_DELETE:
		if ((m->del.incarnation == 0) != (m->del.sequence == 0))
			return RTCMS_EINVAL;
		w_process(&w, m->del.process, 0);
		w_u64(&w, m->del.incarnation);
		w_u64(&w, m->del.sequence);
		break;
	case PROTO_CLAIM:
		if (m->claim.claimant[0] == '\0' || m->claim.lease_ms == 0 ||
		    m->claim.lease_ms > 3600000)
			return RTCMS_EINVAL;
		w_process(&w, m->claim.process, 0);
		if (m->claim.flags & ~PROTO_CLAIM_F_GAVE_UP)
			return RTCMS_EINVAL;
		w_str(&w, m->claim.claimant, PROTO_ID_MAX);
		w_u32(&w, m->claim.lease_ms);
		w_u8(&w, m->claim.flags);
		break;
	case PROTO_CLAIM_OK:
		w_process(&w, m->claim_ok.process, 0);
		w_u64(&w, m->claim_ok.claim_id);
		w_u64(&w, m->claim_ok.incarnation);
		w_u64(&w, m->claim_ok.sequence);
		w_u64(&w, m->claim_ok.node);
		w_u64(&w, m->claim_ok.expires_ms);
		break;
	case PROTO_COMMIT:
		w_process(&w, m->commit.process, 0);
		w_u64(&w, m->commit.claim_id);
		w_u64(&w, m->commit.new_node);
		break;
	case PROTO_COMMIT_OK:
		w_process(&w, m->commit_ok.process, 0);
		w_u64(&w, m->commit_ok.incarnation);
		w_u64(&w, m->commit_ok.node);
		break;
	case PROTO_RELEASE:
		w_process(&w, m->release.process, 0);
		w_u64(&w, m->release.claim_id);
		break;
	case PROTO_SCRUB:
		w_u8(&w, m->scrub.repair ? 1 : 0);
		break;
	case PROTO_SCRUB_REPLY:
	case PROTO_STATUS_REPLY:
		enc_report(&w, &m->scrub_reply);
		break;
	case PROTO_MLEASE:
		enc_mlease(&w, &m->mlease);
		break;
	case PROTO_MLEASE_OK:
		enc_mlease_ok(&w, &m->mlease_ok);
		break;
	case PROTO_FENCE:
		enc_fence(&w, &m->fence);
		break;
	case PROTO_FENCE_OK:
		enc_fence_ok(&w, &m->fence_ok);
		break;
	case PROTO_PROCS:
		enc_procs(&w, &m->procs);
		break;
	default:
		return RTCMS_EPROTO;
	}
	return w.err ? w.err : (int)w.len;
}

int proto_msg_decode(uint8_t type, const uint8_t *buf, size_t len,
		     union proto_msg *m)
{
	int i = type_index(type);
	struct rd r = { buf, len, 0, 0 };

	if (i < 0 || types[i].reserved)
		return RTCMS_EPROTO;
	if (len > types[i].max)
		return RTCMS_ETOOBIG;
	switch (type) {
	case PROTO_HELLO:
	case PROTO_HELLO_ACK:
		r_bytes(&r, m->hello.nonce, PROTO_NONCE_SIZE);
		r_bytes(&r, m->hello.echo, PROTO_NONCE_SIZE);
		m->hello.role = r_u8(&r);
		r_check(&r, m->hello.role >= PROTO_ROLE_CLI &&
			    m->hello.role <= PROTO_ROLE_STORE);
		r_str(&r, m->hello.name, PROTO_ID_MAX);
		break;
	case PROTO_ERROR:
		m->error.code = (int32_t)r_u32(&r);
		r_check(&r, m->error.code < 0 && m->error.code >= RTCMS_EINTERNAL);
		m->error.detail = r_u64(&r);
		r_str(&r, m->error.who, PROTO_ID_MAX);
		r_str(&r, m->error.text, PROTO_TEXT_MAX);
		break;
	case PROTO_OK:
	case PROTO_PUT_READY:
	case PROTO_STATUS:
	case PROTO_INFO:
	case PROTO_MSTATUS:
		break;
	case PROTO_PUT_BEGIN:
	case PROTO_GET_META:
	case PROTO_CKPT_NOTIFY:
	case PROTO_RESTORE:
	case PROTO_FROZEN:
		dec_meta(&r, &m->meta);
		break;
	case PROTO_REGISTER:
		m->reg.node = r_u64(&r);
		r_str(&r, m->reg.name, PROTO_ID_MAX);
		r_str(&r, m->reg.address, PROTO_ADDR_MAX);
		m->reg.area_capacity = r_u64(&r);
		m->reg.mem_total = r_u64(&r);
		m->reg.quota_max = r_u32(&r);
		r_bytes(&r, m->reg.boot, PROTO_BOOT_SIZE);
		break;
	case PROTO_REGISTER_OK:
		r_str(&r, m->reg_ok.name, PROTO_ID_MAX);
		m->reg_ok.epoch = r_u64(&r);
		m->reg_ok.heartbeat_ms = r_u32(&r);
		m->reg_ok.lease_ms = r_u32(&r);
		break;
	case PROTO_MIGRATE:
		r_process(&r, m->migrate.process, 0);
		m->migrate.target = r_u64(&r);
		m->migrate.allow_same = r_u8(&r);
		r_check(&r, m->migrate.allow_same <= 1);
		break;
	case PROTO_MIGRATE_OK:
		r_process(&r, m->migrate_ok.process, 0);
		m->migrate_ok.from = r_u64(&r);
		m->migrate_ok.to = r_u64(&r);
		m->migrate_ok.incarnation = r_u64(&r);
		m->migrate_ok.sequence = r_u64(&r);
		m->migrate_ok.millis = r_u32(&r);
		break;
	case PROTO_INFO_REPLY:
		m->info.node = r_u64(&r);
		m->info.mem_total = r_u64(&r);
		m->info.mem_available = r_u64(&r);
		m->info.cpu_load_permille = r_u16(&r);
		m->info.quota_max = r_u32(&r);
		m->info.quota_free = r_u32(&r);
		m->info.area_capacity = r_u64(&r);
		m->info.area_used = r_u64(&r);
		m->info.processes = r_u32(&r);
		r_check(&r, m->info.cpu_load_permille <= 1000 &&
			    m->info.quota_free <= m->info.quota_max);
		break;
	case PROTO_RESTORE_OK:
		r_process(&r, m->restore_ok.process, 0);
		m->restore_ok.incarnation = r_u64(&r);
		m->restore_ok.sequence = r_u64(&r);
		m->restore_ok.pid = r_u32(&r);
		break;
	case PROTO_RUN:
		r_process(&r, m->run.process, 0);
		m->run.node = r_u64(&r);
		m->run.spec_len = r_u32(&r);
		if (!r.err && m->run.spec_len > PROTO_SPEC_MAX)
			return RTCMS_ETOOBIG;
		r_check(&r, m->run.spec_len >= 1);
		m->run.spec = r_take(&r, m->run.spec_len);
		break;
	case PROTO_RUN_OK:
		r_process(&r, m->run_ok.process, 0);
		m->run_ok.node = r_u64(&r);
		m->run_ok.incarnation = r_u64(&r);
		m->run_ok.pid = r_u32(&r);
		break;
	case PROTO_NODE_FAILED:
	case PROTO_DRAIN:
	case PROTO_CORDON:
	case PROTO_UNCORDON:
		m->drain.node = r_u64(&r);
		break;
	case PROTO_DRAIN_OK:
		m->drain_ok.moved = r_u32(&r);
		m->drain_ok.failed = r_u32(&r);
		break;
	case PROTO_FORGET:
		m->forget.kind = r_u8(&r);
		r_check(&r, m->forget.kind <= PROTO_FORGET_PROCESS);
		r_process(&r, m->forget.name, 0);
		break;
	case PROTO_FORGET_OK:
		m->forget_ok.kind = r_u8(&r);
		r_check(&r, m->forget_ok.kind == PROTO_FORGET_NODE ||
			    m->forget_ok.kind == PROTO_FORGET_PROCESS);
		m->forget_ok.node = r_u64(&r);
		r_process(&r, m->forget_ok.process, 1);
		m->forget_ok.deleted = r_u8(&r);
		r_check(&r, m->forget_ok.deleted <= 1);
		break;
	case PROTO_MSTATUS_REPLY: {
		int rc = dec_mstatus(&r, &m->mstatus);
		if (rc)
			return rc;
		break;
	}
	case PROTO_RESOLVE:
	case PROTO_RESOLVE_OK:
	case PROTO_EXITED:
	case PROTO_FREEZE:
	case PROTO_THAW:
	case PROTO_STOP:
	case PROTO_ADOPT:
		r_process(&r, m->ref.process, 0);
		m->ref.incarnation = r_u64(&r);
		m->ref.arg = r_u32(&r);
		break;
	case PROTO_HEARTBEAT_ACK:
	case PROTO_HEARTBEAT:
		m->heartbeat.node = r_u64(&r);
		r_bytes(&r, m->heartbeat.boot, PROTO_BOOT_SIZE);
		m->heartbeat.counter = r_u64(&r);
		m->heartbeat.sent_ms = r_u64(&r);
		m->heartbeat.processes = r_u32(&r);
		break;
	case PROTO_CHUNK:
		m->chunk.offset = r_u64(&r);
		r_bytes(&r, m->chunk.hash, PROTO_HASH_SIZE);
		if (r.err)
			break;
		m->chunk.len = (uint32_t)(r.len - r.off);
		r_check(&r, m->chunk.len >= 1 && m->chunk.len <= PROTO_MAX_CHUNK &&
			    m->chunk.offset <= UINT64_MAX - m->chunk.len);
		m->chunk.data = r_take(&r, m->chunk.len);
		break;
	case PROTO_PUT_END:
		m->put_end.chunk_count = r_u32(&r);
		break;
	case PROTO_PUT_ACK:
		r_process(&r, m->put_ack.process, 0);
		m->put_ack.incarnation = r_u64(&r);
		m->put_ack.sequence = r_u64(&r);
		m->put_ack.size = r_u64(&r);
		r_bytes(&r, m->put_ack.hash, PROTO_HASH_SIZE);
		m->put_ack.copies = r_u8(&r);
		m->put_ack.existed = r_u8(&r);
		m->put_ack.depth = r_u32(&r);
		r_check(&r, m->put_ack.existed <= 1);
		break;
	case PROTO_GET:
	case PROTO_PULL:
		r_process(&r, m->get.process, 0);
		m->get.incarnation = r_u64(&r);
		m->get.sequence = r_u64(&r);
		m->get.meta_only = r_u8(&r);
		m->get.base = r_u64(&r);
		r_check(&r, m->get.meta_only <= 1 &&
			    (type == PROTO_PULL || m->get.base == 0));
		break;
	case PROTO_GET_END:
		m->get_end.chunk_count = r_u32(&r);
		m->get_end.repaired = r_u32(&r);
		break;
	case PROTO_LIST:
		m->list.node = r_u64(&r);
		r_process(&r, m->list.process, 1);
		m->list.offset = r_u32(&r);
		m->list.limit = r_u16(&r);
		r_check(&r, m->list.limit >= 1 && m->list.limit <= PROTO_LIST_MAX);
		break;
	case PROTO_LIST_REPLY: {
		uint16_t n = r_u16(&r);
		if (!r.err && n > PROTO_LIST_MAX)
			return RTCMS_ETOOBIG;
		if (!m->list_reply.entries)
			return RTCMS_EINVAL;
		m->list_reply.count = n;
		for (uint16_t k = 0; k < n && !r.err; k++)
			dec_entry(&r, &m->list_reply.entries[k]);
		break;
	}
	case PROTO_DELETE:
		r_process(&r, m->del.process, 0);
		m->del.incarnation = r_u64(&r);
		m->del.sequence = r_u64(&r);
		r_check(&r, (m->del.incarnation == 0) == (m->del.sequence == 0));
		break;
	case PROTO_CLAIM:
		r_process(&r, m->claim.process, 0);
		r_str(&r, m->claim.claimant, PROTO_ID_MAX);
		m->claim.lease_ms = r_u32(&r);
		m->claim.flags = r_u8(&r);
		r_check(&r, m->claim.claimant[0] != '\0' && m->claim.lease_ms >= 1 &&
			    m->claim.lease_ms <= 3600000 &&
			    !(m->claim.flags & ~PROTO_CLAIM_F_GAVE_UP));
		break;
	case PROTO_CLAIM_OK:
		r_process(&r, m->claim_ok.process, 0);
		m->claim_ok.claim_id = r_u64(&r);
		m->claim_ok.incarnation = r_u64(&r);
		m->claim_ok.sequence = r_u64(&r);
		m->claim_ok.node = r_u64(&r);
		m->claim_ok.expires_ms = r_u64(&r);
		break;
	case PROTO_COMMIT:
		r_process(&r, m->commit.process, 0);
		m->commit.claim_id = r_u64(&r);
		m->commit.new_node = r_u64(&r);
		break;
	case PROTO_COMMIT_OK:
		r_process(&r, m->commit_ok.process, 0);
		m->commit_ok.incarnation = r_u64(&r);
		m->commit_ok.node = r_u64(&r);
		break;
	case PROTO_RELEASE:
		r_process(&r, m->release.process, 0);
		m->release.claim_id = r_u64(&r);
		break;
	case PROTO_SCRUB:
		m->scrub.repair = r_u8(&r);
		r_check(&r, m->scrub.repair <= 1);
		break;
	case PROTO_SCRUB_REPLY:
	case PROTO_STATUS_REPLY:
		dec_report(&r, &m->scrub_reply);
		break;
	case PROTO_MLEASE:
		dec_mlease(&r, &m->mlease);
		break;
	case PROTO_MLEASE_OK:
		dec_mlease_ok(&r, &m->mlease_ok);
		break;
	case PROTO_FENCE:
		dec_fence(&r, &m->fence);
		break;
	case PROTO_FENCE_OK:
		dec_fence_ok(&r, &m->fence_ok);
		break;
	case PROTO_PROCS:
		if (!m->procs.procs)
			return RTCMS_EINVAL;
		dec_procs(&r, &m->procs);
		break;
	default:
		return RTCMS_EPROTO;
	}
	if (r.err)
		return r.err;
	if (r.off != r.len)
		return RTCMS_EPROTO; /* trailing bytes */
	return (int)len;
}

/* ---- hashes ---------------------------------------------------------- */

void proto_chunk_hash(const uint8_t *data, size_t len,
		      uint8_t out[PROTO_HASH_SIZE])
{
	crypto_generichash(out, PROTO_HASH_SIZE, data, len, NULL, 0);
}

void proto_image_hash_init(struct proto_image_hash *h, uint64_t size)
{
	static const char tag[] = "rtcms-image-v1";
	uint8_t be[8];

	crypto_generichash_init(&h->state, NULL, 0, PROTO_HASH_SIZE);
	crypto_generichash_update(&h->state, (const uint8_t *)tag, sizeof(tag) - 1);
	put_be64(be, size);
	crypto_generichash_update(&h->state, be, sizeof(be));
	h->size = size;
	h->next_offset = 0;
}

int proto_image_hash_update(struct proto_image_hash *h, uint64_t offset,
			    uint32_t len, const uint8_t hash[PROTO_HASH_SIZE])
{
	uint8_t rec[12];

	if (offset != h->next_offset || len == 0 || len > PROTO_MAX_CHUNK ||
	    len > h->size - offset)
		return RTCMS_EPROTO;
	put_be64(rec, offset);
	put_be32(rec + 8, len);
	crypto_generichash_update(&h->state, rec, sizeof(rec));
	crypto_generichash_update(&h->state, hash, PROTO_HASH_SIZE);
	h->next_offset = offset + len;
	return 0;
}

int proto_image_hash_final(struct proto_image_hash *h,
			   uint8_t out[PROTO_HASH_SIZE])
{
	if (h->next_offset != h->size)
		return RTCMS_EPROTO;
	crypto_generichash_final(&h->state, out, PROTO_HASH_SIZE);
	return 0;
}
