/*
 * netns.h - network namespaces for partition tests (root only).
 *
 * Each host of a test (a daemon, or the test itself) gets a network
 * namespace of its own, "rtcms<pid>-<tag>"; all of them hang on one bridge
 * that lives in a namespace of its own ("rtcms<pid>-br"), on the subnet
 * 10.A.B.0/24 derived from the test's pid, host i at 10.A.B.(10+i). Nothing
 * is added to the caller's namespace: the test reaches the daemons by
 * entering a host namespace of its own (netns_enter()).
 *
 * Faults are silent, as on a real partition (packets vanish, no errors,
 * carriers stay up):
 *   - netns_isolate(): the host's port on the bridge is disabled (bridge
 *     link set ... state disabled): it reaches nobody, nobody reaches it;
 *   - netns_cut(): two hosts resolve each other's address to a MAC that no
 *     interface has (a permanent neighbour entry): the frames are flooded
 *     and dropped by everyone, while both still reach every other host;
 *   - netns_heal() undoes every cut.
 * netns_reach() checks with a real TCP connect whether one host reaches
 * another, so a test can prove its cuts work before it relies on them.
 *
 * Cleanup removes everything created, whatever happens: netns_teardown(),
 * an atexit handler, and handlers for SIGINT, SIGTERM, SIGHUP, SIGQUIT and
 * SIGABRT (async-signal-safe: they kill every process left in the
 * namespaces and unmount them). netns_setup() also removes namespaces of
 * earlier runs whose process is gone (rtcms<deadpid>-*): a SIGKILLed test
 * (a CTest timeout) leaves them behind.
 */
#ifndef RTCMS_TEST_NETNS_H
#define RTCMS_TEST_NETNS_H

#include <stdbool.h>
#include <sys/types.h>

#define NETNS_HOSTS_MAX 12
#define NETNS_TAG_MAX 12 /* "p-" + tag is the bridge port's name (< IFNAMSIZ) */
#define NETNS_CUTS_MAX 32

struct netns_host {
	char tag[NETNS_TAG_MAX + 1]; /* the test's name for it, e.g. "m2" */
	char name[48];               /* its namespace: rtcms<pid>-<tag> */
	char path[96];               /* /run/netns/<name> */
	char ip[20];                 /* its address */
	char port[NETNS_TAG_MAX + 3];/* its port on the bridge: p-<tag> */
	char nsarg[112];             /* --net=<path> */
	const char *wrap[6];         /* argv prefix that runs a program in it */
	dev_t dev;                   /* the namespace's identity (nsfs) */
	ino_t ino;
	bool isolated;
};

struct netns_net {
	int pid;                     /* the creating process */
	char prefix[24];             /* rtcms<pid>- */
	char subnet[16];             /* 10.A.B */
	struct netns_host bridge;    /* the bridge's namespace (no address) */
	int count;
	struct netns_host hosts[NETNS_HOSTS_MAX];
	int cuts[NETNS_CUTS_MAX][2]; /* pairs cut by netns_cut() */
	int cut_count;
	int home_fd;                 /* namespace of the thread before netns_enter() */
	bool up;
};

/*
 * Create the bridge namespace and one namespace per tag (NULL-terminated,
 * at most NETNS_HOSTS_MAX; tags of [a-z0-9], NETNS_TAG_MAX long), loopback
 * up in each. Call it from a cmocka test: when the process is not root or
 * ip netns, bridge or nsenter is unavailable it prints why and calls
 * skip(). Returns 0, or -1 (printed) when a command failed; whatever was
 * created is removed by netns_teardown() either way.
 */
int netns_setup(struct netns_net *net, const char *const *tags);

/* Index of the host with this tag, or -1. */
int netns_host(const struct netns_net *net, const char *tag);
/* Address of host h ("10.A.B.C"); borrowed, valid until teardown. */
const char *netns_ip(const struct netns_net *net, int h);
/* argv prefix (NULL-terminated) that runs a program in host h's namespace
 * with its pid unchanged (nsenter --net=...), for tu_exec_prefix. */
const char *const *netns_wrap(const struct netns_net *net, int h);

/* Move the calling thread into host h's namespace (sockets it opens from
 * now on live there; children it forks start there). Returns 0 or -1. */
int netns_enter(struct netns_net *net, int h);
/* Back to the namespace the thread had before netns_enter(). */
void netns_leave(struct netns_net *net);

/* Cut host h off from every other host. Returns 0 or -1. */
int netns_isolate(struct netns_net *net, int h);
/* Cut hosts a and b off from each other only. Returns 0 or -1. */
int netns_cut(struct netns_net *net, int a, int b);
/* Undo every isolation and cut. Returns 0 or -1 (a command failed). */
int netns_heal(struct netns_net *net);

/* 1 if a TCP connection from host from to host to is established within
 * timeout_ms (tried again while it fails at once, as right after a heal
 * while a neighbour entry is still FAILED), 0 if not, -1 on a local
 * error. Uses the calling thread, which ends in the namespace it started
 * in. */
int netns_reach(struct netns_net *net, int from, int to, int timeout_ms);

/* Kill every process still in the namespaces (the caller excepted), remove
 * them and the bridge; the calling thread goes back home first. Safe to
 * call twice, or on a net whose setup failed or skipped. */
void netns_teardown(struct netns_net *net);

#endif
