/* fault.c - the crash points of a move (fault.h). */
#include "fault.h"

#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log/log.h"

void manager_fault_point(const char *where)
{
	const char *at = getenv("RTCMS_MANAGER_CRASH_AT");
	if (at && strcmp(at, where) == 0) {
		log_error("test hook RTCMS_MANAGER_CRASH_AT: dying %s", where);
		kill(getpid(), SIGKILL);
	}
}
