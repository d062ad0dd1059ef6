/*
 * handlers.c - rtcms-agent's interfaces (handlers.h), one request at a
 * time on a connection thread: each decoded request goes to its module
 * and its answer is encoded here. Info (INFO: info.c), the report
 * (PROCS: proc.c), checkpoint service (PULL: pull.c), launch (RUN:
 * launch.c), restore (RESTORE + ADOPT: restore.c), migration (FREEZE,
 * THAW, STOP: freeze.c).
 */
#include "handlers.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent_int.h"
#include "freeze.h"
#include "info.h"
#include "launch.h"
#include "log/log.h"
#include "peer.h"
#include "proc.h"
#include "pull.h"
#include "restore.h"
#include "rtcms_error.h"

static enum rpc_result handle_info(struct agent *a, struct net_client *c,
				   const struct proto_header *hdr)
{
	union proto_msg m;
	info_fill(a, &m.info);
	return rpc_sent(net_client_reply(c, PROTO_INFO_REPLY, 0, hdr->request, &m));
}

/* PROCS from a manager is a question: which programs does this node hold?
 * The answer is the same report the outbox sends. */
static enum rpc_result handle_procs(struct agent *a, struct net_client *c,
				    const struct proto_header *hdr)
{
	struct proto_agent_proc *procs = calloc(PROTO_PROCS_MAX, sizeof(*procs));
	union proto_msg m;

	if (!procs)
		return rpc_reply_error(c, hdr, RTCMS_ENOMEM, "no memory for the report");
	proc_report_msg(a, procs, &m.procs);
	enum rpc_result res = rpc_sent(net_client_reply(c, PROTO_PROCS, 0, hdr->request, &m));
	free(procs);
	return res;
}

static enum rpc_result handle_pull(struct agent *a, struct net_client *c, const char *who,
				   const struct proto_header *hdr, const struct proto_get *g)
{
	struct agent_peer peer = peer_of_client(c);
	return pull_serve(a, &peer, who, hdr->request, g) == PULL_BROKEN ? RPC_CLOSE : RPC_NEXT;
}

static enum rpc_result handle_run(struct agent *a, struct net_client *c, const char *who,
				  const struct proto_header *hdr, const struct proto_run *r)
{
	char why[PROTO_TEXT_MAX + 1];
	struct aproc *p;
	union proto_msg m;

	int rc = proc_room(a, r->process, why, sizeof(why));
	if (rc)
		return rpc_reply_error(c, hdr, rc, "%s", why);
	struct launch_req req = {
		.id = r->process, .incarnation = 1, .spec = r->spec, .spec_len = r->spec_len,
	};
	rc = launch_start(a, &req, &p, why, sizeof(why));
	if (rc) {
		log_prog(LOG_WARN, r->process, 1, 0, "[%s] RUN %s refused: %s", who, r->process,
			 why);
		return rpc_reply_error(c, hdr, rc, "%s", why);
	}
	log_prog(LOG_INFO, p->id, proc_incarnation(p), 0,
		 "[%s -> agent] RUN %s: started pid %d, incarnation 1", who, r->process,
		 (int)p->pid);
	memset(&m, 0, sizeof(m));
	snprintf(m.run_ok.process, sizeof(m.run_ok.process), "%s", p->id);
	m.run_ok.node = a->node;
	m.run_ok.incarnation = 1;
	m.run_ok.pid = (uint32_t)p->pid;
	proc_unref(a, p);
	return rpc_sent(net_client_reply(c, PROTO_RUN_OK, 0, hdr->request, &m));
}

static enum rpc_result handle_restore(struct agent *a, struct net_client *c, const char *who,
				      const struct proto_header *hdr,
				      const struct proto_ckpt_meta *meta)
{
	struct agent_peer peer = peer_of_client(c);
	switch (restore_serve(a, &peer, who, hdr->request, meta)) {
	case RESTORE_ADOPTED:
	case RESTORE_FAILED:
		return RPC_NEXT;
	case RESTORE_UNADOPTED:
	case RESTORE_BROKEN:
		break;
	}
	return RPC_CLOSE;
}

static enum rpc_result handle_freeze(struct agent *a, struct net_client *c, const char *who,
				     const struct proto_header *hdr,
				     const struct proto_proc_ref *r)
{
	char why[PROTO_TEXT_MAX + 1];
	struct aproc *p;
	union proto_msg m;

	int rc = freeze_program(a, who, r, &m.meta, &p, why, sizeof(why));
	if (rc)
		return rpc_reply_error(c, hdr, rc, "%s", why);
	rc = net_client_reply(c, PROTO_FROZEN, 0, hdr->request, &m);
	proc_unref(a, p);
	return rpc_sent(rc);
}

static enum rpc_result handle_thaw_stop(struct agent *a, struct net_client *c,
					const char *who, const struct proto_header *hdr,
					const struct proto_proc_ref *r)
{
	char why[PROTO_TEXT_MAX + 1];
	union proto_msg m;

	int rc = hdr->type == PROTO_THAW ? freeze_thaw(a, who, r, why, sizeof(why))
					 : freeze_stop(a, who, r, why, sizeof(why));
	if (rc)
		return rpc_reply_error(c, hdr, rc, "%s", why);
	memset(&m, 0, sizeof(m));
	return rpc_sent(net_client_reply(c, PROTO_OK, 0, hdr->request, &m));
}

enum rpc_result agent_handle(void *ctx, struct net_client *c, const char *peer,
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
		return RPC_CLOSE;
	}
}
