/* fuzz_stream.c - the stream verifier on arbitrary images, cut at
 * arbitrary chunk sizes and then tampered with: an untouched stream always
 * verifies (with its state hash when the bytes are an image), every
 * tampering is refused with the reason its kind calls for, and nothing
 * reads out of bounds.
 *
 * Input: byte 0 picks the chunk size, byte 1 the tampering (0 none, 1 a
 * flipped byte, 2 two chunks swapped, 3 the last chunk dropped, 4 a chunk
 * twice, 5 a wrong end count, 6 a wrong image hash), byte 2 where; the
 * rest is the image.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "area/delta.h"
#include "rtcms_error.h"
#include "stream/stream.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Chunk i of k over img. */
static void chunk_at(const struct stream_chunks *k, const uint8_t *img, uint32_t i,
		     struct proto_chunk *c)
{
	uint32_t len;

	memset(c, 0, sizeof(*c));
	stream_chunks_span(k, i, &c->offset, &len);
	c->len = len;
	c->data = img + c->offset;
	memcpy(c->hash, k->id[i], STREAM_ID_SIZE);
}

/* Feed the stream as tampering op says; the verifier's verdict. */
static int run(const struct stream_chunks *k, const uint8_t *img,
	       const struct proto_ckpt_meta *meta, unsigned flags, int op, uint32_t at)
{
	struct stream_verifier v;
	struct proto_chunk c = { 0 };
	union proto_msg m;
	enum stream_step step;
	uint32_t n = op == 3 ? k->count - 1 : k->count;
	int rc = stream_verifier_begin(&v, meta, 0, flags);

	for (uint32_t i = 0; rc == 0 && i < n; i++) {
		uint32_t j = i;
		if (op == 2 && (i == at || i == at + 1))
			j = i == at ? at + 1 : at;
		chunk_at(k, img, j, &c);
		m.chunk = c;
		rc = stream_verifier_feed(&v, PROTO_CHUNK, &m, PROTO_PUT_END, &step);
		if (rc == 0 && step != STREAM_MORE)
			abort();
		if (rc == 0 && op == 4 && i == at)
			rc = stream_verifier_chunk(&v, &c);
	}
	if (rc)
		return rc;
	memset(&m, 0, sizeof(m));
	m.put_end.chunk_count = op == 5 ? stream_verifier_count(&v) + 1 : stream_verifier_count(&v);
	rc = stream_verifier_feed(&v, PROTO_PUT_END, &m, PROTO_PUT_END, &step);
	if (rc == 0 && step != STREAM_DONE)
		abort();
	return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t img[1 << 16];
	struct stream_chunks k = { 0 };
	struct proto_ckpt_meta meta;

	if (size < 3 || size - 3 > sizeof(img))
		return 0;
	uint32_t chunk_size = 1 + (uint32_t)data[0] * 7;
	int op = data[1] % 7;
	size_t len = size - 3;
	memcpy(img, data + 3, len);
	if (stream_chunks_of(&k, img, len, chunk_size) != 0)
		abort();
	uint32_t at = k.count ? data[2] % k.count : 0;
	memset(&meta, 0, sizeof(meta));
	stream_chunks_meta(&k, &meta);
	unsigned flags = 0;
	if (state_hash(img, len, meta.state_hash) == 0)
		flags = STREAM_VERIFY_STATE;

	int want = 0;
	switch (op) {
	case 1: /* a flipped byte: its chunk no longer matches its id */
		if (len == 0)
			goto out;
		img[data[2] % len] ^= 0x20;
		want = RTCMS_ECORRUPT;
		break;
	case 2: /* chunks out of order */
		if (k.count < 2)
			goto out;
		at = at == k.count - 1 ? at - 1 : at;
		want = RTCMS_EPROTO;
		break;
	case 3: /* truncated */
	case 4: /* a duplicate */
	case 5: /* an end that miscounts */
		if (k.count < 1)
			goto out;
		want = RTCMS_EPROTO;
		break;
	case 6:
		meta.hash[data[2] % PROTO_HASH_SIZE] ^= 1;
		want = RTCMS_ECORRUPT;
		break;
	}
	if (run(&k, img, &meta, flags, op, at) != want)
		abort();
	if (op == 0 && flags && run(&k, img, &meta, 0, 0, 0) != 0)
		abort();
out:
	stream_chunks_clear(&k);
	return 0;
}
