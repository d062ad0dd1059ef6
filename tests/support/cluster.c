/* cluster.c - a loopback rtcms cluster for tests and benchmarks. */
#include "cluster.h"

#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "net/client.h"
#include <dirent.h>
#include "proto/spec.h"
#include "rtcms_error.h"

/* clusters started and not stopped yet: a failed assertion leaves the
 * test early, and cl_teardown stops what it left behind */
static struct cluster *running[8];
const char *const *cl_store_extra;
const struct cl_hosts *cl_hosts;
int cl_default_timeouts;

/* The last lines of a daemon's log, for a failed test's output. */
static void log_tail(const struct tu_daemon *d, const char *what, int lines)
{
	char buf[512];
	static char ring[40][512];
	int n = 0;
	FILE *f = d->pid > 0 || d->log[0] ? fopen(d->log, "r") : NULL;
	if (!f)
		return;
	while (fgets(buf, sizeof(buf), f))
		memcpy(ring[n++ % 40], buf, sizeof(buf));
	fclose(f);
	if (lines > 40)
		lines = 40;
	printf("---- the last lines of %s's log (%s)\n", what, d->log);
	for (int i = n > lines ? n - lines : 0; i < n; i++)
		fputs(ring[i % 40], stdout);
}

/* A cluster still running here belongs to a test that failed: show the
 * end of each daemon's log (CI keeps only the output), then stop it. */
int cl_teardown(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(running) / sizeof(running[0]); i++) {
		struct cluster *cl = running[i];
		if (!cl)
			continue;
		log_tail(&cl->manager, "manager", 25);
		if (cl->manager2.pid > 0)
			log_tail(&cl->manager2, "manager-2", 15);
		for (int a = 0; a < cl->agent_count; a++)
			log_tail(&cl->agents[a], "an agent", 15);
		log_tail(&cl->store, "store", 10);
		fflush(stdout);
		cl_stop(cl);
	}
	return 0;
}

/* How much longer to wait on this machine (RTCMS_TEST_TIME_SCALE). */
static uint64_t scaled(int timeout_ms)
{
	const char *env = getenv("RTCMS_TEST_TIME_SCALE");
	long scale = env ? strtol(env, NULL, 10) : 1;
	if (scale < 1 || scale > 100)
		scale = 1;
	return (uint64_t)timeout_ms * (uint64_t)scale;
}

/* Tests prove behaviour, not timing: on a loaded machine (sanitizers, two
 * cores) a 200 ms lease can lapse under a healthy agent, so the cluster
 * runs with longer leases unless a test or benchmark asks otherwise (its
 * options come later and win). */
/* RTCMS_TEST_TIME_SCALE (make test-asan sets 3) stretches them further:
 * sanitizer builds run several times slower. */
static char lease_ms[16], node_ms[16];
static const char *robust_manager[] = { "--agent-lease", lease_ms,
					"--node-timeout", node_ms, NULL };
static const char *robust_agent[] = { "--lease", lease_ms, NULL };

const char *const *cl_timeouts(void)
{
	snprintf(lease_ms, sizeof(lease_ms), "%" PRIu64, scaled(1000));
	snprintf(node_ms, sizeof(node_ms), "%" PRIu64, scaled(1500));
	return robust_manager;
}

static int add_args(const char **argv, int n, const char *const *more)
{
	for (int k = 0; more && more[k] && n < 62; k++)
		argv[n++] = more[k];
	argv[n] = NULL;
	return n;
}

/* The manager options cl_start() and cl_second_manager() begin with: the
 * tests' timeouts unless cl_default_timeouts, and the host's address. */
static int manager_args(const char **argv, const struct cl_host *h, char *listen, size_t len)
{
	int n = add_args(argv, 0, cl_default_timeouts ? NULL : cl_timeouts());
	if (h && h->ip) {
		snprintf(listen, len, "%s:0", h->ip);
		argv[n++] = "--listen";
		argv[n++] = listen;
		argv[n] = NULL;
	}
	return n;
}

