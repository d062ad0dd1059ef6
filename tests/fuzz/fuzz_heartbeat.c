/* fuzz_heartbeat.c - UDP heartbeat datagrams on arbitrary bytes with the
 * fuzzers' fixed key; what opens must seal again to the same bytes. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proto/heartbeat.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const struct proto_key key = { { 1, 2, 3, 4, 5, 6, 7, 8 } };
	struct proto_heartbeat hb;
	uint8_t type, out[PROTO_HEARTBEAT_MAX];

	proto_init();
	if (proto_heartbeat_open(&key, data, size, &type, &hb) != 0)
		return 0;
	int n = proto_heartbeat_seal(&key, type, &hb, out, sizeof(out));
	if (n < 0 || (size_t)n != size || memcmp(out, data, size) != 0)
		abort(); /* the header fields we do not set must be 0 to pass */
	return 0;
}
