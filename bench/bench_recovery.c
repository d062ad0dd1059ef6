/*
 * bench_recovery.c - how fast what stopped runs again, with the real
 * daemons and the default timeouts (heartbeats 50 ms, agent lease 200 ms,
 * fence margin 100 ms, node timeout 300 ms):
 *
 *   crash    a program killed by SIGABRT until its restarted instance
 *            committed its first checkpoint (the agent restarts it on the
 *            node from the checkpoint in its area; the program's own start
 *            and first checkpoint are included, and measured alone)
 *   fence    an agent stalled 250 ms (longer than the lease, shorter than
 *            the node timeout): its program's watchdog fences it; from that
 *            program's death until its restored instance committed a
 *            checkpoint (the agent reports it gone, the manager restores it)
 *   load     the cluster under stress-ng on every core (CPU and I/O) for a
 *            while: node fences asked for and lease lapses, per hour
 *
 *   bench_recovery [--append FILE.md] [--quick]
 */
#include "bench_stats.h"
#include <dirent.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cluster.h"

static const char *const product_defaults[] = { "--agent-lease", "200", "--node-timeout",
						"300", NULL };

/* the time (unix ms) of the first line of d's log after `after` that
 * contains needle; 0 if none */
static int64_t log_time_after(const struct tu_daemon *d, const char *needle, int64_t after)
{
	char line[4096];
	int64_t found = 0;
	FILE *f = fopen(d->log, "r");
	if (!f)
		return 0;
	while (!found && fgets(line, sizeof(line), f)) {
		if (!strstr(line, needle))
			continue;
		int64_t t = bench_log_time_ms(line);
		if (t > after)
			found = t;
	}
	fclose(f);
	return found;
}

/* ... in any agent's log, waiting up to 30 s */
static int64_t wait_log_after(struct cluster *cl, const char *needle, int64_t after)
{
	uint64_t end = tu_now_ms() + 30000;
	while (tu_now_ms() < end) {
		for (int i = 0; i < cl->agent_count; i++) {
			int64_t t = log_time_after(&cl->agents[i], needle, after);
			if (t)
				return t;
		}
		usleep(2000);
	}
	return 0;
}

/* RUN, retried while the node rejoins after a fence */
static int run_retry(struct cluster *cl, const char *id, const char *const *argv)
{
	for (int i = 0; i < 100; i++) {
		if (cl_run(cl, id, cl_node(0), argv, NULL) == 0)
			return 0;
		usleep(100000);
	}
	return -1;
}

static int pid_alive(int pid)
{
	char path[64], buf[512];
	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	FILE *f = fopen(path, "r");
	if (!f)
		return 0;
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	const char *p = strrchr(buf, ')');
	return p && p[2] != 'Z' && p[2] != 'X';
}

static void row(char *table, size_t cap, size_t *tl, const char *what, double *v, int n)
{
	double mx = 0;
	for (int i = 0; i < n; i++)
		mx = v[i] > mx ? v[i] : mx;
	*tl += (size_t)snprintf(table + *tl, cap - *tl, "| %s | %d | %.0f ms | %.0f ms | %.0f ms |\n",
				what, n, bench_pct(v, n, 0.5), bench_pct(v, n, 0.99), mx);
}

