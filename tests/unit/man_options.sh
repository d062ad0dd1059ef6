#!/bin/bash
# man_options.sh - the man pages (man/*.scd) match the code: every option
# each binary's --help lists (for rtcmsctl every command's and
# subcommand's --help too) is in its page, every rtcmsctl command is, and
# every config setting of each daemon (its config_field table in
# src/*/main.c) is in its .ini page under its section. Reads the page
# sources, so it needs no scdoc. Usage: man_options.sh BUILD_DIR
set -euo pipefail

BUILD=$(cd "${1:?usage: man_options.sh BUILD_DIR}" && pwd)
SRC=$(cd "$(dirname "$0")/../.." && pwd)
MAN=$SRC/man
CHECKS=0
fail() { echo "man_options.sh: FAILED: $*" >&2; exit 1; }

# page_has PAGE OPTION...: each option is in the page, in bold (*--x*)
page_has() {
	local page=$1 o
	shift
	[ -f "$MAN/$page.scd" ] || fail "no man page source man/$page.scd"
	for o in "$@"; do
		grep -qF -- "*$o*" "$MAN/$page.scd" ||
			fail "man/$page.scd does not mention $o (it is in --help)"
		CHECKS=$((CHECKS + 1))
	done
}

# every option named in a help text (rtcmsctl's commands name them in
# their usage lines)
options_of() { grep -oE -- '--[a-z][a-z-]*' | sort -u; }
# the options a help text defines: the lines "  -x, --name" or "  --name"
options_defined() { grep -oE -- '^ +(-[a-zA-Z], )?--[a-z][a-z-]*' | grep -oE -- '--[a-z-]+' | sort -u; }

for d in agent manager store; do
	page_has "rtcms-$d.8" $("$BUILD/rtcms-$d" --help | options_defined)
done

CTL=$BUILD/rtcmsctl
page_has rtcmsctl.1 $("$CTL" --help | options_defined)
commands=$("$CTL" --help | sed -n '/^commands:/,$p' | awk 'NR > 1 { print $1 }')
[ -n "$commands" ] || fail "rtcmsctl --help lists no command"
for c in $commands; do
	grep -qE "^\*$c( |\*)" "$MAN/rtcmsctl.1.scd" || fail "man/rtcmsctl.1.scd has no entry for command $c"
	CHECKS=$((CHECKS + 1))
	page_has rtcmsctl.1 $("$CTL" "$c" --help | options_of)
done
for s in $("$CTL" store --help | awk '$1 == "store" { print $2 }'); do
	grep -qE "^\*store $s\*" "$MAN/rtcmsctl.1.scd" || fail "man/rtcmsctl.1.scd has no entry for store $s"
	page_has rtcmsctl.1 $("$CTL" store "$s" --help | options_of)
done
for s in $("$CTL" area --help | awk '$1 == "area" { print $2 }'); do
	grep -qE "^\*area $s\*" "$MAN/rtcmsctl.1.scd" || fail "man/rtcmsctl.1.scd has no entry for area $s"
	CHECKS=$((CHECKS + 1))
done

# config settings: { "section", "name", CONFIG_... } in each daemon's main.c
for d in agent manager store; do
	page=$MAN/rtcms-$d.ini.5.scd
	[ -f "$page" ] || fail "no man page source man/rtcms-$d.ini.5.scd"
	settings=$(grep -oE '\{ "[a-z]+", "[a-z_]+", CONFIG_' "$SRC/src/$d/main.c" |
		sed -E 's/\{ "([a-z]+)", "([a-z_]+)".*/\1 \2/')
	[ -n "$settings" ] || fail "no config_field table found in src/$d/main.c"
	while read -r section name; do
		# the setting, in bold, after its section's heading
		awk -v s="# [$section]" -v n="*$name* =" '
			$0 == s { in_s = 1; next }
			/^# / { in_s = 0 }
			in_s && index($0, n) == 1 { found = 1 }
			END { exit !found }' "$page" ||
			fail "man/rtcms-$d.ini.5.scd lacks [$section] $name"
		CHECKS=$((CHECKS + 1))
	done <<<"$settings"
done
echo "man_options.sh: $CHECKS checks passed"
