/*
 * bench_incremental.c - incremental checkpoints end to end: rtcms-ledger
 * with 256 MiB of state dirtying 0.1%, 1%, 10% and 100% of its pages
 * between checkpoints, on a real cluster (store with two mirrors, manager,
 * agent). Per checkpoint: time blocked in rtcms_checkpoint(), bytes that
 * changed, bytes pulled to the manager, bytes added to the store, and the
 * time from commit to durable - beside full checkpoints of the same
 * program (chain_max 0), with the store compressing chunks (zstd), and
 * this machine's memcpy, measured in the same run.
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

#define LEDGER RTCMS_BIN_DIR "/rtcms-ledger"
#define MAXSEQ 256

struct sample {
	int64_t commit_ms, durable_ms;
	uint64_t dirty, blocked_us, moved, added, disk;
	int have_commit, have_durable;
};

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
		/* "PUT bench 1/SEQ[ (delta against B, depth D)]: N bytes in ..." */
		const char *p = strstr(line, "PUT bench 1/"), *q = p ? strstr(p, ": ") : NULL;
		uint64_t seq, bytes;
		if (p && q && strstr(p, "durable") &&
		    sscanf(p, "PUT bench 1/%" SCNu64, &seq) == 1 &&
		    sscanf(q, ": %" SCNu64 " bytes", &bytes) == 1 && seq < MAXSEQ) {
			s[seq].durable_ms = bench_log_time_ms(line);
			s[seq].moved = bytes;
			s[seq].have_durable = 1;
			/* "... (K new: A bytes, D on disk) durable ..." */
			const char *n = strstr(q, " new: ");
			uint64_t added, disk;
			if (n && sscanf(n, " new: %" SCNu64 " bytes, %" SCNu64 " on disk", &added,
					&disk) == 2) {
				s[seq].added = added;
				s[seq].disk = disk;
			}
		}
	}
	if (f)
		fclose(f);
}

struct result {
	int n;
	double blocked50, blocked99, dirty, moved50, moved_mean, ratio50, added, disk, dur50,
		dur99;
};

static int run_case(double fraction, int chain_max, int zstd, int quick, struct result *res)
{
	static struct cluster cl;
	static const char *store_plain[] = { "--retain", "100000", NULL };
	static const char *store_zstd[] = { "--retain", "100000", "--compress", "zstd", NULL };
	char cm[16], transfers[32], interval[16];
	const size_t pages = (256u << 20) / 4096;
	/* each transfer writes two random accounts: two pages */
	uint64_t t = fraction >= 1.0 ? 400000 : (uint64_t)(fraction * (double)pages / 2.0 + 0.5);
	snprintf(cm, sizeof(cm), "%d", chain_max);
	snprintf(transfers, sizeof(transfers), "%" PRIu64, t ? t : 1);
	int big = fraction > 0.5 || chain_max == 0;
	snprintf(interval, sizeof(interval), "%d", big ? 6000 : fraction >= 0.1 ? 1500 : 700);
	const char *margs[] = { "--chain-max", cm, NULL };
	cl_store_extra = zstd ? store_zstd : store_plain;
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
	uint64_t d0 = e.durable;
	if (cl_wait_durable(&cl, "bench", 1, d0 + (uint64_t)want, 600000) ||
	    cl_proc(&cl, "bench", &e)) {
		cl_stop(&cl);
		return -1;
	}
	uint64_t d1 = e.durable;
	static struct sample s[MAXSEQ];
	memset(s, 0, sizeof(s));
	parse(&cl, s);
	cl_stop(&cl);
	cl_store_extra = NULL;

	double blocked[MAXSEQ], moved[MAXSEQ], ratio[MAXSEQ], dur[MAXSEQ], dirty = 0, msum = 0;
	double added = 0, disk = 0;
	int n = 0;
	for (uint64_t q = d0 + 1; q <= d1 && q < MAXSEQ; q++) {
		if (!s[q].have_durable || !s[q].have_commit)
			continue;
		added += (double)s[q].added;
		disk += (double)s[q].disk;
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
	res->added = added / n;
	res->disk = disk / n;
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
	const double fr[6] = { 0.001, 0.01, 0.1, 1.0, 0.01, 0.01 };
	const char *names[6] = { "0.1%", "1%", "10%", "100%", "1%", "1%" };
	const int chains[6] = { 16, 16, 16, 16, 0, 16 };
	const int zstd[6] = { 0, 0, 0, 0, 0, 1 };
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
		"blocks changed, or at the end of a chain), *added* the bytes of the new "
		"chunks the store wrote per checkpoint and *on disk* what they took there "
		"(the store's PUT log line), *durable* commit to the store's "
		"acknowledgement. The row with `chain_max` 0 pulls full images every time "
		"(the cost without incremental transfer); the last row has the store's "
		"zstd compression on (level 3). Means over the checkpoints of a run "
		"(its window may or may not hold the full image that starts a chain), "
		"percentiles where named. *Per checkpoint over a chain* is what a whole "
		"chain moves on average: (chain_max x moved p50 + the full image) / "
		"(chain_max + 1), from this run's figures. memcpy of 256 MiB in this run: "
		"%.1f ms.\n\n"
		"| dirty | chain_max | store | n | blocked p50 | blocked p99 | dirty MiB "
		"| moved p50 MiB | moved mean MiB | moved / dirty p50 | per checkpoint over a chain MiB "
		"| added MiB | on disk MiB | durable p50 | durable p99 | target |\n"
		"|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n", mc);
	for (int c = 0; c < 6; c++) {
		struct result r;
		fprintf(stderr, "bench_incremental: %s dirty, chain_max %d...\n", names[c], chains[c]);
		if (run_case(fr[c], chains[c], zstd[c], quick, &r) != 0) {
			fprintf(stderr, "bench_incremental: the %s case failed\n", names[c]);
			return 1;
		}
		char target[64] = "";
		if (c == 1)
			snprintf(target, sizeof(target), "moved <= 1.1x dirty: %s",
				 r.ratio50 <= 1.1 ? "met" : "not met");
		char row[512];
		snprintf(row, sizeof(row),
			"| %s | %d | %s | %d | %.2f ms | %.2f ms | %.2f | %.2f | %.2f | %.3f | %.2f "
			"| %.2f | %.2f | %.0f ms | %.0f ms | %s |\n", names[c], chains[c],
			zstd[c] ? "zstd" : "plain", r.n, r.blocked50, r.blocked99,
			r.dirty / 1048576.0, r.moved50 / 1048576.0, r.moved_mean / 1048576.0,
			r.ratio50,
			(chains[c] * r.moved50 + 256.0 * 1048576.0) / (chains[c] + 1) / 1048576.0,
			r.added / 1048576.0, r.disk / 1048576.0, r.dur50, r.dur99, target);
		fputs(row, stderr);
		tl += (size_t)snprintf(table + tl, sizeof(table) - tl, "%s", row);
	}
	fputs(table, stdout);
	return bench_append(append, table);
}