int cl_start(struct cluster *cl, const char *tag, const char *const *manager_extra)
{
	const char *margs[64];
	char listen[80];
	const struct cl_host *sh = cl_hosts ? &cl_hosts->store : NULL;
	const struct cl_host *mh = cl_hosts ? &cl_hosts->manager : NULL;
	add_args(margs, manager_args(margs, mh, listen, sizeof(listen)), manager_extra);
	memset(cl, 0, sizeof(*cl));
	for (size_t i = 0; i < sizeof(running) / sizeof(running[0]); i++)
		if (!running[i]) {
			running[i] = cl;
			break;
		}
	cl->dir = tu_tmpdir(tag);
	cl->key_file = tu_keyfile(cl->dir, &cl->key);
	tu_exec_prefix = sh ? sh->wrap : NULL;
	int rc = tu_store_start(&cl->store, cl->dir, cl->key_file, 2, sh ? sh->ip : NULL,
				cl_store_extra);
	tu_exec_prefix = mh ? mh->wrap : NULL;
	if (rc == 0)
		rc = tu_manager_start(&cl->manager, cl->dir, "manager", cl->key_file,
				      cl->store.addr, margs);
	tu_exec_prefix = NULL;
	return rc;
}

int cl_second_manager(struct cluster *cl, const char *const *extra)
{
	const char *margs[64];
	char listen[80];
	const struct cl_host *mh = cl_hosts ? &cl_hosts->manager2 : NULL;
	add_args(margs, manager_args(margs, mh, listen, sizeof(listen)), extra);
	tu_exec_prefix = mh ? mh->wrap : NULL;
	int rc = tu_manager_start(&cl->manager2, cl->dir, "manager-2", cl->key_file,
				  cl->store.addr, margs);
	tu_exec_prefix = NULL;
	return rc;
}

int cl_agent_start(struct cluster *cl, int i, const char *const *extra)
{
	char ip[32], node[32], name[32];
	const char *args[64];
	int n = 0;
	const struct cl_host *h = cl_hosts && i < CL_AGENTS_MAX ? &cl_hosts->agents[i] : NULL;
	snprintf(ip, sizeof(ip), "127.0.0.%d", i + 2);
	if (h && h->ip)
		snprintf(ip, sizeof(ip), "%s", h->ip);
	snprintf(node, sizeof(node), "%" PRIx64, cl_node(i));
	snprintf(name, sizeof(name), "agent-%d", i + 1);
	if (i >= cl->agent_count)
		cl->agent_count = i + 1;
	char needle[64];
	snprintf(needle, sizeof(needle), "node %016" PRIx64 " at", cl_node(i));
	int before = tu_log_count(&cl->manager, needle);
	cl_timeouts();
	if (!cl_default_timeouts)
		n = add_args(args, n, robust_agent);
	if (cl->manager2.pid > 0) { /* register with both managers */
		args[n++] = "--manager";
		args[n++] = cl->manager2.addr;
	}
	add_args(args, n, extra);
	tu_exec_prefix = h ? h->wrap : NULL;
	int rc = tu_agent_start(&cl->agents[i], cl->dir, name, cl->key_file, ip, node,
				cl->manager.addr, args);
	tu_exec_prefix = NULL;
	if (rc)
		return rc;
	/* registered once the manager says so (joins, or restarted) */
	return cl_wait_log(&cl->manager, needle, before + 1, 10000);
}

void cl_stop(struct cluster *cl)
{
	for (size_t i = 0; i < sizeof(running) / sizeof(running[0]); i++)
		if (running[i] == cl)
			running[i] = NULL;
	for (int i = 0; i < cl->agent_count; i++)
		if (cl->agents[i].pid > 0)
			tu_daemon_stop(&cl->agents[i], SIGTERM);
	if (cl->manager.pid > 0)
		tu_daemon_stop(&cl->manager, SIGKILL);
	if (cl->manager2.pid > 0)
		tu_daemon_stop(&cl->manager2, SIGKILL);
	if (cl->store.pid > 0)
		tu_daemon_stop(&cl->store, SIGKILL);
	if (getenv("RTCMS_KEEP_TEST_DIRS")) {
		fprintf(stderr, "kept %s\n", cl->dir);
	} else {
		tu_rmrf(cl->dir);
	}
	free(cl->dir);
	free(cl->key_file);
}

int cl_call(struct cluster *cl, uint8_t type, const union proto_msg *req,
	    uint8_t expect, union proto_msg *reply, int timeout_ms,
	    char *why, size_t whylen)
{
	return cl_call_at(cl, cl->manager.addr, type, req, expect, reply, timeout_ms,
			  why, whylen);
}

