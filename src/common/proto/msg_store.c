/*
 * msg_store.c - the store's payloads: PUT and GET streams, LIST, DELETE,
 * claims (CLAIM, COMMIT, RELEASE), SCRUB and STATUS, manager leases and
 * node fences (MLEASE, FENCE), data keys (DATAKEY, KEYS). Encode and decode side by side;
 * docs/protocol.md has the byte tables. The checkpoint metadata and GET
 * codecs are shared with the agent's messages (msg_int.h).
 */
#include "msg_int.h"

/* ---- checkpoint metadata: PUT_BEGIN, GET_META (and msg_agent.c's) ---- */

/* size and chunk count agree: every chunk holds 1..PROTO_MAX_CHUNK bytes */
static bool meta_consistent(const struct proto_ckpt_meta *m)
{
	if (m->incarnation == 0 || m->sequence == 0 || m->base >= m->sequence ||
	    (m->base == 0 && m->full_size != 0 && m->full_size != m->size))
		return false;
	if (m->size == 0)
		return m->chunk_count == 0;
	return m->chunk_count >= 1 && m->chunk_count <= m->size &&
	       m->size <= (uint64_t)m->chunk_count * PROTO_MAX_CHUNK;
}

void proto_meta_encode(struct proto_wr *w, const union proto_msg *msg)
{
	const struct proto_ckpt_meta *m = &msg->meta;
	if (!meta_consistent(m)) {
		w_fail(w, RTCMS_EINVAL);
		return;
	}
	w_process(w, m->process, false);
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
	if (m->spec_len > PROTO_SPEC_MAX)
		w_fail(w, RTCMS_ETOOBIG);
	w_u32(w, m->spec_len);
	w_bytes(w, m->spec, m->spec_len);
}

