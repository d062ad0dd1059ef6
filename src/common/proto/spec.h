/*
 * spec.h - the program spec: what an agent must start to run (or restore)
 * a protected program. It travels as the opaque spec blob of a checkpoint
 * (PUT_BEGIN, GET_META, CKPT_NOTIFY, RESTORE). Pure codec.
 *
 *   u16 argc (1..64), then argc strings (argv[0] is the program's path)
 *   u16 envc (0..64), then envc strings "NAME=value"
 *   1 string: the working directory ("" = the agent's choice, else absolute)
 *   string = u16 length (<= 4096) + bytes (any byte but NUL)
 * The whole spec is at most PROTO_SPEC_MAX bytes; one encoded here at most
 * PROTO_SPEC_PLAIN_MAX, so that sealed (stream/chunk.h) it still fits.
 */
#ifndef RTCMS_PROTO_SPEC_H
#define RTCMS_PROTO_SPEC_H

#include <stddef.h>
#include <stdint.h>

#include "msg.h"

#define PROTO_SPEC_ARGS_MAX 64
#define PROTO_SPEC_ENV_MAX  64
#define PROTO_SPEC_STR_MAX  4096

struct proto_spec {
	uint16_t argc;
	const char *argv[PROTO_SPEC_ARGS_MAX + 1];  /* NULL-terminated, for execve */
	uint16_t envc;
	const char *env[PROTO_SPEC_ENV_MAX + 1];    /* NULL-terminated */
	const char *cwd;                            /* "" or an absolute path */
};

/* Encode spec into buf. Returns the length, RTCMS_EINVAL for an invalid
 * spec, RTCMS_ETOOBIG if it exceeds cap or PROTO_SPEC_PLAIN_MAX. */
int proto_spec_encode(const struct proto_spec *spec, uint8_t *buf, size_t cap);

/*
 * Decode a spec blob. The strings are copied NUL-terminated into arena
 * (arena_cap >= len + 2 * (PROTO_SPEC_ARGS_MAX + PROTO_SPEC_ENV_MAX + 1)
 * always suffices) and out's pointers point there. Returns 0 or
 * RTCMS_EPROTO / RTCMS_ETOOBIG.
 */
int proto_spec_decode(const uint8_t *buf, size_t len, struct proto_spec *out,
		      char *arena, size_t arena_cap);

#endif
