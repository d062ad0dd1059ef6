/*
 * bench_checkpoint.c - time a program is blocked in rtcms_checkpoint(),
 * p50/p99: full checkpoints of 1, 64 and 256 MiB beside a memcpy of the
 * same bytes; incremental checkpoints of 256 MiB with 0.1%, 1%, 10% and
 * 100% of its pages dirtied in between, per tracking; and what one write
 * fault costs. Everything measured in the same run.
 *
 *   bench_checkpoint [--append FILE.md] [--quick]
 */
#include "bench_stats.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#include "rtcms.h"

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static uint64_t rng = 0x9e3779b97f4a7c15ull;
static uint64_t next_rand(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

/* Dirty n random pages of state (one byte each; with replacement, so a few
 * pages repeat at the higher fractions), or all of them. */
static void dirty(uint8_t *state, size_t pages, size_t n)
{
	if (n >= pages) {
		for (size_t p = 0; p < pages; p++)
			state[p * 4096]++;
		return;
	}
	for (size_t i = 0; i < n; i++)
		state[next_rand() % pages * 4096]++;
}

/* Incremental checkpoints of 256 MiB; appends rows to table. */
static size_t incremental(char *table, size_t tl, size_t cap, int quick, double memcpy_s)
{
	const size_t len = 256u << 20, pages = len / 4096;
	const double fractions[4] = { 0.001, 0.01, 0.1, 1.0 };
	const char *fnames[4] = { "0.1%", "1%", "10%", "100%" };
	const int modes[3] = { RTCMS_TRACK_AUTO, RTCMS_TRACK_COMPARE, RTCMS_TRACK_FULL };
	const char *mnames[3] = { "write faults", "compare", "full copy" };
	double full_p50 = 0;
	uint8_t *state = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
			      -1, 0);
	if (state == MAP_FAILED)
		return tl;
	memset(state, 7, len);
	tl += (size_t)snprintf(table + tl, cap - tl,
		"\n## librtcms: incremental checkpoints of 256 MiB (bench/bench_checkpoint.c)\n\n"
		"Between checkpoints the program writes one byte into each of a random "
		"set of pages (0.1%% .. 100%% of the 65536 pages); the time of those "
		"writes (the write faults) is not in the blocked time (see the next "
		"table). *dirty* is what changed, *copied* what the checkpoint copied "
		"(double buffering: the blocks changed in the last two intervals). "
		"Full copy = `RTCMS_TRACK_FULL`, the cost without tracking; memcpy of "
		"256 MiB in the same run: %.1f ms.\n\n"
		"| dirty | tracking | n | blocked p50 | blocked p99 | dirty MiB | copied MiB "
		"| p50 vs full copy | target |\n|---|---|---|---|---|---|---|---|---|\n",
		memcpy_s * 1e3);
	for (int m = 2; m >= 0; m--) {
		for (int f = 0; f < 4; f++) {
			if (m == 2 && f > 0)
				break; /* a full copy does not depend on the dirty fraction */
			int reps = quick ? 5 : (f < 2 ? 40 : f == 2 ? 20 : 10);
			double *blk = calloc((size_t)reps, sizeof(double));
			struct rtcms_config cfg = { .area_capacity = len };
			if (!blk || rtcms_init(&cfg) || rtcms_protect_tracked(1, state, len, modes[m]))
				return tl;
			size_t n = (size_t)(fractions[f] * (double)pages);
			rtcms_checkpoint(); /* full twice: both slots hold the layout */
			rtcms_checkpoint();
			dirty(state, pages, n);
			rtcms_checkpoint(); /* the steady state: two intervals dirty */
			struct rtcms_stats st, sum = { 0 };
			for (int i = 0; i < reps; i++) {
				dirty(state, pages, n);
				double t = now_s();
				if (rtcms_checkpoint() < 0)
					return tl;
				blk[i] = now_s() - t;
				rtcms_last_stats(&st);
				sum.dirty_bytes += st.dirty_bytes;
				sum.copied_bytes += st.copied_bytes;
			}
			double b50 = bench_pct(blk, reps, 0.5), b99 = bench_pct(blk, reps, 0.99);
			if (m == 2)
				full_p50 = b50;
			char target[64] = "";
			if (m == 0 && f == 1)
				snprintf(target, sizeof(target), "<= 5 ms: %s",
					 b50 <= 0.005 ? "met" : "not met");
			else if (m == 0 && f == 3)
				snprintf(target, sizeof(target), "<= 1.3x full: %s",
					 b50 <= 1.3 * full_p50 ? "met" : "not met");
			tl += (size_t)snprintf(table + tl, cap - tl,
				"| %s | %s | %d | %.3f ms | %.3f ms | %.2f | %.2f | %.2fx | %s |\n",
				m == 2 ? "any" : fnames[f], mnames[m], reps, b50 * 1e3, b99 * 1e3,
				(double)sum.dirty_bytes / reps / 1048576.0,
				(double)sum.copied_bytes / reps / 1048576.0,
				full_p50 > 0 ? b50 / full_p50 : 1.0, target);
			fprintf(stderr, "incremental %s %s: p50 %.3f ms\n", mnames[m],
				m == 2 ? "any" : fnames[f], b50 * 1e3);
			rtcms_finalize();
			free(blk);
		}
	}

	/* one write fault: the first write to a protected page, against the
	 * same write to a page that is writable */
	const size_t fpages = quick ? 4096 : 16384;
	struct rtcms_config cfg = { .area_capacity = len };
	double fault_ns[5], plain_ns[5];
	rtcms_init(&cfg);
	rtcms_protect(1, state, fpages * 4096);
	for (int r = 0; r < 5; r++) {
		rtcms_checkpoint(); /* protects every page */
		double t = now_s();
		for (size_t p = 0; p < fpages; p++)
			state[p * 4096]++;
		fault_ns[r] = (now_s() - t) / (double)fpages * 1e9;
		t = now_s();
		for (size_t p = 0; p < fpages; p++)
			state[p * 4096]++;
		plain_ns[r] = (now_s() - t) / (double)fpages * 1e9;
	}
	rtcms_finalize();
	double f50 = bench_pct(fault_ns, 5, 0.5), p50 = bench_pct(plain_ns, 5, 0.5);
	tl += (size_t)snprintf(table + tl, cap - tl,
		"\nWrite-fault cost (first write to a protected page: SIGSEGV, handler, "
		"mprotect, retry), median of 5 rounds of %zu pages: **%.2f us per page** "
		"(a write to a writable page: %.3f us).\n", fpages, f50 / 1e3, p50 / 1e3);
	munmap(state, len);
	return tl;
}

