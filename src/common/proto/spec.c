/* spec.c - encode and decode program specs. */
#include "spec.h"

#include <stdbool.h>
#include <string.h>

#include "rtcms_error.h"
#include "util/bytes.h"

static int put_str(uint8_t *buf, size_t cap, size_t *off, const char *s)
{
	size_t n = strlen(s);
	if (n > PROTO_SPEC_STR_MAX)
		return RTCMS_EINVAL;
	if (cap - *off < 2 + n)
		return RTCMS_ETOOBIG;
	put_be16(buf + *off, (uint16_t)n);
	memcpy(buf + *off + 2, s, n);
	*off += 2 + n;
	return 0;
}

static bool valid(const struct proto_spec *s)
{
	if (s->argc < 1 || s->argc > PROTO_SPEC_ARGS_MAX || s->envc > PROTO_SPEC_ENV_MAX ||
	    !s->cwd || (s->cwd[0] && s->cwd[0] != '/'))
		return false;
	for (int i = 0; i < s->argc; i++)
		if (!s->argv[i] || (i == 0 && !s->argv[0][0]))
			return false;
	for (int i = 0; i < s->envc; i++)
		if (!s->env[i] || !strchr(s->env[i], '=') || s->env[i][0] == '=')
			return false;
	return true;
}

int proto_spec_encode(const struct proto_spec *s, uint8_t *buf, size_t cap)
{
	size_t off = 0;
	int rc;

	if (!valid(s))
		return RTCMS_EINVAL;
	if (cap > PROTO_SPEC_PLAIN_MAX)
		cap = PROTO_SPEC_PLAIN_MAX; /* what an agent seals stays in a blob */
	if (cap < 2)
		return RTCMS_ETOOBIG;
	put_be16(buf, s->argc);
	off = 2;
	for (int i = 0; i < s->argc; i++)
		if ((rc = put_str(buf, cap, &off, s->argv[i])))
			return rc;
	if (cap - off < 2)
		return RTCMS_ETOOBIG;
	put_be16(buf + off, s->envc);
	off += 2;
	for (int i = 0; i < s->envc; i++)
		if ((rc = put_str(buf, cap, &off, s->env[i])))
			return rc;
	if ((rc = put_str(buf, cap, &off, s->cwd)))
		return rc;
	return (int)off;
}

/* Copy the next string into the arena; NULL on malformed input. */
static const char *get_str(const uint8_t *buf, size_t len, size_t *off,
			   char *arena, size_t cap, size_t *used)
{
	if (len - *off < 2)
		return NULL;
	size_t n = get_be16(buf + *off);
	if (n > PROTO_SPEC_STR_MAX || len - *off - 2 < n || cap - *used < n + 1)
		return NULL;
	const uint8_t *p = buf + *off + 2;
	if (memchr(p, 0, n))
		return NULL; /* would cut the string short when executed */
	char *dst = arena + *used;
	memcpy(dst, p, n);
	dst[n] = '\0';
	*used += n + 1;
	*off += 2 + n;
	return dst;
}

int proto_spec_decode(const uint8_t *buf, size_t len, struct proto_spec *out,
		      char *arena, size_t arena_cap)
{
	size_t off = 0, used = 0;

	if (len > PROTO_SPEC_MAX)
		return RTCMS_ETOOBIG;
	memset(out, 0, sizeof(*out));
	if (len < 2)
		return RTCMS_EPROTO;
	out->argc = get_be16(buf);
	off = 2;
	if (out->argc < 1 || out->argc > PROTO_SPEC_ARGS_MAX)
		return RTCMS_EPROTO;
	for (int i = 0; i < out->argc; i++)
		if (!(out->argv[i] = get_str(buf, len, &off, arena, arena_cap, &used)))
			return RTCMS_EPROTO;
	if (len - off < 2)
		return RTCMS_EPROTO;
	out->envc = get_be16(buf + off);
	off += 2;
	if (out->envc > PROTO_SPEC_ENV_MAX)
		return RTCMS_EPROTO;
	for (int i = 0; i < out->envc; i++)
		if (!(out->env[i] = get_str(buf, len, &off, arena, arena_cap, &used)))
			return RTCMS_EPROTO;
	if (!(out->cwd = get_str(buf, len, &off, arena, arena_cap, &used)))
		return RTCMS_EPROTO;
	if (off != len || !valid(out))
		return RTCMS_EPROTO;
	return 0;
}
