/* placement.c - filter and score candidate nodes. */
#include "placement.h"

#include <string.h>

#include "rtcms_error.h"

void placement_defaults(struct placement_config *cfg)
{
	cfg->policy = PLACEMENT_WEIGHTED;
	cfg->w_ram = 0.5;
	cfg->w_cpu = 0.3;
	cfg->w_quota = 0.2;
	cfg->ram_reserve = 64u << 20;
}

int placement_policy_parse(const char *s, enum placement_policy *out)
{
	if (strcmp(s, "weighted") == 0)
		*out = PLACEMENT_WEIGHTED;
	else if (strcmp(s, "thesis") == 0)
		*out = PLACEMENT_THESIS;
	else
		return RTCMS_EINVAL;
	return 0;
}

static int passes(const struct placement_config *cfg,
		  const struct placement_node *n, uint64_t image_size,
		  uint64_t source, int allow_source)
{
	const struct proto_info_reply *i = &n->info;
	if (!n->alive || n->cordoned || i->quota_free == 0)
		return 0;
	if (!allow_source && i->node == source)
		return 0;
	if (image_size > UINT64_MAX - cfg->ram_reserve)
		return 0;
	return i->mem_available >= image_size + cfg->ram_reserve;
}

int placement_choose(const struct placement_config *cfg,
		     const struct placement_node *nodes, size_t count,
		     uint64_t image_size, uint64_t source, int allow_source,
		     double *scores)
{
	double max_ram = 0, max_quota = 0;
	int best = RTCMS_ENOSPC;
	double best_score = -1;

	for (size_t k = 0; k < count; k++) {
		if (!passes(cfg, &nodes[k], image_size, source, allow_source))
			continue;
		double ram = (double)(nodes[k].info.mem_available - cfg->ram_reserve - image_size);
		if (ram > max_ram)
			max_ram = ram;
		if (nodes[k].info.quota_free > max_quota)
			max_quota = nodes[k].info.quota_free;
	}
	for (size_t k = 0; k < count; k++) {
		const struct proto_info_reply *i = &nodes[k].info;
		double score = -1;
		if (passes(cfg, &nodes[k], image_size, source, allow_source)) {
			/* RAM left after the program and the reserve */
			double ram = (double)(i->mem_available - cfg->ram_reserve - image_size);
			double idle = (1000.0 - (i->cpu_load_permille > 1000 ? 1000 : i->cpu_load_permille)) / 1000.0;
			if (cfg->policy == PLACEMENT_THESIS) {
				score = ram * (double)i->quota_free;
			} else {
				score = cfg->w_ram * (max_ram > 0 ? ram / max_ram : 1) +
					cfg->w_cpu * idle +
					cfg->w_quota * (max_quota > 0 ? i->quota_free / max_quota : 1);
			}
			/* higher score wins; ties go to the lower node id */
			if (best < 0 || score > best_score ||
			    (score == best_score && i->node < nodes[best].info.node)) {
				best = (int)k;
				best_score = score;
			}
		}
		if (scores)
			scores[k] = score;
	}
	return best;
}
