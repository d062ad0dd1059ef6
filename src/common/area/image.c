/* image.c - checkpoint images: capture from an area, parse, install. */
#include "image.h"

#include <string.h>

#include "rtcms_error.h"
#include "util/bytes.h"

#define HEAD 32
#define ENTRY 24

size_t image_size(uint32_t n, uint64_t d)
{
	return HEAD + (size_t)n * ENTRY + (size_t)d;
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
	put_be32(out, IMAGE_MAGIC);
	put_be32(out + 4, IMAGE_VERSION);
	put_be64(out + 8, seq);
	put_be32(out + 16, n);
	put_be32(out + 20, 0);
	put_be64(out + 24, size);
	for (uint32_t i = 0; i < n; i++) {
		uint8_t *e = out + HEAD + (size_t)i * ENTRY;
		put_be32(e, regions[i].id);
		put_be32(e + 4, 0);
		put_be64(e + 8, regions[i].size);
		put_be64(e + 16, regions[i].offset);
	}
	return (int64_t)image_size(n, size);
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

int image_parse(const uint8_t *img, size_t len, uint64_t *sequence,
		struct area_region *regions, uint32_t *count,
		const uint8_t **data, uint64_t *data_size)
{
	if (len < HEAD || get_be32(img) != IMAGE_MAGIC ||
	    get_be32(img + 4) != IMAGE_VERSION || get_be32(img + 20) != 0)
		return RTCMS_EPROTO;
	uint32_t n = get_be32(img + 16);
	uint64_t d = get_be64(img + 24);
	if (n > AREA_MAX_REGIONS)
		return RTCMS_ETOOBIG;
	/* the area stores sequence << 1: sequences use 63 bits */
	if (get_be64(img + 8) > (UINT64_MAX >> 1))
		return RTCMS_EPROTO;
	if (len < (size_t)HEAD + (size_t)n * ENTRY ||
	    d != len - HEAD - (size_t)n * ENTRY)
		return RTCMS_EPROTO;
	int rc = image_parse_regions(img + HEAD, n, d, regions);
	if (rc)
		return rc;
	*sequence = get_be64(img + 8);
	*count = n;
	*data = img + HEAD + (size_t)n * ENTRY;
	*data_size = d;
	return 0;
}

int image_install(void *mem, const uint8_t *img, size_t len)
{
	struct area_region regions[AREA_MAX_REGIONS];
	const uint8_t *data;
	uint64_t seq, size;
	uint32_t n;
	int rc = image_parse(img, len, &seq, regions, &n, &data, &size);

	if (rc)
		return rc;
	if (seq == 0)
		return RTCMS_EPROTO;
	if (size > area_data_capacity(mem))
		return RTCMS_ENOSPC;
	struct area_slot *s = area_write_begin(mem);
	memcpy(s->regions, regions, n * sizeof(regions[0]));
	s->region_count = n;
	memcpy(area_slot_data(mem, s), data, (size_t)size);
	uint64_t *ver = area_slot_versions(mem, s);
	for (uint64_t b = 0; b < area_block_round(size) / AREA_BLOCK; b++)
		ver[b] = seq; /* all of it is new here: the next checkpoint is full */
	s->data_size = size;
	area_write_commit(mem, s, seq);
	return 0;
}