int cl_call_at(struct cluster *cl, const char *addr, uint8_t type,
	       const union proto_msg *req, uint8_t expect, union proto_msg *reply,
	       int timeout_ms, char *why, size_t whylen)
{
	struct net_client *c = NULL;
	struct proto_header h;
	int rc = net_client_connect(addr, &cl->key, PROTO_ROLE_CLI, "test", timeout_ms, &c);
	if (rc == 0)
		rc = net_client_call(c, type, req, expect, &h, reply);
	if (rc && why) {
		const struct proto_error *e = c ? net_client_last_error(c) : NULL;
		snprintf(why, whylen, "%s", e && e->code == rc ? e->text : rtcms_strerror(rc));
	}
	net_client_free(c);
	return rc;
}

int cl_run(struct cluster *cl, const char *id, uint64_t node,
	   const char *const *argv, const char *const *env)
{
	struct proto_spec sp;
	uint8_t spec[PROTO_SPEC_MAX];
	union proto_msg q, r;
	char why[PROTO_TEXT_MAX + 1];

	memset(&sp, 0, sizeof(sp));
	for (; argv[sp.argc]; sp.argc++)
		sp.argv[sp.argc] = argv[sp.argc];
	for (; env && env[sp.envc]; sp.envc++)
		sp.env[sp.envc] = env[sp.envc];
	sp.cwd = cl->dir;
	int n = proto_spec_encode(&sp, spec, sizeof(spec));
	if (n < 0)
		return n;
	memset(&q, 0, sizeof(q));
	snprintf(q.run.process, sizeof(q.run.process), "%s", id);
	q.run.node = node;
	q.run.spec = spec;
	q.run.spec_len = (uint32_t)n;
	int rc = cl_call(cl, PROTO_RUN, &q, PROTO_RUN_OK, &r, 10000, why, sizeof(why));
	if (rc)
		fprintf(stderr, "RUN %s: %s\n", id, why);
	return rc;
}

int cl_migrate(struct cluster *cl, const char *id, uint64_t to, int allow_same,
	       struct proto_migrate_ok *ok, char *why, size_t whylen)
{
	union proto_msg q, r;
	memset(&q, 0, sizeof(q));
	snprintf(q.migrate.process, sizeof(q.migrate.process), "%s", id);
	q.migrate.target = to;
	q.migrate.allow_same = (uint8_t)allow_same;
	int rc = cl_call(cl, PROTO_MIGRATE, &q, PROTO_MIGRATE_OK, &r, 120000, why, whylen);
	if (rc == 0 && ok)
		*ok = r.migrate_ok;
	return rc;
}

int cl_proc(struct cluster *cl, const char *id, struct proto_proc_entry *out)
{
	static struct proto_node_entry nodes[PROTO_NODES_MAX];
	static struct proto_proc_entry procs[PROTO_PROCS_MAX];
	union proto_msg q, r;
	memset(&q, 0, sizeof(q));
	memset(out, 0, sizeof(*out));
	r.mstatus.nodes = nodes;
	r.mstatus.procs = procs;
	int rc = cl_call(cl, PROTO_MSTATUS, &q, PROTO_MSTATUS_REPLY, &r, 10000, NULL, 0);
	if (rc)
		return rc;
	for (int i = 0; i < r.mstatus.proc_count; i++)
		if (strcmp(procs[i].process, id) == 0)
			*out = procs[i];
	return 0;
}

int cl_wait_durable(struct cluster *cl, const char *id, uint64_t inc, uint64_t seq,
		    int timeout_ms)
{
	uint64_t deadline = tu_now_ms() + scaled(timeout_ms);
	while (tu_now_ms() < deadline) {
		struct proto_proc_entry e;
		if (cl_proc(cl, id, &e) == 0 && e.incarnation == inc && e.durable >= seq)
			return 0;
		usleep(20000);
	}
	return -1;
}

int cl_wait_log(const struct tu_daemon *d, const char *needle, int count,
		int timeout_ms)
{
	uint64_t deadline = tu_now_ms() + scaled(timeout_ms);
	while (tu_now_ms() < deadline) {
		if (tu_log_count(d, needle) >= count)
			return 0;
		usleep(10000);
	}
	return -1;
}

