/*
 * rtcms_error.h - error codes shared by librtcms, the daemons and rtcmsctl.
 *
 * Every rtcms function that can fail returns an int: 0 (or a non-negative
 * count) on success, or one of the negative RTCMS_E* codes below.
 * rtcms_strerror() turns a code into a short, static English sentence.
 * The numeric values are part of the wire protocol (ERROR frames carry
 * them) and never change once released.
 */
#ifndef RTCMS_ERROR_H
#define RTCMS_ERROR_H

#ifdef __cplusplus
extern "C" {
#endif

enum rtcms_error {
	RTCMS_OK        = 0,
	RTCMS_EAGAIN    = -23, /* need more input (decoders) / try again; never sent */
	RTCMS_EINVAL    = -2,  /* invalid argument or field value */
	RTCMS_ENOMEM    = -3,  /* out of memory */
	RTCMS_EIO       = -4,  /* I/O error (disk or socket) */
	RTCMS_EPROTO    = -5,  /* malformed frame or message */
	RTCMS_EAUTH     = -6,  /* authentication failed (bad key or tampered frame) */
	RTCMS_EREPLAY   = -7,  /* frame counter out of order: replayed or dropped frame */
	RTCMS_ETOOBIG   = -8,  /* a length exceeds its hard cap */
	RTCMS_ENOENT    = -9,  /* no such process, checkpoint or claim */
	RTCMS_EEXIST    = -10, /* already exists (with different content) */
	RTCMS_ECLAIMED  = -11, /* process is claimed by someone else */
	RTCMS_EFENCED   = -12, /* incarnation is older than the current one */
	RTCMS_ECORRUPT  = -13, /* data failed its hash check and no good copy exists */
	RTCMS_ETIMEDOUT = -14, /* operation timed out */
	RTCMS_ECONN     = -15, /* could not connect / connection lost */
	RTCMS_EVERSION  = -16, /* unsupported protocol version */
	RTCMS_EBUSY     = -17, /* resource busy (too many connections, in use) */
	RTCMS_ECONFIG   = -18, /* configuration error */
	RTCMS_ESTATE    = -19, /* operation not valid in the current state */
	RTCMS_EEOF      = -20, /* end of stream */
	RTCMS_ENOSPC    = -21, /* no space left (disk or quota) */
	RTCMS_EINTERNAL = -22, /* internal error (a bug: please report) */
};

/* Short static description of an rtcms error code; never NULL. */
const char *rtcms_strerror(int err);

/* Stable symbolic name of an error code ("ECLAIMED"); never NULL. */
const char *rtcms_errname(int err);

#ifdef __cplusplus
}
#endif
#endif
