/* image.c - checkpoint images: capture from an area, parse, install. */
#include "image.h"

#include <stdatomic.h>
#include <string.h>

#include "rtcms_error.h"
#include "util/bytes.h"
#include "util/tsan.h"

#define HEAD 32
#define ENTRY 24

size_t image_size(uint32_t n, uint64_t d)
{
	return HEAD + (size_t)n * ENTRY + (size_t)d;
}

/* The image's header (the HEAD bytes before its region table). */
static void head_put(uint8_t *out, uint64_t seq, uint32_t n, uint64_t size)
{
	put_be32(out, IMAGE_MAGIC);
	put_be32(out + 4, IMAGE_VERSION);
	put_be64(out + 8, seq);
	put_be32(out + 16, n);
	put_be32(out + 20, 0);
	put_be64(out + 24, size);
}

/* The region table after the header. */
static void table_put(uint8_t *out, const struct area_region *regions, uint32_t n)
{
	for (uint32_t i = 0; i < n; i++) {
		uint8_t *e = out + HEAD + (size_t)i * ENTRY;
		put_be32(e, regions[i].id);
		put_be32(e + 4, 0);
		put_be64(e + 8, regions[i].size);
		put_be64(e + 16, regions[i].offset);
	}
}

size_t image_head(uint8_t *out, uint64_t seq, const struct area_region *regions, uint32_t n,
		  uint64_t size)
{
	head_put(out, seq, n, size);
	table_put(out, regions, n);
	return image_size(n, 0);
}

int64_t image_capture(const void *mem, uint8_t *out, size_t cap)
{
	struct area_region regions[AREA_MAX_REGIONS];
	uint64_t size, seq;
	uint32_t n;

	if (cap < image_size(AREA_MAX_REGIONS, 0))
		return RTCMS_ETOOBIG;
	/* read straight into the data part of the image */
	size_t room = cap - image_size(AREA_MAX_REGIONS, 0);
	uint8_t *data = out + image_size(AREA_MAX_REGIONS, 0);
	int rc = area_read(mem, data, room, &size, regions, &n, &seq);
	if (rc)
		return rc;
	/* close the gap left for unused table entries */
	uint8_t *dst = out + image_size(n, 0);
	memmove(dst, data, (size_t)size);
	image_head(out, seq, regions, n, size);
	return (int64_t)image_size(n, size);
}

#define CAPTURE_ATTEMPTS 100

/* One validated read of the committed slot: only blocks newer than since
 * (all if since is 0). 0, or RTCMS_EAGAIN when the writer came by (out's
 * data may then be partly overwritten). */
static int read_since(const void *mem, uint64_t *sincep, uint8_t *out, size_t cap,
		      uint64_t *versions, size_t vcap, size_t *len)
{
	uint64_t since = *sincep;
	struct area_header *h = (struct area_header *)mem;
	uint64_t c = atomic_load_explicit(&h->committed, memory_order_acquire);
	if (c == 0)
		return RTCMS_ENOENT;
	struct area_slot *s = area_committed_slot((void *)mem);
	uint64_t g1 = atomic_load_explicit(&s->gen, memory_order_acquire);
	if (g1 & 1)
		return RTCMS_EAGAIN;
	TSAN_IGNORE_READS_BEGIN();
	uint64_t seq = s->sequence, d = s->data_size;
	uint32_t n = s->region_count;
	if (n > AREA_MAX_REGIONS || d > area_data_capacity(mem))
		goto check; /* inconsistent unless the writer came by */
	uint64_t blocks = area_block_round(d) / AREA_BLOCK;
	if (image_size(n, d) > cap || blocks > vcap) {
		TSAN_IGNORE_READS_END();
		return RTCMS_ETOOBIG;
	}
	/* the blocks go after the region table: with another region count
	 * (or no image of since in out) the old content is elsewhere */
	if (since && (get_be32(out) != IMAGE_MAGIC || get_be64(out + 8) != since ||
		      get_be32(out + 16) != n))
		since = *sincep = 0;
	const uint64_t *ver = area_slot_versions((void *)mem, s);
	const uint8_t *src = area_slot_data((void *)mem, s);
	uint8_t *dst = out + HEAD + (size_t)n * ENTRY;
	for (uint64_t b = 0; b < blocks; b++) {
		uint64_t v = ver[b];
		versions[b] = v;
		if (since && v <= since)
			continue;
		size_t off = (size_t)b * AREA_BLOCK;
		memcpy(dst + off, src + off, d - off < AREA_BLOCK ? (size_t)(d - off) : AREA_BLOCK);
	}
	table_put(out, s->regions, n);
check:
	TSAN_IGNORE_READS_END();
	atomic_thread_fence(memory_order_acquire);
	if (atomic_load_explicit(&s->gen, memory_order_relaxed) != g1 || seq != c >> 1)
		return RTCMS_EAGAIN;
	if (n > AREA_MAX_REGIONS || d > area_data_capacity(mem))
		return RTCMS_EPROTO;
	head_put(out, seq, n, d);
	*len = image_size(n, d);
	return 0;
}

