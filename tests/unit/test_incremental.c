/*
 * test_incremental.c - librtcms' incremental checkpoints: write-fault
 * tracking, comparison, full copies; checked against shadow copies of the
 * program's state over many checkpoints, with threads writing during
 * checkpoints, a program's own SIGSEGV handler, regions that come and go,
 * and regions that cannot be write-protected; and SIGSEGVs that are not
 * write faults (sent with kill/raise/sigqueue, or real invalid accesses)
 * getting the action the program had before, in child processes.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "area/area.h"
#include "area/image.h"
#include "lib/track.h"
#include "rtcms.h"
#include "testutil.h"
#include "util/tsan.h"

#define CAP (12u << 20)

static char *dir;
static char area_path[600];
static size_t area_len;
static void *area;             /* the test's view of the program's area */
static uint8_t *readback;      /* a committed checkpoint copied out */

static int make_area(const char *path)
{
	int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	if (fd < 0 || ftruncate(fd, (off_t)area_len) != 0)
		return -1;
	void *m = mmap(NULL, area_len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	close(fd);
	if (m == MAP_FAILED)
		return -1;
	area_format(m, area_len);
	munmap(m, area_len);
	return 0;
}

static void *map_file(const char *path)
{
	int fd = open(path, O_RDWR);
	void *m = mmap(NULL, area_len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	close(fd);
	return m == MAP_FAILED ? NULL : m;
}

static int setup(void **state)
{
	(void)state;
	dir = tu_tmpdir("incr");
	snprintf(area_path, sizeof(area_path), "%s/area", dir);
	area_len = area_size_for(CAP);
	if (make_area(area_path) != 0)
		return -1;
	area = map_file(area_path);
	readback = malloc(CAP);
	setenv("RTCMS_AREA", area_path, 1);
	setenv("RTCMS_LEASE_SIGNAL", "0", 1);
	unsetenv("RTCMS_RESTORE");
	return area && readback && rtcms_init(NULL) == 0 ? 0 : -1;
}

static int teardown(void **state)
{
	(void)state;
	rtcms_finalize();
	track_fault_hook = NULL;
	munmap(area, area_len);
	free(readback);
	unsetenv("RTCMS_AREA");
	unsetenv("RTCMS_RESTORE");
	tu_rmrf(dir);
	free(dir);
	return 0;
}

/* The committed checkpoint must hold exactly want (n bytes) as region id. */
static void expect_region(uint32_t id, const uint8_t *want, size_t n)
{
	struct area_region r[AREA_MAX_REGIONS];
	uint64_t size, seq;
	uint32_t count;
	assert_int_equal(area_read(area, readback, CAP, &size, r, &count, &seq), 0);
	assert_int_equal(seq, rtcms_sequence());
	for (uint32_t i = 0; i < count; i++) {
		if (r[i].id != id)
			continue;
		assert_int_equal(r[i].size, n);
		if (memcmp(readback + r[i].offset, want, n) != 0) {
			size_t k = 0;
			while (readback[r[i].offset + k] == want[k])
				k++;
			fail_msg("region %u differs at byte %zu (block %zu) at sequence %llu", id, k,
				 k / AREA_BLOCK, (unsigned long long)seq);
		}
		return;
	}
	fail_msg("region %u is not in checkpoint %llu", id, (unsigned long long)seq);
}

/* The test's own single-threaded scribbling (millions of byte writes, no
 * other thread running meanwhile) is left out of ThreadSanitizer's
 * instrumentation, which would make it take minutes; librtcms, its fault
 * handler and the threads test stay instrumented. */
#ifdef RTCMS_THREAD_SANITIZER
#define NOT_INSTRUMENTED __attribute__((no_sanitize("thread")))
#else
#define NOT_INSTRUMENTED
#endif

static uint64_t rng = 88172645463325252ull;
NOT_INSTRUMENTED static uint64_t next_rand(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

/* Random writes into live and the same into shadow; returns the number of
 * distinct blocks written (a byte written with its old value counts). */
static int sparse_only; /* scribble() writes single bytes only */

NOT_INSTRUMENTED static size_t scribble(uint8_t *live, uint8_t *shadow, size_t len, uint8_t *touched)
{
	size_t blocks = (len + AREA_BLOCK - 1) / AREA_BLOCK, distinct = 0;
	memset(touched, 0, blocks);
	int pattern = sparse_only ? 5 : (int)(next_rand() % 6);
	size_t writes = pattern == 0 ? 0 : pattern == 1 ? blocks : 1 + next_rand() % (blocks / 8 + 1);
	for (size_t w = 0; w < writes; w++) {
		size_t off, n;
		if (pattern == 1) { /* every block, whole */
			off = w * AREA_BLOCK;
			n = len - off < AREA_BLOCK ? len - off : AREA_BLOCK;
		} else if (pattern == 2) { /* a run of bytes across blocks */
			off = next_rand() % len;
			n = 1 + next_rand() % (3 * AREA_BLOCK);
		} else { /* single bytes */
			off = next_rand() % len;
			n = 1;
		}
		if (n > len - off)
			n = len - off;
		for (size_t k = 0; k < n; k++) {
			uint8_t v = (uint8_t)next_rand();
			live[off + k] = v;
			shadow[off + k] = v;
		}
		for (size_t b = off / AREA_BLOCK; b <= (off + n - 1) / AREA_BLOCK; b++)
			if (!touched[b]++)
				distinct++;
	}
	return distinct;
}

/* 1000 checkpoints of random write patterns on a page-aligned region and
 * an unaligned one: every committed checkpoint equals the shadow state,
 * write faults find exactly the blocks written, and a restore of the last
 * checkpoint into a fresh area (a fresh process' view) gives the shadow
 * state back, after which checkpoints go on incrementally. */
static void run_random(int tracking)
{
	size_t alen = 2u << 20, ulen = 300000;
	uint8_t *aligned = mmap(NULL, alen, PROT_READ | PROT_WRITE,
				MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	uint8_t *raw = malloc(ulen + 64), *unaligned = raw + 13;
	uint8_t *sa = calloc(1, alen), *su = calloc(1, ulen);
	uint8_t *touched = malloc(alen / AREA_BLOCK + 2);
	assert_true(aligned != MAP_FAILED);
	memset(aligned, 0, alen);
	memset(unaligned, 0, ulen);
	assert_int_equal(rtcms_protect_tracked(1, aligned, alen, tracking), 0);
	assert_int_equal(rtcms_protect_tracked(2, unaligned, ulen, tracking), 0);
	int mode = rtcms_region_tracking(1);
	if (tracking == RTCMS_TRACK_AUTO)
		assert_int_equal(mode, RTCMS_TRACK_WRITES);
	else
		assert_int_equal(mode, tracking);

	/* the agent's incremental capture, checked against a whole one */
	size_t icap = image_size(AREA_MAX_REGIONS, CAP), vcap = CAP / AREA_BLOCK;
	uint8_t *agent_img = calloc(1, icap), *whole = malloc(icap);
	uint64_t *versions = malloc(vcap * sizeof(uint64_t)), captured = 0, built_on = 0;
	uint64_t incremental = 0;
	for (int i = 0; i < 1000; i++) {
		size_t wrote = scribble(aligned, sa, alen, touched);
		scribble(unaligned, su, ulen, touched);
		assert_true(rtcms_checkpoint() > 0);
		struct rtcms_stats st;
		assert_int_equal(rtcms_last_stats(&st), 0);
		expect_region(1, sa, alen);
		expect_region(2, su, ulen);
		if (i % 3 == 0) { /* the agent does not see every checkpoint */
			uint64_t since = captured;
			int64_t n = image_capture_since(area, &since, agent_img, icap, versions, vcap);
			assert_true(n > 0);
			assert_int_equal(image_capture(area, whole, icap), n);
			assert_memory_equal(agent_img, whole, (size_t)n);
			built_on += since != 0;
			captured = rtcms_sequence();
		}
		if (!st.full)
			incremental++;
		(void)wrote;
	}
	assert_true(incremental >= 990);
	assert_true(built_on >= 300); /* only the first capture copies everything */
	/* sparse writes only: once a pause after dense writes (copied whole,
	 * at most 16 checkpoints) is over, write-fault tracking is exact */
	sparse_only = 1;
	for (int i = 0; i < 60; i++) {
		size_t w = scribble(aligned, sa, alen, touched);
		size_t wu = scribble(unaligned, su, ulen, touched);
		assert_true(rtcms_checkpoint() > 0);
		struct rtcms_stats st;
		assert_int_equal(rtcms_last_stats(&st), 0);
		expect_region(1, sa, alen);
		expect_region(2, su, ulen);
		if (mode == RTCMS_TRACK_WRITES && i >= 40) {
			/* exact for the aligned region; the unaligned one's
			 * written blocks straddle up to two pages each, and its
			 * partial end pages always count */
			assert_true(st.dirty_bytes >= w * AREA_BLOCK);
			assert_true(st.dirty_bytes <= (w + 2 * wu + 2) * AREA_BLOCK);
			assert_true(st.copied_bytes < st.protected_bytes / 2);
		}
	}
	sparse_only = 0;
	free(agent_img);
	free(whole);
	free(versions);

	/* restore the last checkpoint the way the agent does: its image,
	 * installed in a fresh area, read by a fresh library instance */
	uint8_t *img = malloc(icap);
	int64_t ilen = image_capture(area, img, icap);
	assert_true(ilen > 0);
	char path2[700];
	snprintf(path2, sizeof(path2), "%s/area2", dir);
	assert_int_equal(make_area(path2), 0);
	void *a2 = map_file(path2);
	assert_int_equal(image_install(a2, img, (size_t)ilen), 0);
	munmap(a2, area_len);
	free(img);
	rtcms_finalize();
	memset(aligned, 0xee, alen);
	memset(unaligned, 0xee, ulen);
	setenv("RTCMS_AREA", path2, 1);
	setenv("RTCMS_RESTORE", "1", 1);
	assert_int_equal(rtcms_init(NULL), 0);
	assert_int_equal(rtcms_protect_tracked(1, aligned, alen, tracking), 0);
	assert_int_equal(rtcms_protect_tracked(2, unaligned, ulen, tracking), 0);
	assert_memory_equal(aligned, sa, alen);
	assert_memory_equal(unaligned, su, ulen);
	assert_int_equal(rtcms_resume(), 0);
	munmap(area, area_len);
	area = map_file(path2);
	for (int i = 0; i < 20; i++) {
		scribble(aligned, sa, alen, touched);
		scribble(unaligned, su, ulen, touched);
		assert_true(rtcms_checkpoint() > 0);
		struct rtcms_stats st;
		rtcms_last_stats(&st);
		assert_int_equal(st.full, i == 0); /* full after a restore, then not */
		expect_region(1, sa, alen);
		expect_region(2, su, ulen);
	}
	rtcms_unprotect(1);
	rtcms_unprotect(2);
	munmap(aligned, alen);
	free(raw);
	free(sa);
	free(su);
	free(touched);
}

static void test_random_writes_faults(void **state)
{
	(void)state;
	run_random(RTCMS_TRACK_AUTO);
}

static void test_random_writes_compare(void **state)
{
	(void)state;
	run_random(RTCMS_TRACK_COMPARE);
}

static void test_random_writes_full(void **state)
{
	(void)state;
	run_random(RTCMS_TRACK_FULL);
}

/* ---- threads writing during checkpoints ------------------------------ */

#define WRITERS 3
#define PAGES_EACH 64

static uint8_t *shared_region;
static _Atomic uint64_t published[WRITERS][PAGES_EACH]; /* last value completed */
static _Atomic int stop_writers;

static void *writer(void *arg)
{
	int t = (int)(intptr_t)arg;
	uint64_t v = 0, x = (uint64_t)t * 7919 + 1;
	while (!atomic_load(&stop_writers)) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		int p = (int)(x % PAGES_EACH);
		uint64_t *word = (uint64_t *)(shared_region +
					      ((size_t)t * PAGES_EACH + (size_t)p) * AREA_BLOCK);
		v++;
		__atomic_store_n(word, v, __ATOMIC_RELEASE);
		atomic_store(&published[t][p], v);
	}
	return NULL;
}

/* Every write completed before rtcms_checkpoint() was called is in the
 * checkpoint (values only grow: a later one is fine), and after the
 * writers stop, one more checkpoint equals memory exactly. */
static void test_threads_writing(void **state)
{
	(void)state;
	size_t len = (size_t)WRITERS * PAGES_EACH * AREA_BLOCK;
	shared_region = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
			     -1, 0);
	assert_true(shared_region != MAP_FAILED);
	assert_int_equal(rtcms_protect(7, shared_region, len), 0);
	assert_int_equal(rtcms_region_tracking(7), RTCMS_TRACK_WRITES);
	assert_true(rtcms_checkpoint() > 0);
	pthread_t th[WRITERS];
	atomic_store(&stop_writers, 0);
	for (int t = 0; t < WRITERS; t++)
		assert_int_equal(pthread_create(&th[t], NULL, writer, (void *)(intptr_t)t), 0);
	static uint64_t before[WRITERS][PAGES_EACH];
	struct area_region r[AREA_MAX_REGIONS];
	uint64_t size, seq;
	uint32_t count;
	for (int i = 0; i < 400; i++) {
		for (int t = 0; t < WRITERS; t++)
			for (int p = 0; p < PAGES_EACH; p++)
				before[t][p] = atomic_load(&published[t][p]);
		assert_true(rtcms_checkpoint() > 0);
		assert_int_equal(area_read(area, readback, CAP, &size, r, &count, &seq), 0);
		for (int t = 0; t < WRITERS; t++)
			for (int p = 0; p < PAGES_EACH; p++) {
				uint64_t got;
				memcpy(&got, readback + r[0].offset +
					     ((size_t)t * PAGES_EACH + (size_t)p) * AREA_BLOCK,
				       sizeof(got));
				if (got < before[t][p])
					fail_msg("checkpoint %llu lost a write: thread %d page %d "
						 "holds %llu, %llu was written before",
						 (unsigned long long)seq, t, p,
						 (unsigned long long)got,
						 (unsigned long long)before[t][p]);
			}
		usleep(100);
	}
	atomic_store(&stop_writers, 1);
	for (int t = 0; t < WRITERS; t++)
		pthread_join(th[t], NULL);
	assert_true(rtcms_checkpoint() > 0);
	expect_region(7, shared_region, len);
	rtcms_unprotect(7);
	munmap(shared_region, len);
}

/* ---- a program's own SIGSEGV handler --------------------------------- */

static uint8_t *guard;
static volatile sig_atomic_t own_faults;

/* the program's handler: its guard page faults once, then it opens it */
static void own_handler(int sig, siginfo_t *si, void *uc)
{
	(void)sig;
	(void)uc;
	if ((uint8_t *)si->si_addr >= guard && (uint8_t *)si->si_addr < guard + 4096) {
		own_faults++;
		mprotect(guard, 4096, PROT_READ | PROT_WRITE);
		return;
	}
	abort();
}

static void install_own(void)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = own_handler;
	sa.sa_flags = SA_SIGINFO;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGSEGV, &sa, NULL);
}

