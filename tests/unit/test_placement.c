/* test_placement.c - filtering and scoring of candidate nodes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "manager/placement.h"
#include "rtcms_error.h"

#define MiB (1ull << 20)
#define GiB (1ull << 30)

static struct placement_node node(uint64_t id, uint64_t avail, uint16_t load,
				  uint32_t qfree, int alive)
{
	struct placement_node n;
	memset(&n, 0, sizeof(n));
	n.info.node = id;
	n.info.mem_total = 16 * GiB;
	n.info.mem_available = avail;
	n.info.cpu_load_permille = load;
	n.info.quota_max = 8;
	n.info.quota_free = qfree;
	n.alive = alive;
	return n;
}

static void test_filter(void **state)
{
	(void)state;
	struct placement_config cfg;
	placement_defaults(&cfg);
	struct placement_node n[] = {
		node(1, 8 * GiB, 0, 4, 0),             /* dead */
		node(2, 8 * GiB, 0, 0, 1),             /* no quota */
		node(3, 100 * MiB, 0, 4, 1),           /* too little RAM with the reserve */
		node(4, 8 * GiB, 900, 4, 1),           /* the source */
	};
	double s[4];
	assert_int_equal(placement_choose(&cfg, n, 4, 64 * MiB, 4, 0, s), RTCMS_ENOSPC);
	assert_true(s[0] < 0 && s[1] < 0 && s[2] < 0 && s[3] < 0);
	/* migration back to the same node, when asked for */
	assert_int_equal(placement_choose(&cfg, n, 4, 64 * MiB, 4, 1, s), 3);
	/* 100 MiB free is enough for a 30 MiB image with the 64 MiB reserve */
	assert_int_equal(placement_choose(&cfg, n, 4, 30 * MiB, 4, 0, s), 2);
}

static void test_weighted_prefers_headroom(void **state)
{
	(void)state;
	struct placement_config cfg;
	placement_defaults(&cfg);
	struct placement_node n[] = {
		node(10, 2 * GiB, 100, 2, 1),
		node(11, 12 * GiB, 800, 6, 1),  /* most RAM and quota, busy CPU */
		node(12, 12 * GiB, 100, 6, 1),  /* as much, idle CPU: the best */
	};
	assert_int_equal(placement_choose(&cfg, n, 3, 256 * MiB, 99, 0, NULL), 2);
	/* CPU only: the least loaded (ties to the lower id: 10 vs 12) */
	cfg.w_ram = 0;
	cfg.w_quota = 0;
	cfg.w_cpu = 1;
	assert_int_equal(placement_choose(&cfg, n, 3, 256 * MiB, 99, 0, NULL), 0);
	/* re-queried after a placement, the chosen node has less room and
	 * the next program goes elsewhere */
	placement_defaults(&cfg);
	n[2].info.mem_available = 1 * GiB;
	n[2].info.quota_free = 1;
	assert_int_equal(placement_choose(&cfg, n, 3, 256 * MiB, 99, 0, NULL), 1);
}

static void test_thesis_metric_and_ties(void **state)
{
	(void)state;
	struct placement_config cfg;
	placement_defaults(&cfg);
	assert_int_equal(placement_policy_parse("thesis", &cfg.policy), 0);
	assert_int_equal(placement_policy_parse("magic", &cfg.policy), RTCMS_EINVAL);
	struct placement_node n[] = {
		node(7, 4 * GiB, 999, 4, 1),   /* 4 GiB x 4 */
		node(5, 8 * GiB, 0, 1, 1),     /* 8 GiB x 1 */
		node(3, 2 * GiB, 0, 8, 1),     /* 2 GiB x 8: ties with node 7 - lower id wins */
	};
	/* free RAM is counted after reserve and image: make them equal */
	uint64_t img = 0;
	cfg.ram_reserve = 0;
	assert_int_equal(placement_choose(&cfg, n, 3, img, 0, 0, NULL), 2);
	/* identical nodes: the lowest id, whatever the order */
	struct placement_node same[] = { node(9, GiB, 0, 1, 1), node(4, GiB, 0, 1, 1),
					 node(6, GiB, 0, 1, 1) };
	placement_defaults(&cfg);
	assert_int_equal(placement_choose(&cfg, same, 3, 0, 0, 0, NULL), 1);
}

/* A cordoned node gets nothing new, however good it is; uncordoned it is a
 * candidate again. The source exemption (allow_source) does not lift it:
 * a drained node's own programs do not restart in place. */
static void test_cordoned(void **state)
{
	(void)state;
	struct placement_config cfg;
	placement_defaults(&cfg);
	struct placement_node n[] = {
		node(2, 12 * GiB, 0, 8, 1),    /* the best, but cordoned */
		node(3, 2 * GiB, 500, 2, 1),
	};
	n[0].cordoned = 1;
	double s[2];
	assert_int_equal(placement_choose(&cfg, n, 2, 64 * MiB, 0, 1, s), 1);
	assert_true(s[0] < 0 && s[1] > 0);
	assert_int_equal(placement_choose(&cfg, n, 2, 64 * MiB, 2, 1, NULL), 1);
	/* the only candidate cordoned: nowhere */
	n[1].cordoned = 1;
	assert_int_equal(placement_choose(&cfg, n, 2, 64 * MiB, 0, 1, NULL), RTCMS_ENOSPC);
	/* uncordoned: eligible again, and the best again */
	n[0].cordoned = 0;
	n[1].cordoned = 0;
	assert_int_equal(placement_choose(&cfg, n, 2, 64 * MiB, 0, 1, NULL), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_filter),
		cmocka_unit_test(test_weighted_prefers_headroom),
		cmocka_unit_test(test_thesis_metric_and_ties),
		cmocka_unit_test(test_cordoned),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
