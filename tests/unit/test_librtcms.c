/*
 * test_librtcms.c - the library a protected program links: protect,
 * checkpoint into a shared area (read back the way the agent will read
 * it), restore into fresh memory, resume, and the error cases.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "area/area.h"
#include "rtcms.h"
#include "testutil.h"

static char *dir;
static char area_path[600];
static size_t area_len;

/* An area file like the agent will create. */
static int setup(void **state)
{
	(void)state;
	dir = tu_tmpdir("lib");
	snprintf(area_path, sizeof(area_path), "%s/area", dir);
	area_len = area_size_for(1 << 20);
	int fd = open(area_path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	if (fd < 0 || ftruncate(fd, (off_t)area_len) != 0)
		return -1;
	void *m = mmap(NULL, area_len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	close(fd);
	area_format(m, area_len);
	munmap(m, area_len);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	rtcms_finalize();
	unsetenv("RTCMS_AREA");
	unsetenv("RTCMS_RESTORE");
	tu_rmrf(dir);
	free(dir);
	return 0;
}

static void *map_area(void)
{
	int fd = open(area_path, O_RDWR);
	void *m = mmap(NULL, area_len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	close(fd);
	return m;
}

static void test_standalone(void **state)
{
	(void)state;
	uint64_t x = 5;
	struct rtcms_config cfg = { .area_capacity = 4096 };

	assert_int_equal(rtcms_checkpoint(), RTCMS_ESTATE);
	assert_int_equal(rtcms_protect(1, &x, sizeof(x)), RTCMS_ESTATE);
	assert_int_equal(rtcms_init(&cfg), 0);
	assert_int_equal(rtcms_init(&cfg), RTCMS_ESTATE);
	assert_int_equal(rtcms_restoring(), 0);
	assert_int_equal(rtcms_resume(), RTCMS_ESTATE);
	assert_int_equal(rtcms_protect(1, &x, sizeof(x)), 0);
	assert_int_equal(rtcms_protect(1, &x, sizeof(x)), RTCMS_EEXIST);
	assert_int_equal(rtcms_checkpoint(), 1);
	assert_int_equal(rtcms_checkpoint(), 2);
	assert_int_equal(rtcms_sequence(), 2);
	/* a region larger than the area: refused, nothing committed */
	char *big = calloc(1, 8192);
	assert_int_equal(rtcms_protect(2, big, 8192), 0);
	assert_int_equal(rtcms_checkpoint(), RTCMS_ENOSPC);
	assert_int_equal(rtcms_sequence(), 2);
	assert_int_equal(rtcms_unprotect(2), 0);
	assert_int_equal(rtcms_unprotect(2), RTCMS_ENOENT);
	assert_int_equal(rtcms_checkpoint(), 3);
	free(big);
}

static void test_checkpoint_restore_resume(void **state)
{
	(void)state;
	uint64_t counter = 41;
	uint8_t *table = malloc(300000);
	tu_fill(table, 300000, 7);

	setenv("RTCMS_AREA", area_path, 1);
	assert_int_equal(rtcms_init(NULL), 0);
	assert_int_equal(rtcms_protect(1, &counter, sizeof(counter)), 0);
	assert_int_equal(rtcms_protect(2, table, 300000), 0);
	counter++;
	assert_int_equal(rtcms_checkpoint(), 1);
	counter++;
	assert_int_equal(rtcms_checkpoint(), 2);
	/* what the agent sees */
	void *m = map_area();
	uint8_t *out = malloc(1 << 20);
	struct area_region r[AREA_MAX_REGIONS];
	uint64_t size, seq;
	uint32_t n;
	assert_int_equal(area_read(m, out, 1 << 20, &size, r, &n, &seq), 0);
	assert_int_equal(seq, 2);
	assert_int_equal(n, 2);
	assert_int_equal(r[0].id, 1);
	assert_memory_equal(out + r[0].offset, &counter, sizeof(counter));
	assert_memory_equal(out + r[1].offset, table, 300000);
	/* the program goes on and changes its state after the checkpoint */
	counter = 999;
	rtcms_finalize();

	/* restarted for a restore (here: same node, same area) */
	setenv("RTCMS_RESTORE", "1", 1);
	uint64_t counter2 = 0;
	uint8_t *table2 = calloc(1, 300000);
	uint8_t small[10];
	assert_int_equal(rtcms_init(NULL), 0);
	assert_int_equal(rtcms_restoring(), 1);
	assert_int_equal(rtcms_protect(1, &counter2, sizeof(counter2)), 0);
	assert_int_equal(counter2, 43); /* the checkpointed value, not 999 */
	assert_int_equal(rtcms_protect(2, small, sizeof(small)), RTCMS_EINVAL);
	assert_int_equal(rtcms_protect(3, small, sizeof(small)), RTCMS_ENOENT);
	assert_int_equal(rtcms_protect(2, table2, 300000), 0);
	tu_fill(table, 300000, 7);
	assert_memory_equal(table2, table, 300000);
	struct area_header *h = m;
	assert_int_equal(atomic_load(&h->resumed), 0);
	assert_int_equal(rtcms_resume(), 0);
	assert_int_equal(atomic_load(&h->resumed), 2);
	assert_int_equal(rtcms_restoring(), 0);
	/* checkpoints go on from the restored sequence */
	assert_int_equal(rtcms_checkpoint(), 3);
	munmap(m, area_len);
	free(out);
	free(table);
	free(table2);
}

static void test_restore_without_checkpoint(void **state)
{
	(void)state;
	setenv("RTCMS_AREA", area_path, 1);
	setenv("RTCMS_RESTORE", "1", 1);
	assert_int_equal(rtcms_init(NULL), RTCMS_ENOENT);
	setenv("RTCMS_AREA", "/nonexistent/area", 1);
	unsetenv("RTCMS_RESTORE");
	assert_int_equal(rtcms_init(NULL), RTCMS_ECONFIG);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_standalone, setup, teardown),
		cmocka_unit_test_setup_teardown(test_checkpoint_restore_resume, setup, teardown),
		cmocka_unit_test_setup_teardown(test_restore_without_checkpoint, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
