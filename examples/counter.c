/*
 * counter.c - a protected program with visible state: a counter and a
 * growing table (each entry derived from the counter), checkpointed every
 * iteration. Started for a restore, it continues from where it stopped and
 * checks that its table is intact.
 *
 *   rtcms-counter [--iterations N] [--interval-ms MS] [--table-mib M]
 *                 [--migrate-at SEQ]
 *
 * --migrate-at SEQ: after checkpoint SEQ the program asks to be moved to
 * another node (rtcms_request_migration()).
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "rtcms.h"

struct state {
	uint64_t counter;
	uint64_t entries;      /* table entries in use */
};

static uint64_t entry_value(uint64_t i)
{
	return i * 0x9E3779B97F4A7C15ull ^ (i >> 7);
}

int main(int argc, char **argv)
{
	uint64_t iterations = 10, interval_ms = 100, table_mib = 4, migrate_at = 0;
	struct state st = { 0, 0 };

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--iterations") && i + 1 < argc)
			iterations = strtoull(argv[++i], NULL, 10);
		else if (!strcmp(argv[i], "--interval-ms") && i + 1 < argc)
			interval_ms = strtoull(argv[++i], NULL, 10);
		else if (!strcmp(argv[i], "--table-mib") && i + 1 < argc)
			table_mib = strtoull(argv[++i], NULL, 10);
		else if (!strcmp(argv[i], "--migrate-at") && i + 1 < argc)
			migrate_at = strtoull(argv[++i], NULL, 10);
		else {
			fprintf(stderr, "usage: rtcms-counter [--iterations N (0 = forever)] "
				"[--interval-ms MS] [--table-mib M] [--migrate-at SEQ]\n");
			return 2;
		}
	}
	size_t table_bytes = (size_t)table_mib << 20;
	uint64_t *table = calloc(1, table_bytes ? table_bytes : 8);
	uint64_t capacity = table_bytes / sizeof(uint64_t);
	if (!table)
		return 1;

	struct rtcms_config cfg = { .area_capacity = table_bytes + (1 << 20) };
	int rc = rtcms_init(&cfg);
	if (rc == 0)
		rc = rtcms_protect(1, &st, sizeof(st));
	if (rc == 0)
		rc = rtcms_protect(2, table, table_bytes);
	if (rc) {
		fprintf(stderr, "counter: rtcms: %s\n", rtcms_strerror(rc));
		return 1;
	}
	if (rtcms_restoring()) {
		for (uint64_t i = 0; i < st.entries; i++) {
			if (table[i] != entry_value(i)) {
				fprintf(stderr, "counter: restored table is damaged at %" PRIu64 "\n", i);
				return 1;
			}
		}
		printf("counter: restored at counter %" PRIu64 " with %" PRIu64
		       " table entries intact\n", st.counter, st.entries);
		rtcms_resume();
	}
	uint64_t end = st.counter + iterations;
	while (iterations == 0 || st.counter < end) {
		st.counter++;
		for (int k = 0; k < 1000 && st.entries < capacity; k++, st.entries++)
			table[st.entries] = entry_value(st.entries);
		int64_t seq = rtcms_checkpoint();
		if (seq < 0) {
			fprintf(stderr, "counter: checkpoint: %s\n", rtcms_strerror((int)seq));
			return 1;
		}
		printf("counter: %" PRIu64 " (table %" PRIu64 " entries, checkpoint %" PRId64 ")\n",
		       st.counter, st.entries, seq);
		if (migrate_at && (uint64_t)seq == migrate_at) {
			/* load balancing, asked by the program itself */
			int r = rtcms_request_migration();
			printf("counter: asked to be moved to another node: %s\n",
			       r ? rtcms_strerror(r) : "ok");
		}
		fflush(stdout);
		struct timespec ts = { (time_t)(interval_ms / 1000),
				       (long)(interval_ms % 1000) * 1000000L };
		while (nanosleep(&ts, &ts) != 0) /* EINTR: the lease watchdog */
			;
	}
	rtcms_finalize();
	free(table);
	return 0;
}
