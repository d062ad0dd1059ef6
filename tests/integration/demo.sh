#!/bin/bash
# demo.sh (test) - `make demo` as an integration test: the whole thesis
# scenario must end with both programs resumed with the right state.
# Usage: demo.sh BUILD_DIR
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
out=$(mktemp)
trap 'rm -f "$out"' EXIT
if ! "$here/../../scripts/demo.sh" "$1" > "$out" 2>&1; then
	tail -60 "$out"
	echo "FAIL: the demo did not end with both programs verified"
	exit 1
fi
grep -q "both programs continued on the other node with their state intact" "$out"
grep -E '^(counter|ledger)-1 ' "$out"
echo "PASS: demo"
