/*
 * claim.c - CLAIM, COMMIT and RELEASE: who restores a process, atomically
 * under st->mu; the claimed checkpoint stays pinned until the claim is
 * closed; a give-up (PROTO_CLAIM_F_GAVE_UP) moves a program once, a
 * second one fails it for good.
 */
#include "store_int.h"

#include <inttypes.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>

#include "rtcms_error.h"
#include "stats.h"

/* processes.gave_up: how far the give-ups of a program went */
enum gave_up {
	GAVE_UP_NONE = 0,
	GAVE_UP_MOVED = 1,            /* a GAVE_UP claim was committed: moved once */
	GAVE_UP_FAILED = 2,           /* another GAVE_UP claim came: failed for good */
};

bool claim_pins(const struct proc_row *r, uint64_t inc, uint64_t seq)
{
	return r->found && r->claim_id != 0 && r->claim_inc == inc &&
	       r->claim_seq == seq;
}

/* Load a process' row from the primary mirror, under st->mu: 0,
 * RTCMS_ENOENT if the store has never seen it, RTCMS_EIO. */
static int proc_load_known(struct store *st, const char *process, struct proc_row *r)
{
	struct mirror *p = mirror_primary(st);
	if (!p)
		return RTCMS_EIO;
	int rc = catalog_proc_load(p->cat, process, r);
	if (rc == 0 && !r->found)
		rc = RTCMS_ENOENT;
	return rc;
}

static int gave_up_failed_apply(struct catalog *cat, void *arg)
{
	return catalog_proc_gave_up(cat, arg, GAVE_UP_FAILED);
}

struct claim_args {
	const char *process;
	const char *claimant;
	uint64_t claim_id, expires, inc, seq;
	int gave_up;
};

static int claim_apply(struct catalog *cat, void *arg)
{
	struct claim_args *a = arg;
	return catalog_claim_set(cat, a->process, a->claimant, a->claim_id, a->expires,
				 a->inc, a->seq, a->gave_up);
}

/* Refuse a claim of a process held by another claimant: fills *err. */
static int claim_held(const struct proc_row *r, const char *process, uint64_t t,
		      struct proto_error *err)
{
	memset(err, 0, sizeof(*err));
	err->code = RTCMS_ECLAIMED;
	err->detail = r->claim_expires;
	snprintf(err->who, sizeof(err->who), "%s", r->claimant);
	snprintf(err->text, sizeof(err->text), "process %s is already claimed "
		 "by %s for %" PRIu64 " more ms", process, r->claimant,
		 r->claim_expires - t);
	return RTCMS_ECLAIMED;
}

/*
 * Moved once already after a node gave up on it: it fails wherever it
 * runs, and moving it on would not end that; from now on no claim
 * restores it (a node failure neither). Marks it failed, fills *err.
 */
static int claim_failed(struct store *st, const struct proc_row *r, const char *process,
			struct proto_error *err)
{
	int rc;

	if (r->gave_up != GAVE_UP_FAILED &&
	    (rc = mirror_apply(st, gave_up_failed_apply, (void *)process)) != 0)
		return rc;
	memset(err, 0, sizeof(*err));
	err->code = RTCMS_ESTATE;
	snprintf(err->text, sizeof(err->text), "%s has failed for good: it was moved "
		 "to another node once already after its node gave up restarting "
		 "it (forget it to run it again)", process);
	return RTCMS_ESTATE;
}

/* What the claim takes: the holder's own claim again (a renewal, also
 * after expiry if nobody took it), else a new claim id on the latest
 * checkpoint. 0, RTCMS_ENOENT (no checkpoint), RTCMS_EIO. */
static int claim_target(struct store *st, const struct proc_row *r,
			struct claim_args *a)
{
	struct ckpt_key k;

	if (r->claim_id && strcmp(r->claimant, a->claimant) == 0) {
		a->claim_id = r->claim_id;
		a->inc = r->claim_inc;
		a->seq = r->claim_seq;
		return 0;
	}
	int found = catalog_ckpt_latest(mirror_primary(st)->cat, a->process, &k);
	if (found < 0)
		return found;
	if (!found)
		return RTCMS_ENOENT;
	a->inc = k.inc;
	a->seq = k.seq;
	do
		randombytes_buf(&a->claim_id, sizeof(a->claim_id));
	while (a->claim_id == 0 || a->claim_id == r->last_claim ||
	       a->claim_id > INT64_MAX);
	return 0;
}