void proto_meta_decode(struct proto_rd *r, union proto_msg *msg)
{
	struct proto_ckpt_meta *m = &msg->meta;
	r_process(r, m->process, false);
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

/* ---- PUT_END, PUT_ACK -------------------------------------------------- */

static void enc_put_end(struct proto_wr *w, const union proto_msg *m)
{
	w_u32(w, m->put_end.chunk_count);
}

static void dec_put_end(struct proto_rd *r, union proto_msg *m)
{
	m->put_end.chunk_count = r_u32(r);
}

static void enc_put_ack(struct proto_wr *w, const union proto_msg *m)
{
	const struct proto_put_ack *a = &m->put_ack;
	w_process(w, a->process, false);
	w_u64(w, a->incarnation);
	w_u64(w, a->sequence);
	w_u64(w, a->size);
	w_bytes(w, a->hash, PROTO_HASH_SIZE);
	w_u8(w, a->copies);
	w_u8(w, a->existed ? 1 : 0);
	w_u32(w, a->depth);
}

static void dec_put_ack(struct proto_rd *r, union proto_msg *m)
{
	struct proto_put_ack *a = &m->put_ack;
	r_process(r, a->process, false);
	a->incarnation = r_u64(r);
	a->sequence = r_u64(r);
	a->size = r_u64(r);
	r_bytes(r, a->hash, PROTO_HASH_SIZE);
	a->copies = r_u8(r);
	a->existed = r_u8(r);
	a->depth = r_u32(r);
	r_check(r, a->existed <= 1);
}

/* ---- GET (and msg_agent.c's PULL), GET_END ------------------------------ */

void proto_get_encode(struct proto_wr *w, const union proto_msg *m)
{
	const struct proto_get *g = &m->get;
	w_process(w, g->process, false);
	w_u64(w, g->incarnation);
	w_u64(w, g->sequence);
	w_u8(w, g->meta_only ? 1 : 0);
	w_u64(w, g->base);
}

static void get_decode(struct proto_rd *r, struct proto_get *g, bool delta_ok)
{
	r_process(r, g->process, false);
	g->incarnation = r_u64(r);
	g->sequence = r_u64(r);
	g->meta_only = r_u8(r);
	g->base = r_u64(r);
	r_check(r, g->meta_only <= 1 && (delta_ok || g->base == 0));
}

void proto_get_decode(struct proto_rd *r, union proto_msg *m)
{
	get_decode(r, &m->get, false);
}

void proto_pull_decode(struct proto_rd *r, union proto_msg *m)
{
	get_decode(r, &m->get, true);
}

static void enc_get_end(struct proto_wr *w, const union proto_msg *m)
{
	w_u32(w, m->get_end.chunk_count);
	w_u32(w, m->get_end.repaired);
}

static void dec_get_end(struct proto_rd *r, union proto_msg *m)
{
	m->get_end.chunk_count = r_u32(r);
	m->get_end.repaired = r_u32(r);
}

/* ---- LIST, LIST_REPLY, DELETE --------------------------------------------- */

static void enc_list(struct proto_wr *w, const union proto_msg *m)
{
	const struct proto_list *l = &m->list;
	if (l->limit == 0 || l->limit > PROTO_LIST_MAX) {
		w_fail(w, RTCMS_EINVAL);
		return;
	}
	w_u64(w, l->node);
	w_process(w, l->process, true);
	w_u32(w, l->offset);
	w_u16(w, l->limit);
}

static void dec_list(struct proto_rd *r, union proto_msg *m)
{
	struct proto_list *l = &m->list;
	l->node = r_u64(r);
	r_process(r, l->process, true);
	l->offset = r_u32(r);
	l->limit = r_u16(r);
	r_check(r, l->limit >= 1 && l->limit <= PROTO_LIST_MAX);
}

static void enc_list_reply(struct proto_wr *w, const union proto_msg *m)
{
	const struct proto_list_reply *l = &m->list_reply;
	if (l->count > PROTO_LIST_MAX) {
		w_fail(w, RTCMS_ETOOBIG);
		return;
	}
	w_u16(w, l->count);
	for (uint16_t k = 0; k < l->count && !w->err; k++) {
		const struct proto_list_entry *e = &l->entries[k];
		w_process(w, e->process, false);
		w_u64(w, e->incarnation);
		w_u64(w, e->sequence);
		w_u64(w, e->node);
		w_u64(w, e->size);
		w_u64(w, e->created_ms);
		w_bytes(w, e->hash, PROTO_HASH_SIZE);
		w_u8(w, e->claimed ? 1 : 0);
	}
}

static void dec_list_reply(struct proto_rd *r, union proto_msg *m)
{
	struct proto_list_reply *l = &m->list_reply;
	uint16_t n = r_u16(r);
	if (!r->err && n > PROTO_LIST_MAX) {
		r->err = RTCMS_ETOOBIG;
		return;
	}
	if (!l->entries) {
		r->err = RTCMS_EINVAL; /* the caller's mistake outranks the input's */
		return;
	}
	l->count = n;
	for (uint16_t k = 0; k < n && !r->err; k++) {
		struct proto_list_entry *e = &l->entries[k];
		r_process(r, e->process, false);
		e->incarnation = r_u64(r);
		e->sequence = r_u64(r);
		e->node = r_u64(r);
		e->size = r_u64(r);
		e->created_ms = r_u64(r);
		r_bytes(r, e->hash, PROTO_HASH_SIZE);
		e->claimed = r_u8(r);
		r_check(r, e->claimed <= 1);
	}
}

static void enc_delete(struct proto_wr *w, const union proto_msg *m)
{
	const struct proto_delete *d = &m->del;
	if ((d->incarnation == 0) != (d->sequence == 0)) {
		w_fail(w, RTCMS_EINVAL);
		return;
	}
	w_process(w, d->process, false);
	w_u64(w, d->incarnation);
	w_u64(w, d->sequence);
}

static void dec_delete(struct proto_rd *r, union proto_msg *m)
{
	struct proto_delete *d = &m->del;
	r_process(r, d->process, false);
	d->incarnation = r_u64(r);
	d->sequence = r_u64(r);
	r_check(r, (d->incarnation == 0) == (d->sequence == 0));
}

/* ---- claims: CLAIM, CLAIM_OK, COMMIT, COMMIT_OK, RELEASE ------------------ */

static void enc_claim(struct proto_wr *w, const union proto_msg *m)
{
	const struct proto_claim *c = &m->claim;
	if (c->claimant[0] == '\0' || c->lease_ms == 0 || c->lease_ms > 3600000 ||
	    (c->flags & ~PROTO_CLAIM_F_GAVE_UP)) {
		w_fail(w, RTCMS_EINVAL);
		return;
	}
	w_process(w, c->process, false);
	w_str(w, c->claimant, PROTO_ID_MAX);
	w_u32(w, c->lease_ms);
	w_u8(w, c->flags);
}

static void dec_claim(struct proto_rd *r, union proto_msg *m)
{
	struct proto_claim *c = &m->claim;
	r_process(r, c->process, false);
	r_str(r, c->claimant, PROTO_ID_MAX);
	c->lease_ms = r_u32(r);
	c->flags = r_u8(r);
	r_check(r, c->claimant[0] != '\0' && c->lease_ms >= 1 &&
		   c->lease_ms <= 3600000 && !(c->flags & ~PROTO_CLAIM_F_GAVE_UP));
}

static void enc_claim_ok(struct proto_wr *w, const union proto_msg *m)
{
	const struct proto_claim_ok *c = &m->claim_ok;
	w_process(w, c->process, false);
	w_u64(w, c->claim_id);
	w_u64(w, c->incarnation);
	w_u64(w, c->sequence);
	w_u64(w, c->node);
	w_u64(w, c->expires_ms);
}

static void dec_claim_ok(struct proto_rd *r, union proto_msg *m)
{
	struct proto_claim_ok *c = &m->claim_ok;
	r_process(r, c->process, false);
	c->claim_id = r_u64(r);
	c->incarnation = r_u64(r);
	c->sequence = r_u64(r);
	c->node = r_u64(r);
	c->expires_ms = r_u64(r);
}

static void enc_commit(struct proto_wr *w, const union proto_msg *m)
{
	w_process(w, m->commit.process, false);
	w_u64(w, m->commit.claim_id);
	w_u64(w, m->commit.new_node);
}

static void dec_commit(struct proto_rd *r, union proto_msg *m)
{
	r_process(r, m->commit.process, false);
	m->commit.claim_id = r_u64(r);
	m->commit.new_node = r_u64(r);
}

static void enc_commit_ok(struct proto_wr *w, const union proto_msg *m)
{
	w_process(w, m->commit_ok.process, false);
	w_u64(w, m->commit_ok.incarnation);
	w_u64(w, m->commit_ok.node);
}

static void dec_commit_ok(struct proto_rd *r, union proto_msg *m)
{
	r_process(r, m->commit_ok.process, false);
	m->commit_ok.incarnation = r_u64(r);
	m->commit_ok.node = r_u64(r);
}

static void enc_release(struct proto_wr *w, const union proto_msg *m)
{
	w_process(w, m->release.process, false);
	w_u64(w, m->release.claim_id);
}

static void dec_release(struct proto_rd *r, union proto_msg *m)
{
	r_process(r, m->release.process, false);
	m->release.claim_id = r_u64(r);
}

/* ---- SCRUB, SCRUB_REPLY, STATUS_REPLY ---------------------------------- */

static void enc_scrub(struct proto_wr *w, const union proto_msg *m)
{
	w_u8(w, m->scrub.repair ? 1 : 0);
}

static void dec_scrub(struct proto_rd *r, union proto_msg *m)
{
	m->scrub.repair = r_u8(r);
	r_check(r, m->scrub.repair <= 1);
}

static void enc_report(struct proto_wr *w, const union proto_msg *m)
{
	const struct proto_scrub_reply *s = &m->scrub_reply;
	w_u64(w, s->processes);
	w_u64(w, s->checkpoints);
	w_u64(w, s->chunks);
	w_u64(w, s->bytes);
	w_u32(w, s->unrepairable);
	if (s->mirror_count > PROTO_MIRRORS_MAX)
		w_fail(w, RTCMS_ETOOBIG);
	w_u8(w, s->mirror_count);
	for (int i = 0; i < s->mirror_count && !w->err; i++) {
		const struct proto_mirror_report *mr = &s->mirrors[i];
		w_str(w, mr->path, PROTO_TEXT_MAX);
		w_u8(w, mr->online ? 1 : 0);
		w_u64(w, mr->chunks);
		w_u64(w, mr->bytes);
		w_u32(w, mr->missing);
		w_u32(w, mr->corrupt);
		w_u32(w, mr->repaired);
	}
}

static void dec_report(struct proto_rd *r, union proto_msg *m)
{
	struct proto_scrub_reply *s = &m->scrub_reply;
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
		struct proto_mirror_report *mr = &s->mirrors[i];
		r_str(r, mr->path, PROTO_TEXT_MAX);
		mr->online = r_u8(r);
		r_check(r, mr->online <= 1);
		mr->chunks = r_u64(r);
		mr->bytes = r_u64(r);
		mr->missing = r_u32(r);
		mr->corrupt = r_u32(r);
		mr->repaired = r_u32(r);
	}
}

