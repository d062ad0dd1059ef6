/*
 * test_slow_chaos.c - a store, two managers, four agents, eight programs;
 * at least 100 random faults: kill -9 of an agent (started again), SIGSTOP
 * of an agent or a manager for 50..1000 ms, a program crashed, a manager
 * killed and started again. After every fault each program must run
 * exactly once (counted from /proc) and go on from a checkpoint it had
 * committed (the counter program checks its whole state when it is
 * restored and exits non-zero on any difference, which the agent reports);
 * no program is lost; /proc is sampled every 20 ms throughout and no
 * program may ever have two live instances. Prints the time to converge
 * (p50/p99). Bounded: 100 faults, at most 10 minutes.
 */
#include <inttypes.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>
#include <dirent.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <time.h>

#include "area/area.h"

#include "cluster.h"

#define COUNTER RTCMS_BIN_DIR "/rtcms-counter"
#define PROGS 8
#define FAULTS 100
#define BUDGET_MS (10 * 60 * 1000)
/* longer than the agents' lease (cl_timeouts(): 1000 ms) and its margin */
#define STABLE_MS 1500

static const char *ids[PROGS] = { "chaos-0", "chaos-1", "chaos-2", "chaos-3",
				  "chaos-4", "chaos-5", "chaos-6", "chaos-7" };

static struct {
	pthread_t t;
	volatile int stop;
	int max[PROGS];
	uint64_t samples;
} sampler;

