#!/bin/bash
# demo.sh - the rtcms demo: the thesis' evaluation scenario on one machine.
#
# A store with two mirrors, a manager, and two agents as two nodes with
# their own loopback addresses (127.0.0.2 = node a, 127.0.0.3 = node b).
# Two protected programs with visible state run, one per node: a counter
# with a growing table and a ledger of accounts (a few MiB each). Both
# checkpoint continuously; then each asks to be migrated and continues on
# the other node from its final checkpoint, with its state verified. Every
# daemon writes component-prefixed lines (like the thesis' Listing 6.1);
# a summary table ends the run. Exit status 0 only if both programs
# resumed with the right state. Everything is stopped at exit and on
# Ctrl-C. Usage: scripts/demo.sh [BUILD_DIR]
set -euo pipefail

BUILD=$(cd "${1:-build}" && pwd)
CTL="$BUILD/rtcmsctl"
DIR=$(mktemp -d /tmp/rtcms-demo-XXXXXX)
PIDS=()

cleanup() {
	# agents first: a stopping agent stops its programs
	for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do
		kill -TERM "${PIDS[$i]}" 2>/dev/null || true
	done
	for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
	if [ -z "${RTCMS_DEMO_KEEP:-}" ]; then rm -rf "$DIR"; else echo "demo: kept $DIR"; fi
}
trap cleanup EXIT
trap 'echo; echo "demo: interrupted"; exit 130' INT TERM

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
show() { printf '$ %s\n' "$*"; "$@"; }

# start NAME BINARY CONFIG: output prefixed for program lines, into the
# terminal and DIR/NAME.log; waits for its ready file.
start() {
	# name binary config [regex of log lines kept out of the console]
	local name=$1 bin=$2 conf=$3 quiet=${4:-^$}
	"$BUILD/$bin" --config "$conf" > >(tee "$DIR/$name.out" | \
		grep --line-buffered -v -E "$quiet" | \
		sed -u -E "/^[0-9]{4}-[0-9]{2}-/!s/^/                         [program on $name] /") 2>&1 &
	PIDS+=($!)
	for _ in $(seq 200); do [ -s "$DIR/$name.ready" ] && return 0; sleep 0.05; done
	echo "demo: $name did not start; see $DIR/$name.out" >&2
	exit 1
}

say "1. a cluster key, a data keyring (checkpoints are sealed by the agents: the store never sees plaintext), and one config file per daemon (in $DIR)"
"$CTL" keygen "$DIR/cluster.key" >/dev/null
"$CTL" keygen --data "$DIR/data.keys" >/dev/null
cat > "$DIR/store.ini" <<INI
[store]
listen = 127.0.0.1:0
key = $DIR/cluster.key
mirror = $DIR/mirror-a
mirror = $DIR/mirror-b
ready_file = $DIR/store.ready
INI
# the store logs every PUT and every "not stored yet" GET: kept in
# store.out (step 3 shows the deltas), out of the console, where the
# manager's lines tell the story
start store rtcms-store "$DIR/store.ini" '\] PUT |GET refused: ENOENT'
STORE=$(cat "$DIR/store.ready")
cat > "$DIR/manager.ini" <<INI
[manager]
listen = 127.0.0.1:0
name = manager
key = $DIR/cluster.key
store = $STORE
ready_file = $DIR/manager.ready
INI
start manager rtcms-manager "$DIR/manager.ini"
MANAGER=$(cat "$DIR/manager.ready")
for n in a b; do
	ip=127.0.0.2; [ $n = b ] && ip=127.0.0.3
	cat > "$DIR/node-$n.ini" <<INI
[agent]
listen = $ip:0
name = node-$n
; two agents share this machine's MAC: each gets its own node id
node_id = $n
key = $DIR/cluster.key
data_keyring = $DIR/data.keys
manager = $MANAGER
quota = 4
area_capacity = 16M
ready_file = $DIR/node-$n.ready
INI
	start node-$n rtcms-agent "$DIR/node-$n.ini"
done
export RTCMS_KEY="$DIR/cluster.key" RTCMS_MANAGER="$MANAGER" RTCMS_STORE="$STORE" RTCMS_DATA_KEYRING="$DIR/data.keys"
sleep 0.3

