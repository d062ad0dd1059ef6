/* pinset.c - counted hash set with linear probing and tombstones. */
#include "pinset.h"

#include <stdlib.h>
#include <string.h>

#include "rtcms_error.h"

struct pin {
	uint8_t hash[PROTO_HASH_SIZE];
	uint32_t count;   /* 0 = free slot */
	uint8_t tomb;     /* was used: probing goes on past it */
};

static struct pin *find(const struct pinset *ps, const uint8_t *h,
			int for_insert)
{
	size_t mask = ps->cap - 1;
	struct pin *free_slot = NULL;
	uint64_t start;

	if (!ps->cap)
		return NULL;
	memcpy(&start, h, sizeof(start)); /* hashes are uniformly random */
	for (size_t i = start & mask, k = 0; k < ps->cap; i = (i + 1) & mask, k++) {
		struct pin *p = &ps->slots[i];
		if (p->count && memcmp(p->hash, h, PROTO_HASH_SIZE) == 0)
			return p;
		if (!p->count) {
			if (!free_slot)
				free_slot = p;
			if (!p->tomb)
				break;
		}
	}
	return for_insert ? free_slot : NULL;
}

/*
 * Rehash into a table sized for the live entries (at least 4 slots per
 * live entry, 1024 minimum): tombstones go away, and a set that saw many
 * distinct hashes come and go does not keep growing.
 */
static int rehash(struct pinset *ps)
{
	size_t live = 0, cap = 1024;

	for (size_t i = 0; i < ps->cap; i++)
		live += ps->slots[i].count ? 1 : 0;
	while (cap < 4 * (live + 1))
		cap *= 2;
	struct pinset fresh = { calloc(cap, sizeof(struct pin)), cap, 0 };
	if (!fresh.slots)
		return RTCMS_ENOMEM;
	for (size_t i = 0; i < ps->cap; i++) {
		if (!ps->slots[i].count)
			continue;
		struct pin *p = find(&fresh, ps->slots[i].hash, 1);
		*p = ps->slots[i];
		p->tomb = 0;
		fresh.used++;
	}
	free(ps->slots);
	*ps = fresh;
	return 0;
}

int pinset_add(struct pinset *ps, const uint8_t hash[PROTO_HASH_SIZE])
{
	if ((ps->used + 1) * 2 > ps->cap && rehash(ps) != 0)
		return RTCMS_ENOMEM;
	struct pin *p = find(ps, hash, 1);
	if (p->count) {
		p->count++;
		return 0;
	}
	if (!p->tomb)
		ps->used++;
	memcpy(p->hash, hash, PROTO_HASH_SIZE);
	p->count = 1;
	p->tomb = 0;
	return 0;
}

void pinset_del(struct pinset *ps, const uint8_t hash[PROTO_HASH_SIZE])
{
	struct pin *p = find(ps, hash, 0);
	if (p && --p->count == 0)
		p->tomb = 1;
}

int pinset_has(const struct pinset *ps, const uint8_t hash[PROTO_HASH_SIZE])
{
	return find(ps, hash, 0) != NULL;
}

void pinset_free(struct pinset *ps)
{
	free(ps->slots);
	ps->slots = NULL;
	ps->cap = ps->used = 0;
}
