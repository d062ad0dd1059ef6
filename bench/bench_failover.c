/*
 * bench_failover.c - failover time with the real daemons and real kills:
 * kill -9 of a node (its agent and its program) until the restored program
 * committed its first checkpoint on another node, p50/p99 over many runs,
 * for 1 and 64 MiB of state, with the default timeouts (heartbeats 50 ms,
 * agent lease 200 ms, fence margin 100 ms, node timeout 300 ms); and the time a manager needs
 * to take over a claim left by a crashed manager, from the claim's lease
 * end to the program restored.
 *
 *   bench_failover [--append FILE.md] [--quick]
 */
#include "bench_stats.h"
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "client/store_client.h"
#include "cluster.h"
#include "net/client.h"

/* first "committed checkpoint S at T ms" with T > after in d's log */
static uint64_t first_commit_after(const struct tu_daemon *d, uint64_t after)
{
	char line[4096];
	uint64_t found = 0;
	FILE *f = fopen(d->log, "r");
	if (!f)
		return 0;
	while (!found && fgets(line, sizeof(line), f)) {
		uint64_t seq, t;
		const char *p = strstr(line, "ledger: committed checkpoint ");
		if (p && sscanf(p, "ledger: committed checkpoint %" SCNu64 " at %" SCNu64,
				&seq, &t) == 2 && t > after)
			found = t;
	}
	fclose(f);
	return found;
}

static int agent_of(uint64_t node)
{
	return (int)node - 2;
}

/* kill -9 agent 0 and its program; returns the kill time (unix ms) */
static uint64_t kill_node(struct cluster *cl, const char *id)
{
	int pid = cl_program_pid(cl, 0, id);
	uint64_t t = bench_real_ms();
	kill(cl->agents[0].pid, SIGKILL);
	if (pid > 0)
		kill(pid, SIGKILL);
	tu_daemon_stop(&cl->agents[0], SIGKILL);
	return t;
}

/* wait until id runs as incarnation 2; its node, or 0 */
static uint64_t wait_restored(struct cluster *cl, const char *id)
{
	uint64_t end = tu_now_ms() + 60000;
	while (tu_now_ms() < end) {
		struct proto_proc_entry e;
		if (cl_proc(cl, id, &e) == 0 && e.incarnation == 2 &&
		    e.state == PROTO_PS_RUNNING)
			return e.node;
		usleep(5000);
	}
	return 0;
}

/* stop the restored instance (keeps the nodes free for the next run) */
static void stop_restored(struct cluster *cl, int agent, const char *id)
{
	char needle[160], line[4096];
	snprintf(needle, sizeof(needle), "RESTORE %s seq ", id);
	if (cl_log_line(&cl->agents[agent], needle, line, sizeof(line)) == 0) {
		const char *p = strstr(line, "started pid ");
		if (p)
			kill(atoi(p + 12), SIGKILL);
	}
}

/* the tests' cluster runs with longer leases: measure the defaults */
static const char *const product_defaults[] = { "--agent-lease", "200", "--node-timeout",
						"300", NULL };

