/* fuzz_delta.c - the delta image parser and applier on arbitrary bytes:
 * never out of bounds; a delta that parses applies to a base of its
 * layout, and building a delta back from the result gives the input. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "area/delta.h"
#include "area/image.h"
#include "util/bytes.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct delta_info di;
	static uint8_t base[1 << 20], again[1 << 20];
	static uint64_t versions[(1 << 20) / AREA_BLOCK];

	if (delta_parse(data, size, &di) != 0)
		return 0;
	size_t full = image_size(di.region_count, di.data_size);
	if (full > sizeof(base))
		return 0;
	/* the base: the same layout, zero data, the delta's base sequence */
	memset(base, 0, full);
	put_be32(base, IMAGE_MAGIC);
	put_be32(base + 4, IMAGE_VERSION);
	put_be64(base + 8, di.base);
	put_be32(base + 16, di.region_count);
	put_be64(base + 24, di.data_size);
	memcpy(base + 32, data + DELTA_HEAD, (size_t)di.region_count * 24);
	size_t len = full;
	if (delta_apply(base, &len, sizeof(base), data, size) != 0 || len != full)
		abort();
	for (uint64_t b = 0; b < di.data_size / AREA_BLOCK; b++)
		versions[b] = di.base;
	for (uint32_t i = 0; i < di.block_count; i++)
		versions[get_be32(di.blocks + (size_t)i * 4)] = di.sequence;
	int64_t n = delta_build(base, len, versions, di.base, again, sizeof(again));
	if (n != (int64_t)size || memcmp(again, data, size) != 0)
		abort();
	return 0;
}
