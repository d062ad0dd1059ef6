/*
 * sysinfo.h - what the agent's info interface reports about its node:
 * memory (MemAvailable), CPU load over a sliding window (from /proc/stat:
 * the load the thesis could not measure on Genode), and the node id (the
 * MAC of the interface carrying the default route, overridable in config).
 * The parsers are pure and take the files' text, so tests feed them any
 * content; the *_read() functions read the real files.
 */
#ifndef RTCMS_SYSINFO_H
#define RTCMS_SYSINFO_H

#include <stddef.h>
#include <stdint.h>

/* Parse /proc/meminfo text: MemTotal and MemAvailable in bytes.
 * 0 or RTCMS_EPROTO. */
int sysinfo_parse_meminfo(const char *text, uint64_t *total, uint64_t *available);

struct cpu_sample {
	uint64_t busy;   /* user+nice+system+irq+softirq+steal jiffies */
	uint64_t total;  /* busy + idle + iowait */
};

/* Parse the aggregate "cpu" line of /proc/stat text. 0 or RTCMS_EPROTO. */
int sysinfo_parse_stat(const char *text, struct cpu_sample *out);

/* Load between two samples in permille (0..1000); 0 if no time passed. */
uint16_t sysinfo_load_permille(const struct cpu_sample *older,
			       const struct cpu_sample *newer);

/* A sliding window of CPU samples (e.g. one per 100 ms, 10 of them). */
#define SYSINFO_WINDOW 16
struct cpu_window {
	struct cpu_sample s[SYSINFO_WINDOW];
	unsigned count, next;
};

/* Add a sample; the load over the window is between its oldest and newest
 * sample. */
void sysinfo_window_add(struct cpu_window *w, const struct cpu_sample *s);
uint16_t sysinfo_window_load(const struct cpu_window *w);

/*
 * Node id from /proc/net/route and /sys/class/net/IF/address text: the MAC
 * of the default-route interface (else of the first interface with a
 * non-zero MAC) as a 48-bit number. route is the route file's text,
 * mac_of(ifname, buf, len) fetches an interface's address text and lists
 * (interface names, NUL-separated, ending with an empty name) the
 * interfaces. Returns 0 and *id (and the interface in ifname), or
 * RTCMS_ENOENT.
 */
int sysinfo_node_id_from(const char *route, const char *interfaces,
			 int (*mac_of)(const char *ifname, char *buf, size_t len),
			 uint64_t *id, char *ifname, size_t ifname_len);

/* Parse "aa:bb:cc:dd:ee:ff" into a 48-bit number. 0 or RTCMS_EINVAL. */
int sysinfo_parse_mac(const char *text, uint64_t *out);

/* The same, from this machine's real files. */
int sysinfo_meminfo_read(uint64_t *total, uint64_t *available);
int sysinfo_stat_read(struct cpu_sample *out);
int sysinfo_node_id(uint64_t *id, char *ifname, size_t ifname_len);

/*
 * cgroups: the path of this process' cgroup for a v1 controller
 * ("memory", "pids") or, with controller NULL, the v2 unified one, from
 * /proc/self/cgroup text. 0 or RTCMS_ENOENT.
 */
int sysinfo_parse_cgroup_path(const char *text, const char *controller, char *path,
			      size_t len);
/* A cgroup limit file: a number, or "max" (and v1's huge "no limit"
 * numbers) as UINT64_MAX. 0 or RTCMS_EPROTO. */
int sysinfo_parse_limit(const char *text, uint64_t *out);
/* Room left in this process' cgroups (v1 or v2): memory bytes and pids;
 * UINT64_MAX where there is no limit (or none readable). */
void sysinfo_cgroup_room(uint64_t *mem, uint64_t *pids);

#endif