int store_claim(struct store *st, const char *process, const char *claimant,
		uint32_t lease_ms, uint8_t flags, struct proto_claim_ok *ok,
		struct proto_error *err)
{
	enum store_claim_outcome how = STORE_CLAIM_REFUSED;
	struct proc_row r;
	int rc;

	if (!proto_process_id_valid(process) || !claimant[0] ||
	    strlen(claimant) > PROTO_ID_MAX || lease_ms == 0 || lease_ms > 3600000 ||
	    (flags & ~PROTO_CLAIM_F_GAVE_UP)) {
		metric_counter_inc(&store_stats.claims[how]);
		return RTCMS_EINVAL;
	}
	pthread_mutex_lock(&st->mu);
	uint64_t t = store_now(st);
	if ((rc = proc_load_known(st, process, &r)) != 0)
		goto out;
	if (r.claim_id && r.claim_expires > t && strcmp(r.claimant, claimant) != 0) {
		rc = claim_held(&r, process, t, err);
		how = STORE_CLAIM_HELD;
		goto out;
	}
	if (r.gave_up == GAVE_UP_FAILED ||
	    ((flags & PROTO_CLAIM_F_GAVE_UP) && r.gave_up == GAVE_UP_MOVED)) {
		rc = claim_failed(st, &r, process, err);
		goto out;
	}
	struct claim_args a = { process, claimant, 0, t + lease_ms, 0, 0,
				(flags & PROTO_CLAIM_F_GAVE_UP) != 0 };
	if ((rc = claim_target(st, &r, &a)) != 0)
		goto out;
	rc = mirror_apply(st, claim_apply, &a);
	if (rc == 0) {
		memset(ok, 0, sizeof(*ok));
		snprintf(ok->process, sizeof(ok->process), "%s", process);
		ok->claim_id = a.claim_id;
		ok->incarnation = a.inc;
		ok->sequence = a.seq;
		ok->node = r.node;
		ok->expires_ms = a.expires;
		how = r.claim_id == a.claim_id ? STORE_CLAIM_RENEWED : STORE_CLAIM_WON;
	}
out:
	pthread_mutex_unlock(&st->mu);
	metric_counter_inc(&store_stats.claims[how]);
	return rc;
}

struct commit_args {
	const char *process;
	uint64_t claim_id, new_node;
	bool commit;                  /* COMMIT, else RELEASE */
};

/* Close an open claim: COMMIT (move the process, raise the incarnation)
 * or RELEASE (leave everything as it was). */
static int close_claim_apply(struct catalog *cat, void *arg)
{
	struct commit_args *a = arg;
	return catalog_claim_close(cat, a->process, a->claim_id, a->commit, a->new_node);
}

int store_commit(struct store *st, const char *process, uint64_t claim_id,
		 uint64_t new_node, struct proto_commit_ok *ok)
{
	struct proc_row r;
	int rc;

	if (!proto_process_id_valid(process) || claim_id == 0)
		return RTCMS_EINVAL;
	pthread_mutex_lock(&st->mu);
	if ((rc = proc_load_known(st, process, &r)) != 0)
		goto out;
	if (r.last_claim == claim_id && r.claim_id != claim_id) {
		/* a retry of a commit that already happened: same answer */
		rc = 0;
	} else if (r.claim_id != claim_id) {
		rc = r.claim_id && r.claim_expires > store_now(st) ? RTCMS_ECLAIMED
								   : RTCMS_ENOENT;
		goto out;
	} else {
		struct commit_args a = { process, claim_id, new_node, true };
		rc = mirror_apply(st, close_claim_apply, &a);
		if (rc)
			goto out;
		metric_counter_inc(&store_stats.commits); /* not a retry's */
		catalog_proc_load(mirror_primary(st)->cat, process, &r);
	}
	memset(ok, 0, sizeof(*ok));
	snprintf(ok->process, sizeof(ok->process), "%s", process);
	ok->incarnation = r.incarnation;
	ok->node = r.node;
out:
	pthread_mutex_unlock(&st->mu);
	return rc;
}

int store_release(struct store *st, const char *process, uint64_t claim_id)
{
	struct commit_args a = { process, claim_id, 0, false };

	if (!proto_process_id_valid(process) || claim_id == 0)
		return RTCMS_EINVAL;
	pthread_mutex_lock(&st->mu);
	int rc = mirror_apply(st, close_claim_apply, &a);
	pthread_mutex_unlock(&st->mu);
	if (rc == 0)
		metric_counter_inc(&store_stats.releases);
	return rc;
}
