/* test_sysinfo.c - memory, CPU load and node id parsing for the agent's
 * info interface, on canned text and on this machine's real files. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#include "rtcms_error.h"
#include "util/sysinfo.h"

static void test_meminfo(void **state)
{
	(void)state;
	uint64_t t, a;
	assert_int_equal(sysinfo_parse_meminfo("MemTotal:       24684092 kB\n"
					       "MemFree:        1000 kB\n"
					       "MemAvailable:   24269788 kB\n", &t, &a), 0);
	assert_int_equal(t, 24684092ull * 1024);
	assert_int_equal(a, 24269788ull * 1024);
	assert_int_equal(sysinfo_parse_meminfo("MemTotal: 10 kB\n", &t, &a), RTCMS_EPROTO);
	assert_int_equal(sysinfo_parse_meminfo("MemTotal: 10 kB\nMemAvailable: 20 kB\n", &t, &a),
			 RTCMS_EPROTO); /* more available than total */
	assert_int_equal(sysinfo_parse_meminfo("garbage", &t, &a), RTCMS_EPROTO);
	assert_int_equal(sysinfo_meminfo_read(&t, &a), 0);
	assert_true(t > 0 && a > 0 && a <= t);
}

static void test_cpu_load(void **state)
{
	(void)state;
	struct cpu_sample a, b;
	assert_int_equal(sysinfo_parse_stat("cpu  100 0 100 800 0 0 0 0 0 0\ncpu0 1 2 3 4\n", &a), 0);
	assert_int_equal(a.busy, 200);
	assert_int_equal(a.total, 1000);
	/* 300 busy out of 400 more jiffies: 75 % */
	assert_int_equal(sysinfo_parse_stat("cpu  250 0 250 900 0 0 0 0 0 0\n", &b), 0);
	assert_int_equal(sysinfo_load_permille(&a, &b), 750);
	assert_int_equal(sysinfo_load_permille(&b, &a), 0); /* backwards: 0 */
	assert_int_equal(sysinfo_parse_stat("intr 1 2 3\n", &a), RTCMS_EPROTO);

	struct cpu_window w;
	memset(&w, 0, sizeof(w));
	assert_int_equal(sysinfo_window_load(&w), 0);
	/* 100 jiffies per sample, 50 % busy up to sample 10, then 100 % */
	for (int i = 0; i < 20; i++) {
		uint64_t busy = i <= 10 ? (uint64_t)i * 50 : 500 + (uint64_t)(i - 10) * 100;
		struct cpu_sample s = { busy, (uint64_t)i * 100 };
		sysinfo_window_add(&w, &s);
	}
	assert_int_equal(w.count, SYSINFO_WINDOW);
	/* the window holds samples 4..19 (the oldest 4 fell out): busy
	 * 200 -> 1400 of total 400 -> 1900 = 800 permille (736 with them) */
	assert_int_equal(sysinfo_window_load(&w), 800);
	assert_int_equal(sysinfo_stat_read(&a), 0);
	assert_true(a.total >= a.busy);
}

static const char *fake_macs[][2] = {
	{ "eth0", "02:fc:00:00:00:01\n" },
	{ "ifb0", "8e:81:cf:49:a9:c6\n" },
	{ "lo", "00:00:00:00:00:00\n" },
	{ "dead", "00:00:00:00:00:00\n" },
};

static int fake_mac_of(const char *ifname, char *buf, size_t len)
{
	for (size_t i = 0; i < sizeof(fake_macs) / sizeof(fake_macs[0]); i++)
		if (strcmp(fake_macs[i][0], ifname) == 0) {
			snprintf(buf, len, "%s", fake_macs[i][1]);
			return 0;
		}
	return RTCMS_ENOENT;
}

