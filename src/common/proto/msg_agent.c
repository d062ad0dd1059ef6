/*
 * msg_agent.c - the payloads between an agent and its managers:
 * registration (REGISTER, REGISTER_OK), checkpoints (CKPT_NOTIFY, PULL),
 * the info and restore interfaces (INFO, INFO_REPLY, RESTORE, RESTORE_OK),
 * a move's steps and a program's end (FREEZE, FROZEN, THAW, STOP, ADOPT,
 * EXITED, RESOLVE, RESOLVE_OK) and the agent's report (PROCS). Encode and
 * decode side by side; docs/protocol.md has the byte tables. Checkpoint
 * metadata and PULL (a GET) use msg_store.c's codecs.
 */
#include "msg_int.h"

/* ---- REGISTER, REGISTER_OK --------------------------------------------- */

static void enc_register(struct proto_wr *w, const union proto_msg *m)
{
	const struct proto_register *g = &m->reg;
	w_u64(w, g->node);
	w_str(w, g->name, PROTO_ID_MAX);
	w_str(w, g->address, PROTO_ADDR_MAX);
	w_u64(w, g->area_capacity);
	w_u64(w, g->mem_total);
	w_u32(w, g->quota_max);
	w_bytes(w, g->boot, PROTO_BOOT_SIZE);
	w_u32(w, g->data_key_id);
	w_u64(w, g->data_kcv);
}

static void dec_register(struct proto_rd *r, union proto_msg *m)
{
	struct proto_register *g = &m->reg;
	g->node = r_u64(r);
	r_str(r, g->name, PROTO_ID_MAX);
	r_str(r, g->address, PROTO_ADDR_MAX);
	g->area_capacity = r_u64(r);
	g->mem_total = r_u64(r);
	g->quota_max = r_u32(r);
	r_bytes(r, g->boot, PROTO_BOOT_SIZE);
	g->data_key_id = r_u32(r);
	g->data_kcv = r_u64(r);
}

static void enc_register_ok(struct proto_wr *w, const union proto_msg *m)
{
	const struct proto_register_ok *o = &m->reg_ok;
	w_str(w, o->name, PROTO_ID_MAX);
	w_u64(w, o->epoch);
	w_u32(w, o->heartbeat_ms);
	w_u32(w, o->lease_ms);
}

static void dec_register_ok(struct proto_rd *r, union proto_msg *m)
{
	struct proto_register_ok *o = &m->reg_ok;
	r_str(r, o->name, PROTO_ID_MAX);
	o->epoch = r_u64(r);
	o->heartbeat_ms = r_u32(r);
	o->lease_ms = r_u32(r);
}

/* ---- INFO_REPLY, RESTORE_OK --------------------------------------------- */

static void enc_info_reply(struct proto_wr *w, const union proto_msg *m)
{
	const struct proto_info_reply *i = &m->info;
	if (i->cpu_load_permille > 1000 || i->quota_free > i->quota_max) {
		w_fail(w, RTCMS_EINVAL);
		return;
	}
	w_u64(w, i->node);
	w_u64(w, i->mem_total);
	w_u64(w, i->mem_available);
	w_u16(w, i->cpu_load_permille);
	w_u32(w, i->quota_max);
	w_u32(w, i->quota_free);
	w_u64(w, i->area_capacity);
	w_u64(w, i->area_used);
	w_u32(w, i->processes);
}

static void dec_info_reply(struct proto_rd *r, union proto_msg *m)
{
	struct proto_info_reply *i = &m->info;
	i->node = r_u64(r);
	i->mem_total = r_u64(r);
	i->mem_available = r_u64(r);
	i->cpu_load_permille = r_u16(r);
	i->quota_max = r_u32(r);
	i->quota_free = r_u32(r);
	i->area_capacity = r_u64(r);
	i->area_used = r_u64(r);
	i->processes = r_u32(r);
	r_check(r, i->cpu_load_permille <= 1000 && i->quota_free <= i->quota_max);
}

static void enc_restore_ok(struct proto_wr *w, const union proto_msg *m)
{
	const struct proto_restore_ok *o = &m->restore_ok;
	w_process(w, o->process, false);
	w_u64(w, o->incarnation);
	w_u64(w, o->sequence);
	w_u32(w, o->pid);
}

static void dec_restore_ok(struct proto_rd *r, union proto_msg *m)
{
	struct proto_restore_ok *o = &m->restore_ok;
	r_process(r, o->process, false);
	o->incarnation = r_u64(r);
	o->sequence = r_u64(r);
	o->pid = r_u32(r);
}

