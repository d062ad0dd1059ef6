/* journal.c - log entries to the journal over sd_journal_sendv (journal.h). */
#include "journal.h"

#include <errno.h>
#include <unistd.h>

/* the caller's CODE_FILE/LINE/FUNC are log.c's fields, not this file's */
#define SD_JOURNAL_SUPPRESS_LOCATION
#include <systemd/sd-journal.h>

#define JOURNAL_SOCKET "/run/systemd/journal/socket"

int journal_sendv(const struct iovec *iov, int n)
{
	/* sd_journal_sendv drops an entry and returns 0 when the journal's
	 * socket is missing (ENOENT): the line would be lost, so look first
	 * and let the caller write it to stderr. */
	if (access(JOURNAL_SOCKET, F_OK) != 0)
		return -errno;
	return sd_journal_sendv(iov, n);
}
