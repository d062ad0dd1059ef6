/* cordon_set.c - the set of cordoned nodes. */
#include "cordon_set.h"

#include "rtcms_error.h"

bool cordon_set_has(const struct cordon_set *s, uint64_t node)
{
	for (size_t i = 0; i < s->count; i++)
		if (s->nodes[i] == node)
			return true;
	return false;
}

int cordon_set_add(struct cordon_set *s, uint64_t node)
{
	if (cordon_set_has(s, node))
		return 0;
	if (s->count >= CORDON_MAX)
		return RTCMS_ENOSPC;
	s->nodes[s->count++] = node;
	return 0;
}

bool cordon_set_remove(struct cordon_set *s, uint64_t node)
{
	for (size_t i = 0; i < s->count; i++)
		if (s->nodes[i] == node) {
			s->nodes[i] = s->nodes[--s->count]; /* order does not matter */
			return true;
		}
	return false;
}