static void test_node_id(void **state)
{
	(void)state;
	uint64_t id, v;
	char ifn[32];
	const char *route = "Iface\tDestination\tGateway\n"
			    "ifb0\t000200C0\t00000000\n"
			    "eth0\t00000000\t010200C0\n";
	const char names[] = "lo\0ifb0\0eth0\0";

	assert_int_equal(sysinfo_node_id_from(route, names, fake_mac_of, &id, ifn, sizeof(ifn)), 0);
	assert_string_equal(ifn, "eth0");
	assert_int_equal(id, 0x02fc00000001ull);
	/* no default route: the first interface with a real MAC */
	assert_int_equal(sysinfo_node_id_from(NULL, names, fake_mac_of, &id, ifn, sizeof(ifn)), 0);
	assert_string_equal(ifn, "ifb0");
	const char none[] = "lo\0dead\0";
	assert_int_equal(sysinfo_node_id_from(NULL, none, fake_mac_of, &id, ifn, sizeof(ifn)),
			 RTCMS_ENOENT);

	assert_int_equal(sysinfo_parse_mac("AA:bb:0c:0d:0e:0f", &v), 0);
	assert_int_equal(v, 0xaabb0c0d0e0full);
	assert_int_equal(sysinfo_parse_mac("aa:bb:cc:dd:ee", &v), RTCMS_EINVAL);
	assert_int_equal(sysinfo_parse_mac("aa:bb:cc:dd:ee:ff:00", &v), RTCMS_EINVAL);
	assert_int_equal(sysinfo_parse_mac("aa-bb-cc-dd-ee-ff", &v), RTCMS_EINVAL);
	assert_int_equal(sysinfo_parse_mac("a:bb:cc:dd:ee:ff0", &v), RTCMS_EINVAL);

	/* this machine has some interface with a MAC (or none: then ENOENT) */
	int rc = sysinfo_node_id(&id, ifn, sizeof(ifn));
	assert_true(rc == 0 || rc == RTCMS_ENOENT);
	if (rc == 0)
		print_message("this node: %012llx from %s\n", (unsigned long long)id, ifn);
}

static void test_cgroup(void **state)
{
	char path[256];
	uint64_t v;
	(void)state;
	const char *v1 = "9:name=systemd:/\n8:pids:/user.slice\n4:memory:/a/b\n"
			 "3:cpu,cpuacct:/x\n0::/\n";
	assert_int_equal(sysinfo_parse_cgroup_path(v1, "memory", path, sizeof(path)), 0);
	assert_string_equal(path, "/a/b");
	assert_int_equal(sysinfo_parse_cgroup_path(v1, "pids", path, sizeof(path)), 0);
	assert_string_equal(path, "/user.slice");
	assert_int_equal(sysinfo_parse_cgroup_path(v1, "cpuacct", path, sizeof(path)), 0);
	assert_string_equal(path, "/x");
	assert_int_equal(sysinfo_parse_cgroup_path(v1, NULL, path, sizeof(path)), 0);
	assert_string_equal(path, "/");
	assert_int_equal(sysinfo_parse_cgroup_path(v1, "blkio", path, sizeof(path)),
			 RTCMS_ENOENT);
	assert_int_equal(sysinfo_parse_cgroup_path("0::/system.slice/rtcms.service", NULL,
						   path, sizeof(path)), 0);
	assert_string_equal(path, "/system.slice/rtcms.service");
	assert_int_equal(sysinfo_parse_cgroup_path("garbage", "memory", path, sizeof(path)),
			 RTCMS_ENOENT);
	assert_int_equal(sysinfo_parse_cgroup_path("4:memory:/very/long", "memory", path, 5),
			 RTCMS_ENOENT);

	assert_int_equal(sysinfo_parse_limit("max\n", &v), 0);
	assert_true(v == UINT64_MAX);
	assert_int_equal(sysinfo_parse_limit("1048576\n", &v), 0);
	assert_int_equal(v, 1048576);
	assert_int_equal(sysinfo_parse_limit("9223372036854771712\n", &v), 0);
	assert_true(v == UINT64_MAX); /* v1's "no limit" */
	assert_int_equal(sysinfo_parse_limit("12x", &v), RTCMS_EPROTO);
	assert_int_equal(sysinfo_parse_limit("", &v), RTCMS_EPROTO);

	uint64_t mem, pids; /* this machine's own: whatever it is, it answers */
	sysinfo_cgroup_room(&mem, &pids);
	assert_true(mem > 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_meminfo),
		cmocka_unit_test(test_cpu_load),
		cmocka_unit_test(test_node_id),
		cmocka_unit_test(test_cgroup),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
