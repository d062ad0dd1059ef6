#!/bin/bash
# units.sh - the systemd units of contrib/ as `cmake --install` writes them
# (ExecStart naming this build's binaries) pass `systemd-analyze verify`;
# prints each unit's `systemd-analyze security --offline=yes` exposure
# (docs/operations.md records them). Exit 77 without systemd-analyze.
# Usage: units.sh BUILD_DIR
set -euo pipefail

BUILD=$(cd "${1:?usage: units.sh BUILD_DIR}" && pwd)
SRC=$(cd "$(dirname "$0")/../.." && pwd)
if ! command -v systemd-analyze >/dev/null; then
	echo "units.sh: SKIPPED: systemd-analyze is not installed (package systemd," \
	     "scripts/install-deps)"
	exit 77
fi
DIR=$(mktemp -d /tmp/rtcms-units-XXXXXX)
trap 'rm -rf "$DIR"' EXIT
for d in store manager agent; do
	sed "s|/usr/local/bin/|$BUILD/|" "$SRC/contrib/rtcms-$d.service" >"$DIR/rtcms-$d.service"
	grep -q "^Type=notify$" "$DIR/rtcms-$d.service" ||
		{ echo "units.sh: FAILED: rtcms-$d.service is not Type=notify" >&2; exit 1; }
	grep -q "^WatchdogSec=" "$DIR/rtcms-$d.service" ||
		{ echo "units.sh: FAILED: rtcms-$d.service has no WatchdogSec" >&2; exit 1; }
done
grep -q "^KillMode=mixed$" "$DIR/rtcms-agent.service" ||
	{ echo "units.sh: FAILED: rtcms-agent.service is not KillMode=mixed" >&2; exit 1; }
# --man=no: the man pages need not be installed where this runs
if ! out=$(cd "$DIR" && systemd-analyze verify --man=no ./rtcms-*.service 2>&1); then
	echo "units.sh: FAILED: systemd-analyze verify:" >&2
	echo "$out" >&2
	exit 1
fi
[ -z "$out" ] || { echo "units.sh: FAILED: systemd-analyze verify says:"; echo "$out"; exit 1; } >&2
for d in store manager agent; do
	(cd "$DIR" && systemd-analyze security --offline=yes "./rtcms-$d.service" 2>&1 | tail -1)
done
echo "units.sh: the units verify"
