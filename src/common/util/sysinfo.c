/* sysinfo.c - memory, CPU load and node id of this node. */
#include "sysinfo.h"

#include <dirent.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rtcms_error.h"

static int field_kb(const char *text, const char *name, uint64_t *out)
{
	const char *p = text;
	size_t n = strlen(name);
	while (p && *p) {
		if (strncmp(p, name, n) == 0 && p[n] == ':') {
			unsigned long long v;
			if (sscanf(p + n + 1, " %llu kB", &v) != 1 || v > UINT64_MAX / 1024)
				return RTCMS_EPROTO;
			*out = (uint64_t)v * 1024;
			return 0;
		}
		p = strchr(p, '\n');
		if (p)
			p++;
	}
	return RTCMS_EPROTO;
}

int sysinfo_parse_meminfo(const char *text, uint64_t *total, uint64_t *available)
{
	if (field_kb(text, "MemTotal", total) || field_kb(text, "MemAvailable", available) ||
	    *available > *total)
		return RTCMS_EPROTO;
	return 0;
}

int sysinfo_parse_stat(const char *text, struct cpu_sample *out)
{
	unsigned long long v[8] = { 0 };
	if (strncmp(text, "cpu ", 4) != 0 ||
	    sscanf(text + 4, "%llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1],
		   &v[2], &v[3], &v[4], &v[5], &v[6], &v[7]) < 4)
		return RTCMS_EPROTO;
	/* user nice system idle iowait irq softirq steal */
	out->busy = v[0] + v[1] + v[2] + v[5] + v[6] + v[7];
	out->total = out->busy + v[3] + v[4];
	return 0;
}

uint16_t sysinfo_load_permille(const struct cpu_sample *a, const struct cpu_sample *b)
{
	if (b->total <= a->total || b->busy < a->busy)
		return 0;
	uint64_t busy = b->busy - a->busy, total = b->total - a->total;
	if (busy > total)
		busy = total;
	return (uint16_t)(busy * 1000 / total);
}

void sysinfo_window_add(struct cpu_window *w, const struct cpu_sample *s)
{
	w->s[w->next] = *s;
	w->next = (w->next + 1) % SYSINFO_WINDOW;
	if (w->count < SYSINFO_WINDOW)
		w->count++;
}

uint16_t sysinfo_window_load(const struct cpu_window *w)
{
	if (w->count < 2)
		return 0;
	unsigned newest = (w->next + SYSINFO_WINDOW - 1) % SYSINFO_WINDOW;
	unsigned oldest = (w->next + SYSINFO_WINDOW - w->count) % SYSINFO_WINDOW;
	return sysinfo_load_permille(&w->s[oldest], &w->s[newest]);
}

/* A hexadecimal digit's value into *v; false if c is none. */
static bool hexval(char c, int *v)
{
	if (c >= '0' && c <= '9')
		*v = c - '0';
	else if (c >= 'a' && c <= 'f')
		*v = c - 'a' + 10;
	else if (c >= 'A' && c <= 'F')
		*v = c - 'A' + 10;
	else
		return false;
	return true;
}

int sysinfo_parse_mac(const char *text, uint64_t *out)
{
	uint64_t v = 0;
	/* exactly "xx:xx:xx:xx:xx:xx", optionally followed by a newline */
	for (int i = 0; i < 17; i++) {
		if (i % 3 == 2) {
			if (text[i] != ':')
				return RTCMS_EINVAL;
			continue;
		}
		int h;
		if (!hexval(text[i], &h))
			return RTCMS_EINVAL;
		v = v << 4 | (uint64_t)h;
	}
	if (text[17] != '\0' && !(text[17] == '\n' && text[18] == '\0'))
		return RTCMS_EINVAL;
	*out = v;
	return 0;
}

/* Interface of the default route (destination 00000000) in route text. */
static int default_iface(const char *route, char *ifname, size_t len)
{
	const char *p = strchr(route, '\n'); /* skip the header line */
	while (p && *++p) {
		char name[64];
		unsigned long dest;
		if (sscanf(p, "%63s %lx", name, &dest) == 2 && dest == 0) {
			snprintf(ifname, len, "%s", name);
			return 0;
		}
		p = strchr(p, '\n');
	}
	return RTCMS_ENOENT;
}

int sysinfo_node_id_from(const char *route, const char *interfaces,
			 int (*mac_of)(const char *ifname, char *buf, size_t len),
			 uint64_t *id, char *ifname, size_t ifname_len)
{
	char buf[64];
	uint64_t v;

	if (route && default_iface(route, ifname, ifname_len) == 0 &&
	    mac_of(ifname, buf, sizeof(buf)) == 0 && sysinfo_parse_mac(buf, &v) == 0 &&
	    v != 0) {
		*id = v;
		return 0;
	}
	for (const char *n = interfaces; n && *n; n += strlen(n) + 1) {
		if (strcmp(n, "lo") == 0)
			continue;
		if (mac_of(n, buf, sizeof(buf)) == 0 && sysinfo_parse_mac(buf, &v) == 0 &&
		    v != 0) {
			snprintf(ifname, ifname_len, "%s", n);
			*id = v;
			return 0;
		}
	}
	return RTCMS_ENOENT;
}

static int read_text(const char *path, char *buf, size_t len)
{
	FILE *f = fopen(path, "r");
	if (!f)
		return RTCMS_EIO;
	size_t n = fread(buf, 1, len - 1, f);
	fclose(f);
	buf[n] = '\0';
	return 0;
}

