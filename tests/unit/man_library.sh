#!/bin/bash
# man_library.sh - rtcms(3) matches librtcms' public headers: every
# function declared in include/rtcms*.h has its prototype, as declared, in
# the page's SYNOPSIS and an entry of its own in DESCRIPTION ("*name*(" at
# a line's start); every struct and enum is named, every member of the structs
# and every RTCMS_ constant is in the page, every environment variable
# librtcms reads (getenv in its sources) is in its ENVIRONMENT; and the
# EXAMPLE compiles against the headers. Reads the page source, so it
# needs no scdoc; it needs a C compiler (cc) to read the headers as the
# compiler does. Usage: man_library.sh BUILD_DIR
set -euo pipefail

SRC=$(cd "$(dirname "$0")/../.." && pwd)
PAGE=$SRC/man/rtcms.3.scd
CHECKS=0
fail() { echo "man_library.sh: FAILED: $*" >&2; exit 1; }
[ -f "$PAGE" ] || fail "no man page source man/rtcms.3.scd"
CC=${CC:-cc}
if ! command -v "$CC" >/dev/null; then
	echo "man_library.sh: SKIPPED: no C compiler ($CC) to read the headers"
	exit 77
fi
TMP=$(mktemp -d /tmp/rtcms-manlib-XXXXXX)
trap 'rm -rf "$TMP"' EXIT

# the headers as the compiler sees them: no comments, one declaration
# per line (every statement ends at a ';' or a brace)
for h in "$SRC"/include/rtcms*.h; do
	echo "#include \"$(basename "$h")\""
done >"$TMP/all.c"
"$CC" -E -P -I "$SRC/include" "$TMP/all.c" | tr '\n' ' ' | tr -s ' \t' ' ' |
	sed -e 's/;/;\n/g' -e 's/{/{\n/g' -e 's/}/}\n/g' | sed -e 's/^ *//' >"$TMP/decls"
# only rtcms' own: the system headers declare nothing named rtcms_
prototypes=$(grep -E '^[a-z_0-9 *]+[ *]rtcms_[a-z_]+ ?\(.*\) ?;$' "$TMP/decls" |
	sed -E 's/ ?\( ?/(/; s/ ?\) ?;$/);/; s/ ,/,/g')
[ -n "$prototypes" ] || fail "no function found in include/rtcms*.h"

# the SYNOPSIS as text: without scdoc's bold, underline, escapes, breaks
synopsis=$(awk '/^# SYNOPSIS/ { on = 1; next } /^# / { on = 0 } on' "$PAGE" |
	sed -E 's/\+\+$//; s/\\\*/@STAR@/g; s/\*//g; s/@STAR@/*/g' |
	sed -E 's/(^|[^A-Za-z0-9])_/\1/g; s/_([^A-Za-z0-9]|$)/\1/g' | tr -s ' ' ' ')
description=$(awk '/^# DESCRIPTION/ { on = 1; next } /^# / { on = 0 } on' "$PAGE")
while read -r proto; do
	name=$(grep -oE 'rtcms_[a-z_]+\(' <<<"$proto" | head -1 | tr -d '(')
	grep -qxF -- "$proto" <<<"$synopsis" ||
		fail "man/rtcms.3.scd SYNOPSIS lacks \"$proto\" (as include/rtcms*.h declares $name)"
	grep -qE "^\*$name\*\(" <<<"$description" ||
		fail "man/rtcms.3.scd DESCRIPTION has no entry for $name"
	CHECKS=$((CHECKS + 2))
done <<<"$prototypes"

# types, their members, the constants
for t in $(grep -oE '(struct|enum) rtcms_[a-z_]+' "$TMP/decls" | tr ' ' '@' | sort -u); do
	grep -qF -- "${t/@/ }" "$PAGE" || fail "man/rtcms.3.scd never names ${t/@/ }"
	CHECKS=$((CHECKS + 1))
done
members=$(awk '/^struct rtcms_[a-z_]+ \{/ { on = 1; next } /^\}/ { on = 0 }
	on { sub(/;.*/, ""); n = split($0, w, /[ *]+/); print w[n] }' "$TMP/decls")
[ -n "$members" ] || fail "no struct member found in include/rtcms*.h"
for m in $members; do
	grep -qF -- "_${m}_" "$PAGE" || fail "man/rtcms.3.scd does not describe the member $m"
	CHECKS=$((CHECKS + 1))
done
for c in $(grep -oE '\bRTCMS_[A-Z0-9_]+\b' "$TMP/decls" | sort -u); do
	grep -qF -- "*$c*" "$PAGE" || fail "man/rtcms.3.scd does not mention $c"
	CHECKS=$((CHECKS + 1))
done

# the environment librtcms reads (its sources: CMakeLists.txt LIBRTCMS_SRC)
environment=$(awk '/^# ENVIRONMENT/ { on = 1; next } /^# / { on = 0 } on' "$PAGE")
vars=$(grep -ohE 'getenv\("[A-Z_]+"\)' "$SRC"/src/lib/*.c "$SRC"/src/common/area/area.c |
	grep -oE '[A-Z_]{2,}' | sort -u)
[ -n "$vars" ] || fail "no getenv found in librtcms' sources"
for v in $vars; do
	grep -qE "^\*$v\*$" <<<"$environment" || fail "man/rtcms.3.scd ENVIRONMENT lacks $v"
	CHECKS=$((CHECKS + 1))
done

# the EXAMPLE is a program that compiles
awk '/^# EXAMPLE/ { on = 1; next } /^# / { on = 0 }
	on && /^```/ { code = !code; next } on && code' "$PAGE" >"$TMP/example.c"
[ -s "$TMP/example.c" ] || fail "man/rtcms.3.scd has no code in its EXAMPLE"
sed -i 's/\\\\/\\/g' "$TMP/example.c" # scdoc's escaped backslashes
"$CC" -std=c11 -Wall -Wextra -Werror -I "$SRC/include" -c -o "$TMP/example.o" \
	"$TMP/example.c" 2>"$TMP/cc.log" ||
	fail "the EXAMPLE of man/rtcms.3.scd does not compile: $(cat "$TMP/cc.log")"
CHECKS=$((CHECKS + 1))
echo "man_library.sh: $CHECKS checks passed"