/* ---- process reference: FREEZE, THAW, STOP, ADOPT, EXITED, RESOLVE(_OK) */

static void enc_ref(struct proto_wr *w, const union proto_msg *m)
{
	w_process(w, m->ref.process, false);
	w_u64(w, m->ref.incarnation);
	w_u32(w, m->ref.arg);
}

static void dec_ref(struct proto_rd *r, union proto_msg *m)
{
	r_process(r, m->ref.process, false);
	m->ref.incarnation = r_u64(r);
	m->ref.arg = r_u32(r);
}

/* ---- PROCS --------------------------------------------------------------- */

static void enc_procs(struct proto_wr *w, const union proto_msg *m)
{
	const struct proto_procs *p = &m->procs;
	if (p->count > PROTO_PROCS_MAX || (p->count && !p->procs)) {
		w_fail(w, RTCMS_EINVAL);
		return;
	}
	w_u64(w, p->node);
	w_bytes(w, p->boot, PROTO_BOOT_SIZE);
	w_u64(w, p->generation);
	w_u16(w, p->count);
	for (uint16_t i = 0; i < p->count; i++) {
		const struct proto_agent_proc *e = &p->procs[i];
		if (e->state < PROTO_AP_RUNNING || e->state > PROTO_AP_FAILED) {
			w->err = RTCMS_EINVAL; /* even after an ETOOBIG */
			return;
		}
		w_process(w, e->process, false);
		w_u64(w, e->incarnation);
		w_u64(w, e->sequence);
		w_u32(w, e->pid);
		w_u8(w, e->state);
		w_u32(w, e->restarts);
		w_str(w, e->reason, PROTO_ID_MAX);
	}
}

static void dec_procs(struct proto_rd *r, union proto_msg *m)
{
	struct proto_procs *p = &m->procs;
	if (!p->procs) {
		r->err = RTCMS_EINVAL;
		return;
	}
	p->node = r_u64(r);
	r_bytes(r, p->boot, PROTO_BOOT_SIZE);
	p->generation = r_u64(r);
	p->count = r_u16(r);
	r_check(r, p->count <= PROTO_PROCS_MAX && p->node != 0);
	for (uint16_t i = 0; i < p->count && !r->err; i++) {
		struct proto_agent_proc *e = &p->procs[i];
		r_process(r, e->process, false);
		e->incarnation = r_u64(r);
		e->sequence = r_u64(r);
		e->pid = r_u32(r);
		e->state = r_u8(r);
		r_check(r, e->state >= PROTO_AP_RUNNING && e->state <= PROTO_AP_FAILED);
		e->restarts = r_u32(r);
		r_str(r, e->reason, PROTO_ID_MAX);
	}
}

const struct proto_codec proto_codecs_agent[] = {
	{ PROTO_REGISTER, "REGISTER", 1024, enc_register, dec_register },
	{ PROTO_REGISTER_OK, "REGISTER_OK", 1024, enc_register_ok, dec_register_ok },
	{ PROTO_CKPT_NOTIFY, "CKPT_NOTIFY", 17408, proto_meta_encode, proto_meta_decode },
	{ PROTO_INFO, "INFO", 0, NULL, NULL },
	{ PROTO_INFO_REPLY, "INFO_REPLY", 1024, enc_info_reply, dec_info_reply },
	{ PROTO_RESTORE, "RESTORE", 17408, proto_meta_encode, proto_meta_decode },
	{ PROTO_RESTORE_OK, "RESTORE_OK", 1024, enc_restore_ok, dec_restore_ok },
	{ PROTO_PULL, "PULL", 1024, proto_get_encode, proto_pull_decode },
	{ PROTO_EXITED, "EXITED", 1024, enc_ref, dec_ref },
	{ PROTO_RESOLVE, "RESOLVE", 1024, enc_ref, dec_ref },
	{ PROTO_RESOLVE_OK, "RESOLVE_OK", 1024, enc_ref, dec_ref },
	{ PROTO_FREEZE, "FREEZE", 1024, enc_ref, dec_ref },
	{ PROTO_FROZEN, "FROZEN", 17408, proto_meta_encode, proto_meta_decode },
	{ PROTO_THAW, "THAW", 1024, enc_ref, dec_ref },
	{ PROTO_STOP, "STOP", 1024, enc_ref, dec_ref },
	{ PROTO_ADOPT, "ADOPT", 1024, enc_ref, dec_ref },
	{ PROTO_PROCS, "PROCS", 81920, enc_procs, dec_procs },
};
const size_t proto_codecs_agent_n =
	sizeof(proto_codecs_agent) / sizeof(proto_codecs_agent[0]);