/* ---- manager leases and node fences: MLEASE, MLEASE_OK, FENCE, FENCE_OK */

static void enc_mlease(struct proto_wr *w, const union proto_msg *m)
{
	const struct proto_mlease *l = &m->mlease;
	if (l->alive_count > PROTO_NODES_MAX) {
		w_fail(w, RTCMS_EINVAL);
		return;
	}
	w_str(w, l->name, PROTO_ID_MAX);
	w_u32(w, l->lease_ms);
	w_u64(w, l->fence_gen);
	w_u16(w, l->alive_count);
	for (uint16_t i = 0; i < l->alive_count; i++)
		w_u64(w, l->alive[i]);
}

static void dec_mlease(struct proto_rd *r, union proto_msg *m)
{
	struct proto_mlease *l = &m->mlease;
	r_str(r, l->name, PROTO_ID_MAX);
	r_check(r, l->name[0] != '\0');
	l->lease_ms = r_u32(r);
	l->fence_gen = r_u64(r);
	l->alive_count = r_u16(r);
	r_check(r, l->alive_count <= PROTO_NODES_MAX);
	for (uint16_t i = 0; i < l->alive_count && !r->err; i++)
		l->alive[i] = r_u64(r);
}

static void enc_mlease_ok(struct proto_wr *w, const union proto_msg *m)
{
	const struct proto_mlease_ok *o = &m->mlease_ok;
	if (o->fence_count > PROTO_NODES_MAX || o->manager_count > PROTO_MANAGERS_MAX) {
		w_fail(w, RTCMS_EINVAL);
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

static void dec_mlease_ok(struct proto_rd *r, union proto_msg *m)
{
	struct proto_mlease_ok *o = &m->mlease_ok;
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

static void enc_fence(struct proto_wr *w, const union proto_msg *m)
{
	w_u64(w, m->fence.node);
	w_str(w, m->fence.by, PROTO_ID_MAX);
	w_u32(w, m->fence.hold_ms);
}

static void dec_fence(struct proto_rd *r, union proto_msg *m)
{
	struct proto_fence *f = &m->fence;
	f->node = r_u64(r);
	r_str(r, f->by, PROTO_ID_MAX);
	f->hold_ms = r_u32(r);
	r_check(r, f->node != 0 && f->by[0] != '\0');
}

static void enc_fence_ok(struct proto_wr *w, const union proto_msg *m)
{
	const struct proto_fence_ok *f = &m->fence_ok;
	w_u64(w, f->node);
	w_u64(w, f->gen);
	w_u8(w, f->state);
	w_u32(w, f->wait_ms);
}

static void dec_fence_ok(struct proto_rd *r, union proto_msg *m)
{
	struct proto_fence_ok *f = &m->fence_ok;
	f->node = r_u64(r);
	f->gen = r_u64(r);
	f->state = r_u8(r);
	f->wait_ms = r_u32(r);
	r_check(r, f->state >= PROTO_FENCE_PENDING && f->state <= PROTO_FENCE_COMPLETE);
}

/* ---- DATAKEY, DATAKEY_OK: a data key's check value ---------------------- */

static void enc_datakey(struct proto_wr *w, const union proto_msg *m)
{
	w_u32(w, m->datakey.key_id);
	w_u64(w, m->datakey.kcv);
	w_u8(w, m->datakey.first);
}

static void dec_datakey(struct proto_rd *r, union proto_msg *m)
{
	struct proto_datakey *d = &m->datakey;
	d->key_id = r_u32(r);
	d->kcv = r_u64(r);
	d->first = r_u8(r);
	r_check(r, d->key_id != 0 && d->first <= 1);
}

/* ---- KEYS, KEYS_REPLY: chunks per data key id ---------------------------- */

static void enc_keys(struct proto_wr *w, const union proto_msg *m)
{
	w_u32(w, m->keys.from);
}

static void dec_keys(struct proto_rd *r, union proto_msg *m)
{
	m->keys.from = r_u32(r);
}

static void enc_keys_reply(struct proto_wr *w, const union proto_msg *m)
{
	const struct proto_keys_reply *k = &m->keys_reply;
	if (k->count > PROTO_KEYS_MAX) {
		w_fail(w, RTCMS_EINVAL);
		return;
	}
	w_u64(w, k->unknown_chunks);
	w_u64(w, k->unknown_bytes);
	w_u16(w, k->count);
	for (uint16_t i = 0; i < k->count; i++) {
		if (i > 0 && k->keys[i].key_id <= k->keys[i - 1].key_id)
			w_fail(w, RTCMS_EINVAL);
		w_u32(w, k->keys[i].key_id);
		w_u64(w, k->keys[i].chunks);
		w_u64(w, k->keys[i].bytes);
	}
}

static void dec_keys_reply(struct proto_rd *r, union proto_msg *m)
{
	struct proto_keys_reply *k = &m->keys_reply;
	k->unknown_chunks = r_u64(r);
	k->unknown_bytes = r_u64(r);
	k->count = r_u16(r);
	if (!r->err && k->count > PROTO_KEYS_MAX) {
		r->err = RTCMS_ETOOBIG;
		return;
	}
	for (uint16_t i = 0; i < k->count && !r->err; i++) {
		k->keys[i].key_id = r_u32(r);
		k->keys[i].chunks = r_u64(r);
		k->keys[i].bytes = r_u64(r);
		r_check(r, i == 0 || k->keys[i].key_id > k->keys[i - 1].key_id);
	}
}

const struct proto_codec proto_codecs_store[] = {
	{ PROTO_PUT_BEGIN, "PUT_BEGIN", 17408, proto_meta_encode, proto_meta_decode },
	{ PROTO_PUT_READY, "PUT_READY", 0, NULL, NULL },
	{ PROTO_PUT_END, "PUT_END", 4, enc_put_end, dec_put_end },
	{ PROTO_PUT_ACK, "PUT_ACK", 1024, enc_put_ack, dec_put_ack },
	{ PROTO_GET, "GET", 1024, proto_get_encode, proto_get_decode },
	{ PROTO_GET_META, "GET_META", 17408, proto_meta_encode, proto_meta_decode },
	{ PROTO_GET_END, "GET_END", 8, enc_get_end, dec_get_end },
	{ PROTO_LIST, "LIST", 1024, enc_list, dec_list },
	{ PROTO_LIST_REPLY, "LIST_REPLY", 65536, enc_list_reply, dec_list_reply },
	{ PROTO_DELETE, "DELETE", 1024, enc_delete, dec_delete },
	{ PROTO_CLAIM, "CLAIM", 1024, enc_claim, dec_claim },
	{ PROTO_CLAIM_OK, "CLAIM_OK", 1024, enc_claim_ok, dec_claim_ok },
	{ PROTO_COMMIT, "COMMIT", 1024, enc_commit, dec_commit },
	{ PROTO_COMMIT_OK, "COMMIT_OK", 1024, enc_commit_ok, dec_commit_ok },
	{ PROTO_RELEASE, "RELEASE", 1024, enc_release, dec_release },
	{ PROTO_SCRUB, "SCRUB", 1, enc_scrub, dec_scrub },
	{ PROTO_SCRUB_REPLY, "SCRUB_REPLY", 16384, enc_report, dec_report },
	{ PROTO_STATUS, "STATUS", 0, NULL, NULL },
	{ PROTO_STATUS_REPLY, "STATUS_REPLY", 16384, enc_report, dec_report },
	{ PROTO_MLEASE, "MLEASE", 1024, enc_mlease, dec_mlease },
	{ PROTO_MLEASE_OK, "MLEASE_OK", 4096, enc_mlease_ok, dec_mlease_ok },
	{ PROTO_FENCE, "FENCE", 1024, enc_fence, dec_fence },
	{ PROTO_FENCE_OK, "FENCE_OK", 64, enc_fence_ok, dec_fence_ok },
	{ PROTO_DATAKEY, "DATAKEY", 16, enc_datakey, dec_datakey },
	{ PROTO_DATAKEY_OK, "DATAKEY_OK", 16, enc_datakey, dec_datakey },
	{ PROTO_KEYS, "KEYS", 4, enc_keys, dec_keys },
	{ PROTO_KEYS_REPLY, "KEYS_REPLY", 8192, enc_keys_reply, dec_keys_reply },
};
const size_t proto_codecs_store_n =
	sizeof(proto_codecs_store) / sizeof(proto_codecs_store[0]);
