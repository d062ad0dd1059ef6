/*
 * bench_incremental.c - incremental checkpoints end to end: rtcms-ledger
 * with 256 MiB of state dirtying 0.1%, 1%, 10% and 100% of its pages
 * between checkpoints, on a real cluster (store with two mirrors, manager,
 * agent). Per checkpoint: time blocked in rtcms_checkpoint(), bytes that
 * changed, bytes pulled to the manager, bytes added to the store, and the
 * time from commit to durable - beside full checkpoints of the same
 * program (chain_max 0) and this machine's memcpy, measured in the run.
 *
 *   bench_incremental [--append FILE.md] [--quick]
 */
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bench_stats.h"
#include "cluster.h"
#include "net/client.h"

#define LEDGER RTCMS_BIN_DIR "/rtcms-ledger"
#define MAXSEQ 256

struct sample {
	int64_t commit_ms, durable_ms;
	uint64_t dirty, blocked_us, moved;
	int have_commit, have_durable;
};

static uint64_t store_bytes(struct cluster *cl)
{
	struct net_client *c = NULL;
	union proto_msg q, r;
	struct proto_header h;
	uint64_t bytes = 0;
	memset(&q, 0, sizeof(q));
	if (net_client_connect(cl->store.addr, &cl->key, PROTO_ROLE_MANAGER, "bench", 5000,
			       &c) == 0 &&
	    net_client_call(c, PROTO_STATUS, &q, PROTO_STATUS_REPLY, &h, &r) == 0)
		bytes = r.scrub_reply.bytes;
	net_client_free(c);
	return bytes;
}

/* Commit times, dirty bytes and blocked time from the agent's log; PUT
 * sizes and times from the store's. */
static void parse(struct cluster *cl, struct sample *s)
{
	char line[4096];
	FILE *f = fopen(cl->agents[0].log, "r");
	while (f && fgets(line, sizeof(line), f)) {
		const char *p = strstr(line, "ledger: committed checkpoint ");
		uint64_t seq, at, dirty, copied, us;
		if (p && sscanf(p, "ledger: committed checkpoint %" SCNu64 " at %" SCNu64
				" ms (dirty %" SCNu64 " bytes, copied %" SCNu64 " bytes, blocked %"
				SCNu64, &seq, &at, &dirty, &copied, &us) == 5 && seq < MAXSEQ) {
			s[seq].commit_ms = (int64_t)at;
			s[seq].dirty = dirty;
			s[seq].blocked_us = us;
			s[seq].have_commit = 1;
		}
	}
	if (f)
		fclose(f);
	f = fopen(cl->store.log, "r");
	while (f && fgets(line, sizeof(line), f)) {
		const char *p = strstr(line, "PUT bench 1/");
		uint64_t seq, bytes;
		if (p && strstr(p, "durable") &&
		    sscanf(p, "PUT bench 1/%" SCNu64 ": %" SCNu64 " bytes", &seq, &bytes) == 2 &&
		    seq < MAXSEQ) {
			s[seq].durable_ms = bench_log_time_ms(line);
			s[seq].moved = bytes;
			s[seq].have_durable = 1;
		}
	}
	if (f)
		fclose(f);
}

struct result {
	int n;
	double blocked50, blocked99, dirty, moved50, moved_mean, ratio50, added, dur50, dur99;
};

