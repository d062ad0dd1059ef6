/* candidates.c - every alive node's INFO for placement (candidates.h). */
#include "candidates.h"

#include <string.h>

#include "detector.h"
#include "log/log.h"
#include "rtcms_error.h"

size_t candidates_poll(struct manager *m, struct placement_node *nodes,
		       char (*addrs)[PROTO_ADDR_MAX + 1], int timeout_ms)
{
	uint64_t ids[MANAGER_NODES_MAX];
	bool cordoned[MANAGER_NODES_MAX];
	size_t n = 0;

	uv_mutex_lock(&m->lock);
	for (size_t i = 0; i < m->node_count; i++)
		if (detector_node_alive(m, &m->nodes[i])) {
			ids[n] = m->nodes[i].node;
			cordoned[n] = cordon_set_has(&m->cordons, ids[n]);
			snprintf(addrs[n], PROTO_ADDR_MAX + 1, "%s", m->nodes[i].address);
			n++;
		}
	uv_mutex_unlock(&m->lock);
	for (size_t i = 0; i < n; i++) {
		struct proto_info_reply info;
		memset(&nodes[i], 0, sizeof(nodes[i]));
		nodes[i].info.node = ids[i];
		nodes[i].cordoned = cordoned[i];
		int rc = m->rpc.agent->info(m->rpc.ctx, addrs[i], timeout_ms, &info);
		if (rc == 0 && info.node == ids[i]) {
			nodes[i].info = info;
			nodes[i].alive = 1;
		} else {
			log_warn("[manager -> %s] INFO: %s", addrs[i],
				 rc ? rtcms_strerror(rc) : "answered with another node id");
		}
	}
	return n;
}
