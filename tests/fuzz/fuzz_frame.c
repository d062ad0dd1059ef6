/* fuzz_frame.c - header decoding and frame opening (AEAD and plain MAC)
 * on arbitrary bytes with a fixed key. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proto/frame.h"
#include "proto/msg.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint8_t plain[PROTO_MAX_PAYLOAD];

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const struct proto_key key = { { 1, 2, 3, 4, 5, 6, 7, 8 } };
	struct proto_header h;
	const uint8_t *payload;

	proto_init();
	int rc = proto_header_decode(data, size, &h);
	if (rc >= 0 && h.length > proto_type_max_payload(h.type))
		abort(); /* the cap must hold */
	rc = proto_frame_open(&key, 1, data, size, &h, plain, sizeof(plain));
	if (rc > (int)PROTO_MAX_PAYLOAD)
		abort();
	rc = proto_frame_open_plain(&key, data, size, &h, &payload);
	if (rc >= 0 && (payload < data || payload + rc > data + size))
		abort();
	return 0;
}
