/*
 * json.h - JSON strings that are always valid, whatever bytes they are
 * given (names and texts from peers, paths): what rtcmsctl's --json output
 * writes every string through.
 */
#ifndef RTCMS_UTIL_JSON_H
#define RTCMS_UTIL_JSON_H

#include <stdio.h>

/*
 * Write s as a JSON string, quotes included, to f. `"` and `\` are
 * escaped, control characters written as \u00XX; valid UTF-8 is copied as
 * it is; every byte that is not part of a valid UTF-8 sequence (a stray
 * continuation byte, a truncated, overlong or surrogate sequence, a code
 * point above U+10FFFF) is written as \u00XX with the byte's value, so the
 * result always parses and is never longer than 6 bytes per input byte.
 */
void json_write_str(FILE *f, const char *s);

#endif
