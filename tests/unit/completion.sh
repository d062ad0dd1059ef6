#!/bin/bash
# completion.sh - the bash completion of rtcmsctl (contrib/completions):
# it registers for rtcmsctl, completes "rtcmsctl st" to status and store,
# offers every command rtcmsctl --help lists, every subcommand of store
# and area, and every option each command's (and store subcommand's)
# --help names. Usage: completion.sh BUILD_DIR
set -euo pipefail

BUILD=$(cd "${1:?usage: completion.sh BUILD_DIR}" && pwd)
SRC=$(cd "$(dirname "$0")/../.." && pwd)
CTL=$BUILD/rtcmsctl
CHECKS=0
fail() { echo "completion.sh: FAILED: $*" >&2; exit 1; }

# shellcheck source=/dev/null
source "$SRC/contrib/completions/rtcmsctl"
grep -q -- "-F _rtcmsctl" <<<"$(complete -p rtcmsctl)" || fail "complete -p rtcmsctl: $(complete -p rtcmsctl)"
CHECKS=$((CHECKS + 1))

# offers WORD...: what completing the last word offers, one per line
offers() {
	COMP_WORDS=("$@")
	COMP_CWORD=$(($# - 1))
	COMPREPLY=()
	_rtcmsctl
	printf '%s\n' "${COMPREPLY[@]}" | sort
}
# expect_offers "WANT..." WORD...: every one of WANT is offered
expect_offers() {
	local want=$1 w got
	shift
	got=$(offers "$@")
	for w in $want; do
		grep -qx -- "$w" <<<"$got" || fail "completing '$*' does not offer $w (offers: $(echo $got))"
		CHECKS=$((CHECKS + 1))
	done
}

[ "$(offers rtcmsctl st | tr '\n' ' ')" = "status store " ] ||
	fail "completing 'rtcmsctl st' offers '$(offers rtcmsctl st | tr '\n' ' ')', not 'status store'"
CHECKS=$((CHECKS + 1))
[ "$(offers rtcmsctl --manager 127.0.0.1:7600 dr | tr '\n' ' ')" = "drain " ] ||
	fail "a global option's value is taken for the command"
CHECKS=$((CHECKS + 1))

global=$("$CTL" --help | grep -oE -- '^ +(-[a-zA-Z], )?--[a-z][a-z-]*' | grep -oE -- '--[a-z-]+')
expect_offers "$global" rtcmsctl --
commands=$("$CTL" --help | sed -n '/^commands:/,$p' | awk 'NR > 1 { print $1 }')
expect_offers "$commands" rtcmsctl ""

# a command's own options: those its --help names that are not global
own_options() { "$@" --help | grep -oE -- '--[a-z][a-z-]*' | sort -u | grep -vxF -f <(echo "$global") || true; }
for c in $commands; do
	case $c in store|area|datakey) continue ;; esac
	expect_offers "$(own_options "$CTL" "$c") --json --help" rtcmsctl "$c" --
done
expect_offers "list add activate retire" rtcmsctl datakey ""
expect_offers "--pending --cipher" rtcmsctl datakey add f --
subs=$("$CTL" store --help | awk '$1 == "store" { print $2 }')
expect_offers "$subs" rtcmsctl store ""
for s in $subs; do
	expect_offers "$(own_options "$CTL" store "$s") --json" rtcmsctl store "$s" x --
done
expect_offers "$("$CTL" area --help | awk '$1 == "area" { print $2 }')" rtcmsctl area ""
expect_offers "--capacity" rtcmsctl area create x --
expect_offers "aes-256-gcm chacha20-poly1305" rtcmsctl keygen --data --cipher ""
echo "completion.sh: $CHECKS checks passed"
