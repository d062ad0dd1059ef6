/*
 * test_relay.c - the relay's rules (src/manager/relay.c): chunks to the
 * store, a target or both (a stream tee inside), fed by the stream
 * receiver as a real source; who stops the stream and what the result says.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "manager/relay.h"
#include "stream/stream_net.h"
#include "rtcms_error.h"

/* A side: fails where told, counts what it got; have: done at begin
 * (a store that holds the checkpoint already). */
struct sink {
	struct stream_sink sink;
	int begin_rc, chunk_rc, end_rc;
	bool have;
	uint32_t chunks, ended, aborted;
};

#define SINK(s) ((struct sink *)(void *)(s))

static int s_begin(struct stream_sink *ss, const struct proto_ckpt_meta *meta)
{
	struct sink *s = SINK(ss);
	(void)meta;
	ss->done = s->have;
	return s->begin_rc;
}

static int s_chunk(struct stream_sink *ss, const struct proto_chunk *chunk)
{
	struct sink *s = SINK(ss);
	(void)chunk;
	if (s->chunk_rc)
		return s->chunk_rc;
	s->chunks++;
	return 0;
}

static int s_end(struct stream_sink *ss, uint32_t count)
{
	struct sink *s = SINK(ss);
	s->ended = count;
	return s->end_rc;
}

static void s_abort(struct stream_sink *ss, int rc)
{
	(void)rc;
	SINK(ss)->aborted++;
}

static const struct stream_sink_ops ops = { s_begin, s_chunk, s_end, s_abort, NULL };

/* The source: three 4-byte chunks as a connection gives them (CHUNK
 * frames with real ids, then GET_END), received by stream_recv. */
static const uint8_t data[4] = "abc";

static int port_recv(void *ctx, struct proto_header *hdr, union proto_msg *msg)
{
	uint32_t *next = ctx;
	memset(hdr, 0, sizeof(*hdr));
	if (*next == 3) {
		hdr->type = PROTO_GET_END;
		memset(&msg->get_end, 0, sizeof(msg->get_end));
		msg->get_end.chunk_count = 3;
		return 0;
	}
	hdr->type = PROTO_CHUNK;
	msg->chunk = (struct proto_chunk){ .offset = (uint64_t)*next * 4, .len = 4, .data = data };
	stream_chunk_id(data, 4, msg->chunk.hash);
	(*next)++;
	return 0;
}

static void source_meta(struct proto_ckpt_meta *meta)
{
	uint8_t img[12];
	struct stream_chunks k = { 0 };
	for (int i = 0; i < 3; i++)
		memcpy(img + 4 * i, data, 4);
	assert_int_equal(stream_chunks_of(&k, img, sizeof(img), 4), 0);
	memset(meta, 0, sizeof(*meta));
	stream_chunks_meta(&k, meta);
	meta->sequence = 5;
	stream_chunks_clear(&k);
}

static int source(struct relay *r)
{
	struct proto_ckpt_meta meta;
	uint32_t next = 0;
	struct stream_in in = { .port = { port_recv, NULL, NULL, &next },
				.end_type = PROTO_GET_END };
	struct stream_result res;
	source_meta(&meta);
	return stream_recv(&in, &meta, &r->sink, &res);
}

static struct stream_sink *side(struct sink *s)
{
	if (!s)
		return NULL;
	s->sink.ops = &ops;
	s->sink.done = false;
	return &s->sink;
}

static enum relay_result run_with(struct sink *store, struct sink *target, _Atomic int *cancel,
				  relay_expect_fn expect, int *code)
{
	struct relay r;
	relay_init(&r, side(store), side(target), cancel);
	if (expect)
		relay_expect(&r, expect, NULL);
	int rc = source(&r);
	enum relay_result res = relay_result(&r, rc);
	*code = relay_code(&r, res, rc);
	return res;
}

static enum relay_result run(struct sink *store, struct sink *target, _Atomic int *cancel,
			     int *code)
{
	return run_with(store, target, cancel, NULL, code);
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

	struct relay r;
	relay_init(&r, side(&st), NULL, NULL);
	assert_int_equal(relay_result(&r, RTCMS_ECONN), RELAY_SOURCE_FAILED);
	assert_int_equal(relay_code(&r, RELAY_SOURCE_FAILED, RTCMS_ECONN), RTCMS_ECONN);
}

static bool not_this_one(void *ctx, const struct proto_ckpt_meta *meta)
{
	(void)ctx;
	return meta->sequence != 5;
}

static void test_unexpected_metadata(void **state)
{
	struct sink st = { 0 }, tg = { 0 };
	int code;
	(void)state;
	/* refused before anything is forwarded: the source's failure */
	assert_int_equal(run_with(&st, &tg, NULL, not_this_one, &code), RELAY_SOURCE_FAILED);
	assert_int_equal(code, RTCMS_EPROTO);
	assert_int_equal(st.chunks + tg.chunks + st.ended + tg.ended, 0);
	assert_int_equal(st.aborted + tg.aborted, 0); /* never begun */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_both_take_everything),
		cmocka_unit_test(test_store_that_has_it),
		cmocka_unit_test(test_store_failure_stops_everything),
		cmocka_unit_test(test_target_failure),
		cmocka_unit_test(test_cancel_and_source_failure),
		cmocka_unit_test(test_unexpected_metadata),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
