/*
 * journal.h - the daemons' log lines to the journal as fields: the sender
 * log_journal_attach (log/log.h) takes, over libsystemd's
 * sd_journal_sendv(3).
 *
 * Apart from log.c because sd-journal.h brings syslog.h, whose LOG_INFO
 * and LOG_DEBUG are log.h's levels too; and because the log module is
 * linked where libsystemd is not (rtcmsctl, the fuzzers).
 */
#ifndef RTCMS_DAEMON_JOURNAL_H
#define RTCMS_DAEMON_JOURNAL_H

struct iovec;

/* Send one entry of n fields "KEY=value" to the journal's socket: 0, or
 * a negative errno (no socket: -ENOENT; nobody reading it:
 * -ECONNREFUSED), and then nothing was sent. Any thread. */
int journal_sendv(const struct iovec *iov, int n);

#endif