int64_t image_capture_since(const void *mem, uint64_t *since, uint8_t *out, size_t cap,
			    uint64_t *versions, size_t vcap)
{
	size_t len = 0;
	if (cap < HEAD)
		return RTCMS_ETOOBIG;
	for (int attempt = 0; attempt < CAPTURE_ATTEMPTS; attempt++) {
		int rc = read_since(mem, since, out, cap, versions, vcap, &len);
		if (rc == 0)
			return (int64_t)len;
		if (rc != RTCMS_EAGAIN)
			return rc;
		*since = 0; /* a torn copy may have overwritten old blocks */
	}
	return RTCMS_EAGAIN;
}

int image_parse_regions(const uint8_t *t, uint32_t n, uint64_t d,
			struct area_region *regions)
{
	for (uint32_t i = 0; i < n; i++) {
		const uint8_t *e = t + (size_t)i * ENTRY;
		regions[i].id = get_be32(e);
		regions[i].reserved = 0;
		regions[i].size = get_be64(e + 8);
		regions[i].offset = get_be64(e + 16);
		if (get_be32(e + 4) != 0 || regions[i].offset > d ||
		    regions[i].size > d - regions[i].offset)
			return RTCMS_EPROTO;
		for (uint32_t k = 0; k < i; k++)
			if (regions[k].id == regions[i].id)
				return RTCMS_EPROTO;
	}
	return 0;
}

int image_parse_head(const uint8_t *head, size_t avail, uint64_t len, uint64_t *sequence,
		     struct area_region *regions, uint32_t *count, uint64_t *data_size)
{
	if (avail < HEAD || get_be32(head) != IMAGE_MAGIC ||
	    get_be32(head + 4) != IMAGE_VERSION || get_be32(head + 20) != 0)
		return RTCMS_EPROTO;
	uint32_t n = get_be32(head + 16);
	uint64_t d = get_be64(head + 24);
	if (n > AREA_MAX_REGIONS)
		return RTCMS_ETOOBIG;
	/* the area stores sequence << 1: sequences use 63 bits */
	if (get_be64(head + 8) > (UINT64_MAX >> 1))
		return RTCMS_EPROTO;
	if (avail < (size_t)HEAD + (size_t)n * ENTRY || len < (uint64_t)HEAD + (uint64_t)n * ENTRY ||
	    d != len - HEAD - (uint64_t)n * ENTRY)
		return RTCMS_EPROTO;
	int rc = image_parse_regions(head + HEAD, n, d, regions);
	if (rc)
		return rc;
	*sequence = get_be64(head + 8);
	*count = n;
	*data_size = d;
	return 0;
}

int image_parse(const uint8_t *img, size_t len, uint64_t *sequence,
		struct area_region *regions, uint32_t *count,
		const uint8_t **data, uint64_t *data_size)
{
	int rc = image_parse_head(img, len, len, sequence, regions, count, data_size);
	if (rc)
		return rc;
	*data = img + image_size(*count, 0);
	return 0;
}

int image_install(void *mem, const uint8_t *img, size_t len)
{
	struct area_region regions[AREA_MAX_REGIONS];
	const uint8_t *data;
	uint64_t seq, size;
	uint32_t n;
	int rc = image_parse(img, len, &seq, regions, &n, &data, &size);

	return rc ? rc : area_load(mem, regions, n, data, size, seq);
}
