#!/bin/bash
# metrics.sh - the /metrics endpoints of rtcms-store, rtcms-manager and
# rtcms-agent, scraped and parsed with prometheus_client while a program
# checkpoints, and held against hostile clients
# (tests/integration/metrics.py). Usage: metrics.sh BUILD_DIR. Exit 77
# without a python3 that has prometheus_client (scripts/install-deps
# installs Debian's python3-prometheus-client, for /usr/bin/python3: a
# python3 earlier on PATH, e.g. pyenv's, may not see it).
for py in python3 /usr/bin/python3; do
	if command -v "$py" >/dev/null && "$py" -c 'import prometheus_client.parser' 2>/dev/null; then
		exec "$py" "$(dirname "$0")/metrics.py" "${1:?usage: metrics.sh BUILD_DIR}"
	fi
done
echo "metrics.sh: SKIPPED: no python3 with prometheus_client (apt-get install" \
	"python3-prometheus-client; scripts/install-deps)"
exit 77
