/*
 * info.c - the info interface (info.h).
 */
#include "info.h"

#include <string.h>

#include "proc.h"

void info_fill(struct agent *a, struct proto_info_reply *out)
{
	uint64_t total = a->mem_total, avail = 0;

	memset(out, 0, sizeof(*out));
	sysinfo_meminfo_read(&total, &avail);
	if (a->cfg.report_mem_available)
		avail = a->cfg.report_mem_available;
	uv_mutex_lock(&a->lock);
	uint16_t load = sysinfo_window_load(&a->cpu);
	int running = proc_running_count(a);
	uint64_t used = 0;
	for (struct aproc *p = a->procs; p; p = p->next)
		if (p->state != AP_EXITED)
			used += p->area_len;
	uv_mutex_unlock(&a->lock);
	if (a->cfg.report_cpu_permille)
		load = (uint16_t)(a->cfg.report_cpu_permille - 1);
	/* the agent's cgroup (its programs are in it) may allow less */
	uint64_t cg_mem, cg_pids;
	sysinfo_cgroup_room(&cg_mem, &cg_pids);
	if (cg_mem < avail && !a->cfg.report_mem_available)
		avail = cg_mem;
	out->node = a->node;
	out->mem_total = total;
	out->mem_available = avail;
	out->cpu_load_permille = load > 1000 ? 1000 : load;
	out->quota_max = (uint32_t)a->cfg.quota;
	out->quota_free = running >= (int)a->cfg.quota ? 0
			  : (uint32_t)(a->cfg.quota - (uint64_t)running);
	if (cg_pids < out->quota_free)
		out->quota_free = (uint32_t)cg_pids; /* a program needs a pid at least */
	out->area_capacity = a->cfg.area_capacity;
	out->area_used = used;
	out->processes = (uint32_t)running;
}
