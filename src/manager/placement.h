/*
 * placement.h - choosing the node a program is restored or migrated to.
 *
 * First a filter: the node is alive, not cordoned (an operator's drain or
 * cordon: no new programs), has free RAM >= image size + reserve, has free
 * quota, and is not the source unless that is allowed. Then a
 * score: the weighted sum of the node's free RAM, CPU idle share and free
 * quota, each normalised to 0..1 against the best candidate (weights from
 * config; "balanced" by default), or the thesis' metric, free RAM x free
 * quota ("capabilities"). Ties go to the lower node id, so every manager
 * picks the same node from the same facts. Pure: no I/O.
 */
#ifndef RTCMS_MANAGER_PLACEMENT_H
#define RTCMS_MANAGER_PLACEMENT_H

#include <stddef.h>
#include <stdint.h>

#include "proto/msg.h"

enum placement_policy {
	PLACEMENT_WEIGHTED = 0,   /* weights of RAM, CPU idle and quota */
	PLACEMENT_THESIS = 1,     /* free RAM x free quota */
};

struct placement_config {
	enum placement_policy policy;
	double w_ram, w_cpu, w_quota;  /* PLACEMENT_WEIGHTED; >= 0, not all 0 */
	uint64_t ram_reserve;          /* bytes kept free on every node */
};

/* A candidate: the node's last INFO_REPLY and what the manager knows. */
struct placement_node {
	struct proto_info_reply info;
	int alive;
	int cordoned;                  /* takes no new program (rtcmsctl cordon/drain) */
};

/* Defaults: weighted 0.5 RAM, 0.3 CPU idle, 0.2 quota; 64 MiB reserve. */
void placement_defaults(struct placement_config *cfg);

/* Parse "weighted" or "thesis". 0 or RTCMS_EINVAL. */
int placement_policy_parse(const char *s, enum placement_policy *out);

/*
 * Pick a node for an image of image_size bytes now on node source. With
 * allow_source 0 the source is filtered out; a cordoned node always is.
 * Returns the index of the chosen node in nodes[], or RTCMS_ENOSPC if none
 * passes the filter. When
 * scores is not NULL it receives each node's score (-1 if filtered out).
 */
int placement_choose(const struct placement_config *cfg,
		     const struct placement_node *nodes, size_t count,
		     uint64_t image_size, uint64_t source, int allow_source,
		     double *scores);

#endif