int main(int argc, char **argv)
{
	const char *append;
	int quick;
	if (bench_args(argc, argv, "bench_failover", &append, &quick))
		return 2;
	signal(SIGPIPE, SIG_IGN);
	proto_init();
	char table[8192];
	size_t tl = 0;
	tl += (size_t)snprintf(table + tl, sizeof(table) - tl,
		"## Failover (bench/bench_failover.c)\n\n"
		"The real daemons on loopback with the default timeouts (heartbeats every "
		"50 ms, agent lease 200 ms, fence margin 100 ms, node timeout 300 ms): a store with two "
		"mirrors, a manager, three agents; rtcms-ledger checkpointing every 20 ms "
		"on node 2. *Failover*: kill -9 of node 2's agent and program until the "
		"restored program committed its first checkpoint on another node (both "
		"times from this machine's clock). *Claim takeover*: a claim left by a "
		"crashed manager (lease 500 ms) on the program when its node dies; from "
		"the claim's lease end to the program restored by the manager.\n\n"
		"| state | runs | failover p50 | p99 | max |\n|---|---|---|---|---|\n");
	const int mib[2] = { 1, 64 };
	for (int s = 0; s < 2; s++) {
		struct cluster cl;
		char area[32], mibs[16], id[64];
		snprintf(area, sizeof(area), "%dM", mib[s] + 16);
		snprintf(mibs, sizeof(mibs), "%d", mib[s]);
		const char *extra[] = { "--area-capacity", area, "--quota", "64", "--lease",
					"200", NULL };
		if (cl_start(&cl, "bench-failover", product_defaults))
			return 1;
		for (int i = 0; i < 3; i++)
			if (cl_agent_start(&cl, i, extra))
				return 1;
		int runs = quick ? 5 : 20, n = 0;
		double fo[64];
		for (int r = 0; r < runs; r++) {
			snprintf(id, sizeof(id), "fo-%d-%d", mib[s], r);
			const char *ledger[] = { RTCMS_BIN_DIR "/rtcms-ledger", "--iterations",
						 "0", "--interval-ms", "20", "--mib", mibs,
						 "--transfers", "100", "--print-times", NULL };
			if (cl_run(&cl, id, cl_node(0), ledger, NULL) ||
			    cl_wait_durable(&cl, id, 1, 2, 60000)) {
				fprintf(stderr, "bench_failover: %s did not start\n", id);
				return 1;
			}
			uint64_t t_kill = kill_node(&cl, id);
			uint64_t node = wait_restored(&cl, id);
			if (!node) {
				fprintf(stderr, "bench_failover: %s was not restored\n", id);
				return 1;
			}
			uint64_t t_first = 0, end = tu_now_ms() + 30000;
			while (!t_first && tu_now_ms() < end) {
				t_first = first_commit_after(&cl.agents[agent_of(node)], t_kill);
				if (!t_first)
					usleep(5000);
			}
			if (t_first) {
				fo[n++] = (double)(t_first - t_kill);
				printf("%2d MiB run %2d: failover %" PRIu64 " ms\n", mib[s], r + 1,
				       t_first - t_kill);
			}
			stop_restored(&cl, agent_of(node), id);
			if (cl_agent_start(&cl, 0, extra))
				return 1;
		}
		double mx = 0;
		for (int i = 0; i < n; i++)
			mx = fo[i] > mx ? fo[i] : mx;
		tl += (size_t)snprintf(table + tl, sizeof(table) - tl,
			"| %d MiB | %d | %.0f ms | %.0f ms | %.0f ms |\n", mib[s], n,
			bench_pct(fo, n, 0.5), bench_pct(fo, n, 0.99), mx);
		cl_stop(&cl);
	}

	/* claim takeover */
	static struct cluster cl; /* static: cl_teardown may stop it after a failed assertion */
	const char *extra[] = { "--quota", "64", "--lease", "200", NULL };
	if (cl_start(&cl, "bench-takeover", product_defaults))
		return 1;
	for (int i = 0; i < 3; i++)
		if (cl_agent_start(&cl, i, extra))
			return 1;
	double tk[16];
	int nt = 0;
	for (int r = 0; r < (quick ? 3 : 10); r++) {
		char id[64];
		snprintf(id, sizeof(id), "orphan-%d", r);
		const char *ledger[] = { RTCMS_BIN_DIR "/rtcms-ledger", "--iterations", "0",
					 "--interval-ms", "20", "--mib", "1", NULL };
		if (cl_run(&cl, id, cl_node(0), ledger, NULL) || cl_wait_durable(&cl, id, 1, 2, 60000))
			return 1;
		struct net_client *c = NULL;
		struct proto_header h;
		union proto_msg q, rep;
		memset(&q, 0, sizeof(q));
		snprintf(q.claim.process, sizeof(q.claim.process), "%s", id);
		snprintf(q.claim.claimant, sizeof(q.claim.claimant), "crashed-manager");
		q.claim.lease_ms = 500;
		if (net_client_connect(cl.store.addr, &cl.key, PROTO_ROLE_MANAGER, "crashed",
				       5000, &c) || net_client_call(c, PROTO_CLAIM, &q,
							PROTO_CLAIM_OK, &h, &rep)) {
			fprintf(stderr, "bench_failover: cannot leave a claim\n");
			return 1;
		}
		uint64_t expires = rep.claim_ok.expires_ms;
		net_client_free(c); /* the "manager" is gone, its claim stays */
		kill_node(&cl, id);
		char needle[96], line[4096];
		snprintf(needle, sizeof(needle), "RESTORE %s done", id);
		if (cl_wait_log(&cl.manager, needle, 1, 60000) ||
		    cl_log_line(&cl.manager, needle, line, sizeof(line)))
			return 1;
		int64_t t = bench_log_time_ms(line);
		tk[nt++] = t > (int64_t)expires ? (double)(t - (int64_t)expires) : 0;
		printf("takeover %d: restored %.0f ms after the orphaned claim's lease ended\n",
		       r + 1, tk[nt - 1]);
		uint64_t node = wait_restored(&cl, id);
		if (node)
			stop_restored(&cl, agent_of(node), id);
		if (cl_agent_start(&cl, 0, extra))
			return 1;
	}
	cl_stop(&cl);
	tl += (size_t)snprintf(table + tl, sizeof(table) - tl,
		"\n| claim takeover | runs | p50 | p99 |\n|---|---|---|---|\n"
		"| lease end -> restored | %d | %.0f ms | %.0f ms |\n\n"
		"Target with the defaults: failover p99 < 500 ms at 1 MiB (Corosync/Pacemaker "
		"needs >= 6 s to detect a dead node with its defaults, memberlist-based "
		"systems 5-6 s, Kubernetes about 5 minutes to move pods). The floor is the "
		"node timeout (300 ms, which must cover the agent lease and the fence "
		"margin so that the old instance is stopped first); the rest is the "
		"detector's 20 ms tick, the restore and the program's first checkpoint.\n",
		nt, bench_pct(tk, nt, 0.5), bench_pct(tk, nt, 0.99));
	fputs(table, stdout);
	char out[sizeof(table) + 2];
	snprintf(out, sizeof(out), "\n%s", table);
	return bench_append(append, out);
}
