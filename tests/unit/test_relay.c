/*
 * test_relay.c - the relay's rules (src/manager/relay.c): chunks to the
 * store, a target or both; who stops the stream and what the result says.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "manager/relay.h"
#include "rtcms_error.h"

struct sink {
	int begin_rc, chunk_rc, end_rc;
	bool have;
	uint32_t chunks, ended;
};

static int s_begin(void *ctx, const struct proto_ckpt_meta *meta, bool *have)
{
	struct sink *s = ctx;
	(void)meta;
	*have = s->have;
	return s->begin_rc;
}

static int s_chunk(void *ctx, const struct proto_chunk *chunk)
{
	struct sink *s = ctx;
	(void)chunk;
	if (s->chunk_rc)
		return s->chunk_rc;
	s->chunks++;
	return 0;
}

static int s_end(void *ctx, uint32_t count)
{
	struct sink *s = ctx;
	s->ended = count;
	return s->end_rc;
}

static const struct relay_sink_ops ops = { s_begin, s_chunk, s_end };

/* A source of n chunks; returns what it would return (the callback's code,
 * or 0), and ends the relay if it finished. */
static int source(struct relay *r, uint32_t n)
{
	static const uint8_t data[4] = "abc";
	for (uint32_t i = 0; i < n; i++) {
		struct proto_chunk c = { .offset = i * 4, .data = data, .len = 4 };
		int rc = relay_chunk(r, &c);
		if (rc)
			return rc;
	}
	relay_end(r);
	return 0;
}

static enum relay_result run(struct sink *store, struct sink *target, _Atomic int *cancel,
			     int *code)
{
	struct proto_ckpt_meta meta;
	struct relay_sink ss = { &ops, store }, ts = { &ops, target };
	struct relay r;
	memset(&meta, 0, sizeof(meta));
	relay_init(&r, store ? &ss : NULL, target ? &ts : NULL, &meta, cancel);
	int rc = source(&r, 3);
	enum relay_result res = relay_result(&r, rc);
	*code = relay_code(&r, res, rc);
	return res;
}

static void test_both_take_everything(void **state)
{
	struct sink st = { 0 }, tg = { 0 };
	int code;
	(void)state;
	assert_int_equal(run(&st, &tg, NULL, &code), RELAY_DONE);
	assert_int_equal(code, 0);
	assert_int_equal(st.chunks, 3);
	assert_int_equal(tg.chunks, 3);
	assert_int_equal(st.ended, 3);
	assert_int_equal(tg.ended, 3);
}

static void test_store_that_has_it(void **state)
{
	struct sink st = { .have = true }, tg = { 0 };
	int code;
	(void)state;
	/* alone: the source is not read in vain */
	assert_int_equal(run(&st, NULL, NULL, &code), RELAY_HAD_IT);
	assert_int_equal(code, 0);
	assert_int_equal(st.chunks, 0);
	/* with a target: the target gets it all, the store nothing */
	assert_int_equal(run(&st, &tg, NULL, &code), RELAY_DONE);
	assert_int_equal(st.chunks, 0);
	assert_int_equal(st.ended, 0);
	assert_int_equal(tg.chunks, 3);
}

static void test_store_failure_stops_everything(void **state)
{
	struct sink st = { .chunk_rc = RTCMS_EIO }, tg = { 0 };
	int code;
	(void)state;
	assert_int_equal(run(&st, &tg, NULL, &code), RELAY_STORE_FAILED);
	assert_int_equal(code, RTCMS_EIO);
	assert_int_equal(tg.chunks, 0);
	assert_int_equal(tg.ended, 0);
	struct sink st2 = { .end_rc = RTCMS_ENOSPC }, tg2 = { 0 };
	assert_int_equal(run(&st2, &tg2, NULL, &code), RELAY_STORE_FAILED);
	assert_int_equal(code, RTCMS_ENOSPC);
	assert_int_equal(tg2.ended, 0); /* never confirmed without the store */
}

static void test_target_failure(void **state)
{
	struct sink st = { 0 }, tg = { .chunk_rc = RTCMS_ECONN };
	int code;
	(void)state;
	/* beside the store: the store still gets it all */
	assert_int_equal(run(&st, &tg, NULL, &code), RELAY_TARGET_FAILED);
	assert_int_equal(code, RTCMS_ECONN);
	assert_int_equal(st.chunks, 3);
	assert_int_equal(st.ended, 3);
	/* alone: the stream stops */
	struct sink tg2 = { .begin_rc = RTCMS_ECONN };
	assert_int_equal(run(NULL, &tg2, NULL, &code), RELAY_TARGET_FAILED);
	assert_int_equal(code, RTCMS_ECONN);
	struct sink tg3 = { .end_rc = RTCMS_ETIMEDOUT };
	assert_int_equal(run(NULL, &tg3, NULL, &code), RELAY_TARGET_FAILED);
	assert_int_equal(code, RTCMS_ETIMEDOUT);
}

static void test_cancel_and_source_failure(void **state)
{
	struct sink st = { 0 };
	_Atomic int cancel = 1;
	int code;
	(void)state;
	assert_int_equal(run(&st, NULL, &cancel, &code), RELAY_CANCELLED);
	assert_int_equal(code, RTCMS_ESTATE);
	assert_int_equal(st.chunks, 0);

	struct proto_ckpt_meta meta;
	struct relay_sink ss = { &ops, &st };
	struct relay r;
	memset(&meta, 0, sizeof(meta));
	relay_init(&r, &ss, NULL, &meta, NULL);
	assert_int_equal(relay_result(&r, RTCMS_ECONN), RELAY_SOURCE_FAILED);
	assert_int_equal(relay_code(&r, RELAY_SOURCE_FAILED, RTCMS_ECONN), RTCMS_ECONN);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_both_take_everything),
		cmocka_unit_test(test_store_that_has_it),
		cmocka_unit_test(test_store_failure_stops_everything),
		cmocka_unit_test(test_target_failure),
		cmocka_unit_test(test_cancel_and_source_failure),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
