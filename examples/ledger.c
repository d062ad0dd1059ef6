/*
 * ledger.c - a protected program whose whole state matters: a ledger of
 * accounts (--mib MiB of balances, every byte non-trivial) and random
 * transfers between them, so the total never changes. Before each
 * checkpoint it prints a hash of its whole protected state; started for
 * a restore it prints the hash of what it got back and checks the total.
 * A test compares the two hashes: every byte of the state is verified.
 *
 *   rtcms-ledger [--iterations N] [--interval-ms MS] [--mib M] [--transfers K]
 *                [--print-times] [--migrate-at SEQ]
 *
 * --migrate-at SEQ: after checkpoint SEQ the program asks to be moved to
 * another node (rtcms_request_migration()).
 *
 * With LEDGER_CRASH_ON_RESTORE set it aborts when started for a restore
 * (the tests of a program crashing during its restore use it); with
 * LEDGER_SLOW_RESTORE_MS it waits that long before it resumes.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "rtcms.h"

struct head {
	uint64_t transactions;
	uint64_t rng;              /* xorshift state: restored with the rest */
	uint64_t total;            /* sum of all balances, constant */
	uint64_t accounts;
};

static uint64_t next(uint64_t *s)
{
	uint64_t x = *s;
	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	return *s = x;
}

/* word-wise multiplicative hash of the whole state */
static uint64_t state_hash(const struct head *h, const uint64_t *bal)
{
	uint64_t x = 0xcbf29ce484222325ull;
	const uint64_t *w = (const uint64_t *)h;
	for (size_t i = 0; i < sizeof(*h) / 8; i++)
		x = (x ^ w[i]) * 0x100000001b3ull;
	for (uint64_t i = 0; i < h->accounts; i++)
		x = (x ^ bal[i]) * 0x100000001b3ull;
	return x;
}

int main(int argc, char **argv)
{
	uint64_t iterations = 10, interval_ms = 100, mib = 4, transfers = 1000;
	int times = 0;
	uint64_t migrate_at = 0;
	struct head h;

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--iterations") && i + 1 < argc)
			iterations = strtoull(argv[++i], NULL, 10);
		else if (!strcmp(argv[i], "--interval-ms") && i + 1 < argc)
			interval_ms = strtoull(argv[++i], NULL, 10);
		else if (!strcmp(argv[i], "--mib") && i + 1 < argc)
			mib = strtoull(argv[++i], NULL, 10);
		else if (!strcmp(argv[i], "--transfers") && i + 1 < argc)
			transfers = strtoull(argv[++i], NULL, 10);
		else if (!strcmp(argv[i], "--print-times"))
			times = 1;
		else if (!strcmp(argv[i], "--migrate-at") && i + 1 < argc)
			migrate_at = strtoull(argv[++i], NULL, 10);
		else {
			fprintf(stderr, "usage: rtcms-ledger [--iterations N (0 = forever)] "
				"[--interval-ms MS] [--mib M] [--transfers K] [--print-times] [--migrate-at SEQ]\n");
			return 2;
		}
	}
	if (mib == 0)
		mib = 1;
	memset(&h, 0, sizeof(h));
	h.accounts = (mib << 20) / sizeof(uint64_t);
	uint64_t *bal = malloc(h.accounts * sizeof(uint64_t));
	if (!bal)
		return 1;

	struct rtcms_config cfg = { .area_capacity = (mib << 20) + (1 << 20) };
	int rc = rtcms_init(&cfg);
	if (rc == 0)
		rc = rtcms_protect(1, &h, sizeof(h));
	if (rc == 0)
		rc = rtcms_protect(2, bal, h.accounts * sizeof(uint64_t));
	if (rc) {
		fprintf(stderr, "ledger: rtcms: %s\n", rtcms_strerror(rc));
		return 1;
	}
	if (rtcms_restoring() && getenv("LEDGER_CRASH_ON_RESTORE")) {
		fprintf(stderr, "ledger: crashing during the restore, as asked "
			"(LEDGER_CRASH_ON_RESTORE)\n");
		abort();
	}
	if (rtcms_restoring()) {
		uint64_t sum = 0;
		for (uint64_t i = 0; i < h.accounts; i++)
			sum += bal[i];
		printf("ledger: restored checkpoint %" PRIu64 " hash %016" PRIx64
		       " after %" PRIu64 " transactions, total %s\n", rtcms_sequence(),
		       state_hash(&h, bal), h.transactions,
		       sum == h.total ? "intact" : "DAMAGED");
		fflush(stdout);
		if (sum != h.total)
			return 1;
		const char *slow = getenv("LEDGER_SLOW_RESTORE_MS");
		if (slow) { /* tests: a window to kill the target mid-restore */
			unsigned long ms = strtoul(slow, NULL, 10);
			struct timespec ts = { (time_t)(ms / 1000), (long)(ms % 1000) * 1000000L };
			nanosleep(&ts, NULL);
		}
		rtcms_resume();
	} else {
		h.rng = 0x9E3779B97F4A7C15ull;
		for (uint64_t i = 0; i < h.accounts; i++) {
			bal[i] = 1000000 + next(&h.rng) % 1000000;
			h.total += bal[i];
		}
	}
	for (uint64_t it = 0; iterations == 0 || it < iterations; it++) {
		for (uint64_t k = 0; k < transfers; k++) {
			uint64_t a = next(&h.rng) % h.accounts, b = next(&h.rng) % h.accounts;
			uint64_t amount = next(&h.rng) % 1000;
			if (bal[a] >= amount) {
				bal[a] -= amount;
				bal[b] += amount;
			}
			h.transactions++;
		}
		printf("ledger: %" PRIu64 " transactions, checkpoint %" PRIu64 " hash %016"
		       PRIx64 "\n", h.transactions, rtcms_sequence() + 1, state_hash(&h, bal));
		fflush(stdout);
		struct timespec t0, t1;
		clock_gettime(CLOCK_MONOTONIC, &t0);
		int64_t seq = rtcms_checkpoint();
		clock_gettime(CLOCK_MONOTONIC, &t1);
		if (seq < 0) {
			fprintf(stderr, "ledger: checkpoint: %s\n", rtcms_strerror((int)seq));
			return 1;
		}
		if (migrate_at && (uint64_t)seq == migrate_at) {
			/* load balancing, asked by the program itself */
			int r = rtcms_request_migration();
			printf("ledger: asked to be moved to another node: %s\n",
			       r ? rtcms_strerror(r) : "ok");
			fflush(stdout);
		}
		if (times) { /* benchmarks: when the checkpoint was committed */
			struct timespec now;
			clock_gettime(CLOCK_REALTIME, &now);
			struct rtcms_stats st;
			rtcms_last_stats(&st);
			printf("ledger: committed checkpoint %" PRId64 " at %" PRIu64 " ms (dirty %"
			       PRIu64 " bytes, copied %" PRIu64 " bytes, blocked %" PRId64 " us)\n",
			       seq, (uint64_t)now.tv_sec * 1000 + (uint64_t)now.tv_nsec / 1000000,
			       st.dirty_bytes, st.copied_bytes,
			       (int64_t)(t1.tv_sec - t0.tv_sec) * 1000000 +
				       (t1.tv_nsec - t0.tv_nsec) / 1000);
			fflush(stdout);
		}
		struct timespec ts = { (time_t)(interval_ms / 1000),
				       (long)(interval_ms % 1000) * 1000000L };
		while (nanosleep(&ts, &ts) != 0) /* EINTR: the lease watchdog */
			;
	}
	rtcms_finalize();
	free(bal);
	return 0;
}
