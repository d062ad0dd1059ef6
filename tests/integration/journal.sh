#!/bin/bash
# journal.sh - the daemons' log lines reach the journal as fields
# (PRIORITY, RTCMS_COMPONENT, RTCMS_NODE, RTCMS_PROCESS, ...), with the test
# as the journal in a mount namespace of its own
# (tests/integration/journal.py). Usage: journal.sh BUILD_DIR. Exit 77
# without root (the namespace and the tmpfs over /run/systemd), unshare
# or python3.
BUILD=${1:?usage: journal.sh BUILD_DIR}
if [ "$(id -u)" != 0 ]; then
	echo "journal.sh: SKIPPED: needs root (a mount namespace with a tmpfs where the journal's socket is)"
	exit 77
fi
for tool in unshare python3; do
	if ! command -v "$tool" >/dev/null; then
		echo "journal.sh: SKIPPED: $tool is not installed (scripts/install-deps)"
		exit 77
	fi
done
if ! unshare -m --propagation private true 2>/dev/null; then
	echo "journal.sh: SKIPPED: unshare -m is not allowed here (no CAP_SYS_ADMIN?)"
	exit 77
fi
exec unshare -m --propagation private python3 "$(dirname "$0")/journal.py" "$BUILD"