int main(int argc, char **argv)
{
	const char *append;
	int quick;
	if (bench_args(argc, argv, "bench_checkpoint", &append, &quick))
		return 2;
	size_t sizes[3] = { 1u << 20, 64u << 20, 256u << 20 };
	const char *names[3] = { "1 MiB", "64 MiB", "256 MiB" };
	int reps[3] = { quick ? 50 : 300, quick ? 10 : 40, quick ? 5 : 15 };
	char table[16384];
	double memcpy256 = 0;
	size_t tl = 0;

	tl += (size_t)snprintf(table + tl, sizeof(table) - tl,
		"## librtcms: time blocked in rtcms_checkpoint() (bench/bench_checkpoint.c)\n\n"
		"Full checkpoints (`RTCMS_TRACK_FULL`) of the whole protected state into a private "
		"checkpoint area (the agent's shared area costs the same: it is "
		"the same memcpy), beside memcpy of the same bytes into a "
		"separate buffer, measured in the same run.\n\n"
		"| state | n | blocked p50 | blocked p99 | memcpy p50 | p50 ratio | target <= 1.5x |\n"
		"|---|---|---|---|---|---|---|\n");
	for (int s = 0; s < 3; s++) {
		size_t len = sizes[s];
		uint8_t *state = malloc(len), *copy = malloc(len);
		double *blk = calloc((size_t)reps[s], sizeof(double));
		double *mc = calloc((size_t)reps[s], sizeof(double));
		memset(state, 1, len);
		memset(copy, 2, len);
		struct rtcms_config cfg = { .area_capacity = len + 4096 };
		if (rtcms_init(&cfg) || rtcms_protect_tracked(1, state, len, RTCMS_TRACK_FULL)) {
			fprintf(stderr, "bench_checkpoint: cannot set up %s\n", names[s]);
			return 1;
		}
		rtcms_checkpoint(); /* touch both slots once */
		rtcms_checkpoint();
		for (int i = 0; i < reps[s]; i++) {
			state[(size_t)i * 4096 % len]++;
			double t = now_s();
			if (rtcms_checkpoint() < 0)
				return 1;
			blk[i] = now_s() - t;
			t = now_s();
			memcpy(copy, state, len);
			mc[i] = now_s() - t;
			state[0] ^= copy[len - 1];
		}
		double b50 = bench_pct(blk, reps[s], 0.5), b99 = bench_pct(blk, reps[s], 0.99);
		double m50 = bench_pct(mc, reps[s], 0.5);
		if (s == 2)
			memcpy256 = m50;
		tl += (size_t)snprintf(table + tl, sizeof(table) - tl,
			"| %s | %d | %.3f ms | %.3f ms | %.3f ms | %.2fx | %s |\n",
			names[s], reps[s], b50 * 1e3, b99 * 1e3, m50 * 1e3, b50 / m50,
			b50 / m50 <= 1.5 ? "met" : "not met");
		rtcms_finalize();
		free(state);
		free(copy);
		free(blk);
		free(mc);
	}
	tl = incremental(table, tl, sizeof(table), quick, memcpy256);
	fputs(table, stdout);
	char out[sizeof(table) + 2];
	snprintf(out, sizeof(out), "\n%s", table);
	return bench_append(append, out);
}
