/* fuzz_image.c - the checkpoint image parser and installer on arbitrary
 * bytes: never out of bounds, and whatever installs reads back the same. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "area/image.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t area[1 << 16], out[1 << 17];
	struct area_region r[AREA_MAX_REGIONS];
	const uint8_t *d;
	uint64_t seq, dsize;
	uint32_t n;

	if (image_parse(data, size, &seq, r, &n, &d, &dsize) != 0)
		return 0;
	area_format(area, sizeof(area));
	if (image_install(area, data, size) != 0)
		return 0;
	int64_t len = image_capture(area, out, sizeof(out));
	if (len != (int64_t)size || memcmp(out, data, size) != 0)
		abort();
	return 0;
}
