/* fuzz_datakey.c - the data keyring parser on arbitrary text; a parsed
 * ring has an active key, unique ids, and every key findable by its id;
 * a chunk sealed under the active key opens again. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "stream/chunk.h"
#include "util/datakey.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct datakey_ring ring;
	static const uint8_t plain[64] = "a chunk of some program's state";
	uint8_t id[STREAM_ID_SIZE], sealed[sizeof(plain) + STREAM_TAG_SIZE];
	uint8_t sum[STREAM_SUM_SIZE], back[sizeof(plain)];
	char err[512];

	if (datakey_parse((const char *)data, size, &ring, err, sizeof(err)) != 0) {
		if (strncmp(err, "line ", 5) != 0)
			abort();
		return 0;
	}
	const struct datakey *active = datakey_active(&ring);
	if (!active || active->retired || active->pending || ring.count == 0 ||
	    ring.count > DATAKEY_MAX)
		abort();
	for (size_t i = 0; i < ring.count; i++) {
		if (ring.keys[i].id == 0 || datakey_find(&ring, ring.keys[i].id) != &ring.keys[i])
			abort();
		if (!ring.keys[i].retired && !ring.keys[i].pending && ring.keys[i].id > active->id)
			abort();
	}
	if (stream_chunk_seal(active, plain, sizeof(plain), id, sealed, sum) != 0 ||
	    stream_chunk_open(active, id, sealed, sizeof(sealed), back) != 0 ||
	    memcmp(back, plain, sizeof(plain)) != 0 ||
	    !stream_chunk_sum_ok(sealed, sizeof(sealed), sum))
		abort();
	datakey_ring_wipe(&ring);
	return 0;
}
