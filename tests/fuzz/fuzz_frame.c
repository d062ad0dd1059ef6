/* fuzz_frame.c - header decoding and frame opening (AEAD and plain MAC)
 * on arbitrary bytes with a fixed key. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proto/frame.h"
#include "proto/msg.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint8_t plain[PROTO_MAX_PAYLOAD];
static uint8_t frame[PROTO_MAX_FRAME];

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
	if (size <= sizeof(frame)) { /* in place: the same answer, the same bytes */
		memcpy(frame, data, size);
		int rc2 = proto_frame_open_inplace(&key, 1, frame, size, &h);
		if (rc2 != rc ||
		    (rc > 0 && memcmp(frame + PROTO_HEADER_SIZE, plain, (size_t)rc) != 0))
			abort();
	}
	rc = proto_frame_open_plain(&key, data, size, &h, &payload);
	if (rc >= 0 && (payload < data || payload + rc > data + size))
		abort();

	/* any type, flags (raw or not) and payload, sealed with the key: it
	 * opens as exactly what was sealed, and every cut of it is refused */
	if (size < 3 || size - 3 > PROTO_MAX_PAYLOAD)
		return 0;
	struct proto_header sh = { .type = data[0], .flags = (uint16_t)(data[1] & 0x0f),
				   .counter = 1 };
	size_t len = size - 3;
	memcpy(frame + PROTO_HEADER_SIZE, data + 3, len);
	int n = proto_frame_seal_inplace(&key, &sh, len, frame, sizeof(frame));
	if (n < 0)
		return 0;
	rc = proto_frame_open(&key, 1, frame, (size_t)n, &h, plain, sizeof(plain));
	if (rc >= 0 && ((size_t)rc != len || memcmp(plain, data + 3, len) != 0))
		abort(); /* opened as something else */
	if (rc < 0 && proto_type_known(sh.type) && len <= proto_type_max_payload(sh.type))
		abort(); /* a valid frame of a known type must open */
	if (data[2] < n && proto_frame_open(&key, 1, frame, data[2], &h, plain,
					     sizeof(plain)) >= 0)
		abort();
	return 0;
}