int cl_log_line(const struct tu_daemon *d, const char *needle, char *out, size_t len)
{
	char line[4096];
	int found = -1;
	FILE *f = fopen(d->log, "r");
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (strstr(line, needle)) {
			snprintf(out, len, "%s", line);
			found = 0;
		}
	fclose(f);
	return found;
}

int cl_program_pid(struct cluster *cl, int agent, const char *id)
{
	uint64_t deadline = tu_now_ms() + scaled(10000);
	for (;;) {
		int parents[2];
		int pid = cl_instances(id, parents, 2) == 1 &&
				  parents[0] == cl->agents[agent].pid ? cl_instance_pid(id) : -1;
		if (pid > 0 || tu_now_ms() >= deadline)
			return pid;
		usleep(10000);
	}
}

int cl_wait_instances(const char *id, int n, int timeout_ms)
{
	uint64_t deadline = tu_now_ms() + scaled(timeout_ms);
	while (cl_instances(id, NULL, 0) != n) {
		if (tu_now_ms() >= deadline)
			return -1;
		usleep(10000);
	}
	return 0;
}

uint64_t cl_wait_running(struct cluster *cl, const char *id, uint64_t inc, int timeout_ms)
{
	uint64_t deadline = tu_now_ms() + scaled(timeout_ms);
	while (tu_now_ms() < deadline) {
		struct proto_proc_entry e;
		if (cl_proc(cl, id, &e) == 0 && e.incarnation == inc &&
		    e.state == PROTO_PS_RUNNING)
			return e.node;
		usleep(20000);
	}
	return 0;
}

static int read_file(const char *path, char *buf, size_t cap)
{
	FILE *f = fopen(path, "r");
	if (!f)
		return -1;
	size_t n = fread(buf, 1, cap - 1, f);
	fclose(f);
	buf[n] = '\0';
	return (int)n;
}

/* live (not zombie) processes with RTCMS_PROCESS=id; their parent pids in
 * parents (optional) */
int cl_instances(const char *id, int *parents, int max)
{
	char want[160], path[64];
	static __thread char buf[65536]; /* a whole environment */
	int n = 0;
	snprintf(want, sizeof(want), "RTCMS_PROCESS=%s", id);
	DIR *d = opendir("/proc");
	struct dirent *e;
	while (d && (e = readdir(d))) {
		int pid = atoi(e->d_name);
		if (pid <= 0)
			continue;
		snprintf(path, sizeof(path), "/proc/%d/stat", pid);
		if (read_file(path, buf, sizeof(buf)) <= 0)
			continue;
		const char *p = strrchr(buf, ')');
		if (!p || p[2] == 'Z')
			continue;
		int ppid = atoi(p + 4);
		snprintf(path, sizeof(path), "/proc/%d/environ", pid);
		int len = read_file(path, buf, sizeof(buf));
		for (int off = 0; off < len; off += (int)strlen(buf + off) + 1)
			if (strcmp(buf + off, want) == 0) {
				if (parents && n < max)
					parents[n] = ppid;
				n++;
				break;
			}
	}
	if (d)
		closedir(d);
	return n;
}


int cl_proc_at(struct cluster *cl, const struct tu_daemon *mgr, const char *id,
	       struct proto_proc_entry *out)
{
	static struct proto_node_entry nodes[PROTO_NODES_MAX];
	static struct proto_proc_entry procs[PROTO_PROCS_MAX];
	struct net_client *c = NULL;
	struct proto_header h;
	union proto_msg q, r;
	memset(&q, 0, sizeof(q));
	memset(out, 0, sizeof(*out));
	r.mstatus.nodes = nodes;
	r.mstatus.procs = procs;
	int rc = net_client_connect(mgr->addr, &cl->key, PROTO_ROLE_CLI, "test", 5000, &c);
	if (rc == 0)
		rc = net_client_call(c, PROTO_MSTATUS, &q, PROTO_MSTATUS_REPLY, &h, &r);
	net_client_free(c);
	if (rc)
		return rc;
	for (int i = 0; i < r.mstatus.proc_count; i++)
		if (strcmp(procs[i].process, id) == 0)
			*out = procs[i];
	return 0;
}

