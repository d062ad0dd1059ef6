/* area.c - the double-buffered, seqlock-validated checkpoint area. */
#include "area.h"

#include <stdbool.h>
#include <string.h>

#include "rtcms_error.h"
#include "util/tsan.h"

#define READ_ATTEMPTS 8

uint64_t area_block_round(uint64_t v)
{
	return (v + AREA_BLOCK - 1) & ~(uint64_t)(AREA_BLOCK - 1);
}

/* Slot header, then the block versions, then the data: each part starts
 * at a block boundary (data blocks line up with pages). */
static uint64_t slot_header_size(void)
{
	return area_block_round(sizeof(struct area_slot));
}

static uint64_t versions_size(uint64_t blocks)
{
	return area_block_round(blocks * sizeof(uint64_t));
}

static uint64_t slot_bytes(uint64_t blocks)
{
	return slot_header_size() + versions_size(blocks) + blocks * AREA_BLOCK;
}

static uint64_t head_size(void)
{
	return area_block_round(sizeof(struct area_header));
}

size_t area_size_for(uint64_t data_capacity)
{
	uint64_t blocks = area_block_round(data_capacity) / AREA_BLOCK;
	return (size_t)(head_size() + 2 * slot_bytes(blocks ? blocks : 1));
}

int area_format(void *mem, size_t len)
{
	struct area_header *h = mem;
	uint64_t head = head_size();

	if (len < area_size_for(AREA_BLOCK))
		return RTCMS_EINVAL;
	uint64_t slot = ((len - head) / 2) & ~(uint64_t)(AREA_BLOCK - 1);
	/* as many blocks as fit beside their versions */
	uint64_t blocks = (slot - slot_header_size()) / (AREA_BLOCK + sizeof(uint64_t));
	while (slot_bytes(blocks + 1) <= slot)
		blocks++;
	while (blocks > 1 && slot_bytes(blocks) > slot)
		blocks--;
	memset(mem, 0, (size_t)head);
	h->magic = AREA_MAGIC;
	h->version = AREA_VERSION;
	h->total_size = len;
	h->slot_size = slot;
	h->slot_offset[0] = head;
	h->slot_offset[1] = head + slot;
	h->blocks = blocks;
	for (int i = 0; i < 2; i++) {
		struct area_slot *s = (struct area_slot *)((uint8_t *)mem + h->slot_offset[i]);
		memset(s, 0, sizeof(*s));
		memset((uint8_t *)s + slot_header_size(), 0, (size_t)(blocks * sizeof(uint64_t)));
		atomic_store_explicit(&s->gen, 0, memory_order_relaxed);
	}
	atomic_store_explicit(&h->committed, 0, memory_order_release);
	return 0;
}

int area_check(const void *mem, size_t len)
{
	const struct area_header *h = mem;
	if (len < sizeof(*h) || h->magic != AREA_MAGIC || h->version != AREA_VERSION ||
	    h->total_size != len || h->blocks == 0 || h->blocks > len / AREA_BLOCK ||
	    slot_bytes(h->blocks) > h->slot_size ||
	    h->slot_offset[0] < sizeof(*h) ||
	    h->slot_offset[1] != h->slot_offset[0] + h->slot_size ||
	    h->slot_offset[1] + h->slot_size > len)
		return RTCMS_EPROTO;
	return 0;
}

uint64_t area_data_capacity(const void *mem)
{
	const struct area_header *h = mem;
	return h->blocks * AREA_BLOCK;
}

static struct area_slot *slot_at(const void *mem, unsigned i)
{
	const struct area_header *h = mem;
	return (struct area_slot *)((uint8_t *)mem + h->slot_offset[i & 1]);
}

/* Whether the region table fits n regions inside size bytes of data. */
static bool regions_fit(const struct area_region *r, uint32_t n, uint64_t size)
{
	for (uint32_t i = 0; i < n; i++)
		if (r[i].offset > size || r[i].size > size - r[i].offset)
			return false;
	return true;
}

uint8_t *area_slot_data(void *mem, const struct area_slot *slot)
{
	const struct area_header *h = mem;
	return (uint8_t *)slot + slot_header_size() + versions_size(h->blocks);
}

uint64_t *area_slot_versions(void *mem, const struct area_slot *slot)
{
	(void)mem;
	return (uint64_t *)((uint8_t *)slot + slot_header_size());
}

struct area_slot *area_committed_slot(void *mem)
{
	struct area_header *h = mem;
	uint64_t c = atomic_load_explicit(&h->committed, memory_order_acquire);
	return c ? slot_at(mem, (unsigned)(c & 1)) : NULL;
}

