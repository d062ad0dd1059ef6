/* netns.c - network namespaces, a bridge, silent cuts and cleanup for
 * partition tests (see netns.h). */
#include "netns.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#define NETNS_DIR "/run/netns"
#define BOGUS_MAC "02:de:ad:00:00:01" /* locally administered; no interface has it */

static char ip_bin[64], bridge_bin[64], nsenter_bin[64];

/* nets set up and not torn down: what the atexit and signal handlers
 * remove (static storage only: the signal handler reads it) */
static struct netns_net *active[4];

/* ---- async-signal-safe removal ------------------------------------------ */

/* SIGKILL every process (but this one) whose network namespace is (dev, ino).
 * Only raw syscalls and no allocation: it runs in signal handlers. */
static void kill_in(dev_t dev, ino_t ino)
{
	char buf[4096], path[64];
	pid_t self = getpid();

	if (!ino)
		return;
	for (int round = 0; round < 3; round++) {
		int found = 0;
		int fd = open("/proc", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (fd < 0)
			return;
		for (;;) {
			long n = syscall(SYS_getdents64, fd, buf, sizeof(buf));
			if (n <= 0)
				break;
			for (long off = 0; off < n;) {
				struct { uint64_t ino; int64_t off; unsigned short reclen;
					 unsigned char type; char name[]; } *e = (void *)(buf + off);
				off += e->reclen;
				pid_t pid = 0;
				size_t k = 0;
				for (; e->name[k] >= '0' && e->name[k] <= '9'; k++)
					pid = pid * 10 + (e->name[k] - '0');
				if (e->name[k] || !pid || pid == self || k > 20)
					continue;
				memcpy(path, "/proc/", 6);
				memcpy(path + 6, e->name, k);
				memcpy(path + 6 + k, "/ns/net", 8);
				struct stat st;
				if (stat(path, &st) == 0 && st.st_dev == dev && st.st_ino == ino) {
					kill(pid, SIGKILL);
					found++;
				}
			}
		}
		close(fd);
		if (!found)
			break;
	}
}

/* Kill what runs in h's namespace and remove it (as ip netns del does). */
static void remove_ns(struct netns_host *h)
{
	if (!h->path[0])
		return;
	kill_in(h->dev, h->ino);
	umount2(h->path, MNT_DETACH);
	unlink(h->path);
	h->ino = 0;
}

static void remove_net(struct netns_net *net)
{
	for (int i = 0; i < net->count; i++)
		remove_ns(&net->hosts[i]);
	remove_ns(&net->bridge);
}

static void remove_active(void)
{
	for (size_t i = 0; i < sizeof(active) / sizeof(active[0]); i++)
		if (active[i])
			remove_net(active[i]);
}

static const int caught[] = { SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGABRT };
static struct sigaction previous[sizeof(caught) / sizeof(caught[0])];

static void on_fatal(int sig)
{
	remove_active();
	for (size_t i = 0; i < sizeof(caught) / sizeof(caught[0]); i++)
		if (caught[i] == sig)
			sigaction(sig, &previous[i], NULL);
	raise(sig);
}

static void on_exit_remove(void)
{
	for (size_t i = 0; i < sizeof(active) / sizeof(active[0]); i++)
		if (active[i])
			netns_teardown(active[i]);
}

static void install_cleanup(void)
{
	static int installed;
	if (installed)
		return;
	installed = 1;
	atexit(on_exit_remove);
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_fatal;
	sigemptyset(&sa.sa_mask);
	for (size_t i = 0; i < sizeof(caught) / sizeof(caught[0]); i++)
		sigaction(caught[i], &sa, &previous[i]);
}

/* ---- commands ------------------------------------------------------------ */

/* Run a shell command; print it and its output when it fails. */
static int run(const char *fmt, ...)
{
	char cmd[1024], out[2048];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	char full[1100];
	snprintf(full, sizeof(full), "%s 2>&1", cmd);
	FILE *p = popen(full, "r");
	if (!p) {
		fprintf(stderr, "netns: cannot run %s\n", cmd);
		return -1;
	}
	size_t n = fread(out, 1, sizeof(out) - 1, p);
	out[n] = '\0';
	int st = pclose(p);
	if (st != 0) {
		fprintf(stderr, "netns: `%s` failed (status %d): %s\n", cmd, st, out);
		return -1;
	}
	return 0;
}

static int find_tool(char *out, size_t len, const char *const *candidates)
{
	for (int i = 0; candidates[i]; i++)
		if (access(candidates[i], X_OK) == 0) {
			snprintf(out, len, "%s", candidates[i]);
			return 0;
		}
	return -1;
}

/* Why partition tests cannot run here, or NULL. */
static const char *unavailable(void)
{
	static const char *const ips[] = { "/usr/sbin/ip", "/sbin/ip", "/usr/bin/ip",
					   "/bin/ip", NULL };
	static const char *const bridges[] = { "/usr/sbin/bridge", "/sbin/bridge",
					       "/usr/bin/bridge", "/bin/bridge", NULL };
	static const char *const nsenters[] = { "/usr/bin/nsenter", "/usr/sbin/nsenter",
						"/bin/nsenter", "/sbin/nsenter", NULL };
	static char why[256];
	if (geteuid() != 0)
		return "not root (network namespaces need CAP_SYS_ADMIN and CAP_NET_ADMIN)";
	if (find_tool(ip_bin, sizeof(ip_bin), ips) != 0)
		return "no ip (iproute2) found";
	if (find_tool(bridge_bin, sizeof(bridge_bin), bridges) != 0)
		return "no bridge (iproute2) found";
	if (find_tool(nsenter_bin, sizeof(nsenter_bin), nsenters) != 0)
		return "no nsenter (util-linux) found";
	/* root in name only (a container without CAP_SYS_ADMIN): try one */
	pid_t pid = fork();
	if (pid == 0)
		_exit(unshare(CLONE_NEWNET) == 0 ? 0 : 1);
	int st = 0;
	if (pid < 0 || waitpid(pid, &st, 0) != pid || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
		return "cannot create a network namespace (unshare(CLONE_NEWNET) fails)";
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "%s netns list >/dev/null 2>&1", ip_bin);
	if (system(cmd) != 0) {
		snprintf(why, sizeof(why), "`%s netns list` fails: no network namespaces here",
			 ip_bin);
		return why;
	}
	return NULL;
}

/* ---- stale namespaces ----------------------------------------------------- */

/* Remove rtcms<pid>-* namespaces whose process is gone (or that carry our
 * own pid from an earlier process: nothing of ours exists yet). */
static void remove_stale(void)
{
	DIR *d = opendir(NETNS_DIR);
	struct dirent *e;
	while (d && (e = readdir(d))) {
		int pid = 0, len = 0;
		if (sscanf(e->d_name, "rtcms%d-%n", &pid, &len) != 1 || len == 0 || pid <= 0)
			continue;
		if (pid != getpid() && (kill(pid, 0) == 0 || errno != ESRCH))
			continue; /* its test still runs */
		struct netns_host h;
		struct stat st;
		memset(&h, 0, sizeof(h));
		if (strlen(e->d_name) + sizeof(NETNS_DIR) + 1 > sizeof(h.path))
			continue;
		memcpy(h.path, NETNS_DIR "/", sizeof(NETNS_DIR));
		strcat(h.path, e->d_name);
		if (stat(h.path, &st) == 0) {
			h.dev = st.st_dev;
			h.ino = st.st_ino;
		}
		fprintf(stderr, "netns: removing stale namespace %s (its test, pid %d, is gone)\n",
			e->d_name, pid);
		remove_ns(&h);
	}
	if (d)
		closedir(d);
}

/* ---- setup ----------------------------------------------------------------- */

static int add_ns(struct netns_host *h)
{
	struct stat st;
	if (run("%s netns add %s", ip_bin, h->name) != 0)
		return -1;
	snprintf(h->path, sizeof(h->path), "%s/%s", NETNS_DIR, h->name);
	if (stat(h->path, &st) != 0) {
		fprintf(stderr, "netns: %s: %s\n", h->path, strerror(errno));
		return -1;
	}
	h->dev = st.st_dev;
	h->ino = st.st_ino;
	return 0;
}

static bool tag_ok(const char *tag)
{
	size_t n = strlen(tag);
	if (n == 0 || n > NETNS_TAG_MAX || strcmp(tag, "br") == 0)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((tag[i] >= 'a' && tag[i] <= 'z') || (tag[i] >= '0' && tag[i] <= '9')))
			return false;
	return true;
}