static void test_own_handler(void **state)
{
	(void)state;
	struct sigaction saved;
	sigaction(SIGSEGV, NULL, &saved);
	guard = mmap(NULL, 4096, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	size_t len = 64 * AREA_BLOCK;
	uint8_t *reg = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	uint8_t *shadow = calloc(1, len);
	/* installed before the region: chained to */
	install_own();
	own_faults = 0;
	assert_int_equal(rtcms_protect(3, reg, len), 0);
	assert_true(rtcms_checkpoint() > 0);
	reg[5 * AREA_BLOCK] = shadow[5 * AREA_BLOCK] = 1;
	*(volatile uint8_t *)&guard[0] = 1; /* the program's own fault */
	assert_int_equal(own_faults, 1);
	reg[9 * AREA_BLOCK + 3] = shadow[9 * AREA_BLOCK + 3] = 2;
	assert_true(rtcms_checkpoint() > 0);
	expect_region(3, shadow, len);
	/* installed again after the region: the next checkpoint chains to it */
	mprotect(guard, 4096, PROT_NONE);
	install_own();
	assert_true(rtcms_checkpoint() > 0);
	reg[20 * AREA_BLOCK] = shadow[20 * AREA_BLOCK] = 3;
	*(volatile uint8_t *)&guard[1] = 1;
	assert_int_equal(own_faults, 2);
	assert_true(rtcms_checkpoint() > 0);
	struct rtcms_stats st;
	rtcms_last_stats(&st);
	assert_int_equal(st.dirty_bytes, AREA_BLOCK);
	expect_region(3, shadow, len);
	rtcms_unprotect(3);
	sigaction(SIGSEGV, &saved, NULL);
	munmap(guard, 4096);
	munmap(reg, len);
	free(shadow);
}

/* ---- regions added and removed --------------------------------------- */

static void test_regions_come_and_go(void **state)
{
	(void)state;
	size_t len = 32 * AREA_BLOCK;
	uint8_t *a = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	uint8_t *b = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	memset(a, 1, len);
	memset(b, 2, len);
	assert_int_equal(rtcms_protect(1, a, len), 0);
	assert_true(rtcms_checkpoint() > 0);
	assert_true(rtcms_checkpoint() > 0);
	expect_region(1, a, len);
	/* a second region: full once, then incremental again */
	assert_int_equal(rtcms_protect(2, b, len), 0);
	assert_true(rtcms_checkpoint() > 0);
	struct rtcms_stats st;
	rtcms_last_stats(&st);
	assert_int_equal(st.full, 1);
	expect_region(1, a, len);
	expect_region(2, b, len);
	a[100] = 9;
	assert_true(rtcms_checkpoint() > 0);
	a[AREA_BLOCK * 3] = 9;
	assert_true(rtcms_checkpoint() > 0);
	rtcms_last_stats(&st);
	assert_int_equal(st.full, 0);
	assert_int_equal(st.dirty_bytes, AREA_BLOCK);
	expect_region(1, a, len);
	/* removed: writable again, gone from the checkpoint */
	assert_int_equal(rtcms_unprotect(1), 0);
	a[200] = 7;
	assert_true(rtcms_checkpoint() > 0);
	expect_region(2, b, len);
	/* the same id, size and place again, with new content written while
	 * it was not tracked: the checkpoint must not take it as unchanged */
	assert_true(rtcms_checkpoint() > 0);
	memset(a, 5, len);
	assert_int_equal(rtcms_protect(1, a, len), 0);
	assert_int_equal(rtcms_unprotect(2), 0);
	assert_int_equal(rtcms_protect(2, b, len), 0);
	assert_true(rtcms_checkpoint() > 0);
	expect_region(1, a, len);
	expect_region(2, b, len);
	b[7] = 3;
	assert_true(rtcms_checkpoint() > 0);
	expect_region(2, b, len);
	assert_true(rtcms_checkpoint() > 0);
	expect_region(1, a, len);
	expect_region(2, b, len);
	rtcms_unprotect(1);
	rtcms_unprotect(2);
	munmap(a, len);
	munmap(b, len);

	/* a region off the page grid: one written page is one block (the
	 * blocks follow the memory's pages), plus its partial end blocks */
	uint8_t *raw = mmap(NULL, 40 * AREA_BLOCK, PROT_READ | PROT_WRITE,
			    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	uint8_t *u = raw + 100;
	size_t ulen = 30 * AREA_BLOCK + 7;
	assert_int_equal(rtcms_protect(5, u, ulen), 0);
	assert_true(rtcms_checkpoint() > 0);
	assert_true(rtcms_checkpoint() > 0);
	raw[10 * AREA_BLOCK + 5] = 1;
	assert_true(rtcms_checkpoint() > 0);
	rtcms_last_stats(&st);
	size_t head = AREA_BLOCK - 100, tail = (100 + ulen) % AREA_BLOCK;
	assert_int_equal(st.dirty_bytes, AREA_BLOCK + head + tail);
	expect_region(5, u, ulen);
	rtcms_unprotect(5);
	munmap(raw, 40 * AREA_BLOCK);
}

/* ---- regions that cannot be write-protected --------------------------- */

static _Atomic int fail_protect, fail_unprotect;

static int fault_hook(void *addr, size_t len, int write)
{
	(void)addr;
	(void)len;
	return write ? atomic_load(&fail_unprotect) : atomic_load(&fail_protect);
}

static void test_fallback_to_compare(void **state)
{
	(void)state;
	size_t len = 16 * AREA_BLOCK;
	uint8_t *a = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	uint8_t *b = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	uint8_t stack_region[3 * 4096];
	memset(a, 1, len);
	memset(b, 1, len);
	memset(stack_region, 4, sizeof(stack_region));
	track_fault_hook = fault_hook;

	/* protecting fails at a checkpoint */
	assert_int_equal(rtcms_protect(1, a, len), 0);
	assert_int_equal(rtcms_region_tracking(1), RTCMS_TRACK_WRITES);
	assert_true(rtcms_checkpoint() > 0);
	a[AREA_BLOCK] = 2;
	atomic_store(&fail_protect, 1);
	assert_true(rtcms_checkpoint() > 0);
	atomic_store(&fail_protect, 0);
	assert_int_equal(rtcms_region_tracking(1), RTCMS_TRACK_COMPARE);
	expect_region(1, a, len);
	a[5 * AREA_BLOCK] = 3; /* writable: no fault, found by comparing */
	assert_true(rtcms_checkpoint() > 0);
	expect_region(1, a, len);
	struct rtcms_stats st;
	rtcms_last_stats(&st);
	assert_int_equal(st.dirty_bytes, AREA_BLOCK);

	/* unprotecting a page fails in the handler: the whole region is given
	 * back to the program and compared from the next checkpoint on */
	assert_int_equal(rtcms_protect(2, b, len), 0);
	assert_true(rtcms_checkpoint() > 0);
	atomic_store(&fail_unprotect, 1);
	*(volatile uint8_t *)&b[3 * AREA_BLOCK] = 9; /* volatile: not moved past the hook */
	*(volatile uint8_t *)&b[7 * AREA_BLOCK] = 9;
	atomic_store(&fail_unprotect, 0);
	assert_true(rtcms_checkpoint() > 0);
	assert_int_equal(rtcms_region_tracking(2), RTCMS_TRACK_COMPARE);
	expect_region(2, b, len);
	b[8 * AREA_BLOCK] = 1;
	assert_true(rtcms_checkpoint() > 0);
	expect_region(2, b, len);

	/* the calling thread's stack is never write-protected */
	assert_int_equal(rtcms_protect(3, stack_region, sizeof(stack_region)), 0);
	assert_int_equal(rtcms_region_tracking(3), RTCMS_TRACK_COMPARE);
	assert_true(rtcms_checkpoint() > 0);
	stack_region[5000] = 1;
	assert_true(rtcms_checkpoint() > 0);
	expect_region(3, stack_region, sizeof(stack_region));
	/* bad tracking values */
	assert_int_equal(rtcms_protect_tracked(4, a, 10, 99), RTCMS_EINVAL);
	assert_int_equal(rtcms_protect_tracked(4, a, 10, RTCMS_TRACK_WRITES), RTCMS_EINVAL);
	rtcms_unprotect(1);
	rtcms_unprotect(2);
	rtcms_unprotect(3);
	munmap(a, len);
	munmap(b, len);
}

/* ---- SIGSEGVs that are not write faults (child processes) ------------ */

/* What the child does once a range is tracked and write-protected. */
enum segv_act { ACT_RAISE, ACT_KILL, ACT_SIGQUEUE, ACT_WRITE_TRACKED, ACT_WRITE_NONE,
		ACT_WRITE_UNMAPPED };
/* The SIGSEGV action the child installs before tracking starts. */
enum segv_prior { PRIOR_DFL, PRIOR_IGN, PRIOR_SIGINFO, PRIOR_PLAIN };

#define CHILD_OK 0          /* survived, and everything it checked held */
#define CHILD_BAD 3         /* a check failed (tracking, or the handler) */
#define CHILD_ALIVE 4       /* survived what should have killed it */

static volatile sig_atomic_t seen_signo, seen_code, seen_pid, plain_seen;

static void prior_siginfo(int sig, siginfo_t *si, void *uc)
{
	(void)uc;
	seen_signo = sig;
	seen_code = si->si_code;
	seen_pid = si->si_pid;
}

static void prior_plain(int sig)
{
	plain_seen = sig;
}

/* The blocks of a 16-page range the last track_take() found written:
 * 1 if exactly block `want`. */
static int only_block(const uint64_t *bits, size_t words, size_t want)
{
	for (size_t w = 0; w < words; w++)
		if (bits[w] != (w == want / 64 ? (uint64_t)1 << (want % 64) : 0))
			return 0;
	return 1;
}

/* In the child: install prior, track a range, write-protect it, do act.
 * Returns the exit code (CHILD_*), unless act kills it; if it must (die),
 * it touches nothing tracked after act, so only act can kill it. */
static int segv_child(enum segv_prior prior, enum segv_act act, int die)
{
	struct rlimit no_core = { 0, 0 };
	setrlimit(RLIMIT_CORE, &no_core); /* the deaths below are expected */
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sigemptyset(&sa.sa_mask);
	if (prior == PRIOR_SIGINFO) {
		sa.sa_sigaction = prior_siginfo;
		sa.sa_flags = SA_SIGINFO;
	} else {
		sa.sa_handler = prior == PRIOR_IGN ? SIG_IGN :
				prior == PRIOR_PLAIN ? prior_plain : SIG_DFL;
	}
	sigaction(SIGSEGV, &sa, NULL); /* replaces cmocka's own */

	size_t page = (size_t)sysconf(_SC_PAGESIZE), len = 16 * page;
	uint8_t *reg = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	uint8_t *none = mmap(NULL, page, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	uint8_t *gone = mmap(NULL, page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	uint64_t bits[8];
	size_t words = track_words(len);
	if (reg == MAP_FAILED || none == MAP_FAILED || gone == MAP_FAILED || words > 8)
		return CHILD_BAD;
	munmap(gone, page);
	int h = track_add(reg, len);
	if (h < 0 || track_take(h, bits) != 0)
		return CHILD_BAD; /* now write-protected */

	switch (act) {
	case ACT_RAISE:
		raise(SIGSEGV);
		break;
	case ACT_KILL:
		kill(getpid(), SIGSEGV);
		break;
	case ACT_SIGQUEUE:
		sigqueue(getpid(), SIGSEGV, (union sigval){ .sival_int = 7 });
		break;
	case ACT_WRITE_TRACKED: /* the write to reg below */
		break;
	case ACT_WRITE_NONE:
		*(volatile uint8_t *)none = 1;
		break;
	case ACT_WRITE_UNMAPPED:
		*(volatile uint8_t *)gone = 1;
		break;
	}
	if (die)
		return CHILD_ALIVE;
	/* still alive: the program's handler saw the sent signal as sent */
	if (prior == PRIOR_SIGINFO &&
	    (seen_signo != SIGSEGV || seen_code > 0 || seen_pid != getpid()))
		return CHILD_BAD;
	if (prior == PRIOR_PLAIN && plain_seen != SIGSEGV)
		return CHILD_BAD;
	/* and write faults are still tracked, exactly */
	reg[5 * page + 1] = 1;
	if (track_take(h, bits) != 0 || !only_block(bits, words, 5 * page / AREA_BLOCK))
		return CHILD_BAD;
	return CHILD_OK;
}

/* Run segv_child(prior, act, die) in a child; its wait status. */
static int segv_run(enum segv_prior prior, enum segv_act act, int die)
{
	fflush(NULL);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0)
		_exit(segv_child(prior, act, die));
	int status = 0;
	assert_int_equal(waitpid(pid, &status, 0), pid);
	return status;
}

static void expect_killed(int status, const char *what)
{
	if (!WIFSIGNALED(status) || WTERMSIG(status) != SIGSEGV)
		fail_msg("%s: expected death by SIGSEGV, got %s %d", what,
			 WIFSIGNALED(status) ? "signal" :
			 WEXITSTATUS(status) == CHILD_ALIVE ? "still alive, exit" : "exit",
			 WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status));
}

static void expect_survived(int status, const char *what)
{
	if (!WIFEXITED(status) || WEXITSTATUS(status) != CHILD_OK)
		fail_msg("%s: expected to survive with its checks held, got %s %d", what,
			 WIFSIGNALED(status) ? "signal" : "exit",
			 WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status));
}

/* With the default action, a sent SIGSEGV kills as it would without
 * librtcms, and so does a real invalid access; a write fault does not. */
static void test_segv_default(void **state)
{
	(void)state;
	expect_killed(segv_run(PRIOR_DFL, ACT_RAISE, 1), "raise");
	expect_killed(segv_run(PRIOR_DFL, ACT_KILL, 1), "kill");
	expect_killed(segv_run(PRIOR_DFL, ACT_SIGQUEUE, 1), "sigqueue");
	expect_killed(segv_run(PRIOR_DFL, ACT_WRITE_NONE, 1), "write to PROT_NONE");
	expect_killed(segv_run(PRIOR_DFL, ACT_WRITE_UNMAPPED, 1), "write to unmapped");
	expect_survived(segv_run(PRIOR_DFL, ACT_WRITE_TRACKED, 0), "write to a tracked page");
}

/* A handler the program installed before librtcms gets the sent SIGSEGV
 * (with its siginfo, or plain); SIG_IGN ignores it; a real invalid access
 * still kills when the action was the default or SIG_IGN. */
static void test_segv_program_action(void **state)
{
	(void)state;
	expect_survived(segv_run(PRIOR_SIGINFO, ACT_RAISE, 0), "SA_SIGINFO handler, raise");
	expect_survived(segv_run(PRIOR_SIGINFO, ACT_KILL, 0), "SA_SIGINFO handler, kill");
	expect_survived(segv_run(PRIOR_SIGINFO, ACT_SIGQUEUE, 0), "SA_SIGINFO handler, sigqueue");
	expect_survived(segv_run(PRIOR_PLAIN, ACT_KILL, 0), "plain handler, kill");
	expect_survived(segv_run(PRIOR_IGN, ACT_KILL, 0), "SIG_IGN, kill");
	expect_survived(segv_run(PRIOR_IGN, ACT_RAISE, 0), "SIG_IGN, raise");
	expect_killed(segv_run(PRIOR_IGN, ACT_WRITE_NONE, 1), "SIG_IGN, write to PROT_NONE");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_random_writes_faults, setup, teardown),
		cmocka_unit_test_setup_teardown(test_random_writes_compare, setup, teardown),
		cmocka_unit_test_setup_teardown(test_random_writes_full, setup, teardown),
		cmocka_unit_test_setup_teardown(test_threads_writing, setup, teardown),
		cmocka_unit_test_setup_teardown(test_own_handler, setup, teardown),
		cmocka_unit_test_setup_teardown(test_regions_come_and_go, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fallback_to_compare, setup, teardown),
		cmocka_unit_test(test_segv_default),
		cmocka_unit_test(test_segv_program_action),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
