/* fuzz_spec.c - the program spec decoder on arbitrary bytes; a decoded
 * spec re-encodes to the same bytes. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proto/spec.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static char arena[PROTO_SPEC_MAX + 512];
	static uint8_t out[PROTO_SPEC_MAX];
	struct proto_spec s;

	if (proto_spec_decode(data, size, &s, arena, sizeof(arena)) != 0)
		return 0;
	int n = proto_spec_encode(&s, out, sizeof(out));
	if (n != (int)size || memcmp(out, data, size) != 0)
		abort();
	return 0;
}