int netns_setup(struct netns_net *net, const char *const *tags)
{
	memset(net, 0, sizeof(*net));
	net->home_fd = -1;
	const char *why = unavailable();
	if (why) {
		printf("SKIP: partition tests need network namespaces: %s\n", why);
		fflush(stdout);
		skip();
	}
	install_cleanup();
	remove_stale();

	net->pid = getpid();
	snprintf(net->prefix, sizeof(net->prefix), "rtcms%d-", net->pid);
	/* distinct runs get distinct subnets (they could share one: nothing
	 * routes between their bridges; it keeps their logs apart) */
	snprintf(net->subnet, sizeof(net->subnet), "10.%d.%d", 100 + (net->pid >> 8) % 150,
		 net->pid & 0xff);
	for (size_t i = 0; i < sizeof(active) / sizeof(active[0]); i++)
		if (!active[i]) {
			active[i] = net;
			break;
		}
	net->up = true;

	snprintf(net->bridge.name, sizeof(net->bridge.name), "%sbr", net->prefix);
	if (add_ns(&net->bridge) != 0 ||
	    run("%s -n %s link add br0 type bridge", ip_bin, net->bridge.name) != 0 ||
	    run("%s -n %s link set br0 up", ip_bin, net->bridge.name) != 0)
		return -1;
	for (int i = 0; tags[i]; i++) {
		if (i >= NETNS_HOSTS_MAX || !tag_ok(tags[i])) {
			fprintf(stderr, "netns: bad host tag \"%s\" (or more than %d hosts)\n",
				tags[i], NETNS_HOSTS_MAX);
			return -1;
		}
		struct netns_host *h = &net->hosts[i];
		/* (through locals: h lies inside net, and gcc's -Wrestrict
		 * cannot tell the fields apart) */
		char tag[sizeof(h->tag)], prefix[sizeof(net->prefix)], subnet[sizeof(net->subnet)];
		snprintf(tag, sizeof(tag), "%s", tags[i]);
		snprintf(prefix, sizeof(prefix), "%s", net->prefix);
		snprintf(subnet, sizeof(subnet), "%s", net->subnet);
		snprintf(h->tag, sizeof(h->tag), "%s", tag);
		snprintf(h->name, sizeof(h->name), "%s%s", prefix, tag);
		snprintf(h->port, sizeof(h->port), "p-%s", tag);
		snprintf(h->ip, sizeof(h->ip), "%s.%d", subnet, 10 + i);
		net->count = i + 1;
		if (add_ns(h) != 0)
			return -1;
		char nspath[sizeof(h->path)];
		snprintf(nspath, sizeof(nspath), "%s", h->path);
		snprintf(h->nsarg, sizeof(h->nsarg), "--net=%s", nspath);
		h->wrap[0] = nsenter_bin;
		h->wrap[1] = h->nsarg;
		h->wrap[2] = "--";
		h->wrap[3] = NULL;
		if (run("%s -n %s link add %s type veth peer name eth0 netns %s", ip_bin,
			net->bridge.name, h->port, h->name) != 0 ||
		    run("%s -n %s link set %s master br0", ip_bin, net->bridge.name, h->port) ||
		    run("%s -n %s link set %s up", ip_bin, net->bridge.name, h->port) ||
		    run("%s -n %s link set lo up", ip_bin, h->name) ||
		    run("%s -n %s addr add %s/24 dev eth0", ip_bin, h->name, h->ip) ||
		    run("%s -n %s link set eth0 up", ip_bin, h->name))
			return -1;
	}
	return 0;
}