/* Say which processes are the instances of id (pid, state, parent). */
static void describe(const char *id, int k)
{
	char want[PROTO_ID_MAX + 32], path[64], buf[16384];
	printf("# %" PRIu64 " ms: %s has %d live instances:", tu_now_ms(), id, k);
	snprintf(want, sizeof(want), "RTCMS_PROCESS=%s", id);
	DIR *d = opendir("/proc");
	struct dirent *de;
	while (d && (de = readdir(d))) {
		int pid = atoi(de->d_name);
		if (pid <= 0)
			continue;
		snprintf(path, sizeof(path), "/proc/%d/environ", pid);
		FILE *f = fopen(path, "r");
		size_t len = f ? fread(buf, 1, sizeof(buf) - 1, f) : 0;
		if (f)
			fclose(f);
		buf[len] = '\0';
		int match = 0;
		for (size_t off = 0; off < len && !match; off += strlen(buf + off) + 1)
			match = strcmp(buf + off, want) == 0;
		if (!match)
			continue;
		snprintf(path, sizeof(path), "/proc/%d/stat", pid);
		f = fopen(path, "r");
		len = f ? fread(buf, 1, sizeof(buf) - 1, f) : 0;
		if (f)
			fclose(f);
		buf[len] = '\0';
		const char *p = strrchr(buf, ')');
		/* the lease its area holds, against the clock */
		long long lease = -1;
		snprintf(path, sizeof(path), "/proc/%d/fd/3", pid);
		int fd = open(path, O_RDONLY);
		if (fd >= 0) {
			struct area_header h;
			if (pread(fd, &h, sizeof(h), 0) == (ssize_t)sizeof(h)) {
				struct timespec ts;
				clock_gettime(CLOCK_MONOTONIC, &ts);
				long long now = (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
				lease = (long long)atomic_load(&h.lease_until_ms) - now;
			}
			close(fd);
		}
		if (p)
			printf(" pid %d state %c ppid %d lease %lld ms;", pid, p[2], atoi(p + 4),
			       lease);
	}
	if (d)
		closedir(d);
	printf("\n");
}

static void *sample(void *arg)
{
	(void)arg;
	while (!sampler.stop) {
		for (int i = 0; i < PROGS; i++) {
			int k = cl_instances(ids[i], NULL, 0);
			if (k > sampler.max[i])
				sampler.max[i] = k;
			if (k > 1)
				describe(ids[i], k);
		}
		sampler.samples++;
		usleep(20000);
	}
	return NULL;
}


/* Every program runs exactly once and manager 1 shows it running. */
static int converged(struct cluster *cl)
{
	for (int i = 0; i < PROGS; i++) {
		struct proto_proc_entry e;
		if (cl_instances(ids[i], NULL, 0) != 1)
			return 0;
		if (cl_proc(cl, ids[i], &e) != 0 || e.state != PROTO_PS_RUNNING)
			return 0;
	}
	return 1;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

static void test_chaos(void **state)
{
	static struct cluster cl;
	static uint64_t took[FAULTS], by_kind[5][FAULTS];
	char m2addr[80];
	const char *counter[] = { COUNTER, "--iterations", "0", "--interval-ms", "30", NULL };
	int kinds[5] = { 0 };
	(void)state;

	srandom((unsigned)getpid());
	assert_int_equal(cl_start(&cl, "chaos", NULL), 0);
	assert_int_equal(cl_second_manager(&cl, NULL), 0);
	snprintf(m2addr, sizeof(m2addr), "%s", cl.manager2.addr);
	for (int i = 0; i < 4; i++)
		assert_int_equal(cl_agent_start(&cl, i, NULL), 0);
	for (int i = 0; i < PROGS; i++)
		assert_int_equal(cl_run(&cl, ids[i], cl_node(i % 4), counter, NULL), 0);
	for (int i = 0; i < PROGS; i++)
		assert_int_equal(cl_wait_durable(&cl, ids[i], 1, 2, 30000), 0);
	pthread_create(&sampler.t, NULL, sample, NULL);

	uint64_t start = tu_now_ms();
	int done = 0;
	for (; done < FAULTS && tu_now_ms() - start < BUDGET_MS; done++) {
		int kind = (int)(random() % 10);
		kind = kind < 2 ? 0 : kind < 5 ? 1 : kind < 8 ? 2 : kind < 9 ? 3 : 4;
		int who = (int)(random() % 4);
		useconds_t stall = (useconds_t)(50 + random() % 951) * 1000;
		kinds[kind]++;
		switch (kind) {
		case 0: /* kill -9 of an agent, started again */
			tu_daemon_stop(&cl.agents[who], SIGKILL);
			assert_int_equal(cl_agent_start(&cl, who, NULL), 0);
			break;
		case 1: /* an agent stalled */
			kill(cl.agents[who].pid, SIGSTOP);
			usleep(stall);
			kill(cl.agents[who].pid, SIGCONT);
			break;
		case 2: { /* a program crashed */
			int pid = cl_instance_pid(ids[random() % PROGS]);
			if (pid > 0)
				kill(pid, SIGABRT);
			who = pid;
			break;
		}
		case 3: { /* a manager stalled */
			struct tu_daemon *m = who % 2 ? &cl.manager2 : &cl.manager;
			kill(m->pid, SIGSTOP);
			usleep(stall);
			kill(m->pid, SIGCONT);
			break;
		}
		case 4: { /* manager 2 killed and started again at its address */
			tu_daemon_stop(&cl.manager2, SIGKILL);
			char listen[96];
			snprintf(listen, sizeof(listen), "%s", m2addr);
			const char *const *t = cl_timeouts();
			const char *args[] = { t[0], t[1], t[2], t[3], "--listen", listen, NULL };
			assert_int_equal(tu_manager_start(&cl.manager2, cl.dir, "manager-2",
							  cl.key_file, cl.store.addr, args), 0);
			break;
		}
		}
		/* converged: the state the test wants, held for STABLE_MS (an
		 * instance a killed agent left runs on until its lease lapses:
		 * one sample of it says nothing); took is the time until that
		 * stable stretch began */
		uint64_t t0 = tu_now_ms(), since = 0, now = t0;
		while (now - t0 < 60000 && !(since && now - since >= STABLE_MS)) {
			if (!converged(&cl))
				since = 0;
			else if (!since)
				since = now;
			usleep(20000);
			now = tu_now_ms();
		}
		took[done] = since ? since - t0 : now - t0;
		by_kind[kind][kinds[kind] - 1] = took[done];
		if (!since || now - since < STABLE_MS) {
			for (int i = 0; i < PROGS; i++) {
				struct proto_proc_entry e = { 0 };
				cl_proc(&cl, ids[i], &e);
				printf("# %s: %d instance(s), state %u, incarnation %" PRIu64 "\n",
				       ids[i], cl_instances(ids[i], NULL, 0), e.state, e.incarnation);
			}
			printf("# fault %d: kind %d on %d\n", done, kind, who);
			for (int i = 0; i < 4; i++) {
				char path[64], st[512] = "";
				snprintf(path, sizeof(path), "/proc/%d/stat", (int)cl.agents[i].pid);
				FILE *f = fopen(path, "r");
				if (f) {
					if (!fgets(st, sizeof(st), f))
						st[0] = '\0';
					fclose(f);
				}
				printf("# agent %d pid %d: %.60s\n", i, (int)cl.agents[i].pid, st);
			}
			for (int i = 0; i < 4; i++) {
				char g[256];
				snprintf(g, sizeof(g), "timeout 60 gdb -p %d -batch -ex 'thread apply all bt' "
					 "> /tmp/rtcms-chaos-agent%d.bt 2>&1", (int)cl.agents[i].pid, i);
				if (system(g) != 0)
					printf("# (no stack of agent %d)\n", i);
			}
			char cmd[512];
			snprintf(cmd, sizeof(cmd), "ps -eLo pid,ppid,stat,wchan:24,comm | grep -E "
				 "'rtcms' | head -80; rm -rf /tmp/rtcms-chaos-kept && cp -a %s "
				 "/tmp/rtcms-chaos-kept", cl.dir);
			if (system(cmd) == 0)
				printf("# the daemons' logs are kept in /tmp/rtcms-chaos-kept\n");
			fail_msg("fault %d (kind %d) did not converge (stable for %d ms) within 60 s",
				 done, kind, STABLE_MS);
		}
	}
	sampler.stop = 1;
	pthread_join(sampler.t, NULL);
	/* every program went on: its durable checkpoint still advances */
	for (int i = 0; i < PROGS; i++) {
		struct proto_proc_entry e;
		assert_int_equal(cl_proc(&cl, ids[i], &e), 0);
		assert_int_equal(cl_wait_durable(&cl, ids[i], e.incarnation, e.durable + 2, 30000), 0);
		assert_true(sampler.max[i] <= 1);
	}
	qsort(took, (size_t)done, sizeof(took[0]), cmp_u64);
	printf("# chaos: %d faults in %" PRIu64 " s (agent kill -9 %d, agent stall %d, program "
	       "crash %d, manager stall %d, manager restart %d); %" PRIu64 " /proc samples\n",
	       done, (tu_now_ms() - start) / 1000, kinds[0], kinds[1], kinds[2], kinds[3],
	       kinds[4], sampler.samples);
	printf("# converged after a fault: p50 %" PRIu64 " ms, p99 %" PRIu64 " ms, max %" PRIu64
	       " ms\n", took[done / 2], took[(done * 99) / 100], took[done - 1]);
	static const char *const kind_names[5] = { "agent kill -9", "agent stall",
						   "program crash", "manager stall",
						   "manager restart" };
	for (int k = 0; k < 5; k++) {
		int n = kinds[k];
		if (!n)
			continue;
		qsort(by_kind[k], (size_t)n, sizeof(by_kind[k][0]), cmp_u64);
		int disturbed = 0;
		for (int i = 0; i < n; i++)
			disturbed += by_kind[k][i] > 0;
		printf("# converged after %s: %d faults, %d disturbed the state, p50 %" PRIu64
		       " ms, max %" PRIu64 " ms\n", kind_names[k], n, disturbed,
		       by_kind[k][n / 2], by_kind[k][n - 1]);
	}
	assert_int_equal(done, FAULTS); /* all of them within the budget */
	cl_stop(&cl);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_chaos, cl_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
