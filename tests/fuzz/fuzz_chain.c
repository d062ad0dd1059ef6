/* fuzz_chain.c - the chain receiver (stream_recv_chain into the image
 * assembler) on arbitrary frame sequences built from one real chain (a
 * full image of sequence 9, deltas to 10 and 11): whatever frames come, in
 * whatever order, with whatever flags and metadata, nothing reads out of
 * bounds or leaks, and a stream that is accepted assembled exactly the
 * full image of the sequence its last link names.
 *
 * Input: one byte per frame. Its low 3 bits pick the frame (0-2: the next
 * chunk of link 0-2, 3: the end of the link being sent, 4: the end with
 * MORE, 5: the metadata of the next link, 6: an ERROR, 7: a GET_END);
 * bit 3 corrupts the frame (a flipped data byte, a wrong count, a base or
 * process changed); bits 4-7 say which link's metadata or chunk.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "area/area.h"
#include "area/delta.h"
#include "area/image.h"
#include "rtcms_error.h"
#include "stream/stream_net.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define BLOCKS 3
#define CHUNK 1500u

struct link {
	uint8_t *bytes;
	size_t len;
	struct stream_chunks k;
	struct proto_ckpt_meta meta;
};

static struct link links[3];
static uint8_t *fulls[3];       /* the full images of 9, 10, 11 */
static size_t full_lens[3];

static size_t full_image(uint64_t seq, const uint64_t *version, uint8_t **out)
{
	size_t alen = area_size_for(BLOCKS * AREA_BLOCK);
	void *a = calloc(1, alen);
	area_format(a, alen);
	struct area_slot *s = area_write_begin(a);
	uint8_t *d = area_slot_data(a, s);
	s->region_count = 1;
	s->regions[0] = (struct area_region){ 1, 0, BLOCKS * AREA_BLOCK, 0 };
	for (size_t i = 0; i < BLOCKS * AREA_BLOCK; i++)
		d[i] = (uint8_t)(i * 31 + version[i / AREA_BLOCK] * 7);
	s->data_size = BLOCKS * AREA_BLOCK;
	area_write_commit(a, s, seq);
	size_t cap = image_size(AREA_MAX_REGIONS, BLOCKS * AREA_BLOCK);
	*out = malloc(cap);
	int64_t n = image_capture(a, *out, cap);
	free(a);
	if (n <= 0)
		abort();
	return (size_t)n;
}

static void cut(struct link *l, uint64_t seq, uint64_t base, size_t full_size)
{
	if (stream_chunks_of(&l->k, l->bytes, l->len, CHUNK) != 0)
		abort();
	strcpy(l->meta.process, "p");
	l->meta.incarnation = 1;
	l->meta.sequence = seq;
	l->meta.base = base;
	l->meta.full_size = full_size;
	stream_chunks_meta(&l->k, &l->meta);
}

static void init(void)
{
	uint64_t v[BLOCKS] = { 2, 9, 4 };

	full_lens[0] = full_image(9, v, &fulls[0]);
	links[0].bytes = fulls[0];
	links[0].len = full_lens[0];
	cut(&links[0], 9, 0, full_lens[0]);
	state_hash(fulls[0], full_lens[0], links[0].meta.state_hash);
	for (int i = 1; i < 3; i++) {
		v[i] = 9 + (uint64_t)i;
		full_lens[i] = full_image(9 + (uint64_t)i, v, &fulls[i]);
		links[i].bytes = malloc(full_lens[i]);
		int64_t n = delta_build(fulls[i], full_lens[i], v, 8 + (uint64_t)i,
					links[i].bytes, full_lens[i]);
		if (n <= 0)
			abort();
		links[i].len = (size_t)n;
		cut(&links[i], 9 + (uint64_t)i, 8 + (uint64_t)i, full_lens[i]);
		state_hash(fulls[i], full_lens[i], links[i].meta.state_hash);
	}
}

struct script {
	const uint8_t *ops;
	size_t n, next;
	int link;                  /* the link whose chunks are being sent */
	uint32_t chunk[3];
	uint8_t copy[CHUNK];
};

static int script_recv(void *ctx, struct proto_header *h, union proto_msg *m)
{
	struct script *s = ctx;

	memset(h, 0, sizeof(*h));
	memset(m, 0, sizeof(*m));
	if (s->next >= s->n)
		return RTCMS_ECONN;
	uint8_t op = s->ops[s->next++];
	int which = (op >> 4) % 3, bad = op & 8;
	const struct link *l = &links[which];
	switch (op & 7) {
	case 0: case 1: case 2: {
		const struct link *c = &links[op & 7];
		uint32_t i = s->chunk[op & 7] % c->k.count, len;
		s->chunk[op & 7]++;
		h->type = PROTO_CHUNK;
		stream_chunks_span(&c->k, i, &m->chunk.offset, &len);
		m->chunk.len = len;
		m->chunk.data = c->bytes + m->chunk.offset;
		memcpy(m->chunk.hash, c->k.id[i], STREAM_ID_SIZE);
		if (bad) {
			memcpy(s->copy, m->chunk.data, len);
			s->copy[len / 2] ^= 1;
			m->chunk.data = s->copy;
		}
		return 0;
	}
	case 3: case 4:
		h->type = PROTO_PUT_END;
		h->flags = (op & 7) == 4 ? PROTO_F_MORE : 0;
		m->put_end.chunk_count = links[s->link].k.count + (bad ? 1 : 0);
		return 0;
	case 5:
		h->type = PROTO_RESTORE;
		m->meta = l->meta;
		s->link = which;
		if (bad) {
			if (op & 0x40)
				m->meta.base++;
			else
				m->meta.process[0] = 'q';
		}
		return 0;
	case 6:
		h->type = PROTO_ERROR;
		m->error.code = RTCMS_EIO;
		return 0;
	default:
		h->type = PROTO_GET_END;
		return 0;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int ready;
	struct stream_area_sink img;
	struct stream_result res;

	if (!ready) {
		init();
		ready = 1;
	}
	if (size < 1 || size > 4096)
		return 0;
	/* byte 0: the first link, its tampering and whether to drain */
	struct script s = { .ops = data + 1, .n = size - 1, .link = (data[0] >> 4) % 3 };
	struct stream_in in = { { script_recv, NULL, NULL, &s, NULL }, PROTO_PUT_END,
				1 << 20, STREAM_VERIFY_STATE, (data[0] & 1) != 0, NULL, NULL, NULL };
	struct proto_ckpt_meta meta = links[s.link].meta;
	if (data[0] & 2)
		meta.chunk_count++;
	stream_area_sink_init(&img, 1 << 20, NULL, NULL);
	int rc = stream_recv_chain(&in, PROTO_RESTORE, &meta, &img.sink, &res);
	if (rc == 0 && res.outcome == STREAM_ENDED) {
		int want = (int)(meta.sequence - 9);
		if (want < 0 || want > 2 || img.len != full_lens[want] ||
		    memcmp(img.image, fulls[want], img.len) != 0)
			abort();
	}
	stream_area_sink_clear(&img);
	return 0;
}
