/*
 * bench_checkpoint.c - time a program is blocked in rtcms_checkpoint(),
 * p50/p99, for 1, 64 and 256 MiB of protected state, beside a memcpy of
 * the same bytes measured in the same run.
 *
 *   bench_checkpoint [--append FILE.md] [--quick]
 */
#include "bench_stats.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "rtcms.h"

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
	const char *append = NULL;
	int quick = 0;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--append") && i + 1 < argc)
			append = argv[++i];
		else if (!strcmp(argv[i], "--quick"))
			quick = 1;
		else {
			fprintf(stderr, "usage: bench_checkpoint [--append FILE.md] [--quick]\n");
			return 2;
		}
	}
	size_t sizes[3] = { 1u << 20, 64u << 20, 256u << 20 };
	const char *names[3] = { "1 MiB", "64 MiB", "256 MiB" };
	int reps[3] = { quick ? 50 : 300, quick ? 10 : 40, quick ? 5 : 15 };
	char table[4096];
	size_t tl = 0;

	tl += (size_t)snprintf(table + tl, sizeof(table) - tl,
		"## librtcms: time blocked in rtcms_checkpoint() (bench/bench_checkpoint.c)\n\n"
		"Full checkpoints of the whole protected state into a private "
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
		if (rtcms_init(&cfg) || rtcms_protect(1, state, len)) {
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
	fputs(table, stdout);
	if (append) {
		FILE *f = fopen(append, "a");
		if (!f)
			return 1;
		fprintf(f, "\n%s", table);
		fclose(f);
	}
	return 0;
}