int netns_host(const struct netns_net *net, const char *tag)
{
	for (int i = 0; i < net->count; i++)
		if (strcmp(net->hosts[i].tag, tag) == 0)
			return i;
	return -1;
}

const char *netns_ip(const struct netns_net *net, int h)
{
	return net->hosts[h].ip;
}

const char *const *netns_wrap(const struct netns_net *net, int h)
{
	return net->hosts[h].wrap;
}

/* ---- entering ----------------------------------------------------------------- */

static int enter_path(const char *path)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	int rc = setns(fd, CLONE_NEWNET);
	close(fd);
	return rc;
}

int netns_enter(struct netns_net *net, int h)
{
	if (net->home_fd < 0) {
		net->home_fd = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
		if (net->home_fd < 0)
			return -1;
	}
	if (enter_path(net->hosts[h].path) != 0) {
		fprintf(stderr, "netns: cannot enter %s: %s\n", net->hosts[h].name,
			strerror(errno));
		return -1;
	}
	return 0;
}

void netns_leave(struct netns_net *net)
{
	if (net->home_fd < 0)
		return;
	if (setns(net->home_fd, CLONE_NEWNET) != 0)
		fprintf(stderr, "netns: cannot go back home: %s\n", strerror(errno));
	close(net->home_fd);
	net->home_fd = -1;
}

