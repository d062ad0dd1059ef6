/*
 * version.h - what build this is: the project version (CMake's
 * project(VERSION)) and the git revision the build was made from
 * ("unknown" outside a git checkout). What every binary's --version prints.
 */
#ifndef RTCMS_UTIL_VERSION_H
#define RTCMS_UTIL_VERSION_H

#include <stdio.h>

/* "0.1.0 (git 4de3cf4-dirty)": static storage, never NULL. */
const char *version_string(void);

/* Its parts: "0.1.0" and "4de3cf4-dirty" (static storage, never NULL). */
const char *version_number(void);
const char *version_revision(void);

/* Print "PROG VERSION (git REVISION)" and a newline to f. */
void version_print(FILE *f, const char *prog);

#endif
