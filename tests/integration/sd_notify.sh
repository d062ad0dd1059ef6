#!/bin/bash
# sd_notify.sh - READY, STATUS, WATCHDOG and STOPPING of each daemon, with
# the test as the service manager (tests/integration/sd_notify.py).
# Usage: sd_notify.sh BUILD_DIR. Exit 77 without python3.
if ! command -v python3 >/dev/null; then
	echo "sd_notify.sh: SKIPPED: python3 is not installed (scripts/install-deps)"
	exit 77
fi
exec python3 "$(dirname "$0")/sd_notify.py" "${1:?usage: sd_notify.sh BUILD_DIR}"
