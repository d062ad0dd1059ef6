/* error.c - rtcms_strerror() and rtcms_errname(). */
#include "rtcms_error.h"

#include <stddef.h>

static const struct {
	int code;
	const char *name;
	const char *text;
} errors[] = {
	{ RTCMS_OK, "OK", "success" },
	{ RTCMS_EAGAIN, "EAGAIN", "need more data" },
	{ RTCMS_EINVAL, "EINVAL", "invalid argument" },
	{ RTCMS_ENOMEM, "ENOMEM", "out of memory" },
	{ RTCMS_EIO, "EIO", "input/output error" },
	{ RTCMS_EPROTO, "EPROTO", "malformed frame or message" },
	{ RTCMS_EAUTH, "EAUTH", "authentication failed (wrong cluster key or tampered frame)" },
	{ RTCMS_EREPLAY, "EREPLAY", "replayed or out-of-order frame" },
	{ RTCMS_ETOOBIG, "ETOOBIG", "length exceeds its limit" },
	{ RTCMS_ENOENT, "ENOENT", "no such process, checkpoint or claim" },
	{ RTCMS_EEXIST, "EEXIST", "already exists with different content" },
	{ RTCMS_ECLAIMED, "ECLAIMED", "already claimed by another claimant" },
	{ RTCMS_EFENCED, "EFENCED", "refused: incarnation is older than the current one" },
	{ RTCMS_ECORRUPT, "ECORRUPT", "data corrupt on every copy" },
	{ RTCMS_ETIMEDOUT, "ETIMEDOUT", "operation timed out" },
	{ RTCMS_ECONN, "ECONN", "connection failed or lost" },
	{ RTCMS_EVERSION, "EVERSION", "unsupported protocol version" },
	{ RTCMS_EBUSY, "EBUSY", "busy" },
	{ RTCMS_ECONFIG, "ECONFIG", "configuration error" },
	{ RTCMS_ESTATE, "ESTATE", "not valid in the current state" },
	{ RTCMS_EEOF, "EEOF", "end of stream" },
	{ RTCMS_ENOSPC, "ENOSPC", "no space left" },
	{ RTCMS_EINTERNAL, "EINTERNAL", "internal error" },
};

static size_t find(int err)
{
	for (size_t i = 0; i < sizeof(errors) / sizeof(errors[0]); i++)
		if (errors[i].code == err)
			return i;
	return (size_t)-1;
}

const char *rtcms_strerror(int err)
{
	size_t i = find(err);
	return i == (size_t)-1 ? "unknown error" : errors[i].text;
}

const char *rtcms_errname(int err)
{
	size_t i = find(err);
	return i == (size_t)-1 ? "EUNKNOWN" : errors[i].name;
}
