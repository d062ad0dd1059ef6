#!/bin/bash
# config_errors.sh - every daemon refuses a bad setting before it starts
# anything, with exit status 2 and a message naming the file, the line and
# the field ("FILE:LINE: [section] name: ..."), or the option when it came
# from the command line; a cluster key file others may read is refused
# with `chmod 600 FILE`. No daemon starts: each exits while parsing.
# Usage: config_errors.sh BUILD_DIR
set -uo pipefail

BUILD=$(cd "${1:?usage: config_errors.sh BUILD_DIR}" && pwd)
DIR=$(mktemp -d /tmp/rtcms-config-XXXXXX)
trap 'rm -rf "$DIR"' EXIT
CHECKS=0
fail() { echo "config_errors.sh: FAILED: $*" >&2; exit 1; }

"$BUILD/rtcmsctl" keygen "$DIR/k" >/dev/null || fail "keygen"

# expect DAEMON SECTION "KEY = VALUE" NEEDLE: the file's line 3 is bad
expect() {
	local daemon=$1 section=$2 line=$3 needle=$4 ini=$DIR/$1.ini
	case $daemon in
	store) printf '[store]\nkey = %s\n' "$DIR/k" >"$ini" ;;
	manager) printf '[manager]\nkey = %s\n' "$DIR/k" >"$ini" ;;
	agent) printf '[agent]\nkey = %s\n' "$DIR/k" >"$ini" ;;
	esac
	[ "$section" = "$daemon" ] || printf '[%s]\n' "$section" >>"$ini"
	printf '%s\n' "$line" >>"$ini"
	local n
	n=$(wc -l <"$ini")
	local out rc
	out=$("$BUILD/rtcms-$daemon" --config "$ini" --mirror "$DIR/m" 2>&1 </dev/null)
	rc=$?
	[ "$daemon" != store ] && { out=$("$BUILD/rtcms-$daemon" --config "$ini" 2>&1 </dev/null); rc=$?; }
	[ $rc -eq 2 ] || fail "rtcms-$daemon with \"$line\": exit $rc (expected 2): $out"
	local want="$ini:$n: [$section] ${line%% =*}: "
	grep -qF -- "$want" <<<"$out" || fail "rtcms-$daemon with \"$line\": \"$out\" does not name \"$want\""
	grep -qF -- "$needle" <<<"$out" || fail "rtcms-$daemon with \"$line\": \"$out\" does not say \"$needle\""
	CHECKS=$((CHECKS + 1))
}

expect store store "compress = lz4" "expected off or zstd"
expect store log "level = loud" "expected error, warn, info or debug"
expect store store "listen = localhost:7400" "not a numeric host:port"
expect store store "metrics_listen = localhost:9400" "not a numeric host:port"
expect store store "retain = 0" "out of range"
expect manager placement "policy = random" "expected weighted or thesis"
expect manager placement "weight_cpu = lots" "expected a number"
expect manager log "level = loud" "expected error, warn, info or debug"
expect manager manager "listen = 127.0.0.1" "not a numeric host:port"
expect manager manager "store = 127.0.0.1:0" "not a numeric host:port"
expect manager manager "metrics_listen = [::1]" "not a numeric host:port"
expect agent agent "node_id = xyz" "expected a non-zero hex number"
expect agent agent "metrics_listen = *:9500" "not a numeric host:port"
expect agent agent "node_id = 0" "expected a non-zero hex number"
expect agent agent "run = just-an-id" "expected \"ID PATH [ARGS...]\""
expect agent agent "restart = sometimes" "expected on-failure, always or never"
expect agent agent "manager = 127.0.0.1:7600, nowhere" "not a numeric host:port"
expect agent log "level = loud" "expected error, warn, info or debug"

# the same check from the command line names the option
out=$("$BUILD/rtcms-agent" --key "$DIR/k" --manager 127.0.0.1:7600 --node-id zz 2>&1); rc=$?
[ $rc -eq 2 ] && grep -qF -- "--node-id: \"zz\"" <<<"$out" || fail "--node-id zz: exit $rc: $out"
CHECKS=$((CHECKS + 1))

# the listen address is refused before the mirrors are touched
out=$("$BUILD/rtcms-store" --key "$DIR/k" --mirror "$DIR/never" --listen nowhere 2>&1); rc=$?
[ $rc -eq 2 ] && [ ! -e "$DIR/never" ] || fail "--listen nowhere: exit $rc, mirror made: $out"
CHECKS=$((CHECKS + 1))

# a cluster key others may read is refused, saying how to fix it
cp "$DIR/k" "$DIR/open.key" && chmod 644 "$DIR/open.key"
for d in store manager agent; do
	out=$("$BUILD/rtcms-$d" --key "$DIR/open.key" --mirror "$DIR/m" 2>&1); rc=$?
	[ $d = store ] || { out=$("$BUILD/rtcms-$d" --key "$DIR/open.key" --manager 127.0.0.1:7600 2>&1); rc=$?; }
	[ $d = manager ] && { out=$("$BUILD/rtcms-$d" --key "$DIR/open.key" 2>&1); rc=$?; }
	[ $rc -eq 2 ] && grep -qF "chmod 600 $DIR/open.key" <<<"$out" ||
		fail "rtcms-$d with a key of mode 0644: exit $rc: $out"
	CHECKS=$((CHECKS + 1))
done
echo "config_errors.sh: $CHECKS checks passed"
