/*
 * msg_manager.c - the operator's requests to a manager and their replies:
 * MIGRATE, RUN (also manager -> agent), DRAIN, NODE_FAILED, CORDON,
 * UNCORDON, FORGET and MSTATUS. Encode and decode side by side;
 * docs/protocol.md has the byte tables.
 */
#include "msg_int.h"

/* ---- MIGRATE, MIGRATE_OK ---------------------------------------------------- */

static void enc_migrate(struct proto_wr *w, const union proto_msg *m)
{
	w_process(w, m->migrate.process, false);
	w_u64(w, m->migrate.target);
	w_u8(w, m->migrate.allow_same ? 1 : 0);
}

static void dec_migrate(struct proto_rd *r, union proto_msg *m)
{
	r_process(r, m->migrate.process, false);
	m->migrate.target = r_u64(r);
	m->migrate.allow_same = r_u8(r);
	r_check(r, m->migrate.allow_same <= 1);
}

static void enc_migrate_ok(struct proto_wr *w, const union proto_msg *m)
{
	const struct proto_migrate_ok *o = &m->migrate_ok;
	w_process(w, o->process, false);
	w_u64(w, o->from);
	w_u64(w, o->to);
	w_u64(w, o->incarnation);
	w_u64(w, o->sequence);
	w_u32(w, o->millis);
}

static void dec_migrate_ok(struct proto_rd *r, union proto_msg *m)
{
	struct proto_migrate_ok *o = &m->migrate_ok;
	r_process(r, o->process, false);
	o->from = r_u64(r);
	o->to = r_u64(r);
	o->incarnation = r_u64(r);
	o->sequence = r_u64(r);
	o->millis = r_u32(r);
}

/* ---- RUN, RUN_OK ------------------------------------------------------------- */

static void enc_run(struct proto_wr *w, const union proto_msg *m)
{
	const struct proto_run *u = &m->run;
	if (u->spec_len == 0) {
		w_fail(w, RTCMS_EINVAL);
		return;
	}
	if (u->spec_len > PROTO_SPEC_MAX) {
		w_fail(w, RTCMS_ETOOBIG);
		return;
	}
	w_process(w, u->process, false);
	w_u64(w, u->node);
	w_u32(w, u->spec_len);
	w_bytes(w, u->spec, u->spec_len);
}

static void dec_run(struct proto_rd *r, union proto_msg *m)
{
	struct proto_run *u = &m->run;
	r_process(r, u->process, false);
	u->node = r_u64(r);
	u->spec_len = r_u32(r);
	if (!r->err && u->spec_len > PROTO_SPEC_MAX) {
		r->err = RTCMS_ETOOBIG;
		return;
	}
	r_check(r, u->spec_len >= 1);
	u->spec = r_take(r, u->spec_len);
}

static void enc_run_ok(struct proto_wr *w, const union proto_msg *m)
{
	const struct proto_run_ok *o = &m->run_ok;
	w_process(w, o->process, false);
	w_u64(w, o->node);
	w_u64(w, o->incarnation);
	w_u32(w, o->pid);
}

static void dec_run_ok(struct proto_rd *r, union proto_msg *m)
{
	struct proto_run_ok *o = &m->run_ok;
	r_process(r, o->process, false);
	o->node = r_u64(r);
	o->incarnation = r_u64(r);
	o->pid = r_u32(r);
}

/* ---- a node: DRAIN, NODE_FAILED, CORDON, UNCORDON; DRAIN_OK ------------ */

static void enc_node(struct proto_wr *w, const union proto_msg *m)
{
	w_u64(w, m->drain.node);
}

static void dec_node(struct proto_rd *r, union proto_msg *m)
{
	m->drain.node = r_u64(r);
}

static void enc_drain_ok(struct proto_wr *w, const union proto_msg *m)
{
	w_u32(w, m->drain_ok.moved);
	w_u32(w, m->drain_ok.failed);
}

static void dec_drain_ok(struct proto_rd *r, union proto_msg *m)
{
	m->drain_ok.moved = r_u32(r);
	m->drain_ok.failed = r_u32(r);
}

/* ---- FORGET, FORGET_OK --------------------------------------------------------- */

static void enc_forget(struct proto_wr *w, const union proto_msg *m)
{
	if (m->forget.kind > PROTO_FORGET_PROCESS) {
		w_fail(w, RTCMS_EINVAL);
		return;
	}
	w_u8(w, m->forget.kind);
	w_process(w, m->forget.name, false);
}

static void dec_forget(struct proto_rd *r, union proto_msg *m)
{
	m->forget.kind = r_u8(r);
	r_check(r, m->forget.kind <= PROTO_FORGET_PROCESS);
	r_process(r, m->forget.name, false);
}

static void enc_forget_ok(struct proto_wr *w, const union proto_msg *m)
{
	const struct proto_forget_ok *o = &m->forget_ok;
	if (o->kind != PROTO_FORGET_NODE && o->kind != PROTO_FORGET_PROCESS) {
		w_fail(w, RTCMS_EINVAL);
		return;
	}
	w_u8(w, o->kind);
	w_u64(w, o->node);
	w_process(w, o->process, true);
	w_u8(w, o->deleted ? 1 : 0);
}