static int run_case(double fraction, int chain_max, int quick, struct result *res)
{
	static struct cluster cl;
	static const char *store_extra[] = { "--retain", "100000", NULL };
	char cm[16], transfers[32], interval[16];
	const size_t pages = (256u << 20) / 4096;
	/* each transfer writes two random accounts: two pages */
	uint64_t t = fraction >= 1.0 ? 400000 : (uint64_t)(fraction * (double)pages / 2.0 + 0.5);
	snprintf(cm, sizeof(cm), "%d", chain_max);
	snprintf(transfers, sizeof(transfers), "%" PRIu64, t ? t : 1);
	int big = fraction > 0.5 || chain_max == 0;
	snprintf(interval, sizeof(interval), "%d", big ? 6000 : fraction >= 0.1 ? 1500 : 700);
	const char *margs[] = { "--chain-max", cm, NULL };
	cl_store_extra = store_extra;
	memset(res, 0, sizeof(*res));
	const char *aargs[] = { "--area-capacity", "272M", NULL };
	if (cl_start(&cl, "bench-incr", margs) || cl_agent_start(&cl, 0, aargs))
		return -1;
	const char *argv[] = { LEDGER, "--iterations", "0", "--interval-ms", interval, "--mib",
			       "256", "--transfers", transfers, "--print-times", NULL };
	int want = quick ? 3 : big ? 5 : 12;
	struct proto_proc_entry e;
	if (cl_run(&cl, "bench", cl_node(0), argv, NULL) ||
	    cl_wait_durable(&cl, "bench", 1, 3, 120000) || cl_proc(&cl, "bench", &e)) {
		cl_stop(&cl);
		return -1;
	}
	uint64_t d0 = e.durable, b0 = store_bytes(&cl);
	if (cl_wait_durable(&cl, "bench", 1, d0 + (uint64_t)want, 600000) ||
	    cl_proc(&cl, "bench", &e)) {
		cl_stop(&cl);
		return -1;
	}
	uint64_t d1 = e.durable, b1 = store_bytes(&cl);
	static struct sample s[MAXSEQ];
	memset(s, 0, sizeof(s));
	parse(&cl, s);
	cl_stop(&cl);
	cl_store_extra = NULL;

	double blocked[MAXSEQ], moved[MAXSEQ], ratio[MAXSEQ], dur[MAXSEQ], dirty = 0, msum = 0;
	int n = 0, stored = 0;
	for (uint64_t q = d0 + 1; q <= d1 && q < MAXSEQ; q++) {
		if (!s[q].have_durable)
			continue;
		stored++;
		if (!s[q].have_commit)
			continue;
		blocked[n] = (double)s[q].blocked_us / 1e3;
		moved[n] = (double)s[q].moved;
		ratio[n] = s[q].dirty ? (double)s[q].moved / (double)s[q].dirty : 0;
		dur[n] = (double)(s[q].durable_ms - s[q].commit_ms);
		dirty += (double)s[q].dirty;
		msum += (double)s[q].moved;
		n++;
	}
	if (n == 0)
		return -1;
	res->n = n;
	res->dirty = dirty / n;
	res->moved_mean = msum / n;
	res->added = stored ? (double)(b1 - b0) / stored : 0;
	res->blocked50 = bench_pct(blocked, n, 0.5);
	res->blocked99 = bench_pct(blocked, n, 0.99);
	res->moved50 = bench_pct(moved, n, 0.5);
	res->ratio50 = bench_pct(ratio, n, 0.5);
	res->dur50 = bench_pct(dur, n, 0.5);
	res->dur99 = bench_pct(dur, n, 0.99);
	return 0;
}

int main(int argc, char **argv)
{
	const char *append;
	int quick;
	if (bench_args(argc, argv, "bench_incremental", &append, &quick))
		return 2;
	signal(SIGPIPE, SIG_IGN);
	proto_init();
	const double fr[5] = { 0.001, 0.01, 0.1, 1.0, 0.01 };
	const char *names[5] = { "0.1%", "1%", "10%", "100%", "1%" };
	const int chains[5] = { 16, 16, 16, 16, 0 };
	char table[8192];
	size_t tl = 0;
	double mc = (256u << 20) / bench_memcpy() * 1e3;
	tl += (size_t)snprintf(table + tl, sizeof(table) - tl,
		"\n## End to end: incremental checkpoints of 256 MiB (bench/bench_incremental.c)\n\n"
		"The real daemons on loopback (a store with two mirrors, a manager with "
		"`chain_max` 16, an agent) and rtcms-ledger with 256 MiB of balances, whose "
		"transfers dirty the given share of its 65536 pages between checkpoints. Per "
		"checkpoint: *blocked* in rtcms_checkpoint() (the program's own clock), "
		"*dirty* the changed bytes (rtcms_last_stats), *moved* the bytes the manager "
		"pulled and stored (the delta, or the full image when more than half of the "
		"blocks changed, or at the end of a chain), *added* the store's growth in "
		"distinct chunk bytes per stored checkpoint, *durable* commit to the store's "
		"acknowledgement. The last row pulls full images every time (`chain_max = 0`): "
		"the cost without incremental transfer. memcpy of 256 MiB in this run: "
		"%.1f ms.\n\n"
		"| dirty | chain_max | n | blocked p50 | blocked p99 | dirty MiB | moved p50 MiB "
		"| moved mean MiB | moved / dirty p50 | added MiB | durable p50 | durable p99 "
		"| target |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|\n", mc);
	for (int c = 0; c < 5; c++) {
		struct result r;
		fprintf(stderr, "bench_incremental: %s dirty, chain_max %d...\n", names[c], chains[c]);
		if (run_case(fr[c], chains[c], quick, &r) != 0) {
			fprintf(stderr, "bench_incremental: the %s case failed\n", names[c]);
			return 1;
		}
		char target[64] = "";
		if (c == 1)
			snprintf(target, sizeof(target), "moved <= 1.1x dirty: %s",
				 r.ratio50 <= 1.1 ? "met" : "not met");
		char row[512];
		snprintf(row, sizeof(row),
			"| %s | %d | %d | %.2f ms | %.2f ms | %.2f | %.2f | %.2f | %.3f | %.2f "
			"| %.0f ms | %.0f ms | %s |\n", names[c], chains[c], r.n, r.blocked50,
			r.blocked99, r.dirty / 1048576.0, r.moved50 / 1048576.0,
			r.moved_mean / 1048576.0, r.ratio50, r.added / 1048576.0, r.dur50, r.dur99,
			target);
		fputs(row, stderr);
		tl += (size_t)snprintf(table + tl, sizeof(table) - tl, "%s", row);
	}
	fputs(table, stdout);
	return bench_append(append, table);
}