int sysinfo_meminfo_read(uint64_t *total, uint64_t *available)
{
	char buf[8192];
	int rc = read_text("/proc/meminfo", buf, sizeof(buf));
	return rc ? rc : sysinfo_parse_meminfo(buf, total, available);
}

int sysinfo_stat_read(struct cpu_sample *out)
{
	char buf[4096];
	int rc = read_text("/proc/stat", buf, sizeof(buf));
	return rc ? rc : sysinfo_parse_stat(buf, out);
}

static int sys_mac_of(const char *ifname, char *buf, size_t len)
{
	char path[256];
	if (strchr(ifname, '/'))
		return RTCMS_EINVAL;
	snprintf(path, sizeof(path), "/sys/class/net/%s/address", ifname);
	return read_text(path, buf, len);
}

int sysinfo_node_id(uint64_t *id, char *ifname, size_t ifname_len)
{
	char route[8192], names[4096];
	size_t used = 0;
	int have_route = read_text("/proc/net/route", route, sizeof(route)) == 0;
	DIR *d = opendir("/sys/class/net");
	struct dirent *e;
	/* sorted enough for a fallback: readdir order, names NUL-separated */
	while (d && (e = readdir(d)) != NULL) {
		size_t n = strlen(e->d_name);
		if (e->d_name[0] == '.' || used + n + 2 > sizeof(names))
			continue;
		memcpy(names + used, e->d_name, n + 1);
		used += n + 1;
	}
	if (d)
		closedir(d);
	names[used] = '\0';
	return sysinfo_node_id_from(have_route ? route : NULL, names, sys_mac_of, id,
				    ifname, ifname_len);
}

int sysinfo_parse_cgroup_path(const char *text, const char *controller, char *path,
			      size_t len)
{
	const char *line = text;
	while (line && *line) {
		const char *end = strchr(line, '\n');
		size_t n = end ? (size_t)(end - line) : strlen(line);
		const char *c1 = memchr(line, ':', n);
		const char *c2 = c1 ? memchr(c1 + 1, ':', n - (size_t)(c1 + 1 - line)) : NULL;
		if (c2) {
			size_t clen = (size_t)(c2 - c1 - 1);
			int match = 0;
			if (!controller) {
				match = clen == 0 && strncmp(line, "0:", 2) == 0;
			} else { /* v1: a comma list of controllers */
				const char *p = c1 + 1;
				while (p < c2 && !match) {
					const char *q = memchr(p, ',', (size_t)(c2 - p));
					size_t l = q ? (size_t)(q - p) : (size_t)(c2 - p);
					match = l == strlen(controller) && strncmp(p, controller, l) == 0;
					p = q ? q + 1 : c2;
				}
			}
			size_t plen = n - (size_t)(c2 + 1 - line);
			if (match && plen >= 1 && c2[1] == '/' && plen < len) {
				memcpy(path, c2 + 1, plen);
				path[plen] = '\0';
				return 0;
			}
		}
		line = end ? end + 1 : NULL;
	}
	return RTCMS_ENOENT;
}

int sysinfo_parse_limit(const char *text, uint64_t *out)
{
	unsigned long long v;
	char *end;
	if (strncmp(text, "max", 3) == 0) {
		*out = UINT64_MAX;
		return 0;
	}
	v = strtoull(text, &end, 10);
	if (end == text || (*end && *end != '\n'))
		return RTCMS_EPROTO;
	/* cgroup v1 spells "no limit" as a huge page-rounded number */
	*out = v >= (1ull << 62) ? UINT64_MAX : (uint64_t)v;
	return 0;
}

static int read_limit(const char *dir, const char *path, const char *file, uint64_t *out)
{
	char name[1024], buf[64];
	snprintf(name, sizeof(name), "%s%s/%s", dir, strcmp(path, "/") ? path : "", file);
	FILE *f = fopen(name, "r");
	if (!f)
		return RTCMS_ENOENT;
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	return sysinfo_parse_limit(buf, out);
}

/* room = max - current, or UINT64_MAX if there is no limit we can read */
static uint64_t room(const char *dir, const char *path, const char *max_file,
		     const char *cur_file)
{
	uint64_t max, cur;
	if (read_limit(dir, path, max_file, &max) || max == UINT64_MAX ||
	    read_limit(dir, path, cur_file, &cur))
		return UINT64_MAX;
	return cur >= max ? 0 : max - cur;
}

void sysinfo_cgroup_room(uint64_t *mem, uint64_t *pids)
{
	char text[4096], path[512];
	*mem = *pids = UINT64_MAX;
	FILE *f = fopen("/proc/self/cgroup", "r");
	if (!f)
		return;
	size_t n = fread(text, 1, sizeof(text) - 1, f);
	fclose(f);
	text[n] = '\0';
	if (sysinfo_parse_cgroup_path(text, "memory", path, sizeof(path)) == 0)
		*mem = room("/sys/fs/cgroup/memory", path, "memory.limit_in_bytes",
			    "memory.usage_in_bytes");
	if (sysinfo_parse_cgroup_path(text, "pids", path, sizeof(path)) == 0)
		*pids = room("/sys/fs/cgroup/pids", path, "pids.max", "pids.current");
	if (sysinfo_parse_cgroup_path(text, NULL, path, sizeof(path)) == 0) {
		uint64_t m = room("/sys/fs/cgroup", path, "memory.max", "memory.current");
		uint64_t p = room("/sys/fs/cgroup", path, "pids.max", "pids.current");
		if (m < *mem)
			*mem = m;
		if (p < *pids)
			*pids = p;
	}
}