static void dec_forget_ok(struct proto_rd *r, union proto_msg *m)
{
	struct proto_forget_ok *o = &m->forget_ok;
	o->kind = r_u8(r);
	r_check(r, o->kind == PROTO_FORGET_NODE || o->kind == PROTO_FORGET_PROCESS);
	o->node = r_u64(r);
	r_process(r, o->process, true);
	o->deleted = r_u8(r);
	r_check(r, o->deleted <= 1);
}

/* ---- MSTATUS_REPLY: the manager, its nodes, its processes -------------- */

static void enc_node_entry(struct proto_wr *w, const struct proto_node_entry *n)
{
	if (n->cpu_load_permille > 1000 || n->quota_free > n->quota_max) {
		w_fail(w, RTCMS_EINVAL);
		return;
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

static void dec_node_entry(struct proto_rd *r, struct proto_node_entry *n)
{
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

static void enc_proc_entry(struct proto_wr *w, const struct proto_proc_entry *p)
{
	if (p->state < PROTO_PS_RUNNING || p->state > PROTO_PS_FAILED) {
		w_fail(w, RTCMS_EINVAL);
		return;
	}
	w_process(w, p->process, false);
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

static void dec_proc_entry(struct proto_rd *r, struct proto_proc_entry *p)
{
	r_process(r, p->process, false);
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

static void enc_mstatus(struct proto_wr *w, const union proto_msg *m)
{
	const struct proto_mstatus_reply *s = &m->mstatus;
	w_str(w, s->name, PROTO_ID_MAX);
	w_str(w, s->store, PROTO_ADDR_MAX);
	w_u8(w, s->store_up ? 1 : 0);
	w_u32(w, s->pending);
	w_str(w, s->store_error, PROTO_TEXT_MAX);
	if (s->node_count > PROTO_NODES_MAX || s->proc_count > PROTO_PROCS_MAX)
		w_fail(w, RTCMS_ETOOBIG);
	w_u16(w, s->node_count);
	for (uint16_t i = 0; i < s->node_count && !w->err; i++)
		enc_node_entry(w, &s->nodes[i]);
	w_u16(w, s->proc_count);
	for (uint16_t i = 0; i < s->proc_count && !w->err; i++)
		enc_proc_entry(w, &s->procs[i]);
}

static void dec_mstatus(struct proto_rd *r, union proto_msg *m)
{
	struct proto_mstatus_reply *s = &m->mstatus;
	if (!s->nodes || !s->procs) {
		r->err = RTCMS_EINVAL;
		return;
	}
	r_str(r, s->name, PROTO_ID_MAX);
	r_str(r, s->store, PROTO_ADDR_MAX);
	s->store_up = r_u8(r);
	r_check(r, s->store_up <= 1);
	s->pending = r_u32(r);
	r_str(r, s->store_error, PROTO_TEXT_MAX);
	s->node_count = r_u16(r);
	if (!r->err && s->node_count > PROTO_NODES_MAX) {
		r->err = RTCMS_ETOOBIG;
		return;
	}
	for (uint16_t i = 0; i < s->node_count && !r->err; i++)
		dec_node_entry(r, &s->nodes[i]);
	s->proc_count = r_u16(r);
	if (!r->err && s->proc_count > PROTO_PROCS_MAX) {
		r->err = RTCMS_ETOOBIG;
		return;
	}
	for (uint16_t i = 0; i < s->proc_count && !r->err; i++)
		dec_proc_entry(r, &s->procs[i]);
}

const struct proto_codec proto_codecs_manager[] = {
	{ PROTO_MIGRATE, "MIGRATE", 1024, enc_migrate, dec_migrate },
	{ PROTO_MIGRATE_OK, "MIGRATE_OK", 1024, enc_migrate_ok, dec_migrate_ok },
	{ PROTO_RUN, "RUN", 17408, enc_run, dec_run },
	{ PROTO_RUN_OK, "RUN_OK", 1024, enc_run_ok, dec_run_ok },
	{ PROTO_DRAIN, "DRAIN", 8, enc_node, dec_node },
	{ PROTO_DRAIN_OK, "DRAIN_OK", 8, enc_drain_ok, dec_drain_ok },
	{ PROTO_NODE_FAILED, "NODE_FAILED", 8, enc_node, dec_node },
	{ PROTO_CORDON, "CORDON", 8, enc_node, dec_node },
	{ PROTO_UNCORDON, "UNCORDON", 8, enc_node, dec_node },
	{ PROTO_FORGET, "FORGET", 1024, enc_forget, dec_forget },
	{ PROTO_FORGET_OK, "FORGET_OK", 1024, enc_forget_ok, dec_forget_ok },
	{ PROTO_MSTATUS, "MSTATUS", 0, NULL, NULL },
	{ PROTO_MSTATUS_REPLY, "MSTATUS_REPLY", 131072, enc_mstatus, dec_mstatus },
};
const size_t proto_codecs_manager_n =
	sizeof(proto_codecs_manager) / sizeof(proto_codecs_manager[0]);