int cl_procs_at(struct cluster *cl, const struct tu_daemon *mgr, const char *const *ids,
		int n, struct proto_proc_entry *out, struct proto_node_entry *nodes,
		int *node_count, int timeout_ms)
{
	static struct proto_node_entry all_nodes[PROTO_NODES_MAX];
	static struct proto_proc_entry procs[PROTO_PROCS_MAX];
	struct net_client *c = NULL;
	struct proto_header h;
	union proto_msg q, r;
	memset(&q, 0, sizeof(q));
	memset(out, 0, sizeof(*out) * (size_t)n);
	r.mstatus.nodes = all_nodes;
	r.mstatus.procs = procs;
	int rc = net_client_connect(mgr->addr, &cl->key, PROTO_ROLE_CLI, "test", timeout_ms, &c);
	if (rc == 0)
		rc = net_client_call(c, PROTO_MSTATUS, &q, PROTO_MSTATUS_REPLY, &h, &r);
	net_client_free(c);
	if (rc)
		return rc;
	for (int i = 0; i < r.mstatus.proc_count; i++)
		for (int k = 0; k < n; k++)
			if (strcmp(procs[i].process, ids[k]) == 0)
				out[k] = procs[i];
	if (nodes)
		memcpy(nodes, all_nodes, sizeof(all_nodes[0]) * r.mstatus.node_count);
	if (node_count)
		*node_count = r.mstatus.node_count;
	return 0;
}

int cl_wait_nodes(struct cluster *cl, const struct tu_daemon *mgr, int agents,
		  int timeout_ms)
{
	static struct proto_node_entry nodes[PROTO_NODES_MAX];
	struct proto_proc_entry none;
	uint64_t deadline = tu_now_ms() + scaled(timeout_ms);
	while (tu_now_ms() < deadline) {
		int count = 0, known = 0;
		if (cl_procs_at(cl, mgr, NULL, 0, &none, nodes, &count, 5000) == 0)
			for (int i = 0; i < agents; i++)
				for (int k = 0; k < count; k++)
					if (nodes[k].node == cl_node(i) && nodes[k].alive) {
						known++;
						break;
					}
		if (known == agents)
			return 0;
		usleep(20000);
	}
	return -1;
}

void cl_kill_children(int parent)
{
	char path[64], buf[1024];
	DIR *d = opendir("/proc");
	struct dirent *e;
	while (d && (e = readdir(d))) {
		int pid = atoi(e->d_name);
		snprintf(path, sizeof(path), "/proc/%d/stat", pid);
		if (pid <= 0 || read_file(path, buf, sizeof(buf)) <= 0)
			continue;
		const char *p = strrchr(buf, ')');
		if (p && atoi(p + 4) == parent)
			kill(pid, SIGKILL);
	}
	if (d)
		closedir(d);
}

/* The first live child of parent that is an instance of id, or -1. */
static int child_instance(const char *id, int parent)
{
	char want[160], path[64];
	static __thread char buf[65536];
	snprintf(want, sizeof(want), "RTCMS_PROCESS=%s", id);
	DIR *d = opendir("/proc");
	struct dirent *e;
	int found = -1;
	while (d && (e = readdir(d)) && found < 0) {
		int pid = atoi(e->d_name);
		if (pid <= 0)
			continue;
		snprintf(path, sizeof(path), "/proc/%d/stat", pid);
		if (read_file(path, buf, sizeof(buf)) <= 0)
			continue;
		const char *p = strrchr(buf, ')');
		if (!p || p[2] == 'Z' || atoi(p + 4) != parent)
			continue;
		snprintf(path, sizeof(path), "/proc/%d/environ", pid);
		int len = read_file(path, buf, sizeof(buf));
		for (int off = 0; off < len; off += (int)strlen(buf + off) + 1)
			if (strcmp(buf + off, want) == 0) {
				found = pid;
				break;
			}
	}
	if (d)
		closedir(d);
	return found;
}

int cl_instance_pid(const char *id)
{
	int parents[2];
	if (cl_instances(id, parents, 2) != 1)
		return -1;
	return child_instance(id, parents[0]);
}

int cl_child_instance(struct cluster *cl, int agent, const char *id, int timeout_ms)
{
	uint64_t deadline = tu_now_ms() + scaled(timeout_ms);
	for (;;) {
		int pid = child_instance(id, cl->agents[agent].pid);
		if (pid > 0 || tu_now_ms() >= deadline)
			return pid;
		usleep(10000);
	}
}