int main(int argc, char **argv)
{
	const char *append;
	int quick;
	if (bench_args(argc, argv, "bench_recovery", &append, &quick))
		return 2;
	signal(SIGPIPE, SIG_IGN);
	proto_init();
	static char table[16384];
	size_t tl = 0;
	tl += (size_t)snprintf(table + tl, sizeof(table) - tl,
		"## Recovery (bench/bench_recovery.c)\n\n"
		"The real daemons on loopback with the default timeouts (heartbeats every "
		"50 ms, agent lease 200 ms, fence margin 100 ms, node timeout 300 ms), a "
		"store with two mirrors, one manager, two agents, rtcms-ledger checkpointing "
		"every 10 ms. *Crash*: SIGABRT of the program until its agent started it "
		"again from the checkpoint in its area (the agent's log line; the "
		"program's own start follows). *Fence*: the agent SIGSTOPped for 250 ms, "
		"longer than its lease and shorter than the node timeout, so the "
		"program's own watchdog kills it; from its death (seen in /proc) until "
		"its restored instance resumed from its checkpoint (the agent's log "
		"line). A stall that the loaded machine stretches past the node "
		"timeout fences the node instead (the run waits for it to rejoin).\n\n"
		"| case | runs | p50 | p99 | max |\n|---|---|---|---|---|\n");

	const char *mibs_list[2] = { "1", "64" };
	for (int s = 0; s < 2; s++) {
		static struct cluster cl;
		const char *mibs = mibs_list[s];
		const char *extra[] = { "--area-capacity", s ? "400M" : "16M", "--quota", "64",
					"--lease", "200", NULL };
		if (cl_start(&cl, "bench-recovery", product_defaults))
			return 1;
		for (int i = 0; i < 2; i++)
			if (cl_agent_start(&cl, i, extra))
				return 1;
		int runs = quick ? 5 : 20;
		double crash[64], fence[64];
		int nc = 0, nf = 0;
		char id[64], what[64];
		/* crashes: one program, restarted again and again (the window's
		 * first restart is immediate; max_restarts is 5 within 60 s, so
		 * each run uses a program of its own) */
		for (int r = 0; r < runs; r++) {
			snprintf(id, sizeof(id), "crash-%s-%d", mibs, r);
			/* (it ends by itself a few seconds later) */
			const char *ledger[] = { RTCMS_BIN_DIR "/rtcms-ledger", "--iterations", "300",
						 "--interval-ms", "10", "--mib", mibs,
						 "--print-times", NULL };
			if (cl_run(&cl, id, cl_node(0), ledger, NULL) ||
			    cl_wait_durable(&cl, id, 1, 2, 60000))
				return 1;
			int pid = cl_program_pid(&cl, 0, id);
			char needle[128];
			snprintf(needle, sizeof(needle), "[program %s] restarted as pid", id);
			int64_t t0 = (int64_t)bench_real_ms();
			kill(pid, SIGABRT);
			int64_t t = wait_log_after(&cl, needle, t0 - 1);
			if (t)
				crash[nc++] = (double)(t - t0);
			printf("%s MiB crash %2d: %" PRId64 " ms\n", mibs, r + 1, t ? t - t0 : 0);
		}
		/* fences */
		for (int r = 0; r < runs; r++) {
			snprintf(id, sizeof(id), "fence-%s-%d", mibs, r);
			const char *ledger[] = { RTCMS_BIN_DIR "/rtcms-ledger", "--iterations", "300",
						 "--interval-ms", "10", "--mib", mibs,
						 "--print-times", NULL };
			if (run_retry(&cl, id, ledger) || cl_wait_durable(&cl, id, 1, 2, 60000))
				return 1;
			int pid = cl_program_pid(&cl, 0, id);
			kill(cl.agents[0].pid, SIGSTOP);
			uint64_t t_stop = tu_now_ms();
			uint64_t t_dead = 0;
			while (tu_now_ms() - t_stop < 250 || !t_dead) {
				if (!t_dead && !pid_alive(pid))
					t_dead = bench_real_ms();
				if (tu_now_ms() - t_stop >= 250)
					kill(cl.agents[0].pid, SIGCONT);
				if (tu_now_ms() - t_stop > 5000)
					break;
				usleep(1000);
			}
			kill(cl.agents[0].pid, SIGCONT);
			if (!t_dead) {
				printf("%s MiB fence %2d: the program was not fenced\n", mibs, r + 1);
				continue;
			}
			char needle[128];
			snprintf(needle, sizeof(needle), "[program %s] resumed from checkpoint", id);
			int64_t t = wait_log_after(&cl, needle, (int64_t)t_dead - 1);
			if (t)
				fence[nf++] = (double)(t - (int64_t)t_dead);
			printf("%s MiB fence %2d: %" PRId64 " ms\n", mibs, r + 1,
			       t ? t - (int64_t)t_dead : 0);
			usleep(500000);
		}
		snprintf(what, sizeof(what), "crash -> restarted, %s MiB", mibs);
		row(table, sizeof(table), &tl, what, crash, nc);
		snprintf(what, sizeof(what), "fence -> restored, %s MiB", mibs);
		row(table, sizeof(table), &tl, what, fence, nf);
		cl_stop(&cl);
	}

	/* false failures under load */
	int minutes = quick ? 1 : 5;
	if (system("command -v stress-ng >/dev/null 2>&1") != 0) {
		tl += (size_t)snprintf(table + tl, sizeof(table) - tl,
			"\nFalse failures under load: not measured (stress-ng is not installed).\n");
	} else {
		static struct cluster cl;
		const char *extra[] = { "--quota", "64", "--lease", "200", NULL };
		if (cl_start(&cl, "bench-load", product_defaults) ||
		    cl_second_manager(&cl, product_defaults))
			return 1;
		for (int i = 0; i < 3; i++)
			if (cl_agent_start(&cl, i, extra))
				return 1;
		for (int i = 0; i < 6; i++) {
			char id[32];
			snprintf(id, sizeof(id), "load-%d", i);
			const char *ledger[] = { RTCMS_BIN_DIR "/rtcms-ledger", "--iterations", "0",
						 "--interval-ms", "100", "--mib", "4", NULL };
			if (cl_run(&cl, id, cl_node(i % 3), ledger, NULL))
				return 1;
		}
		char cmd[128];
		snprintf(cmd, sizeof(cmd), "stress-ng --cpu 0 --io 2 --timeout %ds --quiet "
			 ">/dev/null 2>&1", minutes * 60);
		pid_t load = fork();
		if (load == 0) {
			execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
			_exit(127);
		}
		int st;
		waitpid(load, &st, 0);
		int fences = tu_log_count(&cl.manager, "asking the store to fence it") +
			     tu_log_count(&cl.manager2, "asking the store to fence it");
		int lapses = 0;
		for (int i = 0; i < 3; i++)
			lapses += tu_log_count(&cl.agents[i], "lease lapsed");
		printf("load: %d fences asked, %d lease lapses in %d min\n", fences, lapses, minutes);
		tl += (size_t)snprintf(table + tl, sizeof(table) - tl,
			"\n*Load*: two managers, three agents, six programs checkpointing every "
			"100 ms while `stress-ng --cpu 0 --io 2` loads both cores for %d min, with "
			"the defaults: %d fence(s) asked for (a manager missed a node's "
			"heartbeats for the node timeout) and %d lease lapse(s): %.0f false "
			"failures and %.0f lapses per hour (target 0).\n", minutes, fences, lapses,
			fences * 60.0 / minutes, lapses * 60.0 / minutes);
		cl_stop(&cl);
	}
	double load[3] = { 0, 0, 0 };
	FILE *la = fopen("/proc/loadavg", "r");
	if (la) {
		if (fscanf(la, "%lf %lf %lf", &load[0], &load[1], &load[2]) != 3)
			load[0] = load[1] = load[2] = 0;
		fclose(la);
	}
	tl += (size_t)snprintf(table + tl, sizeof(table) - tl,
		"\nTargets: crash -> restarted p99 <= 50 ms (plus the program's own start); "
		"fence -> restored no longer than a node failure's failover "
		"(bench_failover). The peer: DMTCP restarts a program locally from its "
		"checkpoint in 0.21-0.29 s at 1 MiB and 0.19-0.25 s at 64 MiB, after a "
		"checkpoint of 0.42-0.52 s and 0.52-0.79 s (MACHINE-FACTS.md); it has no "
		"failure detection. Load average at the end of this run: %.2f %.2f %.2f "
		"(2 cores).\n", load[0], load[1], load[2]);
	fputs(table, stdout);
	char out[sizeof(table) + 2];
	snprintf(out, sizeof(out), "\n%s", table);
	return bench_append(append, out);
}
