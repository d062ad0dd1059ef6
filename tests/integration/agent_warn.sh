#!/bin/bash
# agent_warn.sh - an agent that cannot reach or authenticate to a manager
# says so at once (not only at debug level), with the reason, and the
# manager names the node its refused handshake claims. One agent is
# pointed at a port nobody listens on and at a manager with another
# cluster key; each line must appear within a generous wait (never timed).
# Usage: agent_warn.sh BUILD_DIR
set -uo pipefail

BUILD=$(cd "${1:?usage: agent_warn.sh BUILD_DIR}" && pwd)
DIR=$(mktemp -d /tmp/rtcms-warn-XXXXXX)
PIDS=()
cleanup() {
	for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
	wait 2>/dev/null
	rm -rf "$DIR"
}
trap cleanup EXIT
fail() { echo "agent_warn.sh: FAILED: $*" >&2; for f in "$DIR"/*.log; do echo "== $f"; tail -20 "$f"; done >&2; exit 1; }
# wait_for FILE TEXT: TEXT appears in FILE within 30 s
wait_for() {
	for _ in $(seq 300); do
		grep -qF -- "$2" "$1" 2>/dev/null && return 0
		sleep 0.1
	done
	fail "\"$2\" not in $1"
}

"$BUILD/rtcmsctl" keygen "$DIR/cluster.key" >/dev/null
"$BUILD/rtcmsctl" keygen "$DIR/other.key" >/dev/null
"$BUILD/rtcms-store" --listen 127.0.0.1:0 --key "$DIR/cluster.key" --mirror "$DIR/m" \
	--ready-file "$DIR/store.addr" 2>"$DIR/store.log" & PIDS+=($!)
wait_for "$DIR/store.log" "listening on"
"$BUILD/rtcms-manager" --listen 127.0.0.1:0 --key "$DIR/cluster.key" \
	--store "$(cat "$DIR/store.addr")" --ready-file "$DIR/manager.addr" 2>"$DIR/manager.log" & PIDS+=($!)
wait_for "$DIR/manager.log" "listening on"
# a port nobody listens on: bound, then closed
closed=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"$BUILD/rtcms-agent" --listen 127.0.0.1:0 --key "$DIR/other.key" --node-id 9 --name intruder-9 \
	--manager "127.0.0.1:$closed" --manager "$(cat "$DIR/manager.addr")" 2>"$DIR/agent.log" & PIDS+=($!)
wait_for "$DIR/agent.log" "WARN [agent -> manager 127.0.0.1:$closed] cannot reach the manager: Connection refused"
wait_for "$DIR/agent.log" "ERROR [agent -> manager $(cat "$DIR/manager.addr")] handshake failed: wrong cluster key"
wait_for "$DIR/manager.log" "\"intruder-9\"] handshake refused: wrong cluster key"
echo "agent_warn.sh: the agent warned of both managers, the manager named the node"