struct area_slot *area_write_begin(void *mem)
{
	struct area_header *h = mem;
	uint64_t c = atomic_load_explicit(&h->committed, memory_order_relaxed);
	/* the slot not committed; the very first checkpoint goes to slot 0 */
	struct area_slot *s = slot_at(mem, c ? (unsigned)((c & 1) ^ 1) : 0);
	uint64_t g = atomic_load_explicit(&s->gen, memory_order_relaxed);
	atomic_store_explicit(&s->gen, g + 1, memory_order_relaxed); /* odd */
	/* the odd generation is visible before any byte of the new content */
	atomic_thread_fence(memory_order_release);
	return s;
}

void area_write_commit(void *mem, struct area_slot *s, uint64_t sequence)
{
	struct area_header *h = mem;
	s->sequence = sequence;
	uint64_t g = atomic_load_explicit(&s->gen, memory_order_relaxed);
	/* content complete, then even generation, then the commit pointer */
	atomic_store_explicit(&s->gen, g + 1, memory_order_release);
	unsigned idx = s == slot_at(mem, 1) ? 1 : 0;
	atomic_store_explicit(&h->committed, sequence << 1 | idx,
			      memory_order_release);
}

void area_write_abort(void *mem, struct area_slot *s)
{
	(void)mem;
	uint64_t g = atomic_load_explicit(&s->gen, memory_order_relaxed);
	s->sequence = 0; /* whatever the slot held is gone */
	atomic_store_explicit(&s->gen, g + 1, memory_order_release);
}

uint64_t area_committed_sequence(const void *mem)
{
	const struct area_header *h = mem;
	return atomic_load_explicit(&((struct area_header *)h)->committed,
				    memory_order_acquire) >> 1;
}

int area_read(const void *mem, uint8_t *out, size_t cap, uint64_t *data_size,
	      struct area_region *regions, uint32_t *count, uint64_t *sequence)
{
	struct area_header *h = (struct area_header *)mem;

	for (int attempt = 0; attempt < READ_ATTEMPTS; attempt++) {
		uint64_t c = atomic_load_explicit(&h->committed, memory_order_acquire);
		if (c == 0)
			return RTCMS_ENOENT;
		struct area_slot *s = slot_at(mem, (unsigned)(c & 1));
		uint64_t g1 = atomic_load_explicit(&s->gen, memory_order_acquire);
		if (g1 & 1)
			continue; /* being rewritten right now */
		TSAN_IGNORE_READS_BEGIN();
		uint64_t seq = s->sequence;
		uint64_t size = s->data_size;
		uint32_t n = s->region_count;
		bool sane = n <= AREA_MAX_REGIONS && size <= area_data_capacity(mem);
		if (sane && size <= cap) {
			memcpy(regions, s->regions, n * sizeof(*regions));
			memcpy(out, area_slot_data((void *)mem, s), (size_t)size);
		}
		TSAN_IGNORE_READS_END();
		if (!sane) {
			atomic_thread_fence(memory_order_acquire);
			if (atomic_load_explicit(&s->gen, memory_order_relaxed) != g1)
				continue;
			return RTCMS_EPROTO;
		}
		if (size > cap)
			return RTCMS_ETOOBIG;
		atomic_thread_fence(memory_order_acquire);
		uint64_t g2 = atomic_load_explicit(&s->gen, memory_order_relaxed);
		if (g1 != g2 || seq != c >> 1)
			continue; /* the writer came by: torn copy, discard */
		*data_size = size;
		*count = n;
		*sequence = seq;
		return 0;
	}
	return RTCMS_EAGAIN;
}

int area_committed_view(void *mem, const uint8_t **data, uint64_t *data_size,
			struct area_region *regions, uint32_t *count,
			uint64_t *sequence)
{
	struct area_header *h = mem;
	uint64_t c = atomic_load_explicit(&h->committed, memory_order_acquire);
	if (c == 0)
		return RTCMS_ENOENT;
	struct area_slot *s = slot_at(mem, (unsigned)(c & 1));
	uint64_t g = atomic_load_explicit(&s->gen, memory_order_acquire);
	uint64_t size = s->data_size;
	uint32_t n = s->region_count;
	if ((g & 1) || s->sequence != c >> 1)
		return RTCMS_EAGAIN; /* someone writes: not a restore */
	if (n > AREA_MAX_REGIONS || size > area_data_capacity(mem) ||
	    !regions_fit(s->regions, n, size))
		return RTCMS_EPROTO;
	memcpy(regions, s->regions, n * sizeof(*regions));
	*data = area_slot_data(mem, s);
	*data_size = size;
	*count = n;
	*sequence = s->sequence;
	return 0;
}

/* One validated read of the committed slot's description and versions:
 * 0, or RTCMS_EAGAIN when the writer came by. */