say "2. two protected programs, one on each node"
# each program asks to be moved (rtcms_request_migration) after a few
# checkpoints: the counter after its 8th, the ledger after its 14th
show "$CTL" run --node a counter-1 "$BUILD/rtcms-counter" --iterations 0 --interval-ms 300 \
	--table-mib 4 --migrate-at 8
show "$CTL" run --node b ledger-1 "$BUILD/rtcms-ledger" --iterations 0 --interval-ms 300 \
	--mib 6 --migrate-at 14
sleep 1.5

say "3. the manager's view: checkpoints are durable in the store"
show "$CTL" status
echo "incremental: after a program's first checkpoint only the blocks it wrote travel"
echo "(deltas; the store assembles full images from them for a restore):"
{ grep -E "PUT (counter-1|ledger-1) [0-9]+/[0-9]+ \(delta" "$DIR/store.out" || true; } | head -4 |
	sed -E 's/^.*\] (PUT .*) durable.*/    \1/'

say "4. each program calls for its migration (the thesis' op 2, from the program's side)"
declare -A FROM TO SEQ MS INC
for p in counter-1 ledger-1; do
	line=""
	for _ in $(seq 300); do
		line=$(grep "MIGRATE $p done" "$DIR/manager.out" || true)
		[ -n "$line" ] && break
		grep -q "MIGRATE $p failed" "$DIR/manager.out" && break
		sleep 0.1
	done
	[ -n "$line" ] || { echo "demo: $p was not moved (see $DIR/manager.out)"; exit 1; }
	# "MIGRATE P done: node F -> T, incarnation I, from checkpoint S in M ms"
	FROM[$p]=$(sed -E 's/.*done: node ([0-9a-f]+) -> .*/\1/' <<<"$line")
	TO[$p]=$(sed -E 's/.* -> ([0-9a-f]+), incarnation.*/\1/' <<<"$line")
	INC[$p]=$(sed -E 's/.*incarnation ([0-9]+),.*/\1/' <<<"$line")
	SEQ[$p]=$(sed -E 's/.*from checkpoint ([0-9]+) in.*/\1/' <<<"$line")
	MS[$p]=$(sed -E 's/.* in ([0-9]+) ms.*/\1/' <<<"$line")
done
sleep 1.5

say "5. after the moves"
show "$CTL" status

# verify: the restored state equals the final checkpoint's
node_log() { case $1 in *a) echo "$DIR/node-a.out" ;; *b) echo "$DIR/node-b.out" ;; esac; }
verdict() {
	local p=$1 from to seq
	from=$(node_log "${FROM[$p]}"); to=$(node_log "${TO[$p]}"); seq=${SEQ[$p]}
	case $p in
	counter-*)
		# the counter equals its checkpoint sequence; the table was checked
		# entry by entry by the program itself
		grep -q "counter: restored at counter $seq with .* table entries intact" "$to" &&
		grep -q "^counter: $((seq + 1)) " "$to" && echo "counter $seq, table intact" ;;
	ledger-*)
		local before after
		before=$(grep -E ", checkpoint $seq hash" "$from" | tail -1 | sed -E 's/.* hash ([0-9a-f]+).*/\1/')
		after=$(grep -E "restored checkpoint $seq hash" "$to" | tail -1 | sed -E 's/.* hash ([0-9a-f]+).*/\1/')
		[ -n "$before" ] && [ "$before" = "$after" ] && grep -q "restored checkpoint $seq .* total intact" "$to" &&
		echo "hash $after equal, total intact" ;;
	esac
}

say "6. summary"
ok=0
printf '%-10s %-17s %-17s %-4s %-10s %-42s %s\n' PROGRAM FROM TO INC CHECKPOINT "STATE VERIFIED" TIME
for p in counter-1 ledger-1; do
	v=$(verdict "$p" || true)
	[ -n "$v" ] || { v="NO"; ok=1; }
	printf '%-10s %-17s %-17s %-4s %-10s %-42s %s ms\n' "$p" "${FROM[$p]}" "${TO[$p]}" \
		"${INC[$p]}" "${SEQ[$p]}" "$v" "${MS[$p]}"
done
if [ $ok -eq 0 ]; then
	echo; echo "demo: both programs continued on the other node with their state intact."
else
	echo; echo "demo: FAILED: a program did not resume with the right state (logs in $DIR)"
	RTCMS_DEMO_KEEP=1
fi
exit $ok