/* ---- faults ------------------------------------------------------------------- */

static int port_state(struct netns_net *net, int h, int state)
{
	return run("%s -n %s link set dev %s state %d", bridge_bin, net->bridge.name,
		   net->hosts[h].port, state);
}

int netns_isolate(struct netns_net *net, int h)
{
	if (port_state(net, h, 0) != 0) /* disabled: the bridge forwards nothing */
		return -1;
	net->hosts[h].isolated = true;
	return 0;
}

static int neigh(struct netns_net *net, int at, int of, bool bogus)
{
	if (bogus)
		return run("%s -n %s neigh replace %s lladdr " BOGUS_MAC " nud permanent dev eth0",
			   ip_bin, net->hosts[at].name, net->hosts[of].ip);
	return run("%s -n %s neigh del %s dev eth0", ip_bin, net->hosts[at].name,
		   net->hosts[of].ip);
}

int netns_cut(struct netns_net *net, int a, int b)
{
	if (net->cut_count >= NETNS_CUTS_MAX || a == b)
		return -1;
	net->cuts[net->cut_count][0] = a;
	net->cuts[net->cut_count][1] = b;
	net->cut_count++;
	return neigh(net, a, b, true) == 0 && neigh(net, b, a, true) == 0 ? 0 : -1;
}

int netns_heal(struct netns_net *net)
{
	int rc = 0;
	for (int i = 0; i < net->count; i++)
		if (net->hosts[i].isolated) {
			if (port_state(net, i, 3) != 0) /* forwarding */
				rc = -1;
			else
				net->hosts[i].isolated = false;
		}
	for (int i = 0; i < net->cut_count; i++) {
		int a = net->cuts[i][0], b = net->cuts[i][1];
		/* the entries go; the next packet resolves the real MAC */
		if (neigh(net, a, b, false) != 0 || neigh(net, b, a, false) != 0)
			rc = -1;
	}
	net->cut_count = 0;
	return rc;
}

/* One TCP connect from the calling thread's namespace to sa, waiting at
 * most ms: 1 established, 0 not (refused, unreachable, timed out), -1 on
 * a local error. */
static int connect_once(const struct sockaddr_in *sa, int ms)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -1;
	int result = 0;
	if (connect(fd, (const struct sockaddr *)sa, sizeof(*sa)) == 0) {
		result = 1;
	} else if (errno == EINPROGRESS) {
		struct pollfd p = { .fd = fd, .events = POLLOUT };
		int err = 0;
		socklen_t el = sizeof(err);
		result = poll(&p, 1, ms) == 1 &&
			 getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &el) == 0 && err == 0;
	}
	close(fd);
	return result;
}

static uint64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

int netns_reach(struct netns_net *net, int from, int to, int timeout_ms)
{
	struct sockaddr_in sa;
	socklen_t sl = sizeof(sa);
	int lfd = -1, result = -1;
	int here = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
	if (here < 0)
		return -1;
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	inet_pton(AF_INET, net->hosts[to].ip, &sa.sin_addr);
	if (enter_path(net->hosts[to].path) != 0 ||
	    (lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0 ||
	    bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) != 0 || listen(lfd, 16) != 0 ||
	    getsockname(lfd, (struct sockaddr *)&sa, &sl) != 0 ||
	    enter_path(net->hosts[from].path) != 0)
		goto out;
	/* again until the deadline: right after a heal the first try may fail
	 * at once (the neighbour entry is still FAILED), as on a real network */
	uint64_t deadline = mono_ms() + (uint64_t)timeout_ms;
	for (;;) {
		uint64_t now = mono_ms();
		if (now >= deadline) {
			result = 0;
			break;
		}
		result = connect_once(&sa, (int)(deadline - now));
		if (result != 0)
			break;
		usleep(10000);
	}
out:
	if (lfd >= 0)
		close(lfd);
	if (setns(here, CLONE_NEWNET) != 0)
		result = -1;
	close(here);
	return result;
}

/* ---- teardown ---------------------------------------------------------------- */

void netns_teardown(struct netns_net *net)
{
	if (!net->up)
		return;
	netns_leave(net);
	remove_net(net);
	for (size_t i = 0; i < sizeof(active) / sizeof(active[0]); i++)
		if (active[i] == net)
			active[i] = NULL;
	net->up = false;
}
