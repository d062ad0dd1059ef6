/* version.c - the build's version and git revision (rtcms_version.h is
 * generated in the build directory by cmake/version.cmake). */
#include "util/version.h"

#include "rtcms_version.h"

const char *version_string(void)
{
	return RTCMS_VERSION " (git " RTCMS_GIT_REVISION ")";
}

const char *version_number(void)
{
	return RTCMS_VERSION;
}

const char *version_revision(void)
{
	return RTCMS_GIT_REVISION;
}

void version_print(FILE *f, const char *prog)
{
	fprintf(f, "%s %s\n", prog, version_string());
}
