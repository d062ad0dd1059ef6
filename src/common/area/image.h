/*
 * image.h - the checkpoint image: what a program's checkpoint looks like
 * off the node (in the store, on the wire). Built by the agent from the
 * committed slot of a checkpoint area; installed into a fresh area before a
 * restored program starts. Pure codec, libc only, big-endian:
 *
 *   offset size field
 *   0      4    magic "RTCI" (0x52544349)
 *   4      4    version (1)
 *   8      8    sequence of the checkpoint (< 2^63)
 *   16     4    region count n (<= AREA_MAX_REGIONS)
 *   20     4    reserved (0)
 *   24     8    data size d
 *   32     24*n regions: id u32, reserved u32, size u64, offset u64 (into data)
 *   32+24n d    data
 */
#ifndef RTCMS_AREA_IMAGE_H
#define RTCMS_AREA_IMAGE_H

#include <stddef.h>
#include <stdint.h>

#include "area.h"

#define IMAGE_MAGIC   0x52544349u
#define IMAGE_VERSION 1
/* The longest head (header and region table) of an image. */
#define IMAGE_HEAD_MAX (32 + 24 * AREA_MAX_REGIONS)

/* Size of the image of a checkpoint with n regions and d data bytes. */
size_t image_size(uint32_t n, uint64_t d);

/* The head of the image of sequence seq with regions (n) and size data
 * bytes (header and region table) into out (image_size(n, 0) bytes).
 * Returns its length. */
size_t image_head(uint8_t *out, uint64_t seq, const struct area_region *regions, uint32_t n,
		  uint64_t size);

/*
 * Capture the committed checkpoint of area mem as an image into out
 * (capacity cap). Returns the image size, or the errors of area_read()
 * (RTCMS_ENOENT nothing committed, RTCMS_EAGAIN retry later) or
 * RTCMS_ETOOBIG.
 */
int64_t image_capture(const void *mem, uint8_t *out, size_t cap);

/*
 * Capture the committed checkpoint into out as a full image, copying only
 * the data blocks that changed after sequence *since: out must already
 * hold the full image of *since with the same region count (else pass
 * *since = 0 for a whole copy). The slot's block versions go to versions
 * (vcap entries). On return *since is the sequence the copy built on: the
 * blocks with a version above it are the ones copied (0 = all of them,
 * after a layout change or a torn read). Returns the image size, or the
 * errors of image_capture() (RTCMS_ETOOBIG also if vcap is too small).
 */
int64_t image_capture_since(const void *mem, uint64_t *since, uint8_t *out, size_t cap,
			    uint64_t *versions, size_t vcap);

/*
 * Check an image and describe it: region table into regions (caller gives
 * AREA_MAX_REGIONS entries), *data points into img. Every region must lie
 * inside the data. Returns 0 or RTCMS_EPROTO / RTCMS_ETOOBIG.
 */
int image_parse(const uint8_t *img, size_t len, uint64_t *sequence,
		struct area_region *regions, uint32_t *count,
		const uint8_t **data, uint64_t *data_size);

/*
 * The same checks on an image's head alone: the header and region table
 * (the first avail bytes of an image of len bytes; avail must reach
 * image_size(n, 0) for the n regions the header names, else RTCMS_EPROTO).
 * The data size must be what len leaves. Returns 0, RTCMS_EPROTO or
 * RTCMS_ETOOBIG; the head's length is then image_size(*count, 0).
 */
int image_parse_head(const uint8_t *head, size_t avail, uint64_t len, uint64_t *sequence,
		     struct area_region *regions, uint32_t *count, uint64_t *data_size);

/* Parse a region table of n 24-byte entries at t: every region inside d
 * data bytes, ids unique. 0 or RTCMS_EPROTO. */
int image_parse_regions(const uint8_t *t, uint32_t n, uint64_t d,
			struct area_region *regions);

/*
 * Install an image as the committed checkpoint of area mem (an area nobody
 * writes yet: the agent does this before it starts the restored program).
 * Returns 0, RTCMS_EPROTO for a bad image, RTCMS_ENOSPC if it does not fit.
 */
int image_install(void *mem, const uint8_t *img, size_t len);

#endif
