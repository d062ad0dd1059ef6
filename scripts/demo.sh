#!/bin/bash
# demo.sh - the rtcms demo (foundation stage): a store with two mirrors;
# a checkpoint stored and read back through rtcmsctl; one mirror damaged
# and repaired; a claim race and the fencing token.
#
# The full thesis scenario (agents, manager, migration) replaces this once
# those parts exist. Usage: scripts/demo.sh [BUILD_DIR]
set -euo pipefail

BUILD=${1:-build}
CTL="$BUILD/rtcmsctl"
STORE="$BUILD/rtcms-store"
DIR=$(mktemp -d /tmp/rtcms-demo-XXXXXX)
STORE_PID=""

cleanup() {
	if [ -n "$STORE_PID" ] && kill -0 "$STORE_PID" 2>/dev/null; then
		kill "$STORE_PID" 2>/dev/null || true
		wait "$STORE_PID" 2>/dev/null || true
	fi
	rm -rf "$DIR"
}
trap cleanup EXIT
trap 'echo "demo: interrupted"; exit 130' INT TERM

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
run() { printf '$ %s\n' "$*"; "$@"; }

say "1. a cluster key"
run "$CTL" keygen "$DIR/cluster.key"

say "2. rtcms-store with two mirrors (RAID-1) on 127.0.0.1"
cat > "$DIR/store.ini" <<INI
[store]
listen = 127.0.0.1:0
key = $DIR/cluster.key
mirror = $DIR/mirror-a
mirror = $DIR/mirror-b
retain = 2
ready_file = $DIR/store.ready
INI
"$STORE" --config "$DIR/store.ini" 2> >(sed 's/^/    /' >&2) &
STORE_PID=$!
for _ in $(seq 100); do [ -s "$DIR/store.ready" ] && break; sleep 0.05; done
[ -s "$DIR/store.ready" ] || { echo "demo: the store did not start"; exit 1; }
ADDR=$(cat "$DIR/store.ready")
export RTCMS_KEY="$DIR/cluster.key" RTCMS_STORE="$ADDR"
echo "store listening on $ADDR"

say "3. store two checkpoints of process 'counter' (4 MiB image each)"
head -c $((4 * 1024 * 1024)) /dev/urandom > "$DIR/image-1"
head -c $((4 * 1024 * 1024)) /dev/urandom > "$DIR/image-2"
run "$CTL" store put counter "$DIR/image-1" --sequence 1 --node 0x0a0b0c0d0e01 --spec "/usr/bin/counter --restore"
run "$CTL" store put counter "$DIR/image-2" --sequence 2 --node 0x0a0b0c0d0e01 --spec "/usr/bin/counter --restore"
run "$CTL" store put counter "$DIR/image-2" --sequence 2 --node 0x0a0b0c0d0e01 --spec "/usr/bin/counter --restore"
run "$CTL" store list

say "4. read the latest back and compare"
run "$CTL" store get counter --output "$DIR/restored"
run cmp "$DIR/image-2" "$DIR/restored" && echo "identical: $(sha256sum < "$DIR/restored" | cut -c1-16)…"

say "5. damage mirror-b: flip a byte in one chunk, delete another"
mapfile -t CHUNKS < <(find "$DIR/mirror-b/chunks" -type f | sort)
printf '\xff' | dd of="${CHUNKS[0]}" bs=1 seek=100 conv=notrunc status=none
rm -f "${CHUNKS[1]}"
echo "corrupted ${CHUNKS[0]#$DIR/}, deleted ${CHUNKS[1]#$DIR/}"
run "$CTL" store scrub
run "$CTL" store scrub

say "6. restoration claims: exactly one manager wins, the commit fences the old incarnation"
run "$CTL" store claim counter --claimant manager-1 --lease 5000 | tee "$DIR/claim"
CLAIM=$(sed -n 's/.*claim \([0-9a-f]\{16\}\).*/\1/p' "$DIR/claim")
if "$CTL" store claim counter --claimant manager-2; then
	echo "demo: a second claim must fail"; exit 1
fi
run "$CTL" store commit counter "$CLAIM" --node 0x0a0b0c0d0e02
if "$CTL" store put counter "$DIR/image-1" --sequence 3 --incarnation 1; then
	echo "demo: a put of the old incarnation must be refused"; exit 1
fi
run "$CTL" store put counter "$DIR/image-1" --sequence 3 --incarnation 2 --node 0x0a0b0c0d0e02
run "$CTL" store list
run "$CTL" store status

say "7. a protected program moves from node 1 to node 2 through the store (by hand: the agent and manager of the next stage automate this)"
COUNTER="$BUILD/rtcms-counter"
run "$CTL" area create "$DIR/area-node1" --capacity 8M
RTCMS_AREA="$DIR/area-node1" "$COUNTER" --iterations 5 --interval-ms 50 --table-mib 4 | sed 's/^/    [node 1] /'
run "$CTL" area show "$DIR/area-node1"
run "$CTL" area capture "$DIR/area-node1" --output "$DIR/counter.img"
run "$CTL" store put counter-app "$DIR/counter.img" --sequence 5 --node 1 --spec "rtcms-counter --table-mib 4"
run "$CTL" store get counter-app --output "$DIR/counter-node2.img"
run "$CTL" area create "$DIR/area-node2" --capacity 8M
run "$CTL" area install "$DIR/counter-node2.img" "$DIR/area-node2"
RTCMS_AREA="$DIR/area-node2" RTCMS_RESTORE=1 "$COUNTER" --iterations 3 --interval-ms 50 --table-mib 4 | tee "$DIR/node2.out" | sed 's/^/    [node 2] /'
grep -q "restored at counter 5 with 5000 table entries intact" "$DIR/node2.out" || { echo "demo: the restored program did not continue from its checkpoint"; exit 1; }
run "$CTL" area show "$DIR/area-node2"

say "demo: done — a checkpoint stored on two mirrors, read back identical, a damaged mirror repaired, one claim winner, the old incarnation fenced, and a program restored on another node from its stored checkpoint with its state intact"