static int snap_once(const void *mem, struct area_snap *snap, uint64_t *versions, size_t vcap)
{
	struct area_header *h = (struct area_header *)mem;
	uint64_t c = atomic_load_explicit(&h->committed, memory_order_acquire);
	if (c == 0)
		return RTCMS_ENOENT;
	unsigned idx = (unsigned)(c & 1);
	struct area_slot *s = slot_at(mem, idx);
	uint64_t g1 = atomic_load_explicit(&s->gen, memory_order_acquire);
	if (g1 & 1)
		return RTCMS_EAGAIN;
	int rc = 0;
	TSAN_IGNORE_READS_BEGIN();
	uint64_t seq = s->sequence, size = s->data_size;
	uint32_t n = s->region_count;
	uint64_t blocks = area_block_round(size) / AREA_BLOCK;
	if (n > AREA_MAX_REGIONS || size > area_data_capacity(mem))
		rc = RTCMS_EPROTO; /* inconsistent unless the writer came by */
	else if (blocks > vcap)
		rc = RTCMS_ETOOBIG;
	if (rc == 0) {
		memcpy(snap->regions, s->regions, n * sizeof(snap->regions[0]));
		memcpy(versions, area_slot_versions((void *)mem, s), (size_t)blocks * sizeof(uint64_t));
	}
	TSAN_IGNORE_READS_END();
	atomic_thread_fence(memory_order_acquire);
	if (atomic_load_explicit(&s->gen, memory_order_relaxed) != g1 || seq != c >> 1)
		return RTCMS_EAGAIN;
	if (rc == 0 && !regions_fit(snap->regions, n, size))
		rc = RTCMS_EPROTO;
	if (rc)
		return rc;
	snap->slot = idx;
	snap->gen = g1;
	snap->sequence = seq;
	snap->data_size = size;
	snap->region_count = n;
	return 0;
}

int area_snap_take(const void *mem, struct area_snap *snap, uint64_t *versions, size_t vcap)
{
	for (int attempt = 0; attempt < READ_ATTEMPTS; attempt++) {
		int rc = snap_once(mem, snap, versions, vcap);
		if (rc != RTCMS_EAGAIN)
			return rc;
	}
	return RTCMS_EAGAIN;
}

bool area_snap_valid(const void *mem, const struct area_snap *snap)
{
	struct area_slot *s = slot_at(mem, snap->slot);
	/* the reads before are ordered before the generation's load */
	atomic_thread_fence(memory_order_acquire);
	return atomic_load_explicit(&s->gen, memory_order_relaxed) == snap->gen;
}

int area_snap_read(const void *mem, const struct area_snap *snap, uint64_t off, void *out,
		   size_t len)
{
	if (off > snap->data_size || len > snap->data_size - off)
		return RTCMS_EINVAL;
	struct area_slot *s = slot_at(mem, snap->slot);
	TSAN_IGNORE_READS_BEGIN();
	memcpy(out, area_slot_data((void *)mem, s) + off, len);
	TSAN_IGNORE_READS_END();
	return area_snap_valid(mem, snap) ? 0 : RTCMS_ENOENT;
}

/* Whether a checkpoint may be loaded into mem: 0, RTCMS_EPROTO, RTCMS_ENOSPC. */
static int load_check(const void *mem, const struct area_region *regions, uint32_t n,
		      uint64_t size, uint64_t seq)
{
	if (seq == 0 || n > AREA_MAX_REGIONS || !regions_fit(regions, n, size))
		return RTCMS_EPROTO;
	return size > area_data_capacity(mem) ? RTCMS_ENOSPC : 0;
}

int area_load_commit(void *mem, struct area_slot *s, const struct area_region *regions,
		     uint32_t n, uint64_t size, uint64_t seq)
{
	int rc = load_check(mem, regions, n, size, seq);
	if (rc) {
		area_write_abort(mem, s);
		return rc;
	}
	memcpy(s->regions, regions, n * sizeof(regions[0]));
	s->region_count = n;
	uint64_t *ver = area_slot_versions(mem, s);
	for (uint64_t b = 0; b < area_block_round(size) / AREA_BLOCK; b++)
		ver[b] = seq; /* all of it is new here: the next checkpoint is full */
	s->data_size = size;
	area_write_commit(mem, s, seq);
	return 0;
}

int area_load(void *mem, const struct area_region *regions, uint32_t n,
		 const uint8_t *data, uint64_t size, uint64_t seq)
{
	int rc = load_check(mem, regions, n, size, seq);
	if (rc)
		return rc;
	struct area_slot *s = area_write_begin(mem);
	memcpy(area_slot_data(mem, s), data, (size_t)size);
	return area_load_commit(mem, s, regions, n, size, seq);
}

int area_copy(void *dst, const void *src)
{
	struct area_region regions[AREA_MAX_REGIONS];
	const uint8_t *data;
	uint64_t size, seq;
	uint32_t n;
	int rc = area_committed_view((void *)src, &data, &size, regions, &n, &seq);

	return rc ? rc : area_load(dst, regions, n, data, size, seq);
}
